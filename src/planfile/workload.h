/*
 * workload.h - workload.yaml, the planner's and the simulator's common input
 * (layer 2, prefix pf_): the one reader of its fields.
 *
 * `usher plan` (src/plan/input.c, which then loads and profiles the models)
 * and `usher simulate` / `usher compare` (src/sim/input.c, which only needs
 * the rates and SLOs) read the same file; both read it here, so they accept
 * and refuse the same files with the same words. The format is
 * docs/plan-input.md:
 *   - a map with models (a sequence of 1 .. max_models entries) and
 *     optionally spread (none, node, rack or zone: every model's default);
 *   - per entry: name (required; 1 .. PF_NAME_MAX characters of letters,
 *     digits and - _ . : /; unique), model (required; a non-empty path,
 *     resolved against the workload file's directory unless absolute), rate
 *     (required, requests/s in [0, 1e9]), slo_ms (required, (0.001 .. 3.6e6]),
 *     priority (integer 0 .. 1000, default 0), min_share ([0, 1], default 0),
 *     arrival_cv ([0.01, 10]; absent: 0, meaning Poisson), precision (fp32,
 *     tf32, fp16 or int8; default fp32), group (a name, or absent), spread
 *     (none, node, rack or zone; absent: the file's default), dims (a map of
 *     at most PF_DIMS_MAX dynamic dims to values: a name of 1 .. PF_DIM_NAME_MAX
 *     printable characters without spaces - a symbolic dim such as seq, or
 *     <input>:<axis> for an unnamed one as usher inspect lists it - to an
 *     integer in [1, PF_DIM_VALUE_MAX] or `batch`, the configuration's batch;
 *     whether the model has such a dim is the planner's check, not this one);
 *   - unknown keys are refused, with a "did you mean" hint;
 *   - every error is "<file>:<line>: field 'models[2].rate': what".
 * The document is read with the bounded YAML reader (core/yaml.h) within
 * pf_workload_limits(): 64 MiB and 2,000,000 nodes (10,000s of models).
 */
#ifndef PF_WORKLOAD_H
#define PF_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/yaml.h"

#define PF_NAME_MAX 63

/* anti-affinity: the failure domain a model's replicas are spread over, so
 * that losing one (a node, a rack, a zone) leaves a replica elsewhere */
typedef enum pf_spread { PF_SPREAD_NONE = 0, PF_SPREAD_NODE, PF_SPREAD_RACK, PF_SPREAD_ZONE } pf_spread;
/* "none", "node", "rack", "zone" */
const char *pf_spread_name(pf_spread s);

#define PF_DIMS_MAX 16              /* dims: entries of one model */
#define PF_DIM_NAME_MAX 255         /* characters of a dim's name */
#define PF_DIM_VALUE_MAX (1 << 24)  /* a dim's largest value (16,777,216) */

/* one entry of a model's dims: a dynamic dim bound for planning */
typedef struct pf_dim {
    char *name;    /* seq, or <input>:<axis> (input:1) */
    int64_t value; /* 1 .. PF_DIM_VALUE_MAX; 0: `batch` (each configuration's batch) */
    size_t line;   /* of its key */
} pf_dim;

typedef struct pf_workload_model {
    char *name, *path, *group;    /* path resolved; group NULL: none */
    double rate, slo_ms;          /* requests/s; ms */
    double min_share;             /* [0, 1]; 0: none */
    double arrival_cv;            /* 0: absent (Poisson) */
    int priority;
    char precision[8];            /* fp32, tf32, fp16, int8 */
    pf_spread spread;             /* its own, else the file's default */
    pf_dim *dims;                 /* NULL, 0: none */
    uint32_t n_dims;
    size_t line;                  /* of the entry */
} pf_workload_model;

typedef struct pf_workload {
    char *label;                  /* the file */
    pf_workload_model *m;
    uint32_t n;
} pf_workload;

us_yaml_limits pf_workload_limits(void);

/* The fields of a loaded document (the caller keeps d, e.g. to name a field's
 * line in a later error: entry i is us_yaml_item(models, i)). *out is zeroed
 * first and freed on any error. */
int pf_workload_doc(const us_yaml_doc *d, uint32_t max_models, pf_workload *out,
                    usher_error *err);
/* the file at path, or text[0..len) labelled label */
int pf_workload_read(const char *path, uint32_t max_models, pf_workload *out, usher_error *err);
int pf_workload_parse(const char *text, size_t len, const char *label, uint32_t max_models,
                      pf_workload *out, usher_error *err);
void pf_workload_free(pf_workload *w); /* a zeroed or freed one is fine */

/* names of models, GPU entries, nodes and groups: 1 .. PF_NAME_MAX printable
 * characters of letters, digits and - _ . : / */
bool pf_name_ok(const char *s);

/* the string at key as a name (pf_name_ok), NULL when absent or null and not
 * required; errors name path */
int pf_need_name(const us_yaml_doc *d, const us_yaml_node *map, const char *key,
                 const char *path, const char **out, bool required, usher_error *err);

#endif
