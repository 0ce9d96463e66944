"""Block C objectives for ``fastopt.minimize_batch``: one call evaluates many problems,
variable-major (``X[j*m + i]``). The block Rosenbrock must give each problem bitwise what the
scalar one gives, and minimize_batch with a block objective each problem bitwise what the
scalar C objective (and fastopt.minimize alone) gives."""

import ctypes

import numpy as np
import pytest

import fastopt

DTYPES = {"float64": (np.float64, ctypes.c_double), "float32": (np.float32, ctypes.c_float)}


def _pointer(llc):
    """The function pointer a LowLevelCallable's capsule holds."""
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    capsule = tuple.__getitem__(llc, 0)
    return get(capsule, get_name(capsule))


def _scalar(dtype):
    np_t, c_t = DTYPES[dtype]
    proto = ctypes.CFUNCTYPE(c_t, ctypes.c_int, ctypes.POINTER(c_t), ctypes.POINTER(c_t),
                             ctypes.c_void_p)
    fun = proto(_pointer(fastopt.problems.rosenbrock_lowlevel(dtype)))

    def call(x):
        x = np.ascontiguousarray(x, np_t)
        g = np.empty_like(x)
        f = fun(x.size, x.ctypes.data_as(ctypes.POINTER(c_t)), g.ctypes.data_as(ctypes.POINTER(c_t)),
                None)
        return np_t(f), g
    return call


def _block(dtype):
    np_t, c_t = DTYPES[dtype]
    p = ctypes.POINTER(c_t)
    proto = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, p, p, p, ctypes.c_void_p)
    fun = proto(_pointer(fastopt.problems.rosenbrock_block_lowlevel(dtype)))

    def call(X):  # X: (m, n) row-major; the call sees it variable-major
        XT = np.ascontiguousarray(np.asarray(X, np_t).T)
        F = np.full(X.shape[0], np.nan, np_t)
        GT = np.full_like(XT, np.nan)
        fun(X.shape[0], X.shape[1], XT.ctypes.data_as(p), F.ctypes.data_as(p),
            GT.ctypes.data_as(p), None)
        return F, np.ascontiguousarray(GT.T)
    return call


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", [2, 3, 7, 16])
@pytest.mark.parametrize("m", [1, 5, 37, 300])
def test_block_rosenbrock_bitwise(dtype, n, m):
    rng = np.random.default_rng(n * 1000 + m)
    X = rng.uniform(-3, 3, (m, n)).astype(DTYPES[dtype][0])
    X[0, 0] = 1e30  # large values too (inf in float32)
    F, G = _block(dtype)(X)
    scalar = _scalar(dtype)
    for i in range(m):
        f, g = scalar(X[i])
        assert F[i].tobytes() == f.tobytes()
        assert G[i].tobytes() == g.tobytes()


def test_block_lowlevel_signatures():
    llc = fastopt.problems.rosenbrock_block_lowlevel()
    assert llc.signature == "void (int, int, double const *, double *, double *, void *)"
    llc = fastopt.problems.rosenbrock_block_lowlevel(np.float32)
    assert llc.signature == "void (int, int, float const *, float *, float *, void *)"
    with pytest.raises(ValueError, match="dtype must be float64 or float32"):
        fastopt.problems.rosenbrock_block_lowlevel("int32")
