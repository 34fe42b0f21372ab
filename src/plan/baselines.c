/*
 * baselines.c - the peer systems' placement policies, behind the same
 * interface as USHER's (layer 6). Each reproduces its published mechanism
 * on usher's estimator profiles; what was simplified is said here and in
 * docs/policies.md.
 *
 * Each follows its own paper's tuning (issue 13: a ratio against a weak
 * baseline is no result); docs/policies.md "The baselines at their papers'
 * tuning" gives the sources and tests/test_plan_baselines.c checks them.
 *
 *  shepherd   Herd + Flex (NSDI'23): herds (cap 1-8 GPUs, searched) of one type that all
 *             hold the same models and run one batch at a time; each model
 *             in one herd at Flex's batch (the one serving the most within
 *             the SLO: Flex forms the largest batch the deadlines allow). A cluster too small: Herd's max-min burst
 *             tolerance (the same fraction of every rate), then Flex fills
 *             idle time. Simplified: a greedy instead of Herd's integer
 *             program; Flex's preemption not modelled.
 *  gpulet     (ATC'22): at most two MPS partitions per GPU, the most
 *             efficient per model and an elastic last one for the rest; its
 *             linear interference model (latency x (1 + 0.5 x the partner's
 *             DRAM bandwidth share)) decides pairs and loads. Simplified:
 *             greedy first fit instead of its search over partition pairs.
 *  alpaserve  (OSDI'23): group partitioning (size 1-8) x batch limit, each
 *             searched; greedy replica placement by goodput, replication
 *             while memory allows, load spread to even the groups; the
 *             fewest GPUs per type. Simplified: no model parallelism (full
 *             copies per GPU of a group), steady-state goodput for its
 *             simulator.
 *  triton     Triton's default (every model on every GPU, time-sliced, load
 *             spread evenly) with batches tuned to the SLOs as Model
 *             Analyzer's search does; a model still late counts as unserved.
 *  static-mps two 50% MPS halves per GPU, one replica each, loaded to their
 *             throughput alone (no interference knowledge, by design).
 *
 * The time-sliced ones (shepherd, alpaserve, triton) may run a candidate at
 * any share: one batch runs at a time, the share is an MPS cap on it.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "plan.h"

/* ---- time-sliced groups of GPUs: shepherd's herds, alpaserve's groups --------- *
 *
 * A group is k GPUs of one type that all hold the same models (each GPU a
 * replica of every member, at full share) and run one batch at a time; a
 * member's load is spread evenly over the k GPUs. It is feasible when its
 * members' memory fits one GPU, its duty (sum of load / throughput) is at
 * most k, and every member's SLO holds while a request waits behind one batch
 * of every other member: PLAN_SLO_FACTOR x lat(m) + sum of the others'
 * latencies <= SLO(m). */
typedef struct tmember {
    uint32_t model, cfg;
    double load; /* requests/s over the whole group */
} tmember;

typedef struct tgroup {
    uint16_t type;
    uint32_t k;      /* GPUs */
    double duty;     /* sum of load / throughput, GPUs' worth of busy time */
    double mem;      /* sum of the members' Mreq (every GPU holds them all) */
    double lat_sum;  /* sum of the members' batch latencies */
    double min_room; /* min over the members of SLO - latency: a newcomer's latency
                        plus lat_sum must stay within it */
    tmember *mb;
    uint32_t n, cap;
} tgroup;

typedef struct tgroups {
    tgroup *g;
    uint32_t n, cap;
} tgroups;

static void tg_free(tgroups *gs)
{
    for (uint32_t i = 0; i < gs->n; i++)
        us_free(gs->g[i].mb);
    us_free(gs->g);
    *gs = (tgroups){0};
}

/* a new empty group of k GPUs of type t: its index, or USHER_ERR_NOMEM */
static int tg_new(tgroups *gs, uint16_t t, uint32_t k)
{
    if (gs->n == gs->cap) {
        uint32_t nc = gs->cap ? gs->cap * 2 : 32;
        tgroup *ng = us_realloc(gs->g, nc * sizeof *ng);
        if (!ng)
            return USHER_ERR_NOMEM;
        gs->g = ng;
        gs->cap = nc;
    }
    gs->g[gs->n] = (tgroup){.type = t, .k = k, .min_room = INFINITY};
    return (int)gs->n++;
}

static bool tg_member(const tgroup *g, uint32_t m)
{
    for (uint32_t i = 0; i < g->n; i++)
        if (g->mb[i].model == m)
            return true;
    return false;
}

/* may model m join group g with configuration c (memory, waiting rule)? */
static bool tg_fits(const tgroup *g, const plan_problem *p, uint32_t m, const plan_cfg *c)
{
    return g->type == c->type && g->mem + c->mreq <= PLAN_FIT_MAX &&
           PLAN_SLO_FACTOR * c->lat_ms + g->lat_sum <= p->m[m].slo_ms * (1 + 1e-12) &&
           c->lat_ms + g->lat_sum <= g->min_room * (1 + 1e-12) && !tg_member(g, m);
}

/* model m joins group g with configuration cfg and `load` requests/s */
static int tg_add(tgroup *g, const plan_problem *p, uint32_t m, uint32_t cfg, double load)
{
    const plan_cfg *c = &p->m[m].cfg[cfg];
    if (g->n == g->cap) {
        uint32_t nc = g->cap ? g->cap * 2 : 4;
        tmember *nm = us_realloc(g->mb, nc * sizeof *nm);
        if (!nm)
            return USHER_ERR_NOMEM;
        g->mb = nm;
        g->cap = nc;
    }
    g->mb[g->n++] = (tmember){.model = m, .cfg = cfg, .load = load};
    g->duty += load / c->thr;
    g->mem += c->mreq;
    g->lat_sum += c->lat_ms;
    double room = p->m[m].slo_ms - c->lat_ms;
    if (room < g->min_room)
        g->min_room = room;
    return USHER_OK;
}

/* the groups with members as GPUs of s: each of a group's k GPUs a replica of
 * every member at load / k; 0 or USHER_ERR_NOMEM (the callers counted the GPUs
 * against the types' limits) */
static int tg_emit(const tgroups *gs, const plan_problem *p, plan_solution *s)
{
    s->sharing = PLAN_SHARE_TIME;
    for (uint32_t i = 0; i < gs->n; i++) {
        const tgroup *g = &gs->g[i];
        if (g->n == 0)
            continue;
        for (uint32_t j = 0; j < g->k; j++) {
            if (plan_type_left(s, p, g->type) <= 0)
                return USHER_ERR_INTERNAL;
            int gi = plan_open(s, p, g->type, -1);
            if (gi < 0)
                return USHER_ERR_NOMEM;
            double duty = 0;
            for (uint32_t r = 0; r < g->n; r++) {
                const tmember *mb = &g->mb[r];
                const plan_cfg *c = &p->m[mb->model].cfg[mb->cfg];
                double load = fmin(mb->load / g->k, c->thr);
                if (plan_push(s, (uint32_t)gi,
                              (plan_replica){.model = mb->model, .cfg = mb->cfg, .load = load}) < 0)
                    return USHER_ERR_NOMEM;
                s->g[gi].used_m += c->mreq;
                duty += load / c->thr;
            }
            /* one batch at a time: compute is the busy fraction */
            s->g[gi].used_c = fmin(100, 100 * duty);
        }
    }
    return USHER_OK;
}

/* the configuration a time-sliced policy runs model m with on type t: of
 * those with a batch of at most maxb (any: INT_MAX), the one that serves the
 * most within the SLO (plan_cfg.thr: under the queueing rule, the rate whose
 * predicted p99 meets it), ties by the larger batch, then the shorter
 * latency; where every batch is larger, the smallest batch; -1 if m has none
 * on t. Any share will do: one batch runs at a time, and a configuration
 * profiled at a share below 100% is the same batch under an MPS cap - its
 * latency, an upper bound of the whole GPU's, is what it gets (the
 * candidates keep few batch sizes at 100%, docs/internals/plan.md) */
static int ts_cfg(const plan_problem *p, uint32_t m, uint16_t t, int maxb)
{
    int best = -1, small = -1;
    for (uint32_t i = 0; i < p->m[m].n_cfg; i++) {
        const plan_cfg *c = &p->m[m].cfg[i];
        if (c->type != t || !(c->thr > 0)) /* one that may carry no load at all */
            continue;
        const plan_cfg *sm = small >= 0 ? &p->m[m].cfg[small] : NULL;
        if (!sm || c->batch < sm->batch || (c->batch == sm->batch && c->lat_ms < sm->lat_ms))
            small = (int)i;
        if (c->batch > maxb)
            continue;
        const plan_cfg *b = best >= 0 ? &p->m[m].cfg[best] : NULL;
        if (!b || c->thr > b->thr * (1 + 1e-12) ||
            (c->thr >= b->thr * (1 - 1e-12) &&
             (c->batch > b->batch || (c->batch == b->batch && c->lat_ms < b->lat_ms))))
            best = (int)i;
    }
    return best >= 0 ? best : small;
}

static double price_of(const plan_problem *p, uint16_t t)
{
    return p->t[t].price > 0 ? p->t[t].price : 1e-9;
}

/* ---- shepherd ---------------------------------------------------------------- *
 * Herd's plan: the GPUs split into herds (serving groups) of at most
 * HERD_MAX_GPUS; each model is given to one herd (several only when its rate
 * needs more than a herd, or GPUs run out), every GPU of a herd holding all
 * its models. Flex's batch: Flex forms the largest batch the queued
 * requests' deadlines allow, so in steady state a model runs the batch that
 * serves the most within its SLO (ts_cfg: plan_cfg.thr, the rate whose
 * predicted p99 meets it; under the rule before the queueing model, the
 * largest batch with PLAN_SLO_FACTOR x latency <= SLO), on the type where
 * that serves a request/s cheapest. Herds are sized
 * to their summed duty (ceil); a model joins the herd it grows least,
 * fullest first, or opens its own. */
#define HERD_MAX_GPUS 8

/* Flex's configuration of m (ts_cfg, no batch limit) on the untried type
 * (with GPUs left, unless left is NULL: its herds may have idle time) where
 * it costs least per request/s; -1 if none */
static int flex_cfg(const plan_problem *p, uint32_t m, const bool *tried, const int64_t *left)
{
    int best = -1;
    double bv = INFINITY;
    for (uint16_t t = 0; t < p->nt; t++) {
        if (tried[t] || (left && left[t] <= 0))
            continue;
        int c = ts_cfg(p, m, t, INT_MAX);
        if (c < 0)
            continue;
        double v = price_of(p, t) / p->m[m].cfg[c].thr;
        if (v < bv) {
            bv = v;
            best = c;
        }
    }
    return best;
}

/* the herd model m (configuration cfg, rate d GPUs of duty) grows least; -1 if
 * none can take it whole; *add the GPUs it adds */
static int herd_pick(const tgroups *gs, const plan_problem *p, uint32_t m, uint32_t cfg, double d,
                     int64_t left, uint32_t cap, int64_t *add)
{
    const plan_cfg *c = &p->m[m].cfg[cfg];
    int pick = -1;
    for (uint32_t i = 0; i < gs->n; i++) {
        const tgroup *g = &gs->g[i];
        if (!tg_fits(g, p, m, c))
            continue;
        int64_t need = (int64_t)ceil(g->duty + d - 1e-9);
        int64_t a = need > (int64_t)g->k ? need - (int64_t)g->k : 0;
        if (need > (int64_t)cap || a > left)
            continue;
        if (pick < 0 || a < *add || (a == *add && g->duty > gs->g[pick].duty)) {
            pick = (int)i;
            *add = a;
        }
    }
    return pick;
}

/* how herds are formed: at most cap GPUs each; split: a model takes the idle
 * time of herds it fits (fullest first) before it opens a herd of its own */
typedef struct herd_opt {
    uint32_t cap;
    bool split;
} herd_opt;

/* up to `rate` of model m (configuration c) into the idle time of herds it
 * fits, fullest first; what is left stays in *rate; 0 or USHER_ERR_NOMEM */
static int herd_idle(tgroups *gs, const plan_problem *p, uint32_t m, int cfg, double *rate)
{
    const plan_cfg *c = &p->m[m].cfg[cfg];
    while (*rate > 1e-9) {
        int pick = -1;
        for (uint32_t i = 0; i < gs->n; i++) {
            const tgroup *g = &gs->g[i];
            if (((double)g->k - g->duty) * c->thr <= 1e-9 || !tg_fits(g, p, m, c))
                continue;
            if (pick < 0 || g->duty / g->k > gs->g[pick].duty / gs->g[pick].k)
                pick = (int)i;
        }
        if (pick < 0)
            break;
        tgroup *g = &gs->g[pick];
        double load = fmin(*rate, ((double)g->k - g->duty) * c->thr);
        if (tg_add(g, p, m, (uint32_t)cfg, load) < 0)
            return USHER_ERR_NOMEM;
        *rate -= load;
    }
    return USHER_OK;
}

/* `rate` of model m into herds; *rest what found no place; 0 or USHER_ERR_NOMEM */
static int shepherd_model(tgroups *gs, const plan_problem *p, uint32_t m, double rate,
                          herd_opt o, int64_t *left, double *rest)
{
    bool tried[PLAN_MAX_TYPES] = {0};
    int cfg = flex_cfg(p, m, tried, NULL);
    while (rate > 1e-9 && cfg >= 0) {
        const plan_cfg *c = &p->m[m].cfg[cfg];
        uint16_t t = c->type;
        double d = rate / c->thr;
        /* GPUs of its own; past the cap it takes whole herds (no overflow) */
        double od = ceil(d - 1e-9);
        int64_t add = 0, own = d <= 1e-9 ? 1 : od > o.cap ? (int64_t)o.cap + 1 : (int64_t)od;
        int h = -1;
        if (d < o.cap)
            h = herd_pick(gs, p, m, (uint32_t)cfg, d, left[t], o.cap, &add);
        if (h >= 0 && add <= own) {
            /* join: the herd grows by add GPUs */
            gs->g[h].k += (uint32_t)add;
            left[t] -= add;
            if (tg_add(&gs->g[h], p, m, (uint32_t)cfg, rate) < 0)
                return USHER_ERR_NOMEM;
            rate = 0;
            continue;
        }
        if (o.split && d < o.cap) {
            double before = rate;
            if (herd_idle(gs, p, m, cfg, &rate) < 0)
                return USHER_ERR_NOMEM;
            if (rate < before)
                continue;
        }
        /* a herd of its own: whole herds while the rate fills them, else its size */
        int64_t k = own < (int64_t)o.cap ? own : (int64_t)o.cap;
        if (k > left[t])
            k = left[t];
        if (k > 0) {
            int g = tg_new(gs, t, (uint32_t)k);
            if (g < 0)
                return USHER_ERR_NOMEM;
            double load = fmin(rate, (double)k * c->thr);
            if (tg_add(&gs->g[g], p, m, (uint32_t)cfg, load) < 0)
                return USHER_ERR_NOMEM;
            left[t] -= k;
            rate -= load;
            continue;
        }
        /* no GPU of this type left: the idle time of its herds, then another type */
        if (herd_idle(gs, p, m, cfg, &rate) < 0)
            return USHER_ERR_NOMEM;
        tried[t] = true;
        cfg = flex_cfg(p, m, tried, NULL);
    }
    *rest += rate;
    return USHER_OK;
}

/* the models by duty at their first configuration, largest first */
static int by_duty(const plan_problem *p, const int *cfg, uint32_t *order)
{
    double *key = us_calloc(p->n ? p->n : 1, sizeof *key);
    if (!key)
        return USHER_ERR_NOMEM;
    for (uint32_t m = 0; m < p->n; m++) {
        order[m] = m;
        key[m] = cfg[m] >= 0 ? p->m[m].rate / p->m[m].cfg[cfg[m]].thr : 0;
    }
    int rc = plan_sort_desc(order, p->n, key);
    us_free(key);
    return rc;
}

static void types_left(const plan_problem *p, const plan_solution *s, int64_t *left)
{
    for (uint16_t t = 0; t < p->nt; t++)
        left[t] = plan_type_left(s, p, t);
}

/* Herd's plan with every rate scaled by f: *gs, and *rest the rate left
 * without a place; 0 or USHER_ERR_NOMEM */
static int shepherd_run(const plan_problem *p, const plan_solution *s, const uint32_t *order,
                        herd_opt o, double f, const bool *out, bool *missed, tgroups *gs,
                        double *rest)
{
    int64_t left[PLAN_MAX_TYPES];
    types_left(p, s, left);
    *gs = (tgroups){0};
    *rest = 0;
    int rc = USHER_OK;
    for (uint32_t i = 0; i < p->n && rc == USHER_OK; i++) {
        uint32_t m = order[i];
        if (out && out[m])
            continue;
        double r0 = *rest;
        rc = shepherd_model(gs, p, m, f * p->m[m].rate, o, left, rest);
        if (missed)
            missed[m] = *rest > r0 + 1e-9;
    }
    return rc;
}

/* Flex online, in steady state: a herd's idle time serves more of its models'
 * rates (each served to a fraction f so far), the models with the most
 * throughput first - Flex prefers large batches; 0 or USHER_ERR_NOMEM */
static int flex_fill(tgroups *gs, const plan_problem *p, double f)
{
    double *rest = us_calloc(p->n ? p->n : 1, sizeof *rest);
    if (!rest)
        return USHER_ERR_NOMEM;
    for (uint32_t m = 0; m < p->n; m++)
        rest[m] = (1 - f) * p->m[m].rate;
    for (uint32_t i = 0; i < gs->n; i++) {
        tgroup *g = &gs->g[i];
        for (;;) {
            int best = -1;
            for (uint32_t r = 0; r < g->n; r++) {
                const tmember *mb = &g->mb[r];
                if (rest[mb->model] <= 1e-9)
                    continue;
                const tmember *bm = best >= 0 ? &g->mb[best] : NULL;
                if (!bm || p->m[mb->model].cfg[mb->cfg].thr > p->m[bm->model].cfg[bm->cfg].thr)
                    best = (int)r;
            }
            double idle = (double)g->k - g->duty;
            if (best < 0 || idle <= 1e-12)
                break;
            tmember *mb = &g->mb[best];
            double thr = p->m[mb->model].cfg[mb->cfg].thr;
            double take = fmin(rest[mb->model], idle * thr);
            mb->load += take;
            g->duty = fmin((double)g->k, g->duty + take / thr);
            rest[mb->model] -= take;
            if (g->duty >= (double)g->k - 1e-12)
                break; /* the herd is busy all the time */
        }
    }
    us_free(rest);
    return USHER_OK;
}

/* Herd's plan with herd options o into *gs; *f the fraction of every rate
 * it serves at least (1: all of it); 0 or USHER_ERR_NOMEM */
static int shepherd_plan(const plan_problem *p, const plan_solution *s, const uint32_t *order,
                         herd_opt o, tgroups *gs, double *f)
{
    double rest = 0, total = 0;
    for (uint32_t m = 0; m < p->n; m++)
        total += p->m[m].rate;
    *f = 1;
    int rc = shepherd_run(p, s, order, o, 1, NULL, NULL, gs, &rest);
    /* min-cost on an elastic cluster whose limits bind: serve what the herds
     * hold at full rates (the planner's objective) */
    if (rc < 0 || rest <= 1e-9 * total + 1e-9 || (!p->fixed && p->objective == PLAN_MIN_COST))
        return rc;
    /* a given cluster too small for every rate: Herd maximises the smallest
     * burst tolerance (capacity over rate), so every model gets the same
     * fraction f of its rate - the largest f whose herds fit (bisection).
     * Models that find no herd even at a sliver of their rate (too few GPUs
     * for the herds their SLOs need) are left out first, the later in the
     * order first */
    bool *out = us_calloc(p->n ? p->n : 1, sizeof *out);
    bool *missed = us_calloc(p->n ? p->n : 1, sizeof *missed);
    rc = out && missed ? USHER_OK : USHER_ERR_NOMEM;
    tg_free(gs);
    for (uint32_t k = p->n; rc == USHER_OK && k > 0; k--) {
        rc = shepherd_run(p, s, order, o, 1e-6, out, missed, gs, &rest);
        tg_free(gs);
        if (rc < 0 || rest <= 1e-9)
            break;
        for (uint32_t i = p->n; i-- > 0;)
            if (missed[order[i]] && !out[order[i]]) {
                out[order[i]] = true;
                break;
            }
    }
    double lo = 0, hi = 1;
    for (int it = 0; it < 30 && rc == USHER_OK; it++) {
        double mid = (lo + hi) / 2;
        rc = shepherd_run(p, s, order, o, mid, out, NULL, gs, &rest);
        tg_free(gs);
        if (rest > 1e-9 * mid * total + 1e-9)
            hi = mid;
        else
            lo = mid;
    }
    if (rc == USHER_OK)
        rc = shepherd_run(p, s, order, o, lo, out, NULL, gs, &rest);
    if (rc == USHER_OK)
        rc = flex_fill(gs, p, lo);
    *f = lo;
    us_free(out);
    us_free(missed);
    return rc;
}

/* the weighted rate groups gs serve, each model's at most its rate */
static double groups_weight(const tgroups *gs, const plan_problem *p, double *per_model)
{
    for (uint32_t m = 0; m < p->n; m++)
        per_model[m] = 0;
    for (uint32_t i = 0; i < gs->n; i++)
        for (uint32_t r = 0; r < gs->g[i].n; r++)
            per_model[gs->g[i].mb[r].model] += gs->g[i].mb[r].load;
    double w = 0;
    for (uint32_t m = 0; m < p->n; m++)
        w += fmin(per_model[m], p->m[m].rate) * plan_weight(&p->m[m]);
    return w;
}

static double groups_cost(const tgroups *gs, const plan_problem *p);

int plan_shepherd(const plan_problem *p, plan_solution *s, usher_error *err)
{
    s->sharing = PLAN_SHARE_TIME;
    int64_t left[PLAN_MAX_TYPES];
    types_left(p, s, left);
    int *cfg = us_calloc(p->n ? p->n : 1, sizeof *cfg);
    uint32_t *order = us_calloc(p->n ? p->n : 1, sizeof *order);
    double *per = us_calloc(p->n ? p->n : 1, sizeof *per);
    int rc = cfg && order && per ? USHER_OK : USHER_ERR_NOMEM;
    bool none[PLAN_MAX_TYPES] = {0};
    for (uint32_t m = 0; rc == USHER_OK && m < p->n; m++)
        cfg[m] = flex_cfg(p, m, none, left);
    if (rc == USHER_OK)
        rc = by_duty(p, cfg, order);
    /* the herd size cap and whether a model may take other herds' idle time
     * are Herd's tuning: each is tried, the plan serving most, then cheapest,
     * is kept; on a tie the larger herds (aggregated streams are Shepherd's
     * point), and models kept to one herd */
    tgroups best = {0};
    double bw = -1, bc = INFINITY, bf = 1;
    herd_opt bo = {0};
    for (uint32_t cap = HERD_MAX_GPUS; cap >= 1 && rc == USHER_OK; cap /= 2)
        for (int split = 0; split < 2 && rc == USHER_OK; split++) {
            herd_opt o = {.cap = cap, .split = split};
            tgroups gs = {0};
            double f;
            rc = shepherd_plan(p, s, order, o, &gs, &f);
            double w = rc == USHER_OK ? groups_weight(&gs, p, per) : 0, c = groups_cost(&gs, p);
            bool more = w > bw * (1 + 1e-9) + 1e-9;
            bool as_much = w >= bw * (1 - 1e-9) - 1e-9;
            if (rc == USHER_OK && (more || (as_much && c < bc * (1 - 1e-12)))) {
                tg_free(&best);
                best = gs;
                bw = w;
                bc = c;
                bf = f;
                bo = o;
            } else {
                tg_free(&gs);
            }
        }
    if (rc == USHER_OK)
        rc = tg_emit(&best, p, s);
    tg_free(&best);
    us_free(cfg);
    us_free(order);
    us_free(per);
    if (rc < 0)
        return us_err_set(err, rc, rc == USHER_ERR_NOMEM ? "out of memory"
                                                         : "shepherd: herds past a type's limit");
    if (bf < 1)
        snprintf(s->note, sizeof s->note,
                 "herds of <= %u GPUs%s, Flex's batch; cluster too small: %.1f%% of "
                 "every rate (Herd's max-min burst tolerance); no preemption",
                 bo.cap, bo.split ? " sharing idle time" : "", 100 * bf);
    else
        snprintf(s->note, sizeof s->note,
                 "herds of <= %u GPUs%s, Flex's batch (most within the SLO); no preemption",
                 bo.cap, bo.split ? " sharing idle time" : "");
    plan_account(s, p);
    return USHER_OK;
}

/* ---- alpaserve ----------------------------------------------------------------- *
 * AlpaServe's placement (OSDI'23, its algorithms 1 and 2), in the planner's
 * terms. Group partitioning: the GPUs of a type split into groups of equal
 * size k (1, 2, 4 or 8); a group runs every model it holds, one batch at a
 * time, its requests dealt over its GPUs. Without model parallelism a group
 * holds a full copy of each of its models on every GPU (AlpaServe splits a
 * model over the group instead: memory / k per GPU). Replica placement: the
 * greedy of its code's fast variant, with our steady-state goodput standing
 * in for its simulator: repeatedly, the model with the most unserved rate is
 * given a replica in the group where it gains the most goodput (least loaded
 * on ties), while memory and the waiting rule allow; afterwards replicas are
 * added while memory and the waiting rule allow (lowest burst tolerance
 * first, once per model per round, ALPA_REPLICATE_ROUNDS rounds) and each
 * model's load is spread over its replicas to equalise the groups' loads
 * (statistical multiplexing). The batch limit (its code's max_bs, 1 by
 * default) is searched with the group size: 1, 2, 4, ..., each model then
 * runs, of its batches within the limit, the one serving the most (ts_cfg). For cost
 * (AlpaServe plans a given cluster): per type, the fewest GPUs on which the
 * placement serves every rate, over every (k, max_bs); the best type
 * (serving most, then cheapest) is kept, and what it leaves unserved goes to
 * the next type. */
#define ALPA_MAX_GROUP 8
#define ALPA_REPLICATE_ROUNDS 2
#define ALPA_BALANCE_ROUNDS 16

typedef struct alpa_ctx {
    const plan_problem *p;
    uint16_t t;
    uint32_t k;
    int maxb;
    const double *want; /* per model: rate still to place (0: not here) */
    int *cfg;           /* per model: its configuration here, -1 none */
    double *left;       /* per model: scratch */
} alpa_ctx;

/* a max-heap of ids by key[id], ties by the smaller id */
typedef struct idheap {
    uint32_t *id;
    uint32_t n;
    const double *key;
} idheap;

static bool ih_above(const idheap *h, uint32_t a, uint32_t b)
{
    return h->key[a] > h->key[b] || (h->key[a] == h->key[b] && a < b);
}

static void ih_push(idheap *h, uint32_t v)
{
    uint32_t i = h->n++;
    while (i > 0 && ih_above(h, v, h->id[(i - 1) / 2])) {
        h->id[i] = h->id[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->id[i] = v;
}

static uint32_t ih_pop(idheap *h)
{
    uint32_t top = h->id[0], v = h->id[--h->n], i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && ih_above(h, h->id[c + 1], h->id[c]))
            c++;
        if (!ih_above(h, h->id[c], v))
            break;
        h->id[i] = h->id[c];
        i = c;
    }
    if (h->n)
        h->id[i] = v;
    return top;
}

/* the greedy placement on n GPUs (n / k groups): *gs (tg_free) and the
 * weighted goodput *w and goodput *sv it serves; 0 or USHER_ERR_NOMEM.
 * Each step: the model with the most rate unserved, into the group where it
 * gains the most goodput - the one with the most idle time where it fits,
 * as a group's gain grows with its idle time (heaps of both: the first
 * fitting group from the top is the answer) */
static int alpa_place(const alpa_ctx *a, int64_t n, tgroups *gs, double *w, double *sv)
{
    const plan_problem *p = a->p;
    *gs = (tgroups){0};
    for (int64_t i = 0; i + a->k <= n; i += a->k)
        if (tg_new(gs, a->t, a->k) < 0)
            return USHER_ERR_NOMEM;
    uint32_t ng = gs->n;
    double *idle = us_calloc(ng ? ng : 1, sizeof *idle);
    idheap gh = {.id = us_calloc(ng ? ng : 1, sizeof *gh.id), .key = idle};
    idheap mh = {.id = us_calloc(p->n ? p->n : 1, sizeof *mh.id), .key = a->left};
    uint32_t *held = us_calloc(ng ? ng : 1, sizeof *held);
    int rc = idle && gh.id && mh.id && held ? USHER_OK : USHER_ERR_NOMEM;
    for (uint32_t i = 0; rc == USHER_OK && i < ng; i++) {
        idle[i] = gs->g[i].k;
        ih_push(&gh, i);
    }
    for (uint32_t m = 0; rc == USHER_OK && m < p->n; m++) {
        a->left[m] = a->cfg[m] >= 0 ? a->want[m] : 0;
        if (a->left[m] > 1e-9)
            ih_push(&mh, m);
    }
    while (rc == USHER_OK && mh.n) {
        uint32_t m = ih_pop(&mh), nh = 0;
        const plan_cfg *c = &p->m[m].cfg[a->cfg[m]];
        int pick = -1;
        while (gh.n && idle[gh.id[0]] * c->thr > 1e-9) {
            uint32_t g = ih_pop(&gh);
            held[nh++] = g;
            if (tg_fits(&gs->g[g], p, m, c)) {
                pick = (int)g;
                break;
            }
        }
        if (pick >= 0) {
            double gain = fmin(a->left[m], idle[pick] * c->thr);
            rc = tg_add(&gs->g[pick], p, m, (uint32_t)a->cfg[m], gain);
            idle[pick] = fmax(0, gs->g[pick].k - gs->g[pick].duty);
            a->left[m] -= gain;
            if (a->left[m] > 1e-9)
                ih_push(&mh, m);
        }
        for (uint32_t i = 0; i < nh; i++)
            ih_push(&gh, held[i]);
    }
    us_free(idle);
    us_free(gh.id);
    us_free(mh.id);
    us_free(held);
    if (rc < 0)
        return rc;
    *w = *sv = 0;
    for (uint32_t m = 0; m < p->n; m++)
        if (a->cfg[m] >= 0) {
            double got = a->want[m] - fmax(0, a->left[m]);
            *w += got * plan_weight(&p->m[m]);
            *sv += got;
        }
    return USHER_OK;
}

static double groups_cost(const tgroups *gs, const plan_problem *p)
{
    double c = 0;
    for (uint32_t i = 0; i < gs->n; i++)
        if (gs->g[i].n)
            c += gs->g[i].k * price_of(p, gs->g[i].type);
    return c;
}

/* the best placement found so far in one phase */
typedef struct alpa_best {
    tgroups gs;
    double w, sv, cost;
    bool have;
} alpa_best;

/* keep (gs, w, cost) in *b when it serves more weight, or as much for less */
static void alpa_keep(alpa_best *b, tgroups *gs, double w, double sv, double cost)
{
    bool better = !b->have || w > b->w * (1 + 1e-9) + 1e-9 ||
                  (w >= b->w * (1 - 1e-9) - 1e-9 && cost < b->cost * (1 - 1e-12));
    if (!better) {
        tg_free(gs);
        return;
    }
    tg_free(&b->gs);
    b->gs = *gs;
    *gs = (tgroups){0};
    b->w = w;
    b->sv = sv;
    b->cost = cost;
    b->have = true;
}

/* group size k, batch limit maxb on type t: the fewest GPUs (multiple of k, up
 * to what t has left) serving every rate placed here, else all of them; into *b */
static int alpa_search(alpa_ctx *a, int64_t left_t, alpa_best *b)
{
    const plan_problem *p = a->p;
    double duty = 0, all = 0, allw = 0;
    double ubd = 0; /* doubles: a huge rate must not overflow the counts */
    for (uint32_t m = 0; m < p->n; m++) {
        a->cfg[m] = a->want[m] > 1e-9 ? ts_cfg(p, m, a->t, a->maxb) : -1;
        if (a->cfg[m] < 0)
            continue;
        double d = a->want[m] / p->m[m].cfg[a->cfg[m]].thr;
        duty += d;
        all += a->want[m];
        allw += a->want[m] * plan_weight(&p->m[m]);
        ubd += a->k * ceil(d / a->k - 1e-9); /* each model alone */
    }
    if (all <= 0)
        return USHER_OK;
    int64_t cap = left_t - left_t % a->k;
    int64_t ub = ubd < (double)cap ? (int64_t)ubd : cap;
    double lod = a->k * ceil(duty / a->k - 1e-9);
    int64_t lo = lod < (double)cap ? (int64_t)lod : cap;
    if (lo < (int64_t)a->k)
        lo = a->k;
    if (ub < (int64_t)a->k)
        return USHER_OK;
    if (lo > ub)
        lo = ub;
    tgroups gs;
    double w, sv;
    int rc;
    /* the largest first: if it does not serve everything, it is the answer */
    if ((rc = alpa_place(a, ub, &gs, &w, &sv)) < 0) {
        tg_free(&gs);
        return rc;
    }
    if (w < allw * (1 - 1e-9)) {
        alpa_keep(b, &gs, w, sv, groups_cost(&gs, p));
        return USHER_OK;
    }
    tgroups best = gs;
    double bw = w, bsv = sv;
    /* bisection on the group count for the fewest GPUs serving everything */
    int64_t hi = ub / a->k, low = lo / a->k; /* hi serves all */
    while (low < hi) {
        int64_t mid = low + (hi - low) / 2;
        if ((rc = alpa_place(a, mid * a->k, &gs, &w, &sv)) < 0) {
            tg_free(&gs);
            tg_free(&best);
            return rc;
        }
        if (w >= allw * (1 - 1e-9)) {
            tg_free(&best);
            best = gs;
            bw = w;
            bsv = sv;
            hi = mid;
        } else {
            tg_free(&gs);
            low = mid + 1;
        }
    }
    alpa_keep(b, &best, bw, bsv, groups_cost(&best, p));
    return USHER_OK;
}

/* the distinct batch sizes of the configurations on type t, ascending
 * (at most 16) */
static uint32_t batch_limits(const plan_problem *p, uint16_t t, int *out)
{
    uint32_t n = 0;
    for (uint32_t m = 0; m < p->n; m++)
        for (uint32_t i = 0; i < p->m[m].n_cfg; i++) {
            const plan_cfg *c = &p->m[m].cfg[i];
            if (c->type != t)
                continue;
            uint32_t j = 0;
            while (j < n && out[j] != c->batch)
                j++;
            if (j < n || n == 16)
                continue;
            out[n++] = c->batch;
        }
    for (uint32_t a = 1; a < n; a++)
        for (uint32_t b = a; b > 0 && out[b] < out[b - 1]; b--) {
            int x = out[b];
            out[b] = out[b - 1];
            out[b - 1] = x;
        }
    return n;
}

/* each member's configuration in its group's batch limit: the one it was placed with */
static int alpa_replicate(tgroups *gs, const plan_problem *p)
{
    /* per model: its configuration per type (from its first group), burst tolerance */
    uint32_t n = p->n ? p->n : 1;
    int *cfgt = us_malloc((size_t)n * p->nt * sizeof *cfgt);
    double *bt = us_calloc(n, sizeof *bt);
    uint32_t *order = us_calloc(n, sizeof *order);
    int rc = cfgt && bt && order ? USHER_OK : USHER_ERR_NOMEM;
    for (uint32_t i = 0; rc == USHER_OK && i < (size_t)n * p->nt; i++)
        cfgt[i] = -1;
    for (int round = 0; rc == USHER_OK && round < ALPA_REPLICATE_ROUNDS; round++) {
        for (uint32_t m = 0; m < p->n; m++)
            bt[m] = 0;
        for (uint32_t i = 0; i < gs->n; i++)
            for (uint32_t r = 0; r < gs->g[i].n; r++) {
                const tmember *mb = &gs->g[i].mb[r];
                cfgt[(size_t)mb->model * p->nt + gs->g[i].type] = (int)mb->cfg;
                bt[mb->model] += gs->g[i].k * p->m[mb->model].cfg[mb->cfg].thr;
            }
        for (uint32_t m = 0; m < p->n; m++) {
            order[m] = m;
            /* lowest burst tolerance (capacity / rate) first: sort by its negation */
            bt[m] = p->m[m].rate > 0 ? -bt[m] / p->m[m].rate : -INFINITY;
        }
        if ((rc = plan_sort_desc(order, p->n, bt)) < 0)
            break;
        for (uint32_t oi = 0; oi < p->n; oi++) {
            uint32_t m = order[oi];
            int pick = -1;
            for (uint32_t i = 0; i < gs->n; i++) {
                const tgroup *g = &gs->g[i];
                int c = cfgt[(size_t)m * p->nt + g->type];
                if (g->n == 0 || c < 0 || !tg_fits(g, p, m, &p->m[m].cfg[c]))
                    continue;
                if (pick < 0 || g->duty / g->k < gs->g[pick].duty / gs->g[pick].k)
                    pick = (int)i;
            }
            if (pick >= 0 &&
                (rc = tg_add(&gs->g[pick], p, m,
                             (uint32_t)cfgt[(size_t)m * p->nt + gs->g[pick].type], 0)) < 0)
                break;
        }
    }
    us_free(cfgt);
    us_free(bt);
    us_free(order);
    return rc;
}

/* each model's load over its replicas so that the groups' utilisations even
 * out: repeatedly from its busiest group to its idlest; 0 or USHER_ERR_NOMEM */
static int alpa_balance(tgroups *gs, const plan_problem *p)
{
    /* per model, its replicas as (group, member): off[m] .. off[m + 1] */
    uint32_t *off = us_calloc((size_t)p->n + 1, sizeof *off), total = 0;
    if (!off)
        return USHER_ERR_NOMEM;
    for (uint32_t i = 0; i < gs->n; i++)
        for (uint32_t r = 0; r < gs->g[i].n; r++)
            off[gs->g[i].mb[r].model + 1]++;
    for (uint32_t m = 0; m < p->n; m++)
        off[m + 1] += off[m];
    total = off[p->n];
    uint32_t *at = us_calloc(total ? total : 1, 2 * sizeof *at);
    uint32_t *fill = us_calloc(p->n ? p->n : 1, sizeof *fill);
    if (!at || !fill) {
        us_free(off);
        us_free(at);
        us_free(fill);
        return USHER_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < gs->n; i++)
        for (uint32_t r = 0; r < gs->g[i].n; r++) {
            uint32_t m = gs->g[i].mb[r].model, k = off[m] + fill[m]++;
            at[2 * k] = i;
            at[2 * k + 1] = r;
        }
    for (int round = 0; round < ALPA_BALANCE_ROUNDS; round++)
        for (uint32_t m = 0; m < p->n; m++) {
            if (off[m + 1] - off[m] < 2)
                continue;
            int hi = -1, lo = -1;
            uint32_t rhi = 0, rlo = 0;
            for (uint32_t k = off[m]; k < off[m + 1]; k++) {
                uint32_t i = at[2 * k], r = at[2 * k + 1];
                double u = gs->g[i].duty / gs->g[i].k;
                if (gs->g[i].mb[r].load > 1e-12 && (hi < 0 || u > gs->g[hi].duty / gs->g[hi].k)) {
                    hi = (int)i;
                    rhi = r;
                }
                if (lo < 0 || u < gs->g[lo].duty / gs->g[lo].k) {
                    lo = (int)i;
                    rlo = r;
                }
            }
            if (hi < 0 || lo < 0 || hi == lo)
                continue;
            tgroup *ga = &gs->g[hi], *gb = &gs->g[lo];
            double ta = p->m[m].cfg[ga->mb[rhi].cfg].thr, tb = p->m[m].cfg[gb->mb[rlo].cfg].thr;
            double gap = ga->duty / ga->k - gb->duty / gb->k;
            if (gap <= 1e-9)
                continue;
            /* x moved: a's utilisation falls by x / (ta k_a), b's rises by x / (tb k_b) */
            double x = gap / (1 / (ta * ga->k) + 1 / (tb * gb->k));
            x = fmin(x, ga->mb[rhi].load);
            ga->mb[rhi].load -= x;
            ga->duty -= x / ta;
            gb->mb[rlo].load += x;
            gb->duty += x / tb;
        }
    us_free(off);
    us_free(at);
    us_free(fill);
    return USHER_OK;
}

/* the best (group size, batch limit) on type t for the rates a->want, up to
 * left_t GPUs, into *b; *k and *maxb say which */
static int alpa_on_type(alpa_ctx *a, uint16_t t, int64_t left_t, alpa_best *b, uint32_t *k,
                        int *maxb)
{
    int lims[16];
    uint32_t nl = batch_limits(a->p, t, lims);
    /* the largest groups first: on a tie they are kept (more multiplexing) */
    for (uint32_t kk = ALPA_MAX_GROUP; kk >= 1; kk /= 2)
        for (uint32_t li = 0; li < nl; li++) {
            a->t = t;
            a->k = kk;
            a->maxb = lims[li];
            bool had = b->have;
            double bw = b->w, bc = b->cost;
            int rc = alpa_search(a, left_t, b);
            if (rc < 0)
                return rc;
            if (b->have && (!had || b->w != bw || b->cost != bc)) {
                *k = kk;
                *maxb = lims[li];
            }
        }
    return USHER_OK;
}

/* move best's groups with members into all, counting their GPUs against left
 * and their loads against want */
static int alpa_commit(alpa_best *best, tgroups *all, int64_t *left, double *want, bool *used)
{
    for (uint32_t i = 0; i < best->gs.n; i++) {
        tgroup *g = &best->gs.g[i];
        if (g->n == 0)
            continue;
        left[g->type] -= g->k;
        used[g->type] = true;
        for (uint32_t r = 0; r < g->n; r++)
            want[g->mb[r].model] -= g->mb[r].load;
        int j = tg_new(all, g->type, g->k);
        if (j < 0) {
            tg_free(&best->gs);
            return USHER_ERR_NOMEM;
        }
        all->g[j] = *g;
        *g = (tgroup){0};
    }
    tg_free(&best->gs);
    return USHER_OK;
}

/* the type where m's Flex configuration serves a request/s cheapest, -1 none */
static int alpa_home(const plan_problem *p, uint32_t m, const int64_t *left)
{
    bool none[PLAN_MAX_TYPES] = {0};
    int c = flex_cfg(p, m, none, left);
    return c >= 0 ? p->m[m].cfg[c].type : -1;
}

/* the first placement: every model on its cheapest type, each type searched
 * apart (a mixed cluster of AlpaServe clusters); into *b, *k and *maxb from
 * the type serving most */
static int alpa_split(alpa_ctx *a, const double *want, double *sub, const int64_t *left,
                      alpa_best *b, uint32_t *k, int *maxb)
{
    const plan_problem *p = a->p;
    int rc = USHER_OK;
    double top = -1;
    for (uint16_t t = 0; t < p->nt && rc == USHER_OK; t++) {
        bool any = false;
        for (uint32_t m = 0; m < p->n; m++) {
            sub[m] = alpa_home(p, m, left) == (int)t ? want[m] : 0;
            any |= sub[m] > 0;
        }
        if (!any)
            continue;
        alpa_best bt = {0};
        uint32_t kt = 0;
        int bt_b = 0;
        a->want = sub;
        rc = alpa_on_type(a, t, left[t], &bt, &kt, &bt_b);
        if (rc == USHER_OK && bt.have) {
            if (bt.sv > top) {
                top = bt.sv;
                *k = kt;
                *maxb = bt_b;
            }
            for (uint32_t i = 0; i < bt.gs.n && rc == USHER_OK; i++) {
                if (bt.gs.g[i].n == 0)
                    continue;
                int j = tg_new(&b->gs, t, bt.gs.g[i].k);
                if (j < 0) {
                    rc = USHER_ERR_NOMEM;
                    break;
                }
                b->gs.g[j] = bt.gs.g[i];
                bt.gs.g[i] = (tgroup){0};
            }
            b->w += bt.w;
            b->sv += bt.sv;
            b->cost += bt.cost;
            b->have = true;
        }
        tg_free(&bt.gs);
    }
    a->want = want;
    return rc;
}

int plan_alpaserve(const plan_problem *p, plan_solution *s, usher_error *err)
{
    s->sharing = PLAN_SHARE_TIME;
    uint32_t n = p->n ? p->n : 1;
    double *want = us_calloc(n, sizeof *want), *sub = us_calloc(n, sizeof *sub);
    alpa_ctx a = {.p = p, .want = want};
    a.cfg = us_calloc(n, sizeof *a.cfg);
    a.left = us_calloc(n, sizeof *a.left);
    tgroups all = {0};
    int rc = want && sub && a.cfg && a.left ? USHER_OK : USHER_ERR_NOMEM;
    int64_t left[PLAN_MAX_TYPES];
    types_left(p, s, left);
    bool used[PLAN_MAX_TYPES] = {0};
    uint32_t chosen_k = 0;
    int chosen_b = 0;
    for (uint32_t m = 0; rc == USHER_OK && m < p->n; m++)
        want[m] = p->m[m].rate;
    /* phase 0: each model on its cheapest type, or the whole workload on one
     * type (AlpaServe's homogeneous cluster), whichever serves more, then
     * cheaper; later phases: the best type for what is still unserved */
    for (uint32_t phase = 0; rc == USHER_OK && phase <= p->nt; phase++) {
        alpa_best best = {0};
        uint32_t bk = 0;
        int bb = 0;
        if (phase == 0 && p->nt > 1)
            rc = alpa_split(&a, want, sub, left, &best, &bk, &bb);
        for (uint16_t t = 0; t < p->nt && rc == USHER_OK; t++) {
            if (used[t] || left[t] <= 0)
                continue;
            alpa_best one = {0};
            uint32_t k1 = 0;
            int b1 = 0;
            a.want = want;
            rc = alpa_on_type(&a, t, left[t], &one, &k1, &b1);
            bool better = one.have && (!best.have || one.w > best.w * (1 + 1e-9) + 1e-9 ||
                                       (one.w >= best.w * (1 - 1e-9) - 1e-9 &&
                                        one.cost < best.cost * (1 - 1e-12)));
            if (better) {
                tg_free(&best.gs);
                best = one;
                bk = k1;
                bb = b1;
            } else {
                tg_free(&one.gs);
            }
        }
        if (rc < 0 || !best.have || best.sv <= 1e-9) {
            tg_free(&best.gs);
            break;
        }
        if (phase == 0) {
            chosen_k = bk;
            chosen_b = bb;
        }
        if ((rc = alpa_commit(&best, &all, left, want, used)) < 0)
            break;
        bool rest = false;
        for (uint32_t m = 0; m < p->n; m++)
            rest |= want[m] > 1e-9 * p->m[m].rate + 1e-9;
        if (!rest)
            break;
    }
    if (rc == USHER_OK)
        rc = alpa_replicate(&all, p);
    if (rc == USHER_OK)
        rc = alpa_balance(&all, p);
    if (rc == USHER_OK)
        rc = tg_emit(&all, p, s);
    tg_free(&all);
    us_free(want);
    us_free(sub);
    us_free(a.cfg);
    us_free(a.left);
    if (rc < 0)
        return us_err_set(err, rc, rc == USHER_ERR_NOMEM ? "out of memory"
                                                         : "alpaserve: groups past a type's limit");
    snprintf(s->note, sizeof s->note,
             "groups of %u GPU%s, max batch %d (searched); greedy replica placement by "
             "steady-state goodput; no model parallelism",
             chosen_k, chosen_k == 1 ? "" : "s", chosen_b);
    plan_account(s, p);
    return USHER_OK;
}

/* the whole-GPU configuration of model m on type t with the highest
 * throughput (*thr), -1 if none */
static int fastest_whole(const plan_problem *p, uint32_t m, uint16_t t, double *thr)
{
    int c = -1;
    *thr = 0;
    for (uint32_t i = 0; i < p->m[m].n_cfg; i++) {
        const plan_cfg *x = &p->m[m].cfg[i];
        if (x->type == t && x->share == 100 && x->thr > *thr) {
            *thr = x->thr;
            c = (int)i;
        }
    }
    return c;
}

/* the round a request may wait through on a Triton GPU: one batch of every model */
static double triton_round(const plan_problem *p, const int *cfg)
{
    double round_ms = 0;
    for (uint32_t m = 0; m < p->n; m++)
        round_ms += p->m[m].cfg[cfg[m]].lat_ms;
    return round_ms;
}

static bool triton_misses(const plan_problem *p, const int *cfg, uint32_t m, double round_ms)
{
    const plan_cfg *c = &p->m[m].cfg[cfg[m]];
    return PLAN_SLO_FACTOR * c->lat_ms + (round_ms - c->lat_ms) > p->m[m].slo_ms;
}

/* a Triton configuration on type t: the weighted rate of the models within
 * their SLOs (*w) and the cost of the GPUs its summed duty needs; false if
 * the models do not fit one GPU's memory together */
static bool triton_score(const plan_problem *p, uint16_t t, const int *cfg, double *w,
                         double *cost)
{
    double duty = 0, mem = 0, round_ms = triton_round(p, cfg);
    *w = 0;
    for (uint32_t m = 0; m < p->n; m++) {
        duty += p->m[m].rate / p->m[m].cfg[cfg[m]].thr;
        mem += p->m[m].cfg[cfg[m]].mreq;
        if (!triton_misses(p, cfg, m, round_ms))
            *w += p->m[m].rate * plan_weight(&p->m[m]);
    }
    *cost = ceil(duty - 1e-9) * (p->t[t].price > 0 ? p->t[t].price : 1);
    return mem <= 100;
}

/* Model Analyzer's search, as far as the planner can run it: every model
 * starts at its highest-throughput batch on type t; while some model misses
 * its SLO waiting through the round, the model with the longest batch there
 * that has a smaller, faster one drops to it (a hill climb on max_batch_size
 * under a p99 constraint). Every step is scored as Model Analyzer measures
 * each configuration, and the best (most weighted rate within the SLOs, then
 * cheapest) is kept in best[]: false if some model has no configuration on
 * t or none fits memory. *w and *cost: the best's score */
static bool triton_tune(const plan_problem *p, uint16_t t, int *cfg, int *best, double *w,
                        double *cost)
{
    double thr;
    for (uint32_t m = 0; m < p->n; m++)
        if ((cfg[m] = fastest_whole(p, m, t, &thr)) < 0)
            return false;
    bool have = false;
    for (;;) {
        double sw, sc;
        if (triton_score(p, t, cfg, &sw, &sc) &&
            (!have || sw > *w * (1 + 1e-9) || (sw >= *w * (1 - 1e-9) && sc < *cost))) {
            memcpy(best, cfg, p->n * sizeof *best);
            *w = sw;
            *cost = sc;
            have = true;
        }
        double round_ms = triton_round(p, cfg);
        uint32_t late = 0;
        for (uint32_t m = 0; m < p->n; m++)
            late += triton_misses(p, cfg, m, round_ms);
        if (late == 0)
            return have;
        int pick = -1, pick_cfg = -1;
        for (uint32_t m = 0; m < p->n; m++) {
            const plan_cfg *c = &p->m[m].cfg[cfg[m]];
            if (pick >= 0 && c->lat_ms <= p->m[pick].cfg[cfg[pick]].lat_ms)
                continue;
            /* the next smaller batch that is faster (any share: see ts_cfg) */
            int smaller = -1;
            for (uint32_t i = 0; i < p->m[m].n_cfg; i++) {
                const plan_cfg *x = &p->m[m].cfg[i];
                const plan_cfg *y = smaller >= 0 ? &p->m[m].cfg[smaller] : NULL;
                if (x->type != t || x->batch >= c->batch || x->lat_ms >= c->lat_ms ||
                    !(x->thr > 0))
                    continue;
                if (!y || x->batch > y->batch || (x->batch == y->batch && x->lat_ms < y->lat_ms))
                    smaller = (int)i;
            }
            if (smaller >= 0) {
                pick = (int)m;
                pick_cfg = smaller;
            }
        }
        if (pick < 0)
            return have;
        cfg[pick] = pick_cfg;
    }
}

/* Triton's one GPU type and its tuned batches (cfg): the most weighted rate
 * within the SLOs, then cheapest; -1 if none */
static int triton_type(const plan_problem *p, int *cfg, int *tmp, int *tmp2)
{
    int best_t = -1;
    double best_cost = INFINITY, best_w = -1;
    for (uint16_t t = 0; t < p->nt; t++) {
        double w, cost;
        if (!triton_tune(p, t, tmp, tmp2, &w, &cost))
            continue;
        if (w > best_w * (1 + 1e-9) || (w >= best_w * (1 - 1e-9) && cost < best_cost)) {
            best_cost = cost;
            best_w = w;
            best_t = t;
            memcpy(cfg, tmp2, p->n * sizeof *cfg);
        }
    }
    return best_t;
}

/* `gpus` GPUs of type t, each with every model at its share of the rate */
static int triton_open(const plan_problem *p, plan_solution *s, const int *cfg, uint16_t t,
                       int64_t gpus)
{
    for (int64_t i = 0; i < gpus; i++) {
        if (plan_type_left(s, p, t) <= 0)
            break;
        int gi = plan_open(s, p, t, -1);
        if (gi < 0)
            return USHER_ERR_NOMEM;
        for (uint32_t m = 0; m < p->n; m++) {
            const plan_cfg *c = &p->m[m].cfg[cfg[m]];
            double load = p->m[m].rate / (double)gpus;
            if (load > c->thr)
                load = c->thr;
            if (plan_push(s, (uint32_t)gi, (plan_replica){.model = m, .cfg = (uint32_t)cfg[m], .load = load}) < 0)
                return USHER_ERR_NOMEM;
            plan_gpu *g = &s->g[gi];
            g->used_m += c->mreq;
            g->used_c += 100 * load / c->thr;
        }
    }
    /* the summed duty per GPU may exceed 1 when GPUs ran out: scale loads down */
    for (uint32_t i = 0; i < s->n; i++) {
        plan_gpu *g = &s->g[i];
        if (g->used_c > 100) {
            double f = 100 / g->used_c;
            for (uint32_t r = 0; r < g->n; r++)
                g->r[r].load *= f;
            g->used_c = 100;
        }
    }
    return USHER_OK;
}

/* time-slicing: a request waits for its own batch, the one running and a
 * batch of every other model in the round; a model whose SLO that breaks is
 * served late on every GPU - none of its load counts. Returns how many. */
static uint32_t triton_late(const plan_problem *p, plan_solution *s, const int *cfg)
{
    uint32_t late = 0;
    double round_ms = 0;
    for (uint32_t m = 0; m < p->n; m++)
        round_ms += p->m[m].cfg[cfg[m]].lat_ms;
    for (uint32_t m = 0; m < p->n && s->n; m++) {
        const plan_cfg *c = &p->m[m].cfg[cfg[m]];
        if (PLAN_SLO_FACTOR * c->lat_ms + (round_ms - c->lat_ms) <= p->m[m].slo_ms)
            continue;
        late++;
        for (uint32_t i = 0; i < s->n; i++)
            for (uint32_t r = 0; r < s->g[i].n; r++)
                if (s->g[i].r[r].model == m)
                    s->g[i].r[r].load = 0;
    }
    return late;
}

int plan_triton(const plan_problem *p, plan_solution *s, usher_error *err)
{
    s->sharing = PLAN_SHARE_TIME;
    int *cfg = us_calloc(p->n ? p->n : 1, sizeof *cfg);
    int *tmp = us_calloc(p->n ? p->n : 1, sizeof *tmp);
    int *tmp2 = us_calloc(p->n ? p->n : 1, sizeof *tmp2);
    if (!cfg || !tmp || !tmp2) {
        us_free(cfg);
        us_free(tmp);
        us_free(tmp2);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    /* every model on every GPU: memory of all models must fit one GPU */
    int best_t = triton_type(p, cfg, tmp, tmp2);
    us_free(tmp);
    us_free(tmp2);
    if (best_t < 0) {
        us_free(cfg);
        snprintf(s->note, sizeof s->note,
                 "no GPU type holds every model in memory at once: nothing placed");
        plan_account(s, p);
        return USHER_OK;
    }
    double duty = 0;
    for (uint32_t m = 0; m < p->n; m++)
        duty += p->m[m].rate / p->m[m].cfg[cfg[m]].thr;
    int64_t avail = plan_type_left(s, p, (uint16_t)best_t);
    double need = ceil(duty - 1e-9); /* a double: a huge rate must not overflow */
    int64_t gpus = need < (double)avail ? (int64_t)need : avail;
    if (gpus < 1)
        gpus = avail > 0 ? 1 : 0;
    int rc = triton_open(p, s, cfg, (uint16_t)best_t, gpus);
    if (rc < 0) {
        us_free(cfg);
        return us_err_set(err, rc, "out of memory");
    }
    uint32_t late = triton_late(p, s, cfg);
    if (late)
        snprintf(s->note, sizeof s->note,
                 "every model on every GPU, time-sliced, batches tuned; %u model%s miss%s the "
                 "SLO waiting for the others' batches",
                 late, late == 1 ? "" : "s", late == 1 ? "es" : "");
    else
        snprintf(s->note, sizeof s->note,
                 "every model on every GPU, time-sliced, batches tuned to the SLOs");
    us_free(cfg);
    plan_account(s, p);
    return USHER_OK;
}

/* ---- spatial baselines --------------------------------------------------------- */

/* where configuration i of model m would go under the policy's own rule: a
 * GPU holding one partition with room (gpulet: and its linear interference
 * model keeps both SLOs and the partner's load within its slowed
 * throughput; *slow the newcomer's slowdown by that model), else -1 for a
 * new GPU, -2 if no GPU of its type is left */
static int spatial_where(const plan_problem *p, plan_solution *s, uint32_t m, uint32_t i,
                         bool gpulet, double *slow)
{
    *slow = 1;
    const plan_model *pm = &p->m[m];
    const plan_cfg *c = &pm->cfg[i];
    for (uint32_t k = 0; k < s->n; k++) {
        plan_gpu *g = &s->g[k];
        if (g->n != 1 || !plan_fits_with(s, p, k, m, i, 0, -1, NULL))
            continue;
        if (gpulet) {
            const plan_cfg *o = &p->m[g->r[0].model].cfg[g->r[0].cfg];
            const gpu_type *gt = p->t[c->type].g;
            double bwp = gt->mem_bw_gbs > 0 ? gt->mem_bw_gbs : 1;
            double f_me = 1 + 0.5 * o->bw_gbs / bwp, f_o = 1 + 0.5 * c->bw_gbs / bwp;
            /* both SLOs, and the partner's load within its throughput slowed so */
            if (PLAN_SLO_FACTOR * c->lat_ms * f_me > pm->slo_ms ||
                PLAN_SLO_FACTOR * o->lat_ms * f_o > p->m[g->r[0].model].slo_ms ||
                g->r[0].load > o->thr / f_o * (1 + 1e-12))
                continue;
            *slow = f_me;
        }
        return (int)k;
    }
    return plan_type_left(s, p, c->type) > 0 ? -1 : -2;
}

/* static: a 50% half with the most throughput per $; gpulet: the partition
 * with the most throughput per share and $ (its most efficient gpu-let), or,
 * for a rest smaller than that one serves, the smallest partition that serves
 * the rest (its elastic sizing of the last gpu-let). *gpu: where (-1: new) */
static int spatial_pick(const plan_problem *p, plan_solution *s, uint32_t m, double rate,
                        bool gpulet, int *gpu, double *slow)
{
    double sl;
    const plan_model *pm = &p->m[m];
    int cfg = -1;
    double bv = 0;
    for (uint32_t i = 0; i < pm->n_cfg; i++) {
        const plan_cfg *c = &pm->cfg[i];
        if (!gpulet && c->share != 50)
            continue;
        double v = c->thr / c->share / (p->t[c->type].price > 0 ? p->t[c->type].price : 1);
        if (v <= bv)
            continue;
        int where = spatial_where(p, s, m, i, gpulet, &sl);
        if (where < -1)
            continue;
        bv = v;
        cfg = (int)i;
        *gpu = where;
        *slow = sl;
    }
    if (!gpulet || cfg < 0 || pm->cfg[cfg].thr / *slow <= rate)
        return cfg;
    int rest = -1;
    for (uint32_t i = 0; i < pm->n_cfg; i++) {
        const plan_cfg *c = &pm->cfg[i], *r = rest >= 0 ? &pm->cfg[rest] : NULL;
        if (c->thr < rate || c->type != pm->cfg[cfg].type)
            continue;
        if (r && (c->share > r->share || (c->share == r->share && c->thr <= r->thr)))
            continue;
        int where = spatial_where(p, s, m, i, gpulet, &sl);
        if (where >= 0 && c->thr / sl < rate && plan_type_left(s, p, c->type) > 0) {
            where = -1; /* too slow beside that partner: a GPU of its own */
            sl = 1;
        }
        if (where < -1 || c->thr / sl < rate)
            continue;
        rest = (int)i;
        *gpu = where;
        *slow = sl;
    }
    if (rest < 0) /* cfg itself serves the rest */
        *gpu = spatial_where(p, s, m, (uint32_t)cfg, gpulet, slow);
    return rest >= 0 ? rest : cfg;
}

static int spatial(const plan_problem *p, plan_solution *s, usher_error *err, bool gpulet)
{
    /* their own rules place (shares and memory; gpulet its linear interference
     * model); ours judges (plan_account) */
    s->sharing = PLAN_SHARE_OWN;
    int rc = USHER_OK;
    for (uint32_t m = 0; m < p->n && rc == USHER_OK; m++) {
        const plan_model *pm = &p->m[m];
        double rate = pm->rate;
        while (rate > 1e-9) {
            int gpu = -1;
            double slow = 1;
            int cfg = spatial_pick(p, s, m, rate, gpulet, &gpu, &slow);
            if (cfg < 0)
                break;
            if (gpu < 0) {
                if (plan_type_left(s, p, pm->cfg[cfg].type) <= 0)
                    break;
                gpu = plan_open(s, p, pm->cfg[cfg].type, -1);
                slow = 1;
                if (gpu < 0) /* a type with GPUs left: out of memory */
                    return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            }
            /* gpulet loads a partition to its throughput as its own model slows it */
            double cap = pm->cfg[cfg].thr / slow;
            double load = rate < cap ? rate : cap;
            if ((rc = plan_add(s, p, (uint32_t)gpu, m, (uint32_t)cfg, load)) < 0)
                return us_err_set(err, rc, "out of memory");
            rate -= load;
        }
    }
    plan_account(s, p);
    return USHER_OK;
}

int plan_gpulet(const plan_problem *p, plan_solution *s, usher_error *err)
{
    snprintf(s->note, sizeof s->note,
             "<= 2 MPS partitions per GPU, linear bandwidth interference; greedy pairing");
    return spatial(p, s, err, true);
}

int plan_static_mps(const plan_problem *p, plan_solution *s, usher_error *err)
{
    snprintf(s->note, sizeof s->note, "two equal 50%% MPS partitions per GPU");
    return spatial(p, s, err, false);
}
