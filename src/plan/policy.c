/* policy.c - the table of placement policies (layer 6). */
#include <math.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/err.h"
#include "plan.h"

static const plan_policy policies[] = {
    {"usher", "USHER: complementary grouping, holistic batch x replica search, best fit",
     plan_usher},
    {"shepherd", "Shepherd: temporal sharing, one model at a time per GPU (herds)", plan_shepherd},
    {"gpulet", "gpulet: at most two MPS partitions per GPU, linear interference", plan_gpulet},
    {"alpaserve", "AlpaServe: statistical multiplexing, load spread over GPUs", plan_alpaserve},
    {"triton", "Triton default: every model on every GPU, time-sliced", plan_triton},
    {"static-mps", "static equal MPS fractions: two 50% halves per GPU", plan_static_mps},
    {"exact", "the optimum over the same configurations (GLPK; small instances)", plan_exact},
};

const plan_policy *plan_policy_find(const char *name)
{
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++)
        if (name && strcmp(policies[i].name, name) == 0)
            return &policies[i];
    return NULL;
}

const plan_policy *plan_policy_at(size_t i)
{
    return i < sizeof policies / sizeof policies[0] ? &policies[i] : NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Huge rates. A model whose rate fills more than BULK_MIN_GPUS whole GPUs is
 * mostly served arithmetically: W whole-GPU replicas (its share-100 candidate
 * with the lowest $/h per request/s, loaded to its throughput alone as the
 * interference model predicts it) on GPUs of that type, W = its rate's whole
 * GPUs less BULK_KEEP_GPUS, at most what the type has left. The policy plans
 * the rest (rates and type limits reduced) as usual, so planning time no
 * longer grows with the rate. min-cost only (max-goodput weighs models against
 * each other over the GPUs), and not for the exact policy (it refuses such
 * instances: too many GPUs).
 */
#define BULK_MIN_GPUS 256
#define BULK_KEEP_GPUS 64

typedef struct bulk {
    uint32_t m, cfg;
    int64_t gpus;
    double load; /* per replica */
} bulk;

/* the bulk parts: per model, type after type while the rest fills more than
 * BULK_MIN_GPUS whole GPUs; *out (us_free) and *n; 0 or USHER_ERR_NOMEM */
static int bulk_plan(const plan_problem *p, bulk **out, uint32_t *nb)
{
    int64_t used[PLAN_MAX_TYPES] = {0};
    bulk *b = NULL;
    uint32_t n = 0, cap = 0;
    for (uint32_t m = 0; m < p->n; m++) {
        const plan_model *pm = &p->m[m];
        double rate = pm->rate;
        for (uint32_t round = 0; round < p->nt; round++) {
            int best = -1;
            double bv = 0, bl = 0;
            for (uint32_t c = 0; c < pm->n_cfg; c++) {
                const plan_cfg *x = &pm->cfg[c];
                if (x->share != 100 || x->thr <= 0)
                    continue;
                int64_t lim = p->t[x->type].count >= 0 ? p->t[x->type].count : p->t[x->type].max;
                if (lim - used[x->type] <= BULK_KEEP_GPUS)
                    continue;
                double load = x->thr;
                if (p->interference) {
                    plan_replica r = {m, c, 0, 0, 0};
                    if_result res;
                    if (plan_judge(p, x->type, &r, 1, &res, NULL) != PLAN_FITS)
                        continue;
                    load = fmin(load, res.throughput);
                }
                double price = p->t[x->type].price > 0 ? p->t[x->type].price : 1e-9;
                double v = price / load;
                if (load > 0 && (best < 0 || v < bv)) {
                    best = (int)c;
                    bv = v;
                    bl = load;
                }
            }
            if (best < 0 || !(rate / bl > BULK_MIN_GPUS))
                break;
            uint16_t t = pm->cfg[best].type;
            int64_t lim = p->t[t].count >= 0 ? p->t[t].count : p->t[t].max;
            double whole = floor(rate / bl) - BULK_KEEP_GPUS;
            int64_t w = (int64_t)fmin(whole, (double)(lim - used[t] - BULK_KEEP_GPUS));
            if (w <= 0)
                break;
            if (n == cap) {
                uint32_t nc = cap ? 2 * cap : 16;
                bulk *nbk = us_realloc(b, nc * sizeof *nbk);
                if (!nbk) {
                    us_free(b);
                    return USHER_ERR_NOMEM;
                }
                b = nbk;
                cap = nc;
            }
            b[n++] = (bulk){.m = m, .cfg = (uint32_t)best, .gpus = w, .load = bl};
            used[t] += w;
            rate -= (double)w * bl;
        }
    }
    *out = b;
    *nb = n;
    return USHER_OK;
}

static int solve_bulk(const plan_problem *p, const plan_policy *pol, plan_solution *s,
                      usher_error *err)
{
    bool any = false;
    for (uint32_t m = 0; m < p->n && !any; m++)
        any = p->m[m].rate > BULK_MIN_GPUS; /* no model fills that many GPUs below this */
    if (!any || p->objective != PLAN_MIN_COST || pol->solve == plan_exact)
        return pol->solve(p, s, err);
    bulk *b = NULL;
    uint32_t nb = 0;
    plan_model *mm = us_calloc(p->n ? p->n : 1, sizeof *mm);
    plan_problem *q = us_malloc(sizeof *q);
    int rc = USHER_OK;
    if (!mm || !q || bulk_plan(p, &b, &nb) < 0) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* the rest: the same models (candidates shared), rates and limits reduced */
    *q = *p;
    q->m = mm;
    memcpy(mm, p->m, p->n * sizeof *mm);
    for (uint32_t k = 0; k < nb; k++) {
        uint16_t t = p->m[b[k].m].cfg[b[k].cfg].type;
        mm[b[k].m].rate = fmax(0, mm[b[k].m].rate - (double)b[k].gpus * b[k].load);
        if (q->t[t].count >= 0)
            q->t[t].count -= b[k].gpus;
        else
            q->t[t].max -= b[k].gpus;
    }
    if ((rc = pol->solve(q, s, err)) < 0)
        goto out;
    /* the whole GPUs, after the policy's (its limits leave room for them) */
    for (uint32_t k = 0; k < nb && rc == USHER_OK; k++)
        for (int64_t i = 0; i < b[k].gpus; i++) {
            int g = plan_open(s, p, p->m[b[k].m].cfg[b[k].cfg].type, -1);
            if (g < 0 || plan_add(s, p, (uint32_t)g, b[k].m, b[k].cfg, b[k].load) < 0) {
                rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
                break;
            }
        }
    if (rc == USHER_OK)
        plan_account(s, p);
out:
    us_free(b);
    us_free(mm);
    us_free(q);
    return rc;
}

int plan_solve(const plan_problem *p, const plan_policy *pol, plan_solution *s, usher_error *err)
{
    if (plan_solution_init(s, p, pol->name) < 0)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    /* the fairness options (min_share, max-min) are honoured by usher and exact only */
    if (plan_fair(p) && pol->solve != plan_usher && pol->solve != plan_exact)
        return us_err_set(err, USHER_ERR_INVALID,
                          "policy '%s' does not honour min_share or objective max-min (usher "
                          "and exact do; docs/policies.md)",
                          pol->name);
    /* anti-affinity (spread.c): every policy but exact gets the pass after it */
    if (plan_spread_wanted(p) && pol->solve == plan_exact)
        return us_err_set(err, USHER_ERR_INVALID,
                          "policy 'exact' does not honour spread (its program has no "
                          "anti-affinity constraint; the other policies do: docs/plan-input.md)");
    int rc = plan_spread_check(p, err);
    if (rc < 0)
        return rc;
    double t0 = now_s();
    rc = solve_bulk(p, pol, s, err);
    if (rc == USHER_OK)
        rc = plan_spread(p, s, err);
    s->seconds = now_s() - t0;
    if (rc < 0)
        return rc;
    return plan_check(s, p, err);
}

/* a policy that plans with the interference model promises that the model,
 * asked afresh (not the planner's figures), accepts every GPU */
static int check_colocation(const plan_solution *s, const plan_problem *p, uint32_t i,
                            usher_error *err)
{
    const plan_gpu *g = &s->g[i];
    if (s->sharing != PLAN_SHARE_MODEL || !p->interference || g->n == 0)
        return USHER_OK;
    if (g->n > IF_MAX_REPLICAS)
        return us_err_set(err, USHER_ERR_INTERNAL, "%s: GPU %u holds %u replicas", s->policy, i,
                          g->n);
    if_result res[IF_MAX_REPLICAS];
    uint32_t bad = 0;
    plan_verdict v = plan_judge(p, g->type, g->r, g->n, res, &bad);
    if (v == PLAN_FITS)
        return USHER_OK;
    const plan_replica *rp = &g->r[bad];
    const plan_cfg *c = &p->m[rp->model].cfg[rp->cfg];
    bool judged = v != PLAN_NO_ROOM && v != PLAN_CANNOT_JUDGE;
    return us_err_set(err, USHER_ERR_INTERNAL,
                      "%s: GPU %u (%s, %u replicas) breaks the interference rule: replica of '%s' "
                      "(batch %d, share %g%%): %s (co-located %.4g ms, SLO %g ms; load %.6g of "
                      "%.6g req/s)",
                      s->policy, i, p->t[g->type].key, g->n, p->m[rp->model].name, c->batch,
                      c->share, plan_verdict_name(v), judged ? res[bad].latency_ms : c->lat_ms,
                      p->m[rp->model].slo_ms, rp->load, judged ? res[bad].throughput : c->thr);
}

int plan_check(const plan_solution *s, const plan_problem *p, usher_error *err)
{
    int64_t used[PLAN_MAX_TYPES] = {0};
    for (uint32_t i = 0; i < s->n; i++) {
        const plan_gpu *g = &s->g[i];
        if (g->type >= p->nt)
            return us_err_set(err, USHER_ERR_INTERNAL, "%s: GPU %u has no type", s->policy, i);
        used[g->type]++;
        double m = 0;
        for (uint32_t r = 0; r < g->n; r++) {
            const plan_replica *rp = &g->r[r];
            if (rp->model >= p->n || rp->cfg >= p->m[rp->model].n_cfg)
                return us_err_set(err, USHER_ERR_INTERNAL, "%s: GPU %u replica %u is dangling",
                                  s->policy, i, r);
            const plan_cfg *x = &p->m[rp->model].cfg[rp->cfg];
            if (x->type != g->type || rp->load < -1e-9 || rp->load > x->thr * (1 + 1e-9) + 1e-9)
                return us_err_set(err, USHER_ERR_INTERNAL,
                                  "%s: GPU %u replica of '%s' carries %g req/s of %g", s->policy,
                                  i, p->m[rp->model].name, rp->load, x->thr);
            m += x->mreq;
        }
        /* spatial policies reserve shares; temporal ones record duty in used_c */
        if (m > 100 + 1e-6 || g->used_c > 100 + 1e-6)
            return us_err_set(err, USHER_ERR_INTERNAL, "%s: GPU %u is over-committed (%.1f%% "
                              "compute, %.1f%% memory)", s->policy, i, g->used_c, m);
        int rc = check_colocation(s, p, i, err);
        if (rc < 0)
            return rc;
    }
    for (uint16_t t = 0; t < p->nt; t++) {
        int64_t lim = p->t[t].count >= 0 ? p->t[t].count : p->t[t].max;
        if (used[t] > lim)
            return us_err_set(err, USHER_ERR_INTERNAL, "%s: %lld GPUs of %s, %lld allowed",
                              s->policy, (long long)used[t], p->t[t].key, (long long)lim);
    }
    return USHER_OK;
}
