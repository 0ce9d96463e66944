/* When loops that run without the GIL look for Ctrl-C.
 *
 * A C-level minimize loop or a C-objective batch may run for hours without the GIL, and only
 * Python code sees signals: Python's C handler just records them, and the main thread runs
 * the Python-level handler (KeyboardInterrupt) when it next checks, with the GIL
 * (PyErr_CheckSignals). So those loops take the GIL for such a check every
 * FASTOPT_SIGNAL_INTERVAL seconds (fastopt/_iteration.pxi, check_signals).
 *
 * Reading the clock (~20 ns through the vDSO) at every iteration would cost more than a whole
 * iteration of a small problem, so fastopt_poll_due() counts iterations down and reads the
 * clock only when the count runs out; the stride between reads adapts (doubling or halving)
 * so that reads come about every FASTOPT_READ_INTERVAL seconds whatever an iteration costs.
 * Per iteration: a decrement and a predictable branch.
 *
 * A poll started with enabled == 0 never reads the clock (a loop off the main thread, where
 * PyErr_CheckSignals has nothing to do, or a run that need not stop).
 */
#ifndef FASTOPT_INTERRUPT_H
#define FASTOPT_INTERRUPT_H

#include <limits.h>
#include <math.h>
#include <time.h>

#define FASTOPT_SIGNAL_INTERVAL 0.005 /* seconds between checks for signals */
#define FASTOPT_READ_INTERVAL 0.0005  /* seconds between clock reads, aimed at */

typedef struct {
    double due;       /* when the next check is due (seconds, fastopt_now); HUGE_VAL: never */
    double last_read; /* the time at the last clock read */
    long stride;      /* iterations between clock reads */
    long countdown;   /* iterations left before the next clock read */
} fastopt_poll;

/* Monotonic seconds. */
static inline double fastopt_now(void)
{
    struct timespec ts;
#if defined(CLOCK_MONOTONIC)
    clock_gettime(CLOCK_MONOTONIC, &ts);
#else
    timespec_get(&ts, TIME_UTC);
#endif
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Start polling for the next check for signals, FASTOPT_SIGNAL_INTERVAL from now; never when
 * ``enabled`` is 0. */
static inline void fastopt_poll_signals(fastopt_poll *p, int enabled)
{
    p->stride = 1;
    if (enabled) {
        p->last_read = fastopt_now();
        p->due = p->last_read + FASTOPT_SIGNAL_INTERVAL;
        p->countdown = 1;
    } else {
        p->last_read = 0.0;
        p->due = HUGE_VAL;
        p->countdown = LONG_MAX;
    }
}

/* Start polling towards ``due`` (fastopt_now's clock; HUGE_VAL: never), with the stride a
 * previous poll of the same loop ended with. */
static inline void fastopt_poll_until(fastopt_poll *p, double due, long stride)
{
    p->stride = stride > 0 ? stride : 1;
    p->due = due;
    if (due == HUGE_VAL) {
        p->last_read = 0.0;
        p->countdown = LONG_MAX;
    } else {
        p->last_read = fastopt_now();
        p->countdown = p->stride;
    }
}

#if defined(__GNUC__) || defined(__clang__)
#define FASTOPT_COLD __attribute__((cold, noinline, unused))
#else
#define FASTOPT_COLD
#endif

/* The clock read of fastopt_poll_due: adapt the stride, say whether the time is due. */
static FASTOPT_COLD int fastopt_poll_read(fastopt_poll *p)
{
    double now = fastopt_now(), elapsed = now - p->last_read;
    p->last_read = now;
    if (elapsed < 0.5 * FASTOPT_READ_INTERVAL && p->stride < (1L << 30))
        p->stride *= 2;
    else if (elapsed > 2.0 * FASTOPT_READ_INTERVAL && p->stride > 1)
        p->stride /= 2;
    p->countdown = p->stride;
    return now >= p->due;
}

/* Call once per iteration: true when the time given to fastopt_poll_start has come. */
static inline int fastopt_poll_due(fastopt_poll *p)
{
    if (--p->countdown > 0)
        return 0;
    return fastopt_poll_read(p);
}

/* After a check for signals that had to wait ``waited`` seconds for the GIL: the next one.
 * Waiting for the GIL means other Python threads hold it; checks then come less often, so
 * that the wait costs this loop at most ~5% of its time. */
static inline void fastopt_poll_checked(fastopt_poll *p, double waited)
{
    double interval = 20.0 * waited;
    if (interval < FASTOPT_SIGNAL_INTERVAL)
        interval = FASTOPT_SIGNAL_INTERVAL;
    p->due = fastopt_now() + interval;
}

#endif /* FASTOPT_INTERRUPT_H */
