/* Stopping-rule flags across a block of problems (fastopt/_batch.pyx, _check_packed).
 *
 * minimize_batch checks, after every evaluation, each running problem's stopping rules
 * (check_stop in fastopt/_iteration.pxi). Row by row that costs more than the update itself for
 * small problems (a few ns per row: a branch per rule, a struct per row). Here one pass over
 * the rows of an unbounded block, row-major (active, n), flags each row where a rule may hold:
 *
 *     f or an entry of g not finite, or
 *     max_j |g_j| <= gtol                       (the gradient's inf-norm, all finite), or
 *     use_ftol and |f_prev - f| <= ftol * max(|f_prev|, |f|, 1), or
 *     use_xtol and step <= xtol,
 *
 * with check_stop's operands and operations (no fused multiply-add: the same doubles), so a row
 * left unflagged is one check_stop lets go on; the caller runs check_stop on the flagged ones.
 * (max(a, b) of finite values >= 0 is fmax's; a row whose f is not finite is flagged anyway.)
 *
 * With SSE2 (every x86-64) two rows go side by side in the two lanes of a vector, which also
 * needs no horizontal step per row; elsewhere, and for an odd last row, a scalar loop. flags[r]
 * is nonzero for a flagged row (all bits set in the SSE2 lanes, 1 in the scalar loop), 0 else.
 * float32 rows are compared as doubles, as check_stop compares them.
 */
#ifndef FASTOPT_BATCH_FLAGS_H
#define FASTOPT_BATCH_FLAGS_H

#include <math.h>
#include <stddef.h>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define FASTOPT_FLAGS_SSE2 1
#endif

#define FASTOPT_FLAG_ROWS(NAME, T)                                                          \
static inline int NAME(const T* g, const ptrdiff_t n, ptrdiff_t active,                    \
                       const double* f_now, const double* f_prev, const double* steps,     \
                       double gtol, int use_ftol, double ftol, int use_xtol, double xtol,  \
                       ptrdiff_t* flags)                                                   \
{                                                                                          \
    ptrdiff_t r = 0, j;                                                                    \
    int any = 0;                                                                           \
    FASTOPT_FLAG_PAIRS(T)                                                                  \
    for (; r < active; r++) {                                                              \
        const T* gr = g + r * n;                                                           \
        double f = f_now[r];                                                               \
        int bad = !(fabs(f) < HUGE_VAL), small = 1, fl;                                    \
        for (j = 0; j < n; j++) {                                                          \
            double a = fabs((double)gr[j]);                                                \
            bad |= !(a < HUGE_VAL);                                                        \
            small &= a <= gtol;                                                            \
        }                                                                                  \
        fl = bad | small;                                                                  \
        if (use_ftol) { /* (f_prev is unset before the first update) */                    \
            double fp = f_prev[r];                                                         \
            double big = fabs(fp) > fabs(f) ? fabs(fp) : fabs(f);                          \
            big = big > 1.0 ? big : 1.0;                                                   \
            fl |= fabs(fp - f) <= ftol * big;                                              \
        }                                                                                  \
        if (use_xtol)                                                                      \
            fl |= steps[r] <= xtol;                                                        \
        flags[r] = fl;                                                                     \
        any |= fl;                                                                         \
    }                                                                                      \
    return any != 0;                                                                       \
}

#ifdef FASTOPT_FLAGS_SSE2
/* Rows r and r + 1 in the low and high lanes (maxpd of finite values is their maximum). */
#define FASTOPT_FLAG_PAIRS(T)                                                              \
    {                                                                                      \
        const __m128d absmask = _mm_castsi128_pd(_mm_set1_epi64x(0x7fffffffffffffffLL));   \
        const __m128d inf = _mm_set1_pd(HUGE_VAL), vgtol = _mm_set1_pd(gtol);              \
        const __m128d vftol = _mm_set1_pd(ftol), vxtol = _mm_set1_pd(xtol);                \
        const __m128d one = _mm_set1_pd(1.0);                                              \
        const __m128d all = _mm_castsi128_pd(_mm_set1_epi32(-1));                          \
        __m128d anyv = _mm_setzero_pd();                                                   \
        for (; r + 2 <= active; r += 2) {                                                  \
            const T* g0 = g + r * n;                                                       \
            const T* g1 = g0 + n;                                                          \
            __m128d f = _mm_loadu_pd(f_now + r);                                           \
            __m128d bad = _mm_cmpnlt_pd(_mm_and_pd(f, absmask), inf);                      \
            __m128d small = all, fl;                                                       \
            for (j = 0; j < n; j++) {                                                      \
                __m128d a = _mm_and_pd(_mm_set_pd((double)g1[j], (double)g0[j]), absmask); \
                bad = _mm_or_pd(bad, _mm_cmpnlt_pd(a, inf));                               \
                small = _mm_and_pd(small, _mm_cmple_pd(a, vgtol));                         \
            }                                                                              \
            fl = _mm_or_pd(bad, small);                                                    \
            if (use_ftol) {                                                                \
                __m128d fp = _mm_loadu_pd(f_prev + r);                                     \
                __m128d big = _mm_max_pd(_mm_max_pd(_mm_and_pd(fp, absmask),               \
                                                    _mm_and_pd(f, absmask)), one);         \
                __m128d change = _mm_and_pd(_mm_sub_pd(fp, f), absmask);                   \
                fl = _mm_or_pd(fl, _mm_cmple_pd(change, _mm_mul_pd(vftol, big)));          \
            }                                                                              \
            if (use_xtol)                                                                  \
                fl = _mm_or_pd(fl, _mm_cmple_pd(_mm_loadu_pd(steps + r), vxtol));          \
            _mm_storeu_si128((__m128i*)(flags + r), _mm_castpd_si128(fl));                 \
            anyv = _mm_or_pd(anyv, fl);                                                    \
        }                                                                                  \
        any = _mm_movemask_pd(anyv);                                                       \
    }
#else
#define FASTOPT_FLAG_PAIRS(T)
#endif

FASTOPT_FLAG_ROWS(fastopt_flag_rows_f64_, double)
FASTOPT_FLAG_ROWS(fastopt_flag_rows_f32_, float)

#undef FASTOPT_FLAG_ROWS
#undef FASTOPT_FLAG_PAIRS

/* Flag the rows of g (active rows of n entries, row-major); returns whether any is flagged.
 * A small n gets a copy of the loop with n fixed (its inner loop unrolled). */
#define FASTOPT_FLAG_DISPATCH(NAME, BODY, T)                                                \
static inline int NAME(const T* g, ptrdiff_t n, ptrdiff_t active, const double* f_now,      \
                       const double* f_prev, const double* steps, double gtol, int use_ftol,  \
                       double ftol, int use_xtol, double xtol, ptrdiff_t* flags)             \
{                                                                                           \
    switch (n) {                                                                            \
    case 1: return BODY(g, 1, active, f_now, f_prev, steps, gtol, use_ftol, ftol, use_xtol,  \
                        xtol, flags);                                                       \
    case 2: return BODY(g, 2, active, f_now, f_prev, steps, gtol, use_ftol, ftol, use_xtol,  \
                        xtol, flags);                                                       \
    case 3: return BODY(g, 3, active, f_now, f_prev, steps, gtol, use_ftol, ftol, use_xtol,  \
                        xtol, flags);                                                       \
    case 4: return BODY(g, 4, active, f_now, f_prev, steps, gtol, use_ftol, ftol, use_xtol,  \
                        xtol, flags);                                                       \
    default: return BODY(g, n, active, f_now, f_prev, steps, gtol, use_ftol, ftol, use_xtol, \
                         xtol, flags);                                                      \
    }                                                                                       \
}

FASTOPT_FLAG_DISPATCH(fastopt_flag_rows_f64, fastopt_flag_rows_f64_, double)
FASTOPT_FLAG_DISPATCH(fastopt_flag_rows_f32, fastopt_flag_rows_f32_, float)

#undef FASTOPT_FLAG_DISPATCH

#endif /* FASTOPT_BATCH_FLAGS_H */
