/*
 * srv.h - the server's internals (layer 8, prefix srv_), shared by the
 * HTTP front end (server.c), the local plan (cpuplan.c) and the metrics
 * (metrics.c). The public face is include/usher/serve.h.
 */
#ifndef SRV_H
#define SRV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "runtime/rt.h"
#include "server/oip.h"
#include "server/repo.h"
#include "usher/serve.h"

#define SRV_MAX_PROFILE_BATCH 64
#define SRV_MAX_MODELS REPO_MAX_MODELS /* the model table's capacity: every model name seen,
                                          at start or added later (docs/serve.md) */
/* the status codes counted apart (srv_code_index); the last slot holds the others; 499
 * (nginx's "client closed request") counts HTTP inferences cancelled as their client went,
 * never sent */
#define SRV_CODE_LIST 200, 400, 404, 405, 408, 413, 414, 431, 499, 500, 501, 503
#define SRV_CODES 13
#define SRV_GRPC_CODES 17  /* gRPC status codes 0 (OK) .. 16 (UNAUTHENTICATED) */
#define SRV_LAT_BUCKETS 14 /* request latency histogram, seconds: 1 ms .. 10 s, then +Inf */

/*
 * One model as served: its plan, its runtime, its front-end counters.
 * rt, old, retired and the plan fields change only when a new plan is
 * applied (srv_reload), under the server's rt_lock held for writing; every
 * reader outside start-up holds it for reading.
 */
typedef struct srv_group srv_group;

/* model control (docs/serve.md, Model control): where a model stands; written under
 * rt_lock held for writing, read under it */
typedef enum srv_ctl {
    SRV_CTL_LOADED,    /* loaded (or failed to: error says why) */
    SRV_CTL_UNLOADED,  /* not loaded: never in explicit mode, or unloaded */
    SRV_CTL_LOADING,   /* a load in progress, no runtime serving yet */
    SRV_CTL_UNLOADING, /* an unload in progress: its runtime drains */
} srv_ctl;

typedef struct srv_model {
    const repo_model *rm;       /* s->repo.m[i]: a load copies the re-read directory into it
                                   (rt_lock held for writing); the name never changes */
    srv_ctl ctl;
    srv_group *group;           /* the merge group serving it (rt is the group's); NULL: alone */
    int member;                 /* its index in that group */
    rt_model *rt;               /* NULL when unavailable */
    rt_model *old;              /* the runtime a new plan replaced, while it drains */
    rt_model_stats retired;     /* counters of runtimes replaced and drained */
    char error[512];            /* why unavailable (no paths) */
    /* the plan */
    int replicas, threads, max_batch;
    bool batchable;             /* the model's inputs have a dynamic leading dim */
    double slo_ms, rate;
    uint64_t lat_ns[SRV_MAX_PROFILE_BATCH + 1]; /* measured batch latency, 1 thread; 0: not measured */
    int prof_max;               /* lat_ns holds batches 1..prof_max (0: not profiled) */
    double ref_elems[RT_MAX_IO];/* per input (the session's order): elements per row of the
                                   profiled input (0: unknown); see rt_model_cfg */
    char profile_note[256];     /* how lat_ns was measured: "the sample request", "random
                                   inputs, dim 'N' = 512", or why it was not and that the
                                   latency is learned from the first requests (log, metadata) */
    double capacity;            /* requests/s the plan's replicas sustain at max_batch */
    short gpu[RT_MAX_REPLICAS]; /* per replica, the plan file's GPU (index in its list; -1: none) */
    unsigned char share[RT_MAX_REPLICAS]; /* and its MPS share there, % */
    unsigned short rbatch[RT_MAX_REPLICAS]; /* and its batch in the plan file (0: no plan file:
                                               max_batch) */
    /* and the plan file's predicted latency of one such batch, ms (0: not given): alone at
     * its share (latency_ms), and beside the GPU's other replicas (latency_colocated_ms) */
    double plan_lat_ms[RT_MAX_REPLICAS], plan_coloc_ms[RT_MAX_REPLICAS];
    const char *plan_note;      /* e.g. "SLO below the measured batch-1 latency" */
    char plan_group[128];       /* the plan file's merge group it is a member of (its
                                   merge_groups[]; a repository's merge_group gives way to
                                   it, group.c); "": none */
    /* front-end counters (the runtime keeps the rest) */
    atomic_uint_fast64_t invalid;      /* refused before the runtime (bad request) */
    /* inference requests answered without reaching the runtime (refused at the front end:
     * malformed, not ready, shutting down, ...), by outcome: with the runtime's counters
     * they make the model's ledger (srv_model_stats) */
    atomic_uint_fast64_t fe_outcome[RT_OUTCOME_COUNT];
    atomic_uint_fast64_t http_answers[SRV_CODES]; /* every answer on its routes, by code */
    atomic_uint_fast64_t grpc_answers[SRV_GRPC_CODES]; /* every gRPC answer naming it, by status */
    /* Triton's statistics of successful inferences: compute_input (the front end decoding
     * the body into tensors), compute_output (encoding the answer), their count, and the
     * wall-clock time of the last one (ms since the epoch) */
    atomic_uint_fast64_t input_ns, output_ns, io_count, last_inference_ms;
    atomic_uint_fast64_t slo_met;      /* successes answered within the SLO */
    atomic_uint_fast64_t lat_bucket[SRV_LAT_BUCKETS + 1];
    atomic_uint_fast64_t lat_sum_us, lat_count;
} srv_model;

/* A merge group (group.c): its members' models merged into one graph, served by one runtime
 * model (a worker and a session of the merged graph per replica) that every member's rt
 * points at. */
struct srv_group {
    char name[REPO_NAME_MAX];
    char path[4096];            /* the merged file (a temporary file, removed at the end) */
    char kind[16];              /* "shared", "stacked", "side-by-side" */
    double max_err;             /* its verification's worst error, x the output's scale */
    rt_model_cfg *cfg;          /* what rt was started with: its workers (replicas) and each
                                   one's intra-op threads (be.intra_threads); a plan change
                                   starts a new runtime of the same merged file from it */
    rt_model *rt;
    rt_model *old;              /* the runtime a plan change replaced, while it drains */
    /* the group's runs on runtimes replaced and drained (usher_merge_group_*_total carry
     * over a plan change, as a member's counters do through its retired) */
    uint64_t retired_batches, retired_mixed_batches, retired_filler_rows;
    srv_model *mem[RT_MAX_MEMBERS];
    int n;
};

struct usher_server {
    usher_serve_params p;
    char repo_dir[4096], exe[4096], address[64], ort_lib[4096];
    repo repo;
    /* The model table: one srv_model per model directory, SRV_MAX_MODELS entries allocated
     * at start (repo.m likewise, REPO_MAX_MODELS) so that it grows at run time without
     * moving: a directory added after start gets the next entry (table_add in server.c, under
     * reload_mu), which is written whole before n counts it. n only grows, and is stored
     * under rt_lock held for writing: a reader holding rt_lock for reading sees a constant
     * n; one without it (srv_find) loads n atomically and sees only whole entries. An
     * entry is never removed: a directory that goes away is unloaded and keeps its counters
     * (docs/internals/serve.md, Model control). */
    srv_model *m;
    atomic_size_t n;
    srv_group *groups;          /* merge groups in use (group.c) */
    size_t n_groups;
    struct hs_server *http;     /* the HTTP layer (http.c) */
    struct gs_server *grpc;     /* the gRPC front end (grpc.c); NULL: not serving gRPC */
    int port;
    atomic_bool shutting_down;
    atomic_int n_pending;       /* requests submitted to the runtime, not yet answered */
    atomic_int n_active;        /* requests between their arrival and their end */
    bool stopped;
    pthread_rwlock_t rt_lock;   /* see srv_model */
    pthread_mutex_t reload_mu;  /* one plan change, load or unload at a time */
    atomic_int control_calls;   /* model control calls in progress or waiting (both front
                                   ends); at most SRV_CONTROL_MAX_CALLS */
    struct srv_poll *poll;      /* poll mode's watcher (server.c); NULL in the other modes */
    int cpu_latency_fd;         /* /dev/cpu_dma_latency held open (cpu_latency_hold); -1: none */
    int cpus;
    int gpus;                   /* CUDA devices usable here (0: the CPU path) */
    char gpu_why[160];          /* why none, when none */
    uint64_t started_ns;
    atomic_uint_fast64_t http_requests, http_errors; /* every answer; non-2xx answers */
    atomic_uint_fast64_t http_answers[SRV_CODES]; /* answers naming no served model, by code */
    atomic_uint_fast64_t grpc_answers[SRV_GRPC_CODES]; /* gRPC answers naming no served model */
};

/* profile the models (a worker each, a few runs per batch size) and plan them
 * for this machine's CPU cores; a model that fails gets its error set */
void srv_plan_cpu(usher_server *s);
/* the CPU plan's arithmetic over profiled models (ms[i].rm gives the objectives) */
void srv_plan_cpu_models(const usher_server *s, srv_model *ms, size_t n);
/* profile and plan one model alone (model control's load: the cores of the others are not
 * counted); its error set when it fails */
void srv_plan_cpu_one(usher_server *s, srv_model *m);
/* read a plan.json (from `usher plan`) into the plan fields of ms[0..n) */
int srv_plan_file(const usher_server *s, const char *path, srv_model *ms, size_t n,
                  usher_error *err);
/* merge groups (group.c): form them after the plan and before the other models start;
 * stop them (each member's final counters into its retired); remove their files */
void srv_groups_start(usher_server *s);
void srv_groups_stop(usher_server *s, uint64_t drain_ns);
void srv_groups_free(usher_server *s);
/* the merge group a model is planned into: its plan file's (merge_groups), else its
 * usher.yaml's; "": none */
const char *srv_group_name(const srv_model *m);
/*
 * A plan change for group g (usher_server_reload, reload_mu held): next[0..s->n) is the new
 * plan of every model (s->m's order). The group's replicas, threads, placement and deadline
 * follow its members' new plans by group_form's rules; when they differ, a new runtime of
 * the same merged file starts, and once it is ready every member switches to it and the old
 * one drains (no request lost), as a plain model's. Returns 1 when switched, 0 when the
 * runtime stays (the members' plan fields updated), or -1 with why (the group left as it
 * was, serving): its members would change (a model joins or leaves it), a member's batch
 * changes (the merged graph's profile would be re-measured), or the new runtime failed.
 */
int srv_group_reload(usher_server *s, srv_group *g, const srv_model *next, uint64_t drain_ns,
                     char *why, size_t cap);
/* the plan's fields of a model (what srv_plan_cpu_models and srv_plan_file write) */
void srv_plan_copy(srv_model *dst, const srv_model *src);
/* place cfg's replicas (0..cfg->replicas-1) on the GPUs a plan file gives m's replicas, as
 * far as this machine has them (device cuda:N, the MPS or SM share); the others run as cfg->be
 * says. True when one was placed on a GPU. */
bool srv_place_gpus(const usher_server *s, const srv_model *m, rt_model_cfg *cfg);
/* a new runtime for cfg, waited for until its workers are ready (at most 120 s, less when
 * the server stops): what a plan change or a load switches to. -1 with why set (and nothing
 * left running) when it cannot start or does not become ready. */
int srv_rt_start(usher_server *s, const rt_model_cfg *cfg, rt_model **out, char *why,
                 size_t cap);
/* a model's inputs and outputs as its runtime declares them (a group member's own) */
bool srv_model_io(const srv_model *m, const be_io **in, size_t *n_in, const be_io **out,
                  size_t *n_out);
/* a runtime's statistics as the model sees them (a group member: its own counters) */
void srv_model_rt_stats(const srv_model *m, rt_model *rt, rt_model_stats *out);
/* a += b, the counters */
void srv_stats_add(rt_model_stats *a, const rt_model_stats *b);
/* a model's statistics over its runtimes (current, draining, retired); rt_lock held */
void srv_model_stats(const srv_model *m, rt_model_stats *out);
/* the Prometheus text exposition of every counter */
void srv_metrics(usher_server *s, us_buf *b);
/* per-model statistics as JSON (GET /v2/models[/m]/stats) */
void srv_stats_json(usher_server *s, const srv_model *only, us_buf *b);
srv_model *srv_find(usher_server *s, const char *name);
/*
 * Model control (POST /v2/repository/models/M/load or unload, gRPC RepositoryModelLoad /
 * RepositoryModelUnload): load (or reload) or unload model `name`. Returns the HTTP status
 * of the answer (200, or 400, 503 with msg in Triton's wording where Triton has one).
 * Blocks its caller until the load or the drain has ended (bounded: the load timeout, the
 * unload drain); the front ends call it on a thread of their own. One at a time (reload_mu).
 */
unsigned srv_control(usher_server *s, const char *name, bool load, char *msg, size_t cap);
/*
 * The same with a load's parameters (Triton's repository extension): config, when not NULL,
 * is the JSON text of a model configuration used instead of the directory's config.pbtxt
 * (config_len bytes, at most REPO_CONFIG_JSON_MAX; a bad one: 400 naming the field). An
 * unload takes none (config must be NULL).
 */
unsigned srv_control_params(usher_server *s, const char *name, bool load, const char *config,
                            size_t config_len, char *msg, size_t cap);
#define SRV_CONTROL_MAX_CALLS 8 /* more at once: 503 / UNAVAILABLE */
/* a model's state and reason as the repository index gives them (Triton's words); rt_lock
 * held */
const char *srv_index_state(const srv_model *m, const char **reason);

/* An inference handed to its model by a front end (HTTP or gRPC). */
typedef struct srv_infer {
    rt_done_fn done;        /* called once with the outcome, from any thread, maybe within
                               srv_infer_submit */
    void *ctx;
    uint64_t t0;            /* rt_now_ns() of the request's arrival (its deadline counts from it) */
    uint64_t t_in;          /* rt_now_ns() when the front end began decoding it */
    double *slo_ms_out;     /* set before the submit: the model's SLO, ms */
    uint64_t *input_ns_out; /* set before the submit: t_in to the submit (compute_input) */
} srv_infer;
/*
 * Check and submit a parsed inference to model m: the server not shutting
 * down, the model ready, the request's inputs the model's (names, count,
 * config.pbtxt's datatypes and dims, the batch). Returns 0 when submitted:
 * *rt_out is the runtime request (the caller frees it after x->done ran), its
 * inputs' data moved out of req. Otherwise the HTTP status of the refusal
 * (400, 500, 503) with msg; nothing submitted, req's inputs may be moved
 * (free req as usual), a 400 counted in m->invalid. Takes rt_lock.
 */
int srv_infer_submit(usher_server *s, srv_model *m, oip_request *req, srv_infer *x,
                     rt_request **rt_out, char *msg, size_t cap);
/* the counters of an inference answered with success (latency histogram, SLO, Triton's
 * compute_input / compute_output, last_inference) */
void srv_infer_ok(srv_model *m, double slo_ms, uint64_t t0, uint64_t input_ns,
                  uint64_t output_ns);
/* the slot of a status code in the http_answers counters; its code (0: "other") */
int srv_code_index(unsigned status);
unsigned srv_code_of(int index);

#endif
