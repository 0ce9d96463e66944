# The AVX2 build of the kernels (see fastopt/_kernels_avx2.pyx); fastopt/_kernels.pyx loads
# apply_rule_impl and apply_rule_list_impl from it at import time on CPUs that have AVX2.

include "_kernels_decl.pxi"

cdef void apply_rule_impl(const UpdateRule* rule, bint single, void* params, const void* grad,
                          void** state, Py_ssize_t n, const RuleStep* step,
                          int n_threads) noexcept nogil

cdef void apply_rule_list_impl(const UpdateRule* rule, const ArrayRef* arrays,
                               Py_ssize_t n) noexcept nogil
