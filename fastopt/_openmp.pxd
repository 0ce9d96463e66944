# The only door to the OpenMP runtime: kernels and helpers cimport from here, never from
# openmp directly, so that a serial build (no _OPENMP) still compiles.
cdef extern from "fastopt_openmp.h" nogil:
    int fastopt_openmp_enabled()
    int fastopt_omp_get_max_threads()
