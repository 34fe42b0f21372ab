/*
 * plan.h - the planner's data (layer 6, prefix plan_).
 *
 * A problem is a set of models (rate, SLO, candidate replica configurations
 * per GPU type, all from the estimator's profiles) and a set of GPU types
 * (fixed counts or elastic limits, prices). A policy turns a problem into a
 * solution: GPUs, each holding replicas (model, configuration, load). The
 * policies share the machinery below (opening GPUs, fitting replicas,
 * accounting); each one is a plan_policy in the table of policy.c.
 *
 * Units: rates in requests/s, latencies in ms, Creq/Mreq/shares in % of one
 * GPU of the replica's type, prices in $/h.
 */
#ifndef PLAN_H
#define PLAN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gpu/gpu.h"
#include "interfere/interfere.h"
#include "usher/estimate.h"
#include "usher/model.h"
#include "usher/status.h"

#define PLAN_MAX_TYPES 64   /* entries of cluster.yaml (type x node) */
#define PLAN_MAX_MODELS 100000
#define PLAN_SHARE_STEP 10 /* candidate MPS shares: 10, 20, ..., 100 % */
#define PLAN_SLO_FACTOR 2.0 /* a batch waits for the one running: 2 x latency <= SLO */
#define PLAN_KEEP_CHEAP 6   /* candidates per (model, GPU type): cheapest per request/s */
#define PLAN_KEEP_SMALL 2   /* ... and smallest footprint */
/* the slack of every capacity test: shares are sums of doubles */
#define PLAN_FIT_EPS 1e-9
/* sum(Creq) and sum(Mreq) on one GPU may reach this, % */
#define PLAN_FIT_MAX (100 + PLAN_FIT_EPS)

/* PLAN_MAX_MIN: weighted max-min fairness - the largest t such that every model
 * is served at least t x plan_weight / the largest weight of its rate, then as
 * PLAN_MAX_GOODPUT (usher and exact only; docs/policies.md "Fairness") */
typedef enum plan_objective { PLAN_MIN_COST, PLAN_MAX_GOODPUT, PLAN_MAX_MIN } plan_objective;
/* GPUs a cluster.yaml may list as lost (lost: [...]) in all */
#define PLAN_MAX_LOST 4096

/* one feasible replica configuration of a model on a GPU type */
typedef struct plan_cfg {
    uint16_t type;
    int batch;
    double share;   /* MPS share granted, % */
    double creq;    /* compute reserved, % (= share) */
    double mreq;    /* memory, % */
    double mreq_mb;
    double thr;     /* requests/s it may carry alone: the highest arrival rate whose predicted
                       p99 latency meets the SLO (plan_queue_thr), at most thr_nom */
    double thr_nom; /* requests/s at full load, back to back: batch / lat_ms */
    double lat_ms;  /* one batch at that share */
    double lat1_ms; /* the queueing cap's L(1): a batch of one at that share, or more where
                       smaller batches lie above the line to lat_ms (solution.c affine_l1) */
    double power_w; /* average board power attributable while busy */
    double bw_gbs;
    double dram_pct; /* DRAM bandwidth it uses alone, averaged over its latency, % of the GPU's */
    uint32_t uid;   /* its profile's identity (equal in the copies models that share
                       candidates get); 0: none (a configuration made by hand) */
    uint32_t puid;  /* the same without the SLO: equal for every model of one structure and
                       precision (its profile template's entry); what the co-location memo
                       is keyed by (coloc.c); 0: none */
    if_replica ir;  /* the interference model's view of its profile (if_replica_of);
                       set when the problem plans with the model */
    /* with the model: its latency (ms) and throughput (requests/s) beside replicas
     * like it filling the rest of the GPU (plan_coloc_cfg), and whether that
     * misses the SLO - a configuration that can hardly share its GPU. What
     * the policies' cost estimates use (plan_foot, plan_thr); the rule decides */
    double lat_full, thr_full;
    bool alone_only;
} plan_cfg;

/* the footprint a replica of c is costed at, % of a GPU: max(Creq, Mreq), or
 * the whole GPU when the model says it can hardly share it */
static inline double plan_foot(const plan_cfg *c)
{
    return c->alone_only ? 100 : c->creq > c->mreq ? c->creq : c->mreq;
}
/* the throughput a replica of c is costed at: beside replicas like it (with
 * the model), alone otherwise */
static inline double plan_thr(const plan_cfg *c)
{
    return c->thr_full > 0 && !c->alone_only ? c->thr_full : c->thr;
}

/* a dynamic dim of a model bound for planning (workload.yaml dims; docs/plan-input.md):
 * every estimate of the model binds it */
#define PLAN_MAX_DIMS 64 /* dims of one model (a merge group's: its members'), as the estimator */
typedef struct plan_dim {
    char *name;    /* as the model names it: seq, input:1 */
    int64_t value; /* >= 1; 0: each configuration's batch */
} plan_dim;

typedef struct plan_model {
    char *name, *path;
    plan_dim *dims;   /* NULL, 0: none (the model's recorded defaults, batch on axis 0) */
    uint32_t n_dims;
    double rate, slo_ms;
    int priority;     /* max-goodput weighs its requests 1 + priority (plan_weight) */
    double min_share; /* fraction of rate that must be served (max-goodput, max-min); 0: none */
    int merge_group;  /* models of one group are co-located (merger); 0: none */
    char *group;      /* its name in workload.yaml, NULL if none */
    int precision;    /* usher_precision */
    double arrival_cv; /* coefficient of variation of its arrivals' gaps; 0: 1 (Poisson) */
    int spread;       /* pf_spread: the failure domain its replicas are spread over
                         (anti-affinity, spread.c); 0: none */
    plan_cfg *cfg;    /* feasible configurations (dominated ones pruned) */
    uint32_t n_cfg;
    double fastest_ms;      /* best batch-1 latency over the GPU types (for errors) */
    char fastest_gpu[64];
    size_t line;      /* where it was declared (for messages) */
} plan_model;

/* what a request/s of model m is worth to max-goodput */
static inline double plan_weight(const plan_model *m) { return 1.0 + m->priority; }

typedef struct plan_type {
    const gpu_type *g;
    char key[64];
    int64_t count;    /* fixed cluster: GPUs available; -1: elastic */
    int64_t max;      /* elastic: at most this many */
    double price;     /* $/h */
    char node[64];
    char rack[64], zone[64]; /* its node's (cluster.yaml nodes:); "": none declared */
    double tdp_w, idle_frac;
    size_t line;      /* where it was declared */
    /* indices 0..slots-1 name this entry's GPUs (plan.json gpus[].index): the
     * count or max as declared, lost ones included (count and max above are
     * what may be used: lost ones removed); 0: count or max */
    int64_t slots;
    if_device dev;    /* the interference model's view of the type (if_device_of); set
                         when the problem plans with the model */
    double dram_per_share; /* with the model: the median over the candidates of this type
                              of DRAM % per % of share (USHER's classification); 0: none */
} plan_type;

/* a node declared in cluster.yaml's nodes: (input.c): its labels, rack and zone */
#define PLAN_MAX_NODES 4096
#define PLAN_MAX_LABELS 64 /* per node */
typedef struct plan_node {
    char name[64], rack[64], zone[64]; /* rack, zone "": none */
    char **labels;                     /* 2 x n_labels: key, value, key, ...; by key */
    uint32_t n_labels;
    size_t line;
} plan_node;

typedef struct plan_problem {
    plan_model *m;
    uint32_t n;
    plan_type t[PLAN_MAX_TYPES];
    uint32_t nt;
    plan_objective objective;
    bool fixed;       /* counts given: the GPUs exist */
    /* plan with the interference model (coloc.c): a replica fits a GPU only if
     * every replica there meets its SLO and carries its load beside the others.
     * false: the rule before the model (a replica's latency alone; shares and
     * memory only), for comparison. usher_plan_make sets it (unless
     * --interference off); a problem built by hand sets it before
     * plan_read_cluster / plan_problem_profile, which then fill dev and ir. */
    bool interference;
    /* plan without the queueing model (queue.c): a replica may be loaded to its
     * throughput back to back, as before issue 13 (tests that show the rule
     * matters); false, the default: to the rate up to which the runtime's batcher
     * meets the SLO for 99% (queue.c, the measured table) */
    bool queue_off;
    uint32_t next_uid;        /* plan_cfg.uid of the next profile */
    uint32_t next_puid;       /* plan_cfg.puid of the next profile template entry */
    /* plan_problem_profile: estimate every (structure, SLO, precision) afresh
     * instead of once per (structure, precision), filtered per SLO; the same
     * candidates, slower (the reference tests compare the fast path with) */
    bool profile_direct;
    struct plan_memo *memo;   /* co-located predictions already made (coloc.c); NULL: none */
    /* merge groups the planner formed (groups.c): the workload's models as given and
     * which of them one merged model of this problem serves; NULL: none (every model
     * of the workload is a model here). Freed by plan_problem_free */
    struct plan_merges *merges;
    char workload[256], cluster[256]; /* file names, for messages */
    /* GPUs declared lost or drained (cluster.yaml lost: [...]): never used; a
     * running plan's replicas on them are placed again (plan_lose_gpu) */
    struct plan_lost {
        uint16_t type;
        uint32_t index;
    } lost[PLAN_MAX_LOST];
    uint32_t n_lost;
    /* cluster.yaml's nodes: (heap; NULL, 0: none declared); freed by
     * plan_problem_free */
    plan_node *nodes;
    uint32_t n_nodes;
} plan_problem;

/* the fairness options are in use: a model with min_share, or objective max-min */
bool plan_fair(const plan_problem *p);
/* type t's index range (plan_type.slots, else count or max) */
int64_t plan_type_slots(const plan_type *t);
/* GPU `index` of type t is lost: recorded, and one fewer of the type may be
 * used (count or max); USHER_ERR_LIMIT past PLAN_MAX_LOST, USHER_ERR_INVALID
 * for an index out of the type's range or listed twice */
int plan_lose_gpu(plan_problem *p, uint16_t t, int64_t index);
bool plan_gpu_lost(const plan_problem *p, uint16_t t, uint32_t index);

typedef struct plan_replica {
    uint32_t model;
    uint32_t cfg;     /* index into the model's cfg */
    double load;      /* requests/s assigned (<= plan_cap) */
    /* its batch latency (ms) and throughput (requests/s) beside the other
     * replicas of its GPU as they are now: the interference model's prediction,
     * kept by plan_add / plan_remove (spatial policies); the figures alone
     * when the problem plans without the model; 0 on time-sliced GPUs */
    double lat_co, thr_co;
} plan_replica;

#define PLAN_REFUSED 8 /* profiles a GPU remembers the rule refused beside its replicas */

typedef struct plan_gpu {
    uint16_t type;
    uint32_t bk, bpos; /* its place in the best-fit index (solution.c) */
    int group;        /* planner group that opened it, -1 if none */
    double used_c, used_m;
    plan_replica *r;
    uint32_t n, cap;
    /* plan_cfg.uid of configurations the model refused here for a missed SLO,
     * DRAM, or a neighbour's load: they stay refused while replicas only arrive
     * and loads only grow (the model is monotone); forgotten when one leaves
     * (plan_remove) or a load here shrinks (plan_coloc_forget: every place that
     * lowers loads calls it) */
    uint32_t refused[PLAN_REFUSED];
    uint8_t n_refused, next_refused;
    /* its identity on its cluster entry (type, node): index + 1, carried from
     * the running plan by re-planning; 0: none yet - numbered when the plan is
     * written (plan_gpu_indices) */
    uint32_t ident;
} plan_gpu;

typedef struct plan_bucket {
    uint32_t *id;
    uint32_t n, cap;
} plan_bucket;

/* how a policy's replicas share a GPU, hence which rule places and judges them */
typedef enum plan_sharing {
    PLAN_SHARE_MODEL = 0, /* concurrently (MPS), every placement through the interference
                             model (usher, exact, re-planning) */
    PLAN_SHARE_OWN,       /* concurrently, placed by the policy's own rule (gpulet,
                             static-mps); judged by the model in plan_account */
    PLAN_SHARE_TIME,      /* one batch at a time (shepherd, alpaserve, triton): the
                             model's concurrency does not apply; their waiting rules do */
} plan_sharing;

typedef struct plan_solution {
    char policy[32];
    plan_sharing sharing;
    plan_gpu *g;
    uint32_t n, cap;
    int64_t used_type[PLAN_MAX_TYPES]; /* GPUs of each type */
    plan_bucket *bk;  /* best-fit index, NULL until a query builds it */
    double *served;   /* per model, requests/s within SLO */
    uint32_t n_models;
    uint32_t moves;   /* re-planning: replicas started (new, moved or restarted) */
    uint32_t stopped; /* re-planning: replicas of the running plan stopped */
    uint32_t reconfigured; /* re-planning: kept, with another batch size */
    uint32_t spread_added; /* replicas plan_spread added so that no failure domain holds
                              every replica of a model that asks for spread */
    uint32_t lost_gpus, lost_replicas; /* re-planning: GPUs of the running plan gone
                                          (lost, drained, or no longer in the cluster) and
                                          the replicas they held (placed again) */
    double seconds;   /* planning time */
    char note[256];   /* policy-specific remark (simplifications that mattered) */
    int exact_status; /* plan_exact only: PLAN_EXACT_* */
} plan_solution;

enum {
    PLAN_EXACT_NONE,
    PLAN_EXACT_OPTIMAL,
    PLAN_EXACT_TIMEOUT,
    PLAN_EXACT_INFEASIBLE,
    PLAN_EXACT_REFUSED /* the interference model refused the program's plan: USHER's is kept */
};
/* GLPK's time limit for plan_exact, ms (tests lower it) */
extern int plan_exact_time_limit_ms;

/* ---- problems ---------------------------------------------------------------- */
/* Fill every model's configurations from the estimator. Errors name the model. */
int plan_problem_profile(plan_problem *p, usher_estimator *e, usher_model **models,
                         usher_error *err);
void plan_problem_free(plan_problem *p);
/* m's dims (names and values, in order) as one key; 0: none */
uint64_t plan_dims_hash(const plan_model *m);

/* ---- inputs (input.c) ------------------------------------------------------------
 * Read cluster.yaml, then workload.yaml (models loaded relative to the
 * workload file's directory, profiled with e, and freed again). Every error
 * names the file, the line and the field. A model no GPU type can serve
 * within its SLO is an error naming the fastest latency there is. */
int plan_read_cluster(const char *path, const gpu_catalog *cat, plan_problem *p, usher_error *err);
/* free p->nodes (plan_problem_free does) */
void plan_nodes_free(plan_problem *p);
int plan_read_workload(const char *path, usher_estimator *e, plan_problem *p, usher_error *err);
/* A running plan (plan.json written by usher plan) as a solution of p:
 * GPUs matched by type and node, replicas by model name, batch and share.
 * *dropped counts replicas that no longer match a candidate, or that the
 * interference model refuses beside the GPU's replicas read before them
 * (they restart). More than 100% of a GPU's shares or memory is an error. */
int plan_read_running(const char *path, const plan_problem *p, plan_solution *s,
                      uint32_t *dropped, usher_error *err);
/* The same from text in memory, label naming it in messages (fuzzing, tests);
 * plan_parse_workload reads the fields only: no model is loaded or profiled. */
int plan_parse_cluster(const char *text, size_t len, const char *label, const gpu_catalog *cat,
                       plan_problem *p, usher_error *err);
int plan_parse_workload(const char *text, size_t len, const char *label, plan_problem *p,
                        usher_error *err);
int plan_parse_running(const char *text, size_t len, const char *label, const plan_problem *p,
                       plan_solution *s, uint32_t *dropped, usher_error *err);

/* ---- solutions ---------------------------------------------------------------- */
int plan_solution_init(plan_solution *s, const plan_problem *p, const char *policy);
void plan_solution_free(plan_solution *s);
/* open a GPU of type t; index or -1 (limit reached, or OOM) */
int plan_open(plan_solution *s, const plan_problem *p, uint16_t type, int group);
/* GPUs of type t that may still be opened */
int64_t plan_type_left(const plan_solution *s, const plan_problem *p, uint16_t type);
/* c fits beside used_c compute and used_m memory (tentative counters, any type) */
static inline bool plan_room_fits(double used_c, double used_m, const plan_cfg *c)
{
    return used_c + c->creq <= PLAN_FIT_MAX && used_m + c->mreq <= PLAN_FIT_MAX;
}

/* ---- the queueing cap (queue.c; docs/internals/plan.md "Queueing"): the
 * constants below are the analytic model's, used off the measured table ---- */
#define PLAN_QUEUE_PCT 99 /* the latency percentile reported (plan.json latency_p99_ms) */
/* the share of requests the cap lets miss: 0.5%, not 1%. The model's tail is
 * up to 1.6x light against M/D/1's exact one at low loads (its constant), and
 * a finite run has sampling error (+-0.15% at 40,000 requests, 3 sigma):
 * at 0.5% M/D/1's exact attainment at the cap is >= 99.2% (test_plan) */
#define PLAN_QUEUE_TAIL 0.005
/* the cap never passes this share of a full batch's throughput: the runtime's
 * batcher cuts a batch to what the oldest request's deadline allows, and past
 * about 95% one burst can start a spell of small batches the load does not let
 * it leave (test_plan queue_model_against_the_batcher: 85% within the SLO at
 * 96% on one seed) */
#define PLAN_QUEUE_RHO_MAX 0.9
/* the runtime's admission refuses a request whose predicted latency, plus 15%
 * kept in hand, passes its deadline (src/runtime/admit.c KEEP_PCT): the cap
 * holds PLAN_QUEUE_KEEP x p99 within the SLO */
#define PLAN_QUEUE_KEEP 1.15
/* the predicted p99 latency (ms: queueing + batching + compute) of a replica
 * running batches of up to `batch`, a full one taking d_ms and one of a single
 * request l1_ms, under arrivals at `rate` req/s whose gaps have coefficient of
 * variation cv (1: Poisson); INFINITY at or past full load */
double plan_queue_p99(int batch, double d_ms, double l1_ms, double rate, double cv);
/* the highest rate (req/s) whose plan_queue_p99 is within slo_ms; 0 if none */
double plan_queue_rate(int batch, double d_ms, double l1_ms, double slo_ms, double cv);
/* what a replica of m's configuration c may carry when a full batch takes
 * lat_ms (alone, or beside its neighbours; its batch of one slowed alike):
 * the load up to which the runtime's batcher meets m's SLO for 99% under its
 * arrivals, from the measured table (queue_table.c) where it reaches, else
 * plan_queue_rate (SLO / PLAN_QUEUE_KEEP, at most PLAN_QUEUE_RHO_MAX); batch /
 * lat_ms with p->queue_off */
double plan_queue_thr(const plan_problem *p, const plan_model *m, const plan_cfg *c,
                      double lat_ms);
/* replica r's p99 bound at its load (its co-located latency where given): the
 * lesser of plan_queue_p99 and the SLO the measured table needs for the load */
double plan_queue_replica_p99(const struct plan_solution *s, const plan_problem *p,
                              const struct plan_replica *r);

/* ---- the feasibility rule (coloc.c; docs/internals/plan.md "Feasibility") ----- */
typedef enum plan_verdict {
    PLAN_FITS = 0,
    PLAN_NO_ROOM,      /* shares or memory past 100% */
    PLAN_MISSES_SLO,   /* PLAN_SLO_FACTOR x co-located latency > SLO */
    PLAN_OVERLOADED,   /* load > co-located throughput */
    PLAN_DRAM_FULL,    /* sum of busy x DRAM utilisation > 1 */
    PLAN_CANNOT_JUDGE, /* the model refused its inputs (a problem built without them) */
} plan_verdict;

const char *plan_verdict_name(plan_verdict v);

/*
 * The one rule: may replicas r[0..n) run together on one GPU of type t?
 * Always: sum(Creq) and sum(Mreq) <= 100%. With p->interference, the
 * interference model's prediction over all of them (if_predict, the default
 * model): every replica's PLAN_SLO_FACTOR x co-located latency within its
 * model's SLO, its load within its co-located throughput, and sum(busy x DRAM
 * utilisation) <= 1; without it, each load within its throughput alone.
 * res (NULL: not wanted) receives each replica's figures (alone ones without
 * the model), *bad (NULL: not wanted) the first replica refused.
 */
plan_verdict plan_judge(const plan_problem *p, uint16_t t, const plan_replica *r, uint32_t n,
                        if_result *res, uint32_t *bad);
struct plan_solution;
/*
 * The rule for one placement: GPU gpu of s as it is, less replica `skip`
 * (-1: none; a replica being replaced), plus model m's configuration cfg
 * carrying at least `load` req/s. Policies that plan with the model
 * (s->sharing PLAN_SHARE_MODEL, p->interference) get plan_judge over the
 * whole GPU; the others its type and room only. *thr (NULL: not wanted): the
 * throughput the newcomer may be loaded to there (plan_cap's value once added).
 * Remembers what the model refused for its latency or DRAM (plan_gpu.refused).
 */
bool plan_fits_with(struct plan_solution *s, const plan_problem *p, uint32_t gpu, uint32_t m,
                    uint32_t cfg, double load, int skip, double *thr);
/* plan_fits_with where GPU gpu's replicas may give up load to make room: the
 * latency, DRAM and room parts of the rule, and shed[k] (g->n entries) what
 * replica k carries above its co-located throughput beside the newcomer (the
 * caller moves it elsewhere before adding, or gives up) */
bool plan_fits_shedding(struct plan_solution *s, const plan_problem *p, uint32_t gpu, uint32_t m,
                        uint32_t cfg, double load, int skip, double *thr, double *shed);
/* the throughput replica r may be loaded to: co-located for policies that plan
 * with the model, alone otherwise */
double plan_cap(const struct plan_solution *s, const plan_problem *p, const plan_replica *r);
/* what placement loads replica r to: plan_cap, at most the throughput its
 * configuration is costed at (plan_thr: beside replicas like it filling the
 * GPU), so that neighbours placed after it still find it within its
 * co-located throughput. Without the model: its throughput alone */
double plan_target(const struct plan_solution *s, const plan_problem *p, const plan_replica *r);
/* a replica left GPU gpu, or a load there shrank: what the model refused there
 * may fit now (every place that lowers a load calls it) */
void plan_coloc_forget(struct plan_solution *s, uint32_t gpu);
/* recompute lat_co / thr_co of GPU gpu's replicas (plan_add and plan_remove do) */
void plan_coloc_refresh(struct plan_solution *s, const plan_problem *p, uint32_t gpu);
/* type t's device for the model (if_device_of): USHER_ERR_INVALID naming the
 * type when the catalog lacks its DRAM bandwidth or L2 size */
int plan_coloc_type(plan_problem *p, uint16_t t, usher_error *err);
/* configuration c's replica for the model, from its profile pr, checked by a
 * prediction of it alone: USHER_ERR_INVALID naming the missing field; *alone_ok
 * false when the model refuses it even alone (its DRAM past the device's).
 * Fills c's lat_full, thr_full and alone_only against the model's SLO slo_ms */
int plan_coloc_cfg(const plan_problem *p, plan_cfg *c, const usher_profile *pr, double slo_ms,
                   bool *alone_ok, usher_error *err);
/* c's alone_only against SLO slo_ms, from the lat_full plan_coloc_cfg gave it
 * (which is the same for every SLO): what plan_coloc_cfg sets */
bool plan_coloc_alone_only(const plan_cfg *c, double slo_ms);
/* the memo of predictions (coloc.c), sized to the models; none on OOM */
void plan_memo_init(plan_problem *p);
void plan_memo_free(plan_problem *p);
/* what best fit minimises: the room left on g after c, compute plus memory */
static inline double plan_leftover(const plan_gpu *g, const plan_cfg *c)
{
    return (100 - g->used_c - c->creq) + (100 - g->used_m - c->mreq);
}
/* append a replica to GPU gpu without touching its counters (the time-sliced
 * baselines keep their own); 0 or USHER_ERR_NOMEM */
int plan_push(plan_solution *s, uint32_t gpu, plan_replica r);
/* add a replica (capacity must fit); returns 0 or USHER_ERR_NOMEM */
int plan_add(plan_solution *s, const plan_problem *p, uint32_t gpu, uint32_t model, uint32_t cfg,
             double load);
void plan_remove(plan_solution *s, const plan_problem *p, uint32_t gpu, uint32_t idx);
/* undo the last plan_add on GPU gpu: its replica gone, the counters back to
 * (used_c, used_m) as they were before it (bit for bit: a tentative move leaves
 * no trace) */
void plan_unadd(plan_solution *s, const plan_problem *p, uint32_t gpu, double used_c, double used_m);
/* remove every replica of GPU gpu, the last first (the GPU stays, empty) */
void plan_empty(plan_solution *s, const plan_problem *p, uint32_t gpu);
/* sort order[0..n) by key[order[i]], largest first, ties in their present
 * order (qsort on structs that carry their key: no state outside the call);
 * 0 or USHER_ERR_NOMEM */
int plan_sort_desc(uint32_t *order, uint32_t n, const double *key);
/* drop GPUs without replicas */
void plan_compact(plan_solution *s);
/* recompute served rates from replica loads: a replica's load counts as served
 * when the model's co-located latency meets its SLO and the load its co-located
 * throughput (spatial policies, problems with the model); time-sliced policies
 * and problems without the model count every load (their own rules) */
void plan_account(plan_solution *s, const plan_problem *p);

typedef struct plan_totals {
    uint32_t gpus, replicas;
    double cost;            /* $/h */
    double rate, served, unserved;
    double util_c, util_m;  /* mean over GPUs, % */
    double power_w;         /* estimated board power at the planned loads */
    bool feasible;          /* every model fully served */
} plan_totals;

void plan_totals_of(const plan_solution *s, const plan_problem *p, plan_totals *t);
/*
 * An independent lower bound on the $/h of any plan that serves every rate
 * (min-cost), over the problem's configurations: per resource (compute share,
 * memory), each model served entirely by its cheapest configuration per
 * request/s, price x that resource's share / 100 / thr; the larger of the two
 * sums. As if GPUs could be cut into any fractions (no packing, no type limits) and
 * co-location never slowed anyone (the interference model only slows: thr,
 * the configuration's rate alone under the queueing cap, is the most a
 * replica of it carries). Planning by the same configurations cannot cost
 * less. A model without configurations contributes nothing.
 */
double plan_cost_lower_bound(const plan_problem *p);

/* best-fit: the open GPU of type t (group first if group >= 0) with the smallest
 * leftover (100 - used_c - c) + (100 - used_m - m) where model m's
 * configuration cfg fits (plan_fits_with, load 0); -1 if none */
int plan_best_fit(plan_solution *s, const plan_problem *p, uint16_t type, uint32_t m, uint32_t cfg,
                  int group);

/* every GPU's index on its cluster entry: its ident - 1 where set, else the
 * smallest index of its type that no other GPU of s holds and that is not
 * lost, GPUs in order. idx has s->n entries; 0 or USHER_ERR_NOMEM */
int plan_gpu_indices(const plan_solution *s, const plan_problem *p, uint32_t *idx);

/* ---- anti-affinity (spread.c; docs/plan-input.md "spread") ----------------------
 * A model with spread (node, rack or zone) must have replicas in two failure
 * domains at least, so that losing one never takes it down. Policies plan as
 * they always do; plan_spread then adds, for each such model whose replicas
 * all sit in one domain, one replica in another domain and moves to it its
 * share of the model's load (a model with one replica gets two). */
/* any model asks for spread */
bool plan_spread_wanted(const plan_problem *p);
/* the cluster can honour every model's spread: each GPU entry has the domain
 * asked (a node; its node's rack or zone) and there are two domains at least.
 * USHER_ERR_INVALID naming the model, the entry and the files' lines */
int plan_spread_check(const plan_problem *p, usher_error *err);
/* add the replicas the models' spread asks for (plan_spread_wanted false: nothing);
 * s->spread_added counts them. Spatial policies that plan with the model
 * (usher, re-planning) place the new replica in free room where the rule
 * allows, else on a new GPU; the others (their own sharing rules) on a new GPU
 * of its own, in a configuration of the share the policy gave the model where
 * one exists there, else any.
 * USHER_ERR_LIMIT naming the model when no GPU outside its domain can take
 * one (a fixed cluster full there); then plan_account */
int plan_spread(const plan_problem *p, plan_solution *s, usher_error *err);
/* GPU entry t's failure domain at level lv (pf_spread): its node, its node's
 * rack or zone; "" when it has none */
const char *plan_spread_domain(const plan_problem *p, uint16_t t, int lv);

/* ---- local search (improve.c) ------------------------------------------------- */
int plan_solution_clone(const plan_solution *s, plan_solution *out);
/* place up to *load of model m in the free room of the GPUs other than `skip`
 * (-1: none skipped); *load keeps what found no home */
int plan_absorb(plan_solution *s, const plan_problem *p, uint32_t m, double *load, int skip);
/* the same with as few replicas started as can be (re-planning) */
int plan_absorb_fewest(plan_solution *s, const plan_problem *p, uint32_t m, double *load);
/* what is left unserved onto the replicas' spare co-located throughput
 * (plan_cap, beyond plan_target), models in `order` (NULL: index order); then
 * plan_account. Loads only: no replica moves */
void plan_fill(plan_solution *s, const plan_problem *p, const uint32_t *order);
/* empty GPUs (or swap them for cheaper types) while the plan gets cheaper;
 * plans over max_gpus GPUs are left as they are */
int plan_improve(plan_solution *s, const plan_problem *p, uint32_t max_gpus);

/* estimated board power of GPU i at its planned loads, W */
double plan_gpu_power(const plan_solution *s, const plan_problem *p, uint32_t i);

/* ---- output (output.c) ------------------------------------------------------------ */

/* what a run adds to a plan in its output */
typedef struct plan_run {
    double profile_seconds;
    bool replanned;
    char replan_from[256];
    uint32_t dropped;          /* replicas of the running plan that could not be kept */
    uint32_t replicas_before;
    uint32_t max_moves;
} plan_run;

struct us_buf;
int plan_write_json(const plan_solution *s, const plan_problem *p, const plan_run *run,
                    struct us_buf *out);
void plan_write_table(const plan_solution *s, const plan_problem *p, const plan_run *run,
                      FILE *f);

/* ---- policies ----------------------------------------------------------------- */
typedef struct plan_policy {
    const char *name;
    const char *summary;
    int (*solve)(const plan_problem *p, plan_solution *s, usher_error *err);
} plan_policy;

const plan_policy *plan_policy_find(const char *name);
/* run a policy into s (initialised here), timed, and check the result */
int plan_solve(const plan_problem *p, const plan_policy *pol, plan_solution *s, usher_error *err);
/* every GPU within its type's limit, memory and compute <= 100%, loads within
 * throughput: USHER_ERR_INTERNAL naming the policy otherwise */
int plan_check(const plan_solution *s, const plan_problem *p, usher_error *err);
const plan_policy *plan_policy_at(size_t i);

int plan_usher(const plan_problem *p, plan_solution *s, usher_error *err);
/* USHER's classes (usher.c, step 2): Creq against the memory side - Mreq, and
 * with the interference model the DRAM bandwidth the configuration uses (% of
 * the GPU's, averaged over its latency), the larger; 1.2 either way */
typedef enum plan_class { PLAN_BALANCED, PLAN_COMPUTE_HEAVY, PLAN_MEMORY_HEAVY } plan_class;
plan_class plan_usher_class(const plan_problem *p, const plan_cfg *c);
/* USHER's steps 1-3 on p alone: gid[m] the group of model m (its
 * representative model), cls[m] the class of its reference configuration
 * (NULL: not wanted); 0 or USHER_ERR_NOMEM */
int plan_usher_groups(const plan_problem *p, uint32_t *gid, plan_class *cls);
int plan_shepherd(const plan_problem *p, plan_solution *s, usher_error *err);
int plan_gpulet(const plan_problem *p, plan_solution *s, usher_error *err);
int plan_alpaserve(const plan_problem *p, plan_solution *s, usher_error *err);
int plan_triton(const plan_problem *p, plan_solution *s, usher_error *err);
int plan_static_mps(const plan_problem *p, plan_solution *s, usher_error *err);
int plan_exact(const plan_problem *p, plan_solution *s, usher_error *err);

/* ---- merge groups (groups.c; docs/merge.md "Merge groups in the plan") ---------
 * After policy pol planned p into s: find the models whose ONNX files merge
 * (usher_merge_cluster, then usher_merge_models), profile each merged graph
 * with e, and re-plan with a group's members replaced by one model of the
 * merged graph while that serves at least as much for less. On success p and
 * s may have been replaced (p->merges then says which models a merged model
 * serves); a candidate that does not merge, profile or plan is left out and
 * named in s->note. Errors: USHER_ERR_NOMEM, or the cluster file's. */
int plan_merge_groups(usher_estimator *e, const char *cluster, const plan_policy *pol,
                      plan_problem *p, plan_solution *s, usher_error *err);
/* Re-planning from running (a plan.json): its merge_groups whose members are all
 * still in p (by name, one precision) are merged and profiled again, and p becomes
 * the problem with them (named as in the running plan, so that its group replicas
 * match); *kept says how many. A group that no longer merges or profiles leaves its
 * members alone (the re-plan restarts them). Errors: running's (pf_load),
 * USHER_ERR_NOMEM, the cluster file's. */
int plan_merge_running(usher_estimator *e, const char *cluster, const char *running,
                       plan_problem *p, uint32_t *kept, usher_error *err);
void plan_merges_free(plan_problem *p);
struct pf_plan;
/* plan.json's models[] (the workload's models) and merge_groups of a problem with
 * merges, into f (f->m and f->groups allocated: plan_merges_file_free) */
int plan_merges_file(const plan_problem *p, const plan_solution *s, struct pf_plan *f);
void plan_merges_file_free(struct pf_plan *f);
/* the workload's models: how many (p->n without merges), and model i's figures
 * (USHER_ERR_INVALID without merges or past the end) */
uint32_t plan_merges_n_orig(const plan_problem *p);
/* t (plan_totals_of) with rate, served and unserved over the workload's models
 * (a group's members at its served share); unchanged without merges */
void plan_merges_totals(const plan_problem *p, const plan_solution *s, plan_totals *t);
int plan_merges_orig(const plan_problem *p, const plan_solution *s, uint32_t i, const char **name,
                     double *rate, double *slo_ms, double *goodput, uint32_t *replicas);
/* the groups, one line each, for the table */
void plan_merges_print(const plan_problem *p, FILE *f);

/* Re-plan: start from `old` (GPUs and replicas of a running plan) with the
 * problem's new rates; keep what still serves, start the fewest replicas;
 * then, if max_moves > 0, spend up to that many further moves to close GPUs.
 * s->moves counts the replicas started, s->stopped those stopped. */
int plan_replan(const plan_problem *p, const plan_solution *old, uint32_t max_moves,
                plan_solution *s, usher_error *err);
/* the same, the models' deficits met in `order` (NULL: index order) - on a
 * cluster too small, the first get their rate (USHER's fairness, usher.c);
 * keep_loads: the running replicas keep their loads until their model's turn,
 * so that the models before it cannot slow them below what they carry */
int plan_replan_order(const plan_problem *p, const plan_solution *old, uint32_t max_moves,
                      const uint32_t *order, bool keep_loads, plan_solution *s,
                      usher_error *err);

#endif
