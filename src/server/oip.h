/*
 * oip.h - the KServe v2 / Open Inference Protocol messages (layer 8,
 * prefix oip_): an inference request body (JSON, or JSON plus the binary
 * tensor extension) into tensors, and tensors into a response body.
 *
 * Bodies are untrusted. Parsing is bounded (RELIABILITY.md INPUT-2, PROTO-6):
 * JSON nesting depth, element and byte counts in 64 bits with overflow
 * checks, rank <= 16, no negative or fractional dims, each value in range
 * for its datatype, binary sizes that add up exactly. Every rejection is
 * USHER_ERR_PARSE (or USHER_ERR_LIMIT for a size limit) with a message
 * naming the input and the field, never a path, pointer or process id.
 *
 * Request (application/json, or JSON header + binary tail when the header
 * Inference-Header-Content-Length gives the JSON's length):
 *   {"id": "42",
 *    "parameters": {"timeout": 50000, "binary_data_output": true},
 *    "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3],
 *                "data": [1, 2, 3]            (or nested [[1, 2, 3]])
 *                or "parameters": {"binary_data_size": 12}}],
 *    "outputs": [{"name": "y", "parameters": {"binary_data": true}}]}
 */
#ifndef OIP_H
#define OIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/tensor.h"
#include "usher/status.h"

#define OIP_MAX_TENSORS 64
#define OIP_ID_MAX 256 /* bytes of an id, terminator included */

typedef struct oip_limits {
    uint64_t max_body;     /* bytes of the whole body; default 64 MiB */
    int max_depth;         /* JSON nesting; default 100 */
    uint64_t max_elements; /* per tensor; default 64 Mi */
    uint64_t max_tensor_bytes; /* per decoded tensor; default 64 MiB (after dtype expansion) */
    uint64_t max_total_bytes;  /* all decoded inputs together; default 64 MiB (INPUT-2: the
                                  body limit holds after dtype expansion too) */
} oip_limits;

oip_limits oip_default_limits(void);

typedef struct oip_output_req {
    char name[US_TENSOR_NAME_MAX];
    bool binary;               /* parameters.binary_data */
    bool has_binary;
} oip_output_req;

typedef struct oip_request {
    char id[OIP_ID_MAX];
    bool has_id;
    uint64_t timeout_us;       /* parameters.timeout (microseconds, as Triton) */
    bool has_timeout;
    bool binary_output;        /* parameters.binary_data_output */
    us_tensor in[OIP_MAX_TENSORS];
    size_t n_in;
    oip_output_req out[OIP_MAX_TENSORS]; /* the outputs asked for; none: all */
    size_t n_out;
} oip_request;

/*
 * Parse an infer request. header_len is the value of
 * Inference-Header-Content-Length (0 when absent: the whole body is JSON;
 * otherwise 0 < header_len <= len is required). Each input's data is
 * decoded into a buffer of its own (us_malloc, freed by oip_request_free),
 * in the datatype's native little-endian layout (BYTES: u32 length + bytes
 * per element). On failure *out is left empty (nothing to free).
 */
int oip_parse_request(const uint8_t *body, size_t len, uint64_t header_len, const oip_limits *lim,
                      oip_request *out, usher_error *err);
void oip_request_free(oip_request *r);

/*
 * Write the response for outputs out[0..n): those the request asked for (all
 * when it named none), as JSON data or as binary (per output, defaulting to
 * the request's binary_data_output). json receives the JSON part; binary
 * the binary tail (may stay empty); *header_len is the JSON's length, for
 * Inference-Header-Content-Length when the tail is not empty.
 * USHER_ERR_NOT_FOUND when the request asks for an output the model does
 * not have (message names it), USHER_ERR_LIMIT when a buffer cap is hit.
 */
int oip_write_response(const oip_request *req, const char *model, const char *version,
                       const us_tensor *out, size_t n, us_buf *json, us_buf *binary,
                       uint64_t *header_len, usher_error *err);

/*
 * Content codings of bodies (Content-Encoding, Accept-Encoding): gzip
 * (RFC 1952) and deflate (the zlib format of RFC 1950, as HTTP means it; a
 * raw RFC 1951 stream, which some clients send, is accepted too), over zlib.
 */
typedef enum oip_coding { OIP_IDENTITY, OIP_GZIP, OIP_DEFLATE } oip_coding;
/* a Content-Encoding value: identity (or empty), gzip (x-gzip), deflate, case-insensitive;
 * -1 for anything else (a list of codings included) */
int oip_coding_parse(const char *v);
/*
 * Decode a gzip or deflate body into *out (us_malloc'd, *out_len bytes; the
 * caller frees it) of at most max_out bytes. Bounded: output stops at
 * max_out, so a decompression bomb costs max_out bytes and the time to
 * inflate them, then USHER_ERR_LIMIT. A corrupt or truncated stream, or
 * bytes after its end (gzip: after its last member), is USHER_ERR_PARSE.
 * On failure *out is NULL.
 */
int oip_inflate(oip_coding c, const uint8_t *in, size_t len, uint64_t max_out, uint8_t **out,
                size_t *out_len, usher_error *err);
/* the coding an Accept-Encoding value prefers among gzip and deflate (q-values honoured,
 * ties to gzip); OIP_IDENTITY when it allows neither */
oip_coding oip_accept_coding(const char *accept);
/* compress a then b (either may be empty) as gzip or deflate into *out (us_malloc'd) */
int oip_deflate(oip_coding c, const void *a, size_t alen, const void *b, size_t blen,
                uint8_t **out, size_t *out_len, usher_error *err);

/* {"error": "<msg>"} (msg cut to keep the body <= 4 KiB; with "id" when given) */
void oip_write_error(us_buf *b, const char *msg, const char *id);

#endif
