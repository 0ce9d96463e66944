# Declarations shared by fastopt/_kernels.pxd and fastopt/_kernels_avx2.pxd: both modules are
# compiled from _kernels_impl.pxi and must agree on the rule struct's layout. Nothing here
# names a particular rule: each kernel declares its inputs, slots, powers and running scalars
# next to its code (_kernels_impl.pxi), and fastopt._step.Rule fills the struct from that
# declaration.

cdef enum:
    MAX_STATE = 3   # the most state arrays a rule uses (RMSprop, Adam: three)
    MAX_INPUTS = 8  # the most named inputs besides lr (Adam: seven)
    MAX_POWERS = 2  # the most inputs whose powers RuleStep keeps (Adam: beta1, beta2)
    MAX_SCALARS = 2  # the most running scalars RuleStep keeps (NAdam: mu_product)

ctypedef struct UpdateRule:
    int kind  # index of the kernel's declaration (fastopt._step.kernel_kinds())
    int n_scalars  # how many running scalars the kernel declared (0: nothing to advance)
    # The learning rate, a field of its own: Rule.lr and minimize_batch's per-problem rates
    # write it.
    double lr
    # The kernel's other named inputs, in the order of its Inputs struct (flags as 0 or 1).
    double inputs[MAX_INPUTS]
    # The inputs the kernel declared as powered (Adam: beta1, beta2), 0 past them.
    double rates[MAX_POWERS]
    # The declared running scalars' initial values (before update 1), 0 past them.
    double initial[MAX_SCALARS]

# Which update this is, and the powers of the rule's declared rates that bias corrections need
# (powers[k] = rates[k] ** t). The optimizer classes compute them with pow() for step t
# (rule_step_at, as torch does); the minimize loops keep running products instead
# (rule_step_next): pow() costs ~15 ns, more than a whole update of a 2-element problem. The
# two agree to a few ulps.
#
# ``scalars``: the rule's running scalars (NAdam's mu_product, a product over the steps with
# no closed form in t), declared with their initial values by the kernel. They are advanced
# once per update, before it, by the rule's own advance function (``_advance`` in
# _kernels_impl.pxi, reached through ``advance_rule``): ``rule_step_next`` does it in the
# loops; the optimizer classes keep the values in their state (one per parameter, as torch
# keeps them) and advance a copy of them for each parameter's update.
ctypedef struct RuleStep:
    Py_ssize_t t  # >= 1
    double powers[MAX_POWERS]
    double scalars[MAX_SCALARS]

# One array of a list, as apply_rule_list takes it: its dtype (float32 if ``single``, else
# float64), data pointers (``state`` in the rule's slot order, NULL where unused), size, and
# which update it gets (arrays that share one RuleStep share their per-call coefficients).
ctypedef struct ArrayRef:
    void* params
    const void* grad
    void* state[MAX_STATE]
    Py_ssize_t size
    const RuleStep* step
    bint single
