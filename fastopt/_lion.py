"""Lion: the sign of an interpolated momentum (Chen et al. 2023); no torch.optim twin."""

from fastopt._base import Optimizer
from fastopt._record import (
    OptimizerRecord,
    Racer,
    StateSlot,
    betas,
    lr,
    maximize,
    weight_decay,
)


class Lion(Optimizer):
    r"""Lion (EvoLved Sign Momentum): every coordinate moves by exactly ``lr`` (or not at
    all), in the direction of the sign of an interpolation of momentum and gradient
    (Chen et al. 2023, Algorithm 2, with decoupled weight decay).

    One state array instead of Adam's two, and an update of the same size in every
    coordinate whatever the gradient's scale. The paper advises a learning rate 3-10 times
    smaller than AdamW's and a weight decay 3-10 times larger (the product
    :math:`\gamma\lambda` sets the decay's strength). With a constant ``lr`` it ends up
    oscillating around a minimiser by steps of ``lr``; a decreasing learning rate (set
    ``opt.lr`` between steps) settles it.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=1e-4
        Learning rate :math:`\gamma`, >= 0: the size of every coordinate's step.
    betas : tuple of (float, float), default=(0.9, 0.99)
        :math:`(\beta_1, \beta_2)`, each in [0, 1): the interpolation whose sign is the
        update, and the decay rate of the momentum.
    weight_decay : float, default=0
        Decoupled weight decay :math:`\lambda`, >= 0.
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    See Also
    --------
    AdamW : the adaptive method Lion was found to replace, with the same decoupled decay.

    Notes
    -----
    At step :math:`t` (the paper's Algorithm 2; there is no torch.optim twin, the tests hold
    the kernel to a NumPy transcription of it, ``fastopt._reference.lion``):

    .. math::

        g_t &\leftarrow -g_t \quad \text{if maximize} \\
        c_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        \theta_t &= \theta_{t-1} - \gamma \left(\operatorname{sign}(c_t)
        + \lambda \theta_{t-1}\right) \\
        m_t &= \beta_2 m_{t-1} + (1 - \beta_2) g_t

    (the weight-decay term only when :math:`\lambda \ne 0`). :math:`\operatorname{sign}(0) = 0`,
    as ``numpy.sign``: a coordinate whose :math:`c_t` is exactly 0 does not move (but for its
    decay), and a NaN in :math:`c_t` propagates. The update uses the momentum *before* it is
    updated with :math:`g_t`, and :math:`\beta_1 \ne \beta_2`: that is what sets Lion apart
    from signed momentum. State: ``exp_avg`` (:math:`m`), starting at zero.

    References
    ----------
    .. [1] X. Chen, C. Liang, D. Huang, E. Real, K. Wang, H. Pham, X. Dong, T. Luong,
       C.-J. Hsieh, Y. Lu, Q. V. Le, "Symbolic discovery of optimization algorithms",
       NeurIPS 2023 (arXiv:2302.06675), Algorithm 2.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0, 0.0])
    >>> opt = fastopt.Lion(w, lr=0.1)
    >>> opt.step(2 * w)          # each coordinate moves by lr against the gradient's sign
    >>> np.round(w, 6)
    array([ 0.9, -1.9,  0. ])
    """

    record = OptimizerRecord(
        method="lion",
        kernel="lion",
        hyperparameters=(lr(1e-4), betas((0.9, 0.99)), weight_decay(), maximize()),
        state=(StateSlot("exp_avg"),),
        kernel_inputs=lambda h: dict(lr=h["lr"], beta1=h["betas"][0], beta2=h["betas"][1],
                                     weight_decay=h["weight_decay"], maximize=h["maximize"]),
        # Lion never settles with a constant lr: it oscillates by steps of lr around the
        # minimiser. With beta1 = 0 it is signSGD on its gradient, which stops exactly where
        # the gradient is exactly 0 (sign(0) = 0): with a power-of-two lr the convex
        # quadratic's minimiser (dyadic coordinates) is reached exactly.
        options={"example": {"lr": 0.01}, "quadratic": {"lr": 2.0**-6, "betas": (0.0, 0.99)},
                 "least_squares": {"lr": 0.005}},
        racers=(Racer("lion", "Lion", demo={"lr": 0.01},
                      style=("#b8860b", (0, (2, 1, 2, 4))),
                      race_lr={"rosenbrock": 0.001, "beale": 0.0032, "booth": 0.068,
                               "himmelblau": 0.022, "saddle": 0.032, "valley": 0.01,
                               "noisy_rosenbrock": 0.001}),),
        bench={},
    )
