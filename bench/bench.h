/* bench.h - what every benchmark program shares: a monotonic clock in
 * seconds and the comparison for sorting samples (medians, percentiles). */
#ifndef USHER_BENCH_H
#define USHER_BENCH_H

#include <time.h>

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif
