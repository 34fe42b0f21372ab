/*
 * grpc.c - the gRPC front end (layer 8, prefix gs_): KServe v2's / Triton's
 * inference.GRPCInferenceService over gRPC's C core API, beside the HTTP
 * front end (server.c), on its own port.
 *
 * Why the C core (libgrpc-dev, Debian 12: 1.51) and not HTTP/2 of our own
 * over nghttp2: the core gives HTTP/2 flow control, HPACK, keepalive,
 * deadlines (grpc-timeout), message-size limits and compressed messages as
 * every gRPC client expects them, tested against those clients; usher adds
 * only the method dispatch, the messages (protobuf-c, grpc_msg.c) and the
 * bridge to the runtime. The cost is a large library (abseil, re2, c-ares)
 * in the `usher` binary; it is initialised (grpc_init) only when
 * --grpc-port is given.
 *
 * A call's life (tags on one completion queue, polled by `threads` threads):
 *
 *   NEW --request_call done--> READ --message read--> handler
 *     handler answers at once ---------------------------------> SENT -> freed
 *     ModelInfer: srv_infer_submit --> (runtime) --on_done-----> SENT -> freed
 *
 * NEW: a grpc_server_request_call is outstanding for it (GS_PENDING such
 * calls at any time; each one that completes is replaced). READ: one batch
 * sends the initial metadata and receives the request message. The answer
 * is one batch: the message (when OK), the status and RECV_CLOSE_ON_SERVER;
 * its completion frees the call. Exactly one answer per call: the handler
 * either answers before returning or hands the call to the runtime, whose
 * on_done answers it (the runtime calls done once on every path), and then
 * nothing may touch the call (another thread may already be freeing it).
 *
 * Status codes (docs/serve.md, gRPC, has the table): a request refused by
 * admission or a model not ready is UNAVAILABLE with the HTTP 503's text, an
 * unknown model or version NOT_FOUND with Triton's "Request for unknown
 * model" text, a malformed or wrong request INVALID_ARGUMENT naming the
 * field, a size limit RESOURCE_EXHAUSTED, shared memory and unknown methods
 * UNIMPLEMENTED. An inference refused here is counted in its model's ledger
 * (srv_model.fe_outcome), as the HTTP front end's refusals are.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "server/grpc.h"
#include "server/grpc_msg.h"
#include "server/srv.h"

#define GS_PENDING 16    /* grpc_server_request_call outstanding */
#define GS_MAX_THREADS 16
#define GS_METHOD_MAX 96 /* bytes of a method path we look at */

/* what a completion-queue tag is: a unary call's step (the tag is the gs_call), the server's
 * shutdown, or one of a stream's operations (the tag is a gs_tag in the stream). Both
 * structures start with this, so on_event tells them apart. */
typedef enum gs_state {
    GS_NEW, GS_READ, GS_SENT, GS_SHUTDOWN,
    GS_S_READ, GS_S_WRITE, GS_S_CLOSE, GS_S_STATUS, /* a stream's operations */
    GS_U_CLOSE /* a ModelInfer call's end, watched while its request is in the runtime */
} gs_state;

struct gs_call;
typedef struct gs_tag {
    gs_state state;
    struct gs_call *c;
} gs_tag;

struct gs_server {
    usher_server *s;
    gs_params p;
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t threads[GS_MAX_THREADS];
    int n_threads;
    int port;
    atomic_bool quiesced;
    atomic_int active;         /* calls between their arrival and their freeing */
    atomic_int shutdown_done;  /* the server's shutdown tag came */
    struct gs_call *shutdown_tag;
    /* calls waiting for their request message, oldest first, under mu: the sweeper cancels
     * those past read_timeout_ms (a client that opens calls and sends nothing) */
    pthread_mutex_t mu;
    struct gs_call *reading_head, *reading_tail;
    pthread_t sweeper;
    bool have_sweeper;
    atomic_bool stop_sweeper;
    char addr[80];
};

typedef struct gs_call {
    gs_state state;
    gs_server *g;
    struct gs_call *prev, *next; /* in g's reading list while READ */
    bool listed, timed_out;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *recv;
    int cancelled;
    char method[GS_METHOD_MAX];
    uint64_t t0;               /* rt_now_ns() at its arrival */
    /* the answer */
    grpc_byte_buffer *send;
    grpc_slice details_slice;
    bool have_details;
    /* an inference in the runtime */
    srv_model *model;
    oip_request *oip;          /* ModelInfer's (26 KB: allocated only for it) */
    bool have_oip;
    rt_request *rt;
    double slo_ms;
    uint64_t input_ns;
    struct gs_stream *st;      /* ModelStreamInfer's state (allocated only for it) */
    /* ModelInfer's cancel on disconnect: from just before its submit, a RECV_CLOSE_ON_SERVER
     * of its own (t_close) says when the client cancels; the call is then freed by the last
     * of three holders (refs): the answer's completion, the close's, the submitting thread */
    bool watch;
    gs_tag t_close;
    atomic_int refs;
    atomic_bool gone, rt_set;  /* the client cancelled; c->rt is set and submitted */
} gs_call;

static const char k_prefix[] = "/inference.GRPCInferenceService/";

gs_params gs_default_params(void)
{
    gs_params p;
    memset(&p, 0, sizeof p);
    p.address = "127.0.0.1";
    p.port = 0;
    p.threads = 2;
    p.max_message = 64u << 20;
    p.max_streams = 128;
    p.max_calls = 4096;
    p.idle_ms = 10000;
    p.read_timeout_ms = 60000;
    p.stream_inflight = 32;
    return p;
}

int gs_port(const gs_server *g) { return g ? g->port : -1; }

const char *gs_code_name(int code)
{
    static const char *const names[SRV_GRPC_CODES] = {
        "OK",          "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED", "NOT_FOUND",   "ALREADY_EXISTS", "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL",        "UNAVAILABLE",    "DATA_LOSS",
        "UNAUTHENTICATED"};
    return code >= 0 && code < SRV_GRPC_CODES ? names[code] : "UNKNOWN";
}

/* ---- answering ------------------------------------------------------------------------ */
static void call_free(gs_call *c)
{
    if (!c)
        return;
    if (c->call)
        grpc_call_unref(c->call);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->md);
    if (c->recv)
        grpc_byte_buffer_destroy(c->recv);
    if (c->send)
        grpc_byte_buffer_destroy(c->send);
    if (c->have_details)
        grpc_slice_unref(c->details_slice);
    if (c->have_oip)
        oip_request_free(c->oip);
    us_free(c->oip);
    rt_request_free(c->rt);
    if (c->state != GS_NEW)
        atomic_fetch_sub(&c->g->active, 1);
    us_free(c);
}

/* a watched call's holder is done with it (the last frees it); an unwatched call is freed */
static void call_release(gs_call *c)
{
    if (!c->watch || atomic_fetch_sub(&c->refs, 1) == 1)
        call_free(c);
}

/* the one answer: msg (packed, us_malloc'd, taken over; may be NULL) and a status.
 * After this c belongs to the completion queue. */
static void answer(gs_call *c, grpc_status_code code, const char *text, uint8_t *msg,
                   size_t len, bool send_md)
{
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (send_md) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        n++;
    }
    if (msg && code == GRPC_STATUS_OK) {
        grpc_slice sl = grpc_slice_new(msg, len, us_free);
        c->send = grpc_raw_byte_buffer_create(&sl, 1);
        grpc_slice_unref(sl);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = c->send;
        n++;
    } else {
        us_free(msg);
    }
    /* every answer counted once, by status: its model's when the call named a served one */
    int k = (int)code >= 0 && (int)code < SRV_GRPC_CODES ? (int)code : GRPC_STATUS_UNKNOWN;
    atomic_fetch_add(c->model ? &c->model->grpc_answers[k] : &c->g->s->grpc_answers[k], 1);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    if (text && *text) {
        c->details_slice = grpc_slice_from_copied_string(text);
        c->have_details = true;
        ops[n].data.send_status_from_server.status_details = &c->details_slice;
    }
    n++;
    if (!c->watch) { /* else its own batch has it */
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
        n++;
    }
    c->state = GS_SENT;
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, c, NULL);
    if (e != GRPC_CALL_OK) {
        /* nothing will complete: free it here */
        US_LOGW("grpc: answering a call failed (%d)", (int)e);
        call_release(c);
    }
}

static void answer_msg(gs_call *c, const ProtobufCMessage *m)
{
    uint8_t *buf;
    size_t len;
    usher_error err;
    if (gm_pack(m, &buf, &len, &err) < 0) {
        answer(c, GRPC_STATUS_RESOURCE_EXHAUSTED, err.msg, NULL, 0, false);
        return;
    }
    answer(c, GRPC_STATUS_OK, NULL, buf, len, false);
}

static grpc_status_code code_of_err(int rc)
{
    switch (rc) {
    case USHER_ERR_LIMIT:
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case USHER_ERR_UNSUPPORTED:
        return GRPC_STATUS_UNIMPLEMENTED;
    case USHER_ERR_NOMEM:
        return GRPC_STATUS_UNAVAILABLE;
    case USHER_ERR_NOT_FOUND:
        return GRPC_STATUS_NOT_FOUND;
    default:
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
}

/* the HTTP status srv_infer_submit gives, as gRPC's */
static grpc_status_code code_of_http(int st)
{
    return st == 400 ? GRPC_STATUS_INVALID_ARGUMENT
           : st == 503 ? GRPC_STATUS_UNAVAILABLE
           : st == 404 ? GRPC_STATUS_NOT_FOUND
                       : GRPC_STATUS_INTERNAL;
}

/* an inference answered without the runtime: its model's ledger, by outcome */
static void count_refusal_m(srv_model *m, grpc_status_code code)
{
    if (!m)
        return;
    rt_outcome o = code == GRPC_STATUS_UNAVAILABLE ? RT_UNAVAILABLE
                   : code == GRPC_STATUS_INTERNAL  ? RT_INTERNAL
                                                   : RT_INVALID;
    atomic_fetch_add(&m->fe_outcome[o], 1);
}

static void count_refusal(gs_call *c, grpc_status_code code) { count_refusal_m(c->model, code); }

/* ---- the request message --------------------------------------------------------------- */
static ProtobufCMessage *read_bb(gs_server *g, grpc_byte_buffer *bb,
                                 const ProtobufCMessageDescriptor *d, usher_error *err)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb)) {
        us_err_set(err, USHER_ERR_PARSE, "%s: the message could not be decompressed",
                   d->short_name);
        return NULL;
    }
    grpc_slice sl = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    size_t len = GRPC_SLICE_LENGTH(sl);
    ProtobufCMessage *m = NULL;
    if (len > g->p.max_message)
        us_err_set(err, USHER_ERR_LIMIT, "%s: %zu bytes, more than the limit of %zu",
                   d->short_name, len, g->p.max_message);
    else
        m = gm_unpack(d, GRPC_SLICE_START_PTR(sl), len, GM_ALLOC_BUDGET(len), err);
    grpc_slice_unref(sl);
    return m;
}

static ProtobufCMessage *read_msg(gs_call *c, const ProtobufCMessageDescriptor *d,
                                  usher_error *err)
{
    return read_bb(c->g, c->recv, d, err);
}

/* the model a request names, and its version ("" or the served one); answered NOT_FOUND
 * when there is none (for an inference, a wrong version of a served model is counted in its
 * ledger, as the HTTP front end does) */
static srv_model *lookup_model(usher_server *s, const char *name, const char *version,
                               bool infer, srv_model **counted, char *msg, size_t cap)
{
    *counted = NULL;
    srv_model *m = srv_find(s, name);
    if (!m) {
        snprintf(msg, cap, "Request for unknown model: '%.200s' is not found", name);
        return NULL;
    }
    if (version && *version) {
        char v[24];
        snprintf(v, sizeof v, "%lld", (long long)m->rm->version);
        if (m->rm->error[0] || strcmp(version, v) != 0) {
            snprintf(msg, cap, "Request for unknown model: '%.200s' version %.40s is not found",
                     name, version);
            if (infer)
                atomic_fetch_add(&m->fe_outcome[RT_INVALID], 1);
            *counted = m; /* counted as the model's answer */
            return NULL;
        }
    }
    return m;
}

static srv_model *find_model(gs_call *c, const char *name, const char *version, bool infer)
{
    char msg[400];
    srv_model *counted;
    srv_model *m = lookup_model(c->g->s, name, version, infer, &counted, msg, sizeof msg);
    if (!m) {
        c->model = counted;
        answer(c, GRPC_STATUS_NOT_FOUND, msg, NULL, 0, false);
        return NULL;
    }
    c->model = m;
    return m;
}

/* a string field of a decoded message by name ("" when the message has none) */
static const char *field_str(const ProtobufCMessage *q, const char *name)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(q->descriptor, name);
    if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
        return "";
    const char *v = *(char *const *)(const void *)((const char *)q + f->offset);
    return v ? v : "";
}

/* the request of a method that names one model (ModelReady, ModelMetadata, ModelConfig):
 * read, and the model found by its name and version; NULL once answered */
static srv_model *read_model_request(gs_call *c, const ProtobufCMessageDescriptor *d)
{
    usher_error err;
    ProtobufCMessage *q = read_msg(c, d, &err);
    if (!q) {
        answer(c, code_of_err(err.code), err.msg, NULL, 0, false);
        return NULL;
    }
    srv_model *m = find_model(c, field_str(q, "name"), field_str(q, "version"), false);
    gm_free(q);
    return m;
}

static bool ready_model(usher_server *s, const srv_model *m)
{
    pthread_rwlock_rdlock(&s->rt_lock);
    bool ok = m->rt && rt_model_ready(m->rt) && !atomic_load(&s->shutting_down);
    pthread_rwlock_unlock(&s->rt_lock);
    return ok;
}

/* ---- the methods ------------------------------------------------------------------------ */
static void server_live(gs_call *c)
{
    Inference__ServerLiveResponse r = INFERENCE__SERVER_LIVE_RESPONSE__INIT;
    r.live = 1;
    answer_msg(c, &r.base);
}

static void server_ready(gs_call *c)
{
    Inference__ServerReadyResponse r = INFERENCE__SERVER_READY_RESPONSE__INIT;
    r.ready = usher_server_ready(c->g->s);
    answer_msg(c, &r.base);
}

static void model_ready(gs_call *c)
{
    srv_model *m = read_model_request(c, &inference__model_ready_request__descriptor);
    if (!m)
        return;
    Inference__ModelReadyResponse r = INFERENCE__MODEL_READY_RESPONSE__INIT;
    r.ready = ready_model(c->g->s, m);
    answer_msg(c, &r.base);
}

static void server_metadata(gs_call *c)
{
    static char *ext[] = {"model_repository", "statistics"};
    Inference__ServerMetadataResponse r = INFERENCE__SERVER_METADATA_RESPONSE__INIT;
    r.name = (char *)(uintptr_t) "usher";
    r.version = (char *)(uintptr_t)USHER_VERSION;
    r.n_extensions = sizeof ext / sizeof ext[0];
    r.extensions = ext;
    answer_msg(c, &r.base);
}

/* metadata of inputs or outputs, shapes as the HTTP front end's (-1: the batch dim; an
 * input's dim the session leaves dynamic that config.pbtxt fixes: the config's) */
static void tensor_meta(const be_io *io, size_t n, bool batchable, const repo_model *rm,
                        Inference__ModelMetadataResponse__TensorMetadata *t,
                        Inference__ModelMetadataResponse__TensorMetadata **tp, int64_t *shapes)
{
    int off = rm && repo_batch_dim(rm, batchable) ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        inference__model_metadata_response__tensor_metadata__init(&t[i]);
        const repo_input *ci = rm ? repo_find_input(rm, io[i].name) : NULL;
        if (ci && ci->rank + off != io[i].shape.rank)
            ci = NULL;
        t[i].name = (char *)(uintptr_t)io[i].name;
        t[i].datatype = (char *)(uintptr_t)us_dtype_name(io[i].dtype);
        int64_t *sh = shapes + i * US_TENSOR_MAX_RANK;
        for (int d = 0; d < io[i].shape.rank; d++) {
            int64_t v = d == 0 && batchable ? -1 : io[i].shape.dim[d];
            if (v < 0 && ci && d >= off && ci->dim[d - off] >= 0)
                v = ci->dim[d - off];
            sh[d] = v < 0 ? -1 : v;
        }
        t[i].n_shape = (size_t)io[i].shape.rank;
        t[i].shape = sh;
        tp[i] = &t[i];
    }
}

/* takes rt_lock for reading (the caller unlocks): whether m is loaded and its inputs and
 * outputs fit the messages (RT_MAX_IO each) */
static bool model_io_rdlock(usher_server *s, const srv_model *m, const be_io **in, size_t *nin,
                            const be_io **out, size_t *nout)
{
    pthread_rwlock_rdlock(&s->rt_lock);
    return m->rt && srv_model_io(m, in, nin, out, nout) && *nin <= RT_MAX_IO &&
           *nout <= RT_MAX_IO;
}

static void model_metadata(gs_call *c)
{
    usher_server *s = c->g->s;
    usher_error err;
    srv_model *m = read_model_request(c, &inference__model_metadata_request__descriptor);
    if (!m)
        return;
    const be_io *in = NULL, *out = NULL;
    size_t nin = 0, nout = 0;
    if (!model_io_rdlock(s, m, &in, &nin, &out, &nout)) {
        char msg[700];
        snprintf(msg, sizeof msg, "model '%s' is not ready%s%.500s", m->rm->name,
                 m->error[0] ? ": " : "", m->error[0] ? m->error : "");
        pthread_rwlock_unlock(&s->rt_lock);
        answer(c, GRPC_STATUS_UNAVAILABLE, msg, NULL, 0, false);
        return;
    }
    Inference__ModelMetadataResponse r = INFERENCE__MODEL_METADATA_RESPONSE__INIT;
    Inference__ModelMetadataResponse__TensorMetadata ti[RT_MAX_IO], to[RT_MAX_IO];
    Inference__ModelMetadataResponse__TensorMetadata *tip[RT_MAX_IO], *top[RT_MAX_IO];
    int64_t *shapes = us_calloc(2 * RT_MAX_IO * US_TENSOR_MAX_RANK, sizeof *shapes);
    if (!shapes) {
        pthread_rwlock_unlock(&s->rt_lock);
        answer(c, GRPC_STATUS_UNAVAILABLE, "out of memory", NULL, 0, false);
        return;
    }
    char ver[24], *vers[1] = {ver};
    snprintf(ver, sizeof ver, "%lld", (long long)m->rm->version);
    r.name = (char *)(uintptr_t)m->rm->name;
    r.n_versions = 1;
    r.versions = vers;
    r.platform = (char *)(uintptr_t) "onnxruntime_onnx";
    tensor_meta(in, nin, m->batchable, m->rm, ti, tip, shapes);
    tensor_meta(out, nout, m->batchable, NULL, to, top, shapes + RT_MAX_IO * US_TENSOR_MAX_RANK);
    r.n_inputs = nin;
    r.inputs = tip;
    r.n_outputs = nout;
    r.outputs = top;
    uint8_t *buf;
    size_t len;
    int rc = gm_pack(&r.base, &buf, &len, &err);
    pthread_rwlock_unlock(&s->rt_lock);
    us_free(shapes);
    if (rc < 0)
        answer(c, GRPC_STATUS_RESOURCE_EXHAUSTED, err.msg, NULL, 0, false);
    else
        answer(c, GRPC_STATUS_OK, NULL, buf, len, false);
}

/* a datatype as Triton's DataType enum (BYTES is TYPE_STRING) */
static Inference__DataType config_dtype(us_dtype t)
{
    return t == US_DT_BYTES  ? INFERENCE__DATA_TYPE__TYPE_STRING
           : t == US_DT_BF16 ? INFERENCE__DATA_TYPE__TYPE_BF16
                             : (Inference__DataType)t; /* BOOL .. FP64: the same numbers */
}
_Static_assert(US_DT_FP64 == 12 && US_DT_BOOL == 1 && US_DT_INT8 == 6, "DataType numbers");

/* dims as GET .../config gives them: without the batch dim when requests carry one; for
 * inputs (rm given), config.pbtxt's fixed dims where the model's are dynamic */
static size_t config_dims(const be_io *io, bool batch_dim, const repo_model *rm, int64_t *dims)
{
    int off = batch_dim ? 1 : 0;
    const repo_input *ci = rm ? repo_find_input(rm, io->name) : NULL;
    if (ci && ci->rank + off != io->shape.rank)
        ci = NULL;
    size_t n = 0;
    for (int d = off; d < io->shape.rank; d++) {
        int64_t v = io->shape.dim[d];
        if (v < 0 && ci && ci->dim[d - off] >= 0)
            v = ci->dim[d - off];
        dims[n++] = v < 0 ? -1 : v;
    }
    return n;
}

typedef struct config_msgs {
    Inference__ModelInput in[RT_MAX_IO];
    Inference__ModelInput *inp[RT_MAX_IO];
    Inference__ModelOutput out[RT_MAX_IO];
    Inference__ModelOutput *outp[RT_MAX_IO];
    int64_t dims[2 * RT_MAX_IO][US_TENSOR_MAX_RANK];
} config_msgs;

/* ModelConfig: what GET /v2/models/M/config says (server.c, model_config), as messages */
static void model_config(gs_call *c)
{
    usher_server *s = c->g->s;
    usher_error err;
    srv_model *m = read_model_request(c, &inference__model_config_request__descriptor);
    if (!m)
        return;
    const be_io *in = NULL, *out = NULL;
    size_t nin = 0, nout = 0;
    if (!model_io_rdlock(s, m, &in, &nin, &out, &nout)) {
        char msg[700];
        /* the HTTP route's answer (a 400 there), in Triton's words */
        snprintf(msg, sizeof msg, "Request for unknown model: '%s' has no available versions%s%.500s",
                 m->rm->name, m->error[0] ? ": " : "", m->error);
        pthread_rwlock_unlock(&s->rt_lock);
        answer(c, GRPC_STATUS_INVALID_ARGUMENT, msg, NULL, 0, false);
        return;
    }
    config_msgs *x = us_calloc(1, sizeof *x);
    if (!x) {
        pthread_rwlock_unlock(&s->rt_lock);
        answer(c, GRPC_STATUS_UNAVAILABLE, "out of memory", NULL, 0, false);
        return;
    }
    const repo_model *rm = m->rm;
    bool batch_dim = repo_batch_dim(rm, m->batchable) && m->batchable;
    Inference__ModelConfig cfg = INFERENCE__MODEL_CONFIG__INIT;
    Inference__ModelVersionPolicy vp = INFERENCE__MODEL_VERSION_POLICY__INIT;
    Inference__ModelVersionPolicy__Latest latest = INFERENCE__MODEL_VERSION_POLICY__LATEST__INIT;
    Inference__ModelInstanceGroup ig = INFERENCE__MODEL_INSTANCE_GROUP__INIT;
    Inference__ModelInstanceGroup *igp = &ig;
    Inference__ModelDynamicBatching db = INFERENCE__MODEL_DYNAMIC_BATCHING__INIT;
    int32_t pref[64];
    cfg.name = (char *)(uintptr_t)rm->name;
    cfg.platform = (char *)(uintptr_t) "onnxruntime_onnx";
    cfg.backend = (char *)(uintptr_t) "onnxruntime";
    latest.num_versions = 1;
    vp.policy_choice_case = INFERENCE__MODEL_VERSION_POLICY__POLICY_CHOICE_LATEST;
    vp.latest = &latest;
    cfg.version_policy = &vp;
    cfg.max_batch_size = batch_dim ? m->max_batch : 0;
    for (size_t i = 0; i < nin; i++) {
        inference__model_input__init(&x->in[i]);
        x->in[i].name = (char *)(uintptr_t)in[i].name;
        x->in[i].data_type = config_dtype(in[i].dtype);
        x->in[i].n_dims = config_dims(&in[i], batch_dim, rm, x->dims[i]);
        x->in[i].dims = x->dims[i];
        x->inp[i] = &x->in[i];
    }
    for (size_t i = 0; i < nout; i++) {
        inference__model_output__init(&x->out[i]);
        x->out[i].name = (char *)(uintptr_t)out[i].name;
        x->out[i].data_type = config_dtype(out[i].dtype);
        x->out[i].n_dims = config_dims(&out[i], batch_dim, NULL, x->dims[RT_MAX_IO + i]);
        x->out[i].dims = x->dims[RT_MAX_IO + i];
        x->outp[i] = &x->out[i];
    }
    cfg.n_input = nin;
    cfg.input = x->inp;
    cfg.n_output = nout;
    cfg.output = x->outp;
    bool gpu = false;
    for (int i = 0; i < m->replicas && i < RT_MAX_REPLICAS; i++)
        gpu = gpu || (s->gpus > 0 && m->gpu[i] >= 0 && m->gpu[i] < s->gpus);
    ig.name = (char *)(uintptr_t)rm->name;
    ig.kind = gpu ? INFERENCE__MODEL_INSTANCE_GROUP__KIND__KIND_GPU
                  : INFERENCE__MODEL_INSTANCE_GROUP__KIND__KIND_CPU;
    ig.count = m->replicas;
    cfg.n_instance_group = 1;
    cfg.instance_group = &igp;
    if (rm->max_queue_delay_us >= 0 || rm->n_preferred) {
        size_t np = 0;
        for (int i = 0; i < rm->n_preferred && np < sizeof pref / sizeof pref[0]; i++)
            pref[np++] = rm->preferred_batch[i];
        db.n_preferred_batch_size = np;
        db.preferred_batch_size = pref;
        db.max_queue_delay_microseconds =
            rm->max_queue_delay_us > 0 ? (uint64_t)rm->max_queue_delay_us : 0;
        cfg.dynamic_batching = &db;
    }
    cfg.default_model_filename = (char *)(uintptr_t)rm->file;
    Inference__ModelConfigResponse r = INFERENCE__MODEL_CONFIG_RESPONSE__INIT;
    r.config = &cfg;
    uint8_t *buf;
    size_t len;
    int rc = gm_pack(&r.base, &buf, &len, &err);
    pthread_rwlock_unlock(&s->rt_lock);
    us_free(x);
    if (rc < 0)
        answer(c, GRPC_STATUS_RESOURCE_EXHAUSTED, err.msg, NULL, 0, false);
    else
        answer(c, GRPC_STATUS_OK, NULL, buf, len, false);
}

static void repository_index(gs_call *c)
{
    usher_error err;
    usher_server *s = c->g->s;
    Inference__RepositoryIndexRequest *q = (Inference__RepositoryIndexRequest *)read_msg(
        c, &inference__repository_index_request__descriptor, &err);
    if (!q) {
        answer(c, code_of_err(err.code), err.msg, NULL, 0, false);
        return;
    }
    bool only_ready = q->ready;
    gm_free(&q->base);
    size_t n = s->n;
    Inference__RepositoryIndexResponse__ModelIndex *mi = us_calloc(n ? n : 1, sizeof *mi);
    Inference__RepositoryIndexResponse__ModelIndex **mip = us_calloc(n ? n : 1, sizeof *mip);
    char (*vers)[24] = us_calloc(n ? n : 1, sizeof *vers);
    if (!mi || !mip || !vers) {
        us_free(mi);
        us_free(mip);
        us_free(vers);
        answer(c, GRPC_STATUS_UNAVAILABLE, "out of memory", NULL, 0, false);
        return;
    }
    Inference__RepositoryIndexResponse r = INFERENCE__REPOSITORY_INDEX_RESPONSE__INIT;
    pthread_rwlock_rdlock(&s->rt_lock);
    for (size_t i = 0; i < n; i++) {
        srv_model *m = &s->m[i];
        bool ready = m->rt && rt_model_ready(m->rt);
        if (only_ready && !ready)
            continue;
        Inference__RepositoryIndexResponse__ModelIndex *x = &mi[r.n_models];
        inference__repository_index_response__model_index__init(x);
        x->name = (char *)(uintptr_t)m->rm->name;
        if (!m->rm->error[0])
            snprintf(vers[r.n_models], sizeof vers[0], "%lld", (long long)m->rm->version);
        x->version = vers[r.n_models];
        const char *reason;
        x->state = (char *)(uintptr_t)srv_index_state(m, &reason);
        x->reason = (char *)(uintptr_t)reason;
        mip[r.n_models++] = x;
    }
    r.models = mip;
    uint8_t *buf;
    size_t len;
    int rc = gm_pack(&r.base, &buf, &len, &err);
    pthread_rwlock_unlock(&s->rt_lock);
    us_free(mi);
    us_free(mip);
    us_free(vers);
    if (rc < 0)
        answer(c, GRPC_STATUS_RESOURCE_EXHAUSTED, err.msg, NULL, 0, false);
    else
        answer(c, GRPC_STATUS_OK, NULL, buf, len, false);
}

/* model control (srv_control): on a thread of its own, as over HTTP (server.c), so that the
 * completion queue's threads go on while a model loads or drains; the answer is sent from
 * that thread, as a runtime's completion is */
typedef struct control_job {
    gs_call *c;
    bool load;
    char name[REPO_NAME_MAX];
} control_job;

static void *control_thread(void *arg)
{
    control_job *j = arg;
    gs_call *c = j->c;
    usher_server *s = c->g->s;
    char msg[700];
    unsigned st = srv_control(s, j->name, j->load, msg, sizeof msg);
    atomic_fetch_sub(&s->control_calls, 1);
    if (st == 200) {
        if (j->load) {
            Inference__RepositoryModelLoadResponse r =
                INFERENCE__REPOSITORY_MODEL_LOAD_RESPONSE__INIT;
            answer_msg(c, &r.base);
        } else {
            Inference__RepositoryModelUnloadResponse r =
                INFERENCE__REPOSITORY_MODEL_UNLOAD_RESPONSE__INIT;
            answer_msg(c, &r.base);
        }
    } else {
        answer(c, code_of_http((int)st), msg, NULL, 0, false);
    }
    us_free(j);
    atomic_fetch_sub(&s->n_pending, 1); /* c is the completion queue's from the answer on */
    return NULL;
}

static void repository_control(gs_call *c, bool load)
{
    usher_error err;
    usher_server *s = c->g->s;
    char name[REPO_NAME_MAX];
    ProtobufCMessage *q = read_msg(c, load ? &inference__repository_model_load_request__descriptor
                                           : &inference__repository_model_unload_request__descriptor,
                                   &err);
    if (!q) {
        answer(c, code_of_err(err.code), err.msg, NULL, 0, false);
        return;
    }
    const char *mn = load ? ((Inference__RepositoryModelLoadRequest *)q)->model_name
                          : ((Inference__RepositoryModelUnloadRequest *)q)->model_name;
    bool ok = mn && repo_name_ok(mn, strlen(mn));
    if (ok)
        snprintf(name, sizeof name, "%s", mn);
    gm_free(q);
    if (!ok) {
        answer(c, GRPC_STATUS_INVALID_ARGUMENT,
               "invalid model name (letters, digits, '-', '_', '.'; not '.' or '..')", NULL, 0,
               false);
        return;
    }
    if (!s->p.model_control_explicit) {
        answer(c, GRPC_STATUS_UNAVAILABLE,
               "explicit model load / unload is not allowed if polling is enabled", NULL, 0,
               false);
        return;
    }
    if (atomic_fetch_add(&s->control_calls, 1) >= SRV_CONTROL_MAX_CALLS) {
        atomic_fetch_sub(&s->control_calls, 1);
        answer(c, GRPC_STATUS_UNAVAILABLE,
               "too many model loads and unloads in progress: retry later", NULL, 0, false);
        return;
    }
    control_job *j = us_calloc(1, sizeof *j);
    if (!j) {
        atomic_fetch_sub(&s->control_calls, 1);
        answer(c, GRPC_STATUS_UNAVAILABLE, "out of memory", NULL, 0, false);
        return;
    }
    j->c = c;
    j->load = load;
    memcpy(j->name, name, sizeof name);
    atomic_fetch_add(&s->n_pending, 1); /* a stop waits for its answer */
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &a, control_thread, j);
    pthread_attr_destroy(&a);
    if (rc != 0) {
        us_free(j);
        atomic_fetch_sub(&s->control_calls, 1);
        atomic_fetch_sub(&s->n_pending, 1);
        answer(c, GRPC_STATUS_UNAVAILABLE, "cannot start the model control thread: retry later",
               NULL, 0, false);
    }
}

/* one model's statistics, with the meaning of GET /v2/models/M/stats (metrics.c) */
typedef struct stat_msgs {
    Inference__ModelStatistics ms;
    Inference__InferStatistics is;
    Inference__StatisticDuration d[8];
    char version[24];
    /* batch_stats: per batch size that ran, its message, its compute_infer, the runtime's */
    Inference__InferBatchStatistics *bs, **bsp;
    Inference__StatisticDuration *bd;
    rt_batch_stat *raw;
} stat_msgs;

static void stat_msgs_free(stat_msgs *x)
{
    us_free(x->bs);
    us_free(x->bsp);
    us_free(x->bd);
    us_free(x->raw);
}

/* batch_stats from the runtime (rt_lock held): GET .../stats's; false: out of memory */
static bool fill_batch_stats(srv_model *m, stat_msgs *x)
{
    if (!m->rt || m->error[0])
        return true;
    x->raw = us_malloc(RT_MAX_BATCH * sizeof *x->raw);
    if (!x->raw)
        return false;
    size_t n = rt_model_batch_stats(m->rt, x->raw, RT_MAX_BATCH);
    if (n > RT_MAX_BATCH)
        n = RT_MAX_BATCH;
    if (!n)
        return true;
    x->bs = us_calloc(n, sizeof *x->bs);
    x->bsp = us_calloc(n, sizeof *x->bsp);
    x->bd = us_calloc(n, sizeof *x->bd);
    if (!x->bs || !x->bsp || !x->bd)
        return false;
    for (size_t k = 0; k < n; k++) {
        inference__infer_batch_statistics__init(&x->bs[k]);
        inference__statistic_duration__init(&x->bd[k]);
        x->bs[k].batch_size = (uint64_t)x->raw[k].rows;
        x->bd[k].count = x->raw[k].runs;
        x->bd[k].ns = x->raw[k].run_ns;
        x->bs[k].compute_infer = &x->bd[k];
        x->bsp[k] = &x->bs[k];
    }
    x->ms.n_batch_stats = n;
    x->ms.batch_stats = x->bsp;
    return true;
}

static void fill_stats(srv_model *m, stat_msgs *x)
{
    rt_model_stats st;
    srv_model_stats(m, &st);
    uint64_t fail = 0;
    for (int o = 1; o < RT_OUTCOME_COUNT; o++)
        fail += st.outcome[o];
    inference__model_statistics__init(&x->ms);
    inference__infer_statistics__init(&x->is);
    for (int i = 0; i < 8; i++)
        inference__statistic_duration__init(&x->d[i]);
    snprintf(x->version, sizeof x->version, "%lld", (long long)m->rm->version);
    x->ms.name = (char *)(uintptr_t)m->rm->name;
    x->ms.version = x->version;
    x->ms.last_inference = atomic_load(&m->last_inference_ms);
    x->ms.inference_count = st.outcome[RT_OK];
    x->ms.execution_count = st.batches;
    uint64_t io = atomic_load(&m->io_count);
    x->d[0].count = st.outcome[RT_OK];
    x->d[0].ns = st.queue_ns + st.compute_ns;
    x->d[1].count = fail;
    x->d[2].count = st.outcome[RT_OK];
    x->d[2].ns = st.queue_ns;
    x->d[3].count = io;
    x->d[3].ns = atomic_load(&m->input_ns);
    x->d[4].count = st.outcome[RT_OK];
    x->d[4].ns = st.compute_ns;
    x->d[5].count = io;
    x->d[5].ns = atomic_load(&m->output_ns);
    x->is.success = &x->d[0];
    x->is.fail = &x->d[1];
    x->is.queue = &x->d[2];
    x->is.compute_input = &x->d[3];
    x->is.compute_infer = &x->d[4];
    x->is.compute_output = &x->d[5];
    x->is.cache_hit = &x->d[6]; /* usher has no response cache */
    x->is.cache_miss = &x->d[7];
    x->ms.inference_stats = &x->is;
}

static void model_statistics(gs_call *c)
{
    usher_error err;
    usher_server *s = c->g->s;
    Inference__ModelStatisticsRequest *q = (Inference__ModelStatisticsRequest *)read_msg(
        c, &inference__model_statistics_request__descriptor, &err);
    if (!q) {
        answer(c, code_of_err(err.code), err.msg, NULL, 0, false);
        return;
    }
    srv_model *only = NULL;
    if (q->name[0] && !(only = find_model(c, q->name, q->version, false))) {
        gm_free(&q->base);
        return;
    }
    gm_free(&q->base);
    size_t n = s->n;
    stat_msgs *x = us_calloc(n ? n : 1, sizeof *x);
    Inference__ModelStatistics **xp = us_calloc(n ? n : 1, sizeof *xp);
    if (!x || !xp) {
        us_free(x);
        us_free(xp);
        answer(c, GRPC_STATUS_UNAVAILABLE, "out of memory", NULL, 0, false);
        return;
    }
    Inference__ModelStatisticsResponse r = INFERENCE__MODEL_STATISTICS_RESPONSE__INIT;
    bool nomem = false;
    pthread_rwlock_rdlock(&s->rt_lock);
    for (size_t i = 0; i < n; i++) {
        if (only && &s->m[i] != only)
            continue;
        fill_stats(&s->m[i], &x[r.n_model_stats]);
        nomem = nomem || !fill_batch_stats(&s->m[i], &x[r.n_model_stats]);
        xp[r.n_model_stats] = &x[r.n_model_stats].ms;
        r.n_model_stats++;
    }
    pthread_rwlock_unlock(&s->rt_lock);
    r.model_stats = xp;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = nomem ? us_err_set(&err, USHER_ERR_NOMEM, "out of memory for the statistics")
                   : gm_pack(&r.base, &buf, &len, &err);
    for (size_t i = 0; i < r.n_model_stats; i++)
        stat_msgs_free(&x[i]);
    us_free(x);
    us_free(xp);
    if (rc == USHER_ERR_NOMEM)
        answer(c, GRPC_STATUS_UNAVAILABLE, err.msg, NULL, 0, false);
    else if (rc < 0)
        answer(c, GRPC_STATUS_RESOURCE_EXHAUSTED, err.msg, NULL, 0, false);
    else
        answer(c, GRPC_STATUS_OK, NULL, buf, len, false);
}

/* ---- ModelInfer ---------------------------------------------------------------------------- */
/* the client's deadline (grpc-timeout) is the request's timeout too: the runtime then never
 * runs what the client has given up on (a stream's deadline bounds each of its requests) */
static void apply_deadline(const gs_call *c, oip_request *q)
{
    gpr_timespec dl = c->details.deadline;
    if (dl.tv_sec == INT64_MAX)
        return;
    gpr_timespec now = gpr_now(dl.clock_type);
    gpr_timespec left = gpr_time_sub(dl, now);
    int64_t us = left.tv_sec < 0 ? 0
                 : left.tv_sec > INT64_MAX / 2000000 ? INT64_MAX / 2000
                                                     : left.tv_sec * 1000000 + left.tv_nsec / 1000;
    if (us < 0)
        us = 0;
    if (!q->has_timeout || (uint64_t)us < q->timeout_us) {
        q->timeout_us = (uint64_t)us;
        q->has_timeout = true;
    }
}

/* the model's inference limits on the request's tensors */
static oip_limits infer_limits(const usher_server *s)
{
    oip_limits lim = oip_default_limits();
    lim.max_body = s->p.max_body_bytes;
    lim.max_total_bytes = s->p.max_body_bytes;
    if (lim.max_tensor_bytes > s->p.max_body_bytes)
        lim.max_tensor_bytes = s->p.max_body_bytes;
    return lim;
}

/* the gRPC status of a runtime outcome other than RT_OK */
static grpc_status_code code_of_outcome(rt_outcome o)
{
    return o == RT_INVALID     ? GRPC_STATUS_INVALID_ARGUMENT
           : o == RT_CANCELLED ? GRPC_STATUS_CANCELLED /* nobody listens: counted as such */
           : o == RT_REJECTED || o == RT_TIMEOUT || o == RT_UNAVAILABLE
               ? GRPC_STATUS_UNAVAILABLE
               : GRPC_STATUS_INTERNAL;
}

static void infer_done(rt_request *r, rt_outcome o, const char *msg, void *ctx)
{
    gs_call *c = ctx;
    usher_server *s = c->g->s;
    if (o == RT_OK) {
        char ver[24];
        snprintf(ver, sizeof ver, "%lld", (long long)c->model->rm->version);
        uint64_t t_out = rt_now_ns();
        uint8_t *buf;
        size_t len;
        usher_error err;
        int rc = gm_infer_response(c->oip, c->model->rm->name, ver, r->out, r->n_out,
                                   c->g->p.max_message, &buf, &len, &err);
        t_out = rt_now_ns() - t_out;
        if (rc < 0) {
            answer(c, rc == USHER_ERR_NOT_FOUND ? GRPC_STATUS_INVALID_ARGUMENT
                      : rc == USHER_ERR_LIMIT   ? GRPC_STATUS_RESOURCE_EXHAUSTED
                                                : GRPC_STATUS_INTERNAL,
                   err.msg, NULL, 0, false);
        } else {
            srv_infer_ok(c->model, c->slo_ms, c->t0, c->input_ns, t_out);
            answer(c, GRPC_STATUS_OK, NULL, buf, len, false);
        }
    } else {
        grpc_status_code code = code_of_outcome(o);
        answer(c, code, msg && *msg ? msg : rt_outcome_name(o), NULL, 0, false);
    }
    atomic_fetch_sub(&s->n_pending, 1); /* c is the completion queue's from the answer on */
}

static void model_infer(gs_call *c)
{
    usher_server *s = c->g->s;
    usher_error err;
    uint64_t t_in = rt_now_ns();
    Inference__ModelInferRequest *q = (Inference__ModelInferRequest *)read_msg(
        c, &inference__model_infer_request__descriptor, &err);
    if (!q) {
        answer(c, code_of_err(err.code), err.msg, NULL, 0, false);
        return;
    }
    srv_model *m = find_model(c, q->model_name, q->model_version, true);
    if (!m) {
        gm_free(&q->base);
        return;
    }
    c->model = m;
    oip_limits lim = infer_limits(s);
    c->oip = us_malloc(sizeof *c->oip);
    int rc = c->oip ? gm_infer_request(q, &lim, c->oip, &err)
                    : us_err_set(&err, USHER_ERR_NOMEM, "out of memory for the request");
    gm_free(&q->base);
    if (rc < 0) {
        atomic_fetch_add(&m->invalid, 1);
        grpc_status_code code = code_of_err(rc);
        if (code == GRPC_STATUS_NOT_FOUND)
            code = GRPC_STATUS_INVALID_ARGUMENT;
        count_refusal(c, code);
        answer(c, code, err.msg, NULL, 0, false);
        return;
    }
    c->have_oip = true;
    apply_deadline(c, c->oip);
    char msg[800];
    /* the client's cancel, watched from here on: a request it gives up on while queued is
     * dropped from the queue (rt_request_cancel), counted 'cancelled', never run */
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    c->t_close = (gs_tag){GS_U_CLOSE, c};
    atomic_store(&c->refs, 3);
    c->watch = true; /* before the start: its completion may come at once and reads it */
    if (grpc_call_start_batch(c->call, &op, 1, &c->t_close, NULL) != GRPC_CALL_OK)
        c->watch = false; /* nothing will complete: the call is answered as unwatched */
    bool watched = c->watch; /* c may be freed by the answer when unwatched */
    srv_infer x = {.done = infer_done, .ctx = c, .t0 = c->t0, .t_in = t_in,
                   .slo_ms_out = &c->slo_ms, .input_ns_out = &c->input_ns};
    int st = srv_infer_submit(s, m, c->oip, &x, &c->rt, msg, sizeof msg);
    if (st) {
        grpc_status_code code = code_of_http(st);
        count_refusal(c, code);
        answer(c, code, msg, NULL, 0, false);
    } else if (watched) {
        /* submitted: answered through infer_done, maybe already; c stays alive until this
         * holder lets go */
        atomic_store(&c->rt_set, true);
        if (atomic_load(&c->gone))
            rt_request_cancel(c->rt);
    }
    if (watched)
        call_release(c);
    /* else submitted: answered through infer_done, maybe already; c is no longer ours */
}

/* ---- ModelStreamInfer ----------------------------------------------------------------------
 * A bidirectional stream of ModelInferRequests, each answered by one ModelStreamInferResponse
 * (infer_response, or error_message with the request's id) in the order the answers come,
 * as Triton's. The stream's operations, each with a tag of its own (gs_tag), all under the
 * stream's mutex:
 *
 *   close   RECV_CLOSE_ON_SERVER, started at once: it completes when the call ends, and says
 *           whether the client cancelled it (or its deadline passed, or the server stopped)
 *   read    RECV_MESSAGE, one at a time; a message is decoded and submitted as ModelInfer's
 *           (srv_infer_submit: the same checks, admission, batching and ledger), a refusal
 *           queued as an error answer; no message (the client's half-close) ends the reading
 *   write   SEND_MESSAGE, one at a time, of the answers queued (oldest first)
 *   status  SEND_STATUS_FROM_SERVER OK, once the client half-closed and every request it sent
 *           was answered and written
 *
 * Flow control: a new read starts only while in_flight (requests read and not yet answered)
 * plus the answers queued or being written stay under stream_inflight; at the bound the
 * stream stops reading until an answer is written, HTTP/2's flow control then stops the
 * client, and the memory a stream holds is at most stream_inflight requests and answers.
 *
 * The end: when the call ends early (the client cancels, its deadline passes, a write or
 * read fails, the server stops) the stream is dead: nothing more is read or written,
 * answers still coming from the runtime are dropped and counted CANCELLED in
 * usher_grpc_responses_total (those already queued were counted by their status), and the
 * requests still queued in the runtime are cancelled (rt_request_cancel: answered
 * RT_CANCELLED, counted in the model's ledger). The stream is freed by whoever ends its
 * last operation or its last request (stream_step says when). */
typedef struct gs_out {
    struct gs_out *next;
    grpc_byte_buffer *bb;
} gs_out;

typedef struct gs_sreq {
    struct gs_call *c;            /* the stream */
    struct gs_sreq *prev, *next;  /* in the stream's list of requests in the runtime */
    bool listed;                  /* in that list (st->mu) */
    bool in_submit;               /* srv_infer_submit running: its thread frees q (st->mu) */
    bool answered;                /* stream_push ran (st->mu) */
    srv_model *model;
    oip_request *oip;
    bool have_oip;
    rt_request *rt;
    double slo_ms;
    uint64_t t0, input_ns;
    char id[OIP_ID_MAX];
} gs_sreq;

typedef struct gs_stream {
    pthread_mutex_t mu;
    gs_tag t_read, t_write, t_close, t_status;
    grpc_byte_buffer *recv;       /* the read's message */
    grpc_byte_buffer *sending;    /* the write's */
    gs_out *head, *tail;          /* answers waiting to be written */
    int n_out;
    int in_flight;                /* requests read and not yet answered */
    gs_sreq *reqs;                /* those of them submitted to the runtime */
    bool md_sent, reading, writing, close_pending, status_pending, half_closed, dead;
    bool status_started;
    int cancelled;                /* RECV_CLOSE_ON_SERVER's */
} gs_stream;

static void sreq_free(gs_sreq *q)
{
    if (!q)
        return;
    if (q->have_oip)
        oip_request_free(q->oip);
    us_free(q->oip);
    rt_request_free(q->rt);
    us_free(q);
}

/* st->mu held */
static void sreq_unlist(gs_stream *st, gs_sreq *q)
{
    if (!q->listed)
        return;
    if (q->prev)
        q->prev->next = q->next;
    else
        st->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
    q->listed = false;
}

static void stream_free(gs_call *c)
{
    gs_stream *st = c->st;
    for (gs_out *o = st->head, *n; o; o = n) {
        n = o->next;
        grpc_byte_buffer_destroy(o->bb);
        us_free(o);
    }
    if (st->recv)
        grpc_byte_buffer_destroy(st->recv);
    if (st->sending)
        grpc_byte_buffer_destroy(st->sending);
    pthread_mutex_destroy(&st->mu);
    us_free(st);
    c->st = NULL;
    call_free(c);
}

/* st->mu held: the stream ends early; once */
static void stream_kill(gs_call *c, const char *why)
{
    gs_stream *st = c->st;
    if (st->dead)
        return;
    st->dead = true;
    for (gs_out *o = st->head, *n; o; o = n) {
        n = o->next;
        grpc_byte_buffer_destroy(o->bb);
        us_free(o); /* counted by its status when it was queued */
    }
    st->head = st->tail = NULL;
    st->n_out = 0;
    /* the requests still queued in the runtime: nobody will read their answers */
    for (gs_sreq *q = st->reqs; q; q = q->next)
        if (!q->in_submit && q->rt)
            rt_request_cancel(q->rt);
    /* so that every operation still outstanding completes (harmless once the call ended) */
    grpc_call_cancel_with_status(c->call, GRPC_STATUS_CANCELLED, why, NULL);
}

/* st->mu held: start what can start now; true when nothing is left and the stream may be
 * freed (by the caller, once it has unlocked) */
static bool stream_step(gs_call *c)
{
    gs_stream *st = c->st;
    if (!st->dead && !st->writing && st->head) {
        gs_out *o = st->head;
        st->head = o->next;
        if (!st->head)
            st->tail = NULL;
        st->n_out--;
        st->sending = o->bb;
        us_free(o);
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_SEND_MESSAGE;
        op.data.send_message.send_message = st->sending;
        st->writing = true;
        if (grpc_call_start_batch(c->call, &op, 1, &st->t_write, NULL) != GRPC_CALL_OK) {
            st->writing = false;
            grpc_byte_buffer_destroy(st->sending);
            st->sending = NULL;
            stream_kill(c, "a write could not start");
        }
    }
    if (!st->dead && !st->reading && !st->half_closed &&
        st->in_flight + st->n_out + (st->writing ? 1 : 0) < c->g->p.stream_inflight) {
        grpc_op ops[2];
        memset(ops, 0, sizeof ops);
        size_t n = 0;
        if (!st->md_sent) {
            ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
            st->md_sent = true;
        }
        ops[n].op = GRPC_OP_RECV_MESSAGE;
        ops[n].data.recv_message.recv_message = &st->recv;
        n++;
        st->reading = true;
        if (grpc_call_start_batch(c->call, ops, n, &st->t_read, NULL) != GRPC_CALL_OK) {
            st->reading = false;
            stream_kill(c, "a read could not start");
        }
    }
    if (!st->dead && !st->status_started && st->half_closed && st->in_flight == 0 &&
        st->n_out == 0 && !st->writing) {
        grpc_op ops[2];
        memset(ops, 0, sizeof ops);
        size_t n = 0;
        if (!st->md_sent) {
            ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
            st->md_sent = true;
        }
        ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        ops[n].data.send_status_from_server.status = GRPC_STATUS_OK;
        n++;
        st->status_started = st->status_pending = true;
        atomic_fetch_add(&c->g->s->grpc_answers[GRPC_STATUS_OK], 1);
        if (grpc_call_start_batch(c->call, ops, n, &st->t_status, NULL) != GRPC_CALL_OK) {
            st->status_pending = false;
            stream_kill(c, "the status could not be sent");
        }
    }
    return !st->reading && !st->writing && !st->close_pending && !st->status_pending &&
           st->in_flight == 0;
}

/* one request's answer (packed ModelStreamInferResponse, us_malloc'd, taken over; NULL when
 * none could be built) onto the stream; q (taken over) leaves it. c may be freed here. */
static void stream_push(gs_sreq *q, grpc_status_code code, uint8_t *buf, size_t len)
{
    gs_call *c = q->c;
    gs_stream *st = c->st;
    gs_out *o = buf ? us_malloc(sizeof *o) : NULL;
    if (o) {
        grpc_slice sl = grpc_slice_new(buf, len, us_free);
        o->bb = grpc_raw_byte_buffer_create(&sl, 1);
        grpc_slice_unref(sl);
        o->next = NULL;
    } else {
        us_free(buf);
    }
    pthread_mutex_lock(&st->mu);
    sreq_unlist(st, q);
    q->answered = true;
    bool free_q = !q->in_submit; /* else the submitting thread frees it */
    st->in_flight--;
    if (st->dead || !o) {
        if (o) {
            grpc_byte_buffer_destroy(o->bb);
            us_free(o);
        }
        code = GRPC_STATUS_CANCELLED;
        if (!st->dead)
            stream_kill(c, "out of memory for an answer");
    } else {
        if (st->tail)
            st->tail->next = o;
        else
            st->head = o;
        st->tail = o;
        st->n_out++;
    }
    atomic_fetch_add(q->model ? &q->model->grpc_answers[code] : &c->g->s->grpc_answers[code], 1);
    bool done = stream_step(c);
    pthread_mutex_unlock(&st->mu);
    if (free_q)
        sreq_free(q);
    if (done)
        stream_free(c);
}

/* a request refused (code, text) or failed: its error answer */
static void stream_error(gs_sreq *q, grpc_status_code code, const char *text)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    usher_error err;
    if (gm_stream_response(text && *text ? text : gs_code_name((int)code), q->id, NULL, 0,
                           q->c->g->p.max_message, &buf, &len, &err) < 0)
        buf = NULL;
    stream_push(q, code, buf, len);
}

static void stream_done(rt_request *r, rt_outcome o, const char *msg, void *ctx)
{
    gs_sreq *q = ctx;
    gs_server *g = q->c->g;
    usher_server *s = g->s;
    (void)r; /* q->rt */
    if (o != RT_OK) {
        stream_error(q, code_of_outcome(o), msg && *msg ? msg : rt_outcome_name(o));
    } else {
        char ver[24];
        snprintf(ver, sizeof ver, "%lld", (long long)q->model->rm->version);
        uint64_t t_out = rt_now_ns();
        uint8_t *ib, *buf = NULL;
        size_t ilen, len = 0;
        usher_error err;
        int rc = gm_infer_response(q->oip, q->model->rm->name, ver, q->rt->out, q->rt->n_out,
                                   g->p.max_message, &ib, &ilen, &err);
        if (rc == USHER_OK) {
            rc = gm_stream_response(NULL, NULL, ib, ilen, g->p.max_message, &buf, &len, &err);
            us_free(ib);
        }
        t_out = rt_now_ns() - t_out;
        if (rc < 0) {
            stream_error(q, rc == USHER_ERR_NOT_FOUND ? GRPC_STATUS_INVALID_ARGUMENT
                            : rc == USHER_ERR_LIMIT   ? GRPC_STATUS_RESOURCE_EXHAUSTED
                                                      : GRPC_STATUS_INTERNAL,
                         err.msg);
        } else {
            srv_infer_ok(q->model, q->slo_ms, q->t0, q->input_ns, t_out);
            stream_push(q, GRPC_STATUS_OK, buf, len);
        }
    }
    atomic_fetch_sub(&s->n_pending, 1); /* handed to the stream */
}

/* one message read from the stream (bb taken over): decoded and submitted, or answered with
 * an error; st->in_flight already counts it */
static void stream_request(gs_call *c, grpc_byte_buffer *bb)
{
    gs_server *g = c->g;
    usher_server *s = g->s;
    uint64_t t0 = rt_now_ns();
    gs_sreq *q = us_calloc(1, sizeof *q);
    if (!q) {
        grpc_byte_buffer_destroy(bb);
        pthread_mutex_lock(&c->st->mu);
        c->st->in_flight--;
        stream_kill(c, "out of memory for a request");
        pthread_mutex_unlock(&c->st->mu); /* the read's completion frees it, if need be */
        return;
    }
    q->c = c;
    q->t0 = t0;
    usher_error err;
    Inference__ModelInferRequest *m = (Inference__ModelInferRequest *)read_bb(
        g, bb, &inference__model_infer_request__descriptor, &err);
    grpc_byte_buffer_destroy(bb);
    if (!m) {
        stream_error(q, code_of_err(err.code), err.msg);
        return;
    }
    if (m->id && strlen(m->id) < sizeof q->id)
        snprintf(q->id, sizeof q->id, "%s", m->id);
    char msg[800];
    srv_model *counted;
    q->model = lookup_model(s, m->model_name, m->model_version, true, &counted, msg, sizeof msg);
    if (!q->model) {
        gm_free(&m->base);
        q->model = counted;
        stream_error(q, GRPC_STATUS_NOT_FOUND, msg);
        return;
    }
    oip_limits lim = infer_limits(s);
    q->oip = us_malloc(sizeof *q->oip);
    int rc = q->oip ? gm_infer_request(m, &lim, q->oip, &err)
                    : us_err_set(&err, USHER_ERR_NOMEM, "out of memory for the request");
    gm_free(&m->base);
    if (rc < 0) {
        atomic_fetch_add(&q->model->invalid, 1);
        grpc_status_code code = code_of_err(rc);
        if (code == GRPC_STATUS_NOT_FOUND)
            code = GRPC_STATUS_INVALID_ARGUMENT;
        count_refusal_m(q->model, code);
        stream_error(q, code, err.msg);
        return;
    }
    q->have_oip = true;
    apply_deadline(c, q->oip);
    /* listed before the submit, so that a cancel finds it once it is in the runtime; while
     * in_submit, q->rt is being written and only this thread frees q */
    gs_stream *sm = c->st;
    pthread_mutex_lock(&sm->mu);
    q->in_submit = true;
    q->next = sm->reqs;
    if (sm->reqs)
        sm->reqs->prev = q;
    sm->reqs = q;
    q->listed = true;
    pthread_mutex_unlock(&sm->mu);
    srv_infer x = {.done = stream_done, .ctx = q, .t0 = t0, .t_in = t0,
                   .slo_ms_out = &q->slo_ms, .input_ns_out = &q->input_ns};
    int st = srv_infer_submit(s, q->model, q->oip, &x, &q->rt, msg, sizeof msg);
    pthread_mutex_lock(&sm->mu);
    q->in_submit = false;
    bool free_q = q->answered;
    if (st)
        sreq_unlist(sm, q);
    else if (!free_q && sm->dead)
        rt_request_cancel(q->rt); /* the stream died while it was being submitted */
    pthread_mutex_unlock(&sm->mu);
    if (st) {
        grpc_status_code code = code_of_http(st);
        count_refusal_m(q->model, code);
        stream_error(q, code, msg);
        return;
    }
    if (free_q) /* answered within the submit */
        sreq_free(q);
    /* else answered through stream_done; q is its */
}

static void stream_start(gs_call *c)
{
    gs_stream *st = us_calloc(1, sizeof *st);
    if (!st) {
        answer(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory for a stream", NULL, 0, true);
        return;
    }
    pthread_mutex_init(&st->mu, NULL);
    st->t_read = (gs_tag){GS_S_READ, c};
    st->t_write = (gs_tag){GS_S_WRITE, c};
    st->t_close = (gs_tag){GS_S_CLOSE, c};
    st->t_status = (gs_tag){GS_S_STATUS, c};
    c->st = st;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &st->cancelled;
    /* under the lock from here: the close may complete at once, and its handler waits */
    pthread_mutex_lock(&st->mu);
    st->close_pending = true;
    if (grpc_call_start_batch(c->call, &op, 1, &st->t_close, NULL) != GRPC_CALL_OK) {
        pthread_mutex_unlock(&st->mu);
        stream_free(c);
        return;
    }
    bool done = stream_step(c); /* the first read */
    pthread_mutex_unlock(&st->mu);
    if (done)
        stream_free(c);
}

/* a stream's operation completed */
static void stream_event(gs_tag *t, bool ok)
{
    gs_call *c = t->c;
    gs_stream *st = c->st;
    pthread_mutex_lock(&st->mu);
    switch (t->state) {
    case GS_S_READ: {
        grpc_byte_buffer *bb = st->recv;
        st->recv = NULL;
        if (!ok || st->dead) {
            if (bb)
                grpc_byte_buffer_destroy(bb);
            stream_kill(c, "the stream broke");
        } else if (!bb) {
            st->half_closed = true; /* the client sends no more */
        } else {
            /* still `reading` while it is handled: nobody starts another read or frees
             * the stream meanwhile */
            st->in_flight++;
            pthread_mutex_unlock(&st->mu);
            stream_request(c, bb);
            pthread_mutex_lock(&st->mu);
        }
        st->reading = false;
        break;
    }
    case GS_S_WRITE:
        st->writing = false;
        grpc_byte_buffer_destroy(st->sending);
        st->sending = NULL;
        if (!ok)
            stream_kill(c, "a write failed");
        break;
    case GS_S_CLOSE:
        st->close_pending = false;
        if (st->cancelled || !st->status_started)
            stream_kill(c, "the call ended");
        break;
    case GS_S_STATUS:
        st->status_pending = false;
        break;
    default:
        break;
    }
    bool done = stream_step(c);
    pthread_mutex_unlock(&st->mu);
    if (done)
        stream_free(c);
}

/* ---- the completion queue ---------------------------------------------------------------- */
static void request_call(gs_server *g)
{
    if (atomic_load(&g->quiesced))
        return;
    gs_call *c = us_calloc(1, sizeof *c);
    if (!c) {
        US_LOGW("grpc: out of memory for a call: one fewer waits for clients");
        return;
    }
    c->g = g;
    c->state = GS_NEW;
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->md);
    grpc_call_error e = grpc_server_request_call(g->server, &c->call, &c->details, &c->md, g->cq,
                                                 g->cq, c);
    if (e != GRPC_CALL_OK) {
        call_free(c);
    }
}

static void dispatch(gs_call *c)
{
    const char *m = c->method;
    size_t pl = sizeof k_prefix - 1;
    if (strncmp(m, k_prefix, pl) != 0)
        goto unknown;
    m += pl;
    if (strcmp(m, "ModelInfer") == 0)
        return model_infer(c);
    if (strcmp(m, "ServerLive") == 0)
        return server_live(c);
    if (strcmp(m, "ServerReady") == 0)
        return server_ready(c);
    if (strcmp(m, "ModelReady") == 0)
        return model_ready(c);
    if (strcmp(m, "ServerMetadata") == 0)
        return server_metadata(c);
    if (strcmp(m, "ModelMetadata") == 0)
        return model_metadata(c);
    if (strcmp(m, "ModelStatistics") == 0)
        return model_statistics(c);
    if (strcmp(m, "ModelConfig") == 0)
        return model_config(c);
    if (strcmp(m, "RepositoryIndex") == 0)
        return repository_index(c);
    if (strcmp(m, "RepositoryModelLoad") == 0)
        return repository_control(c, true);
    if (strcmp(m, "RepositoryModelUnload") == 0)
        return repository_control(c, false);
unknown:;
    char msg[200];
    snprintf(msg, sizeof msg, "usher does not implement the method %.100s (docs/serve.md, gRPC)",
             c->method);
    answer(c, GRPC_STATUS_UNIMPLEMENTED, msg, NULL, 0, false);
}

/* the reading list (g->mu held) */
static void list_add(gs_server *g, gs_call *c)
{
    c->prev = g->reading_tail;
    c->next = NULL;
    if (g->reading_tail)
        g->reading_tail->next = c;
    else
        g->reading_head = c;
    g->reading_tail = c;
    c->listed = true;
}

static void list_del(gs_server *g, gs_call *c)
{
    if (!c->listed)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        g->reading_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        g->reading_tail = c->prev;
    c->prev = c->next = NULL;
    c->listed = false;
}

/* cancels the calls whose request message has not come within read_timeout_ms; a call
 * leaves the list (under mu) before it goes on or is freed, so what is listed is alive */
static void *sweeper_thread(void *arg)
{
    gs_server *g = arg;
    char msg[120];
    snprintf(msg, sizeof msg, "the request message did not arrive within %d ms",
             g->p.read_timeout_ms);
    while (!atomic_load(&g->stop_sweeper)) {
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
        uint64_t now = rt_now_ns(), limit = (uint64_t)g->p.read_timeout_ms * 1000000u;
        pthread_mutex_lock(&g->mu);
        for (gs_call *c = g->reading_head; c && now - c->t0 > limit; c = c->next)
            if (!c->timed_out) {
                c->timed_out = true;
                grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED, msg, NULL);
            }
        pthread_mutex_unlock(&g->mu);
    }
    return NULL;
}

static void on_event(gs_server *g, void *tag, bool ok)
{
    gs_call *c = tag; /* or a gs_tag: both begin with their gs_state */
    switch (*(const gs_state *)tag) {
    case GS_NEW: {
        if (!ok) { /* the server is shutting down */
            call_free(c);
            return;
        }
        request_call(g); /* the next client's */
        int active = atomic_fetch_add(&g->active, 1) + 1;
        c->t0 = rt_now_ns();
        size_t ml = GRPC_SLICE_LENGTH(c->details.method);
        if (ml >= sizeof c->method)
            ml = sizeof c->method - 1;
        memcpy(c->method, GRPC_SLICE_START_PTR(c->details.method), ml);
        c->method[ml] = 0;
        for (size_t i = 0; i < ml; i++) /* for messages: no control characters */
            if ((unsigned char)c->method[i] < 0x20 || (unsigned char)c->method[i] > 0x7e)
                c->method[i] = '?';
        c->state = GS_READ;
        if (active > g->p.max_calls || atomic_load(&g->quiesced)) {
            char msg[120];
            if (atomic_load(&g->quiesced))
                snprintf(msg, sizeof msg, "the server is shutting down");
            else
                snprintf(msg, sizeof msg, "more than %d calls in progress", g->p.max_calls);
            answer(c, atomic_load(&g->quiesced) ? GRPC_STATUS_UNAVAILABLE
                                                : GRPC_STATUS_RESOURCE_EXHAUSTED,
                   msg, NULL, 0, true);
            return;
        }
        if (strcmp(c->method, "/inference.GRPCInferenceService/ModelStreamInfer") == 0) {
            stream_start(c); /* its messages are read by the stream, without a read timeout */
            return;
        }
        grpc_op ops[2];
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_RECV_MESSAGE;
        ops[1].data.recv_message.recv_message = &c->recv;
        pthread_mutex_lock(&g->mu); /* listed before the batch can complete */
        list_add(g, c);
        pthread_mutex_unlock(&g->mu);
        if (grpc_call_start_batch(c->call, ops, 2, c, NULL) != GRPC_CALL_OK) {
            pthread_mutex_lock(&g->mu);
            list_del(g, c);
            pthread_mutex_unlock(&g->mu);
            call_free(c);
        }
        return;
    }
    case GS_READ:
        pthread_mutex_lock(&g->mu);
        list_del(g, c);
        pthread_mutex_unlock(&g->mu);
        if (!ok) { /* the client went away, or the sweeper cancelled it */
            call_free(c);
            return;
        }
        if (!c->recv) {
            answer(c, GRPC_STATUS_INVALID_ARGUMENT, "no request message", NULL, 0, false);
            return;
        }
        dispatch(c);
        return;
    case GS_SENT:
        call_release(c);
        return;
    case GS_U_CLOSE: {
        gs_call *u = ((gs_tag *)tag)->c;
        if (u->cancelled) {
            atomic_store(&u->gone, true);
            if (atomic_load(&u->rt_set))
                rt_request_cancel(u->rt); /* alive: this holder keeps u */
        }
        call_release(u);
        return;
    }
    case GS_SHUTDOWN:
        atomic_store(&g->shutdown_done, 1);
        return;
    case GS_S_READ:
    case GS_S_WRITE:
    case GS_S_CLOSE:
    case GS_S_STATUS:
        stream_event((gs_tag *)(void *)c, ok);
        return;
    }
}

static void *cq_thread(void *arg)
{
    gs_server *g = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                                   NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE)
            on_event(g, ev.tag, ev.success != 0);
    }
    return NULL;
}

int gs_start(usher_server *s, const gs_params *p, gs_server **out, usher_error *err)
{
    *out = NULL;
    gs_server *g = us_calloc(1, sizeof *g);
    if (!g)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    g->s = s;
    g->p = *p;
    g->shutdown_tag = us_calloc(1, sizeof *g->shutdown_tag);
    if (!g->shutdown_tag) {
        us_free(g);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    g->shutdown_tag->state = GS_SHUTDOWN;
    g->shutdown_tag->g = g;
    pthread_mutex_init(&g->mu, NULL);
    gs_params d = gs_default_params();
    if (!g->p.address)
        g->p.address = d.address;
    if (g->p.threads <= 0)
        g->p.threads = d.threads;
    if (g->p.threads > GS_MAX_THREADS)
        g->p.threads = GS_MAX_THREADS;
    if (g->p.max_message == 0)
        g->p.max_message = d.max_message;
    if (g->p.max_streams <= 0)
        g->p.max_streams = d.max_streams;
    if (g->p.max_calls <= 0)
        g->p.max_calls = d.max_calls;
    if (g->p.idle_ms <= 0)
        g->p.idle_ms = d.idle_ms;
    if (g->p.read_timeout_ms <= 0)
        g->p.read_timeout_ms = d.read_timeout_ms;
    if (g->p.stream_inflight <= 0)
        g->p.stream_inflight = d.stream_inflight;
    if (g->p.port < 0 || g->p.port > 65535) {
        pthread_mutex_destroy(&g->mu);
        us_free(g->shutdown_tag);
        us_free(g);
        return us_err_set(err, USHER_ERR_INVALID, "gRPC port %d: 0 to 65535", g->p.port);
    }
    grpc_init();
    /* the core's own limits: a bigger message is refused RESOURCE_EXHAUSTED before it is
     * read whole; an answer's size is checked where it is built */
    grpc_arg args[5];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)(uintptr_t)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = g->p.max_message > INT32_MAX ? INT32_MAX : (int)g->p.max_message;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)(uintptr_t)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[1].value.integer = args[0].value.integer;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *)(uintptr_t)GRPC_ARG_MAX_CONCURRENT_STREAMS;
    args[2].value.integer = g->p.max_streams;
    /* no SO_REUSEPORT: a second server on the port is an error, not half the traffic */
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = (char *)(uintptr_t)GRPC_ARG_ALLOW_REUSEPORT;
    args[3].value.integer = 0;
    args[4].type = GRPC_ARG_INTEGER;
    args[4].key = (char *)(uintptr_t)GRPC_ARG_MAX_CONNECTION_IDLE_MS;
    args[4].value.integer = g->p.idle_ms;
    grpc_channel_args ca = {5, args};
    g->cq = grpc_completion_queue_create_for_next(NULL);
    g->server = grpc_server_create(&ca, NULL);
    grpc_server_register_completion_queue(g->server, g->cq, NULL);
    snprintf(g->addr, sizeof g->addr, "%s:%d", g->p.address, g->p.port);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    g->port = grpc_server_add_http2_port(g->server, g->addr, creds);
    grpc_server_credentials_release(creds);
    if (g->port <= 0) {
        grpc_server_destroy(g->server);
        grpc_completion_queue_shutdown(g->cq);
        grpc_completion_queue_destroy(g->cq);
        grpc_shutdown();
        int rc = us_err_set(err, USHER_ERR_IO, "gRPC: cannot listen on %s (the port taken, or "
                            "the address not this host's)", g->addr);
        pthread_mutex_destroy(&g->mu);
        us_free(g->shutdown_tag);
        us_free(g);
        return rc;
    }
    grpc_server_start(g->server);
    for (int i = 0; i < GS_PENDING; i++)
        request_call(g);
    for (int i = 0; i < g->p.threads; i++) {
        if (pthread_create(&g->threads[i], NULL, cq_thread, g) != 0)
            break;
        g->n_threads++;
    }
    if (g->n_threads == 0) {
        gs_quiesce(g);
        gs_free(g);
        return us_err_set(err, USHER_ERR_IO, "gRPC: cannot start a thread");
    }
    g->have_sweeper = pthread_create(&g->sweeper, NULL, sweeper_thread, g) == 0;
    if (!g->have_sweeper)
        US_LOGW("grpc: no sweeper thread: calls that send no message are not timed out");
    *out = g;
    return USHER_OK;
}

void gs_quiesce(gs_server *g)
{
    if (!g || atomic_exchange(&g->quiesced, true))
        return;
    /* no new calls; the outstanding request_calls complete (not ok) and are freed */
    grpc_server_shutdown_and_notify(g->server, g->cq, g->shutdown_tag);
}

void gs_free(gs_server *g)
{
    if (!g)
        return;
    gs_quiesce(g);
    /* calls still open (a client that never sent its message) end now */
    grpc_server_cancel_all_calls(g->server);
    /* the completion queue may shut down only once the server has published its last
     * event on it (the shutdown tag) */
    for (int i = 0; !atomic_load(&g->shutdown_done); i++) {
        if (g->n_threads == 0) {
            gpr_timespec t = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                          gpr_time_from_millis(10, GPR_TIMESPAN));
            grpc_event ev = grpc_completion_queue_next(g->cq, t, NULL);
            if (ev.type == GRPC_OP_COMPLETE)
                on_event(g, ev.tag, ev.success != 0);
        } else {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        if (i == 10000)
            US_LOGW("grpc: the server has not shut down after 10 s; waiting on");
    }
    atomic_store(&g->stop_sweeper, true);
    if (g->have_sweeper)
        pthread_join(g->sweeper, NULL);
    grpc_completion_queue_shutdown(g->cq);
    for (int i = 0; i < g->n_threads; i++)
        pthread_join(g->threads[i], NULL);
    if (g->n_threads == 0)
        cq_thread(g); /* what is left, until the queue's end */
    grpc_server_destroy(g->server);
    grpc_completion_queue_destroy(g->cq);
    grpc_shutdown();
    pthread_mutex_destroy(&g->mu);
    us_free(g->shutdown_tag);
    us_free(g);
}
