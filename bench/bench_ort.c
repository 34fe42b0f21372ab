/*
 * bench_ort.c - latency of a direct, in-process be_run (src/backend/ort.c):
 * the floor the server's added-latency benchmark compares against.
 *
 *   bench_ort [ZOO_DIR] [--runs N] [--threads N]
 *
 * Models, made in a temporary directory with usher's own library calls:
 *   add       y = a + b over two FP32 [1,4] inputs (IR + ONNX writer): the
 *             cost of one be_run with nothing to compute, i.e. the backend's
 *             own overhead (input checks, OrtValue wrapping, ORT's Run
 *             bookkeeping, output copy);
 *   resnet18  ZOO_DIR/resnet18.onnx (default models/zoo) given random
 *             weights as `usher convert --fill-random 1` does, at batch 1
 *             and 8.
 * Method: warm-up runs first (100; 10 for resnet18), then N timed runs
 * (default 2,000 for add; for resnet18 as many as fit in about 15 s, at
 * most N, at least 20), each timed alone with CLOCK_MONOTONIC. Inputs are
 * fixed pseudo-random values; outputs are freed inside the timed region
 * because a caller has to free them too. Default session options (intra-op
 * threads: ORT's default, one per core). Output: a markdown table with the
 * percentiles, the mean, the process CPU time per run (user + system, all
 * of ORT's threads included: what a run really costs the machine) and the
 * throughput (runs or images per second of wall time).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "backend/be.h"
#include "ir/ir.h"
#include "onnx/onnx.h"
#include "usher/model.h"
#include "bench.h"

static double pct(const double *sorted, int n, double p)
{
    int i = (int)ceil(p / 100.0 * n) - 1;
    return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* a[1,4] + b[1,4] -> y, written with the IR and the ONNX writer */
static int write_add_model(const char *path, usher_error *err)
{
    ir_model *m = ir_model_new();
    ir_graph *g = ir_graph_new(m, NULL, NULL, "main");
    m->opsets = us_arena_array(&m->arena, 1, sizeof *m->opsets);
    if (!g || !m->opsets) {
        ir_model_free(m);
        return USHER_ERR_NOMEM;
    }
    m->opsets[0].domain = "";
    m->opsets[0].version = 17;
    m->n_opsets = 1;
    static const char *names[] = {"a", "b"};
    ir_node *n = ir_graph_add_node(g, "add", "", "Add", 2, 1, 0);
    for (int i = 0; i < 2; i++) {
        ir_tensor *t = ir_graph_add_tensor(g, names[i], NULL);
        t->dtype = IR_DT_FLOAT;
        t->decl.rank = 2;
        t->decl.d[0] = ir_dim_lit(1);
        t->decl.d[1] = ir_dim_lit(4);
        ir_graph_add_input(g, t);
        n->in[i] = t;
    }
    ir_tensor *y = ir_graph_add_tensor(g, "y", NULL);
    y->dtype = IR_DT_FLOAT;
    y->producer = n;
    n->out[0] = y;
    ir_graph_add_output(g, y);
    int rc = onnx_save_file(m, path, NULL, err);
    ir_model_free(m);
    return rc;
}

static int write_resnet18(const char *zoo, const char *path, usher_error *err)
{
    char in[1024];
    snprintf(in, sizeof in, "%s/resnet18.onnx", zoo);
    usher_load_params lp = usher_load_default_params();
    lp.graph_only = true;
    usher_model *m;
    int rc = usher_model_load(in, &lp, &m, err);
    if (rc < 0)
        return rc;
    usher_save_params sp = usher_save_default_params();
    sp.fill_random = true;
    sp.seed = 1;
    rc = usher_model_save(m, path, &sp, err);
    usher_model_free(m);
    return rc;
}

typedef struct result {
    int runs;
    double p50, p99, mean, per_s;
    double cpu; /* process CPU time (user + system) per run, ms: ORT's threads included */
} result;

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/*
 * Time be_run on one input of shape dims (FP32 filled with fixed values; the
 * add model gets the same tensor for both inputs).
 */
static int bench(const char *path, const be_options *o, int rank, const int64_t *dims,
                 int warm, int max_runs, double budget_s, int64_t items, result *r)
{
    usher_error err;
    be_session *s;
    if (be_open(path, o, &s, &err) < 0) {
        fprintf(stderr, "bench_ort: %s\n", err.msg);
        return 1;
    }
    us_tensor in[2];
    memset(in, 0, sizeof in);
    uint64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (uint64_t)dims[i];
    float *x = malloc(n * sizeof *x);
    double *t = malloc((size_t)max_runs * sizeof *t);
    size_t n_out = be_n_outputs(s);
    us_tensor *out = calloc(n_out, sizeof *out);
    if (!x || !t || !out) {
        fprintf(stderr, "bench_ort: out of memory\n");
        return 1;
    }
    uint32_t st = 12345;
    for (uint64_t i = 0; i < n; i++) {
        st = st * 1664525u + 1013904223u;
        x[i] = (float)(st >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
    }
    size_t n_in = be_n_inputs(s);
    for (size_t i = 0; i < n_in && i < 2; i++) {
        snprintf(in[i].name, sizeof in[i].name, "%s", be_input(s, i)->name);
        in[i].dtype = US_DT_FP32;
        in[i].shape.rank = rank;
        memcpy(in[i].shape.dim, dims, (size_t)rank * sizeof *dims);
        in[i].data = x;
        in[i].bytes = n * sizeof *x;
    }
    int rc = 0, done = 0;
    for (int i = 0; i < warm && rc == 0; i++) {
        rc = be_run(s, in, n_in, out, &err);
        be_outputs_free(out, n_out);
    }
    double start = now(), cpu0 = cpu_now();
    while (rc == 0 && done < max_runs && (done < 20 || now() - start < budget_s)) {
        double t0 = now();
        rc = be_run(s, in, n_in, out, &err);
        be_outputs_free(out, n_out);
        t[done++] = now() - t0;
    }
    double cpu = cpu_now() - cpu0;
    if (rc < 0)
        fprintf(stderr, "bench_ort: %s\n", err.msg);
    double sum = 0;
    for (int i = 0; i < done; i++)
        sum += t[i];
    qsort(t, (size_t)done, sizeof *t, cmp_double);
    r->runs = done;
    r->p50 = pct(t, done, 50) * 1e3;
    r->p99 = pct(t, done, 99) * 1e3;
    r->mean = sum / done * 1e3;
    r->per_s = (double)items * done / sum;
    r->cpu = cpu / done * 1e3;
    free(x);
    free(t);
    free(out);
    be_close(s);
    return rc < 0;
}

int main(int argc, char **argv)
{
    const char *zoo = "models/zoo";
    int runs = 2000, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = (int)strtol(argv[++i], NULL, 10);
        else if (argv[i][0] != '-')
            zoo = argv[i];
        else {
            fprintf(stderr, "usage: bench_ort [ZOO_DIR] [--runs N] [--threads N]\n");
            return 2;
        }
    }
    if (runs < 20)
        runs = 20;
    char dir[] = "/tmp/bench_ort-XXXXXX", add[64], rn[64];
    if (!mkdtemp(dir)) {
        perror("bench_ort: mkdtemp");
        return 1;
    }
    snprintf(add, sizeof add, "%s/add.onnx", dir);
    snprintf(rn, sizeof rn, "%s/resnet18.onnx", dir);
    usher_error err;
    int rc = 0;
    if (write_add_model(add, &err) < 0 || write_resnet18(zoo, rn, &err) < 0) {
        fprintf(stderr, "bench_ort: %s\n", err.msg);
        rc = 1;
        goto out;
    }
    be_options o = be_default_options();
    o.intra_threads = threads;
    static const int64_t d_add[] = {1, 4}, d_r1[] = {1, 3, 224, 224}, d_r8[] = {8, 3, 224, 224};
    result r[3];
    rc |= bench(add, &o, 2, d_add, 100, runs, 1e9, 1, &r[0]);
    rc |= bench(rn, &o, 4, d_r1, 10, runs, 15.0, 1, &r[1]);
    rc |= bench(rn, &o, 4, d_r8, 3, runs, 15.0, 8, &r[2]);
    if (rc)
        goto out;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char th[16];
    snprintf(th, sizeof th, "%d", threads);
    printf("ONNX Runtime %s, CPU, %ld cores, intra-op threads %s\n\n", be_ort_version(), cores,
           threads ? th : "ORT's default");
    printf("| model | batch | runs | p50 ms | p99 ms | mean ms | CPU ms/run | throughput |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    static const char *label[] = {"add [1,4] FP32", "resnet18", "resnet18"};
    static const int batch[] = {1, 1, 8};
    for (int i = 0; i < 3; i++)
        printf("| %s | %d | %d | %.4f | %.4f | %.4f | %.4f | %.0f %s/s |\n", label[i], batch[i],
               r[i].runs, r[i].p50, r[i].p99, r[i].mean, r[i].cpu, r[i].per_s,
               i ? "images" : "runs");
out:
    unlink(add);
    unlink(rn);
    rmdir(dir);
    return rc;
}
