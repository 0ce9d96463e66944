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


def optimizer_class(method):
    """The class for a method name (case-insensitive).

    Raises
    ------
    TypeError
        If ``method`` is not a string.
    ValueError
        If it names no fastopt method.
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a string such as 'adam', got {type(method).__name__}")
    try:
        return METHODS[method.lower()]
    except KeyError:
        raise ValueError(
            f"Unknown method {method!r}; choose one of {', '.join(METHODS)}"
        ) from None
