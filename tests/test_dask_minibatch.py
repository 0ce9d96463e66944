"""fastopt.minimize_minibatch on dask arrays: the blocks streamed through one optimizer give
the in-memory run's result under the block rule (fastopt/_minibatch_blocks.py), bit for bit,
with a bounded number of blocks held; errors reach the caller."""

import subprocess
import sys
import threading
import time
import weakref

import numpy as np
import pytest

import fastopt

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

N, D = 203, 4


@pytest.fixture
def regression():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((N, D))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * rng.standard_normal(N)
    return X, y


def squared_loss(w, X, y):
    r = X @ w - y
    return 0.5 * np.mean(r**2), X.T @ r / len(y)


def _run(data, **kw):
    """minimize_minibatch with a recording callback: (result, the callback's records)."""
    log = []
    kw.setdefault("x0", np.zeros(D, np.asarray(data[0][:1]).dtype))
    res = fastopt.minimize_minibatch(
        squared_loss, data=data,
        callback=lambda intermediate_result: log.append(dict(intermediate_result)), **kw)
    return res, log


def _assert_identical(res, ref, log=None, log_ref=None):
    assert res.x.dtype == ref.x.dtype and res.x.tobytes() == ref.x.tobytes()
    assert res.history == ref.history and res.fun == ref.fun or \
        (np.isnan(res.fun) and np.isnan(ref.fun))
    assert (res.jac is None) == (ref.jac is None)
    if res.jac is not None:
        assert res.jac.tobytes() == ref.jac.tobytes()
    for key in ("nit", "nepoch", "nfev", "status", "success", "message"):
        assert res[key] == ref[key], key
    if log is not None:
        assert len(log) == len(log_ref)
        for a, b in zip(log, log_ref):
            assert a.keys() == b.keys()
            for key in a:
                assert np.asarray(a[key]).tobytes() == np.asarray(b[key]).tobytes(), key


def _reference_order(sizes, seed, epochs):
    """The block rule written out: each epoch's order of the samples."""
    rng = np.random.default_rng(seed)
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    orders = []
    for _ in range(epochs):
        visits = rng.permutation(len(sizes)) if len(sizes) > 1 else [0]
        orders.append(np.concatenate([offsets[k] + rng.permutation(sizes[k])
                                      for k in visits]))
    return orders


def test_import_fastopt_does_not_import_dask():
    code = "import sys, fastopt; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("sizes", [(N,), (50, 50, 50, 53), (100, 0, 40, 63),
                                   (7,) * 29])
@pytest.mark.parametrize("batch_size", [1, 16, 60])
def test_batches_follow_the_block_rule(sizes, batch_size):
    # The samples' indices as data: fun sees which rows each batch holds, in which order.
    idx = np.arange(N)
    seen = {"numpy": [], "dask": []}

    def recorder(key):
        def fun(w, rows):
            seen[key].append(np.array(rows))
            return 0.0, np.zeros_like(w)
        return fun

    kw = dict(batch_size=batch_size, epochs=3, seed=7, options={"lr": 0.1})
    fastopt.minimize_minibatch(recorder("numpy"), np.zeros(1), idx, blocks=sizes, **kw)
    fastopt.minimize_minibatch(recorder("dask"), np.zeros(1),
                               da.from_array(idx, chunks=(sizes,)), **kw)
    expected = [order[start:start + batch_size] for order in _reference_order(sizes, 7, 3)
                for start in range(0, N, batch_size)]
    for key, batches in seen.items():
        assert len(batches) == len(expected), key
        for got, want in zip(batches, expected):
            np.testing.assert_array_equal(got, want)


def test_one_block_is_the_order_before_blocks(regression):
    # The default (one block) is one rng.permutation(n_samples) per epoch: the seeds of the
    # releases before blocks give the same results.
    X, y = regression
    kw = dict(batch_size=16, epochs=3, seed=3, options={"lr": 0.05})
    res, _ = _run((X, y), **kw)
    ref, _ = _run((X, y), blocks=N, **kw)
    _assert_identical(res, ref)
    rng = np.random.default_rng(3)
    w = np.zeros(D)
    for _ in range(3):
        order = rng.permutation(N)
        for start in range(0, N, 16):
            rows = order[start:start + 16]
            w -= 0.05 * squared_loss(w, X[rows], y[rows])[1]
    np.testing.assert_allclose(res.x, w, rtol=1e-12)


CHUNKS = {"uniform": 50, "uneven with an empty chunk": (100, 0, 40, 63),
          "blocks smaller than a batch": 7, "one chunk": N}
OPTIONS = {
    "plain": {"lr": 0.05},
    "gtol": {"lr": 0.3, "gtol": 0.3},  # met after 4 or 5 epochs
    "maxiter mid-epoch": {"lr": 0.05, "maxiter": 30},
    "ftol": {"lr": 0.05, "ftol": 0.2},
}


@pytest.mark.parametrize("chunks", list(CHUNKS), ids=list(CHUNKS))
@pytest.mark.parametrize("options", list(OPTIONS), ids=list(OPTIONS))
@pytest.mark.parametrize("shuffle", [True, False])
def test_dask_equals_in_memory(regression, chunks, options, shuffle):
    X, y = regression
    Xd = da.from_array(X, chunks=(CHUNKS[chunks], 2))  # column chunks are merged
    yd = da.from_array(y, chunks=30)                    # rechunked to X's rows
    kw = dict(method="adam", batch_size=32, epochs=6, shuffle=shuffle, seed=5,
              options=OPTIONS[options])
    res, log = _run((Xd, yd), **kw)
    ref, log_ref = _run((X, y), blocks=Xd.chunks[0], **kw)
    _assert_identical(res, ref, log, log_ref)
    if options == "gtol":
        assert res.success and res.nepoch < 6
    if options == "maxiter mid-epoch":
        assert res.nit == 30 and res.status == 1


@pytest.mark.parametrize("batch_size", [1, 60, N, 1000])
def test_batch_sizes_across_blocks(regression, batch_size):
    X, y = regression
    kw = dict(batch_size=batch_size, epochs=2, seed=2, options={"lr": 0.02, "gtol": 1e-9})
    res, log = _run((da.from_array(X, chunks=(45, D)), da.from_array(y, chunks=45)), **kw)
    ref, log_ref = _run((X, y), blocks=45, **kw)
    _assert_identical(res, ref, log, log_ref)
    assert res.nepoch == 2 and res.nit == 2 * -(-N // min(batch_size, N))


def test_float32_and_a_generator_seed(regression):
    X, y = (a.astype(np.float32) for a in regression)
    gen_dask, gen_mem = np.random.default_rng(11), np.random.default_rng(11)
    kw = dict(x0=np.zeros(D, np.float32), batch_size=20, epochs=4,
              options={"lr": 0.05, "gtol": 1e-9})
    res, log = _run((da.from_array(X, chunks=(60, D)), da.from_array(y, chunks=60)),
                    seed=gen_dask, **kw)
    ref, log_ref = _run((X, y), seed=gen_mem, blocks=60, **kw)
    _assert_identical(res, ref, log, log_ref)
    assert res.x.dtype == np.float32
    # the caller's Generator moved alike (the look-ahead at the next epoch draws from a copy)
    assert gen_dask.bit_generator.state == gen_mem.bit_generator.state


def test_a_callback_that_draws_from_the_seed(regression):
    # The next epoch's first block is fetched ahead from a copy of the Generator; a callback
    # drawing from the same Generator changes that order, and the run still follows the rule.
    X, y = regression

    def run(data, gen, **kw):
        def callback(xk):
            gen.random()
        return fastopt.minimize_minibatch(squared_loss, np.zeros(D), data, batch_size=25,
                                          epochs=4, seed=gen, callback=callback,
                                          options={"lr": 0.05}, **kw)

    res = run((da.from_array(X, chunks=(40, D)), da.from_array(y, chunks=40)),
              np.random.default_rng(0))
    ref = run((X, y), np.random.default_rng(0), blocks=40)
    _assert_identical(res, ref)


def test_numpy_arrays_beside_dask_arrays(regression):
    # NumPy members of data stay in memory, sliced per block; the blocks are the first dask
    # array's row chunks.
    X, y = regression
    kw = dict(batch_size=16, epochs=3, seed=1, options={"lr": 0.05})
    res, log = _run((X, da.from_array(y, chunks=64)), **kw)
    ref, log_ref = _run((X, y), blocks=(64, 64, 64, 11), **kw)
    _assert_identical(res, ref, log, log_ref)


def test_blocks_rechunks_dask_data(regression):
    X, y = regression
    kw = dict(batch_size=16, epochs=2, seed=1, options={"lr": 0.05})
    res, _ = _run((da.from_array(X, chunks=(10, 1)), da.from_array(y, chunks=10)),
                  blocks=(100, 103), **kw)
    ref, _ = _run((X, y), blocks=(100, 103), **kw)
    _assert_identical(res, ref)


class Loads:
    """A dask array whose blocks are loaded by delayed calls that record when a block is
    loaded and when it is released (its array freed): how many are held at once."""

    def __init__(self, sizes, fail_at=None):
        self.lock = threading.Lock()
        self.loaded, self.held, self.most = 0, 0, 0
        self.fail_at = fail_at
        offsets = np.concatenate(([0], np.cumsum(sizes)))
        self.array = da.concatenate([
            da.from_delayed(dask.delayed(self._load)(int(start), int(size)), (size, 2),
                            np.float64)
            for start, size in zip(offsets, sizes)])

    def _release(self):
        with self.lock:
            self.held -= 1

    def _load(self, start, size):
        if self.fail_at == start:
            raise OSError(f"block at row {start} is unreadable")
        block = np.column_stack([np.arange(start, start + size, dtype=float),
                                 np.ones(size)])
        with self.lock:
            self.loaded += 1
            self.held += 1
            self.most = max(self.most, self.held)
        weakref.finalize(block, self._release)
        return block


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("fastopt-prefetch")]


def _index_loss(w, block):
    return float(np.mean(block[:, 0]) * w[0]), [np.mean(block[:, 0])]


@pytest.mark.parametrize("prefetch", [0, 1, 3])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("gtol", [0.0, 1e-12])
def test_blocks_held_at_once_are_bounded(prefetch, shuffle, gtol):
    sizes = (20,) * 10
    loads = Loads(sizes)
    options = {"lr": 1e-4, "gtol": gtol}
    res = fastopt.minimize_minibatch(_index_loss, np.zeros(1), loads.array, batch_size=15,
                                     epochs=3, shuffle=shuffle, seed=0,
                                     options={**options, "prefetch": prefetch})
    # every block loaded once per pass (3 epochs, with their gtol passes), none wasted
    assert loads.loaded == 10 * 3 * (2 if gtol else 1)
    assert 1 <= loads.most <= 1 + prefetch
    assert loads.held == 0 and not _prefetch_threads()
    ref = fastopt.minimize_minibatch(_index_loss, np.zeros(1), loads.array.compute(),
                                     batch_size=15, epochs=3, shuffle=shuffle, seed=0,
                                     blocks=sizes, options=options)
    _assert_identical(res, ref)


def test_the_next_block_is_computed_while_fun_runs():
    # One batch per block; fun waits until the next block has been loaded (the background
    # thread's work), so that block and the current one are held together: exactly 2.
    loads = Loads((20,) * 10)
    waited = []

    def fun(w, block):
        visit = int(block[0, 0]) // 20
        for _ in range(10_000):
            if loads.loaded >= min(visit + 2, 10):
                break
            time.sleep(0.001)
        waited.append(loads.loaded >= min(visit + 2, 10))
        return _index_loss(w, block)

    fastopt.minimize_minibatch(fun, np.zeros(1), loads.array, batch_size=20, shuffle=False,
                               options={"lr": 1e-4})
    assert waited == [True] * 10
    assert loads.most == 2 and loads.held == 0


def test_blocks_do_not_change_the_natural_order(regression):
    X, y = regression
    kw = dict(batch_size=32, epochs=2, shuffle=False, options={"lr": 0.05, "gtol": 1e-9})
    ref, log_ref = _run((X, y), **kw)
    for blocks in (7, 50, (100, 0, 103)):
        res, log = _run((X, y), blocks=blocks, **kw)
        _assert_identical(res, ref, log, log_ref)


def test_an_error_loading_a_block_reaches_the_caller():
    loads = Loads((20,) * 10, fail_at=120)
    with pytest.raises(OSError, match="block at row 120 is unreadable"):
        fastopt.minimize_minibatch(_index_loss, np.zeros(1), loads.array, batch_size=15,
                                   seed=0, options={"lr": 1e-4})
    assert not _prefetch_threads()
    assert loads.held == 0


def test_an_error_in_fun_reaches_the_caller():
    loads = Loads((20,) * 10)
    calls = []

    def fun(w, block):
        calls.append(1)
        if len(calls) == 5:
            raise ZeroDivisionError("in fun")
        return _index_loss(w, block)

    with pytest.raises(ZeroDivisionError, match="in fun"):
        fastopt.minimize_minibatch(fun, np.zeros(1), loads.array, batch_size=15, seed=0,
                                   options={"lr": 1e-4})
    assert not _prefetch_threads()
    # the 5th batch (samples 60-74 of the epoch) is in the 4th block, maybe the 5th fetched
    assert loads.held == 0 and 4 <= loads.loaded <= 5


def test_on_a_distributed_cluster(regression):
    # Worker processes: the blocks come back pickled (one may lie unaligned in its message,
    # then it is copied: NumPy's own loop for unaligned X @ w rounds differently from BLAS).
    distributed = pytest.importorskip("distributed")
    X, y = regression
    kw = dict(method="adam", batch_size=32, epochs=3, seed=5,
              options={"lr": 0.05, "gtol": 1e-9})

    def unreadable(start):
        raise OSError(f"block at row {start} is unreadable")

    broken = da.concatenate([da.from_array(X[:100], chunks=(50, D)),
                             da.from_delayed(dask.delayed(unreadable)(100), (103, D), float)])
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster):
        res, log = _run((da.from_array(X, chunks=(50, D)), da.from_array(y, chunks=50)),
                        shuffle=True, **kw)
        res_natural, _ = _run((da.from_array(X, chunks=(50, D)), y), shuffle=False, **kw)
        with pytest.raises(OSError, match="block at row 100 is unreadable"):
            _run((broken, y), **kw)
    ref, log_ref = _run((X, y), blocks=50, shuffle=True, **kw)
    _assert_identical(res, ref, log, log_ref)
    ref_natural, _ = _run((X, y), shuffle=False, **kw)
    _assert_identical(res_natural, ref_natural)


def test_bad_data_and_blocks(regression):
    X, y = regression
    Xd, yd = da.from_array(X, chunks=(50, D)), da.from_array(y, chunks=50)

    def call(data, **kw):
        fastopt.minimize_minibatch(squared_loss, np.zeros(D), data, **kw)

    with pytest.raises(TypeError, match=r"data\[1\] must be a NumPy or dask array"):
        call((Xd, dask.delayed(y)))
    with pytest.raises(ValueError, match=r"data\[0\] is a dask array of unknown row chunk"):
        call((Xd[Xd[:, 0] > 0], yd))
    with pytest.raises(ValueError, match=r"data\[1\] has 200"):
        call((Xd, yd[:200]))
    with pytest.raises(ValueError, match=r"data\[1\] must have a first axis"):
        call((Xd, da.from_array(np.float64(1.0))))
    with pytest.raises(ValueError, match="at least one sample"):
        call((Xd[:0], yd[:0]))
    for data in ((X, y), (Xd, yd)):
        with pytest.raises(ValueError, match=r"blocks must be sizes that sum to .*\(203\)"):
            call(data, blocks=(100, 100))
        with pytest.raises(ValueError, match="blocks must be sizes"):
            call(data, blocks=())
        with pytest.raises(ValueError, match=r"blocks\[1\] = -3"):
            call(data, blocks=(206, -3))
        with pytest.raises(TypeError, match=r"blocks\[0\] = 1.5"):
            call(data, blocks=(1.5, 201.5))
        with pytest.raises(ValueError, match="blocks"):
            call(data, blocks=0)
        with pytest.raises(TypeError, match="blocks must be None, an int"):
            call(data, blocks="50")
        with pytest.raises(ValueError, match="prefetch"):
            call(data, options={"prefetch": -1})
        with pytest.raises(TypeError, match="prefetch"):
            call(data, options={"prefetch": "2"})


def test_bad_input_computes_nothing():
    loads = Loads((20,) * 10)
    with pytest.raises(ValueError, match="blocks"):
        fastopt.minimize_minibatch(_index_loss, np.zeros(1), loads.array, blocks=(10, 10))
    with pytest.raises(ValueError, match="lr"):
        fastopt.minimize_minibatch(_index_loss, np.zeros(1), loads.array,
                                   options={"lr": -1.0})
    assert loads.loaded == 0
