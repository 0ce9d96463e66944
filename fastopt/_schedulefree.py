"""Schedule-free optimizers: SGDScheduleFree and AdamWScheduleFree (the ``schedulefree``
package of Defazio et al. 2024, "The Road Less Scheduled").

A schedule-free optimizer keeps two points per parameter besides its state: ``z``, the point
a plain (SGD or Adam-normalised) step moves, and ``x``, a running weighted average of the
``z``'s, which is the point to evaluate and to return. Gradients are taken at ``y``, a point
between them, ``y = (1 - beta) z + beta x``: that is what the parameters hold while training.
As in the schedulefree package, ``x`` is not stored: ``eval()`` computes it from ``y`` and
``z`` into the parameters, and ``train()`` computes ``y`` back. The weights of the average
depend on the learning rate of every step (``lr_max``, ``weight_sum``): running per-step
scalars of the kernels (see RuleStep in fastopt/_kernels_decl.pxi).
"""

from collections.abc import Mapping
from functools import partial

import numpy as np

from fastopt._base import Optimizer
from fastopt._record import (
    Hyperparameter,
    OptimizerRecord,
    Racer,
    StateSlot,
    eps,
    lr,
    weight_decay,
)
from fastopt._step import OptimizerCore
from fastopt._validation import MAX_STEP, check_bool, check_int, check_pair, check_real


def _check_beta(name, value):
    # x = (y - (1 - beta) z) / beta: beta = 0 would make eval() divide by zero
    return check_real(name, value, f"{name} value" if name == "momentum" else
                      "beta parameter at index 0", low=0.0, high=1.0, low_open=True,
                      high_open=True)


def _check_betas(betas):
    """``betas`` as two floats: beta1 in (0, 1) (eval() divides by it), beta2 in [0, 1)."""
    beta1, beta2 = check_pair("betas", betas, "betas")
    return (_check_beta("betas[0]", beta1),
            check_real("betas[1]", beta2, "beta parameter at index 1", low=0.0, high=1.0,
                       high_open=True))


def _shared_hyperparameters():
    """warmup_steps, r, weight_lr_power: schedulefree's names and defaults."""
    return (
        Hyperparameter("warmup_steps", 0,
                       partial(check_int, "warmup_steps", low=0, high=MAX_STEP - 1,
                               what="warmup_steps value", integral_floats=True),
                       range(0, 11)),
        Hyperparameter("r", 0.0, partial(check_real, "r", what="r value", low=0.0),
                       (0.0, 2.0)),
        Hyperparameter("weight_lr_power", 2.0,
                       partial(check_real, "weight_lr_power", what="weight_lr_power value",
                               low=0.0),
                       (0.0, 4.0)),
    )


def _schedule_inputs(h):
    return dict(warmup_steps=float(h["warmup_steps"]), r=h["r"],
                weight_lr_power=h["weight_lr_power"])


class _ScheduleFree(Optimizer):
    """The train/eval modes shared by the schedule-free optimizers (not used directly)."""

    _PICKLED = Optimizer._PICKLED + ("_train_mode",)
    _train_mode = True  # (the constructor made from the record is Optimizer's: it starts so)

    @classmethod
    def _init_state(cls, name, param, hyper):
        if name == "z":  # z starts at the parameter itself (schedulefree: torch.clone(p))
            return np.array(param, order="C", copy=True)
        return Optimizer._init_state.__func__(cls, name, param, hyper)

    def _beta(self, hyper):
        return hyper[self._BETA][0] if self._BETA == "betas" else hyper[self._BETA]

    # -- modes ---------------------------------------------------------------------------------

    @property
    def training(self):
        """True in train mode (the parameters hold y, where gradients are taken), False in
        eval mode (they hold the averaged point x)."""
        return self._train_mode

    def step(self, grads):
        """Apply one update (see ``Optimizer.step``); only in train mode.

        Raises
        ------
        RuntimeError
            In eval mode (after ``eval()``): the parameters hold x, not the point y the
            update needs; call ``train()`` first (as the schedulefree package requires).
            Nothing is modified then.
        """
        if not self._train_mode:
            raise RuntimeError(
                f"{type(self).__name__}.step() was called in eval mode: the parameters hold "
                "the averaged point x; call train() before step() (and eval() before "
                "evaluating or saving the model), as with the schedulefree package")
        OptimizerCore.step(self, grads)

    def eval(self):
        """Eval mode: put the averaged point x into the parameters, in place.

        ``x = y + (1 - 1/beta) (z - y)`` (schedulefree's ``lerp``); nothing happens if the
        optimizer is already in eval mode, and the parameters are unchanged before the first
        step (x = y = z then).
        """
        if self._train_mode:
            self._move(lambda beta: 1.0 - 1.0 / beta)
            self._train_mode = False

    def train(self):
        """Train mode: put y, the point where gradients are taken, back into the parameters.

        ``y = x + (1 - beta) (z - x)``; nothing happens if the optimizer is already in train
        mode (the mode it starts in).
        """
        if not self._train_mode:
            self._move(lambda beta: 1.0 - beta)
            self._train_mode = True

    def _move(self, weight):
        """Every parameter p becomes lerp(p, z, weight(beta)), beta its group's, torch.lerp's
        formulas, in p's dtype. Everything is checked before the first array is written."""
        self._check_not_busy("switch between train and eval modes")
        if self._state is None:
            return
        for i, (p, s) in enumerate(zip(self._params, self._state)):
            for name, a in (("params" if self._single else f"params[{i}]", p),
                            (f"state[{i}]['z']", s["z"])):
                if (a.dtype != self._layout.dtypes[i] or a.shape != self._layout.shapes[i]
                        or not a.flags.c_contiguous or not a.flags.writeable):
                    raise ValueError(f"{name} changed in place (dtype, shape, contiguity or "
                                     "writeable flag) since the optimizer was built: nothing "
                                     "was moved")
        for p, s, hyper in zip(self._params, self._state, self._param_hypers()):
            _lerp_into(p, s["z"], weight(self._beta(hyper)))

    # -- the mode in state dicts and pickles ---------------------------------------------------

    def state_dict(self):
        """The optimizer's state (see ``Optimizer.state_dict``) and ``"train_mode"``: the
        parameters a checkpoint saves beside it are y in train mode, x in eval mode."""
        return {**Optimizer.state_dict(self), "train_mode": self._train_mode}

    def load_state_dict(self, state_dict):
        """Restore a state saved by ``state_dict()``, its mode included (all-or-nothing; see
        ``Optimizer.load_state_dict``)."""
        if not isinstance(state_dict, Mapping):
            return Optimizer.load_state_dict(self, state_dict)  # (its TypeError)
        if "train_mode" not in state_dict:
            raise ValueError("state_dict is missing ['train_mode']")
        mode = check_bool("train_mode", _plain_bool(state_dict["train_mode"]))
        Optimizer.load_state_dict(
            self, {k: v for k, v in state_dict.items() if k != "train_mode"})
        self._train_mode = mode

    def __setstate__(self, state):
        if isinstance(state, Mapping) and "_train_mode" in state:
            mode = check_bool("pickled train_mode", state["_train_mode"])
        else:
            mode = None  # (Optimizer.__setstate__ refuses the state: a missing key)
        Optimizer.__setstate__(self, state)
        self._train_mode = mode


def _plain_bool(value):
    # numpy.load gives a 0-d array
    return value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value


def _lerp_into(p, z, weight):
    """p = torch.lerp(p, z, weight) in place: p + w (z - p) when |w| < 0.5, else
    z - (z - p)(1 - w), in p's dtype."""
    w = p.dtype.type(weight)
    d = np.subtract(z, p)
    if abs(w) < 0.5:
        d *= w
        p += d
    else:
        d *= p.dtype.type(1) - w
        np.subtract(z, d, out=p)


_NOTES_SCHEDULE = r"""
    At update :math:`t` (the schedulefree package's order of operations; :math:`\gamma` is
    ``lr``, :math:`T_w` ``warmup_steps``, :math:`p` ``weight_lr_power``):

    .. math::

        \gamma_t &= \gamma \min(1, t / T_w) \quad (\gamma_t = \gamma \text{ if } T_w = 0) \\
        \gamma^{\max}_t &= \max(\gamma^{\max}_{t-1}, \gamma_t), \qquad
            w_t = t^r \, (\gamma^{\max}_t)^p, \qquad W_t = W_{t-1} + w_t, \qquad
            c_t = w_t / W_t \ (0 \text{ if } W_t = 0) \\"""

_NOTES_AFTER = r"""
    where :math:`y` is what the parameters hold in train mode. The averaged point
    :math:`x_t = (1 - c_t) x_{t-1} + c_t z_t` is never stored: :math:`y_t = (1 - \beta) z_t +
    \beta x_t` gives it, and ``eval()`` puts it into the parameters
    (:math:`x = y + (1 - 1/\beta)(z - y)`), ``train()`` puts :math:`y` back
    (:math:`y = x + (1 - \beta)(z - x)`), both with ``torch.lerp``'s formulas. ``step`` in
    eval mode raises ``RuntimeError``, as the schedulefree package does. Unlike the
    schedulefree package, the optimizer starts in train mode (before the first step
    :math:`x = y = z`, so the mode changes nothing but whether ``step`` is allowed; calling
    ``train()`` first, as schedulefree requires, is harmless). ``fastopt.minimize``,
    ``minimize_batch`` and ``minimize_minibatch`` return :math:`x` (``eval()`` at the end;
    their ``fun``, ``jac``, callbacks and stopping rules see :math:`y`, where the gradients
    are taken), except a run (or a batch's problem) stopped by a non-finite f or g
    (status 3): it returns its last finite iterate :math:`y` with the ``fun`` and ``jac``
    evaluated there, all three of one point (its average is lost: the failed iteration's
    step has already moved :math:`z` and the weights).

    State: ``z`` (starting at the parameter) per parameter, the running
    :math:`\gamma^{\max}` (``lr_max``, starting at -1) and :math:`W` (``weight_sum``,
    starting at 0), and the mode (``train_mode`` in the state dict; checkpoints should be
    saved in eval mode, the schedulefree package advises, so that the parameters saved are
    :math:`x`). ``lr`` may be changed between steps: the weights follow it, as in
    schedulefree. Warmup uses ``t / warmup_steps`` with ``t`` counted from 1."""


class SGDScheduleFree(_ScheduleFree):
    __doc__ = r"""Schedule-free SGD (schedulefree.SGDScheduleFree): SGD with momentum as an average of
    iterates, no learning-rate schedule needed.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
        In train mode (the start) they hold y, where gradients are taken.
    lr : float, default=1.0
        Learning rate :math:`\gamma`, >= 0.
    momentum : float, default=0.9
        Interpolation :math:`\beta` between the average x and the SGD point z, in (0, 1).
    weight_decay : float, default=0
        L2 penalty :math:`\lambda` added to the gradient (at y), >= 0.
    warmup_steps : int, default=0
        Linear warmup of the learning rate over this many steps, >= 0.
    r : float, default=0
        Power of t in the averaging weights (polynomial weighting), >= 0.
    weight_lr_power : float, default=2
        Power of the largest learning rate so far in the averaging weights, >= 0.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    See Also
    --------
    AdamWScheduleFree : the same averaging over Adam-normalised steps.
    SGD : plain SGD (with momentum).

    Notes
    -----""" + _NOTES_SCHEDULE + r"""
        g_t &\leftarrow g_t + \lambda y_{t-1} \quad \text{if } \lambda \ne 0 \\
        y_t &= (1 - c_t) y_{t-1} + c_t z_{t-1} + \gamma_t (\beta (1 - c_t) - 1) g_t \\
        z_t &= z_{t-1} - \gamma_t g_t
""" + _NOTES_AFTER + r"""

    References
    ----------
    .. [1] A. Defazio, X. Yang, H. Mehta, K. Mishchenko, A. Khaled, A. Cutkosky, "The Road
       Less Scheduled", NeurIPS 2024 (arXiv:2405.15682).

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.SGDScheduleFree(w, lr=0.1)
    >>> for _ in range(100):
    ...     opt.step(2 * w)          # gradients of sum(w**2), taken at y
    >>> opt.eval()                   # w now holds the averaged point x
    >>> bool(np.all(np.abs(w) < 0.05))
    True
    """

    _BETA = "momentum"

    record = OptimizerRecord(
        method="sgdschedulefree",
        kernel="sgd_schedulefree",
        hyperparameters=(lr(1.0), Hyperparameter("momentum", 0.9,
                                                 partial(_check_beta, "momentum"),
                                                 (0.05, 0.95)),
                         weight_decay(), *_shared_hyperparameters()),
        state=(StateSlot("z"),),
        kernel_inputs=lambda h: dict(lr=h["lr"], momentum=h["momentum"],
                                     weight_decay=h["weight_decay"], **_schedule_inputs(h)),
        title="schedule-free SGD",
        options={"example": {"lr": 0.1}, "quadratic": {"lr": 0.3},
                 "least_squares": {"lr": 0.05}},
        racers=(Racer("sgdschedulefree", "Schedule-free SGD", demo={"lr": 0.05},
                      style=("#6b8e23", (0, (3, 1, 1, 1, 1, 1))),
                      race_lr={"rosenbrock": 0.0046, "beale": 0.022, "booth": 0.32,
                               "himmelblau": 0.046, "saddle": 3.2, "valley": 6.8,
                               "noisy_rosenbrock": 0.0015}),),
        torch="schedulefree.SGDScheduleFree",
        bench={"lr": 1e-3},
    )


class AdamWScheduleFree(_ScheduleFree):
    __doc__ = r"""Schedule-free AdamW (schedulefree.AdamWScheduleFree): Adam-normalised steps averaged
    as in schedule-free SGD, no learning-rate schedule needed.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
        In train mode (the start) they hold y, where gradients are taken.
    lr : float, default=0.0025
        Learning rate :math:`\gamma`, >= 0.
    betas : tuple of (float, float), default=(0.9, 0.999)
        :math:`\beta_1`, the interpolation between the average x and z, in (0, 1);
        :math:`\beta_2`, the decay of the second moment, in [0, 1).
    eps : float, default=1e-8
        Added to the bias-corrected root of the second moment, >= 0.
    weight_decay : float, default=0
        Decoupled weight decay :math:`\lambda`, applied at y to the normalised step, >= 0.
    warmup_steps : int, default=0
        Linear warmup of the learning rate over this many steps, >= 0.
    r : float, default=0
        Power of t in the averaging weights (polynomial weighting), >= 0.
    weight_lr_power : float, default=2
        Power of the largest learning rate so far in the averaging weights, >= 0.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    See Also
    --------
    SGDScheduleFree : the same averaging over SGD steps.
    AdamW : AdamW with a first moment (and a schedule, if any, from outside).

    Notes
    -----""" + _NOTES_SCHEDULE + r"""
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        d_t &= g_t / (\sqrt{v_t / (1 - \beta_2^t)} + \epsilon)
            + \lambda y_{t-1} \quad (\lambda y_{t-1} \text{ if } \lambda \ne 0) \\
        y_t &= (1 - c_t) y_{t-1} + c_t z_{t-1} + \gamma_t (\beta_1 (1 - c_t) - 1) d_t \\
        z_t &= z_{t-1} - \gamma_t d_t
""" + _NOTES_AFTER + r"""
    State also holds ``exp_avg_sq`` (:math:`v`, starting at zero); there is no first moment:
    the averaging plays its part.

    References
    ----------
    .. [1] A. Defazio, X. Yang, H. Mehta, K. Mishchenko, A. Khaled, A. Cutkosky, "The Road
       Less Scheduled", NeurIPS 2024 (arXiv:2405.15682).

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.AdamWScheduleFree(w, lr=0.1)
    >>> for _ in range(300):
    ...     opt.step(2 * w)          # gradients of sum(w**2), taken at y
    >>> opt.eval()                   # w now holds the averaged point x
    >>> bool(np.all(np.abs(w) < 0.05))
    True
    """

    _BETA = "betas"

    record = OptimizerRecord(
        method="adamwschedulefree",
        kernel="adamw_schedulefree",
        hyperparameters=(lr(0.0025), Hyperparameter("betas", (0.9, 0.999), _check_betas,
                                                    ((0.05, 0.95), (0.0, 0.99))),
                         eps(1e-8), weight_decay(), *_shared_hyperparameters()),
        state=(StateSlot("z"), StateSlot("exp_avg_sq", nonnegative=True)),
        kernel_inputs=lambda h: dict(lr=h["lr"], beta1=h["betas"][0], beta2=h["betas"][1],
                                     eps=h["eps"], weight_decay=h["weight_decay"],
                                     **_schedule_inputs(h)),
        title="schedule-free AdamW",
        options={"example": {"lr": 0.2}, "quadratic": {"lr": 0.1},
                 "least_squares": {"lr": 0.05}},
        racers=(Racer("adamwschedulefree", "Schedule-free AdamW", demo={"lr": 0.05},
                      style=("#4682b4", (0, (1, 2))),
                      race_lr={"rosenbrock": 0.068, "beale": 0.32, "booth": 4.6,
                               "himmelblau": 0.46, "saddle": 2.2, "valley": 0.46,
                               "noisy_rosenbrock": 0.046}),),
        torch="schedulefree.AdamWScheduleFree",
        bench={},
    )
