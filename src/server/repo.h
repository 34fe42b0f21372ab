/*
 * repo.h - the model repository (layer 8, prefix repo_).
 *
 * Triton's layout, so existing repositories work as they are:
 *
 *   <repo>/<model>/config.pbtxt       optional: Triton's model configuration
 *   <repo>/<model>/usher.yaml         optional: usher's serving objectives
 *   <repo>/<model>/<version>/model.onnx   (or default_model_filename)
 *
 * The highest numeric version directory holding the model file is served
 * (Triton's default version policy, latest 1). Names are validated before
 * any file system call (RELIABILITY.md INPUT-5); directories are opened
 * beneath the repository without following symbolic links.
 *
 * From config.pbtxt (protobuf text format, read by a bounded tokenizer)
 * usher reads: name, platform / backend (ONNX Runtime only), max_batch_size,
 * instance_group count and kind, dynamic_batching
 * max_queue_delay_microseconds, version_policy (latest only),
 * default_model_filename; other fields are skipped (their syntax checked).
 * From usher.yaml: slo_ms, rate (expected requests/s), priority, replicas,
 * threads (intra-op threads per replica), max_batch, sample (a request body
 * file next to it, used as the input when the model is profiled at load). Formats:
 * docs/serve.md.
 */
#ifndef REPO_H
#define REPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "usher/status.h"

#define REPO_MAX_MODELS 1024
#define REPO_NAME_MAX 128 /* bytes with the terminator */
#define REPO_MAX_IO 64     /* inputs described in config.pbtxt (as RT_MAX_IO) */
#define REPO_MAX_PREFERRED 8

/* One input as config.pbtxt and usher.yaml describe it. */
typedef struct repo_input {
    char name[US_TENSOR_NAME_MAX];
    us_dtype dtype;            /* config's data_type; US_DT_INVALID: not given */
    int rank;                  /* config's dims (Triton's meaning: without the batch dim when
                                  max_batch_size > 0); -1: no dims given */
    int64_t dim[US_TENSOR_MAX_RANK]; /* -1: dynamic */
    int max_rank;              /* usher.yaml max_dims for this input; 0: none */
    int64_t max[US_TENSOR_MAX_RANK]; /* the largest each dim may be (same indexing as dim);
                                        0: unbounded */
} repo_input;

typedef struct repo_model {
    char name[REPO_NAME_MAX];
    int64_t version;          /* the version served */
    char path[4096];          /* absolute path of the model file (never shown to clients) */
    char file[256];           /* its base name, for messages */
    /* config.pbtxt */
    bool has_config;
    int64_t max_batch_size;   /* 0: no batch dim in the requests (Triton's meaning); -1 unset */
    int instances;            /* instance_group count summed; 0: unset */
    bool kind_gpu;            /* an instance_group of KIND_GPU */
    int64_t max_queue_delay_us; /* -1: unset */
    int preferred_batch[REPO_MAX_PREFERRED]; /* dynamic_batching.preferred_batch_size */
    int n_preferred;
    repo_input inputs[REPO_MAX_IO]; /* config.pbtxt input [...] and usher.yaml max_dims */
    size_t n_inputs;
    /* usher.yaml */
    double slo_ms;            /* 0: unset (default 100 ms) */
    double rate;              /* expected requests/s; 0: unset */
    int priority;
    int replicas;             /* 0: planned */
    int threads;              /* 0: planned */
    int max_batch;            /* 0: planned */
    char sample[4096];        /* a request body (usher.yaml `sample`, a file in the model's
                                 directory): the input profiled at load; empty: zeros */
    /* loading */
    char error[512];          /* why it cannot be served; empty when fine */
} repo_model;

typedef struct repo {
    repo_model *m;
    size_t n;
} repo;

/*
 * Scan a repository. A model whose directory or files are wrong is kept
 * with repo_model.error set (it is reported UNAVAILABLE, others serve:
 * FAULT-8); a repository that cannot be read at all is an error.
 */
int repo_scan(const char *dir, repo *out, usher_error *err);
void repo_free(repo *r);
/* read a model's usher.yaml again (slo_ms, rate, priority, replicas, threads,
 * max_batch; `sample` is kept as it was): a plan change while serving. A
 * file that went away means the defaults. */
int repo_reread_objectives(const char *dir, repo_model *m, usher_error *err);
const repo_model *repo_find(const repo *r, const char *name);

/*
 * A model name as a client may send it: 1 to 127 bytes of letters, digits
 * and '-', '_', '.', not "." or "..", no '/', no leading or trailing space,
 * no control bytes. False means 400, before anything else looks at it.
 */
bool repo_name_ok(const char *name, size_t len);

/* config.pbtxt from text (tests, fuzzing); fields as in repo_model */
int repo_parse_config(const char *text, size_t len, const char *label, repo_model *m,
                      usher_error *err);

#endif
