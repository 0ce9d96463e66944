# The learning-rate schedules of fastopt.lr_scheduler as plain C, for the C-level loops
# (interface B of the issue-14 plan; fastopt/_schedule.pyx has the design notes).
#
# A Schedule is a fixed-size, copyable C struct holding one scheduler's (or one tree of
# SequentialLR / ChainedScheduler children's) constants and running state for a one-group
# optimizer. Its fields are private to fastopt/_schedule.pyx except `lr`, `momentum` and
# `error`, which a loop may read.

cdef enum:
    SCHEDULE_MAX_NODES = 8      # schedulers in one tree (a composite and its children)
    SCHEDULE_MAX_MARKS = 64     # MultiStepLR + SequentialLR milestones in one tree
    SCHEDULE_MAX_PHASES = 3     # OneCycleLR's phases

cdef struct ScheduleNode:
    int kind                    # one of the SCHED_* kinds in _schedule.pyx
    int first                   # MultiStepLR, SequentialLR: their first milestone in marks
    int count                   # MultiStepLR, SequentialLR: their number of milestones
    int n_children              # SequentialLR, ChainedScheduler (their children follow them)
    long long last_epoch
    long long step_count
    long long total_iters       # ConstantLR, LinearLR, PolynomialLR; OneCycleLR's total_steps
    long long step_size         # StepLR
    int flag                    # CyclicLR: scale function (0 triangular, 1 triangular2,
                                # 2 exp_range); OneCycleLR: 1 cos, 0 linear;
                                # ReduceLROnPlateau: bit 0 max mode, bit 1 abs threshold
    int by_cycle                # CyclicLR: scale_mode == "cycle"
    int cycle_momentum          # CyclicLR, OneCycleLR
    int n_phases                # OneCycleLR
    double base_lr              # the scheduler's base_lrs[0] (CyclicLR: base_lr)
    double gamma
    double factor               # ConstantLR, ReduceLROnPlateau
    double start_factor
    double end_factor
    double power
    double t_max                # CosineAnnealingLR's T_max; WarmRestarts' T_0
    double eta_min
    double t_mult               # CosineAnnealingWarmRestarts
    double t_cur
    double t_i
    double max_lr               # CyclicLR
    double total_size           # CyclicLR
    double step_ratio           # CyclicLR
    double base_momentum        # CyclicLR
    double max_momentum         # CyclicLR
    double end_step[SCHEDULE_MAX_PHASES]     # OneCycleLR: per phase
    double start_lr[SCHEDULE_MAX_PHASES]
    double end_lr[SCHEDULE_MAX_PHASES]
    double start_mom[SCHEDULE_MAX_PHASES]
    double end_mom[SCHEDULE_MAX_PHASES]
    double threshold            # ReduceLROnPlateau
    double min_lr
    double eps
    double best
    long long patience
    long long cooldown
    long long num_bad_epochs
    long long cooldown_counter

cdef enum:
    SCHEDULE_ERROR_PAST_END = 1
    SCHEDULE_ERROR_BAD_LR = 2

cdef struct Schedule:
    double lr                   # the group's learning rate (all nodes share it)
    double momentum             # the scheduled momentum / beta1, NaN when none is cycled
    int error                   # SCHEDULE_ERROR_*: set by the first step where the Python
                                # scheduler raises ValueError (past OneCycleLR's total_steps;
                                # an lr that is negative, NaN or infinite, which the optimizer
                                # refuses); the C step then leaves lr (and momentum) as it was
    int n_nodes
    int n_marks
    ScheduleNode nodes[SCHEDULE_MAX_NODES]    # nodes[0] is the root
    long long marks[SCHEDULE_MAX_MARKS]
    long long mark_counts[SCHEDULE_MAX_MARKS]

cdef int schedule_init(object scheduler, Schedule* out) except -1
    # from a fastopt.lr_scheduler scheduler of a one-group optimizer, in its current state;
    # TypeError for the ones that cannot run without Python (LambdaLR, MultiplicativeLR, a
    # SequentialLR/ChainedScheduler holding one): the driver then takes the GIL path.
cdef double schedule_step(Schedule* s, double metric) noexcept nogil
    # one scheduler.step() (metric: the current f, read by ReduceLROnPlateau only);
    # returns the new lr; bitwise the lr the Python scheduler gives at the same step.
cdef double schedule_momentum(const Schedule* s) noexcept nogil
    # the scheduled momentum / beta1 when the schedule cycles it (CyclicLR / OneCycleLR with
    # cycle_momentum), NaN when it does not.
