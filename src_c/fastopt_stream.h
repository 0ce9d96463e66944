/* ASGD's update while it only copies the parameter into its average (fastopt/_kernels_impl.pxi,
 * the ASGD block), with streaming (non-temporal) stores for the copy.
 *
 * The array ``ax`` is written and never read then. A plain store to a line that is not in the
 * cache first reads the line (write-allocate): one memory transfer in five of the update. A
 * streaming store writes the line without reading it and without filling the caches with it:
 * worth it only for arrays larger than the caches (the kernel chooses by size). Measured on
 * the 2-core development machine (EPYC, 2^22 float64, this loop in plain C): plain stores
 * 11 ms, scalar streaming stores (movnti) 9.4 ms, vector streaming stores 7.6 ms.
 *
 * The arithmetic is asgd_update's, operation for operation (no fused multiply-add), so the
 * values are bitwise those of the plain kernel. Vector streaming stores need an aligned
 * address: the elements before the first one are stored plainly (all of them if ``ax`` is not
 * aligned to its element size). x86-64 with SSE2 (16-byte vectors) or AVX (32-byte); elsewhere
 * plain stores. The stores are weakly ordered: an sfence ends the loop, before other threads
 * may read the array. */
#ifndef FASTOPT_STREAM_H
#define FASTOPT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#if defined(__AVX__) || defined(__SSE2__) || defined(_M_X64)
#include <immintrin.h>
#define FASTOPT_STREAM_X86 1
#endif

#define FASTOPT_ASGD_ELEMENT(T, i)                                                          \
    do {                                                                                    \
        T g_ = sign * g[i];                                                                 \
        T p_ = p[i];                                                                        \
        T decayed_ = g_ + weight_decay * p_;                                                \
        if (decay)                                                                          \
            g_ = decayed_;                                                                  \
        p_ = p_ * shrink;                                                                   \
        p_ = p_ - eta * g_;                                                                 \
        p[i] = p_;                                                                          \
        ax[i] = p_;                                                                         \
    } while (0)

/* VEC: vector type; W: lanes; SET1, LOAD, MUL, ADD, SUB, STORE, STREAM: its intrinsics */
#define FASTOPT_ASGD_VECTOR_LOOP(VEC, W, SET1, LOAD, MUL, ADD, SUB, STORE, STREAM)          \
    do {                                                                                    \
        VEC vs_ = SET1(sign), vw_ = SET1(weight_decay), vsh_ = SET1(shrink),                \
            ve_ = SET1(eta);                                                                \
        for (; i + (W) <= n; i += (W)) {                                                    \
            VEC g_ = MUL(vs_, LOAD(g + i));                                                 \
            VEC p_ = LOAD(p + i);                                                           \
            if (decay)                                                                      \
                g_ = ADD(g_, MUL(vw_, p_));                                                 \
            p_ = MUL(p_, vsh_);                                                             \
            p_ = SUB(p_, MUL(ve_, g_));                                                     \
            STORE(p + i, p_);                                                               \
            STREAM(ax + i, p_);                                                             \
        }                                                                                   \
    } while (0)

static inline void fastopt_asgd_stream_double(double *p, const double *g, double *ax,
                                              ptrdiff_t n, double sign, double weight_decay,
                                              int decay, double shrink, double eta)
{
    ptrdiff_t i = 0;
#if defined(FASTOPT_STREAM_X86)
#if defined(__AVX__)
    const uintptr_t align = 32;
#else
    const uintptr_t align = 16;
#endif
    for (; i < n && ((uintptr_t)(ax + i) & (align - 1)) != 0; i++)
        FASTOPT_ASGD_ELEMENT(double, i);
#if defined(__AVX__)
    FASTOPT_ASGD_VECTOR_LOOP(__m256d, 4, _mm256_set1_pd, _mm256_loadu_pd, _mm256_mul_pd,
                             _mm256_add_pd, _mm256_sub_pd, _mm256_storeu_pd, _mm256_stream_pd);
#else
    FASTOPT_ASGD_VECTOR_LOOP(__m128d, 2, _mm_set1_pd, _mm_loadu_pd, _mm_mul_pd, _mm_add_pd,
                             _mm_sub_pd, _mm_storeu_pd, _mm_stream_pd);
#endif
#endif
    for (; i < n; i++)
        FASTOPT_ASGD_ELEMENT(double, i);
#if defined(FASTOPT_STREAM_X86)
    _mm_sfence();
#endif
}

static inline void fastopt_asgd_stream_float(float *p, const float *g, float *ax, ptrdiff_t n,
                                             float sign, float weight_decay, int decay,
                                             float shrink, float eta)
{
    ptrdiff_t i = 0;
#if defined(FASTOPT_STREAM_X86)
#if defined(__AVX__)
    const uintptr_t align = 32;
#else
    const uintptr_t align = 16;
#endif
    for (; i < n && ((uintptr_t)(ax + i) & (align - 1)) != 0; i++)
        FASTOPT_ASGD_ELEMENT(float, i);
#if defined(__AVX__)
    FASTOPT_ASGD_VECTOR_LOOP(__m256, 8, _mm256_set1_ps, _mm256_loadu_ps, _mm256_mul_ps,
                             _mm256_add_ps, _mm256_sub_ps, _mm256_storeu_ps, _mm256_stream_ps);
#else
    FASTOPT_ASGD_VECTOR_LOOP(__m128, 4, _mm_set1_ps, _mm_loadu_ps, _mm_mul_ps, _mm_add_ps,
                             _mm_sub_ps, _mm_storeu_ps, _mm_stream_ps);
#endif
#endif
    for (; i < n; i++)
        FASTOPT_ASGD_ELEMENT(float, i);
#if defined(FASTOPT_STREAM_X86)
    _mm_sfence();
#endif
}

#undef FASTOPT_ASGD_ELEMENT
#undef FASTOPT_ASGD_VECTOR_LOOP

#endif /* FASTOPT_STREAM_H */
