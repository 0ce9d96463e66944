# The L-BFGS engine of one problem (src_c/fastopt_lbfgs.h), driven by reverse communication:
# the declarations every loop that drives it cimports (fastopt/_lbfgs_batch.pyx).

cdef extern from "fastopt_lbfgs.h" nogil:
    ctypedef struct fastopt_lbfgs:
        pass
    size_t fastopt_lbfgs_work_size(Py_ssize_t n, int history)
    void fastopt_lbfgs_init(fastopt_lbfgs* s, Py_ssize_t n, int history, double* work,
                            const double* lower, const double* upper, double gtol,
                            double ftol, int maxls, double* x)
    int fastopt_lbfgs_next(fastopt_lbfgs* s, double* x, double f, const double* g)
    const double* fastopt_lbfgs_x(const fastopt_lbfgs* s)
    double fastopt_lbfgs_f(const fastopt_lbfgs* s)
    const double* fastopt_lbfgs_g(const fastopt_lbfgs* s)
    enum:
        FASTOPT_LBFGS_EVALUATE
        FASTOPT_LBFGS_NEW_ITERATE
        FASTOPT_LBFGS_STOP_GTOL
        FASTOPT_LBFGS_STOP_FTOL
        FASTOPT_LBFGS_STOP_NONFINITE
        FASTOPT_LBFGS_STOP_LINESEARCH

    # The Moré-Thuente line search alone (the engine tests' hook, _lbfgs._dcsrch_steps).
    ctypedef struct fastopt_dcsrch:
        pass
    void fastopt_dcsrch_start(fastopt_dcsrch* ls, double f, double g, double stp, double ftol,
                              double stpmax)
    int fastopt_dcsrch_next(fastopt_dcsrch* ls, double f, double g, double* stp, double gtol,
                            double xtol, double stpmax)
    enum:
        FASTOPT_DCSRCH_FG
        FASTOPT_DCSRCH_CONV
