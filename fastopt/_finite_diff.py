"""Finite-difference gradients for ``minimize`` when no ``jac`` is given.

Steps and schemes follow SciPy's ``approx_derivative`` (scipy/optimize/_numdiff.py):

* the step: ``h = r * sign(x) * max(1, |x|)`` with ``r = eps**(1/2)`` (2-point, complex step)
  or ``eps**(1/3)`` (3-point), ``eps`` of x's dtype; with ``rel_step`` given,
  ``h = rel_step * sign(x) * |x|``, and the default where that step vanishes (``x + h == x``)
  or is not finite;
* within bounds, ``_adjust_scheme_to_bounds``: a 2-point step that would leave the box is
  taken on the other side, or, where the box is narrower than the step on both sides, shrunk
  to the larger side's distance; a central 3-point difference that does not fit becomes a
  one-sided 3-point formula into the box, with ``x + 2h`` inside, or a central one with a step
  that fits.

Then, unlike SciPy (whose ``minimize`` removes fixed variables before differentiating):
every point is clipped into the box after rounding, so ``fun`` is **never evaluated outside
[lower, upper]**; a variable with no room (``lower == upper``, or a box so narrow that no point
besides x fits) gets derivative 0 with no call of ``fun`` (the projected gradient ignores it
anyway); differences divide by the distance between the points actually evaluated. ``fun``
gets a read-only array, as in the minimize loop.
"""

import numpy as np

FD_METHODS = ("2-point", "3-point", "cs")


def check_fd_method(method):
    if not isinstance(method, str) or method not in FD_METHODS:
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
        Forward (or backward) differences, central (or one-sided 3-point) differences, or the
        complex step (``fun`` must then accept complex input and be analytic).
    rel_step : float or None
        Relative step; None picks the default of ``method``.
    lower, upper : ndarray or None
        Bounds in x's dtype, or None; ``fun`` is only evaluated inside them.

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
        bounded = lower is not None and not (np.all(np.isneginf(lower))
                                             and np.all(np.isposinf(upper)))
        self.lower, self.upper = (lower, upper) if bounded else (None, None)
        self.nfev = 0

    def _call(self, point):
        self.nfev += 1
        value = np.asarray(self.fun(point, *self.args))
        if value.size != 1:
            raise ValueError(f"fun must return a scalar, got an array of shape {value.shape}")
        return value.reshape(-1)[0]

    def _steps(self, x):
        """SciPy's ``_compute_absolute_step``, in float64 (signed, not yet fitted to bounds)."""
        eps = float(np.finfo(x.dtype).eps)
        r = eps ** (1 / 3) if self.method == "3-point" else eps**0.5
        x64 = x.astype(np.float64)
        sign = np.where(x64 >= 0, 1.0, -1.0)
        default = r * sign * np.maximum(1.0, np.abs(x64))
        if self.rel_step is None:
            return default
        with np.errstate(over="ignore", invalid="ignore"):
            h = self.rel_step * sign * np.abs(x64)
            vanishes = ((x + h.astype(x.dtype)) == x) | ~np.isfinite(h.astype(x.dtype))
        return np.where(vanishes, default, h)

    def _fit_to_bounds(self, x, h):
        """(h, one_sided): SciPy's ``_adjust_scheme_to_bounds`` for this method (num_steps
        1), in float64; h is 0 where a variable has no room."""
        lower_dist = x.astype(np.float64) - self.lower
        upper_dist = self.upper.astype(np.float64) - x
        if self.method == "2-point":
            with np.errstate(invalid="ignore"):
                violated = ((x + h) < self.lower) | ((x + h) > self.upper)
            fitting = np.abs(h) <= np.maximum(lower_dist, upper_dist)
            h = np.where(violated & fitting, -h, h)
            forward = (upper_dist >= lower_dist) & ~fitting
            backward = (upper_dist < lower_dist) & ~fitting
            h = np.where(forward, upper_dist, np.where(backward, -lower_dist, h))
            return h, np.ones(x.size, dtype=bool)
        h = np.abs(h)
        central = (lower_dist >= h) & (upper_dist >= h)
        forward = (upper_dist >= lower_dist) & ~central
        backward = (upper_dist < lower_dist) & ~central
        h = np.where(forward, np.minimum(h, 0.5 * upper_dist),
                     np.where(backward, -np.minimum(h, 0.5 * lower_dist), h))
        min_dist = np.minimum(upper_dist, lower_dist)
        adjusted_central = ~central & (np.abs(h) <= min_dist)
        h = np.where(adjusted_central, min_dist, h)
        return h, ~central & ~adjusted_central

    def _points(self, x, offsets):
        """x + offsets in x's dtype, clipped into the box (rounding must not leave it)."""
        with np.errstate(over="ignore", invalid="ignore"):
            points = (x + offsets).astype(x.dtype)
        if self.lower is not None:
            np.clip(points, self.lower, self.upper, out=points)
        return points

    def __call__(self, x, f0):
        x = np.array(x, copy=True)
        fixed = (np.zeros(x.size, dtype=bool) if self.lower is None
                 else self.lower == self.upper)
        if self.method == "cs":
            return self._complex_step(x, fixed)
        h = self._steps(x)
        if self.lower is not None:
            h, one_sided = self._fit_to_bounds(x, h)
        else:
            one_sided = np.full(x.size, self.method == "2-point")
        # Every point up front: x + h, and x + 2h (one-sided 3-point) or x - h (central);
        # differences are taken on them as evaluated, in float64.
        first = self._points(x, h)
        second = self._points(x, np.where(one_sided, 2 * h, -h))
        x64 = x.astype(np.float64)
        a, b = first - x64, second - x64
        g = np.zeros(x.size)
        point = x.copy()
        view = point.view()
        view.flags.writeable = False  # fun sees a read-only array, as in the minimize loop
        for i in np.flatnonzero(~fixed & (a != 0)).tolist():  # others: no room, derivative 0
            point[i] = first[i]
            f1 = self._call(view)
            if self.method == "2-point":
                g[i] = (f1 - f0) / a[i]
            elif b[i] == 0 or b[i] == a[i]:  # no second point fits: 2-point difference
                g[i] = (f1 - f0) / a[i]
            else:
                point[i] = second[i]
                f2 = self._call(view)
                if one_sided[i]:  # 3-point formula on x, x + a, x + b (b = 2a before rounding)
                    g[i] = (-(a[i] + b[i]) / (a[i] * b[i]) * f0
                            + b[i] / (a[i] * (b[i] - a[i])) * f1
                            - a[i] / (b[i] * (b[i] - a[i])) * f2)
                else:
                    g[i] = (f1 - f2) / (a[i] - b[i])
            point[i] = x[i]
        return g

    def _complex_step(self, x, fixed):
        h = self._steps(x)
        point = x.astype(np.result_type(x.dtype, np.complex64))
        view = point.view()
        view.flags.writeable = False
        g = np.zeros(x.size)
        for i in range(x.size):
            if fixed[i]:
                continue
            point[i] = x[i] + 1j * h[i]
            g[i] = np.imag(self._call(view)) / np.imag(point[i])
            point[i] = x[i]
        return g
