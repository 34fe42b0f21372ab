/*
 * profile_table.c - measured batch latencies as the simulator's profiles
 * (layer 7; public face: usher_sim_profile_table_* in include/usher/sim.h).
 *
 * The estimator predicts GPU latencies from the graph; to compare the
 * simulator with a live server, or to simulate on hardware the estimator
 * does not model (a CPU), the latencies come from a measurement instead.
 * The table is a CSV file:
 *
 *   # comments and blank lines are skipped
 *   model,batch,latency_ms
 *   mlp,1,3.10
 *   mlp,4,7.95
 *
 * - The header names the columns, in any order: model, batch and
 *   latency_ms are required; gpu is optional (a row with a gpu is for the
 *   plan's replicas on that GPU type; a row with it empty, or a file
 *   without the column, for any type; rows for the exact type win); the
 *   five interference fields gpu_ms, compute_ms, mem_bound_ms, dram_mb,
 *   l2_working_set_mb (usher_profile's) come all together or not at all.
 *   An unknown or repeated column is refused.
 * - model is a workload model; batch an integer 1 to 65,536; latency_ms a
 *   positive number up to an hour; the interference fields non-negative.
 *   The same (model, gpu, batch) twice is refused, naming both lines.
 * - The simulator asks for every batch size 1 .. a replica's batch. A size
 *   between two rows is interpolated linearly (every field); a size below
 *   the smallest or above the largest row of the model is an error naming
 *   the file, the model and the sizes it gives (no extrapolation).
 *
 * Every error names the file, the line and the field, as the other readers
 * do: "prof.csv:4: field 3 (latency_ms): '-2' is not a positive number".
 * The share a row was measured at is not a column: the latency is taken as
 * it is whatever share the plan gives the replica (a measurement of the
 * placement being simulated).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/file.h"
#include "core/hash.h"
#include "sim/sim.h"
#include "usher/sim.h"

#define MAX_FILE_BYTES ((uint64_t)64 << 20)
#define MAX_LINE 4096
#define MAX_BATCH 65536
#define MAX_LATENCY_MS 3.6e6
#define GPU_MAX 64

enum { C_MODEL, C_BATCH, C_LAT, C_GPU, C_GPU_MS, C_COMPUTE_MS, C_MEM_MS, C_DRAM_MB, C_L2_MB,
       N_COLS };
static const char *const col_names[N_COLS] = {"model",  "batch",      "latency_ms",
                                              "gpu",    "gpu_ms",     "compute_ms",
                                              "mem_bound_ms", "dram_mb", "l2_working_set_mb"};
#define N_VALUES 6 /* latency_ms and the five interference fields */

typedef struct row {
    uint32_t model;
    int batch;
    char gpu[GPU_MAX]; /* "" for any */
    double v[N_VALUES]; /* latency_ms, gpu_ms, compute_ms, mem_bound_ms, dram_mb, l2 */
    size_t line;
} row;

struct usher_sim_profile_table {
    char *label;
    char **names; /* the workload's model names, by index */
    uint32_t n_models;
    row *r;
    size_t n;
    bool gpu_fields;
};

static int cmp_row(const void *a, const void *b)
{
    const row *x = a, *y = b;
    if (x->model != y->model)
        return x->model < y->model ? -1 : 1;
    int c = strcmp(x->gpu, y->gpu);
    if (c)
        return c;
    if (x->batch != y->batch)
        return x->batch < y->batch ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

/* split line (NUL-terminated, modified) at commas, blanks around each field trimmed */
static int split(char *line, char **f, int max)
{
    int n = 0;
    char *s = line;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        char *start = s;
        while (*s && *s != ',')
            s++;
        char *end = s;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        bool more = *s == ',';
        *end = '\0';
        if (n < max)
            f[n] = start;
        n++;
        if (!more)
            break;
        s++;
    }
    return n;
}

static bool plain_number(const char *s, double *out)
{
    if (!*s)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == 'e' || *c == 'E' || *c == '+' ||
              *c == '-'))
            return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v))
        return false;
    *out = v;
    return true;
}

void usher_sim_profile_table_free(usher_sim_profile_table *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; t->names && i < t->n_models; i++)
        us_free(t->names[i]);
    us_free(t->names);
    us_free(t->r);
    us_free(t->label);
    us_free(t);
}

static int parse(usher_sim_profile_table *t, const char *text, size_t len, const us_map *names,
                 usher_error *err)
{
    const char *label = t->label;
    int col[N_COLS]; /* the file's field index of each column, -1: absent */
    for (int c = 0; c < N_COLS; c++)
        col[c] = -1;
    int n_fields = 0;
    size_t cap = 0, pos = 0, lineno = 0;
    char line[MAX_LINE + 1];
    char *f[N_COLS + 1];
    while (pos < len) {
        lineno++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
        if (ll > MAX_LINE)
            return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: line longer than %d bytes", label,
                              lineno, MAX_LINE);
        memcpy(line, text + pos, ll);
        pos += ll + (nl ? 1 : 0);
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        line[ll] = '\0';
        if (memchr(line, '\0', ll))
            return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: NUL byte", label, lineno);
        const char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0' || *s == '#')
            continue;
        int n = split(line, f, N_COLS + 1);
        if (n_fields == 0) { /* the header */
            if (n > N_COLS)
                return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: %d columns in the header; "
                                  "known columns: model, batch, latency_ms, gpu, gpu_ms, "
                                  "compute_ms, mem_bound_ms, dram_mb, l2_working_set_mb",
                                  label, lineno, n);
            for (int i = 0; i < n; i++) {
                int c = 0;
                while (c < N_COLS && strcmp(f[i], col_names[c]) != 0)
                    c++;
                if (c == N_COLS)
                    return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: header field %d: unknown "
                                      "column '%.64s'; known columns: model, batch, latency_ms, "
                                      "gpu, gpu_ms, compute_ms, mem_bound_ms, dram_mb, "
                                      "l2_working_set_mb", label, lineno, i + 1, f[i]);
                if (col[c] >= 0)
                    return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: header field %d: column "
                                      "'%s' twice", label, lineno, i + 1, f[i]);
                col[c] = i;
            }
            for (int c = C_MODEL; c <= C_LAT; c++)
                if (col[c] < 0)
                    return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: the header has no column "
                                      "'%s' (model, batch and latency_ms are required)", label,
                                      lineno, col_names[c]);
            int k = 0;
            for (int c = C_GPU_MS; c <= C_L2_MB; c++)
                k += col[c] >= 0;
            if (k != 0 && k != C_L2_MB - C_GPU_MS + 1)
                return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: the interference fields "
                                  "(gpu_ms, compute_ms, mem_bound_ms, dram_mb, "
                                  "l2_working_set_mb) come all together or not at all: the "
                                  "header has %d of them", label, lineno, k);
            t->gpu_fields = k != 0;
            n_fields = n;
            continue;
        }
        if (n != n_fields)
            return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: %d fields, the header has %d",
                              label, lineno, n, n_fields);
        if (t->n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            row *r = us_realloc(t->r, nc * sizeof *r);
            if (!r)
                return us_err_set(err, USHER_ERR_NOMEM, "%s:%zu", label, lineno);
            t->r = r;
            cap = nc;
        }
        row *r = &t->r[t->n];
        memset(r, 0, sizeof *r);
        r->line = lineno;
        const char *mname = f[col[C_MODEL]];
        void *v = us_map_get(names, mname);
        if (!v)
            return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: field %d (model): '%.64s' is not a "
                              "model of the workload", label, lineno, col[C_MODEL] + 1, mname);
        r->model = (uint32_t)((uintptr_t)v - 1);
        double b;
        const char *bs = f[col[C_BATCH]];
        if (!plain_number(bs, &b) || b != floor(b) || b < 1 || b > MAX_BATCH)
            return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: field %d (batch): '%.64s' is not "
                              "an integer from 1 to %d", label, lineno, col[C_BATCH] + 1, bs,
                              MAX_BATCH);
        r->batch = (int)b;
        if (col[C_GPU] >= 0) {
            const char *g = f[col[C_GPU]];
            if (strlen(g) >= GPU_MAX)
                return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: field %d (gpu): longer than "
                                  "%d bytes", label, lineno, col[C_GPU] + 1, GPU_MAX - 1);
            snprintf(r->gpu, sizeof r->gpu, "%s", g);
        }
        static const int vcols[N_VALUES] = {C_LAT, C_GPU_MS, C_COMPUTE_MS, C_MEM_MS, C_DRAM_MB,
                                            C_L2_MB};
        for (int k = 0; k < N_VALUES; k++) {
            int c = vcols[k];
            if (col[c] < 0)
                continue;
            const char *vs = f[col[c]];
            double x;
            bool ok = plain_number(vs, &x) && (k == 0 ? x > 0 && x <= MAX_LATENCY_MS : x >= 0);
            if (!ok)
                return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: field %d (%s): '%.64s' is not "
                                  "%s", label, lineno, col[c] + 1, col_names[c], vs,
                                  k == 0 ? "a positive number of milliseconds (at most an hour)"
                                         : "a non-negative number");
            r->v[k] = x;
        }
        t->n++;
    }
    if (n_fields == 0)
        return us_err_set(err, USHER_ERR_PARSE, "%s: no header (expected a line like "
                          "'model,batch,latency_ms')", label);
    if (t->n == 0)
        return us_err_set(err, USHER_ERR_PARSE, "%s: no rows after the header", label);
    qsort(t->r, t->n, sizeof *t->r, cmp_row);
    for (size_t i = 1; i < t->n; i++) {
        const row *a = &t->r[i - 1], *b = &t->r[i];
        if (a->model == b->model && a->batch == b->batch && strcmp(a->gpu, b->gpu) == 0)
            return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: model '%s'%s%s batch %d is "
                              "given on line %zu already", label, b->line, t->names[b->model],
                              b->gpu[0] ? " on " : "", b->gpu, b->batch, a->line);
    }
    return USHER_OK;
}

int usher_sim_profile_table_load(const char *path, const usher_sim_workload *w,
                                 usher_sim_profile_table **out, usher_error *err)
{
    *out = NULL;
    if (!path || !w)
        return us_err_set(err, USHER_ERR_INVALID, "usher_sim_profile_table_load: a file and a "
                          "workload are needed");
    uint32_t nm = usher_sim_workload_models(w);
    usher_sim_profile_table *t = us_calloc(1, sizeof *t);
    us_map names;
    us_map_init(&names);
    us_mapped m = {0};
    int rc;
    if (!t || !(t->label = us_strdup(path)) ||
        !(t->names = us_calloc(nm ? nm : 1, sizeof *t->names))) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "%s", path);
        goto fail;
    }
    t->n_models = nm;
    for (uint32_t i = 0; i < nm; i++) {
        usher_sim_model_info mi;
        usher_sim_workload_model(w, i, &mi);
        if (!(t->names[i] = us_strdup(mi.name)) ||
            us_map_put(&names, t->names[i], (void *)(uintptr_t)(i + 1), NULL) < 0) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "%s", path);
            goto fail;
        }
    }
    if ((rc = us_file_map(path, MAX_FILE_BYTES, &m, err)) < 0)
        goto fail;
    if ((rc = parse(t, (const char *)m.data, m.len, &names, err)) < 0)
        goto fail;
    us_file_unmap(&m);
    us_map_free(&names);
    *out = t;
    return USHER_OK;
fail:
    us_file_unmap(&m);
    us_map_free(&names);
    usher_sim_profile_table_free(t);
    return rc;
}

bool usher_sim_profile_table_has_gpu_fields(const usher_sim_profile_table *t)
{
    return t && t->gpu_fields;
}

/* rows [*lo, *hi) of (model, gpu) */
static void range(const usher_sim_profile_table *t, uint32_t model, const char *gpu, size_t *lo,
                  size_t *hi)
{
    size_t i = 0;
    while (i < t->n && (t->r[i].model != model || strcmp(t->r[i].gpu, gpu) != 0))
        i++;
    size_t j = i;
    while (j < t->n && t->r[j].model == model && strcmp(t->r[j].gpu, gpu) == 0)
        j++;
    *lo = i;
    *hi = j;
}

int usher_sim_profile_table_fn(void *ctx, uint32_t model, const char *gpu, int64_t batch,
                               double share_pct, usher_profile *out, usher_error *err)
{
    const usher_sim_profile_table *t = ctx;
    if (!t || !out || model >= t->n_models || batch < 1)
        return us_err_set(err, USHER_ERR_INVALID, "usher_sim_profile_table_fn: bad arguments");
    size_t lo, hi;
    range(t, model, gpu ? gpu : "", &lo, &hi);
    const char *on = gpu ? gpu : "";
    if (lo == hi) { /* no row for this GPU type: the rows for any */
        range(t, model, "", &lo, &hi);
        on = "";
    }
    if (lo == hi)
        return us_err_set(err, USHER_ERR_NOT_FOUND, "%s: no row for model '%s'%s%s", t->label,
                          t->names[model], gpu ? " on " : "", gpu ? gpu : "");
    const row *a = NULL, *b = NULL; /* the rows at or around batch */
    for (size_t i = lo; i < hi; i++) {
        if (t->r[i].batch <= batch)
            a = &t->r[i];
        if (t->r[i].batch >= batch && !b)
            b = &t->r[i];
    }
    if (!a || !b)
        return us_err_set(err, USHER_ERR_NOT_FOUND, "%s: model '%s'%s%s: no latency at batch "
                          "%lld (the file gives batch %d to %d; sizes between rows are "
                          "interpolated, none outside)", t->label, t->names[model],
                          on[0] ? " on " : "", on, (long long)batch, t->r[lo].batch,
                          t->r[hi - 1].batch);
    double v[N_VALUES];
    double f = a == b ? 0 : (double)(batch - a->batch) / (double)(b->batch - a->batch);
    for (int k = 0; k < N_VALUES; k++)
        v[k] = a->v[k] + (b->v[k] - a->v[k]) * f;
    memset(out, 0, sizeof *out);
    snprintf(out->gpu, sizeof out->gpu, "%s", gpu ? gpu : "");
    out->batch = batch;
    out->share_pct = share_pct;
    out->latency_ms = v[0];
    out->gpu_ms = v[1];
    out->compute_ms = v[2];
    out->mem_bound_ms = v[3];
    out->dram_mb = v[4];
    out->l2_working_set_mb = v[5];
    out->throughput = (double)batch / (v[0] / 1e3);
    out->exact = true;
    snprintf(out->framework, sizeof out->framework, "measured");
    return USHER_OK;
}
