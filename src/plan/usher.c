/*
 * usher.c - the USHER placement policy (layer 6; ../shared/usher-notes.md
 * section 2, with the choices below written down where the paper is silent).
 *
 *  1. Reference configuration of each model on each GPU type: the feasible
 *     configuration with the lowest price x max(Creq, Mreq) per request/s.
 *     Its type with the lowest such cost is the model's reference type.
 *  2. Classification: compute-heavy if Creq/Mreq >= 1.2, memory-heavy if
 *     Mreq/Creq >= 1.2, else balanced (demand = replicas x requirement).
 *  3. Grouping: groups start as single models (models of one merge group
 *     start together); two passes pair the group with the largest surplus of
 *     compute demand over memory demand with the one with the largest deficit,
 *     so that within a group sum(Creq) ~ sum(Mreq); at most 4 models a group.
 *  4. Holistic search per group: for each model its 2 cheapest configurations
 *     on each of the group's 2 best types (batch size and share together -
 *     the replication degree follows as ceil(rate / throughput)), dominated
 *     combinations skipped; every combination is packed by best fit onto
 *     fresh GPUs and costed (price x GPUs, the last one by its fill); the
 *     cheapest wins. This replaces the naive product over batch x
 *     replication (millions per group) by a pruned one (<= 32 packings).
 *  5. Placement: all replicas, compute-heavy and memory-heavy lists sorted
 *     by Creq + Mreq and interleaved, each by multi-dimensional best fit -
 *     the group's GPUs first, then any GPU of its type - with sum(Creq) <=
 *     100% and sum(Mreq) <= 100%; otherwise a new GPU of its type is opened;
 *     when that type is exhausted, the cheapest other type that can serve it.
 *  6. Consolidation (beyond the paper): while some GPU's replicas all fit
 *     elsewhere, move them and close it.
 *  7. What the placement left unserved (types exhausted) is given any free
 *     room (plan_absorb), then GPUs nothing holds (absorb_rest; again after
 *     step 8: consolidation and the local search close GPUs).
 *  8. Local search moving load, not replicas (plan_improve, improve.c), on
 *     plans of up to IMPROVE_MAX_GPUS GPUs.
 * usher_once runs the steps in that order, each a function over one
 * usher_run that owns every buffer of the run (one cleanup path).
 * Each replica runs with a compute share equal to its Creq (MPS active
 * thread percentage). On a fixed cluster with objective max-goodput the
 * models are served by weight (1 + priority) per dollar of capacity, the
 * densest first, and what does not fit is reported as unserved.
 *
 * Fairness (objective max-goodput with min_share, or max-min; plan_fair):
 * the models' floors (min_share x rate; with max-min, also t x weight / the
 * largest weight x rate, t the largest that still fits, by bisection) are
 * planned first as a min-cost problem on the cluster - floors it cannot
 * serve are an error naming the models - and that plan is grown towards the
 * full rates by re-planning (replan.c: the replicas placed stay, the
 * deficits met densest first). Plain USHER's plan is kept instead when it
 * meets the floors and serves more weight.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "plan.h"

#define GROUP_MAX 4
#define TOP_CFG 2
#define TOP_TYPES 2
#define IMPROVE_MAX_GPUS 256 /* local search only on plans this small (cost grows ~ GPUs^3) */

typedef struct minfo {
    int ref_cfg[PLAN_MAX_TYPES]; /* cheapest cfg per type, -1 if none */
    double cost[PLAN_MAX_TYPES]; /* its cost per request/s */
    int ref_type;
    double dc, dm;               /* demand of compute and memory, % x replicas */
    int group;
    int spare_gpu, spare_idx;    /* its last replica with throughput to spare, or -1 */
} minfo;

/* the memory side of a configuration for classification and grouping: the
 * larger of its memory (Mreq) and the DRAM bandwidth it uses (% of the GPU's,
 * averaged over its latency) in units of the workload's typical DRAM use per
 * share on its type (plan_type.dram_per_share) - the resource co-located
 * replicas contend for, measured against the replicas it could be paired with
 * (docs/internals/plan.md, step 2). Without the interference model, Mreq alone
 * (the behaviour before it) */
static double mem_side(const plan_problem *p, const plan_cfg *c)
{
    double rho = p->t[c->type].dram_per_share;
    double dram = p->interference && rho > 0 ? c->dram_pct / rho : 0;
    return dram > c->mreq ? dram : c->mreq;
}

plan_class plan_usher_class(const plan_problem *p, const plan_cfg *c)
{
    double mem = mem_side(p, c);
    return c->creq >= 1.2 * mem ? PLAN_COMPUTE_HEAVY
           : mem >= 1.2 * c->creq ? PLAN_MEMORY_HEAVY
                                  : PLAN_BALANCED;
}

/* $/h per request/s of serving model m's whole rate with configuration c:
 * ceil(rate / throughput) replicas of footprint max(Creq, Mreq) - a
 * configuration far larger than the rate is not cheap for it */
static double cfg_cost(const plan_problem *p, uint32_t m, const plan_cfg *c)
{
    double foot = plan_foot(c), thr = plan_thr(c);
    double price = p->t[c->type].price > 0 ? p->t[c->type].price : 1;
    double rate = p->m[m].rate;
    if (rate <= 1e-9)
        return price * foot / 100.0 / thr;
    return price * foot / 100.0 * ceil(rate / thr - 1e-9) / rate;
}

/* the k cheapest configurations of model m on type t, ascending */
static int top_cfgs(const plan_problem *p, uint32_t m, uint16_t t, int *out, int k)
{
    int n = 0;
    const plan_model *pm = &p->m[m];
    for (uint32_t i = 0; i < pm->n_cfg; i++) {
        if (pm->cfg[i].type != t)
            continue;
        double c = cfg_cost(p, m, &pm->cfg[i]);
        int pos = n < k ? n : k;
        while (pos > 0 && cfg_cost(p, m, &pm->cfg[out[pos - 1]]) > c)
            pos--;
        if (pos >= k)
            continue;
        for (int j = (n < k ? n : k - 1); j > pos; j--)
            out[j] = out[j - 1];
        out[pos] = (int)i;
        if (n < k)
            n++;
    }
    return n;
}

typedef struct rep {
    uint32_t model;
    uint32_t cfg;
    double load;
    double key;
    bool cheavy;
} rep;

static int cmp_rep(const void *a, const void *b)
{
    const rep *x = a, *y = b;
    return x->key < y->key ? 1 : x->key > y->key ? -1 : (int)x->model - (int)y->model;
}

#define PACK_GPUS 512
#define PACK_PER_GPU 10 /* replicas on one GPU: shares of at least 10% */

/* cost of packing these replicas onto fresh GPUs of one type by best fit; a
 * replica fits a GPU by the rule (plan_judge) with every load 0: latency, DRAM
 * and room, not the throughput lost beside the others (placement deals loads) */
typedef plan_replica pack_gpu[PACK_PER_GPU + 1];

static double pack_cost(const plan_problem *p, const rep *r, int n, uint16_t type, pack_gpu *on)
{
    double used_c[PACK_GPUS], used_m[PACK_GPUS];
    int non[PACK_GPUS];
    /* per GPU, the last profile the rule refused there: still refused while the
     * GPU only gains replicas (replicas of one configuration come in a row) */
    uint32_t refused[PACK_GPUS];
    int g = 0;
    for (int i = 0; i < n; i++) {
        const plan_cfg *c = &p->m[r[i].model].cfg[r[i].cfg];
        int best = -1;
        double best_left = INFINITY;
        for (int k = 0; k < g; k++) {
            if (!plan_room_fits(used_c[k], used_m[k], c) || non[k] >= PACK_PER_GPU ||
                (c->uid && refused[k] == c->uid))
                continue;
            double left = 200 - used_c[k] - used_m[k] - c->creq - c->mreq;
            if (!(left < best_left))
                continue;
            on[k][non[k]] = (plan_replica){.model = r[i].model, .cfg = r[i].cfg};
            if (plan_judge(p, type, on[k], (uint32_t)non[k] + 1, NULL, NULL) != PLAN_FITS) {
                refused[k] = c->uid;
                continue;
            }
            best_left = left;
            best = k;
        }
        if (best < 0) {
            if (g == PACK_GPUS)
                return INFINITY;
            best = g++;
            used_c[best] = used_m[best] = 0;
            non[best] = 0;
            refused[best] = 0;
        }
        used_c[best] += c->creq;
        used_m[best] += c->mreq;
        on[best][non[best]++] = (plan_replica){.model = r[i].model, .cfg = r[i].cfg};
    }
    double gpus = 0;
    for (int k = 0; k < g; k++) {
        double fill = used_c[k] > used_m[k] ? used_c[k] : used_m[k];
        gpus += k + 1 < g ? 1.0 : fill / 100.0;
    }
    return gpus * (p->t[type].price > 0 ? p->t[type].price : 1);
}

/* replicas serving `rate` with configuration cfg (the last one partly loaded) */
static int expand(const plan_problem *p, uint32_t m, uint32_t cfg, double rate, rep *out, int max)
{
    const plan_cfg *c = &p->m[m].cfg[cfg];
    double thr = plan_thr(c);
    int n = 0;
    while (rate > 1e-9 && n < max) {
        double load = rate < thr ? rate : thr;
        out[n].model = m;
        out[n].cfg = cfg;
        out[n].load = load;
        out[n].key = c->creq + c->mreq;
        out[n].cheavy = c->creq >= 1.2 * mem_side(p, c);
        n++;
        rate -= load;
    }
    return n;
}

/* the GPUs a group opened: searched first, so a group stays together */
typedef struct glist {
    uint32_t *id;
    uint32_t n, cap;
} glist;

static int group_fit(const plan_problem *p, plan_solution *s, const glist *gl, uint32_t m,
                     uint32_t cfg)
{
    const plan_cfg *c = &p->m[m].cfg[cfg];
    int best = -1;
    double bl = INFINITY;
    for (uint32_t k = 0; gl && k < gl->n; k++) {
        const plan_gpu *g = &s->g[gl->id[k]];
        if (g->type != c->type || !plan_room_fits(g->used_c, g->used_m, c))
            continue;
        double left = plan_leftover(g, c);
        if (left < bl && plan_fits_with(s, p, gl->id[k], m, cfg, 0, -1, NULL)) {
            bl = left;
            best = (int)gl->id[k];
        }
    }
    return best;
}

/* place `rate` of model m starting with cfg on its type; falls back to the other
 * types when that one is exhausted. Returns the rate left unplaced. */
static double place_rate(const plan_problem *p, plan_solution *s, minfo *mi, uint32_t m,
                         uint32_t cfg, double rate, int group, glist *gl, int *rc)
{
    const plan_model *pm = &p->m[m];
    uint32_t cur = cfg;
    bool tried[PLAN_MAX_TYPES] = {0};
    /* a replica placed on a fallback configuration may have throughput to spare */
    if (mi->spare_gpu >= 0) {
        plan_replica *sp = &s->g[mi->spare_gpu].r[mi->spare_idx];
        double room = plan_target(s, p, sp) - sp->load;
        double take = room < rate ? room : rate;
        if (take > 0) {
            sp->load += take;
            rate -= take;
        }
        if (room - take <= 1e-9)
            mi->spare_gpu = -1;
    }
    while (rate > 1e-9) {
        const plan_cfg *c = &pm->cfg[cur];
        int gi = group_fit(p, s, gl, m, cur);
        if (gi < 0)
            gi = plan_best_fit(s, p, c->type, m, cur, -1);
        if (gi < 0 && (gi = plan_open(s, p, c->type, group)) >= 0 && gl) {
            if (gl->n == gl->cap) {
                uint32_t nc = gl->cap ? gl->cap * 2 : 8;
                uint32_t *ni = us_realloc(gl->id, nc * sizeof *ni);
                if (!ni) {
                    *rc = USHER_ERR_NOMEM;
                    return rate;
                }
                gl->id = ni;
                gl->cap = nc;
            }
            gl->id[gl->n++] = (uint32_t)gi;
        }
        if (gi >= 0) {
            /* added empty, then loaded to what it carries there (beside the others) */
            if ((*rc = plan_add(s, p, (uint32_t)gi, m, cur, 0)) < 0)
                return rate;
            plan_replica *nr = &s->g[gi].r[s->g[gi].n - 1];
            double cap = plan_target(s, p, nr);
            double load = rate < cap ? rate : cap;
            nr->load = load;
            rate -= load;
            if (load < cap - 1e-9) {
                mi->spare_gpu = gi;
                mi->spare_idx = (int)s->g[gi].n - 1;
            }
            continue;
        }
        /* this type is full: the cheapest configuration on a type not tried yet */
        tried[c->type] = true;
        int next = -1;
        double best = INFINITY;
        for (uint16_t t = 0; t < p->nt; t++) {
            if (tried[t] || mi->ref_cfg[t] < 0)
                continue;
            /* room on an open GPU of t, or a GPU of t still to open */
            if (plan_best_fit(s, p, t, m, (uint32_t)mi->ref_cfg[t], -1) < 0 &&
                plan_type_left(s, p, t) <= 0) {
                /* maybe a smaller configuration fits an open GPU of t */
                for (uint32_t k = 0; k < pm->n_cfg; k++)
                    if (pm->cfg[k].type == t && plan_best_fit(s, p, t, m, k, -1) >= 0 &&
                        cfg_cost(p, m, &pm->cfg[k]) < best) {
                        best = cfg_cost(p, m, &pm->cfg[k]);
                        next = (int)k;
                    }
                continue;
            }
            if (mi->cost[t] < best) {
                best = mi->cost[t];
                next = mi->ref_cfg[t];
            }
        }
        if (next < 0) {
            /* last resort on the current type: any smaller configuration that fits */
            for (uint32_t k = 0; k < pm->n_cfg; k++)
                if (plan_best_fit(s, p, pm->cfg[k].type, m, k, -1) >= 0) {
                    next = (int)k;
                    break;
                }
            if (next < 0)
                return rate;
        }
        cur = (uint32_t)next;
    }
    return 0;
}

/* the configuration of model m that would carry replica rp's load on GPU k
 * (any type), as it is now: rp's own on the same type, else the smallest of
 * k's type (Creq + Mreq, then index) that carries it in one replica; -1 if
 * none fits (plan_fits_with) */
static int home_cfg(const plan_problem *p, plan_solution *s, uint32_t k,
                    const plan_replica *rp)
{
    const plan_model *pm = &p->m[rp->model];
    const plan_gpu *g = &s->g[k];
    if (pm->cfg[rp->cfg].type == g->type)
        return plan_fits_with(s, p, k, rp->model, rp->cfg, rp->load, -1, NULL) ? (int)rp->cfg : -1;
    /* by footprint, smallest first (ties by index), until one fits */
    double last_f = -INFINITY;
    int last = -1;
    for (;;) {
        int best = -1;
        double bf = INFINITY;
        for (uint32_t i = 0; i < pm->n_cfg; i++) {
            const plan_cfg *c = &pm->cfg[i];
            double foot = c->creq + c->mreq;
            bool after = foot > last_f || (foot == last_f && (int)i > last);
            if (!after || c->type != g->type || c->thr < rp->load - PLAN_FIT_EPS ||
                !plan_room_fits(g->used_c, g->used_m, c))
                continue;
            if (foot < bf) {
                bf = foot;
                best = (int)i;
            }
        }
        if (best < 0)
            return -1;
        if (plan_fits_with(s, p, k, rp->model, (uint32_t)best, rp->load, -1, NULL))
            return best;
        last_f = bf;
        last = best;
    }
}

/* the smallest leftover replica rp could leave on GPU k (home_cfg's choice
 * leaves at least this): its own configuration on the same type, else the
 * largest of k's type that carries its load and fits the room; INFINITY if none */
static double least_left(const plan_problem *p, const plan_solution *s, uint32_t k,
                         const plan_replica *rp)
{
    const plan_model *pm = &p->m[rp->model];
    const plan_gpu *g = &s->g[k];
    double left = INFINITY, base = 200 - g->used_c - g->used_m;
    if (pm->cfg[rp->cfg].type == g->type) {
        const plan_cfg *c = &pm->cfg[rp->cfg];
        return plan_room_fits(g->used_c, g->used_m, c) ? base - c->creq - c->mreq : INFINITY;
    }
    for (uint32_t i = 0; i < pm->n_cfg; i++) {
        const plan_cfg *c = &pm->cfg[i];
        if (c->type != g->type || c->thr < rp->load - PLAN_FIT_EPS ||
            !plan_room_fits(g->used_c, g->used_m, c))
            continue;
        double l = base - c->creq - c->mreq;
        left = l < left ? l : left;
    }
    return left;
}

/* move every replica of GPU v to another GPU with replicas (any type), each
 * by best fit as the GPUs are after the moves before it; all or nothing:
 * *moved says whether they went (then v is empty), else nothing changed */
static int move_out(const plan_problem *p, plan_solution *s, uint32_t v, int *dest, double *uc,
                    double *um, bool *moved)
{
    uint32_t done = 0;
    *moved = false;
    for (uint32_t r = 0; r < s->g[v].n; r++) {
        plan_replica rp = s->g[v].r[r];
        int best = -1, bcfg = -1;
        double bl = INFINITY;
        for (uint32_t i = 0; i < s->n; i++) {
            if (i == v || !s->g[i].n || !(least_left(p, s, i, &rp) < bl))
                continue; /* it could not beat the best so far: the rule is not asked */
            int c = home_cfg(p, s, i, &rp);
            if (c < 0)
                continue;
            const plan_cfg *x = &p->m[rp.model].cfg[c];
            double left = 200 - s->g[i].used_c - s->g[i].used_m - x->creq - x->mreq;
            if (left < bl) {
                bl = left;
                best = (int)i;
                bcfg = c;
            }
        }
        if (best < 0)
            break;
        dest[done] = best;
        uc[done] = s->g[best].used_c;
        um[done] = s->g[best].used_m;
        if (plan_add(s, p, (uint32_t)best, rp.model, (uint32_t)bcfg, rp.load) < 0) {
            while (done-- > 0)
                plan_unadd(s, p, (uint32_t)dest[done], uc[done], um[done]);
            return USHER_ERR_NOMEM;
        }
        done++;
    }
    if (done < s->g[v].n) {
        /* one had no home: the others come back */
        while (done-- > 0)
            plan_unadd(s, p, (uint32_t)dest[done], uc[done], um[done]);
        return USHER_OK;
    }
    plan_empty(s, p, v);
    *moved = true;
    return USHER_OK;
}

/* the GPUs with replicas, by fill weighted by price, least first: closing an
 * expensive GPU helps most (insertion sort: equal fills keep their order) */
static uint32_t by_fill(const plan_problem *p, const plan_solution *s, uint32_t *order)
{
    uint32_t no = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (s->g[i].n)
            order[no++] = i;
    for (uint32_t a = 1; a < no; a++)
        for (uint32_t b = a; b > 0; b--) {
            const plan_gpu *x = &s->g[order[b]], *y = &s->g[order[b - 1]];
            double fx = (x->used_c + x->used_m) / (p->t[x->type].price + 1e-9);
            double fy = (y->used_c + y->used_m) / (p->t[y->type].price + 1e-9);
            if (fx >= fy)
                break;
            uint32_t t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    return no;
}

/* one round of consolidate: close the first GPU (by_fill) whose replicas all
 * have a home elsewhere; *closed says whether one was */
static int consolidate_round(const plan_problem *p, plan_solution *s, bool *closed)
{
    uint32_t most = 1;
    for (uint32_t i = 0; i < s->n; i++)
        most = s->g[i].n > most ? s->g[i].n : most;
    uint32_t n = s->n ? s->n : 1;
    uint32_t *order = us_calloc(n, sizeof *order);
    double *uc = us_calloc(most, sizeof *uc), *um = us_calloc(most, sizeof *um);
    int *dest = us_calloc(most, sizeof *dest);
    int rc = order && uc && um && dest ? USHER_OK : USHER_ERR_NOMEM;
    uint32_t no = rc == USHER_OK ? by_fill(p, s, order) : 0;
    *closed = false;
    for (uint32_t oi = 0; oi < no && !*closed && rc == USHER_OK; oi++)
        rc = move_out(p, s, order[oi], dest, uc, um, closed);
    us_free(order);
    us_free(uc);
    us_free(um);
    us_free(dest);
    return rc;
}

/*
 * Close GPUs whose replicas all fit elsewhere, least-filled first. A replica
 * may move to a GPU of another type, re-expressed as a configuration of that
 * type that carries its load. Quadratic per round: plans over 1,500 GPUs skip
 * it (docs/internals/plan.md).
 */
static int consolidate(const plan_problem *p, plan_solution *s)
{
    bool changed = true;
    while (changed && s->n <= 1500) {
        int rc = consolidate_round(p, s, &changed);
        if (rc < 0)
            return rc;
        plan_compact(s);
    }
    return USHER_OK;
}

#define SEARCH_REPS 4096 /* replicas of one combination in the holistic search */

/* one run of the pipeline: its inputs and every buffer it owns (run_free) */
typedef struct usher_run {
    const plan_problem *p;
    plan_solution *s;
    uint32_t n;        /* models */
    int force;         /* GPU type every model prefers where it can run; -1: none */
    minfo *mi;         /* per model: steps 1-2 */
    uint32_t *gid;     /* per model: its group's representative (step 3) */
    int *gsize;        /* per representative: members */
    uint32_t *next;    /* per model: the next member of its group, UINT32_MAX: none */
    double *gap;       /* per representative: sum(Creq) - sum(Mreq) demand */
    uint32_t *groups;  /* the representatives, by gap */
    int *choice;       /* per model: configuration of the holistic search (step 4) */
    rep *combo;        /* step 4: the replicas of one combination, SEARCH_REPS */
    pack_gpu *pack;    /* step 4: the GPUs of one packing, PACK_GPUS */
    double *prio;      /* per model: placement priority (max-goodput) */
    uint32_t *order;   /* models by prio: order of placement (5) and of absorbing (7) */
    rep *reps;         /* step 5: every replica, in model order */
    rep *cheavy, *mheavy; /* ... split into compute-heavy and the others */
    uint32_t nreps, nch, nmh;
    glist *gl;         /* per representative: the GPUs its group opened */
} usher_run;

static void run_free(usher_run *u)
{
    for (uint32_t g = 0; u->gl && g < u->n; g++)
        us_free(u->gl[g].id);
    void *own[] = {u->gl,    u->mi,   u->gid,  u->gsize, u->next,   u->gap,    u->groups,
                   u->choice, u->combo, u->pack, u->prio, u->order, u->reps, u->cheavy, u->mheavy};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        us_free(own[i]);
}

static int run_init(usher_run *u, const plan_problem *p, plan_solution *s, int force)
{
    *u = (usher_run){.p = p, .s = s, .n = p->n, .force = force};
    size_t n = p->n ? p->n : 1;
    u->mi = us_calloc(n, sizeof *u->mi);
    u->gid = us_calloc(n, sizeof *u->gid);
    u->gsize = us_calloc(n, sizeof *u->gsize);
    u->next = us_calloc(n, sizeof *u->next);
    u->gap = us_calloc(n, sizeof *u->gap);
    u->groups = us_calloc(n, sizeof *u->groups);
    u->choice = us_calloc(n, sizeof *u->choice);
    u->combo = us_calloc(SEARCH_REPS, sizeof *u->combo);
    u->pack = us_calloc(PACK_GPUS, sizeof *u->pack);
    u->prio = us_calloc(n, sizeof *u->prio);
    u->order = us_calloc(n, sizeof *u->order);
    u->gl = us_calloc(n, sizeof *u->gl);
    bool ok = u->mi && u->gid && u->gsize && u->next && u->gap && u->groups && u->choice && u->combo &&
              u->pack && u->prio && u->order && u->gl;
    return ok ? USHER_OK : USHER_ERR_NOMEM;
}

/* 1-2: model m's reference configuration per type, its reference type (force
 * where m can run there) and its demands */
static void reference(usher_run *u, uint32_t m)
{
    const plan_problem *p = u->p;
    minfo *x = &u->mi[m];
    x->ref_type = -1;
    double best = INFINITY;
    for (uint16_t t = 0; t < p->nt; t++) {
        int c[1];
        x->ref_cfg[t] = top_cfgs(p, m, t, c, 1) ? c[0] : -1;
        x->cost[t] = x->ref_cfg[t] >= 0 ? cfg_cost(p, m, &p->m[m].cfg[c[0]]) : INFINITY;
        if (x->cost[t] < best && plan_type_left(u->s, p, t) > 0) {
            best = x->cost[t];
            x->ref_type = t;
        }
    }
    if (u->force >= 0 && x->ref_cfg[u->force] >= 0)
        x->ref_type = u->force;
    if (x->ref_type < 0) /* every type "full" at the start cannot happen; keep the cheapest */
        for (uint16_t t = 0; t < p->nt; t++)
            if (x->ref_cfg[t] >= 0 && (x->ref_type < 0 || x->cost[t] < x->cost[x->ref_type]))
                x->ref_type = t;
    if (x->ref_type >= 0) {
        const plan_cfg *c = &p->m[m].cfg[x->ref_cfg[x->ref_type]];
        double reps = p->m[m].rate / plan_thr(c);
        x->dc = reps * c->creq;
        x->dm = reps * mem_side(p, c);
    }
    x->group = (int)m;
    x->spare_gpu = -1;
}

/* 3: the members of group b join group a (their lists too) */
static void group_join(usher_run *u, uint32_t a, uint32_t b)
{
    uint32_t last = a;
    while (u->next[last] != UINT32_MAX)
        last = u->next[last];
    u->next[last] = b;
    for (uint32_t k = b; k != UINT32_MAX; k = u->next[k])
        u->gid[k] = a;
    u->gsize[a] += u->gsize[b];
    u->gsize[b] = 0;
}

/* 3, start: every model its own group, models of one merge group together */
static void group_start(usher_run *u)
{
    for (uint32_t m = 0; m < u->n; m++) {
        u->gid[m] = m;
        u->gsize[m] = 1;
        u->next[m] = UINT32_MAX;
    }
    for (uint32_t m = 0; m < u->n; m++) {
        int mg = u->p->m[m].merge_group;
        for (uint32_t k = 0; mg && k < m; k++)
            if (u->p->m[k].merge_group == mg && u->gsize[u->gid[k]] < GROUP_MAX) {
                group_join(u, u->gid[k], m);
                break;
            }
    }
}

/* 3, one pass: the representatives by gap, largest first; returns how many */
static int group_order(usher_run *u, uint32_t *ng)
{
    /* one pass over the members, each group's sum in member order (as a scan per
     * group would add them, so the sums are bit for bit the same): O(n), not O(n x groups) */
    const uint32_t *gid = u->gid;
    double *gap = u->gap;
    *ng = 0;
    for (uint32_t m = 0; m < u->n; m++)
        if (gid[m] == m) {
            gap[m] = 0;
            u->groups[(*ng)++] = m;
        }
    for (uint32_t k = 0; k < u->n; k++)
        gap[gid[k]] += u->mi[k].dc - u->mi[k].dm;
    return plan_sort_desc(u->groups, *ng, gap);
}

/* 3, one pass: pair the largest surplus with the largest deficit, inwards */
static int group_pass(usher_run *u)
{
    uint32_t ng;
    int rc = group_order(u, &ng);
    uint32_t i = 0, j = ng ? ng - 1 : 0;
    while (rc == USHER_OK && i < j) {
        uint32_t a = u->groups[i], b = u->groups[j];
        if (u->gap[a] <= 0 || u->gap[b] >= 0)
            break; /* no complementary pair left */
        if (u->gsize[a] + u->gsize[b] > GROUP_MAX) {
            if (u->gsize[a] >= u->gsize[b])
                i++;
            else
                j--;
            continue;
        }
        group_join(u, a, b);
        i++;
        j--;
    }
    return rc;
}

/* 4: the members of group g that can run somewhere, in model order */
static int group_members(const usher_run *u, uint32_t g, uint32_t *mem)
{
    int k = 0;
    for (uint32_t m = g; m != UINT32_MAX && k < GROUP_MAX; m = u->next[m])
        if (u->mi[m].ref_type >= 0) {
            int j = k++;
            while (j > 0 && mem[j - 1] > m) {
                mem[j] = mem[j - 1];
                j--;
            }
            mem[j] = m;
        }
    return k;
}

/* 4: the group's candidate types: the members' reference types, then the type
 * cheapest for the group as a whole */
static int group_types(const usher_run *u, const uint32_t *mem, int k, int *types)
{
    const plan_problem *p = u->p;
    int nt = 0;
    for (int a = 0; a < k && nt < TOP_TYPES; a++) {
        int t = u->mi[mem[a]].ref_type;
        bool dup = false;
        for (int b = 0; b < nt; b++)
            dup |= types[b] == t;
        if (!dup)
            types[nt++] = t;
    }
    if (nt >= TOP_TYPES)
        return nt;
    int bt = -1;
    double bc = INFINITY;
    for (uint16_t t = 0; t < p->nt; t++) {
        if (t == types[0] || plan_type_left(u->s, p, t) <= 0)
            continue;
        double c = 0;
        for (int a = 0; a < k; a++)
            c += u->mi[mem[a]].cost[t] * p->m[mem[a]].rate;
        if (c < bc) {
            bc = c;
            bt = t;
        }
    }
    if (bt >= 0)
        types[nt++] = bt;
    return nt;
}

/* the next combination of candidate indices (an odometer); false after the last */
static bool next_combo(int *idx, const int *nc, int k)
{
    int a = 0;
    while (a < k && ++idx[a] >= nc[a])
        idx[a++] = 0;
    return a < k;
}

/* 4: every combination of the members' TOP_CFG cheapest configurations on type
 * t, packed and costed; the cheapest so far in *best and sel */
static void search_type(usher_run *u, const uint32_t *mem, int k, uint16_t t, double *best,
                        int *sel)
{
    const plan_problem *p = u->p;
    int cand[GROUP_MAX][TOP_CFG], nc[GROUP_MAX];
    for (int a = 0; a < k; a++)
        if ((nc[a] = top_cfgs(p, mem[a], t, cand[a], TOP_CFG)) == 0)
            return;
    int idx[GROUP_MAX] = {0};
    do {
        int nr = 0;
        for (int a = 0; a < k; a++)
            nr += expand(p, mem[a], (uint32_t)cand[a][idx[a]], p->m[mem[a]].rate, u->combo + nr,
                         SEARCH_REPS - nr);
        qsort(u->combo, (size_t)nr, sizeof *u->combo, cmp_rep);
        double c = nr < SEARCH_REPS ? pack_cost(p, u->combo, nr, t, u->pack) : INFINITY;
        if (c < *best) {
            *best = c;
            for (int a = 0; a < k; a++)
                sel[a] = cand[a][idx[a]];
        }
    } while (next_combo(idx, nc, k));
}

/* 4: group g's configurations into choice */
static void search_group(usher_run *u, uint32_t g)
{
    uint32_t mem[GROUP_MAX];
    int k = group_members(u, g, mem);
    if (k == 0)
        return;
    int types[TOP_TYPES];
    int nt = group_types(u, mem, k, types);
    double best = INFINITY;
    int sel[GROUP_MAX];
    for (int a = 0; a < k; a++)
        sel[a] = u->mi[mem[a]].ref_cfg[u->mi[mem[a]].ref_type];
    for (int ti = 0; ti < nt; ti++)
        search_type(u, mem, k, (uint16_t)types[ti], &best, sel);
    for (int a = 0; a < k; a++)
        u->choice[mem[a]] = sel[a];
}

/* 5: the model order - on a fixed cluster serving what fits matters: the most
 * weight per dollar of capacity first */
static int place_order(usher_run *u)
{
    const plan_problem *p = u->p;
    for (uint32_t m = 0; m < u->n; m++) {
        const minfo *x = &u->mi[m];
        u->order[m] = m;
        u->prio[m] = p->objective == PLAN_MAX_GOODPUT
                         ? plan_weight(&p->m[m]) / (x->ref_type >= 0 ? x->cost[x->ref_type] : INFINITY)
                         : 0;
    }
    return p->objective == PLAN_MAX_GOODPUT ? plan_sort_desc(u->order, u->n, u->prio) : USHER_OK;
}

/* 5: every replica in model order, split into compute-heavy and the others,
 * sorted by Creq + Mreq when cost is the objective */
static int place_reps(usher_run *u)
{
    const plan_problem *p = u->p;
    uint32_t total = 0;
    for (uint32_t m = 0; m < u->n; m++)
        if (u->mi[m].ref_type >= 0)
            total += (uint32_t)ceil(p->m[m].rate / plan_thr(&p->m[m].cfg[u->choice[m]])) + 1;
    size_t cap = total ? total : 1;
    u->reps = us_calloc(cap, sizeof *u->reps);
    u->cheavy = us_calloc(cap, sizeof *u->cheavy);
    u->mheavy = us_calloc(cap, sizeof *u->mheavy);
    if (!u->reps || !u->cheavy || !u->mheavy)
        return USHER_ERR_NOMEM;
    for (uint32_t oi = 0; oi < u->n; oi++) {
        uint32_t m = u->order[oi];
        if (u->mi[m].ref_type >= 0)
            u->nreps += (uint32_t)expand(p, m, (uint32_t)u->choice[m], p->m[m].rate,
                                         u->reps + u->nreps, (int)(total - u->nreps));
    }
    for (uint32_t i = 0; i < u->nreps; i++) {
        if (u->reps[i].cheavy)
            u->cheavy[u->nch++] = u->reps[i];
        else
            u->mheavy[u->nmh++] = u->reps[i];
    }
    if (p->objective == PLAN_MIN_COST) {
        qsort(u->cheavy, u->nch, sizeof *u->cheavy, cmp_rep);
        qsort(u->mheavy, u->nmh, sizeof *u->mheavy, cmp_rep);
    }
    return USHER_OK;
}

/*
 * 5: the two lists interleaved, each replica by place_rate; what could not be
 * placed shows as unserved. With max-goodput the denser head goes first (the
 * lists keep place_order's order): a plain alternation gave a fixed cluster
 * that cannot hold every rate to the two lists in equal numbers, whatever
 * each yields per GPU (resnet18 beside resnet101 on 250 V100s: 125 GPUs each,
 * 28% less goodput than serving resnet18's rate first). Equal densities, and
 * min-cost, still alternate: complementary replicas pair up.
 */
static bool take_cheavy(const usher_run *u, uint32_t a, uint32_t b)
{
    if (b >= u->nmh)
        return true;
    if (a >= u->nch)
        return false;
    if (u->p->objective == PLAN_MAX_GOODPUT) {
        double pa = u->prio[u->cheavy[a].model], pb = u->prio[u->mheavy[b].model];
        if (pa > pb * (1 + 1e-9))
            return true;
        if (pb > pa * (1 + 1e-9))
            return false;
    }
    return a <= b;
}

static int place_all(usher_run *u)
{
    int rc = USHER_OK;
    uint32_t a = 0, b = 0;
    while ((a < u->nch || b < u->nmh) && rc == USHER_OK) {
        const rep *r = take_cheavy(u, a, b) ? &u->cheavy[a++] : &u->mheavy[b++];
        uint32_t g = u->gid[r->model];
        place_rate(u->p, u->s, &u->mi[r->model], r->model, r->cfg, r->load, (int)g, &u->gl[g], &rc);
    }
    return rc;
}

/* 7-8: what is unserved into any free room, then the local search */
/* 7: what the placement left unserved (types exhausted) into any free room,
 * then onto GPUs that nothing holds, opened one at a time of the type
 * cheapest for the model (a GPU that takes none of it is closed again).
 * Placement opened GPUs until the types ran out; consolidation and the local
 * search then close some: on a fixed cluster of 1,000 V100s at a low load
 * 23 stayed idle beside 115,000 req/s unserved (docs/simulator.md) */
static int absorb_rest(usher_run *u)
{
    const plan_problem *p = u->p;
    plan_solution *s = u->s;
    plan_account(s, p);
    for (uint32_t oi = 0; oi < u->n; oi++) {
        uint32_t m = u->order[oi];
        double left = p->m[m].rate - s->served[m];
        if (left > 1e-9 && plan_absorb(s, p, m, &left, -1) < 0)
            return USHER_ERR_NOMEM;
        bool tried[PLAN_MAX_TYPES] = {0};
        while (left > 1e-9) {
            int bt = -1;
            double bc = INFINITY;
            for (uint16_t t = 0; t < p->nt; t++)
                if (!tried[t] && u->mi[m].ref_cfg[t] >= 0 && u->mi[m].cost[t] < bc &&
                    plan_type_left(s, p, t) > 0) {
                    bc = u->mi[m].cost[t];
                    bt = t;
                }
            if (bt < 0)
                break;
            if (plan_open(s, p, (uint16_t)bt, -1) < 0) {
                tried[bt] = true;
                continue;
            }
            double before = left;
            if (plan_absorb(s, p, m, &left, -1) < 0)
                return USHER_ERR_NOMEM;
            if (left > before - 1e-9) {
                tried[bt] = true;
                plan_compact(s); /* the GPU opened for nothing */
            }
        }
    }
    return USHER_OK;
}

static int absorb_improve(usher_run *u)
{
    const plan_problem *p = u->p;
    plan_solution *s = u->s;
    int rc = absorb_rest(u);
    if (rc == USHER_OK && plan_improve(s, p, IMPROVE_MAX_GPUS) < 0)
        rc = USHER_ERR_NOMEM;
    if (rc == USHER_OK) /* the local search may have closed GPUs */
        rc = absorb_rest(u);
    /* what is still unserved onto the replicas' whole co-located throughput */
    plan_fill(s, p, u->order);
    return rc;
}

/* the steps of the file head, in order; force: see usher_run */
static int usher_once(const plan_problem *p, plan_solution *s, int force, usher_error *err)
{
    usher_run u;
    int rc = run_init(&u, p, s, force);
    for (uint32_t m = 0; rc == USHER_OK && m < u.n; m++)
        reference(&u, m);
    if (rc == USHER_OK)
        group_start(&u);
    for (int pass = 0; pass < 2 && rc == USHER_OK; pass++)
        rc = group_pass(&u);
    for (uint32_t g = 0; rc == USHER_OK && g < u.n; g++)
        if (u.gid[g] == g)
            search_group(&u, g);
    if (rc == USHER_OK && (rc = place_order(&u)) == USHER_OK && (rc = place_reps(&u)) == USHER_OK)
        rc = place_all(&u);
    if (rc == USHER_OK)
        rc = consolidate(p, s);
    if (rc == USHER_OK)
        rc = absorb_improve(&u);
    run_free(&u);
    return rc < 0 ? us_err_set(err, rc, "out of memory") : rc;
}

int plan_usher_groups(const plan_problem *p, uint32_t *gid, plan_class *cls)
{
    plan_solution s;
    if (plan_solution_init(&s, p, "usher") < 0)
        return USHER_ERR_NOMEM;
    usher_run u;
    int rc = run_init(&u, p, &s, -1);
    for (uint32_t m = 0; rc == USHER_OK && m < u.n; m++)
        reference(&u, m);
    if (rc == USHER_OK)
        group_start(&u);
    for (int pass = 0; pass < 2 && rc == USHER_OK; pass++)
        rc = group_pass(&u);
    for (uint32_t m = 0; rc == USHER_OK && m < u.n; m++) {
        gid[m] = u.gid[m];
        if (cls)
            cls[m] = u.mi[m].ref_type >= 0
                         ? plan_usher_class(p, &p->m[m].cfg[u.mi[m].ref_cfg[u.mi[m].ref_type]])
                         : PLAN_BALANCED;
    }
    run_free(&u);
    plan_solution_free(&s);
    return rc;
}

/* better: more served, then cheaper */
static bool better(const plan_problem *p, const plan_solution *a, const plan_solution *b)
{
    plan_totals x, y;
    plan_totals_of(a, p, &x);
    plan_totals_of(b, p, &y);
    if (x.served > y.served * (1 + 1e-9) + 1e-9)
        return true;
    if (x.served < y.served * (1 - 1e-9) - 1e-9)
        return false;
    return x.cost < y.cost - 1e-9;
}

/*
 * The pipeline runs once with each model on its own reference type and,
 * when there are several GPU types, once more per type with every model
 * preferring that type (where it can run there): mixing types by per-request
 * cost alone can open a dear GPU for a sliver of load. The best plan wins.
 */
static int usher_plain(const plan_problem *p, plan_solution *s, usher_error *err)
{
    int rc = usher_once(p, s, -1, err);
    if (rc < 0 || p->nt < 2)
        return rc;
    for (uint16_t t = 0; t < p->nt; t++) {
        plan_solution alt;
        if (plan_solution_init(&alt, p, s->policy) < 0)
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        if ((rc = usher_once(p, &alt, t, err)) < 0) {
            plan_solution_free(&alt);
            return rc;
        }
        if (better(p, &alt, s)) {
            plan_solution_free(s);
            *s = alt;
        } else {
            plan_solution_free(&alt);
        }
    }
    return USHER_OK;
}

/* ---- fairness ------------------------------------------------------------------ */

bool plan_fair(const plan_problem *p)
{
    if (p->objective == PLAN_MAX_MIN)
        return true;
    if (p->objective != PLAN_MAX_GOODPUT)
        return false; /* min-cost serves every rate: a floor changes nothing */
    for (uint32_t m = 0; m < p->n; m++)
        if (p->m[m].min_share > 0)
            return true;
    return false;
}

#define FAIR_STEPS 10 /* bisection steps of max-min's t (1/1024) */

typedef struct fair_run {
    const plan_problem *p;
    plan_problem *q;     /* p with rates and objective changed; models copied shallow */
    plan_model *mm;
    double *floor;       /* per model, requests/s */
    uint32_t *order;     /* densest first: weight per dollar of its cheapest capacity */
    double *key;
    double wmax;
} fair_run;

/* weighted goodput of s */
static double fair_value(const plan_problem *p, const plan_solution *s)
{
    double v = 0;
    for (uint32_t m = 0; m < p->n; m++)
        v += plan_weight(&p->m[m]) * s->served[m];
    return v;
}

/* every floor served by s (a relative slack for the loads' sums) */
static bool fair_meets(const fair_run *f, const plan_solution *s)
{
    for (uint32_t m = 0; m < f->p->n; m++)
        if (s->served[m] < f->floor[m] * (1 - 1e-6) - 1e-9)
            return false;
    return true;
}

/* floors at max-min level t (with the models' min_share) */
static void fair_floors(fair_run *f, double t)
{
    const plan_problem *p = f->p;
    for (uint32_t m = 0; m < p->n; m++) {
        double share = p->m[m].min_share;
        if (p->objective == PLAN_MAX_MIN && t * plan_weight(&p->m[m]) / f->wmax > share)
            share = t * plan_weight(&p->m[m]) / f->wmax;
        f->floor[m] = share * p->m[m].rate;
    }
}

/* the floors alone, planned at the lowest cost on the cluster, into s */
static int fair_phase1(fair_run *f, plan_solution *s, usher_error *err)
{
    for (uint32_t m = 0; m < f->p->n; m++)
        f->mm[m].rate = f->floor[m];
    f->q->objective = PLAN_MIN_COST;
    if (plan_solution_init(s, f->q, "usher") < 0)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    return usher_plain(f->q, s, err);
}

/* the floors' plan grown towards the full rates (densest first) into s */
static int fair_phase2(fair_run *f, const plan_solution *base, plan_solution *s,
                       usher_error *err)
{
    for (uint32_t m = 0; m < f->p->n; m++)
        f->mm[m].rate = f->p->m[m].rate;
    f->q->objective = PLAN_MAX_GOODPUT;
    if (plan_solution_init(s, f->q, "usher") < 0)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    int rc = plan_replan_order(f->q, base, 0, f->order, true, s, err);
    s->moves = s->stopped = s->reconfigured = 0;
    s->lost_gpus = s->lost_replicas = 0;
    if (rc < 0)
        plan_solution_free(s);
    return rc;
}

/* the floors USHER cannot serve, as an error naming the models */
static int fair_short(const fair_run *f, const plan_solution *s, usher_error *err)
{
    const plan_problem *p = f->p;
    char list[900] = "";
    size_t len = 0;
    uint32_t n = 0;
    for (uint32_t m = 0; m < p->n; m++) {
        if (s->served[m] >= f->floor[m] * (1 - 1e-6) - 1e-9)
            continue;
        if (n++ < 8 && len < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len,
                                    "%s'%s' (min_share %g: %.6g of %.6g req/s, %.6g served)",
                                    n > 1 ? ", " : "", p->m[m].name, p->m[m].min_share,
                                    f->floor[m], p->m[m].rate, s->served[m]);
    }
    return us_err_set(err, USHER_ERR_LIMIT,
                      "%s: the cluster cannot serve every model's min_share: %s%s%s",
                      p->cluster[0] ? p->cluster : "cluster",
                      list, n > 8 ? " and more: " : "",
                      n > 8 ? "lower min_share or add GPUs" : "");
}

static void fair_free(fair_run *f)
{
    us_free(f->q);
    us_free(f->mm);
    us_free(f->floor);
    us_free(f->order);
    us_free(f->key);
}

static int fair_init(fair_run *f, const plan_problem *p)
{
    memset(f, 0, sizeof *f);
    f->p = p;
    uint32_t n = p->n ? p->n : 1;
    f->q = us_malloc(sizeof *f->q);
    f->mm = us_calloc(n, sizeof *f->mm);
    f->floor = us_calloc(n, sizeof *f->floor);
    f->order = us_calloc(n, sizeof *f->order);
    f->key = us_calloc(n, sizeof *f->key);
    if (!f->q || !f->mm || !f->floor || !f->order || !f->key)
        return USHER_ERR_NOMEM;
    *f->q = *p;
    f->q->m = f->mm;
    memcpy(f->mm, p->m, p->n * sizeof *f->mm);
    f->wmax = 1;
    for (uint32_t m = 0; m < p->n; m++) {
        double best = INFINITY;
        for (uint32_t c = 0; c < p->m[m].n_cfg; c++) {
            const plan_cfg *x = &p->m[m].cfg[c];
            double price = p->t[x->type].price > 0 ? p->t[x->type].price : 1;
            best = fmin(best, price * plan_foot(x) / plan_thr(x));
        }
        f->order[m] = m;
        f->key[m] = plan_weight(&p->m[m]) / (best > 0 ? best : 1e-12);
        f->wmax = fmax(f->wmax, plan_weight(&p->m[m]));
    }
    return plan_sort_desc(f->order, p->n, f->key);
}

/* t feasible: phase 1 at t serves every floor */
static int fair_feasible(fair_run *f, double t, bool *ok, usher_error *err)
{
    fair_floors(f, t);
    plan_solution base;
    int rc = fair_phase1(f, &base, err);
    *ok = rc == USHER_OK && fair_meets(f, &base);
    plan_solution_free(&base);
    return rc;
}

#define FAIR_FLOOR_PRIORITY 1000000 /* the floors' weight in fair_split */

/* plain USHER on the models split in two - each floor a model of its own,
 * weighted FAIR_FLOOR_PRIORITY, and the rest of the rate at the model's
 * weight - so that its max-goodput pipeline serves the floors first; the
 * plan with the halves joined again, into out */
static int fair_split(fair_run *f, plan_solution *out, usher_error *err)
{
    const plan_problem *p = f->p;
    uint32_t n = p->n;
    plan_problem *q2 = us_malloc(sizeof *q2);
    plan_model *m2 = us_calloc(2 * (size_t)n + 1, sizeof *m2);
    plan_solution s2;
    memset(&s2, 0, sizeof s2);
    int rc = q2 && m2 ? USHER_OK : us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    if (rc == USHER_OK) {
        *q2 = *p;
        q2->m = m2;
        q2->n = 2 * n;
        q2->objective = PLAN_MAX_GOODPUT;
        for (uint32_t m = 0; m < n; m++) {
            m2[m] = m2[n + m] = p->m[m];
            m2[m].rate = f->floor[m];
            m2[m].priority = FAIR_FLOOR_PRIORITY;
            m2[n + m].rate = fmax(0, p->m[m].rate - f->floor[m]);
        }
        if (plan_solution_init(&s2, q2, "usher") < 0)
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        else
            rc = usher_plain(q2, &s2, err);
    }
    if (rc == USHER_OK && plan_solution_init(out, p, "usher") < 0)
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    if (rc == USHER_OK) {
        /* the GPUs move over, each replica back to its model */
        out->g = s2.g;
        out->n = s2.n;
        out->cap = s2.cap;
        memcpy(out->used_type, s2.used_type, sizeof out->used_type);
        s2.g = NULL;
        s2.n = s2.cap = 0;
        for (uint32_t i = 0; i < out->n; i++)
            for (uint32_t r = 0; r < out->g[i].n; r++)
                out->g[i].r[r].model %= n;
        plan_account(out, p);
    }
    plan_solution_free(&s2);
    us_free(m2);
    us_free(q2);
    return rc;
}

/* *best takes cand when it meets the floors and serves more weight (cand is
 * freed either way); *have says whether *best holds a plan */
static void fair_keep(fair_run *f, plan_solution *best, bool *have, plan_solution *cand)
{
    if (fair_meets(f, cand) &&
        (!*have || fair_value(f->p, cand) > fair_value(f->p, best) * (1 + 1e-9))) {
        if (*have)
            plan_solution_free(best);
        *best = *cand;
        *have = true;
        return;
    }
    plan_solution_free(cand);
}

static int usher_fair(const plan_problem *p, plan_solution *s, usher_error *err)
{
    fair_run f;
    int rc = fair_init(&f, p) < 0 ? us_err_set(err, USHER_ERR_NOMEM, "out of memory") : USHER_OK;
    double t = 0;
    bool ok = false;
    if (rc == USHER_OK && p->objective == PLAN_MAX_MIN) {
        /* the largest t whose floors fit (min_share's alone first: t = 0) */
        if ((rc = fair_feasible(&f, 1, &ok, err)) == USHER_OK && ok)
            t = 1;
        double lo = 0, hi = 1;
        for (int k = 0; rc == USHER_OK && !ok && k < FAIR_STEPS; k++) {
            double mid = (lo + hi) / 2;
            bool mok;
            if ((rc = fair_feasible(&f, mid, &mok, err)) == USHER_OK)
                *(mok ? &lo : &hi) = mid;
        }
        if (!ok)
            t = lo;
    }
    /* phase 1: the floors; an error naming the models it cannot serve */
    plan_solution base, plain, best, cand;
    bool have_base = false, have_plain = false, have_best = false;
    if (rc == USHER_OK) {
        fair_floors(&f, t);
        rc = fair_phase1(&f, &base, err);
        have_base = true;
        if (rc == USHER_OK && !fair_meets(&f, &base))
            rc = fair_short(&f, &base, err);
    }
    /* plain USHER (max-goodput): a candidate itself when it meets the floors,
     * and its choices an order to grow the floors' plan in */
    if (rc == USHER_OK) {
        f.q->objective = PLAN_MAX_GOODPUT;
        for (uint32_t m = 0; m < p->n; m++)
            f.mm[m].rate = p->m[m].rate;
        if (plan_solution_init(&plain, f.q, "usher") < 0)
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        else if ((have_plain = true, rc = usher_plain(f.q, &plain, err)) == USHER_OK &&
                 plan_solution_clone(&plain, &cand) == USHER_OK)
            fair_keep(&f, &best, &have_best, &cand);
    }
    /* plain USHER with the floors as models of their own */
    if (rc == USHER_OK && (rc = fair_split(&f, &cand, err)) == USHER_OK)
        fair_keep(&f, &best, &have_best, &cand);
    /* phase 2: the floors' plan grown densest first, then in the order of
     * what plain USHER served (weighted); the best that holds the floors */
    for (int pass = 0; pass < 2 && rc == USHER_OK; pass++) {
        if (pass == 1) {
            for (uint32_t m = 0; m < p->n; m++) {
                f.order[m] = m;
                f.key[m] = plan_weight(&p->m[m]) * plain.served[m] / fmax(p->m[m].rate, 1e-9);
            }
            if (plan_sort_desc(f.order, p->n, f.key) < 0) {
                rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
                break;
            }
        }
        if ((rc = fair_phase2(&f, &base, &cand, err)) == USHER_OK)
            fair_keep(&f, &best, &have_best, &cand);
    }
    if (rc == USHER_OK && !have_best) { /* the floors' plan itself */
        if (plan_solution_clone(&base, &best) < 0)
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        else
            have_best = true, plan_account(&best, p);
    }
    if (rc == USHER_OK) {
        plan_solution_free(s);
        *s = best;
        have_best = false;
        snprintf(s->policy, sizeof s->policy, "usher");
        if (p->objective == PLAN_MAX_MIN)
            snprintf(s->note, sizeof s->note,
                     "max-min: every model served at least %.4g x its weight / the largest "
                     "weight (%g) of its rate",
                     t, f.wmax);
    }
    if (have_best)
        plan_solution_free(&best);
    if (have_base)
        plan_solution_free(&base);
    if (have_plain)
        plan_solution_free(&plain);
    fair_free(&f);
    return rc;
}

int plan_usher(const plan_problem *p, plan_solution *s, usher_error *err)
{
    return plan_fair(p) ? usher_fair(p, s, err) : usher_plain(p, s, err);
}
