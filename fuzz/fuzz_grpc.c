/*
 * fuzz_grpc.c - libFuzzer target for the gRPC front end's message decoding
 * (src/server/grpc_msg.c: gm_wire_check, gm_unpack over protobuf-c,
 * gm_infer_request, gm_infer_response, gm_stream_response). ModelStreamInfer's
 * requests are ModelInferRequests, decoded by the same functions.
 *
 * The first byte of an input picks:
 *   bits 0-2  the message type: 0-3 ModelInferRequest (the one that matters),
 *             4 ModelMetadataRequest, 5 ModelReadyRequest,
 *             6 ModelStatisticsRequest, 7 RepositoryIndexRequest
 *   bit 3     tight limits (32 elements, 128 bytes a tensor, 256 in all; an
 *             allocation budget of 4 KiB for protobuf-c) instead of the defaults
 * and the rest is the message. The contract, beyond "no crash, no sanitizer
 * report":
 *   - a refusal returns the negative code that is also in err.code, with a
 *     message; only PARSE, LIMIT, UNSUPPORTED or NOMEM;
 *   - whatever gm_wire_check accepts has every string without NUL (strlen of
 *     each decoded name equals its wire length: checked on the names read);
 *   - an accepted request's tensors are consistent: names unique, non-empty
 *     and terminated; bytes == elements x size (BYTES: us_bytes_check); within
 *     the limits; tight limits accept only what the defaults accept;
 *   - its inputs written back as a response (gm_infer_response) unpack with
 *     protobuf-c's own allocator into the same names, datatypes, shapes and
 *     bytes, the id echoed; wrapped as ModelStreamInfer's answer
 *     (gm_stream_response) it unpacks into the same bytes, and an error answer
 *     into the message and the id alone;
 *   - nothing leaks through the allocation hook.
 * tests/test_serve_grpc_msg.c replays built seeds and mutants of them through
 * the same function.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fuzz_grpc.h"
#include "server/grpc_msg.h"

static void check(bool ok, const char *what, const usher_error *err)
{
    if (!ok) {
        fprintf(stderr, "fuzz contract violated: %s (code %d, message '%s')\n", what,
                err ? (int)err->code : 0, err ? err->msg : "");
        abort();
    }
}

static void check_refusal(int rc, const usher_error *err)
{
    check(rc < 0 && err->code == rc && err->msg[0], "refusal without its code or a message", err);
    check(rc == USHER_ERR_PARSE || rc == USHER_ERR_LIMIT || rc == USHER_ERR_UNSUPPORTED ||
              rc == USHER_ERR_NOMEM,
          "unexpected status", err);
}

static void check_tensors(const oip_request *r, const oip_limits *lim)
{
    usher_error e;
    memset(&e, 0, sizeof e);
    uint64_t total = 0;
    check(r->n_in >= 1 && r->n_in <= OIP_MAX_TENSORS && r->n_out <= OIP_MAX_TENSORS,
          "tensor count", NULL);
    check(!r->has_id || (r->id[0] && strlen(r->id) < OIP_ID_MAX), "id", NULL);
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
        total += t->bytes;
        if (t->dtype == US_DT_BYTES) {
            check(us_bytes_check(t->data, t->bytes, n, "fuzz", &e) == USHER_OK,
                  "BYTES layout broken", &e);
        } else {
            uint64_t need;
            check(us_tensor_nbytes(t->dtype, &t->shape, "fuzz", &need, &e) == USHER_OK &&
                      need == t->bytes,
                  "bytes != elements x size", &e);
        }
    }
    check(total <= lim->max_total_bytes, "total limit not applied", NULL);
    for (size_t i = 0; i < r->n_out; i++) {
        size_t nl = strnlen(r->out[i].name, US_TENSOR_NAME_MAX);
        check(nl > 0 && nl < US_TENSOR_NAME_MAX, "bad output name", NULL);
    }
}

/* the inputs as a response, unpacked by protobuf-c itself */
static void check_response(oip_request *r)
{
    oip_request all = *r;
    all.n_out = 0; /* every "output": the inputs */
    uint8_t *buf = NULL;
    size_t len = 0;
    usher_error err;
    int rc = gm_infer_response(&all, "m", "1", r->in, r->n_in, (size_t)1 << 30, &buf, &len, &err);
    check(rc == USHER_OK, "the response could not be written", &err);
    Inference__ModelInferResponse *p = inference__model_infer_response__unpack(NULL, len, buf);
    check(p != NULL, "the response does not unpack", NULL);
    check(strcmp(p->model_name, "m") == 0 && strcmp(p->model_version, "1") == 0 &&
              strcmp(p->id, r->has_id ? r->id : "") == 0,
          "model, version or id changed", NULL);
    check(p->n_outputs == r->n_in && p->n_raw_output_contents == r->n_in, "outputs lost", NULL);
    for (size_t i = 0; i < r->n_in; i++) {
        const us_tensor *t = &r->in[i];
        const Inference__ModelInferResponse__InferOutputTensor *o = p->outputs[i];
        check(strcmp(o->name, t->name) == 0 &&
                  strcmp(o->datatype, us_dtype_name(t->dtype)) == 0 &&
                  o->n_shape == (size_t)t->shape.rank &&
                  (o->n_shape == 0 ||
                   memcmp(o->shape, t->shape.dim, o->n_shape * sizeof(int64_t)) == 0) &&
                  p->raw_output_contents[i].len == t->bytes &&
                  (t->bytes == 0 ||
                   memcmp(p->raw_output_contents[i].data, t->data, (size_t)t->bytes) == 0),
              "a tensor changed on the way back", NULL);
    }
    inference__model_infer_response__free_unpacked(p, NULL);
    /* the same response as ModelStreamInfer's answer: it unpacks into the very bytes; an
     * error answer carries the message and the id alone; a limit below the size refuses */
    uint8_t *sbuf = NULL;
    size_t slen = 0;
    rc = gm_stream_response(NULL, NULL, buf, len, (size_t)1 << 30, &sbuf, &slen, &err);
    check(rc == USHER_OK, "the stream answer could not be written", &err);
    Inference__ModelStreamInferResponse *sp =
        inference__model_stream_infer_response__unpack(NULL, slen, sbuf);
    check(sp != NULL && sp->error_message[0] == 0 && sp->infer_response != NULL,
          "the stream answer does not unpack", NULL);
    uint8_t *again = malloc(len ? len : 1);
    check(again != NULL, "malloc", NULL);
    size_t alen = inference__model_infer_response__pack(sp->infer_response, again);
    check(alen == len && memcmp(again, buf, len) == 0, "the stream answer changed the response",
          NULL);
    free(again);
    inference__model_stream_infer_response__free_unpacked(sp, NULL);
    us_free(sbuf);
    rc = gm_stream_response(NULL, NULL, buf, len, len, &sbuf, &slen, &err);
    check(rc == USHER_ERR_LIMIT && !sbuf, "the stream answer's limit not applied", &err);
    rc = gm_stream_response("failed", r->has_id ? r->id : NULL, NULL, 0, 0, &sbuf, &slen, &err);
    check(rc == USHER_OK, "the stream error could not be written", &err);
    sp = inference__model_stream_infer_response__unpack(NULL, slen, sbuf);
    check(sp != NULL && strcmp(sp->error_message, "failed") == 0 && sp->infer_response &&
              strcmp(sp->infer_response->id, r->has_id ? r->id : "") == 0 &&
              sp->infer_response->n_outputs == 0,
          "the stream error does not unpack", NULL);
    inference__model_stream_infer_response__free_unpacked(sp, NULL);
    us_free(sbuf);
    us_free(buf);
    /* an output asked for that is not there: NOT_FOUND naming it */
    oip_request one = *r;
    one.n_out = 1;
    snprintf(one.out[0].name, sizeof one.out[0].name, "no-such-output-%s", "x");
    rc = gm_infer_response(&one, "m", "1", r->in, r->n_in, (size_t)1 << 30, &buf, &len, &err);
    check(rc == USHER_ERR_NOT_FOUND && strstr(err.msg, "no-such-output-x") && !buf,
          "an unknown output was not refused by name", &err);
}

static int infer_once(const ProtobufCMessage *m, const oip_limits *lim, bool write)
{
    oip_request *r = malloc(sizeof *r);
    check(r != NULL, "malloc", NULL);
    usher_error err;
    memset(&err, 0, sizeof err);
    int rc = gm_infer_request((const Inference__ModelInferRequest *)m, lim, r, &err);
    if (rc < 0) {
        check_refusal(rc, &err);
        check(r->n_in == 0 && r->n_out == 0, "a refusal left tensors behind", &err);
    } else {
        check(err.code == USHER_OK, "success with an error code", &err);
        check_tensors(r, lim);
        if (write)
            check_response(r);
        oip_request_free(r);
    }
    free(r);
    return rc;
}

int usher_fuzz_grpc_one(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    static const ProtobufCMessageDescriptor *const types[8] = {
        &inference__model_infer_request__descriptor, &inference__model_infer_request__descriptor,
        &inference__model_infer_request__descriptor, &inference__model_infer_request__descriptor,
        &inference__model_metadata_request__descriptor, &inference__model_ready_request__descriptor,
        &inference__model_statistics_request__descriptor,
        &inference__repository_index_request__descriptor};
    const ProtobufCMessageDescriptor *d = types[mode & 7];
    bool tight = mode & 8;
    size_t live = us_alloc_live_bytes();
    usher_error err;
    memset(&err, 0, sizeof err);
    ProtobufCMessage *m = gm_unpack(d, data, size, tight ? 4096 : GM_ALLOC_BUDGET(size), &err);
    if (!m) {
        check_refusal(err.code, &err);
    } else {
        if (d == &inference__model_metadata_request__descriptor) {
            const Inference__ModelMetadataRequest *q = (const void *)m;
            check(q->name && q->version, "strings missing", NULL);
        } else if (d == &inference__model_infer_request__descriptor) {
            oip_limits def = oip_default_limits(), lim = def;
            if (tight) {
                lim.max_elements = 32;
                lim.max_tensor_bytes = 128;
                lim.max_total_bytes = 256;
            }
            int rc = infer_once(m, &lim, true);
            if (tight && rc == USHER_OK)
                check(infer_once(m, &def, false) == USHER_OK,
                      "tight limits accepted what the defaults refuse", NULL);
        }
        gm_free(m);
    }
    check(us_alloc_live_bytes() == live, "the gRPC decoder leaked", NULL);
    return 0;
}

#ifdef USHER_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return usher_fuzz_grpc_one(data, size);
}
#endif
