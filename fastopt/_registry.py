"""Every optimizer, in one ordered list: the records of the classes in the family modules.

Everything that lists optimizers reads this module: the exports (fastopt/__init__.py), the
``scipy.optimize.minimize`` callables (fastopt/_scipy.py), the drivers' method names
(fastopt/_methods.py), the race, the demo, the benchmarks and the tests. A new optimizer in
one of ``FAMILIES`` is found here with no change; a new family module is one line below.
"""

from fastopt import (
    _adafactor,
    _adam,
    _adaptive,
    _classic,
    _lion,
    _nadam,
    _radam,
    _schedulefree,
    _sgd,
)
from fastopt._base import Optimizer

# The modules that define optimizers, in the order the optimizers are listed everywhere.
FAMILIES = (_sgd, _adaptive, _adam, _nadam, _radam, _lion, _classic, _adafactor,
            _schedulefree)


def _records(module):
    """The records of the optimizer classes ``module`` defines, in definition order."""
    return [value.record for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, Optimizer)
            and value.__module__ == module.__name__ and "record" in vars(value)]


RECORDS = tuple(record for module in FAMILIES for record in _records(module))

# Method name -> record (each method's own name, then its aliases: "sgd", "gd", ...).
BY_METHOD = {name: record for record in RECORDS for name in record.methods}

# Race key -> (record, racer).
RACERS = {racer.key: (record, racer) for record in RECORDS for racer in record.racers}


def _check_unique():
    classes = [record.cls.__name__ for record in RECORDS]
    methods = [name for record in RECORDS for name in record.methods]
    racers = [racer.key for record in RECORDS for racer in record.racers]
    for what, names in (("class", classes), ("method", methods), ("racer", racers)):
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise TypeError(f"optimizer records repeat the {what} names {repeated}")


_check_unique()
