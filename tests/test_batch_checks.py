"""minimize_batch with a vectorised objective: the stopping rules checked across the block
(fastopt/_batch.pyx _check_packed, src_c/fastopt_batch_flags.h) and the previous iterate kept
without copies where it can be (_keep_packed) stop every problem where, and as,
fastopt.minimize stops it alone: rows stopping on every rule in the same iteration, non-finite
values at any iteration, gradients the loop may keep or must copy, bounds, callbacks, both
dtypes and the unrolled row sizes (n = 1..4) as well as the general one."""

import weakref

import numpy as np
import pytest
from scipy.optimize import Bounds

import fastopt

GTOL, FTOL, XTOL = 2.0**-40, 1e-12, 1e-4  # exact in float32; a step of 2**-16 passes xtol
MAXITER = 8
KINDS = ("maxiter", "gtol", "ftol", "xtol", "nan_f", "inf_g", "nan_g")


def staircase(X, kind, fire):
    """Row i steps down by 1 per iteration from 10 in every variable (SGD, lr=1: exact), and
    at iteration fire[i] the stopping rule of KINDS[kind[i]] holds: its gradient falls to
    GTOL, its f stops changing, its step falls below XTOL (from the iteration before), or its
    f or an entry of its gradient turns NaN or infinite."""
    x = X[:, 0].astype(np.float64)
    made = 10.0 - x  # updates made so far (the "xtol" rows: a little more after their tiny step)
    fired = made > fire - 0.5
    f = x.copy()
    G = np.ones_like(X)
    G[fired & (kind == 1)] = GTOL
    f = np.where(kind == 2, np.maximum(x, 11.0 - fire), f)
    G[(kind == 3) & (made > fire - 1.5)] = 2.0**-16
    f[fired & (kind == 4)] = np.nan
    G[fired & (kind == 5), -1] = np.inf
    G[fired & (kind == 6), 0] = np.nan
    return f, G


def _problems(n, dtype, xtol):
    """Every kind of row at several iterations (0: at the start; MAXITER + 1: never), twice
    over, in a scrambled order so that rows stopping together are not neighbours; an odd
    count (the vector loop's last row is alone)."""
    kinds = [k for k in range(len(KINDS)) if not (k == 3 and not xtol)]
    pairs = [(k, fire) for k in kinds for fire in (0, 1, 3, 5, MAXITER, MAXITER + 1)] * 2
    pairs = [pairs[i] for i in np.random.default_rng(n).permutation(len(pairs))]
    pairs = pairs[:len(pairs) - 1 + len(pairs) % 2]
    kind, fire = (np.array(v) for v in zip(*pairs))
    return np.full((len(kind), n), 10.0, dtype), kind, fire


def _options(xtol):
    return {"lr": 1.0, "maxiter": MAXITER, "gtol": GTOL, "ftol": FTOL, "xtol": xtol}


def _alone(X0, kind, fire, xtol, **kwargs):
    def one(x, k, s):
        f, G = staircase(x[None, :], np.array([k]), np.array([s]))
        return f[0], G[0]

    return [fastopt.minimize(one, X0[i], args=(kind[i], fire[i]), method="sgd", jac=True,
                             options=_options(xtol), **kwargs) for i in range(len(X0))]


def assert_each_alone(batch, singles):
    for i, r in enumerate(singles):
        np.testing.assert_array_equal(batch.x[i], r.x, err_msg=str(i))
        np.testing.assert_array_equal(batch.jac[i], r.jac, err_msg=str(i))
        assert np.array_equal(batch.fun[i], r.fun, equal_nan=True), i
        assert (batch.nit[i], batch.nfev[i], batch.status[i]) == (r.nit, r.nfev, r.status), i
    assert batch.x.dtype == singles[0].x.dtype


def _rules_seen(singles):
    """The rules that stopped the problems alone (the test's rows must show every one)."""
    seen = set()
    for r in singles:
        for rule in ("gtol", "ftol", "xtol"):
            if r.status == 0 and rule in r.message:
                seen.add(rule)
        if r.status in (1, 3):
            seen.add({1: "maxiter", 3: "nonfinite"}[r.status])
    return seen


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 9])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("xtol", [0.0, XTOL])  # xtol > 0: rows updated one by one
def test_rows_stopping_on_every_rule_in_one_iteration_are_each_alone(n, dtype, xtol):
    X0, kind, fire = _problems(n, dtype, xtol)
    batch = fastopt.minimize_batch(staircase, X0, args=(kind, fire), method="sgd", jac=True,
                                   options=_options(xtol))
    singles = _alone(X0, kind, fire, xtol)
    assert_each_alone(batch, singles)
    rules = {"gtol", "ftol", "nonfinite"} | ({"xtol"} if xtol else set())
    assert _rules_seen(singles) == rules | {"maxiter"}
    for at in (3, 5):  # every rule ends some problem in that iteration
        assert _rules_seen([r for r, k, s in zip(singles, kind, fire) if s == at and k]) == rules


GRADIENTS = ["fresh", "buffer view", "held", "float32 converted", "Fortran"]


def _returning(mode):
    """staircase whose gradient comes back as ``mode``: a fresh array (the loop may keep it
    as the previous gradient instead of copying it), a view of a buffer the objective writes
    again at every call, a fresh array the objective also keeps (and overwrites later), or
    an array the loop converts into its own buffer."""
    kept = {}

    def fg(X, kind, fire):
        f, G = staircase(X, kind, fire)
        if mode == "buffer view":
            buf = kept.setdefault("buf", np.empty_like(X))  # the first call has every row
            buf[:len(X)] = G
            return f, buf[:len(X)]
        if mode == "held":
            if "last" in kept:
                kept["last"][...] = -7.0  # what the previous call returned, overwritten
            kept["last"] = G
            return f, G
        if mode == "float32 converted":
            return f, G.astype(np.float32)  # X is float64 here: converted
        if mode == "Fortran":
            return f, np.asfortranarray(G)
        return f, G

    return fg


@pytest.mark.parametrize("mode", GRADIENTS)
@pytest.mark.parametrize("bounds", ["none", "one box", "a box per problem"])
def test_previous_gradient_kept_or_copied_is_each_alone(mode, bounds):
    # The rows that turn non-finite go back to their previous iterate and report its
    # gradient: from the objective's own array when the loop keeps it, from a copy else.
    X0, kind, fire = _problems(2, np.float64, 0.0)
    box = {"none": None, "one box": Bounds([-50.0, -60.0], [50.0, 60.0]),
           "a box per problem": Bounds(np.full(X0.shape, -50.0) - np.arange(len(X0))[:, None],
                                       np.full(X0.shape, 50.0))}[bounds]
    batch = fastopt.minimize_batch(_returning(mode), X0, args=(kind, fire), method="sgd",
                                   jac=True, bounds=box, options=_options(0.0))
    singles = [fastopt.minimize(
        lambda x, k, s: tuple(v[0] for v in staircase(x[None], np.array([k]), np.array([s]))),
        X0[i], args=(kind[i], fire[i]), method="sgd", jac=True, options=_options(0.0),
        bounds=None if box is None else Bounds(np.broadcast_to(box.lb, X0.shape)[i],
                                               np.broadcast_to(box.ub, X0.shape)[i]))
        for i in range(len(X0))]
    assert_each_alone(batch, singles)
    assert np.any(batch.status == 3) and np.any((batch.status == 3) & (batch.nit > 0))


class _NanAt:
    """Rosenbrock whose problem i turns non-finite at its ``at[i]``-th evaluation (f NaN, or
    an infinite gradient entry, by ``how[i]``): the counts are per problem, so a batch and the
    problems alone see the same values."""

    def __init__(self, at, how):
        self.at, self.how = at, how
        self.calls = np.zeros(len(at), dtype=int)

    def rows(self, X, index):
        self.calls[index] += 1
        x0, x1 = X[:, 0], X[:, 1]
        a = x1 - x0 * x0
        b = 1.0 - x0
        G = np.empty_like(X)
        G[:, 0] = -400.0 * x0 * a - 2.0 * b
        G[:, 1] = 200.0 * a
        f = 100.0 * a * a + b * b
        now = self.calls[index] == self.at[index]
        f[now & (self.how[index] == 0)] = np.nan
        G[now & (self.how[index] == 1), 1] = -np.inf
        f[now & (self.how[index] == 2)] = np.inf
        return f, G

    def one(self, x, i):
        f, G = self.rows(x[None, :], np.array([i]))
        return f[0], G[0]


@pytest.mark.parametrize("method", ["adam", "rmsprop", "adamw"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("with_callback", [False, True])
def test_non_finite_values_at_various_iterations_are_each_alone(method, dtype, with_callback):
    rng = np.random.default_rng(3)
    m = 101
    X0 = rng.uniform(-2.0, 2.0, (m, 2)).astype(dtype)
    at = rng.integers(1, 60, m)  # the evaluation that goes wrong: the first (nit 0) to late
    at[::7] = 10**6              # never
    at[1:5] = 17                 # several rows in one iteration
    how = rng.integers(0, 3, m)
    options = {"lr": 1e-2, "maxiter": 50, "gtol": 1e-3}
    shown = []
    callback = (lambda res: shown.append(res.indices.copy())) if with_callback else None
    batch = fastopt.minimize_batch(_NanAt(at, how).rows, X0, args=(np.arange(m),),
                                   method=method, jac=True, callback=callback,
                                   options=options)
    alone = _NanAt(at, how)
    singles = [fastopt.minimize(alone.one, X0[i], args=(i,), method=method, jac=True,
                                options=options) for i in range(m)]
    assert_each_alone(batch, singles)
    stopped = at <= options["maxiter"] + 1
    np.testing.assert_array_equal(batch.status[stopped], 3)
    np.testing.assert_array_equal(batch.nit[stopped], np.maximum(at[stopped] - 2, 0))
    if with_callback:
        assert len(shown) > 0


@pytest.mark.parametrize("hold", ["reference", "weak reference"])
def test_a_gradient_the_objective_overwrites_later_is_copied(hold):
    # An objective that keeps its gradient array (by a reference, or only by a weak reference,
    # which adds no reference count) and writes NaN into it once it is returned (after the
    # loop's last use of it as the current gradient): the reported jac of a row that goes
    # non-finite is still the previous gradient, as alone.
    X0, kind, fire = _problems(2, np.float64, 0.0)
    held = []

    def fg(X, kind, fire):
        f, G = staircase(X, kind, fire)
        for old in held:
            old = old() if hold == "weak reference" else old
            if old is not None:
                old[...] = np.nan
        held.append(weakref.ref(G) if hold == "weak reference" else G)
        return f, G

    batch = fastopt.minimize_batch(fg, X0, args=(kind, fire), method="sgd", jac=True,
                                   options=_options(0.0))
    assert_each_alone(batch, _alone(X0, kind, fire, 0.0))
    went_back = (batch.status == 3) & (batch.nit > 0)
    assert np.any(went_back) and np.all(np.isfinite(batch.jac[went_back]))


class _Sub(np.ndarray):
    """An ndarray subclass (read through NumPy's conversions, not the loop's C fast path)."""


RETURNS = {
    "list": lambda a: a.tolist(),
    "big-endian": lambda a: a.astype(a.dtype.newbyteorder(">")),
    "strided": lambda a: np.repeat(a, 2, axis=0)[::2],
    "subclass": lambda a: a.view(_Sub),
}


@pytest.mark.parametrize("form", sorted(RETURNS))
@pytest.mark.parametrize("which", ["f", "G", "both"])
def test_values_in_any_form_give_the_same_run(form, which):
    # The loop reads a float64 f of shape (k,) and an array G of X's shape itself (checked in
    # C); any other form of the same values goes through NumPy and gives the same run.
    rng = np.random.default_rng(5)
    m = 33
    X0 = rng.uniform(-2.0, 2.0, (m, 2))
    at = rng.integers(1, 40, m)
    how = rng.integers(0, 3, m)
    options = {"lr": 1e-2, "maxiter": 40, "gtol": 1e-3}
    convert = RETURNS[form]

    def fg(X, index, nan_at):
        f, G = nan_at.rows(X, index)
        return (convert(f) if which != "G" else f), (convert(G) if which != "f" else G)

    runs = [fastopt.minimize_batch(objective, X0, args=(np.arange(m), _NanAt(at, how)),
                                   jac=True, options=options)
            for objective in (lambda X, i, n: n.rows(X, i), fg)]
    for key in ("x", "fun", "jac", "nit", "nfev", "status"):
        np.testing.assert_array_equal(runs[1][key], runs[0][key])
    assert runs[1].message == runs[0].message and np.any(runs[0].status == 3)
