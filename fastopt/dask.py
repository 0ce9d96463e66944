"""``fastopt.dask``: :func:`fastopt.minimize_batch` over a Dask array, one task per row chunk.

People who fit millions of independent models outgrow one machine; fastopt does not grow
cluster code of its own but runs on Dask (issue 16). The m problems are the rows of a
``dask.array`` X0; each chunk of rows is solved by :func:`fastopt.minimize_batch` in one task
(on a worker of whatever scheduler is active: ``distributed``, or Dask's local threads), and
since minimize_batch's result for a problem never depends on the other problems, every
problem's result is bitwise the one of a single in-process call on the whole array.

Everything that can be checked without the data is checked on the client, before any task
runs: the arguments go through minimize_batch itself on zero rows (the same checks and
messages), a C objective's spec is resolved once here (importable, picklable, returns a
``LowLevelCallable`` of a signature fastopt runs). A ``LowLevelCallable`` holds raw pointers,
so workers get a recipe instead (:class:`lowlevel`) and build the callable once per process.

Needs dask (``pip install "fastopt[dask]"``, which also installs distributed); ``import
fastopt`` never imports it.
"""

try:
    import cloudpickle
    import dask
    import dask.array as da
except ImportError as _exc:  # ModuleNotFoundError included
    raise ImportError('fastopt.dask needs dask and distributed: pip install "fastopt[dask]" '
                      f"(or pip install dask distributed); {_exc}") from _exc

import hashlib
import importlib
import operator
import threading
import uuid
import warnings

import numpy as np
from scipy import LowLevelCallable
from scipy.optimize import Bounds, OptimizeResult

from fastopt._driver_common import _hyperparameter_names, args_tuple, options_dict
from fastopt._methods import optimizer_class
from fastopt._minimize_batch import BATCH_OPTIONS, _learning_rates, _summary, batch_bounds
from fastopt._minimize_batch import minimize_batch as _minimize_batch

__all__ = ["lowlevel", "minimize_batch", "LazyBatchResult"]

# The per-problem fields of minimize_batch's result, in the order a chunk's task returns them.
FIELDS = ("x", "fun", "jac", "nit", "nfev", "njev", "status", "success")
_ROW_FIELDS = ("x", "jac")  # shape (k, n); the others (k,)


class lowlevel:
    """A C objective for Dask workers: a recipe that builds the ``scipy.LowLevelCallable``.

    A ``LowLevelCallable`` holds raw pointers and cannot be pickled, so
    :func:`fastopt.dask.minimize_batch` takes this instead: ``factory(*args, **kwargs)``,
    called once per worker process (the callable is cached there, keyed by the recipe), must
    return the ``LowLevelCallable`` that :func:`fastopt.minimize_batch` would take. The
    explicit wrapper keeps a factory apart from a vectorised Python objective, which is also
    a callable.

    Parameters
    ----------
    factory : callable or str
        A picklable callable returning the ``LowLevelCallable``: a top-level function of an
        importable module (such as :func:`fastopt.problems.rosenbrock_lowlevel`), a
        ``functools.partial`` of one, or anything cloudpickle sends (a function of your
        script is sent by value; whatever it calls must import on the workers). Or its
        import path as a string, ``"package.module:name"``, imported on each worker.
    *args, **kwargs
        Passed to ``factory``; they must be picklable.

    Notes
    -----
    The cached ``LowLevelCallable`` is kept alive for the life of the worker process, but not
    what its ``user_data`` pointer points to: a factory that passes data through
    ``user_data`` must keep that data alive itself (for instance in a module-level cache of
    its own). :func:`fastopt.dask.minimize_batch` resolves the recipe once on the client
    before any task runs and raises ``TypeError`` or ``ValueError`` (naming ``fun``) when it
    cannot be imported, pickled, does not return a ``LowLevelCallable`` or has a signature
    fastopt does not run.

    Examples
    --------
    >>> import fastopt, fastopt.dask
    >>> spec = fastopt.dask.lowlevel(fastopt.problems.rosenbrock_lowlevel, "float32")
    >>> spec
    lowlevel(rosenbrock_lowlevel, 'float32')
    >>> spec()  # what a worker does, once per process  # doctest: +ELLIPSIS
    LowLevelCallable(<capsule object "float (int, float const *, float *, void *)" at ...>, None)
    """

    def __init__(self, factory, /, *args, **kwargs):
        if isinstance(factory, LowLevelCallable):
            raise TypeError("fastopt.dask.lowlevel: factory must be the function that makes the "
                            "LowLevelCallable (called on each worker), not the LowLevelCallable "
                            "itself, which cannot be pickled")
        if isinstance(factory, str):
            module, _, name = factory.partition(":")
            if not module or not name:
                raise ValueError("fastopt.dask.lowlevel: a factory given by name must be "
                                 f"'package.module:name', got {factory!r}")
        elif not callable(factory):
            raise TypeError("fastopt.dask.lowlevel: factory must be callable or "
                            f"'package.module:name', got {type(factory).__name__}")
        self.factory, self.args, self.kwargs = factory, args, kwargs
        self.key = None  # set by check(): the recipe's digest, the workers' cache key

    def __repr__(self):
        name = getattr(self.factory, "__name__", None) or repr(self.factory)
        parts = [name, *map(repr, self.args), *(f"{k}={v!r}" for k, v in self.kwargs.items())]
        return f"lowlevel({', '.join(parts)})"

    def __call__(self):
        """The ``LowLevelCallable``, built on the first call in this process and cached."""
        key = self.key if self.key is not None else self._digest()
        with _CACHE_LOCK:
            llc = _RESOLVED.get(key)
            if llc is None:
                llc = _RESOLVED[key] = self._make()
        return llc

    def _make(self):
        factory = self.factory
        if isinstance(factory, str):
            module, _, name = factory.partition(":")
            try:
                factory = operator.attrgetter(name)(importlib.import_module(module))
            except (ImportError, AttributeError) as exc:
                raise ValueError(f"fun: fastopt.dask.lowlevel({self.factory!r}) cannot be "
                                 f"imported: {exc}") from None
        llc = factory(*self.args, **self.kwargs)
        if not isinstance(llc, LowLevelCallable):
            raise TypeError(f"fun: {self!r} must return a scipy.LowLevelCallable, got "
                            f"{type(llc).__name__}")
        return llc

    def _digest(self):
        try:
            blob = cloudpickle.dumps((self.factory, self.args, self.kwargs))
            cloudpickle.loads(blob)
        except Exception as exc:  # what pickling raises varies: TypeError, PicklingError...
            raise TypeError(f"fun: {self!r} cannot be sent to Dask workers (it does not pickle: "
                            f"{type(exc).__name__}: {exc}); make factory and its arguments "
                            "picklable, e.g. a top-level function of an importable module"
                            ) from None
        return hashlib.sha256(blob).hexdigest()

    def check(self):
        """Resolve the recipe here, as a worker will; returns the ``LowLevelCallable``.

        Raises ``TypeError`` or ``ValueError`` naming ``fun`` when the recipe does not pickle,
        cannot be imported or does not return a ``LowLevelCallable``.
        """
        self.key = self._digest()
        return self()


# The LowLevelCallables this process built, by recipe digest (a worker builds each once).
_RESOLVED = {}
_CACHE_LOCK = threading.Lock()


class LazyBatchResult(OptimizeResult):
    """The lazy result of :func:`fastopt.dask.minimize_batch`.

    An ``OptimizeResult`` whose per-problem fields ``x`` (m, n), ``fun``, ``jac`` (m, n),
    ``nit``, ``nfev``, ``njev``, ``status`` and ``success`` (m,) are dask arrays with X0's row
    chunks. Every field of a chunk comes from one task, which returns them all: :meth:`compute`
    computes them in one pass (as does ``dask.compute(res.x, res.fun, ...)``), whereas two
    separate ``.compute()`` calls of two fields solve the problems twice; :meth:`persist`
    solves them once and keeps them on the cluster.
    """

    @classmethod
    def _of(cls, packed):
        """The fields of ``packed``, a dask array of the chunks' tasks' structured results."""
        n = packed.dtype["x"].shape[0]
        fields = cls()
        for f in FIELDS:
            dtype, row = packed.dtype[f].base, f in _ROW_FIELDS
            fields[f] = packed.map_blocks(_field, field=f, dtype=dtype,
                                          chunks=(packed.chunks[0], (n,)) if row else None,
                                          new_axis=1 if row else None,
                                          meta=np.empty((0, 0) if row else (0,), dtype),
                                          name=f"fastopt-{f}-{packed.name.rpartition('-')[2]}")
        object.__setattr__(fields, "_packed", packed)  # not a key of the result
        return fields

    def compute(self, **kwargs):
        """The in-memory result: ``fastopt.minimize_batch``'s ``OptimizeResult``, the same
        fields (NumPy arrays) and ``message``. ``kwargs`` go to ``dask.compute``."""
        (packed,) = dask.compute(self._packed, **kwargs)  # one task per chunk, no more
        result = OptimizeResult((f, np.ascontiguousarray(packed[f])) for f in FIELDS)
        result.message = _summary(result.status)
        return result

    def persist(self, **kwargs):
        """A ``LazyBatchResult`` whose tasks have run, their results kept in the cluster's
        memory (``dask.persist``). ``kwargs`` go to ``dask.persist``."""
        (packed,) = dask.persist(self._packed, **kwargs)
        return LazyBatchResult._of(packed)


def minimize_batch(fun, X0, args=(), method="adam", jac=None, bounds=None, tol=None,
                   options=None):
    r"""Minimize the m problems of a Dask array's rows, each row chunk on a Dask worker.

    :func:`fastopt.minimize_batch`'s contract over a ``dask.array``: problem i starts at row
    i of ``X0``, and its result is bitwise the one ``fastopt.minimize_batch`` gives it in one
    in-process call on the whole array. Each chunk of rows is one task, which runs
    ``fastopt.minimize_batch`` on its rows; it runs where the active Dask scheduler puts it
    (the workers of a ``distributed.Client``, or local threads without one).

    Parameters
    ----------
    fun : callable or fastopt.dask.lowlevel
        A vectorised Python objective, as in :func:`fastopt.minimize_batch` (sent to the
        workers by cloudpickle), or a C objective given by its recipe,
        ``fastopt.dask.lowlevel(factory, *args, **kwargs)`` (see :class:`lowlevel`): a
        ``scipy.LowLevelCallable`` itself cannot be pickled (TypeError).
    X0 : dask.array.Array, shape (m, n)
        The starting points, chunked by rows (chunks across columns are merged); chunk
        sizes must be known. Each row chunk is one task: aim for tasks of a second or more
        (see Notes). The dtype rule is minimize_batch's.
    args : tuple, optional
        Extra arguments of a Python ``fun`` and ``jac``, as in :func:`fastopt.minimize_batch`:
        an array (NumPy or Dask) with m rows is per problem and is cut into X0's row chunks
        (a dask array is rechunked to them); a scalar or an array with one row is shared,
        and sent to each worker once.
    method, jac, tol
        As in :func:`fastopt.minimize_batch`. (There is no ``callback``: the loops run on the
        workers.)
    bounds : scipy.optimize.Bounds or sequence of (min, max), optional
        As in :func:`fastopt.minimize_batch`; a box per problem is a ``Bounds(lb, ub)`` with
        ``lb``, ``ub`` of shape (m, n) or (m, 1), NumPy or Dask arrays, cut into X0's row
        chunks.
    options : dict, optional
        As in :func:`fastopt.minimize_batch` (``lr`` may be an array of shape (m,), NumPy or
        Dask, cut into X0's row chunks), except ``disp`` and ``progress``: follow the tasks
        with Dask's dashboard or ``dask.distributed.progress`` instead. ``n_threads``
        applies per task; ``distributed``'s workers set ``OMP_NUM_THREADS=1``, so the
        default (None) is one thread per task there: give parallelism with Dask's workers
        and threads.

    Returns
    -------
    res : fastopt.dask.LazyBatchResult
        ``x``, ``fun``, ``jac``, ``nit``, ``nfev``, ``njev``, ``status``, ``success``: dask
        arrays with X0's row chunks; ``res.compute()`` gives
        :func:`fastopt.minimize_batch`'s ``OptimizeResult`` (with its ``message``).

    Raises
    ------
    TypeError, ValueError
        On bad arguments, before any task runs (including a ``lowlevel`` recipe that cannot
        be imported or pickled, or does not make a ``LowLevelCallable`` of a signature
        fastopt runs). What only the data can tell (a non-finite X0 row, a negative ``lr``
        in a dask array) is raised by the task, when the result is computed. An exception
        raised by ``fun`` on a worker reaches the caller of ``compute`` as that exception.

    See Also
    --------
    fastopt.minimize_batch : the same, in memory, in one process.

    Notes
    -----
    Each task solves its chunk with ``fastopt.minimize_batch``, whose result for one problem
    depends on nothing but that problem (not the other rows, the chunking, nor the thread
    count): hence the bitwise equality with one in-process call. Should a worker die, Dask
    reruns its tasks elsewhere, with the same results. A task costs Dask a fixed time
    (scheduling, sending the chunk and its results: 11 to 38 ms of worker time on a loaded
    2-core machine, ``python -m fastopt bench-loops --dask`` measures it on yours); chunks of
    a second of work or more keep it under a few percent.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastopt, fastopt.dask
    >>> X0 = da.from_array(np.random.default_rng(0).uniform(-2, 2, (10000, 2)),
    ...                    chunks=(2500, 2))
    >>> rosen = fastopt.dask.lowlevel(fastopt.problems.rosenbrock_lowlevel)
    >>> options = {"lr": 0.01, "maxiter": 20000, "gtol": 1e-6}
    >>> res = fastopt.dask.minimize_batch(rosen, X0, options=options)
    >>> res.x  # doctest: +ELLIPSIS
    dask.array<fastopt-x, shape=(10000, 2), dtype=float64, chunksize=(2500, 2), ...>
    >>> out = res.compute()
    >>> out.message
    '10000 problems: 10000 converged'
    >>> same = fastopt.minimize_batch(rosen(), X0.compute(), options=options)
    >>> bool(np.array_equal(out.x, same.x))
    True
    """
    if isinstance(fun, LowLevelCallable):
        raise TypeError("fun: a scipy.LowLevelCallable holds raw pointers and cannot be sent to "
                        "Dask workers; pass fastopt.dask.lowlevel(factory, *args), where "
                        "factory(*args) returns it, e.g. "
                        "fastopt.dask.lowlevel(fastopt.problems.rosenbrock_lowlevel)")
    X0 = _row_chunked(X0)
    m, n = X0.shape
    rows = X0.chunks[0]
    options = options_dict(options)
    for name in ("disp", "progress"):
        if options.get(name):
            raise ValueError(f"options[{name!r}]: not on Dask (the tasks run on workers); "
                             "follow them with Dask's dashboard or "
                             "dask.distributed.progress(res.x)")
    cls = optimizer_class(method)
    args = args_tuple(args)
    spec = fun if isinstance(fun, lowlevel) else None
    local_fun = spec.check() if spec is not None else fun

    # What goes to each task: each argument shared, or per problem (cut into X0's rows).
    arg_parts = [_Part.of(a, m, rows, f"args[{i}]", shared_rows_ok=True)
                 for i, a in enumerate(args)]
    lr = options.get("lr")
    lr_part = None
    if lr is not None and np.ndim(lr) > 0:
        if not isinstance(lr, da.Array):
            _learning_rates({"lr": lr}, m)  # checks values too: it is in memory
        elif lr.shape != (m,):
            raise ValueError(f"lr must be a number or have shape (m,) = ({m},), got shape "
                             f"{lr.shape}")
        lr_part = _Part.of(lr, m, rows, "lr", shared_rows_ok=False)
    bounds_parts = _bounds_parts(bounds, m, n, rows, X0.dtype)

    # minimize_batch's own checks on zero rows (fun is not called), before any task runs;
    # its result has the fields' dtypes. Options a worker would warn about are dropped
    # after warning here once.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meta = _minimize_batch(
            local_fun, np.zeros((0, n), X0.dtype), args=tuple(p.empty() for p in arg_parts),
            method=method, jac=jac, tol=tol,
            bounds=_chunk_bounds(bounds, bounds_parts, lambda p: p.empty()),
            options=dict(options, **({"lr": lr_part.empty()} if lr_part else {})))
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=2)
    known = set(BATCH_OPTIONS) | set(_hyperparameter_names(cls)) | {"lr_scheduler"}
    options = {k: v for k, v in options.items() if k in known}

    # One blockwise layer of tasks, one per row chunk, each returning its rows' fields packed
    # in one structured array; then one light layer per field. (A graph of delayed calls
    # and from_delayed pieces cost Dask ~10 ms per chunk on the client alone.)
    packed = np.dtype([(f, meta[f].dtype, (n,) if f in _ROW_FIELDS else ())
                       for f in FIELDS])
    pieces = []  # the per-problem arrays, in the order the task gets their blocks
    take = lambda part: part.entry(pieces)  # noqa: E731
    kwargs = {"fun": spec if spec is not None else fun, "method": method, "jac": jac,
              "tol": tol, "packed": packed,
              "args": tuple(take(p) for p in arg_parts),
              "bounds": bounds if bounds_parts is None else None,
              "box": None if bounds_parts is None else tuple(take(p) for p in bounds_parts),
              "options": dict(options, **({"lr": take(lr_part)} if lr_part else {}))}
    letters = iter("klmnopqrstuvwxyzabcdefgh")
    indexed = []
    for array in pieces:
        indexed += [array, "i" + "".join(next(letters) for _ in range(array.ndim - 1))]
    token = uuid.uuid4().hex  # not pure: a rerun is a new computation
    solved = da.blockwise(_solve_block, "i", X0, "ij", *indexed, dtype=packed,
                          concatenate=True, meta=np.empty((0,), packed),
                          name=f"fastopt-minimize_batch-{token}", **kwargs)
    return LazyBatchResult._of(solved)


def _solve_block(X, *pieces, fun, method, jac, tol, packed, args, bounds, box, options):
    """One task: ``fastopt.minimize_batch`` on a chunk's rows X; ``pieces`` are the chunk's
    blocks of the per-problem arrays, which ``args``, ``box`` and ``options`` name by
    position (:class:`_Piece`). Returns the fields packed in one structured array."""
    take = lambda v: pieces[v.index] if isinstance(v, _Piece) else v  # noqa: E731
    if isinstance(fun, lowlevel):
        fun = fun()
    if box is not None:
        bounds = Bounds(take(box[0]), take(box[1]))
    res = _minimize_batch(fun, X, args=tuple(take(a) for a in args), method=method, jac=jac,
                          bounds=bounds, tol=tol,
                          options={k: take(v) for k, v in options.items()})
    out = np.empty(X.shape[0], packed)
    for f in FIELDS:
        out[f] = res[f]
    return out


def _field(block, field):
    return np.ascontiguousarray(block[field])


def _row_chunked(X0):
    """X0 as a dask array of shape (m, n) with known row chunks and one column chunk."""
    if not isinstance(X0, da.Array):
        raise TypeError("X0 must be a dask array of shape (m, n) (for a NumPy array use "
                        "fastopt.minimize_batch, or dask.array.from_array(X0, chunks=(rows, "
                        f"-1))), got {type(X0).__name__}")
    if X0.ndim != 2:
        raise ValueError(f"X0 must have shape (m, n): one row per problem, got shape {X0.shape}")
    if any(np.isnan(c) for c in X0.chunks[0]) or np.isnan(X0.shape[1]):
        raise ValueError("X0: its chunk sizes are unknown; call X0.compute_chunk_sizes() first")
    return X0.rechunk({1: -1}) if X0.numblocks[1] > 1 else X0


class _Piece:
    """Where a task finds a per-problem argument: its block ``pieces[index]``."""

    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index


class _Part:
    """An argument as the tasks get it: shared (the same value for every chunk; an array
    becomes one graph key, so that Dask sends it to a worker once, not once per task) or
    per problem (a dask array rechunked to X0's row chunks: one block per task)."""

    def __init__(self, value, rows=None):
        self.value, self.rows = value, rows

    @classmethod
    def of(cls, a, m, rows, name, shared_rows_ok):
        """minimize_batch's rule: a scalar or an array with one row is shared, an array with
        m rows is per problem."""
        shape = a.shape if isinstance(a, da.Array) else np.shape(a)
        if shared_rows_ok and (len(shape) == 0 or shape[0] == 1):
            return cls(a)
        if len(shape) == 0 or shape[0] != m:
            raise ValueError(f"{name} must have m = {m} rows (one per problem)"
                             + (", or be a scalar or have one row (shared)"
                                if shared_rows_ok else "") + f"; got shape {shape}")
        if not isinstance(a, da.Array):
            a = np.asarray(a)
            a = da.from_array(a, chunks=(rows, *a.shape[1:]))
        return cls(a.rechunk({0: rows, **{ax: -1 for ax in range(1, a.ndim)}}), rows)

    def entry(self, pieces):
        """What the task's keyword arguments hold for it: a :class:`_Piece` (its array
        appended to ``pieces``), a delayed shared array, or the shared value itself."""
        if self.rows is not None:
            pieces.append(self.value)
            return _Piece(len(pieces) - 1)
        if isinstance(self.value, (np.ndarray, da.Array)):
            return dask.delayed(self.value)
        return self.value

    def empty(self):
        """The dry run's stand-in: zero rows of a per-problem array; a shared dask array as
        zeros of its shape (never computed on the client)."""
        if self.rows is not None:
            return np.zeros((0, *self.value.shape[1:]), self.value.dtype)
        if isinstance(self.value, da.Array):
            return np.zeros(self.value.shape, self.value.dtype)
        return self.value


def _bounds_parts(bounds, m, n, rows, dtype):
    """(lb part, ub part) of a box per problem (a Bounds with a 2-D side), or None."""
    if not (isinstance(bounds, Bounds) and (np.ndim(bounds.lb) >= 2 or np.ndim(bounds.ub) >= 2)):
        return None
    sides = []
    for side, name in ((bounds.lb, "bounds.lb"), (bounds.ub, "bounds.ub")):
        if np.ndim(side) == 2 and np.shape(side)[0] == m and m != 1:
            sides.append(_Part.of(side, m, rows, name, shared_rows_ok=False))
        else:
            sides.append(_Part(side))  # one row, 1-D or scalar; checked below
    # NumPy boxes are checked whole here (shape, NaN, lb > ub), as minimize_batch checks them;
    # those of dask arrays by shape only (their values by each task).
    if not any(isinstance(b, da.Array) for b in (bounds.lb, bounds.ub)):
        batch_bounds(bounds, np.broadcast_to(np.zeros(1, dtype), (m, n)))
    else:
        for side, name in zip((bounds.lb, bounds.ub), ("bounds.lb", "bounds.ub")):
            shape = np.shape(side)
            if len(shape) > 2 or (len(shape) == 2 and (shape[0] not in (1, m) or
                                                       shape[1] not in (1, n))):
                raise ValueError(f"{name} must have shape (m, n) = ({m}, {n}) (a box per "
                                 f"problem), or n = {n} entries or 1 (one box for all); got "
                                 f"shape {shape}")
    return sides


def _chunk_bounds(bounds, parts, pick):
    """``bounds``, or for a box per problem a Bounds of the pieces ``pick(part)``."""
    if parts is None:
        return bounds
    return Bounds(*(pick(p) for p in parts))
