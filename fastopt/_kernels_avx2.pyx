# The kernels of fastopt/_kernels_impl.pxi compiled with -mavx2 (setup.py): 8 float32 or
# 4 float64 lanes per instruction instead of SSE2's 4 and 2. Only fastopt/_kernels.pyx uses
# this module, and only on CPUs that report AVX2. No FMA contraction (-ffp-contract=off), so
# its results are bitwise those of the portable build.

include "_kernels_impl.pxi"
