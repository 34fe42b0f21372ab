/*
 * simulate.c - `usher simulate`: run a plan under its workload's traffic in
 * the discrete-event simulator (usher/sim.h, docs/simulator.md).
 *
 * The simulator knows models only through profiles; this front end gives
 * them from the estimator (usher/estimate.h) for the ONNX files the
 * workload names, and a GPU's bandwidth and L2 from the estimator's catalog
 * (usher_interfere_device), the same sources `usher plan` plans with.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "usher/estimate.h"
#include "usher/interfere.h"
#include "usher/model.h"
#include "usher/sim.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: usher simulate --plan plan.json --workload workload.yaml [--duration S]\n"
            "                      [--seed N] [--rate-scale X] [--no-interference]\n"
            "                      [--interval S] [--json] [--quiet]\n"
            "                      [--calibration FILE] [--framework NAME]\n"
            "\n"
            "Runs the plan under Poisson arrivals at the workload's rates, with the\n"
            "server's own batching and admission on a virtual clock and each batch slowed\n"
            "by the replicas busy beside it on its GPU (the interference model), and\n"
            "reports goodput, SLO attainment, latency percentiles and queueing per model,\n"
            "utilisation per GPU, GPUs, $/h and energy. docs/simulator.md.\n"
            "\n"
            "  --plan FILE        plan.json (usher plan -o)\n"
            "  --workload FILE    workload.yaml: the plan's models, rates and SLOs\n"
            "  --duration S       seconds of arrivals (default 60)\n"
            "  --seed N           seed of the arrivals (default 1): the same seed gives the\n"
            "                     same report, byte for byte\n"
            "  --rate-scale X     every rate times X (default 1)\n"
            "  --no-interference  every batch at its alone latency\n"
            "  --interval S       a time series of goodput and SLO attainment per model at\n"
            "                     this resolution (in the JSON)\n"
            "  --json             one JSON object (fields: docs/simulator.md)\n"
            "  --quiet            no progress bar\n"
            "  --calibration F    the estimator's calibration table (docs/calibration.md)\n"
            "  --framework NAME   calibration row (default onnxruntime-cuda)\n");
}

#define MAX_MODELS 100000 /* workload.yaml's limit */

typedef struct sim_cli {
    usher_estimator *e;
    const usher_sim_workload *w;
    usher_model **models; /* per workload model; shared when they name one file */
    int *precision;
    /* progress */
    double t0;
    int shown; /* percent last drawn, -1: none yet */
} sim_cli;

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int profile(void *ctx, uint32_t model, const char *gpu, int64_t batch, double share_pct,
                   usher_profile *out, usher_error *err)
{
    sim_cli *c = ctx;
    usher_estimate_params ep = usher_estimate_default_params();
    ep.gpu = gpu;
    ep.batch = batch;
    ep.share_pct = share_pct;
    ep.precision = (usher_precision)c->precision[model];
    return usher_estimate(c->e, c->models[model], &ep, out, err);
}

static int device(void *ctx, const char *gpu, double *bw, double *l2, usher_error *err)
{
    return usher_interfere_device(((sim_cli *)ctx)->e, gpu, bw, l2, err);
}

/* a bar on the terminal once the run has taken a second */
static void progress(void *ctx, double done)
{
    sim_cli *c = ctx;
    int pct = (int)(done * 100);
    if (pct == c->shown || wall() - c->t0 < 1.0)
        return;
    c->shown = pct;
    char bar[41];
    int n = pct * 40 / 100;
    for (int i = 0; i < 40; i++)
        bar[i] = i < n ? '#' : '.';
    bar[40] = 0;
    fprintf(stderr, "\rsimulating [%s] %3d%%", bar, pct);
    fflush(stderr);
}

/* each file the workload names, loaded once; a failure is printed with its place */
static int load_models(sim_cli *c, const char *wl)
{
    uint32_t n = usher_sim_workload_models(c->w);
    for (uint32_t i = 0; i < n; i++) {
        usher_sim_model_info mi;
        usher_sim_workload_model(c->w, i, &mi);
        c->precision[i] = usher_precision_parse(mi.precision);
        for (uint32_t j = 0; j < i && !c->models[i]; j++) {
            usher_sim_model_info mj;
            usher_sim_workload_model(c->w, j, &mj);
            if (strcmp(mi.path, mj.path) == 0)
                c->models[i] = c->models[j];
        }
        if (c->models[i])
            continue;
        usher_error le;
        if (usher_model_load(mi.path, NULL, &c->models[i], &le) < 0) {
            fprintf(stderr, "usher simulate: %s:%zu: field 'models[%u].model': %s\n", wl, mi.line,
                    i, le.msg);
            return le.code;
        }
    }
    return USHER_OK;
}

static void models_free(sim_cli *c)
{
    uint32_t n = usher_sim_workload_models(c->w);
    for (uint32_t i = 0; c->models && i < n; i++) {
        bool shared = false;
        for (uint32_t j = i + 1; j < n && !shared; j++)
            shared = c->models[j] == c->models[i];
        if (!shared) /* the last holder frees it */
            usher_model_free(c->models[i]);
    }
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

int cli_simulate(int argc, char **argv)
{
    usher_sim_params p = usher_sim_default_params();
    const char *plan = NULL, *wl = NULL, *calib = NULL, *framework = NULL;
    bool json = false, quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t iv;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "--no-interference") == 0) {
            p.interference = 0;
        } else if (strcmp(a, "--plan") == 0 && v) {
            plan = argv[++i];
        } else if (strcmp(a, "--workload") == 0 && v) {
            wl = argv[++i];
        } else if (strcmp(a, "--calibration") == 0 && v) {
            calib = argv[++i];
        } else if (strcmp(a, "--framework") == 0 && v) {
            framework = argv[++i];
        } else if (strcmp(a, "--duration") == 0 && v) {
            if (!parse_double(v, 1e-3, 1e7, &p.duration_s)) {
                fprintf(stderr, "usher simulate: --duration is seconds, 0.001 to 1e7\n");
                return CLI_USAGE;
            }
            i++;
        } else if (strcmp(a, "--interval") == 0 && v) {
            if (!parse_double(v, 1e-3, 1e7, &p.interval_s)) {
                fprintf(stderr, "usher simulate: --interval is seconds, 0.001 to 1e7\n");
                return CLI_USAGE;
            }
            i++;
        } else if (strcmp(a, "--rate-scale") == 0 && v) {
            if (!parse_double(v, 0, 1e6, &p.rate_scale)) {
                fprintf(stderr, "usher simulate: --rate-scale is a number, 0 to 1e6\n");
                return CLI_USAGE;
            }
            i++;
        } else if (strcmp(a, "--seed") == 0 && v) {
            if (!cli_parse_i64(v, 0, INT64_MAX, &iv)) {
                fprintf(stderr, "usher simulate: --seed is a non-negative integer\n");
                return CLI_USAGE;
            }
            p.seed = (uint64_t)iv;
            i++;
        } else {
            fprintf(stderr, "usher simulate: unknown option '%s' (or it needs a value)\n", a);
            return CLI_USAGE;
        }
    }
    if (!plan || !wl) {
        fprintf(stderr, "usher simulate: --plan and --workload are required\n");
        help(stderr);
        return CLI_USAGE;
    }
    if (p.interval_s > p.duration_s) {
        fprintf(stderr, "usher simulate: --interval %g is longer than --duration %g\n",
                p.interval_s, p.duration_s);
        return CLI_USAGE;
    }

    int ret = CLI_FAIL;
    usher_error err = {0};
    sim_cli c = {.shown = -1};
    usher_sim_workload *w = NULL;
    usher_sim_report *r = NULL;
    char *js = NULL;
    if (usher_sim_workload_load(wl, &w, &err) < 0) {
        fprintf(stderr, "usher simulate: %s\n", err.msg);
        goto out;
    }
    c.w = w;
    if (usher_sim_workload_models(w) > MAX_MODELS) {
        fprintf(stderr, "usher simulate: %s: more than %d models\n", wl, MAX_MODELS);
        goto out;
    }
    /* no heap in the front end (it sits above the allocation hook): one static table */
    static usher_model *models[MAX_MODELS];
    static int precision[MAX_MODELS];
    memset(models, 0, sizeof models);
    c.models = models;
    c.precision = precision;
    if (load_models(&c, wl) < 0)
        goto out;
    usher_estimator_params ep = usher_estimator_default_params();
    ep.calibration = calib;
    ep.framework = framework;
    if (usher_estimator_new(&ep, &c.e, &err) < 0) {
        fprintf(stderr, "usher simulate: %s\n", err.msg);
        goto out;
    }
    p.plan = plan;
    p.workload = w;
    p.profile = profile;
    p.device = device;
    p.ctx = &c;
    if (!quiet && isatty(STDERR_FILENO)) {
        p.progress = progress;
        p.progress_ctx = &c;
    }
    c.t0 = wall();
    int rc = usher_sim_run(&p, &r, &err);
    if (c.shown >= 0)
        fprintf(stderr, "\r%60s\r", ""); /* the bar goes away */
    if (rc < 0) {
        fprintf(stderr, "usher simulate: %s\n", err.msg);
        goto out;
    }
    if (json) {
        if (usher_sim_report_json(r, &js, &err) < 0) {
            fprintf(stderr, "usher simulate: %s\n", err.msg);
            goto out;
        }
        fputs(js, stdout);
    } else {
        usher_sim_report_print(r, stdout);
    }
    ret = fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
out:
    usher_free(js);
    usher_sim_report_free(r);
    models_free(&c);
    usher_estimator_free(c.e);
    usher_sim_workload_free(w);
    return ret;
}
