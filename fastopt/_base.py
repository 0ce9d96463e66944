"""The Optimizer base class: validation, lazy state, the ``step`` template, state dicts.

A subclass declares its state slots and supplies three small methods:

* ``_slot_names`` (class attribute): its state arrays in the kernel's slot order (torch's
  state keys, e.g. ``("exp_avg", "exp_avg_sq", "max_exp_avg_sq")``; see _kernels.pyx).
* ``_check_hyperparameters(**hyper)`` (classmethod): validate every hyperparameter and return
  them as a dict of plain Python values; used by ``__init__`` and ``load_state_dict``.
* ``_state_names(hyper)`` (classmethod): the slots those hyperparameters use.
* ``_make_rule(hyper)`` (classmethod): the ``fastopt._step.Rule`` (kernel kind + scalars) that
  ``step`` runs -- the one C-level entry every consumer of the optimizer goes through.

Everything that can fail is checked before any array is touched, so a failed call leaves
parameters, state and the step count as they were.
"""

from collections.abc import Mapping

import numpy as np

from fastopt._openmp import effective_n_threads
from fastopt._step import check_grads
from fastopt._validation import check_lr, check_params, check_step, memory_spans


class Optimizer:
    """Base class of fastopt's optimizers (not used directly).

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters updated in place: any shape, float32 or float64, C-contiguous, writeable.
    n_threads : int or None, default=None
        OpenMP threads for large arrays: ``None`` uses OpenMP's default (``OMP_NUM_THREADS``
        or every usable core), ``-1`` all cores, ``-2`` all but one.
    **hyperparameters
        Validated by the subclass.
    """

    _slot_names = ()

    def __init__(self, params, *, n_threads=None, **hyperparameters):
        self._hyper = self._check_hyperparameters(**hyperparameters)
        self._n_threads_spec = n_threads
        self._n_threads = effective_n_threads(n_threads)
        self._params, self._single = check_params(params)
        self._spans = None if self._single else memory_spans(self._params)
        self._rule = self._make_rule(self._hyper)
        self._set_state(0, None)

    # -- subclass hooks ------------------------------------------------------------------------

    @classmethod
    def _check_hyperparameters(cls, **hyper):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def _state_names(cls, hyper):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def _make_rule(cls, hyper):  # pragma: no cover - abstract
        raise NotImplementedError

    def _init_state(self, name, param):
        """New state buffer ``name`` for ``param`` (zeros unless a subclass says otherwise)."""
        return np.zeros(param.shape, param.dtype)  # (zeros_like costs 1 us more per call)

    def _ensure_state(self):
        """Make the state arrays (lazily, as torch does) if there are none yet."""
        if self._slots is None:
            names = self._state_names(self._hyper)
            self._set_state(self._step, [{name: self._init_state(name, p) for name in names}
                                         for p in self._params])

    def _set_state(self, step, state):
        """Install a step count and per-parameter state dicts (None: none made yet)."""
        self._step = step
        self._state = state
        # The same arrays in the kernel's slot order, None for unused slots.
        self._slots = None if state is None else [
            tuple(s.get(name) for name in self._slot_names) for s in state
        ]

    # -- public API ----------------------------------------------------------------------------

    def step(self, grads):
        """Apply one update to every parameter, in place.

        Parameters
        ----------
        grads : ndarray or list of ndarray
            Gradients mirroring ``params``: one array if the optimizer was built on one array,
            else a list of the same length; each with its parameter's shape and dtype.
            Gradients are read, never modified (read-only arrays are fine; a non-contiguous
            gradient is read through a contiguous copy).

        Raises
        ------
        TypeError, ValueError
            On a bad gradient. Nothing is modified then, not even when only one array of a
            list is bad.
        RuntimeError
            If another thread is inside ``step`` of this optimizer (the kernels release the
            GIL, so two steps would race on the same arrays); nothing is modified then.
            Independent optimizers may be stepped from different threads at once.

        Notes
        -----
        Non-finite values are not checked (that would cost another pass over memory): a NaN
        or inf in a gradient reaches only its own element of the parameter and state, as in
        torch.optim. ``minimize`` and ``minimize_minibatch`` do check, and stop (status 3)
        with the last finite iterate.
        """
        grads = check_grads(grads, self._params, self._single, self._spans)
        self._rule.enter()  # RuntimeError if another thread is stepping this optimizer
        try:
            self._ensure_state()
            self._rule.apply(self._params, grads, self._slots, self._step + 1,
                             self._n_threads)
            self._step += 1
        finally:
            self._rule.leave()

    @property
    def params(self):
        """The parameter array, or the list of them, exactly as given (updated in place)."""
        return self._params[0] if self._single else list(self._params)

    @property
    def step_count(self):
        """Number of updates made so far (``step`` in the state dict)."""
        return self._step

    @property
    def n_threads(self):
        """The number of OpenMP threads the kernels use for large arrays."""
        return self._n_threads

    @property
    def lr(self):
        """Learning rate; may be set between steps (validated)."""
        return self._hyper["lr"]

    @lr.setter
    def lr(self, value):
        self._hyper["lr"] = self._rule.lr = check_lr(value)

    @property
    def hyperparameters(self):
        """A copy of the hyperparameters, torch.optim's names as keys."""
        return dict(self._hyper)

    @property
    def state(self):
        """Per-parameter state: a list with one dict of arrays per parameter (the live arrays).

        Empty dicts before the first step. Use ``state_dict()`` for copies.
        """
        if self._state is None:
            return [{} for _ in self._params]
        return self._state

    def state_dict(self):
        """Return the optimizer's state as a flat dict of numbers and NumPy arrays.

        Keys: ``"step"``, each hyperparameter by name, and ``"<state name>.<index>"`` for each
        state array of each parameter (present once a step was made). Arrays are copies; the
        dict can be saved with ``numpy.savez`` and read back with ``numpy.load``.
        """
        out = {"step": self._step, **self._hyper}
        if self._state is not None:
            for i, state in enumerate(self._state):
                for name, array in state.items():
                    out[f"{name}.{i}"] = array.copy()
        return out

    def load_state_dict(self, state_dict):
        """Restore a state saved by ``state_dict()`` (all-or-nothing).

        Every key, hyperparameter, shape and dtype is checked before anything changes; the
        arrays are copied in, so the dict and the optimizer never share memory. The resumed
        run continues bit-identically. Values may be NumPy 0-d arrays (as ``numpy.load``
        returns them).

        Raises
        ------
        TypeError, ValueError
            On a missing, unknown or malformed entry. The optimizer is unchanged then.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        required = ["step", *self._hyper]
        missing = [key for key in required if key not in state_dict]
        if missing:
            raise ValueError(f"state_dict is missing {missing}")
        step = check_step(state_dict["step"])
        hyper = self._check_hyperparameters(
            **{name: _plain(state_dict[name]) for name in self._hyper}
        )
        names = self._state_names(hyper) if step > 0 else ()
        array_keys = [f"{name}.{i}" for i in range(len(self._params)) for name in names]
        unknown = sorted(set(state_dict) - set(required) - set(array_keys), key=str)
        if unknown:
            raise ValueError(f"state_dict has unexpected keys {unknown}")
        missing = [key for key in array_keys if key not in state_dict]
        if missing:
            raise ValueError(f"state_dict is missing {missing}")
        new_state = None
        if step > 0:
            new_state = [
                {name: _state_array(f"{name}.{i}", state_dict[f"{name}.{i}"], p)
                 for name in names}
                for i, p in enumerate(self._params)
            ]
        rule = self._make_rule(hyper)
        self._hyper, self._rule = hyper, rule
        self._set_state(step, new_state)

    # -- pickling: the rule (a C struct) and the thread count are rebuilt where it is loaded --

    def __getstate__(self):
        return {key: self.__dict__[key]
                for key in ("_hyper", "_n_threads_spec", "_params", "_single", "_step", "_state")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._n_threads = effective_n_threads(self._n_threads_spec)
        self._rule = self._make_rule(self._hyper)
        self._spans = None if self._single else memory_spans(self._params)  # new addresses
        self._set_state(self._step, self._state)

    def __repr__(self):
        hyper = ", ".join(f"{k}={v!r}" for k, v in self._hyper.items())
        shapes = [p.shape for p in self._params]
        what = f"params={shapes[0]}" if self._single else f"params=[{len(shapes)} arrays]"
        return f"{type(self).__name__}({what}, {hyper})"


def _plain(value):
    """A state-dict value as a Python object: 0-d arrays become scalars, 1-d arrays tuples."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return value[()]
        if value.ndim == 1:
            return tuple(value.tolist())
    return value


# State that sums or averages squares: a negative entry would make the kernels take the
# square root of a negative number, so load_state_dict refuses it.
NONNEGATIVE_STATE = ("exp_avg_sq", "max_exp_avg_sq", "square_avg", "acc_delta", "sum")


def _state_array(key, value, param):
    if not isinstance(value, np.ndarray):
        raise TypeError(f"state_dict[{key!r}] must be a numpy.ndarray, got {type(value).__name__}")
    if value.dtype != param.dtype:
        raise TypeError(f"state_dict[{key!r}] has dtype {value.dtype}, its parameter {param.dtype}")
    if value.shape != param.shape:
        raise ValueError(f"state_dict[{key!r}] has shape {value.shape}, its parameter {param.shape}")
    if key.rsplit(".", 1)[0] in NONNEGATIVE_STATE and np.any(value < 0):
        raise ValueError(f"state_dict[{key!r}] has negative entries; it holds averages of "
                         "squares")
    return np.array(value, dtype=param.dtype, order="C", copy=True)
