/*
 * fit.c - fit the contention model's coefficients on published co-location
 * measurements and report its error on pairs the fit never saw
 * (usher_interfere_fit; `usher interfere --fit`; docs/interference.md).
 *
 * A row says: model A (batch, share) ran alone in L_alone and beside model B
 * (or K copies of it, "NAME xK") in L_coloc. Each model is profiled by the
 * estimator on the device the source used, with the engine's calibration row:
 *
 *   igniter-v100-mps   v100-32gb, tensorrt: the V100-SXM2-16GB of the source
 *                      is the same GV100 chip (80 SMs, 900 GB/s, 6 MB L2) as
 *                      the 32 GB card the TensorRT calibration row was fitted on
 *   parvagpu-a100-mig  a100-80gb:<MIG profile>, pytorch-eager
 *
 * The fit minimises the mean absolute relative error of the slowdown
 * (L_coloc / L_alone), each source weighing the same, by coordinate descent
 * from the built-in coefficients with halving steps. Held out: for every
 * model pair (the unordered pair of names), the coefficients are refit on the
 * other pairs' rows and the pair's rows are predicted.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"
#include "estimate/est.h"
#include "gpu/csv.h"
#include "interfere/interfere.h"
#include "usher/interfere.h"

#define MAX_CSV_BYTES (64u << 20)
#define MAX_ROWS 1000000u
#define MAX_COPIES 16 /* "NAME xK" */

typedef struct source_map {
    const char *source, *gpu, *framework;
} source_map;

static const source_map sources[] = {
    {"igniter-v100-mps", "v100-32gb", "tensorrt"},
    {"parvagpu-a100-mig", "a100-80gb", "pytorch-eager"},
};
#define N_SOURCES (sizeof sources / sizeof sources[0])

typedef struct prof_entry {
    char key[192];  /* model|gpu|batch|share */
    if_replica r;
    int dev;
    bool ok;
} prof_entry;

typedef struct fit_row {
    uint32_t a, b;  /* profile entries */
    uint32_t copies;
    uint16_t src, pair;
    double alone, coloc;
    double est_alone; /* the estimator's alone latency of A */
} fit_row;

typedef struct fit_set {
    prof_entry *pe;
    uint32_t n_pe, cap_pe;
    if_device dev[64];
    uint32_t n_dev;
    fit_row *row;
    uint32_t n_row, cap_row;
    char pair[256][96];
    uint32_t n_pair;
    /* skipped rows by missing model */
    char missing[32][64];
    uint32_t missing_n[32], n_missing, skipped_other;
} fit_set;

typedef struct loaded {
    char name[64];
    usher_model *m;
} loaded;

typedef struct fit_ctx {
    const usher_interfere_fit_params *p;
    usher_estimator *est[N_SOURCES];
    loaded model[64];
    uint32_t n_model;
} fit_ctx;

static bool name_ok(const char *s)
{
    if (!*s || strlen(s) >= 64)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return false;
    return true;
}

/* the model file of `name`, loaded once; NULL with *absent when there is none */
static usher_model *model_of(fit_ctx *c, const char *name, bool *absent, usher_error *err)
{
    *absent = false;
    for (uint32_t i = 0; i < c->n_model; i++)
        if (strcmp(c->model[i].name, name) == 0)
            return c->model[i].m;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.onnx", c->p->model_dir, name);
    if (access(path, R_OK) != 0) {
        *absent = true;
        return NULL;
    }
    if (c->n_model == sizeof c->model / sizeof c->model[0]) {
        us_err_set(err, USHER_ERR_LIMIT, "interference fit: more than %zu distinct models",
                   sizeof c->model / sizeof c->model[0]);
        return NULL;
    }
    usher_load_params lp = usher_load_default_params();
    lp.graph_only = true;
    usher_model *m;
    if (usher_model_load(path, &lp, &m, err) < 0)
        return NULL;
    snprintf(c->model[c->n_model].name, 64, "%s", name);
    c->model[c->n_model++].m = m;
    return m;
}

static int device_index(fit_set *s, const gpu_type *g, usher_error *err)
{
    for (uint32_t i = 0; i < s->n_dev; i++)
        if (strcmp(s->dev[i].key, g->key) == 0)
            return (int)i;
    if (s->n_dev == sizeof s->dev / sizeof s->dev[0])
        return us_err_set(err, USHER_ERR_LIMIT, "interference fit: too many devices");
    int rc = if_device_of(g, &s->dev[s->n_dev], err);
    return rc < 0 ? rc : (int)s->n_dev++;
}

/* profile entry of (model, gpu, batch, share %), made once; -1 absent model, <-1 error */
static long profile_of(fit_ctx *c, fit_set *s, uint16_t src, const char *model, const char *gpu,
                       int64_t batch, double share, usher_error *err)
{
    char key[192];
    snprintf(key, sizeof key, "%s|%s|%lld|%g", model, gpu, (long long)batch, share);
    for (uint32_t i = 0; i < s->n_pe; i++)
        if (strcmp(s->pe[i].key, key) == 0)
            return i;
    bool absent;
    usher_model *m = model_of(c, model, &absent, err);
    if (!m)
        return absent ? -1 : -2;
    usher_estimate_params ep = usher_estimate_default_params();
    ep.gpu = gpu;
    ep.batch = batch;
    ep.share_pct = share;
    usher_profile pr;
    if (usher_estimate(c->est[src], m, &ep, &pr, err) < 0)
        return -2;
    const gpu_type *g;
    if (gpu_catalog_find(est_catalog(c->est[src]), gpu, &g, err) < 0)
        return -2;
    int dev = device_index(s, g, err);
    if (dev < 0)
        return -2;
    if (s->n_pe == s->cap_pe) {
        uint32_t cap = s->cap_pe ? 2 * s->cap_pe : 256;
        prof_entry *pe = us_realloc(s->pe, cap * sizeof *pe);
        if (!pe) {
            us_err_set(err, USHER_ERR_NOMEM, "out of memory");
            return -2;
        }
        s->pe = pe;
        s->cap_pe = cap;
    }
    prof_entry *e = &s->pe[s->n_pe];
    memset(e, 0, sizeof *e);
    snprintf(e->key, sizeof e->key, "%s", key);
    e->dev = dev;
    if (if_replica_of(&pr, &e->r, err) < 0)
        return -2;
    e->ok = true;
    return s->n_pe++;
}

static void note_missing(fit_set *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_missing; i++)
        if (strcmp(s->missing[i], name) == 0) {
            s->missing_n[i]++;
            return;
        }
    if (s->n_missing < 32) {
        snprintf(s->missing[s->n_missing], 64, "%s", name);
        s->missing_n[s->n_missing++] = 1;
    } else {
        s->skipped_other++;
    }
}

static int pair_index(fit_set *s, const char *a, const char *b)
{
    char key[96];
    if (strcmp(a, b) <= 0)
        snprintf(key, sizeof key, "%s + %s", a, b);
    else
        snprintf(key, sizeof key, "%s + %s", b, a);
    for (uint32_t i = 0; i < s->n_pair; i++)
        if (strcmp(s->pair[i], key) == 0)
            return (int)i;
    if (s->n_pair == 256)
        return -1;
    snprintf(s->pair[s->n_pair], 96, "%s", key);
    return (int)s->n_pair++;
}

static int bad_field(usher_error *err, const char *file, size_t line, const char *field,
                     const char *why)
{
    return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: field '%s': %s", file, line, field, why);
}

/* "mps_pct:N" -> share N, gpu as mapped; "mig:PROFILE" -> parent:PROFILE, share 100 */
static int parse_share(const char *v, const source_map *sm, char *gpu, size_t n, double *share)
{
    char *end;
    if (strncmp(v, "mps_pct:", 8) == 0) {
        double x = strtod(v + 8, &end);
        if (*end || !(x > 0 && x <= 100))
            return -1;
        snprintf(gpu, n, "%s", sm->gpu);
        *share = x;
        return 0;
    }
    if (strncmp(v, "mig:", 4) == 0 && name_ok(v + 4) && strlen(v + 4) < 32) {
        snprintf(gpu, n, "%s:%s", sm->gpu, v + 4);
        *share = 100;
        return 0;
    }
    return -1;
}

static int parse_batch(const char *v, int64_t *out)
{
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || x < 1 || x > 65536)
        return -1;
    *out = x;
    return 0;
}

static int parse_ms(const char *v, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x) || !(x > 0) || x > 1e7)
        return -1;
    *out = x;
    return 0;
}

enum { C_SOURCE, C_MODEL_A, C_BATCH_A, C_SHARE_A, C_MODEL_B, C_BATCH_B, C_SHARE_B, C_ALONE,
       C_COLOC, C_N };
static const char *const col_names[C_N] = {"source",  "model_a", "batch_a",
                                           "share_a", "model_b", "batch_b",
                                           "share_b", "latency_a_alone_ms",
                                           "latency_a_colocated_ms"};

static int read_rows(fit_ctx *c, fit_set *s, usher_error *err)
{
    const char *file = c->p->csv;
    us_mapped mp;
    int rc = us_file_map(file, MAX_CSV_BYTES, &mp, err);
    if (rc < 0)
        return rc;
    gpu_csv r;
    if ((rc = gpu_csv_init(&r, (const char *)mp.data, mp.len, file, 4096, 64, err)) < 0)
        goto out;
    size_t col[C_N];
    if ((rc = gpu_csv_next(&r, err)) <= 0) {
        if (rc == 0)
            rc = us_err_set(err, USHER_ERR_PARSE, "%s: empty file (no header)", file);
        goto out;
    }
    for (int k = 0; k < C_N; k++) {
        col[k] = SIZE_MAX;
        for (size_t i = 0; i < r.n_fields; i++)
            if (strcmp(gpu_csv_field(&r, i), col_names[k]) == 0)
                col[k] = i;
        if (col[k] == SIZE_MAX) {
            rc = us_err_set(err, USHER_ERR_PARSE, "%s:1: header lacks the column '%s'", file,
                            col_names[k]);
            goto out;
        }
    }
    while ((rc = gpu_csv_next(&r, err)) > 0) {
        size_t line = r.rec_line;
        const char *f[C_N];
        for (int k = 0; k < C_N; k++)
            if (!(f[k] = gpu_csv_field(&r, col[k]))) {
                rc = bad_field(err, file, line, col_names[k], "missing");
                goto out;
            }
        if (s->n_row >= MAX_ROWS) {
            rc = us_err_set(err, USHER_ERR_LIMIT, "%s:%zu: more than %u rows", file, line,
                            MAX_ROWS);
            goto out;
        }
        uint16_t src = N_SOURCES;
        for (uint16_t i = 0; i < N_SOURCES; i++)
            if (strcmp(f[C_SOURCE], sources[i].source) == 0)
                src = i;
        if (src == N_SOURCES) {
            rc = bad_field(err, file, line, "source",
                           "unknown (known: igniter-v100-mps, parvagpu-a100-mig): usher does "
                           "not know which GPU and engine to profile it on");
            goto out;
        }
        /* model_b: "NAME" or "NAME xK" (K copies) */
        char mb[64];
        uint32_t copies = 1;
        const char *x = strstr(f[C_MODEL_B], " x");
        if (x) {
            char *end;
            long k = strtol(x + 2, &end, 10);
            if (*end || k < 1 || k > MAX_COPIES || (size_t)(x - f[C_MODEL_B]) >= sizeof mb) {
                rc = bad_field(err, file, line, "model_b", "expected NAME or NAME xK, K 1..16");
                goto out;
            }
            copies = (uint32_t)k;
            memcpy(mb, f[C_MODEL_B], (size_t)(x - f[C_MODEL_B]));
            mb[x - f[C_MODEL_B]] = 0;
        } else {
            snprintf(mb, sizeof mb, "%s", f[C_MODEL_B]);
        }
        if (!name_ok(f[C_MODEL_A]) || !name_ok(mb)) {
            rc = bad_field(err, file, line, name_ok(mb) ? "model_a" : "model_b",
                           "a model name is letters, digits, '-', '_' and '.' (under 64)");
            goto out;
        }
        char ga[96], gb[96];
        double sa, sb, alone, coloc;
        int64_t ba, bb;
        if (parse_share(f[C_SHARE_A], &sources[src], ga, sizeof ga, &sa) < 0 ||
            parse_share(f[C_SHARE_B], &sources[src], gb, sizeof gb, &sb) < 0) {
            rc = bad_field(err, file, line, "share_a/share_b",
                           "expected mps_pct:N (0 < N <= 100) or mig:PROFILE");
            goto out;
        }
        if (parse_batch(f[C_BATCH_A], &ba) < 0 || parse_batch(f[C_BATCH_B], &bb) < 0) {
            rc = bad_field(err, file, line, "batch_a/batch_b", "expected an integer 1..65536");
            goto out;
        }
        if (parse_ms(f[C_ALONE], &alone) < 0 || parse_ms(f[C_COLOC], &coloc) < 0) {
            rc = bad_field(err, file, line, "latency_a_alone_ms/latency_a_colocated_ms",
                           "expected a positive number of ms");
            goto out;
        }
        if (strcmp(ga, gb) != 0) {
            rc = bad_field(err, file, line, "share_b",
                           "the two sides are on different devices: not a co-location");
            goto out;
        }
        long a = profile_of(c, s, src, f[C_MODEL_A], ga, ba, sa, err);
        long b = a < -1 ? a : profile_of(c, s, src, mb, gb, bb, sb, err);
        if (a < -1 || b < -1) {
            char why[USHER_ERROR_MAX] = "";
            int code = err ? (int)err->code : USHER_ERR_INTERNAL;
            if (err)
                snprintf(why, sizeof why, "%s", err->msg);
            rc = us_err_set(err, code ? code : USHER_ERR_INTERNAL, "%s:%zu: %s", file, line, why);
            goto out;
        }
        if (a < 0 || b < 0) {
            note_missing(s, a < 0 ? f[C_MODEL_A] : mb);
            continue;
        }
        int pair = pair_index(s, f[C_MODEL_A], mb);
        if (pair < 0) {
            rc = us_err_set(err, USHER_ERR_LIMIT, "%s:%zu: more than 256 model pairs", file,
                            line);
            goto out;
        }
        if (s->n_row == s->cap_row) {
            uint32_t cap = s->cap_row ? 2 * s->cap_row : 1024;
            fit_row *nr = us_realloc(s->row, cap * sizeof *nr);
            if (!nr) {
                rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
                goto out;
            }
            s->row = nr;
            s->cap_row = cap;
        }
        s->row[s->n_row++] = (fit_row){.a = (uint32_t)a,
                                       .b = (uint32_t)b,
                                       .copies = copies,
                                       .src = src,
                                       .pair = (uint16_t)pair,
                                       .alone = alone,
                                       .coloc = coloc,
                                       .est_alone = s->pe[a].r.latency_ms};
    }
out:
    gpu_csv_free(&r);
    us_file_unmap(&mp);
    return rc < 0 ? rc : USHER_OK;
}

/* the model's slowdown of row r's model A */
static double predict_row(const if_model *m, const fit_set *s, const fit_row *r)
{
    if_replica rep[1 + MAX_COPIES];
    if_result res[1 + MAX_COPIES];
    rep[0] = s->pe[r->a].r;
    for (uint32_t k = 0; k < r->copies; k++)
        rep[1 + k] = s->pe[r->b].r;
    if (if_predict(m, &s->dev[s->pe[r->a].dev], rep, 1 + r->copies, res, NULL) < 0)
        return NAN;
    return res[0].slowdown;
}

/* mean over sources of the per-source mean absolute relative error of the
 * slowdown, on rows where use(row) (hold = pair held out, -1 none) */
static double loss(const if_coef *c, const fit_set *s, int hold)
{
    if_model m = if_model_contention(*c);
    double sum[N_SOURCES] = {0};
    uint32_t n[N_SOURCES] = {0};
    for (uint32_t i = 0; i < s->n_row; i++) {
        const fit_row *r = &s->row[i];
        if ((int)r->pair == hold)
            continue;
        double meas = r->coloc / r->alone, pred = predict_row(&m, s, r);
        if (!isfinite(pred))
            return INFINITY;
        sum[r->src] += fabs(pred - meas) / meas;
        n[r->src]++;
    }
    double tot = 0;
    uint32_t k = 0;
    for (size_t i = 0; i < N_SOURCES; i++)
        if (n[i]) {
            tot += sum[i] / n[i];
            k++;
        }
    return k ? tot / k : INFINITY;
}

static if_coef fit_coef(const fit_set *s, int hold)
{
    if_coef c = if_model_default()->coef;
    double *v[4] = {&c.k_compute, &c.k_dram, &c.beta_bw, &c.lambda_l2};
    double step[4] = {0.25, 0.5, 0.25, 0.05};
    double best = loss(&c, s, hold);
    for (int round = 0; round < 8; round++) {
        for (int pass = 0; pass < 20; pass++) {
            bool better = false;
            for (int i = 0; i < 4; i++)
                for (int sign = -1; sign <= 1; sign += 2) {
                    double old = *v[i];
                    *v[i] = fmax(0, old + sign * step[i]);
                    double e = loss(&c, s, hold);
                    if (e < best - 1e-12) {
                        best = e;
                        better = true;
                    } else {
                        *v[i] = old;
                    }
                }
            if (!better)
                break;
        }
        for (int i = 0; i < 4; i++)
            step[i] /= 2;
    }
    return c;
}

static void acc_row(if_fit_errors *a, const fit_row *r, double pred)
{
    double meas = r->coloc / r->alone;
    a->slow += fabs(pred - meas) / meas;
    a->slow_none += fabs(1 - meas) / meas;
    a->est += fabs(r->est_alone * pred - r->coloc) / r->coloc;
    a->est_none += fabs(r->est_alone - r->coloc) / r->coloc;
    a->worst = fmax(a->worst, fabs(pred - meas) / meas);
    a->rows++;
}

static void acc_mean(if_fit_errors *a)
{
    if (a->rows) {
        a->slow /= a->rows;
        a->slow_none /= a->rows;
        a->est /= a->rows;
        a->est_none /= a->rows;
    }
}

static void report_table(us_buf *b, const char *title, const if_fit_result *res,
                         const if_fit_errors *acc)
{
    us_buf_printf(b, "\n%s\n", title);
    us_buf_printf(b, "  %-18s %5s %5s | %-21s | %-25s | %s\n", "source", "rows", "pairs",
                  "slowdown", "co-located latency from", "worst slowdown");
    us_buf_printf(b, "  %-18s %5s %5s | %-21s | %-25s | %s\n", "", "", "",
                  "model (no interf.)", "the estimate: model (est.)", "error, model");
    for (uint32_t i = 0; i < res->n_sources; i++) {
        const if_fit_errors *a = &acc[i];
        if (!a->rows)
            continue;
        us_buf_printf(b, "  %-18s %5u %5u | %6.1f%%   (%6.1f%%) | %7.1f%%    (%7.1f%%) | %.1f%%\n",
                      res->source[i], a->rows, a->pairs, 100 * a->slow, 100 * a->slow_none,
                      100 * a->est, 100 * a->est_none, 100 * a->worst);
    }
}

int if_fit_run(const usher_interfere_fit_params *p, if_fit_result *res_out, char **report,
               usher_error *err)
{
    if (!p || !p->csv || !p->model_dir)
        return us_err_set(err, USHER_ERR_INVALID, "interference fit: missing argument");
    if (report)
        *report = NULL;
    if_fit_result res_local, *res = res_out ? res_out : &res_local;
    memset(res, 0, sizeof *res);
    fit_ctx c = {.p = p};
    fit_set s;
    memset(&s, 0, sizeof s);
    us_buf b;
    us_buf_init(&b, 1u << 20);
    int rc = USHER_OK;
    for (size_t i = 0; i < N_SOURCES && rc == USHER_OK; i++) {
        usher_estimator_params ep = usher_estimator_default_params();
        ep.framework = sources[i].framework;
        rc = usher_estimator_new(&ep, &c.est[i], err);
    }
    if (rc == USHER_OK)
        rc = read_rows(&c, &s, err);
    if (rc == USHER_OK && s.n_row == 0)
        rc = us_err_set(err, USHER_ERR_INVALID,
                        "%s: no row whose models are in %s: nothing to fit", p->csv,
                        p->model_dir);
    if (rc < 0)
        goto out;
    res->rows = s.n_row;
    res->skipped = s.skipped_other;
    for (uint32_t i = 0; i < s.n_missing; i++)
        res->skipped += s.missing_n[i];
    res->n_sources = N_SOURCES;
    for (size_t i = 0; i < N_SOURCES; i++)
        snprintf(res->source[i], sizeof res->source[i], "%s", sources[i].source);
    us_buf_printf(&b, "interference fit: %s, %u rows used, %u skipped", p->csv, s.n_row,
                  res->skipped);
    for (uint32_t i = 0; i < s.n_missing; i++)
        us_buf_printf(&b, "%s %s (%u rows)", i ? "," : " (no model file:", s.missing[i],
                      s.missing_n[i]);
    us_buf_printf(&b, "%s\n", s.n_missing ? ")" : "");
    us_buf_printf(&b, "profiles: ");
    for (size_t i = 0; i < N_SOURCES; i++)
        us_buf_printf(&b, "%s%s on %s (%s)", i ? "; " : "", sources[i].source, sources[i].gpu,
                      sources[i].framework);
    us_buf_printf(&b, "\n");

    res->fitted = fit_coef(&s, -1);
    res->builtin = if_model_default()->coef;
    res->loss_fitted = loss(&res->fitted, &s, -1);
    res->loss_builtin = loss(&res->builtin, &s, -1);
    us_buf_printf(&b,
                  "\ncoefficients fitted on every row: k_compute %.4g  k_dram %.4g  beta_bw "
                  "%.4g  lambda_l2 %.4g  (objective %.4f)\n",
                  res->fitted.k_compute, res->fitted.k_dram, res->fitted.beta_bw,
                  res->fitted.lambda_l2, res->loss_fitted);
    us_buf_printf(&b,
                  "built-in coefficients:            k_compute %.4g  k_dram %.4g  beta_bw "
                  "%.4g  lambda_l2 %.4g  (objective %.4f)\n",
                  res->builtin.k_compute, res->builtin.k_dram, res->builtin.beta_bw,
                  res->builtin.lambda_l2, res->loss_builtin);
    {
        if_model m = *if_model_default();
        bool seen[256][N_SOURCES];
        memset(seen, 0, sizeof seen);
        for (uint32_t i = 0; i < s.n_row; i++) {
            const fit_row *r = &s.row[i];
            acc_row(&res->in[r->src], r, predict_row(&m, &s, r));
            if (!seen[r->pair][r->src]) {
                seen[r->pair][r->src] = true;
                res->in[r->src].pairs++;
                res->held[r->src].pairs++;
            }
        }
        for (size_t i = 0; i < N_SOURCES; i++)
            acc_mean(&res->in[i]);
    }
    report_table(&b,
                 "in sample, built-in coefficients (mean absolute relative error; in "
                 "parentheses: no interference, and the estimate alone):",
                 res, res->in);
    if (p->held_out) {
        res->held_out = true;
        for (uint32_t k = 0; k < s.n_pair; k++) {
            if_coef ck = fit_coef(&s, (int)k);
            if_model m = if_model_contention(ck);
            for (uint32_t i = 0; i < s.n_row; i++)
                if (s.row[i].pair == k)
                    acc_row(&res->held[s.row[i].src], &s.row[i], predict_row(&m, &s, &s.row[i]));
        }
        for (size_t i = 0; i < N_SOURCES; i++) {
            uint32_t pairs = res->held[i].pairs;
            acc_mean(&res->held[i]);
            res->held[i].pairs = pairs;
        }
        report_table(&b,
                     "held out by model pair (each pair predicted by a fit without its rows):",
                     res, res->held);
    }
    us_buf_printf(&b,
                  "\nWith the measured alone latency as input, the co-located latency's error "
                  "equals the slowdown's.\n");
    if (!us_buf_ok(&b)) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory (report)");
        goto out;
    }
    if (report && !(*report = us_strdup(b.data)))
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
out:
    us_buf_free(&b);
    for (size_t i = 0; i < N_SOURCES; i++)
        usher_estimator_free(c.est[i]);
    for (uint32_t i = 0; i < c.n_model; i++)
        usher_model_free(c.model[i].m);
    us_free(s.pe);
    us_free(s.row);
    return rc;
}

int usher_interfere_fit(const usher_interfere_fit_params *p, char **report, usher_error *err)
{
    if (!report)
        return us_err_set(err, USHER_ERR_INVALID, "usher_interfere_fit: missing argument");
    return if_fit_run(p, NULL, report, err);
}
