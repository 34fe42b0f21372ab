/*
 * catalog.c - the GPU catalog: reading a GPU fact sheet (data/gpus.csv and
 * files like it) into gpu_type records (layer 2).
 *
 * Format. RFC 4180 CSV (csv.h has the syntax), one header line naming the
 * columns, then one row per GPU. Columns are found by header name, so
 * their order may change; columns this code does not know are ignored
 * (later readers may add some). The columns it knows:
 *
 *   key                         required, non-empty: 1..63 bytes of [a-z0-9.-],
 *                               unique (':' is reserved for MIG: "a100-80gb:3g.40gb")
 *   name                        required, non-empty
 *   arch                        required column, may be empty
 *   compute_capability          required, non-empty: MAJOR.MINOR ("8.0") for
 *                               NVIDIA, or a vendor architecture name of
 *                               [a-z0-9_] ("gfx942"), kept and flagged non-CUDA
 *   sm_count, max_threads_per_sm, max_blocks_per_sm, regs_per_sm,
 *   smem_per_sm_kb, mig_max_instances
 *                               required columns, whole numbers or empty
 *   l2_mb, mem_gb, mem_bw_gbs, boost_clock_mhz, fp32_tflops,
 *   fp16_tensor_tflops, int8_tops, tdp_w
 *                               required columns, decimals ("989.4") or empty
 *   typical_cloud_usd_per_hour  optional column, decimal or empty
 *   source                      optional column, free text
 *
 * Numbers are plain decimals: digits, optionally '.' and digits; no sign,
 * exponent, spaces or thousands separators. An empty cell means unknown:
 * the field is 0 and its bit in gpu_type.known stays clear. Every row must
 * have as many fields as the header.
 *
 * Limits (gpu.h): 1 MiB of text, 256 rows, 64 columns, 4 KiB per cell.
 * Every error names the text ("data/gpus.csv"), the line and the column.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/file.h"
#include "csv.h"
#include "gpu_impl.h"

/* generated at build time by cmake/embed.cmake from data/gpus.csv */
extern const unsigned char gpu_catalog_csv[];
extern const size_t gpu_catalog_csv_len;

typedef enum col_kind {
    COL_KEY,  /* the catalog key */
    COL_NAME, /* text, non-empty */
    COL_TEXT, /* text, may be empty */
    COL_CC,   /* compute capability */
    COL_INT,  /* whole number or empty */
    COL_NUM   /* decimal or empty */
} col_kind;

/* X(column name, gpu_type member, kind, gpu_field or -1, required column) */
#define GPU_COLUMNS(X)                                                                             \
    X("key", key, COL_KEY, -1, 1)                                                                  \
    X("name", name, COL_NAME, -1, 1)                                                               \
    X("arch", arch, COL_TEXT, -1, 1)                                                               \
    X("compute_capability", cc, COL_CC, -1, 1)                                                     \
    X("sm_count", sm_count, COL_INT, GPU_F_SM_COUNT, 1)                                            \
    X("max_threads_per_sm", max_threads_per_sm, COL_INT, GPU_F_MAX_THREADS_PER_SM, 1)              \
    X("max_blocks_per_sm", max_blocks_per_sm, COL_INT, GPU_F_MAX_BLOCKS_PER_SM, 1)                 \
    X("regs_per_sm", regs_per_sm, COL_INT, GPU_F_REGS_PER_SM, 1)                                   \
    X("smem_per_sm_kb", smem_per_sm_kb, COL_INT, GPU_F_SMEM_PER_SM_KB, 1)                          \
    X("l2_mb", l2_mb, COL_NUM, GPU_F_L2_MB, 1)                                                     \
    X("mem_gb", mem_gb, COL_NUM, GPU_F_MEM_GB, 1)                                                  \
    X("mem_bw_gbs", mem_bw_gbs, COL_NUM, GPU_F_MEM_BW_GBS, 1)                                      \
    X("boost_clock_mhz", boost_clock_mhz, COL_NUM, GPU_F_BOOST_CLOCK_MHZ, 1)                       \
    X("fp32_tflops", fp32_tflops, COL_NUM, GPU_F_FP32_TFLOPS, 1)                                   \
    X("fp16_tensor_tflops", fp16_tensor_tflops, COL_NUM, GPU_F_FP16_TENSOR_TFLOPS, 1)              \
    X("int8_tops", int8_tops, COL_NUM, GPU_F_INT8_TOPS, 1)                                         \
    X("tdp_w", tdp_w, COL_NUM, GPU_F_TDP_W, 1)                                                     \
    X("mig_max_instances", mig_max_instances, COL_INT, GPU_F_MIG_MAX_INSTANCES, 1)                 \
    X("typical_cloud_usd_per_hour", price_per_hour, COL_NUM, GPU_F_PRICE_PER_HOUR, 0)              \
    X("source", source, COL_TEXT, -1, 0)

typedef struct col_def {
    const char *name;
    size_t offset;
    col_kind kind;
    int field;
    int required;
} col_def;

static const col_def columns[] = {
#define COL_DEF_(nm, member, kind, field, req) {nm, offsetof(gpu_type, member), kind, field, req},
    GPU_COLUMNS(COL_DEF_)
#undef COL_DEF_
};
#define N_COLUMNS (sizeof columns / sizeof columns[0])

#define COUNT_NUMERIC_(nm, member, kind, field, req) +((field) >= 0)
_Static_assert(0 GPU_COLUMNS(COUNT_NUMERIC_) == GPU_F_COUNT,
               "every gpu_field has exactly one column");
#undef COUNT_NUMERIC_

/* Largest accepted values: far above any real GPU, low enough for int arithmetic. */
#define MAX_INT_CELL 100000000
#define MAX_NUM_CELL 1e9

const char *gpu_field_name(gpu_field f)
{
    for (size_t i = 0; i < N_COLUMNS; i++)
        if (columns[i].field >= 0 && columns[i].field == (int)f)
            return columns[i].name;
    return "?";
}

/* ---- cell conversion ------------------------------------------------------ */

typedef struct cell_ctx {
    const char *label;
    size_t line, col, index; /* index: 1-based field number */
    const col_def *def;
} cell_ctx;

#define CELL_ERR(cx, err, fmt, ...)                                                                \
    us_err_set(err, USHER_ERR_PARSE, "%s:%zu:%zu: column %zu '%s': " fmt, (cx)->label, (cx)->line, \
               (cx)->col, (cx)->index, (cx)->def->name, __VA_ARGS__)

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int key_valid(const char *s, size_t n)
{
    if (n == 0 || n > GPU_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static int parse_int_cell(const cell_ctx *cx, const char *s, size_t n, int *out, usher_error *err)
{
    int all_digits = n > 0 && strspn(s, "0123456789") == n;
    if (!all_digits)
        return CELL_ERR(cx, err, "'%.40s' is not a whole number (digits only, no sign or spaces)",
                        s);
    if (n > 9)
        return CELL_ERR(cx, err, "%.40s is larger than %d", s, MAX_INT_CELL);
    long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    if (v > MAX_INT_CELL)
        return CELL_ERR(cx, err, "%ld is larger than %d", v, MAX_INT_CELL);
    *out = (int)v;
    return USHER_OK;
}

static int parse_num_cell(const cell_ctx *cx, const char *s, size_t n, double *out,
                          usher_error *err)
{
    size_t i = 0, int_digits = 0, frac_digits = 0;
    while (i < n && is_digit(s[i]))
        i++, int_digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && is_digit(s[i]))
            i++, frac_digits++;
        if (frac_digits == 0)
            int_digits = 0; /* "5." is not accepted */
    }
    if (i != n || int_digits == 0 || int_digits > 10 || frac_digits > 12)
        return CELL_ERR(cx, err,
                        "'%.40s' is not a number (a plain decimal such as 989.4: no sign, "
                        "exponent or spaces)",
                        s);
    char *end = NULL;
    double v = strtod(s, &end);
    if (end != s + n || !isfinite(v)) /* a locale with another decimal point */
        return CELL_ERR(cx, err, "'%s' could not be read as a number", s);
    if (v > MAX_NUM_CELL)
        return CELL_ERR(cx, err, "%s is larger than %g", s, MAX_NUM_CELL);
    *out = v;
    return USHER_OK;
}

/* "8.0" -> 8, 0; a vendor architecture name ("gfx942") -> not CUDA */
static int parse_cc_cell(const cell_ctx *cx, const char *s, size_t n, gpu_type *t,
                         usher_error *err)
{
    size_t i = 0, a = 0, b = 0;
    while (i < n && is_digit(s[i]))
        i++, a++;
    if (a > 0 && a <= 3 && i < n && s[i] == '.') {
        size_t dot = i++;
        while (i < n && is_digit(s[i]))
            i++, b++;
        if (i == n && b > 0 && b <= 3) {
            t->is_cuda = true;
            t->cc_major = (int)strtol(s, NULL, 10);
            t->cc_minor = (int)strtol(s + dot + 1, NULL, 10);
            return USHER_OK;
        }
    }
    int name_ok = n > 0 && n <= 32 && !is_digit(s[0]);
    for (i = 0; name_ok && i < n; i++)
        name_ok = (s[i] >= 'a' && s[i] <= 'z') || is_digit(s[i]) || s[i] == '_';
    if (!name_ok)
        return CELL_ERR(cx, err,
                        "'%.40s' is neither MAJOR.MINOR (\"8.0\") nor a vendor architecture "
                        "name (\"gfx942\")",
                        s);
    t->is_cuda = false;
    return USHER_OK;
}

static int convert_cell(gpu_catalog *c, const cell_ctx *cx, const char *s, size_t n, gpu_type *t,
                        usher_error *err)
{
    const col_def *d = cx->def;
    char *base = (char *)t + d->offset;
    switch (d->kind) {
    case COL_KEY:
        if (n == 0)
            return CELL_ERR(cx, err, "%s", "the key is empty");
        if (!key_valid(s, n))
            return CELL_ERR(cx, err,
                            "key '%.70s' may only hold lower-case letters, digits, '-' and '.' "
                            "(at most %d bytes)",
                            s, GPU_KEY_MAX);
        break;
    case COL_NAME:
        if (n == 0)
            return CELL_ERR(cx, err, "%s", "the name is empty");
        break;
    case COL_TEXT:
        break;
    case COL_CC: {
        if (n == 0)
            return CELL_ERR(cx, err, "%s", "the compute capability is empty");
        int rc = parse_cc_cell(cx, s, n, t, err);
        if (rc < 0)
            return rc;
        break;
    }
    case COL_INT:
    case COL_NUM: {
        if (n == 0)
            return USHER_OK; /* unknown: 0, known bit clear */
        int rc = d->kind == COL_INT ? parse_int_cell(cx, s, n, (int *)(void *)base, err)
                                    : parse_num_cell(cx, s, n, (double *)(void *)base, err);
        if (rc < 0)
            return rc;
        t->known |= 1u << (unsigned)d->field;
        return USHER_OK;
    }
    }
    /* text kinds: copy into the arena */
    char *copy = us_arena_strndup(&c->arena, s, n);
    if (!copy)
        return us_err_set(err, USHER_ERR_NOMEM, "%s:%zu: out of memory", cx->label, cx->line);
    memcpy(base, &copy, sizeof copy);
    return USHER_OK;
}

/* ---- building -------------------------------------------------------------- */

static int read_header(const gpu_csv *r, const char *label, const col_def **colmap,
                       usher_error *err)
{
    for (size_t j = 0; j < r->n_fields; j++) {
        const char *h = gpu_csv_field(r, j);
        colmap[j] = NULL;
        if (!h[0])
            return us_err_set(err, USHER_ERR_PARSE, "%s:%zu:%zu: header column %zu has no name",
                              label, r->rec_line, r->field_col[j], j + 1);
        for (size_t k = 0; k < j; k++)
            if (strcmp(h, gpu_csv_field(r, k)) == 0)
                return us_err_set(err, USHER_ERR_PARSE,
                                  "%s:%zu:%zu: header column %zu '%.60s' repeats column %zu",
                                  label, r->rec_line, r->field_col[j], j + 1, h, k + 1);
        for (size_t k = 0; k < N_COLUMNS; k++)
            if (strcmp(h, columns[k].name) == 0)
                colmap[j] = &columns[k];
    }
    for (size_t k = 0; k < N_COLUMNS; k++) {
        if (!columns[k].required)
            continue;
        size_t j = 0;
        while (j < r->n_fields && colmap[j] != &columns[k])
            j++;
        if (j == r->n_fields)
            return us_err_set(err, USHER_ERR_PARSE,
                              "%s:%zu: missing required column '%s' (the header has %zu columns)",
                              label, r->rec_line, columns[k].name, r->n_fields);
    }
    return USHER_OK;
}

static int read_row(gpu_catalog *c, const gpu_csv *r, const char *label, const col_def **colmap,
                    size_t n_cols, gpu_type *t, usher_error *err)
{
    if (r->n_fields != n_cols)
        return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: %zu fields, but the header has %zu",
                          label, r->rec_line, r->n_fields, n_cols);
    t->csv_line = r->rec_line;
    t->arch = t->source = "";
    for (size_t j = 0; j < n_cols; j++) {
        if (!colmap[j])
            continue; /* a column this version does not know */
        cell_ctx cx = {label, r->rec_line, r->field_col[j], j + 1, colmap[j]};
        int rc = convert_cell(c, &cx, gpu_csv_field(r, j), r->len[j], t, err);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < c->n_gpus; i++)
        if (strcmp(c->types[i]->key, t->key) == 0)
            return us_err_set(err, USHER_ERR_PARSE,
                              "%s:%zu: duplicate key '%s' (already on line %zu)", label,
                              r->rec_line, t->key, c->types[i]->csv_line);
    return USHER_OK;
}

int gpu_catalog_parse(const char *text, size_t len, const char *label, gpu_catalog **out,
                      usher_error *err)
{
    if (!out)
        return us_err_set(err, USHER_ERR_INVALID, "gpu_catalog_parse: out is NULL");
    *out = NULL;
    if (!label)
        label = "(gpu catalog)";
    if (!text && len)
        return us_err_set(err, USHER_ERR_INVALID, "%s: text is NULL", label);
    if (len > GPU_CSV_MAX_BYTES)
        return us_err_set(err, USHER_ERR_LIMIT,
                          "%s: %zu bytes, over the %zu-byte limit of a GPU catalog", label, len,
                          GPU_CSV_MAX_BYTES);
    gpu_catalog *c = us_calloc(1, sizeof *c);
    if (!c)
        return us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory", label);
    us_arena_init(&c->arena, 16 * 1024);
    gpu_csv r;
    int rc = gpu_csv_init(&r, text ? text : "", len, label, GPU_CSV_MAX_FIELD, GPU_CSV_MAX_COLS,
                          err);
    if (rc < 0)
        goto fail;
    const col_def *colmap[GPU_CSV_MAX_COLS];
    rc = gpu_csv_next(&r, err);
    if (rc == 0) {
        rc = us_err_set(err, USHER_ERR_PARSE, "%s:1: empty: no header line", label);
        goto fail;
    }
    if (rc < 0)
        goto fail;
    size_t n_cols = r.n_fields;
    rc = read_header(&r, label, colmap, err);
    if (rc < 0)
        goto fail;
    c->types = us_arena_array(&c->arena, GPU_CSV_MAX_ROWS, sizeof *c->types);
    if (!c->types) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory", label);
        goto fail;
    }
    while ((rc = gpu_csv_next(&r, err)) == 1) {
        if (c->n_gpus == GPU_CSV_MAX_ROWS) {
            rc = us_err_set(err, USHER_ERR_LIMIT, "%s:%zu: more than %d GPU rows", label,
                            r.rec_line, GPU_CSV_MAX_ROWS);
            goto fail;
        }
        gpu_type *t = us_arena_alloc(&c->arena, sizeof *t);
        if (!t) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "%s:%zu: out of memory", label, r.rec_line);
            goto fail;
        }
        rc = read_row(c, &r, label, colmap, n_cols, t, err);
        if (rc < 0)
            goto fail;
        c->types[c->n_gpus++] = t;
    }
    if (rc < 0)
        goto fail;
    if (c->n_gpus == 0) {
        rc = us_err_set(err, USHER_ERR_PARSE, "%s:%zu: no GPU rows after the header", label,
                        r.line);
        goto fail;
    }
    c->n_all = c->n_gpus;
    rc = gpu_mig_build(c, err);
    if (rc < 0)
        goto fail;
    gpu_csv_free(&r);
    *out = c;
    return USHER_OK;
fail:
    gpu_csv_free(&r);
    gpu_catalog_free(c);
    return rc;
}

int gpu_catalog_load(const char *path, gpu_catalog **out, usher_error *err)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return us_err_set(err, USHER_ERR_INVALID, "gpu_catalog_load: NULL argument");
    us_mapped m;
    int rc = us_file_map(path, GPU_CSV_MAX_BYTES, &m, err);
    if (rc < 0)
        return rc;
    rc = gpu_catalog_parse((const char *)m.data, m.len, path, out, err);
    us_file_unmap(&m);
    return rc;
}

int gpu_catalog_default(gpu_catalog **out, usher_error *err)
{
    return gpu_catalog_parse((const char *)gpu_catalog_csv, gpu_catalog_csv_len,
                             "data/gpus.csv (embedded)", out, err);
}

void gpu_catalog_free(gpu_catalog *c)
{
    if (!c)
        return;
    us_arena_free(&c->arena);
    us_free(c);
}

size_t gpu_catalog_count(const gpu_catalog *c) { return c ? c->n_gpus : 0; }

const gpu_type *gpu_catalog_at(const gpu_catalog *c, size_t i)
{
    return c && i < c->n_gpus ? c->types[i] : NULL;
}

size_t gpu_catalog_count_all(const gpu_catalog *c) { return c ? c->n_all : 0; }

const gpu_type *gpu_catalog_at_all(const gpu_catalog *c, size_t i)
{
    return c && i < c->n_all ? c->types[i] : NULL;
}

/* ---- lookup ------------------------------------------------------------------ */

/* "a, b, c" of the whole-GPU keys (only those with MIG profiles if mig_only) into buf */
static const char *key_list(const gpu_catalog *c, int mig_only, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < c->n_gpus && used < n; i++) {
        const gpu_type *t = c->types[i];
        if (mig_only && t->n_mig_profiles == 0)
            continue;
        int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", t->key);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

int gpu_catalog_find(const gpu_catalog *c, const char *key, const gpu_type **out,
                     usher_error *err)
{
    if (out)
        *out = NULL;
    if (!c || !key || !out)
        return us_err_set(err, USHER_ERR_INVALID, "gpu_catalog_find: NULL argument");
    const char *colon = strchr(key, ':');
    size_t base_len = colon ? (size_t)(colon - key) : strlen(key);
    const gpu_type *p = NULL;
    for (size_t i = 0; i < c->n_gpus && !p; i++)
        if (strlen(c->types[i]->key) == base_len && memcmp(c->types[i]->key, key, base_len) == 0)
            p = c->types[i];
    char list[400];
    if (!p)
        return us_err_set(err, USHER_ERR_NOT_FOUND, "unknown GPU '%.*s'; known GPUs: %s",
                          (int)(base_len > 80 ? 80 : base_len), key,
                          key_list(c, 0, list, sizeof list));
    if (!colon) {
        *out = p;
        return USHER_OK;
    }
    const char *profile = colon + 1;
    if (p->n_mig_profiles == 0) {
        if (p->mig_max_instances <= 0)
            return us_err_set(err, USHER_ERR_UNSUPPORTED,
                              "GPU '%s' does not support MIG (mig_max_instances is %s), so it has "
                              "no profile '%.40s'; MIG GPUs: %s",
                              p->key, gpu_known(p, GPU_F_MIG_MAX_INSTANCES) ? "0" : "unknown",
                              profile, key_list(c, 1, list, sizeof list));
        return us_err_set(err, USHER_ERR_UNSUPPORTED,
                          "GPU '%s' has mig_max_instances %d but usher has no MIG profile table "
                          "for it%s, so it has no profile '%.40s' (tables exist for %s)",
                          p->key, p->mig_max_instances,
                          p->is_cuda ? "" : " (not an NVIDIA GPU: its partitions are not MIG)",
                          profile, gpu_mig_table_keys());
    }
    for (size_t i = c->n_gpus; i < c->n_all; i++) {
        const gpu_type *t = c->types[i];
        if (t->parent == p && strcmp(t->mig_profile, profile) == 0) {
            *out = t;
            return USHER_OK;
        }
    }
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < p->n_mig_profiles && used < sizeof list; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                         p->mig_profile_names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return us_err_set(err, USHER_ERR_NOT_FOUND,
                      "GPU '%s' has no MIG profile '%.40s'; its profiles: %s", p->key, profile,
                      list);
}

int gpu_mig_profiles(const gpu_type *parent, const char *const **names, size_t *n)
{
    if (!parent || !names || !n)
        return USHER_ERR_INVALID;
    *names = parent->mig_profile_names;
    *n = parent->n_mig_profiles;
    return USHER_OK;
}
