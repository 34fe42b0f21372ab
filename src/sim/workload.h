/*
 * workload.h - arrival streams for the simulator (layer 7, prefix sim_).
 *
 * A source yields request arrivals in time order, one at a time, so a run
 * never holds more of the workload than the requests in flight: a trace of
 * 10^8 rows is read as it is consumed. Every generator is seeded: the same
 * seed and parameters give the same arrivals, bit for bit, on every machine
 * (no libc random, no floating-point that depends on the platform's libm
 * beyond correctly rounded basics; see workload.c).
 *
 *   sim_source *src;
 *   sim_poisson_params pp = {.rates = r, .n_models = n, .seed = 1, .duration_ns = 60e9};
 *   sim_source_poisson(&pp, &src, &err);
 *   sim_arrival a;
 *   while ((rc = sim_source_next(src, &a, &err)) == 1) ... a.t_ns, a.model ...
 *   sim_source_free(src);
 */
#ifndef SIM_WORKLOAD_H
#define SIM_WORKLOAD_H

#include <stdint.h>

#include "usher/status.h"

typedef struct sim_arrival {
    uint64_t t_ns;  /* from the start of the run; non-decreasing along a source */
    uint32_t model; /* index into the workload's models */
} sim_arrival;

typedef struct sim_source sim_source;

/* 1: *out holds the next arrival; 0: the source is exhausted; < 0: error
 * (err names the input, line and field for traces) */
int sim_source_next(sim_source *s, sim_arrival *out, usher_error *err);
void sim_source_free(sim_source *s); /* NULL is fine */

/* Poisson arrivals per model at rates[i] req/s, until duration_ns. */
typedef struct sim_poisson_params {
    const double *rates;
    uint32_t n_models;
    uint64_t seed;
    uint64_t duration_ns;
} sim_poisson_params;

int sim_source_poisson(const sim_poisson_params *p, sim_source **out, usher_error *err);

/* Further generators (gamma with a coefficient of variation, diurnal rates,
 * Zipf popularity, an Azure-Functions-shaped synthetic trace, the Azure
 * Functions CSV importer) are declared below this line as they land. */

#endif
