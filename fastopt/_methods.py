"""The one registry of optimizers by method name, for ``minimize`` and the mini-batch driver.

Adding an optimizer means: its kernel, its class, one line here, its NumPy reference in tests.
"""

from fastopt._adam import Adam, AdamW
from fastopt._adaptive import Adadelta, Adagrad, RMSprop
from fastopt._sgd import NAG, SGD, Momentum

# GD and SGD are the same rule: in ``minimize`` both see the exact gradient of ``fun``; in
# ``minimize_minibatch`` the batch size decides what gradient they see.
METHODS = {
    "gd": SGD,
    "sgd": SGD,
    "momentum": Momentum,
    "nag": NAG,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adadelta": Adadelta,
    "adam": Adam,
    "adamw": AdamW,
}


# fastopt's ``scipy.optimize.minimize`` methods (fastopt.adam, ...) by identity -> their
# names; fastopt/_scipy.py registers each as it makes it.
_CALLABLES = {}


def register_callable(name, function):
    """Make ``function`` (fastopt.<name>) stand for the method ``name`` in the drivers."""
    _CALLABLES[id(function)] = (name, function)


def method_name(method):
    """The registry's name of ``method``: a name (case-insensitive), one of fastopt's method
    callables (``fastopt.adam``, ...) or an optimizer class (``fastopt.Adam``).

    Raises
    ------
    TypeError
        If ``method`` is neither a string nor one of fastopt's methods (a foreign callable:
        run it with ``scipy.optimize.minimize`` instead).
    ValueError
        If it is a string that names no fastopt method.
    """
    if isinstance(method, str):
        name = method.lower()
        if name in METHODS:
            return name
        raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}")
    entry = _CALLABLES.get(id(method))
    if entry is not None and entry[1] is method:
        return entry[0]
    if isinstance(method, type):
        names = [name for name, cls in METHODS.items() if cls is method]
        if names:  # SGD is "gd" and "sgd": take the one that is its own name
            return method.__name__.lower() if method.__name__.lower() in names else names[0]
    choices = ", ".join(METHODS)
    if callable(method):
        raise TypeError(
            f"method={getattr(method, '__qualname__', method)!r} is not one of fastopt's "
            f"methods: pass a name ({choices}) or fastopt's callable of one (fastopt.adam, "
            "...); to run another minimizer, call scipy.optimize.minimize with it"
        )
    raise TypeError(f"method must be a string such as 'adam' or one of fastopt's method "
                    f"callables (fastopt.adam, ...), got {type(method).__name__}")


def optimizer_class(method):
    """The class of ``method`` (see :func:`method_name` for what it may be).

    Raises
    ------
    TypeError, ValueError
        As :func:`method_name`.
    """
    return METHODS[method_name(method)]
