/*
 * batch.c - dynamic batching: when to close a batch, and moving rows in and
 * out of it (layer 7, see rt.h). No threads, no clock reads: the model's
 * replica threads and the simulator call the same functions.
 *
 * The decision (rt_batch_decide) is taken by an idle replica, for a FIFO
 * queue with per-request deadlines and a predicted latency lat(rows) per
 * batch size (times the request's cost and the observed scale):
 *
 *   1. expire: a head request that cannot finish by its deadline even if it
 *      started alone, now, is hopeless; it is answered RT_TIMEOUT and never
 *      runs (OVER-2: 0 inferences started after their deadline).
 *   2. candidate: the longest head prefix whose rows fit max_batch and that
 *      is still feasible started now (now + lat(rows) <= its earliest
 *      deadline). A request that would make it infeasible ends it.
 *   3. dispatch now (work-conserving), unless waiting is asked for or needed:
 *      - asked for: max_queue_delay_ns > 0 (Triton's dynamic_batching
 *        max_queue_delay_microseconds): wait until the candidate reaches the
 *        largest preferred size (else max_batch) or its oldest request has
 *        waited that long;
 *      - needed (the default policy, max_queue_delay_ns == 0): the replicas
 *        cannot keep up with the observed arrival rate at this batch size,
 *        i.e. rows < (rate / replicas) x lat(rows): in the time the batch
 *        runs, more rows arrive than it takes, and running small batches
 *        would let the queue grow. Wait for the smallest size that keeps up,
 *        at most twice the time its missing rows take to arrive;
 *      and never when the candidate is full, the next request cannot join
 *      (other shapes, infeasible, draining), or nothing is predicted.
 *      Every wait ends by the last moment that still meets the earliest
 *      deadline: deadline_min - lat(rows) - slack.
 *
 * So at low load a request's latency is its own compute time: a lone
 * request leaves at once. Under load, batches form by themselves while
 * the replicas are busy (what queued meanwhile leaves together), which is
 * how Triton's dynamic batcher with a zero delay, Clockwork's and Nexus's
 * batchers behave; the rate rule adds Nexus's sizing for the arrival rate.
 * The old rule (wait until the last moment before the earliest deadline)
 * held a lone request for most of its SLO.
 *
 * Predictions come from the plan (profiled at load, or the estimator);
 * latency_scale corrects them by what runs have shown (a loaded machine runs
 * slower than the idle one that was profiled).
 *
 * Join and split: every input is concatenated along dim 0 (the batch dim);
 * BYTES tensors (4-byte little-endian length + bytes per element) are
 * concatenated as byte streams and split by walking the length prefixes.
 * A model whose outputs have no batch dim (dim 0 is not the batch's total
 * rows) cannot be split: rt_batch_split fails with USHER_ERR_INVALID saying
 * so, and the model (model.c) serves such a model one request at a time.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "runtime/rt.h"

/* ---- decision --------------------------------------------------------------------------- */
static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

uint64_t rt_batch_latency(const uint64_t *lat, int max_batch, int64_t rows)
{
    if (!lat || max_batch < 1)
        return 0;
    int64_t b = max_batch < RT_MAX_BATCH ? max_batch : RT_MAX_BATCH;
    if (rows < 1)
        rows = 1;
    if (rows <= b && lat[rows])
        return lat[rows]; /* the usual case: the plan fills the whole table */
    if (rows <= b)
        for (int64_t k = rows + 1; k <= b; k++)
            if (lat[k])
                return lat[k]; /* a larger batch bounds a smaller one from above */
    for (int64_t k = rows < b ? rows - 1 : b; k >= 1; k--)
        if (lat[k]) {
            uint64_t times = (uint64_t)((rows + k - 1) / k); /* k-row batches run one after another */
            return sat_mul(lat[k], times);
        }
    return 0;
}

uint64_t rt_batch_latency_scaled(const uint64_t *latency_ns, int max_batch, int64_t rows,
                                 double scale, double cost)
{
    uint64_t l = rt_batch_latency(latency_ns, max_batch, rows);
    double f = (scale > 0 ? scale : 1.0) * (cost > 0 ? cost : 1.0);
    if (f != 1.0) {
        double x = (double)l * f;
        l = x >= 1.8e19 ? UINT64_MAX : (uint64_t)x;
    }
    return l;
}

/* the view's prediction for rows at a request's cost, scaled by what runs have shown */
static uint64_t view_latency(const rt_batch_view *v, int64_t rows, double cost)
{
    return rt_batch_latency_scaled(v->latency_ns, v->max_batch, rows, v->latency_scale, cost);
}

/* can a batch whose earliest deadline is dl, started at now, finish in lat? */
static bool meets(uint64_t now, uint64_t dl, uint64_t lat)
{
    return dl >= now && dl - now >= lat;
}

/* the rows a batch waits for when a wait is asked for: the largest preferred size, else full */
static int64_t wait_target(const rt_batch_view *v, int64_t b)
{
    for (int i = v->n_preferred - 1; i >= 0; i--)
        if (v->preferred[i] >= 1 && v->preferred[i] <= b)
            return v->preferred[i];
    return b;
}

/*
 * The default policy's wait: with rate r rows/s per replica, a batch of k rows keeps up
 * when k >= r x lat(k). 0 when `rows` already does (or nothing is known), else how long to
 * wait for the smallest size that keeps up: twice its missing rows' expected arrival time.
 */
static uint64_t keep_up_wait(const rt_batch_view *v, int64_t rows, int64_t b, double cost)
{
    if (v->arrival_rate <= 0)
        return 0;
    double per = v->arrival_rate / (v->replicas > 1 ? v->replicas : 1) * 1e-9; /* rows/ns */
    if ((double)rows >= per * (double)view_latency(v, rows, cost))
        return 0;
    int64_t want = b;
    for (int64_t k = rows + 1; k <= b; k++)
        if ((double)k >= per * (double)view_latency(v, k, cost)) {
            want = k;
            break;
        }
    double t = 2e9 * (double)(want - rows) / v->arrival_rate;
    return t >= 1.8e19 ? UINT64_MAX : (uint64_t)t;
}

void rt_batch_decide(const rt_batch_view *v, rt_batch_decision *d)
{
    const uint64_t now = v->now_ns;
    const int64_t b = v->max_batch < 1 ? 1 : v->max_batch;
    d->take = 0;
    d->expire = 0;
    d->wake_ns = UINT64_MAX;
#define COST(j) (v->cost ? v->cost[j] : 1.0)

    size_t i = 0;
    for (; i < v->n; i++)
        if (meets(now, v->deadline_ns[i], view_latency(v, v->rows[i], COST(i))))
            break;
    d->expire = i;
    if (i == v->n)
        return;

    const size_t start = i;
    int64_t rows = 0;
    uint64_t dl_min = UINT64_MAX, lat = 0;
    bool ended = false; /* a request after the candidate exists and cannot join it */
    size_t k = 0;
    for (size_t j = start; j < v->n; j++) {
        int64_t r = v->rows[j] < 1 ? 1 : v->rows[j];
        if (k > 0 && rows + r > b) {
            ended = true;
            break;
        }
        uint64_t dl = v->deadline_ns[j] < dl_min ? v->deadline_ns[j] : dl_min;
        uint64_t l = view_latency(v, rows + r, COST(start));
        if (k > 0 && !meets(now, dl, l)) {
            ended = true;
            break;
        }
        rows += r;
        dl_min = dl;
        lat = l;
        k++;
        if (rows >= b)
            break;
    }

    /* how long waiting may grow the batch (0: dispatch now) */
    uint64_t until = now;
    if (rows < b && !ended && !(v->blocked && start + k == v->n) && lat != 0 &&
        v->max_queue_delay_ns >= 0) {
        if (v->max_queue_delay_ns > 0) {
            uint64_t oldest = v->arrival_ns ? v->arrival_ns[start] : now;
            if (rows < wait_target(v, b) && oldest <= now)
                until = oldest + (uint64_t)v->max_queue_delay_ns;
        } else {
            uint64_t w = keep_up_wait(v, rows, b, COST(start));
            until = w > UINT64_MAX - now ? UINT64_MAX : now + w;
        }
        /* never past the last moment the earliest deadline allows */
        if (dl_min != UINT64_MAX) {
            uint64_t last = dl_min - lat; /* >= now: the prefix is feasible */
            last = last - now > v->slack_ns ? last - v->slack_ns : now;
            if (last < until)
                until = last;
        }
    }
#undef COST
    if (until <= now) {
        d->take = k;
        d->wake_ns = now;
        return;
    }
    d->wake_ns = until;
}

/* ---- compatibility, join, split --------------------------------------------------------- */
static bool same_layout(const rt_request *a, const rt_request *b)
{
    if (a->n_in != b->n_in)
        return false;
    for (size_t i = 0; i < a->n_in; i++) {
        const us_tensor *x = &a->in[i], *y = &b->in[i];
        if (x->dtype != y->dtype || x->shape.rank != y->shape.rank || x->shape.rank < 1)
            return false;
        for (int d = 1; d < x->shape.rank; d++)
            if (x->shape.dim[d] != y->shape.dim[d])
                return false;
    }
    return true;
}

size_t rt_batch_compatible(const rt_request *head, size_t max)
{
    if (!head || max == 0)
        return 0;
    size_t n = 1;
    for (const rt_request *r = head->next; r && n < max; r = r->next, n++)
        if (!same_layout(head, r))
            break;
    return n;
}

int64_t rt_group_rows(const int64_t *own, int n_members, bool has_rows, bool equal_rows,
                      bool empty_rows, int64_t *want)
{
    int64_t most = 0, filler = 0;
    for (int k = 0; k < n_members; k++)
        most = own[k] > most ? own[k] : most;
    for (int k = 0; k < n_members; k++) {
        want[k] = !has_rows                 ? 1
                  : equal_rows              ? most
                  : own[k] || empty_rows    ? own[k]
                                            : 1;
        filler += want[k] - (has_rows ? own[k] : own[k] ? 1 : 0);
    }
    return filler;
}

static void tensors_free(us_tensor *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        us_free(t[i].data);
        t[i].data = NULL;
        t[i].bytes = 0;
    }
}

/* elements of one row: the product of the dims after the batch dim */
static int row_elements(const us_tensor *t, const char *what, uint64_t *out, usher_error *err)
{
    us_shape s = t->shape;
    if (s.rank < 1)
        return us_err_set(err, USHER_ERR_INVALID, "%s: a scalar has no batch dim", what);
    s.dim[0] = 1;
    return us_shape_elements(&s, what, out, err);
}

/* bytes of a tensor's data as its descriptor says, checked against what it holds */
static int check_bytes(const us_tensor *t, const char *what, usher_error *err)
{
    if (t->dtype == US_DT_BYTES) {
        uint64_t n;
        int rc = us_shape_elements(&t->shape, what, &n, err);
        if (rc < 0)
            return rc;
        return us_bytes_check(t->data, t->bytes, n, what, err);
    }
    uint64_t want;
    int rc = us_tensor_nbytes(t->dtype, &t->shape, what, &want, err);
    if (rc < 0)
        return rc;
    if (want != t->bytes)
        return us_err_set(err, USHER_ERR_INVALID, "%s: %llu bytes of data, its shape needs %llu",
                          what, (unsigned long long)t->bytes, (unsigned long long)want);
    return USHER_OK;
}

static int copy_tensor(const us_tensor *src, us_tensor *dst, const char *what, usher_error *err)
{
    *dst = *src;
    dst->data = us_malloc(src->bytes ? src->bytes : 1);
    if (!dst->data)
        return us_err_set(err, USHER_ERR_NOMEM, "%s: %llu bytes", what,
                          (unsigned long long)src->bytes);
    if (src->bytes)
        memcpy(dst->data, src->data, src->bytes);
    return USHER_OK;
}

int rt_batch_join(rt_request *const *reqs, size_t n, us_tensor *joined, size_t n_in,
                  usher_error *err)
{
    if (n == 0 || n_in > RT_MAX_IO)
        return us_err_set(err, USHER_ERR_INVALID, "batch of %zu requests, %zu inputs", n, n_in);
    size_t done = 0;
    int rc = USHER_OK;
    char what[US_TENSOR_NAME_MAX + 64];
    for (; done < n_in; done++) {
        const us_tensor *t0 = &reqs[0]->in[done];
        snprintf(what, sizeof what, "input '%s'", t0->name);
        us_tensor *o = &joined[done];
        memset(o, 0, sizeof *o);
        uint64_t total = 0;
        int64_t rows = 0;
        for (size_t j = 0; j < n; j++) {
            const us_tensor *t = &reqs[j]->in[done];
            if (reqs[j]->n_in != n_in) {
                rc = us_err_set(err, USHER_ERR_INVALID, "request %zu of the batch has %zu inputs, "
                                "not %zu", j, reqs[j]->n_in, n_in);
                goto fail;
            }
            if (n > 1 && (t->dtype != t0->dtype || t->shape.rank != t0->shape.rank ||
                          t->shape.rank < 1)) {
                rc = us_err_set(err, USHER_ERR_INVALID, "%s: request %zu is %s rank %d, request 0 "
                                "%s rank %d: they cannot share a batch", what, j,
                                us_dtype_name(t->dtype), t->shape.rank, us_dtype_name(t0->dtype),
                                t0->shape.rank);
                goto fail;
            }
            for (int d = 1; n > 1 && d < t->shape.rank; d++)
                if (t->shape.dim[d] != t0->shape.dim[d]) {
                    char a[96], b[96];
                    rc = us_err_set(err, USHER_ERR_INVALID, "%s: request %zu has shape %s, "
                                    "request 0 %s: only the batch dim may differ", what, j,
                                    us_shape_str(&t->shape, a, sizeof a),
                                    us_shape_str(&t0->shape, b, sizeof b));
                    goto fail;
                }
            if ((rc = check_bytes(t, what, err)) < 0)
                goto fail;
            if (__builtin_add_overflow(total, t->bytes, &total) ||
                (n > 1 && __builtin_add_overflow(rows, t->shape.dim[0], &rows))) {
                rc = us_err_set(err, USHER_ERR_LIMIT, "%s: the batch is too large", what);
                goto fail;
            }
        }
        *o = *t0;
        if (n > 1)
            o->shape.dim[0] = rows;
        o->bytes = total;
        o->data = us_malloc(total ? total : 1);
        if (!o->data) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "%s: %llu bytes for the batch", what,
                            (unsigned long long)total);
            goto fail;
        }
        uint8_t *p = o->data;
        for (size_t j = 0; j < n; j++) {
            const us_tensor *t = &reqs[j]->in[done];
            if (t->bytes)
                memcpy(p, t->data, t->bytes);
            p += t->bytes;
        }
    }
    return USHER_OK;
fail:
    memset(&joined[done], 0, sizeof joined[done]);
    tensors_free(joined, done);
    return rc;
}

/* The byte span [*off, end) of `elements` BYTES elements starting at *off. */
static int bytes_span(const us_tensor *t, uint64_t *off, uint64_t elements, const char *what,
                      usher_error *err)
{
    const uint8_t *d = t->data;
    uint64_t o = *off;
    for (uint64_t e = 0; e < elements; e++) {
        if (t->bytes - o < 4)
            return us_err_set(err, USHER_ERR_INVALID, "%s: BYTES data ends early", what);
        uint32_t len = (uint32_t)d[o] | (uint32_t)d[o + 1] << 8 | (uint32_t)d[o + 2] << 16 |
                       (uint32_t)d[o + 3] << 24;
        o += 4;
        if (len > t->bytes - o)
            return us_err_set(err, USHER_ERR_INVALID, "%s: BYTES element runs past the data",
                              what);
        o += len;
    }
    *off = o;
    return USHER_OK;
}

int rt_batch_split(const us_tensor *outs, size_t n_out, rt_request *const *reqs, size_t n,
                   usher_error *err)
{
    if (n == 0 || n_out > RT_MAX_IO)
        return us_err_set(err, USHER_ERR_INVALID, "batch of %zu requests, %zu outputs", n,
                          n_out);
    int64_t total_rows = 0;
    for (size_t j = 0; j < n; j++)
        total_rows += reqs[j]->rows < 1 ? 1 : reqs[j]->rows;
    char what[US_TENSOR_NAME_MAX + 64];
    int rc = USHER_OK;
    size_t i = 0;
    for (size_t j = 0; j < n; j++)
        reqs[j]->n_out = 0;
    for (; i < n_out; i++) {
        const us_tensor *t = &outs[i];
        snprintf(what, sizeof what, "output '%s'", t->name);
        if ((rc = check_bytes(t, what, err)) < 0)
            goto fail;
        if (n == 1) { /* a request alone owns the whole output, batch dim or not */
            if ((rc = copy_tensor(t, &reqs[0]->out[i], what, err)) < 0)
                goto fail;
            reqs[0]->n_out = i + 1;
            continue;
        }
        if (t->shape.rank < 1 || t->shape.dim[0] != total_rows) {
            char s[96];
            rc = us_err_set(err, USHER_ERR_INVALID,
                            "%s has shape %s: its dim 0 is not the batch's %lld rows, so the "
                            "model is not batchable (serve it with max_batch 1)", what,
                            us_shape_str(&t->shape, s, sizeof s), (long long)total_rows);
            goto fail;
        }
        uint64_t per_row;
        if ((rc = row_elements(t, what, &per_row, err)) < 0)
            goto fail;
        uint64_t row_bytes = total_rows ? t->bytes / (uint64_t)total_rows : 0;
        uint64_t off = 0;
        for (size_t j = 0; j < n; j++) {
            rt_request *r = reqs[j];
            int64_t rows = r->rows < 1 ? 1 : r->rows;
            uint64_t from = off, len;
            if (t->dtype == US_DT_BYTES) {
                if ((rc = bytes_span(t, &off, per_row * (uint64_t)rows, what, err)) < 0)
                    goto fail;
                len = off - from;
            } else {
                len = row_bytes * (uint64_t)rows;
                off += len;
            }
            us_tensor *o = &r->out[i];
            *o = *t;
            o->shape.dim[0] = rows;
            o->bytes = len;
            o->data = us_malloc(len ? len : 1);
            if (!o->data) {
                rc = us_err_set(err, USHER_ERR_NOMEM, "%s: %llu bytes", what,
                                (unsigned long long)len);
                goto fail;
            }
            if (len)
                memcpy(o->data, (const uint8_t *)t->data + from, len);
            r->n_out = i + 1;
        }
    }
    return USHER_OK;
fail:
    /* requests before the failing one hold outputs 0..i, the rest 0..i-1: n_out says which */
    for (size_t j = 0; j < n; j++) {
        tensors_free(reqs[j]->out, reqs[j]->n_out);
        reqs[j]->n_out = 0;
    }
    return rc;
}
