/*
 * solution.c - what every policy shares (layer 6): building the candidate
 * configurations from the estimator, and the GPU/replica bookkeeping.
 *
 * Configurations. For every model, GPU type, batch size (1, 2, 4, ..., 128)
 * and MPS share (10%, 20%, ..., 100%) the estimator gives latency and
 * memory; a configuration is feasible when PLAN_SLO_FACTOR x latency <= SLO
 * (a request may wait for the batch being executed, then its own: the rule
 * Nexus and Clockwork use) and its memory fits. The replica reserves its
 * share as compute (Creq = share, as MPS enforces) and its Mreq as memory.
 * Dominated configurations (another one of the same type needs no more
 * compute and memory and serves at least as much) are dropped; of the rest,
 * per GPU type, the PLAN_KEEP_CHEAP cheapest per request/s, the
 * PLAN_KEEP_SMALL smallest, the fastest at 100% and at 50% share (what
 * the temporal and static-MPS baselines run), and at every share kept its
 * largest batch (re-planning raises a running replica's batch without a
 * restart) are kept. Every policy, the
 * exact optimum included, chooses among these candidates.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/err.h"
#include "core/hash.h"
#include "plan.h"

static const int batches[] = {1, 2, 4, 8, 16, 32, 64, 128};

static void idx_free(plan_solution *s);

static int dram_per_share(plan_problem *p);

/* the shares the baselines run at (temporal policies: the whole GPU; static
 * MPS: halves) stay candidates even where smaller shares serve cheaper */
static bool baseline_share(double share) { return share == 100 || share == 50; }

static bool dominated(const plan_cfg *a, const plan_cfg *b, bool model)
{
    /* is a dominated by b? */
    if (baseline_share(a->share) && b->share != a->share)
        return false;
    /* with the interference model, b must also share its GPU at least as well:
     * as fast beside others, as little DRAM, and not alone-only where a is not */
    if (model && (plan_thr(b) < plan_thr(a) || b->dram_pct > a->dram_pct ||
                  (b->alone_only && !a->alone_only)))
        return false;
    return a->type == b->type && b->creq <= a->creq && b->mreq <= a->mreq && b->thr >= a->thr &&
           (b->creq < a->creq || b->mreq < a->mreq || b->thr > a->thr);
}

/*
 * Profiling in two steps, so that its cost grows with the model structures,
 * not with the SLOs. A template per (structure, precision) holds every
 * (GPU type, batch, share) of it with the estimator's figures and, with the
 * interference model, the prediction alone and beside replicas like it
 * (plan_coloc_cfg: the same for every SLO). Each distinct (structure, SLO,
 * precision) then filters the template (twice the latency within the SLO,
 * memory within the GPU, alone_only against that SLO) and prunes the
 * survivors; models that share all three share the result. The uids come
 * out as if each (structure, SLO, precision) had been profiled afresh in
 * model order, so plans are the same as profiling every SLO from the
 * estimator (tests/test_plan.c compares both, plan_problem.profile_direct).
 * A template is freed after the last model of its structure.
 */
typedef struct tpl_entry {
    plan_cfg c;        /* uid 0, alone_only for no SLO (set by the filter) */
    bool alone_ok;     /* the model accepts it alone (SLO aside) */
    bool coloc_failed; /* plan_coloc_cfg refused it: redone for the message if needed */
} tpl_entry;

typedef struct tpl {
    tpl_entry *x;      /* type-major, then batch, then share, as profiled */
    uint32_t n;        /* entries made (all of them unless est_rc < 0) */
    int est_rc;        /* the estimator's error at entry n, or 0 */
    usher_error est_err;
    uint16_t est_type; /* the type of entry n (for the error's prefix) */
    double fastest_ms; /* batch 1, whole GPU, fits: over the types profiled before entry n */
    char fastest_gpu[64];
    uint32_t last;     /* the last model that uses it */
    uint32_t puid0;    /* entry i's plan_cfg.puid is puid0 + i + 1 */
} tpl;

#define N_BATCHES (sizeof batches / sizeof batches[0])
/* configurations of one model on one GPU type at most */
#define CFG_PER_TYPE (N_BATCHES * (100 / PLAN_SHARE_STEP))

static uint16_t same_type(const plan_problem *p, uint16_t t);
static uint32_t drop_dominated(plan_cfg *c, uint32_t n, bool model);
static void keep_type(plan_cfg *c, uint32_t k, uint16_t t, uint32_t *kept);

/* the estimate of `model` at entry (type t, batch index bi, share sh), model m's dims
 * bound (a dim given as `batch` to the entry's batch) */
static int tpl_estimate(const plan_problem *p, usher_estimator *e, usher_model *model,
                        const plan_model *m, uint16_t t, size_t bi, int sh, usher_profile *pr,
                        usher_error *err)
{
    usher_dim_binding b[PLAN_MAX_DIMS];
    if (m->n_dims > PLAN_MAX_DIMS)
        return us_err_set(err, USHER_ERR_LIMIT, "more than %d dims bound", PLAN_MAX_DIMS);
    for (uint32_t k = 0; k < m->n_dims; k++)
        b[k] = (usher_dim_binding){.name = m->dims[k].name,
                                   .value = m->dims[k].value ? m->dims[k].value : batches[bi]};
    usher_estimate_params ep = usher_estimate_default_params();
    ep.gpu = p->t[t].key;
    ep.batch = batches[bi];
    ep.share_pct = sh;
    ep.precision = (usher_precision)m->precision;
    ep.dims = m->n_dims ? b : NULL;
    ep.n_dims = m->n_dims;
    return usher_estimate(e, model, &ep, pr, err);
}

uint64_t plan_dims_hash(const plan_model *m)
{
    if (!m->n_dims)
        return 0;
    us_hash_state h;
    us_hash_init(&h, 0x64696d73ULL);
    for (uint32_t k = 0; k < m->n_dims; k++) {
        us_hash_update(&h, m->dims[k].name, strlen(m->dims[k].name) + 1);
        us_hash_update(&h, &m->dims[k].value, sizeof m->dims[k].value);
    }
    return us_hash_final(&h) | 1; /* never 0: none */
}

/*
 * The queueing cap's L(1) (queue.c) for the entry being made (batch index bi,
 * the full batch's latency d; the same share's smaller batches already in
 * T): the intercept of the lowest line through (B, d) that lies on or above
 * every profiled L(k), k = 1, 2, 4, ... < B. The cap is measured with batch
 * latencies affine from L(1) to D; a latency curve above that chord (concave:
 * inception-v3 on a T4, batch 16, met the SLO for 98.7-99.1% at the cap with
 * its own L(1)) is then judged as the line above it.
 */
static double affine_l1(const tpl *T, size_t bi, double d)
{
    if (bi == 0)
        return d;
    const size_t ns = 100 / PLAN_SHARE_STEP, cur = T->n - 1;
    double b = batches[bi], l1 = T->x[cur - bi * ns].c.lat_ms;
    for (size_t bj = 1; bj < bi; bj++) {
        double f = (batches[bj] - 1) / (b - 1), lk = T->x[cur - (bi - bj) * ns].c.lat_ms;
        double v = (lk - f * d) / (1 - f);
        if (v > l1)
            l1 = v;
    }
    return l1;
}

/* every (type, batch, share) of `model` at m's precision and dims */
static int tpl_build(const plan_problem *p, usher_estimator *e, usher_model *model,
                     const plan_model *m, tpl *T)
{
    uint32_t cap = p->nt * (uint32_t)CFG_PER_TYPE;
    T->x = us_calloc(cap ? cap : 1, sizeof *T->x);
    if (!T->x)
        return USHER_ERR_NOMEM;
    T->n = 0;
    T->est_rc = 0;
    T->fastest_ms = INFINITY;
    T->fastest_gpu[0] = 0;
    for (uint16_t t = 0; t < p->nt; t++) {
        if (same_type(p, t) != t)
            continue;
        for (size_t bi = 0; bi < N_BATCHES; bi++)
            for (int sh = PLAN_SHARE_STEP; sh <= 100; sh += PLAN_SHARE_STEP) {
                usher_profile pr;
                int rc = tpl_estimate(p, e, model, m, t, bi, sh, &pr, &T->est_err);
                if (rc < 0) {
                    T->est_rc = rc;
                    T->est_type = t;
                    return USHER_OK;
                }
                if (batches[bi] == 1 && sh == 100 && pr.mreq_pct <= 100 &&
                    pr.latency_ms < T->fastest_ms) {
                    T->fastest_ms = pr.latency_ms;
                    snprintf(T->fastest_gpu, sizeof T->fastest_gpu, "%s", p->t[t].key);
                }
                tpl_entry *y = &T->x[T->n++];
                plan_cfg *x = &y->c;
                *x = (plan_cfg){.type = t,
                                .batch = batches[bi],
                                .share = sh,
                                .creq = sh,
                                .mreq = pr.mreq_pct,
                                .mreq_mb = pr.mreq_mb,
                                .thr = pr.throughput,
                                .thr_nom = pr.throughput,
                                .lat_ms = pr.latency_ms,
                                .lat1_ms = affine_l1(T, bi, pr.latency_ms),
                                .power_w = pr.avg_power_w,
                                .bw_gbs = pr.bandwidth_gbs};
                y->alone_ok = true;
                if (pr.mreq_pct > 100)
                    continue; /* never a candidate: nothing more to know */
                const gpu_type *gt = p->t[t].g;
                if (gt && gpu_known(gt, GPU_F_MEM_BW_GBS) && gt->mem_bw_gbs > 0)
                    x->dram_pct = 100 * pr.bandwidth_gbs / gt->mem_bw_gbs;
                usher_error quiet;
                if (p->interference &&
                    plan_coloc_cfg(p, x, &pr, INFINITY, &y->alone_ok, &quiet) < 0)
                    y->coloc_failed = true;
                /* without the model: its inputs where they exist, unused by planning */
                if (!p->interference && p->t[t].dev.bw_gbs > 0 &&
                    if_replica_of(&pr, &x->ir, &quiet) < 0)
                    memset(&x->ir, 0, sizeof x->ir);
            }
    }
    return USHER_OK;
}

/* model m's candidates from template T: uids 1, 2, ... in the order profiling
 * met them (*n_uid of them); errors as profiling them afresh gives */
static int tpl_filter(plan_problem *p, usher_estimator *e, usher_model *model, const tpl *T,
                      plan_model *m, uint32_t *n_uid, usher_error *err)
{
    uint32_t cap = p->nt * (uint32_t)CFG_PER_TYPE;
    plan_cfg *c = us_calloc(cap ? cap : 1, sizeof *c);
    if (!c)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    uint32_t n = 0, uid = 0, i = 0;
    m->fastest_ms = INFINITY;
    for (uint16_t t = 0; t < p->nt; t++) {
        /* another entry of the same GPU type (another node): same candidates */
        uint16_t src = same_type(p, t);
        if (src != t) {
            for (uint32_t a = 0, end = n; a < end; a++)
                if (c[a].type == src) {
                    c[n] = c[a];
                    c[n++].type = t;
                }
            continue;
        }
        for (; i < T->n && T->x[i].c.type == t; i++) {
            const tpl_entry *y = &T->x[i];
            if (y->c.batch == 1 && y->c.share == 100 && y->c.mreq <= 100 &&
                y->c.lat_ms < m->fastest_ms) {
                m->fastest_ms = y->c.lat_ms;
                snprintf(m->fastest_gpu, sizeof m->fastest_gpu, "%s", p->t[t].key);
            }
            if (PLAN_SLO_FACTOR * y->c.lat_ms > m->slo_ms || y->c.mreq > 100)
                continue;
            uid++;
            if (y->coloc_failed) {
                /* the message, from the estimator's cache */
                usher_profile pr;
                plan_cfg x = y->c;
                bool ok;
                size_t bi = 0;
                while (batches[bi] != y->c.batch)
                    bi++;
                int rc = tpl_estimate(p, e, model, m, t, bi, (int)y->c.share, &pr, err);
                if (rc == USHER_OK)
                    rc = plan_coloc_cfg(p, &x, &pr, m->slo_ms, &ok, err);
                if (rc == USHER_OK)
                    rc = us_err_set(err, USHER_ERR_INTERNAL, "the interference model changed");
                us_free(c);
                return us_err_prefix(err, USHER_ERR_INVALID, "model '%s' on %s: ", m->name,
                                     p->t[t].key);
            }
            if (!y->alone_ok)
                continue;
            c[n] = y->c;
            c[n].uid = uid;
            c[n].puid = T->puid0 + i + 1;
            if (p->interference)
                c[n].alone_only = plan_coloc_alone_only(&c[n], m->slo_ms);
            /* the load it may carry under random arrivals (queue.c): alone, and
             * beside replicas like it */
            c[n].thr = plan_queue_thr(p, m, &c[n], c[n].lat_ms);
            if (p->interference)
                c[n].thr_full = plan_queue_thr(p, m, &c[n], c[n].lat_full);
            n++;
        }
        if (T->est_rc < 0 && T->est_type == t) {
            *err = T->est_err;
            us_free(c);
            return us_err_prefix(err, T->est_rc, "model '%s' on %s: ", m->name, p->t[t].key);
        }
    }
    uint32_t k = drop_dominated(c, n, p->interference);
    /* keep, per GPU type, the PLAN_KEEP_CHEAP cheapest per request/s and the
     * PLAN_KEEP_SMALL with the smallest footprint (for small residual rates):
     * the candidate set every policy, the exact optimum included, works on */
    uint32_t kept = 0;
    for (uint16_t t = 0; t < p->nt; t++)
        keep_type(c, k, t, &kept);
    m->cfg = c;
    m->n_cfg = kept;
    *n_uid = uid;
    return USHER_OK;
}

int plan_problem_profile(plan_problem *p, usher_estimator *e, usher_model **models,
                         usher_error *err)
{
    /* the interference model's view of every GPU type (errors name the type);
     * without the model, where the catalog allows (to judge such plans after) */
    for (uint16_t t = 0; t < p->nt; t++) {
        usher_error quiet;
        int rc = plan_coloc_type(p, t, p->interference ? err : &quiet);
        if (rc < 0 && p->interference)
            return rc;
    }
    if (p->interference)
        plan_memo_init(p);
    /* models that share a file, an SLO, a precision and dims share their candidates;
     * those that share a file, a precision and dims share a template */
    us_map same, tpls;
    us_map_init(&same);
    us_map_init(&tpls);
    char (*keys)[128] = us_calloc(p->n ? p->n : 1, sizeof *keys);
    char (*tkeys)[64] = us_calloc(p->n ? p->n : 1, sizeof *tkeys);
    tpl *T = us_calloc(p->n ? p->n : 1, sizeof *T); /* by first model of its structure */
    uint32_t *tof = us_calloc(p->n ? p->n : 1, sizeof *tof);
    int rc = USHER_OK;
    if (!keys || !tkeys || !T || !tof) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* which template each model uses, and the last model of each */
    for (uint32_t i = 0; i < p->n; i++) {
        snprintf(tkeys[i], sizeof tkeys[i], "%p/%d/%016llx", (void *)models[i],
                 p->m[i].precision, (unsigned long long)plan_dims_hash(&p->m[i]));
        void *prev = NULL;
        if (us_map_put(&tpls, tkeys[i], (void *)(uintptr_t)(i + 1), &prev) < 0) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            goto out;
        }
        tof[i] = prev && !p->profile_direct ? (uint32_t)((uintptr_t)prev - 1) : i;
        T[tof[i]].last = i;
    }
    for (uint32_t i = 0; i < p->n && rc == USHER_OK; i++) {
        plan_model *m = &p->m[i];
        snprintf(keys[i], sizeof keys[i], "%p/%a/%a/%d/%016llx", (void *)models[i], m->slo_ms,
                 m->arrival_cv, m->precision, (unsigned long long)plan_dims_hash(m));
        void *prev = NULL;
        if (us_map_put(&same, keys[i], (void *)(uintptr_t)(i + 1), &prev) < 0) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            break;
        }
        tpl *t = &T[tof[i]];
        if (prev) {
            const plan_model *o = &p->m[(uintptr_t)prev - 1];
            m->cfg = us_calloc(o->n_cfg ? o->n_cfg : 1, sizeof *m->cfg);
            if (!m->cfg) {
                rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
                break;
            }
            if (o->n_cfg)
                memcpy(m->cfg, o->cfg, o->n_cfg * sizeof *m->cfg);
            m->n_cfg = o->n_cfg;
            m->fastest_ms = o->fastest_ms;
            memcpy(m->fastest_gpu, o->fastest_gpu, sizeof m->fastest_gpu);
        } else {
            if (!t->x) {
                if (tpl_build(p, e, models[i], m, t) < 0) {
                    rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
                    break;
                }
                t->puid0 = p->next_puid;
                p->next_puid += t->n;
            }
            uint32_t n_uid = 0;
            rc = tpl_filter(p, e, models[i], t, m, &n_uid, err);
            if (rc < 0)
                break;
            for (uint32_t c = 0; c < m->n_cfg; c++)
                m->cfg[c].uid += p->next_uid;
            p->next_uid += n_uid;
        }
        if (t->last == i) {
            us_free(t->x);
            t->x = NULL;
        }
    }
out:
    for (uint32_t i = 0; T && i < p->n; i++)
        us_free(T[i].x);
    us_map_free(&same);
    us_map_free(&tpls);
    us_free(keys);
    us_free(tkeys);
    us_free(T);
    us_free(tof);
    if (rc == USHER_OK && p->interference)
        rc = dram_per_share(p) < 0 ? us_err_set(err, USHER_ERR_NOMEM, "out of memory") : rc;
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* per GPU type, the median DRAM % per % of share of its candidates: what a
 * replica's DRAM use is measured against in USHER's classification */
static int dram_per_share(plan_problem *p)
{
    uint32_t total = 0;
    for (uint32_t m = 0; m < p->n; m++)
        total += p->m[m].n_cfg;
    double *v = us_calloc(total ? total : 1, sizeof *v);
    if (!v)
        return USHER_ERR_NOMEM;
    for (uint16_t t = 0; t < p->nt; t++) {
        uint32_t n = 0;
        for (uint32_t m = 0; m < p->n; m++)
            for (uint32_t c = 0; c < p->m[m].n_cfg; c++)
                if (p->m[m].cfg[c].type == t && p->m[m].cfg[c].creq > 0)
                    v[n++] = p->m[m].cfg[c].dram_pct / p->m[m].cfg[c].creq;
        qsort(v, n, sizeof *v, cmp_double);
        p->t[t].dram_per_share = n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0;
    }
    us_free(v);
    return USHER_OK;
}

/* the earlier entry of the same GPU type as entry t (another node), or t */
static uint16_t same_type(const plan_problem *p, uint16_t t)
{
    for (uint16_t k = 0; k < t; k++)
        if (strcmp(p->t[k].key, p->t[t].key) == 0)
            return k;
    return t;
}

/* drop dominated configurations; returns how many are left */
static uint32_t drop_dominated(plan_cfg *c, uint32_t n, bool model)
{
    uint32_t k = 0;
    for (uint32_t a = 0; a < n; a++) {
        bool dom = false;
        for (uint32_t b = 0; b < n && !dom; b++)
            dom = b != a && dominated(&c[a], &c[b], model);
        if (!dom)
            c[k++] = c[a];
    }
    return k;
}

/* the `want` best of c[idx[0..ni)] not kept yet by one measure: pass 0 the
 * cheapest per request/s, 1 the smallest, 2 and 3 the fastest at 100% and 50% */
static void keep_best(const plan_cfg *c, const uint32_t *idx, uint32_t ni, int pass, bool *keep)
{
    int want = pass == 0 ? PLAN_KEEP_CHEAP : pass == 1 ? PLAN_KEEP_SMALL : 1;
    for (int w = 0; w < want; w++) {
        int best = -1;
        double bv = INFINITY;
        for (uint32_t q = 0; q < ni; q++) {
            const plan_cfg *x = &c[idx[q]];
            if (keep[q] || (pass >= 2 && x->share != (pass == 2 ? 100 : 50)))
                continue;
            double foot = x->creq > x->mreq ? x->creq : x->mreq;
            double v = pass == 0 ? plan_foot(x) / plan_thr(x) : pass == 1 ? foot : -x->thr;
            if (v < bv) {
                bv = v;
                best = (int)q;
            }
        }
        if (best >= 0)
            keep[best] = true;
    }
}

/* the candidates of type t among c[0..k), moved to c[*kept...] (kept <= the
 * first of them, so the move never overwrites one still to read) */
static void keep_type(plan_cfg *c, uint32_t k, uint16_t t, uint32_t *kept)
{
    bool keep[CFG_PER_TYPE] = {0};
    uint32_t idx[CFG_PER_TYPE], ni = 0;
    for (uint32_t a = 0; a < k; a++)
        if (c[a].type == t)
            idx[ni++] = a;
    for (int pass = 0; pass < 4; pass++)
        keep_best(c, idx, ni, pass, keep);
    /* at each share kept, the largest batch too: re-planning can raise a
     * running replica's batch size without restarting it */
    bool grow[CFG_PER_TYPE] = {0};
    for (uint32_t q = 0; q < ni; q++) {
        if (!keep[q])
            continue;
        int best = -1;
        for (uint32_t r = 0; r < ni; r++)
            if (c[idx[r]].share == c[idx[q]].share && (best < 0 || c[idx[r]].thr > c[idx[best]].thr))
                best = (int)r;
        if (best >= 0)
            grow[best] = true;
    }
    for (uint32_t q = 0; q < ni; q++)
        if (keep[q] || grow[q])
            c[(*kept)++] = c[idx[q]];
}

void plan_problem_free(plan_problem *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->n; i++) {
        us_free(p->m[i].cfg);
        us_free(p->m[i].name);
        us_free(p->m[i].path);
        us_free(p->m[i].group);
        for (uint32_t k = 0; p->m[i].dims && k < p->m[i].n_dims; k++)
            us_free(p->m[i].dims[k].name);
        us_free(p->m[i].dims);
    }
    us_free(p->m);
    p->m = NULL;
    p->n = 0;
    plan_memo_free(p);
    plan_nodes_free(p);
    plan_merges_free(p);
}

int plan_solution_init(plan_solution *s, const plan_problem *p, const char *policy)
{
    memset(s, 0, sizeof *s);
    snprintf(s->policy, sizeof s->policy, "%s", policy);
    s->n_models = p->n;
    s->served = us_calloc(p->n ? p->n : 1, sizeof *s->served);
    return s->served ? USHER_OK : USHER_ERR_NOMEM;
}

void plan_solution_free(plan_solution *s)
{
    if (!s)
        return;
    idx_free(s);
    for (uint32_t i = 0; i < s->n; i++)
        us_free(s->g[i].r);
    us_free(s->g);
    us_free(s->served);
    memset(s, 0, sizeof *s);
}

int64_t plan_type_left(const plan_solution *s, const plan_problem *p, uint16_t type)
{
    int64_t limit = p->t[type].count >= 0 ? p->t[type].count : p->t[type].max;
    return limit - s->used_type[type];
}

/* ---- the best-fit index: per GPU type, GPUs bucketed by free compute ---------
 * Bucket b of type t holds the GPUs with 10b <= free compute < 10(b+1) (b 10:
 * all free). Built on the first global best-fit query, kept up to date by
 * plan_open/plan_add/plan_remove, dropped by plan_compact. */
#define BUCKETS 11
#define BUCKET_SCAN 256 /* entries of one bucket examined per query */

static int bucket_of(const plan_gpu *g)
{
    int b = (int)floor((100 - g->used_c) / 10 + 1e-9);
    return b < 0 ? 0 : b >= BUCKETS ? BUCKETS - 1 : b;
}

static int idx_put(plan_solution *s, uint32_t i)
{
    plan_gpu *g = &s->g[i];
    plan_bucket *b = &s->bk[g->type * BUCKETS + bucket_of(g)];
    if (b->n == b->cap) {
        uint32_t nc = b->cap ? b->cap * 2 : 16;
        uint32_t *ni = us_realloc(b->id, nc * sizeof *ni);
        if (!ni)
            return USHER_ERR_NOMEM;
        b->id = ni;
        b->cap = nc;
    }
    g->bk = (uint32_t)(g->type * BUCKETS + bucket_of(g));
    g->bpos = b->n;
    b->id[b->n++] = i;
    return USHER_OK;
}

static void idx_del(plan_solution *s, uint32_t i)
{
    plan_gpu *g = &s->g[i];
    plan_bucket *b = &s->bk[g->bk];
    uint32_t last = b->id[--b->n];
    b->id[g->bpos] = last;
    s->g[last].bpos = g->bpos;
}

static void idx_free(plan_solution *s)
{
    if (!s->bk)
        return;
    for (uint32_t k = 0; k < PLAN_MAX_TYPES * BUCKETS; k++)
        us_free(s->bk[k].id);
    us_free(s->bk);
    s->bk = NULL;
}

/* after used_c of GPU i changed: move it to its bucket (on failure, drop the
 * index: queries rebuild it) */
static void idx_update(plan_solution *s, uint32_t i)
{
    if (!s->bk || s->g[i].bk == (uint32_t)(s->g[i].type * BUCKETS + bucket_of(&s->g[i])))
        return;
    idx_del(s, i);
    if (idx_put(s, i) < 0)
        idx_free(s);
}

static int idx_build(plan_solution *s)
{
    s->bk = us_calloc(PLAN_MAX_TYPES * BUCKETS, sizeof *s->bk);
    if (!s->bk)
        return USHER_ERR_NOMEM;
    for (uint32_t i = 0; i < s->n; i++)
        if (idx_put(s, i) < 0) {
            idx_free(s);
            return USHER_ERR_NOMEM;
        }
    return USHER_OK;
}

int plan_open(plan_solution *s, const plan_problem *p, uint16_t type, int group)
{
    if (plan_type_left(s, p, type) <= 0)
        return -1;
    if (s->n == s->cap) {
        uint32_t nc = s->cap ? s->cap * 2 : 64;
        plan_gpu *ng = us_realloc(s->g, (size_t)nc * sizeof *ng);
        if (!ng)
            return -1;
        s->g = ng;
        s->cap = nc;
    }
    plan_gpu *g = &s->g[s->n];
    memset(g, 0, sizeof *g);
    g->type = type;
    g->group = group;
    s->used_type[type]++;
    if (s->bk && idx_put(s, s->n) < 0)
        idx_free(s);
    return (int)s->n++;
}

int plan_push(plan_solution *s, uint32_t gpu, plan_replica r)
{
    plan_gpu *g = &s->g[gpu];
    if (g->n == g->cap) {
        uint32_t nc = g->cap ? g->cap * 2 : 4;
        plan_replica *nr = us_realloc(g->r, (size_t)nc * sizeof *nr);
        if (!nr)
            return USHER_ERR_NOMEM;
        g->r = nr;
        g->cap = nc;
    }
    g->r[g->n++] = r;
    return USHER_OK;
}

int plan_add(plan_solution *s, const plan_problem *p, uint32_t gpu, uint32_t model, uint32_t cfg,
             double load)
{
    if (plan_push(s, gpu, (plan_replica){model, cfg, load, 0, 0}) < 0)
        return USHER_ERR_NOMEM;
    plan_gpu *g = &s->g[gpu];
    const plan_cfg *c = &p->m[model].cfg[cfg];
    g->used_c += c->creq;
    g->used_m += c->mreq;
    plan_coloc_refresh(s, p, gpu);
    /* a replica runs on a GPU of its configuration's type, at most at its full
     * load (beside the others, where the policy plans with the model) */
    US_DEBUG_ASSERT(c->type == g->type);
    US_DEBUG_ASSERT(load >= 0 && load <= plan_cap(s, p, &g->r[g->n - 1]) * (1 + 1e-6) + 1e-6);
    idx_update(s, gpu);
    return USHER_OK;
}

/* remove replica idx of GPU gpu; refresh: recompute the others' co-located figures */
static void remove_one(plan_solution *s, const plan_problem *p, uint32_t gpu, uint32_t idx,
                       bool refresh)
{
    plan_gpu *g = &s->g[gpu];
    US_DEBUG_ASSERT(idx < g->n);
    const plan_cfg *c = &p->m[g->r[idx].model].cfg[g->r[idx].cfg];
    g->used_c -= c->creq;
    g->used_m -= c->mreq;
    /* what a GPU holds is the sum of what was added to it: never below nothing */
    US_DEBUG_ASSERT(g->used_c > -1e-6 && g->used_m > -1e-6);
    if (g->used_c < 1e-9)
        g->used_c = 0;
    if (g->used_m < 1e-9)
        g->used_m = 0;
    g->r[idx] = g->r[--g->n];
    plan_coloc_forget(s, gpu);
    if (refresh)
        plan_coloc_refresh(s, p, gpu);
    idx_update(s, gpu);
}

void plan_remove(plan_solution *s, const plan_problem *p, uint32_t gpu, uint32_t idx)
{
    remove_one(s, p, gpu, idx, true);
}

void plan_unadd(plan_solution *s, const plan_problem *p, uint32_t gpu, double used_c, double used_m)
{
    plan_gpu *g = &s->g[gpu];
    US_DEBUG_ASSERT(g->n > 0);
    g->n--;
    g->used_c = used_c;
    g->used_m = used_m;
    plan_coloc_forget(s, gpu);
    plan_coloc_refresh(s, p, gpu);
    idx_update(s, gpu);
}

typedef struct keyed {
    double key;
    uint32_t id, pos;
} keyed;

static int cmp_keyed_desc(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key)
        return x->key > y->key ? -1 : x->key < y->key;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

int plan_sort_desc(uint32_t *order, uint32_t n, const double *key)
{
    keyed *k = us_calloc(n ? n : 1, sizeof *k);
    if (!k)
        return USHER_ERR_NOMEM;
    for (uint32_t i = 0; i < n; i++)
        k[i] = (keyed){key[order[i]], order[i], i};
    qsort(k, n, sizeof *k, cmp_keyed_desc);
    for (uint32_t i = 0; i < n; i++)
        order[i] = k[i].id;
    us_free(k);
    return USHER_OK;
}

void plan_empty(plan_solution *s, const plan_problem *p, uint32_t gpu)
{
    while (s->g[gpu].n)
        remove_one(s, p, gpu, s->g[gpu].n - 1, false);
}

void plan_compact(plan_solution *s)
{
    uint32_t k = 0;
    idx_free(s);
    memset(s->used_type, 0, sizeof s->used_type);
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->g[i].n == 0) {
            us_free(s->g[i].r);
            continue;
        }
        s->used_type[s->g[i].type]++;
        s->g[k++] = s->g[i];
    }
    s->n = k;
}

void plan_account(plan_solution *s, const plan_problem *p)
{
    for (uint32_t m = 0; m < p->n; m++)
        s->served[m] = 0;
    bool judged = p->interference && s->sharing != PLAN_SHARE_TIME;
    for (uint32_t i = 0; i < s->n; i++)
        for (uint32_t r = 0; r < s->g[i].n; r++) {
            const plan_replica *rp = &s->g[i].r[r];
            /* beside the others: late or overloaded, none of its requests is served */
            if (judged && (PLAN_SLO_FACTOR * rp->lat_co > p->m[rp->model].slo_ms * (1 + 1e-9) ||
                           rp->load > rp->thr_co * (1 + 1e-9) + 1e-9))
                continue;
            s->served[rp->model] += rp->load;
        }
    for (uint32_t m = 0; m < p->n; m++)
        if (s->served[m] > p->m[m].rate)
            s->served[m] = p->m[m].rate;
}

double plan_gpu_power(const plan_solution *s, const plan_problem *p, uint32_t i)
{
    const plan_gpu *g = &s->g[i];
    const plan_type *ty = &p->t[g->type];
    /* idle floor, plus each replica's dynamic power in proportion to its load */
    double idle = ty->tdp_w * ty->idle_frac, power = idle;
    for (uint32_t r = 0; r < g->n; r++) {
        const plan_cfg *c = &p->m[g->r[r].model].cfg[g->r[r].cfg];
        double util = c->thr_nom > 0 ? g->r[r].load / c->thr_nom : 0;
        double dyn = c->power_w - idle * c->share / 100;
        power += util * (dyn > 0 ? dyn : 0);
    }
    return power < ty->tdp_w || ty->tdp_w <= 0 ? power : ty->tdp_w;
}

double plan_cost_lower_bound(const plan_problem *p)
{
    /* per resource (compute, memory), each model at its cheapest configuration for that
     * resource: a GPU's price pays for 100% of both, so the plan costs at least the larger
     * of the two sums. Summing each replica's larger footprint instead is no bound: a
     * compute-heavy and a memory-heavy replica can share one GPU */
    double lb[2] = {0, 0};
    for (uint32_t m = 0; m < p->n; m++) {
        const plan_model *pm = &p->m[m];
        double best[2] = {INFINITY, INFINITY};
        for (uint32_t c = 0; c < pm->n_cfg; c++) {
            const plan_cfg *x = &pm->cfg[c];
            if (!(x->thr > 0))
                continue;
            double foot[2] = {x->alone_only ? 100 : x->creq, x->alone_only ? 100 : x->mreq};
            for (int k = 0; k < 2; k++) {
                double per = p->t[x->type].price * foot[k] / 100 / x->thr; /* $/h per req/s */
                if (per < best[k])
                    best[k] = per;
            }
        }
        for (int k = 0; k < 2; k++)
            if (pm->rate > 0 && isfinite(best[k]))
                lb[k] += pm->rate * best[k];
    }
    return lb[0] > lb[1] ? lb[0] : lb[1];
}

void plan_totals_of(const plan_solution *s, const plan_problem *p, plan_totals *t)
{
    memset(t, 0, sizeof *t);
    t->gpus = s->n;
    for (uint32_t i = 0; i < s->n; i++) {
        const plan_gpu *g = &s->g[i];
        t->cost += p->t[g->type].price;
        t->util_c += g->used_c;
        t->util_m += g->used_m;
        t->replicas += g->n;
        t->power_w += plan_gpu_power(s, p, i);
    }
    if (s->n) {
        t->util_c /= s->n;
        t->util_m /= s->n;
    }
    t->feasible = true;
    for (uint32_t m = 0; m < p->n; m++) {
        t->rate += p->m[m].rate;
        t->served += s->served[m];
        if (s->served[m] < p->m[m].rate * (1 - 1e-9))
            t->feasible = false;
    }
    t->unserved = t->rate - t->served;
    if (t->unserved < 1e-9)
        t->unserved = 0;
}

int plan_best_fit(plan_solution *s, const plan_problem *p, uint16_t type, uint32_t m, uint32_t cfg,
                  int group)
{
    const plan_cfg *c = &p->m[m].cfg[cfg];
    int best = -1;
    double best_left = INFINITY;
    /* the smallest leftover among the GPUs where it fits: the rule (a prediction)
     * is asked only of a GPU that would beat the best so far */
    /* the group's GPUs (USHER keeps its own lists), or all of them when the
     * index cannot be built (out of memory): a linear scan */
    bool linear = !s->bk && idx_build(s) < 0;
    for (int pass = group >= 0 ? 0 : 1; pass < 2 && best < 0; pass++) {
        if (pass == 1 && !linear)
            break;
        for (uint32_t i = 0; i < s->n; i++) {
            const plan_gpu *g = &s->g[i];
            if (g->type != type || (pass == 0 && g->group != group) ||
                !plan_room_fits(g->used_c, g->used_m, c))
                continue;
            double left = plan_leftover(g, c);
            if (left < best_left && plan_fits_with(s, p, i, m, cfg, 0, -1, NULL)) {
                best_left = left;
                best = (int)i;
            }
        }
    }
    if (best >= 0 || linear)
        return best;
    /* from the bucket whose free compute just covers Creq upwards: the first
     * bucket with a fit gives the best fit of its (up to BUCKET_SCAN) GPUs */
    int b0 = (int)floor(c->creq / 10 + 1e-9);
    for (int b = b0 < 0 ? 0 : b0; b < BUCKETS && best < 0; b++) {
        const plan_bucket *bk = &s->bk[type * BUCKETS + b];
        for (uint32_t k = 0; k < bk->n && k < BUCKET_SCAN; k++) {
            const plan_gpu *g = &s->g[bk->id[k]];
            if (!plan_room_fits(g->used_c, g->used_m, c))
                continue;
            double left = plan_leftover(g, c);
            if (left < best_left && plan_fits_with(s, p, bk->id[k], m, cfg, 0, -1, NULL)) {
                best_left = left;
                best = (int)bk->id[k];
            }
        }
    }
    return best;
}
