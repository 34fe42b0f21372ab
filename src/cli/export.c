/*
 * export.c - `usher export k8s|triton`: a plan.json turned into what runs it
 * on an existing engine (layer 9, over include/usher/planfile.h).
 *
 *   k8s     Kubernetes manifests for the NVIDIA device plugin: per node a
 *           ConfigMap with the node's slice of the plan and a Deployment
 *           pinned to the node running `usher serve --node` on its GPUs; a
 *           Service per model over the pods holding its replicas; the
 *           device plugin's configuration; with --service-monitor, a
 *           headless Service over every usher pod and a Prometheus
 *           Operator ServiceMonitor scraping it. docs/deploy.md.
 *   triton  a Triton model repository for one node: config.pbtxt per model
 *           (instance_group, max_batch_size, dynamic_batching from the plan),
 *           a configs/pN.pbtxt per replica, and launch.sh starting one
 *           tritonserver per replica (its compute share) under MPS.
 *
 * Invariants:
 *   - the plan is checked before anything is written: the reader's schema
 *     (another schema_version is refused), usher_planfile_check (no GPU
 *     over-subscribed or placed twice), and the cluster's nodes and types
 *     (--cluster, or the cluster.yaml the plan names when it is readable);
 *   - the output is a function of the plan and the options only (no time,
 *     no host): nodes, models and resources in sorted order, so that two
 *     exports of one plan are byte-identical and a re-plan's diff shows
 *     what moved;
 *   - every file is written to a temporary name in its directory and
 *     renamed over the old one (a reader never sees half a file);
 *   - with --diff OLD (k8s), OLD is rendered with the same options and only
 *     the files whose rendering differs are written: a node's file when its
 *     Deployment differs (its replicas, batch sizes, shares or GPUs), a
 *     Service when a model appears; what disappeared is reported, never
 *     deleted.
 * Kubernetes names are DNS labels (63 characters of [a-z0-9-]); a node or
 * model name that is not one keeps a readable prefix and gets 8 hex digits
 * of its FNV-1a hash, so two names never meet (a clash is still checked).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "usher/model.h"
#include "usher/planfile.h"

#define K8S_NAME_MAX 63
#define MAX_OUT_FILES 100000

/* ---- small tools ------------------------------------------------------------------ */

static uint32_t fnv32(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static uint64_t fnv64_str(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull; /* a separator */
}

/*
 * prefix + s as a DNS label (RFC 1123: [a-z0-9-], alphanumeric at both ends,
 * at most 63): other characters become '-', upper case lower case; if that
 * changed anything or the name is too long, "-" and 8 hex digits of s's hash
 * follow a shortened body.
 */
static void k8s_name(const char *prefix, const char *s, char out[K8S_NAME_MAX + 1])
{
    char body[K8S_NAME_MAX + 1];
    size_t n = 0, len = strlen(s), room = K8S_NAME_MAX - strlen(prefix);
    bool changed = false;
    for (size_t i = 0; i < len && n < room; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
            changed = true;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            c = '-';
            changed = true;
        }
        body[n++] = c;
    }
    if (len > room)
        changed = true;
    while (n && body[n - 1] == '-') {
        n--;
        changed = true;
    }
    body[n] = 0;
    if (changed) {
        if (n > room - 9)
            n = room - 9;
        while (n && body[n - 1] == '-')
            n--;
        snprintf(out, K8S_NAME_MAX + 1, "%s%.*s%s%08x", prefix, (int)n, body, n ? "-" : "",
                 fnv32(s));
    } else {
        snprintf(out, K8S_NAME_MAX + 1, "%s%s", prefix, body);
    }
}

/* the name part of a label key or a label value: [A-Za-z0-9._-], alphanumeric at
 * both ends, at most 63; otherwise shortened with the hash, as k8s_name */
static void label_part(const char *s, char out[K8S_NAME_MAX + 1])
{
    size_t len = strlen(s);
    bool ok = len > 0 && len <= K8S_NAME_MAX;
    for (size_t i = 0; ok && i < len; i++) {
        char c = s[i];
        bool an = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        ok = an || ((c == '.' || c == '_' || c == '-') && i > 0 && i + 1 < len);
    }
    if (ok) {
        memcpy(out, s, len + 1);
        return;
    }
    k8s_name("", s, out);
}

/* a Kubernetes node name: a DNS subdomain (RFC 1123), at most 253 characters */
static bool node_name_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool an = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!an && !((c == '-' || c == '.') && i > 0 && i + 1 < len))
            return false;
    }
    return true;
}

/* a label's name part (and a non-empty value): 1..63 of [A-Za-z0-9-_.],
 * alphanumeric at both ends */
static bool label_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool an = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!an && (i == 0 || i + 1 == n || !(c == '-' || c == '_' || c == '.')))
            return false;
    }
    return true;
}

/* a label key: [prefix/]name, the prefix a DNS subdomain (node_name_ok's rule) */
static bool label_key_ok(const char *k)
{
    const char *sl = strrchr(k, '/');
    if (!sl)
        return label_name_ok(k);
    char prefix[254];
    size_t pl = (size_t)(sl - k);
    if (pl == 0 || pl >= sizeof prefix)
        return false;
    memcpy(prefix, k, pl);
    prefix[pl] = 0;
    return node_name_ok(prefix) && label_name_ok(sl + 1);
}

/* a YAML double-quoted scalar (JSON escapes are YAML's) */
static void yq(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* text a YAML literal block carries unchanged: printable ASCII, tabs, newlines and
 * UTF-8 outside C1 controls, BOMs and line separators; not empty and ending in a
 * newline */
static bool block_ok(const char *s, size_t n)
{
    if (n == 0 || s[n - 1] != '\n' || s[0] == ' ' || s[0] == '\n')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f))
            continue;
        if (c < 0x80)
            return false;
        unsigned char d = i + 1 < n ? (unsigned char)s[i + 1] : 0;
        unsigned char e = i + 2 < n ? (unsigned char)s[i + 2] : 0;
        if ((c == 0xc2 && d < 0xa0) || (c == 0xef && d == 0xbb && e == 0xbf) ||
            (c == 0xe2 && d == 0x80 && (e == 0xa8 || e == 0xa9)))
            return false;
    }
    return true;
}

static bool is_mig(const char *type)
{
    return strchr(type, ':') != NULL;
}

/* the device plugin's resource for a GPU type: a MIG instance "a100-80gb:3g.40gb" is
 * nvidia.com/mig-3g.40gb (the plugin's mixed strategy), a whole GPU nvidia.com/gpu */
static void gpu_resource(const char *type, char *out, size_t n)
{
    const char *mig = strchr(type, ':');
    if (mig)
        snprintf(out, n, "nvidia.com/mig-%s", mig + 1);
    else
        snprintf(out, n, "nvidia.com/gpu");
}

/* a model repository directory name, as usher serve and Triton take them */
static bool repo_name_ok(const char *s)
{
    if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

/* ---- files ------------------------------------------------------------------------ */

typedef struct out_file {
    char *name; /* relative to the output directory */
    char *text;
    size_t len;
    int mode;
} out_file;

typedef struct out_set {
    out_file *f;
    size_t n, cap;
} out_set;

static void out_free(out_set *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->f[i].name);
        free(o->f[i].text);
    }
    free(o->f);
    memset(o, 0, sizeof *o);
}

/* take text (malloc'ed, as open_memstream gives it) under name */
static int out_add(out_set *o, const char *name, char *text, size_t len, int mode)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        out_file *f = cap <= MAX_OUT_FILES ? realloc(o->f, cap * sizeof *f) : NULL;
        if (!f) {
            free(text);
            return -1;
        }
        o->f = f;
        o->cap = cap;
    }
    char *nm = strdup(name);
    if (!nm) {
        free(text);
        return -1;
    }
    o->f[o->n++] = (out_file){.name = nm, .text = text, .len = len, .mode = mode};
    return 0;
}

static const out_file *out_find(const out_set *o, const char *name)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->f[i].name, name) == 0)
            return &o->f[i];
    return NULL;
}

static int mkdirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* dir/name through a temporary file in the same directory and rename */
static int write_atomic(const char *dir, const out_file *f, const char *verb)
{
    char path[PATH_MAX], tmp[PATH_MAX + 16], sub[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, f->name) >= (int)sizeof path) {
        fprintf(stderr, "usher export %s: %s/%s: path too long\n", verb, dir, f->name);
        return -1;
    }
    snprintf(sub, sizeof sub, "%s", path);
    char *slash = strrchr(sub, '/');
    *slash = 0;
    if (mkdirs(sub) < 0) {
        fprintf(stderr, "usher export %s: cannot create %s: %s\n", verb, sub, strerror(errno));
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "usher export %s: cannot write %s: %s\n", verb, path, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < f->len) {
        ssize_t w = write(fd, f->text + off, f->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    bool ok = off == f->len && fchmod(fd, (mode_t)f->mode) == 0 && fsync(fd) == 0;
    int e = errno;
    if (close(fd) < 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok || rename(tmp, path) < 0) {
        if (ok)
            e = errno;
        unlink(tmp);
        fprintf(stderr, "usher export %s: cannot write %s: %s\n", verb, path, strerror(e));
        return -1;
    }
    return 0;
}

/* a symbolic link dir/name -> target, replaced atomically */
static int link_atomic(const char *dir, const char *name, const char *target, const char *verb)
{
    char path[PATH_MAX], tmp[PATH_MAX + 16], sub[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return -1;
    snprintf(sub, sizeof sub, "%s", path);
    *strrchr(sub, '/') = 0;
    if (mkdirs(sub) < 0) {
        fprintf(stderr, "usher export %s: cannot create %s: %s\n", verb, sub, strerror(errno));
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp-link", path);
    unlink(tmp);
    if (symlink(target, tmp) < 0 || rename(tmp, path) < 0) {
        fprintf(stderr, "usher export %s: cannot link %s -> %s: %s\n", verb, path, target,
                strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ---- the plan by node --------------------------------------------------------------- */

typedef struct xnode {
    const char *name;        /* NULL: the GPUs without a node */
    uint32_t *gpus;          /* the plan's GPU indices, in the file's order */
    uint32_t n_gpus;
    uint32_t *local;         /* per GPU of the node: its device number on the node */
    const char **models;     /* sorted, distinct */
    uint32_t n_models, n_replicas;
    bool shares;             /* some replica has a share below 100: MPS */
    char kname[K8S_NAME_MAX + 1];
} xnode;

typedef struct xplan {
    usher_planfile *pf;
    usher_planfile_info info;
    xnode *nodes;            /* sorted by name; a NULL node first */
    uint32_t n_nodes;
    const char **models;     /* every model with a replica, sorted */
    uint32_t n_models;
} xplan;

static void xplan_free(xplan *x)
{
    for (uint32_t i = 0; x->nodes && i < x->n_nodes; i++) {
        free(x->nodes[i].gpus);
        free(x->nodes[i].local);
        free(x->nodes[i].models);
    }
    free(x->nodes);
    free(x->models);
    usher_planfile_free(x->pf);
    memset(x, 0, sizeof *x);
}

static int cmp_node(const void *a, const void *b)
{
    const xnode *x = a, *y = b;
    if (!x->name || !y->name)
        return x->name ? 1 : y->name ? -1 : 0;
    return strcmp(x->name, y->name);
}

/* add s to a sorted set of n (capacity enough) */
static void set_add(const char **set, uint32_t *n, const char *s)
{
    uint32_t lo = 0, hi = *n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int c = strcmp(set[mid], s);
        if (c == 0)
            return;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(set + lo + 1, set + lo, (*n - lo) * sizeof *set);
    set[lo] = s;
    (*n)++;
}

/* models one replica may serve: USHER_PLANFILE_MAX_SERVED with merge groups, else 1 */
static uint32_t served_max(const xplan *x)
{
    return x->info.n_groups ? USHER_PLANFILE_MAX_SERVED : 1;
}

/*
 * Load, check and group by node. cluster: --cluster, or NULL to use the
 * cluster.yaml the plan names when that file is readable (say so on stderr
 * unless quiet).
 */
static int xplan_load(const char *verb, const char *path, const char *cluster, bool quiet,
                      xplan *x)
{
    memset(x, 0, sizeof *x);
    usher_error err;
    if (usher_planfile_load(path, &x->pf, &err) < 0 || usher_planfile_check(x->pf, &err) < 0) {
        fprintf(stderr, "usher export %s: %s\n", verb, err.msg);
        goto fail;
    }
    usher_planfile_get_info(x->pf, &x->info);
    const char *cl = cluster;
    if (!cl && x->info.cluster && access(x->info.cluster, R_OK) == 0) {
        cl = x->info.cluster;
        if (!quiet)
            fprintf(stderr, "usher export %s: %s: checked against %s, the cluster it names\n",
                    verb, path, cl);
    } else if (!cl && !quiet) {
        if (x->info.cluster)
            fprintf(stderr, "usher export %s: %s: not checked against a cluster.yaml ('%s', the "
                            "one it names, is not readable here; --cluster FILE checks its nodes "
                            "and GPU types)\n", verb, path, x->info.cluster);
        else
            fprintf(stderr, "usher export %s: %s: not checked against a cluster.yaml (it names "
                            "none; --cluster FILE checks its nodes and GPU types)\n", verb, path);
    }
    if (cl && usher_planfile_check_cluster(x->pf, cl, &err) < 0) {
        fprintf(stderr, "usher export %s: %s\n", verb, err.msg);
        goto fail;
    }
    uint32_t ng = x->info.n_gpus;
    if (!(x->nodes = calloc(ng ? ng : 1, sizeof *x->nodes)) ||
        !(x->models = calloc(x->info.n_replicas ? x->info.n_replicas * served_max(x) : 1,
                             sizeof *x->models)))
        goto oom;
    for (uint32_t g = 0; g < ng; g++) {
        usher_planfile_gpu gi;
        usher_planfile_gpu_at(x->pf, g, &gi);
        xnode *nd = NULL;
        for (uint32_t k = 0; k < x->n_nodes && !nd; k++)
            if ((!x->nodes[k].name && !gi.node) ||
                (x->nodes[k].name && gi.node && strcmp(x->nodes[k].name, gi.node) == 0))
                nd = &x->nodes[k];
        if (!nd) {
            nd = &x->nodes[x->n_nodes++];
            nd->name = gi.node;
            if (!(nd->gpus = calloc(ng, sizeof *nd->gpus)) ||
                !(nd->local = calloc(ng, sizeof *nd->local)) ||
                !(nd->models = calloc(x->info.n_replicas ? x->info.n_replicas * served_max(x) : 1,
                                      sizeof *nd->models)))
                goto oom;
        }
        nd->gpus[nd->n_gpus++] = g;
        for (uint32_t r = 0; r < gi.n_replicas; r++) {
            usher_planfile_replica rp;
            usher_planfile_replica_at(x->pf, g, r, &rp);
            /* a merge group's replica: each of its members is a model of the node (its
             * Service, its directory); the node's usher serve forms the group */
            const char *served[USHER_PLANFILE_MAX_SERVED];
            uint32_t ns = usher_planfile_served_models(x->pf, rp.model, served,
                                                       USHER_PLANFILE_MAX_SERVED);
            for (uint32_t j = 0; j < ns; j++) {
                set_add(nd->models, &nd->n_models, served[j]);
                set_add(x->models, &x->n_models, served[j]);
            }
            nd->n_replicas++;
            if (rp.share < 100)
                nd->shares = true;
        }
    }
    qsort(x->nodes, x->n_nodes, sizeof *x->nodes, cmp_node);
    /* a GPU's device number on its node: its index where the plan gives one, else
     * its place among the node's GPUs of the file */
    for (uint32_t k = 0; k < x->n_nodes; k++) {
        xnode *nd = &x->nodes[k];
        for (uint32_t i = 0; i < nd->n_gpus; i++) {
            usher_planfile_gpu gi;
            usher_planfile_gpu_at(x->pf, nd->gpus[i], &gi);
            nd->local[i] = gi.has_index ? gi.index : i;
        }
        k8s_name("usher-", nd->name ? nd->name : "", nd->kname);
    }
    return 0;
oom:
    fprintf(stderr, "usher export %s: out of memory\n", verb);
fail:
    xplan_free(x);
    return -1;
}

/* the placement a node's Deployment runs: types, device numbers, replicas */
static uint64_t node_hash(const xplan *x, const xnode *nd)
{
    uint64_t h = 14695981039346656037ull;
    for (uint32_t i = 0; i < nd->n_gpus; i++) {
        usher_planfile_gpu gi;
        usher_planfile_gpu_at(x->pf, nd->gpus[i], &gi);
        char b[64];
        h = fnv64_str(h, gi.type);
        snprintf(b, sizeof b, "%u", nd->local[i]);
        h = fnv64_str(h, b);
        for (uint32_t r = 0; r < gi.n_replicas; r++) {
            usher_planfile_replica rp;
            usher_planfile_replica_at(x->pf, nd->gpus[i], r, &rp);
            h = fnv64_str(h, rp.model);
            snprintf(b, sizeof b, "%d/%.6g", rp.batch, rp.share);
            h = fnv64_str(h, b);
        }
    }
    return h;
}

/* ---- k8s ---------------------------------------------------------------------------- */

typedef struct k8s_opts {
    const char *image, *ns, *claim, *pin, *dp_ns;
    int port;
    bool service_monitor; /* monitoring.yaml: Service usher-metrics + ServiceMonitor usher */
    double cpu_per_replica;
    int64_t mem_per_replica_mib;
} k8s_opts;

static void meta(FILE *f, const char *name, const k8s_opts *o)
{
    fprintf(f, "metadata:\n  name: %s\n", name);
    if (o->ns) {
        fprintf(f, "  namespace: ");
        yq(f, o->ns);
        fputc('\n', f);
    }
}

static void common_labels(FILE *f, const char *indent)
{
    fprintf(f, "%sapp.kubernetes.io/name: usher\n%sapp.kubernetes.io/managed-by: usher-export\n",
            indent, indent);
}

static int model_label(const char *model, char *out, size_t n)
{
    char part[K8S_NAME_MAX + 1];
    label_part(model, part);
    return snprintf(out, n, "model.usher.dev/%s", part);
}

/* the node's ConfigMap and Deployment (one file: they change together) */
static int render_node(const xplan *x, const xnode *nd, const k8s_opts *o, char **text,
                       size_t *len, char **deploy_only, size_t *deploy_len)
{
    usher_error err;
    char *slice = NULL;
    size_t slice_len = 0;
    FILE *sf = open_memstream(&slice, &slice_len);
    if (!sf)
        return -1;
    if (usher_planfile_write_slice(x->pf, nd->name, sf, &err) < 0) {
        fclose(sf);
        free(slice);
        fprintf(stderr, "usher export k8s: %s\n", err.msg);
        return -1;
    }
    if (fclose(sf) != 0) {
        free(slice);
        return -1;
    }
    if (!block_ok(slice, slice_len)) {
        fprintf(stderr, "usher export k8s: the slice of node %s holds characters a YAML block "
                        "cannot carry (control characters)\n", nd->name);
        free(slice);
        return -1;
    }
    char cm[K8S_NAME_MAX + 1], nl[K8S_NAME_MAX + 1];
    k8s_name("usher-plan-", nd->name, cm);
    label_part(nd->name, nl);

    /* the Deployment first, on its own: --diff compares it */
    char *dep = NULL;
    size_t dep_len = 0;
    FILE *f = open_memstream(&dep, &dep_len);
    if (!f) {
        free(slice);
        return -1;
    }
    /* GPU resources per name, sorted (a node may hold whole GPUs and MIG instances) */
    char res[64][64];
    uint32_t res_n[64], n_res = 0;
    bool mig = false;
    for (uint32_t i = 0; i < nd->n_gpus; i++) {
        usher_planfile_gpu gi;
        usher_planfile_gpu_at(x->pf, nd->gpus[i], &gi);
        char r[64];
        gpu_resource(gi.type, r, sizeof r);
        mig |= is_mig(gi.type);
        uint32_t k = 0;
        while (k < n_res && strcmp(res[k], r) != 0)
            k++;
        if (k == n_res) {
            if (n_res == 64) {
                fclose(f);
                free(dep);
                free(slice);
                fprintf(stderr, "usher export k8s: node %s: more than 64 GPU resource names\n",
                        nd->name);
                return -1;
            }
            snprintf(res[n_res], sizeof res[n_res], "%s", r);
            res_n[n_res++] = 0;
        }
        res_n[k]++;
    }
    for (uint32_t a = 1; a < n_res; a++) /* insertion sort by name */
        for (uint32_t b = a; b > 0 && strcmp(res[b - 1], res[b]) > 0; b--) {
            char t[64];
            memcpy(t, res[b], sizeof t);
            memcpy(res[b], res[b - 1], sizeof t);
            memcpy(res[b - 1], t, sizeof t);
            uint32_t u = res_n[b];
            res_n[b] = res_n[b - 1];
            res_n[b - 1] = u;
        }
    double cpu = 1 + o->cpu_per_replica * nd->n_replicas;
    int64_t mem = 1024 + o->mem_per_replica_mib * nd->n_replicas;
    bool mps = nd->shares && !mig;
    fprintf(f, "apiVersion: apps/v1\nkind: Deployment\n");
    meta(f, nd->kname, o);
    fprintf(f, "  labels:\n");
    common_labels(f, "    ");
    fprintf(f, "    usher.dev/node: %s\n", nl);
    fprintf(f, "  annotations:\n    usher.dev/node-name: ");
    yq(f, nd->name);
    fprintf(f, "\nspec:\n  replicas: 1\n  # the GPUs are this pod's alone: the old pod stops before "
               "the new one starts\n  strategy:\n    type: Recreate\n  selector:\n    matchLabels:\n"
               "      app.kubernetes.io/name: usher\n      usher.dev/node: %s\n",
            nl);
    fprintf(f, "  template:\n    metadata:\n      labels:\n");
    common_labels(f, "        ");
    fprintf(f, "        usher.dev/node: %s\n", nl);
    for (uint32_t m = 0; m < nd->n_models; m++) {
        char lk[96];
        model_label(nd->models[m], lk, sizeof lk);
        fprintf(f, "        %s: \"true\"\n", lk);
    }
    fprintf(f, "      annotations:\n        prometheus.io/scrape: \"true\"\n"
               "        prometheus.io/port: \"%d\"\n        prometheus.io/path: /metrics\n"
               "        usher.dev/slice: \"%016llx\"\n",
            o->port, (unsigned long long)node_hash(x, nd));
    fprintf(f, "    spec:\n");
    usher_planfile_node pn;
    if (strcmp(o->pin, "labels") == 0 && usher_planfile_node_find(x->pf, nd->name, &pn) == 0) {
        /* the node's labels from cluster.yaml (checked by render_k8s) */
        fprintf(f, "      nodeSelector:\n");
        for (uint32_t k = 0; k < pn.n_labels; k++) {
            fprintf(f, "        ");
            yq(f, pn.labels[2 * k]);
            fprintf(f, ": ");
            yq(f, pn.labels[2 * k + 1]);
            fputc('\n', f);
        }
    } else if (strcmp(o->pin, "nodename") == 0 || strlen(nd->name) > K8S_NAME_MAX) {
        fprintf(f, "      nodeName: ");
        yq(f, nd->name);
        fputc('\n', f);
    } else {
        fprintf(f, "      nodeSelector:\n        kubernetes.io/hostname: ");
        yq(f, nd->name);
        fputc('\n', f);
    }
    fprintf(f, "      tolerations:\n      - key: nvidia.com/gpu\n        operator: Exists\n"
               "        effect: NoSchedule\n"
               "      terminationGracePeriodSeconds: 45\n      containers:\n      - name: usher\n"
               "        image: ");
    yq(f, o->image);
    fputc('\n', f);
    if (mps)
        fprintf(f, "        # replicas share GPUs: an MPS control daemon in this container, whose "
                   "workers\n        # each set CUDA_MPS_ACTIVE_THREAD_PERCENTAGE to their share\n"
                   "        command: [\"sh\", \"-c\", \"nvidia-cuda-mps-control -d && exec usher "
                   "\\\"$@\\\"\", \"usher\"]\n");
    else
        fprintf(f, "        command: [\"usher\"]\n");
    fprintf(f, "        args: [\"serve\", \"--repo\", \"/models\", \"--plan\", "
               "\"/etc/usher/plan.json\", \"--node\", ");
    yq(f, nd->name);
    fprintf(f, ", \"--http-address\", \"0.0.0.0\", \"--http-port\", \"%d\", "
               "\"--log-format\", \"json\"]\n",
            o->port);
    if (mps)
        fprintf(f, "        env:\n        - name: CUDA_MPS_PIPE_DIRECTORY\n"
                   "          value: /mps/pipe\n        - name: CUDA_MPS_LOG_DIRECTORY\n"
                   "          value: /mps/log\n");
    fprintf(f, "        ports:\n        - name: http\n          containerPort: %d\n"
               "          protocol: TCP\n",
            o->port);
    fprintf(f, "        # requests = limits: the Guaranteed QoS class (evicted last)\n"
               "        resources:\n");
    for (int rl = 0; rl < 2; rl++) {
        fprintf(f, "          %s:\n            cpu: \"%.6g\"\n            memory: %lldMi\n",
                rl ? "limits" : "requests", cpu, (long long)mem);
        for (uint32_t k = 0; k < n_res; k++)
            fprintf(f, "            %s: %u\n", res[k], res_n[k]);
    }
    char ready[300];
    if (nd->n_models == 1)
        snprintf(ready, sizeof ready, "/v2/models/%s/ready", nd->models[0]);
    else
        snprintf(ready, sizeof ready, "/v2/health/ready");
    fprintf(f, "        # loading the models may take minutes: liveness starts after it\n"
               "        startupProbe:\n          httpGet:\n            path: /v2/health/live\n"
               "            port: http\n          periodSeconds: 5\n          failureThreshold: 120\n"
               "        livenessProbe:\n          httpGet:\n            path: /v2/health/live\n"
               "            port: http\n          periodSeconds: 10\n          timeoutSeconds: 5\n"
               "          failureThreshold: 3\n"
               "        readinessProbe:\n          httpGet:\n            path: ");
    yq(f, ready);
    fprintf(f, "\n            port: http\n          periodSeconds: 5\n          timeoutSeconds: 2\n"
               "          failureThreshold: 2\n");
    /* the repository as the pod sees it: the node's models only (one subPath mount each),
     * so that usher serve loads nothing else */
    fprintf(f, "        volumeMounts:\n        - name: plan\n          mountPath: /etc/usher\n"
               "          readOnly: true\n");
    for (uint32_t m = 0; m < nd->n_models; m++)
        fprintf(f, "        - name: models\n          mountPath: /models/%s\n          subPath: %s\n"
                   "          readOnly: true\n",
                nd->models[m], nd->models[m]);
    if (mps)
        fprintf(f, "        - name: mps\n          mountPath: /mps\n");
    fprintf(f, "      volumes:\n      - name: plan\n        configMap:\n          name: %s\n"
               "      - name: models\n        persistentVolumeClaim:\n          claimName: ",
            cm);
    yq(f, o->claim);
    fprintf(f, "\n          readOnly: true\n");
    if (mps)
        fprintf(f, "      - name: mps\n        emptyDir:\n          medium: Memory\n");
    if (fclose(f) != 0) {
        free(dep);
        free(slice);
        return -1;
    }

    FILE *g = open_memstream(text, len);
    if (!g) {
        free(dep);
        free(slice);
        return -1;
    }
    fprintf(g, "# node %s: its slice of the plan and the usher serve that runs it\n", nd->name);
    fprintf(g, "# (%u GPU%s, %u replica%s of %u model%s)\n", nd->n_gpus, nd->n_gpus == 1 ? "" : "s",
            nd->n_replicas, nd->n_replicas == 1 ? "" : "s", nd->n_models,
            nd->n_models == 1 ? "" : "s");
    fprintf(g, "apiVersion: v1\nkind: ConfigMap\n");
    meta(g, cm, o);
    fprintf(g, "  labels:\n");
    common_labels(g, "    ");
    fprintf(g, "    usher.dev/node: %s\ndata:\n  plan.json: |\n", nl);
    for (const char *p = slice; *p;) {
        const char *e = strchr(p, '\n');
        fprintf(g, "    %.*s\n", (int)(e - p), p);
        p = e + 1;
    }
    fprintf(g, "---\n%s", dep);
    free(slice);
    if (fclose(g) != 0) {
        free(dep);
        return -1;
    }
    *deploy_only = dep;
    *deploy_len = dep_len;
    return 0;
}

static int render_service(const char *model, const k8s_opts *o, char **text, size_t *len)
{
    FILE *f = open_memstream(text, len);
    if (!f)
        return -1;
    char name[K8S_NAME_MAX + 1], lk[96], lv[K8S_NAME_MAX + 1];
    k8s_name("usher-model-", model, name);
    model_label(model, lk, sizeof lk);
    label_part(model, lv);
    fprintf(f, "# model %s: routes to the ready pods that hold one of its replicas\n", model);
    fprintf(f, "apiVersion: v1\nkind: Service\n");
    meta(f, name, o);
    fprintf(f, "  labels:\n");
    common_labels(f, "    ");
    fprintf(f, "    usher.dev/model: %s\n  annotations:\n    usher.dev/model-name: ", lv);
    yq(f, model);
    fprintf(f, "\nspec:\n  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: usher\n"
               "    %s: \"true\"\n  ports:\n  - name: http\n    port: %d\n    targetPort: http\n"
               "    protocol: TCP\n",
            lk, o->port);
    return fclose(f) == 0 ? 0 : -1;
}

/* the device plugin's configuration: the plugin does not share the GPUs (usher runs
 * MPS in its pods, with per-replica shares); MIG instances as their own resources */
static int render_device_plugin(const xplan *x, const k8s_opts *o, char **text, size_t *len)
{
    bool mig = false, shares = false;
    for (uint32_t g = 0; g < x->info.n_gpus; g++) {
        usher_planfile_gpu gi;
        usher_planfile_gpu_at(x->pf, g, &gi);
        mig |= is_mig(gi.type);
    }
    for (uint32_t k = 0; k < x->n_nodes; k++)
        shares |= x->nodes[k].shares;
    FILE *f = open_memstream(text, len);
    if (!f)
        return -1;
    fprintf(f, "# the NVIDIA device plugin's configuration for the nodes of this plan\n"
               "# (helm: --set config.name=usher-device-plugin --set config.default=usher).\n"
               "# %s\n# %s\n",
            mig ? "MIG instances are resources of their own (nvidia.com/mig-<profile>): "
                  "migStrategy mixed."
                : "No MIG instance in the plan: migStrategy none.",
            shares ? "Replicas share GPUs with unequal MPS shares: the plugin hands whole GPUs "
                     "to one pod per node (no sharing here), and the pod runs the MPS daemon."
                   : "No GPU is shared: whole GPUs, no sharing.");
    fprintf(f, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: usher-device-plugin\n"
               "  namespace: ");
    yq(f, o->dp_ns);
    fprintf(f, "\n  labels:\n");
    common_labels(f, "    ");
    fprintf(f, "data:\n  usher: |\n    version: v1\n    flags:\n      migStrategy: %s\n"
               "      failOnInitError: true\n",
            mig ? "mixed" : "none");
    return fclose(f) == 0 ? 0 : -1;
}

/* --service-monitor: the Prometheus Operator's way to scrape every usher pod -
 * one headless Service over all of them (the per-model Services would scrape a
 * pod once per model it holds) and a ServiceMonitor selecting that Service */
static int render_monitoring(const k8s_opts *o, char **text, size_t *len)
{
    FILE *f = open_memstream(text, len);
    if (!f)
        return -1;
    fprintf(f, "# Prometheus Operator: every usher pod's /metrics, through one headless Service\n"
               "# (not the per-model Services: they would scrape a pod once per model it holds)\n"
               "apiVersion: v1\nkind: Service\n");
    meta(f, "usher-metrics", o);
    fprintf(f, "  labels:\n");
    common_labels(f, "    ");
    fprintf(f, "    usher.dev/metrics: \"true\"\nspec:\n  clusterIP: None\n  selector:\n"
               "    app.kubernetes.io/name: usher\n  ports:\n  - name: metrics\n    port: %d\n"
               "    targetPort: http\n    protocol: TCP\n---\n",
            o->port);
    fprintf(f, "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n");
    meta(f, "usher", o);
    fprintf(f, "  labels:\n");
    common_labels(f, "    ");
    fprintf(f, "spec:\n  selector:\n    matchLabels:\n      usher.dev/metrics: \"true\"\n"
               "  endpoints:\n  - port: metrics\n    path: /metrics\n    interval: 30s\n");
    return fclose(f) == 0 ? 0 : -1;
}

static int render_k8s(const xplan *x, const k8s_opts *o, out_set *files, out_set *deploys)
{
    for (uint32_t m = 0; m < x->n_models; m++)
        if (!repo_name_ok(x->models[m])) {
            fprintf(stderr, "usher export k8s: model '%s': not a model repository directory "
                            "name (letters, digits, '-', '_', '.'), so no server can load it\n",
                    x->models[m]);
            return -1;
        }
    for (uint32_t k = 0; k < x->n_nodes; k++) {
        const xnode *nd = &x->nodes[k];
        if (!nd->name) {
            usher_planfile_gpu gi;
            usher_planfile_gpu_at(x->pf, nd->gpus[0], &gi);
            fprintf(stderr, "usher export k8s: %s:%zu: gpus[%u] has no node: Kubernetes needs "
                            "every GPU on a node (cluster.yaml's gpus[].node)\n",
                    x->info.label, gi.line, nd->gpus[0]);
            return -1;
        }
        if (!node_name_ok(nd->name)) {
            fprintf(stderr, "usher export k8s: node '%s' is not a Kubernetes node name (a DNS "
                            "subdomain: lower-case letters, digits, '-' and '.')\n", nd->name);
            return -1;
        }
        usher_planfile_node pn;
        if (strcmp(o->pin, "labels") == 0) {
            if (usher_planfile_node_find(x->pf, nd->name, &pn) < 0 || pn.n_labels == 0) {
                fprintf(stderr, "usher export k8s: --pin-by labels: node '%s' has no labels in %s "
                                "(cluster.yaml's nodes[].labels, written to plan.json's nodes)\n",
                        nd->name, x->info.label);
                return -1;
            }
            for (uint32_t l = 0; l < pn.n_labels; l++)
                if (!label_key_ok(pn.labels[2 * l]) ||
                    (pn.labels[2 * l + 1][0] && !label_name_ok(pn.labels[2 * l + 1]))) {
                    fprintf(stderr, "usher export k8s: node '%s': label '%.64s: %.64s' of %s is "
                                    "not a Kubernetes label\n",
                            nd->name, pn.labels[2 * l], pn.labels[2 * l + 1], x->info.label);
                    return -1;
                }
        }
        for (uint32_t j = 0; j < k; j++)
            if (strcmp(x->nodes[j].kname, nd->kname) == 0) {
                fprintf(stderr, "usher export k8s: nodes '%s' and '%s' give one name, %s\n",
                        x->nodes[j].name, nd->name, nd->kname);
                return -1;
            }
        char *t = NULL, *d = NULL;
        size_t tl = 0, dl = 0;
        char fname[K8S_NAME_MAX + 16];
        snprintf(fname, sizeof fname, "node-%s.yaml", nd->kname + strlen("usher-"));
        if (render_node(x, nd, o, &t, &tl, &d, &dl) < 0 || out_add(files, fname, t, tl, 0644) < 0 ||
            out_add(deploys, fname, d, dl, 0644) < 0) {
            fprintf(stderr, "usher export k8s: could not render node %s\n", nd->name);
            return -1;
        }
    }
    for (uint32_t m = 0; m < x->n_models; m++) {
        char name[K8S_NAME_MAX + 1], fname[K8S_NAME_MAX + 16];
        k8s_name("usher-model-", x->models[m], name);
        snprintf(fname, sizeof fname, "service-%s.yaml", name + strlen("usher-model-"));
        if (out_find(files, fname)) {
            fprintf(stderr, "usher export k8s: two models give the Service name %s\n", name);
            return -1;
        }
        char *t = NULL;
        size_t tl = 0;
        if (render_service(x->models[m], o, &t, &tl) < 0 || out_add(files, fname, t, tl, 0644) < 0)
            return -1;
    }
    char *t = NULL;
    size_t tl = 0;
    if (render_device_plugin(x, o, &t, &tl) < 0 ||
        out_add(files, "device-plugin.yaml", t, tl, 0644) < 0)
        return -1;
    if (o->service_monitor &&
        (render_monitoring(o, &t, &tl) < 0 || out_add(files, "monitoring.yaml", t, tl, 0644) < 0))
        return -1;
    return 0;
}

static void k8s_help(FILE *f)
{
    fprintf(f,
            "usage: usher export k8s --plan plan.json -o DIR [--diff OLD.json]\n"
            "                        [--cluster cluster.yaml] [--image IMAGE] [--namespace NS]\n"
            "                        [--models-claim PVC] [--port N]\n"
            "                        [--pin-by hostname|nodename|labels]\n"
            "                        [--cpu-per-replica N] [--memory-per-replica-mib N]\n"
            "                        [--device-plugin-namespace NS] [--service-monitor]\n\n"
            "Writes Kubernetes manifests that run the plan with the NVIDIA device plugin\n"
            "(docs/deploy.md): per node node-NAME.yaml (a ConfigMap with the node's slice of\n"
            "the plan and a Deployment pinned to the node running `usher serve --node` on its\n"
            "GPUs, with GPU requests, probes, resources and Prometheus annotations), per model\n"
            "service-NAME.yaml (a Service over the pods holding its replicas), and\n"
            "device-plugin.yaml (the plugin's configuration). Sorted and deterministic; each\n"
            "file written atomically.\n\n"
            "  --plan FILE         the plan (usher plan -o)\n"
            "  -o DIR              where to write (created)\n"
            "  --diff OLD          the plan running now: write only the files that change\n"
            "                      (nodes whose replicas, batch sizes, shares or GPUs moved,\n"
            "                      new models' Services); report what is gone\n"
            "  --cluster FILE      check nodes and GPU types against this cluster.yaml\n"
            "                      (default: the one the plan names, when readable)\n"
            "  --image IMAGE       the usher image (default usher:%s)\n"
            "  --namespace NS      the namespace of the workloads (default: none given)\n"
            "  --models-claim PVC  the PersistentVolumeClaim holding the model repository,\n"
            "                      mounted read-only at /models (default usher-models)\n"
            "  --port N            the HTTP port (default 8000)\n"
            "  --pin-by P          hostname: nodeSelector kubernetes.io/hostname (default);\n"
            "                      nodename: spec.nodeName (bypasses the scheduler);\n"
            "                      labels: nodeSelector the node's labels (cluster.yaml\n"
            "                      nodes[].labels, carried in plan.json)\n"
            "  --cpu-per-replica N, --memory-per-replica-mib N  resources per replica on top\n"
            "                      of 1 CPU and 1024 MiB per pod (default 1 and 2048)\n"
            "  --device-plugin-namespace NS  where the plugin runs (default\n"
            "                      nvidia-device-plugin)\n"
            "  --service-monitor   also monitoring.yaml: a headless Service over every usher\n"
            "                      pod and a Prometheus Operator ServiceMonitor scraping its\n"
            "                      /metrics (the prometheus.io annotations stay)\n",
            usher_version());
}

static int write_set(const char *dir, const out_set *files, const char *verb)
{
    if (mkdirs(dir) < 0) {
        fprintf(stderr, "usher export %s: cannot create %s: %s\n", verb, dir, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < files->n; i++)
        if (write_atomic(dir, &files->f[i], verb) < 0)
            return -1;
    return 0;
}

/* files of an earlier export in dir that this one did not write: `kubectl apply -f dir`
 * would apply them again, so say so (they are left alone) */
static void warn_stale(const char *dir, const out_set *files)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        bool ours = n > 5 && strcmp(e->d_name + n - 5, ".yaml") == 0 &&
                    (strncmp(e->d_name, "node-", 5) == 0 || strncmp(e->d_name, "service-", 8) == 0 ||
                     strcmp(e->d_name, "monitoring.yaml") == 0);
        if (ours && !out_find(files, e->d_name))
            fprintf(stderr, "usher export k8s: %s/%s is from an earlier export and not in this "
                            "plan: remove it (and its objects) before kubectl apply -f %s\n",
                    dir, e->d_name, dir);
    }
    closedir(d);
}

static int cli_export_k8s(int argc, char **argv)
{
    char img[64];
    snprintf(img, sizeof img, "usher:%s", usher_version());
    k8s_opts o = {.image = img, .claim = "usher-models", .pin = "hostname",
                  .dp_ns = "nvidia-device-plugin", .port = 8000, .cpu_per_replica = 1,
                  .mem_per_replica_mib = 2048};
    const char *plan = NULL, *dir = NULL, *old = NULL, *cluster = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            k8s_help(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--plan") == 0 && v) {
            plan = argv[++i];
        } else if (strcmp(a, "-o") == 0 && v) {
            dir = argv[++i];
        } else if (strcmp(a, "--diff") == 0 && v) {
            old = argv[++i];
        } else if (strcmp(a, "--cluster") == 0 && v) {
            cluster = argv[++i];
        } else if (strcmp(a, "--image") == 0 && v) {
            o.image = argv[++i];
        } else if (strcmp(a, "--namespace") == 0 && v) {
            char k[K8S_NAME_MAX + 1];
            k8s_name("", v, k);
            if (strcmp(k, v) != 0) {
                fprintf(stderr, "usher export k8s: --namespace '%s' is not a DNS label\n", v);
                return CLI_USAGE;
            }
            o.ns = argv[++i];
        } else if (strcmp(a, "--device-plugin-namespace") == 0 && v) {
            char k[K8S_NAME_MAX + 1];
            k8s_name("", v, k);
            if (strcmp(k, v) != 0) {
                fprintf(stderr, "usher export k8s: --device-plugin-namespace '%s' is not a DNS "
                                "label\n", v);
                return CLI_USAGE;
            }
            o.dp_ns = argv[++i];
        } else if (strcmp(a, "--models-claim") == 0 && v) {
            char k[K8S_NAME_MAX + 1];
            k8s_name("", v, k);
            if (strcmp(k, v) != 0) {
                fprintf(stderr, "usher export k8s: --models-claim '%s' is not a DNS label\n", v);
                return CLI_USAGE;
            }
            o.claim = argv[++i];
        } else if (strcmp(a, "--service-monitor") == 0) {
            o.service_monitor = true;
        } else if (strcmp(a, "--pin-by") == 0 && v) {
            if (strcmp(v, "hostname") != 0 && strcmp(v, "nodename") != 0 &&
                strcmp(v, "labels") != 0) {
                fprintf(stderr, "usher export k8s: --pin-by is hostname, nodename or labels, not "
                                "'%s'\n",
                        v);
                return CLI_USAGE;
            }
            o.pin = argv[++i];
        } else if (strcmp(a, "--port") == 0 && v) {
            if (!cli_parse_i64(v, 1, 65535, &n)) {
                fprintf(stderr, "usher export k8s: --port needs an integer in [1, 65535]\n");
                return CLI_USAGE;
            }
            o.port = (int)n;
            i++;
        } else if (strcmp(a, "--cpu-per-replica") == 0 && v) {
            if (!cli_parse_double(v, 0, 1024, &o.cpu_per_replica)) {
                fprintf(stderr, "usher export k8s: --cpu-per-replica needs a number in [0, 1024]\n");
                return CLI_USAGE;
            }
            i++;
        } else if (strcmp(a, "--memory-per-replica-mib") == 0 && v) {
            if (!cli_parse_i64(v, 0, 1 << 24, &o.mem_per_replica_mib)) {
                fprintf(stderr, "usher export k8s: --memory-per-replica-mib needs an integer in "
                                "[0, 16777216]\n");
                return CLI_USAGE;
            }
            i++;
        } else {
            fprintf(stderr, "usher export k8s: unknown option or missing value: '%s'\n\n", a);
            k8s_help(stderr);
            return CLI_USAGE;
        }
    }
    if (!plan || !dir) {
        fprintf(stderr, "usher export k8s: --plan and -o are required\n\n");
        k8s_help(stderr);
        return CLI_USAGE;
    }
    if (strchr(o.image, '\n') || !*o.image) {
        fprintf(stderr, "usher export k8s: --image: an image reference on one line\n");
        return CLI_USAGE;
    }
    xplan x, ox;
    memset(&ox, 0, sizeof ox);
    out_set files = {0}, deploys = {0}, ofiles = {0}, odeploys = {0};
    int rc = CLI_FAIL;
    if (xplan_load("k8s", plan, cluster, false, &x) < 0)
        return CLI_FAIL;
    if (render_k8s(&x, &o, &files, &deploys) < 0)
        goto out;
    if (!old) {
        if (write_set(dir, &files, "k8s") < 0)
            goto out;
        printf("usher export k8s: %s: %u node%s, %u model%s, %u replica%s -> %s/ (%zu files)\n",
               plan, x.n_nodes, x.n_nodes == 1 ? "" : "s", x.n_models, x.n_models == 1 ? "" : "s",
               x.info.n_replicas, x.info.n_replicas == 1 ? "" : "s", dir, files.n);
        for (size_t i = 0; i < files.n; i++)
            printf("  %s\n", files.f[i].name);
        warn_stale(dir, &files);
        rc = CLI_OK;
        goto out;
    }
    /* --diff: render the running plan with the same options; keep what differs */
    if (xplan_load("k8s", old, cluster, true, &ox) < 0 ||
        render_k8s(&ox, &o, &ofiles, &odeploys) < 0)
        goto out;
    out_set changed = {0};
    size_t n_changed_nodes = 0, n_new_nodes = 0, n_same = 0;
    printf("usher export k8s: %s against the running %s:\n", plan, old);
    for (size_t i = 0; i < files.n; i++) {
        const out_file *f = &files.f[i];
        const out_file *d = out_find(&deploys, f->name);
        const out_file *od = d ? out_find(&odeploys, f->name) : out_find(&ofiles, f->name);
        const char *what;
        if (!od) {
            what = "added";
        } else {
            const out_file *cur = d ? d : f;
            if (cur->len == od->len && memcmp(cur->text, od->text, od->len) == 0) {
                n_same++;
                continue;
            }
            what = "changed";
        }
        if (d && strcmp(what, "added") == 0)
            n_new_nodes++;
        else if (d)
            n_changed_nodes++;
        printf("  %-8s %s\n", what, f->name);
        char *copy = malloc(f->len + 1);
        if (!copy || out_add(&changed, f->name, copy, f->len, f->mode) < 0) {
            fprintf(stderr, "usher export k8s: out of memory\n");
            out_free(&changed);
            goto out;
        }
        memcpy(copy, f->text, f->len);
    }
    size_t n_gone = 0;
    for (size_t i = 0; i < ofiles.n; i++)
        if (!out_find(&files, ofiles.f[i].name)) {
            n_gone++;
            const char *nm = ofiles.f[i].name;
            if (strncmp(nm, "node-", 5) == 0)
                printf("  %-8s %s (kubectl delete deployment/usher-%.*s configmap/usher-plan-%.*s)\n",
                       "removed", nm, (int)(strlen(nm) - 10), nm + 5, (int)(strlen(nm) - 10),
                       nm + 5);
            else if (strncmp(nm, "service-", 8) == 0)
                printf("  %-8s %s (kubectl delete service/usher-model-%.*s)\n", "removed", nm,
                       (int)(strlen(nm) - 13), nm + 8);
            else
                printf("  %-8s %s\n", "removed", nm);
        }
    printf("  %zu node%s changed, %zu added, %zu file%s unchanged, %zu removed; writing %zu "
           "file%s to %s/\n",
           n_changed_nodes, n_changed_nodes == 1 ? "" : "s", n_new_nodes, n_same,
           n_same == 1 ? "" : "s", n_gone, changed.n, changed.n == 1 ? "" : "s", dir);
    if (write_set(dir, &changed, "k8s") == 0)
        rc = CLI_OK;
    out_free(&changed);
out:
    out_free(&files);
    out_free(&deploys);
    out_free(&ofiles);
    out_free(&odeploys);
    xplan_free(&x);
    xplan_free(&ox);
    return rc;
}

/* ---- triton ------------------------------------------------------------------------- */

/* one tritonserver process: one replica, its compute share */
typedef struct tproc {
    const char *model;
    uint32_t gpu;   /* the plan's GPU */
    uint32_t local; /* its device number on the node */
    usher_planfile_replica r;
    bool mig;
} tproc;

/* Triton's max_queue_delay_microseconds for a set of replicas: the slack the plan
 * leaves under the SLO (slo - 2 x latency: a request may wait for the batch running,
 * then run in its own), no longer than the time its batch takes to arrive at its
 * load; 0 when either is unknown */
static long long queue_delay_us(double slo_ms, const usher_planfile_replica *r)
{
    if (slo_ms <= 0 || r->latency_ms <= 0)
        return 0;
    double lat = r->latency_colocated_ms > r->latency_ms ? r->latency_colocated_ms : r->latency_ms;
    double slack_ms = slo_ms - 2 * lat;
    if (slack_ms <= 0)
        return 0;
    if (r->load > 0) {
        double fill_ms = 1000.0 * r->batch / r->load;
        if (fill_ms < slack_ms)
            slack_ms = fill_ms;
    }
    return (long long)floor(slack_ms * 1000);
}

/* the repository's own config.pbtxt says max_batch_size: 0 (requests carry no batch
 * dimension): a line-wise look at its first 1 MiB for a top-level "max_batch_size: N",
 * comments skipped; anything else (absent, unreadable) counts as batched */
static bool source_unbatched(const char *repo, const char *model)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s/config.pbtxt", repo, model) >= (int)sizeof path)
        return false;
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[4096];
    size_t seen = 0;
    int depth = 0;
    bool zero = false;
    while (seen < (1u << 20) && fgets(line, sizeof line, f)) {
        seen += strlen(line);
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        const char *p = line + strspn(line, " \t");
        if (depth == 0 && strncmp(p, "max_batch_size", 14) == 0) {
            p += 14 + strspn(p + 14, " \t");
            if (*p == ':') {
                p++;
                p += strspn(p, " \t");
                zero = p[0] == '0' && !(p[1] >= '0' && p[1] <= '9');
            }
        }
        for (const char *c = line; *c; c++)
            depth += (*c == '{' || *c == '[') - (*c == '}' || *c == ']');
        if (depth < 0)
            depth = 0;
    }
    fclose(f);
    return zero;
}

static void pb_header(FILE *f, const char *model, int max_batch)
{
    fprintf(f, "name: \"%s\"\nplatform: \"onnxruntime_onnx\"\nmax_batch_size: %d\n", model,
            max_batch);
}

static void pb_batching(FILE *f, const int *sizes, int n, long long delay)
{
    fprintf(f, "dynamic_batching {\n  preferred_batch_size: [ ");
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%d", i ? ", " : "", sizes[i]);
    fprintf(f, " ]\n  max_queue_delay_microseconds: %lld\n}\n", delay);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* the highest numeric version directory of repo/model, or -1 */
static long long latest_version(const char *repo, const char *model)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", repo, model) >= (int)sizeof path)
        return -1;
    DIR *d = opendir(path);
    if (!d)
        return -1;
    long long best = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t v;
        if (cli_parse_i64(e->d_name, 0, INT64_MAX / 2, &v) && v > best)
            best = v;
    }
    closedir(d);
    return best;
}


static void triton_help(FILE *f)
{
    fprintf(f,
            "usage: usher export triton --plan plan.json --repo MODEL_REPO -o DIR\n"
            "                           [--node NAME] [--cluster cluster.yaml] [--base-port N]\n\n"
            "Writes a Triton model repository for one node of the plan (docs/deploy.md):\n"
            "per model DIR/MODEL/config.pbtxt (instance_group per GPU: count, KIND_GPU, gpus;\n"
            "max_batch_size and dynamic_batching from the plan), DIR/MODEL/configs/pN.pbtxt for\n"
            "the process of replica N, DIR/MODEL/VERSION linked to MODEL_REPO's latest version,\n"
            "and DIR/launch.sh, which starts one tritonserver per replica under MPS with its\n"
            "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE, its own ports (HTTP base+3N, gRPC +1, metrics\n"
            "+2), --model-control-mode=explicit --load-model MODEL --model-config-name pN.\n\n"
            "  --plan FILE         the plan (usher plan -o)\n"
            "  --repo DIR          the model repository (DIR/MODEL/VERSION/model.onnx)\n"
            "  -o DIR              where to write (created)\n"
            "  --node NAME         the node (required when the plan has several)\n"
            "  --cluster FILE      check nodes and GPU types against this cluster.yaml\n"
            "  --base-port N       the first process's HTTP port (default 8000)\n");
}

static int cli_export_triton(int argc, char **argv)
{
    const char *plan = NULL, *repo = NULL, *dir = NULL, *node = NULL, *cluster = NULL;
    int base = 8000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            triton_help(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--plan") == 0 && v) {
            plan = argv[++i];
        } else if (strcmp(a, "--repo") == 0 && v) {
            repo = argv[++i];
        } else if (strcmp(a, "-o") == 0 && v) {
            dir = argv[++i];
        } else if (strcmp(a, "--node") == 0 && v) {
            node = argv[++i];
        } else if (strcmp(a, "--cluster") == 0 && v) {
            cluster = argv[++i];
        } else if (strcmp(a, "--base-port") == 0 && v) {
            if (!cli_parse_i64(v, 1, 65535, &n)) {
                fprintf(stderr, "usher export triton: --base-port needs an integer in [1, 65535]\n");
                return CLI_USAGE;
            }
            base = (int)n;
            i++;
        } else {
            fprintf(stderr, "usher export triton: unknown option or missing value: '%s'\n\n", a);
            triton_help(stderr);
            return CLI_USAGE;
        }
    }
    if (!plan || !repo || !dir) {
        fprintf(stderr, "usher export triton: --plan, --repo and -o are required\n\n");
        triton_help(stderr);
        return CLI_USAGE;
    }
    xplan x;
    if (xplan_load("triton", plan, cluster, false, &x) < 0)
        return CLI_FAIL;
    int rc = CLI_FAIL;
    out_set files = {0};
    tproc *procs = NULL;
    if (x.info.n_groups) { /* Triton has no merged models: refused, not served apart */
        fprintf(stderr, "usher export triton: %s names merge groups (merge_groups): Triton cannot "
                        "serve a merged group; export k8s (usher serve forms the groups), or "
                        "plan with --merge off\n", plan);
        goto out;
    }
    char repo_abs[PATH_MAX];
    const xnode *nd = NULL;
    if (node) {
        for (uint32_t k = 0; k < x.n_nodes && !nd; k++)
            if (x.nodes[k].name && strcmp(x.nodes[k].name, node) == 0)
                nd = &x.nodes[k];
        if (!nd) {
            fprintf(stderr, "usher export triton: %s places no GPU on node '%s' (nodes:", plan,
                    node);
            for (uint32_t k = 0; k < x.n_nodes; k++)
                fprintf(stderr, " %s", x.nodes[k].name ? x.nodes[k].name : "(none)");
            fprintf(stderr, ")\n");
            goto out;
        }
    } else if (x.n_nodes == 1) {
        nd = &x.nodes[0];
    } else if (x.n_nodes == 0) {
        fprintf(stderr, "usher export triton: %s places no GPU\n", plan);
        goto out;
    } else {
        fprintf(stderr, "usher export triton: %s places GPUs on %u nodes: --node NAME picks one "
                        "(a Triton repository serves one machine)\n", plan, x.n_nodes);
        goto out;
    }
    if (!realpath(repo, repo_abs)) {
        fprintf(stderr, "usher export triton: --repo %s: %s\n", repo, strerror(errno));
        goto out;
    }
    if (!(procs = calloc(nd->n_replicas ? nd->n_replicas : 1, sizeof *procs))) {
        fprintf(stderr, "usher export triton: out of memory\n");
        goto out;
    }
    uint32_t np = 0;
    for (uint32_t i = 0; i < nd->n_gpus; i++) {
        usher_planfile_gpu gi;
        usher_planfile_gpu_at(x.pf, nd->gpus[i], &gi);
        for (uint32_t r = 0; r < gi.n_replicas; r++) {
            tproc *p = &procs[np++];
            usher_planfile_replica_at(x.pf, nd->gpus[i], r, &p->r);
            p->model = p->r.model;
            p->gpu = nd->gpus[i];
            p->local = nd->local[i];
            p->mig = is_mig(gi.type);
        }
    }
    if (base + 3 * (int64_t)np - 1 > 65535) {
        fprintf(stderr, "usher export triton: %u processes from port %d pass 65535\n", np, base);
        goto out;
    }
    /* per model: config.pbtxt, configs/pN.pbtxt, the version link */
    for (uint32_t m = 0; m < nd->n_models; m++) {
        const char *model = nd->models[m];
        if (!repo_name_ok(model)) {
            fprintf(stderr, "usher export triton: model '%s': not a directory name Triton "
                            "takes (letters, digits, '-', '_', '.')\n", model);
            goto out;
        }
        long long ver = latest_version(repo_abs, model);
        if (ver < 0) {
            fprintf(stderr, "usher export triton: model '%s' of the plan: no version directory "
                            "in %s/%s\n", model, repo_abs, model);
            goto out;
        }
        double slo = 0;
        for (uint32_t k = 0; k < x.info.n_models; k++) {
            usher_planfile_model pm;
            usher_planfile_model_at(x.pf, k, &pm);
            if (strcmp(pm.name, model) == 0)
                slo = pm.slo_ms;
        }
        int sizes[64], n_sizes = 0, max_batch = 1;
        long long delay = -1;
        for (uint32_t p = 0; p < np; p++) {
            if (strcmp(procs[p].model, model) != 0)
                continue;
            int b = procs[p].r.batch;
            max_batch = b > max_batch ? b : max_batch;
            bool seen = false;
            for (int s = 0; s < n_sizes; s++)
                seen |= sizes[s] == b;
            if (!seen && n_sizes < 64)
                sizes[n_sizes++] = b;
            long long d = queue_delay_us(slo, &procs[p].r);
            delay = delay < 0 || d < delay ? d : delay;
        }
        qsort(sizes, (size_t)n_sizes, sizeof *sizes, cmp_int);
        /* a model whose requests carry no batch dimension keeps max_batch_size 0 and has no
         * dynamic batcher (Triton's rule); its replicas then run batch 1 */
        bool unbatched = source_unbatched(repo_abs, model);
        char *t = NULL;
        size_t tl = 0;
        FILE *f = open_memstream(&t, &tl);
        if (!f)
            goto out;
        fprintf(f, "# usher export triton: the placement of %s on node %s (%s): every replica "
                   "of the\n# model on this node, one instance group per GPU. launch.sh runs "
                   "each replica in its\n# own tritonserver under MPS with configs/pN.pbtxt "
                   "instead.\n",
                model, nd->name ? nd->name : "(none)", plan);
        pb_header(f, model, unbatched ? 0 : max_batch);
        fprintf(f, "instance_group [\n");
        bool first = true;
        for (uint32_t i = 0; i < nd->n_gpus; i++) {
            int count = 0;
            for (uint32_t p = 0; p < np; p++)
                count += procs[p].gpu == nd->gpus[i] && strcmp(procs[p].model, model) == 0;
            if (!count)
                continue;
            fprintf(f, "%s  {\n    name: \"%s_gpu%u\"\n    count: %d\n    kind: KIND_GPU\n"
                       "    gpus: [ %u ]\n  }",
                    first ? "" : ",\n", model, nd->local[i], count, nd->local[i]);
            first = false;
        }
        fprintf(f, "\n]\n");
        if (!unbatched)
            pb_batching(f, sizes, n_sizes, delay < 0 ? 0 : delay);
        if (fclose(f) != 0)
            goto out;
        char fname[PATH_MAX];
        snprintf(fname, sizeof fname, "%s/config.pbtxt", model);
        if (out_add(&files, fname, t, tl, 0644) < 0)
            goto out;
        for (uint32_t p = 0; p < np; p++) {
            if (strcmp(procs[p].model, model) != 0)
                continue;
            t = NULL;
            f = open_memstream(&t, &tl);
            if (!f)
                goto out;
            fprintf(f, "# usher export triton: replica p%u of %s (plan GPU %u, device %u, share "
                       "%.6g%%, batch %d),\n# for the tritonserver launch.sh starts with "
                       "--model-config-name p%u: it sees one device\n",
                    p, model, procs[p].gpu, procs[p].local, procs[p].r.share, procs[p].r.batch, p);
            pb_header(f, model, unbatched ? 0 : procs[p].r.batch);
            fprintf(f, "instance_group [\n  {\n    name: \"%s_p%u\"\n    count: 1\n"
                       "    kind: KIND_GPU\n    gpus: [ 0 ]\n  }\n]\n",
                    model, p);
            if (!unbatched)
                pb_batching(f, &procs[p].r.batch, 1, queue_delay_us(slo, &procs[p].r));
            if (fclose(f) != 0)
                goto out;
            snprintf(fname, sizeof fname, "%s/configs/p%u.pbtxt", model, p);
            if (out_add(&files, fname, t, tl, 0644) < 0)
                goto out;
        }
    }
    /* launch.sh */
    {
        char *t = NULL;
        size_t tl = 0;
        FILE *f = open_memstream(&t, &tl);
        if (!f)
            goto out;
        fprintf(f,
                "#!/usr/bin/env bash\n"
                "# launch.sh - written by usher export triton from %s for node %s.\n"
                "# One tritonserver per replica of the plan, each an MPS client with its compute\n"
                "# share (CUDA_MPS_ACTIVE_THREAD_PERCENTAGE), its device, its ports and only its\n"
                "# model (--model-control-mode=explicit --load-model, configs/pN.pbtxt).\n"
                "# Environment: TRITONSERVER (default tritonserver), USHER_NO_MPS_DAEMON=1 (the\n"
                "# MPS control daemon is managed elsewhere), USHER_DEVICE_<n> (device n's\n"
                "# CUDA_VISIBLE_DEVICES value; a MIG instance needs its UUID, nvidia-smi -L),\n"
                "# USHER_LOG_DIR (default ./logs beside this script).\n"
                "# Stops every process when one exits or on SIGINT/SIGTERM; exits with its status.\n"
                "set -euo pipefail\n"
                "here=$(cd \"$(dirname \"${BASH_SOURCE[0]}\")\" && pwd)\n"
                "triton=${TRITONSERVER:-tritonserver}\n"
                "logs=${USHER_LOG_DIR:-$here/logs}\n"
                "mkdir -p \"$logs\"\n"
                "export CUDA_MPS_PIPE_DIRECTORY=${CUDA_MPS_PIPE_DIRECTORY:-/tmp/nvidia-mps}\n"
                "export CUDA_MPS_LOG_DIRECTORY=${CUDA_MPS_LOG_DIRECTORY:-/tmp/nvidia-log}\n"
                "if [ \"${USHER_NO_MPS_DAEMON:-0}\" != 1 ] &&\n"
                "   ! echo get_server_list | nvidia-cuda-mps-control >/dev/null 2>&1; then\n"
                "    mkdir -p \"$CUDA_MPS_PIPE_DIRECTORY\" \"$CUDA_MPS_LOG_DIRECTORY\"\n"
                "    nvidia-cuda-mps-control -d\n"
                "fi\n"
                "pids=()\n"
                "stop() { trap - INT TERM; kill \"${pids[@]}\" 2>/dev/null || true; wait || true; }\n"
                "trap 'stop; exit 143' INT TERM\n"
                "# start NAME DEVICE SHARE HTTP GRPC METRICS MODEL\n"
                "start() {\n"
                "    local share=()\n"
                "    [ \"$3\" != 100 ] && share=(CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=\"$3\")\n"
                "    env CUDA_VISIBLE_DEVICES=\"$2\" \"${share[@]}\" \"$triton\" "
                "--model-repository=\"$here\" \\\n"
                "        --model-control-mode=explicit --load-model=\"$7\" "
                "--model-config-name=\"$1\" \\\n"
                "        --http-port=\"$4\" --grpc-port=\"$5\" --metrics-port=\"$6\" "
                ">\"$logs/$1.log\" 2>&1 &\n"
                "    pids+=($!)\n"
                "}\n",
                plan, nd->name ? nd->name : "(none)");
        for (uint32_t p = 0; p < np; p++) {
            char dev[160];
            if (procs[p].mig)
                snprintf(dev, sizeof dev,
                         "\"${USHER_DEVICE_%u:?set USHER_DEVICE_%u to the UUID of MIG device %u "
                         "(nvidia-smi -L)}\"",
                         procs[p].local, procs[p].local, procs[p].local);
            else
                snprintf(dev, sizeof dev, "\"${USHER_DEVICE_%u:-%u}\"", procs[p].local,
                         procs[p].local);
            int share = (int)ceil(procs[p].r.share);
            fprintf(f, "start p%u %s %d %d %d %d %s   # GPU %u, batch %d\n", p, dev,
                    share > 100 ? 100 : share, base + 3 * (int)p, base + 3 * (int)p + 1,
                    base + 3 * (int)p + 2, procs[p].model, procs[p].gpu, procs[p].r.batch);
        }
        fprintf(f, "echo \"launch.sh: %u tritonserver process%s started (logs in $logs)\"\n"
                   "status=0\nwait -n || status=$?\nstop\nexit \"$status\"\n",
                np, np == 1 ? "" : "es");
        if (fclose(f) != 0 || out_add(&files, "launch.sh", t, tl, 0755) < 0)
            goto out;
    }
    if (write_set(dir, &files, "triton") < 0)
        goto out;
    for (uint32_t m = 0; m < nd->n_models; m++) {
        long long ver = latest_version(repo_abs, nd->models[m]);
        char name[PATH_MAX], target[PATH_MAX];
        snprintf(name, sizeof name, "%s/%lld", nd->models[m], ver);
        if (snprintf(target, sizeof target, "%s/%s/%lld", repo_abs, nd->models[m], ver) >=
                (int)sizeof target ||
            link_atomic(dir, name, target, "triton") < 0)
            goto out;
    }
    printf("usher export triton: %s, node %s: %u model%s, %u tritonserver process%s -> %s/\n",
           plan, nd->name ? nd->name : "(none)", nd->n_models, nd->n_models == 1 ? "" : "s", np,
           np == 1 ? "" : "es", dir);
    rc = CLI_OK;
out:
    free(procs);
    out_free(&files);
    xplan_free(&x);
    return rc;
}

/* ---- the verb ----------------------------------------------------------------------- */

static void help(FILE *f)
{
    fprintf(f, "usage: usher export k8s --plan plan.json -o DIR [options]   (--help for them)\n"
               "       usher export triton --plan plan.json --repo MODEL_REPO -o DIR [options]\n\n"
               "Turns a plan into what runs it: Kubernetes manifests for the NVIDIA device\n"
               "plugin, or a Triton model repository with a launch script. docs/deploy.md.\n");
}

int cli_export(int argc, char **argv)
{
    if (argc < 2) {
        help(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        help(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "k8s") == 0)
        return cli_export_k8s(argc - 1, argv + 1);
    if (strcmp(argv[1], "triton") == 0)
        return cli_export_triton(argc - 1, argv + 1);
    fprintf(stderr, "usher export: unknown target '%s' (k8s or triton)\n\n", argv[1]);
    help(stderr);
    return CLI_USAGE;
}
