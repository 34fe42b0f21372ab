/*
 * replan.c - a new plan for new rates that keeps the running one (layer 6).
 *
 * USHER re-plans from scratch, which restarts replicas everywhere. Here:
 *   1. every replica of the old plan whose configuration is still feasible
 *      stays where it is;
 *   2. a model whose new rate needs less capacity loses replicas - those on
 *      the emptiest GPUs first - while the rest still covers the rate;
 *   3. a model that needs more first uses the spare throughput of its
 *      replicas, then larger batch sizes of them (same share, same memory
 *      budget), then gets capacity in the free room of the running GPUs
 *      (plan_absorb: a replica grown to a larger configuration, or a new
 *      one sized to the need), opening GPUs only when nothing fits;
 *   4. with max_moves > 0, up to that many further replica moves are spent
 *      emptying the least-filled GPUs, trading moves for cost.
 * The result is compared with the running plan GPU by GPU: a replica that
 * was not there with that share is a start (a new replica, a moved one, or
 * one restarted with another MPS share, which needs a new process:
 * s->moves); one there with the same share and another batch size is
 * reconfigured (s->reconfigured: the batch is a runtime setting); one that
 * is gone is a stop (s->stopped; stopping disturbs nothing else, so it is
 * reported apart).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "plan.h"

/* the cheapest configuration of m that fits somewhere (open GPU or a new one) */
static int place_one(const plan_problem *p, plan_solution *s, uint32_t m, double *rate)
{
    const plan_model *pm = &p->m[m];
    int best_cfg = -1, best_gpu = -1;
    double best = INFINITY;
    for (int pass = 0; pass < 2 && best_cfg < 0; pass++) {
        for (uint32_t c = 0; c < pm->n_cfg; c++) {
            const plan_cfg *x = &pm->cfg[c];
            double price = p->t[x->type].price > 0 ? p->t[x->type].price : 1;
            double cost = price * (x->creq > x->mreq ? x->creq : x->mreq) / x->thr;
            int g = pass == 0 ? plan_best_fit(s, p, x->type, x, -1) : -2;
            if (pass == 0 && g < 0)
                continue;
            if (pass == 1 && plan_type_left(s, p, x->type) <= 0)
                continue;
            if (cost < best) {
                best = cost;
                best_cfg = (int)c;
                best_gpu = g;
            }
        }
    }
    if (best_cfg < 0)
        return 0;
    if (best_gpu == -2)
        best_gpu = plan_open(s, p, pm->cfg[best_cfg].type, -1);
    if (best_gpu < 0)
        return 0;
    double load = *rate < pm->cfg[best_cfg].thr ? *rate : pm->cfg[best_cfg].thr;
    if (plan_add(s, p, (uint32_t)best_gpu, m, (uint32_t)best_cfg, load) < 0)
        return -1;
    *rate -= load;
    return 1;
}

/* 1: the running plan's GPUs and replicas, without loads */
static int copy_running(const plan_problem *p, const plan_solution *old, plan_solution *s,
                        usher_error *err)
{
    for (uint32_t i = 0; i < old->n; i++) {
        int g = plan_open(s, p, old->g[i].type, old->g[i].group);
        if (g < 0)
            return us_err_set(err, USHER_ERR_LIMIT,
                              "the running plan uses more %s GPUs than the cluster now allows",
                              p->t[old->g[i].type].key);
        for (uint32_t r = 0; r < old->g[i].n; r++)
            if (plan_add(s, p, (uint32_t)g, old->g[i].r[r].model, old->g[i].r[r].cfg, 0) < 0)
                return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    return USHER_OK;
}

/* the throughput of model m's replicas */
static double capacity(const plan_problem *p, const plan_solution *s, uint32_t m)
{
    double cap = 0;
    for (uint32_t i = 0; i < s->n; i++)
        for (uint32_t r = 0; r < s->g[i].n; r++)
            if (s->g[i].r[r].model == m)
                cap += p->m[m].cfg[s->g[i].r[r].cfg].thr;
    return cap;
}

/* 2: surplus - stop replicas of m on the emptiest GPUs while capacity stays enough */
static void stop_surplus(const plan_problem *p, plan_solution *s, uint32_t m, double need)
{
    double cap = capacity(p, s, m);
    while (cap > need + 1e-9) {
        int bg = -1, br = -1;
        double bf = INFINITY;
        for (uint32_t i = 0; i < s->n; i++)
            for (uint32_t r = 0; r < s->g[i].n; r++) {
                if (s->g[i].r[r].model != m)
                    continue;
                double thr = p->m[m].cfg[s->g[i].r[r].cfg].thr;
                double fill = s->g[i].used_c + s->g[i].used_m;
                if (cap - thr >= need - 1e-9 && fill < bf) {
                    bf = fill;
                    bg = (int)i;
                    br = (int)r;
                }
            }
        if (bg < 0)
            break;
        cap -= p->m[m].cfg[s->g[bg].r[br].cfg].thr;
        plan_remove(s, p, (uint32_t)bg, (uint32_t)br);
    }
}

/* loads: fill m's kept replicas in order; returns the rate left over */
static double fill_loads(const plan_problem *p, plan_solution *s, uint32_t m, double need)
{
    double left = need;
    for (uint32_t i = 0; i < s->n; i++)
        for (uint32_t r = 0; r < s->g[i].n; r++)
            if (s->g[i].r[r].model == m) {
                double thr = p->m[m].cfg[s->g[i].r[r].cfg].thr;
                double load = left < thr ? left : thr;
                s->g[i].r[r].load = load;
                left -= load;
            }
    return left;
}

/* 3: a larger batch for replica rp on GPU g (same type and share, memory within
 * the GPU): the smallest batch that carries the deficit, else the largest; -1 */
static int larger_batch(const plan_problem *p, const plan_gpu *g, const plan_replica *rp,
                        double left)
{
    const plan_model *pm = &p->m[rp->model];
    const plan_cfg *cur = &pm->cfg[rp->cfg];
    int best = -1;
    for (uint32_t c = 0; c < pm->n_cfg; c++) {
        const plan_cfg *x = &pm->cfg[c];
        if (x->type != cur->type || x->share != cur->share || x->thr <= cur->thr ||
            g->used_m - cur->mreq + x->mreq > PLAN_FIT_MAX)
            continue;
        bool carries = x->thr - rp->load >= left;
        if (best < 0) {
            best = (int)c;
            continue;
        }
        const plan_cfg *b = &pm->cfg[best];
        bool bcarries = b->thr - rp->load >= left;
        if ((carries && (!bcarries || x->batch < b->batch)) ||
            (!carries && !bcarries && x->thr > b->thr))
            best = (int)c;
    }
    return best;
}

/* 3: deficit, first step - larger batches of m's running replicas (no restart) */
static int grow_batches(const plan_problem *p, plan_solution *s, uint32_t m, double *left)
{
    for (uint32_t i = 0; i < s->n && *left > 1e-9; i++)
        for (uint32_t r = 0; r < s->g[i].n && *left > 1e-9; r++) {
            plan_replica *rp = &s->g[i].r[r];
            if (rp->model != m)
                continue;
            int best = larger_batch(p, &s->g[i], rp, *left);
            if (best < 0)
                continue;
            const plan_cfg *x = &p->m[m].cfg[best];
            double load = rp->load + *left < x->thr ? rp->load + *left : x->thr;
            *left -= load - rp->load;
            plan_remove(s, p, i, r);
            if (plan_add(s, p, i, m, (uint32_t)best, load) < 0)
                return USHER_ERR_NOMEM;
            r = UINT32_MAX; /* the replica moved to the end: this GPU again from 0 */
        }
    return USHER_OK;
}

/* 2-3 for model m: its replicas sized to its new rate */
static int replan_model(const plan_problem *p, plan_solution *s, uint32_t m)
{
    double need = p->m[m].rate;
    stop_surplus(p, s, m, need);
    double left = fill_loads(p, s, m, need);
    /* 3: larger batches, the free room of running GPUs, then new GPUs */
    if (grow_batches(p, s, m, &left) < 0)
        return USHER_ERR_NOMEM;
    if (left > 1e-9 && plan_absorb_fewest(s, p, m, &left) < 0)
        return USHER_ERR_NOMEM;
    while (left > 1e-9) {
        int rc = place_one(p, s, m, &left);
        if (rc < 0)
            return USHER_ERR_NOMEM;
        if (rc == 0)
            break; /* the cluster is full: unserved */
    }
    return USHER_OK;
}

/* 4: whether every replica of GPU i fits on another GPU of its type (first
 * fit on the tentative counters tc/tm) */
static bool fits_elsewhere(const plan_problem *p, const plan_solution *s, uint32_t i, double *tc,
                           double *tm)
{
    for (uint32_t k = 0; k < s->n; k++)
        tc[k] = s->g[k].used_c, tm[k] = s->g[k].used_m;
    for (uint32_t r = 0; r < s->g[i].n; r++) {
        const plan_cfg *c = &p->m[s->g[i].r[r].model].cfg[s->g[i].r[r].cfg];
        int d = -1;
        for (uint32_t k = 0; k < s->n && d < 0; k++)
            if (k != i && s->g[k].type == s->g[i].type && plan_room_fits(tc[k], tm[k], c))
                d = (int)k;
        if (d < 0)
            return false;
        tc[d] += c->creq, tm[d] += c->mreq;
    }
    return true;
}

/* 4: the least-filled GPU with at most budget replicas, all of which fit
 * elsewhere; -1 if none */
static int pick_victim(const plan_problem *p, const plan_solution *s, uint32_t budget, double *tc,
                       double *tm)
{
    int victim = -1;
    double least = INFINITY;
    for (uint32_t i = 0; i < s->n; i++) {
        double f = s->g[i].used_c + s->g[i].used_m;
        if (s->g[i].n && s->g[i].n <= budget && f < least && fits_elsewhere(p, s, i, tc, tm)) {
            least = f;
            victim = (int)i;
        }
    }
    return victim;
}

/* 4: each replica of GPU v (the last first) onto the first other GPU it fits,
 * then v emptied; false if one found no GPU */
static bool move_all(const plan_problem *p, plan_solution *s, uint32_t v)
{
    for (uint32_t r = s->g[v].n; r-- > 0;) {
        plan_replica rp = s->g[v].r[r];
        const plan_cfg *c = &p->m[rp.model].cfg[rp.cfg];
        int d = -1;
        for (uint32_t k = 0; k < s->n && d < 0; k++)
            if (k != v && plan_fits(&s->g[k], c))
                d = (int)k;
        if (d < 0 || plan_add(s, p, (uint32_t)d, rp.model, rp.cfg, rp.load) < 0)
            return false;
    }
    plan_empty(s, p, v);
    return true;
}

/* 4: spend up to max_moves emptying GPUs (compaction waits for the diff) */
static int spend_moves(const plan_problem *p, plan_solution *s, uint32_t max_moves,
                       usher_error *err)
{
    uint32_t budget = max_moves;
    double *tc = us_calloc(s->n ? s->n : 1, sizeof *tc), *tm = us_calloc(s->n ? s->n : 1, sizeof *tm);
    int rc = tc && tm ? USHER_OK : us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    while (rc == USHER_OK && budget > 0) {
        int victim = pick_victim(p, s, budget, tc, tm);
        if (victim < 0)
            break;
        budget -= s->g[victim].n;
        if (!move_all(p, s, (uint32_t)victim))
            rc = us_err_set(err, USHER_ERR_INTERNAL, "re-planning lost a replica");
    }
    us_free(tc);
    us_free(tm);
    return rc;
}

/* replicas of new GPU ng matched with old GPU og (NULL: none): the same
 * configuration, then the same share at another batch size (the batch is a
 * runtime setting: reconfigured, not restarted); counted into s */
static int count_gpu(const plan_problem *p, const plan_gpu *og, const plan_gpu *ng,
                     plan_solution *s)
{
    uint32_t on = og ? og->n : 0;
    bool *used = us_calloc(on ? on : 1, sizeof *used);
    bool *match = us_calloc(ng->n ? ng->n : 1, sizeof *match);
    if (!used || !match) {
        us_free(used);
        us_free(match);
        return USHER_ERR_NOMEM;
    }
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t r = 0; r < ng->n; r++) {
            const plan_cfg *nc = &p->m[ng->r[r].model].cfg[ng->r[r].cfg];
            for (uint32_t k = 0; k < on && !match[r]; k++) {
                if (used[k] || og->r[k].model != ng->r[r].model)
                    continue;
                const plan_cfg *oc = &p->m[og->r[k].model].cfg[og->r[k].cfg];
                if (pass == 0 ? og->r[k].cfg == ng->r[r].cfg : oc->share == nc->share) {
                    match[r] = used[k] = true;
                    s->reconfigured += pass == 1;
                }
            }
        }
    for (uint32_t r = 0; r < ng->n; r++)
        s->moves += !match[r];
    for (uint32_t k = 0; k < on; k++)
        s->stopped += !used[k];
    us_free(match);
    us_free(used);
    return USHER_OK;
}

int plan_replan(const plan_problem *p, const plan_solution *old, uint32_t max_moves,
                plan_solution *s, usher_error *err)
{
    int rc = copy_running(p, old, s, err);
    for (uint32_t m = 0; rc == USHER_OK && m < p->n; m++)
        if (replan_model(p, s, m) < 0)
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    if (rc == USHER_OK)
        rc = spend_moves(p, s, max_moves, err);
    if (rc < 0)
        return rc;
    /* starts and stops against the running plan, GPU by GPU */
    s->moves = s->stopped = s->reconfigured = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (count_gpu(p, i < old->n ? &old->g[i] : NULL, &s->g[i], s) < 0)
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    plan_compact(s);
    plan_account(s, p);
    return USHER_OK;
}
