/*
 * model.c - a served model: its bounded queue, admission, and one thread
 * per replica that batches from the queue and runs the batches in the
 * replica's worker process (layer 7, see rt.h).
 *
 * Threads and locking. One mutex (m->mu) guards the queue, the counters
 * and every replica's shared state; nothing slow runs under it (no IPC, no
 * worker start, no callback, no tensor copy; the longest hold is the
 * sweeper's O(queued) scan, at most every SWEEP_GAP_NS), so rt_submit never
 * waits on a replica (OVER-1: rejection in microseconds). Three condition variables
 * on CLOCK_MONOTONIC:
 *   work_cv   replicas wait on it: a request arrived, shutdown began;
 *   sweep_cv  the sweeper waits on it: a request with an earlier expiry;
 *   idle_cv   rt_model_free waits on it: a batch finished while draining.
 * Callbacks (rt_respond) always run with the lock released, after the
 * counters were updated under it, so LEDGER-2
 *   received == sum(outcome) + in_flight,  in_flight = queued + running
 * holds whenever the lock is free.
 *
 * A replica (one thread, one worker process at a time):
 *
 *   STARTING --rt_worker_start ok--> READY --worker died/hung (run or ping)--> STARTING
 *      ^   \--start failed--> (a death)          \--3 deaths in 5 min--> BACKOFF
 *      |                                                                    |
 *      +------------------------- back-off period over -----------------------+
 *   any state --rt_model_free--> stop: rt_worker_stop, thread exits
 *
 * READY loop: decide with rt_batch_decide on the compatible head of the
 * queue (work-conserving: see batch.c); answer expired heads RT_TIMEOUT;
 * take a batch, join, run with a
 * timeout of max(10 x predicted, 5 s), split, answer each. Otherwise sleep
 * until the decision's wake time, at most a heartbeat, and ping the worker
 * when idle for a heartbeat. A worker lost while running a batch fails
 * that batch only (RT_WORKER_CRASH; LEDGER-5: a dispatched request is never
 * run again); queued requests stay for the other replicas (FAULT-1), and
 * this replica starts a new worker at once (FAULT-2) unless it is crash
 * looping (FAULT-6).
 *
 * The sweeper thread answers RT_TIMEOUT to any queued request (not only the
 * head) whose deadline can no longer be met even alone, and RT_UNAVAILABLE
 * to everything queued while no replica is ready or starting; so a request
 * never waits past its deadline for a replica that is not coming.
 *
 * Deadlines: a request's own deadline may only shorten the model default
 * (OVER-2). Admission rejects at once when the queue is full or when the
 * predicted work ahead (rows x cost queued at the predicted rate, plus what
 * the replicas still have running, shared among the ready replicas) and the
 * request's own run, plus a margin (15%, or how late recent batches ended
 * against their admission's prediction, whichever is more) and, when work is
 * ahead, the dispatch slack, cannot end by its deadline. These decisions and
 * the scale and margin behind them are pure functions of the time given
 * (admit.c), called here under the lock: the simulator (src/sim) runs them
 * with its virtual clock.
 *
 * Predictions: the plan's latency by rows, times the request's cost (its
 * input sizes against the profiled ones: every dynamic dim counts, so a
 * 20,000-pixel-wide image is predicted as such and refused if it cannot make
 * its deadline), times the observed scale (refresh_scale: the second largest of
 * the recent runs' observed / predicted, so one outlier does not move it).
 * Admission can never get stuck refusing: a refusal that the profile alone
 * would have admitted is counted as shedding by scale, and while everything
 * is refused, an idle model admits one probe every PROBE_GAP_NS, which runs
 * at once on the idle replica and so tests the scale; without runs the
 * scale decays toward 1. A model given no latencies (not profiled, or a plan
 * file without CPU figures) learns them from its runs (note_run).
 *
 * A model is batched only when its inputs and outputs all carry a dynamic
 * dim 0 (and the config says it has a batch dim and max_batch > 1);
 * otherwise each request runs alone (its rows still come from dim 0 when
 * every input has a dynamic one and the config says so; else rows are 1,
 * whatever the shapes). A batch whose
 * outputs turn out to lack the batch dim fails RT_INTERNAL and the model
 * falls back to one request per batch from then on.
 *
 * Shutdown (rt_model_free): new submits get RT_UNAVAILABLE at once; replicas
 * stop waiting to fill batches and run what is queued until the drain time;
 * what is still queued then is answered RT_UNAVAILABLE; batches already
 * running finish (bounded by their run timeout) and a replica still loading
 * its worker is waited for (bounded by the load timeout); then workers are
 * stopped and threads joined. It joins the replica threads, so it must not be
 * called from a done callback, and no rt_submit may follow its return.
 *
 * Cancellation: a request belongs to the runtime from acceptance to its
 * callback; nothing else may call rt_respond on an accepted request. A front
 * end whose client went away sets the request's cancel flag
 * (rt_request_cancel); the runtime answers it RT_CANCELLED where it looks at
 * it next while it is still queued: drop_late, as a batch is about to start
 * (so a cancelled request never runs), and the sweeper's scan of the queue.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/err.h"
#include "core/log.h"
#include "runtime/rt.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define HEARTBEAT_NS (1 * SEC)        /* ping an idle worker this often (FAULT-3) */
#define DISPATCH_SLACK_NS (2 * MS)    /* wake-up and join time before a deadline-driven close */
#define RUN_TIMEOUT_MIN_NS (5 * SEC)  /* a batch is declared hung after max(10 x predicted, this) */
#define CRASH_LIMIT 3                 /* deaths ... */
#define CRASH_WINDOW_NS (300 * SEC)   /* ... within this window start a back-off (FAULT-6) */
#define BACKOFF_MIN_NS (30 * SEC)     /* first back-off; doubles while the loop goes on */
#define BACKOFF_MAX_NS (300 * SEC)
#define STOP_GRACE_NS (1 * SEC)       /* a worker's time to quit before SIGKILL */
#define SWEEP_GAP_NS (5 * MS)         /* the sweeper scans the queue at most this often */
#define VIEW_EXTRA 64                 /* expired heads a decision may see besides a batch */
#define SHEDDING_NS SEC               /* stats.shedding: a scale rejection this recently */
#define COST_MIN (1.0 / 16)           /* a request's cost relative to the profile's size, bounds */
#define COST_MAX 1e9

typedef enum rep_state { REP_STARTING, REP_READY, REP_BACKOFF, REP_STOPPED } rep_state;

/* A batch from its dispatch to its answer: what the thread that ends it needs. */
typedef struct batch_run {
    rt_request **reqs;
    size_t n;
    int64_t rows;
    double cost;        /* its members' cost (they share their shapes past the batch dim) */
    uint64_t t0;        /* when it was sent (rt clock) */
    bool inline_run;    /* started by the submitting thread, not the replica's (run_inline) */
} batch_run;

typedef struct replica {
    rt_model *m;
    int idx;
    pthread_t thread;
    bool thread_started;
    /* under m->mu */
    rep_state state;
    int pid;
    bool busy;              /* a batch runs on its worker (by this thread or a submitter) */
    bool overlapped;        /* another replica's run overlapped this one's (the scale's class) */
    bool pinging;           /* this thread pings the worker (lock released) */
    bool handed;            /* a submitter handed its run over: `handoff` to wait for */
    bool await_claim;       /* this thread waits for a submitter's run to end */
    uint64_t busy_until;    /* predicted end of the running batch, for admission */
    uint64_t run_pred;      /* ... and its predicted run, set with it */
    uint64_t freed;         /* when its last batch ended (the margin's rebase, admit.c) */
    uint64_t up_since;
    uint64_t deaths[CRASH_LIMIT];
    unsigned n_deaths;
    uint64_t backoff_ns, backoff_until;
    batch_run handoff;      /* when handed */
    uint64_t last_contact;  /* last proof of life: a run or a ping */
    int timed_rows;         /* runs of exactly this many rows are timed apart: ... */
    uint64_t timed_runs, timed_ns; /* ... how many succeeded and their time (replica stats) */
    uint64_t runs_ok, lost; /* its successful runs of any size, its workers lost (replica stats) */
    /* the thread's own */
    rt_worker *w;           /* changed only under mu, by this thread or by a run that lost it */
    int64_t *rows;          /* decision scratch, view_cap entries */
    uint64_t *dls, *arr;
    double *cost;
    rt_request **batch;     /* max_batch entries */
} replica;

/* A merge group's member (cfg.group): its inputs and outputs under its own names, where they
 * sit among the merged graph's, and its counters (under mu). */
typedef struct member {
    be_io in[RT_MAX_IO], out[RT_MAX_IO];
    size_t n_in, n_out;
    int in_idx[RT_MAX_IO], out_idx[RT_MAX_IO];
    rt_model_stats st;
} member;

typedef struct answer_list {
    rt_request *head, *tail;
    size_t n;
} answer_list;

struct rt_model {
    rt_model_cfg cfg;            /* immutable after rt_model_new */
    char *exe, *ort_lib;
    size_t capacity;
    size_t view_cap;

    pthread_mutex_t mu;
    pthread_cond_t work_cv, sweep_cv, idle_cv;
    /* ---- under mu ---- */
    rt_request *head, *tail;
    size_t n_queued;
    bool accepting, draining, stop;
    size_t running;              /* batches in worker runs */
    uint64_t sweep_at;           /* when the sweeper means to scan next */
    int batch_max;               /* effective rows per batch (1: no batching) */
    uint64_t seq;
    double queued_work;          /* sum of rows x cost over the queue */
    /* admission (admit.c): the observed scale (observed / predicted batch time), the
     * margin for its own error, the admitted arrival rate, shedding and probes */
    rt_admit adm;
    bool learn;                  /* no latency was given: cfg.latency_ns is learned from runs */
    double profile_factor;       /* cfg.latency_ns against the profile given (note_run) */
    bool capacity_follows;       /* no queue capacity given: it follows the profile */
    rt_model_stats st;
    /* successful runs by batch size (rows; the last entry: RT_MAX_BATCH or more), for
     * rt_model_batch_stats: Triton's batch_stats */
    struct { uint64_t runs, ns; } *bstat;
    /* ---- the declared inputs/outputs, written once before io_known is set ---- */
    atomic_bool io_known;
    be_io in[RT_MAX_IO], out[RT_MAX_IO];
    size_t n_in, n_out;
    bool has_rows;               /* inputs' dim 0 is the batch: a request's rows come from it */
    atomic_int n_ready;          /* mirror of st.replicas_ready for lock-free rt_model_ready */
    /* a merge group (cfg.group.n_members > 0): its members, mapped by capture_io;
     * group_error says why the merged graph's inputs do not map (requests get 500) */
    member *mem;
    int n_mem;
    char group_error[256];

    replica *rep;
    int n_rep;
    pthread_t sweeper;
    bool sweeper_started;
    bool stopped;                /* rt_model_stop has run (by its one caller) */
};

/* ---- small helpers ---------------------------------------------------------------------- */
static double ms(uint64_t ns) { return (double)ns / 1e6; }

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

static void cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    /* monotonic: waits must not jump with the wall clock */
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
}

/* Wait at most rel ns. Relative, so it works whatever clock rt_now_ns() reads. */
static void wait_rel(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t rel)
{
    if (rel > 3600 * SEC)
        rel = 3600 * SEC;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + rel % SEC;
    ts.tv_sec += (time_t)(rel / SEC + ns / SEC);
    ts.tv_nsec = (long)(ns % SEC);
    pthread_cond_timedwait(cv, mu, &ts);
}

/* Under mu: the predicted time of a batch of rows at a request's cost, corrected by a scale
 * (lat_of: the observed one in force), for batching, admission and expiry. */
static uint64_t lat_at(const rt_model *m, int64_t rows, double cost, double scale)
{
    return rt_batch_latency_scaled(m->cfg.latency_ns, m->cfg.max_batch, rows, scale, cost);
}

static uint64_t lat_of(const rt_model *m, int64_t rows, double cost)
{
    return lat_at(m, rows, cost, m->adm.scale);
}

/* Under mu: the observed scale and the admission margin in force at now (admit.c). */
static void refresh_scale(rt_model *m, uint64_t now) { rt_admit_refresh(&m->adm, now); }

/* The elements of one row of a tensor of this shape (all of it when the model has no
 * batch dim), as ref_elems counts them. */
static double row_elems(const rt_model *m, const us_shape *sh)
{
    double el = 1;
    for (int d = m->has_rows ? 1 : 0; d < sh->rank; d++)
        el *= (double)(sh->dim[d] > 0 ? sh->dim[d] : 0);
    return el;
}

/* Under mu: the elements per row of each input of r, relative to the profiled ones: the
 * largest ratio (every dynamic dim counts, not only the batch); 1 when nothing is known. */
static double request_cost(const rt_model *m, const rt_request *r)
{
    double cost = 0;
    for (size_t i = 0; i < r->n_in && i < RT_MAX_IO; i++) {
        double ref = m->cfg.ref_elems[i];
        if (!(ref > 0))
            continue;
        double el = row_elems(m, &r->in[i].shape);
        if (el / ref > cost)
            cost = el / ref;
    }
    if (cost == 0)
        return 1.0;
    return cost < COST_MIN ? COST_MIN : cost > COST_MAX ? COST_MAX : cost;
}

static size_t default_capacity(const rt_model_cfg *c);

/*
 * Under mu: fold one successful run's time into the scale. A model with no latency
 * given (nothing profiled, a plan file without CPU latencies) learns its table here:
 * the first run of each batch size sets that size's entry, and the first request's
 * input sizes become the reference for costs. A profile that recent runs show more
 * than 4x too slow follows them (rt_admit_profile_factor), and so does the default
 * queue bound, which the profile sets.
 */
static void note_run(rt_model *m, const rt_request *head, int64_t rows, double cost, uint64_t took,
                     bool shared, uint64_t now)
{
    if (m->learn) {
        bool refs = false;
        for (size_t i = 0; i < RT_MAX_IO && !refs; i++)
            refs = m->cfg.ref_elems[i] > 0;
        if (!refs) {
            for (size_t i = 0; i < head->n_in && i < RT_MAX_IO; i++)
                m->cfg.ref_elems[i] = row_elems(m, &head->in[i].shape);
            cost = 1.0;
        }
        int64_t k = rows < 1 ? 1 : rows;
        if (k <= m->cfg.max_batch && !m->cfg.latency_ns[k]) {
            double l = (double)took / (cost > 0 ? cost : 1.0);
            m->cfg.latency_ns[k] = l < 1 ? 1 : (uint64_t)l;
        }
    }
    uint64_t pred = rt_batch_latency(m->cfg.latency_ns, m->cfg.max_batch, rows);
    if (!pred)
        return;
    rt_admit_note_run(&m->adm, (double)took / ((double)pred * (cost > 0 ? cost : 1.0)), shared,
                      now);
    double f = rt_admit_profile_factor(&m->adm, now);
    if (f < 1.0) { /* the profile follows the runs (admit.c) */
        for (int k = 1; k <= m->cfg.max_batch && k <= RT_MAX_BATCH; k++) {
            uint64_t *l = &m->cfg.latency_ns[k];
            if (*l)
                *l = (double)*l * f < 1 ? 1 : (uint64_t)((double)*l * f);
        }
        m->profile_factor *= f;
        if (m->capacity_follows)
            m->capacity = default_capacity(&m->cfg);
        US_LOGW("model '%s': its recent runs took %.3g of the profile's time or less: the "
                "profile follows them (x%.3g of the start-up profile)",
                m->cfg.name, f, m->profile_factor);
    }
}

/* Under mu: replica p starts a run; it and the runs it overlaps are in the scale's shared
 * class (admit.c) */
static void run_starts(rt_model *m, replica *p)
{
    p->overlapped = false;
    for (int i = 0; i < m->n_rep; i++) {
        replica *o = &m->rep[i];
        if (o != p && o->busy) {
            o->overlapped = true;
            p->overlapped = true;
        }
    }
    p->busy = true;
    m->running++;
}

/* Under mu: the admitted arrival rate at now, rows/s. */
static double rate_at(const rt_model *m, uint64_t now) { return rt_admit_rate(&m->adm, now); }

static void list_add(answer_list *l, rt_request *r)
{
    r->next = NULL;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

/* Answer every request of a list (lock released; the counters were settled under it). */
static void list_answer(answer_list *l, rt_outcome o, const char *msg)
{
    for (rt_request *r = l->head, *next; r; r = next) {
        next = r->next; /* the callback may free r */
        rt_respond(r, o, msg);
    }
    l->head = l->tail = NULL;
    l->n = 0;
}

/* Under mu: a merge group's counters of r's member; NULL for a plain model. */
static rt_model_stats *mst(rt_model *m, const rt_request *r)
{
    return m->n_mem > 0 && r->member >= 0 && r->member < m->n_mem ? &m->mem[r->member].st
                                                                    : NULL;
}

/* Under mu: the counters of a request leaving the runtime with outcome o. */
static void settle(rt_model *m, rt_request *r, rt_outcome o)
{
    m->st.in_flight--;
    m->st.outcome[o]++;
    rt_model_stats *ms = mst(m, r);
    if (ms) {
        ms->in_flight--;
        ms->outcome[o]++;
    }
}

/* Under mu, after the counters changed and before the lock goes: LEDGER-2 (debug and
 * sanitizer builds). The requests running are in_flight - queued; none run while no
 * batch is claimed. */
static void ledger_check(const rt_model *m)
{
#if US_DEBUG_ASSERTS
    uint64_t answered = 0;
    for (int o = 0; o < RT_OUTCOME_COUNT; o++)
        answered += m->st.outcome[o];
    US_DEBUG_ASSERT(m->st.received == answered + m->st.in_flight);
    US_DEBUG_ASSERT(m->st.queued == m->n_queued);
    US_DEBUG_ASSERT(m->st.in_flight >= m->st.queued);
    US_DEBUG_ASSERT(m->running > 0 || m->st.in_flight == m->st.queued);
#else
    (void)m;
#endif
}

/* Under mu: unlink r (whose predecessor is prev, NULL at the head) from the queue. */
static void queue_unlink(rt_model *m, rt_request *prev, rt_request *r)
{
    if (prev)
        prev->next = r->next;
    else
        m->head = r->next;
    if (m->tail == r)
        m->tail = prev;
    m->n_queued--;
    m->queued_work -= (double)r->rows * r->cost;
    if (!m->head)
        m->queued_work = 0; /* no drift from rounding */
    m->st.queued--;
    if (mst(m, r))
        mst(m, r)->queued--;
    r->next = NULL;
}

/* ---- declared inputs and input checks --------------------------------------------------- */

static void group_map(rt_model *m);

/* Under mu, once, from the first worker that loads: what requests are checked against. */
static void capture_io(rt_model *m, const rt_worker *w)
{
    const be_io *in, *out;
    size_t n_in, n_out = rt_worker_io(w, &in, &n_in, &out);
    if (n_in > RT_MAX_IO)
        n_in = RT_MAX_IO;
    if (n_out > RT_MAX_IO)
        n_out = RT_MAX_IO;
    memcpy(m->in, in, n_in * sizeof *in);
    memcpy(m->out, out, n_out * sizeof *out);
    m->n_in = n_in;
    m->n_out = n_out;

    bool rows = m->cfg.has_batch_dim && n_in > 0;
    for (size_t i = 0; i < n_in && rows; i++)
        rows = m->in[i].shape.rank >= 1 && m->in[i].shape.dim[0] < 0;
    m->has_rows = rows;
    bool batchable = rows && m->cfg.max_batch > 1;
    for (size_t i = 0; i < n_out && batchable; i++)
        batchable = m->out[i].shape.rank >= 1 && m->out[i].shape.dim[0] < 0;
    m->batch_max = batchable ? m->cfg.max_batch : 1;
    if (m->n_mem > 0) {
        group_map(m);
        if (m->group_error[0])
            US_LOGW("%s", m->group_error);
        /* without a batch dim a run still serves one request of every member */
        if (!batchable)
            m->batch_max = m->n_mem < m->cfg.max_batch ? m->n_mem : m->cfg.max_batch;
        if (!batchable)
            m->has_rows = false; /* each request's tensors whole, one per member */
    }
    if (m->cfg.max_batch > 1 && !batchable)
        US_LOGW("model '%s': %s no dynamic batch dim: served one request per batch, not %d",
                m->cfg.name, rows ? "an output has" : "the inputs have", m->cfg.max_batch);
    atomic_store_explicit(&m->io_known, true, memory_order_release);
}

/*
 * Under mu, from capture_io: map a merge group's members onto the merged graph's inputs
 * and outputs ("<label>/<name>", in the graph's order). Every merged input must belong to
 * a member, every member have the same input count and types by position (usher merge
 * refuses other models; fillers copy another member's input at the same position), and no
 * input be BYTES (fillers copy fixed-size rows). Else group_error says why.
 */
static void group_map(rt_model *m)
{
    int owner[RT_MAX_IO];
    for (size_t i = 0; i < m->n_in; i++)
        owner[i] = -1;
    for (int k = 0; k < m->n_mem; k++) {
        member *g = &m->mem[k];
        const char *lab = m->cfg.group.label[k];
        size_t ll = strlen(lab);
        g->n_in = g->n_out = 0;
        for (int dir = 0; dir < 2; dir++) {
            const be_io *io = dir ? m->out : m->in;
            size_t n = dir ? m->n_out : m->n_in;
            for (size_t i = 0; i < n; i++) {
                if (strncmp(io[i].name, lab, ll) != 0 || io[i].name[ll] != '/')
                    continue;
                be_io *d = dir ? &g->out[g->n_out] : &g->in[g->n_in];
                *d = io[i];
                snprintf(d->name, sizeof d->name, "%s", io[i].name + ll + 1);
                if (dir) {
                    g->out_idx[g->n_out++] = (int)i;
                } else {
                    g->in_idx[g->n_in++] = (int)i;
                    owner[i] = k;
                }
            }
        }
        if (!g->n_in || !g->n_out) {
            snprintf(m->group_error, sizeof m->group_error, "merge group '%.60s': the merged "
                     "graph has no input or no output named '%.60s/...'", m->cfg.name, lab);
            return;
        }
        for (size_t i = 0; i < g->n_in; i++) {
            if (g->in[i].dtype == US_DT_BYTES) {
                snprintf(m->group_error, sizeof m->group_error, "merge group '%.60s': input "
                         "'%.60s' of '%.60s' is BYTES, which a merge group cannot fill", m->cfg.name,
                         g->in[i].name, lab);
                return;
            }
            if (k > 0 && (g->n_in != m->mem[0].n_in || g->in[i].dtype != m->mem[0].in[i].dtype)) {
                snprintf(m->group_error, sizeof m->group_error, "merge group '%.60s': '%.60s' "
                         "does not take the same inputs as '%.60s'", m->cfg.name, lab,
                         m->cfg.group.label[0]);
                return;
            }
        }
    }
    for (size_t i = 0; i < m->n_in; i++)
        if (owner[i] < 0) {
            snprintf(m->group_error, sizeof m->group_error, "merge group '%.60s': the merged "
                     "graph's input '%.60s' belongs to no member", m->cfg.name, m->in[i].name);
            return;
        }
}

static bool validate(const rt_model *m, rt_request *r, char *msg, size_t cap)
{
    char a[96], b[96];
    const be_io(*decl)[RT_MAX_IO] = &m->in; /* a pointer to the array keeps its bounds known */
    size_t n_decl = m->n_in;
    if (m->n_mem > 0) { /* a merge group: the request's member's own inputs */
        if (m->group_error[0]) {
            snprintf(msg, cap, "%s", m->group_error);
            return false;
        }
        if (r->member < 0 || r->member >= m->n_mem) {
            snprintf(msg, cap, "merge group '%s' has no member %d", m->cfg.name, r->member);
            return false;
        }
        decl = &m->mem[r->member].in;
        n_decl = m->mem[r->member].n_in;
    }
    if (r->n_in != n_decl) {
        snprintf(msg, cap, "model '%s' takes %zu inputs, the request has %zu",
                 m->n_mem > 0 ? m->cfg.group.label[r->member] : m->cfg.name, n_decl, r->n_in);
        return false;
    }
    int64_t rows = 1;
    char first[US_TENSOR_NAME_MAX] = "";
    for (size_t i = 0; i < n_decl; i++) {
        const us_tensor *t = &r->in[i];
        const be_io *d = &(*decl)[i];
        char dname[US_TENSOR_NAME_MAX]; /* bounded for the messages below */
        snprintf(dname, sizeof dname, "%.*s", (int)sizeof dname - 1, d->name);
        if (strcmp(t->name, d->name) != 0) {
            snprintf(msg, cap, "input %zu is '%s', the model's is '%s'", i, t->name, dname);
            return false;
        }
        if (t->dtype != d->dtype) {
            snprintf(msg, cap, "input '%s' is %s, the model takes %s", dname,
                     us_dtype_name(t->dtype), us_dtype_name(d->dtype));
            return false;
        }
        if (!us_shape_matches(&d->shape, &t->shape)) {
            snprintf(msg, cap, "input '%s' has shape %s, the model takes %s", dname,
                     us_shape_str(&t->shape, a, sizeof a), us_shape_str(&d->shape, b, sizeof b));
            return false;
        }
        usher_error err = {0};
        char what[US_TENSOR_NAME_MAX + 16];
        snprintf(what, sizeof what, "input '%s'", dname);
        uint64_t want;
        if (t->bytes && !t->data) {
            snprintf(msg, cap, "%s: no data", what);
            return false;
        }
        if (t->dtype == US_DT_BYTES) {
            if (us_shape_elements(&t->shape, what, &want, &err) < 0 ||
                us_bytes_check(t->data, t->bytes, want, what, &err) < 0) {
                snprintf(msg, cap, "%s", err.msg);
                return false;
            }
        } else if (us_tensor_nbytes(t->dtype, &t->shape, what, &want, &err) < 0) {
            snprintf(msg, cap, "%s", err.msg);
            return false;
        } else if (want != t->bytes) {
            snprintf(msg, cap, "%s: %llu bytes of data, shape %s needs %llu", what,
                     (unsigned long long)t->bytes, us_shape_str(&t->shape, a, sizeof a),
                     (unsigned long long)want);
            return false;
        }
        if (m->has_rows) {
            if (i == 0) {
                rows = t->shape.dim[0];
                snprintf(first, sizeof first, "%s", dname);
            }
            else if (t->shape.dim[0] != rows) {
                snprintf(msg, cap, "input '%s' has %lld rows (dim 0), input '%s' %lld", dname,
                         (long long)t->shape.dim[0], first, (long long)rows);
                return false;
            }
        }
    }
    if (rows < 1 || rows > m->cfg.max_batch) {
        snprintf(msg, cap, "a batch of %lld rows: model '%s' takes 1 to %d", (long long)rows,
                 m->cfg.name, m->cfg.max_batch);
        return false;
    }
    r->rows = rows;
    return true;
}

/* ---- submit ----------------------------------------------------------------------------- */

/* Under mu: predicted time until a replica could start r (work ahead shared by the ready
 * replicas), or 0 when nothing is predicted. */
static uint64_t work_ahead(const rt_model *m, uint64_t now)
{
    int b = m->batch_max;
    uint64_t lat_b = lat_of(m, b, 1.0);
    int ready = atomic_load_explicit(&m->n_ready, memory_order_relaxed);
    if (!lat_b || ready < 1)
        return 0;
    double busy = 0;
    for (int i = 0; i < m->n_rep; i++) {
        const replica *p = &m->rep[i];
        if (p->state == REP_READY && p->busy && p->busy_until > now)
            busy += (double)(p->busy_until - now);
    }
    return rt_admit_work_ahead(m->queued_work, (double)lat_b / (double)b, busy, ready);
}

/* Under mu: the model's waiting policy and state, for a batch decision at now. */
static void view_policy(const rt_model *m, rt_batch_view *v, uint64_t now)
{
    v->now_ns = now;
    v->max_batch = m->batch_max;
    v->latency_ns = m->cfg.latency_ns;
    v->slack_ns = DISPATCH_SLACK_NS;
    v->latency_scale = m->adm.scale;
    v->max_queue_delay_ns = m->cfg.max_queue_delay_ns;
    v->preferred = m->cfg.preferred_batch;
    v->n_preferred = m->cfg.n_preferred;
    v->arrival_rate = rate_at(m, now);
    int ready = atomic_load_explicit(&m->n_ready, memory_order_relaxed);
    v->replicas = ready > 0 ? ready : 1;
}

/* Under mu: an idle replica, or NULL. */
static replica *idle_replica(rt_model *m)
{
    for (int i = 0; i < m->n_rep; i++) {
        replica *p = &m->rep[i];
        if (p->state == REP_READY && p->w && !p->busy && !p->pinging)
            return p;
    }
    return NULL;
}

/*
 * Under mu: a replica the submitting thread may run r on at once, or NULL.
 * Only when nothing is queued and the batcher would dispatch r alone right
 * now anyway (its decision on a queue of r alone), and its run is predicted
 * short (lat: its predicted run), since the submitter (a front-end thread) is
 * held meanwhile.
 */
static replica *inline_replica(rt_model *m, const rt_request *r, uint64_t now, uint64_t lat)
{
    if (!m->cfg.inline_max_ns || m->head || m->draining || !lat || lat > m->cfg.inline_max_ns)
        return NULL;
    replica *p = idle_replica(m);
    if (!p)
        return NULL;
    rt_batch_view v = {.rows = &r->rows, .deadline_ns = &r->deadline_ns,
                       .arrival_ns = &r->arrival_ns, .cost = &r->cost, .n = 1};
    view_policy(m, &v, now);
    rt_batch_decision d;
    rt_batch_decide(&v, &d);
    return d.take == 1 && d.expire == 0 ? p : NULL; /* else the batcher waits for company */
}

static void run_inline(rt_model *m, replica *p, rt_request *r, uint64_t lat, uint64_t budget);

rt_outcome rt_submit(rt_model *m, rt_request *r)
{
    const uint64_t now = rt_now_ns();
    char msg[USHER_ERROR_MAX];
    msg[0] = 0;
    rt_outcome o = RT_OK;
    r->arrival_ns = now;
    r->next = NULL;
    r->n_out = 0;
    r->cost = 1.0;
    r->pred_end = 0;

    /* the declared inputs never change once known, so the check needs no lock */
    bool known = atomic_load_explicit(&m->io_known, memory_order_acquire);
    bool valid = known && validate(m, r, msg, sizeof msg);

    uint64_t dl = UINT64_MAX;
    if (m->cfg.default_timeout_ns)
        dl = sat_add(now, m->cfg.default_timeout_ns);
    bool shorter = r->deadline_ns && r->deadline_ns < dl;
    if (shorter)
        dl = r->deadline_ns; /* a request may shorten the default, never extend it */
    r->deadline_ns = dl;

    pthread_mutex_lock(&m->mu);
    r->seq = ++m->seq;
    m->st.received++;
    rt_model_stats *gst = mst(m, r);
    if (gst)
        gst->received++;
    int ready = atomic_load_explicit(&m->n_ready, memory_order_relaxed);
    bool probe = false;
    uint64_t ahead = 0, own = 0; /* admission's prediction, reused once admitted */
    if (!m->accepting) {
        o = RT_UNAVAILABLE;
        snprintf(msg, sizeof msg, "model '%s' is shutting down", m->cfg.name);
    } else if (!known || ready < 1) {
        o = RT_UNAVAILABLE;
        bool backoff = true;
        for (int i = 0; i < m->n_rep; i++)
            backoff = backoff && m->rep[i].state == REP_BACKOFF;
        snprintf(msg, sizeof msg, "model '%s' is not ready: %s", m->cfg.name,
                 backoff ? "its workers keep crashing or failing to load (backing off)"
                         : "no replica has it loaded (starting)");
    } else if (!valid) {
        o = RT_INVALID; /* msg says why */
    } else if (m->n_queued >= m->capacity) {
        o = RT_REJECTED;
        snprintf(msg, sizeof msg, "queue full (%zu requests)", m->n_queued);
    } else {
        refresh_scale(m, now);
        r->cost = request_cost(m, r);
        ahead = work_ahead(m, now);
        /* a request that finds the model idle runs alone: the alone class's scale */
        bool idle = !m->head && m->running == 0 && idle_replica(m);
        double sc = idle ? m->adm.scale_alone : m->adm.scale;
        own = lat_at(m, r->rows, r->cost, sc);
        /* refused for its predicted end, or shed by the observed scale, or let through
         * as a probe of that scale when the model is idle (admit.c) */
        rt_admit_query q = {.now = now, .deadline_ns = dl, .ahead = ahead, .own = own,
                            .slack_ns = DISPATCH_SLACK_NS, .idle = idle, .scale = sc,
                            .model_slo = m->cfg.default_timeout_ns && (r->slo_deadline || !shorter)};
        rt_admit_verdict v = rt_admit_decide(&m->adm, &q);
        if (v != RT_ADMIT_YES) {
            bool by_scale = v == RT_ADMIT_SHED || (v == RT_ADMIT_PROBE && !m->adm.probe_by_profile);
            if (by_scale)
                m->st.shed_by_scale++;
            if (v == RT_ADMIT_PROBE) {
                probe = true;
                m->st.probes++;
            } else {
                o = RT_REJECTED;
                snprintf(msg, sizeof msg,
                         "deadline cannot be met: ~%.1f ms of work queued ahead, deadline in "
                         "%.1f ms (this request needs ~%.1f ms%s)",
                         ms(ahead), dl > now ? ms(dl - now) : 0.0, ms(own),
                         by_scale ? ", as runs have lately been slower than profiled" : "");
            }
        }
    }
    if (o != RT_OK) {
        m->st.outcome[o]++;
        if (gst)
            gst->outcome[o]++;
        ledger_check(m);
        pthread_mutex_unlock(&m->mu);
        rt_respond(r, o, msg);
        return o;
    }
    rt_admit_note_arrival(&m->adm, now, r->rows);
    r->pred_end = sat_add(now, sat_add(ahead, own));
    /* a probe runs at once on the idle replica, whatever its prediction: the batcher
     * would expire it */
    replica *p = probe ? idle_replica(m) : inline_replica(m, r, now, own);
    if (p) {
        run_starts(m, p);
        p->busy_until = now + own;
        p->run_pred = own;
        m->st.in_flight++;
        if (gst)
            gst->in_flight++;
        m->st.inline_runs++;
        ledger_check(m);
        uint64_t budget = 4 * m->cfg.inline_max_ns;
        run_inline(m, p, r, own, budget ? budget : 1); /* releases the lock */
        return RT_OK;
    }
    if (m->tail)
        m->tail->next = r;
    else
        m->head = r;
    m->tail = r;
    m->n_queued++;
    m->queued_work += (double)r->rows * r->cost;
    m->st.queued++;
    m->st.in_flight++;
    if (gst) {
        gst->queued++;
        gst->in_flight++;
    }
    pthread_cond_broadcast(&m->work_cv);
    /* the sweeper must not sleep past the moment this request becomes hopeless */
    uint64_t expiry = dl == UINT64_MAX ? UINT64_MAX : dl > own ? dl - own : 0;
    if (expiry < m->sweep_at)
        pthread_cond_signal(&m->sweep_cv);
    ledger_check(m);
    pthread_mutex_unlock(&m->mu);
    return RT_OK; /* r may already be answered and freed: not touched again */
}

/* ---- replicas --------------------------------------------------------------------------- */

/* Under mu: a worker was lost (or failed to load); decide when to start the next. */
static void record_death(rt_model *m, replica *p, uint64_t now, bool was_ready)
{
    m->st.worker_deaths++;
    p->lost++;
    if (was_ready) {
        m->st.replicas_ready--;
        atomic_store(&m->n_ready, m->st.replicas_ready);
        if (now - p->up_since > CRASH_WINDOW_NS)
            p->backoff_ns = 0; /* it ran long enough: the loop, if any, is over */
    }
    p->pid = 0;
    p->busy = false;
    p->deaths[p->n_deaths++ % CRASH_LIMIT] = now;
    if (p->n_deaths >= CRASH_LIMIT &&
        now - p->deaths[p->n_deaths % CRASH_LIMIT] <= CRASH_WINDOW_NS) {
        p->backoff_ns = p->backoff_ns ? p->backoff_ns * 2 : BACKOFF_MIN_NS;
        if (p->backoff_ns > BACKOFF_MAX_NS)
            p->backoff_ns = BACKOFF_MAX_NS;
        p->backoff_until = now + p->backoff_ns;
        p->n_deaths = 0;
        p->state = REP_BACKOFF;
        US_LOGW("model '%s' replica %d: %d worker deaths within %llu s: no restart for %llu s",
                m->cfg.name, p->idx, CRASH_LIMIT, (unsigned long long)(CRASH_WINDOW_NS / SEC),
                (unsigned long long)(p->backoff_ns / SEC));
        pthread_cond_signal(&m->sweep_cv); /* queued requests may have nobody left */
        return;
    }
    p->state = REP_STARTING;
}

/* Lock held on entry and exit; released while the worker starts. */
static void start_worker(rt_model *m, replica *p)
{
    p->state = REP_STARTING;
    pthread_mutex_unlock(&m->mu);
    rt_worker_opts o = {
        .exe = m->exe,
        .model_path = m->cfg.path,
        .name = m->cfg.name,
        .be = m->cfg.be,
        .mps_percentage = m->cfg.place[p->idx].mps_percentage,
    };
    if (m->cfg.place[p->idx].device[0])
        o.be.device = m->cfg.place[p->idx].device;
    if (m->cfg.place[p->idx].sm_percentage > 0)
        o.be.sm_percentage = m->cfg.place[p->idx].sm_percentage;
    rt_worker *w = NULL;
    usher_error err = {0};
    int rc = rt_worker_start(&o, &w, &err);
    uint64_t now = rt_now_ns();
    if (rc < 0)
        US_LOGW("model '%s' replica %d: worker failed to start: %s", m->cfg.name, p->idx,
                err.msg);
    else
        US_LOGI("model '%s' replica %d: worker %d ready", m->cfg.name, p->idx,
                rt_worker_pid(w));
    pthread_mutex_lock(&m->mu);
    if (rc < 0) {
        record_death(m, p, now, false);
        return;
    }
    if (!atomic_load_explicit(&m->io_known, memory_order_relaxed))
        capture_io(m, w);
    p->w = w;
    p->pid = rt_worker_pid(w);
    p->up_since = now;
    p->last_contact = now;
    p->state = REP_READY;
    m->st.replicas_ready++;
    atomic_store(&m->n_ready, m->st.replicas_ready);
}

/* Lock held on entry and exit: the worker died or hung; it is killed and replaced. */
static void lose_worker(rt_model *m, replica *p, const char *why)
{
    US_LOGW("model '%s' replica %d: worker %d lost: %s", m->cfg.name, p->idx, p->pid, why);
    record_death(m, p, rt_now_ns(), true);
    rt_worker *w = p->w;
    p->w = NULL;
    pthread_mutex_unlock(&m->mu);
    rt_worker_stop(w, 0);
    pthread_mutex_lock(&m->mu);
}

/* Lock held on entry: answer and count a finished batch, then the lock is released. */
static void finish(rt_model *m, rt_request **reqs, size_t n, rt_outcome o, const char *msg,
                   uint64_t t0, uint64_t t1, uint64_t freed, uint64_t run_pred)
{
    /* the members are chained before the lock goes: once it does, the replica may be
     * claimed again and reqs (its batch array) refilled by another thread */
    answer_list l = {0};
    double late = -1e300;
    if (o == RT_OK && n > 0) { /* its batch size: the requests' own rows */
        int64_t rows = 0;
        for (size_t j = 0; j < n; j++)
            rows += reqs[j]->rows;
        size_t k = rows < 1 ? 1 : rows > RT_MAX_BATCH ? RT_MAX_BATCH : (size_t)rows;
        m->bstat[k].runs++;
        m->bstat[k].ns += t1 - t0;
    }
    for (size_t j = 0; j < n; j++) {
        settle(m, reqs[j], o);
        if (o == RT_OK) {
            m->st.queue_ns += t0 - reqs[j]->arrival_ns;
            m->st.compute_ns += t1 - t0;
            if (mst(m, reqs[j])) {
                mst(m, reqs[j])->queue_ns += t0 - reqs[j]->arrival_ns;
                mst(m, reqs[j])->compute_ns += t1 - t0;
            }
            double lj = reqs[j]->pred_end ? rt_admit_lateness(t1, reqs[j]->pred_end, freed,
                                                              run_pred)
                                          : -1e300;
            late = lj > late ? lj : late;
        }
        list_add(&l, reqs[j]);
    }
    if (late > -1e300) /* admission's error on this batch: the margin it keeps (admit.c) */
        rt_admit_note_late(&m->adm, late, t1);
    if (m->draining)
        pthread_cond_broadcast(&m->idle_cv);
    ledger_check(m);
    pthread_mutex_unlock(&m->mu);
    list_answer(&l, o, msg);
}

/* Drop the batch members whose deadline has passed (answered RT_TIMEOUT): a batch never starts
 * late (OVER-2). Returns the members left. Lock not held. */
static size_t drop_late(rt_model *m, rt_request **reqs, size_t n, uint64_t now)
{
    answer_list late = {0}, gone = {0};
    size_t k = 0;
    for (size_t j = 0; j < n; j++) {
        if (atomic_load_explicit(&reqs[j]->cancel, memory_order_relaxed))
            list_add(&gone, reqs[j]);
        else if (reqs[j]->deadline_ns < now)
            list_add(&late, reqs[j]);
        else
            reqs[k++] = reqs[j];
    }
    if (!late.n && !gone.n)
        return n;
    pthread_mutex_lock(&m->mu);
    for (rt_request *r = late.head; r; r = r->next)
        settle(m, r, RT_TIMEOUT);
    for (rt_request *r = gone.head; r; r = r->next)
        settle(m, r, RT_CANCELLED);
    ledger_check(m);
    pthread_mutex_unlock(&m->mu);
    char msg[128];
    snprintf(msg, sizeof msg, "deadline passed before its batch could start");
    list_answer(&late, RT_TIMEOUT, msg);
    list_answer(&gone, RT_CANCELLED, "cancelled by the client");
    return k;
}

/* Lock held: the batch's replica is free again (and its thread told, if another ran it). */
static void release_claim(rt_model *m, replica *p, const batch_run *b)
{
    p->busy = false;
    m->running--;
    /* the replica thread slept while another thread ran this batch: wake it when it
     * has something to do (what queued meanwhile, a lost worker to replace) or waits
     * for the claim to end; not otherwise, since a wake-up costs as much as the run */
    if (b->inline_run && (m->head || !p->w || p->await_claim || m->stop))
        pthread_cond_broadcast(&m->work_cv);
}

/* ---- merge groups: one run of the merged graph for requests of any members -------------- */

/* Do a and b have the same input types and dims past the batch dim (all dims when the
 * group has no batch dim)? Members take the same inputs by position (group_map). */
static bool group_same_dims(const rt_model *m, const rt_request *a, const rt_request *b)
{
    if (a->n_in != b->n_in)
        return false;
    for (size_t i = 0; i < a->n_in; i++) {
        const us_shape *x = &a->in[i].shape, *y = &b->in[i].shape;
        if (a->in[i].dtype != b->in[i].dtype || x->rank != y->rank)
            return false;
        for (int d = m->has_rows ? 1 : 0; d < x->rank; d++)
            if (x->dim[d] != y->dim[d])
                return false;
    }
    return true;
}

/* Under mu: how many requests from the head can share one run of the group: the same dims
 * past the batch dim as the head (a shared merge runs every member's rows through one
 * operator), and at most one per member when the inputs have no batch dim. */
static size_t group_compatible(const rt_model *m, const rt_request *head, size_t max)
{
    bool seen[RT_MAX_MEMBERS] = {false};
    size_t n = 0;
    for (const rt_request *r = head; r && n < max; r = r->next, n++) {
        if (n > 0 && !group_same_dims(m, head, r))
            break;
        if (!m->has_rows && seen[r->member])
            break;
        seen[r->member] = true;
    }
    return n;
}

/* bytes of one row of t (the whole tensor when the group has no batch dim) */
static uint64_t group_row_bytes(const rt_model *m, const us_tensor *t)
{
    if (!m->has_rows)
        return t->bytes;
    return t->shape.dim[0] > 0 ? t->bytes / (uint64_t)t->shape.dim[0] : 0;
}

/*
 * Join a group batch into the merged graph's inputs (joined[m->n_in], us_malloc'd): each
 * member's requests' rows in batch order, then filler rows: a member with no request gets
 * one row (equal_rows: as many as the largest member; rt_group_rows), copies of the first
 * row of the batch's first request at the same input position (real input of the same type
 * and dims). *filler counts the filler rows. On failure nothing is left allocated.
 */
static int group_join(const rt_model *m, rt_request *const *reqs, size_t n, us_tensor *joined,
                      int64_t *filler, usher_error *err)
{
    int64_t own[RT_MAX_MEMBERS] = {0};
    const rt_request *first[RT_MAX_MEMBERS] = {NULL};
    for (size_t j = 0; j < n; j++) {
        int k = reqs[j]->member;
        own[k] += reqs[j]->rows;
        if (!first[k])
            first[k] = reqs[j];
    }
    memset(joined, 0, m->n_in * sizeof *joined);
    int64_t rows_of[RT_MAX_MEMBERS];
    *filler = rt_group_rows(own, m->n_mem, m->has_rows, m->cfg.group.equal_rows,
                            m->cfg.group.empty_rows, rows_of);
    for (int k = 0; k < m->n_mem; k++) {
        const member *g = &m->mem[k];
        int64_t want = rows_of[k];
        int64_t have = m->has_rows ? own[k] : own[k] ? 1 : 0;
        const rt_request *src = first[k] ? first[k] : reqs[0];
        for (size_t i = 0; i < g->n_in; i++) {
            const us_tensor *t0 = &src->in[i];
            us_tensor *o = &joined[g->in_idx[i]];
            uint64_t rb = group_row_bytes(m, t0);
            if (rb && (uint64_t)want > UINT64_MAX / rb)
                goto toolarge;
            o->dtype = t0->dtype;
            o->shape = t0->shape;
            if (m->has_rows)
                o->shape.dim[0] = want;
            snprintf(o->name, sizeof o->name, "%s", m->in[g->in_idx[i]].name);
            o->bytes = rb * (uint64_t)want;
            o->data = us_malloc(o->bytes ? o->bytes : 1);
            if (!o->data)
                goto nomem;
            uint64_t off = 0;
            for (size_t j = 0; j < n && have; j++) {
                const us_tensor *t = &reqs[j]->in[i];
                if (reqs[j]->member != k)
                    continue;
                if (t->bytes > o->bytes - off)
                    goto toolarge; /* group_compatible keeps the rows' sizes equal */
                memcpy((char *)o->data + off, t->data, t->bytes);
                off += t->bytes;
            }
            while (rb && o->bytes - off >= rb) { /* the filler rows */
                memcpy((char *)o->data + off, t0->data, rb);
                off += rb;
            }
        }
    }
    return USHER_OK;
toolarge:
    for (size_t i = 0; i < m->n_in; i++)
        us_free(joined[i].data);
    return us_err_set(err, USHER_ERR_INTERNAL, "merge group '%s': rows of different sizes in "
                      "one run", m->cfg.name);
nomem:
    for (size_t i = 0; i < m->n_in; i++)
        us_free(joined[i].data);
    return us_err_set(err, USHER_ERR_NOMEM, "merge group '%s': joining a batch", m->cfg.name);
}

/* Hand each request of a group batch its member's outputs, its own rows of them (in batch
 * order, as group_join laid them out; filler rows dropped), under the member's names. */
static int group_split(const rt_model *m, const us_tensor *outs, size_t n_out,
                       rt_request *const *reqs, size_t n, usher_error *err)
{
    int64_t off[RT_MAX_MEMBERS] = {0};
    for (size_t j = 0; j < n; j++) {
        rt_request *r = reqs[j];
        const member *g = &m->mem[r->member];
        int64_t at = off[r->member];
        off[r->member] += r->rows;
        for (size_t o = 0; o < g->n_out; o++) {
            if ((size_t)g->out_idx[o] >= n_out)
                return us_err_set(err, USHER_ERR_INTERNAL, "merge group '%s': %zu outputs "
                                  "came back", m->cfg.name, n_out);
            const us_tensor *t = &outs[g->out_idx[o]];
            us_tensor *d = &r->out[o];
            uint64_t rb = t->bytes, skip = 0;
            int64_t rows = 1;
            if (m->has_rows) {
                if (t->shape.rank < 1 || t->shape.dim[0] < at + r->rows || t->shape.dim[0] < 1)
                    return us_err_set(err, USHER_ERR_INVALID, "merge group '%s': output '%s' "
                                      "has %lld rows, fewer than the batch's", m->cfg.name,
                                      t->name, (long long)(t->shape.rank ? t->shape.dim[0] : 0));
                rb = t->bytes / (uint64_t)t->shape.dim[0];
                skip = rb * (uint64_t)at;
                rows = r->rows;
            }
            d->dtype = t->dtype;
            d->shape = t->shape;
            if (m->has_rows)
                d->shape.dim[0] = rows;
            snprintf(d->name, sizeof d->name, "%s", g->out[o].name);
            d->bytes = rb * (uint64_t)rows;
            d->data = us_malloc(d->bytes ? d->bytes : 1);
            if (!d->data)
                return us_err_set(err, USHER_ERR_NOMEM, "merge group '%s'", m->cfg.name);
            memcpy(d->data, (const char *)t->data + skip, d->bytes);
            r->n_out = o + 1;
        }
    }
    return USHER_OK;
}

#define NOTHING_SENT 2 /* send_batch: every member was answered before a send */

/*
 * Lock held on entry, released on return. Join the batch, drop the members
 * whose deadline has passed, count it and send it to the replica's worker.
 * Returns the send's status (USHER_OK: running, to be waited for), or
 * NOTHING_SENT when no member is left to run (each answered; the claim
 * released).
 */
static int send_batch(rt_model *m, replica *p, batch_run *b, usher_error *err)
{
    us_tensor joined[RT_MAX_IO];
    bool group = m->n_mem > 0;
    size_t n_in = group ? m->n_in : b->reqs[0]->n_in;
    int64_t filler = 0;
    char msg[USHER_ERROR_MAX + 64];
    pthread_mutex_unlock(&m->mu);
    for (;;) {
        b->rows = 0;
        for (size_t j = 0; j < b->n; j++)
            b->rows += b->reqs[j]->rows;
        int jrc = group      ? group_join(m, b->reqs, b->n, joined, &filler, err)
                  : b->n > 1 ? rt_batch_join(b->reqs, b->n, joined, n_in, err)
                             : USHER_OK;
        if (jrc < 0) {
            snprintf(msg, sizeof msg, "could not form the batch: %s", err->msg);
            pthread_mutex_lock(&m->mu);
            release_claim(m, p, b);
            finish(m, b->reqs, b->n, RT_INTERNAL, msg, 0, 0, 0, 0);
            return NOTHING_SENT;
        }
        b->t0 = rt_now_ns();
        size_t k = drop_late(m, b->reqs, b->n, b->t0);
        if (k == b->n)
            break;
        if (b->n > 1 || group)
            for (size_t i = 0; i < n_in; i++)
                us_free(joined[i].data);
        b->n = k;
        if (k == 0) {
            pthread_mutex_lock(&m->mu);
            release_claim(m, p, b);
            if (m->draining)
                pthread_cond_broadcast(&m->idle_cv);
            ledger_check(m);
            pthread_mutex_unlock(&m->mu);
            return NOTHING_SENT;
        }
    }

    pthread_mutex_lock(&m->mu);
    m->st.batches++;
    m->st.batch_rows += (uint64_t)b->rows;
    if (group) {
        bool in[RT_MAX_MEMBERS] = {false};
        int members = 0;
        for (size_t j = 0; j < b->n; j++) {
            rt_model_stats *ms = mst(m, b->reqs[j]);
            ms->batch_rows += (uint64_t)b->reqs[j]->rows;
            if (!in[b->reqs[j]->member]) {
                in[b->reqs[j]->member] = true;
                ms->batches++;
                members++;
            }
        }
        m->st.group_batches++;
        m->st.group_mixed_batches += members > 1;
        m->st.group_filler_rows += (uint64_t)filler;
    }
    for (size_t j = 0; j < b->n; j++)
        if (b->reqs[j]->deadline_ns < b->t0)
            m->st.started_late++; /* never: drop_late ran at t0 */
    uint64_t lat = lat_of(m, b->rows, b->cost);
    pthread_mutex_unlock(&m->mu);

    uint64_t timeout = lat > RUN_TIMEOUT_MIN_NS / 10 ? lat * 10 : RUN_TIMEOUT_MIN_NS;
    /* a lone request runs from its own tensors: no copy; the worker copies the
     * inputs into its region before the RUN leaves, so the joined ones go now */
    int rc = rt_worker_send(p->w, b->n > 1 || group ? joined : b->reqs[0]->in, n_in, timeout,
                            err);
    if (b->n > 1 || group)
        for (size_t i = 0; i < n_in; i++)
            us_free(joined[i].data);
    return rc;
}

/*
 * Lock not held on entry or return. The batch ended with rc (the send's or
 * the wait's status) and, on success, outs: hand each member its rows,
 * release the replica, answer every member. A lost worker is reaped here
 * (after the answers: FAULT-1) and the replica thread woken to replace it.
 */
static void end_batch(rt_model *m, replica *p, const batch_run *b, int rc, us_tensor *outs,
                      size_t n_out, const usher_error *err)
{
    char msg[USHER_ERROR_MAX + US_TENSOR_NAME_MAX + 128];
    uint64_t t1 = rt_now_ns();
    rt_outcome o = RT_OK;
    msg[0] = 0;
    bool lost = false, demote = false, contact = true;
    usher_error e = {0};
    if (rc == USHER_OK && m->n_mem > 0) {
        if (group_split(m, outs, n_out, b->reqs, b->n, &e) < 0) {
            o = RT_INTERNAL;
            snprintf(msg, sizeof msg, "model '%s': %s", m->cfg.name, e.msg);
        }
        for (size_t i = 0; i < n_out; i++)
            us_free(outs[i].data);
    } else if (rc == USHER_OK) {
        if (b->n == 1) { /* the outputs are the request's own */
            memcpy(b->reqs[0]->out, outs, n_out * sizeof *outs);
            b->reqs[0]->n_out = n_out;
        } else {
            if (rt_batch_split(outs, n_out, b->reqs, b->n, &e) < 0) {
                o = RT_INTERNAL;
                demote = e.code == USHER_ERR_INVALID;
                snprintf(msg, sizeof msg, "model '%s': %s", m->cfg.name, e.msg);
            }
            for (size_t i = 0; i < n_out; i++)
                us_free(outs[i].data);
        }
    } else if (rc == USHER_ERR_INVALID) {
        o = RT_INVALID;
        snprintf(msg, sizeof msg, "%s", err->msg);
    } else if (rc == USHER_ERR_IO) {
        o = RT_WORKER_CRASH;
        lost = true;
        contact = false;
        snprintf(msg, sizeof msg, "model '%s': worker %d lost while running this request: %s",
                 m->cfg.name, p->pid, err->msg);
    } else {
        o = RT_INTERNAL;
        snprintf(msg, sizeof msg, "model '%s': %s", m->cfg.name, err->msg);
    }

    pthread_mutex_lock(&m->mu);
    if (contact)
        p->last_contact = t1;
    release_claim(m, p, b);
    if (rc == USHER_OK && o == RT_OK) {
        note_run(m, b->reqs[0], b->rows, b->cost, t1 - b->t0, p->overlapped, t1);
        p->runs_ok++;
        if (b->rows == p->timed_rows) {
            p->timed_runs++;
            p->timed_ns += t1 - b->t0;
        }
    }
    if (demote && m->batch_max > 1) {
        US_LOGW("model '%s': %s; served one request per batch from now on", m->cfg.name, e.msg);
        m->batch_max = 1;
    }
    rt_worker *dead = NULL;
    if (lost) {
        US_LOGW("model '%s' replica %d: worker %d lost: %s", m->cfg.name, p->idx, p->pid,
                err->msg);
        record_death(m, p, t1, true);
        dead = p->w;
        p->w = NULL;
    }
    uint64_t freed = p->freed; /* when p was freed before this batch: the margin's rebase */
    p->freed = t1;
    /* answer first (FAULT-1), then reap */
    finish(m, b->reqs, b->n, o, msg, b->t0, t1, freed, p->run_pred);
    if (dead)
        rt_worker_stop(dead, 0);
}

/*
 * Lock not held. The batch b was sent with status rc: wait for its answer
 * (spin_ns and budget_ns as rt_worker_wait takes them; 0, 0: to the end)
 * and end it. RT_WORKER_PENDING when the budget ran out first, the batch
 * still running and nothing ended.
 */
static int wait_batch(rt_model *m, replica *p, const batch_run *b, int rc, usher_error *err,
                      uint64_t spin_ns, uint64_t budget_ns)
{
    us_tensor outs[RT_MAX_IO];
    size_t n_out = 0;
    if (rc == USHER_OK)
        rc = rt_worker_wait(p->w, spin_ns, budget_ns, outs, &n_out, err);
    if (rc == RT_WORKER_PENDING)
        return rc;
    end_batch(m, p, b, rc, outs, n_out, err);
    return USHER_OK;
}

/* Run one batch taken from the queue on the replica's own thread (lock held on entry and
 * exit, released meanwhile). */
static void run_batch(rt_model *m, replica *p, rt_request **reqs, size_t n)
{
    batch_run b = {.reqs = reqs, .n = n, .cost = reqs[0]->cost};
    usher_error err = {0};
    int rc = send_batch(m, p, &b, &err);
    if (rc != NOTHING_SENT)
        wait_batch(m, p, &b, rc, &err, 0, 0);
    pthread_mutex_lock(&m->mu);
}

/*
 * Lock held on entry, released on return: r, just admitted, runs on the
 * replica p claimed for it, driven by the submitting thread, which so skips
 * the hand-off to the replica thread and back (two thread wake-ups: most of
 * a tiny model's serving time). It waits at most `budget` ns for the answer
 * (4 x inline_max_ns); a run that takes longer is handed to the replica
 * thread, which waits for it to the end, so a slow or hung run never holds
 * the submitter. Admission probes come this way too, whatever their length.
 */
static void run_inline(rt_model *m, replica *p, rt_request *r, uint64_t lat, uint64_t budget)
{
    p->batch[0] = r; /* the replica thread takes no batch while p is busy */
    /* poll without sleeping for up to twice the predicted run (at most the budget) */
    uint64_t spin = 2 * lat < budget ? 2 * lat : budget;
    batch_run b = {.reqs = p->batch, .n = 1, .cost = r->cost, .inline_run = true};
    usher_error err = {0};
    int rc = send_batch(m, p, &b, &err);
    if (rc == NOTHING_SENT || wait_batch(m, p, &b, rc, &err, spin, budget) != RT_WORKER_PENDING)
        return;
    pthread_mutex_lock(&m->mu);
    p->handoff = b;
    p->handoff.inline_run = false; /* its end is the replica thread's own */
    p->handed = true;
    m->st.inline_handoffs++;
    pthread_cond_broadcast(&m->work_cv);
    pthread_mutex_unlock(&m->mu);
}

/* Lock held on entry and exit: wait for the run a submitter handed over, and end it. */
static void take_handoff(rt_model *m, replica *p)
{
    batch_run b = p->handoff;
    p->handed = false;
    pthread_mutex_unlock(&m->mu);
    usher_error err = {0};
    wait_batch(m, p, &b, USHER_OK, &err, 0, 0);
    pthread_mutex_lock(&m->mu);
}

/* Lock held: one decision for a ready replica. Returns false when it should sleep until
 * *wake (absolute, rt clock). */
static bool step(rt_model *m, replica *p, uint64_t *wake)
{
    uint64_t now = rt_now_ns();
    size_t n = m->n_mem > 0       ? group_compatible(m, m->head, m->view_cap)
               : m->batch_max > 1 ? rt_batch_compatible(m->head, m->view_cap)
                                  : (m->n_queued < m->view_cap ? m->n_queued : m->view_cap);
    size_t i = 0;
    for (rt_request *r = m->head; r && i < n; r = r->next, i++) {
        p->rows[i] = r->rows;
        p->dls[i] = r->deadline_ns;
        p->arr[i] = r->arrival_ns;
        p->cost[i] = r->cost;
    }
    refresh_scale(m, now);
    rt_batch_view v = {
        .rows = p->rows,
        .deadline_ns = p->dls,
        .arrival_ns = p->arr,
        .cost = p->cost,
        .n = n,
        .blocked = n < m->n_queued || m->draining,
    };
    view_policy(m, &v, now);
    rt_batch_decision d;
    rt_batch_decide(&v, &d);

    if (d.expire) {
        answer_list late = {0};
        for (size_t j = 0; j < d.expire; j++) {
            rt_request *r = m->head;
            queue_unlink(m, NULL, r);
            settle(m, r, RT_TIMEOUT);
            list_add(&late, r);
        }
        if (m->draining)
            pthread_cond_broadcast(&m->idle_cv);
        ledger_check(m);
        pthread_mutex_unlock(&m->mu);
        list_answer(&late, RT_TIMEOUT, "deadline cannot be met: it expired in the queue");
        pthread_mutex_lock(&m->mu);
        return true;
    }
    if (d.take) {
        int64_t rows = 0;
        for (size_t j = 0; j < d.take; j++) {
            rt_request *r = m->head;
            queue_unlink(m, NULL, r);
            p->batch[j] = r;
            rows += r->rows;
        }
        run_starts(m, p);
        p->run_pred = lat_of(m, rows, p->batch[0]->cost);
        p->busy_until = now + p->run_pred;
        ledger_check(m);
        if (m->head)
            pthread_cond_broadcast(&m->work_cv); /* another idle replica may take the rest */
        run_batch(m, p, p->batch, d.take);
        return true;
    }
    *wake = d.wake_ns;
    return false;
}

static void *replica_main(void *arg)
{
    replica *p = arg;
    rt_model *m = p->m;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        if (p->handed) {
            take_handoff(m, p);
            continue;
        }
        if (p->busy) { /* a submitter runs a batch on this replica's worker */
            p->await_claim = true;
            wait_rel(&m->work_cv, &m->mu, HEARTBEAT_NS);
            p->await_claim = false;
            continue;
        }
        if (m->stop)
            break;
        uint64_t now = rt_now_ns();
        if (!p->w) {
            if (p->state == REP_BACKOFF && now < p->backoff_until) {
                wait_rel(&m->work_cv, &m->mu, p->backoff_until - now);
                continue;
            }
            start_worker(m, p);
            continue;
        }
        uint64_t wake = UINT64_MAX;
        if (step(m, p, &wake))
            continue;
        now = rt_now_ns();
        if (now - p->last_contact >= HEARTBEAT_NS) {
            p->pinging = true; /* no submitter may claim the worker meanwhile */
            pthread_mutex_unlock(&m->mu);
            usher_error err = {0};
            int rc = rt_worker_ping(p->w, &err);
            pthread_mutex_lock(&m->mu);
            p->pinging = false;
            if (rc < 0)
                lose_worker(m, p, err.msg);
            else
                p->last_contact = rt_now_ns();
            continue;
        }
        uint64_t rel = HEARTBEAT_NS - (now - p->last_contact);
        if (wake > now && wake - now < rel)
            rel = wake - now;
        else if (wake <= now)
            rel = 0;
        if (rel)
            wait_rel(&m->work_cv, &m->mu, rel);
    }
    bool was_ready = p->state == REP_READY;
    p->state = REP_STOPPED;
    p->pid = 0;
    if (was_ready) {
        m->st.replicas_ready--;
        atomic_store(&m->n_ready, m->st.replicas_ready);
    }
    rt_worker *w = p->w;
    p->w = NULL;
    pthread_mutex_unlock(&m->mu);
    if (w)
        rt_worker_stop(w, STOP_GRACE_NS);
    return NULL;
}

size_t rt_model_batch_stats(rt_model *m, rt_batch_stat *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&m->mu);
    for (int k = 1; k <= RT_MAX_BATCH; k++) {
        if (!m->bstat[k].runs)
            continue;
        if (n < cap)
            out[n] = (rt_batch_stat){.rows = k, .runs = m->bstat[k].runs, .run_ns = m->bstat[k].ns};
        n++;
    }
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* ---- the sweeper ------------------------------------------------------------------------ */
static void *sweeper_main(void *arg)
{
    rt_model *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        uint64_t now = rt_now_ns();
        refresh_scale(m, now);
        bool nobody = atomic_load_explicit(&m->n_ready, memory_order_relaxed) == 0;
        for (int i = 0; i < m->n_rep && nobody; i++)
            nobody = m->rep[i].state == REP_BACKOFF || m->rep[i].state == REP_STOPPED;
        answer_list late = {0}, gone = {0}, cancelled = {0};
        uint64_t next = UINT64_MAX;
        for (rt_request *prev = NULL, *r = m->head, *nx; r; r = nx) {
            nx = r->next;
            uint64_t lat = lat_of(m, r->rows, r->cost);
            if (atomic_load_explicit(&r->cancel, memory_order_relaxed)) {
                queue_unlink(m, prev, r);
                settle(m, r, RT_CANCELLED);
                list_add(&cancelled, r);
                continue;
            }
            if (nobody || r->deadline_ns < now || r->deadline_ns - now < lat) {
                queue_unlink(m, prev, r);
                settle(m, r, nobody ? RT_UNAVAILABLE : RT_TIMEOUT);
                list_add(nobody ? &gone : &late, r);
                continue;
            }
            if (r->deadline_ns != UINT64_MAX && r->deadline_ns - lat < next)
                next = r->deadline_ns - lat;
            prev = r;
        }
        if (late.n || gone.n || cancelled.n) {
            if (m->draining)
                pthread_cond_broadcast(&m->idle_cv);
            ledger_check(m);
            pthread_mutex_unlock(&m->mu);
            char msg[256];
            snprintf(msg, sizeof msg, "model '%s': deadline cannot be met: no replica could "
                     "start it in time", m->cfg.name);
            list_answer(&late, RT_TIMEOUT, msg);
            snprintf(msg, sizeof msg, "model '%s' is not ready: its workers keep crashing "
                     "(backing off)", m->cfg.name);
            list_answer(&gone, RT_UNAVAILABLE, msg);
            list_answer(&cancelled, RT_CANCELLED, "cancelled by the client");
            pthread_mutex_lock(&m->mu);
            continue; /* scan again: requests may have come while the lock was released */
        }
        now = rt_now_ns();
        /* scan again at the next expiry, but not more often than SWEEP_GAP_NS */
        uint64_t rel = next > now ? next - now : 0;
        if (rel < SWEEP_GAP_NS)
            rel = SWEEP_GAP_NS;
        if (rel > SEC)
            rel = SEC;
        m->sweep_at = now + rel;
        wait_rel(&m->sweep_cv, &m->mu, rel);
        m->sweep_at = 0; /* scanning: no need to wake it */
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------------- */
static size_t default_capacity(const rt_model_cfg *c)
{
    return rt_admit_capacity(c->max_batch, rt_batch_latency(c->latency_ns, c->max_batch,
                                                            c->max_batch),
                             c->default_timeout_ns, c->replicas);
}

static void model_destroy(rt_model *m)
{
    if (m->rep)
        for (int i = 0; i < m->n_rep; i++) {
            us_free(m->rep[i].rows);
            us_free(m->rep[i].dls);
            us_free(m->rep[i].arr);
            us_free(m->rep[i].cost);
            us_free(m->rep[i].batch);
        }
    us_free(m->rep);
    us_free(m->mem);
    us_free(m->bstat);
    us_free(m->exe);
    us_free(m->ort_lib);
    pthread_cond_destroy(&m->work_cv);
    pthread_cond_destroy(&m->sweep_cv);
    pthread_cond_destroy(&m->idle_cv);
    pthread_mutex_destroy(&m->mu);
    us_free(m);
}

static void join_all(rt_model *m)
{
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_broadcast(&m->work_cv);
    pthread_cond_broadcast(&m->sweep_cv);
    pthread_mutex_unlock(&m->mu);
    for (int i = 0; i < m->n_rep; i++)
        if (m->rep[i].thread_started)
            pthread_join(m->rep[i].thread, NULL);
    if (m->sweeper_started)
        pthread_join(m->sweeper, NULL);
}

int rt_model_new(const rt_model_cfg *cfg, const char *exe, rt_model **out, usher_error *err)
{
    *out = NULL;
    if (!cfg->name[0] || !cfg->path[0] || !exe || !*exe)
        return us_err_set(err, USHER_ERR_INVALID, "model '%s': a name, a model path and the "
                          "usher executable are needed", cfg->name);
    if (cfg->max_batch < 1 || cfg->max_batch > RT_MAX_BATCH)
        return us_err_set(err, USHER_ERR_INVALID, "model '%s': max_batch %d, must be 1 to %d",
                          cfg->name, cfg->max_batch, RT_MAX_BATCH);
    if (cfg->replicas < 1 || cfg->replicas > RT_MAX_REPLICAS || cfg->queue_capacity < 0)
        return us_err_set(err, USHER_ERR_INVALID, "model '%s': %d replicas (1 to %d), queue "
                          "capacity %d", cfg->name, cfg->replicas, RT_MAX_REPLICAS,
                          cfg->queue_capacity);
    for (int i = 0; i < cfg->replicas; i++)
        if (cfg->place[i].mps_percentage < 0 || cfg->place[i].mps_percentage > 100 ||
            cfg->place[i].sm_percentage < 0 || cfg->place[i].sm_percentage > 100 ||
            cfg->place[i].batch < 0 || cfg->place[i].batch > RT_MAX_BATCH ||
            !memchr(cfg->place[i].device, 0, sizeof cfg->place[i].device))
            return us_err_set(err, USHER_ERR_INVALID, "model '%s': replica %d: MPS share %d %%, "
                              "SM share %d %% (0 to 100), batch %d (0 to %d) or device name too "
                              "long", cfg->name, i, cfg->place[i].mps_percentage,
                              cfg->place[i].sm_percentage, cfg->place[i].batch, RT_MAX_BATCH);
    rt_model *m = us_calloc(1, sizeof *m);
    if (!m)
        return us_err_set(err, USHER_ERR_NOMEM, "model '%s'", cfg->name);
    m->cfg = *cfg;
    /* be.device and be.ort_library point into memory the caller may free: keep copies */
    const char *dev = cfg->be.device ? cfg->be.device : cfg->device;
    snprintf(m->cfg.device, sizeof m->cfg.device, "%s", dev);
    m->cfg.be.device = m->cfg.device[0] ? m->cfg.device : NULL;
    m->exe = us_strdup(exe);
    m->ort_lib = cfg->be.ort_library ? us_strdup(cfg->be.ort_library) : NULL;
    m->cfg.be.ort_library = m->ort_lib;
    m->capacity_follows = !cfg->queue_capacity;
    m->capacity = cfg->queue_capacity ? (size_t)cfg->queue_capacity : default_capacity(cfg);
    m->cfg.queue_capacity = (int)m->capacity;
    m->view_cap = (size_t)cfg->max_batch + VIEW_EXTRA;
    m->batch_max = 1; /* until the first worker shows the model's batch dims */
    m->accepting = true;
    rt_admit_init(&m->adm);
    m->profile_factor = 1.0;
    m->learn = true;
    for (int b = 1; b <= cfg->max_batch && m->learn; b++)
        m->learn = cfg->latency_ns[b] == 0;
    m->sweep_at = UINT64_MAX;
    if (cfg->group.n_members < 0 || cfg->group.n_members > RT_MAX_MEMBERS) {
        us_free(m->exe);
        us_free(m->ort_lib);
        us_free(m);
        return us_err_set(err, USHER_ERR_INVALID, "model '%s': a merge group of %d members "
                          "(at most %d)", cfg->name, cfg->group.n_members, RT_MAX_MEMBERS);
    }
    m->n_mem = cfg->group.n_members;
    if (m->n_mem > 0) {
        m->cfg.inline_max_ns = 0; /* a group run joins its members' inputs: the queue path */
        m->mem = us_calloc((size_t)m->n_mem, sizeof *m->mem);
    }
    m->n_rep = cfg->replicas;
    m->rep = us_calloc((size_t)m->n_rep, sizeof *m->rep);
    m->bstat = us_calloc(RT_MAX_BATCH + 1, sizeof *m->bstat);
    pthread_mutex_init(&m->mu, NULL);
    cond_init(&m->work_cv);
    cond_init(&m->sweep_cv);
    cond_init(&m->idle_cv);
    if (!m->exe || (cfg->be.ort_library && !m->ort_lib) || !m->rep || (m->n_mem && !m->mem) ||
        !m->bstat)
        goto nomem;
    for (int i = 0; i < m->n_rep; i++) {
        replica *p = &m->rep[i];
        p->m = m;
        p->idx = i;
        p->state = REP_STARTING;
        p->timed_rows = cfg->place[i].batch > 0 ? cfg->place[i].batch : cfg->max_batch;
        p->rows = us_mallocarray(m->view_cap, sizeof *p->rows);
        p->dls = us_mallocarray(m->view_cap, sizeof *p->dls);
        p->arr = us_mallocarray(m->view_cap, sizeof *p->arr);
        p->cost = us_mallocarray(m->view_cap, sizeof *p->cost);
        p->batch = us_mallocarray((size_t)cfg->max_batch, sizeof *p->batch);
        if (!p->rows || !p->dls || !p->arr || !p->cost || !p->batch)
            goto nomem;
    }
    if (pthread_create(&m->sweeper, NULL, sweeper_main, m) != 0)
        goto nothread;
    m->sweeper_started = true;
    for (int i = 0; i < m->n_rep; i++) {
        if (pthread_create(&m->rep[i].thread, NULL, replica_main, &m->rep[i]) != 0)
            goto nothread;
        m->rep[i].thread_started = true;
    }
    *out = m;
    return USHER_OK;
nothread:
    join_all(m);
    model_destroy(m);
    return us_err_set(err, USHER_ERR_INTERNAL, "model '%s': cannot start its threads: %s",
                      cfg->name, strerror(errno));
nomem:
    model_destroy(m);
    return us_err_set(err, USHER_ERR_NOMEM, "model '%s'", cfg->name);
}

void rt_model_free(rt_model *m, uint64_t drain_ns)
{
    if (!m)
        return;
    rt_model_stop(m, drain_ns);
    model_destroy(m);
}

void rt_model_stop(rt_model *m, uint64_t drain_ns)
{
    if (m->stopped)
        return;
    m->stopped = true;
    pthread_mutex_lock(&m->mu);
    m->accepting = false;
    m->draining = true; /* replicas stop waiting to fill batches: nothing more will come */
    pthread_cond_broadcast(&m->work_cv);
    uint64_t until = sat_add(rt_now_ns(), drain_ns);
    for (;;) {
        uint64_t now = rt_now_ns();
        if ((m->n_queued == 0 && m->running == 0) || now >= until)
            break;
        uint64_t rel = until - now;
        wait_rel(&m->idle_cv, &m->mu, rel < 50 * MS ? rel : 50 * MS);
    }
    answer_list rest = {0};
    while (m->head) {
        rt_request *r = m->head;
        queue_unlink(m, NULL, r);
        settle(m, r, RT_UNAVAILABLE);
        list_add(&rest, r);
    }
    ledger_check(m);
    pthread_mutex_unlock(&m->mu);
    char msg[256];
    snprintf(msg, sizeof msg, "model '%s' is shutting down: its drain time ran out before this "
             "request could run", m->cfg.name);
    list_answer(&rest, RT_UNAVAILABLE, msg);
    /* running batches end (answered by their replicas) before the threads return */
    join_all(m);
#if US_DEBUG_ASSERTS
    pthread_mutex_lock(&m->mu); /* quiescent: nothing queued, nothing left in flight */
    ledger_check(m);
    US_DEBUG_ASSERT(m->n_queued == 0 && m->running == 0 && m->st.in_flight == 0);
    pthread_mutex_unlock(&m->mu);
#endif
}

bool rt_model_ready(const rt_model *m)
{
    return atomic_load(&m->n_ready) > 0;
}

const rt_model_cfg *rt_model_config(const rt_model *m) { return &m->cfg; }

void rt_model_get_stats(rt_model *m, rt_model_stats *out)
{
    pthread_mutex_lock(&m->mu);
    uint64_t now = rt_now_ns();
    refresh_scale(m, now);
    ledger_check(m);
    *out = m->st;
    out->latency_scale = m->adm.scale;
    out->admission_margin_ns = m->adm.margin;
    out->arrival_rate = rate_at(m, now);
    out->shedding = m->adm.last_shed && now - m->adm.last_shed < SHEDDING_NS;
    out->latency_learned = m->learn;
    out->profile_factor = m->profile_factor;
    pthread_mutex_unlock(&m->mu);
}

bool rt_model_member_stats(rt_model *m, int k, rt_model_stats *out)
{
    if (m->n_mem == 0) {
        if (k != 0)
            return false;
        rt_model_get_stats(m, out);
        return true;
    }
    if (k < 0 || k >= m->n_mem)
        return false;
    rt_model_get_stats(m, out);
    pthread_mutex_lock(&m->mu);
    const rt_model_stats *g = &m->mem[k].st;
    out->received = g->received;
    out->in_flight = g->in_flight;
    out->queued = g->queued;
    memcpy(out->outcome, g->outcome, sizeof out->outcome);
    out->batches = g->batches;
    out->batch_rows = g->batch_rows;
    out->queue_ns = g->queue_ns;
    out->compute_ns = g->compute_ns;
    pthread_mutex_unlock(&m->mu);
    return true;
}

bool rt_model_member_io(rt_model *m, int k, const be_io **in, size_t *n_in, const be_io **out,
                        size_t *n_out)
{
    if (m->n_mem == 0)
        return k == 0 && rt_model_io(m, in, n_in, out, n_out);
    if (k < 0 || k >= m->n_mem || !atomic_load_explicit(&m->io_known, memory_order_acquire))
        return false;
    const member *g = &m->mem[k];
    if (in)
        *in = g->in;
    if (n_in)
        *n_in = g->n_in;
    if (out)
        *out = g->out;
    if (n_out)
        *n_out = g->n_out;
    return true;
}

bool rt_model_replica_stats(rt_model *m, int idx, rt_replica_stats *out)
{
    if (idx < 0 || idx >= m->n_rep)
        return false;
    pthread_mutex_lock(&m->mu);
    const replica *p = &m->rep[idx];
    *out = (rt_replica_stats){.rows = p->timed_rows, .runs = p->timed_runs,
                              .run_ns = p->timed_ns, .batches = p->runs_ok,
                              .worker_deaths = p->lost};
    pthread_mutex_unlock(&m->mu);
    return true;
}

int rt_model_worker_pid(rt_model *m, int idx)
{
    if (idx < 0 || idx >= m->n_rep)
        return 0;
    pthread_mutex_lock(&m->mu);
    int pid = m->rep[idx].pid;
    pthread_mutex_unlock(&m->mu);
    return pid;
}

bool rt_model_io(rt_model *m, const be_io **in, size_t *n_in, const be_io **out, size_t *n_out)
{
    /* written once, before io_known is released: read without the lock */
    if (!atomic_load_explicit(&m->io_known, memory_order_acquire))
        return false;
    if (in)
        *in = m->in;
    if (n_in)
        *n_in = m->n_in;
    if (out)
        *out = m->out;
    if (n_out)
        *n_out = m->n_out;
    return true;
}
