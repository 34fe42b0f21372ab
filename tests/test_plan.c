/*
 * test_plan.c - the planner (issue 4): USHER against the exact optimum on
 * seeded random small instances, every policy's plans valid, re-planning
 * with few moves, the YAML inputs and their errors, plan.json round trip,
 * a fixed cluster too small.
 *
 * The gap table printed by usher_near_the_optimum is the one in
 * docs/policies.md (regenerate: build/tests/test_plan usher_near_the_optimum),
 * and so are the figures of interference_safe_plans and
 * classification_uses_dram_bandwidth. Debugging: PLAN_DUMP=<seed> prints the
 * plans of an instance, PLAN_GAPS and PLAN_TIMES every gap and exact solve,
 * PLAN_REPLAN every re-planning trial, PLAN_CLASSES USHER's GPUs by class.
 */
#include <math.h>

#include "core/buf.h"
#include "estimate/est.h"
#include "plan/plan.h"
#include "runtime/rt.h"
#include "test.h"
#include "plan_fixtures.h"
#include "../bench/batcher_sim.h"
#include "../src/plan/queue_table.h"
#include "usher/plan.h"

/* PLAN_DUMP=<seed>: print the plans of that instance */
static void dump(uint64_t seed, const plan_solution *s, const plan_problem *p)
{
    const char *d = getenv("PLAN_DUMP");
    if (d && strtoull(d, NULL, 10) == seed)
        plan_write_table(s, p, NULL, stdout);
}

/* the problems below plan with the interference model unless a test says */
static bool interference = true;
/* ... and with the queueing rule (queue.c) unless a test says */
static bool queue_off = false;

static const char *const types[] = {"a100-80gb", "v100-16gb", "t4"};

static void set_type(plan_problem *p, uint16_t t, const char *key, int64_t count, int64_t max)
{
    const gpu_catalog *cat = est_catalog(est());
    plan_type *ty = &p->t[t];
    memset(ty, 0, sizeof *ty);
    gpu_catalog_find(cat, key, &ty->g, NULL);
    snprintf(ty->key, sizeof ty->key, "%s", key);
    ty->count = count;
    ty->max = max;
    ty->price = ty->g->price_per_hour;
    ty->tdp_w = ty->g->tdp_w;
    ty->idle_frac = 0.25;
}

/* <= 8 models, <= 6 GPUs of 2 or 3 types, elastic with limits (min-cost) or
 * fixed (max-goodput) */
static int small_instance(uint64_t seed, bool fixed, plan_problem *p)
{
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    memset(p, 0, sizeof *p);
    p->interference = interference;
    /* PLAN_QUEUE_OFF (debugging): as before the queueing rule */
    p->queue_off = queue_off || getenv("PLAN_QUEUE_OFF") != NULL;
    p->objective = fixed ? PLAN_MAX_GOODPUT : PLAN_MIN_COST;
    p->fixed = fixed;
    int nt = irand(2, 3), left = 6;
    int first = irand(0, 2);
    for (int t = 0; t < nt; t++) {
        int lim = irand(1, left - (nt - t - 1) < 3 ? left - (nt - t - 1) : 3);
        left -= lim;
        set_type(p, (uint16_t)t, types[(first + t) % 3], fixed ? lim : -1, lim);
    }
    p->nt = (uint32_t)nt;
    p->n = (uint32_t)irand(2, 8);
    p->m = us_calloc(p->n, sizeof *p->m);
    usher_model *ms[8];
    for (uint32_t i = 0; i < p->n; i++) {
        size_t z = (size_t)irand(0, N_ZOO - 1);
        ms[i] = zoo_model(z);
        p->m[i].name = us_strdup(zoo[z]);
        p->m[i].rate = irand(20, 120) * (fixed ? 10 : 4);
        p->m[i].slo_ms = irand(30, 200);
        p->m[i].priority = irand(0, 2);
    }
    return profile(p, ms);
}

/* instance `seed`, planned by the exact optimum and by USHER */
static int exact_and_usher(uint64_t seed, bool fixed, plan_problem *p, plan_solution *ex,
                           plan_solution *us, plan_totals *te, plan_totals *tu, usher_error *err)
{
    int rc;
    if (small_instance(seed, fixed, p) < 0)
        return USHER_ERR_INTERNAL;
    if ((rc = plan_solve(p, plan_policy_find("exact"), ex, err)) < 0 ||
        (rc = plan_solve(p, plan_policy_find("usher"), us, err)) < 0)
        return rc;
    plan_totals_of(ex, p, te);
    plan_totals_of(us, p, tu);
    dump(seed, ex, p);
    dump(seed, us, p);
    return USHER_OK;
}

typedef struct gap_row {
    double sum;
    int n, infeasible, worse_than_usher;
} gap_row;

TEST(usher_near_the_optimum)
{
    usher_error err;
    plan_exact_time_limit_ms = getenv("EXACT_MS") ? atoi(getenv("EXACT_MS")) : 10000;
    enum { N = 60 };
    gap_row rows[16] = {0};
    int compared = 0, exact_feasible = 0, timeouts = 0, below = 0, refused = 0;
    double dearer = 0; /* USHER's gaps where it is dearer than the program's optimum */
    double worst = 0, lb_ratio = 0;
    uint64_t worst_seed = 0;
    int lb_n = 0;
    for (uint64_t seed = getenv("SEED") ? strtoull(getenv("SEED"), NULL, 10) : 1; seed <= (getenv("SEED") ? strtoull(getenv("SEED"), NULL, 10) : N); seed++) {
        plan_problem p;
        plan_solution ex, us;
        plan_totals te, tu;
        ASSERT_OK(exact_and_usher(seed, false, &p, &ex, &us, &te, &tu, &err));
        double lb = plan_cost_lower_bound(&p);
        timeouts += ex.exact_status == PLAN_EXACT_TIMEOUT;
        refused += ex.exact_status == PLAN_EXACT_REFUSED;
        if (getenv("PLAN_TIMES"))
            printf("  seed %llu: exact %.2f s (status %d)\n", (unsigned long long)seed, ex.seconds, ex.exact_status);
        if (te.feasible) {
            exact_feasible++;
            if (!tu.feasible) /* counted in its row (asserted 0 below): the table is printed */
                fprintf(stderr, "  seed %llu: the optimum serves every model, USHER does not\n",
                        (unsigned long long)seed);
            /* the program's optimum is an upper bound on the optimum under the
             * model (its linear form is conservative): USHER may be cheaper, never
             * without the model */
            if (tu.cost < te.cost - 1e-6 && ex.exact_status == PLAN_EXACT_OPTIMAL) {
                if (!p.interference)
                    FAIL_("seed %llu: USHER $%.2f below the optimum $%.2f",
                          (unsigned long long)seed, tu.cost, te.cost);
                below++;
            }
        }
        for (size_t k = 0; plan_policy_at(k); k++) {
            const plan_policy *pol = plan_policy_at(k);
            /* the exact plan is ex (solved once: the program is the slow part) */
            bool is_exact = strcmp(pol->name, "exact") == 0;
            plan_solution s;
            if (!is_exact)
                ASSERT_OK(plan_solve(&p, pol, &s, &err)); /* plan_check inside */
            plan_totals t;
            plan_totals_of(is_exact ? &ex : &s, &p, &t);
            /* the independent lower bound holds under every plan that serves every rate */
            if (t.feasible && p.objective == PLAN_MIN_COST && t.cost < lb - 1e-6)
                FAIL_("seed %llu: %s's plan $%.4f/h below the lower bound $%.4f/h",
                      (unsigned long long)seed, pol->name, t.cost, lb);
            if (t.feasible && strcmp(pol->name, "usher") == 0 && lb > 0) {
                lb_ratio += t.cost / lb;
                lb_n++;
            }
            if (te.feasible && ex.exact_status == PLAN_EXACT_OPTIMAL) {
                if (!t.feasible) {
                    rows[k].infeasible++;
                } else {
                    double gap = 100 * (t.cost - te.cost) / te.cost;
                    if (getenv("PLAN_GAPS") && strcmp(pol->name, "usher") == 0 && fabs(gap) > 0.01)
                        printf("  seed %llu: usher gap %.1f%%\n", (unsigned long long)seed, gap);
                    rows[k].sum += gap;
                    rows[k].n++;
                    if (strcmp(pol->name, "usher") == 0 && gap > 0)
                        dearer += gap;
                    /* one instance each of the packer's fixes (improve.c): the
                     * share caps (34, 57; 49 with the 30% cap), the squeaky-wheel
                     * order (47), the repair (12), the set search after the
                     * repacking (57) */
                    if (strcmp(pol->name, "usher") == 0 && gap > 0.5 &&
                        (seed == 12 || seed == 34 || seed == 47 || seed == 49 || seed == 57))
                        FAIL_("seed %llu: USHER %.1f%% above the optimum (fixed before)",
                              (unsigned long long)seed, gap);
                    if (strcmp(pol->name, "usher") == 0 && gap > worst) {
                        worst = gap;
                        worst_seed = seed;
                    }
                }
            }
            if (!is_exact)
                plan_solution_free(&s);
        }
        compared += te.feasible && ex.exact_status == PLAN_EXACT_OPTIMAL;
        plan_solution_free(&ex);
        plan_solution_free(&us);
        plan_problem_free(&p);
    }
    printf("  %d instances, %d with a feasible optimum, %d proven optimal and compared, %d "
           "exact time-outs, %d exact plans the model refused\n",
           N, exact_feasible, compared, timeouts, refused);
    printf("  | policy | mean cost gap to the optimum | infeasible where the optimum is feasible |\n"
           "  |---|---|---|\n");
    for (size_t k = 0; plan_policy_at(k); k++)
        printf("  | %s | %.2f%% (%d plans) | %d |\n", plan_policy_at(k)->name,
               rows[k].n ? rows[k].sum / rows[k].n : 0, rows[k].n, rows[k].infeasible);
    printf("  USHER's worst gap %.1f%% (seed %llu); USHER cheaper than the program's optimum on "
           "%d instances (its linear form of the model is conservative)\n",
           worst, (unsigned long long)worst_seed, below);
    /* the program with the interference model is harder to prove: a few run
     * out of time (docs/policies.md) */
    ASSERT(compared >= 45);
    size_t u = 0;
    while (strcmp(plan_policy_at(u)->name, "usher") != 0)
        u++;
    printf("  USHER's mean gap counting only where it is dearer: %.2f%%\n", dearer / rows[u].n);
    printf("  USHER's cost over the independent lower bound (plan_cost_lower_bound): %.3f x "
           "on average (%d plans)\n", lb_n ? lb_ratio / lb_n : 0, lb_n);
    ASSERT_EQ_INT(rows[u].infeasible, 0);
    /* 2.0% until the estimator of 2026-12-07 (MatMul folding, GEMV, Winograd
     * F(4x4,3x3)), then 6.11% (worst 127%, seeds 34 and 47: packing each
     * model at its most load per footprint fragmented three T4s and opened a
     * V100). improve.c's set search now also packs with capped shares, moves
     * a model left short to the front of the order, repairs a short packing
     * by moving a fragment, and runs after the repacking of a plan that fell
     * short: 0.00% over 48-50 proven instances, every one at the optimum
     * (docs/policies.md). Asserted at 1.0%: 5-7 instances time out on the
     * loaded VM and are not compared, so an instance never proven here may
     * still have a gap */
    ASSERT(rows[u].sum / rows[u].n <= 1.0);
    /* the cheaper plans (a conservative program) may not hide dearer ones */
    ASSERT(dearer / rows[u].n <= 1.0);
    ASSERT(worst < 25.0);
    fixtures_free();
}

static double weighted(const plan_solution *s, const plan_problem *p)
{
    double g = 0;
    for (uint32_t m = 0; m < p->n; m++)
        g += s->served[m] * plan_weight(&p->m[m]);
    return g;
}

TEST(goodput_on_small_fixed_clusters)
{
    usher_error err;
    plan_exact_time_limit_ms = 10000;
    double su = 0, se = 0;
    int above = 0;
    for (uint64_t seed = 101; seed <= 120; seed++) {
        plan_problem p;
        plan_solution ex, us;
        plan_totals te, tu;
        ASSERT_OK(exact_and_usher(seed, true, &p, &ex, &us, &te, &tu, &err));
        double wu = weighted(&us, &p), we = weighted(&ex, &p);
        /* above the program's optimum only through its conservative linear form */
        if (ex.exact_status == PLAN_EXACT_OPTIMAL && wu > we * (1 + 1e-6) + 1e-6) {
            if (!p.interference)
                FAIL_("seed %llu: USHER's weighted goodput %.1f is above the optimum's %.1f",
                      (unsigned long long)seed, wu, we);
            above++;
        }
        su += wu;
        se += we;
        if (getenv("PLAN_GAPS") && wu < we * 0.999)
            printf("  seed %llu: usher %.1f, the optimum %.1f (weighted goodput; rate %.1f)\n",
                   (unsigned long long)seed, wu, we, te.rate);
        plan_solution_free(&ex);
        plan_solution_free(&us);
        plan_problem_free(&p);
    }
    printf("  fixed clusters: USHER's weighted goodput is %.2f%% of the optimum's (above it on %d "
           "of 20)\n",
           100 * su / se, above);
    ASSERT(su >= 0.97 * se);
    fixtures_free();
}

/* 20 zoo-like models on A100 + V100, elastic */
static int medium_instance(uint64_t seed, plan_problem *p, usher_model **ms)
{
    rng_state = seed;
    memset(p, 0, sizeof *p);
    p->interference = interference;
    p->queue_off = queue_off || getenv("PLAN_QUEUE_OFF") != NULL;
    p->objective = PLAN_MIN_COST;
    set_type(p, 0, "a100-80gb", -1, 1000);
    set_type(p, 1, "v100-16gb", -1, 1000);
    p->nt = 2;
    p->n = 20;
    p->m = us_calloc(p->n, sizeof *p->m);
    for (uint32_t i = 0; i < p->n; i++) {
        size_t z = i % N_ZOO;
        ms[i] = zoo_model(z);
        char name[64];
        snprintf(name, sizeof name, "%s-%u", zoo[z], i);
        p->m[i].name = us_strdup(name);
        p->m[i].rate = irand(100, 900);
        p->m[i].slo_ms = irand(60, 200);
    }
    return profile(p, ms);
}

/* the shared profiling (one template per structure, filtered per SLO) gives
 * the candidates, uids and plans profiling every (structure, SLO) afresh gives:
 * SLOs repeated and distinct, two precisions, a type on two nodes, with and
 * without the interference model */
static int shared_instance(uint64_t seed, bool with, bool direct, plan_problem *p,
                           usher_model **ms)
{
    rng_state = seed;
    memset(p, 0, sizeof *p);
    p->interference = with;
    p->profile_direct = direct;
    p->objective = PLAN_MIN_COST;
    set_type(p, 0, "a100-80gb", -1, 1000);
    set_type(p, 1, "v100-16gb", -1, 1000);
    set_type(p, 2, "t4", -1, 1000);
    set_type(p, 3, "a100-80gb", -1, 1000);
    snprintf(p->t[3].node, sizeof p->t[3].node, "n-2");
    p->nt = 4;
    p->n = 48;
    p->m = us_calloc(p->n, sizeof *p->m);
    for (uint32_t i = 0; i < p->n; i++) {
        size_t z = i % N_ZOO;
        ms[i] = zoo_model(z);
        char name[64];
        snprintf(name, sizeof name, "%s-%u", zoo[z], i);
        p->m[i].name = us_strdup(name);
        p->m[i].rate = irand(50, 900);
        p->m[i].slo_ms = i % 3 ? 40 + 160 * urand() : 10 * irand(6, 9);
        p->m[i].precision = (i / N_ZOO) % 2 ? USHER_PRECISION_FP16 : USHER_PRECISION_FP32;
    }
    return profile(p, ms);
}

TEST(shared_profiles_plan_as_direct)
{
    for (int with = 0; with < 2; with++) {
        plan_problem a, b;
        usher_model *ms[48];
        ASSERT(shared_instance(5, with, false, &a, ms) == 0);
        ASSERT(shared_instance(5, with, true, &b, ms) == 0);
        ASSERT_EQ_U64(a.next_uid, b.next_uid);
        uint32_t total = 0;
        for (uint32_t i = 0; i < a.n; i++) {
            const plan_model *x = &a.m[i], *y = &b.m[i];
            ASSERT_EQ_INT(x->n_cfg, y->n_cfg);
            ASSERT(x->fastest_ms == y->fastest_ms);
            ASSERT_STR_EQ(x->fastest_gpu, y->fastest_gpu);
            total += x->n_cfg;
            for (uint32_t c = 0; c < x->n_cfg; c++) {
                const plan_cfg *u = &x->cfg[c], *v = &y->cfg[c];
                ASSERT(u->type == v->type && u->batch == v->batch && u->share == v->share);
                ASSERT_EQ_U64(u->uid, v->uid);
                ASSERT(u->thr == v->thr && u->lat_ms == v->lat_ms && u->mreq == v->mreq);
                ASSERT(u->lat_full == v->lat_full && u->thr_full == v->thr_full);
                ASSERT(u->alone_only == v->alone_only && u->dram_pct == v->dram_pct);
            }
        }
        ASSERT(total > a.n);
        usher_error err;
        plan_solution sa, sb;
        ASSERT_OK(plan_solve(&a, plan_policy_find("usher"), &sa, &err));
        ASSERT_OK(plan_solve(&b, plan_policy_find("usher"), &sb, &err));
        ASSERT_EQ_INT(sa.n, sb.n);
        for (uint32_t g = 0; g < sa.n; g++) {
            ASSERT_EQ_INT(sa.g[g].type, sb.g[g].type);
            ASSERT_EQ_INT(sa.g[g].n, sb.g[g].n);
            for (uint32_t k = 0; k < sa.g[g].n; k++) {
                ASSERT_EQ_INT(sa.g[g].r[k].model, sb.g[g].r[k].model);
                ASSERT_EQ_INT(sa.g[g].r[k].cfg, sb.g[g].r[k].cfg);
                ASSERT(sa.g[g].r[k].load == sb.g[g].r[k].load);
            }
        }
        plan_solution_free(&sa);
        plan_solution_free(&sb);
        plan_problem_free(&a);
        plan_problem_free(&b);
    }
    fixtures_free();
}

/* a model at 10^9 req/s: whole-GPU replicas placed arithmetically, the rest
 * planned; elastic: every request served; fixed: within the counts */
TEST(huge_rate_plans_in_bounded_work)
{
    for (int fixed = 0; fixed < 2; fixed++) {
        plan_problem p;
        usher_model *ms[2] = {zoo_model(1), zoo_model(0)};
        memset(&p, 0, sizeof p);
        p.interference = true;
        p.objective = PLAN_MIN_COST;
        set_type(&p, 0, "a100-80gb", fixed ? 300 : -1, 1000000);
        set_type(&p, 1, "t4", fixed ? 100 : -1, 1000000);
        p.nt = 2;
        p.fixed = fixed;
        p.n = 2;
        p.m = us_calloc(2, sizeof *p.m);
        p.m[0].name = us_strdup("huge");
        p.m[0].rate = fixed ? 1e9 : 2e8;
        p.m[0].slo_ms = 50;
        p.m[1].name = us_strdup("small");
        p.m[1].rate = 300;
        p.m[1].slo_ms = 30;
        ASSERT(profile(&p, ms) == 0);
        usher_error err;
        plan_solution s;
        ASSERT_OK(plan_solve(&p, plan_policy_find("usher"), &s, &err));
        plan_totals t;
        plan_totals_of(&s, &p, &t);
        double thr = 0;
        for (uint32_t g = 0; g < s.n; g++)
            for (uint32_t k = 0; k < s.g[g].n; k++)
                if (s.g[g].r[k].model == 0)
                    thr += plan_cap(&s, &p, &s.g[g].r[k]);
        if (!fixed) {
            ASSERT(t.feasible);
            ASSERT(thr >= p.m[0].rate * (1 - 1e-9));
        } else {
            ASSERT(s.used_type[0] <= 300 && s.used_type[1] <= 100);
            ASSERT(!t.feasible && t.unserved > 0.99 * 1e9);
            ASSERT(s.served[1] >= 300 * (1 - 1e-9));
        }
        plan_solution_free(&s);
        plan_problem_free(&p);
    }
    fixtures_free();
}

TEST(replan_20pct_moves_few_replicas)
{
    usher_error err;
    plan_problem p;
    usher_model *ms[20];
    ASSERT(medium_instance(7, &p, ms) == 0);
    double base[20];
    for (uint32_t i = 0; i < p.n; i++)
        base[i] = p.m[i].rate;
    plan_solution run;
    ASSERT_OK(plan_solve(&p, plan_policy_find("usher"), &run, &err));
    plan_totals t0;
    plan_totals_of(&run, &p, &t0);
    ASSERT(t0.feasible);
    uint32_t worst = 0, total = 0, total_forced = 0;
    for (uint64_t trial = 1; trial <= 20; trial++) {
        rng_state = trial * 7919;
        for (uint32_t i = 0; i < p.n; i++)
            p.m[i].rate = base[i] * (0.8 + 0.4 * urand());
        plan_solution s;
        ASSERT_OK(plan_solution_init(&s, &p, "replan"));
        ASSERT_OK(plan_replan(&p, &run, 0, &s, &err));
        ASSERT_OK(plan_check(&s, &p, &err));
        plan_totals t;
        plan_totals_of(&s, &p, &t);
        ASSERT(t.feasible); /* every SLO holds: only SLO-feasible configurations exist */
        /* the starts the new rates force: a model whose new rate passes what its running
         * replicas may carry needs one at least */
        uint32_t forced = 0;
        bool co = p.interference && run.sharing != PLAN_SHARE_TIME;
        for (uint32_t m = 0; m < p.n; m++) {
            double cap = 0;
            for (uint32_t g = 0; g < run.n; g++)
                for (uint32_t k = 0; k < run.g[g].n; k++)
                    if (run.g[g].r[k].model == m)
                        cap += co ? run.g[g].r[k].thr_co : p.m[m].cfg[run.g[g].r[k].cfg].thr;
            forced += p.m[m].rate > cap * (1 + 1e-9);
        }
        if (getenv("PLAN_REPLAN"))
            printf("  trial %llu: %u started (%u models past their replicas' caps), %u stopped, "
                   "%u GPUs (%u before)\n", (unsigned long long)trial, s.moves, forced, s.stopped,
                   t.gpus, t0.gpus);
        if (s.moves > worst)
            worst = s.moves;
        total += s.moves;
        total_forced += forced;
        /* starts only where the rates force them: under the queueing rule plans hold fewer,
         * larger replicas loaded near their caps (32 for 20 models here, 60 before the
         * interference model), so a model whose rate rises past its replicas' caps needs
         * one start at least, and sometimes two small ones in the room left on the GPUs
         * it has rather than a new GPU. A bound per replica (15%) no longer holds: 4.4 of
         * 32 started on average, where 3.5 models a trial pass their replicas' caps */
        if (s.moves > 2 * forced + 1)
            FAIL_("trial %llu: %u replicas started where the rates force %u",
                  (unsigned long long)trial, s.moves, forced);
        plan_solution_free(&s);
    }
    printf("  +-20%% rates: at most %u, on average %.1f of %u replicas started; %.1f models a "
           "trial past their replicas' caps\n", worst, total / 20.0, t0.replicas,
           total_forced / 20.0);
    ASSERT(total * 2 <= 3 * total_forced);
    /* rates down by a third: with a budget of moves the re-plan closes GPUs,
     * spending no more moves than allowed beyond the no-budget re-plan */
    for (uint32_t i = 0; i < p.n; i++)
        p.m[i].rate = base[i] * 0.67;
    plan_solution keep, spend;
    ASSERT_OK(plan_solution_init(&keep, &p, "replan"));
    ASSERT_OK(plan_replan(&p, &run, 0, &keep, &err));
    ASSERT_OK(plan_solution_init(&spend, &p, "replan"));
    ASSERT_OK(plan_replan(&p, &run, 12, &spend, &err));
    ASSERT_OK(plan_check(&spend, &p, &err));
    plan_totals tk, ts;
    plan_totals_of(&keep, &p, &tk);
    plan_totals_of(&spend, &p, &ts);
    ASSERT(tk.feasible && ts.feasible);
    ASSERT(ts.cost <= tk.cost);
    ASSERT(spend.moves <= keep.moves + 12);
    printf("  rates -33%%: %u GPUs ($%.2f/h) with no moves budget, %u ($%.2f/h) with 12 "
           "(%u replicas started)\n",
           tk.gpus, tk.cost, ts.gpus, ts.cost, spend.moves);
    plan_solution_free(&keep);
    plan_solution_free(&spend);
    /* unchanged rates: nothing moves */
    for (uint32_t i = 0; i < p.n; i++)
        p.m[i].rate = base[i];
    plan_solution same;
    ASSERT_OK(plan_solution_init(&same, &p, "replan"));
    ASSERT_OK(plan_replan(&p, &run, 0, &same, &err));
    ASSERT_EQ_INT(same.moves, 0);
    ASSERT_EQ_INT(same.stopped, 0);
    plan_solution_free(&same);
    plan_solution_free(&run);
    plan_problem_free(&p);
    fixtures_free();
}

TEST(every_policy_on_a_medium_instance)
{
    usher_error err;
    plan_problem p;
    usher_model *ms[20];
    ASSERT(medium_instance(11, &p, ms) == 0);
    double usher_cost = 0;
    for (size_t k = 0; plan_policy_at(k); k++) {
        const plan_policy *pol = plan_policy_at(k);
        if (strcmp(pol->name, "exact") == 0)
            continue;
        plan_solution s;
        ASSERT_OK(plan_solve(&p, pol, &s, &err));
        plan_totals t;
        plan_totals_of(&s, &p, &t);
        if (strcmp(pol->name, "usher") == 0) {
            ASSERT(t.feasible);
            usher_cost = t.cost;
        } else if (t.feasible) {
            ASSERT(t.cost >= usher_cost * 0.98); /* USHER first in the table */
        }
        plan_solution_free(&s);
    }
    plan_problem_free(&p);
    fixtures_free();
}

/* ---- the interference model as the rule ----------------------------------------- */

/* GPUs of s that the interference model, asked afresh through if_predict (not
 * through the planner's rule or caches), refuses: shares past 100%, a replica
 * whose PLAN_SLO_FACTOR x co-located latency misses its SLO or whose load
 * exceeds its co-located throughput, DRAM past the device's. *late (may be
 * NULL) adds the requests/s those replicas carry */
static int refused_gpus(const plan_problem *p, const plan_solution *s, double *late)
{
    int bad = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        const plan_gpu *g = &s->g[i];
        if_replica r[IF_MAX_REPLICAS];
        if_result res[IF_MAX_REPLICAS];
        double share = 0, dram = 0;
        for (uint32_t k = 0; k < g->n; k++) {
            const plan_cfg *c = &p->m[g->r[k].model].cfg[g->r[k].cfg];
            r[k] = c->ir;
            share += c->share;
        }
        usher_error err;
        if (g->n > IF_MAX_REPLICAS ||
            if_predict(if_model_default(), &p->t[g->type].dev, r, g->n, res, &err) < 0) {
            bad++;
            continue;
        }
        bool ok = share <= 100 + 1e-6;
        for (uint32_t k = 0; k < g->n; k++) {
            const plan_replica *rp = &g->r[k];
            bool late_k = PLAN_SLO_FACTOR * res[k].latency_ms > p->m[rp->model].slo_ms * (1 + 1e-6) ||
                          rp->load > res[k].throughput * (1 + 1e-6) + 1e-6;
            if (late_k && late)
                *late += rp->load;
            ok &= !late_k;
            dram += res[k].busy * if_dram_util(&p->t[g->type].dev, &r[k]);
        }
        bad += !(ok && dram <= 1 + 1e-6);
    }
    return bad;
}

typedef struct safety {
    int plans, old_refused, gpus_refused, gpus_old, both;
    double late, rate, d_gpus, d_cost, cost_old;
} safety;

/* instance by seed (kind 0: small min-cost, 1: small max-goodput, 2: medium),
 * with or without the model */
static int safety_instance(int kind, uint64_t seed, bool with, plan_problem *p)
{
    interference = with;
    usher_model *ms[20];
    int rc = kind == 2 ? medium_instance(seed, p, ms) : small_instance(seed, kind == 1, p);
    interference = true;
    return rc;
}

/* one instance: USHER with the model (every GPU must pass) and before it */
static void safety_one(int kind, uint64_t seed, safety *f)
{
    usher_error err;
    plan_problem pn, po;
    plan_solution sn, so;
    ASSERT(safety_instance(kind, seed, true, &pn) == 0);
    ASSERT_OK(plan_solve(&pn, plan_policy_find("usher"), &sn, &err));
    int bad = refused_gpus(&pn, &sn, NULL);
    if (bad)
        FAIL_("kind %d seed %llu: the model refuses %d of USHER's %u GPUs", kind,
              (unsigned long long)seed, bad, sn.n);
    /* re-planning from it, every rate up by 15%, keeps the rule too */
    for (uint32_t m = 0; m < pn.n; m++)
        pn.m[m].rate *= 1.15;
    plan_solution sr;
    ASSERT_OK(plan_solution_init(&sr, &pn, "replan"));
    ASSERT_OK(plan_replan(&pn, &sn, 0, &sr, &err));
    if ((bad = refused_gpus(&pn, &sr, NULL)))
        FAIL_("kind %d seed %llu: the model refuses %d GPUs of the re-plan", kind,
              (unsigned long long)seed, bad);
    plan_solution_free(&sr);
    for (uint32_t m = 0; m < pn.n; m++)
        pn.m[m].rate /= 1.15;
    /* the same instance planned as before the model, judged by it */
    ASSERT(safety_instance(kind, seed, false, &po) == 0);
    ASSERT_OK(plan_solve(&po, plan_policy_find("usher"), &so, &err));
    double late = 0;
    int old_bad = refused_gpus(&po, &so, &late);
    plan_totals tn, to;
    plan_totals_of(&sn, &pn, &tn);
    plan_totals_of(&so, &po, &to);
    f->plans++;
    f->old_refused += old_bad > 0;
    f->gpus_refused += old_bad;
    f->gpus_old += (int)so.n;
    f->late += late;
    f->rate += to.rate;
    if (kind != 1 && tn.feasible && to.feasible) {
        f->both++;
        f->d_gpus += (double)tn.gpus - to.gpus;
        f->d_cost += tn.cost - to.cost;
        f->cost_old += to.cost;
    }
    plan_solution_free(&sn);
    plan_solution_free(&so);
    plan_problem_free(&pn);
    plan_problem_free(&po);
}

TEST(interference_safe_plans)
{
    safety f = {0};
    for (uint64_t seed = 201; seed <= 240; seed++)
        safety_one(0, seed, &f);
    for (uint64_t seed = 301; seed <= 310; seed++)
        safety_one(1, seed, &f);
    for (uint64_t seed = 21; seed <= 24; seed++)
        safety_one(2, seed, &f);
    printf("  %d instances: every GPU of USHER's plans (and of re-plans at +15%%) passes a fresh "
           "prediction\n",
           f.plans);
    printf("  planned as before the model: %d of %d plans (%d of %d GPUs) hold a replica the model "
           "finds late or overloaded: %.1f%% of the requests\n",
           f.old_refused, f.plans, f.gpus_refused, f.gpus_old, 100 * f.late / f.rate);
    printf("  the price of interference-safety where both serve every rate (%d min-cost plans): "
           "%+.2f GPUs and %+.1f%% $/h on average\n",
           f.both, f.both ? f.d_gpus / f.both : 0, f.cost_old > 0 ? 100 * f.d_cost / f.cost_old : 0);
    /* plans before the model load co-located replicas to their throughput alone */
    ASSERT(f.old_refused > 0);
    fixtures_free();
}

/* ---- classification (usher.c, step 2) -------------------------------------------- */
static const char *const class_name[] = {"balanced", "compute-heavy", "memory-heavy"};

/* the 12 zoo models on one GPU type (SLO 10 x the fastest batch 1 there),
 * elastic, with the model */
static int one_type_instance(const char *type, plan_problem *p)
{
    memset(p, 0, sizeof *p);
    p->interference = interference;
    p->objective = PLAN_MIN_COST;
    set_type(p, 0, type, -1, 1000);
    p->nt = 1;
    p->n = N_ZOO;
    p->m = us_calloc(p->n, sizeof *p->m);
    usher_model *ms[N_ZOO];
    for (uint32_t i = 0; i < p->n; i++) {
        ms[i] = zoo_model(i);
        p->m[i].name = us_strdup(zoo[i]);
        p->m[i].rate = 1000; /* tens of GPUs: past the GPU-set search, which ignores groups */
        p->m[i].slo_ms = 1; /* raised by profile() to 6 x the fastest */
    }
    return profile(p, ms);
}

TEST(classification_uses_dram_bandwidth)
{
    usher_error err;
    const char *types3[] = {"t4", "v100-16gb", "a100-80gb"};
    int with[3] = {0}, without[3] = {0}, paired = 0, mixed = 0, gpus = 0;
    for (int k = 0; k < 3; k++) {
        plan_problem p;
        ASSERT(one_type_instance(types3[k], &p) == 0);
        for (uint32_t m = 0; m < p.n; m++)
            for (uint32_t c = 0; c < p.m[m].n_cfg; c++) {
                with[plan_usher_class(&p, &p.m[m].cfg[c])]++;
                p.interference = false; /* the classification before the model: Mreq */
                without[plan_usher_class(&p, &p.m[m].cfg[c])]++;
                p.interference = true;
            }
        uint32_t gid[N_ZOO];
        plan_class cls[N_ZOO];
        ASSERT(plan_usher_groups(&p, gid, cls) == USHER_OK);
        for (uint32_t m = 0; m < p.n; m++)
            if (gid[m] == m)
                for (uint32_t o = 0; o < p.n; o++)
                    if (o != m && gid[o] == m) {
                        printf("  %s: group of %s (%s) with %s (%s)\n", types3[k], zoo[m],
                               class_name[cls[m]], zoo[o], class_name[cls[o]]);
                        paired += (cls[m] == PLAN_COMPUTE_HEAVY && cls[o] == PLAN_MEMORY_HEAVY) ||
                                  (cls[m] == PLAN_MEMORY_HEAVY && cls[o] == PLAN_COMPUTE_HEAVY);
                    }
        /* and on the GPUs of USHER's plan: replicas of both classes side by side */
        plan_solution s;
        ASSERT_OK(plan_solve(&p, plan_policy_find("usher"), &s, &err));
        if (getenv("PLAN_CLASSES"))
            plan_write_table(&s, &p, NULL, stdout);
        for (uint32_t i = 0; i < s.n; i++) {
            bool has[3] = {0};
            if (getenv("PLAN_CLASSES"))
                for (uint32_t r = 0; r < s.g[i].n; r++)
                    printf("  GPU %u: %s %s\n", i, zoo[s.g[i].r[r].model], class_name[plan_usher_class(&p, &p.m[s.g[i].r[r].model].cfg[s.g[i].r[r].cfg])]);
            for (uint32_t r = 0; r < s.g[i].n; r++)
                has[plan_usher_class(&p, &p.m[s.g[i].r[r].model].cfg[s.g[i].r[r].cfg])] = true;
            mixed += has[PLAN_COMPUTE_HEAVY] && has[PLAN_MEMORY_HEAVY];
            gpus++;
        }
        plan_solution_free(&s);
        plan_problem_free(&p);
    }
    printf("  candidates: %d compute-heavy, %d balanced, %d memory-heavy (Mreq alone: %d, %d, %d)\n",
           with[PLAN_COMPUTE_HEAVY], with[PLAN_BALANCED], with[PLAN_MEMORY_HEAVY],
           without[PLAN_COMPUTE_HEAVY], without[PLAN_BALANCED], without[PLAN_MEMORY_HEAVY]);
    printf("  %d groups pair a compute-heavy with a memory-heavy model; %d of USHER's %d GPUs hold "
           "both classes\n",
           paired, mixed, gpus);
    /* memory alone made (almost) every candidate compute-heavy: grouping did nothing */
    ASSERT(without[PLAN_MEMORY_HEAVY] == 0);
    ASSERT(with[PLAN_MEMORY_HEAVY] > 0 && with[PLAN_COMPUTE_HEAVY] > 0);
    ASSERT(paired > 0 && mixed > 0);
    fixtures_free();
}

/* ---- inputs ---------------------------------------------------------------------- */
static const char *write_file(const char *name, const char *text)
{
    const char *path = test_path(test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

static char zoo_dir[512];
static const char *workload(const char *body)
{
    snprintf(zoo_dir, sizeof zoo_dir, "%s", test_path(test_source_dir(), "models/zoo"));
    static char text[8192];
    /* ZOO in the body stands for the zoo directory */
    size_t o = 0;
    for (const char *s = body; *s && o < sizeof text - 600; s++) {
        if (strncmp(s, "ZOO", 3) == 0) {
            o += (size_t)snprintf(text + o, sizeof text - o, "%s", zoo_dir);
            s += 2;
        } else {
            text[o++] = *s;
        }
    }
    text[o] = 0;
    return write_file("workload.yaml", text);
}

static int plan_files(const char *wl, const char *cl, const char *policy, usher_plan **out,
                      usher_error *err)
{
    usher_plan_params pp = usher_plan_default_params();
    pp.workload = wl;
    pp.cluster = cl;
    pp.policy = policy;
    return usher_plan_make(est(), &pp, out, err);
}

static const char *ok_cluster = "objective: min-cost\n"
                                "gpus:\n"
                                "  - type: a100-80gb\n"
                                "    max: 8\n"
                                "  - type: v100-16gb\n"
                                "    max: 8\n";

static const char *ok_workload = "models:\n"
                                 "  - name: resnet50\n"
                                 "    model: ZOO/resnet50.onnx\n"
                                 "    rate: 800\n"
                                 "    slo_ms: 60\n"
                                 "  - name: bert\n"
                                 "    model: ZOO/bert-base.onnx\n"
                                 "    rate: 200\n"
                                 "    slo_ms: 150\n"
                                 "    group: g1\n";

/* plan these files and expect a failure whose message holds every needle */
static void expect_error(const char *wl_body, const char *cl_body, int code,
                         const char *const *needles)
{
    const char *cl = write_file("cluster.yaml", cl_body);
    const char *wl = workload(wl_body);
    usher_plan *pl = NULL;
    usher_error err;
    int rc = plan_files(wl, cl, NULL, &pl, &err);
    if (rc >= 0) {
        usher_plan_free(pl);
        FAIL_("planned where an error was due (expected: %s)", needles[0]);
    }
    if (rc != code)
        FAIL_("code %d, not %d: %s", rc, code, err.msg);
    for (size_t i = 0; needles[i]; i++)
        ASSERT_CONTAINS(err.msg, needles[i]);
}

TEST(input_errors_name_file_line_and_field)
{
    /* malformed YAML */
    expect_error(ok_workload, "gpus:\n  - type: t4\n   max: [1\n", USHER_ERR_PARSE,
                 (const char *[]){"cluster.yaml:", NULL});
    /* unknown GPU type */
    expect_error(ok_workload, "gpus:\n  - type: a100\n    max: 2\n", USHER_ERR_PARSE,
                 (const char *[]){"cluster.yaml:2:", "gpus[0].type", "a100", NULL});
    /* a typo in a key */
    expect_error(ok_workload, "gpus:\n  - type: t4\n    mx: 2\n", USHER_ERR_PARSE,
                 (const char *[]){"cluster.yaml:3:", "mx", "max", NULL});
    /* fixed and elastic at once */
    expect_error(ok_workload, "gpus:\n  - type: t4\n    max: 2\n    count: 1\n", USHER_ERR_PARSE,
                 (const char *[]){"cluster.yaml:", "exclusive", NULL});
    expect_error(ok_workload, "objective: cheapest\ngpus:\n  - type: t4\n", USHER_ERR_PARSE,
                 (const char *[]){"cluster.yaml:1:", "objective", NULL});
    /* negative rate */
    expect_error("models:\n  - name: a\n    model: ZOO/resnet18.onnx\n    rate: -5\n"
                 "    slo_ms: 50\n",
                 ok_cluster, USHER_ERR_PARSE,
                 (const char *[]){"workload.yaml:4:", "models[0].rate", NULL});
    /* a missing field, a duplicate name, a missing file */
    expect_error("models:\n  - name: a\n    model: ZOO/resnet18.onnx\n    slo_ms: 50\n",
                 ok_cluster, USHER_ERR_PARSE,
                 (const char *[]){"workload.yaml:2:", "models[0].rate", "missing", NULL});
    expect_error("models:\n  - name: a\n    model: ZOO/resnet18.onnx\n    rate: 5\n"
                 "    slo_ms: 50\n  - name: a\n    model: ZOO/resnet18.onnx\n    rate: 5\n"
                 "    slo_ms: 50\n",
                 ok_cluster, USHER_ERR_PARSE,
                 (const char *[]){"workload.yaml:6:", "already declared at line 2", NULL});
    expect_error("models:\n  - name: a\n    model: ZOO/nope.onnx\n    rate: 5\n    slo_ms: 50\n",
                 ok_cluster, USHER_ERR_NOT_FOUND,
                 (const char *[]){"workload.yaml:3:", "models[0].model", "nope.onnx", NULL});
    /* an SLO no GPU meets: the model and the fastest latency there is */
    expect_error("models:\n  - name: big\n    model: ZOO/vgg19.onnx\n    rate: 5\n"
                 "    slo_ms: 0.5\n",
                 ok_cluster, USHER_ERR_LIMIT,
                 (const char *[]){"workload.yaml:5:", "'big'", "the fastest is", "a100-80gb",
                                  NULL});
    /* an unknown policy */
    usher_plan *pl = NULL;
    usher_error err;
    ASSERT_EQ_INT(plan_files(workload(ok_workload), write_file("cluster.yaml", ok_cluster),
                             "fastest", &pl, &err),
                  USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "fastest");
    fixtures_free();
}

/* a GPU type the model cannot judge is refused where the cluster names it (the
 * file, the line, the type, the missing field), unless planning without the
 * model; a plan that breaks the rule is refused by plan_check, naming the policy */
TEST(interference_input_errors)
{
    usher_error err;
    /* a catalog whose T4 lost its L2 size */
    const char *csv = "key,name,arch,compute_capability,sm_count,max_threads_per_sm,"
                      "max_blocks_per_sm,regs_per_sm,smem_per_sm_kb,l2_mb,mem_gb,mem_bw_gbs,"
                      "boost_clock_mhz,fp32_tflops,fp16_tensor_tflops,int8_tops,tdp_w,"
                      "mig_max_instances,typical_cloud_usd_per_hour,source\n"
                      "t4-nol2,T4,Turing (TU104),7.5,40,1024,16,65536,64,,16,320,1590,8.1,65,130,"
                      "70,0,0.526,test\n";
    usher_estimator_params ep = usher_estimator_default_params();
    ep.gpu_catalog = write_file("gpus.csv", csv);
    usher_estimator *e2;
    ASSERT_OK(usher_estimator_new(&ep, &e2, &err));
    usher_plan_params pp = usher_plan_default_params();
    pp.workload = workload("models:\n  - name: r\n    model: ZOO/resnet50.onnx\n    rate: 100\n"
                           "    slo_ms: 100\n");
    pp.cluster = write_file("cluster.yaml", "objective: min-cost\ngpus:\n  - type: t4-nol2\n"
                                            "    max: 2\n");
    usher_plan *pl = NULL;
    ASSERT_EQ_INT(usher_plan_make(e2, &pp, &pl, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "cluster.yaml:3:");
    ASSERT_CONTAINS(err.msg, "gpus[0].type");
    ASSERT_CONTAINS(err.msg, "t4-nol2");
    ASSERT_CONTAINS(err.msg, "l2_mb");
    pp.interference_off = true; /* the behaviour before the model plans it */
    ASSERT_OK(usher_plan_make(e2, &pp, &pl, &err));
    usher_plan_free(pl);
    usher_estimator_free(e2);
    /* the built-in catalog: a part whose DRAM bandwidth is not known */
    pp.interference_off = false;
    pp.cluster = write_file("cluster.yaml", "gpus:\n  - type: v100-16gb\n    max: 2\n"
                                            "  - type: v100-sxm3-32gb\n    max: 2\n"
                                            "    price_per_hour: 3\n");
    ASSERT_EQ_INT(usher_plan_make(est(), &pp, &pl, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "cluster.yaml:4:");
    ASSERT_CONTAINS(err.msg, "v100-sxm3-32gb");
    ASSERT_CONTAINS(err.msg, "mem_bw_gbs");

    /* a plan made before the model (and before the queueing rule, whose headroom
     * leaves this instance's plan within the model), judged by plan_check as
     * USHER's with it */
    plan_problem p;
    interference = false;
    queue_off = true;
    ASSERT(small_instance(203, false, &p) == 0);
    interference = true;
    queue_off = false;
    plan_solution s;
    ASSERT_OK(plan_solve(&p, plan_policy_find("usher"), &s, &err));
    ASSERT(refused_gpus(&p, &s, NULL) > 0);
    p.interference = true;
    for (uint32_t i = 0; i < s.n; i++)
        plan_coloc_refresh(&s, &p, i);
    ASSERT_EQ_INT(plan_check(&s, &p, &err), USHER_ERR_INTERNAL);
    ASSERT_CONTAINS(err.msg, "usher:");
    ASSERT_CONTAINS(err.msg, "breaks the interference rule");
    /* judged by the model, its late or overloaded replicas serve nothing */
    plan_totals t;
    plan_account(&s, &p);
    plan_totals_of(&s, &p, &t);
    ASSERT(!t.feasible && t.served < t.rate);
    /* configurations made by hand, without the model's inputs: it cannot judge */
    for (uint32_t m = 0; m < p.n; m++)
        for (uint32_t c = 0; c < p.m[m].n_cfg; c++)
            memset(&p.m[m].cfg[c].ir, 0, sizeof p.m[m].cfg[c].ir);
    ASSERT_EQ_INT(plan_check(&s, &p, &err), USHER_ERR_INTERNAL);
    ASSERT_CONTAINS(err.msg, "cannot judge");
    plan_solution_free(&s);
    plan_problem_free(&p);
    fixtures_free();
}

TEST(fixed_cluster_too_small_reports_unserved)
{
    usher_error err;
    const char *cl = write_file("cluster.yaml", "objective: max-goodput\n"
                                                "gpus:\n"
                                                "  - type: t4\n"
                                                "    count: 1\n");
    const char *wl = workload("models:\n"
                              "  - name: r50\n    model: ZOO/resnet50.onnx\n    rate: 3000\n"
                              "    slo_ms: 60\n    priority: 1\n"
                              "  - name: bert\n    model: ZOO/bert-base.onnx\n    rate: 900\n"
                              "    slo_ms: 150\n");
    usher_plan *pl;
    ASSERT_OK(plan_files(wl, cl, NULL, &pl, &err));
    usher_plan_summary s;
    ASSERT_OK(usher_plan_get_summary(pl, &s));
    ASSERT(!s.feasible);
    ASSERT_EQ_INT(s.gpus, 1);
    ASSERT(s.goodput > 0 && s.unserved > 0);
    ASSERT(fabs(s.goodput + s.unserved - s.rate) < 1e-6 * s.rate);
    double un = 0;
    for (uint32_t i = 0; i < s.models; i++) {
        usher_plan_model m;
        ASSERT_OK(usher_plan_model_at(pl, i, &m));
        un += m.unserved;
    }
    ASSERT(fabs(un - s.unserved) < 1e-6 * s.rate);
    usher_plan_free(pl);
    fixtures_free();
}

/* A fixed cluster too small for its load uses every GPU: experiment (c)'s
 * workload at 100 V100s and 667 req/s per GPU (tools/experiments/
 * scale_scenario.py --gpus 100 --per-gpu 666.67, rates and SLOs rounded).
 * Placement ran out of GPUs, then consolidation and the local search closed
 * some, and what was unserved never got them back: 98 GPUs (97 without the
 * local search's refill), vit-b16 and four other models wholly unserved,
 * though each runs on an empty V100. usher.c absorb_rest opens them again */
TEST(fixed_cluster_leaves_no_gpu_idle)
{
    usher_error err;
    const char *cl = write_file("cluster.yaml", "objective: max-goodput\n"
                                                "gpus:\n"
                                                "  - type: v100-16gb\n"
                                                "    count: 100\n");
    const char *wl = workload(
        "models:\n"
        "  - {name: mobilenet-v2-0, model: ZOO/mobilenet-v2.onnx, rate: 16275.3, slo_ms: 3.968}\n"
        "  - {name: resnet18-0, model: ZOO/resnet18.onnx, rate: 8721.7, slo_ms: 3.557}\n"
        "  - {name: vgg16-0, model: ZOO/vgg16.onnx, rate: 6055.1, slo_ms: 12.791}\n"
        "  - {name: alexnet-0, model: ZOO/alexnet.onnx, rate: 4673.8, slo_ms: 3.374}\n"
        "  - {name: squeezenet-0, model: ZOO/squeezenet.onnx, rate: 3823.4, slo_ms: 2.976}\n"
        "  - {name: inception-v3-0, model: ZOO/inception-v3.onnx, rate: 3244.8, slo_ms: 13.452}\n"
        "  - {name: vit-b16-0, model: ZOO/vit-b16.onnx, rate: 2824.5, slo_ms: 35.078}\n"
        "  - {name: shufflenet-v2-0, model: ZOO/shufflenet-v2.onnx, rate: 2504.7, slo_ms: 4.336}\n"
        "  - {name: vgg19-0, model: ZOO/vgg19.onnx, rate: 2252.7, slo_ms: 14.956}\n"
        "  - {name: resnet101-0, model: ZOO/resnet101.onnx, rate: 2048.9, slo_ms: 16.049}\n"
        "  - {name: bert-large-0, model: ZOO/bert-large.onnx, rate: 1880.5, slo_ms: 59.922}\n"
        "  - {name: mobilenet-v3-large-0, model: ZOO/mobilenet-v3-large.onnx, rate: 1738.9, slo_ms: 4.224}\n"
        "  - {name: densenet121-0, model: ZOO/densenet121.onnx, rate: 1618.0, slo_ms: 15.108}\n"
        "  - {name: bert-base-0, model: ZOO/bert-base.onnx, rate: 1513.6, slo_ms: 23.653}\n"
        "  - {name: efficientnet-b0-0, model: ZOO/efficientnet-b0.onnx, rate: 1422.5, slo_ms: 6.785}\n"
        "  - {name: resnet50-0, model: ZOO/resnet50.onnx, rate: 1342.2, slo_ms: 8.608}\n"
        "  - {name: densenet169-0, model: ZOO/densenet169.onnx, rate: 1270.9, slo_ms: 19.973}\n"
        "  - {name: resnet152-0, model: ZOO/resnet152.onnx, rate: 1207.2, slo_ms: 23.126}\n"
        "  - {name: distilbert-0, model: ZOO/distilbert.onnx, rate: 1149.9, slo_ms: 12.323}\n"
        "  - {name: gpt2-0, model: ZOO/gpt2.onnx, rate: 1098.0, slo_ms: 21.764}\n");
    usher_plan *pl;
    ASSERT_OK(plan_files(wl, cl, NULL, &pl, &err));
    usher_plan_summary s;
    ASSERT_OK(usher_plan_get_summary(pl, &s));
    printf("  %u GPUs of 100, %.0f of %.0f req/s served\n", s.gpus, s.goodput, s.rate);
    ASSERT(!s.feasible && s.unserved > 0.05 * s.rate); /* too small: else the test shows nothing */
    ASSERT_EQ_INT(s.gpus, 100);
    usher_plan_free(pl);
    fixtures_free();
}

TEST(plan_json_round_trip_and_replan)
{
    usher_error err;
    const char *cl = write_file("cluster.yaml", ok_cluster);
    const char *wl = workload(ok_workload);
    usher_plan *pl;
    ASSERT_OK(plan_files(wl, cl, NULL, &pl, &err));
    const char *out = test_path(test_tmpdir(), "plan.json");
    ASSERT_OK(usher_plan_write_json(pl, out, &err));
    usher_plan_summary s0;
    usher_plan_get_summary(pl, &s0);
    ASSERT(s0.feasible);
    usher_plan_free(pl);
    /* the same rates: nothing starts or stops */
    usher_plan_params pp = usher_plan_default_params();
    pp.workload = wl;
    pp.cluster = cl;
    pp.running = out;
    ASSERT_OK(usher_plan_make(est(), &pp, &pl, &err));
    usher_plan_summary s1;
    usher_plan_get_summary(pl, &s1);
    ASSERT(s1.feasible);
    ASSERT_EQ_INT(s1.moves, 0);
    ASSERT_EQ_INT(s1.stopped, 0);
    ASSERT_EQ_INT(s1.gpus, s0.gpus);
    ASSERT_EQ_INT(s1.replicas, s0.replicas);
    usher_plan_free(pl);
    /* a running plan one of whose GPUs is of a type the cluster lacks: that GPU is lost
     * (since re-planning re-places lost GPUs' replicas), and its replicas start elsewhere */
    static char text[1 << 16];
    FILE *f = fopen(out, "rb");
    ASSERT(f != NULL);
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    char *ty = strstr(text, "\"type\": \"");
    ASSERT(ty != NULL);
    ty += strlen("\"type\": \"");
    char *q = strchr(ty, '"');
    ASSERT(q != NULL);
    static char edited[1 << 16];
    snprintf(edited, sizeof edited, "%.*st4%s", (int)(ty - text), text, q);
    const char *lost = write_file("lost-plan.json", edited);
    pp.running = lost;
    ASSERT_OK(usher_plan_make(est(), &pp, &pl, &err));
    usher_plan_summary s2;
    usher_plan_get_summary(pl, &s2);
    ASSERT(s2.feasible);
    ASSERT(s2.moves >= 1); /* the lost GPU's replicas, started elsewhere (as one or more) */
    const char *out2 = test_path(test_tmpdir(), "plan2.json");
    ASSERT_OK(usher_plan_write_json(pl, out2, &err));
    usher_plan_free(pl);
    f = fopen(out2, "rb");
    ASSERT(f != NULL);
    len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    ASSERT_CONTAINS(text, "\"lost_gpus\": 1");
    ASSERT(strstr(text, "\"lost_replicas\": 0") == NULL);
    const char *bad = write_file("bad-plan.json", "{\"schema_version\": 2, \"gpus\": []}\n");
    pp.running = bad;
    ASSERT(usher_plan_make(est(), &pp, &pl, &err) == USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "schema_version");
    fixtures_free();
}

TEST(json_output_shape)
{
    usher_error err;
    usher_plan *pl;
    ASSERT_OK(plan_files(workload(ok_workload), write_file("cluster.yaml", ok_cluster), NULL, &pl,
                         &err));
    const char *out = test_path(test_tmpdir(), "shape.json");
    ASSERT_OK(usher_plan_write_json(pl, out, &err));
    usher_plan_free(pl);
    FILE *f = fopen(out, "r");
    ASSERT(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    const char *keys[] = {"\"schema_version\": 1", "\"gpus\": [", "\"type\": ", "\"node\": ",
                          "\"replicas\": [", "\"model\": ", "\"batch\": ", "\"share\": ",
                          "\"memory_mb\": ", "\"latency_ms\": ", "\"throughput\": ",
                          "\"models\": [", "\"name\": \"bert\"", "\"rate\": ", "\"slo_ms\": ",
                          "\"goodput\": ", "\"totals\": {", "\"cost_per_hour\": ",
                          "\"compute_utilisation_pct\": ", "\"energy_kwh_per_hour\": ",
                          "\"group\": \"g1\"", "\"latency_colocated_ms\": ",
                          "\"throughput_colocated\": "};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        ASSERT_CONTAINS(text, keys[i]);
    fixtures_free();
}

/* fail each allocation of a whole plan in turn (stride for the long tail):
 * an error with a message, or a plan; never a leak */
TEST(every_allocation_failure_is_clean)
{
    usher_error err;
    const char *cl = write_file("cluster.yaml", ok_cluster);
    const char *wl = workload(ok_workload);
    const char *out = test_path(test_tmpdir(), "oom.json");
    size_t base = us_alloc_live_bytes();
    uint64_t c0 = us_alloc_count();
    usher_estimator *e2;
    ASSERT_OK(usher_estimator_new(NULL, &e2, &err));
    usher_plan_params pp = usher_plan_default_params();
    pp.workload = wl;
    pp.cluster = cl;
    usher_plan *pl;
    ASSERT_OK(usher_plan_make(e2, &pp, &pl, &err));
    ASSERT_OK(usher_plan_write_json(pl, out, &err));
    usher_plan_free(pl);
    usher_estimator_free(e2);
    uint64_t total = us_alloc_count() - c0;
    ASSERT_EQ_U64(us_alloc_live_bytes(), base);
    int failed = 0, planned = 0;
    const char *only = getenv("PLAN_OOM_ONLY"); /* debugging: just this allocation */
    for (uint64_t k = 1; k <= total; k += k < 600 ? 1 : 1 + k / 200) {
        if (only && k != strtoull(only, NULL, 10))
            continue;
        if (usher_estimator_new(NULL, &e2, &err) < 0)
            FAIL_("estimator: %s", err.msg);
        us_alloc_fail_nth(k);
        int rc = usher_plan_make(e2, &pp, &pl, &err);
        if (rc == USHER_OK)
            rc = usher_plan_write_json(pl, out, &err);
        us_alloc_fail_nth(0);
        if (rc < 0) {
            failed++;
            if (!err.msg[0])
                FAIL_("allocation %llu: error %d without a message", (unsigned long long)k, rc);
        } else {
            planned++;
        }
        if (rc >= 0 && getenv("PLAN_OOM_DEBUG"))
            printf("  allocation %llu failed, the plan went on\n", (unsigned long long)k);
        usher_plan_free(pl); /* NULL after a failed make */
        pl = NULL;
        usher_estimator_free(e2);
        if (us_alloc_live_bytes() != base)
            FAIL_("allocation %llu of %llu failed: %zu bytes left live", (unsigned long long)k,
                  (unsigned long long)total, us_alloc_live_bytes() - base);
    }
    printf("  %llu allocations in one plan; failing them: %d errors, %d plans (a fallback "
           "path)\n",
           (unsigned long long)total, failed, planned);
    fixtures_free();
}

/* ---- the queueing model (queue.c) ------------------------------------------------- */

/* M/D/1's exact waiting time, Erlang's formula: P(W <= t) = (1 - rho) sum_{k=0}^{floor(t/D)}
 * (lambda (k D - t))^k / k! e^{-lambda (k D - t)} (long double: the alternating sum loses
 * digits as t / D grows; used up to rho 0.8, t < 25 D) */
static double md1_cdf(double rho, double d, double t)
{
    long double lam = rho / d, sum = 0;
    for (int k = 0; k <= (int)floor(t / d); k++) {
        long double x = lam * (k * d - t);
        sum += powl(x, k) / tgammal(k + 1) * expl(-x);
    }
    return (double)((1 - rho) * sum);
}

/* M/D/1's exact p99 latency (wait + D) */
static double md1_p99(double rho, double d)
{
    double lo = 0, hi = 40 * d;
    for (int i = 0; i < 60; i++) {
        double mid = 0.5 * (lo + hi);
        if (md1_cdf(rho, d, mid) >= 0.99)
            hi = mid;
        else
            lo = mid;
    }
    return hi + d;
}

TEST(queue_model_against_md1)
{
    /* B = 1 is M/D/1. The model's p99 is within a fifth of a batch of the exact one, and
     * at the cap (which lets PLAN_QUEUE_TAIL miss) the exact share within the SLO is
     * >= 99% */
    const double d = 10;
    double worst = 0, worst_att = 1;
    for (double rho = 0.05; rho <= 0.801; rho += 0.05) {
        double exact = md1_p99(rho, d), pred = plan_queue_p99(1, d, d, rho / d * 1e3, 1);
        if (getenv("PLAN_QUEUE"))
            printf("  rho %.2f: exact p99 %.2f ms, model %.2f ms\n", rho, exact, pred);
        if (fabs(pred - exact) > 0.25 * d)
            FAIL_("rho %.2f: the model's p99 %.3f ms, M/D/1's exact %.3f ms", rho, pred, exact);
        worst = fmax(worst, fabs(pred - exact));
    }
    for (double slo = 1.2 * d; slo <= 12 * d; slo += 0.3 * d) {
        double r = plan_queue_rate(1, d, d, slo, 1), rho = r * d / 1e3;
        ASSERT(r > 0 && rho < 1);
        if (rho > 0.8)
            continue; /* Erlang's sum loses its digits past here */
        double att = md1_cdf(rho, d, slo - d);
        if (att < 0.99)
            FAIL_("SLO %.1f ms: the cap %.2f req/s (rho %.3f) meets it for %.3f%% in M/D/1",
                  slo, r, rho, 100 * att);
        worst_att = fmin(worst_att, att);
        ASSERT(plan_queue_p99(1, d, d, r, 1) <= slo * (1 + 1e-9)); /* the cap's p99 within */
    }
    printf("  M/D/1 (B = 1), rho 0.05-0.8: the model's p99 within %.2f batch latencies of the "
           "exact one; at the cap (SLO 1.2-12 batches) the exact attainment >= %.2f%%\n",
           worst / d, 100 * worst_att);
    /* monotone in the rate and in the arrivals' cv; infinite at full load */
    ASSERT(plan_queue_p99(8, 10, 4, 700, 1) > plan_queue_p99(8, 10, 4, 600, 1));
    ASSERT(plan_queue_p99(8, 10, 4, 600, 2) > plan_queue_p99(8, 10, 4, 600, 1));
    ASSERT(plan_queue_p99(8, 10, 4, 600, 0.5) < plan_queue_p99(8, 10, 4, 600, 1));
    ASSERT(isinf(plan_queue_p99(8, 10, 4, 800, 1)));
    ASSERT(plan_queue_rate(8, 10, 4, 9, 1) == 0); /* a batch longer than the SLO */
    ASSERT(plan_queue_rate(8, 10, 4, 1e9, 1) <= 800);
    ASSERT(plan_queue_rate(8, 10, 4, 40, 2) < plan_queue_rate(8, 10, 4, 40, 1));
}

/* the runtime's batcher and admission on one replica, fed random arrivals on a virtual
 * clock as the simulator drives them: bench/batcher_sim.h (shared with the table's
 * generator) */
static double batcher_attainment(int b, const uint64_t *lat, double rate, double slo_ms,
                                 uint64_t seed, int n)
{
    return bsim_attainment(b, lat, rate, slo_ms, 1, seed, n);
}

/* plan_queue_thr for one replica: batch b, a batch of one l1 ms, the full batch d ms */
static double cap_of(int b, double l1, double d, double slo, double cv)
{
    plan_problem p = {0};
    plan_model m = {.slo_ms = slo, .arrival_cv = cv};
    plan_cfg c = {.batch = b, .lat_ms = d, .lat1_ms = l1};
    return plan_queue_thr(&p, &m, &c, d);
}

/*
 * The highest rate a cap could be: the batcher meets the SLO for >= 99% of n requests (one
 * seed) at it and at every load below it. Not monotone: where a batch of one cannot keep
 * up, the batcher holds a batch for more rows until its oldest request's last moment, and
 * at low loads that misses more than at high ones (B 128, L(1) = D, SLO 2.5 D: 58% within
 * the SLO at 3% of full load, 100% at 50%). A plan loads replicas anywhere up to their cap,
 * so the reference is the first load that fails: loads from `lo` (known to hold, with the
 * loads below it) up in steps of 1% of full, then a bisection in the step that failed.
 * *any: the highest load that holds, bisecting from `lo` to full load regardless of the
 * loads between (the old reference).
 */
static double batcher_max(int b, const uint64_t *lat, double lo, double slo, double cv,
                          uint64_t seed, int n, double *any)
{
    double full = b / (lat[b] / 1e6) * 1e3, step = 0.01 * full, hi = full, a = lo;
    for (int i = 0; i < 9; i++) {
        double mid = 0.5 * (a + hi);
        if (bsim_attainment(b, lat, mid, slo, cv, seed, n) >= 0.99)
            a = mid;
        else
            hi = mid;
    }
    *any = a;
    hi = lo + step;
    while (hi < full && bsim_attainment(b, lat, hi, slo, cv, seed, n) >= 0.99) {
        lo = hi;
        hi += step;
    }
    hi = fmin(hi, full);
    for (int i = 0; i < 5; i++) {
        double mid = 0.5 * (lo + hi);
        if (bsim_attainment(b, lat, mid, slo, cv, seed, n) >= 0.99)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

TEST(queue_model_against_the_batcher)
{
    /* Safety: at the planner's cap (plan_queue_thr: the table measured on the batcher,
     * queue_table.c) and at loads below it, the runtime's batcher and admission meet the
     * SLO for >= 99% of requests - on a grid (B 1-128, L(1)/D 1/B-1 affine and convex,
     * SLO 2-8 D, cv 1, 0.5, 2) with seeds and a request count the table was not made
     * with, and at random points off the grid (other D, cv, SLO, L(1)). Tightness: on the
     * grid the cap is on average >= 85% of the highest load the batcher holds at 99% */
    static uint64_t lat[129];
    if (getenv("PLAN_QUEUE_PROBE")) { /* debugging: B,L1/D,SLO/D,shape: attainment by load */
        int pb = 1, sh = 0;
        double a1 = 1, x1 = 4;
        sscanf(getenv("PLAN_QUEUE_PROBE"), "%d,%lf,%lf,%d", &pb, &a1, &x1, &sh);
        bsim_lat_table(lat, pb, 10 * a1, 10, sh == 2);
        for (double r = 0.80; r <= 1.0; r += 0.02)
            for (uint64_t sd = 1; sd <= 3; sd++)
                printf("  load %.2f seed %llu: %.4f\n", r, (unsigned long long)sd,
                       batcher_attainment(pb, lat, r * pb / 10 * 1e3, 10 * x1, sd, 40000));
        return;
    }
    static const double xs[] = {2, 2.5, 3, 4, 6, 8}, rs[] = {1, 0.6, 0.3, 0.1, 0.03},
                        cvs[] = {1, 0.5, 2};
    int cases = 0, bad = 0;
    double sum_ratio = 0, min_att = 1, sum_full = 0, sum_any = 0;
    for (size_t ci = 0; ci < 3; ci++)
        for (int b = 1; b <= 128; b *= 2)
            for (size_t ri = 0; ri < 5; ri++)
                for (int shape = 0; shape < 2; shape++)
                    for (size_t xi = 0; xi < 6; xi++) {
                        double d = 10, l1 = d * rs[ri], x = xs[xi], slo = x * d, cv = cvs[ci];
                        if (rs[ri] * b < 1 || (b == 1 && shape) || (ci && (xi % 2 || ri % 2)))
                            continue;
                        bsim_lat_table(lat, b, l1, d, shape == 1);
                        double cap = cap_of(b, l1, d, slo, cv), full = b / d * 1e3;
                        ASSERT(cap >= 0 && cap < full);
                        uint64_t seed = 7919 + (uint64_t)cases;
                        double att =
                            cap > 0 ? bsim_attainment(b, lat, cap, slo, cv, seed, 40000) : 1;
                        /* and below the cap: a replica may be planned at any load up to it */
                        for (double f = 0.25; f < 0.95 && cap > 0; f += 0.25)
                            att = fmin(att, bsim_attainment(b, lat, f * cap, slo, cv, seed + 1,
                                                            40000));
                        ASSERT(att >= 0);
                        double any = 0,
                               top = cv == 1 ? batcher_max(b, lat, cap, slo, cv, seed, 40000, &any)
                                             : 0;
                        if (getenv("PLAN_QUEUE"))
                            printf("  cv %.1f B %3d L1/D %.2f %s SLO/D %.1f: cap %.1f req/s "
                                   "(%.0f%% of full), attainment %.4f; the batcher holds 99%% "
                                   "up to %.1f (and at %.1f)\n",
                                   cv, b, rs[ri], shape ? "convex" : "affine", x, cap,
                                   100 * cap / full, att, top, any);
                        if (att < 0.99) {
                            fprintf(stderr, "  cv %.1f B %d, L1 %.2f ms, D %.0f ms, SLO %.0f ms: "
                                    "at (or below) the cap %.1f req/s (%.0f%% of full) the "
                                    "batcher meets the SLO for %.2f%% only\n",
                                    cv, b, l1, d, slo, cap, 100 * cap / full, 100 * att);
                            bad++;
                        }
                        min_att = fmin(min_att, att);
                        if (cv == 1) {
                            sum_ratio += top > 0 ? cap / top : 1;
                            sum_any += any > 0 ? cap / any : 1;
                            sum_full += cap / full;
                            cases++;
                        }
                    }
    double mean = sum_ratio / cases;
    printf("  grid: %d Poisson cases (B 1-128, L(1)/D 1/B-1, SLO 2-8 D) and cv 0.5, 2: at and "
           "below the cap the batcher meets the SLO for >= %.2f%%; the cap is %.1f%% on "
           "average of the highest load up to which the batcher holds 99%% (%.1f%% of the "
           "highest at which it holds 99%%, loads between aside; %.1f%% of full load)\n",
           cases, 100 * min_att, 100 * mean, 100 * sum_any / cases, 100 * sum_full / cases);
    ASSERT_EQ_INT(bad, 0);
    ASSERT(mean >= 0.85);
    /* off the grid: random B, D, L(1), SLO, cv, latency shape */
    rng_state = 4242;
    int off = 0, off_bad = 0;
    double off_min = 1;
    for (int k = 0; k < 60; k++) {
        int b = 1 << irand(0, 7), shape = irand(0, 1);
        double d = 2 + 118 * urand(), r = exp2(-log2(b) * urand()), x = exp2(1 + 3 * urand());
        double cv = k % 3 == 0 ? 1 : k % 3 == 1 ? 4 * urand() : 1 + 3 * urand();
        bsim_lat_table(lat, b, r * d, d, shape == 1);
        double cap = cap_of(b, r * d, d, x * d, cv);
        if (!(cap > 0))
            continue;
        double att = bsim_attainment(b, lat, cap, x * d, cv, 31 + (uint64_t)k, 40000);
        ASSERT(att >= 0);
        if (att < 0.99) {
            fprintf(stderr, "  off the grid: cv %.2f B %d, L1 %.2f ms, D %.2f ms, SLO %.2f ms: "
                    "at the cap %.1f req/s the batcher meets the SLO for %.2f%% only\n",
                    cv, b, r * d, d, x * d, cap, 100 * att);
            off_bad++;
        }
        off_min = fmin(off_min, att);
        off++;
    }
    printf("  off the grid: %d random points (D 2-120 ms, cv 0-4): >= %.2f%%\n", off,
           100 * off_min);
    ASSERT_EQ_INT(off_bad, 0);
    ASSERT(off > 30);
}

TEST(queue_table_regenerates)
{
    /* random cells of queue_table.c measured again by the generator's own procedure
     * (bench/batcher_sim.h bsim_cell, from a load of 0, other seeds): the table never
     * promises more than the fresh measurement (its bisection step aside), and what it
     * promises holds on fresh seeds */
    static uint64_t lat[129];
    static const double cvs[QT_CV] = {1, 1.5, 2, 3, 4};
    rng_state = 99;
    double sum = 0;
    int n = 0;
    static const double ds[QT_D] = QT_D_MS;
    for (int k = 0; k < 12; k++) {
        int ci = k < 6 ? 0 : irand(0, QT_CV - 1), di = irand(0, QT_D - 1), bi = irand(0, QT_B - 1);
        /* x 2-8: below the ceiling, where cells differ */
        int j = irand(0, QT_R_STEP * bi), i = irand(0, 2 * QT_X_STEP);
        int b = 1 << bi;
        double r = exp2(-(double)j / QT_R_STEP), x = exp2(1 + (double)i / QT_X_STEP);
        double t = plan_queue_table[ci][di][bi][j][i] / 1e4;
        bsim_lat_table(lat, b, r * ds[di], ds[di], false);
        double fresh = bsim_cell(b, lat, x, cvs[ci], 1000003 + (uint64_t)k, 0);
        ASSERT(fresh >= 0);
        printf("  cv %.1f D %3.0f B %3d r %.3f x %5.2f: table %.4f, measured again %.4f\n",
               cvs[ci], ds[di], b, r, x, t, fresh);
        if (t > fresh + GEN_STEP)
            FAIL_("cv %.1f D %.0f B %d r %.3f x %.2f: the table promises %.3f, the batcher "
                  "holds %.3f", cvs[ci], ds[di], b, r, x, t, fresh);
        sum += fresh - t;
        n++;
    }
    printf("  the table is %.3f below a fresh measurement on average\n", sum / n);
}

/* every replica of plan s that the plan counts as serving (its load within its cap: for
 * the spatial policies of a problem with the model, beside its neighbours), fed its load
 * as Poisson arrivals through the runtime's batcher: *worst the lowest share within the
 * SLO, *n_rep how many ran, *below how many were under 99%; 0 or -1 */
static int plan_under_poisson(const plan_problem *p, const plan_solution *s, uint64_t seed,
                              double *worst, int *n_rep, int *below, double *tight, int *n_tight)
{
    static uint64_t lat[129];
    /* debugging: PLAN_QUEUE_N requests per replica, PLAN_QUEUE_SALT other seeds */
    int n_req = getenv("PLAN_QUEUE_N") ? atoi(getenv("PLAN_QUEUE_N")) : 20000;
    uint64_t salt = getenv("PLAN_QUEUE_SALT") ? strtoull(getenv("PLAN_QUEUE_SALT"), NULL, 10) : 0;
    bool co = p->interference && s->sharing != PLAN_SHARE_TIME;
    for (uint32_t i = 0; i < s->n; i++)
        for (uint32_t k = 0; k < s->g[i].n; k++) {
            const plan_replica *rp = &s->g[i].r[k];
            const plan_model *pm = &p->m[rp->model];
            const plan_cfg *c = &pm->cfg[rp->cfg];
            if (rp->load < 0.01)
                continue; /* a sliver (< 1 request in 100 s): its arrival times would overflow */
            if (co && (!(rp->lat_co > 0) || rp->load > rp->thr_co * (1 + 1e-9) + 1e-9 ||
                       PLAN_SLO_FACTOR * rp->lat_co > pm->slo_ms * (1 + 1e-9)))
                continue; /* the plan itself counts it as unserved */
            size_t z = 0;
            while (z < N_ZOO && strcmp(zoo[z], pm->name) != 0)
                z++;
            if (z == N_ZOO || c->batch > 128)
                return -1;
            /* every batch size from the estimator at its share, slowed as the plan's
             * co-located latency says */
            double slow = co ? rp->lat_co / c->lat_ms : 1;
            for (int b = 1; b <= c->batch; b++) {
                usher_estimate_params ep = usher_estimate_default_params();
                ep.gpu = p->t[c->type].key;
                ep.batch = b;
                ep.share_pct = c->share;
                ep.precision = (usher_precision)pm->precision;
                usher_profile pr;
                usher_error err;
                if (usher_estimate(est(), zoo_model(z), &ep, &pr, &err) < 0) {
                    fprintf(stderr, "  %s\n", err.msg);
                    return -1;
                }
                lat[b] = (uint64_t)(pr.latency_ms * slow * 1e6);
            }
            double att = batcher_attainment(c->batch, lat, rp->load, pm->slo_ms,
                                            seed * 1000 + i * 16 + k + salt, n_req);
            if (att < 0)
                return -1;
            if (getenv("PLAN_QUEUE_REPLICAS") && att < 0.995)
                printf("    %s on %s: batch %d share %.0f%%, D %.2f ms, SLO %.0f ms, load %.1f "
                       "of %.1f req/s: %.2f%%\n", pm->name, p->t[c->type].key, c->batch,
                       c->share, c->lat_ms * slow, pm->slo_ms, rp->load,
                       c->batch / (c->lat_ms * slow) * 1e3, 100 * att);
            *worst = fmin(*worst, att);
            (*n_rep)++;
            *below += att < 0.99;
            /* tightness: the replica's cap against the highest load up to which the batcher
             * holds 99% with these latencies */
            double cap = co ? rp->thr_co : c->thr;
            if (tight && cap > 0 && !p->queue_off) {
                double any, top = batcher_max(c->batch, lat, cap, pm->slo_ms, 1,
                                              seed * 1000 + i * 16 + k, 20000, &any);
                *tight += top > 0 ? fmin(1, cap / top) : 1;
                (*n_tight)++;
            }
        }
    return 0;
}

TEST(every_policy_meets_the_slo_under_poisson)
{
    /* seeded small instances, every policy: every replica the plan counts as serving, fed
     * its planned load as Poisson arrivals through the runtime's batcher and admission,
     * answers >= 99% of its requests within the SLO. The same instances planned without
     * the queueing rule (queue_off: loads up to the throughput back to back) must not:
     * the rule is what makes the test pass */
    usher_error err;
    plan_exact_time_limit_ms = 3000;
    int seeds = getenv("PLAN_QUEUE_SEEDS") ? atoi(getenv("PLAN_QUEUE_SEEDS")) : 12;
    for (int off = 0; off <= 1; off++) {
        int n_rep = 0, below = 0, plans = 0, n_tight = 0;
        double worst = 1, tight = 0;
        for (uint64_t seed = 1; seed <= (uint64_t)seeds; seed++) {
            plan_problem p;
            if (small_instance(seed, seed % 3 == 0, &p) < 0)
                FAIL_("seed %llu: no instance", (unsigned long long)seed);
            if (off) {
                /* the candidates' caps were set when profiling: profile again without */
                for (uint32_t i = 0; i < p.n; i++) {
                    us_free(p.m[i].cfg);
                    p.m[i].cfg = NULL;
                    p.m[i].n_cfg = 0;
                }
                p.queue_off = true;
                usher_model *ms[8];
                for (uint32_t i = 0; i < p.n; i++) {
                    size_t z = 0;
                    while (strcmp(zoo[z], p.m[i].name) != 0)
                        z++;
                    ms[i] = zoo_model(z);
                }
                if (profile(&p, ms) < 0)
                    FAIL_("seed %llu: profiling without the rule", (unsigned long long)seed);
            }
            for (size_t k = 0; plan_policy_at(k); k++) {
                plan_solution s;
                ASSERT_OK(plan_solve(&p, plan_policy_at(k), &s, &err));
                int b0 = below;
                /* the tightness on USHER's plans (the batcher's maximum takes a scan) */
                bool us = strcmp(plan_policy_at(k)->name, "usher") == 0;
                ASSERT_OK(plan_under_poisson(&p, &s, seed, &worst, &n_rep, &below,
                                             us ? &tight : NULL, &n_tight));
                if (below > b0 && !off && getenv("PLAN_QUEUE"))
                    printf("  seed %llu %s: %d replicas under 99%%\n", (unsigned long long)seed,
                           plan_policy_at(k)->name, below - b0);
                plans++;
                plan_solution_free(&s);
            }
            plan_problem_free(&p);
        }
        printf("  %s the queueing rule: %d plans, %d replicas under Poisson arrivals; the "
               "lowest share within the SLO %.2f%%, %d replicas under 99%%\n",
               off ? "without" : "with", plans, n_rep, 100 * worst, below);
        if (!off) {
            printf("  USHER's %d replicas: the cap is %.1f%% on average of the highest load up "
                   "to which the batcher holds 99%%\n", n_tight, 100 * tight / n_tight);
            ASSERT(n_rep > 100);
            ASSERT_EQ_INT(below, 0);
            ASSERT(n_tight > 20);
            ASSERT(tight / n_tight >= 0.85);
        } else {
            ASSERT(below > n_rep / 10); /* the control: without the rule many miss */
        }
    }
    fixtures_free();
}

TEST_MAIN(TEST_ENTRY(input_errors_name_file_line_and_field),
          TEST_ENTRY(fixed_cluster_too_small_reports_unserved),
          TEST_ENTRY(fixed_cluster_leaves_no_gpu_idle),
          TEST_ENTRY(plan_json_round_trip_and_replan), TEST_ENTRY(json_output_shape),
          TEST_ENTRY(usher_near_the_optimum), TEST_ENTRY(goodput_on_small_fixed_clusters),
          TEST_ENTRY(replan_20pct_moves_few_replicas),
          TEST_ENTRY(every_policy_on_a_medium_instance),
          TEST_ENTRY(shared_profiles_plan_as_direct), TEST_ENTRY(huge_rate_plans_in_bounded_work),
          TEST_ENTRY(interference_safe_plans), TEST_ENTRY(classification_uses_dram_bandwidth),
          TEST_ENTRY(interference_input_errors),
          TEST_ENTRY(every_allocation_failure_is_clean), TEST_ENTRY(queue_model_against_md1),
          TEST_ENTRY(queue_model_against_the_batcher), TEST_ENTRY(queue_table_regenerates),
          TEST_ENTRY(every_policy_meets_the_slo_under_poisson))
