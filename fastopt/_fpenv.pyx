"""The flush-to-zero mode's Python side: ``fastopt.flush_subnormals()``, the check of the
``flush_subnormals`` argument and option, and private helpers for tests.

The mechanism (which threads' control registers are set, and when) is described in
src_c/fastopt_fpenv.h. This module owns the one thread-local counter of the context manager:
the step and the loops read it through ``flush_context`` (fastopt/_fpenv.pxd).
"""

from cython.parallel cimport prange, threadid

from fastopt._openmp cimport fastopt_thread_limit

import numpy as np

from fastopt._validation import check_bool

cdef extern from *:
    """
    #include "fastopt_fpenv.h"
    /* How many ``with fastopt.flush_subnormals():`` blocks this thread is in. */
    static FASTOPT_THREAD_LOCAL int fastopt_flush_depth = 0;
    static int fastopt_flush_depth_get(void) { return fastopt_flush_depth; }
    static void fastopt_flush_depth_add(int d)
    {
        fastopt_flush_depth += d;
        if (fastopt_flush_depth < 0) fastopt_flush_depth = 0;
    }
    """
    int fastopt_flush_depth_get() noexcept nogil
    void fastopt_flush_depth_add(int d) noexcept nogil
    fastopt_fpcr fastopt_fpcr_get() noexcept nogil
    void fastopt_fpcr_set(fastopt_fpcr v) noexcept nogil


cdef bint flush_context() noexcept nogil:
    return fastopt_flush_depth_get() > 0


cdef class flush_subnormals:
    """Context manager: fastopt calls in this thread flush subnormal numbers to zero.

    Inside ``with fastopt.flush_subnormals():`` every optimizer ``step()``, ``minimize``,
    the ``scipy.optimize.minimize`` methods, ``minimize_batch`` and ``minimize_minibatch``
    called from this thread run as if given ``flush_subnormals=True`` (see
    :class:`fastopt.Adam`'s ``flush_subnormals``). Code outside fastopt is unaffected: the
    block does not change the thread's floating-point mode, only fastopt's calls do, and each
    restores it exactly when it returns.

    The setting is thread-local: other threads (and asyncio tasks switched to inside the block
    on this thread, which share it) see it only in their own ``with`` blocks. Blocks nest; an
    optimizer or call given ``flush_subnormals=True`` flushes whatever the context.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.full(2, 1e-310)         # subnormal float64 values
    >>> opt = fastopt.SGD(w, lr=0.1)
    >>> with fastopt.flush_subnormals():
    ...     opt.step(np.zeros(2))          # w - 0.1 * 0, with w read as 0
    >>> w
    array([0., 0.])
    """

    def __enter__(self):
        fastopt_flush_depth_add(1)
        return self

    def __exit__(self, *exc_info):
        fastopt_flush_depth_add(-1)
        return False

    def __repr__(self):
        return "fastopt.flush_subnormals()"


cdef class flushed:
    """``with flushed(on):`` runs the block with this thread's FTZ/DAZ set when ``on`` (or
    inside ``flush_subnormals()``), restoring the register exactly after it. For the Python
    steps of optimizers with their own ``step`` (Adafactor)."""

    cdef fastopt_fpenv env
    cdef bint on

    def __cinit__(self, bint on):
        self.on = on or flush_context()

    def __enter__(self):
        self.env = fastopt_flush_begin(self.on)
        return self

    def __exit__(self, *exc_info):
        fastopt_fpenv_restore(self.env)
        return False


def flush_requested(flag=False):
    """``flag`` (the ``flush_subnormals`` argument or option, checked: a bool) or the
    thread's ``flush_subnormals()`` context: whether a call runs in the flush mode."""
    return check_bool("flush_subnormals", flag) or fastopt_flush_depth_get() > 0


def flush_supported():
    """Whether the flush mode does anything on this platform (x86-64, aarch64)."""
    return bool(fastopt_flush_supported())


def _control_register():
    """This thread's floating-point control register (x86-64 MXCSR, aarch64 FPCR; 0
    elsewhere). For tests."""
    return int(fastopt_fpcr_get())


def _set_control_register(value):
    """Set this thread's control register (tests only: restore what you read)."""
    fastopt_fpcr_set(<fastopt_fpcr>value)


def _worker_registers(int n_threads):
    """Each OpenMP thread's control register, read inside one parallel region of
    ``n_threads`` threads (index: the thread number; 0 where a thread took no iteration).
    For tests: after a fastopt call, the pool's threads must hold their own registers."""
    n_threads = fastopt_thread_limit(max(n_threads, 1))
    out = np.zeros(n_threads, dtype=np.uint64)
    cdef unsigned long long[::1] view = out
    cdef Py_ssize_t k
    for k in prange(n_threads, nogil=True, schedule="static", chunksize=1,
                    num_threads=n_threads):
        view[threadid()] = fastopt_fpcr_get()
    return out


def _set_worker_registers(int n_threads, value):
    """Set the control register of each thread of an ``n_threads`` parallel region (tests
    only: put back what ``_worker_registers`` read)."""
    n_threads = fastopt_thread_limit(max(n_threads, 1))
    cdef fastopt_fpcr v = <fastopt_fpcr>value
    cdef Py_ssize_t k
    for k in prange(n_threads, nogil=True, schedule="static", chunksize=1,
                    num_threads=n_threads):
        fastopt_fpcr_set(v)
