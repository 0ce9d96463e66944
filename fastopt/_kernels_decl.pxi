# Declarations shared by fastopt/_kernels.pxd and fastopt/_kernels_avx2.pxd: both modules are
# compiled from _kernels_impl.pxi and must agree on the rule struct's layout.

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

# Which update this is, and the powers of beta1 and beta2 Adam's bias corrections need. The
# optimizer classes compute them with pow() for step t (rule_step_at, as torch does); the
# minimize loops keep running products instead (rule_step_next): pow() costs ~15 ns, more than
# a whole update of a 2-element problem. The two agree to a few ulps.
ctypedef struct RuleStep:
    Py_ssize_t t  # >= 1
    double beta1_pow
    double beta2_pow
