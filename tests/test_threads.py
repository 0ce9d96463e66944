"""Python threads: independent optimizers step concurrently (the kernels release the GIL) and
give what a serial run gives; one optimizer refuses to be stepped from two threads at once."""

import threading

import numpy as np
import pytest

import fastopt
from _registry import OPTIMIZERS


def _run(opt, grads):
    for g in grads:
        opt.step(g)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in OPTIMIZERS])
def test_eight_threads_eight_optimizers_match_a_serial_run(case, rng):
    size = 50_000  # above the size where the GIL is released
    starts = [rng.standard_normal(size) for _ in range(8)]
    grads = [[rng.standard_normal(size) for _ in range(5)] for _ in range(8)]
    serial = [s.copy() for s in starts]
    for p, g in zip(serial, grads):
        _run(case.cls(p, lr=0.01), g)
    concurrent = [s.copy() for s in starts]
    threads = [threading.Thread(target=_run, args=(case.cls(p, lr=0.01), g))
               for p, g in zip(concurrent, grads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(concurrent, serial):
        np.testing.assert_array_equal(a, b)


def test_stepping_one_optimizer_from_two_threads_raises_and_changes_nothing():
    # Two threads hammer one optimizer on a large array (the GIL is released in the kernel):
    # every step either completes or raises RuntimeError, and the step count says how many
    # completed.
    params = np.ones(2_000_000)
    grad = np.full(2_000_000, 1e-3)
    opt = fastopt.SGD(params, lr=1.0)
    outcomes = []

    def hammer():
        for _ in range(20):
            try:
                opt.step(grad)
                outcomes.append("ok")
            except RuntimeError as exc:
                assert "already running in another thread" in str(exc)
                outcomes.append("refused")

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = outcomes.count("ok")
    assert opt.step_count == done and len(outcomes) == 40
    np.testing.assert_allclose(params, 1.0 - done * 1e-3)  # no step lost or doubled
