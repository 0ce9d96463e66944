"""Property tests (hypothesis): over shapes, dtypes, hyperparameters and gradient sequences,
the kernels agree with the NumPy references, dtypes and array identity are kept, and
zero-size arrays in a list do not stop the others from updating."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from _registry import OPTIMIZERS, accepts
from conftest import assert_close

CASES = {case.name: case for case in OPTIMIZERS}

# Each class's hyperparameters, drawn from the sample ranges of its record; draws the
# class refuses as a whole (SGD's nesterov needs momentum and no dampening) are skipped.

def _strategy(sample):
    if sample == "bool":
        return st.booleans()
    if isinstance(sample, range):  # an int hyperparameter
        return st.integers(sample.start, sample.stop - 1)
    if isinstance(sample[0], tuple):
        return st.tuples(*(_strategy(s) for s in sample))
    return st.floats(*sample)


HYPER = {
    case.name: st.fixed_dictionaries(
        {h.name: _strategy(h.sample) for h in case.cls.record.arguments}
    ).filter(lambda hyper, cls=case.cls: accepts(cls, hyper))
    for case in OPTIMIZERS
}

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
