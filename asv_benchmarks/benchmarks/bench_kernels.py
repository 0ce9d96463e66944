"""One optimizer step on arrays of 2^10 .. 2^22 elements, float32 and float64, 1 and all threads.

    cd asv_benchmarks && asv continuous -b AdamStep main HEAD
"""

from .common import optimizer_step_benchmark

SGDStep = optimizer_step_benchmark("SGD")
MomentumStep = optimizer_step_benchmark("Momentum")
NAGStep = optimizer_step_benchmark("NAG")
AdagradStep = optimizer_step_benchmark("Adagrad")
RMSpropStep = optimizer_step_benchmark("RMSprop")
AdadeltaStep = optimizer_step_benchmark("Adadelta")
AdamStep = optimizer_step_benchmark("Adam")
AdamWStep = optimizer_step_benchmark("AdamW")
