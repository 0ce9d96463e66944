"""``fastopt.minimize_minibatch``: stochastic training on data, one call.

GD, SGD and mini-batch SGD differ only in the data each gradient sees: ``batch_size=1`` is
SGD, ``batch_size=len(data)`` is full-batch gradient descent, anything between is mini-batch.
Every fastopt method works with any batch size; the update goes through the optimizer's class
(and its C-level rule), as in ``minimize``.
"""

import numbers

import numpy as np
from scipy.optimize import OptimizeResult

from fastopt._driver import (
    STATUS_MESSAGES,
    _callback_style,
    _check_maxiter,
    _starting_point,
    split_hyperparameters,
)
from fastopt._loop import STATUS_CALLBACK, STATUS_MAXITER, STATUS_NONFINITE
from fastopt._methods import optimizer_class
from fastopt._validation import check_bool

STATUS_DONE = 0
MINIBATCH_MESSAGES = {
    STATUS_DONE: "Optimization terminated successfully: all epochs completed.",
    STATUS_MAXITER: "Maximum number of iterations (steps) has been exceeded.",
    STATUS_NONFINITE: STATUS_MESSAGES[STATUS_NONFINITE, None],
    STATUS_CALLBACK: STATUS_MESSAGES[STATUS_CALLBACK, None],
}


def minimize_minibatch(fun, x0, data, method="sgd", batch_size=32, epochs=1, shuffle=True,
                       seed=None, args=(), callback=None, options=None):
    """Minimize a loss over a data set by stochastic (mini-batch) gradient steps.

    Parameters
    ----------
    fun : callable
        ``fun(x, *batch, *args) -> (f, g)``: the loss on one batch and its gradient with
        respect to ``x`` (usually means over the batch). ``x`` is a read-only view of the
        current iterate.
    x0 : array_like, shape (n,)
        Starting point; never modified. float32 stays float32, other dtypes become float64.
    data : ndarray or tuple of ndarray
        The data set; every array shares the first axis (the samples), e.g. ``(X, y)``.
    method : str, default="sgd"
        Any fastopt method (``"sgd"``, ``"momentum"``, ``"nag"``, ``"adagrad"``,
        ``"rmsprop"``, ``"adadelta"``, ``"adam"``, ``"adamw"``, ``"gd"``).
    batch_size : int, default=32
        Samples per step: 1 is SGD, ``len(data)`` (or more) is full-batch GD. When it does
        not divide the number of samples, the last batch of each epoch is smaller (it is kept,
        not dropped).
    epochs : int, default=1
        Passes over the data.
    shuffle : bool, default=True
        Visit the samples in a new random order each epoch.
    seed : int, numpy.random.Generator or None, default=None
        Seed of the shuffling; the same seed gives the identical result.
    args : tuple, optional
        Extra arguments of ``fun``, after the batch.
    callback : callable, optional
        Called once per **epoch**, after its last step: ``callback(intermediate_result)``
        (an ``OptimizeResult`` with ``x``, ``fun`` -- the epoch's mean loss --, ``nit``,
        ``nepoch``) or ``callback(xk)``. ``StopIteration`` ends the run (status 99).
    options : dict, optional
        The method's hyperparameters (e.g. ``lr``), ``n_threads``, and ``maxiter`` (a cap on
        the total number of steps, default none).

    Returns
    -------
    res : scipy.optimize.OptimizeResult
        ``x``; ``fun``, the mean loss of the last epoch (batch losses weighted by batch
        size, each evaluated before its step); ``history``, that mean for every epoch;
        ``jac``, the last batch's gradient; ``nit`` (steps), ``nepoch`` (completed epochs),
        ``nfev`` = ``njev`` (calls of ``fun``), ``status`` (0 all epochs done, 1 ``maxiter``
        steps reached, 3 non-finite loss or gradient -- ``x`` is then the last finite iterate
        --, 99 stopped by the callback), ``success``, ``message``.

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
    >>> np.round(res.x, 3), res.nit, res.nepoch
    (array([ 1. , -2. ,  0.5]), 640, 20)
    """
    cls = optimizer_class(method)
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    if not isinstance(args, tuple):
        args = (args,)
    x = _starting_point(x0)
    arrays, n_samples = _check_data(data)
    batch_size = min(_positive_int("batch_size", batch_size), n_samples)
    epochs = _positive_int("epochs", epochs)
    shuffle = check_bool("shuffle", shuffle)
    new_style = _callback_style(callback)
    hyper, n_threads, maxiter = _split_options(cls, options)
    rng = np.random.default_rng(seed)

    optimizer = cls(x, n_threads=n_threads, **hyper)
    x_view = x.view()
    x_view.flags.writeable = False
    x_prev = np.empty_like(x)
    history, g, nit, status = [], None, 0, STATUS_DONE
    for epoch in range(epochs):
        order = rng.permutation(n_samples) if shuffle else None
        total = 0.0
        for start in range(0, n_samples, batch_size):
            if nit >= maxiter:
                status = STATUS_MAXITER
                break
            rows = slice(start, start + batch_size) if order is None else \
                order[start:start + batch_size]
            batch = [a[rows] for a in arrays]
            f, g_new = _loss_and_grad(fun, x_view, batch, args, x)
            if not (np.isfinite(f) and np.all(np.isfinite(g_new))):
                status = STATUS_NONFINITE
                if nit > 0:  # return the iterate before the one where f or g blew up
                    x[...] = x_prev
                    nit -= 1
                break
            g = g_new
            x_prev[...] = x
            optimizer.step(g)
            nit += 1
            total += f * len(batch[0])
        if status != STATUS_DONE:
            break
        history.append(total / n_samples)
        if callback is not None:
            try:
                if new_style:
                    callback(intermediate_result=OptimizeResult(
                        x=x.copy(), fun=history[-1], nit=nit, nepoch=len(history)))
                else:
                    callback(x.copy())
            except StopIteration:
                status = STATUS_CALLBACK
                break
    return OptimizeResult(
        x=x, fun=history[-1] if history else np.nan, history=history,
        jac=None if g is None else g.copy(), nit=nit, nepoch=len(history),
        nfev=nit, njev=nit, status=status, success=status == STATUS_DONE,
        message=MINIBATCH_MESSAGES[status],
    )


def _loss_and_grad(fun, x_view, batch, args, x):
    out = fun(x_view, *batch, *args)
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError(f"fun must return a tuple (f, g), got {type(out).__name__}")
    f, g = out
    f = np.asarray(f)
    if f.size != 1 or f.dtype.kind not in "fiub":
        raise ValueError(f"fun must return a real scalar loss, got {f!r}")
    g = np.asarray(g)
    if g.size != x.size or g.dtype.kind not in "fiub":
        raise ValueError(f"fun's gradient must have {x.size} real values, got shape {g.shape} "
                         f"and dtype {g.dtype}")
    return float(f.reshape(-1)[0]), np.ascontiguousarray(g.reshape(-1), dtype=x.dtype)


def _check_data(data):
    arrays = list(data) if isinstance(data, (tuple, list)) else [data]
    if not arrays:
        raise ValueError("data must hold at least one array")
    out = []
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray):
            a = np.asarray(a)
        if a.ndim == 0:
            raise ValueError(f"data[{i}] must have a first axis (samples), got a scalar")
        out.append(a)
    n_samples = len(out[0])
    if n_samples == 0:
        raise ValueError("data must hold at least one sample")
    for i, a in enumerate(out[1:], start=1):
        if len(a) != n_samples:
            raise ValueError(f"data arrays differ in length: data[0] has {n_samples} samples, "
                             f"data[{i}] has {len(a)}")
    return out, n_samples


def _positive_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _split_options(cls, options):
    """(hyperparameters, n_threads, maxiter); unknown options warn, as in ``minimize``."""
    options = {} if options is None else options
    hyper = split_hyperparameters(cls, options, ("n_threads", "maxiter"), "minimize_minibatch",
                                  stacklevel=3)
    maxiter = options.get("maxiter")
    maxiter = np.iinfo(np.intp).max if maxiter is None else _check_maxiter(maxiter)
    return hyper, options.get("n_threads"), maxiter
