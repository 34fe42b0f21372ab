/*
 * accuracy.c - the estimator against measured latencies (docs/accuracy.md).
 *
 *   usher-accuracy --measurements data/measurements.csv --zoo models/zoo
 *                  [--report docs/accuracy.md] [--calibration-out data/calibration.txt]
 *
 * 1. Reads every row of measurements.csv and keeps those the zoo covers: a
 *    zoo model (resnet50-v1.5 is torchvision's resnet50; BERT only at
 *    sequence length 128, the zoo's), a GPU in the catalog (MIG instances
 *    included), one process per GPU or instance.
 * 2. Splits them in two by a hash of (source, GPU, model, precision,
 *    framework, batch, share): training rows and held-out rows. The split
 *    never looks at latencies.
 * 3. For each (GPU, framework) pair, fits the calibration coefficients on
 *    its training rows only (coordinate descent on the mean absolute log
 *    error, within the table's bounds), starting from the built-in defaults.
 * 4. Reports, per source, GPU and model, the mean absolute percentage error
 *    of the uncalibrated defaults and of the fitted rows on held-out rows,
 *    and writes the fitted rows as a calibration table.
 * A held-out row never influences a coefficient.
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

typedef struct row {
    char source[40], gpu[64], model[32], framework[32], prec_text[32];
    int prec;
    int64_t batch;
    double meas_ms;
    bool train;
    const gpu_type *g;
    int model_idx;
    const gpu_kplan *plan;
    double pred_cal, pred_uncal;
    int group;
} row;

typedef struct group {
    char gpu[64], framework[32], fusion[8];
    gpu_calib cal;
    int n_train, n_test;
} group;

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

static int model_index(const char *name, const char *notes, const char *zoo_dir)
{
    char base[64];
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

static double predict(const row *r, const gpu_calib *cal)
{
    usher_estimate_params p = usher_estimate_default_params();
    p.gpu = r->g->key;
    p.batch = r->batch;
    p.precision = (usher_precision)r->prec;
    usher_profile prof;
    usher_error err;
    if (est_run(E, r->plan, r->g, cal, &p, &prof, &err) < 0)
        return NAN;
    return prof.latency_ms;
}

static double loss(row *rows, int n, int grp, const gpu_calib *cal)
{
    double s = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (rows[i].group != grp || !rows[i].train)
            continue;
        double p = predict(&rows[i], cal);
        if (!isfinite(p) || p <= 0)
            return INFINITY;
        s += fabs(log(p / rows[i].meas_ms));
        k++;
    }
    return k ? s / k : INFINITY;
}

typedef struct param {
    size_t off;
    double lo, hi;
    bool additive;
    double scale; /* additive: the size of a first step */
} param;

static const param params[] = {
    {offsetof(gpu_calib, eff_gemm), 0.05, 1.2, false, 0},
    {offsetof(gpu_calib, eff_tensor), 0.03, 1.2, false, 0},
    {offsetof(gpu_calib, eff_conv), 0.1, 2.5, false, 0},
    {offsetof(gpu_calib, eff_mem), 0.05, 1.2, false, 0},
    {offsetof(gpu_calib, eff_depthwise), 0.01, 1.0, false, 0},
    {offsetof(gpu_calib, launch_us), 0, 200, true, 10},
    {offsetof(gpu_calib, kernel_us), 0, 100, true, 5},
    {offsetof(gpu_calib, fixed_us), 0, 20000, true, 500},
    {offsetof(gpu_calib, copy_us_per_mb), 0, 5000, true, 100},
};

static double *pv(gpu_calib *c, const param *p) { return (double *)(void *)((char *)c + p->off); }

static void fit(row *rows, int n, int grp, gpu_calib *cal)
{
    double best = loss(rows, n, grp, cal);
    double step = 0.5;
    for (int round = 0; round < 40 && step > 0.01; round++) {
        bool improved = false;
        for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
            double *v = pv(cal, &params[i]);
            double orig = *v;
            double cands[4];
            if (params[i].additive) {
                double d = fmax(params[i].scale, fabs(orig)) * step;
                cands[0] = orig + d, cands[1] = orig - d, cands[2] = orig + 2 * d, cands[3] = orig - 2 * d;
            } else {
                cands[0] = orig * (1 + step), cands[1] = orig / (1 + step);
                cands[2] = orig * (1 + 2 * step), cands[3] = orig / (1 + 2 * step);
            }
            double bv = orig;
            for (int c = 0; c < 4; c++) {
                double x = fmin(params[i].hi, fmax(params[i].lo, cands[c]));
                *v = x;
                double l = loss(rows, n, grp, cal);
                if (l < best - 1e-9) {
                    best = l;
                    bv = x;
                    improved = true;
                }
            }
            *v = bv;
        }
        if (!improved)
            step /= 2;
    }
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

typedef struct acc {
    double ape_cal, ape_uncal;
    int n;
} acc;

int main(int argc, char **argv)
{
    const char *meas = "data/measurements.csv", *zoo_dir = "models/zoo", *report = NULL,
               *cal_out = NULL, *dump = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--measurements") == 0)
            meas = argv[i + 1];
        else if (strcmp(argv[i], "--zoo") == 0)
            zoo_dir = argv[i + 1];
        else if (strcmp(argv[i], "--report") == 0)
            report = argv[i + 1];
        else if (strcmp(argv[i], "--calibration-out") == 0)
            cal_out = argv[i + 1];
        else if (strcmp(argv[i], "--dump") == 0)
            dump = argv[i + 1];
        else {
            fprintf(stderr, "usage: usher-accuracy [--measurements F] [--zoo DIR] [--report F] "
                            "[--calibration-out F]\n");
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
    row *rows = NULL;
    int n = 0, total = 0, skipped_multi = 0;
    group groups[64];
    int n_groups = 0;
    int rc;
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
        int mi = model_index(model, notes, zoo_dir);
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
        if (!(ms > 0) || !isfinite(ms))
            continue;
        gpu_budget b;
        gpu_calib d = gpu_calib_default();
        if (gpu_budget_init(&b, g, 1.0, (gpu_precision)p, &d, NULL) < 0)
            continue; /* the catalog lacks what the model needs (e.g. V100-SXM3 bandwidth) */
        const gpu_kplan *pl = plan_for(mi, (int64_t)batch, p, fusion);
        if (!pl)
            continue;
        row *nr = us_realloc(rows, ((size_t)n + 1) * sizeof *nr);
        if (!nr)
            return 1;
        rows = nr;
        row *x = &rows[n++];
        memset(x, 0, sizeof *x);
        snprintf(x->source, sizeof x->source, "%s", src);
        snprintf(x->gpu, sizeof x->gpu, "%s", g->key);
        snprintf(x->model, sizeof x->model, "%s", zoo_names[mi]);
        snprintf(x->framework, sizeof x->framework, "%s", fwk);
        snprintf(x->prec_text, sizeof x->prec_text, "%s", prec);
        x->prec = p;
        x->batch = (int64_t)batch;
        x->meas_ms = ms;
        x->g = g;
        x->model_idx = mi;
        x->plan = pl;
        char key[256];
        snprintf(key, sizeof key, "%s|%s|%s|%s|%s|%lld|%s", src, g->key, model, prec, fw,
                 (long long)x->batch, sv ? sv : "");
        x->train = (us_hash64(key, strlen(key), 7) & 1) == 0; /* replaced below */
        const char *parent = g->is_mig ? g->parent_key : g->key;
        int gi = -1;
        for (int k = 0; k < n_groups; k++)
            if (strcmp(groups[k].gpu, parent) == 0 && strcmp(groups[k].framework, fwk) == 0)
                gi = k;
        if (gi < 0 && n_groups < 64) {
            gi = n_groups++;
            memset(&groups[gi], 0, sizeof groups[gi]);
            snprintf(groups[gi].gpu, sizeof groups[gi].gpu, "%s", parent);
            snprintf(groups[gi].framework, sizeof groups[gi].framework, "%s", fwk);
            snprintf(groups[gi].fusion, sizeof groups[gi].fusion, "%s", fusion);
        }
        x->group = gi;
        groups[gi].n_train += x->train;
        groups[gi].n_test += !x->train;
    }
    if (rc < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gpu_csv_free(&r);
    fprintf(stderr, "%d rows read, %d covered by the zoo and catalog (%d multi-process rows "
                    "left out), %d groups\n",
            total, n, skipped_multi, n_groups);
    /* the split: within each (source, GPU, model, framework, precision) series, sorted
     * by batch, rows alternate between training and held-out, starting at a place
     * chosen by a hash of the series name - latencies are never looked at */
    qsort(rows, (size_t)n, sizeof *rows, cmp_rows);
    for (int gi = 0; gi < n_groups; gi++)
        groups[gi].n_train = groups[gi].n_test = 0;
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && strcmp(rows[j].source, rows[i].source) == 0 &&
               strcmp(rows[j].gpu, rows[i].gpu) == 0 && strcmp(rows[j].model, rows[i].model) == 0 &&
               strcmp(rows[j].framework, rows[i].framework) == 0 && rows[j].prec == rows[i].prec)
            j++;
        char key[256];
        snprintf(key, sizeof key, "%s|%s|%s|%s|%d", rows[i].source, rows[i].gpu, rows[i].model,
                 rows[i].framework, rows[i].prec);
        unsigned phase = (unsigned)(us_hash64(key, strlen(key), 7) & 1);
        for (int k = i; k < j; k++) {
            rows[k].train = ((unsigned)(k - i) & 1) == phase;
            groups[rows[k].group].n_train += rows[k].train;
            groups[rows[k].group].n_test += !rows[k].train;
        }
        i = j;
    }
    /* fit each group on its training rows */
    for (int gi = 0; gi < n_groups; gi++) {
        group *G = &groups[gi];
        G->cal = gpu_calib_default();
        copy_str(G->cal.gpu, sizeof G->cal.gpu, G->gpu);
        copy_str(G->cal.framework, sizeof G->cal.framework, G->framework);
        copy_str(G->cal.fusion, sizeof G->cal.fusion, G->fusion);
        G->cal.copy_us_per_mb = 0; /* fitted: sources differ in what they time */
        gpu_calib uncal = G->cal;
        uncal.calibrated = false;
        double before = loss(rows, n, gi, &uncal);
        if (G->n_train >= 3)
            fit(rows, n, gi, &G->cal);
        G->cal.calibrated = true;
        snprintf(G->cal.source, sizeof G->cal.source,
                 "fitted by tools/accuracy on %d training rows of data/measurements.csv", G->n_train);
        fprintf(stderr, "  %-12s %-18s train %3d test %3d: log error %.3f -> %.3f\n", G->gpu,
                G->framework, G->n_train, G->n_test, before, loss(rows, n, gi, &G->cal));
        for (int i = 0; i < n; i++) {
            if (rows[i].group != gi)
                continue;
            gpu_calib u = gpu_calib_default();
            snprintf(u.fusion, sizeof u.fusion, "%s", G->fusion);
            u.copy_us_per_mb = 0;
            rows[i].pred_uncal = predict(&rows[i], &u);
            rows[i].pred_cal = predict(&rows[i], &G->cal);
        }
    }
    qsort(rows, (size_t)n, sizeof *rows, cmp_rows);
    if (dump) { /* every covered row with both predictions, for diagnosis */
        FILE *f = fopen(dump, "w");
        for (int i = 0; f && i < n; i++)
            fprintf(f, "%s,%s,%s,%s,%s,%lld,%s,%.4g,%.4g,%.4g\n", rows[i].source, rows[i].gpu,
                    rows[i].model, rows[i].framework, gpu_precision_name((gpu_precision)rows[i].prec),
                    (long long)rows[i].batch, rows[i].train ? "train" : "test", rows[i].meas_ms,
                    rows[i].pred_uncal, rows[i].pred_cal);
        if (f)
            fclose(f);
    }
    us_buf out;
    us_buf_init(&out, 8u << 20);
    time_t now = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    us_buf_printf(&out,
                  "# Estimator accuracy\n\n"
                  "Generated by `scripts/accuracy-report.sh` (tools/accuracy/accuracy.c) on %s.\n"
                  "Do not edit by hand.\n\n"
                  "Predicted against measured latency on every row of data/measurements.csv the\n"
                  "zoo and the catalog cover (%d of %d rows; rows with several processes per MIG\n"
                  "instance are left out). Rows are split in two by a hash of their configuration\n"
                  "(never their latency): calibration coefficients are fitted per (GPU, framework)\n"
                  "on the training half only; errors below are on the **held-out** half.\n"
                  "`uncal.` is the built-in defaults, `cal.` the fitted row. MAPE = mean absolute\n"
                  "percentage error. The measured latencies are not usher's own: each source\n"
                  "measured its framework (PyTorch eager, TensorFlow, TensorRT) on its machines;\n"
                  "see data/README.md. ParvaGPU latencies are rounded to 1 ms by that source.\n\n",
                  date, n, total);
    acc all = {0}, by_src[8] = {{0}};
    const char *srcs[8];
    int n_src = 0;
    us_buf_printf(&out, "## Per source, GPU, model, framework and precision (held-out rows)\n\n"
                        "| source | GPU | model | framework | precision | n | uncal. MAPE | cal. MAPE |\n"
                        "|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n;) {
        int j = i;
        acc a = {0};
        for (; j < n && strcmp(rows[j].source, rows[i].source) == 0 &&
               strcmp(rows[j].gpu, rows[i].gpu) == 0 && strcmp(rows[j].model, rows[i].model) == 0 &&
               strcmp(rows[j].framework, rows[i].framework) == 0 && rows[j].prec == rows[i].prec;
             j++) {
            if (rows[j].train)
                continue;
            a.ape_cal += fabs(rows[j].pred_cal - rows[j].meas_ms) / rows[j].meas_ms;
            a.ape_uncal += fabs(rows[j].pred_uncal - rows[j].meas_ms) / rows[j].meas_ms;
            a.n++;
        }
        if (a.n) {
            us_buf_printf(&out, "| %s | %s | %s | %s | %s | %d | %.1f%% | %.1f%% |\n",
                          rows[i].source, rows[i].gpu, rows[i].model, rows[i].framework,
                          gpu_precision_name((gpu_precision)rows[i].prec), a.n,
                          100 * a.ape_uncal / a.n, 100 * a.ape_cal / a.n);
            int s = -1;
            for (int k = 0; k < n_src; k++)
                if (strcmp(srcs[k], rows[i].source) == 0)
                    s = k;
            if (s < 0 && n_src < 8) {
                s = n_src++;
                srcs[s] = rows[i].source;
            }
            if (s >= 0) {
                by_src[s].ape_cal += a.ape_cal;
                by_src[s].ape_uncal += a.ape_uncal;
                by_src[s].n += a.n;
            }
            all.ape_cal += a.ape_cal;
            all.ape_uncal += a.ape_uncal;
            all.n += a.n;
        }
        i = j;
    }
    us_buf_printf(&out, "\n## Summary (held-out rows)\n\n| source | n | uncal. MAPE | cal. MAPE |\n|---|---|---|---|\n");
    for (int s = 0; s < n_src; s++)
        us_buf_printf(&out, "| %s | %d | %.1f%% | %.1f%% |\n", srcs[s], by_src[s].n,
                      100 * by_src[s].ape_uncal / by_src[s].n, 100 * by_src[s].ape_cal / by_src[s].n);
    us_buf_printf(&out, "| **all** | %d | %.1f%% | **%.1f%%** |\n", all.n,
                  100 * all.ape_uncal / all.n, 100 * all.ape_cal / all.n);
    us_buf_printf(&out, "\n## Fitted rows\n\n| GPU | framework | fusion | train | test | eff_gemm | eff_tensor | eff_conv | eff_mem | eff_depthwise | launch_us | kernel_us | fixed_us | copy_us_per_mb |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int gi = 0; gi < n_groups; gi++) {
        const gpu_calib *c = &groups[gi].cal;
        us_buf_printf(&out, "| %s | %s | %s | %d | %d | %.3f | %.3f | %.3f | %.3f | %.3f | %.1f | %.1f | %.0f | %.0f |\n",
                      c->gpu, c->framework, c->fusion, groups[gi].n_train, groups[gi].n_test,
                      c->eff_gemm, c->eff_tensor, c->eff_conv, c->eff_mem, c->eff_depthwise,
                      c->launch_us, c->kernel_us, c->fixed_us, c->copy_us_per_mb);
    }
    printf("held-out rows: %d, MAPE uncalibrated %.1f%%, calibrated %.1f%%\n", all.n,
           100 * all.ape_uncal / all.n, 100 * all.ape_cal / all.n);
    if (report && us_file_write_atomic(report, out.data, out.len, &err) < 0)
        fprintf(stderr, "%s\n", err.msg);
    if (cal_out) {
        us_buf c;
        us_buf_init(&c, 1u << 20);
        us_buf_printf(&c,
                      "# usher calibration table, format v1 (docs/calibration.md).\n#\n"
                      "# One section per GPU type and framework. The estimator uses the row of the\n"
                      "# requested GPU (a MIG instance falls back to its parent GPU, then to \"*\")\n"
                      "# for the framework it is configured with (default onnxruntime-cuda).\n"
                      "# GPUs and frameworks without a section use the built-in defaults and say so.\n#\n"
                      "# No onnxruntime-cuda row has been measured on a GPU yet: `usher calibrate` on\n"
                      "# a machine with a GPU writes one. The rows below were fitted by\n"
                      "# scripts/accuracy-report.sh on the training half of data/measurements.csv\n"
                      "# (%s) and describe the frameworks those sources measured.\n\n", date);
        for (int gi = 0; gi < n_groups; gi++) {
            char buf[2048];
            gpu_calib_format(&groups[gi].cal, buf, sizeof buf);
            us_buf_printf(&c, "%s\n", buf);
        }
        if (us_file_write_atomic(cal_out, c.data, c.len, &err) < 0)
            fprintf(stderr, "%s\n", err.msg);
        us_buf_free(&c);
    }
    us_buf_free(&out);
    return 0;
}
