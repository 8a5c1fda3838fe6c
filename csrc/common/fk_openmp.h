/* OpenMP shim: lets every extension compile and run without OpenMP.
 * Without it, the queries below answer as a serial runtime would. */
#ifndef FK_OPENMP_H
#define FK_OPENMP_H

#ifdef _OPENMP
#include <omp.h>
#define FK_OPENMP_ENABLED 1
#else
#define FK_OPENMP_ENABLED 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
#endif

static inline int fk_openmp_enabled(void) { return FK_OPENMP_ENABLED; }

#endif
