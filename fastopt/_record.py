"""One record per optimizer: what fastopt knows about an update rule, in one place.

An optimizer class declares ``record = OptimizerRecord(...)``; ``Optimizer.__init_subclass__``
(fastopt/_base.py) makes from it the constructor (with a real signature), the hyperparameter
checks and properties, the state slots and the ``Rule`` the kernels run. Everything else reads
the records through fastopt/_registry.py: the exports, the ``scipy.optimize.minimize`` method
callables, the drivers' method names, the race, the demo, the benchmarks and the tests' table
of cases. Adding an optimizer is its kernel (fastopt/_kernels_impl.pxi), its class with its
record, and its NumPy reference (fastopt/_reference.py); README "Development" says how.

The record is checked against the kernel it names when its class is made: the kernel's state
slots (``fastopt._step.kernel_spec``) must be the record's, in the same order, and the rule is
built by the kernel's input names, so the two sides are joined by names that are checked, not
by positions.
"""

from dataclasses import dataclass, field, replace
from functools import cached_property, partial

from fastopt._validation import (
    check_betas,
    check_bool,
    check_eps,
    check_lr,
    check_real,
    check_weight_decay,
)

@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter of an optimizer.

    Parameters
    ----------
    name : str
        torch.optim's name (``lr``, ``betas``, ...): the constructor argument, the attribute,
        the state-dict key.
    default : object
        torch.optim's default.
    check : callable
        ``check(value) -> value``: the validated value as a plain Python object; raises
        TypeError or ValueError naming ``name``.
    sample : tuple or str
        Values the property tests draw from: ``(low, high)`` for a real, ``"bool"`` for a
        flag, ``((low, high), (low, high))`` for a pair.
    keyword_only : bool, default=False
        Keyword-only in the constructor (after ``*``), as torch has ``maximize``.
    fixed : bool, default=False
        Pinned to ``default`` (NAG's ``nesterov=True``): not a constructor argument, still
        an attribute and a state-dict entry; another value is refused.
    """

    name: str
    default: object
    check: object
    sample: object = None
    keyword_only: bool = False
    fixed: bool = False


@dataclass(frozen=True)
class StateSlot:
    """One state array per parameter, named after torch's state key.

    Parameters
    ----------
    name : str
        torch's state key (``exp_avg``, ``momentum_buffer``, ...).
    nonnegative : bool, default=False
        It holds sums or averages of squares, so the kernels take its square root: negative
        entries are refused where a user installs it (``opt.state[i][name] = ...``, state
        dicts, pickles).
    needed : callable or None, default=None
        ``needed(hyper) -> bool``: whether these hyperparameters use it (None: always).
    initial : str or None, default=None
        The hyperparameter whose value it starts at (None: zeros).
    """

    name: str
    nonnegative: bool = False
    needed: object = None
    initial: str = None

    def used(self, hyper):
        return self.needed is None or bool(self.needed(hyper))


@dataclass(frozen=True)
class Racer:
    """One entry of the optimizer race (``python -m fastopt race``) and of the demo.

    Parameters
    ----------
    key : str
        The racer's name on the command line (``--methods``).
    label : str
        Its name in tables and legends.
    gradient : {"exact", "sample", "batch"}
        The gradient it sees: exact, one sample's (very noisy), or a batch's.
    race_lr : mapping
        Race problem -> learning rate, measured (``python -m fastopt lr-table --race``
        prints them; a test checks Rosenbrock's).
    demo : mapping
        Its options in the demo (``python -m fastopt``).
    style : tuple or None
        (colour, matplotlib dash pattern) in the race's pictures; None: a fallback style.
    """

    key: str
    label: str
    gradient: str = "exact"
    race_lr: object = field(default_factory=dict)
    demo: object = field(default_factory=dict)
    style: tuple = None


@dataclass(frozen=True)
class OptimizerRecord:
    """Everything fastopt knows about one optimizer (see the module docstring).

    Parameters
    ----------
    method : str
        Its name in ``fastopt.minimize(method=...)`` and its ``scipy.optimize.minimize``
        callable, ``fastopt.<method>``.
    kernel : str
        The update kernel it runs (``fastopt._step.kernel_kinds()``).
    hyperparameters : tuple of Hyperparameter
        In the constructor's order.
    state : tuple of StateSlot
        In the kernel's slot order (checked against ``fastopt._step.kernel_spec``).
    kernel_inputs : callable
        ``kernel_inputs(hyper) -> dict``: the kernel's named inputs from the hyperparameters.
    check : callable or None
        ``check(hyper)`` raises ValueError where hyperparameters contradict each other.
    aliases : tuple of str
        Other method names (``"gd"`` for ``"sgd"``).
    title : str
        What its method callable's docstring calls it (README's table of optimizers has a
        row for each class: a test checks it).
    options : mapping
        Options (``lr``, ...) that make it converge, by situation: ``"example"`` (the
        docstring example of ``fastopt.<method>``: minimise ``sum((x - 3)**2)``),
        ``"quadratic"``, ``"rosenbrock"`` (the driver tests), ``"least_squares"`` (the
        mini-batch tests). A situation it is left out of is not tested there.
    racers : tuple of Racer
        Its entries in the race and the demo.
    torch : str or None
        The torch.optim class it matches (reference checks, the benchmark's torch columns).
    torch_kwargs : mapping
        Extra arguments that make the torch twin (Momentum: ``momentum=0.9``).
    bench : mapping or None
        Its keyword arguments in ``python -m fastopt bench`` and asv (None: not benchmarked).
    cls : type
        The class (set when the class is made).
    """

    method: str
    kernel: str
    hyperparameters: tuple
    state: tuple
    kernel_inputs: object
    check: object = None
    aliases: tuple = ()
    title: str = ""
    options: object = field(default_factory=dict)
    racers: tuple = ()
    torch: str = None
    torch_kwargs: object = field(default_factory=dict)
    bench: object = None
    cls: type = field(default=None, compare=False)

    @property
    def methods(self):
        """Every name of the method: its own, then its aliases."""
        return (self.method, *self.aliases)

    @cached_property  # (read at every validation: a scheduler's momentum change per step)
    def names(self):
        """Every hyperparameter's name (fixed ones included), in order."""
        return tuple(h.name for h in self.hyperparameters)

    @property
    def arguments(self):
        """The hyperparameters the constructor takes (all but the fixed ones)."""
        return tuple(h for h in self.hyperparameters if not h.fixed)

    @property
    def fixed(self):
        """The fixed hyperparameters and their values."""
        return {h.name: h.default for h in self.hyperparameters if h.fixed}

    @property
    def defaults(self):
        """Every hyperparameter's default (fixed ones at their value)."""
        return {h.name: h.default for h in self.hyperparameters}

    @property
    def slot_names(self):
        return tuple(s.name for s in self.state)

    @property
    def nonnegative_state(self):
        return frozenset(s.name for s in self.state if s.nonnegative)

    def derive(self, *, defaults=None, fixed=None, **changes):
        """A record for a variant: other ``defaults``, some hyperparameters ``fixed``, and
        any field replaced (``method``, ``kernel_inputs``, ...)."""
        defaults, fixed = defaults or {}, fixed or {}
        names = [h.name for h in changes.get("hyperparameters", self.hyperparameters)]
        unknown = (set(defaults) | set(fixed)) - set(names)
        if unknown:
            raise ValueError(f"no hyperparameters {sorted(unknown)} in {self.method}'s record")
        hyperparameters = tuple(
            replace(h, default=fixed[h.name], fixed=True) if h.name in fixed
            else replace(h, default=defaults[h.name]) if h.name in defaults else h
            for h in changes.pop("hyperparameters", self.hyperparameters)
        )
        return replace(self, hyperparameters=hyperparameters, cls=None, **changes)


# -- the hyperparameters most optimizers share, with torch's checks and messages --------------

def lr(default, sample=(1e-4, 0.5)):
    return Hyperparameter("lr", default, check_lr, sample)


def weight_decay(default=0.0, sample=(0.0, 0.5)):
    return Hyperparameter("weight_decay", default, check_weight_decay, sample)


def eps(default, sample=(1e-8, 1e-3)):
    return Hyperparameter("eps", default, check_eps, sample)


def betas(default=(0.9, 0.999), sample=((0.0, 0.99), (0.0, 0.99))):
    return Hyperparameter("betas", default, check_betas, sample)


def flag(name, default=False, keyword_only=False):
    """A bool hyperparameter (``maximize`` is keyword-only, as in torch)."""
    return Hyperparameter(name, default, partial(check_bool, name), "bool", keyword_only)


def maximize():
    return flag("maximize", keyword_only=True)


def real(name, default, *, low=None, high=None, sample=None, what=None):
    """A real hyperparameter in ``[low, high]`` (torch's "Invalid <what>" messages)."""
    check = partial(check_real, name, what=what or f"{name} value", low=low, high=high)
    return Hyperparameter(name, default, check, sample)
