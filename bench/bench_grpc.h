/*
 * bench_grpc.h - `bench_serve grpc`: gRPC beside HTTP for the same model, in the same run
 * (issue 17; method and figures: bench/README.md, "gRPC beside HTTP"). Included by
 * bench_serve.c, whose direct session, bodies and HTTP connection it shares.
 *
 *   bench_serve grpc REPO MODEL [--rounds R] [--block N] [--conc C] [--seconds S] [--exe USHER]
 *
 * The server runs in this process (HTTP and gRPC on free ports of 127.0.0.1, workers as
 * `USHER worker`); the clients are C: HTTP/1.1 over one keep-alive TCP connection per
 * client (the binary tensor extension, binary outputs, as bench_serve latency), gRPC over
 * gRPC's C core (one channel, so one HTTP/2 connection, per client; ModelInfer with the
 * same input bytes as raw_input_contents, every output answered raw). Same input, same
 * model, the same machine and minutes for both:
 *   latency    R rounds, each a block of N gRPC calls and a block of N HTTP calls, one call
 *              at a time, the order alternating per round; p50 / p99 per path (pooled) and
 *              the median over rounds of the per-round p50 ratio gRPC / HTTP (paired);
 *   throughput R rounds of S seconds per path, alternating: C client threads each calling
 *              in a loop (HTTP, gRPC ModelInfer), and one ModelStreamInfer stream with up
 *              to C requests in flight (gRPC stream); answered requests / s, medians, and
 *              the ratios to HTTP. The clients share the cores with the server.
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "grpc_service.pb-c.h"

typedef struct gclient {
    grpc_channel *ch;
    grpc_completion_queue *cq; /* pluck */
    grpc_slice method;
} gclient;

static int gclient_open(gclient *g, int port)
{
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_arg a[2];
    memset(a, 0, sizeof a);
    a[0].type = GRPC_ARG_INTEGER; /* a connection of its own per client, as HTTP's */
    a[0].key = (char *)(uintptr_t)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    a[0].value.integer = 1;
    a[1].type = GRPC_ARG_INTEGER;
    a[1].key = (char *)(uintptr_t)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    a[1].value.integer = 64 << 20;
    grpc_channel_args args = {2, a};
    grpc_channel_credentials *cr = grpc_insecure_credentials_create();
    g->ch = grpc_channel_create(target, cr, &args);
    grpc_channel_credentials_release(cr);
    g->cq = grpc_completion_queue_create_for_pluck(NULL);
    g->method = grpc_slice_from_static_string("/inference.GRPCInferenceService/ModelInfer");
    return g->ch && g->cq ? 0 : -1;
}

static void gclient_close(gclient *g)
{
    if (g->ch)
        grpc_channel_destroy(g->ch);
    if (g->cq) {
        grpc_completion_queue_shutdown(g->cq);
        grpc_completion_queue_destroy(g->cq);
    }
}

/* one ModelInfer call with the request bytes req; 0 when answered OK with a message */
static int gclient_call(gclient *g, grpc_slice req)
{
    grpc_call *call = grpc_channel_create_call(g->ch, NULL, GRPC_PROPAGATE_DEFAULTS, g->cq,
                                               g->method, NULL,
                                               gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&req, 1), *recv = NULL;
    grpc_metadata_array mi, mt;
    grpc_metadata_array_init(&mi);
    grpc_metadata_array_init(&mt);
    grpc_status_code st = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &mi;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &mt;
    ops[5].data.recv_status_on_client.status = &st;
    ops[5].data.recv_status_on_client.status_details = &details;
    int rc = -1;
    if (grpc_call_start_batch(call, ops, 6, (void *)1, NULL) == GRPC_CALL_OK) {
        grpc_event ev = grpc_completion_queue_pluck(g->cq, (void *)1,
                                                    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        rc = ev.type == GRPC_OP_COMPLETE && ev.success && st == GRPC_STATUS_OK && recv ? 0 : -1;
    }
    if (rc < 0 && GRPC_SLICE_LENGTH(details))
        fprintf(stderr, "bench_serve: gRPC status %d: %.*s\n", (int)st,
                (int)GRPC_SLICE_LENGTH(details), (const char *)GRPC_SLICE_START_PTR(details));
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&mi);
    grpc_metadata_array_destroy(&mt);
    grpc_byte_buffer_destroy(send);
    if (recv)
        grpc_byte_buffer_destroy(recv);
    grpc_call_unref(call);
    return rc;
}

/* the ModelInferRequest of the direct session's inputs, as raw_input_contents */
static grpc_slice grpc_request(const direct *d, const char *model)
{
    Inference__ModelInferRequest q = INFERENCE__MODEL_INFER_REQUEST__INIT;
    Inference__ModelInferRequest__InferInputTensor t[8], *tp[8];
    ProtobufCBinaryData raw[8];
    int64_t shapes[8][US_TENSOR_MAX_RANK];
    q.model_name = (char *)(uintptr_t)model;
    for (size_t i = 0; i < d->n_in; i++) {
        inference__model_infer_request__infer_input_tensor__init(&t[i]);
        t[i].name = (char *)(uintptr_t)d->in[i].name;
        t[i].datatype = (char *)(uintptr_t) "FP32";
        for (int k = 0; k < d->in[i].shape.rank; k++)
            shapes[i][k] = d->in[i].shape.dim[k];
        t[i].n_shape = (size_t)d->in[i].shape.rank;
        t[i].shape = shapes[i];
        tp[i] = &t[i];
        raw[i].len = (size_t)d->in[i].bytes;
        raw[i].data = d->in[i].data;
    }
    q.n_inputs = d->n_in;
    q.inputs = tp;
    q.n_raw_input_contents = d->n_in;
    q.raw_input_contents = raw;
    size_t n = protobuf_c_message_get_packed_size(&q.base);
    grpc_slice sl = grpc_slice_malloc(n);
    protobuf_c_message_pack(&q.base, GRPC_SLICE_START_PTR(sl));
    return sl;
}

/* ---- throughput ---------------------------------------------------------------------------- */
typedef struct tp_arg {
    int http_port, grpc_port;
    bool grpc;
    const bodies *b;
    grpc_slice req;
    double until;
    long answered, failed;
} tp_arg;

static void *tp_main(void *arg)
{
    tp_arg *a = arg;
    if (a->grpc) {
        gclient g = {0};
        if (gclient_open(&g, a->grpc_port) == 0)
            while (now() < a->until)
                gclient_call(&g, a->req) == 0 ? a->answered++ : a->failed++;
        gclient_close(&g);
    } else {
        conn c = {.fd = -1};
        if (conn_open(&c, a->http_port) == 0)
            while (now() < a->until)
                conn_call(&c, (char *)(uintptr_t)a->b->head_bin, (size_t)a->b->hb, a->b->bin,
                          a->b->bin_len) == 200
                    ? a->answered++
                    : a->failed++;
        conn_close(&c);
    }
    return NULL;
}

/* C clients for secs seconds; answered requests / s */
static double tp_run(const bodies *b, grpc_slice req, int http_port, int grpc_port, bool grpc,
                     int conc, double secs, long *failed)
{
    pthread_t th[64];
    tp_arg a[64];
    int n = conc > 64 ? 64 : conc, started = 0;
    double t0 = now();
    for (int i = 0; i < n; i++) {
        a[i] = (tp_arg){.http_port = http_port, .grpc_port = grpc_port, .grpc = grpc, .b = b,
                        .req = req, .until = t0 + secs};
        if (pthread_create(&th[i], NULL, tp_main, &a[i]) == 0)
            started++;
        else
            break;
    }
    long ans = 0;
    *failed = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        ans += a[i].answered;
        *failed += a[i].failed;
    }
    return (double)ans / (now() - t0);
}

/* one ModelStreamInfer stream with up to conc requests in flight for secs seconds: answers / s
 * (error answers counted in *failed) */
static double tp_stream(grpc_slice req, int grpc_port, int conc, double secs, long *failed)
{
    gclient g = {0};
    *failed = 0;
    if (gclient_open(&g, grpc_port) < 0) {
        gclient_close(&g);
        return 0;
    }
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    grpc_slice method =
        grpc_slice_from_static_string("/inference.GRPCInferenceService/ModelStreamInfer");
    grpc_call *call = grpc_channel_create_call(g.ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
                                               NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_metadata_array mi, mt;
    grpc_metadata_array_init(&mi);
    grpc_metadata_array_init(&mt);
    grpc_status_code st = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_byte_buffer *send = NULL, *recv = NULL;
    long sent = 0, got = 0;
    bool writing = false, reading = false, closed = false, status = false;
    double t0 = now(), until = t0 + secs, t_end = 0;
    grpc_op op[2];
    memset(op, 0, sizeof op);
    op[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    op[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    op[1].data.recv_initial_metadata.recv_initial_metadata = &mi;
    grpc_call_start_batch(call, op, 2, (void *)0, NULL);
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    memset(op, 0, sizeof op);
    op[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op[0].data.recv_status_on_client.trailing_metadata = &mt;
    op[0].data.recv_status_on_client.status = &st;
    op[0].data.recv_status_on_client.status_details = &details;
    grpc_call_start_batch(call, op, 1, (void *)3, NULL);
    for (;;) {
        bool more = now() < until;
        if (!writing && !closed && more && sent - got < conc) {
            memset(op, 0, sizeof op);
            send = grpc_raw_byte_buffer_create(&req, 1);
            op[0].op = GRPC_OP_SEND_MESSAGE;
            op[0].data.send_message.send_message = send;
            grpc_call_start_batch(call, op, 1, (void *)1, NULL);
            writing = true;
            sent++;
        } else if (!writing && !closed && !more) {
            memset(op, 0, sizeof op);
            op[0].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
            grpc_call_start_batch(call, op, 1, (void *)4, NULL);
            closed = writing = true;
        }
        if (!reading && got < sent) {
            memset(op, 0, sizeof op);
            op[0].op = GRPC_OP_RECV_MESSAGE;
            op[0].data.recv_message.recv_message = &recv;
            grpc_call_start_batch(call, op, 1, (void *)2, NULL);
            reading = true;
        }
        if (status && !reading && !writing)
            break;
        ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        switch ((intptr_t)ev.tag) {
        case 1:
            grpc_byte_buffer_destroy(send);
            writing = false;
            break;
        case 2:
            reading = false;
            if (!ev.success || !recv) {
                *failed += sent - got;
                got = sent;
                break;
            }
            { /* an answer: an error_message is field 1 (tag 0x0a) first */
                grpc_byte_buffer_reader r;
                grpc_byte_buffer_reader_init(&r, recv);
                grpc_slice s = grpc_byte_buffer_reader_readall(&r);
                if (GRPC_SLICE_LENGTH(s) && GRPC_SLICE_START_PTR(s)[0] == 0x0a)
                    (*failed)++;
                grpc_slice_unref(s);
                grpc_byte_buffer_reader_destroy(&r);
            }
            grpc_byte_buffer_destroy(recv);
            recv = NULL;
            got++;
            if (got == sent && closed)
                t_end = now();
            break;
        case 3:
            status = true;
            break;
        case 4:
            writing = false;
            break;
        default:
            break;
        }
    }
    if (!t_end)
        t_end = now();
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    if (st != GRPC_STATUS_OK)
        fprintf(stderr, "bench_serve: the stream ended with status %d\n", (int)st);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&mi);
    grpc_metadata_array_destroy(&mt);
    gclient_close(&g);
    return (double)(got - *failed) / (t_end - t0);
}

static double median(double *v, int n) { return pct(v, n, 50); }

static int grpc_bench(const char *repo, const char *model, const char *exe, int rounds,
                      int block, int conc, double secs)
{
    int rc = 1;
    usher_server *srv = NULL;
    bodies b;
    memset(&b, 0, sizeof b);
    conn c = {.fd = -1};
    gclient g = {0};
    grpc_slice req = grpc_empty_slice();
    double *tg = calloc((size_t)rounds * (size_t)block, sizeof *tg);
    double *th = calloc((size_t)rounds * (size_t)block, sizeof *th);
    double *ratio = calloc((size_t)rounds, sizeof *ratio);
    double *rg = calloc((size_t)rounds, sizeof *rg), *rh = calloc((size_t)rounds, sizeof *rh);
    double *rs = calloc((size_t)rounds, sizeof *rs);
    double *rgr = calloc((size_t)rounds, sizeof *rgr), *rsr = calloc((size_t)rounds, sizeof *rsr);
    grpc_init();
    if (!tg || !th || !ratio || !rg || !rh || !rs || !rgr || !rsr ||
        bodies_open(&b, repo, model, NULL) < 0)
        goto out;
    usher_serve_params sp = usher_serve_default_params();
    sp.repo = repo;
    sp.exe = exe;
    sp.http_port = 0;
    sp.grpc_port = 0;
    sp.quiet = true;
    usher_error err;
    if (usher_server_start(&sp, &srv, &err) < 0) {
        fprintf(stderr, "bench_serve: %s\n", err.msg);
        goto out;
    }
    for (int i = 0; i < 1200 && !usher_server_ready(srv); i++)
        usleep(100000);
    if (!usher_server_ready(srv)) {
        fprintf(stderr, "bench_serve: the server was not ready after 120 s\n");
        goto out;
    }
    usher_server_print_plan(srv, stdout);
    int hport = usher_server_port(srv), gport = usher_server_grpc_port(srv);
    req = grpc_request(&b.d, model);
    if (conn_open(&c, hport) < 0 || gclient_open(&g, gport) < 0)
        goto out;
    /* warm-up, and both paths answer */
    for (int i = 0; i < 50; i++)
        if (gclient_call(&g, req) < 0 ||
            conn_call(&c, b.head_bin, (size_t)b.hb, b.bin, b.bin_len) != 200) {
            fprintf(stderr, "bench_serve: a warm-up call failed\n");
            goto out;
        }
    printf("latency: %d rounds of %d calls per path, one at a time, order alternating\n",
           rounds, block);
    for (int r = 0; r < rounds; r++) {
        for (int half = 0; half < 2; half++) {
            bool grpc = (half == 0) == (r % 2 == 0);
            double *t = (grpc ? tg : th) + (size_t)r * (size_t)block;
            for (int i = 0; i < block; i++) {
                double t0 = now();
                int ok = grpc ? gclient_call(&g, req) == 0
                              : conn_call(&c, b.head_bin, (size_t)b.hb, b.bin, b.bin_len) == 200;
                t[i] = (now() - t0) * 1e6;
                if (!ok) {
                    fprintf(stderr, "bench_serve: a call failed\n");
                    goto out;
                }
            }
        }
        double *a = malloc((size_t)block * sizeof *a), *h = malloc((size_t)block * sizeof *h);
        if (!a || !h) {
            free(a);
            free(h);
            goto out;
        }
        memcpy(a, tg + (size_t)r * (size_t)block, (size_t)block * sizeof *a);
        memcpy(h, th + (size_t)r * (size_t)block, (size_t)block * sizeof *h);
        ratio[r] = median(a, block) / median(h, block);
        free(a);
        free(h);
    }
    int n = rounds * block;
    double g50 = pct(tg, n, 50), g99 = pct(tg, n, 99), h50 = pct(th, n, 50), h99 = pct(th, n, 99);
    printf("| path | p50 us | p99 us |\n|---|---|---|\n");
    printf("| gRPC ModelInfer (raw_input_contents) | %.1f | %.1f |\n", g50, g99);
    printf("| HTTP binary extension (keep-alive) | %.1f | %.1f |\n", h50, h99);
    printf("latency gRPC/HTTP: pooled p50 %.2f, p99 %.2f; paired per-round p50 median %.2f\n",
           g50 / h50, g99 / h99, median(ratio, rounds));
    printf("throughput: %d rounds of %.1f s per path, %d clients (stream: %d in flight), "
           "order rotating\n", rounds, secs, conc, conc);
    for (int r = 0; r < rounds; r++) {
        long fh = 0, fg = 0, fs = 0;
        for (int k = 0; k < 3; k++) {
            int which = (k + r) % 3;
            if (which == 0)
                rh[r] = tp_run(&b, req, hport, gport, false, conc, secs, &fh);
            else if (which == 1)
                rg[r] = tp_run(&b, req, hport, gport, true, conc, secs, &fg);
            else
                rs[r] = tp_stream(req, gport, conc, secs, &fs);
        }
        rgr[r] = rg[r] / rh[r];
        rsr[r] = rs[r] / rh[r];
        printf("round %d: HTTP %.0f/s, gRPC %.0f/s, gRPC stream %.0f/s (failed: %ld, %ld, %ld)\n",
               r + 1, rh[r], rg[r], rs[r], fh, fg, fs);
    }
    printf("requests/s medians: HTTP %.0f, gRPC %.0f, gRPC stream %.0f; gRPC/HTTP %.2f, "
           "stream/HTTP %.2f (medians of the per-round ratios)\n",
           median(rh, rounds), median(rg, rounds), median(rs, rounds), median(rgr, rounds),
           median(rsr, rounds));
    rc = 0;
out:
    conn_close(&c);
    gclient_close(&g);
    grpc_slice_unref(req);
    if (srv)
        usher_server_shutdown(srv, 5000);
    usher_server_free(srv);
    grpc_shutdown();
    bodies_close(&b);
    free(tg);
    free(th);
    free(ratio);
    free(rg);
    free(rh);
    free(rs);
    free(rgr);
    free(rsr);
    return rc;
}
