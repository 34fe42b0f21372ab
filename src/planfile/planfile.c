/*
 * planfile.c - plan.json schema version 1: the one reader and the one
 * writer (layer 2). The subset read, the limits and the invariants are in
 * planfile.h; the fields in docs/plan-json.md.
 */
#include "planfile/planfile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/yaml.h"

#define PATH_MAX_LEN 128

/* ---- reading ------------------------------------------------------------------ */

/* the full name of field key under prefix ("gpus[3].replicas[1]" + "batch") */
static const char *field(char *buf, const char *prefix, const char *key)
{
    /* never cut: two indices of 20 digits and the longest key take 66 bytes */
    int n = prefix ? snprintf(buf, PATH_MAX_LEN, "%s.%s", prefix, key)
                   : snprintf(buf, PATH_MAX_LEN, "%s", key);
    return n < PATH_MAX_LEN ? buf : "?";
}

/* an optional number in [0, PF_MAX_NUMBER] (absent or null: 0) */
static int num(const us_yaml_doc *d, const us_yaml_node *map, const char *prefix, const char *key,
               double *out, usher_error *err)
{
    char f[PATH_MAX_LEN];
    return us_yaml_get_f64(d, map, key, field(f, prefix, key), 0, PF_MAX_NUMBER, out, 0, false,
                           err);
}

/* an optional count (absent or null: 0) */
static int count(const us_yaml_doc *d, const us_yaml_node *map, const char *prefix,
                 const char *key, uint32_t *out, usher_error *err)
{
    char f[PATH_MAX_LEN];
    int64_t v = 0;
    int rc = us_yaml_get_i64(d, map, key, field(f, prefix, key), 0, UINT32_MAX, &v, 0, false, err);
    *out = (uint32_t)v;
    return rc;
}

/* a string; absent or null: NULL, or an error when required; required ones are not empty */
static int str(const us_yaml_doc *d, const us_yaml_node *map, const char *prefix, const char *key,
               bool required, const char **out, usher_error *err)
{
    char f[PATH_MAX_LEN];
    field(f, prefix, key);
    int rc = us_yaml_get_str(d, map, key, f, out, NULL, err);
    if (rc < 0)
        return rc;
    if (required && !*out)
        return us_yaml_error(d, map, err, USHER_ERR_PARSE, "field '%s': missing (required)", f);
    if (required && !**out)
        return us_yaml_error(d, us_yaml_get(map, key), err, USHER_ERR_PARSE,
                             "field '%s': empty", f);
    return USHER_OK;
}

/* an optional object or sequence (absent or null: *out NULL) */
static int node(const us_yaml_doc *d, const us_yaml_node *map, const char *prefix,
                const char *key, us_yaml_kind kind, bool required, const us_yaml_node **out,
                usher_error *err)
{
    char f[PATH_MAX_LEN];
    return us_yaml_get_node(d, map, key, field(f, prefix, key), kind, required, out, err);
}

/* an item of a sequence that must be an object */
static int object(const us_yaml_doc *d, const us_yaml_node *n, const char *path,
                  usher_error *err)
{
    if (us_yaml_node_kind(n) != US_YAML_MAP)
        return us_yaml_error(d, n, err, USHER_ERR_PARSE, "%s: expected an object", path);
    return USHER_OK;
}

static int nomem(const us_yaml_doc *d, usher_error *err)
{
    return us_yaml_error(d, NULL, err, USHER_ERR_NOMEM, "out of memory");
}

static int replica_doc(const us_yaml_doc *d, const us_yaml_node *n, const char *rp,
                       pf_replica *r, usher_error *err)
{
    int rc;
    char f[PATH_MAX_LEN];
    int64_t batch = 0;
    if ((rc = object(d, n, rp, err)) < 0 ||
        (rc = str(d, n, rp, "model", true, &r->model, err)) < 0 ||
        (rc = us_yaml_get_i64(d, n, "batch", field(f, rp, "batch"), 1, PF_MAX_BATCH, &batch, 0,
                              true, err)) < 0 ||
        (rc = us_yaml_get_f64(d, n, "share", field(f, rp, "share"), 1, 100, &r->share, 0, true,
                              err)) < 0 ||
        (rc = num(d, n, rp, "memory_mb", &r->memory_mb, err)) < 0 ||
        (rc = num(d, n, rp, "latency_ms", &r->latency_ms, err)) < 0 ||
        (rc = num(d, n, rp, "latency_colocated_ms", &r->latency_colocated_ms, err)) < 0 ||
        (rc = num(d, n, rp, "throughput", &r->throughput, err)) < 0 ||
        (rc = num(d, n, rp, "throughput_colocated", &r->throughput_colocated, err)) < 0 ||
        (rc = num(d, n, rp, "latency_p99_ms", &r->latency_p99_ms, err)) < 0 ||
        (rc = num(d, n, rp, "load", &r->load, err)) < 0 ||
        (rc = str(d, n, rp, "group", false, &r->group, err)) < 0)
        return rc;
    r->batch = (int)batch;
    r->line = us_yaml_line(n);
    return USHER_OK;
}

static int gpu_doc(const us_yaml_doc *d, const us_yaml_node *n, size_t i, pf_gpu *g,
                   usher_error *err)
{
    int rc;
    char fp[PATH_MAX_LEN], f[PATH_MAX_LEN];
    const us_yaml_node *reps = NULL;
    int64_t id = (int64_t)i;
    snprintf(fp, sizeof fp, "gpus[%zu]", i);
    if ((rc = object(d, n, fp, err)) < 0 ||
        (rc = us_yaml_get_i64(d, n, "id", field(f, fp, "id"), 0, INT64_MAX, &id, id, false,
                              err)) < 0)
        return rc;
    if (id != (int64_t)i)
        return us_yaml_error(d, us_yaml_get(n, "id"), err, USHER_ERR_PARSE,
                             "field '%s': %zu (the GPU's place in the list), not %lld", f, i,
                             (long long)id);
    const us_yaml_node *ix = us_yaml_get(n, "index");
    int64_t index = 0;
    g->has_index = ix && !us_yaml_is_null(ix);
    if ((rc = str(d, n, fp, "type", true, &g->type, err)) < 0 ||
        (rc = str(d, n, fp, "node", false, &g->node, err)) < 0 ||
        (rc = us_yaml_get_i64(d, n, "index", field(f, fp, "index"), 0, PF_MAX_GPU_INDEX, &index,
                              0, false, err)) < 0 ||
        (rc = num(d, n, fp, "price_per_hour", &g->price_per_hour, err)) < 0 ||
        (rc = num(d, n, fp, "compute_pct", &g->compute_pct, err)) < 0 ||
        (rc = num(d, n, fp, "memory_pct", &g->memory_pct, err)) < 0 ||
        (rc = num(d, n, fp, "power_w", &g->power_w, err)) < 0 ||
        (rc = node(d, n, fp, "replicas", US_YAML_SEQ, true, &reps, err)) < 0)
        return rc;
    g->index = (uint32_t)index;
    g->line = us_yaml_line(n);
    size_t nr = us_yaml_len(reps);
    if (!(g->r = us_calloc(nr ? nr : 1, sizeof *g->r)))
        return nomem(d, err);
    for (size_t r = 0; r < nr; r++) {
        char rp[PATH_MAX_LEN];
        if (snprintf(rp, sizeof rp, "%s.replicas[%zu]", fp, r) >= (int)sizeof rp)
            return us_yaml_error(d, NULL, err, USHER_ERR_INTERNAL, "a field name is too long");
        if ((rc = replica_doc(d, us_yaml_item(reps, r), rp, &g->r[r], err)) < 0)
            return rc;
        g->n = (uint32_t)r + 1;
    }
    return USHER_OK;
}

/* models[i].dims: {name: integer or "batch"} (allocated into m) */
static int model_dims(const us_yaml_doc *d, const us_yaml_node *n, const char *fp, pf_model *m,
                      usher_error *err)
{
    char f[PATH_MAX_LEN];
    const us_yaml_node *l = NULL;
    int rc = node(d, n, fp, "dims", US_YAML_MAP, false, &l, err);
    if (rc < 0 || !l)
        return rc;
    size_t nl = us_yaml_len(l);
    if (nl > PF_MAX_MODEL_DIMS)
        return us_yaml_error(d, l, err, USHER_ERR_LIMIT, "field '%s': at most %d dims, not %zu",
                             field(f, fp, "dims"), PF_MAX_MODEL_DIMS, nl);
    pf_model_dim *x = nl ? us_calloc(nl, sizeof *x) : NULL;
    if (nl && !x)
        return us_yaml_error(d, NULL, err, USHER_ERR_NOMEM, "out of memory");
    m->dims = x;
    for (size_t k = 0; k < nl; k++) {
        const us_yaml_node *v = us_yaml_value_at(l, k);
        const char *vs = us_yaml_str(v);
        x[k].name = us_yaml_key_at(l, k);
        m->n_dims = (uint32_t)k + 1; /* freed with the plan on any error */
        if (vs && strcmp(vs, "batch") == 0)
            continue; /* value 0 */
        char fk[PATH_MAX_LEN + 72];
        snprintf(fk, sizeof fk, "%s.%.64s", field(f, fp, "dims"), x[k].name);
        if ((rc = us_yaml_get_i64(d, l, x[k].name, fk, 1, PF_MAX_DIM_VALUE, &x[k].value, 0, true,
                                  err)) < 0)
            return rc;
    }
    return USHER_OK;
}

static int model_doc(const us_yaml_doc *d, const us_yaml_node *n, size_t i, pf_model *m,
                     usher_error *err)
{
    int rc;
    char fp[PATH_MAX_LEN], f[PATH_MAX_LEN];
    int64_t prio = 0;
    snprintf(fp, sizeof fp, "models[%zu]", i);
    if ((rc = object(d, n, fp, err)) < 0 || (rc = str(d, n, fp, "name", true, &m->name, err)) < 0 ||
        (rc = num(d, n, fp, "rate", &m->rate, err)) < 0 ||
        (rc = num(d, n, fp, "slo_ms", &m->slo_ms, err)) < 0 ||
        (rc = num(d, n, fp, "goodput", &m->goodput, err)) < 0 ||
        (rc = num(d, n, fp, "unserved", &m->unserved, err)) < 0 ||
        (rc = count(d, n, fp, "replicas", &m->replicas, err)) < 0 ||
        (rc = us_yaml_get_i64(d, n, "priority", field(f, fp, "priority"), 0, PF_MAX_PRIORITY,
                              &prio, 0, false, err)) < 0 ||
        (rc = str(d, n, fp, "group", false, &m->group, err)) < 0 ||
        (rc = str(d, n, fp, "spread", false, &m->spread, err)) < 0 ||
        (rc = model_dims(d, n, fp, m, err)) < 0)
        return rc;
    if (m->spread && strcmp(m->spread, "node") && strcmp(m->spread, "rack") &&
        strcmp(m->spread, "zone"))
        return us_yaml_error(d, us_yaml_get(n, "spread"), err, USHER_ERR_PARSE,
                             "field '%s': node, rack or zone, not '%.32s'", field(f, fp, "spread"),
                             m->spread);
    m->priority = (int)prio;
    return USHER_OK;
}

/* true or false; absent or null: false */
static int boolean(const us_yaml_doc *d, const us_yaml_node *map, const char *key, bool *out,
                   usher_error *err)
{
    const us_yaml_node *n = us_yaml_get(map, key);
    *out = false;
    if (!n || us_yaml_is_null(n))
        return USHER_OK;
    const char *s = us_yaml_str(n);
    if (s && us_yaml_is_plain(n) && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
        *out = s[0] == 't';
        return USHER_OK;
    }
    return us_yaml_error(d, n, err, USHER_ERR_PARSE, "field '%s': true or false", key);
}

static int top_doc(const us_yaml_doc *d, const us_yaml_node *root, pf_plan *p, usher_error *err)
{
    int rc;
    const us_yaml_node *t = NULL, *rp = NULL;
    if ((rc = str(d, root, NULL, "generator", false, &p->generator, err)) < 0 ||
        (rc = str(d, root, NULL, "policy", false, &p->policy, err)) < 0 ||
        (rc = str(d, root, NULL, "objective", false, &p->objective, err)) < 0 ||
        (rc = str(d, root, NULL, "workload", false, &p->workload, err)) < 0 ||
        (rc = str(d, root, NULL, "cluster", false, &p->cluster, err)) < 0 ||
        (rc = boolean(d, root, "feasible", &p->feasible, err)) < 0 ||
        (rc = str(d, root, NULL, "note", false, &p->note, err)) < 0 ||
        (rc = num(d, root, NULL, "profile_seconds", &p->profile_seconds, err)) < 0 ||
        (rc = num(d, root, NULL, "plan_seconds", &p->plan_seconds, err)) < 0 ||
        (rc = node(d, root, NULL, "replan", US_YAML_MAP, false, &rp, err)) < 0 ||
        (rc = node(d, root, NULL, "totals", US_YAML_MAP, false, &t, err)) < 0)
        return rc;
    p->has_replan = rp != NULL;
    pf_replan *r = &p->replan;
    pf_totals *s = &p->totals;
    if ((rc = str(d, rp, "replan", "from", false, &r->from, err)) < 0 ||
        (rc = count(d, rp, "replan", "started", &r->started, err)) < 0 ||
        (rc = count(d, rp, "replan", "stopped", &r->stopped, err)) < 0 ||
        (rc = count(d, rp, "replan", "replicas_before", &r->replicas_before, err)) < 0 ||
        (rc = count(d, rp, "replan", "max_moves", &r->max_moves, err)) < 0 ||
        (rc = count(d, rp, "replan", "lost_gpus", &r->lost_gpus, err)) < 0 ||
        (rc = count(d, rp, "replan", "lost_replicas", &r->lost_replicas, err)) < 0 ||
        (rc = count(d, t, "totals", "gpus", &s->gpus, err)) < 0 ||
        (rc = count(d, t, "totals", "replicas", &s->replicas, err)) < 0 ||
        (rc = num(d, t, "totals", "cost_per_hour", &s->cost_per_hour, err)) < 0 ||
        (rc = num(d, t, "totals", "rate", &s->rate, err)) < 0 ||
        (rc = num(d, t, "totals", "goodput", &s->goodput, err)) < 0 ||
        (rc = num(d, t, "totals", "unserved", &s->unserved, err)) < 0 ||
        (rc = num(d, t, "totals", "compute_utilisation_pct", &s->compute_utilisation_pct,
                  err)) < 0 ||
        (rc = num(d, t, "totals", "memory_utilisation_pct", &s->memory_utilisation_pct, err)) <
            0 ||
        (rc = num(d, t, "totals", "power_w", &s->power_w, err)) < 0 ||
        (rc = num(d, t, "totals", "energy_kwh_per_hour", &s->energy_kwh_per_hour, err)) < 0 ||
        (rc = num(d, t, "totals", "joules_per_request", &s->joules_per_request, err)) < 0)
        return rc;
    return USHER_OK;
}

/* nodes[i]: name, rack, zone, labels */
static int node_doc(const us_yaml_doc *d, const us_yaml_node *n, size_t i, pf_node *x,
                    usher_error *err)
{
    int rc;
    char fp[PATH_MAX_LEN], f[PATH_MAX_LEN];
    const us_yaml_node *l = NULL;
    snprintf(fp, sizeof fp, "nodes[%zu]", i);
    x->line = us_yaml_line(n);
    if ((rc = object(d, n, fp, err)) < 0 || (rc = str(d, n, fp, "name", true, &x->name, err)) < 0 ||
        (rc = str(d, n, fp, "rack", false, &x->rack, err)) < 0 ||
        (rc = str(d, n, fp, "zone", false, &x->zone, err)) < 0 ||
        (rc = node(d, n, fp, "labels", US_YAML_MAP, false, &l, err)) < 0)
        return rc;
    size_t nl = us_yaml_len(l);
    if (nl > PF_MAX_LABELS)
        return us_yaml_error(d, l, err, USHER_ERR_LIMIT, "field '%s': at most %d labels, not %zu",
                             field(f, fp, "labels"), PF_MAX_LABELS, nl);
    if (nl && !(x->labels = us_calloc(2 * nl, sizeof *x->labels)))
        return nomem(d, err);
    for (size_t k = 0; k < nl; k++) {
        const us_yaml_node *v = us_yaml_value_at(l, k);
        if (us_yaml_node_kind(v) != US_YAML_SCALAR)
            return us_yaml_error(d, v, err, USHER_ERR_PARSE, "field '%s.%.64s': a string",
                                 field(f, fp, "labels"), us_yaml_key_at(l, k));
        x->labels[2 * k] = us_yaml_key_at(l, k);
        x->labels[2 * k + 1] = us_yaml_str(v);
        x->n_labels = (uint32_t)k + 1;
    }
    return USHER_OK;
}

static bool group_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > PF_MAX_GROUP_NAME)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return false;
    return true;
}

static bool is_model(const pf_plan *p, const char *name)
{
    for (uint32_t i = 0; i < p->n_models; i++)
        if (strcmp(p->m[i].name, name) == 0)
            return true;
    return false;
}

/* merge_groups[i]: checked against models[] (read before) and the groups before it */
static int group_doc(const us_yaml_doc *d, const us_yaml_node *n, size_t i, pf_plan *p,
                     usher_error *err)
{
    int rc;
    char fp[PATH_MAX_LEN], f[PATH_MAX_LEN];
    const us_yaml_node *mem = NULL;
    pf_group *g = &p->groups[i];
    snprintf(fp, sizeof fp, "merge_groups[%zu]", i);
    g->line = us_yaml_line(n);
    if ((rc = object(d, n, fp, err)) < 0 || (rc = str(d, n, fp, "name", true, &g->name, err)) < 0 ||
        (rc = str(d, n, fp, "kind", false, &g->kind, err)) < 0 ||
        (rc = num(d, n, fp, "weight_bytes_before", &g->weight_bytes_before, err)) < 0 ||
        (rc = num(d, n, fp, "weight_bytes_after", &g->weight_bytes_after, err)) < 0 ||
        (rc = node(d, n, fp, "members", US_YAML_SEQ, true, &mem, err)) < 0)
        return rc;
    if (!group_name_ok(g->name))
        return us_yaml_error(d, us_yaml_get(n, "name"), err, USHER_ERR_PARSE,
                             "field '%s': 1 to %d letters, digits, '-', '_', '.', not '%.64s'",
                             field(f, fp, "name"), PF_MAX_GROUP_NAME, g->name);
    if (is_model(p, g->name))
        return us_yaml_error(d, us_yaml_get(n, "name"), err, USHER_ERR_PARSE,
                             "field '%s': '%.64s' is a model's name", field(f, fp, "name"),
                             g->name);
    for (size_t k = 0; k < i; k++)
        if (strcmp(p->groups[k].name, g->name) == 0)
            return us_yaml_error(d, us_yaml_get(n, "name"), err, USHER_ERR_PARSE,
                                 "field '%s': '%.64s' names merge_groups[%zu] too",
                                 field(f, fp, "name"), g->name, k);
    if (g->kind && strcmp(g->kind, "shared") && strcmp(g->kind, "stacked") &&
        strcmp(g->kind, "side-by-side"))
        return us_yaml_error(d, us_yaml_get(n, "kind"), err, USHER_ERR_PARSE,
                             "field '%s': shared, stacked or side-by-side, not '%.32s'",
                             field(f, fp, "kind"), g->kind);
    size_t nm = us_yaml_len(mem);
    if (nm < 2 || nm > PF_MAX_GROUP_MEMBERS)
        return us_yaml_error(d, mem, err, USHER_ERR_PARSE, "field '%s': 2 to %d models, not %zu",
                             field(f, fp, "members"), PF_MAX_GROUP_MEMBERS, nm);
    if (!(g->members = us_calloc(nm, sizeof *g->members)))
        return nomem(d, err);
    for (size_t k = 0; k < nm; k++) {
        const us_yaml_node *v = us_yaml_item(mem, k);
        char mf[PATH_MAX_LEN + 32]; /* fp is "merge_groups[N]": short */
        snprintf(mf, sizeof mf, "%.*s.members[%zu]", PATH_MAX_LEN - 1, fp, k);
        const char *s = us_yaml_node_kind(v) == US_YAML_SCALAR ? us_yaml_str(v) : NULL;
        if (!s || !*s)
            return us_yaml_error(d, v, err, USHER_ERR_PARSE, "field '%s': a model's name", mf);
        if (p->n_models && !is_model(p, s))
            return us_yaml_error(d, v, err, USHER_ERR_PARSE,
                                 "field '%s': '%.64s' is not in models[]", mf, s);
        for (size_t j = 0; j <= i; j++)
            for (uint32_t l = 0; l < (j == i ? (uint32_t)k : p->groups[j].n_members); l++)
                if (strcmp(p->groups[j].members[l], s) == 0)
                    return us_yaml_error(d, v, err, USHER_ERR_PARSE,
                                         "field '%s': '%.64s' is a member of merge_groups[%zu] "
                                         "already", mf, s, j);
        g->members[k] = s;
        g->n_members = (uint32_t)k + 1;
    }
    return USHER_OK;
}

static int plan_doc(const us_yaml_doc *d, pf_plan *p, usher_error *err)
{
    int rc;
    const us_yaml_node *root = us_yaml_root(d), *gpus = NULL, *models = NULL, *nodes = NULL,
                       *groups = NULL;
    int64_t version = 0;
    if (!root || us_yaml_node_kind(root) != US_YAML_MAP)
        return us_yaml_error(d, root, err, USHER_ERR_PARSE, "expected a plan (a JSON object)");
    if ((rc = us_yaml_get_i64(d, root, "schema_version", NULL, INT64_MIN, INT64_MAX, &version, 0,
                              true, err)) < 0)
        return rc;
    if (version != PF_SCHEMA_VERSION)
        return us_yaml_error(d, us_yaml_get(root, "schema_version"), err, USHER_ERR_PARSE,
                             "field 'schema_version': %lld, but this usher reads version %d",
                             (long long)version, PF_SCHEMA_VERSION);
    if ((rc = top_doc(d, root, p, err)) < 0 ||
        (rc = node(d, root, NULL, "models", US_YAML_SEQ, false, &models, err)) < 0 ||
        (rc = node(d, root, NULL, "gpus", US_YAML_SEQ, true, &gpus, err)) < 0 ||
        (rc = node(d, root, NULL, "nodes", US_YAML_SEQ, false, &nodes, err)) < 0 ||
        (rc = node(d, root, NULL, "merge_groups", US_YAML_SEQ, false, &groups, err)) < 0)
        return rc;
    size_t nn = us_yaml_len(nodes);
    if (nn && !(p->nodes = us_calloc(nn, sizeof *p->nodes)))
        return nomem(d, err);
    for (size_t i = 0; i < nn; i++) {
        p->n_nodes = (uint32_t)i + 1; /* its labels are freed with the plan on any error */
        if ((rc = node_doc(d, us_yaml_item(nodes, i), i, &p->nodes[i], err)) < 0)
            return rc;
    }
    size_t nm = us_yaml_len(models), ng = us_yaml_len(gpus);
    if (!(p->m = us_calloc(nm ? nm : 1, sizeof *p->m)) ||
        !(p->g = us_calloc(ng ? ng : 1, sizeof *p->g)))
        return nomem(d, err);
    for (size_t i = 0; i < nm; i++) {
        p->n_models = (uint32_t)i + 1; /* its dims are freed with the plan on any error */
        if ((rc = model_doc(d, us_yaml_item(models, i), i, &p->m[i], err)) < 0)
            return rc;
    }
    size_t nr = us_yaml_len(groups);
    if (nr && !(p->groups = us_calloc(nr, sizeof *p->groups)))
        return nomem(d, err);
    for (size_t i = 0; i < nr; i++) {
        p->n_groups = (uint32_t)i + 1; /* its members are freed with the plan on any error */
        if ((rc = group_doc(d, us_yaml_item(groups, i), i, p, err)) < 0)
            return rc;
    }
    for (size_t i = 0; i < ng; i++) {
        p->n_gpus = (uint32_t)i + 1; /* its replicas are freed with the plan on any error */
        if ((rc = gpu_doc(d, us_yaml_item(gpus, i), i, &p->g[i], err)) < 0)
            return rc;
    }
    /* with merge groups, a replica serves a model of models[] or a group (plans without
     * groups are read as before: their callers match replicas to what they know); a model
     * is served alone or in its group, never both (a member's replica given alone too would
     * add to the group's, each of which serves every member) */
    for (uint32_t i = 0; i < p->n_gpus; i++)
        for (uint32_t k = 0; k < p->g[i].n; k++) {
            const char *mn = p->g[i].r[k].model;
            for (uint32_t j = 0; j < p->n_groups; j++)
                for (uint32_t l = 0; l < p->groups[j].n_members; l++)
                    if (strcmp(p->groups[j].members[l], mn) == 0) {
                        const us_yaml_node *reps = us_yaml_get(us_yaml_item(gpus, i), "replicas");
                        return us_yaml_error(
                            d, us_yaml_get(us_yaml_item(reps, k), "model"), err, USHER_ERR_PARSE,
                            "field 'gpus[%u].replicas[%u].model': '%.64s' is a member of merge "
                            "group '%.64s' (merge_groups[%u]) and is placed alone too: a model "
                            "is served alone or in its group, not both; place the group's "
                            "replicas only",
                            i, k, mn, p->groups[j].name, j);
                    }
            if (!p->n_groups || !p->n_models)
                continue;
            bool known = is_model(p, mn);
            for (uint32_t j = 0; !known && j < p->n_groups; j++)
                known = strcmp(p->groups[j].name, mn) == 0;
            if (known)
                continue;
            const us_yaml_node *reps = us_yaml_get(us_yaml_item(gpus, i), "replicas");
            return us_yaml_error(d, us_yaml_get(us_yaml_item(reps, k), "model"), err,
                                 USHER_ERR_PARSE,
                                 "field 'gpus[%u].replicas[%u].model': '%.64s' is neither in "
                                 "models[] nor a merge group's name", i, k, mn);
        }
    return USHER_OK;
}

static us_yaml_limits limits(void)
{
    us_yaml_limits lim = us_yaml_default_limits();
    lim.max_bytes = PF_MAX_BYTES;
    lim.max_nodes = PF_MAX_NODES;
    return lim;
}

static int read_doc(us_yaml_doc *d, pf_plan *out, usher_error *err)
{
    out->doc = d;
    out->label = us_yaml_label(d);
    int rc = plan_doc(d, out, err);
    if (rc < 0)
        pf_free(out);
    return rc;
}

int pf_load(const char *path, pf_plan *out, usher_error *err)
{
    memset(out, 0, sizeof *out);
    us_yaml_doc *d = NULL;
    us_yaml_limits lim = limits();
    int rc = us_yaml_load(path, &lim, &d, err);
    return rc < 0 ? rc : read_doc(d, out, err);
}

int pf_parse(const char *text, size_t len, const char *label, pf_plan *out, usher_error *err)
{
    memset(out, 0, sizeof *out);
    us_yaml_doc *d = NULL;
    us_yaml_limits lim = limits();
    int rc = us_yaml_parse(text, len, label, &lim, &d, err);
    return rc < 0 ? rc : read_doc(d, out, err);
}

void pf_free(pf_plan *p)
{
    if (p->g)
        for (uint32_t i = 0; i < p->n_gpus; i++)
            us_free(p->g[i].r);
    us_free(p->g);
    for (uint32_t i = 0; p->m && i < p->n_models; i++)
        us_free(p->m[i].dims);
    us_free(p->m);
    for (uint32_t i = 0; p->nodes && i < p->n_nodes; i++)
        us_free(p->nodes[i].labels);
    for (uint32_t i = 0; p->groups && i < p->n_groups; i++)
        us_free((void *)p->groups[i].members);
    us_free(p->groups);
    us_free(p->nodes);
    us_yaml_free(p->doc);
    memset(p, 0, sizeof *p);
}

/* ---- writing ------------------------------------------------------------------ */

/* numbers in plan.json keep 6 significant digits: readable, stable in diffs */
static void wnum(us_json *j, const char *key, double v)
{
    us_json_key(j, key);
    char b[32];
    snprintf(b, sizeof b, "%.6g", isfinite(v) ? v : 0);
    double r = strtod(b, NULL);
    us_json_double(j, r);
}

static void wstr(us_json *j, const char *key, const char *v)
{
    us_json_key(j, key);
    if (v && *v)
        us_json_str(j, v);
    else
        us_json_null(j);
}

static void wuint(us_json *j, const char *key, uint64_t v)
{
    us_json_key(j, key);
    us_json_uint(j, v);
}

static void write_totals(us_json *j, const pf_totals *t)
{
    us_json_key(j, "totals");
    us_json_obj_begin(j);
    wuint(j, "gpus", t->gpus);
    wuint(j, "replicas", t->replicas);
    wnum(j, "cost_per_hour", t->cost_per_hour);
    wnum(j, "rate", t->rate);
    wnum(j, "goodput", t->goodput);
    wnum(j, "unserved", t->unserved);
    wnum(j, "compute_utilisation_pct", t->compute_utilisation_pct);
    wnum(j, "memory_utilisation_pct", t->memory_utilisation_pct);
    wnum(j, "power_w", t->power_w);
    wnum(j, "energy_kwh_per_hour", t->energy_kwh_per_hour);
    wnum(j, "joules_per_request", t->joules_per_request);
    us_json_obj_end(j);
}

static void write_gpu(us_json *j, uint32_t i, const pf_gpu *g)
{
    us_json_obj_begin(j);
    wuint(j, "id", i);
    us_json_key(j, "type");
    us_json_str(j, g->type ? g->type : "");
    wstr(j, "node", g->node);
    if (g->has_index)
        wuint(j, "index", g->index);
    wnum(j, "price_per_hour", g->price_per_hour);
    wnum(j, "compute_pct", g->compute_pct);
    wnum(j, "memory_pct", g->memory_pct);
    wnum(j, "power_w", g->power_w);
    us_json_key(j, "replicas");
    us_json_arr_begin(j);
    for (uint32_t r = 0; r < g->n; r++) {
        const pf_replica *rp = &g->r[r];
        us_json_obj_begin(j);
        us_json_key(j, "model");
        us_json_str(j, rp->model ? rp->model : "");
        us_json_key(j, "batch");
        us_json_int(j, rp->batch);
        wnum(j, "share", rp->share);
        wnum(j, "memory_mb", rp->memory_mb);
        wnum(j, "latency_ms", rp->latency_ms);
        if (rp->latency_colocated_ms > 0)
            wnum(j, "latency_colocated_ms", rp->latency_colocated_ms);
        wnum(j, "throughput", rp->throughput);
        if (rp->throughput_colocated > 0)
            wnum(j, "throughput_colocated", rp->throughput_colocated);
        if (rp->latency_p99_ms > 0 && rp->latency_p99_ms <= PF_MAX_NUMBER)
            wnum(j, "latency_p99_ms", rp->latency_p99_ms);
        wnum(j, "load", rp->load);
        wstr(j, "group", rp->group);
        us_json_obj_end(j);
    }
    us_json_arr_end(j);
    us_json_obj_end(j);
}

int pf_write(const pf_plan *p, us_buf *out)
{
    us_json j;
    us_json_init(&j, out);
    j.pretty = 4; /* replicas on one line each */
    us_json_obj_begin(&j);
    us_json_key(&j, "schema_version");
    us_json_int(&j, PF_SCHEMA_VERSION);
    wstr(&j, "generator", p->generator);
    wstr(&j, "policy", p->policy);
    wstr(&j, "objective", p->objective);
    wstr(&j, "workload", p->workload);
    wstr(&j, "cluster", p->cluster);
    us_json_key(&j, "feasible");
    us_json_bool(&j, p->feasible);
    wstr(&j, "note", p->note);
    wnum(&j, "profile_seconds", p->profile_seconds);
    wnum(&j, "plan_seconds", p->plan_seconds);
    if (p->has_replan) {
        us_json_key(&j, "replan");
        us_json_obj_begin(&j);
        wstr(&j, "from", p->replan.from);
        wuint(&j, "started", p->replan.started);
        wuint(&j, "stopped", p->replan.stopped);
        wuint(&j, "replicas_before", p->replan.replicas_before);
        wuint(&j, "max_moves", p->replan.max_moves);
        wuint(&j, "lost_gpus", p->replan.lost_gpus);
        wuint(&j, "lost_replicas", p->replan.lost_replicas);
        us_json_obj_end(&j);
    }
    write_totals(&j, &p->totals);
    us_json_key(&j, "models");
    us_json_arr_begin(&j);
    for (uint32_t i = 0; i < p->n_models; i++) {
        const pf_model *m = &p->m[i];
        us_json_obj_begin(&j);
        us_json_key(&j, "name");
        us_json_str(&j, m->name ? m->name : "");
        wnum(&j, "rate", m->rate);
        wnum(&j, "slo_ms", m->slo_ms);
        wnum(&j, "goodput", m->goodput);
        wnum(&j, "unserved", m->unserved);
        wuint(&j, "replicas", m->replicas);
        us_json_key(&j, "priority");
        us_json_int(&j, m->priority);
        wstr(&j, "group", m->group);
        if (m->spread)
            wstr(&j, "spread", m->spread);
        if (m->n_dims) {
            us_json_key(&j, "dims");
            us_json_obj_begin(&j);
            for (uint32_t k = 0; k < m->n_dims; k++) {
                us_json_key(&j, m->dims[k].name);
                if (m->dims[k].value)
                    us_json_int(&j, m->dims[k].value);
                else
                    us_json_str(&j, "batch");
            }
            us_json_obj_end(&j);
        }
        us_json_obj_end(&j);
    }
    us_json_arr_end(&j);
    if (p->n_nodes) {
        us_json_key(&j, "nodes");
        us_json_arr_begin(&j);
        for (uint32_t i = 0; i < p->n_nodes; i++) {
            const pf_node *x = &p->nodes[i];
            us_json_obj_begin(&j);
            wstr(&j, "name", x->name);
            wstr(&j, "rack", x->rack);
            wstr(&j, "zone", x->zone);
            us_json_key(&j, "labels");
            us_json_obj_begin(&j);
            for (uint32_t k = 0; k < x->n_labels; k++) {
                us_json_key(&j, x->labels[2 * k]);
                us_json_str(&j, x->labels[2 * k + 1]);
            }
            us_json_obj_end(&j);
            us_json_obj_end(&j);
        }
        us_json_arr_end(&j);
    }
    if (p->n_groups) {
        us_json_key(&j, "merge_groups");
        us_json_arr_begin(&j);
        for (uint32_t i = 0; i < p->n_groups; i++) {
            const pf_group *g = &p->groups[i];
            us_json_obj_begin(&j);
            wstr(&j, "name", g->name);
            wstr(&j, "kind", g->kind);
            us_json_key(&j, "members");
            us_json_arr_begin(&j);
            for (uint32_t k = 0; k < g->n_members; k++)
                us_json_str(&j, g->members[k] ? g->members[k] : "");
            us_json_arr_end(&j);
            wnum(&j, "weight_bytes_before", g->weight_bytes_before);
            wnum(&j, "weight_bytes_after", g->weight_bytes_after);
            us_json_obj_end(&j);
        }
        us_json_arr_end(&j);
    }
    us_json_key(&j, "gpus");
    us_json_arr_begin(&j);
    for (uint32_t i = 0; i < p->n_gpus; i++)
        write_gpu(&j, i, &p->g[i]);
    us_json_arr_end(&j);
    us_json_obj_end(&j);
    us_buf_putc(out, '\n');
    if (j.bad || !us_buf_ok(out))
        return out->oom ? USHER_ERR_NOMEM : USHER_ERR_LIMIT;
    return USHER_OK;
}
