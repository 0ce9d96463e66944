# Gradient clipping at C level (fastopt/_clip.pyx): what the minimize and batch loops
# (fastopt/_iteration.pxi, fastopt/_batch.pyx) call between evaluating a gradient and the
# update. The public functions are fastopt.clip_grad_norm_ and fastopt.clip_grad_value_
# (fastopt/_clipping.py).

ctypedef struct ClipSpec:
    bint on             # any clipping at all (else the loops pass g to the rule as is)
    bint by_norm        # scale g by min(max_norm / (||g||_p + 1e-6), 1), as torch
    double max_norm
    int kind            # NORM_* (fastopt/_clip.pyx), from norm_type
    double norm_type
    bint by_value       # clamp g to [-clip_value, clip_value], after the norm's scaling
    double clip_value

# ``spec`` from the drivers' settings: None (off) or fastopt._clipping.ClipSettings.
cdef int clip_spec_init(object settings, ClipSpec* spec) except -1

# The gradient the update should see: ``g`` itself when clipping changes nothing (no value
# clipping and a norm <= max_norm), else ``out``, holding g clipped (g is never modified).
# n elements of float32 (``single``) or float64; threads above the kernels' threshold.
cdef const void* clip_gradient(const ClipSpec* spec, bint single, const void* g, void* out,
                               Py_ssize_t n, int n_threads) noexcept nogil
