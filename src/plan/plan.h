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

typedef enum plan_objective { PLAN_MIN_COST, PLAN_MAX_GOODPUT } plan_objective;

/* one feasible replica configuration of a model on a GPU type */
typedef struct plan_cfg {
    uint16_t type;
    int batch;
    double share;   /* MPS share granted, % */
    double creq;    /* compute reserved, % (= share) */
    double mreq;    /* memory, % */
    double mreq_mb;
    double thr;     /* requests/s at full load */
    double lat_ms;  /* one batch at that share */
    double power_w; /* average board power attributable while busy */
    double bw_gbs;
} plan_cfg;

typedef struct plan_model {
    char *name, *path;
    double rate, slo_ms;
    int priority;     /* max-goodput weighs its requests 1 + priority (plan_weight) */
    int merge_group;  /* models of one group are co-located (merger); 0: none */
    char *group;      /* its name in workload.yaml, NULL if none */
    int precision;    /* usher_precision */
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
    double tdp_w, idle_frac;
    size_t line;      /* where it was declared */
} plan_type;

typedef struct plan_problem {
    plan_model *m;
    uint32_t n;
    plan_type t[PLAN_MAX_TYPES];
    uint32_t nt;
    plan_objective objective;
    bool fixed;       /* counts given: the GPUs exist */
    char workload[256], cluster[256]; /* file names, for messages */
} plan_problem;

typedef struct plan_replica {
    uint32_t model;
    uint32_t cfg;     /* index into the model's cfg */
    double load;      /* requests/s assigned (<= cfg thr) */
} plan_replica;

typedef struct plan_gpu {
    uint16_t type;
    uint32_t bk, bpos; /* its place in the best-fit index (solution.c) */
    int group;        /* planner group that opened it, -1 if none */
    double used_c, used_m;
    plan_replica *r;
    uint32_t n, cap;
} plan_gpu;

typedef struct plan_bucket {
    uint32_t *id;
    uint32_t n, cap;
} plan_bucket;

typedef struct plan_solution {
    char policy[32];
    plan_gpu *g;
    uint32_t n, cap;
    int64_t used_type[PLAN_MAX_TYPES]; /* GPUs of each type */
    plan_bucket *bk;  /* best-fit index, NULL until a query builds it */
    double *served;   /* per model, requests/s within SLO */
    uint32_t n_models;
    uint32_t moves;   /* re-planning: replicas started (new, moved or restarted) */
    uint32_t stopped; /* re-planning: replicas of the running plan stopped */
    uint32_t reconfigured; /* re-planning: kept, with another batch size */
    double seconds;   /* planning time */
    char note[256];   /* policy-specific remark (simplifications that mattered) */
    int exact_status; /* plan_exact only: PLAN_EXACT_* */
} plan_solution;

enum { PLAN_EXACT_NONE, PLAN_EXACT_OPTIMAL, PLAN_EXACT_TIMEOUT, PLAN_EXACT_INFEASIBLE };
/* GLPK's time limit for plan_exact, ms (tests lower it) */
extern int plan_exact_time_limit_ms;

/* ---- problems ---------------------------------------------------------------- */
/* Fill every model's configurations from the estimator. Errors name the model. */
int plan_problem_profile(plan_problem *p, usher_estimator *e, usher_model **models,
                         usher_error *err);
void plan_problem_free(plan_problem *p);

/* ---- inputs (input.c) ------------------------------------------------------------
 * Read cluster.yaml, then workload.yaml (models loaded relative to the
 * workload file's directory, profiled with e, and freed again). Every error
 * names the file, the line and the field. A model no GPU type can serve
 * within its SLO is an error naming the fastest latency there is. */
int plan_read_cluster(const char *path, const gpu_catalog *cat, plan_problem *p, usher_error *err);
int plan_read_workload(const char *path, usher_estimator *e, plan_problem *p, usher_error *err);
/* A running plan (plan.json written by usher plan) as a solution of p:
 * GPUs matched by type and node, replicas by model name, batch and share.
 * *dropped counts replicas that no longer match a candidate (they restart). */
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
/* c fits on g: same type, room for it */
bool plan_fits(const plan_gpu *g, const plan_cfg *c);
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
/* remove every replica of GPU gpu, the last first (the GPU stays, empty) */
void plan_empty(plan_solution *s, const plan_problem *p, uint32_t gpu);
/* sort order[0..n) by key[order[i]], largest first, ties in their present
 * order (qsort on structs that carry their key: no state outside the call);
 * 0 or USHER_ERR_NOMEM */
int plan_sort_desc(uint32_t *order, uint32_t n, const double *key);
/* drop GPUs without replicas */
void plan_compact(plan_solution *s);
/* recompute served rates from replica loads */
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

/* best-fit: the open GPU of type t (group first if group >= 0) with the smallest
 * leftover (100 - used_c - c) + (100 - used_m - m) that fits; -1 if none */
int plan_best_fit(plan_solution *s, const plan_problem *p, uint16_t type, const plan_cfg *c,
                  int group);

/* ---- local search (improve.c) ------------------------------------------------- */
int plan_solution_clone(const plan_solution *s, plan_solution *out);
/* place up to *load of model m in the free room of the GPUs other than `skip`
 * (-1: none skipped); *load keeps what found no home */
int plan_absorb(plan_solution *s, const plan_problem *p, uint32_t m, double *load, int skip);
/* the same with as few replicas started as can be (re-planning) */
int plan_absorb_fewest(plan_solution *s, const plan_problem *p, uint32_t m, double *load);
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
int plan_shepherd(const plan_problem *p, plan_solution *s, usher_error *err);
int plan_gpulet(const plan_problem *p, plan_solution *s, usher_error *err);
int plan_alpaserve(const plan_problem *p, plan_solution *s, usher_error *err);
int plan_triton(const plan_problem *p, plan_solution *s, usher_error *err);
int plan_static_mps(const plan_problem *p, plan_solution *s, usher_error *err);
int plan_exact(const plan_problem *p, plan_solution *s, usher_error *err);

/* Re-plan: start from `old` (GPUs and replicas of a running plan) with the
 * problem's new rates; keep what still serves, start the fewest replicas;
 * then, if max_moves > 0, spend up to that many further moves to close GPUs.
 * s->moves counts the replicas started, s->stopped those stopped. */
int plan_replan(const plan_problem *p, const plan_solution *old, uint32_t max_moves,
                plan_solution *s, usher_error *err);

#endif
