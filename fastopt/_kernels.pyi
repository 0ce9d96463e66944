# Typing stub for fastopt._kernels. The kernels themselves are C-level (cimport them through
# _kernels.pxd: UpdateRule, apply_rule); Python sees the OpenMP size threshold, the kernel
# build in use, each kernel's declaration and the benchmark's axpy.
import numpy as np

def get_parallel_threshold() -> int: ...
def _set_parallel_threshold(size: int) -> int: ...  # returns the previous threshold
def _set_threshold(size: int) -> int: ...  # this build only; returns the previous threshold
def kernel_isa() -> str: ...  # "avx2" or "baseline": the kernel build in use
def available_isas() -> list[str]: ...
def _set_isa(isa: str) -> str: ...  # returns the previous choice
def _load_avx2() -> bool: ...  # (at import) whether the AVX2 build was loaded
# (name, input names, slot names, powered inputs, running scalars as (name, initial value)
# pairs) of every kernel, in kind order
def declarations() -> tuple[
    tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[tuple[str, float], ...]],
    ...,
]: ...
def axpy(y: np.ndarray, x: np.ndarray, a: float, n_threads: int) -> None: ...  # y INOUT
