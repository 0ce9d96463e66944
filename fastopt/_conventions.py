"""How the drivers read what users write, in SciPy's and NumPy's conventions.

The checks of the drivers' own options (``maxiter``, the tolerances, ``disp``, ``epochs``,
``batch_size``, ...) and of what a ``jac=True`` objective returns, shared by
``fastopt.minimize``, ``minimize_batch`` and ``minimize_minibatch``:

* numbers as NumPy users write them (tolerances go through fastopt._validation.check_real):
  a 0-d array (``np.array(1e-6)``) stands for its value,
  a ``numpy.bool_`` (or a 0-d bool array) for a bool;
* counts as SciPy's methods read them: ``maxiter`` bounds ``nit < maxiter``, so a non-integer
  is rounded up (SciPy 1.17's BFGS, CG, L-BFGS-B, Nelder-Mead and Powell all make 4 iterations
  for ``maxiter=3.7``), and a count too large for the C loop to reach (``inf``, ``1e300``,
  ``2**63``) means "no limit";
* ``jac=True``: ``fun`` returns ``(f, g)`` as a pair SciPy's ``MemoizeJac`` indexes
  (``fg[0]``, ``fg[1]``): a tuple, a list or another sequence of two.

Every check raises ``TypeError`` or ``ValueError`` naming the option and the bad value, never
``OverflowError``, and modifies nothing.
"""

import math
import numbers
from collections.abc import Sequence

import numpy as np

from fastopt._validation import NOT_A_NUMBER, check_bool, check_int

# The largest count the C loops hold (nit is a Py_ssize_t): a larger limit is never reached.
COUNT_MAX = int(np.iinfo(np.intp).max)


def _describe(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def scalar_value(value):
    """A 0-d ndarray's value (a NumPy scalar); anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def bool_option(name, value):
    """``value`` as a bool: a bool, a ``numpy.bool_`` or a 0-d bool array."""
    return check_bool(name, scalar_value(value))


def iteration_limit(name, value, *, low=0):
    """A limit on a count (``maxiter``, ``epochs``) as SciPy's methods read ``maxiter``.

    The run goes on while ``count < value``: a non-integer is rounded up (``3.7`` allows 4),
    and anything beyond :data:`COUNT_MAX` (``inf``, ``1e300``, ``2**63``) is
    :data:`COUNT_MAX`, "no limit". Ints, integral and non-integral reals (Python or NumPy, or
    0-d arrays) are accepted; bools, NaN and values below ``low`` are not.

    Returns
    -------
    int
        In ``[low, COUNT_MAX]``.
    """
    if type(value) is int and low <= value <= COUNT_MAX:  # the common case, no abc checks
        return value
    value = scalar_value(value)
    if isinstance(value, NOT_A_NUMBER) or not isinstance(value, numbers.Real):
        raise TypeError(f"Invalid {name}: {name}={_describe(value)} must be a number "
                        "(an int, or a float: non-integers are rounded up, inf means no "
                        "limit)")
    if isinstance(value, numbers.Integral):
        count = int(value)
    else:
        try:
            number = float(value)
        except OverflowError:  # e.g. a Fraction beyond float range: no limit or negative
            number = math.inf if value > 0 else -math.inf
        if math.isnan(number):
            raise ValueError(f"Invalid {name}: {name}=nan must be a number, not NaN")
        count = number if math.isinf(number) else math.ceil(number)
    if count < low:
        raise ValueError(f"Invalid {name}: {name} must be >= {low}, got {_describe(value)}")
    return COUNT_MAX if count > COUNT_MAX else int(count)


def whole_number(name, value, *, low=1):
    """A size (``batch_size``): an int, an integral float or a 0-d array of one, >= ``low``
    (fastopt._validation.check_int); ``inf``, or any value beyond :data:`COUNT_MAX`, is
    :data:`COUNT_MAX`."""
    number = scalar_value(value)
    if isinstance(number, (float, np.floating)) and number == math.inf:
        return COUNT_MAX
    return min(check_int(name, value, low=low, what=name, integral_floats=True), COUNT_MAX)


def fun_and_grad(out, context="with jac=True, "):
    """``(f, g)`` from what a ``jac=True`` objective returned: a pair as SciPy's
    ``MemoizeJac`` reads it (``fg[0]``, ``fg[1]``): a tuple, a list, another sequence of two,
    or an array of length 2 (e.g. an object array ``[f, g]``; the checks of f and g that follow
    refuse what is no value and gradient); TypeError otherwise, its message starting with
    ``context``."""
    if type(out) is tuple and len(out) == 2:
        return out
    if isinstance(out, Sequence) and not isinstance(out, (str, bytes, bytearray)):
        if len(out) == 2:
            return out[0], out[1]
        got = f"a {type(out).__name__} of length {len(out)}"
    elif isinstance(out, np.ndarray):
        if out.ndim >= 1 and len(out) == 2:
            return out[0], out[1]
        got = f"an ndarray of shape {out.shape}"
    else:
        got = _describe(out) if out is None or isinstance(out, (str, bytes)) \
            else type(out).__name__
    raise TypeError(f"{context}fun must return (f, g), a tuple or list of the value and the "
                    f"gradient; got {got}")
