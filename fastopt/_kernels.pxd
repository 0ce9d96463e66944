# C-level entry to the update kernels, for the Cython modules that step optimizers
# (fastopt/_step.pyx, the minimize loop): one struct holds an update rule's kind and scalars,
# and apply_rule runs it on raw arrays without the GIL.

include "_kernels_decl.pxi"

# The implementation compiled into this module (portable instruction set).
cdef void apply_rule_impl(const UpdateRule* rule, bint single, void* params, const void* grad,
                          void** state, Py_ssize_t n, Py_ssize_t step,
                          int n_threads) noexcept nogil

# Apply ``rule`` to ``n`` elements in place, with the fastest implementation this CPU runs
# (chosen at import). ``single`` selects float32 (else float64) for every array; ``state``
# holds the rule's state arrays in its slot order (see _kernels_impl.pxi), NULL for the ones
# its flags do not use. ``step`` is the number of this update (t >= 1).
cdef void apply_rule(const UpdateRule* rule, bint single, void* params, const void* grad,
                     void** state, Py_ssize_t n, Py_ssize_t step, int n_threads) noexcept nogil

# Smallest array size stepped with several threads (PARALLEL_THRESHOLD).
cdef Py_ssize_t parallel_threshold() noexcept nogil
