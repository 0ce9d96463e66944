"""``fastopt.minimize(method="lbfgs")``: L-BFGS's options and result.

fastopt/_driver.py prepares the call as for every method (x0, ``fun`` and ``jac``, bounds,
callback) and hands L-BFGS here: :func:`lbfgs_options` reads the options (SciPy L-BFGS-B's
names and defaults, plus fastopt's common ones that apply to one problem), :func:`run_lbfgs`
runs the loop (fastopt/_lbfgs.pyx, on the engine of src_c/fastopt_lbfgs.h) and builds the
``OptimizeResult``.
"""

import warnings

from scipy.optimize import OptimizeResult, OptimizeWarning

from fastopt._conventions import (
    bool_option,
    iteration_limit,
    scalar_value,
    whole_number,
)
from fastopt._driver_common import (
    DEFAULT_GTOL,
    INT_MAX,
    STATUS_MESSAGES,
    flush_option,
    n_threads_option,
    progress_options,
)
from fastopt._finite_diff import FiniteDifferenceGradient, check_fd_method
from fastopt._lbfgs import (
    STOP_CALLBACK,
    STOP_FTOL,
    STOP_GTOL,
    STOP_LINESEARCH,
    STOP_MAXFUN,
    STOP_MAXITER,
    STOP_NONFINITE,
    lbfgs_loop,
)
from fastopt._loop import (
    EVAL_FINITE_DIFF,
    STATUS_CALLBACK,
    STATUS_CONVERGED,
    STATUS_MAXITER,
    STATUS_NONFINITE,
)
from fastopt._validation import check_real

# SciPy L-BFGS-B's defaults (scipy.optimize._lbfgsb_py._minimize_lbfgsb).
DEFAULTS = {"maxiter": 15000, "maxfun": 15000, "gtol": DEFAULT_GTOL,
            "ftol": 2.2204460492503131e-09, "maxcor": 10, "maxls": 20}
OPTIONS = (*DEFAULTS, "tol", "disp", "disp_every", "return_all", "finite_diff_method",
           "finite_diff_rel_step", "n_threads", "flush_subnormals", "maximize")
DISP_EVERY = 100

# L-BFGS-B's own status for a failed line search (its ABNORMAL_TERMINATION_IN_LNSRCH).
STATUS_LINESEARCH = 2

RESULTS = {
    STOP_GTOL: (STATUS_CONVERGED, STATUS_MESSAGES[STATUS_CONVERGED, "gtol"]),
    STOP_FTOL: (STATUS_CONVERGED, STATUS_MESSAGES[STATUS_CONVERGED, "ftol"]),
    STOP_MAXITER: (STATUS_MAXITER, STATUS_MESSAGES[STATUS_MAXITER, None]),
    STOP_MAXFUN: (STATUS_MAXITER, ("Maximum number of function evaluations has been "
                                   "exceeded.")),
    STOP_NONFINITE: (STATUS_NONFINITE, ("Stopped: fun or jac returned a non-finite value "
                                        "(NaN or inf) at x0, or at every point the line "
                                        "search tried; x is the last iterate with finite "
                                        "values.")),
    STOP_LINESEARCH: (STATUS_LINESEARCH, ("ABNORMAL: the line search found no acceptable "
                                          "step, even along the steepest descent; x is the "
                                          "last iterate.")),
    STOP_CALLBACK: (STATUS_CALLBACK, STATUS_MESSAGES[STATUS_CALLBACK, None]),
}


def lbfgs_options(options, stacklevel):
    """The validated options of an L-BFGS run (a dict; ``options`` is the caller's dict,
    ``tol`` in it the default of ``gtol`` and ``ftol``, as in SciPy's L-BFGS-B). Unknown
    options warn (OptimizeWarning), as SciPy's methods and fastopt's others do; bad values
    raise TypeError or ValueError naming the option."""
    if not options:  # the common call: the defaults, read once (flush depends on the thread)
        global _DEFAULT_LOOP
        if _DEFAULT_LOOP is None:
            _DEFAULT_LOOP = _read_options({}, stacklevel + 1)
        return dict(_DEFAULT_LOOP, flush=flush_option(options))
    return _read_options(options, stacklevel + 1)


_DEFAULT_LOOP = None


def _read_options(options, stacklevel):
    unknown = [k for k in options if k not in OPTIONS]
    if unknown:
        warnings.warn(f"Unknown solver options: {', '.join(map(str, unknown))}",
                      OptimizeWarning, stacklevel=stacklevel + 1)
    if "maximize" in options and bool_option("maximize", options["maximize"]):
        raise ValueError("minimize() minimizes: maximize=True is not allowed (negate fun)")
    # tol is the default of both gtol and ftol, as scipy.optimize.minimize sets them for
    # L-BFGS-B (a drop-in replacement stops where SciPy's would).
    gtol, ftol = DEFAULTS["gtol"], DEFAULTS["ftol"]
    tol = scalar_value(options.get("tol"))
    if tol is not None:
        gtol = ftol = check_real("tol", tol, "tolerance", low=0.0)
    maxiter = iteration_limit("maxiter", options.get("maxiter", DEFAULTS["maxiter"]))
    # History beyond maxiter pairs is never used: allocate no more (the run is the same).
    maxcor = whole_number("maxcor", options.get("maxcor", DEFAULTS["maxcor"]))
    level, every, _ = progress_options({k: options[k] for k in ("disp", "disp_every")
                                        if k in options}, DISP_EVERY)
    loop = {
        "maxiter": maxiter,
        "maxfun": iteration_limit("maxfun", options.get("maxfun", DEFAULTS["maxfun"])),
        "gtol": check_real("gtol", options.get("gtol", gtol), "tolerance", low=0.0),
        "ftol": check_real("ftol", options.get("ftol", ftol), "tolerance", low=0.0),
        "maxcor": min(maxcor, max(maxiter, 1), INT_MAX),
        "maxls": min(whole_number("maxls", options.get("maxls", DEFAULTS["maxls"])), INT_MAX),
        "disp": level,
        "disp_every": every,
        "return_all": bool_option("return_all", options.get("return_all", False)),
        "finite_diff_method": check_fd_method(options.get("finite_diff_method", "2-point")),
        "finite_diff_rel_step": scalar_value(options.get("finite_diff_rel_step")),
        "flush": flush_option(options),
    }
    n_threads_option(options)  # checked as everywhere; one problem runs on one thread
    if loop["finite_diff_rel_step"] is not None:
        loop["finite_diff_rel_step"] = check_real(
            "finite_diff_rel_step", loop["finite_diff_rel_step"], "relative step",
            low=0.0, low_open=True)
    return loop


def run_lbfgs(x, fun, jac, args, mode, lower, upper, callback, new_style, loop):
    """Run L-BFGS on the prepared call (x: the private copy of x0, in the box; ``mode``:
    fastopt._loop's EVAL_*, ``fun`` a NativeObjective for EVAL_NATIVE); returns the
    ``OptimizeResult``."""
    if mode == EVAL_FINITE_DIFF:
        jac = FiniteDifferenceGradient(fun, args, loop["finite_diff_method"],
                                       loop["finite_diff_rel_step"], lower, upper)
    allvecs = [] if loop["return_all"] else None
    show = _show_every(loop["disp_every"]) if loop["disp"] >= 2 else None
    stop, nit, nfev, f, g = lbfgs_loop(
        x, fun, jac, args, mode, lower, upper, loop["maxiter"], loop["maxfun"], loop["gtol"],
        loop["ftol"], loop["maxcor"], loop["maxls"], callback, new_style, allvecs, show,
        loop["flush"])
    njev = nfev
    if mode == EVAL_FINITE_DIFF:
        nfev += jac.nfev
    status, message = RESULTS[stop]
    result = OptimizeResult(x=x, fun=f, jac=g, nit=nit, nfev=nfev, njev=njev, status=status,
                            success=status == STATUS_CONVERGED, message=message)
    if allvecs is not None:
        result.allvecs = allvecs
    return result


def _show_every(every):
    """disp=2: a line every ``every`` iterations (iteration, f, the gradient's inf-norm)."""
    print(f"{'nit':>8} {'f':>14} {'|g|_inf':>10}")

    def show(nit, f, g):
        if nit % every == 0:
            print(f"{nit:>8} {f:>14.6e} {abs(g).max():>10.3e}")
    return show
