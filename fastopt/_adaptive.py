"""Per-coordinate adaptive learning rates: Adagrad, RMSprop, Adadelta."""

import numpy as np

from fastopt._base import Optimizer
from fastopt._step import Rule
from fastopt._validation import (
    check_bool,
    check_eps,
    check_lr,
    check_real,
    check_weight_decay,
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

    State: ``sum`` (starts at ``initial_accumulator_value``).

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

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, *, maximize=False, n_threads=None):
        super().__init__(params, n_threads=n_threads, lr=lr, lr_decay=lr_decay,
                         weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps,
                         maximize=maximize)

    @classmethod
    def _check_hyperparameters(cls, lr, lr_decay, weight_decay, initial_accumulator_value, eps,
                               maximize):
        return dict(
            lr=check_lr(lr),
            lr_decay=check_real("lr_decay", lr_decay, "lr_decay value", low=0.0),
            weight_decay=check_weight_decay(weight_decay),
            initial_accumulator_value=check_real(
                "initial_accumulator_value", initial_accumulator_value,
                "initial_accumulator_value value", low=0.0),
            eps=check_eps(eps),
            maximize=check_bool("maximize", maximize),
        )

    _slot_names = ("sum",)

    @classmethod
    def _state_names(cls, hyper):
        return cls._slot_names

    @classmethod
    def _make_rule(cls, hyper):
        return Rule("adagrad", lr=hyper["lr"], lr_decay=hyper["lr_decay"],
                    weight_decay=hyper["weight_decay"], eps=hyper["eps"],
                    maximize=hyper["maximize"])

    @classmethod
    def _init_state(cls, name, param, hyper):
        return np.full_like(param, hyper["initial_accumulator_value"])


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

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, maximize=False, n_threads=None):
        super().__init__(params, n_threads=n_threads, lr=lr, alpha=alpha, eps=eps,
                         weight_decay=weight_decay, momentum=momentum, centered=centered,
                         maximize=maximize)

    @classmethod
    def _check_hyperparameters(cls, lr, alpha, eps, weight_decay, momentum, centered, maximize):
        return dict(
            lr=check_lr(lr),
            alpha=check_real("alpha", alpha, "alpha value", low=0.0, high=1.0),
            eps=check_eps(eps),
            weight_decay=check_weight_decay(weight_decay),
            momentum=check_real("momentum", momentum, "momentum value", low=0.0),
            centered=check_bool("centered", centered),
            maximize=check_bool("maximize", maximize),
        )

    _slot_names = ("square_avg", "grad_avg", "momentum_buffer")

    @classmethod
    def _state_names(cls, hyper):
        names = ["square_avg"]
        if hyper["centered"]:
            names.append("grad_avg")
        if hyper["momentum"] > 0:
            names.append("momentum_buffer")
        return tuple(names)

    @classmethod
    def _make_rule(cls, hyper):
        return Rule("rmsprop", **hyper)


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

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *, maximize=False,
                 n_threads=None):
        super().__init__(params, n_threads=n_threads, lr=lr, rho=rho, eps=eps,
                         weight_decay=weight_decay, maximize=maximize)

    @classmethod
    def _check_hyperparameters(cls, lr, rho, eps, weight_decay, maximize):
        return dict(
            lr=check_lr(lr),
            rho=check_real("rho", rho, "rho value", low=0.0, high=1.0),
            eps=check_eps(eps),
            weight_decay=check_weight_decay(weight_decay),
            maximize=check_bool("maximize", maximize),
        )

    _slot_names = ("square_avg", "acc_delta")

    @classmethod
    def _state_names(cls, hyper):
        return cls._slot_names

    @classmethod
    def _make_rule(cls, hyper):
        return Rule("adadelta", **hyper)
