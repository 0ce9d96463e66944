"""Cases found by an adversarial review after issue 11: each ran into a crash, a hang or a
silent wrong result before its fix."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastopt


def _run_python(code, timeout=120):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=timeout)
    return out.returncode, out.stdout + out.stderr


# -- gradients read through Python code ----------------------------------------------------------


def test_gradient_resized_by_a_list_subclass_while_the_others_are_read_is_refused():
    # Indexing a list subclass runs Python code after grads[0] was checked: a gradient
    # resized then (refcheck=False frees its buffer) was read at its old size (SIGSEGV).
    # In a subprocess, so that a regression shows as a crash, not a broken test run.
    code = """
        import numpy as np, fastopt
        params = [np.zeros(100_000), np.zeros(3)]
        grads = [np.ones(100_000), np.ones(3)]

        class Sneaky(list):
            def __getitem__(self, index):
                if index == 1:
                    list.__getitem__(self, 0).resize(1, refcheck=False)
                return list.__getitem__(self, index)

        opt = fastopt.SGD(params, lr=0.1)
        opt.step([np.ones(100_000), np.ones(3)])
        before = [p.copy() for p in params]
        try:
            opt.step(Sneaky(grads))
        except ValueError as exc:
            assert "grads[0]" in str(exc), exc
        else:
            raise SystemExit("no error")
        assert all((p == b).all() for p, b in zip(params, before))
        print("ok")
    """
    rc, out = _run_python(code)
    assert rc == 0 and out.strip() == "ok", (rc, out)


def test_gradient_dtype_changed_by_a_list_subclass_is_refused():
    params = [np.zeros(4), np.zeros(3)]
    grads = [np.ones(4), np.ones(3)]

    class Sneaky(list):
        def __getitem__(self, index):
            if index == 1:
                list.__getitem__(self, 0).dtype = np.float32
            return list.__getitem__(self, index)

    opt = fastopt.Adam(params, lr=0.1)
    with pytest.raises(ValueError, match=r"grads\[0\] changed"):
        opt.step(Sneaky(grads))
    assert all((p == 0).all() for p in params)
    assert opt.step_count == 0


# -- the race's picture ---------------------------------------------------------------------------


def test_race_picture_frame_of_a_far_start_gives_no_overflow_warning():
    # ``race --start 1e300,1e300`` printed NumPy's "overflow encountered in dot" (the distance
    # from a path's end to the minima, in the picture's framing).
    import warnings

    from fastopt import _plot
    from fastopt._race import run_race

    problem, results = run_race("rosenbrock", methods=["gd", "adam"], steps=5,
                                start=(1e300, 1e300))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (x_lo, x_hi), (y_lo, y_hi) = _plot.frame(problem, results)
    assert x_lo < x_hi and y_lo < y_hi


# -- a step that is running ------------------------------------------------------------------------


@pytest.mark.parametrize("restore", ["setstate", "load_state_dict"])
def test_restoring_a_state_while_a_step_runs_is_refused(restore):
    # load_state_dict refused while step() ran (in another thread, or from Python code that
    # step runs: a list subclass's __getitem__), but __setstate__ on the live optimizer
    # replaced its parameters, state and count under the running step: steps were lost.
    params = [np.zeros(3), np.zeros(2)]
    opt = fastopt.Adam(params, lr=0.1)
    opt.step([np.ones(3), np.ones(2)])
    saved, saved_dict = opt.__getstate__(), opt.state_dict()

    class Restoring(list):
        def __getitem__(self, index):
            if restore == "setstate":
                opt.__setstate__(saved)
            else:
                opt.load_state_dict(saved_dict)
            return list.__getitem__(self, index)

    before = [p.copy() for p in params]
    with pytest.raises(RuntimeError, match="while step"):
        opt.step(Restoring([np.ones(3), np.ones(2)]))
    assert opt.params[0] is params[0] and opt.step_count == 1
    assert all((p == b).all() for p, b in zip(params, before))
    opt.step([np.ones(3), np.ones(2)])
    assert opt.step_count == 2 and not (params[0] == before[0]).any()


def test_gradient_aliasing_a_parameter_that_moved_is_still_refused():
    # The byte ranges the overlap check searches were made once, at construction: after
    # ``resize(refcheck=False)`` moved a parameter, a gradient that is that parameter went
    # through, and the update read it while writing it (b came out +1, not -1).
    a, b = np.zeros(4), np.zeros(4)
    opt = fastopt.SGD([a, b], lr=1.0)
    a.resize(1000, refcheck=False)
    a.resize(4, refcheck=False)
    with pytest.raises(ValueError, match=r"grads\[1\] shares memory with params\[0\]"):
        opt.step([np.ones(4), a])
    assert (a == 0).all() and (b == 0).all()
    opt.step([np.ones(4), np.ones(4)])
    assert (a == -1).all() and (b == -1).all()


# -- the command line ------------------------------------------------------------------------------


def test_race_bad_start_message_shows_the_numbers_as_typed(capsys):
    # It showed NumPy reprs: "got [np.float64(1.0), np.float64(2.0), np.float64(3.0)]".
    from fastopt._cli import main

    with pytest.raises(SystemExit) as exc:
        main(["race", "--start", "1,2,3"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "got 1,2,3" in err and "np.float64" not in err
