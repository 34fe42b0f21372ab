/*
 * improve.c - local search over a plan (layer 6): moving load rather than
 * whole replicas.
 *
 * A model's load is divisible among its replicas, so a GPU can be emptied
 * even when none of its replicas fits elsewhere as it is. plan_absorb gives
 * one model's load a home: (a) the spare throughput of its replicas, (b) a
 * replica grown to a larger configuration in its GPU's free share and
 * memory, (c) a new replica in the free room - each step the option that
 * homes the most load per footprint added. On top of it:
 *   tidy            each model's load dealt again over its replicas, most
 *                   efficient first; replicas left idle stop;
 *   set_search      (plans of <= 16 GPUs) every multiset of GPU counts
 *                   cheaper than the plan, cheapest first, tried by packing
 *                   all models onto it - on small plans one GPU is a large
 *                   part of the cost, and this finds the cheapest set the
 *                   packer can fill. Each order also with shares capped
 *                   (share_caps), a short packing repaired (repair_short)
 *                   and retried with its short models first;
 *   goodput_search  (max-goodput, clusters of <= 16 GPUs that cannot serve
 *                   everything) the models packed onto all GPUs in a few
 *                   orders, the one serving most kept;
 *   ruin_recreate   (plans of <= 256 GPUs) one GPU, or two, emptied and
 *                   their load homed again in the free room and on new GPUs
 *                   of the type that homes the most value per dollar; kept
 *                   when the plan got cheaper.
 * USHER's own consolidation moves replicas whole; these steps close the gap
 * to the exact optimum on small instances (docs/policies.md).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "plan.h"

#define EPS 1e-9

int plan_solution_clone(const plan_solution *s, plan_solution *out)
{
    memset(out, 0, sizeof *out);
    *out = *s;
    out->g = NULL;
    out->served = NULL;
    out->bk = NULL;
    out->n = 0; /* until g holds them: the cleanup walks g[0..n) */
    out->cap = s->n;
    out->g = us_calloc(s->n ? s->n : 1, sizeof *out->g);
    out->served = us_calloc(s->n_models ? s->n_models : 1, sizeof *out->served);
    if (!out->g || !out->served)
        goto fail;
    if (s->n_models)
        memcpy(out->served, s->served, s->n_models * sizeof *out->served);
    for (uint32_t i = 0; i < s->n; i++) {
        out->g[i] = s->g[i];
        out->g[i].r = NULL;
        out->g[i].cap = s->g[i].n;
        out->n = i + 1;
        if (s->g[i].n) {
            out->g[i].r = us_calloc(s->g[i].n, sizeof *out->g[i].r);
            if (!out->g[i].r)
                goto fail;
            memcpy(out->g[i].r, s->g[i].r, s->g[i].n * sizeof *out->g[i].r);
        }
    }
    return USHER_OK;
fail:
    plan_solution_free(out);
    return USHER_ERR_NOMEM;
}

static int absorb_on(plan_solution *s, const plan_problem *p, uint32_t m, double *load, int skip,
                     uint64_t types, bool fewest, double cmax);

static double foot(const plan_cfg *c) { return c->creq > c->mreq ? c->creq : c->mreq; }

/*
 * Give `*load` of model m a home on the GPUs other than `skip`: spare
 * throughput first, then the option that carries all of it with the least
 * new footprint, else the one that carries most. Returns 0 (as much as fits
 * placed, *load holds the rest) or USHER_ERR_NOMEM.
 */
int plan_absorb(plan_solution *s, const plan_problem *p, uint32_t m, double *load, int skip)
{
    return absorb_on(s, p, m, load, skip, ~(uint64_t)0, false, 100);
}

int plan_absorb_fewest(plan_solution *s, const plan_problem *p, uint32_t m, double *load)
{
    return absorb_on(s, p, m, load, -1, ~(uint64_t)0, true, 100);
}

/* how much an option is worth: the most load homed per footprint added; then
 * carrying all of it; then the tightest GPU. fewest: carrying all of it, the
 * smallest; else the most. Never decreases as gain grows (the search below
 * bounds an option by its gain alone before asking the rule) */
static double option_value(double gain, double load, double add, double left, bool fewest)
{
    bool carries = gain >= load - EPS;
    if (fewest)
        return carries ? 1e12 - add * 1e3 - left : gain;
    double homed = carries ? load : gain;
    return homed / (add > 1e-3 ? add : 1e-3) * (1 + 1e-9 * carries) - 1e-12 * left;
}

/* spare co-located throughput of model m's replicas on GPUs other than `not` */
static double spare_elsewhere(const plan_solution *s, const plan_problem *p, uint32_t m,
                              uint32_t not)
{
    double spare = 0;
    for (uint32_t i = 0; i < s->n; i++)
        for (uint32_t r = 0; i != not && r < s->g[i].n; r++)
            if (s->g[i].r[r].model == m && plan_cap(s, p, &s->g[i].r[r]) > s->g[i].r[r].load)
                spare += plan_cap(s, p, &s->g[i].r[r]) - s->g[i].r[r].load;
    return spare;
}

/* the rule refused model m's configuration c on GPU i (replacing replica
 * skip, -1: none) only for its neighbours' loads: would it fit if they shed
 * the excess - another model's onto its spare throughput elsewhere, model m's
 * back into what is being placed (*own)? shed: per replica */
static bool fits_if_shed(plan_solution *s, const plan_problem *p, uint32_t i, uint32_t m,
                         uint32_t c, double load, int skip, double *thr, double *shed, double *own)
{
    *own = 0;
    if (s->sharing != PLAN_SHARE_MODEL || !p->interference ||
        !plan_fits_shedding(s, p, i, m, c, load, skip, thr, shed))
        return false;
    const plan_gpu *g = &s->g[i];
    for (uint32_t k = 0; k < g->n; k++) {
        if (shed[k] <= 0 || (int)k == skip)
            continue;
        if (g->r[k].model == m) {
            *own += shed[k];
            continue;
        }
        /* the same model's shedding replicas here, summed */
        double need = 0;
        for (uint32_t j = 0; j < g->n; j++)
            if (g->r[j].model == g->r[k].model && (int)j != skip)
                need += shed[j];
        if (spare_elsewhere(s, p, g->r[k].model, i) < need * (1 + 1e-9) + EPS)
            return false;
    }
    return true;
}

/* move what GPU i's replicas shed onto their models' replicas elsewhere;
 * model m's back into *load */
static void shed_load(plan_solution *s, const plan_problem *p, uint32_t i, const double *shed,
                      uint32_t m, double *load)
{
    plan_gpu *g = &s->g[i];
    for (uint32_t k = 0; k < g->n; k++) {
        double left = shed[k];
        if (left <= 0)
            continue;
        g->r[k].load -= left;
        if (g->r[k].load < 0)
            g->r[k].load = 0;
        plan_coloc_forget(s, i);
        if (g->r[k].model == m) {
            *load += left;
            continue;
        }
        for (uint32_t j = 0; j < s->n && left > 0; j++)
            for (uint32_t r = 0; j != i && r < s->g[j].n && left > 0; r++) {
                plan_replica *rp = &s->g[j].r[r];
                double spare = rp->model == g->r[k].model ? plan_cap(s, p, rp) - rp->load : 0;
                if (spare > 0) {
                    double take = spare < left ? spare : left;
                    rp->load += take;
                    left -= take;
                }
            }
    }
}

/* plan_absorb restricted to the GPU types in `types` (bit t: type t) and to
 * configurations of at most cmax% compute (new ones and grown ones);
 * fewest: as few replicas as possible rather than the least footprint */
static int absorb_on(plan_solution *s, const plan_problem *p, uint32_t m, double *load, int skip,
                     uint64_t types, bool fewest, double cmax)
{
    const plan_model *pm = &p->m[m];
    /* (a) spare throughput of the model's replicas */
    for (uint32_t i = 0; i < s->n && *load > EPS; i++) {
        if ((int)i == skip || !(types >> s->g[i].type & 1))
            continue;
        for (uint32_t r = 0; r < s->g[i].n && *load > EPS; r++) {
            plan_replica *rp = &s->g[i].r[r];
            if (rp->model != m)
                continue;
            double spare = plan_target(s, p, rp) - rp->load;
            if (spare > EPS) {
                double take = spare < *load ? spare : *load;
                rp->load += take;
                *load -= take;
            }
        }
    }
    while (*load > EPS) {
        /* (b) grow a replica, (c) a new replica: choose. An option's value with
         * its throughput alone bounds its value beside the others: the rule is
         * asked only of an option that could beat the best so far */
        int bg = -1, br = -1, bc = -1;
        double bval = -INFINITY, bthr = 0;
        bool bshed = false;
        double shed[IF_MAX_REPLICAS];
        for (uint32_t i = 0; i < s->n; i++) {
            const plan_gpu *g = &s->g[i];
            if ((int)i == skip || !(types >> g->type & 1))
                continue;
            double fc = 100 - g->used_c, fm = 100 - g->used_m;
            if (fc <= EPS || fm <= EPS)
                continue;
            for (int32_t r = -1; r < (int32_t)g->n; r++) {
                const plan_cfg *old = NULL;
                double have = 0;
                if (r >= 0) {
                    if (g->r[r].model != m)
                        continue;
                    old = &pm->cfg[g->r[r].cfg];
                    have = g->r[r].load;
                }
                for (uint32_t c = 0; c < pm->n_cfg; c++) {
                    const plan_cfg *x = &pm->cfg[c];
                    if (x->type != g->type || x->creq > cmax + EPS)
                        continue;
                    double dc = x->creq - (old ? old->creq : 0), dm = x->mreq - (old ? old->mreq : 0);
                    double gain = x->thr - have;
                    if (gain <= EPS || dc > fc + EPS || dm > fm + EPS)
                        continue;
                    double add = (dc > dm ? dc : dm);
                    /* one the model lets share its GPU with hardly anything
                     * takes the GPU's whole free room */
                    if (x->alone_only && add < (fc > fm ? fc : fm))
                        add = fc > fm ? fc : fm;
                    if (add < 0)
                        add = 0;
                    double left = fc + fm - dc - dm;
                    if (!(option_value(gain, *load, add, left, fewest) > bval))
                        continue;
                    double thr, own = 0;
                    bool shedding = false;
                    if (!plan_fits_with(s, p, i, m, c, have, r, &thr)) {
                        /* refused for its neighbours' loads only: they may shed */
                        if (!fits_if_shed(s, p, i, m, c, have, r, &thr, shed, &own))
                            continue;
                        shedding = true;
                    }
                    if (p->interference && s->sharing == PLAN_SHARE_MODEL && plan_thr(x) < thr)
                        thr = plan_thr(x); /* plan_target once added */
                    gain = thr - have - own; /* what its own replicas shed comes back */
                    double val = option_value(gain, *load, add, left, fewest);
                    if (gain > EPS && val > bval) {
                        bval = val;
                        bthr = thr;
                        bshed = shedding;
                        bg = (int)i;
                        br = r;
                        bc = (int)c;
                    }
                }
            }
        }
        if (bg < 0)
            return USHER_OK;
        if (bshed) {
            double t, own;
            if (!fits_if_shed(s, p, (uint32_t)bg, m, (uint32_t)bc, br >= 0 ? s->g[bg].r[br].load : 0,
                              br, &t, shed, &own))
                return USHER_OK; /* cannot happen: nothing changed since */
            shed_load(s, p, (uint32_t)bg, shed, m, load);
        }
        double take;
        if (br >= 0) {
            double have = s->g[bg].r[br].load;
            double gain = bthr - have;
            take = gain < *load ? gain : *load;
            plan_remove(s, p, (uint32_t)bg, (uint32_t)br);
            if (plan_add(s, p, (uint32_t)bg, m, (uint32_t)bc, have + take) < 0)
                return USHER_ERR_NOMEM;
        } else {
            take = bthr < *load ? bthr : *load;
            if (plan_add(s, p, (uint32_t)bg, m, (uint32_t)bc, take) < 0)
                return USHER_ERR_NOMEM;
        }
        *load -= take;
    }
    return USHER_OK;
}

/* up to *left of model m onto its replicas' spare co-located throughput
 * (plan_cap); *left keeps the rest */
static void fill_model(plan_solution *s, const plan_problem *p, uint32_t m, double *left)
{
    for (uint32_t i = 0; i < s->n && *left > EPS; i++)
        for (uint32_t r = 0; r < s->g[i].n && *left > EPS; r++) {
            plan_replica *rp = &s->g[i].r[r];
            double spare = rp->model == m ? plan_cap(s, p, rp) - rp->load : 0;
            if (spare > EPS) {
                double take = spare < *left ? spare : *left;
                rp->load += take;
                *left -= take;
            }
        }
}

void plan_fill(plan_solution *s, const plan_problem *p, const uint32_t *order)
{
    plan_account(s, p);
    for (uint32_t k = 0; k < p->n; k++) {
        uint32_t m = order ? order[k] : k;
        double left = p->m[m].rate - s->served[m];
        fill_model(s, p, m, &left);
    }
    plan_account(s, p);
}

/*
 * Tidy: each model's load dealt again over its replicas, the most efficient
 * (throughput per footprint) first; replicas left without load stop. Frees
 * room without restarting anything that keeps serving.
 */
static void tidy(plan_solution *s, const plan_problem *p, double *load)
{
    for (uint32_t m = 0; m < p->n; m++)
        load[m] = 0;
    for (uint32_t i = 0; i < s->n; i++)
        for (uint32_t r = 0; r < s->g[i].n; r++)
            load[s->g[i].r[r].model] += s->g[i].r[r].load;
    for (;;) {
        /* the most efficient replica of any model whose load is not yet dealt */
        int bi = -1, br = -1;
        double be = -1;
        for (uint32_t i = 0; i < s->n; i++)
            for (uint32_t r = 0; r < s->g[i].n; r++) {
                const plan_replica *rp = &s->g[i].r[r];
                const plan_cfg *c = &p->m[rp->model].cfg[rp->cfg];
                if (rp->load < 0)
                    continue; /* dealt already (marked) */
                double e = c->thr / foot(c);
                if (e > be) {
                    be = e;
                    bi = (int)i;
                    br = (int)r;
                }
            }
        if (bi < 0)
            break;
        plan_replica *rp = &s->g[bi].r[br];
        double thr = plan_target(s, p, rp);
        double take = load[rp->model] < thr ? load[rp->model] : thr;
        load[rp->model] -= take;
        rp->load = -1 - take; /* mark as dealt */
    }
    /* what placement's loads left undealt (a neighbour took the headroom):
     * onto the replicas' whole co-located throughput */
    for (uint32_t i = 0; i < s->n; i++)
        for (uint32_t r = 0; r < s->g[i].n; r++) {
            plan_replica *rp = &s->g[i].r[r];
            double extra = plan_cap(s, p, rp) - (-1 - rp->load);
            if (load[rp->model] <= EPS || extra <= EPS)
                continue;
            extra = extra < load[rp->model] ? extra : load[rp->model];
            rp->load -= extra;
            load[rp->model] -= extra;
        }
    for (uint32_t i = 0; i < s->n; i++) {
        plan_coloc_forget(s, i); /* loads dealt again: some shrank */
        for (uint32_t r = s->g[i].n; r-- > 0;) {
            s->g[i].r[r].load = -1 - s->g[i].r[r].load;
            if (s->g[i].r[r].load <= EPS)
                plan_remove(s, p, i, r);
        }
    }
}

static double cost_of(const plan_solution *s, const plan_problem *p)
{
    double c = 0;
    for (uint32_t i = 0; i < s->n; i++)
        c += s->g[i].n ? p->t[s->g[i].type].price : 0;
    return c;
}

static double price_of(const plan_problem *p, uint16_t t) { return p->t[t].price > 0 ? p->t[t].price : 1; }

/* $/h per request/s of model m at its most economical configuration on any type */
static double value_of(const plan_problem *p, uint32_t m)
{
    double best = INFINITY;
    for (uint32_t c = 0; c < p->m[m].n_cfg; c++) {
        const plan_cfg *x = &p->m[m].cfg[c];
        double v = price_of(p, x->type) * plan_foot(x) / 100 / plan_thr(x);
        if (v < best)
            best = v;
    }
    return isfinite(best) ? best : 0;
}

/* place every left[m] in the free room, largest value first; returns <0 on error */
static int absorb_all(plan_solution *t, const plan_problem *p, double *left, double *val)
{
    for (;;) {
        int best = -1;
        double bv = 0;
        for (uint32_t m = 0; m < p->n; m++)
            if (left[m] > EPS && val[m] >= 0 && left[m] * val[m] + 1e-12 > bv) {
                bv = left[m] * val[m] + 1e-12;
                best = (int)m;
            }
        if (best < 0)
            return 0;
        if (plan_absorb(t, p, (uint32_t)best, &left[best], -1) < 0)
            return USHER_ERR_NOMEM;
        if (left[best] > EPS)
            val[best] = -1; /* no more room for it: set aside for this round */
    }
}

/*
 * Ruin and recreate: take every replica off the GPUs in `set`, close them,
 * and give their load a home again - the free room of the other GPUs first,
 * then new GPUs, each time of the type that homes the most value of the
 * load per dollar (tried, not guessed). Kept when the plan got cheaper.
 * 1: kept, 0: not (s unchanged), <0: error.
 */
static int ruin_recreate(plan_solution *s, const plan_problem *p, const uint32_t *set, int ns,
                         double *left, double *val)
{
    plan_solution t;
    if (plan_solution_clone(s, &t) < 0)
        return USHER_ERR_NOMEM;
    for (uint32_t m = 0; m < p->n; m++)
        left[m] = 0;
    for (int k = 0; k < ns; k++) {
        const plan_gpu *g = &t.g[set[k]];
        for (uint32_t r = g->n; r-- > 0;)
            left[g->r[r].model] += g->r[r].load;
        plan_empty(&t, p, set[k]);
    }
    plan_compact(&t);
    int rc = 1;
    for (int step = 0; rc == 1; step++) {
        for (uint32_t m = 0; m < p->n; m++)
            val[m] = value_of(p, m);
        if (absorb_all(&t, p, left, val) < 0) {
            rc = USHER_ERR_NOMEM;
            break;
        }
        double rest = 0;
        for (uint32_t m = 0; m < p->n; m++)
            rest += left[m] > EPS ? left[m] : 0;
        if (rest <= EPS)
            break;
        if (step > 64) {
            rc = 0;
            break;
        }
        /* open the type that homes the most value per dollar */
        int bt = -1;
        double bscore = 0;
        for (uint16_t ty = 0; ty < p->nt; ty++) {
            if (plan_type_left(&t, p, ty) <= 0)
                continue;
            plan_solution u;
            if (plan_solution_clone(&t, &u) < 0) {
                rc = USHER_ERR_NOMEM;
                break;
            }
            double *l2 = left + p->n, *v2 = val + p->n;
            memcpy(l2, left, p->n * sizeof *l2);
            for (uint32_t m = 0; m < p->n; m++)
                v2[m] = value_of(p, m);
            int g = plan_open(&u, p, ty, -1);
            double homed = 0;
            if (g >= 0 && absorb_all(&u, p, l2, v2) == 0)
                for (uint32_t m = 0; m < p->n; m++)
                    homed += (left[m] - l2[m]) * value_of(p, m);
            plan_solution_free(&u);
            double score = homed / price_of(p, ty);
            if (score > bscore + EPS) {
                bscore = score;
                bt = ty;
            }
        }
        if (rc != 1)
            break;
        if (bt < 0 || plan_open(&t, p, (uint16_t)bt, -1) < 0) {
            rc = 0;
            break;
        }
    }
    if (rc == 1) {
        tidy(&t, p, left);
        plan_compact(&t);
        if (cost_of(&t, p) >= cost_of(s, p) - EPS)
            rc = 0;
    }
    if (rc == 1) {
        plan_solution_free(s);
        *s = t;
        return 1;
    }
    plan_solution_free(&t);
    return rc;
}

#define PAIRS_MAX_GPUS 48 /* pairs of GPUs are ruined together on plans this small */
#define SEARCH_MAX_GPUS 16 /* the GPU-set search runs on plans this small */
#define SEARCH_MAX_SETS 4096

typedef struct gpu_set {
    uint8_t count[PLAN_MAX_TYPES];
    double cost;
} gpu_set;

static int cmp_set(const void *a, const void *b)
{
    const gpu_set *x = a, *y = b;
    return x->cost < y->cost ? -1 : x->cost > y->cost;
}

/* model m's *left onto t (pref: its GPU types from the cheapest per request,
 * one by one, then any), in configurations of at most cmax% compute */
static int pack_model(const plan_problem *p, plan_solution *t, uint32_t m, bool pref, double cmax,
                      double *left)
{
    bool used[PLAN_MAX_TYPES] = {0};
    for (uint16_t k = 0; pref && k < p->nt && *left > EPS; k++) {
        int bt = -1;
        double bc = INFINITY;
        for (uint16_t ty = 0; ty < p->nt; ty++) {
            if (used[ty])
                continue;
            double c = INFINITY;
            for (uint32_t x = 0; x < p->m[m].n_cfg; x++)
                if (p->m[m].cfg[x].type == ty && p->m[m].cfg[x].creq <= cmax + EPS) {
                    double v = price_of(p, ty) * plan_foot(&p->m[m].cfg[x]) / plan_thr(&p->m[m].cfg[x]);
                    c = v < c ? v : c;
                }
            if (c < bc) {
                bc = c;
                bt = ty;
            }
        }
        if (bt < 0)
            break;
        used[bt] = true;
        if (absorb_on(t, p, m, left, -1, (uint64_t)1 << bt, false, cmax) < 0)
            return USHER_ERR_NOMEM;
    }
    if (*left > EPS && absorb_on(t, p, m, left, -1, ~(uint64_t)0, false, cmax) < 0)
        return USHER_ERR_NOMEM;
    /* a model with no configuration that small (or none that fits) may still
     * use a larger one */
    if (*left > EPS && cmax < 100 && absorb_on(t, p, m, left, -1, ~(uint64_t)0, false, 100) < 0)
        return USHER_ERR_NOMEM;
    return USHER_OK;
}

#define PACK_PASSES 3
#define REPAIR_ROUNDS 4

/*
 * Repair a packing that leaves *short_m of model m without a home: another
 * model's replicas that carry little (the last, partly loaded one of a
 * model, or a model's several small replicas on one GPU) hold a share that m
 * could use. Each such candidate in turn, least load first, is taken off
 * and both ways round tried: its load homed first (not on its GPU), then
 * m's; or m's first (in the room it left), then its load (anywhere: several
 * small replicas may merge into a larger one). Kept when both found a home.
 * 1: repaired (t replaced), 0: not (t unchanged), <0: error.
 */
static int repair_short(const plan_problem *p, plan_solution *t, uint32_t m, double *short_m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->n; i++)
        n += t->g[i].n;
    /* candidate c: GPU gi[c], replica ri[c]; whole[c]: all of its model's
     * replicas on that GPU */
    uint32_t *gi = us_calloc(2 * (size_t)(n ? n : 1), sizeof *gi);
    uint32_t *ri = us_calloc(2 * (size_t)(n ? n : 1), sizeof *ri);
    uint32_t *ord = us_calloc(2 * (size_t)(n ? n : 1), sizeof *ord);
    double *key = us_calloc(2 * (size_t)(n ? n : 1), sizeof *key);
    bool *whole = us_calloc(2 * (size_t)(n ? n : 1), sizeof *whole);
    int rc = 0;
    if (!gi || !ri || !key || !ord || !whole) {
        rc = USHER_ERR_NOMEM;
        goto out;
    }
    n = 0;
    for (uint32_t i = 0; i < t->n; i++)
        for (uint32_t r = 0; r < t->g[i].n; r++) {
            const plan_replica *rp = &t->g[i].r[r];
            if (rp->model == m)
                continue;
            gi[n] = i;
            ri[n] = r;
            key[n] = -rp->load;
            ord[n] = n;
            n++;
            /* the model's replicas here, once (at its first) when several */
            uint32_t first = r, count = 0;
            double sum = 0;
            for (uint32_t j = 0; j < t->g[i].n; j++)
                if (t->g[i].r[j].model == rp->model) {
                    first = j < first ? j : first;
                    count++;
                    sum += t->g[i].r[j].load;
                }
            if (count > 1 && first == r) {
                gi[n] = i;
                ri[n] = r;
                whole[n] = true;
                key[n] = -sum;
                ord[n] = n;
                n++;
            }
        }
    if ((rc = plan_sort_desc(ord, n, key)) < 0)
        goto out;
    for (uint32_t k = 0; k < 2 * n && rc == 0; k++) {
        plan_solution u;
        if (plan_solution_clone(t, &u) < 0) {
            rc = USHER_ERR_NOMEM;
            break;
        }
        uint32_t c = ord[k / 2], i = gi[c];
        uint32_t other = u.g[i].r[ri[c]].model;
        double moved = 0, need = *short_m;
        bool m_first = k & 1;
        for (uint32_t j = u.g[i].n; j-- > 0;)
            if (whole[c] ? u.g[i].r[j].model == other : j == ri[c]) {
                moved += u.g[i].r[j].load;
                plan_remove(&u, p, i, j);
            }
        if (!m_first)
            rc = absorb_on(&u, p, other, &moved, (int)i, ~(uint64_t)0, false, 100);
        if (rc == 0 && moved <= EPS) {
            fill_model(&u, p, m, &need);
            if (need > EPS)
                rc = absorb_on(&u, p, m, &need, -1, ~(uint64_t)0, false, 100);
        }
        if (rc == 0 && m_first && need <= EPS)
            rc = absorb_on(&u, p, other, &moved, -1, ~(uint64_t)0, false, 100);
        if (rc == 0 && need <= EPS && moved <= EPS) {
            plan_solution_free(t);
            *t = u;
            *short_m = 0;
            rc = 1;
            break;
        }
        plan_solution_free(&u);
    }
out:
    us_free(gi);
    us_free(ri);
    us_free(ord);
    us_free(key);
    us_free(whole);
    return rc;
}

/* pack every model's rate onto exactly these (empty) GPUs, models in the
 * given order; 1 when everything found a home (partial: as much as fits).
 * With the interference model, capacity first and loads last: each model
 * gets replicas for its rate, then gives its load back, so that models
 * placed later are judged on latency and DRAM, not on loads placed before
 * them; a model whose replicas later neighbours slowed below its rate gets
 * more in the next pass; at the end the loads are dealt to the replicas'
 * co-located throughput (tidy) */
static int pack_onto(const plan_problem *p, const gpu_set *gs, const uint32_t *order, bool pref,
                     double cmax, bool partial, plan_solution *t)
{
    if (plan_solution_init(t, p, "usher") < 0)
        return USHER_ERR_NOMEM;
    for (uint16_t ty = 0; ty < p->nt; ty++)
        for (int k = 0; k < gs->count[ty]; k++)
            if (plan_open(t, p, ty, -1) < 0)
                return 0;
    if (!p->interference) {
        for (uint32_t i = 0; i < p->n; i++) {
            double left = p->m[order[i]].rate;
            if (pack_model(p, t, order[i], pref, cmax, &left) < 0)
                return USHER_ERR_NOMEM;
            if (left > EPS && !partial)
                return 0;
        }
        return 1;
    }
    double *left = us_calloc(p->n ? p->n : 1, sizeof *left);
    if (!left)
        return USHER_ERR_NOMEM;
    int rc = 0;
    for (int pass = 0; pass < PACK_PASSES; pass++) {
        bool short_any = false;
        for (uint32_t i = 0; i < p->n; i++) {
            uint32_t m = order[i];
            left[m] = p->m[m].rate;
            if (pack_model(p, t, m, pref, cmax, &left[m]) < 0) {
                us_free(left);
                return USHER_ERR_NOMEM;
            }
            short_any |= left[m] > EPS;
            for (uint32_t g = 0; g < t->n; g++) { /* capacity first: loads last */
                for (uint32_t r = 0; r < t->g[g].n; r++)
                    if (t->g[g].r[r].model == m)
                        t->g[g].r[r].load = 0;
                plan_coloc_forget(t, g);
            }
        }
        if (short_any && !partial)
            break; /* no room left for some model */
        /* caps as they are now, with every replica in place */
        bool covered = true;
        for (uint32_t m = 0; m < p->n && covered; m++) {
            double cap = 0;
            for (uint32_t g = 0; g < t->n; g++)
                for (uint32_t r = 0; r < t->g[g].n; r++)
                    if (t->g[g].r[r].model == m)
                        cap += plan_target(t, p, &t->g[g].r[r]);
            covered = cap >= p->m[m].rate * (1 - 1e-9);
        }
        if (covered)
            break;
    }
    /* the loads: each model's rate over its replicas, up to their co-located
     * throughput */
    rc = 1;
    for (uint32_t i = 0; i < p->n; i++) {
        uint32_t m = order[i];
        left[m] = p->m[m].rate;
        fill_model(t, p, m, &left[m]);
    }
    /* a model left short: make room for it by moving a fragment (at most
     * REPAIR_ROUNDS moves in all) */
    for (int round = 0; round < REPAIR_ROUNDS && !partial; round++) {
        int fixed = 0;
        for (uint32_t i = 0; i < p->n && fixed == 0; i++)
            if (left[order[i]] > EPS)
                fixed = repair_short(p, t, order[i], &left[order[i]]);
        if (fixed < 0) {
            us_free(left);
            return fixed;
        }
        if (!fixed)
            break;
    }
    for (uint32_t i = 0; i < p->n; i++)
        if (left[order[i]] > EPS && !partial)
            rc = 0;
    us_free(left);
    return rc;
}

/*
 * The cheapest set of GPUs the load packs onto: every multiset of GPU
 * counts (within the types' limits) cheaper than the plan, cheapest first,
 * each tried by packing the models onto it (largest need first, then
 * tightest SLO first). For plans of up to SEARCH_MAX_GPUS GPUs, where one
 * GPU more or less is a large part of the cost.
 */
static double weighted_goodput(const plan_solution *s, const plan_problem *p)
{
    double g = 0;
    for (uint32_t m = 0; m < p->n; m++)
        g += s->served[m] * plan_weight(&p->m[m]);
    return g;
}

/*
 * A cluster that cannot serve everything: pack the models onto all its GPUs
 * in a few orders - the most weight per dollar of capacity first (knapsack
 * density: plan_weight / cost per request), or the loosest SLO first, with
 * or without each model's own type preference - each model taking what room is left; keep the order that
 * serves the most when it beats the plan.
 */
static int goodput_search(plan_solution *s, const plan_problem *p)
{
    gpu_set all = {{0}, 0};
    int total = 0;
    for (uint16_t t = 0; t < p->nt; t++) {
        int64_t l = p->t[t].count >= 0 ? p->t[t].count : p->t[t].max;
        if (l > SEARCH_MAX_GPUS)
            return 0;
        all.count[t] = (uint8_t)l;
        total += (int)l;
    }
    if (total > SEARCH_MAX_GPUS)
        return 0;
    uint32_t *order = us_calloc(p->n ? p->n : 1, sizeof *order);
    double *key = us_calloc(p->n ? p->n : 1, sizeof *key);
    int rc = 0;
    if (!order || !key) {
        rc = USHER_ERR_NOMEM;
        goto out;
    }
    double best = weighted_goodput(s, p);
    for (int o = 0; o < 4 && rc >= 0; o++) {
        for (uint32_t m = 0; m < p->n; m++) {
            order[m] = m;
            double v = value_of(p, m);
            key[m] = o & 1 ? p->m[m].slo_ms : plan_weight(&p->m[m]) / (v > 0 ? v : 1e-12);
        }
        if ((rc = plan_sort_desc(order, p->n, key)) < 0)
            break;
        plan_solution t;
        rc = pack_onto(p, &all, order, o >= 2, 100, true, &t);
        if (rc >= 0) {
            rc = 0;
            tidy(&t, p, key);
            plan_compact(&t);
            plan_account(&t, p);
            double g = weighted_goodput(&t, p);
            if (g > best * (1 + 1e-9) + 1e-9) {
                best = g;
                plan_solution_free(s);
                *s = t;
                continue;
            }
        }
        plan_solution_free(&t);
    }
out:
    us_free(order);
    us_free(key);
    return rc < 0 ? rc : 0;
}

/* the largest compute share a packing may give one replica: uncapped, then
 * capped so that replicas of a model tile a GPU in other ways. Packing each
 * model at its most load per footprint can fragment a GPU set (seed 34 of
 * test_plan's usher_near_the_optimum: inception-v3's 70% shares leave 30% on
 * each of three T4s that nothing else fills, where 40% and 50% shares fit
 * them; seed 49: bert-base in four 30% shares fits two V100s beside the
 * others, where its 60% and 40% ones leave squeezenet no room) */
static const double share_caps[] = {100, 50, 40, 30};
#define N_SHARE_CAPS (int)(sizeof share_caps / sizeof share_caps[0])
#define SQUEAKY_RETRIES 3
/* packings with capped shares or retried orders per set search, the cheapest
 * sets first: they bound its time (examples/workload.yaml, a 10-GPU plan:
 * 3 s with every set tried so, 0.12-0.22 s with the budget and the capacity
 * test below, against 0.18 s before either) */
#define VARIANT_BUDGET 256

static int set_search(plan_solution *s, const plan_problem *p)
{
    double cur = cost_of(s, p);
    gpu_set *sets = us_calloc(SEARCH_MAX_SETS, sizeof *sets);
    uint32_t *orders = us_calloc(3 * (size_t)(p->n ? p->n : 1), sizeof *orders);
    double *key = us_calloc(p->n ? p->n : 1, sizeof *key);
    int rc = 0;
    if (!sets || !orders || !key) {
        rc = USHER_ERR_NOMEM;
        goto out;
    }
    /* enumerate count vectors (odometer) */
    int lim[PLAN_MAX_TYPES];
    for (uint16_t t = 0; t < p->nt; t++) {
        int64_t l = p->t[t].count >= 0 ? p->t[t].count : p->t[t].max;
        double by_cost = floor((cur - EPS) / price_of(p, t));
        if (by_cost < (double)l)
            l = (int64_t)by_cost;
        lim[t] = (int)(l < SEARCH_MAX_GPUS ? l : SEARCH_MAX_GPUS);
    }
    uint32_t ns = 0;
    gpu_set g = {{0}, 0};
    for (;;) {
        double c = 0;
        int total = 0;
        for (uint16_t t = 0; t < p->nt; t++) {
            c += g.count[t] * price_of(p, t);
            total += g.count[t];
        }
        if (total > 0 && total <= SEARCH_MAX_GPUS && c < cur - EPS) {
            if (ns == SEARCH_MAX_SETS)
                goto out; /* too many to try: leave the plan as it is */
            g.cost = c;
            sets[ns++] = g;
        }
        uint16_t t = 0;
        while (t < p->nt && ++g.count[t] > lim[t])
            g.count[t++] = 0;
        if (t == p->nt)
            break;
    }
    qsort(sets, ns, sizeof *sets, cmp_set);
    /* a set whose GPUs hold less compute share, or less memory, than the models
     * need at their most economical configurations on its types for that
     * resource (share per request/s at the rate a replica carries alone, as
     * plan_cost_lower_bound: co-location only lowers throughput) cannot serve
     * them: not packed. Per resource, since a compute-heavy and a memory-heavy
     * replica can share a GPU (the larger footprint per replica over-counts) */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < ns; i++) {
        double need[2] = {0, 0}, have = 0;
        for (uint16_t t = 0; t < p->nt; t++)
            have += 100.0 * sets[i].count[t];
        for (uint32_t m = 0; m < p->n && need[0] <= have && need[1] <= have; m++) {
            double e[2] = {INFINITY, INFINITY};
            for (uint32_t c = 0; c < p->m[m].n_cfg; c++) {
                const plan_cfg *x = &p->m[m].cfg[c];
                if (sets[i].count[x->type] == 0 || !(x->thr > 0))
                    continue;
                double foot[2] = {x->alone_only ? 100 : x->creq, x->alone_only ? 100 : x->mreq};
                for (int k = 0; k < 2; k++)
                    if (foot[k] / x->thr < e[k])
                        e[k] = foot[k] / x->thr;
            }
            for (int k = 0; k < 2; k++)
                need[k] += p->m[m].rate * e[k];
        }
        if (need[0] <= have * (1 + 1e-9) && need[1] <= have * (1 + 1e-9))
            sets[kept++] = sets[i];
    }
    ns = kept;
    for (uint32_t m = 0; m < p->n; m++) {
        orders[m] = orders[p->n + m] = m;
        key[m] = p->m[m].rate * value_of(p, m);
    }
    if ((rc = plan_sort_desc(orders, p->n, key)) < 0)
        goto out;
    for (uint32_t m = 0; m < p->n; m++)
        key[m] = -p->m[m].slo_ms;
    if ((rc = plan_sort_desc(orders + p->n, p->n, key)) < 0)
        goto out;
    uint32_t *ord = orders + 2 * (size_t)p->n;
    int budget = VARIANT_BUDGET;
    for (uint32_t i = 0; i < ns && rc == 0; i++)
        for (int o = 0; o < 4 * N_SHARE_CAPS && rc == 0; o++) {
            /* capped shares and retries while the budget lasts (cheapest
             * sets first) */
            if (o >= 4 && budget <= 0)
                break;
            memcpy(ord, orders + (size_t)(o & 1) * p->n, p->n * sizeof *ord);
            /* squeaky wheel: the models a packing left short go first in the
             * next try (a model packed last finds only fragments) */
            for (int retry = 0; retry <= SQUEAKY_RETRIES && rc == 0 && (retry == 0 || budget > 0);
                 retry++) {
                plan_solution t;
                rc = pack_onto(p, &sets[i], ord, (o & 2) != 0, share_caps[o / 4], false, &t);
                if (o >= 4 || retry > 0)
                    budget--;
                if (rc == 1) {
                    tidy(&t, p, key);
                    plan_compact(&t);
                    plan_account(&t, p);
                    plan_solution_free(s);
                    *s = t;
                    break;
                }
                if (rc < 0 || retry == SQUEAKY_RETRIES || !t.served) {
                    plan_solution_free(&t);
                    break;
                }
                plan_account(&t, p);
                uint32_t front = 0;
                bool moved = false;
                for (uint32_t k = 0; k < p->n; k++) {
                    uint32_t m = ord[k];
                    if (t.served[m] < p->m[m].rate * (1 - 1e-9) - EPS) {
                        memmove(ord + front + 1, ord + front, (k - front) * sizeof *ord);
                        ord[front] = m;
                        moved |= k != front;
                        front++;
                    }
                }
                plan_solution_free(&t);
                if (!moved)
                    break; /* the same order again would pack the same */
            }
        }
out:
    us_free(sets);
    us_free(orders);
    us_free(key);
    return rc < 0 ? rc : 0;
}

int plan_improve(plan_solution *s, const plan_problem *p, uint32_t max_gpus)
{
    if (s->n > max_gpus)
        return USHER_OK;
    plan_totals tot;
    double *tl = us_calloc(p->n ? p->n : 1, sizeof *tl);
    if (!tl)
        return USHER_ERR_NOMEM;
    tidy(s, p, tl);
    us_free(tl);
    plan_compact(s);
    plan_account(s, p);
    plan_totals_of(s, p, &tot);
    /* a cluster that cannot serve everything (max-goodput), or a limited one
     * where the packing fell short (min-cost beside the interference model,
     * whose packings are tighter): repack onto all its GPUs */
    if (!tot.feasible && (p->objective == PLAN_MAX_GOODPUT || p->interference)) {
        if (goodput_search(s, p) < 0)
            return USHER_ERR_NOMEM;
        plan_totals_of(s, p, &tot);
    }
    /* then (also when that repacking served everything: seed 57 of
     * usher_near_the_optimum, two A100s and a V100 where two A100s and a T4
     * do) the cheapest set of GPUs the load packs onto */
    if (tot.feasible && s->n <= SEARCH_MAX_GPUS && set_search(s, p) < 0)
        return USHER_ERR_NOMEM;
    double *left = us_calloc(4 * (size_t)(p->n ? p->n : 1), sizeof *left);
    if (!left)
        return USHER_ERR_NOMEM;
    double *val = left + 2 * (size_t)p->n;
    int rc = USHER_OK;
    for (int round = 0; round < 4 * (int)max_gpus + 8 && rc == USHER_OK; round++) {
        int done = 0;
        uint32_t n = s->n;
        /* single GPUs, the least filled per dollar first */
        uint32_t *order = us_calloc(n ? n : 1, sizeof *order);
        if (!order) {
            rc = USHER_ERR_NOMEM;
            break;
        }
        for (uint32_t i = 0; i < n; i++)
            order[i] = i;
        for (uint32_t a = 1; a < n; a++)
            for (uint32_t b = a; b > 0; b--) {
                const plan_gpu *x = &s->g[order[b]], *y = &s->g[order[b - 1]];
                double fx = (x->used_c > x->used_m ? x->used_c : x->used_m) / price_of(p, x->type);
                double fy = (y->used_c > y->used_m ? y->used_c : y->used_m) / price_of(p, y->type);
                if (fx >= fy)
                    break;
                uint32_t tmp = order[b];
                order[b] = order[b - 1];
                order[b - 1] = tmp;
            }
        for (uint32_t k = 0; k < n && !done; k++)
            done = ruin_recreate(s, p, &order[k], 1, left, val);
        for (uint32_t a = 0; a < n && !done && n <= PAIRS_MAX_GPUS; a++)
            for (uint32_t b = a + 1; b < n && !done; b++) {
                uint32_t set[2] = {order[a], order[b]};
                done = ruin_recreate(s, p, set, 2, left, val);
            }
        us_free(order);
        if (done < 0)
            rc = done;
        if (done <= 0)
            break;
    }
    us_free(left);
    if (rc == USHER_OK)
        plan_account(s, p);
    return rc;
}
