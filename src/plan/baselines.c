/*
 * baselines.c - the peer systems' placement policies, behind the same
 * interface as USHER's (layer 6). Each reproduces its published mechanism
 * on usher's estimator profiles; what was simplified is said here and in
 * docs/policies.md.
 *
 *  shepherd   temporal sharing (NSDI'23): a GPU runs one model's batch at a
 *             time at full share; several models may time-share a GPU (a
 *             "herd") when their duty cycles sum to <= 1, their memory fits,
 *             and each model's SLO holds while waiting behind one batch of
 *             every other model. Simplified: herds are formed by first-fit
 *             decreasing; Flex's preemption is not modelled.
 *  gpulet     spatial sharing (ATC'22): at most two MPS partitions per GPU,
 *             one replica each, sizes from the share grid; a linear
 *             interference model inflates a partition's latency by
 *             0.5 x the co-runner's DRAM bandwidth share. Simplified: greedy
 *             pairing instead of gpulet's search over partition pairs.
 *  alpaserve  statistical multiplexing (OSDI'23): every GPU holds several
 *             models in memory and runs one batch at a time; replicas are
 *             spread to balance load (worst fit on duty cycle) rather than
 *             packed. Simplified: no simulator-guided search, and no model
 *             parallelism (a model larger than one GPU is not placed; none
 *             of the zoo is).
 *  triton     Triton's default: every model loaded on every GPU, GPUs
 *             time-sliced, load spread evenly; as many GPUs as the summed
 *             duty cycle needs (all models must fit one GPU's memory). A
 *             request may wait for a batch of every other model: a model
 *             whose SLO that breaks counts as unserved.
 *  static-mps static equal MPS fractions: each GPU split in two halves of 50%,
 *             one replica per half (the common "two models per GPU" setup).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "plan.h"

/* the configuration of model m with the highest throughput per $ among those with
 * the given share (0: any), on any type that still has GPUs (or open ones) */
static int best_cfg_with_share(const plan_problem *p, const plan_solution *s, uint32_t m,
                               double share, bool need_left)
{
    const plan_model *pm = &p->m[m];
    int best = -1;
    double bv = 0;
    for (uint32_t i = 0; i < pm->n_cfg; i++) {
        const plan_cfg *c = &pm->cfg[i];
        if (share > 0 && fabs(c->share - share) > 1e-9)
            continue;
        if (need_left && plan_type_left(s, p, c->type) <= 0)
            continue;
        double price = p->t[c->type].price > 0 ? p->t[c->type].price : 1;
        double v = c->thr / price;
        if (v > bv) {
            bv = v;
            best = (int)i;
        }
    }
    return best;
}

/* ---- temporal sharing: shepherd, alpaserve, triton ---------------------------- */
typedef struct tgpu {
    double duty;    /* sum of load / throughput */
    double mem;     /* sum of Mreq of distinct models */
    double lat_sum; /* sum of batch latencies of distinct models */
    double min_slack; /* smallest SLO slack (slo - 2 x latency) of its models */
} tgpu;

/* one temporal run: per model its configuration, per GPU its herd (tgpu) */
typedef struct temporal_run {
    const plan_problem *p;
    plan_solution *s;
    bool spread;    /* worst fit on duty (alpaserve); else first fit by fullest (shepherd) */
    int *cfg;       /* per model: whole-GPU configuration, -1 none */
    uint32_t *order; /* models, largest duty first */
    tgpu *tg;       /* per GPU */
    uint32_t cap;
} temporal_run;

/* the models by duty (rate / throughput), largest first (insertion sort:
 * equal duties keep their order) */
static void by_duty(const plan_problem *p, const int *cfg, uint32_t *order)
{
    for (uint32_t m = 0; m < p->n; m++)
        order[m] = m;
    for (uint32_t a = 1; a < p->n; a++)
        for (uint32_t b = a; b > 0; b--) {
            uint32_t x = order[b], y = order[b - 1];
            double dx = cfg[x] >= 0 ? p->m[x].rate / p->m[x].cfg[cfg[x]].thr : 0;
            double dy = cfg[y] >= 0 ? p->m[y].rate / p->m[y].cfg[cfg[y]].thr : 0;
            if (dx <= dy)
                break;
            order[b] = y;
            order[b - 1] = x;
        }
}

/* a GPU that can take some of model m's load with configuration c; -1 if none */
static int herd_pick(const temporal_run *t, uint32_t m, const plan_cfg *c, double slack)
{
    const plan_solution *s = t->s;
    int pick = -1;
    double pick_duty = t->spread ? INFINITY : -1;
    for (uint32_t i = 0; i < s->n; i++) {
        const plan_gpu *g = &s->g[i];
        const tgpu *h = &t->tg[i];
        if (g->type != c->type || h->duty >= 1 - 1e-9)
            continue;
        bool has = false;
        for (uint32_t r = 0; r < g->n; r++)
            has |= g->r[r].model == m;
        /* one replica of a model per GPU; memory; waiting behind one batch of
         * each other model must fit every SLO */
        if (has || h->mem + c->mreq > PLAN_FIT_MAX || h->lat_sum > slack ||
            c->lat_ms > h->min_slack - h->lat_sum)
            continue;
        if (t->spread ? h->duty < pick_duty : h->duty > pick_duty) {
            pick_duty = h->duty;
            pick = (int)i;
        }
    }
    return pick;
}

/* the best whole-GPU configuration of m on a type not tried; -1 if none */
static int untried_cfg(const plan_problem *p, uint32_t m, const bool *tried)
{
    int alt = -1;
    double bv = 0;
    for (uint32_t i = 0; i < p->m[m].n_cfg; i++) {
        const plan_cfg *x = &p->m[m].cfg[i];
        double v = x->thr / (p->t[x->type].price > 0 ? p->t[x->type].price : 1);
        if (x->share == 100 && !tried[x->type] && v > bv) {
            bv = v;
            alt = (int)i;
        }
    }
    return alt;
}

/* a new GPU of type `type` with an empty herd; -1 out of GPUs, or
 * USHER_ERR_NOMEM in *rc */
static int herd_open(temporal_run *t, uint16_t type, int *rc)
{
    int pick = plan_open(t->s, t->p, type, -1);
    if (pick < 0)
        return -1;
    if (t->s->n > t->cap) {
        uint32_t nc = t->cap ? t->cap * 2 : 64;
        while (nc < t->s->n)
            nc *= 2;
        tgpu *nt = us_realloc(t->tg, nc * sizeof *nt);
        if (!nt) {
            *rc = USHER_ERR_NOMEM;
            return -1;
        }
        t->tg = nt;
        t->cap = nc;
    }
    t->tg[pick] = (tgpu){.min_slack = INFINITY};
    return pick;
}

/* as much of *rate of model m as GPU pick's herd can run, taken off *rate;
 * 0 or USHER_ERR_NOMEM */
static int herd_add(temporal_run *t, int pick, uint32_t m, const plan_cfg *c, double slack,
                    double *rate)
{
    tgpu *h = &t->tg[pick];
    double room = (1 - h->duty) * c->thr;
    double load = *rate < room ? *rate : room;
    /* MPS-free time sharing: the replica holds the whole GPU while it runs;
     * record it with no compute reservation so packing counters stay sane */
    if (plan_push(t->s, (uint32_t)pick, (plan_replica){.model = m, .cfg = (uint32_t)t->cfg[m], .load = load}) < 0)
        return USHER_ERR_NOMEM;
    plan_gpu *g = &t->s->g[pick];
    g->used_m += c->mreq;
    h->duty += load / c->thr;
    g->used_c = 100 * h->duty;
    h->mem += c->mreq;
    h->lat_sum += c->lat_ms;
    if (slack < h->min_slack)
        h->min_slack = slack;
    *rate -= load;
    return USHER_OK;
}

/* model m's rate onto herds: an open GPU, else a new one, else another type */
static int temporal_model(temporal_run *t, uint32_t m)
{
    const plan_problem *p = t->p;
    const plan_cfg *c = &p->m[m].cfg[t->cfg[m]];
    double rate = p->m[m].rate;
    double slack = p->m[m].slo_ms - PLAN_SLO_FACTOR * c->lat_ms;
    bool tried[PLAN_MAX_TYPES] = {0};
    int rc = USHER_OK;
    while (rate > 1e-9 && rc == USHER_OK) {
        int pick = herd_pick(t, m, c, slack);
        if (pick < 0)
            pick = herd_open(t, c->type, &rc);
        if (rc < 0)
            break;
        if (pick >= 0) {
            rc = herd_add(t, pick, m, c, slack, &rate);
            continue;
        }
        /* out of GPUs of this type: the best whole-GPU configuration on a type
         * that has some left, else the rest is unserved */
        tried[c->type] = true;
        int alt = untried_cfg(p, m, tried);
        if (alt < 0)
            break;
        t->cfg[m] = alt;
        c = &p->m[m].cfg[alt];
        slack = p->m[m].slo_ms - PLAN_SLO_FACTOR * c->lat_ms;
    }
    return rc;
}

static int temporal(const plan_problem *p, plan_solution *s, usher_error *err, bool spread)
{
    s->sharing = PLAN_SHARE_TIME;
    temporal_run t = {.p = p, .s = s, .spread = spread};
    t.cfg = us_calloc(p->n ? p->n : 1, sizeof *t.cfg);
    t.order = us_calloc(p->n ? p->n : 1, sizeof *t.order);
    int rc = t.cfg && t.order ? USHER_OK : USHER_ERR_NOMEM;
    for (uint32_t m = 0; rc == USHER_OK && m < p->n; m++)
        t.cfg[m] = best_cfg_with_share(p, s, m, 100, false);
    if (rc == USHER_OK)
        by_duty(p, t.cfg, t.order);
    for (uint32_t oi = 0; oi < p->n && rc == USHER_OK; oi++)
        if (t.cfg[t.order[oi]] >= 0)
            rc = temporal_model(&t, t.order[oi]);
    us_free(t.cfg);
    us_free(t.order);
    us_free(t.tg);
    if (rc < 0)
        return us_err_set(err, rc, "out of memory");
    plan_account(s, p);
    return USHER_OK;
}

int plan_shepherd(const plan_problem *p, plan_solution *s, usher_error *err)
{
    snprintf(s->note, sizeof s->note, "temporal sharing; herds by first-fit; no preemption");
    return temporal(p, s, err, false);
}

int plan_alpaserve(const plan_problem *p, plan_solution *s, usher_error *err)
{
    snprintf(s->note, sizeof s->note,
             "temporal multiplexing, load spread by worst fit; no simulator search");
    return temporal(p, s, err, true);
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

/* Triton's one GPU type: where every model fits one GPU's memory at once and
 * the summed duty is cheapest; -1 if none */
static int triton_type(const plan_problem *p)
{
    int best_t = -1;
    double best_cost = INFINITY;
    for (uint16_t t = 0; t < p->nt; t++) {
        double duty = 0, mem = 0, thr;
        bool ok = true;
        for (uint32_t m = 0; m < p->n && ok; m++) {
            int c = fastest_whole(p, m, t, &thr);
            ok = c >= 0;
            if (ok) {
                duty += p->m[m].rate / p->m[m].cfg[c].thr;
                mem += p->m[m].cfg[c].mreq;
            }
        }
        if (!ok || mem > 100)
            continue;
        double cost = ceil(duty) * (p->t[t].price > 0 ? p->t[t].price : 1);
        if (cost < best_cost) {
            best_cost = cost;
            best_t = t;
        }
    }
    return best_t;
}

/* `gpus` GPUs of type t, each with every model at its share of the rate */
static int triton_open(const plan_problem *p, plan_solution *s, const int *cfg, uint16_t t,
                       int64_t gpus)
{
    for (int64_t i = 0; i < gpus; i++) {
        int gi = plan_open(s, p, t, -1);
        if (gi < 0)
            break;
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
    /* every model on every GPU: memory of all models must fit one GPU */
    int best_t = triton_type(p);
    if (best_t < 0) {
        snprintf(s->note, sizeof s->note,
                 "no GPU type holds every model in memory at once: nothing placed");
        plan_account(s, p);
        return USHER_OK;
    }
    int *cfg = us_calloc(p->n ? p->n : 1, sizeof *cfg);
    if (!cfg)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    double duty = 0, thr;
    for (uint32_t m = 0; m < p->n; m++) {
        cfg[m] = fastest_whole(p, m, (uint16_t)best_t, &thr);
        duty += p->m[m].rate / thr;
    }
    int64_t gpus = (int64_t)ceil(duty - 1e-9);
    if (gpus < 1)
        gpus = 1;
    int64_t avail = plan_type_left(s, p, (uint16_t)best_t);
    if (gpus > avail)
        gpus = avail;
    int rc = triton_open(p, s, cfg, (uint16_t)best_t, gpus);
    if (rc < 0) {
        us_free(cfg);
        return us_err_set(err, rc, "out of memory");
    }
    uint32_t late = triton_late(p, s, cfg);
    if (late)
        snprintf(s->note, sizeof s->note,
                 "every model on every GPU, time-sliced; %u model%s miss%s the SLO waiting "
                 "for the others' batches",
                 late, late == 1 ? "" : "s", late == 1 ? "es" : "");
    else
        snprintf(s->note, sizeof s->note, "every model on every GPU, time-sliced");
    us_free(cfg);
    plan_account(s, p);
    return USHER_OK;
}

/* ---- spatial baselines --------------------------------------------------------- */
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
            /* static: a 50% half; gpulet: the most throughput per share that still fits */
            int cfg = -1, gpu = -1;
            double bv = 0;
            for (uint32_t i = 0; i < pm->n_cfg; i++) {
                const plan_cfg *c = &pm->cfg[i];
                if (!gpulet && c->share != 50)
                    continue;
                double v = c->thr / c->share / (p->t[c->type].price > 0 ? p->t[c->type].price : 1);
                if (v <= bv)
                    continue;
                /* where would it go: a GPU with one partition and room, else a new one */
                int where = -1;
                for (uint32_t k = 0; k < s->n; k++) {
                    plan_gpu *g = &s->g[k];
                    if (g->n != 1 || !plan_fits_with(s, p, k, m, i, 0, -1, NULL))
                        continue;
                    if (gpulet) {
                        const plan_cfg *o = &p->m[g->r[0].model].cfg[g->r[0].cfg];
                        const gpu_type *gt = p->t[c->type].g;
                        double bwp = gt->mem_bw_gbs > 0 ? gt->mem_bw_gbs : 1;
                        double f_me = 1 + 0.5 * o->bw_gbs / bwp, f_o = 1 + 0.5 * c->bw_gbs / bwp;
                        if (PLAN_SLO_FACTOR * c->lat_ms * f_me > pm->slo_ms ||
                            PLAN_SLO_FACTOR * o->lat_ms * f_o > p->m[g->r[0].model].slo_ms)
                            continue;
                    }
                    where = (int)k;
                    break;
                }
                if (where < 0 && plan_type_left(s, p, c->type) <= 0)
                    continue;
                bv = v;
                cfg = (int)i;
                gpu = where;
            }
            if (cfg < 0)
                break;
            if (gpu < 0)
                gpu = plan_open(s, p, pm->cfg[cfg].type, -1);
            if (gpu < 0)
                break;
            double load = rate < pm->cfg[cfg].thr ? rate : pm->cfg[cfg].thr;
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
