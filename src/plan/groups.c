/*
 * groups.c - merge groups in the plan: the planner asks which models merge and
 * keeps a merged group where it lowers cost (layer 6; issue 15 item 5,
 * docs/merge.md "Merge groups in the plan").
 *
 * After a policy has planned the workload as given (every model alone):
 *   1. candidates: the models of one precision whose ONNX files the merger
 *      clusters together (usher_merge_cluster: DBSCAN over the graph
 *      signatures), at most GROUP_MAX_MEMBERS a group, and that the merger
 *      actually merges (usher_merge_models: a refusal drops the candidate, with
 *      its reason in the plan's note);
 *   2. the merged graph is written to a temporary file and profiled through
 *      the same import and estimator path as any model (so a weight common to
 *      the members is one initializer of the merged graph and is counted once,
 *      in memory and in the L2 working set; shared operators run once over the
 *      concatenated batch). The estimator binds the leading dynamic dim of
 *      every input: a merged profile at batch b runs b rows of EACH member;
 *   3. the group becomes one model of the problem in place of its members:
 *      rate = the largest member rate (each run carries b rows per member; a
 *      member with less traffic leaves rows empty - conservative when rates
 *      differ), SLO = the tightest member SLO, priority, arrival_cv, spread and
 *      min_share the members' largest;
 *   4. greedily, candidate by candidate, the policy plans the problem with the
 *      groups kept so far plus this one; it is kept when the plan serves at
 *      least as much of the workload's rate (members counted at the group's
 *      served share) and costs less. The plan with the groups kept is the plan.
 * The interference model sees a group's replica as one replica: one profile of
 * the merged graph, one process, one kernel stream.
 *
 * Invariants: a problem with merges (p->merges) has the workload's models as
 * given in merges->orig, each either a model of the problem (orig[i].q) or a
 * member of group orig[i].grp, whose model is merges->g[grp].q; plan.json's
 * models[] lists the workload's models, and a group's replicas name the group.
 * The temporary files are removed before plan_merge_groups returns.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/hash.h"
#include "estimate/est.h"
#include "plan.h"
#include "planfile/planfile.h"
#include "planfile/workload.h"
#include "usher/merge.h"

#define GROUP_MAX_MODELS 64  /* workloads with more models are planned without the search */
#define GROUP_MAX_MEMBERS 16 /* the runtime's RT_MAX_MEMBERS */
#define GROUP_MAX_CANDIDATES 16

typedef struct merge_orig {
    char *name, *group;
    double rate, slo_ms;
    int priority, spread;
    int q;   /* its model in the problem; -1: a member of group grp */
    int grp; /* -1: none */
    char **dim_names;   /* its workload.yaml dims: the names, owned */
    pf_model_dim *dims; /* the dims for plan.json (names from dim_names) */
    uint32_t n_dims;
} merge_orig;

typedef struct merge_group {
    char name[64];
    char kind[16];
    uint32_t *mem; /* orig indices */
    uint32_t n_mem;
    uint64_t wb_before, wb_after;
    int q; /* its model in the problem */
} merge_group;

typedef struct plan_merges {
    merge_orig *orig;
    uint32_t n_orig;
    merge_group *g;
    uint32_t n_g;
} plan_merges;

/* a candidate found in p0 (the workload as given) */
typedef struct cand {
    uint32_t mem[GROUP_MAX_MEMBERS];
    uint32_t n;
    char path[512];  /* the merged graph (temporary) */
    char name[64];   /* "": merge-<k+1> */
    char kind[16];
    uint64_t wb_before, wb_after;
    char label[GROUP_MAX_MEMBERS][64]; /* each member's in the merged names (merge_cand) */
    bool kept;
} cand;

static void merges_destroy(plan_merges *m)
{
    if (!m)
        return;
    for (uint32_t i = 0; i < m->n_orig; i++) {
        us_free(m->orig[i].name);
        us_free(m->orig[i].group);
        for (uint32_t k = 0; k < m->orig[i].n_dims; k++)
            us_free(m->orig[i].dim_names[k]);
        us_free(m->orig[i].dim_names);
        us_free(m->orig[i].dims);
    }
    for (uint32_t i = 0; i < m->n_g; i++)
        us_free(m->g[i].mem);
    us_free(m->orig);
    us_free(m->g);
    us_free(m);
}

void plan_merges_free(plan_problem *p)
{
    if (!p)
        return;
    merges_destroy(p->merges);
    p->merges = NULL;
}

/* ---- what a problem with merges serves of the workload ---------------------- */

/* requests/s of workload model i (merges->orig) that s serves */
static double orig_served(const plan_problem *p, const plan_solution *s, uint32_t i)
{
    const merge_orig *o = &p->merges->orig[i];
    if (o->grp < 0)
        return s->served[o->q];
    const plan_model *gm = &p->m[p->merges->g[o->grp].q];
    double f = gm->rate > 0 ? s->served[p->merges->g[o->grp].q] / gm->rate : 1;
    return o->rate * (f < 1 ? f : 1);
}

/* served (weighted by 1 + priority with max-goodput, plain otherwise) and cost of s,
 * over the workload's models */
static void judge(const plan_problem *p, const plan_solution *s, double *served, double *cost)
{
    plan_totals t;
    plan_totals_of(s, p, &t);
    *cost = t.cost;
    *served = 0;
    bool w = p->objective != PLAN_MIN_COST;
    if (!p->merges) {
        for (uint32_t i = 0; i < p->n; i++)
            *served += s->served[i] * (w ? plan_weight(&p->m[i]) : 1);
        return;
    }
    for (uint32_t i = 0; i < p->merges->n_orig; i++)
        *served += orig_served(p, s, i) * (w ? 1.0 + p->merges->orig[i].priority : 1);
}

/* ---- building a problem with groups ------------------------------------------- */

static int copy_model(plan_model *dst, const plan_model *src)
{
    *dst = *src;
    dst->cfg = NULL;
    dst->n_cfg = 0;
    dst->dims = NULL;
    dst->n_dims = 0;
    dst->name = us_strdup(src->name);
    dst->path = us_strdup(src->path);
    dst->group = src->group ? us_strdup(src->group) : NULL;
    if (!dst->name || !dst->path || (src->group && !dst->group))
        return USHER_ERR_NOMEM;
    if (src->n_dims && !(dst->dims = us_calloc(src->n_dims, sizeof *dst->dims)))
        return USHER_ERR_NOMEM;
    for (uint32_t k = 0; k < src->n_dims; k++) {
        dst->n_dims = k + 1; /* freed with the problem */
        dst->dims[k].value = src->dims[k].value;
        if (!(dst->dims[k].name = us_strdup(src->dims[k].name)))
            return USHER_ERR_NOMEM;
    }
    return USHER_OK;
}

/* the members of c bind the same dims to the same values (workload.yaml dims): one
 * merged run carries every member's rows at one shape. false: why says which dim */
static bool dims_agree(const plan_problem *p0, const cand *c, char *why, size_t n)
{
    for (uint32_t a = 0; a < c->n; a++)
        for (uint32_t b = 0; b < c->n; b++) {
            const plan_model *x = &p0->m[c->mem[a]], *y = &p0->m[c->mem[b]];
            for (uint32_t k = 0; k < x->n_dims; k++) {
                const plan_dim *dx = &x->dims[k], *dy = NULL;
                for (uint32_t l = 0; l < y->n_dims && !dy; l++)
                    if (strcmp(y->dims[l].name, dx->name) == 0)
                        dy = &y->dims[l];
                if (dy && dy->value == dx->value)
                    continue;
                char vx[24], vy[24];
                snprintf(vx, sizeof vx, "%lld", (long long)dx->value);
                snprintf(vy, sizeof vy, "%lld", dy ? (long long)dy->value : 0LL);
                snprintf(why, n, "its members bind dim '%.40s' differently (%.40s: %s, %.40s: %s)",
                         dx->name, x->name, dx->value ? vx : "batch", y->name,
                         !dy ? "unset" : dy->value ? vy : "batch");
                return false;
            }
        }
    return true;
}

/* group model gm (merged file um) gets its members' dims (they agree: dims_agree) under
 * the merged graph's names: member j's dim at axis a of its input X is the merged
 * input <label j>/X's dim at axis a */
static int group_dims(const plan_problem *p0, const cand *c, plan_model *gm,
                      const usher_model *um, usher_error *err)
{
    uint32_t total = 0;
    for (uint32_t j = 0; j < c->n; j++)
        total += p0->m[c->mem[j]].n_dims;
    if (!total)
        return USHER_OK;
    if (total > PLAN_MAX_DIMS)
        return us_err_set(err, USHER_ERR_LIMIT, "its members bind %u dims, more than %d", total,
                          PLAN_MAX_DIMS);
    if (!(gm->dims = us_calloc(total, sizeof *gm->dims)))
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    int rc = USHER_OK;
    for (uint32_t j = 0; j < c->n && rc == USHER_OK; j++) {
        const plan_model *x = &p0->m[c->mem[j]];
        usher_model *mm = NULL;
        if (x->n_dims && (rc = usher_model_load(x->path, NULL, &mm, err)) < 0)
            break;
        for (uint32_t k = 0; k < x->n_dims && rc == USHER_OK; k++) {
            const char *nm = NULL;
            rc = usher_merge_member_dim(mm, c->label[j], um, x->dims[k].name, &nm);
            if (rc < 0) {
                rc = us_err_set(err, USHER_ERR_NOT_FOUND,
                                "dim '%.64s' of '%.64s' has no counterpart in the merged graph",
                                x->dims[k].name, x->name);
                break;
            }
            plan_dim *d = &gm->dims[gm->n_dims];
            d->value = x->dims[k].value;
            if (!(d->name = us_strdup(nm)))
                rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            else
                gm->n_dims++;
        }
        usher_model_free(mm);
    }
    return rc;
}

/* q: p0's cluster, p0's models with the kept candidates' members replaced by one
 * model of their merged graph each, profiled with e. USHER_ERR_LIMIT when a group
 * has no configuration within its SLO (the candidate is then not usable). */
static int build(usher_estimator *e, const char *cluster, const plan_problem *p0, cand *c,
                 uint32_t nc, plan_problem *q, usher_error *err)
{
    memset(q, 0, sizeof *q);
    q->interference = p0->interference;
    q->queue_off = p0->queue_off;
    q->profile_direct = p0->profile_direct;
    int rc = plan_read_cluster(cluster, est_catalog(e), q, err);
    if (rc < 0)
        return rc;
    snprintf(q->workload, sizeof q->workload, "%s", p0->workload);
    uint32_t n_groups = 0, n_members = 0;
    for (uint32_t k = 0; k < nc; k++)
        if (c[k].kept) {
            n_groups++;
            n_members += c[k].n;
        }
    uint32_t n = p0->n - n_members + n_groups;
    plan_merges *mg = us_calloc(1, sizeof *mg);
    usher_model **models = us_calloc(n ? n : 1, sizeof *models);
    usher_model **loaded = us_calloc(n ? n : 1, sizeof *loaded);
    uint32_t n_loaded = 0;
    us_map files;
    us_map_init(&files);
    q->m = us_calloc(n ? n : 1, sizeof *q->m);
    if (!mg || !models || !loaded || !q->m ||
        !(mg->orig = us_calloc(p0->n ? p0->n : 1, sizeof *mg->orig)) ||
        !(mg->g = us_calloc(n_groups ? n_groups : 1, sizeof *mg->g))) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    q->merges = mg;
    mg->n_orig = p0->n;
    for (uint32_t i = 0; i < p0->n; i++) {
        merge_orig *o = &mg->orig[i];
        const plan_model *pm = &p0->m[i];
        o->q = o->grp = -1;
        o->rate = pm->rate;
        o->slo_ms = pm->slo_ms;
        o->priority = pm->priority;
        o->spread = pm->spread;
        if (!(o->name = us_strdup(pm->name)) || (pm->group && !(o->group = us_strdup(pm->group))) ||
            (pm->n_dims && (!(o->dims = us_calloc(pm->n_dims, sizeof *o->dims)) ||
                            !(o->dim_names = us_calloc(pm->n_dims, sizeof *o->dim_names))))) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (uint32_t k = 0; k < pm->n_dims; k++) {
            if (!(o->dim_names[k] = us_strdup(pm->dims[k].name))) {
                rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
                goto out;
            }
            o->dims[o->n_dims++] = (pf_model_dim){.name = o->dim_names[k],
                                                  .value = pm->dims[k].value};
        }
    }
    for (uint32_t k = 0; k < nc; k++) {
        if (!c[k].kept)
            continue;
        merge_group *g = &mg->g[mg->n_g++];
        if (c[k].name[0])
            snprintf(g->name, sizeof g->name, "%s", c[k].name);
        else
            snprintf(g->name, sizeof g->name, "merge-%u", k + 1);
        snprintf(g->kind, sizeof g->kind, "%s", c[k].kind);
        g->wb_before = c[k].wb_before;
        g->wb_after = c[k].wb_after;
        if (!(g->mem = us_calloc(c[k].n, sizeof *g->mem))) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (uint32_t j = 0; j < c[k].n; j++) {
            g->mem[g->n_mem++] = c[k].mem[j];
            mg->orig[c[k].mem[j]].grp = (int)(mg->n_g - 1);
        }
    }
    /* the models alone, in workload order, then the groups */
    for (uint32_t i = 0; i < p0->n; i++) {
        if (mg->orig[i].grp >= 0)
            continue;
        plan_model *pm = &q->m[q->n];
        q->n++; /* what it owns is freed with the problem on any error */
        if (copy_model(pm, &p0->m[i]) < 0) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            goto out;
        }
        mg->orig[i].q = (int)(q->n - 1);
        usher_model *um = us_map_get(&files, pm->path);
        if (!um) {
            if ((rc = usher_model_load(pm->path, NULL, &um, err)) < 0)
                goto out;
            loaded[n_loaded++] = um;
            if (us_map_put(&files, pm->path, um, NULL) < 0) {
                rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
                goto out;
            }
        }
        models[q->n - 1] = um;
    }
    for (uint32_t k = 0, gi = 0; k < nc; k++) {
        if (!c[k].kept)
            continue;
        merge_group *g = &mg->g[gi++];
        plan_model *pm = &q->m[q->n];
        q->n++;
        const plan_model *first = &p0->m[g->mem[0]];
        memset(pm, 0, sizeof *pm);
        pm->precision = first->precision;
        pm->slo_ms = first->slo_ms;
        pm->line = first->line;
        for (uint32_t j = 0; j < g->n_mem; j++) {
            const plan_model *x = &p0->m[g->mem[j]];
            pm->rate = x->rate > pm->rate ? x->rate : pm->rate;
            pm->slo_ms = x->slo_ms < pm->slo_ms ? x->slo_ms : pm->slo_ms;
            pm->priority = x->priority > pm->priority ? x->priority : pm->priority;
            pm->min_share = x->min_share > pm->min_share ? x->min_share : pm->min_share;
            pm->arrival_cv = x->arrival_cv > pm->arrival_cv ? x->arrival_cv : pm->arrival_cv;
            pm->spread = x->spread > pm->spread ? x->spread : pm->spread;
        }
        if (!(pm->name = us_strdup(g->name)) || !(pm->path = us_strdup(c[k].path))) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            goto out;
        }
        g->q = (int)(q->n - 1);
        usher_model *um = NULL;
        if ((rc = usher_model_load(c[k].path, NULL, &um, err)) < 0)
            goto out;
        loaded[n_loaded++] = um;
        models[q->n - 1] = um;
        if ((rc = group_dims(p0, &c[k], pm, um, err)) < 0)
            goto out;
    }
    if ((rc = plan_problem_profile(q, e, models, err)) < 0)
        goto out;
    for (uint32_t i = 0; i < q->n; i++)
        if (!q->m[i].n_cfg) {
            rc = us_err_set(err, USHER_ERR_LIMIT, "'%s' has no configuration within its SLO "
                            "(%g ms) on any GPU type", q->m[i].name, q->m[i].slo_ms);
            goto out;
        }
    rc = USHER_OK;
out:
    for (uint32_t i = 0; i < n_loaded; i++)
        usher_model_free(loaded[i]);
    us_free(loaded);
    us_free(models);
    us_map_free(&files);
    if (!q->merges)
        merges_destroy(mg);
    if (rc < 0)
        plan_problem_free(q);
    return rc;
}

/* ---- finding candidates ---------------------------------------------------------- */

static void note_add(plan_solution *s, const char *what)
{
    /* the note is short (256 bytes): what does not fit is cut */
    size_t at = strlen(s->note), room = sizeof s->note - 1;
    if (at && at + 2 < room) {
        memcpy(s->note + at, "; ", 2);
        at += 2;
    }
    size_t n = strlen(what);
    if (at < room) {
        n = n < room - at ? n : room - at;
        memcpy(s->note + at, what, n);
        s->note[at + n] = 0;
    }
}

/* merge candidate c's members (orig indices into p0) into a temporary file */
static int merge_cand(const plan_problem *p0, cand *c, int k, usher_error *err)
{
    const char *paths[GROUP_MAX_MEMBERS];
    for (uint32_t j = 0; j < c->n; j++)
        paths[j] = p0->m[c->mem[j]].path;
    const char *tmp = getenv("TMPDIR");
    if (snprintf(c->path, sizeof c->path, "%s/usher-plan-merge-%d-%d.onnx",
                 tmp && *tmp ? tmp : "/tmp", (int)getpid(), k) >= (int)sizeof c->path)
        return us_err_set(err, USHER_ERR_LIMIT, "the merged file's path is too long");
    usher_merge_params mp = usher_merge_default_params();
    usher_merge *m = NULL;
    int rc = usher_merge_models(paths, c->n, &mp, &m, err);
    if (rc < 0) {
        c->path[0] = 0;
        return rc;
    }
    if ((rc = usher_merge_write(m, c->path, err)) < 0) {
        c->path[0] = 0;
        usher_merge_free(m);
        return rc;
    }
    const usher_merge_report *r = usher_merge_get_report(m);
    snprintf(c->kind, sizeof c->kind, "%s", r->kind_name);
    for (uint32_t j = 0; j < c->n; j++)
        snprintf(c->label[j], sizeof c->label[j], "%s", usher_merge_label(m, j));
    c->wb_before = r->weight_bytes_before;
    c->wb_after = r->weight_bytes_after;
    usher_merge_free(m);
    return USHER_OK;
}

/* the candidates of p0: DBSCAN clusters of one precision, split into groups of at most
 * GROUP_MAX_MEMBERS; *nc of them (at most GROUP_MAX_CANDIDATES) */
static int find(const plan_problem *p0, cand *c, uint32_t *nc, usher_error *err)
{
    *nc = 0;
    uint32_t n = p0->n;
    const char **paths = us_calloc(n, sizeof *paths);
    double *dist = us_calloc((size_t)n * n, sizeof *dist);
    int *lab = us_calloc(n, sizeof *lab);
    uint32_t *idx = us_calloc(n, sizeof *idx);
    int rc = USHER_OK;
    if (!paths || !dist || !lab || !idx) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* only models with their weights can merge (graph-only files: planning needs no
     * weights, merging does); eligible ones are clustered, idx[k] the model of the k-th */
    uint32_t ne = 0;
    for (uint32_t i = 0; i < n; i++) {
        usher_model *um = NULL;
        usher_model_summary sum;
        usher_error le;
        if (usher_model_load(p0->m[i].path, NULL, &um, &le) < 0)
            continue;
        bool ok = usher_model_get_summary(um, &sum) == USHER_OK && !sum.graph_only;
        usher_model_free(um);
        if (ok) {
            idx[ne] = i;
            paths[ne++] = p0->m[i].path;
        }
    }
    if (ne < 2)
        goto out;
    usher_merge_params mp = usher_merge_default_params();
    if ((rc = usher_merge_cluster(paths, ne, &mp, dist, lab, err)) < 0)
        goto out;
    for (int label = 0; label < (int)ne && *nc < GROUP_MAX_CANDIDATES; label++)
        for (int prec = 0; prec < 4; prec++) {
            cand *x = &c[*nc];
            memset(x, 0, sizeof *x);
            for (uint32_t k = 0; k < ne; k++) {
                uint32_t i = idx[k];
                if (lab[k] != label || p0->m[i].precision != prec)
                    continue;
                x->mem[x->n++] = i;
                if (x->n == GROUP_MAX_MEMBERS) {
                    if (++*nc == GROUP_MAX_CANDIDATES)
                        goto out;
                    x = &c[*nc];
                    memset(x, 0, sizeof *x);
                }
            }
            if (x->n >= 2 && ++*nc == GROUP_MAX_CANDIDATES)
                goto out;
        }
out:
    us_free(paths);
    us_free(dist);
    us_free(lab);
    us_free(idx);
    return rc;
}

/* ---- the search -------------------------------------------------------------------- */

int plan_merge_groups(usher_estimator *e, const char *cluster, const plan_policy *pol,
                      plan_problem *p, plan_solution *s, usher_error *err)
{
    if (p->merges || p->n < 2)
        return USHER_OK;
    if (p->n > GROUP_MAX_MODELS) {
        note_add(s, "merge groups: not searched (more than 64 models)");
        return USHER_OK;
    }
    cand *c = us_calloc(GROUP_MAX_CANDIDATES, sizeof *c);
    if (!c)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    uint32_t nc = 0;
    usher_error e1 = {0};
    char why[sizeof s->note] = "";
    int rc = find(p, c, &nc, &e1);
    if (rc == USHER_ERR_NOMEM) {
        us_free(c);
        return us_err_set(err, rc, "%s", e1.msg);
    }
    if (rc < 0) { /* a model the merger cannot read: no candidates, said in the note */
        snprintf(why, sizeof why, "merge groups: not searched (%.180s)", e1.msg);
        note_add(s, why);
        nc = 0;
    }
    char base[sizeof s->note]; /* the policy's note */
    snprintf(base, sizeof base, "%s", s->note);
    plan_problem best_p = *p; /* the plan to beat: p0 and s as planned */
    plan_solution best_s = *s;
    bool have_q = false; /* best_p is a problem with groups (ours to free) */
    double best_served, best_cost;
    judge(&best_p, &best_s, &best_served, &best_cost);
    rc = USHER_OK;
    for (uint32_t k = 0; k < nc; k++) {
        char dis[256];
        if (!dims_agree(p, &c[k], dis, sizeof dis)) {
            snprintf(why, sizeof why, "merge of %.40s + %u more not used: %.170s",
                     p->m[c[k].mem[0]].name, c[k].n - 1, dis);
            note_add(&best_s, why);
            continue;
        }
        if ((rc = merge_cand(p, &c[k], (int)k, &e1)) < 0) {
            if (rc == USHER_ERR_NOMEM)
                break;
            snprintf(why, sizeof why, "merge of %.40s, ... not used: %.120s", p->m[c[k].mem[0]].name,
                     e1.msg);
            note_add(&best_s, why);
            rc = USHER_OK;
            continue;
        }
        c[k].kept = true;
        plan_problem q;
        plan_solution qs;
        rc = build(e, cluster, p, c, nc, &q, &e1);
        if (rc == USHER_OK) {
            rc = plan_solve(&q, pol, &qs, &e1);
            if (rc < 0) {
                plan_solution_free(&qs);
                plan_problem_free(&q);
            }
        }
        if (rc == USHER_ERR_NOMEM)
            break;
        double sv = 0, cost = 0;
        if (rc == USHER_OK)
            judge(&q, &qs, &sv, &cost);
        bool better = rc == USHER_OK && sv >= best_served * (1 - 1e-9) - 1e-9 &&
                      (cost < best_cost - 1e-9 || sv > best_served * (1 + 1e-9) + 1e-9);
        if (!better) {
            if (rc == USHER_OK) {
                snprintf(why, sizeof why, "merge of %.40s + %u more (%s) not kept: $%.2f/h, "
                         "%.6g req/s served against $%.2f/h, %.6g req/s", p->m[c[k].mem[0]].name,
                         c[k].n - 1, c[k].kind, cost, sv, best_cost, best_served);
                note_add(&best_s, why);
                plan_solution_free(&qs);
                plan_problem_free(&q);
            } else {
                snprintf(why, sizeof why, "merge of %.40s, ... not planned: %.120s",
                         p->m[c[k].mem[0]].name, e1.msg);
                note_add(&best_s, why);
            }
            c[k].kept = false;
            rc = USHER_OK;
            continue;
        }
        /* qs replaces the best: its note (the policy's own) gets what this search said
         * before (best_s's note past the policy's: the same policy says the same) */
        char note[sizeof s->note];
        const char *said = best_s.note;
        size_t nb = strlen(base);
        if (strncmp(said, base, nb) == 0)
            said += nb + (said[nb] == ';' ? 2 : 0);
        snprintf(note, sizeof note, "%s", said);
        snprintf(why, sizeof why, "merge-%u (%.40s + %u more, %s) kept: $%.2f/h against $%.2f/h",
                 k + 1, p->m[c[k].mem[0]].name, c[k].n - 1, c[k].kind, cost, best_cost);
        note_add(&qs, why);
        if (have_q) {
            plan_solution_free(&best_s);
            plan_problem_free(&best_p);
        }
        best_p = q;
        best_s = qs;
        if (note[0])
            note_add(&best_s, note);
        have_q = true;
        best_served = sv;
        best_cost = cost;
    }
    for (uint32_t k = 0; k < nc; k++)
        if (c[k].path[0])
            unlink(c[k].path);
    us_free(c);
    if (rc < 0) {
        if (have_q) {
            plan_solution_free(&best_s);
            plan_problem_free(&best_p);
        }
        return us_err_set(err, rc, "%s", e1.msg);
    }
    if (have_q) {
        plan_solution_free(s);
        plan_problem_free(p);
        *p = best_p;
    }
    *s = best_s; /* s itself, or with notes added */
    return USHER_OK;
}

/* ---- re-planning ------------------------------------------------------------------ */

int plan_merge_running(usher_estimator *e, const char *cluster, const char *running,
                       plan_problem *p, uint32_t *kept, usher_error *err)
{
    *kept = 0;
    if (p->merges)
        return USHER_OK;
    pf_plan f;
    int rc = pf_load(running, &f, err);
    if (rc < 0)
        return rc;
    cand *c = us_calloc(f.n_groups ? f.n_groups : 1, sizeof *c);
    if (!c) {
        pf_free(&f);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    uint32_t nc = 0;
    for (uint32_t k = 0; k < f.n_groups && k < GROUP_MAX_CANDIDATES; k++) {
        const pf_group *g = &f.groups[k];
        cand *x = &c[nc];
        bool all = g->n_members <= GROUP_MAX_MEMBERS && strlen(g->name) < sizeof x->name;
        for (uint32_t j = 0; all && j < g->n_members; j++) {
            uint32_t i = 0;
            while (i < p->n && strcmp(p->m[i].name, g->members[j]) != 0)
                i++;
            /* every member still in the workload, at the first member's precision, in no
             * group before */
            all = i < p->n && (j == 0 || p->m[i].precision == p->m[x->mem[0]].precision);
            for (uint32_t l = 0; all && l < nc; l++)
                for (uint32_t m = 0; m < c[l].n; m++)
                    all = all && c[l].mem[m] != i;
            if (all)
                x->mem[x->n++] = i;
        }
        if (!all || x->n < 2) {
            memset(x, 0, sizeof *x);
            continue;
        }
        snprintf(x->name, sizeof x->name, "%s", g->name);
        usher_error e1;
        char dis[256];
        if (!dims_agree(p, x, dis, sizeof dis)) {
            memset(x, 0, sizeof *x); /* members planned alone: the re-plan restarts them */
            continue;
        }
        if ((rc = merge_cand(p, x, (int)nc, &e1)) < 0) {
            if (rc == USHER_ERR_NOMEM)
                break;
            memset(x, 0, sizeof *x); /* members planned alone: the re-plan restarts them */
            rc = USHER_OK;
            continue;
        }
        x->kept = true;
        nc++;
    }
    pf_free(&f);
    plan_problem q;
    if (rc == USHER_OK && nc) {
        rc = build(e, cluster, p, c, nc, &q, err);
        if (rc == USHER_OK) {
            plan_problem_free(p);
            *p = q;
            *kept = nc;
        } else if (rc != USHER_ERR_NOMEM) {
            rc = USHER_OK; /* a group that cannot be profiled: its members alone */
        }
    } else if (rc < 0) {
        us_err_set(err, rc, "out of memory");
    }
    for (uint32_t k = 0; k < nc; k++)
        if (c[k].path[0])
            unlink(c[k].path);
    us_free(c);
    return rc;
}

/* ---- output --------------------------------------------------------------------- */

void plan_merges_totals(const plan_problem *p, const plan_solution *s, plan_totals *t)
{
    if (!p->merges)
        return;
    t->rate = t->served = 0;
    for (uint32_t i = 0; i < p->merges->n_orig; i++) {
        t->rate += p->merges->orig[i].rate;
        t->served += orig_served(p, s, i);
    }
    t->unserved = t->rate - t->served;
    if (t->unserved < 1e-9)
        t->unserved = 0;
}

uint32_t plan_merges_n_orig(const plan_problem *p)
{
    return p->merges ? p->merges->n_orig : p->n;
}

int plan_merges_orig(const plan_problem *p, const plan_solution *s, uint32_t i, const char **name,
                     double *rate, double *slo_ms, double *goodput, uint32_t *replicas)
{
    const plan_merges *mg = p->merges;
    if (!mg || i >= mg->n_orig)
        return USHER_ERR_INVALID;
    const merge_orig *o = &mg->orig[i];
    int q = o->grp < 0 ? o->q : mg->g[o->grp].q;
    *name = o->name;
    *rate = o->rate;
    *slo_ms = o->slo_ms;
    *goodput = orig_served(p, s, i);
    *replicas = 0;
    for (uint32_t g = 0; g < s->n; g++)
        for (uint32_t r = 0; r < s->g[g].n; r++)
            *replicas += s->g[g].r[r].model == (uint32_t)q;
    return USHER_OK;
}

int plan_merges_file(const plan_problem *p, const plan_solution *s, pf_plan *f)
{
    const plan_merges *mg = p->merges;
    f->m = us_calloc(mg->n_orig ? mg->n_orig : 1, sizeof *f->m);
    f->groups = us_calloc(mg->n_g ? mg->n_g : 1, sizeof *f->groups);
    if (!f->m || !f->groups)
        return USHER_ERR_NOMEM;
    f->n_models = mg->n_orig;
    f->n_groups = mg->n_g;
    uint32_t *reps = us_calloc(p->n ? p->n : 1, sizeof *reps);
    if (!reps)
        return USHER_ERR_NOMEM;
    for (uint32_t i = 0; i < s->n; i++)
        for (uint32_t k = 0; k < s->g[i].n; k++)
            reps[s->g[i].r[k].model]++;
    for (uint32_t i = 0; i < mg->n_orig; i++) {
        const merge_orig *o = &mg->orig[i];
        double sv = orig_served(p, s, i), un = o->rate - sv;
        int q = o->grp < 0 ? o->q : mg->g[o->grp].q;
        f->m[i] = (pf_model){.name = o->name,
                             .rate = o->rate,
                             .slo_ms = o->slo_ms,
                             .goodput = sv,
                             .unserved = un > 1e-9 ? un : 0,
                             .replicas = reps[q],
                             .priority = o->priority,
                             .group = o->group,
                             .spread = o->spread ? pf_spread_name((pf_spread)o->spread) : NULL,
                             .dims = o->dims,
                             .n_dims = o->n_dims};
    }
    us_free(reps);
    for (uint32_t k = 0; k < mg->n_g; k++) {
        const merge_group *g = &mg->g[k];
        const char **mem = us_calloc(g->n_mem, sizeof *mem);
        if (!mem)
            return USHER_ERR_NOMEM;
        for (uint32_t j = 0; j < g->n_mem; j++)
            mem[j] = mg->orig[g->mem[j]].name;
        f->groups[k] = (pf_group){.name = g->name,
                                  .kind = g->kind,
                                  .members = mem,
                                  .n_members = g->n_mem,
                                  .weight_bytes_before = (double)g->wb_before,
                                  .weight_bytes_after = (double)g->wb_after};
    }
    return USHER_OK;
}

void plan_merges_file_free(pf_plan *f)
{
    for (uint32_t k = 0; f->groups && k < f->n_groups; k++)
        us_free((void *)f->groups[k].members);
    us_free(f->groups);
    f->groups = NULL;
    f->n_groups = 0;
}

void plan_merges_print(const plan_problem *p, FILE *f)
{
    const plan_merges *mg = p->merges;
    for (uint32_t k = 0; mg && k < mg->n_g; k++) {
        const merge_group *g = &mg->g[k];
        fprintf(f, "merge group %s (%s, weights %.1f -> %.1f MB): ", g->name, g->kind,
                (double)g->wb_before / 1e6, (double)g->wb_after / 1e6);
        for (uint32_t j = 0; j < g->n_mem; j++)
            fprintf(f, "%s%s", j ? " + " : "", mg->orig[g->mem[j]].name);
        fprintf(f, ", one merged model served by each of its replicas\n");
    }
}
