"""C-level objectives: a ``scipy.LowLevelCallable`` read into a function pointer.

A ``LowLevelCallable`` is a tuple whose first item is a ``PyCapsule``: its pointer is the
function, its name the C signature, its context the ``user_data`` pointer
(scipy/_lib/_ccallback.py). ctypes and numba spell the signature without ``const``
(``double (int, double *, double *, void *)``), Cython's ``__pyx_capi__`` capsules write
``double const *``; both name the same function type here.

Two families of signatures: one problem per call (``fastopt.minimize``, ``minimize_batch``),
and block objectives (``minimize_batch`` only), ``void f(int m, int n, const double *X,
double *F, double *G, void *user_data)``: m problems per call, variable-major (variable j of
problem i is ``X[j*m + i]``, its gradient ``G[j*m + i]``, its value ``F[i]``).
"""

from cpython.pycapsule cimport (
    PyCapsule_CheckExact,
    PyCapsule_GetContext,
    PyCapsule_GetName,
    PyCapsule_GetPointer,
)

import functools
import re

# The accepted signatures, written without spaces or ``const`` (see _canonical): (single,
# block). The gradient (and F) are written to, so ``const`` is accepted on x (X) only.
SIGNATURES = {
    "double(int,double*,double*,void*)": (False, False),
    "float(int,float*,float*,void*)": (True, False),
    "void(int,int,double*,double*,double*,void*)": (False, True),
    "void(int,int,float*,float*,float*,void*)": (True, True),
}
SCALAR_DOC = ("double (int n, const double *x, double *grad, void *user_data) or "
              "float (int n, const float *x, float *grad, void *user_data)")
BLOCK_DOC = ("void (int m, int n, const double *X, double *F, double *G, void *user_data) or "
             "void (int m, int n, const float *X, float *F, float *G, void *user_data)")
SIGNATURE_DOC = (f"{SCALAR_DOC} (one problem), or {BLOCK_DOC} (a block of m problems, "
                 "minimize_batch only)")


@functools.cache
def _canonical(signature):
    """The signature without spaces, with ``const`` dropped where it is allowed (x)."""
    match = re.fullmatch(r"\s*(\w+)\s*\((.*)\)\s*", signature)
    if match is None:
        return None
    args = [" ".join(a.replace("*", " * ").split()) for a in match.group(2).split(",")]
    if len(args) in (4, 6):  # x is args[1] (one problem) or args[2] (a block)
        for spelling in ("const ", " const"):  # const double * / double const *
            x = 1 if len(args) == 4 else 2
            args[x] = args[x].replace(spelling, "")
    return match.group(1) + "(" + ",".join(a.replace(" ", "") for a in args) + ")"


cdef class NativeObjective:
    """A C objective taken from a ``scipy.LowLevelCallable``: ``f(n, x, grad, user_data)``, or
    a block objective ``f(m, n, X, F, G, user_data)`` (``block``)."""

    def __cinit__(self, llc):
        capsule = tuple.__getitem__(llc, 0)
        if not PyCapsule_CheckExact(capsule):
            raise TypeError("fun: the LowLevelCallable does not hold a PyCapsule")
        name = PyCapsule_GetName(capsule)
        signature = "" if name == NULL else (<bytes>name).decode("ascii", "replace")
        kind = SIGNATURES.get(_canonical(signature))
        if kind is None:
            raise ValueError(f"fun: a LowLevelCallable must have the signature {SIGNATURE_DOC}; "
                             f"got {signature!r}")
        self.fun = PyCapsule_GetPointer(capsule, name)  # raises if the capsule is invalid
        if self.fun == NULL:
            raise ValueError("fun: the LowLevelCallable holds a NULL function pointer")
        self.user_data = PyCapsule_GetContext(capsule)
        self.single, self.block = kind
        self.owner = llc  # keeps the function's module and user data alive

    @property
    def dtype(self):
        return "float32" if self.single else "float64"

    @property
    def is_block(self):
        return bool(self.block)
