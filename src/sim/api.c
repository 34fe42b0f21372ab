/*
 * api.c - the public simulator API (include/usher/sim.h) over the engine
 * (sim.h): the workload file, the plan file, the caller's profiles mapped to
 * the interference model's replicas (as if_replica_of maps an estimator
 * profile), and the run timed on the wall clock for the report's speed
 * figure only (the simulation itself never reads a real clock).
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
                                  .line = m->line};
    return USHER_OK;
}

usher_sim_params usher_sim_default_params(void)
{
    return (usher_sim_params){.duration_s = 60, .seed = 1, .rate_scale = 1, .interference = 1};
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

static int device_cb(void *ctx, const char *gpu, if_device *out, usher_error *err)
{
    const usher_sim_params *p = ctx;
    memset(out, 0, sizeof *out);
    snprintf(out->key, sizeof out->key, "%s", gpu);
    return p->device(p->ctx, gpu, &out->bw_gbs, &out->l2_mb, err);
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
    if (!(p->duration_s > 0 && p->duration_s <= MAX_DURATION_S))
        return us_err_set(err, USHER_ERR_INVALID, "duration %g s: must be in (0, %g]",
                          p->duration_s, MAX_DURATION_S);
    if (!(p->rate_scale >= 0 && p->rate_scale <= MAX_RATE_SCALE))
        return us_err_set(err, USHER_ERR_INVALID, "rate scale %g: must be in [0, %g]",
                          p->rate_scale, MAX_RATE_SCALE);
    if (!(p->interval_s == 0 || (p->interval_s >= 1e-3 && p->interval_s <= p->duration_s)))
        return us_err_set(err, USHER_ERR_INVALID, "interval %g s: must be 0 (none) or in "
                          "[0.001, the duration %g]", p->interval_s, p->duration_s);
    const sim_workload *w = &p->workload->w;
    sim_model_spec *specs = us_calloc(w->n ? w->n : 1, sizeof *specs);
    if (!specs)
        return us_err_set(err, USHER_ERR_NOMEM, "%s", w->label);
    for (uint32_t i = 0; i < w->n; i++)
        specs[i] = (sim_model_spec){.name = w->m[i].name, .rate = w->m[i].rate,
                                    .slo_ms = w->m[i].slo_ms, .line = w->m[i].line};
    pf_plan plan;
    int rc = pf_load(p->plan, &plan, err);
    if (rc < 0) {
        us_free(specs);
        return rc;
    }
    sim_params sp = sim_default_params();
    sp.plan = &plan;
    sp.models = specs;
    sp.n_models = w->n;
    sp.plan_label = p->plan;
    sp.workload_label = w->label;
    sp.duration_ns = (uint64_t)llround(p->duration_s * 1e9);
    sp.seed = p->seed;
    sp.rate_scale = p->rate_scale;
    sp.interference = p->interference != 0;
    sp.interval_ns = (uint64_t)llround(p->interval_s * 1e9);
    sp.profile = profile_cb;
    sp.device = device_cb;
    sp.ctx = (void *)(uintptr_t)p; /* the callbacks only read it */
    sp.progress = p->progress;
    sp.progress_ctx = p->progress_ctx;
    usher_sim_report *r = us_calloc(1, sizeof *r);
    if (!r) {
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
    *out = r;
out:
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
                               .goodput = x->goodput,
                               .slo_attainment_pct = x->attainment_pct,
                               .duration_s = x->duration_s,
                               .gpus_used = x->gpus_used,
                               .cost_per_hour = x->cost_per_hour,
                               .wall_s = x->wall_s};
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
