/*
 * fuzz_oip.c - libFuzzer target for the OIP request parser and response
 * writer (src/server/oip.c, over src/core/json.c): RELIABILITY.md CI-2
 * targets (2) JSON request -> tensors and (3) the binary-tensor splitter.
 *
 * The first byte of an input picks how it is framed:
 *   bits 0-1  0: no Inference-Header-Content-Length (the body is JSON)
 *             1: the next 2 bytes (little-endian) are the header length
 *             2: the header length is the whole body
 *             3: the next 8 bytes (little-endian) are the header length,
 *                any value (out-of-range ones included)
 *   bit 2     tight limits (body 4 KiB, depth 6, 32 elements, 128 bytes per
 *             tensor) instead of the defaults, so limit paths are reached
 *   bit 3     flip binary_data_output before writing the response
 * and the rest is the body. The contract checked on every input, beyond
 * "no crash, no sanitizer report":
 *   - a rejection returns the negative code that is also in err.code, with
 *     a message, never a missing one (us_err_missing_detail_count), and
 *     leaves no tensors; its error body is at most 4 KiB of valid JSON;
 *   - an accepted request's tensors are consistent: names unique and
 *     non-empty, bytes == elements x dtype size (BYTES: us_bytes_check),
 *     within the limits; tight limits accept only what the defaults accept;
 *   - the inputs written back as outputs give a response our reader
 *     accepts, with the id echoed; read back as a request (its "outputs"
 *     renamed "inputs", its binary part kept) it gives the same tensors,
 *     bit for bit, whenever the JSON form can hold them (finite floats,
 *     valid UTF-8 in BYTES);
 *   - nothing leaks through the allocation hook.
 * Violations abort, so libFuzzer records them as crashes. tests/test_oip.c
 * replays fuzz/corpus-oip and mutants of it through the same function.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/json.h"
#include "fuzz_oip.h"
#include "server/oip.h"

static void check(bool ok, const char *what, const usher_error *err)
{
    if (!ok) {
        fprintf(stderr, "fuzz contract violated: %s (code %d, message '%s')\n", what,
                err ? (int)err->code : 0, err ? err->msg : "");
        abort();
    }
}

static void check_rejection(int rc, const usher_error *err, const oip_request *r)
{
    /* a message that lost its detail is caught by the counter below, not by looking for
     * "(no detail)" in it: the message may quote the request, which can say anything */
    check(rc < 0 && err->code == rc && err->msg[0], "rejection without its code or a message",
          err);
    check(rc == USHER_ERR_PARSE || rc == USHER_ERR_LIMIT || rc == USHER_ERR_UNSUPPORTED ||
              rc == USHER_ERR_NOMEM,
          "unexpected status", err);
    check(us_err_missing_detail_count() == 0, "an error reached a caller without a message", err);
    check(r->n_in == 0 && r->n_out == 0, "a rejection left tensors behind", err);
    check(!r->has_id || strlen(r->id) < OIP_ID_MAX, "id not terminated", err);
    /* the error body the server would send */
    us_buf b;
    us_buf_init(&b, 1 << 16);
    oip_write_error(&b, err->msg, r->has_id ? r->id : NULL);
    check(us_buf_ok(&b) && b.len > 0 && b.len <= 4096, "error body over 4 KiB", err);
    us_jsonr_doc *d = NULL;
    usher_error e;
    check(us_jsonr_parse(b.data, b.len, NULL, &d, NULL, &e) == USHER_OK, "error body not JSON",
          &e);
    us_jsonr_val m = us_jsonr_get(d, us_jsonr_root(d), "error");
    check(us_jsonr_type_of(d, m) == US_JSONR_STRING, "error body without \"error\"", err);
    if (r->has_id)
        check(us_jsonr_str_eq(d, us_jsonr_get(d, us_jsonr_root(d), "id"), r->id, strlen(r->id)),
              "error body lost the id", err);
    us_jsonr_free(d);
    us_buf_free(&b);
}

static void check_tensors(const oip_request *r, const oip_limits *lim)
{
    usher_error e;
    memset(&e, 0, sizeof e);
    check(r->n_in <= OIP_MAX_TENSORS && r->n_out <= OIP_MAX_TENSORS, "too many tensors", NULL);
    check(!r->has_id || strlen(r->id) < OIP_ID_MAX, "id not terminated", NULL);
    for (size_t i = 0; i < r->n_in; i++) {
        const us_tensor *t = &r->in[i];
        size_t nl = strnlen(t->name, US_TENSOR_NAME_MAX);
        check(nl > 0 && nl < US_TENSOR_NAME_MAX, "bad input name", NULL);
        for (size_t k = 0; k < i; k++)
            check(strcmp(r->in[k].name, t->name) != 0, "duplicate input name", NULL);
        check(t->dtype > US_DT_INVALID && t->dtype < US_DT_COUNT, "bad dtype", NULL);
        check(t->data != NULL, "a tensor without a buffer", NULL);
        uint64_t n;
        check(us_shape_elements(&t->shape, "fuzz", &n, &e) == USHER_OK, "bad shape", &e);
        check(n <= lim->max_elements && t->bytes <= lim->max_tensor_bytes, "limit not applied",
              NULL);
        if (t->dtype == US_DT_BYTES) {
            check(us_bytes_check(t->data, t->bytes, n, "fuzz", &e) == USHER_OK,
                  "BYTES layout broken", &e);
        } else {
            uint64_t need;
            check(us_tensor_nbytes(t->dtype, &t->shape, "fuzz", &need, &e) == USHER_OK &&
                      need == t->bytes,
                  "bytes != elements x size", &e);
            if (t->dtype == US_DT_BOOL)
                for (uint64_t k = 0; k < t->bytes; k++)
                    check(((const uint8_t *)t->data)[k] <= 1, "BOOL byte not 0 or 1", NULL);
        }
    }
    for (size_t i = 0; i < r->n_out; i++) {
        size_t nl = strnlen(r->out[i].name, US_TENSOR_NAME_MAX);
        check(nl > 0 && nl < US_TENSOR_NAME_MAX, "bad output name", NULL);
        for (size_t k = 0; k < i; k++)
            check(strcmp(r->out[k].name, r->out[i].name) != 0, "duplicate output name", NULL);
    }
}

static const us_tensor *find(const oip_request *r, const char *name)
{
    for (size_t i = 0; i < r->n_in; i++)
        if (strcmp(r->in[i].name, name) == 0)
            return &r->in[i];
    return NULL;
}

/* can the JSON form carry t exactly? (finite floats; valid UTF-8 in BYTES) */
static bool json_exact(const us_tensor *t)
{
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case US_DT_FP64:
        for (uint64_t i = 0; i < t->bytes; i += 8) {
            double x;
            memcpy(&x, p + i, 8);
            if (!isfinite(x))
                return false;
        }
        return true;
    case US_DT_FP32:
        for (uint64_t i = 0; i < t->bytes; i += 4) {
            float x;
            memcpy(&x, p + i, 4);
            if (!isfinite(x))
                return false;
        }
        return true;
    case US_DT_FP16:
    case US_DT_BF16:
        for (uint64_t i = 0; i < t->bytes; i += 2) {
            uint16_t x;
            memcpy(&x, p + i, 2);
            unsigned e = t->dtype == US_DT_FP16 ? (x >> 10 & 31u) == 31 : (x >> 7 & 255u) == 255;
            if (e)
                return false;
        }
        return true;
    case US_DT_BYTES:
        for (uint64_t o = 0; o + 4 <= t->bytes;) {
            uint32_t n;
            memcpy(&n, p + o, 4);
            if (us_jsonr_utf8_check(p + o + 4, n) != n)
                return false;
            o += 4 + (uint64_t)n;
        }
        return true;
    default: return true;
    }
}

/* the inputs written back as a response, read back (by the reader, then as a request) */
static void check_response(oip_request *r)
{
    usher_error err;
    memset(&err, 0, sizeof err);
    us_buf json, bin;
    us_buf_init(&json, (size_t)64 << 20);
    us_buf_init(&bin, (size_t)64 << 20);
    uint64_t hl = 0;
    int rc = oip_write_response(r, "m", "1", r->in, r->n_in, &json, &bin, &hl, &err);
    const char *missing = NULL;
    for (size_t i = 0; i < r->n_out && !missing; i++)
        if (!find(r, r->out[i].name))
            missing = r->out[i].name;
    if (missing) {
        check(rc == USHER_ERR_NOT_FOUND && err.code == rc && strstr(err.msg, missing),
              "an unknown output was not refused by name", &err);
        goto done;
    }
    check(rc == USHER_OK, "the response could not be written", &err);
    check(hl == json.len && json.len > 0, "header length is not the JSON's", NULL);
    us_jsonr_doc *d = NULL;
    check(us_jsonr_parse(json.data, json.len, NULL, &d, NULL, &err) == USHER_OK,
          "the response is not JSON", &err);
    us_jsonr_val root = us_jsonr_root(d);
    size_t n_sel = r->n_out ? r->n_out : r->n_in;
    check(us_jsonr_len(d, us_jsonr_get(d, root, "outputs")) == n_sel, "outputs missing", NULL);
    if (r->has_id)
        check(us_jsonr_str_eq(d, us_jsonr_get(d, root, "id"), r->id, strlen(r->id)),
              "the response lost the id", NULL);
    else
        check(us_jsonr_get(d, root, "id") == US_JSONR_NONE, "an id nobody sent", NULL);
    us_jsonr_free(d);

    /* back as a request: {"model_name":..,"outputs":[...]} -> "inputs" */
    bool exact = true;
    for (size_t i = 0; i < n_sel; i++) {
        const us_tensor *t = r->n_out ? find(r, r->out[i].name) : &r->in[i];
        bool binary = r->n_out && r->out[i].has_binary ? r->out[i].binary : r->binary_output;
        if (!binary && !json_exact(t))
            exact = false;
    }
    if (!exact)
        goto done;
    char *key = memmem(json.data, json.len, "\"outputs\":[", 11);
    check(key != NULL, "no outputs key", NULL);
    size_t pre = (size_t)(key - json.data), jl = json.len - 1, total = jl + bin.len;
    uint8_t *body = malloc(total ? total : 1);
    check(body != NULL, "malloc", NULL);
    memcpy(body, json.data, pre);
    memcpy(body + pre, "\"inputs\":[", 10);
    memcpy(body + pre + 10, key + 11, json.len - pre - 11);
    if (bin.len)
        memcpy(body + jl, bin.data, bin.len);
    oip_limits big = {(uint64_t)1 << 30, 100, (uint64_t)1 << 40, (uint64_t)1 << 40, (uint64_t)1 << 46};
    oip_request back;
    rc = oip_parse_request(body, total, jl, &big, &back, &err);
    free(body);
    check(rc == USHER_OK, "the response does not read back as a request", &err);
    check(back.n_in == n_sel, "tensors lost on the way back", NULL);
    for (size_t i = 0; i < n_sel; i++) {
        const us_tensor *t = r->n_out ? find(r, r->out[i].name) : &r->in[i];
        const us_tensor *u = &back.in[i];
        check(strcmp(t->name, u->name) == 0 && t->dtype == u->dtype &&
                  t->shape.rank == u->shape.rank && t->bytes == u->bytes &&
                  memcmp(t->shape.dim, u->shape.dim, sizeof(int64_t) * (size_t)t->shape.rank) ==
                      0 &&
                  (t->bytes == 0 || memcmp(t->data, u->data, (size_t)t->bytes) == 0),
              "a tensor changed on the way back", NULL);
    }
    check(back.has_id == r->has_id && (!r->has_id || strcmp(back.id, r->id) == 0),
          "the id changed on the way back", NULL);
    oip_request_free(&back);
done:
    us_buf_free(&json);
    us_buf_free(&bin);
}

static int parse_once(const uint8_t *body, size_t size, uint64_t hl, const oip_limits *lim,
                      bool flip, bool write)
{
    oip_request *r = malloc(sizeof *r);
    check(r != NULL, "malloc", NULL);
    usher_error err;
    memset(&err, 0, sizeof err);
    int rc = oip_parse_request(body, size, hl, lim, r, &err);
    if (rc) {
        check_rejection(rc, &err, r);
    } else {
        check(err.code == USHER_OK, "success with an error code", &err);
        check_tensors(r, lim);
        if (write) {
            if (flip)
                r->binary_output = !r->binary_output;
            check_response(r);
        }
        oip_request_free(r);
    }
    free(r);
    return rc;
}

int usher_fuzz_oip_one(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    uint64_t hl = 0;
    switch (mode & 3) {
    case 1:
        if (size >= 2) {
            hl = (uint64_t)data[0] | (uint64_t)data[1] << 8;
            data += 2;
            size -= 2;
        }
        break;
    case 2: hl = size; break;
    case 3:
        for (int k = 0; k < 8 && size > 0; k++, data++, size--)
            hl |= (uint64_t)data[0] << (8 * k);
        break;
    default: break;
    }
    size_t live = us_alloc_live_bytes();
    oip_limits def = oip_default_limits(), tight = def;
    tight.max_body = 4096;
    tight.max_depth = 6;
    tight.max_elements = 32;
    tight.max_tensor_bytes = 128;
    bool small = mode & 4;
    int rc = parse_once(data, size, hl, small ? &tight : &def, mode & 8, true);
    if (small && rc == USHER_OK)
        check(parse_once(data, size, hl, &def, false, false) == USHER_OK,
              "tight limits accepted what the defaults refuse", NULL);
    check(us_alloc_live_bytes() == live, "the OIP parser leaked", NULL);
    return 0;
}

#ifdef USHER_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return usher_fuzz_oip_one(data, size);
}
#endif
