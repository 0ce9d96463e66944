"""The Optimizer base class: validation, lazy state, the ``step`` template, state dicts.

A subclass declares one ``record = OptimizerRecord(...)`` (fastopt/_record.py): its
hyperparameters (defaults, checks), its state slots (in the kernel's slot order, checked
against ``fastopt._step.kernel_spec``), and how its hyperparameters become the kernel's
inputs. ``__init_subclass__`` makes from it the constructor (with a real signature),
``_check_hyperparameters`` (used by ``__init__``, the attribute setters, ``load_state_dict``
and unpickling), one property per hyperparameter, ``_state_names`` (the slots the
hyperparameters use, then the kernel's running scalars), ``_init_state`` (each slot's initial
value) and ``_make_rule`` (the ``fastopt._step.Rule`` that ``step`` runs: the one C-level entry
every consumer of the optimizer goes through). A subclass may override any of these hooks.

A kernel may declare running scalars (``fastopt._step.kernel_spec(kind)[2]``: NAdam's
``mu_product``), values carried from one update to the next. Each parameter's state holds
them after its arrays, under their names, as 0-d float64 arrays (torch keeps one tensor per
parameter too); ``step`` advances them in place, and state dicts and pickles carry them.

Everything that can fail is checked before any array is touched, so a failed call leaves
parameters, state and the step count as they were. NumPy lets users change an array's dtype,
shape, strides and flags in place, so ``step`` re-checks the parameters and the state arrays
in C every time (``fastopt._step.Layout``), and the state is handed out through guarded
mappings that validate what is assigned into them.
"""

import keyword
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import replace

import numpy as np

from fastopt._openmp import effective_n_threads
from fastopt._step import Layout, OptimizerCore, Rule, check_grads, kernel_spec, step_groups
from fastopt._validation import (
    check_bool,
    check_group_arrays,
    check_lr,
    check_param_group,
    check_params,
    check_step,
    memory_spans,
    split_param_groups,
)


class Optimizer(OptimizerCore):
    """Base class of fastopt's optimizers (not used directly).

    Parameters
    ----------
    params : ndarray, list of ndarray, or list of dict
        Parameters updated in place: any shape, float32 or float64, C-contiguous, writeable.
        Each must stay so (same dtype and shape, C-contiguous, writeable) for the optimizer's
        life: ``step`` checks it every time. Or torch.optim's parameter groups: a list of
        dicts ``{"params": array or list of arrays, <hyperparameter>: value, ...}``, each
        group with its own hyperparameters, the others from the constructor's arguments
        (``Adam([{"params": [w1, b1], "lr": 1e-2}, {"params": [w2]}], lr=1e-3)``); ``step``
        then takes the gradients of all the groups' arrays as one list, in that order (the
        order of ``opt.params``).
    n_threads : int or None, default=None
        OpenMP threads for large arrays: ``None`` uses OpenMP's default (``OMP_NUM_THREADS``
        or every usable core), ``-1`` all cores, ``-2`` all but one; at most 1024
        (``fastopt._openmp.MAX_N_THREADS``).
    flush_subnormals : bool, default=False
        Run ``step`` in flush-to-zero mode: subnormal inputs read as zero and subnormal
        results are flushed to zero (x86-64 MXCSR FTZ and DAZ, aarch64 FPCR FZ), which keeps
        steps at full speed when the state drifts below the normal range (float32
        ``|x| < 1.2e-38``, float64 ``|x| < 2.2e-308``), but gives results that differ from
        IEEE arithmetic there. Only fastopt's own update is affected; the caller's
        floating-point mode, and that of every OpenMP thread, is restored when ``step``
        returns or raises. Settable between steps; pickled (not in ``state_dict``, like
        ``n_threads``). See also :func:`fastopt.flush_subnormals`.
    **hyperparameters
        Validated by the subclass.

    Notes
    -----
    Parameter groups are ``opt.param_groups`` (torch's list of dicts, live and validated);
    ``add_param_group`` adds one. An optimizer built on an array or a list of arrays has one
    group. With several groups, setting an attribute (``opt.lr = 0.01``) sets it in every
    group, and reading one gives the groups' common value or raises ``ValueError`` (read
    ``opt.param_groups[i][name]`` then). ``opt.defaults`` keeps the constructor's
    hyperparameters: the values a group added later takes where it gives none.

    Every hyperparameter can be read and set as an attribute between steps
    (``opt.betas = (0.8, 0.99)``, ``opt.momentum = 0.5``); a new value is validated as in the
    constructor, and nothing changes if it is refused. A change that needs a state array the
    optimizer has not made yet (``momentum`` from 0, ``amsgrad`` or ``centered`` switched on
    after steps) makes it with its initial value (zeros), as if it had been there from the
    start; a change that no longer needs one drops it. (torch's SGD starts such a momentum
    buffer at the gradient itself, so with ``dampening > 0`` the first update after
    switching momentum on differs by the factor ``1 - dampening``; torch's Adam and RMSprop
    fail on such a change.) Setting any other public attribute
    raises ``AttributeError``, so that a typo (``opt.weight_decy = 1``) or another
    optimizer's hyperparameter (``opt.beta1``) cannot pass silently.
    """

    record = None  # the subclass's OptimizerRecord
    # Whether each element's update reads that element only (Adafactor's norms read the whole
    # parameter): minimize_batch then updates the problems side by side as one array.
    elementwise = True
    _slot_names = ()
    _scalars = ()  # the kernel's running scalars: (name, initial value) pairs
    _nonnegative = frozenset()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        record = cls.__dict__.get("record")
        if record is None:
            return
        record = cls.record = replace(record, cls=cls)
        _check_record(record)
        cls._slot_names = record.slot_names
        cls._scalars = kernel_spec(record.kernel)[2]
        cls._nonnegative = record.nonnegative_state
        if "__init__" not in cls.__dict__:
            cls.__init__ = _make_init(cls, record)
        # Each hyperparameter becomes a property whose setter validates (lr has its own,
        # faster one).
        for name in record.names:
            if not hasattr(cls, name):
                setattr(cls, name, _hyperparameter_property(name))

    def __init__(self, params, *, n_threads=None, flush_subnormals=False, **hyperparameters):
        if self.record is None:
            raise TypeError("Optimizer is a base class: use one of fastopt's optimizers")
        defaults = self._check_hyperparameters(**hyperparameters)
        n_threads_used = effective_n_threads(n_threads)
        flush = check_bool("flush_subnormals", flush_subnormals)
        groups = split_param_groups(params)
        if groups is None:
            params, single = check_params(params)
            hypers, ends = [defaults], (len(params),)
        else:
            hypers = [self._group_hyperparameters(f"params[{g}]", defaults, overrides)
                      for g, (_, overrides) in enumerate(groups)]
            names = [f"params[{g}]['params'][{i}]"
                     for g, (arrays, _) in enumerate(groups) for i in range(len(arrays))]
            params, single = [p for arrays, _ in groups for p in arrays], False
            check_group_arrays(params, names)
            ends = tuple(np.cumsum([len(arrays) for arrays, _ in groups]).tolist())
        self._defaults = defaults
        self._n_threads_spec = n_threads
        self._n_threads = n_threads_used
        self._flush_subnormals = flush
        self._params, self._single = params, single
        self._layout = Layout(self._params, self._single, self._slot_names)
        self._spans = None if self._single else memory_spans(self._params)
        self._install_groups(hypers, [self._make_rule(h) for h in hypers], ends,
                             (0,) * len(hypers))
        self._set_state(0, None)

    def _install_groups(self, hypers, rules, ends, starts):
        """Make these the groups: their hyperparameters, rules, ends in ``_params`` and the
        step counts when they were added. One group keeps ``_rule`` as the step's only rule
        (the fast path); several are run by ``fastopt._step.step_groups``."""
        several = len(hypers) > 1
        self._hypers, self._rules = list(hypers), list(rules)
        self._ends, self._starts = tuple(ends), tuple(starts)
        self._hyper, self._rule = self._hypers[0], self._rules[0]
        self._group_rules = self._rules if several else None
        self._group_ends = self._ends if several else None
        self._group_starts = self._starts if several else None

    def _group_hyperparameters(self, where, defaults, overrides):
        """A group's hyperparameters: ``overrides`` over ``defaults``, validated (errors name
        the group, ``where``)."""
        unknown = [key for key in overrides if key not in defaults]
        if unknown:
            raise ValueError(f"{where} has unknown key {unknown[0]!r}: a parameter group "
                             f"takes 'params' and {type(self).__name__}'s hyperparameters "
                             f"({', '.join(defaults)})")
        try:
            return self._check_hyperparameters(**{**defaults, **overrides})
        except (TypeError, ValueError) as error:
            raise type(error)(f"{where}: {error}") from None

    def _param_hypers(self):
        """Each parameter's hyperparameters (its group's dict)."""
        if len(self._hypers) == 1:
            return [self._hyper] * len(self._params)
        return [self._hypers[g] for g in self._param_groups_of()]

    def _param_groups_of(self):
        """Each parameter's group index."""
        out, lo = [], 0
        for g, end in enumerate(self._ends):
            out += [g] * (end - lo)
            lo = end
        return out

    def _param_counts(self):
        """Each parameter's update count so far (its group's: a group added after steps
        counts its own, as torch counts steps per parameter)."""
        if len(self._hypers) == 1:
            return [self._step] * len(self._params)
        return [self._step - self._starts[g] for g in self._param_groups_of()]

    # -- hooks, made from the record -----------------------------------------------------------

    @classmethod
    def _check_hyperparameters(cls, **hyper):
        """Validate every hyperparameter (all of them, by name); return them as a dict of
        plain Python values in the record's order."""
        record = cls.record
        unknown = [name for name in hyper if name not in record.names]
        if unknown:
            raise TypeError(f"{cls.__name__} has no hyperparameter {unknown[0]!r}: its "
                            f"hyperparameters are {', '.join(record.names)}")
        missing = [name for name in record.names if name not in hyper]
        if missing:
            raise TypeError(f"{cls.__name__} is missing hyperparameters {missing}")
        checked = {h.name: h.check(hyper[h.name]) for h in record.hyperparameters}
        for h in record.hyperparameters:
            if h.fixed and checked[h.name] != h.default:
                raise ValueError(f"Invalid {h.name}: {cls.__name__} requires "
                                 f"{h.name}={h.default!r}, got {hyper[h.name]!r}")
        if record.check is not None:
            record.check(checked)
        return checked

    @classmethod
    def _state_names(cls, hyper):
        """The state slots these hyperparameters use, in slot order, then the kernel's
        running scalars."""
        return (tuple(slot.name for slot in cls.record.state if slot.used(hyper))
                + tuple(name for name, _ in cls._scalars))

    @classmethod
    def _param_state_names(cls, hyper, param):
        """The state slots of ``param`` (all parameters have the same ones unless a class
        says otherwise: Adafactor's depend on the parameter's dimensions)."""
        return cls._state_names(hyper)

    @classmethod
    def _state_shape(cls, name, param):
        """The shape of state array ``name`` of ``param``: the parameter's own, unless a class
        says otherwise (Adafactor's factored second moments)."""
        return param.shape

    @classmethod
    def _make_rule(cls, hyper):
        """The kernel and its inputs for these hyperparameters."""
        return Rule(cls.record.kernel, **cls.record.kernel_inputs(hyper))

    @classmethod
    def _init_state(cls, name, param, hyper):
        """New state buffer ``name`` for ``param``: zeros, or its record's initial value (a
        running scalar: a 0-d float64 array holding the kernel's initial value)."""
        scalar = dict(cls._scalars)
        if name in scalar:
            return np.array(scalar[name], dtype=np.float64)
        initial = next(slot.initial for slot in cls.record.state if slot.name == name)
        shape = cls._state_shape(name, param)
        if initial is None:
            return np.zeros(shape, param.dtype)  # (zeros_like costs 1 us more)
        return np.full(shape, hyper[initial], param.dtype)

    def _ensure_state(self):
        """Make the state arrays (lazily, as torch does) if there are none yet."""
        if self._slots is None:
            self._set_state(self._step, [
                self._new_param_state(p, h)
                for p, h in zip(self._params, self._param_hypers())
            ])

    def _new_param_state(self, p, hyper):
        return {name: self._init_state(name, p, hyper)
                for name in self._param_state_names(hyper, p)}

    def _set_state(self, step, state):
        """Install a step count and per-parameter state dicts (None: none made yet)."""
        self._step = step
        self._state = state
        # The same arrays in the kernel's slot order, None for unused slots. Always a new
        # list: a step running in another thread keeps the one it was given.
        self._slots = None if state is None else [
            tuple(s.get(name) for name in self._slot_names) for s in state
        ]
        self._scalar_slots = None if state is None or not self._scalars else [
            tuple(s[name] for name, _ in self._scalars) for s in state
        ]

    def _check_not_busy(self, what):
        if self._rule.busy:
            raise RuntimeError(f"cannot {what} while step() is running in another thread")

    # -- public API ----------------------------------------------------------------------------

    # ``step`` is OptimizerCore.step (fastopt/_step.pyx): one call into C.

    def _first_step(self, grads):
        # The first step (OptimizerCore.step calls it while there is no state): check before
        # the state is made, and drop it again if the step fails after all, so that a failed
        # first step leaves the optimizer without state, as it was.
        check_grads(grads, self._layout, self._spans)
        self._check_not_busy("make the state")
        self._ensure_state()
        try:
            if self._group_rules is None:
                self._step = self._rule.step(grads, self._layout, self._spans, self._slots,
                                             self._step, self._n_threads, self._scalar_slots)
            else:
                self._step = step_groups(self._group_rules, self._group_ends,
                                         self._group_starts, grads, self._layout, self._spans,
                                         self._slots, self._step, self._n_threads,
                                         self._scalar_slots)
        except BaseException:
            self._set_state(self._step, None)
            raise

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
    def flush_subnormals(self):
        """Whether ``step`` runs in flush-to-zero mode (the constructor's argument); may be
        set between steps (a bool)."""
        return self._flush_subnormals

    @flush_subnormals.setter
    def flush_subnormals(self, value):
        self._flush_subnormals = check_bool("flush_subnormals", value)

    @property
    def lr(self):
        """Learning rate; may be set between steps (validated). With several parameter
        groups: every group's (reading it raises ValueError if they differ)."""
        if self._group_rules is None:
            return self._hyper["lr"]
        return self._common("lr")

    @lr.setter
    def lr(self, value):
        # The fast path of the general setter (schedulers set lr at every step): only the
        # rules' scalars change.
        value = check_lr(value)
        for hyper, rule in zip(self._hypers, self._rules):
            hyper["lr"] = rule.lr = value

    def _common(self, name):
        """Hyperparameter ``name``, the same in every group (else ValueError)."""
        values = [hyper[name] for hyper in self._hypers]
        if any(not _same(v, values[0]) for v in values[1:]):
            raise ValueError(
                f"{type(self).__name__} has {len(values)} parameter groups with different "
                f"{name} ({', '.join(map(repr, values))}): read opt.param_groups[i][{name!r}] "
                f"(setting opt.{name} sets every group)")
        return values[0]

    @property
    def hyperparameters(self):
        """A copy of the hyperparameters, torch.optim's names as keys (with several parameter
        groups: their common values; ValueError if a hyperparameter differs between groups,
        see ``param_groups``)."""
        if self._group_rules is None:
            return dict(self._hyper)
        return {name: self._common(name) for name in self._hyper}

    @property
    def defaults(self):
        """A copy of the constructor's hyperparameters (torch.optim's ``defaults``): what a
        group added by ``add_param_group`` takes where it gives no value of its own."""
        return dict(self._defaults)

    @property
    def param_groups(self):
        """The parameter groups, as torch.optim has them: a list with one live mapping per
        group.

        Each mapping has the key ``"params"`` (the group's arrays, a new list; not
        assignable) and one key per hyperparameter (torch.optim's names: ``"lr"``,
        ``"betas"``, ...). Assigning a hyperparameter, ``opt.param_groups[0]["lr"] = 0.05``,
        validates it as the constructor does and changes that group only, between steps
        (``"lr"`` is a fast path: a scheduler sets it at every step). Unknown keys are
        refused (``KeyError``), as is deleting a key. An optimizer built on an array or a
        list of arrays has one group. The list itself is a new one at each access; the
        mappings are views of the optimizer.
        """
        return [_ParamGroup(self, g) for g in range(len(self._hypers))]

    def _group_params(self, g):
        return self._params[self._ends[g - 1] if g else 0:self._ends[g]]

    def _group_hyper(self, g):
        return self._hypers[g]

    def _set_group_lr(self, g, value):
        self._hypers[g]["lr"] = self._rules[g].lr = check_lr(value)

    def _set_group_hyperparameters(self, g, changes):
        self._set_hyperparameters(changes, groups=(g,))

    def add_param_group(self, param_group):
        """Add a parameter group (torch.optim's ``add_param_group``).

        Parameters
        ----------
        param_group : dict
            ``{"params": array or list of arrays, <hyperparameter>: value, ...}``: the
            group's arrays (as the constructor takes them, none of them already in the
            optimizer) and any hyperparameters of its own; the others are ``opt.defaults``
            (the constructor's).

        Notes
        -----
        ``step`` then takes the new arrays' gradients after the others (the order of
        ``opt.params``). After steps, the new arrays get fresh state and the group counts
        its own updates from 1 (bias corrections and warm-ups start over for it, as torch
        keeps a step count per parameter).

        Raises
        ------
        TypeError, ValueError
            On a malformed group, an unknown key, a bad hyperparameter, an empty group, an
            array already in the optimizer, or an optimizer built on one array (its ``step``
            takes one gradient: build it on a list, ``[w]``, to add groups). Nothing is
            modified then.
        """
        where = f"param_groups[{len(self._hypers)}]"
        if self._single:
            raise TypeError(f"{type(self).__name__} was built on one array (its step takes "
                            "one gradient array): build it on a list of arrays, [w], or of "
                            "parameter groups to add groups")
        arrays, overrides = check_param_group("param_group", param_group)
        hyper = self._group_hyperparameters("param_group", self._defaults, overrides)
        names = [*(f"params[{i}]" for i in range(len(self._params))),
                 *(f"param_group['params'][{i}]" for i in range(len(arrays)))]
        params = self._params + arrays
        check_group_arrays(params, names)
        layout = Layout(params, False, self._slot_names)
        spans = memory_spans(params)
        rule = self._make_rule(hyper)
        state = self._state
        if state is not None:
            state = state + [self._new_param_state(p, hyper) for p in arrays]
        self._check_not_busy(f"add a parameter group ({where})")
        self._params, self._layout, self._spans = params, layout, spans
        self._install_groups(self._hypers + [hyper], self._rules + [rule],
                             self._ends + (len(params),), self._starts + (self._step,))
        self._set_state(self._step, state)

    def _set_public_attribute(self, name, value):
        """Called by OptimizerCore for any public attribute that is not a property."""
        hyper = self.__dict__.get("_hyper", {})
        if name not in hyper:
            raise AttributeError(
                f"{type(self).__name__} has no hyperparameter {name!r}: its hyperparameters "
                f"are {', '.join(hyper)} (other public attributes cannot be set)",
                name=name, obj=self)
        if value is OptimizerCore.DELETE:
            raise AttributeError(f"cannot delete hyperparameter {name!r}", name=name, obj=self)
        self._set_hyperparameters({name: value})

    def _set_hyperparameters(self, changes, groups=None):
        """Validate ``changes`` with the other hyperparameters as in the constructor, in the
        groups given (default: every group), then install them with the rules and state they
        need (all or nothing)."""
        several = len(self._hypers) > 1
        targets = range(len(self._hypers)) if groups is None else groups
        hypers, rules = list(self._hypers), list(self._rules)
        for g in targets:
            try:
                hypers[g] = self._check_hyperparameters(**{**self._hypers[g], **changes})
            except (TypeError, ValueError) as error:
                if not several:
                    raise
                raise type(error)(f"param_groups[{g}]: {error}") from None
            rules[g] = self._make_rule(hypers[g])
        self._check_not_busy("change a hyperparameter")
        state = self._state
        if state is not None:
            old = self._param_hypers()
            groups_of = self._param_groups_of()
            state = [
                s if self._state_names(hypers[g]) == self._state_names(h) else
                {name: s[name] if name in s else self._init_state(name, p, hypers[g])
                 for name in self._param_state_names(hypers[g], p)}
                for s, p, h, g in zip(state, self._params, old, groups_of)
            ]
        self._install_groups(hypers, rules, self._ends, self._starts)
        self._set_state(self._step, state)

    @property
    def state(self):
        """Per-parameter state: a sequence with one mapping of arrays per parameter.

        The mappings hold the live arrays the kernels update (empty before the first
        step); use ``state_dict()`` for copies. An entry may be replaced between steps,
        ``opt.state[i]["exp_avg"] = array`` (or a whole ``opt.state[i] = {...}``): the
        kernels then update that array itself, as in torch. It must have its parameter's
        dtype and shape, be C-contiguous and writeable, share no memory with a parameter or
        another state array, and have no negative entries where it holds squares. A running
        scalar of the kernel (NAdam's ``mu_product``) is a 0-d float64 array, updated in place
        at each step; a replacement must be one too, finite. Unknown keys, deleting entries,
        and assigning before the first step are refused.
        """
        return _StateList(self)

    def state_dict(self):
        """Return the optimizer's state as a flat dict of numbers and NumPy arrays.

        Keys: ``"step"``, each hyperparameter by name, and ``"<state name>.<index>"`` for each
        state array of each parameter (present once a step was made; running scalars such as
        NAdam's ``mu_product`` are 0-d float64 arrays). Arrays are copies; the dict can be
        saved with ``numpy.savez`` and read back with ``numpy.load``.

        With several parameter groups, the hyperparameters are per group instead:
        ``"param_groups"`` (the number of arrays of each group, a tuple),
        ``"param_groups.<g>.<name>"`` for each hyperparameter of group g, and
        ``"param_groups.<g>.step"`` (the group's own update count: a group added after
        steps counts from its addition); state arrays are indexed across the groups, in the
        order of ``opt.params``. One group gives exactly the format above.
        """
        if len(self._hypers) == 1:
            out = {"step": self._step, **self._hyper}
        else:
            out = {"step": self._step, "param_groups": self._group_sizes()}
            for g, hyper in enumerate(self._hypers):
                out.update({f"param_groups.{g}.{name}": v for name, v in hyper.items()})
                out[f"param_groups.{g}.step"] = self._step - self._starts[g]
        if self._state is not None:
            for i, state in enumerate(self._state):
                for name, array in state.items():
                    out[f"{name}.{i}"] = array.copy()
        return out

    def _group_sizes(self):
        return tuple(int(end - lo) for lo, end in zip((0, *self._ends), self._ends))

    def load_state_dict(self, state_dict):
        """Restore a state saved by ``state_dict()`` (all-or-nothing).

        Every key, hyperparameter, shape and dtype is checked before anything changes; the
        arrays are copied in, so the dict and the optimizer never share memory. The resumed
        run continues bit-identically. Values may be NumPy scalars or 0-d arrays (as
        ``numpy.load`` returns them). The dict must have the optimizer's parameter groups
        (as many, with as many arrays each).

        Raises
        ------
        TypeError, ValueError
            On a missing, unknown or malformed entry (including a ``step`` outside
            ``[0, 2**62)``), or other parameter groups. The optimizer is unchanged then.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        sizes = self._group_sizes()
        several = len(sizes) > 1
        if several or "param_groups" in state_dict:
            saved = _plain(state_dict.get("param_groups"))
            if not several or saved != sizes:
                got = ("one parameter group" if saved is None else
                       f"parameter groups of {saved!r} arrays")
                raise ValueError(f"state_dict has {got}; the optimizer has "
                                 f"{len(sizes)} group{'s' if several else ''} of {sizes} "
                                 "arrays")
            keys = [[f"param_groups.{g}.{name}" for name in self._hyper]
                    for g in range(len(sizes))]
            counts = [f"param_groups.{g}.step" for g in range(len(sizes))]
            required = ["step", "param_groups", *(k for ks in keys for k in ks), *counts]
        else:
            keys, counts = [list(self._hyper)], []
            required = ["step", *self._hyper]
        missing = [key for key in required if key not in state_dict]
        if missing:
            raise ValueError(f"state_dict is missing {missing}")
        step = check_step(state_dict["step"])
        hypers = []
        for g, ks in enumerate(keys):
            try:
                hypers.append(self._check_hyperparameters(
                    **{name: _plain(state_dict[k]) for name, k in zip(self._hyper, ks)}))
            except (TypeError, ValueError) as error:
                if not several:
                    raise
                raise type(error)(f"state_dict's param_groups.{g}: {error}") from None
        starts = [0]
        if several:
            starts = []
            for key in counts:
                count = check_step(state_dict[key])
                if count > step:
                    raise ValueError(f"Invalid {key}: {count} is more than the optimizer's "
                                     f"step {step}")
                starts.append(step - count)
        groups_of = self._param_groups_of()
        names = [self._param_state_names(hypers[g], p) if step > 0 else ()
                 for p, g in zip(self._params, groups_of)]
        array_keys = [f"{name}.{i}" for i in range(len(self._params)) for name in names[i]]
        unknown = sorted(set(state_dict) - set(required) - set(array_keys), key=str)
        if unknown:
            raise ValueError(f"state_dict has unexpected keys {unknown}")
        missing = [key for key in array_keys if key not in state_dict]
        if missing:
            raise ValueError(f"state_dict is missing {missing}")
        new_state = None
        if step > 0:
            new_state = [
                {name: self._checked_state(f"state_dict[{name + '.' + str(i)!r}]",
                                           name, state_dict[f"{name}.{i}"], p)
                 for name in names[i]}
                for i, p in enumerate(self._params)
            ]
        rules = [self._make_rule(hyper) for hyper in hypers]
        self._check_not_busy("load a state dict")
        self._install_groups(hypers, rules, self._ends, starts)
        self._set_state(step, new_state)

    # -- pickling: the rule (a C struct), the layout and the thread count are rebuilt where it
    # is loaded, and everything loaded is validated as the constructor and load_state_dict do
    # (a pickle may have been tampered with). Several parameter groups add "_groups" (each
    # group's end, start and hyperparameters); "_defaults" is the constructor's
    # hyperparameters. Pickles without them (older ones) load as one group.

    _PICKLED = ("_hyper", "_n_threads_spec", "_params", "_single", "_step", "_state")
    _PICKLED_OPTIONAL = ("_defaults", "_groups", "_flush_subnormals")

    def __getstate__(self):
        out = {key: getattr(self, key) for key in self._PICKLED}
        out["_defaults"] = self._defaults
        if self._flush_subnormals:  # (absent: off, as in pickles made before it existed)
            out["_flush_subnormals"] = True
        if len(self._hypers) > 1:
            out["_groups"] = [(end, start, hyper) for end, start, hyper
                              in zip(self._ends, self._starts, self._hypers)]
        return out

    def __reduce_ex__(self, protocol):
        # Every protocol the same way (protocols 0 and 1 would otherwise try to pickle the
        # C base class).
        return _new_optimizer, (type(self),), self.__getstate__()

    def __setstate__(self, state):
        if not isinstance(state, Mapping):
            raise TypeError(f"pickled optimizer state must be a dict, got "
                            f"{type(state).__name__}")
        missing = [key for key in self._PICKLED if key not in state]
        unknown = sorted(set(state) - set(self._PICKLED) - set(self._PICKLED_OPTIONAL),
                         key=str)
        if missing or unknown:
            raise ValueError(f"pickled optimizer state has missing keys {missing} or "
                             f"unexpected keys {unknown}")
        hyper = self._checked_pickled_hyper("pickled hyperparameters", state["_hyper"])
        defaults = hyper
        if state.get("_defaults") is not None:
            defaults = self._checked_pickled_hyper("pickled defaults", state["_defaults"])
        n_threads = effective_n_threads(state["_n_threads_spec"])
        flush = check_bool("_flush_subnormals", state.get("_flush_subnormals", False))
        single = check_bool("_single", state["_single"])
        params = state["_params"]
        if single:
            if not (isinstance(params, list) and len(params) == 1):
                raise ValueError("pickled params must be a list of one array for a single "
                                 "array optimizer")
            params = params[0]
        params, single = check_params(params)
        step = check_step(state["_step"])
        hypers, ends, starts = [hyper], (len(params),), (0,)
        groups = state.get("_groups")
        if groups is not None:
            hypers, ends, starts = self._checked_pickled_groups(groups, len(params), step,
                                                                single)
        groups_of = [g for g, (lo, end) in enumerate(zip((0, *ends), ends))
                     for _ in range(end - lo)]
        new_state = self._checked_pickled_state(state["_state"], step,
                                                [hypers[g] for g in groups_of], params,
                                                single)
        spans = None if single else memory_spans(params)  # new addresses
        layout = Layout(params, single, self._slot_names)
        rules = [self._make_rule(h) for h in hypers]
        if self._rule is not None:  # (a live optimizer, not one being unpickled)
            self._check_not_busy("restore a pickled state")
        self._defaults, self._n_threads = defaults, n_threads
        self._n_threads_spec = state["_n_threads_spec"]
        self._flush_subnormals = flush
        self._params, self._single, self._layout, self._spans = params, single, layout, spans
        self._install_groups(hypers, rules, ends, starts)
        self._set_state(step, new_state)

    @classmethod
    def _checked_pickled_hyper(cls, what, hyper):
        if not isinstance(hyper, Mapping):
            raise TypeError(f"{what} must be a dict, got {type(hyper).__name__}")
        return cls._check_hyperparameters(**{k: _plain(v) for k, v in hyper.items()})

    @classmethod
    def _checked_pickled_groups(cls, groups, n, step, single):
        if (single or not isinstance(groups, list) or len(groups) < 2
                or not all(isinstance(g, tuple) and len(g) == 3 for g in groups)):
            raise ValueError("pickled groups must be a list of at least two (end, start, "
                             "hyperparameters) tuples, for a list of arrays")
        hypers, ends, starts, lo = [], [], [], 0
        for g, (end, start, hyper) in enumerate(groups):
            if (type(end) is not int or type(start) is not int or not lo < end <= n
                    or not 0 <= start <= step):
                raise ValueError(f"pickled group {g} has a bad end {end!r} or start "
                                 f"{start!r}")
            hypers.append(cls._checked_pickled_hyper(f"pickled group {g}'s hyperparameters",
                                                     hyper))
            ends.append(end)
            starts.append(start)
            lo = end
        if lo != n:
            raise ValueError(f"pickled groups end at {lo}, there are {n} arrays")
        return hypers, tuple(ends), tuple(starts)

    @classmethod
    def _checked_pickled_state(cls, state, step, param_hypers, params, single):
        if state is None:
            if step > 0:
                raise ValueError("pickled optimizer has made steps but has no state")
            return None
        if not isinstance(state, list) or len(state) != len(params):
            raise ValueError(f"pickled state must be a list of {len(params)} dicts")
        checked = []
        for i, (s, p, hyper) in enumerate(zip(state, params, param_hypers)):
            names = cls._param_state_names(hyper, p)
            if not isinstance(s, Mapping) or set(s) != set(names):
                raise ValueError(f"pickled state[{i}] must be a dict with keys {list(names)}")
            where = "state" if single else f"state[{i}]"
            checked.append({name: cls._checked_state(f"pickled {where}[{name!r}]", name,
                                                     s[name], p)
                            for name in names})
        return checked

    @classmethod
    def _checked_state(cls, what, name, value, param):
        """A private copy of the loaded state entry ``name`` of ``param``, checked."""
        if name in dict(cls._scalars):
            return _scalar_array(what, value)
        return _state_array(what, value, param, name in cls._nonnegative,
                            cls._state_shape(name, param))

    def __repr__(self):
        shapes = [p.shape for p in self._params]
        if len(self._hypers) == 1:
            hyper = ", ".join(f"{k}={v!r}" for k, v in self._hyper.items())
            what = f"params={shapes[0]}" if self._single else f"params=[{len(shapes)} arrays]"
            return f"{type(self).__name__}({what}, {hyper})"
        groups = ", ".join(
            "{" + f"'params': [{n} arrays], "
            + ", ".join(f"{k!r}: {v!r}" for k, v in hyper.items()) + "}"
            for n, hyper in zip(self._group_sizes(), self._hypers))
        return f"{type(self).__name__}([{groups}])"


def _same(a, b):
    """Whether two hyperparameter values are equal (NaN equal to NaN)."""
    return a == b or repr(a) == repr(b)


def _hyperparameter_property(name):
    # (A subclass whose record drops a hyperparameter of its base class still inherits the
    # base's property: it then behaves as an unknown attribute.)
    def get(self):
        if name not in type(self).record.names:
            raise AttributeError(f"{type(self).__name__} has no hyperparameter {name!r}",
                                 name=name, obj=self)
        if self._group_rules is None:
            return self._hyper[name]
        return self._common(name)

    def set(self, value):
        if name not in type(self).record.names:
            self._set_public_attribute(name, value)  # AttributeError naming it
        self._set_hyperparameters({name: value})

    def delete(self):
        raise AttributeError(f"cannot delete hyperparameter {name!r}")

    return property(get, set, delete, doc=f"Hyperparameter ``{name}``; may be set between "
                    "steps (validated as in the constructor).")


def _new_optimizer(cls):
    """An empty optimizer of class ``cls``, for unpickling (``__setstate__`` fills it)."""
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise TypeError(f"not an optimizer class: {cls!r}")
    return cls.__new__(cls)


def _plain(value):
    """A state-dict value as a Python object: 0-d arrays become scalars, 1-d arrays tuples."""
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return value[()]
        if value.ndim == 1:
            return tuple(value.tolist())
    return value


def _check_state_layout(what, value, param, shape=None):
    """Check that ``value`` is an array with ``param``'s dtype and shape, or ``shape`` if
    given (``what`` names it)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{what} must be a numpy.ndarray, got {type(value).__name__}")
    if value.dtype != param.dtype:
        raise TypeError(f"{what} has dtype {value.dtype}, its parameter {param.dtype}")
    if shape is None or tuple(shape) == param.shape:
        if value.shape != param.shape:
            raise ValueError(f"{what} has shape {value.shape}, its parameter {param.shape}")
    elif value.shape != tuple(shape):
        raise ValueError(f"{what} has shape {value.shape}; it must be {tuple(shape)} for its "
                         f"parameter of shape {param.shape}")


def _check_scalar_entry(what, value):
    """Check that ``value`` can be installed as a running scalar: a 0-d float64 array
    (the step updates it in place), finite."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{what} must be a numpy.ndarray (0-d float64, a running scalar), got "
                        f"{type(value).__name__}")
    if value.dtype != np.float64:
        raise TypeError(f"{what} has dtype {value.dtype}, a running scalar is float64")
    if value.shape != ():
        raise ValueError(f"{what} has shape {value.shape}, a running scalar is 0-d (shape ())")
    if not np.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value[()]!r}")


def _check_state_values(what, value, nonnegative):
    if nonnegative and np.any(value < 0):
        raise ValueError(f"{what} has negative entries; it must be non-negative (it holds "
                         "squares or magnitudes)")


def _scalar_array(what, value):
    """A private 0-d float64 array of a loaded running scalar: a real number, or a 0-d array
    of one (as ``numpy.load`` gives it back), finite."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                         np.floating))):
        raise TypeError(f"{what} must be a real number (a running scalar), got "
                        f"{type(value).__name__}: {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return np.array(value, dtype=np.float64)


def _state_array(what, value, param, nonnegative, shape=None):
    """A private C-contiguous copy of a checked state array (``nonnegative``: it holds
    squares; ``shape``: its shape, if not its parameter's)."""
    _check_state_layout(what, value, param, shape)
    _check_state_values(what, value, nonnegative)
    return np.array(value, dtype=param.dtype, order="C", copy=True)


class _StateList(Sequence):
    """``Optimizer.state``: one guarded mapping per parameter (a live view)."""

    __slots__ = ("_opt",)

    def __init__(self, opt):
        self._opt = opt

    def __len__(self):
        return len(self._opt._params)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        return _ParamState(self._opt, _index(index, len(self)))

    def __setitem__(self, index, mapping):
        if isinstance(index, slice):
            raise TypeError("optimizer.state entries are replaced one at a time")
        i = _index(index, len(self))
        opt = self._opt
        where = f"state[{i}]"
        if not isinstance(mapping, Mapping):
            raise TypeError(f"{where} must be a dict of arrays, got {type(mapping).__name__}")
        current = _current_state(opt, i, where)
        if set(mapping) != set(current):
            raise KeyError(f"{where} must have exactly the keys {list(current)}, got "
                           f"{list(mapping)}")
        _install(opt, i, {name: mapping[name] for name in current})

    def __delitem__(self, index):
        raise TypeError("optimizer.state entries cannot be deleted")

    def __eq__(self, other):
        return list(self) == other if isinstance(other, (list, _StateList)) else NotImplemented

    def __repr__(self):
        return repr([dict(s) for s in self])


class _ParamState(MutableMapping):
    """``Optimizer.state[i]``: the state arrays of one parameter (a live view); assignment
    validates and installs the array, so that the kernels use what the mapping shows."""

    __slots__ = ("_opt", "_i")

    def __init__(self, opt, i):
        self._opt, self._i = opt, i

    def _arrays(self):
        state = self._opt._state
        return {} if state is None else state[self._i]

    def __getitem__(self, key):
        return self._arrays()[key]

    def __iter__(self):
        return iter(self._arrays())

    def __len__(self):
        return len(self._arrays())

    def __setitem__(self, key, value):
        where = f"state[{self._i}]"
        current = _current_state(self._opt, self._i, where)
        if key not in current:
            raise KeyError(f"{where} has no entry {key!r}: its entries are {list(current)}")
        _install(self._opt, self._i, dict(current, **{key: value}))

    def __delitem__(self, key):
        raise TypeError(f"state[{self._i}] entries cannot be deleted (assign a new array "
                        "instead)")

    def __repr__(self):
        return repr(dict(self))


class _ParamGroup(MutableMapping):
    """``Optimizer.param_groups[g]``: one parameter group (a live view): ``"params"`` and the
    group's hyperparameters; assignment validates and changes that group only."""

    __slots__ = ("_opt", "_g")

    def __init__(self, opt, g):
        self._opt, self._g = opt, g

    def __getitem__(self, key):
        if key == "params":
            return self._opt._group_params(self._g)
        hyper = self._opt._group_hyper(self._g)
        try:
            return hyper[key]
        except (KeyError, TypeError):
            raise KeyError(_unknown_group_key(self._opt, self._g, key)) from None

    def __setitem__(self, key, value):
        if key == "lr":  # the fast path (schedulers set it at every step)
            self._opt._set_group_lr(self._g, value)
            return
        opt = self._opt
        if key == "params":
            raise TypeError(f"param_groups[{self._g}]['params'] cannot be assigned: the "
                            "parameters are fixed when the optimizer is built (add_param_group "
                            "adds a group)")
        if not isinstance(key, str) or key not in opt._group_hyper(self._g):
            raise KeyError(_unknown_group_key(opt, self._g, key))
        opt._set_group_hyperparameters(self._g, {key: value})

    def update(self, other=(), /, **kwargs):
        """Set several entries at once, all or nothing (the mixin's ``update`` would set them
        one by one and leave the first ones changed when a later one is refused)."""
        changes = dict(other, **kwargs)
        opt = self._opt
        if "params" in changes:
            raise TypeError(f"param_groups[{self._g}]['params'] cannot be assigned: the "
                            "parameters are fixed when the optimizer is built (add_param_group "
                            "adds a group)")
        known = opt._group_hyper(self._g)
        for key in changes:
            if not isinstance(key, str) or key not in known:
                raise KeyError(_unknown_group_key(opt, self._g, key))
        if changes:
            opt._set_group_hyperparameters(self._g, changes)

    def __delitem__(self, key):
        raise TypeError(f"param_groups[{self._g}] entries cannot be deleted")

    def __iter__(self):
        return iter(("params", *self._opt._group_hyper(self._g)))

    def __len__(self):
        return 1 + len(self._opt._group_hyper(self._g))

    def __repr__(self):
        return repr(dict(self))


def _unknown_group_key(opt, g, key):
    return (f"param_groups[{g}] has no key {key!r}: its keys are 'params' and "
            f"{type(opt).__name__}'s hyperparameters ({', '.join(opt._group_hyper(g))}); a "
            "scheduler keeps its own bookkeeping (initial_lr, ...) in itself")


def _index(index, n):
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise TypeError(f"optimizer.state indices must be integers, got {type(index).__name__}")
    if not -n <= index < n:
        raise IndexError(f"optimizer.state index {index} out of range for {n} parameters")
    return int(index) % n


def _current_state(opt, i, where):
    if opt._state is None:
        raise ValueError(f"{where} has no arrays yet: they are made at the first step "
                         "(load_state_dict restores a saved state)")
    return opt._state[i]


def _install(opt, i, arrays):
    """Validate the arrays for parameter i (every one of them), then make them its state."""
    param = opt._params[i]
    others = [a for j, s in enumerate(opt._state) if j != i for a in s.values()]
    scalars = dict(opt._scalars)
    for name, value in arrays.items():
        what = f"state[{i}][{name!r}]"
        if name in scalars:
            _check_scalar_entry(what, value)
        else:
            _check_state_layout(what, value, param, opt._state_shape(name, param))
        if not value.flags.c_contiguous:
            raise ValueError(f"{what} must be C-contiguous (use numpy.ascontiguousarray)")
        if not value.flags.writeable:
            raise ValueError(f"{what} must be writeable: the kernels update it in place")
        for j, p in enumerate(opt._params):
            if np.may_share_memory(value, p):
                raise ValueError(f"{what} shares memory with params[{j}]: pass a separate "
                                 "array")
        siblings = [a for n, a in arrays.items() if n != name]
        if any(np.may_share_memory(value, a) for a in others + siblings):
            raise ValueError(f"{what} shares memory with another state array: pass a "
                             "separate array")
        _check_state_values(what, value, name in opt._nonnegative)
    opt._check_not_busy("replace a state array")
    state = list(opt._state)
    state[i] = arrays
    opt._set_state(opt._step, state)


def _check_record(record):
    """Check a record when its class is made: its hyperparameter names (they become the
    constructor's arguments, attributes and state-dict keys), and its agreement with the
    kernel it names: the kernel's state slots must be the record's, in order (the kernel reads
    them by position), and ``kernel_inputs`` must give exactly the kernel's inputs."""
    cls, names = record.cls, record.names
    bad = [name for name in names
           if not (isinstance(name, str) and name.isidentifier()) or keyword.iskeyword(name)
           or name.startswith("_") or name in ("self", "params", "n_threads")
           or (name != "lr" and hasattr(Optimizer, name))]
    repeated = sorted({name for name in names if names.count(name) > 1}, key=str)
    if bad or repeated:
        raise TypeError(f"{cls.__name__}'s record has hyperparameter names that cannot be "
                        f"arguments and attributes: {bad + repeated} (reserved: params, "
                        "n_threads and Optimizer's attributes)")
    if "lr" not in names:
        raise TypeError(f"{cls.__name__}'s record has no hyperparameter 'lr' (every kernel "
                        "and driver takes a learning rate)")
    inputs, slots, _ = kernel_spec(record.kernel)
    if slots != record.slot_names:
        raise TypeError(f"{record.cls.__name__}'s record has state slots {record.slot_names}, "
                        f"its kernel {record.kernel!r} has {slots}")
    unknown = [s.initial for s in record.state
               if s.initial is not None and s.initial not in record.names]
    if unknown:
        raise TypeError(f"{record.cls.__name__}'s record starts state at unknown "
                        f"hyperparameters {unknown}")
    if getattr(cls._make_rule, "__func__", None) is Optimizer._make_rule.__func__:
        # (a class with its own _make_rule builds its rule its own way)
        try:
            for slot in record.state:
                slot.used(dict(record.defaults))
            given = tuple(record.kernel_inputs(dict(record.defaults)))
        except Exception as error:
            raise TypeError(f"{cls.__name__}'s record: kernel_inputs or a slot's needed fails "
                            "on the defaults "
                            f"({type(error).__name__}: {error})") from error
        if set(given) != set(inputs):
            raise TypeError(f"{cls.__name__}'s record gives its kernel {record.kernel!r} the "
                            f"inputs {given}; the kernel takes exactly {inputs}")


def _make_init(cls, record):
    """The constructor ``__init__(self, params, <arguments>, *, <keyword-only>, n_threads,
    flush_subnormals)``
    with the record's defaults, so that ``help()`` and ``inspect.signature`` show the real
    arguments."""
    positional = [h for h in record.arguments if not h.keyword_only]
    keyword = [h for h in record.arguments if h.keyword_only]
    fixed = record.fixed
    text = ", ".join(["self", "params", *(f"{h.name}=_defaults[{h.name!r}]" for h in positional),
                      "*", *(f"{h.name}=_defaults[{h.name!r}]" for h in keyword),
                      "n_threads=None", "flush_subnormals=False"])
    passed = ", ".join([*(f"{h.name}={h.name}" for h in record.arguments),
                        *(f"{name}=_defaults[{name!r}]" for name in fixed)])
    source = (f"def __init__({text}):\n"
              f"    _Optimizer.__init__(self, params, n_threads=n_threads,\n"
              f"                        flush_subnormals=flush_subnormals, {passed})\n")
    namespace = {"_defaults": record.defaults, "_Optimizer": Optimizer}
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init._record_init = True  # (minimize's fast path runs classes built by this constructor)
    return init
