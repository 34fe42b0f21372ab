/*
 * bench_plan.c - planning time against the number of models (issue 4).
 *
 *   bench_plan ZOO_DIR [N ...]     (default N: 100 1000 10000)
 *   bench_plan ZOO_DIR --elastic   the paper's elastic scenario (below)
 *   bench_plan ZOO_DIR --fixed     the same models on a fixed cluster of 24 V100s
 *                                  (max-goodput): the goodput each policy serves
 *
 * For each N: N models cycled over the zoo with seeded random rates
 * (10-500 req/s) and SLOs (5-16x each model's fastest batch-1 latency on a
 * grid; SLOS=distinct: 5-16x drawn uniformly, every SLO its own),
 * an elastic cluster of A100-80GB, V100-16GB and T4 (up to 20,000 each).
 * Profiling (the estimator, once per model structure and SLO) is timed apart
 * from planning. The baselines run up to 1,000 models (ALL=1: always).
 * Each policy's planning time is the median of RUNS runs
 * (env, default 3; 1 at 10,000 models). Plans are made with the interference
 * model (every replica meets its SLO beside the others); INTERFERENCE=off plans
 * as before it, for comparison; QUEUE=off without the queueing cap (each replica
 * loaded to its throughput back to back, as before issue 13); DUMP=N prints
 * USHER's plan at N models.
 * Method: bench/README.md.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "estimate/est.h"
#include "plan/plan.h"
#include "bench.h"

static const char *const zoo[] = {
    "alexnet",      "bert-base",      "bert-large",  "densenet121", "densenet169",
    "distilbert",   "efficientnet-b0", "gpt2",       "inception-v3", "mobilenet-v2",
    "mobilenet-v3-large", "resnet101", "resnet152",  "resnet18",    "resnet50",
    "shufflenet-v2", "squeezenet",    "vgg16",       "vgg19",       "vit-b16"};
#define N_ZOO (sizeof zoo / sizeof zoo[0])

static uint64_t st = 12345;

/* INTERFERENCE=off: plan as before the interference model */
static bool interference(void)
{
    const char *v = getenv("INTERFERENCE");
    return !(v && strcmp(v, "off") == 0);
}
static double urand(void)
{
    st = st * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(st >> 11) / 9007199254740992.0;
}

/* an elastic entry of the catalog type `key`, at most max GPUs, catalog price */
static void elastic_type(usher_estimator *e, plan_problem *p, uint16_t t, const char *key,
                         int64_t max)
{
    gpu_catalog_find(est_catalog(e), key, &p->t[t].g, NULL);
    snprintf(p->t[t].key, sizeof p->t[t].key, "%s", key);
    p->t[t].count = -1;
    p->t[t].max = max;
    p->t[t].price = p->t[t].g->price_per_hour;
    p->t[t].tdp_w = p->t[t].g->tdp_w;
    p->t[t].idle_frac = 0.25;
}

/*
 * The USHER paper's elastic scenario, with our estimator's profiles: the 20
 * zoo models on an elastic cluster of A100-80GB and V100-16GB (catalog
 * prices), total rates 2k-32k req/s split over the models by a Zipf(0.9)
 * law in a seeded order (a few hot models, a long tail, as in the Azure
 * traces the paper replays), SLO = 5 x each model's batch-1 latency on the
 * V100. Every policy plans each rate; GPUs and $/h are printed per policy.
 */
static int elastic(usher_estimator *e, usher_model **ms, const double *fastest_v100, bool fixed)
{
    const char *types[] = {"a100-80gb", "v100-16gb"};
    const char *pols[] = {"usher", "shepherd", "gpulet", "alpaserve", "triton", "static-mps",
                          "exact"};
    plan_exact_time_limit_ms = 60000;
    double share[N_ZOO], sum = 0;
    size_t perm[N_ZOO];
    for (size_t i = 0; i < N_ZOO; i++)
        perm[i] = i;
    st = 2024;
    for (size_t i = N_ZOO - 1; i > 0; i--) {
        size_t j = (size_t)(urand() * (double)(i + 1));
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < N_ZOO; i++)
        sum += share[perm[i]] = 1 / pow((double)i + 1, 0.9);
    if (fixed)
        printf("| offered req/s | policy | GPUs used (of 24 V100) | goodput req/s | served %% | "
               "planning s |\n|---|---|---|---|---|---|\n");
    else
        printf("| total req/s | policy | GPUs (A100 + V100) | $/h | served %% | planning s |\n"
               "|---|---|---|---|---|---|\n");
    /* --fixed: the paper's testbed size (24 V100s), max-goodput, rates doubled
     * past what it can serve */
    for (double total = fixed ? 4000 : 2000; total <= (fixed ? 128000 : 32000); total *= 2) {
        plan_problem p;
        memset(&p, 0, sizeof p);
        p.objective = fixed ? PLAN_MAX_GOODPUT : PLAN_MIN_COST;
        p.interference = interference();
        p.nt = fixed ? 1 : 2;
        p.fixed = fixed;
        for (uint16_t t = 0; t < p.nt; t++) {
            elastic_type(e, &p, t, types[fixed ? 1 : t], 10000);
            if (fixed)
                p.t[t].count = p.t[t].max = 24;
        }
        p.n = N_ZOO;
        p.m = us_calloc(N_ZOO, sizeof *p.m);
        for (size_t i = 0; i < N_ZOO; i++) {
            p.m[i].name = us_strdup(zoo[i]);
            p.m[i].rate = total * share[i] / sum;
            p.m[i].slo_ms = 5 * fastest_v100[i];
        }
        usher_error err;
        if (plan_problem_profile(&p, e, ms, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        for (size_t k = 0; k < sizeof pols / sizeof pols[0]; k++) {
            plan_solution s;
            /* the exact optimum up to 8k req/s (48 GPU slots at most), not on --fixed */
            if (strcmp(pols[k], "exact") == 0 && (total > 8000 || fixed))
                continue;
            if (plan_solve(&p, plan_policy_find(pols[k]), &s, &err) < 0) {
                plan_solution_free(&s);
                if (strcmp(pols[k], "exact") != 0) {
                    fprintf(stderr, "%s: %s\n", pols[k], err.msg);
                    return 1;
                }
                /* the exact policy refuses instances past its size: a row says so */
                printf("| %.0f | exact | refused: %s | | | |\n", total, err.msg);
                continue;
            }
            plan_totals t;
            plan_totals_of(&s, &p, &t);
            uint32_t na = 0;
            for (uint32_t g = 0; g < s.n; g++)
                na += s.g[g].type == 0;
            if (fixed)
                printf("| %.0f | %s | %u | %.0f | %.1f | %.4f |\n", total, pols[k], t.gpus,
                       t.served, t.rate > 0 ? 100 * t.served / t.rate : 0, s.seconds);
            else
                printf("| %.0f | %s | %u (%u + %u) | %.2f | %.1f | %.4f |%s\n", total, pols[k],
                       t.gpus, na, t.gpus - na, t.cost, t.rate > 0 ? 100 * t.served / t.rate : 0,
                       s.seconds,
                       s.exact_status == PLAN_EXACT_TIMEOUT ? " (time limit: best found)" : "");
            plan_solution_free(&s);
        }
        plan_problem_free(&p);
    }
    return 0;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_plan ZOO_DIR [N ...]\n");
        return 2;
    }
    usher_estimator_params ep = usher_estimator_default_params();
    ep.cache_entries = 65536;
    usher_estimator *e;
    usher_error err;
    if (usher_estimator_new(&ep, &e, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    usher_model *ms[N_ZOO];
    double fastest[N_ZOO], fastest_v100[N_ZOO];
    for (size_t i = 0; i < N_ZOO; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.onnx", argv[1], zoo[i]);
        if (usher_model_load(path, NULL, &ms[i], &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        usher_estimate_params q = usher_estimate_default_params();
        q.gpu = "a100-80gb";
        usher_profile pr;
        if (usher_estimate(e, ms[i], &q, &pr, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        fastest[i] = pr.latency_ms;
        q.gpu = "v100-16gb";
        if (usher_estimate(e, ms[i], &q, &pr, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        fastest_v100[i] = pr.latency_ms;
    }
    if (argc > 2 && (strcmp(argv[2], "--elastic") == 0 || strcmp(argv[2], "--fixed") == 0)) {
        int rc = elastic(e, ms, fastest_v100, strcmp(argv[2], "--fixed") == 0);
        for (size_t i = 0; i < N_ZOO; i++)
            usher_model_free(ms[i]);
        usher_estimator_free(e);
        return rc;
    }
    int sizes[16] = {100, 1000, 10000}, ns = 3;
    if (argc > 2) {
        ns = 0;
        for (int i = 2; i < argc && ns < 16; i++)
            sizes[ns++] = atoi(argv[i]);
    }
    const char *sv = getenv("SLOS");
    bool distinct = sv && strcmp(sv, "distinct") == 0;
    const char *types[] = {"a100-80gb", "v100-16gb", "t4"};
    const char *pols[] = {"usher", "shepherd", "gpulet", "alpaserve", "triton", "static-mps"};
    printf("| models | profiling s | policy | GPUs | replicas | $/h | served %% | planning s |\n"
           "|---|---|---|---|---|---|---|---|\n");
    for (int si = 0; si < ns; si++) {
        int n = sizes[si];
        plan_problem p;
        memset(&p, 0, sizeof p);
        p.objective = PLAN_MIN_COST;
        p.interference = interference();
        p.queue_off = getenv("QUEUE") && strcmp(getenv("QUEUE"), "off") == 0;
        p.nt = 3;
        for (uint16_t t = 0; t < 3; t++)
            elastic_type(e, &p, t, types[t], 20000);
        p.n = (uint32_t)n;
        p.m = us_calloc((size_t)n, sizeof *p.m);
        usher_model **mm = us_calloc((size_t)n, sizeof *mm);
        st = 12345 + (uint64_t)n;
        for (int i = 0; i < n; i++) {
            size_t z = (size_t)i % N_ZOO;
            mm[i] = ms[z];
            char name[64];
            snprintf(name, sizeof name, "%s-%d", zoo[z], i);
            p.m[i].name = us_strdup(name);
            p.m[i].rate = 10 + floor(urand() * 490);
            /* SLOs on a coarse grid so models share profiles, as real fleets do;
             * SLOS=distinct: spread over the same range, every one its own */
            double g = 5 + floor(urand() * 12);
            p.m[i].slo_ms = distinct ? fastest[z] * (5 + 11 * urand()) : ceil(fastest[z] * g);
        }
        double t0 = now();
        if (plan_problem_profile(&p, e, mm, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double prof = now() - t0;
        int runs = getenv("RUNS") ? atoi(getenv("RUNS")) : n >= 10000 ? 1 : 3;
        if (runs < 1)
            runs = 1;
        for (size_t k = 0; k < sizeof pols / sizeof pols[0]; k++) {
            /* the baselines' own placement loops are quadratic: up to 1,000 models */
            if (k > 0 && n > 1000 && !getenv("ALL"))
                continue;
            double t[16];
            plan_totals tot = {0};
            for (int r = 0; r < runs && r < 16; r++) {
                plan_solution s;
                if (plan_solve(&p, plan_policy_find(pols[k]), &s, &err) < 0) {
                    fprintf(stderr, "%s: %s\n", pols[k], err.msg);
                    return 1;
                }
                t[r] = s.seconds;
                plan_totals_of(&s, &p, &tot);
                if (getenv("DUMP") && atoi(getenv("DUMP")) == n && r == 0 && k == 0)
                    plan_write_table(&s, &p, NULL, stdout);
                plan_solution_free(&s);
            }
            qsort(t, (size_t)(runs < 16 ? runs : 16), sizeof t[0], cmpd);
            printf("| %d | %.2f | %s | %u | %u | %.0f | %.1f | %.4f |\n", n, prof, pols[k],
                   tot.gpus, tot.replicas, tot.cost, 100 * tot.served / tot.rate, t[runs / 2]);
            fflush(stdout);
        }
        /* an independent lower bound on any plan's $/h (plan_cost_lower_bound) */
        printf("| %d | %.2f | lower bound | | | %.0f | | |\n", n, prof,
               plan_cost_lower_bound(&p));
        plan_problem_free(&p);
        us_free(mm);
    }
    for (size_t i = 0; i < N_ZOO; i++)
        usher_model_free(ms[i]);
    usher_estimator_free(e);
    return 0;
}
