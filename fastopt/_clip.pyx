# Gradient clipping kernels: the p-norm of a gradient (a reduction) and its scaling and
# clamping (elementwise), for fastopt.clip_grad_norm_ / clip_grad_value_ (fastopt/_clipping.py
# validates and calls the ``def`` functions below) and for the minimize and batch loops
# (``clip_gradient``, declared in _clip.pxd, called without the GIL).
#
# Design
# ------
# * Arrays are seen as n contiguous elements of float32 or float64 (fused ``floating``);
#   arithmetic of the norm is in double for both dtypes (a float32 sum of 2^22 squares would
#   lose 3-4 digits), the scaling and clamping in the array's own type, as torch's ``mul_``
#   and ``clamp_``.
# * The norm follows torch.nn.utils.clip_grad_norm_: the p-norm of each array, then the
#   p-norm of those norms (for p = 2, 1, inf, -inf and any p > 0 that is the norm of all the
#   elements as one vector; for p = 0 it counts the arrays with a nonzero element, as torch's
#   does).
# * One pass over memory for the reduction. It runs over fixed blocks of BLOCK elements, each
#   summed into LANES independent accumulators (gcc vectorises them: a single accumulator is
#   a chain of dependent additions, 4x slower), and the blocks' partial results are combined
#   in block order. The blocks do not depend on the thread count, so the norm is bitwise the
#   same for every ``n_threads``; above the kernels' PARALLEL_THRESHOLD the blocks are spread
#   over the threads (prange, static schedule), below it no OpenMP region is entered.
# * One pass for the scaling and/or clamping (out[i] = clamp(g[i] * coef)), elementwise,
#   split in equal chunks among the threads above the threshold.
# * NaN propagates as in torch: a NaN element makes every p-norm NaN (the inf-norm too:
#   a max that skipped NaN would hide it), and clamp keeps NaN.

from cython cimport floating
from cython.parallel cimport prange
from libc.float cimport FLT_MAX
from libc.math cimport INFINITY, NAN, fabs, isnan, pow, sqrt
from libc.stdlib cimport free, malloc

cimport numpy as cnp

from fastopt._kernels cimport parallel_threshold
from fastopt._openmp cimport fastopt_thread_limit
# (the regions compute in the calling thread's flush-to-zero mode: src_c/fastopt_fpenv.h)
from fastopt._fpenv cimport (
    fastopt_flush_bits,
    fastopt_follow_begin,
    fastopt_fpcr,
    fastopt_fpenv,
    fastopt_fpenv_restore,
)

cnp.import_array()

cdef enum:
    BLOCK = 4096  # elements per block of the reduction (32 KiB of float64: L1-sized)
    LANES = 8     # independent accumulators per block
    FLANES = 16   # float32 accumulators of a float32 2-norm (2 * LANES)
    RUN = 16      # elements each float32 accumulator sums before it is added in double

cdef enum:
    NORM_TWO = 0    # p = 2: sqrt(sum x^2)
    NORM_ONE = 1    # p = 1: sum |x|
    NORM_INF = 2    # max |x|
    NORM_NEGINF = 3  # min |x|
    NORM_ZERO = 4   # number of nonzero x
    NORM_POW = 5    # any other p: (sum |x|^p)^(1/p)

# Elementwise modes (bits).
cdef enum:
    MAP_SCALE = 1
    MAP_CLAMP = 2


cdef int norm_kind(double p) noexcept nogil:
    if p == 2.0:
        return NORM_TWO
    if p == 1.0:
        return NORM_ONE
    if p == INFINITY:
        return NORM_INF
    if p == -INFINITY:
        return NORM_NEGINF
    if p == 0.0:
        return NORM_ZERO
    return NORM_POW


# ---------------------------------------------------------------------------------------------
# The reduction

# One function per kind, each a plain counted loop over groups of LANES elements: gcc then
# keeps the accumulators in vector registers (in one function with every kind, or in a while
# loop, they stayed in memory, and the loop ran at the speed of store-to-load forwarding).

cdef inline double _lanes_sum(const double* a) noexcept nogil:
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))


cdef double _sum_squares(const floating* g, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef double a[LANES]
    cdef double v
    cdef Py_ssize_t k, j, groups = (end - start) // LANES
    cdef const floating* x = g + start
    for j in range(LANES):
        a[j] = 0.0
    for k in range(groups):
        for j in range(LANES):
            v = x[k * LANES + j]
            a[j] += v * v
    for k in range(start + groups * LANES, end):
        v = g[k]
        a[0] += v * v
    return _lanes_sum(a)


cdef double _sum_squares_f32(const float* g, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    # float32: squares summed in float32 over runs of RUN groups per lane (RUN terms: a few
    # float32 ulps), each run's lane sums then added in double. Converting every element to
    # double halves the SIMD width and made the loop compute-bound.
    cdef double a[LANES]
    cdef float f[FLANES]
    cdef float v
    cdef double d
    cdef Py_ssize_t k, r, j, groups = (end - start) // FLANES, runs, left
    cdef const float* x = g + start
    for j in range(LANES):
        a[j] = 0.0
    runs = groups // RUN
    for r in range(runs + 1):
        left = RUN if r < runs else groups - runs * RUN
        for j in range(FLANES):
            f[j] = 0
        for k in range(left):
            for j in range(FLANES):
                v = x[(r * RUN + k) * FLANES + j]
                f[j] += v * v
        for j in range(LANES):
            a[j] += <double>f[j] + <double>f[j + LANES]
    for k in range(start + groups * FLANES, end):
        d = g[k]
        a[0] += d * d
    return _lanes_sum(a)


cdef double _sum_abs(const floating* g, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef double a[LANES]
    cdef Py_ssize_t k, j, groups = (end - start) // LANES
    cdef const floating* x = g + start
    for j in range(LANES):
        a[j] = 0.0
    for k in range(groups):
        for j in range(LANES):
            a[j] += fabs(<double>x[k * LANES + j])
    for k in range(start + groups * LANES, end):
        a[0] += fabs(<double>g[k])
    return _lanes_sum(a)


cdef double _count_nonzero(const floating* g, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef double a[LANES]
    cdef Py_ssize_t k, j, groups = (end - start) // LANES
    cdef const floating* x = g + start
    for j in range(LANES):
        a[j] = 0.0
    for k in range(groups):
        for j in range(LANES):
            a[j] += 1.0 if x[k * LANES + j] != 0 else 0.0
    for k in range(start + groups * LANES, end):
        a[0] += 1.0 if g[k] != 0 else 0.0
    return _lanes_sum(a)


cdef double _sum_pow(const floating* g, Py_ssize_t start, Py_ssize_t end,
                     double p) noexcept nogil:
    cdef double a[LANES]
    cdef Py_ssize_t k, j
    for j in range(LANES):
        a[j] = 0.0
    for k in range(start, end):
        a[(k - start) & (LANES - 1)] += pow(fabs(<double>g[k]), p)
    return _lanes_sum(a)


cdef double _extreme(const floating* g, Py_ssize_t start, Py_ssize_t end,
                     bint largest) noexcept nogil:
    """max |x| (``largest``) or min |x|; NaN when the block holds a NaN."""
    cdef double a[LANES]
    cdef double z[LANES]  # 0 * |x|: NaN once an inf or a NaN was seen
    cdef double v, s
    cdef Py_ssize_t k, j, groups = (end - start) // LANES
    cdef const floating* x = g + start
    for j in range(LANES):
        a[j] = 0.0 if largest else INFINITY
        z[j] = 0.0
    if largest:
        for k in range(groups):
            for j in range(LANES):
                v = fabs(<double>x[k * LANES + j])
                z[j] += 0.0 * v
                a[j] = v if v > a[j] else a[j]
    else:
        for k in range(groups):
            for j in range(LANES):
                v = fabs(<double>x[k * LANES + j])
                z[j] += 0.0 * v
                a[j] = v if v < a[j] else a[j]
    for k in range(start + groups * LANES, end):
        v = fabs(<double>g[k])
        z[0] += 0.0 * v
        if largest:
            a[0] = v if v > a[0] else a[0]
        else:
            a[0] = v if v < a[0] else a[0]
    s = a[0]
    for j in range(1, LANES):
        if largest:
            s = a[j] if a[j] > s else s
        else:
            s = a[j] if a[j] < s else s
    if isnan(_lanes_sum(z)):  # an inf or a NaN in the block (rare): is there a NaN?
        for k in range(start, end):
            if isnan(g[k]):
                return NAN
    return s


cdef double _block(const floating* g, Py_ssize_t start, Py_ssize_t end, int kind,
                   double p) noexcept nogil:
    """The block's partial result: a sum (of x^2, |x|, |x|^p, x != 0), or the max / min of
    |x| (NaN when the block holds a NaN)."""
    if kind == NORM_TWO:
        if floating is float:
            return _sum_squares_f32(g, start, end)
        else:
            return _sum_squares(g, start, end)
    if kind == NORM_ONE:
        return _sum_abs(g, start, end)
    if kind == NORM_ZERO:
        return _count_nonzero(g, start, end)
    if kind == NORM_POW:
        return _sum_pow(g, start, end, p)
    return _extreme(g, start, end, kind == NORM_INF)


cdef inline double _join(double total, double part, int kind) noexcept nogil:
    """Combine two partial results of the same kind."""
    if kind == NORM_INF:
        if isnan(part) or isnan(total):
            return NAN
        return part if part > total else total
    if kind == NORM_NEGINF:
        if isnan(part) or isnan(total):
            return NAN
        return part if part < total else total
    return total + part


cdef inline double _identity(int kind) noexcept nogil:
    return INFINITY if kind == NORM_NEGINF else 0.0


cdef inline double _finish(double total, int kind, double p) noexcept nogil:
    """The norm from the combined partial results."""
    if kind == NORM_TWO:
        return sqrt(total)
    if kind == NORM_POW:
        return pow(total, 1.0 / p)
    return total


cdef double _array_norm(const floating* g, Py_ssize_t n, int kind, double p,
                        int n_threads) noexcept nogil:
    """The p-norm of n elements, bitwise the same for every thread count."""
    cdef Py_ssize_t n_blocks = (n + BLOCK - 1) // BLOCK, k
    cdef double total = _identity(kind)
    cdef double* parts = NULL
    cdef fastopt_fpcr bits
    cdef fastopt_fpenv env
    n_threads = fastopt_thread_limit(n_threads)
    if n_threads > 1 and n >= parallel_threshold() and n_blocks > 1:
        parts = <double*>malloc(n_blocks * sizeof(double))
    if parts == NULL:  # serial (or no memory for the partial results: same result)
        for k in range(n_blocks):
            total = _join(total, _block(g, k * BLOCK, min(n, (k + 1) * BLOCK), kind, p), kind)
        return _finish(total, kind, p)
    bits = fastopt_flush_bits()
    for k in prange(n_blocks, schedule="static", num_threads=n_threads):
        env = fastopt_follow_begin(bits)
        parts[k] = _block(g, k * BLOCK, min(n, (k + 1) * BLOCK), kind, p)
        fastopt_fpenv_restore(env)
    for k in range(n_blocks):
        total = _join(total, parts[k], kind)
    free(parts)
    return _finish(total, kind, p)


cdef inline double _norm_term(double norm, int kind, double p) noexcept nogil:
    """One array's norm as a partial result of the norm of the norms (torch's second level)."""
    if kind == NORM_TWO:
        return norm * norm
    if kind == NORM_ZERO:
        return 1.0 if norm != 0 else 0.0
    if kind == NORM_POW:
        return pow(norm, p)
    return norm  # 1, inf, -inf (norms are >= 0)


# ---------------------------------------------------------------------------------------------
# Scaling and clamping

cdef void _map_range(const floating* g, floating* out, Py_ssize_t start, Py_ssize_t end,
                     floating coef, floating c, int mode) noexcept nogil:
    # out = clamp(g * coef, -c, c): the comparisons keep NaN (as torch.clamp), -0.0 too.
    cdef Py_ssize_t i
    cdef floating v
    if mode == MAP_SCALE:
        for i in range(start, end):
            out[i] = g[i] * coef
    elif mode == MAP_CLAMP:
        for i in range(start, end):
            v = g[i]
            v = -c if v < -c else v
            out[i] = c if v > c else v
    else:
        for i in range(start, end):
            v = g[i] * coef
            v = -c if v < -c else v
            out[i] = c if v > c else v


cdef void _map(const floating* g, floating* out, Py_ssize_t n, floating coef, floating c,
               int mode, int n_threads) noexcept nogil:
    """Elementwise, in ``n_threads`` equal chunks above the threshold (16-element aligned)."""
    cdef Py_ssize_t k, size, n_chunks = fastopt_thread_limit(n_threads)
    cdef fastopt_fpcr bits
    cdef fastopt_fpenv env
    if n_chunks <= 1 or n < parallel_threshold():
        _map_range(g, out, 0, n, coef, c, mode)
        return
    size = ((n + n_chunks - 1) // n_chunks + 15) & ~(<Py_ssize_t>15)
    bits = fastopt_flush_bits()
    for k in prange(n_chunks, schedule="static", num_threads=n_chunks):
        env = fastopt_follow_begin(bits)
        _map_range(g, out, min(n, k * size), min(n, (k + 1) * size), coef, c, mode)
        fastopt_fpenv_restore(env)


cdef inline floating _as(double value, floating like) noexcept nogil:
    """``value`` in ``like``'s type; beyond float32's range, +-inf (a C cast there is UB)."""
    if floating is float:
        if value > FLT_MAX:
            return INFINITY
        if value < -FLT_MAX:
            return -INFINITY
    return <floating>value


cdef const floating* _clip_typed(const ClipSpec* spec, const floating* g, floating* out,
                                 Py_ssize_t n, int n_threads) noexcept nogil:
    cdef floating coef = 1, c = 0, total
    cdef int mode = 0
    cdef double norm
    if spec.by_norm:
        norm = _array_norm(g, n, spec.kind, spec.norm_type, n_threads)
        # torch: total = vector_norm(stack([norm])); coef = max_norm / (total + 1e-6) in the
        # gradient's dtype, clamped to at most 1 (NaN stays NaN).
        total = _as(_finish(_norm_term(norm, spec.kind, spec.norm_type), spec.kind,
                            spec.norm_type), coef)
        coef = _as(spec.max_norm, coef) / (total + <floating>1e-6)
        if not coef >= 1:
            mode = MAP_SCALE
    if spec.by_value:
        c = _as(spec.clip_value, c)
        mode = mode | MAP_CLAMP
    if mode == 0:
        return g
    _map(g, out, n, coef, c, mode, n_threads)
    return out


cdef const void* clip_gradient(const ClipSpec* spec, bint single, const void* g, void* out,
                               Py_ssize_t n, int n_threads) noexcept nogil:
    if single:
        return _clip_typed(spec, <const float*>g, <float*>out, n, n_threads)
    return _clip_typed(spec, <const double*>g, <double*>out, n, n_threads)


cdef int clip_spec_init(object settings, ClipSpec* spec) except -1:
    spec.on = spec.by_norm = spec.by_value = False
    spec.max_norm = spec.clip_value = INFINITY
    spec.norm_type = 2.0
    spec.kind = NORM_TWO
    if settings is None:
        return 0
    max_norm, norm_type, clip_value = settings
    if max_norm is not None:
        spec.by_norm = True
        spec.max_norm = max_norm
        spec.norm_type = norm_type
        spec.kind = norm_kind(norm_type)
    if clip_value is not None:
        spec.by_value = True
        spec.clip_value = clip_value
    spec.on = spec.by_norm or spec.by_value
    return 0


# ---------------------------------------------------------------------------------------------
# Python entries (fastopt/_clipping.py validates: contiguous float32/float64 arrays, numbers)

cdef inline bint _single(cnp.ndarray a):
    return cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT


def total_norm(list arrays, double norm_type, int n_threads):
    """torch's total norm of ``arrays`` (the p-norm of their p-norms), in double."""
    cdef int kind = norm_kind(norm_type)
    cdef double total = _identity(kind), norm
    cdef cnp.ndarray a
    cdef const void* data
    cdef Py_ssize_t n
    cdef bint single
    for a in arrays:
        data, n, single = cnp.PyArray_DATA(a), cnp.PyArray_SIZE(a), _single(a)
        with nogil:
            if single:
                norm = _array_norm(<const float*>data, n, kind, norm_type, n_threads)
            else:
                norm = _array_norm(<const double*>data, n, kind, norm_type, n_threads)
        total = _join(total, _norm_term(norm, kind, norm_type), kind)
    return _finish(total, kind, norm_type)


def scale_clamp(list arrays, double coef, double clip_value, bint scale, bint clamp,
                int n_threads):
    """In place: each array times ``coef`` (when ``scale``; cast to its dtype), then clamped
    to [-clip_value, clip_value] (when ``clamp``)."""
    cdef int mode = (MAP_SCALE if scale else 0) | (MAP_CLAMP if clamp else 0)
    cdef cnp.ndarray a
    cdef void* data
    cdef Py_ssize_t n
    cdef bint single
    if mode == 0:
        return
    for a in arrays:
        data, n, single = cnp.PyArray_DATA(a), cnp.PyArray_SIZE(a), _single(a)
        with nogil:
            if single:
                _map(<const float*>data, <float*>data, n, _as(coef, <float>0),
                     _as(clip_value, <float>0), mode, n_threads)
            else:
                _map(<const double*>data, <double*>data, n, coef, clip_value, mode, n_threads)


def clip_into(object settings, cnp.ndarray g not None, cnp.ndarray out not None,
              int n_threads):
    """``g`` (contiguous float32/float64) clipped as ``settings`` say: ``g`` itself when
    nothing changes, else ``out`` (same dtype and size), which then holds it; g is left as
    it is. For fastopt.minimize_minibatch, whose loop is in Python."""
    cdef ClipSpec spec
    cdef const void* src = cnp.PyArray_DATA(g)
    cdef void* dst = cnp.PyArray_DATA(out)
    cdef const void* result
    cdef Py_ssize_t n = cnp.PyArray_SIZE(g)
    if (cnp.PyArray_TYPE(g) != cnp.PyArray_TYPE(out) or cnp.PyArray_SIZE(out) != n
            or not cnp.PyArray_IS_C_CONTIGUOUS(g) or not cnp.PyArray_IS_C_CONTIGUOUS(out)
            or not cnp.PyArray_ISWRITEABLE(out)
            or cnp.PyArray_TYPE(g) not in (cnp.NPY_FLOAT, cnp.NPY_DOUBLE)):
        raise ValueError("clip_into needs two C-contiguous arrays of one float dtype and size")
    cdef bint single = _single(g)
    clip_spec_init(settings, &spec)
    with nogil:
        result = clip_gradient(&spec, single, src, dst, n, n_threads)
    return g if result == src else out
