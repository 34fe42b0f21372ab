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
 * instance_group count, kind and gpus (the replicas: repo_instances), dynamic_batching
 * max_queue_delay_microseconds and preferred_batch_size, version_policy
 * (latest only), default_model_filename, and each input's name, data_type
 * and dims (enforced on every request: repo_check_input); other fields
 * (output, reshape, ...) are skipped (their syntax checked).
 * From usher.yaml: slo_ms, rate (expected requests/s), priority, replicas,
 * threads (intra-op threads per replica), max_batch, sample (a request body
 * file next to it, used as the input when the model is profiled at load),
 * max_dims (per input, the largest each dim may be), merge_group (models naming the same
 * group are merged into one graph and served by one worker: docs/serve.md, Merge groups),
 * merge_shape, merge_value and merge_tolerance (how that merge is verified, as `usher
 * merge --shape`, `--value` (comma-separated) and `--tolerance` take them), merge_kind
 * (`usher merge --kind`). Formats: docs/serve.md.
 *
 * A load may bring the configuration as JSON instead of config.pbtxt (Triton's
 * repository extension, parameters.config): repo_config_from_json rewrites it as
 * config.pbtxt text for the same reader. Poll mode watches the directories through
 * repo_list and repo_fingerprint (file metadata, never contents).
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

/*
 * One input as config.pbtxt and usher.yaml describe it. dim[] and max[] are
 * indexed as config.pbtxt's dims: without the batch dim when the requests
 * carry one (repo_batch_dim), the full shape otherwise.
 */
typedef struct repo_input {
    char name[US_TENSOR_NAME_MAX];
    us_dtype dtype;            /* config's data_type (TYPE_STRING: US_DT_BYTES);
                                  US_DT_INVALID: not given */
    int rank;                  /* how many dims config.pbtxt gives; -1: none given (an input
                                  only usher.yaml max_dims names) */
    int64_t dim[US_TENSOR_MAX_RANK]; /* -1: dynamic; else 0 .. 2^40, fixed */
    int max_rank;              /* how many values usher.yaml max_dims gives; 0: none */
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
    /* instance_group, Triton's meaning: each entry gives `count` (default 1) instances of
     * its kind; KIND_GPU (and KIND_AUTO, Triton's default kind) count x each GPU listed in
     * `gpus`, or on every GPU of the machine without the list; KIND_CPU and KIND_MODEL
     * count; the entries add up. Kept in two sums, because the second depends on the
     * machine: repo_instances gives the total. */
    int instance_groups;      /* instance_group entries read; 0: none (the plan decides) */
    int instances;            /* instances that do not depend on the machine: KIND_CPU and
                                 KIND_MODEL counts, count x the GPUs listed */
    int instances_per_gpu;    /* KIND_GPU / KIND_AUTO counts without a gpus list: that many
                                 per GPU of the machine */
    bool kind_gpu;            /* an instance_group of KIND_GPU */
    int64_t max_queue_delay_us; /* -1: unset */
    int preferred_batch[REPO_MAX_PREFERRED]; /* dynamic_batching.preferred_batch_size:
                                                distinct, ascending, none over a
                                                max_batch_size > 0 */
    int n_preferred;
    repo_input inputs[REPO_MAX_IO]; /* config.pbtxt input [...] in its order, then those only
                                       usher.yaml max_dims names */
    size_t n_inputs;
    /* usher.yaml */
    double slo_ms;            /* 0: unset (default 100 ms) */
    double rate;              /* expected requests/s; 0: unset */
    int priority;
    int replicas;             /* 0: planned */
    int threads;              /* 0: planned */
    int max_batch;            /* 0: planned */
    char sample[4096];        /* a request body (usher.yaml `sample`, a file in the model's
                                 directory): the input profiled at load; empty:
                                 synthetic inputs (cpuplan.c) */
    char merge_group[REPO_NAME_MAX]; /* usher.yaml merge_group; empty: served alone */
    char merge_shape[256];    /* "INPUT=1x512,...": the merge's verification shapes; empty: none */
    char merge_value[256];    /* "INPUT=16000,...": scalar integer inputs' verification values */
    double merge_tolerance;   /* the verification's tolerance, x each output's scale (0: usher
                                 merge's default, 1e-5) */
    int merge_kind;           /* usher.yaml merge_kind: a usher_merge_kind to force (0 shared,
                                 1 stacked, 2 side-by-side); -1: the best that applies */
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
 * max_batch, max_dims; `sample` is kept as it was): a plan change while
 * serving. A file that went away means the defaults (no max_dims). On an
 * error *m is left as it was. */
int repo_reread_objectives(const char *dir, repo_model *m, usher_error *err);
const repo_model *repo_find(const repo *r, const char *name);
/* read one model's directory again (model control's load): *out as repo_scan gives it,
 * its error set when the directory or its files are wrong; an error only when the name
 * is invalid or the repository cannot be opened */
int repo_scan_one(const char *dir, const char *name, repo_model *out, usher_error *err);

/*
 * The same with a load's "config" parameter (Triton's repository extension): config_json,
 * when not NULL, is a model configuration in Triton's JSON form, read instead of the
 * directory's config.pbtxt (config_len bytes, at most REPO_CONFIG_JSON_MAX). A bad one sets
 * out->error, naming the field ("parameters.config: field 'max_batch_size': ...").
 */
#define REPO_CONFIG_JSON_MAX (1u << 20) /* bytes, as a config.pbtxt */
int repo_scan_one_config(const char *dir, const char *name, const char *config_json,
                         size_t config_len, repo_model *out, usher_error *err);
/*
 * A model configuration in Triton's JSON form (protobuf's JSON mapping of ModelConfig)
 * rewritten as config.pbtxt text for repo_parse_config: the fields usher reads (above),
 * their JSON types checked (integers as numbers or decimal strings, enums as names), the
 * others skipped. On success *out (us_free) holds *out_len bytes of text; on an error
 * (USHER_ERR_PARSE, LIMIT, NOMEM; the message names the field) *out is NULL.
 */
int repo_config_from_json(const char *json, size_t len, char **out, size_t *out_len,
                          usher_error *err);

/*
 * Watching a repository (poll mode). repo_list: the names of the model directories in dir
 * (valid names, directories, not links; at most cap, in no order). repo_fingerprint: a
 * 64-bit print of model directory `name` taken from its files' metadata, never their
 * contents: every regular file in it and in its numeric version directories (at most 4096
 * entries each), by name, size, inode, modification and change time. A file being written
 * changes its size or times, so a print equal across two scans means nothing was written
 * between them. 0: no such directory (or an invalid name); never 0 otherwise.
 */
int repo_list(const char *dir, char (*names)[REPO_NAME_MAX], size_t cap, size_t *n,
              usher_error *err);
uint64_t repo_fingerprint(const char *dir, const char *name);

/*
 * A model name as a client may send it: 1 to 127 bytes of letters, digits
 * and '-', '_', '.', not "." or "..", no '/', no leading or trailing space,
 * no control bytes. False means 400, before anything else looks at it.
 */
bool repo_name_ok(const char *name, size_t len);

/* config.pbtxt from text (tests, fuzzing); fields as in repo_model */
int repo_parse_config(const char *text, size_t len, const char *label, repo_model *m,
                      usher_error *err);

/*
 * The replicas config.pbtxt's instance_group asks for on a machine with `gpus` GPUs (0:
 * none; a KIND_GPU / KIND_AUTO entry without a gpus list then counts as on one device, the
 * CPU): instances + instances_per_gpu x max(gpus, 1), at most REPO_MAX_INSTANCES (*clamped
 * set when the sum was over it). 0 when config.pbtxt gives no instance_group.
 */
#define REPO_MAX_INSTANCES 256 /* replicas instance_group may ask for (RT_MAX_REPLICAS) */
#define REPO_MAX_GROUP_GPUS 64 /* GPUs one instance_group entry may list */
int repo_instances(const repo_model *m, int gpus, bool *clamped);

/* the input of that name config.pbtxt or usher.yaml describes; NULL if none */
const repo_input *repo_find_input(const repo_model *m, const char *name);

/*
 * Do requests to this model carry a batch dim before config.pbtxt's dims?
 * Yes when max_batch_size > 0 (Triton's meaning), no when it is 0; when
 * config.pbtxt does not give it, as usher batches the model (`batchable`:
 * its ONNX inputs have a dynamic leading dim).
 */
bool repo_batch_dim(const repo_model *m, bool batchable);

/*
 * Does a request's input tensor t (its full shape: with the batch dim first
 * when batch_dim) fit what config.pbtxt (data_type, dims: the same rank,
 * fixed dims equal) and usher.yaml (max_dims) say of the input of its name?
 * 0 if so, and for an input neither file names; otherwise -1 and msg (for
 * the client's 400, cap bytes) names the input, the dim (its index in the
 * request's shape) and both values: "input 'x': dim 3 is 20000,
 * config.pbtxt fixes it at 192".
 */
int repo_check_input(const repo_model *m, const us_tensor *t, bool batch_dim, char *msg,
                     size_t cap);

#endif
