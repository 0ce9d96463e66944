"""Adversarial checks of minimize_minibatch's blocks (issue 16): NumPy data keep the batches
of the releases before blocks existed, and ``blocks`` is read as the docstring says."""

import numpy as np
import pytest

import fastopt


def _strided_and_unaligned():
    rng = np.random.default_rng(3)
    wide = rng.standard_normal((203, 160))
    strided = wide[:, ::4]  # not contiguous: NumPy's matmul does not use BLAS on it
    buf = np.zeros(strided.size * 8 + 1, np.uint8)
    unaligned = np.ndarray(strided.shape, np.float64, buf, offset=1)
    unaligned[...] = strided
    y = strided @ rng.standard_normal(40)
    return {"strided": strided, "unaligned": unaligned}, y


def _loss(w, X, y):
    r = X @ w - y
    return 0.5 * np.mean(r**2), X.T @ r / len(y)


def _before_blocks(X, y, batch_size, epochs, shuffle, seed, lr):
    """The loop of the releases before blocks (fastopt 'main'): batches X[rows] with rows a
    slice (shuffle=False) or a piece of one rng.permutation(n) per epoch; SGD steps."""
    x = np.zeros(X.shape[1])
    opt = fastopt.SGD(x, lr=lr)
    rng = np.random.default_rng(seed)
    n = len(X)
    for _ in range(epochs):
        order = rng.permutation(n) if shuffle else None
        for start in range(0, n, batch_size):
            rows = slice(start, start + batch_size) if order is None else \
                order[start:start + batch_size]
            _, g = _loss(x, X[rows], y[rows])
            opt.step(np.array(g))
    return x


@pytest.mark.parametrize("layout", ["strided", "unaligned"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_numpy_batches_are_those_before_blocks(layout, shuffle):
    # The last (partial) batch of an epoch was a view of the data (shuffle=False); a copy has
    # another memory layout, so X @ w rounds differently and the result changed.
    data, y = _strided_and_unaligned()
    X = data[layout]
    kw = dict(batch_size=32, epochs=3, shuffle=shuffle, seed=5)
    res = fastopt.minimize_minibatch(_loss, np.zeros(40), (X, y), method="sgd",
                                     options={"lr": 0.01}, **kw)
    ref = _before_blocks(X, y, lr=0.01, **kw)
    assert res.x.tobytes() == ref.tobytes()


def test_natural_order_batches_are_views_of_numpy_data():
    data, y = _strided_and_unaligned()
    X = data["strided"]
    seen = []

    def fun(w, Xb, yb):
        seen.append(np.shares_memory(Xb, X))
        return _loss(w, Xb, yb)

    fastopt.minimize_minibatch(fun, np.zeros(40), (X, y), batch_size=32, shuffle=False,
                               options={"lr": 0.01, "gtol": 1e-30})
    assert len(seen) == 2 * 7 and all(seen)  # the epoch's batches and the gtol pass's


@pytest.mark.parametrize("blocks", [{50, 153}, {50: 0, 153: 1}, frozenset({203})])
def test_blocks_refuses_unordered_containers(blocks):
    # A set's order (and a dict's keys) is not the user's: the block sizes would be taken in
    # hash order, or deduplicated.
    data, y = _strided_and_unaligned()
    with pytest.raises(TypeError, match="blocks must be None, an int"):
        fastopt.minimize_minibatch(_loss, np.zeros(40), (data["strided"], y), blocks=blocks)


def test_blocks_as_a_0d_array_is_an_int():
    data, y = _strided_and_unaligned()
    kw = dict(batch_size=16, epochs=2, seed=0, options={"lr": 0.01})
    res = fastopt.minimize_minibatch(_loss, np.zeros(40), (data["strided"], y),
                                     blocks=np.array(50), **kw)
    ref = fastopt.minimize_minibatch(_loss, np.zeros(40), (data["strided"], y), blocks=50,
                                     **kw)
    assert res.x.tobytes() == ref.x.tobytes()
    with pytest.raises(TypeError, match="blocks"):
        fastopt.minimize_minibatch(_loss, np.zeros(40), (data["strided"], y),
                                   blocks=np.array(50.0))


@pytest.mark.parametrize("shuffle", [True, False])
def test_dask_data_equal_c_contiguous_numpy_data(shuffle):
    # The docstring's condition: dask's blocks of a strided array are C-contiguous, so the
    # in-memory run that equals the streamed one is on C-contiguous arrays.
    da = pytest.importorskip("dask.array")
    data, y = _strided_and_unaligned()
    X = data["strided"]
    kw = dict(method="adam", batch_size=32, epochs=2, shuffle=shuffle, seed=1,
              options={"lr": 0.01, "gtol": 1e-30})
    res = fastopt.minimize_minibatch(_loss, np.zeros(40),
                                     (da.from_array(X, chunks=(50, 10)), y), **kw)
    ref = fastopt.minimize_minibatch(_loss, np.zeros(40), (np.ascontiguousarray(X), y),
                                     blocks=(50, 50, 50, 50, 3), **kw)
    assert res.x.tobytes() == ref.x.tobytes() and res.history == ref.history
    assert res.jac.tobytes() == ref.jac.tobytes()


@pytest.mark.parametrize("prefetch", [0, 1, 2])
def test_a_client_made_current_in_a_context_computes_the_blocks(prefetch):
    # Client.as_current() (not the default client) lives in a contextvar: the background
    # thread that computes the next blocks must see it, as the calling thread does.
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    data, y = _strided_and_unaligned()
    X = np.ascontiguousarray(data["strided"])
    kw = dict(method="adam", batch_size=32, epochs=2, seed=1, options={"lr": 0.01})
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client, client.as_current():
        Xd, yd = client.persist([da.from_array(X, chunks=(50, 40)), da.from_array(y, chunks=50)])
        res = fastopt.minimize_minibatch(_loss, np.zeros(40), (Xd, yd),
                                         options={"lr": 0.01, "prefetch": prefetch},
                                         **{k: v for k, v in kw.items() if k != "options"})
    ref = fastopt.minimize_minibatch(_loss, np.zeros(40), (X, y), blocks=50, **kw)
    assert res.x.tobytes() == ref.x.tobytes()


@pytest.mark.parametrize("rows, cols", [(40, 2), (60, 2), (50, 3)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_a_block_that_does_not_match_its_chunks_is_an_error(rows, cols, shuffle):
    # dask trusts the declared chunks (from_delayed's shape, map_blocks' chunks=): a block of
    # another size was cut by the declared size, dropping rows or running a short batch.
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    liar = da.from_delayed(dask.delayed(np.ones)((rows, cols)), (50, 2), float)
    data = (da.concatenate([da.from_array(np.ones((50, 2)), chunks=25), liar]), np.ones(100))
    with pytest.raises(ValueError, match=rf"data\[0\]'s block 2 .*\({rows}, {cols}\).*"
                                         r"\(50, 2\)"):
        fastopt.minimize_minibatch(lambda w, X, y: (0.0, np.zeros(1)), np.zeros(1), data,
                                   batch_size=16, shuffle=shuffle, seed=0)


def test_unknown_chunk_sizes_past_the_rows_name_the_array():
    da = pytest.importorskip("dask.array")
    X = da.from_array(np.ones((100, 4)), chunks=(50, 4))
    X = X.map_blocks(lambda b: b[:, :1], chunks=((50, 50), (np.nan,)), dtype=float)
    with pytest.raises(ValueError, match=r"data\[1\] is a dask array of unknown chunk sizes"):
        fastopt.minimize_minibatch(lambda w, y, X: (0.0, np.zeros(1)), np.zeros(1),
                                   (np.ones(100), X), batch_size=16, seed=0)


def test_a_delayed_value_is_not_called_a_dataframe():
    dask = pytest.importorskip("dask")
    with pytest.raises(TypeError, match=r"data\[0\] must be a NumPy or dask array, got "
                                        r"dask\.delayed\.\w+ \(a dask\.delayed array: "
                                        r"da\.from_delayed"):
        fastopt.minimize_minibatch(lambda w, X: (0.0, np.zeros(1)), np.zeros(1),
                                   (dask.delayed(np.ones)((10, 2)),))
