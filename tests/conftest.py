"""Shared fixtures and parameters: dtypes, tolerances, sizes on both sides of the OpenMP
threshold, and the gradient sequences the kernels are checked on."""

import numpy as np
import pytest

from fastopt._kernels import get_parallel_threshold

DTYPES = [np.float32, np.float64]

# Agreement with the NumPy reference: a few hundred ulps over many steps.
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}

# 0 and 1 (edge cases), small, and above the threshold by an odd amount (uneven chunks).
SIZES = [0, 1, 37, get_parallel_threshold() + 123]

# Scale of the gradient at each step: ordinary, exactly zero and very large steps.
GRADIENT_SCALES = [1.0, 0.5, 0.0, 2.0, 1e6, 1.0, 0.1, 0.0, 3.0, 1.0, 1e-3, 1.0] * 3


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


def gradient_sequence(rng, shape, dtype, scales=GRADIENT_SCALES):
    """Random gradients with ordinary, zero and huge steps, some elements exactly zero."""
    grads = []
    for scale in scales:
        g = rng.standard_normal(shape) * scale
        g[rng.random(shape) < 0.1] = 0.0
        grads.append(g.astype(dtype))
    return grads


def assert_close(actual, desired, dtype):
    rtol = RTOL[np.dtype(dtype)]
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol)
