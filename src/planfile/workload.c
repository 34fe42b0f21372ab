/*
 * workload.c - workload.yaml's fields (layer 2; the format is in workload.h
 * and docs/plan-input.md). Strict: every field typed and range-checked,
 * unknown keys refused, a name declared twice refused with the line of the
 * first; nothing is loaded or profiled here (the planner does that with what
 * this returns).
 */
#include "planfile/workload.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/hash.h"

#define MAX_RATE 1e9     /* requests/s of one model */
#define MAX_SLO_MS 3.6e6 /* one hour */
#define MAX_PRIORITY 1000

bool pf_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PF_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':' || c == '/'))
            return false;
    }
    return true;
}

int pf_need_name(const us_yaml_doc *d, const us_yaml_node *map, const char *key,
                 const char *path, const char **out, bool required, usher_error *err)
{
    const char *v = NULL;
    int rc = us_yaml_get_str(d, map, key, path, &v, NULL, err);
    if (rc < 0)
        return rc;
    const us_yaml_node *n = us_yaml_get(map, key);
    if (!v || us_yaml_is_null(n)) {
        *out = NULL;
        if (!required)
            return USHER_OK;
        return us_yaml_error(d, map, err, USHER_ERR_PARSE, "field '%s': missing (required)", path);
    }
    if (!pf_name_ok(v))
        return us_yaml_error(d, n, err, USHER_ERR_PARSE,
                             "field '%s': 1 to %d characters of letters, digits and - _ . : /",
                             path, PF_NAME_MAX);
    *out = v;
    return USHER_OK;
}

/* path of `model` relative to the workload file's directory */
static char *resolve(const char *wl, const char *model)
{
    if (model[0] == '/')
        return us_strdup(model);
    const char *slash = strrchr(wl, '/');
    size_t dl = slash ? (size_t)(slash - wl) + 1 : 0;
    size_t n = dl + strlen(model) + 1;
    char *s = us_malloc(n);
    if (s)
        snprintf(s, n, "%.*s%s", (int)dl, wl, model);
    return s;
}

const char *pf_spread_name(pf_spread s)
{
    return s == PF_SPREAD_NODE ? "node" : s == PF_SPREAD_RACK ? "rack" : s == PF_SPREAD_ZONE ? "zone" : "none";
}

/* spread: none, node, rack or zone at key of map (absent or null: def) */
static int spread_field(const us_yaml_doc *d, const us_yaml_node *map, const char *path,
                        pf_spread def, pf_spread *out, usher_error *err)
{
    const char *v = NULL;
    int rc = us_yaml_get_str(d, map, "spread", path, &v, NULL, err);
    if (rc < 0)
        return rc;
    *out = def;
    if (!v || us_yaml_is_null(us_yaml_get(map, "spread")))
        return USHER_OK;
    for (int k = PF_SPREAD_NONE; k <= PF_SPREAD_ZONE; k++)
        if (strcmp(v, pf_spread_name((pf_spread)k)) == 0) {
            *out = (pf_spread)k;
            return USHER_OK;
        }
    return us_yaml_error(d, us_yaml_get(map, "spread"), err, USHER_ERR_PARSE,
                         "field '%s': none, node, rack or zone, not '%.32s'", path, v);
}

/* dims: {name: value, ...} at f of entry m (absent or null: none): each name
 * 1 .. PF_DIM_NAME_MAX printable characters without spaces, each value an
 * integer in [1, PF_DIM_VALUE_MAX] or batch */
static int dims_field(const us_yaml_doc *d, const us_yaml_node *m, const char *f,
                      const char *model, pf_workload_model *x, usher_error *err)
{
    const us_yaml_node *map = NULL;
    int rc = us_yaml_get_node(d, m, "dims", f, US_YAML_MAP, false, &map, err);
    if (rc < 0 || !map)
        return rc;
    size_t n = us_yaml_len(map);
    if (n > PF_DIMS_MAX)
        return us_yaml_error(d, map, err, USHER_ERR_LIMIT,
                             "field '%s': model '%s': at most %d dims, not %zu", f, model,
                             PF_DIMS_MAX, n);
    if (n == 0)
        return USHER_OK;
    if (!(x->dims = us_calloc(n, sizeof *x->dims)))
        return us_yaml_error(d, NULL, err, USHER_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *k = us_yaml_key_at(map, i);
        const us_yaml_node *kn = us_yaml_key_node_at(map, i), *v = us_yaml_value_at(map, i);
        size_t kl = strlen(k);
        bool ok = kl > 0 && kl <= PF_DIM_NAME_MAX;
        for (size_t c = 0; ok && c < kl; c++)
            ok = k[c] > ' ' && k[c] < 0x7f;
        if (!ok)
            return us_yaml_error(d, kn, err, USHER_ERR_PARSE,
                                 "field '%s': model '%s': a dim's name is 1 to %d printable "
                                 "characters without spaces (seq, or input:1 for an unnamed "
                                 "one), not '%.64s'",
                                 f, model, PF_DIM_NAME_MAX, k);
        for (size_t j = 0; j < i; j++)
            if (strcmp(x->dims[j].name, k) == 0)
                return us_yaml_error(d, kn, err, USHER_ERR_PARSE,
                                     "field '%s.%.64s': model '%s': given twice (line %zu)", f,
                                     k, model, x->dims[j].line);
        const char *vs = us_yaml_node_kind(v) == US_YAML_SCALAR ? us_yaml_str(v) : NULL;
        size_t vl = vs ? strlen(vs) : 0;
        int64_t val = 0;
        ok = vs && us_yaml_is_plain(v) && vl > 0 && vl <= 12 && !(vl > 1 && vs[0] == '0');
        for (size_t c = 0; ok && c < vl; c++) {
            ok = vs[c] >= '0' && vs[c] <= '9';
            val = val * 10 + (vs[c] - '0');
        }
        bool batch = vs && us_yaml_is_plain(v) && strcmp(vs, "batch") == 0;
        if (!batch && (!ok || val < 1 || val > PF_DIM_VALUE_MAX))
            return us_yaml_error(d, v, err, USHER_ERR_PARSE,
                                 "field '%s.%.64s': model '%s': an integer from 1 to %d, or "
                                 "batch (the configuration's batch), not '%.32s'",
                                 f, k, model, PF_DIM_VALUE_MAX,
                                 vs ? vs : us_yaml_kind_name(us_yaml_node_kind(v)));
        x->dims[i].line = us_yaml_line(kn);
        x->dims[i].value = batch ? 0 : val;
        x->n_dims = (uint32_t)i + 1; /* freed with the workload on any error */
        if (!(x->dims[i].name = us_strdup(k)))
            return us_yaml_error(d, NULL, err, USHER_ERR_NOMEM, "out of memory");
    }
    return USHER_OK;
}

static int entry(const us_yaml_doc *d, const us_yaml_node *m, size_t i, pf_workload *w,
                 us_map *names, pf_spread def, usher_error *err)
{
    static const char *const keys[] = {"name",  "model",     "rate",       "slo_ms",
                                       "priority", "precision", "group", "min_share",
                                       "arrival_cv", "spread", "dims", NULL};
    pf_workload_model *x = &w->m[i];
    char fp[64], f[96];
    int rc;
    snprintf(fp, sizeof fp, "models[%zu]", i);
    if (us_yaml_node_kind(m) != US_YAML_MAP)
        return us_yaml_error(d, m, err, USHER_ERR_PARSE, "%s: expected a map", fp);
    if ((rc = us_yaml_check_keys(d, m, fp, keys, err)) < 0)
        return rc;
    x->line = us_yaml_line(m);
    const char *name, *file, *prec = NULL, *group;
    int64_t prio = 0;
    snprintf(f, sizeof f, "%s.name", fp);
    if ((rc = pf_need_name(d, m, "name", f, &name, true, err)) < 0)
        return rc;
    void *prev = NULL;
    int put = us_map_put(names, name, (void *)(uintptr_t)(i + 1), &prev);
    if (put < 0)
        return us_yaml_error(d, NULL, err, USHER_ERR_NOMEM, "out of memory");
    if (put == 0)
        return us_yaml_error(d, us_yaml_get(m, "name"), err, USHER_ERR_PARSE,
                             "field '%s': model '%s' is already declared at line %zu", f, name,
                             w->m[(uintptr_t)prev - 1].line);
    snprintf(f, sizeof f, "%s.model", fp);
    if ((rc = us_yaml_get_str(d, m, "model", f, &file, NULL, err)) < 0)
        return rc;
    if (!file || !*file)
        return us_yaml_error(d, file ? us_yaml_get(m, "model") : m, err, USHER_ERR_PARSE,
                             "field '%s': %s", f, file ? "empty path" : "missing (required)");
    snprintf(f, sizeof f, "%s.rate", fp);
    if ((rc = us_yaml_get_f64(d, m, "rate", f, 0, MAX_RATE, &x->rate, 0, true, err)) < 0)
        return rc;
    snprintf(f, sizeof f, "%s.slo_ms", fp);
    if ((rc = us_yaml_get_f64(d, m, "slo_ms", f, 1e-3, MAX_SLO_MS, &x->slo_ms, 0, true, err)) < 0)
        return rc;
    snprintf(f, sizeof f, "%s.priority", fp);
    if ((rc = us_yaml_get_i64(d, m, "priority", f, 0, MAX_PRIORITY, &prio, 0, false, err)) < 0)
        return rc;
    x->priority = (int)prio;
    snprintf(f, sizeof f, "%s.min_share", fp);
    if ((rc = us_yaml_get_f64(d, m, "min_share", f, 0, 1, &x->min_share, 0, false, err)) < 0)
        return rc;
    snprintf(f, sizeof f, "%s.arrival_cv", fp); /* absent: Poisson */
    if ((rc = us_yaml_get_f64(d, m, "arrival_cv", f, 0.01, 10, &x->arrival_cv, 0, false, err)) <
        0)
        return rc;
    snprintf(f, sizeof f, "%s.precision", fp);
    if ((rc = us_yaml_get_str(d, m, "precision", f, &prec, "fp32", err)) < 0)
        return rc;
    if (strcmp(prec, "fp32") && strcmp(prec, "tf32") && strcmp(prec, "fp16") &&
        strcmp(prec, "int8"))
        return us_yaml_error(d, us_yaml_get(m, "precision"), err, USHER_ERR_PARSE,
                             "field '%s': fp32, tf32, fp16 or int8, not '%.16s'", f, prec);
    snprintf(x->precision, sizeof x->precision, "%s", prec);
    snprintf(f, sizeof f, "%s.group", fp);
    if ((rc = pf_need_name(d, m, "group", f, &group, false, err)) < 0)
        return rc;
    snprintf(f, sizeof f, "%s.spread", fp);
    if ((rc = spread_field(d, m, f, def, &x->spread, err)) < 0)
        return rc;
    snprintf(f, sizeof f, "%s.dims", fp);
    if ((rc = dims_field(d, m, f, name, x, err)) < 0)
        return rc;
    x->name = us_strdup(name);
    x->path = resolve(us_yaml_label(d), file);
    x->group = group ? us_strdup(group) : NULL;
    if (!x->name || !x->path || (group && !x->group))
        return us_yaml_error(d, NULL, err, USHER_ERR_NOMEM, "out of memory");
    return USHER_OK;
}

us_yaml_limits pf_workload_limits(void)
{
    us_yaml_limits lim = us_yaml_default_limits();
    lim.max_bytes = 64u << 20; /* 10,000s of models */
    lim.max_nodes = 2000000;
    return lim;
}

int pf_workload_doc(const us_yaml_doc *d, uint32_t max_models, pf_workload *w,
                    usher_error *err)
{
    static const char *const top[] = {"models", "spread", NULL};
    pf_spread def = PF_SPREAD_NONE;
    memset(w, 0, sizeof *w);
    const us_yaml_node *root = us_yaml_root(d), *list = NULL;
    us_map names;
    us_map_init(&names);
    int rc;
    w->label = us_strdup(us_yaml_label(d));
    if (!w->label) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!root || us_yaml_node_kind(root) != US_YAML_MAP) {
        rc = us_yaml_error(d, root, err, USHER_ERR_PARSE, "expected a map with 'models'");
        goto out;
    }
    if ((rc = us_yaml_check_keys(d, root, NULL, top, err)) < 0 ||
        (rc = us_yaml_get_node(d, root, "models", NULL, US_YAML_SEQ, true, &list, err)) < 0 ||
        (rc = spread_field(d, root, "spread", PF_SPREAD_NONE, &def, err)) < 0)
        goto out;
    size_t n = us_yaml_len(list);
    if (n == 0 || n > max_models) {
        rc = us_yaml_error(d, list, err, n ? USHER_ERR_LIMIT : USHER_ERR_PARSE,
                           "field 'models': 1 to %u entries, not %zu", max_models, n);
        goto out;
    }
    w->m = us_calloc(n, sizeof *w->m);
    if (!w->m) {
        rc = us_yaml_error(d, NULL, err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        w->n = (uint32_t)i + 1; /* freed with the workload on any error */
        if ((rc = entry(d, us_yaml_item(list, i), i, w, &names, def, err)) < 0)
            goto out;
    }
    rc = USHER_OK;
out:
    us_map_free(&names);
    if (rc < 0)
        pf_workload_free(w);
    return rc;
}

int pf_workload_read(const char *path, uint32_t max_models, pf_workload *out, usher_error *err)
{
    memset(out, 0, sizeof *out);
    us_yaml_doc *d = NULL;
    us_yaml_limits lim = pf_workload_limits();
    int rc = us_yaml_load(path, &lim, &d, err);
    if (rc < 0)
        return rc;
    rc = pf_workload_doc(d, max_models, out, err);
    us_yaml_free(d);
    return rc;
}

int pf_workload_parse(const char *text, size_t len, const char *label, uint32_t max_models,
                      pf_workload *out, usher_error *err)
{
    memset(out, 0, sizeof *out);
    us_yaml_doc *d = NULL;
    us_yaml_limits lim = pf_workload_limits();
    int rc = us_yaml_parse(text, len, label, &lim, &d, err);
    if (rc < 0)
        return rc;
    rc = pf_workload_doc(d, max_models, out, err);
    us_yaml_free(d);
    return rc;
}

void pf_workload_free(pf_workload *w)
{
    if (!w)
        return;
    for (uint32_t i = 0; w->m && i < w->n; i++) {
        us_free(w->m[i].name);
        us_free(w->m[i].path);
        us_free(w->m[i].group);
        for (uint32_t k = 0; w->m[i].dims && k < w->m[i].n_dims; k++)
            us_free(w->m[i].dims[k].name);
        us_free(w->m[i].dims);
    }
    us_free(w->m);
    us_free(w->label);
    memset(w, 0, sizeof *w);
}
