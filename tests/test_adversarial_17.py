"""Adversarial checks of method="lbfgs" (issue 17): corner cases that broke it once."""

import numpy as np

import fastopt


def _saddle(x):
    # Negative curvature along x[1]: a search along it runs to stpmax (a WARN) and its pair
    # has s'y < 0, so L-BFGS skips it.
    return 0.5 * (x[0] ** 2 - x[1] ** 2), np.array([x[0], -x[1]])


def test_skipped_pair_leaves_a_full_memory_intact():
    # Two pairs are stored, then every pair is skipped: with maxcor=2 the memory is full
    # when the first skip comes, with maxcor=10 it is not. A skipped pair must not touch
    # the memory, so both runs keep the same two pairs and are bitwise the same run (the
    # engine once wrote the skipped pair over the oldest one when the memory was full).
    runs = [fastopt.minimize(_saddle, np.array([5.0, 1e-3]), jac=True, method="lbfgs",
                             options={"maxcor": maxcor, "maxiter": 4, "return_all": True})
            for maxcor in (2, 10)]
    assert runs[0].nit == runs[1].nit == 4
    np.testing.assert_array_equal(np.array(runs[0].allvecs), np.array(runs[1].allvecs))
