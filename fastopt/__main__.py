"""``python -m fastopt``: see fastopt/_cli.py."""

import sys

from fastopt._cli import main

if __name__ == "__main__":
    sys.exit(main())
