/* Run-time CPU feature test for choosing a kernel build (fastopt/_kernels.pyx). */
#ifndef FASTOPT_CPU_H
#define FASTOPT_CPU_H

static inline int fastopt_cpu_has_avx2(void)
{
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    return 0;
#endif
}

#endif /* FASTOPT_CPU_H */
