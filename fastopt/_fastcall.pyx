"""The fast path of ``fastopt.minimize`` and of the ``scipy.optimize.minimize`` methods.

A call's fixed cost used to be about 20 us (``maxiter=1``, 2 variables): reading the options
through the generic checks, building the optimizer object (its constructor validates every
hyperparameter, makes a Layout, a Rule and the state dicts) and a few NumPy calls per buffer.
Users who call ``minimize`` in a loop (basin hopping, per-pixel fits) pay it every time. This
module runs the common call with the same checks for a few microseconds:

* ``method``: a method name, one of fastopt's method callables or an optimizer class, whose
  class makes its state the standard way (every method but Adafactor, whose state depends on
  the parameter's shape, and the schedule-free ones, whose result needs their object);
* ``fun``: a Python callable with ``jac`` True, a callable, None, False or a finite-difference
  scheme name; or a ``scipy.LowLevelCallable`` with ``jac`` None, True or False and no args;
* ``x0``: an ndarray (exactly), a list or a tuple, one-dimensional, of real numbers;
* ``options``: None or a dict (exactly) whose keys are ``maxiter``, ``gtol``, ``ftol``,
  ``xtol``, ``tol``, ``n_threads`` and the method's hyperparameters (not ``maximize``), with
  values that are Python ints, floats or bools (``numpy.float64`` too), or tuples of them for
  hyperparameters such as ``betas``;
* ``bounds``, ``callback``, ``hess`` and ``hessp`` None, ``constraints`` None or empty.

Anything else (the option ``flush_subnormals``, a call inside ``with
fastopt.flush_subnormals():``), and any value a check refuses, makes ``fast_minimize`` return None **before
anything is called or changed**: the general path (fastopt/_driver.py) then checks and runs
the call as always, raising its usual errors. What runs is the general path's: the same loop
(``fastopt._loop.run_loop``), the same rule (``cls._make_rule`` of the hyperparameters
``cls._check_hyperparameters`` returned: each set is validated once by the class's own checks
and cached), state arrays holding what ``Optimizer._init_state`` puts in them, and the same
``OptimizeResult``; tests/test_fastcall.py checks both paths give identical results.

Two things are skipped because they cannot change the result: the optimizer object itself
(the loop only reads its rule and state buffers), and resolving ``n_threads=None`` below the
kernels' parallel threshold (they run one thread there whatever the count).
"""

cimport numpy as cnp
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport INFINITY, isfinite, signbit
from libc.string cimport memset

from fastopt._kernels cimport MAX_STATE, parallel_threshold
from fastopt._fpenv cimport flush_context
from fastopt._loop cimport STOP_NONE, Problem, Tolerances, init_problem_at, run_loop
from fastopt._native cimport NativeObjective
from fastopt._step cimport Rule

import inspect

import numpy as np
from scipy import LowLevelCallable
from scipy.optimize import OptimizeResult

from fastopt._base import Optimizer
from fastopt._conventions import COUNT_MAX, iteration_limit
from fastopt._driver_common import (
    DEFAULT_GTOL,
    DEFAULT_MAXITER,
    INT_MAX,
    STATUS_MESSAGES,
    _hyperparameter_names,
    n_threads_option,
)
from fastopt._finite_diff import FD_METHODS, FiniteDifferenceGradient
from fastopt._loop import (
    EVAL_FINITE_DIFF,
    EVAL_FUN_AND_GRAD,
    EVAL_NATIVE,
    EVAL_SEPARATE,
    STATUS_CONVERGED,
    STOP_RESULTS,
)
from fastopt._methods import METHODS, is_lbfgs, method_name

try:  # scipy.optimize.minimize(jac=True) wraps fun in MemoizeJac (as in fastopt/_driver.py)
    from scipy.optimize._optimize import MemoizeJac
except ImportError:  # pragma: no cover - private scipy name
    MemoizeJac = None

cnp.import_array()

# The loop options the fast path reads; any other key that is no hyperparameter of the method
# goes the general way (it warns, or needs more than the loop: disp, bounds' options, ...).
_LOOP_KEYS = frozenset(("maxiter", "gtol", "ftol", "xtol", "tol", "n_threads"))

# The optimizer hooks that make the object, its rule and its state: a class that overrides
# one of them is not run here (its object may do something this module does not).
_HOOKS = ("__init__", "_check_hyperparameters", "_make_rule", "_state_names",
          "_param_state_names", "_state_shape", "_init_state", "_ensure_state",
          "_new_param_state", "_set_state", "_install_groups")

# Hyperparameter settings validated so far: (method record, the options' values as typed
# keys) -> _Setting. Cleared when full (a program sweeping learning rates makes new ones).
_SETTINGS = {}
_SETTINGS_MAX = 256
_EMPTY = {}

# The loop's stop code -> the result's (status, success, message), as the general path sets them.
_OUTCOMES = {stop: (status, status == STATUS_CONVERGED, STATUS_MESSAGES[status, reason])
             for stop, (status, reason) in STOP_RESULTS.items()}


cdef class _Setting:
    """What one set of hyperparameters makes: the rule, and each state slot's initial value
    (the slots in the kernel's order; unused ones are NULL in the loop)."""
    cdef Rule rule
    cdef int n_used
    cdef bint used[MAX_STATE]
    cdef double fill[MAX_STATE]


cdef class _Method:
    """A method as the fast path needs it, made once per method name or object."""
    cdef object cls
    cdef object slots  # the record's StateSlots, in the kernel's slot order
    cdef frozenset hyper_names  # the options that are hyperparameters (the constructor's)
    cdef dict defaults  # every hyperparameter's default, as the constructor passes them


cdef dict _METHODS = {}  # method name, or id of a method object -> (object, _Method or None)


cdef _Method _method(object method):
    """The _Method of ``method``, or None when it is not one the fast path runs (L-BFGS,
    which is no elementwise rule, among them: the general path runs its own loop)."""
    if type(method) is str:
        entry = _METHODS.get(method)
        if entry is not None:
            return entry[1]
        if is_lbfgs(method):
            return None
        try:
            name = method_name(method)
        except (TypeError, ValueError):
            return None
        record = _method_record(METHODS[name])
        _METHODS[method] = (method, record)  # (names only: a bounded set, in any case)
        return record
    if isinstance(method, str):  # a str subclass: kept by id below, a new one each call
        return None  # would grow _METHODS without bound; the general path reads it
    entry = _METHODS.get(id(method))
    if entry is not None and entry[0] is method:
        return entry[1]
    if is_lbfgs(method):
        return None
    try:
        name = method_name(method)  # fastopt's callables and classes; anything else raises
    except (TypeError, ValueError):
        return None
    record = _method_record(METHODS[name])
    _METHODS[id(method)] = (method, record)  # (kept alive here, so the id stays its own)
    return record


cdef _Method _method_record(object cls):
    if hasattr(cls, "eval") or not getattr(cls.__init__, "_record_init", False):
        return None
    if any(inspect.getattr_static(cls, hook) is not inspect.getattr_static(Optimizer, hook)
           for hook in _HOOKS[1:]):
        return None
    cdef _Method m = _Method()
    m.cls = cls
    m.slots = cls.record.state
    m.hyper_names = frozenset(_hyperparameter_names(cls)) - {"maximize"}
    m.defaults = dict(cls.record.defaults)
    return m


cdef _Setting _setting(_Method m, list given):
    """The _Setting of the method's defaults updated by ``given`` ((name, value) pairs, or
    None), from the cache or validated now; None when a value is not plain or is refused."""
    if given is None:
        key = (m,)
    else:
        key = [m]
        for name, value in given:
            typed = _typed(value)
            if typed is None:
                return None
            key.append((name, typed))
        key = tuple(key)
    cdef _Setting s = _SETTINGS.get(key)
    if s is not None:
        return s
    cls = m.cls
    try:
        hyper = cls._check_hyperparameters(**{**m.defaults, **dict(given or ())})
        rule = cls._make_rule(hyper)
    except Exception:
        return None  # the general path raises it, after the checks that come first
    s = _Setting()
    s.rule = rule
    s.n_used = 0
    names = cls._state_names(hyper)
    for k in range(MAX_STATE):
        s.used[k] = k < len(m.slots) and m.slots[k].name in names
        s.fill[k] = 0.0
        if s.used[k]:
            s.n_used += 1
            initial = m.slots[k].initial
            if initial is not None:
                if type(hyper[initial]) is not float:
                    return None  # (np.full of another type may round differently)
                s.fill[k] = hyper[initial]
    if len(_SETTINGS) >= _SETTINGS_MAX:
        _SETTINGS.clear()
    _SETTINGS[key] = s
    return s


cdef object _typed(object value):
    """A key for ``value`` that equal values of the same type share (0.0 and -0.0 do not), or
    None when it is not a plain number or a tuple of them."""
    t = type(value)
    if t is float or t is np.float64:
        return (t, value, signbit(<double>value))
    if t is int or t is bool:
        return (t, value)
    if t is tuple and len(<tuple>value) <= 8:
        items = tuple([_typed(v) for v in <tuple>value])
        return None if None in items else (t, items)
    return None


cdef bint _tolerance(object value, double* out):
    """fastopt._validation.check_real(name, value, "tolerance", low=0.0) for a plain number;
    False when it would refuse it, or value is of another type."""
    t = type(value)
    if t is float or t is np.float64:
        out[0] = <double>value
    elif t is int:
        try:
            out[0] = float(value)
        except OverflowError:
            return False
    else:
        return False
    return isfinite(out[0]) and out[0] >= 0.0


cdef cnp.ndarray _starting_point(object x0):
    """fastopt._driver_common.starting_point(x0) for a 1-D ndarray, list or tuple; None for
    anything else, or a point it would refuse."""
    cdef cnp.ndarray arr, out
    cdef Py_ssize_t i, n
    if type(x0) is np.ndarray:
        arr = <cnp.ndarray>x0
    elif type(x0) is list or type(x0) is tuple:
        try:
            arr = np.asarray(x0)
        except Exception:
            return None
    else:
        return None
    if cnp.PyArray_NDIM(arr) != 1 or cnp.PyArray_SIZE(arr) == 0:
        return None
    t = cnp.PyArray_TYPE(arr)
    if (t == cnp.NPY_DOUBLE or t == cnp.NPY_FLOAT) and cnp.PyArray_ISNOTSWAPPED(arr):
        out = cnp.PyArray_NewCopy(arr, cnp.NPY_CORDER)
    elif arr.dtype.kind in "fiub":
        out = np.array(arr, dtype=np.float32 if arr.dtype == np.float32 else np.float64,
                       order="C", copy=True)
    else:
        return None
    n = cnp.PyArray_SIZE(out)
    if cnp.PyArray_TYPE(out) == cnp.NPY_DOUBLE:
        for i in range(n):
            if not isfinite((<double*>cnp.PyArray_DATA(out))[i]):
                return None
    else:
        for i in range(n):
            if not isfinite((<float*>cnp.PyArray_DATA(out))[i]):
                return None
    return out


def fast_minimize(method, fun, x0, args, jac, bounds, tol, callback, options, hess=None,
                  hessp=None, constraints=()):
    """``minimize(fun, x0, args, method, jac, bounds, tol, callback, options)`` (and the
    shared body of the scipy methods, with ``hess``, ``hessp`` and ``constraints``) for the
    common call the module docstring lists; None for any other call, before anything was
    called or changed."""
    cdef _Method m
    cdef _Setting s
    cdef Tolerances tols
    cdef double gtol = DEFAULT_GTOL, default_gtol = DEFAULT_GTOL
    cdef bint has_gtol = False
    cdef int mode, n_threads
    cdef NativeObjective native = None
    cdef cnp.ndarray x

    # -- what the call is: the fast path's, or None for the general path -----------------------
    if bounds is not None or callback is not None or hess is not None or hessp is not None:
        return None
    if not (constraints is None or (type(constraints) in (tuple, list) and not constraints)):
        return None
    if flush_context():  # inside ``with fastopt.flush_subnormals():``
        return None
    m = _method(method)
    if m is None:
        return None
    if options is None:
        options = _EMPTY
    elif type(options) is not dict:
        return None

    tols.maxiter, tols.ftol, tols.xtol = DEFAULT_MAXITER, 0.0, 0.0
    threads_option = None
    given = None
    for key, value in (<dict>options).items():
        if type(key) is not str:
            return None
        if key in m.hyper_names:
            if given is None:
                given = []
            given.append((key, value))
        elif key not in _LOOP_KEYS:
            return None
        elif key == "maxiter":
            if type(value) is int and 0 <= value <= COUNT_MAX:
                tols.maxiter = value
            elif type(value) is float or type(value) is np.float64:
                try:
                    tols.maxiter = iteration_limit("maxiter", value)
                except ValueError:
                    return None
            else:
                return None
        elif key == "gtol":
            if not _tolerance(value, &gtol):
                return None
            has_gtol = True
        elif key == "ftol":
            if not _tolerance(value, &tols.ftol):
                return None
        elif key == "xtol":
            if not _tolerance(value, &tols.xtol):
                return None
        elif key == "tol":
            tol = value  # (the option wins over the argument, as in the general path)
        elif type(value) is int or type(value) is np.int64:  # (key == "n_threads")
            threads_option = value
        else:
            return None
    if tol is not None and not _tolerance(tol, &default_gtol):
        return None
    tols.gtol = gtol if has_gtol else default_gtol
    s = _setting(m, given)
    if s is None:
        return None

    x = _starting_point(x0)
    if x is None:
        return None
    args = args if isinstance(args, tuple) else (args,)
    if (MemoizeJac is not None and isinstance(fun, MemoizeJac)
            and getattr(jac, "__self__", None) is fun):
        fun, jac = fun.fun, True
    if isinstance(fun, LowLevelCallable):
        if not (jac is None or type(jac) is bool) or args or cnp.PyArray_SIZE(x) > INT_MAX:
            return None
        try:
            native = NativeObjective(fun)
        except Exception:
            return None
        if native.block:  # minimize_batch's kind: the general path refuses it
            return None
        if native.single != (cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT):
            x = x.astype(np.float32 if native.single else np.float64)
        fun, jac, mode = native, None, EVAL_NATIVE
    elif callable(fun):
        if jac is True:
            jac, mode = None, EVAL_FUN_AND_GRAD
        elif jac is None or jac is False or (type(jac) is str and jac in FD_METHODS):
            jac = FiniteDifferenceGradient(fun, args, "2-point" if jac is None or jac is False
                                           else jac, None, None, None)
            mode = EVAL_FINITE_DIFF
        elif callable(jac):
            mode = EVAL_SEPARATE
        else:
            return None
    else:
        return None
    if threads_option is not None:
        try:
            n_threads = n_threads_option(options)  # (the drivers' shared reading)
        except (TypeError, ValueError):
            return None
    elif cnp.PyArray_SIZE(x) >= parallel_threshold():
        n_threads = n_threads_option(options)
    else:
        n_threads = 1  # the kernels run one thread below the threshold, whatever the count

    # -- the run: from here on, errors are the objective's, raised as the general path does ----
    return _run(m, s, x, fun, jac, args, mode, native, &tols, n_threads)


cdef object _run(_Method m, _Setting s, cnp.ndarray x, object fun, object jac, tuple args,
                 int mode, NativeObjective native, const Tolerances* tols, int n_threads):
    """Run the loop on x from the state ``s`` sets up; the OptimizeResult."""
    cdef Problem p
    cdef int k, stop = STOP_NONE
    cdef Py_ssize_t i, n = cnp.PyArray_SIZE(x)
    cdef bint single = cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT
    cdef size_t itemsize = sizeof(float) if single else sizeof(double)
    cdef void* state[MAX_STATE]
    cdef cnp.ndarray gbuf
    # x_prev, g_prev and the state arrays, which nobody but the loop sees, in one block
    cdef char* block = <char*>PyMem_Malloc((2 + s.n_used) * n * itemsize)
    cdef char* at
    if block == NULL:
        raise MemoryError()
    try:
        at = block + 2 * n * itemsize
        for k in range(MAX_STATE):
            state[k] = NULL
            if s.used[k]:
                state[k] = at
                at += n * itemsize
                if s.fill[k] == 0.0 and not signbit(s.fill[k]):  # np.zeros' +0.0
                    memset(state[k], 0, n * itemsize)
                elif single:
                    for i in range(n):
                        (<float*>state[k])[i] = <float>s.fill[k]
                else:
                    for i in range(n):
                        (<double*>state[k])[i] = s.fill[k]
        gbuf = cnp.PyArray_EMPTY(1, cnp.PyArray_DIMS(x), cnp.PyArray_TYPE(x), 0)
        init_problem_at(&p, cnp.PyArray_DATA(x), block, cnp.PyArray_DATA(gbuf),
                        block + n * itemsize, state, NULL, NULL, n, single, s.rule, tols)
        g = run_loop(&p, tols, mode, fun, jac, args, native, x, gbuf, None, False, None,
                     n_threads, None, False, &stop)
    finally:
        PyMem_Free(block)
    status, success, message = _OUTCOMES[stop]
    nfev = p.nfev + (jac.nfev if mode == EVAL_FINITE_DIFF else 0)
    return OptimizeResult(x=x, fun=p.f, jac=g, nit=p.nit, nfev=nfev, njev=p.nfev,
                          status=status, success=success, message=message)
