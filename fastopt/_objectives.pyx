"""Compiled objectives, usable as ``scipy.LowLevelCallable``: the Cython way to write one.

A C-level objective for ``fastopt.minimize`` and ``fastopt.minimize_batch`` is a ``cdef api``
function with the signature ``double (int n, const double *x, double *grad, void *user_data)``
(or its float32 twin) that returns f(x) and writes the gradient to ``grad`` (every entry: it
holds NaN on entry); it must not keep ``x`` or ``grad`` nor touch the GIL. ``scipy.LowLevelCallable.from_cython(module, name)``
reads it from the module's ``__pyx_capi__``. ``fastopt.problems.rosenbrock_lowlevel`` wraps
the ones below.

A block objective for ``fastopt.minimize_batch`` evaluates m problems in one call:
``void (int m, int n, const double *X, double *F, double *G, void *user_data)`` (or its float32
twin), variable-major: variable j of problem i is ``X[j*m + i]``, its gradient ``G[j*m + i]``,
its value ``F[i]``. The loop over problems is the inner one, so that it vectorises.
``rosenbrock_block`` below (its body in C, src_c/fastopt_rosenbrock_block.h) does, per
problem, exactly the operations of ``rosenbrock`` in the same order: its values are bitwise
those of the scalar function.

``plain_adam_rosenbrock2`` and ``plain_block_adam_rosenbrock2`` are the benchmarks' floors
(src_c/fastopt_plain_adam.h, one problem after another, and src_c/fastopt_block_adam.h, blocks
of problems SIMD across problems), not an API.
"""

cimport numpy as cnp
from cython cimport floating

import numpy as np

cnp.import_array()


cdef extern from "fastopt_plain_adam.h" nogil:
    double fastopt_plain_adam_rosenbrock2(double* x, long iters, double lr, double beta1,
                                          double beta2, double eps)


cdef extern from "fastopt_rosenbrock_block.h" nogil:
    void fastopt_rosenbrock_block_choose()
    void fastopt_rosenbrock_block_f64(int m, int n, const double* X, double* F, double* G)
    void fastopt_rosenbrock_block_f32(int m, int n, const float* X, float* F, float* G)

fastopt_rosenbrock_block_choose()  # the AVX2 body on CPUs that have it


cdef extern from "fastopt_block_adam.h" nogil:
    int FASTOPT_BLOCK_ADAM_SIZE
    int fastopt_block_adam_has_avx2()
    void fastopt_block_adam_rosenbrock2(double* X, double* f, long m, long iters, double lr,
                                        double beta1, double beta2, double eps, int avx2,
                                        int n_threads)


cdef inline floating _rosenbrock(int n, const floating* x, floating* grad) noexcept nogil:
    """Rosenbrock's function (scipy.optimize.rosen) and its gradient, in x's precision."""
    cdef int i
    cdef floating a, b, f = 0
    for i in range(n):
        grad[i] = 0
    for i in range(n - 1):
        a = x[i + 1] - x[i] * x[i]
        b = 1 - x[i]
        f += 100 * a * a + b * b
        grad[i] += -400 * x[i] * a - 2 * b
        grad[i + 1] += 200 * a
    return f


cdef api double rosenbrock(int n, const double* x, double* grad, void* user_data) noexcept nogil:
    """Rosenbrock's function and its gradient (user_data unused)."""
    return _rosenbrock(n, x, grad)


cdef api float rosenbrock_f32(int n, const float* x, float* grad, void* user_data) noexcept nogil:
    """float32 twin of ``rosenbrock`` (arithmetic in float32)."""
    return _rosenbrock(n, x, grad)


cdef api void rosenbrock_block(int m, int n, const double* X, double* F, double* G,
                               void* user_data) noexcept nogil:
    """Rosenbrock's function of m problems of n variables (a block objective, variable-major:
    ``X[j*m + i]``); user_data unused. In C (src_c/fastopt_rosenbrock_block.h): an AVX2
    body beside the portable one, as fastopt's kernels."""
    fastopt_rosenbrock_block_f64(m, n, X, F, G)


cdef api void rosenbrock_block_f32(int m, int n, const float* X, float* F, float* G,
                                   void* user_data) noexcept nogil:
    """float32 twin of ``rosenbrock_block`` (arithmetic in float32)."""
    fastopt_rosenbrock_block_f32(m, n, X, F, G)


def plain_adam_rosenbrock2(cnp.ndarray[double, ndim=2, mode="c"] X not None, long iters,
                           double lr=1e-3, double beta1=0.9, double beta2=0.999,
                           double eps=1e-8):
    """Adam on each row of X (shape (m, 2), modified in place) for ``iters`` steps, one row
    after another on one thread, in plain C; returns f at each row's last evaluated point.
    Defaults are torch's (fastopt.Adam's); tests/test_baselines.py checks the steps against
    fastopt._reference.adam."""
    if X.shape[1] != 2:
        raise ValueError(f"X must have shape (m, 2), got {np.shape(X)}")
    cdef Py_ssize_t i, m = X.shape[0]
    cdef cnp.ndarray[double, ndim=1] f = np.empty(m)
    with nogil:
        for i in range(m):
            f[i] = fastopt_plain_adam_rosenbrock2(&X[i, 0], iters, lr, beta1, beta2, eps)
    return f


BLOCK_SIZE = FASTOPT_BLOCK_ADAM_SIZE  # problems per block of the block floor


def block_floor_simd(simd=None):
    """The instruction set ``plain_block_adam_rosenbrock2`` runs for ``simd``: "avx2" where
    asked for or, by default, where the CPU has it, else "baseline"; asking for "avx2" on a CPU
    without it is a ValueError."""
    has = bool(fastopt_block_adam_has_avx2())
    if simd is None:
        return "avx2" if has else "baseline"
    # (no None in the tuple: gcc warns about Cython's inlined comparison with None)
    if not isinstance(simd, str) or simd not in ("avx2", "baseline"):
        raise ValueError(f"simd must be None, 'avx2' or 'baseline', got {simd!r}")
    if simd == "avx2" and not has:
        raise ValueError("simd='avx2' but this CPU (or this build) has no AVX2")
    return simd


def plain_block_adam_rosenbrock2(cnp.ndarray[double, ndim=2, mode="c"] X not None, long iters,
                                 double lr=1e-3, double beta1=0.9, double beta2=0.999,
                                 double eps=1e-8, n_threads=1, simd=None):
    """Adam on each row of X (shape (m, 2), modified in place) for ``iters`` steps, in blocks of
    ``BLOCK_SIZE`` problems held variable-major and updated SIMD across problems, the blocks on
    ``n_threads`` threads (None, -1, ...: scikit-learn's meaning); returns f at each row's last
    evaluated point. ``simd``: see ``block_floor_simd`` (both give the same bits). Defaults are
    torch's; tests/test_baselines.py checks the steps against fastopt._reference.adam."""
    from fastopt._openmp import effective_n_threads

    if X.shape[1] != 2:
        raise ValueError(f"X must have shape (m, 2), got {np.shape(X)}")
    if iters < 0:
        raise ValueError(f"iters must be >= 0, got {iters}")
    cdef int threads = effective_n_threads(n_threads)
    cdef int avx2 = block_floor_simd(simd) == "avx2"
    cdef Py_ssize_t m = X.shape[0]
    cdef cnp.ndarray[double, ndim=1] f = np.zeros(m)
    if m == 0:
        return f
    with nogil:
        fastopt_block_adam_rosenbrock2(&X[0, 0], &f[0], m, iters, lr, beta1, beta2, eps, avx2,
                                       threads)
    return f
