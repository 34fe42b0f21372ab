/*
 * accuracy.c - the estimator against measured latencies (docs/accuracy.md).
 *
 *   usher-accuracy --measurements data/measurements.csv --zoo models/zoo
 *                  [--report docs/accuracy.md] [--calibration-out data/calibration.txt]
 *                  [--residuals FILE.csv] [--kernel-commit TEXT] [--splits A,B]
 *
 * 1. Reads every row of measurements.csv and keeps those the zoo covers: a
 *    zoo model (resnet50-v1.5 is torchvision's resnet50; BERT only at
 *    sequence length 128, the zoo's; not ParvaGPU's inception-v3, which its
 *    harness ran at 224 x 224 against the zoo's 299 x 299), a GPU in the
 *    catalog (MIG instances included), one process per GPU or instance.
 *    ParvaGPU's latencies are whole milliseconds: its rows are scored against
 *    batch / throughput, the same step time unrounded.
 * 2. Groups them by calibration row: (whole GPU, framework).
 * 3. For each split of split.h - in-sample, leave one source out, leave one
 *    GPU architecture family out, leave one model family out - and each of
 *    its folds: fits every group's row on the fold's training rows with the
 *    bounded fit (gpu_calib_fit; a group with fewer than MIN_TRAIN training
 *    rows gets no row), then predicts each held-out row with
 *    gpu_calib_lookup on that table: its own row where training had one,
 *    otherwise the row it borrows (same family, related engine, ...), as
 *    usher estimate would. A fold whose held-out group reaches training is
 *    refused (acc_fold_check). Splits are by group, never by row.
 * 4. Reports MAPE, median and p90 absolute error and signed bias per split,
 *    per held-out group, per source, per GPU and per model; writes the
 *    in-sample fit (every row) as the calibration table, each row with its
 *    residual summary in a comment; --residuals writes every measurement's
 *    prediction under every split.
 * 5. Beside issue 16's target (held out by source <= 15%), what the data
 *    allow: on cells two sources measured, one's measurement as the other's
 *    prediction (target_section).
 * Fits depend only on their training rows and are cached by that set.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/file.h"
#include "core/hash.h"
#include "estimate/est.h"
#include "gpu/csv.h"
#include "onnx/model_impl.h"
#include "split.h"

#define MIN_TRAIN 3 /* training rows a group needs for a row of its own */

typedef struct row {
    char source[40], gpu[64], model[32], framework[32], prec_text[32], fusion[8];
    int prec;
    int64_t batch;
    double meas_ms;
    const gpu_type *g;
    int model_idx;
    const gpu_kplan *plan;
    double pred_uncal;                 /* the built-in defaults */
    double pred[ACC_SPLIT_COUNT];      /* held out under each split (in-sample: fitted on all) */
    bool borrowed[ACC_SPLIT_COUNT];    /* the row that predicted it was borrowed */
    char used[ACC_SPLIT_COUNT][320];   /* which row, as gpu_calib_lookup says */
    int group;
    char engine_gpu[112];              /* "nvidia-dle tensorflow t4 fp32": the breakdown */
    char batch_class[16];              /* "1", "2-8", "16-64", "128+" */
    char regime[40];                   /* what bounds its in-sample prediction */
} row;

typedef struct group {
    char gpu[64], framework[32], fusion[8];
    const gpu_type *whole;             /* the GPU of the row (a MIG instance's parent) */
} group;

/* a fitted row, cached by (group, training set) */
typedef struct fit_entry {
    int group;
    uint64_t set;                      /* hash of the training rows' indices */
    bool ok;                           /* fewer than MIN_TRAIN rows: no row */
    gpu_calib cal;
    gpu_calib_fit_stats st;
    char sources[96];                  /* the sources of its training rows */
} fit_entry;

#define MAX_MODELS 32
static const char *zoo_names[MAX_MODELS];
static usher_model *zoo[MAX_MODELS];
static int n_zoo;

typedef struct plan_entry {
    int model, prec;
    int64_t batch;
    char fusion[8];
    gpu_kplan plan;
} plan_entry;
static plan_entry **plans; /* entries never move: rows point into them */
static int n_plans;

static void copy_str(char *dst, size_t n, const char *src)
{
    size_t l = strlen(src);
    if (l >= n)
        l = n - 1;
    memmove(dst, src, l);
    dst[l] = '\0';
}

static const char *field(const gpu_csv *r, int col) { return col >= 0 ? gpu_csv_field(r, (size_t)col) : NULL; }

static int model_index(const char *source, const char *name, const char *notes,
                       const char *zoo_dir)
{
    char base[64];
    /* ParvaGPU's harness (scripts/dl_infer_runtime.py of the SC'24 artifact) feeds every
     * vision model `torch.ones(batch, 3, 224, 224)`; the zoo's inception-v3 is torchvision's
     * at its 299 x 299 input, 1.8x the work: not the model that source measured */
    if (strcmp(source, "parvagpu-a100-mig") == 0 && strcmp(name, "inception-v3") == 0)
        return -1;
    if (strcmp(name, "resnet50-v1.5") == 0)
        snprintf(base, sizeof base, "resnet50");
    else
        snprintf(base, sizeof base, "%s", name);
    if ((strcmp(base, "bert-base") == 0 || strcmp(base, "bert-large") == 0) &&
        !strstr(notes, "seq len 128"))
        return -1; /* the zoo's BERT is exported at sequence length 128 */
    for (int i = 0; i < n_zoo; i++)
        if (strcmp(zoo_names[i], base) == 0)
            return i;
    char path[512];
    snprintf(path, sizeof path, "%s/%s.onnx", zoo_dir, base);
    usher_load_params lp = usher_load_default_params();
    lp.graph_only = true;
    usher_model *m;
    usher_error err;
    if (n_zoo == MAX_MODELS || usher_model_load(path, &lp, &m, &err) < 0)
        return -1;
    zoo_names[n_zoo] = us_strdup(base);
    zoo[n_zoo] = m;
    return n_zoo++;
}

static const char *framework_of(const char *source, const char *fw, const char *prec, char *fusion)
{
    if (strcmp(source, "parvagpu-a100-mig") == 0) {
        snprintf(fusion, 8, "none");
        return "pytorch-eager";
    }
    if (strstr(fw, "TF-TRT")) {
        snprintf(fusion, 8, "%s", "full");
        return "tf-trt";
    }
    if (strstr(fw, "TensorRT")) {
        snprintf(fusion, 8, "%s", "full");
        return "tensorrt";
    }
    if (strstr(fw, "ONNX Runtime")) {
        snprintf(fusion, 8, "%s", "ort");
        return "onnxruntime-cuda";
    }
    if (strstr(fw, "TensorFlow")) {
        snprintf(fusion, 8, "%s", strstr(prec, "XLA") ? "full" : "ort");
        return strstr(prec, "XLA") ? "tensorflow-xla" : "tensorflow";
    }
    if (strstr(fw, "PyTorch")) {
        snprintf(fusion, 8, "%s", "none");
        return "pytorch";
    }
    return NULL;
}

static int prec_of(const char *p)
{
    if (strncmp(p, "FP32", 4) == 0)
        return GPU_PREC_FP32;
    if (strncmp(p, "TF32", 4) == 0)
        return GPU_PREC_TF32;
    if (strstr(p, "FP16"))
        return GPU_PREC_FP16;
    if (strstr(p, "INT8"))
        return GPU_PREC_INT8;
    return -1;
}

static const gpu_type *gpu_of(const gpu_catalog *cat, const char *name, const char *kind,
                              const char *value)
{
    const gpu_type *g = NULL;
    for (size_t i = 0; i < gpu_catalog_count(cat); i++)
        if (strcmp(gpu_catalog_at(cat, i)->name, name) == 0)
            g = gpu_catalog_at(cat, i);
    if (!g && strcmp(name, "A100-80GB") == 0)
        gpu_catalog_find(cat, "a100-80gb", &g, NULL);
    if (!g)
        return NULL;
    if (strcmp(kind, "mig") == 0) {
        char key[128];
        snprintf(key, sizeof key, "%s:%s", g->key, value);
        const gpu_type *mg = NULL;
        gpu_catalog_find(cat, key, &mg, NULL);
        return mg;
    }
    return strcmp(kind, "full") == 0 ? g : NULL;
}

static const gpu_kplan *plan_for(int model, int64_t batch, int prec, const char *fusion)
{
    for (int i = 0; i < n_plans; i++)
        if (plans[i]->model == model && plans[i]->batch == batch && plans[i]->prec == prec &&
            strcmp(plans[i]->fusion, fusion) == 0)
            return &plans[i]->plan;
    usher_shape_params sp = usher_shape_default_params();
    sp.batch = batch;
    usher_error err;
    if (usher_model_infer(zoo[model], &sp, &err) < 0)
        return NULL;
    plan_entry **np = us_realloc(plans, ((size_t)n_plans + 1) * sizeof *np);
    if (!np)
        return NULL;
    plans = np;
    plan_entry *pe = us_calloc(1, sizeof *pe);
    if (!pe)
        return NULL;
    plans[n_plans] = pe;
    pe->model = model;
    pe->batch = batch;
    pe->prec = prec;
    snprintf(pe->fusion, sizeof pe->fusion, "%s", fusion);
    gpu_fusion fu = gpu_fusion_named(fusion, NULL);
    if (gpu_kmap_model(zoo[model]->ir, (gpu_precision)prec, &fu, &pe->plan, &err) < 0)
        return NULL;
    n_plans++;
    return &pe->plan;
}

static usher_estimator *E;

static double predict_prof(const row *r, const gpu_calib *cal, usher_profile *out)
{
    usher_estimate_params p = usher_estimate_default_params();
    p.gpu = r->g->key;
    p.batch = r->batch;
    p.precision = (usher_precision)r->prec;
    usher_profile prof;
    usher_error err;
    if (est_run(E, r->plan, r->g, cal, &p, &prof, &err) < 0)
        return NAN;
    if (out)
        *out = prof;
    return prof.latency_ms;
}

static double predict(const row *r, const gpu_calib *cal) { return predict_prof(r, cal, NULL); }


typedef struct fit_ctx {
    const row *rows;
    const int *idx;
} fit_ctx;

static double fit_predict(void *ctx, size_t i, const gpu_calib *c)
{
    const fit_ctx *f = ctx;
    return predict(&f->rows[f->idx[i]], c);
}

static fit_entry *cache;
static int n_cache;
static row *rows;
static int n_rows;
static group groups[64];
static int n_groups;

/* the row of group gi fitted on the rows train[] marks (cached) */
static const fit_entry *fit_group(int gi, const bool *train)
{
    us_hash_state h;
    us_hash_init(&h, 11);
    int cnt = 0;
    for (int i = 0; i < n_rows; i++)
        if (rows[i].group == gi && train[i]) {
            us_hash_update(&h, &i, sizeof i);
            cnt++;
        }
    uint64_t set = us_hash_final(&h);
    for (int k = 0; k < n_cache; k++)
        if (cache[k].group == gi && cache[k].set == set)
            return &cache[k];
    fit_entry *nc = us_realloc(cache, ((size_t)n_cache + 1) * sizeof *nc);
    if (!nc)
        return NULL;
    cache = nc;
    fit_entry *fe = &cache[n_cache++];
    memset(fe, 0, sizeof *fe);
    fe->group = gi;
    fe->set = set;
    if (cnt < MIN_TRAIN)
        return fe;
    int *idx = us_malloc((size_t)cnt * sizeof *idx);
    double *meas = us_malloc((size_t)cnt * sizeof *meas);
    if (!idx || !meas) {
        us_free(idx);
        us_free(meas);
        return NULL;
    }
    int k = 0;
    size_t slen = 0;
    for (int i = 0; i < n_rows; i++)
        if (rows[i].group == gi && train[i]) {
            idx[k] = i;
            meas[k++] = rows[i].meas_ms;
            if (!strstr(fe->sources, rows[i].source) && slen + strlen(rows[i].source) + 3 <
                                                            sizeof fe->sources) {
                slen += (size_t)snprintf(fe->sources + slen, sizeof fe->sources - slen, "%s%s",
                                         slen ? ", " : "", rows[i].source);
            }
        }
    const group *G = &groups[gi];
    gpu_calib *c = &fe->cal;
    *c = gpu_calib_default();
    copy_str(c->gpu, sizeof c->gpu, G->gpu);
    copy_str(c->framework, sizeof c->framework, G->framework);
    copy_str(c->fusion, sizeof c->fusion, G->fusion);
    copy_str(c->arch, sizeof c->arch, gpu_arch_family(G->whole));
    c->sms = G->whole->sm_count;
    c->clock_mhz = G->whole->boost_clock_mhz;
    c->copy_us_per_mb = 0; /* fitted: sources differ in what they time */
    c->calibrated = true;
    fit_ctx fc = {rows, idx};
    usher_error err;
    if (gpu_calib_fit(c, 0, (size_t)cnt, meas, fit_predict, &fc, NULL, &fe->st, &err) < 0) {
        fprintf(stderr, "fit of [%s %s]: %s\n", G->gpu, G->framework, err.msg);
    } else {
        fe->ok = true;
        snprintf(c->source, sizeof c->source,
                 "fitted by tools/accuracy on %d rows of data/measurements.csv (%s)", cnt,
                 fe->sources);
    }
    us_free(idx);
    us_free(meas);
    return fe;
}

static int cmp_rows(const void *a, const void *b)
{
    const row *x = a, *y = b;
    int c = strcmp(x->source, y->source);
    if (!c)
        c = strcmp(x->gpu, y->gpu);
    if (!c)
        c = strcmp(x->model, y->model);
    if (!c)
        c = strcmp(x->framework, y->framework);
    if (!c)
        c = x->prec - y->prec;
    return c ? c : (x->batch > y->batch) - (x->batch < y->batch);
}

static double rel_err(const row *r, double pred) { return (pred - r->meas_ms) / r->meas_ms; }

/*
 * Issue 16's target (leave one source out <= 15%) against what the data allow:
 * where two sources measured the same cell (GPU or MIG instance, model,
 * precision, batch), one source's measurement taken as the prediction of the
 * other's. That oracle knows the GPU time exactly and lacks only the other
 * engine and harness; a predictor fitted on the other sources cannot do better
 * than it on those cells. Computed from the rows, not written by hand.
 */
static bool same_cell(const row *a, const row *b)
{
    return strcmp(a->gpu, b->gpu) == 0 && strcmp(a->model, b->model) == 0 &&
           a->prec == b->prec && a->batch == b->batch;
}

static bool same_engine(const row *a, const row *b)
{
    return strcmp(a->source, b->source) == 0 && strcmp(a->framework, b->framework) == 0;
}

static void target_section(us_buf *out, double *tmp)
{
    us_buf_printf(out, "\n## Issue 16's target and what the data allow\n\n"
                       "Issue 16 asks for at most 15%% MAPE held out by source. Where two sources\n"
                       "measured the same cell (GPU, model, precision, batch), one source's\n"
                       "measurement taken as the prediction of the other's - an oracle that knows\n"
                       "the GPU time exactly and lacks only the other engine and harness - is off\n"
                       "by this much:\n\n"
                       "| held out (source engine) | predicted by the measurement of | cells | "
                       "MAPE | median | p90 | bias |\n|---|---|---|---|---|---|---|\n");
    /* the (held-out, other) pairs of source and engine that share a cell, first seen first */
    enum { MAX_PAIRS = 64 };
    int pa[MAX_PAIRS], po[MAX_PAIRS]; /* a row of each side, naming it */
    int pairs = 0;
    double best = INFINITY;
    char best_what[160] = "";
    for (int i = 0; i < n_rows; i++)
        for (int j = 0; j < n_rows; j++) {
            if (!same_cell(&rows[i], &rows[j]) || strcmp(rows[i].source, rows[j].source) == 0)
                continue;
            int p = 0;
            while (p < pairs && !(same_engine(&rows[pa[p]], &rows[i]) &&
                                  same_engine(&rows[po[p]], &rows[j])))
                p++;
            if (p == pairs && pairs < MAX_PAIRS) {
                pa[pairs] = i;
                po[pairs++] = j;
            }
        }
    for (int p = 0; p < pairs; p++) {
        size_t k = 0;
        for (int i = 0; i < n_rows; i++) {
            if (!same_engine(&rows[i], &rows[pa[p]]))
                continue;
            for (int j = 0; j < n_rows; j++)
                if (same_engine(&rows[j], &rows[po[p]]) && same_cell(&rows[i], &rows[j])) {
                    tmp[k++] = rel_err(&rows[i], rows[j].meas_ms);
                    break; /* one measurement per cell */
                }
        }
        gpu_calib_fit_stats st;
        gpu_calib_stats(tmp, k, &st, NULL);
        const row *a = &rows[pa[p]], *o = &rows[po[p]];
        us_buf_printf(out, "| %s %s | %s %s | %zu | %.1f%% | %.1f%% | %.1f%% | %+.1f%% |\n",
                      a->source, a->framework, o->source, o->framework, k, 100 * st.mape,
                      100 * st.median_ape, 100 * st.p90_ape, 100 * st.bias);
        if (k && st.mape < best) {
            best = st.mape;
            snprintf(best_what, sizeof best_what, "%s %s by %s %s", a->source, a->framework,
                     o->source, o->framework);
        }
    }
    if (!pairs) {
        us_buf_printf(out, "| (no cell measured by two sources) | | | | | | |\n");
        return;
    }
    us_buf_printf(out, "\nThe closest pairing is %.1f%% off (%s). A held-out source is\n"
                       "predicted through another engine's fitted row, not a measurement of\n"
                       "its own cells, so on these cells it cannot be expected to do better;\n"
                       "the in-sample figures below (each source fitted on itself) are what a\n"
                       "row of the engine and harness reaches. Why, per source:\n"
                       "docs/calibration.md, \"Held-out accuracy and what limits it\".\n",
                  100 * best, best_what);
}

/* one table line: the error summary under split of the rows whose key() is what */
static void stats_line(us_buf *out, const char *label, double *tmp, int split, const char *what,
                       const char *(*key)(const row *), int *n_borrowed)
{
    size_t k = 0;
    int nb = 0;
    for (int i = 0; i < n_rows; i++)
        if (strcmp(key(&rows[i]), what) == 0 && isfinite(rows[i].pred[split])) {
            tmp[k++] = rel_err(&rows[i], rows[i].pred[split]);
            nb += rows[i].borrowed[split];
        }
    if (n_borrowed)
        *n_borrowed = nb;
    gpu_calib_fit_stats st;
    gpu_calib_stats(tmp, k, &st, NULL);
    if (!k)
        return;
    us_buf_printf(out, "| %s | %zu | %d | %.1f%% | %.1f%% | %.1f%% | %+.1f%% |\n", label, k, nb,
                  100 * st.mape, 100 * st.median_ape, 100 * st.p90_ape, 100 * st.bias);
}

static const char *key_source(const row *r) { return r->source; }
static const char *key_gpu(const row *r) { return r->gpu; }
static const char *key_model(const row *r) { return r->model; }
static const char *key_all(const row *r) { return r ? "all" : ""; }
static const char *key_engine_gpu(const row *r) { return r->engine_gpu; }
static const char *key_batch(const row *r) { return r->batch_class; }
static const char *key_regime(const row *r) { return r->regime; }

/* distinct values of key() over the rows, in order of first appearance */
static int distinct(const char *(*key)(const row *), const char **out, int max)
{
    int k = 0;
    for (int i = 0; i < n_rows; i++) {
        const char *v = key(&rows[i]);
        int j = 0;
        while (j < k && strcmp(out[j], v) != 0)
            j++;
        if (j == k && k < max)
            out[k++] = v;
    }
    return k;
}

static const char *const table_head =
    "| n | borrowed | MAPE | median | p90 | bias |\n|---|---|---|---|---|---|---|\n";

static void by_key_table(us_buf *out, double *tmp, int split, const char *title,
                         const char *(*key)(const row *))
{
    const char *vals[128];
    int nv = distinct(key, vals, 128);
    us_buf_printf(out, "\n%s\n\n| %s %s", title, strrchr(title, ' ') + 1, table_head);
    for (int v = 0; v < nv; v++)
        stats_line(out, vals[v], tmp, split, vals[v], key, NULL);
}

static bool want[ACC_SPLIT_COUNT] = {true, true, true, true};

int main(int argc, char **argv)
{
    const char *meas = "data/measurements.csv", *zoo_dir = "models/zoo", *report = NULL,
               *cal_out = NULL, *resid_out = NULL, *kcommit = "unknown";
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && strcmp(argv[i], "--measurements") == 0)
            meas = v;
        else if (v && strcmp(argv[i], "--zoo") == 0)
            zoo_dir = v;
        else if (v && strcmp(argv[i], "--report") == 0)
            report = v;
        else if (v && strcmp(argv[i], "--calibration-out") == 0)
            cal_out = v;
        else if (v && strcmp(argv[i], "--residuals") == 0)
            resid_out = v;
        else if (v && strcmp(argv[i], "--kernel-commit") == 0)
            kcommit = v;
        else if (v && strcmp(argv[i], "--splits") == 0) {
            /* the held-out splits to run (a quicker look; the in-sample fit always runs) */
            for (int s = 1; s < ACC_SPLIT_COUNT; s++) {
                const char *n = acc_split_name((acc_split)s), *at = strstr(v, n);
                size_t l = strlen(n);
                want[s] = at && (at == v || at[-1] == ',') && (at[l] == ',' || !at[l]);
            }
        }
        else {
            fprintf(stderr, "usage: usher-accuracy [--measurements F] [--zoo DIR] [--report F] "
                            "[--calibration-out F] [--residuals F] [--kernel-commit TEXT] "
                            "[--splits leave-one-source-out,...]\n");
            return 2;
        }
    }
    usher_error err;
    usher_estimator_params ep = usher_estimator_default_params();
    if (usher_estimator_new(&ep, &E, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const gpu_catalog *cat = est_catalog(E);
    us_mapped mm;
    if (us_file_map(meas, 16u << 20, &mm, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gpu_csv r;
    if (gpu_csv_init(&r, (const char *)mm.data, mm.len, meas, 8192, 32, &err) < 0)
        return 1;
    int col[11];
    const char *cols[] = {"source", "gpu", "model", "framework", "precision", "batch",
                          "share_kind", "share_value", "latency_ms", "throughput_per_s", "notes"};
    if (gpu_csv_next(&r, &err) != 1) {
        fprintf(stderr, "%s: no header\n", meas);
        return 1;
    }
    for (int c = 0; c < 11; c++) {
        col[c] = -1;
        for (size_t k = 0; k < r.n_fields; k++)
            if (strcmp(gpu_csv_field(&r, k), cols[c]) == 0)
                col[c] = (int)k;
        if (col[c] < 0) {
            fprintf(stderr, "%s: column '%s' missing\n", meas, cols[c]);
            return 1;
        }
    }
    int total = 0, skipped_multi = 0, rc;
    while ((rc = gpu_csv_next(&r, &err)) == 1) {
        total++;
        const char *src = field(&r, col[0]), *gname = field(&r, col[1]), *model = field(&r, col[2]),
                   *fw = field(&r, col[3]), *prec = field(&r, col[4]), *bs = field(&r, col[5]),
                   *kind = field(&r, col[6]), *sv = field(&r, col[7]), *lat = field(&r, col[8]),
                   *thr = field(&r, col[9]), *notes = field(&r, col[10]);
        if (!src || !notes)
            continue;
        if (strstr(notes, "process(es)") && !strstr(notes, " 1 identical process(es)")) {
            skipped_multi++;
            continue;
        }
        int mi = model_index(src, model, notes, zoo_dir);
        const gpu_type *g = gpu_of(cat, gname, kind, sv);
        int p = prec_of(prec);
        /* PyTorch 1.7-1.11 (ParvaGPU used NGC 21.11) runs "FP32" matmuls and convolutions
         * on TF32 tensor cores on Ampere by default */
        if (g && p == GPU_PREC_FP32 && strcmp(src, "parvagpu-a100-mig") == 0 && g->cc_major >= 8)
            p = GPU_PREC_TF32;
        char fusion[8];
        const char *fwk = framework_of(src, fw, prec, fusion);
        char *end;
        double batch = strtod(bs, &end);
        if (mi < 0 || !g || p < 0 || !fwk || *end || batch < 1)
            continue;
        double ms = lat && *lat ? strtod(lat, NULL) : 0;
        if (!(ms > 0) && thr && *thr)
            ms = batch / strtod(thr, NULL) * 1e3;
        /* ParvaGPU stores latency in whole milliseconds; its throughput (one process:
         * batch / step time) keeps the step time unrounded - every one of its single-
         * process rows rounds to the stored latency - so that is the measurement */
        if (ms > 0 && strstr(notes, "1 ms resolution") && thr && *thr) {
            double t = batch / strtod(thr, NULL) * 1e3;
            if (t > 0 && isfinite(t) && fabs(t - ms) <= 0.5 + 1e-9)
                ms = t;
        }
        if (!(ms > 0) || !isfinite(ms))
            continue;
        gpu_budget b;
        gpu_calib d = gpu_calib_default();
        if (gpu_budget_init(&b, g, 1.0, (gpu_precision)p, &d, NULL) < 0)
            continue; /* the catalog lacks what the model needs (e.g. V100-SXM3 bandwidth) */
        const gpu_kplan *pl = plan_for(mi, (int64_t)batch, p, fusion);
        if (!pl)
            continue;
        const gpu_type *whole = g->is_mig && g->parent ? g->parent : g;
        int gi = -1;
        for (int k = 0; k < n_groups; k++)
            if (strcmp(groups[k].gpu, whole->key) == 0 && strcmp(groups[k].framework, fwk) == 0)
                gi = k;
        if (gi < 0 && n_groups == 64)
            continue;
        if (gi < 0) {
            gi = n_groups++;
            memset(&groups[gi], 0, sizeof groups[gi]);
            copy_str(groups[gi].gpu, sizeof groups[gi].gpu, whole->key);
            copy_str(groups[gi].framework, sizeof groups[gi].framework, fwk);
            copy_str(groups[gi].fusion, sizeof groups[gi].fusion, fusion);
            groups[gi].whole = whole;
        }
        row *nr = us_realloc(rows, ((size_t)n_rows + 1) * sizeof *nr);
        if (!nr)
            return 1;
        rows = nr;
        row *x = &rows[n_rows++];
        memset(x, 0, sizeof *x);
        copy_str(x->source, sizeof x->source, src);
        copy_str(x->gpu, sizeof x->gpu, g->key);
        copy_str(x->model, sizeof x->model, zoo_names[mi]);
        copy_str(x->framework, sizeof x->framework, fwk);
        copy_str(x->prec_text, sizeof x->prec_text, prec);
        copy_str(x->fusion, sizeof x->fusion, fusion);
        x->prec = p;
        x->batch = (int64_t)batch;
        x->meas_ms = ms;
        x->g = g;
        x->model_idx = mi;
        x->plan = pl;
        x->group = gi;
        snprintf(x->engine_gpu, sizeof x->engine_gpu, "%s %s %s %s", src, fwk, whole->key,
                 gpu_precision_name((gpu_precision)p));
        snprintf(x->batch_class, sizeof x->batch_class, "%s",
                 x->batch == 1 ? "1" : x->batch <= 8 ? "2-8" : x->batch <= 64 ? "16-64" : "128+");
    }
    if (rc < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gpu_csv_free(&r);
    us_file_unmap(&mm);
    qsort(rows, (size_t)n_rows, sizeof *rows, cmp_rows);
    fprintf(stderr, "%d rows read, %d covered by the zoo and catalog (%d multi-process rows "
                    "left out), %d calibration groups\n",
            total, n_rows, skipped_multi, n_groups);
    acc_item *items = us_calloc((size_t)n_rows, sizeof *items);
    double *tmp = us_calloc((size_t)n_rows, sizeof *tmp);
    if (!items || !tmp)
        return 1;
    for (int i = 0; i < n_rows; i++) {
        items[i].source = rows[i].source;
        items[i].arch = gpu_arch_family(rows[i].g);
        items[i].model = rows[i].model;
        gpu_calib u = gpu_calib_default();
        copy_str(u.fusion, sizeof u.fusion, rows[i].fusion);
        u.copy_us_per_mb = 0;
        rows[i].pred_uncal = predict(&rows[i], &u);
    }
    /* every split, every fold: fit on train, predict test through the lookup */
    us_buf folds_md;
    us_buf_init(&folds_md, 4u << 20);
    for (int s = 0; s < ACC_SPLIT_COUNT; s++) {
        if (!want[s])
            continue;
        acc_fold *folds;
        int nf = acc_make_folds((acc_split)s, items, (size_t)n_rows, &folds);
        if (nf < 0)
            return 1;
        us_buf_printf(&folds_md, "\n### %s: the folds\n\n"
                                 "| held out | train rows | test rows | test rows predicted with |\n"
                                 "|---|---|---|---|\n",
                      acc_split_title((acc_split)s));
        for (int f = 0; f < nf; f++) {
            char why[256];
            if (!acc_fold_check((acc_split)s, items, (size_t)n_rows, &folds[f], why, sizeof why)) {
                fprintf(stderr, "usher-accuracy: %s fold '%s' is not held out: %s\n",
                        acc_split_name((acc_split)s), folds[f].key, why);
                return 1;
            }
            gpu_calib_table tab = {0};
            tab.rows = us_calloc((size_t)n_groups, sizeof *tab.rows);
            if (!tab.rows)
                return 1;
            for (int gi = 0; gi < n_groups; gi++) {
                const fit_entry *fe = fit_group(gi, folds[f].train);
                if (!fe)
                    return 1;
                if (fe->ok)
                    tab.rows[tab.n++] = fe->cal;
            }
            /* which rows answered the test rows, with counts */
            const char *useds[64];
            int ucount[64], nu = 0;
            for (int i = 0; i < n_rows; i++) {
                if (!folds[f].test[i])
                    continue;
                row *x = &rows[i];
                bool found;
                gpu_calib c = gpu_calib_lookup(&tab, x->g, x->framework, &found);
                const gpu_kplan *pl = plan_for(x->model_idx, x->batch, x->prec, c.fusion);
                row tmp_row = *x;
                tmp_row.plan = pl ? pl : x->plan;
                usher_profile prof;
                x->pred[s] = predict_prof(&tmp_row, &c, &prof);
                if (s == ACC_SPLIT_IN_SAMPLE && isfinite(x->pred[s]) && prof.latency_ms > 0) {
                    /* the in-sample timeline's largest part: the host and harness (time
                     * the GPU is idle: issue, fixed, copies), memory-bound kernels, or
                     * compute (compute-bound kernels and per-kernel fixed time) */
                    double host = prof.latency_ms - prof.gpu_ms, mem = prof.mem_bound_ms,
                           comp = prof.gpu_ms - prof.mem_bound_ms;
                    snprintf(x->regime, sizeof x->regime, "%s",
                             host >= mem && host >= comp ? "host and harness"
                             : mem >= comp               ? "memory-bound kernels"
                                                         : "compute-bound kernels");
                }
                x->borrowed[s] = c.borrowed || !found;
                copy_str(x->used[s], sizeof x->used[s], c.used);
                int u = 0;
                while (u < nu && strcmp(useds[u], x->used[s]) != 0)
                    u++;
                if (u == nu && nu < 64) {
                    useds[nu] = x->used[s];
                    ucount[nu++] = 0;
                }
                if (u < nu)
                    ucount[u]++;
            }
            us_buf_printf(&folds_md, "| %s | %zu | %zu | ", folds[f].key, folds[f].n_train,
                          folds[f].n_test);
            for (int u = 0; u < nu; u++)
                us_buf_printf(&folds_md, "%s%d: %s", u ? "; " : "", ucount[u], useds[u]);
            us_buf_printf(&folds_md, " |\n");
            us_free(tab.rows);
        }
        acc_folds_free(folds, nf);
        fprintf(stderr, "  %s: %d folds, %d fits cached\n", acc_split_name((acc_split)s), nf,
                n_cache);
    }
    /* the report */
    us_buf out;
    us_buf_init(&out, 8u << 20);
    time_t now = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    us_buf_printf(
        &out,
        "# Estimator accuracy\n\n"
        "Generated by `scripts/accuracy-report.sh` (tools/accuracy/accuracy.c) on %s, with the\n"
        "kernel model (src/estimate) at %s. Do not edit by hand.\n\n"
        "Predicted against measured latency on every row of data/measurements.csv the zoo and\n"
        "the catalog cover (%d of %d rows; rows with several processes per MIG instance are\n"
        "left out, and ParvaGPU's inception-v3: its harness feeds 224 x 224 images, the zoo's\n"
        "model takes 299 x 299). Calibration rows are per (GPU, framework); each is fitted with the bounded\n"
        "fit (docs/calibration.md: efficiencies at most 1, per-kernel and host costs in their\n"
        "physical ranges). The splits hold out whole groups, never single rows: a source, a GPU\n"
        "architecture family, or a model family. The held-out group is predicted with the\n"
        "rows fitted without it, through the same lookup `usher estimate` uses: its own\n"
        "(GPU, framework) row where training had one, otherwise a borrowed row (the same\n"
        "engine, or PyTorch eager's other name, in the architecture family, then in the\n"
        "nearest other family, then a related engine; host costs the engine's own defaults\n"
        "when another engine's row stands in; docs/calibration.md). `borrowed` counts the\n"
        "rows predicted with a borrowed row.\n"
        "The in-sample figure fits and scores the same rows and is an upper bound on what\n"
        "calibration can do, not an accuracy claim.\n\n"
        "Error = (predicted - measured) / measured. MAPE = mean absolute error; median and p90\n"
        "of the absolute error (nearest rank); bias = mean signed error (negative: predicted\n"
        "too fast). The latencies are not usher's own: each source measured its framework\n"
        "(PyTorch eager, TensorFlow, TensorRT) on its machines; see data/README.md. ParvaGPU\n"
        "stores latencies rounded to 1 ms; its rows are scored against batch / throughput,\n"
        "the same step time unrounded (each rounds to the stored latency).\n\n",
        date, kcommit, n_rows, total);
    us_buf_printf(&out, "## Summary\n\n| split | n | borrowed | MAPE | median | p90 | bias |\n"
                        "|---|---|---|---|---|---|---|\n");
    static const int summary_order[] = {ACC_SPLIT_SOURCE, ACC_SPLIT_ARCH, ACC_SPLIT_FAMILY,
                                        ACC_SPLIT_IN_SAMPLE, -1};
    for (size_t so = 0; so < sizeof summary_order / sizeof summary_order[0]; so++) {
        int s = summary_order[so];
        if (s >= 0 && !want[s])
            continue;
        const char *label = s < 0 ? "built-in defaults, no calibration" : acc_split_name((acc_split)s);
        if (s < 0) {
            size_t k = 0;
            for (int i = 0; i < n_rows; i++)
                tmp[k++] = rel_err(&rows[i], rows[i].pred_uncal);
            gpu_calib_fit_stats st;
            gpu_calib_stats(tmp, k, &st, NULL);
            us_buf_printf(&out, "| %s | %zu | - | %.1f%% | %.1f%% | %.1f%% | %+.1f%% |\n", label,
                          k, 100 * st.mape, 100 * st.median_ape, 100 * st.p90_ape,
                          100 * st.bias);
            continue;
        }
        stats_line(&out, s == ACC_SPLIT_SOURCE ? "**leave-one-source-out**" : label, tmp, s,
                   "all", key_all, NULL);
    }
    if (want[ACC_SPLIT_SOURCE])
        target_section(&out, tmp);
    static const struct {
        acc_split s;
        const char *(*fold_key)(const row *);
    } order[] = {{ACC_SPLIT_SOURCE, key_source},
                 {ACC_SPLIT_ARCH, NULL},
                 {ACC_SPLIT_FAMILY, NULL},
                 {ACC_SPLIT_IN_SAMPLE, NULL}};
    for (size_t o = 0; o < sizeof order / sizeof order[0]; o++) {
        int s = order[o].s;
        if (!want[s])
            continue;
        us_buf_printf(&out, "\n## %s\n", acc_split_title((acc_split)s));
        by_key_table(&out, tmp, s, "Per source", key_source);
        by_key_table(&out, tmp, s, "Per GPU", key_gpu);
        by_key_table(&out, tmp, s, "Per model", key_model);
        if (s == ACC_SPLIT_SOURCE) {
            by_key_table(&out, tmp, s, "Per batch size: batch", key_batch);
            by_key_table(&out, tmp, s,
                         "Per regime (the largest part of the in-sample predicted latency: the "
                         "host and harness - GPU idle - memory-bound or compute-bound kernels): "
                         "regime",
                         key_regime);
            by_key_table(&out, tmp, s,
                         "Per source, engine, whole GPU and precision (the calibration group "
                         "and precision): group",
                         key_engine_gpu);
        }
    }
    us_buf_printf(&out, "\n## Which row predicted the held-out rows\n");
    us_buf_append(&out, folds_md.data, folds_md.len);
    /* the in-sample fit: the calibration table */
    bool *all = us_calloc((size_t)n_rows, sizeof *all);
    if (!all)
        return 1;
    for (int i = 0; i < n_rows; i++)
        all[i] = true;
    us_buf_printf(&out, "\n## Fitted rows (all data; written to data/calibration.txt)\n\n"
                        "In-sample residuals of each row's own fit. `at bound`: coefficients the "
                        "fit pushed to a physical limit - error the kernel model leaves that "
                        "calibration may not absorb. `not determined`: coefficients these rows "
                        "leave free (doubling or halving them moves the fit's error by under "
                        "0.5%%: an FP16-only group and eff_gemm, a group without depthwise "
                        "convolutions and eff_depthwise); a lookup uses the built-in defaults for "
                        "them, never the value the fit left.\n\n"
                        "| GPU | framework | fusion | n | MAPE | median | p90 | bias | eff_gemm | "
                        "eff_tensor | eff_conv | eff_mem | eff_depthwise | launch_us | kernel_us | "
                        "fixed_us | copy_us_per_mb | at bound | not determined |\n"
                        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
                        "\n");
    for (int gi = 0; gi < n_groups; gi++) {
        const fit_entry *fe = fit_group(gi, all);
        if (!fe || !fe->ok)
            continue;
        const gpu_calib *c = &fe->cal;
        us_buf_printf(&out,
                      "| %s | %s | %s | %zu | %.1f%% | %.1f%% | %.1f%% | %+.1f%% | %.3f | %.3f | "
                      "%.3f | %.3f | %.3f | %.1f | %.1f | %.0f | %.0f | %s | %s |\n",
                      c->gpu, c->framework, c->fusion, fe->st.n, 100 * fe->st.mape,
                      100 * fe->st.median_ape, 100 * fe->st.p90_ape, 100 * fe->st.bias,
                      c->eff_gemm, c->eff_tensor, c->eff_conv, c->eff_mem, c->eff_depthwise,
                      c->launch_us, c->kernel_us, c->fixed_us, c->copy_us_per_mb,
                      fe->st.at_bound[0] ? fe->st.at_bound : "-",
                      fe->st.undetermined_names[0] ? fe->st.undetermined_names : "-");
        fprintf(stderr, "  [%s %s] n %zu: log error %.3f -> %.3f, MAPE %.1f%%, p90 %.1f%%%s%s\n",
                c->gpu, c->framework, fe->st.n, fe->st.log_err_before, fe->st.log_err_after,
                100 * fe->st.mape, 100 * fe->st.p90_ape, fe->st.at_bound[0] ? ", at bound: " : "",
                fe->st.at_bound);
    }
    for (int s = 0; s < ACC_SPLIT_COUNT; s++) {
        if (!want[s])
            continue;
        for (int i = 0; i < n_rows; i++)
            tmp[i] = rel_err(&rows[i], rows[i].pred[s]);
        gpu_calib_fit_stats st;
        gpu_calib_stats(tmp, (size_t)n_rows, &st, NULL);
        printf("%-28s n %d: MAPE %.1f%%, median %.1f%%, p90 %.1f%%, bias %+.1f%%\n",
               acc_split_name((acc_split)s), n_rows, 100 * st.mape, 100 * st.median_ape,
               100 * st.p90_ape, 100 * st.bias);
    }
    if (report && us_file_write_atomic(report, out.data, out.len, &err) < 0)
        fprintf(stderr, "%s\n", err.msg);
    if (resid_out) {
        us_buf c;
        us_buf_init(&c, 4u << 20);
        us_buf_printf(&c, "source,gpu,model,framework,precision,batch,measured_ms,defaults_ms");
        for (int s = 0; s < ACC_SPLIT_COUNT; s++)
            us_buf_printf(&c, ",%s_ms,%s_row", acc_split_name((acc_split)s),
                          acc_split_name((acc_split)s));
        us_buf_printf(&c, "\n");
        for (int i = 0; i < n_rows; i++) {
            const row *x = &rows[i];
            us_buf_printf(&c, "%s,%s,%s,%s,%s,%lld,%.4g,%.4g", x->source, x->gpu, x->model,
                          x->framework, gpu_precision_name((gpu_precision)x->prec),
                          (long long)x->batch, x->meas_ms, x->pred_uncal);
            for (int s = 0; s < ACC_SPLIT_COUNT; s++)
                us_buf_printf(&c, ",%.4g,\"%s\"", x->pred[s], x->used[s]);
            us_buf_printf(&c, "\n");
        }
        if (us_file_write_atomic(resid_out, c.data, c.len, &err) < 0)
            fprintf(stderr, "%s\n", err.msg);
        us_buf_free(&c);
    }
    if (cal_out) {
        us_buf c;
        us_buf_init(&c, 1u << 20);
        us_buf_printf(
            &c,
            "# usher calibration table, format v1 (docs/calibration.md).\n#\n"
            "# One section per GPU type and framework. The estimator uses the row of the\n"
            "# requested GPU (a MIG instance falls back to its parent GPU, then to \"*\") for the\n"
            "# framework it is configured with (default onnxruntime-cuda); a GPU or engine with\n"
            "# no row borrows one (the same engine in the architecture family, then in the\n"
            "# nearest other family, then a related engine) and says so.\n#\n"
            "# No onnxruntime-cuda row has been measured on a GPU yet: `usher calibrate` on a\n"
            "# machine with a GPU writes one; until then onnxruntime-cuda uses the built-in\n"
            "# defaults (docs/calibration.md). The rows below were fitted by\n"
            "# scripts/accuracy-report.sh on\n"
            "# every covered row of data/measurements.csv (%s, kernel model at %s) with the\n"
            "# bounded fit, and describe the frameworks those sources measured. Each row's\n"
            "# comment gives its in-sample residuals; held-out errors are in docs/accuracy.md.\n\n",
            date, kcommit);
        for (int gi = 0; gi < n_groups; gi++) {
            const fit_entry *fe = fit_group(gi, all);
            if (!fe || !fe->ok)
                continue;
            us_buf_printf(&c,
                          "# residuals on its %zu rows: MAPE %.1f%%, median %.1f%%, p90 %.1f%%, "
                          "max %.1f%%, bias %+.1f%%\n# at a physical bound: %s\n"
                          "# not determined by its rows (the defaults are used for them): %s\n",
                          fe->st.n, 100 * fe->st.mape, 100 * fe->st.median_ape,
                          100 * fe->st.p90_ape, 100 * fe->st.max_ape, 100 * fe->st.bias,
                          fe->st.at_bound[0] ? fe->st.at_bound : "none",
                          fe->st.undetermined_names[0] ? fe->st.undetermined_names : "none");
            char buf[4096];
            gpu_calib_format(&fe->cal, buf, sizeof buf);
            us_buf_printf(&c, "%s\n", buf);
        }
        if (us_file_write_atomic(cal_out, c.data, c.len, &err) < 0)
            fprintf(stderr, "%s\n", err.msg);
        us_buf_free(&c);
    }
    us_buf_free(&out);
    us_buf_free(&folds_md);
    us_free(all);
    us_free(items);
    us_free(tmp);
    return 0;
}
