"""fastopt.LBFGS: torch.optim.LBFGS on NumPy arrays, with its closure protocol.

A faithful NumPy port of torch/optim/lbfgs.py (torch 2.13: ``_cubic_interpolate``,
``_strong_wolfe``, ``_directional_evaluate``, the two-loop recursion and its history ring), so
that float64 trajectories equal torch's up to the rounding of dot products (torch calls MKL,
NumPy its own BLAS: other summation orders); tests/test_lbfgs_class.py checks them. The
branches, the order of the scalar operations and torch's quirks are kept on purpose (the line
search's ``tolerance_change`` is its default 1e-9, not the optimizer's; the first iteration's
step is ``min(1, 1/||g||_1) * lr``); comments mark the few places that differ and why.

L-BFGS is not an elementwise update rule, so this class is not an optimizer record
(fastopt/_registry.py) nor a ``fastopt.Optimizer``: the registry's kernels, drivers and batch
machinery, and that base class's ``step(grads)`` and per-parameter state, assume one. The
per-iteration work is a handful of vector operations on one flat vector of all the
parameters: dot products, and BLAS axpy for ``y += a x`` (one pass, no temporary, and fused
in BLAS's vector loop as torch's ``add_(x, alpha=a)`` is). Besides the vectors torch's algorithm keeps (the history,
``d``, the gradients), a step allocates two: the parameters at its start (put back if the
closure fails) and the line search's starting point.
"""

import math
from collections.abc import Mapping, MutableMapping

import numpy as np
from scipy.linalg import blas

from fastopt._validation import (
    _describe,
    as_real_array,
    check_int,
    check_lr,
    check_params,
    check_real,
)

LINE_SEARCH_FNS = (None, "strong_wolfe")

# The hyperparameters, in torch's order, with torch's defaults (max_eval=None means
# max_iter * 5 // 4, resolved when set).
DEFAULTS = {"lr": 1, "max_iter": 20, "max_eval": None, "tolerance_grad": 1e-7,
            "tolerance_change": 1e-9, "history_size": 100, "line_search_fn": None}

# torch's state keys: those made at the first step, those made by the first iteration, and
# "al" (the two-loop's scratch, made by the second iteration).
_COUNT_KEYS = ("func_evals", "n_iter")
_ITER_KEYS = ("d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss")
_STATE_KEYS = (*_COUNT_KEYS, *_ITER_KEYS, "al")
_STATE_KEY_SETS = [set(_COUNT_KEYS), {*_COUNT_KEYS, *_ITER_KEYS}, set(_STATE_KEYS)]


def _check_line_search_fn(value):
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "UO":
        value = value[()]  # (as numpy.load gives it back)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"Invalid line_search_fn: line_search_fn={_describe(value)} must be "
                        "None or 'strong_wolfe'")
    if value != "strong_wolfe":
        raise ValueError(f"Invalid line_search_fn: line_search_fn={value!r} must be None or "
                         "'strong_wolfe' (the line searches torch.optim.LBFGS has)")
    return "strong_wolfe"


def _check_hyperparameters(lr, max_iter, max_eval, tolerance_grad, tolerance_change,
                           history_size, line_search_fn):
    """All the hyperparameters checked, as a dict of plain Python values (max_eval resolved)."""
    out = {"lr": check_lr(lr),
           "max_iter": check_int("max_iter", max_iter, low=1, what="max_iter value")}
    out["max_eval"] = (out["max_iter"] * 5 // 4 if max_eval is None else
                       check_int("max_eval", max_eval, low=1, what="max_eval value"))
    out["tolerance_grad"] = check_real("tolerance_grad", tolerance_grad, "tolerance_grad value",
                                       low=0.0)
    out["tolerance_change"] = check_real("tolerance_change", tolerance_change,
                                         "tolerance_change value", low=0.0)
    out["history_size"] = check_int("history_size", history_size, low=1,
                                    what="history_size value")
    out["line_search_fn"] = _check_line_search_fn(line_search_fn)
    return out


_AXPY = {np.dtype(np.float32): blas.saxpy, np.dtype(np.float64): blas.daxpy}


def _axpy(a, x, y):
    """``y += a * x`` in place, in one pass: BLAS axpy, which fuses the multiply-add as torch's
    ``add_(x, alpha=a)`` does (NumPy's ``y += a * x`` would round twice and make a
    temporary)."""
    if y.size:
        out = _AXPY[y.dtype](x, y, a=a)
        if out is not y:  # (f2py works in place on a contiguous array of its dtype)
            y[...] = out


def _amax(v):
    """``max(abs(v))`` without a temporary (equal to it: negation is exact)."""
    return max(float(v.max()), -float(v.min()))


# -- torch's line search, ported (torch/optim/lbfgs.py; there from minFunc's polyinterp.lua and
# lswolfe.lua). Scalars are Python floats: torch's 0-d float64 tensors round the same way.


def _ieee_div(a, b):
    """``a / b`` as IEEE (and torch's tensors) divide: inf or NaN where Python raises."""
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    # (x1 == x2 when lr=0: every trial is t=0; torch's t is then a 0-d tensor, as after
    # the first iteration's min(1, 1/|g|_1), and the division gives NaN)
    d1 = g1 + g2 - _ieee_div(3 * (f1 - f2), x1 - x2)
    d2_square = d1 * d1 - g1 * g2  # (torch's d1**2 on a tensor is d1 * d1)
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        # (torch divides 0-d tensors here: a zero denominator gives inf, clamped below, or
        # NaN; a kink in f makes one, as in f = max|x|)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * _ieee_div(g2 + d2 - d1, g2 - g1 + 2 * d2)
        else:
            min_pos = x1 - (x1 - x2) * _ieee_div(g1 + d2 - d1, g1 - g2 + 2 * d2)
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25):
    """torch's ``_strong_wolfe``: ``(f_new, g_new, t, ls_func_evals)``. ``obj_func(t)`` gives
    ``(f, g)`` at ``x + t d`` (a new gradient array each time, never modified, so that the
    bracket keeps references where torch keeps clones)."""
    d_norm = _amax(d)
    f_new, g_new = obj_func(t)
    ls_func_evals = 1
    gtd_new = float(g_new.dot(d))

    # bracket an interval containing a point satisfying the Wolfe criteria
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            bracket_g = [g_prev, g_new]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            bracket_g = [g_prev, g_new]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        # interpolate
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                               bounds=(min_step, max_step))
        # next step
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new = obj_func(t)
        ls_func_evals += 1
        gtd_new = float(g_new.dot(d))
        ls_iter += 1

    # reached max number of iterations?
    if ls_iter == max_ls:
        bracket = [0, t]
        bracket_f = [f, f_new]
        bracket_g = [g, g_new]
        bracket_gtd = [gtd, gtd_new]  # (torch leaves it unset: the zoom below cannot run)

    # zoom phase: refine the bracket until a point satisfies the criteria
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                               bracket[1], bracket_f[1], bracket_gtd[1])
        # too close to a boundary twice in a row, or at/outside it: move 0.1 * width inside
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        f_new, g_new = obj_func(t)
        ls_func_evals += 1
        gtd_new = float(g_new.dot(d))
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            # Armijo condition not satisfied or not lower than the lowest point
            bracket[high_pos] = t
            bracket_f[high_pos] = f_new
            bracket_g[high_pos] = g_new
            bracket_gtd[high_pos] = gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True  # Wolfe conditions satisfied
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                # old high becomes new low
                bracket[high_pos] = bracket[low_pos]
                bracket_f[high_pos] = bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            # new point becomes new low
            bracket[low_pos] = t
            bracket_f[low_pos] = f_new
            bracket_g[low_pos] = g_new
            bracket_gtd[low_pos] = gtd_new

    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


class LBFGS:
    r"""L-BFGS with torch.optim.LBFGS's arguments, defaults and closure protocol, on NumPy
    arrays updated in place.

    A port of ``torch.optim.LBFGS`` (torch 2.13; itself after minFunc): each ``step(closure)``
    runs up to ``max_iter`` quasi-Newton iterations, calling ``closure()`` for the loss and
    gradient at the current parameters. In float64 its iterates equal torch's to rounding
    (tests/test_lbfgs_class.py: 1e-12 relative, both line searches).

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters updated in place: any shape, all float32 or all float64, C-contiguous,
        writeable, at least one element in all. They must stay so for the optimizer's life
        (``step`` checks). Parameter groups (dicts) are refused, as in torch.
    lr : float, default=1
        Learning rate: the step length tried first (without a line search, the step taken).
    max_iter : int, default=20
        Maximal number of iterations per ``step`` call.
    max_eval : int or None, default=None
        Maximal number of ``closure`` calls per ``step`` call; None means
        ``max_iter * 5 // 4`` (torch's default; it is resolved when set, and shown resolved).
    tolerance_grad : float, default=1e-7
        ``step`` ends when ``max(abs(g)) <= tolerance_grad`` (first-order optimality).
    tolerance_change : float, default=1e-9
        ``step`` ends when the step ``max(abs(t d))`` or the loss change falls to or below it
        (the change: below it), or the directional derivative rises above ``-tolerance_change``.
    history_size : int, default=100
        Number of ``(s, y)`` pairs kept (two vectors of the parameters' total size each).
    line_search_fn : {None, "strong_wolfe"}, default=None
        None: fixed steps of ``lr`` (``min(1, 1/||g||_1) lr`` at the first iteration of a run).
        ``"strong_wolfe"``: torch's strong-Wolfe line search (cubic interpolation,
        ``c1=1e-4``, ``c2=0.9``, at most ``max_eval`` minus the evaluations made so far).

    Raises
    ------
    TypeError, ValueError
        On bad parameters or hyperparameters, naming the argument: negative or non-finite
        ``lr``, ``max_iter``, ``max_eval`` or ``history_size`` below 1 or not an int,
        negative tolerances, an unknown ``line_search_fn`` (torch raises at the first step),
        parameter arrays that are not float32/float64, C-contiguous and writeable, or of
        mixed dtypes.

    See Also
    --------
    fastopt.minimize : ``method="lbfgs"`` runs L-BFGS on a function with SciPy's conventions
        and stopping rules, box bounds and a C loop; the choice for minimizing a function.
    fastopt.Adam, fastopt.SGD : first-order rules for stochastic gradients (L-BFGS assumes the
        closure is deterministic).

    Notes
    -----
    **The closure.** ``closure()`` evaluates at the current parameters and returns
    ``(f, g)``: the loss (a real number, or an array with one element) and the gradient (an
    array of the parameter's shape, or a list of them in the order of ``params``). It is
    called at trial points of the line search too: it must not assume the parameters stay
    where the last call saw them. There is no ``zero_grad``: the closure returns the gradient,
    so there is nothing to zero.

    **The update** (torch's order of operations). With :math:`g` the gradient at the
    iterate :math:`x_k` and the pairs :math:`s_i = t_i d_i`, :math:`y_i = g_{i+1} - g_i`
    kept when :math:`y_i^\top s_i > 10^{-10}` (the oldest dropped beyond ``history_size``),
    :math:`\rho_i = 1 / y_i^\top s_i`, the direction is the two-loop recursion

    .. math::

        q &= -g; \quad \alpha_i = \rho_i\, s_i^\top q, \; q \leftarrow q - \alpha_i y_i
            \quad (i = m-1, \dots, 0) \\
        r &= \gamma q, \quad \gamma = \frac{y_{m-1}^\top s_{m-1}}{y_{m-1}^\top y_{m-1}}
            \quad (\gamma = 1 \text{ before the first pair}) \\
        \beta_i &= \rho_i\, y_i^\top r, \; r \leftarrow r + (\alpha_i - \beta_i)\, s_i
            \quad (i = 0, \dots, m-1); \qquad d = r

    (:math:`d = -g` at the first iteration of a run) and the step is
    :math:`x_{k+1} = x_k + t d` with :math:`t` = ``lr``
    (:math:`\min(1, 1/\lVert g\rVert_1)\,` ``lr`` at the first iteration), or the strong-Wolfe
    point found from there. A ``step`` call ends after ``max_iter`` iterations, at
    ``max_eval`` evaluations, or on the tolerances; it returns the loss of its first closure
    call (as torch does), and the history carries over to the next call.

    **Differences from torch.** Scalars (``t``, ``ro``, ``H_diag``, the line search's
    values) are Python floats. float64 runs equal torch's up to the rounding of dot products
    (other summation orders than MKL's), which the iterations carry on: 1e-16 to 1e-11
    relative over the first 20 iterations of the test problems, more in the middle of long
    runs along ill-conditioned paths (up to 1e-7 on Rosenbrock's valley, n=10), the same
    point again at convergence. float32 runs keep float32 vectors but float64 scalars
    (torch's are float32 tensors there) and agree to float32 rounding only. Every
    hyperparameter is validated (``max_iter``, ``max_eval`` and ``history_size`` at least 1,
    tolerances non-negative), where torch checks ``lr`` only. A closure that
    raises, or returns a malformed or non-finite loss or gradient, makes ``step`` raise
    (``ValueError``/``TypeError`` naming ``closure``) with the parameters and the state put
    back as they were before the call: torch carries NaN into the parameters instead.
    ``line_search_fn`` is checked by the constructor (torch raises at the first step). The
    line search's own ``tolerance_change`` is 1e-9 whatever the optimizer's, as in torch.

    **State** (``state_dict()``): torch's keys, flat, beside the hyperparameters:
    ``func_evals`` and ``n_iter`` (ints, totals over all ``step`` calls), ``d`` (the last
    direction), ``t`` (its step length), ``old_dirs`` and ``old_stps`` (the pairs
    :math:`y_i` and :math:`s_i`, oldest first, as 2-D arrays of shape (m, n)), ``ro``
    (:math:`\rho_i`, float64, shape (m,)), ``H_diag`` (:math:`\gamma`), ``prev_flat_grad``,
    ``prev_loss``, and ``al`` (the two-loop's scratch, float64 of length ``history_size``, NaN
    where torch has None). Present as torch's are: none before the first step,
    the counts once a step was made, the rest once an iteration was.

    References
    ----------
    .. [1] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006,
       Algorithm 7.4 (two-loop recursion) and Algorithms 3.5-3.6 (strong-Wolfe line search).
    .. [2] M. Schmidt, minFunc (2005), https://www.cs.ubc.ca/~schmidtm/Software/minFunc.html,
       which torch.optim.LBFGS follows.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> from scipy.optimize import rosen, rosen_der
    >>> x = np.array([-1.2, 1.0])
    >>> def closure():
    ...     return float(rosen(x)), rosen_der(x)
    >>> opt = fastopt.LBFGS(x, max_iter=100, line_search_fn="strong_wolfe")
    >>> opt.step(closure)  # the loss at the start of the step
    24.199999999999996
    >>> np.round(x, 4)
    array([1., 1.])
    >>> opt.n_iter, opt.func_evals
    (35, 43)
    """

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None):
        hyper = _check_hyperparameters(lr, max_iter, max_eval, tolerance_grad,
                                       tolerance_change, history_size, line_search_fn)
        if isinstance(params, (list, tuple)) and any(isinstance(p, Mapping) for p in params):
            raise TypeError("LBFGS doesn't support parameter groups (dicts in params): give "
                            "an array or a list of arrays, as torch.optim.LBFGS takes one "
                            "group only")
        arrays, single = check_params(params)
        dtypes = {p.dtype for p in arrays}
        if len(dtypes) > 1:
            raise TypeError(f"params must all have one dtype (LBFGS works on one flat vector "
                            f"of them), got {sorted(map(str, dtypes))}")
        sizes = [p.size for p in arrays]
        if sum(sizes) == 0:
            raise ValueError("params must have at least one element in all")
        self._params, self._single = arrays, single
        self._shapes = [p.shape for p in arrays]
        self._dtype = arrays[0].dtype
        self._bounds = np.cumsum([0, *sizes]).tolist()
        self._hyper = hyper
        self._defaults = dict(hyper)
        self._state = {}

    # -- attributes ------------------------------------------------------------------------

    def __setattr__(self, name, value):
        # Only the hyperparameters' properties can be set: a typo (opt.max_iters = 5) fails.
        if not name.startswith("_") and not isinstance(getattr(type(self), name, None),
                                                       property):
            raise AttributeError(f"LBFGS has no hyperparameter {name!r}: its hyperparameters "
                                 f"are {', '.join(DEFAULTS)}", name=name, obj=self)
        object.__setattr__(self, name, value)

    @property
    def params(self):
        """The parameter array, or the list of them, exactly as given (updated in place)."""
        return self._params[0] if self._single else list(self._params)

    @property
    def hyperparameters(self):
        """A copy of the hyperparameters (torch's names; ``max_eval`` resolved)."""
        return dict(self._hyper)

    @property
    def defaults(self):
        """A copy of the constructor's hyperparameters (torch.optim's ``defaults``)."""
        return dict(self._defaults)

    @property
    def param_groups(self):
        """torch.optim's ``param_groups``: a list of one live mapping, ``"params"`` and the
        hyperparameters; assigning one validates it (so that ``fastopt.lr_scheduler``'s
        schedulers can set ``lr``)."""
        return [_ParamGroup(self)]

    @property
    def n_iter(self):
        """Iterations made over all ``step`` calls (``state_dict()["n_iter"]``)."""
        return self._state.get("n_iter", 0)

    @property
    def func_evals(self):
        """Closure calls made over all ``step`` calls (``state_dict()["func_evals"]``)."""
        return self._state.get("func_evals", 0)

    def _set_hyperparameters(self, changes):
        """Validate ``changes`` with the other hyperparameters (all or nothing) and install
        them; a new ``history_size`` keeps the newest pairs that fit."""
        # (max_eval stays as resolved when max_iter changes, as in torch)
        hyper = _check_hyperparameters(**dict(self._hyper, **changes))
        state = self._state
        m = hyper["history_size"]
        if m != self._hyper["history_size"] and "old_dirs" in state:
            state = dict(state, old_dirs=state["old_dirs"][-m:],
                         old_stps=state["old_stps"][-m:], ro=state["ro"][-m:])
            if "al" in state:
                state["al"] = (state["al"] + [None] * m)[:m]
        self._hyper, self._state = hyper, state

    def __repr__(self):
        args = ", ".join(f"{name}={value!r}" for name, value in self._hyper.items())
        return f"LBFGS({args})"

    # -- the step --------------------------------------------------------------------------

    def _check_params_unchanged(self):
        # NumPy lets users change an array's flags (and shape, strides) in place.
        for i, (p, shape) in enumerate(zip(self._params, self._shapes)):
            if (p.dtype != self._dtype or p.shape != shape or not p.flags.c_contiguous
                    or not p.flags.writeable):
                raise ValueError(f"params[{i}] changed since the optimizer was built: it must "
                                 f"keep dtype {self._dtype} and shape {shape}, and stay "
                                 "C-contiguous and writeable")

    def _views(self):
        # (np.asarray: a subclass such as np.matrix stays 2-D when reshaped; the view of its
        # memory as a plain ndarray is flat)
        return [np.asarray(p).reshape(-1) for p in self._params]

    def _add(self, views, t, d):
        """``params += t * d`` (torch's ``_add_grad``)."""
        for v, lo, hi in zip(views, self._bounds, self._bounds[1:]):
            _axpy(t, d[lo:hi], v)

    def _evaluate(self, closure):
        """``(f as returned, loss as a float, flat gradient)`` from one closure call, checked:
        the flat gradient is a new array (never modified afterwards)."""
        out = closure()
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"closure must return a pair (f, g), got {_describe(out)}")
        f, g = out
        if isinstance(f, float):  # (the common case; numpy.float64 too)
            loss = float(f)
        else:
            arr = np.asarray(f)
            if arr.dtype.kind not in "fiu" or arr.size != 1:
                raise TypeError(f"closure returned f={_describe(f)}: the loss must be a real "
                                "number")
            loss = float(arr.reshape(()))
        if not math.isfinite(loss):
            raise ValueError(f"closure returned a non-finite loss ({loss}); the step is undone "
                             "(parameters and state as before the call)")
        flat = np.empty(self._bounds[-1], self._dtype)
        if self._single:
            grads = [g]
        elif not isinstance(g, (list, tuple)) or len(g) != len(self._params):
            raise TypeError(f"closure must return g as a list of {len(self._params)} arrays "
                            f"(one per parameter), got {_describe(g)}")
        else:
            grads = g
        for i, (gi, shape, lo, hi) in enumerate(zip(grads, self._shapes, self._bounds,
                                                    self._bounds[1:])):
            name = "g" if self._single else f"g[{i}]"
            gi = as_real_array(f"closure's {name}", gi)
            if gi.shape != shape:
                raise ValueError(f"closure returned {name} of shape {gi.shape}, its parameter "
                                 f"has shape {shape}")
            flat[lo:hi] = gi.reshape(-1)
        if not (math.isfinite(flat.max()) and math.isfinite(flat.min())):
            raise ValueError("closure returned a non-finite gradient (NaN or inf); the step "
                             "is undone (parameters and state as before the call)")
        return f, loss, flat

    def step(self, closure):
        """Run up to ``max_iter`` L-BFGS iterations (torch.optim.LBFGS's ``step``).

        Parameters
        ----------
        closure : callable
            ``closure()`` returns ``(f, g)`` at the current parameters (see the class
            docstring); it is called once, then once per iteration or line-search trial.

        Returns
        -------
        loss
            What the first closure call returned as ``f`` (the loss before this step).

        Raises
        ------
        TypeError, ValueError
            If ``closure`` is not callable, returns a malformed pair or a non-finite loss or
            gradient, or the parameters changed dtype, shape or flags. Whatever the closure
            raises is raised too. The parameters and the state are then as before the call.
        """
        if not callable(closure):
            raise TypeError(f"closure must be callable (returning (f, g)), got "
                            f"{_describe(closure)}")
        self._check_params_unchanged()
        views = self._views()
        start = np.concatenate(views)
        try:
            orig_loss, state = self._run(closure, views)
        except BaseException:
            for v, lo, hi in zip(views, self._bounds, self._bounds[1:]):
                v[...] = start[lo:hi]
            raise
        self._state = state
        return orig_loss

    def _run(self, closure, views):
        """torch's ``step``, on local copies of the state: ``(orig_loss, new state)``."""
        hyper = self._hyper
        lr, max_iter, max_eval = hyper["lr"], hyper["max_iter"], hyper["max_eval"]
        tolerance_grad, tolerance_change = hyper["tolerance_grad"], hyper["tolerance_change"]
        line_search_fn, history_size = hyper["line_search_fn"], hyper["history_size"]
        state = dict(self._state)
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        # evaluate initial f(x) and df/dx
        orig_loss, loss, flat_grad = self._evaluate(closure)
        current_evals = 1
        state["func_evals"] += 1
        if _amax(flat_grad) <= tolerance_grad:  # optimal condition
            return orig_loss, state

        d, t = state.get("d"), state.get("t")
        # (new lists: the old state stays intact until the step has succeeded)
        old_dirs, old_stps, ro = (list(state[k]) if k in state else None
                                  for k in ("old_dirs", "old_stps", "ro"))
        H_diag, prev_flat_grad = state.get("H_diag"), state.get("prev_flat_grad")
        prev_loss = state.get("prev_loss")
        al = list(state["al"]) if "al" in state else None
        x_init = np.empty_like(flat_grad) if line_search_fn is not None else None

        def obj_func(step_length):  # torch's _directional_evaluate, from x_init
            self._add(views, step_length, d)
            try:
                _, f_value, g_value = self._evaluate(closure)
            finally:
                for v, lo, hi in zip(views, self._bounds, self._bounds[1:]):
                    v[...] = x_init[lo:hi]
            return f_value, g_value

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # compute the descent direction
            if state["n_iter"] == 1:
                d = np.negative(flat_grad)
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = float(y.dot(s))
                if ys > 1e-10:
                    if len(old_dirs) == history_size:  # the ring: drop the oldest pair
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = _ieee_div(ys, float(y.dot(y)))  # (y.y may underflow to 0)
                num_old = len(old_dirs)
                if al is None:
                    al = [None] * history_size
                # two-loop recursion, in one buffer q (then r, then d)
                q = np.negative(flat_grad)
                for i in range(num_old - 1, -1, -1):
                    al[i] = float(old_stps[i].dot(q)) * ro[i]
                    _axpy(-al[i], old_dirs[i], q)
                d = r = np.multiply(q, H_diag, out=q)
                for i in range(num_old):
                    be_i = float(old_dirs[i].dot(r)) * ro[i]
                    _axpy(al[i] - be_i, old_stps[i], r)

            prev_flat_grad = flat_grad  # (never modified: torch's copy is not needed)
            prev_loss = loss

            # step length
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(np.abs(flat_grad).sum())) * lr
            else:
                t = lr
            gtd = float(flat_grad.dot(d))  # directional derivative
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                np.concatenate(views, out=x_init)
                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    obj_func, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals)
                t = float(t)
                self._add(views, t, d)
                opt_cond = _amax(flat_grad) <= tolerance_grad
            else:
                self._add(views, t, d)
                if n_iter != max_iter:
                    # re-evaluate only if not in the last iteration (torch: in a stochastic
                    # setting there is no use to re-evaluate the function here)
                    _, loss, flat_grad = self._evaluate(closure)
                    opt_cond = _amax(flat_grad) <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # check conditions
            if n_iter == max_iter:
                break
            if current_evals >= max_eval:
                break
            if opt_cond:
                break
            if _amax(d) * abs(t) <= tolerance_change:  # (= max(abs(d * t)): rounding is monotone)
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state.update(d=d, t=float(t), old_dirs=old_dirs, old_stps=old_stps, ro=ro,
                     H_diag=float(H_diag), prev_flat_grad=prev_flat_grad,
                     prev_loss=float(prev_loss))
        if al is not None:
            state["al"] = al
        return orig_loss, state

    # -- state dicts and pickles -----------------------------------------------------------

    def state_dict(self):
        """Return the hyperparameters and torch's state keys as a flat dict of copies.

        Keys: the hyperparameters by name (``max_eval`` resolved), then the state entries
        torch has at this point (none before the first step; see the class Notes):
        ``func_evals``, ``n_iter``, ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``,
        ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``al``. Vectors are arrays of the
        parameters' dtype, the history 2-D arrays (one row per pair, oldest first), ``ro``
        and ``al`` float64 arrays. The dict can be saved with ``numpy.savez`` (read back with
        ``allow_pickle=True`` when ``line_search_fn`` is None: NumPy stores None as an
        object).
        """
        out = dict(self._hyper)
        state, n = self._state, self._bounds[-1]
        for key in _COUNT_KEYS:
            if key in state:
                out[key] = state[key]
        if "d" in state:
            out.update(
                d=state["d"].copy(), t=state["t"],
                old_dirs=np.array(state["old_dirs"], self._dtype).reshape(-1, n),
                old_stps=np.array(state["old_stps"], self._dtype).reshape(-1, n),
                ro=np.array(state["ro"], np.float64), H_diag=state["H_diag"],
                prev_flat_grad=state["prev_flat_grad"].copy(), prev_loss=state["prev_loss"])
        if "al" in state:
            out["al"] = np.array([np.nan if a is None else a for a in state["al"]], np.float64)
        return out

    def load_state_dict(self, state_dict):
        """Restore a state saved by ``state_dict()`` (all or nothing).

        Every key, shape, dtype and value is checked before anything changes; arrays are
        copied in. ``old_dirs`` and ``old_stps`` may also be lists of 1-D arrays (torch's
        form), ``al`` a list with None entries.

        Raises
        ------
        TypeError, ValueError
            On a missing, unknown or malformed entry; the optimizer is unchanged then.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        unknown = [key for key in state_dict if key not in DEFAULTS and key not in _STATE_KEYS]
        if unknown:
            raise ValueError(f"state_dict has unknown key {unknown[0]!r}: LBFGS's keys are "
                             f"its hyperparameters ({', '.join(DEFAULTS)}) and torch's state "
                             f"keys ({', '.join(_STATE_KEYS)})")
        missing = [key for key in DEFAULTS if key not in state_dict]
        if missing:
            raise ValueError(f"state_dict lacks the hyperparameters {missing}")
        hyper = _check_hyperparameters(**{key: _plain(state_dict[key]) for key in DEFAULTS})
        state = self._checked_state(state_dict, hyper)
        self._hyper, self._state = hyper, state

    def _checked_state(self, sd, hyper):
        present = {key for key in _STATE_KEYS if key in sd}
        if not present:
            return {}
        if present not in _STATE_KEY_SETS:
            raise ValueError(f"state_dict has the state keys {sorted(present)}: torch's state "
                             f"has none, or {list(_COUNT_KEYS)}, or those and "
                             f"{list(_ITER_KEYS)}, or all of them and 'al'")
        state = {key: check_int(key, _plain(sd[key]), low=0, what=f"state_dict[{key!r}]")
                 for key in _COUNT_KEYS}
        if "d" not in sd:
            if state["n_iter"]:
                raise ValueError("state_dict has n_iter > 0 but no iteration state (d, ...)")
            return state
        if state["n_iter"] < 1:
            raise ValueError("state_dict has iteration state (d, ...) but n_iter=0")
        n, m = self._bounds[-1], hyper["history_size"]
        for key in ("t", "H_diag", "prev_loss"):
            state[key] = check_real(key, _plain(sd[key]), f"state_dict[{key!r}]")
        for key in ("d", "prev_flat_grad"):
            state[key] = self._vector(key, sd[key], (n,))
        rows = [self._vector(key, sd[key], None) for key in ("old_dirs", "old_stps")]
        k = rows[0].shape[0]
        if rows[1].shape[0] != k or k > m:
            raise ValueError(f"state_dict's old_dirs and old_stps must have as many rows, at "
                             f"most history_size={m}; got {rows[0].shape[0]} and "
                             f"{rows[1].shape[0]}")
        state["old_dirs"], state["old_stps"] = (list(r) for r in rows)
        ro = _float_list("ro", sd["ro"])
        if len(ro) != k or any(v is None for v in ro):
            raise ValueError(f"state_dict['ro'] must have {k} finite numbers (one per pair)")
        state["ro"] = ro
        if "al" in sd:
            al = _float_list("al", sd["al"])
            if len(al) != m:
                raise ValueError(f"state_dict['al'] must have history_size={m} entries, got "
                                 f"{len(al)}")
            state["al"] = al
        return state

    def _vector(self, key, value, shape):
        """A private copy of a state vector (``shape``) or history (None: (k, n) rows)."""
        if isinstance(value, (list, tuple)) and len(value) == 0:
            value = np.empty((0, self._bounds[-1]), self._dtype)
        try:
            arr = np.asarray(value)
        except ValueError as exc:  # (ragged lists)
            raise ValueError(f"state_dict[{key!r}] must be an array: {exc}") from None
        if arr.dtype != self._dtype:
            raise TypeError(f"state_dict[{key!r}] has dtype {arr.dtype}, the parameters "
                            f"{self._dtype}")
        n = self._bounds[-1]
        if shape is None and arr.ndim == 2 and arr.shape[1] == n:
            shape = arr.shape
        if arr.shape != shape:
            raise ValueError(f"state_dict[{key!r}] has shape {arr.shape}; it must be "
                             f"{(n,) if shape is None else shape}"
                             + (" or (k, n) rows" if shape is None else ""))
        if not np.isfinite(arr).all():
            raise ValueError(f"state_dict[{key!r}] must be finite")
        return np.array(arr, order="C", copy=True)

    def __reduce_ex__(self, protocol):
        # Every protocol the same way: rebuilt through the constructor and load_state_dict,
        # so a tampered pickle is checked as a state dict is.
        return (_rebuild, (self.params, self._defaults, self.state_dict()))


def _rebuild(params, defaults, state_dict):
    opt = LBFGS(params, **defaults)
    opt.load_state_dict(state_dict)
    return opt


def _plain(value):
    """A 0-d array (as numpy.load gives values back) as its scalar."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def _float_list(key, value):
    """A state list of floats (``ro``, ``al``) as Python floats, None for NaN or None."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1 or value.dtype.kind not in "fiu":
            raise TypeError(f"state_dict[{key!r}] must be a 1-D array of real numbers, got "
                            f"{_describe(value)}")
        value = value.tolist()
    elif not isinstance(value, (list, tuple)):
        raise TypeError(f"state_dict[{key!r}] must be a list or 1-D array, got "
                        f"{_describe(value)}")
    out = []
    for i, v in enumerate(value):
        v = _plain(v)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        else:
            out.append(check_real(f"{key}[{i}]", v, f"state_dict[{key!r}] entry"))
    return out


class _ParamGroup(MutableMapping):
    """``LBFGS.param_groups[0]``: ``"params"`` and the hyperparameters (a live view;
    assignment validates, as the attribute setters do)."""

    __slots__ = ("_opt",)

    def __init__(self, opt):
        self._opt = opt

    def __getitem__(self, key):
        if key == "params":
            return list(self._opt._params)
        return self._opt._hyper[key]

    def __setitem__(self, key, value):
        if key not in DEFAULTS:
            raise KeyError(f"param_groups[0] has no key {key!r}: its keys are 'params' and "
                           f"LBFGS's hyperparameters ({', '.join(DEFAULTS)})"
                           + (" (params cannot be assigned)" if key == "params" else ""))
        self._opt._set_hyperparameters({key: value})

    def __delitem__(self, key):
        raise TypeError("param_groups[0] entries cannot be deleted")

    def __iter__(self):
        return iter(("params", *DEFAULTS))

    def __len__(self):
        return 1 + len(DEFAULTS)

    def __repr__(self):
        return repr(dict(self))


def _hyperparameter_property(name):
    def get(self):
        return self._hyper[name]

    def set(self, value):
        self._set_hyperparameters({name: value})

    return property(get, set, doc=f"Hyperparameter ``{name}``; may be set between steps "
                    "(validated as in the constructor).")


for _name in DEFAULTS:
    setattr(LBFGS, _name, _hyperparameter_property(_name))
del _name
