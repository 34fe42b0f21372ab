/*
 * test_runtime.c - layer 7 runtime: requests, the batching decision, join/split, and models
 * served by real worker processes (usher worker + ONNX Runtime).
 *
 * The pure parts run everywhere. The served-model tests need the usher binary (USHER_BIN),
 * the ONNX Runtime library and the test models; without them they say so and pass.
 * They check RELIABILITY.md's ledger rules on every path: each submitted request is answered
 * exactly once (LEDGER-1), received == outcomes + in_flight whenever sampled (LEDGER-2), every
 * output is its own request's (LEDGER-4: unique inputs, compared with a direct single run),
 * and a worker crash fails only what ran on it (FAULT-1, FAULT-5, LEDGER-5).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "runtime/rt.h"
#include "test.h"

#define MS 1000000ull
#define SEC 1000000000ull

/* ---- outcomes, respond once --------------------------------------------------------------- */
TEST(outcome_names)
{
    ASSERT_STR_EQ(rt_outcome_name(RT_OK), "success");
    ASSERT_STR_EQ(rt_outcome_name(RT_REJECTED), "rejected");
    ASSERT_STR_EQ(rt_outcome_name(RT_WORKER_CRASH), "worker_crash");
    ASSERT_STR_EQ(rt_outcome_name(RT_UNAVAILABLE), "unavailable");
    ASSERT_STR_EQ(rt_outcome_name(RT_OUTCOME_COUNT), "unknown");
    for (int o = 0; o < RT_OUTCOME_COUNT; o++)
        ASSERT(strcmp(rt_outcome_name((rt_outcome)o), "unknown") != 0);
}

typedef struct race {
    rt_request *r;
    atomic_int go;
    atomic_int won;
    atomic_int calls;
    atomic_int last_outcome;
} race;

static void race_done(rt_request *r, rt_outcome o, const char *msg, void *ctx)
{
    race *x = ctx;
    atomic_fetch_add(&x->calls, 1);
    atomic_store(&x->last_outcome, (int)o);
}

typedef struct racer {
    race *x;
    int id;
} racer;

static void *race_thread(void *arg)
{
    racer *t = arg;
    while (!atomic_load(&t->x->go))
        ;
    if (rt_respond(t->x->r, (rt_outcome)(t->id % RT_OUTCOME_COUNT), "race"))
        atomic_fetch_add(&t->x->won, 1);
    return NULL;
}

TEST(respond_exactly_once_under_8_threads)
{
    for (int round = 0; round < 300; round++) {
        race x;
        memset(&x, 0, sizeof x);
        x.r = rt_request_new();
        ASSERT(x.r);
        x.r->done = race_done;
        x.r->ctx = &x;
        pthread_t th[8];
        racer rc[8];
        for (int i = 0; i < 8; i++) {
            rc[i] = (racer){&x, i};
            pthread_create(&th[i], NULL, race_thread, &rc[i]);
        }
        atomic_store(&x.go, 1);
        for (int i = 0; i < 8; i++)
            pthread_join(th[i], NULL);
        ASSERT_EQ_INT(atomic_load(&x.won), 1);
        ASSERT_EQ_INT(atomic_load(&x.calls), 1);
        ASSERT(!rt_respond(x.r, RT_OK, "late"));
        ASSERT_EQ_INT(atomic_load(&x.calls), 1);
        rt_request_free(x.r);
    }
}

TEST(request_free_releases_tensors)
{
    rt_request *r = rt_request_new();
    ASSERT(r);
    r->n_in = 2;
    r->in[0].data = us_malloc(10);
    r->in[1].data = us_malloc(20);
    r->n_out = 1;
    r->out[0].data = us_malloc(30);
    rt_request_free(r);
    rt_request_free(NULL);
}

static uint64_t vclock_ns;
static uint64_t vclock(void) { return vclock_ns; }

TEST(clock_is_settable)
{
    uint64_t a = rt_now_ns(), b = rt_now_ns();
    ASSERT(b >= a && a > 0);
    vclock_ns = 42;
    rt_set_clock(vclock);
    ASSERT_EQ_U64(rt_now_ns(), 42);
    vclock_ns = 43;
    ASSERT_EQ_U64(rt_now_ns(), 43);
    rt_set_clock(NULL);
    ASSERT(rt_now_ns() >= b);
}

/* ---- the batching decision ---------------------------------------------------------------- */
#define NONE UINT64_MAX
#define LAT_MAX 9

typedef struct decide_case {
    const char *name;
    uint64_t now_ms;
    int max_batch;
    uint64_t lat_ms[LAT_MAX]; /* by rows 1..; all 0: no prediction */
    size_t n;
    int64_t rows[8];
    uint64_t dl_ms[8];        /* NONE: no deadline */
    bool blocked;
    uint64_t slack_ms;
    size_t take, expire;
    uint64_t wake_ms;         /* NONE: only when the queue changes */
    /* the waiting policy (0s: usher's default with no arrival rate known) */
    int64_t delay_ms;         /* max_queue_delay: > 0 wait that long, < 0 never */
    uint64_t arr_ms[8];       /* arrivals (for the delay) */
    double rate;              /* observed arrivals, rows/s */
    int replicas;
    int pref[3];              /* preferred batch sizes, 0-terminated */
    double cost;              /* every request's cost (0: 1) */
} decide_case;

/* the policy fields trail each row; rows that leave them out take the defaults */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const decide_case decide_cases[] = {
    {"empty queue", 0, 4, {10, 12, 14, 16}, 0, {0}, {0}, false, 0, 0, 0, NONE},
    {"no prediction: at once", 5, 8, {0}, 3, {1, 1, 1}, {100, 100, 100}, false, 0, 3, 0, 5},
    {"no prediction: rows cap the batch", 5, 8, {0}, 3, {4, 4, 4}, {100, 100, 100}, false, 0, 2,
     0, 5},
    {"no prediction: past deadline expires", 50, 8, {0}, 3, {1, 1, 1}, {40, 50, 60}, false, 0, 2,
     1, 50},
    {"fill: max_batch rows at hand", 0, 4, {10, 12, 14, 16}, 4, {1, 1, 1, 1},
     {100, 100, 100, 100}, false, 0, 4, 0, 0},
    {"fill: more than max_batch queued", 0, 4, {10, 12, 14, 16}, 6, {1, 1, 1, 1, 1, 1},
     {100, 100, 100, 100, 100, 100}, false, 0, 4, 0, 0},
    {"fill: rows of several requests", 0, 4, {10, 12, 14, 16}, 3, {2, 1, 1},
     {100, 100, 100}, false, 0, 3, 0, 0},
    /* work-conserving: an idle replica takes what is queued */
    {"idle: a lone request leaves at once", 0, 4, {10, 12, 14, 16}, 1, {1}, {100}, false, 0, 1, 0,
     0},
    {"idle: what is queued leaves at once", 0, 4, {10, 12, 14, 16}, 2, {1, 1}, {100, 100}, false,
     0, 2, 0, 0},
    {"idle: a low rate never waits", 0, 4, {10, 12, 14, 16}, 1, {1}, {100}, false, 0, 1, 0, 0, 0,
     {0}, 1.0, 1},
    {"idle: a rate one replica keeps up with alone", 0, 4, {10, 12, 14, 16}, 1, {1}, {100}, false,
     0, 1, 0, 0, 0, {0}, 99.0, 1},
    /* rate 125/s, one replica: 1 row takes 10 ms while 1.25 arrive; 2 rows take 12 ms while
     * 1.5 arrive: wait for the second, at most twice its expected arrival (2 x 8 ms) */
    {"keep up: wait for the size that keeps up", 0, 4, {10, 12, 14, 16}, 1, {1}, {100}, false, 0,
     0, 0, 16, 0, {0}, 125.0, 1},
    {"keep up: reached", 0, 4, {10, 12, 14, 16}, 2, {1, 1}, {100, 100}, false, 0, 2, 0, 0, 0,
     {0}, 125.0, 1},
    {"keep up: two replicas share the rate", 0, 4, {10, 12, 14, 16}, 1, {1}, {100}, false, 0, 1,
     0, 0, 0, {0}, 125.0, 2},
    {"keep up: bounded by the deadline", 0, 4, {10, 12, 14, 16}, 1, {1}, {20}, false, 0, 0, 0,
     10, 0, {0}, 125.0, 1},
    /* 1000/s: no size keeps up; it waits for a full batch, 2 x 3 rows' arrival */
    {"keep up: nothing keeps up, waits toward max_batch", 0, 4, {10, 12, 14, 16}, 1, {1}, {1000},
     false, 0, 0, 0, 6, 0, {0}, 1000.0, 1},
    /* at cost 2, 2 rows take 24 ms (3 arrive), 3 take 28 (3.5), 4 take 32 (4): wait 2 x 16 ms */
    {"keep up: a costlier request needs more", 0, 4, {10, 12, 14, 16}, 2, {1, 1}, {300, 300},
     false, 0, 0, 0, 32, 0, {0}, 125.0, 1, {0}, 2.0},
    /* Triton's max_queue_delay_microseconds and preferred_batch_size */
    {"delay: waits from the oldest arrival", 10, 4, {10, 12, 14, 16}, 2, {1, 1}, {100, 100},
     false, 0, 0, 0, 13, 5, {8, 9}},
    {"delay: over, leaves", 13, 4, {10, 12, 14, 16}, 2, {1, 1}, {100, 100}, false, 0, 2, 0, 13,
     5, {8, 9}},
    {"delay: the earliest deadline ends it", 10, 4, {10, 12, 14, 16}, 3, {1, 1, 1},
     {100, 50, 100}, false, 0, 0, 0, 36, 100, {0, 0, 0}},
    {"delay: slack closes earlier", 0, 4, {10, 12, 14, 16}, 2, {1, 1}, {100, 100}, false, 3, 0, 0,
     85, 1000},
    {"delay: the last moment reached", 88, 4, {10, 12, 14, 16}, 2, {1, 1}, {100, 100}, false, 0,
     2, 0, 88, 1000},
    {"delay: past the pair's last moment, the head leaves alone", 89, 4, {10, 12, 14, 16}, 2,
     {1, 1}, {100, 100}, false, 0, 1, 0, 89, 1000},
    {"delay: no deadline, waits the delay", 0, 4, {10, 12, 14, 16}, 2, {1, 1}, {NONE, NONE},
     false, 0, 0, 0, 5, 5},
    {"delay: a preferred size reached leaves", 0, 8, {10, 12, 14, 16, 18, 20, 22, 24}, 2, {1, 1},
     {100, 100}, false, 0, 2, 0, 0, 50, {0}, 0, 0, {2}},
    {"delay: the largest preferred size is the target", 0, 8, {10, 12, 14, 16, 18, 20, 22, 24}, 2,
     {1, 1}, {100, 100}, false, 0, 0, 0, 50, 50, {0}, 0, 0, {2, 4}},
    {"never wait: max_queue_delay 0 in the config", 0, 4, {10, 12, 14, 16}, 1, {1}, {100}, false,
     0, 1, 0, 0, -1, {0}, 1000.0, 1},
    {"close: a newcomer would break the head's deadline", 85, 4, {10, 12, 14, 16}, 2, {1, 1},
     {96, 200}, false, 0, 1, 0, 85, 1000},
    {"close: a newcomer that cannot make it in this batch", 0, 4, {10, 12, 14, 16}, 2, {1, 1},
     {100, 11}, false, 0, 1, 0, 0, 1000},
    {"close: the next request's rows do not fit", 0, 4, {10, 12, 14, 16}, 2, {3, 2}, {100, 100},
     false, 0, 1, 0, 0, 1000},
    {"close: blocked (other shapes behind)", 0, 4, {10, 12, 14, 16}, 2, {1, 1}, {100, 100}, true,
     0, 2, 0, 0, 1000},
    {"expire: cannot finish even alone", 0, 4, {10, 12, 14, 16}, 3, {1, 1, 1}, {5, 9, 100}, false,
     0, 1, 2, 0},
    {"expire: exactly meetable is kept", 0, 4, {10, 12, 14, 16}, 1, {1}, {10}, false, 0, 1, 0, 0},
    {"expire: all of them", 30, 4, {10, 12, 14, 16}, 2, {1, 1}, {35, 20}, false, 0, 0, 2, NONE},
    {"expire: by the request's cost", 0, 4, {10, 12, 14, 16}, 1, {1}, {15}, false, 0, 0, 1, NONE,
     0, {0}, 0, 0, {0}, 2.0},
    {"expire: only the head run", 0, 4, {10, 12, 14, 16}, 3, {1, 1, 1}, {5, 100, 5}, false, 0, 1,
     1, 0},
    {"large: one request of max_batch rows", 0, 8, {10, 12, 14, 16, 18, 20, 22, 24}, 2, {8, 1},
     {100, 100}, false, 0, 1, 0, 0},
    {"large: more rows than max_batch", 0, 4, {10, 12, 14, 16}, 1, {6}, {100}, false, 0, 1, 0, 0},
    {"large: behind a small head", 0, 8, {10, 12, 14, 16, 18, 20, 22, 24}, 2, {3, 8}, {100, 100},
     false, 0, 1, 0, 0, 1000},
    {"large: too slow even alone", 0, 4, {10, 12, 14, 16}, 1, {8}, {20}, false, 0, 0, 1, NONE},
    {"batch of one: always full", 0, 1, {10}, 3, {1, 1, 1}, {100, 100, 100}, false, 0, 1, 0, 0,
     1000},
};
#pragma GCC diagnostic pop

static void run_decide(const decide_case *c, rt_batch_decision *d)
{
    uint64_t lat[LAT_MAX + 1] = {0};
    bool any = false;
    for (int i = 0; i < LAT_MAX; i++) {
        lat[i + 1] = c->lat_ms[i] * MS;
        any = any || c->lat_ms[i];
    }
    uint64_t dl[8], arr[8];
    double cost[8];
    for (size_t i = 0; i < c->n; i++) {
        dl[i] = c->dl_ms[i] == NONE ? NONE : c->dl_ms[i] * MS;
        arr[i] = c->arr_ms[i] * MS;
        cost[i] = c->cost > 0 ? c->cost : 1.0;
    }
    int n_pref = 0;
    while (n_pref < 3 && c->pref[n_pref])
        n_pref++;
    rt_batch_view v = {
        .now_ns = c->now_ms * MS,
        .max_batch = c->max_batch,
        .latency_ns = any ? lat : NULL,
        .rows = c->rows,
        .deadline_ns = dl,
        .arrival_ns = arr,
        .cost = cost,
        .n = c->n,
        .blocked = c->blocked,
        .slack_ns = c->slack_ms * MS,
        .max_queue_delay_ns = c->delay_ms * (int64_t)MS,
        .preferred = c->pref,
        .n_preferred = n_pref,
        .arrival_rate = c->rate,
        .replicas = c->replicas,
    };
    rt_batch_decide(&v, d);
}

TEST(batch_decide_table)
{
    for (size_t i = 0; i < sizeof decide_cases / sizeof decide_cases[0]; i++) {
        const decide_case *c = &decide_cases[i];
        rt_batch_decision d;
        run_decide(c, &d);
        uint64_t wake = c->wake_ms == NONE ? NONE : c->wake_ms * MS;
        if (d.take != c->take || d.expire != c->expire || d.wake_ns != wake)
            FAIL_("case '%s': take %zu expire %zu wake %llu, expected %zu %zu %llu", c->name,
                  d.take, d.expire, (unsigned long long)d.wake_ns, c->take, c->expire,
                  (unsigned long long)wake);
    }
}

TEST(batch_latency_lookup)
{
    uint64_t lat[9] = {0};
    ASSERT_EQ_U64(rt_batch_latency(NULL, 8, 3), 0);
    ASSERT_EQ_U64(rt_batch_latency(lat, 8, 3), 0); /* nothing known */
    lat[4] = 40;
    ASSERT_EQ_U64(rt_batch_latency(lat, 8, 2), 40);  /* a larger batch bounds it */
    ASSERT_EQ_U64(rt_batch_latency(lat, 8, 4), 40);
    ASSERT_EQ_U64(rt_batch_latency(lat, 8, 6), 80);  /* two runs of 4 */
    ASSERT_EQ_U64(rt_batch_latency(lat, 4, 9), 120); /* past max_batch: three runs of 4 */
    lat[8] = 70;
    ASSERT_EQ_U64(rt_batch_latency(lat, 8, 6), 70);
    ASSERT_EQ_U64(rt_batch_latency(lat, 8, 0), 40); /* rows below 1 count as 1 */
}

/*
 * A virtual clock drives the decision as one replica would (it decides only when idle):
 * arrivals at 0, 5, 10 and 50 ms, each with a 60 ms deadline, lat(k) = 10 + 2k ms. The
 * first leaves alone at once (an idle replica does not wait for company) and runs until
 * 12 ms; the two that queued meanwhile leave together then; the fourth leaves alone on
 * arrival. With max_queue_delay 20 ms instead, the first three wait and leave together
 * when the first has waited 20 ms, the fourth when it has.
 */
static void vclock_replay(int64_t delay_ms, const uint64_t *want_start, const size_t *want_size,
                          size_t want_batches)
{
    uint64_t lat[5] = {0, 12 * MS, 14 * MS, 16 * MS, 18 * MS};
    const uint64_t arrive[] = {0, 5 * MS, 10 * MS, 50 * MS};
    int64_t rows[4];
    uint64_t dl[4], arr[4];
    size_t head = 0, tail = 0, next = 0;
    uint64_t starts[4], sizes[4], busy_until = 0;
    size_t batches = 0;
    rt_set_clock(vclock);
    vclock_ns = 0;
    uint64_t wake = NONE;
    for (int steps = 0; steps < 100 && (next < 4 || head < tail); steps++) {
        uint64_t t_arr = next < 4 ? arrive[next] : NONE;
        uint64_t t_idle = head < tail && busy_until > vclock_ns ? busy_until : NONE;
        uint64_t t = t_arr < wake ? t_arr : wake;
        t = t_idle < t ? t_idle : t;
        vclock_ns = t > vclock_ns ? t : vclock_ns;
        if (vclock_ns == t_arr) {
            rows[tail] = 1;
            arr[tail] = arrive[next];
            dl[tail] = arrive[next] + 60 * MS;
            tail++;
            next++;
        }
        if (busy_until > vclock_ns || head == tail)
            continue; /* running: it decides when it is idle again */
        rt_batch_view v = {.now_ns = rt_now_ns(), .max_batch = 4, .latency_ns = lat,
                           .rows = rows + head, .deadline_ns = dl + head, .arrival_ns = arr + head,
                           .n = tail - head, .max_queue_delay_ns = delay_ms * (int64_t)MS};
        rt_batch_decision d;
        rt_batch_decide(&v, &d);
        ASSERT_EQ_U64(d.expire, 0);
        if (d.take) {
            starts[batches] = vclock_ns;
            sizes[batches++] = d.take;
            for (size_t j = head; j < head + d.take; j++)
                ASSERT(vclock_ns + lat[d.take] <= dl[j]); /* each finishes by its deadline */
            busy_until = vclock_ns + lat[d.take];
            head += d.take;
            wake = NONE;
        } else {
            wake = d.wake_ns;
        }
    }
    rt_set_clock(NULL);
    ASSERT_EQ_U64(batches, want_batches);
    for (size_t i = 0; i < want_batches; i++) {
        ASSERT_EQ_U64(starts[i], want_start[i]);
        ASSERT_EQ_U64(sizes[i], want_size[i]);
    }
}

TEST(batch_decide_virtual_clock)
{
    vclock_replay(0, (const uint64_t[]){0, 12 * MS, 50 * MS}, (const size_t[]){1, 2, 1}, 3);
    vclock_replay(20, (const uint64_t[]){20 * MS, 70 * MS}, (const size_t[]){3, 1}, 2);
}

/* ---- join and split ----------------------------------------------------------------------- */
static rt_request *fp32_request(int64_t rows, float base)
{
    rt_request *r = rt_request_new();
    r->n_in = 2;
    r->rows = rows;
    for (int i = 0; i < 2; i++) {
        us_tensor *t = &r->in[i];
        snprintf(t->name, sizeof t->name, "x%d", i);
        t->dtype = US_DT_FP32;
        t->shape.rank = 3;
        t->shape.dim[0] = rows;
        t->shape.dim[1] = 2;
        t->shape.dim[2] = 3 + i;
        size_t n = (size_t)rows * 2 * (size_t)(3 + i);
        t->bytes = n * sizeof(float);
        float *f = us_malloc(t->bytes);
        for (size_t k = 0; k < n; k++)
            f[k] = base + (float)i * 1000 + (float)k;
        t->data = f;
    }
    return r;
}

static void tensors_free(us_tensor *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        us_free(t[i].data);
}

TEST(batch_join_split_fp32)
{
    usher_error err = {0};
    rt_request *reqs[3] = {fp32_request(1, 0), fp32_request(2, 100), fp32_request(3, 200)};
    us_tensor joined[2];
    ASSERT_EQ_U64(rt_batch_compatible(reqs[0], 3), 1); /* ->next not linked yet */
    reqs[0]->next = reqs[1];
    reqs[1]->next = reqs[2];
    ASSERT_EQ_U64(rt_batch_compatible(reqs[0], 8), 3);
    ASSERT_EQ_U64(rt_batch_compatible(reqs[0], 2), 2);
    ASSERT_OK(rt_batch_join(reqs, 3, joined, 2, &err));
    ASSERT_EQ_INT(joined[0].shape.dim[0], 6);
    ASSERT_EQ_INT(joined[1].shape.dim[2], 4);
    ASSERT_EQ_U64(joined[1].bytes, 6 * 2 * 4 * sizeof(float));
    ASSERT_STR_EQ(joined[1].name, "x1");
    const float *j1 = joined[1].data;
    ASSERT(j1[8] == 1000 + 0 + 100); /* request 1's first element after request 0's 8 */

    /* an identity model: the outputs are the joined inputs */
    ASSERT_OK(rt_batch_split(joined, 2, reqs, 3, &err));
    for (int j = 0; j < 3; j++) {
        ASSERT_EQ_U64(reqs[j]->n_out, 2);
        for (int i = 0; i < 2; i++) {
            ASSERT_EQ_INT(reqs[j]->out[i].shape.dim[0], reqs[j]->rows);
            ASSERT_EQ_U64(reqs[j]->out[i].bytes, reqs[j]->in[i].bytes);
            ASSERT(memcmp(reqs[j]->out[i].data, reqs[j]->in[i].data, reqs[j]->in[i].bytes) == 0);
        }
    }

    /* an output with no batch dim cannot be split: nothing is left behind */
    us_tensor bad[2];
    memcpy(bad, joined, sizeof bad);
    bad[1].shape = (us_shape){2, {1, 1}};
    float one = 1;
    bad[1].data = &one;
    bad[1].bytes = sizeof one;
    for (int j = 0; j < 3; j++) {
        tensors_free(reqs[j]->out, reqs[j]->n_out);
        reqs[j]->n_out = 0;
    }
    ASSERT(rt_batch_split(bad, 2, reqs, 3, &err) == USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "not batchable");
    for (int j = 0; j < 3; j++)
        ASSERT_EQ_U64(reqs[j]->n_out, 0);
    /* a request alone takes the whole output, batch dim or not */
    ASSERT_OK(rt_batch_split(bad, 2, reqs, 1, &err));
    ASSERT_EQ_U64(reqs[0]->n_out, 2);
    ASSERT_EQ_INT(reqs[0]->out[1].shape.dim[0], 1);

    tensors_free(joined, 2);
    for (int j = 0; j < 3; j++)
        rt_request_free(reqs[j]);
}

static void put_str(uint8_t **p, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    (*p)[0] = (uint8_t)n;
    (*p)[1] = (uint8_t)(n >> 8);
    (*p)[2] = (uint8_t)(n >> 16);
    (*p)[3] = (uint8_t)(n >> 24);
    memcpy(*p + 4, s, n);
    *p += 4 + n;
}

static rt_request *bytes_request(const char *const *strs, int64_t rows)
{
    rt_request *r = rt_request_new();
    r->n_in = 1;
    r->rows = rows;
    us_tensor *t = &r->in[0];
    snprintf(t->name, sizeof t->name, "text");
    t->dtype = US_DT_BYTES;
    t->shape = (us_shape){2, {rows, 2}};
    size_t total = 0;
    for (int64_t i = 0; i < rows * 2; i++)
        total += 4 + strlen(strs[i]);
    t->data = us_malloc(total);
    t->bytes = total;
    uint8_t *p = t->data;
    for (int64_t i = 0; i < rows * 2; i++)
        put_str(&p, strs[i]);
    return r;
}

TEST(batch_join_split_bytes)
{
    usher_error err = {0};
    const char *a[] = {"", "a"};
    const char *b[] = {"hello", "wide world", "x", "longer string, of some length"};
    const char *c[] = {"z", ""};
    rt_request *reqs[3] = {bytes_request(a, 1), bytes_request(b, 2), bytes_request(c, 1)};
    us_tensor joined[1];
    ASSERT_OK(rt_batch_join(reqs, 3, joined, 1, &err));
    ASSERT_EQ_INT(joined[0].shape.dim[0], 4);
    ASSERT_EQ_U64(joined[0].bytes, reqs[0]->in[0].bytes + reqs[1]->in[0].bytes +
                                       reqs[2]->in[0].bytes);
    ASSERT_OK(us_bytes_check(joined[0].data, joined[0].bytes, 8, "joined", &err));
    ASSERT_OK(rt_batch_split(joined, 1, reqs, 3, &err));
    for (int j = 0; j < 3; j++) {
        ASSERT_EQ_U64(reqs[j]->n_out, 1);
        ASSERT_EQ_U64(reqs[j]->out[0].bytes, reqs[j]->in[0].bytes);
        ASSERT(memcmp(reqs[j]->out[0].data, reqs[j]->in[0].data, reqs[j]->in[0].bytes) == 0);
        ASSERT_EQ_INT(reqs[j]->out[0].shape.dim[0], reqs[j]->rows);
    }
    /* a BYTES output whose prefixes run short fails cleanly */
    for (int j = 0; j < 3; j++) {
        tensors_free(reqs[j]->out, 1);
        reqs[j]->n_out = 0;
    }
    us_tensor cut = joined[0];
    cut.bytes -= 3;
    ASSERT(rt_batch_split(&cut, 1, reqs, 3, &err) == USHER_ERR_INVALID);
    for (int j = 0; j < 3; j++)
        ASSERT_EQ_U64(reqs[j]->n_out, 0);
    tensors_free(joined, 1);
    for (int j = 0; j < 3; j++)
        rt_request_free(reqs[j]);
}

TEST(batch_incompatible_shapes)
{
    usher_error err = {0};
    rt_request *a = fp32_request(1, 0), *b = fp32_request(1, 10), *c = fp32_request(2, 20);
    /* c's second input has another non-batch dim */
    c->in[1].shape.dim[2] = 5;
    c->in[1].bytes = 2 * 2 * 5 * sizeof(float);
    c->in[1].data = us_realloc(c->in[1].data, c->in[1].bytes);
    memset(c->in[1].data, 0, c->in[1].bytes);
    a->next = b;
    b->next = c;
    ASSERT_EQ_U64(rt_batch_compatible(a, 8), 2); /* the caller batches a and b only */
    ASSERT_EQ_U64(rt_batch_compatible(c, 8), 1);
    ASSERT_EQ_U64(rt_batch_compatible(NULL, 8), 0);
    rt_request *all[3] = {a, b, c};
    us_tensor joined[2];
    size_t live = us_alloc_live_bytes();
    ASSERT(rt_batch_join(all, 3, joined, 2, &err) == USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "only the batch dim may differ");
    ASSERT_EQ_U64(us_alloc_live_bytes(), live); /* the first input's join was undone */
    /* another dtype */
    b->in[0].dtype = US_DT_INT32;
    ASSERT_EQ_U64(rt_batch_compatible(a, 8), 1);
    ASSERT(rt_batch_join(all, 2, joined, 2, &err) == USHER_ERR_INVALID);
    /* data that does not match its shape */
    b->in[0].dtype = US_DT_FP32;
    b->in[0].bytes -= 4;
    ASSERT(rt_batch_join(all, 2, joined, 2, &err) == USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "bytes of data");
    b->in[0].bytes += 4;
    ASSERT_OK(rt_batch_join(all, 2, joined, 2, &err));
    tensors_free(joined, 2);
    rt_request_free(a);
    rt_request_free(b);
    rt_request_free(c);
}

/* ---- served models ------------------------------------------------------------------------ */
static const char *usher_bin(void)
{
    const char *b = getenv("USHER_BIN");
    return b && *b && access(b, X_OK) == 0 ? b : NULL;
}

static const char *silero_path(void)
{
    static const char *const names[] = {"silero_vad_v4.onnx", "silero_vad_legacy.onnx"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *p = test_path(test_deps_dir(), "ricky0123-vad-web/package/dist");
        p = test_path(p, names[i]);
        if (access(p, R_OK) == 0)
            return p;
    }
    return NULL;
}

/* resnet18 with random weights, converted once per test run */
static const char *resnet_path(void)
{
    static char path[1024];
    if (path[0])
        return path;
    const char *bin = usher_bin();
    if (!bin)
        return NULL;
    snprintf(path, sizeof path, "%s/resnet18-random.onnx", test_tmpdir());
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' convert '%s/models/zoo/resnet18.onnx' '%s' --fill-random 1 "
             ">/dev/null 2>&1", bin, test_source_dir(), path);
    if (system(cmd) != 0 || access(path, R_OK) != 0) {
        fprintf(stderr, "  (could not make %s: %s)\n", path, cmd);
        path[0] = 0;
        return NULL;
    }
    return path;
}

/* Can a worker run here at all? Checked once: the served tests skip with a note if not. */
static bool workers_usable(void)
{
    static int known = -1;
    if (known >= 0)
        return known;
    known = 0;
    const char *bin = usher_bin(), *model = silero_path();
    if (!bin || !model) {
        fprintf(stderr, "  (skipped: %s)\n", bin ? "no silero VAD model under USHER_TEST_DEPS"
                                                 : "USHER_BIN not set or not executable");
        return false;
    }
    rt_worker_opts o = {.exe = bin, .model_path = model, .be = be_default_options()};
    rt_worker *w = NULL;
    usher_error err = {0};
    if (rt_worker_start(&o, &w, &err) != 0) {
        fprintf(stderr, "  (skipped: no worker: %s)\n", err.msg);
        return false;
    }
    rt_worker_stop(w, SEC);
    known = 1;
    return true;
}

static uint64_t mix(uint64_t *s) { return test_splitmix(s); }
static float frand(uint64_t *s) { return (float)((mix(s) >> 40) & 0xffff) / 65536.0f - 0.5f; }

static void set_fp32(us_tensor *t, const char *name, us_shape shape, uint64_t seed, float scale)
{
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = US_DT_FP32;
    t->shape = shape;
    uint64_t n = 1;
    for (int d = 0; d < shape.rank; d++)
        n *= (uint64_t)shape.dim[d];
    t->bytes = n * sizeof(float);
    float *f = us_malloc(t->bytes ? t->bytes : 1);
    for (uint64_t k = 0; k < n; k++)
        f[k] = frand(&seed) * scale;
    t->data = f;
}

/* One model's request maker: unique inputs from id. */
typedef struct model_kind {
    const char *name;
    const char *path;
    int max_batch;
    bool has_batch_dim;
    be_io in[RT_MAX_IO];
    size_t n_in;
    int64_t (*rows_of)(int id);
    void (*make)(const struct model_kind *k, rt_request *r, int id);
    float tol;               /* relative tolerance against the direct run; 0: bit-exact */
    bool one_per_batch;      /* the model cannot be batched: expect a batch per request */
    uint64_t direct_ns;      /* the fastest direct run of request 0 (direct_runs) */
    int replicas;            /* serve_and_check's; 0: 2 */
    uint64_t spacing_ns;     /* serve_and_check: between one thread's submits (0: none) */
    bool run_inline;         /* submitters run requests that find the model idle (a latency
                                table of 4 x the direct run, inline_max_ns 8 x) */
} model_kind;

static int64_t one_row(int id) { return 1; }
static int64_t mixed_rows(int id) { return id % 3 == 0 ? 2 : 1; }

static void make_silero(const model_kind *k, rt_request *r, int id)
{
    uint64_t seed = 1000 + (uint64_t)id;
    r->n_in = k->n_in;
    r->rows = 1;
    for (size_t i = 0; i < k->n_in; i++) {
        const be_io *d = &k->in[i];
        us_tensor *t = &r->in[i];
        if (d->dtype == US_DT_INT64) { /* sr: the sample rate */
            snprintf(t->name, sizeof t->name, "%s", d->name);
            t->dtype = US_DT_INT64;
            t->shape = d->shape;
            t->bytes = 8;
            int64_t *v = us_malloc(8);
            *v = 16000;
            t->data = v;
            continue;
        }
        us_shape s = d->shape;
        for (int j = 0; j < s.rank; j++)
            if (s.dim[j] < 0)
                s.dim[j] = j == s.rank - 1 && s.rank == 2 ? 512 : 1;
        set_fp32(t, d->name, s, seed * 31 + i, s.rank == 2 ? 1.0f : 0.2f);
    }
}

static void make_resnet(const model_kind *k, rt_request *r, int id)
{
    int64_t rows = k->rows_of(id);
    r->n_in = 1;
    r->rows = rows;
    us_shape s = k->in[0].shape;
    s.dim[0] = rows;
    set_fp32(&r->in[0], k->in[0].name, s, 5000 + (uint64_t)id, 2.0f);
}

typedef struct expected {
    us_tensor out[RT_MAX_IO];
    size_t n_out;
} expected;

/* Direct single-request runs on a worker of our own: what each request must get back. */
static bool direct_runs(model_kind *k, int n, expected *want)
{
    rt_worker_opts o = {.exe = usher_bin(), .model_path = k->path, .be = be_default_options()};
    o.be.intra_threads = 1;
    rt_worker *w = NULL;
    usher_error err = {0};
    if (rt_worker_start(&o, &w, &err) != 0) {
        fprintf(stderr, "  worker for %s: %s\n", k->path, err.msg);
        return false;
    }
    const be_io *in, *out;
    size_t n_in;
    rt_worker_io(w, &in, &n_in, &out);
    k->n_in = n_in;
    memcpy(k->in, in, n_in * sizeof *in);
    bool ok = true;
    k->direct_ns = UINT64_MAX;
    for (int rep = 0; rep < 2 && n > 0 && !want; rep++) { /* timing only */
        rt_request *r = rt_request_new();
        k->make(k, r, 0);
        us_tensor got[RT_MAX_IO];
        size_t n_got = 0;
        uint64_t t0 = rt_now_ns();
        ok = rt_worker_run(w, r->in, r->n_in, got, &n_got, 60 * SEC, &err) == 0;
        uint64_t t = rt_now_ns() - t0;
        k->direct_ns = t < k->direct_ns ? t : k->direct_ns;
        tensors_free(got, n_got);
        rt_request_free(r);
    }
    for (int id = 0; id < n && ok && want; id++) {
        rt_request *r = rt_request_new();
        k->make(k, r, id);
        uint64_t t0 = rt_now_ns();
        if (rt_worker_run(w, r->in, r->n_in, want[id].out, &want[id].n_out, 60 * SEC, &err)) {
            fprintf(stderr, "  direct run %d: %s\n", id, err.msg);
            ok = false;
        }
        uint64_t t = rt_now_ns() - t0;
        k->direct_ns = t < k->direct_ns ? t : k->direct_ns;
        rt_request_free(r);
    }
    rt_worker_stop(w, SEC);
    return ok;
}

static void expected_free(expected *want, int n)
{
    for (int i = 0; i < n; i++)
        tensors_free(want[i].out, want[i].n_out);
}

/* Does out hold the same tensor as want (within a relative tolerance for floats)? */
static bool same_tensor(const us_tensor *out, const us_tensor *want, float tol)
{
    if (out->dtype != want->dtype || out->bytes != want->bytes ||
        out->shape.rank != want->shape.rank || strcmp(out->name, want->name) != 0)
        return false;
    for (int d = 0; d < out->shape.rank; d++)
        if (out->shape.dim[d] != want->shape.dim[d])
            return false;
    if (tol == 0 || out->dtype != US_DT_FP32)
        return memcmp(out->data, want->data, out->bytes) == 0;
    const float *a = out->data, *b = want->data;
    float scale = 1e-6f;
    for (size_t i = 0; i < out->bytes / 4; i++)
        scale = fabsf(b[i]) > scale ? fabsf(b[i]) : scale;
    for (size_t i = 0; i < out->bytes / 4; i++)
        if (fabsf(a[i] - b[i]) > tol * scale)
            return false;
    return true;
}

/* The client's ledger: every callback, by request id. */
#define LEDGER_MAX 1024
typedef struct ledger {
    atomic_int answers[LEDGER_MAX];
    atomic_int outcome[LEDGER_MAX];
    atomic_int by_outcome[RT_OUTCOME_COUNT];
    atomic_int wrong_output;
    atomic_int total;
    const expected *want;
    float tol;
    pthread_mutex_t mu;
    char first_msg[RT_OUTCOME_COUNT][256];
} ledger;

typedef struct slot {
    ledger *L;
    int id;
    uint64_t at; /* when it was answered */
} slot;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void ledger_init(ledger *L, const expected *want, float tol)
{
    memset(L, 0, sizeof *L);
    L->want = want;
    L->tol = tol;
    pthread_mutex_init(&L->mu, NULL);
}

static void on_done(rt_request *r, rt_outcome o, const char *msg, void *ctx)
{
    slot *s = ctx;
    s->at = rt_now_ns();
    ledger *L = s->L;
    atomic_fetch_add(&L->answers[s->id], 1);
    atomic_store(&L->outcome[s->id], (int)o);
    atomic_fetch_add(&L->by_outcome[o], 1);
    if (o == RT_OK && L->want) {
        const expected *e = &L->want[s->id];
        bool ok = r->n_out == e->n_out;
        for (size_t i = 0; ok && i < r->n_out; i++)
            ok = same_tensor(&r->out[i], &e->out[i], L->tol);
        if (!ok)
            atomic_fetch_add(&L->wrong_output, 1);
    }
    pthread_mutex_lock(&L->mu);
    if (!L->first_msg[o][0])
        snprintf(L->first_msg[o], sizeof L->first_msg[o], "%s", msg ? msg : "(null)");
    pthread_mutex_unlock(&L->mu);
    rt_request_free(r); /* the callback may free its request: the runtime must not touch it */
    atomic_fetch_add(&L->total, 1);
}

static bool wait_answers(ledger *L, int n, uint64_t timeout_ns)
{
    uint64_t end = rt_now_ns() + timeout_ns;
    while (atomic_load(&L->total) < n && rt_now_ns() < end)
        usleep(1000);
    return atomic_load(&L->total) >= n;
}

/* LEDGER-2 from the side, every millisecond while a load runs */
typedef struct sampler {
    rt_model *m;
    atomic_int stop;
    int samples, violations;
    rt_model_stats bad;
} sampler;

static bool ledger2_holds(const rt_model_stats *s)
{
    uint64_t sum = 0;
    for (int o = 0; o < RT_OUTCOME_COUNT; o++)
        sum += s->outcome[o];
    return s->received == sum + s->in_flight && s->in_flight >= s->queued;
}

static void *sampler_main(void *arg)
{
    sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        rt_model_stats st;
        rt_model_get_stats(s->m, &st);
        s->samples++;
        if (!ledger2_holds(&st)) {
            s->violations++;
            s->bad = st;
        }
        usleep(1000);
    }
    return NULL;
}

/* n requests from `threads` threads, as fast as they can submit */
typedef struct load {
    rt_model *m;
    const model_kind *k;
    ledger *L;
    slot *slots;
    int n;
    atomic_int next;
    atomic_int accepted;
    uint64_t spacing_ns; /* between one thread's submits; 0: none */
} load;

static void *submitter(void *arg)
{
    load *ld = arg;
    for (;;) {
        int id = atomic_fetch_add(&ld->next, 1);
        if (id >= ld->n)
            break;
        rt_request *r = rt_request_new();
        ld->k->make(ld->k, r, id);
        ld->slots[id] = (slot){ld->L, id, 0};
        r->done = on_done;
        r->ctx = &ld->slots[id];
        if (rt_submit(ld->m, r) == RT_OK)
            atomic_fetch_add(&ld->accepted, 1);
        if (ld->spacing_ns)
            usleep((useconds_t)(ld->spacing_ns / 1000));
    }
    return NULL;
}

static void run_load(load *ld, int threads)
{
    pthread_t th[16];
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, submitter, ld);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
}

static rt_model_cfg *model_cfg(const model_kind *k, int replicas)
{
    rt_model_cfg *c = calloc(1, sizeof *c); /* 32 KiB of latency table: not on the stack */
    snprintf(c->name, sizeof c->name, "%s", k->name);
    snprintf(c->path, sizeof c->path, "%s", k->path);
    c->max_batch = k->max_batch;
    c->has_batch_dim = k->has_batch_dim;
    c->default_timeout_ns = 60 * SEC;
    c->replicas = replicas;
    c->be = be_default_options();
    c->be.intra_threads = 1;
    return c;
}

static bool wait_ready(rt_model *m, int replicas, uint64_t timeout_ns)
{
    uint64_t end = rt_now_ns() + timeout_ns;
    for (;;) {
        rt_model_stats st;
        rt_model_get_stats(m, &st);
        if (st.replicas_ready >= replicas)
            return true;
        if (rt_now_ns() > end)
            return false;
        usleep(2000);
    }
}

static model_kind silero_kind(void)
{
    return (model_kind){.name = "silero", .path = silero_path(), .max_batch = 1,
                        .has_batch_dim = false, .rows_of = one_row, .make = make_silero};
}

static model_kind resnet_kind(void)
{
    return (model_kind){.name = "resnet18", .path = resnet_path(), .max_batch = 8,
                        .has_batch_dim = true, .rows_of = mixed_rows, .make = make_resnet,
                        .tol = 1e-4f};
}

/* The load test behind both models: n requests from 8 threads, 2 replicas. */
static void serve_and_check(model_kind *k, int n, int *failed)
{
    *failed = 1;
    expected *want = calloc((size_t)n, sizeof *want);
    ledger *L = malloc(sizeof *L);
    slot *slots = calloc((size_t)n, sizeof *slots);
    rt_model_cfg *c = NULL;
    rt_model *m = NULL;
    usher_error err = {0};
    if (!direct_runs(k, n, want))
        goto out;
    ledger_init(L, want, k->tol);
    int replicas = k->replicas ? k->replicas : 2;
    c = model_cfg(k, replicas);
    c->queue_capacity = 1024;
    if (k->run_inline) {
        for (int b = 1; b <= k->max_batch; b++)
            c->latency_ns[b] = 4 * k->direct_ns * (uint64_t)b;
        c->inline_max_ns = 8 * k->direct_ns;
    }
    if (rt_model_new(c, usher_bin(), &m, &err) != 0) {
        fprintf(stderr, "  rt_model_new: %s\n", err.msg);
        goto out;
    }
    if (!wait_ready(m, replicas, 60 * SEC)) {
        fprintf(stderr, "  %s: replicas not ready in 60 s\n", k->name);
        goto out;
    }
    sampler smp = {.m = m};
    pthread_t st;
    pthread_create(&st, NULL, sampler_main, &smp);
    load ld = {.m = m, .k = k, .L = L, .slots = slots, .n = n, .spacing_ns = k->spacing_ns};
    uint64_t t0 = rt_now_ns();
    run_load(&ld, 8);
    bool all = wait_answers(L, n, 120 * SEC);
    uint64_t t1 = rt_now_ns();
    atomic_store(&smp.stop, 1);
    pthread_join(st, NULL);
    rt_model_stats s;
    rt_model_get_stats(m, &s);
    printf("  %s: %d requests in %.0f ms, %llu batches (mean %.2f rows), queue %.2f ms and "
           "compute %.2f ms per request, %d LEDGER-2 samples\n", k->name, n, (double)(t1 - t0) / 1e6,
           (unsigned long long)s.batches, s.batches ? (double)s.batch_rows / (double)s.batches : 0,
           s.outcome[RT_OK] ? (double)s.queue_ns / 1e6 / (double)s.outcome[RT_OK] : 0,
           s.outcome[RT_OK] ? (double)s.compute_ns / 1e6 / (double)s.outcome[RT_OK] : 0,
           smp.samples);
    if (k->run_inline)
        printf("  %llu batches run by their submitter, %llu of them handed to the replica\n",
               (unsigned long long)s.inline_runs, (unsigned long long)s.inline_handoffs);
    if (!all) {
        fprintf(stderr, "  only %d of %d answered\n", atomic_load(&L->total), n);
        goto out;
    }
    int once = 0;
    for (int i = 0; i < n; i++)
        once += atomic_load(&L->answers[i]) == 1;
    if (once != n || atomic_load(&L->by_outcome[RT_OK]) != n || atomic_load(&L->wrong_output)) {
        fprintf(stderr, "  answered once %d/%d, ok %d, wrong outputs %d\n", once, n,
                atomic_load(&L->by_outcome[RT_OK]), atomic_load(&L->wrong_output));
        for (int o = 1; o < RT_OUTCOME_COUNT; o++)
            if (atomic_load(&L->by_outcome[o]))
                fprintf(stderr, "  %d %s, the first: %s\n", atomic_load(&L->by_outcome[o]),
                        rt_outcome_name((rt_outcome)o), L->first_msg[o]);
        goto out;
    }
    if (smp.violations || s.in_flight || s.queued || s.started_late || s.received != (uint64_t)n ||
        !ledger2_holds(&s)) {
        fprintf(stderr, "  LEDGER-2 violations %d (received %llu in flight %llu queued %llu), "
                "started late %llu\n", smp.violations, (unsigned long long)smp.bad.received,
                (unsigned long long)smp.bad.in_flight, (unsigned long long)smp.bad.queued,
                (unsigned long long)s.started_late);
        goto out;
    }
    if (k->max_batch > 1 && !k->one_per_batch && s.batches >= (uint64_t)n) {
        fprintf(stderr, "  no batching happened: %llu batches\n", (unsigned long long)s.batches);
        goto out;
    }
    if (k->one_per_batch && s.batches != (uint64_t)n) {
        fprintf(stderr, "  %llu batches for %d requests of an unbatchable model\n",
                (unsigned long long)s.batches, n);
        goto out;
    }
    *failed = 0;
out:
    rt_model_free(m, 10 * SEC);
    free(c);
    if (want)
        expected_free(want, n);
    free(want);
    free(slots);
    free(L);
}

/* rt_request_cancel: requests cancelled while queued are answered RT_CANCELLED exactly once
 * and never run (one replica, 40 requests submitted at once, 30 of them cancelled at once);
 * rt_model_batch_stats counts the runs that did happen */
typedef struct cancel_slot {
    atomic_int answers, outcome;
} cancel_slot;

static void cancel_done(rt_request *r, rt_outcome o, const char *msg, void *ctx)
{
    cancel_slot *cs = ctx;
    atomic_store(&cs->outcome, (int)o);
    atomic_fetch_add(&cs->answers, 1); /* r is freed by the test once all are answered */
}

TEST(serve_cancel_queued_requests)
{
    if (!workers_usable())
        return;
    enum { N = 40, KEEP = 10 };
    model_kind k = silero_kind();
    expected *want = calloc(N, sizeof *want);
    ASSERT(want && direct_runs(&k, N, want));
    rt_model_cfg *c = model_cfg(&k, 1);
    c->queue_capacity = 1024;
    rt_model *m = NULL;
    usher_error err = {0};
    ASSERT_OK(rt_model_new(c, usher_bin(), &m, &err));
    ASSERT(wait_ready(m, 1, 60 * SEC));
    static rt_request *r[N];
    static cancel_slot cs[N];
    for (int i = 0; i < N; i++) {
        r[i] = rt_request_new();
        ASSERT(r[i]);
        k.make(&k, r[i], i);
        r[i]->done = cancel_done;
        r[i]->ctx = &cs[i];
        ASSERT_EQ_INT(rt_submit(m, r[i]), RT_OK);
    }
    for (int i = KEEP; i < N; i++)
        rt_request_cancel(r[i]);
    uint64_t end = rt_now_ns() + 30 * SEC;
    int answered = 0;
    while (rt_now_ns() < end) {
        answered = 0;
        for (int i = 0; i < N; i++)
            answered += atomic_load(&cs[i].answers) > 0;
        if (answered == N)
            break;
        usleep(1000);
    }
    ASSERT_EQ_INT(answered, N);
    int ok = 0, cancelled = 0, once = 0;
    for (int i = 0; i < N; i++) {
        once += atomic_load(&cs[i].answers) == 1;
        int o = atomic_load(&cs[i].outcome);
        ok += o == RT_OK;
        cancelled += o == RT_CANCELLED;
        if (i < KEEP)
            ASSERT_EQ_INT(o, RT_OK); /* not cancelled: run */
    }
    ASSERT_EQ_INT(once, N);
    ASSERT_EQ_INT(ok + cancelled, N);
    ASSERT(cancelled >= 1);
    rt_model_stats st;
    rt_model_get_stats(m, &st);
    ASSERT_EQ_U64(st.outcome[RT_CANCELLED], (uint64_t)cancelled);
    ASSERT_EQ_U64(st.outcome[RT_OK], (uint64_t)ok);
    ASSERT_EQ_U64(st.batches, (uint64_t)ok); /* the cancelled ones never ran */
    ASSERT(ledger2_holds(&st) && st.in_flight == 0);
    rt_batch_stat bs[4];
    ASSERT_EQ_U64(rt_model_batch_stats(m, bs, 4), 1);
    ASSERT_EQ_INT(bs[0].rows, 1);
    ASSERT_EQ_U64(bs[0].runs, (uint64_t)ok);
    ASSERT(bs[0].run_ns > 0 && bs[0].run_ns <= st.compute_ns);
    printf("  %d of %d cancelled while queued, %d ran\n", cancelled, N - KEEP, ok);
    rt_model_free(m, 10 * SEC);
    for (int i = 0; i < N; i++)
        rt_request_free(r[i]);
    free(c);
    expected_free(want, N);
    free(want);
}

TEST(serve_silero_500_requests_8_threads)
{
    if (!workers_usable())
        return;
    model_kind k = silero_kind();
    int failed;
    serve_and_check(&k, 500, &failed);
    ASSERT(!failed);
}

/* the same with the submitters running requests that find the model idle, on one replica
 * and on two: every request answered once, correctly, LEDGER-2 throughout */
TEST(serve_silero_inline_runs)
{
    if (!workers_usable())
        return;
    for (int replicas = 1; replicas <= 2; replicas++) {
        model_kind k = silero_kind();
        k.replicas = replicas;
        k.run_inline = true;
        k.spacing_ns = 2 * MS; /* often idle: most requests run inline, some queue */
        int failed;
        serve_and_check(&k, 400, &failed);
        ASSERT(!failed);
    }
}

/* silero's state inputs have a fixed dim 0 (h, c: [2, batch, 64]) and its output is [1, 1]:
 * configured with max_batch 4 it is still served one request per batch, correctly. */
TEST(serve_unbatchable_model_one_per_batch)
{
    if (!workers_usable())
        return;
    model_kind k = silero_kind();
    k.has_batch_dim = true;
    k.max_batch = 4;
    k.one_per_batch = true;
    int failed;
    serve_and_check(&k, 60, &failed);
    ASSERT(!failed);
}

TEST(serve_resnet18_batched)
{
    if (!workers_usable() || !resnet_path())
        return;
    model_kind k = resnet_kind();
    int failed;
    serve_and_check(&k, 60, &failed);
    ASSERT(!failed);
}

/* Not ready yet, a model that never loads, inputs that do not match. */
TEST(serve_unavailable_and_invalid)
{
    if (!workers_usable())
        return;
    usher_error err = {0};
    ledger *L = malloc(sizeof *L);
    ledger_init(L, NULL, 0);
    slot slots[8];
    model_kind k = silero_kind();
    ASSERT(direct_runs(&k, 0, NULL));

    /* a model file that does not exist: never ready, answered 503 at once */
    model_kind bad = k;
    bad.path = "/nonexistent/model.onnx";
    rt_model_cfg *c = model_cfg(&bad, 1);
    rt_model *m = NULL;
    ASSERT_OK(rt_model_new(c, usher_bin(), &m, &err));
    rt_request *r = rt_request_new();
    k.make(&k, r, 0);
    slots[0] = (slot){L, 0, 0};
    r->done = on_done;
    r->ctx = &slots[0];
    ASSERT_EQ_INT(rt_submit(m, r), RT_UNAVAILABLE);
    ASSERT_EQ_INT(atomic_load(&L->answers[0]), 1); /* the callback ran before rt_submit returned */
    ASSERT_CONTAINS(L->first_msg[RT_UNAVAILABLE], "not ready");
    ASSERT(!rt_model_ready(m));
    const be_io *in, *out;
    size_t n_in = 99, n_out = 99;
    ASSERT(!rt_model_io(m, &in, &n_in, &out, &n_out));
    uint64_t t0 = rt_now_ns();
    rt_model_free(m, SEC);
    ASSERT((rt_now_ns() - t0) < 5 * SEC);
    free(c);

    /* a good model, inputs that do not match it */
    c = model_cfg(&k, 1);
    ASSERT_OK(rt_model_new(c, usher_bin(), &m, &err));
    ASSERT(wait_ready(m, 1, 60 * SEC));
    ASSERT(rt_model_ready(m));
    ASSERT(rt_model_io(m, &in, &n_in, &out, &n_out));
    ASSERT_EQ_U64(n_in, k.n_in);
    ASSERT_EQ_U64(n_out, 3);
    ASSERT_STR_EQ(in[0].name, k.in[0].name);
    ASSERT_STR_EQ(rt_model_config(m)->name, "silero");
    ASSERT(rt_model_config(m)->queue_capacity >= 2);
    struct {
        const char *what;
        int how;
    } cases[] = {{"is FP64", 0}, {"has shape", 1}, {"the model's is", 2}, {"takes 4 inputs", 3},
                 {"bytes of data", 4}};
    for (int i = 0; i < 5; i++) {
        r = rt_request_new();
        k.make(&k, r, 1 + i);
        if (cases[i].how == 0)
            r->in[0].dtype = US_DT_FP64;
        else if (cases[i].how == 1)
            r->in[0].shape.rank = 3;
        else if (cases[i].how == 2)
            snprintf(r->in[0].name, sizeof r->in[0].name, "wrong");
        else if (cases[i].how == 3) {
            us_free(r->in[3].data); /* 3 inputs where the model takes 4 */
            r->n_in = 3;
        } else
            r->in[0].bytes -= 4;
        slots[1 + i] = (slot){L, 1 + i, 0};
        r->done = on_done;
        r->ctx = &slots[1 + i];
        ASSERT_EQ_INT(rt_submit(m, r), RT_INVALID);
        ASSERT_CONTAINS(L->first_msg[RT_INVALID], cases[i].what);
        L->first_msg[RT_INVALID][0] = 0;
    }
    /* a deadline already past: rejected at once, even with no latency predicted */
    r = rt_request_new();
    k.make(&k, r, 6);
    slots[6] = (slot){L, 6, 0};
    r->done = on_done;
    r->ctx = &slots[6];
    r->deadline_ns = rt_now_ns() - 1;
    ASSERT_EQ_INT(rt_submit(m, r), RT_REJECTED);
    ASSERT_CONTAINS(L->first_msg[RT_REJECTED], "deadline cannot be met");
    rt_model_stats s;
    rt_model_get_stats(m, &s);
    ASSERT_EQ_U64(s.received, 6);
    ASSERT_EQ_U64(s.outcome[RT_INVALID], 5);
    ASSERT_EQ_U64(s.outcome[RT_REJECTED], 1);
    ASSERT(ledger2_holds(&s));
    rt_model_free(m, SEC);
    free(c);
    free(L);
}

/*
 * OVER-1: five times what the queue holds, at once: the excess is rejected immediately,
 * without waiting on the replica, and every request is answered once.
 */
TEST(serve_overload_rejects_at_once)
{
    if (!workers_usable() || !resnet_path())
        return;
    usher_error err = {0};
    model_kind k = resnet_kind();
    k.rows_of = one_row;
    k.max_batch = 4;
    ASSERT(direct_runs(&k, 0, NULL));
    rt_model_cfg *c = model_cfg(&k, 1);
    c->queue_capacity = 16;
    rt_model *m = NULL;
    ASSERT_OK(rt_model_new(c, usher_bin(), &m, &err));
    ASSERT(wait_ready(m, 1, 60 * SEC));
    enum { N = 80 };
    ledger *L = malloc(sizeof *L);
    ledger_init(L, NULL, 0);
    slot slots[N];
    rt_request *reqs[N];
    for (int i = 0; i < N; i++) { /* built beforehand: the timing is rt_submit's alone */
        reqs[i] = rt_request_new();
        k.make(&k, reqs[i], i);
        slots[i] = (slot){L, i, 0};
        reqs[i]->done = on_done;
        reqs[i]->ctx = &slots[i];
    }
    uint64_t lat[N];
    int rejected = 0, nrej = 0, late_answers = 0;
    for (int i = 0; i < N; i++) {
        uint64_t t0 = rt_now_ns();
        rt_outcome o = rt_submit(m, reqs[i]);
        if (o == RT_REJECTED) {
            /* the front end's view: from the call to the answer (the callback) */
            lat[nrej++] = slots[i].at - t0;
            rejected++;
            late_answers += atomic_load(&L->answers[i]) != 1; /* answered before the return */
        }
    }
    bool all = wait_answers(L, N, 120 * SEC);
    rt_model_stats s;
    rt_model_get_stats(m, &s);
    rt_model_free(m, SEC);
    free(c);
    /* checked once the model is gone: a failed check must not leave it answering into slots */
    ASSERT(all);
    ASSERT_EQ_INT(late_answers, 0);
    /* at most one batch left the queue during the burst */
    ASSERT(rejected >= N - 16 - 4);
    ASSERT_CONTAINS(L->first_msg[RT_REJECTED], "queue full (16 requests)");
    for (int i = 0; i < N; i++)
        ASSERT_EQ_INT(atomic_load(&L->answers[i]), 1);
    ASSERT_EQ_INT(atomic_load(&L->by_outcome[RT_OK]) + rejected, N);
    ASSERT(ledger2_holds(&s));
    ASSERT_EQ_U64(s.in_flight, 0);
    qsort(lat, (size_t)nrej, sizeof lat[0], cmp_u64);
    printf("  rejection latency over %d rejections: p50 %.1f us, p99 %.1f us, max %.1f us\n",
           nrej, (double)lat[nrej / 2] / 1e3, (double)lat[(nrej * 99) / 100] / 1e3,
           (double)lat[nrej - 1] / 1e3);
    /* OVER-1: p99 <= 5 ms. The bound here is loose for sanitizer builds on a busy 2-core
     * machine (the replica's worker runs ResNet on the other core meanwhile). */
    ASSERT(lat[nrej / 2] < 1 * MS);
    ASSERT(lat[(nrej * 99) / 100] < 50 * MS);
    free(L);
}

/*
 * Deadlines: with a predicted latency, admission rejects what cannot finish in time, and a
 * few requests close to each other leave as one batch at the last moment their earliest
 * deadline allows, all answered before their deadlines.
 */
TEST(serve_deadlines)
{
    if (!workers_usable() || !resnet_path())
        return;
    usher_error err = {0};
    model_kind k = resnet_kind();
    k.rows_of = one_row;
    expected want[4];
    memset(want, 0, sizeof want);
    ASSERT(direct_runs(&k, 4, want));
    rt_model_cfg *c = model_cfg(&k, 1);
    c->default_timeout_ns = 1500 * MS;
    c->max_queue_delay_ns = 1400 * MS; /* waiting asked for: the deadline ends it first */
    for (int b = 1; b <= k.max_batch; b++)
        c->latency_ns[b] = (uint64_t)(150 + 60 * b) * MS; /* generous: a 2-core machine */
    rt_model *m = NULL;
    ASSERT_OK(rt_model_new(c, usher_bin(), &m, &err));
    ASSERT(wait_ready(m, 1, 60 * SEC));
    ledger *L = malloc(sizeof *L);
    ledger_init(L, want, k.tol);
    slot slots[8];

    /* a deadline shorter than the predicted run: rejected at once, saying why */
    rt_request *r = rt_request_new();
    k.make(&k, r, 0);
    slots[7] = (slot){L, 7, 0};
    r->done = on_done;
    r->ctx = &slots[7];
    r->deadline_ns = rt_now_ns() + 100 * MS;
    ASSERT_EQ_INT(rt_submit(m, r), RT_REJECTED);
    ASSERT_CONTAINS(L->first_msg[RT_REJECTED], "deadline cannot be met");
    ASSERT_CONTAINS(L->first_msg[RT_REJECTED], "deadline in");

    /* three requests 20 ms apart, with a queue delay of 1400 ms asked for: one batch,
     * dispatched ~(1500 - lat(3) - slack) ms after the first arrived, before the delay */
    uint64_t t0 = rt_now_ns(), dl[3];
    for (int i = 0; i < 3; i++) {
        r = rt_request_new();
        k.make(&k, r, i);
        slots[i] = (slot){L, i, 0};
        r->done = on_done;
        r->ctx = &slots[i];
        ASSERT_EQ_INT(rt_submit(m, r), RT_OK);
        dl[i] = t0 + (uint64_t)i * 20 * MS + 1500 * MS; /* approximately: checked loosely */
        usleep(20000);
    }
    ASSERT(wait_answers(L, 4, 30 * SEC));
    uint64_t done = rt_now_ns();
    rt_model_stats s;
    rt_model_get_stats(m, &s);
    for (int o = 1; o < RT_OUTCOME_COUNT; o++)
        if (s.outcome[o] && o != RT_REJECTED)
            fprintf(stderr, "  %llu %s, the first: %s\n", (unsigned long long)s.outcome[o],
                    rt_outcome_name((rt_outcome)o), L->first_msg[o]);
    ASSERT_EQ_U64(s.outcome[RT_OK], 3);
    ASSERT_EQ_U64(s.batches, 1);
    ASSERT_EQ_U64(s.batch_rows, 3);
    ASSERT_EQ_U64(s.started_late, 0);
    ASSERT_EQ_INT(atomic_load(&L->wrong_output), 0);
    /* it waited for the batch to fill until close to the earliest deadline, then made it */
    ASSERT(done - t0 >= 1500 * MS - 330 * MS - 50 * MS);
    ASSERT(done <= dl[0] + 100 * MS);
    printf("  3 requests answered as one batch %.0f ms after the first arrived (deadline "
           "1500 ms)\n", (double)(done - t0) / 1e6);
    rt_model_free(m, SEC);
    free(c);
    expected_free(want, 4);
    free(L);
}

/*
 * A request's predicted cost counts every dynamic dim, not only the batch (issue 10):
 * Silero takes input [1, N]; with the latency given for N = 512 (2 ms, this test's own
 * figure), a request of N = 51,200 is predicted at 100 x 2 ms and refused at once for a
 * 50 ms deadline, naming the prediction, while N = 512 is admitted and runs.
 */
TEST(serve_cost_counts_every_dim)
{
    if (!workers_usable() || !silero_path())
        return;
    model_kind k = silero_kind();
    expected want[1];
    memset(want, 0, sizeof want);
    ASSERT(direct_runs(&k, 1, want)); /* fills k.in */
    size_t audio = k.n_in;
    for (size_t i = 0; i < k.n_in; i++)
        if (k.in[i].shape.rank == 2 && k.in[i].dtype == US_DT_FP32)
            audio = i;
    ASSERT(audio < k.n_in);
    usher_error err = {0};
    rt_model_cfg *c = model_cfg(&k, 1);
    c->default_timeout_ns = 50 * MS;
    c->latency_ns[1] = 2 * MS;
    c->ref_elems[audio] = 512;
    rt_model *m = NULL;
    ASSERT_OK(rt_model_new(c, usher_bin(), &m, &err));
    ASSERT(wait_ready(m, 1, 60 * SEC));
    ledger *L = malloc(sizeof *L);
    ledger_init(L, want, k.tol);
    slot slots[2] = {{L, 0, 0}, {L, 0, 0}};

    rt_request *r = rt_request_new();
    k.make(&k, r, 0);
    us_shape sh = r->in[audio].shape;
    sh.dim[1] = 51200;
    us_free(r->in[audio].data);
    set_fp32(&r->in[audio], k.in[audio].name, sh, 7, 1.0f);
    r->done = on_done;
    r->ctx = &slots[0];
    ASSERT_EQ_INT(rt_submit(m, r), RT_REJECTED);
    ASSERT_CONTAINS(L->first_msg[RT_REJECTED], "this request needs ~200.0 ms");

    r = rt_request_new();
    k.make(&k, r, 0);
    r->done = on_done;
    r->ctx = &slots[1];
    ASSERT_EQ_INT(rt_submit(m, r), RT_OK);
    ASSERT(wait_answers(L, 2, 30 * SEC));
    rt_model_stats st;
    rt_model_get_stats(m, &st);
    ASSERT_EQ_U64(st.outcome[RT_OK], 1);
    ASSERT_EQ_INT(atomic_load(&L->wrong_output), 0);
    rt_model_free(m, SEC);
    free(c);
    free(L);
    expected_free(want, 1);
}

/*
 * Work-conserving batching (issue 10): a lone request to a batchable model leaves at once
 * (it used to wait for company until close to its deadline), unless the model's config
 * asks for a queue delay (Triton's max_queue_delay_microseconds), which it then waits.
 * Eight sequential requests per setting; the mean queue time per request from the
 * model's statistics.
 */
static double lone_queue_ms(model_kind *k, const expected *want, int64_t delay_ns)
{
    usher_error err = {0};
    rt_model_cfg *c = model_cfg(k, 1);
    c->default_timeout_ns = 10 * SEC; /* the old batcher would hold each for ~10 s */
    c->max_queue_delay_ns = delay_ns;
    for (int b = 1; b <= k->max_batch; b++)
        c->latency_ns[b] = 2 * k->direct_ns * (uint64_t)b;
    rt_model *m = NULL;
    double q = -1;
    ledger *L = malloc(sizeof *L);
    ledger_init(L, want, k->tol);
    slot slots[8];
    if (rt_model_new(c, usher_bin(), &m, &err) != 0 || !wait_ready(m, 1, 60 * SEC))
        goto out;
    for (int i = 0; i < 8; i++) {
        rt_request *r = rt_request_new();
        k->make(k, r, 0);
        slots[i] = (slot){L, 0, 0};
        r->done = on_done;
        r->ctx = &slots[i];
        if (rt_submit(m, r) != RT_OK || !wait_answers(L, i + 1, 30 * SEC))
            goto out;
    }
    rt_model_stats st;
    rt_model_get_stats(m, &st);
    if (st.outcome[RT_OK] == 8 && atomic_load(&L->wrong_output) == 0)
        q = (double)st.queue_ns / 8 / 1e6;
out:
    rt_model_free(m, SEC);
    free(c);
    free(L);
    return q;
}

TEST(serve_lone_requests_leave_at_once)
{
    if (!workers_usable() || !resnet_path())
        return;
    model_kind k = resnet_kind();
    k.rows_of = one_row;
    expected want[1];
    memset(want, 0, sizeof want);
    ASSERT(direct_runs(&k, 1, want));
    double dflt = lone_queue_ms(&k, want, 0), never = lone_queue_ms(&k, want, -1),
           delay = lone_queue_ms(&k, want, 50 * (int64_t)MS);
    printf("  resnet18 (batch-1 run %.1f ms): mean queue time of a lone request %.2f ms by "
           "default, %.2f ms with max_queue_delay 0, %.2f ms with 50 ms\n",
           (double)k.direct_ns / 1e6, dflt, never, delay);
    ASSERT(dflt >= 0 && never >= 0 && delay >= 0);
    /* a wake-up or two on a loaded 2-core machine, never a wait for company */
    ASSERT(dflt < 25);
    ASSERT(never < 25);
    /* the delay asked for is honoured: at least it, and not much more */
    ASSERT(delay >= 50);
    ASSERT(delay < 50 + 25);
    expected_free(want, 1);
}

/*
 * FAULT-1/2/5: SIGKILL one replica's worker under load: only what ran on it fails
 * (RT_WORKER_CRASH, at most one batch), the replica comes back with a new worker, and
 * requests after that succeed.
 */
TEST(serve_worker_killed_under_load)
{
    if (!workers_usable() || !resnet_path())
        return;
    usher_error err = {0};
    model_kind k = resnet_kind();
    enum { N = 72 };
    expected *want = calloc(N + 8, sizeof *want);
    ASSERT(direct_runs(&k, N + 8, want));
    rt_model_cfg *c = model_cfg(&k, 2);
    c->queue_capacity = 1024;
    rt_model *m = NULL;
    ASSERT_OK(rt_model_new(c, usher_bin(), &m, &err));
    ASSERT(wait_ready(m, 2, 60 * SEC));
    ledger *L = malloc(sizeof *L);
    ledger_init(L, want, k.tol);
    slot *slots = calloc(N + 8, sizeof *slots);
    sampler smp = {.m = m};
    pthread_t st;
    pthread_create(&st, NULL, sampler_main, &smp);

    load ld = {.m = m, .k = &k, .L = L, .slots = slots, .n = N, .spacing_ns = 5 * MS};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, submitter, &ld);
    /* kill replica 0's worker once work is flowing */
    while (atomic_load(&L->total) < 8)
        usleep(1000);
    int pid = rt_model_worker_pid(m, 0);
    ASSERT(pid > 0);
    ASSERT_EQ_INT(kill(pid, SIGKILL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ASSERT(wait_answers(L, N, 120 * SEC));

    /* the replica is back with another worker */
    uint64_t end = rt_now_ns() + 60 * SEC;
    while ((rt_model_worker_pid(m, 0) <= 0 || rt_model_worker_pid(m, 0) == pid) &&
           rt_now_ns() < end)
        usleep(5000);
    ASSERT(rt_model_worker_pid(m, 0) > 0 && rt_model_worker_pid(m, 0) != pid);
    ASSERT(wait_ready(m, 2, 60 * SEC));
    int crashed = atomic_load(&L->by_outcome[RT_WORKER_CRASH]);
    int ok = atomic_load(&L->by_outcome[RT_OK]);
    printf("  killed worker %d: %d crashed, %d ok of %d\n", pid, crashed, ok, N);
    ASSERT(crashed <= k.max_batch);  /* at most the batch in flight on it */
    ASSERT_EQ_INT(crashed + ok, N);  /* nothing else failed */
    ASSERT_EQ_INT(atomic_load(&L->wrong_output), 0);
    for (int i = 0; i < N; i++)
        ASSERT_EQ_INT(atomic_load(&L->answers[i]), 1);

    /* later requests all succeed */
    ld.n = N + 8;
    atomic_store(&ld.next, N); /* the first submitters overshot it */
    run_load(&ld, 2);
    ASSERT(wait_answers(L, N + 8, 60 * SEC));
    ASSERT_EQ_INT(atomic_load(&L->by_outcome[RT_OK]), ok + 8);
    atomic_store(&smp.stop, 1);
    pthread_join(st, NULL);
    ASSERT_EQ_INT(smp.violations, 0);
    rt_model_stats s;
    rt_model_get_stats(m, &s);
    ASSERT_EQ_U64(s.worker_deaths, 1);
    ASSERT_EQ_U64(s.in_flight, 0);
    ASSERT_EQ_U64(s.started_late, 0);
    rt_model_free(m, SEC);
    free(c);
    expected_free(want, N + 8);
    free(want);
    free(slots);
    free(L);
}

/*
 * OVER-2: a prediction that is too optimistic lets in more than one replica can serve in
 * time: the requests left queued when their deadline comes within reach are answered
 * RT_TIMEOUT by then (not when a replica frees up), and none starts late.
 */
TEST(serve_timeouts_answered_by_deadline)
{
    if (!workers_usable() || !resnet_path())
        return;
    usher_error err = {0};
    model_kind k = resnet_kind();
    k.rows_of = one_row;
    ASSERT(direct_runs(&k, 1, NULL));
    uint64_t l1 = k.direct_ns;
    rt_model_cfg *c = model_cfg(&k, 1);
    for (int b = 1; b <= k.max_batch; b++)
        c->latency_ns[b] = (uint64_t)b * l1 / 10; /* ten times too optimistic */
    rt_model *m = NULL;
    ASSERT_OK(rt_model_new(c, usher_bin(), &m, &err));
    ASSERT(wait_ready(m, 1, 60 * SEC));
    enum { N = 16 };
    ledger *L = malloc(sizeof *L);
    ledger_init(L, NULL, 0);
    slot slots[N];
    rt_request *reqs[N];
    for (int i = 0; i < N; i++) {
        reqs[i] = rt_request_new();
        k.make(&k, reqs[i], i);
        slots[i] = (slot){L, i, 0};
        reqs[i]->done = on_done;
        reqs[i]->ctx = &slots[i];
    }
    uint64_t dl = rt_now_ns() + 2 * l1; /* a batch of 8 takes longer than 2 single runs */
    int accepted = 0;
    for (int i = 0; i < N; i++) {
        reqs[i]->deadline_ns = dl;
        accepted += rt_submit(m, reqs[i]) == RT_OK;
    }
    bool all = wait_answers(L, N, 60 * SEC);
    rt_model_stats s;
    rt_model_get_stats(m, &s);
    rt_model_free(m, SEC);
    free(c);
    ASSERT(all);
    /* admitted on the optimistic prediction; a run that ends while the loop still submits
     * (the first leaves at once: a descheduled test thread sees it end) teaches the scale,
     * and later ones may then be refused at once, which is right */
    ASSERT(accepted >= 1);
    ASSERT_EQ_INT(atomic_load(&L->by_outcome[RT_REJECTED]), N - accepted);
    int timeouts = atomic_load(&L->by_outcome[RT_TIMEOUT]);
    int ok = atomic_load(&L->by_outcome[RT_OK]);
    uint64_t worst = 0;
    for (int i = 0; i < N; i++)
        if (atomic_load(&L->outcome[i]) == RT_TIMEOUT && slots[i].at > dl &&
            slots[i].at - dl > worst)
            worst = slots[i].at - dl;
    printf("  single run %.1f ms, deadline %.1f ms: %d accepted, %d ok, %d timed out (the latest "
           "%.1f ms after its deadline)\n", (double)l1 / 1e6, 2 * (double)l1 / 1e6, accepted, ok,
           timeouts, (double)worst / 1e6);
    ASSERT_EQ_INT(ok + timeouts, accepted);
    ASSERT(timeouts >= 1);
    ASSERT(worst <= 50 * MS); /* OVER-2: answered within deadline + 50 ms */
    ASSERT_EQ_U64(s.started_late, 0);
    ASSERT(ledger2_holds(&s));
    free(L);
}

/*
 * Issue 10: a profile far too slow (measured while the machine was busy) follows the runs.
 * Here it says 2x the SLO a row, 170x the real run. A probe runs (a quarter of the profile
 * fits) and the scale falls to its floor, a quarter: lone requests are then admitted, but
 * each queued row still counts a quarter of the profile, so a burst gets one or two in.
 * Once four recent runs show the profile more than 4x too slow it follows them, and the
 * burst is admitted as the real runs allow.
 */
TEST(serve_profile_too_slow_follows_runs)
{
    if (!workers_usable())
        return;
    usher_error err = {0};
    model_kind k = silero_kind();
    ASSERT(direct_runs(&k, 1, NULL)); /* measures k.direct_ns */
    uint64_t t = 50 * MS; /* the SLO: generous beside the run on a loaded machine */
    if (t < 10 * k.direct_ns)
        t = 10 * k.direct_ns;
    rt_model_cfg *c = model_cfg(&k, 1);
    c->default_timeout_ns = t;
    c->queue_capacity = 256; /* not the profile's default bound: admission decides */
    for (int b = 1; b <= k.max_batch; b++)
        c->latency_ns[b] = 2 * t * (uint64_t)b; /* past the SLO; a quarter of it fits */
    rt_model *m = NULL;
    ASSERT_OK(rt_model_new(c, usher_bin(), &m, &err));
    ASSERT(wait_ready(m, 1, 60 * SEC));
    enum { SEQ = 25, BURST = 64, N = SEQ + BURST };
    ledger *L = malloc(sizeof *L);
    ledger_init(L, NULL, 0);
    slot *slots = calloc(N, sizeof *slots);
    load ld = {.m = m, .k = &k, .L = L, .slots = slots, .n = SEQ, .spacing_ns = 20 * MS};
    run_load(&ld, 1); /* one after another, 20 ms apart */
    bool seq = wait_answers(L, SEQ, 30 * SEC);
    ld.n = N, ld.spacing_ns = 0;
    atomic_store(&ld.next, SEQ); /* the first pass left it one past */
    run_load(&ld, 1); /* then a burst, submitted back to back */
    bool all = wait_answers(L, N, 30 * SEC);
    rt_model_stats s;
    rt_model_get_stats(m, &s);
    rt_model_free(m, SEC);
    free(c);
    int seq_ok = 0, burst_ok = 0;
    for (int i = 0; i < N; i++)
        *(i < SEQ ? &seq_ok : &burst_ok) += atomic_load(&L->outcome[i]) == RT_OK;
    printf("  run %.2f ms, SLO %.0f ms, profile %.0f ms a row: %d of %d lone requests answered, "
           "then %d of a burst of %d; %llu probes, profile x%.4f\n",
           (double)k.direct_ns / 1e6, (double)t / 1e6, 2 * (double)t / 1e6, seq_ok, SEQ,
           burst_ok, BURST, (unsigned long long)s.probes, s.profile_factor);
    ASSERT(seq && all);
    ASSERT(s.profile_factor < 0.25);
    ASSERT(seq_ok >= SEQ - 2);   /* one probe, then the scale's floor admits lone requests */
    ASSERT(burst_ok >= BURST / 4); /* a quarter of the profile a row: 1 or 2 */
    ASSERT(ledger2_holds(&s));
    free(slots);
    free(L);
}

/*
 * FAULT-3: a stopped (hung) worker is found by its replica's heartbeat ping, killed and
 * replaced, while the other replica serves: at most the one request that may have been
 * dispatched to it fails.
 */
TEST(serve_hung_worker_replaced)
{
    if (!workers_usable())
        return;
    usher_error err = {0};
    model_kind k = silero_kind();
    enum { N = 400 };
    ASSERT(direct_runs(&k, 0, NULL));
    rt_model_cfg *c = model_cfg(&k, 2);
    c->queue_capacity = N;
    rt_model *m = NULL;
    ASSERT_OK(rt_model_new(c, usher_bin(), &m, &err));
    ASSERT(wait_ready(m, 2, 60 * SEC));
    ledger *L = malloc(sizeof *L);
    ledger_init(L, NULL, 0);
    slot *slots = calloc(N, sizeof *slots);
    int pid = rt_model_worker_pid(m, 1);
    ASSERT(pid > 0);
    ASSERT_EQ_INT(kill(pid, SIGSTOP), 0);
    /* a request every 15 ms for 6 s: the hang is found within a heartbeat plus 3 missed */
    load ld = {.m = m, .k = &k, .L = L, .slots = slots, .n = N, .spacing_ns = 15 * MS};
    run_load(&ld, 1);
    bool all = wait_answers(L, N, 30 * SEC);
    int now_pid = rt_model_worker_pid(m, 1);
    rt_model_stats s;
    rt_model_get_stats(m, &s);
    rt_model_free(m, SEC);
    if (now_pid == pid)
        kill(pid, SIGKILL); /* not found: do not leave it stopped */
    free(c);
    int crashed = atomic_load(&L->by_outcome[RT_WORKER_CRASH]);
    int ok = atomic_load(&L->by_outcome[RT_OK]);
    printf("  stopped worker %d: replaced by %d; %d ok, %d failed with it\n", pid, now_pid, ok,
           crashed);
    ASSERT(all);
    ASSERT(now_pid > 0 && now_pid != pid);
    ASSERT(crashed <= 1);
    ASSERT_EQ_INT(ok + crashed, N);
    ASSERT_EQ_U64(s.worker_deaths, 1);
    free(slots);
    free(L);
}

/*
 * A run started by its submitter that does not end within the submitter's budget is handed
 * to the replica thread: the submitter returns at once, and the replica finds the worker
 * hung (SIGSTOP), answers the request RT_WORKER_CRASH and replaces the worker. Requests
 * that find the model idle before and after run on their submitter.
 */
TEST(serve_inline_run_handed_over_when_hung)
{
    if (!workers_usable())
        return;
    usher_error err = {0};
    model_kind k = silero_kind();
    ASSERT(direct_runs(&k, 1, NULL));
    rt_model_cfg *c = model_cfg(&k, 1);
    /* a profile below the measured run: the observed scale (capped at 16) then keeps the
     * prediction under 16 / 4 = 4 x the measured run however loaded the machine is (two CPU
     * hogs beside the test drove a profile of 2 x the run past the limit below, and request
     * 20 was queued instead of run inline: no handoff to see) */
    c->latency_ns[1] = k.direct_ns / 4 ? k.direct_ns / 4 : 1;
    /* far above the prediction, so that a slow machine (sanitizers, other tests) still runs
     * requests inline; the submitter waits 4 x this at most (tens of ms) */
    c->inline_max_ns = 20 * k.direct_ns;
    rt_model *m = NULL;
    ASSERT_OK(rt_model_new(c, usher_bin(), &m, &err));
    ASSERT(wait_ready(m, 1, 60 * SEC));
    enum { N = 41 };
    ledger *L = malloc(sizeof *L);
    ledger_init(L, NULL, 0);
    slot *slots = calloc(N, sizeof *slots);
    int held_ms = 0, pid = 0;
    for (int id = 0; id < N; id++) {
        if (id == 20) {
            pid = rt_model_worker_pid(m, 0);
            ASSERT(pid > 0);
            ASSERT_EQ_INT(kill(pid, SIGSTOP), 0);
        }
        if (id == 21) { /* the hung one is answered, the worker replaced */
            ASSERT(wait_answers(L, 21, 30 * SEC));
            ASSERT(wait_ready(m, 1, 60 * SEC));
        }
        rt_request *r = rt_request_new();
        k.make(&k, r, id);
        slots[id] = (slot){L, id, 0};
        r->done = on_done;
        r->ctx = &slots[id];
        uint64_t t0 = rt_now_ns();
        ASSERT_EQ_INT(rt_submit(m, r), RT_OK);
        if (id == 20)
            held_ms = (int)((rt_now_ns() - t0) / MS);
        if (id != 20)
            ASSERT(wait_answers(L, id + 1, 30 * SEC)); /* one at a time: the model is idle */
    }
    rt_model_stats s;
    rt_model_get_stats(m, &s);
    rt_model_free(m, SEC);
    kill(pid, SIGKILL); /* killed already when it was found hung; never left stopped */
    free(c);
    printf("  %llu of %d runs by their submitter, %llu handed over; the hung run held its "
           "submitter %d ms\n", (unsigned long long)s.inline_runs, N,
           (unsigned long long)s.inline_handoffs, held_ms);
    ASSERT_EQ_INT(atomic_load(&L->outcome[20]), RT_WORKER_CRASH);
    ASSERT_EQ_INT(atomic_load(&L->by_outcome[RT_OK]), N - 1);
    for (int id = 0; id < N; id++)
        ASSERT_EQ_INT(atomic_load(&L->answers[id]), 1);
    ASSERT(s.inline_handoffs >= 1);
    ASSERT(s.inline_runs >= N / 2); /* most found the model idle */
    ASSERT(held_ms < 1000);
    ASSERT_EQ_U64(s.worker_deaths, 1);
    ASSERT(ledger2_holds(&s));
    free(slots);
    free(L);
}

/* FAULT-6: a worker that keeps dying puts its replica in back-off: the model is not ready. */
TEST(serve_crash_loop_backs_off)
{
    if (!workers_usable())
        return;
    usher_error err = {0};
    model_kind k = silero_kind();
    ASSERT(direct_runs(&k, 0, NULL));
    rt_model_cfg *c = model_cfg(&k, 1);
    rt_model *m = NULL;
    ASSERT_OK(rt_model_new(c, usher_bin(), &m, &err));
    for (int round = 0; round < 3; round++) {
        uint64_t end = rt_now_ns() + 60 * SEC;
        int pid;
        while ((pid = rt_model_worker_pid(m, 0)) <= 0 && rt_now_ns() < end)
            usleep(2000);
        ASSERT(pid > 0);
        ASSERT_EQ_INT(kill(pid, SIGKILL), 0);
        /* an idle replica notices at its next heartbeat ping */
        while (rt_model_worker_pid(m, 0) == pid && rt_now_ns() < end)
            usleep(2000);
    }
    uint64_t end = rt_now_ns() + 10 * SEC;
    while (rt_model_ready(m) && rt_now_ns() < end)
        usleep(2000);
    ASSERT(!rt_model_ready(m));
    rt_model_stats s;
    rt_model_get_stats(m, &s);
    ASSERT(s.worker_deaths >= 3); /* more if a start failed too */
    ASSERT_EQ_INT(s.replicas_ready, 0);
    ledger *L = malloc(sizeof *L);
    ledger_init(L, NULL, 0);
    slot sl = {L, 0, 0};
    rt_request *r = rt_request_new();
    k.make(&k, r, 0);
    r->done = on_done;
    r->ctx = &sl;
    ASSERT_EQ_INT(rt_submit(m, r), RT_UNAVAILABLE);
    ASSERT_CONTAINS(L->first_msg[RT_UNAVAILABLE], "backing off");
    uint64_t t0 = rt_now_ns();
    rt_model_free(m, SEC); /* the back-off sleep does not hold up shutdown */
    ASSERT(rt_now_ns() - t0 < 3 * SEC);
    free(c);
    free(L);
}

/* FAULT-7: rt_model_free with a full queue and busy replicas: every request answered exactly
 * once, either run or 503; nothing is left running. */
TEST(serve_free_under_load)
{
    if (!workers_usable())
        return;
    usher_error err = {0};
    model_kind k = silero_kind();
    enum { N = 600 };
    ASSERT(direct_runs(&k, 0, NULL));
    rt_model_cfg *c = model_cfg(&k, 2);
    c->queue_capacity = N;
    rt_model *m = NULL;
    ASSERT_OK(rt_model_new(c, usher_bin(), &m, &err));
    ASSERT(wait_ready(m, 2, 60 * SEC));
    ledger *L = malloc(sizeof *L);
    ledger_init(L, NULL, 0);
    slot *slots = calloc(N, sizeof *slots);
    load ld = {.m = m, .k = &k, .L = L, .slots = slots, .n = N};
    run_load(&ld, 4);
    int accepted = atomic_load(&ld.accepted);
    rt_model_free(m, 20 * MS);
    /* rt_model_free returned: every callback has run */
    int ok = atomic_load(&L->by_outcome[RT_OK]);
    int gone = atomic_load(&L->by_outcome[RT_UNAVAILABLE]);
    printf("  freed with %d accepted: %d ran, %d answered 503\n", accepted, ok, gone);
    ASSERT_EQ_INT(atomic_load(&L->total), N);
    ASSERT_EQ_INT(accepted, N);
    ASSERT_EQ_INT(ok + gone, N);
    for (int i = 0; i < N; i++)
        ASSERT_EQ_INT(atomic_load(&L->answers[i]), 1);
    free(c);
    free(slots);
    free(L);
}

TEST_MAIN(TEST_ENTRY(outcome_names), TEST_ENTRY(respond_exactly_once_under_8_threads),
          TEST_ENTRY(request_free_releases_tensors), TEST_ENTRY(clock_is_settable),
          TEST_ENTRY(batch_decide_table), TEST_ENTRY(batch_latency_lookup),
          TEST_ENTRY(batch_decide_virtual_clock), TEST_ENTRY(batch_join_split_fp32),
          TEST_ENTRY(batch_join_split_bytes), TEST_ENTRY(batch_incompatible_shapes),
          TEST_ENTRY(serve_unavailable_and_invalid), TEST_ENTRY(serve_cancel_queued_requests),
          TEST_ENTRY(serve_silero_500_requests_8_threads),
          TEST_ENTRY(serve_silero_inline_runs),
          TEST_ENTRY(serve_inline_run_handed_over_when_hung),
          TEST_ENTRY(serve_resnet18_batched), TEST_ENTRY(serve_overload_rejects_at_once),
          TEST_ENTRY(serve_deadlines), TEST_ENTRY(serve_lone_requests_leave_at_once), TEST_ENTRY(serve_cost_counts_every_dim), TEST_ENTRY(serve_worker_killed_under_load),
          TEST_ENTRY(serve_timeouts_answered_by_deadline),
          TEST_ENTRY(serve_profile_too_slow_follows_runs), TEST_ENTRY(serve_hung_worker_replaced),
          TEST_ENTRY(serve_unbatchable_model_one_per_batch),
          TEST_ENTRY(serve_crash_loop_backs_off), TEST_ENTRY(serve_free_under_load))
