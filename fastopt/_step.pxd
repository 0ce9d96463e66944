from fastopt._kernels cimport UpdateRule


cdef class Layout:
    # The parameters of one optimizer and the dtype and shape each had when it was built.
    cdef readonly list params
    cdef readonly bint single
    cdef readonly tuple slot_names
    cdef readonly list dtypes  # for error messages
    cdef readonly list shapes
    cdef Py_ssize_t n
    cdef int* types
    cdef int* ndims
    cdef Py_ssize_t* sizes
    cdef Py_ssize_t* starts  # where each parameter's dims begin in ``dims``
    cdef Py_ssize_t* dims
    cdef void** datas  # each parameter's data address when ``spans`` were last made


cdef class Rule:
    # The kernel kind and scalars of one optimizer; the minimize loop reads ``rule`` directly.
    cdef UpdateRule rule
    cdef tuple scalar_names  # the kernel's running scalars (error messages)
    cdef bint busy  # inside step(), possibly with the GIL released

    cdef Py_ssize_t run_step(self, object grads, Layout layout, object spans, list slots,
                             list scalars, Py_ssize_t step, int n_threads) except -1


cdef class OptimizerCore:
    # What Optimizer.step needs, as C fields (read without Python attribute lookups).
    cdef public Rule _rule
    cdef public Layout _layout
    cdef public object _spans
    cdef public list _slots  # None until the state is made
    # Each parameter's running scalars (0-d float64 arrays, the kernel's declared order), or
    # None (no state yet, or a kernel without running scalars).
    cdef public list _scalar_slots
    cdef public Py_ssize_t _step
    cdef public int _n_threads
    # Several parameter groups: one Rule per group, each group's end in the parameters and the
    # step count when it was added; None for one group (the one rule is _rule).
    cdef public list _group_rules
    cdef public tuple _group_ends
    cdef public tuple _group_starts
    # flush_subnormals: step() runs with FTZ/DAZ set (src_c/fastopt_fpenv.h)
    cdef public bint _flush_subnormals
