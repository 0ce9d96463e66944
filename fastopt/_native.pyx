"""C-level objectives: a ``scipy.LowLevelCallable`` read into a function pointer.

A ``LowLevelCallable`` is a tuple whose first item is a ``PyCapsule``: its pointer is the
function, its name the C signature, its context the ``user_data`` pointer
(scipy/_lib/_ccallback.py). ctypes and numba spell the signature without ``const``
(``double (int, double *, double *, void *)``), Cython's ``__pyx_capi__`` capsules write
``double const *``; both name the same function type here.
"""

from cpython.pycapsule cimport (
    PyCapsule_CheckExact,
    PyCapsule_GetContext,
    PyCapsule_GetName,
    PyCapsule_GetPointer,
)

import functools
import re

# The accepted signatures, written without spaces or ``const`` (see _canonical); the gradient
# is written to, so ``const`` is accepted on x only.
SIGNATURES = {
    "double(int,double*,double*,void*)": False,
    "float(int,float*,float*,void*)": True,
}
SIGNATURE_DOC = ("double (int n, const double *x, double *grad, void *user_data) or "
                 "float (int n, const float *x, float *grad, void *user_data)")


@functools.cache
def _canonical(signature):
    """The signature without spaces, with ``const`` dropped where it is allowed (x)."""
    match = re.fullmatch(r"\s*(\w+)\s*\((.*)\)\s*", signature)
    if match is None:
        return None
    args = [" ".join(a.replace("*", " * ").split()) for a in match.group(2).split(",")]
    if len(args) == 4:
        for spelling in ("const ", " const"):  # const double * / double const *
            args[1] = args[1].replace(spelling, "")
    return match.group(1) + "(" + ",".join(a.replace(" ", "") for a in args) + ")"


cdef class NativeObjective:
    """A C objective ``f(n, x, grad, user_data)`` taken from a ``scipy.LowLevelCallable``."""

    def __cinit__(self, llc):
        capsule = tuple.__getitem__(llc, 0)
        if not PyCapsule_CheckExact(capsule):
            raise TypeError("fun: the LowLevelCallable does not hold a PyCapsule")
        name = PyCapsule_GetName(capsule)
        signature = "" if name == NULL else (<bytes>name).decode("ascii", "replace")
        single = SIGNATURES.get(_canonical(signature))
        if single is None:
            raise ValueError(f"fun: a LowLevelCallable must have the signature {SIGNATURE_DOC}; "
                             f"got {signature!r}")
        self.fun = PyCapsule_GetPointer(capsule, name)  # raises if the capsule is invalid
        if self.fun == NULL:
            raise ValueError("fun: the LowLevelCallable holds a NULL function pointer")
        self.user_data = PyCapsule_GetContext(capsule)
        self.single = single
        self.owner = llc  # keeps the function's module and user data alive

    @property
    def dtype(self):
        return "float32" if self.single else "float64"
