cdef class NativeObjective:
    # f(n, x, grad, user_data): objective_f32 when single, else objective_f64 (_loop.pxd)
    cdef void* fun
    cdef void* user_data
    cdef bint single
    cdef object owner
