/*
 * workload_impl.h - what the arrival sources of src/sim share (layer 7,
 * internal: the engine sees only workload.h).
 *
 * A source is a small vtable plus the generator's state; every generator
 * draws from its own xoshiro256** streams seeded through splitmix64, and
 * uses the deterministic log/exp/sin below instead of libm's, so that the
 * same seed gives the same arrivals bit for bit on every IEEE-754 machine
 * (only +, -, *, /, sqrt, floor and frexp/ldexp are used: all exact or
 * correctly rounded; nothing depends on the libc version).
 */
#ifndef SIM_WORKLOAD_IMPL_H
#define SIM_WORKLOAD_IMPL_H

#include <stdint.h>

#include "sim/workload.h"

typedef struct sim_source_ops {
    int (*next)(sim_source *s, sim_arrival *out, usher_error *err);
    void (*free)(sim_source *s);
} sim_source_ops;

/* Every source starts with this header. */
struct sim_source {
    const sim_source_ops *ops;
};

/* --- random numbers --------------------------------------------------- */

typedef struct ws_rng {
    uint64_t s[4];
} ws_rng;

uint64_t ws_splitmix64(uint64_t *state);
/* Seed a stream from (seed, stream id): distinct ids give independent streams. */
void ws_rng_seed(ws_rng *r, uint64_t seed, uint64_t stream);
uint64_t ws_rng_u64(ws_rng *r);
double ws_rng_unit(ws_rng *r);      /* uniform in [0, 1), 53 bits */
double ws_rng_open(ws_rng *r);      /* uniform in (0, 1] */
double ws_rng_exp(ws_rng *r);       /* Exp(1) */
double ws_rng_normal(ws_rng *r);    /* N(0, 1), Marsaglia's polar method */
double ws_rng_gamma(ws_rng *r, double shape); /* Gamma(shape, 1), Marsaglia-Tsang */
uint64_t ws_rng_below(ws_rng *r, uint64_t n); /* uniform in [0, n), n > 0, unbiased */

/* --- deterministic elementary functions (relative error ~1e-16) -------- */

double ws_log(double x); /* x > 0 finite; -inf for 0 */
double ws_exp(double x); /* 0 below -745, +inf above 709.78 */
double ws_sin2pi(double u); /* sin(2 pi u) */

/* --- the merge of per-model streams ----------------------------------- */

/*
 * A min-heap of (t_ns, model) pairs: the next arrival of each live stream.
 * Ties break by the smaller model index, so the order never depends on
 * anything but the times.
 */
typedef struct ws_heap {
    uint64_t *t;
    uint32_t *model;
    uint32_t n, cap;
} ws_heap;

int ws_heap_init(ws_heap *h, uint32_t cap, usher_error *err);
void ws_heap_free(ws_heap *h);
void ws_heap_push(ws_heap *h, uint64_t t, uint32_t model); /* n < cap */
/* Replace the top's time (the top model's next arrival) and restore order. */
void ws_heap_replace_top(ws_heap *h, uint64_t t);
void ws_heap_pop(ws_heap *h);

/* ns as double -> uint64, saturating; t >= 0 */
uint64_t ws_ns(double t);



/* --- the Azure trace importer over any input (tests and the fuzz target) -- */

/* One input of the importer: a file by path, or bytes in memory (path NULL). */
typedef struct ws_trace_input {
    const char *label; /* name in messages (the path for files) */
    const char *path;  /* NULL: mem[0..len) */
    const uint8_t *mem;
    size_t len;
} ws_trace_input;

/* sim_source_azure_trace over inputs[0..n) instead of p->paths (ignored). */
int ws_trace_azure_open(const ws_trace_input *inputs, uint32_t n,
                        const sim_azure_trace_params *p, sim_source **out,
                        sim_azure_trace_stats *stats, usher_error *err);

#endif
