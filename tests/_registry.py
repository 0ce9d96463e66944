"""The tests' table of every optimizer, made from fastopt's optimizer records
(fastopt/_registry.py): its class, NumPy reference, defaults, flag settings to test, and bad
hyperparameters with the error they must raise.

Tests are generated from this table (torch's ``common_optimizers.py`` style). A new optimizer
needs no entry here: its variants (defaults, each flag switched, every real hyperparameter
inside its sample range) and bad values (a string, NaN, a non-bool flag for each
hyperparameter) are derived from its record. ``EXTRA_VARIANTS`` and ``EXTRA_BAD`` add the
hand-picked cases of each class; the defaults are checked against torch.optim itself in
test_torch.py.
"""

import re
from dataclasses import dataclass, field

import fastopt
from fastopt._registry import RECORDS

from fastopt import _reference as ref


@dataclass
class OptimizerCase:
    cls: type
    reference: object
    defaults: dict  # the record's defaults (torch.optim's: test_torch checks them)
    variants: list  # kwargs covering every flag; {} is the defaults
    bad_kwargs: list = field(default_factory=list)  # (kwargs, error, match)
    torch_name: str = ""  # class in torch.optim
    torch_kwargs: dict = field(default_factory=dict)  # extra kwargs to build the torch twin

    @property
    def name(self):
        return self.cls.__name__


_COMMON_BAD = [
    ({"lr": -1.0}, ValueError, "Invalid learning rate: lr=-1.0"),
    ({"lr": float("nan")}, ValueError, "Invalid learning rate: lr=nan"),
    ({"lr": float("inf")}, ValueError, "lr=inf must be finite"),
    ({"lr": "0.1"}, TypeError, "Invalid learning rate: lr='0.1'"),
    ({"lr": None}, TypeError, "lr=None"),
    ({"lr": True}, TypeError, "lr=True"),
    ({"weight_decay": -0.1}, ValueError, "Invalid weight_decay value: weight_decay=-0.1"),
    ({"maximize": 1}, TypeError, "maximize=1 must be a bool"),
    ({"maximize": "yes"}, TypeError, "maximize='yes'"),
    ({"n_threads": 0}, ValueError, "n_threads=0"),
    ({"n_threads": 1.5}, TypeError, "n_threads"),
    ({"flush_subnormals": 1}, TypeError, "flush_subnormals=1 must be a bool"),
    ({"flush_subnormals": "yes"}, TypeError, "flush_subnormals='yes'"),
    ({"no_such_option": 1}, TypeError, "no_such_option"),
]

_SGD_DEFAULTS = dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                     maximize=False)

_SGD_BAD = _COMMON_BAD + [
    ({"momentum": -0.5}, ValueError, "Invalid momentum value: momentum=-0.5"),
    ({"dampening": 1.5}, ValueError, "Invalid dampening value: dampening=1.5"),
    ({"momentum": 0.9, "dampening": 0.1, "nesterov": True}, ValueError,
     "Nesterov momentum requires a momentum and zero dampening"),
]

_ADAM_VARIANTS = [
    {},
    {"lr": 0.05},
    {"amsgrad": True},
    {"weight_decay": 0.1},
    {"weight_decay": 0.05, "amsgrad": True, "maximize": True},
    {"betas": (0.5, 0.9), "eps": 1e-6, "lr": 0.01},
    {"betas": (0.0, 0.0), "lr": 0.01},
]

_ADAM_BAD = _COMMON_BAD + [
    ({"betas": (1.0, 0.999)}, ValueError, r"Invalid beta parameter at index 0: betas\[0\]=1.0"),
    ({"betas": (0.9, -0.1)}, ValueError, r"Invalid beta parameter at index 1: betas\[1\]=-0.1"),
    ({"betas": 0.9}, TypeError, "Invalid betas: betas=0.9"),
    ({"betas": (0.9, 0.99, 0.999)}, TypeError, "Invalid betas"),
    ({"eps": -1e-8}, ValueError, "Invalid epsilon value: eps=-1e-08"),
    ({"amsgrad": None}, TypeError, "amsgrad=None must be a bool"),
]

# Hand-picked cases on top of the derived ones, by class name.
EXTRA_VARIANTS = {
    "SGD": [
        {"lr": 0.1},
        {"lr": 0.05, "weight_decay": 0.1},
        {"lr": 0.01, "momentum": 0.9},
        {"lr": 0.01, "momentum": 0.9, "dampening": 0.5},
        {"lr": 0.01, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01},
        {"lr": 0.01, "momentum": 0.5, "maximize": True},
    ],
    "Momentum": [{"lr": 0.01, "dampening": 0.3, "weight_decay": 0.01}],
    "NAG": [{"lr": 0.01, "momentum": 0.5, "maximize": True}],
    "Adagrad": [
        {"lr": 0.1, "lr_decay": 0.05},
        {"initial_accumulator_value": 0.5, "weight_decay": 0.1},
        {"eps": 1e-6, "maximize": True},
    ],
    "RMSprop": [
        {"centered": True},
        {"momentum": 0.9},
        {"momentum": 0.5, "centered": True, "weight_decay": 0.1},
        {"alpha": 0.9, "eps": 1e-4, "maximize": True},
    ],
    "Adadelta": [
        {"rho": 0.5, "eps": 1e-4},
        {"lr": 0.5, "weight_decay": 0.1, "maximize": True},
    ],
    "Adam": _ADAM_VARIANTS + [
        {"weight_decay": 0.1, "decoupled_weight_decay": True},
        {"lr": 0.05, "weight_decay": 0.05, "amsgrad": True, "decoupled_weight_decay": True},
    ],
    "AdamW": _ADAM_VARIANTS + [{"weight_decay": 0.0}],
    # Every combination of weight decay (coupled, decoupled), maximize; the schedule.
    "NAdam": [
        {"weight_decay": 0.1, "decoupled_weight_decay": True},
        {"weight_decay": 0.1, "maximize": True},
        {"decoupled_weight_decay": True, "maximize": True},
        {"lr": 0.01, "betas": (0.5, 0.9), "momentum_decay": 0.1},
        {"lr": 0.01, "betas": (0.0, 0.0), "momentum_decay": 0.0},
    ],
    "RAdam": [  # rectified from step 6 with the default betas; never with beta2 <= 0.6
        {"lr": 0.05, "weight_decay": 0.1},
        {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True},
        {"betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.05,
         "decoupled_weight_decay": True, "maximize": True},
        {"betas": (0.5, 0.6), "lr": 0.01},
        {"betas": (0.0, 0.0), "lr": 0.01},
    ],
    "Lion": [
        {"lr": 0.01, "weight_decay": 0.1},
        {"lr": 0.01, "betas": (0.0, 0.99)},  # signSGD
        {"betas": (0.95, 0.98), "weight_decay": 1.0, "maximize": True},
    ],
}

EXTRA_BAD = {
    "SGD": _SGD_BAD,
    "Momentum": _SGD_BAD,
    "NAG": _COMMON_BAD + [
        ({"momentum": 0.0}, ValueError, "Nesterov momentum requires a momentum"),
        ({"dampening": 0.5}, ValueError, "Nesterov momentum requires a momentum and zero"),
        ({"nesterov": False}, TypeError, "nesterov"),  # not an argument of NAG
    ],
    "Adagrad": _COMMON_BAD + [
        ({"lr_decay": -1.0}, ValueError, "Invalid lr_decay value: lr_decay=-1.0"),
        ({"initial_accumulator_value": -0.1}, ValueError,
         "Invalid initial_accumulator_value value"),
        ({"eps": -1.0}, ValueError, "Invalid epsilon value"),
    ],
    "RMSprop": _COMMON_BAD + [
        ({"alpha": -0.1}, ValueError, "Invalid alpha value: alpha=-0.1"),
        ({"alpha": 1.5}, ValueError, "Invalid alpha value"),
        ({"momentum": -1.0}, ValueError, "Invalid momentum value"),
        ({"centered": "no"}, TypeError, "centered='no' must be a bool"),
        ({"eps": -1.0}, ValueError, "Invalid epsilon value"),
    ],
    "Adadelta": _COMMON_BAD + [
        ({"rho": 1.1}, ValueError, "Invalid rho value: rho=1.1"),
        ({"rho": -0.1}, ValueError, "Invalid rho value"),
        ({"eps": -1.0}, ValueError, "Invalid epsilon value"),
    ],
    "Adam": _ADAM_BAD + [
        ({"decoupled_weight_decay": None}, TypeError, "decoupled_weight_decay=None must be"),
    ],
    "AdamW": _ADAM_BAD + [
        ({"decoupled_weight_decay": False}, TypeError, "decoupled_weight_decay"),  # fixed
    ],
    "RAdam": [b for b in _ADAM_BAD if "amsgrad" not in b[0]] + [
        ({"decoupled_weight_decay": "no"}, TypeError, "decoupled_weight_decay='no' must be"),
    ],
    "Lion": _COMMON_BAD + [
        ({"betas": (1.0, 0.99)}, ValueError, r"Invalid beta parameter at index 0"),
        ({"betas": (0.9, 1.0)}, ValueError, r"Invalid beta parameter at index 1"),
        ({"eps": 1e-8}, TypeError, "eps"),  # Lion has none
    ],
    "NAdam": [bad for bad in _ADAM_BAD if "amsgrad" not in bad[0]] + [
        ({"momentum_decay": -0.1}, ValueError,
         "Invalid momentum_decay value: momentum_decay=-0.1"),
        ({"decoupled_weight_decay": None}, TypeError, "decoupled_weight_decay=None must be a bool"),
    ],
    "Rprop": [bad for bad in _COMMON_BAD if "weight_decay" not in bad[0]] + [
        ({"etas": (0.5, 1.0)}, ValueError, r"Invalid eta values: etas=\(0.5, 1.0\)"),
        ({"etas": (0.0, 1.2)}, ValueError, "Invalid eta values"),
        ({"etas": (1.2, 0.5)}, ValueError, "Invalid eta values"),
        ({"etas": (0.5, float("nan"))}, ValueError, r"etas\[1\]=nan"),
        ({"etas": 0.5}, TypeError, "Invalid eta values: etas=0.5 must be a pair"),
        ({"step_sizes": (1.0, 0.5)}, ValueError,
         r"Invalid step sizes: step_sizes=\(1.0, 0.5\) must have step_sizes\[0\] <= "),
        ({"step_sizes": (-1e-6, 50)}, ValueError, r"step_sizes\[0\]=-1e-06"),
        ({"step_sizes": (1e-6, float("inf"))}, ValueError, r"step_sizes\[1\]=inf"),
        ({"step_sizes": {1e-6, 50}}, TypeError, "step_sizes"),
    ],
    "ASGD": _COMMON_BAD + [
        ({"lambd": -1e-4}, ValueError, "Invalid lambd value: lambd=-0.0001"),
        ({"alpha": -0.5}, ValueError, "Invalid alpha value: alpha=-0.5"),
        ({"t0": -1.0}, ValueError, "Invalid t0 value: t0=-1.0"),
        ({"t0": float("inf")}, ValueError, "t0=inf must be finite"),
    ],
}


def _inside(sample, fraction):
    """A point ``fraction`` of the way through a sample range (pairs: each of them; a
    ``range``, for an int hyperparameter: one of its values)."""
    if isinstance(sample, range):
        return sample[int(fraction * (len(sample) - 1))]
    if isinstance(sample[0], tuple):
        return tuple(_inside(s, fraction) for s in sample)
    low, high = sample
    return float(f"{low + fraction * (high - low):.3g}")


def accepts(cls, kwargs):
    """Whether ``cls`` takes these hyperparameters together (with its defaults for the
    others): SGD's nesterov, for one, needs momentum and no dampening."""
    try:
        cls._check_hyperparameters(**{**cls.record.defaults, **kwargs})
    except ValueError:
        return False
    return True


def derived_variants(record):
    """Defaults, each flag switched, every real inside its sample range (alone and with every
    flag switched): the settings every optimizer is tested with, valid ones only."""
    flags = {h.name: not h.default for h in record.arguments if h.sample == "bool"}
    reals = {h.name: _inside(h.sample, 0.3)
             for h in record.arguments if h.sample not in (None, "bool")}
    variants = [{}, *({name: value} for name, value in flags.items()), reals,
                {**reals, **flags}]
    return [v for v in variants if accepts(record.cls, v)]


def flag_combinations(record):
    """Every combination of the flags (each on or off), with every real inside its sample
    range (so that a flag acting on a weight decay or a momentum has one to act on): valid
    ones only. derived_variants switches the flags one at a time and all together; the
    torch checks take every combination."""
    import itertools

    flags = [h.name for h in record.arguments if h.sample == "bool"]
    reals = {h.name: _inside(h.sample, 0.3)
             for h in record.arguments if h.sample not in (None, "bool")}
    variants = [{**reals, **dict(zip(flags, values))}
                for values in itertools.product((False, True), repeat=len(flags))]
    return [v for v in variants if accepts(record.cls, v)]


def derived_bad_kwargs(record):
    """A string for every hyperparameter (TypeError), NaN for every real (ValueError), 1 for
    every flag (TypeError): each message names the hyperparameter."""
    bad = []
    for h in record.arguments:
        name = re.escape(h.name)
        bad.append(({h.name: "x"}, TypeError, f"{name}"))
        if h.sample == "bool":
            bad.append(({h.name: 1}, TypeError, f"{name}=1 must be a bool"))
        elif isinstance(h.sample, range):
            bad.append(({h.name: 1.5}, TypeError, f"{name}=1.5 must be an int"))
            bad.append(({h.name: h.sample.start - 1}, ValueError, f"{name}="))
        elif isinstance(h.sample, tuple) and not isinstance(h.sample[0], tuple):
            bad.append(({h.name: float("nan")}, ValueError, f"{name}=nan"))
    return bad


def _unique(items):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _common_bad(record):
    """The common bad cases that apply to ``record`` (not every optimizer has ``maximize``:
    the schedule-free ones follow the schedulefree package, which has none)."""
    return [case for case in _COMMON_BAD
            if all(k in record.names or k in ("n_threads", "flush_subnormals", "no_such_option")
                   for k in case[0])]


def _reference(record):
    return getattr(ref, record.method, None) or getattr(ref, record.kernel)


OPTIMIZERS = [
    OptimizerCase(
        record.cls, _reference(record), record.defaults,
        variants=_unique(derived_variants(record)
                         + EXTRA_VARIANTS.get(record.cls.__name__, [])),
        bad_kwargs=_unique(derived_bad_kwargs(record)
                           + EXTRA_BAD.get(record.cls.__name__, _common_bad(record))),
        torch_name=record.torch or "", torch_kwargs=dict(record.torch_kwargs),
    )
    for record in RECORDS
]


def all_state_kwargs(case):
    """Constructor kwargs (lr 0.1 and a variant's flags) under which ``case`` makes every
    state slot it has (the variant that uses the most)."""
    cls = case.cls

    def slots(variant):
        return len(cls._state_names(cls._check_hyperparameters(**{**case.defaults, **variant})))

    best = max(case.variants, key=slots)
    # (the state names end with the kernel's running scalars, always there)
    assert slots(best) == len(cls.record.state) + len(cls._scalars), \
        f"no variant of {case.name} uses every slot"
    return {**{k: v for k, v in best.items() if k != "lr"}, "lr": 0.1}


def scalar_names(cls):
    """The names of the running scalars of ``cls``'s kernel (NAdam: ``mu_product``): 0-d
    float64 entries at the end of each parameter's state (fastopt._step.kernel_spec)."""
    return tuple(name for name, _ in cls._scalars)


def state_arrays(opt, i=0):
    """Parameter ``i``'s state arrays, shaped like it: ``opt.state[i]`` without the running
    scalars."""
    return {k: v for k, v in opt.state[i].items() if k not in scalar_names(type(opt))}


# Every state slot that holds squares (negative entries refused), from the records.
SQUARES = frozenset().union(*(record.nonnegative_state for record in RECORDS))


def variant_cases():
    """(case, kwargs) pairs for every flag setting of every optimizer, with readable ids."""
    import pytest

    return [
        pytest.param(case, kwargs, id=f"{case.name}-{_kwargs_id(kwargs)}")
        for case in OPTIMIZERS for kwargs in case.variants
    ]


def bad_kwarg_cases():
    import pytest

    return [
        pytest.param(case, kwargs, error, match, id=f"{case.name}-{_kwargs_id(kwargs)}")
        for case in OPTIMIZERS for kwargs, error, match in case.bad_kwargs
    ]


def _kwargs_id(kwargs):
    return ",".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults"
