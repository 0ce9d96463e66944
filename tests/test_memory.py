"""Resident memory stays flat over many small steps and many minimize calls; an interrupt
inside fun leaves nothing broken behind."""

import gc
import os
import resource
import sys

import numpy as np
import pytest

import fastopt

# /proc/self/statm is Linux's; AddressSanitizer holds freed memory in quarantine, so resident
# memory grows under it by design.
rss_test = pytest.mark.skipif(
    sys.platform != "linux" or "libasan" in os.environ.get("LD_PRELOAD", ""),
    reason="resident memory is read from Linux's /proc, and is meaningless under ASan")


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


@rss_test
def test_rss_flat_over_a_million_small_steps():
    params = [np.zeros(10), np.zeros(3, np.float32)]
    grads = [np.ones(10), np.ones(3, np.float32)]
    opt = fastopt.Adam(params)
    for _ in range(10_000):  # warm up allocator caches
        opt.step(grads)
    gc.collect()
    before = _rss_bytes()
    for _ in range(1_000_000):
        opt.step(grads)
    gc.collect()
    assert _rss_bytes() - before < 1_000_000


@rss_test
def test_rss_flat_over_ten_thousand_minimize_calls():
    def fg(x):
        return float(x @ x), 2 * x

    for _ in range(200):
        fastopt.minimize(fg, np.ones(5), jac=True, options={"maxiter": 5})
    gc.collect()
    before = _rss_bytes()
    for _ in range(10_000):
        fastopt.minimize(fg, np.ones(5), jac=True, options={"maxiter": 5})
    gc.collect()
    assert _rss_bytes() - before < 1_000_000


def test_keyboard_interrupt_in_fun_leaves_nothing_broken():
    calls = 0

    def fg(x):
        nonlocal calls
        calls += 1
        if calls == 7:
            raise KeyboardInterrupt
        return float(x @ x), 2 * x

    x0 = np.ones(4)
    with pytest.raises(KeyboardInterrupt):
        fastopt.minimize(fg, x0, jac=True, method="adam", options={"lr": 0.1})
    np.testing.assert_array_equal(x0, np.ones(4))
    again = fastopt.minimize(fg, x0, jac=True, method="adam", options={"lr": 0.1, "maxiter": 20})
    fresh = fastopt.minimize(lambda x: (float(x @ x), 2 * x), x0, jac=True, method="adam",
                             options={"lr": 0.1, "maxiter": 20})
    np.testing.assert_array_equal(again.x, fresh.x)
