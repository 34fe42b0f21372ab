/*
 * sim.h - the discrete-event simulator's engine, metrics and reports
 * (layer 7, prefix sim_; the public face is include/usher/sim.h).
 *
 * A plan (plan.json: GPUs, replicas with model, batch, share) is run under
 * a stream of arrivals (sim/workload.h) on a virtual clock:
 *
 *   arrival ──► admission (runtime/admit.c) ──► the model's FIFO queue
 *                 refused: counted, never queued        │
 *   an idle replica decides (runtime/batch.c: rt_batch_decide) ◄─┘
 *     expire hopeless heads / take k requests / wait until wake_ns
 *   batch starts: its time = the interference model (if_predict) over this
 *     replica and the replicas of its GPU running at that moment
 *   batch ends (event): each member's latency, queueing, SLO; the runtime's
 *     observed scale and admission margin learn from it
 *
 * Events are ordered by time, then by a sequence number given when the
 * event is scheduled, so a run with a seed is reproducible bit for bit
 * (DESIGN.md's clock rule); nothing reads a real clock. Batching and
 * admission are the runtime's own functions (rt_batch_decide, rt_admit_*)
 * called with the virtual time, not copies.
 *
 * The engine never calls the estimator (layering): what it knows of a
 * replica comes from a profile callback (model, GPU type, batch, share ->
 * if_replica) and of a device from a device callback; the command line
 * (src/cli/simulate.c) implements them with the public estimator, tests and
 * benchmarks with fixed profiles. What is simulated and what is not:
 * docs/simulator.md.
 */
#ifndef SIM_SIM_H
#define SIM_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/buf.h"
#include "interfere/interfere.h"
#include "planfile/planfile.h"
#include "planfile/workload.h"
#include "sim/workload.h"
#include "usher/status.h"

#define SIM_MAX_MODELS 100000
#define SIM_NAME_MAX 64

/* one model of the workload: what the plan's replicas serve */
typedef struct sim_model_spec {
    const char *name;
    double rate;   /* requests/s offered (before rate_scale) */
    double slo_ms; /* latency objective: a request is good when it ends within it */
    size_t line;   /* its entry in the workload file, for messages (0: none) */
} sim_model_spec;

/* The profile of one replica's batch alone on its device: model index (into
 * sim_params.models), GPU type key, rows, compute share (% of the SMs, as the
 * plan says). The engine sets out->batch and out->share itself (the rows and
 * the plan's share); latency_ms must be > 0, and with interference on every
 * field must pass if_predict's checks. */
typedef int (*sim_profile_fn)(void *ctx, uint32_t model, const char *gpu, int batch,
                              double share_pct, if_replica *out, usher_error *err);
/* The profile of one run of merge group g (the plan's merge_groups[group]; members: their
 * indices into sim_params.models, in g's order) on a GPU type at a share: the merged graph's
 * run with `batch` rows of EACH member (the planner's profile of a group, plan/groups.c). As
 * sim_profile_fn otherwise. */
typedef int (*sim_group_profile_fn)(void *ctx, const pf_group *g, uint32_t group,
                                    const uint32_t *members, const char *gpu, int batch,
                                    double share_pct, if_replica *out, usher_error *err);
/* The device of a GPU type key (DRAM bandwidth, L2) for the interference model. */
typedef int (*sim_device_fn)(void *ctx, const char *gpu, if_device *out, usher_error *err);
/* Called now and then with the share of the simulated time done, [0, 1]. */
typedef void (*sim_progress_fn)(void *ctx, double done);
/* Re-planning in the loop (docs/simulator.md, Re-planning): called every replan_every_ns of
 * arrivals with each model's arrival rate observed since the last call (requests/s, in
 * workload order). *out: the new plan (NULL: keep the running one); it must stay valid
 * until sim_run returns. An error ends the run with it. */
typedef int (*sim_replan_fn)(void *ctx, uint64_t now_ns, const double *rates, uint32_t n,
                             const pf_plan **out, usher_error *err);

typedef struct sim_params {
    const pf_plan *plan;              /* required */
    const sim_model_spec *models;     /* the workload, required */
    uint32_t n_models;
    const char *plan_label;           /* file names for messages and the report ("plan.json") */
    const char *workload_label;
    sim_source *source;               /* arrivals (model = index into models; taken, freed by
                                         sim_run); NULL: Poisson at rate x rate_scale, seeded */
    uint64_t duration_ns;             /* arrivals end here (the source's own end otherwise);
                                         the run goes on until the last request in flight ends */
    uint64_t seed;                    /* for the default Poisson source */
    double rate_scale;                /* default source: rates multiplied by this; 0: 1 */
    bool interference;                /* false: every batch takes its alone time */
    uint64_t interval_ns;             /* time series resolution; 0: no series */
    uint64_t slack_ns;                /* dispatch slack of batching and admission; 0 (the
                                         virtual clock has no wake-up to allow for) */
    sim_profile_fn profile;           /* required */
    sim_device_fn device;             /* required when interference is on */
    void *ctx;                        /* for profile and device */
    sim_progress_fn progress;         /* NULL: none */
    void *progress_ctx;
    /* re-planning in the loop: every replan_every_ns (0: never) replan is asked for a plan;
     * a replica it starts (new, moved) is ready start_ns + load_ns later, one whose share
     * or batch changes on its GPU share_ns later; until all of a model's new replicas are
     * ready its old ones serve (the server's switch: usher_server_reload) */
    uint64_t replan_every_ns;
    sim_replan_fn replan;
    void *replan_ctx;
    uint64_t start_ns, load_ns, share_ns;
    /* service-time variance: every batch's time (alone or as the interference model gives
     * it) times a lognormal factor of mean 1 and this coefficient of variation, drawn from
     * its own stream of the seed (the arrivals are the same whatever it is); 0: exactly
     * the profiled time, no draw */
    double service_cv;
    /* merge groups (the plan's merge_groups, docs/simulator.md "Merge groups"): the merged
     * graph's profile; required when the plan has groups, called with ctx */
    sim_group_profile_fn group_profile;
} sim_params;

sim_params sim_default_params(void); /* interference on, rate_scale 1, the rest 0 */

/* ---- metrics (metrics.c) ------------------------------------------------------------- */

/*
 * Latency percentiles in bounded memory: a log-bucketed histogram of
 * nanoseconds, exact below 64 ns, then 64 buckets per power of two, each
 * read back at its middle: relative error <= 1/128 (0.78%), clamped to the
 * exact minimum and maximum. Buckets are allocated an octave (64 counters)
 * at a time, as values reach it: a few KB per model, whatever the run's length.
 */
#define SIM_HIST_SUB 64
#define SIM_HIST_OCTAVES 59 /* covers every uint64 */
#define SIM_HIST_REL_ERROR (1.0 / (2 * SIM_HIST_SUB))

typedef struct sim_hist {
    uint64_t *oct[SIM_HIST_OCTAVES]; /* NULL until used */
    uint64_t n, min, max;
} sim_hist;

int sim_hist_add(sim_hist *h, uint64_t v); /* USHER_ERR_NOMEM when an octave cannot be had */
/* the q-quantile (0 <= q <= 1; rank ceil(q n), at least 1) in ns; 0 for an empty histogram */
double sim_hist_quantile(const sim_hist *h, double q);
void sim_hist_free(sim_hist *h);

/* ---- the report ---------------------------------------------------------------------- */

typedef struct sim_model_report {
    char name[SIM_NAME_MAX];
    double rate, slo_ms;      /* offered (rate_scale included) and the objective */
    uint32_t replicas;
    uint64_t requests;        /* arrivals */
    uint64_t served;          /* ran to the end (within the SLO or not) */
    uint64_t good;            /* ended within the SLO */
    uint64_t late;            /* served after the SLO */
    uint64_t rejected;        /* refused at admission (queue full, deadline out of reach,
                                 shed by scale, or no replica) */
    uint64_t shed;            /* of rejected: shed by the observed scale */
    uint64_t probes;          /* admitted as probes of the scale */
    uint64_t expired;         /* admitted, then expired in the queue (deadline out of reach) */
    uint64_t batches, batch_rows;
    double goodput;           /* good / duration, requests/s */
    double attainment_pct;    /* good / requests x 100 (100 without requests) */
    double mean_ms, p50_ms, p99_ms, p999_ms, max_ms; /* of the served requests */
    double mean_queue_ms;     /* arrival to batch start, served requests */
    double latency_scale;     /* the runtime's observed scale at the end (its group's) */
    char group[SIM_NAME_MAX]; /* the merge group that served it ("": none); then replicas,
                                 batches and latency_scale are the group's runs that carried
                                 its requests, batch_rows its own rows in them */
    sim_hist hist;            /* the served requests' latencies (ns): the CDF of the plots */
} sim_model_report;

/* a merge group of the plan: one queue and its replicas for the members' requests */
typedef struct sim_group_report {
    char name[SIM_NAME_MAX], kind[16];
    uint32_t n_members, replicas;
    uint64_t batches;         /* runs of the merged graph */
    uint64_t mixed_batches;   /* of them, runs that carried requests of two members or more */
    uint64_t rows;            /* the requests' own rows they carried */
    uint64_t filler_rows;     /* rows of members without a request (rt_group_rows) */
} sim_group_report;

typedef struct sim_gpu_report {
    char type[SIM_NAME_MAX];
    uint32_t replicas;
    double compute_pct;       /* time-average of min(100, sum of the busy replicas' shares) */
    double memory_pct;        /* the plan's memory_pct */
    double price_per_hour, power_w;
    uint64_t batches;
} sim_gpu_report;

/* one re-plan: what changed and what it cost the requests that arrived during it */
typedef struct sim_replan_report {
    double t_s;               /* when the planner was asked */
    double ready_s;           /* when the last model switched to the new plan (t_s: at once) */
    bool changed;             /* a new plan (false: the running one kept) */
    uint32_t kept, started, moved, reshared, stopped; /* replicas */
    uint32_t gpus;            /* of the new plan with a replica */
    double cost_per_hour;     /* of the new plan */
    uint64_t requests;        /* arrived in [t_s, ready_s) */
    uint64_t lost, late;      /* of those: refused or expired / served after their SLO */
} sim_replan_report;

typedef struct sim_report {
    char plan[256], workload[256];
    uint64_t seed;
    double rate_scale;
    bool interference;
    double duration_s;        /* of arrivals */
    double end_s;             /* the last request's end (>= duration_s unless idle) */
    uint64_t requests, served, good, late, rejected, expired;
    double goodput, attainment_pct;
    uint32_t gpus_used;       /* GPUs of the plan with at least one replica */
    double cost_per_hour;     /* their prices */
    double compute_pct, memory_pct; /* means over the GPUs used */
    double power_w;           /* the plan's power of the GPUs used (at its planned loads) */
    double energy_j_per_request; /* power_w x duration / served (see docs/simulator.md) */
    uint64_t events;          /* processed: arrivals, batch ends, wake-ups */
    uint64_t coloc_predictions, coloc_cache_hits; /* interference model calls and cache hits */
    sim_model_report *m;
    uint32_t n_models;
    sim_gpu_report *g;
    uint32_t n_gpus;
    sim_group_report *groups; /* the plan's merge groups (NULL, 0: none) */
    uint32_t n_groups;
    /* time series by the arrival's interval: series_requests[i * n_models + k] (model k,
     * interval i), and of them those that ended within the SLO */
    uint64_t interval_ns;
    uint32_t n_intervals;
    uint32_t *series_requests, *series_good;
    /* and per GPU g: series_gpu_pct[i * n_gpus + g], its compute utilisation in interval i (as
     * compute_pct, over the interval's part of the arrivals' duration; the busy time past the
     * duration is in compute_pct only) */
    double *series_gpu_pct;
    double wall_s;            /* set by the caller that timed the run (0: not timed) */
    /* re-planning (replan_every_ns > 0): every call, and the totals; with re-plans that
     * changed the plan, cost_per_hour, power_w and energy are averages over the duration and
     * gpus_used the most GPUs held at once */
    double replan_every_s;
    sim_replan_report *replans;
    uint32_t n_replans;
    uint64_t replan_requests, replan_lost, replan_late;
    double start_s, load_s, share_s; /* the move costs charged */
    double service_cv;        /* the batches' lognormal coefficient of variation (0: none) */
    char arrivals[192];       /* what the arrivals were, set by the caller ("poisson",
                                 "gamma:4, zipf 1.2", "trace d01.csv, stripe, minutes 0-59",
                                 "file arr.txt"); "": not said */
} sim_report;

/*
 * Run. On success *out holds the report (sim_report_free). Errors: the plan
 * and the workload do not match (a replica's model not in the workload, a
 * workload model not in the plan's models, or the reverse: "<file>:<line>:
 * field '<path>': ..."), a profile or device the callbacks refuse (their
 * message, after the plan's file, line and field), a source error, NOMEM.
 * p->source is freed on every path.
 */
int sim_run(const sim_params *p, sim_report **out, usher_error *err);
void sim_report_free(sim_report *r); /* NULL is fine */

/* The report as one JSON object (docs/simulator.md: fields), indented, ending with a newline.
 * Wall-clock figures are left out (wall: true puts them in), so that a seed gives the
 * same bytes. USHER_OK, USHER_ERR_NOMEM or USHER_ERR_LIMIT (the buffer's cap). */
int sim_report_json(const sim_report *r, bool wall, us_buf *out);
/* The readable table. */
void sim_report_print(const sim_report *r, FILE *f);
/* The engine's report behind a public one (api.c; the plots and the page of report_api.c);
 * NULL for NULL. */
struct usher_sim_report;
const sim_report *sim_report_of(const struct usher_sim_report *r);

/* ---- the workload file (planfile/workload.c) ------------------------------------------------------ */

/* workload.yaml as `usher plan` reads it: the one reader (planfile/workload.h), so
 * the same fields, types, ranges and messages; model paths resolved against the
 * file's directory. The simulator uses names, rates, SLOs and priorities. */
typedef pf_workload_model sim_workload_model;
typedef pf_workload sim_workload;

static inline int sim_workload_read(const char *path, sim_workload *out, usher_error *err)
{
    return pf_workload_read(path, SIM_MAX_MODELS, out, err);
}
static inline int sim_workload_parse(const char *text, size_t len, const char *label,
                                     sim_workload *out, usher_error *err)
{
    return pf_workload_parse(text, len, label, SIM_MAX_MODELS, out, err);
}
static inline void sim_workload_free(sim_workload *w) { pf_workload_free(w); }

#endif
