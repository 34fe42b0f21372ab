/*
 * bench_sim.c - the simulator's speed and memory (issue 14).
 *
 *   bench_sim                     everything below (the hour at full length)
 *   bench_sim --hour-fraction F   the 1,000-GPU hour cut to F of its length
 *   bench_sim --no-hour           skip it
 *
 * Targets: >= 2 million simulated requests per second on one core; one hour
 * of 100k req/s on 1,000 GPUs in <= 3 minutes; memory bounded by the
 * requests in flight, not by the trace's length.
 *
 * Plans are synthetic and built in memory (sim_run takes a pf_plan): G GPUs
 * of one type, three replicas each (shares 40/30/30, batch 8) of models
 * dealt round-robin, so every model has 3G/M replicas spread over as many
 * GPUs and every GPU hosts three different models. Profiles are fixed
 * formulas per model (no estimator: its cost is not the simulator's), with
 * enough DRAM traffic that co-located replicas slow each other. Arrivals:
 * Poisson, seeded. Rates put the replicas at roughly half load, where
 * batches of a few rows form.
 *
 * Figures: requests per wall second; events per second; each against the
 * baseline measured in the same run, the Poisson source alone (drawing and
 * merging the same arrivals, nothing simulated); peak bytes through the
 * allocation hook (us_alloc_peak_bytes) for runs of 1x and 10x the length;
 * and each run's CPU time (CLOCK_PROCESS_CPUTIME_ID: the program is one
 * thread, so one core's seconds) with requests per CPU second - on a
 * machine shared with other work the wall time includes waiting for a
 * core, the CPU time does not.
 * Method and last results: bench/README.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "core/alloc.h"
#include "sim/sim.h"
#include "sim/workload.h"

#define SEC 1000000000ull

typedef struct synth {
    pf_plan plan;
    pf_gpu *g;
    pf_replica *r;
    sim_model_spec *m;
    char (*names)[16];
    uint32_t n_gpus, n_models;
} synth;

static double base_ms(uint32_t i) { return 4 + (double)(i % 7) * 3; }
static double row_ms(uint32_t i) { return 1 + (double)(i % 5) * 0.5; }

/* latency(b) = base + row x b; 85% on the GPU, 40% of that DRAM-bound */
static int profile(void *ctx, uint32_t model, const char *gpu, int batch, double share_pct,
                   if_replica *out, usher_error *err)
{
    double lat = base_ms(model) + row_ms(model) * batch, g = 0.85 * lat;
    *out = (if_replica){.latency_ms = lat,
                        .gpu_ms = g,
                        .compute_ms = 0.6 * g,
                        .mem_ms = 0.4 * g,
                        .dram_mb = (60 + 40 * (double)(model % 4)) * batch,
                        .l2_mb = 3};
    return USHER_OK;
}

static int device(void *ctx, const char *gpu, if_device *out, usher_error *err)
{
    *out = (if_device){.bw_gbs = 900, .l2_mb = 6};
    snprintf(out->key, sizeof out->key, "%s", gpu);
    return USHER_OK;
}

/* G GPUs, M models, total_rate req/s: about half of what the replicas serve at batch 1 */
static int synth_make(synth *s, uint32_t n_gpus, uint32_t n_models)
{
    memset(s, 0, sizeof *s);
    s->n_gpus = n_gpus;
    s->n_models = n_models;
    s->g = us_calloc(n_gpus, sizeof *s->g);
    s->r = us_calloc((size_t)n_gpus * 3, sizeof *s->r);
    s->m = us_calloc(n_models, sizeof *s->m);
    s->names = us_calloc(n_models, sizeof *s->names);
    if (!s->g || !s->r || !s->m || !s->names)
        return -1;
    static const double shares[3] = {40, 30, 30};
    uint32_t *reps = us_calloc(n_models, sizeof *reps);
    if (!reps)
        return -1;
    for (uint32_t gi = 0; gi < n_gpus; gi++) {
        pf_gpu *g = &s->g[gi];
        g->type = "v100-16gb";
        g->price_per_hour = 3.06;
        g->power_w = 200;
        g->memory_pct = 30;
        g->r = &s->r[(size_t)gi * 3];
        g->n = 3;
        g->line = gi + 1;
        for (uint32_t j = 0; j < 3; j++) {
            uint32_t mi = (gi * 3 + j) % n_models;
            g->r[j] = (pf_replica){.model = s->names[mi], .batch = 8, .share = shares[j],
                                   .line = gi + 1};
            reps[mi]++;
        }
    }
    for (uint32_t i = 0; i < n_models; i++) {
        snprintf(s->names[i], sizeof s->names[i], "m%u", i);
        double alone1 = base_ms(i) + row_ms(i); /* a request alone, ms */
        s->m[i] = (sim_model_spec){.name = s->names[i],
                                   .rate = 0.5 * reps[i] * 1e3 / alone1,
                                   .slo_ms = 4 * (base_ms(i) + 8 * row_ms(i)),
                                   .line = i + 1};
    }
    us_free(reps);
    s->plan.g = s->g;
    s->plan.n_gpus = n_gpus;
    return 0;
}

static void synth_free(synth *s)
{
    us_free(s->g);
    us_free(s->r);
    us_free(s->m);
    us_free(s->names);
}

static double total_rate(const synth *s, double scale)
{
    double t = 0;
    for (uint32_t i = 0; i < s->n_models; i++)
        t += s->m[i].rate * scale;
    return t;
}

static void progress(void *ctx, double done)
{
    int *last = ctx;
    int tenth = (int)(done * 10);
    if (tenth > *last) {
        *last = tenth;
        fprintf(stderr, "  ... %d%%\n", tenth * 10);
    }
}

typedef struct result {
    double wall, cpu, peak_mb;
    uint64_t requests, events, batches, rows, coloc_calls, coloc_hits;
    double attainment;
} result;

/* this process's CPU seconds (one thread: one core's) */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int simulate(const synth *s, double scale, uint64_t dur_ns, bool interference,
                    bool show, result *out)
{
    usher_error err = {0};
    int last = 0;
    sim_params p = sim_default_params();
    p.plan = &s->plan;
    p.models = s->m;
    p.n_models = s->n_models;
    p.duration_ns = dur_ns;
    p.seed = 1;
    p.rate_scale = scale;
    p.interference = interference;
    p.profile = profile;
    p.device = device;
    if (show) {
        p.progress = progress;
        p.progress_ctx = &last;
    }
    size_t live0 = us_alloc_live_bytes();
    us_alloc_reset_peak();
    sim_report *r = NULL;
    double c0 = cpu_now(), t0 = now();
    int rc = sim_run(&p, &r, &err);
    double t1 = now(), c1 = cpu_now();
    if (rc < 0) {
        fprintf(stderr, "bench_sim: %s\n", err.msg);
        return rc;
    }
    *out = (result){.wall = t1 - t0,
                    .cpu = c1 - c0,
                    .peak_mb = (double)(us_alloc_peak_bytes() - live0) / 1048576.0,
                    .requests = r->requests,
                    .events = r->events,
                    .coloc_calls = r->coloc_predictions,
                    .coloc_hits = r->coloc_cache_hits,
                    .attainment = r->attainment_pct};
    for (uint32_t i = 0; i < r->n_models; i++) {
        out->batches += r->m[i].batches;
        out->rows += r->m[i].batch_rows;
    }
    sim_report_free(r);
    return 0;
}

/* the baseline: the same Poisson arrivals drawn and merged, nothing simulated */
static double source_alone(const synth *s, double scale, uint64_t dur_ns, uint64_t *n)
{
    double *rates = us_calloc(s->n_models, sizeof *rates);
    for (uint32_t i = 0; i < s->n_models; i++)
        rates[i] = s->m[i].rate * scale;
    sim_poisson_params pp = {.rates = rates, .n_models = s->n_models, .seed = 1,
                             .duration_ns = dur_ns};
    sim_source *src = NULL;
    usher_error err = {0};
    double t0 = now();
    *n = 0;
    if (sim_source_poisson(&pp, &src, &err) == 0) {
        sim_arrival a;
        while (sim_source_next(src, &a, &err) == 1)
            (*n)++;
    }
    double t = now() - t0;
    sim_source_free(src);
    us_free(rates);
    return t;
}

static void line(const char *what, const result *r, double base_rps)
{
    double rps = (double)r->requests / r->wall;
    printf("%-34s %11llu %8.3f s %7.2f M/s %7.2f M/s %6.2fx %8.1f MB %7.2f%% %6.2f %8.3f s "
           "%6.2f M/s\n", what,
           (unsigned long long)r->requests, r->wall, rps / 1e6, (double)r->events / r->wall / 1e6,
           base_rps / rps, r->peak_mb, r->attainment,
           r->batches ? (double)r->rows / (double)r->batches : 0.0, r->cpu,
           r->cpu > 0 ? (double)r->requests / r->cpu / 1e6 : 0.0);
}

int main(int argc, char **argv)
{
    double hour_fraction = 1;
    bool hour = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-hour") == 0) {
            hour = false;
        } else if (strcmp(argv[i], "--hour-fraction") == 0 && i + 1 < argc) {
            hour_fraction = atof(argv[++i]);
            if (!(hour_fraction > 0 && hour_fraction <= 1)) {
                fprintf(stderr, "bench_sim: --hour-fraction is in (0, 1]\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: bench_sim [--no-hour | --hour-fraction F]\n");
            return 2;
        }
    }
    printf("%-34s %11s %10s %11s %11s %7s %11s %8s %6s %10s %10s\n", "run", "requests", "wall",
           "requests", "events", "vs src", "peak alloc", "in SLO", "batch", "cpu", "req/cpu");

    /* one core: 100 GPUs, 20 models, 20 million requests */
    synth s;
    if (synth_make(&s, 100, 20) < 0) {
        fprintf(stderr, "bench_sim: out of memory\n");
        return 1;
    }
    double rate = total_rate(&s, 1);
    uint64_t dur = (uint64_t)(20e6 / rate * 1e9);
    uint64_t n_src;
    double t_src = source_alone(&s, 1, dur, &n_src);
    double base_rps = (double)n_src / t_src;
    printf("%-34s %11llu %8.3f s %7.2f M/s\n", "Poisson source alone (baseline)",
           (unsigned long long)n_src, t_src, base_rps / 1e6);
    result a, b;
    if (simulate(&s, 1, dur, false, false, &a) < 0 || simulate(&s, 1, dur, true, false, &b) < 0)
        return 1;
    char what[64];
    snprintf(what, sizeof what, "100 GPUs, %.0f req/s, no interf.", rate);
    line(what, &a, base_rps);
    snprintf(what, sizeof what, "100 GPUs, %.0f req/s, interference", rate);
    line(what, &b, base_rps);
    /* overload: past what batches of 8 serve; queues, refusals at admission */
    result c;
    if (simulate(&s, 8, dur / 8, true, false, &c) < 0)
        return 1;
    snprintf(what, sizeof what, "100 GPUs, %.0f req/s, interference", 8 * rate);
    line(what, &c, base_rps);

    /* memory against the trace's length: 1x and 10x, the same plan and rates */
    result m1, m10;
    uint64_t d1 = (uint64_t)(2e6 / rate * 1e9);
    if (simulate(&s, 1, d1, true, false, &m1) < 0 || simulate(&s, 1, 10 * d1, true, false,
                                                                &m10) < 0)
        return 1;
    line("memory: 2M requests", &m1, base_rps);
    line("memory: 20M requests (10x)", &m10, base_rps);
    printf("peak allocation 10x the trace / 1x: %.3f\n", m10.peak_mb / m1.peak_mb);
    synth_free(&s);

    if (hour) {
        synth big;
        if (synth_make(&big, 1000, 100) < 0) {
            fprintf(stderr, "bench_sim: out of memory\n");
            return 1;
        }
        double scale = 100000 / total_rate(&big, 1);
        uint64_t hd = (uint64_t)(3600e9 * hour_fraction);
        result h;
        fprintf(stderr, "bench_sim: %.0f s of 100k req/s on 1,000 GPUs...\n", hd / 1e9);
        if (simulate(&big, scale, hd, true, true, &h) < 0)
            return 1;
        snprintf(what, sizeof what, "1,000 GPUs, 100k req/s, %.0f s", hd / 1e9);
        line(what, &h, base_rps);
        printf("one hour at this speed: %.1f s wall, %.1f s of one core's CPU time (target "
               "180 s); %.2f rows per batch; interference model called %llu times, cached "
               "latency used %llu times\n",
               h.wall / hour_fraction, h.cpu / hour_fraction, (double)h.rows / (double)h.batches,
               (unsigned long long)h.coloc_calls, (unsigned long long)h.coloc_hits);
        synth_free(&big);
    }
    return 0;
}
