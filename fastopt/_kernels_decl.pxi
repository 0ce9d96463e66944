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
