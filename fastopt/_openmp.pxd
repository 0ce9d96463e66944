# The only door to the OpenMP runtime: fastopt cimports from here, never from openmp directly,
# so that a serial build (no _OPENMP) still compiles. Who uses what: the kernels
# (_kernels_impl.pxi), _step.pyx and _batch.pyx cimport fastopt_thread_limit, the thread count
# of every prange; _openmp.pyx cimports fastopt_openmp_enabled and fastopt_omp_get_max_threads
# (openmp_enabled(), effective_n_threads()); fastopt_in_forked_child is what
# fastopt_thread_limit asks, in the header itself.
cdef extern from "fastopt_openmp.h" nogil:
    int fastopt_openmp_enabled()
    int fastopt_omp_get_max_threads()
    # Every num_threads given to OpenMP goes through this: 1 in a child forked after fastopt
    # was loaded (GNU libgomp would hang there), else n_threads. See src_c/fastopt_openmp.h.
    int fastopt_thread_limit(int n_threads)
    bint fastopt_in_forked_child()
