# Typing stub for fastopt._kernels. The kernels themselves are C-level (cimport them through
# _kernels.pxd: UpdateRule, apply_rule); Python sees only the OpenMP size threshold.

def get_parallel_threshold() -> int: ...
def _set_parallel_threshold(size: int) -> int: ...  # returns the previous threshold
def kernel_isa() -> str: ...  # "avx2" or "baseline": the kernel build in use
def available_isas() -> list[str]: ...
def _set_isa(isa: str) -> str: ...  # returns the previous choice
