# C-level entry to the update kernels, for the Cython modules that step optimizers
# (fastopt/_step.pyx, the minimize loop): one struct holds an update rule's kind and scalars,
# and apply_rule runs it on raw arrays without the GIL.

from libc.float cimport DBL_MIN
from libc.math cimport pow

include "_kernels_decl.pxi"

# The implementation compiled into this module (portable instruction set).
cdef void apply_rule_impl(const UpdateRule* rule, bint single, void* params, const void* grad,
                          void** state, Py_ssize_t n, const RuleStep* step,
                          int n_threads) noexcept nogil

# Apply ``rule`` to ``n`` elements in place, with the fastest implementation this CPU runs
# (chosen at import). ``single`` selects float32 (else float64) for every array; ``state``
# holds the rule's state arrays in its declared slot order (fastopt._step.kernel_spec), NULL
# for the ones its flags do not use. ``step`` says which update this is (see RuleStep).
cdef void apply_rule(const UpdateRule* rule, bint single, void* params, const void* grad,
                     void** state, Py_ssize_t n, const RuleStep* step, int n_threads) noexcept nogil

cdef void apply_rule_list_impl(const UpdateRule* rule, const ArrayRef* arrays,
                               Py_ssize_t n) noexcept nogil

# ``apply_rule`` with one thread on each of ``n`` arrays (the fastest implementation, as
# apply_rule): consecutive arrays of one dtype and one ``step`` (the same RuleStep address)
# share one computation of the rule's per-call coefficients. Bitwise the results of
# apply_rule(rule, a.single, a.params, a.grad, a.state, a.size, a.step, 1) on each array.
cdef void apply_rule_list(const UpdateRule* rule, const ArrayRef* arrays,
                          Py_ssize_t n) noexcept nogil

# Smallest array size stepped with several threads (PARALLEL_THRESHOLD).
cdef Py_ssize_t parallel_threshold() noexcept nogil

# Advance ``step.scalars`` from their values after update ``step.t - 1`` to their values
# after update ``step.t`` (``step.t`` and ``step.powers`` already those of update t), by the
# rule's own advance function; nothing for a rule without running scalars. Once per update
# (not per element, not per thread).
cdef void advance_rule(const UpdateRule* rule, RuleStep* step) noexcept nogil

# After update ``step`` of ``n`` elements, move the points a rule keeps in its state back
# into the box [lower, upper] (arrays of the params' dtype), and the parameters with them
# (schedule-free's z and y: projected schedule-free); nothing for the other rules. The
# minimize loops call it when there are bounds, before projecting the iterate itself.
cdef void project_rule(const UpdateRule* rule, const RuleStep* step, bint single,
                       void* params, void** state, const void* lower, const void* upper,
                       Py_ssize_t n) noexcept nogil


# Update number t of ``rule``, with the powers computed directly (the optimizer classes).
# The running scalars are the rule's initial values: the classes put in their own (from each
# parameter's state) and advance them with advance_rule.
cdef inline RuleStep rule_step_at(const UpdateRule* rule, Py_ssize_t t) noexcept nogil:
    cdef RuleStep step
    cdef int k
    step.t = t
    for k in range(MAX_POWERS):
        step.powers[k] = pow(rule.rates[k], <double>t)
    for k in range(MAX_SCALARS):
        step.scalars[k] = rule.initial[k]
    return step


# Before the first update: rule_step_next then gives update 1.
cdef inline RuleStep rule_step_zero(const UpdateRule* rule) noexcept nogil:
    cdef RuleStep step
    cdef int k
    step.t = 0
    for k in range(MAX_POWERS):
        step.powers[k] = 1.0
    for k in range(MAX_SCALARS):
        step.scalars[k] = rule.initial[k]
    return step


# The next update, with running products (the minimize loops), its running scalars advanced. A product that underflows is
# set to 0, as pow() gives: left alone it would stick at the smallest subnormal (0.9 * 5e-324
# rounds back to 5e-324, from t ~ 7070 for beta1 = 0.9), and subnormal arithmetic made every
# later iteration of a small problem 2-3x slower. 1 - beta ** t is 1 either way.
cdef inline void rule_step_next(const UpdateRule* rule, RuleStep* step) noexcept nogil:
    cdef int k
    step.t += 1
    for k in range(MAX_POWERS):
        step.powers[k] *= rule.rates[k]
        if step.powers[k] < DBL_MIN:
            step.powers[k] = 0.0
    if rule.n_scalars != 0:  # (no call at all for the rules without running scalars)
        advance_rule(rule, step)
