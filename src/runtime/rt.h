/*
 * rt.h - the serving runtime (layer 7, prefix rt_): per-model bounded
 * queues, admission, deadline-aware dynamic batching, and the replicas that
 * run batches in worker processes.
 *
 *   server thread            model queue                replica thread (one per replica)
 *   rt_submit(m, r) ──────►  [r r r ...]  ◄──────────── rt_model_take(m, &batch)
 *     rejected at once                                     │ rt_batch_join: one tensor per input
 *     (503) if full or the                                 ▼
 *     deadline cannot be met                             rt_worker_run (IPC to the worker process)
 *                                                          │
 *   r->done(r, outcome, ...)  ◄── rt_model_finish ◄────────┘ rt_batch_split: outputs per request
 *
 * Every accepted request gets exactly one response: all paths (success,
 * rejection, timeout, worker crash, shutdown) go through rt_respond, which
 * flips the request's `responded` flag once (LEDGER-1). Outcomes map to
 * HTTP statuses in the server (PROTO-3).
 *
 * The batching decision is a pure function of the queue and the time
 * (rt_batch_decide), so the simulator can drive the same code with a
 * virtual clock.
 */
#ifndef RT_H
#define RT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/be.h"
#include "core/tensor.h"
#include "usher/status.h"

#define RT_MAX_IO 64       /* inputs or outputs of one model */
#define RT_MAX_BATCH 4096  /* rows of one batch */
#define RT_MAX_REPLICAS 256 /* workers of one model */
#define RT_MAX_PREFERRED 8  /* preferred batch sizes */
#define RT_MAX_MEMBERS 16   /* models of one merge group (one session, docs/serve.md) */

typedef enum rt_outcome {
    RT_OK = 0,
    RT_REJECTED,     /* queue full, or its deadline cannot be met: 503 */
    RT_TIMEOUT,      /* its deadline passed before it could start: 503 */
    RT_CANCELLED,    /* the client went away */
    RT_WORKER_CRASH, /* the worker died or hung while running it: 500 */
    RT_INVALID,      /* the backend refused the input: 400 */
    RT_INTERNAL,     /* any other fault: 500 */
    RT_UNAVAILABLE,  /* model not ready, or shutting down: 503 */
    RT_OUTCOME_COUNT
} rt_outcome;

/* metrics label: "success", "rejected", "timeout", "cancelled", "worker_crash", ... */
const char *rt_outcome_name(rt_outcome o);

typedef struct rt_request rt_request;
/*
 * Called exactly once per submitted request, from a runtime thread (or from
 * rt_submit itself on rejection). out/n_out are the request's own outputs
 * (rows of the batch), owned by the request until rt_request_free; msg says
 * why on failure. The callee must not block for long.
 */
typedef void (*rt_done_fn)(rt_request *r, rt_outcome o, const char *msg, void *ctx);

struct rt_request {
    uint64_t seq;            /* set by rt_submit: unique per model */
    us_tensor in[RT_MAX_IO]; /* in the model's input order; data owned (us_malloc) */
    size_t n_in;
    int64_t rows;            /* the batch dim (dim 0) of every input; 1 if the model has none
                                (rt_submit sets it from the inputs) */
    uint64_t arrival_ns;     /* rt_now_ns() at submit */
    uint64_t deadline_ns;    /* absolute; 0: arrival + the model's default timeout, which it may
                                only shorten; rt_submit sets the one in force (UINT64_MAX: none) */
    bool slo_deadline;       /* deadline_ns is the model's SLO from the request's arrival at
                                the server (no shorter timeout of its own): it may probe a
                                profile that refuses it (admit.c) */
    uint64_t pred_end;       /* set by rt_submit: the end admission predicted (runtime-internal) */
    double cost;             /* set by rt_submit: its predicted time relative to a request of
                                the same rows at the profiled input size (every dynamic dim
                                counts; 1 when the sizes are not known) */
    us_tensor out[RT_MAX_IO];/* filled on RT_OK; data owned (us_malloc) */
    size_t n_out;
    rt_done_fn done;
    void *ctx;
    atomic_int responded;    /* 0 until rt_respond */
    atomic_bool cancel;      /* rt_request_cancel: drop it if it has not started */
    rt_request *next;        /* queue link (runtime-internal) */
    int member;              /* a merge group's model (rt_model_cfg.group): which member it is
                                for, 0..n_members-1; in[] and out[] are that member's, in its
                                own order and names. 0 (unused) for a plain model */
};

/* A request with nothing in it; free it with rt_request_free (inputs and outputs too). */
rt_request *rt_request_new(void);
void rt_request_free(rt_request *r);
/*
 * The client of a submitted request went away: if it has not started running it is
 * answered RT_CANCELLED (counted in the model's outcomes) and never runs; one running or
 * answered is not affected. Only a flag is set here (any thread, no lock, the model not
 * needed): the runtime drops the request where it looks at it next - a replica forming a
 * batch drops cancelled members before the batch starts, and the model's sweeper drops
 * cancelled requests anywhere in the queue at its next scan (at least every second, and
 * before the request's own deadline would expire it). r must not have been freed.
 */
void rt_request_cancel(rt_request *r);
/* The one way a request is answered; false (and nothing done) if it was already. */
bool rt_respond(rt_request *r, rt_outcome o, const char *msg);

/* the monotonic clock of the runtime, ns (tests and the simulator may set a virtual one) */
uint64_t rt_now_ns(void);
void rt_set_clock(uint64_t (*now_ns)(void)); /* NULL: CLOCK_MONOTONIC */

/* ---- models ---------------------------------------------------------------------------- */
typedef struct rt_model_cfg {
    char name[US_TENSOR_NAME_MAX];
    char path[4096];           /* model.onnx */
    int max_batch;             /* rows per batch, from the plan; 1: no batching */
    bool has_batch_dim;        /* inputs' dim 0 is the batch (dynamic in the model) */
    int queue_capacity;        /* requests; 0: default (see rt_model_new) */
    uint64_t default_timeout_ns; /* from the SLO when a request gives none */
    uint64_t latency_ns[RT_MAX_BATCH + 1]; /* predicted batch latency by rows (index 1..max_batch);
                                              0: unknown, learned from the first runs */
    /* Triton's dynamic_batching: > 0, a batch may wait this long (from its oldest request's
     * arrival) for more rows, up to the largest preferred size (or max_batch); 0: usher's
     * policy (work-conserving: an idle replica takes what is queued, waiting only when the
     * observed arrival rate needs larger batches to keep up); < 0: never wait */
    int64_t max_queue_delay_ns;
    int preferred_batch[RT_MAX_PREFERRED]; /* ascending; dispatch at once on reaching one */
    int n_preferred;
    /* elements per row of each input (the workers' input order) in the run the latencies
     * were measured with; a request's predicted cost is scaled by its largest ratio to
     * these (every dynamic dim counts, not only the batch). 0: unknown (taken from the
     * first request that runs, when latency_ns is learned too) */
    double ref_elems[RT_MAX_IO];
    int replicas;              /* worker processes */
    /* a request that finds nothing queued and a replica idle, and would be dispatched
     * alone at once, runs on the thread that submits it when its batch is predicted to
     * take at most this (0: never): no hand-off to the replica thread and back. That
     * thread waits at most 4 x this, then the replica thread takes the wait over. */
    uint64_t inline_max_ns;
    be_options be;             /* for each worker */
    char device[32];           /* storage for be.device */
    /* where each replica runs, when not as be says: a device ("cuda:N"; empty:
     * be.device), an MPS compute share (1..100 %; 0: none) and an SM partition
     * (a green context of 1..99 % of the SMs; 0: none); and the batch size its
     * runs are timed at apart (rt_model_replica_stats: the plan's batch for that
     * replica, 0..RT_MAX_BATCH; 0: max_batch) */
    struct {
        char device[32];
        int mps_percentage;
        int sm_percentage;
        int batch;
    } place[RT_MAX_REPLICAS];
    /* A merge group (usher merge's file, docs/serve.md "Merge groups"): n_members > 0 makes
     * this one model serve several. Member k's inputs and outputs are the merged graph's
     * whose names start with "<label>/" (label stripped, in the graph's order); a request
     * names its member (rt_request.member) and one run of the merged graph serves requests
     * of any members: each member's rows are joined into its own inputs, a member with no
     * request in the batch gets filler rows (a copy of the first row of another member's
     * request at the same input position, so valid input; its outputs are dropped and its
     * cost is in the measured run time). equal_rows (a stacked merge): every member gets
     * as many rows as the largest one, padded with fillers. max_batch counts the requests'
     * own rows of all members; a group whose inputs have no batch dim takes at most one
     * request per member in a run. latency_ns and ref_elems are the merged graph's, by
     * requests' own rows and by member input position. */
    struct {
        int n_members;
        bool equal_rows;
        /* a member without requests gets 0 rows (a [0, ...] tensor) instead of a filler row:
         * for a shared merge, whose operators ORT runs on empty batches */
        bool empty_rows;
        char label[RT_MAX_MEMBERS][US_TENSOR_NAME_MAX];
    } group;
} rt_model_cfg;

typedef struct rt_model rt_model;

typedef struct rt_model_stats {
    uint64_t received, in_flight, queued;
    uint64_t outcome[RT_OUTCOME_COUNT];
    uint64_t batches, batch_rows;          /* sum of rows, for the mean batch size */
    uint64_t queue_ns, compute_ns;         /* summed over successful requests */
    uint64_t started_late;                 /* inferences started after their deadline: 0 */
    uint64_t worker_deaths;                /* workers lost: crashed, hung, or failed to load */
    uint64_t inline_runs;                  /* batches run by the submitting thread ... */
    uint64_t inline_handoffs;              /* ... of which the replica thread finished */
    uint64_t probes;                       /* requests admitted to test a prediction that
                                              refused everything (see model.c: admission) */
    uint64_t shed_by_scale;                /* refused for a deadline the profile alone would
                                              have met: the observed slowdown sheds them */
    int replicas_ready;
    bool shedding;                         /* shed_by_scale grew within the last second */
    double latency_scale;                  /* observed / predicted batch time, as batching and
                                              admission use it (1: as predicted) */
    double admission_margin_ns;            /* what admission keeps in hand for its own error:
                                              how late recent batches ended against the end
                                              predicted at admission (0: on time) */
    double arrival_rate;                   /* rows/s admitted lately (1 s decay) */
    bool latency_learned;                  /* no profile: latencies learned from runs */
    double profile_factor;                 /* what the profile's latencies were multiplied by
                                              since start, runs having shown it SCALE_MIN or
                                              less of their time (1: never; admit.c) */
    /* a merge group's runs (the whole group's, also in each member's statistics): runs
     * that served requests of two or more members, and the filler rows of members with
     * no request (their cost is in compute_ns) */
    uint64_t group_batches, group_mixed_batches, group_filler_rows;
} rt_model_stats;

/*
 * Create a model's queue and start its replicas (worker processes running
 * `exe worker ...`). Returns at once; replicas load in the background and the
 * model is ready when one has. Queue capacity default: the largest queue the
 * last request could still leave within the default timeout at the predicted
 * service rate, at least 2 x max_batch.
 */
int rt_model_new(const rt_model_cfg *cfg, const char *exe, rt_model **out, usher_error *err);
/* Stop accepting (new submits: RT_UNAVAILABLE), finish or fail what is queued by
 * the deadline, stop the workers; then free. */
void rt_model_free(rt_model *m, uint64_t drain_ns);
/* rt_model_free's first part: everything but the freeing, so that the final
 * statistics can be read; rt_model_free after it only frees. One thread. */
void rt_model_stop(rt_model *m, uint64_t drain_ns);
bool rt_model_ready(const rt_model *m);
const rt_model_cfg *rt_model_config(const rt_model *m);
void rt_model_get_stats(rt_model *m, rt_model_stats *out);
/* One replica's runs at the batch size its place[].batch names: what it was predicted for;
 * and all it ran and lost, so that the replicas' shares of the work can be seen. */
typedef struct rt_replica_stats {
    int rows;              /* that size: place[].batch, else max_batch */
    uint64_t runs;         /* successful runs of exactly that many rows */
    uint64_t run_ns;       /* their times summed: send to answer, as rt_model_stats.compute_ns */
    uint64_t batches;      /* its successful runs of any size (a merge group's: of the group) */
    uint64_t worker_deaths; /* its workers lost: crashed, hung, or failed to load */
} rt_replica_stats;
/* A replica's (0..replicas-1) runs since rt_model_new; false for an index out of range. */
bool rt_model_replica_stats(rt_model *m, int replica, rt_replica_stats *out);
/* Triton's batch_stats: the model's successful runs of one batch size (rows: its requests'
 * own rows summed; RT_MAX_BATCH counts that many or more) and their times summed (send to
 * answer, as rt_model_stats.compute_ns), since rt_model_new. */
typedef struct rt_batch_stat {
    int rows;
    uint64_t runs, run_ns;
} rt_batch_stat;
/* The sizes that ran, ascending, at most cap of them into out; returns how many ran (more
 * than cap: the rest left out). */
size_t rt_model_batch_stats(rt_model *m, rt_batch_stat *out, size_t cap);
/* The process id of a replica's worker (0..replicas-1); 0 while it has none running
 * (tests and fault injection kill it). */
int rt_model_worker_pid(rt_model *m, int replica);
/* the model's inputs and outputs as its workers' sessions declare them;
 * false until a replica has loaded (pointers stay valid until rt_model_free) */
bool rt_model_io(rt_model *m, const be_io **in, size_t *n_in, const be_io **out, size_t *n_out);

/*
 * Submit a request whose inputs are set (r->in, n_in, rows; deadline_ns
 * optional). Checks the inputs against the model (names, order, types,
 * shapes): RT_INVALID. Rejects at once (the callback runs before this
 * returns) when the model is not ready, the queue is full, or the deadline
 * cannot be met given the queue ahead. Returns the outcome: RT_OK means
 * accepted (the callback comes later).
 */
rt_outcome rt_submit(rt_model *m, rt_request *r);

/* A merge group's member k (rt_model_cfg.group): its statistics (received, in flight,
 * queued, outcomes, queue and compute time of its requests; batches: the runs that
 * carried its requests, batch_rows: its rows in them; the rest are the group's), and its
 * inputs and outputs under its own names (false until a replica has loaded, or for k out
 * of range). For a model that is not a group, k 0 is the model itself. */
bool rt_model_member_stats(rt_model *m, int k, rt_model_stats *out);
bool rt_model_member_io(rt_model *m, int k, const be_io **in, size_t *n_in, const be_io **out,
                        size_t *n_out);

/* ---- batching (batch.c): pure functions, no threads ------------------------------------- */
typedef struct rt_batch_view {
    uint64_t now_ns;
    int max_batch;
    const uint64_t *latency_ns;  /* by rows, as in rt_model_cfg; NULL: no prediction */
    /* the queue, oldest first */
    const int64_t *rows;
    const uint64_t *deadline_ns; /* UINT64_MAX: none */
    const uint64_t *arrival_ns;  /* NULL: not known (no configured delay can be counted) */
    const double *cost;          /* each request's predicted cost relative to the profile's
                                    input size (see rt_request.cost); NULL: all 1 */
    size_t n;
    bool blocked;        /* a request after these n cannot join their batch (other shapes) or
                            none will come (draining): waiting cannot grow the batch */
    uint64_t slack_ns;   /* close a deadline-bounded wait this much before the last moment
                            (wake-up and join overheads); 0 for a virtual clock */
    double latency_scale; /* multiplies latency_ns: observed / predicted (0: 1) */
    /* the waiting policy (rt_model_cfg's meaning) */
    int64_t max_queue_delay_ns;
    const int *preferred; /* ascending */
    int n_preferred;
    double arrival_rate;  /* rows/s the model has been receiving lately (0: unknown) */
    int replicas;         /* replicas that share those arrivals (0: 1) */
} rt_batch_view;

typedef struct rt_batch_decision {
    size_t take;          /* requests to dispatch now from the head, counted after the
                             expired ones (0: wait) */
    uint64_t wake_ns;     /* when to decide again if take == 0 (absolute; UINT64_MAX: only
                             when the queue changes) */
    size_t expire;        /* requests at the head whose deadline is already out of reach:
                             answer RT_TIMEOUT before anything else */
} rt_batch_decision;

/*
 * Called by an idle replica. Work-conserving: it takes what is queued now
 * (the longest head that fits max_batch and meets its earliest deadline),
 * and waits for more rows only where waiting is asked for (max_queue_delay,
 * up to the largest preferred size) or needed to keep up with the observed
 * arrival rate; never past the last moment the earliest deadline allows.
 * Requests whose deadline cannot be met even alone are expired. The policy
 * and its sources: batch.c and docs/serve.md.
 */
void rt_batch_decide(const rt_batch_view *v, rt_batch_decision *d);
/* The predicted latency of a batch of `rows` from a table as in rt_model_cfg: the entry, else
 * the next known one above it, else the largest known one scaled up; 0: nothing known. */
uint64_t rt_batch_latency(const uint64_t *latency_ns, int max_batch, int64_t rows);
/* rt_batch_latency times the observed scale and a request's cost (each <= 0: 1), saturating */
uint64_t rt_batch_latency_scaled(const uint64_t *latency_ns, int max_batch, int64_t rows,
                                 double scale, double cost);
/* How many requests from head (following ->next, at most max) can share head's batch: same
 * inputs, types, ranks and non-batch dims. 1 when only head can; 0 for no head. */
size_t rt_batch_compatible(const rt_request *head, size_t max);

/* A merge group's run (rt_model_cfg.group): the rows each member gets in the merged graph's
 * inputs (want[k]) from its requests' own rows in the batch (own[k], n_members of each): its
 * own rows; a member with none gets one filler row (empty_rows: none), with equal_rows every
 * member as many as the largest; without a batch dim (has_rows false) one each, its whole
 * tensor. Returns the filler rows (want - own summed; a whole tensor counts one). What the
 * live run joins (model.c) and what the simulator costs a group's run by (src/sim). */
int64_t rt_group_rows(const int64_t *own, int n_members, bool has_rows, bool equal_rows,
                      bool empty_rows, int64_t *want);

/* Concatenate the requests' inputs along dim 0 into one tensor per input
 * (us_malloc'd data), checking that every non-batch dim agrees. */
int rt_batch_join(rt_request *const *reqs, size_t n, us_tensor *joined, size_t n_in,
                  usher_error *err);
/* Split a batch's outputs back into each request's out[] by its rows. */
int rt_batch_split(const us_tensor *outs, size_t n_out, rt_request *const *reqs, size_t n,
                   usher_error *err);

/* ---- admission (admit.c): pure decisions, no threads or clock reads ---------------------
 * What rt_submit decides, and the observed scale and margin its predictions
 * carry, as state plus functions of the time given: the model (model.c) calls
 * them under its lock with rt_now_ns(), the simulator with its virtual time,
 * so both run the same admission. The rules and their reasons: admit.c and
 * docs/serve.md (Batching and admission). */
#define RT_ADMIT_SAMPLES 32 /* recent runs the scale and the margin look at */

/* the last RT_ADMIT_SAMPLES values of a quantity, with their times */
typedef struct rt_recent {
    double v[RT_ADMIT_SAMPLES];   /* values and their times, apart: one pass reads them */
    uint64_t t[RT_ADMIT_SAMPLES];
    unsigned n, next;
    uint64_t last_t; /* of the newest */
} rt_recent;

/* A model's admission state (rt_admit_init; one writer at a time: the model's lock). */
typedef struct rt_admit {
    double scale;          /* observed / predicted batch time in force (1: as predicted): the
                              larger of the two classes below, for work queued or a run that
                              starts beside another of the model's runs */
    double scale_alone;    /* the same for a run that starts with none of the model's others
                              running (a request finding the model idle) */
    double scale_last;     /* the alone class's scale at the last run (decays from it) */
    uint64_t recheck;      /* rt_admit_refresh recomputes from here on (samples age out) */
    rt_recent ratios;      /* observed / predicted, per run that had the model's cores alone */
    rt_recent ratios_shared; /* ... per run that overlapped another run of the model */
    rt_recent late;        /* answer time - end predicted at admission, ns, per batch */
    double margin;         /* what admission keeps in hand for its own error, ns */
    double margin_last;    /* as computed from the last recent samples (decays from it) */
    double rate;           /* admitted rows/s, a decaying counter as of rate_t */
    uint64_t rate_t;
    uint64_t last_probe, last_shed; /* times; 0: never */
    bool probe_by_profile;          /* the last probe tested the profile, not the scale */
} rt_admit;

void rt_admit_init(rt_admit *a);
/* the scale and the margin in force at now (cheap when nothing aged out since the last call) */
void rt_admit_refresh(rt_admit *a, uint64_t now);
/* a successful run took `ratio` times its prediction (table x cost, unscaled); shared: another
 * run of the model overlapped it (their replicas compete for the cores when the machine has
 * fewer free than replicas: pinned, beside a CPU hog) */
void rt_admit_note_run(rt_admit *a, double ratio, bool shared, uint64_t now);
/* a batch was answered at t1, `late` ns after the latest end admission predicted for a member
 * (each member's rt_admit_lateness; the largest) */
void rt_admit_note_late(rt_admit *a, double late, uint64_t t1);
/* A member answered at t1 against pred_end, its end predicted at admission, or, when that
 * is later, against when the replica that ran it was freed (`freed`; 0: not known) plus
 * the batch's predicted run: a delay inherited from the batch before is that batch's
 * lateness, counted once (admit.c). */
double rt_admit_lateness(uint64_t t1, uint64_t pred_end, uint64_t freed, uint64_t run_pred);
/* After a run is noted: when the recent runs (4 at least) all took SCALE_MIN (1/4) or
 * less of the profile's time, the factor (< 1/4) the caller multiplies its profile by,
 * the recent ratios being re-expressed against the profile so corrected (the scale goes
 * to 1); 1 otherwise. */
double rt_admit_profile_factor(rt_admit *a, uint64_t now);
/* the admitted arrival rate at now, rows/s (a counter decaying with a 1 s constant) */
double rt_admit_rate(const rt_admit *a, uint64_t now);
void rt_admit_note_arrival(rt_admit *a, uint64_t now, int64_t rows);
/*
 * Predicted time until a replica could start a new request: the queue's work
 * (queued_work: rows x cost summed) at row_ns per row (the model's batch
 * latency over its rows, scale included), plus busy_ns (what the busy replicas
 * still have running, summed), shared among `ready` replicas. 0 when nothing
 * is predicted (row_ns 0) or no replica is ready.
 */
uint64_t rt_admit_work_ahead(double queued_work, double row_ns, double busy_ns, int ready);
/* Does a request arriving at now, with `ahead` work before it and its own run `own`, end by
 * its deadline dl (UINT64_MAX: none)? With 15% of the work kept in hand, or `margin` ns if
 * more, and slack_ns more when work is ahead (a replica must wake to take it). */
bool rt_admit_fits(uint64_t now, uint64_t dl, uint64_t ahead, uint64_t own, double margin,
                   uint64_t slack_ns);

typedef struct rt_admit_query {
    uint64_t now, deadline_ns; /* deadline_ns UINT64_MAX: none */
    uint64_t ahead, own;       /* rt_admit_work_ahead, and its own run (scale included) */
    uint64_t slack_ns;         /* as rt_admit_fits */
    bool idle;                 /* nothing queued, no batch running, a replica idle: a probe
                                  could run at once */
    double scale;              /* the scale ahead and own carry (a->scale_alone when idle,
                                  else a->scale); 0: a->scale */
    bool model_slo;            /* its deadline is the model's own SLO (no shorter timeout of
                                  the request's): it may probe a profile that refuses it */
} rt_admit_query;

typedef enum rt_admit_verdict {
    RT_ADMIT_YES,   /* its predicted end meets its deadline */
    RT_ADMIT_NO,    /* refused: it would end late even as the profile predicts */
    RT_ADMIT_SHED,  /* refused by the observed scale: the profile alone would have admitted it */
    RT_ADMIT_PROBE, /* as SHED (or refused by a profile that may be wrong), but let through
                       to run at once on the idle replica: while everything is refused nothing
                       would show that a slowdown ended (a->probe_by_profile says which) */
} rt_admit_verdict;

/* The verdict on one request (records the shedding and probe times in a). */
rt_admit_verdict rt_admit_decide(rt_admit *a, const rt_admit_query *q);
/* The default queue bound: the requests the replicas can serve within the default timeout at
 * the predicted latency of a full batch (lat_full_ns; 0: unknown), at least 2 x max_batch,
 * at most 65536 (64 when nothing is predicted). */
size_t rt_admit_capacity(int max_batch, uint64_t lat_full_ns, uint64_t default_timeout_ns,
                         int replicas);

/* ---- workers (worker.c, ipc.c): one process per replica --------------------------------- */
typedef struct rt_worker rt_worker;

typedef struct rt_worker_opts {
    const char *exe;           /* the usher binary: started as `exe worker ...` */
    const char *model_path;
    const char *name;          /* for messages; default the file's base name */
    int mps_percentage;        /* 1..100: started with CUDA_MPS_ACTIVE_THREAD_PERCENTAGE (its
                                  compute share when the MPS daemon runs); 0: inherited */
    be_options be;
    uint64_t shm_bytes;        /* the shared tensor region; default 256 MiB */
    uint64_t load_timeout_ns;  /* default 120 s */
    int heartbeat_ms;          /* default 1000; the worker is declared hung after 3 missed */
} rt_worker_opts;

/* Start a worker and wait until its session is loaded (or it failed: the error
 * says how, including the signal if it crashed while loading). Zero fields of
 * o take the defaults. Start it from the thread that will drive it: Linux kills
 * it (PR_SET_PDEATHSIG) when that thread exits. One thread at a time drives a
 * worker (run, ping, stop); rt_worker_io and rt_worker_pid may be called from any. */
int rt_worker_start(const rt_worker_opts *o, rt_worker **out, usher_error *err);
/* the model's inputs and outputs, as the worker's session declares them */
size_t rt_worker_io(const rt_worker *w, const be_io **in, size_t *n_in, const be_io **out);
/*
 * Run one batch. Blocks until the worker answers, heartbeating meanwhile;
 * outputs are copied out of shared memory (us_malloc'd). USHER_ERR_IO when
 * the worker died or hung (it is then killed and must be replaced),
 * USHER_ERR_INVALID when the backend refused the input, USHER_ERR_LIMIT for
 * inputs or outputs larger than the shared region. out has room for
 * rt_worker_io's outputs; on failure nothing is left in it. timeout_ns 0: none.
 */
int rt_worker_run(rt_worker *w, const us_tensor *in, size_t n_in, us_tensor *out, size_t *n_out,
                  uint64_t timeout_ns, usher_error *err);
/* rt_worker_run in two halves, so that the thread that sends a batch need not be the one
 * that waits for it to the end. rt_worker_send lays the inputs out and sends the RUN
 * (USHER_ERR_STATE if one is already running); rt_worker_wait waits for its answer, as
 * rt_worker_run does, but returns RT_WORKER_PENDING after budget_ns (0: no budget) with
 * the batch still running, to be waited for again (by any thread). For the first spin_ns
 * it polls without sleeping (yielding the core), for answers due within microseconds. */
#define RT_WORKER_PENDING 1
int rt_worker_send(rt_worker *w, const us_tensor *in, size_t n_in, uint64_t timeout_ns,
                   usher_error *err);
int rt_worker_wait(rt_worker *w, uint64_t spin_ns, uint64_t budget_ns, us_tensor *out,
                   size_t *n_out, usher_error *err);
/* PING/PONG once; USHER_ERR_IO if it does not answer within 3 heartbeats */
int rt_worker_ping(rt_worker *w, usher_error *err);
int rt_worker_pid(const rt_worker *w);
/* Ask it to quit, wait up to grace_ns, then SIGKILL; reap; free. */
void rt_worker_stop(rt_worker *w, uint64_t grace_ns);

/* `usher worker ...`: the worker process's main (never returns to the server's code). */
int rt_worker_main(int argc, char **argv);

#endif
