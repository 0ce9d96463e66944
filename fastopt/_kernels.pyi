# Typing stub for fastopt._kernels. The kernels themselves are C-level (cimport them through
# _kernels.pxd: UpdateRule, apply_rule); Python sees only the OpenMP size threshold.

def get_parallel_threshold() -> int: ...
def _set_parallel_threshold(size: int) -> int: ...  # returns the previous threshold
