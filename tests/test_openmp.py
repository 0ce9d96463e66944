"""Thread-count resolution (scikit-learn's n_threads semantics) and the OpenMP status."""

import os

import numpy as np
import pytest

from fastopt import Adam
from fastopt._openmp import effective_n_threads, openmp_enabled, usable_cpu_count


def test_n_threads_semantics():
    cpus = usable_cpu_count()
    if not openmp_enabled():
        assert effective_n_threads(None) == effective_n_threads(4) == 1
        return
    assert 1 <= effective_n_threads(None) <= cpus
    assert effective_n_threads(3) == 3
    assert effective_n_threads(-1) == cpus
    assert effective_n_threads(-2) == max(1, cpus - 1)
    assert effective_n_threads(-1000) == 1
    assert effective_n_threads(np.int64(2)) == 2


@pytest.mark.parametrize("bad, error", [(0, ValueError), (1.0, TypeError), ("2", TypeError),
                                        (True, TypeError)])
def test_bad_n_threads(bad, error):
    with pytest.raises(error, match="n_threads"):
        effective_n_threads(bad)
    with pytest.raises(error, match="n_threads"):
        Adam(np.zeros(2), n_threads=bad)


def test_optimizer_reports_its_thread_count():
    assert Adam(np.zeros(2), n_threads=1).n_threads == 1
    assert Adam(np.zeros(2), n_threads=-1).n_threads == (usable_cpu_count() if openmp_enabled()
                                                          else 1)


def test_threadpoolctl_sees_and_limits_fastopts_openmp_pool():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not openmp_enabled():
        pytest.skip("built without OpenMP")
    Adam(np.zeros(2**16)).step(np.ones(2**16))  # make sure the runtime is loaded
    apis = {info["internal_api"] for info in threadpoolctl.threadpool_info()}
    assert "openmp" in apis
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert Adam(np.zeros(2)).n_threads == 1


def _step_in_child(queue):
    x = np.zeros(2**17)
    Adam(x).step(np.ones(2**17))
    many = [np.zeros(1000) for _ in range(100)]
    Adam(many).step([np.ones(1000)] * 100)
    queue.put((x[:16].copy(), float(x.sum()), float(sum(m.sum() for m in many))))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_steps_without_hanging():
    import multiprocessing

    parent = np.zeros(2**17)
    Adam(parent, n_threads=2).step(np.ones(2**17))  # the OpenMP threads now exist
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_step_in_child, args=(queue,))
    child.start()
    try:
        head, total, many_total = queue.get(timeout=60)  # before join: the queue must drain
    except Exception:
        child.kill()
        pytest.fail("the forked child hung")
    child.join(60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(head, parent[:16])
    assert total == parent.sum()
    assert many_total == pytest.approx(100 * parent[:1000].sum(), rel=1e-12)
