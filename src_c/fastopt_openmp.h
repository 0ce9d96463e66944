/* OpenMP runtime calls, or serial stubs when the build has no OpenMP; the fork policy.
 *
 * Cython's prange pragmas are already guarded by #ifdef _OPENMP; this header does the same for
 * the few runtime functions fastopt calls directly, so one source builds either way and
 * fastopt_openmp_enabled() reports at run time what the build really did.
 * (Pattern of scikit-learn's sklearn/utils/_openmp_helpers.pxd.)
 *
 * Fork: GNU libgomp cannot run a parallel region of more than one thread in a child forked
 * after the parent's OpenMP threads exist (the child waits forever for threads fork did not
 * copy; LLVM's libomp copes). So a forked child runs every fastopt loop serially: each module
 * that includes this header registers, when it is loaded, a pthread_atfork child handler that
 * sets its copy of the flag below (fork from Python or from C alike; every copy is set by the
 * same fork), and every thread count fastopt gives OpenMP goes through fastopt_thread_limit().
 * A child forked before fastopt was imported cannot be told apart: there fastopt runs threads
 * as usual (which hangs only if something else had started libgomp's threads in the parent).
 */
#ifndef FASTOPT_OPENMP_H
#define FASTOPT_OPENMP_H

#ifdef _OPENMP
#include <omp.h>
static inline int fastopt_openmp_enabled(void) { return 1; }
static inline int fastopt_omp_get_max_threads(void) { return omp_get_max_threads(); }
#else
static inline int fastopt_openmp_enabled(void) { return 0; }
static inline int fastopt_omp_get_max_threads(void) { return 1; }
#endif

#if !defined(_WIN32) && (defined(__GNUC__) || defined(__clang__))
#include <pthread.h>
static int fastopt_forked_child = 0;
static void fastopt_mark_forked_child(void) { fastopt_forked_child = 1; }
__attribute__((constructor)) static void fastopt_register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, fastopt_mark_forked_child);
}
/* True in a process made by fork() from one that had loaded this module. */
static inline int fastopt_in_forked_child(void) { return fastopt_forked_child; }
#else
static inline int fastopt_in_forked_child(void) { return 0; }
#endif

/* The thread count to use for a requested n_threads: 1 in a forked child, else n_threads. */
static inline int fastopt_thread_limit(int n_threads)
{
    return fastopt_in_forked_child() ? 1 : n_threads;
}

#endif /* FASTOPT_OPENMP_H */
