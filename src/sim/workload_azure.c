/*
 * workload_azure.c - a synthetic workload shaped like the Azure Functions
 * traces (layer 7, prefix sim_). The shape, what each knob stands for and
 * the published figures behind the defaults are in docs/simulator.md,
 * "Workloads"; in short: many functions with heavy-tailed (log-normal)
 * mean rates, some strictly periodic (timers), the rest bursty (on/off),
 * optionally diurnal, mapped onto the models as AlpaServe maps trace
 * functions.
 *
 * Invariants: one random stream per function plus one for the rates, so a
 * function's arrivals depend only on (seed, its index, the parameters);
 * times in double ns rounded down when emitted (non-decreasing per
 * function), merged by a heap keyed (time, function index); O(n_functions)
 * memory allocated at creation, none in next().
 */
/* no fused multiply-add: the bits must not depend on the target's FMA (gcc in
 * ISO C mode, -std=c17 as CMake sets it, does not contract; clang's default
 * would, within expressions). -ffast-math is not supported. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "sim/workload_impl.h"

typedef struct fn_stream {
    ws_rng rng;
    double t;       /* next arrival, ns */
    double rate;    /* candidate rate while on, per ns (timer: 1 / period) */
    double sw;      /* bursty: time of the next on/off switch, ns */
    uint32_t model;
    uint8_t timer;  /* strictly periodic */
    uint8_t on;
} fn_stream;

typedef struct synth_source {
    sim_source base;
    uint32_t n_fn;
    double end;            /* duration, ns */
    double mean_on, mean_off; /* ns; duty 1: mean_off = 0, no switching */
    double amp, period, fmax;
    fn_stream *fn;
    ws_heap heap;
} synth_source;

sim_azure_synth_params sim_azure_synth_default_params(void)
{
    sim_azure_synth_params p;
    memset(&p, 0, sizeof p);
    p.n_models = 1;
    p.n_functions = 1000;
    p.total_rate = 100.0;
    p.sigma = 2.3;
    p.timer_fraction = 0.16;
    p.burst_duty = 0.2;
    p.burst_on_s = 30.0;
    p.diurnal_amplitude = 0.0;
    p.diurnal_period_ns = 86400ull * 1000000000ull;
    p.map = SIM_MAP_STRIPE;
    p.seed = 1;
    p.duration_ns = 60ull * 1000000000ull;
    return p;
}

static double diurnal(const synth_source *s, double t)
{
    return 1.0 + s->amp * ws_sin2pi(t / s->period);
}

/* The function's next arrival after f->t (may be >= s->end). */
static double fn_step(const synth_source *s, fn_stream *f)
{
    if (f->timer)
        return f->t + 1.0 / f->rate;
    double t = f->t;
    for (;;) {
        if (t >= s->end)
            return t;
        if (!f->on) {
            t = f->sw;
            f->on = 1;
            f->sw = t + ws_rng_exp(&f->rng) * s->mean_on;
            continue;
        }
        double c = t + ws_rng_exp(&f->rng) / f->rate;
        if (c >= f->sw) {
            t = f->sw;
            f->on = 0;
            f->sw = t + ws_rng_exp(&f->rng) * s->mean_off;
            continue;
        }
        t = c;
        if (s->amp > 0.0 && ws_rng_unit(&f->rng) * s->fmax >= diurnal(s, t))
            continue; /* thinned */
        return t;
    }
}

static int synth_next(sim_source *src, sim_arrival *out, usher_error *err)
{
    synth_source *s = (synth_source *)src;
    (void)err;
    if (s->heap.n == 0)
        return 0;
    uint32_t i = s->heap.model[0];
    fn_stream *f = &s->fn[i];
    out->t_ns = s->heap.t[0];
    out->model = f->model;
    f->t = fn_step(s, f);
    if (f->t < s->end)
        ws_heap_replace_top(&s->heap, ws_ns(f->t));
    else
        ws_heap_pop(&s->heap);
    return 1;
}

static void synth_free(sim_source *src)
{
    synth_source *s = (synth_source *)src;
    ws_heap_free(&s->heap);
    us_free(s->fn);
    us_free(s);
}

static const sim_source_ops synth_ops = {synth_next, synth_free};

static int check_params(const sim_azure_synth_params *p, usher_error *err)
{
    const char *w = "azure synthetic workload";
    if (p->n_models == 0)
        return us_err_set(err, USHER_ERR_INVALID, "%s: n_models is 0", w);
    if (p->n_functions < p->n_models || p->n_functions > 10000000)
        return us_err_set(err, USHER_ERR_INVALID,
                          "%s: n_functions = %u is not in n_models (%u) .. 10^7", w,
                          p->n_functions, p->n_models);
    if (!(p->total_rate > 0.0 && p->total_rate <= 1e12))
        return us_err_set(err, USHER_ERR_INVALID, "%s: total_rate = %g is not in (0, 1e12]", w,
                          p->total_rate);
    if (!(p->sigma >= 0.0 && p->sigma <= 10.0))
        return us_err_set(err, USHER_ERR_INVALID, "%s: sigma = %g is not in [0, 10]", w,
                          p->sigma);
    if (!(p->timer_fraction >= 0.0 && p->timer_fraction <= 1.0))
        return us_err_set(err, USHER_ERR_INVALID, "%s: timer_fraction = %g is not in [0, 1]", w,
                          p->timer_fraction);
    if (!(p->burst_duty > 0.0 && p->burst_duty <= 1.0))
        return us_err_set(err, USHER_ERR_INVALID, "%s: burst_duty = %g is not in (0, 1]", w,
                          p->burst_duty);
    if (!(p->burst_on_s > 0.0 && p->burst_on_s <= 1e9))
        return us_err_set(err, USHER_ERR_INVALID, "%s: burst_on_s = %g is not in (0, 1e9]", w,
                          p->burst_on_s);
    if (!(p->diurnal_amplitude >= 0.0 && p->diurnal_amplitude <= 1.0))
        return us_err_set(err, USHER_ERR_INVALID, "%s: diurnal_amplitude = %g is not in [0, 1]",
                          w, p->diurnal_amplitude);
    if (p->diurnal_amplitude > 0.0 && p->diurnal_period_ns == 0)
        return us_err_set(err, USHER_ERR_INVALID, "%s: diurnal_period_ns is 0", w);
    if (p->map != SIM_MAP_STRIPE && p->map != SIM_MAP_BLOCK && p->map != SIM_MAP_HASH)
        return us_err_set(err, USHER_ERR_INVALID, "%s: map = %d is not a sim_map", w,
                          (int)p->map);
    return USHER_OK;
}

static uint32_t map_function(sim_map map, uint64_t seed, uint32_t i, uint32_t n_fn,
                             uint32_t n_models)
{
    switch (map) {
    case SIM_MAP_BLOCK:
        return (uint32_t)((uint64_t)n_models * i / n_fn);
    case SIM_MAP_HASH: {
        uint64_t k = seed ^ (0x6a09e667f3bcc909ull * ((uint64_t)i + 1));
        return (uint32_t)(ws_splitmix64(&k) % n_models);
    }
    case SIM_MAP_STRIPE:
    default:
        return i % n_models;
    }
}

int sim_source_azure_synth(const sim_azure_synth_params *p, sim_source **out, usher_error *err)
{
    if (!p || !out)
        return us_err_set(err, USHER_ERR_INVALID, "sim_source_azure_synth: NULL argument");
    *out = NULL;
    int rc = check_params(p, err);
    if (rc < 0)
        return rc;
    synth_source *s = us_calloc(1, sizeof *s);
    if (!s)
        return us_err_set(err, USHER_ERR_NOMEM, "azure synthetic workload: out of memory");
    s->base.ops = &synth_ops;
    s->n_fn = p->n_functions;
    s->end = (double)p->duration_ns;
    s->mean_on = p->burst_on_s * 1e9;
    s->mean_off = s->mean_on * (1.0 - p->burst_duty) / p->burst_duty;
    s->amp = p->diurnal_amplitude;
    s->period = (double)p->diurnal_period_ns;
    s->fmax = 1.0 + s->amp;
    s->fn = us_calloc(p->n_functions, sizeof *s->fn);
    if (!s->fn) {
        synth_free(&s->base);
        return us_err_set(err, USHER_ERR_NOMEM,
                          "azure synthetic workload: out of memory for %u functions",
                          p->n_functions);
    }
    rc = ws_heap_init(&s->heap, p->n_functions, err);
    if (rc < 0) {
        synth_free(&s->base);
        return rc;
    }
    /* rates: log-normal weights from their own stream, scaled to total_rate;
     * which functions are timers: the same stream, one draw per function */
    ws_rng rr;
    ws_rng_seed(&rr, p->seed, 0xa2e0000000000001ull);
    double wsum = 0.0;
    for (uint32_t i = 0; i < s->n_fn; i++) {
        fn_stream *f = &s->fn[i];
        f->rate = ws_exp(p->sigma * ws_rng_normal(&rr));
        f->timer = ws_rng_unit(&rr) < p->timer_fraction;
        wsum += f->rate;
    }
    for (uint32_t i = 0; i < s->n_fn; i++) {
        fn_stream *f = &s->fn[i];
        double rate = p->total_rate * 1e-9 * f->rate / wsum; /* mean, per ns */
        f->model = map_function(p->map, p->seed, i, s->n_fn, p->n_models);
        ws_rng_seed(&f->rng, p->seed, i);
        if (!(rate > 0.0))
            continue; /* underflowed weight: the function never fires */
        if (f->timer) {
            f->rate = rate;
            f->t = ws_rng_unit(&f->rng) / rate; /* seeded phase in one period */
        } else {
            f->rate = rate / p->burst_duty * (s->amp > 0.0 ? s->fmax : 1.0);
            if (p->burst_duty >= 1.0) {
                f->on = 1;
                f->sw = INFINITY;
            } else {
                f->on = ws_rng_unit(&f->rng) < p->burst_duty;
                f->sw = ws_rng_exp(&f->rng) * (f->on ? s->mean_on : s->mean_off);
            }
            f->t = 0.0;
            f->t = fn_step(s, f);
        }
        if (f->t < s->end)
            ws_heap_push(&s->heap, ws_ns(f->t), i);
    }
    *out = &s->base;
    return USHER_OK;
}
