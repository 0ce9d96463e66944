"""The ``fastopt`` command (also ``python -m fastopt``).

    fastopt                  configuration and a short usage text
    fastopt race [...]       race the classic optimizers on a test problem; table and pictures
    fastopt bench [...]      fastopt vs NumPy vs torch, timed side by side
    fastopt demo [...]       the optimizers on a least-squares problem; a table

Bad arguments print a usage message and exit with status 2, never a traceback.
"""

import argparse
import sys

from fastopt import problems
from fastopt._config import show_config

USAGE = """\
usage: python -m fastopt race [--problem NAME] [--steps N] [--methods adam,nag,...]
                              [--lr adam=0.01,...] [--seed S] [--start x,y] [--tol T]
                              [--out DIR] [--animate]
       python -m fastopt bench [--quick] [--sizes 14,22] [--dtypes ...] [--rules Adam,...]
       python -m fastopt bench-loops [--repeats R] [--problems M] [--scipy-problems K]
       python -m fastopt demo [--steps N] [--seed S]

  race         the classic optimizers racing across a loss surface: a table, a contour
               plot (PNG) and with --animate a GIF (pictures need matplotlib:
               pip install "fastopt[plot]")
  bench        fastopt vs NumPy vs torch, timed side by side (--quick: about a minute)
  bench-loops  whole minimize loops on small problems: C-level and batched vs Python,
               NumPy, SciPy and plain C (about two minutes)
  demo         the optimizers on a least-squares problem, as a table
Problems: {problems}. Run 'python -m fastopt race --help' for details."""


def _build_parser():
    from fastopt._race import RACERS

    parser = argparse.ArgumentParser(prog="fastopt", description="fastopt's command line.")
    sub = parser.add_subparsers(dest="command")
    race = sub.add_parser(
        "race", help="race the optimizers on a test problem",
        description="Race GD, SGD, mini-batch SGD, Momentum, NAG, Adagrad, RMSprop, Adadelta, "
                    "Adam and AdamW across a loss surface. Prints a table; writes "
                    "race_<problem>.png (and .gif with --animate) into --out.")
    race.add_argument("--problem", default="rosenbrock", choices=sorted(problems.PROBLEMS))
    race.add_argument("--steps", type=int, default=500, help="steps per method (default 500)")
    race.add_argument("--methods", default=",".join(RACERS),
                      help=f"comma-separated racers (default all: {','.join(RACERS)})")
    race.add_argument("--lr", default="", help="learning rates, e.g. adam=0.01,nag=0.001")
    race.add_argument("--seed", type=int, default=0, help="seed of the gradient noise")
    race.add_argument("--start", default=None, help="start point x,y (default: the "
                                                    "problem's classic start)")
    race.add_argument("--tol", type=float, default=1e-4,
                      help="f - f_min counted as arrival (default 1e-4)")
    race.add_argument("--out", default=".", help="folder for the pictures (default .)")
    race.add_argument("--animate", action="store_true", help="also write an animated GIF")
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
                    "C) in ns per iteration, and m problems (minimize_batch with a C or a "
                    "vectorised objective, NumPy, plain C, a loop of scipy) in problems/s.")
    loops.add_argument("--repeats", type=int, default=5, help="rounds (default 5)")
    loops.add_argument("--problems", type=int, default=10000, help="m (default 10000)")
    loops.add_argument("--scipy-problems", type=int, default=10,
                       help="problems the scipy loop solves per round (default 10)")
    demo = sub.add_parser("demo", help="the optimizers on a least-squares problem")
    demo.add_argument("--steps", type=int, default=500, help="steps per method (default 500)")
    demo.add_argument("--seed", type=int, default=0, help="data and sampling seed")
    return parser, race, demo, bench, loops


def _parse_race(parser, args):
    """Validate the race arguments; parser.error() (exit 2) on anything wrong."""
    from fastopt._race import RACERS

    if args.steps < 1:
        parser.error("--steps must be >= 1")
    if not args.tol > 0:
        parser.error("--tol must be > 0")
    methods = [m.strip().lower() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in RACERS]
    if unknown or not methods:
        parser.error(f"--methods: unknown {unknown or 'empty list'}; "
                     f"choose from {','.join(RACERS)}")
    rates = {}
    for item in filter(None, (s.strip() for s in args.lr.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        try:
            rate = float(value)
        except ValueError:
            rate = -1.0
        if not sep or key not in RACERS or not rate >= 0:
            parser.error(f"--lr: bad entry {item!r}; use method=rate with a rate >= 0, "
                         f"e.g. adam=0.01")
        rates[key] = rate
    start = None
    if args.start is not None:
        try:
            start = [float(v) for v in args.start.split(",")]
        except ValueError:
            start = []
        if len(start) != problems.get(args.problem).n:
            parser.error(f"--start must be {problems.get(args.problem).n} numbers such as "
                         "-1.2,1")
    return methods, rates, start


def race(parser, args):
    from fastopt import _plot
    from fastopt._race import format_table, run_race

    methods, rates, start = _parse_race(parser, args)
    problem, results = run_race(args.problem, methods, args.steps, rates, args.seed, start,
                                args.tol)
    print(format_table(problem, results, args.steps, args.tol))
    if not _plot.have_matplotlib():
        print("\nNo picture: matplotlib is not installed. pip install \"fastopt[plot]\" "
              "(or matplotlib) to draw the race.")
        return 0
    png = _plot.save_png(problem, results, args.steps,
                         _plot.output_path(args.out, problem.name, "png"))
    print(f"\nwrote {png}")
    if args.animate:
        gif = _plot.save_gif(problem, results, args.steps,
                             _plot.output_path(args.out, problem.name, "gif"))
        print(f"wrote {gif}")
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
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be >= 1")
    run(quick=args.quick, sizes=None if sizes is None else [2**k for k in sizes],
        dtypes=listed(args.dtypes, str, ["float32", "float64"], "dtypes"),
        rules=listed(args.rules, str, list(RULES), "rules"), repeats=args.repeats)
    return 0


def bench_loops(parser, args):
    from fastopt._bench_loops import run

    for name in ("repeats", "problems", "scipy_problems"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    run(repeats=args.repeats, m=args.problems, m_scipy=args.scipy_problems)
    return 0


def demo(parser, args):
    from fastopt._demo import print_table

    if args.steps < 1:
        parser.error("--steps must be >= 1")
    show_config()
    print_table(steps=args.steps, seed=args.seed)
    return 0


def main(argv=None):
    parser, race_parser, demo_parser, bench_parser, loops_parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "race":
        return race(race_parser, args)
    if args.command == "demo":
        return demo(demo_parser, args)
    if args.command == "bench":
        return bench(bench_parser, args)
    if args.command == "bench-loops":
        return bench_loops(loops_parser, args)
    show_config()
    print()
    print(USAGE.format(problems=", ".join(problems.PROBLEMS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
