/*
 * sim_models.c - what `usher simulate` and `usher compare` share as front
 * ends of the simulator: the workload's model files loaded once (a file named
 * by several models is loaded once), the profile and device callbacks over
 * the public estimator, the wall clock and the terminal's progress bar; a copy
 * of the workload at other rates; and re-planning in the loop (the simulator's
 * re-plan callback over the public planner, as `usher plan --replan` re-plans);
 * and the merged profile of a plan's merge group (below, cli_sim_group_profile).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "usher/merge.h"
#include "usher/plan.h"

void cli_say(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

int cli_sim_models_load(cli_sim_models *m, const char *verb, const char *wl)
{
    uint32_t n = usher_sim_workload_models(m->w);
    for (uint32_t i = 0; i < n; i++) {
        usher_sim_model_info mi;
        usher_sim_workload_model(m->w, i, &mi);
        m->precision[i] = usher_precision_parse(mi.precision);
        for (uint32_t j = 0; j < i && !m->models[i]; j++) {
            usher_sim_model_info mj;
            usher_sim_workload_model(m->w, j, &mj);
            if (strcmp(mi.path, mj.path) == 0)
                m->models[i] = m->models[j];
        }
        if (m->models[i])
            continue;
        usher_error le;
        if (usher_model_load(mi.path, NULL, &m->models[i], &le) < 0) {
            fprintf(stderr, "usher %s: %s:%zu: field 'models[%u].model': %s\n", verb, wl, mi.line,
                    i, le.msg);
            return le.code;
        }
    }
    return USHER_OK;
}

/* ---- merge groups: the merged graph of a group's members, loaded once per run of the verb
 * (static: the front end keeps no heap), keyed by the members' workload indices ---------- */
#define MAX_GROUPS 64
static struct merged {
    uint32_t mem[16], n;
    char label[16][64]; /* each member's in the merged graph's names */
    usher_model *model;
} merged[MAX_GROUPS];
static uint32_t n_merged;

static void merged_free(void)
{
    for (uint32_t i = 0; i < n_merged; i++)
        usher_model_free(merged[i].model);
    n_merged = 0;
}

/* The members merged as the planner merges a group's candidates (plan/groups.c merge_cand:
 * usher_merge_models with the default parameters, written to a temporary file) and the file
 * loaded through the normal import: the graph the planner profiled. */
static int merged_model(const cli_sim_models *m, const char *group, const uint32_t *mem,
                        uint32_t n, usher_model **out, usher_error *err)
{
    for (uint32_t i = 0; i < n_merged; i++)
        if (merged[i].n == n && memcmp(merged[i].mem, mem, n * sizeof *mem) == 0) {
            *out = merged[i].model;
            return USHER_OK;
        }
    if (n_merged == MAX_GROUPS || n > 16) {
        cli_say(err->msg, sizeof err->msg, "merge group '%s': more than %d merged groups, or "
                "more than 16 members", group, MAX_GROUPS);
        return err->code = USHER_ERR_LIMIT;
    }
    const char *paths[16];
    for (uint32_t j = 0; j < n; j++) {
        usher_sim_model_info mi;
        if (usher_sim_workload_model(m->w, mem[j], &mi) < 0) {
            cli_say(err->msg, sizeof err->msg, "merge group '%s': member %u of %u is not in the "
                    "workload", group, mem[j], usher_sim_workload_models(m->w));
            return err->code = USHER_ERR_INVALID;
        }
        paths[j] = mi.path;
    }
    char path[PATH_MAX];
    const char *td = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/usher-sim-merge-%d-%u.onnx", td && *td ? td : "/tmp",
             (int)getpid(), n_merged);
    usher_merge_params mp = usher_merge_default_params();
    usher_merge *mg = NULL;
    usher_error me = {0};
    int rc = usher_merge_models(paths, n, &mp, &mg, &me);
    for (uint32_t j = 0; rc >= 0 && j < n; j++)
        snprintf(merged[n_merged].label[j], sizeof merged[n_merged].label[j], "%s",
                 usher_merge_label(mg, j));
    if (rc >= 0)
        rc = usher_merge_write(mg, path, &me);
    usher_merge_free(mg);
    usher_model *um = NULL;
    if (rc >= 0) {
        rc = usher_model_load(path, NULL, &um, &me);
        unlink(path);
    }
    if (rc < 0) {
        cli_say(err->msg, sizeof err->msg, "merge group '%s': its members do not merge: %s",
                group, me.msg);
        return err->code = rc;
    }
    memcpy(merged[n_merged].mem, mem, n * sizeof *mem);
    merged[n_merged].n = n;
    merged[n_merged++].model = um;
    *out = um;
    return USHER_OK;
}

/* model i's workload.yaml dims appended to b[*n] (at most 64) as the planner binds them (a
 * dim given as batch takes the batch). With mm (a merge group's graph; label: model i's in
 * it) each is renamed there as plan/groups.c does: model i's dim at axis a of input X is
 * input <label>/X's dim at axis a. */
static int bind_dims(const cli_sim_models *m, uint32_t i, int64_t batch, const usher_model *mm,
                     const char *label, usher_dim_binding *b, size_t *n, usher_error *err)
{
    usher_sim_model_info mi;
    if (usher_sim_workload_model(m->w, i, &mi) < 0)
        return USHER_OK;
    for (uint32_t k = 0; k < mi.n_dims; k++) {
        const char *name;
        int64_t v;
        usher_sim_workload_dim(m->w, i, k, &name, &v);
        if (*n == 64) {
            cli_say(err->msg, sizeof err->msg, "more than 64 dims bound");
            return err->code = USHER_ERR_LIMIT;
        }
        if (mm) {
            const char *got = NULL;
            if (usher_merge_member_dim(m->models[i], label, mm, name, &got) < 0) {
                cli_say(err->msg, sizeof err->msg, "dim '%.64s' of '%s' has no counterpart in "
                        "the merged graph", name, mi.name);
                return err->code = USHER_ERR_NOT_FOUND;
            }
            name = got;
        }
        b[(*n)++] = (usher_dim_binding){.name = name, .value = v ? v : batch};
    }
    return USHER_OK;
}

int cli_sim_group_profile(void *ctx, const char *group, const char *kind, const uint32_t *members,
                          uint32_t n_members, const char *gpu, int64_t batch, double share_pct,
                          usher_profile *out, usher_error *err)
{
    const cli_sim_models *m = ctx;
    usher_model *um = NULL;
    int rc = merged_model(m, group, members, n_members, &um, err);
    if (rc < 0)
        return rc;
    /* the first member's precision (plan/groups.c: the group's model takes it); the
     * estimator binds the leading dynamic dim of every input: batch rows of each member */
    usher_estimate_params ep = usher_estimate_default_params();
    ep.gpu = gpu;
    ep.batch = batch;
    ep.share_pct = share_pct;
    ep.precision = (usher_precision)m->precision[members[0]];
    (void)kind;
    /* and the members' workload.yaml dims under the merged graph's names */
    const struct merged *g = NULL;
    for (uint32_t i = 0; i < n_merged && !g; i++)
        if (merged[i].model == um)
            g = &merged[i];
    usher_dim_binding b[64];
    size_t nb = 0;
    for (uint32_t j = 0; g && j < n_members; j++)
        if ((rc = bind_dims(m, members[j], batch, um, g->label[j], b, &nb, err)) < 0)
            return rc;
    ep.dims = nb ? b : NULL;
    ep.n_dims = nb;
    return usher_estimate(m->e, um, &ep, out, err);
}

void cli_sim_models_free(cli_sim_models *m)
{
    merged_free();
    uint32_t n = m->w ? usher_sim_workload_models(m->w) : 0;
    for (uint32_t i = 0; m->models && i < n; i++) {
        bool shared = false;
        for (uint32_t j = i + 1; j < n && !shared; j++)
            shared = m->models[j] == m->models[i];
        if (!shared) /* the last holder frees it */
            usher_model_free(m->models[i]);
    }
}

int cli_sim_profile(void *ctx, uint32_t model, const char *gpu, int64_t batch, double share_pct,
                    usher_profile *out, usher_error *err)
{
    const cli_sim_models *m = ctx;
    usher_estimate_params ep = usher_estimate_default_params();
    ep.gpu = gpu;
    ep.batch = batch;
    ep.share_pct = share_pct;
    ep.precision = (usher_precision)m->precision[model];
    usher_dim_binding b[64]; /* workload.yaml dims, as the planner binds them */
    size_t nb = 0;
    int rc = bind_dims(m, model, batch, NULL, NULL, b, &nb, err);
    if (rc < 0)
        return rc;
    ep.dims = nb ? b : NULL;
    ep.n_dims = nb;
    return usher_estimate(m->e, m->models[model], &ep, out, err);
}

int cli_sim_device(void *ctx, const char *gpu, double *bw, double *l2, usher_error *err)
{
    return usher_interfere_device(((const cli_sim_models *)ctx)->e, gpu, bw, l2, err);
}

double cli_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bool cli_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

void cli_progress_bar(const char *label, int pct, int width, const char *suffix)
{
    char bar[64];
    if (width > (int)sizeof bar - 1)
        width = (int)sizeof bar - 1;
    int n = pct * width / 100;
    for (int i = 0; i < width; i++)
        bar[i] = i < n ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r%s [%s] %3d%%%s", label, bar, pct, suffix ? suffix : "");
    fflush(stderr);
}

/* ---- a copy of the workload at other rates: the same file with every rate replaced (times
 * the scale, or the rates given) and every model path absolute (the copy lives elsewhere);
 * checked by reading it back ---------------------------------------------------------------- */

/* key at the start of a line (after spaces and an optional "- "): the value's start, or NULL */
static char *value_of(char *line, const char *key)
{
    char *p = line;
    while (*p == ' ')
        p++;
    if (p[0] == '-' && p[1] == ' ') {
        p += 2;
        while (*p == ' ')
            p++;
    }
    size_t k = strlen(key);
    if (strncmp(p, key, k) != 0 || p[k] != ':' || (p[k + 1] != ' ' && p[k + 1] != '\t'))
        return NULL;
    return p + k + 1;
}

static bool yaml_quote(const char *s, char *out, size_t n)
{
    size_t o = 0;
    out[o++] = '"';
    for (; *s; s++) {
        if (o + 4 >= n)
            return false;
        if (*s == '"' || *s == '\\')
            out[o++] = '\\';
        out[o++] = *s;
    }
    out[o++] = '"';
    out[o] = 0;
    return true;
}

/* model i's rate in the copy */
static double copy_rate(const usher_sim_workload *w, const double *rates, double scale,
                        uint32_t i)
{
    usher_sim_model_info mi;
    usher_sim_workload_model(w, i, &mi);
    if (!rates)
        return mi.rate * scale;
    /* a model that had no arrivals keeps a token rate: the planner still places it */
    return rates[i] > 0 ? rates[i] : mi.rate * 1e-3;
}

int cli_sim_write_workload(const char *wl, const usher_sim_workload *w, const double *rates,
                           double scale, const char *path, char *msg, size_t n)
{
    static char line[8192], abs_path[PATH_MAX], quoted[2 * PATH_MAX + 8];
    FILE *in = fopen(wl, "r"), *out = in ? fopen(path, "w") : NULL;
    if (!in || !out) {
        cli_say(msg, n, "%s: %s", in ? path : wl, strerror(errno));
        if (in)
            fclose(in);
        return -1;
    }
    uint32_t models = usher_sim_workload_models(w), n_rate = 0, n_model = 0;
    size_t lineno = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, in)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            cli_say(msg, n, "%s:%zu: a line longer than %zu bytes", wl, lineno,
                     sizeof line - 2);
            rc = -1;
            break;
        }
        char *v;
        if ((v = value_of(line, "rate")) != NULL && n_rate < models) {
            double rate = copy_rate(w, rates, scale, n_rate++);
            char *comment = strchr(v, '#');
            fprintf(out, "%.*s %.17g%s%s", (int)(v - line), line, rate,
                    comment ? "  " : "\n", comment ? comment : "");
        } else if ((v = value_of(line, "model")) != NULL && n_model < models) {
            usher_sim_model_info mi;
            usher_sim_workload_model(w, n_model++, &mi);
            if (!realpath(mi.path, abs_path) || !yaml_quote(abs_path, quoted, sizeof quoted)) {
                cli_say(msg, n, "%s: %s", mi.path, strerror(errno ? errno : ENAMETOOLONG));
                rc = -1;
                break;
            }
            char *comment = strchr(v, '#');
            fprintf(out, "%.*s %s%s%s", (int)(v - line), line, quoted, comment ? "  " : "\n",
                    comment ? comment : "");
        } else {
            fputs(line, out);
        }
    }
    fclose(in);
    if (fclose(out) != 0 && rc == 0) {
        cli_say(msg, n, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc < 0)
        return rc;
    /* read back: the same models, paths, SLOs, and the rates scaled */
    usher_sim_workload *s;
    usher_error err;
    if (usher_sim_workload_load(path, &s, &err) < 0) {
        cli_say(msg, n, "cannot change the rates of %s (block-style 'rate:' and 'model:' "
                         "lines are needed): %s", wl, err.msg);
        return -1;
    }
    bool same = usher_sim_workload_models(s) == models;
    for (uint32_t i = 0; same && i < models; i++) {
        usher_sim_model_info a, b;
        usher_sim_workload_model(w, i, &a);
        usher_sim_workload_model(s, i, &b);
        double want = copy_rate(w, rates, scale, i);
        same = strcmp(a.name, b.name) == 0 && a.slo_ms == b.slo_ms &&
               fabs(b.rate - want) <= 1e-9 * want + 1e-12;
    }
    usher_sim_workload_free(s);
    if (!same) {
        cli_say(msg, n, "cannot change the rates of %s: its copy does not read back the same "
                        "(block-style 'rate:' and 'model:' lines are needed)", wl);
        return -1;
    }
    return 0;
}


/* ---- re-planning in the loop ---------------------------------------------------------- */

int cli_sim_replan_dir(cli_sim_replan *rp, const char *verb)
{
    const char *td = getenv("TMPDIR");
    snprintf(rp->dir, sizeof rp->dir, "%s/usher-replan-XXXXXX", td && *td ? td : "/tmp");
    if (!mkdtemp(rp->dir)) {
        fprintf(stderr, "usher %s: %s: %s\n", verb, rp->dir, strerror(errno));
        rp->dir[0] = 0;
        return -1;
    }
    return 0;
}

void cli_sim_replan_cleanup(cli_sim_replan *rp)
{
    if (!rp->dir[0])
        return;
    char path[PATH_MAX + 64];
    static const char *const names[] = {"workload.yaml", "plan-0.json", "plan-1.json"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", rp->dir, names[i]);
        unlink(path);
    }
    rmdir(rp->dir);
    rp->dir[0] = 0;
}

__attribute__((format(printf, 3, 4))) static int rp_err(usher_error *err, int code,
                                                         const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* the workload at the observed rates, re-planned from the running plan (fewest moves) */
int cli_sim_replan_fn(void *ctx, double t_s, const double *rates, uint32_t n, const char *running,
                      char *new_plan, size_t cap, usher_error *err)
{
    cli_sim_replan *rp = ctx;
    static char wl[PATH_MAX + 64], plan[PATH_MAX + 64], msg[512];
    if (n != usher_sim_workload_models(rp->w))
        return rp_err(err, USHER_ERR_INVALID, "re-plan: %u rates for %u models", n,
                               usher_sim_workload_models(rp->w));
    snprintf(wl, sizeof wl, "%s/workload.yaml", rp->dir);
    if (cli_sim_write_workload(rp->workload, rp->w, rates, 1, wl, msg, sizeof msg) < 0)
        return rp_err(err, USHER_ERR_IO, "%s", msg);
    usher_plan_params pp = usher_plan_default_params();
    pp.workload = wl;
    pp.cluster = rp->cluster;
    pp.running = running;
    pp.interference_off = rp->interference_off;
    pp.max_moves = rp->max_moves;
    pp.merge = rp->merge; /* auto by default: the running plan's merge groups are kept (the
                             simulator runs the groups it started with, docs/simulator.md) */
    usher_plan *pl = NULL;
    usher_error pe = {0};
    if (usher_plan_make(rp->e, &pp, &pl, &pe) < 0) {
        /* the copy's errors name the original file (the lines are the same) */
        const char *at = strstr(pe.msg, wl);
        if (at)
            return rp_err(err, pe.code, "%.*s%s%s", (int)(at - pe.msg), pe.msg,
                                   rp->workload, at + strlen(wl));
        return rp_err(err, pe.code, "%s", pe.msg);
    }
    /* two files in turn: the running plan's and the next one's */
    snprintf(plan, sizeof plan, "%s/plan-%u.json", rp->dir, rp->calls++ % 2);
    int rc = usher_plan_write_json(pl, plan, err);
    usher_plan_free(pl);
    if (rc < 0)
        return rc;
    if ((size_t)snprintf(new_plan, cap, "%s", plan) >= cap)
        return rp_err(err, USHER_ERR_LIMIT, "re-plan: the path %s is too long", plan);
    (void)t_s;
    return USHER_OK;
}

/* ---- the arrivals' options (usher simulate and usher compare) ------------------------- */
/* --arrivals KIND; false with the message printed */
static bool parse_arrivals(const char *verb, const char *v, usher_sim_arrival_spec *a)
{
    char *end;
    if (strcmp(v, "poisson") == 0) {
        a->kind = USHER_SIM_ARRIVALS_POISSON;
    } else if (strcmp(v, "azure-synth") == 0) {
        a->kind = USHER_SIM_ARRIVALS_AZURE_SYNTH;
    } else if (strncmp(v, "gamma:", 6) == 0) {
        a->kind = USHER_SIM_ARRIVALS_GAMMA;
        if (!cli_parse_double(v + 6, 0, 100, &a->cv)) {
            fprintf(stderr, "usher %s: --arrivals %s: gamma:CV takes a coefficient of "
                            "variation from 0 to 100 (gamma:4)\n", verb, v);
            return false;
        }
    } else if (strncmp(v, "diurnal:", 8) == 0) {
        a->kind = USHER_SIM_ARRIVALS_DIURNAL;
        a->period_s = strtod(v + 8, &end);
        bool ok = end != v + 8 && *end == ':' && a->period_s > 0 && a->period_s <= 1e7 &&
                  cli_parse_double(end + 1, 0, 1, &a->amplitude);
        if (!ok) {
            fprintf(stderr, "usher %s: --arrivals %s: diurnal:PERIOD_S:AMPLITUDE takes a "
                            "period in seconds (0 to 1e7] and an amplitude from 0 to 1 "
                            "(diurnal:86400:0.5)\n", verb, v);
            return false;
        }
    } else {
        fprintf(stderr, "usher %s: --arrivals %s: expected poisson, gamma:CV, "
                        "diurnal:PERIOD_S:AMPLITUDE or azure-synth\n", verb, v);
        return false;
    }
    return true;
}

/* --trace-minutes A:B, 0 <= A < B */
static bool parse_minutes(const char *v, uint64_t *start, uint64_t *n)
{
    char a[32];
    const char *colon = strchr(v, ':');
    int64_t lo, hi;
    if (!colon || (size_t)(colon - v) >= sizeof a)
        return false;
    memcpy(a, v, (size_t)(colon - v));
    a[colon - v] = 0;
    if (!cli_parse_i64(a, 0, 100000000, &lo) || !cli_parse_i64(colon + 1, 1, 100000000, &hi) ||
        hi <= lo)
        return false;
    *start = (uint64_t)lo;
    *n = (uint64_t)(hi - lo);
    return true;
}


#define MAX_TRACES 64 /* the importer's SIM_TRACE_MAX_FILES */

int cli_sim_run_option(const char *verb, int argc, char **argv, int *i, usher_sim_params *p,
                       uint32_t *max_moves)
{
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!v)
        return 0;
    if (strcmp(a, "--replan-every") == 0) {
        if (!cli_parse_double(v, 1e-3, 1e7, &p->replan_every_s)) {
            fprintf(stderr, "usher %s: --replan-every is seconds, 0.001 to 1e7\n", verb);
            return -1;
        }
    } else if (strcmp(a, "--max-moves") == 0) {
        int64_t mm;
        if (!cli_parse_i64(v, 0, 1000000, &mm)) {
            fprintf(stderr, "usher %s: --max-moves is a count, 0 to 1000000\n", verb);
            return -1;
        }
        *max_moves = (uint32_t)mm;
    } else if (strcmp(a, "--service-cv") == 0) {
        if (!cli_parse_double(v, 0, 10, &p->service_cv)) {
            fprintf(stderr, "usher %s: --service-cv is a coefficient of variation, 0 to 10\n",
                    verb);
            return -1;
        }
    } else if (strcmp(a, "--worker-start") == 0 || strcmp(a, "--model-load") == 0 ||
               strcmp(a, "--share-change") == 0) {
        double *x = a[2] == 'w' ? &p->worker_start_s : a[2] == 'm' ? &p->model_load_s
                                                                    : &p->share_change_s;
        if (!cli_parse_double(v, 0, 1e6, x)) {
            fprintf(stderr, "usher %s: %s is seconds, 0 to 1e6\n", verb, a);
            return -1;
        }
    } else {
        return 0;
    }
    (*i)++;
    return 1;
}

int cli_sim_arrival_option(const char *verb, int argc, char **argv, int *i,
                           usher_sim_arrival_spec *a, cli_sim_arrivals *st)
{
    const char *o = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!v)
        return 0;
    if (strcmp(o, "--arrivals") == 0) {
        if (!parse_arrivals(verb, v, a))
            return -1;
        st->given = true;
    } else if (strcmp(o, "--zipf") == 0) {
        if (!cli_parse_double(v, 0, 10, &a->zipf_s)) {
            fprintf(stderr, "usher %s: --zipf is an exponent from 0 to 10\n", verb);
            return -1;
        }
    } else if (strcmp(o, "--trace") == 0) {
        if (st->n_traces == MAX_TRACES) {
            fprintf(stderr, "usher %s: at most %d --trace files\n", verb, MAX_TRACES);
            return -1;
        }
        st->traces[st->n_traces++] = v;
    } else if (strcmp(o, "--trace-map") == 0) {
        if (strcmp(v, "stripe") == 0) {
            a->trace_map = USHER_SIM_MAP_STRIPE;
        } else if (strcmp(v, "block") == 0) {
            a->trace_map = USHER_SIM_MAP_BLOCK;
        } else if (strcmp(v, "hash") == 0) {
            a->trace_map = USHER_SIM_MAP_HASH;
        } else {
            fprintf(stderr, "usher %s: --trace-map %s: expected stripe, block or hash\n", verb,
                    v);
            return -1;
        }
        st->map_given = true;
    } else if (strcmp(o, "--trace-minutes") == 0) {
        if (!parse_minutes(v, &a->trace_start_minute, &a->trace_minutes)) {
            fprintf(stderr, "usher %s: --trace-minutes %s: expected A:B, minutes from 0 with "
                            "A < B (0:60: the first hour)\n", verb, v);
            return -1;
        }
        st->minutes_given = true;
    } else if (strcmp(o, "--arrivals-file") == 0) {
        a->file = v;
    } else {
        return 0;
    }
    (*i)++;
    return 1;
}

bool cli_sim_arrivals_finish(const char *verb, cli_sim_arrivals *st, usher_sim_params *p,
                             bool duration_given)
{
    /* one source of arrivals */
    int sources = (st->given || p->arrivals.zipf_s >= 0) + (st->n_traces > 0) +
                  (p->arrivals.file != NULL);
    if (sources > 1) {
        fprintf(stderr, "usher %s: --arrivals/--zipf, --trace and --arrivals-file are "
                        "different sources of arrivals: give one\n", verb);
        return false;
    }
    if ((st->map_given || st->minutes_given) && st->n_traces == 0) {
        fprintf(stderr, "usher %s: --trace-map and --trace-minutes go with --trace\n", verb);
        return false;
    }
    if (st->n_traces > 0) {
        p->arrivals.kind = USHER_SIM_ARRIVALS_AZURE_TRACE;
        p->arrivals.trace = st->traces;
        p->arrivals.n_trace = st->n_traces;
    } else if (p->arrivals.file) {
        p->arrivals.kind = USHER_SIM_ARRIVALS_FILE;
        if (p->rate_scale != 1) {
            fprintf(stderr, "usher %s: --rate-scale: recorded arrivals (--arrivals-file) "
                            "are replayed as they are\n", verb);
            return false;
        }
    }
    if (p->arrivals.zipf_s >= 0 && p->arrivals.kind == USHER_SIM_ARRIVALS_AZURE_SYNTH) {
        fprintf(stderr, "usher %s: --zipf goes with poisson, gamma or diurnal arrivals "
                        "(azure-synth functions have their own rates)\n", verb);
        return false;
    }
    if ((st->n_traces > 0 || p->arrivals.file) && !duration_given)
        p->duration_s = 0; /* the trace's length */
    return true;
}
