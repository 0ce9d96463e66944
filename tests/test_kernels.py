"""Every optimizer's kernel against its NumPy reference: every flag setting, both dtypes,
sizes on both sides of the OpenMP threshold (and 0 and 1), 1 and 2 threads, many steps."""

import numpy as np
import pytest

from fastopt import _kernels

from conftest import DTYPES, SIZES, assert_close, gradient_sequence
from _registry import variant_cases


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case, kwargs", variant_cases())
def test_matches_reference(case, kwargs, dtype, size, n_threads, rng):
    params = rng.standard_normal(size).astype(dtype)
    expected = params.copy()
    opt = case.cls(params, n_threads=n_threads, **kwargs)
    hyper = opt.hyperparameters
    ref_state = {}
    for t, grad in enumerate(gradient_sequence(rng, size, dtype), start=1):
        opt.step(grad)
        expected = case.reference(expected, grad, ref_state, t, **hyper)
        assert expected.dtype == dtype
        assert_close(params, expected, dtype)
    for name, value in ref_state.items():
        assert_close(opt.state[0][name], value, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case, kwargs", variant_cases())
def test_thread_count_does_not_change_results(case, kwargs, dtype, rng):
    size = 3 * SIZES[-1] + 5
    start = rng.standard_normal(size).astype(dtype)
    grads = gradient_sequence(rng, size, dtype)[:8]
    results = []
    for n_threads in (1, 2, 3, 4):  # 3: chunks of unequal size
        params = start.copy()
        opt = case.cls(params, n_threads=n_threads, **kwargs)
        for g in grads:
            opt.step(g)
        results.append(params)
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case, kwargs", variant_cases())
def test_list_of_arrays_of_any_shape(case, kwargs, dtype, rng):
    shapes = [(3, 4), (), (0,), (2, 1, 5)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    singles = [p.copy() for p in params]
    opt = case.cls(params, **kwargs)
    single_opts = [case.cls(p, **kwargs) for p in singles]
    for _ in range(5):
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        opt.step(grads)
        for o, g in zip(single_opts, grads):
            o.step(g)
    for p, s, shape in zip(params, singles, shapes):
        assert p.shape == shape and p.dtype == dtype
        np.testing.assert_array_equal(p, s)


@pytest.mark.skipif("avx2" not in _kernels.available_isas(), reason="no AVX2 kernel build here")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case, kwargs", variant_cases())
def test_avx2_and_baseline_builds_agree_bitwise(case, kwargs, dtype, rng):
    size = 1000 + 7  # a remainder after the vector loop
    start = rng.standard_normal(size).astype(dtype)
    grads = gradient_sequence(rng, size, dtype)
    results = []
    previous = _kernels.kernel_isa()
    try:
        for isa in ("baseline", "avx2"):
            _kernels._set_isa(isa)
            params = start.copy()
            opt = case.cls(params, **kwargs)
            for g in grads:
                opt.step(g)
            results.append(params)
    finally:
        _kernels._set_isa(previous)
    np.testing.assert_array_equal(results[0], results[1])
