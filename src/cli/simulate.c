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
#include "simulate_report.h"
#include "usher/estimate.h"
#include "usher/interfere.h"
#include "usher/model.h"
#include "usher/sim.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: usher simulate --plan plan.json --workload workload.yaml [--duration S]\n"
            "                      [--seed N] [--rate-scale X] [--no-interference]\n"
            "                      [--arrivals poisson|gamma:CV|diurnal:PERIOD_S:AMPLITUDE|azure-synth]\n"
            "                      [--zipf S] [--trace FILE.csv ... [--trace-map stripe|block|hash]\n"
            "                      [--trace-minutes A:B]] [--arrivals-file FILE]\n"
            "                      [--profile FILE.csv] [--interval S] [--json] [--quiet]\n"
            "                      [--sweep X,Y,...] [--html FILE] [--svg-dir DIR]\n"
            "                      [--calibration FILE] [--framework NAME]\n"
            "                      [--replan-every S --cluster FILE [--worker-start S]\n"
            "                      [--model-load S] [--share-change S] [--max-moves N]]\n"
            "                      [--service-cv X]\n"
            "\n"
            "Runs the plan under arrivals at the workload's rates (Poisson unless asked\n"
            "otherwise), with the server's own batching and admission on a virtual clock\n"
            "and each batch slowed by the replicas busy beside it on its GPU (the\n"
            "interference model), and reports goodput, SLO attainment, latency percentiles\n"
            "and queueing per model, utilisation per GPU, GPUs, $/h and energy. A plan's\n"
            "merge groups (merge_groups) serve their members' requests in merged runs, as\n"
            "usher serve runs them; the workload names the members. docs/simulator.md.\n"
            "\n"
            "  --plan FILE        plan.json (usher plan -o)\n"
            "  --workload FILE    workload.yaml: the plan's models, rates and SLOs\n"
            "  --duration S       seconds of arrivals (default 60; with --trace or\n"
            "                     --arrivals-file, the trace's length)\n"
            "  --seed N           seed of the arrivals (default 1): the same seed gives the\n"
            "                     same report, byte for byte\n"
            "  --rate-scale X     every rate times X (default 1; a trace is then replayed as\n"
            "                     Poisson at X times each minute's count)\n"
            "  --no-interference  every batch at its alone latency\n"
            "  --arrivals KIND    poisson (default); gamma:CV, gaps with that coefficient of\n"
            "                     variation (0 to 100; AlpaServe's); diurnal:PERIOD_S:AMPLITUDE,\n"
            "                     rates times 1 + AMPLITUDE sin(2 pi t / PERIOD_S); azure-synth,\n"
            "                     the workload's total rate as Azure-Functions-shaped traffic\n"
            "                     (1000 functions: heavy-tailed rates, timers, bursts)\n"
            "  --zipf S           the workload's total rate split over its models by Zipf(S)\n"
            "                     popularity (0 to 10; ranks dealt by the seed), with poisson,\n"
            "                     gamma or diurnal arrivals\n"
            "  --trace FILE.csv   an Azure Functions 2019 per-minute trace\n"
            "                     (invocations_per_function_md.anon.dNN.csv); repeat for\n"
            "                     consecutive days; each minute's count replayed exactly\n"
            "  --trace-map M      functions to models: stripe (default), block or hash\n"
            "  --trace-minutes A:B  replay minutes A to B-1, from 0 (0:60: the first hour)\n"
            "  --arrivals-file F  recorded arrivals, lines 'time_s model' (the trace format\n"
            "                     of usher load --arrivals trace:FILE)\n"
            "  --profile FILE     measured batch latencies instead of the estimator's: CSV with\n"
            "                     a header, columns model,batch,latency_ms[,gpu] (interference\n"
            "                     off unless it also gives gpu_ms,compute_ms,mem_bound_ms,\n"
            "                     dram_mb,l2_working_set_mb; a plan with merge groups needs\n"
            "                     the estimator's merged profiles: refused with a table)\n"
            "  --interval S       a time series of goodput and SLO attainment per model at\n"
            "                     this resolution (in the JSON)\n"
            "  --sweep X,Y,...    also run at each rate scale: goodput and SLO attainment\n"
            "                     against the offered load (a table; with --json,\n"
            "                     {\"report\": ..., \"sweep\": [...]}; plots)\n"
            "  --html FILE        one self-contained HTML page: the tables and every plot\n"
            "                     (latency CDFs, per-GPU utilisation heat map, goodput over\n"
            "                     time, the sweep's); without --interval, one of ~100 steps\n"
            "  --svg-dir DIR      each plot as its own DIR/NAME.svg\n"
            "  --json             one JSON object (fields: docs/simulator.md)\n"
            "  --quiet            no progress bar\n"
            "  --replan-every S   re-plan in the loop every S seconds of arrivals (USHER does\n"
            "                     every 45 to 300 s): the planner re-plans from the running\n"
            "                     plan (usher plan --replan) for the rates observed since the\n"
            "                     last re-plan, and the run switches to the new plan, moves\n"
            "                     charged; the report lists every re-plan with the requests\n"
            "                     lost or late while it took effect\n"
            "  --cluster FILE     cluster.yaml for the re-plans (required with --replan-every)\n"
            "  --worker-start S   a started or moved replica's worker start (default %g s)\n"
            "  --model-load S     ... and its model load (default %g s)\n"
            "  --share-change S   a replica restarted at another share or batch on its GPU\n"
            "                     (default %g s); a model's old replicas serve until all its\n"
            "                     new ones are ready\n"
            "  --max-moves N      each re-plan may make up to N further moves to close GPUs\n"
            "                     (usher plan --replan --max-moves; default 0)\n"
            "  --service-cv X     batch times lognormal around the profiled ones with this\n"
            "                     coefficient of variation (0 to 10; default 0: exact)\n"
            "  --calibration F    the estimator's calibration table (docs/calibration.md)\n"
            "  --framework NAME   calibration row (default onnxruntime-cuda)\n",
            USHER_SIM_WORKER_START_S, USHER_SIM_MODEL_LOAD_S, USHER_SIM_SHARE_CHANGE_S);
}

#define MAX_MODELS 100000 /* workload.yaml's limit */

typedef struct sim_cli {
    cli_sim_models m; /* first: the callbacks' ctx */
    usher_sim_profile_table *table; /* --profile: measured latencies */
    /* progress */
    double t0;
    int shown; /* percent last drawn, -1: none yet */
} sim_cli;

static int table_profile(void *ctx, uint32_t model, const char *gpu, int64_t batch,
                         double share_pct, usher_profile *out, usher_error *err)
{
    return usher_sim_profile_table_fn(((sim_cli *)ctx)->table, model, gpu, batch, share_pct, out,
                                      err);
}

/* a bar on the terminal once the run has taken a second */
static void progress(void *ctx, double done)
{
    sim_cli *c = ctx;
    int pct = (int)(done * 100);
    if (pct == c->shown || cli_wall() - c->t0 < 1.0)
        return;
    c->shown = pct;
    cli_progress_bar("simulating", pct, 40, NULL);
}


int cli_simulate(int argc, char **argv)
{
    usher_sim_params p = usher_sim_default_params();
    const char *plan = NULL, *wl = NULL, *calib = NULL, *framework = NULL, *prof = NULL;
    const char *cluster = NULL;
    uint32_t max_moves = 0;
    bool json = false, quiet = false, duration_given = false;
    cli_sim_outputs outs = {0}; /* --sweep, --html, --svg-dir */
    static cli_sim_arrivals arr;
    memset(&arr, 0, sizeof arr);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t iv;
        int took = cli_sim_arrival_option("simulate", argc, argv, &i, &p.arrivals, &arr);
        if (took == 0)
            took = cli_sim_run_option("simulate", argc, argv, &i, &p, &max_moves);
        if (took < 0)
            return CLI_USAGE;
        if (took > 0)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--html") == 0 && v) {
            outs.html = argv[++i];
        } else if (strcmp(a, "--svg-dir") == 0 && v) {
            outs.svg_dir = argv[++i];
        } else if (strcmp(a, "--sweep") == 0 && v) {
            if (!cli_sim_parse_sweep(argv[++i], &outs))
                return CLI_USAGE;
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
            if (!cli_parse_double(v, 1e-3, 1e7, &p.duration_s)) {
                fprintf(stderr, "usher simulate: --duration is seconds, 0.001 to 1e7\n");
                return CLI_USAGE;
            }
            duration_given = true;
            i++;
        } else if (strcmp(a, "--profile") == 0 && v) {
            prof = argv[++i];
        } else if (strcmp(a, "--interval") == 0 && v) {
            if (!cli_parse_double(v, 1e-3, 1e7, &p.interval_s)) {
                fprintf(stderr, "usher simulate: --interval is seconds, 0.001 to 1e7\n");
                return CLI_USAGE;
            }
            i++;
        } else if (strcmp(a, "--cluster") == 0 && v) {
            cluster = argv[++i];
        } else if (strcmp(a, "--rate-scale") == 0 && v) {
            if (!cli_parse_double(v, 0, 1e6, &p.rate_scale)) {
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
    if (!cli_sim_arrivals_finish("simulate", &arr, &p, duration_given))
        return CLI_USAGE;
    bool trace = arr.n_traces > 0 || p.arrivals.file;
    if ((duration_given || !trace) && p.interval_s > p.duration_s) {
        fprintf(stderr, "usher simulate: --interval %g is longer than --duration %g\n",
                p.interval_s, p.duration_s);
        return CLI_USAGE;
    }
    if (max_moves && !cluster) {
        fprintf(stderr, "usher simulate: --max-moves goes with --replan-every\n");
        return CLI_USAGE;
    }
    if ((p.replan_every_s > 0) != (cluster != NULL)) {
        fprintf(stderr, "usher simulate: --replan-every and --cluster go together\n");
        return CLI_USAGE;
    }
    cli_sim_outputs_prepare(&p, &outs); /* plots want a time series */

    int ret = CLI_FAIL;
    usher_error err = {0};
    sim_cli c = {.shown = -1};
    usher_sim_workload *w = NULL;
    usher_sim_report *r = NULL;
    usher_sim_profile_table *table = NULL;
    char *js = NULL;
    static cli_sim_replan rp;
    memset(&rp, 0, sizeof rp);
    if (usher_sim_workload_load(wl, &w, &err) < 0) {
        fprintf(stderr, "usher simulate: %s\n", err.msg);
        goto out;
    }
    c.m.w = w;
    if (usher_sim_workload_models(w) > MAX_MODELS) {
        fprintf(stderr, "usher simulate: %s: more than %d models\n", wl, MAX_MODELS);
        goto out;
    }
    /* no heap in the front end (it sits above the allocation hook): one static table */
    static usher_model *models[MAX_MODELS];
    static int precision[MAX_MODELS];
    memset(models, 0, sizeof models);
    c.m.models = models;
    c.m.precision = precision;
    if (prof) { /* measured latencies: the table, not the estimator, gives the profiles */
        if (usher_sim_profile_table_load(prof, w, &table, &err) < 0) {
            fprintf(stderr, "usher simulate: %s\n", err.msg);
            goto out;
        }
        if (!usher_sim_profile_table_has_gpu_fields(table))
            p.interference = 0; /* nothing to judge co-location by */
    } else if (cli_sim_models_load(&c.m, "simulate", wl) < 0) {
        goto out;
    }
    if (!prof || p.interference || cluster) { /* the estimator: profiles, the catalog's
                                                 devices, the re-plans */
        usher_estimator_params ep = usher_estimator_default_params();
        ep.calibration = calib;
        ep.framework = framework;
        if (usher_estimator_new(&ep, &c.m.e, &err) < 0) {
            fprintf(stderr, "usher simulate: %s\n", err.msg);
            goto out;
        }
    }
    p.plan = plan;
    p.workload = w;
    c.table = table;
    p.profile = prof ? table_profile : cli_sim_profile;
    /* merge groups: the merged graph's estimate (a measured table has no merged rows) */
    p.group_profile = prof ? NULL : cli_sim_group_profile;
    p.device = cli_sim_device;
    p.ctx = &c;
    if (!quiet && isatty(STDERR_FILENO)) {
        p.progress = progress;
        p.progress_ctx = &c;
    }
    if (cluster) { /* re-planning in the loop */
        rp.e = c.m.e;
        rp.w = w;
        rp.workload = wl;
        rp.cluster = cluster;
        rp.interference_off = !p.interference;
        rp.max_moves = max_moves;
        if (cli_sim_replan_dir(&rp, "simulate") < 0)
            goto out;
        p.replan = cli_sim_replan_fn;
        p.replan_ctx = &rp;
    }
    c.t0 = cli_wall();
    int rc = usher_sim_run(&p, &r, &err);
    if (c.shown >= 0)
        fprintf(stderr, "\r%60s\r", ""); /* the bar goes away */
    if (rc < 0) {
        fprintf(stderr, "usher simulate: %s\n", err.msg);
        goto out;
    }
    if (cli_sim_outputs_wanted(&outs)) { /* the sweep's runs, then every output */
        ret = cli_sim_outputs_run(&p, r, &outs, json, quiet);
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
    cli_sim_replan_cleanup(&rp);
    usher_free(js);
    usher_sim_report_free(r);
    cli_sim_models_free(&c.m);
    usher_estimator_free(c.m.e);
    usher_sim_profile_table_free(table);
    usher_sim_workload_free(w);
    return ret;
}
