"""NAdam: Adam with Nesterov momentum (torch.optim.NAdam).

Its one running scalar, ``mu_product`` (the product of the momentum schedule's values so far,
which has no closed form in the step), is declared by its kernel and kept by the kernel
skeleton's running scalars (``RuleStep.scalars``, fastopt/_kernels_decl.pxi): the class keeps
it in each parameter's state, as torch does; the minimize loops carry it in their clock.
"""

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
    real,
    weight_decay,
)


class NAdam(Optimizer):
    r"""NAdam: Adam with Nesterov momentum and a warming-up momentum schedule
    (torch.optim.NAdam).

    The step looks ahead along the momentum, as Nesterov's does: it combines the current
    gradient with the first moment weighted by the *next* step's momentum. The momentum
    :math:`\mu_t` rises from about :math:`\beta_1 / 2` towards :math:`\beta_1` as
    ``momentum_decay`` schedules it.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=2e-3
        Learning rate :math:`\gamma`, >= 0.
    betas : tuple of (float, float), default=(0.9, 0.999)
        Decay rates :math:`(\beta_1, \beta_2)` of the moment estimates, each in [0, 1).
    eps : float, default=1e-8
        Added to the bias-corrected root of the second moment, >= 0.
    weight_decay : float, default=0
        Weight decay :math:`\lambda`, >= 0: an L2 penalty added to the gradient, or decoupled
        (see ``decoupled_weight_decay``).
    momentum_decay : float, default=4e-3
        :math:`\psi`, how fast the momentum schedule rises towards :math:`\beta_1`, >= 0.
    decoupled_weight_decay : bool, default=False
        Shrink the parameter by :math:`1 - \gamma\lambda` before the step (AdamW's decay,
        "NAdamW") instead of adding :math:`\lambda\theta` to the gradient.
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    See Also
    --------
    Adam : the same moments, with heavy-ball momentum.

    Notes
    -----
    At step :math:`t` (torch's order of operations; ``eps`` is added after the square root
    of the second moment has been bias-corrected):

    .. math::

        g_t &\leftarrow -g_t \quad \text{if maximize} \\
        \theta_{t-1} &\leftarrow (1 - \gamma\lambda)\, \theta_{t-1}
        \quad \text{if decoupled_weight_decay}, \quad
        \text{else } g_t \leftarrow g_t + \lambda \theta_{t-1} \\
        \mu_t &= \beta_1 \left(1 - \tfrac12\, 0.96^{t \psi}\right), \quad
        \mu_{t+1} = \beta_1 \left(1 - \tfrac12\, 0.96^{(t + 1) \psi}\right) \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        d_t &= \sqrt{v_t / (1 - \beta_2^t)} + \epsilon \\
        \theta_t &= \theta_{t-1}
        - \gamma \frac{1 - \mu_t}{1 - \prod_{i=1}^{t} \mu_i} \, \frac{g_t}{d_t}
        - \gamma \frac{\mu_{t+1}}{1 - \prod_{i=1}^{t+1} \mu_i} \, \frac{m_t}{d_t}

    State: ``exp_avg`` (:math:`m`) and ``exp_avg_sq`` (:math:`v`), starting at zero, and
    ``mu_product`` (:math:`\prod_{i \le t} \mu_i`, starting at 1), a 0-d float64 array per
    parameter, as torch keeps one tensor per parameter (torch keeps it in its default dtype,
    float32 unless changed: fastopt's is float64 whatever the parameters' dtype). It is a
    product over the steps so far, so it travels in state dicts and pickles like the arrays.

    References
    ----------
    .. [1] T. Dozat, "Incorporating Nesterov momentum into Adam", ICLR 2016 workshop.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.NAdam(w, lr=0.1)
    >>> opt.step(2 * w)          # lr along the gradient, and a look-ahead along the momentum
    >>> np.round(w, 6)
    array([ 0.894355, -1.894355])
    >>> round(float(opt.state[0]["mu_product"]), 6)  # mu_1
    0.450073
    """

    record = OptimizerRecord(
        method="nadam",
        kernel="nadam",
        hyperparameters=(
            lr(2e-3),
            betas(),
            eps(1e-8),
            weight_decay(),
            real("momentum_decay", 4e-3, low=0.0, sample=(0.0, 0.1)),
            flag("decoupled_weight_decay"),
            maximize(),
        ),
        state=(StateSlot("exp_avg"), StateSlot("exp_avg_sq", nonnegative=True)),
        kernel_inputs=lambda h: dict(
            lr=h["lr"], beta1=h["betas"][0], beta2=h["betas"][1], eps=h["eps"],
            weight_decay=h["weight_decay"], momentum_decay=h["momentum_decay"],
            decoupled_weight_decay=h["decoupled_weight_decay"], maximize=h["maximize"]),
        # (Rosenbrock: larger rates circle the minimum for 50,000 steps as the schedule's
        # momentum rises towards beta1)
        options={"example": {"lr": 0.1}, "quadratic": {"lr": 0.1},
                 "rosenbrock": {"lr": 1e-3}, "least_squares": {"lr": 0.05}},
        racers=(Racer("nadam", "NAdam", demo={"lr": 0.05},
                      style=("#7f7f7f", (0, (8, 2, 1, 2))),
                      race_lr={"rosenbrock": 0.01, "beale": 0.1, "booth": 0.46,
                               "himmelblau": 0.022, "saddle": 0.32, "valley": 0.15,
                               "noisy_rosenbrock": 0.022}),),
        torch="NAdam",
        bench={},
    )
