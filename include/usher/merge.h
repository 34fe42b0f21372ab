/*
 * usher/merge.h - the operator graph merger (public API, prefix usher_merge_).
 *
 * Merges related ONNX models (fine-tuned variants of one backbone, copies of
 * one architecture) into one standard ONNX graph that keeps every original
 * input and output, renamed "<model>/<name>" (the mapping is in the merged
 * file's metadata_props), and checks it on ONNX Runtime before it is used.
 * docs/merge.md describes the kinds of merge and their limits.
 *
 * Lifecycle:
 *   usher_merge_models(paths) ──► usher_merge_report / usher_merge_json (what was found)
 *        ──► usher_merge_write(path)   (verify when asked, then temp file + rename)
 *        ──► usher_merge_free
 */
#ifndef USHER_MERGE_H
#define USHER_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usher/model.h"
#include "usher/status.h"

typedef enum usher_merge_kind {
    USHER_MERGE_SHARED,       /* (a) shared operators run once over the concatenated batch */
    USHER_MERGE_STACKED,      /* (b) same shapes, different weights: grouped / batched ops */
    USHER_MERGE_SIDE_BY_SIDE, /* fallback: each model's operators kept, common weights once */
} usher_merge_kind;

typedef struct usher_merge_params {
    double weight_rtol;   /* common weights: |a-b| <= rtol * max(|a|,|b|) per element
                             (default 1e-7; 0: bit-identical only) */
    double cluster_eps;   /* DBSCAN radius over the signature distance, 0..1 (default 0.3) */
    int kind;             /* -1 (default): the best kind that applies; else a usher_merge_kind
                             to force (refused with the reason when it does not apply) */
    bool verify;          /* usher_merge_write runs the merged and separate models first */
    double verify_tol;    /* FP32: max abs error <= verify_tol * output scale (default 1e-5) */
    int verify_runs;      /* random input sets (default 2) */
    uint64_t seed;        /* of the random inputs (default 1) */
    int64_t verify_dim;   /* size given to a dynamic dim when no override names it (default 2) */
    const char *const *shapes; /* overrides "INPUT=2x512" for every model's input INPUT */
    size_t n_shapes;
    const char *const *values; /* "INPUT=16000": a scalar integer input's value */
    size_t n_values;
    const char *const *data;   /* "INPUT=FILE": real input data (raw little-endian elements of
                                  the input's type, shaped by `shapes` or its static shape),
                                  fed to every model's input INPUT in one extra round */
    size_t n_data;
    const char *ort_library; /* NULL: the backend's default search */
} usher_merge_params;

usher_merge_params usher_merge_default_params(void);

typedef struct usher_merge usher_merge;

typedef struct usher_merge_report {
    size_t n_models;
    usher_merge_kind kind;
    const char *kind_name;   /* "shared", "stacked", "side-by-side" */
    const char *why;         /* why this kind (and why not the others) */
    uint64_t weight_bytes_before, weight_bytes_after; /* constants, all models / merged */
    uint64_t kernels_before, kernels_after; /* compute nodes (not Constant/Identity) */
    uint32_t n_weights;            /* constant tensors over all models */
    uint32_t n_weights_identical;  /* of which bit-identical to one seen before (an earlier
                                      model's, or a repeat within one model) */
    uint32_t n_weights_close;      /* of which equal within weight_rtol to an earlier model's
                                      (not bit-identical) */
    uint32_t n_nodes_matched;      /* operators matched one-to-one to the first model's */
    uint32_t n_nodes_shared;       /* operators run once for all models (kind shared) */
    uint32_t n_nodes_partial;      /* operators whose weights are partly common: the common
                                      output channels run once (case c, kind shared) */
    double max_signature_distance; /* largest pairwise distance in the group */
    double build_seconds;          /* load + analysis + graph construction */
    bool verified;                 /* usher_merge_write verified it */
    double verify_max_rel_err;     /* worst max|merged - separate| / scale over outputs */
    double measured_speedup;       /* verify: separate time / merged time, ORT CPU, 1 intra-op
                                      thread, the verification inputs (0: not measured) */
    bool stacked_dropped;          /* verify found the stacked form slower than the separate
                                      models and wrote side-by-side instead (kind auto only) */
} usher_merge_report;

/*
 * Load the models, cluster them (DBSCAN over the signature distance), match
 * their operators (Hungarian algorithm per operator type), find common
 * weights and build the merged graph in memory. Refusals (USHER_ERR_INVALID
 * / USHER_ERR_UNSUPPORTED, err names the model and the reason): fewer than
 * two models, a model that does not load (a cycle is reported by the
 * loader), an operator usher does not know or a non-default domain,
 * different default-domain opsets, different input counts or types, models
 * that do not fall in one cluster. On failure *out is NULL and nothing is
 * left allocated.
 */
int usher_merge_models(const char *const *paths, size_t n, const usher_merge_params *p,
                       usher_merge **out, usher_error *err);

/*
 * Write the merged model to path: a temporary file beside it is written,
 * verified on ONNX Runtime when params.verify, and renamed over path only if
 * it passed. With params.verify and params.kind -1, a stacked merge that runs
 * slower than the separate models on this machine's ONNX Runtime (CPU) is
 * rebuilt side-by-side, verified again and written instead (the report says
 * so: stacked_dropped, why). On any failure path is untouched and no temporary file is left
 * (USHER_ERR_INVALID when verification failed: err says "verification
 * failed" and names the output, the error and the allowed error).
 */
int usher_merge_write(usher_merge *m, const char *path, usher_error *err);

const usher_merge_report *usher_merge_get_report(const usher_merge *m);
/* A label per model ("variant0"), as used in the merged names. */
const char *usher_merge_label(const usher_merge *m, size_t i);
/* A member model's dynamic dim `dim` under the names of the merged graph `merged` in which
 * the member's label is `label` (usher_merge_label): the dim at the same axis of the merged
 * input "<label>/<the member's input>" (*name, owned by `merged`). USHER_ERR_NOT_FOUND when
 * the member declares no such dim or the merged graph no counterpart. */
int usher_merge_member_dim(const usher_model *member, const char *label,
                           const usher_model *merged, const char *dim, const char **name);
/* The report as one JSON object (free with usher_merge_json_free); NULL on OOM. */
char *usher_merge_json(const usher_merge *m);
void usher_merge_json_free(char *s);
void usher_merge_free(usher_merge *m); /* NULL ok */

/*
 * Clustering only: the pairwise signature distances of n loaded models and
 * their DBSCAN labels (cluster id >= 0; -1 noise, with minPts 2). dist must
 * hold n*n doubles, labels n ints.
 */
int usher_merge_cluster(const char *const *paths, size_t n, const usher_merge_params *p,
                        double *dist, int *labels, usher_error *err);

#endif
