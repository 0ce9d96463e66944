"""Forked children: every parallel path runs serially there instead of hanging.

GNU libgomp cannot run a parallel region of more than one thread in a child forked after the
parent's OpenMP threads exist (src_c/fastopt_openmp.h). Each test runs a fresh interpreter
that first runs OpenMP with 2 threads, computes a result with 2 threads, forks, computes the
same result in the child, and checks that the child finished (a watchdog kills it after
CHILD_TIMEOUT s) with the same result, bitwise. Two ways to fork: ``os.fork`` (Python's
at-fork hooks run) and libc's ``fork`` called through ctypes (only C-level handlers run, as for
a fork made by a C library); and a ``multiprocessing`` fork ``Pool`` worker.
"""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

CHILD_TIMEOUT = 60

SCRIPT = textwrap.dedent("""
    import ctypes, hashlib, os, pickle, sys, time
    import numpy as np
    import fastopt
    from fastopt.problems import rosenbrock_lowlevel

    CHILD_TIMEOUT = {timeout}
    THREADS = 2
    BIG = 2**17  # above fastopt._kernels' PARALLEL_THRESHOLD (32768)

    def kernels():
        out = []
        for cls in (fastopt.SGD, fastopt.Adam):
            p = np.linspace(-1, 1, BIG)
            opt = cls(p, lr=0.01, n_threads=THREADS)
            for _ in range(3):
                opt.step(np.cos(p))
            out.append(p)
        return out

    def small_arrays():
        # Many arrays under the threshold, more than it in all: shared out whole over threads.
        params = [np.full(1000, float(i)) for i in range(100)]
        opt = fastopt.Adam(params, lr=0.01, n_threads=THREADS)
        for _ in range(3):
            opt.step([np.sin(p) for p in params])
        return params

    def minimize_large():
        x0 = np.resize([-1.2, 1.0], BIG)
        res = fastopt.minimize(rosenbrock_lowlevel(), x0,
                               options=dict(maxiter=5, gtol=0, n_threads=THREADS))
        return res.x, res.nit

    def batch_python():
        def fg(X):
            return np.sum(X * X, axis=1), 2 * X
        X0 = np.linspace(-1, 1, 300 * 200).reshape(300, 200)  # 60000 values: threaded update
        res = fastopt.minimize_batch(fg, X0, jac=True,
                                     options=dict(maxiter=5, gtol=0, n_threads=THREADS))
        return res.x, res.nit

    def batch_native():
        X0 = np.tile([-1.2, 1.0], (1000, 1)) + np.linspace(0, 0.1, 1000)[:, None]  # 8 chunks
        res = fastopt.minimize_batch(rosenbrock_lowlevel(), X0,
                                     options=dict(lr=1e-3, maxiter=50, gtol=0,
                                                  n_threads=THREADS))
        return res.x, res.nit

    def pool_worker():
        return batch_native(), kernels()

    def digest(result):
        # Small enough for the pipe while the parent waits; equal digests: equal bits.
        return hashlib.sha256(pickle.dumps(result)).hexdigest()

    def watch(pid, read_fd):
        # Read the child's result; kill it when it does not finish in time.
        deadline = time.monotonic() + CHILD_TIMEOUT
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            print("HUNG: the forked child did not finish")
            sys.exit(3)
        with os.fdopen(read_fd, "rb") as f:
            data = f.read()
        if not data:
            print(f"the child failed, wait status {{status}}")
            sys.exit(4)
        return data.decode()

    path, how = sys.argv[1], sys.argv[2]
    task = globals()[path]
    big = np.zeros(BIG)
    fastopt.SGD(big, lr=0.1, n_threads=THREADS).step(np.ones(BIG))  # OpenMP threads exist now
    expected = task()
    if how == "pool":
        import multiprocessing
        pool = multiprocessing.get_context("fork").Pool(1)
        try:
            got = pool.apply_async(task).get(timeout=CHILD_TIMEOUT)
        except multiprocessing.TimeoutError:
            pool.terminate()
            print("HUNG: the pool worker did not finish")
            sys.exit(3)
        pool.close()
        pool.join()
    else:
        read_fd, write_fd = os.pipe()
        if how == "os":
            pid = os.fork()
        else:  # libc's fork, not os.fork: Python's at-fork hooks do not run (PyDLL: GIL held)
            libc_fork = ctypes.PyDLL(None).fork
            libc_fork.restype = ctypes.c_int
            pid = libc_fork()
        if pid == 0:
            code = 1
            try:
                os.close(read_fd)
                data = digest(task()).encode()
                with os.fdopen(write_fd, "wb") as f:
                    f.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(write_fd)
        got = watch(pid, read_fd)
    if (got if how != "pool" else digest(got)) != digest(expected):
        print("the child's result differs from the parent's")
        sys.exit(1)
    print("OK")
""")


def run_script(path, how):
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(timeout=CHILD_TIMEOUT), path, how],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=CHILD_TIMEOUT + 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{path} ({how}) hung")
    assert proc.returncode == 0 and out.strip().endswith("OK"), out


PATHS = ["kernels", "small_arrays", "minimize_large", "batch_python", "batch_native"]


@pytest.mark.parametrize("how", ["os", "libc"])
@pytest.mark.parametrize("path", PATHS)
def test_forked_child_runs_serially(path, how):
    run_script(path, how)


def test_multiprocessing_fork_pool_worker():
    # The parent only stepped a large SGD with 2 threads; the worker solves a batch with a C
    # objective and steps large optimizers, asking for 2 threads.
    run_script("pool_worker", "pool")
