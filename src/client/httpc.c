/*
 * httpc.c - HTTP/1.1 client pieces (layer 2, src/client, prefix hc_; see
 * httpc.h for the subset and limits).
 *
 * The parser is a byte-driven state machine in the manner of nginx's
 * ngx_http_parse.c: head lines are collected one byte at a time (they are
 * short and every byte needs a class check anyway), body bytes are copied
 * in bulk. Every count is checked against its limit before the bytes are
 * stored, so a hostile or broken server can make a response fail, never
 * make the client allocate more than the limits allow.
 */
#include "httpc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"

hc_limits hc_default_limits(void)
{
    return (hc_limits){
        .max_line = 8192,
        .max_headers = 100,
        .max_head_bytes = 64 * 1024,
        .max_body = (uint64_t)64 << 20,
    };
}

/* ---- URL ------------------------------------------------------------------ */

int hc_url_parse(const char *url, hc_url *out, usher_error *err)
{
    memset(out, 0, sizeof *out);
    if (!url)
        return us_err_set(err, USHER_ERR_INVALID, "URL missing");
    if (strncasecmp(url, "https://", 8) == 0)
        return us_err_set(err, USHER_ERR_UNSUPPORTED, "URL '%.200s': https is not supported "
                                                      "(use http://)", url);
    if (strncasecmp(url, "http://", 7) != 0)
        return us_err_set(err, USHER_ERR_INVALID, "URL '%.200s' does not start with http://",
                          url);
    const char *p = url + 7, *host_end;
    const char *host = p;
    if (*p == '[') { /* IPv6 literal */
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return us_err_set(err, USHER_ERR_INVALID, "URL '%.200s': unterminated '['", url);
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/?#");
        p = host_end;
    }
    size_t hl = (size_t)(host_end - host);
    if (hl == 0 || hl >= sizeof out->host)
        return us_err_set(err, USHER_ERR_INVALID, "URL '%.200s': host is empty or too long",
                          url);
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= 0x20 || c >= 0x7f || c == '@' || c == '\\')
            return us_err_set(err, USHER_ERR_INVALID,
                              "URL '%.200s': host has a character that is not allowed", url);
    }
    memcpy(out->host, host, hl);
    out->port = 80;
    if (*p == ':') {
        p++;
        unsigned v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 6) {
            v = v * 10 + (unsigned)(*p++ - '0');
            digits++;
        }
        if (digits == 0 || v == 0 || v > 65535 || (*p && *p != '/'))
            return us_err_set(err, USHER_ERR_INVALID, "URL '%.200s': port must be 1..65535",
                              url);
        out->port = (uint16_t)v;
    }
    if (*p && *p != '/')
        return us_err_set(err, USHER_ERR_INVALID,
                          "URL '%.200s': expected a path after the host (queries and "
                          "fragments are not supported)", url);
    size_t bl = strlen(p);
    while (bl > 0 && p[bl - 1] == '/')
        bl--;
    if (bl >= sizeof out->base)
        return us_err_set(err, USHER_ERR_INVALID, "URL '%.200s': path too long", url);
    for (size_t i = 0; i < bl; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
            return us_err_set(err, USHER_ERR_INVALID,
                              "URL '%.200s': path has a character that is not allowed", url);
    }
    memcpy(out->base, p, bl);
    bool v6 = strchr(out->host, ':') != NULL;
    snprintf(out->authority, sizeof out->authority, "%s%s%s:%u", v6 ? "[" : "", out->host,
             v6 ? "]" : "", (unsigned)out->port);
    return USHER_OK;
}

void hc_write_head(us_buf *out, const char *method, const hc_url *u, const char *path,
                   const char *content_type, uint64_t body_len)
{
    us_buf_printf(out, "%s %s%s HTTP/1.1\r\nHost: %s\r\n", method, u->base, path, u->authority);
    if (body_len != UINT64_MAX) {
        if (content_type)
            us_buf_printf(out, "Content-Type: %s\r\n", content_type);
        us_buf_printf(out, "Content-Length: %llu\r\n", (unsigned long long)body_len);
    }
    us_buf_puts(out, "\r\n");
}

/* ---- response parser ------------------------------------------------------ */

void hc_response_init(hc_response *r, const hc_limits *lim)
{
    memset(r, 0, sizeof *r);
    r->lim = lim ? *lim : hc_default_limits();
    if (r->lim.max_headers > HC_MAX_HEADERS_CAP)
        r->lim.max_headers = HC_MAX_HEADERS_CAP;
    if (r->lim.max_line < 16)
        r->lim.max_line = 16;
    /* +2: us_buf keeps a terminator and we check the limit ourselves first */
    us_buf_init(&r->head, r->lim.max_head_bytes + 2);
    size_t bmax = r->lim.max_body >= SIZE_MAX - 2 ? SIZE_MAX : (size_t)r->lim.max_body + 2;
    us_buf_init(&r->body, bmax);
}

void hc_response_reset(hc_response *r)
{
    us_buf head = r->head, body = r->body;
    hc_limits lim = r->lim;
    us_buf_reset(&head);
    us_buf_reset(&body);
    memset(r, 0, sizeof *r);
    r->head = head;
    r->body = body;
    r->lim = lim;
}

void hc_response_free(hc_response *r)
{
    if (!r)
        return;
    us_buf_free(&r->head);
    us_buf_free(&r->body);
}

/* A quoted, printable excerpt of bad input for messages. */
static const char *excerpt(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (n > 0 && o + 4 >= cap && o >= 3)
        memcpy(buf + o - 3, "...", 3);
    buf[o] = '\0';
    return buf;
}

static int fail(hc_response *r, usher_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(hc_response *r, usher_error *err, int code, const char *fmt, ...)
{
    char msg[USHER_ERROR_MAX - 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->state = HC_ERROR;
    us_err_set(&r->err, code, "HTTP response: %s", msg);
    if (err)
        *err = r->err;
    return code;
}

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool token_eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

static int parse_status(hc_response *r, const char *s, size_t n, usher_error *err)
{
    char ex[80];
    /* "HTTP/1.x SSS" then nothing or " reason" */
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ' ||
        s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9' ||
        (n > 12 && s[12] != ' '))
        return fail(r, err, USHER_ERR_PARSE, "malformed status line '%s'",
                    excerpt(s, n, ex, sizeof ex));
    for (size_t i = 13; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(r, err, USHER_ERR_PARSE, "control character in the status line '%s'",
                        excerpt(s, n, ex, sizeof ex));
    }
    r->minor = s[7] - '0';
    r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    return 0;
}

/* A header (or trailer) line; store: record it and apply its meaning. */
static int parse_header(hc_response *r, size_t off, size_t n, bool trailer, usher_error *err)
{
    const char *s = r->head.data + off;
    char ex[80];
    if (s[0] == ' ' || s[0] == '\t')
        return fail(r, err, USHER_ERR_PARSE, "folded header line '%s' (obs-fold is not "
                                             "accepted)", excerpt(s, n, ex, sizeof ex));
    size_t colon = 0;
    while (colon < n && is_tchar((unsigned char)s[colon]))
        colon++;
    if (colon == 0 || colon >= n || s[colon] != ':')
        return fail(r, err, USHER_ERR_PARSE, "malformed header line '%s'",
                    excerpt(s, n, ex, sizeof ex));
    size_t v = colon + 1, e = n;
    while (v < e && (s[v] == ' ' || s[v] == '\t'))
        v++;
    while (e > v && (s[e - 1] == ' ' || s[e - 1] == '\t'))
        e--;
    for (size_t i = v; i < e; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(r, err, USHER_ERR_PARSE, "control character in header '%s'",
                        excerpt(s, colon, ex, sizeof ex));
    }
    size_t total = r->n_hdr + r->n_trailers + 1;
    if (total > r->lim.max_headers)
        return fail(r, err, USHER_ERR_LIMIT, "more than %zu header fields", r->lim.max_headers);
    if (trailer) {
        r->n_trailers++;
        return 0; /* trailers are checked, not kept: nothing we read lives there */
    }
    hc_header *h = &r->hdr[r->n_hdr++];
    h->name = (uint32_t)off;
    h->name_len = (uint32_t)colon;
    h->value = (uint32_t)(off + v);
    h->value_len = (uint32_t)(e - v);
    const char *val = s + v;
    size_t vl = e - v;
    if (token_eq(s, colon, "content-length")) {
        uint64_t cl = 0;
        if (vl == 0 || vl > 19)
            return fail(r, err, USHER_ERR_PARSE, "Content-Length '%s' is not a number",
                        excerpt(val, vl, ex, sizeof ex));
        for (size_t i = 0; i < vl; i++) {
            if (val[i] < '0' || val[i] > '9')
                return fail(r, err, USHER_ERR_PARSE, "Content-Length '%s' is not a number",
                            excerpt(val, vl, ex, sizeof ex));
            cl = cl * 10 + (uint64_t)(val[i] - '0');
        }
        if (r->has_length && cl != r->content_length)
            return fail(r, err, USHER_ERR_PARSE, "two different Content-Length headers");
        r->has_length = true;
        r->content_length = cl;
    } else if (token_eq(s, colon, "transfer-encoding")) {
        if (!token_eq(val, vl, "chunked") || r->chunked)
            return fail(r, err, USHER_ERR_UNSUPPORTED,
                        "Transfer-Encoding '%s' (only a single 'chunked' is supported)",
                        excerpt(val, vl, ex, sizeof ex));
        r->chunked = true;
    } else if (token_eq(s, colon, "connection")) {
        /* a comma-separated token list */
        size_t i = 0;
        while (i < vl) {
            while (i < vl && (val[i] == ' ' || val[i] == '\t' || val[i] == ','))
                i++;
            size_t b = i;
            while (i < vl && val[i] != ',' && val[i] != ' ' && val[i] != '\t')
                i++;
            if (token_eq(val + b, i - b, "close"))
                r->conn_close = true;
            else if (token_eq(val + b, i - b, "keep-alive"))
                r->conn_keep = true;
        }
    }
    return 0;
}

/* The blank line after the headers: decide how the body is framed. */
static int end_of_head(hc_response *r, usher_error *err)
{
    if (r->status >= 100 && r->status < 200) {
        if (r->status == 101)
            return fail(r, err, USHER_ERR_UNSUPPORTED, "101 Switching Protocols");
        /* an interim response: the final one follows on the same connection */
        hc_response_reset(r);
        r->started = true;
        return 0;
    }
    if (r->has_length && r->chunked)
        return fail(r, err, USHER_ERR_PARSE,
                    "both Content-Length and Transfer-Encoding (request smuggling shape)");
    r->keep_alive = r->minor >= 1 ? !r->conn_close : (r->conn_keep && !r->conn_close);
    if (r->status == 204 || r->status == 304) {
        r->state = HC_DONE;
        return 0;
    }
    if (r->chunked) {
        r->state = HC_CHUNK_SIZE;
        return 0;
    }
    if (r->has_length) {
        if (r->content_length > r->lim.max_body)
            return fail(r, err, USHER_ERR_LIMIT, "body of %llu bytes is over the %llu-byte limit",
                        (unsigned long long)r->content_length,
                        (unsigned long long)r->lim.max_body);
        r->remaining = r->content_length;
        r->state = r->remaining ? HC_BODY_LENGTH : HC_DONE;
        return 0;
    }
    r->keep_alive = false; /* the end of the connection ends the body */
    r->state = HC_BODY_EOF;
    return 0;
}

/* A complete head line (status, header or trailer) at head[line_start..len). */
static int head_line(hc_response *r, usher_error *err)
{
    size_t off = r->line_start, n = r->head.len - off;
    if (r->state == HC_STATUS) {
        if (n == 0)
            return fail(r, err, USHER_ERR_PARSE, "empty status line");
        int rc = parse_status(r, r->head.data + off, n, err);
        if (rc < 0)
            return rc;
        r->state = HC_HEADERS;
    } else if (n == 0) {
        if (r->state == HC_TRAILERS) {
            r->state = HC_DONE;
            return 0;
        }
        return end_of_head(r, err);
    } else {
        int rc = parse_header(r, off, n, r->state == HC_TRAILERS, err);
        if (rc < 0)
            return rc;
    }
    /* keep a NUL between lines so names and values can be read in place */
    us_buf_putc(&r->head, '\0');
    if (!us_buf_ok(&r->head))
        return fail(r, err, r->head.oom ? USHER_ERR_NOMEM : USHER_ERR_LIMIT,
                    "response head over %zu bytes", r->lim.max_head_bytes);
    r->line_start = r->head.len;
    return 0;
}

static int chunk_size_line(hc_response *r, usher_error *err)
{
    if (r->chunk_digits == 0)
        return fail(r, err, USHER_ERR_PARSE, "chunk size line without a size");
    r->chunk_digits = 0;
    r->chunk_phase = 0;
    r->chunk_line = 0;
    if (r->remaining == 0) {
        r->state = HC_TRAILERS;
        r->line_start = r->head.len;
        return 0;
    }
    if (r->remaining > r->lim.max_body - r->body.len)
        return fail(r, err, USHER_ERR_LIMIT, "chunked body over the %llu-byte limit",
                    (unsigned long long)r->lim.max_body);
    r->state = HC_CHUNK_DATA;
    return 0;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One byte of a CRLF-terminated line; returns 1 at the end of the line. */
static int line_byte(hc_response *r, unsigned char c, usher_error *err)
{
    if (r->cr) {
        if (c != '\n')
            return fail(r, err, USHER_ERR_PARSE, "bare CR in the response head");
        r->cr = false;
        return 1;
    }
    if (c == '\r') {
        r->cr = true;
        return 0;
    }
    if (c == '\n')
        return fail(r, err, USHER_ERR_PARSE, "bare LF in the response head (lines end in CRLF)");
    if (c == '\0')
        return fail(r, err, USHER_ERR_PARSE, "NUL byte in the response head");
    return 2;
}

int hc_response_feed(hc_response *r, const char *data, size_t n, size_t *used, usher_error *err)
{
    size_t i = 0;
    int rc = 0;
    if (n > 0)
        r->started = true;
    while (i < n && r->state != HC_DONE && r->state != HC_ERROR) {
        unsigned char c = (unsigned char)data[i];
        switch (r->state) {
        case HC_STATUS:
        case HC_HEADERS:
        case HC_TRAILERS: {
            if (!r->cr) {
                /* a run of ordinary bytes: checked and stored in one piece */
                size_t j = i;
                while (j < n && data[j] != '\r' && data[j] != '\n' && data[j] != '\0')
                    j++;
                if (j > i) {
                    size_t run = j - i;
                    if (r->head.len - r->line_start + run + 2 > r->lim.max_line) {
                        rc = fail(r, err, USHER_ERR_LIMIT, "a head line is over %zu bytes",
                                  r->lim.max_line);
                        goto out;
                    }
                    if (r->head.len + run > r->lim.max_head_bytes) {
                        rc = fail(r, err, USHER_ERR_LIMIT, "response head over %zu bytes",
                                  r->lim.max_head_bytes);
                        goto out;
                    }
                    us_buf_append(&r->head, data + i, run);
                    if (!us_buf_ok(&r->head)) {
                        rc = fail(r, err, USHER_ERR_NOMEM, "out of memory for the response head");
                        goto out;
                    }
                    i = j;
                    continue;
                }
            }
            /* CR, LF, NUL, or the byte after a CR */
            int k = line_byte(r, c, err);
            i++;
            if (k < 0) {
                rc = k;
                goto out;
            }
            if (k == 1) {
                rc = head_line(r, err);
                if (rc < 0)
                    goto out;
            }
            break; /* k == 2 cannot happen: ordinary bytes went the bulk way */
        }
        case HC_CHUNK_SIZE: {
            int k = line_byte(r, c, err);
            i++;
            if (k < 0) {
                rc = k;
                goto out;
            }
            if (k == 1) {
                rc = chunk_size_line(r, err);
                if (rc < 0)
                    goto out;
                continue;
            }
            if (k == 0)
                break;
            if (++r->chunk_line + 2 > r->lim.max_line) {
                rc = fail(r, err, USHER_ERR_LIMIT, "a chunk size line is over %zu bytes",
                          r->lim.max_line);
                goto out;
            }
            int h = hexval(c);
            bool ok;
            if (r->chunk_phase == 0 && h >= 0) {
                if (r->chunk_digits == 15) { /* 15 hex digits is 2^60: far past any cap */
                    rc = fail(r, err, USHER_ERR_LIMIT, "chunk size has too many digits");
                    goto out;
                }
                r->remaining = r->remaining * 16 + (uint64_t)h;
                r->chunk_digits++;
                ok = true;
            } else if (r->chunk_phase < 2) {
                /* size [BWS ";" extension]: extensions are allowed and ignored */
                ok = r->chunk_digits > 0 && (c == ';' || c == ' ' || c == '\t');
                r->chunk_phase = c == ';' ? 2 : 1;
            } else {
                ok = c >= 0x20 ? c != 0x7f : c == '\t';
            }
            if (!ok) {
                rc = fail(r, err, USHER_ERR_PARSE, "malformed chunk size line");
                goto out;
            }
            break;
        }
        case HC_BODY_LENGTH:
        case HC_CHUNK_DATA: {
            size_t take = n - i;
            if (take > r->remaining)
                take = (size_t)r->remaining;
            us_buf_append(&r->body, data + i, take);
            if (!us_buf_ok(&r->body)) {
                rc = fail(r, err, r->body.oom ? USHER_ERR_NOMEM : USHER_ERR_LIMIT,
                          "cannot hold the body (%s)", r->body.oom ? "out of memory" : "limit");
                goto out;
            }
            i += take;
            r->remaining -= take;
            if (r->remaining == 0) {
                if (r->state == HC_BODY_LENGTH) {
                    r->state = HC_DONE;
                } else {
                    r->state = HC_CHUNK_CRLF;
                    r->chunk_crlf = 0;
                }
            }
            break;
        }
        case HC_CHUNK_CRLF:
            if (c != (r->chunk_crlf == 0 ? '\r' : '\n')) {
                rc = fail(r, err, USHER_ERR_PARSE, "chunk data not followed by CRLF");
                goto out;
            }
            i++;
            if (++r->chunk_crlf == 2)
                r->state = HC_CHUNK_SIZE;
            break;
        case HC_BODY_EOF: {
            size_t take = n - i;
            if (take > r->lim.max_body - r->body.len) {
                rc = fail(r, err, USHER_ERR_LIMIT, "body over the %llu-byte limit",
                          (unsigned long long)r->lim.max_body);
                goto out;
            }
            us_buf_append(&r->body, data + i, take);
            if (!us_buf_ok(&r->body)) {
                rc = fail(r, err, USHER_ERR_NOMEM, "out of memory for the body");
                goto out;
            }
            i += take;
            break;
        }
        case HC_DONE:
        case HC_ERROR:
            break;
        }
    }
    if (r->state == HC_ERROR) {
        rc = r->err.code;
        if (err)
            *err = r->err;
    } else if (r->state == HC_DONE) {
        rc = 1;
    }
out:
    if (used)
        *used = i;
    return rc;
}

int hc_response_eof(hc_response *r, usher_error *err)
{
    if (r->state == HC_BODY_EOF) {
        r->state = HC_DONE;
        return 1;
    }
    if (r->state == HC_DONE)
        return 1;
    if (r->state == HC_ERROR) {
        if (err)
            *err = r->err;
        return r->err.code;
    }
    if (!r->started)
        return 0;
    return fail(r, err, USHER_ERR_PARSE, "connection closed before the response was complete");
}

const char *hc_response_header(const hc_response *r, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < r->n_hdr; i++) {
        const hc_header *h = &r->hdr[i];
        if (h->name_len == nl && strncasecmp(r->head.data + h->name, name, nl) == 0) {
            if (len)
                *len = h->value_len;
            return r->head.data + h->value;
        }
    }
    return NULL;
}

/* ---- one blocking exchange ------------------------------------------------ */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until the deadline; 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int k = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k > 0)
            return 1;
    }
}

int hc_exchange(const hc_url *u, const void *req, size_t req_len, int timeout_ms,
                hc_response *r, usher_error *err)
{
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 1);
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)u->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(u->host, port, &hints, &ai);
    if (g != 0)
        return us_err_set(err, USHER_ERR_IO, "%s: cannot resolve host: %s", u->authority,
                          gai_strerror(g));
    int fd = -1, rc = USHER_ERR_IO;
    const char *why = "no address";
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            why = strerror(errno);
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 1) {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                break;
            why = strerror(soerr ? soerr : errno);
        } else {
            why = errno == EINPROGRESS ? "connect timed out" : strerror(errno);
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return us_err_set(err, USHER_ERR_IO, "%s: cannot connect: %s", u->authority, why);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const char *p = req;
    size_t left = req_len;
    while (left > 0) {
        ssize_t k = send(fd, p, left, MSG_NOSIGNAL);
        if (k > 0) {
            p += k;
            left -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            wait_fd(fd, POLLOUT, deadline) == 1)
            continue;
        rc = us_err_set(err, USHER_ERR_IO, "%s: cannot send the request: %s", u->authority,
                        k < 0 && errno != EAGAIN ? strerror(errno) : "timed out");
        goto done;
    }
    char buf[16384];
    for (;;) {
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k > 0) {
            size_t used;
            int f = hc_response_feed(r, buf, (size_t)k, &used, err);
            if (f != 0) {
                rc = f < 0 ? f : USHER_OK;
                goto done;
            }
            continue;
        }
        if (k == 0) {
            int e = hc_response_eof(r, err);
            if (e == 0)
                e = us_err_set(err, USHER_ERR_IO, "%s: connection closed without a response",
                               u->authority);
            rc = e < 0 ? e : USHER_OK;
            goto done;
        }
        if (errno == EINTR)
            continue;
        if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(fd, POLLIN, deadline) == 1)
            continue;
        rc = us_err_set(err, USHER_ERR_IO, "%s: no complete response: %s", u->authority,
                        errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : strerror(errno));
        goto done;
    }
done:
    close(fd);
    return rc;
}
