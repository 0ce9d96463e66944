"""Gradient clipping: fastopt.clip_grad_norm_ / clip_grad_value_ against a NumPy reference and
torch.nn.utils (the torch tests skip without torch), and the drivers' max_grad_norm /
grad_norm_type / clip_value options against hand-written clipped loops."""

import doctest
import math

import numpy as np
import pytest
from conftest import DTYPES
from scipy.optimize import OptimizeWarning

import fastopt
from fastopt import _clipping
from fastopt._clipping import NonFiniteNormError
from fastopt._kernels import get_parallel_threshold

BIG = get_parallel_threshold() + 1237  # above the OpenMP threshold, not a multiple of blocks
NORM_TYPES = [2.0, 1.0, math.inf, -math.inf, 0.0, 3.0, 0.5, -1.0]
TOL = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-12}


# ---------------------------------------------------------------------------------------------
# NumPy reference (torch.nn.utils.clip_grad_norm_'s definition, in float64)


def ref_total_norm(arrays, p):
    """The p-norm of the arrays' p-norms (torch's definition), in float64."""
    if not arrays:
        return 0.0
    norms = [np.linalg.norm(a.astype(np.float64).ravel(), p) if a.size else 0.0
             for a in arrays]
    return float(np.linalg.norm(np.array(norms), p))


def ref_clip_norm(arrays, max_norm, p):
    """Clip copies of ``arrays`` as torch does; returns (total in the result dtype, copies)."""
    dtype = np.result_type(*arrays) if arrays else np.dtype(np.float64)
    out = [a.copy() for a in arrays]
    with np.errstate(all="ignore"):
        total = dtype.type(ref_total_norm(arrays, p))
        coef = dtype.type(max_norm) / (total + dtype.type(1e-6))
        coef = min(coef, dtype.type(1.0)) if not np.isnan(coef) else coef
        for a in out:
            a *= a.dtype.type(coef)
    return total, out


def gradient_list(rng, dtype, big=False):
    shapes = [(3, 5), (1,), (7,), (2, 3, 4), (0,)] + ([(BIG,)] if big else [])
    arrays = []
    for shape in shapes:
        a = rng.standard_normal(shape) * rng.uniform(0.1, 10.0)
        a[rng.random(shape) < 0.1] = 0.0
        arrays.append(a.astype(dtype))
    return arrays


def close(actual, desired, dtype):
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(actual, desired, rtol=tol, atol=0)


# ---------------------------------------------------------------------------------------------
# clip_grad_norm_


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("max_norm", [0.5, 1e9])  # clips / does not
def test_clip_grad_norm_is_the_reference(rng, dtype, norm_type, big, max_norm):
    arrays = gradient_list(rng, dtype, big)
    if norm_type < 0 or math.isinf(norm_type):
        arrays = [a for a in arrays if a.size]  # no such norm on an empty array
    total, expected = ref_clip_norm(arrays, max_norm, norm_type)
    ids = [id(a) for a in arrays]
    got = fastopt.clip_grad_norm_(arrays, max_norm, norm_type=norm_type)
    assert type(got) is np.dtype(dtype).type
    close(got, total, dtype)
    assert [id(a) for a in arrays] == ids  # in place
    for a, e in zip(arrays, expected):
        assert a.dtype == dtype
        close(a, e, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
def test_norm_and_result_do_not_depend_on_threads(rng, dtype, norm_type):
    base = [a for a in gradient_list(rng, dtype, big=True) if a.size]
    results = []
    for n_threads in (1, 2, 3):
        arrays = [a.copy() for a in base]
        total = fastopt.clip_grad_norm_(arrays, 0.1, norm_type, n_threads=n_threads)
        results.append((total, arrays))
    for total, arrays in results[1:]:
        assert total == results[0][0]  # bitwise: fixed blocks, combined in one order
        for a, b in zip(arrays, results[0][1]):
            np.testing.assert_array_equal(a, b)


def test_single_array_any_layout_and_mixed_dtypes(rng):
    g = np.asfortranarray(rng.standard_normal((40, 30)))
    norm = np.linalg.norm(g)
    expected = g * (1.0 / (norm + 1e-6))
    total = fastopt.clip_grad_norm_(g, 1.0)
    assert total == pytest.approx(norm, rel=1e-13)
    assert g.flags.f_contiguous
    np.testing.assert_allclose(g, expected, rtol=1e-13)
    mixed = [rng.standard_normal(10).astype(np.float32), rng.standard_normal(7)]
    total, expected = ref_clip_norm(mixed, 0.5, 2.0)
    got = fastopt.clip_grad_norm_(mixed, 0.5)
    assert type(got) is np.float64  # as torch.stack promotes the norms
    close(got, total, np.float64)
    assert mixed[0].dtype == np.float32
    close(mixed[0], expected[0], np.float32)
    close(mixed[1], expected[1], np.float64)
    # Generators and tuples are iterables of arrays too; no arrays: 0.0.
    assert fastopt.clip_grad_norm_((a for a in [np.ones(4)]), 1.0) == pytest.approx(2.0)
    assert fastopt.clip_grad_norm_([], 1.0) == 0.0


def test_within_max_norm_leaves_arrays_bitwise_unchanged(rng):
    arrays = gradient_list(rng, np.float32, big=True)
    before = [a.copy() for a in arrays]
    fastopt.clip_grad_norm_(arrays, 1e30)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [5, 8, 17, BIG])
@pytest.mark.parametrize("where", [0, -1, "middle"])
def test_non_finite_gradients(dtype, n, where):
    i = n // 2 if where == "middle" else where
    nan_g = np.ones(n, dtype)
    nan_g[i] = np.nan
    for p in (2.0, 1.0, math.inf, -math.inf, 3.0):
        assert np.isnan(fastopt.clip_grad_norm_(nan_g.copy(), 1.0, p))
    both = np.ones(n, dtype)
    both[i], both[(i + 1) % n] = np.inf, np.nan
    assert np.isnan(fastopt.clip_grad_norm_(both.copy(), 1.0, math.inf))
    # error_if_nonfinite: raised (a ValueError that is torch's RuntimeError), nothing modified.
    inf_g = np.ones(n, dtype)
    inf_g[i] = -np.inf
    for g in (nan_g, inf_g, both):
        before = g.copy()
        with pytest.raises(RuntimeError, match="non-finite"):
            fastopt.clip_grad_norm_(g, 1.0, error_if_nonfinite=True)
        with pytest.raises(ValueError, match="non-finite"):
            fastopt.clip_grad_norm_([g], 1.0, math.inf, error_if_nonfinite=True)
        np.testing.assert_array_equal(g, before)
    # Without it, as torch: a NaN norm spreads NaN, an infinite one zeroes the finite values.
    fastopt.clip_grad_norm_(nan_g, 1.0)
    assert np.isnan(nan_g).all()
    assert fastopt.clip_grad_norm_(inf_g, 1.0, math.inf) == np.inf
    assert np.isnan(inf_g[i]) and (np.delete(inf_g, i % n) == 0).all()


BAD_NORM_CALLS = [
    ({"max_norm": -1.0}, ValueError, "max_norm"),
    ({"max_norm": np.nan}, ValueError, "max_norm"),
    ({"max_norm": "1"}, TypeError, "max_norm"),
    ({"max_norm": True}, TypeError, "max_norm"),
    ({"norm_type": np.nan}, ValueError, "norm_type"),
    ({"norm_type": "two"}, ValueError, "norm_type"),
    ({"norm_type": None}, TypeError, "norm_type"),
    ({"error_if_nonfinite": 1}, TypeError, "error_if_nonfinite"),
    ({"foreach": "yes"}, TypeError, "foreach"),
    ({"n_threads": 0}, ValueError, "n_threads"),
]


@pytest.mark.parametrize("kwargs, error, match", BAD_NORM_CALLS)
def test_clip_grad_norm_bad_arguments(rng, kwargs, error, match):
    arrays = [rng.standard_normal(5) * 10, rng.standard_normal(3) * 10]
    before = [a.copy() for a in arrays]
    call = {"max_norm": 1.0, **kwargs}
    with pytest.raises(error, match=match):
        fastopt.clip_grad_norm_(arrays, **call)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)


def _bad_lists():
    a = np.arange(10.0) * 10
    read_only = np.ones(4) * 10
    read_only.flags.writeable = False
    return [
        ([a, [1.0, 2.0]], TypeError, r"grads\[1\] must be a NumPy array"),
        ([a, np.arange(3)], TypeError, r"grads\[1\] must be float32 or float64"),
        ([a, np.ones(3, np.float16)], TypeError, r"grads\[1\].*float16"),
        ([a, np.ones(3, ">f8")], TypeError, r"grads\[1\] must be float32 or float64"),
        ([a, read_only], ValueError, r"grads\[1\] is read-only"),
        ([a, (np.ones((4, 4)) * 10)[:, 1]], ValueError, r"grads\[1\] must be contiguous"),
        ([a, a], ValueError, r"grads\[0\] and grads\[1\] share memory"),
        ([a[5:], np.ones(2), a[:6]], ValueError, r"grads\[0\] and grads\[2\] share memory"),
        (3.0, TypeError, "grads must be an array or an iterable"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_lists())))
@pytest.mark.parametrize("which", ["norm", "value"])
def test_bad_gradient_lists_are_refused_untouched(case, which):
    grads, error, match = _bad_lists()[case]
    arrays = grads if isinstance(grads, list) else []
    before = [np.array(a, copy=True) for a in arrays]
    with pytest.raises(error, match=match):
        if which == "norm":
            fastopt.clip_grad_norm_(grads, 0.1)
        else:
            fastopt.clip_grad_value_(grads, 0.1)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("norm_type", [math.inf, -math.inf, -1.0])
def test_empty_array_has_no_inf_norm(norm_type):
    g = np.ones(3) * 5
    with pytest.raises(ValueError, match=r"grads\[1\] is empty"):
        fastopt.clip_grad_norm_([g, np.zeros(0)], 1.0, norm_type)
    np.testing.assert_array_equal(g, 5.0)
    assert fastopt.clip_grad_norm_([g, np.zeros(0)], 100.0, 2.0) == pytest.approx(
        np.sqrt(75.0))


def test_norm_type_as_torch_spells_it():
    g = np.array([3.0, -4.0])
    assert fastopt.clip_grad_norm_(g.copy(), 10.0, "inf") == 4.0
    assert fastopt.clip_grad_norm_(g.copy(), 10.0, "-inf") == 3.0
    assert fastopt.clip_grad_norm_(g.copy(), 10.0, np.int64(1)) == 7.0


# ---------------------------------------------------------------------------------------------
# clip_grad_value_


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_clip_grad_value_is_numpy_clip(rng, dtype, big, n_threads):
    arrays = gradient_list(rng, dtype, big)
    arrays[0][0, :3] = [np.nan, np.inf, -np.inf]
    arrays[1][0] = -0.0
    expected = [np.clip(a, dtype(-0.7), dtype(0.7)) for a in arrays]
    assert fastopt.clip_grad_value_(arrays, 0.7, n_threads=n_threads) is None
    for a, e in zip(arrays, expected):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, e)  # NaN kept, -0.0 kept (array_equal on values)
    assert np.signbit(arrays[1][0])


@pytest.mark.parametrize("clip_value, error", [(-1.0, ValueError), (np.nan, ValueError),
                                               ("1", TypeError), (None, TypeError)])
def test_clip_grad_value_bad_value(clip_value, error):
    g = np.arange(5.0)
    with pytest.raises(error, match="clip_value"):
        fastopt.clip_grad_value_(g, clip_value)
    np.testing.assert_array_equal(g, np.arange(5.0))


def test_clip_grad_value_inf_and_zero():
    g = np.array([-3.0, 2.0])
    fastopt.clip_grad_value_(g, np.inf)
    np.testing.assert_array_equal(g, [-3.0, 2.0])
    fastopt.clip_grad_value_([g], 0)
    np.testing.assert_array_equal(g, [0.0, 0.0])


def test_docstring_examples():
    result = doctest.testmod(_clipping, raise_on_error=False, verbose=False)
    assert result.failed == 0 and result.attempted > 0


# ---------------------------------------------------------------------------------------------
# torch.nn.utils


def _torch_params(torch, arrays):
    params = []
    for a in arrays:
        p = torch.zeros(a.shape, dtype=torch.from_numpy(a).dtype, requires_grad=True)
        p.grad = torch.from_numpy(a.copy())
        params.append(p)
    return params


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0, 0.0, 0.5])
@pytest.mark.parametrize("max_norm", [0.3, 1e9])
@pytest.mark.parametrize("big", [False, True])
def test_clip_grad_norm_equals_torch(rng, dtype, norm_type, max_norm, big):
    torch = pytest.importorskip("torch")
    arrays = [a for a in gradient_list(rng, dtype, big) if a.size]
    params = _torch_params(torch, arrays)
    expected = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    got = fastopt.clip_grad_norm_(arrays, max_norm, norm_type=norm_type)
    assert np.dtype(type(got)) == np.dtype(dtype)
    # torch reduces float32 in float32, fastopt in double: equal to float32's rounding.
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, expected.item(), rtol=rtol)
    for a, p in zip(arrays, params):
        np.testing.assert_allclose(a, p.grad.numpy(), rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_norm_equals_torch_mixed_and_nonfinite(rng, dtype):
    torch = pytest.importorskip("torch")
    mixed = [rng.standard_normal(20).astype(np.float32), rng.standard_normal(9)]
    params = _torch_params(torch, mixed)
    expected = torch.nn.utils.clip_grad_norm_(params, 0.5)
    got = fastopt.clip_grad_norm_(mixed, 0.5)
    assert np.dtype(type(got)) == np.dtype(str(expected.dtype).replace("torch.", ""))
    np.testing.assert_allclose(got, expected.item(), rtol=1e-6)
    for a, p in zip(mixed, params):
        np.testing.assert_allclose(a, p.grad.numpy(), rtol=1e-6)
    g = np.ones(5, dtype)
    g[2] = np.inf
    params = _torch_params(torch, [g])
    with pytest.raises(RuntimeError):
        torch.nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError):
        fastopt.clip_grad_norm_(g, 1.0, error_if_nonfinite=True)
    expected = torch.nn.utils.clip_grad_norm_(params, 1.0, norm_type="inf")
    got = fastopt.clip_grad_norm_(g, 1.0, norm_type="inf")
    assert got == expected.item() == np.inf
    np.testing.assert_array_equal(g, params[0].grad.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("big", [False, True])
def test_clip_grad_value_equals_torch(rng, dtype, big):
    torch = pytest.importorskip("torch")
    arrays = gradient_list(rng, dtype, big)
    arrays[0][0, 0] = np.nan
    params = _torch_params(torch, arrays)
    torch.nn.utils.clip_grad_value_(params, 0.25)
    fastopt.clip_grad_value_(arrays, 0.25)
    for a, p in zip(arrays, params):
        np.testing.assert_array_equal(a, p.grad.numpy())


# ---------------------------------------------------------------------------------------------
# The drivers' options


CLIP_OPTIONS = [
    {"max_grad_norm": 5.0},
    {"max_grad_norm": 2.0, "grad_norm_type": "inf"},
    {"max_grad_norm": 30.0, "grad_norm_type": 1},
    {"clip_value": 3.0},
    {"max_grad_norm": 20.0, "clip_value": 4.0},
]


def rosen_fg(x):
    """Rosenbrock (the same order of operations as fastopt._objectives.rosenbrock)."""
    f, g = 0.0, np.zeros_like(x)
    for i in range(x.size - 1):
        a = x[i + 1] - x[i] * x[i]
        b = 1.0 - x[i]
        f += 100.0 * a * a + b * b
        g[i] += -400.0 * x[i] * a - 2.0 * b
        g[i + 1] += 200.0 * a
    return f, g


def clip_by_hand(g, options):
    """The gradient an update sees: g clipped as the options say (norm, then value)."""
    g = g.copy()
    if "max_grad_norm" in options:
        fastopt.clip_grad_norm_(g, options["max_grad_norm"],
                                options.get("grad_norm_type", 2.0))
    if "clip_value" in options:
        fastopt.clip_grad_value_(g, options["clip_value"])
    return g


def hand_loop(cls, fg, x0, maxiter, clip, **hyper):
    """fastopt.minimize's loop written out: evaluate, clip a copy, step (gtol off)."""
    x = x0.copy()
    opt = cls(x, **hyper)
    for _ in range(maxiter):
        _, g = fg(x)
        opt.step(clip_by_hand(g, clip))
    return x, fg(x)


@pytest.mark.parametrize("clip", CLIP_OPTIONS)
@pytest.mark.parametrize("method, cls, hyper", [
    ("sgd", fastopt.SGD, {"lr": 1e-3, "momentum": 0.9}),
    ("rmsprop", fastopt.RMSprop, {"lr": 1e-3}),
])
def test_minimize_clips_as_a_hand_written_loop(clip, method, cls, hyper):
    x0 = np.array([-1.2, 1.0, 0.5])
    res = fastopt.minimize(rosen_fg, x0, jac=True, method=method,
                           options={**hyper, **clip, "maxiter": 200, "gtol": 0.0})
    x, (f, g) = hand_loop(cls, rosen_fg, x0, 200, clip, **hyper)
    assert res.nit == 200
    np.testing.assert_array_equal(res.x, x)
    assert res.fun == f
    np.testing.assert_array_equal(res.jac, g)  # the gradient itself, not the clipped one
    unclipped = fastopt.minimize(rosen_fg, x0, jac=True, method=method,
                                 options={**hyper, "maxiter": 200, "gtol": 0.0})
    assert not np.array_equal(unclipped.x, res.x)  # the options did something


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clip", CLIP_OPTIONS)
def test_c_objective_clips_in_c_as_the_python_path(dtype, clip):
    llc = fastopt.problems.rosenbrock_lowlevel(np.dtype(dtype).name)
    x0 = np.array([-1.2, 1.0, 0.5, 2.0], dtype=dtype)

    def fg(x):
        f, g = rosen_fg(x.astype(np.float64))
        return f, g.astype(dtype)

    options = {"lr": 1e-3, "momentum": 0.9, **clip, "maxiter": 300, "gtol": 0.0}
    native = fastopt.minimize(llc, x0, jac=True, method="sgd", options=options)
    python = fastopt.minimize(fg, x0, jac=True, method="sgd", options=options)
    if dtype == np.float64:  # the same arithmetic, in C or in Python
        np.testing.assert_array_equal(native.x, python.x)
    else:  # float32 C arithmetic vs float64 then rounded: close
        np.testing.assert_allclose(native.x, python.x, rtol=1e-3)
    x, _ = hand_loop(fastopt.SGD, fg, x0, 300, clip, lr=1e-3, momentum=0.9)
    np.testing.assert_allclose(native.x, x, rtol=1e-3 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_minimize_clips_large_problems_with_threads(n_threads):
    # Above the OpenMP threshold, the clipping in the loop runs on threads: same result.
    n = BIG
    scale = np.linspace(1.0, 50.0, n)

    def fg(x):
        return 0.5 * float(np.sum(scale * x * x)), scale * x

    x0 = np.ones(n)
    for clip in ({"max_grad_norm": 10.0}, {"clip_value": 2.0}):
        res = fastopt.minimize(fg, x0, jac=True, method="adam",
                               options={"lr": 1e-2, "maxiter": 20, "gtol": 0.0,
                                        "n_threads": n_threads, **clip})
        x, _ = hand_loop(fastopt.Adam, fg, x0, 20, clip, lr=1e-2)
        # Adam's bias corrections: running products in the loop, pow() in the class.
        np.testing.assert_allclose(res.x, x, rtol=1e-12)


def batch_fg(X):
    F, G = np.empty(len(X)), np.empty_like(X)
    for i, x in enumerate(X):
        F[i], G[i] = rosen_fg(x)
    return F, G


@pytest.mark.parametrize("clip", CLIP_OPTIONS)
@pytest.mark.parametrize("per_row", [False, True])
@pytest.mark.parametrize("native", [False, True])
def test_minimize_batch_clips_each_problem_as_minimize(clip, per_row, native):
    starts = np.random.default_rng(3).uniform(-2.0, 2.0, (13, 3))
    lr = np.linspace(5e-4, 2e-3, 13) if per_row else 1e-3  # per-row lrs: the row-by-row path
    options = {"lr": lr, **clip, "maxiter": 150, "gtol": 1e-3}
    fun = fastopt.problems.rosenbrock_lowlevel() if native else batch_fg
    singles = [fastopt.minimize(fastopt.problems.rosenbrock_lowlevel() if native else rosen_fg,
                                x0, jac=True, method="adam",
                                options={**options, "lr": lr[i] if per_row else lr})
               for i, x0 in enumerate(starts)]
    for n_threads in (1, 2):
        batch = fastopt.minimize_batch(fun, starts, jac=True, method="adam",
                                       options={**options, "n_threads": n_threads})
        for i, r in enumerate(singles):
            np.testing.assert_array_equal(batch.x[i], r.x)
            np.testing.assert_array_equal(batch.jac[i], r.jac)
            assert (batch.nit[i], batch.status[i]) == (r.nit, r.status)
    plain = fastopt.minimize_batch(fun, starts, jac=True, method="adam",
                                   options={**options, "max_grad_norm": None,
                                            "clip_value": None, "grad_norm_type": None})
    assert not np.array_equal(plain.x, batch.x)


@pytest.mark.parametrize("clip", CLIP_OPTIONS)
def test_minimize_minibatch_clips_each_step(clip):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((64, 4)) * 5
    y = X @ np.array([1.0, -2.0, 0.5, 3.0])

    def loss(w, Xb, yb):
        r = Xb @ w - yb
        return 0.5 * np.mean(r * r), Xb.T @ r / len(yb)

    hyper = {"lr": 0.01, "momentum": 0.5}
    res = fastopt.minimize_minibatch(loss, np.zeros(4), (X, y), method="sgd", batch_size=16,
                                     epochs=3, shuffle=False, options={**hyper, **clip})
    w = np.zeros(4)
    opt = fastopt.SGD(w, **hyper)
    for _ in range(3):
        for start in range(0, 64, 16):
            _, g = loss(w, X[start:start + 16], y[start:start + 16])
            last = g
            opt.step(clip_by_hand(g, clip))
    np.testing.assert_array_equal(res.x, w)
    assert res.nit == 12
    np.testing.assert_array_equal(res.jac, last)  # the batch's gradient itself


@pytest.mark.parametrize("options, error, match", [
    ({"max_grad_norm": -1.0}, ValueError, "max_grad_norm"),
    ({"max_grad_norm": "big"}, TypeError, "max_grad_norm"),
    ({"clip_value": np.nan}, ValueError, "clip_value"),
    ({"max_grad_norm": 1.0, "grad_norm_type": np.nan}, ValueError, "grad_norm_type"),
    ({"grad_norm_type": 2.0}, ValueError, "grad_norm_type"),
])
@pytest.mark.parametrize("driver", ["minimize", "minimize_batch", "minimize_minibatch"])
def test_driver_clip_options_are_validated(options, error, match, driver):
    x0 = np.array([-1.0, 1.0])
    calls = []

    def fg(x, *batch):
        calls.append(1)
        return rosen_fg(x) if x.ndim == 1 else batch_fg(x)

    with pytest.raises(error, match=match):
        if driver == "minimize":
            fastopt.minimize(fg, x0, jac=True, options=options)
        elif driver == "minimize_batch":
            fastopt.minimize_batch(fg, x0[None], jac=True, options=options)
        else:
            fastopt.minimize_minibatch(fg, x0, np.zeros((4, 1)), options=options)
    assert not calls  # refused before fun is called
    np.testing.assert_array_equal(x0, [-1.0, 1.0])


def test_clip_options_are_known_to_every_driver():
    import warnings
    options = {"max_grad_norm": 1.0, "grad_norm_type": 2, "clip_value": 1.0, "maxiter": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptimizeWarning)
        fastopt.minimize(rosen_fg, np.zeros(2), jac=True, options=options)
        fastopt.minimize_batch(batch_fg, np.zeros((2, 2)), jac=True, options=options)
        fastopt.minimize_minibatch(lambda w, Xb: rosen_fg(w), np.zeros(2), np.zeros((4, 1)),
                                   options=options)


def test_clip_stub_matches_the_module():
    import inspect

    from test_kernel_spec import _stub_functions, _stub_parameters

    from fastopt import _clip
    stub = _stub_functions(_clip)
    real = {name for name, obj in vars(_clip).items()
            if callable(obj) and not isinstance(obj, type) and not name.startswith("__")
            and getattr(obj, "__module__", None) == _clip.__name__}
    assert real == set(stub)
    for name, node in stub.items():
        params = [(p.name, p.kind.name) for p in
                  inspect.signature(getattr(_clip, name)).parameters.values()]
        assert params == _stub_parameters(node), name
