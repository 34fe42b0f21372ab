/*
 * plan.c - `usher plan`: place the models of a workload on a cluster
 * (layer 9, over include/usher/plan.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "usher/plan.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: usher plan --workload FILE --cluster FILE [--policy NAME] [-o plan.json]\n"
            "                  [--replan RUNNING.json [--max-moves N]] [--compare]\n"
            "                  [--exact-time-limit SECONDS] [--interference on|off]\n"
            "                  [--merge auto|on|off]\n"
            "                  [--calibration FILE] [--framework NAME] [--quiet]\n"
            "       usher plan --list-policies\n\n"
            "Chooses, for every model of the workload, the GPUs, the number of replicas,\n"
            "the batch size and the compute share (MPS) that meet its latency SLO at its\n"
            "request rate: at the lowest cost on an elastic cluster (objective min-cost),\n"
            "or serving the most on a fixed one (max-goodput; max-min: weighted max-min\n"
            "fairness). Formats: docs/plan-input.md\n"
            "(inputs, examples in examples/) and docs/plan-json.md (output).\n\n"
            "  --workload FILE     models: name, model (ONNX path, relative to FILE), rate\n"
            "                      (req/s), slo_ms, optional priority, precision, group,\n"
            "                      min_share (a fraction of the rate always served),\n"
            "                      spread: node|rack|zone (replicas over two failure\n"
            "                      domains at least: anti-affinity; per model or default),\n"
            "                      dims: {seq: 384, input:1: 512, state:1: batch} (the\n"
            "                      model's other dynamic dims, as usher inspect names them)\n"
            "  --cluster FILE      GPU types with count (fixed) or max and price (elastic),\n"
            "                      lost GPUs (by index), objective, nodes (labels, rack,\n"
            "                      zone)\n"
            "  --policy NAME       usher (default), shepherd, gpulet, alpaserve, triton,\n"
            "                      static-mps, exact (small instances): --list-policies\n"
            "  -o FILE             write plan.json there ('-': standard output)\n"
            "  --replan FILE       re-plan from a running plan.json for the workload's new\n"
            "                      rates, with the fewest replica moves (reported); GPUs\n"
            "                      lost since (cluster.yaml) have their replicas placed\n"
            "                      again, the others stay; GPUs keep their index\n"
            "  --max-moves N       with --replan: up to N further moves to close GPUs\n"
            "  --compare           run every policy and print one line each, ranked by the\n"
            "                      share of the rate served, then by $/h (a plan serving\n"
            "                      less is marked incomplete and never ranked as cheaper)\n"
            "  --exact-time-limit S  time limit of the exact policy (default 20)\n"
            "  --interference on|off  on (default): a replica fits a GPU only if the\n"
            "                      interference model predicts that every replica there\n"
            "                      still meets its SLO and carries its load beside the\n"
            "                      others (docs/interference.md); off: the behaviour\n"
            "                      before the model (latencies alone), for comparison\n"
            "  --merge auto|on|off  merge groups (docs/merge.md): models whose ONNX files\n"
            "                      merge are planned as one merged model where that\n"
            "                      serves as much for less; plan.json names the groups\n"
            "                      (merge_groups). auto (default): the usher policy only\n"
            "                      (the baselines are the papers' systems); on: every\n"
            "                      policy; off: none. With --replan: the running\n"
            "                      plan's groups are kept (off: members alone)\n"
            "  --calibration F     calibration table for the estimator (default built in)\n"
            "  --framework NAME    calibration row (default onnxruntime-cuda)\n"
            "  --quiet             no table on standard output\n\n"
            "Exit status: 0 every model served within its SLO; 3 the plan leaves some rate\n"
            "unserved (printed per model); 1 error; 2 usage.\n");
}

/*
 * --compare: every policy's plan, ranked. A plan that leaves rate unserved is
 * not cheaper, it is incomplete: rows are ranked by the fraction of the rate
 * served within the SLOs (highest first), then by $/h; an incomplete plan is
 * marked and never ranked above one that serves more (docs/policies.md).
 */
#define CMP_MAX 32

typedef struct cmp_row {
    const char *name;
    usher_plan_summary s;
    double frac; /* served / rate (1 when the rate is 0) */
    char err[sizeof(((usher_error *)0)->msg)];
    bool failed;
} cmp_row;

/* rank order: planned before failed; complete before incomplete; more of the
 * rate served first; then cheaper; then the policy table's order */
static int cmp_rank(const void *a, const void *b)
{
    const cmp_row *x = a, *y = b;
    if (x->failed != y->failed)
        return x->failed ? 1 : -1;
    if (x->failed)
        return 0;
    if (x->s.feasible != y->s.feasible)
        return x->s.feasible ? -1 : 1;
    if (!x->s.feasible && fabs(x->frac - y->frac) > 1e-9)
        return x->frac > y->frac ? -1 : 1;
    if (x->s.cost_per_hour != y->s.cost_per_hour)
        return x->s.cost_per_hour < y->s.cost_per_hour ? -1 : 1;
    return 0;
}

static int compare(usher_estimator *e, usher_plan_params pp)
{
    cmp_row rows[CMP_MAX];
    size_t n = 0;
    for (size_t i = 0; n < CMP_MAX; i++) {
        const char *name = usher_plan_policy(i, NULL);
        if (!name)
            break;
        cmp_row *r = &rows[n++];
        memset(r, 0, sizeof *r);
        r->name = name;
        pp.policy = name;
        usher_plan *pl;
        usher_error err;
        if (usher_plan_make(e, &pp, &pl, &err) < 0) {
            r->failed = true;
            snprintf(r->err, sizeof r->err, "%s", err.msg);
            continue;
        }
        usher_plan_get_summary(pl, &r->s);
        r->s.policy = name; /* the summary's points into the plan, freed below */
        r->frac = r->s.rate > 0 ? r->s.goodput / r->s.rate : 1;
        usher_plan_free(pl);
    }
    /* a stable sort: equal rows keep the table's order */
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b > 0 && cmp_rank(&rows[b - 1], &rows[b]) > 0; b--) {
            cmp_row t = rows[b];
            rows[b] = rows[b - 1];
            rows[b - 1] = t;
        }
    printf("%4s %-11s %6s %9s %9s %12s %8s %12s %10s\n", "rank", "policy", "GPUs", "replicas",
           "$/h", "served req/s", "served", "unserved", "seconds");
    for (size_t i = 0; i < n; i++) {
        const cmp_row *r = &rows[i];
        if (r->failed) {
            printf("%4s %-11s %s\n", "-", r->name, r->err);
            continue;
        }
        printf("%4zu %-11s %6u %9u %9.2f %12.6g %7.1f%% %12.6g %10.3g%s\n", i + 1, r->name,
               r->s.gpus, r->s.replicas, r->s.cost_per_hour, r->s.goodput, 100 * r->frac,
               r->s.unserved, r->s.plan_seconds, r->s.feasible ? "" : "  incomplete");
    }
    printf("ranked by the share of the rate served within the SLOs, then by $/h: an incomplete\n"
           "plan (some rate unserved) is never ranked above one that serves more\n");
    return CLI_OK;
}

int cli_plan(int argc, char **argv)
{
    usher_plan_params pp = usher_plan_default_params();
    const char *out = NULL, *calib = NULL, *framework = NULL;
    bool list = false, quiet = false, cmp = false, have_moves = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--list-policies") == 0) {
            list = true;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "--compare") == 0) {
            cmp = true;
        } else if (strcmp(a, "--workload") == 0 && v) {
            pp.workload = argv[++i];
        } else if (strcmp(a, "--cluster") == 0 && v) {
            pp.cluster = argv[++i];
        } else if (strcmp(a, "--policy") == 0 && v) {
            pp.policy = argv[++i];
        } else if (strcmp(a, "--replan") == 0 && v) {
            pp.running = argv[++i];
        } else if (strcmp(a, "-o") == 0 && v) {
            out = argv[++i];
        } else if (strcmp(a, "--calibration") == 0 && v) {
            calib = argv[++i];
        } else if (strcmp(a, "--framework") == 0 && v) {
            framework = argv[++i];
        } else if (strcmp(a, "--max-moves") == 0 && v) {
            if (!cli_parse_i64(v, 0, 1000000000, &n)) {
                fprintf(stderr, "usher plan: --max-moves needs an integer in [0, 10^9]\n");
                return CLI_USAGE;
            }
            pp.max_moves = (uint32_t)n;
            have_moves = true;
            i++;
        } else if (strcmp(a, "--interference") == 0 && v) {
            if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
                fprintf(stderr, "usher plan: --interference is on or off, not '%s'\n", v);
                return CLI_USAGE;
            }
            pp.interference_off = strcmp(v, "off") == 0;
            i++;
        } else if (strcmp(a, "--merge") == 0 && v) {
            if (strcmp(v, "auto") != 0 && strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
                fprintf(stderr, "usher plan: --merge is auto, on or off, not '%s'\n", v);
                return CLI_USAGE;
            }
            pp.merge = strcmp(v, "on") == 0 ? 1 : strcmp(v, "off") == 0 ? -1 : 0;
            i++;
        } else if (strcmp(a, "--exact-time-limit") == 0 && v) {
            if (!cli_parse_i64(v, 1, 3600, &n)) {
                fprintf(stderr, "usher plan: --exact-time-limit needs whole seconds in [1, 3600]\n");
                return CLI_USAGE;
            }
            pp.exact_time_limit_ms = (uint32_t)n * 1000;
            i++;
        } else {
            fprintf(stderr, "usher plan: unknown option or missing value: '%s'\n\n", a);
            help(stderr);
            return CLI_USAGE;
        }
    }
    if (list) {
        for (size_t i = 0;; i++) {
            const char *sum, *name = usher_plan_policy(i, &sum);
            if (!name)
                break;
            printf("%-11s %s\n", name, sum);
        }
        return CLI_OK;
    }
    if (!pp.workload || !pp.cluster) {
        fprintf(stderr, "usher plan: --workload and --cluster are required\n\n");
        help(stderr);
        return CLI_USAGE;
    }
    if (have_moves && !pp.running) {
        fprintf(stderr, "usher plan: --max-moves goes with --replan\n");
        return CLI_USAGE;
    }
    if (cmp && (pp.running || pp.policy)) {
        fprintf(stderr, "usher plan: --compare runs every policy; drop --policy and --replan\n");
        return CLI_USAGE;
    }
    usher_estimator_params ep = usher_estimator_default_params();
    ep.calibration = calib;
    ep.framework = framework;
    ep.cache_entries = 65536;
    usher_estimator *e;
    usher_error err;
    if (usher_estimator_new(&ep, &e, &err) < 0) {
        fprintf(stderr, "usher plan: %s\n", err.msg);
        return CLI_FAIL;
    }
    if (cmp) {
        int rc = compare(e, pp);
        usher_estimator_free(e);
        return rc;
    }
    usher_plan *pl;
    if (usher_plan_make(e, &pp, &pl, &err) < 0) {
        fprintf(stderr, "usher plan: %s\n", err.msg);
        usher_estimator_free(e);
        return CLI_FAIL;
    }
    usher_estimator_free(e);
    int rc = CLI_OK;
    bool to_stdout = out && strcmp(out, "-") == 0;
    if (!quiet && !to_stdout)
        usher_plan_print(pl, stdout);
    if (out && usher_plan_write_json(pl, out, &err) < 0) {
        fprintf(stderr, "usher plan: %s\n", err.msg);
        rc = CLI_FAIL;
    }
    usher_plan_summary s;
    usher_plan_get_summary(pl, &s);
    if (rc == CLI_OK && !s.feasible) {
        fprintf(stderr, "usher plan: the cluster cannot serve every model within its SLO; "
                        "unserved:\n");
        for (uint32_t i = 0; i < s.models; i++) {
            usher_plan_model m;
            usher_plan_model_at(pl, i, &m);
            if (m.unserved > 0)
                fprintf(stderr, "  %-24s %10.6g of %.6g req/s\n", m.name, m.unserved, m.rate);
        }
        rc = CLI_INCOMPLETE;
    }
    usher_plan_free(pl);
    return rc;
}
