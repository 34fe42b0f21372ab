/*
 * usher/sim.h - what a plan does under traffic: the discrete-event simulator.
 *
 * A plan (plan.json, docs/plan-json.md) is run against a workload
 * (workload.yaml, docs/plan-input.md: models, rates, SLOs) on a virtual
 * clock: requests arrive (Poisson at each model's rate, or another source:
 * Gamma, diurnal, Zipf rates, Azure-shaped, an Azure trace, recorded
 * arrivals; usher_sim_arrival_spec; seeded), are
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

#include <stdbool.h>
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
    uint32_t n_dims;       /* its workload.yaml dims (usher_sim_workload_dim) */
} usher_sim_model_info;

uint32_t usher_sim_workload_models(const usher_sim_workload *w);
/* model i (0 .. usher_sim_workload_models() - 1), in file order; USHER_ERR_INVALID past it */
int usher_sim_workload_model(const usher_sim_workload *w, uint32_t i, usher_sim_model_info *out);
/* dim k (0 .. n_dims - 1) of model i as workload.yaml binds it (docs/plan-input.md): its
 * name (owned by the workload) and value, 0 for `batch` (each batch's size); the profile
 * callbacks bind them as the planner does. USHER_ERR_INVALID past them. */
int usher_sim_workload_dim(const usher_sim_workload *w, uint32_t i, uint32_t k, const char **name,
                           int64_t *value);

/* ---- running --------------------------------------------------------------------------- */

/* The profile of one batch of `batch` rows of workload model `model` alone on
 * a GPU of type `gpu` at compute share share_pct (%, as the plan says), as
 * usher_estimate gives it. latency_ms must be > 0; with interference on,
 * gpu_ms, compute_ms, mem_bound_ms, dram_mb and l2_working_set_mb are used
 * too. Called once per (model, GPU type, share, batch size up to the plan's
 * batch) before the run starts. */
typedef int (*usher_sim_profile_fn)(void *ctx, uint32_t model, const char *gpu, int64_t batch,
                                    double share_pct, usher_profile *out, usher_error *err);
/* A merge group's profile (a plan's merge_groups, docs/simulator.md "Merge groups"): one run
 * of the group's merged graph with `batch` rows of EACH member, as the planner profiles a
 * group (the members merged as `usher merge` merges them, the merged graph through the
 * estimator: docs/merge.md). group and kind ("shared", "stacked", "side-by-side") are the
 * plan's; members: the n_members members' workload indices, in the group's order. Called
 * once per (group, GPU type, share, rows) before the run starts; otherwise as
 * usher_sim_profile_fn. */
typedef int (*usher_sim_group_profile_fn)(void *ctx, const char *group, const char *kind,
                                          const uint32_t *members, uint32_t n_members,
                                          const char *gpu, int64_t batch, double share_pct,
                                          usher_profile *out, usher_error *err);
/* DRAM bandwidth (GB/s) and L2 size (MB) of a GPU type (usher_interfere_device). */
typedef int (*usher_sim_device_fn)(void *ctx, const char *gpu, double *bw_gbs, double *l2_mb,
                                   usher_error *err);
/* The share of the simulated time done so far, [0, 1], now and then (a progress bar). */
typedef void (*usher_sim_progress_fn)(void *ctx, double done);
/*
 * Re-planning in the loop (docs/simulator.md, Re-planning): asked every replan_every_s of
 * arrivals for the plan to run next. t_s: the simulated time; rates: each workload model's
 * arrival rate observed since the last call (requests/s, workload order, n of them);
 * running: the running plan's plan.json. Write the new plan to a file and put its path
 * (NUL-terminated, at most cap bytes) in new_plan; leave new_plan[0] = 0 to keep the
 * running plan. A return < 0 (err set) ends the run with that error. `usher simulate
 * --replan-every` implements it with usher_plan_make (params.running, as `usher plan
 * --replan` does) over a copy of the workload at the observed rates.
 */
typedef int (*usher_sim_replan_fn)(void *ctx, double t_s, const double *rates, uint32_t n,
                                   const char *running, char *new_plan, size_t cap,
                                   usher_error *err);

/* ---- arrivals ----------------------------------------------------------------------- */

/* Where the requests come from (docs/simulator.md, Workloads). Every kind is seeded by
 * usher_sim_params.seed and gives the same arrivals, bit for bit, for the same inputs. */
typedef enum usher_sim_arrivals {
    USHER_SIM_ARRIVALS_POISSON = 0, /* independent Poisson streams at each model's rate */
    USHER_SIM_ARRIVALS_GAMMA,       /* per model a renewal process with Gamma gaps of mean
                                       1/rate and CV cv (AlpaServe's re-sampling) */
    USHER_SIM_ARRIVALS_DIURNAL,     /* Poisson at rate x (1 + amplitude sin(2 pi t / period_s)),
                                       by thinning: rate is the mean over a period */
    USHER_SIM_ARRIVALS_AZURE_SYNTH, /* shaped like the Azure Functions traces: the workload's
                                       total rate over max(1000, models) functions with
                                       heavy-tailed rates, timers and bursts, striped over the
                                       models; per-model rates are what comes out */
    USHER_SIM_ARRIVALS_AZURE_TRACE, /* the Azure Functions 2019 per-minute CSV files (trace),
                                       functions mapped to models by trace_map, each minute's
                                       count replayed exactly (uniform within the minute) */
    USHER_SIM_ARRIVALS_FILE,        /* recorded arrivals: lines 'time_s model', the trace
                                       format `usher load --arrivals trace:FILE` replays */
} usher_sim_arrivals;

/* How Azure trace functions are mapped to models (AlpaServe's; docs/simulator.md). */
typedef enum usher_sim_trace_map {
    USHER_SIM_MAP_STRIPE = 0, /* function i (in trace order) to model i mod n */
    USHER_SIM_MAP_BLOCK = 1,  /* contiguous blocks of functions per model */
    USHER_SIM_MAP_HASH = 2,   /* by a hash of the function's ids: stable across day files */
} usher_sim_trace_map;

typedef struct usher_sim_arrival_spec {
    usher_sim_arrivals kind;     /* default POISSON */
    double cv;                   /* GAMMA: coefficient of variation of the gaps, [0, 100];
                                    default 1 */
    double period_s;             /* DIURNAL: the cycle, seconds, (0, 1e7]; default 86400 */
    double amplitude;            /* DIURNAL: [0, 1]; default 0.5 */
    const char *const *trace;    /* AZURE_TRACE: n_trace CSV files, consecutive days */
    uint32_t n_trace;            /* 1 .. 64 */
    usher_sim_trace_map trace_map; /* AZURE_TRACE; default STRIPE */
    uint64_t trace_start_minute; /* AZURE_TRACE: the first minute replayed, from 0 (the first
                                    file's column '1'); time 0 of the run */
    uint64_t trace_minutes;      /* AZURE_TRACE: minutes replayed; 0: to the end of the files */
    const char *file;            /* FILE: the recorded arrivals */
    double zipf_s;               /* < 0 (default -1): each model at its workload rate; 0 .. 10:
                                    POISSON, GAMMA or DIURNAL rates split by Zipf(s) popularity
                                    over the workload's models (ranks dealt by the seed),
                                    summing to the workload's total rate */
} usher_sim_arrival_spec;

typedef struct usher_sim_params {
    const char *plan;                 /* plan.json, required */
    const usher_sim_workload *workload; /* required: every model of the plan is in it, and the
                                           reverse */
    double duration_s;                /* seconds of arrivals; default 60. With AZURE_TRACE or
                                         FILE arrivals, 0 is the trace's own length (the slice's
                                         minutes; the file's last arrival + 1 us, as usher load
                                         takes it); a shorter duration cuts the trace */
    uint64_t seed;                    /* default 1 */
    double rate_scale;                /* every rate times this; default 1. AZURE_TRACE: not 1
                                         replays each minute as Poisson at rate_scale x its
                                         count instead of the exact count; FILE: must be 1 */
    int interference;                 /* 1 (default): batches slowed by the GPU's busy replicas
                                         (docs/interference.md); 0: each at its alone latency */
    double interval_s;                /* time series resolution; 0 (default): none */
    usher_sim_profile_fn profile;     /* required */
    usher_sim_device_fn device;       /* required with interference */
    void *ctx;
    usher_sim_progress_fn progress;   /* NULL: none */
    void *progress_ctx;
    usher_sim_arrival_spec arrivals;  /* default: Poisson at the workload's rates */
    /* re-planning in the loop: 0 (default) never; else every replan_every_s seconds of
     * arrivals (0.001 to the duration; USHER re-plans every 45 to 300 s) replan is asked
     * for a plan (required then). The moves are charged as the server takes them: a
     * replica started (new, or moved to another GPU) is ready worker_start_s +
     * model_load_s later, one whose share or batch changes on its GPU (the server
     * restarts its worker) share_change_s later; a model's old replicas serve until all
     * of its new ones are ready. Defaults: USHER_SIM_WORKER_START_S,
     * USHER_SIM_MODEL_LOAD_S, USHER_SIM_SHARE_CHANGE_S; each 0 to 1e6 s. */
    double replan_every_s;
    usher_sim_replan_fn replan;
    void *replan_ctx;
    double worker_start_s, model_load_s, share_change_s;
    /* service-time variance: 0 (default) every batch takes exactly its profiled time (alone,
     * or as the interference model gives it beside its GPU's busy replicas); > 0 (at most
     * 10) that time times a lognormal factor of mean 1 and this coefficient of variation
     * (sigma^2 = ln(1 + cv^2), mu = -sigma^2 / 2), drawn from a stream of the seed of its
     * own: the arrivals are the same whatever the CV, and a CV of 0 gives the same bytes as
     * before the option existed */
    double service_cv;
    /* merge groups: the merged graphs' profiles (ctx: ctx). Required when the plan has
     * merge_groups (such a plan is refused without it); NULL (default) otherwise. A group
     * is served as the live runtime serves it: its members' requests in one queue, batched
     * together into runs of the merged graph on the group's replicas; the report's figures
     * stay per member model */
    usher_sim_group_profile_fn group_profile;
} usher_sim_params;

/* The move costs' defaults (docs/simulator.md, Re-planning: where they were measured). */
#define USHER_SIM_WORKER_START_S 0.05
#define USHER_SIM_MODEL_LOAD_S 0.5
#define USHER_SIM_SHARE_CHANGE_S (USHER_SIM_WORKER_START_S + USHER_SIM_MODEL_LOAD_S)

usher_sim_params usher_sim_default_params(void);

typedef struct usher_sim_report usher_sim_report;

/*
 * Run the plan under the workload. Errors name the file, line and field:
 * the arrivals (a trace or arrivals file: "FILE:LINE: field N (NAME): ...";
 * a spec out of range: USHER_ERR_INVALID naming the parameter),
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
    uint32_t replans;          /* re-planning: the planner's calls */
    uint64_t replan_lost, replan_late; /* of the requests that arrived while a change was
                                          under way: refused or expired, served late */
    double goodput;            /* requests/s finished within their SLO */
    double slo_attainment_pct; /* of all requests */
    double duration_s;         /* of arrivals */
    uint32_t gpus_used;        /* with re-plans that changed the plan: the most held at once */
    double cost_per_hour;      /* ... the mean over the duration */
    double wall_s;             /* the run's wall-clock time */
    const char *arrivals;      /* what the arrivals were ("poisson", "gamma:4, zipf 1.2",
                                  "trace d01.csv, stripe"); belongs to the report */
} usher_sim_summary;

int usher_sim_report_summary(const usher_sim_report *r, usher_sim_summary *out);

/* One model's figures from a report (i in workload order; USHER_ERR_INVALID past the end).
 * rate is the offered mean (the workload's, or Zipf's, times rate_scale); for AZURE_SYNTH,
 * AZURE_TRACE and FILE arrivals, whose per-model rates are not given up front, the
 * model's arrivals over the duration. */
typedef struct usher_sim_model_summary {
    const char *name;          /* belongs to the report */
    double rate;
    uint64_t requests, served, late, rejected;
    double goodput, slo_attainment_pct;
    double mean_ms, p50_ms, p99_ms, p999_ms; /* of the served requests */
    const char *group;         /* the plan's merge group that served it (belongs to the
                                  report); NULL: its own replicas */
} usher_sim_model_summary;

int usher_sim_report_model(const usher_sim_report *r, uint32_t i, usher_sim_model_summary *out);
/* The report as one JSON object (docs/simulator.md; no wall-clock figure, so
 * the same inputs and seed give the same bytes), released with usher_free. */
int usher_sim_report_json(const usher_sim_report *r, char **out, usher_error *err);
/* The readable table (with the wall-clock speed of the run). */
void usher_sim_report_print(const usher_sim_report *r, FILE *f);

/* ---- measured profiles ----------------------------------------------------------------- */

/*
 * Batch latencies measured elsewhere (a live server's, a benchmark's) as the simulator's
 * profiles, instead of the estimator's: a CSV file whose header names the columns
 *
 *   model,batch,latency_ms[,gpu][,gpu_ms,compute_ms,mem_bound_ms,dram_mb,l2_working_set_mb]
 *
 * one row per model and batch size (and GPU type, when the gpu column is there and the row
 * gives one; rows without are for any type). Sizes between rows are interpolated linearly,
 * none outside. The five interference fields (usher_profile's) come all together or not at
 * all: without them the table has no GPU figures and the run must be without interference.
 * The format in full: src/sim/profile_table.c and docs/simulator.md.
 *
 * load: every model name must be the workload's; errors name the file, line and field
 * (USHER_ERR_PARSE), USHER_ERR_IO, USHER_ERR_NOMEM; *out is NULL on failure.
 * fn: a usher_sim_profile_fn with ctx = the table (USHER_ERR_NOT_FOUND, naming the file, for
 * a model or batch size it does not cover).
 */
typedef struct usher_sim_profile_table usher_sim_profile_table;

int usher_sim_profile_table_load(const char *path, const usher_sim_workload *w,
                                 usher_sim_profile_table **out, usher_error *err);
void usher_sim_profile_table_free(usher_sim_profile_table *t); /* NULL is fine */
/* true when the file gives the interference fields */
bool usher_sim_profile_table_has_gpu_fields(const usher_sim_profile_table *t);
int usher_sim_profile_table_fn(void *ctx, uint32_t model, const char *gpu, int64_t batch,
                               double share_pct, usher_profile *out, usher_error *err);

/* ---- plots and the HTML page (docs/simulator.md, "Reports") ---------------------------- */

/*
 * The report as one self-contained HTML page (inline SVG and CSS; no script, no external
 * resource), written to path atomically: the totals, the per-model and per-GPU tables, the
 * latency CDFs, with a time series (interval_s > 0) the per-GPU utilisation heat map and
 * goodput over time, and with a sweep (n_sweep runs of the same plan and workload at
 * several rate scales, 1 to 64; NULL and 0: none) goodput and SLO attainment against the
 * offered load. The same reports give the same bytes (no wall-clock figure).
 * USHER_ERR_INVALID (no report, a sweep of other workloads, too many runs), USHER_ERR_IO
 * (naming the path), USHER_ERR_NOMEM; on failure the file at path is left as it was.
 */
int usher_sim_report_html(const usher_sim_report *r, const usher_sim_report *const *sweep,
                          size_t n_sweep, const char *path, usher_error *err);
/*
 * Each plot of the page as its own .svg file in dir (made if missing), each written
 * atomically: latency-cdf.svg; with a time series gpu-utilisation.svg and goodput-time.svg;
 * with a sweep sweep-goodput.svg and sweep-attainment.svg. Errors as above; files written
 * before a failure stay.
 */
int usher_sim_report_svgs(const usher_sim_report *r, const usher_sim_report *const *sweep,
                          size_t n_sweep, const char *dir, usher_error *err);

/* One plot of a report as a standalone SVG document (usher_free releases it), with its own
 * id (the <svg>'s; NULL: "latency-cdf" or "gpu-utilisation"; [A-Za-z0-9_-], 1 to 48 bytes;
 * ids must differ between the plots of one page) and title (NULL: the report page's), for
 * a page of several reports (usher compare's: one per policy). The heat map needs a time
 * series. USHER_ERR_INVALID (no report, a bad id or kind, no series), USHER_ERR_NOMEM. */
typedef enum usher_sim_report_plot {
    USHER_SIM_PLOT_LATENCY_CDF = 0,     /* per model, the share of served requests by latency */
    USHER_SIM_PLOT_GPU_UTILISATION = 1, /* per GPU and interval, compute utilisation */
} usher_sim_report_plot;

int usher_sim_report_plot_svg(const usher_sim_report *r, usher_sim_report_plot kind,
                              const char *id, const char *title, char **out, usher_error *err);

/* A line plot of any series (x, y) per label, drawn as the report's plots are (usher
 * compare's cost against load): title, axes with ticks and labels, legend. */
typedef struct usher_sim_plot_series {
    const char *label;
    const double *x, *y;   /* n points; a point that is not finite breaks the line */
    size_t n;
} usher_sim_plot_series;

typedef struct usher_sim_plot {
    const char *id;        /* the <svg> element's id, [A-Za-z0-9_-], 1 to 48 bytes; default
                              "plot" (ids must differ between plots of one page) */
    const char *title;     /* required */
    const char *subtitle;  /* NULL (default): none */
    const char *x_label, *y_label; /* required */
    const usher_sim_plot_series *series;
    size_t n_series;       /* the first 12 are drawn; the legend says how many are not */
    double x_min, x_max, y_min, y_max; /* NAN (default): from the data (y from 0 when no y is
                                          negative) */
    int x_log;             /* 1: logarithmic x axis (points with x <= 0 left out); default 0 */
    int markers;           /* 1: a dot at every point; default 0 */
} usher_sim_plot;

usher_sim_plot usher_sim_default_plot(void);
/* One standalone SVG document (labels XML-escaped), released with usher_free.
 * USHER_ERR_INVALID for a missing title or label, a bad id or a series without points
 * arrays; USHER_ERR_NOMEM. On failure *out is NULL. */
int usher_sim_plot_svg(const usher_sim_plot *p, char **out, usher_error *err);

#ifdef __cplusplus
}
#endif
#endif
