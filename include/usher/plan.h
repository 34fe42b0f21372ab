/*
 * usher/plan.h - where every model runs: GPUs, replicas, batch sizes and
 * compute shares that meet each model's latency SLO at its request rate, at
 * the lowest cost (elastic cluster) or with the most goodput (fixed one).
 *
 * Inputs are two YAML files (docs/plan-input.md): the workload (models,
 * rates, SLOs) and the cluster (GPU types, counts or prices and limits, the
 * objective). Every model is profiled with the estimator (usher/estimate.h);
 * a policy - USHER's own, a peer system's, or the exact optimum for small
 * instances - turns the profiles into a plan. The plan is written as
 * plan.json (docs/plan-json.md) and read back to re-plan with few moves.
 *
 *   usher_plan_params pp = usher_plan_default_params();
 *   pp.workload = "workload.yaml"; pp.cluster = "cluster.yaml";
 *   usher_plan *pl;
 *   if (usher_plan_make(e, &pp, &pl, &err) < 0) { puts(err.msg); ... }
 *   usher_plan_write_json(pl, "plan.json", &err);
 *   usher_plan_free(pl);
 *
 * A plan that cannot serve every rate (a fixed cluster too small) is still
 * a plan: summary.feasible is false and usher_plan_model() gives the
 * unserved rate per model.
 */
#ifndef USHER_PLAN_H
#define USHER_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "usher/estimate.h"
#include "usher/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct usher_plan usher_plan;

typedef struct usher_plan_params {
    const char *workload;   /* workload.yaml (required) */
    const char *cluster;    /* cluster.yaml (required) */
    const char *policy;     /* NULL: "usher"; see usher_plan_policy() */
    const char *running;    /* plan.json of the running plan: re-plan from it with the
                               fewest moves (policy is then not used); NULL: from scratch */
    uint32_t max_moves;     /* re-planning: further moves allowed to cut cost (0: none) */
    uint32_t exact_time_limit_ms; /* policy "exact": GLPK's limit; 0: 20000 */
    int merge;              /* merge groups (docs/merge.md "Merge groups in the plan"):
                               0 (default): the usher policy looks for them, the others
                               plan every model alone (the papers' systems); 1: every
                               policy looks for them; -1: none. With running: the
                               running plan's groups are kept (-1: members alone) */
    bool interference_off;  /* true: plan as before the interference model (a replica's
                               latency alone, shares and memory only), for comparison;
                               false (default): every replica meets its SLO and carries
                               its load beside the others on its GPU (docs/policies.md) */
} usher_plan_params;

usher_plan_params usher_plan_default_params(void);

/*
 * Read the inputs, profile the models, plan. Errors name the file, line and
 * field: USHER_ERR_PARSE (malformed YAML, a bad field), USHER_ERR_NOT_FOUND
 * (a file), USHER_ERR_LIMIT (an SLO no GPU type meets, with the fastest
 * latency there is; a size limit), USHER_ERR_INVALID (unknown policy; a GPU
 * type whose DRAM bandwidth or L2 size the catalog lacks, or a profile
 * without what the interference model needs, unless interference_off),
 * errors of usher_model_load for the models, USHER_ERR_NOMEM.
 */
int usher_plan_make(usher_estimator *e, const usher_plan_params *p, usher_plan **out,
                    usher_error *err);
void usher_plan_free(usher_plan *pl); /* NULL is fine */

typedef struct usher_plan_summary {
    const char *policy;
    uint32_t gpus, replicas, models;
    double cost_per_hour;
    double rate, goodput, unserved; /* requests/s, summed over models */
    double power_w;                 /* estimated board power at the planned loads */
    double profile_seconds, plan_seconds;
    uint32_t moves;                 /* re-planning: replicas started (new, moved, restarted) */
    uint32_t stopped;               /* re-planning: replicas of the running plan stopped */
    bool feasible;                  /* every model fully served within its SLO */
} usher_plan_summary;

int usher_plan_get_summary(const usher_plan *pl, usher_plan_summary *out);

typedef struct usher_plan_model {
    const char *name;
    double rate, slo_ms, goodput, unserved;
    uint32_t replicas;
} usher_plan_model;

/* model i (0 .. summary.models - 1), in workload order */
int usher_plan_model_at(const usher_plan *pl, uint32_t i, usher_plan_model *out);

/* plan.json: to a file ("-": standard output), atomically replaced */
int usher_plan_write_json(const usher_plan *pl, const char *path, usher_error *err);
/* the readable table */
void usher_plan_print(const usher_plan *pl, FILE *f);

/* policies: name and one-line summary of the i-th, NULL past the end */
const char *usher_plan_policy(size_t i, const char **summary);

#ifdef __cplusplus
}
#endif

#endif
