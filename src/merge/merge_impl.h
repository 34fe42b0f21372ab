/*
 * merge_impl.h - the merger's internal objects (layer 4, prefix merge_).
 * The public contract is include/usher/merge.h; docs/internals/merge.md
 * describes the passes.
 */
#ifndef MERGE_IMPL_H
#define MERGE_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"
#include "usher/merge.h"

#define MERGE_MAX_MODELS 64
#define MERGE_LABEL_MAX 64

/* one common weight: the first tensor seen with these contents (within rtol) */
typedef struct merge_weight {
    ir_tensor *src;      /* the first model's tensor */
    uint32_t model;      /* which model it came from */
    uint32_t n_users;    /* models whose tensor maps here */
    ir_tensor *emitted;  /* the merged model's initializer, once written */
} merge_weight;

typedef struct merge_src {
    const char *path;
    char label[MERGE_LABEL_MAX];
    ir_model *ir;
    ir_node **nodes;    /* main graph, topological */
    uint32_t n_nodes;
    merge_weight **wmap; /* per tensor id: its common weight, or NULL (not a constant) */
    ir_node **match;    /* per node id: the first model's node matched to it, or NULL */
    int32_t *pos;       /* per node id: index in nodes[], -1 for subgraph nodes */
    uint64_t weight_bytes;
    uint32_t kernels;
    double sig_ops[IR_OP_COUNT + 1]; /* operator-type histogram */
    double sig_shapes[64];           /* weight-shape histogram (hashed into 64 bins) */
} merge_src;

struct usher_merge {
    usher_merge_params p;
    char **shape_strs, **value_strs, **data_strs; /* copies of p.shapes / values / data */
    merge_src *src;
    uint32_t n_src;
    merge_weight *weights; /* common weights, n_weights used */
    uint32_t n_weights, cap_weights;
    ir_model *merged;      /* built by merge_build */
    usher_merge_report rep;
    char why[1024];
};

/* merge.c */
uint32_t merge_kernel_count(const ir_graph *g); /* nodes that launch work (recursive) */
bool merge_attrs_equal(const ir_node *a, const ir_node *b);
bool merge_tensor_close(const ir_tensor *a, const ir_tensor *b, double rtol);

/* hungarian.c: minimum-cost assignment of an n x n cost matrix (row-major);
 * assign[row] = column. USHER_ERR_NOMEM on allocation failure. */
int merge_hungarian(const double *cost, uint32_t n, uint32_t *assign);

/* build.c: the merged graph for m (kind chosen or forced), into m->merged */
int merge_build(usher_merge *m, usher_error *err);

/* verify.c: run `merged_path` and every source on ORT and compare */
int merge_verify(usher_merge *m, const char *merged_path, usher_error *err);

#endif
