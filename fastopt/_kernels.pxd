# C-level entry to the update kernels, for the Cython modules that step optimizers
# (fastopt/_step.pyx, the minimize loop): one struct holds an update rule's kind and scalars,
# and apply_rule runs it on raw arrays without the GIL.

cdef enum RuleKind:
    RULE_SGD
    RULE_ADAGRAD
    RULE_RMSPROP
    RULE_ADADELTA
    RULE_ADAM

# The most state arrays a rule uses (RMSprop, Adam: three).
cdef enum:
    MAX_STATE = 3

ctypedef struct UpdateRule:
    RuleKind kind
    double lr
    double momentum
    double dampening
    double weight_decay
    double lr_decay
    double eps
    double alpha
    double rho
    double beta1
    double beta2
    bint nesterov
    bint maximize
    bint centered
    bint amsgrad
    bint decoupled_weight_decay

# Apply ``rule`` to ``n`` elements in place. ``single`` selects float32 (else float64) for
# every array; ``state`` holds the rule's state arrays in its slot order (see _kernels.pyx),
# NULL for the ones its flags do not use. ``step`` is the number of this update (t >= 1).
cdef void apply_rule(const UpdateRule* rule, bint single, void* params, const void* grad,
                     void** state, Py_ssize_t n, Py_ssize_t step, int n_threads) noexcept nogil
