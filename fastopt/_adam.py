"""Adam and AdamW (each with the AMSGrad variant), and Adamax."""

from collections.abc import Mapping

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


def _adam_inputs(hyper):
    beta1, beta2 = hyper["betas"]
    return dict(lr=hyper["lr"], beta1=beta1, beta2=beta2, eps=hyper["eps"],
                weight_decay=hyper["weight_decay"], amsgrad=hyper["amsgrad"],
                maximize=hyper["maximize"],
                decoupled_weight_decay=hyper["decoupled_weight_decay"])


def _with_added_defaults(cls, hyper):
    """``hyper`` (a checkpoint's mapping of hyperparameters) with each of
    ``cls._added_hyperparameters`` it lacks set to the class's default; ``hyper`` itself when
    it lacks none (or is not a mapping: the base class's checks then refuse it).

    A checkpoint written before a hyperparameter existed was made by code that behaved as the
    class's default does (Adam added ``decoupled_weight_decay`` in issue 13: older Adam was the
    L2 form, older AdamW the decoupled one), so the default resumes it bit-identically.
    """
    if not isinstance(hyper, Mapping) or "param_groups" in hyper:
        # (a state_dict with parameter groups is newer than the flag: it has it per group)
        return hyper
    absent = [name for name in cls._added_hyperparameters if name not in hyper]
    if not absent:
        return hyper
    defaults = {h.name: h.default for h in cls.record.hyperparameters}
    return {**hyper, **{name: defaults[name] for name in absent}}


_ADAM_NOTES = r"""
    Notes
    -----
    At step :math:`t` (torch's order of operations; ``eps`` is added after the square root
    of the second moment has been bias-corrected):

    .. math::

        g_t &\leftarrow -g_t \quad \text{if maximize} \\
        {decay}
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \ \text{(amsgrad)}, \quad
        \text{else } \hat v_t = v_t \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t} \,
        \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    AMSGrad takes the maximum of the *uncorrected* second moments. State: ``exp_avg``
    (:math:`m`), ``exp_avg_sq`` (:math:`v`), ``max_exp_avg_sq`` (amsgrad), all starting at zero.
"""


class Adam(Optimizer):
    r"""Adam: momentum on the gradient and RMSprop scaling, both bias-corrected
    (torch.optim.Adam).

    The default choice for most problems, noisy or not. ``weight_decay`` here is an L2 penalty
    added to the gradient, unless ``decoupled_weight_decay=True``: then it is AdamW's
    decoupled weight decay, and the optimizer is :class:`AdamW` (as in torch 2.13).

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=1e-3
        Learning rate :math:`\gamma`, >= 0.
    betas : tuple of (float, float), default=(0.9, 0.999)
        Decay rates :math:`(\beta_1, \beta_2)` of the moment estimates, each in [0, 1).
    eps : float, default=1e-8
        Added to the bias-corrected root of the second moment, >= 0.
    weight_decay : float, default=0
        L2 penalty :math:`\lambda` added to the gradient, >= 0.
    amsgrad : bool, default=False
        Use the AMSGrad variant.
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    decoupled_weight_decay : bool, default=False
        Shrink the parameter by :math:`(1 - \gamma\lambda)` before the step instead of adding
        :math:`\lambda\theta` to the gradient: AdamW's update (keyword-only, as in torch).
        A ``state_dict`` or pickle saved before this flag existed (without the entry) loads
        with the class's default: ``False`` for Adam, ``True`` for AdamW, which is how those
        versions updated.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    See Also
    --------
    AdamW : Adam with ``decoupled_weight_decay=True`` (and ``weight_decay=1e-2``).
    {notes}
    References
    ----------
    .. [1] D. P. Kingma, J. Ba, "Adam: a method for stochastic optimization", ICLR 2015.
    .. [2] S. J. Reddi, S. Kale, S. Kumar, "On the convergence of Adam and beyond", ICLR 2018.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.Adam(w, lr=0.1)
    >>> opt.step(2 * w)          # the first step moves each coordinate by lr
    >>> np.round(w, 6)
    array([ 0.9, -1.9])
    """

    record = OptimizerRecord(
        method="adam",
        kernel="adam",
        hyperparameters=(
            lr(1e-3),
            betas(),
            eps(1e-8),
            weight_decay(),
            flag("amsgrad"),
            maximize(),
            flag("decoupled_weight_decay", keyword_only=True),
        ),
        state=(
            StateSlot("exp_avg"),
            StateSlot("exp_avg_sq", nonnegative=True),
            StateSlot("max_exp_avg_sq", nonnegative=True, needed=lambda h: h["amsgrad"]),
        ),
        kernel_inputs=_adam_inputs,
        options={"example": {"lr": 0.1}, "quadratic": {"lr": 0.1},
                 "rosenbrock": {"lr": 1e-2}, "least_squares": {"lr": 0.05}},
        racers=(Racer("adam", "Adam", demo={"lr": 0.05},
                      style=("#bcbd22", (0, (10, 2, 2, 2))),
                      race_lr={"rosenbrock": 0.022, "beale": 0.1, "booth": 3.2,
                               "himmelblau": 1, "saddle": 0.068, "valley": 1,
                               "noisy_rosenbrock": 0.01}),),
        torch="Adam",
        bench={},
    )

    # Hyperparameters added after checkpoints of this class were first written: a state_dict
    # or pickle without them loads with the class's default (see _with_added_defaults).
    _added_hyperparameters = ("decoupled_weight_decay",)

    def load_state_dict(self, state_dict):
        """Restore a state saved by ``state_dict()`` (all-or-nothing).

        As :meth:`fastopt.Optimizer.load_state_dict`; a dict saved before
        ``decoupled_weight_decay`` existed (no such key) loads with the class's default
        (``False`` for Adam, ``True`` for AdamW), how those versions updated.

        Raises
        ------
        TypeError, ValueError
            On a missing, unknown or malformed entry. The optimizer is unchanged then.
        """
        super().load_state_dict(_with_added_defaults(type(self), state_dict))

    def __setstate__(self, state):
        # A pickle from before decoupled_weight_decay: its hyperparameters lack the flag.
        if isinstance(state, Mapping) and "_hyper" in state:
            state = {**state, "_hyper": _with_added_defaults(type(self), state["_hyper"])}
        super().__setstate__(state)


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay (torch.optim.AdamW).

    The parameter is shrunk by :math:`(1 - \gamma\lambda)` before the Adam step instead of
    adding :math:`\lambda\theta` to the gradient, so the decay is not rescaled by the adaptive
    denominator. Prefer it to Adam's L2 penalty for regularised models.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=1e-3
        Learning rate :math:`\gamma`, >= 0.
    betas : tuple of (float, float), default=(0.9, 0.999)
        Decay rates :math:`(\beta_1, \beta_2)`, each in [0, 1).
    eps : float, default=1e-8
        Added to the bias-corrected root of the second moment, >= 0.
    weight_decay : float, default=1e-2
        Decoupled weight decay :math:`\lambda`, >= 0.
    amsgrad : bool, default=False
        Use the AMSGrad variant.
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    See Also
    --------
    Adam : the same rule with an L2 penalty.
    {notes}
    References
    ----------
    .. [1] I. Loshchilov, F. Hutter, "Decoupled weight decay regularization", ICLR 2019.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.AdamW(w, lr=0.1, weight_decay=0.1)
    >>> opt.step(2 * w)          # shrink by 1 - lr * weight_decay, then the Adam step
    >>> np.round(w, 6)
    array([ 0.89, -1.88])
    """

    # torch 2.13's AdamW is Adam with decoupled_weight_decay=True, which it does not take as
    # an argument; here too it is fixed (an attribute and a state-dict entry, not an argument).
    record = Adam.record.derive(
        method="adamw",
        defaults={"weight_decay": 1e-2},
        fixed={"decoupled_weight_decay": True},
        options={"example": {"lr": 0.1, "weight_decay": 0.0},
                 "quadratic": {"lr": 0.1, "weight_decay": 0.0},
                 "rosenbrock": {"lr": 1e-2, "weight_decay": 0.0},
                 "least_squares": {"lr": 0.05}},
        racers=(Racer("adamw", "AdamW", demo={"lr": 0.05, "weight_decay": 1e-3},
                      style=("#17becf", (0, (1, 3))),
                      race_lr={"rosenbrock": 0.022, "beale": 0.32, "booth": 6.8,
                               "himmelblau": 1, "saddle": 4.6, "valley": 6.8,
                               "noisy_rosenbrock": 0.01}),),
        torch="AdamW",
    )


class Adamax(Optimizer):
    r"""Adamax: Adam with the infinity norm in place of the second moment
    (torch.optim.Adamax).

    The step of each coordinate is scaled by a decaying maximum of past gradient magnitudes
    instead of their root mean square: bounded by ``lr`` whatever the gradient's scale, and
    robust to rare large gradients.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=2e-3
        Learning rate :math:`\gamma`, >= 0.
    betas : tuple of (float, float), default=(0.9, 0.999)
        Decay rates :math:`(\beta_1, \beta_2)` of the first moment and of the infinity norm,
        each in [0, 1).
    eps : float, default=1e-8
        Added to the gradient's magnitude before the maximum, >= 0.
    weight_decay : float, default=0
        L2 penalty :math:`\lambda` added to the gradient, >= 0.
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    See Also
    --------
    Adam : the same first moment, scaled by the root of a second moment.

    Notes
    -----
    At step :math:`t` (torch's order of operations; ``eps`` is added to :math:`|g_t|` inside
    the maximum, so :math:`u_t \ge \epsilon > 0` once ``eps > 0``):

    .. math::

        g_t &\leftarrow -g_t \quad \text{if maximize} \\
        g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad \text{if } \lambda \ne 0 \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        u_t &= \max(\beta_2 u_{t-1}, |g_t| + \epsilon) \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t} \, \frac{m_t}{u_t}

    A NaN in :math:`\beta_2 u_{t-1}` or :math:`|g_t| + \epsilon` propagates through the
    maximum, as ``torch.maximum`` does. With ``eps=0`` a coordinate whose gradients have all
    been 0 divides 0 by 0 (NaN), as in torch. State: ``exp_avg`` (:math:`m`) and ``exp_inf``
    (:math:`u`), both starting at zero.

    References
    ----------
    .. [1] D. P. Kingma, J. Ba, "Adam: a method for stochastic optimization", ICLR 2015,
       section 7.1.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.Adamax(w, lr=0.1)
    >>> opt.step(2 * w)          # the first step moves each coordinate by about lr
    >>> np.round(w, 6)
    array([ 0.9, -1.9])
    """

    record = OptimizerRecord(
        method="adamax",
        kernel="adamax",
        hyperparameters=(lr(2e-3), betas(), eps(1e-8), weight_decay(), maximize()),
        state=(StateSlot("exp_avg"), StateSlot("exp_inf", nonnegative=True)),
        kernel_inputs=lambda h: dict(lr=h["lr"], beta1=h["betas"][0], beta2=h["betas"][1],
                                     eps=h["eps"], weight_decay=h["weight_decay"],
                                     maximize=h["maximize"]),
        options={"example": {"lr": 0.1}, "quadratic": {"lr": 0.1},
                 "rosenbrock": {"lr": 1e-2}, "least_squares": {"lr": 0.05}},
        racers=(Racer("adamax", "Adamax", demo={"lr": 0.05},
                      style=("#800000", (0, (5, 1, 1, 1, 1, 1))),
                      race_lr={"rosenbrock": 0.032, "beale": 0.68, "booth": 4.6,
                               "himmelblau": 1.0, "saddle": 1.0, "valley": 3.2,
                               "noisy_rosenbrock": 0.015}),),
        torch="Adamax",
        bench={},
    )


# The two classes share the Notes; only the weight-decay lines differ (Adam has both).
_DECOUPLED = r"\theta_{t-1} &\leftarrow (1 - \gamma\lambda)\, \theta_{t-1} \\"
_EITHER = (r"g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad \text{if } \lambda \ne 0"
           r" \text{ and not decoupled\_weight\_decay} \\" "\n        "
           r"\theta_{t-1} &\leftarrow (1 - \gamma\lambda)\, \theta_{t-1} \quad"
           r" \text{if decoupled\_weight\_decay} \\")
Adam.__doc__ = Adam.__doc__.replace("{notes}", _ADAM_NOTES.replace("{decay}", _EITHER))
AdamW.__doc__ = AdamW.__doc__.replace("{notes}", _ADAM_NOTES.replace("{decay}", _DECOUPLED))
