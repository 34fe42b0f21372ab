/*
 * bench_merge.c - the operator graph merger (issue 15; method and last result:
 * bench/README.md "Merging models").
 *
 *   bench_merge FT_DIR ZOO_RESNET50 OUT_DIR [OWW_A OWW_B] [--rounds N] [--batch B]
 *
 * 1. Throughput, ONNX Runtime CPU, 1 intra-op thread per session, same total
 *    work: per round every model gets one request of B rows. Separate: the 4
 *    fine-tuned variants (FT_DIR/variant0..3.onnx, scripts/make_finetuned.py)
 *    in 4 sessions, run one after the other; merged: their merge in one
 *    session, run once with all 4 inputs. The two are timed in alternation,
 *    round by round, and the ratio of the median round times is reported
 *    (>= 1.3 is the goal for the shared kind). The same for the stacked kind
 *    (type b) forced on the same 4 variants and, when given, on the two
 *    openWakeWord models (goal: never slower, ratio >= 1).
 * 2. Merge time: ZOO_RESNET50 (graph-only) is given random weights with 4
 *    seeds and written to OUT_DIR; usher_merge_models on the 4 files (load,
 *    hash, cluster, match, build; not writing, not verifying) is timed, median
 *    of 3 (goal <= 0.5 s). Also with 4 copies of one seed (everything common).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/be.h"
#include "bench.h"
#include "core/alloc.h"
#include "onnx/onnx.h"
#include "usher/merge.h"

#define MAXM 8

typedef struct sess {
    be_session *s;
    us_tensor in[8];
    size_t n_in;
    us_tensor out[8];
} sess;

static int open_sess(const char *path, int64_t batch, sess *x)
{
    be_options o = be_default_options();
    o.intra_threads = 1;
    o.inter_threads = 1;
    usher_error err;
    memset(x, 0, sizeof *x);
    if (be_open(path, &o, &x->s, &err) < 0) {
        fprintf(stderr, "bench_merge: %s\n", err.msg);
        return -1;
    }
    x->n_in = be_n_inputs(x->s);
    if (x->n_in > 8 || be_n_outputs(x->s) > 8)
        return -1;
    uint64_t seed = 12345;
    for (size_t i = 0; i < x->n_in; i++) {
        const be_io *io = be_input(x->s, i);
        us_tensor *t = &x->in[i];
        snprintf(t->name, sizeof t->name, "%s", io->name);
        t->dtype = io->dtype;
        t->shape = io->shape;
        for (int d = 0; d < t->shape.rank; d++)
            if (t->shape.dim[d] < 0)
                t->shape.dim[d] = batch;
        uint64_t bytes;
        if (t->dtype != US_DT_FP32 || us_tensor_nbytes(t->dtype, &t->shape, io->name, &bytes, &err) < 0)
            return -1;
        t->data = us_malloc((size_t)bytes);
        t->bytes = bytes;
        if (!t->data)
            return -1;
        for (uint64_t e = 0; e < bytes / 4; e++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            ((float *)t->data)[e] = (float)((double)(seed >> 40) / (double)(1ULL << 24) * 2 - 1);
        }
    }
    return 0;
}

static int run_sess(sess *x)
{
    usher_error err;
    if (be_run(x->s, x->in, x->n_in, x->out, &err) < 0) {
        fprintf(stderr, "bench_merge: run: %s\n", err.msg);
        return -1;
    }
    be_outputs_free(x->out, be_n_outputs(x->s));
    return 0;
}

static void close_sess(sess *x)
{
    for (size_t i = 0; i < x->n_in; i++)
        us_free(x->in[i].data);
    be_close(x->s);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* merge paths[0..n) as kind (-1: best) into out, verified; 0 on success */
static int merge_to(const char *const *paths, int n, int kind, const char *out, char *kind_name,
                    size_t kn)
{
    usher_merge_params p = usher_merge_default_params();
    p.kind = kind;
    p.verify = true;
    usher_merge *m;
    usher_error err;
    if (usher_merge_models(paths, (size_t)n, &p, &m, &err) < 0 ||
        usher_merge_write(m, out, &err) < 0) {
        fprintf(stderr, "bench_merge: merge: %s\n", err.msg);
        return -1;
    }
    snprintf(kind_name, kn, "%s", usher_merge_get_report(m)->kind_name);
    usher_merge_free(m);
    return 0;
}

static int throughput(const char *title, const char *const *paths, int n, int kind,
                      const char *out, int64_t batch, int rounds)
{
    char kn[32];
    if (merge_to(paths, n, kind, out, kn, sizeof kn) < 0)
        return -1;
    sess sep[MAXM], mg;
    for (int i = 0; i < n; i++)
        if (open_sess(paths[i], batch, &sep[i]) < 0)
            return -1;
    if (open_sess(out, batch, &mg) < 0)
        return -1;
    double *ts = malloc(sizeof(double) * (size_t)rounds), *tm = malloc(sizeof(double) * (size_t)rounds);
    if (!ts || !tm)
        return -1;
    for (int w = 0; w < 5; w++) { /* warm-up */
        for (int i = 0; i < n; i++)
            if (run_sess(&sep[i]) < 0)
                return -1;
        if (run_sess(&mg) < 0)
            return -1;
    }
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        for (int i = 0; i < n; i++)
            run_sess(&sep[i]);
        double t1 = now();
        run_sess(&mg);
        double t2 = now();
        ts[r] = t1 - t0;
        tm[r] = t2 - t1;
    }
    double ms = median(ts, rounds), mm = median(tm, rounds);
    printf("%-34s %-13s batch %-3lld separate %8.3f ms  merged %8.3f ms  ratio %.2fx\n", title, kn,
           (long long)batch, ms * 1e3, mm * 1e3, ms / mm);
    for (int i = 0; i < n; i++)
        close_sess(&sep[i]);
    close_sess(&mg);
    free(ts);
    free(tm);
    return 0;
}

static int make_resnets(const char *zoo, const char *dir, char paths[8][512])
{
    for (int i = 0; i < 5; i++) {
        snprintf(paths[i], 512, "%s/resnet50_seed%d.onnx", dir, i < 4 ? i + 1 : 1);
        if (access(paths[i], R_OK) == 0)
            continue;
        onnx_load_params lp = onnx_load_default_params();
        lp.graph_only = true;
        ir_model *m;
        usher_error err;
        if (onnx_load_file(zoo, &lp, &m, &err) < 0 || ir_model_fill_random(m, (uint64_t)i + 1) < 0 ||
            onnx_save_file(m, paths[i], NULL, &err) < 0) {
            fprintf(stderr, "bench_merge: %s: %s\n", zoo, err.msg);
            return -1;
        }
        ir_model_free(m);
    }
    return 0;
}

static void merge_time(const char *title, const char *const *paths, int n)
{
    double t[3];
    char kn[32] = "";
    unsigned long long saved = 0;
    for (int r = 0; r < 3; r++) {
        usher_merge_params p = usher_merge_default_params();
        usher_merge *m;
        usher_error err;
        double t0 = now();
        if (usher_merge_models(paths, (size_t)n, &p, &m, &err) < 0) {
            fprintf(stderr, "bench_merge: %s\n", err.msg);
            return;
        }
        t[r] = now() - t0;
        const usher_merge_report *rep = usher_merge_get_report(m);
        snprintf(kn, sizeof kn, "%s", rep->kind_name);
        saved = rep->weight_bytes_before - (rep->weight_bytes_after < rep->weight_bytes_before
                                                ? rep->weight_bytes_after
                                                : rep->weight_bytes_before);
        usher_merge_free(m);
    }
    printf("%-34s %-13s merge time median %.3f s (runs %.3f %.3f %.3f), %.1f MB weights common\n",
           title, kn, median(t, 3), t[0], t[1], t[2], (double)saved / 1e6);
}

int main(int argc, char **argv)
{
    const char *pos[5] = {0};
    int npos = 0, rounds = 200;
    int64_t batch = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = atoll(argv[++i]);
        else if (npos < 5)
            pos[npos++] = argv[i];
    }
    if (npos != 3 && npos != 5) {
        fprintf(stderr, "usage: bench_merge FT_DIR ZOO_RESNET50 OUT_DIR [OWW_A OWW_B] "
                        "[--rounds N] [--batch B]\n");
        return 2;
    }
    if (rounds < 5 || batch < 1)
        return 2;
    char ft[4][512], out[512];
    const char *fp[4];
    for (int i = 0; i < 4; i++) {
        snprintf(ft[i], sizeof ft[i], "%s/variant%d.onnx", pos[0], i);
        fp[i] = ft[i];
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("bench_merge: ONNX Runtime CPU, %ld cores, 1 intra-op thread per session, %d rounds\n\n",
           cores, rounds);
    snprintf(out, sizeof out, "%s/ft_shared.onnx", pos[2]);
    if (throughput("4 fine-tuned variants (frozen)", fp, 4, -1, out, batch, rounds) < 0)
        return 1;
    snprintf(out, sizeof out, "%s/ft_stacked.onnx", pos[2]);
    if (throughput("4 fine-tuned variants (forced b)", fp, 4, USHER_MERGE_STACKED, out, batch,
                   rounds) < 0)
        return 1;
    snprintf(out, sizeof out, "%s/ft_sbs.onnx", pos[2]);
    if (throughput("4 fine-tuned variants (side-by-side)", fp, 4, USHER_MERGE_SIDE_BY_SIDE, out,
                   batch, rounds) < 0)
        return 1;
    if (npos == 5) {
        const char *ow[2] = {pos[3], pos[4]};
        snprintf(out, sizeof out, "%s/oww_stacked.onnx", pos[2]);
        if (throughput("openWakeWord pair (forced b)", ow, 2, USHER_MERGE_STACKED, out, 1,
                       rounds) < 0)
            return 1;
        snprintf(out, sizeof out, "%s/oww_auto.onnx", pos[2]);
        if (throughput("openWakeWord pair (auto)", ow, 2, -1, out, 1, rounds) < 0)
            return 1;
    }
    char rn[8][512];
    if (make_resnets(pos[1], pos[2], rn) < 0)
        return 1;
    const char *rp[4] = {rn[0], rn[1], rn[2], rn[3]};
    merge_time("4 x ResNet-50, different weights", rp, 4);
    const char *same[4] = {rn[4], rn[4], rn[4], rn[4]};
    merge_time("4 x ResNet-50, same weights", same, 4);
    return 0;
}
