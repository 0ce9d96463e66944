"""Checks of arrays and hyperparameters shared by every optimizer.

Each check raises ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind, bad value)
with a message that names the argument and shows the bad value, in torch.optim's style
("Invalid learning rate: ..."). Checks never modify their inputs, so an optimizer can run all
of them before it touches any array.
"""

import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _describe(value):
    """Short description of a bad value for an error message."""
    if isinstance(value, np.ndarray):
        return f"ndarray(shape={value.shape}, dtype={value.dtype})"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------------
# Hyperparameters


# Types that register as numbers (numbers.Integral) but are not a quantity an option can take:
# bools, and NumPy's timedelta64 (a subclass of numpy.signedinteger).
NOT_A_NUMBER = (bool, np.bool_, np.timedelta64)


def _scalar(value, kinds):
    """``value`` itself, or the scalar in it if it is a 0-d array of a dtype kind in ``kinds``
    (NumPy users write ``np.array(0.1)`` for a number; ``numpy.load`` returns 0-d arrays)."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in kinds:
        return value[()]
    return value


def check_real(name, value, what, *, low=None, high=None, low_open=False, high_open=False):
    """Return ``value`` as a float after checking its type and range.

    Parameters
    ----------
    name : str
        Argument name, shown in the message.
    value : object
        The value to check: a real number (Python or NumPy, or a 0-d array of real dtype),
        not a bool.
    what : str
        Human description, torch style ("learning rate", "epsilon value").
    low, high : float or None
        Bounds; inclusive unless ``low_open``/``high_open``.

    Raises
    ------
    TypeError
        If ``value`` is not a real number (bools, complex numbers, strings and arrays with
        more than one element are not).
    ValueError
        If it is NaN, infinite (or too large for a float), or out of range.
    """
    if type(value) is not float:  # (the common case skips the slower checks)
        number = _scalar(value, "fiu")
        if isinstance(number, NOT_A_NUMBER) or not isinstance(number, numbers.Real):
            raise TypeError(f"Invalid {what}: {name}={_describe(value)} must be a real number")
        try:
            value = float(number)
        except OverflowError:  # an int beyond the float range
            raise ValueError(f"Invalid {what}: {name}={_describe(number)} must be finite "
                             "(it is too large for a float)") from None
    if not math.isfinite(value):
        raise ValueError(f"Invalid {what}: {name}={value} must be finite")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(f"Invalid {what}: {name}={value!r} must be in {left}{lo}, {hi}{right}")
    return value


def check_lr(lr):
    return check_real("lr", lr, "learning rate", low=0.0)


def check_eps(eps):
    return check_real("eps", eps, "epsilon value", low=0.0)


def check_weight_decay(weight_decay):
    return check_real("weight_decay", weight_decay, "weight_decay value", low=0.0)


def check_bool(name, value):
    """Return ``value`` as a bool; only ``bool``, ``numpy.bool_`` and 0-d bool arrays are
    accepted (not 0/1, not strings)."""
    flag = _scalar(value, "b")
    if not isinstance(flag, (bool, np.bool_)):
        raise TypeError(f"Invalid {name}: {name}={_describe(value)} must be a bool")
    return bool(flag)


def check_pair(name, value, what):
    """Return ``value`` as a tuple of its two items, in order (not yet checked themselves).

    Accepts a sequence (tuple, list, ...) or a 1-d array of length 2. Sets, dicts, iterators
    and other containers without a defined order are refused: taken in hash order they would
    silently swap the two values.
    """
    ordered = isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))
    if isinstance(value, np.ndarray):
        ordered = value.ndim == 1
    if not ordered or len(value) != 2:
        kind = "" if ordered else f" (got {type(value).__name__}: a pair must be ordered)"
        raise TypeError(f"Invalid {what}: {name}={_describe(value)} must be a pair (a tuple "
                        f"or list of two numbers){kind}")
    return value[0], value[1]


def check_betas(betas):
    """Return ``betas`` as a tuple of two floats, each in [0, 1)."""
    beta1, beta2 = check_pair("betas", betas, "betas")
    return (check_real("betas[0]", beta1, "beta parameter at index 0", low=0.0, high=1.0,
                       high_open=True),
            check_real("betas[1]", beta2, "beta parameter at index 1", low=0.0, high=1.0,
                       high_open=True))


def check_int(name, value, *, low=None, high=None, what=None, integral_floats=False):
    """Return ``value`` as an int after checking its type and range: the one integer check of
    fastopt (state-dict step counts, ``batch_size``, seeds).

    Parameters
    ----------
    name : str
        Argument name, shown in the message.
    value : object
        An int: Python or NumPy, or a 0-d array of integer dtype; bools and
        ``numpy.timedelta64`` are not. With ``integral_floats``, also a float with an integral
        value (``3.0``; torch keeps ``step`` as a float tensor).
    low, high : int or None
        Inclusive bounds.
    what : str or None
        Human description: the message then starts with ``"Invalid {what}: "``.

    Raises
    ------
    TypeError
        If ``value`` is not an int (nor, with ``integral_floats``, an integral float).
    ValueError
        If it is out of ``[low, high]``.
    """
    prefix = "" if what is None else f"Invalid {what}: "
    number = _scalar(value, "fiu")
    if integral_floats and isinstance(number, (float, np.floating)):
        if math.isfinite(number) and float(number).is_integer():
            number = int(number)
    if isinstance(number, NOT_A_NUMBER) or not isinstance(number, numbers.Integral):
        raise TypeError(f"{prefix}{name}={_describe(value)} must be an int")
    number = int(number)
    if (low is not None and number < low) or (high is not None and number > high):
        if high is None:
            bound = f">= {low}"
        elif low is None:
            bound = f"<= {high}"
        else:
            bound = f"in [{low}, {high}]"
        raise ValueError(f"{prefix}{name}={number} must be {bound}")
    return number


# The largest step count (a state dict's "step") an optimizer accepts: far beyond any run,
# and the C code's count (Py_ssize_t) cannot overflow when it steps on.
MAX_STEP = 2 ** 62


def check_step(step):
    """Return a step count (an int in [0, MAX_STEP)) read from a state dict.

    NumPy integers and 0-d integer arrays are accepted, as are floats with an integral value
    (torch keeps ``step`` as a float tensor); bools and fractions are not.
    """
    return check_int("step", step, low=0, high=MAX_STEP - 1, what="step", integral_floats=True)


# ---------------------------------------------------------------------------------------------
# Arrays


def _check_param_array(name, p):
    if not isinstance(p, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(p).__name__}")
    if p.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {p.dtype}")
    if not p.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if not p.flags.writeable:
        raise ValueError(f"{name} must be writeable: it is updated in place")


def memory_spans(arrays):
    """Byte ranges of the arrays with data, as an int64 array of rows (start, end, index)
    sorted by start; the gradient checks search it (fastopt/_step.pyx)."""
    rows = sorted(
        (a.__array_interface__["data"][0], a.__array_interface__["data"][0] + a.nbytes, i)
        for i, a in enumerate(arrays) if a.nbytes
    )
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def _byte_ranges_overlap(arrays):
    """Index pair of two arrays whose memory overlaps, or None (sorted by address)."""
    spans = memory_spans(arrays)
    for (_, end0, i0), (start1, _, i1) in zip(spans, spans[1:]):
        if start1 < end0:
            return int(min(i0, i1)), int(max(i0, i1))
    return None


def as_real_array(name, value):
    """``value`` as an ndarray of real numbers; TypeError naming ``name`` otherwise."""
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise TypeError(f"{name} must be array-like, got {type(value).__name__}") from exc
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
    return arr


def finite_float_copy(name, arr):
    """A private C-contiguous copy of ``arr``: float32 stays float32 (the float32 kernels run),
    other real dtypes become float64; ValueError naming ``name`` on NaN or inf."""
    dtype = np.float32 if arr.dtype == np.float32 else np.float64
    out = np.array(arr, dtype=dtype, order="C", copy=True)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return out


def check_params(params):
    """Validate the parameters given to an optimizer.

    Parameters
    ----------
    params : ndarray or sequence of ndarray
        Arrays of any shape, float32 or float64, C-contiguous and writeable; no two may share
        memory.

    Returns
    -------
    arrays : list of ndarray
        The same array objects (never copies).
    single : bool
        True when ``params`` was one array.
    """
    if isinstance(params, np.ndarray):
        _check_param_array("params", params)
        return [params], True
    if not isinstance(params, (list, tuple)):
        raise TypeError(
            f"params must be a numpy.ndarray or a list of them, got {type(params).__name__}"
        )
    if len(params) == 0:
        raise ValueError("params must not be empty")
    for i, p in enumerate(params):
        _check_param_array(f"params[{i}]", p)
    overlap = _byte_ranges_overlap(params)
    if overlap is not None:
        raise ValueError(
            f"params[{overlap[0]}] and params[{overlap[1]}] share memory: each parameter "
            "must be a separate array"
        )
    return list(params), False


# ---------------------------------------------------------------------------------------------
# Parameter groups (torch.optim's list of dicts)


def split_param_groups(params):
    """torch.optim's parameter groups, checked: ``[(arrays, overrides), ...]``, or None when
    ``params`` is not a list of dicts (an array, or a list of arrays: one group).

    Each dict has ``"params"`` (an array or a list of arrays, not empty) and any
    hyperparameters of its own (``overrides``, checked by the optimizer). A list mixing arrays
    and dicts, and a dict alone, are refused. The arrays of all the groups must be distinct
    (``check_group_arrays``).
    """
    if isinstance(params, Mapping):
        raise TypeError("params must be an array, a list of arrays or a list of parameter "
                        "groups (dicts), got a dict: wrap it in a list, [{'params': ...}]")
    if not isinstance(params, (list, tuple)) or not params:
        return None
    kinds = [isinstance(p, Mapping) for p in params]
    if not any(kinds):
        return None
    if not all(kinds):
        i = kinds.index(False)
        raise TypeError(f"params mixes parameter groups (dicts) and other objects: params[{i}] "
                        f"is {_describe(params[i])}; give a list of arrays or a list of "
                        "dicts, each {'params': [arrays], <hyperparameters>}")
    return [check_param_group(f"params[{g}]", group) for g, group in enumerate(params)]


def check_param_group(where, group):
    """One parameter group (a dict) checked: ``(arrays, overrides)``; ``where`` names it."""
    if not isinstance(group, Mapping):
        raise TypeError(f"{where} must be a dict {{'params': [arrays], <hyperparameters>}}, "
                        f"got {type(group).__name__}")
    if "params" not in group:
        raise ValueError(f"{where} has no 'params' key: a parameter group is a dict "
                         "{'params': [arrays], <hyperparameters>}")
    arrays = group["params"]
    if isinstance(arrays, np.ndarray):
        arrays = [arrays]
    elif isinstance(arrays, (list, tuple)):
        arrays = list(arrays)
    else:
        raise TypeError(f"{where}['params'] must be a numpy.ndarray or a list of them, got "
                        f"{type(arrays).__name__}")
    if not arrays:
        raise ValueError(f"{where}['params'] is empty: a parameter group needs at least one "
                         "array")
    for i, p in enumerate(arrays):
        _check_param_array(f"{where}['params'][{i}]", p)
    return arrays, {key: value for key, value in group.items() if key != "params"}


def check_group_arrays(params, names):
    """ValueError if two of ``params`` (the arrays of every group, in order; ``names[i]`` says
    where array i was given) are the same array or share memory."""
    overlap = _byte_ranges_overlap(params)
    if overlap is None:
        return
    i, j = sorted(overlap)
    how = "is the same array as" if params[i] is params[j] else "shares memory with"
    raise ValueError(f"{names[j]} {how} {names[i]}: an array may be in one parameter group "
                     "only, once")
