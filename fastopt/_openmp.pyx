"""OpenMP status and thread-count resolution (scikit-learn's ``_openmp_helpers`` semantics)."""

import operator
import os

from fastopt._openmp cimport fastopt_openmp_enabled, fastopt_omp_get_max_threads


def openmp_enabled():
    """Return True when the kernels were compiled with OpenMP support."""
    return bool(fastopt_openmp_enabled())


def usable_cpu_count():
    """Number of CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


# The most threads fastopt asks OpenMP for. OpenMP would try to start every thread asked
# for, and a runtime that cannot (n_threads=100_000) aborts the process; beyond a few per core
# threads only add overhead, so a larger request is refused and None / -k are capped here.
MAX_N_THREADS = 1024


def effective_n_threads(n_threads=None):
    """Resolve a user's ``n_threads`` to the number of OpenMP threads to use.

    Every optimizer class, ``minimize``, ``minimize_batch`` and ``minimize_minibatch``
    resolves its ``n_threads`` here.

    Parameters
    ----------
    n_threads : int or None, default=None
        ``None``: OpenMP's default (``OMP_NUM_THREADS`` if set, else every usable core), capped
        at the usable cores. A positive int: that many threads, at most ``MAX_N_THREADS``
        (1024). A negative int: all usable cores plus one minus ``|n_threads|`` (``-1`` all,
        ``-2`` all but one), at least one; ``n_threads >= -MAX_N_THREADS``. NumPy integers
        and 0-d integer arrays are accepted.

    Returns
    -------
    int
        In ``[1, MAX_N_THREADS]``; always 1 when fastopt was built without OpenMP.

    Raises
    ------
    TypeError
        If ``n_threads`` is not None or an int (bools and floats are not).
    ValueError
        If ``n_threads`` is 0 or ``|n_threads| > MAX_N_THREADS``.
    """
    if n_threads is not None:
        if isinstance(n_threads, bool):  # (NumPy bools fail operator.index)
            raise TypeError(f"n_threads must be None or an int, got {n_threads!r}")
        try:
            n_threads = operator.index(n_threads)  # ints, NumPy ints, 0-d int arrays
        except TypeError:
            raise TypeError(f"n_threads must be None or an int, got {n_threads!r}") from None
        if n_threads == 0:
            raise ValueError(
                "n_threads=0 is invalid: use None, a positive int, or -1 for all cores")
        if not -MAX_N_THREADS <= n_threads <= MAX_N_THREADS:
            raise ValueError(f"n_threads={n_threads} is out of range: use None, -1 for all "
                             f"cores, or an int with |n_threads| <= {MAX_N_THREADS}")
    if not fastopt_openmp_enabled():
        return 1
    cpus = usable_cpu_count()
    if n_threads is None:
        return max(1, min(fastopt_omp_get_max_threads(), cpus, MAX_N_THREADS))
    if n_threads < 0:
        return max(1, min(cpus + n_threads + 1, MAX_N_THREADS))
    return n_threads
