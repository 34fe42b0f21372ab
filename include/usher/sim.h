/*
 * usher/sim.h - what a plan does under traffic: the discrete-event simulator.
 *
 * A plan (plan.json, docs/plan-json.md) is run against a workload
 * (workload.yaml, docs/plan-input.md: models, rates, SLOs) on a virtual
 * clock: requests arrive (Poisson at each model's rate, seeded), are
 * admitted and batched by the serving runtime's own code, and each batch
 * takes the time the interference model gives for its replica beside the
 * replicas busy on the same GPU at that moment. The report has per-model
 * goodput, SLO attainment, latency percentiles and queueing, per-GPU
 * utilisation, per-run GPUs, $/h and energy, and a time series
 * (docs/simulator.md). The same inputs and seed give the same report, bit
 * for bit.
 *
 * The simulator knows a model only through profiles: the caller supplies
 * them (usher_sim_profile_fn; `usher simulate` asks the estimator,
 * usher/estimate.h, for the models the workload names), and a device's
 * bandwidth and L2 (usher_sim_device_fn; usher_interfere_device).
 *
 *   usher_sim_workload *w;  usher_sim_workload_load("workload.yaml", &w, &err);
 *   usher_sim_params p = usher_sim_default_params();
 *   p.plan = "plan.json"; p.workload = w; p.profile = my_profile; p.device = my_device;
 *   usher_sim_report *r;
 *   if (usher_sim_run(&p, &r, &err) < 0) { puts(err.msg); ... }
 *   usher_sim_report_print(r, stdout);
 *   usher_sim_report_free(r);  usher_sim_workload_free(w);
 */
#ifndef USHER_SIM_H
#define USHER_SIM_H

#include <stdint.h>
#include <stdio.h>

#include "usher/estimate.h"
#include "usher/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the workload ---------------------------------------------------------------------- */
typedef struct usher_sim_workload usher_sim_workload;

/* Read workload.yaml as `usher plan` does (same fields, checks and messages:
 * "<file>:<line>: field '<path>': ..."). On failure *out is NULL. */
int usher_sim_workload_load(const char *path, usher_sim_workload **out, usher_error *err);
void usher_sim_workload_free(usher_sim_workload *w); /* NULL is fine */

typedef struct usher_sim_model_info {
    const char *name;      /* strings belong to the workload */
    const char *path;      /* the ONNX file, resolved against the workload file's directory */
    const char *precision; /* "fp32", "tf32", "fp16" or "int8" (usher_precision_parse) */
    double rate;           /* requests/s */
    double slo_ms;
    size_t line;           /* its entry in the file */
} usher_sim_model_info;

uint32_t usher_sim_workload_models(const usher_sim_workload *w);
/* model i (0 .. usher_sim_workload_models() - 1), in file order; USHER_ERR_INVALID past it */
int usher_sim_workload_model(const usher_sim_workload *w, uint32_t i, usher_sim_model_info *out);

/* ---- running --------------------------------------------------------------------------- */

/* The profile of one batch of `batch` rows of workload model `model` alone on
 * a GPU of type `gpu` at compute share share_pct (%, as the plan says), as
 * usher_estimate gives it. latency_ms must be > 0; with interference on,
 * gpu_ms, compute_ms, mem_bound_ms, dram_mb and l2_working_set_mb are used
 * too. Called once per (model, GPU type, share, batch size up to the plan's
 * batch) before the run starts. */
typedef int (*usher_sim_profile_fn)(void *ctx, uint32_t model, const char *gpu, int64_t batch,
                                    double share_pct, usher_profile *out, usher_error *err);
/* DRAM bandwidth (GB/s) and L2 size (MB) of a GPU type (usher_interfere_device). */
typedef int (*usher_sim_device_fn)(void *ctx, const char *gpu, double *bw_gbs, double *l2_mb,
                                   usher_error *err);
/* The share of the simulated time done so far, [0, 1], now and then (a progress bar). */
typedef void (*usher_sim_progress_fn)(void *ctx, double done);

typedef struct usher_sim_params {
    const char *plan;                 /* plan.json, required */
    const usher_sim_workload *workload; /* required: every model of the plan is in it, and the
                                           reverse */
    double duration_s;                /* seconds of arrivals; default 60 */
    uint64_t seed;                    /* default 1 */
    double rate_scale;                /* every rate times this; default 1 */
    int interference;                 /* 1 (default): batches slowed by the GPU's busy replicas
                                         (docs/interference.md); 0: each at its alone latency */
    double interval_s;                /* time series resolution; 0 (default): none */
    usher_sim_profile_fn profile;     /* required */
    usher_sim_device_fn device;       /* required with interference */
    void *ctx;
    usher_sim_progress_fn progress;   /* NULL: none */
    void *progress_ctx;
} usher_sim_params;

usher_sim_params usher_sim_default_params(void);

typedef struct usher_sim_report usher_sim_report;

/*
 * Run the plan under the workload. Errors name the file, line and field:
 * the plan (pf reader: USHER_ERR_PARSE), a plan and workload that do not
 * match (USHER_ERR_INVALID: a replica's model not in the workload, a
 * workload model not in the plan), a profile or device the callbacks refuse
 * (their code, with the plan's line), USHER_ERR_INVALID for parameters out
 * of range, USHER_ERR_NOMEM. On failure *out is NULL.
 */
int usher_sim_run(const usher_sim_params *p, usher_sim_report **out, usher_error *err);
void usher_sim_report_free(usher_sim_report *r); /* NULL is fine */

typedef struct usher_sim_summary {
    uint64_t requests, served, late, rejected;
    double goodput;            /* requests/s finished within their SLO */
    double slo_attainment_pct; /* of all requests */
    double duration_s;         /* of arrivals */
    uint32_t gpus_used;
    double cost_per_hour;
    double wall_s;             /* the run's wall-clock time */
} usher_sim_summary;

int usher_sim_report_summary(const usher_sim_report *r, usher_sim_summary *out);
/* The report as one JSON object (docs/simulator.md; no wall-clock figure, so
 * the same inputs and seed give the same bytes), released with usher_free. */
int usher_sim_report_json(const usher_sim_report *r, char **out, usher_error *err);
/* The readable table (with the wall-clock speed of the run). */
void usher_sim_report_print(const usher_sim_report *r, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
