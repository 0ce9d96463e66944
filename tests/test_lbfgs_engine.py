"""The engine's line search (src_c/fastopt_lbfgs.h) against SciPy's port of the same
MINPACK-2 dcsrch (scipy.optimize._dcsrch, which scipy.optimize.line_search runs): the same
trial steps, in order, on the test functions of Moré & Thuente 1994 and on Rosenbrock along
a line, from small and large first steps."""

import numpy as np
import pytest
from fastopt._lbfgs import _dcsrch_steps

DCSRCH = pytest.importorskip("scipy.optimize._dcsrch").DCSRCH


def _mt1(a, beta=2.0):  # Moré & Thuente's function 1: -a / (a^2 + beta)
    return -a / (a * a + beta), (a * a - beta) / (a * a + beta) ** 2


def _mt2(a, beta=0.004):  # function 2: (a + beta)^5 - 2 (a + beta)^4
    t = a + beta
    return t ** 5 - 2 * t ** 4, 5 * t ** 4 - 8 * t ** 3


def _mt3(a, beta=0.01, el=39):  # function 3: a wiggly 1 - a
    if a <= 1 - beta:
        phi0, dphi0 = 1 - a, -1.0
    elif a >= 1 + beta:
        phi0, dphi0 = a - 1, 1.0
    else:
        phi0, dphi0 = (a - 1) ** 2 / (2 * beta) + beta / 2, (a - 1) / beta
    w = el * np.pi / 2
    return (phi0 + 2 * (1 - beta) / (el * np.pi) * np.sin(w * a),
            dphi0 + (1 - beta) * np.cos(w * a))


def _rosen_line(a):  # Rosenbrock from (-1.2, 1) along its steepest descent
    x0 = np.array([-1.2, 1.0])
    g0 = np.array([-215.6, -88.0])
    x = x0 - a * g0 / np.linalg.norm(g0)
    u, v = x[1] - x[0] ** 2, 1 - x[0]
    g = np.array([-400 * x[0] * u - 2 * v, 200 * u])
    return 100 * u * u + v * v, float(g @ (-g0 / np.linalg.norm(g0)))


def _scipy_steps(phi, stp, ftol, gtol, xtol, stpmax):
    steps = []

    def f(a):
        steps.append(a)
        return phi(a)[0]

    search = DCSRCH(f, lambda a: phi(a)[1], ftol, gtol, xtol, 0.0, stpmax)
    f0, g0 = phi(0.0)
    search(stp, phi0=f0, derphi0=g0, maxiter=100)
    return steps


@pytest.mark.parametrize("phi", [_mt1, _mt2, _mt3, _rosen_line])
@pytest.mark.parametrize("stp", [1e-3, 1e-1, 10.0, 1e3])
@pytest.mark.parametrize("ftol, gtol", [(1e-3, 0.9), (1e-3, 0.1), (0.1, 0.1)])
def test_same_trial_steps_as_scipys_dcsrch(phi, stp, ftol, gtol):
    ours, task = _dcsrch_steps(phi, stp, ftol, gtol, 0.1, 1e10)
    theirs = _scipy_steps(phi, stp, ftol, gtol, 0.1, 1e10)
    assert task in ("CONV", "WARN")
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_stpmax_is_respected():
    steps, task = _dcsrch_steps(lambda a: (-a, -1.0), 0.5, 1e-3, 0.9, 0.1, 2.0)
    assert max(steps) == 2.0 and task == "WARN"  # stp = stpmax with decrease: accepted
