/*
 * usher/model.h - loading ONNX models and reading their shape, size and cost.
 *
 * A usher_model is an ONNX model read into usher's graph IR. Weights stay in
 * the mapped file (no copy). Loading checks the file against hard limits
 * and reports the first problem by field. After loading, usher_model_infer
 * computes types, shapes, multiply-accumulates, FLOPs and memory at a batch
 * size (and any other dynamic dims you bind); the accessors below read the
 * results of the last inference.
 *
 *   usher_model *m;
 *   usher_error err;
 *   if (usher_model_load("resnet50.onnx", NULL, &m, &err) < 0) { puts(err.msg); ... }
 *   usher_shape_params sp = usher_shape_default_params();
 *   sp.batch = 8;
 *   usher_model_infer(m, &sp, &err);      // USHER_OK, or a report of what failed
 *   usher_model_summary s;
 *   usher_model_get_summary(m, &s);       // s.macs, s.n_params, ...
 *   usher_model_free(m);
 *
 * Thread safety: a usher_model may be used by one thread at a time;
 * different models are independent.
 */
#ifndef USHER_MODEL_H
#define USHER_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usher/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct usher_model usher_model;

typedef struct usher_load_params {
    uint64_t max_file_bytes;     /* model file size limit; default 4 GiB */
    uint64_t max_external_bytes; /* external data read, summed; default 64 GiB */
    uint32_t max_tensors;        /* tensors anywhere in the model; default 1,000,000 */
    uint32_t max_nodes;          /* nodes anywhere in the model; default 1,000,000 */
    bool graph_only;             /* true: accept weights without data and open no external
                                    data file (estimation and planning need no weights).
                                    false (default): weights must be present unless the file
                                    carries the metadata "usher.graph_only" = "1" */
} usher_load_params;

usher_load_params usher_load_default_params(void);

/*
 * Read an ONNX model. params may be NULL (defaults). On success *out owns
 * the model; on failure *out is NULL, err (if not NULL) names the file and
 * the field at fault, and nothing stays allocated. The model is not yet
 * inferred: call usher_model_infer before reading shapes or costs.
 * Errors: USHER_ERR_NOT_FOUND, USHER_ERR_IO, USHER_ERR_PARSE (malformed
 * file), USHER_ERR_LIMIT (a limit above), USHER_ERR_DENIED (external data
 * outside the model's directory or through a symbolic link),
 * USHER_ERR_UNSUPPORTED (a feature usher does not read), USHER_ERR_NOMEM.
 */
int usher_model_load(const char *path, const usher_load_params *params, usher_model **out,
                     usher_error *err);
/* The same from bytes in memory (copied); external data is refused. */
int usher_model_load_memory(const void *data, size_t len, const usher_load_params *params,
                            usher_model **out, usher_error *err);
void usher_model_free(usher_model *m); /* NULL is fine */

typedef struct usher_dim_binding {
    const char *name; /* a dynamic dim: its dim_param, or "<input>:<axis>" if unnamed */
    int64_t value;    /* >= 1 */
} usher_dim_binding;

typedef struct usher_shape_params {
    int64_t batch; /* > 0: bind the leading dynamic dim of every input; 0: leave symbolic */
    const usher_dim_binding *dims; /* further bindings by name, may be NULL */
    size_t n_dims;
    const usher_dim_binding *values; /* contents of one-element integer inputs, by input
                                        name (e.g. a sample rate that selects a branch) */
    size_t n_values;
} usher_shape_params;

usher_shape_params usher_shape_default_params(void);

/*
 * Infer types, shapes and costs. params may be NULL (nothing bound). A dim
 * nothing binds takes the model's recorded default (usher_model_symbol_default)
 * if it has one, else stays symbolic and costs count it as 1, flagged inexact.
 * Precedence: a named binding, then batch, then the recorded default.
 * Returns USHER_OK when every node was inferred. USHER_ERR_UNSUPPORTED or
 * USHER_ERR_SHAPE mean some nodes were not (an operator usher does not
 * know, or inconsistent attributes): the model is still usable, the
 * summary counts them and usher_model_problem lists them.
 * USHER_ERR_NOT_FOUND / USHER_ERR_INVALID: a binding names no dim or has a
 * bad value; nothing was inferred. May be called again with other params.
 */
int usher_model_infer(usher_model *m, const usher_shape_params *params, usher_error *err);

typedef struct usher_model_summary {
    int64_t ir_version;
    int64_t opset;        /* of the default (ai.onnx) domain */
    const char *producer; /* owned by the model */
    bool graph_only;      /* some weights have no data */
    bool inferred;        /* usher_model_infer has run */
    bool exact;           /* every dim was known: costs are exact, not lower bounds */
    uint64_t n_nodes;     /* subgraphs included */
    uint64_t n_graphs;
    uint32_t n_inputs, n_outputs, n_op_types, n_symbols;
    uint32_t n_unsupported; /* nodes whose operator usher does not know */
    uint32_t n_failed;      /* nodes whose inference failed */
    uint64_t n_params;      /* elements of floating-point weights */
    uint64_t weight_bytes;  /* bytes of all weights and constants, as declared */
    uint64_t macs;          /* multiply-accumulates (conv, gemm, matmul, rnn) */
    uint64_t flops;         /* floating-point operations, 2 per MAC plus the rest */
    uint64_t activation_bytes;      /* all intermediate tensors, summed */
    uint64_t peak_activation_bytes; /* live at once in topological order */
    uint64_t io_bytes;              /* inputs + outputs */
} usher_model_summary;

int usher_model_get_summary(const usher_model *m, usher_model_summary *out);

typedef struct usher_tensor_info {
    const char *name;  /* owned by the model */
    const char *dtype; /* "float32", "int64", ... */
    char shape[256];   /* "[batch,3,224,224]" at the last inference ("?" if unknown) */
    char declared[256]; /* as written in the file */
} usher_tensor_info;

/* i-th input (weights excluded) / output; USHER_ERR_NOT_FOUND past the end. */
int usher_model_input(const usher_model *m, uint32_t i, usher_tensor_info *out);
int usher_model_output(const usher_model *m, uint32_t i, usher_tensor_info *out);

typedef struct usher_op_stat {
    const char *op_type; /* "Conv", or "domain.Op" outside the default domain */
    uint64_t count;      /* nodes, subgraphs included */
    uint64_t macs, flops;
    bool supported;
} usher_op_stat;

/* Operator types sorted by count (descending), then name. */
int usher_model_op(const usher_model *m, uint32_t i, usher_op_stat *out);

typedef struct usher_problem {
    const char *node;    /* node name */
    const char *op_type;
    const char *domain;
    int code;            /* USHER_ERR_UNSUPPORTED or USHER_ERR_SHAPE */
    char message[USHER_ERROR_MAX];
} usher_problem;

/* Nodes the last inference could not handle, in graph order. */
int usher_model_problem(const usher_model *m, uint32_t i, usher_problem *out);

/* The dynamic dims of the model's inputs ("batch", "input:1"), for bindings. */
int usher_model_symbol(const usher_model *m, uint32_t i, const char **name);
/* The dynamic dim at `axis` of input i (weights excluded, as usher_model_input), as
 * declared in the file: USHER_OK with *name as usher_model_symbol gives it ("batch",
 * "input:1"); USHER_ERR_NOT_FOUND when the axis is a literal or an expression, or past
 * the input's rank or the inputs. Axis 0's dim is the one a batch binds. */
int usher_model_input_dim(const usher_model *m, uint32_t i, uint32_t axis, const char **name);
/* Where dynamic dim `name` first appears among the inputs (as usher_model_input_dim names
 * it): its input and axis. USHER_ERR_NOT_FOUND when no input declares it. */
int usher_model_dim_where(const usher_model *m, const char *name, uint32_t *input,
                          uint32_t *axis);
/* The value dim `name` takes when nothing binds it, recorded in the model's metadata
 * ("usher.dim.<name>" = "<decimal>"; the zoo's seq, image size, past length): USHER_OK
 * with *value set, USHER_ERR_NOT_FOUND when the dim has no default or does not exist. */
int usher_model_symbol_default(const usher_model *m, const char *name, int64_t *value);

typedef struct usher_save_params {
    uint64_t strip_min_bytes; /* > 0: drop floating-point weights of at least this many bytes
                                 (the file becomes graph-only) */
    bool fill_random;         /* give weights without data pseudo-random values first */
    uint64_t seed;            /* for fill_random */
    const char *external_data; /* NULL: weights inline; else a file name, written beside path */
    uint64_t external_min_bytes; /* weights at least this big go external; default 1024 */
} usher_save_params;

usher_save_params usher_save_default_params(void);

/*
 * Write the model as ONNX. Stripping and filling change the model in
 * memory too. On failure path (and the external data file) are left as
 * they were.
 */
int usher_model_save(usher_model *m, const char *path, const usher_save_params *params,
                     usher_error *err);

/*
 * The whole inspection result as one JSON object (schema in
 * docs/inspect-json.md): file facts, inputs, outputs, operator histogram,
 * problems, totals at the last inference. *json is NUL-terminated and must
 * be released with usher_free. label names the model in the output.
 */
int usher_model_report_json(const usher_model *m, const char *label, char **json, size_t *len,
                            usher_error *err);

/* Release memory the library returned (usher_model_report_json). NULL is fine. */
void usher_free(void *p);

/* Version string of the library ("0.1.0"). */
const char *usher_version(void);

#ifdef __cplusplus
}
#endif
#endif
