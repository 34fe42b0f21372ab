/*
 * usher/planfile.h - a plan.json read for the front ends (public API, prefix
 * usher_planfile_), over src/planfile (the one reader and writer of schema
 * version 1, docs/plan-json.md).
 *
 * What the exporters (`usher export k8s|triton`, src/cli/export.c) need from
 * a plan: its GPUs with their node, type and index, their replicas, the
 * models; checks of what a deployment needs beyond the schema (shares and
 * memory within each GPU, no GPU placed twice, the nodes and GPU types of
 * cluster.yaml); and a node's slice written back as a plan.json.
 *
 * Lifecycle:
 *   usher_planfile_load(path) ──► *_info / *_gpu_at / *_replica_at / *_model_at
 *        ──► usher_planfile_check / usher_planfile_check_cluster
 *        ──► usher_planfile_write_slice(node, FILE)
 *        ──► usher_planfile_free
 * Strings point into the loaded plan and live until usher_planfile_free.
 */
#ifndef USHER_PLANFILE_H
#define USHER_PLANFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "usher/status.h"

typedef struct usher_planfile usher_planfile;

typedef struct usher_planfile_info {
    const char *label;    /* the file's name, as in messages */
    const char *policy;   /* NULL: not given */
    const char *cluster;  /* cluster.yaml the plan was made for (as given to usher plan); NULL */
    bool feasible;
    uint32_t n_gpus, n_models, n_replicas;
    uint32_t n_groups;    /* merge_groups (docs/plan-json.md): replicas naming a group serve
                             each of its members (usher_planfile_served_models) */
} usher_planfile_info;

typedef struct usher_planfile_gpu {
    const char *type;     /* catalog key; a MIG instance is "a100-80gb:3g.40gb" */
    const char *node;     /* NULL: none */
    bool has_index;       /* the plan gives its index on its type and node */
    uint32_t index;
    double compute_pct, memory_pct;
    uint32_t n_replicas;
    size_t line;          /* where it is in the file */
} usher_planfile_gpu;

typedef struct usher_planfile_replica {
    const char *model;
    int batch;            /* 1..4096 */
    double share;         /* % of the GPU's SMs, 1..100 (CUDA_MPS_ACTIVE_THREAD_PERCENTAGE) */
    double memory_mb, latency_ms, latency_colocated_ms, throughput, load; /* 0: not given */
    size_t line;
} usher_planfile_replica;

typedef struct usher_planfile_model {
    const char *name;
    double rate, slo_ms;  /* 0: not given */
    uint32_t replicas;
} usher_planfile_model;

/* a node of plan.json's nodes[] (cluster.yaml's nodes:, written only when declared) */
typedef struct usher_planfile_node {
    const char *name, *rack, *zone; /* rack, zone NULL: none */
    const char *const *labels;      /* 2 x n_labels: key, value, key, ... as in the file */
    uint32_t n_labels;
} usher_planfile_node;

/* Read and check the schema (any error of the reader: "<file>:<line>: field
 * '<path>': what", another schema_version included). On error *out is NULL. */
int usher_planfile_load(const char *path, usher_planfile **out, usher_error *err);
void usher_planfile_free(usher_planfile *p); /* NULL is fine */

void usher_planfile_get_info(const usher_planfile *p, usher_planfile_info *out);
/* USHER_ERR_INVALID past the end, *out untouched */
int usher_planfile_gpu_at(const usher_planfile *p, uint32_t i, usher_planfile_gpu *out);
int usher_planfile_replica_at(const usher_planfile *p, uint32_t gpu, uint32_t r,
                              usher_planfile_replica *out);
int usher_planfile_model_at(const usher_planfile *p, uint32_t i, usher_planfile_model *out);
/* the node called name in the plan's nodes[]: USHER_OK, or USHER_ERR_INVALID when the
 * plan declares none by that name (a plan of a cluster.yaml without nodes: declares none) */
int usher_planfile_node_find(const usher_planfile *p, const char *name, usher_planfile_node *out);

/*
 * What a deployment needs beyond the schema, in the file's order, the first
 * failure reported (USHER_ERR_INVALID, "<file>:<line>: gpus[i] (node N, type
 * T): ..."):
 *   - a GPU's replicas' shares sum to at most 100% (not checked for the
 *     time-sliced policies shepherd, alpaserve and triton, whose replicas
 *     take the whole GPU in turn) and its memory_pct is at most 100;
 *   - no two GPUs with the same node, type and index.
 */
int usher_planfile_check(const usher_planfile *p, usher_error *err);

/*
 * Check the plan against the GPUs of a cluster.yaml (docs/plan-input.md; its
 * gpus[].type, node, count and max are read, other keys ignored): every GPU's
 * node is one cluster.yaml names (or both have none), that node has GPUs of
 * its type, no more GPUs of a type on a node than its count (fixed) or max
 * (elastic), and a GPU's index below that number. USHER_ERR_INVALID naming
 * the plan's line and the GPU; the cluster file's errors name that file.
 */
int usher_planfile_check_cluster(const usher_planfile *p, const char *cluster_path,
                                 usher_error *err);

/* at most this many models one replica serves (a merge group's members) */
#define USHER_PLANFILE_MAX_SERVED 16
/* The models a replica whose model is `model` serves: a merge group's members
 * when it names one of the plan's merge_groups, else model itself. Fills
 * out[0 .. min(count, cap)) and returns the count (1 to
 * USHER_PLANFILE_MAX_SERVED). */
uint32_t usher_planfile_served_models(const usher_planfile *p, const char *model,
                                      const char **out, uint32_t cap);

/*
 * Write the plan's slice for node (NULL: the GPUs without a node) as a
 * plan.json of schema version 1 that the same reader reads: the header
 * fields, the node's GPUs in the file's order with their replicas, the
 * models[] entries of the models they hold (replicas counted on the node;
 * a merge group's replicas count for each member), the merge_groups with a
 * replica on the node, totals of the slice (gpus, replicas, cost; the rest 0). A node the plan
 * does not name gives a plan without GPUs. USHER_ERR_IO when f fails.
 */
int usher_planfile_write_slice(const usher_planfile *p, const char *node, FILE *f,
                               usher_error *err);

#endif
