/*
 * planfile.h - plan.json schema version 1, the contract between the planner
 * and the server (layer 2, prefix pf_): the one reader and the one writer.
 *
 * The schema is docs/plan-json.md. pf_plan is the file as plain C: every
 * field of the schema, nothing derived. The planner (src/plan/output.c)
 * fills one and calls pf_write; `usher plan --replan` (src/plan/input.c)
 * and `usher serve --plan` (src/server/cpuplan.c) call pf_load and then
 * check what the file means to them (GPU types in the cluster, models in the
 * repository) themselves.
 *
 * The subset the reader accepts (JSON, or YAML with the same structure: the
 * bounded core/yaml.h reader; the file is untrusted):
 *   - at most PF_MAX_BYTES bytes and PF_MAX_NODES nodes, depth 32;
 *   - required: schema_version (1; another version is refused), gpus (a
 *     sequence), gpus[i].type (a non-empty string), gpus[i].replicas (a
 *     sequence), and per replica model (a non-empty string), batch (an
 *     integer 1..PF_MAX_BATCH) and share (a number 1..100, % of the GPU's
 *     SMs);
 *   - every other field of the schema is optional (absent or null: 0, false
 *     or NULL; replan absent: has_replan false) but typed and range-checked
 *     when present: numbers in [0, PF_MAX_NUMBER] (priority 0..PF_MAX_PRIORITY),
 *     counts integers, strings scalars, feasible true or false, objects and
 *     sequences where the schema has them; gpus[i].id, when present, is i;
 *     gpus[i].index, when present, an integer 0..PF_MAX_GPU_INDEX (the GPU's
 *     identity on its type and node; the planner refuses two alike);
 *   - nodes (optional): name (a non-empty string), rack, zone (strings),
 *     labels (a map of at most PF_MAX_LABELS scalars); models[i].spread
 *     (optional): node, rack or zone; models[i].dims (optional): a map of at
 *     most PF_MAX_MODEL_DIMS dim names to integers 1..PF_MAX_DIM_VALUE or
 *     "batch" (workload.yaml dims: what the plan's figures assumed);
 *   - merge_groups (optional): name (1..PF_MAX_GROUP_NAME of [A-Za-z0-9-_.], unique,
 *     not a models[] name), kind (shared, stacked or side-by-side), members (a
 *     sequence of 2..PF_MAX_GROUP_MEMBERS models[] names, each in one group at most),
 *     weight_bytes_before/after (numbers); a replica's model is a models[] name or a
 *     group's name (plans without models[] are not checked);
 *   - keys the schema does not name are ignored: fields are only ever added
 *     within a version.
 * Every error is "<file>:<line>: field '<path>': what", the path naming the
 * field as in gpus[3].replicas[1].batch.
 *
 * The writer writes every field in the order of docs/plan-json.md, numbers
 * with 6 significant digits, indented with one replica and one model per
 * line (so that a diff of two plans reads as the moves between them);
 * a NULL or empty string is written as null, and replan only when
 * has_replan; models[i].spread only when set and nodes only when there are
 * some, merge_groups only when there are some, models[i].dims only when set
 * (a plan without them is byte-identical to one written before them).
 * Reading what pf_write wrote gives the same plan back, numbers
 * rounded to 6 significant digits.
 */
#ifndef PF_PLANFILE_H
#define PF_PLANFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "usher/status.h"

#define PF_SCHEMA_VERSION 1
#define PF_MAX_BYTES (256u << 20)  /* a plan.json */
#define PF_MAX_NODES 20000000      /* JSON values and keys */
#define PF_MAX_BATCH 4096          /* rows of one batch (the runtime's RT_MAX_BATCH) */
#define PF_MAX_PRIORITY 1000       /* as workload.yaml */
#define PF_MAX_GPU_INDEX 1000000   /* gpus[].index (cluster.yaml's count or max at most) */
#define PF_MAX_NUMBER 1e15         /* any other number (a total rate: 1e9 req/s x 1e5 models) */

typedef struct pf_replica {
    const char *model;
    int batch;
    double share;       /* % of the GPU's SMs, 1..100 */
    double memory_mb, latency_ms, throughput, load;
    /* predicted beside the GPU's other replicas (docs/interference.md); 0: not
     * given (plans written before the interference model) */
    double latency_colocated_ms, throughput_colocated;
    /* the planner's predicted p99 latency at its load under the workload's
     * arrivals, ms (queueing + batching + compute; docs/plan-json.md); 0: not given */
    double latency_p99_ms;
    const char *group;  /* NULL: none */
    size_t line;        /* reader: where it is (for the callers' messages) */
} pf_replica;

typedef struct pf_gpu {
    const char *type;   /* catalog key */
    const char *node;   /* NULL: none */
    bool has_index;     /* index given (plans written before it have none) */
    uint32_t index;     /* its index on its type and node: stable across re-plans */
    double price_per_hour, compute_pct, memory_pct, power_w;
    pf_replica *r;
    uint32_t n;
    size_t line;
} pf_gpu;

#define PF_MAX_MODEL_DIMS 16       /* workload.yaml's PF_DIMS_MAX */
#define PF_MAX_DIM_VALUE (1 << 24) /* workload.yaml's PF_DIM_VALUE_MAX */
/* a dynamic dim the plan bound (workload.yaml dims) */
typedef struct pf_model_dim {
    const char *name;
    int64_t value; /* 1 .. PF_MAX_DIM_VALUE; 0: "batch" (each replica's batch) */
} pf_model_dim;

typedef struct pf_model {
    const char *name;
    pf_model_dim *dims; /* NULL, 0: none, not written (reader: allocated) */
    uint32_t n_dims;
    double rate, slo_ms, goodput, unserved;
    uint32_t replicas;
    int priority;
    const char *group;  /* NULL: none */
    const char *spread; /* node, rack or zone (anti-affinity asked); NULL: none, not written */
} pf_model;

/* a node cluster.yaml declared (nodes:), written only when it declared some */
#define PF_MAX_LABELS 64
typedef struct pf_node {
    const char *name, *rack, *zone; /* rack, zone NULL: none */
    const char **labels;            /* 2 x n_labels: key, value, key, ... (reader: allocated) */
    uint32_t n_labels;
    size_t line;
} pf_node;

/* a merge group the planner formed (merge_groups[], written only when there are some):
 * its members' models are served by one merged graph (docs/merge.md); replicas whose
 * model is the group's name serve every member */
#define PF_MAX_GROUP_MEMBERS 16 /* the runtime's RT_MAX_MEMBERS */
#define PF_MAX_GROUP_NAME 127   /* as usher.yaml's merge_group */
typedef struct pf_group {
    const char *name;   /* 1..PF_MAX_GROUP_NAME letters, digits, '-', '_', '.' */
    const char *kind;   /* shared, stacked or side-by-side; NULL: not given */
    const char **members; /* models[] names, 2..PF_MAX_GROUP_MEMBERS (reader: allocated) */
    uint32_t n_members;
    double weight_bytes_before, weight_bytes_after; /* 0: not given */
    size_t line;
} pf_group;

typedef struct pf_totals {
    uint32_t gpus, replicas;
    double cost_per_hour, rate, goodput, unserved;
    double compute_utilisation_pct, memory_utilisation_pct;
    double power_w, energy_kwh_per_hour, joules_per_request;
} pf_totals;

typedef struct pf_replan {
    const char *from;   /* the running plan */
    uint32_t started, stopped, replicas_before, max_moves;
    uint32_t lost_gpus, lost_replicas; /* GPUs of the running plan gone, their replicas */
} pf_replan;

typedef struct pf_plan {
    const char *generator, *policy, *objective, *workload, *cluster, *note; /* NULL: null */
    bool feasible;
    double profile_seconds, plan_seconds;
    bool has_replan;
    pf_replan replan;
    pf_totals totals;
    pf_model *m;
    uint32_t n_models;
    pf_gpu *g;
    uint32_t n_gpus;
    pf_node *nodes;     /* NULL, 0: none declared */
    uint32_t n_nodes;
    pf_group *groups;   /* NULL, 0: no merge group */
    uint32_t n_groups;
    /* reader: the file's name for messages, and what the strings point into */
    const char *label;
    void *doc;
} pf_plan;

/* Read the plan.json at path (pf_parse: text in memory, label naming it in
 * messages). On success *out holds the plan until pf_free; on any error
 * *out is empty (pf_free allowed) and err says where and what. */
int pf_load(const char *path, pf_plan *out, usher_error *err);
int pf_parse(const char *text, size_t len, const char *label, pf_plan *out, usher_error *err);
/* What pf_load / pf_parse allocated; a zeroed or already freed plan is fine. */
void pf_free(pf_plan *p);

/* Append the plan as plan.json (ending with a newline) to out:
 * USHER_OK, USHER_ERR_NOMEM or USHER_ERR_LIMIT (the buffer's limit). */
int pf_write(const pf_plan *p, us_buf *out);

#endif
