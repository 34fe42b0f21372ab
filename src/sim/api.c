/*
 * api.c - the public simulator API (include/usher/sim.h) over the engine
 * (sim.h): the workload file, the plan file, the caller's profiles mapped to
 * the interference model's replicas (as if_replica_of maps an estimator
 * profile), the arrivals asked for made into a source (sim/workload.h), and
 * the run timed on the wall clock for the report's speed figure only (the
 * simulation itself never reads a real clock).
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/err.h"
#include "planfile/planfile.h"
#include "sim/sim.h"
#include "usher/sim.h"

#define MAX_DURATION_S 1e7 /* 115 days of arrivals */
#define MAX_RATE_SCALE 1e6

struct usher_sim_workload {
    sim_workload w;
};

struct usher_sim_report {
    sim_report *r;
};

int usher_sim_workload_load(const char *path, usher_sim_workload **out, usher_error *err)
{
    *out = NULL;
    if (!path)
        return us_err_set(err, USHER_ERR_INVALID, "usher_sim_workload_load: no path");
    usher_sim_workload *w = us_calloc(1, sizeof *w);
    if (!w)
        return us_err_set(err, USHER_ERR_NOMEM, "%s", path);
    int rc = sim_workload_read(path, &w->w, err);
    if (rc < 0) {
        us_free(w);
        return rc;
    }
    *out = w;
    return USHER_OK;
}

void usher_sim_workload_free(usher_sim_workload *w)
{
    if (!w)
        return;
    sim_workload_free(&w->w);
    us_free(w);
}

uint32_t usher_sim_workload_models(const usher_sim_workload *w) { return w ? w->w.n : 0; }

int usher_sim_workload_model(const usher_sim_workload *w, uint32_t i, usher_sim_model_info *out)
{
    if (!w || !out || i >= w->w.n)
        return USHER_ERR_INVALID;
    const sim_workload_model *m = &w->w.m[i];
    *out = (usher_sim_model_info){.name = m->name,
                                  .path = m->path,
                                  .precision = m->precision,
                                  .rate = m->rate,
                                  .slo_ms = m->slo_ms,
                                  .line = m->line,
                                  .n_dims = m->n_dims};
    return USHER_OK;
}

int usher_sim_workload_dim(const usher_sim_workload *w, uint32_t i, uint32_t k, const char **name,
                           int64_t *value)
{
    if (!w || !name || !value || i >= w->w.n || k >= w->w.m[i].n_dims)
        return USHER_ERR_INVALID;
    *name = w->w.m[i].dims[k].name;
    *value = w->w.m[i].dims[k].value;
    return USHER_OK;
}

usher_sim_params usher_sim_default_params(void)
{
    return (usher_sim_params){.duration_s = 60,
                              .seed = 1,
                              .rate_scale = 1,
                              .interference = 1,
                              .arrivals = {.kind = USHER_SIM_ARRIVALS_POISSON,
                                           .cv = 1,
                                           .period_s = 86400,
                                           .amplitude = 0.5,
                                           .zipf_s = -1},
                              .worker_start_s = USHER_SIM_WORKER_START_S,
                              .model_load_s = USHER_SIM_MODEL_LOAD_S,
                              .share_change_s = USHER_SIM_SHARE_CHANGE_S};
}

/* ---- arrivals ------------------------------------------------------------------------
 * The spec checked and turned into a source (sim/workload.h) before the run. POISSON
 * without Zipf leaves the engine its own Poisson source (the same bytes as before the
 * other kinds existed); the others are made here and handed to sim_run, which frees them.
 * A trace's or file's length becomes the run's duration when none is given. */
#define MAX_CV 100.0
#define MAX_PERIOD_S 1e7
#define MAX_ZIPF_S 10.0
#define SYNTH_FUNCTIONS 1000

static bool kind_known(usher_sim_arrivals k)
{
    return k == USHER_SIM_ARRIVALS_POISSON || k == USHER_SIM_ARRIVALS_GAMMA ||
           k == USHER_SIM_ARRIVALS_DIURNAL || k == USHER_SIM_ARRIVALS_AZURE_SYNTH ||
           k == USHER_SIM_ARRIVALS_AZURE_TRACE || k == USHER_SIM_ARRIVALS_FILE;
}

static bool is_trace(usher_sim_arrivals k)
{
    return k == USHER_SIM_ARRIVALS_AZURE_TRACE || k == USHER_SIM_ARRIVALS_FILE;
}

/* the spec's ranges, before anything is read */
static int arrivals_check(const usher_sim_params *p, usher_error *err)
{
    const usher_sim_arrival_spec *a = &p->arrivals;
    if (!kind_known(a->kind))
        return us_err_set(err, USHER_ERR_INVALID, "arrivals: unknown kind %d", (int)a->kind);
    if (a->kind == USHER_SIM_ARRIVALS_GAMMA && !(a->cv >= 0 && a->cv <= MAX_CV))
        return us_err_set(err, USHER_ERR_INVALID, "gamma arrivals: CV %g must be in [0, %g]",
                          a->cv, MAX_CV);
    if (a->kind == USHER_SIM_ARRIVALS_DIURNAL) {
        if (!(a->period_s > 0 && a->period_s <= MAX_PERIOD_S && a->period_s * 1e9 >= 1))
            return us_err_set(err, USHER_ERR_INVALID, "diurnal arrivals: period %g s must be "
                              "in (0, %g]", a->period_s, MAX_PERIOD_S);
        if (!(a->amplitude >= 0 && a->amplitude <= 1))
            return us_err_set(err, USHER_ERR_INVALID, "diurnal arrivals: amplitude %g must be "
                              "in [0, 1]", a->amplitude);
    }
    if (a->kind == USHER_SIM_ARRIVALS_AZURE_TRACE) {
        if (!a->trace || a->n_trace < 1 || a->n_trace > SIM_TRACE_MAX_FILES)
            return us_err_set(err, USHER_ERR_INVALID, "Azure trace arrivals: 1 to %d trace "
                              "files are needed", SIM_TRACE_MAX_FILES);
        for (uint32_t i = 0; i < a->n_trace; i++)
            if (!a->trace[i])
                return us_err_set(err, USHER_ERR_INVALID, "Azure trace arrivals: trace file %u "
                                  "is NULL", i);
        if (a->trace_map != USHER_SIM_MAP_STRIPE && a->trace_map != USHER_SIM_MAP_BLOCK &&
            a->trace_map != USHER_SIM_MAP_HASH)
            return us_err_set(err, USHER_ERR_INVALID, "Azure trace arrivals: unknown mapping %d",
                              (int)a->trace_map);
        if (a->trace_start_minute > 100000000 || a->trace_minutes > 100000000)
            return us_err_set(err, USHER_ERR_INVALID, "Azure trace arrivals: minutes %llu + %llu "
                              "past 10^8", (unsigned long long)a->trace_start_minute,
                              (unsigned long long)a->trace_minutes);
    }
    if (a->kind == USHER_SIM_ARRIVALS_FILE) {
        if (!a->file)
            return us_err_set(err, USHER_ERR_INVALID, "arrivals file: no file given");
        if (p->rate_scale != 1)
            return us_err_set(err, USHER_ERR_INVALID, "arrivals file %s: rate scale %g: "
                              "recorded arrivals are replayed as they are (rate scale 1)",
                              a->file, p->rate_scale);
    }
    if (a->zipf_s >= 0) {
        if (!(a->zipf_s <= MAX_ZIPF_S))
            return us_err_set(err, USHER_ERR_INVALID, "Zipf exponent %g must be in [0, %g]",
                              a->zipf_s, MAX_ZIPF_S);
        if (a->kind != USHER_SIM_ARRIVALS_POISSON && a->kind != USHER_SIM_ARRIVALS_GAMMA &&
            a->kind != USHER_SIM_ARRIVALS_DIURNAL)
            return us_err_set(err, USHER_ERR_INVALID, "Zipf rates apply to Poisson, gamma and "
                              "diurnal arrivals, not to %s",
                              a->kind == USHER_SIM_ARRIVALS_AZURE_SYNTH ? "azure-synth (its "
                              "functions have their own rates)"
                              : a->kind == USHER_SIM_ARRIVALS_AZURE_TRACE ? "a trace"
                                                                          : "an arrivals file");
    } else if (a->zipf_s != -1 && !(a->zipf_s < 0)) {
        return us_err_set(err, USHER_ERR_INVALID, "Zipf exponent %g must be in [0, %g] (or "
                          "negative: none)", a->zipf_s, MAX_ZIPF_S);
    }
    if (!is_trace(a->kind) && !(p->duration_s > 0))
        return us_err_set(err, USHER_ERR_INVALID, "duration %g s: must be in (0, %g]",
                          p->duration_s, MAX_DURATION_S);
    return USHER_OK;
}

/* The specs' rates: Zipf's split of the workload's total when asked for. */
static int arrivals_rates(const usher_sim_params *p, sim_model_spec *specs, uint32_t n,
                          usher_error *err)
{
    if (p->arrivals.zipf_s < 0 || n == 0)
        return USHER_OK;
    double total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += specs[i].rate;
    double *r = us_mallocarray(n, sizeof *r);
    if (!r)
        return us_err_set(err, USHER_ERR_NOMEM, "Zipf rates");
    int rc = sim_zipf_rates(total, n, p->arrivals.zipf_s, p->seed, r, err);
    for (uint32_t i = 0; rc >= 0 && i < n; i++)
        specs[i].rate = r[i];
    us_free(r);
    return rc;
}

/*
 * The source for a spec, or NULL (the engine's Poisson); *duration_ns is the run's
 * duration: the one asked for, or for a trace or file without one, its length.
 */
static int arrivals_source(const usher_sim_params *p, const sim_workload *w,
                           const sim_model_spec *specs, sim_source **src, uint64_t *duration_ns,
                           usher_error *err)
{
    const usher_sim_arrival_spec *a = &p->arrivals;
    uint32_t n = w->n;
    *src = NULL;
    uint64_t dur = p->duration_s > 0 ? (uint64_t)llround(p->duration_s * 1e9) : 0;
    *duration_ns = dur;
    int rc = USHER_OK;
    double *rates = NULL;
    if (a->kind == USHER_SIM_ARRIVALS_GAMMA || a->kind == USHER_SIM_ARRIVALS_DIURNAL) {
        rates = us_mallocarray(n ? n : 1, sizeof *rates);
        if (!rates)
            return us_err_set(err, USHER_ERR_NOMEM, "arrivals");
        for (uint32_t i = 0; i < n; i++)
            rates[i] = specs[i].rate * p->rate_scale;
    }
    switch (a->kind) {
    case USHER_SIM_ARRIVALS_POISSON:
        break;
    case USHER_SIM_ARRIVALS_GAMMA: {
        sim_gamma_params gp = {.rates = rates, .cv = a->cv, .n_models = n, .seed = p->seed,
                               .duration_ns = dur};
        rc = sim_source_gamma(&gp, src, err);
        break;
    }
    case USHER_SIM_ARRIVALS_DIURNAL: {
        sim_diurnal_params dp = {.rates = rates, .n_models = n, .seed = p->seed,
                                 .duration_ns = dur,
                                 .period_ns = (uint64_t)llround(a->period_s * 1e9),
                                 .amplitude = a->amplitude};
        rc = sim_source_diurnal(&dp, src, err);
        break;
    }
    case USHER_SIM_ARRIVALS_AZURE_SYNTH: {
        sim_azure_synth_params sp = sim_azure_synth_default_params();
        double total = 0;
        for (uint32_t i = 0; i < n; i++)
            total += specs[i].rate;
        sp.n_models = n;
        sp.n_functions = n > SYNTH_FUNCTIONS ? n : SYNTH_FUNCTIONS;
        sp.total_rate = total * p->rate_scale;
        sp.seed = p->seed;
        sp.duration_ns = dur;
        if (!(sp.total_rate > 0)) {
            rc = us_err_set(err, USHER_ERR_INVALID, "azure-synth arrivals: the workload's total "
                            "rate (x the rate scale) is %g: it must be above 0", sp.total_rate);
            break;
        }
        rc = sim_source_azure_synth(&sp, src, err);
        break;
    }
    case USHER_SIM_ARRIVALS_AZURE_TRACE: {
        sim_azure_trace_params tp = sim_azure_trace_default_params();
        tp.paths = a->trace;
        tp.n_paths = a->n_trace;
        tp.n_models = n;
        tp.map = a->trace_map == USHER_SIM_MAP_BLOCK  ? SIM_MAP_BLOCK
                 : a->trace_map == USHER_SIM_MAP_HASH ? SIM_MAP_HASH
                                                      : SIM_MAP_STRIPE;
        if (p->rate_scale != 1) { /* exact counts cannot be scaled: AlpaServe's Poisson replay */
            tp.arrivals = SIM_TRACE_POISSON;
            tp.rate_scale = p->rate_scale;
        }
        tp.start_minute = a->trace_start_minute;
        tp.n_minutes = a->trace_minutes;
        tp.seed = p->seed;
        sim_azure_trace_stats st;
        rc = sim_source_azure_trace(&tp, src, &st, err);
        if (rc < 0)
            break;
        uint64_t left = st.minutes > a->trace_start_minute ? st.minutes - a->trace_start_minute
                                                           : 0;
        if (a->trace_minutes > left) { /* a slice past the end: said, not cut silently */
            sim_source_free(*src);
            *src = NULL;
            rc = us_err_set(err, USHER_ERR_INVALID, "Azure trace arrivals: minutes %llu to %llu "
                            "asked for, the trace%s %s%s has %llu minutes (0 to %llu)",
                            (unsigned long long)a->trace_start_minute,
                            (unsigned long long)(a->trace_start_minute + a->trace_minutes - 1),
                            a->n_trace > 1 ? " from" : "", a->trace[0],
                            a->n_trace > 1 ? " on" : "", (unsigned long long)st.minutes,
                            (unsigned long long)(st.minutes ? st.minutes - 1 : 0));
            break;
        }
        if (!dur)
            *duration_ns = (a->trace_minutes ? a->trace_minutes : left) * 60000000000ull;
        break;
    }
    case USHER_SIM_ARRIVALS_FILE: {
        const char **names = us_mallocarray(n ? n : 1, sizeof *names);
        if (!names) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "%s", a->file);
            break;
        }
        for (uint32_t i = 0; i < n; i++)
            names[i] = w->m[i].name;
        sim_lines_params lp = {.path = a->file, .names = names, .n_models = n,
                               .names_label = w->label};
        uint64_t last = 0;
        rc = sim_source_lines(&lp, src, &last, err);
        us_free(names);
        if (rc >= 0 && !dur)
            *duration_ns = last + 1000; /* usher load: the last line + 1 us */
        break;
    }
    }
    us_free(rates);
    if (rc >= 0 && !*duration_ns) {
        sim_source_free(*src);
        *src = NULL;
        rc = us_err_set(err, USHER_ERR_INVALID, "the trace has no minutes to replay (start "
                        "minute %llu)", (unsigned long long)a->trace_start_minute);
    }
    return rc;
}

/* the arrivals in words, for the report ("gamma:4, zipf 1.2") */
static void arrivals_describe(const usher_sim_params *p, char *out, size_t cap)
{
    const usher_sim_arrival_spec *a = &p->arrivals;
    int n = 0;
    switch (a->kind) {
    case USHER_SIM_ARRIVALS_POISSON:
        n = snprintf(out, cap, "poisson");
        break;
    case USHER_SIM_ARRIVALS_GAMMA:
        n = snprintf(out, cap, "gamma:%g", a->cv);
        break;
    case USHER_SIM_ARRIVALS_DIURNAL:
        n = snprintf(out, cap, "diurnal:%g:%g", a->period_s, a->amplitude);
        break;
    case USHER_SIM_ARRIVALS_AZURE_SYNTH:
        n = snprintf(out, cap, "azure-synth");
        break;
    case USHER_SIM_ARRIVALS_AZURE_TRACE: {
        static const char *const maps[] = {"stripe", "block", "hash"};
        n = snprintf(out, cap, "trace %.80s%s, %s", a->trace[0], a->n_trace > 1 ? " ..." : "",
                     maps[a->trace_map]);
        if (n >= 0 && (size_t)n < cap && (a->trace_start_minute || a->trace_minutes))
            n += snprintf(out + n, cap - (size_t)n, ", minutes %llu-%s",
                          (unsigned long long)a->trace_start_minute,
                          a->trace_minutes ? "" : "end");
        if (n >= 0 && (size_t)n < cap && a->trace_minutes)
            n += snprintf(out + n, cap - (size_t)n, "%llu",
                          (unsigned long long)(a->trace_start_minute + a->trace_minutes - 1));
        if (n >= 0 && (size_t)n < cap && p->rate_scale != 1)
            n += snprintf(out + n, cap - (size_t)n, ", poisson replay");
        break;
    }
    case USHER_SIM_ARRIVALS_FILE:
        n = snprintf(out, cap, "file %.120s", a->file);
        break;
    }
    if (n >= 0 && (size_t)n < cap && a->zipf_s >= 0)
        snprintf(out + n, cap - (size_t)n, ", zipf %g", a->zipf_s);
}

/* rates the report cannot know up front: a model's arrivals over the duration */
static bool rate_observed(usher_sim_arrivals k)
{
    return k == USHER_SIM_ARRIVALS_AZURE_SYNTH || is_trace(k);
}

/* the caller's callbacks as the engine's */
static int profile_cb(void *ctx, uint32_t model, const char *gpu, int batch, double share_pct,
                      if_replica *out, usher_error *err)
{
    const usher_sim_params *p = ctx;
    usher_profile pr;
    memset(&pr, 0, sizeof pr);
    int rc = p->profile(p->ctx, model, gpu, batch, share_pct, &pr, err);
    if (rc < 0)
        return rc;
    rc = if_replica_of(&pr, out, err); /* fills out first, then checks what interference needs */
    return rc < 0 && p->interference ? rc : USHER_OK;
}

static int group_profile_cb(void *ctx, const pf_group *g, uint32_t group,
                            const uint32_t *members, const char *gpu, int batch,
                            double share_pct, if_replica *out, usher_error *err)
{
    const usher_sim_params *p = ctx;
    usher_profile pr;
    memset(&pr, 0, sizeof pr);
    (void)group;
    int rc = p->group_profile(p->ctx, g->name, g->kind, members, g->n_members, gpu, batch,
                              share_pct, &pr, err);
    if (rc < 0)
        return rc;
    rc = if_replica_of(&pr, out, err);
    return rc < 0 && p->interference ? rc : USHER_OK;
}

static int device_cb(void *ctx, const char *gpu, if_device *out, usher_error *err)
{
    const usher_sim_params *p = ctx;
    memset(out, 0, sizeof *out);
    snprintf(out->key, sizeof out->key, "%s", gpu);
    return p->device(p->ctx, gpu, &out->bw_gbs, &out->l2_mb, err);
}

/* ---- re-planning: the caller's callback as the engine's ------------------------------------
 * Every plan it hands back is read (pf_load) and kept until the run ends: the engine's GPUs
 * and classes point into it. */
#define MAX_COST_S 1e6
#define MAX_REPLANS 100000 /* re-plans in one run */

typedef struct replan_state {
    const usher_sim_params *p;
    pf_plan **plans;
    uint32_t n, cap;
    char running[4096];
} replan_state;

static int replan_cb(void *ctx, uint64_t now_ns, const double *rates, uint32_t n,
                     const pf_plan **out, usher_error *err)
{
    replan_state *st = ctx;
    char path[4096];
    memset(path, 0, sizeof path);
    usher_error ce = {0};
    int rc = st->p->replan(st->p->replan_ctx, (double)now_ns / 1e9, rates, n, st->running, path,
                           sizeof path, &ce);
    if (rc < 0)
        return us_err_set(err, rc, "%s", ce.msg[0] ? ce.msg : "the re-plan callback failed");
    if (!path[0])
        return USHER_OK;
    if (path[sizeof path - 1])
        return us_err_set(err, USHER_ERR_INVALID, "the re-plan callback's plan path is not "
                          "NUL-terminated within %zu bytes", sizeof path);
    if (st->n == st->cap) {
        uint32_t cap = st->cap ? 2 * st->cap : 8;
        pf_plan **pl = us_realloc(st->plans, cap * sizeof *pl);
        if (!pl)
            return us_err_set(err, USHER_ERR_NOMEM, "re-planning: %u plans", cap);
        st->plans = pl;
        st->cap = cap;
    }
    pf_plan *pl = us_calloc(1, sizeof *pl);
    if (!pl)
        return us_err_set(err, USHER_ERR_NOMEM, "re-planning: %s", path);
    if ((rc = pf_load(path, pl, err)) < 0) {
        us_free(pl);
        return rc;
    }
    st->plans[st->n++] = pl;
    snprintf(st->running, sizeof st->running, "%s", path);
    *out = pl;
    return USHER_OK;
}

static void replan_free(replan_state *st)
{
    for (uint32_t i = 0; i < st->n; i++) {
        pf_free(st->plans[i]);
        us_free(st->plans[i]);
    }
    us_free(st->plans);
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int usher_sim_run(const usher_sim_params *p, usher_sim_report **out, usher_error *err)
{
    *out = NULL;
    if (!p || !p->plan || !p->workload || !p->profile || (p->interference && !p->device))
        return us_err_set(err, USHER_ERR_INVALID, "usher_sim_run: a plan, a workload, a profile "
                          "callback%s are needed", p && p->interference ? " and a device callback"
                                                                        : "");
    if (!(p->duration_s >= 0 && p->duration_s <= MAX_DURATION_S))
        return us_err_set(err, USHER_ERR_INVALID, "duration %g s: must be in (0, %g]",
                          p->duration_s, MAX_DURATION_S);
    int rc = arrivals_check(p, err);
    if (rc < 0)
        return rc;
    if (!(p->rate_scale >= 0 && p->rate_scale <= MAX_RATE_SCALE))
        return us_err_set(err, USHER_ERR_INVALID, "rate scale %g: must be in [0, %g]",
                          p->rate_scale, MAX_RATE_SCALE);
    if (!(p->interval_s == 0 ||
          (p->interval_s >= 1e-3 && (p->duration_s == 0 || p->interval_s <= p->duration_s))))
        return us_err_set(err, USHER_ERR_INVALID, "interval %g s: must be 0 (none) or in "
                          "[0.001, the duration %g]", p->interval_s, p->duration_s);
    if (!(p->replan_every_s == 0 ||
          (p->replan_every_s >= 1e-3 && p->replan_every_s <= MAX_DURATION_S)))
        return us_err_set(err, USHER_ERR_INVALID, "re-plan interval %g s: must be 0 (none) or "
                          "in [0.001, %g]", p->replan_every_s, MAX_DURATION_S);
    if (p->replan_every_s > 0 && !p->replan)
        return us_err_set(err, USHER_ERR_INVALID, "re-planning every %g s needs a re-plan "
                          "callback", p->replan_every_s);
    if (!(p->worker_start_s >= 0 && p->worker_start_s <= MAX_COST_S) ||
        !(p->model_load_s >= 0 && p->model_load_s <= MAX_COST_S) ||
        !(p->share_change_s >= 0 && p->share_change_s <= MAX_COST_S))
        return us_err_set(err, USHER_ERR_INVALID, "move costs (worker start %g s, model load %g "
                          "s, share change %g s): each must be in [0, %g]", p->worker_start_s,
                          p->model_load_s, p->share_change_s, MAX_COST_S);
    if (!(p->service_cv >= 0 && p->service_cv <= 10))
        return us_err_set(err, USHER_ERR_INVALID, "service-time CV %g: must be in [0, 10]",
                          p->service_cv);
    const sim_workload *w = &p->workload->w;
    sim_model_spec *specs = us_calloc(w->n ? w->n : 1, sizeof *specs);
    if (!specs)
        return us_err_set(err, USHER_ERR_NOMEM, "%s", w->label);
    for (uint32_t i = 0; i < w->n; i++)
        specs[i] = (sim_model_spec){.name = w->m[i].name, .rate = w->m[i].rate,
                                    .slo_ms = w->m[i].slo_ms, .line = w->m[i].line};
    sim_source *src = NULL;
    uint64_t duration_ns = 0;
    if ((rc = arrivals_rates(p, specs, w->n, err)) < 0 ||
        (rc = arrivals_source(p, w, specs, &src, &duration_ns, err)) < 0) {
        us_free(specs);
        return rc;
    }
    if (p->interval_s > 0 && (uint64_t)llround(p->interval_s * 1e9) > duration_ns) {
        sim_source_free(src);
        us_free(specs);
        return us_err_set(err, USHER_ERR_INVALID, "interval %g s: longer than the duration "
                          "%g s", p->interval_s, (double)duration_ns / 1e9);
    }
    if (p->replan_every_s > 0 &&
        (double)duration_ns / 1e9 / p->replan_every_s > MAX_REPLANS) {
        sim_source_free(src);
        us_free(specs);
        return us_err_set(err, USHER_ERR_LIMIT, "re-planning every %g s over %g s: more than "
                          "%d re-plans (each plan is kept for the run): re-plan less often",
                          p->replan_every_s, (double)duration_ns / 1e9, MAX_REPLANS);
    }
    pf_plan plan;
    rc = pf_load(p->plan, &plan, err);
    if (rc < 0) {
        sim_source_free(src);
        us_free(specs);
        return rc;
    }
    sim_params sp = sim_default_params();
    sp.plan = &plan;
    sp.models = specs;
    sp.n_models = w->n;
    sp.plan_label = p->plan;
    sp.workload_label = w->label;
    sp.source = src; /* sim_run frees it on every path */
    sp.duration_ns = duration_ns;
    sp.seed = p->seed;
    sp.rate_scale = p->rate_scale;
    sp.interference = p->interference != 0;
    sp.interval_ns = (uint64_t)llround(p->interval_s * 1e9);
    sp.profile = profile_cb;
    sp.group_profile = p->group_profile ? group_profile_cb : NULL;
    sp.device = device_cb;
    sp.ctx = (void *)(uintptr_t)p; /* the callbacks only read it */
    sp.progress = p->progress;
    sp.progress_ctx = p->progress_ctx;
    sp.service_cv = p->service_cv;
    replan_state rs = {.p = p};
    snprintf(rs.running, sizeof rs.running, "%s", p->plan);
    if (p->replan_every_s > 0) {
        sp.replan_every_ns = (uint64_t)llround(p->replan_every_s * 1e9);
        sp.replan = replan_cb;
        sp.replan_ctx = &rs;
        sp.start_ns = (uint64_t)llround(p->worker_start_s * 1e9);
        sp.load_ns = (uint64_t)llround(p->model_load_s * 1e9);
        sp.share_ns = (uint64_t)llround(p->share_change_s * 1e9);
    }
    usher_sim_report *r = us_calloc(1, sizeof *r);
    if (!r) {
        sim_source_free(src);
        rc = us_err_set(err, USHER_ERR_NOMEM, "simulator: report");
        goto out;
    }
    double t0 = wall_now();
    rc = sim_run(&sp, &r->r, err);
    if (rc < 0) {
        us_free(r);
        goto out;
    }
    r->r->wall_s = wall_now() - t0;
    arrivals_describe(p, r->r->arrivals, sizeof r->r->arrivals);
    if (rate_observed(p->arrivals.kind))
        for (uint32_t i = 0; i < r->r->n_models; i++)
            r->r->m[i].rate = r->r->duration_s > 0
                                  ? (double)r->r->m[i].requests / r->r->duration_s
                                  : 0;
    *out = r;
out:
    replan_free(&rs);
    pf_free(&plan);
    us_free(specs);
    return rc;
}

void usher_sim_report_free(usher_sim_report *r)
{
    if (!r)
        return;
    sim_report_free(r->r);
    us_free(r);
}

int usher_sim_report_summary(const usher_sim_report *r, usher_sim_summary *out)
{
    if (!r || !out)
        return USHER_ERR_INVALID;
    const sim_report *x = r->r;
    *out = (usher_sim_summary){.requests = x->requests,
                               .served = x->served,
                               .late = x->late,
                               .rejected = x->rejected,
                               .replans = x->n_replans,
                               .replan_lost = x->replan_lost,
                               .replan_late = x->replan_late,
                               .goodput = x->goodput,
                               .slo_attainment_pct = x->attainment_pct,
                               .duration_s = x->duration_s,
                               .gpus_used = x->gpus_used,
                               .cost_per_hour = x->cost_per_hour,
                               .wall_s = x->wall_s,
                               .arrivals = x->arrivals};
    return USHER_OK;
}

int usher_sim_report_model(const usher_sim_report *r, uint32_t i, usher_sim_model_summary *out)
{
    if (!r || !out || i >= r->r->n_models)
        return USHER_ERR_INVALID;
    const sim_model_report *m = &r->r->m[i];
    *out = (usher_sim_model_summary){.name = m->name,
                                     .rate = m->rate,
                                     .requests = m->requests,
                                     .served = m->served,
                                     .late = m->late,
                                     .rejected = m->rejected,
                                     .goodput = m->goodput,
                                     .slo_attainment_pct = m->attainment_pct,
                                     .mean_ms = m->mean_ms,
                                     .p50_ms = m->p50_ms,
                                     .p99_ms = m->p99_ms,
                                     .p999_ms = m->p999_ms,
                                     .group = m->group[0] ? m->group : NULL};
    return USHER_OK;
}

int usher_sim_report_json(const usher_sim_report *r, char **out, usher_error *err)
{
    *out = NULL;
    if (!r)
        return us_err_set(err, USHER_ERR_INVALID, "usher_sim_report_json: no report");
    us_buf b;
    us_buf_init(&b, (size_t)1 << 30);
    int rc = sim_report_json(r->r, false, &b);
    if (rc < 0) {
        us_buf_free(&b);
        return us_err_set(err, rc, "simulator: the JSON report");
    }
    *out = b.data; /* us_malloc'd: usher_free releases it */
    return USHER_OK;
}

void usher_sim_report_print(const usher_sim_report *r, FILE *f)
{
    if (r)
        sim_report_print(r->r, f);
}

/* the engine's report behind a public one (report_api.c: the plots and the page) */
const sim_report *sim_report_of(const usher_sim_report *r)
{
    return r ? r->r : NULL;
}
