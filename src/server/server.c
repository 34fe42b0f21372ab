/*
 * server.c - the front end of `usher serve` (layer 8): KServe v2 / Open
 * Inference Protocol routes over usher's HTTP/1.1 layer (http.c), requests
 * handed to the runtime (src/runtime) and answered when their batch
 * completes.
 *
 * Threads: the HTTP layer's event loops call on_request with a whole
 * request; an infer request is parsed there and submitted to its model's
 * queue, and the loop goes on with other connections. The thread that
 * completes the request (a replica thread, or the loop itself for a
 * rejection or a run on the front-end thread) builds the answer and hands
 * it to hs_respond; the HTTP layer sends it and calls on_end, which frees
 * the request. Every status follows RELIABILITY.md PROTO-3; every error
 * body is {"error": "..."} (PROTO-2) with the request's id when it had one
 * (PROTO-5); every answer is counted once, in count_answer (LEDGER-2: the
 * front end's own refusals of an inference are in its model's ledger).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sched.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "gpu/gpu.h"
#include "server/grpc.h"
#include "server/http.h"
#include "server/oip.h"
#include "server/srv.h"
#include "usher/serve.h"

#define JSON_MAX (64u << 20) /* a response's JSON part */

usher_serve_params usher_serve_default_params(void)
{
    usher_serve_params p;
    memset(&p, 0, sizeof p);
    p.http_address = "127.0.0.1";
    p.http_port = 8000;
    p.http_threads = 2;
    p.grpc_port = -1;
    p.max_body_bytes = 64u << 20;
    p.max_connections = 1024;
    p.max_client_connections = 256;
    p.header_timeout_s = 10;
    p.body_timeout_s = 60;
    p.idle_timeout_s = 10;
    p.default_slo_ms = 100;
    p.inline_max_us = 250;
    return p;
}

static const unsigned code_list[] = {SRV_CODE_LIST};
_Static_assert(sizeof code_list / sizeof code_list[0] == SRV_CODES - 1, "SRV_CODES");

int srv_code_index(unsigned status)
{
    for (int i = 0; i < SRV_CODES - 1; i++)
        if (code_list[i] == status)
            return i;
    return SRV_CODES - 1;
}

unsigned srv_code_of(int index) { return index >= 0 && index < SRV_CODES - 1 ? code_list[index] : 0; }

srv_model *srv_find(usher_server *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->m[i].rm->name, name) == 0)
            return &s->m[i];
    return NULL;
}

/* ---- routes ------------------------------------------------------------------------- */
typedef enum route {
    R_NONE,
    R_LIVE,
    R_READY,
    R_SERVER_META,
    R_MODEL_META,
    R_MODEL_READY,
    R_INFER,
    R_MODEL_STATS,
    R_MODEL_CONFIG,
    R_ALL_STATS,
    R_REPO_INDEX,
    R_REPO_CONTROL,
    R_METRICS,
} route;

typedef struct parsed_url {
    route r;
    const char *method;   /* the one the route takes */
    char model[REPO_NAME_MAX];
    bool bad_name;        /* 400 */
    bool too_long;        /* 414 */
    int64_t version;      /* -1: none given */
    bool bad_version;
    bool load;            /* R_REPO_CONTROL: load (else unload) */
} parsed_url;

/* the next '/'-separated segment of *p into seg; false at the end */
#define URL_MAX 8192 /* bytes of a request target (INPUT-2: a header line <= 8 KiB) */

static bool segment(const char **p, char *seg, size_t cap, size_t *len)
{
    if (**p == 0)
        return false;
    if (**p == '/')
        (*p)++;
    const char *s = *p;
    while (**p && **p != '/')
        (*p)++;
    *len = (size_t)(*p - s);
    size_t n = *len < cap - 1 ? *len : cap - 1;
    memcpy(seg, s, n);
    seg[n] = 0;
    return true;
}

static void parse_url(const char *url, parsed_url *u)
{
    memset(u, 0, sizeof *u);
    u->version = -1;
    if (strlen(url) > URL_MAX) {
        u->too_long = true; /* 414 (INPUT-6) */
        return;
    }
    if (strcmp(url, "/metrics") == 0) {
        u->r = R_METRICS;
        u->method = "GET";
        return;
    }
    if (strncmp(url, "/v2", 3) != 0 || (url[3] != 0 && url[3] != '/'))
        return;
    const char *p = url + 3;
    char seg[5][REPO_NAME_MAX + 8];
    size_t len[5], n = 0;
    char extra[8];
    size_t elen;
    while (n < 5 && segment(&p, seg[n], sizeof seg[n], &len[n]))
        n++;
    if (*p && segment(&p, extra, sizeof extra, &elen) && (elen > 0 || *p))
        return; /* more than 5 segments after /v2: no such route */
    if (n > 0 && len[n - 1] == 0)
        n--; /* a trailing slash */
    if (n == 0) {
        u->r = R_SERVER_META;
        u->method = "GET";
        return;
    }
    if (strcmp(seg[0], "health") == 0 && n == 2) {
        u->r = strcmp(seg[1], "live") == 0 ? R_LIVE : strcmp(seg[1], "ready") == 0 ? R_READY : R_NONE;
        u->method = "GET";
        return;
    }
    if (strcmp(seg[0], "repository") == 0) {
        if (n == 2 && strcmp(seg[1], "index") == 0) {
            u->r = R_REPO_INDEX;
            u->method = "POST";
        } else if (n == 4 && strcmp(seg[1], "models") == 0 &&
                   (strcmp(seg[3], "load") == 0 || strcmp(seg[3], "unload") == 0)) {
            u->r = R_REPO_CONTROL;
            u->method = "POST";
            u->load = strcmp(seg[3], "load") == 0;
            if (!repo_name_ok(seg[2], len[2]))
                u->bad_name = true;
            else
                memcpy(u->model, seg[2], len[2] + 1);
        }
        return;
    }
    if (strcmp(seg[0], "models") != 0 || n < 2)
        return;
    if (n == 2 && strcmp(seg[1], "stats") == 0) {
        u->r = R_ALL_STATS;
        u->method = "GET";
        return;
    }
    if (!repo_name_ok(seg[1], len[1])) {
        u->bad_name = true;
        u->r = R_MODEL_META; /* any model route: answered 400 before anything else */
        u->method = "GET";
        return;
    }
    memcpy(u->model, seg[1], len[1] + 1);
    size_t k = 2;
    if (n >= 4 && strcmp(seg[2], "versions") == 0) {
        char *end;
        u->version = strtoll(seg[3], &end, 10);
        u->bad_version = len[3] == 0 || len[3] > 18 || *end || seg[3][0] == '-' || seg[3][0] == '+';
        k = 4;
    }
    if (n == k) {
        u->r = R_MODEL_META;
        u->method = "GET";
    } else if (n == k + 1 && strcmp(seg[k], "ready") == 0) {
        u->r = R_MODEL_READY;
        u->method = "GET";
    } else if (n == k + 1 && strcmp(seg[k], "infer") == 0) {
        u->r = R_INFER;
        u->method = "POST";
    } else if (n == k + 1 && strcmp(seg[k], "stats") == 0) {
        u->r = R_MODEL_STATS;
        u->method = "GET";
    } else if (n == k + 1 && strcmp(seg[k], "config") == 0) {
        u->r = R_MODEL_CONFIG;
        u->method = "GET";
    }
}

/* ---- per-request state ---------------------------------------------------------------- */
typedef struct srv_req {
    usher_server *s;
    hs_req *hr;
    parsed_url u;
    srv_model *model;
    const uint8_t *body;  /* the HTTP layer's (decoded from its chunks), or `decoded` */
    size_t body_len;
    uint8_t *decoded;     /* the body decoded from its Content-Encoding (gzip, deflate) */
    uint64_t t0;          /* rt_now_ns() of the request's arrival (its headers complete) */
    /* an infer in the runtime */
    rt_request *rt;
    oip_request oip;
    bool have_oip;
    bool via_rt;          /* answered by the runtime (on_done): counted in its ledger */
    /* the response */
    unsigned status;
    us_buf json, bin;
    uint64_t header_len;
    bool close;
    char method[8];    /* for the access log */
    char path[160];
    double slo_ms;     /* the model's when the request was admitted */
    uint64_t input_ns; /* decoding the body into the runtime request (Triton's compute_input) */
    char *load_config; /* a load's parameters.config (JSON text), NULL: none */
    size_t load_config_len;
} srv_req;

static void req_free(srv_req *q)
{
    if (!q)
        return;
    us_buf_free(&q->json);
    us_buf_free(&q->bin);
    us_free(q->decoded);
    if (q->have_oip)
        oip_request_free(&q->oip);
    rt_request_free(q->rt);
    us_free(q->load_config);
    us_free(q);
}

/* the HTTP layer is done with the request: answered and sent, or its client gone */
static void on_end(hs_req *hr, void *ctx)
{
    usher_server *s = ctx;
    srv_req *q = hr->user;
    if (q) {
        atomic_fetch_sub(&s->n_active, 1);
        req_free(q);
    }
    hr->user = NULL;
}

/* an answer's status as an outcome of the inference ledger (front-end refusals) */
static rt_outcome outcome_of_status(unsigned status)
{
    if (status < 300)
        return RT_OK;
    if (status == 503)
        return RT_UNAVAILABLE;
    if (status >= 500 && status != 501)
        return RT_INTERNAL;
    return RT_INVALID;
}

/* every answer, counted once: by status code (per model where the route names a served
 * one), and an inference answered without the runtime in its model's ledger */
static void count_answer(srv_req *q, unsigned status)
{
    usher_server *s = q->s;
    atomic_fetch_add(&s->http_requests, 1);
    if (status >= 300)
        atomic_fetch_add(&s->http_errors, 1);
    int k = srv_code_index(status);
    if (q->model)
        atomic_fetch_add(&q->model->http_answers[k], 1);
    else
        atomic_fetch_add(&s->http_answers[k], 1);
    if (q->model && q->u.r == R_INFER && !q->via_rt)
        atomic_fetch_add(&q->model->fe_outcome[outcome_of_status(status)], 1);
}

/* Answer the request. After this q belongs to the HTTP layer, which frees it (on_end):
 * nothing may touch it. */
static int send_buf(srv_req *q, unsigned status, const char *ctype)
{
    usher_server *s = q->s;
    count_answer(q, status);
    char extra[200];
    size_t el = 0;
    extra[0] = 0;
    if (q->bin.len)
        el += (size_t)snprintf(extra + el, sizeof extra - el,
                               "Inference-Header-Content-Length: %" PRIu64 "\r\n", q->header_len);
    if (status == 405)
        el += (size_t)snprintf(extra + el, sizeof extra - el, "Allow: %s\r\n",
                               q->u.method ? q->u.method : "GET");
    if (status == 503)
        el += (size_t)snprintf(extra + el, sizeof extra - el, "Retry-After: 1\r\n");
    /* an inference answer compressed as the client's Accept-Encoding asks (Triton does the
     * same); Inference-Header-Content-Length still counts the JSON before compression */
    uint8_t *z = NULL;
    size_t zlen = 0;
    if (q->u.r == R_INFER && status == 200) {
        oip_coding c = oip_accept_coding(hs_header_get(q->hr, "Accept-Encoding"));
        usher_error zerr;
        if (c != OIP_IDENTITY &&
            oip_deflate(c, q->json.data, q->json.len, q->bin.data, q->bin.len, &z, &zlen,
                        &zerr) == USHER_OK)
            el += (size_t)snprintf(extra + el, sizeof extra - el, "Content-Encoding: %s\r\n",
                                   c == OIP_GZIP ? "gzip" : "deflate");
    }
    size_t total = z ? zlen : q->json.len + q->bin.len;
    if (!s->p.quiet && us_log_get_level() >= US_LOG_INFO) {
        /* the access log: one event per answer (USHER_LOG=info; USHER_LOG_FORMAT=json) */
        char st[8], ms[24], bytes[24];
        snprintf(st, sizeof st, "%u", status);
        snprintf(ms, sizeof ms, "%.3f", (double)(rt_now_ns() - q->t0) * 1e-6);
        snprintf(bytes, sizeof bytes, "%zu", total);
        const char *kv[] = {"method", q->method, "path", q->path, "status", st, "ms", ms,
                            "bytes", bytes, "id", q->have_oip && q->oip.has_id ? q->oip.id : ""};
        us_log_event(US_LOG_INFO, "request", kv, 6);
    }
    /* while stopping, every answer closes its connection: the client sends nothing more on
     * it, and so nothing it sends is cut off unanswered when the server stops */
    bool close = q->close || atomic_load(&s->shutting_down);
    if (z) {
        hs_respond(q->hr, status, ctype, extra, z, zlen, NULL, 0, close);
        us_free(z);
    } else {
        hs_respond(q->hr, status, ctype, extra, q->json.data, q->json.len, q->bin.data,
                   q->bin.len, close);
    }
    return 0;
}

static int send_error(srv_req *q, unsigned status, const char *msg)
{
    us_buf_reset(&q->json);
    us_buf_reset(&q->bin);
    oip_write_error(&q->json, msg, q->have_oip && q->oip.has_id ? q->oip.id : NULL);
    return send_buf(q, status, "application/json");
}

static int send_json(srv_req *q, unsigned status)
{
    if (!us_buf_ok(&q->json))
        return send_error(q, 500, "response too large");
    return send_buf(q, status, "application/json");
}

/* ---- runtime callbacks ---------------------------------------------------------------- */
static unsigned status_of(rt_outcome o)
{
    switch (o) {
    case RT_OK:
        return 200;
    case RT_INVALID:
        return 400;
    case RT_REJECTED:
    case RT_TIMEOUT:
    case RT_UNAVAILABLE:
    case RT_CANCELLED:
        return 503;
    default:
        return 500;
    }
}

static void observe_latency(srv_model *m, double slo_ms, uint64_t ns)
{
    static const double edges[SRV_LAT_BUCKETS] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
                                                  0.2,   0.5,   1,     2,    5,    10,  30};
    double sec = (double)ns * 1e-9;
    size_t b = 0;
    while (b < SRV_LAT_BUCKETS && sec > edges[b])
        b++;
    atomic_fetch_add(&m->lat_bucket[b], 1);
    atomic_fetch_add(&m->lat_sum_us, ns / 1000);
    atomic_fetch_add(&m->lat_count, 1);
    if (sec * 1000 <= slo_ms)
        atomic_fetch_add(&m->slo_met, 1);
}

void srv_infer_ok(srv_model *m, double slo_ms, uint64_t t0, uint64_t input_ns,
                  uint64_t output_ns)
{
    observe_latency(m, slo_ms, rt_now_ns() - t0);
    atomic_fetch_add(&m->input_ns, input_ns);
    atomic_fetch_add(&m->output_ns, output_ns);
    atomic_fetch_add(&m->io_count, 1);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    atomic_store(&m->last_inference_ms,
                 (uint64_t)wall.tv_sec * 1000u + (uint64_t)wall.tv_nsec / 1000000u);
}

static int send_json_or_bin(srv_req *q);

static void on_done(rt_request *r, rt_outcome o, const char *msg, void *ctx)
{
    srv_req *q = ctx;
    us_buf_reset(&q->json);
    us_buf_reset(&q->bin);
    /* cancelled: only on_gone asks it, so nobody reads this answer; counted 499 (nginx's
     * "client closed request") in usher_http_responses_total, as gRPC counts CANCELLED */
    q->status = o == RT_CANCELLED ? 499 : status_of(o);
    if (o == RT_OK) {
        usher_error err;
        char ver[24];
        snprintf(ver, sizeof ver, "%lld", (long long)q->model->rm->version);
        uint64_t t_out = rt_now_ns();
        int rc = oip_write_response(&q->oip, q->model->rm->name, ver, r->out, r->n_out, &q->json,
                                    &q->bin, &q->header_len, &err);
        t_out = rt_now_ns() - t_out;
        if (rc < 0) {
            q->status = rc == USHER_ERR_NOT_FOUND ? 400 : 500;
            us_buf_reset(&q->json);
            us_buf_reset(&q->bin);
            oip_write_error(&q->json, err.msg, q->oip.has_id ? q->oip.id : NULL);
        } else {
            srv_infer_ok(q->model, q->slo_ms, q->t0, q->input_ns, t_out);
        }
    } else {
        oip_write_error(&q->json, msg && *msg ? msg : rt_outcome_name(o),
                        q->oip.has_id ? q->oip.id : NULL);
    }
    q->via_rt = true;
    usher_server *s = q->s;
    send_json_or_bin(q); /* q is the HTTP layer's from here */
    atomic_fetch_sub(&s->n_pending, 1);
}

/* the HTTP layer saw the client of this request go (a reset, or a close told from a
 * half-close: http.c): a request still queued in the runtime is dropped there, answered
 * RT_CANCELLED and never run (docs/serve.md, Cancel on disconnect); one running finishes and
 * its answer is dropped. On the loop's thread, after the handler returned: q->rt is set
 * (it is written only there) and alive until on_end. */
static void on_gone(hs_req *hr, void *ctx)
{
    (void)ctx;
    srv_req *q = hr->user;
    if (q && q->rt)
        rt_request_cancel(q->rt);
}

/* ---- route handlers ------------------------------------------------------------------- */
static bool all_ready(usher_server *s)
{
    if (atomic_load(&s->shutting_down))
        return false;
    bool ok = true;
    pthread_rwlock_rdlock(&s->rt_lock);
    for (size_t i = 0; i < s->n && ok; i++) /* a model unloaded on purpose does not count */
        ok = s->m[i].ctl == SRV_CTL_UNLOADED || (s->m[i].rt && rt_model_ready(s->m[i].rt));
    pthread_rwlock_unlock(&s->rt_lock);
    return ok;
}

static bool model_ready(usher_server *s, const srv_model *m)
{
    pthread_rwlock_rdlock(&s->rt_lock);
    bool ok = m->rt && rt_model_ready(m->rt) && !atomic_load(&s->shutting_down);
    pthread_rwlock_unlock(&s->rt_lock);
    return ok;
}

bool usher_server_ready(usher_server *s) { return all_ready(s); }

/* inputs or outputs with their shapes: -1 for the batch dim; for inputs (rm given), a dim
 * the session leaves dynamic that config.pbtxt fixes shows the config's value (as Triton) */
static void io_json(us_json *j, const char *key, const be_io *io, size_t n, bool batchable,
                    const repo_model *rm)
{
    int off = rm && repo_batch_dim(rm, batchable) ? 1 : 0;
    us_json_key(j, key);
    us_json_arr_begin(j);
    for (size_t i = 0; i < n; i++) {
        const repo_input *ci = rm ? repo_find_input(rm, io[i].name) : NULL;
        if (ci && ci->rank + off != io[i].shape.rank)
            ci = NULL; /* config and model disagree: every request is refused anyway */
        us_json_obj_begin(j);
        us_json_key(j, "name");
        us_json_str(j, io[i].name);
        us_json_key(j, "datatype");
        us_json_str(j, us_dtype_name(io[i].dtype));
        us_json_key(j, "shape");
        us_json_arr_begin(j);
        for (int d = 0; d < io[i].shape.rank; d++) {
            int64_t v = d == 0 && batchable ? -1 : io[i].shape.dim[d];
            if (v < 0 && ci && d >= off && ci->dim[d - off] >= 0)
                v = ci->dim[d - off];
            us_json_int(j, v);
        }
        us_json_arr_end(j);
        us_json_obj_end(j);
    }
    us_json_arr_end(j);
}

static int model_meta(srv_req *q)
{
    srv_model *m = q->model;
    const be_io *in = NULL, *out = NULL;
    size_t nin = 0, nout = 0;
    pthread_rwlock_rdlock(&q->s->rt_lock);
    bool known = m->rt && srv_model_io(m, &in, &nin, &out, &nout);
    us_json j;
    us_json_init(&j, &q->json);
    us_json_obj_begin(&j);
    us_json_key(&j, "name");
    us_json_str(&j, m->rm->name);
    us_json_key(&j, "versions");
    us_json_arr_begin(&j);
    if (!m->rm->error[0]) {
        char v[24];
        snprintf(v, sizeof v, "%lld", (long long)m->rm->version);
        us_json_str(&j, v);
    }
    us_json_arr_end(&j);
    us_json_key(&j, "platform");
    us_json_str(&j, "onnxruntime_onnx");
    if (known) {
        io_json(&j, "inputs", in, nin, m->batchable, m->rm);
        io_json(&j, "outputs", out, nout, m->batchable, NULL);
    } else {
        us_json_key(&j, "inputs");
        us_json_arr_begin(&j);
        us_json_arr_end(&j);
        us_json_key(&j, "outputs");
        us_json_arr_begin(&j);
        us_json_arr_end(&j);
        us_json_key(&j, "state");
        us_json_str(&j, "UNAVAILABLE");
        us_json_key(&j, "reason");
        us_json_str(&j, m->error[0] ? m->error : "loading");
    }
    if (m->profile_note[0]) { /* how the latency profile was measured */
        us_json_key(&j, "profile");
        us_json_str(&j, m->profile_note);
    }
    pthread_rwlock_unlock(&q->s->rt_lock);
    us_json_obj_end(&j);
    return send_json(q, 200);
}

/* does a replica of the model run on a GPU here? */
static bool on_gpu(const usher_server *s, const srv_model *m)
{
    for (int i = 0; i < m->replicas && i < RT_MAX_REPLICAS; i++)
        if (s->gpus > 0 && m->gpu[i] >= 0 && m->gpu[i] < s->gpus)
            return true;
    return false;
}

/* a datatype in config.pbtxt's spelling */
static void config_dtype(us_json *j, us_dtype t)
{
    char name[32];
    snprintf(name, sizeof name, "TYPE_%s", t == US_DT_BYTES ? "STRING" : us_dtype_name(t));
    us_json_str(j, name);
}

/* dims as Triton's JSON writes them (int64: strings), without the batch dim when the
 * requests carry one; for inputs, config.pbtxt's fixed dims where the model's are dynamic */
static void config_dims(us_json *j, const be_io *io, bool batch_dim, const repo_model *rm)
{
    int off = batch_dim ? 1 : 0;
    const repo_input *ci = rm ? repo_find_input(rm, io->name) : NULL;
    if (ci && ci->rank + off != io->shape.rank)
        ci = NULL;
    us_json_key(j, "dims");
    us_json_arr_begin(j);
    for (int d = off; d < io->shape.rank; d++) {
        int64_t v = io->shape.dim[d];
        if (v < 0 && ci && ci->dim[d - off] >= 0)
            v = ci->dim[d - off];
        char b[24];
        snprintf(b, sizeof b, "%lld", (long long)(v < 0 ? -1 : v));
        us_json_str(j, b);
    }
    us_json_arr_end(j);
}

/* GET /v2/models/M/config: the model's configuration in Triton's JSON form (the
 * protobuf JSON mapping of ModelConfig: int64 fields as strings), as usher serves it:
 * max_batch_size is the largest batch a request may carry here, instance_group the
 * plan's replicas */
static int model_config(srv_req *q)
{
    srv_model *m = q->model;
    const be_io *in = NULL, *out = NULL;
    size_t nin = 0, nout = 0;
    pthread_rwlock_rdlock(&q->s->rt_lock);
    bool known = m->rt && srv_model_io(m, &in, &nin, &out, &nout);
    if (!known) {
        pthread_rwlock_unlock(&q->s->rt_lock);
        char msg[700];
        snprintf(msg, sizeof msg, "Request for unknown model: '%s' has no available versions%s%.500s",
                 m->rm->name, m->error[0] ? ": " : "", m->error);
        return send_error(q, 400, msg);
    }
    const repo_model *rm = m->rm;
    bool batch_dim = repo_batch_dim(rm, m->batchable);
    us_json j;
    us_json_init(&j, &q->json);
    us_json_obj_begin(&j);
    us_json_key(&j, "name");
    us_json_str(&j, rm->name);
    us_json_key(&j, "platform");
    us_json_str(&j, "onnxruntime_onnx");
    us_json_key(&j, "backend");
    us_json_str(&j, "onnxruntime");
    us_json_key(&j, "version_policy");
    us_json_obj_begin(&j);
    us_json_key(&j, "latest");
    us_json_obj_begin(&j);
    us_json_key(&j, "num_versions");
    us_json_int(&j, 1);
    us_json_obj_end(&j);
    us_json_obj_end(&j);
    us_json_key(&j, "max_batch_size");
    us_json_int(&j, batch_dim && m->batchable ? m->max_batch : 0);
    us_json_key(&j, "input");
    us_json_arr_begin(&j);
    for (size_t i = 0; i < nin; i++) {
        us_json_obj_begin(&j);
        us_json_key(&j, "name");
        us_json_str(&j, in[i].name);
        us_json_key(&j, "data_type");
        config_dtype(&j, in[i].dtype);
        us_json_key(&j, "format");
        us_json_str(&j, "FORMAT_NONE");
        config_dims(&j, &in[i], batch_dim && m->batchable, rm);
        us_json_key(&j, "is_shape_tensor");
        us_json_bool(&j, false);
        us_json_key(&j, "allow_ragged_batch");
        us_json_bool(&j, false);
        us_json_key(&j, "optional");
        us_json_bool(&j, false);
        us_json_obj_end(&j);
    }
    us_json_arr_end(&j);
    us_json_key(&j, "output");
    us_json_arr_begin(&j);
    for (size_t i = 0; i < nout; i++) {
        us_json_obj_begin(&j);
        us_json_key(&j, "name");
        us_json_str(&j, out[i].name);
        us_json_key(&j, "data_type");
        config_dtype(&j, out[i].dtype);
        config_dims(&j, &out[i], batch_dim && m->batchable, NULL);
        us_json_key(&j, "label_filename");
        us_json_str(&j, "");
        us_json_key(&j, "is_shape_tensor");
        us_json_bool(&j, false);
        us_json_obj_end(&j);
    }
    us_json_arr_end(&j);
    us_json_key(&j, "instance_group");
    us_json_arr_begin(&j);
    us_json_obj_begin(&j);
    us_json_key(&j, "name");
    us_json_str(&j, rm->name);
    us_json_key(&j, "kind");
    us_json_str(&j, on_gpu(q->s, m) ? "KIND_GPU" : "KIND_CPU");
    us_json_key(&j, "count");
    us_json_int(&j, m->replicas);
    us_json_obj_end(&j);
    us_json_arr_end(&j);
    if (rm->max_queue_delay_us >= 0 || rm->n_preferred) {
        us_json_key(&j, "dynamic_batching");
        us_json_obj_begin(&j);
        us_json_key(&j, "preferred_batch_size");
        us_json_arr_begin(&j);
        for (int i = 0; i < rm->n_preferred; i++)
            us_json_int(&j, rm->preferred_batch[i]);
        us_json_arr_end(&j);
        char d[24];
        snprintf(d, sizeof d, "%lld", (long long)(rm->max_queue_delay_us > 0 ? rm->max_queue_delay_us : 0));
        us_json_key(&j, "max_queue_delay_microseconds");
        us_json_str(&j, d);
        us_json_obj_end(&j);
    }
    us_json_key(&j, "default_model_filename");
    us_json_str(&j, rm->file);
    pthread_rwlock_unlock(&q->s->rt_lock);
    us_json_obj_end(&j);
    return send_json(q, 200);
}

static int server_meta(srv_req *q)
{
    us_json j;
    us_json_init(&j, &q->json);
    us_json_obj_begin(&j);
    us_json_key(&j, "name");
    us_json_str(&j, "usher");
    us_json_key(&j, "version");
    us_json_str(&j, USHER_VERSION); /* the project's version (CMakeLists.txt) */
    us_json_key(&j, "extensions");
    us_json_arr_begin(&j);
    us_json_str(&j, "binary_tensor_data");
    us_json_str(&j, "model_configuration");
    us_json_str(&j, "model_repository");
    us_json_str(&j, "statistics");
    us_json_arr_end(&j);
    us_json_obj_end(&j);
    return send_json(q, 200);
}

const char *srv_index_state(const srv_model *m, const char **reason)
{
    bool ready = m->rt && rt_model_ready(m->rt);
    *reason = "";
    switch (m->ctl) {
    case SRV_CTL_UNLOADING:
        *reason = "unloading: its requests in flight are being answered";
        return "UNLOADING";
    case SRV_CTL_LOADING:
        *reason = "loading";
        return "LOADING";
    case SRV_CTL_UNLOADED:
        *reason = "unloaded";
        return "UNAVAILABLE";
    default:
        break;
    }
    if (ready)
        return "READY";
    if (m->rt && !m->error[0]) {
        *reason = "loading";
        return "LOADING";
    }
    *reason = m->error[0] ? m->error : "unavailable";
    return "UNAVAILABLE";
}

static int repo_index(srv_req *q)
{
    usher_server *s = q->s;
    us_json j;
    us_json_init(&j, &q->json);
    us_json_arr_begin(&j);
    pthread_rwlock_rdlock(&s->rt_lock);
    for (size_t i = 0; i < s->n; i++) {
        srv_model *m = &s->m[i];
        us_json_obj_begin(&j);
        us_json_key(&j, "name");
        us_json_str(&j, m->rm->name);
        if (!m->rm->error[0]) {
            char v[24];
            snprintf(v, sizeof v, "%lld", (long long)m->rm->version);
            us_json_key(&j, "version");
            us_json_str(&j, v);
        }
        const char *reason;
        const char *state = srv_index_state(m, &reason);
        us_json_key(&j, "state");
        us_json_str(&j, state);
        if (reason[0]) {
            us_json_key(&j, "reason");
            us_json_str(&j, reason);
        }
        us_json_obj_end(&j);
    }
    pthread_rwlock_unlock(&s->rt_lock);
    us_json_arr_end(&j);
    return send_json(q, 200);
}

/* move the parsed inputs into a runtime request, in the model's input order */
static int make_rt_request(srv_model *m, oip_request *req, uint64_t t0, rt_request **rout,
                           char *msg, size_t cap)
{
    const be_io *in = NULL, *out = NULL;
    size_t nin = 0, nout = 0;
    if (!srv_model_io(m, &in, &nin, &out, &nout)) {
        snprintf(msg, cap, "model '%s' is not ready", m->rm->name);
        return 503;
    }
    if (req->n_in != nin) {
        /* Triton's wording first (its clients match on it), then usher's */
        snprintf(msg, cap, "expected %zu inputs but got %zu inputs for model '%s' (model '%s' "
                           "takes %zu inputs, the request has %zu)",
                 nin, req->n_in, m->rm->name, m->rm->name, nin, req->n_in);
        return 400;
    }
    rt_request *r = rt_request_new();
    if (!r) {
        snprintf(msg, cap, "out of memory");
        return 500;
    }
    bool batch_dim = repo_batch_dim(m->rm, m->batchable);
    for (size_t i = 0; i < nin; i++) {
        size_t k = 0;
        while (k < req->n_in && strcmp(req->in[k].name, in[i].name) != 0)
            k++;
        if (k == req->n_in) {
            /* as many inputs as the model's, so one of the request's is not the model's:
             * Triton names that one */
            const char *odd = "?";
            for (size_t x = 0; x < req->n_in; x++) {
                size_t y = 0;
                while (y < nin && strcmp(req->in[x].name, in[y].name) != 0)
                    y++;
                if (y == nin) {
                    odd = req->in[x].name;
                    break;
                }
            }
            snprintf(msg, cap, "unexpected inference input '%s' for model '%s' (model '%s' has "
                               "an input '%s' the request lacks)",
                     odd, m->rm->name, m->rm->name, in[i].name);
            rt_request_free(r);
            return 400;
        }
        /* config.pbtxt's data_type and dims, usher.yaml's max_dims */
        if (repo_check_input(m->rm, &req->in[k], batch_dim, msg, cap) < 0) {
            rt_request_free(r);
            return 400;
        }
        r->in[i] = req->in[k];
        req->in[k].data = NULL; /* now the runtime request's */
        req->in[k].bytes = 0;
        r->n_in = i + 1; /* freed with it, should a later input be refused */
    }
    r->n_in = nin;
    r->rows = 1;
    r->member = m->group ? m->member : 0;
    if (m->batchable) {
        int64_t rows = r->in[0].shape.rank > 0 ? r->in[0].shape.dim[0] : -1;
        for (size_t i = 0; i < nin; i++)
            if (r->in[i].shape.rank == 0 || r->in[i].shape.dim[0] != rows) {
                snprintf(msg, cap, "input '%s': its first dim must be the batch size, the same "
                                   "for every input",
                         r->in[i].name);
                rt_request_free(r);
                return 400;
            }
        if (rows < 1 || rows > m->max_batch) {
            snprintf(msg, cap, "batch of %lld rows: model '%s' takes 1 to %d per request",
                     (long long)rows, m->rm->name, m->max_batch);
            rt_request_free(r);
            return 400;
        }
        r->rows = rows;
    }
    /* the SLO counts from the request's arrival here, not from its submit: reading and
     * decoding the body are part of the latency the client sees */
    r->deadline_ns = t0 + (uint64_t)(m->slo_ms * 1e6);
    r->slo_deadline = true;
    if (req->has_timeout) {
        /* a request may shorten its deadline, never lengthen it past the model's */
        uint64_t t = req->timeout_us > UINT64_MAX / 2000 ? UINT64_MAX / 2 : req->timeout_us * 1000;
        if (t0 + t < r->deadline_ns) {
            r->deadline_ns = t0 + t;
            r->slo_deadline = false;
        }
    }
    *rout = r;
    return 0;
}

static int infer(srv_req *q)
{
    usher_server *s = q->s;
    srv_model *m = q->model;
    usher_error err;
    uint64_t t_in = rt_now_ns();
    /* a compressed body (Content-Encoding), decoded within the body limit: a
     * decompression bomb stops there, 413 */
    const char *ce = hs_header_get(q->hr, "Content-Encoding");
    int coding = oip_coding_parse(ce);
    if (coding < 0) {
        atomic_fetch_add(&m->invalid, 1);
        char msg[160];
        snprintf(msg, sizeof msg, "unsupported Content-Encoding '%.60s': gzip, deflate or "
                                  "identity", ce);
        return send_error(q, 415, msg);
    }
    if (coding != OIP_IDENTITY) {
        size_t dlen = 0;
        int drc = oip_inflate((oip_coding)coding, q->body, q->body_len, s->p.max_body_bytes,
                              &q->decoded, &dlen, &err);
        if (drc < 0) {
            atomic_fetch_add(&m->invalid, 1);
            return send_error(q, drc == USHER_ERR_LIMIT ? 413 : drc == USHER_ERR_NOMEM ? 503 : 400,
                              err.msg);
        }
        q->body = q->decoded;
        q->body_len = dlen;
    }
    const char *hl = hs_header_get(q->hr, "Inference-Header-Content-Length");
    uint64_t header_len = 0;
    if (hl) {
        char *end;
        unsigned long long v = strtoull(hl, &end, 10);
        /* 0 (Triton's clients send it): the whole body is JSON, as without the header */
        if (!*hl || *end || hl[0] == '-' || hl[0] == '+' || v > q->body_len) {
            atomic_fetch_add(&m->invalid, 1);
            return send_error(q, 400, "Inference-Header-Content-Length: an integer from 0 "
                                      "to the body's length");
        }
        header_len = v;
    }
    oip_limits lim = oip_default_limits();
    lim.max_body = s->p.max_body_bytes;
    lim.max_total_bytes = s->p.max_body_bytes;
    int rc = oip_parse_request(q->body, q->body_len, header_len, &lim,
                               &q->oip, &err);
    if (rc < 0) {
        atomic_fetch_add(&m->invalid, 1);
        return send_error(q, rc == USHER_ERR_LIMIT ? 413 : rc == USHER_ERR_UNSUPPORTED ? 501 : 400,
                          err.msg);
    }
    q->have_oip = true;
    char msg[800];
    srv_infer x = {.done = on_done, .ctx = q, .t0 = q->t0, .t_in = t_in,
                   .slo_ms_out = &q->slo_ms, .input_ns_out = &q->input_ns};
    int st = srv_infer_submit(s, m, &q->oip, &x, &q->rt, msg, sizeof msg);
    if (st)
        return send_error(q, (unsigned)st, msg);
    return 0; /* answered through on_done, maybe already */
}

int srv_infer_submit(usher_server *s, srv_model *m, oip_request *req, srv_infer *x,
                     rt_request **rt_out, char *msg, size_t cap)
{
    /* from here to the submit, the model's runtime and plan cannot change
     * under the request (a new plan waits for the lock) */
    int st = 0;
    rt_request *r = NULL;
    pthread_rwlock_rdlock(&s->rt_lock);
    /* after the parse, so that these answers echo the id too (PROTO-5) */
    if (atomic_load(&s->shutting_down)) {
        st = 503;
        snprintf(msg, cap, "the server is shutting down");
    } else if (!m->rt || !rt_model_ready(m->rt)) {
        st = 503;
        snprintf(msg, cap, "model '%s' is not ready%s%.500s", m->rm->name,
                 m->error[0] ? ": " : "", m->error);
    } else {
        st = make_rt_request(m, req, x->t0, &r, msg, cap);
    }
    if (st) {
        pthread_rwlock_unlock(&s->rt_lock);
        if (st == 400)
            atomic_fetch_add(&m->invalid, 1);
        return st;
    }
    r->done = x->done;
    r->ctx = x->ctx;
    *rt_out = r; /* before the submit: done may run within it */
    *x->slo_ms_out = m->slo_ms;
    *x->input_ns_out = rt_now_ns() - x->t_in;
    atomic_fetch_add(&s->n_pending, 1);
    rt_outcome o = rt_submit(m->rt, r);
    (void)o; /* answered through done either way, maybe already */
    pthread_rwlock_unlock(&s->rt_lock);
    return 0;
}

static int send_json_or_bin(srv_req *q)
{
    return send_buf(q, q->status, q->bin.len ? "application/octet-stream" : "application/json");
}

/* model control runs on a thread of its own: a load profiles the model and waits for its
 * workers, an unload drains its requests, and the HTTP layer's event loop goes on meanwhile;
 * the answer is handed to the HTTP layer from that thread, as a runtime's completion is */
static void *control_thread(void *arg)
{
    srv_req *q = arg;
    usher_server *s = q->s;
    char msg[700];
    unsigned st = srv_control_params(s, q->u.model, q->u.load, q->load_config,
                                     q->load_config_len, msg, sizeof msg);
    atomic_fetch_sub(&s->control_calls, 1);
    if (st == 200) {
        us_buf_reset(&q->json);
        send_buf(q, 200, NULL);
    } else {
        send_error(q, st, msg);
    }
    atomic_fetch_sub(&s->n_pending, 1);
    return NULL;
}

/*
 * A load's body (Triton's repository extension): empty, or a JSON object whose optional
 * "parameters" object may hold "config", a string: the model's configuration as JSON
 * (repo_config_from_json), used instead of config.pbtxt for this load. "file:<path>"
 * parameters (model files sent with the load) are refused: not built. An unload's body is
 * not read. 0, or the status of a refusal with msg.
 */
#define LOAD_BODY_MAX (2u * REPO_CONFIG_JSON_MAX + 4096u) /* the config escaped as a string */

static unsigned load_params(srv_req *q, char *msg, size_t cap)
{
    if (!q->u.load || q->body_len == 0)
        return 0;
    if (q->body_len > LOAD_BODY_MAX) {
        snprintf(msg, cap, "load request body of %zu bytes: at most %u", q->body_len,
                 LOAD_BODY_MAX);
        return 413;
    }
    us_jsonr_limits lim = us_jsonr_default_limits();
    lim.max_len = LOAD_BODY_MAX;
    lim.max_depth = 16;
    us_jsonr_doc *d = NULL;
    usher_error e;
    if (us_jsonr_parse((const char *)q->body, q->body_len, &lim, &d, NULL, &e) < 0) {
        snprintf(msg, cap, "load request body: %.300s", e.msg);
        return e.code == USHER_ERR_NOMEM ? 503 : 400;
    }
    unsigned st = 0;
    us_jsonr_val root = us_jsonr_root(d), ps = us_jsonr_get(d, root, "parameters");
    if (us_jsonr_type_of(d, root) != US_JSONR_OBJECT) {
        snprintf(msg, cap, "load request body: expected a JSON object");
        st = 400;
    } else if (ps != US_JSONR_NONE && us_jsonr_type_of(d, ps) != US_JSONR_OBJECT) {
        snprintf(msg, cap, "load request body: field 'parameters': expected an object");
        st = 400;
    }
    for (us_jsonr_val k = st ? US_JSONR_NONE : us_jsonr_first(d, ps); k != US_JSONR_NONE && !st;
         k = us_jsonr_next(d, us_jsonr_next(d, k))) {
        us_jsonr_val v = us_jsonr_next(d, k);
        char key[64];
        size_t kl = us_jsonr_str_copy(d, k, key, sizeof key);
        for (size_t i = 0; i < kl && i < sizeof key - 1; i++)
            if ((unsigned char)key[i] < 0x20 || (unsigned char)key[i] >= 0x7f)
                key[i] = '?';
        if (kl == 6 && strcmp(key, "config") == 0) {
            size_t n = us_jsonr_str_len(d, v);
            if (us_jsonr_type_of(d, v) != US_JSONR_STRING) {
                snprintf(msg, cap, "load request body: field 'parameters.config': expected a "
                                   "string (the model configuration as JSON)");
                st = 400;
            } else if (n > REPO_CONFIG_JSON_MAX) {
                snprintf(msg, cap, "load request body: field 'parameters.config': %zu bytes, "
                                   "at most %u", n, REPO_CONFIG_JSON_MAX);
                st = 400;
            } else if (!(q->load_config = us_malloc(n + 1))) {
                snprintf(msg, cap, "out of memory");
                st = 503;
            } else {
                us_jsonr_str_copy(d, v, q->load_config, n + 1);
                q->load_config_len = n;
            }
        } else if (kl >= 5 && strncmp(key, "file:", 5) == 0) {
            snprintf(msg, cap, "load request body: field 'parameters.%.60s': model files sent "
                               "with a load are not supported (the repository's files load)",
                     key);
            st = 400;
        } else {
            snprintf(msg, cap, "load request body: field 'parameters.%.60s%s': unknown load "
                               "parameter (usher takes 'config')",
                     key, kl >= sizeof key ? "..." : "");
            st = 400;
        }
    }
    us_jsonr_free(d);
    return st;
}

static int repo_control(srv_req *q)
{
    usher_server *s = q->s;
    if (!s->p.model_control_explicit)
        return send_error(q, 503, "explicit model load / unload is not allowed if polling is "
                                  "enabled");
    char pmsg[400];
    unsigned pst = load_params(q, pmsg, sizeof pmsg);
    if (pst)
        return send_error(q, pst, pmsg);
    if (atomic_fetch_add(&s->control_calls, 1) >= SRV_CONTROL_MAX_CALLS) {
        atomic_fetch_sub(&s->control_calls, 1);
        return send_error(q, 503, "too many model loads and unloads in progress: retry later");
    }
    atomic_fetch_add(&s->n_pending, 1); /* a stop waits for its answer */
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &a, control_thread, q);
    pthread_attr_destroy(&a);
    if (rc != 0) {
        atomic_fetch_sub(&s->control_calls, 1);
        atomic_fetch_sub(&s->n_pending, 1);
        return send_error(q, 503, "cannot start the model control thread: retry later");
    }
    return 0;
}

static int dispatch(srv_req *q, const char *method)
{
    usher_server *s = q->s;
    parsed_url *u = &q->u;
    if (u->too_long) {
        q->close = true;
        return send_error(q, 414, "request target over 8 KiB");
    }
    if (u->r == R_NONE)
        return send_error(q, 404, "no such route");
    /* before the method: an invalid name is a bad request whatever the method */
    if (u->bad_name)
        return send_error(q, 400, "invalid model name (letters, digits, '-', '_', '.'; not "
                                  "'.' or '..')");
    if (strcmp(method, u->method) != 0 &&
        !(strcmp(method, "HEAD") == 0 && strcmp(u->method, "GET") == 0)) {
        if (u->model[0]) /* counted as the model's (an inference route: in its ledger) */
            q->model = srv_find(s, u->model);
        return send_error(q, 405, "method not allowed on this route");
    }
    switch (u->r) {
    case R_LIVE:
        return send_buf(q, 200, NULL);
    case R_READY:
        return send_buf(q, all_ready(s) ? 200 : 400, NULL);
    case R_SERVER_META:
        return server_meta(q);
    case R_REPO_INDEX:
        return repo_index(q);
    case R_REPO_CONTROL:
        return repo_control(q);
    case R_METRICS:
        srv_metrics(s, &q->json);
        return send_buf(q, 200, "text/plain; version=0.0.4");
    case R_ALL_STATS:
        srv_stats_json(s, NULL, &q->json);
        return send_json(q, 200);
    default:
        break;
    }
    /* model routes */
    q->model = srv_find(s, u->model);
    if (!q->model) {
        char msg[200];
        /* Triton's wording: clients written for it match on it */
        snprintf(msg, sizeof msg, "Request for unknown model: '%s' is not found", u->model);
        return send_error(q, 404, msg);
    }
    if (u->version >= 0 || u->bad_version) {
        pthread_rwlock_rdlock(&s->rt_lock); /* a load may change the version (srv_control) */
        bool no_such = u->bad_version || q->model->rm->error[0] ||
                       u->version != q->model->rm->version;
        pthread_rwlock_unlock(&s->rt_lock);
        if (no_such) {
            char msg[240];
            if (u->bad_version)
                snprintf(msg, sizeof msg, "Request for unknown model: '%s' has no such version "
                                          "(a version is a non-negative integer)", u->model);
            else
                snprintf(msg, sizeof msg, "Request for unknown model: '%s' version %lld is not "
                                          "found", u->model, (long long)u->version);
            return send_error(q, 404, msg);
        }
    }
    switch (u->r) {
    case R_MODEL_META:
        return model_meta(q);
    case R_MODEL_READY:
        return send_buf(q, model_ready(s, q->model) ? 200 : 400, NULL);
    case R_MODEL_STATS:
        srv_stats_json(s, q->model, &q->json);
        return send_json(q, 200);
    case R_MODEL_CONFIG:
        return model_config(q);
    case R_INFER:
        return infer(q);
    default:
        return send_error(q, 404, "no such route");
    }
}

/* every request the HTTP layer has, refused there or not, is answered here */
static void on_request(hs_req *hr, void *ctx)
{
    usher_server *s = ctx;
    srv_req *q = us_calloc(1, sizeof *q);
    if (!q) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        atomic_fetch_add(&s->http_requests, 1);
        atomic_fetch_add(&s->http_errors, 1);
        atomic_fetch_add(&s->http_answers[srv_code_index(503)], 1);
        hs_respond(hr, 503, "application/json", "Retry-After: 1\r\n", oom, sizeof oom - 1,
                   NULL, 0, true);
        return;
    }
    hr->user = q;
    atomic_fetch_add(&s->n_active, 1);
    q->s = s;
    q->hr = hr;
    /* arrival: when the headers were complete (the HTTP layer's clock is monotonic too) */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t mono = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t now = rt_now_ns(), waited = mono > hr->t0_ns ? mono - hr->t0_ns : 0;
    q->t0 = now > waited ? now - waited : now;
    us_buf_init(&q->json, JSON_MAX);
    us_buf_init(&q->bin, (size_t)s->p.max_body_bytes * 4);
    snprintf(q->method, sizeof q->method, "%.7s", hr->method);
    /* the decoded path (as sent when it did not decode) */
    snprintf(q->path, sizeof q->path, "%.159s", hr->path[0] ? hr->path : hr->target);
    if (hr->path[0])
        parse_url(hr->path, &q->u);
    if (hr->status) {
        /* refused by the HTTP layer (framing, a read timeout, a limit): the answer names
         * the model of an inference route, for its ledger */
        if (q->u.r == R_INFER && !q->u.bad_name)
            q->model = srv_find(s, q->u.model);
        q->close = true;
        char msg[200];
        snprintf(msg, sizeof msg, "%s", hr->error);
        if (hr->status == 413)
            snprintf(msg, sizeof msg, "request body over the limit of %" PRIu64 " bytes",
                     s->p.max_body_bytes);
        send_error(q, hr->status, msg);
        return;
    }
    q->body = hr->body;
    q->body_len = hr->body_len;
    dispatch(q, hr->method);
}

/* ---- start, plan changes and stop -------------------------------------------------------- */
static void model_cfg(const usher_server *s, const srv_model *m, rt_model_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->name, sizeof cfg->name, "%s", m->rm->name);
    snprintf(cfg->path, sizeof cfg->path, "%s", m->rm->path);
    cfg->max_batch = m->batchable ? m->max_batch : 1;
    cfg->has_batch_dim = m->batchable;
    cfg->default_timeout_ns = (uint64_t)(m->slo_ms * 1e6);
    for (int b = 1; b <= cfg->max_batch && b <= SRV_MAX_PROFILE_BATCH; b++)
        cfg->latency_ns[b] = m->lat_ns[b];
    memcpy(cfg->ref_elems, m->ref_elems, sizeof cfg->ref_elems);
    /* config.pbtxt's dynamic_batching, with Triton's meaning (docs/serve.md) */
    const repo_model *rm = m->rm;
    cfg->max_queue_delay_ns = rm->max_queue_delay_us < 0    ? 0
                              : rm->max_queue_delay_us == 0 ? -1
                                                            : rm->max_queue_delay_us * 1000;
    for (int i = 0; i < rm->n_preferred && i < RT_MAX_PREFERRED; i++)
        if (rm->preferred_batch[i] <= cfg->max_batch)
            cfg->preferred_batch[cfg->n_preferred++] = rm->preferred_batch[i];
    cfg->replicas = m->replicas;
    cfg->inline_max_ns = (uint64_t)s->p.inline_max_us * 1000;
    cfg->be = be_default_options();
    cfg->be.intra_threads = m->threads;
    cfg->be.inter_threads = 1;
    cfg->be.ort_library = s->ort_lib[0] ? s->ort_lib : NULL;
    snprintf(cfg->device, sizeof cfg->device, "cpu");
    cfg->be.device = cfg->device;
    for (int i = 0; i < m->replicas && i < RT_MAX_REPLICAS; i++)
        cfg->place[i].batch = m->rbatch[i]; /* its runs at the plan's batch, timed apart */
    srv_place_gpus(s, m, cfg);
}

bool srv_place_gpus(const usher_server *s, const srv_model *m, rt_model_cfg *cfg)
{
    /* a plan file's GPU replicas: the CUDA provider on that device, the MPS share
     * in the worker's environment (docs/serve.md: GPUs) */
    bool any = false;
    for (int i = 0; i < m->replicas && i < cfg->replicas && i < RT_MAX_REPLICAS; i++)
        if (s->gpus > 0 && m->gpu[i] >= 0 && m->gpu[i] < s->gpus) {
            snprintf(cfg->place[i].device, sizeof cfg->place[i].device, "cuda:%d", m->gpu[i]);
            int share = m->share[i] < 100 ? m->share[i] : 0;
            if (s->p.gpu_share_sm)
                cfg->place[i].sm_percentage = share;
            else
                cfg->place[i].mps_percentage = share;
            any = true;
        }
    return any;
}

static void start_models(usher_server *s)
{
    for (size_t i = 0; i < s->n; i++) {
        srv_model *m = &s->m[i];
        if (m->error[0] || m->replicas <= 0 || m->rt) /* m->rt: a merge group's */
            continue;
        rt_model_cfg cfg;
        model_cfg(s, m, &cfg);
        usher_error e;
        if (rt_model_new(&cfg, s->exe, &m->rt, &e) < 0) {
            snprintf(m->error, sizeof m->error, "%s", e.msg);
            m->rt = NULL;
        }
    }
}

void srv_stats_add(rt_model_stats *a, const rt_model_stats *b)
{
    a->received += b->received;
    a->in_flight += b->in_flight;
    a->queued += b->queued;
    for (int o = 0; o < RT_OUTCOME_COUNT; o++)
        a->outcome[o] += b->outcome[o];
    a->batches += b->batches;
    a->batch_rows += b->batch_rows;
    a->queue_ns += b->queue_ns;
    a->compute_ns += b->compute_ns;
    a->started_late += b->started_late;
    a->worker_deaths += b->worker_deaths;
    a->inline_runs += b->inline_runs;
    a->inline_handoffs += b->inline_handoffs;
    a->probes += b->probes;
    a->shed_by_scale += b->shed_by_scale;
}

void srv_model_stats(const srv_model *m, rt_model_stats *out)
{
    *out = m->retired;
    /* the front end's answers complete the ledger: received = outcomes + in flight */
    for (int o = 0; o < RT_OUTCOME_COUNT; o++) {
        uint64_t v = atomic_load(&m->fe_outcome[o]);
        out->outcome[o] += v;
        out->received += v;
    }
    out->replicas_ready = 0;
    out->latency_scale = 0;
    out->profile_factor = 1.0; /* the current runtime's, below */
    rt_model_stats st;
    if (m->old) { /* a group member's: the group's old runtime, its own counters there */
        if (m->group)
            rt_model_member_stats(m->old, m->member, &st);
        else
            rt_model_get_stats(m->old, &st);
        srv_stats_add(out, &st);
    }
    if (m->rt) {
        srv_model_rt_stats(m, m->rt, &st);
        srv_stats_add(out, &st);
        out->replicas_ready = st.replicas_ready;
        out->latency_scale = st.latency_scale;
        out->shedding = st.shedding;
        out->arrival_rate = st.arrival_rate;
        out->admission_margin_ns = st.admission_margin_ns;
        out->latency_learned = st.latency_learned;
        out->profile_factor = st.profile_factor;
    }
}

/* Drain and stop a runtime that readers can no longer reach for new work
 * (m->old, or m->rt at shutdown), fold its final counters into m->retired,
 * then free it. Call without rt_lock. */
static void retire(usher_server *s, srv_model *m, rt_model **slot, uint64_t drain_ns)
{
    rt_model *r = *slot;
    if (!r)
        return;
    rt_model_stop(r, drain_ns);
    rt_model_stats st;
    rt_model_get_stats(r, &st);
    pthread_rwlock_wrlock(&s->rt_lock);
    srv_stats_add(&m->retired, &st);
    *slot = NULL;
    pthread_rwlock_unlock(&s->rt_lock);
    rt_model_free(r, 0);
}

void srv_plan_copy(srv_model *dst, const srv_model *src)
{
    dst->replicas = src->replicas;
    dst->threads = src->threads;
    dst->max_batch = src->max_batch;
    dst->batchable = src->batchable;
    dst->slo_ms = src->slo_ms;
    dst->rate = src->rate;
    dst->capacity = src->capacity;
    dst->plan_note = src->plan_note;
    memcpy(dst->gpu, src->gpu, sizeof dst->gpu);
    memcpy(dst->share, src->share, sizeof dst->share);
    memcpy(dst->rbatch, src->rbatch, sizeof dst->rbatch);
    memcpy(dst->plan_lat_ms, src->plan_lat_ms, sizeof dst->plan_lat_ms);
    memcpy(dst->plan_coloc_ms, src->plan_coloc_ms, sizeof dst->plan_coloc_ms);
}

static bool same_plan(const srv_model *a, const srv_model *b)
{
    return a->replicas == b->replicas && a->threads == b->threads &&
           a->max_batch == b->max_batch && a->batchable == b->batchable &&
           a->slo_ms == b->slo_ms && memcmp(a->gpu, b->gpu, sizeof a->gpu) == 0 &&
           memcmp(a->share, b->share, sizeof a->share) == 0 &&
           memcmp(a->rbatch, b->rbatch, sizeof a->rbatch) == 0;
}

#define RELOAD_READY_TIMEOUT_NS (120ull * 1000000000ull)
#define SHUTDOWN_GRACE_MS 2000 /* at most this long for requests on their way at a stop */
#define SHUTDOWN_QUIET_MS 100  /* an open connection quiet this long has nothing coming */

int srv_rt_start(usher_server *s, const rt_model_cfg *cfg, rt_model **out, char *why,
                 size_t cap)
{
    usher_error e = {0};
    rt_model *fresh = NULL;
    *out = NULL;
    if (rt_model_new(cfg, s->exe, &fresh, &e) < 0) {
        snprintf(why, cap, "%s", e.msg);
        return -1;
    }
    uint64_t until = rt_now_ns() + RELOAD_READY_TIMEOUT_NS;
    while (!rt_model_ready(fresh) && rt_now_ns() < until && !atomic_load(&s->shutting_down))
        usleep(10000);
    if (!rt_model_ready(fresh)) {
        snprintf(why, cap, "%s", atomic_load(&s->shutting_down) ? "the server is shutting down"
                                                                : "its workers did not become ready");
        rt_model_free(fresh, 0);
        return -1;
    }
    *out = fresh;
    return 0;
}

/* the reload's list of what it did not apply: ", " between, each as what'name' */
static void failed_add(char *failed, size_t cap, const char *what, const char *name)
{
    size_t l = strlen(failed);
    snprintf(failed + l, cap - l, "%s%s'%s'", l ? ", " : "", what, name);
}

int usher_server_reload(usher_server *s, uint64_t drain_ms, int *changed, usher_error *err)
{
    if (changed)
        *changed = 0;
    if (!s || s->stopped || atomic_load(&s->shutting_down))
        return us_err_set(err, USHER_ERR_INVALID, "the server is shutting down");
    pthread_mutex_lock(&s->reload_mu);
    /* the new plan, on copies: readers keep the current one meanwhile */
    srv_model *next = us_calloc(s->n ? s->n : 1, sizeof *next);
    repo_model *rms = us_calloc(s->n ? s->n : 1, sizeof *rms);
    int rc = USHER_OK;
    if (!next || !rms) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < s->n; i++) {
        const srv_model *m = &s->m[i];
        rms[i] = *m->rm;
        next[i].rm = &rms[i];
        memcpy(next[i].error, m->error, sizeof m->error);
        memcpy(next[i].lat_ns, m->lat_ns, sizeof m->lat_ns);
        memcpy(next[i].ref_elems, m->ref_elems, sizeof m->ref_elems);
        memcpy(next[i].profile_note, m->profile_note, sizeof m->profile_note);
        next[i].prof_max = m->prof_max;
        srv_plan_copy(&next[i], m);
    }
    if (s->p.plan) {
        rc = srv_plan_file(s, s->p.plan, next, s->n, err);
    } else {
        for (size_t i = 0; i < s->n && rc == USHER_OK; i++)
            if (!next[i].error[0])
                rc = repo_reread_objectives(s->repo_dir, &rms[i], err);
        if (rc == USHER_OK) {
            srv_plan_cpu_models(s, next, s->n);
            /* usher.yaml's max_dims take effect now, for every model: the check reads
             * them under rt_lock */
            pthread_rwlock_wrlock(&s->rt_lock);
            for (size_t i = 0; i < s->n; i++)
                if (!next[i].error[0]) {
                    memcpy(s->repo.m[i].inputs, rms[i].inputs, sizeof rms[i].inputs);
                    s->repo.m[i].n_inputs = rms[i].n_inputs;
                }
            pthread_rwlock_unlock(&s->rt_lock);
        }
    }
    if (rc < 0)
        goto out;
    char failed[512] = "";
    /* merge groups: their replicas follow the members' new plans, through the same switch
     * as a plain model's below (group.c); a change of members is refused, the group kept */
    for (size_t k = 0; k < s->n_groups; k++) {
        srv_group *g = &s->groups[k];
        char why[USHER_ERROR_MAX];
        if (!g->rt)
            continue;
        int r = srv_group_reload(s, g, next, drain_ms * 1000000ull, why, sizeof why);
        if (r > 0 && changed)
            *changed += g->n; /* each member switched */
        if (r < 0) {
            US_LOGW("merge group '%s': the new plan is not applied: %s; the group serves as "
                    "before", g->name, why);
            failed_add(failed, sizeof failed, "merge group ", g->name);
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        srv_model *m = &s->m[i], *nx = &next[i];
        if (!m->rt || m->group || m->error[0] || nx->error[0] || nx->replicas <= 0)
            continue; /* unavailable, a group's member, or left out of the new plan: as it
                         was */
        if (strcmp(srv_group_name(m), srv_group_name(nx)) != 0) {
            /* a plain model the new plan puts in a merge group (or out of the one that
             * could not be formed at start): groups are formed at start only */
            US_LOGW("model '%s': the new plan is not applied: it puts the model in merge group "
                    "'%s' (was '%s'); merge groups are formed at start only: restart usher "
                    "serve to apply it; the model serves as before",
                    m->rm->name, srv_group_name(nx), srv_group_name(m));
            failed_add(failed, sizeof failed, "", m->rm->name);
            continue;
        }
        if (same_plan(m, nx)) { /* the runtime stays; rate, capacity, note and the plan's
                                   predicted latencies may differ */
            pthread_rwlock_wrlock(&s->rt_lock);
            srv_plan_copy(m, nx);
            pthread_rwlock_unlock(&s->rt_lock);
            continue;
        }
        rt_model_cfg cfg;
        model_cfg(s, nx, &cfg);
        rt_model *fresh = NULL;
        char why[sizeof(usher_error){0}.msg];
        if (srv_rt_start(s, &cfg, &fresh, why, sizeof why) < 0) {
            US_LOGW("model '%s': the new plan is not applied: %s", m->rm->name, why);
            failed_add(failed, sizeof failed, "", m->rm->name);
            continue;
        }
        /* switch: requests admitted from now on go to the new runtime */
        pthread_rwlock_wrlock(&s->rt_lock);
        m->old = m->rt;
        m->rt = fresh;
        srv_plan_copy(m, nx);
        pthread_rwlock_unlock(&s->rt_lock);
        if (changed)
            (*changed)++;
        /* the old runtime answers everything it has, then stops */
        retire(s, m, &m->old, drain_ms * 1000000ull);
    }
    if (failed[0])
        rc = us_err_set(err, USHER_ERR_IO, "the new plan was not applied to %s: the old one "
                                           "serves them", failed);
out:
    us_free(next);
    us_free(rms);
    pthread_mutex_unlock(&s->reload_mu);
    return rc;
}

/* ---- model control (docs/serve.md, Model control) --------------------------------------- */
#define UNLOAD_DRAIN_NS (30ull * 1000000000ull) /* an unload's requests in flight: at most this */

/* the state of a model under rt_lock held for writing */
static void set_ctl(usher_server *s, srv_model *m, srv_ctl c, const char *error)
{
    pthread_rwlock_wrlock(&s->rt_lock);
    m->ctl = c;
    if (error)
        snprintf(m->error, sizeof m->error, "%s", error);
    pthread_rwlock_unlock(&s->rt_lock);
}

/* load (or reload) m: its directory read again (config: a load's JSON configuration instead
 * of config.pbtxt; NULL: none), profiled and planned alone, its runtime started and ready,
 * and only then visible; the runtime it replaces drains. reload_mu held. */
static unsigned control_load(usher_server *s, srv_model *m, const char *config,
                             size_t config_len, char *msg, size_t cap)
{
    size_t idx = (size_t)(m - s->m);
    const char *name = m->rm->name;
    pthread_rwlock_rdlock(&s->rt_lock);
    bool serving = m->rt != NULL;
    pthread_rwlock_unlock(&s->rt_lock);
    if (!serving) /* a reload keeps READY: the current runtime serves until the new one is */
        set_ctl(s, m, SRV_CTL_LOADING, "");
    repo_model *rm = us_calloc(1, sizeof *rm);
    srv_model *nx = us_calloc(1, sizeof *nx);
    rt_model *fresh = NULL;
    usher_error e = {0};
    char why[600] = "";
    if (!rm || !nx) {
        snprintf(why, sizeof why, "out of memory");
        goto fail;
    }
    if (repo_scan_one_config(s->repo_dir, name, config, config_len, rm, &e) < 0) {
        snprintf(why, sizeof why, "%s", e.msg);
        goto fail;
    }
    if (rm->error[0]) {
        snprintf(why, sizeof why, "%s", rm->error);
        goto fail;
    }
    nx->rm = rm;
    memset(nx->gpu, 0xff, sizeof nx->gpu);
    if (s->p.plan) {
        if (srv_plan_file(s, s->p.plan, nx, 1, &e) < 0)
            snprintf(nx->error, sizeof nx->error, "%s", e.msg);
    } else {
        srv_plan_cpu_one(s, nx);
    }
    if (nx->error[0] || nx->replicas <= 0) {
        snprintf(why, sizeof why, "%s", nx->error[0] ? nx->error : "no replicas planned");
        goto fail;
    }
    rt_model_cfg cfg;
    model_cfg(s, nx, &cfg);
    if (srv_rt_start(s, &cfg, &fresh, why, sizeof why) < 0)
        goto fail;
    /* visible: requests admitted from now on go to the new runtime and configuration */
    pthread_rwlock_wrlock(&s->rt_lock);
    /* all but the name, which readers compare without the lock (srv_find) and never
     * changes */
    memcpy((char *)&s->repo.m[idx] + offsetof(repo_model, version),
           (const char *)rm + offsetof(repo_model, version),
           sizeof *rm - offsetof(repo_model, version));
    m->old = m->rt;
    m->rt = fresh;
    srv_plan_copy(m, nx);
    memcpy(m->lat_ns, nx->lat_ns, sizeof m->lat_ns);
    memcpy(m->ref_elems, nx->ref_elems, sizeof m->ref_elems);
    memcpy(m->profile_note, nx->profile_note, sizeof m->profile_note);
    m->prof_max = nx->prof_max;
    m->error[0] = 0;
    m->ctl = SRV_CTL_LOADED;
    pthread_rwlock_unlock(&s->rt_lock);
    retire(s, m, &m->old, UNLOAD_DRAIN_NS);
    us_free(rm);
    us_free(nx);
    US_LOGI("model '%s' loaded (version %lld)", name, (long long)m->rm->version);
    return 200;
fail:
    if (fresh)
        rt_model_free(fresh, 0);
    us_free(rm);
    us_free(nx);
    /* a failed reload leaves the current runtime serving (Triton does the same); a failed
     * load leaves the model UNAVAILABLE with the reason in the index */
    pthread_rwlock_wrlock(&s->rt_lock);
    if (!m->rt) {
        m->ctl = SRV_CTL_LOADED;
        snprintf(m->error, sizeof m->error, "%.500s", why);
    }
    pthread_rwlock_unlock(&s->rt_lock);
    US_LOGW("model '%s' failed to load: %s", name, why);
    snprintf(msg, cap, "load failed for model '%s': %s%s", name, why,
             serving ? " (the version loaded before still serves)" : "");
    return 400;
}

/* unload m: no more admissions (503), the requests in flight answered, then freed.
 * reload_mu held. */
static unsigned control_unload(usher_server *s, srv_model *m)
{
    pthread_rwlock_wrlock(&s->rt_lock);
    if (!m->rt) {
        /* nothing runs (never loaded, unloaded, or failed to load): unloaded now */
        m->ctl = SRV_CTL_UNLOADED;
        snprintf(m->error, sizeof m->error, "unloaded");
        pthread_rwlock_unlock(&s->rt_lock);
        return 200;
    }
    m->old = m->rt;
    m->rt = NULL;
    m->ctl = SRV_CTL_UNLOADING;
    snprintf(m->error, sizeof m->error, "unloading");
    pthread_rwlock_unlock(&s->rt_lock);
    retire(s, m, &m->old, UNLOAD_DRAIN_NS); /* its counters stay, in m->retired */
    set_ctl(s, m, SRV_CTL_UNLOADED, "unloaded");
    US_LOGI("model '%s' unloaded", m->rm->name);
    return 200;
}

/*
 * A model directory found after start: the table's next entry, UNLOADED, written whole and
 * only then counted in n (under rt_lock held for writing: see usher_server.n). reload_mu
 * held (the one writer). NULL when the table is full (SRV_MAX_MODELS names).
 */
static srv_model *table_add(usher_server *s, const char *name)
{
    size_t i = s->n;
    if (i >= SRV_MAX_MODELS)
        return NULL;
    repo_model *rm = &s->repo.m[i]; /* repo_scan allocated REPO_MAX_MODELS entries */
    memset(rm, 0, sizeof *rm);
    snprintf(rm->name, sizeof rm->name, "%s", name);
    rm->max_batch_size = -1;
    rm->max_queue_delay_us = -1;
    srv_model *m = &s->m[i]; /* zero since the allocation: never used */
    memset(m->gpu, 0xff, sizeof m->gpu);
    m->rm = rm;
    m->ctl = SRV_CTL_UNLOADED;
    snprintf(m->error, sizeof m->error, "unloaded");
    pthread_rwlock_wrlock(&s->rt_lock);
    s->repo.n = i + 1;
    atomic_store(&s->n, i + 1);
    pthread_rwlock_unlock(&s->rt_lock);
    US_LOGI("model '%s': a new model directory (the table's entry %zu)", name, i);
    return m;
}

unsigned srv_control(usher_server *s, const char *name, bool load, char *msg, size_t cap)
{
    return srv_control_params(s, name, load, NULL, 0, msg, cap);
}

unsigned srv_control_params(usher_server *s, const char *name, bool load, const char *config,
                            size_t config_len, char *msg, size_t cap)
{
    msg[0] = 0;
    if (!s->p.model_control_explicit) {
        snprintf(msg, cap, "explicit model load / unload is not allowed if polling is enabled");
        return 503;
    }
    pthread_mutex_lock(&s->reload_mu);
    unsigned st;
    srv_model *m = srv_find(s, name);
    if (!m && load && !atomic_load(&s->shutting_down) &&
        repo_fingerprint(s->repo_dir, name) != 0 && !(m = table_add(s, name))) {
        snprintf(msg, cap, "failed to load '%s': the model table is full (%d model names "
                           "at most, those unloaded included)", name, SRV_MAX_MODELS);
        pthread_mutex_unlock(&s->reload_mu);
        return 400;
    }
    if (atomic_load(&s->shutting_down)) {
        snprintf(msg, cap, "the server is shutting down");
        st = 503;
    } else if (!m) {
        if (load)
            snprintf(msg, cap, "failed to load '%s', failed to poll from model repository: "
                               "no such model directory in the repository", name);
        else
            snprintf(msg, cap, "failed to unload '%s', no model of that name is in the "
                               "repository", name);
        st = 400;
    } else if (m->group) {
        snprintf(msg, cap, "failed to %s '%s': it is served in merge group '%s' (usher.yaml "
                           "merge_group); a member cannot be loaded or unloaded alone",
                 load ? "load" : "unload", name, m->group->name);
        st = 400;
    } else {
        st = load ? control_load(s, m, config, config_len, msg, cap) : control_unload(s, m);
    }
    pthread_mutex_unlock(&s->reload_mu);
    return st;
}

/*
 * Poll mode (Triton's --model-control-mode poll): a thread scans the repository every
 * repository_poll_secs and brings the served models in line with it, one action at a time
 * under reload_mu, with the same control_load / control_unload as explicit loads:
 *
 *   directory new ------(unchanged over two scans)------> table_add + control_load
 *   directory changed --(unchanged over two scans)------> control_load (a reload: the
 *                                                          current runtime serves until the
 *                                                          new one is ready)
 *   directory gone -----(at the first scan missing it)--> control_unload (drains)
 *
 * "Changed" is repo_fingerprint (files' names, sizes, inodes, times; never their contents)
 * differing from the print taken before the last load. A file still being copied changes
 * its size or times between scans, so waiting for two equal prints skips copies in
 * progress; a copy that stalls longer than a poll interval can still be read half-written:
 * ONNX Runtime then refuses the file (the load fails, the version before keeps serving, as
 * Triton) and the copy's end changes the print again, which retries it. A load that fails
 * is not retried until the directory changes again. Merge-group members are left alone
 * (formed at start only). The arrays are the thread's own (indexed as the model table).
 */
typedef struct srv_poll {
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled at shutdown */
    bool stop;         /* under mu */
    unsigned secs;
    uint64_t loaded[SRV_MAX_MODELS]; /* per table entry: the print its last load read; 0: none
                                        (removed, or found after the start's scan) */
    uint64_t seen[SRV_MAX_MODELS];   /* per table entry: the last scan's print */
    char names[SRV_MAX_MODELS][REPO_NAME_MAX]; /* this scan's directories */
    char fresh[SRV_MAX_MODELS][REPO_NAME_MAX]; /* directories not in the table, last scan */
    uint64_t fresh_fp[SRV_MAX_MODELS];         /* and their prints */
    size_t n_fresh;
    char next[SRV_MAX_MODELS][REPO_NAME_MAX];  /* this scan's, becoming fresh[] at its end */
    uint64_t next_fp[SRV_MAX_MODELS];
} srv_poll;

static bool poll_sleep(srv_poll *p)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += p->secs;
    pthread_mutex_lock(&p->mu);
    while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
        ;
    bool stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    return !stop;
}

/* one action of a scan, under reload_mu, unless the server is stopping */
static void poll_act(usher_server *s, srv_model *m, bool load, const char *why)
{
    pthread_mutex_lock(&s->reload_mu);
    if (!atomic_load(&s->shutting_down)) {
        US_LOGI("poll: model '%s' %s: %s", m->rm->name, why, load ? "loading" : "unloading");
        char msg[700];
        if (load)
            control_load(s, m, NULL, 0, msg, sizeof msg);
        else
            control_unload(s, m);
    }
    pthread_mutex_unlock(&s->reload_mu);
}

static void poll_scan(usher_server *s, srv_poll *p)
{
    size_t n_names = 0;
    usher_error e;
    if (repo_list(s->repo_dir, p->names, SRV_MAX_MODELS, &n_names, &e) < 0) {
        US_LOGW("poll: %s (the models serve as they are)", e.msg);
        return;
    }
    size_t n = s->n; /* only this thread adds entries in poll mode */
    for (size_t i = 0; i < n && !atomic_load(&s->shutting_down); i++) {
        srv_model *m = &s->m[i];
        if (m->group)
            continue;
        bool listed = false;
        for (size_t k = 0; k < n_names && !listed; k++)
            listed = strcmp(p->names[k], m->rm->name) == 0;
        uint64_t fp = listed ? repo_fingerprint(s->repo_dir, m->rm->name) : 0;
        pthread_rwlock_rdlock(&s->rt_lock);
        srv_ctl ctl = m->ctl;
        bool serving = m->rt != NULL;
        pthread_rwlock_unlock(&s->rt_lock);
        if (fp == 0) {
            /* not for an entry that was never a model directory (a file, an invalid name:
             * no print at start, nothing loaded): it keeps its reason */
            if (ctl != SRV_CTL_UNLOADED && (serving || p->loaded[i] != 0))
                poll_act(s, m, false, "its directory was removed");
            p->loaded[i] = 0;
        } else if (fp != p->loaded[i] && fp == p->seen[i]) {
            p->loaded[i] = fp; /* a failed load is not retried until the next change */
            poll_act(s, m, true, ctl == SRV_CTL_UNLOADED ? "its directory is back" : "changed");
        }
        p->seen[i] = fp;
    }
    /* directories not in the table: added once unchanged since the last scan */
    size_t n_next = 0;
    for (size_t k = 0; k < n_names && !atomic_load(&s->shutting_down); k++) {
        if (srv_find(s, p->names[k]))
            continue;
        uint64_t fp = repo_fingerprint(s->repo_dir, p->names[k]), before = 0;
        for (size_t j = 0; j < p->n_fresh; j++)
            if (strcmp(p->fresh[j], p->names[k]) == 0)
                before = p->fresh_fp[j];
        if (fp && fp == before) {
            pthread_mutex_lock(&s->reload_mu);
            srv_model *m = atomic_load(&s->shutting_down) ? NULL : table_add(s, p->names[k]);
            pthread_mutex_unlock(&s->reload_mu);
            if (!m) {
                US_LOGW("poll: model '%s' not added: the model table is full (%d names)",
                        p->names[k], SRV_MAX_MODELS);
                continue;
            }
            size_t i = (size_t)(m - s->m);
            p->loaded[i] = p->seen[i] = fp;
            poll_act(s, m, true, "a new directory");
        } else if (fp) {
            memcpy(p->next[n_next], p->names[k], REPO_NAME_MAX);
            p->next_fp[n_next++] = fp;
        }
    }
    memcpy(p->fresh, p->next, n_next * sizeof p->next[0]);
    memcpy(p->fresh_fp, p->next_fp, n_next * sizeof p->next_fp[0]);
    p->n_fresh = n_next;
}

static void *poll_main(void *arg)
{
    usher_server *s = arg;
    srv_poll *p = s->poll;
    while (poll_sleep(p))
        poll_scan(s, p);
    return NULL;
}

/* before the start's repository scan: each directory's print, so that a change made while
 * the models load is seen at the first poll; kept in fresh[] until poll_start */
static int poll_init(usher_server *s, usher_error *err)
{
    srv_poll *p = us_calloc(1, sizeof *p);
    if (!p)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    p->secs = s->p.repository_poll_secs > 0 ? (unsigned)s->p.repository_poll_secs : 15;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->poll = p;
    size_t n = 0;
    int rc = repo_list(s->repo_dir, p->fresh, SRV_MAX_MODELS, &n, err);
    for (size_t k = 0; rc == USHER_OK && k < n; k++)
        p->fresh_fp[k] = repo_fingerprint(s->repo_dir, p->fresh[k]);
    p->n_fresh = n;
    return rc;
}

/* after the start: each table entry's print from poll_init; the watcher thread runs */
static int poll_start(usher_server *s, usher_error *err)
{
    srv_poll *p = s->poll;
    for (size_t i = 0; i < s->n; i++)
        for (size_t k = 0; k < p->n_fresh; k++)
            if (strcmp(p->fresh[k], s->m[i].rm->name) == 0)
                p->loaded[i] = p->seen[i] = p->fresh_fp[k];
    p->n_fresh = 0;
    int rc = pthread_create(&p->thread, NULL, poll_main, s);
    if (rc != 0)
        return us_err_set(err, USHER_ERR_IO, "cannot start the repository poll thread: %s",
                          strerror(rc));
    p->started = true;
    US_LOGI("polling the model repository every %u s", p->secs);
    return USHER_OK;
}

/* the watcher ends (an action in progress ends first: loads give up at shutting_down) */
static void poll_stop(usher_server *s)
{
    srv_poll *p = s->poll;
    if (!p || !p->started)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    p->started = false;
}

static void poll_free(usher_server *s)
{
    srv_poll *p = s->poll;
    if (!p)
        return;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    us_free(p);
    s->poll = NULL;
}

/*
 * Linux's CPU latency QoS (Documentation/power/pm_qos_interface.rst): while
 * the file stays open, no core enters an idle state that takes longer than
 * us microseconds to leave; with 0, idle cores poll. On virtual machines
 * whose idle vCPUs halt, each wake-up of a thread on another core then costs
 * a few microseconds instead of tens (bench/README.md, Serving). The cost is
 * power: cores that would sleep stay awake.
 */
static int hold_cpu_latency(usher_server *s, int us, usher_error *err)
{
    if (us < 0 || us > 1000000)
        return us_err_set(err, USHER_ERR_INVALID, "cpu_latency_us %d: must be 0 to 1000000", us);
    int fd = open("/dev/cpu_dma_latency", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return us_err_set(err, errno == EACCES || errno == EPERM ? USHER_ERR_DENIED : USHER_ERR_IO,
                          "cannot hold the CPU wake-up latency: /dev/cpu_dma_latency: %s%s",
                          strerror(errno), errno == EACCES || errno == EPERM ? " (needs root)" : "");
    int32_t v = us;
    if (write(fd, &v, sizeof v) != (ssize_t)sizeof v) {
        int e = errno;
        close(fd);
        return us_err_set(err, USHER_ERR_IO, "cannot hold the CPU wake-up latency: writing "
                          "/dev/cpu_dma_latency: %s", strerror(e));
    }
    s->cpu_latency_fd = fd;
    US_LOGI("holding the CPU wake-up latency at %d us while serving (/dev/cpu_dma_latency)", us);
    return USHER_OK;
}

int usher_server_start(const usher_serve_params *p, usher_server **out, usher_error *err)
{
    *out = NULL;
    if (!p || !p->repo || !p->exe)
        return us_err_set(err, USHER_ERR_INVALID, "usher_server_start: a repository and the "
                                                  "usher executable are required");
    usher_server *s = us_calloc(1, sizeof *s);
    if (!s)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    s->p = *p;
    s->started_ns = rt_now_ns();
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* a plan change must not wait behind an endless stream of readers */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->rt_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&s->reload_mu, NULL);
    s->cpu_latency_fd = -1;
    snprintf(s->repo_dir, sizeof s->repo_dir, "%s", p->repo);
    snprintf(s->exe, sizeof s->exe, "%s", p->exe);
    snprintf(s->address, sizeof s->address, "%s", p->http_address ? p->http_address : "127.0.0.1");
    if (p->ort_library)
        snprintf(s->ort_lib, sizeof s->ort_lib, "%s", p->ort_library);
    if (s->p.max_body_bytes == 0)
        s->p.max_body_bytes = 64u << 20;
    if (s->p.http_threads <= 0)
        s->p.http_threads = 2;
    if (s->p.default_slo_ms <= 0)
        s->p.default_slo_ms = 100;
    if (p->inline_max_us < 0 || p->inline_max_us > 100000) {
        us_free(s);
        return us_err_set(err, USHER_ERR_INVALID, "inline_max_us %d: must be 0 (never) to "
                          "100000", p->inline_max_us);
    }
    /* the cores this process may run on (taskset, a cpuset), not all the machine has */
    long cpus = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        cpus = CPU_COUNT(&set);
    if (cpus <= 0)
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
    s->cpus = p->cpus > 0 ? p->cpus : cpus > 0 ? (int)cpus : 1;
    if (p->model_control_poll && p->model_control_explicit) {
        us_free(s);
        return us_err_set(err, USHER_ERR_INVALID, "model control: poll and explicit exclude "
                                                  "each other");
    }
    if (p->repository_poll_secs < 0 || p->repository_poll_secs > 86400) {
        us_free(s);
        return us_err_set(err, USHER_ERR_INVALID, "repository_poll_secs %d: 1 to 86400 (0: "
                          "15)", p->repository_poll_secs);
    }
    int rc;
    if (p->model_control_poll && (rc = poll_init(s, err)) < 0) {
        poll_free(s);
        us_free(s);
        return rc;
    }
    rc = repo_scan(p->repo, &s->repo, err);
    if (rc < 0) {
        poll_free(s);
        us_free(s);
        return rc;
    }
    /* the table's whole capacity, so that it grows without moving (usher_server.n) */
    _Static_assert(SRV_MAX_MODELS <= REPO_MAX_MODELS, "repo.m holds the table's entries");
    s->m = us_calloc(SRV_MAX_MODELS, sizeof *s->m);
    if (!s->m) {
        poll_free(s);
        repo_free(&s->repo);
        us_free(s);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    atomic_store(&s->n, s->repo.n);
    /* before the profiles are measured, so that they see the machine as it serves */
    if (p->cpu_latency_hold && (rc = hold_cpu_latency(s, p->cpu_latency_us, err)) < 0) {
        usher_server_free(s);
        return rc;
    }
    s->gpus = gpu_device_count(s->gpu_why, sizeof s->gpu_why);
    for (size_t i = 0; i < s->n; i++) {
        memset(s->m[i].gpu, 0xff, sizeof s->m[i].gpu); /* -1: no GPU */
        s->m[i].rm = &s->repo.m[i];
        if (s->repo.m[i].error[0])
            snprintf(s->m[i].error, sizeof s->m[i].error, "%s", s->repo.m[i].error);
    }
    /* explicit model control: only the models named load at start (Triton's --load-model;
     * "*": all); the others are UNAVAILABLE, "unloaded", neither profiled nor started */
    for (size_t k = 0; p->model_control_explicit && k < p->n_load_models; k++) {
        const char *want = p->load_models[k];
        if (strcmp(want, "*") != 0 && !srv_find(s, want)) {
            rc = us_err_set(err, USHER_ERR_NOT_FOUND, "--load-model %.200s: no such model in "
                            "the repository", want);
            usher_server_free(s);
            return rc;
        }
    }
    for (size_t i = 0; p->model_control_explicit && i < s->n; i++) {
        bool load = false;
        for (size_t k = 0; k < p->n_load_models && !load; k++)
            load = strcmp(p->load_models[k], "*") == 0 ||
                   strcmp(p->load_models[k], s->m[i].rm->name) == 0;
        if (!load) {
            s->m[i].ctl = SRV_CTL_UNLOADED;
            snprintf(s->m[i].error, sizeof s->m[i].error, "unloaded");
        }
    }
    if (p->plan) {
        if ((rc = srv_plan_file(s, p->plan, s->m, s->n, err)) < 0) {
            usher_server_free(s);
            return rc;
        }
    } else {
        srv_plan_cpu(s);
    }
    srv_groups_start(s);
    start_models(s);
    hs_params hp = hs_default_params();
    hp.address = s->address;
    hp.port = p->http_port >= 0 ? p->http_port : 8000;
    hp.threads = s->p.http_threads;
    hp.max_connections = p->max_connections > 0 ? p->max_connections : 1024;
    hp.max_client_connections = p->max_client_connections < 0 ? 0 : p->max_client_connections;
    hp.header_timeout_ms = p->header_timeout_s > 0 ? p->header_timeout_s * 1000 : 10000;
    hp.body_timeout_ms = p->body_timeout_s > 0 ? p->body_timeout_s * 1000 : 60000;
    hp.idle_timeout_ms = p->idle_timeout_s > 0 ? p->idle_timeout_s * 1000 : 10000;
    hp.max_body = s->p.max_body_bytes;
    hp.handler = on_request;
    hp.end = on_end;
    hp.gone = on_gone;
    hp.ctx = s;
    if ((rc = hs_start(&hp, &s->http, err)) < 0) {
        usher_server_free(s);
        return rc;
    }
    s->port = hs_port(s->http);
    if (p->grpc_port >= 0) {
        gs_params gp = gs_default_params();
        gp.address = s->address;
        gp.port = p->grpc_port;
        gp.threads = s->p.http_threads;
        gp.max_message = s->p.max_body_bytes;
        gp.idle_ms = hp.idle_timeout_ms;
        gp.read_timeout_ms = hp.body_timeout_ms;
        if ((rc = gs_start(s, &gp, &s->grpc, err)) < 0) {
            usher_server_free(s);
            return rc;
        }
    }
    if (s->poll && (rc = poll_start(s, err)) < 0) {
        usher_server_free(s);
        return rc;
    }
    *out = s;
    return USHER_OK;
}

int usher_server_port(const usher_server *s) { return s->port; }

int usher_server_grpc_port(const usher_server *s) { return s->grpc ? gs_port(s->grpc) : -1; }

void usher_server_shutdown(usher_server *s, uint64_t drain_ms)
{
    if (!s || s->stopped)
        return;
    atomic_store(&s->shutting_down, true);
    /* no new connections; those open keep being answered (503 from now on, each closing
     * its connection) until the HTTP layer stops */
    hs_quiesce(s->http);
    gs_quiesce(s->grpc); /* likewise: calls in progress are answered */
    poll_stop(s);        /* a poll's load or unload in progress ends first */
    pthread_mutex_lock(&s->reload_mu); /* a plan change in progress ends first */
    /* queued and running requests finish or get 503; their callbacks hand the answers
     * to the HTTP layer, so it can stop once the models are freed */
    for (size_t i = 0; i < s->n; i++) {
        retire(s, &s->m[i], &s->m[i].old, drain_ms * 1000000ull);
        if (!s->m[i].group) /* a merge group's runtime stops once, below */
            retire(s, &s->m[i], &s->m[i].rt, drain_ms * 1000000ull);
    }
    srv_groups_stop(s, drain_ms * 1000000ull);
    pthread_mutex_unlock(&s->reload_mu);
    /* every request is answered now: wait for the callbacks to have handed the answers on */
    for (int i = 0; i < 10000 && atomic_load(&s->n_pending) > 0; i++)
        usleep(1000);
    if (atomic_load(&s->n_pending) > 0)
        US_LOGW("%d requests still unanswered at shutdown", (int)atomic_load(&s->n_pending));
    gs_free(s->grpc); /* every gRPC answer is handed over: its calls end, its threads stop */
    s->grpc = NULL;
    /* requests already on their way are answered (503) before the stop: wait, at most
     * SHUTDOWN_GRACE_MS, until none is in progress and the connections have closed (or
     * stayed quiet for SHUTDOWN_QUIET_MS: an idle keep-alive client sends nothing) */
    uint64_t quiet_since = rt_now_ns();
    for (int i = 0; s->http && i < SHUTDOWN_GRACE_MS; i++) {
        hs_stats hst;
        hs_get_stats(s->http, &hst);
        int open = hst.open;
        if (atomic_load(&s->n_active) > 0)
            quiet_since = rt_now_ns();
        else if (open == 0 || rt_now_ns() - quiet_since >= SHUTDOWN_QUIET_MS * 1000000ull)
            break;
        usleep(1000);
    }
    hs_free(s->http);
    s->http = NULL;
    s->stopped = true;
}

void usher_server_free(usher_server *s)
{
    if (!s)
        return;
    usher_server_shutdown(s, 0);
    if (s->cpu_latency_fd >= 0)
        close(s->cpu_latency_fd); /* the kernel drops the request with the file */
    pthread_rwlock_destroy(&s->rt_lock);
    pthread_mutex_destroy(&s->reload_mu);
    srv_groups_free(s);
    poll_free(s);
    us_free(s->m);
    repo_free(&s->repo);
    us_free(s);
}
