"""One optimizer step on arrays of 2^10 .. 2^22 elements, float32 and float64, 1 and all threads.

    cd asv_benchmarks && asv continuous -b AdamStep main HEAD
"""

from .common import OPTIMIZERS, optimizer_step_benchmark

# One class per entry of common.OPTIMIZERS (SGDStep, AdamStep, ...): asv finds them by name.
for _name in OPTIMIZERS:
    _cls = optimizer_step_benchmark(_name)
    globals()[_cls.__name__] = _cls
del _name, _cls
