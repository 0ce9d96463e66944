"""fastopt: fast first-order optimizers for NumPy arrays on the CPU.

Every update rule is a typed Cython kernel (float32 and float64, OpenMP-parallel for large
arrays) behind a stateful class with torch.optim's names, defaults and update rules:

    >>> import numpy as np, fastopt
    >>> w = np.zeros(3)
    >>> opt = fastopt.Adam(w, lr=0.1)
    >>> opt.step(np.array([1.0, -1.0, 0.0]))
    >>> w
    array([-0.1,  0.1,  0. ])

Classes: SGD (also GD and mini-batch SGD: the same rule fed different gradients), Momentum,
NAG, Adagrad, RMSprop, Adadelta, Adam, AdamW. ``show_config()`` prints the build.
"""

from fastopt._adam import Adam, AdamW
from fastopt._adaptive import Adadelta, Adagrad, RMSprop
from fastopt._base import Optimizer
from fastopt._config import __version__, show_config
from fastopt._sgd import NAG, SGD, Momentum

__all__ = [
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Momentum",
    "NAG",
    "Optimizer",
    "RMSprop",
    "SGD",
    "__version__",
    "show_config",
]
