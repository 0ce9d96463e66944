"""Gradient clipping: ``fastopt.clip_grad_norm_`` and ``fastopt.clip_grad_value_``.

torch.nn.utils' functions of the same names, on NumPy arrays: the gradients are passed
directly (one array or a list), not parameters holding ``.grad``. The work is done by the
Cython kernels of fastopt/_clip.pyx (one pass over memory for the norm, one for the scaling
or the clamping, OpenMP threads on large arrays); this module validates and decides.
The drivers' options ``max_grad_norm``, ``grad_norm_type`` and ``clip_value`` are read by
``clip_settings`` (fastopt/_driver_common.py) and run in their loops (fastopt/_iteration.pxi).
"""

import math
import numbers
from typing import NamedTuple

import numpy as np

from fastopt._clip import clip_into, scale_clamp, total_norm
from fastopt._openmp import effective_n_threads

__all__ = ["clip_grad_norm_", "clip_grad_value_"]

_EPS = 1e-6  # torch's: coef = max_norm / (total_norm + 1e-6)


class NonFiniteNormError(ValueError, RuntimeError):
    """The total norm is NaN or infinite and ``error_if_nonfinite`` is set.

    A ``ValueError`` (bad input) that is also a ``RuntimeError``, the exception
    ``torch.nn.utils.clip_grad_norm_`` raises: code written for either catches it.
    """


class ClipSettings(NamedTuple):
    """What the drivers clip (fastopt/_clip.pyx's ``clip_spec_init`` reads it): ``max_norm``
    (None: no norm clipping), ``norm_type``, ``clip_value`` (None: no value clipping)."""

    max_norm: float | None
    norm_type: float
    clip_value: float | None


# ---------------------------------------------------------------------------------------------
# Validation (shared with the drivers' options)


def _real(name, value):
    """``value`` as a float: a real number (Python, NumPy, 0-d array), not a bool."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def check_max_norm(value, name="max_norm"):
    """``value`` as a float >= 0 (inf: no clipping); TypeError / ValueError naming ``name``."""
    value = _real(name, value)
    if math.isnan(value) or value < 0:
        raise ValueError(f"Invalid {name}: {value!r} (must be >= 0)")
    return value


check_clip_value = check_max_norm  # the same rule: a real >= 0, inf allowed


def check_norm_type(value, name="norm_type"):
    """``value`` as a float: any real but NaN, or the strings ``"inf"`` / ``"-inf"``
    (torch's ``float(norm_type)`` takes them)."""
    if isinstance(value, str):
        if value.strip().lower() in ("inf", "+inf", "infinity", "-inf", "-infinity"):
            return float(value)
        raise ValueError(f"Invalid {name}: {value!r} (a real number, 'inf' or '-inf')")
    value = _real(name, value)
    if math.isnan(value):
        raise ValueError(f"Invalid {name}: nan")
    return value


def _check_bool(name, value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {value!r}")


def _check_foreach(foreach):
    # Accepted for torch's signature; fastopt's kernels take the whole list in one call
    # either way.
    if foreach is not None:
        _check_bool("foreach", foreach)


def _gradient_list(grads, norm_type=None):
    """The arrays of ``grads`` (one ndarray, or an iterable of them) as a list, after
    checking each: a float32 or float64 ndarray, writeable, contiguous (C or Fortran order:
    the kernels see its memory as one run of elements), no two sharing memory; with an
    inf, -inf or negative ``norm_type``, not empty (that norm has no value there, as
    torch says)."""
    if isinstance(grads, np.ndarray):
        arrays = [grads]
    else:
        try:
            arrays = list(grads)
        except TypeError:
            raise TypeError("grads must be an array or an iterable of arrays, got "
                            f"{type(grads).__name__}") from None
    for i, a in enumerate(arrays):
        name = "grads" if isinstance(grads, np.ndarray) else f"grads[{i}]"
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
        if a.dtype != np.float32 and a.dtype != np.float64:
            raise TypeError(f"{name} must be float32 or float64, got dtype {a.dtype}")
        if not a.flags.writeable:
            raise ValueError(f"{name} is read-only: it is clipped in place")
        if not (a.flags.c_contiguous or a.flags.f_contiguous):
            raise ValueError(f"{name} must be contiguous (it is clipped in place through its "
                             f"memory), got strides {a.strides}")
        if a.size == 0 and norm_type is not None and (norm_type < 0 or math.isinf(norm_type)):
            raise ValueError(f"{name} is empty: its {norm_type} norm is undefined (the "
                             "operation has no identity)")
    if len(arrays) > 1:
        _check_disjoint(arrays)
    return arrays


def _check_disjoint(arrays):
    """ValueError when two arrays share memory (each would be clipped twice)."""
    spans = sorted((a.__array_interface__["data"][0], a.nbytes, i)
                   for i, a in enumerate(arrays) if a.size)
    for (start, nbytes, i), (next_start, _, j) in zip(spans, spans[1:]):
        if next_start < start + nbytes:
            i, j = sorted((i, j))
            raise ValueError(f"grads[{i}] and grads[{j}] share memory: each array must be "
                             "a separate gradient")


def _result_type(arrays):
    """The norm's dtype, as torch's: the arrays' common dtype; float64 for no arrays."""
    if not arrays:
        return np.dtype(np.float64)
    return np.result_type(*arrays)


# ---------------------------------------------------------------------------------------------
# Public functions


def clip_grad_norm_(grads, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None,
                    *, n_threads=None):
    r"""Clip the global norm of gradients in place, as ``torch.nn.utils.clip_grad_norm_``.

    The norm is that of all the arrays seen as one vector (more precisely, as torch: the
    ``norm_type``-norm of the arrays' ``norm_type``-norms); when it exceeds ``max_norm`` every
    array is multiplied by ``max_norm / (total_norm + 1e-6)``.

    Parameters
    ----------
    grads : ndarray or iterable of ndarray
        The gradients (not parameters: fastopt has no ``.grad``), float32 or float64, any
        shape, C- or Fortran-contiguous, writeable, each its own memory. Modified in place.
    max_norm : float
        The largest norm allowed, >= 0 (``inf``: never scale).
    norm_type : float or str, default=2.0
        The p of the p-norm: any real (``inf`` / ``"inf"`` for the max-norm, ``-inf`` for
        the min, 0 as torch's count), not NaN.
    error_if_nonfinite : bool, default=False
        Raise when the total norm is NaN or infinite (the gradients are then left as they
        are). Without it such a norm scales every gradient, as torch does (a NaN norm makes
        them all NaN; an infinite one, zero where they were finite).
    foreach : bool or None, default=None
        Accepted for torch compatibility; fastopt always processes the list in one call.
    n_threads : int or None, default=None
        OpenMP threads for arrays of at least ``fastopt.get_parallel_threshold()``
        elements (``None``: OpenMP's default). The result does not depend on it: the norm
        is reduced over fixed blocks, combined in one order.

    Returns
    -------
    total_norm : numpy.float32 or numpy.float64
        The norm before clipping, in the gradients' dtype (float64 when they mix dtypes or
        there are none; for no arrays, 0.0), as torch returns a 0-d tensor of that dtype.

    Raises
    ------
    TypeError
        If ``grads`` holds something that is not a float32/float64 array, or a number or
        flag has the wrong type.
    ValueError
        If an array is read-only, not contiguous, shares memory with another, or is empty
        with an inf/-inf/negative ``norm_type``; if ``max_norm`` is negative or NaN, or
        ``norm_type`` NaN. ``NonFiniteNormError`` (a ValueError and a RuntimeError, as
        torch raises) for a non-finite norm with ``error_if_nonfinite``. Nothing is modified
        when an error is raised.

    See Also
    --------
    clip_grad_value_ : clamp each element instead.
    fastopt.minimize : ``options={"max_grad_norm": ...}`` clips inside the loop.

    Notes
    -----
    With :math:`N = \|(\|g_1\|_p, \dots, \|g_k\|_p)\|_p` computed in double precision and
    rounded to the result's dtype, each array becomes, in its own dtype,

    .. math:: g_i \leftarrow g_i \cdot \min\left(\frac{\text{max\_norm}}{N + 10^{-6}},
              1\right)

    (an array is not touched when the factor is 1: multiplying by 1 changes nothing). The
    norm is one pass over memory (eight independent double accumulators per block of 4096
    elements), the scaling one more. torch sums a float32 norm in float32, so results agree
    to float32 rounding, not bit for bit.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> grads = [np.array([3.0, 0.0]), np.array([[4.0]])]
    >>> float(fastopt.clip_grad_norm_(grads, max_norm=1.0))
    5.0
    >>> np.round(grads[0], 6), np.round(grads[1], 6)
    (array([0.6, 0. ]), array([[0.8]]))
    >>> round(float(fastopt.clip_grad_norm_(grads, max_norm=1.0, norm_type="inf")), 6)
    0.8
    """
    max_norm = check_max_norm(max_norm)
    norm_type = check_norm_type(norm_type)
    error_if_nonfinite = _check_bool("error_if_nonfinite", error_if_nonfinite)
    _check_foreach(foreach)
    n_threads = effective_n_threads(n_threads)
    arrays = _gradient_list(grads, norm_type)
    dtype = _result_type(arrays)
    if not arrays:
        return dtype.type(0.0)
    with np.errstate(all="ignore"):  # float32 overflow to inf is the answer, not a warning
        total = dtype.type(total_norm(arrays, norm_type, n_threads))
        if error_if_nonfinite and not np.isfinite(total):
            raise NonFiniteNormError(
                f"The total norm of order {norm_type} for gradients from `grads` is "
                "non-finite, so it cannot be clipped. To disable this error and scale the "
                "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
        coef = dtype.type(max_norm) / (total + dtype.type(_EPS))
    if not coef >= 1:  # < 1, or NaN (torch.clamp keeps NaN, which then spreads)
        scale_clamp(arrays, float(coef), 0.0, True, False, n_threads)
    return total


def clip_grad_value_(grads, clip_value, foreach=None, *, n_threads=None):
    r"""Clamp gradients in place to ``[-clip_value, clip_value]``, as
    ``torch.nn.utils.clip_grad_value_``.

    Parameters
    ----------
    grads : ndarray or iterable of ndarray
        The gradients, float32 or float64, any shape, C- or Fortran-contiguous, writeable,
        each its own memory. Modified in place.
    clip_value : float
        The bound, >= 0 (``inf``: nothing changes); cast to each array's dtype.
    foreach : bool or None, default=None
        Accepted for torch compatibility.
    n_threads : int or None, default=None
        OpenMP threads for arrays of at least ``fastopt.get_parallel_threshold()`` elements.

    Returns
    -------
    None

    Raises
    ------
    TypeError
        If ``grads`` holds something that is not a float32/float64 array, or ``clip_value``
        is not a real number.
    ValueError
        If an array is read-only, not contiguous or shares memory with another, or
        ``clip_value`` is negative or NaN. Nothing is modified when an error is raised.

    Notes
    -----
    One pass over memory: :math:`g \leftarrow \min(\max(g, -c), c)`; NaN stays NaN, as in
    ``torch.clamp``.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> g = np.array([-3.0, 0.5, 2.0])
    >>> fastopt.clip_grad_value_(g, 1.0)
    >>> g
    array([-1. ,  0.5,  1. ])
    """
    clip_value = check_clip_value(clip_value, "clip_value")
    _check_foreach(foreach)
    n_threads = effective_n_threads(n_threads)
    arrays = _gradient_list(grads)
    if clip_value != math.inf:
        scale_clamp(arrays, 1.0, clip_value, False, True, n_threads)


# ---------------------------------------------------------------------------------------------
# The drivers' options


def clip_settings(options):
    """The clipping that a driver's ``options`` ask for, as ClipSettings, or None:
    ``max_grad_norm`` (a real >= 0), ``grad_norm_type`` (its p, default 2; only with
    max_grad_norm), ``clip_value`` (a real >= 0). None or an absent key: off."""
    max_norm = options.get("max_grad_norm")
    clip_value = options.get("clip_value")
    norm_type = options.get("grad_norm_type")
    if max_norm is not None:
        max_norm = check_max_norm(max_norm, "max_grad_norm")
    if norm_type is not None:
        norm_type = check_norm_type(norm_type, "grad_norm_type")
        if max_norm is None:
            raise ValueError("grad_norm_type is the norm of max_grad_norm: set max_grad_norm "
                             "too (or drop grad_norm_type)")
    if clip_value is not None:
        clip_value = check_clip_value(clip_value, "clip_value")
    if max_norm is None and clip_value is None:
        return None
    return ClipSettings(max_norm, 2.0 if norm_type is None else norm_type, clip_value)


def gradient_clipper(settings, like, n_threads):
    """For a driver whose loop is in Python (minimize_minibatch): None without clipping,
    else ``clip(g) -> the array to step with`` (g itself, or a buffer like ``like`` holding
    g clipped; g is never modified, so the reported jac stays the true gradient)."""
    if settings is None:
        return None
    out = np.empty_like(like)
    return lambda g: clip_into(settings, g, out, n_threads)
