"""RAdam: Adam with a rectified adaptive learning rate (torch.optim.RAdam)."""

from fastopt._base import Optimizer
from fastopt._record import (
    OptimizerRecord,
    Racer,
    StateSlot,
    betas,
    eps,
    flag,
    lr,
    maximize,
    weight_decay,
)


class RAdam(Optimizer):
    r"""RAdam: Adam whose adaptive step is rectified for the variance of its second moment
    (torch.optim.RAdam).

    While too few gradients have been seen for the second moment to be trusted
    (:math:`\rho_t \le 5`, the first steps: 5 with the default betas), the step is momentum
    SGD with a bias-corrected momentum; afterwards it is Adam's step scaled by a
    rectification factor :math:`r_t < 1` that tends to 1. This replaces Adam's warm-up of the
    learning rate.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=1e-3
        Learning rate :math:`\gamma`, >= 0.
    betas : tuple of (float, float), default=(0.9, 0.999)
        Decay rates :math:`(\beta_1, \beta_2)` of the moment estimates, each in [0, 1).
    eps : float, default=1e-8
        Added to the root of the (uncorrected) second moment, >= 0.
    weight_decay : float, default=0
        Weight decay :math:`\lambda`, >= 0: an L2 penalty added to the gradient, or
        decoupled (below).
    decoupled_weight_decay : bool, default=False
        Shrink the parameter by :math:`(1 - \gamma\lambda)` before the step instead of adding
        :math:`\lambda\theta` to the gradient (AdamW's decay).
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    See Also
    --------
    Adam : the step RAdam takes once rectified, without the factor :math:`r_t`.

    Notes
    -----
    At step :math:`t` (torch's order of operations; unlike Adam, ``eps`` is added to the
    root of the *uncorrected* second moment, and the bias correction multiplies the
    quotient):

    .. math::

        g_t &\leftarrow -g_t \quad \text{if maximize} \\
        g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad \text{if } \lambda \ne 0
        \text{ and not decoupled\_weight\_decay} \\
        \theta_{t-1} &\leftarrow (1 - \gamma\lambda)\, \theta_{t-1} \quad
        \text{if decoupled\_weight\_decay} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \rho_\infty &= \frac{2}{1 - \beta_2} - 1, \quad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t} \\
        \theta_t &= \theta_{t-1} - \gamma \, \frac{m_t}{1 - \beta_1^t} \, r_t \,
        \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon}, \quad
        r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
        {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}} \quad \text{if } \rho_t > 5 \\
        \theta_t &= \theta_{t-1} - \gamma \, \frac{m_t}{1 - \beta_1^t} \quad
        \text{otherwise}

    :math:`\rho_t` grows with :math:`t` towards :math:`\rho_\infty`; with
    :math:`\beta_2 \le 0.6` (:math:`\rho_\infty \le 4`) it never exceeds 5, and RAdam stays
    momentum SGD, as in torch. The minimize loops keep :math:`\beta_1^t, \beta_2^t` as
    running products (the classes use ``pow``, as torch does): a step whose :math:`\rho_t`
    lies within a few ulps of 5 could switch one step apart. State: ``exp_avg``
    (:math:`m`) and ``exp_avg_sq`` (:math:`v`), both starting at zero.

    References
    ----------
    .. [1] L. Liu, H. Jiang, P. He, W. Chen, X. Liu, J. Gao, J. Han, "On the variance of the
       adaptive learning rate and beyond", ICLR 2020.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.RAdam(w, lr=0.1)
    >>> opt.step(2 * w)          # rho_1 = 1 <= 5: a momentum SGD step, lr * gradient
    >>> np.round(w, 6)
    array([ 0.8, -1.6])
    """

    record = OptimizerRecord(
        method="radam",
        kernel="radam",
        hyperparameters=(
            lr(1e-3),
            # (the property tests' beta2 where the rectified step comes within a few steps)
            betas(sample=((0.0, 0.99), (0.8, 0.999))),
            eps(1e-8),
            weight_decay(),
            flag("decoupled_weight_decay"),
            maximize(),
        ),
        state=(StateSlot("exp_avg"), StateSlot("exp_avg_sq", nonnegative=True)),
        kernel_inputs=lambda h: dict(lr=h["lr"], beta1=h["betas"][0], beta2=h["betas"][1],
                                     eps=h["eps"], weight_decay=h["weight_decay"],
                                     decoupled_weight_decay=h["decoupled_weight_decay"],
                                     maximize=h["maximize"]),
        options={"example": {"lr": 0.1}, "quadratic": {"lr": 0.1},
                 "rosenbrock": {"lr": 2e-3}, "least_squares": {"lr": 0.05}},
        racers=(Racer("radam", "RAdam", demo={"lr": 0.05},
                      style=("#4b0082", (0, (7, 2, 2, 2, 2, 2))),
                      race_lr={"rosenbrock": 0.0046, "beale": 0.01, "booth": 0.1,
                               "himmelblau": 0.046, "saddle": 0.46, "valley": 2.2,
                               "noisy_rosenbrock": 0.0046}),),
        torch="RAdam",
        bench={},
    )
