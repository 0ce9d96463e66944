"""Version and build information."""

import platform
import sys
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from fastopt._fpenv import flush_supported
from fastopt._kernels import get_parallel_threshold, kernel_isa
from fastopt._openmp import effective_n_threads, openmp_enabled, usable_cpu_count

try:
    __version__ = version("fastopt")
except PackageNotFoundError:  # running from a source tree that was built in place
    __version__ = "0+unknown"


def config():
    """Return the build and runtime configuration as a dict (what ``show_config`` prints)."""
    return {
        "fastopt": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": f"{platform.system()} {platform.machine()}",
        "dtypes": "float32, float64",
        "kernels": kernel_isa(),
        "openmp": openmp_enabled(),
        "threads": effective_n_threads(None),
        "usable cpus": usable_cpu_count(),
        "parallel threshold": f"{get_parallel_threshold()} elements",
        # what flush_subnormals=True does here (src_c/fastopt_fpenv.h)
        "flush_subnormals": ("FTZ/DAZ" if platform.machine().lower() in ("x86_64", "amd64")
                             else "FZ") if flush_supported() else "no effect here",
    }


def show_config(file=None):
    """Print fastopt's version, whether OpenMP is on, and the default thread count.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default: ``sys.stdout``).

    Examples
    --------
    >>> import fastopt
    >>> fastopt.show_config()  # doctest: +SKIP
    fastopt            0.1.0.dev0
    ...
    openmp             True
    threads            2
    """
    for key, value in config().items():
        print(f"{key:<19}{value}", file=file or sys.stdout)
