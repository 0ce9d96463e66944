"""Property tests (hypothesis): over shapes, dtypes, hyperparameters and gradient sequences,
the kernels agree with the NumPy references, dtypes and array identity are kept, and
zero-size arrays in a list do not stop the others from updating."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from _registry import OPTIMIZERS
from conftest import assert_close

CASES = {case.name: case for case in OPTIMIZERS}

# Each class's hyperparameters, drawn within their valid ranges.
unit = st.floats(0.0, 0.99)
positive_lr = st.floats(1e-4, 0.5)
HYPER = {
    "SGD": st.fixed_dictionaries({"lr": positive_lr, "momentum": unit,
                                  "dampening": st.floats(0.0, 1.0),
                                  "weight_decay": st.floats(0.0, 0.5),
                                  "maximize": st.booleans()}),
    "NAG": st.fixed_dictionaries({"lr": positive_lr, "momentum": st.floats(0.01, 0.99),
                                  "weight_decay": st.floats(0.0, 0.5),
                                  "maximize": st.booleans()}),
    "Adagrad": st.fixed_dictionaries({"lr": positive_lr, "lr_decay": st.floats(0.0, 1.0),
                                      "weight_decay": st.floats(0.0, 0.5),
                                      "initial_accumulator_value": st.floats(0.0, 1.0),
                                      "eps": st.floats(1e-10, 1e-3),
                                      "maximize": st.booleans()}),
    "RMSprop": st.fixed_dictionaries({"lr": positive_lr, "alpha": unit,
                                      "eps": st.floats(1e-8, 1e-3),
                                      "weight_decay": st.floats(0.0, 0.5), "momentum": unit,
                                      "centered": st.booleans(), "maximize": st.booleans()}),
    "Adadelta": st.fixed_dictionaries({"lr": st.floats(0.01, 2.0), "rho": unit,
                                       "eps": st.floats(1e-6, 1e-3),
                                       "weight_decay": st.floats(0.0, 0.5),
                                       "maximize": st.booleans()}),
    "Adam": st.fixed_dictionaries({"lr": positive_lr, "betas": st.tuples(unit, unit),
                                   "eps": st.floats(1e-8, 1e-3),
                                   "weight_decay": st.floats(0.0, 0.5),
                                   "amsgrad": st.booleans(), "maximize": st.booleans()}),
}
HYPER["AdamW"] = HYPER["Adam"]
HYPER["Momentum"] = HYPER["SGD"]

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)
dtypes = st.sampled_from([np.float32, np.float64])


@st.composite
def runs(draw):
    name = draw(st.sampled_from(sorted(CASES)))
    dtype = draw(dtypes)
    shape = draw(shapes)
    steps = draw(st.integers(1, 6))
    values = st.floats(-10, 10, width=32)
    params = draw(hnp.arrays(dtype, shape, elements=values))
    grads = [draw(hnp.arrays(dtype, shape, elements=values)) for _ in range(steps)]
    return CASES[name], draw(HYPER[name]), params, grads


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_kernels_agree_with_reference_and_keep_dtype_and_identity(run):
    case, hyper, params, grads = run
    expected = params.copy()
    opt = case.cls(params, **hyper)
    full = opt.hyperparameters
    state = {}
    for t, grad in enumerate(grads, start=1):
        assert opt.step(grad) is None
        with np.errstate(all="ignore"):  # large steps may overflow: both sides alike
            expected = case.reference(expected, grad, state, t, **full)
    assert opt.params is params and params.dtype == expected.dtype
    assert_close(params, expected, params.dtype)


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(sorted(CASES)), dtype=dtypes,
       sizes=st.lists(st.sampled_from([0, 0, 1, 3, 8]), min_size=2, max_size=6))
def test_zero_size_arrays_do_not_stop_the_others(name, dtype, sizes):
    case = CASES[name]
    params = [np.ones(n, dtype) for n in sizes]
    singles = [p.copy() for p in params]
    case.cls(params, lr=0.1).step([np.full(n, 0.5, dtype) for n in sizes])
    for p, single, n in zip(params, singles, sizes):
        case.cls(single, lr=0.1).step(np.full(n, 0.5, dtype))
        np.testing.assert_array_equal(p, single)
        if n:
            assert not np.array_equal(p, np.ones(n, dtype))
