"""C-level stepping of optimizers: parameter layouts, gradient checks, ``Rule``.

``Optimizer.step`` is ``OptimizerCore.step``, which calls ``Rule.run_step``: it checks every
parameter against its ``Layout`` (the dtype and shape it had when the optimizer was built:
NumPy lets users change them in place), every gradient against its parameter and every
state array against its parameter, all before anything is touched, then runs the kernels
(fastopt/_kernels.pxd). All of it works on the NumPy C API, so a step on a small array costs
a few hundred nanoseconds, not the microseconds that NumPy attribute lookups from Python
would.

Lists of many small arrays (a model's parameters): the checks are one pass of C over the
lists on borrowed pointers (``_fill_fast``), which falls back to the checks that raise
(``_fill_checked``, in their order, with their messages) as soon as anything is not as a step
expects; ``apply_rule_list`` computes a group's coefficients once for all its arrays (they
share the update count) and runs them on one thread, or the threads share them whole in one
parallel region (``_share_small``). A few tens of nanoseconds per array, where the update of
1,000 elements takes a few hundred. ``Rule`` wraps the ``UpdateRule`` struct that the
minimize loop also uses, so every consumer runs an optimizer through one C-level entry.
``OptimizerCore`` is the C base of ``Optimizer``: ``step`` itself (reading its rule, layout,
state and count from C fields), and the routing of attribute assignment (so that a mistyped
hyperparameter cannot pass silently) at no cost to the step. An optimizer with several
parameter groups (torch's list of dicts) has one ``Rule`` per group: ``step_groups`` checks
every array of every group first, then runs each group's rule on its arrays (one group keeps
the single-rule path, ``Rule.run_step``).
"""

cimport cython
cimport numpy as cnp
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport PyObject
from cython.parallel cimport prange
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy
from fastopt._kernels cimport (
    MAX_SCALARS,
    MAX_STATE,
    ArrayRef,
    RuleStep,
    UpdateRule,
    advance_rule,
    apply_rule,
    apply_rule_list,
    parallel_threshold,
    rule_step_at,
)
from fastopt._openmp cimport fastopt_thread_limit
from fastopt._fpenv cimport (
    fastopt_flush_begin,
    fastopt_flush_bits,
    fastopt_follow_begin,
    fastopt_fpcr,
    fastopt_fpenv,
    fastopt_fpenv_restore,
    flush_context,
)

import numpy as np

from fastopt._kernels import declarations
from fastopt._validation import MAX_STEP, memory_spans

cnp.import_array()

# Arrays at least this large are updated with the GIL released (other Python threads may run);
# below it, releasing and re-taking the GIL would cost more than the update itself.
cdef Py_ssize_t NOGIL_THRESHOLD = 2048

# Each kernel's declaration, by name: (kind, input names, slot names, powered inputs, running
# scalars as (name, initial value) pairs). The kernels declare them next to their code
# (fastopt/_kernels_impl.pxi); nothing else lists them.
_SPECS = {name: (kind, inputs, slots, powers, scalars)
          for kind, (name, inputs, slots, powers, scalars) in enumerate(declarations())}


def kernel_kinds():
    """The names of the update kernels, in their declaration order.

    Returns
    -------
    tuple of str
        ``("sgd", "adagrad", ...)``: the ``kind`` values ``Rule`` and ``kernel_spec`` take.
    """
    return tuple(_SPECS)


def kernel_spec(kind):
    """What the kernel ``kind`` reads: its named inputs, its state slots, its running scalars.

    Parameters
    ----------
    kind : str
        A kernel name, one of ``kernel_kinds()``.

    Returns
    -------
    inputs : tuple of str
        The names ``Rule(kind, **inputs)`` takes, every one of them required (``lr`` first).
    slots : tuple of str
        The kernel's state arrays in slot order: the order of each parameter's state tuple
        in ``Rule.step``'s ``slots`` (e.g. adam: ``("exp_avg", "exp_avg_sq",
        "max_exp_avg_sq")``). An optimizer's state names must equal it.
    scalars : tuple of (str, float)
        The kernel's running scalars, ``(name, initial value)`` in ``RuleStep.scalars``
        order (e.g. nadam: ``(("mu_product", 1.0),)``); empty for most kernels. Values kept
        from one update to the next, advanced once per update by the kernel's own advance
        function: an optimizer keeps them in each parameter's state under these names (0-d
        float64 arrays, after its slots), and passes them to ``Rule.step``.

    Raises
    ------
    ValueError
        If ``kind`` names no kernel.
    """
    spec = _SPECS.get(kind) if type(kind) is str else None
    if spec is None:
        raise ValueError(f"unknown kernel kind {kind!r}; the kernels are "
                         f"{', '.join(_SPECS)}")
    return spec[1], spec[2], spec[4]


cdef extern from "Python.h":
    # (declared here: Cython's declaration takes an object, and deletion passes NULL)
    int PyObject_GenericSetAttr(object obj, object name, PyObject* value) except -1
    Py_ssize_t PyUnicode_GET_LENGTH(object text)
    Py_UCS4 PyUnicode_READ_CHAR(object text, Py_ssize_t index)

cdef extern from *:
    """
    /* Whether obj's type (or a base) defines ``name`` as a data descriptor (a property). */
    static int fastopt_has_data_descriptor(PyObject* obj, PyObject* name) {
        PyObject* d = _PyType_Lookup(Py_TYPE(obj), name);
        return d != NULL && Py_TYPE(d)->tp_descr_set != NULL;
    }
    """
    bint fastopt_has_data_descriptor(object obj, object name)


# ---------------------------------------------------------------------------------------------
# Attribute assignment

cdef object _DELETE = object()


cdef inline bint _is_private(object name):
    return (type(name) is str and PyUnicode_GET_LENGTH(name) > 0
            and PyUnicode_READ_CHAR(name, 0) == 95)  # "_"


@cython.auto_pickle(False)  # Optimizer pickles through its own __getstate__/__setstate__
cdef class OptimizerCore:
    """C base of ``fastopt.Optimizer``: ``step``, and attribute assignment.

    ``step`` reads what it needs (rule, layout, state slots, step count, threads) from C
    fields, so a step on a small array costs one call into C.

    Attribute assignment: private names (``_x``) and the class's data descriptors
    (properties such as ``lr``, the C fields) are set as usual. Any other name goes to
    ``self._set_public_attribute(name, value)`` (deletion: ``value`` is
    ``OptimizerCore.DELETE``), which sets hyperparameters with validation and refuses unknown
    names, so that ``opt.beta1 = 0.5`` cannot pass silently.
    """

    DELETE = _DELETE

    def __setattr__(self, name, value):
        if _is_private(name) or fastopt_has_data_descriptor(self, name):
            PyObject_GenericSetAttr(self, name, <PyObject*>value)
        else:
            self._set_public_attribute(name, value)

    def __delattr__(self, name):
        if _is_private(name) or fastopt_has_data_descriptor(self, name):
            PyObject_GenericSetAttr(self, name, NULL)
        else:
            self._set_public_attribute(name, _DELETE)

    def step(self, grads):
        """Apply one update to every parameter, in place.

        Parameters
        ----------
        grads : ndarray or list of ndarray
            Gradients mirroring ``params``: one array if the optimizer was built on one array,
            else a list of the same length (with parameter groups: every group's arrays, in
            the order of ``opt.params``); each with its parameter's shape and dtype.
            Gradients are read, never modified (read-only arrays are fine; a non-contiguous
            gradient is read through a contiguous copy).

        Raises
        ------
        TypeError, ValueError
            On a bad gradient, or a parameter or state array that is no longer what the
            optimizer was built for (its dtype, byte order or shape changed in place, or it
            is no longer C-contiguous or writeable). Nothing is modified then, not even when
            only one array of a list is bad.
        RuntimeError
            If another thread is inside ``step`` of this optimizer (the kernels release the
            GIL, so two steps would race on the same arrays); nothing is modified then.
            Independent optimizers may be stepped from different threads at once.

        Notes
        -----
        Non-finite values are not checked (that would cost another pass over memory): a NaN
        or inf in a gradient reaches only its own element of the parameter and state, as in
        torch.optim. ``minimize`` and ``minimize_minibatch`` do check, and stop (status 3)
        with the last finite iterate.
        """
        if self._rule is None or self._layout is None:
            raise RuntimeError("this optimizer was not initialised")
        # The flush-to-zero mode (flush_subnormals): this thread's register is restored
        # exactly on every way out (src_c/fastopt_fpenv.h).
        cdef fastopt_fpenv env = fastopt_flush_begin(self._flush_subnormals or flush_context())
        try:
            if self._slots is None:
                self._first_step(grads)  # makes the state (fastopt/_base.py)
            elif self._group_rules is None:  # one parameter group
                self._step = self._rule.run_step(grads, self._layout, self._spans,
                                                 self._slots, self._scalar_slots, self._step,
                                                 self._n_threads)
            else:
                self._step = _step_groups(self._group_rules, self._group_ends,
                                          self._group_starts, grads, self._layout,
                                          self._spans, self._slots, self._scalar_slots,
                                          self._step, self._n_threads)
        finally:
            fastopt_fpenv_restore(env)


# ---------------------------------------------------------------------------------------------
# Parameter layouts: what each parameter was when the optimizer was built

# Flags every parameter and state array must keep (NumPy lets users clear them, or change the
# dtype, shape or strides, of an array in place).
cdef int _NEEDED_FLAGS = cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_WRITEABLE


cdef class Layout:
    """The parameters of one optimizer and the dtype and shape each had when it was built.

    Parameters
    ----------
    params : list of ndarray
        The parameters, already checked (fastopt._validation.check_params): float32 or
        float64 in native byte order, C-contiguous, writeable.
    single : bool
        Whether the optimizer was built on one array (named ``params`` in messages, else
        ``params[i]``).
    slot_names : tuple of str
        The optimizer's state names in the kernel's slot order (for error messages).

    Notes
    -----
    NumPy lets an array's dtype, shape, strides and writeable flag be changed in place, so
    every step checks each parameter and state array against this record, in C (a few
    nanoseconds per array), before a kernel touches it; the kernels then run on the recorded
    dtype and size.
    """

    def __cinit__(self, list params not None, bint single, tuple slot_names not None):
        cdef Py_ssize_t i, d, total = 0
        cdef cnp.ndarray p
        for obj in params:
            if not cnp.PyArray_Check(obj):
                raise TypeError(f"params must be numpy arrays, got {type(obj).__name__}")
            p = <cnp.ndarray>obj
            if (cnp.PyArray_TYPE(p) not in (cnp.NPY_FLOAT, cnp.NPY_DOUBLE)
                    or not cnp.PyArray_ISNOTSWAPPED(p)
                    or (cnp.PyArray_FLAGS(p) & _NEEDED_FLAGS) != _NEEDED_FLAGS):
                raise ValueError("params must be float32 or float64 (native byte order), "
                                 "C-contiguous and writeable")
            total += cnp.PyArray_NDIM(p)
        self.params = list(params)
        self.single = single and len(params) == 1
        self.slot_names = slot_names
        self.dtypes = [q.dtype for q in params]
        self.shapes = [q.shape for q in params]
        self.n = len(params)
        self.types = <int*>PyMem_Malloc((self.n + 1) * sizeof(int))
        self.ndims = <int*>PyMem_Malloc((self.n + 1) * sizeof(int))
        self.sizes = <Py_ssize_t*>PyMem_Malloc((self.n + 1) * sizeof(Py_ssize_t))
        self.starts = <Py_ssize_t*>PyMem_Malloc((self.n + 1) * sizeof(Py_ssize_t))
        self.dims = <Py_ssize_t*>PyMem_Malloc((total + 1) * sizeof(Py_ssize_t))
        self.datas = <void**>PyMem_Malloc((self.n + 1) * sizeof(void*))
        if (self.types == NULL or self.ndims == NULL or self.sizes == NULL
                or self.starts == NULL or self.dims == NULL or self.datas == NULL):
            raise MemoryError()
        total = 0
        for i in range(self.n):
            p = <cnp.ndarray>self.params[i]
            self.types[i] = cnp.PyArray_TYPE(p)
            self.ndims[i] = cnp.PyArray_NDIM(p)
            self.sizes[i] = cnp.PyArray_SIZE(p)
            self.starts[i] = total
            self.datas[i] = cnp.PyArray_DATA(p)
            for d in range(self.ndims[i]):
                self.dims[total] = cnp.PyArray_DIM(p, d)
                total += 1

    def __dealloc__(self):
        PyMem_Free(self.types)
        PyMem_Free(self.ndims)
        PyMem_Free(self.sizes)
        PyMem_Free(self.starts)
        PyMem_Free(self.dims)
        PyMem_Free(self.datas)


cdef inline bint _matches(Layout layout, Py_ssize_t i, cnp.ndarray a, int flags) noexcept:
    """Whether ``a`` has parameter i's recorded dtype (native byte order) and shape, and
    ``flags``."""
    cdef int d, nd = layout.ndims[i]
    cdef cnp.npy_intp* dims
    cdef Py_ssize_t* expected = layout.dims + layout.starts[i]
    if (cnp.PyArray_TYPE(a) != layout.types[i] or cnp.PyArray_NDIM(a) != nd
            or (cnp.PyArray_FLAGS(a) & flags) != flags or not cnp.PyArray_ISNOTSWAPPED(a)):
        return False
    dims = cnp.PyArray_DIMS(a)
    for d in range(nd):
        if dims[d] != expected[d]:
            return False
    return True


cdef str _param_name(Layout layout, Py_ssize_t i):
    return "params" if layout.single else f"params[{i}]"


cdef int _check_params(Layout layout) except -1:
    cdef Py_ssize_t i
    cdef object p
    for i in range(layout.n):
        p = layout.params[i]
        if not (cnp.PyArray_Check(p) and _matches(layout, i, <cnp.ndarray>p, _NEEDED_FLAGS)):
            _raise_changed(layout, i, p, _param_name(layout, i), "a parameter")
    return 0


cdef int _check_state(Layout layout, Py_ssize_t i, Py_ssize_t k, object a) except -1:
    if not (cnp.PyArray_Check(a) and _matches(layout, i, <cnp.ndarray>a, _NEEDED_FLAGS)):
        _raise_changed(layout, i, a, f"state[{i}][{layout.slot_names[k]!r}]",
                       "a state array")
    return 0


cdef int _check_scalar(Py_ssize_t i, tuple names, Py_ssize_t k, object a) except -1:
    # A running scalar: a 0-d float64 array of its own (native byte order, writeable), which
    # the step reads and then overwrites with the advanced value.
    if (cnp.PyArray_Check(a) and cnp.PyArray_NDIM(<cnp.ndarray>a) == 0
            and cnp.PyArray_TYPE(<cnp.ndarray>a) == cnp.NPY_DOUBLE
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>a)
            and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>a)):
        return 0
    what = (f"a {type(a).__name__}" if not cnp.PyArray_Check(a)
            else f"an array of dtype {a.dtype}, shape {a.shape}, writeable "
                 f"{a.flags.writeable}")
    raise TypeError(f"state[{i}][{names[k]!r}] must stay a writeable 0-d float64 array (a "
                    f"running scalar) between steps, got {what}; nothing was updated")


cdef int _raise_changed(Layout layout, Py_ssize_t i, object a, str name, str what) except -1:
    """Say how ``a`` differs from parameter i's record (a's name and kind given)."""
    dtype, shape = layout.dtypes[i], layout.shapes[i]
    rule = (f"{what} must keep dtype {dtype} (native byte order) and shape {shape}, and stay "
            "C-contiguous and writeable, between steps; nothing was updated")
    if not cnp.PyArray_Check(a):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if cnp.PyArray_TYPE(<cnp.ndarray>a) != layout.types[i] or not cnp.PyArray_ISNOTSWAPPED(a):
        raise TypeError(f"{name} has dtype {a.dtype} now, the optimizer was built for "
                        f"{dtype}: {rule}")
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape} now, the optimizer was built for "
                         f"{shape}: {rule}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a):
        raise ValueError(f"{name} is no longer C-contiguous (strides {a.strides}): {rule}")
    raise ValueError(f"{name} is no longer writeable: {rule}")


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


cdef object _check_grad(object grad, Layout layout, Py_ssize_t i, Py_ssize_t index):
    """Return ``grad`` (or a contiguous copy) after checking it against parameter i's
    record (the parameter itself was checked against it just before)."""
    cdef cnp.ndarray g
    if not cnp.PyArray_Check(grad):
        raise TypeError(f"{_grad_name(index)} must be a numpy.ndarray, "
                        f"got {type(grad).__name__}")
    g = <cnp.ndarray>grad
    if not _matches(layout, i, g, 0):
        if cnp.PyArray_TYPE(g) != layout.types[i] or not cnp.PyArray_ISNOTSWAPPED(g):
            raise TypeError(f"{_grad_name(index)} has dtype {g.dtype}, "
                            f"its parameter has {layout.dtypes[i]}")
        raise ValueError(f"{_grad_name(index)} has shape {grad.shape}, its parameter has "
                         f"{layout.shapes[i]}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(g):
        # Read through a contiguous copy: it cannot alias the parameter any more.
        return np.ascontiguousarray(g)
    if _spans_overlap(g, <cnp.ndarray>layout.params[i]):
        raise ValueError(f"{_grad_name(index)} shares memory with its parameter: "
                         "pass a separate array")
    return g


cdef Py_ssize_t _overlapping_param(cnp.ndarray g, cnp.ndarray spans):
    """Index of the parameter whose memory overlaps g's, or -1.

    ``spans`` holds the parameters' byte ranges (start, end, index), sorted and disjoint
    (fastopt._validation.memory_spans): a binary search finds the one range that could
    overlap, so a list of k gradients is checked in O(k log k).
    """
    cdef long long g0 = <long long><size_t>cnp.PyArray_DATA(g)
    return _span_index(<const long long*>cnp.PyArray_DATA(spans), cnp.PyArray_DIM(spans, 0),
                       g0, g0 + cnp.PyArray_NBYTES(g))


cdef inline Py_ssize_t _span_index(const long long* rows, Py_ssize_t n_rows, long long g0,
                                   long long g1) noexcept nogil:
    """Index of the parameter of the ``n_rows`` spans whose bytes overlap [g0, g1), or -1."""
    cdef Py_ssize_t last = 0, half, left = n_rows
    if g1 == g0 or n_rows == 0 or g1 <= rows[0] or g0 >= rows[3 * n_rows - 2]:
        return -1  # (empty, or before the first span, or past the last one's end)
    # The last range starting before g's end (rows[0] does): a binary search without
    # branches (a conditional move), as the direction is unpredictable, gradient to gradient.
    while left > 1:
        half = left // 2
        last += half * (rows[3 * (last + half)] < g1)
        left -= half
    if rows[3 * last + 1] > g0:
        return rows[3 * last + 2]
    return -1


cdef inline bint _usable_spans(cnp.ndarray spans) noexcept:
    """Whether ``spans`` is what memory_spans makes (rows of three int64, C-contiguous)."""
    return (cnp.PyArray_TYPE(spans) == cnp.NPY_INT64 and cnp.PyArray_NDIM(spans) == 2
            and cnp.PyArray_DIM(spans, 1) == 3 and cnp.PyArray_IS_C_CONTIGUOUS(spans))


cdef int _refresh_spans(Layout layout, object spans) except -1:
    """Remake ``spans`` in place if a parameter's data moved since they were made (NumPy's
    ``resize(refcheck=False)`` reallocates an array in place): stale spans would let a
    gradient that is (part of) another parameter through."""
    cdef Py_ssize_t i
    cdef cnp.ndarray fresh
    for i in range(layout.n):
        if cnp.PyArray_DATA(<cnp.ndarray>layout.params[i]) != layout.datas[i]:
            break
    else:
        return 0
    fresh = memory_spans(layout.params)
    (<cnp.ndarray>spans)[...] = fresh  # (same sizes, so the same rows)
    for i in range(layout.n):
        layout.datas[i] = cnp.PyArray_DATA(<cnp.ndarray>layout.params[i])
    return 0


cdef list _check_grads(object grads, Layout layout, object spans):
    """check_grads; the parameters are checked against ``layout`` first."""
    cdef Py_ssize_t i, j, n = layout.n
    cdef bint copied = False
    cdef list checked
    _check_params(layout)
    if layout.single:
        checked = [_check_grad(grads, layout, 0, -1)]
        copied = checked[0] is not grads
    else:
        if not isinstance(grads, (list, tuple)):
            raise TypeError(f"grads must be a list of {n} arrays (like params), "
                            f"got {type(grads).__name__}")
        if len(grads) != n:
            raise ValueError(f"grads has {len(grads)} arrays, params has {n}")
        checked = [_check_grad(grads[i], layout, i, i) for i in range(n)]
        # (A list or tuple subclass runs Python code when indexed.)
        copied = type(grads) is not list and type(grads) is not tuple
        if spans is not None:
            _refresh_spans(layout, spans)
        for i in range(n):
            if checked[i] is not grads[i]:
                copied = True
            elif spans is not None:
                # A gradient that is (part of) another parameter would be overwritten before,
                # or while, it is read: list updates may run in any order, on several threads.
                j = _overlapping_param(<cnp.ndarray>checked[i], <cnp.ndarray>spans)
                if j >= 0 and j != i:
                    raise ValueError(f"grads[{i}] shares memory with params[{j}]: pass a "
                                     "separate array")
    if copied:
        # Python code ran (a copy in NumPy, maybe a finalizer, a subclass's __getitem__) that
        # could have changed a parameter, or a gradient already checked (its dtype, shape, or
        # its buffer: ``resize(refcheck=False)``), after its check.
        _check_params(layout)
        for i in range(n):
            if not _matches(layout, i, <cnp.ndarray>checked[i], cnp.NPY_ARRAY_C_CONTIGUOUS):
                raise ValueError(f"{_grad_name(-1 if layout.single else i)} changed while "
                                 "the gradients were being read (Python code ran): nothing "
                                 "was updated")
    return checked


def check_grads(grads, Layout layout not None, spans=None):
    """Validate gradients against the parameters they update; return the list to use.

    The parameters are checked first against ``layout`` (what they were when the optimizer
    was built), so a parameter changed in place gives an error about the parameter.
    ``grads`` mirrors the parameters: one array when the optimizer was built on one array,
    else a list or tuple of the same length; each gradient has its parameter's dtype and
    shape and does not overlap it, nor (given ``spans``, see memory_spans) any other
    parameter. Non-contiguous gradients are read through a contiguous copy; gradients are
    never modified.
    """
    return _check_grads(grads, layout, spans)


# ---------------------------------------------------------------------------------------------
# Rule

cdef class Rule:
    """An update rule's kind and scalar inputs, as the kernels take them (``UpdateRule``).

    Parameters
    ----------
    kind : str
        A kernel name, one of ``kernel_kinds()`` (``"sgd"``, ``"adam"``, ...).
    **inputs : float or bool
        Exactly the kernel's inputs, by name (``kernel_spec(kind)[0]``); already validated by
        the optimizer class. Flags are stored as 0 or 1.

    Raises
    ------
    ValueError
        If ``kind`` names no kernel, or an input is missing or not the kernel's (naming them).
    TypeError
        If an input is not a real number or a bool.
    """

    def __cinit__(self, str kind, **inputs):
        cdef Py_ssize_t k
        kernel_spec(kind)  # ValueError for an unknown kind
        kind_index, names, _, powers, scalars = _SPECS[kind]
        unknown = [name for name in inputs if name not in names]
        missing = [name for name in names if name not in inputs]
        if unknown or missing:
            problems = ([f"unknown {', '.join(map(repr, unknown))}"] if unknown else []) + (
                [f"missing {', '.join(map(repr, missing))}"] if missing else [])
            raise ValueError(f"Rule({kind!r}): {'; '.join(problems)}: the kernel takes "
                             f"exactly {', '.join(names)}")
        values = []
        for name in names:
            try:
                values.append(<double>inputs[name])
            except TypeError:
                raise TypeError(f"Rule({kind!r}): {name}={inputs[name]!r} is not a real "
                                "number or a bool") from None
        # (Cython zeroes a new object: the unused inputs and rates stay 0.)
        self.rule.kind = kind_index
        self.rule.lr = values[0]
        for k in range(1, len(names)):
            self.rule.inputs[k - 1] = values[k]
        for k in range(len(powers)):
            self.rule.rates[k] = values[names.index(powers[k])]
        self.rule.n_scalars = len(scalars)
        self.scalar_names = tuple(name for name, _ in scalars)
        for k in range(len(scalars)):
            self.rule.initial[k] = scalars[k][1]

    @property
    def kind(self):
        """The kernel's name (read-only)."""
        return kernel_kinds()[self.rule.kind]

    @property
    def inputs(self):
        """The kernel's inputs as given, by name, in its declared order (flags as 0.0 or
        1.0); a new dict, read-only in effect."""
        names = _SPECS[self.kind][1]
        return {"lr": self.rule.lr,
                **{names[k]: self.rule.inputs[k - 1] for k in range(1, len(names))}}

    @property
    def lr(self):
        return self.rule.lr

    @lr.setter
    def lr(self, double value):
        self.rule.lr = value

    @property
    def busy(self):
        """Whether a step of this rule is running (possibly in another thread)."""
        return self.busy

    def step(self, grads, Layout layout not None, spans, list slots not None,
             Py_ssize_t step, int n_threads, list scalars=None):
        """Check everything, then update every parameter in place; return ``step + 1``.

        The parameters are checked against ``layout`` (what they were when the optimizer
        was built), the gradients as ``check_grads`` does, and each state array of
        ``slots[i]`` (a tuple in the rule's slot order, None where unused) against its
        parameter's record; all of it in C before any array is written, so an error leaves
        everything as it was. The kernels then run on the recorded dtype and size.

        A kernel with running scalars (``kernel_spec(kind)[2]``) needs ``scalars``: one tuple
        per parameter of writeable 0-d float64 arrays, in the declared order, holding the
        values after update ``step``. Each parameter's are advanced to update ``step + 1``
        (the kernel's advance function), used by its update, and written back in place.
        Other kernels take None.

        Arrays of at least PARALLEL_THRESHOLD elements are split among the threads one after
        the other; the smaller ones of a list are shared out whole among the threads, so that
        many small arrays step as fast as one large one.

        Raises
        ------
        RuntimeError
            If a step of this rule is already running in another thread (the kernels release
            the GIL, so two steps would race on the same arrays).
        """
        return self.run_step(grads, layout, spans, slots, scalars, step, n_threads)

    cdef Py_ssize_t run_step(self, object grads, Layout layout, object spans, list slots,
                             list scalars, Py_ssize_t step, int n_threads) except -1:
        cdef UpdateRule* rule = &self.rule
        cdef Py_ssize_t end = layout.n, count = step
        if self.busy:
            raise RuntimeError(_BUSY)
        if step < 0 or step >= _MAX_STEP:
            raise ValueError(f"Invalid step: step={step} must be in [0, {_MAX_STEP})")
        self.busy = True  # before any Python code runs (a copy below may switch threads)
        try:
            _checked_run(self, &rule, &end, &count, 1, grads, layout, spans, slots, scalars,
                         n_threads)
        finally:
            self.busy = False
        return step + 1


cdef str _BUSY = ("step() is already running in another thread for this optimizer: one "
                  "optimizer must not be stepped from two threads at once (use one optimizer "
                  "per thread)")


cdef int _checked_run(Rule first, UpdateRule** rules, Py_ssize_t* ends, Py_ssize_t* counts,
                      Py_ssize_t n_groups, object grads, Layout layout, object spans,
                      list slots, list scalars, int n_threads) except -1:
    """Check the gradients, state arrays and running scalars of every parameter, then run
    group g's rule ``rules[g]`` on parameters ``ends[g - 1]:ends[g]`` as its update
    ``counts[g] + 1``. The groups' rules share ``first``'s kernel (one class)."""
    cdef Py_ssize_t i, n = layout.n, total = 0
    cdef Py_ssize_t threshold = parallel_threshold()
    cdef list checked = None
    cdef ArrayRef* batch
    cdef double** scalar_data
    cdef RuleStep* steps
    # One block: each array's pointers, its running scalars' addresses, its RuleStep.
    batch = <ArrayRef*>PyMem_Malloc((n + 1) * (sizeof(ArrayRef) + sizeof(RuleStep)
                                               + MAX_SCALARS * sizeof(double*)))
    if batch == NULL:
        raise MemoryError()
    steps = <RuleStep*>(batch + n + 1)
    scalar_data = <double**>(steps + n + 1)
    try:
        if ends[n_groups - 1] != n or not _fill_fast(batch, scalar_data, grads, layout, spans,
                                                     slots, scalars, first.rule.n_scalars):
            # Something is not as a step expects (or a gradient must be copied): the checks
            # that say what, in order, raise; else they fill the batch themselves.
            checked = _fill_checked(first, batch, scalar_data, grads, layout, spans, slots,
                                    scalars, ends[n_groups - 1])
        # From here to the kernels no Python code runs: nothing can change what was checked.
        for i in range(n):
            total += batch[i].size
        if total >= NOGIL_THRESHOLD:
            with nogil:
                _run_groups(rules, ends, counts, n_groups, batch, scalar_data, steps,
                            threshold, n_threads)
        else:
            _run_groups(rules, ends, counts, n_groups, batch, scalar_data, steps, threshold,
                        n_threads)
    finally:
        PyMem_Free(batch)
    return 0


cdef list _fill_checked(Rule first, ArrayRef* batch, double** scalar_data, object grads,
                        Layout layout, object spans, list slots, list scalars,
                        Py_ssize_t end):
    """Every check, in order, raising on the first failure; then fill the batch (``end``:
    the last group's end). Returns the gradients used (contiguous copies among them: the
    caller keeps them alive)."""
    cdef Py_ssize_t i, k, n = layout.n
    cdef tuple s
    cdef tuple sc = ()
    cdef list checked
    checked = _check_grads(grads, layout, spans)
    if len(slots) != n or end != n:
        raise ValueError("internal error: one state tuple per parameter expected")
    for i in range(n):
        s = <tuple?>slots[i]
        if len(s) > MAX_STATE:
            raise ValueError("internal error: too many state arrays")
        for k in range(len(s)):
            if s[k] is not None:
                _check_state(layout, i, k, s[k])
    if first.rule.n_scalars != 0:
        if scalars is None or len(scalars) != n:
            raise ValueError("internal error: one tuple of running scalars per "
                             "parameter expected")
        for i in range(n):
            sc = <tuple?>scalars[i]
            if len(sc) != first.rule.n_scalars:
                raise ValueError("internal error: wrong number of running scalars")
            for k in range(len(sc)):
                _check_scalar(i, first.scalar_names, k, sc[k])
    for i in range(n):
        if first.rule.n_scalars != 0:
            sc = <tuple>scalars[i]
        _fill(&batch[i], scalar_data + i * MAX_SCALARS, layout, i, checked[i], slots[i], sc)
    return checked


cdef void _run_groups(UpdateRule** rules, Py_ssize_t* ends, Py_ssize_t* counts,
                      Py_ssize_t n_groups, ArrayRef* batch, double** scalar_data,
                      RuleStep* steps, Py_ssize_t threshold, int n_threads) noexcept nogil:
    cdef Py_ssize_t g, lo = 0
    n_threads = fastopt_thread_limit(n_threads)  # 1 in a forked child (fastopt_openmp.h)
    for g in range(n_groups):
        _run(rules[g], batch + lo, scalar_data + lo * MAX_SCALARS, steps + lo, ends[g] - lo,
             threshold, counts[g] + 1, n_threads)
        lo = ends[g]


cdef Py_ssize_t _step_groups(list rules, tuple ends, tuple starts, object grads, Layout layout,
                             object spans, list slots, list scalars, Py_ssize_t step,
                             int n_threads) except -1:
    # Several parameter groups: group g (parameters ends[g - 1]:ends[g]) runs rules[g], as
    # its update step - starts[g] + 1 (a group added after steps counts its own).
    cdef Py_ssize_t g, n_groups = len(rules)
    cdef Rule r
    cdef UpdateRule** ptrs
    cdef Py_ssize_t* buf
    if n_groups == 0 or len(ends) != n_groups or len(starts) != n_groups:
        raise ValueError("internal error: one rule, end and start per group expected")
    for g in range(n_groups):
        r = <Rule?>rules[g]
        if r.busy:
            raise RuntimeError(_BUSY)
        if r.rule.kind != (<Rule>rules[0]).rule.kind:
            raise ValueError("internal error: the groups' rules must share their kernel")
    if step < 0 or step >= _MAX_STEP:
        raise ValueError(f"Invalid step: step={step} must be in [0, {_MAX_STEP})")
    ptrs = <UpdateRule**>PyMem_Malloc(n_groups * sizeof(UpdateRule*))
    buf = <Py_ssize_t*>PyMem_Malloc(2 * n_groups * sizeof(Py_ssize_t))
    if ptrs == NULL or buf == NULL:
        PyMem_Free(ptrs)
        PyMem_Free(buf)
        raise MemoryError()
    try:
        for g in range(n_groups):
            ptrs[g] = &(<Rule>rules[g]).rule
            buf[g] = <Py_ssize_t?>ends[g]
            buf[n_groups + g] = step - <Py_ssize_t?>starts[g]
            if (buf[g] < (buf[g - 1] if g > 0 else 1) or buf[n_groups + g] < 0
                    or buf[n_groups + g] > step):
                raise ValueError("internal error: bad group ends or starts")
        for g in range(n_groups):
            (<Rule>rules[g]).busy = True
        try:
            _checked_run(<Rule>rules[0], ptrs, buf, buf + n_groups, n_groups, grads, layout,
                         spans, slots, scalars, n_threads)
        finally:
            for g in range(n_groups):
                (<Rule>rules[g]).busy = False
    finally:
        PyMem_Free(ptrs)
        PyMem_Free(buf)
    return step + 1


def step_groups(list rules not None, tuple ends not None, tuple starts not None, grads,
                Layout layout not None, spans, list slots not None, Py_ssize_t step,
                int n_threads, list scalars=None):
    """``Rule.step`` for several parameter groups; return ``step + 1``.

    Parameters
    ----------
    rules : list of Rule
        One per group, all of one kernel.
    ends : tuple of int
        Group g holds the parameters ``ends[g - 1]:ends[g]`` of ``layout`` (increasing, the
        last one the number of parameters, no group empty).
    starts : tuple of int
        The optimizer's step count when each group was added (0 for the constructor's): group
        g's update is its ``step - starts[g] + 1``-th (its bias corrections, as torch counts
        steps per parameter).
    grads, layout, spans, slots, step, n_threads, scalars
        As ``Rule.step``, over all the groups' parameters.

    Everything is checked before any array is written, as ``Rule.step`` does.
    """
    return _step_groups(rules, ends, starts, grads, layout, spans, slots, scalars, step,
                        n_threads)


# The largest step count an optimizer holds (state dicts with more are refused): far beyond
# any run, and step + 1 cannot overflow Py_ssize_t (fastopt._validation.check_step).
cdef Py_ssize_t _MAX_STEP = MAX_STEP


cdef void _fill(ArrayRef* b, double** scalar_data, Layout layout, Py_ssize_t i,
                cnp.ndarray g, tuple s, tuple sc):
    # The recorded dtype and size, checked against the arrays just before.
    cdef Py_ssize_t k
    b.single = layout.types[i] == cnp.NPY_FLOAT
    b.params = cnp.PyArray_DATA(<cnp.ndarray>layout.params[i])
    b.grad = cnp.PyArray_DATA(g)
    b.size = layout.sizes[i]
    for k in range(MAX_STATE):
        b.state[k] = NULL
        if k < len(s) and s[k] is not None:
            b.state[k] = cnp.PyArray_DATA(<cnp.ndarray>s[k])
    for k in range(MAX_SCALARS):
        scalar_data[k] = <double*>cnp.PyArray_DATA(<cnp.ndarray>sc[k]) if k < len(sc) else NULL


cdef void _run(const UpdateRule* rule, ArrayRef* batch, double** scalar_data, RuleStep* steps,
               Py_ssize_t n, Py_ssize_t threshold, Py_ssize_t step,
               int n_threads) noexcept nogil:
    # One group's arrays, as its update ``step``.
    cdef Py_ssize_t i, n_small = 0, small_total = 0
    cdef RuleStep at = rule_step_at(rule, step)
    if rule.n_scalars == 0:
        for i in range(n):
            batch[i].step = &at
    else:
        _own_steps(rule, &at, batch, scalar_data, steps, n)
    if n_threads <= 1:
        apply_rule_list(rule, batch, n)
        return
    # The large arrays one after the other, each split among the threads; the small ones
    # moved to the front of the batch (order no longer matters: the arrays are disjoint).
    for i in range(n):
        if batch[i].size >= threshold:
            apply_rule(rule, batch[i].single, batch[i].params, batch[i].grad, batch[i].state,
                       batch[i].size, batch[i].step, n_threads)
        else:
            if n_small != i:
                batch[n_small] = batch[i]
            n_small += 1
            small_total += batch[i].size
    if n_small > 1 and small_total >= threshold:
        _share_small(rule, batch, n_small, small_total, n_threads)
    else:
        apply_rule_list(rule, batch, n_small)


cdef void _own_steps(const UpdateRule* rule, const RuleStep* at, ArrayRef* batch,
                     double** scalar_data, RuleStep* steps, Py_ssize_t n) noexcept nogil:
    # A kernel with running scalars: each array's update is its own, from its scalars
    # advanced once (whatever the threads) and written back, as torch keeps and advances them
    # per parameter. Arrays in a row whose scalars hold the same values (all of them, in
    # practice) share the first one's advanced RuleStep: advancing is a function of those
    # values, so the result is the same, and apply_rule_list then computes the coefficients
    # once for all of them. Read, advance and write back array by array, in order, as a
    # step always did.
    cdef Py_ssize_t i
    cdef int k, m = rule.n_scalars
    cdef double values[MAX_SCALARS]
    cdef double previous[MAX_SCALARS]
    for i in range(n):
        for k in range(m):
            values[k] = scalar_data[i * MAX_SCALARS + k][0]
        if i > 0 and memcmp(values, previous, m * sizeof(double)) == 0:
            batch[i].step = batch[i - 1].step
        else:
            steps[i] = at[0]
            for k in range(m):
                steps[i].scalars[k] = values[k]
            advance_rule(rule, &steps[i])
            batch[i].step = &steps[i]
            memcpy(previous, values, m * sizeof(double))
        for k in range(m):
            scalar_data[i * MAX_SCALARS + k][0] = batch[i].step.scalars[k]


cdef void _share_small(const UpdateRule* rule, ArrayRef* batch, Py_ssize_t n,
                       Py_ssize_t total, int n_threads) noexcept nogil:
    # Whole small arrays per thread, in one parallel region: thread t takes the arrays
    # bounds[t]:bounds[t + 1], about total / n_threads elements. Elementwise updates: the
    # result does not depend on which thread takes which array.
    cdef Py_ssize_t i = 0, t, done = 0, n_parts = min(<Py_ssize_t>n_threads, n)
    cdef Py_ssize_t* bounds = <Py_ssize_t*>malloc((n_parts + 1) * sizeof(Py_ssize_t))
    cdef fastopt_fpcr bits
    cdef fastopt_fpenv env
    if bounds == NULL:  # (no memory for the split: one thread)
        apply_rule_list(rule, batch, n)
        return
    bounds[0] = 0
    for t in range(1, n_parts):
        while i < n and done < <double>total * t / n_parts:
            done += batch[i].size
            i += 1
        bounds[t] = i
    bounds[n_parts] = n
    bits = fastopt_flush_bits()  # (each thread computes in the calling thread's mode)
    for t in prange(n_parts, schedule="static", num_threads=n_parts):
        env = fastopt_follow_begin(bits)
        apply_rule_list(rule, batch + bounds[t], bounds[t + 1] - bounds[t])
        fastopt_fpenv_restore(env)
    free(bounds)


# ---------------------------------------------------------------------------------------------
# The fast path of a step's checks

cdef extern from *:
    """
    /* An exact list's or tuple's items (borrowed) and size; NULL for any other object (a
       subclass may run Python code when indexed: the checked path handles it). */
    static PyObject** fastopt_items(PyObject* o, Py_ssize_t* size) {
        if (!PyList_CheckExact(o) && !PyTuple_CheckExact(o)) return NULL;
        *size = Py_SIZE(o);
        return PySequence_Fast_ITEMS(o);
    }

    /* The same for an exact tuple only. */
    static PyObject** fastopt_tuple_items(PyObject* o, Py_ssize_t* size) {
        if (!PyTuple_CheckExact(o)) return NULL;
        *size = PyTuple_GET_SIZE(o);
        return PySequence_Fast_ITEMS(o);
    }

    /* Whether ``a`` is an ndarray of type ``type`` in native byte order, of ``nd`` dimensions
       ``dims``, with the flags ``flags`` (fastopt._step._matches on a borrowed pointer). */
    static int fastopt_array_matches(PyObject* a, int type, int nd, const Py_ssize_t* dims,
                                     int flags) {
        PyArrayObject* arr = (PyArrayObject*)a;
        const npy_intp* shape;
        int d;
        if (!PyArray_Check(a) || PyArray_TYPE(arr) != type || PyArray_NDIM(arr) != nd
                || (PyArray_FLAGS(arr) & flags) != flags || !PyArray_ISNOTSWAPPED(arr))
            return 0;
        shape = PyArray_DIMS(arr);
        for (d = 0; d < nd; d++)
            if (shape[d] != dims[d]) return 0;
        return 1;
    }

    /* Whether ``a`` is a running scalar as a step needs it: a writeable 0-d float64 array in
       native byte order (fastopt._step._check_scalar). */
    static int fastopt_is_scalar_slot(PyObject* a) {
        PyArrayObject* arr = (PyArrayObject*)a;
        return PyArray_Check(a) && PyArray_NDIM(arr) == 0 && PyArray_TYPE(arr) == NPY_DOUBLE
               && PyArray_ISNOTSWAPPED(arr) && PyArray_ISWRITEABLE(arr);
    }

    static void* fastopt_array_data(PyObject* a) {
        return PyArray_DATA((PyArrayObject*)a);
    }
    """
    PyObject** fastopt_items(object o, Py_ssize_t* size)
    PyObject** fastopt_tuple_items(PyObject* o, Py_ssize_t* size)
    bint fastopt_array_matches(PyObject* a, int type, int nd, const Py_ssize_t* dims,
                               int flags)
    bint fastopt_is_scalar_slot(PyObject* a)
    void* fastopt_array_data(PyObject* a)


cdef bint _fill_fast(ArrayRef* batch, double** scalar_data, object grads, Layout layout,
                     object spans, list slots, list scalars, int n_scalars) noexcept:
    """Check every array and fill the batch, in one pass of C over the lists, when all of it
    is as a step expects: each parameter and state array as recorded in ``layout``, each
    gradient of its parameter's dtype and shape, C-contiguous and overlapping no parameter,
    each running scalar a writeable 0-d float64 array, and every list of the right type and
    length. No reference is taken and no Python code runs. False as soon as anything is not
    so (the batch partly filled): ``_fill_checked`` then runs the checks that say what, or
    copies a non-contiguous gradient. The same checks, so the same steps pass."""
    cdef Py_ssize_t i, k, n = layout.n, size, n_state, n_spans = 0
    cdef Py_ssize_t nbytes
    cdef PyObject** params
    cdef PyObject** gradients
    cdef PyObject** states
    cdef PyObject** running = NULL
    cdef PyObject** items
    cdef PyObject* a
    cdef PyObject* one_grad
    cdef const long long* rows = NULL
    cdef char* p0
    cdef char* g0
    cdef int type_num, nd
    cdef const Py_ssize_t* dims
    params = fastopt_items(layout.params, &size)
    if params == NULL or size != n:
        return False
    if layout.single:
        one_grad = <PyObject*>grads
        gradients = &one_grad
    else:
        gradients = fastopt_items(grads, &size)
        if gradients == NULL or size != n:
            return False
    states = fastopt_items(slots, &size)
    if states == NULL or size != n:
        return False
    if n_scalars != 0:
        if scalars is None:
            return False
        running = fastopt_items(scalars, &size)
        if running == NULL or size != n:
            return False
    if spans is not None:
        if not (cnp.PyArray_CheckExact(spans) and _usable_spans(<cnp.ndarray>spans)):
            return False
        rows = <const long long*>cnp.PyArray_DATA(<cnp.ndarray>spans)
        n_spans = cnp.PyArray_DIM(<cnp.ndarray>spans, 0)
    for i in range(n):
        type_num, nd = layout.types[i], layout.ndims[i]
        dims = layout.dims + layout.starts[i]
        a = params[i]
        if not fastopt_array_matches(a, type_num, nd, dims, _NEEDED_FLAGS):
            return False
        p0 = <char*>fastopt_array_data(a)
        if rows != NULL and <void*>p0 != layout.datas[i]:
            return False  # (a parameter moved: the checked path remakes the spans)
        batch[i].single = type_num == cnp.NPY_FLOAT
        batch[i].params = p0
        batch[i].size = layout.sizes[i]
        nbytes = layout.sizes[i] * (4 if batch[i].single else 8)
        a = gradients[i]
        if not fastopt_array_matches(a, type_num, nd, dims, cnp.NPY_ARRAY_C_CONTIGUOUS):
            return False
        g0 = <char*>fastopt_array_data(a)
        if nbytes > 0 and g0 < p0 + nbytes and p0 < g0 + nbytes:
            return False  # (its own parameter)
        if rows != NULL and _span_index(rows, n_spans, <long long><size_t>g0,
                                        <long long><size_t>g0 + nbytes) >= 0:
            return False  # (another parameter)
        batch[i].grad = g0
        items = fastopt_tuple_items(states[i], &n_state)
        if items == NULL or n_state > MAX_STATE:
            return False
        for k in range(MAX_STATE):
            batch[i].state[k] = NULL
            if k < n_state and items[k] != <PyObject*>None:
                if not fastopt_array_matches(items[k], type_num, nd, dims, _NEEDED_FLAGS):
                    return False
                batch[i].state[k] = fastopt_array_data(items[k])
        if n_scalars != 0:
            items = fastopt_tuple_items(running[i], &size)
            if items == NULL or size != n_scalars:
                return False
            for k in range(n_scalars):
                if not fastopt_is_scalar_slot(items[k]):
                    return False
                scalar_data[i * MAX_SCALARS + k] = <double*>fastopt_array_data(items[k])
    return True
