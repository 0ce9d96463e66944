"""fastopt.problems: gradients match finite differences, minima are minima, vectorisation."""

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from fastopt import problems

EXACT = [name for name in problems.PROBLEMS if not name.startswith("noisy")]


@pytest.mark.parametrize("name", EXACT)
def test_gradient_matches_finite_differences(name, rng):
    p = problems.get(name)
    lo, hi = np.array(p.domain).T
    for x in rng.uniform(lo, hi, size=(10, 2)):
        np.testing.assert_allclose(p.grad(x), approx_fprime(x, p.f, 1e-7), rtol=1e-4,
                                   atol=1e-4 * (1 + np.abs(p.f(x))))


@pytest.mark.parametrize("name", EXACT)
def test_minima_are_minima(name, rng):
    p = problems.get(name)
    for point, value in p.minima:
        assert p.f(point) == pytest.approx(value, abs=1e-10)
        for delta in rng.standard_normal((20, p.n)) * 1e-3:
            neighbour = point + delta
            if p.bounds is not None:
                neighbour = np.clip(neighbour, *np.array(p.bounds).T)
            assert p.f(neighbour) >= value - 1e-12
        if p.bounds is None:
            np.testing.assert_allclose(p.grad(point), 0.0, atol=1e-10)


@pytest.mark.parametrize("name", EXACT)
def test_vectorised_over_a_grid(name):
    p = problems.get(name)
    grid = np.stack(np.meshgrid(np.linspace(*p.domain[0], 4), np.linspace(*p.domain[1], 3)),
                    axis=-1)
    assert p.f(grid).shape == (3, 4) and p.grad(grid).shape == (3, 4, 2)
    np.testing.assert_allclose(p.f(grid)[1, 2], p.f(grid[1, 2]))
    np.testing.assert_allclose(p.grad(grid)[2, 3], p.grad(grid[2, 3]))


def test_rosenbrock_in_n_dimensions():
    p = problems.rosenbrock(5)
    assert p.x0.tolist() == [-1.2, 1.0, -1.2, 1.0, -1.2]
    x = np.linspace(-1, 1, 5)
    np.testing.assert_allclose(p.grad(x), approx_fprime(x, p.f, 1e-7), rtol=1e-5)
    with pytest.raises(ValueError, match="n >= 2"):
        problems.rosenbrock(1)


def test_noisy_variant_is_reproducible_and_unbiased():
    a, b = problems.noisy(problems.booth(), scale=2.0, seed=3), \
        problems.noisy(problems.booth(), scale=2.0, seed=3)
    x = np.array([0.5, 0.5])
    np.testing.assert_array_equal(a.grad(x), b.grad(x))
    mean = np.mean([a.grad(x) for _ in range(20000)], axis=0)
    np.testing.assert_allclose(mean, problems.booth().grad(x), atol=0.1)
    assert a.f(x) == problems.booth().f(x)


def test_unknown_problem():
    with pytest.raises(ValueError, match="unknown problem 'nope'"):
        problems.get("nope")


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_noisy_refuses_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        problems.noisy(problems.booth(), seed=seed)


def test_noisy_accepts_a_seed_sequence_and_keeps_its_base():
    seq = np.random.SeedSequence([1, 2])
    a = problems.noisy(problems.booth(), 1.0, seed=seq)
    b = problems.noisy(problems.booth(), 1.0, seed=np.random.SeedSequence([1, 2]))
    np.testing.assert_array_equal(a.grad(np.zeros(2)), b.grad(np.zeros(2)))
    assert a.extra["base"].name == "booth" and a.extra["scale"] == 1.0
