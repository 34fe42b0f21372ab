/* policy.c - the table of placement policies (layer 6). */
#include <string.h>
#include <time.h>

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

int plan_solve(const plan_problem *p, const plan_policy *pol, plan_solution *s, usher_error *err)
{
    if (plan_solution_init(s, p, pol->name) < 0)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    double t0 = now_s();
    int rc = pol->solve(p, s, err);
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
