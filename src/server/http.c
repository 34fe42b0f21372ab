/*
 * http.c - usher's HTTP/1.1 server (layer 8): event loops over epoll, one
 * request at a time per connection, strict framing, read timeouts and
 * connection caps. Why not libmicrohttpd (0.9.75, Debian 12): it could not
 * refuse a request carrying both Content-Length and Transfer-Encoding or an
 * unknown transfer coding before acting on them, had no deadline for a
 * header or a body (its timeout restarts with every byte, so a slowloris
 * stays forever), refused new connections at its cap instead of dropping
 * idle ones, and answered some errors with its own HTML (docs/serve.md, The
 * HTTP layer).
 *
 * The subset of RFC 9110/9112 spoken, and what is refused (400 unless said;
 * every refusal closes the connection after its answer):
 *   - request line: METHOD SP origin-form SP HTTP/1.1|HTTP/1.0 CRLF; a
 *     method of 1-16 token characters; a target of visible ASCII starting
 *     with '/', at most HS_TARGET_MAX bytes (else 414); up to 8 empty lines
 *     before it are skipped.
 *   - lines end with CRLF: a bare LF or CR, a NUL, a folded line, a field
 *     name with whitespace before its colon or outside token characters,
 *     a value with control characters other than HTAB: refused.
 *   - limits: a header line HS_LINE_MAX, the head HS_HEAD_MAX, HS_HEADERS_MAX
 *     fields (431); the body max_body (413: at once when Content-Length or a
 *     chunk size announces more, never read first); HS_CHUNKS_MAX chunks.
 *   - framing (RFC 9112 6.3): Content-Length is 1-19 digits and appears
 *     once; Transfer-Encoding is exactly "chunked", never beside a
 *     Content-Length, never in HTTP/1.0; a chunk size is 1-16 hex digits,
 *     its extensions are skipped, its data ends with CRLF; trailers are
 *     read and dropped. Neither header: no body. More than one Host: 400.
 *   - the path (the target before '?') is percent-decoded; a '%' not
 *     followed by two hex digits, or one that decodes to NUL, is refused.
 *   - Expect: 100-continue gets its interim answer before the body is read.
 *   - keep-alive by default in HTTP/1.1 (Connection: close ends it); HTTP/1.0
 *     closes after each answer. Pipelined requests are read one at a time:
 *     the next is parsed once the answer to the one before is sent.
 *
 * A client gone while the handler holds its request (docs/serve.md, Cancel on
 * disconnect): while a connection waits for its answer (WAIT), epoll watches
 * it for EPOLLRDHUP besides the hang-up and error it always reports - the
 * interest set changes where it changed before (0 became EPOLLRDHUP), so the
 * normal path makes no extra call. A reset (EPOLLHUP/EPOLLERR: the client's
 * kernel sent RST) is the client gone: the socket is closed and the `gone`
 * callback told (the front end cancels the request). A FIN alone is not: a
 * client may shut down its sending side and still read its answer (legal
 * HTTP/1.1), and a client that closed the socket whole sends the same FIN. So
 * an HTTP/1.1 request whose client sent FIN gets one probe, the interim answer
 * "HTTP/1.1 100 Continue" (RFC 9110 15.2: a client must accept 1xx answers it
 * did not ask for; never sent to HTTP/1.0, 15.2 forbids it): a client that
 * only half-closed reads it and then its answer, while one that closed the
 * socket makes its kernel answer the probe with RST, which ends in `gone` as
 * above. A probe the socket cannot take at once (the client does not read:
 * EAGAIN) is not sent, and one taken in part is finished before the answer.
 * Requests read one at a time means at most one request of a connection is
 * ever held by the handler; pipelined bytes behind it were never parsed and
 * go with the socket.
 *
 * Time limits, checked every 50 ms by each loop: the head must arrive within
 * header_timeout_ms of its first byte, the body within body_timeout_ms of the
 * head (both answered 408); a connection without a request started closes
 * after idle_timeout_ms, and so does one whose client does not read its
 * answer.
 *
 * Connection caps: each loop holds at most max_connections / threads
 * connections and max_client_connections / threads from one client address
 * (IPv4). A new connection over either cap closes the oldest *idle* one
 * (not waiting for the runtime, not being answered: a keep-alive
 * connection, or one still sending its request) of the loop, from that
 * address for the address cap; only when none is idle is the new one
 * closed. So slow clients cannot lock normal ones out: they are dropped
 * oldest first as new connections come. Out of file descriptors (EMFILE),
 * accepting does the same; with nothing idle, the loop stops accepting for
 * 100 ms. hs_start raises the soft RLIMIT_NOFILE toward the hard one to
 * hold max_connections.
 *
 * Threads: each loop owns its connections; the handler runs on it. An
 * answer given on another thread (a replica thread completing a batch) is
 * queued to the owning loop under its mutex and signalled by an eventfd.
 *
 *   conn: HEAD --head parsed--> BODY --body read--> WAIT --hs_respond--> WRITE
 *           ^                                                              |
 *           +------------------ sent, keep-alive ---------------------------+
 *         any --refused--> WAIT (status set) ... WRITE --sent--> LINGER --> closed
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"

#define IN_CAP_MAX (HS_HEAD_MAX + 4096) /* read buffer: the head, and some body bytes */
#define SWEEP_NS 50000000ull
#define LINGER_NS 1000000000ull        /* after a closing answer, unread input is drained */
#define CHUNK_LINE_MAX 1024

typedef enum cstate { C_HEAD, C_BODY, C_WAIT, C_WRITE, C_LINGER } cstate;
typedef enum ckstate { CK_SIZE, CK_DATA, CK_DATA_END, CK_TRAILER } ckstate;

typedef struct loop loop;
typedef struct conn conn;

struct conn {
    loop *lp;
    int fd;
    uint32_t addr;
    cstate st;
    conn *prev, *next;   /* the loop's list, oldest `since` first */
    conn *done_next;     /* on a list of answered connections */
    uint64_t since_ns;   /* accepted, or its last answer sent */
    uint64_t head_ns;    /* the current request's first byte (0: none yet) */
    uint64_t body_deadline_ns, linger_until_ns, io_ns;
    char *in;
    size_t in_len, in_cap;
    size_t scanned;      /* bytes of `in` checked for bare CR/LF and NUL */
    size_t head_len;     /* the parsed head's bytes in `in` */
    size_t pos;          /* body parsing position in `in` */
    bool chunked;
    uint64_t remaining;  /* Content-Length: body bytes left; chunked: of this chunk */
    ckstate ck;
    uint32_t n_chunks;
    size_t trailer_bytes;
    uint8_t *body;
    size_t body_len, body_cap;
    char *path;          /* decoded */
    bool keep_alive, is_head, dead, responded, close_after;
    bool http10;         /* the request line said HTTP/1.0: no interim answers */
    bool probed;         /* this request's client sent FIN: the 100 probe was tried */
    size_t probe_sent;   /* bytes of the probe sent (a part is finished before the answer) */
    char *out;
    size_t out_len, out_off;
    uint32_t events;     /* registered epoll interest */
    hs_req req;
};

struct loop {
    hs_server *s;
    int ep, efd;
    pthread_t th;
    bool started;
    conn *head, *tail;
    int n;
    pthread_mutex_t mu;
    conn *done;          /* answered on other threads (under mu) */
    conn *local;         /* answered on this loop's thread */
    conn *grave;         /* closed this turn, freed at its end */
    uint64_t last_sweep;
    uint64_t accept_paused_until; /* out of descriptors with none idle: accepting resumes then */
    unsigned fd_warned;
    char listen_tag, efd_tag;
};

struct hs_server {
    hs_params p;
    int lfd, port;
    loop *loops;
    int n_loops;
    int cap_total, cap_client; /* per loop */
    atomic_bool stop, quiesced;
    atomic_uint_fast64_t accepted, evicted, refused, idle_closed;
    atomic_int open;
};

static _Thread_local loop *tl_loop;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

hs_params hs_default_params(void)
{
    hs_params p;
    memset(&p, 0, sizeof p);
    p.address = "127.0.0.1";
    p.threads = 2;
    p.max_connections = 1024;
    p.max_client_connections = 256;
    p.header_timeout_ms = 10000;
    p.body_timeout_ms = 60000;
    p.idle_timeout_ms = 10000;
    p.max_body = 64u << 20;
    return p;
}

/* ---- the connection list ----------------------------------------------------------------- */
static void list_remove(loop *lp, conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        lp->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        lp->tail = c->prev;
    c->prev = c->next = NULL;
}

static void list_append(loop *lp, conn *c)
{
    c->prev = lp->tail;
    c->next = NULL;
    if (lp->tail)
        lp->tail->next = c;
    else
        lp->head = c;
    lp->tail = c;
}

static void set_events(conn *c, uint32_t ev)
{
    if (c->fd < 0 || c->events == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(c->lp->ep, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

static void request_reset(conn *c)
{
    us_free(c->body);
    us_free(c->path);
    us_free(c->out);
    c->body = NULL;
    c->path = NULL;
    c->out = NULL;
    c->body_len = c->body_cap = 0;
    c->out_len = c->out_off = 0;
    c->head_len = c->pos = 0;
    c->chunked = false;
    c->remaining = 0;
    c->ck = CK_SIZE;
    c->n_chunks = 0;
    c->trailer_bytes = 0;
    c->responded = c->close_after = c->is_head = c->http10 = c->probed = false;
    c->probe_sent = 0;
    c->keep_alive = true;
    memset(&c->req, 0, sizeof c->req);
    c->req.method = c->req.target = c->req.path = "";
}

/* close and free: only a connection the handler no longer holds */
static void conn_free(conn *c)
{
    loop *lp = c->lp;
    if (c->fd >= 0) {
        epoll_ctl(lp->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        atomic_fetch_sub(&lp->s->open, 1);
    }
    if (c->prev || c->next || lp->head == c) {
        list_remove(lp, c);
        lp->n--;
    }
    request_reset(c);
    us_free(c->in);
    c->in = NULL;
    /* freed after this turn of the loop: an event of this turn may still name it */
    c->done_next = lp->grave;
    lp->grave = c;
}

static void grave_free(loop *lp)
{
    while (lp->grave) {
        conn *c = lp->grave;
        lp->grave = c->done_next;
        us_free(c);
    }
}

/* the client went while the handler holds the request: close the socket, keep the
 * struct until the answer comes */
static void conn_orphan(conn *c)
{
    loop *lp = c->lp;
    if (c->fd >= 0) {
        epoll_ctl(lp->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        atomic_fetch_sub(&lp->s->open, 1);
    }
    list_remove(lp, c);
    lp->n--;
    c->dead = true;
}

/* the client of a request the handler holds is gone (reset, or closed after the probe):
 * the socket closes, the struct stays until the answer comes, the front end is told */
static void client_gone(conn *c)
{
    hs_server *s = c->lp->s;
    conn_orphan(c);
    if (s->p.gone)
        s->p.gone(&c->req, s->p.ctx);
}

/* the interim answer that tells a half-closed client (reads it) from a closed one (its
 * kernel resets the connection) */
static const char probe_msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
#define PROBE_LEN (sizeof probe_msg - 1)

/* a FIN from the client of a request the handler holds (EPOLLRDHUP in WAIT) */
static void client_fin(conn *c)
{
    set_events(c, 0); /* level-triggered: it would be reported at every turn */
    if (c->probed || c->http10)
        return; /* HTTP/1.0: no interim answer may be sent; the answer goes as before */
    c->probed = true;
    ssize_t w = send(c->fd, probe_msg, PROBE_LEN, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
        c->probe_sent = (size_t)w; /* a closed client answers it with RST: EPOLLHUP/ERR */
        return;
    }
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return; /* the client does not read (its window is full): no probe */
    client_gone(c); /* EPIPE, ECONNRESET: already reset */
}

/* ---- answering ----------------------------------------------------------------------------- */
static void dispatch(conn *c)
{
    c->st = C_WAIT;
    /* a FIN is watched only where a probe may follow (not on a refusal, answered now) */
    set_events(c, c->http10 || c->close_after ? 0 : EPOLLRDHUP);
    c->lp->s->p.handler(&c->req, c->lp->s->p.ctx);
}

/* the HTTP layer answers this request itself, through the handler */
static void refuse(conn *c, unsigned status, const char *msg)
{
    c->req.status = status;
    snprintf(c->req.error, sizeof c->req.error, "%s", msg);
    c->close_after = true;
    c->keep_alive = false;
    if (!c->req.t0_ns)
        c->req.t0_ns = now_ns();
    dispatch(c);
}

static const char *reason(unsigned st)
{
    switch (st) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request"; /* never sent: its client is gone */
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

void hs_respond(hs_req *r, unsigned status, const char *ctype, const char *extra,
                const void *a, size_t alen, const void *b, size_t blen, bool close)
{
    conn *c = (conn *)((char *)r - offsetof(conn, req));
    if (close || !c->keep_alive || atomic_load(&c->lp->s->stop))
        c->close_after = true;
    char head[1024];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %u %s\r\nContent-Length: %zu\r\n%s%s%s%s%s\r\n", status,
                      reason(status), alen + blen, ctype ? "Content-Type: " : "",
                      ctype ? ctype : "", ctype ? "\r\n" : "", extra ? extra : "",
                      c->close_after ? "Connection: close\r\n" : "");
    if (hl < 0 || (size_t)hl >= sizeof head)
        hl = snprintf(head, sizeof head, "HTTP/1.1 500 Internal Server Error\r\n"
                                         "Content-Length: 0\r\nConnection: close\r\n\r\n");
    size_t body = c->is_head ? 0 : alen + blen;
    c->out = us_malloc((size_t)hl + body + 1);
    if (c->out) {
        memcpy(c->out, head, (size_t)hl);
        if (body && alen)
            memcpy(c->out + hl, a, alen);
        if (body && blen)
            memcpy(c->out + hl + alen, b, blen);
        c->out_len = (size_t)hl + body;
    } else {
        c->out_len = 0; /* out of memory: the connection closes unanswered */
        c->close_after = true;
    }
    c->out_off = 0;
    loop *lp = c->lp;
    if (tl_loop == lp) {
        c->responded = true;
        c->done_next = lp->local;
        lp->local = c;
        return;
    }
    pthread_mutex_lock(&lp->mu);
    c->responded = true;
    c->done_next = lp->done;
    lp->done = c;
    pthread_mutex_unlock(&lp->mu);
    uint64_t one = 1;
    ssize_t w = write(lp->efd, &one, sizeof one);
    (void)w;
}

static void on_input(conn *c);

/* the answer is out: end the request, then keep the connection or close it */
static void request_done(conn *c)
{
    loop *lp = c->lp;
    lp->s->p.end(&c->req, lp->s->p.ctx);
    if (c->close_after) {
        shutdown(c->fd, SHUT_WR);
        request_reset(c);
        c->st = C_LINGER;
        c->in_len = c->scanned = 0;
        c->linger_until_ns = now_ns() + LINGER_NS;
        set_events(c, EPOLLIN);
        return;
    }
    /* the bytes after this request (pipelined) move to the front */
    size_t used = c->pos;
    if (used > c->in_len)
        used = c->in_len;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    request_reset(c);
    c->scanned = 0;
    c->st = C_HEAD;
    c->since_ns = now_ns();
    c->head_ns = c->in_len ? c->since_ns : 0;
    list_remove(lp, c);
    list_append(lp, c);
    set_events(c, EPOLLIN);
    if (c->in_len)
        on_input(c);
}

/* send buf[*off..len): 1 all sent, 0 the socket is full (EPOLLOUT asked), -1 the client went */
static int send_rest(conn *c, const char *buf, size_t len, size_t *off)
{
    while (*off < len) {
        ssize_t w = send(c->fd, buf + *off, len - *off, MSG_NOSIGNAL);
        if (w > 0) {
            *off += (size_t)w;
            c->io_ns = now_ns();
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(c, EPOLLOUT);
            return 0;
        }
        return -1;
    }
    return 1;
}

static void write_out(conn *c)
{
    int rc = 1;
    if (c->probe_sent) /* a probe sent in part is finished first */
        rc = send_rest(c, probe_msg, PROBE_LEN, &c->probe_sent);
    if (rc > 0)
        rc = send_rest(c, c->out, c->out_len, &c->out_off);
    if (rc == 0)
        return;
    if (rc > 0 && (c->out_len || !c->close_after)) {
        request_done(c);
        return;
    }
    /* the client went, or no answer could be built (out of memory): close */
    c->lp->s->p.end(&c->req, c->lp->s->p.ctx);
    conn_free(c);
}

/* an answered connection, on its loop's thread */
static void answered(conn *c)
{
    if (c->dead) {
        c->lp->s->p.end(&c->req, c->lp->s->p.ctx);
        conn_free(c);
        return;
    }
    c->st = C_WRITE;
    c->io_ns = now_ns();
    write_out(c);
}

static void run_local(loop *lp)
{
    while (lp->local) {
        conn *c = lp->local;
        lp->local = c->done_next;
        answered(c);
    }
}

/* ---- parsing --------------------------------------------------------------------------------- */
static bool tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

const char *hs_header_get(const hs_req *r, const char *name)
{
    for (int i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* does the comma-separated list v hold token t (case-insensitive)? */
static bool list_has(const char *v, const char *t)
{
    size_t tl = strlen(t);
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        const char *e = v;
        while (*e && *e != ',')
            e++;
        const char *te = e;
        while (te > v && (te[-1] == ' ' || te[-1] == '\t'))
            te--;
        if ((size_t)(te - v) == tl && strncasecmp(v, t, tl) == 0)
            return true;
        v = e;
    }
    return false;
}

/* the head is in[0..end) ending with CRLF CRLF; 0 or refused */
static int parse_head(conn *c, size_t end)
{
    hs_server *s = c->lp->s;
    char *p = c->in;
    char *line_end = strstr(p, "\r\n"); /* the head is NUL-free and NUL-terminated below */
    *line_end = 0;
    /* request line */
    char *sp1 = strchr(p, ' ');
    if (!sp1 || sp1 == p || sp1 - p > 16) {
        refuse(c, 400, "malformed request line");
        return -1;
    }
    for (char *m = p; m < sp1; m++)
        if (!tchar((unsigned char)*m)) {
            refuse(c, 400, "malformed request line: the method");
            return -1;
        }
    *sp1 = 0;
    char *target = sp1 + 1;
    char *sp2 = strchr(target, ' ');
    if (!sp2) {
        refuse(c, 400, "malformed request line");
        return -1;
    }
    *sp2 = 0;
    const char *ver = sp2 + 1;
    bool http10 = strcmp(ver, "HTTP/1.0") == 0;
    c->http10 = http10;
    if (!http10 && strcmp(ver, "HTTP/1.1") != 0) {
        refuse(c, 400, "malformed request line: HTTP/1.1 or HTTP/1.0 expected");
        return -1;
    }
    size_t tlen = (size_t)(sp2 - target);
    if (tlen > HS_TARGET_MAX) {
        refuse(c, 414, "request target over 8 KiB");
        return -1;
    }
    c->req.method = p;
    c->req.target = target;
    c->is_head = strcmp(p, "HEAD") == 0;
    if (tlen == 0 || target[0] != '/') {
        refuse(c, 400, "the request target must be a path starting with '/'");
        return -1;
    }
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] >= 0x7f) {
            refuse(c, 400, "the request target has a byte that is not visible ASCII");
            return -1;
        }
    /* the path, percent-decoded (first: a refusal below still names its route) */
    const char *qm = memchr(target, '?', tlen);
    size_t plen = qm ? (size_t)(qm - target) : tlen;
    c->path = us_malloc(plen + 1);
    if (!c->path) {
        refuse(c, 503, "out of memory");
        return -1;
    }
    size_t o = 0;
    for (size_t i = 0; i < plen; i++) {
        if (target[i] != '%') {
            c->path[o++] = target[i];
            continue;
        }
        if (i + 2 >= plen) {
            refuse(c, 400, "invalid percent-encoding in the path ('%' without two hex "
                           "digits)");
            return -1;
        }
        int h1 = hexval((unsigned char)target[i + 1]), h2 = hexval((unsigned char)target[i + 2]);
        if (h1 < 0 || h2 < 0) {
            refuse(c, 400, "invalid percent-encoding in the path ('%' without two hex "
                           "digits)");
            return -1;
        }
        int ch = h1 * 16 + h2;
        if (ch == 0) {
            refuse(c, 400, "a NUL byte (%00) in the path");
            return -1;
        }
        c->path[o++] = (char)ch;
        i += 2;
    }
    c->path[o] = 0;
    c->req.path = c->path;
    /* headers */
    int n_cl = 0, n_te = 0, n_host = 0;
    const char *cl = NULL;
    char *q = line_end + 2;
    char *stop = c->in + end - 2; /* the final empty line */
    while (q < stop) {
        char *e = strstr(q, "\r\n");
        *e = 0;
        if ((size_t)(e - q) > HS_LINE_MAX) {
            refuse(c, 431, "a header line over 8 KiB");
            return -1;
        }
        if (*q == ' ' || *q == '\t') {
            refuse(c, 400, "a folded header line (obsolete line folding)");
            return -1;
        }
        char *colon = q;
        while (colon < e && tchar((unsigned char)*colon))
            colon++;
        if (colon == q || colon == e || *colon != ':') {
            refuse(c, 400, colon < e && (*colon == ' ' || *colon == '\t')
                               ? "whitespace between a header field's name and its colon"
                               : "a malformed header field name");
            return -1;
        }
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        char *ve = e;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        *ve = 0;
        for (char *k = v; k < ve; k++)
            if (((unsigned char)*k < 0x20 && *k != '\t') || (unsigned char)*k == 0x7f) {
                char m[120];
                snprintf(m, sizeof m, "a control character in header field '%.60s'", q);
                refuse(c, 400, m);
                return -1;
            }
        if (c->req.n_headers == HS_HEADERS_MAX) {
            refuse(c, 431, "more than 100 header fields");
            return -1;
        }
        c->req.headers[c->req.n_headers].name = q;
        c->req.headers[c->req.n_headers].value = v;
        c->req.n_headers++;
        if (strcasecmp(q, "Content-Length") == 0) {
            n_cl++;
            cl = v;
        } else if (strcasecmp(q, "Transfer-Encoding") == 0) {
            n_te++;
        } else if (strcasecmp(q, "Host") == 0) {
            n_host++;
        }
        q = e + 2;
    }
    c->head_len = end;
    c->pos = end;
    if (n_host > 1) {
        refuse(c, 400, "more than one Host header");
        return -1;
    }
    /* framing: RFC 9112 6.3 */
    if (n_te && n_cl) {
        refuse(c, 400, "both Transfer-Encoding and Content-Length: the body's length is "
                       "ambiguous");
        return -1;
    }
    if (n_cl > 1) {
        refuse(c, 400, "more than one Content-Length");
        return -1;
    }
    if (n_te) {
        if (http10) {
            refuse(c, 400, "Transfer-Encoding in an HTTP/1.0 request");
            return -1;
        }
        if (n_te > 1 || strcasecmp(hs_header_get(&c->req, "Transfer-Encoding"), "chunked") != 0) {
            refuse(c, 400, "unsupported Transfer-Encoding: only 'chunked' alone is accepted");
            return -1;
        }
        c->chunked = true;
    } else if (n_cl) {
        size_t l = strlen(cl);
        uint64_t v = 0;
        bool ok = l >= 1 && l <= 19;
        for (size_t i = 0; ok && i < l; i++) {
            ok = cl[i] >= '0' && cl[i] <= '9';
            v = v * 10 + (uint64_t)(cl[i] - '0');
        }
        if (!ok) {
            refuse(c, 400, "Content-Length: an integer of 1 to 19 digits");
            return -1;
        }
        if (v > s->p.max_body) {
            refuse(c, 413, "request body over the limit");
            return -1;
        }
        c->remaining = v;
    }
    const char *conn_h = hs_header_get(&c->req, "Connection");
    c->keep_alive = !http10 && !(conn_h && list_has(conn_h, "close"));
    c->req.t0_ns = now_ns();
    return 0;
}

/* make room for n more body bytes (doubling, never past the limit) */
static bool body_room(conn *c, size_t n)
{
    size_t need = c->body_len + n;
    if (need <= c->body_cap)
        return true;
    size_t cap = c->body_cap ? c->body_cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > c->lp->s->p.max_body)
        cap = (size_t)c->lp->s->p.max_body;
    if (cap < need)
        return false;
    uint8_t *b = us_realloc(c->body, cap ? cap : 1);
    if (!b)
        return false;
    c->body = b;
    c->body_cap = cap;
    return true;
}

static void body_complete(conn *c)
{
    c->req.body = c->body;
    c->req.body_len = c->body_len;
    dispatch(c);
}

/* body bytes in in[pos..in_len): consume them; 1 when the body is complete, 0 for more,
 * -1 refused */
static int parse_body(conn *c)
{
    hs_server *s = c->lp->s;
    if (!c->chunked) {
        size_t avail = c->in_len - c->pos;
        size_t take = avail < c->remaining ? avail : (size_t)c->remaining;
        if (take) {
            if (!body_room(c, take)) {
                refuse(c, 503, "out of memory");
                return -1;
            }
            memcpy(c->body + c->body_len, c->in + c->pos, take);
            c->body_len += take;
            c->pos += take;
            c->remaining -= take;
        }
        return c->remaining == 0;
    }
    for (;;) {
        char *b = c->in + c->pos;
        size_t avail = c->in_len - c->pos;
        switch (c->ck) {
        case CK_SIZE: {
            char *nl = memchr(b, '\n', avail);
            if (!nl) {
                if (avail > CHUNK_LINE_MAX) {
                    refuse(c, 400, "a chunk-size line over 1 KiB");
                    return -1;
                }
                /* a size already over 16 hex digits need not wait for its line's end */
                size_t d = 0;
                while (d < avail && hexval((unsigned char)b[d]) >= 0)
                    d++;
                if (d > 16) {
                    refuse(c, 400, "a chunk size over 16 hex digits");
                    return -1;
                }
                uint64_t v = 0;
                for (size_t i = 0; i < d; i++)
                    v = v * 16 + (uint64_t)hexval((unsigned char)b[i]);
                if (d && v > s->p.max_body - c->body_len) {
                    refuse(c, 413, "request body over the limit (a chunk size says so)");
                    return -1;
                }
                return 0;
            }
            size_t ll = (size_t)(nl - b) + 1;
            if (ll < 3 || nl[-1] != '\r') {
                refuse(c, 400, "malformed chunk-size line");
                return -1;
            }
            size_t d = 0;
            uint64_t v = 0;
            while (d < ll - 2 && hexval((unsigned char)b[d]) >= 0) {
                if (d == 16) {
                    refuse(c, 400, "a chunk size over 16 hex digits");
                    return -1;
                }
                v = v * 16 + (uint64_t)hexval((unsigned char)b[d]);
                d++;
            }
            if (d == 0) {
                refuse(c, 400, "malformed chunk size");
                return -1;
            }
            /* chunk extensions: BWS ';' ..., skipped; nothing else */
            size_t k = d;
            while (k < ll - 2 && (b[k] == ' ' || b[k] == '\t'))
                k++;
            if (k < ll - 2 && b[k] != ';') {
                refuse(c, 400, "malformed chunk size");
                return -1;
            }
            for (; k < ll - 2; k++)
                if (((unsigned char)b[k] < 0x20 && b[k] != '\t') || b[k] == 0x7f) {
                    refuse(c, 400, "a control character in a chunk extension");
                    return -1;
                }
            if (v > s->p.max_body - c->body_len) {
                refuse(c, 413, "request body over the limit (a chunk size says so)");
                return -1;
            }
            c->pos += ll;
            if (v == 0) {
                c->ck = CK_TRAILER;
            } else {
                if (++c->n_chunks > HS_CHUNKS_MAX) {
                    refuse(c, 400, "more than 65536 chunks in one body");
                    return -1;
                }
                c->remaining = v;
                c->ck = CK_DATA;
            }
            break;
        }
        case CK_DATA: {
            size_t take = avail < c->remaining ? avail : (size_t)c->remaining;
            if (!take)
                return 0;
            if (!body_room(c, take)) {
                refuse(c, 503, "out of memory");
                return -1;
            }
            memcpy(c->body + c->body_len, b, take);
            c->body_len += take;
            c->pos += take;
            c->remaining -= take;
            if (c->remaining == 0)
                c->ck = CK_DATA_END;
            break;
        }
        case CK_DATA_END:
            if (avail < 2)
                return 0;
            if (b[0] != '\r' || b[1] != '\n') {
                refuse(c, 400, "a chunk's data does not end with CRLF");
                return -1;
            }
            c->pos += 2;
            c->ck = CK_SIZE;
            break;
        case CK_TRAILER: {
            char *nl = memchr(b, '\n', avail);
            if (!nl) {
                if (avail > HS_LINE_MAX || c->trailer_bytes + avail > HS_HEAD_MAX) {
                    refuse(c, 431, "trailer fields over the limit");
                    return -1;
                }
                return 0;
            }
            size_t ll = (size_t)(nl - b) + 1;
            if (ll < 2 || nl[-1] != '\r') {
                refuse(c, 400, "malformed trailer line");
                return -1;
            }
            c->trailer_bytes += ll;
            if (c->trailer_bytes > HS_HEAD_MAX) {
                refuse(c, 431, "trailer fields over the limit");
                return -1;
            }
            c->pos += ll;
            if (ll == 2)
                return 1; /* the empty line: the body is complete */
            break;
        }
        }
    }
}

/* what the bytes in `in` allow now */
static void on_input(conn *c)
{
    if (c->st == C_HEAD) {
        /* empty lines before a request line are skipped (RFC 9112 2.2), a few at most */
        while (c->in_len >= 2 && c->in[0] == '\r' && c->in[1] == '\n') {
            if (++c->n_chunks > 8) { /* n_chunks counts them until the body starts */
                refuse(c, 400, "too many empty lines before the request line");
                return;
            }
            memmove(c->in, c->in + 2, c->in_len - 2);
            c->in_len -= 2;
            c->scanned = c->scanned >= 2 ? c->scanned - 2 : 0;
        }
        /* the head's end; bare CR or LF, or NUL, in it: refused at once */
        size_t i = c->scanned, hend = 0;
        for (; i < c->in_len; i++) {
            char ch = c->in[i];
            if (ch == 0) {
                refuse(c, 400, "a NUL byte in the request head");
                return;
            }
            if (ch == '\n') {
                if (i == 0 || c->in[i - 1] != '\r') {
                    refuse(c, 400, "a bare LF in the request head (lines end with CRLF)");
                    return;
                }
                if (i >= 3 && c->in[i - 2] == '\n') {
                    hend = i + 1;
                    break;
                }
            } else if (i > 0 && c->in[i - 1] == '\r') {
                refuse(c, 400, "a bare CR in the request head");
                return;
            }
        }
        c->scanned = i;
        if (!hend) {
            if (!memchr(c->in, '\n', c->in_len) && c->in_len > HS_TARGET_MAX + 64)
                refuse(c, 414, "request target over 8 KiB");
            else if (c->in_len >= HS_HEAD_MAX)
                refuse(c, 431, "request head over 32 KiB");
            return;
        }
        if (hend > HS_HEAD_MAX) {
            refuse(c, 431, "request head over 32 KiB");
            return;
        }
        c->n_chunks = 0;
        c->in[hend - 1] = 0; /* the strstr calls of parse_head stop here */
        if (parse_head(c, hend) < 0)
            return;
        c->st = C_BODY;
        c->body_deadline_ns = c->req.t0_ns + (uint64_t)c->lp->s->p.body_timeout_ms * 1000000ull;
        bool has_body = c->chunked || c->remaining > 0;
        const char *ex = hs_header_get(&c->req, "Expect");
        if (has_body && ex && strcasecmp(ex, "100-continue") == 0 && c->in_len == c->pos) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            ssize_t w = send(c->fd, cont, sizeof cont - 1, MSG_NOSIGNAL);
            (void)w;
        }
    }
    if (c->st == C_BODY) {
        int rc = parse_body(c);
        if (rc < 0)
            return;
        /* consumed body bytes leave the buffer (the head stays: the request points at it) */
        if (c->pos > c->head_len) {
            memmove(c->in + c->head_len, c->in + c->pos, c->in_len - c->pos);
            c->in_len -= c->pos - c->head_len;
            c->pos = c->head_len;
        }
        if (rc == 1)
            body_complete(c);
    }
}

static void on_readable(conn *c)
{
    for (int rounds = 0; rounds < 16; rounds++) {
        if (c->st == C_LINGER) {
            char junk[16384];
            ssize_t r = recv(c->fd, junk, sizeof junk, 0);
            if (r > 0)
                continue;
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            conn_free(c);
            return;
        }
        if (c->st != C_HEAD && c->st != C_BODY)
            return;
        if (c->st == C_BODY && !c->chunked && c->pos == c->in_len && c->remaining) {
            /* a Content-Length body with nothing buffered: straight into the body */
            size_t want = c->remaining < (1u << 20) ? (size_t)c->remaining : (1u << 20);
            if (c->body_cap - c->body_len < want && !body_room(c, want)) {
                refuse(c, 503, "out of memory");
                return;
            }
            size_t room = c->body_cap - c->body_len;
            if (room > c->remaining)
                room = (size_t)c->remaining;
            ssize_t r = recv(c->fd, c->body + c->body_len, room, 0);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                conn_free(c);
                return;
            }
            if (r < 0)
                return;
            c->body_len += (size_t)r;
            c->remaining -= (uint64_t)r;
            c->io_ns = now_ns();
            if (!c->remaining)
                body_complete(c);
            continue;
        }
        if (c->in_len == c->in_cap) {
            if (c->in_cap >= IN_CAP_MAX) {
                /* the head and what of the body cannot be consumed yet fill the buffer */
                refuse(c, 431, "request head and trailer lines over the limit");
                return;
            }
            size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
            if (cap > IN_CAP_MAX)
                cap = IN_CAP_MAX;
            char *nb = us_realloc(c->in, cap + 1);
            if (!nb) {
                conn_free(c);
                return;
            }
            c->in = nb;
            c->in_cap = cap;
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            conn_free(c); /* the client went before its request was complete */
            return;
        }
        if (r < 0)
            return;
        if (c->st == C_HEAD && c->in_len == 0)
            c->head_ns = now_ns();
        c->in_len += (size_t)r;
        c->io_ns = now_ns();
        on_input(c);
        if ((size_t)r < 4096)
            return; /* likely drained; level-triggered epoll says if not */
    }
}

/* ---- accepting ---------------------------------------------------------------------------------- */
static bool idle(const conn *c)
{
    return c->st == C_HEAD || c->st == C_BODY || c->st == C_LINGER;
}

static void evict(conn *c)
{
    atomic_fetch_add(&c->lp->s->evicted, 1);
    conn_free(c);
}

static void on_accept(loop *lp)
{
    hs_server *s = lp->s;
    for (int k = 0; k < 64 && !atomic_load(&s->quiesced); k++) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(s->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
            /* out of descriptors: the oldest idle connection makes room; with none, this
             * loop stops accepting for 100 ms (the listening socket would wake it at once,
             * again and again) */
            conn *oldest = lp->head;
            while (oldest && !idle(oldest))
                oldest = oldest->next;
            if (oldest) {
                evict(oldest);
                continue;
            }
            epoll_ctl(lp->ep, EPOLL_CTL_DEL, s->lfd, NULL);
            lp->accept_paused_until = now_ns() + 100000000ull;
            if (!lp->fd_warned++) /* once per loop: it may happen every 100 ms */
                US_LOGW("HTTP: out of file descriptors with no idle connection to close; "
                        "accepting again in 100 ms (raise ulimit -n)");
            return;
        }
        if (fd < 0)
            return;
        atomic_fetch_add(&s->accepted, 1);
        uint32_t addr = sa.sin_family == AF_INET ? sa.sin_addr.s_addr : 0;
        /* caps: the oldest idle connection goes (from this address, for the address cap) */
        if (s->cap_client > 0) {
            int same = 0;
            conn *oldest = NULL;
            for (conn *c = lp->head; c; c = c->next)
                if (c->addr == addr) {
                    same++;
                    if (!oldest && idle(c))
                        oldest = c;
                }
            if (same >= s->cap_client) {
                if (!oldest) {
                    atomic_fetch_add(&s->refused, 1);
                    close(fd);
                    continue;
                }
                evict(oldest);
            }
        }
        if (lp->n >= s->cap_total) {
            conn *oldest = lp->head;
            while (oldest && !idle(oldest))
                oldest = oldest->next;
            if (!oldest) {
                atomic_fetch_add(&s->refused, 1);
                close(fd);
                continue;
            }
            evict(oldest);
        }
        conn *c = us_calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->lp = lp;
        c->fd = fd;
        c->addr = addr;
        c->st = C_HEAD;
        c->since_ns = c->io_ns = now_ns();
        request_reset(c);
        c->events = EPOLLIN;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(lp->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
            close(fd);
            us_free(c);
            continue;
        }
        atomic_fetch_add(&s->open, 1);
        list_append(lp, c);
        lp->n++;
    }
}

/* ---- timers ------------------------------------------------------------------------------------- */
static void sweep(loop *lp, uint64_t now)
{
    hs_server *s = lp->s;
    uint64_t idle_ns = (uint64_t)s->p.idle_timeout_ms * 1000000ull;
    uint64_t head_ns = (uint64_t)s->p.header_timeout_ms * 1000000ull;
    conn *next;
    for (conn *c = lp->head; c; c = next) {
        next = c->next;
        switch (c->st) {
        case C_HEAD:
            if (c->in_len == 0 && now - c->since_ns >= idle_ns) {
                atomic_fetch_add(&s->idle_closed, 1);
                conn_free(c);
            } else if (c->in_len && now - c->head_ns >= head_ns) {
                char m[80];
                snprintf(m, sizeof m, "the request's headers did not arrive within %d ms",
                         s->p.header_timeout_ms);
                refuse(c, 408, m);
            }
            break;
        case C_BODY:
            if (now >= c->body_deadline_ns) {
                char m[80];
                snprintf(m, sizeof m, "the request's body did not arrive within %d ms",
                         s->p.body_timeout_ms);
                refuse(c, 408, m);
            }
            break;
        case C_WRITE:
            if (now - c->io_ns >= idle_ns) { /* the client does not read its answer */
                s->p.end(&c->req, s->p.ctx);
                conn_free(c);
            }
            break;
        case C_LINGER:
            if (now >= c->linger_until_ns)
                conn_free(c);
            break;
        default:
            break;
        }
        run_local(lp); /* a refusal is answered at once */
    }
}

static void *loop_main(void *arg)
{
    loop *lp = arg;
    hs_server *s = lp->s;
    tl_loop = lp;
    struct epoll_event ev[64];
    while (!atomic_load(&s->stop)) {
        int n = epoll_wait(lp->ep, ev, 64, 50);
        for (int i = 0; i < n; i++) {
            void *ptr = ev[i].data.ptr;
            if (ptr == &lp->listen_tag) {
                on_accept(lp);
            } else if (ptr == &lp->efd_tag) {
                uint64_t v;
                ssize_t r = read(lp->efd, &v, sizeof v);
                (void)r;
                pthread_mutex_lock(&lp->mu);
                conn *d = lp->done;
                lp->done = NULL;
                pthread_mutex_unlock(&lp->mu);
                while (d) {
                    conn *nx = d->done_next;
                    answered(d);
                    d = nx;
                }
            } else {
                conn *c = ptr;
                if (c->fd < 0)
                    continue;
                if (c->st == C_WAIT) {
                    if (ev[i].events & (EPOLLHUP | EPOLLERR))
                        client_gone(c);
                    else if (ev[i].events & EPOLLRDHUP)
                        client_fin(c);
                } else if (c->st == C_WRITE) {
                    if (ev[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                        write_out(c);
                } else {
                    on_readable(c);
                }
            }
            run_local(lp);
        }
        uint64_t now = now_ns();
        if (now - lp->last_sweep >= SWEEP_NS) {
            lp->last_sweep = now;
            sweep(lp, now);
            if (lp->accept_paused_until && now >= lp->accept_paused_until &&
                !atomic_load(&s->quiesced)) {
                struct epoll_event e = {.events = EPOLLIN | EPOLLEXCLUSIVE,
                                        .data.ptr = &lp->listen_tag};
                epoll_ctl(lp->ep, EPOLL_CTL_ADD, s->lfd, &e);
                lp->accept_paused_until = 0;
            }
        }
        grave_free(lp);
    }
    return NULL;
}

/* ---- start and stop ----------------------------------------------------------------------------- */
int hs_start(const hs_params *p, hs_server **out, usher_error *err)
{
    *out = NULL;
    hs_server *s = us_calloc(1, sizeof *s);
    if (!s)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    s->p = *p;
    hs_params d = hs_default_params();
    if (s->p.threads <= 0)
        s->p.threads = d.threads;
    if (s->p.max_connections <= 0)
        s->p.max_connections = d.max_connections;
    if (s->p.max_client_connections < 0)
        s->p.max_client_connections = d.max_client_connections;
    if (s->p.header_timeout_ms <= 0)
        s->p.header_timeout_ms = d.header_timeout_ms;
    if (s->p.body_timeout_ms <= 0)
        s->p.body_timeout_ms = d.body_timeout_ms;
    if (s->p.idle_timeout_ms <= 0)
        s->p.idle_timeout_ms = d.idle_timeout_ms;
    if (!s->p.max_body)
        s->p.max_body = d.max_body;
    /* room for the connections (and the workers' sockets beside them): the soft limit on
     * descriptors is raised toward the hard one when it is below that */
    struct rlimit rl;
    rlim_t want = (rlim_t)s->p.max_connections + 512;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
            US_LOGW("HTTP: %d connections asked for, but descriptors are limited to %llu "
                    "(ulimit -n); past it the oldest idle connection is closed",
                    s->p.max_connections, (unsigned long long)rl.rlim_cur);
    }
    int t = s->p.threads;
    s->cap_total = (s->p.max_connections + t - 1) / t;
    s->cap_client = s->p.max_client_connections > 0 ? (s->p.max_client_connections + t - 1) / t : 0;
    s->lfd = -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)s->p.port);
    const char *addr = s->p.address ? s->p.address : "127.0.0.1";
    int rc = USHER_OK;
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        rc = us_err_set(err, USHER_ERR_INVALID, "http address '%s': an IPv4 address expected",
                        addr);
        goto fail;
    }
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (s->lfd >= 0)
        setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(s->lfd, 4096) < 0) {
        rc = us_err_set(err, USHER_ERR_IO, "cannot listen on %s:%d (%s)", addr, s->p.port,
                        strerror(errno));
        goto fail;
    }
    socklen_t sl = sizeof sa;
    getsockname(s->lfd, (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.sin_port);
    s->loops = us_calloc((size_t)t, sizeof *s->loops);
    if (!s->loops) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < t; i++) {
        loop *lp = &s->loops[i];
        lp->s = s;
        pthread_mutex_init(&lp->mu, NULL);
        lp->ep = epoll_create1(EPOLL_CLOEXEC);
        lp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        s->n_loops = i + 1;
        struct epoll_event e1 = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &lp->listen_tag};
        struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = &lp->efd_tag};
        if (lp->ep < 0 || lp->efd < 0 || epoll_ctl(lp->ep, EPOLL_CTL_ADD, s->lfd, &e1) < 0 ||
            epoll_ctl(lp->ep, EPOLL_CTL_ADD, lp->efd, &e2) < 0) {
            rc = us_err_set(err, USHER_ERR_IO, "epoll: %s", strerror(errno));
            goto fail;
        }
    }
    for (int i = 0; i < t; i++) {
        if (pthread_create(&s->loops[i].th, NULL, loop_main, &s->loops[i]) != 0) {
            rc = us_err_set(err, USHER_ERR_IO, "cannot start the HTTP threads");
            goto fail;
        }
        s->loops[i].started = true;
    }
    *out = s;
    return USHER_OK;
fail:
    hs_free(s);
    return rc;
}

int hs_port(const hs_server *s) { return s->port; }

void hs_quiesce(hs_server *s)
{
    if (!s || atomic_exchange(&s->quiesced, true))
        return;
    for (int i = 0; i < s->n_loops; i++)
        epoll_ctl(s->loops[i].ep, EPOLL_CTL_DEL, s->lfd, NULL);
    /* connections not yet accepted are reset; the descriptor stays until hs_free, so
     * no loop can race a reuse of its number */
    shutdown(s->lfd, SHUT_RDWR);
}

void hs_get_stats(hs_server *s, hs_stats *out)
{
    out->accepted = atomic_load(&s->accepted);
    out->evicted = atomic_load(&s->evicted);
    out->refused = atomic_load(&s->refused);
    out->idle_closed = atomic_load(&s->idle_closed);
    out->open = atomic_load(&s->open);
}

void hs_free(hs_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    for (int i = 0; i < s->n_loops; i++) {
        loop *lp = &s->loops[i];
        if (lp->started)
            pthread_join(lp->th, NULL);
    }
    int leaked = 0;
    for (int i = 0; i < s->n_loops; i++) {
        loop *lp = &s->loops[i];
        tl_loop = lp;
        /* answers that came after the loop's last turn */
        conn *d = lp->done;
        lp->done = NULL;
        while (d) {
            conn *nx = d->done_next;
            if (d->dead) {
                answered(d);
            } else {
                s->p.end(&d->req, s->p.ctx);
                d->st = C_HEAD; /* ended: freed below */
            }
            d = nx;
        }
        conn *next;
        for (conn *c = lp->head; c; c = next) {
            next = c->next;
            if (c->st == C_WAIT && !c->responded) {
                leaked++; /* the handler still holds it: its answer may yet come */
                continue;
            }
            if (c->st == C_WRITE)
                s->p.end(&c->req, s->p.ctx);
            conn_free(c);
        }
        grave_free(lp);
        tl_loop = NULL;
        if (lp->ep >= 0)
            close(lp->ep);
        if (lp->efd >= 0)
            close(lp->efd);
        pthread_mutex_destroy(&lp->mu);
    }
    if (leaked)
        US_LOGW("%d HTTP requests still unanswered when the server stopped", leaked);
    if (s->lfd >= 0)
        close(s->lfd);
    us_free(s->loops);
    us_free(s);
}
