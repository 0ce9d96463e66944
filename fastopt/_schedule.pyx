"""The learning-rate schedules of fastopt.lr_scheduler in plain C (interface B).

fastopt's C-level loops (the minimize loop, the batch loops) step a schedule without the GIL:
`schedule_init` copies a Python scheduler's constants and current state into a fixed-size
`Schedule` struct (fastopt/_schedule.pxd), and `schedule_step` is one ``scheduler.step()``.

Bitwise equality with the Python schedulers (and so with torch) is the design rule: every
formula is written in the Python code's order of operations, with the same libm calls
(``math.cos`` is C's ``cos``, ``float ** x`` is C's ``pow`` for the finite, positive or
integral cases the schedules reach, int / int true division is the correctly rounded quotient
of the two doubles while both are below 2**53), and this module is compiled with
``-ffp-contract=off`` (setup.py) so that no multiply-add is fused. Python's integer ``%`` is
used only in comparisons with 0 (where floor and truncated remainders agree) or on
non-negative operands, so ``fmod`` and C's ``%`` stand in for it.

Every scheduler but LambdaLR and MultiplicativeLR runs here (a CyclicLR with a custom
``scale_fn`` calls Python too); a SequentialLR or ChainedScheduler runs here when all its
children do, up to SCHEDULE_MAX_NODES schedulers and SCHEDULE_MAX_MARKS milestones in all.
`schedule_init` raises TypeError for the rest, and the caller runs the Python scheduler.
`run` is the Python hook the tests use to compare the two.
"""

from libc.float cimport DBL_MAX
from libc.math cimport NAN, cos, floor, fmod, pow
from libc.string cimport memset

import numpy as np

from fastopt import lr_scheduler as _ls

cdef extern from "math.h":
    double M_PI

cdef enum:
    SCHED_STEP = 1
    SCHED_MULTISTEP
    SCHED_CONSTANT
    SCHED_LINEAR
    SCHED_EXPONENTIAL
    SCHED_POLYNOMIAL
    SCHED_COSINE
    SCHED_WARM_RESTARTS
    SCHED_CYCLIC
    SCHED_ONECYCLE
    SCHED_PLATEAU
    SCHED_SEQUENTIAL
    SCHED_CHAINED

# Classes whose _update_lr(0) (SequentialLR's restart of a child at its milestone) C can do:
# the closed forms and the get_lr() at step 0 of the rest; a composite child there would make
# torch call the base class's get_lr (NotImplementedError).
_KINDS = {
    _ls.StepLR: SCHED_STEP,
    _ls.MultiStepLR: SCHED_MULTISTEP,
    _ls.ConstantLR: SCHED_CONSTANT,
    _ls.LinearLR: SCHED_LINEAR,
    _ls.ExponentialLR: SCHED_EXPONENTIAL,
    _ls.PolynomialLR: SCHED_POLYNOMIAL,
    _ls.CosineAnnealingLR: SCHED_COSINE,
    _ls.CosineAnnealingWarmRestarts: SCHED_WARM_RESTARTS,
    _ls.CyclicLR: SCHED_CYCLIC,
    _ls.OneCycleLR: SCHED_ONECYCLE,
    _ls.ReduceLROnPlateau: SCHED_PLATEAU,
    _ls.SequentialLR: SCHED_SEQUENTIAL,
    _ls.ChainedScheduler: SCHED_CHAINED,
}


# -- reading a Python scheduler ----------------------------------------------------------------

cdef double _real(object value, str name) except? -1.0:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        # a value C cannot hold exactly (a tensor, a Fraction, ...): leave it to Python
        raise TypeError(f"the C schedule needs {name} to be an int or float, got {value!r}")
    return <double>value


cdef long long _int(object value, str name) except? -1:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"the C schedule needs {name} to be an int, got {value!r}")
    if not -(1 << 53) <= value <= (1 << 53):
        raise TypeError(f"the C schedule needs {name} within +-2**53, got {value!r}")
    return <long long>value


cdef double _exact_int_real(object value, str name) except? -1.0:
    # A count that Python keeps as an int (or float) and that C holds as a double: exact
    # below 2**53.
    if isinstance(value, int) and not isinstance(value, bool):
        _int(value, name)
    return _real(value, name)


cdef int _add_marks(Schedule* s, ScheduleNode* node, list values, list counts) except -1:
    if s.n_marks + len(values) > SCHEDULE_MAX_MARKS:
        raise TypeError(f"the C schedule holds at most {SCHEDULE_MAX_MARKS} milestones")
    node.first = s.n_marks
    node.count = len(values)
    for value, count in zip(values, counts):
        s.marks[s.n_marks] = _int(value, "a milestone")
        s.mark_counts[s.n_marks] = _int(count, "a milestone's count")
        s.n_marks += 1
    return 0


cdef int _add_node(Schedule* s, object sched, bint restartable) except -1:
    """Append ``sched`` (and its children) as nodes; return its index."""
    kind = _KINDS.get(type(sched))
    if kind is None:
        raise TypeError(f"{type(sched).__name__} calls Python at each step: no C schedule")
    if s.n_nodes >= SCHEDULE_MAX_NODES:
        raise TypeError(f"the C schedule holds at most {SCHEDULE_MAX_NODES} schedulers")
    cdef int index = s.n_nodes
    s.n_nodes += 1
    cdef ScheduleNode* node = &s.nodes[index]
    memset(node, 0, sizeof(ScheduleNode))
    node.kind = kind
    if kind == SCHED_SEQUENTIAL or kind == SCHED_CHAINED:
        if restartable:
            raise TypeError("a SequentialLR restarting a composite scheduler fails in torch "
                            "(NotImplementedError): no C schedule")
        children = list(sched._schedulers)
        if kind == SCHED_SEQUENTIAL:
            node.last_epoch = _int(sched.last_epoch, "last_epoch")
            milestones = list(sched._milestones)
            if len(milestones) != len(children) - 1:  # (changed since): Python fails, C won't
                raise TypeError("SequentialLR whose milestones do not match its schedulers: "
                                "no C schedule")
            _add_marks(s, node, milestones, [1] * len(milestones))
        # The children follow their parent depth first (each child's subtree, then the next
        # child): see _child.
        node.n_children = len(children)
        for i, child in enumerate(children):
            _add_node(s, child, kind == SCHED_SEQUENTIAL and i > 0)
        return index
    node.last_epoch = _int(sched.last_epoch, "last_epoch")
    if kind == SCHED_PLATEAU:
        groups = sched.optimizer.param_groups
        node.flag = (sched.mode == "max") | ((sched.threshold_mode == "abs") << 1)
        if sched.mode not in ("min", "max") or sched.threshold_mode not in ("rel", "abs"):
            raise TypeError("ReduceLROnPlateau with an unknown mode: no C schedule")
        node.threshold = _real(sched.threshold, "threshold")
        node.factor = _real(sched.factor, "factor")
        if len(sched.min_lrs) != 1:
            raise TypeError("ReduceLROnPlateau with several min_lrs: no C schedule")
        node.min_lr = _real(sched.min_lrs[0], "min_lr")
        node.eps = _real(sched.eps, "eps")
        node.best = _real(sched.best, "best")
        node.patience = _int(sched.patience, "patience")
        node.cooldown = _int(sched.cooldown, "cooldown")
        node.num_bad_epochs = _int(sched.num_bad_epochs, "num_bad_epochs")
        node.cooldown_counter = _int(sched.cooldown_counter, "cooldown_counter")
        return index
    node.step_count = _int(sched._step_count, "_step_count")
    if len(sched.base_lrs) != 1:
        raise TypeError("a C schedule runs one param group")
    node.base_lr = _real(sched.base_lrs[0], "base_lrs[0]")
    if kind == SCHED_STEP:
        node.step_size = _int(sched.step_size, "step_size")
        if node.step_size == 0:
            raise TypeError("StepLR with step_size 0: no C schedule")
        node.gamma = _real(sched.gamma, "gamma")
    elif kind == SCHED_MULTISTEP:
        node.gamma = _real(sched.gamma, "gamma")
        items = list(sched.milestones.items())
        _add_marks(s, node, [m for m, _ in items], [c for _, c in items])
    elif kind == SCHED_CONSTANT:
        node.factor = _real(sched.factor, "factor")
        node.total_iters = _int(sched.total_iters, "total_iters")
        if node.factor == 0:  # Python divides by it (ZeroDivisionError)
            raise TypeError("ConstantLR with factor 0: no C schedule")
    elif kind == SCHED_LINEAR or kind == SCHED_POLYNOMIAL:
        node.total_iters = _int(sched.total_iters, "total_iters")
        if kind == SCHED_LINEAR:
            node.start_factor = _real(sched.start_factor, "start_factor")
            node.end_factor = _real(sched.end_factor, "end_factor")
        else:
            node.power = _real(sched.power, "power")
        if restartable and node.total_iters == 0:  # the closed form divides by it
            raise TypeError(f"{type(sched).__name__} with total_iters 0 restarted by a "
                            "SequentialLR: no C schedule")
    elif kind == SCHED_EXPONENTIAL:
        node.gamma = _real(sched.gamma, "gamma")
    elif kind == SCHED_COSINE:
        node.t_max = _exact_int_real(sched.T_max, "T_max")
        node.eta_min = _real(sched.eta_min, "eta_min")
        if node.t_max == 0:
            raise TypeError("CosineAnnealingLR with T_max 0: no C schedule")
    elif kind == SCHED_WARM_RESTARTS:
        node.t_max = _exact_int_real(sched.T_0, "T_0")
        node.t_mult = _exact_int_real(sched.T_mult, "T_mult")
        node.t_cur = _exact_int_real(sched.T_cur, "T_cur")
        node.t_i = _exact_int_real(sched.T_i, "T_i")
        node.eta_min = _real(sched.eta_min, "eta_min")
    elif kind == SCHED_CYCLIC:
        if sched._scale_fn_custom is not None:
            raise TypeError("CyclicLR with a custom scale_fn calls Python: no C schedule")
        modes = {"triangular": 0, "triangular2": 1, "exp_range": 2}
        if sched.mode not in modes or sched.scale_mode not in ("cycle", "iterations"):
            raise TypeError("CyclicLR with an unknown mode: no C schedule")
        node.flag = modes[sched.mode]
        node.by_cycle = sched.scale_mode == "cycle"
        node.gamma = _real(sched.gamma, "gamma")
        node.max_lr = _real(sched.max_lrs[0], "max_lrs[0]")
        node.total_size = _real(sched.total_size, "total_size")
        node.step_ratio = _real(sched.step_ratio, "step_ratio")
        node.cycle_momentum = bool(sched.cycle_momentum)
        if node.cycle_momentum:
            node.base_momentum = _real(sched.base_momentums[0], "base_momentum")
            node.max_momentum = _real(sched.max_momentums[0], "max_momentum")
    elif kind == SCHED_ONECYCLE:
        node.total_iters = _int(sched.total_steps, "total_steps")
        node.flag = sched._anneal_func_type == "cos"
        phases = sched._schedule_phases
        if not 1 <= len(phases) <= SCHEDULE_MAX_PHASES:
            raise TypeError("OneCycleLR with an unexpected number of phases")
        node.n_phases = len(phases)
        extra = sched._group_keys[0]
        node.cycle_momentum = bool(sched.cycle_momentum)
        start = 0.0
        for i, phase in enumerate(phases):
            if _real(phase["end_step"], "end_step") == start:  # Python divides by zero there
                raise TypeError("OneCycleLR with an empty phase: no C schedule")
            start = phase["end_step"]
            node.end_step[i] = _real(phase["end_step"], "end_step")
            node.start_lr[i] = _real(extra[phase["start_lr"]], phase["start_lr"])
            node.end_lr[i] = _real(extra[phase["end_lr"]], phase["end_lr"])
            if node.cycle_momentum:
                node.start_mom[i] = _real(extra[phase["start_momentum"]], "momentum")
                node.end_mom[i] = _real(extra[phase["end_momentum"]], "momentum")
    return index


cdef int schedule_init(object scheduler, Schedule* out) except -1:
    """Fill ``out`` from ``scheduler`` (a fastopt.lr_scheduler scheduler of a one-group
    optimizer) in its current state; TypeError when it cannot run in C."""
    cdef Schedule s
    memset(&s, 0, sizeof(Schedule))
    if not isinstance(scheduler, _ls.LRScheduler):
        raise TypeError(f"{type(scheduler).__name__} is not a fastopt.lr_scheduler scheduler")
    optimizer = scheduler.optimizer
    groups = optimizer.param_groups
    if len(groups) != 1:
        raise TypeError(f"a C schedule runs a one-group optimizer, this one has "
                        f"{len(groups)} param groups")
    group = groups[0]
    s.lr = _real(group["lr"], "lr")
    s.momentum = NAN
    _add_node(&s, scheduler, False)
    cdef int i
    for i in range(s.n_nodes):
        if ((s.nodes[i].kind == SCHED_CYCLIC or s.nodes[i].kind == SCHED_ONECYCLE)
                and s.nodes[i].cycle_momentum):
            s.momentum = _real(group["momentum"] if "momentum" in group else group["betas"][0],
                               "momentum")
        if s.nodes[i].kind == SCHED_PLATEAU and i != 0:
            raise TypeError("ReduceLROnPlateau inside a composite: no C schedule")
    out[0] = s
    return 0


# -- stepping ----------------------------------------------------------------------------------

cdef inline int _bisect_right(const Schedule* s, const ScheduleNode* node,
                              long long x) noexcept nogil:
    # Python's bisect.bisect_right, step for step (also on an unsorted list, as Python).
    cdef int lo = 0, hi = node.count, mid
    while lo < hi:
        mid = (lo + hi) // 2
        if x < s.marks[node.first + mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


cdef inline double _anneal(const ScheduleNode* node, double start, double end,
                           double pct) noexcept nogil:
    cdef double cos_out
    if node.flag:
        cos_out = cos(M_PI * pct) + 1
        return end + (start - end) / 2.0 * cos_out
    return (end - start) * pct + start


cdef inline double _cyclic_scale(const ScheduleNode* node, double x) noexcept nogil:
    if node.flag == 0:
        return 1.0
    if node.flag == 1:
        return 1 / (pow(2.0, x - 1))
    return pow(node.gamma, x)


cdef double _get_lr(Schedule* s, ScheduleNode* node, double lr) noexcept nogil:
    """The Python class's get_lr() (not in its initial step) at node.last_epoch."""
    cdef long long e = node.last_epoch
    cdef int i, k
    cdef double decay, q, cycle, x, scale_factor, scale, pct, start_step, end_step
    cdef double arg
    if node.kind == SCHED_STEP:
        if e == 0 or e % node.step_size != 0:
            return lr
        return lr * node.gamma
    if node.kind == SCHED_MULTISTEP:
        for i in range(node.count):
            k = node.first + i
            if s.marks[k] == e:
                return lr * pow(node.gamma, <double>s.mark_counts[k])
        return lr
    if node.kind == SCHED_CONSTANT:
        if e == 0:
            return lr * node.factor
        if e != node.total_iters:
            return lr
        return lr * (1.0 / node.factor)
    if node.kind == SCHED_LINEAR:
        if e == 0:
            return lr * node.start_factor
        if e > node.total_iters:
            return lr
        return lr * (1.0 + (node.end_factor - node.start_factor)
                     / (<double>node.total_iters * node.start_factor
                        + <double>(e - 1) * (node.end_factor - node.start_factor)))
    if node.kind == SCHED_EXPONENTIAL:
        return lr * node.gamma
    if node.kind == SCHED_POLYNOMIAL:
        if e > node.total_iters:
            return lr
        decay = pow((1.0 - <double>e / <double>node.total_iters)
                    / (1.0 - <double>(e - 1) / <double>node.total_iters), node.power)
        return lr * decay
    if node.kind == SCHED_COSINE:
        if node.step_count == 1 and e > 0:
            return (node.eta_min + (node.base_lr - node.eta_min)
                    * (1 + cos(<double>e * M_PI / node.t_max)) / 2)
        if fmod(<double>(e - 1) - node.t_max, 2 * node.t_max) == 0:
            return lr + (node.base_lr - node.eta_min) * (1 - cos(M_PI / node.t_max)) / 2
        return ((1 + cos(M_PI * <double>e / node.t_max))
                / (1 + cos(M_PI * <double>(e - 1) / node.t_max))
                * (lr - node.eta_min) + node.eta_min)
    if node.kind == SCHED_WARM_RESTARTS:
        return (node.eta_min + (node.base_lr - node.eta_min)
                * (1 + cos(M_PI * node.t_cur / node.t_i)) / 2)
    if node.kind == SCHED_CYCLIC:
        q = <double>e / node.total_size
        cycle = floor(1 + q)
        x = 1.0 + q - cycle
        if x <= node.step_ratio:
            scale_factor = x / node.step_ratio
        else:
            scale_factor = (x - 1) / (node.step_ratio - 1)
        scale = _cyclic_scale(node, cycle if node.by_cycle else <double>e)
        if node.cycle_momentum:
            s.momentum = (node.max_momentum
                          - (node.max_momentum - node.base_momentum) * scale_factor * scale)
        return node.base_lr + (node.max_lr - node.base_lr) * scale_factor * scale
    if node.kind == SCHED_ONECYCLE:
        if e > node.total_iters:
            if s.error == 0:  # (the first error is the one Python raises)
                s.error = SCHEDULE_ERROR_PAST_END
            return lr
        start_step = 0.0
        for i in range(node.n_phases):
            end_step = node.end_step[i]
            if <double>e <= end_step or i == node.n_phases - 1:
                pct = (<double>e - start_step) / (end_step - start_step)
                if node.cycle_momentum:
                    s.momentum = _anneal(node, node.start_mom[i], node.end_mom[i], pct)
                return _anneal(node, node.start_lr[i], node.end_lr[i], pct)
            start_step = node.end_step[i]
    return lr


cdef double _closed_form_zero(Schedule* s, ScheduleNode* node) noexcept nogil:
    """The Python class's _update_lr(0): its closed form at step 0, else get_lr() there."""
    cdef int i, n = 0
    node.last_epoch = 0
    if node.kind == SCHED_STEP or node.kind == SCHED_EXPONENTIAL:
        return node.base_lr * pow(node.gamma, 0.0)
    if node.kind == SCHED_MULTISTEP:
        for i in range(node.count):
            if s.marks[node.first + i] <= 0:
                n += <int>s.mark_counts[node.first + i]
        return node.base_lr * pow(node.gamma, <double>n)
    if node.kind == SCHED_CONSTANT:
        return node.base_lr * (node.factor
                               + ((1 - node.factor) if 0 >= node.total_iters else 0.0))
    if node.kind == SCHED_LINEAR:
        return node.base_lr * (node.start_factor
                               + (node.end_factor - node.start_factor)
                               * <double>(0 if node.total_iters > 0 else node.total_iters)
                               / <double>node.total_iters)
    if node.kind == SCHED_POLYNOMIAL:
        return node.base_lr * pow(
            1.0 - <double>(0 if node.total_iters > 0 else node.total_iters)
            / <double>node.total_iters, node.power)
    if node.kind == SCHED_COSINE:
        return (node.eta_min + (node.base_lr - node.eta_min)
                * (1 + cos(M_PI * 0.0 / node.t_max)) / 2)
    return _get_lr(s, node, s.lr)


cdef void _node_step(Schedule* s, int index, double metric) noexcept nogil:
    """One step() of node ``index``: sets s.lr (and s.momentum)."""
    cdef ScheduleNode* node = &s.nodes[index]
    cdef ScheduleNode* child
    cdef int i, first, idx
    cdef double new_lr
    cdef bint better
    if node.kind == SCHED_SEQUENTIAL:
        node.last_epoch += 1
        first = index + 1
        idx = _bisect_right(s, node, node.last_epoch)
        if idx > 0 and s.marks[node.first + idx - 1] == node.last_epoch:
            s.lr = _closed_form_zero(s, &s.nodes[_child(s, first, idx)])
        else:
            _node_step(s, _child(s, first, idx), metric)
        return
    if node.kind == SCHED_CHAINED:
        first = index + 1
        for i in range(node.n_children):
            _node_step(s, _child(s, first, i), metric)
        return
    if node.kind == SCHED_PLATEAU:
        node.last_epoch += 1
        if node.flag == 0:
            better = metric < node.best * (1.0 - node.threshold)
        elif node.flag == 2:
            better = metric < node.best - node.threshold
        elif node.flag == 1:
            better = metric > node.best * (node.threshold + 1.0)
        else:
            better = metric > node.best + node.threshold
        if better:
            node.best = metric
            node.num_bad_epochs = 0
        else:
            node.num_bad_epochs += 1
        if node.cooldown_counter > 0:
            node.cooldown_counter -= 1
            node.num_bad_epochs = 0
        if node.num_bad_epochs > node.patience:
            new_lr = s.lr * node.factor
            if node.min_lr > new_lr:  # Python's max(a, b): b only when b > a
                new_lr = node.min_lr
            if s.lr - new_lr > node.eps:
                s.lr = new_lr
            node.cooldown_counter = node.cooldown
            node.num_bad_epochs = 0
        return
    if node.kind == SCHED_WARM_RESTARTS:
        # CosineAnnealingWarmRestarts.step() (its own, without epoch): no _step_count
        if node.last_epoch < 0:
            node.t_i = node.t_max
            node.t_cur = 0
            node.last_epoch = 0
        else:
            node.last_epoch += 1
            node.t_cur = node.t_cur + 1
            if node.t_cur >= node.t_i:
                node.t_cur = fmod(node.t_cur, node.t_i)
                node.t_i = node.t_i * node.t_mult
        s.lr = _get_lr(s, node, s.lr)
        return
    node.step_count += 1
    node.last_epoch += 1
    s.lr = _get_lr(s, node, s.lr)


cdef inline int _child(const Schedule* s, int first, int i) noexcept nogil:
    # Children are appended depth first: the i-th child follows the (i-1)-th's subtree.
    cdef int j = first, k
    for k in range(i):
        j = _subtree_end(s, j)
    return j


cdef int _subtree_end(const Schedule* s, int j) noexcept nogil:
    """The index just past node j's subtree."""
    cdef int k, end = j + 1
    cdef const ScheduleNode* node = &s.nodes[j]
    if node.kind == SCHED_SEQUENTIAL or node.kind == SCHED_CHAINED:
        for k in range(node.n_children):
            end = _subtree_end(s, end)
    return end


cdef double schedule_step(Schedule* s, double metric) noexcept nogil:
    """One scheduler.step() (``metric`` read by ReduceLROnPlateau only); the new lr."""
    cdef double lr = s.lr, momentum = s.momentum
    if s.n_nodes > 0:
        _node_step(s, 0, metric)
    if not (0.0 <= s.lr <= DBL_MAX):
        # NaN, negative or infinite (a negative eta_min or gamma, a negative power, ...): the
        # Python step raises ValueError there (the optimizer refuses the lr), so the C one
        # must not run the rule with it. The loops raise that error when they end.
        if s.error == 0:
            s.error = SCHEDULE_ERROR_BAD_LR
        s.lr, s.momentum = lr, momentum
    return s.lr


cdef double schedule_momentum(const Schedule* s) noexcept nogil:
    """The scheduled momentum / beta1, NaN when the schedule does not cycle it."""
    return s.momentum


# -- the Python hook for the tests -------------------------------------------------------------

def run(scheduler, Py_ssize_t steps, metrics=None):
    """Run the C schedule of ``scheduler`` (left as it is) for ``steps`` steps.

    Parameters
    ----------
    scheduler : fastopt.lr_scheduler.LRScheduler
        Of a one-group optimizer, in the state to start from.
    steps : int
    metrics : array_like of float, optional
        One value per step, for ReduceLROnPlateau (zeros when not given).

    Returns
    -------
    lrs, momentums : ndarray of float64, shape (steps,)
        The learning rate and the scheduled momentum (NaN when none) after each step.
    n_ok : int
        The steps taken before one went past OneCycleLR's total_steps or computed a learning
        rate that is negative, NaN or infinite (where Python raises ValueError), ``steps``
        when none did; the arrays hold NaN from there on.

    Raises
    ------
    TypeError
        When the scheduler cannot run in C.
    """
    cdef Schedule s
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    schedule_init(scheduler, &s)
    m = np.zeros(steps) if metrics is None else np.ascontiguousarray(metrics, dtype=np.float64)
    if m.shape != (steps,):
        raise ValueError(f"metrics must have one value per step ({steps}), got shape "
                         f"{m.shape}")
    lrs = np.empty(steps)
    moms = np.empty(steps)
    cdef double[::1] lv = lrs, mv = moms
    cdef const double[::1] metric = m
    cdef Py_ssize_t k, n_ok = steps
    with nogil:
        for k in range(steps):
            lv[k] = schedule_step(&s, metric[k])
            mv[k] = schedule_momentum(&s)
            if s.error:
                n_ok = k
                break
    lrs[n_ok:] = np.nan
    moms[n_ok:] = np.nan
    return lrs, moms, n_ok


def supported(scheduler):
    """Whether ``scheduler`` runs in C (schedule_init accepts it)."""
    cdef Schedule s
    try:
        schedule_init(scheduler, &s)
    except TypeError:
        return False
    return True
