"""Method names for the drivers: a name, one of fastopt's method callables, or a class.

The names come from the optimizer records (fastopt/_registry.py). L-BFGS (``"lbfgs"``,
``fastopt.lbfgs``) is not an elementwise rule and has no record: the drivers that run it ask
:func:`is_lbfgs` first; :func:`method_name` refuses it with a message saying where it runs.
"""

from fastopt._registry import BY_METHOD

# Method name -> optimizer class. GD and SGD are the same rule: in ``minimize`` both see the
# exact gradient of ``fun``; in ``minimize_minibatch`` the batch size decides what gradient
# they see.
METHODS = {name: record.cls for name, record in BY_METHOD.items()}


# fastopt's ``scipy.optimize.minimize`` methods (fastopt.adam, ...) by identity -> their
# names; fastopt/_scipy.py registers each as it makes it.
_CALLABLES = {}


def register_callable(name, function):
    """Make ``function`` (fastopt.<name>) stand for the method ``name`` in the drivers."""
    _CALLABLES[id(function)] = (name, function)


LBFGS = "lbfgs"
_LBFGS_CALLABLES = []  # fastopt.lbfgs (fastopt/_scipy.py registers it)


def register_lbfgs(function):
    """Make ``function`` (fastopt.lbfgs) stand for the method ``"lbfgs"`` in the drivers."""
    _LBFGS_CALLABLES.append(function)


def is_lbfgs(method):
    """Whether ``method`` is L-BFGS: the name ``"lbfgs"`` (case-insensitive) or
    ``fastopt.lbfgs``."""
    if isinstance(method, str):
        return method.lower() == LBFGS
    return any(method is f for f in _LBFGS_CALLABLES)


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
    if is_lbfgs(method):
        raise ValueError("method 'lbfgs' (L-BFGS) runs in fastopt.minimize, "
                         "scipy.optimize.minimize(method=fastopt.lbfgs) and minimize_batch; "
                         "it is not an elementwise update rule")
    if isinstance(method, str):
        name = method.lower()
        if name in METHODS:
            return name
        raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}")
    entry = _CALLABLES.get(id(method))
    if entry is not None and entry[1] is method:
        return entry[0]
    if isinstance(method, type):
        record = getattr(method, "record", None)
        if record is not None and record.cls is method and BY_METHOD.get(record.method) is record:
            return record.method
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
