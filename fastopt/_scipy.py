"""The optimizers as ``scipy.optimize.minimize`` methods: ``minimize(..., method=fastopt.adam)``.

SciPy calls a custom method raw, as ``method(fun, x0, args=, jac=, hess=, hessp=, bounds=,
constraints=, callback=, **options)`` with ``tol`` inside ``options``, the callback unwrapped,
bounds as the user gave them, and ``jac=True`` turned into ``jac=fun.derivative``
(scipy/optimize/_minimize.py, "Custom minimizers"). Each callable here hands all of it to
fastopt's one minimize loop (fastopt/_driver.py), which does what SciPy's own methods do.
Each callable is registered (fastopt/_methods.py), so ``fastopt.minimize``,
``minimize_batch`` and ``minimize_minibatch`` take it as ``method`` as well as its name.
"""

from fastopt._driver import minimize_with_method
from fastopt._methods import LBFGS, register_callable, register_lbfgs
from fastopt._registry import BY_METHOD

_DOC = """Minimize ``fun`` with fastopt's {title}; a ``scipy.optimize.minimize`` method.

    Use as ``scipy.optimize.minimize(fun, x0, method=fastopt.{name}, jac=..., options={{...}})``.
    Equivalent to ``fastopt.minimize(fun, x0, method="{name}", ...)`` (or
    ``method=fastopt.{name}``, which ``minimize_batch`` and ``minimize_minibatch`` take too):
    see it for the arguments, the options (the hyperparameters of :class:`fastopt.{cls}`, plus ``maxiter``,
    ``gtol``, ``ftol``, ``xtol``, ``disp``, ``return_all``, ``finite_diff_method``,
    ``finite_diff_rel_step``, ``n_threads``), the status codes and the result.
    ``hess`` and ``hessp`` are ignored with a warning; constraints raise ``ValueError``.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> from scipy.optimize import minimize
    >>> res = minimize(lambda x: np.sum((x - 3.0) ** 2), np.zeros(3), method=fastopt.{name},
    ...                jac=lambda x: 2 * (x - 3.0), options={{{options}"maxiter": 5000}})
    >>> res.success, np.round(res.x, 3)
    (True, array([3., 3., 3.]))
    """


def _example_options(record):
    """The docstring example's options as Python source: ``"lr": 0.1, ...`` (the record's
    options that solve it well within maxiter)."""
    return "".join(f"{name!r}: {value!r}, ".replace("'", '"')
                   for name, value in record.options["example"].items())


def _make_method(name):
    def method(fun, x0, args=(), jac=None, hess=None, hessp=None, bounds=None, constraints=(),
               callback=None, **options):
        return minimize_with_method(name, fun, x0, args=args, jac=jac, hess=hess,
                                    hessp=hessp, bounds=bounds, constraints=constraints,
                                    callback=callback, options=options)

    record = BY_METHOD[name]
    cls = record.cls.__name__
    method.__name__ = method.__qualname__ = name
    method.__module__ = "fastopt"
    method.__doc__ = _DOC.format(title=record.title or cls, name=name, cls=cls,
                                 options=_example_options(record))
    register_callable(name, method)
    return method


# fastopt.sgd, fastopt.gd, fastopt.adam, ...: one per method name.
METHOD_CALLABLES = {name: _make_method(name) for name in BY_METHOD}
globals().update(METHOD_CALLABLES)


def lbfgs(fun, x0, args=(), jac=None, hess=None, hessp=None, bounds=None, constraints=(),
          callback=None, **options):
    """Minimize ``fun`` with fastopt's L-BFGS; a ``scipy.optimize.minimize`` method.

    Use as ``scipy.optimize.minimize(fun, x0, method=fastopt.lbfgs, jac=..., bounds=...,
    options={...})``. Equivalent to ``fastopt.minimize(fun, x0, method="lbfgs", ...)``: see
    it for the arguments, the options (SciPy L-BFGS-B's ``maxiter``, ``maxfun``, ``gtol``,
    ``ftol``, ``maxcor``, ``maxls`` with its defaults, plus ``disp``, ``return_all``,
    ``finite_diff_method``, ``finite_diff_rel_step``, ``flush_subnormals``), the status
    codes and the result. ``hess`` and ``hessp`` are ignored with a warning; constraints
    raise ``ValueError``.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> from scipy.optimize import minimize, rosen, rosen_der
    >>> res = minimize(rosen, [-1.2, 1.0], method=fastopt.lbfgs, jac=rosen_der)
    >>> res.success, res.nit, np.round(res.x, 4)
    (True, 36, array([1., 1.]))
    """
    return minimize_with_method(LBFGS, fun, x0, args=args, jac=jac, hess=hess, hessp=hessp,
                                bounds=bounds, constraints=constraints, callback=callback,
                                options=options)


lbfgs.__module__ = "fastopt"
register_lbfgs(lbfgs)
