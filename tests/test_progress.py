"""Progress of long runs: options disp (levels), disp_every and progress (a tqdm bar) in
fastopt.minimize, minimize_batch and minimize_minibatch. Showing progress never changes the
result."""

import sys

import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der

import fastopt

X0 = np.array([-1.2, 1.0])


def rosen_fg(x):
    return rosen(x), rosen_der(x)


def rosen_rows(X):
    return rosen(X.T), np.array([rosen_der(x) for x in X])


@pytest.fixture(scope="module")
def rosen_llc():
    return fastopt.problems.rosenbrock_lowlevel()


def table_rows(out):
    """The progress lines (count first) of captured output."""
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].isdigit() and parts[-1].endswith("s"):
            rows.append(parts)
    return rows


@pytest.mark.parametrize("native", [False, True])
def test_minimize_lines_every_k_iterations(capsys, rosen_llc, native):
    fun = rosen_llc if native else rosen_fg
    options = {"lr": 1e-3, "maxiter": 250, "gtol": 0.0, "disp": 2, "disp_every": 100}
    res = fastopt.minimize(fun, X0, method="adam", jac=True, options=options)
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert [int(r[0]) for r in rows] == [0, 100, 200, 250]  # the start, every 100, the end
    assert out.splitlines()[0].split() == ["nit", "f", "|g|_inf", "lr", "time"]
    last = rows[-1]
    assert float(last[1]) == pytest.approx(res.fun, rel=1e-5)
    assert float(last[2]) == pytest.approx(np.max(np.abs(res.jac)), rel=1e-5)
    assert float(last[3]) == 1e-3
    assert res.message in out  # and the summary (level 1's)


def test_minimize_lines_show_the_scheduled_rate(capsys, rosen_llc):
    options = {"lr": 1e-3, "maxiter": 30, "gtol": 0.0, "disp": 2, "disp_every": 10,
               "lr_scheduler": lambda o: fastopt.lr_scheduler.StepLR(o, 10, gamma=0.5)}
    fastopt.minimize(rosen_llc, X0, method="sgd", options=options)
    rates = [float(r[3]) for r in table_rows(capsys.readouterr().out)]
    assert rates == [1e-3, 5e-4, 2.5e-4, 1.25e-4]


def test_disp_levels(capsys):
    options = {"lr": 1e-3, "maxiter": 20}
    fastopt.minimize(rosen_fg, X0, jac=True, options=dict(options, disp=0))
    assert capsys.readouterr().out == ""
    fastopt.minimize(rosen_fg, X0, jac=True, options=dict(options, disp=True))
    out = capsys.readouterr().out
    assert "Iterations: 20" in out and not table_rows(out)
    fastopt.minimize(rosen_fg, X0, jac=True, options=dict(options, disp=np.int64(2)))
    assert len(table_rows(capsys.readouterr().out)) == 2  # nit 0 and 20 (disp_every 100)


@pytest.mark.parametrize("native", [False, True])
def test_progress_does_not_change_the_result(capsys, rosen_llc, native):
    fun = rosen_llc if native else rosen_fg
    options = {"lr": 1e-3, "maxiter": 333, "gtol": 0.0, "ftol": 1e-15}
    plain = fastopt.minimize(fun, X0, jac=True, options=options)
    shown = fastopt.minimize(fun, X0, jac=True, options=dict(options, disp=2, disp_every=7,
                                                            progress=True))
    np.testing.assert_array_equal(plain.x, shown.x)
    assert (plain.nit, plain.nfev, plain.status) == (shown.nit, shown.nfev, shown.status)
    capsys.readouterr()


def test_minimize_progress_bar(capsys, rosen_llc):
    pytest.importorskip("tqdm")
    fastopt.minimize(rosen_llc, X0, options={"lr": 1e-3, "maxiter": 500, "gtol": 0.0,
                                             "progress": True})
    err = capsys.readouterr().err
    assert "500/500" in err


def test_progress_without_tqdm_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)

    def never(*a):
        raise AssertionError("fun must not be called")

    for call in (
        lambda o: fastopt.minimize(never, X0, jac=True, options=o),
        lambda o: fastopt.minimize_batch(never, np.zeros((3, 2)), jac=True, options=o),
        lambda o: fastopt.minimize_minibatch(never, X0, data=np.zeros((4, 2)), options=o),
    ):
        with pytest.raises(ImportError, match="pip install tqdm"):
            call({"progress": True})


@pytest.mark.parametrize("bad, error", [(-1, ValueError), ("yes", TypeError),
                                        (1.5, TypeError)])
def test_bad_disp(bad, error):
    with pytest.raises(error, match="disp"):
        fastopt.minimize(rosen_fg, X0, jac=True, options={"disp": bad})
    with pytest.raises(error, match="disp"):
        fastopt.minimize_minibatch(rosen_fg, X0, data=np.zeros((4, 2)), options={"disp": bad})


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_bad_disp_every(bad):
    with pytest.raises((TypeError, ValueError), match="disp_every"):
        fastopt.minimize(rosen_fg, X0, jac=True, options={"disp": 2, "disp_every": bad})
    with pytest.raises((TypeError, ValueError), match="disp_every"):
        fastopt.minimize_batch(rosen_rows, np.zeros((3, 2)), jac=True,
                               options={"disp": 2, "disp_every": bad})


def test_bad_progress():
    with pytest.raises(TypeError, match="progress"):
        fastopt.minimize(rosen_fg, X0, jac=True, options={"progress": "bar"})


# ---------------------------------------------------------------------------------------------
# minimize_minibatch: a line every disp_every epochs

def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    return X, X @ np.array([1.0, -2.0, 0.5])


def loss_and_grad(w, Xb, yb):
    r = Xb @ w - yb
    return 0.5 * np.mean(r ** 2), Xb.T @ r / len(yb)


def test_minibatch_epoch_lines(capsys):
    X, y = _data()
    res = fastopt.minimize_minibatch(loss_and_grad, np.zeros(3), data=(X, y), batch_size=8,
                                     epochs=6, seed=0,
                                     options={"lr": 0.05, "disp": 2, "disp_every": 2})
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert [int(r[0]) for r in rows] == [2, 4, 6]
    assert [float(r[1]) for r in rows] == pytest.approx(res.history[1::2], rel=1e-5)
    assert out.splitlines()[0].split()[0] == "epoch"
    assert res.message in out


def test_minibatch_bar_and_silence(capsys):
    pytest.importorskip("tqdm")
    X, y = _data()
    kwargs = dict(data=(X, y), batch_size=8, epochs=3, seed=0)
    plain = fastopt.minimize_minibatch(loss_and_grad, np.zeros(3), options={"lr": 0.05},
                                       **kwargs)
    assert capsys.readouterr() == ("", "")
    shown = fastopt.minimize_minibatch(loss_and_grad, np.zeros(3),
                                       options={"lr": 0.05, "progress": True}, **kwargs)
    assert "24/24" in capsys.readouterr().err  # 3 epochs of 8 batches
    np.testing.assert_array_equal(plain.x, shown.x)


# ---------------------------------------------------------------------------------------------
# minimize_batch: lines (Python objective), problems done (bar), both paths

def test_batch_lines_python_objective(capsys):
    X0s = np.tile(X0, (5, 1)) + np.linspace(0, 0.5, 5)[:, None]
    res = fastopt.minimize_batch(rosen_rows, X0s, jac=True, method="adam",
                                 options={"lr": 1e-2, "maxiter": 50, "disp": 2,
                                          "disp_every": 25})
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert [int(r[0]) for r in rows] == [0, 25, 50]
    assert [int(float(r[1])) for r in rows] == [5, 5, 0]  # running after the check
    assert float(rows[-1][2]) == pytest.approx(np.min(res.fun), rel=1e-5)
    assert res.message in out


def test_batch_native_lines_and_bar(capsys, rosen_llc):
    pytest.importorskip("tqdm")
    X0s = np.tile(X0, (300, 1))
    options = {"lr": 1e-3, "maxiter": 2000, "gtol": 0.0}
    plain = fastopt.minimize_batch(rosen_llc, X0s, options=options)
    shown = fastopt.minimize_batch(rosen_llc, X0s, options=dict(options, disp=2,
                                                                 disp_every=500,
                                                                 progress=True))
    np.testing.assert_array_equal(plain.x, shown.x)
    captured = capsys.readouterr()
    assert "300/300" in captured.err
    assert "running" in captured.out and plain.message in captured.out
