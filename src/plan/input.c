/*
 * input.c - the planner's inputs (layer 6): cluster.yaml, workload.yaml and,
 * for re-planning, the plan.json of the running plan.
 *
 * All three are untrusted. The YAML ones are read with the bounded YAML
 * reader (core/yaml.h: size, depth, node and scalar limits, no aliases),
 * every field typed and range-checked, unknown keys refused (typos), and
 * every error says "<file>:<line>: field '<path>': what". The formats are in
 * docs/plan-input.md with examples in examples/. plan.json is read by
 * src/planfile (the same reader as the server's); what is checked here is
 * what it means against the problem: GPU types in the cluster, models and
 * candidate configurations in the workload, capacity.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/yaml.h"
#include "plan.h"
#include "planfile/planfile.h"
#include "planfile/workload.h"

#define MAX_PRICE 1e6       /* $/h of one GPU */
#define MAX_GPUS_PER_ENTRY 1000000

/* ---- cluster.yaml ------------------------------------------------------------- */
#define MAX_DEVICE 1023 /* a GPU's index on its node (devices: [...]) */

/* item i of sequence seq as an integer in [lo, hi]: plain decimal digits, no
 * leading zeros; path names the sequence in messages */
static int seq_int(const us_yaml_doc *d, const us_yaml_node *seq, size_t i, const char *path,
                   int64_t lo, int64_t hi, int64_t *out, usher_error *err)
{
    const us_yaml_node *it = us_yaml_item(seq, i);
    const char *v = us_yaml_node_kind(it) == US_YAML_SCALAR ? us_yaml_str(it) : NULL;
    size_t n = v ? strlen(v) : 0;
    bool ok = v && us_yaml_is_plain(it) && n > 0 && n <= 12 && !(n > 1 && v[0] == '0');
    int64_t x = 0;
    for (size_t k = 0; ok && k < n; k++) {
        ok = v[k] >= '0' && v[k] <= '9';
        x = x * 10 + (v[k] - '0');
    }
    if (!ok || x < lo || x > hi)
        return us_yaml_error(d, it, err, USHER_ERR_PARSE,
                             "field '%s[%zu]': an integer from %lld to %lld, not '%.32s'", path, i,
                             (long long)lo, (long long)hi,
                             v ? v : us_yaml_kind_name(us_yaml_node_kind(it)));
    *out = x;
    return USHER_OK;
}

/* lost: [i, ...] of entry t (its count or max read): each index within the
 * entry, once; every one removed from what may be used (plan_lose_gpu) */
static int cluster_lost(const us_yaml_doc *d, const us_yaml_node *e, const char *fp,
                        plan_problem *p, usher_error *err)
{
    const us_yaml_node *l = NULL;
    char f[96];
    snprintf(f, sizeof f, "%s.lost", fp);
    int rc = us_yaml_get_node(d, e, "lost", f, US_YAML_SEQ, false, &l, err);
    if (rc < 0 || !l)
        return rc;
    plan_type *t = &p->t[p->nt];
    int64_t slots = plan_type_slots(t);
    for (size_t i = 0; i < us_yaml_len(l); i++) {
        int64_t v;
        if ((rc = seq_int(d, l, i, f, 0, MAX_GPUS_PER_ENTRY, &v, err)) < 0)
            return rc;
        rc = plan_lose_gpu(p, (uint16_t)p->nt, v);
        if (rc == USHER_ERR_LIMIT)
            return us_yaml_error(d, us_yaml_item(l, i), err, USHER_ERR_LIMIT,
                                 "field '%s[%zu]': at most %d lost GPUs in all (lower the "
                                 "entry's count instead)",
                                 f, i, PLAN_MAX_LOST);
        if (rc < 0)
            return us_yaml_error(d, us_yaml_item(l, i), err, USHER_ERR_PARSE,
                                 "field '%s[%zu]': GPU %lld %s", f, i, (long long)v,
                                 v >= slots ? "is not on this entry (its indices start at 0 and "
                                              "stop below its count or max)"
                                            : "is listed twice");
    }
    return USHER_OK;
}

/* devices: [i, ...] of an entry (its GPUs' indices on the node): integers
 * 0..MAX_DEVICE, each once; a whole-GPU fixed entry lists count of them */
static int cluster_devices(const us_yaml_doc *d, const us_yaml_node *e, const char *fp,
                           const plan_type *t, const us_yaml_node **out, usher_error *err)
{
    char f[96];
    snprintf(f, sizeof f, "%s.devices", fp);
    int rc = us_yaml_get_node(d, e, "devices", f, US_YAML_SEQ, false, out, err);
    if (rc < 0 || !*out)
        return rc;
    bool seen[MAX_DEVICE + 1] = {0};
    size_t n = us_yaml_len(*out);
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        if ((rc = seq_int(d, *out, i, f, 0, MAX_DEVICE, &v, err)) < 0)
            return rc;
        if (seen[v])
            return us_yaml_error(d, us_yaml_item(*out, i), err, USHER_ERR_PARSE,
                                 "field '%s[%zu]': GPU %lld is listed twice", f, i, (long long)v);
        seen[v] = true;
    }
    if (!strchr(t->key, ':') && t->count >= 0 && (int64_t)n != plan_type_slots(t))
        return us_yaml_error(d, *out, err, USHER_ERR_PARSE,
                             "field '%s': %zu GPUs listed, but count is %lld", f, n,
                             (long long)plan_type_slots(t));
    return USHER_OK;
}

/* the base GPU of a type key (a100-80gb of a100-80gb:3g.40gb), length */
static size_t base_len(const char *key)
{
    const char *c = strchr(key, ':');
    return c ? (size_t)(c - key) : strlen(key);
}

/* one physical GPU is declared once: on a node, a GPU whole and as MIG
 * instances of it must say which GPUs each entry holds (devices), and no GPU
 * may be in two entries unless both are MIG instances of it */
static int cluster_physical(const us_yaml_doc *d, const plan_problem *p,
                            const us_yaml_node *const *ent, const us_yaml_node *const *dev,
                            usher_error *err)
{
    for (uint32_t a = 0; a < p->nt; a++)
        for (uint32_t b = a + 1; b < p->nt; b++) {
            const plan_type *x = &p->t[a], *y = &p->t[b];
            if (strcmp(x->node, y->node) != 0)
                continue;
            bool xm = strchr(x->key, ':') != NULL, ym = strchr(y->key, ':') != NULL;
            size_t xl = base_len(x->key), yl = base_len(y->key);
            bool same_base = xl == yl && strncmp(x->key, y->key, xl) == 0;
            const plan_type *whole = !xm ? x : y, *mig = !xm ? y : x;
            size_t wline = whole->line, mline = mig->line;
            if (same_base && xm != ym && (!dev[a] || !dev[b]))
                return us_yaml_error(d, ent[b], err, USHER_ERR_PARSE,
                                     "node '%s': GPU type %.*s is declared whole (%s, line %zu) "
                                     "and as MIG instances (%s, line %zu): give each entry's "
                                     "'devices' (the GPUs' indices on the node) so that no GPU "
                                     "is declared both ways",
                                     x->node[0] ? x->node : "(none)", (int)xl, x->key, whole->key,
                                     wline, mig->key, mline);
            if (!dev[a] || !dev[b] || (same_base && xm && ym))
                continue;
            for (size_t i = 0; i < us_yaml_len(dev[a]); i++)
                for (size_t k = 0; k < us_yaml_len(dev[b]); k++)
                    if (strcmp(us_yaml_str(us_yaml_item(dev[a], i)),
                               us_yaml_str(us_yaml_item(dev[b], k))) == 0)
                        return us_yaml_error(
                            d, us_yaml_item(dev[b], k), err, USHER_ERR_PARSE,
                            "node '%s': GPU %s is declared as %s (line %zu) and as %s (line %zu)%s",
                            x->node[0] ? x->node : "(none)", us_yaml_str(us_yaml_item(dev[b], k)),
                            x->key, x->line, y->key, y->line,
                            same_base && xm != ym ? ": one physical GPU is either whole or MIG "
                                                    "instances"
                                                  : "");
        }
    return USHER_OK;
}

/* a Kubernetes label's name part: 1..63 of [A-Za-z0-9-_.], alphanumeric at both ends */
static bool label_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool an = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!an && ((i == 0 || i == n - 1) || !(c == '-' || c == '_' || c == '.')))
            return false;
    }
    return true;
}

/* a label key: [prefix/]name, the prefix a DNS subdomain of at most 253 characters */
static bool label_key_ok(const char *k)
{
    const char *sl = strchr(k, '/');
    if (!sl)
        return label_name_ok(k, strlen(k));
    size_t pl = (size_t)(sl - k);
    if (pl == 0 || pl > 253 || k[0] == '.' || k[pl - 1] == '.' || k[0] == '-' || k[pl - 1] == '-')
        return false;
    for (size_t i = 0; i < pl; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '-' ||
              k[i] == '.'))
            return false;
    return label_name_ok(sl + 1, strlen(sl + 1));
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* labels: {key: value} of node x at f: Kubernetes label syntax, at most
 * PLAN_MAX_LABELS, kept sorted by key (each value follows its key) */
static int node_labels(const us_yaml_doc *d, const us_yaml_node *l, const char *f, plan_node *x,
                       usher_error *err)
{
    size_t n = us_yaml_len(l);
    if (n > PLAN_MAX_LABELS)
        return us_yaml_error(d, l, err, USHER_ERR_LIMIT, "field '%s': at most %d labels, not %zu",
                             f, PLAN_MAX_LABELS, n);
    /* one array: key then value, so that sorting pairs keeps them together */
    char **kv = us_calloc(2 * (n ? n : 1), sizeof *kv);
    if (!kv)
        return us_yaml_error(d, NULL, err, USHER_ERR_NOMEM, "out of memory");
    x->labels = kv;
    for (size_t i = 0; i < n; i++) {
        const char *k = us_yaml_key_at(l, i);
        const us_yaml_node *v = us_yaml_value_at(l, i);
        const char *vs = us_yaml_node_kind(v) == US_YAML_SCALAR ? us_yaml_str(v) : NULL;
        if (!label_key_ok(k))
            return us_yaml_error(d, us_yaml_key_node_at(l, i), err, USHER_ERR_PARSE,
                                 "field '%s': '%.64s' is not a Kubernetes label key ([prefix/]name: "
                                 "a name of 1 to 63 letters, digits, '-', '_', '.', alphanumeric at "
                                 "both ends; a DNS prefix)",
                                 f, k);
        if (!vs || (vs[0] && !label_name_ok(vs, strlen(vs))))
            return us_yaml_error(d, v, err, USHER_ERR_PARSE,
                                 "field '%s.%.64s': a label value (empty, or 1 to 63 letters, "
                                 "digits, '-', '_', '.', alphanumeric at both ends), not '%.64s'",
                                 f, k, vs ? vs : us_yaml_kind_name(us_yaml_node_kind(v)));
        x->n_labels = (uint32_t)i + 1; /* what is set is freed with the problem on any error */
        if (!(kv[2 * i] = us_strdup(k)) || !(kv[2 * i + 1] = us_strdup(vs)))
            return us_yaml_error(d, NULL, err, USHER_ERR_NOMEM, "out of memory");
    }
    /* sort the pairs by key: two-string records */
    qsort(kv, n, 2 * sizeof *kv, cmp_str_ptr);
    return USHER_OK;
}

void plan_nodes_free(plan_problem *p)
{
    for (uint32_t i = 0; p->nodes && i < p->n_nodes; i++) {
        for (uint32_t k = 0; p->nodes[i].labels && k < 2 * p->nodes[i].n_labels; k++)
            us_free(p->nodes[i].labels[k]);
        us_free(p->nodes[i].labels);
    }
    us_free(p->nodes);
    p->nodes = NULL;
    p->n_nodes = 0;
}

/* nodes: [{name, labels, rack, zone}] (optional): names once each */
static int cluster_nodes(const us_yaml_doc *d, const us_yaml_node *root, plan_problem *p,
                         usher_error *err)
{
    static const char *const keys[] = {"name", "labels", "rack", "zone", NULL};
    const us_yaml_node *ns = NULL;
    int rc = us_yaml_get_node(d, root, "nodes", NULL, US_YAML_SEQ, false, &ns, err);
    plan_nodes_free(p);
    if (rc < 0 || !ns)
        return rc;
    size_t n = us_yaml_len(ns);
    if (n == 0 || n > PLAN_MAX_NODES)
        return us_yaml_error(d, ns, err, n ? USHER_ERR_LIMIT : USHER_ERR_PARSE,
                             "field 'nodes': 1 to %d entries, not %zu", PLAN_MAX_NODES, n);
    if (!(p->nodes = us_calloc(n, sizeof *p->nodes)))
        return us_yaml_error(d, NULL, err, USHER_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const us_yaml_node *e = us_yaml_item(ns, i);
        plan_node *x = &p->nodes[i];
        p->n_nodes = (uint32_t)i + 1; /* freed with the problem on any error */
        char fp[48], f[96];
        snprintf(fp, sizeof fp, "nodes[%zu]", i);
        if (us_yaml_node_kind(e) != US_YAML_MAP)
            return us_yaml_error(d, e, err, USHER_ERR_PARSE, "%s: expected a map", fp);
        if ((rc = us_yaml_check_keys(d, e, fp, keys, err)) < 0)
            return rc;
        x->line = us_yaml_line(e);
        const char *v = NULL;
        snprintf(f, sizeof f, "%s.name", fp);
        if ((rc = pf_need_name(d, e, "name", f, &v, true, err)) < 0)
            return rc;
        snprintf(x->name, sizeof x->name, "%s", v);
        for (size_t k = 0; k < i; k++)
            if (strcmp(p->nodes[k].name, x->name) == 0)
                return us_yaml_error(d, us_yaml_get(e, "name"), err, USHER_ERR_PARSE,
                                     "field '%s': node '%s' is already declared at line %zu", f,
                                     x->name, p->nodes[k].line);
        snprintf(f, sizeof f, "%s.rack", fp);
        if ((rc = pf_need_name(d, e, "rack", f, &v, false, err)) < 0)
            return rc;
        snprintf(x->rack, sizeof x->rack, "%s", v ? v : "");
        snprintf(f, sizeof f, "%s.zone", fp);
        if ((rc = pf_need_name(d, e, "zone", f, &v, false, err)) < 0)
            return rc;
        snprintf(x->zone, sizeof x->zone, "%s", v ? v : "");
        const us_yaml_node *l = NULL;
        snprintf(f, sizeof f, "%s.labels", fp);
        if ((rc = us_yaml_get_node(d, e, "labels", f, US_YAML_MAP, false, &l, err)) < 0 ||
            (l && (rc = node_labels(d, l, f, x, err)) < 0))
            return rc;
    }
    return USHER_OK;
}

static int cluster_doc(us_yaml_doc *d, const gpu_catalog *cat, plan_problem *p, usher_error *err)
{
    int rc;
    snprintf(p->cluster, sizeof p->cluster, "%s", us_yaml_label(d));
    const us_yaml_node *root = us_yaml_root(d), *gpus = NULL;
    static const char *const top[] = {"objective", "gpus", "nodes", NULL};
    static const char *const entry[] = {"type", "count", "max", "price_per_hour", "node",
                                        "idle_power_fraction", "lost", "devices", NULL};
    const us_yaml_node *ent[PLAN_MAX_TYPES] = {0}, *dev[PLAN_MAX_TYPES] = {0};
    const char *obj = NULL;
    if (!root || us_yaml_node_kind(root) != US_YAML_MAP) {
        rc = us_yaml_error(d, root, err, USHER_ERR_PARSE,
                           "expected a map with 'gpus' (and optionally 'objective')");
        goto out;
    }
    if ((rc = us_yaml_check_keys(d, root, NULL, top, err)) < 0 ||
        (rc = us_yaml_get_str(d, root, "objective", NULL, &obj, "min-cost", err)) < 0 ||
        (rc = us_yaml_get_node(d, root, "gpus", NULL, US_YAML_SEQ, true, &gpus, err)) < 0 ||
        (rc = cluster_nodes(d, root, p, err)) < 0)
        goto out;
    if (strcmp(obj, "min-cost") == 0) {
        p->objective = PLAN_MIN_COST;
    } else if (strcmp(obj, "max-goodput") == 0) {
        p->objective = PLAN_MAX_GOODPUT;
    } else if (strcmp(obj, "max-min") == 0) {
        p->objective = PLAN_MAX_MIN;
    } else {
        rc = us_yaml_error(d, us_yaml_get(root, "objective"), err, USHER_ERR_PARSE,
                           "field 'objective': 'min-cost', 'max-goodput' or 'max-min', not "
                           "'%.32s'",
                           obj);
        goto out;
    }
    size_t n = us_yaml_len(gpus);
    if (n == 0 || n > PLAN_MAX_TYPES) {
        rc = us_yaml_error(d, gpus, err, n ? USHER_ERR_LIMIT : USHER_ERR_PARSE,
                           "field 'gpus': 1 to %d entries, not %zu", PLAN_MAX_TYPES, n);
        goto out;
    }
    p->nt = 0;
    p->n_lost = 0;
    bool any_fixed = false, any_elastic = false;
    for (size_t i = 0; i < n; i++) {
        const us_yaml_node *e = us_yaml_item(gpus, i);
        char fp[64], f[96];
        snprintf(fp, sizeof fp, "gpus[%zu]", i);
        if (us_yaml_node_kind(e) != US_YAML_MAP) {
            rc = us_yaml_error(d, e, err, USHER_ERR_PARSE, "%s: expected a map", fp);
            goto out;
        }
        if ((rc = us_yaml_check_keys(d, e, fp, entry, err)) < 0)
            goto out;
        plan_type *t = &p->t[p->nt];
        memset(t, 0, sizeof *t);
        t->line = us_yaml_line(e);
        const char *type = NULL, *node = NULL;
        snprintf(f, sizeof f, "%s.type", fp);
        if ((rc = pf_need_name(d, e, "type", f, &type, true, err)) < 0)
            goto out;
        usher_error ge;
        if (gpu_catalog_find(cat, type, &t->g, &ge) < 0) {
            rc = us_yaml_error(d, us_yaml_get(e, "type"), err, USHER_ERR_PARSE,
                               "field '%s': %s", f, ge.msg);
            goto out;
        }
        snprintf(t->key, sizeof t->key, "%s", type);
        /* planning with the interference model needs the type's DRAM bandwidth
         * and L2 size: said here, at the type's line */
        if (p->interference && plan_coloc_type(p, (uint16_t)p->nt, &ge) < 0) {
            rc = us_yaml_error(d, us_yaml_get(e, "type"), err, USHER_ERR_INVALID,
                               "field '%s': %s", f, ge.msg);
            goto out;
        }
        snprintf(f, sizeof f, "%s.node", fp);
        if ((rc = pf_need_name(d, e, "node", f, &node, false, err)) < 0)
            goto out;
        snprintf(t->node, sizeof t->node, "%s", node ? node : "");
        if (p->n_nodes) { /* nodes declared: every entry is on one of them */
            const plan_node *x = NULL;
            for (uint32_t k = 0; k < p->n_nodes && !x; k++)
                if (strcmp(p->nodes[k].name, t->node) == 0)
                    x = &p->nodes[k];
            if (!x) {
                rc = us_yaml_error(d, node ? us_yaml_get(e, "node") : e, err, USHER_ERR_PARSE,
                                   "field '%s': %s%s%s, but every GPU entry must be on a node "
                                   "declared in 'nodes' (first: '%s', line %zu)",
                                   f, node ? "node '" : "missing", node ? node : "",
                                   node ? "' is not declared" : "", p->nodes[0].name,
                                   p->nodes[0].line);
                goto out;
            }
            snprintf(t->rack, sizeof t->rack, "%s", x->rack);
            snprintf(t->zone, sizeof t->zone, "%s", x->zone);
        }
        for (uint32_t k = 0; k < p->nt; k++)
            if (strcmp(p->t[k].key, t->key) == 0 && strcmp(p->t[k].node, t->node) == 0) {
                rc = us_yaml_error(d, e, err, USHER_ERR_PARSE,
                                   "%s: type '%s' on node '%s' is already declared at line %zu",
                                   fp, t->key, t->node, p->t[k].line);
                goto out;
            }
        const us_yaml_node *cn = us_yaml_get(e, "count"), *mn = us_yaml_get(e, "max");
        bool has_count = cn && !us_yaml_is_null(cn), has_max = mn && !us_yaml_is_null(mn);
        if (has_count && has_max) {
            rc = us_yaml_error(d, mn, err, USHER_ERR_PARSE,
                               "%s: 'count' (a fixed cluster) and 'max' (an elastic one) are "
                               "exclusive",
                               fp);
            goto out;
        }
        snprintf(f, sizeof f, "%s.count", fp);
        if ((rc = us_yaml_get_i64(d, e, "count", f, 0, MAX_GPUS_PER_ENTRY, &t->count, -1, false,
                                  err)) < 0)
            goto out;
        snprintf(f, sizeof f, "%s.max", fp);
        if ((rc = us_yaml_get_i64(d, e, "max", f, 0, MAX_GPUS_PER_ENTRY, &t->max,
                                  MAX_GPUS_PER_ENTRY, false, err)) < 0)
            goto out;
        any_fixed |= has_count;
        any_elastic |= !has_count;
        t->slots = plan_type_slots(t);
        ent[p->nt] = e;
        if ((rc = cluster_lost(d, e, fp, p, err)) < 0 ||
            (rc = cluster_devices(d, e, fp, t, &dev[p->nt], err)) < 0)
            goto out;
        snprintf(f, sizeof f, "%s.price_per_hour", fp);
        const us_yaml_node *pn = us_yaml_get(e, "price_per_hour");
        /* no price is no $0: a type the catalog has no price for needs one here */
        if ((!pn || us_yaml_is_null(pn)) && !gpu_known(t->g, GPU_F_PRICE_PER_HOUR)) {
            rc = us_yaml_error(d, us_yaml_get(e, "type"), err, USHER_ERR_PARSE,
                               "%s: GPU type '%s' has no price in the catalog: give its "
                               "'price_per_hour' ($/h of one GPU; 0 is allowed)",
                               fp, t->key);
            goto out;
        }
        if ((rc = us_yaml_get_f64(d, e, "price_per_hour", f, 0, MAX_PRICE, &t->price,
                                  t->g->price_per_hour, false, err)) < 0)
            goto out;
        snprintf(f, sizeof f, "%s.idle_power_fraction", fp);
        if ((rc = us_yaml_get_f64(d, e, "idle_power_fraction", f, 0, 1, &t->idle_frac, 0.25,
                                  false, err)) < 0)
            goto out;
        t->tdp_w = t->g->tdp_w;
        p->nt++;
    }
    if (any_fixed && any_elastic) {
        rc = us_yaml_error(d, gpus, err, USHER_ERR_PARSE,
                           "field 'gpus': every entry has 'count' (a fixed cluster) or none "
                           "has (an elastic one)");
        goto out;
    }
    p->fixed = any_fixed;
    rc = cluster_physical(d, p, ent, dev, err);
out:
    return rc;
}

int plan_read_cluster(const char *path, const gpu_catalog *cat, plan_problem *p, usher_error *err)
{
    us_yaml_doc *d = NULL;
    int rc = us_yaml_load(path, NULL, &d, err);
    if (rc < 0)
        return rc;
    rc = cluster_doc(d, cat, p, err);
    us_yaml_free(d);
    return rc;
}

int plan_parse_cluster(const char *text, size_t len, const char *label, const gpu_catalog *cat,
                       plan_problem *p, usher_error *err)
{
    us_yaml_doc *d = NULL;
    int rc = us_yaml_parse(text, len, label, NULL, &d, err);
    if (rc < 0)
        return rc;
    rc = cluster_doc(d, cat, p, err);
    us_yaml_free(d);
    return rc;
}

/* ---- workload.yaml ------------------------------------------------------------ */
/* One entry of the workload, read by planfile/workload.c, into p->m[i]: its strings
 * taken over, its group registered (groups: group -> merge group id). */
static int model_fields(pf_workload_model *x, plan_model *pm, us_map *groups, int *next_group,
                        usher_error *err)
{
    pm->line = x->line;
    pm->rate = x->rate;
    pm->slo_ms = x->slo_ms;
    pm->priority = x->priority;
    pm->min_share = x->min_share;
    pm->arrival_cv = x->arrival_cv;
    pm->spread = (int)x->spread;
    pm->precision = usher_precision_parse(x->precision); /* checked by the reader */
    pm->name = x->name;
    pm->path = x->path;
    x->name = x->path = NULL;
    if (x->n_dims) {
        if (!(pm->dims = us_calloc(x->n_dims, sizeof *pm->dims)))
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        for (uint32_t k = 0; k < x->n_dims; k++) {
            pm->dims[k] = (plan_dim){.name = x->dims[k].name, .value = x->dims[k].value};
            x->dims[k].name = NULL;
        }
        pm->n_dims = x->n_dims;
    }
    if (x->group) {
        void *gid = NULL;
        if (us_map_put(groups, x->group, (void *)(intptr_t)(*next_group + 1), &gid) < 0)
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        pm->group = x->group;
        x->group = NULL;
        pm->merge_group = gid ? (int)(intptr_t)gid : ++*next_group;
    }
    return USHER_OK;
}

/* input j of um whose first dim is `name` (the batch binds it), or -1 */
static int batch_input(const usher_model *um, const char *name)
{
    usher_tensor_info ti;
    const char *nm;
    for (uint32_t j = 0; usher_model_input(um, j, &ti) == USHER_OK; j++)
        if (usher_model_input_dim(um, j, 0, &nm) == USHER_OK && strcmp(nm, name) == 0)
            return (int)j;
    return -1;
}

/*
 * Model i's dims (workload.yaml dims, read into pm) against its file um: each
 * entry names a dynamic dim of the model (else refused naming the dims it has),
 * none given a number is the first dim of an input (the batch of each
 * configuration binds those), and every dynamic dim is bound - by the batch, an
 * entry, or the default the file records (usher.dim.<name>) - else the model is
 * refused naming the dim and how to bind it (the estimator would refuse it at
 * its first configuration with less to go on).
 */
static int check_dims(const us_yaml_doc *d, const us_yaml_node *m, uint32_t i,
                      const plan_model *pm, const usher_model *um, usher_error *err)
{
    const us_yaml_node *dm = us_yaml_get(m, "dims");
    char have[256] = "";
    size_t at = 0;
    const char *sym;
    for (uint32_t k = 0; usher_model_symbol(um, k, &sym) == USHER_OK; k++) {
        int w = snprintf(have + at, sizeof have - at, "%s%s", k ? ", " : "", sym);
        if (w < 0 || (size_t)w >= sizeof have - at) {
            snprintf(have + (at < sizeof have - 6 ? at : sizeof have - 6), 6, ", ...");
            break;
        }
        at += (size_t)w;
    }
    for (uint32_t k = 0; k < pm->n_dims; k++) {
        const plan_dim *x = &pm->dims[k];
        bool found = false;
        for (uint32_t s = 0; !found && usher_model_symbol(um, s, &sym) == USHER_OK; s++)
            found = strcmp(sym, x->name) == 0;
        const us_yaml_node *kn = dm ? us_yaml_key_node_at(dm, k) : m;
        if (!found)
            return us_yaml_error(d, kn, err, USHER_ERR_PARSE,
                                 "field 'models[%u].dims.%.64s': model '%s' has no dynamic dim "
                                 "'%.64s' (%s%s)",
                                 i, x->name, pm->name, x->name,
                                 have[0] ? "its dynamic dims: " : "it has none", have);
        int j = batch_input(um, x->name);
        usher_tensor_info ti;
        if (x->value && j >= 0 && usher_model_input(um, (uint32_t)j, &ti) == USHER_OK)
            return us_yaml_error(d, kn, err, USHER_ERR_PARSE,
                                 "field 'models[%u].dims.%.64s': model '%s': '%.64s' is the "
                                 "first dim of input '%.64s' %s, which the planner binds to "
                                 "each configuration's batch: leave it out",
                                 i, x->name, pm->name, x->name, ti.name, ti.declared);
    }
    for (uint32_t s = 0; usher_model_symbol(um, s, &sym) == USHER_OK; s++) {
        bool bound = batch_input(um, sym) >= 0;
        for (uint32_t k = 0; !bound && k < pm->n_dims; k++)
            bound = strcmp(pm->dims[k].name, sym) == 0;
        int64_t dv;
        if (bound || usher_model_symbol_default(um, sym, &dv) == USHER_OK)
            continue;
        /* where it is, for the message */
        usher_tensor_info ti = {.name = "?", .declared = "?"};
        uint32_t j = 0, axis = 0;
        if (usher_model_dim_where(um, sym, &j, &axis) == USHER_OK)
            usher_model_input(um, j, &ti);
        return us_yaml_error(d, m, err, USHER_ERR_PARSE,
                             "models[%u] '%s': dynamic dim '%.64s' (axis %u of input '%.64s' "
                             "%.64s) is not bound: give its value in the model's 'dims' "
                             "(dims: {%.64s: N}; %.64s: batch when it follows the batch; "
                             "docs/plan-input.md)",
                             i, pm->name, sym, axis, ti.name, ti.declared, sym, sym);
    }
    return USHER_OK;
}

/* e NULL: the fields only (no model is loaded or profiled) */
static int workload_doc(us_yaml_doc *d, usher_estimator *e, plan_problem *p, usher_error *err)
{
    int rc;
    const char *path = us_yaml_label(d);
    snprintf(p->workload, sizeof p->workload, "%s", path);
    us_map files, groups;
    us_map_init(&files);
    us_map_init(&groups);
    usher_model **models = NULL;
    usher_model **loaded = NULL;
    uint32_t n_loaded = 0;
    pf_workload w;
    if ((rc = pf_workload_doc(d, PLAN_MAX_MODELS, &w, err)) < 0)
        goto out;
    const us_yaml_node *list = us_yaml_get(us_yaml_root(d), "models");
    size_t n = w.n;
    p->m = us_calloc(n, sizeof *p->m);
    models = us_calloc(n, sizeof *models);
    loaded = us_calloc(n, sizeof *loaded);
    if (!p->m || !models || !loaded) {
        rc = us_yaml_error(d, NULL, err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    int next_group = 0;
    for (size_t i = 0; i < n; i++) {
        const us_yaml_node *m = us_yaml_item(list, i);
        plan_model *pm = &p->m[i];
        p->n = (uint32_t)i + 1; /* what it owns is freed with the problem on any error */
        char f[96];
        if ((rc = model_fields(&w.m[i], pm, &groups, &next_group, err)) < 0)
            goto out;
        if (!e)
            continue; /* fields only */
        /* each file is loaded once */
        snprintf(f, sizeof f, "models[%zu].model", i);
        usher_model *um = us_map_get(&files, pm->path);
        if (!um) {
            usher_error le;
            if ((rc = usher_model_load(pm->path, NULL, &um, &le)) < 0) {
                rc = us_yaml_error(d, us_yaml_get(m, "model"), err, rc, "field '%s': %s", f, le.msg);
                goto out;
            }
            loaded[n_loaded++] = um;
            if (us_map_put(&files, pm->path, um, NULL) < 0) {
                rc = us_yaml_error(d, NULL, err, USHER_ERR_NOMEM, "out of memory");
                goto out;
            }
        }
        models[i] = um;
        if ((rc = check_dims(d, m, (uint32_t)i, pm, um, err)) < 0)
            goto out;
    }
    if (!e) {
        rc = USHER_OK;
        goto out;
    }
    if ((rc = plan_problem_profile(p, e, models, err)) < 0)
        goto out;
    /* a model no GPU type can serve within its SLO */
    for (uint32_t i = 0; i < p->n; i++) {
        const plan_model *pm = &p->m[i];
        if (pm->n_cfg)
            continue;
        const us_yaml_node *m = us_yaml_item(list, i);
        if (!isfinite(pm->fastest_ms) || pm->fastest_ms <= 0) {
            rc = us_yaml_error(d, m, err, USHER_ERR_LIMIT,
                               "models[%u] '%s': does not fit the memory of any GPU type of %s",
                               i, pm->name, p->cluster);
        } else {
            rc = us_yaml_error(
                d, us_yaml_get(m, "slo_ms"), err, USHER_ERR_LIMIT,
                "field 'models[%u].slo_ms': model '%s' cannot meet %g ms on any GPU type of %s: "
                "the fastest is %.3g ms at batch 1 on %s, and a request may wait for the batch "
                "before its own, so the SLO must be at least %.3g ms",
                i, pm->name, pm->slo_ms, p->cluster, pm->fastest_ms, pm->fastest_gpu,
                PLAN_SLO_FACTOR * pm->fastest_ms);
        }
        goto out;
    }
    rc = USHER_OK;
out:
    for (uint32_t i = 0; i < n_loaded; i++)
        usher_model_free(loaded[i]);
    us_free(loaded);
    us_free(models);
    pf_workload_free(&w);
    us_map_free(&files);
    us_map_free(&groups);
    return rc;
}

int plan_read_workload(const char *path, usher_estimator *e, plan_problem *p, usher_error *err)
{
    us_yaml_doc *d = NULL;
    us_yaml_limits lim = pf_workload_limits();
    int rc = us_yaml_load(path, &lim, &d, err);
    if (rc < 0)
        return rc;
    rc = workload_doc(d, e, p, err);
    us_yaml_free(d);
    return rc;
}

int plan_parse_workload(const char *text, size_t len, const char *label, plan_problem *p,
                        usher_error *err)
{
    us_yaml_doc *d = NULL;
    us_yaml_limits lim = pf_workload_limits();
    int rc = us_yaml_parse(text, len, label, &lim, &d, err);
    if (rc < 0)
        return rc;
    rc = workload_doc(d, NULL, p, err);
    us_yaml_free(d);
    return rc;
}

/* ---- a running plan ----------------------------------------------------------- */
/* plan.json as read by src/planfile (its fields checked there) against p.
 * Each GPU's identity is its index (gpus[].index; a plan written before it:
 * its place among the file's GPUs of its type and node). A GPU on an entry the
 * cluster no longer has, listed lost, or past its entry's count or max is
 * gone: it is left out and counted with its replicas (s->lost_*), which the
 * re-plan places again. Two GPUs of one identity are an error. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int running_plan(const pf_plan *f, const plan_problem *p, plan_solution *s,
                        uint32_t *dropped, usher_error *err)
{
    int rc;
    us_map names;
    us_map_init(&names);
    uint32_t seen[PLAN_MAX_TYPES] = {0}; /* GPUs of each type so far (plans without index) */
    uint32_t ng = f->n_gpus ? f->n_gpus : 1;
    int *ty = us_calloc(ng, sizeof *ty);
    uint32_t *ix = us_calloc(ng, sizeof *ix);
    /* (type << 40 | index << 20 | gpu) of the GPUs on the cluster's entries, sorted */
    uint64_t *key = us_calloc(ng, sizeof *key);
    if (!ty || !ix || !key) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory", f->label);
        goto out;
    }
    for (uint32_t m = 0; m < p->n; m++)
        if (us_map_put(&names, p->m[m].name, (void *)(uintptr_t)(m + 1), NULL) < 0) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory", f->label);
            goto out;
        }
    uint32_t nk = 0;
    for (uint32_t i = 0; i < f->n_gpus; i++) {
        const pf_gpu *g = &f->g[i];
        const char *node = g->node ? g->node : "";
        ty[i] = -1;
        for (uint16_t k = 0; k < p->nt && ty[i] < 0; k++)
            if (strcmp(p->t[k].key, g->type) == 0 && strcmp(p->t[k].node, node) == 0)
                ty[i] = k;
        if (ty[i] < 0)
            continue;
        ix[i] = g->has_index ? g->index : seen[ty[i]];
        seen[ty[i]]++;
        if (f->n_gpus < (1u << 20))
            key[nk++] = (uint64_t)ty[i] << 40 | (uint64_t)ix[i] << 20 | i;
    }
    qsort(key, nk, sizeof *key, cmp_u64);
    for (uint32_t k = 1; k < nk; k++)
        if (key[k] >> 20 == key[k - 1] >> 20) {
            uint32_t a = (uint32_t)(key[k - 1] & 0xfffff), b = (uint32_t)(key[k] & 0xfffff);
            const pf_gpu *g = &f->g[b];
            rc = us_err_set(err, USHER_ERR_PARSE,
                            "%s:%zu: gpus[%u]: GPU %u of type '%.64s' on node '%.64s' is "
                            "already gpus[%u]",
                            f->label, g->line, b, ix[b], g->type, g->node ? g->node : "", a);
            goto out;
        }
    for (uint32_t i = 0; i < f->n_gpus; i++) {
        const pf_gpu *g = &f->g[i];
        int t = ty[i];
        uint32_t index = ix[i];
        int gi = -1;
        if (t >= 0 && index < plan_type_slots(&p->t[t]) && !plan_gpu_lost(p, (uint16_t)t, index) &&
            plan_type_left(s, p, (uint16_t)t) > 0) {
            if ((gi = plan_open(s, p, (uint16_t)t, -1)) < 0) {
                rc = us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory", f->label);
                goto out;
            }
            s->g[gi].ident = index + 1;
        }
        if (gi < 0) {
            /* gone: its replicas are placed again by the re-plan */
            s->lost_gpus++;
            for (uint32_t r = 0; r < g->n; r++)
                s->lost_replicas += us_map_get(&names, g->r[r].model) != NULL;
            *dropped += g->n;
            continue;
        }
        for (uint32_t r = 0; r < g->n; r++) {
            const pf_replica *rp = &g->r[r];
            uintptr_t mi = (uintptr_t)us_map_get(&names, rp->model);
            if (!mi) {
                (*dropped)++; /* a model no longer in the workload: it stops */
                continue;
            }
            const plan_model *pm = &p->m[mi - 1];
            int c = -1;
            for (uint32_t k = 0; k < pm->n_cfg && c < 0; k++)
                if (pm->cfg[k].type == t && pm->cfg[k].batch == rp->batch &&
                    fabs(pm->cfg[k].share - rp->share) < 1e-6)
                    c = (int)k;
            if (c < 0) {
                (*dropped)++; /* no longer a candidate (new SLO): restarted by the re-plan */
                continue;
            }
            if (!plan_room_fits(s->g[gi].used_c, s->g[gi].used_m, &pm->cfg[c])) {
                rc = us_err_set(err, USHER_ERR_PARSE,
                                "%s:%zu: gpus[%u].replicas[%u]: the GPU's replicas need more "
                                "than 100%% of it",
                                f->label, rp->line, i, r);
                goto out;
            }
            if (!plan_fits_with(s, p, (uint32_t)gi, (uint32_t)(mi - 1), (uint32_t)c, 0, -1, NULL)) {
                /* the interference model refuses it beside the replicas before it
                 * (a plan made without the model, or with other coefficients): it
                 * restarts where the re-plan puts it */
                (*dropped)++;
                continue;
            }
            if (plan_add(s, p, (uint32_t)gi, (uint32_t)(mi - 1), (uint32_t)c, 0) < 0) {
                rc = us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory", f->label);
                goto out;
            }
        }
    }
    /* what the running plan served each model (re-planning stops surplus
     * replicas only of a model whose rate fell below it) */
    for (uint32_t k = 0; k < f->n_models; k++) {
        uintptr_t mi = (uintptr_t)us_map_get(&names, f->m[k].name);
        if (mi && mi - 1 < s->n_models)
            s->served[mi - 1] = f->m[k].goodput;
    }
    rc = USHER_OK;
out:
    us_map_free(&names);
    us_free(ty);
    us_free(ix);
    us_free(key);
    return rc;
}

int plan_read_running(const char *path, const plan_problem *p, plan_solution *s,
                      uint32_t *dropped, usher_error *err)
{
    pf_plan f;
    *dropped = 0;
    int rc = pf_load(path, &f, err);
    if (rc < 0)
        return rc;
    rc = running_plan(&f, p, s, dropped, err);
    pf_free(&f);
    return rc;
}

int plan_parse_running(const char *text, size_t len, const char *label, const plan_problem *p,
                       plan_solution *s, uint32_t *dropped, usher_error *err)
{
    pf_plan f;
    *dropped = 0;
    int rc = pf_parse(text, len, label, &f, err);
    if (rc < 0)
        return rc;
    rc = running_plan(&f, p, s, dropped, err);
    pf_free(&f);
    return rc;
}
