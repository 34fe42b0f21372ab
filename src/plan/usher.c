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
 * Each replica runs with a compute share equal to its Creq (MPS active
 * thread percentage). On a fixed cluster with objective max-goodput the
 * models are served by weight (1 + priority) per dollar of capacity, the
 * densest first, and what does not fit is reported as unserved.
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

/* $/h per request/s of serving model m's whole rate with configuration c:
 * ceil(rate / throughput) replicas of footprint max(Creq, Mreq) - a
 * configuration far larger than the rate is not cheap for it */
static double cfg_cost(const plan_problem *p, uint32_t m, const plan_cfg *c)
{
    double foot = c->creq > c->mreq ? c->creq : c->mreq;
    double price = p->t[c->type].price > 0 ? p->t[c->type].price : 1;
    double rate = p->m[m].rate;
    if (rate <= 1e-9)
        return price * foot / 100.0 / c->thr;
    return price * foot / 100.0 * ceil(rate / c->thr - 1e-9) / rate;
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

/* cost of packing these replicas onto fresh GPUs of one type by best fit */
static double pack_cost(const plan_problem *p, const rep *r, int n, uint16_t type)
{
    double used_c[512], used_m[512];
    int g = 0;
    for (int i = 0; i < n; i++) {
        const plan_cfg *c = &p->m[r[i].model].cfg[r[i].cfg];
        int best = -1;
        double best_left = INFINITY;
        for (int k = 0; k < g; k++) {
            if (used_c[k] + c->creq > 100 + 1e-9 || used_m[k] + c->mreq > 100 + 1e-9)
                continue;
            double left = 200 - used_c[k] - used_m[k] - c->creq - c->mreq;
            if (left < best_left) {
                best_left = left;
                best = k;
            }
        }
        if (best < 0) {
            if (g == 512)
                return INFINITY;
            best = g++;
            used_c[best] = used_m[best] = 0;
        }
        used_c[best] += c->creq;
        used_m[best] += c->mreq;
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
    int n = 0;
    while (rate > 1e-9 && n < max) {
        double load = rate < c->thr ? rate : c->thr;
        out[n].model = m;
        out[n].cfg = cfg;
        out[n].load = load;
        out[n].key = c->creq + c->mreq;
        out[n].cheavy = c->creq >= 1.2 * c->mreq;
        n++;
        rate -= load;
    }
    return n;
}

/* place `rate` of model m starting with cfg on its type; falls back to the other
 * types when that one is exhausted. Returns the rate left unplaced. */
/* the GPUs a group opened: searched first, so a group stays together */
typedef struct glist {
    uint32_t *id;
    uint32_t n, cap;
} glist;

static int group_fit(const plan_solution *s, const glist *gl, const plan_cfg *c)
{
    int best = -1;
    double bl = INFINITY;
    for (uint32_t k = 0; gl && k < gl->n; k++) {
        const plan_gpu *g = &s->g[gl->id[k]];
        if (!plan_fits(g, c))
            continue;
        double left = plan_leftover(g, c);
        if (left < bl) {
            bl = left;
            best = (int)gl->id[k];
        }
    }
    return best;
}

static double place_rate(const plan_problem *p, plan_solution *s, minfo *mi, uint32_t m,
                         uint32_t cfg, double rate, int group, glist *gl, int *rc)
{
    const plan_model *pm = &p->m[m];
    uint32_t cur = cfg;
    bool tried[PLAN_MAX_TYPES] = {0};
    /* a replica placed on a fallback configuration may have throughput to spare */
    if (mi->spare_gpu >= 0) {
        plan_replica *sp = &s->g[mi->spare_gpu].r[mi->spare_idx];
        double room = pm->cfg[sp->cfg].thr - sp->load;
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
        int gi = group_fit(s, gl, c);
        if (gi < 0)
            gi = plan_best_fit(s, p, c->type, c, -1);
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
            double load = rate < c->thr ? rate : c->thr;
            if ((*rc = plan_add(s, p, (uint32_t)gi, m, cur, load)) < 0)
                return rate;
            rate -= load;
            if (load < c->thr - 1e-9) {
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
            const plan_cfg *x = &pm->cfg[mi->ref_cfg[t]];
            if (plan_best_fit(s, p, t, x, -1) < 0 && plan_type_left(s, p, t) <= 0) {
                /* maybe a smaller configuration fits an open GPU of t */
                for (uint32_t k = 0; k < pm->n_cfg; k++)
                    if (pm->cfg[k].type == t && plan_best_fit(s, p, t, &pm->cfg[k], -1) >= 0 &&
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
                if (plan_best_fit(s, p, pm->cfg[k].type, &pm->cfg[k], -1) >= 0) {
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

/* a home for `load` of model m on GPU k (any type): its own configuration on the
 * same type, else the smallest configuration of m on k's type that carries the
 * load in one replica; -1 if none fits the tentative counters */
static int home_cfg(const plan_problem *p, uint32_t m, uint32_t cfg, double load,
                    uint16_t type, double tc, double tm)
{
    const plan_model *pm = &p->m[m];
    if (pm->cfg[cfg].type == type) {
        const plan_cfg *c = &pm->cfg[cfg];
        return tc + c->creq <= 100 + 1e-9 && tm + c->mreq <= 100 + 1e-9 ? (int)cfg : -1;
    }
    int best = -1;
    double bf = INFINITY;
    for (uint32_t i = 0; i < pm->n_cfg; i++) {
        const plan_cfg *c = &pm->cfg[i];
        if (c->type != type || c->thr < load - 1e-9 || tc + c->creq > 100 + 1e-9 ||
            tm + c->mreq > 100 + 1e-9)
            continue;
        double foot = c->creq + c->mreq;
        if (foot < bf) {
            bf = foot;
            best = (int)i;
        }
    }
    return best;
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
        changed = false;
        uint32_t *order = us_calloc(s->n ? s->n : 1, sizeof *order);
        double *tc = us_calloc(s->n ? s->n : 1, sizeof *tc), *tm = us_calloc(s->n ? s->n : 1, sizeof *tm);
        if (!order || !tc || !tm) {
            us_free(order);
            us_free(tc);
            us_free(tm);
            return USHER_ERR_NOMEM;
        }
        uint32_t no = 0;
        for (uint32_t i = 0; i < s->n; i++)
            if (s->g[i].n)
                order[no++] = i;
        /* by fill, weighted by price: closing an expensive GPU helps most */
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
        for (uint32_t oi = 0; oi < no && !changed; oi++) {
            uint32_t v = order[oi];
            plan_gpu *g = &s->g[v];
            for (uint32_t i = 0; i < s->n; i++) {
                tc[i] = s->g[i].used_c;
                tm[i] = s->g[i].used_m;
            }
            int *dest = us_calloc(g->n ? g->n : 1, sizeof *dest);
            int *dcfg = us_calloc(g->n ? g->n : 1, sizeof *dcfg);
            if (!dest || !dcfg) {
                us_free(dest);
                us_free(dcfg);
                us_free(order);
                us_free(tc);
                us_free(tm);
                return USHER_ERR_NOMEM;
            }
            bool ok = true;
            for (uint32_t r = 0; r < g->n && ok; r++) {
                const plan_replica *rp = &g->r[r];
                int best = -1, bcfg = -1;
                double bl = INFINITY;
                for (uint32_t i = 0; i < s->n; i++) {
                    if (i == v || !s->g[i].n)
                        continue;
                    int c = home_cfg(p, rp->model, rp->cfg, rp->load, s->g[i].type, tc[i], tm[i]);
                    if (c < 0)
                        continue;
                    const plan_cfg *x = &p->m[rp->model].cfg[c];
                    double left = 200 - tc[i] - tm[i] - x->creq - x->mreq;
                    if (left < bl) {
                        bl = left;
                        best = (int)i;
                        bcfg = c;
                    }
                }
                if (best < 0) {
                    ok = false;
                } else {
                    dest[r] = best;
                    dcfg[r] = bcfg;
                    tc[best] += p->m[rp->model].cfg[bcfg].creq;
                    tm[best] += p->m[rp->model].cfg[bcfg].mreq;
                }
            }
            if (ok && g->n) {
                uint32_t nr = g->n;
                for (uint32_t r = 0; r < nr; r++) {
                    plan_replica rp = s->g[v].r[r];
                    int rc = plan_add(s, p, (uint32_t)dest[r], rp.model, (uint32_t)dcfg[r], rp.load);
                    if (rc < 0) {
                        us_free(dest);
                        us_free(dcfg);
                        us_free(order);
                        us_free(tc);
                        us_free(tm);
                        return rc;
                    }
                }
                while (s->g[v].n)
                    plan_remove(s, p, v, s->g[v].n - 1);
                changed = true;
            }
            us_free(dest);
            us_free(dcfg);
        }
        us_free(order);
        us_free(tc);
        us_free(tm);
        plan_compact(s);
    }
    return USHER_OK;
}

static int cmp_dbl_idx(const void *a, const void *b, const double *key)
{
    double x = key[*(const uint32_t *)a], y = key[*(const uint32_t *)b];
    return x < y ? -1 : x > y ? 1 : 0;
}

static _Thread_local const double *g_key;
static int cmp_key_desc(const void *a, const void *b) { return -cmp_dbl_idx(a, b, g_key); }

static int usher_once(const plan_problem *p, plan_solution *s, int force, usher_error *err)
{
    uint32_t n = p->n;
    minfo *mi = us_calloc(n ? n : 1, sizeof *mi);
    int rc = USHER_OK;
    if (!mi)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    /* 1-2: reference configurations and demands */
    for (uint32_t m = 0; m < n; m++) {
        minfo *x = &mi[m];
        x->ref_type = -1;
        double best = INFINITY;
        for (uint16_t t = 0; t < p->nt; t++) {
            int c[1];
            x->ref_cfg[t] = top_cfgs(p, m, t, c, 1) ? c[0] : -1;
            x->cost[t] = x->ref_cfg[t] >= 0 ? cfg_cost(p, m, &p->m[m].cfg[c[0]]) : INFINITY;
            if (x->cost[t] < best && plan_type_left(s, p, t) > 0) {
                best = x->cost[t];
                x->ref_type = t;
            }
        }
        if (force >= 0 && x->ref_cfg[force] >= 0)
            x->ref_type = force;
        if (x->ref_type < 0) /* every type "full" at the start cannot happen; keep the cheapest */
            for (uint16_t t = 0; t < p->nt; t++)
                if (x->ref_cfg[t] >= 0 && (x->ref_type < 0 || x->cost[t] < x->cost[x->ref_type]))
                    x->ref_type = t;
        if (x->ref_type >= 0) {
            const plan_cfg *c = &p->m[m].cfg[x->ref_cfg[x->ref_type]];
            double reps = p->m[m].rate / c->thr;
            x->dc = reps * c->creq;
            x->dm = reps * c->mreq;
        }
        x->group = (int)m;
        x->spare_gpu = -1;
    }
    /* 3: grouping by complementary demand */
    uint32_t *gid = us_calloc(n ? n : 1, sizeof *gid); /* group representative per model */
    double *gd = us_calloc(n ? n : 1, sizeof *gd);     /* sum(C) - sum(M) per group */
    int *gsize = us_calloc(n ? n : 1, sizeof *gsize);
    uint32_t *order = us_calloc(n ? n : 1, sizeof *order);
    if (!gid || !gd || !gsize || !order) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (uint32_t m = 0; m < n; m++) {
        gid[m] = m;
        gsize[m] = 1;
    }
    for (uint32_t m = 0; m < n; m++) /* merge groups start together */
        if (p->m[m].merge_group)
            for (uint32_t k = 0; k < m; k++)
                if (p->m[k].merge_group == p->m[m].merge_group && gsize[gid[k]] < GROUP_MAX) {
                    gsize[gid[k]]++;
                    gsize[m] = 0;
                    gid[m] = gid[k];
                    break;
                }
    for (int pass = 0; pass < 2; pass++) {
        uint32_t ng = 0;
        for (uint32_t m = 0; m < n; m++) {
            if (gid[m] != m)
                continue;
            gd[m] = 0;
            for (uint32_t k = 0; k < n; k++)
                if (gid[k] == m)
                    gd[m] += mi[k].dc - mi[k].dm;
            order[ng++] = m;
        }
        g_key = gd;
        qsort(order, ng, sizeof *order, cmp_key_desc);
        uint32_t i = 0, j = ng ? ng - 1 : 0;
        while (i < j) {
            uint32_t a = order[i], b = order[j];
            if (gd[a] <= 0 || gd[b] >= 0)
                break; /* no complementary pair left */
            if (gsize[a] + gsize[b] > GROUP_MAX) {
                if (gsize[a] >= gsize[b])
                    i++;
                else
                    j--;
                continue;
            }
            for (uint32_t k = 0; k < n; k++)
                if (gid[k] == b)
                    gid[k] = a;
            gsize[a] += gsize[b];
            gsize[b] = 0;
            i++;
            j--;
        }
    }
    /* 4: holistic search per group */
    int *choice = us_calloc(n ? n : 1, sizeof *choice); /* chosen cfg per model */
    if (!choice) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    rep *buf = us_calloc(4096, sizeof *buf);
    if (!buf) {
        us_free(choice);
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (uint32_t g = 0; g < n; g++) {
        if (gid[g] != g)
            continue;
        uint32_t mem[GROUP_MAX];
        int k = 0;
        for (uint32_t m = 0; m < n && k < GROUP_MAX; m++)
            if (gid[m] == g && mi[m].ref_type >= 0)
                mem[k++] = m;
        if (k == 0)
            continue;
        /* the group's candidate types: the members' reference types, then the
         * type cheapest for the group as a whole */
        int types[TOP_TYPES], nt = 0;
        for (int a = 0; a < k && nt < TOP_TYPES; a++) {
            int t = mi[mem[a]].ref_type;
            bool dup = false;
            for (int b = 0; b < nt; b++)
                dup |= types[b] == t;
            if (!dup)
                types[nt++] = t;
        }
        if (nt < TOP_TYPES) {
            int bt = -1;
            double bc = INFINITY;
            for (uint16_t t = 0; t < p->nt; t++) {
                if (t == types[0] || plan_type_left(s, p, t) <= 0)
                    continue;
                double c = 0;
                for (int a = 0; a < k; a++)
                    c += mi[mem[a]].cost[t] * p->m[mem[a]].rate;
                if (c < bc) {
                    bc = c;
                    bt = t;
                }
            }
            if (bt >= 0)
                types[nt++] = bt;
        }
        double best = INFINITY;
        int best_sel[GROUP_MAX];
        for (int a = 0; a < k; a++)
            best_sel[a] = mi[mem[a]].ref_cfg[mi[mem[a]].ref_type];
        for (int ti = 0; ti < nt; ti++) {
            uint16_t t = (uint16_t)types[ti];
            int cand[GROUP_MAX][TOP_CFG], nc[GROUP_MAX];
            bool usable = true;
            for (int a = 0; a < k; a++) {
                nc[a] = top_cfgs(p, mem[a], t, cand[a], TOP_CFG);
                usable &= nc[a] > 0;
            }
            if (!usable)
                continue;
            int idx[GROUP_MAX] = {0};
            for (;;) {
                int nr = 0;
                for (int a = 0; a < k; a++)
                    nr += expand(p, mem[a], (uint32_t)cand[a][idx[a]], p->m[mem[a]].rate,
                                 buf + nr, 4096 - nr);
                qsort(buf, (size_t)nr, sizeof *buf, cmp_rep);
                double c = nr < 4096 ? pack_cost(p, buf, nr, t) : INFINITY;
                if (c < best) {
                    best = c;
                    for (int a = 0; a < k; a++)
                        best_sel[a] = cand[a][idx[a]];
                }
                int a = 0;
                while (a < k && ++idx[a] >= nc[a])
                    idx[a++] = 0;
                if (a == k)
                    break;
            }
        }
        for (int a = 0; a < k; a++)
            choice[mem[a]] = best_sel[a];
    }
    /* 5: placement, compute- and memory-heavy interleaved */
    {
        uint32_t total = 0;
        for (uint32_t m = 0; m < n; m++)
            if (mi[m].ref_type >= 0) {
                const plan_cfg *c = &p->m[m].cfg[choice[m]];
                total += (uint32_t)ceil(p->m[m].rate / c->thr) + 1;
            }
        rep *all = us_calloc(total ? total : 1, sizeof *all);
        rep *ch = us_calloc(total ? total : 1, sizeof *ch), *mh = us_calloc(total ? total : 1, sizeof *mh);
        if (!all || !ch || !mh) {
            us_free(all);
            us_free(ch);
            us_free(mh);
            us_free(buf);
            us_free(choice);
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            goto out;
        }
        uint32_t na = 0;
        /* on a fixed cluster serving what fits matters: the most weight per
         * dollar of capacity first */
        uint32_t *mo = order;
        for (uint32_t m = 0; m < n; m++)
            mo[m] = m;
        double *prio = gd;
        for (uint32_t m = 0; m < n; m++)
            prio[m] = p->objective == PLAN_MAX_GOODPUT
                          ? plan_weight(&p->m[m]) /
                                (mi[m].ref_type >= 0 ? mi[m].cost[mi[m].ref_type] : INFINITY)
                          : 0;
        g_key = prio;
        if (p->objective == PLAN_MAX_GOODPUT)
            qsort(mo, n, sizeof *mo, cmp_key_desc);
        for (uint32_t oi = 0; oi < n; oi++) {
            uint32_t m = mo[oi];
            if (mi[m].ref_type < 0)
                continue;
            na += (uint32_t)expand(p, m, (uint32_t)choice[m], p->m[m].rate, all + na, (int)(total - na));
        }
        uint32_t nch = 0, nmh = 0;
        for (uint32_t i = 0; i < na; i++) {
            if (all[i].cheavy)
                ch[nch++] = all[i];
            else
                mh[nmh++] = all[i];
        }
        if (p->objective == PLAN_MIN_COST) {
            qsort(ch, nch, sizeof *ch, cmp_rep);
            qsort(mh, nmh, sizeof *mh, cmp_rep);
        }
        glist *gl = us_calloc(n ? n : 1, sizeof *gl); /* by group representative */
        if (!gl)
            rc = USHER_ERR_NOMEM;
        uint32_t a = 0, b = 0;
        while ((a < nch || b < nmh) && rc == USHER_OK) {
            rep *r = (b >= nmh || (a < nch && (a <= b))) ? &ch[a++] : &mh[b++];
            double left = place_rate(p, s, &mi[r->model], r->model, r->cfg, r->load,
                                     (int)gid[r->model], &gl[gid[r->model]], &rc);
            (void)left; /* what could not be placed shows as unserved */
        }
        for (uint32_t g = 0; gl && g < n; g++)
            us_free(gl[g].id);
        us_free(gl);
        us_free(all);
        us_free(ch);
        us_free(mh);
    }
    us_free(buf);
    us_free(choice);
    if (rc < 0) {
        rc = us_err_set(err, rc, "out of memory");
        goto out;
    }
    /* 6: consolidation */
    if ((rc = consolidate(p, s)) < 0) {
        rc = us_err_set(err, rc, "out of memory");
        goto out;
    }
    plan_account(s, p);
    /* 7: what the placement left unserved (types exhausted): into any free room */
    for (uint32_t oi = 0; oi < n && rc == USHER_OK; oi++) {
            uint32_t m = order[oi];
            double left = p->m[m].rate - s->served[m];
            if (left > 1e-9 && plan_absorb(s, p, m, &left, -1) < 0)
                rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        }
    /* 8: local search moving load, not replicas (improve.c) */
    if (rc == USHER_OK && plan_improve(s, p, IMPROVE_MAX_GPUS) < 0)
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    plan_account(s, p);
out:
    us_free(mi);
    us_free(gid);
    us_free(gd);
    us_free(gsize);
    us_free(order);
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
int plan_usher(const plan_problem *p, plan_solution *s, usher_error *err)
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
