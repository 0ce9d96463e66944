"""The classic rules of torch.optim: Rprop (resilient propagation) and ASGD (averaged SGD)."""

from fastopt._base import Optimizer
from fastopt._record import (
    Hyperparameter,
    OptimizerRecord,
    Racer,
    StateSlot,
    lr,
    maximize,
    real,
    weight_decay,
)
from fastopt._validation import check_pair, check_real


def check_etas(etas):
    """Return ``etas`` as ``(etaminus, etaplus)``, floats with 0 < etaminus < 1 < etaplus
    (torch's condition and message)."""
    etaminus, etaplus = check_pair("etas", etas, "eta values")
    etaminus = check_real("etas[0]", etaminus, "eta values")
    etaplus = check_real("etas[1]", etaplus, "eta values")
    if not 0.0 < etaminus < 1.0 < etaplus:
        raise ValueError(f"Invalid eta values: etas=({etaminus!r}, {etaplus!r}) must have "
                         "0 < etas[0] < 1 < etas[1]")
    return etaminus, etaplus


def check_step_sizes(step_sizes):
    """Return ``step_sizes`` as ``(minimum, maximum)``, floats with 0 <= minimum <= maximum.

    torch checks nothing here; a negative bound or a minimum above the maximum (where
    torch's clamp makes every step size the maximum) is refused as a mistake.
    """
    low, high = check_pair("step_sizes", step_sizes, "step sizes")
    low = check_real("step_sizes[0]", low, "step sizes", low=0.0)
    high = check_real("step_sizes[1]", high, "step sizes", low=0.0)
    if low > high:
        raise ValueError(f"Invalid step sizes: step_sizes=({low!r}, {high!r}) must have "
                         "step_sizes[0] <= step_sizes[1]")
    return low, high


class Rprop(Optimizer):
    r"""Rprop: a step size per coordinate, adapted by the sign of the gradient alone
    (torch.optim.Rprop).

    Each coordinate moves by its own step size against the sign of its gradient; the step size
    grows by ``etas[1]`` while the gradient keeps its sign and shrinks by ``etas[0]`` when it
    flips. The gradient's magnitude is never used, so badly scaled problems cost nothing; meant
    for full-batch (deterministic) gradients, where signs are reliable.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=1e-2
        Initial step size :math:`\gamma` of every coordinate, >= 0. Read when the state is
        made (the first step), as in torch: changing it later changes nothing.
    etas : tuple of (float, float), default=(0.5, 1.2)
        :math:`(\eta_-, \eta_+)`, the factors that shrink and grow a step size,
        :math:`0 < \eta_- < 1 < \eta_+`.
    step_sizes : tuple of (float, float), default=(1e-6, 50)
        :math:`(\Gamma_{min}, \Gamma_{max})`, the bounds of every step size,
        :math:`0 \le \Gamma_{min} \le \Gamma_{max}` (torch does not check them).
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    See Also
    --------
    Adam : adaptive steps that also use the gradient's size; for noisy gradients.

    Notes
    -----
    At step :math:`t`, for each coordinate (torch's order of operations; :math:`p` is the
    gradient kept from the previous step, :math:`\eta` the step size):

    .. math::

        g_t &\leftarrow -g_t \quad \text{if maximize} \\
        \eta_t &= \begin{cases}
            \mathrm{clamp}(\eta_+ \, \eta_{t-1}, \Gamma_{min}, \Gamma_{max})
                & \text{if } g_t p_{t-1} > 0 \\
            \mathrm{clamp}(\eta_- \, \eta_{t-1}, \Gamma_{min}, \Gamma_{max}),
                \quad g_t \leftarrow 0 & \text{if } g_t p_{t-1} < 0 \\
            \mathrm{clamp}(\eta_{t-1}, \Gamma_{min}, \Gamma_{max})
                & \text{otherwise (0 or NaN)}
        \end{cases} \\
        \theta_t &= \theta_{t-1} - \eta_t \, \mathrm{sign}(g_t) \\
        p_t &= g_t

    State: ``prev`` (:math:`p`, starting at zero) and ``step_size`` (:math:`\eta`, starting
    at ``lr``).

    As in torch, and unlike the paper's first epoch, the first step takes the third case:
    ``prev`` is zero, so no step size is grown, each is clamped into ``step_sizes``, and
    every coordinate moves by exactly ``lr`` (clamped) against its gradient's sign, whatever
    the gradient's size (a zero gradient moves nothing). After a sign flip the gradient is
    kept as zero, so the next step takes the third case again (iRprop-, [2]_: no step is
    taken back).

    Non-finite gradients behave as in torch, whose ``sign`` is
    :math:`(x > 0) - (x < 0)`, so :math:`\mathrm{sign}(\mathrm{NaN}) = 0`: where
    :math:`g_t p_{t-1}` is NaN (a NaN gradient or ``prev``, an infinite one times zero) the
    step size is only clamped, as in the third case; a NaN gradient moves nothing and is kept
    as ``prev`` (so the next step takes the third case again), an infinite one moves by the
    step size. The parameters stay finite.

    References
    ----------
    .. [1] M. Riedmiller, H. Braun, "A direct adaptive method for faster backpropagation
       learning: the RPROP algorithm", IEEE International Conference on Neural Networks,
       1993, pp. 586-591.
    .. [2] C. Igel, M. Huesken, "Improving the Rprop learning algorithm", Proceedings of the
       Second International Symposium on Neural Computation (NC 2000), pp. 115-121.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.Rprop(w, lr=0.1)
    >>> opt.step(2 * w)          # the first step moves each coordinate by exactly lr
    >>> w
    array([ 0.9, -1.9])
    >>> opt.step(2 * w)          # same signs: the step sizes grow by etas[1]
    >>> np.round(w, 6)
    array([ 0.78, -1.78])
    """

    record = OptimizerRecord(
        method="rprop",
        kernel="rprop",
        hyperparameters=(
            lr(1e-2),
            Hyperparameter("etas", (0.5, 1.2), check_etas, ((0.1, 0.9), (1.05, 2.0))),
            Hyperparameter("step_sizes", (1e-6, 50.0), check_step_sizes,
                           ((0.0, 1e-3), (1.0, 50.0))),
            maximize(),
        ),
        state=(StateSlot("prev"), StateSlot("step_size", nonnegative=True, initial="lr")),
        kernel_inputs=lambda h: dict(lr=h["lr"], etaminus=h["etas"][0],
                                     etaplus=h["etas"][1], step_size_min=h["step_sizes"][0],
                                     step_size_max=h["step_sizes"][1],
                                     maximize=h["maximize"]),
        # (smaller minimum step sizes than torch's 1e-6 where the tests ask for gradients of
        # 1e-8: a step of 1e-6 overshoots them)
        options={"example": {"lr": 0.1},
                 "quadratic": {"lr": 0.1, "step_sizes": (1e-12, 50.0)},
                 "rosenbrock": {"lr": 1e-3, "step_sizes": (1e-12, 50.0)},
                 "least_squares": {"lr": 1e-3}},
        racers=(Racer("rprop", "Rprop", demo={"lr": 0.01},
                      style=("#008080", (0, (8, 2, 2, 2, 2, 2))),
                      race_lr={"rosenbrock": 0.022, "beale": 0.046, "booth": 0.68,
                               "himmelblau": 0.68, "saddle": 0.22, "valley": 0.15,
                               "noisy_rosenbrock": 2.2}),),
        torch="Rprop",
        bench={},
    )


class ASGD(Optimizer):
    r"""ASGD: SGD with a slowly decaying rate, keeping the running average of its iterates
    (torch.optim.ASGD).

    After ``t0`` steps the average of the iterates from then on is kept in the state as
    ``ax``: for noisy gradients it converges faster than the last iterate (Polyak-Ruppert
    averaging). The parameter itself follows SGD with the rate :math:`\eta_t` and a decay of
    :math:`\lambda\eta_t` per step.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=1e-2
        Learning rate :math:`\gamma`, >= 0.
    lambd : float, default=1e-4
        Decay term :math:`\lambda`, >= 0: of the rate, and of the parameter each step.
    alpha : float, default=0.75
        Power :math:`\alpha` of the rate's decay, >= 0.
    t0 : float, default=1e6
        Step :math:`t_0` after which averaging starts, >= 0.
    weight_decay : float, default=0
        L2 penalty :math:`w` added to the gradient, >= 0.
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    See Also
    --------
    SGD : the same step with a constant rate, without the average.

    Notes
    -----
    At step :math:`t` (torch's order of operations):

    .. math::

        \eta_t &= \frac{\gamma}{(1 + \lambda \gamma (t - 1))^{\alpha}}, \qquad
        \mu_t = \frac{1}{\max(1, t - 1 - t_0)} \qquad (\eta_1 = \gamma, \ \mu_1 = 1) \\
        g_t &\leftarrow -g_t \quad \text{if maximize} \\
        g_t &\leftarrow g_t + w \theta_{t-1} \quad \text{if } w \ne 0 \\
        \theta_t &= (1 - \lambda \eta_t) \, \theta_{t-1} - \eta_t g_t \\
        \bar\theta_t &= \begin{cases} \theta_t & \text{if } \mu_t = 1 \\
            \bar\theta_{t-1} + \mu_t (\theta_t - \bar\theta_{t-1}) & \text{otherwise}
        \end{cases}

    State: ``ax`` (:math:`\bar\theta`, starting at zero): the parameter itself up to step
    :math:`t_0 + 2`, then (for an integer :math:`t_0`) the mean of the iterates
    :math:`\theta_{t_0 + 2}, \ldots, \theta_t`. torch keeps :math:`\eta` and :math:`\mu` in its state, each
    written at the end of a step for the next: they are these closed forms of the step
    count, computed here from it (in double, whatever the dtype; torch rounds them to its
    default dtype, float32 unless changed). ``lr``, ``lambd``, ``alpha`` and ``t0`` changed
    between steps take effect at once here; in torch, one step later.

    References
    ----------
    .. [1] B. T. Polyak, A. B. Juditsky, "Acceleration of stochastic approximation by
       averaging", SIAM Journal on Control and Optimization 30(4), 1992, pp. 838-855.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.ASGD(w, lr=0.1, lambd=0.0, t0=0.0)
    >>> for _ in range(3):
    ...     opt.step(2 * w)
    >>> w                        # 0.8 ** t times the start
    array([ 0.512, -1.024])
    >>> opt.state[0]["ax"]       # the mean of the iterates of steps 2 and 3
    array([ 0.576, -1.152])
    """

    record = OptimizerRecord(
        method="asgd",
        kernel="asgd",
        hyperparameters=(
            lr(1e-2),
            real("lambd", 1e-4, low=0.0, sample=(0.0, 0.1)),
            real("alpha", 0.75, low=0.0, sample=(0.0, 1.0)),
            real("t0", 1e6, low=0.0, sample=(0.0, 10.0)),
            weight_decay(),
            maximize(),
        ),
        state=(StateSlot("ax"),),
        kernel_inputs=dict,
        # (lambd=0 where the tests want f's own minimiser: lambd shrinks the parameter, as an
        # L2 penalty would, moving the fixed point by about lambd / curvature)
        options={"example": {"lr": 0.1, "lambd": 0.0},
                 "quadratic": {"lr": 0.3, "lambd": 0.0},
                 "rosenbrock": {"lr": 1e-3, "lambd": 0.0},
                 "least_squares": {"lr": 0.05}},
        racers=(Racer("asgd", "ASGD", demo={"lr": 0.1},
                      style=("#ff1493", (0, (2, 2, 6, 2))),
                      race_lr={"rosenbrock": 0.0015, "beale": 0.022, "booth": 0.068,
                               "himmelblau": 0.015, "saddle": 0.46, "valley": 1.0,
                               "noisy_rosenbrock": 0.001}),),
        torch="ASGD",
        bench={},
    )
