"""C-level stepping of optimizers: gradient checks and the ``Rule`` extension type.

``Optimizer.step`` (fastopt/_base.py) makes two calls here: ``check_grads`` validates every
gradient against its parameter before anything is touched, then ``Rule.apply`` runs the
kernel on each array through ``apply_rule`` (fastopt/_kernels.pxd). Both work on the NumPy C
API, so a step on a small array costs a few hundred nanoseconds, not the microseconds that
NumPy attribute lookups from Python would. ``Rule`` wraps the ``UpdateRule`` struct that the
minimize loop also uses, so every consumer runs an optimizer through one C-level entry.
"""

cimport numpy as cnp
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython.parallel cimport prange
from fastopt._kernels cimport (
    MAX_STATE,
    RULE_ADADELTA,
    RULE_ADAGRAD,
    RULE_ADAM,
    RULE_RMSPROP,
    RULE_SGD,
    RuleKind,
    RuleStep,
    UpdateRule,
    apply_rule,
    parallel_threshold,
    rule_step_at,
)
from fastopt._openmp cimport fastopt_thread_limit

import numpy as np

cnp.import_array()

# Arrays at least this large are updated with the GIL released (other Python threads may run);
# below it, releasing and re-taking the GIL would cost more than the update itself.
cdef Py_ssize_t NOGIL_THRESHOLD = 2048

_KINDS = {
    "sgd": RULE_SGD,
    "adagrad": RULE_ADAGRAD,
    "rmsprop": RULE_RMSPROP,
    "adadelta": RULE_ADADELTA,
    "adam": RULE_ADAM,
}


# ---------------------------------------------------------------------------------------------
# Gradient checks

cdef str _grad_name(Py_ssize_t index):
    return "grads" if index < 0 else f"grads[{index}]"


cdef inline bint _spans_overlap(cnp.ndarray a, cnp.ndarray b):
    """Whether the memory of two C-contiguous arrays overlaps."""
    cdef char* a0 = <char*>cnp.PyArray_DATA(a)
    cdef char* b0 = <char*>cnp.PyArray_DATA(b)
    cdef Py_ssize_t na = cnp.PyArray_NBYTES(a), nb = cnp.PyArray_NBYTES(b)
    return na > 0 and nb > 0 and a0 < b0 + nb and b0 < a0 + na


cdef object _check_grad(object grad, cnp.ndarray param, Py_ssize_t index):
    """Return ``grad`` (or a contiguous copy) after checking it against ``param``."""
    cdef cnp.ndarray g
    cdef int d
    if not cnp.PyArray_Check(grad):
        raise TypeError(f"{_grad_name(index)} must be a numpy.ndarray, "
                        f"got {type(grad).__name__}")
    g = <cnp.ndarray>grad
    if (cnp.PyArray_TYPE(g) != cnp.PyArray_TYPE(param)
            or not cnp.PyArray_ISNOTSWAPPED(g)):
        raise TypeError(f"{_grad_name(index)} has dtype {g.dtype}, "
                        f"its parameter has {param.dtype}")
    if cnp.PyArray_NDIM(g) != cnp.PyArray_NDIM(param):
        _raise_shape(g, param, index)
    for d in range(cnp.PyArray_NDIM(g)):
        if cnp.PyArray_DIM(g, d) != cnp.PyArray_DIM(param, d):
            _raise_shape(g, param, index)
    if not cnp.PyArray_IS_C_CONTIGUOUS(g):
        # Read through a contiguous copy: it cannot alias the parameter any more.
        return np.ascontiguousarray(g)
    if _spans_overlap(g, param):
        raise ValueError(f"{_grad_name(index)} shares memory with its parameter: "
                         "pass a separate array")
    return g


cdef int _raise_shape(object g, object param, Py_ssize_t index) except -1:
    raise ValueError(f"{_grad_name(index)} has shape {g.shape}, its parameter has {param.shape}")


cdef Py_ssize_t _overlapping_param(cnp.ndarray g, cnp.ndarray spans):
    """Index of the parameter whose memory overlaps g's, or -1.

    ``spans`` holds the parameters' byte ranges (start, end, index), sorted and disjoint
    (fastopt._validation.memory_spans): a binary search finds the one range that could
    overlap, so a list of k gradients is checked in O(k log k).
    """
    cdef long long g0 = <long long><size_t>cnp.PyArray_DATA(g)
    cdef long long g1 = g0 + cnp.PyArray_NBYTES(g)
    cdef const long long* rows = <const long long*>cnp.PyArray_DATA(spans)
    cdef Py_ssize_t lo = 0, hi = cnp.PyArray_DIM(spans, 0), mid
    if g1 == g0:
        return -1
    while lo < hi:  # first range starting at or after g's end
        mid = (lo + hi) // 2
        if rows[3 * mid] < g1:
            lo = mid + 1
        else:
            hi = mid
    if lo > 0 and rows[3 * (lo - 1) + 1] > g0:
        return rows[3 * (lo - 1) + 2]
    return -1


def check_grads(grads, list params, bint single, spans=None):
    """Validate gradients against the parameters they update; return the list to use.

    ``grads`` mirrors ``params``: one array when the optimizer was built on one array, else a
    list or tuple of the same length; each gradient has its parameter's dtype and shape and
    does not overlap it, nor (given ``spans``, see memory_spans) any other parameter. Non-contiguous gradients are read through a contiguous copy;
    gradients are never modified.
    """
    cdef Py_ssize_t i, n = len(params)
    if single:
        return [_check_grad(grads, params[0], -1)]
    if not isinstance(grads, (list, tuple)):
        raise TypeError(f"grads must be a list of {n} arrays (like params), "
                        f"got {type(grads).__name__}")
    if len(grads) != n:
        raise ValueError(f"grads has {len(grads)} arrays, params has {n}")
    checked = [_check_grad(grads[i], params[i], i) for i in range(n)]
    if spans is not None:
        # A gradient that is (part of) another parameter would be overwritten before, or
        # while, it is read: list updates may run in any order, on several threads.
        for i in range(n):
            if checked[i] is grads[i]:
                j = _overlapping_param(<cnp.ndarray>checked[i], <cnp.ndarray>spans)
                if j >= 0 and j != i:
                    raise ValueError(f"grads[{i}] shares memory with params[{j}]: pass a "
                                     "separate array")
    return checked


# ---------------------------------------------------------------------------------------------
# Rule

cdef class Rule:
    """An update rule's kind and scalars, as the kernels take them (``UpdateRule``).

    Parameters
    ----------
    kind : {"sgd", "adagrad", "rmsprop", "adadelta", "adam"}
    **scalars
        The ``UpdateRule`` fields the rule uses (already validated by the optimizer class);
        the others stay 0 / False.
    """

    def __cinit__(self, str kind, *, double lr=0.0, double momentum=0.0, double dampening=0.0,
                  double weight_decay=0.0, double lr_decay=0.0, double eps=0.0,
                  double alpha=0.0, double rho=0.0, double beta1=0.0, double beta2=0.0,
                  bint nesterov=False, bint maximize=False, bint centered=False,
                  bint amsgrad=False, bint decoupled_weight_decay=False):
        if kind not in _KINDS:
            raise ValueError(f"unknown rule kind {kind!r}")
        self.rule.kind = <RuleKind><int>_KINDS[kind]
        self.rule.lr = lr
        self.rule.momentum = momentum
        self.rule.dampening = dampening
        self.rule.weight_decay = weight_decay
        self.rule.lr_decay = lr_decay
        self.rule.eps = eps
        self.rule.alpha = alpha
        self.rule.rho = rho
        self.rule.beta1 = beta1
        self.rule.beta2 = beta2
        self.rule.nesterov = nesterov
        self.rule.maximize = maximize
        self.rule.centered = centered
        self.rule.amsgrad = amsgrad
        self.rule.decoupled_weight_decay = decoupled_weight_decay

    def enter(self):
        """Mark the optimizer as being stepped; RuntimeError if another thread already is.

        Checked and set with the GIL held, so two threads cannot both pass; ``leave()``
        clears it. ``Optimizer.step`` brackets its state changes with the two.
        """
        if self.busy:
            raise RuntimeError("step() is already running in another thread for this "
                               "optimizer: one optimizer must not be stepped from two threads "
                               "at once (use one optimizer per thread)")
        self.busy = True

    def leave(self):
        self.busy = False

    @property
    def lr(self):
        return self.rule.lr

    @lr.setter
    def lr(self, double value):
        self.rule.lr = value

    def apply(self, list params, list grads, list slots, Py_ssize_t step, int n_threads):
        """Update every parameter in place with its (checked) gradient and state slots.

        ``slots[i]`` is a tuple of state arrays in the rule's slot order, None where unused.
        State arrays are checked against their parameter first (they are made by the
        optimizer, so a failure here is a bug, but the kernels must never run out of bounds).

        Arrays of at least PARALLEL_THRESHOLD elements are split among the threads one after
        the other; the smaller ones of a list are shared out whole among the threads, so that
        many small arrays step as fast as one large one.
        """
        cdef Py_ssize_t i, k, n = len(params), total = 0, n_small = 0
        cdef Py_ssize_t threshold = parallel_threshold()
        cdef cnp.ndarray p
        cdef tuple s
        if len(grads) != n or len(slots) != n:
            raise ValueError("params, grads and slots differ in length")
        for i in range(n):
            p, s = params[i], slots[i]
            if len(s) > MAX_STATE:
                raise ValueError("too many state arrays")
            for a in s:
                if a is not None:
                    _check_state(a, p)
            total += cnp.PyArray_SIZE(p)
        cdef _Batch* batch = <_Batch*>PyMem_Malloc(n * sizeof(_Batch))
        if batch == NULL:
            raise MemoryError()
        try:
            for i in range(n):
                _fill(&batch[i], params[i], grads[i], slots[i])
                n_small += batch[i].size < threshold
            if total >= NOGIL_THRESHOLD:
                with nogil:
                    _run(&self.rule, batch, n, n_small, total, threshold, step, n_threads)
            else:
                _run(&self.rule, batch, n, n_small, total, threshold, step, n_threads)
        finally:
            PyMem_Free(batch)


ctypedef struct _Batch:
    # One array's pointers, as the kernels take them.
    bint single
    void* params
    void* grad
    void* state[MAX_STATE]
    Py_ssize_t size


cdef void _fill(_Batch* b, cnp.ndarray p, cnp.ndarray g, tuple s):
    cdef Py_ssize_t k
    b.single = cnp.PyArray_TYPE(p) == cnp.NPY_FLOAT
    b.params = cnp.PyArray_DATA(p)
    b.grad = cnp.PyArray_DATA(g)
    b.size = cnp.PyArray_SIZE(p)
    for k in range(MAX_STATE):
        b.state[k] = NULL
        if k < len(s) and s[k] is not None:
            b.state[k] = cnp.PyArray_DATA(<cnp.ndarray>s[k])


cdef void _run(const UpdateRule* rule, _Batch* batch, Py_ssize_t n, Py_ssize_t n_small,
               Py_ssize_t total, Py_ssize_t threshold, Py_ssize_t step,
               int n_threads) noexcept nogil:
    n_threads = fastopt_thread_limit(n_threads)  # 1 in a forked child (fastopt_openmp.h)
    cdef Py_ssize_t i
    cdef bint share_small = n_threads > 1 and n_small > 1 and total >= threshold
    cdef RuleStep at = rule_step_at(rule, step)
    for i in range(n):
        if not share_small or batch[i].size >= threshold:
            apply_rule(rule, batch[i].single, batch[i].params, batch[i].grad, batch[i].state,
                       batch[i].size, &at, n_threads)
    if share_small:
        # Whole small arrays per thread; dynamic, as their sizes may differ. Elementwise
        # updates: the result does not depend on which thread takes which array.
        for i in prange(n, schedule="static", num_threads=n_threads):
            if batch[i].size < threshold:
                apply_rule(rule, batch[i].single, batch[i].params, batch[i].grad,
                           batch[i].state, batch[i].size, &at, 1)


cdef int _check_state(object a, cnp.ndarray p) except -1:
    if not (cnp.PyArray_Check(a)
            and cnp.PyArray_TYPE(<cnp.ndarray>a) == cnp.PyArray_TYPE(p)
            and cnp.PyArray_SIZE(<cnp.ndarray>a) == cnp.PyArray_SIZE(p)
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a)
            and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>a)):
        raise ValueError("internal error: a state array does not match its parameter")
    return 0
