"""Finite-difference gradients for ``minimize`` when no ``jac`` is given.

Steps follow SciPy's ``approx_derivative``: a relative step ``h = r * sign(x) * max(1, |x|)``
with ``r = eps**(1/2)`` (2-point, complex step) or ``eps**(1/3)`` (3-point), ``eps`` of x's
dtype, and ``h`` rounded so that ``x + h`` is exact. Within bounds, a step that would leave the
box is taken on the other side (2-point) or replaced by a one-sided 3-point formula, so ``fun``
is never evaluated outside the box.
"""

import numpy as np

FD_METHODS = ("2-point", "3-point", "cs")


def check_fd_method(method):
    if method not in FD_METHODS:
        raise ValueError(
            f"finite_diff_method must be one of {', '.join(map(repr, FD_METHODS))}, "
            f"got {method!r}"
        )
    return method


class FiniteDifferenceGradient:
    """``grad(x, f0)``: the gradient of ``fun(x, *args)`` by finite differences.

    Parameters
    ----------
    fun : callable
        The objective.
    args : tuple
        Extra arguments of ``fun``.
    method : {"2-point", "3-point", "cs"}
        Forward (or backward) differences, central differences, or the complex step
        (``fun`` must then accept complex input and be analytic).
    rel_step : float or None
        Relative step; None picks the default of ``method``.
    lower, upper : ndarray or None
        Bounds in x's dtype, or None.

    Attributes
    ----------
    nfev : int
        Number of calls of ``fun`` made so far.
    """

    def __init__(self, fun, args, method, rel_step, lower, upper):
        self.fun = fun
        self.args = args
        self.method = check_fd_method(method)
        self.rel_step = rel_step
        self.lower, self.upper = lower, upper
        self.nfev = 0

    def _call(self, x):
        self.nfev += 1
        value = np.asarray(self.fun(x, *self.args))
        if value.size != 1:
            raise ValueError(f"fun must return a scalar, got an array of shape {value.shape}")
        return value.reshape(-1)[0]

    def _steps(self, x):
        eps = np.finfo(x.dtype).eps
        rel = self.rel_step
        if rel is None:
            rel = eps ** (1 / 3) if self.method == "3-point" else eps**0.5
        sign = np.where(x >= 0, 1.0, -1.0).astype(x.dtype)
        h = (rel * sign * np.maximum(1.0, np.abs(x))).astype(x.dtype)
        return (x + h) - x  # exactly representable steps

    def __call__(self, x, f0):
        x = np.array(x, copy=True)
        if self.method == "cs":
            return self._complex_step(x)
        h = self._steps(x)
        g = np.empty(x.size)
        lo, hi = self.lower, self.upper
        point = x.copy()
        def inside(i, value):
            return lo is None or lo[i] <= value <= hi[i]

        for i in range(x.size):
            xi, hi_ = x[i], h[i]
            if not inside(i, xi + hi_):
                hi_ = -hi_  # the other side is inside the box
            if self.method == "2-point":
                point[i] = xi + hi_
                g[i] = (self._call(point) - f0) / (point[i] - xi)
            elif inside(i, xi - hi_):
                point[i] = xi + hi_
                f_plus = self._call(point)
                point[i] = xi - hi_
                f_minus = self._call(point)
                g[i] = (f_plus - f_minus) / (2 * hi_)
            else:  # one-sided 3-point formula, into the box
                point[i] = xi + hi_
                f1 = self._call(point)
                point[i] = xi + 2 * hi_
                f2 = self._call(point)
                g[i] = (-3 * f0 + 4 * f1 - f2) / (2 * hi_)
            point[i] = xi
        return g

    def _complex_step(self, x):
        h = self._steps(x)
        point = x.astype(np.result_type(x.dtype, np.complex64))
        g = np.empty(x.size)
        for i in range(x.size):
            point[i] = x[i] + 1j * h[i]
            g[i] = np.imag(self._call(point)) / h[i]
            point[i] = x[i]
        return g
