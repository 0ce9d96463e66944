"""``python -m fastopt``: print the configuration, then race the classic optimizers."""

import argparse
import sys

from fastopt._config import show_config
from fastopt._demo import print_table


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastopt",
        description="Print fastopt's configuration and run GD, SGD, mini-batch SGD, Momentum, "
                    "NAG, Adagrad, RMSprop, Adadelta, Adam and AdamW on a least-squares problem.",
    )
    parser.add_argument("--steps", type=int, default=500, help="steps per method (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="data and sampling seed")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    show_config()
    print_table(steps=args.steps, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
