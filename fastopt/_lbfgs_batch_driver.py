"""``minimize_batch(method="lbfgs")``: L-BFGS's options, the choice of loop, the result.

fastopt/_minimize_batch.py hands L-BFGS here after its checks of ``fun``, ``X0``, ``args``
and ``callback``. The options are ``fastopt.minimize(method="lbfgs")``'s (SciPy L-BFGS-B's
names and defaults, read by fastopt/_lbfgs_driver.py), plus ``n_threads``; the other methods'
options (``lr`` and the hyperparameters, schedules, clipping, ``xtol``, ``progress``) and the
single-problem ones (``return_all``, finite differences) raise ValueError. The loops are in
fastopt/_lbfgs_batch.pyx; each problem's status and message come from minimize's table.
"""

import numpy as np
from scipy.optimize import OptimizeResult

from fastopt._driver_common import (
    CLIP_OPTIONS,
    _hyperparameter_names,
    n_threads_option,
)
from fastopt._lbfgs import STOP_CALLBACK, STOP_MAXFUN, STOP_MAXITER
from fastopt._lbfgs_batch import lbfgs_batch_native, lbfgs_batch_python
from fastopt._lbfgs_driver import RESULTS, lbfgs_options
from fastopt._loop import EVAL_NATIVE, STATUS_CONVERGED
from fastopt._minimize_batch import _batch_args, _starting_points, _summary, \
    batch_evaluation, print_summary
from fastopt._registry import RECORDS
from fastopt import _lbfgs_batch

# What the other methods take and L-BFGS does not: a clear error rather than a warning.
NOT_LBFGS = frozenset(
    {name for record in RECORDS for name in _hyperparameter_names(record.cls)}
    | set(CLIP_OPTIONS) | {"xtol", "lr_scheduler", "progress"}) - {"maximize"}
# Options of fastopt.minimize's L-BFGS that have no meaning for a batch.
SINGLE_ONLY = ("return_all", "finite_diff_method", "finite_diff_rel_step")

# The batch loops' stop codes -> (status, message): fastopt.minimize's table (the loops use
# its codes; the engine's are shared, the loop's own checked here).
assert (_lbfgs_batch.STOP_MAXITER, _lbfgs_batch.STOP_MAXFUN, _lbfgs_batch.STOP_CALLBACK) == \
    (STOP_MAXITER, STOP_MAXFUN, STOP_CALLBACK)
_STATUS = np.zeros(max(RESULTS) + 1, dtype=np.intp)
for _code, (_status, _message) in RESULTS.items():
    _STATUS[_code] = _status


def lbfgs_batch(fun, X0, args, jac, bounds, tol, callback, options, stacklevel):
    """minimize_batch for method "lbfgs" (arguments checked as far as minimize_batch checks
    them for every method: ``fun`` callable, ``args`` a tuple, ``callback`` callable or
    None, ``options`` a dict); returns the OptimizeResult."""
    X = _starting_points(X0)
    m, n = X.shape
    options = dict(options)
    refused = sorted(k for k in options if k in NOT_LBFGS or k in SINGLE_ONLY)
    if refused:
        raise ValueError(f"options: {', '.join(map(str, refused))} do not apply to "
                         "minimize_batch(method='lbfgs') (L-BFGS takes maxiter, maxfun, gtol, "
                         "ftol, maxcor, maxls, n_threads, flush_subnormals, disp)")
    if tol is not None:
        options.setdefault("tol", tol)  # (as scipy.optimize.minimize passes it)
    loop = lbfgs_options(options, stacklevel + 1)
    n_threads = n_threads_option(options)

    fun, jac, mode, X, lower, upper = batch_evaluation(fun, jac, args, X, bounds)
    native = mode == EVAL_NATIVE
    if native and fun.is_block and callback is not None and m > np.iinfo(np.intc).max:
        raise ValueError(f"X0: a block LowLevelCallable takes m as a C int; {m} problems are "
                         "too many with a callback")

    limits = (loop["maxiter"], loop["maxfun"], loop["gtol"], loop["ftol"], loop["maxcor"],
              loop["maxls"])
    if native and callback is None:
        stops, nit, nfev, f, G = lbfgs_batch_native(X, fun, lower, upper, *limits, n_threads,
                                                    loop["flush"])
    else:
        args, per_problem = _batch_args(args, m) if not native else ((), ())
        stops, nit, nfev, f, G = lbfgs_batch_python(X, fun, jac, args, per_problem, mode,
                                                    lower, upper, *limits, callback,
                                                    loop["flush"])
    codes = np.asarray(stops)
    if codes.size and (codes.min() < 0 or codes.max() >= _STATUS.size):
        raise RuntimeError("fastopt: a problem of the batch ended without a stopping rule")
    status = _STATUS[codes]
    result = OptimizeResult(x=X, fun=f, jac=G, nit=nit, nfev=nfev, njev=nfev.copy(),
                            status=status, success=status == STATUS_CONVERGED,
                            message=_summary(status))
    if loop["disp"]:
        print_summary(result, "L-BFGS (fastopt)")
    return result
