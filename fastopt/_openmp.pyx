"""OpenMP status and thread-count resolution (scikit-learn's ``_openmp_helpers`` semantics)."""

import os
import numbers

from fastopt._openmp cimport fastopt_openmp_enabled, fastopt_omp_get_max_threads


def openmp_enabled():
    """Return True when the kernels were compiled with OpenMP support."""
    return bool(fastopt_openmp_enabled())


def usable_cpu_count():
    """Number of CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def effective_n_threads(n_threads=None):
    """Resolve a user's ``n_threads`` to the number of OpenMP threads to use.

    Parameters
    ----------
    n_threads : int or None, default=None
        ``None``: OpenMP's default (``OMP_NUM_THREADS`` if set, else every usable core), capped
        at the usable cores. A positive int: that many threads. A negative int: all usable cores
        plus one minus ``|n_threads|`` (``-1`` all, ``-2`` all but one), at least one.

    Returns
    -------
    int
        At least 1; always 1 when fastopt was built without OpenMP.

    Raises
    ------
    TypeError
        If ``n_threads`` is not None or an int.
    ValueError
        If ``n_threads`` is 0.
    """
    if n_threads is not None and (
        isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral)
    ):
        raise TypeError(f"n_threads must be None or an int, got {n_threads!r}")
    if n_threads is not None and n_threads == 0:
        raise ValueError("n_threads=0 is invalid: use None, a positive int, or -1 for all cores")
    if not fastopt_openmp_enabled():
        return 1
    cpus = usable_cpu_count()
    if n_threads is None:
        return max(1, min(fastopt_omp_get_max_threads(), cpus))
    if n_threads < 0:
        return max(1, cpus + int(n_threads) + 1)
    return int(n_threads)
