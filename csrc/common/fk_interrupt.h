/* The state behind fastkern._interrupt.Interrupt: how a parallel kernel learns
 * that its call should stop (Ctrl-C), without a barrier between its threads.
 *
 * Every thread asks fk_interrupt_stopped() between units of work (and within long
 * ones); the calling thread, OpenMP's thread 0, is also told by fk_interrupt_due()
 * when `every` seconds have passed since it last looked, and then takes the GIL to
 * run Python's signal handlers.  `stop` is written once and read by every thread:
 * atomically, so that the others see it at their next check.
 */
#ifndef FK_INTERRUPT_H
#define FK_INTERRUPT_H

#include "fk_openmp.h"

#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <time.h>
#endif

typedef struct fk_interrupt {
    int stop;       /* 1 once the call should stop; atomic */
    double every;   /* seconds between two looks at the signals */
    double next;    /* when the calling thread looks next; that thread only */
} fk_interrupt;

/* Seconds on a monotonic clock. */
static inline double fk_clock(void)
{
#if defined(_WIN32)
    LARGE_INTEGER t, f;
    QueryPerformanceCounter(&t);
    QueryPerformanceFrequency(&f);
    return (double)t.QuadPart / (double)f.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

static inline int fk_interrupt_stopped(const fk_interrupt *it)
{
#if defined(_MSC_VER)
    return *(volatile const int *)&it->stop;
#else
    return __atomic_load_n(&it->stop, __ATOMIC_RELAXED);
#endif
}

static inline void fk_interrupt_set(fk_interrupt *it)
{
#if defined(_MSC_VER)
    *(volatile int *)&it->stop = 1;
#else
    __atomic_store_n(&it->stop, 1, __ATOMIC_RELAXED);
#endif
}

/* 1 on the calling thread when it is time to look at the signals. */
static inline int fk_interrupt_due(fk_interrupt *it)
{
    double now;
    if (omp_get_thread_num() != 0)
        return 0;
    now = fk_clock();
    if (now < it->next)
        return 0;
    it->next = now + it->every;
    return 1;
}

static inline void fk_interrupt_init(fk_interrupt *it, double every)
{
    it->stop = 0;
    it->every = every;
    it->next = fk_clock() + every;
}

#endif
