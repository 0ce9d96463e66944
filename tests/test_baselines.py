"""Every baseline the benchmarks time is the reference rule (fastopt._reference) or makes the
reference's steps: ``python -m fastopt bench``'s columns, ``python -m fastopt bench-loops``'s
NumPy, SciPy-method and plain C Adam, and the asv suite's."""

import importlib.util
import inspect
import pathlib
import sys

import numpy as np
import pytest
from scipy.optimize import minimize as scipy_minimize
from scipy.optimize import rosen_der

import fastopt
from fastopt import _bench, _bench_loops, _objectives, _reference
from fastopt._methods import METHODS

from conftest import DTYPES, assert_close, gradient_sequence
from _registry import variant_cases

ROOT = pathlib.Path(__file__).resolve().parents[1]
ASV = ROOT / "asv_benchmarks"
STEPS = 12  # a few steps: ordinary, zero and huge gradients (conftest.GRADIENT_SCALES)


def test_every_method_has_a_reference_taking_its_hyperparameters():
    for name, cls in METHODS.items():
        reference = getattr(_reference, name)
        hyper = cls(np.zeros(1)).hyperparameters
        assert list(inspect.signature(reference).parameters)[4:] == list(hyper), name
    for name in _bench.OUT_RULES:
        assert name in METHODS
        assert (inspect.signature(_bench.OUT_RULES[name]).parameters.keys()
                == inspect.signature(getattr(_reference, name)).parameters.keys())


def test_every_benchmarked_optimizer_has_an_out_rule():
    # bench's "vs out=" column (and asv's "numpy out=") showed "-" for Adamax: it had none.
    from fastopt._registry import RECORDS

    missing = [record.method for record in RECORDS
               if record.bench is not None and record.method not in _bench.OUT_RULES]
    assert not missing


# -- python -m fastopt bench ------------------------------------------------------------------

def _out_rule_cases():
    cases = [pytest.param(cls, kwargs, id=f"{cls.__name__}-{_id(kwargs)}")
             for _, cls, kwargs, _ in _bench.ROWS]
    for param in variant_cases():
        case, kwargs = param.values
        cases.append(pytest.param(case.cls, kwargs, id=param.id))
    return [c for c in cases if _bench.method_of(c.values[0]) in _bench.OUT_RULES]


def _id(kwargs):
    return ",".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls, kwargs", _out_rule_cases())
def test_out_rule_makes_the_reference_steps(cls, kwargs, dtype, rng):
    # Same operations in the same order as the reference: the same bits, state included.
    method = _bench.method_of(cls)
    out_rule, reference = _bench.OUT_RULES[method], getattr(_reference, method)
    hyper = cls(np.zeros(1), **kwargs).hyperparameters
    start = rng.standard_normal(37).astype(dtype)
    p, expected = start.copy(), start.copy()
    state, ref_state = {}, {}
    for t, g in enumerate(gradient_sequence(rng, 37, dtype)[:STEPS], start=1):
        expected = reference(expected, g, ref_state, t, **hyper)
        p = out_rule(p, g, state, t, **hyper)
        assert p.dtype == dtype
        np.testing.assert_array_equal(p, expected, err_msg=f"step {t}")
        assert {k for k in state if not k.startswith("_")} == set(ref_state)
        for name, value in ref_state.items():
            np.testing.assert_array_equal(state[name], value, err_msg=f"{name}, step {t}")
    assert not np.array_equal(p, start)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label", list(_bench.RULES))
def test_bench_columns_make_the_same_steps(label, dtype, rng):
    # Every column of a bench row runs the optimizer's hyperparameters on the same data: after
    # a few steps they hold the same parameters (NumPy plain: the reference itself).
    row = _bench.RULES[label]
    _, cls, kwargs, _ = row
    start, grad = rng.standard_normal((2, 37)).astype(dtype)
    kept = grad.copy()
    columns = _bench._columns(row, start, grad, 1, _bench._torch())
    assert {"fastopt", "NumPy plain", "axpy"} <= set(columns)
    for _ in range(3):
        for col in columns.values():
            col.step()
    # no column changes the gradient another one steps with (torch's foreach NAG adds its
    # momentum buffer into its own copy, the schedulefree package's paths normalise theirs in
    # place: those columns are left out of the comparison below)
    np.testing.assert_array_equal(grad, kept)
    assert all(c.grad is grad or not np.shares_memory(c.grad, grad) for c in columns.values())
    expected = columns["NumPy plain"].params()
    for name, col in columns.items():
        if col.params is None or not np.array_equal(col.grad, kept):
            assert name == "axpy" or name.startswith("torch"), name
            continue
        assert col.params().dtype == dtype
        if name == "NumPy out=":
            np.testing.assert_array_equal(col.params(), expected)
        else:
            assert_close(col.params(), expected, dtype)
    # the plain column is the reference of the class's method, with its hyperparameters
    method = _bench.method_of(cls)
    start = np.random.default_rng(1).standard_normal(5).astype(dtype)
    grad = np.random.default_rng(2).standard_normal(5).astype(dtype)
    plain = _bench.column(row, "NumPy plain", start, grad, 1)
    plain.step()
    hyper = cls(np.zeros(1), **kwargs).hyperparameters
    state = {}
    want = getattr(_reference, method)(start, grad, state, 1, **hyper)
    want = getattr(_reference, method)(want, grad, state, 2, **hyper)
    np.testing.assert_array_equal(plain.params(), want)


@pytest.mark.parametrize("label", list(_bench.RULES))
def test_bench_counts_the_arrays_the_rule_moves(label):
    # parameter and gradient read, parameter written, each state array read and written (a
    # running scalar, a number in the reference's state, is no array)
    _, cls, kwargs, _ = _bench.RULES[label]
    state = {}
    reference = getattr(_reference, _bench.method_of(cls))
    reference(np.zeros(3), np.ones(3), state, 1, **cls(np.zeros(1), **kwargs).hyperparameters)
    arrays = [v for v in state.values() if np.ndim(v) > 0]
    assert _bench.arrays_moved(cls, kwargs) == 3 + 2 * len(arrays)


def test_bench_row_without_an_out_rule_shows_a_dash(monkeypatch, capsys):
    monkeypatch.delitem(_bench.OUT_RULES, "adam")
    rows = _bench.run(sizes=[2**6], dtypes=["float64"], rules=["Adam"], repeats=1)
    assert rows and all(row["vs_numpy_out"] is None for row in rows)
    assert rows[0]["vs_numpy"] > 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("Adam") and " - " in line


# -- python -m fastopt bench-loops: Adam on 2-D Rosenbrock ------------------------------------

STARTS = np.array([[-1.2, 1.0], [0.5, 0.5], [2.0, -1.0], [-0.3, 1.7]])
ADAM_SETTINGS = [{"lr": 1e-3}, {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6}]


def reference_adam_run(x0, iters, grad=lambda x: _bench_loops.rosen2(x)[1], **hyper):
    """(x after ``iters`` reference Adam steps from x0, x before the last step)."""
    x, state, before = np.array(x0, dtype=float), {}, None
    for t in range(1, iters + 1):
        before = x
        x = _reference.adam(x, grad(x), state, t, **hyper)
    return x, before


def _hyper(**kwargs):
    return fastopt.Adam(np.zeros(1), **kwargs).hyperparameters


@pytest.mark.parametrize("kwargs", [{}, *ADAM_SETTINGS], ids=_id)
def test_python_adam_makes_the_reference_steps(kwargs):
    # written out with the reference's operations in its order: the same bits ({}: the
    # bench's call, the function's own defaults against fastopt.Adam's with the bench's lr)
    hyper = _hyper(**{"lr": _bench_loops.LR, **kwargs})
    for x0 in STARTS:
        res = scipy_minimize(lambda x: _bench_loops.rosen2(x)[0], x0,
                             method=_bench_loops.python_adam,
                             jac=lambda x: _bench_loops.rosen2(x)[1],
                             options=dict(kwargs, maxiter=30))
        expected, _ = reference_adam_run(x0, 30, **hyper)
        np.testing.assert_array_equal(res.x, expected)
        assert res.nit == 30 and res.fun == _bench_loops.rosen2(expected)[0]


@pytest.mark.parametrize("kwargs", ADAM_SETTINGS, ids=_id)
def test_numpy_adam_rows_makes_the_reference_steps(kwargs):
    hyper = _hyper(**kwargs)
    X = _bench_loops.numpy_adam_rows(STARTS, iters=30, **hyper)
    for x0, x in zip(STARTS, X):
        np.testing.assert_array_equal(x, reference_adam_run(x0, 30, **hyper)[0])
    # the bench's call: fastopt.Adam's defaults with the bench's learning rate
    X = _bench_loops.numpy_adam_rows(STARTS[:1], iters=30)
    want = reference_adam_run(STARTS[0], 30, **_hyper(lr=_bench_loops.LR))[0]
    np.testing.assert_array_equal(X[0], want)


@pytest.mark.parametrize("iters", [1, 10, 50])
@pytest.mark.parametrize("kwargs", ADAM_SETTINGS, ids=_id)
def test_plain_c_adam_makes_the_reference_steps(kwargs, iters):
    # Not bitwise: the C loop keeps the bias corrections as running products of the betas
    # (beta1_pow *= beta1) where the reference computes beta1**t, an ulp or so apart. Measured:
    # x within 6 ulps after 50 steps, f (a difference of nearly equal terms) within 30 ulps;
    # rtol 1e-13 (~450 ulps) still sees a wrong beta or eps (eps 1e-8 -> 1e-7 moves x by ~1e-11).
    hyper = _hyper(**kwargs)
    X = STARTS.copy()
    f = _objectives.plain_adam_rosenbrock2(X, iters, hyper["lr"], *hyper["betas"],
                                            hyper["eps"])
    for i, x0 in enumerate(STARTS):
        expected, before = reference_adam_run(x0, iters, **hyper)
        np.testing.assert_allclose(X[i], expected, rtol=1e-13, atol=0)
        np.testing.assert_allclose(f[i], _bench_loops.rosen2(before)[0], rtol=1e-12, atol=0)


def _block_floor_settings():
    simds = ["baseline"] + (["avx2"] if _objectives.block_floor_simd() == "avx2" else [])
    return [pytest.param(simd, n_threads, id=f"{simd}-{n_threads}thread")
            for simd in simds for n_threads in (1, 2)]


def _many_starts(m, seed=0):
    # more than two blocks, the last one partial; the STARTS among them
    starts = np.random.default_rng(seed).uniform(-2, 2, (m, 2))
    starts[:len(STARTS)] = STARTS
    return starts


@pytest.mark.parametrize("simd, n_threads", _block_floor_settings())
@pytest.mark.parametrize("kwargs", ADAM_SETTINGS, ids=_id)
def test_block_floor_makes_the_reference_steps(kwargs, simd, n_threads):
    # The block SIMD floor (src_c/fastopt_block_adam.h): the reference's steps on every row,
    # within the scalar floor's tolerance (the same running products of the betas), and the
    # scalar floor's very bits (the same operations, lane by lane, no multiply-add fused).
    hyper = _hyper(**kwargs)
    iters, m = 50, 2 * _objectives.BLOCK_SIZE + 3
    X = _many_starts(m)
    f = _objectives.plain_block_adam_rosenbrock2(X, iters, hyper["lr"], *hyper["betas"],
                                                  hyper["eps"], n_threads=n_threads, simd=simd)
    # the reference, elementwise, on all rows at once (as numpy_adam_rows)
    want, state = _many_starts(m), {}
    for t in range(1, iters + 1):
        before = want
        want = _reference.adam(want, _bench_loops.rosen2_rows(want)[1], state, t, **hyper)
    np.testing.assert_allclose(X, want, rtol=1e-13, atol=0)
    np.testing.assert_allclose(f, _bench_loops.rosen2_rows(before)[0], rtol=1e-12, atol=0)
    scalar = _many_starts(m)
    f_scalar = _objectives.plain_adam_rosenbrock2(scalar, iters, hyper["lr"], *hyper["betas"],
                                                  hyper["eps"])
    np.testing.assert_array_equal(X, scalar)
    np.testing.assert_array_equal(f, f_scalar)


def test_block_floor_as_the_bench_calls_it_and_its_edges():
    # bench-loops passes fastopt.Adam's betas and eps; the C function's own defaults agree
    X, Y = STARTS.copy(), STARTS.copy()
    _bench_loops.block_floor_adam(X, 20, n_threads=2)
    _objectives.plain_block_adam_rosenbrock2(Y, 20, _bench_loops.LR)
    for x0, x, y in zip(STARTS, X, Y):
        want = reference_adam_run(x0, 20, **_hyper(lr=_bench_loops.LR))[0]
        np.testing.assert_allclose(x, want, rtol=1e-13, atol=0)
        np.testing.assert_array_equal(x, y)
    # no problems, no iterations
    assert _objectives.plain_block_adam_rosenbrock2(np.zeros((0, 2)), 10).shape == (0,)
    X = STARTS.copy()
    np.testing.assert_array_equal(_objectives.plain_block_adam_rosenbrock2(X, 0), 0.0)
    np.testing.assert_array_equal(X, STARTS)


@pytest.mark.parametrize("call, match", [
    (lambda X: _objectives.plain_block_adam_rosenbrock2(X[:, :1].copy(), 5), "shape"),
    (lambda X: _objectives.plain_block_adam_rosenbrock2(X, -1), "iters"),
    (lambda X: _objectives.plain_block_adam_rosenbrock2(X, 5, n_threads=0), "n_threads"),
    (lambda X: _objectives.plain_block_adam_rosenbrock2(X, 5, simd="sse9"), "simd"),
    (lambda X: _objectives.plain_block_adam_rosenbrock2(X.astype(np.float32), 5), "dtype"),
    (lambda X: _objectives.plain_block_adam_rosenbrock2(np.asfortranarray(X), 5), "contiguous"),
])
def test_block_floor_refuses_bad_input_and_modifies_nothing(call, match):
    X = STARTS.copy()
    with pytest.raises(ValueError, match=match):
        call(X)
    np.testing.assert_array_equal(X, STARTS)


def test_plain_c_adam_as_the_bench_calls_it():
    # bench-loops passes fastopt.Adam's betas and eps; the C function's own defaults agree.
    for call in (lambda X: _bench_loops.plain_c_adam(X, 20),
                 lambda X: _objectives.plain_adam_rosenbrock2(X, 20, _bench_loops.LR)):
        X = STARTS.copy()
        call(X)
        for x0, x in zip(STARTS, X):
            want = reference_adam_run(x0, 20, **_hyper(lr=_bench_loops.LR))[0]
            np.testing.assert_allclose(x, want, rtol=1e-13, atol=0)


# -- asv_benchmarks -----------------------------------------------------------------------------

def _load(path, name, package=False):
    search = [str(path.parent)] if package else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=search)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@pytest.fixture(scope="module")
def asv_suite():
    """The asv benchmark package (asv_benchmarks/benchmarks), imported by path."""
    if not ASV.is_dir():
        pytest.skip("no asv_benchmarks folder (not a checkout)")
    name = "fastopt_asv_benchmarks"
    package = _load(ASV / "benchmarks" / "__init__.py", name, package=True)
    modules = {path.stem: _load(path, f"{name}.{path.stem}")
               for path in sorted((ASV / "benchmarks").glob("bench_*.py"))}
    yield package, modules
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def test_asv_minimize_overhead_adam_makes_the_reference_steps():
    module = _load(ASV / "minimize_overhead.py", "fastopt_asv_minimize_overhead")
    settings = [({}, _hyper(lr=1e-3)),  # as the script calls it
                ({"lr": 1e-2, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
                 _hyper(lr=1e-2, betas=(0.8, 0.99), eps=1e-6))]
    for kwargs, hyper in settings:
        for n in (2, 5):
            x0 = np.full(n, 0.5)
            x = module.numpy_adam_loop(x0, 25, **kwargs)
            want, _ = reference_adam_run(x0, 25, grad=rosen_der, **hyper)
            np.testing.assert_array_equal(x, want)
            assert np.array_equal(x0, np.full(n, 0.5))


def _benchmark_classes(modules):
    for module in modules.values():
        for name, obj in vars(module).items():
            if isinstance(obj, type) and hasattr(obj, "params") and any(
                    k.startswith(("time_", "track_", "peakmem_")) for k in dir(obj)):
                yield name, obj


def test_asv_suite_imports_and_its_parameters_are_sane(asv_suite):
    _, modules = asv_suite
    common = sys.modules["fastopt_asv_benchmarks.common"]
    classes = dict(_benchmark_classes(modules))
    # one <name>Step per optimizer in the suite's table, each an optimizer fastopt registers
    for name, (cls, kwargs) in common.OPTIMIZERS.items():
        assert f"{name}Step" in classes and cls in METHODS.values()
        cls(np.zeros(2), **kwargs).step(np.ones(2))
    assert set(common.OPTIMIZERS) >= {"SGD", "Momentum", "NAG", "Adagrad", "RMSprop",
                                      "Adadelta", "Adam", "AdamW"}
    assert list(classes["BaselineStep"].params[0]) == list(_bench.RULES)
    for name, klass in classes.items():
        params = klass.params if isinstance(klass.params[0], list) else [klass.params]
        assert len(params) == len(klass.param_names), name
        for values in params:
            assert values and len(set(map(repr, values))) == len(values), name
    # variants named in the asv classes are the ones bench-loops has
    llc = fastopt.problems.rosenbrock_lowlevel()
    assert (classes["OneProblem"].params[0]
            == list(_bench_loops.one_problem_variants(llc)))
    assert classes["Batch"].params[0] == list(_bench_loops.batch_variants(llc, 2, 1))


def test_asv_step_and_baseline_benchmarks_run(asv_suite):
    # the smallest setting of each optimizer step, and each baseline on a small array
    _, modules = asv_suite
    classes = dict(_benchmark_classes(modules))
    for name in sys.modules["fastopt_asv_benchmarks.common"].OPTIMIZERS:
        bench = classes[f"{name}Step"]()
        bench.setup("float64", 2**10, 1)
        bench.time_step("float64", 2**10, 1)
    ran = 0
    for rule in list(_bench.RULES):
        for implementation in classes["BaselineStep"].params[3]:
            bench = classes["BaselineStep"]()
            try:
                bench.setup(rule, "float32", 64, implementation)
            except NotImplementedError:
                continue
            bench.time_step(rule, "float32", 64, implementation)
            ran += 1
    assert ran >= 2 * len(_bench.RULES)


def test_asv_batch_benchmarks_run(asv_suite):
    # every variant of the Batch and OneProblem classes, called as asv calls them (setup, then
    # the timed methods), on a few problems
    _, modules = asv_suite
    classes = dict(_benchmark_classes(modules))
    for variant in classes["Batch"].params[0]:
        bench = classes["Batch"]()
        bench.sizes = (20, 1)
        bench.setup(variant)
        bench.time_batch(variant)
        assert bench.track_problems_per_second(variant) > 0
    assert any("block" in variant for variant in classes["Batch"].params[0])
    for variant in classes["OneProblem"].params[0]:
        bench = classes["OneProblem"]()
        bench.setup(variant)
        bench.time_one_problem(variant)
