/*
 * spread.c - anti-affinity: a model's replicas over two failure domains at
 * least (layer 6; docs/plan-input.md "spread", docs/internals/plan.md).
 *
 * workload.yaml asks it per model (or as the file's default): spread: node,
 * rack or zone. The domain of a GPU is its cluster entry's node, or that
 * node's rack or zone (cluster.yaml nodes:). The promise: losing one domain
 * never takes such a model down - a replica of it is left in another. It is
 * not a promise of capacity: the replicas left carry what they carried (their
 * share of the load), not the lost domain's share too.
 *
 * Why a pass after the policy rather than a constraint inside each policy:
 * the seven policies place replicas by seven rules; one pass over their
 * result honours the constraint the same way for all of them, and a plan
 * without spread is untouched (nothing here runs: plans stay byte-identical).
 * For each model that asks and whose replicas all sit in one domain:
 *   1. a configuration on a GPU type of another domain: for a policy that
 *      plans with the interference model (usher, re-planning), the best fit
 *      in free room of a GPU there that the rule accepts; else (or for the
 *      other policies, whose own sharing rules this pass does not know) a new
 *      GPU of the cheapest type there that may still be opened, holding the
 *      replica alone, in a configuration of a share the policy gave the
 *      model (its partitioning) where there is one, else any;
 *   2. the new replica takes the model's load / (replicas + 1), at most what
 *      it may carry there; the other replicas give that up in proportion
 *      (loads only fall: every rule still holds for them);
 *   3. none anywhere (a fixed cluster with no room outside the domain): the
 *      plan is refused, naming the model and the domain.
 * A model with one replica gets two; the table and plan.json say how many
 * were added (spread_added). The exact policy refuses spread (its program
 * has no such constraint, and a pass after it would no longer be its
 * optimum): policy.c.
 */
#include <math.h>
#include <string.h>

#include "core/err.h"
#include "plan.h"
#include "planfile/workload.h"

bool plan_spread_wanted(const plan_problem *p)
{
    for (uint32_t m = 0; m < p->n; m++)
        if (p->m[m].spread != PF_SPREAD_NONE)
            return true;
    return false;
}

const char *plan_spread_domain(const plan_problem *p, uint16_t t, int lv)
{
    const plan_type *x = &p->t[t];
    return lv == PF_SPREAD_NODE ? x->node : lv == PF_SPREAD_RACK ? x->rack : x->zone;
}

int plan_spread_check(const plan_problem *p, usher_error *err)
{
    for (uint32_t m = 0; m < p->n; m++) {
        const plan_model *pm = &p->m[m];
        int lv = pm->spread;
        if (lv == PF_SPREAD_NONE)
            continue;
        const char *what = pf_spread_name((pf_spread)lv);
        /* checked once per level: the first model asking names it */
        bool first = true;
        for (uint32_t k = 0; k < m && first; k++)
            first = p->m[k].spread != lv;
        if (!first)
            continue;
        const char *one = NULL;
        bool two = false;
        for (uint16_t t = 0; t < p->nt; t++) {
            const char *dom = plan_spread_domain(p, t, lv);
            if (!dom[0]) {
                const plan_type *x = &p->t[t];
                if (lv == PF_SPREAD_NODE)
                    return us_err_set(err, USHER_ERR_INVALID,
                                      "%s:%zu: models[%u] '%s': spread: node, but GPU entry '%s' "
                                      "of %s (line %zu) has no node: give every entry its node",
                                      p->workload, pm->line, m, pm->name, x->key, p->cluster,
                                      x->line);
                return us_err_set(err, USHER_ERR_INVALID,
                                  "%s:%zu: models[%u] '%s': spread: %s, but %s%s%s of %s (GPU "
                                  "entry '%s', line %zu) declares no %s: give every node its %s "
                                  "in 'nodes'",
                                  p->workload, pm->line, m, pm->name, what,
                                  x->node[0] ? "node '" : "a GPU entry without a node",
                                  x->node[0] ? x->node : "", x->node[0] ? "'" : "", p->cluster,
                                  x->key, x->line, what, what);
            }
            if (!one)
                one = dom;
            else if (strcmp(one, dom) != 0)
                two = true;
        }
        if (!two)
            return us_err_set(err, USHER_ERR_INVALID,
                              "%s:%zu: models[%u] '%s': spread: %s, but every GPU of %s is in %s "
                              "'%s': spreading needs two %ss at least",
                              p->workload, pm->line, m, pm->name, what, p->cluster, what,
                              one ? one : "", what);
    }
    return USHER_OK;
}

/* the model's replicas: count, load, and whether they span two domains; *dom
 * the domain of the first (NULL: no replica) */
static uint32_t model_replicas(const plan_solution *s, const plan_problem *p, uint32_t m, int lv,
                               double *load, bool *spread, const char **dom)
{
    uint32_t n = 0;
    *load = 0;
    *spread = false;
    *dom = NULL;
    for (uint32_t i = 0; i < s->n; i++)
        for (uint32_t k = 0; k < s->g[i].n; k++) {
            if (s->g[i].r[k].model != m)
                continue;
            const char *d = plan_spread_domain(p, s->g[i].type, lv);
            if (!*dom)
                *dom = d;
            else if (strcmp(*dom, d) != 0)
                *spread = true;
            *load += s->g[i].r[k].load;
            n++;
        }
    return n;
}

/* configuration c of m is of a share the policy gave one of m's replicas */
static bool share_used(const plan_solution *s, const plan_problem *p, uint32_t m, const plan_cfg *c)
{
    for (uint32_t i = 0; i < s->n; i++)
        for (uint32_t k = 0; k < s->g[i].n; k++)
            if (s->g[i].r[k].model == m &&
                fabs(p->m[m].cfg[s->g[i].r[k].cfg].share - c->share) < 1e-9)
                return true;
    return false;
}

/* the largest load of model m's configuration cfg that GPU gpu takes, at most
 * want (halved until the rule accepts it; 0 when only an idle replica fits);
 * -1 when not even that */
static double fit_load(plan_solution *s, const plan_problem *p, uint32_t gpu, uint32_t m,
                       uint32_t cfg, double want)
{
    double thr = 0;
    if (!plan_fits_with(s, p, gpu, m, cfg, 0, -1, &thr))
        return -1;
    double l = fmin(want, fmin(thr, p->m[m].cfg[cfg].thr));
    for (int k = 0; k < 20 && l > 0; k++, l /= 2)
        if (plan_fits_with(s, p, gpu, m, cfg, l, -1, NULL))
            return l;
    return 0;
}

/* one more replica of m outside domain dom; 0, or USHER_ERR_LIMIT when no GPU
 * can take it */
static int add_one(const plan_problem *p, plan_solution *s, uint32_t m, int lv, const char *dom,
                   double total, uint32_t n_rep, usher_error *err)
{
    const plan_model *pm = &p->m[m];
    double want = total / (n_rep + 1);
    int gpu = -1, cfg = -1;
    bool fresh = false;
    /* 1. free room the rule accepts (policies planning with the model): a
     * configuration that carries the replica's share of the load first, then
     * the smallest footprint, then the best fit */
    if (s->sharing == PLAN_SHARE_MODEL) {
        double best_foot = INFINITY, best_left = INFINITY;
        bool best_carries = false;
        for (uint32_t c = 0; c < pm->n_cfg; c++) {
            const plan_cfg *x = &pm->cfg[c];
            if (strcmp(plan_spread_domain(p, x->type, lv), dom) == 0)
                continue;
            int g = plan_best_fit(s, p, x->type, m, c, -1);
            if (g < 0)
                continue;
            bool carries = plan_thr(x) >= want;
            double foot = plan_foot(x), left = plan_leftover(&s->g[g], x);
            if (gpu < 0 || (carries && !best_carries) ||
                (carries == best_carries &&
                 (foot < best_foot || (foot == best_foot && left < best_left)))) {
                best_carries = carries;
                best_foot = foot;
                best_left = left;
                gpu = g;
                cfg = (int)c;
            }
        }
    }
    /* 2. a new GPU of the cheapest type outside dom */
    if (gpu < 0) {
        double best_price = INFINITY, best_thr = -1, best_foot = INFINITY;
        /* the policy's own share first where it has one there, then any: the
         * replica is alone on its GPU either way */
        bool own = s->sharing != PLAN_SHARE_MODEL;
        for (uint32_t c = 0, pass = own ? 0 : 1; pass < 2; c++) {
            if (c == pm->n_cfg) {
                c = (uint32_t)-1;
                pass += cfg < 0 ? 1 : 2;
                continue;
            }
            const plan_cfg *x = &pm->cfg[c];
            if (strcmp(plan_spread_domain(p, x->type, lv), dom) == 0 ||
                plan_type_left(s, p, x->type) <= 0 || (pass == 0 && !share_used(s, p, m, x)))
                continue;
            double price = p->t[x->type].price, thr = fmin(x->thr, want), foot = plan_foot(x);
            if (price < best_price ||
                (price == best_price && (thr > best_thr || (thr == best_thr && foot < best_foot)))) {
                best_price = price;
                best_thr = thr;
                best_foot = foot;
                cfg = (int)c;
            }
        }
        if (cfg < 0)
            return us_err_set(err, USHER_ERR_LIMIT,
                              "%s:%zu: models[%u] '%s': spread: %s, but every replica is in %s "
                              "'%s' and no GPU of %s outside it can take one (%s): add GPUs "
                              "elsewhere, or leave the model's spread out",
                              p->workload, pm->line, m, pm->name,
                              pf_spread_name((pf_spread)lv), pf_spread_name((pf_spread)lv), dom,
                              p->cluster,
                              own ? "none may be opened"
                                  : "none may be opened, and none has room the rule allows");
        gpu = plan_open(s, p, pm->cfg[cfg].type, -1);
        if (gpu < 0)
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        fresh = true;
    }
    const plan_cfg *x = &pm->cfg[cfg];
    double load;
    if (s->sharing == PLAN_SHARE_TIME) {
        /* alone on its GPU, one batch at a time: the policy's duty counter */
        load = fmin(want, x->thr);
        plan_replica r = {.model = m, .cfg = (uint32_t)cfg, .load = load};
        if (plan_push(s, (uint32_t)gpu, r) < 0)
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        s->g[gpu].used_c = x->thr > 0 ? fmin(100, 100 * load / x->thr) : 0;
        s->g[gpu].used_m = x->mreq;
    } else {
        load = fresh && s->sharing != PLAN_SHARE_MODEL ? fmin(want, x->thr)
                                                       : fit_load(s, p, (uint32_t)gpu, m,
                                                                  (uint32_t)cfg, want);
        if (load < 0) /* a fresh GPU the rule refuses even idle: not a place */
            return us_err_set(err, USHER_ERR_LIMIT,
                              "%s:%zu: models[%u] '%s': spread: the interference model refuses "
                              "its replica alone on a new %s",
                              p->workload, pm->line, m, pm->name, p->t[x->type].key);
        if (plan_add(s, p, (uint32_t)gpu, m, (uint32_t)cfg, load) < 0)
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    /* the others give up what the new one took, in proportion */
    double keep = total > 0 ? (total - load) / total : 1;
    for (uint32_t i = 0; i < s->n; i++) {
        bool touched = false;
        for (uint32_t k = 0; k < s->g[i].n; k++) {
            plan_replica *r = &s->g[i].r[k];
            if (r->model != m || ((int)i == gpu && k == s->g[i].n - 1))
                continue;
            r->load *= keep;
            touched = true;
        }
        if (touched && s->sharing != PLAN_SHARE_TIME) {
            plan_coloc_forget(s, i);
            plan_coloc_refresh(s, p, i);
        }
    }
    s->spread_added++;
    return USHER_OK;
}

int plan_spread(const plan_problem *p, plan_solution *s, usher_error *err)
{
    if (!plan_spread_wanted(p))
        return USHER_OK;
    int rc = plan_spread_check(p, err);
    if (rc < 0)
        return rc;
    for (uint32_t m = 0; m < p->n; m++) {
        int lv = p->m[m].spread;
        if (lv == PF_SPREAD_NONE)
            continue;
        double load;
        bool spread;
        const char *dom;
        uint32_t n = model_replicas(s, p, m, lv, &load, &spread, &dom);
        if (n == 0 || spread)
            continue; /* unserved (listed as such), or spread already */
        if ((rc = add_one(p, s, m, lv, dom, load, n, err)) < 0)
            return rc;
    }
    plan_account(s, p);
    return USHER_OK;
}
