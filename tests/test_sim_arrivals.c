/*
 * test_sim_arrivals.c - the simulator's arrival options end to end, through
 * the public API (include/usher/sim.h) and `usher simulate`: every kind
 * (Poisson, Gamma CV, diurnal, Azure-shaped, Zipf rates, an Azure Functions
 * trace, recorded arrivals) runs a plan and gives the same JSON bytes for
 * the same seed; a handmade Azure trace and a handmade arrivals file give
 * exact request counts per model; Zipf splits the total as k^-s; bad
 * arrivals are refused naming the file, line and field (or the parameter);
 * the measured-profile table (--profile) reads, interpolates and refuses
 * with its line; and the command line's options, help and usage errors.
 */
#include <math.h>
#include <sys/wait.h>

#include "sim/workload.h"
#include "test.h"
#include "usher/sim.h"

/* ---- a two-model plan with fixed profiles ---------------------------------------------- */
/* latency(b) = 2 + 0.5 b ms for model 0, 3 + 1 b ms for model 1; 80% of it on the GPU */
static int prof_fn(void *ctx, uint32_t model, const char *gpu, int64_t batch, double share_pct,
                   usher_profile *out, usher_error *err)
{
    (void)ctx, (void)err;
    memset(out, 0, sizeof *out);
    double lat = model == 0 ? 2 + 0.5 * (double)batch : 3 + 1.0 * (double)batch;
    out->batch = batch;
    out->share_pct = share_pct;
    out->latency_ms = lat;
    out->gpu_ms = 0.8 * lat;
    out->compute_ms = 0.5 * lat;
    out->mem_bound_ms = 0.3 * lat;
    out->dram_mb = 40.0 * (double)batch;
    out->l2_working_set_mb = 8;
    snprintf(out->gpu, sizeof out->gpu, "%s", gpu);
    return USHER_OK;
}

static int dev_fn(void *ctx, const char *gpu, double *bw, double *l2, usher_error *err)
{
    (void)ctx, (void)gpu, (void)err;
    *bw = 900;
    *l2 = 40;
    return USHER_OK;
}

static char g_wl[512], g_plan[512], g_w3[512];

static const char *tmp(const char *name)
{
    static char b[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(b[k], sizeof b[k], "%s/%s", test_tmpdir(), name);
    return b[k];
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void fixtures(void)
{
    snprintf(g_wl, sizeof g_wl, "%s", tmp("w.yaml"));
    snprintf(g_plan, sizeof g_plan, "%s", tmp("p.json"));
    snprintf(g_w3, sizeof g_w3, "%s", tmp("w3.yaml"));
    put(g_wl, "models:\n"
              "  - name: a\n    model: a.onnx\n    rate: 100\n    slo_ms: 200\n"
              "  - name: b\n    model: b.onnx\n    rate: 50\n    slo_ms: 200\n");
    put(g_plan, "{\"schema_version\": 1, \"gpus\": [\n"
                " {\"type\": \"t4\", \"price_per_hour\": 0.5, \"replicas\": [\n"
                "  {\"model\": \"a\", \"batch\": 8, \"share\": 50},\n"
                "  {\"model\": \"b\", \"batch\": 8, \"share\": 50}]}]}\n");
    /* three models of one GPU each, for Zipf */
    put(g_w3, "models:\n"
              "  - name: a\n    model: a.onnx\n    rate: 100\n    slo_ms: 500\n"
              "  - name: b\n    model: b.onnx\n    rate: 100\n    slo_ms: 500\n"
              "  - name: c\n    model: a.onnx\n    rate: 100\n    slo_ms: 500\n");
}

static const char *plan3(void)
{
    const char *p = tmp("p3.json");
    put(p, "{\"schema_version\": 1, \"gpus\": [\n"
           " {\"type\": \"t4\", \"replicas\": [{\"model\": \"a\", \"batch\": 8, \"share\": 100}]},\n"
           " {\"type\": \"t4\", \"replicas\": [{\"model\": \"b\", \"batch\": 8, \"share\": 100}]},\n"
           " {\"type\": \"t4\", \"replicas\": [{\"model\": \"c\", \"batch\": 8, \"share\": 100}]}]}\n");
    return p;
}

/* Run the plan under workload wl with params *q (plan, workload, callbacks filled here);
 * the report's JSON in *json (usher_free) and the report itself in *rep when asked. */
static int run(const char *plan, const char *wl, usher_sim_params q, char **json,
               usher_sim_report **rep, usher_error *err)
{
    usher_sim_workload *w = NULL;
    usher_sim_report *r = NULL;
    *json = NULL;
    int rc = usher_sim_workload_load(wl, &w, err);
    if (rc < 0)
        return rc;
    q.plan = plan;
    q.workload = w;
    q.profile = prof_fn;
    q.device = dev_fn;
    rc = usher_sim_run(&q, &r, err);
    if (rc >= 0)
        rc = usher_sim_report_json(r, json, err);
    if (rep && rc >= 0)
        *rep = r;
    else
        usher_sim_report_free(r);
    usher_sim_workload_free(w);
    return rc;
}

static uint64_t model_requests(const usher_sim_report *r, uint32_t i)
{
    usher_sim_model_summary m = {0};
    return usher_sim_report_model(r, i, &m) == 0 ? m.requests : UINT64_MAX;
}

/* the handmade Azure trace of test_sim_workload (TRACE3): 5 functions, 3 minutes, 90
 * invocations; f3 has none. Stripe over 2 models: f1, f4 -> a; f2, f5 -> b */
static const char TRACE3[] = "HashOwner,HashApp,HashFunction,Trigger,1,2,3\n"
                             "o1,a1,f1,http,10,0,25\n"
                             "o1,a1,f2,timer,1,1,1\n"
                             "o2,a2,f3,queue,0,0,0\n"
                             "o2,a2,f4,event,40,3,0\n"
                             "o3,a3,f5,http,0,7,2\n";

/* recorded arrivals as usher load writes and reads them: unsorted, a comment, a blank
 * line, a CRLF end; 5 for a, 3 for b; the last at 2.5 s */
static const char LINES[] = "# time_s model\n"
                            "0.5 a\n"
                            "0.1 b\n"
                            "\n"
                            "1.25 a\r\n"
                            "  0.75\tb\n"
                            "2.5 a\n"
                            "1.0000004 a\n"
                            "2 b\n"
                            "0.2 a\n";

/* ---- every kind: end to end, the same seed the same bytes --------------------------------- */
TEST(every_kind_same_seed_same_bytes)
{
    fixtures();
    const char *trace = tmp("t.csv"), *lines = tmp("arr.txt");
    put(trace, TRACE3);
    put(lines, LINES);
    static const char *traces[1];
    traces[0] = trace;
    struct {
        const char *name;
        usher_sim_arrival_spec a;
        double duration_s, rate_scale;
        bool seeded; /* another seed gives other bytes */
    } kinds[9];
    memset(kinds, 0, sizeof kinds);
    usher_sim_arrival_spec d = usher_sim_default_params().arrivals;
    int n = 0;
    kinds[n].name = "poisson", kinds[n].a = d, kinds[n].duration_s = 10, kinds[n++].seeded = true;
    kinds[n].name = "gamma:4", kinds[n].a = d, kinds[n].a.kind = USHER_SIM_ARRIVALS_GAMMA;
    kinds[n].a.cv = 4, kinds[n].duration_s = 10, kinds[n++].seeded = true;
    kinds[n].name = "diurnal:4:0.8", kinds[n].a = d, kinds[n].a.kind = USHER_SIM_ARRIVALS_DIURNAL;
    kinds[n].a.period_s = 4, kinds[n].a.amplitude = 0.8, kinds[n].duration_s = 10;
    kinds[n++].seeded = true;
    kinds[n].name = "azure-synth", kinds[n].a = d;
    kinds[n].a.kind = USHER_SIM_ARRIVALS_AZURE_SYNTH, kinds[n].duration_s = 10;
    kinds[n++].seeded = true;
    kinds[n].name = "zipf 1.5 (poisson)", kinds[n].a = d, kinds[n].a.zipf_s = 1.5;
    kinds[n].duration_s = 10, kinds[n++].seeded = true;
    kinds[n].name = "zipf 0.9 (gamma:2)", kinds[n].a = d, kinds[n].a.zipf_s = 0.9;
    kinds[n].a.kind = USHER_SIM_ARRIVALS_GAMMA, kinds[n].a.cv = 2, kinds[n].duration_s = 10;
    kinds[n++].seeded = true;
    kinds[n].name = "trace", kinds[n].a = d, kinds[n].a.kind = USHER_SIM_ARRIVALS_AZURE_TRACE;
    kinds[n].a.trace = traces, kinds[n].a.n_trace = 1, kinds[n++].seeded = true;
    kinds[n].name = "trace x2 (Poisson replay)", kinds[n].a = kinds[n - 1].a;
    kinds[n].rate_scale = 2, kinds[n++].seeded = true;
    kinds[n].name = "arrivals file", kinds[n].a = d, kinds[n].a.kind = USHER_SIM_ARRIVALS_FILE;
    kinds[n].a.file = lines, kinds[n++].seeded = false;
    for (int k = 0; k < n; k++) {
        usher_error err = {0};
        char *j[3] = {NULL, NULL, NULL};
        uint64_t seeds[3] = {5, 5, 6};
        int rc = 0;
        usher_sim_report *r = NULL;
        for (int s = 0; s < 3 && rc >= 0; s++) {
            usher_sim_params q = usher_sim_default_params();
            q.arrivals = kinds[k].a;
            q.duration_s = kinds[k].duration_s;
            q.rate_scale = kinds[k].rate_scale > 0 ? kinds[k].rate_scale : 1;
            q.seed = seeds[s];
            q.interval_s = 1;
            rc = run(g_plan, g_wl, q, &j[s], s == 0 ? &r : NULL, &err);
        }
        usher_sim_summary sum = {0};
        if (rc >= 0)
            usher_sim_report_summary(r, &sum);
        bool same = rc >= 0 && strcmp(j[0], j[1]) == 0;
        char *seed6 = rc >= 0 ? strstr(j[2], "\"seed\": 6,") : NULL;
        if (seed6) /* the seed itself is in the report: compare the rest */
            seed6[8] = '5';
        bool other = rc >= 0 && strcmp(j[0], j[2]) != 0;
        usher_sim_report_free(r);
        for (int s = 0; s < 3; s++)
            usher_free(j[s]);
        if (rc < 0)
            FAIL_("%s: %s", kinds[k].name, err.msg);
        printf("  %-26s %6llu requests in %g s, goodput %.1f/s\n", kinds[k].name,
               (unsigned long long)sum.requests, sum.duration_s, sum.goodput);
        if (!same)
            FAIL_("%s: the same seed gave other bytes", kinds[k].name);
        if (kinds[k].seeded && !other)
            FAIL_("%s: seeds 5 and 6 gave the same bytes", kinds[k].name);
        if (!kinds[k].seeded && other)
            FAIL_("%s: recorded arrivals changed with the seed", kinds[k].name);
        if (sum.requests == 0 || sum.served == 0)
            FAIL_("%s: nothing ran", kinds[k].name);
    }
}

/* ---- the rates each kind offers -------------------------------------------------------- */
TEST(rates_of_each_kind)
{
    fixtures();
    usher_error err = {0};
    char *j = NULL;
    usher_sim_report *r = NULL;
    /* Poisson, Gamma CV 3 and diurnal over whole periods: a's 100/s and b's 50/s over 40 s
     * (4,000 and 2,000 expected). Poisson within 5 sigma; Gamma's counts vary CV^2 times
     * more (renewal-process variance) and the diurnal cycle is whole: 5 sigma of each */
    struct {
        usher_sim_arrivals kind;
        double cv2;
    } ks[3] = {{USHER_SIM_ARRIVALS_POISSON, 1}, {USHER_SIM_ARRIVALS_GAMMA, 9},
               {USHER_SIM_ARRIVALS_DIURNAL, 1}};
    for (int k = 0; k < 3; k++) {
        usher_sim_params q = usher_sim_default_params();
        q.arrivals.kind = ks[k].kind;
        q.arrivals.cv = 3;
        q.arrivals.period_s = 10;
        q.arrivals.amplitude = 1;
        q.duration_s = 40;
        q.seed = 3;
        ASSERT_OK(run(g_plan, g_wl, q, &j, &r, &err));
        for (uint32_t i = 0; i < 2; i++) {
            double want = (i == 0 ? 100.0 : 50.0) * 40, got = (double)model_requests(r, i);
            if (fabs(got - want) > 5 * sqrt(want * ks[k].cv2))
                FAIL_("kind %d model %u: %g arrivals, %g expected", (int)ks[k].kind, i, got,
                      want);
            usher_sim_model_summary m;
            usher_sim_report_model(r, i, &m);
            ASSERT(m.rate == (i == 0 ? 100.0 : 50.0)); /* the offered mean */
        }
        usher_free(j);
        usher_sim_report_free(r);
        r = NULL;
    }
    /* a diurnal cycle has its shape: with amplitude 1 and a 40 s period, the first half
     * (sin > 0) gets about 1 + 2/pi of the mean and the second 1 - 2/pi; per interval */
    {
        usher_sim_params q = usher_sim_default_params();
        q.arrivals.kind = USHER_SIM_ARRIVALS_DIURNAL;
        q.arrivals.period_s = 40;
        q.arrivals.amplitude = 1;
        q.duration_s = 40;
        q.interval_s = 20;
        ASSERT_OK(run(g_plan, g_wl, q, &j, NULL, &err));
        /* the series' goodput per interval (every request is good here) */
        const char *s = strstr(j, "\"series\"");
        s = s ? strstr(s, "\"goodput\": [") : NULL;
        double g0 = 0, g1 = 0;
        bool ok = s && sscanf(s, "\"goodput\": [%lf, %lf]", &g0, &g1) == 2;
        if (!ok) /* the JSON writer may break lines in arrays */
            ok = s && sscanf(s, "\"goodput\": [ %lf , %lf ]", &g0, &g1) == 2;
        usher_free(j);
        if (!ok)
            FAIL_("no series in the report");
        printf("  diurnal amplitude 1: model a %.1f/s in the first half, %.1f/s in the second "
               "(%.1f and %.1f expected)\n", g0, g1, 100 * (1 + 2 / M_PI), 100 * (1 - 2 / M_PI));
        ASSERT(fabs(g0 - 100 * (1 + 2 / M_PI)) < 5 * sqrt(163.7 / 20));
        ASSERT(fabs(g1 - 100 * (1 - 2 / M_PI)) < 5 * sqrt(36.3 / 20) + 1);
    }
    /* Zipf 1 over three models: the total 300/s split as 1 : 1/2 : 1/3 (ranks by the seed) */
    {
        usher_sim_params q = usher_sim_default_params();
        q.arrivals.zipf_s = 1;
        q.duration_s = 20;
        ASSERT_OK(run(plan3(), g_w3, q, &j, &r, &err));
        double rate[3], sum = 0;
        for (uint32_t i = 0; i < 3; i++) {
            usher_sim_model_summary m;
            ASSERT_EQ_INT(usher_sim_report_model(r, i, &m), 0);
            rate[i] = m.rate;
            sum += m.rate;
            double want = m.rate * 20;
            if (fabs((double)m.requests - want) > 5 * sqrt(want))
                FAIL_("zipf: model %u: %llu arrivals at %g/s", i,
                      (unsigned long long)m.requests, m.rate);
        }
        usher_free(j);
        usher_sim_report_free(r);
        r = NULL;
        double h = 1 + 0.5 + 1.0 / 3;
        double want[3] = {300 / h, 150 / h, 100 / h};
        for (int k = 0; k < 3; k++) { /* each share once, in some order */
            int hits = 0;
            for (int i = 0; i < 3; i++)
                hits += fabs(rate[i] - want[k]) < 1e-6;
            ASSERT_EQ_INT(hits, 1);
        }
        ASSERT(fabs(sum - 300) < 1e-9);
    }
    /* azure-synth: the workload's total (150/s) over its functions; the report's rates are
     * what came (arrivals over the duration) */
    {
        usher_sim_params q = usher_sim_default_params();
        q.arrivals.kind = USHER_SIM_ARRIVALS_AZURE_SYNTH;
        q.duration_s = 30;
        ASSERT_OK(run(g_plan, g_wl, q, &j, &r, &err));
        usher_free(j);
        for (uint32_t i = 0; i < 2; i++) {
            usher_sim_model_summary m;
            usher_sim_report_model(r, i, &m);
            ASSERT(fabs(m.rate - (double)m.requests / 30) < 1e-9);
        }
        usher_sim_report_free(r);
        r = NULL;
    }
}

/* ---- a handmade Azure trace: exact counts per model ------------------------------------ */
static void trace_counts(usher_sim_trace_map map, uint64_t start, uint64_t minutes,
                         uint64_t want_a, uint64_t want_b, double want_s)
{
    usher_error err = {0};
    static const char *paths[1];
    paths[0] = tmp("t.csv");
    put(paths[0], TRACE3);
    usher_sim_params q = usher_sim_default_params();
    q.arrivals.kind = USHER_SIM_ARRIVALS_AZURE_TRACE;
    q.arrivals.trace = paths;
    q.arrivals.n_trace = 1;
    q.arrivals.trace_map = map;
    q.arrivals.trace_start_minute = start;
    q.arrivals.trace_minutes = minutes;
    q.duration_s = 0; /* the slice's length */
    char *j = NULL;
    usher_sim_report *r = NULL;
    ASSERT_OK(run(g_plan, g_wl, q, &j, &r, &err));
    usher_free(j);
    usher_sim_summary s;
    usher_sim_report_summary(r, &s);
    uint64_t a = model_requests(r, 0), b = model_requests(r, 1);
    usher_sim_model_summary ma;
    usher_sim_report_model(r, 0, &ma);
    usher_sim_report_free(r);
    ASSERT_EQ_U64(a, want_a);
    ASSERT_EQ_U64(b, want_b);
    ASSERT(s.duration_s == want_s);
    ASSERT_EQ_U64(s.served, want_a + want_b); /* nothing refused at this load */
    ASSERT(fabs(ma.rate - (double)want_a / want_s) < 1e-9);
}

TEST(azure_trace_exact_counts)
{
    fixtures();
    /* stripe: a = f1 + f4 = 35 + 43, b = f2 + f5 = 3 + 9, over 3 minutes */
    trace_counts(USHER_SIM_MAP_STRIPE, 0, 0, 78, 12, 180);
    /* block: a = f1 + f2 = 35 + 3, b = f4 + f5 = 43 + 9 */
    trace_counts(USHER_SIM_MAP_BLOCK, 0, 0, 38, 52, 180);
    /* minutes 1..2 (--trace-minutes 1:3), stripe: f1 (25), f2 (2), f4 (3), f5 (9) all used */
    trace_counts(USHER_SIM_MAP_STRIPE, 1, 2, 28, 11, 120);
    /* from minute 2 to the end: f1 -> a (25), f2 -> b (1), f5 -> a (2) */
    trace_counts(USHER_SIM_MAP_STRIPE, 2, 0, 27, 1, 60);
    /* hash: each function whole on one model; the total kept */
    usher_error err = {0};
    static const char *paths[1];
    paths[0] = tmp("t.csv");
    usher_sim_params q = usher_sim_default_params();
    q.arrivals.kind = USHER_SIM_ARRIVALS_AZURE_TRACE;
    q.arrivals.trace = paths;
    q.arrivals.n_trace = 1;
    q.arrivals.trace_map = USHER_SIM_MAP_HASH;
    q.duration_s = 0;
    char *j = NULL;
    usher_sim_report *r = NULL;
    ASSERT_OK(run(g_plan, g_wl, q, &j, &r, &err));
    usher_free(j);
    uint64_t tot = model_requests(r, 0) + model_requests(r, 1);
    usher_sim_report_free(r);
    ASSERT_EQ_U64(tot, 90);
    /* a duration shorter than the trace cuts it: the first minute only (a: 10 + 40) */
    q.arrivals.trace_map = USHER_SIM_MAP_STRIPE;
    q.duration_s = 60;
    ASSERT_OK(run(g_plan, g_wl, q, &j, &r, &err));
    usher_free(j);
    ASSERT_EQ_U64(model_requests(r, 0), 50);
    ASSERT_EQ_U64(model_requests(r, 1), 1);
    usher_sim_report_free(r);
}

/* ---- recorded arrivals: exact counts, times and duration ------------------------------ */
TEST(arrivals_file_exact)
{
    fixtures();
    usher_error err = {0};
    const char *f = tmp("arr.txt");
    put(f, LINES);
    usher_sim_params q = usher_sim_default_params();
    q.arrivals.kind = USHER_SIM_ARRIVALS_FILE;
    q.arrivals.file = f;
    q.duration_s = 0; /* the last arrival + 1 us, as usher load takes it */
    char *j = NULL;
    usher_sim_report *r = NULL;
    ASSERT_OK(run(g_plan, g_wl, q, &j, &r, &err));
    usher_free(j);
    usher_sim_summary s;
    usher_sim_report_summary(r, &s);
    usher_sim_model_summary a, b;
    usher_sim_report_model(r, 0, &a);
    usher_sim_report_model(r, 1, &b);
    usher_sim_report_free(r);
    ASSERT_EQ_U64(a.requests, 5);
    ASSERT_EQ_U64(b.requests, 3);
    ASSERT(s.duration_s == 2.500001);
    ASSERT_EQ_U64(s.served, 8);
    ASSERT(fabs(a.rate - 5 / 2.500001) < 1e-9);
    /* every request alone (the gaps are longer than a batch): a's latency is its batch-1
     * time exactly, 2.5 ms, within the histogram's 0.78% */
    ASSERT(fabs(a.p50_ms - 2.5) <= 2.5 * 0.0079 && fabs(a.mean_ms - 2.5) < 1e-9);
    ASSERT(fabs(b.mean_ms - 4.0) < 1e-9);
    /* a duration cuts the file: arrivals before 1 s: a at 0.2, 0.5; b at 0.1, 0.75 */
    q.duration_s = 1;
    ASSERT_OK(run(g_plan, g_wl, q, &j, &r, &err));
    usher_free(j);
    ASSERT_EQ_U64(model_requests(r, 0), 2);
    ASSERT_EQ_U64(model_requests(r, 1), 2);
    usher_sim_report_free(r);
    /* two arrivals at one instant form one batch: a at 0.5 s twice */
    put(f, "0.5 a\n0.5 a\n");
    q.duration_s = 0;
    ASSERT_OK(run(g_plan, g_wl, q, &j, &r, &err));
    usher_free(j);
    usher_sim_report_model(r, 0, &a);
    usher_sim_report_free(r);
    ASSERT_EQ_U64(a.requests, 2);
    ASSERT(a.mean_ms > 2.5 - 1e-9); /* the first alone (2.5 ms), then 2.5 + 2.5 or both 3 */
}

/* ---- bad arrivals: named ------------------------------------------------------------------ */
static void expect_err(usher_sim_params q, const char *want1, const char *want2)
{
    usher_error err = {0};
    char *j = NULL;
    usher_sim_report *r = NULL;
    int rc = run(g_plan, g_wl, q, &j, &r, &err);
    usher_free(j);
    usher_sim_report_free(r);
    if (rc >= 0)
        FAIL_("accepted; expected '%s'", want1);
    ASSERT_CONTAINS(err.msg, want1);
    if (want2)
        ASSERT_CONTAINS(err.msg, want2);
}

TEST(bad_arrivals_named)
{
    fixtures();
    usher_sim_params q = usher_sim_default_params();
    q.duration_s = 5;
    usher_sim_params g = q;
    g.arrivals.kind = USHER_SIM_ARRIVALS_GAMMA;
    g.arrivals.cv = 101;
    expect_err(g, "gamma arrivals: CV 101 must be in [0, 100]", NULL);
    usher_sim_params dd = q;
    dd.arrivals.kind = USHER_SIM_ARRIVALS_DIURNAL;
    dd.arrivals.amplitude = 1.5;
    expect_err(dd, "diurnal arrivals: amplitude 1.5 must be in [0, 1]", NULL);
    dd.arrivals.amplitude = 0.5;
    dd.arrivals.period_s = 0;
    expect_err(dd, "diurnal arrivals: period 0 s", NULL);
    usher_sim_params z = q;
    z.arrivals.zipf_s = 11;
    expect_err(z, "Zipf exponent 11 must be in [0, 10]", NULL);
    z.arrivals.zipf_s = 1;
    z.arrivals.kind = USHER_SIM_ARRIVALS_AZURE_SYNTH;
    expect_err(z, "Zipf rates apply to Poisson, gamma and diurnal arrivals", "azure-synth");

    /* a malformed trace: the importer's file, line and field */
    static const char *paths[1];
    paths[0] = tmp("bad.csv");
    put(paths[0], "HashOwner,HashApp,HashFunction,Trigger,1,2\n"
                  "o,a,f,http,1,2\n"
                  "o,a,g,http,3,x\n");
    usher_sim_params t = q;
    t.arrivals.kind = USHER_SIM_ARRIVALS_AZURE_TRACE;
    t.arrivals.trace = paths;
    t.arrivals.n_trace = 1;
    expect_err(t, "bad.csv:3: field 6 (minute 2): 'x' is not a count", NULL);
    put(paths[0], "HashOwner,HashApp,Hashfunction,Trigger,1\no,a,f,http,1\n");
    expect_err(t, "bad.csv:1: header field 3 is 'Hashfunction', expected 'HashFunction'", NULL);
    paths[0] = tmp("nothere.csv");
    expect_err(t, "nothere.csv", "No such file");
    /* a slice past the trace's end */
    paths[0] = tmp("t.csv");
    put(paths[0], TRACE3);
    t.arrivals.trace_start_minute = 3;
    t.duration_s = 0;
    expect_err(t, "start_minute 3 is past the trace's 3 minutes", NULL);
    t.arrivals.trace_start_minute = 2;
    t.arrivals.trace_minutes = 3;
    expect_err(t, "Azure trace arrivals: minutes 2 to 4 asked for, the trace", "t.csv has 3 "
               "minutes (0 to 2)");
    t.arrivals.trace_start_minute = 0;
    t.arrivals.trace_minutes = 0;
    t.arrivals.zipf_s = 1;
    expect_err(t, "Zipf rates apply to Poisson, gamma and diurnal arrivals", "trace");

    /* recorded arrivals: file, line and field */
    const char *f = tmp("bad.txt");
    usher_sim_params l = q;
    l.arrivals.kind = USHER_SIM_ARRIVALS_FILE;
    l.arrivals.file = f;
    put(f, "0.1 a\n0.2 c\n");
    expect_err(l, "bad.txt:2: field 2 (model): 'c' is not a model of", "w.yaml");
    put(f, "0.1 a\n# x\n-1 b\n");
    expect_err(l, "bad.txt:3: field 1 (time_s): '-1' is not a time in seconds", NULL);
    put(f, "0.1 a\n0x10 b\n");
    expect_err(l, "bad.txt:2: field 1 (time_s): '0x10'", NULL);
    put(f, "0.1 a\n0.3\n");
    expect_err(l, "bad.txt:2: field 2 (model): missing", NULL);
    put(f, "0.1 a b\n");
    expect_err(l, "bad.txt:1: field 3: 'b': a line has two fields", NULL);
    put(f, "# nothing\n\n");
    expect_err(l, "bad.txt: no arrivals", NULL);
    l.rate_scale = 2;
    put(f, "0.1 a\n");
    expect_err(l, "recorded arrivals are replayed as they are", NULL);
    l.rate_scale = 1;
    l.arrivals.file = tmp("missing.txt");
    expect_err(l, "missing.txt", NULL);
    /* an interval longer than a file's length */
    l.arrivals.file = f;
    l.duration_s = 0;
    l.interval_s = 5;
    expect_err(l, "interval 5 s: longer than the duration 0.100001 s", NULL);
}

/* ---- the measured-profile table ----------------------------------------------------------- */
TEST(profile_table_reads_and_interpolates)
{
    fixtures();
    usher_error err = {0};
    usher_sim_workload *w = NULL;
    usher_sim_profile_table *t = NULL;
    usher_profile pr;
    ASSERT_OK(usher_sim_workload_load(g_wl, &w, &err));
    const char *f = tmp("prof.csv");
    /* columns in another order, blanks, a comment, a row for one GPU type only */
    put(f, "# measured\n"
           "batch, model ,latency_ms,gpu\n"
           "1,a,2.0,\n"
           "4,a,5.0,\n"
           "8,a,9.0,\n"
           "1,b,3.5,\n"
           "2,b,4.5,\n"
           "1,b,10,t4\n"
           "2,b,12,t4\n");
    ASSERT_OK(usher_sim_profile_table_load(f, w, &t, &err));
    ASSERT(!usher_sim_profile_table_has_gpu_fields(t));
    ASSERT_OK(usher_sim_profile_table_fn(t, 0, "a100-80gb", 4, 50, &pr, &err));
    ASSERT(pr.latency_ms == 5.0 && pr.batch == 4 && pr.share_pct == 50);
    ASSERT_OK(usher_sim_profile_table_fn(t, 0, "a100-80gb", 2, 50, &pr, &err));
    ASSERT(fabs(pr.latency_ms - 3.0) < 1e-12); /* between 1 and 4 */
    ASSERT_OK(usher_sim_profile_table_fn(t, 0, "t4", 6, 50, &pr, &err));
    ASSERT(fabs(pr.latency_ms - 7.0) < 1e-12); /* no a rows for t4: the rows for any */
    ASSERT_OK(usher_sim_profile_table_fn(t, 1, "t4", 2, 100, &pr, &err));
    ASSERT(pr.latency_ms == 12); /* t4's own row */
    ASSERT_OK(usher_sim_profile_table_fn(t, 1, "v100-16gb", 2, 100, &pr, &err));
    ASSERT(pr.latency_ms == 4.5);
    ASSERT(usher_sim_profile_table_fn(t, 0, "t4", 9, 50, &pr, &err) < 0);
    ASSERT_CONTAINS(err.msg, "prof.csv: model 'a': no latency at batch 9 (the file gives batch 1 "
                             "to 8");
    usher_sim_profile_table_free(t);
    t = NULL;
    /* the interference fields, all five */
    put(f, "model,batch,latency_ms,gpu_ms,compute_ms,mem_bound_ms,dram_mb,l2_working_set_mb\n"
           "a,1,2,1.5,1,0.5,30,4\n"
           "a,3,4,3.5,2,1.5,90,4\n"
           "b,1,2,1.5,1,0.5,30,4\n");
    ASSERT_OK(usher_sim_profile_table_load(f, w, &t, &err));
    ASSERT(usher_sim_profile_table_has_gpu_fields(t));
    ASSERT_OK(usher_sim_profile_table_fn(t, 0, "t4", 2, 50, &pr, &err));
    ASSERT(pr.latency_ms == 3 && pr.gpu_ms == 2.5 && pr.dram_mb == 60 &&
           pr.l2_working_set_mb == 4 && pr.mem_bound_ms == 1);
    usher_sim_profile_table_free(t);
    t = NULL;
    /* refusals, each with its line and field */
    struct {
        const char *text, *want;
    } bad[] = {
        {"model,batch\na,1\n", "prof.csv:1: the header has no column 'latency_ms'"},
        {"model,batch,latency_ms,speed\n", "prof.csv:1: header field 4: unknown column 'speed'"},
        {"model,batch,latency_ms,batch\n", "prof.csv:1: header field 4: column 'batch' twice"},
        {"model,batch,latency_ms,gpu_ms\n", "prof.csv:1: the interference fields"},
        {"model,batch,latency_ms\na,1,2\nz,1,2\n",
         "prof.csv:3: field 1 (model): 'z' is not a model of the workload"},
        {"model,batch,latency_ms\na,0,2\n",
         "prof.csv:2: field 2 (batch): '0' is not an integer from 1 to 65536"},
        {"model,batch,latency_ms\na,1.5,2\n", "prof.csv:2: field 2 (batch): '1.5'"},
        {"model,batch,latency_ms\na,1,-2\n",
         "prof.csv:2: field 3 (latency_ms): '-2' is not a positive number"},
        {"model,batch,latency_ms\na,1,nan\n", "prof.csv:2: field 3 (latency_ms): 'nan'"},
        {"model,batch,latency_ms\na,1\n", "prof.csv:2: 2 fields, the header has 3"},
        {"model,batch,latency_ms\na,2,2\nb,1,1\na,2,3\n",
         "prof.csv:4: model 'a' batch 2 is given on line 2 already"},
        {"# only\n", "prof.csv: no header"},
        {"model,batch,latency_ms\n", "prof.csv: no rows after the header"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put(f, bad[i].text);
        int rc = usher_sim_profile_table_load(f, w, &t, &err);
        usher_sim_profile_table_free(t);
        t = NULL;
        if (rc >= 0)
            FAIL_("accepted: %s", bad[i].text);
        ASSERT_CONTAINS(err.msg, bad[i].want);
    }
    ASSERT(usher_sim_profile_table_load(tmp("none.csv"), w, &t, &err) < 0);
    ASSERT_CONTAINS(err.msg, "none.csv");
    usher_sim_workload_free(w);
}

/* ---- usher simulate ------------------------------------------------------------------------- */
static char cli_out[1 << 16], cli_err[8192];

static int cli(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' simulate %s > out.txt 2> err.txt", test_tmpdir(),
             getenv("USHER_BIN"), args);
    int st = system(cmd);
    const char *files[2] = {"out.txt", "err.txt"};
    char *bufs[2] = {cli_out, cli_err};
    size_t caps[2] = {sizeof cli_out, sizeof cli_err};
    for (int k = 0; k < 2; k++) {
        bufs[k][0] = 0;
        FILE *f = fopen(tmp(files[k]), "r");
        if (f) {
            size_t n = fread(bufs[k], 1, caps[k] - 1, f);
            bufs[k][n] = 0;
            fclose(f);
        }
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(cli_arrival_options)
{
    fixtures();
    if (!getenv("USHER_BIN"))
        FAIL_("USHER_BIN is not set (run through ctest)");
    put(tmp("t.csv"), TRACE3);
    put(tmp("arr.txt"), LINES);
    put(tmp("prof.csv"), "model,batch,latency_ms\na,1,2.5\na,8,6\nb,1,4\nb,8,11\n");
    ASSERT_EQ_INT(cli("--help"), 0);
    const char *opts[] = {"--arrivals poisson|gamma:CV|diurnal:PERIOD_S:AMPLITUDE|azure-synth",
                          "--zipf S", "--trace FILE.csv", "--trace-map stripe|block|hash",
                          "--trace-minutes A:B", "--arrivals-file F", "--profile FILE"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        ASSERT_CONTAINS(cli_out, opts[i]);
    /* every option through the command line, twice: the same bytes; --profile gives the
     * profiles (the workload's ONNX files do not exist: nothing asks the estimator) */
    static const char *runs[] = {
        "--arrivals gamma:3 --duration 5",
        "--arrivals diurnal:2:0.7 --duration 5",
        "--arrivals azure-synth --duration 5",
        "--zipf 1.2 --duration 5",
        "--zipf 0.5 --arrivals gamma:0.5 --duration 5",
        "--trace t.csv --trace-map block --trace-minutes 0:2",
        "--trace t.csv --trace t.csv",
        "--arrivals-file arr.txt",
    };
    static char first[sizeof cli_out];
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char args[512];
        snprintf(args, sizeof args, "--plan p.json --workload w.yaml --profile prof.csv --json "
                                    "--seed 9 %s", runs[i]);
        int rc = cli(args);
        if (rc != 0)
            FAIL_("%s: exit %d: %s", runs[i], rc, cli_err);
        memcpy(first, cli_out, sizeof first);
        ASSERT_EQ_INT(cli(args), 0);
        if (strcmp(first, cli_out) != 0)
            FAIL_("%s: the same seed gave other bytes", runs[i]);
        ASSERT_CONTAINS(cli_out, "\"interference\": false"); /* the table has no GPU fields */
    }
    /* two days of the handmade trace: 6 minutes, twice its 90 invocations */
    ASSERT_EQ_INT(cli("--plan p.json --workload w.yaml --profile prof.csv --json "
                      "--trace t.csv --trace t.csv"), 0);
    ASSERT_CONTAINS(cli_out, "\"duration_s\": 360");
    ASSERT_CONTAINS(cli_out, "\"requests\": 180");
    /* the exact counts of the handmade trace, on the command line (block, minutes 0..1:
     * f1 10 + f2 2 -> a, f4 43 + f5 7 -> b) */
    ASSERT_EQ_INT(cli("--plan p.json --workload w.yaml --profile prof.csv --json "
                      "--trace t.csv --trace-map block --trace-minutes 0:2"), 0);
    ASSERT_CONTAINS(cli_out, "\"duration_s\": 120");
    ASSERT_CONTAINS(cli_out, "\"arrivals\": \"trace t.csv, block, minutes 0-1\"");
    ASSERT_CONTAINS(cli_out, "\"requests\": 62");
    ASSERT_CONTAINS(cli_out, "\"requests\": 12");
    ASSERT_CONTAINS(cli_out, "\"requests\": 50");
    /* the arrivals file's counts and duration */
    ASSERT_EQ_INT(cli("--plan p.json --workload w.yaml --profile prof.csv --json "
                      "--arrivals-file arr.txt"), 0);
    ASSERT_CONTAINS(cli_out, "\"requests\": 8");
    ASSERT_CONTAINS(cli_out, "\"duration_s\": 2.5");
    /* the table names the interference setting */
    ASSERT_EQ_INT(cli("--plan p.json --workload w.yaml --profile prof.csv --arrivals gamma:2 "
                      "--duration 2"), 0);
    ASSERT_CONTAINS(cli_out, "interference off");
    ASSERT_CONTAINS(cli_out, "2 s of arrivals (gamma:2, seed 1, rates x 1");
    ASSERT_EQ_INT(cli("--plan p.json --workload w.yaml --profile prof.csv --zipf 0.5 --json "
                      "--duration 1"), 0);
    ASSERT_CONTAINS(cli_out, "\"arrivals\": \"poisson, zipf 0.5\"");
    ASSERT_EQ_INT(cli("--plan p.json --workload w.yaml --profile prof.csv --json "
                      "--arrivals-file arr.txt"), 0);
    ASSERT_CONTAINS(cli_out, "\"arrivals\": \"file arr.txt\"");

    /* a table with the interference fields: interference on, the devices from the catalog
     * (p.json's GPU is a t4) */
    put(tmp("profgpu.csv"), "model,batch,latency_ms,gpu_ms,compute_ms,mem_bound_ms,dram_mb,"
                            "l2_working_set_mb\na,1,2.5,2,1.5,0.5,40,4\na,8,6,5.5,4,1.5,320,4\n"
                            "b,1,4,3.5,2.5,1,60,8\nb,8,11,10,7,3,480,8\n");
    ASSERT_EQ_INT(cli("--plan p.json --workload w.yaml --profile profgpu.csv --json --duration 2"),
                  0);
    ASSERT_CONTAINS(cli_out, "\"interference\": true");
    ASSERT_EQ_INT(cli("--plan p.json --workload w.yaml --profile profgpu.csv --json --duration 2 "
                      "--no-interference"), 0);
    ASSERT_CONTAINS(cli_out, "\"interference\": false");

    /* usage errors: exit 2 with a clear message */
    struct {
        const char *args, *want;
    } usage[] = {
        {"--arrivals gamma", "expected poisson, gamma:CV, diurnal:PERIOD_S:AMPLITUDE or "
                             "azure-synth"},
        {"--arrivals gamma:x", "gamma:CV takes a coefficient of variation from 0 to 100"},
        {"--arrivals gamma:101", "gamma:CV takes a coefficient of variation from 0 to 100"},
        {"--arrivals diurnal:10", "diurnal:PERIOD_S:AMPLITUDE takes a period"},
        {"--arrivals diurnal:0:0.5", "diurnal:PERIOD_S:AMPLITUDE takes a period"},
        {"--arrivals diurnal:10:2", "diurnal:PERIOD_S:AMPLITUDE takes a period"},
        {"--arrivals weibull", "expected poisson"},
        {"--zipf -1", "--zipf is an exponent from 0 to 10"},
        {"--zipf 1 --arrivals azure-synth", "--zipf goes with poisson, gamma or diurnal"},
        {"--trace t.csv --arrivals gamma:2", "different sources of arrivals"},
        {"--trace t.csv --arrivals-file arr.txt", "different sources of arrivals"},
        {"--trace t.csv --zipf 1", "different sources of arrivals"},
        {"--trace-map block", "--trace-map and --trace-minutes go with --trace"},
        {"--trace t.csv --trace-map round", "expected stripe, block or hash"},
        {"--trace t.csv --trace-minutes 5:5", "expected A:B, minutes from 0 with A < B"},
        {"--trace t.csv --trace-minutes 5", "expected A:B"},
        {"--arrivals-file arr.txt --rate-scale 2", "replayed as they are"},
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        char args[512];
        snprintf(args, sizeof args, "--plan p.json --workload w.yaml --profile prof.csv %s",
                 usage[i].args);
        int rc = cli(args);
        if (rc != 2)
            FAIL_("%s: exit %d (expected 2): %s", usage[i].args, rc, cli_err);
        ASSERT_CONTAINS(cli_err, usage[i].want);
    }
    /* input errors: exit 1 naming the file, line and field */
    put(tmp("bad.csv"), "HashOwner,HashApp,HashFunction,Trigger,1\no,a,f,http,-3\n");
    ASSERT_EQ_INT(cli("--plan p.json --workload w.yaml --profile prof.csv --trace bad.csv"), 1);
    ASSERT_CONTAINS(cli_err, "bad.csv:2: field 5 (minute 1): '-3' is not a count");
    put(tmp("bad.txt"), "0.5 a\n1.5 zz\n");
    ASSERT_EQ_INT(cli("--plan p.json --workload w.yaml --profile prof.csv --arrivals-file "
                      "bad.txt"), 1);
    ASSERT_CONTAINS(cli_err, "bad.txt:2: field 2 (model): 'zz' is not a model of");
    put(tmp("badprof.csv"), "model,batch,latency_ms\na,1,0\n");
    ASSERT_EQ_INT(cli("--plan p.json --workload w.yaml --profile badprof.csv"), 1);
    ASSERT_CONTAINS(cli_err, "badprof.csv:2: field 3 (latency_ms): '0' is not a positive number");
    /* a plan batch the table does not cover */
    put(tmp("short.csv"), "model,batch,latency_ms\na,1,2\na,4,3\nb,1,2\nb,8,3\n");
    ASSERT_EQ_INT(cli("--plan p.json --workload w.yaml --profile short.csv --duration 1"), 1);
    ASSERT_CONTAINS(cli_err, "short.csv: model 'a': no latency at batch 5");
}

/* ---- the readers against mutants, and allocation failures ------------------------------------- */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return rng_state = x;
}

/* a copy of text with 1 to 4 random edits: a byte replaced (by one of the format's own
 * bytes or any), deleted, or inserted */
static size_t mutate(const char *text, char *out, size_t cap)
{
    static const char alphabet[] = "0123456789.,-+eE# \t\r\nabmlpxyz_";
    size_t n = strlen(text);
    memcpy(out, text, n);
    int edits = 1 + (int)(rnd() % 4);
    for (int e = 0; e < edits && n > 0; e++) {
        size_t at = rnd() % n;
        char c = rnd() % 4 ? alphabet[rnd() % (sizeof alphabet - 1)] : (char)(rnd() & 0xff);
        switch (rnd() % 3) {
        case 0:
            out[at] = c;
            break;
        case 1:
            memmove(out + at, out + at + 1, n - at - 1);
            n--;
            break;
        default:
            if (n + 1 < cap) {
                memmove(out + at + 1, out + at, n - at);
                out[at] = c;
                n++;
            }
        }
    }
    return n;
}

static void put_n(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(text, 1, n, f);
        fclose(f);
    }
}

TEST(readers_take_mutants)
{
    fixtures();
    usher_error err = {0};
    const char *f = tmp("mut.txt");
    static const char *const names[2] = {"a", "b"};
    char buf[4096];
    int accepted = 0, refused = 0;
    for (int i = 0; i < 2000; i++) {
        size_t n = mutate(LINES, buf, sizeof buf);
        put_n(f, buf, n);
        sim_lines_params lp = {.path = f, .names = names, .n_models = 2, .names_label = "w.yaml"};
        sim_source *s = NULL;
        uint64_t last = 0;
        int rc = sim_source_lines(&lp, &s, &last, &err);
        if (rc < 0) {
            refused++;
            if (s || !strstr(err.msg, f))
                FAIL_("mutant %d: refused without naming the file: %s", i, err.msg);
            continue;
        }
        accepted++;
        sim_arrival a;
        uint64_t prev = 0, count = 0;
        while ((rc = sim_source_next(s, &a, &err)) == 1) {
            if (a.t_ns < prev || a.model >= 2)
                break;
            prev = a.t_ns;
            count++;
        }
        sim_source_free(s);
        if (rc != 0 || prev != last || count == 0)
            FAIL_("mutant %d: %llu arrivals, out of order or past the last (%llu, %llu)", i,
                  (unsigned long long)count, (unsigned long long)prev,
                  (unsigned long long)last);
    }
    printf("  arrivals file: %d mutants accepted, %d refused with their file named\n", accepted,
           refused);
    ASSERT(accepted > 50 && refused > 50);

    usher_sim_workload *w = NULL;
    ASSERT_OK(usher_sim_workload_load(g_wl, &w, &err));
    static const char PROF[] = "# m\nmodel,batch,latency_ms,gpu\na,1,2.0,\na,4,5.5,\nb,1,3,t4\n"
                               "b,2,3.5,t4\nb,1,9,\n";
    accepted = refused = 0;
    for (int i = 0; i < 2000; i++) {
        size_t n = mutate(PROF, buf, sizeof buf);
        put_n(f, buf, n);
        usher_sim_profile_table *t = NULL;
        int rc = usher_sim_profile_table_load(f, w, &t, &err);
        if (rc < 0) {
            refused++;
            if (t || !strstr(err.msg, f))
                FAIL_("profile mutant %d: refused without naming the file: %s", i, err.msg);
            continue;
        }
        accepted++;
        for (uint32_t m = 0; m < 2; m++)
            for (int64_t b = 1; b <= 8; b++) {
                usher_profile pr;
                rc = usher_sim_profile_table_fn(t, m, b % 2 ? "t4" : "a100-80gb", b, 50, &pr, &err);
                if (rc < 0 && (rc != USHER_ERR_NOT_FOUND || !strstr(err.msg, f)))
                    FAIL_("profile mutant %d: lookup %u/%lld: %s", i, m, (long long)b, err.msg);
                if (rc == 0 && !(pr.latency_ms > 0 && pr.batch == b))
                    FAIL_("profile mutant %d: latency %g at batch %lld", i, pr.latency_ms,
                          (long long)b);
            }
        usher_sim_profile_table_free(t);
    }
    usher_sim_workload_free(w);
    printf("  profile table: %d mutants accepted, %d refused with their file named\n", accepted,
           refused);
    ASSERT(accepted > 50 && refused > 50);
}

/* every allocation of a run with recorded arrivals and a profile table failed in turn:
 * USHER_ERR_NOMEM and nothing left, until the run goes through */
TEST(allocation_failures_leave_nothing)
{
    fixtures();
    usher_error err = {0};
    const char *f = tmp("arr.txt"), *pf = tmp("prof.csv");
    put(f, LINES);
    put(pf, "model,batch,latency_ms\na,1,2.5\na,8,6\nb,1,4\nb,8,11\n");
    usher_sim_workload *w = NULL;
    ASSERT_OK(usher_sim_workload_load(g_wl, &w, &err));
    size_t live = us_alloc_live_bytes();
    bool done = false;
    uint64_t nth;
    for (nth = 1; nth < 100000 && !done; nth++) {
        usher_sim_profile_table *t = NULL;
        usher_sim_report *r = NULL;
        uint64_t injected = us_alloc_injected_failures();
        us_alloc_fail_nth(nth);
        int rc = usher_sim_profile_table_load(pf, w, &t, &err);
        if (rc >= 0) {
            usher_sim_params q = usher_sim_default_params();
            q.plan = g_plan;
            q.workload = w;
            q.profile = usher_sim_profile_table_fn;
            q.ctx = t;
            q.interference = 0;
            q.arrivals.kind = USHER_SIM_ARRIVALS_FILE;
            q.arrivals.file = f;
            q.duration_s = 0;
            rc = usher_sim_run(&q, &r, &err);
        }
        us_alloc_fail_nth(0);
        /* through, with no allocation left to fail */
        done = rc >= 0 && us_alloc_injected_failures() == injected;
        if (rc < 0 && rc != USHER_ERR_NOMEM)
            FAIL_("allocation %llu failed: rc %d: %s", (unsigned long long)nth, rc, err.msg);
        usher_sim_report_free(r);
        usher_sim_profile_table_free(t);
        if (us_alloc_live_bytes() != live)
            FAIL_("allocation %llu failed: %zu bytes left", (unsigned long long)nth,
                  us_alloc_live_bytes() - live);
    }
    usher_sim_workload_free(w);
    printf("  %llu allocations failed in turn, each cleaned up\n", (unsigned long long)(nth - 2));
    ASSERT(done);
}

TEST_MAIN(TEST_ENTRY(every_kind_same_seed_same_bytes), TEST_ENTRY(rates_of_each_kind),
          TEST_ENTRY(azure_trace_exact_counts), TEST_ENTRY(arrivals_file_exact),
          TEST_ENTRY(bad_arrivals_named), TEST_ENTRY(profile_table_reads_and_interpolates),
          TEST_ENTRY(cli_arrival_options), TEST_ENTRY(readers_take_mutants),
          TEST_ENTRY(allocation_failures_leave_nothing))
