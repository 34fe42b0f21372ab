/*
 * planfile_api.c - include/usher/planfile.h: a plan.json for the front ends
 * (layer 2), over pf_load / pf_write.
 *
 * The exporters need the plan as placed (GPUs on nodes, replicas with their
 * shares) and checks a serving stack relies on but the schema does not state:
 * a GPU is not over-subscribed, no physical GPU is placed twice, and the
 * nodes and types exist in the cluster. cluster.yaml is read here for its
 * gpus[].type, node, count and max only, leniently (other keys ignored): the
 * planner's reader (src/plan/input.c) is the strict one; a file it accepted
 * reads here the same for these four fields.
 */
#include "usher/planfile.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/yaml.h"
#include "planfile/planfile.h"

#define SHARE_EPS 1e-6   /* shares are written with 6 significant digits */
#define CLUSTER_MAX_ENTRIES 4096

struct usher_planfile {
    pf_plan f;
};

int usher_planfile_load(const char *path, usher_planfile **out, usher_error *err)
{
    *out = NULL;
    usher_planfile *p = us_calloc(1, sizeof *p);
    if (!p)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory reading %s", path);
    int rc = pf_load(path, &p->f, err);
    if (rc < 0) {
        us_free(p);
        return rc;
    }
    *out = p;
    return USHER_OK;
}

void usher_planfile_free(usher_planfile *p)
{
    if (!p)
        return;
    pf_free(&p->f);
    us_free(p);
}

void usher_planfile_get_info(const usher_planfile *p, usher_planfile_info *out)
{
    memset(out, 0, sizeof *out);
    out->label = p->f.label;
    out->policy = p->f.policy;
    out->cluster = p->f.cluster;
    out->feasible = p->f.feasible;
    out->n_gpus = p->f.n_gpus;
    out->n_models = p->f.n_models;
    for (uint32_t g = 0; g < p->f.n_gpus; g++)
        out->n_replicas += p->f.g[g].n;
    out->n_groups = p->f.n_groups;
}

static const pf_group *group_named(const pf_plan *f, const char *name)
{
    for (uint32_t k = 0; k < f->n_groups; k++)
        if (strcmp(f->groups[k].name, name) == 0)
            return &f->groups[k];
    return NULL;
}

uint32_t usher_planfile_served_models(const usher_planfile *p, const char *model,
                                      const char **out, uint32_t cap)
{
    _Static_assert(USHER_PLANFILE_MAX_SERVED == PF_MAX_GROUP_MEMBERS, "one limit");
    const pf_group *g = group_named(&p->f, model);
    if (!g) {
        if (cap)
            out[0] = model;
        return 1;
    }
    for (uint32_t k = 0; k < g->n_members && k < cap; k++)
        out[k] = g->members[k];
    return g->n_members;
}

int usher_planfile_node_find(const usher_planfile *p, const char *name, usher_planfile_node *out)
{
    for (uint32_t i = 0; name && i < p->f.n_nodes; i++) {
        const pf_node *x = &p->f.nodes[i];
        if (strcmp(x->name, name) == 0) {
            *out = (usher_planfile_node){.name = x->name, .rack = x->rack, .zone = x->zone,
                                         .labels = x->labels, .n_labels = x->n_labels};
            return USHER_OK;
        }
    }
    return USHER_ERR_INVALID;
}

int usher_planfile_gpu_at(const usher_planfile *p, uint32_t i, usher_planfile_gpu *out)
{
    if (i >= p->f.n_gpus)
        return USHER_ERR_INVALID;
    const pf_gpu *g = &p->f.g[i];
    *out = (usher_planfile_gpu){.type = g->type, .node = g->node, .has_index = g->has_index,
                                .index = g->index, .compute_pct = g->compute_pct,
                                .memory_pct = g->memory_pct, .n_replicas = g->n, .line = g->line};
    return USHER_OK;
}

int usher_planfile_replica_at(const usher_planfile *p, uint32_t gpu, uint32_t r,
                              usher_planfile_replica *out)
{
    if (gpu >= p->f.n_gpus || r >= p->f.g[gpu].n)
        return USHER_ERR_INVALID;
    const pf_replica *x = &p->f.g[gpu].r[r];
    *out = (usher_planfile_replica){.model = x->model, .batch = x->batch, .share = x->share,
                                    .memory_mb = x->memory_mb, .latency_ms = x->latency_ms,
                                    .latency_colocated_ms = x->latency_colocated_ms,
                                    .throughput = x->throughput, .load = x->load, .line = x->line};
    return USHER_OK;
}

int usher_planfile_model_at(const usher_planfile *p, uint32_t i, usher_planfile_model *out)
{
    if (i >= p->f.n_models)
        return USHER_ERR_INVALID;
    const pf_model *m = &p->f.m[i];
    *out = (usher_planfile_model){.name = m->name, .rate = m->rate, .slo_ms = m->slo_ms,
                                  .replicas = m->replicas};
    return USHER_OK;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static const char *or_none(const char *s)
{
    return s ? s : "(none)";
}

static bool time_sliced(const char *policy)
{
    return policy && (strcmp(policy, "shepherd") == 0 || strcmp(policy, "alpaserve") == 0 ||
                      strcmp(policy, "triton") == 0);
}

int usher_planfile_check(const usher_planfile *p, usher_error *err)
{
    const pf_plan *f = &p->f;
    bool sliced = time_sliced(f->policy);
    for (uint32_t i = 0; i < f->n_gpus; i++) {
        const pf_gpu *g = &f->g[i];
        double sum = 0;
        for (uint32_t r = 0; r < g->n; r++)
            sum += g->r[r].share;
        if (!sliced && sum > 100 + SHARE_EPS)
            return us_err_set(err, USHER_ERR_INVALID,
                              "%s:%zu: gpus[%u] (node %s, type %s): over-subscribed: its %u "
                              "replicas' shares sum to %.6g%% of the GPU, more than 100%%",
                              f->label, g->line, i, or_none(g->node), g->type, g->n, sum);
        if (g->memory_pct > 100 + SHARE_EPS)
            return us_err_set(err, USHER_ERR_INVALID,
                              "%s:%zu: gpus[%u] (node %s, type %s): over-subscribed: "
                              "memory_pct %.6g, more than the GPU's memory",
                              f->label, g->line, i, or_none(g->node), g->type, g->memory_pct);
        if (!g->has_index)
            continue;
        for (uint32_t j = 0; j < i; j++) {
            const pf_gpu *h = &f->g[j];
            if (h->has_index && h->index == g->index && same_str(h->node, g->node) &&
                strcmp(h->type, g->type) == 0)
                return us_err_set(err, USHER_ERR_INVALID,
                                  "%s:%zu: gpus[%u] (node %s, type %s, index %u): the same GPU "
                                  "as gpus[%u] (line %zu): a GPU is placed once",
                                  f->label, g->line, i, or_none(g->node), g->type, g->index, j,
                                  h->line);
        }
    }
    return USHER_OK;
}

/* ---- cluster.yaml ---------------------------------------------------------------- */

typedef struct centry {
    const char *type, *node; /* into the document */
    int64_t n;               /* count or max */
    size_t line;
} centry;

static int read_cluster(const us_yaml_doc *d, centry **out, size_t *n_out, usher_error *err)
{
    const us_yaml_node *root = us_yaml_root(d), *gpus = NULL;
    if (!root || us_yaml_node_kind(root) != US_YAML_MAP)
        return us_yaml_error(d, root, err, USHER_ERR_PARSE, "expected a map with 'gpus'");
    int rc = us_yaml_get_node(d, root, "gpus", "gpus", US_YAML_SEQ, true, &gpus, err);
    if (rc < 0)
        return rc;
    size_t n = us_yaml_len(gpus);
    if (n > CLUSTER_MAX_ENTRIES)
        return us_yaml_error(d, gpus, err, USHER_ERR_LIMIT, "field 'gpus': %zu entries, at most %d",
                             n, CLUSTER_MAX_ENTRIES);
    centry *c = us_calloc(n ? n : 1, sizeof *c);
    if (!c)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const us_yaml_node *e = us_yaml_item(gpus, i);
        char path[64];
        snprintf(path, sizeof path, "gpus[%zu]", i);
        if (us_yaml_node_kind(e) != US_YAML_MAP) {
            us_free(c);
            return us_yaml_error(d, e, err, USHER_ERR_PARSE, "field '%s': expected a map", path);
        }
        char fp[96];
        int64_t count = -1, max = -1;
        snprintf(fp, sizeof fp, "%s.type", path);
        if ((rc = us_yaml_get_str(d, e, "type", fp, &c[i].type, NULL, err)) < 0)
            goto fail;
        if (!c[i].type) {
            rc = us_yaml_error(d, e, err, USHER_ERR_PARSE, "field '%s': missing (required)", fp);
            goto fail;
        }
        snprintf(fp, sizeof fp, "%s.node", path);
        if ((rc = us_yaml_get_str(d, e, "node", fp, &c[i].node, NULL, err)) < 0)
            goto fail;
        snprintf(fp, sizeof fp, "%s.count", path);
        if ((rc = us_yaml_get_i64(d, e, "count", fp, 0, 1000000, &count, -1, false, err)) < 0)
            goto fail;
        snprintf(fp, sizeof fp, "%s.max", path);
        if ((rc = us_yaml_get_i64(d, e, "max", fp, 0, 1000000, &max, -1, false, err)) < 0)
            goto fail;
        c[i].n = count >= 0 ? count : max >= 0 ? max : 1000000;
        c[i].line = us_yaml_line(e);
    }
    *out = c;
    *n_out = n;
    return USHER_OK;
fail:
    us_free(c);
    return rc;
}

int usher_planfile_check_cluster(const usher_planfile *p, const char *cluster_path,
                                 usher_error *err)
{
    const pf_plan *f = &p->f;
    us_yaml_limits lim = us_yaml_default_limits();
    us_yaml_doc *d = NULL;
    int rc = us_yaml_load(cluster_path, &lim, &d, err);
    if (rc < 0)
        return rc;
    centry *c = NULL;
    size_t nc = 0;
    uint32_t *used = NULL;
    if ((rc = read_cluster(d, &c, &nc, err)) < 0)
        goto out;
    if (!(used = us_calloc(nc ? nc : 1, sizeof *used))) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < f->n_gpus; i++) {
        const pf_gpu *g = &f->g[i];
        bool node_known = false;
        size_t hit = nc;
        for (size_t k = 0; k < nc; k++)
            if (same_str(c[k].node, g->node)) {
                node_known = true;
                if (strcmp(c[k].type, g->type) == 0 && hit == nc)
                    hit = k;
            }
        if (!node_known) {
            rc = us_err_set(err, USHER_ERR_INVALID,
                            "%s:%zu: gpus[%u]: unknown node '%s': %s names no such node",
                            f->label, g->line, i, or_none(g->node), cluster_path);
            goto out;
        }
        if (hit == nc) {
            us_buf b;
            us_buf_init(&b, 512);
            for (size_t k = 0; k < nc; k++)
                if (same_str(c[k].node, g->node))
                    us_buf_printf(&b, "%s%s", b.len ? ", " : "", c[k].type);
            rc = us_err_set(err, USHER_ERR_INVALID,
                            "%s:%zu: gpus[%u]: node '%s' has no GPU of type '%s' (%s gives it: %s)",
                            f->label, g->line, i, or_none(g->node), g->type, cluster_path,
                            us_buf_str(&b));
            us_buf_free(&b);
            goto out;
        }
        if (++used[hit] > c[hit].n) {
            rc = us_err_set(err, USHER_ERR_INVALID,
                            "%s:%zu: gpus[%u]: over-subscribed: node '%s' has %lld GPU%s of type "
                            "'%s' (%s:%zu), the plan places more",
                            f->label, g->line, i, or_none(g->node), (long long)c[hit].n,
                            c[hit].n == 1 ? "" : "s", g->type, cluster_path, c[hit].line);
            goto out;
        }
        if (g->has_index && (int64_t)g->index >= c[hit].n) {
            rc = us_err_set(err, USHER_ERR_INVALID,
                            "%s:%zu: gpus[%u]: index %u, but node '%s' has %lld GPU%s of type "
                            "'%s' (%s:%zu)",
                            f->label, g->line, i, g->index, or_none(g->node), (long long)c[hit].n,
                            c[hit].n == 1 ? "" : "s", g->type, cluster_path, c[hit].line);
            goto out;
        }
    }
    rc = USHER_OK;
out:
    us_free(used);
    us_free(c);
    us_yaml_free(d);
    return rc;
}

/* ---- a node's slice ----------------------------------------------------------------- */

int usher_planfile_write_slice(const usher_planfile *p, const char *node, FILE *f,
                               usher_error *err)
{
    const pf_plan *src = &p->f;
    pf_plan s = *src;
    s.has_replan = false;
    memset(&s.totals, 0, sizeof s.totals);
    s.profile_seconds = s.plan_seconds = 0;
    s.g = NULL;
    s.m = NULL;
    s.groups = NULL;
    s.n_gpus = s.n_models = s.n_groups = 0;
    int rc = USHER_OK;
    us_buf b;
    us_buf_init(&b, PF_MAX_BYTES);
    if (!(s.g = us_calloc(src->n_gpus ? src->n_gpus : 1, sizeof *s.g)) ||
        !(s.m = us_calloc(src->n_models ? src->n_models : 1, sizeof *s.m)) ||
        !(s.groups = us_calloc(src->n_groups ? src->n_groups : 1, sizeof *s.groups))) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < src->n_gpus; i++)
        if (same_str(src->g[i].node, node)) {
            s.g[s.n_gpus++] = src->g[i];
            s.totals.gpus++;
            s.totals.replicas += src->g[i].n;
            s.totals.cost_per_hour += src->g[i].price_per_hour;
        }
    /* the merge groups with a replica here; their members are held here */
    for (uint32_t k = 0; k < src->n_groups; k++) {
        bool here = false;
        for (uint32_t g = 0; g < s.n_gpus && !here; g++)
            for (uint32_t r = 0; r < s.g[g].n && !here; r++)
                here = strcmp(s.g[g].r[r].model, src->groups[k].name) == 0;
        if (here)
            s.groups[s.n_groups++] = src->groups[k];
    }
    for (uint32_t i = 0; i < src->n_models; i++) {
        uint32_t here = 0;
        for (uint32_t g = 0; g < s.n_gpus; g++)
            for (uint32_t r = 0; r < s.g[g].n; r++) {
                const char *served[USHER_PLANFILE_MAX_SERVED];
                uint32_t ns = usher_planfile_served_models(p, s.g[g].r[r].model, served,
                                                           USHER_PLANFILE_MAX_SERVED);
                for (uint32_t k = 0; k < ns; k++)
                    here += strcmp(served[k], src->m[i].name) == 0;
            }
        if (here) {
            s.m[s.n_models] = src->m[i];
            s.m[s.n_models++].replicas = here;
        }
    }
    if ((rc = pf_write(&s, &b)) < 0) {
        rc = us_err_set(err, rc, "writing the slice of node %s: %s", or_none(node),
                        usher_status_message(rc));
        goto out;
    }
    if (fwrite(us_buf_str(&b), 1, b.len, f) != b.len)
        rc = us_err_set(err, USHER_ERR_IO, "writing the slice of node %s failed", or_none(node));
out:
    us_buf_free(&b);
    us_free(s.g);
    us_free(s.m);
    us_free(s.groups);
    return rc;
}
