"""End-to-end minimize: time per run, iterations and evaluations, and peak memory.

    cd asv_benchmarks && asv continuous -b Minimize main HEAD
"""

import numpy as np
from scipy.optimize import rosen, rosen_der

import fastopt

from .common import Benchmark


def _rosen_fg(x):
    a, b = x[:-1], x[1:]
    f = float(np.sum(100.0 * (b - a * a) ** 2 + (1 - a) ** 2))
    g = np.zeros_like(x)
    g[:-1] = -400.0 * a * (b - a * a) - 2 * (1 - a)
    g[1:] += 200.0 * (b - a * a)
    return f, g


class MinimizeRosen(Benchmark):
    """fastopt.minimize on n-D Rosenbrock, 1000 iterations."""

    params = [["adam", "nag", "rmsprop"], [2, 100]]
    param_names = ["method", "n"]

    def setup(self, method, n):
        self.x0 = np.full(n, 0.5)
        self.options = {"lr": 1e-4, "maxiter": 1000, "gtol": 0}

    def time_minimize(self, method, n):
        fastopt.minimize(_rosen_fg, self.x0, method=method, jac=True, options=self.options)

    def track_nfev(self, method, n):
        return fastopt.minimize(_rosen_fg, self.x0, method=method, jac=True,
                                options=self.options).nfev

    def peakmem_minimize(self, method, n):
        fastopt.minimize(_rosen_fg, self.x0, method=method, jac=True, options=self.options)


class MinimizeOverhead(Benchmark):
    """The loop's own cost: an objective returning a precomputed (f, g), 10^4 iterations."""

    params = [[2, 100]]
    param_names = ["n"]

    def setup(self, n):
        g = np.ones(n)
        self.fg = lambda x: (1.0, g)
        self.x0 = np.zeros(n)

    def time_loop(self, n):
        fastopt.minimize(self.fg, self.x0, method="adam", jac=True,
                         options={"lr": 0.0, "maxiter": 10000, "gtol": 0})


class MinimizeCall(Benchmark):
    """The fixed cost of a call: maxiter=1 on 2 variables (two evaluations, one update), with
    a Python fun (jac=True), a C objective, through scipy.optimize.minimize, and SciPy's
    L-BFGS-B on the same call (python -m fastopt bench-loops prints the same rows)."""

    params = [["python", "lowlevel", "scipy-method", "scipy-lbfgsb"]]
    param_names = ["variant"]

    def setup(self, variant):
        from scipy.optimize import minimize

        x0, options = np.array([-1.2, 1.0]), {"maxiter": 1}
        llc = fastopt.problems.rosenbrock_lowlevel()
        self.call = {
            "python": lambda: fastopt.minimize(_rosen_fg, x0, jac=True, options=options),
            "lowlevel": lambda: fastopt.minimize(llc, x0, options=options),
            "scipy-method": lambda: minimize(_rosen_fg, x0, method=fastopt.adam, jac=True,
                                             options=options),
            "scipy-lbfgsb": lambda: minimize(_rosen_fg, x0, method="L-BFGS-B", jac=True,
                                             options=options),
        }[variant]

    def time_call(self, variant):
        self.call()


class ScipyLbfgsb(Benchmark):
    """Reference: L-BFGS-B on the same problem (its own iteration count)."""

    params = [[2, 100]]
    param_names = ["n"]

    def time_minimize(self, n):
        from scipy.optimize import minimize

        minimize(rosen, np.full(n, 0.5), jac=rosen_der, method="L-BFGS-B")
