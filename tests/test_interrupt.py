"""Ctrl-C stops every minimize loop: KeyboardInterrupt, x0 untouched, nothing leaked.

The C-level loops (fastopt.minimize and fastopt.minimize_batch with a C objective) run without
the GIL and check for signals every few milliseconds (src_c/fastopt_interrupt.h); the loops
that hold the GIL check at every iteration. Each test runs a fresh interpreter on a problem
that never converges (gtol=ftol=xtol=0, maxiter=10**12, a tiny lr); it prints START before each run, the
test then sends it SIGINT, as Ctrl-C does; the child checks that KeyboardInterrupt came, that
x0 is untouched and that repeated interrupted runs leak no memory, then prints OK. A watchdog
kills a child that does not finish, so a loop that ignores SIGINT fails the test.
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")

TIMEOUT = 60
ROUNDS = 4

SCRIPT = textwrap.dedent("""
    import gc, signal, sys, tracemalloc
    import numpy as np
    import fastopt
    from fastopt.problems import rosenbrock_lowlevel

    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Never converges: steps of ~lr are below half an ulp of every x here, so x never moves
    # (in float32 too) while the gradient stays far from 0; every iteration does all its work.
    NEVER = dict(maxiter=10**12, gtol=0, ftol=0, xtol=0, lr=1e-20)

    def rosen_rows(X):  # vectorised 2-D-chain Rosenbrock, as rosenbrock_lowlevel computes it
        a = X[:, 1:] - X[:, :-1] ** 2
        b = 1 - X[:, :-1]
        G = np.zeros_like(X)
        G[:, :-1] = -400 * X[:, :-1] * a - 2 * b
        G[:, 1:] += 200 * a
        return np.sum(100 * a * a + b * b, axis=1), G

    def rosen(x):
        f, G = rosen_rows(x[None, :])
        return f[0], G[0]

    case = sys.argv[1]
    x0 = np.resize([-1.2, 1.0], 2000)  # large enough that a leaked iterate would show
    X0 = np.tile([-1.2, 1.0, -1.2, 1.0], (1000, 1)) + np.linspace(0, 0.1, 1000)[:, None]
    llc = rosenbrock_lowlevel()
    if case == "minimize":
        run = lambda: fastopt.minimize(llc, x0, options=NEVER)
    elif case == "minimize_f32":
        x0 = x0.astype(np.float32)
        llc = rosenbrock_lowlevel("float32")
        run = lambda: fastopt.minimize(llc, x0, options=NEVER)
    elif case == "minimize_threads":
        x0 = np.resize([-1.2, 1.0], 2**16)  # above the kernels' threshold: 2 threads
        run = lambda: fastopt.minimize(llc, x0, options=dict(NEVER, n_threads=2))
    elif case == "minimize_builtin_callback":  # C objective, a callback that runs no bytecode
        run = lambda: fastopt.minimize(llc, x0, options=NEVER, callback=len)
    elif case.startswith("lbfgs_batch"):  # minimize_batch's L-BFGS C loops
        X0 = np.resize([-1.2, 1.0], (8, 2**15))
        llc = rosenbrock_lowlevel() if "block" not in case else \
            fastopt.problems.rosenbrock_block_lowlevel()
        x0 = X0
        run = lambda: fastopt.minimize_batch(llc, X0, method="lbfgs", options=dict(
            maxiter=NEVER["maxiter"], maxfun=10**12, gtol=0, ftol=0, n_threads=int(case[-1])))
    elif case.startswith("lbfgs"):  # L-BFGS's C loop: these chains take it seconds
        x0 = np.resize([-1.2, 1.0], 2**17)
        if case == "lbfgs_f32":  # (float32 stalls in ~10 iterations: larger, slower ones)
            x0 = np.resize([-1.2, 1.0], 2**20).astype(np.float32)
            llc = rosenbrock_lowlevel("float32")
        run = lambda: fastopt.minimize(llc, x0, method="lbfgs", options=dict(
            maxiter=NEVER["maxiter"], maxfun=10**12, gtol=0, ftol=0))
    elif case == "minimize_python":
        run = lambda: fastopt.minimize(rosen, x0, jac=True, options=NEVER)
    elif case.startswith("batch_native") or case.startswith("batch_block"):
        threads = int(case[-1])
        dtype = "float32" if "_f32" in case else "float64"
        if case.startswith("batch_native_f32"):
            X0 = X0.astype(np.float32)
            llc = rosenbrock_lowlevel("float32")
        if case.startswith("batch_block"):  # a block objective (fastopt/_batch.pyx)
            X0 = X0.astype(dtype)
            llc = fastopt.problems.rosenbrock_block_lowlevel(dtype)
        x0 = X0
        run = lambda: fastopt.minimize_batch(llc, X0, options=dict(NEVER, n_threads=threads))
    elif case == "batch_python":
        x0 = X0
        run = lambda: fastopt.minimize_batch(rosen_rows, X0, jac=True, options=NEVER)
    keep = x0.copy()
    # Warm up (lazy imports, first-call caches): each START is then followed by the loop
    # within a millisecond, so that SIGINT comes while the loop runs, not while Python code
    # before it does.
    NEVER["maxiter"] = 1
    run()
    NEVER["maxiter"] = 10**12

    tracemalloc.start()
    for k in range({rounds}):
        gc.collect()
        if k == 1:
            before = tracemalloc.get_traced_memory()[0]
        print("START", flush=True)
        try:
            run()
        except KeyboardInterrupt:
            pass
        else:
            print("the run ended without KeyboardInterrupt")
            sys.exit(1)
        if not np.array_equal(x0, keep):
            print("x0 was modified")
            sys.exit(1)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    # One round's arrays (iterates, gradients, state) are >= 96 kB: a leak would show.
    if grown > 32 * 1024:
        print(f"{{grown}} bytes more after the later interrupted runs")
        sys.exit(1)
    print("OK", flush=True)
""")


def interrupt_runs(case):
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(rounds=ROUNDS), case],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    watchdog = threading.Timer(TIMEOUT, proc.kill)
    watchdog.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.strip() == "START":
                time.sleep(0.3)  # the run is in its loop by now
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGINT)
        proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines)
    assert proc.returncode != -signal.SIGKILL, f"{case}: SIGINT did not stop the run\n{out}"
    assert proc.returncode == 0 and out.strip().endswith("OK"), out


@pytest.mark.parametrize("case", [
    "minimize", "minimize_f32", "minimize_threads", "minimize_builtin_callback",
    "lbfgs", "lbfgs_f32", "lbfgs_batch_1", "lbfgs_batch_2", "lbfgs_batch_block_2",
    "batch_native_1", "batch_native_2", "batch_native_f32_2",
    "batch_block_1", "batch_block_2", "batch_block_f32_2",
])
def test_ctrl_c_stops_c_level_loops(case):
    interrupt_runs(case)


@pytest.mark.parametrize("case", ["minimize_python", "batch_python"])
def test_ctrl_c_stops_python_objective_loops(case):
    interrupt_runs(case)
