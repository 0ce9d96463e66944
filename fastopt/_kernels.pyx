# Update kernels of fastopt's optimizers: the module that loads them.
#
# * The kernels themselves, their design (one loop skeleton and one threading wrapper for
#   every rule; each rule a block of inputs, coefficients and an element update) and how to
#   add a rule are in _kernels_impl.pxi. They know no Python objects: they take raw pointers,
#   and ``apply_rule`` (declared in _kernels.pxd) runs an ``UpdateRule`` struct -- kind, lr
#   and the kernel's named inputs -- on them, dispatching on the kind once per call.
#   fastopt/_step.pyx checks the arrays (dtype, size, contiguity, writeability) and builds the
#   struct by name from each kernel's declaration; the loops run without bounds checks.
# * Instruction sets: the loops live in _kernels_impl.pxi, compiled twice: here for the
#   portable baseline (SSE2 on x86-64, what a wheel ships) and in fastopt._kernels_avx2 with
#   -mavx2. At import, ``apply_rule`` is pointed at the AVX2 build when the CPU has AVX2
#   (FASTOPT_DISPATCH=baseline forces the portable one). Both give bitwise identical results.
# * Threads: see the skeleton in _kernels_impl.pxi. In a forked child the kernels always run
#   serially (fastopt_thread_limit, src_c/fastopt_openmp.h).

cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer

import os

include "_kernels_impl.pxi"

cnp.import_array()


cdef extern from "fastopt_cpu.h" nogil:
    int fastopt_cpu_has_avx2()

ctypedef void (*apply_rule_fn)(const UpdateRule*, bint, void*, const void*, void**, Py_ssize_t,
                               const RuleStep*, int) noexcept nogil

ctypedef void (*apply_rule_list_fn)(const UpdateRule*, const ArrayRef*,
                                    Py_ssize_t) noexcept nogil

cdef apply_rule_fn _APPLY = apply_rule_impl
cdef apply_rule_list_fn _APPLY_LIST = apply_rule_list_impl
_ISA = "baseline"
_avx2_module = None


cdef void apply_rule(const UpdateRule* rule, bint single, void* params, const void* grad,
                     void** state, Py_ssize_t n, const RuleStep* step,
                     int n_threads) noexcept nogil:
    _APPLY(rule, single, params, grad, state, n, step, n_threads)


cdef void apply_rule_list(const UpdateRule* rule, const ArrayRef* arrays,
                          Py_ssize_t n) noexcept nogil:
    _APPLY_LIST(rule, arrays, n)


cdef apply_rule_fn _AVX2_APPLY = NULL
cdef apply_rule_list_fn _AVX2_APPLY_LIST = NULL


def _load_avx2():
    """Load the AVX2 build when the CPU has AVX2 and it was built; True on success."""
    global _AVX2_APPLY, _AVX2_APPLY_LIST, _avx2_module
    if not fastopt_cpu_has_avx2():
        return False
    try:
        from fastopt import _kernels_avx2
    except ImportError:  # not built (not x86-64, or not gcc/clang)
        return False
    if _kernels_avx2.declarations() != declarations():  # a stale build of another source
        return False
    capi = _kernels_avx2.__pyx_capi__
    if "apply_rule_impl" not in capi or "apply_rule_list_impl" not in capi:  # (stale too)
        return False
    # Same source, same struct layout: the AVX2 functions take our UpdateRule as is.
    capsule = capi["apply_rule_impl"]
    _AVX2_APPLY = <apply_rule_fn>PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule))
    capsule = capi["apply_rule_list_impl"]
    _AVX2_APPLY_LIST = <apply_rule_list_fn>PyCapsule_GetPointer(capsule,
                                                                PyCapsule_GetName(capsule))
    _avx2_module = _kernels_avx2
    return True


def kernel_isa():
    """The instruction set of the kernels in use: ``"avx2"`` or ``"baseline"``."""
    return _ISA


def available_isas():
    """The kernel builds this CPU can run: ``["baseline"]`` or ``["baseline", "avx2"]``."""
    return ["baseline", "avx2"] if _AVX2_APPLY != NULL else ["baseline"]


def _set_isa(str isa):
    """Use the ``"baseline"`` or ``"avx2"`` kernels from now on; returns the previous choice.
    For tests and benchmarks, not while other threads step optimizers."""
    global _APPLY, _APPLY_LIST, _ISA
    if isa not in available_isas():
        raise ValueError(f"kernel build {isa!r} is not available here: {available_isas()}")
    previous = _ISA
    _APPLY = _AVX2_APPLY if isa == "avx2" else apply_rule_impl
    _APPLY_LIST = _AVX2_APPLY_LIST if isa == "avx2" else apply_rule_list_impl
    _ISA = isa
    return previous


if _load_avx2() and os.environ.get("FASTOPT_DISPATCH", "auto").strip().lower() != "baseline":
    _set_isa("avx2")


cdef Py_ssize_t parallel_threshold() noexcept nogil:
    return PARALLEL_THRESHOLD


cdef void advance_rule(const UpdateRule* rule, RuleStep* step) noexcept nogil:
    # Once per update, in double: the portable build's is as good as any (no loop to
    # vectorise), so the AVX2 module's copy is not used.
    _advance(rule, step)


cdef void project_rule(const UpdateRule* rule, const RuleStep* step, bint single,
                       void* params, void** state, const void* lower, const void* upper,
                       Py_ssize_t n) noexcept nogil:
    # Only the minimize loops with bounds call it, once per update: the portable build's.
    _project(rule, step, single, params, state, lower, upper, n)


def get_parallel_threshold():
    """Smallest array size (elements) stepped with several threads."""
    return PARALLEL_THRESHOLD


def _set_parallel_threshold(Py_ssize_t size):
    """Set the threshold (in every kernel build); returns the old one. For measuring it
    (asv_benchmarks/threshold.py), not while other threads step optimizers."""
    if _avx2_module is not None:
        _avx2_module._set_threshold(size)
    return _set_threshold(size)



def axpy(cnp.ndarray y not None, cnp.ndarray x not None, double a, int n_threads):
    """``y += a * x`` in place (contiguous arrays of one float dtype): the benchmark's
    bandwidth reference, compiled and threaded like the update rules (baseline build)."""
    if (cnp.PyArray_TYPE(y) != cnp.PyArray_TYPE(x) or cnp.PyArray_SIZE(y) != cnp.PyArray_SIZE(x)
            or not cnp.PyArray_IS_C_CONTIGUOUS(y) or not cnp.PyArray_IS_C_CONTIGUOUS(x)
            or not cnp.PyArray_ISWRITEABLE(y)
            or cnp.PyArray_TYPE(y) not in (cnp.NPY_FLOAT, cnp.NPY_DOUBLE)):
        raise ValueError("axpy needs two contiguous arrays of one float dtype and size")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(y)
    cdef void* yp = cnp.PyArray_DATA(y)
    cdef void* xp = cnp.PyArray_DATA(x)
    with nogil:
        if cnp.PyArray_TYPE(y) == cnp.NPY_FLOAT:
            axpy_step(<float*>yp, <const float*>xp, a, n, n_threads)
        else:
            axpy_step(<double*>yp, <const double*>xp, a, n, n_threads)
