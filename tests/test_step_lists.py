"""Stepping lists of many arrays (fastopt/_step.pyx's one pass of checks over the lists, the
kernels' apply_rule_list, small arrays shared among threads): bitwise each array stepped on
its own, whatever the threads and the mix of sizes and dtypes; a bad array anywhere in the
list raises its own error and nothing is modified."""

import numpy as np
import pytest

from fastopt import _kernels

from _registry import OPTIMIZERS, scalar_names, state_arrays, variant_cases

CASES = [pytest.param(case, id=case.name) for case in OPTIMIZERS]

# Small arrays (shared whole among the threads once their total passes the threshold, which
# the tests lower to THRESHOLD), arrays above it (split among the threads), empty and 0-d ones.
THRESHOLD = 64
SHAPES = [(37,)] * 8 + [(0,), (), (3, 5), (150,), (1,), (70,)] + [(20,)] * 6
N_BAD = 40  # the list the bad-input tests use: 40 arrays of 5, the bad one at BAD
BAD = 20


@pytest.fixture
def low_threshold():
    """Lower the parallel threshold, so that small lists take the threaded paths."""
    old = _kernels._set_parallel_threshold(THRESHOLD)
    yield
    _kernels._set_parallel_threshold(old)


def _dtypes(kind):
    if kind == "mixed":  # float32 and float64 arrays in one list
        return [np.float32 if i % 3 else np.float64 for i in range(len(SHAPES))]
    return [np.dtype(kind)] * len(SHAPES)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("kind", ["float32", "float64", "mixed"])
@pytest.mark.parametrize("case, kwargs", variant_cases())
def test_list_is_bitwise_each_array_alone(case, kwargs, kind, n_threads, low_threshold, rng):
    dtypes = _dtypes(kind)
    params = [rng.standard_normal(s).astype(d) for s, d in zip(SHAPES, dtypes)]
    alone = [p.copy() for p in params]
    opt = case.cls(params, n_threads=n_threads, **kwargs)
    singles = [case.cls(p, n_threads=1, **kwargs) for p in alone]
    for _ in range(3):
        grads = [rng.standard_normal(s).astype(d) for s, d in zip(SHAPES, dtypes)]
        opt.step(grads)
        for single, g in zip(singles, grads):
            single.step(g)
    for i, (p, q) in enumerate(zip(params, alone)):
        np.testing.assert_array_equal(p, q, err_msg=f"params[{i}]")
        for name, value in singles[i].state[0].items():
            np.testing.assert_array_equal(opt.state[i][name], value, err_msg=f"{i} {name}")


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("case", [c for c in CASES if c.values[0].cls._scalars])
def test_running_scalars_of_their_own_per_array(case, n_threads, low_threshold, rng):
    # Arrays whose running scalars differ (runs of equal ones, the shared RuleStep) each
    # advance and use their own, as when stepped alone.
    params = [rng.standard_normal(37) for _ in range(6)]
    alone = [p.copy() for p in params]
    opt = case.cls(params, n_threads=n_threads)
    singles = [case.cls(p) for p in alone]
    grads = [rng.standard_normal(37) for _ in params]
    opt.step(grads)
    for single, g in zip(singles, grads):
        single.step(g)
    for i in (2, 3, 5):
        for name in scalar_names(case.cls):
            value = np.array(opt.state[i][name] * 0.5 + 0.25)
            opt.state[i][name] = value
            singles[i].state[0][name] = value.copy()
    for _ in range(3):
        grads = [rng.standard_normal(37) for _ in params]
        opt.step(grads)
        for single, g in zip(singles, grads):
            single.step(g)
    for i, (p, q) in enumerate(zip(params, alone)):
        np.testing.assert_array_equal(p, q, err_msg=f"params[{i}]")
        for name, value in singles[i].state[0].items():
            np.testing.assert_array_equal(opt.state[i][name], value, err_msg=f"{i} {name}")


def _snapshot(opt, params):
    state = [{k: np.asarray(v).tobytes() for k, v in s.items()} for s in opt.state]
    return opt.step_count, state, [p.tobytes() for p in params]


def _bad_lists(params):
    """(grads, error, match): a long list with one bad gradient in the middle."""
    good = [np.ones_like(p) for p in params]

    def with_bad(value):
        grads = list(good)
        grads[BAD] = value
        return grads

    return [
        (with_bad(np.ones(5, dtype=np.float32)), TypeError,
         rf"grads\[{BAD}\] has dtype float32"),
        (with_bad(np.ones(6)), ValueError, rf"grads\[{BAD}\] has shape \(6,\)"),
        (with_bad(np.ones((5, 1))), ValueError, rf"grads\[{BAD}\] has shape \(5, 1\)"),
        (with_bad(None), TypeError, rf"grads\[{BAD}\] must be a numpy.ndarray"),
        (with_bad(np.ones(5).astype(">f8")), TypeError, rf"grads\[{BAD}\] has dtype"),
        (with_bad(params[BAD]), ValueError, rf"grads\[{BAD}\] shares memory with its param"),
        (with_bad(params[3]), ValueError, rf"grads\[{BAD}\] shares memory with params\[3\]"),
        (tuple(with_bad(params[N_BAD - 1])), ValueError,
         rf"grads\[{BAD}\] shares memory with params\[{N_BAD - 1}\]"),
        (good[:-1], ValueError, f"grads has {N_BAD - 1} arrays, params has {N_BAD}"),
    ]


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("case", CASES)
def test_bad_gradient_in_the_middle_modifies_nothing(case, n_threads, low_threshold):
    params = [np.linspace(-1, 1, 5) + i for i in range(N_BAD)]
    opt = case.cls(params, n_threads=n_threads)
    for _ in range(2):  # once before any state exists, once after
        for grads, error, match in _bad_lists(params):
            before = _snapshot(opt, params)
            with pytest.raises(error, match=match):
                opt.step(grads)
            assert _snapshot(opt, params) == before
        opt.step([np.ones(5) for _ in params])
    # (a non-contiguous gradient is read through a copy, wherever it is)
    twin = case.cls([p.copy() for p in params], n_threads=n_threads)
    twin.load_state_dict(opt.state_dict())
    grads = [np.full(5, 0.5) for _ in params]
    strided = list(grads)
    strided[BAD] = np.full(10, 0.5)[::2]
    opt.step(strided)
    twin.step(grads)
    for p, q in zip(params, twin.params):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("case", CASES)
def test_array_changed_in_place_in_the_middle_modifies_nothing(case, n_threads,
                                                                low_threshold):
    params = [np.linspace(-1, 1, 6) + i for i in range(N_BAD)]
    opt = case.cls(params, n_threads=n_threads)
    grads = [np.ones(6) for _ in params]
    opt.step(grads)
    arrays = [(f"params\\[{BAD}\\]", params[BAD])] + [
        (rf"state\[{BAD}\]\['{name}'\]", a) for name, a in state_arrays(opt, BAD).items()
        if a.shape == (6,)]
    for what, a in arrays:
        for change, error, match in [
            (lambda a: setattr(a, "shape", (2, 3)), ValueError, "has shape"),
            (lambda a: setattr(a.flags, "writeable", False), ValueError,
             "is no longer writeable"),
        ]:
            before = _snapshot(opt, params)
            change(a)
            with pytest.raises(error, match=f"{what} {match}"):
                opt.step(grads)
            a.shape = (6,)
            a.flags.writeable = True
            assert _snapshot(opt, params) == before
    opt.step(grads)
    assert opt.step_count == 2
