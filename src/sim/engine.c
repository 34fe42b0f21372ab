/*
 * engine.c - the discrete-event simulator (layer 7, see sim.h).
 *
 * State, per run:
 *   model    one per workload model: its FIFO queue (arrival, deadline and
 *            the end admission predicted, as three arrays whose live part
 *            [head, tail) is contiguous, so rt_batch_decide reads it in
 *            place), the runtime's admission state (rt_admit), its replicas
 *            and a ring of the idle ones (longest idle first), a pending
 *            wake-up time, and its metrics;
 *   replica  one per plan replica: its profile class, its GPU and slot
 *            there, the batch it runs (members' arrival and predicted end);
 *   class    the replicas of one model on one GPU type at one share and
 *            batch cap share a profile table: alone latency and if_replica
 *            for every batch size 1..cap, asked of the profile callback once
 *            when the run starts;
 *   gpu      its device (bandwidth, L2), its replicas, the rows each one is
 *            running now, the busy share over time (utilisation).
 *
 * Events: a batch ends (replica), a model wakes up to decide again (a
 * batch that chose to wait), and the next arrival, pulled from the source
 * one at a time (so the run holds only what is in flight). Batch ends and
 * wake-ups live in a binary min-heap keyed by (time, sequence number); the
 * next arrival waits beside it with its own sequence number, taken when it
 * was pulled. Equal times break by sequence: the order never depends on
 * anything but the inputs and the seed.
 *
 * A request's path, as the live runtime (src/runtime/model.c) takes it:
 *   arrival: the queue full, or no replica -> rejected; else the admission
 *     verdict (rt_admit_decide over the work ahead - the queue at the
 *     model's per-row time plus what its busy replicas still have left,
 *     shared among its replicas - and its own run, both times the observed
 *     scale): refused (rejected, or shed by the scale), a probe (runs at
 *     once on the idle replica), or admitted: queued, and the idle replicas
 *     decide;
 *   decision (rt_batch_decide with the deciding replica's batch cap and its
 *     own latency table): expire hopeless heads, take a batch, or wait until
 *     a wake-up time (scheduled; re-decided on every arrival anyway);
 *   batch start: its time is the interference model's prediction for this
 *     replica beside the replicas of its GPU running at that moment
 *     (if_predict; cached per GPU composition and busy state), or its alone
 *     time with interference off. A running batch keeps the time it was
 *     given when others start or end beside it (docs/simulator.md);
 *   batch end: each member's latency (to the histogram), queueing time and
 *     SLO; the observed/predicted ratio into the runtime's scale, and the
 *     lateness against admission's predicted end into its margin; then the
 *     replica that finished decides first, as the live replica thread does.
 *
 * Re-planning (replan_every_ns > 0; docs/simulator.md, Re-planning): a
 * re-plan event hands the rates observed since the last one to the replan
 * callback and matches the plan it returns against the running one (below,
 * apply_plan). Replicas and GPUs are only ever appended: a replica has a
 * state (ready, starting, stopping, retired) and a model's serving set, idle
 * ring and admission tables and a GPU's slots are rebuilt from the states at
 * each change (models_rebuild, gpus_rebuild), so a batch end already in the
 * heap always finds its replica. A switch event makes a model's starting
 * replicas serve and its stopping ones retire once the last has started.
 *
 * Service-time variance (service_cv > 0): a batch's time times a lognormal
 * factor of mean 1 from a stream of the seed of its own.
 *
 * Merge groups (the plan's merge_groups; docs/simulator.md "Merge groups"): a group is a
 * model of the engine past the workload's (index n_models + k), with the members' requests
 * in one FIFO queue (each with its member), its replicas, its admission and batching - as
 * the live runtime serves a group (rt_model_cfg.group): one queue, each request with its
 * own member's deadline, a batch of any members' requests up to the members' batches
 * summed, predicted by the merged graph's latency at ceil(rows / members) rows each (as
 * the server's group profile is laid out, server/group.c). A run's time is the merged
 * graph's profile at ceil(rows given / members) rows of each member, the rows given by the
 * runtime's own rt_group_rows (fillers included), and the interference model sees the
 * group's replica as one replica at that profile. Metrics stay per member (a request
 * counts where it came from); the group's own figures are its runs.
 *
 * Memory: the queues grow to the longest queue seen (bounded by the
 * runtime's queue capacity), the rest is fixed by the plan (and by the plans
 * of the re-plans): nothing grows with the number of requests (bench_sim
 * measures it).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/err.h"
#include "core/hash.h"
#include "runtime/rt.h"
#include "sim/sim.h"
#include "sim/workload_impl.h"

#define VIEW_EXTRA 64          /* requests a decision sees past a batch (model.c's VIEW_EXTRA) */
#define NONE UINT32_MAX
#define NEVER UINT64_MAX
#define KEY_SLOTS 16           /* GPUs with at most this many replicas have their co-located
                                  latencies cached */
#define CACHE_MAX (1u << 18)   /* cache entries at most; cleared when this full */
#define PROGRESS_EVERY 65536   /* events between progress calls */
#define SERIES_MAX 50000000ull /* intervals x models */
#define SERVICE_STREAM 0x73657276696365ull /* the service-time factors' stream of the seed
                                              ("service"; the sources use small ids) */

enum { EV_END = 0, EV_WAKE = 1, EV_REPLAN = 2, EV_SWITCH = 3 };

/* a replica's part in the plans (re-planning; without it every replica is R_READY) */
enum { R_READY = 0, /* in the running plan, serving */
       R_PENDING,   /* in the new plan, starting: serves from its model's switch */
       R_STOPPING,  /* left out of the new plan: serves until its model's switch */
       R_RETIRED }; /* serves no more (a running batch still ends) */

typedef struct ev {
    uint64_t t, seq;
    uint32_t what; /* index << 1 | kind */
} ev;

typedef struct cls {
    uint32_t model;
    const char *gpu;
    double share_pct;
    int cap;
    char *key;         /* in the class map */
    uint64_t *lat;     /* alone ns by rows, [1..cap] (a group: by rows of each member) */
    if_replica *prof;  /* by rows, [1..cap] */
    /* what the runtime's batching and admission see (rt_model_cfg.latency_ns, max_batch):
     * the same table for a model; a group's by its requests' rows summed, rt_cap of them */
    uint64_t *rt_lat;
    int rt_cap;
} cls;

typedef struct rep {
    uint32_t model, gpu, cls, slot;
    uint32_t lidx;     /* its index among its model's replicas */
    int pbatch;        /* the plan's batch (a group's: rows of each member) */
    uint32_t state;    /* R_* */
    uint64_t ready_at; /* R_PENDING: when it is ready */
    int cap;
    double share;      /* fraction of the SMs */
    bool busy;
    int rows;          /* the running batch's profile rows (a group's: of each member) */
    int n_req;         /* its requests */
    uint64_t t0, busy_until;
    uint64_t freed;    /* when its last batch ended (the margin's rebase: rt_admit_lateness) */
    uint64_t *b_arr, *b_pred; /* the running batch's members, cap each */
    uint32_t *b_mem;   /* a group's replica: each one's workload model (NULL: its model) */
} rep;

typedef struct gpu {
    const pf_gpu *pg;
    if_device dev;
    uint32_t *slot; /* replica indices */
    uint32_t n;
    uint32_t comp;  /* composition id (the classes in slot order), for the cache */
    uint16_t rows[KEY_SLOTS];
    uint32_t n_busy;
    double share_busy, util_acc;
    uint64_t util_t, batches;
} gpu;

typedef struct model {
    const sim_model_spec *spec;
    /* merge groups: the model whose queue and replicas serve this one's requests (itself, or
     * its group's); a group's own (index >= n_models): its members (workload indices) and
     * their rows' layout in a run (rt_model_cfg.group), its queue's members, its runs */
    uint32_t unit;
    uint32_t memk;     /* a member: its place in its group */
    uint32_t *mem, n_mem;
    bool equal_rows, empty_rows;
    uint32_t *q_mem;
    uint64_t mixed, filler;
    uint64_t slo_ns;
    double rate;
    rt_admit adm;
    int max_batch;
    uint64_t lat1[2];  /* admission's own run: {0, the slowest replica's alone batch of 1} */
    double row_ns;     /* per-row time of the replicas together (unscaled) */
    size_t capacity;
    uint64_t *q_arr, *q_dl, *q_pred;
    size_t q_head, q_tail, q_alloc;
    uint32_t *reps, n_rep;
    uint64_t *busy_until; /* by lidx: the predicted end of its running batch; 0: idle */
    /* busy_left in O(log n), not a pass over every replica (6,000-GPU plans give a model
     * thousands): the busy replicas whose predicted end is still ahead ("active"), the
     * sum and count of their ends, and a min-heap of (end, lidx, gen) that finds the ones
     * whose end passes; an entry whose replica ended or started again (gen) is stale */
    struct bl_ent {
        uint64_t end;
        uint32_t lidx, gen;
    } *bl_heap;
    uint32_t bl_n, bl_alloc;
    uint32_t *bl_gen; /* by lidx: batches started */
    uint8_t *bl_act;  /* by lidx: counted in bl_sum */
    uint64_t bl_sum;  /* modulo 2^64, as the pass's sum was */
    uint32_t bl_cnt;
    uint32_t *idle, idle_head, idle_n;
    uint32_t running;
    uint64_t wake_at;
    uint64_t switch_at; /* re-planning: when its new replicas all are ready (NEVER: none) */
    uint64_t win_req;   /* re-planning: arrivals since the last re-plan */
    /* metrics */
    uint64_t requests, served, good, late, rejected, shed, probes, expired, batches, rows;
    double sum_lat, sum_queue;
    sim_hist hist;
} model;

typedef struct centry {
    uint64_t k[5];
    uint64_t lat;
} centry;

typedef struct eng {
    const sim_params *p;
    usher_error *err;
    model *m;
    uint32_t nm;          /* models: the workload's, then the plan's merge groups */
    uint32_t nw;          /* the workload's */
    sim_model_spec *gspec; /* the groups' (name, the longest member SLO) */
    rep *r;
    uint32_t nr;
    gpu *g;
    uint32_t ng;
    cls *c;
    uint32_t nc, c_cap;
    ev *heap;
    size_t hn, hcap;
    uint64_t seq, now, events;
    sim_source *src;
    bool arr_ok;
    sim_arrival arr;
    uint64_t arr_seq, last_arrival;
    centry *cache;
    size_t ccap, cn;
    uint64_t coloc_calls, coloc_hits;
    uint32_t *s_req, *s_good, n_int;
    double *s_busy;       /* [interval * ng + gpu]: share-weighted busy ns within the arrivals */
    uint64_t interval;
    int64_t *ones;
    /* kept for the run: model names, profile classes, GPU compositions (re-planning adds
     * to them) */
    us_map names, classes, comps;
    char **comp_keys;
    uint32_t n_comp, comp_cap;
    /* re-planning */
    uint32_t r_cap, g_cap;
    us_map gpu_ids;         /* "type|node|index" -> GPU + 1, made at the first re-plan */
    char **gpu_keys;        /* the map's keys, by GPU */
    double *rates;          /* the observed rates handed to the planner */
    uint64_t last_replan;
    sim_replan_report *rp;  /* every re-plan */
    uint64_t *rp_t, *rp_ready; /* their windows, ns */
    uint32_t n_rp, rp_cap;
    bool changed;           /* a re-plan changed the plan */
    double cost_now, power_now, cost_acc, power_acc; /* $/h and W of the GPUs held */
    uint64_t cost_t;
    uint32_t gpus_max;
    /* service-time variance: the factor's stream and lognormal parameters */
    ws_rng svc;
    double svc_mu, svc_sigma;
} eng;

sim_params sim_default_params(void)
{
    return (sim_params){.interference = true, .rate_scale = 1.0};
}

/* ---- the event heap ----------------------------------------------------------------- */
static bool ev_before(const ev *a, const ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static int push(eng *e, uint64_t t, uint32_t idx, int kind)
{
    if (e->hn == e->hcap) {
        size_t cap = e->hcap ? 2 * e->hcap : 256;
        ev *h = us_realloc(e->heap, cap * sizeof *h);
        if (!h)
            return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: event heap of %zu", cap);
        e->heap = h;
        e->hcap = cap;
    }
    ev x = {.t = t, .seq = e->seq++, .what = idx << 2 | (uint32_t)kind};
    size_t i = e->hn++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!ev_before(&x, &e->heap[up]))
            break;
        e->heap[i] = e->heap[up];
        i = up;
    }
    e->heap[i] = x;
    return USHER_OK;
}

static ev pop(eng *e)
{
    ev top = e->heap[0], x = e->heap[--e->hn];
    size_t n = e->hn, i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n)
            break;
        size_t s = l + 1 < n && ev_before(&e->heap[l + 1], &e->heap[l]) ? l + 1 : l;
        if (!ev_before(&e->heap[s], &x))
            break;
        e->heap[i] = e->heap[s];
        i = s;
    }
    if (n)
        e->heap[i] = x;
    return top;
}

/* ---- helpers -------------------------------------------------------------------------- */
static uint64_t ns_of_ms(double ms)
{
    double x = ms * 1e6 + 0.5;
    return x >= 1.8e19 ? NEVER : x < 1 ? 1 : (uint64_t)x;
}

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > NEVER - b ? NEVER : a + b; }

static uint32_t interval_of(const eng *e, uint64_t t)
{
    uint64_t i = t / e->interval;
    return i >= e->n_int ? e->n_int - 1 : (uint32_t)i;
}

static void idle_push(model *md, uint32_t ri)
{
    md->idle[(md->idle_head + md->idle_n++) % md->n_rep] = ri;
}

static uint32_t idle_pop(model *md)
{
    uint32_t ri = md->idle[md->idle_head];
    md->idle_head = (md->idle_head + 1) % md->n_rep;
    md->idle_n--;
    return ri;
}

static size_t q_len(const model *md) { return md->q_tail - md->q_head; }

/* a request of workload model w (a group's member; unused for a model alone) */
static int q_push(eng *e, model *md, uint64_t arr, uint64_t dl, uint64_t pred, uint32_t w)
{
    if (md->q_tail == md->q_alloc) {
        size_t len = q_len(md);
        if (md->q_head >= md->q_alloc / 2 && md->q_head > 0) {
            memmove(md->q_arr, md->q_arr + md->q_head, len * sizeof *md->q_arr);
            memmove(md->q_dl, md->q_dl + md->q_head, len * sizeof *md->q_dl);
            memmove(md->q_pred, md->q_pred + md->q_head, len * sizeof *md->q_pred);
            if (md->n_mem)
                memmove(md->q_mem, md->q_mem + md->q_head, len * sizeof *md->q_mem);
        } else {
            size_t cap = md->q_alloc ? 2 * md->q_alloc : 64;
            uint64_t *a = us_realloc(md->q_arr, cap * sizeof *a);
            if (a)
                md->q_arr = a;
            uint64_t *d = a ? us_realloc(md->q_dl, cap * sizeof *d) : NULL;
            if (d)
                md->q_dl = d;
            uint64_t *p = d ? us_realloc(md->q_pred, cap * sizeof *p) : NULL;
            if (!p)
                return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: queue of model '%s' (%zu)",
                                  md->spec->name, cap);
            md->q_pred = p;
            if (md->n_mem) {
                uint32_t *w2 = us_realloc(md->q_mem, cap * sizeof *w2);
                if (!w2)
                    return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: queue of merge "
                                      "group '%s' (%zu)", md->spec->name, cap);
                md->q_mem = w2;
            }
            md->q_alloc = cap;
            if (md->q_head) {
                memmove(md->q_arr, md->q_arr + md->q_head, len * sizeof *md->q_arr);
                memmove(md->q_dl, md->q_dl + md->q_head, len * sizeof *md->q_dl);
                memmove(md->q_pred, md->q_pred + md->q_head, len * sizeof *md->q_pred);
                if (md->n_mem)
                    memmove(md->q_mem, md->q_mem + md->q_head, len * sizeof *md->q_mem);
            }
        }
        md->q_head = 0;
        md->q_tail = len;
    }
    md->q_arr[md->q_tail] = arr;
    md->q_dl[md->q_tail] = dl;
    md->q_pred[md->q_tail] = pred;
    if (md->n_mem)
        md->q_mem[md->q_tail] = w;
    md->q_tail++;
    return USHER_OK;
}

/* the busy-left heap (model.bl_*): entries by end, then lidx */
static bool bl_below(const struct bl_ent *a, const struct bl_ent *b)
{
    return a->end < b->end || (a->end == b->end && a->lidx < b->lidx);
}

static int bl_push(model *md, uint64_t end, uint32_t lidx)
{
    if (md->bl_n == md->bl_alloc) {
        uint32_t na = md->bl_alloc ? 2 * md->bl_alloc : 16;
        struct bl_ent *h = us_realloc(md->bl_heap, (size_t)na * sizeof *h);
        if (!h)
            return USHER_ERR_NOMEM;
        md->bl_heap = h;
        md->bl_alloc = na;
    }
    struct bl_ent v = {.end = end, .lidx = lidx, .gen = md->bl_gen[lidx]};
    uint32_t i = md->bl_n++;
    while (i > 0 && bl_below(&v, &md->bl_heap[(i - 1) / 2])) {
        md->bl_heap[i] = md->bl_heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    md->bl_heap[i] = v;
    return USHER_OK;
}

static void bl_pop(model *md)
{
    struct bl_ent v = md->bl_heap[--md->bl_n];
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= md->bl_n)
            break;
        if (c + 1 < md->bl_n && bl_below(&md->bl_heap[c + 1], &md->bl_heap[c]))
            c++;
        if (!bl_below(&md->bl_heap[c], &v))
            break;
        md->bl_heap[i] = md->bl_heap[c];
        i = c;
    }
    if (md->bl_n)
        md->bl_heap[i] = v;
}

/* a batch of replica lidx starts, predicted to end at end (busy_until set) */
static int bl_start(model *md, uint32_t lidx, uint64_t end, uint64_t now)
{
    md->bl_gen[lidx]++;
    md->bl_act[lidx] = end > now;
    if (end <= now)
        return USHER_OK;
    md->bl_sum += end;
    md->bl_cnt++;
    return bl_push(md, end, lidx);
}

/* replica lidx's batch ends (before busy_until is cleared) */
static void bl_end(model *md, uint32_t lidx)
{
    if (md->bl_act[lidx]) {
        md->bl_sum -= md->busy_until[lidx];
        md->bl_cnt--;
        md->bl_act[lidx] = 0;
    }
}

/* (re)builds the active set from busy_until (engine set-up, re-planning) */
static int bl_rebuild(model *md, uint64_t now)
{
    us_free(md->bl_gen);
    us_free(md->bl_act);
    md->bl_gen = us_calloc(md->n_rep ? md->n_rep : 1, sizeof *md->bl_gen);
    md->bl_act = us_calloc(md->n_rep ? md->n_rep : 1, sizeof *md->bl_act);
    if (!md->bl_gen || !md->bl_act)
        return USHER_ERR_NOMEM;
    md->bl_n = 0;
    md->bl_sum = 0;
    md->bl_cnt = 0;
    for (uint32_t k = 0; k < md->n_rep; k++) {
        uint64_t b = md->busy_until[k];
        if (b > now) {
            md->bl_act[k] = 1;
            md->bl_sum += b;
            md->bl_cnt++;
            if (bl_push(md, b, k) < 0)
                return USHER_ERR_NOMEM;
        }
    }
    return USHER_OK;
}

/* what the model's busy replicas still have to run, as predicted at dispatch: the sum
 * over them of max(0, end - now), in integers (exact, as the runtime's sum of doubles is
 * for times below 2^53 ns; the same bits as a pass over busy_until, modulo 2^64 too) */
static double busy_left(const eng *e, model *md)
{
    if (!md->running)
        return 0;
    uint64_t now = e->now;
    while (md->bl_n && md->bl_heap[0].end <= now) {
        struct bl_ent t = md->bl_heap[0];
        bl_pop(md);
        if (md->bl_act[t.lidx] && md->bl_gen[t.lidx] == t.gen) {
            md->bl_sum -= t.end;
            md->bl_cnt--;
            md->bl_act[t.lidx] = 0;
        }
    }
    return (double)(md->bl_sum - (uint64_t)md->bl_cnt * now);
}

/* ---- co-located latency --------------------------------------------------------------- */
static uint64_t key_hash(const uint64_t *k)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 5; i++) {
        h ^= k[i];
        h *= 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    return h;
}

static int cache_grow(eng *e)
{
    size_t cap = e->ccap ? 2 * e->ccap : 4096;
    if (cap > CACHE_MAX) { /* full: start again (deterministic, like everything else) */
        memset(e->cache, 0, e->ccap * sizeof *e->cache);
        e->cn = 0;
        return USHER_OK;
    }
    centry *c = us_calloc(cap, sizeof *c);
    if (!c)
        return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: latency cache of %zu", cap);
    for (size_t i = 0; i < e->ccap; i++) {
        if (!e->cache[i].k[0])
            continue;
        size_t j = key_hash(e->cache[i].k) & (cap - 1);
        while (c[j].k[0])
            j = (j + 1) & (cap - 1);
        c[j] = e->cache[i];
    }
    us_free(e->cache);
    e->cache = c;
    e->ccap = cap;
    return USHER_OK;
}

/* the batch of k rows replica r starts now beside the running replicas of its GPU: ns */
static int coloc(eng *e, gpu *g, const rep *r, int k, uint64_t *out)
{
    uint64_t key[5] = {0};
    bool cached = g->n <= KEY_SLOTS;
    centry *slot = NULL;
    if (cached) {
        key[0] = ((uint64_t)g->comp << 5 | r->slot) + 1;
        for (uint32_t s = 0; s < g->n; s++) {
            uint64_t rows = s == r->slot ? (uint64_t)k : g->rows[s];
            key[1 + s / 4] |= rows << (16 * (s % 4));
        }
        if (e->cn * 10 >= e->ccap * 7) {
            int rc = cache_grow(e);
            if (rc < 0)
                return rc;
        }
        size_t j = key_hash(key) & (e->ccap - 1);
        for (; e->cache[j].k[0]; j = (j + 1) & (e->ccap - 1))
            if (memcmp(e->cache[j].k, key, sizeof key) == 0) {
                e->coloc_hits++;
                *out = e->cache[j].lat;
                return USHER_OK;
            }
        slot = &e->cache[j];
    }
    if_replica in[IF_MAX_REPLICAS];
    if_result res[IF_MAX_REPLICAS];
    uint32_t n = 0;
    in[n++] = e->c[r->cls].prof[k];
    for (uint32_t s = 0; s < g->n && n < IF_MAX_REPLICAS; s++) {
        const rep *o = &e->r[g->slot[s]];
        if (s != r->slot && o->busy)
            in[n++] = e->c[o->cls].prof[o->rows];
    }
    int rc = if_predict(if_model_default(), &g->dev, in, n, res, e->err);
    if (rc < 0)
        return rc;
    e->coloc_calls++;
    *out = ns_of_ms(res[0].latency_ms);
    if (slot) {
        memcpy(slot->k, key, sizeof key);
        slot->lat = *out;
        e->cn++;
    }
    return USHER_OK;
}

/* ---- batches ------------------------------------------------------------------------- */
/* GPU gi's busy share f over [a, b), split at the series' interval edges; time past the
 * arrivals' end is left out of the series (it is in the run's total) */
static void series_busy(eng *e, uint32_t gi, uint64_t a, uint64_t b, double f)
{
    if (b > e->p->duration_ns)
        b = e->p->duration_ns;
    while (a < b) {
        uint64_t i = a / e->interval, edge = (i + 1) * e->interval;
        uint64_t to = edge < b ? edge : b;
        e->s_busy[i * e->ng + gi] += f * (double)(to - a);
        a = to;
    }
}

static void gpu_account(eng *e, gpu *g, uint64_t now)
{
    double f = g->share_busy < 1 ? g->share_busy : 1;
    g->util_acc += f * (double)(now - g->util_t);
    if (e->s_busy && f > 0)
        series_busy(e, (uint32_t)(g - e->g), g->util_t, now, f);
    g->util_t = now;
}

/* A group's batch of k requests (r->b_mem): the rows each member gets in the merged run (the
 * runtime's rt_group_rows, fillers included), counted in each member's and the group's
 * figures; returns the profile rows of the run: ceil(rows given / members), within the
 * class's profiles. */
static int group_batch(eng *e, model *md, const rep *r, int k, int cap)
{
    int64_t own[RT_MAX_MEMBERS] = {0}, want[RT_MAX_MEMBERS];
    for (int j = 0; j < k; j++)
        own[e->m[r->b_mem[j]].memk]++;
    int64_t filler = rt_group_rows(own, (int)md->n_mem, true, md->equal_rows, md->empty_rows,
                                   want);
    int64_t given = 0;
    uint32_t present = 0;
    for (uint32_t m = 0; m < md->n_mem; m++) {
        given += want[m];
        if (own[m]) {
            present++;
            e->m[md->mem[m]].batches++;
            e->m[md->mem[m]].rows += (uint64_t)own[m];
        }
    }
    md->mixed += present > 1;
    md->filler += (uint64_t)filler;
    int64_t per = (given + md->n_mem - 1) / md->n_mem;
    return per < 1 ? 1 : per > cap ? cap : (int)per;
}

/* r's batch of k requests (its members in b_arr, b_pred) starts now */
static int start_batch(eng *e, uint32_t ri, int k)
{
    rep *r = &e->r[ri];
    model *md = &e->m[r->model];
    const cls *c = &e->c[r->cls];
    gpu *g = &e->g[r->gpu];
    int rows = md->n_mem ? group_batch(e, md, r, k, c->cap) : k;
    uint64_t dur = c->lat[rows];
    if (e->p->interference && g->n_busy > 0) {
        int rc = coloc(e, g, r, rows, &dur);
        if (rc < 0)
            return rc;
    }
    if (e->svc_sigma > 0) { /* lognormal, mean 1: exp(mu + sigma Z), mu = -sigma^2 / 2 */
        double x = (double)dur * ws_exp(e->svc_mu + e->svc_sigma * ws_rng_normal(&e->svc));
        dur = x >= 1.8e19 ? NEVER : x < 1 ? 1 : (uint64_t)(x + 0.5);
    }
    r->busy = true;
    r->rows = rows;
    r->n_req = k;
    r->t0 = e->now;
    r->busy_until = sat_add(e->now, rt_batch_latency_scaled(c->rt_lat, c->rt_cap, k,
                                                            md->adm.scale, 1));
    md->busy_until[r->lidx] = r->busy_until;
    if (bl_start(md, r->lidx, r->busy_until, e->now) < 0)
        return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: out of memory");
    gpu_account(e, g, e->now);
    g->n_busy++;
    g->share_busy += r->share;
    if (r->slot < KEY_SLOTS)
        g->rows[r->slot] = (uint16_t)rows;
    g->batches++;
    md->running++;
    md->batches++;
    md->rows += (uint64_t)k;
    return push(e, sat_add(e->now, dur), ri, EV_END);
}

/* ---- re-planning windows --------------------------------------------------------------
 * A re-plan's window is [asked, the last model switched): the requests that arrive in it
 * are counted against it, and those lost (refused, expired) or late. Windows are in time
 * order; they may overlap when re-plans come faster than the moves end (the latest that
 * holds the arrival takes it). */
static uint32_t window_of(const eng *e, uint64_t a)
{
    uint32_t lo = 0, hi = e->n_rp; /* the first window that starts after a */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (e->rp_t[mid] <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (uint32_t k = lo, tries = 0; k-- > 0 && tries < 8; tries++)
        if (a < e->rp_ready[k])
            return k;
    return NONE;
}

enum { W_REQUEST, W_LOST, W_LATE };

static void window_note(eng *e, uint64_t arrival, int what)
{
    if (!e->n_rp)
        return;
    uint32_t k = window_of(e, arrival);
    if (k == NONE)
        return;
    if (what == W_REQUEST)
        e->rp[k].requests++;
    else if (what == W_LOST)
        e->rp[k].lost++;
    else
        e->rp[k].late++;
}

static int schedule_wake(eng *e, uint32_t mi, uint64_t t)
{
    model *md = &e->m[mi];
    if (t == NEVER || (md->wake_at != NEVER && md->wake_at <= t))
        return USHER_OK; /* one at or before t is pending: it decides again then */
    md->wake_at = t;
    return push(e, t, mi, EV_WAKE);
}

/*
 * The model's idle replicas decide on its queue, `first` (a replica that
 * just finished, not in the idle ring) before the others, as the live
 * replica thread that finished a batch decides before the sleeping ones
 * wake. Each takes a batch, expires hopeless heads, or (the first that
 * chooses to) waits: a wake-up is scheduled and the others are not asked
 * (replicas of one class would decide the same).
 */
static int dispatch(eng *e, uint32_t mi, uint32_t first)
{
    model *md = &e->m[mi];
    for (;;) {
        size_t n = q_len(md);
        if (n == 0 || (first == NONE && md->idle_n == 0))
            break;
        uint32_t ri = first != NONE ? first : md->idle[md->idle_head];
        rep *r = &e->r[ri];
        const cls *c = &e->c[r->cls];
        rt_admit_refresh(&md->adm, e->now);
        size_t cap = (size_t)r->cap + VIEW_EXTRA;
        size_t vn = n < cap ? n : cap;
        rt_batch_view v = {
            .now_ns = e->now,
            .max_batch = r->cap,
            .latency_ns = c->rt_lat,
            .rows = e->ones,
            .deadline_ns = md->q_dl + md->q_head,
            .arrival_ns = md->q_arr + md->q_head,
            .cost = NULL,
            .n = vn,
            .blocked = vn < n,
            .slack_ns = e->p->slack_ns,
            .latency_scale = md->adm.scale,
            .max_queue_delay_ns = 0,
            .arrival_rate = rt_admit_rate(&md->adm, e->now),
            .replicas = (int)md->n_rep,
        };
        rt_batch_decision d;
        rt_batch_decide(&v, &d);
        if (d.expire) {
            for (size_t j = 0; e->n_rp && j < d.expire; j++)
                window_note(e, md->q_arr[md->q_head + j], W_LOST);
            if (md->n_mem)
                for (size_t j = 0; j < d.expire; j++)
                    e->m[md->q_mem[md->q_head + j]].expired++;
            else
                md->expired += d.expire;
            md->q_head += d.expire;
            continue;
        }
        if (d.take) {
            if (first != NONE)
                first = NONE;
            else
                idle_pop(md);
            for (size_t j = 0; j < d.take; j++) {
                r->b_arr[j] = md->q_arr[md->q_head + j];
                r->b_pred[j] = md->q_pred[md->q_head + j];
            }
            if (md->n_mem)
                memcpy(r->b_mem, md->q_mem + md->q_head, d.take * sizeof *r->b_mem);
            md->q_head += d.take;
            int rc = start_batch(e, ri, (int)d.take);
            if (rc < 0)
                return rc;
            continue;
        }
        int rc = schedule_wake(e, mi, d.wake_ns);
        if (rc < 0)
            return rc;
        break;
    }
    if (q_len(md) == 0)
        md->q_head = md->q_tail = 0;
    if (first != NONE)
        idle_push(md, first);
    return USHER_OK;
}

/* a request of workload model mi: counted there, served by its model (mi, or its group) */
static int on_arrival(eng *e, uint32_t mi)
{
    model *wm = &e->m[mi], *md = &e->m[wm->unit];
    const uint64_t now = e->now;
    wm->requests++;
    if (e->n_int)
        e->s_req[(size_t)interval_of(e, now) * e->nw + mi]++;
    wm->win_req++;
    window_note(e, now, W_REQUEST);
    if (md->n_rep == 0 || q_len(md) >= md->capacity) {
        wm->rejected++;
        window_note(e, now, W_LOST);
        return USHER_OK;
    }
    rt_admit_refresh(&md->adm, now);
    double sc = md->adm.scale;
    uint64_t ahead = rt_admit_work_ahead((double)q_len(md), md->row_ns * sc, busy_left(e, md),
                                         (int)md->n_rep);
    uint64_t own = rt_batch_latency_scaled(md->lat1, 1, 1, sc, 1.0);
    uint64_t dl = sat_add(now, wm->slo_ns); /* its own model's deadline */
    rt_admit_query q = {.now = now, .deadline_ns = dl, .ahead = ahead, .own = own,
                        .slack_ns = e->p->slack_ns,
                        .idle = q_len(md) == 0 && md->running == 0 && md->idle_n > 0,
                        .model_slo = true};
    rt_admit_verdict v = rt_admit_decide(&md->adm, &q);
    if (v == RT_ADMIT_NO || v == RT_ADMIT_SHED) {
        wm->rejected++;
        window_note(e, now, W_LOST);
        wm->shed += v == RT_ADMIT_SHED;
        return USHER_OK;
    }
    rt_admit_note_arrival(&md->adm, now, 1);
    uint64_t pred = sat_add(now, sat_add(ahead, own));
    if (v == RT_ADMIT_PROBE) { /* runs at once on the idle replica, whatever its prediction */
        wm->probes++;
        uint32_t ri = idle_pop(md);
        e->r[ri].b_arr[0] = now;
        e->r[ri].b_pred[0] = pred;
        if (e->r[ri].b_mem)
            e->r[ri].b_mem[0] = mi;
        return start_batch(e, ri, 1);
    }
    int rc = q_push(e, md, now, dl, pred, mi);
    if (rc < 0)
        return rc;
    return dispatch(e, wm->unit, NONE);
}

static int on_end(eng *e, uint32_t ri)
{
    rep *r = &e->r[ri];
    model *md = &e->m[r->model];
    const cls *c = &e->c[r->cls];
    gpu *g = &e->g[r->gpu];
    const uint64_t t1 = e->now, t0 = r->t0;
    const int k = r->n_req;
    double late = -1e300;
    const uint64_t run_pred = r->busy_until - t0; /* with r->freed, the margin's rebase */
    for (int j = 0; j < k; j++) {
        uint64_t a = r->b_arr[j], lat = t1 - a;
        uint32_t wi = r->b_mem ? r->b_mem[j] : r->model; /* whose request: a member's */
        model *wm = &e->m[wi];
        if (sim_hist_add(&wm->hist, lat) < 0)
            return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: latency histogram");
        wm->sum_lat += (double)lat;
        wm->sum_queue += (double)(t0 - a);
        wm->served++;
        if (lat <= wm->slo_ns) {
            wm->good++;
            if (e->n_int)
                e->s_good[(size_t)interval_of(e, a) * e->nw + wi]++;
        } else {
            wm->late++;
            window_note(e, a, W_LATE);
        }
        double lj = r->b_pred[j] ? rt_admit_lateness(t1, r->b_pred[j], r->freed, run_pred)
                                 : -1e300;
        late = lj > late ? lj : late;
    }
    r->freed = t1;
    /* The runtime (model.c end_batch) notes the run, then the lateness, and the next
     * refresh folds the lateness in. Here the next refresh would come at t1 (the replica
     * decides at once) or, with nothing queued, before no sample has left the window
     * (refresh's recheck time): so noting the lateness first and the run second, whose
     * refresh folds both in at t1, leaves the same scale and margin, with one pass over
     * the samples instead of two. */
    if (late > -1e300)
        rt_admit_note_late(&md->adm, late, t1);
    /* a model's replicas here run on GPUs (or shares) of their own: another run of the model
     * does not slow this one (interference between models is coloc's), so every run is in
     * the scale's alone class, and scale_alone == scale */
    rt_admit_note_run(&md->adm, (double)(t1 - t0) / (double)c->rt_lat[k], false, t1);
    gpu_account(e, g, t1);
    g->n_busy--;
    g->share_busy = g->n_busy ? g->share_busy - r->share : 0;
    if (r->slot < KEY_SLOTS)
        g->rows[r->slot] = 0;
    r->busy = false;
    r->rows = 0;
    r->n_req = 0;
    if (r->state == R_RETIRED)
        return USHER_OK; /* a stopped replica's last batch: it takes no more */
    bl_end(md, r->lidx);
    md->busy_until[r->lidx] = 0;
    md->running--;
    return dispatch(e, r->model, ri);
}

/* ---- setup ---------------------------------------------------------------------------- */
static int find_model(const us_map *names, const char *name, uint32_t *out)
{
    void *v = us_map_get(names, name);
    if (!v)
        return -1;
    *out = (uint32_t)((uintptr_t)v - 1);
    return 0;
}

/* The plan's merge groups as models past the workload's (e->nw + k; e->m has room for
 * them): each member in the workload and in no other group, its requests to the group. */
static int groups_setup(eng *e, const pf_plan *pl, const char *pn)
{
    const char *wn = e->p->workload_label ? e->p->workload_label : "workload.yaml";
    if (pl->n_groups && !e->p->group_profile)
        return us_err_set(e->err, USHER_ERR_INVALID, "%s: field 'merge_groups': merge group "
                          "'%s': no profile of merged graphs was given (a measured profile "
                          "table has none)", pn,
                          pl->groups[0].name);
    for (uint32_t k = 0; k < pl->n_groups; k++) {
        const pf_group *g = &pl->groups[k];
        uint32_t gi = e->nw + k, wi = 0;
        model *md = &e->m[gi];
        if (g->n_members < 2 || g->n_members > RT_MAX_MEMBERS)
            return us_err_set(e->err, USHER_ERR_INVALID, "%s: field 'merge_groups[%u].members': "
                              "merge group '%s' has %u members (2 to %d)", pn, k, g->name,
                              g->n_members, RT_MAX_MEMBERS);
        md->spec = &e->gspec[k];
        e->gspec[k].name = g->name;
        md->mem = us_calloc(g->n_members, sizeof *md->mem);
        if (!md->mem)
            return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: merge groups");
        for (uint32_t j = 0; j < g->n_members; j++) {
            if (find_model(&e->names, g->members[j], &wi) < 0 || wi >= e->nw)
                return us_err_set(e->err, USHER_ERR_INVALID,
                                  "%s: field 'merge_groups[%u].members[%u]': merge group '%s' "
                                  "names model '%s', which is not in %s", pn, k, j, g->name,
                                  g->members[j], wn);
            if (e->m[wi].unit != wi)
                return us_err_set(e->err, USHER_ERR_INVALID,
                                  "%s: field 'merge_groups[%u].members[%u]': model '%s' is in "
                                  "merge groups '%s' and '%s'", pn, k, j, g->members[j],
                                  e->m[e->m[wi].unit].spec->name, g->name);
            e->m[wi].unit = gi;
            e->m[wi].memk = j;
            md->mem[md->n_mem++] = wi;
            /* the group's queue bound and default timeout: the longest member SLO (the
             * server's; each request carries its own model's deadline) */
            if (e->m[wi].spec->slo_ms > e->gspec[k].slo_ms)
                e->gspec[k].slo_ms = e->m[wi].spec->slo_ms;
        }
        md->slo_ns = ns_of_ms(e->gspec[k].slo_ms);
        md->unit = gi;
        md->wake_at = NEVER;
        md->switch_at = NEVER;
        md->equal_rows = strcmp(g->kind, "stacked") == 0; /* as server/group.c forms it */
        md->empty_rows = strcmp(g->kind, "shared") == 0;
        rt_admit_init(&md->adm);
        void *prev = NULL;
        int put = us_map_put(&e->names, g->name, (void *)(uintptr_t)(gi + 1), &prev);
        if (put < 0)
            return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: merge groups");
        if (put == 0)
            return us_err_set(e->err, USHER_ERR_INVALID, "%s: field 'merge_groups[%u].name': "
                              "merge group '%s' has the name of a model of %s", pn, k, g->name,
                              wn);
    }
    return USHER_OK;
}

/* a re-plan's merge groups are the running ones (the simulator keeps the groups it started
 * with: re-planning keeps a running plan's groups, docs/merge.md) */
static int groups_same(eng *e, const pf_plan *pl, const char *pn)
{
    bool same = pl->n_groups == e->nm - e->nw;
    for (uint32_t k = 0; same && k < pl->n_groups; k++) {
        const model *md = &e->m[e->nw + k];
        const pf_group *g = &pl->groups[k];
        same = strcmp(g->name, md->spec->name) == 0 && g->n_members == md->n_mem &&
               md->equal_rows == (strcmp(g->kind, "stacked") == 0) &&
               md->empty_rows == (strcmp(g->kind, "shared") == 0);
        for (uint32_t j = 0; same && j < g->n_members; j++)
            same = strcmp(g->members[j], e->m[md->mem[j]].spec->name) == 0;
    }
    if (same)
        return USHER_OK;
    return us_err_set(e->err, USHER_ERR_INVALID, "%s: field 'merge_groups': the plan's merge "
                      "groups (%u) are not the running plan's (%u): the simulator runs the "
                      "groups it started with (docs/simulator.md, Merge groups)", pn,
                      pl->n_groups, e->nm - e->nw);
}

/* the plan (pn: its name) and the workload name the same models */
static int match(eng *e, const us_map *names, const pf_plan *pl, const char *pn)
{
    const sim_params *p = e->p;
    const char *wn = p->workload_label ? p->workload_label : "workload.yaml";
    uint32_t mi;
    us_map planned;
    us_map_init(&planned);
    int rc = USHER_OK;
    if ((e->nm > e->nw || pl->n_groups) && (rc = groups_same(e, pl, pn)) < 0)
        goto out;
    for (uint32_t i = 0; i < pl->n_models; i++) {
        if (find_model(names, pl->m[i].name, &mi) < 0) {
            rc = us_err_set(e->err, USHER_ERR_INVALID,
                            "%s: field 'models[%u].name': model '%s' is not in %s", pn, i,
                            pl->m[i].name, wn);
            goto out;
        }
        if (us_map_put(&planned, pl->m[i].name, (void *)1, NULL) < 0) {
            rc = us_err_set(e->err, USHER_ERR_NOMEM, "simulator: model names");
            goto out;
        }
    }
    for (uint32_t gi = 0; gi < pl->n_gpus; gi++)
        for (uint32_t j = 0; j < pl->g[gi].n; j++) {
            const pf_replica *x = &pl->g[gi].r[j];
            if (find_model(names, x->model, &mi) < 0) {
                rc = us_err_set(e->err, USHER_ERR_INVALID,
                                "%s:%zu: field 'gpus[%u].replicas[%u].model': model '%s' is not "
                                "in %s", pn, x->line, gi, j, x->model, wn);
                goto out;
            }
            /* a group's member placed alone too: refused by the plan's reader (pf_parse) */
            for (uint32_t k = 0; pl->n_models == 0 && k < (mi < e->nw ? 1 : e->m[mi].n_mem);
                 k++) {
                const char *name = mi < e->nw ? x->model : e->m[e->m[mi].mem[k]].spec->name;
                if (us_map_put(&planned, name, (void *)1, NULL) < 0) {
                    rc = us_err_set(e->err, USHER_ERR_NOMEM, "simulator: model names");
                    goto out;
                }
            }
        }
    for (uint32_t i = 0; i < p->n_models; i++)
        if (!us_map_get(&planned, p->models[i].name)) {
            rc = us_err_set(e->err, USHER_ERR_INVALID,
                            "%s:%zu: field 'models[%u].name': model '%s' is not in %s (%s)", wn,
                            p->models[i].line, i, p->models[i].name, pn,
                            pl->n_models ? "its models list" : "no replica serves it");
            goto out;
        }
out:
    us_map_free(&planned);
    return rc;
}

/* the class of a replica (model, GPU type, share, batch cap): found or made */
static int class_of(eng *e, us_map *classes, uint32_t mi, const pf_gpu *pg, const pf_replica *x,
                    uint32_t *out)
{
    char key[256];
    snprintf(key, sizeof key, "%u|%s|%.17g|%d", mi, pg->type, x->share, x->batch);
    void *v = us_map_get(classes, key);
    if (v) {
        *out = (uint32_t)((uintptr_t)v - 1);
        return USHER_OK;
    }
    if (e->nc == e->c_cap) {
        uint32_t cap = e->c_cap ? 2 * e->c_cap : 16;
        cls *c = us_realloc(e->c, cap * sizeof *c);
        if (!c)
            return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: profile classes");
        e->c = c;
        e->c_cap = cap;
    }
    cls *c = &e->c[e->nc];
    memset(c, 0, sizeof *c);
    c->model = mi;
    c->gpu = pg->type;
    c->share_pct = x->share;
    c->cap = c->rt_cap = x->batch;
    const model *md = &e->m[mi];
    if (md->n_mem) { /* a group: batches of the members' batches summed (the server's
                        max_batch), runs of up to the rows of each member they can give */
        int n = (int)md->n_mem;
        c->rt_cap = x->batch > RT_MAX_BATCH / n ? RT_MAX_BATCH : n * x->batch;
        c->cap = md->equal_rows ? c->rt_cap
                                : (c->rt_cap + (md->empty_rows ? 0 : n - 1) + n - 1) / n;
    }
    c->key = us_strdup(key);
    c->lat = us_calloc((size_t)c->cap + 1, sizeof *c->lat);
    c->prof = us_calloc((size_t)c->cap + 1, sizeof *c->prof);
    c->rt_lat = md->n_mem ? us_calloc((size_t)c->rt_cap + 1, sizeof *c->rt_lat) : c->lat;
    e->nc++; /* freed with the engine from here on */
    if (!c->key || !c->lat || !c->prof || !c->rt_lat ||
        us_map_put(classes, c->key, (void *)(uintptr_t)e->nc, NULL) < 0)
        return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: profile classes");
    *out = e->nc - 1;
    return USHER_OK;
}

/* every batch size of a class from the profile callback, checked as the interference model
 * will read it (x: the first replica of the class, for messages) */
static int class_fill(eng *e, cls *c, const gpu *g, uint32_t gi, uint32_t j, const pf_replica *x,
                      const char *pn)
{
    const sim_params *p = e->p;
    const model *md = &e->m[c->model];
    for (int b = 1; b <= c->cap; b++) {
        if_replica *pr = &c->prof[b];
        usher_error pe = {0};
        uint32_t k = c->model - e->nw;
        int rc = md->n_mem ? p->group_profile(p->ctx, &e->p->plan->groups[k], k, md->mem, c->gpu,
                                              b, c->share_pct, pr, &pe)
                           : p->profile(p->ctx, c->model, c->gpu, b, c->share_pct, pr, &pe);
        if (rc >= 0 && !(isfinite(pr->latency_ms) && pr->latency_ms > 0))
            rc = us_err_set(&pe, USHER_ERR_INVALID, "profile of batch %d has no latency", b);
        pr->batch = b;
        pr->share = c->share_pct / 100;
        if_result res;
        if (rc >= 0 && p->interference)
            rc = if_predict(if_model_default(), &g->dev, pr, 1, &res, &pe);
        if (rc < 0)
            return us_err_set(e->err, rc, "%s:%zu: field 'gpus[%u].replicas[%u]' (model '%s' on "
                              "%s, share %g%%, batch %d): %s", pn, x->line, gi, j, x->model,
                              c->gpu, c->share_pct, b, pe.msg);
        c->lat[b] = ns_of_ms(pr->latency_ms);
    }
    /* a group's table by its requests' rows r: the run of ceil(r / members) rows each, as
     * the server lays out a group's profile (server/group.c) */
    for (int r = 1; md->n_mem && r <= c->rt_cap; r++) {
        int per = (r + (int)md->n_mem - 1) / (int)md->n_mem;
        c->rt_lat[r] = c->lat[per < c->cap ? per : c->cap];
    }
    return USHER_OK;
}

/* admission's tables of a model over its serving replicas (md->reps) */
static void model_tables(eng *e, model *md)
{
    double rows_per_ns = 0;
    uint64_t lat_full = 0;
    md->lat1[1] = 0;
    md->max_batch = 0;
    for (uint32_t k = 0; k < md->n_rep; k++) {
        const rep *r = &e->r[md->reps[k]];
        const cls *c = &e->c[r->cls];
        if (c->rt_lat[1] > md->lat1[1])
            md->lat1[1] = c->rt_lat[1];
        rows_per_ns += (double)r->cap / (double)c->rt_lat[r->cap];
        if (r->cap > md->max_batch) {
            md->max_batch = r->cap;
            lat_full = 0;
        }
        if (r->cap == md->max_batch && c->rt_lat[r->cap] > lat_full)
            lat_full = c->rt_lat[r->cap];
    }
    md->row_ns = md->n_rep ? (double)md->n_rep / rows_per_ns : 0;
    md->capacity = rt_admit_capacity(md->max_batch ? md->max_batch : 1, lat_full, md->slo_ns,
                                     md->n_rep ? (int)md->n_rep : 1);
}

/* a replica's batch: the plan's (x), the runtime's cap (its class's), its running batch's
 * arrays; USHER_ERR_NOMEM */
static int rep_batch(eng *e, rep *r, const pf_replica *x)
{
    r->pbatch = x->batch;
    r->cap = e->c[r->cls].rt_cap;
    r->share = x->share / 100;
    r->b_arr = us_calloc((size_t)r->cap, sizeof *r->b_arr);
    r->b_pred = us_calloc((size_t)r->cap, sizeof *r->b_pred);
    if (e->m[r->model].n_mem)
        r->b_mem = us_calloc((size_t)r->cap, sizeof *r->b_mem);
    return r->b_arr && r->b_pred && (r->b_mem || !e->m[r->model].n_mem) ? USHER_OK
                                                                         : USHER_ERR_NOMEM;
}

static int setup(eng *e)
{
    const sim_params *p = e->p;
    const pf_plan *pl = p->plan;
    const char *pn = p->plan_label ? p->plan_label : "plan.json";
    us_map *names = &e->names, *classes = &e->classes, *comps = &e->comps;
    int rc = USHER_OK;
    if (p->n_models == 0 || p->n_models > SIM_MAX_MODELS) {
        rc = us_err_set(e->err, USHER_ERR_INVALID, "simulator: %u models (1 to %d)", p->n_models,
                        SIM_MAX_MODELS);
        goto out;
    }
    if (pl->n_groups > SIM_MAX_MODELS) {
        rc = us_err_set(e->err, USHER_ERR_LIMIT, "%s: %u merge groups", pn, pl->n_groups);
        goto out;
    }
    e->nw = p->n_models;
    e->nm = p->n_models + pl->n_groups;
    e->m = us_calloc(e->nm, sizeof *e->m);
    e->gspec = us_calloc(pl->n_groups ? pl->n_groups : 1, sizeof *e->gspec);
    if (!e->m || !e->gspec)
        goto nomem;
    for (uint32_t i = 0; i < e->nw; i++) {
        const sim_model_spec *s = &p->models[i];
        void *prev = NULL;
        int put = us_map_put(names, s->name, (void *)(uintptr_t)(i + 1), &prev);
        if (put < 0)
            goto nomem;
        if (put == 0) {
            rc = us_err_set(e->err, USHER_ERR_INVALID, "%s:%zu: model '%s' is named twice",
                            p->workload_label ? p->workload_label : "workload", s->line, s->name);
            goto out;
        }
        if (!(s->slo_ms > 0) || !isfinite(s->slo_ms) || !(s->rate >= 0)) {
            rc = us_err_set(e->err, USHER_ERR_INVALID, "simulator: model '%s': SLO %g ms, rate %g",
                            s->name, s->slo_ms, s->rate);
            goto out;
        }
        model *md = &e->m[i];
        md->spec = s;
        md->unit = i;
        md->slo_ns = ns_of_ms(s->slo_ms);
        md->rate = s->rate * p->rate_scale;
        md->wake_at = NEVER;
        md->switch_at = NEVER;
        rt_admit_init(&md->adm);
    }
    if ((rc = groups_setup(e, pl, pn)) < 0 || (rc = match(e, names, pl, pn)) < 0)
        goto out;

    /* GPUs, replicas, classes */
    e->ng = pl->n_gpus;
    e->g = us_calloc(e->ng ? e->ng : 1, sizeof *e->g);
    uint32_t nr = 0;
    for (uint32_t gi = 0; gi < pl->n_gpus; gi++)
        nr += pl->g[gi].n;
    e->nr = nr;
    e->r = us_calloc(nr ? nr : 1, sizeof *e->r);
    e->g_cap = e->ng;
    e->r_cap = nr;
    e->comp_keys = us_calloc(e->ng ? e->ng : 1, sizeof *e->comp_keys);
    e->comp_cap = e->ng ? e->ng : 1;
    if (!e->g || !e->r || !e->comp_keys)
        goto nomem;
    uint32_t ri = 0;
    for (uint32_t gi = 0; gi < pl->n_gpus; gi++) {
        const pf_gpu *pg = &pl->g[gi];
        gpu *g = &e->g[gi];
        g->pg = pg;
        g->n = pg->n;
        g->slot = us_calloc(pg->n ? pg->n : 1, sizeof *g->slot);
        if (!g->slot)
            goto nomem;
        if (p->interference && pg->n) {
            usher_error de = {0};
            if ((rc = p->device(p->ctx, pg->type, &g->dev, &de)) < 0) {
                rc = us_err_set(e->err, rc, "%s:%zu: field 'gpus[%u].type': %s", pn, pg->line, gi,
                                de.msg);
                goto out;
            }
        }
        if (pg->n > IF_MAX_REPLICAS && p->interference) {
            rc = us_err_set(e->err, USHER_ERR_LIMIT, "%s:%zu: field 'gpus[%u].replicas': %u "
                            "replicas on one GPU (the interference model takes at most %d)", pn,
                            pg->line, gi, pg->n, IF_MAX_REPLICAS);
            goto out;
        }
        char ck[KEY_SLOTS * 12 + 1];
        size_t ckl = 0;
        for (uint32_t j = 0; j < pg->n; j++, ri++) {
            const pf_replica *x = &pg->r[j];
            uint32_t mi = 0;
            find_model(names, x->model, &mi);
            uint32_t ci = 0, before = e->nc;
            if ((rc = class_of(e, classes, mi, pg, x, &ci)) < 0)
                goto out;
            if (e->nc != before && (rc = class_fill(e, &e->c[ci], g, gi, j, x, pn)) < 0)
                goto out;
            rep *r = &e->r[ri];
            r->model = mi;
            r->gpu = gi;
            r->cls = ci;
            r->slot = j;
            if (rep_batch(e, r, x) < 0)
                goto nomem;
            g->slot[j] = ri;
            e->m[mi].n_rep++;
            if (j < KEY_SLOTS)
                ckl += (size_t)snprintf(ck + ckl, sizeof ck - ckl, "%u,", ci);
        }
        /* GPUs with the same classes in the same order share cached latencies */
        if (pg->n <= KEY_SLOTS) {
            ck[ckl] = 0;
            void *v = us_map_get(comps, ck);
            if (v) {
                g->comp = (uint32_t)((uintptr_t)v - 1);
            } else {
                uint32_t nc = e->n_comp;
                if (!(e->comp_keys[nc] = us_strdup(ck)) ||
                    us_map_put(comps, e->comp_keys[nc], (void *)(uintptr_t)(nc + 1), NULL) < 0) {
                    e->n_comp += e->comp_keys[nc] != NULL;
                    goto nomem;
                }
                g->comp = e->n_comp++;
            }
        }
    }

    /* per model: its replicas, the idle ring, admission's tables, the queue bound */
    for (uint32_t i = 0; i < e->nm; i++) {
        model *md = &e->m[i];
        md->reps = us_calloc(md->n_rep ? md->n_rep : 1, sizeof *md->reps);
        md->busy_until = us_calloc(md->n_rep ? md->n_rep : 1, sizeof *md->busy_until);
        md->idle = us_calloc(md->n_rep ? md->n_rep : 1, sizeof *md->idle);
        if (!md->reps || !md->busy_until || !md->idle || bl_rebuild(md, 0) < 0)
            goto nomem;
        md->n_rep = 0;
    }
    for (uint32_t k = 0; k < e->nr; k++) {
        model *md = &e->m[e->r[k].model];
        e->r[k].lidx = md->n_rep;
        md->reps[md->n_rep++] = k;
        idle_push(md, k);
    }
    for (uint32_t i = 0; i < e->nm; i++)
        model_tables(e, &e->m[i]);
    goto out;
nomem:
    rc = us_err_set(e->err, USHER_ERR_NOMEM, "simulator: the plan's %u GPUs", pl->n_gpus);
out:
    return rc;
}

static void engine_free(eng *e)
{
    for (uint32_t i = 0; e->m && i < e->nm; i++) {
        model *md = &e->m[i];
        us_free(md->q_arr);
        us_free(md->q_dl);
        us_free(md->q_pred);
        us_free(md->q_mem);
        us_free(md->mem);
        us_free(md->reps);
        us_free(md->busy_until);
        us_free(md->idle);
        us_free(md->bl_heap);
        us_free(md->bl_gen);
        us_free(md->bl_act);
        sim_hist_free(&md->hist);
    }
    us_free(e->m);
    us_free(e->gspec);
    for (uint32_t i = 0; e->r && i < e->nr; i++) {
        us_free(e->r[i].b_arr);
        us_free(e->r[i].b_pred);
        us_free(e->r[i].b_mem);
    }
    us_free(e->r);
    for (uint32_t i = 0; e->g && i < e->ng; i++)
        us_free(e->g[i].slot);
    us_free(e->g);
    for (uint32_t i = 0; i < e->nc; i++) {
        us_free(e->c[i].key);
        if (e->c[i].rt_lat != e->c[i].lat)
            us_free(e->c[i].rt_lat);
        us_free(e->c[i].lat);
        us_free(e->c[i].prof);
    }
    us_free(e->c);
    us_free(e->heap);
    us_free(e->cache);
    us_free(e->s_req);
    us_free(e->s_good);
    us_free(e->s_busy);
    us_free(e->ones);
    for (uint32_t i = 0; i < e->n_comp; i++)
        us_free(e->comp_keys[i]);
    us_free(e->comp_keys);
    us_map_free(&e->names);
    us_map_free(&e->classes);
    us_map_free(&e->comps);
    for (uint32_t i = 0; e->gpu_keys && i < e->ng; i++)
        us_free(e->gpu_keys[i]);
    us_free(e->gpu_keys);
    us_map_free(&e->gpu_ids);
    us_free(e->rates);
    us_free(e->rp);
    us_free(e->rp_t);
    us_free(e->rp_ready);
    sim_source_free(e->src);
}

/* ---- re-planning in the loop ------------------------------------------------------------
 * Every replan_every_ns the planner callback is handed the rates observed since the last
 * call and may return a new plan. The new plan is matched against the running one, GPU by
 * GPU (a GPU is the same across plans when its type, node and index are; its position
 * without an index): a replica with the same model, share and batch on the same GPU is
 * kept, running on; one whose model had a replica on that GPU at another share or batch
 * restarts there (share_ns); any other is started (new, or moved: start_ns + load_ns).
 * As the server switches a model to a new plan (usher_server_reload: the new workers
 * start, the old ones serve meanwhile, then requests go to the new ones and the old ones
 * finish what they run), a model's replicas that are left out serve until all of its new
 * replicas are ready (its switch), then stop; its queue is served by whoever serves. A
 * stopped replica's running batch ends as given; while it runs it counts in its GPU's
 * utilisation but not in its neighbours' interference (docs/simulator.md). */
static bool serving(const rep *r) { return r->state == R_READY || r->state == R_STOPPING; }

static void gpu_key(const pf_gpu *pg, uint32_t pos, char *out, size_t cap)
{
    snprintf(out, cap, "%s|%s|%s%u", pg->type, pg->node ? pg->node : "",
             pg->has_index ? "" : "#", pg->has_index ? pg->index : pos);
}

/* the running GPUs' identities, at the first re-plan */
static int gpu_ids_init(eng *e)
{
    e->gpu_keys = us_calloc(e->g_cap ? e->g_cap : 1, sizeof *e->gpu_keys);
    if (!e->gpu_keys)
        return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: re-planning");
    if (!e->g_cap)
        e->g_cap = 1;
    const char *pn = e->p->plan_label ? e->p->plan_label : "plan.json";
    for (uint32_t gi = 0; gi < e->ng; gi++) {
        char key[256];
        gpu_key(e->g[gi].pg, gi, key, sizeof key);
        if (!(e->gpu_keys[gi] = us_strdup(key)))
            return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: re-planning");
        int put = us_map_put(&e->gpu_ids, e->gpu_keys[gi], (void *)(uintptr_t)(gi + 1), NULL);
        if (put < 0)
            return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: re-planning");
        if (put == 0)
            return us_err_set(e->err, USHER_ERR_INVALID, "%s:%zu: field 'gpus[%u].index': the "
                              "same GPU (type %s, node %s, index %u) as another: a re-plan "
                              "cannot tell them apart", pn, e->g[gi].pg->line, gi,
                              e->g[gi].pg->type, e->g[gi].pg->node ? e->g[gi].pg->node : "-",
                              e->g[gi].pg->index);
    }
    return USHER_OK;
}

/* a GPU the running plans did not have: appended (its device asked for) */
static int gpu_add(eng *e, const pf_gpu *pg, const char *key, uint32_t k, const char *pn,
                   uint32_t *out)
{
    if (e->ng == e->g_cap) {
        uint32_t cap = 2 * e->g_cap;
        gpu *g = us_realloc(e->g, (size_t)cap * sizeof *g);
        if (!g)
            return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: %u GPUs", cap);
        e->g = g;
        char **ks = us_realloc(e->gpu_keys, (size_t)cap * sizeof *ks);
        if (!ks)
            return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: %u GPUs", cap);
        e->gpu_keys = ks;
        memset(e->g + e->g_cap, 0, (size_t)(cap - e->g_cap) * sizeof *g);
        memset(e->gpu_keys + e->g_cap, 0, (size_t)(cap - e->g_cap) * sizeof *ks);
        e->g_cap = cap;
    }
    uint32_t gi = e->ng;
    gpu *g = &e->g[gi];
    g->pg = pg;
    g->util_t = e->now;
    if (e->p->interference) {
        usher_error de = {0};
        int rc = e->p->device(e->p->ctx, pg->type, &g->dev, &de);
        if (rc < 0)
            return us_err_set(e->err, rc, "%s:%zu: field 'gpus[%u].type': %s", pn, pg->line, k,
                              de.msg);
    }
    if (!(e->gpu_keys[gi] = us_strdup(key)))
        return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: re-planning");
    e->ng++; /* freed with the engine from here on */
    if (us_map_put(&e->gpu_ids, e->gpu_keys[gi], (void *)(uintptr_t)(gi + 1), NULL) < 0)
        return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: re-planning");
    *out = gi;
    return USHER_OK;
}

/* the time series' per-GPU columns for GPUs added since (old: the width before) */
static int series_widen(eng *e, uint32_t old)
{
    if (!e->s_busy || e->ng == old)
        return USHER_OK;
    double *b = us_calloc((size_t)e->n_int * e->ng, sizeof *b);
    if (!b)
        return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: time series of %u GPUs", e->ng);
    for (uint32_t i = 0; i < e->n_int; i++)
        memcpy(b + (size_t)i * e->ng, e->s_busy + (size_t)i * (old ? old : 1),
               old * sizeof *b);
    us_free(e->s_busy);
    e->s_busy = b;
    return USHER_OK;
}

/* a GPU composition's id (the classes of its serving replicas in slot order) */
static int comp_of(eng *e, const gpu *g, uint32_t *out)
{
    char ck[KEY_SLOTS * 12 + 1];
    size_t ckl = 0;
    for (uint32_t j = 0; j < g->n && j < KEY_SLOTS; j++)
        ckl += (size_t)snprintf(ck + ckl, sizeof ck - ckl, "%u,", e->r[g->slot[j]].cls);
    ck[ckl] = 0;
    void *v = us_map_get(&e->comps, ck);
    if (v) {
        *out = (uint32_t)((uintptr_t)v - 1);
        return USHER_OK;
    }
    if (e->n_comp == e->comp_cap) {
        uint32_t cap = 2 * e->comp_cap;
        char **ks = us_realloc(e->comp_keys, (size_t)cap * sizeof *ks);
        if (!ks)
            return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: GPU compositions");
        e->comp_keys = ks;
        e->comp_cap = cap;
    }
    uint32_t nc = e->n_comp;
    if (!(e->comp_keys[nc] = us_strdup(ck)))
        return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: GPU compositions");
    e->n_comp++;
    if (us_map_put(&e->comps, e->comp_keys[nc], (void *)(uintptr_t)(nc + 1), NULL) < 0)
        return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: GPU compositions");
    *out = nc;
    return USHER_OK;
}

/* every GPU's slots: its serving replicas in replica order, their running rows, its
 * composition */
static int gpus_rebuild(eng *e)
{
    uint32_t *cnt = us_calloc(e->ng ? e->ng : 1, sizeof *cnt);
    if (!cnt)
        return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: re-planning");
    for (uint32_t ri = 0; ri < e->nr; ri++)
        if (serving(&e->r[ri]))
            cnt[e->r[ri].gpu]++;
    int rc = USHER_OK;
    for (uint32_t gi = 0; gi < e->ng; gi++) {
        uint32_t *s = us_realloc(e->g[gi].slot, (cnt[gi] ? cnt[gi] : 1) * sizeof *s);
        if (!s) {
            rc = us_err_set(e->err, USHER_ERR_NOMEM, "simulator: re-planning");
            goto out;
        }
        e->g[gi].slot = s;
        e->g[gi].n = 0;
    }
    for (uint32_t ri = 0; ri < e->nr; ri++) {
        rep *r = &e->r[ri];
        if (!serving(r)) {
            r->slot = NONE;
            continue;
        }
        gpu *g = &e->g[r->gpu];
        r->slot = g->n;
        g->slot[g->n++] = ri;
    }
    for (uint32_t gi = 0; gi < e->ng; gi++) {
        gpu *g = &e->g[gi];
        memset(g->rows, 0, sizeof g->rows);
        for (uint32_t j = 0; j < g->n && j < KEY_SLOTS; j++) {
            const rep *r = &e->r[g->slot[j]];
            g->rows[j] = r->busy ? (uint16_t)r->rows : 0;
        }
        if (g->n <= KEY_SLOTS && (rc = comp_of(e, g, &g->comp)) < 0)
            goto out;
    }
out:
    us_free(cnt);
    return rc;
}

/* every model's serving replicas, its idle ring (the idle ones in the order they were,
 * the newly serving after them) and admission's tables */
static int models_rebuild(eng *e)
{
    int rc = USHER_OK;
    uint32_t *cnt = us_calloc(e->nm, sizeof *cnt);
    uint8_t *mark = us_calloc(e->nr ? e->nr : 1, 1);
    uint32_t **reps = us_calloc(e->nm, sizeof *reps);
    if (!cnt || !mark || !reps)
        goto nomem;
    for (uint32_t ri = 0; ri < e->nr; ri++)
        if (serving(&e->r[ri]))
            cnt[e->r[ri].model]++;
    for (uint32_t mi = 0; mi < e->nm; mi++)
        if (!(reps[mi] = us_calloc(cnt[mi] ? cnt[mi] : 1, sizeof **reps)))
            goto nomem;
    memset(cnt, 0, e->nm * sizeof *cnt);
    for (uint32_t ri = 0; ri < e->nr; ri++)
        if (serving(&e->r[ri]))
            reps[e->r[ri].model][cnt[e->r[ri].model]++] = ri;
    for (uint32_t mi = 0; mi < e->nm; mi++) {
        model *md = &e->m[mi];
        uint32_t n = cnt[mi];
        uint64_t *bu = us_calloc(n ? n : 1, sizeof *bu);
        uint32_t *idle = us_calloc(n ? n : 1, sizeof *idle);
        if (!bu || !idle) {
            us_free(bu);
            us_free(idle);
            goto nomem;
        }
        uint32_t in = 0, running = 0;
        for (uint32_t t = 0; t < md->idle_n; t++) {
            uint32_t ri = md->idle[(md->idle_head + t) % md->n_rep];
            if (serving(&e->r[ri]) && !e->r[ri].busy && !mark[ri]) {
                idle[in++] = ri;
                mark[ri] = 1;
            }
        }
        for (uint32_t k = 0; k < n; k++) {
            rep *r = &e->r[reps[mi][k]];
            r->lidx = k;
            bu[k] = r->busy ? r->busy_until : 0;
            running += r->busy;
            if (!r->busy && !mark[reps[mi][k]])
                idle[in++] = reps[mi][k];
            mark[reps[mi][k]] = 0;
        }
        us_free(md->reps);
        us_free(md->busy_until);
        us_free(md->idle);
        md->reps = reps[mi];
        reps[mi] = NULL;
        md->busy_until = bu;
        md->idle = idle;
        md->n_rep = n;
        md->idle_head = 0;
        md->idle_n = in;
        md->running = running;
        if (bl_rebuild(md, e->now) < 0)
            goto nomem;
        model_tables(e, md);
    }
    goto out;
nomem:
    rc = us_err_set(e->err, USHER_ERR_NOMEM, "simulator: re-planning");
out:
    for (uint32_t mi = 0; reps && mi < e->nm; mi++)
        us_free(reps[mi]);
    us_free(reps);
    us_free(mark);
    us_free(cnt);
    return rc;
}

/* the $/h and power of the GPUs held (a replica not retired on them) over time, and the
 * new plan's (*gpus, *cost: its replicas ready or starting) */
static int cost_update(eng *e, uint32_t *gpus, double *cost)
{
    uint64_t t = e->now < e->p->duration_ns || !e->p->duration_ns ? e->now : e->p->duration_ns;
    if (t > e->cost_t) {
        e->cost_acc += e->cost_now * (double)(t - e->cost_t);
        e->power_acc += e->power_now * (double)(t - e->cost_t);
        e->cost_t = t;
    }
    uint8_t *held = us_calloc(e->ng ? e->ng : 1, 1);
    if (!held)
        return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: re-planning");
    for (uint32_t ri = 0; ri < e->nr; ri++) {
        const rep *r = &e->r[ri];
        if (r->state != R_RETIRED)
            held[r->gpu] |= 1;
        if (r->state == R_READY || r->state == R_PENDING)
            held[r->gpu] |= 2;
    }
    uint32_t n = 0, np = 0;
    double c = 0, pw = 0, cp = 0;
    for (uint32_t gi = 0; gi < e->ng; gi++) {
        if (held[gi] & 1) {
            n++;
            c += e->g[gi].pg->price_per_hour;
            pw += e->g[gi].pg->power_w;
        }
        if (held[gi] & 2) {
            np++;
            cp += e->g[gi].pg->price_per_hour;
        }
    }
    us_free(held);
    e->cost_now = c;
    e->power_now = pw;
    if (n > e->gpus_max)
        e->gpus_max = n;
    if (gpus)
        *gpus = np;
    if (cost)
        *cost = cp;
    return USHER_OK;
}

/* models flagged in sw: their new replicas serve, their left-out ones stop */
static void switch_models(eng *e, const uint8_t *sw)
{
    for (uint32_t ri = 0; ri < e->nr; ri++) {
        rep *r = &e->r[ri];
        if (!sw[r->model])
            continue;
        if (r->state == R_PENDING)
            r->state = R_READY;
        else if (r->state == R_STOPPING)
            r->state = R_RETIRED;
    }
    for (uint32_t mi = 0; mi < e->nm; mi++)
        if (sw[mi])
            e->m[mi].switch_at = NEVER;
}

/* after a change: slots, models, cost; then every model with a queue decides again */
static int settle(eng *e, uint32_t *gpus, double *cost)
{
    int rc;
    if ((rc = gpus_rebuild(e)) < 0 || (rc = models_rebuild(e)) < 0 ||
        (rc = cost_update(e, gpus, cost)) < 0)
        return rc;
    for (uint32_t mi = 0; mi < e->nm; mi++)
        if (q_len(&e->m[mi]) && e->m[mi].idle_n && (rc = dispatch(e, mi, NONE)) < 0)
            return rc;
    return USHER_OK;
}

static int rep_add(eng *e, uint32_t *out)
{
    if (e->nr == e->r_cap) {
        uint32_t cap = e->r_cap ? 2 * e->r_cap : 16;
        rep *r = us_realloc(e->r, (size_t)cap * sizeof *r);
        if (!r)
            return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: %u replicas", cap);
        e->r = r;
        e->r_cap = cap;
    }
    memset(&e->r[e->nr], 0, sizeof *e->r);
    *out = e->nr++;
    return USHER_OK;
}

#define SWITCH_TIMES 8 /* distinct switch times one re-plan schedules events for, at most */

/* the new plan pl in place of the running one (rr: what it changed; *ready: when the last
 * model switches) */
static int apply_plan(eng *e, const pf_plan *pl, sim_replan_report *rr, uint64_t *ready)
{
    const sim_params *p = e->p;
    const char *pn = pl->label ? pl->label : "plan.json";
    uint64_t now = e->now;
    int rc = match(e, &e->names, pl, pn);
    if (rc < 0)
        return rc;
    if (!e->gpu_keys && (rc = gpu_ids_init(e)) < 0)
        return rc;
    uint32_t n_new = 0;
    for (uint32_t k = 0; k < pl->n_gpus; k++)
        n_new += pl->g[k].n;
    uint32_t old_ng = e->ng, old_nr = e->nr;
    uint32_t *gmap = us_calloc(pl->n_gpus ? pl->n_gpus : 1, sizeof *gmap);
    uint32_t *head = us_calloc((size_t)e->ng + pl->n_gpus + 1, sizeof *head);
    uint8_t *used = us_calloc((size_t)e->ng + pl->n_gpus + 1, 1);
    uint32_t *nxt = us_calloc(e->nr + 1, sizeof *nxt);
    uint8_t *cand = us_calloc(e->nr + 1, 1);
    uint32_t *match_of = us_calloc(n_new ? n_new : 1, sizeof *match_of);
    uint32_t *started = us_calloc(e->nm, sizeof *started);
    uint32_t *stopped = us_calloc(e->nm, sizeof *stopped);
    uint64_t *sw_at = us_calloc(e->nm, sizeof *sw_at);
    uint8_t *sw = us_calloc(e->nm, 1);
    if (!gmap || !head || !used || !nxt || !cand || !match_of || !started || !stopped ||
        !sw_at || !sw)
        goto nomem;
    /* the running plan's replicas (ready or starting), listed per GPU in replica order */
    for (uint32_t i = 0; i < e->ng + pl->n_gpus + 1; i++)
        head[i] = NONE;
    for (uint32_t ri = e->nr; ri-- > 0;) {
        rep *r = &e->r[ri];
        if (r->state != R_READY && r->state != R_PENDING)
            continue;
        cand[ri] = 1;
        nxt[ri] = head[r->gpu];
        head[r->gpu] = ri;
    }
    /* the new plan's GPUs: the same ones, or added */
    for (uint32_t k = 0; k < pl->n_gpus; k++) {
        const pf_gpu *pg = &pl->g[k];
        char key[256];
        gpu_key(pg, k, key, sizeof key);
        void *v = us_map_get(&e->gpu_ids, key);
        uint32_t gi = 0;
        if (v) {
            gi = (uint32_t)((uintptr_t)v - 1);
        } else if ((rc = gpu_add(e, pg, key, k, pn, &gi)) < 0) {
            goto out;
        }
        if (used[gi]) {
            rc = us_err_set(e->err, USHER_ERR_INVALID, "%s:%zu: field 'gpus[%u].index': the same "
                            "GPU (type %s, node %s, index %u) as another", pn, pg->line, k,
                            pg->type, pg->node ? pg->node : "-", pg->index);
            goto out;
        }
        if (pg->n > IF_MAX_REPLICAS && p->interference) {
            rc = us_err_set(e->err, USHER_ERR_LIMIT, "%s:%zu: field 'gpus[%u].replicas': %u "
                            "replicas on one GPU (the interference model takes at most %d)", pn,
                            pg->line, k, pg->n, IF_MAX_REPLICAS);
            goto out;
        }
        used[gi] = 1;
        gmap[k] = gi;
        e->g[gi].pg = pg;
    }
    if ((rc = series_widen(e, old_ng)) < 0)
        goto out;
    /* kept: the same model, share and batch on the same GPU */
    for (uint32_t k = 0, x_i = 0; k < pl->n_gpus; k++)
        for (uint32_t j = 0; j < pl->g[k].n; j++, x_i++) {
            const pf_replica *x = &pl->g[k].r[j];
            uint32_t mi = 0;
            find_model(&e->names, x->model, &mi);
            match_of[x_i] = NONE;
            for (uint32_t ri = head[gmap[k]]; ri != NONE; ri = nxt[ri]) {
                const rep *r = &e->r[ri];
                if (cand[ri] && r->model == mi && r->pbatch == x->batch &&
                    e->c[r->cls].share_pct == x->share) {
                    cand[ri] = 0;
                    match_of[x_i] = ri;
                    rr->kept++;
                    break;
                }
            }
        }
    /* the others start: in place of one of the model's on that GPU (a share or batch
     * change), or anew */
    for (uint32_t k = 0, x_i = 0; k < pl->n_gpus; k++)
        for (uint32_t j = 0; j < pl->g[k].n; j++, x_i++) {
            if (match_of[x_i] != NONE)
                continue;
            const pf_replica *x = &pl->g[k].r[j];
            uint32_t mi = 0, gi = gmap[k];
            find_model(&e->names, x->model, &mi);
            uint64_t cost = sat_add(p->start_ns, p->load_ns);
            bool restart = false;
            for (uint32_t ri = head[gi]; ri != NONE; ri = nxt[ri])
                if (ri < old_nr && cand[ri] && e->r[ri].model == mi) {
                    cand[ri] = 0; /* restarted: it stops at the switch */
                    e->r[ri].state = e->r[ri].state == R_READY ? R_STOPPING : R_RETIRED;
                    cost = p->share_ns;
                    restart = true;
                    rr->reshared++;
                    break;
                }
            if (!restart)
                started[mi]++;
            uint32_t ci = 0, before = e->nc, ri = 0;
            if ((rc = class_of(e, &e->classes, mi, &pl->g[k], x, &ci)) < 0)
                goto out;
            if (e->nc != before &&
                (rc = class_fill(e, &e->c[ci], &e->g[gi], k, j, x, pn)) < 0)
                goto out;
            if ((rc = rep_add(e, &ri)) < 0)
                goto out;
            rep *r = &e->r[ri];
            r->model = mi;
            r->gpu = gi;
            r->cls = ci;
            r->slot = NONE;
            r->state = R_PENDING;
            r->ready_at = sat_add(now, cost);
            if (rep_batch(e, r, x) < 0)
                goto nomem;
        }
    /* left out: a serving one serves until its model switches; a starting one is called off */
    for (uint32_t ri = 0; ri < old_nr; ri++) {
        if (!cand[ri])
            continue;
        rep *r = &e->r[ri];
        r->state = r->state == R_READY ? R_STOPPING : R_RETIRED;
        stopped[r->model]++;
        rr->stopped++;
    }
    /* started for a model that stopped one elsewhere: moved */
    uint32_t all_started = 0;
    for (uint32_t mi = 0; mi < e->nm; mi++) {
        uint32_t mv = started[mi] < stopped[mi] ? started[mi] : stopped[mi];
        rr->moved += mv;
        all_started += started[mi];
    }
    rr->started = all_started - rr->moved;
    /* each model switches when its last starting replica is ready */
    for (uint32_t ri = 0; ri < e->nr; ri++) {
        const rep *r = &e->r[ri];
        if (r->state == R_PENDING || r->state == R_STOPPING) {
            uint64_t t = r->state == R_PENDING ? r->ready_at : now;
            if (t > sw_at[r->model])
                sw_at[r->model] = t;
            sw[r->model] = 1;
        }
    }
    uint64_t times[SWITCH_TIMES];
    uint32_t n_times = 0;
    *ready = now;
    for (uint32_t mi = 0; mi < e->nm; mi++) {
        if (!sw[mi])
            continue;
        if (sw_at[mi] <= now) {
            e->m[mi].switch_at = NEVER;
            continue; /* at once */
        }
        sw[mi] = 0;
        e->m[mi].switch_at = sw_at[mi];
        if (sw_at[mi] > *ready)
            *ready = sw_at[mi];
        bool pushed = false;
        for (uint32_t t = 0; t < n_times && !pushed; t++)
            pushed = times[t] == sw_at[mi];
        if (!pushed) {
            if ((rc = push(e, sw_at[mi], 0, EV_SWITCH)) < 0)
                goto out;
            if (n_times < SWITCH_TIMES)
                times[n_times++] = sw_at[mi];
        }
    }
    switch_models(e, sw);
    rc = settle(e, &rr->gpus, &rr->cost_per_hour);
    e->changed = true;
    goto out;
nomem:
    rc = us_err_set(e->err, USHER_ERR_NOMEM, "simulator: re-planning");
out:
    us_free(gmap);
    us_free(head);
    us_free(used);
    us_free(nxt);
    us_free(cand);
    us_free(match_of);
    us_free(started);
    us_free(stopped);
    us_free(sw_at);
    us_free(sw);
    return rc;
}

static int on_switch(eng *e)
{
    uint8_t *sw = us_calloc(e->nm, 1);
    if (!sw)
        return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: re-planning");
    bool any = false;
    for (uint32_t mi = 0; mi < e->nm; mi++)
        if (e->m[mi].switch_at <= e->now) {
            sw[mi] = 1;
            any = true;
        }
    int rc = USHER_OK;
    if (any) {
        switch_models(e, sw);
        rc = settle(e, NULL, NULL);
    }
    us_free(sw);
    return rc;
}

static int on_replan(eng *e)
{
    const sim_params *p = e->p;
    uint64_t now = e->now, span = now - e->last_replan;
    for (uint32_t i = 0; i < e->nw; i++) {
        e->rates[i] = span ? (double)e->m[i].win_req / ((double)span / 1e9) : 0;
        e->m[i].win_req = 0;
    }
    e->last_replan = now;
    if (e->n_rp == e->rp_cap) {
        uint32_t cap = e->rp_cap ? 2 * e->rp_cap : 16;
        sim_replan_report *rp = us_realloc(e->rp, (size_t)cap * sizeof *rp);
        if (rp)
            e->rp = rp;
        uint64_t *t = rp ? us_realloc(e->rp_t, (size_t)cap * sizeof *t) : NULL;
        if (t)
            e->rp_t = t;
        uint64_t *rd = t ? us_realloc(e->rp_ready, (size_t)cap * sizeof *rd) : NULL;
        if (!rd)
            return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: %u re-plans", cap);
        e->rp_ready = rd;
        e->rp_cap = cap;
    }
    sim_replan_report *rr = &e->rp[e->n_rp];
    memset(rr, 0, sizeof *rr);
    rr->t_s = (double)now / 1e9;
    const pf_plan *np = NULL;
    usher_error pe = {0};
    int rc = p->replan(p->replan_ctx, now, e->rates, e->nw, &np, &pe);
    if (rc < 0)
        return us_err_set(e->err, rc, "re-plan at %.3f s: %s", (double)now / 1e9,
                          pe.msg[0] ? pe.msg : "the planner failed");
    uint64_t ready = now;
    if (np) {
        rr->changed = true;
        if ((rc = apply_plan(e, np, rr, &ready)) < 0)
            return us_err_prefix(e->err, rc, "re-plan at %.3f s: ", (double)now / 1e9);
    } else {
        rr->gpus = e->n_rp ? e->rp[e->n_rp - 1].gpus : e->gpus_max;
        rr->cost_per_hour = e->n_rp ? e->rp[e->n_rp - 1].cost_per_hour : e->cost_now;
    }
    rr->ready_s = (double)ready / 1e9;
    e->rp_t[e->n_rp] = now;
    e->rp_ready[e->n_rp] = ready;
    e->n_rp++;
    uint64_t next = sat_add(now, p->replan_every_ns);
    if (next < p->duration_ns)
        return push(e, next, 0, EV_REPLAN);
    return USHER_OK;
}

/* ---- the run ---------------------------------------------------------------------------- */
static int pull(eng *e)
{
    sim_arrival a;
    int rc = sim_source_next(e->src, &a, e->err);
    if (rc < 0)
        return rc;
    if (rc == 0 || (e->p->duration_ns && a.t_ns >= e->p->duration_ns)) {
        e->arr_ok = false;
        return USHER_OK;
    }
    if (a.model >= e->nw)
        return us_err_set(e->err, USHER_ERR_INVALID, "simulator: an arrival for model %u of %u",
                          a.model, e->nw);
    if (a.t_ns < e->now)
        return us_err_set(e->err, USHER_ERR_INVALID, "simulator: arrivals out of time order "
                          "(%llu ns after %llu ns)", (unsigned long long)a.t_ns,
                          (unsigned long long)e->now);
    e->arr = a;
    e->arr_ok = true;
    e->arr_seq = e->seq++;
    e->last_arrival = a.t_ns;
    return USHER_OK;
}

static int run(eng *e)
{
    const sim_params *p = e->p;
    int rc = pull(e);
    uint64_t next_progress = PROGRESS_EVERY;
    while (rc >= 0 && (e->arr_ok || e->hn)) {
        bool replanning_event = false;
        if (e->arr_ok && (e->hn == 0 || e->arr.t_ns < e->heap[0].t ||
                          (e->arr.t_ns == e->heap[0].t && e->arr_seq < e->heap[0].seq))) {
            e->now = e->arr.t_ns;
            uint32_t mi = e->arr.model;
            if ((rc = on_arrival(e, mi)) < 0 || (rc = pull(e)) < 0)
                break;
        } else {
            ev x = pop(e);
            e->now = x.t;
            uint32_t idx = x.what >> 2, kind = x.what & 3;
            if (kind == EV_END) {
                rc = on_end(e, idx);
            } else if (kind == EV_REPLAN) {
                rc = on_replan(e);
                replanning_event = true;
            } else if (kind == EV_SWITCH) {
                rc = on_switch(e);
                replanning_event = true;
            } else if (e->m[idx].wake_at == x.t) {
                e->m[idx].wake_at = NEVER;
                rc = dispatch(e, idx, NONE);
            }
        }
        if (!replanning_event && ++e->events == next_progress) {
            next_progress += PROGRESS_EVERY;
            if (p->progress && p->duration_ns)
                p->progress(p->progress_ctx, e->now >= p->duration_ns
                                                 ? 1.0
                                                 : (double)e->now / (double)p->duration_ns);
        }
    }
    return rc < 0 ? rc : USHER_OK;
}

static int report(eng *e, sim_report **out);

int sim_run(const sim_params *p, sim_report **out, usher_error *err)
{
    *out = NULL;
    eng e = {.p = p, .err = err, .src = p->source};
    us_map_init(&e.names);
    us_map_init(&e.classes);
    us_map_init(&e.comps);
    us_map_init(&e.gpu_ids);
    int rc;
    if (!p->plan || !p->models || !p->profile || (p->interference && !p->device)) {
        rc = us_err_set(err, USHER_ERR_INVALID, "simulator: a plan, a workload, a profile "
                        "callback%s are needed", p->interference ? " and a device callback" : "");
        goto out;
    }
    if ((rc = setup(&e)) < 0)
        goto out;
    e.ones = us_mallocarray(RT_MAX_BATCH + VIEW_EXTRA, sizeof *e.ones);
    if (!e.ones)
        goto nomem;
    for (size_t i = 0; i < RT_MAX_BATCH + VIEW_EXTRA; i++)
        e.ones[i] = 1;
    if (!e.src) {
        if (!p->duration_ns) {
            rc = us_err_set(err, USHER_ERR_INVALID, "simulator: a duration is needed for the "
                            "Poisson arrivals");
            goto out;
        }
        double *rates = us_mallocarray(e.nw, sizeof *rates);
        if (!rates)
            goto nomem;
        for (uint32_t i = 0; i < e.nw; i++)
            rates[i] = e.m[i].rate;
        sim_poisson_params pp = {.rates = rates, .n_models = e.nw, .seed = p->seed,
                                 .duration_ns = p->duration_ns};
        rc = sim_source_poisson(&pp, &e.src, err);
        us_free(rates);
        if (rc < 0)
            goto out;
    }
    if (p->interval_ns) {
        if (!p->duration_ns) {
            rc = us_err_set(err, USHER_ERR_INVALID, "simulator: a time series needs a duration");
            goto out;
        }
        uint64_t n = (p->duration_ns + p->interval_ns - 1) / p->interval_ns;
        if (n * ((uint64_t)e.nw + e.ng) > SERIES_MAX || n > UINT32_MAX) {
            rc = us_err_set(err, USHER_ERR_LIMIT, "simulator: %llu intervals x (%u models + %u "
                            "GPUs) in the time series (at most %llu): choose a longer interval",
                            (unsigned long long)n, e.nw, e.ng, SERIES_MAX);
            goto out;
        }
        e.n_int = (uint32_t)n;
        e.interval = p->interval_ns;
        e.s_req = us_calloc((size_t)n * e.nw, sizeof *e.s_req);
        e.s_good = us_calloc((size_t)n * e.nw, sizeof *e.s_good);
        e.s_busy = us_calloc((size_t)n * (e.ng ? e.ng : 1), sizeof *e.s_busy);
        if (!e.s_req || !e.s_good || !e.s_busy)
            goto nomem;
    }
    if (p->service_cv > 0) {
        if (!(p->service_cv <= 10)) {
            rc = us_err_set(err, USHER_ERR_INVALID, "simulator: service-time CV %g (0 to 10)",
                            p->service_cv);
            goto out;
        }
        e.svc_sigma = sqrt(log1p(p->service_cv * p->service_cv));
        e.svc_mu = -0.5 * e.svc_sigma * e.svc_sigma;
        ws_rng_seed(&e.svc, p->seed, SERVICE_STREAM);
    }
    if (p->replan_every_ns && p->replan) {
        if (!p->duration_ns) {
            rc = us_err_set(err, USHER_ERR_INVALID, "simulator: re-planning needs a duration");
            goto out;
        }
        if (!(e.rates = us_calloc(e.nw, sizeof *e.rates)))
            goto nomem;
        if ((rc = cost_update(&e, NULL, NULL)) < 0)
            goto out;
        if (p->replan_every_ns < p->duration_ns && (rc = push(&e, p->replan_every_ns, 0,
                                                               EV_REPLAN)) < 0)
            goto out;
    }
    if ((rc = run(&e)) < 0)
        goto out;
    rc = report(&e, out);
    goto out;
nomem:
    rc = us_err_set(err, USHER_ERR_NOMEM, "simulator");
out:
    engine_free(&e); /* the source too, on every path */
    return rc;
}

/* ---- the report --------------------------------------------------------------------- */
static void copy_name(char *dst, const char *s)
{
    snprintf(dst, SIM_NAME_MAX, "%s", s ? s : "");
}

static int report(eng *e, sim_report **out)
{
    const sim_params *p = e->p;
    sim_report *r = us_calloc(1, sizeof *r);
    if (!r)
        return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: report");
    r->m = us_calloc(e->nw, sizeof *r->m);
    r->g = us_calloc(e->ng ? e->ng : 1, sizeof *r->g);
    r->n_groups = e->nm - e->nw;
    r->groups = r->n_groups ? us_calloc(r->n_groups, sizeof *r->groups) : NULL;
    if (!r->m || !r->g || (r->n_groups && !r->groups)) {
        sim_report_free(r);
        return us_err_set(e->err, USHER_ERR_NOMEM, "simulator: report");
    }
    snprintf(r->plan, sizeof r->plan, "%s", p->plan_label ? p->plan_label : "");
    snprintf(r->workload, sizeof r->workload, "%s", p->workload_label ? p->workload_label : "");
    r->seed = p->seed;
    r->rate_scale = p->rate_scale;
    r->interference = p->interference;
    uint64_t dur = p->duration_ns ? p->duration_ns : e->last_arrival;
    r->duration_s = (double)dur / 1e9;
    uint64_t end = e->now > dur ? e->now : dur;
    r->end_s = (double)end / 1e9;
    r->events = e->events;
    r->coloc_predictions = e->coloc_calls;
    r->coloc_cache_hits = e->coloc_hits;
    r->n_models = e->nw;
    /* nothing is left queued once the events run out (every wait has a wake-up); what would
     * be is counted as expired, for the model it came from */
    for (uint32_t i = 0; i < e->nm; i++) {
        model *md = &e->m[i];
        for (size_t j = md->q_head; e->n_rp && j < md->q_tail; j++)
            window_note(e, md->q_arr[j], W_LOST);
        for (size_t j = md->q_head; md->n_mem && j < md->q_tail; j++)
            e->m[md->q_mem[j]].expired++;
        if (!md->n_mem)
            md->expired += q_len(md);
    }
    for (uint32_t k = 0; k < r->n_groups; k++) {
        const model *md = &e->m[e->nw + k];
        sim_group_report *x = &r->groups[k];
        copy_name(x->name, md->spec->name);
        snprintf(x->kind, sizeof x->kind, "%s", p->plan->groups[k].kind);
        x->n_members = md->n_mem;
        x->replicas = md->n_rep;
        x->batches = md->batches;
        x->mixed_batches = md->mixed;
        x->rows = md->rows;
        x->filler_rows = md->filler;
    }
    for (uint32_t i = 0; i < e->nw; i++) {
        model *md = &e->m[i];
        const model *u = &e->m[md->unit]; /* what served it: itself or its group */
        sim_model_report *x = &r->m[i];
        copy_name(x->name, md->spec->name);
        if (u != md)
            copy_name(x->group, u->spec->name);
        x->rate = md->rate;
        x->slo_ms = md->spec->slo_ms;
        x->replicas = u->n_rep;
        x->requests = md->requests;
        x->served = md->served;
        x->good = md->good;
        x->late = md->late;
        x->rejected = md->rejected;
        x->shed = md->shed;
        x->probes = md->probes;
        x->expired = md->expired;
        x->batches = md->batches;
        x->batch_rows = md->rows;
        x->goodput = dur ? (double)md->good / ((double)dur / 1e9) : 0;
        x->attainment_pct = md->requests ? 100.0 * (double)md->good / (double)md->requests : 100;
        if (md->served) {
            x->mean_ms = md->sum_lat / (double)md->served / 1e6;
            x->mean_queue_ms = md->sum_queue / (double)md->served / 1e6;
            x->p50_ms = sim_hist_quantile(&md->hist, 0.5) / 1e6;
            x->p99_ms = sim_hist_quantile(&md->hist, 0.99) / 1e6;
            x->p999_ms = sim_hist_quantile(&md->hist, 0.999) / 1e6;
            x->max_ms = (double)md->hist.max / 1e6;
        }
        x->hist = md->hist; /* the report's now (its latency CDF) */
        memset(&md->hist, 0, sizeof md->hist);
        x->latency_scale = u->adm.scale;
        r->requests += x->requests;
        r->served += x->served;
        r->good += x->good;
        r->late += x->late;
        r->rejected += x->rejected;
        r->expired += x->expired;
    }
    r->goodput = dur ? (double)r->good / ((double)dur / 1e9) : 0;
    r->attainment_pct = r->requests ? 100.0 * (double)r->good / (double)r->requests : 100;
    r->n_gpus = e->ng;
    double cpu = 0, mem = 0;
    for (uint32_t gi = 0; gi < e->ng; gi++) {
        gpu *g = &e->g[gi];
        sim_gpu_report *x = &r->g[gi];
        gpu_account(e, g, end);
        copy_name(x->type, g->pg->type);
        x->replicas = g->n;
        x->compute_pct = end ? 100.0 * g->util_acc / (double)end : 0;
        x->memory_pct = g->pg->memory_pct;
        x->price_per_hour = g->pg->price_per_hour;
        x->power_w = g->pg->power_w;
        x->batches = g->batches;
        if (g->n) {
            r->gpus_used++;
            r->cost_per_hour += x->price_per_hour;
            r->power_w += x->power_w;
            cpu += x->compute_pct;
            mem += x->memory_pct;
        }
    }
    if (r->gpus_used) {
        r->compute_pct = cpu / r->gpus_used;
        r->memory_pct = mem / r->gpus_used;
    }
    if (e->changed && dur) { /* the GPUs held changed over the run: their time averages, and
                                utilisation over every GPU held at some time */
        uint64_t t = dur > e->cost_t ? dur - e->cost_t : 0;
        cpu = mem = 0;
        for (uint32_t gi = 0; gi < e->ng; gi++) {
            cpu += r->g[gi].compute_pct;
            mem += r->g[gi].memory_pct;
        }
        r->compute_pct = e->ng ? cpu / e->ng : 0;
        r->memory_pct = e->ng ? mem / e->ng : 0;
        r->cost_per_hour = (e->cost_acc + e->cost_now * (double)t) / (double)dur;
        r->power_w = (e->power_acc + e->power_now * (double)t) / (double)dur;
        r->gpus_used = e->gpus_max;
    }
    r->service_cv = e->svc_sigma > 0 ? p->service_cv : 0;
    if (p->replan_every_ns && p->replan) {
        r->replan_every_s = (double)p->replan_every_ns / 1e9;
        r->start_s = (double)p->start_ns / 1e9;
        r->load_s = (double)p->load_ns / 1e9;
        r->share_s = (double)p->share_ns / 1e9;
        r->replans = e->rp;
        r->n_replans = e->n_rp;
        e->rp = NULL; /* the report's now */
        for (uint32_t i = 0; i < r->n_replans; i++) {
            r->replan_requests += r->replans[i].requests;
            r->replan_lost += r->replans[i].lost;
            r->replan_late += r->replans[i].late;
        }
    }
    r->energy_j_per_request = r->served ? r->power_w * r->duration_s / (double)r->served : 0;
    r->interval_ns = e->interval;
    r->n_intervals = e->n_int;
    r->series_requests = e->s_req;
    r->series_good = e->s_good;
    e->s_req = e->s_good = NULL; /* the report's now */
    if (e->s_busy) { /* busy ns to % of each interval (the last one may be shorter) */
        for (uint32_t i = 0; i < e->n_int; i++) {
            uint64_t t0 = (uint64_t)i * e->interval, len = dur - t0 < e->interval ? dur - t0
                                                                                   : e->interval;
            for (uint32_t gi = 0; gi < e->ng; gi++)
                e->s_busy[(size_t)i * e->ng + gi] *= len ? 100.0 / (double)len : 0;
        }
        r->series_gpu_pct = e->s_busy;
        e->s_busy = NULL;
    }
    *out = r;
    return USHER_OK;
}
