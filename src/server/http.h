/*
 * http.h - usher's HTTP/1.1 server (layer 8, prefix hs_): connections,
 * strict request framing, timeouts and connection caps, for the KServe v2
 * front end (server.c). It replaced libmicrohttpd (docs/serve.md, "The HTTP
 * layer", says why).
 *
 * The server hands the handler one whole request at a time (headers and the
 * decoded body), on the thread that owns its connection; the handler, or any
 * other thread later, answers it once with hs_respond. A request the HTTP
 * layer itself refuses (bad framing, a read timeout, over a limit) still
 * reaches the handler, with `status` set to the answer it must give, so that
 * every answer is built and counted in one place; such an answer always
 * closes the connection.
 */
#ifndef HS_HTTP_H
#define HS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define HS_TARGET_MAX 8192      /* bytes of a request target: over it, 414 */
#define HS_LINE_MAX 8192        /* bytes of a header line: over it, 431 */
#define HS_HEAD_MAX (32 * 1024) /* bytes of the request line and headers: over it, 431 */
#define HS_HEADERS_MAX 100      /* header fields: over it, 431 */
#define HS_CHUNKS_MAX 65536     /* non-empty chunks of one body (RELIABILITY.md INPUT-2) */

typedef struct hs_server hs_server;

typedef struct hs_header {
    const char *name, *value; /* NUL-terminated; value without surrounding whitespace */
} hs_header;

/* One request, valid from the handler's call until the end callback. */
typedef struct hs_req {
    unsigned status;      /* 0: a request to serve; else the HTTP layer refused it and this
                             is the status to answer (400, 408, 413, 414, 431), `error` why */
    char error[160];
    const char *method;   /* "" when the request line never arrived */
    const char *target;   /* as sent ("" when unknown) */
    const char *path;     /* the target's path, percent-decoded ("" when unknown or refused) */
    hs_header headers[HS_HEADERS_MAX];
    int n_headers;
    const uint8_t *body;  /* the decoded body (Content-Length or chunked) */
    size_t body_len;
    uint64_t t0_ns;       /* when the request's headers were complete (rt_now_ns) */
    void *user;           /* the handler's */
} hs_req;

/* a request to answer (see hs_req.status) */
typedef void (*hs_handler_fn)(hs_req *r, void *ctx);
/* the request is over (answered and sent, or its client gone): free r->user */
typedef void (*hs_end_fn)(hs_req *r, void *ctx);
/*
 * The client of a request the handler holds (handed over, not yet answered, or answered
 * and not yet sent) is gone: its connection was reset, or closed whole (told from a
 * half-close by an interim 100 answer: http.c's top comment). Called at most once per
 * request, on the loop's thread, after the handler returned and before `end`; r and
 * r->user are still valid, and the answer, when it comes, is dropped. Not called for a
 * client that only half-closed (it still reads its answer), nor for an HTTP/1.0 request
 * closed with FIN (no probe may be sent to it).
 */
typedef void (*hs_gone_fn)(hs_req *r, void *ctx);

typedef struct hs_params {
    const char *address;        /* IPv4, default "127.0.0.1" */
    int port;                   /* 0: any free port */
    int threads;                /* event loops; default 2 */
    int max_connections;        /* open connections at most; default 1024 */
    int max_client_connections; /* from one client address at most; default 256; 0: no cap */
    int header_timeout_ms;      /* a request's line and headers within this of its first
                                   byte, else 408; default 10000 */
    int body_timeout_ms;        /* its whole body within this of its headers, else 408;
                                   default 60000 */
    int idle_timeout_ms;        /* a connection with no request started is closed after this;
                                   default 10000 */
    uint64_t max_body;          /* body bytes at most (413); default 64 MiB */
    hs_handler_fn handler;
    hs_end_fn end;
    hs_gone_fn gone;            /* may be NULL: a gone client's answer is just dropped */
    void *ctx;
} hs_params;

typedef struct hs_stats {
    uint64_t accepted;          /* connections */
    uint64_t evicted;           /* closed to make room for a new one (caps) */
    uint64_t refused;           /* closed at once: at a cap with nothing idle to drop */
    uint64_t idle_closed;       /* closed after idle_timeout_ms without a request */
    int open;                   /* open now */
} hs_stats;

hs_params hs_default_params(void);
/* listen and start the loops; errors: the address, the port taken */
int hs_start(const hs_params *p, hs_server **out, usher_error *err);
int hs_port(const hs_server *s);
/* first value of a header (case-insensitive name), NULL if absent */
const char *hs_header_get(const hs_req *r, const char *name);
/*
 * Answer r, once, from any thread: status, content type (may be NULL),
 * extra header lines ("Name: value\r\n"... or NULL), the body as two parts
 * (copied), and whether to close the connection after it. After this call
 * r may be freed at any time: the caller must not touch it.
 */
void hs_respond(hs_req *r, unsigned status, const char *ctype, const char *extra,
                const void *a, size_t alen, const void *b, size_t blen, bool close);
/* stop accepting connections; those open are served on */
void hs_quiesce(hs_server *s);
void hs_get_stats(hs_server *s, hs_stats *out);
/* stop the loops and close every connection; requests not yet answered are left
 * allocated (their answer could still come) */
void hs_free(hs_server *s);

#endif
