"""Stochastic gradient descent and its momentum variants: SGD, Momentum, NAG.

GD, SGD and mini-batch SGD are one update rule: what differs is the gradient it is fed (of the
whole data set, of one sample, of a batch). The classes here only apply the rule.
"""

from fastopt._base import Optimizer
from fastopt._step import Rule
from fastopt._validation import check_bool, check_lr, check_real, check_weight_decay


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum (torch.optim.SGD).

    The same rule is gradient descent (GD) when fed the gradient of the full objective,
    stochastic GD when fed the gradient of one sample, and mini-batch SGD when fed the
    gradient of a batch.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place by :meth:`step`: any shape, float32 or float64,
        C-contiguous, writeable.
    lr : float, default=1e-3
        Learning rate :math:`\gamma`, >= 0.
    momentum : float, default=0
        Momentum factor :math:`\mu`, >= 0.
    dampening : float, default=0
        Dampening :math:`\tau` of the momentum, in [0, 1].
    weight_decay : float, default=0
        L2 penalty :math:`\lambda`, >= 0.
    nesterov : bool, default=False
        Use Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    Raises
    ------
    TypeError, ValueError
        On a bad parameter array or hyperparameter, naming it.

    See Also
    --------
    Momentum : SGD with momentum 0.9 by default.
    NAG : SGD with Nesterov momentum 0.9 by default.

    Notes
    -----
    At step :math:`t` with gradient :math:`g_t` (torch's order of operations):

    .. math::

        g_t &\leftarrow -g_t \quad \text{if maximize} \\
        g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad \text{if } \lambda \ne 0 \\
        b_t &= g_t \ (t = 1), \qquad b_t = \mu b_{t-1} + (1 - \tau) g_t \ (t > 1) \\
        g_t &\leftarrow g_t + \mu b_t \ \text{(nesterov)}, \quad \text{else } g_t \leftarrow b_t
        \quad \text{if } \mu \ne 0 \\
        \theta_t &= \theta_{t-1} - \gamma g_t

    The momentum buffer is the first gradient itself (no dampening on the first step).
    State: ``momentum_buffer`` (when ``momentum != 0``).

    References
    ----------
    .. [1] I. Sutskever, J. Martens, G. Dahl, G. Hinton, "On the importance of initialization
       and momentum in deep learning", ICML 2013.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.SGD(w, lr=0.1)
    >>> opt.step(2 * w)          # gradient of ||w||^2
    >>> w
    array([ 0.8, -1.6])
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, n_threads=None):
        super().__init__(params, n_threads=n_threads, lr=lr, momentum=momentum,
                         dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                         maximize=maximize)

    @classmethod
    def _check_hyperparameters(cls, lr, momentum, dampening, weight_decay, nesterov, maximize):
        hyper = dict(
            lr=check_lr(lr),
            momentum=check_real("momentum", momentum, "momentum value", low=0.0),
            dampening=check_real("dampening", dampening, "dampening value", low=0.0, high=1.0),
            weight_decay=check_weight_decay(weight_decay),
            nesterov=check_bool("nesterov", nesterov),
            maximize=check_bool("maximize", maximize),
        )
        if hyper["nesterov"] and (hyper["momentum"] <= 0 or hyper["dampening"] != 0):
            raise ValueError(
                "Nesterov momentum requires a momentum and zero dampening: got "
                f"momentum={hyper['momentum']!r}, dampening={hyper['dampening']!r}"
            )
        return hyper

    _slot_names = ("momentum_buffer",)

    @classmethod
    def _state_names(cls, hyper):
        return cls._slot_names if hyper["momentum"] != 0 else ()

    @classmethod
    def _make_rule(cls, hyper):
        return Rule("sgd", **hyper)


class Momentum(SGD):
    r"""Gradient descent with (heavy-ball) momentum: :class:`SGD` with ``momentum=0.9``.

    Parameters are those of :class:`SGD`; only the default of ``momentum`` differs. The update
    rule is SGD's (see its Notes): :math:`b_t = \mu b_{t-1} + (1-\tau) g_t`,
    :math:`\theta_t = \theta_{t-1} - \gamma b_t`.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.Momentum(w, lr=0.1)
    >>> for _ in range(2):
    ...     opt.step(2 * w)
    >>> w
    array([ 0.46, -0.92])
    """

    def __init__(self, params, lr=1e-3, momentum=0.9, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, n_threads=None):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                         n_threads=n_threads)


class NAG(SGD):
    r"""Nesterov accelerated gradient: :class:`SGD` with ``nesterov=True``, ``momentum=0.9``.

    Parameters are those of :class:`SGD` without ``nesterov`` (always on); ``momentum`` must
    be > 0 and ``dampening`` 0. The update (torch's formulation, see :class:`SGD`) is
    :math:`b_t = \mu b_{t-1} + g_t`, :math:`\theta_t = \theta_{t-1} - \gamma (g_t + \mu b_t)`.

    References
    ----------
    .. [1] Y. Nesterov, "A method for solving the convex programming problem with convergence
       rate O(1/k^2)", 1983.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.NAG(w, lr=0.1)
    >>> opt.step(2 * w)
    >>> w
    array([ 0.62, -1.24])
    """

    def __init__(self, params, lr=1e-3, momentum=0.9, dampening=0.0, weight_decay=0.0, *,
                 maximize=False, n_threads=None):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=True, maximize=maximize,
                         n_threads=n_threads)

    @classmethod
    def _check_hyperparameters(cls, **hyper):
        hyper = super()._check_hyperparameters(**hyper)
        if not hyper["nesterov"]:
            raise ValueError("Invalid nesterov: NAG requires nesterov=True")
        return hyper
