/* The block Rosenbrock of fastopt.problems.rosenbrock_block_lowlevel (fastopt/_objectives.pyx):
 * m problems of n variables, variable-major (variable j of problem i at X[j*m + i]), each with
 * the same operations in the same order as the scalar ``rosenbrock`` (bitwise equal results),
 * the inner loops over problems so that they vectorise.
 *
 * Written in C to have an AVX2 twin beside the portable (SSE2) body, chosen once at import on
 * CPUs that have AVX2, as fastopt's kernels are (fastopt/_kernels_avx2.pyx): the block batch
 * spends about half its time here, and AVX2 holds twice the values per vector. Neither body
 * fuses multiply-adds (target("avx2") does not enable FMA), so both give the same bits.
 *
 * The constants are doubles, as Cython writes them in the scalar code (``100 * a`` becomes
 * ``100.0 * a``): for float32 those expressions are evaluated in double and rounded when
 * stored, here as there.
 *
 * The scalar code starts f and the gradient at 0 and adds to them; here the first addition
 * writes ``0 + term`` (not ``term``: 0 + -0.0 is +0.0), which saves a pass of zeros.
 */
#ifndef FASTOPT_ROSENBROCK_BLOCK_H
#define FASTOPT_ROSENBROCK_BLOCK_H

#include <stddef.h>

#define FASTOPT_ROSENBROCK_BLOCK_BODY(T)                                                   \
    {                                                                                      \
        ptrdiff_t i, j, mm = m;                                                            \
        const T zero = 0;                                                                  \
        if (n < 2) {                                                                       \
            for (i = 0; i < mm * n; i++)                                                   \
                G[i] = 0;                                                                  \
            for (i = 0; i < mm; i++)                                                       \
                F[i] = 0;                                                                  \
            return;                                                                        \
        }                                                                                  \
        for (j = 0; j < n - 1; j++) {                                                      \
            const T *x0 = X + j * mm, *x1 = X + (j + 1) * mm;                              \
            T *g0 = G + j * mm, *g1 = G + (j + 1) * mm;                                    \
            if (j == 0) {                                                                  \
                for (i = 0; i < mm; i++) {                                                 \
                    T xj = x0[i], a = x1[i] - xj * xj, b = 1.0 - xj;                         \
                    F[i] = zero + (100.0 * a * a + b * b);                                   \
                    g0[i] = zero + (-400.0 * xj * a - 2.0 * b);                                \
                    g1[i] = zero + 200.0 * a;                                                \
                }                                                                          \
            } else {                                                                       \
                for (i = 0; i < mm; i++) {                                                 \
                    T xj = x0[i], a = x1[i] - xj * xj, b = 1.0 - xj;                         \
                    F[i] += 100.0 * a * a + b * b;                                           \
                    g0[i] += -400.0 * xj * a - 2.0 * b;                                        \
                    g1[i] = zero + 200.0 * a;                                                \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }

static void fastopt_rosenbrock_block_f64_base(int m, int n, const double *X, double *F,
                                              double *G)
FASTOPT_ROSENBROCK_BLOCK_BODY(double)

static void fastopt_rosenbrock_block_f32_base(int m, int n, const float *X, float *F, float *G)
FASTOPT_ROSENBROCK_BLOCK_BODY(float)

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FASTOPT_ROSENBROCK_BLOCK_AVX2 1
__attribute__((target("avx2")))
static void fastopt_rosenbrock_block_f64_avx2(int m, int n, const double *X, double *F,
                                              double *G)
FASTOPT_ROSENBROCK_BLOCK_BODY(double)

__attribute__((target("avx2")))
static void fastopt_rosenbrock_block_f32_avx2(int m, int n, const float *X, float *F, float *G)
FASTOPT_ROSENBROCK_BLOCK_BODY(float)
#else
#define FASTOPT_ROSENBROCK_BLOCK_AVX2 0
#endif

/* Set once, when the module is imported (fastopt_rosenbrock_block_choose). */
static int fastopt_rosenbrock_block_use_avx2 = 0;

/* Choose the body for this CPU; call before any evaluation. */
static inline void fastopt_rosenbrock_block_choose(void)
{
#if FASTOPT_ROSENBROCK_BLOCK_AVX2
    __builtin_cpu_init();
    fastopt_rosenbrock_block_use_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
}

static inline void fastopt_rosenbrock_block_f64(int m, int n, const double *X, double *F,
                                                double *G)
{
#if FASTOPT_ROSENBROCK_BLOCK_AVX2
    if (fastopt_rosenbrock_block_use_avx2) {
        fastopt_rosenbrock_block_f64_avx2(m, n, X, F, G);
        return;
    }
#endif
    fastopt_rosenbrock_block_f64_base(m, n, X, F, G);
}

static inline void fastopt_rosenbrock_block_f32(int m, int n, const float *X, float *F, float *G)
{
#if FASTOPT_ROSENBROCK_BLOCK_AVX2
    if (fastopt_rosenbrock_block_use_avx2) {
        fastopt_rosenbrock_block_f32_avx2(m, n, X, F, G);
        return;
    }
#endif
    fastopt_rosenbrock_block_f32_base(m, n, X, F, G);
}

#endif /* FASTOPT_ROSENBROCK_BLOCK_H */
