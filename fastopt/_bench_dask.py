"""Benchmark of ``fastopt.dask.minimize_batch``: ``python -m fastopt bench-loops --dask``.

m 2-D Rosenbrock problems (default 1,000,000) from (-1.2, 1), Adam (lr 1e-3), 1000 iterations
(gtol=0: every problem makes them all), C objective (the recipe
``fastopt.dask.lowlevel(fastopt.problems.rosenbrock_lowlevel)``):

  in-process        fastopt.minimize_batch on the whole (m, 2) array, n_threads = workers
  dask, chunks of c fastopt.dask.minimize_batch on a LocalCluster of ``workers`` worker
                    processes x 1 thread, X0 made on the workers in row chunks of c problems,
                    the whole result brought back (``.compute()``)

Variants run interleaved (one after another in each round; medians), so that a loaded machine
slows all of them alike. Dask's overhead is the dask run's time over the in-process one, and
per chunk (worker time) ``(t_dask - t_in_process) * workers / chunks``; and, on its own, the
cost of an empty task (maxiter=1 on chunks of 100 problems: Dask's fixed cost per task). The
chunk sizes whose overhead measured under 5%, and the estimate of the size from which it
does, ``cost per task / (5% of a problem's time)``.
"""

import os
import sys
import time

import numpy as np

import fastopt
from fastopt._bench import interleaved_times
from fastopt._bench_loops import ITERS, LR, X_START

CHUNKS = (5_000, 20_000, 62_500, 125_000, 250_000)
EMPTY_TASKS = 200  # chunks of 100 problems, maxiter=1: Dask's fixed cost per task


def run(m=1_000_000, chunks=CHUNKS, repeats=3, workers=2, file=None):
    """Print the table (medians of ``repeats`` interleaved rounds); returns ``{"seconds":
    {variant: median s}, "problems_per_second": {...}, "overhead": {chunk size: fraction},
    "overhead_per_chunk_s": {...}, "task_cost_s": float, "below_5_percent": [chunk sizes],
    "estimate_5_percent": chunk size}``, or None (with a message) without dask and distributed."""
    file = sys.stdout if file is None else file
    try:
        import dask.array as da
        from distributed import Client, LocalCluster

        import fastopt.dask as fdask
    except ImportError:
        print('bench-loops --dask: skipped: dask and distributed are not installed (pip install '
              '"fastopt[dask]")', file=file)
        return None
    started = time.perf_counter()
    spec = fdask.lowlevel(fastopt.problems.rosenbrock_lowlevel)
    options = {"lr": LR, "maxiter": ITERS, "gtol": 0.0}
    X0 = np.tile(X_START, (m, 1))
    chunks = [c for c in chunks if c <= m] or [m]
    print(f"fastopt.dask.minimize_batch: {m} 2-D Rosenbrock problems, Adam, {ITERS} "
          f"iterations, C objective recipe; LocalCluster of {workers} worker processes x 1 "
          f"thread vs in-process minimize_batch on {workers} threads; median of {repeats} "
          f"interleaved rounds; load {_load()}", file=file)
    last = {}

    def in_process():
        last["in-process"] = fastopt.minimize_batch(spec(), X0,
                                                    options=dict(options, n_threads=workers))

    def on_dask(c):
        def run_chunks():
            start = da.broadcast_to(np.array(X_START), (m, 2), chunks=(c, 2))
            last[c] = fdask.minimize_batch(spec, start, options=options).compute()
        return run_chunks

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)
        warm = da.broadcast_to(np.array(X_START), (100 * workers, 2), chunks=(100, 2))
        fdask.minimize_batch(spec, warm, options=options).compute()  # imports, C objective
        empty = da.broadcast_to(np.array(X_START), (100 * EMPTY_TASKS, 2), chunks=(100, 2))
        task_times = interleaved_times({"empty": lambda: fdask.minimize_batch(
            spec, empty, options=dict(options, maxiter=1)).compute()}, repeats)["empty"]
        task_cost = float(np.median(task_times)) * workers / EMPTY_TASKS
        variants = {"in-process": in_process, **{c: on_dask(c) for c in chunks}}
        times = {k: float(np.median(t)) for k, t in interleaved_times(variants, repeats).items()}
    for c in chunks:  # the benchmark checks what it times
        for field in ("x", "fun", "nit"):
            if not np.array_equal(last[c][field], last["in-process"][field]):
                raise AssertionError(f"bench-loops --dask: chunks of {c}: {field} differs from "
                                     "the in-process result")
    base = times["in-process"]
    per_problem = base * workers / m  # seconds of one thread's work per problem
    overhead = {c: times[c] / base - 1 for c in chunks}
    per_chunk = {c: (times[c] - base) * workers / -(-m // c) for c in chunks}
    print(f"  {'variant':<26} {'chunks':>7} {'seconds':>9} {'problems/s':>12} "
          f"{'overhead':>9} {'per chunk':>10}", file=file)
    print(f"  {'in-process minimize_batch':<26} {'':>7} {base:9.2f} {m / base:12.0f}",
          file=file)
    for c in chunks:
        print(f"  {f'dask, chunks of {c}':<26} {-(-m // c):7d} {times[c]:9.2f} "
              f"{m / times[c]:12.0f} {overhead[c]:8.1%} {per_chunk[c] * 1e3:8.1f} ms", file=file)
    below = [c for c in chunks if overhead[c] < 0.05]
    estimate = task_cost / (0.05 * per_problem)
    print(f"  Dask's cost of an empty task (maxiter=1, {EMPTY_TASKS} chunks of 100 problems): "
          f"{task_cost * 1e3:.1f} ms of worker time; a problem costs {per_problem * 1e6:.1f} us "
          f"of one thread", file=file)
    print(f"  overhead < 5% measured with chunks of {', '.join(map(str, below)) or 'none'}; "
          f"estimated from chunks of {estimate:.0f} problems (where one task's cost is 5% of "
          "a chunk's work); every result bitwise the in-process one", file=file)
    print(f"  load after: {_load()} ({time.perf_counter() - started:.0f} s)", file=file)
    return {"seconds": times, "problems_per_second": {k: m / t for k, t in times.items()},
            "overhead": overhead, "overhead_per_chunk_s": per_chunk, "task_cost_s": task_cost,
            "below_5_percent": below, "estimate_5_percent": estimate}


def _load():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cpus"
    except OSError:
        return "unknown"
