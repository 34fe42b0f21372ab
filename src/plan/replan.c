/*
 * replan.c - a new plan for new rates that keeps the running one (layer 6).
 *
 * USHER re-plans from scratch, which restarts replicas everywhere. Here:
 *   1. every replica of the old plan whose configuration is still feasible
 *      stays where it is;
 *   2. a model whose new rate is below what the running plan served it loses
 *      replicas - those on the emptiest GPUs first - while the rest still
 *      covers the rate (a model whose rate did not fall keeps them all);
 *   3. a model that needs more first uses the spare throughput of its
 *      replicas, then larger batch sizes of them (same share, same memory
 *      budget), then gets capacity in the free room of the running GPUs
 *      (plan_absorb: a replica grown to a larger configuration, or a new
 *      one sized to the need); what is still missing is placed on new GPUs
 *      two ways - USHER on every model's deficit together (place_new), or
 *      each model's cheapest configuration in turn (place_each) - keeping
 *      the plan that serves more, then costs less, then starts fewer;
 *   4. with max_moves > 0, up to that many further replica moves are spent
 *      emptying the least-filled GPUs, trading moves for cost.
 * The result is compared with the running plan GPU by GPU: a replica that
 * was not there with that share is a start (a new replica, a moved one, or
 * one restarted with another MPS share, which needs a new process:
 * s->moves); one there with the same share and another batch size is
 * reconfigured (s->reconfigured: the batch is a runtime setting); one that
 * is gone is a stop (s->stopped; stopping disturbs nothing else, so it is
 * reported apart).
 *
 * GPU identity. A GPU is named by its cluster entry (type and node) and an
 * index on it (plan.json gpus[].index, plan_gpu.ident = index + 1). A kept
 * GPU keeps its index; a new one takes the smallest index of its entry that no
 * GPU of the plan holds and that is not lost (plan_gpu_indices), so a re-plan
 * that changes nothing names every GPU as before. The running plan's GPUs
 * that are gone - listed lost (cluster.yaml lost: [...]), past the entry's
 * count or max, or on an entry the cluster no longer has (input.c) - are not
 * copied: their replicas are missing capacity, which step 3 places again like
 * any other deficit (the free room of the running GPUs first). No other
 * replica moves for them. Starts are counted GPU by GPU against the running
 * plan's GPU of the same identity.
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
            double cost = price * plan_foot(x) / plan_thr(x);
            int g = pass == 0 ? plan_best_fit(s, p, x->type, m, c, -1) : -2;
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
    /* added empty, then loaded to what it carries there */
    if (plan_add(s, p, (uint32_t)best_gpu, m, (uint32_t)best_cfg, 0) < 0)
        return -1;
    plan_replica *nr = &s->g[best_gpu].r[s->g[best_gpu].n - 1];
    double cap = plan_target(s, p, nr);
    nr->load = *rate < cap ? *rate : cap;
    *rate -= nr->load;
    return 1;
}

/* 3, last, one model at a time (in order): its cheapest configuration where
 * it fits, on a running GPU or a new one, until its deficit is met or the
 * cluster is full */
static int place_each(const plan_problem *p, plan_solution *s, const double *left,
                      const uint32_t *order)
{
    for (uint32_t k = 0; k < p->n; k++) {
        uint32_t m = order ? order[k] : k;
        double l = left[m];
        while (l > 1e-9) {
            int rc = place_one(p, s, m, &l);
            if (rc < 0)
                return USHER_ERR_NOMEM;
            if (rc == 0)
                break; /* the cluster is full: unserved */
        }
    }
    return USHER_OK;
}

int64_t plan_type_slots(const plan_type *t)
{
    return t->slots > 0 ? t->slots : t->count >= 0 ? t->count : t->max;
}

bool plan_gpu_lost(const plan_problem *p, uint16_t t, uint32_t index)
{
    for (uint32_t k = 0; k < p->n_lost; k++)
        if (p->lost[k].type == t && p->lost[k].index == index)
            return true;
    return false;
}

int plan_lose_gpu(plan_problem *p, uint16_t t, int64_t index)
{
    plan_type *ty = &p->t[t];
    if (ty->slots <= 0)
        ty->slots = plan_type_slots(ty);
    if (index < 0 || index >= ty->slots || plan_gpu_lost(p, t, (uint32_t)index))
        return USHER_ERR_INVALID;
    if (p->n_lost == PLAN_MAX_LOST)
        return USHER_ERR_LIMIT;
    p->lost[p->n_lost++] = (struct plan_lost){.type = t, .index = (uint32_t)index};
    if (ty->count > 0)
        ty->count--;
    else if (ty->count < 0 && ty->max > 0)
        ty->max--;
    return USHER_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int plan_gpu_indices(const plan_solution *s, const plan_problem *p, uint32_t *idx)
{
    /* taken: (type << 32 | index) of the set identities and the lost GPUs, sorted */
    size_t n = (size_t)s->n + p->n_lost;
    uint64_t *taken = us_calloc(n ? n : 1, sizeof *taken);
    if (!taken)
        return USHER_ERR_NOMEM;
    size_t nt = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (s->g[i].ident)
            taken[nt++] = (uint64_t)s->g[i].type << 32 | (s->g[i].ident - 1);
    for (uint32_t k = 0; k < p->n_lost; k++)
        taken[nt++] = (uint64_t)p->lost[k].type << 32 | p->lost[k].index;
    qsort(taken, nt, sizeof *taken, cmp_u64);
    /* per type: the next candidate index and the first taken entry not below it */
    uint32_t next[PLAN_MAX_TYPES] = {0};
    size_t pos[PLAN_MAX_TYPES];
    for (uint32_t t = 0, k = 0; t < PLAN_MAX_TYPES; t++) {
        while (k < nt && (taken[k] >> 32) < t)
            k++;
        pos[t] = k;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        uint16_t t = s->g[i].type;
        if (s->g[i].ident) {
            idx[i] = s->g[i].ident - 1;
            continue;
        }
        while (pos[t] < nt && (taken[pos[t]] >> 32) == t &&
               (uint32_t)taken[pos[t]] <= next[t]) {
            if ((uint32_t)taken[pos[t]] == next[t])
                next[t]++;
            pos[t]++;
        }
        idx[i] = next[t]++;
    }
    us_free(taken);
    return USHER_OK;
}

/* 1: the running plan's GPUs and replicas, without loads, each GPU with its
 * identity (numbered as the running plan was written where it has none); a
 * GPU now lost is left out, its replicas counted (s->lost_*) and placed again
 * by step 3; a replica the rule refuses beside those before it (a running plan
 * made without the model) is left out: it restarts elsewhere */
static int copy_running(const plan_problem *p, const plan_solution *old, bool keep_loads,
                        plan_solution *s, usher_error *err)
{
    uint32_t *idx = us_calloc(old->n ? old->n : 1, sizeof *idx);
    if (!idx || plan_gpu_indices(old, p, idx) < 0) {
        us_free(idx);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    s->lost_gpus = old->lost_gpus;
    s->lost_replicas = old->lost_replicas;
    for (uint32_t i = 0; i < old->n; i++) {
        uint16_t t = old->g[i].type;
        int g = -1;
        if (idx[i] < plan_type_slots(&p->t[t]) && !plan_gpu_lost(p, t, idx[i]))
            g = plan_open(s, p, t, old->g[i].group);
        if (g < 0) {
            /* gone (or, from a plan not read through input.c, over the limit) */
            s->lost_gpus++;
            s->lost_replicas += old->g[i].n;
            continue;
        }
        s->g[g].ident = idx[i] + 1;
        for (uint32_t r = 0; r < old->g[i].n; r++) {
            const plan_replica *rp = &old->g[i].r[r];
            double load = keep_loads ? rp->load : 0;
            if (!plan_fits_with(s, p, (uint32_t)g, rp->model, rp->cfg, load, -1, NULL))
                continue;
            if (plan_add(s, p, (uint32_t)g, rp->model, rp->cfg, load) < 0) {
                us_free(idx);
                return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            }
        }
    }
    us_free(idx);
    return USHER_OK;
}

/* the throughput of model m's replicas as placement loads them (plan_target) */
static double capacity(const plan_problem *p, const plan_solution *s, uint32_t m)
{
    double cap = 0;
    for (uint32_t i = 0; i < s->n; i++)
        for (uint32_t r = 0; r < s->g[i].n; r++)
            if (s->g[i].r[r].model == m)
                cap += plan_target(s, p, &s->g[i].r[r]);
    return cap;
}

/* 2: surplus - stop replicas of m on the emptiest GPUs while capacity stays enough
 * (the capacity of those left is counted as it was: stopping one only speeds
 * up its neighbours) */
static void stop_surplus(const plan_problem *p, plan_solution *s, uint32_t m, double need)
{
    double cap = capacity(p, s, m);
    /* a model asking for spread (spread.c) keeps replicas in two domains: a replica
     * alone in its domain is not surplus while the model spans exactly two (dom:
     * each GPU type's domain as the first type of the same domain) */
    int lv = p->m[m].spread;
    uint16_t dom[PLAN_MAX_TYPES];
    for (uint16_t t = 0; lv && t < p->nt; t++) {
        dom[t] = t;
        for (uint16_t u = 0; u < t && dom[t] == t; u++)
            if (strcmp(plan_spread_domain(p, u, lv), plan_spread_domain(p, t, lv)) == 0)
                dom[t] = u;
    }
    while (cap > need + 1e-9) {
        int bg = -1, br = -1;
        double bf = INFINITY;
        uint32_t cnt[PLAN_MAX_TYPES] = {0}, n_dom = 0;
        for (uint32_t i = 0; lv && i < s->n; i++)
            for (uint32_t r = 0; r < s->g[i].n; r++)
                if (s->g[i].r[r].model == m && cnt[dom[s->g[i].type]]++ == 0)
                    n_dom++;
        for (uint32_t i = 0; i < s->n; i++)
            for (uint32_t r = 0; r < s->g[i].n; r++) {
                if (s->g[i].r[r].model != m)
                    continue;
                if (lv && n_dom == 2 && cnt[dom[s->g[i].type]] == 1)
                    continue; /* the last replica of one of its two domains */
                double thr = plan_target(s, p, &s->g[i].r[r]);
                double fill = s->g[i].used_c + s->g[i].used_m;
                if (cap - thr >= need - 1e-9 && fill < bf) {
                    bf = fill;
                    bg = (int)i;
                    br = (int)r;
                }
            }
        if (bg < 0)
            break;
        cap -= plan_target(s, p, &s->g[bg].r[br]);
        plan_remove(s, p, (uint32_t)bg, (uint32_t)br);
    }
}

/* loads: fill m's kept replicas in order as placement loads them, then (what
 * is left) to their whole co-located throughput, before anything starts;
 * returns the rate left over */
static double fill_loads(const plan_problem *p, plan_solution *s, uint32_t m, double need)
{
    double left = need;
    for (uint32_t i = 0; i < s->n; i++)
        for (uint32_t r = 0; r < s->g[i].n; r++)
            if (s->g[i].r[r].model == m) {
                double thr = plan_target(s, p, &s->g[i].r[r]);
                double load = left < thr ? left : thr;
                s->g[i].r[r].load = load;
                left -= load;
                plan_coloc_forget(s, i); /* the load may have shrunk */
            }
    for (uint32_t i = 0; i < s->n && left > 1e-9; i++)
        for (uint32_t r = 0; r < s->g[i].n && left > 1e-9; r++) {
            plan_replica *rp = &s->g[i].r[r];
            double spare = rp->model == m ? plan_cap(s, p, rp) - rp->load : 0;
            if (spare > 0) {
                double take = spare < left ? spare : left;
                rp->load += take;
                left -= take;
            }
        }
    return left;
}

/* 3: a larger batch for replica r of GPU i (same type and share, where it fits
 * in its place): the smallest batch that carries the deficit, else the
 * largest; -1. *thr: the throughput it may be loaded to */
static int larger_batch(const plan_problem *p, plan_solution *s, uint32_t i, uint32_t r,
                        double left, double *thr)
{
    const plan_replica *rp = &s->g[i].r[r];
    const plan_model *pm = &p->m[rp->model];
    const plan_cfg *cur = &pm->cfg[rp->cfg];
    int best = -1;
    double bthr = 0;
    for (uint32_t c = 0; c < pm->n_cfg; c++) {
        const plan_cfg *x = &pm->cfg[c];
        double xthr;
        if (x->type != cur->type || x->share != cur->share || x->thr <= cur->thr ||
            !plan_fits_with(s, p, i, rp->model, c, rp->load, (int)r, &xthr))
            continue;
        bool carries = xthr - rp->load >= left;
        if (best < 0) {
            best = (int)c;
            bthr = xthr;
            continue;
        }
        const plan_cfg *b = &pm->cfg[best];
        bool bcarries = bthr - rp->load >= left;
        if ((carries && (!bcarries || x->batch < b->batch)) || (!carries && !bcarries && xthr > bthr)) {
            best = (int)c;
            bthr = xthr;
        }
    }
    *thr = bthr;
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
            double thr;
            int best = larger_batch(p, s, i, r, *left, &thr);
            if (best < 0)
                continue;
            double load = rp->load + *left < thr ? rp->load + *left : thr;
            *left -= load - rp->load;
            plan_remove(s, p, i, r);
            if (plan_add(s, p, i, m, (uint32_t)best, load) < 0)
                return USHER_ERR_NOMEM;
            r = UINT32_MAX; /* the replica moved to the end: this GPU again from 0 */
        }
    return USHER_OK;
}

/* 2-3 for model m: its replicas sized to its new rate; surplus stopped only
 * when the rate is below what the running plan served (was_served): a model
 * whose rate did not fall keeps every replica it has, so that a re-plan for a
 * loss elsewhere moves nothing of it */
static int replan_model(const plan_problem *p, plan_solution *s, uint32_t m, double was_served,
                        double *left_out)
{
    double need = p->m[m].rate;
    if (need < was_served * (1 - 1e-9))
        stop_surplus(p, s, m, need);
    double left = fill_loads(p, s, m, need);
    /* 3: larger batches, the free room of running GPUs; new GPUs later */
    if (grow_batches(p, s, m, &left) < 0)
        return USHER_ERR_NOMEM;
    if (left > 1e-9 && plan_absorb_fewest(s, p, m, &left) < 0)
        return USHER_ERR_NOMEM;
    *left_out = left > 1e-9 ? left : 0;
    return USHER_OK;
}

/* 3, last: what no running GPU could take (left[m] of model m) planned by
 * USHER on new GPUs - the deficits together, as a problem of their own within
 * what the cluster has left - and those GPUs added to s. A fixed cluster
 * with nothing left serves no more (unserved) */
static int place_new(const plan_problem *p, plan_solution *s, const double *left,
                     usher_error *err)
{
    bool any = false;
    for (uint32_t m = 0; m < p->n && !any; m++)
        any = left[m] > 0;
    if (!any)
        return USHER_OK;
    plan_problem *q = us_malloc(sizeof *q);
    plan_model *mm = us_calloc(p->n, sizeof *mm);
    plan_solution sub;
    memset(&sub, 0, sizeof sub);
    int rc = q && mm ? USHER_OK : us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    if (rc == USHER_OK) {
        *q = *p;
        q->m = mm;
        memcpy(mm, p->m, p->n * sizeof *mm);
        for (uint32_t m = 0; m < p->n; m++) {
            mm[m].rate = left[m];
            mm[m].min_share = 0;
        }
        q->objective = p->objective == PLAN_MIN_COST ? PLAN_MIN_COST : PLAN_MAX_GOODPUT;
        for (uint16_t t = 0; t < p->nt; t++) {
            int64_t room = plan_type_left(s, p, t);
            room = room > 0 ? room : 0;
            if (q->t[t].count >= 0)
                q->t[t].count = room;
            else
                q->t[t].max = room;
        }
        if (plan_solution_init(&sub, q, "usher") < 0)
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        else
            rc = plan_usher(q, &sub, err);
    }
    for (uint32_t i = 0; rc == USHER_OK && i < sub.n; i++) {
        if (sub.g[i].n == 0)
            continue;
        int g = plan_open(s, p, sub.g[i].type, -1);
        if (g < 0) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            break;
        }
        for (uint32_t r = 0; r < sub.g[i].n && rc == USHER_OK; r++) {
            const plan_replica *rp = &sub.g[i].r[r];
            if (plan_add(s, p, (uint32_t)g, rp->model, rp->cfg, rp->load) < 0)
                rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        }
    }
    plan_solution_free(&sub);
    us_free(mm);
    us_free(q);
    return rc;
}

/* 4: every replica of GPU v onto the first other GPU of its type where it fits
 * (plan_fits_with, its load), in order; all or nothing: true when they all
 * went (v is then empty), else nothing changed. uc/um/dest: one per replica */
static bool first_fit_out(const plan_problem *p, plan_solution *s, uint32_t v, int *dest,
                          double *uc, double *um, bool *nomem)
{
    uint32_t done = 0;
    for (uint32_t r = 0; r < s->g[v].n; r++) {
        plan_replica rp = s->g[v].r[r];
        int d = -1;
        for (uint32_t k = 0; k < s->n && d < 0; k++)
            if (k != v && s->g[k].type == s->g[v].type &&
                plan_fits_with(s, p, k, rp.model, rp.cfg, rp.load, -1, NULL))
                d = (int)k;
        if (d >= 0) {
            dest[done] = d;
            uc[done] = s->g[d].used_c;
            um[done] = s->g[d].used_m;
            if (plan_add(s, p, (uint32_t)d, rp.model, rp.cfg, rp.load) < 0) {
                *nomem = true;
                d = -1;
            }
        }
        if (d < 0) {
            while (done-- > 0)
                plan_unadd(s, p, (uint32_t)dest[done], uc[done], um[done]);
            return false;
        }
        done++;
    }
    plan_empty(s, p, v);
    return true;
}

/* 4: spend up to max_moves emptying GPUs, the least-filled first among those
 * with at most the moves left whose replicas all fit elsewhere (compaction
 * waits for the diff) */
static int spend_moves(const plan_problem *p, plan_solution *s, uint32_t max_moves,
                       usher_error *err)
{
    uint32_t budget = max_moves, most = 1;
    for (uint32_t i = 0; i < s->n; i++)
        most = s->g[i].n > most ? s->g[i].n : most;
    uint32_t n = s->n ? s->n : 1;
    uint32_t *order = us_calloc(n, sizeof *order);
    double *fill = us_calloc(n, sizeof *fill);
    double *uc = us_calloc(most, sizeof *uc), *um = us_calloc(most, sizeof *um);
    int *dest = us_calloc(most, sizeof *dest);
    int rc = order && fill && uc && um && dest ? USHER_OK
                                               : us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    bool moved = true, nomem = false;
    while (rc == USHER_OK && budget > 0 && moved) {
        uint32_t no = 0;
        for (uint32_t i = 0; i < s->n; i++) {
            fill[i] = -(s->g[i].used_c + s->g[i].used_m);
            if (s->g[i].n && s->g[i].n <= budget)
                order[no++] = i;
        }
        /* least filled first, ties in index order */
        if ((rc = plan_sort_desc(order, no, fill)) < 0) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            break;
        }
        moved = false;
        for (uint32_t k = 0; k < no && !moved && !nomem; k++) {
            uint32_t reps = s->g[order[k]].n;
            if ((moved = first_fit_out(p, s, order[k], dest, uc, um, &nomem)))
                budget -= reps;
        }
        if (nomem)
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    us_free(order);
    us_free(fill);
    us_free(uc);
    us_free(um);
    us_free(dest);
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
    int rc = plan_spread_check(p, err);
    if (rc == USHER_OK)
        rc = plan_replan_order(p, old, max_moves, NULL, false, s, err);
    /* anti-affinity last (spread.c): a replica it adds is a start */
    uint32_t added = s->spread_added;
    if (rc == USHER_OK && (rc = plan_spread(p, s, err)) == USHER_OK)
        s->moves += s->spread_added - added;
    return rc;
}

int plan_replan_order(const plan_problem *p, const plan_solution *old, uint32_t max_moves,
                      const uint32_t *order, bool keep_loads, plan_solution *s,
                      usher_error *err)
{
    int rc = copy_running(p, old, keep_loads, s, err);
    /* every model's load on its kept replicas before any is re-sized: the
     * capacity of a model judged beside idle neighbours is more than it is
     * once they carry their loads (the rule and the queueing cap depend on
     * them), and step 2 would stop replicas the model still needs */
    for (uint32_t m = 0; rc == USHER_OK && !keep_loads && m < p->n; m++)
        fill_loads(p, s, m, p->m[m].rate);
    double *left = rc == USHER_OK ? us_calloc(p->n ? p->n : 1, sizeof *left) : NULL;
    if (rc == USHER_OK && !left)
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    for (uint32_t k = 0; rc == USHER_OK && k < p->n; k++) {
        uint32_t m = order ? order[k] : k;
        if (replan_model(p, s, m, m < old->n_models ? old->served[m] : 0, &left[m]) < 0)
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    /* the deficits on new GPUs two ways - USHER on them together, or each
     * model's cheapest configuration in turn - and the plan that serves more,
     * then costs less, then starts fewer replicas, is kept */
    plan_solution alt;
    memset(&alt, 0, sizeof alt);
    if (rc == USHER_OK && plan_solution_clone(s, &alt) < 0)
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    if (rc == USHER_OK)
        rc = place_new(p, s, left, err);
    if (rc == USHER_OK && place_each(p, &alt, left, order) < 0)
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    if (rc == USHER_OK) {
        plan_totals a, b;
        plan_account(s, p);
        plan_account(&alt, p);
        plan_totals_of(s, p, &a);
        plan_totals_of(&alt, p, &b);
        bool take = b.served > a.served * (1 + 1e-9) + 1e-9 ||
                    (b.served >= a.served * (1 - 1e-9) - 1e-9 &&
                     (b.cost < a.cost - 1e-9 ||
                      (b.cost <= a.cost + 1e-9 && b.replicas < a.replicas)));
        if (take) {
            plan_solution t = *s;
            *s = alt;
            alt = t;
        }
    }
    plan_solution_free(&alt);
    us_free(left);
    if (rc == USHER_OK)
        rc = spend_moves(p, s, max_moves, err);
    if (rc < 0)
        return rc;
    /* starts and stops against the running plan, GPU by GPU of the same
     * identity (new GPUs have none yet: every replica there is a start; the
     * replicas of lost GPUs were counted as lost, not stopped) */
    s->moves = s->stopped = s->reconfigured = 0;
    uint32_t *idx = us_calloc(old->n ? old->n : 1, sizeof *idx);
    if (!idx || plan_gpu_indices(old, p, idx) < 0) {
        us_free(idx);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    /* the kept GPUs are the first of s, in the running plan's order */
    for (uint32_t i = 0, k = 0; i < s->n; i++) {
        const plan_gpu *og = NULL;
        for (; k < old->n && s->g[i].ident && !og; k++)
            if (old->g[k].type == s->g[i].type && idx[k] + 1 == s->g[i].ident)
                og = &old->g[k];
        if (count_gpu(p, og, &s->g[i], s) < 0) {
            us_free(idx);
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        }
    }
    us_free(idx);
    plan_compact(s);
    plan_fill(s, p, order);
    return USHER_OK;
}
