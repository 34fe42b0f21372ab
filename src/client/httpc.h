/*
 * httpc.h - the client side of HTTP/1.1 (layer 2, src/client, on core only;
 * prefix hc_, kept from before the folder existed rather than the folder's
 * cl_: see docs/architecture.md): a URL splitter, a request writer, and a
 * bounded, resumable response parser, so the load generator, tests and
 * benchmarks speak to the server with one piece of code.
 *
 * The subset parsed (RFC 9112), everything else is an error:
 *
 *   response  = status-line *( header-field CRLF ) CRLF [ body ]
 *   status    = "HTTP/1." DIGIT SP 3DIGIT [ SP reason ] CRLF
 *   header    = token ":" OWS value OWS          (no obs-fold, no NUL/CR/LF)
 *   body      = Content-Length bytes
 *             | chunked: 1*( hex-size [ ";" ext ] CRLF data CRLF ) "0" CRLF
 *                        *( trailer CRLF ) CRLF
 *             | up to EOF (no length and no chunked)
 *             | none for 1xx, 204, 304 (1xx other than 101 are skipped:
 *               the final response follows)
 *
 * Lines end in CRLF only: a bare CR or LF is rejected, as are a header name
 * with a space before its colon, Content-Length together with
 * Transfer-Encoding, two different Content-Lengths and any transfer coding
 * but "chunked" (the response-splitting and smuggling cases). Limits
 * (hc_limits) bound every line, the header count and bytes, and the body;
 * a body over max_body is refused as soon as its size is known (at the
 * Content-Length header, or at the chunk that crosses it).
 *
 * The parser is fed whatever bytes arrive, in pieces of any size, and
 * never reads past the end of the current response: bytes after it are
 * left to the caller (hc_response_feed reports how many it used).
 */
#ifndef HC_H
#define HC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "usher/status.h"

#define HC_HOST_MAX 256 /* bytes of a host name, terminator included */
#define HC_PATH_MAX 1024 /* bytes of a base path, terminator included */
#define HC_MAX_HEADERS_CAP 128

typedef struct hc_limits {
    size_t max_line;       /* bytes of the status line, a header line or a chunk-size
                              line, CRLF included; default 8 KiB */
    size_t max_headers;    /* header fields per response (trailers included); default
                              100, at most HC_MAX_HEADERS_CAP */
    size_t max_head_bytes; /* bytes of all header lines together; default 64 KiB */
    uint64_t max_body;     /* bytes of the decoded body; default 64 MiB */
} hc_limits;

hc_limits hc_default_limits(void);

/* "http://host[:port][/base]": IPv6 literals in brackets; https is refused. */
typedef struct hc_url {
    char host[HC_HOST_MAX]; /* without brackets */
    uint16_t port;          /* default 80 */
    char base[HC_PATH_MAX]; /* path prefix without a trailing '/'; "" when none */
    char authority[HC_HOST_MAX + 16]; /* what goes into Host: ("[::1]:8000") */
} hc_url;

/* USHER_ERR_INVALID with a message naming the problem. */
int hc_url_parse(const char *url, hc_url *out, usher_error *err);

/*
 * Append a request head to out: "METHOD path HTTP/1.1", Host, and, when
 * body_len is not UINT64_MAX, Content-Type (when given) and Content-Length,
 * then the blank line. The body itself is the caller's to append or send.
 */
void hc_write_head(us_buf *out, const char *method, const hc_url *u, const char *path,
                   const char *content_type, uint64_t body_len);

typedef enum hc_state {
    HC_STATUS = 0,   /* reading the status line */
    HC_HEADERS,      /* reading header lines */
    HC_BODY_LENGTH,  /* Content-Length body */
    HC_CHUNK_SIZE,   /* chunk-size line */
    HC_CHUNK_DATA,   /* chunk data */
    HC_CHUNK_CRLF,   /* the CRLF after chunk data */
    HC_TRAILERS,     /* trailer lines after the last chunk */
    HC_BODY_EOF,     /* body delimited by the end of the connection */
    HC_DONE,         /* a whole response was read */
    HC_ERROR         /* a protocol error; the connection cannot be used again */
} hc_state;

typedef struct hc_header {
    uint32_t name, name_len, value, value_len; /* offsets into hc_response.head */
} hc_header;

typedef struct hc_response {
    /* the result, valid once state == HC_DONE */
    int status;           /* 100..599 */
    int minor;            /* HTTP/1.minor */
    bool keep_alive;      /* the connection may carry another request */
    bool chunked;
    bool has_length;
    uint64_t content_length;
    us_buf body;          /* decoded body (capped at limits.max_body) */
    us_buf head;          /* status line and header lines, CRLFs removed, '\0' between */
    hc_header hdr[HC_MAX_HEADERS_CAP];
    size_t n_hdr;

    /* parser state */
    hc_state state;
    hc_limits lim;
    size_t line_start; /* offset in head where the current line begins */
    bool cr;           /* the last byte of the current line was CR */
    bool started;      /* some byte of this response was read */
    bool no_body;      /* 204/304 */
    bool conn_close, conn_keep;
    uint64_t remaining; /* bytes left in a Content-Length body or a chunk */
    size_t chunk_line;  /* bytes of the current chunk-size line */
    int chunk_digits;   /* hex digits of the chunk size read so far */
    int chunk_phase;    /* 0 size digits, 1 blanks after them, 2 inside an extension */
    int chunk_crlf;     /* bytes of the CRLF after chunk data seen so far */
    size_t n_trailers;
    usher_error err;    /* the reason when state == HC_ERROR */
} hc_response;

/* lim NULL: defaults. */
void hc_response_init(hc_response *r, const hc_limits *lim);
/* Ready for the next response on the same connection (buffers are kept). */
void hc_response_reset(hc_response *r);
void hc_response_free(hc_response *r);

/*
 * Feed n bytes. *used receives how many were consumed (less than n only
 * when the response completed: the rest belongs to whatever follows).
 * Returns 1 when the response is complete (state HC_DONE), 0 when more
 * bytes are needed, or a negative status on a protocol error
 * (USHER_ERR_PARSE; USHER_ERR_LIMIT for a limit; USHER_ERR_UNSUPPORTED for a
 * transfer coding other than chunked; USHER_ERR_NOMEM) with the reason in
 * err and r->err. After an error the parser stays in HC_ERROR.
 */
int hc_response_feed(hc_response *r, const char *data, size_t n, size_t *used, usher_error *err);

/*
 * The connection reached end of file. Returns 1 if that completed the
 * response (a body delimited by EOF), else USHER_ERR_PARSE ("connection
 * closed ..."), except 0 when nothing of a response had been read (the
 * peer closed an idle connection).
 */
int hc_response_eof(hc_response *r, usher_error *err);

/* The value of the first header named `name` (case-insensitive), or NULL. */
const char *hc_response_header(const hc_response *r, const char *name, size_t *len);

/*
 * One blocking exchange on a fresh connection: send the request bytes,
 * read one response (into r, which must be initialised), close. For
 * set-up calls (model metadata) and tests, not for load: the whole
 * exchange must finish within timeout_ms. USHER_ERR_IO for a connection or
 * timeout failure, or the parser's status.
 */
int hc_exchange(const hc_url *u, const void *req, size_t req_len, int timeout_ms,
                hc_response *r, usher_error *err);

#endif
