/*
 * fuzz_http.c - libFuzzer target for usher's HTTP/1.1 layer
 * (src/server/http.c): request framing from untrusted bytes (RELIABILITY.md
 * CI-2, INPUT-6).
 *
 * The input is sent as is on a fresh loopback TCP connection to an
 * in-process hs server (one event loop; body limit 4 KiB; 200 ms header,
 * body and idle timeouts), whose handler answers a refused request with its
 * status and a JSON error, and any other with 200 and its body echoed. Then
 * the client closes its sending side and reads until the server closes.
 * The contract checked on every input, beyond "no crash, no sanitizer
 * report":
 *   - the server closes the connection within 2 s of the client's close;
 *   - what it sends is a sequence of whole answers, each "HTTP/1.1 NNN"
 *     with a known status, a Content-Length and that many body bytes (none
 *     for HEAD), and "100 Continue" interim answers; nothing else, nothing
 *     cut off;
 *   - a refusal (4xx) is the last answer on its connection;
 *   - answers are no more than the requests the input could hold (one per
 *     "\r\n\r\n").
 * Violations abort, so libFuzzer records them as crashes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "fuzz_http.h"
#include "server/http.h"

static hs_server *srv;
static int port;

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz contract violated: %s\n", what);
        abort();
    }
}

static void handler(hs_req *r, void *ctx)
{
    (void)ctx;
    static const char err[] = "{\"error\":\"refused\"}";
    if (r->status)
        hs_respond(r, r->status, "application/json", NULL, err, sizeof err - 1, NULL, 0, true);
    else
        hs_respond(r, 200, "application/octet-stream", NULL, r->body, r->body_len, NULL, 0,
                   false);
}

static void end(hs_req *r, void *ctx)
{
    (void)r;
    (void)ctx;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* one answer at p (n bytes): its length, 0 when incomplete; aborts when malformed. An
 * answer to HEAD has a Content-Length and no body: with head_ok, an answer whose body is
 * absent (the bytes end, or the next answer starts) is taken as one. */
static size_t answer_len(const char *p, size_t n, int *status, bool head_ok)
{
    const char *e = NULL;
    for (size_t i = 0; i + 3 < n; i++)
        if (memcmp(p + i, "\r\n\r\n", 4) == 0) {
            e = p + i;
            break;
        }
    if (!e)
        return 0;
    check(n >= 12 && memcmp(p, "HTTP/1.1 ", 9) == 0, "an answer not starting with HTTP/1.1");
    *status = atoi(p + 9);
    static const int known[] = {100, 200, 400, 408, 413, 414, 431, 503};
    bool ok = false;
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        ok = ok || known[k] == *status;
    check(ok, "an unexpected status");
    size_t head = (size_t)(e - p) + 4;
    if (*status == 100)
        return head;
    const char *cl = NULL;
    for (const char *q = p; q < e; q++)
        if (strncmp(q, "\r\nContent-Length: ", 18) == 0) {
            cl = q + 18;
            break;
        }
    check(cl != NULL, "an answer without Content-Length");
    size_t body = (size_t)strtoull(cl, NULL, 10);
    if (head_ok && (head == n || (n - head >= 9 && memcmp(p + head, "HTTP/1.1 ", 9) == 0)) &&
        head + body != n)
        return head;
    return head + body <= n ? head + body : 0;
}

int usher_fuzz_http_one(const uint8_t *data, size_t size)
{
    if (!srv) {
        hs_params p = hs_default_params();
        p.threads = 1;
        p.max_body = 4096;
        p.header_timeout_ms = 200;
        p.body_timeout_ms = 200;
        p.idle_timeout_ms = 200;
        p.handler = handler;
        p.end = end;
        usher_error err;
        check(hs_start(&p, &srv, &err) == USHER_OK, "the server did not start");
        port = hs_port(srv);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    check(fd >= 0, "no socket");
    /* the server closes first, so each connection leaves a TIME_WAIT behind for 60 s: a
     * source address of its own, among 127.0.0.0/8, keeps the ports from running out */
    static uint32_t seq;
    seq = seq % 0xfffff0 + 1;
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001u + seq)};
    check(bind(fd, (struct sockaddr *)&src, sizeof src) == 0, "cannot bind a source address");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        /* refused: the server stopped listening (a bug); anything else is this machine
         * (ports, TIME_WAIT buckets) and the input is skipped */
        int e = errno;
        fprintf(stderr, "connect: %s (connection %u)\n", strerror(e), seq);
        check(e != ECONNREFUSED, "the server refused a connection");
        close(fd);
        return 0;
    }
    static char in[1 << 20];
    size_t got = 0, sent = 0;
    bool closed = false;
    double t_close = 0;
    while (!closed) {
        struct pollfd pf = {.fd = fd, .events = POLLIN | (sent < size ? POLLOUT : 0)};
        poll(&pf, 1, 50);
        if (sent < size && (pf.revents & POLLOUT)) {
            ssize_t w = send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0)
                sent = size; /* the server closed: the rest cannot go */
            if (sent == size) {
                shutdown(fd, SHUT_WR);
                t_close = now_s();
            }
        } else if (sent == size && t_close == 0) {
            shutdown(fd, SHUT_WR);
            t_close = now_s();
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, in + got, sizeof in - got, MSG_DONTWAIT);
            if (r > 0)
                got += (size_t)r;
            else if (r == 0 || got == sizeof in)
                closed = true;
        }
        if (t_close > 0 && now_s() - t_close > 2)
            check(false, "the server did not close within 2 s of the client's close");
    }
    close(fd);
    /* the answers */
    size_t off = 0, n_heads = 0;
    int answers = 0, last = 0;
    bool head_ok = false;
    for (size_t i = 0; i + 3 < size; i++) {
        n_heads += memcmp(data + i, "\r\n\r\n", 4) == 0;
        /* a HEAD request line may be in it (answers with no body) - anywhere: a request
         * may start right after a body's last byte ("...\r" then "HEAD", found by a
         * 30 s CI run: fuzz/corpus-http/head-after-body) */
        head_ok = head_ok || (i + 5 <= size && memcmp(data + i, "HEAD ", 5) == 0);
    }
    while (off < got) {
        int st = 0;
        size_t len = answer_len(in + off, got - off, &st, head_ok);
        check(len > 0, "an answer cut off, or bytes that are not one");
        check(last < 400, "an answer after a refusal on the same connection");
        if (st != 100) {
            answers++;
            last = st;
        }
        off += len;
    }
    check((size_t)answers <= n_heads + 1, "more answers than requests");
    return answers;
}

#ifdef USHER_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    usher_fuzz_http_one(data, size);
    return 0;
}
#endif
