"""The ``fastopt`` command (also ``python -m fastopt``).

    fastopt                  configuration and a short usage text
    fastopt race [...]       race the classic optimizers on a test problem; table and pictures
    fastopt lr-table [...]   the learning rates that converge, per method and test problem
    fastopt bench [...]      fastopt vs NumPy vs torch, timed side by side
    fastopt demo [...]       the optimizers on a least-squares problem; a table
    fastopt --version        fastopt's version

Bad arguments print a usage message and exit with status 2, never a traceback.
"""

import argparse
import os
import sys

from fastopt import problems
from fastopt._config import show_config

USAGE = """\
usage: python -m fastopt race [--problem NAME] [--steps N] [--methods adam,nag,...|all]
                              [--lr adam=0.01,...] [--seed S] [--start x,y] [--tol T]
                              [--out DIR] [--animate] [--schedule NAME]
       python -m fastopt lr-table [--race] [--problems rosenbrock,...] [--steps N]
       python -m fastopt bench [--quick] [--sizes 14,22] [--dtypes ...] [--rules Adam,...]
       python -m fastopt bench-loops [--repeats R] [--problems M] [--scipy-problems K]
                                     [--lbfgs-only]
       python -m fastopt bench-loops --dask [--repeats R] [--problems M] [--chunks C,C,...]
       python -m fastopt demo [--steps N] [--seed S]
       python -m fastopt --version

  race         the classic optimizers racing across a loss surface: a ranked table, a
               contour plot (race_<problem>.png in --out, default the current folder) and
               with --animate a GIF (pictures need matplotlib: pip install "fastopt[plot]")
  lr-table     the learning rates with which each method converges on the test problems
               (--race: the race's measured defaults)
  bench        fastopt vs NumPy vs torch, timed side by side (--quick: about a minute)
  bench-loops  whole minimize loops on small problems: C-level and batched vs Python,
               NumPy, SciPy and plain C (about two minutes); then L-BFGS batches vs SciPy's
               L-BFGS-B and Adam (--lbfgs-only: that part alone); --dask instead: fastopt.dask
               on a LocalCluster vs in process, by chunk size (several minutes)
  demo         the optimizers on a least-squares problem, as a table
Problems: {problems}. Run 'python -m fastopt race --help' for details."""

# Options whose values may start with "-" (a start point such as -1,2): argparse would take
# "-1,2" for an option, so they are joined to their value ("--start=-1,2") before parsing.
_VALUE_MAY_START_WITH_DASH = ("--start", "--lr", "--tol")
MAX_DEMO_STEPS = 100_000
MAX_REPEATS = 1000
MAX_BATCH_PROBLEMS = 1_000_000
MAX_SCIPY_PROBLEMS = 10_000


def _build_parser():
    from fastopt._config import __version__
    from fastopt._race import (DEFAULT_RACERS, DEFAULT_STEPS, DEFAULT_TOL, LR_TABLE_PROBLEMS,
                               MAX_STEPS, RACERS)
    from fastopt._race import SCHEDULES

    parser = argparse.ArgumentParser(prog="fastopt", description="fastopt's command line.")
    parser.add_argument("--version", action="version", version=f"fastopt {__version__}")
    sub = parser.add_subparsers(dest="command")
    labels = [RACERS[key][0] for key in DEFAULT_RACERS]  # (from the records)
    others = [label for key, (label, _, _) in RACERS.items() if key not in DEFAULT_RACERS]
    race = sub.add_parser(
        "race", help="race the optimizers on a test problem",
        description=f"Race {', '.join(labels[:-1])} and {labels[-1]} (--methods all: "
                    f"{', '.join(others)} too) across a loss surface, "
                    "with learning rates measured on that problem. Prints a ranked table; "
                    "writes race_<problem>.png (and .gif with --animate) into --out "
                    "(default: the current folder).")
    race.add_argument("--problem", default="rosenbrock", choices=sorted(problems.PROBLEMS))
    race.add_argument("--steps", type=int, default=None,
                      help="steps per method, 1 to %d (default: the problem's budget, %d on "
                           "rosenbrock)" % (MAX_STEPS, DEFAULT_STEPS["rosenbrock"]))
    race.add_argument("--methods", default=",".join(DEFAULT_RACERS),
                      help=f"comma-separated racers from {','.join(RACERS)}, or 'all' for "
                           f"every one (default, the classic methods: "
                           f"{','.join(DEFAULT_RACERS)})")
    race.add_argument("--lr", default="", help="learning rates overriding the measured "
                                               "defaults, e.g. adam=0.01,nag=0.001")
    race.add_argument("--seed", type=int, default=0,
                      help="seed (>= 0) of the gradient noise; each racer has its own stream")
    race.add_argument("--start", default=None, help="start point x,y (default: the "
                                                    "problem's classic start)")
    race.add_argument("--tol", type=float, default=DEFAULT_TOL,
                      help=f"f - f_min counted as arrival (default {DEFAULT_TOL:g})")
    race.add_argument("--out", default=".", help="folder for the pictures (default: the "
                                                 "current folder; created if missing)")
    race.add_argument("--animate", action="store_true", help="also write an animated GIF")
    race.add_argument("--schedule", default="none", choices=list(SCHEDULES),
                      help="a learning-rate schedule from each racer's rate: "
                           + "; ".join(f"{k}: {v}" for k, v in SCHEDULES.items())
                           .replace("%", "%%"))  # (argparse formats help with %)
    table = sub.add_parser(
        "lr-table", help="learning rates that converge, per method and problem",
        description="Runs every method of fastopt.minimize over a grid of learning rates on "
                    "the deterministic test problems (all rates at once, with "
                    "minimize_batch) and prints, per method, the rates that converge and one "
                    "to start with. --race prints the race's measured default rates instead.")
    table.add_argument("--race", action="store_true",
                       help="the race's default learning rates, measured per problem")
    table.add_argument("--problems", default=",".join(LR_TABLE_PROBLEMS),
                       help=f"comma-separated problems (default {','.join(LR_TABLE_PROBLEMS)})")
    table.add_argument("--steps", type=int, default=None,
                       help="steps per run (default 5000; with --race the race's budgets)")
    bench = sub.add_parser(
        "bench", help="time fastopt against NumPy and torch",
        description="One process, one run: every update rule, fastopt vs NumPy (plain and "
                    "out=) vs torch.optim (when installed), variants interleaved; medians, "
                    "spreads, speed-ups and effective bandwidth vs a compiled axpy.")
    bench.add_argument("--quick", action="store_true", help="a small run (about a minute)")
    bench.add_argument("--sizes", default=None, help="comma-separated log2 sizes, e.g. 14,22")
    bench.add_argument("--dtypes", default=None, help="float32,float64")
    bench.add_argument("--rules", default=None, help="e.g. Adam,RMSprop")
    bench.add_argument("--repeats", type=int, default=None, help="rounds (default 15; quick 5)")
    loops = sub.add_parser(
        "bench-loops", help="time whole minimize loops on small problems",
        description="2-D Rosenbrock, Adam, 1000 iterations: one problem (C-level loop, "
                    "Python-function loop, scipy.optimize.minimize with a Python Adam, plain "
                    "C) in ns per iteration, and m problems (minimize_batch with a C, a block C "
                    "or a vectorised objective, NumPy, plain C one problem at a time and SIMD "
                    "across blocks of problems, a loop of scipy) in problems/s.")
    loops.add_argument("--repeats", type=int, default=None,
                       help="rounds (default 5; with --dask 3)")
    loops.add_argument("--problems", type=int, default=None,
                       help="m (default 10000; with --dask 1000000)")
    loops.add_argument("--scipy-problems", type=int, default=10,
                       help="problems the scipy loop solves per round (default 10)")
    loops.add_argument("--lbfgs-only", action="store_true",
                       help="only the L-BFGS tables (Rosenbrock and the bootstrap)")
    loops.add_argument("--dask", action="store_true",
                       help="instead: fastopt.dask.minimize_batch on a LocalCluster of 2 "
                            "worker processes vs in-process minimize_batch, at several chunk "
                            "sizes (m default 1,000,000, 3 rounds: several minutes; needs "
                            'pip install "fastopt[dask]", skipped without it)')
    loops.add_argument("--chunks", default=None,
                       help="with --dask: chunk sizes, comma-separated (default "
                            "5000,20000,62500,125000,250000)")
    demo = sub.add_parser("demo", help="the optimizers on a least-squares problem")
    demo.add_argument("--steps", type=int, default=500,
                      help=f"steps per method, 1 to {MAX_DEMO_STEPS} (default 500)")
    demo.add_argument("--seed", type=int, default=0, help="data and sampling seed (>= 0)")
    return parser, {"race": race, "lr-table": table, "demo": demo, "bench": bench,
                    "bench-loops": loops}


def _parse_race(parser, args):
    """Parse and validate the race arguments; parser.error() (exit 2) on anything wrong.

    The text forms are parsed here; the values are checked by the race's own validation
    (``check_race_arguments``), whose messages name the option.
    """
    from fastopt._race import check_race_arguments

    methods = [m.strip().lower() for m in args.methods.split(",") if m.strip()]
    rates = {}
    for item in filter(None, (s.strip() for s in args.lr.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        try:
            rate = float(value)
        except ValueError:
            rate = None
        if not sep or rate is None:
            parser.error(f"--lr: bad entry {item!r}; use method=rate with a finite rate > 0, "
                         f"e.g. adam=0.01")
        if key in rates:
            parser.error(f"--lr: {key} given twice")
        rates[key] = rate
    start = None
    if args.start is not None:
        try:
            start = [float(v) for v in args.start.split(",")]
        except ValueError:
            parser.error(f"--start: bad point {args.start!r}; give numbers such as -1.2,1")
    try:
        return check_race_arguments(args.problem, methods, args.steps, rates, args.seed, start,
                                    args.tol)
    except ValueError as exc:
        parser.error(f"--{exc}")


def _output_folder(parser, out):
    """Make sure the pictures can be written into ``out`` before racing (exit 2 if not)."""
    import tempfile

    if os.path.exists(out) and not os.path.isdir(out):
        parser.error(f"--out: {out!r} exists and is not a folder")
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        parser.error(f"--out: cannot write into {out!r}: {exc.strerror or exc}")


def race(parser, args):
    from fastopt import _plot
    from fastopt._race import format_table, run_race

    problem, methods, steps, rates, seed, x0, tol = _parse_race(parser, args)
    plot = _plot.have_matplotlib()
    if plot:
        _output_folder(parser, args.out)
    problem, results = run_race(args.problem, methods, steps, rates, seed, x0, tol,
                                schedule=args.schedule)
    print(format_table(problem, results, steps, tol, schedule=args.schedule))
    if not plot:
        print("\nNo picture: matplotlib is not installed. pip install \"fastopt[plot]\" "
              "(or matplotlib) to draw the race.")
        return 0
    try:
        # (with a schedule, race_<problem>_<schedule>.png: beside the constant-rate picture)
        name = problem.name if args.schedule == "none" else f"{problem.name}_{args.schedule}"
        png = _plot.save_png(problem, results, steps,
                             _plot.output_path(args.out, name, "png"), tol=tol,
                             schedule=args.schedule)
        print(f"\nwrote {os.path.abspath(png)}")
        if args.animate:
            gif = _plot.save_gif(problem, results, steps,
                                 _plot.output_path(args.out, name, "gif"), tol=tol,
                                 schedule=args.schedule)
            print(f"wrote {os.path.abspath(gif)}")
    except OSError as exc:
        parser.error(f"--out: cannot write into {args.out!r}: {exc.strerror or exc}")
    return 0


def lr_table(parser, args):
    from fastopt import _race

    names = [p.strip() for p in args.problems.split(",") if p.strip()]
    unknown = [p for p in names if p not in problems.PROBLEMS]
    if unknown or not names or len(set(names)) != len(names):
        parser.error(f"--problems: bad list {args.problems!r}; choose from "
                     f"{','.join(problems.PROBLEMS)}, each once")
    if args.steps is not None and not 1 <= args.steps <= _race.MAX_STEPS:
        parser.error(f"--steps must be from 1 to {_race.MAX_STEPS}, got {args.steps}")
    if args.race:
        print("The race's default learning rates (python -m fastopt race), measured per "
              "problem:\n")
        for name in names:
            rates = _race.race_lr(name, args.steps)
            print(f"{name}: " + ", ".join(f"{k}={v:g}" for k, v in rates.items()))
        return 0
    steps = _race.LR_TABLE_STEPS if args.steps is None else args.steps
    table = _race.lr_table(names, steps=steps)
    print(_race.format_lr_table(table, steps))
    return 0


def bench(parser, args):
    from fastopt._bench import RULES, run

    def listed(text, convert, allowed=None, name=""):
        if text is None:
            return None
        try:
            values = [convert(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError:
            values = []
        if not values or (allowed is not None and any(v not in allowed for v in values)):
            parser.error(f"--{name}: bad list {text!r}" + (f"; choose from {','.join(allowed)}"
                                                           if allowed else ""))
        return values

    sizes = listed(args.sizes, int, name="sizes")
    if sizes is not None and not all(0 <= k <= 30 for k in sizes):
        parser.error("--sizes: log2 sizes between 0 and 30")
    if args.repeats is not None and not 1 <= args.repeats <= MAX_REPEATS:
        parser.error(f"--repeats must be from 1 to {MAX_REPEATS}, got {args.repeats}")
    run(quick=args.quick, sizes=None if sizes is None else [2**k for k in sizes],
        dtypes=listed(args.dtypes, str, ["float32", "float64"], "dtypes"),
        rules=listed(args.rules, str, list(RULES), "rules"), repeats=args.repeats)
    return 0


def bench_loops(parser, args):
    from fastopt._bench_loops import run

    if args.repeats is None:
        args.repeats = 3 if args.dask else 5
    if args.problems is None:
        args.problems = MAX_BATCH_PROBLEMS if args.dask else 10000
    limits = {"repeats": MAX_REPEATS, "problems": MAX_BATCH_PROBLEMS,
              "scipy_problems": MAX_SCIPY_PROBLEMS}
    for name, limit in limits.items():
        if not 1 <= getattr(args, name) <= limit:
            parser.error(f"--{name.replace('_', '-')} must be from 1 to {limit}, got "
                         f"{getattr(args, name)}")
    if args.chunks is not None and not args.dask:
        parser.error("--chunks goes with --dask")
    if args.dask and args.lbfgs_only:
        parser.error("--lbfgs-only and --dask are separate benchmarks: choose one")
    if args.lbfgs_only:
        from fastopt._bench_lbfgs import run as run_lbfgs
        run_lbfgs(repeats=args.repeats, m=args.problems)
        return 0
    if not args.dask:
        run(repeats=args.repeats, m=args.problems, m_scipy=args.scipy_problems)
        return 0
    from fastopt._bench_dask import CHUNKS, run as run_dask

    try:
        chunks = CHUNKS if args.chunks is None else [int(c) for c in args.chunks.split(",")]
    except ValueError:
        parser.error(f"--chunks must be comma-separated whole numbers, got {args.chunks!r}")
    if not all(1 <= c <= MAX_BATCH_PROBLEMS for c in chunks):
        parser.error(f"--chunks must be from 1 to {MAX_BATCH_PROBLEMS}, got {args.chunks}")
    run_dask(m=args.problems, chunks=chunks, repeats=args.repeats)
    return 0


def demo(parser, args):
    from fastopt._demo import print_table
    from fastopt._race import check_seed

    if not 1 <= args.steps <= MAX_DEMO_STEPS:
        parser.error(f"--steps must be from 1 to {MAX_DEMO_STEPS}, got {args.steps}")
    try:
        check_seed(args.seed)
    except ValueError as exc:
        parser.error(f"--{exc}")
    show_config()
    print_table(steps=args.steps, seed=args.seed)
    return 0


def _join_dash_values(argv):
    """``--start -1,2`` -> ``--start=-1,2`` (see ``_VALUE_MAY_START_WITH_DASH``)."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in _VALUE_MAY_START_WITH_DASH and i + 1 < len(argv) \
                and argv[i + 1].startswith("-") and not argv[i + 1].startswith("--"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


COMMANDS = {"race": race, "lr-table": lr_table, "demo": demo, "bench": bench,
            "bench-loops": bench_loops}


def main(argv=None):
    parser, subparsers = _build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(_join_dash_values(argv))
    if args.command is None:
        show_config()
        print()
        print(USAGE.format(problems=", ".join(problems.PROBLEMS)))
        return 0
    try:
        return COMMANDS[args.command](subparsers[args.command], args)
    except KeyboardInterrupt:
        print("\nfastopt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
