/* The block SIMD floor of the batch benchmarks (issue 15): Adam on many 2-D Rosenbrock
 * problems written as a plain C program that keeps FASTOPT_BLOCK_ADAM_SIZE (256) problems in a
 * block, variable-major (x0[i], x1[i] for problem i of the block, on the stack), and computes the
 * objective, its gradient and the Adam update in one loop over the problems of the block, which
 * the compiler vectorises (SIMD across problems: checked with -fopt-info-vec, "loop vectorized"
 * for the loop marked below). Nothing a library adds: no checks, no stopping rules, no function
 * pointers, no state arrays outside the block. Blocks are independent: an OpenMP parallel for
 * hands them to n_threads threads.
 *
 * It is what fastopt.minimize_batch with a block C objective
 * (fastopt.problems.rosenbrock_block_lowlevel) is measured against in
 * `python -m fastopt bench-loops` and asv; the scalar floor, one problem after another, is
 * fastopt_plain_adam.h. Adam as torch.optim writes it, bias corrections from running products
 * of the betas as in fastopt_plain_adam.h (an ulp or so from the reference's beta**t: the test
 * in tests/test_baselines.py allows for it). Used only by the benchmarks, through
 * fastopt/_objectives.pyx; compiled with the library's flags (-O3 -fno-math-errno: without it
 * gcc would not vectorise sqrt), so floor and library see the same instruction set. */
#ifndef FASTOPT_BLOCK_ADAM_H
#define FASTOPT_BLOCK_ADAM_H

#include <float.h>
#include <math.h>

#include "fastopt_openmp.h"

#define FASTOPT_BLOCK_ADAM_SIZE 256

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FASTOPT_BLOCK_ADAM_AVX2 1
#define FASTOPT_BLOCK_ADAM_INLINE static inline __attribute__((always_inline))
#else
#define FASTOPT_BLOCK_ADAM_AVX2 0
#define FASTOPT_BLOCK_ADAM_INLINE static inline
#endif

/* `iters` Adam steps on the `len` <= FASTOPT_BLOCK_ADAM_SIZE problems whose points are the
 * rows of X (shape (len, 2), row-major, updated in place); f[i] = the objective at problem i's
 * last evaluated point. */
FASTOPT_BLOCK_ADAM_INLINE void fastopt_block_adam_rosenbrock2_body(double *X, double *f, int len,
                                                                   long iters, double lr,
                                                                   double beta1, double beta2,
                                                                   double eps)
{
    double x0[FASTOPT_BLOCK_ADAM_SIZE], x1[FASTOPT_BLOCK_ADAM_SIZE];
    double m0[FASTOPT_BLOCK_ADAM_SIZE], m1[FASTOPT_BLOCK_ADAM_SIZE];
    double v0[FASTOPT_BLOCK_ADAM_SIZE], v1[FASTOPT_BLOCK_ADAM_SIZE];
    double fb[FASTOPT_BLOCK_ADAM_SIZE];
    for (int i = 0; i < len; i++) {  /* into the block's variable-major layout */
        x0[i] = X[2 * i];
        x1[i] = X[2 * i + 1];
        m0[i] = m1[i] = v0[i] = v1[i] = fb[i] = 0.0;
    }
    double beta1_pow = 1.0, beta2_pow = 1.0;
    for (long t = 1; t <= iters; t++) {
        beta1_pow *= beta1;
        beta2_pow *= beta2;
        if (beta1_pow < DBL_MIN) beta1_pow = 0.0;  /* else stuck at a slow subnormal */
        if (beta2_pow < DBL_MIN) beta2_pow = 0.0;
        const double step_size = lr / (1.0 - beta1_pow);
        const double bias_correction2_sqrt = sqrt(1.0 - beta2_pow);
        /* The loop that vectorises: one lane per problem (gcc -O3 does without the pragma). */
#ifdef _OPENMP
#pragma omp simd
#endif
        for (int i = 0; i < len; i++) {
            double a = x1[i] - x0[i] * x0[i], b = 1.0 - x0[i];
            fb[i] = 100.0 * a * a + b * b;
            double g0 = -400.0 * x0[i] * a - 2.0 * b;
            double g1 = 200.0 * a;
            m0[i] = beta1 * m0[i] + (1.0 - beta1) * g0;
            m1[i] = beta1 * m1[i] + (1.0 - beta1) * g1;
            v0[i] = beta2 * v0[i] + (1.0 - beta2) * g0 * g0;
            v1[i] = beta2 * v1[i] + (1.0 - beta2) * g1 * g1;
            x0[i] -= step_size * m0[i] / (sqrt(v0[i]) / bias_correction2_sqrt + eps);
            x1[i] -= step_size * m1[i] / (sqrt(v1[i]) / bias_correction2_sqrt + eps);
        }
    }
    for (int i = 0; i < len; i++) {  /* back to rows */
        X[2 * i] = x0[i];
        X[2 * i + 1] = x1[i];
        f[i] = fb[i];
    }
}

/* The body compiled twice: for the build's instruction set (SSE2 on x86-64), and on x86 for
 * AVX2 too (4 doubles a vector, twice SSE2's), which the entry point below uses on CPUs that
 * have it, as fastopt's kernels do (fastopt/_kernels_avx2.pyx). target("avx2") does not enable
 * FMA, so no multiply-add is fused and both compute the same bits. */
static void fastopt_block_adam_rosenbrock2_block(double *X, double *f, int len, long iters,
                                                 double lr, double beta1, double beta2,
                                                 double eps)
{
    fastopt_block_adam_rosenbrock2_body(X, f, len, iters, lr, beta1, beta2, eps);
}

#if FASTOPT_BLOCK_ADAM_AVX2
__attribute__((target("avx2")))
static void fastopt_block_adam_rosenbrock2_block_avx2(double *X, double *f, int len, long iters,
                                                      double lr, double beta1, double beta2,
                                                      double eps)
{
    fastopt_block_adam_rosenbrock2_body(X, f, len, iters, lr, beta1, beta2, eps);
}

/* True when this CPU runs AVX2 (and so the AVX2 body). */
static inline int fastopt_block_adam_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#else
static inline int fastopt_block_adam_has_avx2(void) { return 0; }
#endif

/* The m problems in the rows of X (shape (m, 2), row-major, updated in place), in blocks of
 * FASTOPT_BLOCK_ADAM_SIZE on n_threads threads; f (m entries) as above. avx2: run the AVX2
 * body (the caller checks fastopt_block_adam_has_avx2() first), else the baseline one. */
static inline void fastopt_block_adam_rosenbrock2(double *X, double *f, long m, long iters,
                                                  double lr, double beta1, double beta2,
                                                  double eps, int avx2, int n_threads)
{
    const long n_blocks = (m + FASTOPT_BLOCK_ADAM_SIZE - 1) / FASTOPT_BLOCK_ADAM_SIZE;
    n_threads = fastopt_thread_limit(n_threads);  /* 1 in a forked child (fastopt_openmp.h) */
    (void)n_threads;  /* unused in a serial build */
    (void)avx2;  /* unused off x86 */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(n_threads) if (n_threads > 1)
#endif
    for (long k = 0; k < n_blocks; k++) {
        const long first = k * FASTOPT_BLOCK_ADAM_SIZE;
        const long rest = m - first;
        const int len = rest < FASTOPT_BLOCK_ADAM_SIZE ? (int)rest : FASTOPT_BLOCK_ADAM_SIZE;
#if FASTOPT_BLOCK_ADAM_AVX2
        if (avx2) {
            fastopt_block_adam_rosenbrock2_block_avx2(X + 2 * first, f + first, len, iters, lr,
                                                      beta1, beta2, eps);
            continue;
        }
#endif
        fastopt_block_adam_rosenbrock2_block(X + 2 * first, f + first, len, iters, lr, beta1,
                                             beta2, eps);
    }
}

#endif /* FASTOPT_BLOCK_ADAM_H */
