/* Flush-to-zero mode around fastopt's own loops (fastopt.flush_subnormals, the class argument
 * and the driver option ``flush_subnormals``).
 *
 * Arithmetic on subnormal numbers (|x| < 2^-126 in float32, 2^-1022 in float64) takes a
 * microcode assist on most x86 CPUs: an Adam step whose state drifted there runs 1.1-1.9x
 * slower (asv_benchmarks/subnormals.py). The floating-point control register can make the
 * CPU treat subnormal inputs as zero and flush subnormal results to zero instead, at full
 * speed:
 *   x86-64  MXCSR (SSE/AVX arithmetic): FTZ, bit 15 (0x8000), flushes results;
 *           DAZ, bit 6 (0x0040), reads subnormal inputs as zero.
 *   aarch64 FPCR: FZ, bit 24, does both for float32 and float64.
 *   others  no such control here: the mode is a no-op (fastopt_flush_supported() is 0).
 *
 * The register is per thread. fastopt's rule, for every call that runs with the mode on:
 * - The calling thread: fastopt_flush_begin(1) saves its register and sets the flush bits;
 *   fastopt_fpenv_restore puts back exactly the saved value (status flags included), on every
 *   way out (the callers restore in a try/finally, so errors and KeyboardInterrupt too).
 * - OpenMP threads: the pool's threads belong to the process (NumPy, torch or user code may
 *   run on them too), so fastopt never leaves anything set there. Each parallel region of
 *   fastopt reads the calling thread's flush bits once (fastopt_flush_bits) and every
 *   iteration of the region takes them (fastopt_follow_begin) and restores the thread's own
 *   register after it. The threads thus compute in the calling thread's mode, whatever it is,
 *   so results never depend on the thread count; with the mode off and the caller's register
 *   untouched (the usual case) no register is written at all.
 * Nothing else: Python code fastopt calls (objectives, callbacks, schedulers) runs with the
 * caller's own register (the loops restore it around those calls).
 *
 * Static inline functions, no Python.h; each module that includes it gets its own copies.
 * The thread-local "context manager is on" counter lives in fastopt/_fpenv.pyx only.
 */
#ifndef FASTOPT_FPENV_H
#define FASTOPT_FPENV_H

#if defined(__x86_64__) || defined(_M_X64)
/* Every x86-64 CPU has SSE2 and DAZ. (32-bit x86 is left out: early SSE CPUs fault on DAZ.) */
#include <xmmintrin.h>
typedef unsigned long long fastopt_fpcr;
#define FASTOPT_FLUSH_BITS 0x8040ULL /* FTZ | DAZ */
static inline fastopt_fpcr fastopt_fpcr_get(void) { return (fastopt_fpcr)_mm_getcsr(); }
static inline void fastopt_fpcr_set(fastopt_fpcr v) { _mm_setcsr((unsigned int)v); }
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
/* (As TensorFlow's tsl/platform/denormal.cc does it.) */
typedef unsigned long long fastopt_fpcr;
#define FASTOPT_FLUSH_BITS (1ULL << 24) /* FPCR.FZ */
static inline fastopt_fpcr fastopt_fpcr_get(void)
{
    unsigned long long v;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(v));
    return v;
}
static inline void fastopt_fpcr_set(fastopt_fpcr v)
{
    __asm__ __volatile__("msr fpcr, %0" : : "r"(v));
}
#else
typedef unsigned long long fastopt_fpcr;
#define FASTOPT_FLUSH_BITS 0ULL /* no flush control: every function below does nothing */
static inline fastopt_fpcr fastopt_fpcr_get(void) { return 0; }
static inline void fastopt_fpcr_set(fastopt_fpcr v) { (void)v; }
#endif

#if defined(_MSC_VER)
#define FASTOPT_THREAD_LOCAL __declspec(thread)
#else
#define FASTOPT_THREAD_LOCAL __thread
#endif

/* A thread's register as it was before fastopt changed it; changed == 0: nothing to undo. */
typedef struct {
    fastopt_fpcr saved;
    int changed;
} fastopt_fpenv;

/* 1 where the flush mode does something (x86-64, aarch64), else 0. */
static inline int fastopt_flush_supported(void) { return FASTOPT_FLUSH_BITS != 0; }

/* The flush bits the calling thread has now (0 when none is set). */
static inline fastopt_fpcr fastopt_flush_bits(void)
{
    return fastopt_fpcr_get() & FASTOPT_FLUSH_BITS;
}

/* When ``on``: save this thread's register and set the flush bits (nothing to undo if they
 * were set already). Off: nothing. Undo with fastopt_fpenv_restore. */
static inline fastopt_fpenv fastopt_flush_begin(int on)
{
    fastopt_fpenv env;
    env.saved = 0;
    env.changed = 0;
    if (on && FASTOPT_FLUSH_BITS != 0) {
        env.saved = fastopt_fpcr_get();
        if ((env.saved & FASTOPT_FLUSH_BITS) != FASTOPT_FLUSH_BITS) {
            env.changed = 1;
            fastopt_fpcr_set(env.saved | FASTOPT_FLUSH_BITS);
        }
    }
    return env;
}

/* In a parallel region: make this thread's flush bits ``bits`` (the calling thread's, from
 * fastopt_flush_bits before the region), keeping its other bits. Undo with
 * fastopt_fpenv_restore before the iteration ends. */
static inline fastopt_fpenv fastopt_follow_begin(fastopt_fpcr bits)
{
    fastopt_fpenv env;
    env.saved = fastopt_fpcr_get();
    env.changed = (env.saved & FASTOPT_FLUSH_BITS) != bits;
    if (env.changed)
        fastopt_fpcr_set((env.saved & ~FASTOPT_FLUSH_BITS) | bits);
    return env;
}

/* Put back exactly the register saved by fastopt_flush_begin / fastopt_follow_begin. */
static inline void fastopt_fpenv_restore(fastopt_fpenv env)
{
    if (env.changed)
        fastopt_fpcr_set(env.saved);
}

#endif /* FASTOPT_FPENV_H */
