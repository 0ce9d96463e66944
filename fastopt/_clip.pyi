# Typing stub for fastopt._clip, the gradient clipping kernels. The loops reach them at C level
# (cimport through _clip.pxd: ClipSpec, clip_gradient); fastopt/_clipping.py validates and calls
# these. Arrays: contiguous float32/float64 (C or Fortran order), checked by the caller.
import numpy as np

from fastopt._clipping import ClipSettings

# torch's total norm of ``arrays`` (the p-norm of their p-norms), in double; bitwise the same
# for every n_threads.
def total_norm(arrays: list[np.ndarray], norm_type: float, n_threads: int) -> float: ...
# In place (arrays INOUT): times coef (cast to each dtype) when scale, then clamped to
# [-clip_value, clip_value] when clamp.
def scale_clamp(
    arrays: list[np.ndarray],
    coef: float,
    clip_value: float,
    scale: bool,
    clamp: bool,
    n_threads: int,
) -> None: ...
# g (IN) clipped as settings say: g itself when nothing changes, else out (OUT), holding it.
def clip_into(
    settings: ClipSettings | None, g: np.ndarray, out: np.ndarray, n_threads: int
) -> np.ndarray: ...
