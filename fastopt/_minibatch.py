"""``fastopt.minimize_minibatch``: stochastic training on data, one call.

GD, SGD and mini-batch SGD differ only in the data each gradient sees: ``batch_size=1`` is
SGD, ``batch_size=len(data)`` is full-batch gradient descent, anything between is mini-batch.
Every fastopt method works with any batch size; the update goes through the optimizer's class
(and its C-level rule), as in ``minimize``.
"""

import numpy as np
from scipy.optimize import OptimizeResult

from fastopt._clipping import gradient_clipper
from fastopt._conventions import COUNT_MAX, bool_option, fun_and_grad, iteration_limit, \
    whole_number
from fastopt._driver_common import (
    COMMON_OPTIONS,
    STATUS_MESSAGES,
    TRAIN_OPTIONS,
    args_tuple,
    callback_style,
    check_fun,
    clip_options,
    final_point,
    flush_option,
    make_progress,
    make_scheduler,
    needs_metric,
    options_dict,
    progress_options,
    read_options,
    scheduler_option,
    starting_point,
)
from fastopt._loop import STATUS_CALLBACK, STATUS_CONVERGED, STATUS_MAXITER, STATUS_NONFINITE
from fastopt._methods import optimizer_class
from fastopt._minibatch_blocks import BlockOrder, MemoryBlocks, block_sizes
from fastopt._minibatch_dask import DaskBlocks, check_dask_data, is_dask_collection
from fastopt._validation import check_int

MINIBATCH_OPTIONS = COMMON_OPTIONS + TRAIN_OPTIONS + ("lr_scheduler_interval", "prefetch")
MINIBATCH_MESSAGES = {
    (STATUS_CONVERGED, "gtol"): "Optimization terminated successfully: the inf-norm of the "
                                "full-data gradient is <= gtol.",
    (STATUS_CONVERGED, "ftol"): "Optimization terminated successfully: the relative change "
                                "of the epoch's mean loss is <= ftol.",
    (STATUS_CONVERGED, "xtol"): "Optimization terminated successfully: x moved by <= xtol "
                                "(inf-norm) over the last epoch.",
    (STATUS_MAXITER, "epochs"): "Maximum number of epochs has been reached.",
    (STATUS_MAXITER, "maxiter"): "Maximum number of iterations (steps) has been exceeded.",
    (STATUS_NONFINITE, None): STATUS_MESSAGES[STATUS_NONFINITE, None],
    (STATUS_CALLBACK, None): STATUS_MESSAGES[STATUS_CALLBACK, None],
}


def minimize_minibatch(fun, x0, data, method="sgd", batch_size=32, epochs=1, shuffle=True,
                       seed=None, args=(), callback=None, options=None, blocks=None):
    """Minimize a loss over a data set by stochastic (mini-batch) gradient steps.

    Parameters
    ----------
    fun : callable
        ``fun(x, *batch, *args) -> (f, g)``: the loss on one batch and its gradient with
        respect to ``x``, the **means** over the batch (the ``gtol`` test averages them over
        the data). ``x`` is a read-only view of the current iterate; ``g`` may be any array
        of x's size (x itself, a view of it, a list, another real dtype): its values are
        copied before the step.
    x0 : array_like, shape (n,)
        Starting point; never modified. float32 stays float32, other dtypes become float64.
    data : ndarray, dask array or tuple of them
        The data set; every array shares the first axis (the samples), e.g. ``(X, y)``.
        Dask arrays are streamed, block by block (their row chunks), through the one
        optimizer, never held in memory whole (see Notes); NumPy arrays beside them in the
        tuple stay in memory and are cut into the same blocks.
    method : str or callable, default="sgd"
        Any optimizer's name (``"sgd"``, ``"adam"``, ... for :class:`fastopt.SGD`,
        :class:`fastopt.Adam`, ...; case-insensitive) or ``"gd"``, or as
        ``fastopt.adam``, ... (or the class, ``fastopt.Adam``, ...).
    batch_size : int, default=32
        Samples per step: 1 is SGD, ``len(data)`` (or more) is full-batch GD. When it does
        not divide the number of samples, the last batch of each epoch is smaller (it is kept,
        not dropped).
    epochs : int or float, default=1
        Maximum number of passes over the data; a non-integer is rounded up, ``inf`` means
        no limit (then a stopping rule in ``options`` ends the run).
    shuffle : bool, default=True
        Visit the samples in a new random order each epoch: the blocks in a random order,
        the rows within each block in a random order (the block rule, in Notes).
    seed : int, numpy.random.Generator or None, default=None
        Seed of the shuffling; the same seed (and ``blocks``) gives the identical result,
        whether the data are NumPy or dask arrays.
    args : tuple, optional
        Extra arguments of ``fun``, after the batch.
    callback : callable, optional
        Called once per **epoch**, after its last step (and after the ``gtol`` evaluation):
        ``callback(intermediate_result)`` (an ``OptimizeResult`` with ``x``, ``fun`` -- the
        epoch's mean loss --, ``nit``, ``nepoch``, and ``jac``, the full-data gradient, when
        ``gtol`` is on) or ``callback(xk)``. ``StopIteration`` ends the run (status 99).
    blocks : int, sequence of int or None, default=None
        The blocks of rows the shuffling works in (see Notes): None is one block for NumPy
        data and the row chunks of the first dask array for dask data; an int ``b`` means
        blocks of ``b`` rows (the last one smaller, as dask's ``chunks=b``); a sequence gives
        the block sizes (ints >= 0 summing to the number of samples, e.g. a dask array's
        ``.chunks[0]``). Dask data are rechunked to them. The same ``blocks`` and ``seed``
        give NumPy data the order, and so the result, of dask data.
    options : dict, optional
        The method's hyperparameters (e.g. ``lr``), and:

        maxiter : int or float, default=inf
            A cap on the total number of steps (``nit``), as in :func:`fastopt.minimize`.
        gtol : float, default=0 (off)
            Stop when the inf-norm of the **full-data** gradient at the end of an epoch is
            <= gtol. That gradient is the mean of ``fun``'s gradients over all the samples,
            taken in order in batches of ``batch_size`` (weighted by batch size): one more
            pass over the data per epoch, without steps, counted in ``nfev`` (with dask data,
            one more streamed pass: every block is computed again).
        ftol : float, default=0 (off)
            Stop when the epoch's mean loss changed by at most
            ``ftol * max(|F_prev|, |F|, 1)`` from the previous epoch's (free: the losses are
            those of the steps; with stochastic batches they are noisy, so use a loose ftol).
        xtol : float, default=0 (off)
            Stop when x moved by at most xtol (inf-norm) over the last epoch.
        n_threads : int or None, default=None
            The number of OpenMP threads: ``None`` follows OpenMP (``OMP_NUM_THREADS`` if
            set, else every usable core), a positive int that many (at most 1024), ``-1``
            every usable core, ``-2`` all but one, and so on; 0 is an error. The result does
            not depend on it. The update of x uses them when x is large.
        flush_subnormals : bool, default=False
            Run each step in flush-to-zero mode (the optimizer's ``flush_subnormals``; also
            on inside a ``with fastopt.flush_subnormals():`` block): subnormal values read
            as zero and subnormal results become zero in the update, which keeps its speed
            when the state drifts below the normal range; results differ from IEEE
            arithmetic there. ``fun``, the clipping and the callback run in the caller's
            floating-point mode, restored exactly after each step.
        max_grad_norm, grad_norm_type, clip_value : float, optional
            Clip each batch's gradient before its step, as in :func:`fastopt.minimize`
            (the returned ``jac`` is the gradient itself).

        disp : bool or int, default=False
            0: silent; 1: a summary at the end; 2: also a line every ``disp_every`` epochs
            with the epoch, its mean loss, the inf-norm of the gradient (the full-data one
            when ``gtol`` is on, else the last batch's), the learning rate the next step
            uses, and the elapsed time.
        disp_every : int, default=1
            Epochs between the lines of ``disp=2``.
        progress : bool, default=False
            A tqdm bar of the steps (batches), with the epoch and the batch loss (tqdm:
            ``pip install tqdm``; ImportError without it). Neither option changes the
            result.
        lr_scheduler : callable, optional
            ``factory(opt) -> scheduler``, called once with the run's optimizer, e.g.
            ``lambda opt: fastopt.lr_scheduler.StepLR(opt, step_size=10)``; stepped after
            each epoch (``ReduceLROnPlateau`` with the epoch's mean loss), as torch's
            training loops step it, or after each step.
        lr_scheduler_interval : {"epoch", "step"}, default="epoch"
            When the scheduler steps; ``"step"`` steps it after every batch's update
            (``ReduceLROnPlateau`` with that batch's loss).
        prefetch : int, default=1
            Dask data: the number of blocks computed ahead, in the background, while the
            optimizer works on the current one; at most ``1 + prefetch`` blocks are held
            at once (0: each block is computed when it is needed). Ignored for NumPy data;
            the result does not depend on it.

        The rules are tested once per completed epoch, in this order; numbers may be NumPy
        scalars or 0-d arrays.

    Returns
    -------
    res : scipy.optimize.OptimizeResult
        ``x``; ``fun``, the mean loss of the last epoch (batch losses weighted by batch
        size, each evaluated before its step); ``history``, that mean for every epoch;
        ``jac``, the full-data gradient at ``x`` when ``gtol`` is on, else the last batch's
        gradient; ``nit`` (steps), ``nepoch`` (completed epochs), ``nfev`` = ``njev`` (calls
        of ``fun``), ``status``, ``success`` (True only when a stopping rule was met),
        ``message``. Status codes, as in :func:`fastopt.minimize`: 0 a stopping rule was met
        (the message says which), 1 ``epochs`` completed or ``maxiter`` steps made without
        meeting one, 3 non-finite loss or gradient (``x`` is then the last iterate where they
        were finite), 99 stopped by the callback.

    Raises
    ------
    TypeError, ValueError
        A bad argument (the message names it), before any step and before any block of
        dask data is computed. Exceptions of ``fun``, or of the computation of a dask
        block, reach the caller as they are. A computed dask block whose shape is not the
        one its chunks declare raises ValueError (dask trusts declared chunks).

    Notes
    -----
    **The block rule.** The samples are cut into consecutive blocks of sizes
    ``c_0, ..., c_{B-1}`` (``blocks``). Each epoch with ``shuffle=True`` draws from one
    Generator (``numpy.random.default_rng(seed)``), in this order: the block order
    ``rng.permutation(B)`` (nothing when ``B == 1``), then each block's row order
    ``rng.permutation(c_k)`` when the epoch reaches the block (the first block's at the start
    of the epoch). The epoch visits the samples in these row orders, block after block, and
    the batches are consecutive runs of ``batch_size`` samples of that sequence: a batch may
    span two (or more) blocks, and the last batch of an epoch is smaller. With one block (the
    default for NumPy data) an epoch is ``rng.permutation(n_samples)``, the order of the
    releases before ``blocks`` existed. ``shuffle=False`` and the ``gtol`` pass take the
    samples in their natural order.

    **Dask arrays.** ``import fastopt`` does not import dask; a call with dask data does.
    Each dask array is rechunked to the blocks (its other axes merged into one chunk) and
    block ``k`` of every array is computed by one ``dask.compute`` call, with the active
    scheduler (dask's local threads, or a ``distributed.Client``'s workers, which send the
    block here); ``fun`` and the optimizer run in this process. A background thread computes
    the next ``prefetch`` blocks of the epoch (and across the ``gtol`` pass and into the next
    epoch) while the current one is used; a batch spanning blocks holds copies of at most
    ``batch_size`` rows. Under the block rule the batches are those of the NumPy arrays with
    the same ``blocks``, so the result is identical, bit for bit, to the in-memory run when
    the data fit: ``minimize_minibatch(fun, x0, (X, y), blocks=X_dask.chunks[0], seed=0)``
    equals ``minimize_minibatch(fun, x0, (X_dask, y_dask), seed=0)`` when ``X`` and ``y``
    are C-contiguous, as dask's blocks usually are (the batches' memory layout decides how
    ``X @ w`` rounds: a strided view does not go through BLAS).

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 3)); y = X @ np.array([1.0, -2.0, 0.5])
    >>> def loss_and_grad(w, Xb, yb):
    ...     r = Xb @ w - yb
    ...     return 0.5 * np.mean(r ** 2), Xb.T @ r / len(yb)
    >>> res = fastopt.minimize_minibatch(loss_and_grad, np.zeros(3), data=(X, y),
    ...                                  method="sgd", batch_size=16, epochs=20, seed=0,
    ...                                  options={"lr": 0.1})
    >>> np.round(res.x, 3), res.nit, res.nepoch, res.status
    (array([ 1. , -2. ,  0.5]), 640, 20, 1)

    With a stopping rule, the run ends as soon as it holds (success, status 0):

    >>> res = fastopt.minimize_minibatch(loss_and_grad, np.zeros(3), data=(X, y),
    ...                                  method="sgd", batch_size=16, epochs=np.inf, seed=0,
    ...                                  options={"lr": 0.1, "gtol": 1e-8})
    >>> res.success, res.nepoch < 20, bool(np.max(np.abs(res.jac)) <= 1e-8)
    (True, True, True)
    """
    cls = optimizer_class(method)
    check_fun(fun, native=False)
    args = args_tuple(args)
    x = starting_point(x0)
    arrays, n_samples, default_blocks = _check_data(data)
    sizes = block_sizes(blocks, n_samples, default_blocks or (n_samples,))
    batch_size = min(whole_number("batch_size", batch_size), n_samples)
    epochs = iteration_limit("epochs", epochs, low=1)
    shuffle = bool_option("shuffle", shuffle)
    new_style = callback_style(callback)
    # Every stopping rule is off by default: the epochs end the run.
    options = options_dict(options)
    hyper, n_threads, rules = read_options(
        cls, options, known=MINIBATCH_OPTIONS, caller="minimize_minibatch",
        stacklevel=2, default_maxiter=COUNT_MAX, default_gtol=0.0)
    train = _train_options(options)
    prefetch = check_int("prefetch", options.get("prefetch", 1), low=0,
                         what="number of blocks")
    clip = gradient_clipper(clip_options(options), x, n_threads)
    rng = _generator(seed)

    optimizer = cls(x, n_threads=n_threads, flush_subnormals=flush_option(options), **hyper)
    sched = _Scheduling(train, optimizer)
    progress = make_progress(train["disp"], train["disp_every"], train["bar"],
                             min(epochs * -(-n_samples // batch_size), rules["maxiter"]),
                             "batch", "epoch", ("f", "|g|_inf", "lr"))
    feeder = None
    try:
        feeder = MemoryBlocks(arrays, sizes) if default_blocks is None else \
            DaskBlocks(arrays, sizes, prefetch)  # dask data
        order = BlockOrder(feeder, sizes, batch_size, shuffle, rng)
        result = _run(fun, x, optimizer, sched, progress, clip, order, n_samples, epochs,
                      args, callback, new_style, rules)
    finally:
        if feeder is not None:
            feeder.close()
        if progress is not None:
            progress.close()
    if train["disp"]:
        _print_minibatch_summary(cls.__name__, result)
    return result


def _run(fun, x, optimizer, sched, progress, clip, order, n_samples, epochs, args, callback,
         new_style, rules):
    """The epochs of minimize_minibatch (its arguments, checked); returns the result."""
    x_view = x.view()
    x_view.flags.writeable = False
    x_prev, x_epoch = np.empty_like(x), np.empty_like(x)
    # fun's gradients are copied into these (the optimizer never sees the user's array):
    # g_try for the batch being evaluated, g for the last finite one, g_full for gtol's.
    g, g_try, g_full = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    history, nit, nfev, have_g, full_at_x = [], 0, 0, False, False
    status, reason = STATUS_MAXITER, "epochs"
    full_pass = rules["gtol"] > 0
    for epoch in range(epochs):
        batches = order.epoch(full_pass, epoch + 1 < epochs)
        x_epoch[...] = x
        total = 0.0
        for batch in batches:
            if nit >= rules["maxiter"]:
                status, reason = STATUS_MAXITER, "maxiter"
                break
            size = len(batch[0])
            f = _loss_and_grad(fun, x_view, batch, args, g_try)
            batch = None  # a streamed block is held no longer than needed
            nfev += 1
            if not (np.isfinite(f) and np.isfinite(g_try).all()):
                status, reason = STATUS_NONFINITE, None
                break
            g, g_try, have_g = g_try, g, True
            x_prev[...] = x
            optimizer.step(g if clip is None else clip(g))
            nit += 1
            full_at_x = False
            total += f * size
            if sched.each_step:
                sched.step(f)
            if progress is not None:
                progress.update(nit, epoch=len(history) + 1, loss=f"{f:.4g}")
        if reason != "epochs":
            break
        history.append(total / n_samples)
        if sched.each_epoch:
            sched.step(history[-1])
        gnorm = None
        if full_pass:
            f_full, nfev = _full_data_loss_and_grad(fun, x_view, order.full_pass(), n_samples,
                                                    args, g_full, nfev)
            if not (np.isfinite(f_full) and np.isfinite(g_full).all()):
                status, reason = STATUS_NONFINITE, None
                break
            gnorm, full_at_x = float(np.max(np.abs(g_full))), True
        if progress is not None and progress.lines and len(history) % progress.every == 0:
            progress.line(len(history), history[-1],
                          gnorm if gnorm is not None else float(np.max(np.abs(g))),
                          optimizer.param_groups[0]["lr"])
        if callback is not None:
            try:
                _call_back(callback, new_style, x, history, nit, g_full if full_at_x else None)
            except StopIteration:
                status, reason = STATUS_CALLBACK, None
                break
        reason = _met_rule(rules, gnorm, history, x, x_epoch)
        if reason is not None:
            status = STATUS_CONVERGED
            break
        reason = "epochs"
    if status == STATUS_NONFINITE and nit > 0:
        x[...] = x_prev  # the iterate before the one where f or g blew up
        nit -= 1
        full_at_x = False
    jac = g_full.copy() if full_at_x else (g.copy() if have_g else None)
    final_point(optimizer, x, status=status)
    return OptimizeResult(
        x=x, fun=history[-1] if history else np.nan, history=history, jac=jac, nit=nit,
        nepoch=len(history), nfev=nfev, njev=nfev, status=status,
        success=status == STATUS_CONVERGED, message=MINIBATCH_MESSAGES[status, reason],
    )


def _train_options(options):
    """The options disp, disp_every, progress, lr_scheduler and lr_scheduler_interval."""
    level, every, bar = progress_options(options, 1)
    interval = options.get("lr_scheduler_interval", "epoch")
    if interval not in ("epoch", "step"):
        raise ValueError(f"lr_scheduler_interval must be 'epoch' or 'step', got {interval!r}")
    return {"disp": level, "disp_every": every, "bar": bar, "interval": interval,
            "lr_scheduler": scheduler_option(options)}


class _Scheduling:
    """The run's scheduler, stepped after each epoch (or each step with
    ``lr_scheduler_interval="step"``); ReduceLROnPlateau gets the epoch's mean loss (the
    batch's loss)."""

    def __init__(self, train, optimizer):
        factory = train["lr_scheduler"]
        self.scheduler = None if factory is None else make_scheduler(factory, optimizer)
        on = self.scheduler is not None
        self.each_step = on and train["interval"] == "step"
        self.each_epoch = on and train["interval"] == "epoch"
        self.with_metric = on and needs_metric(self.scheduler)

    def step(self, f):
        if self.with_metric:
            self.scheduler.step(f)
        else:
            self.scheduler.step()


def _print_minibatch_summary(name, result):
    print(result.message)
    print(f"         Method: fastopt.{name}")
    print(f"         Current function value (last epoch's mean loss): {result.fun:.6g}")
    print(f"         Epochs: {result.nepoch}")
    print(f"         Iterations (steps): {result.nit}")
    print(f"         Function evaluations: {result.nfev}")


def _loss_and_grad(fun, x_view, batch, args, g):
    """The loss fun returns on ``batch`` (a float); its gradient's values into ``g``."""
    f, grad = fun_and_grad(fun(x_view, *batch, *args), context="")
    f = np.asarray(f)
    if f.size != 1 or f.dtype.kind not in "fiub":
        raise ValueError(f"fun must return a real scalar loss f, got {f!r}")
    try:
        grad = np.asarray(grad)
    except Exception as exc:
        raise TypeError(f"fun must return a gradient g of {g.size} real values, got "
                        f"{type(grad).__name__} ({exc})") from exc
    if grad.dtype.kind not in "fiub":
        raise TypeError(f"fun's gradient must have {g.size} real values, got dtype "
                        f"{grad.dtype}")
    if grad.size != g.size:
        raise ValueError(f"fun's gradient must have {g.size} real values (x's size), got "
                         f"shape {grad.shape}")
    # A copy into the driver's own buffer: g may be x itself (read-only), a view of it, a
    # list or another dtype, and the optimizer then never sees the user's array.
    np.copyto(g, grad.reshape(-1), casting="unsafe")
    return float(f.reshape(-1)[0])


def _full_data_loss_and_grad(fun, x_view, batches, n_samples, args, g_full, nfev):
    """(mean loss, nfev) over all the samples, the ``batches`` of the gtol pass (in order, of
    ``batch_size``); the mean gradient (weighted by batch size) into ``g_full``."""
    g_batch = np.empty_like(g_full)
    g_sum = np.zeros(g_full.size)
    total = 0.0
    for batch in batches:
        size = len(batch[0])
        f = _loss_and_grad(fun, x_view, batch, args, g_batch)
        batch = None
        nfev += 1
        total += f * size
        g_sum += size * g_batch
    np.copyto(g_full, g_sum / n_samples, casting="unsafe")
    return total / n_samples, nfev


def _call_back(callback, new_style, x, history, nit, jac):
    if new_style:
        result = OptimizeResult(x=x.copy(), fun=history[-1], nit=nit, nepoch=len(history))
        if jac is not None:
            result.jac = jac.copy()
        callback(intermediate_result=result)
    else:
        callback(x.copy())


def _met_rule(rules, gnorm, history, x, x_epoch):
    """The stopping rule that holds after an epoch ("gtol", "ftol", "xtol"), or None."""
    if gnorm is not None and gnorm <= rules["gtol"]:
        return "gtol"
    if rules["ftol"] > 0 and len(history) >= 2:
        before, now = history[-2], history[-1]
        if abs(before - now) <= rules["ftol"] * max(abs(before), abs(now), 1.0):
            return "ftol"
    if rules["xtol"] > 0 and float(np.max(np.abs(x - x_epoch))) <= rules["xtol"]:
        return "xtol"
    return None


def _generator(seed):
    """np.random.default_rng(seed): a Generator (or SeedSequence, BitGenerator) or None as
    is, else an int >= 0 (fastopt._validation.check_int: the error names ``seed``)."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence,
                                         np.random.BitGenerator)):
        return np.random.default_rng(seed)
    return np.random.default_rng(check_int("seed", seed, low=0, what="seed"))


def _check_data(data):
    """``(arrays, n_samples, default_blocks)``: default_blocks is None for NumPy data, the
    row chunks for dask data (fastopt._minibatch_dask, which imports dask only then)."""
    arrays = list(data) if isinstance(data, (tuple, list)) else [data]
    if not arrays:
        raise ValueError("data must hold at least one array")
    if any(is_dask_collection(a) for a in arrays):
        out, n_samples, chunks = check_dask_data(arrays)
        _check_lengths(out, n_samples)
        return out, n_samples, chunks
    out = []
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray):
            a = np.asarray(a)
        if a.ndim == 0:
            raise ValueError(f"data[{i}] must have a first axis (samples), got a scalar")
        out.append(a)
    n_samples = len(out[0])
    _check_lengths(out, n_samples)
    return out, n_samples, None


def _check_lengths(arrays, n_samples):
    if n_samples == 0:
        raise ValueError("data must hold at least one sample")
    for i, a in enumerate(arrays[1:], start=1):
        if a.shape[0] != n_samples:
            raise ValueError(f"data arrays differ in length: data[0] has {n_samples} samples, "
                             f"data[{i}] has {a.shape[0]}")
