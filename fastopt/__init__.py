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
NAG, Adagrad, RMSprop, Adadelta, Adam, AdamW, ... (``__all__`` lists them). ``minimize`` runs any of them on a function
with SciPy's conventions (a ``scipy.LowLevelCallable`` objective runs the whole loop in C), and
``fastopt.gd``, ``fastopt.adam``, ... are the same methods for
``scipy.optimize.minimize(method=...)``; ``method="lbfgs"`` (``fastopt.lbfgs``) is L-BFGS
for smooth deterministic problems. ``minimize_batch`` solves many independent problems
at once, ``minimize_minibatch`` trains on data in mini-batches. ``show_config()`` prints the
build. ``fastopt.dask`` (``import fastopt.dask``; ``pip install "fastopt[dask]"``) runs
``minimize_batch`` on a Dask cluster; ``import fastopt`` does not import dask.
"""

def _unbuilt_hint(exc):
    """A clear error for a source checkout whose compiled modules were never built."""
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    name = (exc.name or "").rpartition(".")[2]
    if not (exc.name or "").startswith("fastopt.") or \
            not os.path.exists(os.path.join(here, name + ".pyx")):
        return None
    return ModuleNotFoundError(
        f"fastopt's compiled extensions are not built (no {exc.name} next to {here}): run "
        f"pip install -e . in the source checkout (or python setup.py build_ext --inplace), "
        f"or install fastopt (pip install .) and run Python outside the checkout",
        name=exc.name)


try:
    from fastopt import lr_scheduler, problems
    from fastopt._base import Optimizer
    from fastopt._clipping import clip_grad_norm_, clip_grad_value_
    from fastopt._config import __version__, show_config
    from fastopt._driver import minimize
    from fastopt._fpenv import flush_subnormals
    from fastopt._lbfgs_class import LBFGS  # (not a record: not an elementwise rule)
    from fastopt._minibatch import minimize_minibatch
    from fastopt._minimize_batch import minimize_batch
    from fastopt._registry import RECORDS as _RECORDS
    from fastopt._scipy import METHOD_CALLABLES as _METHOD_CALLABLES
    from fastopt._scipy import lbfgs
except ModuleNotFoundError as _exc:
    _hint = _unbuilt_hint(_exc)
    if _hint is None:
        raise
    raise _hint from None

# Every optimizer class (fastopt.Adam, ...) and method callable (fastopt.adam, ...), from the
# optimizer records (fastopt/_registry.py).
_OPTIMIZERS = {record.cls.__name__: record.cls for record in _RECORDS}
globals().update(_OPTIMIZERS)
globals().update(_METHOD_CALLABLES)

__all__ = sorted([
    *_OPTIMIZERS,
    *_METHOD_CALLABLES,
    "LBFGS",
    "Optimizer",
    "__version__",
    "lr_scheduler",
    "clip_grad_norm_", "clip_grad_value_",
    "flush_subnormals",
    "lbfgs",
    "minimize",
    "minimize_batch",
    "minimize_minibatch",
    "problems",
    "show_config",
])
