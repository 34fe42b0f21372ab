/*
 * test_sim_replan.c - re-planning in the loop (src/sim/engine.c, docs/simulator.md,
 * Re-planning): under diurnal arrivals a plan re-sized to the observed rate every 10 s
 * keeps more requests within their SLO than the fixed plan sized for the mean, while the
 * moves are charged (requests lost or late during the changes when the costs are large,
 * none when they are 0); a re-plan that keeps the plan changes nothing; kept, moved,
 * restarted (share change) and stopped replicas are told apart; the same seed gives the
 * same bytes; a planner's error, a plan that does not match the workload and a GPU the
 * device callback refuses end the run with an error naming them (nothing leaks).
 *
 * The engine's planner here is the test's own: as many replicas as the observed rate needs
 * with 40% headroom, two to a GPU (each GPU with its index, so a re-plan keeps the GPUs it
 * still uses). usher simulate --replan-every, which re-plans with USHER's planner, and usher
 * compare with other arrivals, re-planning and its per-policy plots are run as commands at
 * the end (cli_*).
 */
#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "core/buf.h"
#include "core/err.h"
#include "sim/sim.h"
#include "sim/workload.h"
#include "test.h"

#define SEC 1000000000ull

/* latency(b) = 2 + 0.5 b ms: batch 8 in 6 ms, 1,333 req/s a replica */
static int fixed_profile(void *ctx, uint32_t model, const char *gpu, int batch, double share_pct,
                         if_replica *out, usher_error *err)
{
    double lat = 2 + 0.5 * batch;
    *out = (if_replica){.latency_ms = lat,
                        .gpu_ms = lat,
                        .compute_ms = lat * 0.7,
                        .mem_ms = lat * 0.3,
                        .dram_mb = 4.0 * batch,
                        .l2_mb = 2};
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

#define PER_REPLICA 1333.0
#define MAX_PLANS 64

/* n replicas of model m, batch 8, two to a GPU of type `type` (share 50 each) */
static int plan_of(int n, const char *type, pf_plan *out, usher_error *err)
{
    static char s[8192];
    size_t o = (size_t)snprintf(s, sizeof s, "{\"schema_version\": 1, \"gpus\": [");
    for (int g = 0; g < (n + 1) / 2; g++) {
        o += (size_t)snprintf(s + o, sizeof s - o, "%s{\"type\": \"%s\", \"index\": %d, "
                              "\"price_per_hour\": 1, \"power_w\": 100, \"replicas\": [",
                              g ? ", " : "", type, g);
        for (int k = 0; k < 2 && 2 * g + k < n; k++)
            o += (size_t)snprintf(s + o, sizeof s - o, "%s{\"model\": \"m\", \"batch\": 8, "
                                  "\"share\": 50}", k ? ", " : "");
        o += (size_t)snprintf(s + o, sizeof s - o, "]}");
    }
    snprintf(s + o, sizeof s - o, "]}");
    return pf_parse(s, strlen(s), "replan.json", out, err);
}

typedef struct planner {
    pf_plan plans[MAX_PLANS];
    int n;
    int calls;
    int mode;         /* 0: size to the rate; 1: keep the plan; 2: fail; 3: plan json */
    const char *json; /* mode 3: this plan at every call */
    const char *type;
} planner;

static int planner_fn(void *ctx, uint64_t now_ns, const double *rates, uint32_t n,
                      const pf_plan **out, usher_error *err)
{
    planner *pl = ctx;
    pl->calls++;
    if (pl->mode == 1)
        return USHER_OK;
    if (pl->mode == 2)
        return us_err_set(err, USHER_ERR_LIMIT, "no GPU left for model 'm'");
    if (pl->n == MAX_PLANS)
        return us_err_set(err, USHER_ERR_LIMIT, "the test's planner: too many plans");
    int rc;
    if (pl->mode == 3) {
        rc = pf_parse(pl->json, strlen(pl->json), "next.json", &pl->plans[pl->n], err);
    } else {
        int k = (int)ceil(rates[0] * 1.4 / PER_REPLICA);
        rc = plan_of(k < 1 ? 1 : k, pl->type ? pl->type : "t4", &pl->plans[pl->n], err);
    }
    if (rc < 0)
        return rc;
    *out = &pl->plans[pl->n++];
    return USHER_OK;
}

static void planner_free(planner *pl)
{
    for (int i = 0; i < pl->n; i++)
        pf_free(&pl->plans[i]);
}

static uint64_t g_duration_s = 240;
static double g_service_cv = 0;

/* the diurnal day compressed: mean 2,000 req/s, 400 to 3,600, a 120 s period, 240 s */
static int run(int replicas, uint64_t every_s, double cost_s, planner *pl, uint64_t seed,
               sim_report **out, us_buf *json, usher_error *err)
{
    *out = NULL;
    sim_model_spec m = {.name = "m", .rate = 2000, .slo_ms = 50, .line = 2};
    double rate = m.rate;
    sim_diurnal_params dp = {.rates = &rate, .n_models = 1, .seed = seed,
                             .duration_ns = g_duration_s * SEC, .period_ns = 120 * SEC,
                             .amplitude = 0.8};
    sim_source *src = NULL;
    int rc = sim_source_diurnal(&dp, &src, err);
    if (rc < 0)
        return rc;
    pf_plan first;
    if ((rc = plan_of(replicas, "t4", &first, err)) < 0) {
        sim_source_free(src);
        return rc;
    }
    sim_params p = sim_default_params();
    p.plan = &first;
    p.plan_label = "first.json";
    p.workload_label = "workload.yaml";
    p.models = &m;
    p.n_models = 1;
    p.source = src;
    p.duration_ns = g_duration_s * SEC;
    p.seed = seed;
    p.profile = fixed_profile;
    p.device = fixed_device;
    p.service_cv = g_service_cv;
    if (pl) {
        p.replan_every_ns = every_s * SEC;
        p.replan = planner_fn;
        p.replan_ctx = pl;
        p.start_ns = (uint64_t)(cost_s * 0.4 * 1e9);
        p.load_ns = (uint64_t)(cost_s * 0.6 * 1e9);
        p.share_ns = (uint64_t)(cost_s * 1e9);
    }
    rc = sim_run(&p, out, err);
    if (rc >= 0 && json)
        rc = sim_report_json(*out, false, json);
    pf_free(&first);
    return rc;
}

TEST(replanning_beats_a_fixed_plan_and_charges_the_moves)
{
    usher_error err = {0};
    sim_report *fixed = NULL, *slow = NULL, *free_moves = NULL;
    planner a = {0}, b = {0};
    int rc = run(2, 0, 0, NULL, 5, &fixed, NULL, &err);
    if (rc >= 0)
        rc = run(2, 10, 5, &a, 5, &slow, NULL, &err);
    if (rc >= 0)
        rc = run(2, 10, 0, &b, 5, &free_moves, NULL, &err);
    if (rc >= 0) {
        printf("  fixed (2 replicas): %llu requests, %.2f%% in SLO, $%.3g/h\n",
               (unsigned long long)fixed->requests, fixed->attainment_pct,
               fixed->cost_per_hour);
        const sim_report *rs[2] = {slow, free_moves};
        for (int i = 0; i < 2; i++)
            printf("  re-planned every 10 s, moves %s: %.2f%% in SLO, $%.3g/h (mean), up to %u "
                   "GPUs; %u re-plans; during the changes %llu requests, %llu lost, %llu late\n",
                   i ? "free" : "5 s", rs[i]->attainment_pct, rs[i]->cost_per_hour,
                   rs[i]->gpus_used, rs[i]->n_replans,
                   (unsigned long long)rs[i]->replan_requests,
                   (unsigned long long)rs[i]->replan_lost, (unsigned long long)rs[i]->replan_late);
    }
    bool moved = false;
    uint32_t changed = 0;
    for (uint32_t i = 0; slow && i < slow->n_replans; i++) {
        const sim_replan_report *x = &slow->replans[i];
        moved = moved || (x->started > 0 && x->ready_s > x->t_s + 4.99);
        changed += x->started + x->stopped > 0;
    }
    bool same_arrivals = fixed && slow && free_moves && fixed->requests == slow->requests &&
                         fixed->requests == free_moves->requests;
    double fa = fixed ? fixed->attainment_pct : 0, sa = slow ? slow->attainment_pct : 0,
           za = free_moves ? free_moves->attainment_pct : 0;
    uint32_t nrp = slow ? slow->n_replans : 0;
    uint64_t slow_bad = slow ? slow->replan_lost + slow->replan_late : 0;
    uint64_t free_req = free_moves ? free_moves->replan_requests : 1;
    uint64_t free_bad = free_moves ? free_moves->replan_lost + free_moves->replan_late : 1;
    sim_report_free(fixed);
    sim_report_free(slow);
    sim_report_free(free_moves);
    planner_free(&a);
    planner_free(&b);
    ASSERT_OK(rc);
    ASSERT(same_arrivals);
    ASSERT_EQ_INT(nrp, 23); /* at 10, 20, ..., 230 s */
    ASSERT_EQ_INT(a.calls, 23);
    ASSERT(moved);
    ASSERT(changed >= 8);
    /* the fixed plan (2,666 req/s) is short at the peaks (3,600) */
    ASSERT(fa < 95);
    ASSERT(sa > fa + 3);
    ASSERT(za >= sa);
    /* 5 s moves cost requests (refused by admission rather than served late, mostly: the
     * runtime refuses what it cannot serve in time); free moves none */
    ASSERT(slow_bad > 0);
    ASSERT_EQ_U64(free_req, 0);
    ASSERT_EQ_U64(free_bad, 0);
}

/* with batch times that vary (service CV 0.5) admission mispredicts: some requests that
 * arrive during a change are served late, not only refused; free moves still charge none */
TEST(late_during_changes_with_service_variance)
{
    usher_error err = {0};
    sim_report *slow = NULL, *free_moves = NULL;
    planner a = {0}, b = {0};
    g_service_cv = 0.5;
    int rc = run(2, 10, 5, &a, 5, &slow, NULL, &err);
    if (rc >= 0)
        rc = run(2, 10, 0, &b, 5, &free_moves, NULL, &err);
    g_service_cv = 0;
    if (rc >= 0)
        printf("  service CV 0.5, 5 s moves: %.2f%% in SLO, during the changes %llu requests, "
               "%llu lost, %llu late (%llu late over the run); free moves: %.2f%%, %llu late "
               "over the run\n", slow->attainment_pct,
               (unsigned long long)slow->replan_requests, (unsigned long long)slow->replan_lost,
               (unsigned long long)slow->replan_late, (unsigned long long)slow->late,
               free_moves->attainment_pct, (unsigned long long)free_moves->late);
    uint64_t late = slow ? slow->replan_late : 0, lost = slow ? slow->replan_lost : 0;
    uint64_t free_bad = free_moves ? free_moves->replan_late + free_moves->replan_lost : 1;
    sim_report_free(slow);
    sim_report_free(free_moves);
    planner_free(&a);
    planner_free(&b);
    ASSERT_OK(rc);
    ASSERT(late > 0);
    ASSERT(lost > 0);
    ASSERT_EQ_U64(free_bad, 0);
}

TEST(replanning_same_seed_same_bytes)
{
    usher_error err = {0};
    us_buf x, y, z;
    us_buf_init(&x, 1 << 22);
    us_buf_init(&y, 1 << 22);
    us_buf_init(&z, 1 << 22);
    sim_report *r1 = NULL, *r2 = NULL, *r3 = NULL;
    planner a = {0}, b = {0}, c = {0};
    int rc = run(2, 15, 3, &a, 9, &r1, &x, &err);
    if (rc >= 0)
        rc = run(2, 15, 3, &b, 9, &r2, &y, &err);
    if (rc >= 0)
        rc = run(2, 15, 3, &c, 10, &r3, &z, &err);
    bool same = rc >= 0 && x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
    bool differ = rc >= 0 && (x.len != z.len || memcmp(x.data, z.data, x.len) != 0);
    bool fields = rc >= 0 && strstr(us_buf_str(&x), "\"replanning\"") &&
                  strstr(us_buf_str(&x), "\"late_during_changes\"") &&
                  strstr(us_buf_str(&x), "\"moved\"") && strstr(us_buf_str(&x), "\"ready_s\"");
    sim_report_free(r1);
    sim_report_free(r2);
    sim_report_free(r3);
    planner_free(&a);
    planner_free(&b);
    planner_free(&c);
    us_buf_free(&x);
    us_buf_free(&y);
    us_buf_free(&z);
    ASSERT_OK(rc);
    ASSERT(same);
    ASSERT(differ);
    ASSERT(fields);
}

/* a planner that keeps the plan: the run is the run without re-planning */
TEST(keeping_the_plan_changes_nothing)
{
    usher_error err = {0};
    us_buf x, y;
    us_buf_init(&x, 1 << 22);
    us_buf_init(&y, 1 << 22);
    sim_report *r1 = NULL, *r2 = NULL;
    planner keep = {.mode = 1};
    int rc = run(3, 0, 0, NULL, 4, &r1, &x, &err);
    if (rc >= 0)
        rc = run(3, 20, 5, &keep, 4, &r2, &y, &err);
    /* the same bytes up to the re-planning section */
    const char *cut = rc >= 0 ? strstr(us_buf_str(&y), ",\n  \"replanning\"") : NULL;
    size_t n = cut ? (size_t)(cut - y.data) : 0;
    bool same = cut && x.len >= n && memcmp(x.data, y.data, n) == 0 &&
                strcmp(x.data + n, "\n}\n") == 0;
    uint32_t replans = r2 ? r2->n_replans : 0;

    sim_report_free(r1);
    sim_report_free(r2);
    us_buf_free(&x);
    us_buf_free(&y);
    ASSERT_OK(rc);
    ASSERT(cut);
    if (!same)
        FAIL_("a run whose planner keeps the plan differs from the run without re-planning");
    ASSERT_EQ_INT(replans, 11);
}

/* kept, restarted at another share, moved to another GPU, stopped */
TEST(moves_are_told_apart)
{
    usher_error err = {0};
    /* from: GPU 0 holds two replicas (share 50, batch 8). To: GPU 0 keeps one, the other
     * restarts at share 40 there, and GPU 3 (new) gets two more */
    planner pl = {.mode = 3,
                  .json = "{\"schema_version\": 1, \"gpus\": [\n"
                          " {\"type\": \"t4\", \"index\": 0, \"replicas\": [\n"
                          "  {\"model\": \"m\", \"batch\": 8, \"share\": 50},\n"
                          "  {\"model\": \"m\", \"batch\": 8, \"share\": 40}]},\n"
                          " {\"type\": \"t4\", \"index\": 3, \"replicas\": [\n"
                          "  {\"model\": \"m\", \"batch\": 8, \"share\": 50},\n"
                          "  {\"model\": \"m\", \"batch\": 8, \"share\": 50}]}]}\n"};
    sim_report *r = NULL;
    int rc = run(2, 100, 2, &pl, 3, &r, NULL, &err);
    sim_replan_report a = {0}, b = {0};
    uint32_t n = r ? r->n_replans : 0, gpus = r ? r->n_gpus : 0;
    if (n == 2) {
        a = r->replans[0];
        b = r->replans[1];
    }
    sim_report_free(r);
    planner_free(&pl);
    ASSERT_OK(rc);
    ASSERT_EQ_INT(n, 2);
    ASSERT_EQ_INT(a.kept, 1);
    ASSERT_EQ_INT(a.reshared, 1);
    ASSERT_EQ_INT(a.started, 2);
    ASSERT_EQ_INT(a.moved, 0);
    ASSERT_EQ_INT(a.stopped, 0);
    ASSERT_EQ_INT(a.gpus, 2);
    ASSERT(fabs(a.ready_s - 102) < 1e-9); /* start + load: 2 s; the share change: 2 s */
    /* the same plan again: everything kept */
    ASSERT_EQ_INT(b.kept, 4);
    ASSERT_EQ_INT(b.started + b.moved + b.reshared + b.stopped, 0);
    ASSERT(fabs(b.ready_s - b.t_s) < 1e-9);
    ASSERT_EQ_INT(gpus, 2);

    /* to one replica on a new GPU: moved (1), stopped (the other) */
    planner mv = {.mode = 3,
                  .json = "{\"schema_version\": 1, \"gpus\": [\n"
                          " {\"type\": \"t4\", \"index\": 7, \"price_per_hour\": 1, "
                          "\"replicas\": [\n"
                          "  {\"model\": \"m\", \"batch\": 8, \"share\": 100}]}]}\n"};
    rc = run(2, 200, 1, &mv, 3, &r, NULL, &err);
    a = r && r->n_replans ? r->replans[0] : (sim_replan_report){0};
    double cost = r ? r->cost_per_hour : 0;
    sim_report_free(r);
    planner_free(&mv);
    ASSERT_OK(rc);
    ASSERT_EQ_INT(a.kept, 0);
    ASSERT_EQ_INT(a.moved, 1);
    ASSERT_EQ_INT(a.started, 0);
    ASSERT_EQ_INT(a.stopped, 2);
    ASSERT_EQ_INT(a.gpus, 1);
    /* $1/h throughout (GPU 0 until 201 s, GPU 7 from 200 s: both for 1 s) */
    ASSERT(fabs(cost - (1.0 * 240 + 1.0 * 1) / 240) < 1e-9);
}

TEST(replanning_errors_end_the_run)
{
    usher_error err = {0};
    sim_report *r = NULL;
    planner fail = {.mode = 2};
    int rc = run(2, 10, 1, &fail, 1, &r, NULL, &err);
    ASSERT(r == NULL);
    ASSERT_EQ_INT(rc, USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, "re-plan at 10.000 s: no GPU left for model 'm'");
    ASSERT_EQ_INT(fail.calls, 1);

    planner other = {.mode = 3,
                     .json = "{\"schema_version\": 1, \"gpus\": [\n"
                             " {\"type\": \"t4\", \"replicas\": [\n"
                             "  {\"model\": \"vgg\", \"batch\": 8, \"share\": 50}]}]}\n"};
    rc = run(2, 10, 1, &other, 1, &r, NULL, &err);
    planner_free(&other);
    ASSERT(r == NULL);
    ASSERT_EQ_INT(rc, USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "re-plan at 10.000 s: next.json:3: field "
                             "'gpus[0].replicas[0].model': model 'vgg' is not in workload.yaml");

    planner nowhere = {.type = "nowhere"};
    rc = run(2, 10, 1, &nowhere, 1, &r, NULL, &err);
    planner_free(&nowhere);
    ASSERT(r == NULL);
    ASSERT_EQ_INT(rc, USHER_ERR_NOT_FOUND);
    ASSERT_CONTAINS(err.msg, "field 'gpus[0].type': unknown GPU type 'nowhere'");

    /* two GPUs of the same type and index */
    planner twice = {.mode = 3,
                     .json = "{\"schema_version\": 1, \"gpus\": [\n"
                             " {\"type\": \"t4\", \"index\": 1, \"replicas\": [\n"
                             "  {\"model\": \"m\", \"batch\": 8, \"share\": 50}]},\n"
                             " {\"type\": \"t4\", \"index\": 1, \"replicas\": [\n"
                             "  {\"model\": \"m\", \"batch\": 8, \"share\": 50}]}]}\n"};
    rc = run(2, 10, 1, &twice, 1, &r, NULL, &err);
    planner_free(&twice);
    ASSERT(r == NULL);
    ASSERT_EQ_INT(rc, USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "next.json:4: field 'gpus[1].index': the same GPU");
}

/* every allocation of a re-planning run failed in turn: USHER_ERR_NOMEM and nothing left,
 * until the run goes through */
TEST(replanning_out_of_memory)
{
    g_duration_s = 30;
    size_t live = us_alloc_live_bytes();
    bool done = false;
    uint64_t nth;
    for (nth = 1; nth < 100000 && !done; nth++) {
        usher_error err = {0};
        sim_report *r = NULL;
        planner pl = {0};
        uint64_t injected = us_alloc_injected_failures();
        us_alloc_fail_nth(nth);
        int rc = run(2, 5, 1, &pl, 2, &r, NULL, &err);
        us_alloc_fail_nth(0);
        done = rc >= 0 && us_alloc_injected_failures() == injected;
        planner_free(&pl);
        sim_report_free(r);
        if (rc < 0 && rc != USHER_ERR_NOMEM) {
            g_duration_s = 240;
            FAIL_("allocation %llu failed: rc %d: %s", (unsigned long long)nth, rc, err.msg);
        }
        if (us_alloc_live_bytes() != live) {
            g_duration_s = 240;
            FAIL_("allocation %llu failed: %zu bytes left", (unsigned long long)nth,
                  us_alloc_live_bytes() - live);
        }
    }
    g_duration_s = 240;
    printf("  %llu allocations failed in turn, each cleaned up\n", (unsigned long long)(nth - 2));
    ASSERT(done);
    ASSERT(nth > 30);
}

/* ---- the commands --------------------------------------------------------------------- */
static char cli_out[1 << 18], cli_err[8192];

/* `usher ARGS` in the test's temporary directory: its exit status, stdout and stderr */
static int usher_cli(const char *args)
{
    return test_usher(args, cli_out, sizeof cli_out, cli_err, sizeof cli_err);
}


/* the first "key": number in s */
static double json_number(const char *s, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *at = strstr(s, k);
    return at ? strtod(at + strlen(k), NULL) : NAN;
}

static void cli_fixtures(void)
{
    char wl[1024];
    snprintf(wl, sizeof wl,
             "models:\n"
             "  - name: r18\n    model: %s\n    rate: 3000\n    slo_ms: 40\n"
             "  - name: mnv2\n    model: %s\n    rate: 6000\n    slo_ms: 30\n",
             test_path(test_source_dir(), "models/zoo/resnet18.onnx"),
             test_path(test_source_dir(), "models/zoo/mobilenet-v2.onnx"));
    test_write_file("w.yaml", wl);
    test_write_file("c.yaml", "objective: min-cost\ngpus:\n  - type: t4\n    max: 64\n");
}

TEST(cli_simulate_replan)
{
    if (!getenv("USHER_BIN")) {
        printf("  skipped: run through ctest (USHER_BIN)\n");
        return;
    }
    cli_fixtures();
    int rc = usher_cli("plan --workload w.yaml --cluster c.yaml -o p.json");
    if (rc != 0)
        FAIL_("usher plan: exit %d: %s", rc, cli_err);
    const char *sim = "simulate --plan p.json --workload w.yaml --duration 120 --quiet "
                      "--arrivals diurnal:120:0.7 --seed 5";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --json", sim);
    ASSERT_EQ_INT(usher_cli(cmd), 0);
    double fixed = json_number(cli_out, "slo_attainment_pct");
    ASSERT(strstr(cli_out, "\"replanning\"") == NULL);
    snprintf(cmd, sizeof cmd, "%s --json --replan-every 15 --cluster c.yaml", sim);
    rc = usher_cli(cmd);
    if (rc != 0)
        FAIL_("exit %d: %s", rc, cli_err);
    static char first[sizeof cli_out];
    memcpy(first, cli_out, sizeof first);
    double replanned = json_number(first, "slo_attainment_pct");
    printf("  zoo models on T4s, diurnal 120 s: fixed plan %.2f%% in SLO, re-planned every 15 s "
           "%.2f%% (%g re-plans, %g requests lost during the changes)\n",
           fixed, replanned, json_number(first, "replans"),
           json_number(first, "lost_during_changes"));
    ASSERT_CONTAINS(first, "\"replanning\"");
    ASSERT_CONTAINS(first, "\"model_load_s\": 0.5");
    ASSERT(json_number(first, "replans") == 7);
    ASSERT(replanned > fixed + 2);
    ASSERT_EQ_INT(usher_cli(cmd), 0);
    ASSERT(strcmp(first, cli_out) == 0); /* the same seed: the same bytes */
    /* free moves: nothing lost during the changes */
    snprintf(cmd, sizeof cmd, "%s --json --replan-every 15 --cluster c.yaml --worker-start 0 "
             "--model-load 0 --share-change 0", sim);
    ASSERT_EQ_INT(usher_cli(cmd), 0);
    ASSERT(json_number(cli_out, "lost_during_changes") == 0);
    ASSERT(json_number(cli_out, "late_during_changes") == 0);
    /* the table, and the page's section */
    snprintf(cmd, sizeof cmd, "%s --replan-every 15 --cluster c.yaml --model-load 2 "
             "--html rp.html", sim);
    ASSERT_EQ_INT(usher_cli(cmd), 0);
    static char page[1 << 21];
    FILE *f = fopen(test_path(test_tmpdir(), "rp.html"), "r");
    ASSERT(f);
    size_t n = fread(page, 1, sizeof page - 1, f);
    page[n] = 0;
    fclose(f);
    ASSERT_CONTAINS(page, "<section id=\"replanning\"><h2>Re-planning</h2>");
    ASSERT_CONTAINS(page, "<tr><td>15</td><td>"); /* the first re-plan's row */
    ASSERT_CONTAINS(page, "ready after 0.05 s (worker start) + 2 s (model load)");
    ASSERT_EQ_INT(usher_cli(cmd), 0); /* the table (the page's run printed it too) */
    ASSERT_CONTAINS(cli_out, "re-planned every 15 s (worker start 0.05 s, model load 2 s");
    ASSERT_CONTAINS(cli_out, "reshared");
    /* usage and errors */
    snprintf(cmd, sizeof cmd, "%s --replan-every 15", sim);
    ASSERT_EQ_INT(usher_cli(cmd), 2);
    ASSERT_CONTAINS(cli_err, "--replan-every and --cluster go together");
    snprintf(cmd, sizeof cmd, "%s --replan-every 15 --cluster c.yaml --model-load -1", sim);
    ASSERT_EQ_INT(usher_cli(cmd), 2);
    snprintf(cmd, sizeof cmd, "%s --json --replan-every 15 --cluster c.yaml --max-moves 4", sim);
    ASSERT_EQ_INT(usher_cli(cmd), 0);
    ASSERT(json_number(cli_out, "replans") == 7);
    snprintf(cmd, sizeof cmd, "%s --max-moves 4", sim);
    ASSERT_EQ_INT(usher_cli(cmd), 2);
    ASSERT_CONTAINS(cli_err, "--max-moves goes with --replan-every");
    snprintf(cmd, sizeof cmd, "%s --replan-every 0.001 --cluster c.yaml", sim);
    ASSERT_EQ_INT(usher_cli(cmd), 1);
    ASSERT_CONTAINS(cli_err, "more than 100000 re-plans");
    snprintf(cmd, sizeof cmd, "%s --replan-every 15 --cluster nothere.yaml", sim);
    ASSERT_EQ_INT(usher_cli(cmd), 1);
    ASSERT_CONTAINS(cli_err, "re-plan at 15.000 s: ");
    ASSERT_CONTAINS(cli_err, "nothere.yaml");
    /* a cluster too small for the peak: the planner's error, with the workload's own name */
    test_write_file("tiny.yaml", "objective: min-cost\ngpus:\n  - type: t4\n    max: 1\n");
    snprintf(cmd, sizeof cmd, "%s --replan-every 15 --cluster tiny.yaml", sim);
    rc = usher_cli(cmd);
    if (rc != 0)
        ASSERT(strstr(cli_err, "usher-replan-") == NULL); /* the copy is never named */
}

TEST(cli_compare_arrivals_replanning_and_plots)
{
    if (!getenv("USHER_BIN")) {
        printf("  skipped: run through ctest (USHER_BIN)\n");
        return;
    }
    cli_fixtures();
    const char *cmp = "compare --workload w.yaml --cluster c.yaml --policies usher,shepherd "
                      "--duration 20 --quiet";
    char cmd[1024];
    /* other arrivals, the same for every policy, said in the JSON */
    snprintf(cmd, sizeof cmd, "%s --arrivals gamma:3 --json --html cmp.html", cmp);
    int rc = usher_cli(cmd);
    if (rc != 0)
        FAIL_("exit %d: %s", rc, cli_err);
    ASSERT_CONTAINS(cli_out, "\"arrivals\": \"gamma:3\"");
    static char gamma[sizeof cli_out];
    memcpy(gamma, cli_out, sizeof gamma);
    snprintf(cmd, sizeof cmd, "%s --json", cmp);
    ASSERT_EQ_INT(usher_cli(cmd), 0);
    ASSERT_CONTAINS(cli_out, "\"arrivals\": \"poisson\"");
    ASSERT(json_number(gamma, "requests") != json_number(cli_out, "requests"));
    /* the page: per policy a latency CDF and a GPU heat map, ids distinct */
    static char page[1 << 20];
    FILE *f = fopen(test_path(test_tmpdir(), "cmp.html"), "r");
    ASSERT(f);
    size_t n = fread(page, 1, sizeof page - 1, f);
    page[n] = 0;
    fclose(f);
    ASSERT_CONTAINS(page, "id=\"latency-cdf-0\"");
    ASSERT_CONTAINS(page, "id=\"latency-cdf-1\"");
    ASSERT_CONTAINS(page, "id=\"gpu-utilisation-0\"");
    ASSERT_CONTAINS(page, "id=\"gpu-utilisation-1\"");
    ASSERT_CONTAINS(page, "shepherd: latency CDF per model");
    ASSERT_CONTAINS(page, "(gamma:3)");
    ASSERT(strstr(page, "<?xml") == NULL || strstr(page, "<?xml") > strstr(page, "<h3>"));
    /* re-planning every policy's plan */
    snprintf(cmd, sizeof cmd, "%s --arrivals diurnal:20:0.5 --replan-every 5 --json", cmp);
    rc = usher_cli(cmd);
    if (rc != 0)
        FAIL_("exit %d: %s", rc, cli_err);
    ASSERT_CONTAINS(cli_out, "\"replan_every_s\": 5");
    ASSERT_CONTAINS(cli_out, "\"replans\": 3");
    ASSERT_CONTAINS(cli_out, "\"lost_during_changes\"");
    /* recorded arrivals, and usage */
    test_write_file("arr.txt", "0.001 r18\n0.002 mnv2\n0.5 r18\n");
    snprintf(cmd, sizeof cmd, "%s --arrivals-file arr.txt --json", cmp);
    rc = usher_cli(cmd);
    if (rc != 0)
        FAIL_("exit %d: %s", rc, cli_err);
    ASSERT_CONTAINS(cli_out, "\"arrivals\": \"file arr.txt\"");
    ASSERT_CONTAINS(cli_out, "\"requests\": 3");
    snprintf(cmd, sizeof cmd, "%s --arrivals-file arr.txt --loads 1,2", cmp);
    ASSERT_EQ_INT(usher_cli(cmd), 2);
    snprintf(cmd, sizeof cmd, "%s --trace-map hash", cmp);
    ASSERT_EQ_INT(usher_cli(cmd), 2);
    ASSERT_CONTAINS(cli_err, "usher compare: --trace-map and --trace-minutes go with --trace");
    snprintf(cmd, sizeof cmd, "%s --arrivals zigzag", cmp);
    ASSERT_EQ_INT(usher_cli(cmd), 2);
    ASSERT_CONTAINS(cli_err, "usher compare: --arrivals zigzag");
}

TEST_MAIN(TEST_ENTRY(replanning_beats_a_fixed_plan_and_charges_the_moves),
          TEST_ENTRY(late_during_changes_with_service_variance),
          TEST_ENTRY(replanning_same_seed_same_bytes), TEST_ENTRY(keeping_the_plan_changes_nothing),
          TEST_ENTRY(moves_are_told_apart), TEST_ENTRY(replanning_errors_end_the_run),
          TEST_ENTRY(replanning_out_of_memory), TEST_ENTRY(cli_simulate_replan),
          TEST_ENTRY(cli_compare_arrivals_replanning_and_plots))
