/*
 * bench_serve.c - what serving costs over a direct ONNX Runtime call
 * (issue 5; method and results: bench/README.md, "Serving (issue 5)").
 *
 *   bench_serve latency REPO MODEL [--rounds R] [--block N] [--exe USHER]
 *                       [--inline-max-us N] [--cpu-wake-latency-us N]
 *   bench_serve lone REPO MODEL [--rounds R] [--gap-ms G] [--shape D,D,..] [--exe USHER]
 *   bench_serve direct MODEL.onnx [--batch B] [--seconds S]
 *   bench_serve body MODEL.onnx OUT [--rows N]
 *   bench_serve decode BODY.json
 *   bench_serve grpc REPO MODEL [--rounds R] [--block N] [--conc C] [--seconds S] [--exe USHER]
 *
 * latency  starts the server in this process (usher_server_start, port 0,
 *          workers are `USHER worker` processes: --exe, else $USHER_BIN,
 *          else build/usher) on REPO, and opens a direct backend session
 *          on MODEL's file with the worker's settings (1 intra-op thread,
 *          1 inter-op thread, full optimization). Then R rounds, each of
 *          three blocks of N calls, one call at a time: served with a JSON
 *          body (REPO/MODEL/sample.json), served with the binary tensor
 *          extension (same input shape, raw FP32, binary output asked
 *          for), direct be_run, and a floor: the same binary request
 *          sent to a thread of this process that only reads it and answers
 *          256 bytes over loopback TCP (what any server on this machine
 *          pays for the two network hops), and GET /v2/health/live on the
 *          server's connection (its HTTP handling alone: no body, no
 *          queue, no suspension). The block order rotates every round, so
 *          drift and order effects hit all five. Served calls go over
 *          one keep-alive TCP connection (TCP_NODELAY), timed from before
 *          the send to the last byte of the response. Around each served
 *          block the server's own figures are read (not timed):
 *          /v2/models/M/stats (queue and compute_infer ns) and /metrics
 *          (usher_request_duration_seconds sum and count: handler entry to
 *          response built), which split the added time. Output: a table of
 *          p50/p90/p99/mean per path, the added p50 both pooled and as the
 *          median over rounds of the per-round p50 differences (paired),
 *          and the split (means). --inline-max-us and --cpu-wake-latency-us
 *          set the server's parameters of those names (usher serve --help).
 * lone     a batchable model at 1 request/s (issue 10): does a request that finds the
 *          server idle wait for company? The server in this process as for latency,
 *          and a direct session on MODEL's file (--shape for the first input's
 *          shape, its dim 0 set to 1). R rounds (default 15), each of 2 x G ms
 *          (G default 1000): at its start one served call with the JSON body
 *          (REPO/MODEL/sample.json), G/2 later a direct be_run at batch 1, at G
 *          one served call with the binary body, at 3G/2 another direct run.
 *          So the server gets one request every G ms, never two at once, and
 *          the baseline (the batch-1 compute) is measured in the same run under
 *          the same idle conditions, between the served calls. Also 20
 *          back-to-back direct runs (the warm figure, for reference) and the
 *          server's own queue and compute_infer means over the run
 *          (/v2/models/M/stats). The target (issue 10): served p50 <= 1.2 x
 *          direct p50 + 1 ms, judged for each body form. Exit 0 when both meet
 *          it, 3 when one misses, 1 when the run fails.
 * direct   be_run at batch B (dim 0 of the first input; default 1) with the
 *          worker's settings, warm-up 3, for S seconds (default 5, at least
 *          5 runs): images/s = B x runs / wall time, and the p50 per run.
 *          Only FP32 inputs (every model served by the benchmark has one).
 * body     writes a binary-extension request body for MODEL (rows N in dim
 *          0 when it is dynamic, binary outputs) to OUT and prints the JSON
 *          header's length (the Inference-Header-Content-Length value), for
 *          wrk.
 * decode   the front end's decoding of a JSON infer body alone
 *          (oip_parse_request), best of 7 rounds of 500.
 * grpc     gRPC beside HTTP for MODEL in the same run: latency one call at a time and
 *          requests/s with C clients and on one ModelStreamInfer stream (bench_grpc.h;
 *          rounds default 5, C 8).
 * Inputs are the same fixed pattern for the direct and binary paths.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "backend/be.h"
#include "server/oip.h"
#include "usher/serve.h"
#include "bench.h"

/* percentile p of v[0..n) (sorts v) */
static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)ceil(p / 100.0 * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static double mean(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return n ? s / n : 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) {
        p[n] = 0;
        *len = (size_t)n;
    }
    return p;
}

/* ---- a direct backend session with the worker's settings --------------------------------- */
typedef struct direct {
    be_session *s;
    us_tensor in[8];
    size_t n_in, n_out;
    us_tensor *out;
    float *x;
} direct;

static void direct_close(direct *d)
{
    free(d->x);
    free(d->out);
    be_close(d->s);
}

/* dim 0 set to rows when it is dynamic, every other dynamic dim to 1; or, for the first
 * input, shape0 when given (its dim 0 then replaced by rows when rows > 0) */
static int direct_open(const char *path, int64_t rows, const us_shape *shape0, direct *d)
{
    memset(d, 0, sizeof *d);
    be_options o = be_default_options();
    o.intra_threads = 1; /* src/server/server.c: a replica's worker */
    o.inter_threads = 1;
    usher_error err;
    if (be_open(path, &o, &d->s, &err) < 0) {
        fprintf(stderr, "bench_serve: %s\n", err.msg);
        return -1;
    }
    d->n_in = be_n_inputs(d->s);
    d->n_out = be_n_outputs(d->s);
    if (d->n_in > 8) {
        fprintf(stderr, "bench_serve: %s: more than 8 inputs\n", path);
        return -1;
    }
    uint64_t most = 0;
    for (size_t i = 0; i < d->n_in; i++) {
        const be_io *io = be_input(d->s, i);
        if (io->dtype != US_DT_FP32) {
            fprintf(stderr, "bench_serve: %s: input '%s' is not FP32\n", path, io->name);
            return -1;
        }
        us_tensor *t = &d->in[i];
        snprintf(t->name, sizeof t->name, "%s", io->name);
        t->dtype = US_DT_FP32;
        t->shape = io->shape;
        if (i == 0 && shape0) {
            t->shape = *shape0;
            if (rows > 0 && t->shape.rank > 0)
                t->shape.dim[0] = rows;
        }
        uint64_t n = 1;
        for (int k = 0; k < t->shape.rank; k++) {
            if (t->shape.dim[k] < 0)
                t->shape.dim[k] = k == 0 ? rows : 1;
            n *= (uint64_t)t->shape.dim[k];
        }
        t->bytes = n * sizeof(float);
        if (n > most)
            most = n;
    }
    d->x = malloc(most * sizeof *d->x + 1);
    d->out = calloc(d->n_out, sizeof *d->out);
    if (!d->x || !d->out)
        return -1;
    for (uint64_t i = 0; i < most; i++) /* scripts/example-repo.sh's wave */
        d->x[i] = (float)(0.1 * sin((double)i / 7.0));
    for (size_t i = 0; i < d->n_in; i++)
        d->in[i].data = d->x;
    return 0;
}

static int direct_run(direct *d)
{
    usher_error err;
    int rc = be_run(d->s, d->in, d->n_in, d->out, &err);
    if (rc < 0) {
        fprintf(stderr, "bench_serve: be_run: %s\n", err.msg);
        return -1;
    }
    be_outputs_free(d->out, d->n_out);
    return 0;
}

/* the binary-extension body: JSON header, then each input's bytes */
static char *binary_body(const direct *d, size_t *len, size_t *header_len)
{
    size_t cap = 4096 + 256 * (d->n_in + d->n_out), total = 0;
    for (size_t i = 0; i < d->n_in; i++)
        total += d->in[i].bytes;
    char *p = malloc(cap + total);
    if (!p)
        return NULL;
    size_t n = 0;
    n += (size_t)snprintf(p + n, cap - n, "{\"inputs\":[");
    for (size_t i = 0; i < d->n_in; i++) {
        const us_tensor *t = &d->in[i];
        n += (size_t)snprintf(p + n, cap - n, "%s{\"name\":\"%s\",\"datatype\":\"FP32\",\"shape\":[",
                              i ? "," : "", t->name);
        for (int k = 0; k < t->shape.rank; k++)
            n += (size_t)snprintf(p + n, cap - n, "%s%lld", k ? "," : "",
                                  (long long)t->shape.dim[k]);
        n += (size_t)snprintf(p + n, cap - n, "],\"parameters\":{\"binary_data_size\":%llu}}",
                              (unsigned long long)t->bytes);
    }
    n += (size_t)snprintf(p + n, cap - n, "],\"outputs\":[");
    for (size_t i = 0; i < d->n_out; i++)
        n += (size_t)snprintf(p + n, cap - n,
                              "%s{\"name\":\"%s\",\"parameters\":{\"binary_data\":true}}",
                              i ? "," : "", be_output(d->s, i)->name);
    n += (size_t)snprintf(p + n, cap - n, "]}");
    *header_len = n;
    for (size_t i = 0; i < d->n_in; i++) {
        memcpy(p + n, d->in[i].data, d->in[i].bytes);
        n += d->in[i].bytes;
    }
    *len = n;
    return p;
}

/* ---- one keep-alive HTTP/1.1 connection ------------------------------------------------- */
typedef struct conn {
    int fd;
    char *buf;
    size_t cap;
    const char *body; /* of the last response, in buf */
    size_t body_len;
} conn;

static int conn_open(conn *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("bench_serve: connect");
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    return c->buf ? 0 : -1;
}

static void conn_close(conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
}

/* one request (head + body in one writev), the whole response read; its status or -1 */
static int conn_call(conn *c, char *head, size_t head_len, void *body, size_t body_len)
{
    struct iovec iov[2] = {{head, head_len}, {body, body_len}};
    int niov = body_len ? 2 : 1;
    size_t left = head_len + body_len;
    while (left) {
        ssize_t w = writev(c->fd, iov, niov);
        if (w <= 0)
            return -1;
        left -= (size_t)w;
        for (int i = 0; i < niov && w > 0; i++) {
            size_t k = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + k;
            iov[i].iov_len -= k;
            w -= (ssize_t)k;
        }
    }
    size_t len = 0, head_end = 0, want = SIZE_MAX;
    while (!head_end || len < want) {
        if (len + 4096 > c->cap) {
            char *p = realloc(c->buf, c->cap * 2);
            if (!p)
                return -1;
            c->buf = p;
            c->cap *= 2;
        }
        ssize_t got = recv(c->fd, c->buf + len, c->cap - len - 1, 0);
        if (got <= 0)
            return -1;
        len += (size_t)got;
        c->buf[len] = 0;
        if (!head_end) {
            char *e = strstr(c->buf, "\r\n\r\n");
            if (e) {
                head_end = (size_t)(e - c->buf) + 4;
                const char *cl = strcasestr(c->buf, "\r\nContent-Length:");
                want = head_end + (cl && cl < e ? strtoull(cl + 17, NULL, 10) : 0);
            }
        }
    }
    c->body = c->buf + head_end;
    c->body_len = len - head_end;
    int status = 0;
    sscanf(c->buf, "HTTP/1.%*d %d", &status);
    return status;
}

static int conn_get(conn *c, const char *path)
{
    char head[512];
    int n = snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    return conn_call(c, head, (size_t)n, NULL, 0);
}

/* ---- the server's own figures ------------------------------------------------------------ */
typedef struct srv_figs {
    double queue_ns, compute_ns, n_ok; /* /v2/models/M/stats */
    double dur_s, dur_n;               /* /metrics: usher_request_duration_seconds */
} srv_figs;

static double after(const char *body, const char *key)
{
    const char *p = strstr(body, key);
    return p ? strtod(p + strlen(key), NULL) : NAN;
}

static int srv_read(conn *c, const char *model, srv_figs *f)
{
    char path[300], key[300];
    snprintf(path, sizeof path, "/v2/models/%s/stats", model);
    if (conn_get(c, path) != 200)
        return -1;
    f->queue_ns = after(c->body, "\"queue\":{\"count\":");
    const char *q = strstr(c->body, "\"queue\":{\"count\":");
    f->queue_ns = q ? after(q, "\"ns\":") : NAN;
    q = strstr(c->body, "\"compute_infer\":{\"count\":");
    f->n_ok = q ? after(q, "\"compute_infer\":{\"count\":") : NAN;
    f->compute_ns = q ? after(q, "\"ns\":") : NAN;
    if (conn_get(c, "/metrics") != 200)
        return -1;
    snprintf(key, sizeof key, "usher_request_duration_seconds_sum{model=\"%s\"} ", model);
    f->dur_s = after(c->body, key);
    snprintf(key, sizeof key, "usher_request_duration_seconds_count{model=\"%s\"} ", model);
    f->dur_n = after(c->body, key);
    return 0;
}

/* ---- latency ------------------------------------------------------------------------------ */
enum { P_JSON, P_BIN, P_DIRECT, P_LIVE, P_ECHO, P_COUNT };
static const char *const path_name[P_COUNT] = {"served, JSON", "served, binary", "direct be_run",
                                               "GET /v2/health/live (HTTP alone)",
                                               "loopback TCP echo (floor)"};

/* ---- the floor: a thread that answers ECHO_REPLY bytes to every req_len bytes ------------- */
#define ECHO_REPLY 256
typedef struct echo {
    int lfd;
    size_t req_len;
} echo;

static void *echo_main(void *arg)
{
    echo *e = arg;
    int fd = accept(e->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char *buf = malloc(e->req_len), reply[ECHO_REPLY];
    memset(reply, 'x', sizeof reply);
    for (size_t got = 0; buf;) {
        ssize_t n = recv(fd, buf, e->req_len - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == e->req_len) {
            got = 0;
            if (send(fd, reply, sizeof reply, MSG_NOSIGNAL) != (ssize_t)sizeof reply)
                break;
        }
    }
    free(buf);
    close(fd);
    return NULL;
}

/* one round trip: the request out, ECHO_REPLY bytes back; 200 or -1 */
static int echo_call(int fd, char *head, size_t head_len, void *body, size_t body_len)
{
    struct iovec iov[2] = {{head, head_len}, {body, body_len}};
    if (writev(fd, iov, 2) != (ssize_t)(head_len + body_len)) /* < 64 KiB: one call */
        return -1;
    char buf[ECHO_REPLY];
    for (size_t got = 0; got < sizeof buf;) {
        ssize_t n = recv(fd, buf + got, sizeof buf - got, 0);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 200;
}

/* REPO/MODEL/V/model.onnx for the highest numeric V */
static int model_file(const char *repo, const char *model, char *out, size_t n)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", repo, model);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    long best = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && !*end && v > best)
            best = v;
    }
    closedir(d);
    if (best < 0)
        return -1;
    snprintf(out, n, "%s/%ld/model.onnx", dir, best);
    return 0;
}

/* ---- what latency and lone share ----------------------------------------------------------- */
/* the two bodies of MODEL's request with their HTTP heads: REPO/MODEL/sample.json, and the
 * binary body of a direct session on the model's file (batch 1; shape0: as direct_open) */
typedef struct bodies {
    direct d;
    char *json, *bin;
    size_t json_len, bin_len, bin_hdr;
    char head_json[1024], head_bin[1024];
    int hj, hb; /* the heads' lengths */
} bodies;

static void bodies_close(bodies *b)
{
    direct_close(&b->d);
    free(b->json);
    free(b->bin);
}

static int bodies_open(bodies *b, const char *repo, const char *model, const us_shape *shape0)
{
    memset(b, 0, sizeof *b);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/sample.json", repo, model);
    if (!(b->json = read_file(path, &b->json_len))) {
        fprintf(stderr, "bench_serve: cannot read %s\n", path);
        return -1;
    }
    if (model_file(repo, model, path, sizeof path) < 0) {
        fprintf(stderr, "bench_serve: no version directory under %s/%s\n", repo, model);
        return -1;
    }
    if (direct_open(path, 1, shape0, &b->d) < 0 ||
        !(b->bin = binary_body(&b->d, &b->bin_len, &b->bin_hdr)))
        return -1;
    b->hj = snprintf(b->head_json, sizeof b->head_json,
                     "POST /v2/models/%s/infer HTTP/1.1\r\nHost: localhost\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     model, b->json_len);
    b->hb = snprintf(b->head_bin, sizeof b->head_bin,
                     "POST /v2/models/%s/infer HTTP/1.1\r\nHost: localhost\r\n"
                     "Content-Type: application/octet-stream\r\n"
                     "Inference-Header-Content-Length: %zu\r\nContent-Length: %zu\r\n\r\n",
                     model, b->bin_hdr, b->bin_len);
    return 0;
}

/* the server in this process on REPO (port 0, quiet; inline_us and cpu_latency_us set the
 * parameters of those names when >= 0), waited for until ready, its plan printed, and one
 * connection to it in c. On failure *srv may still need server_down. */
static int server_up(const char *repo, const char *exe, int inline_us, int cpu_latency_us,
                     usher_server **srv, conn *c)
{
    usher_serve_params sp = usher_serve_default_params();
    sp.repo = repo;
    sp.exe = exe;
    sp.http_port = 0;
    sp.quiet = true;
    if (inline_us >= 0)
        sp.inline_max_us = inline_us;
    if (cpu_latency_us >= 0) {
        sp.cpu_latency_hold = true;
        sp.cpu_latency_us = cpu_latency_us;
    }
    usher_error err;
    if (usher_server_start(&sp, srv, &err) < 0) {
        fprintf(stderr, "bench_serve: %s\n", err.msg);
        return -1;
    }
    for (int i = 0; i < 1200 && !usher_server_ready(*srv); i++)
        usleep(100000);
    if (!usher_server_ready(*srv)) {
        fprintf(stderr, "bench_serve: the server was not ready after 120 s\n");
        return -1;
    }
    usher_server_print_plan(*srv, stdout);
    return conn_open(c, usher_server_port(*srv));
}

static void server_down(usher_server *srv, conn *c)
{
    conn_close(c);
    if (srv)
        usher_server_shutdown(srv, 5000);
    usher_server_free(srv);
}

static int latency(const char *repo, const char *model, const char *exe, int rounds, int block,
                   int inline_us, int cpu_latency_us)
{
    int rc = 1;
    usher_server *srv = NULL;
    bodies b;
    conn c = {.fd = -1};
    double *t[P_COUNT] = {0}, *med[P_COUNT] = {0};
    echo ec = {.lfd = -1};
    pthread_t echo_thread;
    bool echo_started = false;
    int efd = -1;
    if (bodies_open(&b, repo, model, NULL) < 0 ||
        server_up(repo, exe, inline_us, cpu_latency_us, &srv, &c) < 0)
        goto out;
    /* the floor: the binary request to a thread that only answers */
    ec.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ec.req_len = (size_t)b.hb + b.bin_len;
    struct sockaddr_in ea = {.sin_family = AF_INET};
    socklen_t eal = sizeof ea;
    inet_pton(AF_INET, "127.0.0.1", &ea.sin_addr);
    if (ec.lfd < 0 || bind(ec.lfd, (struct sockaddr *)&ea, sizeof ea) < 0 ||
        listen(ec.lfd, 1) < 0 || getsockname(ec.lfd, (struct sockaddr *)&ea, &eal) < 0 ||
        pthread_create(&echo_thread, NULL, echo_main, &ec) != 0) {
        perror("bench_serve: echo");
        goto out;
    }
    echo_started = true;
    efd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (efd < 0 || connect(efd, (struct sockaddr *)&ea, sizeof ea) < 0) {
        perror("bench_serve: echo connect");
        goto out;
    }
    int one = 1;
    setsockopt(efd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char head_live[] = "GET /v2/health/live HTTP/1.1\r\nHost: localhost\r\n\r\n";
    int n_all = rounds * block;
    for (int p = 0; p < P_COUNT; p++) {
        t[p] = malloc((size_t)n_all * sizeof *t[p]);
        med[p] = malloc((size_t)rounds * sizeof *med[p]);
        if (!t[p] || !med[p])
            goto out;
    }
    /* one call of path p; its status (200 for a direct run that worked) */
#define CALL(p)                                                                    \
    ((p) == P_JSON  ? conn_call(&c, b.head_json, (size_t)b.hj, b.json, b.json_len) \
     : (p) == P_BIN ? conn_call(&c, b.head_bin, (size_t)b.hb, b.bin, b.bin_len)    \
     : (p) == P_ECHO ? echo_call(efd, b.head_bin, (size_t)b.hb, b.bin, b.bin_len)  \
     : (p) == P_LIVE ? conn_call(&c, head_live, strlen(head_live), NULL, 0)        \
                    : (direct_run(&b.d) == 0 ? 200 : -1))
    for (int p = 0; p < P_COUNT; p++)
        for (int i = 0; i < 200; i++)
            if (CALL(p) != 200) {
                fprintf(stderr, "bench_serve: warm-up of '%s' failed\n%.*s\n", path_name[p],
                        (int)(c.body ? c.body_len : 0), c.body ? c.body : "");
                goto out;
            }
    srv_figs sum[P_COUNT];
    memset(sum, 0, sizeof sum);
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < P_COUNT; k++) {
            int p = (k + r) % P_COUNT;
            srv_figs f0 = {0}, f1 = {0};
            if (p < P_DIRECT && srv_read(&c, model, &f0) < 0)
                goto out;
            double *v = t[p] + (size_t)r * block;
            for (int i = 0; i < block; i++) {
                double t0 = now();
                int st = CALL(p);
                v[i] = now() - t0;
                if (st != 200) {
                    fprintf(stderr, "bench_serve: '%s' answered %d\n", path_name[p], st);
                    goto out;
                }
            }
            if (p < P_DIRECT) {
                if (srv_read(&c, model, &f1) < 0)
                    goto out;
                sum[p].queue_ns += f1.queue_ns - f0.queue_ns;
                sum[p].compute_ns += f1.compute_ns - f0.compute_ns;
                sum[p].n_ok += f1.n_ok - f0.n_ok;
                sum[p].dur_s += f1.dur_s - f0.dur_s;
                sum[p].dur_n += f1.dur_n - f0.dur_n;
            }
            double *copy = malloc((size_t)block * sizeof *copy);
            if (!copy)
                goto out;
            memcpy(copy, v, (size_t)block * sizeof *copy);
            med[p][r] = pct(copy, block, 50);
            free(copy);
        }
    }
#undef CALL
    double p50[P_COUNT], avg[P_COUNT];
    printf("\nmodel %s, ONNX Runtime %s, %ld cores; %d rounds x %d calls per path, "
           "one at a time, block order rotating\n\n",
           model, be_ort_version(), sysconf(_SC_NPROCESSORS_ONLN), rounds, block);
    printf("| path | calls | p50 us | p90 us | p99 us | mean us |\n|---|---|---|---|---|---|\n");
    for (int p = 0; p < P_COUNT; p++) {
        avg[p] = mean(t[p], n_all) * 1e6;
        p50[p] = pct(t[p], n_all, 50) * 1e6;
        printf("| %s | %d | %.1f | %.1f | %.1f | %.1f |\n", path_name[p], n_all, p50[p],
               pct(t[p], n_all, 90) * 1e6, pct(t[p], n_all, 99) * 1e6, avg[p]);
    }
    printf("\n| added over direct | p50, pooled | p50, median of per-round differences "
           "(range) |\n|---|---|---|\n");
    for (int p = 0; p < P_DIRECT; p++) {
        double *diff = malloc((size_t)rounds * sizeof *diff);
        if (!diff)
            goto out;
        for (int r = 0; r < rounds; r++)
            diff[r] = (med[p][r] - med[P_DIRECT][r]) * 1e6;
        double m = pct(diff, rounds, 50);
        printf("| %s | %.1f us | **%.1f us** (%.1f .. %.1f) |\n", path_name[p],
               p50[p] - p50[P_DIRECT], m, diff[0], diff[rounds - 1]);
        free(diff);
    }
    printf("\nwhere a served call's time goes (means over the timed calls, us):\n\n"
           "| path | client round trip | server: handler to response built | of which "
           "queue | of which worker round trip (compute_infer) | direct be_run |\n"
           "|---|---|---|---|---|---|\n");
    for (int p = 0; p < P_DIRECT; p++) {
        double n = sum[p].n_ok > 0 ? sum[p].n_ok : NAN;
        double dn = sum[p].dur_n > 0 ? sum[p].dur_n : NAN;
        printf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f |\n", path_name[p], avg[p],
               sum[p].dur_s / dn * 1e6, sum[p].queue_ns / n / 1e3, sum[p].compute_ns / n / 1e3,
               avg[P_DIRECT]);
    }
    printf("\n(worker round trip - direct: IPC, shared memory copies and the worker's own "
           "work; handler - queue - worker: parsing, request building, response writing; "
           "client - handler: HTTP reading and writing, connection suspend/resume, loopback "
           "TCP, this client; the health/live row is HTTP alone, the TCP echo row loopback "
           "alone)\n");
    rc = 0;
out:
    if (efd >= 0)
        close(efd); /* the echo thread sees EOF and returns */
    if (echo_started) {
        shutdown(ec.lfd, SHUT_RDWR); /* in case it still waits in accept */
        pthread_join(echo_thread, NULL);
    }
    if (ec.lfd >= 0)
        close(ec.lfd);
    server_down(srv, &c);
    bodies_close(&b);
    for (int p = 0; p < P_COUNT; p++) {
        free(t[p]);
        free(med[p]);
    }
    return rc;
}

/* ---- a lone request to a batchable model (issue 10) ----------------------------------------- */
static void sleep_until(double t)
{
    double d = t - now();
    if (d <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)d, .tv_nsec = (long)((d - (double)(time_t)d) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int lone(const char *repo, const char *model, const char *exe, int rounds, double gap_s,
                const us_shape *shape)
{
    int rc = 1;
    usher_server *srv = NULL;
    bodies b;
    conn c = {.fd = -1};
    double *t[3] = {0};
    enum { L_JSON, L_BIN, L_DIRECT };
    if (bodies_open(&b, repo, model, shape) < 0 || server_up(repo, exe, -1, -1, &srv, &c) < 0)
        goto out;
    for (int p = 0; p < 3; p++)
        t[p] = malloc((size_t)(2 * rounds + 20) * sizeof *t[p]);
    if (!t[0] || !t[1] || !t[2])
        goto out;
    /* warm-up: both bodies served (spaced like the run), direct runs */
    for (int i = 0; i < 3; i++) {
        int sj = conn_call(&c, b.head_json, (size_t)b.hj, b.json, b.json_len);
        usleep((useconds_t)(gap_s * 5e5));
        int sb = conn_call(&c, b.head_bin, (size_t)b.hb, b.bin, b.bin_len);
        usleep((useconds_t)(gap_s * 5e5));
        if (sj != 200 || sb != 200 || direct_run(&b.d) < 0) {
            fprintf(stderr, "bench_serve: warm-up failed (JSON %d, binary %d)\n%.*s\n", sj, sb,
                    (int)(c.body ? c.body_len : 0), c.body ? c.body : "");
            goto out;
        }
    }
    /* the warm figure: back to back */
    double warm[20];
    for (int i = 0; i < 20; i++) {
        double t0 = now();
        if (direct_run(&b.d) < 0)
            goto out;
        warm[i] = now() - t0;
    }
    double warm_p50 = pct(warm, 20, 50);
    srv_figs f0 = {0}, f1 = {0};
    if (srv_read(&c, model, &f0) < 0)
        goto out;
    int n[3] = {0}, refused[3] = {0};
    double start = now() + gap_s / 2;
    for (int r = 0; r < rounds; r++) {
        double base = start + 2 * gap_s * r;
        for (int k = 0; k < 4; k++) {
            sleep_until(base + k * gap_s / 2);
            int p = k == 0 ? L_JSON : k == 2 ? L_BIN : L_DIRECT;
            double t0 = now();
            int st = p == L_JSON   ? conn_call(&c, b.head_json, (size_t)b.hj, b.json, b.json_len)
                     : p == L_BIN ? conn_call(&c, b.head_bin, (size_t)b.hb, b.bin, b.bin_len)
                                  : (direct_run(&b.d) == 0 ? 200 : -1);
            double dt = now() - t0;
            if (st == 200) {
                t[p][n[p]++] = dt;
                continue;
            }
            /* a refusal is counted and shown, not timed; a broken connection or direct
             * run ends the run */
            fprintf(stderr, "bench_serve: round %d: %s answered %d: %.*s\n", r,
                    p == L_JSON ? "JSON" : p == L_BIN ? "binary" : "direct", st,
                    (int)(c.body && st > 0 ? c.body_len : 0), c.body && st > 0 ? c.body : "");
            if (st < 0)
                goto out;
            refused[p]++;
        }
    }
    if (srv_read(&c, model, &f1) < 0)
        goto out;
    double served_n = f1.n_ok - f0.n_ok;
    double queue_ms = (f1.queue_ns - f0.queue_ns) / served_n / 1e6;
    double worker_ms = (f1.compute_ns - f0.compute_ns) / served_n / 1e6;
    double handler_ms = (f1.dur_s - f0.dur_s) / (f1.dur_n - f0.dur_n) * 1e3;
    double direct_p50 = pct(t[L_DIRECT], n[L_DIRECT], 50) * 1e3;
    double target = 1.2 * direct_p50 + 1.0;
    printf("\nmodel %s, ONNX Runtime %s, %ld cores; %d rounds of %.0f ms: one served request "
           "every %.0f ms, alternately JSON and binary, a direct run between them\n\n",
           model, be_ort_version(), sysconf(_SC_NPROCESSORS_ONLN), rounds, 2 * gap_s * 1e3,
           gap_s * 1e3);
    printf("| path | answered 200 | refused | p50 ms | p90 ms | max ms | mean ms |\n"
           "|---|---|---|---|---|---|---|\n");
    static const char *const name[3] = {"served, JSON body", "served, binary body",
                                        "direct be_run, batch 1 (the baseline)"};
    double p50[3];
    for (int p = 0; p < 3; p++) {
        if (!n[p]) {
            p50[p] = NAN;
            printf("| %s | 0 | %d | | | | |\n", name[p], refused[p]);
            continue;
        }
        double m = mean(t[p], n[p]) * 1e3;
        p50[p] = pct(t[p], n[p], 50) * 1e3;
        printf("| %s | %d | %d | %.2f | %.2f | %.2f | %.2f |\n", name[p], n[p], refused[p],
               p50[p], pct(t[p], n[p], 90) * 1e3, t[p][n[p] - 1] * 1e3, m);
    }
    printf("| direct be_run, batch 1, 20 back to back (warm, for reference) | 20 | | %.2f "
           "| | | |\n",
           warm_p50 * 1e3);
    printf("\nserver side over the %.0f served requests (means): handler to response %.2f ms, "
           "of which queue %.2f ms and worker round trip (compute_infer) %.2f ms\n",
           served_n, handler_ms, queue_ms, worker_ms);
    printf("\ntarget (issue 10): served p50 <= 1.2 x batch-1 compute + 1 ms = 1.2 x %.2f + 1 = "
           "%.2f ms\n",
           direct_p50, target);
    bool all = true;
    for (int p = 0; p < L_DIRECT; p++) {
        /* a lone request refused is not served: it misses the target whatever the p50 */
        bool met = n[p] > 0 && p50[p] <= target && refused[p] == 0;
        all = all && met;
        printf("%s: p50 %.2f ms = %.2f x the batch-1 compute; %d of %d refused: target %s\n",
               name[p], p50[p], p50[p] / direct_p50, refused[p], n[p] + refused[p],
               met ? "MET" : "MISSED");
    }
    rc = all ? 0 : 3;
out:
    server_down(srv, &c);
    bodies_close(&b);
    for (int p = 0; p < 3; p++)
        free(t[p]);
    return rc;
}

/* ---- direct throughput --------------------------------------------------------------------- */
static int direct_throughput(const char *path, int batch, const us_shape *shape, double seconds)
{
    direct d;
    if (direct_open(path, batch, shape, &d) < 0) {
        direct_close(&d);
        return 1;
    }
    int64_t rows = d.in[0].shape.rank ? d.in[0].shape.dim[0] : 1;
    int rc = 0, cap = 1 << 16, n = 0;
    double *t = malloc((size_t)cap * sizeof *t);
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = direct_run(&d);
    double start = now();
    while (rc == 0 && n < cap && (n < 5 || now() - start < seconds)) {
        double t0 = now();
        rc = direct_run(&d);
        t[n++] = now() - t0;
    }
    double wall = now() - start;
    if (rc == 0)
        printf("direct be_run batch %lld: %d runs in %.2f s, p50 %.2f ms, %.1f images/s\n",
               (long long)rows, n, wall, pct(t, n, 50) * 1e3, (double)rows * n / wall);
    free(t);
    direct_close(&d);
    return rc != 0;
}

/* The front end's decoding of an infer body alone: oip_parse_request (bounded JSON reader,
 * numbers decoded into the tensor's type), best of 7 rounds of 500. */
static int decode_body(const char *path)
{
    size_t len;
    char *body = read_file(path, &len);
    if (!body) {
        fprintf(stderr, "bench_serve: cannot read %s\n", path);
        return 1;
    }
    oip_limits lim = oip_default_limits();
    double best = 1e30;
    size_t elements = 0;
    for (int r = 0; r < 7; r++) {
        double t0 = now();
        for (int k = 0; k < 500; k++) {
            oip_request q;
            usher_error err;
            if (oip_parse_request((const uint8_t *)body, len, 0, &lim, &q, &err) < 0) {
                fprintf(stderr, "bench_serve: %s: %s\n", path, err.msg);
                free(body);
                return 1;
            }
            elements = 0;
            for (size_t i = 0; i < q.n_in; i++)
                elements += q.in[i].bytes;
            oip_request_free(&q);
        }
        double t = (now() - t0) / 500;
        best = t < best ? t : best;
    }
    printf("decode %s: %zu bytes of JSON -> %zu bytes of tensors in %.1f us (best of 7 x 500)\n",
           path, len, elements, best * 1e6);
    free(body);
    return 0;
}

static int write_body(const char *path, const char *out, int rows, const us_shape *shape)
{
    direct d;
    if (direct_open(path, rows, shape, &d) < 0) {
        direct_close(&d);
        return 1;
    }
    size_t len, hdr;
    char *b = binary_body(&d, &len, &hdr);
    FILE *f = fopen(out, "wb");
    int rc = !b || !f || fwrite(b, 1, len, f) != len;
    if (f && fclose(f) != 0)
        rc = 1;
    if (rc)
        fprintf(stderr, "bench_serve: cannot write %s\n", out);
    else
        printf("%zu\n", hdr);
    free(b);
    direct_close(&d);
    return rc;
}

#include "bench_grpc.h"

static int usage(void)
{
    fprintf(stderr, "usage: bench_serve latency REPO MODEL [--rounds R] [--block N] [--exe USHER]\n"
                    "                       [--inline-max-us N] [--cpu-wake-latency-us N]\n"
                    "       bench_serve lone REPO MODEL [--rounds R] [--gap-ms G]\n"
                    "                       [--shape D,D,..] [--exe USHER]\n"
                    "       bench_serve direct MODEL.onnx [--batch B] [--shape D,D,..] [--seconds S]\n"
                    "       bench_serve body MODEL.onnx OUT [--rows N] [--shape D,D,..]\n"
                    "       bench_serve decode BODY.json\n"
                    "       bench_serve grpc REPO MODEL [--rounds R] [--block N] [--conc C]\n"
                    "                       [--seconds S] [--exe USHER]\n");
    return 2;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    const char *pos[3] = {0}, *exe = getenv("USHER_BIN");
    int n_pos = 0, rounds = 15, block = 200, batch = 1, inline_us = -1, cpu_latency_us = -1;
    int conc = 8;
    double seconds = 5, gap_ms = 1000;
    bool rounds_given = false;
    us_shape shape = {0};
    bool have_shape = false;
    if (argc < 2)
        return usage();
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            rounds_given = true;
        } else if (strcmp(argv[i], "--gap-ms") == 0 && i + 1 < argc)
            gap_ms = atof(argv[++i]);
        else if (strcmp(argv[i], "--block") == 0 && i + 1 < argc)
            block = atoi(argv[++i]);
        else if (strcmp(argv[i], "--conc") == 0 && i + 1 < argc)
            conc = atoi(argv[++i]);
        else if (strcmp(argv[i], "--exe") == 0 && i + 1 < argc)
            exe = argv[++i];
        else if (strcmp(argv[i], "--inline-max-us") == 0 && i + 1 < argc)
            inline_us = atoi(argv[++i]);
        else if (strcmp(argv[i], "--cpu-wake-latency-us") == 0 && i + 1 < argc)
            cpu_latency_us = atoi(argv[++i]);
        else if ((strcmp(argv[i], "--batch") == 0 || strcmp(argv[i], "--rows") == 0) && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (strcmp(argv[i], "--shape") == 0 && i + 1 < argc) {
            char *p = argv[++i];
            for (shape.rank = 0; *p && shape.rank < US_TENSOR_MAX_RANK; shape.rank++) {
                shape.dim[shape.rank] = strtoll(p, &p, 10);
                if (shape.dim[shape.rank] < 1 || (*p && *p != ','))
                    return usage();
                p += *p == ',';
            }
            have_shape = shape.rank > 0;
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (argv[i][0] != '-' && n_pos < 3)
            pos[n_pos++] = argv[i];
        else
            return usage();
    }
    if (rounds < 1 || block < 1 || batch < 1 || !(gap_ms >= 1))
        return usage();
    if (strcmp(argv[1], "lone") == 0 && n_pos == 2)
        return lone(pos[0], pos[1], exe ? exe : "build/usher", rounds_given ? rounds : 15,
                    gap_ms / 1e3, have_shape ? &shape : NULL);
    if (strcmp(argv[1], "latency") == 0 && n_pos == 2)
        return latency(pos[0], pos[1], exe ? exe : "build/usher", rounds, block, inline_us,
                       cpu_latency_us);
    if (strcmp(argv[1], "grpc") == 0 && n_pos == 2 && conc >= 1 && conc <= 64 && seconds > 0)
        return grpc_bench(pos[0], pos[1], exe ? exe : "build/usher", rounds_given ? rounds : 5,
                          block, conc, seconds);
    if (strcmp(argv[1], "direct") == 0 && n_pos == 1)
        return direct_throughput(pos[0], batch, have_shape ? &shape : NULL, seconds);
    if (strcmp(argv[1], "decode") == 0 && n_pos == 1)
        return decode_body(pos[0]);
    if (strcmp(argv[1], "body") == 0 && n_pos == 2)
        return write_body(pos[0], pos[1], batch, have_shape ? &shape : NULL);
    return usage();
}
