/*
 * coloc.c - the planner's one feasibility rule (layer 6): may these replicas
 * run together on one GPU? docs/internals/plan.md, "Interference".
 *
 * Every policy decides "does it fit" through plan_fits_with (a placement on a
 * GPU of a solution) or plan_judge (a list of replicas), and every plan is
 * judged by plan_judge again (plan_account, plan_check). The rule:
 *
 *   room      sum(Creq) <= 100% and sum(Mreq) <= 100% (USHER's own rules;
 *             Creq is the MPS share, so the caps never oversubscribe SMs)
 *   and, when the problem plans with the interference model
 *   (plan_problem.interference), the model's prediction over all the GPU's
 *   replicas running back to back (if_predict, the default model):
 *   latency   PLAN_SLO_FACTOR x co-located latency <= the model's SLO
 *   load      planned load <= co-located throughput: the arrival rate up
 *             to which the runtime's batcher meets the SLO for 99% at the
 *             co-located latency (queue.c, a table measured on the
 *             batcher), below the throughput back to back
 *   DRAM      sum(busy x DRAM utilisation) <= 1, busy from the prediction
 *
 * Adding a replica never speeds the others up (the model is monotone), so a
 * GPU that passes keeps passing when replicas leave it. What a replica may be
 * loaded to: plan_cap (its co-located throughput now); placement loads it to
 * plan_target (at most its throughput beside replicas like it), leaving
 * headroom for the neighbours placed after it.
 *
 * Speed. A prediction iterates to a fixed point (about 0.5 us per replica);
 * placement asks many times. Predictions are memoised per problem: the key is
 * the GPU type and the replicas' profile identities without the SLO
 * (plan_cfg.puid, shared by every model of one structure and precision: a
 * prediction does not depend on the SLO, so 10,000 models with distinct SLOs
 * share as many entries as models with one SLO), sorted; the replicas are
 * always predicted in that order (ties by plan_cfg.uid), so a memoised answer
 * is bit for bit the one a fresh prediction gives. The memo is a direct-mapped table (a colliding key replaces the
 * older entry); full keys are compared, so it never answers for another set.
 * Each GPU also remembers the profiles the model refused there for a latency,
 * DRAM or a neighbour's load (plan_gpu.refused): still refused while replicas
 * only arrive and loads only grow; plan_coloc_forget clears it.
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "plan.h"

#define TOL 1e-9        /* relative slack of the latency and load comparisons */
#define MEMO_MAX_N 10   /* replicas of a memoised set: sum(shares) <= 100, shares >= 10 */
#define MEMO_MIN_SLOTS 4096
#define MEMO_MAX_SLOTS 65536

typedef struct memo_slot {
    uint64_t h; /* 0: empty */
    uint16_t type;
    uint8_t n;
    uint32_t uid[MEMO_MAX_N];
    double lat[MEMO_MAX_N], busy[MEMO_MAX_N];
    /* the queueing caps at those latencies (plan_queue_thr), valid for the
     * replicas' per-SLO identities tuid (the caps depend on the SLO) */
    bool has_thr;
    uint32_t tuid[MEMO_MAX_N];
    double thr[MEMO_MAX_N];
} memo_slot;

struct plan_memo {
    memo_slot *slot;
    uint32_t mask;
};

const char *plan_verdict_name(plan_verdict v)
{
    switch (v) {
    case PLAN_FITS: return "fits";
    case PLAN_NO_ROOM: return "shares or memory past 100%";
    case PLAN_MISSES_SLO: return "co-located latency misses the SLO";
    case PLAN_OVERLOADED: return "load above the co-located throughput";
    case PLAN_DRAM_FULL: return "DRAM bandwidth past 100%";
    case PLAN_CANNOT_JUDGE: return "the interference model cannot judge it";
    }
    return "?";
}

void plan_memo_free(plan_problem *p)
{
    if (p->memo) {
        us_free(p->memo->slot);
        us_free(p->memo);
        p->memo = NULL;
    }
}

/* a memo sized to the problem; none when memory is short (predictions then run
 * every time: slower, the same answers) */
void plan_memo_init(plan_problem *p)
{
    if (p->memo)
        return;
    uint32_t slots = MEMO_MIN_SLOTS;
    while (slots < MEMO_MAX_SLOTS && slots < 64u * p->n)
        slots *= 2;
    struct plan_memo *m = us_calloc(1, sizeof *m);
    if (m && !(m->slot = us_calloc(slots, sizeof *m->slot))) {
        us_free(m);
        m = NULL;
    }
    if (m)
        m->mask = slots - 1;
    p->memo = m;
}

int plan_coloc_type(plan_problem *p, uint16_t t, usher_error *err)
{
    usher_error e;
    if (!p->t[t].g)
        return us_err_set(err, USHER_ERR_INVALID, "GPU type %s: not in the catalog", p->t[t].key);
    if (if_device_of(p->t[t].g, &p->t[t].dev, &e) < 0) {
        memset(&p->t[t].dev, 0, sizeof p->t[t].dev);
        return us_err_set(err, USHER_ERR_INVALID, "GPU type %s: %s (usher plan --interference "
                          "off plans without the model)", p->t[t].key, e.msg);
    }
    return USHER_OK;
}

int plan_coloc_cfg(const plan_problem *p, plan_cfg *c, const usher_profile *pr, double slo_ms,
                   bool *alone_ok, usher_error *err)
{
    usher_error e;
    const if_device *d = &p->t[c->type].dev;
    if_result res[2];
    if (if_replica_of(pr, &c->ir, &e) < 0 ||
        if_predict(if_model_default(), d, &c->ir, 1, res, &e) < 0)
        return us_err_set(err, USHER_ERR_INVALID, "%s", e.msg);
    /* alone, the model gives its latency alone; its DRAM must fit the device */
    double u = if_dram_util(d, &c->ir);
    *alone_ok = res[0].busy * u <= 1 + TOL;
    /* beside replicas like it filling the rest of the GPU, always busy: one
     * co-runner with the rest of the share, DRAM in proportion (as much as the
     * rule allows) and the same L2 working set */
    c->lat_full = res[0].latency_ms;
    c->thr_full = c->thr;
    c->alone_only = true;
    double s = c->ir.share;
    if (s < 1 - TOL) {
        double uo = fmin(u * (1 - s) / s, fmax(0, 1 - u));
        if_replica pair[2] = {c->ir,
                              {.share = 1 - s,
                               .latency_ms = 1,
                               .gpu_ms = 1,
                               .compute_ms = c->ir.compute_ms / c->ir.gpu_ms,
                               .dram_mb = uo * d->bw_gbs,
                               .l2_mb = c->ir.l2_mb,
                               .batch = 1}};
        if (if_predict(if_model_default(), d, pair, 2, res, &e) < 0)
            return us_err_set(err, USHER_ERR_INVALID, "%s", e.msg);
        c->lat_full = res[0].latency_ms;
        c->thr_full = res[0].throughput;
        c->alone_only = plan_coloc_alone_only(c, slo_ms);
    }
    return USHER_OK;
}

bool plan_coloc_alone_only(const plan_cfg *c, double slo_ms)
{
    return !(c->ir.share < 1 - TOL) || PLAN_SLO_FACTOR * c->lat_full > slo_ms * (1 + TOL);
}

/* ---- predictions --------------------------------------------------------------- */
typedef struct member {
    const plan_cfg *c;
    uint32_t i; /* index in the caller's list */
} member;

/* the co-located latency and busy fraction of each of x[0..n) (in this order),
 * memoised (*slot: the memo's entry for them, NULL if none); false when the
 * model refused the inputs */
static bool predict(const plan_problem *p, uint16_t t, const member *x, uint32_t n, double *lat,
                    double *busy, memo_slot **slot)
{
    *slot = NULL;
    bool keyed = n <= MEMO_MAX_N && p->memo;
    uint32_t uid[MEMO_MAX_N];
    for (uint32_t k = 0; keyed && k < n; k++)
        keyed = (uid[k] = x[k].c->puid) != 0;
    memo_slot *sl = NULL;
    uint64_t h = 0;
    if (keyed) {
        h = 0x9E3779B97F4A7C15ull ^ t;
        for (uint32_t k = 0; k < n; k++) {
            h = (h ^ uid[k]) * 0xFF51AFD7ED558CCDull;
            h ^= h >> 29;
        }
        h |= 1;
        sl = &p->memo->slot[h & p->memo->mask];
        if (sl->h == h && sl->type == t && sl->n == n && memcmp(sl->uid, uid, n * sizeof uid[0]) == 0) {
            memcpy(lat, sl->lat, n * sizeof *lat);
            memcpy(busy, sl->busy, n * sizeof *busy);
            *slot = sl;
            return true;
        }
    }
    if_replica r[IF_MAX_REPLICAS];
    if_result res[IF_MAX_REPLICAS];
    for (uint32_t k = 0; k < n; k++)
        r[k] = x[k].c->ir;
    usher_error err;
    if (if_predict(if_model_default(), &p->t[t].dev, r, n, res, &err) < 0)
        return false;
    for (uint32_t k = 0; k < n; k++) {
        lat[k] = res[k].latency_ms;
        busy[k] = res[k].busy;
    }
    if (sl) {
        *sl = (memo_slot){.h = h, .type = t, .n = (uint8_t)n};
        memcpy(sl->uid, uid, n * sizeof uid[0]);
        memcpy(sl->lat, lat, n * sizeof *lat);
        memcpy(sl->busy, busy, n * sizeof *busy);
        *slot = sl;
    }
    return true;
}

/* the model's verdict on r[0..n) (room already checked) */
static plan_verdict model_verdict(const plan_problem *p, uint16_t t, const plan_replica *r,
                                  uint32_t n, if_result *res, uint32_t *bad)
{
    if (n > IF_MAX_REPLICAS)
        return PLAN_NO_ROOM;
    /* canonical order: by profile identity without the SLO, then with it
     * (insertion sort; n is small) */
    member x[IF_MAX_REPLICAS];
    for (uint32_t k = 0; k < n; k++) {
        member v = {&p->m[r[k].model].cfg[r[k].cfg], k};
        uint32_t j = k;
        while (j > 0 && (x[j - 1].c->puid > v.c->puid ||
                         (x[j - 1].c->puid == v.c->puid && x[j - 1].c->uid > v.c->uid))) {
            x[j] = x[j - 1];
            j--;
        }
        x[j] = v;
    }
    double lat[IF_MAX_REPLICAS], busy[IF_MAX_REPLICAS], thr_of[IF_MAX_REPLICAS];
    memo_slot *sl;
    if (!predict(p, t, x, n, lat, busy, &sl)) {
        if (bad)
            *bad = 0;
        return PLAN_CANNOT_JUDGE;
    }
    /* the load each may carry there: its p99 under random arrivals within the SLO
     * (queue.c); remembered beside the prediction for the same per-SLO profiles */
    bool cached = sl && sl->has_thr;
    for (uint32_t k = 0; cached && k < n; k++)
        cached = sl->tuid[k] == x[k].c->uid;
    for (uint32_t k = 0; k < n; k++)
        thr_of[k] = cached ? sl->thr[k]
                           : plan_queue_thr(p, &p->m[r[x[k].i].model], x[k].c, lat[k]);
    if (sl && !cached) {
        for (uint32_t k = 0; k < n; k++)
            sl->tuid[k] = x[k].c->uid;
        memcpy(sl->thr, thr_of, n * sizeof *thr_of);
        sl->has_thr = true;
    }
    plan_verdict v = PLAN_FITS;
    uint32_t first = UINT32_MAX;
    double dram = 0;
    for (uint32_t k = 0; k < n; k++) {
        const plan_cfg *c = x[k].c;
        const plan_replica *rp = &r[x[k].i];
        double thr = thr_of[k];
        if (res)
            res[x[k].i] = (if_result){.latency_ms = lat[k],
                                      .slowdown = lat[k] / c->ir.latency_ms,
                                      .throughput = thr,
                                      .busy = busy[k]};
        dram += busy[k] * if_dram_util(&p->t[t].dev, &c->ir);
        plan_verdict w = PLAN_SLO_FACTOR * lat[k] > p->m[rp->model].slo_ms * (1 + TOL) ? PLAN_MISSES_SLO
                         : rp->load > thr * (1 + TOL) + TOL                        ? PLAN_OVERLOADED
                                                                                   : PLAN_FITS;
        if (w != PLAN_FITS && x[k].i < first) {
            first = x[k].i;
            v = w;
        }
    }
    if (v == PLAN_FITS && dram > 1 + TOL) {
        v = PLAN_DRAM_FULL;
        first = 0;
    }
    if (bad && v != PLAN_FITS)
        *bad = first;
    return v;
}

plan_verdict plan_judge(const plan_problem *p, uint16_t t, const plan_replica *r, uint32_t n,
                        if_result *res, uint32_t *bad)
{
    double used_c = 0, used_m = 0;
    for (uint32_t k = 0; k < n; k++) {
        const plan_cfg *c = &p->m[r[k].model].cfg[r[k].cfg];
        if (!plan_room_fits(used_c, used_m, c)) {
            if (bad)
                *bad = k;
            return PLAN_NO_ROOM;
        }
        used_c += c->creq;
        used_m += c->mreq;
    }
    if (p->interference)
        return model_verdict(p, t, r, n, res, bad);
    for (uint32_t k = 0; k < n; k++) {
        const plan_cfg *c = &p->m[r[k].model].cfg[r[k].cfg];
        if (res)
            res[k] = (if_result){.latency_ms = c->lat_ms, .slowdown = 1, .throughput = c->thr};
        if (r[k].load > c->thr * (1 + TOL) + TOL) {
            if (bad)
                *bad = k;
            return PLAN_OVERLOADED;
        }
    }
    return PLAN_FITS;
}

/* plan_fits_with's work; shed non-NULL: the GPU's replicas may give up load
 * (their loads count as 0 in the verdict) and shed[k] receives what replica k
 * would carry above its new co-located throughput */
static bool fits(plan_solution *s, const plan_problem *p, uint32_t gpu, uint32_t m, uint32_t cfg,
                 double load, int skip, double *thr, double *shed)
{
    plan_gpu *g = &s->g[gpu];
    const plan_cfg *c = &p->m[m].cfg[cfg];
    for (uint32_t k = 0; shed && k < g->n; k++)
        shed[k] = 0;
    if (g->type != c->type)
        return false;
    double uc = g->used_c, um = g->used_m;
    if (skip >= 0) {
        const plan_cfg *o = &p->m[g->r[skip].model].cfg[g->r[skip].cfg];
        uc -= o->creq;
        um -= o->mreq;
    }
    if (!plan_room_fits(uc, um, c))
        return false;
    if (s->sharing != PLAN_SHARE_MODEL || !p->interference) {
        if (thr)
            *thr = c->thr;
        return load <= c->thr * (1 + TOL) + TOL;
    }
    if (g->n + 1 > IF_MAX_REPLICAS)
        return false;
    for (uint32_t k = 0; skip < 0 && c->uid && k < g->n_refused; k++)
        if (g->refused[k] == c->uid)
            return false;
    plan_replica r[IF_MAX_REPLICAS];
    uint32_t at[IF_MAX_REPLICAS];
    if_result res[IF_MAX_REPLICAS];
    uint32_t n = 0;
    for (uint32_t k = 0; k < g->n; k++)
        if ((int)k != skip) {
            at[n] = k;
            r[n] = g->r[k];
            if (shed)
                r[n].load = 0;
            n++;
        }
    r[n++] = (plan_replica){.model = m, .cfg = cfg, .load = load};
    uint32_t bad = 0;
    plan_verdict v = model_verdict(p, g->type, r, n, res, &bad);
    if (v != PLAN_FITS) {
        /* a latency or DRAM refusal, or a neighbour's load above its co-located
         * throughput, holds while replicas only arrive and loads only grow */
        if (skip < 0 && c->uid &&
            (v == PLAN_MISSES_SLO || v == PLAN_DRAM_FULL || (v == PLAN_OVERLOADED && bad + 1 < n))) {
            g->refused[g->next_refused] = c->uid;
            g->next_refused = (uint8_t)((g->next_refused + 1) % PLAN_REFUSED);
            if (g->n_refused < PLAN_REFUSED)
                g->n_refused++;
        }
        return false;
    }
    for (uint32_t k = 0; shed && k + 1 < n; k++) {
        double over = g->r[at[k]].load - res[k].throughput;
        shed[at[k]] = over > 0 ? over : 0;
    }
    if (thr)
        *thr = res[n - 1].throughput;
    return true;
}

bool plan_fits_with(plan_solution *s, const plan_problem *p, uint32_t gpu, uint32_t m,
                    uint32_t cfg, double load, int skip, double *thr)
{
    return fits(s, p, gpu, m, cfg, load, skip, thr, NULL);
}

bool plan_fits_shedding(plan_solution *s, const plan_problem *p, uint32_t gpu, uint32_t m,
                        uint32_t cfg, double load, int skip, double *thr, double *shed)
{
    return fits(s, p, gpu, m, cfg, load, skip, thr, shed);
}

double plan_cap(const plan_solution *s, const plan_problem *p, const plan_replica *r)
{
    return s->sharing == PLAN_SHARE_MODEL && p->interference ? r->thr_co
                                                             : p->m[r->model].cfg[r->cfg].thr;
}

double plan_target(const plan_solution *s, const plan_problem *p, const plan_replica *r)
{
    double cap = plan_cap(s, p, r), t = plan_thr(&p->m[r->model].cfg[r->cfg]);
    return s->sharing == PLAN_SHARE_MODEL && p->interference && t < cap ? t : cap;
}

void plan_coloc_forget(plan_solution *s, uint32_t gpu)
{
    s->g[gpu].n_refused = s->g[gpu].next_refused = 0;
}

void plan_coloc_refresh(plan_solution *s, const plan_problem *p, uint32_t gpu)
{
    plan_gpu *g = &s->g[gpu];
    if (s->sharing == PLAN_SHARE_TIME || g->n == 0)
        return;
    if (!p->interference || g->n > IF_MAX_REPLICAS) {
        for (uint32_t k = 0; k < g->n; k++) {
            const plan_cfg *c = &p->m[g->r[k].model].cfg[g->r[k].cfg];
            g->r[k].lat_co = p->interference ? INFINITY : c->lat_ms;
            g->r[k].thr_co = p->interference ? 0 : c->thr;
        }
        return;
    }
    if_result res[IF_MAX_REPLICAS];
    if (model_verdict(p, g->type, g->r, g->n, res, NULL) == PLAN_CANNOT_JUDGE) {
        for (uint32_t k = 0; k < g->n; k++) {
            g->r[k].lat_co = INFINITY;
            g->r[k].thr_co = 0;
        }
        return;
    }
    for (uint32_t k = 0; k < g->n; k++) {
        g->r[k].lat_co = res[k].latency_ms;
        g->r[k].thr_co = res[k].throughput;
    }
}
