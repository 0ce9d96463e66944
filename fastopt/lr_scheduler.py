"""Learning-rate schedulers with torch.optim.lr_scheduler's names, arguments and numbers.

Each class here is torch 2.13's scheduler of the same name: the same constructor arguments and
defaults, the same learning rates step after step (torch's recursive "chainable" formulas,
evaluated in the same order of floating-point operations, so the values are bitwise torch's),
``step()``, ``get_last_lr()``, ``last_epoch``, ``state_dict()``/``load_state_dict()`` (the same
keys as torch's), and the same momentum / beta1 scheduling for `CyclicLR` and `OneCycleLR`::

    >>> import numpy as np, fastopt
    >>> w = np.zeros(3)
    >>> opt = fastopt.SGD(w, lr=0.1)
    >>> sched = fastopt.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    >>> for _ in range(50):
    ...     opt.step(np.ones(3))
    ...     sched.step()
    >>> sched.get_last_lr()
    [0.05000000000000004]

A scheduler works through ``optimizer.param_groups`` only (any object with a list of group
mappings, each with an ``"lr"`` key, will do), one learning rate per group.

Differences from torch, all on the bookkeeping side:

* torch stores its own keys in the optimizer's groups (``initial_lr``; OneCycleLR's
  ``max_lr``/``min_lr``; ``max_momentum``/``base_momentum``). fastopt's groups refuse keys
  that are no hyperparameter, so these live next to the optimizer in this module (shared, as
  torch's are, by every scheduler of the same optimizer: a second scheduler's ``base_lrs`` are
  the learning rates the optimizer had before the first one changed them). They are not part
  of the optimizer's ``state_dict``: to resume, build the schedulers afresh (``last_epoch=-1``)
  and load their state dicts, as torch's documentation recommends.
* torch wraps ``optimizer.step`` to warn when ``scheduler.step()`` is called first; fastopt
  leaves the optimizer alone and does not warn.

The built-in schedulers but `LambdaLR` and `MultiplicativeLR` (which call Python) also run in
C inside fastopt's C-level loops (``fastopt/_schedule.pyx``), with the same numbers.
"""

import math
import numbers
import threading
import types
import warnings
import weakref
from bisect import bisect_right
from collections import Counter
from functools import partial

__all__ = [
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "SequentialLR",
    "CosineAnnealingLR",
    "ChainedScheduler",
    "ReduceLROnPlateau",
    "CyclicLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
    "PolynomialLR",
    "LRScheduler",
]

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being "
    "deprecated where possible. Please use `scheduler.step()` to step the "
    "scheduler. During the deprecation, if epoch is different from None, the "
    "closed form is used instead of the new chainable form, where available."
)

# The scheduler keys torch keeps in the optimizer's groups, kept here instead: one list of
# dicts (one per group) per optimizer, shared by all its schedulers. Weak keys: an optimizer
# that goes away takes its entry with it.
_GROUP_EXTRAS = weakref.WeakKeyDictionary()
# For optimizers that cannot be weakly referenced: id -> (optimizer, extras). The entry holds
# the optimizer itself, so that its id is not reused by another object while the entry lives
# (a new optimizer at a freed id would inherit the old one's initial_lr: wrong base_lrs).
_GROUP_EXTRAS_BY_ID = {}


def _extras(optimizer):
    """The per-group scheduler keys of ``optimizer`` (a list of dicts, one per group)."""
    try:
        extras = _GROUP_EXTRAS.get(optimizer)
        if extras is None:
            extras = _GROUP_EXTRAS[optimizer] = []
    except TypeError:
        entry = _GROUP_EXTRAS_BY_ID.get(id(optimizer))
        if entry is None or entry[0] is not optimizer:
            entry = _GROUP_EXTRAS_BY_ID[id(optimizer)] = (optimizer, [])
        extras = entry[1]
    while len(extras) < len(optimizer.param_groups):
        extras.append({})
    return extras


def _check_optimizer(optimizer):
    groups = getattr(optimizer, "param_groups", None)
    if groups is None or isinstance(groups, (str, bytes)) or not hasattr(groups, "__len__"):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer (an object with "
                        f"param_groups)")
    return optimizer


def _format_param(name, optimizer, param):
    """Return correctly formatted lr/momentum for each param group."""
    if isinstance(param, (list, tuple)):
        if len(param) != len(optimizer.param_groups):
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. "
                f"{name} has {len(param)} values, param_groups has "
                f"{len(optimizer.param_groups)}.")
        for value in param:
            _check_real(name, value)
    else:
        _check_real(name, param)
        param = [param] * len(optimizer.param_groups)
    return list(param)


def _param_groups_val_list(optimizer, key):
    return [group[key] for group in optimizer.param_groups]


def _check_real(name, value, *, low=None, high=None, low_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}")
    return value


def _check_int(name, value, *, low=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return int(value)


def _check_last_epoch(last_epoch):
    return _check_int("last_epoch", last_epoch, low=-1)


def _has_momentum(optimizer):
    """Whether ``optimizer``'s groups have a momentum or betas (torch reads its defaults)."""
    group = optimizer.param_groups[0]
    return "momentum" in group or "betas" in group


_MOMENTUM_KEYS = ("momentum", "betas")


class _AtomicDepth(threading.local):
    depth = 0


_ATOMIC = _AtomicDepth()  # all-or-nothing steps under way in this thread


def _all_schedulers(scheduler):
    """``scheduler`` and, for SequentialLR / ChainedScheduler, the ones it holds (nested)."""
    found = [scheduler]
    for child in scheduler.__dict__.get("_schedulers", ()):
        found.extend(_all_schedulers(child))
    return found


def _all_or_nothing(step):
    """Wrap a scheduler's ``step`` so that a step that raises leaves everything as it was.

    A step computes the new values, then writes them into the groups one by one; a value the
    optimizer refuses (a negative or NaN lr from a lambda, a negative ``eta_min``, OneCycleLR
    run past its end, ...) would otherwise leave ``last_epoch`` advanced and some groups
    changed. The scheduler's attributes (those of the schedulers it holds too) and the
    groups' scheduled keys are saved first and put back on an exception.
    """
    def wrapped(self, *args, **kwargs):
        if _ATOMIC.depth:  # inside a composite's step, which saved this scheduler too
            return step(self, *args, **kwargs)
        attributes = self.__dict__
        if "_schedulers" in attributes:
            schedulers = _all_schedulers(self)
            saved = [(sched, dict(sched.__dict__)) for sched in schedulers]
            cycling = any(sched.__dict__.get("cycle_momentum") for sched in schedulers)
        else:  # (the common case, kept cheap: this runs at every step)
            saved = ((self, attributes.copy()),)
            cycling = attributes.get("cycle_momentum")
        groups = self.optimizer.param_groups
        lrs = [group["lr"] for group in groups]
        # (the momentum / betas only where a scheduler cycles them: a step reads the rest)
        moments = ([{key: group[key] for key in _MOMENTUM_KEYS if key in group}
                    for group in groups] if cycling else None)
        _ATOMIC.depth += 1
        try:
            return step(self, *args, **kwargs)
        except BaseException:
            for sched, old in saved:
                sched.__dict__.clear()
                sched.__dict__.update(old)
            for i, (group, lr) in enumerate(zip(groups, lrs)):
                if group["lr"] != lr:
                    group["lr"] = lr
                for key, value in (moments[i].items() if moments else ()):
                    if group[key] != value:
                        group[key] = value
            raise
        finally:
            _ATOMIC.depth -= 1

    wrapped.__name__, wrapped.__qualname__ = step.__name__, step.__qualname__
    wrapped.__doc__, wrapped.__wrapped__ = step.__doc__, step
    return wrapped


def _all_or_nothing_init(init):
    """Wrap a scheduler's ``__init__`` so that a constructor that raises leaves the optimizer
    as it was: its groups' lr / momentum / betas (a constructor sets the schedule's first
    values) and the scheduler keys it records for the optimizer (``initial_lr``, ``max_lr``,
    ...: left behind, a later scheduler of the optimizer would start from them)."""
    def wrapped(self, *args, **kwargs):
        optimizer = kwargs.get("optimizer", args[0] if args else None)
        groups = getattr(optimizer, "param_groups", None)
        if _ATOMIC.depth or groups is None or isinstance(groups, (str, bytes)):
            return init(self, *args, **kwargs)  # (a bad optimizer: init raises TypeError)
        try:
            groups = list(groups)
            values = [{key: group[key] for key in ("lr", *_MOMENTUM_KEYS) if key in group}
                      for group in groups]
            extras = _extras(optimizer)
        except Exception:  # a malformed optimizer: init says what is wrong with it
            return init(self, *args, **kwargs)
        saved_extras = [dict(extra) for extra in extras]
        _ATOMIC.depth += 1
        try:
            return init(self, *args, **kwargs)
        except BaseException:
            extras[:] = saved_extras
            for group, old in zip(groups, values):
                for key, value in old.items():
                    if group[key] != value:
                        group[key] = value
            raise
        finally:
            _ATOMIC.depth -= 1

    wrapped.__name__, wrapped.__qualname__ = init.__name__, init.__qualname__
    wrapped.__doc__, wrapped.__wrapped__ = init.__doc__, init
    return wrapped


class LRScheduler:
    r"""Base class of the learning-rate schedulers (torch.optim.lr_scheduler.LRScheduler).

    Subclasses implement `get_lr` (the next learning rate of each group, from the current
    ones or in closed form) and may override `step`.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer whose ``param_groups[i]["lr"]`` the scheduler sets.
    last_epoch : int, default=-1
        Index of the last step taken; ``-1`` starts the schedule. Another value resumes one,
        and needs the schedule's initial learning rates, which an earlier scheduler of the
        same optimizer has recorded (else ``KeyError``, as torch).

    Notes
    -----
    Building a scheduler sets the optimizer's learning rates to the schedule's first value.
    """

    _get_lr_called_within_step = False
    _is_initial = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:  # every step, torch's or a user's override: all or nothing
            cls.step = _all_or_nothing(cls.__dict__["step"])
        if "__init__" in cls.__dict__:  # and every constructor
            cls.__init__ = _all_or_nothing_init(cls.__dict__["__init__"])

    def __init__(self, optimizer, last_epoch=-1):
        _check_optimizer(optimizer)
        last_epoch = _check_last_epoch(last_epoch)
        self.optimizer = optimizer
        extras = _extras(optimizer)
        if last_epoch == -1:
            for group, extra in zip(optimizer.param_groups, extras):
                extra.setdefault("initial_lr", group["lr"])
        else:
            for i, extra in enumerate(extras):
                if "initial_lr" not in extra:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when "
                        "resuming scheduler with last_epoch >= 0: build the scheduler with "
                        "last_epoch=-1 and load its state_dict instead")
        self.base_lrs = [extra["initial_lr"] for extra in extras]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        """Initialize step counts and perform a step."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def state_dict(self):
        """The scheduler's state: every attribute but the optimizer (torch's keys).

        Returns
        -------
        dict
        """
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Load a state made by `state_dict` (this class's, or torch's same scheduler's).

        Parameters
        ----------
        state_dict : dict
        """
        self.__dict__.update(state_dict)

    def get_last_lr(self):
        """The learning rates of the last step, one per group (a new list).

        Returns
        -------
        list of float
        """
        return list(self._last_lr)

    def get_lr(self):
        """The next learning rate of each group (called by `step`).

        Returns
        -------
        list of float
        """
        raise NotImplementedError

    def step(self, epoch=None):
        """Advance the schedule by one step and set the groups' learning rates.

        Parameters
        ----------
        epoch : int, optional
            Deprecated (as in torch): jump to this step, in closed form where there is one.
        """
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=3)
        self._update_lr(epoch)

    def _update_lr(self, epoch=None):
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                if hasattr(self, "_get_closed_form_lr"):
                    values = self._get_closed_form_lr()
                else:
                    values = self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        self._set_lrs(values)

    def _set_lrs(self, values):
        """Set the groups' learning rates to ``values`` (one per group, as torch's strict
        zip: a group added since the scheduler was built is an error, not left behind)."""
        groups = self.optimizer.param_groups  # (live mappings: read once per step)
        if len(values) != len(groups):
            raise ValueError(f"{type(self).__name__} computed {len(values)} learning rates "
                             f"for {len(groups)} param groups")
        for group, lr in zip(groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in groups]

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={getattr(self, 'last_epoch', None)})"


LRScheduler.step = _all_or_nothing(LRScheduler.step)
LRScheduler.__init__ = _all_or_nothing_init(LRScheduler.__init__)


def _warn_get_lr_called_within_step(lr_scheduler):
    if not lr_scheduler._get_lr_called_within_step:
        warnings.warn("To get the last learning rate computed by the scheduler, "
                      "please use `get_last_lr()`.", UserWarning, stacklevel=3)


def _lambda_list(optimizer, lr_lambda):
    if not isinstance(lr_lambda, (list, tuple)):
        lambdas = [lr_lambda] * len(optimizer.param_groups)
    else:
        if len(lr_lambda) != len(optimizer.param_groups):
            raise ValueError(f"Expected {len(optimizer.param_groups)} lr_lambdas, but got "
                             f"{len(lr_lambda)}")
        lambdas = list(lr_lambda)
    for fn in lambdas:
        if not callable(fn):
            raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
    return lambdas


class _LambdaStateMixin:
    # torch saves the __dict__ of callable objects, never functions.
    def state_dict(self):
        state_dict = {key: value for key, value in self.__dict__.items()
                      if key not in ("optimizer", "lr_lambdas")}
        state_dict["lr_lambdas"] = [None] * len(self.lr_lambdas)
        for idx, fn in enumerate(self.lr_lambdas):
            if not isinstance(fn, types.FunctionType):
                state_dict["lr_lambdas"][idx] = fn.__dict__.copy()
        return state_dict

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        lr_lambdas = state_dict.pop("lr_lambdas")
        self.__dict__.update(state_dict)
        for idx, fn in enumerate(lr_lambdas):
            if fn is not None:
                self.lr_lambdas[idx].__dict__.update(fn)


class LambdaLR(_LambdaStateMixin, LRScheduler):
    r"""Each group's learning rate is its initial one times ``lr_lambda(step)``.

    .. math:: \eta_t = \eta_0 \, \lambda(t)

    Parameters
    ----------
    optimizer : Optimizer
    lr_lambda : callable or list of callable
        ``lr_lambda(step) -> float``, or one per group.
    last_epoch : int, default=-1

    Notes
    -----
    Runs Python at every step, so fastopt's C loops take the GIL for it.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> opt = fastopt.SGD(np.zeros(2), lr=1.0)
    >>> sched = fastopt.lr_scheduler.LambdaLR(opt, lambda k: 0.5 ** k)
    >>> sched.step(); sched.get_last_lr()
    [0.5]
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        self.lr_lambdas = _lambda_list(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_get_lr_called_within_step(self)
        return [base_lr * lmbda(self.last_epoch)
                for lmbda, base_lr in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_LambdaStateMixin, LRScheduler):
    r"""Each step multiplies each group's learning rate by ``lr_lambda(step)``.

    .. math:: \eta_t = \eta_{t-1} \, \lambda(t)

    Parameters
    ----------
    optimizer : Optimizer
    lr_lambda : callable or list of callable
        ``lr_lambda(step) -> float``, or one per group.
    last_epoch : int, default=-1

    Notes
    -----
    Runs Python at every step, so fastopt's C loops take the GIL for it.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> opt = fastopt.SGD(np.zeros(2), lr=1.0)
    >>> sched = fastopt.lr_scheduler.MultiplicativeLR(opt, lambda k: 0.5)
    >>> sched.step(); sched.step(); sched.get_last_lr()
    [0.25]
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        self.lr_lambdas = _lambda_list(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_get_lr_called_within_step(self)
        if not self._is_initial:
            return [group["lr"] * lmbda(self.last_epoch)
                    for lmbda, group in zip(self.lr_lambdas, self.optimizer.param_groups)]
        return _param_groups_val_list(self.optimizer, "lr")


class StepLR(LRScheduler):
    r"""Multiply each group's learning rate by ``gamma`` every ``step_size`` steps.

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        Period of the decay, >= 1.
    gamma : float, default=0.1
    last_epoch : int, default=-1

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> opt = fastopt.SGD(np.zeros(2), lr=1.0)
    >>> sched = fastopt.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    >>> for _ in range(4): sched.step()
    >>> sched.get_last_lr()
    [0.25]
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = _check_int("step_size", step_size, low=1)
        self.gamma = _check_real("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_get_lr_called_within_step(self)
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _param_groups_val_list(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    r"""Multiply each group's learning rate by ``gamma`` at each milestone (step index).

    Parameters
    ----------
    optimizer : Optimizer
    milestones : iterable of int
        Steps at which to decay; a milestone given twice decays by ``gamma**2``.
    gamma : float, default=0.1
    last_epoch : int, default=-1

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> opt = fastopt.SGD(np.zeros(2), lr=1.0)
    >>> sched = fastopt.lr_scheduler.MultiStepLR(opt, milestones=[1, 3], gamma=0.5)
    >>> for _ in range(3): sched.step()
    >>> sched.get_last_lr()
    [0.25]
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        try:
            milestones = list(milestones)
        except TypeError:
            raise TypeError(f"milestones must be an iterable of integers, got "
                            f"{milestones!r}") from None
        self.milestones = Counter(_check_int("milestones", m) for m in milestones)
        self.gamma = _check_real("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_get_lr_called_within_step(self)
        if self.last_epoch not in self.milestones:
            return _param_groups_val_list(self.optimizer, "lr")
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch]
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch)
                for base_lr in self.base_lrs]


class ConstantLR(LRScheduler):
    r"""Multiply each group's learning rate by ``factor`` for the first ``total_iters`` steps.

    Parameters
    ----------
    optimizer : Optimizer
    factor : float, default=1/3
        In [0, 1].
    total_iters : int, default=5
    last_epoch : int, default=-1

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> opt = fastopt.SGD(np.zeros(2), lr=1.0)
    >>> sched = fastopt.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=2)
    >>> sched.get_last_lr(), [sched.step(), sched.step(), sched.get_last_lr()][2]
    ([0.5], [1.0])
    """

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        _check_real("factor", factor)
        if factor > 1.0 or factor < 0:
            raise ValueError(f"Constant multiplicative factor expected to be between 0 and 1, "
                             f"got factor={factor!r}")
        self.factor = factor
        self.total_iters = _check_int("total_iters", total_iters, low=0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_get_lr_called_within_step(self)
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return _param_groups_val_list(self.optimizer, "lr")
        return [group["lr"] * (1.0 / self.factor) for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * (self.factor
                           + (self.last_epoch >= self.total_iters) * (1 - self.factor))
                for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    r"""Scale each group's learning rate linearly from ``start_factor`` to ``end_factor``
    over ``total_iters`` steps.

    Parameters
    ----------
    optimizer : Optimizer
    start_factor : float, default=1/3
        In (0, 1].
    end_factor : float, default=1.0
        In [0, 1].
    total_iters : int, default=5
    last_epoch : int, default=-1

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> opt = fastopt.SGD(np.zeros(2), lr=1.0)
    >>> sched = fastopt.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
    >>> sched.step(); sched.get_last_lr()
    [0.75]
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        _check_real("start_factor", start_factor)
        _check_real("end_factor", end_factor)
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError("Starting multiplicative factor expected to be greater than 0 and "
                             f"less or equal to 1, got start_factor={start_factor!r}")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1, "
                             f"got end_factor={end_factor!r}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = _check_int("total_iters", total_iters, low=0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_get_lr_called_within_step(self)
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return _param_groups_val_list(self.optimizer, "lr")
        return [group["lr"] * (1.0 + (self.end_factor - self.start_factor)
                               / (self.total_iters * self.start_factor
                                  + (self.last_epoch - 1)
                                  * (self.end_factor - self.start_factor)))
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * (self.start_factor
                           + (self.end_factor - self.start_factor)
                           * min(self.total_iters, self.last_epoch) / self.total_iters)
                for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    r"""Multiply each group's learning rate by ``gamma`` at every step.

    Parameters
    ----------
    optimizer : Optimizer
    gamma : float
    last_epoch : int, default=-1

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> opt = fastopt.SGD(np.zeros(2), lr=1.0)
    >>> sched = fastopt.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    >>> sched.step(); sched.step(); sched.get_last_lr()
    [0.25]
    """

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = _check_real("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_get_lr_called_within_step(self)
        if self._is_initial:
            return _param_groups_val_list(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class SequentialLR(LRScheduler):
    r"""Run ``schedulers`` one after the other, switching at the ``milestones``.

    Parameters
    ----------
    optimizer : Optimizer
    schedulers : list of LRScheduler
        Schedulers of ``optimizer`` (not `ReduceLROnPlateau`).
    milestones : list of int
        ``len(schedulers) - 1`` steps at which the next scheduler takes over (restarted at
        its step 0).
    last_epoch : int, default=-1

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> from fastopt import lr_scheduler as ls
    >>> opt = fastopt.SGD(np.zeros(2), lr=1.0)
    >>> warm = ls.LinearLR(opt, start_factor=0.1, total_iters=5)
    >>> cos = ls.CosineAnnealingLR(opt, T_max=95)
    >>> sched = ls.SequentialLR(opt, [warm, cos], milestones=[5])
    >>> sched.get_last_lr()
    [0.1]
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        _check_optimizer(optimizer)
        last_epoch = _check_last_epoch(last_epoch)
        schedulers = list(schedulers)
        if len(schedulers) < 1:
            raise ValueError(f"{self.__class__.__name__} expects at least one scheduler, but "
                             "got no scheduler.")
        _check_children(type(self).__name__, schedulers, optimizer)
        milestones = [_check_int("milestones", m) for m in milestones]
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more "
                f"than the number of milestone points, but got number of schedulers "
                f"{len(schedulers)} and the number of milestones to be equal to "
                f"{len(milestones)}")
        extras = _extras(optimizer)
        for i, extra in enumerate(extras):
            if "initial_lr" not in extra:
                raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}]: "
                               "build the schedulers first")
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        # Reset learning rates back to initial values
        for group, extra in zip(self.optimizer.param_groups, extras):
            group["lr"] = extra["initial_lr"]
        # "Undo" the step performed by other schedulers
        self.recursive_undo()
        # Perform the initial step for only the first scheduler
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = schedulers[idx].get_last_lr()

    def recursive_undo(self, sched=None):
        """Take back the initial step of every (nested) scheduler."""
        scheds = self if sched is None else sched
        if hasattr(scheds, "_schedulers"):
            for s in scheds._schedulers:
                self.recursive_undo(s)
        elif hasattr(scheds, "last_epoch"):
            scheds.last_epoch -= 1

    def step(self):
        """Step the scheduler in charge at this step (restarting it at a milestone)."""
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        state_dict = {key: value for key, value in self.__dict__.items()
                      if key not in ("optimizer", "_schedulers")}
        state_dict["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state_dict

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        _schedulers = state_dict.pop("_schedulers")
        self.__dict__.update(state_dict)
        for idx, s in enumerate(_schedulers):
            self._schedulers[idx].load_state_dict(s)


class PolynomialLR(LRScheduler):
    r"""Decay each group's learning rate as :math:`(1 - t/T)^{p}` over ``total_iters`` steps.

    Parameters
    ----------
    optimizer : Optimizer
    total_iters : int, default=5
    power : float, default=1.0
    last_epoch : int, default=-1

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> opt = fastopt.SGD(np.zeros(2), lr=1.0)
    >>> sched = fastopt.lr_scheduler.PolynomialLR(opt, total_iters=4, power=1.0)
    >>> sched.step(); sched.get_last_lr()
    [0.75]
    """

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        self.total_iters = _check_int("total_iters", total_iters, low=0)
        self.power = _check_real("power", power)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_get_lr_called_within_step(self)
        if self._is_initial or self.last_epoch > self.total_iters:
            return _param_groups_val_list(self.optimizer, "lr")
        decay_factor = ((1.0 - self.last_epoch / self.total_iters)
                        / (1.0 - (self.last_epoch - 1) / self.total_iters)) ** self.power
        return [group["lr"] * decay_factor for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters)
                ** self.power for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from each group's initial learning rate down to ``eta_min``.

    .. math:: \eta_t = \eta_{min} + \tfrac12(\eta_{max} - \eta_{min})
              \left(1 + \cos\tfrac{t\pi}{T_{max}}\right)

    computed, as torch does, by the recursive form (each step from the previous learning
    rate), which follows the formula while nothing else changes the learning rate.

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int
        Half period, > 0 (after ``T_max`` steps the rate climbs back).
    eta_min : float, default=0.0
    last_epoch : int, default=-1

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> opt = fastopt.SGD(np.zeros(2), lr=1.0)
    >>> sched = fastopt.lr_scheduler.CosineAnnealingLR(opt, T_max=2)
    >>> sched.step(); sched.get_last_lr()
    [0.5]
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = _check_real("T_max", T_max, low=0, low_open=True)
        self.eta_min = _check_real("eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_get_lr_called_within_step(self)
        if self._is_initial:
            return _param_groups_val_list(self.optimizer, "lr")
        elif self._step_count == 1 and self.last_epoch > 0:
            return [self.eta_min + (base_lr - self.eta_min)
                    * (1 + math.cos(self.last_epoch * math.pi / self.T_max)) / 2
                    for base_lr in self.base_lrs]
        elif (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [group["lr"] + (base_lr - self.eta_min)
                    * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups)]
        return [(1 + math.cos(math.pi * self.last_epoch / self.T_max))
                / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
                * (group["lr"] - self.eta_min) + self.eta_min
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class ChainedScheduler(LRScheduler):
    r"""Step several schedulers of one optimizer together, their effects multiplied.

    Parameters
    ----------
    schedulers : sequence of LRScheduler
        Not `ReduceLROnPlateau`.
    optimizer : Optimizer, optional
        Defaults to the first scheduler's.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> from fastopt import lr_scheduler as ls
    >>> opt = fastopt.SGD(np.zeros(2), lr=1.0)
    >>> sched = ls.ChainedScheduler([ls.ConstantLR(opt, factor=0.5, total_iters=2),
    ...                              ls.ExponentialLR(opt, gamma=0.5)])
    >>> sched.step(); sched.get_last_lr()
    [0.25]
    """

    def __init__(self, schedulers, optimizer=None):
        schedulers = list(schedulers)
        if len(schedulers) < 1:
            raise ValueError(f"{self.__class__.__name__} expects at least one scheduler to be "
                             "chained, but got no scheduler.")
        if optimizer is None:
            if not hasattr(schedulers[0], "optimizer"):
                raise TypeError(f"{self.__class__.__name__} at index 0 should have "
                                "`optimizer` as its attribute.")
            optimizer = schedulers[0].optimizer
        _check_optimizer(optimizer)
        _check_children(type(self).__name__, schedulers, optimizer)
        self._schedulers = schedulers
        self.optimizer = optimizer
        self._last_lr = _param_groups_val_list(self._schedulers[-1].optimizer, "lr")

    def step(self):
        """Step every scheduler, in order."""
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = _param_groups_val_list(self._schedulers[-1].optimizer, "lr")

    def state_dict(self):
        state_dict = {key: value for key, value in self.__dict__.items()
                      if key not in ("optimizer", "_schedulers")}
        state_dict["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state_dict

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        _schedulers = state_dict.pop("_schedulers")
        self.__dict__.update(state_dict)
        for idx, s in enumerate(_schedulers):
            self._schedulers[idx].load_state_dict(s)


class ReduceLROnPlateau(LRScheduler):
    r"""Multiply the learning rates by ``factor`` when a metric stops improving.

    Parameters
    ----------
    optimizer : Optimizer
    mode : {"min", "max"}, default="min"
        Whether the metric should decrease or increase.
    factor : float, default=0.1
        < 1.
    patience : int, default=10
        Steps without improvement tolerated before a reduction.
    threshold : float, default=1e-4
    threshold_mode : {"rel", "abs"}, default="rel"
    cooldown : int, default=0
        Steps after a reduction before counting bad steps again.
    min_lr : float or list of float, default=0
    eps : float, default=1e-8
        A reduction smaller than this is skipped.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> opt = fastopt.SGD(np.zeros(2), lr=1.0)
    >>> sched = fastopt.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    >>> for f in [3.0, 2.0, 2.0, 2.0]: sched.step(f)
    >>> sched.get_last_lr()
    [0.5]
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        _check_optimizer(optimizer)
        _check_real("factor", factor)
        if factor >= 1.0:
            raise ValueError(f"Factor should be < 1.0, got factor={factor!r}")
        patience = _check_int("patience", patience, low=0)
        cooldown = _check_int("cooldown", cooldown, low=0)
        _check_real("threshold", threshold)
        _check_real("eps", eps)
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode!r} is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode!r} is unknown!")
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(f"expected {len(optimizer.param_groups)} min_lrs, got "
                                 f"{len(min_lr)}")
            for value in min_lr:
                _check_real("min_lr", value)
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            _check_real("min_lr", min_lr)
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.factor = factor
        self.optimizer = optimizer
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = _param_groups_val_list(self.optimizer, "lr")
        self._init_is_better(mode=mode, threshold=threshold, threshold_mode=threshold_mode)
        self._reset()

    def _reset(self):
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics, epoch=None):
        """Take one step with the current value of the metric.

        Parameters
        ----------
        metrics : float
        epoch : int, optional
            Deprecated (as in torch).
        """
        current = float(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=3)
        self.last_epoch = epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr(epoch)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = _param_groups_val_list(self.optimizer, "lr")

    def _reduce_lr(self, epoch):
        if len(self.optimizer.param_groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"The number of param groups in the `optimizer` "
                    f"({len(self.optimizer.param_groups)}) differs from when "
                    f"`ReduceLROnPlateau` was initialized ({len(self.min_lrs)}), usually due "
                    "to a new param group being added to the optimizer. Please modify the "
                    "`min_lrs` field to match the length of the `optimizer` param groups.")
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
        for i, param_group in enumerate(self.optimizer.param_groups):
            old_lr = float(param_group["lr"])
            new_lr = max(old_lr * self.factor, self.min_lrs[i])
            if old_lr - new_lr > self.eps:
                param_group["lr"] = new_lr

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def _is_better(self, a, best):
        if self.mode == "min" and self.threshold_mode == "rel":
            rel_epsilon = 1.0 - self.threshold
            return a < best * rel_epsilon
        elif self.mode == "min" and self.threshold_mode == "abs":
            return a < best - self.threshold
        elif self.mode == "max" and self.threshold_mode == "rel":
            rel_epsilon = self.threshold + 1.0
            return a > best * rel_epsilon
        else:
            return a > best + self.threshold

    def _init_is_better(self, mode, threshold, threshold_mode):
        if mode not in {"min", "max"}:
            raise ValueError(f"mode {mode!r} is unknown!")
        if threshold_mode not in {"rel", "abs"}:
            raise ValueError(f"threshold mode {threshold_mode!r} is unknown!")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)
        self._init_is_better(mode=self.mode, threshold=self.threshold,
                             threshold_mode=self.threshold_mode)


class CyclicLR(LRScheduler):
    r"""Cyclical learning rate (Smith 2017): between ``base_lr`` and ``max_lr`` in cycles,
    the momentum (or Adam's beta1) cycled the opposite way.

    Parameters
    ----------
    optimizer : Optimizer
    base_lr, max_lr : float or list of float
        The cycle's bounds (one per group, or one for all).
    step_size_up : int, default=2000
    step_size_down : int, optional
        Defaults to ``step_size_up``.
    mode : {"triangular", "triangular2", "exp_range"}, default="triangular"
    gamma : float, default=1.0
        ``exp_range``'s decay per step.
    scale_fn : callable, optional
        A custom amplitude ``scale_fn(x)`` (overrides ``mode``; runs Python at every step).
    scale_mode : {"cycle", "iterations"}, default="cycle"
    cycle_momentum : bool, default=True
        Also cycle the groups' ``momentum`` (or ``betas[0]``) between ``max_momentum`` and
        ``base_momentum``; the optimizer must have one.
    base_momentum, max_momentum : float or list of float, default=0.8, 0.9
    last_epoch : int, default=-1

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> opt = fastopt.SGD(np.zeros(2), lr=0.1, momentum=0.9)
    >>> sched = fastopt.lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=2)
    >>> sched.step(); sched.get_last_lr(), opt.param_groups[0]["momentum"]
    ([0.05500000000000001], 0.8500000000000001)
    """

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None,
                 mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle",
                 cycle_momentum=True, base_momentum=0.8, max_momentum=0.9, last_epoch=-1):
        _check_optimizer(optimizer)
        last_epoch = _check_last_epoch(last_epoch)
        base_lrs = _format_param("base_lr", optimizer, base_lr)
        max_lrs = _format_param("max_lr", optimizer, max_lr)
        _check_real("step_size_up", step_size_up, low=0, low_open=True)
        if step_size_down is not None:
            _check_real("step_size_down", step_size_down, low=0)
        if mode not in ["triangular", "triangular2", "exp_range"] and scale_fn is None:
            raise ValueError(f"mode is invalid and scale_fn is None: mode={mode!r}")
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError(f"scale_fn must be callable, got {scale_fn!r}")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
        _check_real("gamma", gamma)
        if cycle_momentum:
            if not _has_momentum(optimizer):
                raise ValueError("optimizer must support momentum or beta1 with "
                                 "`cycle_momentum` option enabled")
            base_momentums = _format_param("base_momentum", optimizer, base_momentum)
            max_momentums = _format_param("max_momentum", optimizer, max_momentum)
        self.optimizer = optimizer
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
        self.max_lrs = max_lrs
        step_size_up = float(step_size_up)
        step_size_down = float(step_size_down) if step_size_down is not None else step_size_up
        self.total_size = step_size_up + step_size_down
        self.step_ratio = step_size_up / self.total_size
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._init_scale_fn()
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = "betas" in optimizer.param_groups[0]
            self.base_momentums = base_momentums
            self.max_momentums = max_momentums
            if last_epoch == -1:
                for m_momentum, b_momentum, group, extra in zip(
                        self.max_momentums, self.base_momentums, optimizer.param_groups,
                        _extras(optimizer)):
                    if self.use_beta1:
                        group["betas"] = (m_momentum, *group["betas"][1:])
                    else:
                        group["momentum"] = m_momentum
                    extra["max_momentum"] = m_momentum
                    extra["base_momentum"] = b_momentum
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _init_scale_fn(self):
        if self._scale_fn_custom is not None:
            return
        if self.mode == "triangular":
            self._scale_fn_ref = self._triangular_scale_fn
            self.scale_mode = "cycle"
        elif self.mode == "triangular2":
            self._scale_fn_ref = self._triangular2_scale_fn
            self.scale_mode = "cycle"
        elif self.mode == "exp_range":
            self._scale_fn_ref = partial(self._exp_range_scale_fn, self.gamma)
            self.scale_mode = "iterations"

    def scale_fn(self, x):
        """The cycle's amplitude factor at ``x`` (a cycle or a step, by ``scale_mode``)."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        return self._scale_fn_ref(x)

    @staticmethod
    def _triangular_scale_fn(x):
        return 1.0

    @staticmethod
    def _triangular2_scale_fn(x):
        return 1 / (2.0 ** (x - 1))

    @staticmethod
    def _exp_range_scale_fn(gamma, x):
        return gamma ** x

    def get_lr(self):
        _warn_get_lr_called_within_step(self)
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        lrs = []
        for base_lr, max_lr in zip(self.base_lrs, self.max_lrs):
            base_height = (max_lr - base_lr) * scale_factor
            if self.scale_mode == "cycle":
                lr = base_lr + base_height * self.scale_fn(cycle)
            else:
                lr = base_lr + base_height * self.scale_fn(self.last_epoch)
            lrs.append(lr)
        if self.cycle_momentum:
            momentums = []
            for base_momentum, max_momentum in zip(self.base_momentums, self.max_momentums):
                base_height = (max_momentum - base_momentum) * scale_factor
                if self.scale_mode == "cycle":
                    momentum = max_momentum - base_height * self.scale_fn(cycle)
                else:
                    momentum = max_momentum - base_height * self.scale_fn(self.last_epoch)
                momentums.append(momentum)
            for param_group, momentum in zip(self.optimizer.param_groups, momentums):
                if self.use_beta1:
                    param_group["betas"] = (momentum, *param_group["betas"][1:])
                else:
                    param_group["momentum"] = momentum
        return lrs

    def state_dict(self):
        state = super().state_dict()
        state.pop("_scale_fn_ref", None)
        fn = state.pop("_scale_fn_custom")
        state["_scale_fn_custom"] = None
        if fn is not None and not isinstance(fn, types.FunctionType):
            state["_scale_fn_custom"] = fn.__dict__.copy()
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        fn = state_dict.pop("_scale_fn_custom")
        super().load_state_dict(state_dict)
        if fn is not None:
            self._scale_fn_custom.__dict__.update(fn)
        self._init_scale_fn()


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing with warm restarts (SGDR): periods ``T_0``, ``T_0*T_mult``, ...

    Parameters
    ----------
    optimizer : Optimizer
    T_0 : int
        First period, >= 1.
    T_mult : int, default=1
        Growth of the period at each restart, >= 1.
    eta_min : float, default=0.0
    last_epoch : int, default=-1

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> opt = fastopt.SGD(np.zeros(2), lr=1.0)
    >>> sched = fastopt.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2)
    >>> [sched.step() or sched.get_last_lr()[0] for _ in range(3)]
    [0.5, 1.0, 0.5]
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if isinstance(eta_min, bool) or not isinstance(eta_min, (float, int)):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min} of type "
                             f"{type(eta_min)}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = _check_last_epoch(last_epoch)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        _warn_get_lr_called_within_step(self)
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base_lr in self.base_lrs]

    def step(self, epoch=None):
        """Step to the next (or the given, possibly fractional) epoch.

        Parameters
        ----------
        epoch : float, optional
        """
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** (n)
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self._get_lr_called_within_step = True
        try:
            values = self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        self._set_lrs(values)


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin 2018): warm up to ``max_lr``, anneal far below the
    start, the momentum (or beta1) cycled the opposite way.

    Parameters
    ----------
    optimizer : Optimizer
    max_lr : float or list of float
    total_steps : int, optional
        Or ``epochs * steps_per_epoch``. Stepping past it raises ``ValueError``.
    epochs, steps_per_epoch : int, optional
    pct_start : float, default=0.3
        Fraction of the steps spent warming up.
    anneal_strategy : {"cos", "linear"}, default="cos"
    cycle_momentum : bool, default=True
    base_momentum, max_momentum : float or list of float, default=0.85, 0.95
    div_factor : float, default=25.0
        The initial learning rate is ``max_lr / div_factor``.
    final_div_factor : float, default=1e4
        The last one is the initial one divided by this.
    three_phase : bool, default=False
    last_epoch : int, default=-1

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> opt = fastopt.Adam(np.zeros(2))
    >>> sched = fastopt.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100)
    >>> sched.get_last_lr(), opt.param_groups[0]["betas"]
    ([0.0040000000000000036], (0.95, 0.999))
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True,
                 base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
                 final_div_factor=1e4, three_phase=False, last_epoch=-1):
        _check_optimizer(optimizer)
        last_epoch = _check_last_epoch(last_epoch)
        if total_steps is not None:
            if isinstance(total_steps, bool) or not isinstance(total_steps, int) \
                    or total_steps <= 0:
                raise ValueError(f"Expected positive integer total_steps, but got "
                                 f"{total_steps}")
            total = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) \
                    or steps_per_epoch <= 0:
                raise ValueError(f"Expected positive integer steps_per_epoch, but got "
                                 f"{steps_per_epoch}")
            total = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND "
                             "steps_per_epoch)")
        if isinstance(pct_start, bool) or not isinstance(pct_start, float) \
                or pct_start < 0 or pct_start > 1:
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError("anneal_strategy must be one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        max_lrs = _format_param("max_lr", optimizer, max_lr)
        _check_real("div_factor", div_factor)
        _check_real("final_div_factor", final_div_factor)
        if cycle_momentum:
            if not _has_momentum(optimizer):
                raise ValueError("optimizer must support momentum or beta1 with "
                                 "`cycle_momentum` option enabled")
            max_momentums = _format_param("max_momentum", optimizer, max_momentum)
            base_momentums = _format_param("base_momentum", optimizer, base_momentum)
        self.optimizer = optimizer
        self.total_steps = total
        if three_phase:
            self._schedule_phases = [
                {"end_step": float(pct_start * self.total_steps) - 1,
                 "start_lr": "initial_lr", "end_lr": "max_lr",
                 "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": float(2 * pct_start * self.total_steps) - 2,
                 "start_lr": "max_lr", "end_lr": "initial_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
                {"end_step": self.total_steps - 1,
                 "start_lr": "initial_lr", "end_lr": "min_lr",
                 "start_momentum": "max_momentum", "end_momentum": "max_momentum"},
            ]
        else:
            self._schedule_phases = [
                {"end_step": float(pct_start * self.total_steps) - 1,
                 "start_lr": "initial_lr", "end_lr": "max_lr",
                 "start_momentum": "max_momentum", "end_momentum": "base_momentum"},
                {"end_step": self.total_steps - 1,
                 "start_lr": "max_lr", "end_lr": "min_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
            ]
        self._anneal_func_type = anneal_strategy
        extras = _extras(optimizer)
        # Read at every step: kept here too, so that a pickled scheduler has them (its state
        # dict leaves them out, as torch's, whose groups hold them).
        self._group_keys = extras
        if last_epoch == -1:
            for idx, extra in enumerate(extras):
                extra["initial_lr"] = max_lrs[idx] / div_factor
                extra["max_lr"] = max_lrs[idx]
                extra["min_lr"] = extra["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if self.cycle_momentum:
            self.use_beta1 = "betas" in optimizer.param_groups[0]
            if last_epoch == -1:
                for m_momentum, b_momentum, group, extra in zip(
                        max_momentums, base_momentums, optimizer.param_groups, extras):
                    if self.use_beta1:
                        group["betas"] = (m_momentum, *group["betas"][1:])
                    else:
                        group["momentum"] = m_momentum
                    extra["max_momentum"] = m_momentum
                    extra["base_momentum"] = b_momentum
        super().__init__(optimizer, last_epoch)

    def state_dict(self):
        state = super().state_dict()
        state.pop("_group_keys", None)
        return state

    def _anneal_func(self, *args, **kwargs):
        if self._anneal_func_type == "cos":
            return self._annealing_cos(*args, **kwargs)
        return self._annealing_linear(*args, **kwargs)

    @staticmethod
    def _annealing_cos(start, end, pct):
        """Cosine anneal from ``start`` to ``end`` as ``pct`` goes from 0.0 to 1.0."""
        cos_out = math.cos(math.pi * pct) + 1
        return end + (start - end) / 2.0 * cos_out

    @staticmethod
    def _annealing_linear(start, end, pct):
        """Linearly anneal from ``start`` to ``end`` as ``pct`` goes from 0.0 to 1.0."""
        return (end - start) * pct + start

    def get_lr(self):
        _warn_get_lr_called_within_step(self)
        lrs = []
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(f"Tried to step {step_num} times. The specified number of total "
                             f"steps is {self.total_steps}")
        for group, extra in zip(self.optimizer.param_groups, self._group_keys):
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step_num - start_step) / (end_step - start_step)
                    computed_lr = self._anneal_func(extra[phase["start_lr"]],
                                                    extra[phase["end_lr"]], pct)
                    if self.cycle_momentum:
                        computed_momentum = self._anneal_func(
                            extra[phase["start_momentum"]], extra[phase["end_momentum"]], pct)
                    break
                start_step = phase["end_step"]
            lrs.append(computed_lr)
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (computed_momentum, *group["betas"][1:])
                else:
                    group["momentum"] = computed_momentum
        return lrs


def _check_children(owner, schedulers, optimizer):
    """The checks (and torch's messages) of SequentialLR's and ChainedScheduler's children:
    schedulers of ``optimizer``, none of them a ReduceLROnPlateau."""
    for scheduler_idx, scheduler in enumerate(schedulers):
        if not hasattr(scheduler, "optimizer"):
            raise TypeError(f"{owner} at index {scheduler_idx} should have `optimizer` as its "
                            "attribute.")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(
                f"{owner} does not support `ReduceLROnPlateau` scheduler as it requires "
                "additional kwargs to be specified when calling `step`, but got one at index "
                f"{scheduler_idx} in the given schedulers sequence.")
        if optimizer is not scheduler.optimizer:
            raise ValueError(
                f"{owner} expects all schedulers to belong to the same optimizer, but got "
                f"scheduler {scheduler.__class__.__name__} at index {scheduler_idx} has "
                f"{scheduler.optimizer}, which is different from "
                f"{optimizer.__class__.__name__}.")
