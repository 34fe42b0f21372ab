/*
 * loadgen.c - the open-loop load generator behind `usher load` (layer 2,
 * src/client, prefix lg_; see loadgen.h).
 *
 * Method notes.
 *
 * 1. Open loop. Every arrival time is drawn before the run starts
 *    (lg_schedule): a Poisson process per model (exponential gaps from a
 *    seeded splitmix64 stream per model), evenly spaced arrivals with a
 *    random phase, or the lines of a trace. A request is released at its
 *    scheduled time whether or not earlier ones were answered, so a slow
 *    server faces the offered load instead of a load that slows down with
 *    it. Latency is measured from the *scheduled* time, never from the
 *    moment the request got onto the wire: time spent waiting for a free
 *    connection, or behind a generator that fell behind, is charged to the
 *    request. This is what avoids coordinated omission (a closed-loop
 *    client measuring from its own send time hides exactly the queueing
 *    that overload produces).
 *
 * 2. Timing. One thread; an epoll set holds the connections and a timerfd
 *    armed (absolute, CLOCK_MONOTONIC) at the next event: the next arrival,
 *    the next timeout scan (every 10 ms while requests are out), the end of
 *    the drain. The thread's timer slack is set to 1 ns for the run (and
 *    restored), so wake-ups are not rounded to the default 50 us. Each
 *    request records how late the generator released it (lag: found due
 *    minus scheduled, which includes writing the requests before it in a
 *    burst) and how long it waited for a connection (wait: first byte
 *    written minus released, a new connection's connect time included).
 *    When the lag's p99 exceeds 1 ms the report says so: a generator that
 *    falls behind its schedule measures itself, not the server.
 *
 * 3. Connections. HTTP/1.1 keep-alive, no pipelining (the protocol pairs
 *    responses to requests by order, so one outstanding request per
 *    connection keeps that pairing unambiguous). A few connections are
 *    opened before the start so the first requests do not pay for connect;
 *    more are opened on demand up to max_connections; beyond that a
 *    released request waits in a FIFO for the next free connection, and
 *    the wait is in its latency. Idle connections are reused last-freed
 *    first. A request whose response does not come within timeout_ms of its
 *    send is counted as timed out and its connection closed (the only way
 *    to stop waiting for a response on HTTP/1.1). Nothing is retried: an
 *    inference is not idempotent and a retry would hide a lost request
 *    (RELIABILITY.md LEDGER-5).
 *
 * 4. The ledger. Request n of a run with seed S has id "S-n"; the body is
 *    the user's (or a random) request with that id spliced in. A response
 *    is credited to the id its body names (LEDGER-1, PROTO-5): a response
 *    carrying another request's id is cross-talk (id_mismatch, and the
 *    request on that connection stays unanswered); one naming an id never
 *    sent is unknown; an id answered twice is a duplicate. A response with
 *    no id (a server that cannot echo it, PROTO-5 broken) is credited to
 *    the request on its connection, since HTTP/1.1 pairs them, and counted
 *    as id_missing. After the schedule, outstanding requests get up to
 *    timeout_ms to finish; the rest are missing (timed out, failed,
 *    unsent). Exit status 0 of `usher load` means: no missing, no
 *    duplicate, no id error.
 *
 * 5. Reading JSON. The project's reader (core/json.h) reads the --input
 *    body, the model metadata and every response, in full: a response body
 *    that is not valid JSON is counted (bad_json) and its id is missing.
 *    That costs about 1.3 us for a small response on this machine, and
 *    grows with the body; the id alone could be found by a scan that stops
 *    at it, if large outputs ever made the generator its own bottleneck.
 *
 * 6. Bodies. The id goes first ({"id":"S-n", then the rest), so a request
 *    costs one short formatted head plus a shared, precomputed tail per
 *    model, written with one sendmsg. Random inputs are drawn once per model
 *    and run (the server sees the same tensors with different ids).
 *
 * 7. The report. Status counts are by each id's first answer. Latency
 *    percentiles are of 200 answers, nearest rank (p99 of 1000 values is
 *    the 990th smallest). Goodput is 200 answers within the SLO per second
 *    of schedule; SLO attainment is the same count over requests sent.
 *    Achieved rate is requests written over max(duration, last write).
 */
#include "loadgen.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/arrivals.h"
#include "core/err.h"
#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "core/tensor.h"
#include "client/httpc.h"

/* ---- random numbers ------------------------------------------------------- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void lg_rng_seed(lg_rng *r, uint64_t seed) { r->s = seed; }

uint64_t lg_rng_next(lg_rng *r)
{
    r->s += 0x9E3779B97F4A7C15ull;
    return mix64(r->s);
}

double lg_rng_unit(lg_rng *r) { return (double)(lg_rng_next(r) >> 11) * 0x1.0p-53; }

double lg_rng_exp(lg_rng *r, double rate)
{
    /* 1 - u is in (0, 1]: the log is finite */
    return -log(1.0 - lg_rng_unit(r)) / rate;
}

/* An independent stream per purpose and model: a hashed seed lands far from
   the others on splitmix64's sequence. */
static void rng_stream(lg_rng *r, uint64_t seed, uint64_t tag)
{
    lg_rng_seed(r, mix64(seed ^ mix64(tag + 0x632BE59BD9B4E019ull)));
}

/* ---- schedules ------------------------------------------------------------ */

#define MAX_DURATION_S 1e6 /* 11.5 days: keeps microsecond times far inside 64 bits */
#define MAX_RATE 1e7

static int cmp_arrival(const void *a, const void *b)
{
    const lg_arrival *x = a, *y = b;
    if (x->t_us != y->t_us)
        return x->t_us < y->t_us ? -1 : 1;
    return (x->model > y->model) - (x->model < y->model);
}

void lg_schedule_free(lg_schedule *s)
{
    if (!s)
        return;
    us_free(s->a);
    memset(s, 0, sizeof *s);
}

/* Append to a growing arrival array (capacity doubles, capped). */
static int push_arrival(lg_schedule *s, size_t *cap, uint64_t t_us, uint32_t model)
{
    if (s->n == *cap) {
        if (*cap >= LG_MAX_REQUESTS)
            return USHER_ERR_LIMIT;
        size_t nc = *cap ? *cap * 2 : 1024;
        if (nc > LG_MAX_REQUESTS)
            nc = LG_MAX_REQUESTS;
        lg_arrival *a = us_realloc(s->a, nc * sizeof *a);
        if (!a)
            return USHER_ERR_NOMEM;
        s->a = a;
        *cap = nc;
    }
    s->a[s->n].t_us = t_us;
    s->a[s->n].model = model;
    s->n++;
    return USHER_OK;
}

int lg_schedule_draw(lg_arrivals kind, const double *rates, size_t n_models, double duration_s,
                     uint64_t seed, lg_schedule *out, usher_error *err)
{
    memset(out, 0, sizeof *out);
    if (!(duration_s > 0) || duration_s > MAX_DURATION_S)
        return us_err_set(err, USHER_ERR_INVALID, "duration %g s is not in (0, %g]", duration_s,
                          MAX_DURATION_S);
    if (kind != LG_ARRIVALS_POISSON && kind != LG_ARRIVALS_UNIFORM)
        return us_err_set(err, USHER_ERR_INVALID, "arrivals must be Poisson or uniform here");
    double expect = 0;
    for (size_t m = 0; m < n_models; m++) {
        if (!(rates[m] >= 0) || rates[m] > MAX_RATE)
            return us_err_set(err, USHER_ERR_INVALID, "rate %g of model %zu is not in [0, %g]",
                              rates[m], m, MAX_RATE);
        expect += rates[m] * duration_s;
    }
    /* a Poisson count exceeds its mean by a few sigma at most: refuse early
       rather than after drawing millions */
    if (expect + 6 * sqrt(expect) > (double)LG_MAX_REQUESTS)
        return us_err_set(err, USHER_ERR_LIMIT,
                          "about %.0f requests in %g s: more than the %zu a run can hold", expect,
                          duration_s, LG_MAX_REQUESTS);
    size_t cap = 0;
    int rc = USHER_OK;
    for (size_t m = 0; m < n_models && rc == USHER_OK; m++) {
        if (rates[m] == 0)
            continue;
        lg_rng r;
        rng_stream(&r, seed, m);
        if (kind == LG_ARRIVALS_POISSON) {
            for (double t = lg_rng_exp(&r, rates[m]); t < duration_s && rc == USHER_OK;
                 t += lg_rng_exp(&r, rates[m]))
                rc = push_arrival(out, &cap, (uint64_t)llround(t * 1e6), (uint32_t)m);
        } else {
            double gap = 1.0 / rates[m], phase = lg_rng_unit(&r) * gap;
            for (uint64_t k = 0;; k++) {
                double t = phase + (double)k * gap; /* no accumulated rounding */
                if (t >= duration_s || rc != USHER_OK)
                    break;
                rc = push_arrival(out, &cap, (uint64_t)llround(t * 1e6), (uint32_t)m);
            }
        }
    }
    if (rc != USHER_OK) {
        lg_schedule_free(out);
        return rc == USHER_ERR_NOMEM
                   ? us_err_set(err, rc, "out of memory for the schedule")
                   : us_err_set(err, rc, "more than %zu requests in one run", LG_MAX_REQUESTS);
    }
    if (out->n > 1)
        qsort(out->a, out->n, sizeof *out->a, cmp_arrival);
    out->duration_s = duration_s;
    return USHER_OK;
}

int lg_trace_parse(const char *text, size_t len, const char *label, const char *const *names,
                   size_t n_names, double duration_s, lg_schedule *out, usher_error *err)
{
    memset(out, 0, sizeof *out);
    if (duration_s < 0 || duration_s > MAX_DURATION_S || duration_s != duration_s)
        return us_err_set(err, USHER_ERR_INVALID, "duration %g s is not in [0, %g]", duration_s,
                          MAX_DURATION_S);
    size_t cap = 0;
    uint64_t last = 0;
    int rc;
    us_arrivals_reader r;
    us_arrival_line x;
    us_arrivals_init(&r, text, len, label, MAX_DURATION_S);
    while ((rc = us_arrivals_next(&r, &x, err)) > 0) {
        size_t m = 0;
        while (m < n_names && !(strlen(names[m]) == x.name_len &&
                                memcmp(names[m], x.name, x.name_len) == 0))
            m++;
        if (m == n_names) {
            rc = us_arrivals_refuse(&r, &x, "the models given (--model)", err);
            goto fail;
        }
        if (duration_s > 0 && (double)x.t_us >= duration_s * 1e6)
            continue;
        rc = push_arrival(out, &cap, x.t_us, (uint32_t)m);
        if (rc != USHER_OK) {
            rc = rc == USHER_ERR_NOMEM
                     ? us_err_set(err, rc, "%s:%zu: out of memory", label, r.lineno)
                     : us_err_set(err, rc, "%s:%zu: more than %zu requests in one run", label,
                                  r.lineno, LG_MAX_REQUESTS);
            goto fail;
        }
        if (x.t_us > last)
            last = x.t_us;
    }
    if (rc < 0)
        goto fail;
    if (out->n == 0) {
        rc = us_err_set(err, USHER_ERR_PARSE, "%s: no arrivals%s", label,
                        duration_s > 0 ? " before the end of the run" : "");
        goto fail;
    }
    if (out->n > 1)
        qsort(out->a, out->n, sizeof *out->a, cmp_arrival);
    /* a trace that ends at its last line lasts one more microsecond, so a
       schedule is never of zero length */
    out->duration_s = duration_s > 0 ? duration_s : (double)(last + 1) / 1e6;
    return USHER_OK;
fail:
    lg_schedule_free(out);
    return rc;
}

int lg_trace_load(const char *path, const char *const *names, size_t n_names,
                  double duration_s, lg_schedule *out, usher_error *err)
{
    us_mapped m;
    memset(out, 0, sizeof *out);
    int rc = us_file_map(path, (uint64_t)1 << 30, &m, err);
    if (rc < 0)
        return rc;
    rc = lg_trace_parse((const char *)m.data, m.len, path, names, n_names, duration_s, out, err);
    us_file_unmap(&m);
    return rc;
}

/* ---- reading JSON (see note 5) ------------------------------------------- */

int lg_response_id(const char *body, size_t n, char *id, size_t cap, size_t *len)
{
    if (n == 0)
        return 0; /* no body: nothing to parse, no id */
    us_jsonr_doc *d;
    if (us_jsonr_parse(body, n, NULL, &d, NULL, NULL) < 0)
        return -1;
    int rc = 0;
    us_jsonr_val root = us_jsonr_root(d);
    us_jsonr_val v = us_jsonr_type_of(d, root) == US_JSONR_OBJECT ? us_jsonr_get(d, root, "id")
                                                                  : US_JSONR_NONE;
    if (us_jsonr_type_of(d, v) == US_JSONR_STRING) {
        size_t l = us_jsonr_str_copy(d, v, id, cap);
        rc = l < cap ? 1 : -1;
        if (len)
            *len = l < cap ? l : 0;
    }
    us_jsonr_free(d);
    return rc;
}

static bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

int lg_body_tail_from_json(const char *json, size_t len, const char *label, us_buf *tail,
                           usher_error *err)
{
    us_buf_reset(tail);
    us_jsonr_doc *d;
    int rc = us_jsonr_parse(json, len, NULL, &d, NULL, err);
    if (rc < 0)
        return us_err_prefix(err, rc, "%s: ", label);
    us_jsonr_val root = us_jsonr_root(d);
    if (us_jsonr_type_of(d, root) != US_JSONR_OBJECT) {
        us_jsonr_free(d);
        return us_err_set(err, USHER_ERR_PARSE, "%s: an infer request body must be a JSON "
                                                "object", label);
    }
    /* the object's '}' is its last non-blank byte: the reader allows only
       whitespace after the root */
    size_t close = len;
    while (close > 0 && json[close - 1] != '}')
        close--;
    if (close > 0)
        close--;
    /* each member's text runs from its key to the next key (or the '}'),
       less the blanks and the comma between them; all but "id" are kept
       as they were written */
    bool any = false;
    for (us_jsonr_val k = us_jsonr_first(d, root); k != US_JSONR_NONE;) {
        us_jsonr_val v = us_jsonr_next(d, k);
        us_jsonr_val nk = us_jsonr_next(d, v);
        size_t b = us_jsonr_offset(d, k);
        size_t e = nk != US_JSONR_NONE ? us_jsonr_offset(d, nk) : close;
        while (e > b && blank(json[e - 1]))
            e--;
        if (nk != US_JSONR_NONE && e > b && json[e - 1] == ',')
            e--;
        while (e > b && blank(json[e - 1]))
            e--;
        if (!us_jsonr_str_eq(d, k, "id", 2)) { /* ours replaces the user's */
            us_buf_putc(tail, ',');
            us_buf_append(tail, json + b, e - b);
            any = true;
        }
        k = nk;
    }
    us_jsonr_free(d);
    if (!any)
        us_buf_reset(tail);
    us_buf_putc(tail, '}');
    if (!us_buf_ok(tail))
        return us_err_set(err, tail->oom ? USHER_ERR_NOMEM : USHER_ERR_LIMIT,
                          "%s: request body too large", label);
    return USHER_OK;
}

#define RANDOM_MAX_ELEMENTS ((uint64_t)1 << 22)

typedef struct meta_input {
    char name[US_TENSOR_NAME_MAX];
    us_dtype dt;
    us_shape shape;
} meta_input;

/* One element of the metadata's "inputs" array. */
static int meta_one(const us_jsonr_doc *d, us_jsonr_val o, meta_input *in, const char *model,
                    size_t idx, usher_error *err)
{
    if (us_jsonr_type_of(d, o) != US_JSONR_OBJECT)
        return us_err_set(err, USHER_ERR_PARSE, "model '%s' metadata: inputs[%zu] is not an "
                                                "object", model, idx);
    us_jsonr_val name = us_jsonr_get(d, o, "name"), dt = us_jsonr_get(d, o, "datatype"),
                 shape = us_jsonr_get(d, o, "shape");
    bool name_ok = us_jsonr_type_of(d, name) == US_JSONR_STRING,
         dt_ok = us_jsonr_type_of(d, dt) == US_JSONR_STRING,
         shape_ok = us_jsonr_type_of(d, shape) == US_JSONR_ARRAY;
    if (!name_ok || !dt_ok || !shape_ok)
        return us_err_set(err, USHER_ERR_PARSE, "model '%s' metadata: inputs[%zu] lacks %s",
                          model, idx,
                          !name_ok ? "a name (string)"
                          : !dt_ok ? "a datatype (string)"
                                   : "a shape (array)");
    if (us_jsonr_str_copy(d, name, in->name, sizeof in->name) >= sizeof in->name ||
        strlen(in->name) != us_jsonr_str_len(d, name))
        return us_err_set(err, USHER_ERR_PARSE,
                          "model '%s' metadata: inputs[%zu] name is too long or holds a NUL",
                          model, idx);
    char dts[16];
    size_t dl = us_jsonr_str_copy(d, dt, dts, sizeof dts);
    in->dt = dl < sizeof dts ? us_dtype_parse(dts, dl) : US_DT_INVALID;
    if (in->dt == US_DT_INVALID)
        return us_err_set(err, USHER_ERR_UNSUPPORTED,
                          "model '%s' metadata: inputs[%zu] datatype '%.15s' is not one the "
                          "protocol defines", model, idx, dl < sizeof dts ? dts : "(too long)");
    in->shape.rank = 0;
    for (us_jsonr_val v = us_jsonr_first(d, shape); v != US_JSONR_NONE; v = us_jsonr_next(d, v)) {
        us_jsonr_num num;
        if (in->shape.rank == US_TENSOR_MAX_RANK)
            return us_err_set(err, USHER_ERR_PARSE,
                              "model '%s' metadata: inputs[%zu] has more than %d dims", model,
                              idx, US_TENSOR_MAX_RANK);
        if (!us_jsonr_number(d, v, &num) || !num.fits_i64 || num.i < -1 ||
            num.i > ((int64_t)1 << 40))
            return us_err_set(err, USHER_ERR_PARSE,
                              "model '%s' metadata: inputs[%zu] shape[%d] is not an integer "
                              ">= -1", model, idx, in->shape.rank);
        in->shape.dim[in->shape.rank++] = num.i < 0 ? 1 : num.i; /* -1: dynamic, made 1 */
    }
    return USHER_OK;
}

static void random_value(us_buf *b, us_dtype dt, lg_rng *r)
{
    switch (dt) {
    case US_DT_BOOL:
        us_buf_puts(b, lg_rng_next(r) & 1 ? "true" : "false");
        break;
    case US_DT_FP16:
    case US_DT_FP32:
    case US_DT_FP64:
    case US_DT_BF16:
        us_buf_printf(b, "%.4f", lg_rng_unit(r));
        break;
    case US_DT_BYTES: {
        char s[10] = "\"s";
        for (int k = 2; k < 8; k++)
            s[k] = (char)('a' + lg_rng_next(r) % 26);
        s[8] = '"';
        us_buf_append(b, s, 9);
        break;
    }
    default:
        /* small non-negative integers are valid for every integer type and,
           for most models, as indices (token ids, classes) too */
        us_buf_printf(b, "%u", (unsigned)(lg_rng_next(r) % 100));
        break;
    }
}

static int random_tail(const us_jsonr_doc *d, const char *model, lg_rng *rng, us_buf *tail,
                       usher_error *err)
{
    us_jsonr_val root = us_jsonr_root(d);
    us_jsonr_val inputs = us_jsonr_type_of(d, root) == US_JSONR_OBJECT
                              ? us_jsonr_get(d, root, "inputs")
                              : US_JSONR_NONE;
    if (us_jsonr_type_of(d, inputs) != US_JSONR_ARRAY)
        return us_err_set(err, USHER_ERR_PARSE, "model '%s' metadata has no \"inputs\" array",
                          model);
    us_buf_puts(tail, ",\"inputs\":[");
    size_t idx = 0;
    for (us_jsonr_val o = us_jsonr_first(d, inputs); o != US_JSONR_NONE;
         o = us_jsonr_next(d, o), idx++) {
        meta_input in;
        memset(&in, 0, sizeof in);
        int rc = meta_one(d, o, &in, model, idx, err);
        if (rc < 0)
            return rc;
        uint64_t elems;
        if (us_shape_elements(&in.shape, in.name, &elems, err) < 0 ||
            elems > RANDOM_MAX_ELEMENTS)
            return us_err_set(err, USHER_ERR_LIMIT,
                              "model '%s' input '%s': more than %llu elements for a random "
                              "input", model, in.name, (unsigned long long)RANDOM_MAX_ELEMENTS);
        if (idx > 0)
            us_buf_putc(tail, ',');
        us_buf_puts(tail, "{\"name\":");
        us_json_escape(tail, in.name, strlen(in.name));
        us_buf_printf(tail, ",\"datatype\":\"%s\",\"shape\":[", us_dtype_name(in.dt));
        for (int k = 0; k < in.shape.rank; k++)
            us_buf_printf(tail, "%s%lld", k ? "," : "", (long long)in.shape.dim[k]);
        us_buf_puts(tail, "],\"data\":[");
        for (uint64_t e = 0; e < elems && us_buf_ok(tail); e++) {
            if (e)
                us_buf_putc(tail, ',');
            random_value(tail, in.dt, rng);
        }
        us_buf_puts(tail, "]}");
    }
    us_buf_puts(tail, "]}");
    if (!us_buf_ok(tail))
        return us_err_set(err, tail->oom ? USHER_ERR_NOMEM : USHER_ERR_LIMIT,
                          "model '%s': random request body too large", model);
    return USHER_OK;
}

int lg_body_tail_random(const char *metadata, size_t len, const char *model, lg_rng *rng,
                        us_buf *tail, usher_error *err)
{
    us_buf_reset(tail);
    us_jsonr_doc *d;
    int rc = us_jsonr_parse(metadata, len, NULL, &d, NULL, err);
    if (rc < 0)
        return us_err_prefix(err, rc, "model '%s' metadata: ", model);
    rc = random_tail(d, model, rng, tail, err);
    us_jsonr_free(d);
    return rc;
}

/* ---- the ledger ----------------------------------------------------------- */

int lg_ledger_init(lg_ledger *l, uint64_t seed, const lg_schedule *s, usher_error *err)
{
    memset(l, 0, sizeof *l);
    if (s->n > 0) {
        l->e = us_calloc(s->n, sizeof *l->e);
        if (!l->e)
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory for a ledger of %zu requests",
                              s->n);
    }
    l->n = s->n;
    l->seed = seed;
    snprintf(l->prefix, sizeof l->prefix, "%llu-", (unsigned long long)seed);
    l->prefix_len = strlen(l->prefix);
    for (size_t i = 0; i < s->n; i++) {
        l->e[i].sched_us = s->a[i].t_us;
        l->e[i].model = (uint16_t)s->a[i].model;
    }
    return USHER_OK;
}

void lg_ledger_free(lg_ledger *l)
{
    if (!l)
        return;
    us_free(l->e);
    memset(l, 0, sizeof *l);
}

size_t lg_ledger_id(const lg_ledger *l, size_t n, char *buf, size_t cap)
{
    int k = snprintf(buf, cap, "%s%zu", l->prefix, n);
    return k < 0 ? 0 : (size_t)k >= cap ? cap - 1 : (size_t)k;
}

int64_t lg_ledger_parse_id(const lg_ledger *l, const char *id, size_t len)
{
    if (len <= l->prefix_len || len > l->prefix_len + 19 ||
        memcmp(id, l->prefix, l->prefix_len) != 0)
        return -1;
    uint64_t v = 0;
    for (size_t i = l->prefix_len; i < len; i++) {
        if (id[i] < '0' || id[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(id[i] - '0');
    }
    /* "S-07" is not an id we wrote: one spelling per number */
    if (id[l->prefix_len] == '0' && len > l->prefix_len + 1)
        return -1;
    return v < l->n ? (int64_t)v : -1;
}

static uint32_t sat32(uint64_t v) { return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v; }

void lg_ledger_answer(lg_ledger *l, size_t n, int status, const char *id, size_t id_len,
                      uint64_t done_us)
{
    int64_t target = (int64_t)n;
    if (!id) {
        l->id_missing++;
    } else {
        target = lg_ledger_parse_id(l, id, id_len);
        if (target != (int64_t)n)
            l->id_mismatch++;
        if (target < 0)
            l->unknown_ids++;
    }
    if (target != (int64_t)n && n < l->n && l->e[n].answers == 0)
        l->e[n].outcome = LG_OUT_FAILED; /* its answer went to another id */
    if (target < 0)
        return;
    lg_entry *e = &l->e[target];
    if (e->answers > 0) {
        l->duplicates++;
        if (e->answers < UINT8_MAX)
            e->answers++;
        return;
    }
    e->answers = 1;
    e->outcome = LG_OUT_ANSWERED;
    e->status = (uint16_t)(status > 0 && status < 1000 ? status : 0);
    e->latency_us = sat32(done_us > e->sched_us ? done_us - e->sched_us : 0);
}

/* ---- summary -------------------------------------------------------------- */

double lg_percentile_ms(const uint32_t *sorted, size_t n, double pct)
{
    if (n == 0)
        return 0;
    /* nearest rank: the smallest value with at least pct% of values <= it */
    double rank = ceil(pct * (double)n / 100.0 - 1e-9); /* 99.9% of 1000 is 999, not 1000 */
    size_t k = rank < 1 ? 0 : (size_t)rank - 1;
    if (k >= n)
        k = n - 1;
    return sorted[k] / 1000.0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void dist_of(uint32_t *v, size_t n, lg_dist *d)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    if (n == 0)
        return;
    qsort(v, n, sizeof *v, cmp_u32);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    d->mean_ms = sum / (double)n / 1000.0;
    d->p50_ms = lg_percentile_ms(v, n, 50);
    d->p90_ms = lg_percentile_ms(v, n, 90);
    d->p99_ms = lg_percentile_ms(v, n, 99);
    d->p999_ms = lg_percentile_ms(v, n, 99.9);
    d->max_ms = v[n - 1] / 1000.0;
}

void lg_summarize(const lg_ledger *l, const char *const *names, const double *rates,
                  size_t n_models, double duration_s, double slo_ms, uint64_t last_write_us,
                  lg_report *r)
{
    uint64_t seed = r->seed;
    int opened = r->connections_opened, maxc = r->connections_max;
    uint64_t cerr = r->connect_errors, perr = r->protocol_errors, bad = r->bad_json;
    memset(r, 0, sizeof *r);
    r->seed = seed;
    r->connections_opened = opened;
    r->connections_max = maxc;
    r->connect_errors = cerr;
    r->protocol_errors = perr;
    r->bad_json = bad;
    r->duration_s = duration_s;
    r->slo_ms = slo_ms;
    if (n_models > LG_MAX_MODELS)
        n_models = LG_MAX_MODELS;
    r->n_models = n_models;
    uint64_t slo_us = slo_ms > 0 ? (uint64_t)llround(slo_ms * 1000) : 0;
    uint32_t *v = l->n ? us_mallocarray(l->n, sizeof *v) : NULL;
    for (size_t m = 0; m < n_models; m++)
        snprintf(r->models[m].name, sizeof r->models[m].name, "%s", names[m]);
    for (size_t i = 0; i < l->n; i++) {
        const lg_entry *e = &l->e[i];
        lg_model_report *mr = e->model < n_models ? &r->models[e->model] : NULL;
        r->sent++;
        if (mr)
            mr->sent++;
        if (e->outcome != LG_OUT_UNSENT && e->outcome != LG_OUT_WAITING &&
            e->outcome != LG_OUT_SCHEDULED)
            r->written++;
        if (e->answers > 0) {
            r->answered++;
            int s = e->status;
            if (s == 200) {
                r->st_200++;
                if (mr)
                    mr->ok++;
                if (e->latency_us <= slo_us) {
                    r->good++;
                    if (mr)
                        mr->good++;
                }
            } else if (s == 503) {
                r->st_503++;
            } else if (s >= 400 && s < 500) {
                r->st_4xx++;
            } else if (s >= 500 && s < 600) {
                r->st_5xx++;
            } else {
                r->st_other++;
            }
        } else if (e->outcome == LG_OUT_TIMEOUT || e->outcome == LG_OUT_INFLIGHT) {
            r->timed_out++;
        } else if (e->outcome == LG_OUT_FAILED) {
            r->failed++;
        } else {
            r->unsent++;
        }
    }
    r->missing = r->sent - r->answered;
    r->duplicates = l->duplicates + l->unknown_ids;
    r->unknown_ids = l->unknown_ids;
    r->id_mismatch = l->id_mismatch;
    r->id_missing = l->id_missing;
    double dur = duration_s > 0 ? duration_s : 1;
    r->goodput = (double)r->good / dur;
    r->slo_pct = r->sent ? 100.0 * (double)r->good / (double)r->sent : 0;
    r->scheduled_rate = (double)r->sent / dur;
    double span = (double)last_write_us / 1e6;
    r->achieved_rate = (double)r->written / (span > dur ? span : dur);
    for (size_t m = 0; m < n_models; m++) {
        lg_model_report *mr = &r->models[m];
        mr->target_rate = rates ? rates[m] : (double)mr->sent / dur;
        r->target_rate += mr->target_rate;
        mr->goodput = (double)mr->good / dur;
    }
    if (!v) /* no memory for the percentiles: the counts above still stand */
        return;
    size_t k = 0;
    for (size_t m = 0; m <= n_models; m++) {
        /* m < n_models: that model's 200s; m == n_models: all of them */
        k = 0;
        for (size_t i = 0; i < l->n; i++)
            if (l->e[i].answers > 0 && l->e[i].status == 200 &&
                (m == n_models || l->e[i].model == m))
                v[k++] = l->e[i].latency_us;
        dist_of(v, k, m < n_models ? &r->models[m].latency : &r->latency);
    }
    k = 0;
    for (size_t i = 0; i < l->n; i++)
        v[k++] = l->e[i].lag_us;
    dist_of(v, k, &r->lag);
    r->behind = r->lag.p99_ms > 1.0;
    k = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->e[i].outcome != LG_OUT_UNSENT && l->e[i].outcome != LG_OUT_WAITING &&
            l->e[i].outcome != LG_OUT_SCHEDULED)
            v[k++] = l->e[i].wait_us;
    dist_of(v, k, &r->wait);
    us_free(v);
}

static void json_dist(us_json *j, const char *key, const lg_dist *d)
{
    us_json_key(j, key);
    us_json_obj_begin(j);
    us_json_key(j, "n");
    us_json_uint(j, d->n);
    us_json_key(j, "mean");
    us_json_double(j, d->mean_ms);
    us_json_key(j, "p50");
    us_json_double(j, d->p50_ms);
    us_json_key(j, "p90");
    us_json_double(j, d->p90_ms);
    us_json_key(j, "p99");
    us_json_double(j, d->p99_ms);
    us_json_key(j, "p99.9");
    us_json_double(j, d->p999_ms);
    us_json_key(j, "max");
    us_json_double(j, d->max_ms);
    us_json_obj_end(j);
}

static void json_u(us_json *j, const char *k, uint64_t v)
{
    us_json_key(j, k);
    us_json_uint(j, v);
}

static void json_d(us_json *j, const char *k, double v)
{
    us_json_key(j, k);
    us_json_double(j, v);
}

void lg_report_json(const lg_report *r, us_buf *out)
{
    us_json j;
    us_json_init(&j, out);
    us_json_obj_begin(&j);
    json_u(&j, "seed", r->seed);
    json_d(&j, "duration_s", r->duration_s);
    json_d(&j, "slo_ms", r->slo_ms);
    json_d(&j, "target_rate", r->target_rate);
    json_d(&j, "scheduled_rate", r->scheduled_rate);
    json_d(&j, "achieved_rate", r->achieved_rate);
    json_u(&j, "sent", r->sent);
    json_u(&j, "written", r->written);
    json_u(&j, "answered", r->answered);
    us_json_key(&j, "status");
    us_json_obj_begin(&j);
    json_u(&j, "200", r->st_200);
    json_u(&j, "503", r->st_503);
    json_u(&j, "4xx", r->st_4xx);
    json_u(&j, "5xx", r->st_5xx);
    json_u(&j, "other", r->st_other);
    us_json_obj_end(&j);
    json_u(&j, "missing", r->missing);
    json_u(&j, "timed_out", r->timed_out);
    json_u(&j, "failed", r->failed);
    json_u(&j, "unsent", r->unsent);
    json_u(&j, "duplicates", r->duplicates);
    json_u(&j, "unknown_ids", r->unknown_ids);
    json_u(&j, "id_mismatch", r->id_mismatch);
    json_u(&j, "id_missing", r->id_missing);
    json_u(&j, "bad_json", r->bad_json);
    json_u(&j, "good", r->good);
    json_d(&j, "goodput", r->goodput);
    json_d(&j, "slo_attainment_pct", r->slo_pct);
    json_dist(&j, "latency_ms", &r->latency);
    json_dist(&j, "lag_ms", &r->lag);
    json_dist(&j, "conn_wait_ms", &r->wait);
    us_json_key(&j, "behind_schedule");
    us_json_bool(&j, r->behind);
    us_json_key(&j, "connections");
    us_json_obj_begin(&j);
    json_u(&j, "opened", (uint64_t)r->connections_opened);
    json_u(&j, "max", (uint64_t)r->connections_max);
    json_u(&j, "connect_errors", r->connect_errors);
    json_u(&j, "protocol_errors", r->protocol_errors);
    us_json_obj_end(&j);
    us_json_key(&j, "models");
    us_json_arr_begin(&j);
    for (size_t m = 0; m < r->n_models; m++) {
        const lg_model_report *mr = &r->models[m];
        us_json_obj_begin(&j);
        us_json_key(&j, "name");
        us_json_str(&j, mr->name);
        json_d(&j, "target_rate", mr->target_rate);
        json_u(&j, "sent", mr->sent);
        json_u(&j, "ok", mr->ok);
        json_u(&j, "good", mr->good);
        json_d(&j, "goodput", mr->goodput);
        json_dist(&j, "latency_ms", &mr->latency);
        us_json_obj_end(&j);
    }
    us_json_arr_end(&j);
    us_json_key(&j, "exactly_once");
    us_json_bool(&j, r->missing == 0 && r->duplicates == 0 && r->id_mismatch == 0 &&
                         r->id_missing == 0);
    us_json_obj_end(&j);
    us_buf_putc(out, '\n');
}

/* ---- the engine ----------------------------------------------------------- */

#define SCAN_US 10000    /* timeout scan period while requests are out */
#define WARM_CONNS 4     /* connections opened before the start */
#define READ_CHUNK 65536
#define READS_PER_EVENT 4 /* then let other connections have a turn (level-triggered) */
#define TIMER_TAG UINT64_MAX

/*
 * A connection slot's life (conn.state) and the function behind each move:
 *
 *   FREE --conn_open--> CONNECTING --on_connected, no request--> IDLE
 *                          |                                     |  ^
 *                          | on_connected, carrying one          |  | on_response
 *                          v                                     |  | (keep-alive)
 *                        BUSY <------- pump: pop_idle + req_start+  |
 *                          +----------------------------------------+
 *   any --conn_close--> FREE  (connect failed, timeout, protocol error, EOF,
 *                              Connection: close, end of run)
 */
typedef enum cstate { CS_FREE = 0, CS_CONNECTING, CS_IDLE, CS_BUSY } cstate;

typedef struct conn {
    int fd;
    uint8_t state;
    bool want_out;  /* EPOLLOUT is in the interest set */
    bool in_idle;   /* on the idle stack */
    int64_t req;    /* the request it carries, -1 none */
    us_buf head;    /* request line, headers and {"id":"...": written before tail */
    const us_buf *tail;
    size_t off;     /* bytes of head + tail written */
    uint64_t deadline_us;
    hc_response resp;
} conn;

typedef struct engine {
    const lg_params *p;
    hc_url url;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int family;
    lg_schedule sched;
    lg_ledger led;
    us_buf tails[LG_MAX_MODELS];
    char paths[LG_MAX_MODELS][3 * LG_NAME_MAX + 32];
    conn *c;
    int n_slots, hiwater, n_open;
    int *free_slots, n_free;
    int *idle, n_idle;
    int n_out;    /* connections carrying a request */
    us_buf heads[LG_MAX_MODELS]; /* request line and headers up to the Content-Length value */
    uint32_t *wq; /* ring of waiting request numbers */
    size_t wq_cap, wq_head, wq_len;
    int ep, tfd;
    uint64_t t0_ns, armed_us;
    uint64_t last_write_us;
    int opened;
    uint64_t connect_errors, protocol_errors, bad_json;
    char rbuf[READ_CHUNK];
} engine;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_us(const engine *g) { return (mono_ns() - g->t0_ns) / 1000; }

static void set_out(engine *g, conn *c, bool want)
{
    if (c->want_out == want)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0),
                             .data.u64 = (uint64_t)(c - g->c)};
    epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
}

/* Attach request n to c (-1: detach); n_out counts the attached ones. */
static void set_req(engine *g, conn *c, int64_t n)
{
    g->n_out += (n >= 0) - (c->req >= 0);
    c->req = n;
}

static void conn_close(engine *g, conn *c)
{
    if (c->state == CS_FREE)
        return;
    epoll_ctl(g->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = CS_FREE;
    set_req(g, c, -1);
    c->want_out = false;
    hc_response_reset(&c->resp);
    us_buf_reset(&c->head);
    g->n_open--;
    g->free_slots[g->n_free++] = (int)(c - g->c);
}

/* Start a non-blocking connect on a free slot; NULL when none or it failed at once. */
static conn *conn_open(engine *g)
{
    if (g->n_free == 0)
        return NULL;
    int fd = socket(g->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g->connect_errors++;
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&g->addr, g->addr_len) != 0 && errno != EINPROGRESS) {
        close(fd);
        g->connect_errors++;
        return NULL;
    }
    int slot = g->free_slots[--g->n_free];
    conn *c = &g->c[slot];
    c->fd = fd;
    c->state = CS_CONNECTING;
    c->req = -1;
    c->want_out = true;
    c->in_idle = false;
    c->off = 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLOUT, .data.u64 = (uint64_t)slot};
    if (epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        c->state = CS_FREE;
        g->free_slots[g->n_free++] = slot;
        g->connect_errors++;
        return NULL;
    }
    g->n_open++;
    g->opened++;
    if (slot + 1 > g->hiwater)
        g->hiwater = slot + 1;
    return c;
}

static void make_idle(engine *g, conn *c)
{
    c->state = CS_IDLE;
    set_req(g, c, -1);
    set_out(g, c, false);
    hc_response_reset(&c->resp);
    if (c->resp.body.cap > ((size_t)1 << 20))
        us_buf_free(&c->resp.body); /* one big answer must not pin memory on every connection */
    if (!c->in_idle) {
        c->in_idle = true;
        g->idle[g->n_idle++] = (int)(c - g->c);
    }
}

static conn *pop_idle(engine *g)
{
    while (g->n_idle > 0) {
        conn *c = &g->c[g->idle[--g->n_idle]];
        c->in_idle = false;
        if (c->state == CS_IDLE)
            return c;
    }
    return NULL;
}

/* The request on c did not get an answer: outcome, then drop the connection. */
static void req_fail(engine *g, conn *c, lg_outcome why)
{
    if (c->req >= 0) {
        lg_entry *e = &g->led.e[c->req];
        if (e->answers == 0)
            e->outcome = (uint8_t)why;
    }
    conn_close(g, c);
}

static size_t total_len(const conn *c) { return c->head.len + c->tail->len; }

/* Write what is pending on c; false when the connection was dropped. */
static bool conn_write(engine *g, conn *c)
{
    size_t total = total_len(c);
    while (c->off < total) {
        struct iovec iov[2];
        int k = 0;
        if (c->off < c->head.len) {
            iov[k].iov_base = c->head.data + c->off;
            iov[k++].iov_len = c->head.len - c->off;
            iov[k].iov_base = (void *)(uintptr_t)c->tail->data;
            iov[k++].iov_len = c->tail->len;
        } else {
            size_t t = c->off - c->head.len;
            iov[k].iov_base = (void *)(uintptr_t)(c->tail->data + t);
            iov[k++].iov_len = c->tail->len - t;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (w > 0) {
            c->off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out(g, c, true);
            return true;
        }
        req_fail(g, c, LG_OUT_FAILED);
        return false;
    }
    set_out(g, c, false);
    return true;
}

/* Put request n on connection c (connected and idle). */
static void req_start(engine *g, conn *c, uint32_t n)
{
    lg_entry *e = &g->led.e[n];
    const lg_arrival *a = &g->sched.a[n];
    char id[48];
    size_t idl = lg_ledger_id(&g->led, n, id, sizeof id);
    const us_buf *tail = &g->tails[a->model];
    us_buf_reset(&c->head);
    /* body = {"id":"<id>"  + tail */
    const us_buf *h = &g->heads[a->model];
    us_buf_append(&c->head, h->data, h->len);
    us_buf_printf(&c->head, "%zu\r\n\r\n{\"id\":\"%s\"", 7 + idl + 1 + tail->len, id);
    c->tail = tail;
    c->off = 0;
    set_req(g, c, n);
    c->state = CS_BUSY;
    hc_response_reset(&c->resp);
    uint64_t now = now_us(g);
    uint64_t released = e->sched_us + e->lag_us;
    e->wait_us = sat32(now > released ? now - released : 0);
    e->outcome = LG_OUT_INFLIGHT;
    c->deadline_us = now + (uint64_t)g->p->timeout_ms * 1000;
    g->last_write_us = now;
    conn_write(g, c);
}

/* Hand waiting requests to idle connections, opening new ones as allowed. */
static void pump(engine *g)
{
    while (g->wq_len > 0) {
        uint32_t n = g->wq[g->wq_head];
        conn *c = pop_idle(g);
        if (c) {
            g->wq_head = (g->wq_head + 1) % g->wq_cap;
            g->wq_len--;
            req_start(g, c, n);
            continue;
        }
        if (g->n_open >= g->p->max_connections)
            return;
        c = conn_open(g);
        if (!c) {
            /* cannot even start a connect: the request is not sent */
            g->wq_head = (g->wq_head + 1) % g->wq_cap;
            g->wq_len--;
            g->led.e[n].outcome = LG_OUT_UNSENT;
            continue;
        }
        g->wq_head = (g->wq_head + 1) % g->wq_cap;
        g->wq_len--;
        set_req(g, c, n); /* written once connected */
        c->deadline_us = now_us(g) + (uint64_t)g->p->timeout_ms * 1000;
    }
}

static int wq_push(engine *g, uint32_t n)
{
    if (g->wq_len == g->wq_cap) {
        size_t nc = g->wq_cap ? g->wq_cap * 2 : 4096;
        uint32_t *q = us_mallocarray(nc, sizeof *q);
        if (!q)
            return USHER_ERR_NOMEM;
        for (size_t i = 0; i < g->wq_len; i++)
            q[i] = g->wq[(g->wq_head + i) % g->wq_cap];
        us_free(g->wq);
        g->wq = q;
        g->wq_cap = nc;
        g->wq_head = 0;
    }
    g->wq[(g->wq_head + g->wq_len) % g->wq_cap] = n;
    g->wq_len++;
    return USHER_OK;
}

static void on_connected(engine *g, conn *c)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        g->connect_errors++;
        req_fail(g, c, LG_OUT_UNSENT);
        return;
    }
    if (c->req >= 0)
        req_start(g, c, (uint32_t)c->req); /* it was opened for this request */
    else
        make_idle(g, c);
}

static void on_response(engine *g, conn *c)
{
    uint64_t now = now_us(g);
    hc_response *r = &c->resp;
    char id[LG_ID_MAX];
    size_t idl = 0;
    int found = lg_response_id(r->body.data ? r->body.data : "", r->body.len, id, sizeof id,
                               &idl);
    if (found < 0)
        g->bad_json++;
    lg_ledger_answer(&g->led, (size_t)c->req, r->status, found == 1 ? id : NULL, idl, now);
    if (r->keep_alive && c->off == total_len(c))
        make_idle(g, c);
    else
        conn_close(g, c); /* the server closes it, or we could not finish writing */
}

static void on_readable(engine *g, conn *c)
{
    for (int round = 0; round < READS_PER_EVENT && c->state != CS_FREE; round++) {
        ssize_t k = recv(c->fd, g->rbuf, sizeof g->rbuf, 0);
        if (k > 0) {
            if (c->state != CS_BUSY) { /* bytes nobody asked for */
                g->protocol_errors++;
                conn_close(g, c);
                return;
            }
            size_t used = 0;
            int rc = hc_response_feed(&c->resp, g->rbuf, (size_t)k, &used, NULL);
            if (rc < 0) {
                g->protocol_errors++;
                US_LOGD("load: %s", c->resp.err.msg);
                req_fail(g, c, LG_OUT_FAILED);
                return;
            }
            if (rc == 1) {
                bool extra = used < (size_t)k;
                on_response(g, c);
                if (extra) { /* a response without a request */
                    g->protocol_errors++;
                    conn_close(g, c);
                }
                return;
            }
            continue;
        }
        if (k == 0) {
            if (c->state == CS_BUSY) {
                if (hc_response_eof(&c->resp, NULL) == 1) {
                    on_response(g, c);
                    conn_close(g, c);
                } else {
                    req_fail(g, c, LG_OUT_FAILED);
                }
            } else {
                conn_close(g, c); /* the server closed an idle connection */
            }
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        req_fail(g, c, LG_OUT_FAILED);
        return;
    }
}

static void on_event(engine *g, const struct epoll_event *ev)
{
    conn *c = &g->c[ev->data.u64];
    if (c->state == CS_FREE)
        return;
    if (c->state == CS_CONNECTING) {
        if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connected(g, c);
        return;
    }
    if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        on_readable(g, c);
    if (c->state == CS_BUSY && (ev->events & EPOLLOUT) && c->off < total_len(c))
        conn_write(g, c);
}

static void scan_timeouts(engine *g, uint64_t now)
{
    for (int i = 0; i < g->hiwater; i++) {
        conn *c = &g->c[i];
        if ((c->state == CS_BUSY || (c->state == CS_CONNECTING && c->req >= 0)) &&
            now >= c->deadline_us) {
            if (c->state == CS_CONNECTING)
                g->connect_errors++;
            req_fail(g, c, c->state == CS_BUSY ? LG_OUT_TIMEOUT : LG_OUT_UNSENT);
        } else if (c->state == CS_CONNECTING && c->req < 0 && now >= c->deadline_us) {
            g->connect_errors++;
            conn_close(g, c);
        }
    }
}


static void arm(engine *g, uint64_t at_us)
{
    if (at_us == g->armed_us)
        return;
    uint64_t ns = g->t0_ns + at_us * 1000;
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(ns / 1000000000ull),
                                          .tv_nsec = (long)(ns % 1000000000ull)}};
    timerfd_settime(g->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    g->armed_us = at_us;
}

static int resolve(engine *g, usher_error *err)
{
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)g->url.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(g->url.host, port, &hints, &ai);
    if (rc != 0)
        return us_err_set(err, USHER_ERR_IO, "%s: cannot resolve host: %s", g->url.authority,
                          gai_strerror(rc));
    /* the first address that accepts a connection is used for the whole run */
    const char *why = "no address";
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 && a->ai_addrlen <= sizeof g->addr) {
            memcpy(&g->addr, a->ai_addr, a->ai_addrlen);
            g->addr_len = a->ai_addrlen;
            g->family = a->ai_family;
            close(fd);
            freeaddrinfo(ai);
            return USHER_OK;
        }
        why = strerror(errno);
        close(fd);
    }
    freeaddrinfo(ai);
    return us_err_set(err, USHER_ERR_IO, "%s: cannot connect: %s", g->url.authority, why);
}

/* "/v2/models/<name, percent-encoded>/infer" */
static void model_path(char *out, size_t cap, const char *name, const char *suffix)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = (size_t)snprintf(out, cap, "/v2/models/");
    for (const unsigned char *p = (const unsigned char *)name; *p && o + 4 < cap; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    snprintf(out + o, cap - o, "%s", suffix);
}

/* GET /v2/models/NAME and build a random request from it. */
static int fetch_random_tail(engine *g, size_t m, lg_rng *rng, usher_error *err)
{
    const char *name = g->p->models[m].name;
    char path[3 * LG_NAME_MAX + 32];
    model_path(path, sizeof path, name, "");
    us_buf req;
    us_buf_init(&req, 8192);
    hc_write_head(&req, "GET", &g->url, path, NULL, UINT64_MAX);
    hc_limits lim = hc_default_limits();
    lim.max_body = (uint64_t)1 << 20; /* metadata is small */
    hc_response r;
    hc_response_init(&r, &lim);
    int timeout = g->p->timeout_ms > 0 ? g->p->timeout_ms : 10000;
    int rc = hc_exchange(&g->url, req.data, req.len, timeout, &r, err);
    if (rc == USHER_OK && r.status != 200)
        rc = us_err_set(err, USHER_ERR_NOT_FOUND, "GET %s%s: HTTP %d (%.200s)", g->url.base, path,
                        r.status, r.body.data ? r.body.data : "");
    if (rc == USHER_OK)
        rc = lg_body_tail_random(r.body.data ? r.body.data : "", r.body.len, name, rng,
                                 &g->tails[m], err);
    else
        us_err_prefix(err, rc, "model '%s' metadata: ", name);
    hc_response_free(&r);
    us_buf_free(&req);
    return rc;
}

lg_params lg_default_params(void)
{
    lg_params p;
    memset(&p, 0, sizeof p);
    p.arrivals = LG_ARRIVALS_POISSON;
    p.max_connections = 64;
    p.timeout_ms = 10000;
    p.slo_ms = 100;
    p.seed = 1;
    return p;
}

static int write_ledger(const lg_ledger *l, const lg_params *p, usher_error *err)
{
    us_writer w;
    int rc = us_writer_open(&w, p->ledger_path, err);
    if (rc < 0)
        return rc;
    us_buf b;
    us_buf_init(&b, 0);
    for (size_t i = 0; i < l->n; i++) {
        const lg_entry *e = &l->e[i];
        char id[48];
        lg_ledger_id(l, i, id, sizeof id);
        const char *model = e->model < p->n_models ? p->models[e->model].name : "?";
        us_buf_printf(&b, "%s %s %llu ", id, model, (unsigned long long)e->sched_us);
        if (e->answers > 0) {
            us_buf_printf(&b, "%u %u\n", e->latency_us, e->status);
        } else {
            const char *why = e->outcome == LG_OUT_FAILED ? "failed"
                              : e->outcome == LG_OUT_TIMEOUT || e->outcome == LG_OUT_INFLIGHT
                                  ? "timeout"
                                  : "unsent";
            us_buf_printf(&b, "-1 %s\n", why);
        }
        if (b.len > (1u << 20) || i + 1 == l->n) {
            us_writer_write(&w, b.data, b.len);
            us_buf_reset(&b);
        }
    }
    bool ok = us_buf_ok(&b);
    us_buf_free(&b);
    if (!ok) {
        us_writer_abort(&w);
        return us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory", p->ledger_path);
    }
    return us_writer_commit(&w, err);
}

static void engine_free(engine *g)
{
    if (g->c) {
        for (int i = 0; i < g->n_slots; i++) {
            if (g->c[i].state != CS_FREE)
                close(g->c[i].fd);
            hc_response_free(&g->c[i].resp);
            us_buf_free(&g->c[i].head);
        }
    }
    us_free(g->c);
    us_free(g->free_slots);
    us_free(g->idle);
    us_free(g->wq);
    for (size_t m = 0; m < LG_MAX_MODELS; m++) {
        us_buf_free(&g->tails[m]);
        us_buf_free(&g->heads[m]);
    }
    lg_schedule_free(&g->sched);
    if (g->ep >= 0)
        close(g->ep);
    if (g->tfd >= 0)
        close(g->tfd);
}

static int setup(engine *g, const lg_params *p, usher_error *err)
{
    int rc = hc_url_parse(p->url, &g->url, err);
    if (rc < 0)
        return rc;
    if (p->n_models == 0 || p->n_models > LG_MAX_MODELS)
        return us_err_set(err, USHER_ERR_INVALID, "between 1 and %d models", LG_MAX_MODELS);
    if (p->max_connections < 1 || p->max_connections > LG_MAX_CONNECTIONS)
        return us_err_set(err, USHER_ERR_INVALID, "connections must be in [1, %d]",
                          LG_MAX_CONNECTIONS);
    if (p->timeout_ms < 1 || p->timeout_ms > 3600 * 1000)
        return us_err_set(err, USHER_ERR_INVALID, "timeout must be in [1, 3600000] ms");
    const char *names[LG_MAX_MODELS];
    double rates[LG_MAX_MODELS];
    for (size_t m = 0; m < p->n_models; m++) {
        names[m] = p->models[m].name;
        rates[m] = p->models[m].rate;
        if (!p->models[m].name[0])
            return us_err_set(err, USHER_ERR_INVALID, "model %zu has no name", m);
        model_path(g->paths[m], sizeof g->paths[m], p->models[m].name, "/infer");
    }
    if (p->arrivals == LG_ARRIVALS_TRACE)
        rc = lg_trace_load(p->trace, names, p->n_models, p->duration_s, &g->sched, err);
    else
        rc = lg_schedule_draw(p->arrivals, rates, p->n_models, p->duration_s, p->seed, &g->sched,
                              err);
    if (rc < 0)
        return rc;
    rc = lg_ledger_init(&g->led, p->seed, &g->sched, err);
    if (rc < 0)
        return rc;
    /* the file descriptors: connections, epoll, timer, a few spare */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)p->max_connections + 64) {
        rlim_t want = (rlim_t)p->max_connections + 64;
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < want)
            return us_err_set(err, USHER_ERR_LIMIT,
                              "%d connections need %llu file descriptors; the limit is %llu",
                              p->max_connections, (unsigned long long)want,
                              (unsigned long long)rl.rlim_max);
    }
    rc = resolve(g, err);
    if (rc < 0)
        return rc;
    lg_rng rng;
    rng_stream(&rng, p->seed, 0x5EED1ull << 20);
    for (size_t m = 0; m < p->n_models; m++) {
        us_buf_init(&g->tails[m], (size_t)64 << 20);
        if (p->models[m].input) {
            us_mapped f;
            rc = us_file_map(p->models[m].input, (uint64_t)64 << 20, &f, err);
            if (rc < 0)
                return rc;
            rc = lg_body_tail_from_json((const char *)f.data, f.len, p->models[m].input,
                                        &g->tails[m], err);
            us_file_unmap(&f);
        } else {
            rc = fetch_random_tail(g, m, &rng, err);
        }
        if (rc < 0)
            return rc;
        /* the head of every request but its Content-Length value */
        us_buf_init(&g->heads[m], 4096);
        hc_write_head(&g->heads[m], "POST", &g->url, g->paths[m], "application/json", 0);
        if (!us_buf_ok(&g->heads[m]) || g->heads[m].len < 5)
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        g->heads[m].len -= 5; /* "0\r\n\r\n" */
    }
    g->n_slots = p->max_connections;
    g->c = us_calloc((size_t)g->n_slots, sizeof *g->c);
    g->free_slots = us_mallocarray((size_t)g->n_slots, sizeof *g->free_slots);
    g->idle = us_mallocarray((size_t)g->n_slots, sizeof *g->idle);
    if (!g->c || !g->free_slots || !g->idle)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory for %d connections", g->n_slots);
    hc_limits lim = hc_default_limits();
    for (int i = 0; i < g->n_slots; i++) {
        g->c[i].fd = -1;
        g->c[i].req = -1;
        hc_response_init(&g->c[i].resp, &lim);
        us_buf_init(&g->c[i].head, 8192);
        g->free_slots[i] = g->n_slots - 1 - i; /* slot 0 is handed out first */
    }
    g->n_free = g->n_slots;
    g->ep = epoll_create1(EPOLL_CLOEXEC);
    g->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (g->ep < 0 || g->tfd < 0)
        return us_err_set(err, USHER_ERR_IO, "epoll/timerfd: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TIMER_TAG};
    if (epoll_ctl(g->ep, EPOLL_CTL_ADD, g->tfd, &ev) != 0)
        return us_err_set(err, USHER_ERR_IO, "epoll: %s", strerror(errno));
    return USHER_OK;
}

/* Open a few connections before the clock starts and wait (briefly) for them. */
static void warm_up(engine *g)
{
    int want = g->p->max_connections < WARM_CONNS ? g->p->max_connections : WARM_CONNS;
    g->t0_ns = mono_ns();
    for (int i = 0; i < want; i++) {
        conn *c = conn_open(g);
        if (c)
            c->deadline_us = (uint64_t)g->p->timeout_ms * 1000;
    }
    struct epoll_event evs[16];
    uint64_t until = mono_ns() + 1000000000ull;
    while (mono_ns() < until) {
        bool pending = false;
        for (int i = 0; i < g->hiwater; i++)
            pending |= g->c[i].state == CS_CONNECTING;
        if (!pending)
            break;
        int k = epoll_wait(g->ep, evs, 16, 10);
        for (int i = 0; i < k; i++)
            if (evs[i].data.u64 != TIMER_TAG)
                on_event(g, &evs[i]);
    }
}

#define MAX_EVENTS 512

/* Release every arrival that is due: send it, or queue it for a connection. */
static int release_due(engine *g, size_t *next)
{
    uint64_t now = now_us(g);
    while (*next < g->sched.n && g->sched.a[*next].t_us <= now) {
        lg_entry *e = &g->led.e[*next];
        e->lag_us = sat32(now - e->sched_us);
        e->outcome = LG_OUT_WAITING;
        if (wq_push(g, (uint32_t)*next) < 0)
            return USHER_ERR_NOMEM;
        (*next)++;
        pump(g);
        now = now_us(g); /* the next one's lag includes writing this one */
    }
    return USHER_OK;
}

static int loop(engine *g, usher_error *err)
{
    const uint64_t timeout_us = (uint64_t)g->p->timeout_ms * 1000;
    uint64_t end_us = (uint64_t)llround(g->sched.duration_s * 1e6);
    if (g->sched.n > 0 && g->sched.a[g->sched.n - 1].t_us >= end_us)
        end_us = g->sched.a[g->sched.n - 1].t_us + 1;
    const uint64_t drain_us = end_us + timeout_us;
    size_t next = 0;
    uint64_t next_scan = SCAN_US;
    struct epoll_event evs[MAX_EVENTS];
    g->armed_us = UINT64_MAX;
    g->t0_ns = mono_ns();
    for (;;) {
        if (release_due(g, &next) < 0)
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory for the wait queue");
        pump(g);
        uint64_t now = now_us(g);
        if (now >= next_scan) {
            scan_timeouts(g, now);
            next_scan = now + SCAN_US;
            pump(g);
        }
        bool out = g->wq_len > 0 || g->n_out > 0;
        if (next == g->sched.n && !out)
            break;
        if (now >= drain_us)
            break;
        uint64_t wake = drain_us;
        if (next < g->sched.n && g->sched.a[next].t_us < wake)
            wake = g->sched.a[next].t_us;
        if (out && next_scan < wake)
            wake = next_scan;
        int k;
        if (wake <= now) {
            k = epoll_wait(g->ep, evs, MAX_EVENTS, 0);
        } else {
            arm(g, wake);
            k = epoll_wait(g->ep, evs, MAX_EVENTS, -1);
        }
        if (k < 0 && errno != EINTR)
            return us_err_set(err, USHER_ERR_IO, "epoll_wait: %s", strerror(errno));
        /* arrivals first: a burst of responses must not delay a send */
        if (k > 0 && release_due(g, &next) < 0)
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory for the wait queue");
        for (int i = 0; i < k; i++) {
            if (evs[i].data.u64 == TIMER_TAG) {
                uint64_t ticks;
                if (read(g->tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
                    return us_err_set(err, USHER_ERR_IO, "timerfd: %s", strerror(errno));
                g->armed_us = UINT64_MAX; /* fired: arm again next time */
                continue;
            }
            on_event(g, &evs[i]);
        }
    }
    /* the drain is over: whatever is still out is missing */
    for (int i = 0; i < g->hiwater; i++) {
        conn *c = &g->c[i];
        if (c->req >= 0)
            req_fail(g, c, c->state == CS_BUSY ? LG_OUT_TIMEOUT : LG_OUT_UNSENT);
    }
    while (g->wq_len > 0) {
        g->led.e[g->wq[g->wq_head]].outcome = LG_OUT_UNSENT;
        g->wq_head = (g->wq_head + 1) % g->wq_cap;
        g->wq_len--;
    }
    return USHER_OK;
}

int lg_run(const lg_params *p, lg_report *out, lg_ledger *ledger_out, usher_error *err)
{
    engine *g = us_calloc(1, sizeof *g);
    if (!g)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    g->p = p;
    g->ep = g->tfd = -1;
    int rc = setup(g, p, err);
    int slack = -1;
    if (rc == USHER_OK) {
        /* wake-ups at the scheduled microsecond, not rounded to 50 us */
        slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
        prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);
        warm_up(g);
        rc = loop(g, err);
        if (slack > 0)
            prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0, 0, 0);
    }
    if (rc == USHER_OK) {
        const char *names[LG_MAX_MODELS];
        double rates[LG_MAX_MODELS];
        for (size_t m = 0; m < p->n_models; m++) {
            names[m] = p->models[m].name;
            rates[m] = p->models[m].rate;
        }
        memset(out, 0, sizeof *out);
        out->seed = p->seed;
        out->connections_opened = g->opened;
        out->connections_max = p->max_connections;
        out->connect_errors = g->connect_errors;
        out->protocol_errors = g->protocol_errors;
        out->bad_json = g->bad_json;
        lg_summarize(&g->led, names, p->arrivals == LG_ARRIVALS_TRACE ? NULL : rates,
                     p->n_models, g->sched.duration_s, p->slo_ms, g->last_write_us, out);
        if (p->ledger_path)
            rc = write_ledger(&g->led, p, err);
    }
    if (rc == USHER_OK && ledger_out) {
        *ledger_out = g->led;
        memset(&g->led, 0, sizeof g->led);
    }
    lg_ledger_free(&g->led);
    engine_free(g);
    us_free(g);
    return rc;
}
