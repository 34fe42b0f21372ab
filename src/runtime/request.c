/*
 * request.c - requests, the one response path, and the runtime's clock
 * (layer 7, see rt.h).
 *
 * LEDGER-1 rests on rt_respond: the `responded` flag goes 0 -> 1 by one
 * compare-exchange, and only the caller that wins it runs the callback, so
 * a request racing between a timeout sweep, a worker crash and a
 * shutdown is still answered exactly once.
 *
 * The clock is an interface (STYLE 16): the batcher and the model only
 * read rt_now_ns(), so the simulator and the tests can drive the same code
 * with a virtual clock.
 */
#include "runtime/rt.h"

#include <assert.h>
#include <time.h>

#include "core/alloc.h"

static const char *const outcome_names[] = {
    [RT_OK] = "success",
    [RT_REJECTED] = "rejected",
    [RT_TIMEOUT] = "timeout",
    [RT_CANCELLED] = "cancelled",
    [RT_WORKER_CRASH] = "worker_crash",
    [RT_INVALID] = "invalid",
    [RT_INTERNAL] = "internal",
    [RT_UNAVAILABLE] = "unavailable",
};
static_assert(sizeof outcome_names / sizeof outcome_names[0] == RT_OUTCOME_COUNT,
              "one metrics label per outcome");

const char *rt_outcome_name(rt_outcome o)
{
    return (unsigned)o < RT_OUTCOME_COUNT ? outcome_names[o] : "unknown";
}

rt_request *rt_request_new(void)
{
    rt_request *r = us_calloc(1, sizeof *r);
    if (r) {
        atomic_init(&r->responded, 0);
        atomic_init(&r->cancel, false);
    }
    return r;
}

void rt_request_free(rt_request *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_in && i < RT_MAX_IO; i++)
        us_free(r->in[i].data);
    for (size_t i = 0; i < r->n_out && i < RT_MAX_IO; i++)
        us_free(r->out[i].data);
    us_free(r);
}

void rt_request_cancel(rt_request *r)
{
    if (r)
        atomic_store(&r->cancel, true);
}

bool rt_respond(rt_request *r, rt_outcome o, const char *msg)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&r->responded, &expected, 1))
        return false;
    /* the callback may free r: nothing below may touch it */
    if (r->done)
        r->done(r, o, msg ? msg : "", r->ctx);
    return true;
}

/* ---- clock ------------------------------------------------------------------------------ */
typedef uint64_t (*clock_fn)(void);
/* atomic so a test may swap clocks while runtime threads read it (TSan-clean) */
static _Atomic(clock_fn) g_clock;

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t rt_now_ns(void)
{
    clock_fn f = atomic_load_explicit(&g_clock, memory_order_acquire);
    return f ? f() : monotonic_ns();
}

void rt_set_clock(uint64_t (*now_ns)(void))
{
    atomic_store_explicit(&g_clock, now_ns, memory_order_release);
}
