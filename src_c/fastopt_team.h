/* The shared counters of batch_native's team of threads (fastopt/_batch.pyx, _run_team).
 *
 * The threads take chunks of problems one at a time from a shared counter and solve each to
 * the end, with no barrier until the last: a thread the OS descheduled delays only its own
 * chunk (with a barrier every time slice, one such thread stalled the whole team: 2 threads
 * ran 6x slower than 1 on a loaded machine). The calling thread also looks for signals and
 * shows progress between its slices; a stop flag tells the others to leave their chunks.
 */
#ifndef FASTOPT_TEAM_H
#define FASTOPT_TEAM_H

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
__declspec(dllimport) void __stdcall Sleep(unsigned long milliseconds); /* windows.h */
typedef volatile long long fastopt_counter;
static inline long long fastopt_counter_add(fastopt_counter *c, long long v)
{
    return _InterlockedExchangeAdd64(c, v);
}
static inline long long fastopt_counter_get(fastopt_counter *c)
{
    return _InterlockedOr64(c, 0);
}
static inline void fastopt_nap(void) { Sleep(0); } /* (yields; Sleep(1) is ~1-15 ms) */
#else
#include <time.h>
typedef long long fastopt_counter;
/* Returns the value before the addition. */
static inline long long fastopt_counter_add(fastopt_counter *c, long long v)
{
    return __atomic_fetch_add(c, v, __ATOMIC_ACQ_REL);
}
static inline long long fastopt_counter_get(fastopt_counter *c)
{
    return __atomic_load_n(c, __ATOMIC_ACQUIRE);
}
/* A short sleep (50 us): the calling thread's wait for the others' last chunks, short so that
 * the end of the batch is seen soon after it comes (a 1 ms nap cost ~3% of a 30 ms batch). */
static inline void fastopt_nap(void)
{
    struct timespec ts = {0, 50000L};
    nanosleep(&ts, NULL);
}
#endif

typedef struct {
    fastopt_counter next;  /* the next chunk to take */
    fastopt_counter done;  /* chunks solved to the end */
    fastopt_counter stop;  /* nonzero: leave the chunks (a signal handler raised) */
} fastopt_team;

#endif /* FASTOPT_TEAM_H */
