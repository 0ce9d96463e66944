"""One table of every optimizer: its class, NumPy reference, torch.optim defaults, flag
settings to test, and bad hyperparameters with the error they must raise.

Tests are generated from this table (torch's ``common_optimizers.py`` style): a new optimizer
is one entry here plus its reference in ``_reference.py``.
"""

from dataclasses import dataclass, field

import fastopt

from fastopt import _reference as ref


@dataclass
class OptimizerCase:
    cls: type
    reference: object
    defaults: dict  # torch.optim's defaults (Momentum and NAG: their own)
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

OPTIMIZERS = [
    OptimizerCase(
        fastopt.SGD, ref.sgd, _SGD_DEFAULTS,
        variants=[
            {},
            {"lr": 0.1},
            {"lr": 0.05, "weight_decay": 0.1},
            {"lr": 0.01, "momentum": 0.9},
            {"lr": 0.01, "momentum": 0.9, "dampening": 0.5},
            {"lr": 0.01, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01},
            {"lr": 0.01, "momentum": 0.5, "maximize": True},
        ],
        bad_kwargs=_SGD_BAD,
        torch_name="SGD",
    ),
    OptimizerCase(
        fastopt.Momentum, ref.sgd, dict(_SGD_DEFAULTS, momentum=0.9),
        variants=[{}, {"lr": 0.01, "dampening": 0.3, "weight_decay": 0.01}],
        bad_kwargs=_SGD_BAD,
        torch_name="SGD", torch_kwargs={"momentum": 0.9},
    ),
    OptimizerCase(
        fastopt.NAG, ref.sgd, dict(_SGD_DEFAULTS, momentum=0.9, nesterov=True),
        variants=[{}, {"lr": 0.01, "momentum": 0.5, "maximize": True}],
        bad_kwargs=_COMMON_BAD + [
            ({"momentum": 0.0}, ValueError, "Nesterov momentum requires a momentum"),
            ({"dampening": 0.5}, ValueError, "Nesterov momentum requires a momentum and zero"),
            ({"nesterov": False}, TypeError, "nesterov"),  # not an argument of NAG
        ],
        torch_name="SGD", torch_kwargs={"momentum": 0.9, "nesterov": True},
    ),
    OptimizerCase(
        fastopt.Adagrad, ref.adagrad,
        dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
             maximize=False),
        variants=[
            {},
            {"lr": 0.1, "lr_decay": 0.05},
            {"initial_accumulator_value": 0.5, "weight_decay": 0.1},
            {"eps": 1e-6, "maximize": True},
        ],
        bad_kwargs=_COMMON_BAD + [
            ({"lr_decay": -1.0}, ValueError, "Invalid lr_decay value: lr_decay=-1.0"),
            ({"initial_accumulator_value": -0.1}, ValueError,
             "Invalid initial_accumulator_value value"),
            ({"eps": -1.0}, ValueError, "Invalid epsilon value"),
        ],
        torch_name="Adagrad",
    ),
    OptimizerCase(
        fastopt.RMSprop, ref.rmsprop,
        dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
             maximize=False),
        variants=[
            {},
            {"centered": True},
            {"momentum": 0.9},
            {"momentum": 0.5, "centered": True, "weight_decay": 0.1},
            {"alpha": 0.9, "eps": 1e-4, "maximize": True},
        ],
        bad_kwargs=_COMMON_BAD + [
            ({"alpha": -0.1}, ValueError, "Invalid alpha value: alpha=-0.1"),
            ({"alpha": 1.5}, ValueError, "Invalid alpha value"),
            ({"momentum": -1.0}, ValueError, "Invalid momentum value"),
            ({"centered": "no"}, TypeError, "centered='no' must be a bool"),
            ({"eps": -1.0}, ValueError, "Invalid epsilon value"),
        ],
        torch_name="RMSprop",
    ),
    OptimizerCase(
        fastopt.Adadelta, ref.adadelta,
        dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False),
        variants=[
            {},
            {"rho": 0.5, "eps": 1e-4},
            {"lr": 0.5, "weight_decay": 0.1, "maximize": True},
        ],
        bad_kwargs=_COMMON_BAD + [
            ({"rho": 1.1}, ValueError, "Invalid rho value: rho=1.1"),
            ({"rho": -0.1}, ValueError, "Invalid rho value"),
            ({"eps": -1.0}, ValueError, "Invalid epsilon value"),
        ],
        torch_name="Adadelta",
    ),
    OptimizerCase(
        fastopt.Adam, ref.adam,
        dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
             maximize=False),
        variants=_ADAM_VARIANTS, bad_kwargs=_ADAM_BAD, torch_name="Adam",
    ),
    OptimizerCase(
        fastopt.AdamW, ref.adamw,
        dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
             maximize=False),
        variants=_ADAM_VARIANTS + [{"weight_decay": 0.0}],
        bad_kwargs=_ADAM_BAD, torch_name="AdamW",
    ),
]


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
