/*
 * compare.c - `usher compare`: plan one workload on one cluster with several
 * policies and run every plan in the simulator on the same arrivals (the
 * same seed), in one run (layer 9: include/usher/ only).
 *
 * Each policy plans through the public planner (usher/plan.h), its plan.json
 * is written to a private temporary folder and handed to the simulator
 * (usher/sim.h) with the workload, profiles from the same estimator the
 * planner used. The table puts what each plan costs beside what it serves:
 * a plan that does not serve the offered load is marked, never ranked as
 * the cheaper one. With --loads, every rate is scaled (a scaled copy of the
 * workload file for the planner, rate_scale for the simulator), re-planned
 * and simulated at each scale: cost and goodput against the offered load.
 *
 * The front end keeps no heap (it sits above the allocation hook): results
 * are in static tables.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "usher/estimate.h"
#include "usher/interfere.h"
#include "usher/model.h"
#include "usher/plan.h"
#include "usher/sim.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: usher compare --workload FILE --cluster FILE [--policies A,B,...]\n"
            "                     [--duration S] [--seed N] [--loads X,Y,...] [--json]\n"
            "                     [--html FILE] [--interference on|off]\n"
            "                     [--exact-time-limit S] [--calibration FILE]\n"
            "                     [--framework NAME] [--quiet]\n"
            "                     [--arrivals KIND] [--zipf S] [--trace FILE.csv ...\n"
            "                     [--trace-map M] [--trace-minutes A:B]] [--arrivals-file F]\n"
            "                     [--replan-every S [--worker-start S] [--model-load S]\n"
            "                     [--share-change S] [--max-moves N]] [--service-cv X]\n"
            "                     [--merge auto|on|off]\n\n"
            "Plans the workload on the cluster with each policy (usher plan --policy) and\n"
            "runs each plan in the simulator (usher simulate) on the same arrivals: the\n"
            "same seed, Poisson at the workload's rates unless --arrivals, --trace or\n"
            "--arrivals-file say otherwise (as usher simulate takes them; the planner\n"
            "plans for the workload's rates). Prints, per policy, the GPUs, $/h,\n"
            "the planned goodput, the simulated goodput, SLO attainment and the worst\n"
            "model's p99 latency. A plan that does not serve the offered load (planned\n"
            "unserved rate, or under 99%% of requests within their SLO in the simulation)\n"
            "is marked 'short': its lower cost is not a saving. docs/simulator.md.\n\n"
            "  --workload FILE     workload.yaml (docs/plan-input.md)\n"
            "  --cluster FILE      cluster.yaml\n"
            "  --policies A,B,...  policies to compare (default: every one, usher plan\n"
            "                      --list-policies; exact may take --exact-time-limit)\n"
            "  --duration S        seconds of simulated arrivals (default 60)\n"
            "  --seed N            seed of the arrivals (default 1): the same seed gives the\n"
            "                      same JSON, byte for byte (unless exact hits its time limit)\n"
            "  --loads X,Y,...     also at these rate scales: every rate times X, re-planned\n"
            "                      and simulated (cost and goodput against offered load)\n"
            "  --json              one JSON object (fields: docs/simulator.md)\n"
            "  --html FILE         one self-contained page: the table, per policy its latency\n"
            "                      CDFs and per-GPU utilisation heat map, and with --loads\n"
            "                      the plots of cost, GPUs and goodput against offered load\n"
            "  --arrivals, --zipf, --trace, --trace-map, --trace-minutes, --arrivals-file\n"
            "                      the arrivals, as usher simulate --help says (every policy\n"
            "                      gets the same ones)\n"
            "  --replan-every S    each policy's plan re-planned in the loop every S seconds\n"
            "                      for the observed rates (usher simulate --replan-every:\n"
            "                      USHER's re-planner from that plan, moves charged); $/h\n"
            "                      and GPUs are then the run's mean and most held\n"
            "  --worker-start S, --model-load S, --share-change S, --max-moves N  the moves'\n"
            "                      costs and the re-plans' further moves (usher simulate\n"
            "                      --help)\n"            "  --service-cv X      batch times lognormal around the profiled ones (usher\n"
            "                      simulate --help)\n"
            "  --merge auto|on|off merge groups (usher plan --merge; docs/merge.md): auto\n"
            "                      (default) the usher policy merges models where that lowers\n"
            "                      cost and the baselines plan every model alone; on: every\n"
            "                      policy may; off: none. A group is simulated as the server\n"
            "                      runs it (one queue, merged runs); the re-plans keep it\n"
            "  --interference on|off  plan and simulate with the interference model (on,\n"
            "                      default) or without\n"
            "  --exact-time-limit S  the exact policy's time limit (default 20)\n"
            "  --calibration F     the estimator's calibration table\n"
            "  --framework NAME    calibration row (default onnxruntime-cuda)\n"
            "  --quiet             no progress bar\n\n"
            "Exit status: 0 at least one policy planned and simulated (failures are\n"
            "rows); 1 none did, or an error; 2 usage.\n");
}

#define MAX_POLICIES 16
#define MAX_LOADS 32
#define MAX_MODELS 100000 /* workload.yaml's limit */
#define MSG 512

static bool replanning; /* --replan-every: $/h and GPUs are the simulated runs' */

typedef struct run {
    bool ok;                /* planned and simulated */
    char error[MSG];        /* "plan: ..." or "simulate: ..." when !ok */
    usher_plan_summary ps;  /* valid when planned */
    bool planned;
    usher_sim_summary ss;
    double offered;         /* req/s the simulator offered (sum of model rates) */
    double worst_p99;       /* ms, the highest model p99 */
    bool serves;            /* planned feasible and >= 99% within SLO */
    usher_plan *pl;         /* kept for scale 1 only (per-model output) */
    usher_sim_report *r;
} run;

static const char *policies[MAX_POLICIES];
static size_t n_policies;
static double loads[MAX_LOADS];
static size_t n_loads;
static run runs[MAX_LOADS + 1][MAX_POLICIES]; /* [load][policy]; load index n_loads: scale 1 */

typedef struct ctx {
    cli_sim_models m; /* first: the simulator's callbacks' ctx */
    /* progress */
    bool bar;
    double t0;
    size_t step, steps;
    const char *what;
    double scale;
    int shown;
} ctx;

#define say cli_say

/* the bar: steps (policy x load) done, the current one's share from the simulator */
static void draw(ctx *c, double part)
{
    if (!c->bar || cli_wall() - c->t0 < 1.0)
        return;
    double done = ((double)c->step + part) / (double)c->steps;
    int pct = (int)(done * 100);
    if (pct == c->shown && part > 0)
        return;
    c->shown = pct;
    char suffix[40];
    snprintf(suffix, sizeof suffix, " %-11.11s x%-6g", c->what, c->scale);
    cli_progress_bar("comparing", pct, 30, suffix);
}

static void sim_progress(void *c_, double done)
{
    draw(c_, done);
}

static void list_policies(FILE *f)
{
    for (size_t i = 0;; i++) {
        const char *name = usher_plan_policy(i, NULL);
        if (!name)
            break;
        fprintf(f, "%s%s", i ? ", " : "", name);
    }
}

/* --policies a,b: each a known policy, no repeats; false with the message printed */
static bool parse_policies(char *s)
{
    n_policies = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        const char *known = NULL;
        for (size_t i = 0; !known; i++) {
            const char *name = usher_plan_policy(i, NULL);
            if (!name)
                break;
            if (strcmp(name, tok) == 0)
                known = name;
        }
        if (!known) {
            fprintf(stderr, "usher compare: unknown policy '%s'; policies: ", tok);
            list_policies(stderr);
            fputc('\n', stderr);
            return false;
        }
        for (size_t i = 0; i < n_policies; i++)
            if (policies[i] == known) {
                fprintf(stderr, "usher compare: policy '%s' given twice\n", tok);
                return false;
            }
        if (n_policies == MAX_POLICIES) {
            fprintf(stderr, "usher compare: at most %d policies\n", MAX_POLICIES);
            return false;
        }
        policies[n_policies++] = known;
    }
    if (n_policies == 0) {
        fprintf(stderr, "usher compare: --policies names none; policies: ");
        list_policies(stderr);
        fputc('\n', stderr);
        return false;
    }
    return true;
}

static bool parse_loads(const char *s)
{
    n_loads = 0;
    const char *p = s;
    for (;;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v > 0 && v <= 1e6) || (*end && *end != ',')) {
            fprintf(stderr, "usher compare: --loads is rate scales in (0, 1e6] separated by "
                            "commas (0.5,1,2), not '%s'\n", s);
            return false;
        }
        for (size_t i = 0; i < n_loads; i++)
            if (loads[i] == v) {
                fprintf(stderr, "usher compare: --loads gives %g twice\n", v);
                return false;
            }
        if (n_loads == MAX_LOADS) {
            fprintf(stderr, "usher compare: --loads: at most %d scales\n", MAX_LOADS);
            return false;
        }
        loads[n_loads++] = v;
        if (!*end)
            break;
        p = end + 1;
    }
    /* ascending, for the plots */
    for (size_t i = 1; i < n_loads; i++)
        for (size_t j = i; j > 0 && loads[j - 1] > loads[j]; j--) {
            double t = loads[j];
            loads[j] = loads[j - 1];
            loads[j - 1] = t;
        }
    return true;
}

/* ---- one policy at one scale --------------------------------------------------------- */

static void plan_and_simulate(ctx *c, usher_estimator *e, usher_plan_params pp,
                              const char *orig, usher_sim_params sp, const char *plan_path,
                              bool keep, run *out)
{
    usher_error err;
    memset(out, 0, sizeof *out);
    usher_plan *pl;
    if (usher_plan_make(e, &pp, &pl, &err) < 0) {
        /* a scaled copy's errors name the original file (the lines are the same) */
        const char *at = orig ? strstr(err.msg, pp.workload) : NULL;
        if (at)
            say(out->error, sizeof out->error, "plan: %.*s%s%s", (int)(at - err.msg), err.msg,
                orig, at + strlen(pp.workload));
        else
            say(out->error, sizeof out->error, "plan: %s", err.msg);
        return;
    }
    usher_plan_get_summary(pl, &out->ps);
    out->planned = true;
    if (usher_plan_write_json(pl, plan_path, &err) < 0) {
        say(out->error, sizeof out->error, "plan: %s", err.msg);
        usher_plan_free(pl);
        return;
    }
    sp.plan = plan_path;
    sp.progress = c->bar ? sim_progress : NULL;
    sp.progress_ctx = c;
    usher_sim_report *r;
    if (usher_sim_run(&sp, &r, &err) < 0) {
        say(out->error, sizeof out->error, "simulate: %s", err.msg);
        usher_plan_free(pl);
        return;
    }
    usher_sim_report_summary(r, &out->ss);
    usher_sim_model_summary m;
    for (uint32_t i = 0; usher_sim_report_model(r, i, &m) == USHER_OK; i++) {
        out->offered += m.rate;
        if (m.served > 0 && m.p99_ms > out->worst_p99)
            out->worst_p99 = m.p99_ms;
    }
    out->ok = true;
    out->serves = out->ps.feasible && out->ss.slo_attainment_pct >= 99.0;
    if (keep) {
        out->pl = pl;
        out->r = r;
    } else {
        usher_plan_free(pl);
        usher_sim_report_free(r);
    }
}

/* ---- outputs --------------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.10g", v);
    else
        fputs("null", f);
}

/* what a run costs: the plan's, or with re-planning the simulated mean $/h and most GPUs */
static double run_cost(const run *x) { return replanning ? x->ss.cost_per_hour : x->ps.cost_per_hour; }
static uint32_t run_gpus(const run *x) { return replanning ? x->ss.gpus_used : x->ps.gpus; }

static void json_run_totals(FILE *f, const run *x)
{
    fprintf(f, "\"gpus\": %u, \"replicas\": %u, \"cost_per_hour\": ", run_gpus(x),
            x->ps.replicas);
    json_num(f, run_cost(x));
    fputs(", \"planned_goodput\": ", f);
    json_num(f, x->ps.goodput);
    fputs(", \"planned_unserved\": ", f);
    json_num(f, x->ps.unserved);
    fprintf(f, ", \"feasible\": %s, \"offered\": ", x->ps.feasible ? "true" : "false");
    json_num(f, x->offered);
    fprintf(f, ", \"requests\": %llu, \"goodput\": ", (unsigned long long)x->ss.requests);
    json_num(f, x->ss.goodput);
    fputs(", \"slo_attainment_pct\": ", f);
    json_num(f, x->ss.slo_attainment_pct);
    fputs(", \"worst_p99_ms\": ", f);
    json_num(f, x->worst_p99);
    fputs(", \"cost_per_million_good\": ", f);
    json_num(f, x->ss.goodput > 0 ? run_cost(x) / (x->ss.goodput * 3600) * 1e6 : NAN);
    fprintf(f, ", \"serves_offered_load\": %s", x->serves ? "true" : "false");
    if (replanning)
        fprintf(f, ", \"planned_gpus\": %u, \"planned_cost_per_hour\": %.6g, \"replans\": %u, "
                   "\"lost_during_changes\": %llu, \"late_during_changes\": %llu",
                x->ps.gpus, x->ps.cost_per_hour, x->ss.replans,
                (unsigned long long)x->ss.replan_lost, (unsigned long long)x->ss.replan_late);
}

static void json_run_head(FILE *f, size_t p, const run *x)
{
    fputs("{\"policy\": ", f);
    json_str(f, policies[p]);
    fprintf(f, ", \"ok\": %s, ", x->ok ? "true" : "false");
    if (!x->ok) {
        fputs("\"error\": ", f);
        json_str(f, x->error);
    } else {
        json_run_totals(f, x);
    }
}

/* what the arrivals were, from the first run that has a report */
static const char *arrivals_said(void)
{
    for (size_t p = 0; p < n_policies; p++)
        if (runs[n_loads][p].ok && runs[n_loads][p].ss.arrivals)
            return runs[n_loads][p].ss.arrivals;
    return "";
}

static void print_json(const char *wl, const char *cl, const usher_sim_params *sp, bool interf)
{
    FILE *f = stdout;
    fputs("{\"workload\": ", f);
    json_str(f, wl);
    fputs(", \"cluster\": ", f);
    json_str(f, cl);
    fprintf(f, ", \"duration_s\": ");
    json_num(f, sp->duration_s);
    fprintf(f, ", \"seed\": %llu, \"interference\": %s, \"arrivals\": ",
            (unsigned long long)sp->seed, interf ? "true" : "false");
    json_str(f, arrivals_said());
    fputs(", \"replan_every_s\": ", f);
    json_num(f, sp->replan_every_s);
    if (sp->service_cv > 0) {
        fputs(", \"service_cv\": ", f);
        json_num(f, sp->service_cv);
    }
    fputs(",\n \"policies\": [", f);
    for (size_t p = 0; p < n_policies; p++) {
        const run *x = &runs[n_loads][p];
        fputs(p ? ",\n  " : "\n  ", f);
        json_run_head(f, p, x);
        if (x->ok) {
            fputs(", \"models\": [", f);
            usher_sim_model_summary m;
            for (uint32_t i = 0; usher_sim_report_model(x->r, i, &m) == USHER_OK; i++) {
                usher_plan_model pm = {0};
                usher_plan_model_at(x->pl, i, &pm);
                fputs(i ? ",\n    " : "\n    ", f);
                fputs("{\"name\": ", f);
                json_str(f, m.name);
                if (m.group) { /* the merge group that served it (absent: none) */
                    fputs(", \"group\": ", f);
                    json_str(f, m.group);
                }
                fputs(", \"rate\": ", f);
                json_num(f, m.rate);
                fprintf(f, ", \"replicas\": %u, \"planned_goodput\": ", pm.replicas);
                json_num(f, pm.goodput);
                fputs(", \"planned_unserved\": ", f);
                json_num(f, pm.unserved);
                fprintf(f, ", \"requests\": %llu, \"served\": %llu, \"late\": %llu, "
                           "\"rejected\": %llu, \"goodput\": ",
                        (unsigned long long)m.requests, (unsigned long long)m.served,
                        (unsigned long long)m.late, (unsigned long long)m.rejected);
                json_num(f, m.goodput);
                fputs(", \"slo_attainment_pct\": ", f);
                json_num(f, m.slo_attainment_pct);
                fputs(", \"mean_ms\": ", f);
                json_num(f, m.mean_ms);
                fputs(", \"p50_ms\": ", f);
                json_num(f, m.p50_ms);
                fputs(", \"p99_ms\": ", f);
                json_num(f, m.p99_ms);
                fputs("}", f);
            }
            fputs("]", f);
        }
        fputs("}", f);
    }
    fputs("]", f);
    if (n_loads > 0) {
        fputs(",\n \"loads\": [", f);
        for (size_t l = 0; l < n_loads; l++) {
            fputs(l ? ",\n  " : "\n  ", f);
            fputs("{\"scale\": ", f);
            json_num(f, loads[l]);
            fputs(", \"policies\": [", f);
            for (size_t p = 0; p < n_policies; p++) {
                fputs(p ? ",\n    " : "\n    ", f);
                json_run_head(f, p, &runs[l][p]);
                fputs("}", f);
            }
            fputs("]}", f);
        }
        fputs("]", f);
    }
    fputs("}\n", f);
}

static void print_table(FILE *f, size_t li, double scale)
{
    fprintf(f, "%-11s %5s %8s %11s %11s %8s %10s %9s %s\n", "policy", "GPUs", "$/h",
            "planned/s", "goodput/s", "in SLO", "worst p99", "$/M good", "serves");
    const run *row = runs[li];
    for (size_t p = 0; p < n_policies; p++) {
        const run *x = &row[p];
        if (!x->ok) {
            fprintf(f, "%-11s failed: %s\n", policies[p], x->error);
            continue;
        }
        char cpm[32] = "-";
        if (x->ss.goodput > 0)
            snprintf(cpm, sizeof cpm, "%.4f", run_cost(x) / (x->ss.goodput * 3600) * 1e6);
        char why[128] = "yes";
        if (!x->serves && !x->ps.feasible)
            snprintf(why, sizeof why, "SHORT: the plan leaves %.4g req/s unserved",
                     x->ps.unserved);
        else if (!x->serves)
            snprintf(why, sizeof why, "SHORT: %.2f%% in SLO simulated (< 99%%)",
                     x->ss.slo_attainment_pct);
        fprintf(f, "%-11s %5u %8.2f %11.6g %11.6g %7.2f%% %8.2fms %9s %s\n", policies[p],
                run_gpus(x), run_cost(x), x->ps.goodput, x->ss.goodput,
                x->ss.slo_attainment_pct, x->worst_p99, cpm, why);
        if (replanning)
            fprintf(f, "%-11s %u re-plans; during the changes %llu requests lost, %llu late\n",
                    "", x->ss.replans, (unsigned long long)x->ss.replan_lost,
                    (unsigned long long)x->ss.replan_late);
        /* its merge groups: each group's members, in workload order */
        usher_sim_model_summary m, o;
        for (uint32_t i = 0; x->r && usher_sim_report_model(x->r, i, &m) == USHER_OK; i++) {
            bool first = m.group != NULL;
            for (uint32_t k = 0; first && k < i && usher_sim_report_model(x->r, k, &o) == 0; k++)
                first = !o.group || strcmp(o.group, m.group) != 0;
            if (!first)
                continue;
            fprintf(f, "%-11s merge group %s serves %s", "", m.group, m.name);
            for (uint32_t k = i + 1; usher_sim_report_model(x->r, k, &o) == USHER_OK; k++)
                if (o.group && strcmp(o.group, m.group) == 0)
                    fprintf(f, ", %s", o.name);
            fputs(" (merged runs)\n", f);
        }
    }
    /* the cheapest plan that serves the offered load */
    const run *best = NULL;
    size_t bp = 0;
    for (size_t p = 0; p < n_policies; p++)
        if (row[p].ok && row[p].serves &&
            (!best || run_cost(&row[p]) < run_cost(best))) {
            best = &row[p];
            bp = p;
        }
    double offered = 0;
    for (size_t p = 0; p < n_policies && !offered; p++)
        offered = row[p].ok ? row[p].offered : 0;
    if (best)
        fprintf(f, "cheapest that serves the offered %.6g req/s (x%g): %s, %u GPUs, $%.2f/h\n",
                offered, scale, policies[bp], run_gpus(best), run_cost(best));
    else
        fprintf(f, "no policy's plan serves the offered load (x%g)\n", scale);
}

static void html_esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

/* one plot of (offered load, field) per policy over the loads */
static int html_plot(FILE *f, const char *id, const char *title, const char *y_label, int field,
                     usher_error *err)
{
    static double xs[MAX_POLICIES][MAX_LOADS], ys[MAX_POLICIES][MAX_LOADS];
    usher_sim_plot_series series[MAX_POLICIES];
    for (size_t p = 0; p < n_policies; p++) {
        for (size_t l = 0; l < n_loads; l++) {
            const run *x = &runs[l][p];
            double offered = 0; /* the offered load, from any policy's run at that scale */
            for (size_t q = 0; q < n_policies && !offered; q++)
                offered = runs[l][q].ok ? runs[l][q].offered : 0;
            xs[p][l] = offered > 0 ? offered : NAN;
            ys[p][l] = !x->ok ? NAN
                       : field == 0 ? run_cost(x)
                       : field == 1 ? (double)run_gpus(x)
                                    : x->ss.goodput;
        }
        series[p] = (usher_sim_plot_series){policies[p], xs[p], ys[p], n_loads};
    }
    usher_sim_plot pl = usher_sim_default_plot();
    pl.id = id;
    pl.title = title;
    pl.subtitle = "re-planned and simulated at each load; a gap: the policy failed there";
    pl.x_label = "offered load (req/s)";
    pl.y_label = y_label;
    pl.series = series;
    pl.n_series = n_policies;
    pl.markers = 1;
    char *svg;
    if (usher_sim_plot_svg(&pl, &svg, err) < 0)
        return -1;
    fprintf(f, "<figure>%s</figure>\n", svg);
    usher_free(svg);
    return 0;
}

static int write_html(const char *path, const char *wl, const char *cl,
                      const usher_sim_params *sp, char *msg, size_t n)
{
    static char tmp[PATH_MAX];
    /* a special file (/dev/null, /dev/stdout, a FIFO) is written into, never renamed over:
     * as root that would replace the device node with a file (src/core/file.c does the
     * same for the library's writers) */
    struct stat st;
    bool special = stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
    if (special)
        snprintf(tmp, sizeof tmp, "%s", path);
    else if (snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        say(msg, n, "%s: path too long", path);
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        say(msg, n, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>usher compare</title>\n"
          "<style>body{font-family:sans-serif;margin:2em;color:#222}"
          "table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #ddd;"
          "text-align:right}td:first-child,th:first-child{text-align:left}"
          "tr.short td{color:#a33}figure{margin:1em 0}</style></head><body>\n"
          "<h1>usher compare</h1>\n<p>workload <code>", f);
    html_esc(f, wl);
    fputs("</code>, cluster <code>", f);
    html_esc(f, cl);
    fprintf(f, "</code>; ");
    if (sp->duration_s > 0)
        fprintf(f, "%g s of arrivals", sp->duration_s);
    else
        fputs("the trace's arrivals", f);
    fputs(" (", f);
    html_esc(f, arrivals_said());
    fprintf(f, "), seed %llu, interference %s", (unsigned long long)sp->seed,
            sp->interference ? "on" : "off");
    if (replanning)
        fprintf(f, ", re-planned every %g s (GPUs: the most held, $/h: the mean)",
                sp->replan_every_s);
    fprintf(f, ". A plan marked "
               "<b>short</b> does not serve the offered load (planned unserved rate, or under "
               "99%% of requests within their SLO): its cost is not comparable.</p>\n");
    fputs("<table><tr><th>policy</th><th>GPUs</th><th>$/h</th><th>planned req/s</th>"
          "<th>simulated goodput req/s</th><th>in SLO</th><th>worst p99 ms</th>"
          "<th>$ per million good</th><th>serves</th></tr>\n", f);
    for (size_t p = 0; p < n_policies; p++) {
        const run *x = &runs[n_loads][p];
        if (!x->ok) {
            fputs("<tr class=\"short\"><td>", f);
            html_esc(f, policies[p]);
            fputs("</td><td colspan=\"8\" style=\"text-align:left\">failed: ", f);
            html_esc(f, x->error);
            fputs("</td></tr>\n", f);
            continue;
        }
        fprintf(f, "<tr%s><td>", x->serves ? "" : " class=\"short\"");
        html_esc(f, policies[p]);
        fprintf(f, "</td><td>%u</td><td>%.2f</td><td>%.6g</td><td>%.6g</td><td>%.2f%%</td>"
                   "<td>%.2f</td><td>",
                run_gpus(x), run_cost(x), x->ps.goodput, x->ss.goodput,
                x->ss.slo_attainment_pct, x->worst_p99);
        if (x->ss.goodput > 0)
            fprintf(f, "%.4f", run_cost(x) / (x->ss.goodput * 3600) * 1e6);
        else
            fputs("-", f);
        fprintf(f, "</td><td>%s</td></tr>\n", x->serves ? "yes" : "<b>short</b>");
    }
    fputs("</table>\n", f);
    int rc = 0;
    usher_error err;
    /* per policy: its latency CDFs and its GPUs' utilisation over time (the scale-1 runs) */
    fputs("<h2>Per policy</h2>\n", f);
    for (size_t p = 0; p < n_policies && rc == 0; p++) {
        const run *x = &runs[n_loads][p];
        if (!x->ok || !x->r)
            continue;
        static char id[64], title[160];
        fputs("<h3>", f);
        html_esc(f, policies[p]);
        fputs("</h3>\n", f);
        for (int k = 0; k < 2 && rc == 0; k++) {
            snprintf(id, sizeof id, "%s-%zu", k ? "gpu-utilisation" : "latency-cdf", p);
            snprintf(title, sizeof title, "%s: %s", policies[p],
                     k ? "compute utilisation per GPU over time" : "latency CDF per model");
            char *svg = NULL;
            if (usher_sim_report_plot_svg(x->r, k ? USHER_SIM_PLOT_GPU_UTILISATION
                                                  : USHER_SIM_PLOT_LATENCY_CDF,
                                          id, title, &svg, &err) < 0) {
                if (k == 1 && err.code == USHER_ERR_INVALID) { /* no time series: no map */
                    fputs("<p>(no utilisation heat map: the run has no time series)</p>\n", f);
                    continue;
                }
                say(msg, n, "%s", err.msg);
                rc = -1;
                break;
            }
            /* the standalone document's XML declaration is not for the page */
            const char *body = strstr(svg, "<svg");
            fprintf(f, "<figure>%s</figure>\n", body ? body : svg);
            usher_free(svg);
        }
    }
    if (rc == 0 && n_loads > 1) {
        fputs("<h2>Against the offered load</h2>\n", f);
        if (html_plot(f, "cost", "Cost against load", "$ per hour", 0, &err) < 0 ||
            html_plot(f, "gpus", "GPUs against load", "GPUs", 1, &err) < 0 ||
            html_plot(f, "goodput", "Simulated goodput against offered load",
                      "goodput (req/s within SLO)", 2, &err) < 0) {
            say(msg, n, "%s", err.msg);
            rc = -1;
        }
    } else if (rc == 0) {
        fputs("<p>With <code>--loads X,Y,...</code> (two scales or more) this page also plots "
              "cost, GPUs and goodput against the offered load.</p>\n", f);
    }
    fputs("</body></html>\n", f);
    if (fclose(f) != 0 && rc == 0) {
        say(msg, n, "%s: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && !special && rename(tmp, path) != 0) {
        say(msg, n, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc < 0 && !special)
        unlink(tmp);
    return rc;
}

/* ---- the command ----------------------------------------------------------------------- */

static char tmpdir[PATH_MAX];

static void cleanup_tmp(void)
{
    if (!tmpdir[0])
        return;
    char path[PATH_MAX + 64];
    for (size_t l = 0; l <= n_loads; l++) {
        snprintf(path, sizeof path, "%s/workload-%zu.yaml", tmpdir, l);
        unlink(path);
        for (size_t p = 0; p < n_policies; p++) {
            snprintf(path, sizeof path, "%s/plan-%zu-%zu.json", tmpdir, l, p);
            unlink(path);
        }
    }
    rmdir(tmpdir);
    tmpdir[0] = 0;
}

int cli_compare(int argc, char **argv)
{
    usher_plan_params pp = usher_plan_default_params();
    pp.merge = 0; /* auto: USHER's plans keep their merge groups, the baselines plan alone */
    usher_sim_params sp = usher_sim_default_params();
    const char *calib = NULL, *framework = NULL, *html = NULL;
    bool json = false, quiet = false, interf = true, duration_given = false;
    uint32_t max_moves = 0;
    static char policy_arg[4096];
    static cli_sim_arrivals arr;
    memset(&arr, 0, sizeof arr);
    n_policies = 0;
    n_loads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t iv;
        int took = cli_sim_arrival_option("compare", argc, argv, &i, &sp.arrivals, &arr);
        if (took == 0)
            took = cli_sim_run_option("compare", argc, argv, &i, &sp, &max_moves);
        if (took < 0)
            return CLI_USAGE;
        if (took > 0)
            continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--merge") == 0 && v) {
            if (strcmp(v, "auto") != 0 && strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
                fprintf(stderr, "usher compare: --merge is auto, on or off, not '%s'\n", v);
                return CLI_USAGE;
            }
            pp.merge = strcmp(v, "on") == 0 ? 1 : strcmp(v, "off") == 0 ? -1 : 0;
            i++;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "--workload") == 0 && v) {
            pp.workload = argv[++i];
        } else if (strcmp(a, "--cluster") == 0 && v) {
            pp.cluster = argv[++i];
        } else if (strcmp(a, "--html") == 0 && v) {
            html = argv[++i];
        } else if (strcmp(a, "--calibration") == 0 && v) {
            calib = argv[++i];
        } else if (strcmp(a, "--framework") == 0 && v) {
            framework = argv[++i];
        } else if (strcmp(a, "--policies") == 0 && v) {
            snprintf(policy_arg, sizeof policy_arg, "%s", v);
            if (!parse_policies(policy_arg))
                return CLI_USAGE;
            i++;
        } else if (strcmp(a, "--loads") == 0 && v) {
            if (!parse_loads(v))
                return CLI_USAGE;
            i++;
        } else if (strcmp(a, "--duration") == 0 && v) {
            if (!cli_parse_double(v, 1e-3, 1e7, &sp.duration_s)) {
                fprintf(stderr, "usher compare: --duration is seconds, 0.001 to 1e7\n");
                return CLI_USAGE;
            }
            duration_given = true;
            i++;
        } else if (strcmp(a, "--seed") == 0 && v) {
            if (!cli_parse_i64(v, 0, INT64_MAX, &iv)) {
                fprintf(stderr, "usher compare: --seed is a non-negative integer\n");
                return CLI_USAGE;
            }
            sp.seed = (uint64_t)iv;
            i++;
        } else if (strcmp(a, "--interference") == 0 && v) {
            if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
                fprintf(stderr, "usher compare: --interference is on or off, not '%s'\n", v);
                return CLI_USAGE;
            }
            interf = strcmp(v, "on") == 0;
            i++;
        } else if (strcmp(a, "--exact-time-limit") == 0 && v) {
            if (!cli_parse_i64(v, 1, 3600, &iv)) {
                fprintf(stderr, "usher compare: --exact-time-limit needs whole seconds in "
                                "[1, 3600]\n");
                return CLI_USAGE;
            }
            pp.exact_time_limit_ms = (uint32_t)iv * 1000;
            i++;
        } else {
            fprintf(stderr, "usher compare: unknown option or missing value: '%s'\n\n", a);
            help(stderr);
            return CLI_USAGE;
        }
    }
    if (!pp.workload || !pp.cluster) {
        fprintf(stderr, "usher compare: --workload and --cluster are required\n\n");
        help(stderr);
        return CLI_USAGE;
    }
    if (n_policies == 0) /* every policy */
        for (size_t i = 0; n_policies < MAX_POLICIES; i++) {
            const char *name = usher_plan_policy(i, NULL);
            if (!name)
                break;
            policies[n_policies++] = name;
        }
    pp.interference_off = !interf;
    sp.interference = interf ? 1 : 0;
    replanning = sp.replan_every_s > 0;
    if (max_moves && !replanning) {
        fprintf(stderr, "usher compare: --max-moves goes with --replan-every\n");
        return CLI_USAGE;
    }
    if (!cli_sim_arrivals_finish("compare", &arr, &sp, duration_given))
        return CLI_USAGE;
    if (sp.arrivals.kind == USHER_SIM_ARRIVALS_FILE)
        for (size_t l = 0; l < n_loads; l++)
            if (loads[l] != 1) {
                fprintf(stderr, "usher compare: --loads: recorded arrivals (--arrivals-file) are "
                                "replayed as they are, at scale 1 only\n");
                return CLI_USAGE;
            }
    if (html && sp.interval_s == 0 && sp.duration_s > 0)
        sp.interval_s = sp.duration_s / 100; /* the heat maps' time series */

    int ret = CLI_FAIL;
    usher_error err = {0};
    ctx c = {.shown = -1};
    usher_sim_workload *w = NULL;
    static usher_model *models[MAX_MODELS];
    static int precision[MAX_MODELS];
    memset(models, 0, sizeof models);
    memset(runs, 0, sizeof runs);
    c.m.models = models;
    c.m.precision = precision;
    if (usher_sim_workload_load(pp.workload, &w, &err) < 0) {
        fprintf(stderr, "usher compare: %s\n", err.msg);
        return CLI_FAIL;
    }
    c.m.w = w;
    if (usher_sim_workload_models(w) > MAX_MODELS) {
        fprintf(stderr, "usher compare: %s: more than %d models\n", pp.workload, MAX_MODELS);
        goto out;
    }
    if (cli_sim_models_load(&c.m, "compare", pp.workload) < 0)
        goto out;
    usher_estimator_params ep = usher_estimator_default_params();
    ep.calibration = calib;
    ep.framework = framework;
    ep.cache_entries = 65536;
    if (usher_estimator_new(&ep, &c.m.e, &err) < 0) {
        fprintf(stderr, "usher compare: %s\n", err.msg);
        goto out;
    }
    const char *td = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/usher-compare-XXXXXX", td && *td ? td : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "usher compare: %s: %s\n", tmpdir, strerror(errno));
        tmpdir[0] = 0;
        goto out;
    }
    static cli_sim_replan rp;
    memset(&rp, 0, sizeof rp);
    if (sp.replan_every_s > 0) { /* every policy's run re-plans through this one */
        rp.e = c.m.e;
        rp.w = w;
        rp.workload = pp.workload;
        rp.cluster = pp.cluster;
        rp.interference_off = !interf;
        rp.max_moves = max_moves;
        rp.merge = pp.merge;
        if (cli_sim_replan_dir(&rp, "compare") < 0)
            goto out;
        sp.replan = cli_sim_replan_fn;
        sp.replan_ctx = &rp;
    }
    sp.workload = w;
    sp.profile = cli_sim_profile;
    sp.group_profile = cli_sim_group_profile;
    sp.device = cli_sim_device;
    sp.ctx = &c;
    c.bar = !quiet && isatty(STDERR_FILENO);
    c.t0 = cli_wall();
    /* the scale-1 run (index n_loads) and each --loads scale; a scale of 1 in --loads is
     * the same run, copied */
    size_t one = SIZE_MAX;
    for (size_t l = 0; l < n_loads; l++)
        if (loads[l] == 1)
            one = l;
    c.steps = (n_loads + (one == SIZE_MAX ? 1 : 0)) * n_policies;
    static char path[PATH_MAX + 64], msg[MSG];
    for (size_t l = 0; l <= n_loads; l++) {
        if (l == one)
            continue; /* copied from the scale-1 run below */
        double scale = l < n_loads ? loads[l] : 1.0;
        usher_plan_params lp = pp;
        if (scale != 1) {
            snprintf(path, sizeof path, "%s/workload-%zu.yaml", tmpdir, l);
            if (cli_sim_write_workload(pp.workload, w, NULL, scale, path, msg, sizeof msg) < 0) {
                if (c.shown >= 0)
                    fprintf(stderr, "\r%70s\r", "");
                fprintf(stderr, "usher compare: %s\n", msg);
                goto out;
            }
            lp.workload = path;
        }
        static char wl_path[PATH_MAX + 64];
        snprintf(wl_path, sizeof wl_path, "%s", lp.workload);
        lp.workload = wl_path;
        usher_sim_params lsp = sp;
        lsp.rate_scale = scale;
        for (size_t p = 0; p < n_policies; p++) {
            c.what = policies[p];
            c.scale = scale;
            draw(&c, 0);
            lp.policy = policies[p];
            static char plan_path[PATH_MAX + 64];
            snprintf(plan_path, sizeof plan_path, "%s/plan-%zu-%zu.json", tmpdir, l, p);
            plan_and_simulate(&c, c.m.e, lp, scale != 1 ? pp.workload : NULL, lsp, plan_path,
                              l == n_loads, &runs[l][p]);
            c.step++;
        }
    }
    if (one != SIZE_MAX)
        for (size_t p = 0; p < n_policies; p++) {
            runs[one][p] = runs[n_loads][p];
            runs[one][p].pl = NULL; /* owned by the scale-1 row */
            runs[one][p].r = NULL;
        }
    if (c.shown >= 0)
        fprintf(stderr, "\r%70s\r", "");
    bool any = false;
    for (size_t p = 0; p < n_policies; p++)
        any = any || runs[n_loads][p].ok;
    if (json) {
        print_json(pp.workload, pp.cluster, &sp, interf);
    } else {
        print_table(stdout, n_loads, 1.0);
        for (size_t l = 0; l < n_loads; l++) {
            if (loads[l] == 1)
                continue;
            printf("\nat x%g the workload's rates (re-planned):\n", loads[l]);
            print_table(stdout, l, loads[l]);
        }
    }
    ret = any ? CLI_OK : CLI_FAIL;
    if (html && write_html(html, pp.workload, pp.cluster, &sp, msg, sizeof msg) < 0) {
        fprintf(stderr, "usher compare: %s\n", msg);
        ret = CLI_FAIL;
    }
    if (fflush(stdout) != 0)
        ret = CLI_FAIL;
out:
    for (size_t p = 0; p < n_policies; p++) {
        usher_plan_free(runs[n_loads][p].pl);
        usher_sim_report_free(runs[n_loads][p].r);
    }
    cleanup_tmp();
    cli_sim_replan_cleanup(&rp);
    cli_sim_models_free(&c.m);
    usher_estimator_free(c.m.e);
    usher_sim_workload_free(w);
    return ret;
}
