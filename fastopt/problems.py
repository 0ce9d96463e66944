"""Standard test problems for optimizers: Rosenbrock, Beale, Booth, Himmelblau, a saddle, a
long narrow valley, and noisy (stochastic-gradient) variants.

Each problem is a :class:`Problem` with the objective ``f``, its gradient ``grad``, a classic
start point ``x0``, the known minimisers ``minima`` (points and values), and a plotting
``domain``. ``f`` and ``grad`` are vectorised: ``x`` may have shape ``(..., n)`` (a grid of
points), and ``f`` returns shape ``(...)``, ``grad`` shape ``(..., n)``.

>>> from fastopt import problems
>>> p = problems.beale()
>>> float(p.f(p.minima[0][0]))
0.0
>>> sorted(problems.PROBLEMS)
['beale', 'booth', 'himmelblau', 'noisy_rosenbrock', 'rosenbrock', 'saddle', 'valley']
"""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Problem", "PROBLEMS", "beale", "booth", "get", "himmelblau", "noisy", "rosenbrock",
           "rosenbrock_lowlevel", "rosenbrock_block_lowlevel", "saddle", "valley"]


@dataclass
class Problem:
    """A test problem: objective, gradient, start, known minima and plotting domain.

    Attributes
    ----------
    name : str
    f : callable
        ``f(x)`` for ``x`` of shape ``(..., n)``; returns shape ``(...)``.
    grad : callable
        The gradient, shape ``(..., n)``.
    x0 : ndarray, shape (n,)
        A classic start point.
    minima : list of (ndarray, float)
        Known (global or, for the saddle, boundary) minimisers and their values.
    domain : tuple of (float, float)
        Plotting ranges per coordinate (2-D problems).
    bounds : list of (float, float) or None
        Box constraints the problem needs (the saddle is unbounded below without them).
    log_scale : bool
        Whether contour levels should be logarithmic (surfaces spanning many decades).
    """

    name: str
    f: object
    grad: object
    x0: np.ndarray
    minima: list
    domain: tuple
    bounds: list = None
    log_scale: bool = True
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n(self):
        return self.x0.size

    @property
    def f_min(self):
        return min(value for _, value in self.minima)

    def fun_and_grad(self, x):
        """``(f(x), grad(x))`` for a single point: the ``jac=True`` form of ``minimize``."""
        return float(self.f(x)), self.grad(x)

    def distance_to_minimum(self, x):
        """Euclidean distance from ``x`` to the nearest known minimiser."""
        return min(float(np.linalg.norm(np.asarray(x) - point)) for point, _ in self.minima)


def _split(x):
    x = np.asarray(x, dtype=float)
    return x[..., 0], x[..., 1]


def _stack(*components):
    return np.stack(np.broadcast_arrays(*components), axis=-1)


def rosenbrock(n=2):
    """Rosenbrock's banana valley in ``n`` >= 2 dimensions; minimum 0 at (1, ..., 1)."""
    if n < 2:
        raise ValueError(f"rosenbrock needs n >= 2, got {n}")

    def f(x):
        x = np.asarray(x, dtype=float)
        a, b = x[..., :-1], x[..., 1:]
        return np.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2, axis=-1)

    def grad(x):
        x = np.asarray(x, dtype=float)
        a, b = x[..., :-1], x[..., 1:]
        g = np.zeros_like(x)
        g[..., :-1] = -400.0 * a * (b - a * a) - 2.0 * (1.0 - a)
        g[..., 1:] += 200.0 * (b - a * a)
        return g

    x0 = np.resize(np.array([-1.2, 1.0]), n)  # the classic (-1.2, 1, -1.2, 1, ...)
    return Problem("rosenbrock", f, grad, x0, [(np.ones(n), 0.0)], ((-2.0, 2.0), (-1.0, 3.0)),
                   description="narrow curved valley; minimum 0 at (1, 1)")


def rosenbrock_lowlevel(dtype="float64"):
    """Rosenbrock's function in C, as a ``scipy.LowLevelCallable`` for ``fastopt.minimize`` and
    ``fastopt.minimize_batch`` (any n >= 2; the same function as ``rosenbrock(n).f``).

    Parameters
    ----------
    dtype : {"float64", "float32"}, default="float64"
        The C signature: ``double f(int n, const double *x, double *grad, void *user_data)``,
        or its float32 twin (float32 arithmetic).

    Examples
    --------
    >>> import fastopt
    >>> res = fastopt.minimize(fastopt.problems.rosenbrock_lowlevel(), [-1.2, 1.0],
    ...                        options={"lr": 0.01, "maxiter": 20000, "gtol": 1e-6})
    >>> res.success, res.x.round(4).tolist()
    (True, [1.0, 1.0])
    """
    from scipy import LowLevelCallable

    from fastopt import _objectives

    names = {"float64": "rosenbrock", "float32": "rosenbrock_f32"}
    if str(np.dtype(dtype)) not in names:
        raise ValueError(f"dtype must be float64 or float32, got {dtype!r}")
    return LowLevelCallable.from_cython(_objectives, names[str(np.dtype(dtype))])


def rosenbrock_block_lowlevel(dtype="float64"):
    """Rosenbrock's function in C as a *block* objective for ``fastopt.minimize_batch``: one
    call evaluates many problems, stored variable-major (any n >= 2).

    Per problem, its value and gradient are bitwise those of :func:`rosenbrock_lowlevel`
    (the same operations in the same order), so ``minimize_batch`` gives the same results with
    either; the block one runs the objective and the update SIMD across problems.

    Parameters
    ----------
    dtype : {"float64", "float32"}, default="float64"
        The C signature: ``void f(int m, int n, const double *X, double *F, double *G,
        void *user_data)``, or its float32 twin (float32 arithmetic). Variable j of problem i
        is ``X[j*m + i]``, its gradient ``G[j*m + i]``, its value ``F[i]``.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> X0 = np.tile([-1.2, 1.0], (1000, 1))
    >>> res = fastopt.minimize_batch(fastopt.problems.rosenbrock_block_lowlevel(), X0,
    ...                              options={"lr": 0.01, "maxiter": 20000, "gtol": 1e-6})
    >>> bool(res.success.all()), res.x[0].round(4).tolist()
    (True, [1.0, 1.0])
    """
    from scipy import LowLevelCallable

    from fastopt import _objectives

    names = {"float64": "rosenbrock_block", "float32": "rosenbrock_block_f32"}
    if str(np.dtype(dtype)) not in names:
        raise ValueError(f"dtype must be float64 or float32, got {dtype!r}")
    return LowLevelCallable.from_cython(_objectives, names[str(np.dtype(dtype))])


def beale():
    """Beale's function; minimum 0 at (3, 0.5), flat plateaus and steep walls."""
    c = (1.5, 2.25, 2.625)

    def terms(x):
        x, y = _split(x)
        return x, y, [ci - x + x * y ** (k + 1) for k, ci in enumerate(c)]

    def f(x):
        _, _, t = terms(x)
        return t[0] ** 2 + t[1] ** 2 + t[2] ** 2

    def grad(x):
        x, y, t = terms(x)
        gx = sum(2 * t[k] * (y ** (k + 1) - 1) for k in range(3))
        gy = sum(2 * t[k] * (k + 1) * x * y**k for k in range(3))
        return _stack(gx, gy)

    return Problem("beale", f, grad, np.array([1.0, 1.5]), [(np.array([3.0, 0.5]), 0.0)],
                   ((-4.5, 4.5), (-4.5, 4.5)),
                   description="plateaus and steep ridges; minimum 0 at (3, 0.5)")


def booth():
    """Booth's function, a convex quadratic; minimum 0 at (1, 3)."""

    def f(x):
        x, y = _split(x)
        return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2

    def grad(x):
        x, y = _split(x)
        u, v = x + 2 * y - 7, 2 * x + y - 5
        return _stack(2 * u + 4 * v, 4 * u + 2 * v)

    return Problem("booth", f, grad, np.array([-6.0, -6.0]), [(np.array([1.0, 3.0]), 0.0)],
                   ((-10.0, 10.0), (-10.0, 10.0)),
                   description="convex quadratic bowl; minimum 0 at (1, 3)")


def himmelblau():
    """Himmelblau's function: four minima of value 0."""

    def f(x):
        x, y = _split(x)
        return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2

    def grad(x):
        x, y = _split(x)
        u, v = x * x + y - 11, x + y * y - 7
        return _stack(4 * x * u + 2 * v, 2 * u + 4 * y * v)

    minima = [(3.0, 2.0), (-2.805118086952745, 3.131312518250573),
              (-3.779310253377747, -3.283185991286170), (3.584428340330492, -1.848126526964404)]
    return Problem("himmelblau", f, grad, np.array([0.0, 0.0]),
                   [(np.array(m), 0.0) for m in minima], ((-5.0, 5.0), (-5.0, 5.0)),
                   description="four minima of value 0")


def saddle():
    """The saddle x^2 - y^2 in the box [-2, 2] x [-1, 1]: minima (0, +-1) on the boundary.

    Starting next to the saddle point (0, 0), a method must break the symmetry to escape.
    """

    def f(x):
        x, y = _split(x)
        return x * x - y * y

    def grad(x):
        x, y = _split(x)
        return _stack(2 * x, -2 * y)

    return Problem("saddle", f, grad, np.array([-1.5, 1e-3]),
                   [(np.array([0.0, 1.0]), -1.0), (np.array([0.0, -1.0]), -1.0)],
                   ((-2.0, 2.0), (-1.0, 1.0)), bounds=[(-2.0, 2.0), (-1.0, 1.0)],
                   log_scale=False, description="saddle at (0, 0); minima -1 at (0, +-1)")


def valley(condition=100.0, angle=np.pi / 6):
    """A long narrow valley: a quadratic with condition number ``condition``, rotated."""
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
    hessian = rotation @ np.diag([1.0, condition]) @ rotation.T

    def f(x):
        x = np.asarray(x, dtype=float)
        return 0.5 * np.einsum("...i,ij,...j->...", x, hessian, x) / condition

    def grad(x):
        return np.asarray(x, dtype=float) @ hessian / condition

    return Problem("valley", f, grad, np.array([-4.0, -0.5]), [(np.zeros(2), 0.0)],
                   ((-5.0, 5.0), (-3.0, 3.0)),
                   description=f"quadratic valley, condition number {condition:g}")


def noisy(problem, scale=1.0, seed=0):
    """``problem`` with stochastic gradients: ``grad`` adds N(0, scale^2) noise per component.

    Models the gradient of a random sample (``scale`` large) or of a mini-batch (smaller:
    ``scale / sqrt(batch)``). ``f`` stays exact. The noise comes from its own generator,
    seeded with ``seed`` (a non-negative int or a ``numpy.random.SeedSequence``), so a run is
    reproducible. ``extra`` holds ``scale`` and the exact problem (``base``).
    """
    if isinstance(seed, (bool, np.bool_)) or not (
            isinstance(seed, np.random.SeedSequence)
            or (isinstance(seed, (int, np.integer)) and seed >= 0)):
        raise ValueError(f"seed must be a non-negative integer or a SeedSequence, got {seed!r}")
    if not (np.isfinite(scale) and scale >= 0):
        raise ValueError(f"scale must be a finite number >= 0, got {scale!r}")
    rng = np.random.default_rng(seed)

    def grad(x):
        g = problem.grad(x)
        return g + scale * rng.standard_normal(np.shape(g))

    return Problem(f"noisy_{problem.name}", problem.f, grad, problem.x0.copy(), problem.minima,
                   problem.domain, problem.bounds, problem.log_scale,
                   f"{problem.description}; gradient noise {scale:g}",
                   {"scale": scale, "base": problem})


PROBLEMS = {
    "rosenbrock": rosenbrock,
    "beale": beale,
    "booth": booth,
    "himmelblau": himmelblau,
    "saddle": saddle,
    "valley": valley,
    "noisy_rosenbrock": lambda: noisy(rosenbrock(), scale=5.0),
}


def get(name):
    """The problem called ``name`` (see ``PROBLEMS``)."""
    try:
        return PROBLEMS[name]()
    except KeyError:
        raise ValueError(f"unknown problem {name!r}; choose one of {', '.join(PROBLEMS)}") \
            from None
