cdef class NativeObjective:
    # f(n, x, grad, user_data): objective_f32 when single, else objective_f64 (_loop.pxd);
    # or a block objective (block)
    cdef void* fun
    cdef void* user_data
    cdef bint single
    cdef bint block  # f(m, n, X, F, G, user_data): block_f32/block_f64 (_loop.pxd)
    cdef object owner
