/*
 * test_sim.c - the simulator's engine, metrics and report (src/sim/sim.h):
 * the analytic M/D/1 waiting time with interference off, a batching and
 * admission case computed by hand, byte-identical JSON for a seed (and a
 * different one for another seed), co-located replicas slower with the
 * interference model than without, the time series adding up, the
 * histogram's stated error, plans that do not match their workload, the
 * workload file read as the planner reads it, and the public API over the
 * estimator (zoo models).
 */
#include <math.h>
#include <sys/wait.h>

#include "core/buf.h"
#include "core/err.h"
#include "plan/plan.h"
#include "runtime/rt.h"
#include "sim/sim.h"
#include "sim/workload_impl.h"
#include "sim_list.h"
#include "test.h"
#include "usher/estimate.h"
#include "usher/interfere.h"
#include "usher/sim.h"

#define SEC 1000000000ull
#define MS 1000000ull

/* ---- fixed profiles ------------------------------------------------------------------- */
/* latency(b) = base + per_row x b ms; of it gpu_frac on the GPU; DRAM traffic per batch */
typedef struct fixed_model {
    double base_ms, per_row_ms, gpu_frac, dram_mb_per_row, mem_frac, l2_mb;
} fixed_model;

typedef struct fixed_ctx {
    const fixed_model *m;
    uint32_t n;
    int calls;
} fixed_ctx;

static int fixed_profile(void *ctx, uint32_t model, const char *gpu, int batch, double share_pct,
                         if_replica *out, usher_error *err)
{
    fixed_ctx *c = ctx;
    if (model >= c->n)
        return USHER_ERR_INVALID;
    const fixed_model *f = &c->m[model];
    double lat = f->base_ms + f->per_row_ms * batch;
    double g = lat * (f->gpu_frac > 0 ? f->gpu_frac : 1);
    *out = (if_replica){.latency_ms = lat,
                        .gpu_ms = g,
                        .compute_ms = g * (1 - f->mem_frac),
                        .mem_ms = g * f->mem_frac,
                        .dram_mb = f->dram_mb_per_row * batch,
                        .l2_mb = f->l2_mb};
    c->calls++;
    return USHER_OK;
}

static int fixed_device(void *ctx, const char *gpu, if_device *out, usher_error *err)
{
    if (strcmp(gpu, "nowhere") == 0)
        return us_err_set(err, USHER_ERR_NOT_FOUND, "unknown GPU type 'nowhere'");
    *out = (if_device){.bw_gbs = 900, .l2_mb = 6};
    snprintf(out->key, sizeof out->key, "%s", gpu);
    return USHER_OK;
}

/* ---- running ---------------------------------------------------------------------------- */
static int run_plan(const char *plan_json, const sim_model_spec *models, uint32_t n_models,
                    const fixed_model *fm, sim_params *p, sim_report **out, usher_error *err)
{
    pf_plan pl;
    int rc = pf_parse(plan_json, strlen(plan_json), "plan.json", &pl, err);
    if (rc < 0) {
        sim_source_free(p->source);
        return rc;
    }
    fixed_ctx fc = {.m = fm, .n = n_models};
    p->plan = &pl;
    p->plan_label = "plan.json";
    p->workload_label = "workload.yaml";
    p->models = models;
    p->n_models = n_models;
    p->profile = fixed_profile;
    p->device = fixed_device;
    p->ctx = &fc;
    rc = sim_run(p, out, err);
    pf_free(&pl);
    return rc;
}

static const char *one_replica_plan(int batch)
{
    static char s[512];
    snprintf(s, sizeof s,
             "{\"schema_version\": 1, \"gpus\": [{\"type\": \"t4\", \"price_per_hour\": 0.5, "
             "\"power_w\": 70, \"memory_pct\": 20, \"replicas\": [{\"model\": \"m\", \"batch\": "
             "%d, \"share\": 100}]}]}",
             batch);
    return s;
}

/*
 * M/D/1: Poisson arrivals at rate lambda, one server, fixed service time D,
 * utilisation rho = lambda D: mean waiting time rho D / (2 (1 - rho))
 * (Pollaczek-Khinchine with zero service variance). Interference off, one
 * replica of batch 1, an SLO far away so that admission refuses nothing.
 */
static void md1(double rho, uint64_t duration_s, uint64_t seed, double *sim_ms, double *want_ms,
                uint64_t *rejected)
{
    const double d_ms = 10;
    fixed_model fm = {.base_ms = d_ms, .per_row_ms = 0};
    sim_model_spec m = {.name = "m", .rate = rho / (d_ms / 1e3), .slo_ms = 1e6, .line = 3};
    sim_params p = sim_default_params();
    p.interference = false;
    p.duration_ns = duration_s * SEC;
    p.seed = seed;
    sim_report *r = NULL;
    usher_error err = {0};
    *sim_ms = -1;
    if (run_plan(one_replica_plan(1), &m, 1, &fm, &p, &r, &err) < 0) {
        printf("  md1: %s\n", err.msg);
        return;
    }
    *sim_ms = r->m[0].mean_queue_ms;
    *want_ms = rho * d_ms / (2 * (1 - rho));
    *rejected = r->m[0].rejected + r->m[0].expired;
    printf("  M/D/1 rho %.2f: %llu requests, mean wait %.4f ms, analytic %.4f ms (%+.2f%%)\n", rho,
           (unsigned long long)r->m[0].requests, *sim_ms, *want_ms,
           100 * (*sim_ms - *want_ms) / *want_ms);
    sim_report_free(r);
}

TEST(md1_waiting_time_within_2pct)
{
    /* 1,000,000 requests at rho 0.5 and 1,600,000 at rho 0.8 */
    double got, want;
    uint64_t rej = 1;
    md1(0.5, 20000, 1, &got, &want, &rej);
    ASSERT(got >= 0);
    ASSERT_EQ_U64(rej, 0);
    ASSERT_NEAR_PCT(got, want, 2);
    md1(0.8, 20000, 2, &got, &want, &rej);
    ASSERT(got >= 0);
    ASSERT_EQ_U64(rej, 0);
    ASSERT_NEAR_PCT(got, want, 2);
}

/*
 * One replica of batch 4, latency 10 + 2 b ms, six requests at 0, 1, ..., 5
 * ms, SLO 100 ms. Work-conserving batching: the first runs alone at once
 * [0, 12); the five that queue meanwhile leave as a batch of 4 at 12
 * [12, 30) and the last alone at 30 [30, 42). Latencies 12, 29, 28, 27, 26,
 * 37 (mean 26.5), queueing 0, 11, 10, 9, 8, 25 (mean 10.5).
 *
 * With an SLO of 30 ms admission refuses some (15% kept in hand; the work
 * ahead is the queue at 4.5 ms a row, 18 ms per 4, plus the running
 * batch's rest): at 1 ms 11 + 12 = 23 -> 27.45 ends by 31: in; at 2 ms
 * 4.5 + 10 + 12 = 26.5 -> 32.475 > 32: out; at 3 ms 4.5 + 9 + 12 -> 32.325 <=
 * 33: in; at 4 and 5 ms 9 + 8 + 12 -> 37.35 > 34 and 9 + 7 + 12 -> 37.2 > 35:
 * out. The two admitted leave together at 12 [12, 26): latencies 12, 25, 23.
 */
/*
 * Service-time variance: M/G/1 with lognormal service of mean D and CV 1 has the
 * Pollaczek-Khinchine mean wait rho D (1 + cv^2) / (2 (1 - rho)), twice M/D/1's; the mean
 * service stays D; the arrivals do not change with the CV; a CV of 0 gives the bytes of a
 * run without the option; the same seed the same bytes.
 */
static int mg1_run(double cv, uint64_t seed, uint64_t duration_s, sim_report **r, us_buf *json,
                   usher_error *err)
{
    const double d_ms = 10, rho = 0.5;
    fixed_model fm = {.base_ms = d_ms, .per_row_ms = 0};
    sim_model_spec m = {.name = "m", .rate = rho / (d_ms / 1e3), .slo_ms = 1e6, .line = 3};
    sim_params p = sim_default_params();
    p.interference = false;
    p.duration_ns = duration_s * SEC;
    p.seed = seed;
    p.service_cv = cv;
    int rc = run_plan(one_replica_plan(1), &m, 1, &fm, &p, r, err);
    if (rc >= 0 && json)
        rc = sim_report_json(*r, false, json);
    return rc;
}

TEST(service_time_variance)
{
    usher_error err = {0};
    sim_report *g = NULL, *d = NULL, *z = NULL, *g2 = NULL;
    us_buf bd, bz, bg, bg2;
    us_buf_init(&bd, 1 << 20);
    us_buf_init(&bz, 1 << 20);
    us_buf_init(&bg, 1 << 20);
    us_buf_init(&bg2, 1 << 20);
    int rc = mg1_run(1, 21, 20000, &g, &bg, &err); /* 1,000,000 requests */
    if (rc >= 0)
        rc = mg1_run(0, 21, 20000, &d, &bd, &err);
    if (rc >= 0) { /* no CV given at all: the default params */
        const double d_ms = 10;
        fixed_model fm = {.base_ms = d_ms};
        sim_model_spec m = {.name = "m", .rate = 50, .slo_ms = 1e6, .line = 3};
        sim_params p = sim_default_params();
        p.interference = false;
        p.duration_ns = 20000 * SEC;
        p.seed = 21;
        rc = run_plan(one_replica_plan(1), &m, 1, &fm, &p, &z, &err);
        if (rc >= 0)
            rc = sim_report_json(z, false, &bz);
    }
    if (rc >= 0)
        rc = mg1_run(1, 21, 20000, &g2, &bg2, &err);
    double want = 0.5 * 10 * 2 / (2 * 0.5), got = g ? g->m[0].mean_queue_ms : -1;
    double service = g ? g->m[0].mean_ms - g->m[0].mean_queue_ms : -1;
    if (g && d)
        printf("  M/G/1 rho 0.5, lognormal service CV 1: %llu requests, mean wait %.4f ms, "
               "Pollaczek-Khinchine %.4f ms (%+.2f%%), mean service %.4f ms; CV 0: wait %.4f "
               "ms\n", (unsigned long long)g->m[0].requests, got, want,
               100 * (got - want) / want, service, d->m[0].mean_queue_ms);
    bool same_arrivals = g && d && g->requests == d->requests;
    bool cv0_same = rc >= 0 && bd.len == bz.len && memcmp(bd.data, bz.data, bd.len) == 0;
    bool seed_same = rc >= 0 && bg.len == bg2.len && memcmp(bg.data, bg2.data, bg.len) == 0;
    bool field = rc >= 0 && strstr(us_buf_str(&bg), "\"service_cv\": 1") &&
                 !strstr(us_buf_str(&bd), "service_cv");
    uint64_t refused = g ? g->rejected + g->expired : 1;
    sim_report_free(g);
    sim_report_free(d);
    sim_report_free(z);
    sim_report_free(g2);
    us_buf_free(&bd);
    us_buf_free(&bz);
    us_buf_free(&bg);
    us_buf_free(&bg2);
    ASSERT_OK(rc);
    ASSERT_EQ_U64(refused, 0);
    ASSERT_NEAR_PCT(got, want, 3.0);
    ASSERT_NEAR_PCT(service, 10.0, 1.0);
    ASSERT(same_arrivals);
    ASSERT(cv0_same);
    ASSERT(seed_same);
    ASSERT(field);
    /* out of range */
    sim_report *bad = NULL;
    ASSERT_EQ_INT(mg1_run(11, 1, 10, &bad, NULL, &err), USHER_ERR_INVALID);
    ASSERT(bad == NULL);
    ASSERT_CONTAINS(err.msg, "service-time CV 11");
}

TEST(batching_and_admission_by_hand)
{
    static const sim_arrival arr[] = {{0, 0}, {1 * MS, 0}, {2 * MS, 0},
                                      {3 * MS, 0}, {4 * MS, 0}, {5 * MS, 0}};
    fixed_model fm = {.base_ms = 10, .per_row_ms = 2};
    usher_error err = {0};
    for (int pass = 0; pass < 2; pass++) {
        sim_model_spec m = {.name = "m", .rate = 1, .slo_ms = pass ? 30 : 100, .line = 3};
        sim_params p = sim_default_params();
        p.interference = false;
        p.source = list_source_new(arr, 6);
        ASSERT(p.source);
        sim_report *r = NULL;
        ASSERT_OK(run_plan(one_replica_plan(4), &m, 1, &fm, &p, &r, &err));
        const sim_model_report *x = &r->m[0];
        printf("  SLO %g ms: served %llu in %llu batches, rejected %llu, mean %.4f ms, queue "
               "%.4f ms, max %.4f ms\n",
               m.slo_ms, (unsigned long long)x->served, (unsigned long long)x->batches,
               (unsigned long long)x->rejected, x->mean_ms, x->mean_queue_ms, x->max_ms);
        bool ok;
        if (!pass)
            ok = x->requests == 6 && x->served == 6 && x->good == 6 && x->rejected == 0 &&
                 x->batches == 3 && x->batch_rows == 6 && fabs(x->mean_ms - 26.5) < 1e-9 &&
                 fabs(x->mean_queue_ms - 10.5) < 1e-9 && fabs(x->max_ms - 37) < 1e-9 &&
                 fabs(r->end_s - 0.042) < 1e-12;
        else
            ok = x->requests == 6 && x->served == 3 && x->good == 3 && x->rejected == 3 &&
                 x->batches == 2 && fabs(x->mean_ms - 60.0 / 3) < 1e-9 &&
                 fabs(x->mean_queue_ms - 20.0 / 3) < 1e-9 && fabs(x->max_ms - 25) < 1e-9;
        sim_report_free(r);
        ASSERT(ok);
    }
}

/* two models on two GPUs, interference on, a time series */
static const char *two_gpu_plan =
    "{\"schema_version\": 1,\n"
    " \"models\": [{\"name\": \"a\"}, {\"name\": \"b\"}],\n"
    " \"gpus\": [\n"
    "  {\"type\": \"v100-16gb\", \"price_per_hour\": 3, \"power_w\": 250, \"memory_pct\": 40,\n"
    "   \"replicas\": [{\"model\": \"a\", \"batch\": 8, \"share\": 60},\n"
    "                  {\"model\": \"b\", \"batch\": 4, \"share\": 40}]},\n"
    "  {\"type\": \"v100-16gb\", \"price_per_hour\": 3, \"power_w\": 250, \"memory_pct\": 30,\n"
    "   \"replicas\": [{\"model\": \"a\", \"batch\": 8, \"share\": 50},\n"
    "                  {\"model\": \"b\", \"batch\": 4, \"share\": 50}]}]}\n";

static const fixed_model two_models[] = {
    {.base_ms = 2, .per_row_ms = 1.5, .gpu_frac = 0.9, .dram_mb_per_row = 400, .mem_frac = 0.5,
     .l2_mb = 4},
    {.base_ms = 4, .per_row_ms = 3, .gpu_frac = 0.8, .dram_mb_per_row = 900, .mem_frac = 0.7,
     .l2_mb = 5},
};

static int two_gpu_json(uint64_t seed, us_buf *out, sim_report **keep, usher_error *err)
{
    sim_model_spec m[2] = {{.name = "a", .rate = 900, .slo_ms = 40, .line = 2},
                           {.name = "b", .rate = 300, .slo_ms = 60, .line = 7}};
    sim_params p = sim_default_params();
    p.duration_ns = 20 * SEC;
    p.seed = seed;
    p.interval_ns = 2 * SEC;
    sim_report *r = NULL;
    int rc = run_plan(two_gpu_plan, m, 2, two_models, &p, &r, err);
    if (rc < 0)
        return rc;
    rc = sim_report_json(r, false, out);
    if (keep)
        *keep = r;
    else
        sim_report_free(r);
    return rc;
}

TEST(same_seed_same_bytes)
{
    usher_error err = {0};
    us_buf a, b, c;
    us_buf_init(&a, 1 << 24);
    us_buf_init(&b, 1 << 24);
    us_buf_init(&c, 1 << 24);
    sim_report *r = NULL;
    int rc = two_gpu_json(7, &a, &r, &err);
    if (rc >= 0)
        rc = two_gpu_json(7, &b, NULL, &err);
    if (rc >= 0)
        rc = two_gpu_json(8, &c, NULL, &err);
    bool same = rc >= 0 && a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
    bool differ = rc >= 0 && (a.len != c.len || memcmp(a.data, c.data, a.len) != 0);
    bool fields = rc >= 0 && strstr(us_buf_str(&a), "\"slo_attainment_pct\"") &&
                  strstr(us_buf_str(&a), "\"mean_queue_ms\"") &&
                  strstr(us_buf_str(&a), "\"p99_ms\"") && strstr(us_buf_str(&a), "\"series\"");
    /* the series adds up to the totals, per model */
    bool sums = r != NULL;
    for (uint32_t k = 0; r && k < r->n_models; k++) {
        uint64_t req = 0, good = 0;
        for (uint32_t i = 0; i < r->n_intervals; i++) {
            req += r->series_requests[(size_t)i * r->n_models + k];
            good += r->series_good[(size_t)i * r->n_models + k];
        }
        sums = sums && req == r->m[k].requests && good == r->m[k].good;
    }
    if (r)
        printf("  %zu bytes; %llu requests, %.2f%% within the SLO, %llu interference "
               "predictions, %llu cache hits; GPU 0 compute %.1f%%\n",
               a.len, (unsigned long long)r->requests, r->attainment_pct,
               (unsigned long long)r->coloc_predictions, (unsigned long long)r->coloc_cache_hits,
               r->g[0].compute_pct);
    bool used = r && r->gpus_used == 2 && fabs(r->cost_per_hour - 6) < 1e-9 &&
                r->coloc_predictions > 0 && r->requests > 20000 && r->energy_j_per_request > 0;
    sim_report_free(r);
    us_buf_free(&a);
    us_buf_free(&b);
    us_buf_free(&c);
    ASSERT_OK(rc);
    ASSERT(same);
    ASSERT(differ);
    ASSERT(fields);
    ASSERT(sums);
    ASSERT(used);
}

/* two replicas of a DRAM-heavy model on one GPU at high load: slower with the model on */
TEST(interference_slows_colocated_replicas)
{
    static const char *plan =
        "{\"schema_version\": 1, \"gpus\": [{\"type\": \"a100-80gb\", \"replicas\": [\n"
        " {\"model\": \"h\", \"batch\": 4, \"share\": 50},\n"
        " {\"model\": \"h\", \"batch\": 4, \"share\": 50}]}]}";
    /* 10 ms per batch of 4 alone, 90% on the GPU, 70% of it DRAM-bound, 1.6 GB per batch:
     * two of them ask for ~1.2x the bandwidth */
    fixed_model fm = {.base_ms = 6, .per_row_ms = 1, .gpu_frac = 0.9, .dram_mb_per_row = 1200,
                      .mem_frac = 0.7, .l2_mb = 5};
    double mean[2], p99[2], cpu[2];
    for (int on = 0; on < 2; on++) {
        sim_model_spec m = {.name = "h", .rate = 600, .slo_ms = 200, .line = 2};
        sim_params p = sim_default_params();
        p.interference = on;
        p.duration_ns = 30 * SEC;
        p.seed = 3;
        sim_report *r = NULL;
        usher_error err = {0};
        ASSERT_OK(run_plan(plan, &m, 1, &fm, &p, &r, &err));
        mean[on] = r->m[0].mean_ms;
        p99[on] = r->m[0].p99_ms;
        cpu[on] = r->g[0].compute_pct;
        printf("  interference %s: mean %.3f ms, p99 %.3f ms, mean batch %.2f, GPU busy %.1f%%, "
               "scale %.3f\n",
               on ? "on " : "off", mean[on], p99[on],
               (double)r->m[0].batch_rows / (double)r->m[0].batches, cpu[on],
               r->m[0].latency_scale);
        sim_report_free(r);
    }
    ASSERT(mean[1] > mean[0] * 1.05);
    ASSERT(p99[1] > p99[0]);
    ASSERT(cpu[1] > cpu[0]);
}

static int cmp_double_asc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

TEST(histogram_error_bound)
{
    sim_hist h = {0};
    uint64_t s = 42;
    enum { N = 200000 };
    uint64_t *v = malloc(N * sizeof *v);
    ASSERT(v);
    for (int i = 0; i < N; i++) {
        /* log-uniform over 10 us .. 10 s */
        double u = (double)(test_splitmix(&s) >> 11) / 9007199254740992.0;
        v[i] = (uint64_t)(1e4 * pow(1e6, u));
        if (sim_hist_add(&h, v[i]) < 0) {
            free(v);
            sim_hist_free(&h);
            FAIL_("no memory");
        }
    }
    qsort(v, N, sizeof *v, cmp_u64);
    double worst = 0;
    static const double qs[] = {0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        size_t rank = (size_t)ceil(qs[i] * N);
        double exact = (double)v[rank - 1], got = sim_hist_quantile(&h, qs[i]);
        double e = fabs(got - exact) / exact;
        if (e > worst)
            worst = e;
    }
    bool small = sim_hist_quantile(&h, 0) == (double)v[0] && h.n == N;
    free(v);
    sim_hist_free(&h);
    /* exact below 64 ns */
    sim_hist x = {0};
    for (uint64_t i = 1; i <= 63; i++)
        sim_hist_add(&x, i);
    bool exact = sim_hist_quantile(&x, 0.5) == 32;
    sim_hist_free(&x);
    printf("  worst relative error %.5f (bound %.5f)\n", worst, SIM_HIST_REL_ERROR);
    ASSERT(worst <= SIM_HIST_REL_ERROR);
    ASSERT(small);
    ASSERT(exact);
}

TEST(plan_must_match_workload)
{
    fixed_model fm[2] = {{.base_ms = 1}, {.base_ms = 1}};
    usher_error err = {0};
    sim_report *r = NULL;
    /* a replica of a model the workload lacks: the plan's line and field */
    sim_model_spec only_x = {.name = "x", .rate = 10, .slo_ms = 50, .line = 4};
    sim_params p = sim_default_params();
    p.duration_ns = SEC;
    ASSERT(run_plan(one_replica_plan(1), &only_x, 1, fm, &p, &r, &err) < 0);
    ASSERT_CONTAINS(err.msg, "plan.json:1: field 'gpus[0].replicas[0].model': model 'm' is not "
                             "in workload.yaml");
    /* a workload model no replica serves (the plan has no models list) */
    sim_model_spec both[2] = {{.name = "m", .rate = 10, .slo_ms = 50, .line = 2},
                              {.name = "y", .rate = 10, .slo_ms = 50, .line = 6}};
    p = sim_default_params();
    p.duration_ns = SEC;
    ASSERT(run_plan(one_replica_plan(1), both, 2, fm, &p, &r, &err) < 0);
    ASSERT_CONTAINS(err.msg, "workload.yaml:6: field 'models[1].name': model 'y' is not in "
                             "plan.json");
    /* a plan model the workload lacks */
    static const char *extra =
        "{\"schema_version\": 1, \"models\": [{\"name\": \"m\"}, {\"name\": \"z\"}], \"gpus\": "
        "[{\"type\": \"t4\", \"replicas\": [{\"model\": \"m\", \"batch\": 1, \"share\": 100}]}]}";
    p = sim_default_params();
    p.duration_ns = SEC;
    ASSERT(run_plan(extra, both, 1, fm, &p, &r, &err) < 0);
    ASSERT_CONTAINS(err.msg, "plan.json: field 'models[1].name': model 'z' is not in "
                             "workload.yaml");
    /* a model in the plan's list with no replica: its requests are refused, not an error */
    static const char *none =
        "{\"schema_version\": 1, \"models\": [{\"name\": \"m\"}, {\"name\": \"y\"}], \"gpus\": "
        "[{\"type\": \"t4\", \"replicas\": [{\"model\": \"m\", \"batch\": 1, \"share\": 100}]}]}";
    p = sim_default_params();
    p.duration_ns = 2 * SEC;
    ASSERT_OK(run_plan(none, both, 2, fm, &p, &r, &err));
    bool refused = r->m[1].requests > 0 && r->m[1].rejected == r->m[1].requests &&
                   r->m[1].attainment_pct == 0 && r->m[0].served > 0;
    sim_report_free(r);
    ASSERT(refused);
    /* a GPU type the device callback does not know: the plan's line and field */
    static const char *nowhere =
        "{\"schema_version\": 1,\n\"gpus\": [\n{\"type\": \"nowhere\", \"replicas\": "
        "[{\"model\": \"m\", \"batch\": 1, \"share\": 100}]}]}";
    p = sim_default_params();
    p.duration_ns = SEC;
    ASSERT(run_plan(nowhere, both, 1, fm, &p, &r, &err) < 0);
    ASSERT_CONTAINS(err.msg, "plan.json:3: field 'gpus[0].type': unknown GPU type 'nowhere'");
}

TEST(workload_file_as_the_planner_reads_it)
{
    usher_error err = {0};
    sim_workload w;
    static const char ok[] = "models:\n"
                             "  - name: a\n    model: ../zoo/a.onnx\n    rate: 100\n"
                             "    slo_ms: 20\n"
                             "  - name: b\n    model: /abs/b.onnx\n    rate: 0\n    slo_ms: 5\n"
                             "    priority: 2\n    precision: fp16\n    group: g\n";
    ASSERT_OK(sim_workload_parse(ok, strlen(ok), "dir/workload.yaml", &w, &err));
    bool good = w.n == 2 && strcmp(w.m[0].path, "dir/../zoo/a.onnx") == 0 &&
                strcmp(w.m[1].path, "/abs/b.onnx") == 0 && w.m[0].rate == 100 &&
                w.m[1].slo_ms == 5 && w.m[1].priority == 2 &&
                strcmp(w.m[1].precision, "fp16") == 0 && w.m[1].line == 6;
    sim_workload_free(&w);
    ASSERT(good);
    /* the planner's reader and this one refuse the same inputs with the same words */
    static const char *const bad[] = {
        "models:\n  - name: a\n    model: a.onnx\n    rate: -5\n    slo_ms: 20\n",
        "models:\n  - name: a\n    model: a.onnx\n    rate: 5\n    slo: 20\n",
        "models:\n  - name: a\n    model: a.onnx\n    rate: 5\n    slo_ms: 20\n"
        "  - name: a\n    model: b.onnx\n    rate: 5\n    slo_ms: 20\n",
        "models:\n  - name: a b\n    model: a.onnx\n    rate: 5\n    slo_ms: 20\n",
        "models:\n  - name: a\n    rate: 5\n    slo_ms: 20\n",
        "models:\n  - name: a\n    model: a.onnx\n    rate: 5\n    slo_ms: 20\n"
        "    precision: fp8\n",
        "models: []\n",
        "model: 3\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        usher_error e1 = {0}, e2 = {0};
        int rc1 = sim_workload_parse(bad[i], strlen(bad[i]), "w.yaml", &w, &e1);
        sim_workload_free(&w);
        plan_problem pp;
        memset(&pp, 0, sizeof pp);
        int rc2 = plan_parse_workload(bad[i], strlen(bad[i]), "w.yaml", &pp, &e2);
        plan_problem_free(&pp);
        if (rc1 >= 0 || rc2 >= 0 || strcmp(e1.msg, e2.msg) != 0)
            FAIL_("input %zu: simulator %d '%s', planner %d '%s'", i, rc1, e1.msg, rc2, e2.msg);
    }
}

/* the runtime's observed scale (admit.c, one pass over the samples) against the rule as
 * docs/serve.md states it: the second largest of the last 32 runs within 2 s, in [1/4, 16] */
TEST(admission_scale_is_the_second_largest_in_window)
{
    rt_admit a;
    rt_admit_init(&a);
    double v[4000];
    uint64_t t[4000], now = 0, s = 9;
    int bad = -1;
    for (int i = 0; i < 4000 && bad < 0; i++) {
        uint64_t r = test_splitmix(&s);
        now += (r % 7 == 0) ? (r >> 8) % (3 * SEC) : (r >> 8) % (50 * MS); /* some gaps > 2 s */
        v[i] = 0.1 + (double)((r >> 20) % 2000) / 100.0; /* 0.1 .. 20.1: both bounds reached */
        if (r % 11 == 0 && i > 0)
            v[i] = v[i - 1]; /* duplicates */
        t[i] = now;
        rt_admit_note_run(&a, v[i], false, now);
        double top[32];
        int n = 0;
        for (int j = i; j >= 0 && j > i - RT_ADMIT_SAMPLES; j--)
            if (now - t[j] < 2 * SEC)
                top[n++] = v[j];
        qsort(top, (size_t)n, sizeof top[0], cmp_double_asc);
        double want = top[n >= 2 ? n - 2 : 0];
        want = want < 0.25 ? 0.25 : want > 16 ? 16 : want;
        if (a.scale != want)
            bad = i;
    }
    if (bad >= 0)
        FAIL_("sample %d: scale %.17g, the rule says otherwise", bad, a.scale);
}

/* the two classes of the scale: runs that overlapped another run of the model teach `scale`,
 * lone runs `scale_alone`; a class with no sample borrows the other's; a request that finds
 * the model idle is admitted by the alone class where the shared one would shed it */
TEST(admission_scale_alone_and_shared)
{
    rt_admit a;
    rt_admit_init(&a);
    uint64_t now = SEC;
    for (int i = 0; i < 8; i++) /* overlapping runs only, 1.8x the profile */
        rt_admit_note_run(&a, 1.8, true, now += 10 * MS);
    ASSERT(a.scale == 1.8);
    ASSERT(a.scale_alone == 1.8); /* no lone run yet: borrowed */
    for (int i = 0; i < 4; i++) /* lone runs as profiled */
        rt_admit_note_run(&a, 1.0, false, now += 10 * MS);
    ASSERT(a.scale == 1.8);
    ASSERT(a.scale_alone == 1.0);
    /* a 70 ms run against a 100 ms deadline: shed at 1.8x when work is ahead or the model
     * busy, admitted at 1.0x when it finds the model idle */
    uint64_t own = 70 * MS, dl = now + 100 * MS;
    rt_admit_query busy = {.now = now, .deadline_ns = dl, .ahead = 0,
                           .own = (uint64_t)(own * a.scale), .scale = a.scale};
    ASSERT_EQ_INT(rt_admit_decide(&a, &busy), RT_ADMIT_SHED);
    rt_admit_query idle = {.now = now, .deadline_ns = dl, .ahead = 0,
                           .own = (uint64_t)(own * a.scale_alone), .idle = true,
                           .scale = a.scale_alone};
    ASSERT_EQ_INT(rt_admit_decide(&a, &idle), RT_ADMIT_YES);
    /* once the overlapping runs leave the window, the shared class is the alone one: a
     * slowdown that ended (lone runs back at 1.0) is not kept by a class that had no run
     * since (the recovery test); while the overlapping runs are recent they count */
    rt_admit_note_run(&a, 1.0, false, now += 1500 * MS);
    ASSERT(a.scale == 1.8 && a.scale_alone == 1.0);
    for (int i = 0; i < 10; i++)
        rt_admit_note_run(&a, 1.2, false, now += 100 * MS);
    ASSERT(a.scale_alone == 1.2);
    ASSERT(a.scale == 1.2);
    /* overlapping runs only again, the lone ones aged out: both classes are the shared one */
    now += 3 * SEC;
    for (int i = 0; i < 3; i++)
        rt_admit_note_run(&a, 2.5, true, now += 10 * MS);
    ASSERT(a.scale == 2.5 && a.scale_alone == 2.5);
    /* only lone runs ever (the simulator's case): one class, both scales equal */
    rt_admit b;
    rt_admit_init(&b);
    for (int i = 0; i < 5; i++)
        rt_admit_note_run(&b, 0.5 + i * 0.1, false, now += 10 * MS);
    ASSERT(b.scale == b.scale_alone && b.scale == 0.8);
}

/* a profile that refuses every request made to the model's own SLO (measured while the
 * machine was busy) is probed like a scale that sheds: otherwise nothing would run to
 * correct it. A request's own shorter timeout is refused as before, and so is a run that
 * even a quarter of the profile (the lowest scale) would not fit */
TEST(admission_probe_of_a_refusing_profile)
{
    rt_admit a;
    rt_admit_init(&a);
    uint64_t now = SEC;
    rt_admit_query q = {.now = now, .deadline_ns = now + 100 * MS, .own = 150 * MS,
                        .idle = true, .model_slo = true};
    ASSERT_EQ_INT(rt_admit_decide(&a, &q), RT_ADMIT_PROBE);
    ASSERT(a.probe_by_profile && a.last_shed == 0);
    q.now += 100 * MS, q.deadline_ns = q.now + 100 * MS;
    ASSERT_EQ_INT(rt_admit_decide(&a, &q), RT_ADMIT_NO); /* one every 250 ms */
    q.now += 200 * MS, q.deadline_ns = q.now + 100 * MS;
    q.model_slo = false; /* the request's own shorter timeout */
    ASSERT_EQ_INT(rt_admit_decide(&a, &q), RT_ADMIT_NO);
    q.model_slo = true, q.own = 500 * MS; /* 125 ms even at a quarter */
    ASSERT_EQ_INT(rt_admit_decide(&a, &q), RT_ADMIT_NO);
    q.own = 150 * MS, q.idle = false;
    ASSERT_EQ_INT(rt_admit_decide(&a, &q), RT_ADMIT_NO);
    q.idle = true;
    ASSERT_EQ_INT(rt_admit_decide(&a, &q), RT_ADMIT_PROBE);
    /* the probe ran at a third of the profile: the scale follows, and the same request is
     * admitted at once */
    rt_admit_note_run(&a, 0.33, false, q.now + 50 * MS);
    q.now += 60 * MS, q.deadline_ns = q.now + 100 * MS;
    q.own = (uint64_t)(150 * MS * a.scale_alone), q.scale = a.scale_alone;
    ASSERT_EQ_INT(rt_admit_decide(&a, &q), RT_ADMIT_YES);
}

/* One stall of the worker (40 ms, in the first of ten 5 ms batches queued back to back)
 * is one late sample for the margin: each batch behind it waited for the replica, and is
 * late against when it was freed plus its own predicted run, not against the end predicted
 * at its admission (which every one of them missed by the stall, less what the queue
 * caught up). Counted against the admission prediction alone, the second largest holds the
 * margin near the stall for the window. */
TEST(admission_margin_counts_a_stall_once)
{
    const uint64_t run = 5 * MS, stall = 40 * MS;
    for (int rebased = 0; rebased < 2; rebased++) {
        rt_admit a;
        rt_admit_init(&a);
        uint64_t t = SEC, freed = 0;
        for (int k = 0; k < 10; k++) {
            uint64_t pred_end = SEC + (uint64_t)(k + 1) * run; /* predicted back to back */
            uint64_t t1 = (k == 0 ? t + stall : t) + run - (uint64_t)k * 100000; /* catch-up */
            rt_admit_note_late(&a, rt_admit_lateness(t1, pred_end, rebased ? freed : 0, run),
                               t1);
            rt_admit_note_run(&a, 1.0, false, t1);
            freed = t = t1;
        }
        rt_admit_refresh(&a, t);
        if (rebased)
            ASSERT(a.margin < 1.0 * MS);
        else
            ASSERT(a.margin > 30.0 * MS); /* the per-batch count this replaces */
    }
    /* a batch that did not wait for its replica keeps its own lateness */
    ASSERT(rt_admit_lateness(SEC + 12 * MS, SEC + 10 * MS, SEC + 1 * MS, MS) == 2.0 * MS);
    ASSERT(rt_admit_lateness(SEC + 12 * MS, SEC + 10 * MS, 0, MS) == 2.0 * MS);
    ASSERT(rt_admit_lateness(SEC + 12 * MS, SEC + 10 * MS, SEC + 10 * MS, MS) == 1.0 * MS);
}

/* A profile more than 4x too slow follows the runs once PROFILE_RUNS (4) recent runs show
 * it; one 3x too slow is the scale's; a shared class still above the floor keeps it. */
TEST(admission_profile_follows_runs)
{
    rt_admit a;
    rt_admit_init(&a);
    uint64_t t = SEC;
    for (int k = 0; k < 3; k++, t += 10 * MS) {
        rt_admit_note_run(&a, 0.05, false, t);
        ASSERT(rt_admit_profile_factor(&a, t) == 1.0); /* three runs: not yet */
    }
    ASSERT(a.scale == 0.25); /* the scale's floor */
    rt_admit_note_run(&a, 0.05, false, t);
    double f = rt_admit_profile_factor(&a, t);
    ASSERT(f > 0.0499 && f < 0.0501);
    ASSERT(fabs(a.scale - 1.0) < 1e-9 && fabs(a.scale_alone - 1.0) < 1e-9);
    t += 10 * MS;
    rt_admit_note_run(&a, 1.0, false, t); /* as the followed profile says */
    ASSERT(rt_admit_profile_factor(&a, t) == 1.0);

    rt_admit b; /* 3x too slow: the scale covers it */
    rt_admit_init(&b);
    for (int k = 0; k < 8; k++, t += 10 * MS) {
        rt_admit_note_run(&b, 0.33, false, t);
        ASSERT(rt_admit_profile_factor(&b, t) == 1.0);
    }
    ASSERT(fabs(b.scale - 0.33) < 1e-9);

    rt_admit c; /* overlapping runs still slower than a quarter: no change */
    rt_admit_init(&c);
    for (int k = 0; k < 4; k++, t += 10 * MS)
        rt_admit_note_run(&c, 0.05, false, t);
    for (int k = 0; k < 2; k++, t += 10 * MS)
        rt_admit_note_run(&c, 0.5, true, t);
    ASSERT(rt_admit_profile_factor(&c, t) == 1.0);
}

/* ---- the public API over the estimator (what `usher simulate` does) ------------------ */
typedef struct est_ctx {
    usher_estimator *e;
    usher_model *m[2];
} est_ctx;

static int est_profile(void *ctx, uint32_t model, const char *gpu, int64_t batch,
                       double share_pct, usher_profile *out, usher_error *err)
{
    est_ctx *c = ctx;
    usher_estimate_params ep = usher_estimate_default_params();
    ep.gpu = gpu;
    ep.batch = batch;
    ep.share_pct = share_pct;
    return usher_estimate(c->e, c->m[model], &ep, out, err);
}

static int est_device(void *ctx, const char *gpu, double *bw, double *l2, usher_error *err)
{
    return usher_interfere_device(((est_ctx *)ctx)->e, gpu, bw, l2, err);
}

TEST(public_api_on_zoo_models)
{
    usher_error err = {0};
    const char *dir = test_tmpdir();
    char wl[512], plan[512];
    snprintf(wl, sizeof wl, "%s/workload.yaml", dir);
    snprintf(plan, sizeof plan, "%s/plan.json", dir);
    FILE *f = fopen(wl, "w");
    ASSERT(f);
    fprintf(f, "models:\n  - name: r50\n    model: %s\n    rate: 400\n    slo_ms: 60\n"
               "  - name: mnv2\n    model: %s\n    rate: 1500\n    slo_ms: 30\n",
            test_path(test_source_dir(), "models/zoo/resnet50.onnx"),
            test_path(test_source_dir(), "models/zoo/mobilenet-v2.onnx"));
    fclose(f);
    f = fopen(plan, "w");
    ASSERT(f);
    fprintf(f, "{\"schema_version\": 1, \"gpus\": [\n"
               " {\"type\": \"a100-80gb\", \"price_per_hour\": 4, \"replicas\": [\n"
               "  {\"model\": \"r50\", \"batch\": 8, \"share\": 50},\n"
               "  {\"model\": \"mnv2\", \"batch\": 16, \"share\": 50}]}]}\n");
    fclose(f);
    est_ctx c = {0};
    usher_sim_workload *w = NULL;
    usher_sim_report *r = NULL;
    char *json = NULL;
    usher_sim_summary s = {0};
    double bw = 0, l2 = 0;
    int rc_bad = 0;
    int rc = usher_estimator_new(NULL, &c.e, &err);
    if (rc >= 0)
        rc = usher_sim_workload_load(wl, &w, &err);
    for (uint32_t i = 0; rc >= 0 && i < usher_sim_workload_models(w); i++) {
        usher_sim_model_info mi;
        usher_sim_workload_model(w, i, &mi);
        rc = usher_model_load(mi.path, NULL, &c.m[i], &err);
    }
    if (rc >= 0) {
        rc = usher_interfere_device(c.e, "a100-80gb", &bw, &l2, &err);
        rc_bad = usher_interfere_device(c.e, "no-such-gpu", &bw, &l2, &err);
    }
    usher_sim_params p = usher_sim_default_params();
    p.plan = plan;
    p.workload = w;
    p.duration_s = 5;
    p.seed = 11;
    p.profile = est_profile;
    p.device = est_device;
    p.ctx = &c;
    if (rc >= 0)
        rc = usher_sim_run(&p, &r, &err);
    if (rc >= 0)
        rc = usher_sim_report_json(r, &json, &err);
    if (rc >= 0)
        rc = usher_sim_report_summary(r, &s);
    if (json)
        printf("  %llu requests, goodput %.1f/s, %.2f%% within the SLO, %.3g simulated "
               "requests per second\n",
               (unsigned long long)s.requests, s.goodput, s.slo_attainment_pct,
               s.wall_s > 0 ? (double)s.requests / s.wall_s : 0.0);
    bool fields = json && strstr(json, "\"name\": \"r50\"") && strstr(json, "\"p50_ms\"");
    usher_free(json);
    usher_sim_report_free(r);
    usher_sim_workload_free(w);
    usher_model_free(c.m[0]);
    usher_model_free(c.m[1]);
    usher_estimator_free(c.e);
    ASSERT_OK(rc);
    ASSERT(bw > 1000 && l2 > 10);
    ASSERT(rc_bad < 0);
    ASSERT(fields);
    ASSERT(s.requests > 8000 && s.slo_attainment_pct > 50);
}

/* ---- usher simulate ------------------------------------------------------------------- */
static char cli_out[1 << 16], cli_err[8192];

/* run `usher simulate ARGS` (from the test's temporary directory); its exit status, with
 * stdout and stderr in cli_out and cli_err */
static int simulate_cli(const char *args)
{
    char a[4096];
    snprintf(a, sizeof a, "simulate %s", args);
    return test_usher(a, cli_out, sizeof cli_out, cli_err, sizeof cli_err);
}

TEST(cli_simulate_json_and_errors)
{
    char wl[1024];
    snprintf(wl, sizeof wl,
             "models:\n"
             "  - name: r18\n    model: %s\n    rate: 300\n    slo_ms: 40\n"
             "  - name: mnv2\n    model: %s\n    rate: 600\n    slo_ms: 30\n",
             test_path(test_source_dir(), "models/zoo/resnet18.onnx"),
             test_path(test_source_dir(), "models/zoo/mobilenet-v2.onnx"));
    test_write_file("w.yaml", wl);
    test_write_file("p.json", "{\"schema_version\": 1, \"gpus\": [\n"
                         " {\"type\": \"t4\", \"price_per_hour\": 0.5, \"replicas\": [\n"
                         "  {\"model\": \"r18\", \"batch\": 4, \"share\": 50},\n"
                         "  {\"model\": \"mnv2\", \"batch\": 8, \"share\": 50}]}]}\n");
    static char first[sizeof cli_out];
    int rc = simulate_cli("--plan p.json --workload w.yaml --duration 5 --seed 3 --json "
                          "--interval 1");
    if (rc != 0)
        FAIL_("exit %d: %s", rc, cli_err);
    memcpy(first, cli_out, sizeof first);
    ASSERT_CONTAINS(first, "\"slo_attainment_pct\"");
    ASSERT_CONTAINS(first, "\"models\": [");
    ASSERT_CONTAINS(first, "\"name\": \"mnv2\"");
    ASSERT_CONTAINS(first, "\"mean_queue_ms\"");
    ASSERT_CONTAINS(first, "\"series\"");
    ASSERT_EQ_INT(simulate_cli("--plan p.json --workload w.yaml --duration 5 --seed 3 --json "
                               "--interval 1"), 0);
    ASSERT(strcmp(first, cli_out) == 0); /* the same seed: the same bytes */
    ASSERT_EQ_INT(simulate_cli("--plan p.json --workload w.yaml --duration 5 --seed 4 --json "
                               "--interval 1"), 0);
    ASSERT(strcmp(first, cli_out) != 0);
    /* the table */
    ASSERT_EQ_INT(simulate_cli("--plan p.json --workload w.yaml --duration 2 --no-interference"),
                  0);
    ASSERT_CONTAINS(cli_out, "interference off");
    ASSERT_CONTAINS(cli_out, "mnv2");
    ASSERT_CONTAINS(cli_out, "requests per second");

    /* a replica of a model the workload does not have */
    test_write_file("bad1.json", "{\"schema_version\": 1, \"gpus\": [\n"
                            " {\"type\": \"t4\", \"replicas\": [\n"
                            "  {\"model\": \"r18\", \"batch\": 4, \"share\": 50},\n"
                            "  {\"model\": \"vgg\", \"batch\": 8, \"share\": 50}]}]}\n");
    ASSERT_EQ_INT(simulate_cli("--plan bad1.json --workload w.yaml --duration 1"), 1);
    ASSERT_CONTAINS(cli_err, "bad1.json:4: field 'gpus[0].replicas[1].model': model 'vgg' is "
                             "not in w.yaml");
    /* a workload model the plan does not serve */
    test_write_file("bad2.json", "{\"schema_version\": 1, \"gpus\": [\n"
                            " {\"type\": \"t4\", \"replicas\": [\n"
                            "  {\"model\": \"r18\", \"batch\": 4, \"share\": 50}]}]}\n");
    ASSERT_EQ_INT(simulate_cli("--plan bad2.json --workload w.yaml --duration 1"), 1);
    ASSERT_CONTAINS(cli_err, "w.yaml:6: field 'models[1].name': model 'mnv2' is not in bad2.json");
    /* a GPU type the catalog does not know */
    test_write_file("bad3.json", "{\"schema_version\": 1, \"gpus\": [\n"
                            " {\"type\": \"t5\", \"replicas\": [\n"
                            "  {\"model\": \"r18\", \"batch\": 4, \"share\": 50},\n"
                            "  {\"model\": \"mnv2\", \"batch\": 8, \"share\": 50}]}]}\n");
    ASSERT_EQ_INT(simulate_cli("--plan bad3.json --workload w.yaml --duration 1"), 1);
    ASSERT_CONTAINS(cli_err, "bad3.json:2: field 'gpus[0].type'");
    ASSERT_CONTAINS(cli_err, "t5");
    /* a malformed plan: the reader's line and field */
    test_write_file("bad4.json", "{\"schema_version\": 1, \"gpus\": [\n"
                            " {\"type\": \"t4\", \"replicas\": [\n"
                            "  {\"model\": \"r18\", \"batch\": 0, \"share\": 50}]}]}\n");
    ASSERT_EQ_INT(simulate_cli("--plan bad4.json --workload w.yaml --duration 1"), 1);
    ASSERT_CONTAINS(cli_err, "bad4.json:3: field 'gpus[0].replicas[0].batch'");
    /* a workload model whose file is missing */
    test_write_file("w2.yaml", "models:\n  - name: r18\n    model: nothere.onnx\n    rate: 3\n"
                          "    slo_ms: 40\n");
    ASSERT_EQ_INT(simulate_cli("--plan bad2.json --workload w2.yaml --duration 1"), 1);
    ASSERT_CONTAINS(cli_err, "w2.yaml:2: field 'models[0].model'");
    /* a bad workload field */
    test_write_file("w3.yaml", "models:\n  - name: r18\n    model: x.onnx\n    rate: fast\n"
                          "    slo_ms: 40\n");
    ASSERT_EQ_INT(simulate_cli("--plan bad2.json --workload w3.yaml"), 1);
    ASSERT_CONTAINS(cli_err, "w3.yaml:4: field 'models[0].rate'");
    /* service-time variance: said in the JSON and the table, the same arrivals */
    ASSERT_EQ_INT(simulate_cli("--plan p.json --workload w.yaml --duration 5 --seed 3 --json "
                               "--interval 1 --service-cv 0.5"), 0);
    ASSERT_CONTAINS(cli_out, "\"service_cv\": 0.5");
    ASSERT(strstr(first, "service_cv") == NULL);
    ASSERT_EQ_INT(simulate_cli("--plan p.json --workload w.yaml --duration 2 --service-cv 2"), 0);
    ASSERT_CONTAINS(cli_out, "lognormal around the profiled ones, CV 2");
    ASSERT_EQ_INT(simulate_cli("--plan p.json --workload w.yaml --service-cv 11"), 2);
    /* usage */
    ASSERT_EQ_INT(simulate_cli("--workload w.yaml"), 2);
    ASSERT_EQ_INT(simulate_cli("--plan p.json --workload w.yaml --duration -1"), 2);
    ASSERT_EQ_INT(simulate_cli("--plan p.json --workload w.yaml --bogus"), 2);
}

TEST_MAIN(TEST_ENTRY(md1_waiting_time_within_2pct), TEST_ENTRY(service_time_variance),
          TEST_ENTRY(batching_and_admission_by_hand),
          TEST_ENTRY(same_seed_same_bytes), TEST_ENTRY(interference_slows_colocated_replicas),
          TEST_ENTRY(histogram_error_bound), TEST_ENTRY(plan_must_match_workload),
          TEST_ENTRY(workload_file_as_the_planner_reads_it),
          TEST_ENTRY(admission_scale_alone_and_shared), TEST_ENTRY(admission_probe_of_a_refusing_profile),
          TEST_ENTRY(admission_margin_counts_a_stall_once),
          TEST_ENTRY(admission_profile_follows_runs),
          TEST_ENTRY(admission_scale_is_the_second_largest_in_window),
          TEST_ENTRY(public_api_on_zoo_models), TEST_ENTRY(cli_simulate_json_and_errors))
