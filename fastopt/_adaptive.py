"""Per-coordinate adaptive learning rates: Adagrad, RMSprop, Adadelta."""

from fastopt._base import Optimizer
from fastopt._record import (
    OptimizerRecord,
    Racer,
    StateSlot,
    eps,
    flag,
    lr,
    maximize,
    real,
    weight_decay,
)


class Adagrad(Optimizer):
    r"""Adagrad: each coordinate's step shrinks with its accumulated squared gradients
    (torch.optim.Adagrad).

    Suits sparse or badly scaled gradients; its effective rate only decreases, which can stop
    progress on long runs (RMSprop and Adadelta fix that).

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=1e-2
        Learning rate :math:`\gamma`, >= 0.
    lr_decay : float, default=0
        Learning-rate decay :math:`\eta`, >= 0.
    weight_decay : float, default=0
        L2 penalty :math:`\lambda`, >= 0.
    initial_accumulator_value : float, default=0
        Initial value of the sum of squared gradients, >= 0.
    eps : float, default=1e-10
        Added to the square root of the sum (outside the root), >= 0.
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    Notes
    -----
    .. math::

        g_t &\leftarrow -g_t \ \text{if maximize}, \qquad
        g_t \leftarrow g_t + \lambda \theta_{t-1} \ \text{if } \lambda \ne 0 \\
        \tilde\gamma &= \gamma / (1 + (t - 1) \eta) \\
        s_t &= s_{t-1} + g_t^2 \\
        \theta_t &= \theta_{t-1} - \tilde\gamma \, g_t / (\sqrt{s_t} + \epsilon)

    State: ``sum`` (starts at ``initial_accumulator_value``; with parameter groups, each
    group's own value: torch.optim.Adagrad starts every group's ``sum`` at its constructor's
    argument instead, so a group that sets its own ``initial_accumulator_value`` follows a
    different trajectory there).

    References
    ----------
    .. [1] J. Duchi, E. Hazan, Y. Singer, "Adaptive subgradient methods for online learning
       and stochastic optimization", JMLR 12, 2011.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.Adagrad(w, lr=0.1)
    >>> opt.step(2 * w)          # the first step moves each coordinate by about lr
    >>> w
    array([ 0.9, -1.9])
    """

    record = OptimizerRecord(
        method="adagrad",
        kernel="adagrad",
        hyperparameters=(
            lr(1e-2),
            real("lr_decay", 0.0, low=0.0, sample=(0.0, 1.0)),
            weight_decay(),
            real("initial_accumulator_value", 0.0, low=0.0, sample=(0.0, 1.0)),
            eps(1e-10, sample=(1e-10, 1e-3)),
            maximize(),
        ),
        state=(StateSlot("sum", nonnegative=True, initial="initial_accumulator_value"),),
        kernel_inputs=lambda h: {name: h[name] for name in
                                 ("lr", "lr_decay", "weight_decay", "eps", "maximize")},
        options={"example": {"lr": 0.5}, "quadratic": {"lr": 1.0},
                 "rosenbrock": {"lr": 0.5}, "least_squares": {"lr": 0.5}},
        racers=(Racer("adagrad", "Adagrad", demo={"lr": 0.5},
                      style=("#8c564b", (0, (6, 2, 1, 2, 1, 2))),
                      race_lr={"rosenbrock": 0.68, "beale": 1.5, "booth": 4.6,
                               "himmelblau": 4.6, "saddle": 3.2, "valley": 3.2,
                               "noisy_rosenbrock": 0.46}),),
        torch="Adagrad",
        bench={},
    )


class RMSprop(Optimizer):
    r"""RMSprop: divide the gradient by a running root mean square of recent gradients
    (torch.optim.RMSprop).

    A robust default for non-stationary objectives; ``centered=True`` normalises by the
    variance estimate instead, ``momentum`` adds a heavy-ball buffer.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=1e-2
        Learning rate :math:`\gamma`, >= 0.
    alpha : float, default=0.99
        Smoothing constant :math:`\alpha`, in [0, 1].
    eps : float, default=1e-8
        Added to the root (outside it), >= 0.
    weight_decay : float, default=0
        L2 penalty :math:`\lambda`, >= 0.
    momentum : float, default=0
        Momentum factor :math:`\mu`, >= 0.
    centered : bool, default=False
        Normalise by an estimate of the gradient's variance.
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    Notes
    -----
    .. math::

        g_t &\leftarrow -g_t \ \text{if maximize}, \qquad
        g_t \leftarrow g_t + \lambda \theta_{t-1} \ \text{if } \lambda \ne 0 \\
        v_t &= \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        \tilde v_t &= v_t - \bar g_t^2, \ \ \bar g_t = \alpha \bar g_{t-1} + (1 - \alpha) g_t
        \ \text{if centered, else } \tilde v_t = v_t \\
        b_t &= \mu b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon), \quad
        \theta_t = \theta_{t-1} - \gamma b_t \ \text{if } \mu > 0 \\
        \theta_t &= \theta_{t-1} - \gamma g_t / (\sqrt{\tilde v_t} + \epsilon)
        \ \text{otherwise}

    All buffers start at zero. State: ``square_avg``, ``grad_avg`` (centered),
    ``momentum_buffer`` (momentum > 0).

    References
    ----------
    .. [1] G. Hinton, "Neural networks for machine learning", lecture 6e, 2012.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.RMSprop(w, lr=0.01)
    >>> opt.step(2 * w)          # first step: lr / sqrt(1 - alpha) per coordinate
    >>> np.round(w, 4)
    array([ 0.9, -1.9])
    """

    record = OptimizerRecord(
        method="rmsprop",
        kernel="rmsprop",
        hyperparameters=(
            lr(1e-2),
            real("alpha", 0.99, low=0.0, high=1.0, sample=(0.0, 0.99)),
            eps(1e-8),
            weight_decay(),
            real("momentum", 0.0, low=0.0, sample=(0.0, 0.99)),
            flag("centered"),
            maximize(),
        ),
        state=(
            StateSlot("square_avg", nonnegative=True),
            StateSlot("grad_avg", needed=lambda h: h["centered"]),
            StateSlot("momentum_buffer", needed=lambda h: h["momentum"] > 0),
        ),
        kernel_inputs=dict,
        options={"example": {"lr": 0.01}, "quadratic": {"lr": 0.01, "momentum": 0.5},
                 "rosenbrock": {"lr": 1e-4, "momentum": 0.9},
                 "least_squares": {"lr": 0.01}},
        racers=(Racer("rmsprop", "RMSprop", demo={"lr": 0.01}, style=("#e377c2", (0, (3, 3))),
                      race_lr={"rosenbrock": 0.0015, "beale": 0.0032, "booth": 0.1,
                               "himmelblau": 2.2, "saddle": 0.1, "valley": 0.015,
                               "noisy_rosenbrock": 0.01}),),
        torch="RMSprop",
        bench={},
    )


class Adadelta(Optimizer):
    r"""Adadelta: RMSprop whose step size is a running RMS of past updates (torch.optim.Adadelta).

    Needs little learning-rate tuning (``lr=1`` is the paper's method); progress is slow at
    the start, while the update average builds up from ``eps``.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=1.0
        Coefficient :math:`\gamma` that scales the update, >= 0.
    rho : float, default=0.9
        Decay :math:`\rho` of both running averages, in [0, 1].
    eps : float, default=1e-6
        Added inside both square roots, >= 0.
    weight_decay : float, default=0
        L2 penalty :math:`\lambda`, >= 0.
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    Notes
    -----
    .. math::

        g_t &\leftarrow -g_t \ \text{if maximize}, \qquad
        g_t \leftarrow g_t + \lambda \theta_{t-1} \ \text{if } \lambda \ne 0 \\
        v_t &= \rho v_{t-1} + (1 - \rho) g_t^2 \\
        \Delta_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} \, g_t \\
        u_t &= \rho u_{t-1} + (1 - \rho) \Delta_t^2 \\
        \theta_t &= \theta_{t-1} - \gamma \Delta_t

    State: ``square_avg`` (:math:`v`) and ``acc_delta`` (:math:`u`), both starting at zero.

    References
    ----------
    .. [1] M. D. Zeiler, "ADADELTA: an adaptive learning rate method", arXiv:1212.5701, 2012.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.Adadelta(w)
    >>> opt.step(2 * w)
    >>> np.round(w, 4)
    array([ 0.9968, -1.9968])
    """

    record = OptimizerRecord(
        method="adadelta",
        kernel="adadelta",
        hyperparameters=(
            lr(1.0, sample=(0.01, 2.0)),
            real("rho", 0.9, low=0.0, high=1.0, sample=(0.0, 0.99)),
            eps(1e-6, sample=(1e-6, 1e-3)),
            weight_decay(),
            maximize(),
        ),
        state=(StateSlot("square_avg", nonnegative=True),
               StateSlot("acc_delta", nonnegative=True)),
        kernel_inputs=dict,
        # (no "rosenbrock": Adadelta crawls along the valley, tests/test_driver.py)
        options={"example": {"lr": 1.0}, "quadratic": {"lr": 1.0, "eps": 1e-4},
                 "least_squares": {"lr": 1.0}},
        racers=(Racer("adadelta", "Adadelta", demo={"lr": 1.0},
                      style=("#000000", (0, (3, 1, 1, 1))),
                      race_lr={"rosenbrock": 0.068, "beale": 0.22, "booth": 6.8,
                               "himmelblau": 1.5, "saddle": 6.8, "valley": 2.2,
                               "noisy_rosenbrock": 2.2}),),
        torch="Adadelta",
        bench={},
    )
