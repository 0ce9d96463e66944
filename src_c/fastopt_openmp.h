/* OpenMP runtime calls, or serial stubs when the build has no OpenMP.
 *
 * Cython's prange pragmas are already guarded by #ifdef _OPENMP; this header does the same for
 * the few runtime functions fastopt calls directly, so one source builds either way and
 * fastopt_openmp_enabled() reports at run time what the build really did.
 * (Pattern of scikit-learn's sklearn/utils/_openmp_helpers.pxd.)
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

#endif /* FASTOPT_OPENMP_H */
