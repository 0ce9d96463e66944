"""Stochastic gradient descent and its momentum variants: SGD, Momentum, NAG.

GD, SGD and mini-batch SGD are one update rule: what differs is the gradient it is fed (of the
whole data set, of one sample, of a batch). The classes here only apply the rule.
"""

from fastopt._base import Optimizer
from fastopt._record import (
    OptimizerRecord,
    Racer,
    StateSlot,
    flag,
    lr,
    maximize,
    real,
    weight_decay,
)


def _check_nesterov(hyper):
    if hyper["nesterov"] and (hyper["momentum"] <= 0 or hyper["dampening"] != 0):
        raise ValueError(
            "Nesterov momentum requires a momentum and zero dampening: got "
            f"momentum={hyper['momentum']!r}, dampening={hyper['dampening']!r}"
        )


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

    record = OptimizerRecord(
        method="sgd",
        aliases=("gd",),
        kernel="sgd",
        hyperparameters=(
            lr(1e-3),
            real("momentum", 0.0, low=0.0, sample=(0.0, 0.99)),
            real("dampening", 0.0, low=0.0, high=1.0, sample=(0.0, 1.0)),
            weight_decay(),
            flag("nesterov"),
            maximize(),
        ),
        check=_check_nesterov,
        state=(StateSlot("momentum_buffer", needed=lambda h: h["momentum"] != 0),),
        kernel_inputs=dict,  # the kernel's inputs are the hyperparameters
        title="(stochastic) gradient descent",
        options={"example": {"lr": 0.1}, "quadratic": {"lr": 0.3},
                 "rosenbrock": {"lr": 1e-3}, "least_squares": {"lr": 0.05}},
        racers=(
            Racer("gd", "GD", "exact", demo={"lr": 0.1}, style=("#1f77b4", "-"),
                  race_lr={"rosenbrock": 0.0015, "beale": 0.022, "booth": 0.032,
                           "himmelblau": 0.01, "saddle": 0.46, "valley": 1,
                           "noisy_rosenbrock": 0.001}),
            Racer("sgd", "SGD", "sample", demo={"lr": 0.01},
                  style=("#ff7f0e", (0, (1, 1.5))),
                  race_lr={"rosenbrock": 0.00046, "beale": 0.0032, "booth": 0.0022,
                           "himmelblau": 0.00046, "saddle": 0.068, "valley": 0.068,
                           "noisy_rosenbrock": 0.00046}),
            Racer("minibatch", "Mini-batch SGD", "batch", demo={"lr": 0.05},
                  style=("#2ca02c", (0, (6, 2))),
                  race_lr={"rosenbrock": 0.00068, "beale": 0.0046, "booth": 0.0046,
                           "himmelblau": 0.00068, "saddle": 0.068, "valley": 0.32,
                           "noisy_rosenbrock": 0.00068}),
        ),
        torch="SGD",
        bench={"lr": 1e-3},
    )


class Momentum(SGD):
    r"""Gradient descent with (heavy-ball) momentum: :class:`SGD` with ``momentum=0.9``.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=1e-3
        Learning rate :math:`\gamma`, >= 0.
    momentum : float, default=0.9
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

    Notes
    -----
    SGD's rule (see :class:`SGD`) with its momentum on by default:

    .. math::

        b_t &= g_t \ (t = 1), \qquad b_t = \mu b_{t-1} + (1 - \tau) g_t \ (t > 1) \\
        \theta_t &= \theta_{t-1} - \gamma b_t

    State: ``momentum_buffer`` (when ``momentum != 0``).

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

    record = SGD.record.derive(
        method="momentum", aliases=(), defaults={"momentum": 0.9}, title="momentum",
        options={"example": {"lr": 0.05}, "quadratic": {"lr": 0.1},
                 "rosenbrock": {"lr": 1e-4}, "least_squares": {"lr": 0.05}},
        racers=(Racer("momentum", "Momentum", demo={"lr": 0.02},
                      style=("#d62728", (0, (6, 2, 1, 2))),
                      race_lr={"rosenbrock": 0.001, "beale": 0.0046, "booth": 0.0022,
                               "himmelblau": 0.0046, "saddle": 0.046, "valley": 0.46,
                               "noisy_rosenbrock": 0.00022}),),
        torch_kwargs={"momentum": 0.9},
    )


class NAG(SGD):
    r"""Nesterov accelerated gradient: :class:`SGD` with ``nesterov=True``, ``momentum=0.9``.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=1e-3
        Learning rate :math:`\gamma`, >= 0.
    momentum : float, default=0.9
        Momentum factor :math:`\mu`, > 0.
    dampening : float, default=0
        Must stay 0 (Nesterov momentum has no dampening); an argument for torch's signature.
    weight_decay : float, default=0
        L2 penalty :math:`\lambda`, >= 0.
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    Notes
    -----
    torch's formulation of Nesterov momentum (see :class:`SGD`); ``nesterov`` is always on
    (an attribute and a state-dict entry, not an argument):

    .. math::

        b_t &= g_t \ (t = 1), \qquad b_t = \mu b_{t-1} + g_t \ (t > 1) \\
        \theta_t &= \theta_{t-1} - \gamma (g_t + \mu b_t)

    State: ``momentum_buffer``.

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

    record = SGD.record.derive(
        method="nag", aliases=(), defaults={"momentum": 0.9}, fixed={"nesterov": True},
        title="Nesterov accelerated gradient",
        options={"example": {"lr": 0.05}, "quadratic": {"lr": 0.1},
                 "rosenbrock": {"lr": 2e-4}, "least_squares": {"lr": 0.05}},
        racers=(Racer("nag", "NAG", demo={"lr": 0.02}, style=("#9467bd", (0, (10, 3))),
                      race_lr={"rosenbrock": 0.00068, "beale": 0.0046, "booth": 0.0068,
                               "himmelblau": 0.001, "saddle": 0.32, "valley": 0.68,
                               "noisy_rosenbrock": 0.00015}),),
        torch_kwargs={"momentum": 0.9, "nesterov": True},
    )
