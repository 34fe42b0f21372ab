/*
 * test_serve_grpc_msg.c - the gRPC front end's messages (src/server/grpc_msg.c):
 * ModelInferRequest bytes into tensors (typed contents of every datatype, raw
 * contents, BYTES), every refusal naming its field, the wire check (NUL and
 * invalid UTF-8 in strings, truncated lengths, bad varints, groups), the
 * allocation budget, the response read back by protobuf-c; then built seeds and
 * 100,000 mutants of them through the fuzz body (fuzz/fuzz_grpc.c), whose
 * contract aborts on a violation. The server end to end is
 * tests/test_serve_grpc.sh.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fuzz_grpc.h"
#include "server/grpc_msg.h"
#include "test.h"

static uint64_t rng_state = 0x6772706373656564ULL;

typedef Inference__ModelInferRequest Req;
typedef Inference__ModelInferRequest__InferInputTensor In;

/* pack m into a fresh buffer (malloc) */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*len ? *len : 1);
    protobuf_c_message_pack(m, b);
    return b;
}

/* decode bytes as the front end does: 0 or the refusal code, msg in err */
static int decode(const uint8_t *b, size_t len, oip_request *out, usher_error *e)
{
    memset(out, 0, sizeof *out);
    ProtobufCMessage *m =
        gm_unpack(&inference__model_infer_request__descriptor, b, len, (1u << 24), e);
    if (!m)
        return e->code;
    oip_limits lim = oip_default_limits();
    int rc = gm_infer_request((const Req *)m, &lim, out, e);
    gm_free(m);
    return rc;
}

static int decode_req(const Req *r, oip_request *out, usher_error *e)
{
    size_t len;
    uint8_t *b = pack(&r->base, &len);
    int rc = decode(b, len, out, e);
    free(b);
    return rc;
}

TEST(every_datatype_from_typed_contents)
{
    int64_t shape[2] = {2, 2};
    In t = INFERENCE__MODEL_INFER_REQUEST__INFER_INPUT_TENSOR__INIT;
    Inference__InferTensorContents c = INFERENCE__INFER_TENSOR_CONTENTS__INIT;
    t.name = "x";
    t.n_shape = 2;
    t.shape = shape;
    t.contents = &c;
    In *tp = &t;
    Req r = INFERENCE__MODEL_INFER_REQUEST__INIT;
    r.n_inputs = 1;
    r.inputs = &tp;
    oip_request o;
    usher_error err;

    int32_t i32[4] = {-128, 127, -1, 0};
    c.n_int_contents = 4;
    c.int_contents = i32;
    t.datatype = "INT8";
    ASSERT_OK(decode_req(&r, &o, &err));
    ASSERT_EQ_U64(o.in[0].bytes, 4);
    ASSERT_EQ_INT(((int8_t *)o.in[0].data)[0], -128);
    ASSERT_EQ_INT(((int8_t *)o.in[0].data)[1], 127);
    oip_request_free(&o);
    t.datatype = "INT32";
    ASSERT_OK(decode_req(&r, &o, &err));
    ASSERT_EQ_U64(o.in[0].bytes, 16);
    ASSERT_EQ_INT(((int32_t *)o.in[0].data)[2], -1);
    oip_request_free(&o);
    i32[0] = 128; /* out of INT8's range: named */
    t.datatype = "INT8";
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "int_contents[0] is 128, out of range for INT8");
    ASSERT_EQ_U64(o.n_in, 0);
    c.n_int_contents = 0;

    uint32_t u32[4] = {0, 65535, 7, 1};
    c.n_uint_contents = 4;
    c.uint_contents = u32;
    t.datatype = "UINT16";
    ASSERT_OK(decode_req(&r, &o, &err));
    ASSERT_EQ_INT(((uint16_t *)o.in[0].data)[1], 65535);
    oip_request_free(&o);
    t.datatype = "UINT8";
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "uint_contents[1] is 65535, out of range for UINT8");
    c.n_uint_contents = 0;

    float f[4] = {1.5f, -2.25f, INFINITY, 0};
    c.n_fp32_contents = 4;
    c.fp32_contents = f;
    t.datatype = "FP32";
    ASSERT_OK(decode_req(&r, &o, &err));
    ASSERT(memcmp(o.in[0].data, f, 16) == 0);
    oip_request_free(&o);
    /* a value in the field of another datatype */
    t.datatype = "FP64";
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "input 'x': contents holds values other than fp64_contents");
    double d[4] = {1e300, -1, 0.5, 2};
    c.n_fp32_contents = 0;
    c.n_fp64_contents = 4;
    c.fp64_contents = d;
    ASSERT_OK(decode_req(&r, &o, &err));
    ASSERT(memcmp(o.in[0].data, d, 32) == 0);
    oip_request_free(&o);
    /* FP16 travels only raw */
    t.datatype = "FP16";
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "raw_input_contents");
    c.n_fp64_contents = 0;

    int64_t i64[4] = {INT64_MIN, INT64_MAX, 0, 1};
    c.n_int64_contents = 4;
    c.int64_contents = i64;
    t.datatype = "INT64";
    ASSERT_OK(decode_req(&r, &o, &err));
    ASSERT(memcmp(o.in[0].data, i64, 32) == 0);
    oip_request_free(&o);
    /* fewer values than the shape needs */
    c.n_int64_contents = 3;
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "contents.int64_contents has 3 values, shape needs 4");
    c.n_int64_contents = 0;

    protobuf_c_boolean bl[4] = {1, 0, 1, 1};
    c.n_bool_contents = 4;
    c.bool_contents = bl;
    t.datatype = "BOOL";
    ASSERT_OK(decode_req(&r, &o, &err));
    ASSERT(memcmp(o.in[0].data, "\1\0\1\1", 4) == 0);
    oip_request_free(&o);
    c.n_bool_contents = 0;

    ProtobufCBinaryData by[4] = {{2, (uint8_t *)"ab"}, {0, NULL}, {1, (uint8_t *)"\0"},
                                 {3, (uint8_t *)"xyz"}};
    c.n_bytes_contents = 4;
    c.bytes_contents = by;
    t.datatype = "BYTES";
    ASSERT_OK(decode_req(&r, &o, &err));
    ASSERT_EQ_U64(o.in[0].bytes, 4 * 4 + 6);
    ASSERT(memcmp(o.in[0].data, "\2\0\0\0ab\0\0\0\0\1\0\0\0\0\3\0\0\0xyz", 22) == 0);
    oip_request_free(&o);
    ASSERT_EQ_U64(us_err_missing_detail_count(), 0);
}

TEST(raw_contents_exact_and_short)
{
    int64_t shape[2] = {1, 4};
    In t = INFERENCE__MODEL_INFER_REQUEST__INFER_INPUT_TENSOR__INIT;
    t.name = "x";
    t.datatype = "FP32";
    t.n_shape = 2;
    t.shape = shape;
    In *tp = &t;
    float f[5] = {1, 2, 3, 4, 5}; /* one more than the shape needs: the long case */
    ProtobufCBinaryData raw = {16, (uint8_t *)f};
    Req r = INFERENCE__MODEL_INFER_REQUEST__INIT;
    r.n_inputs = 1;
    r.inputs = &tp;
    r.n_raw_input_contents = 1;
    r.raw_input_contents = &raw;
    r.id = "req-7";
    oip_request o;
    usher_error err;
    ASSERT_OK(decode_req(&r, &o, &err));
    ASSERT(o.has_id);
    ASSERT_STR_EQ(o.id, "req-7");
    ASSERT(memcmp(o.in[0].data, f, 16) == 0);
    oip_request_free(&o);
    raw.len = 12; /* short */
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "input 'x': raw_input_contents[0] is 12 bytes, its shape [1,4] of "
                           "FP32 needs 16");
    raw.len = 20; /* long */
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    /* raw for one input of two */
    In t2 = t;
    t2.name = "y";
    In *two[2] = {&t, &t2};
    r.n_inputs = 2;
    r.inputs = two;
    raw.len = 16;
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "raw_input_contents has 1 entries for 2 inputs");
    /* the same name twice */
    t2.name = "x";
    ProtobufCBinaryData raws[2] = {raw, raw};
    r.n_raw_input_contents = 2;
    r.raw_input_contents = raws;
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "inputs[1]: input 'x' is given twice");
    /* BYTES raw: the u32 layout checked */
    r.n_inputs = 1;
    r.inputs = &tp;
    r.n_raw_input_contents = 1;
    r.raw_input_contents = &raw;
    t.datatype = "BYTES";
    shape[1] = 2;
    ProtobufCBinaryData braw = {9, (uint8_t *)"\1\0\0\0a\0\0\0\0"};
    r.raw_input_contents = &braw;
    ASSERT_OK(decode_req(&r, &o, &err));
    oip_request_free(&o);
    braw.len = 8; /* the second length cut */
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "raw_input_contents[0]");
}

TEST(request_fields_checked)
{
    int64_t shape[2] = {1, 1};
    In t = INFERENCE__MODEL_INFER_REQUEST__INFER_INPUT_TENSOR__INIT;
    Inference__InferTensorContents c = INFERENCE__INFER_TENSOR_CONTENTS__INIT;
    float f = 1;
    c.n_fp32_contents = 1;
    c.fp32_contents = &f;
    t.name = "x";
    t.datatype = "FP32";
    t.n_shape = 2;
    t.shape = shape;
    t.contents = &c;
    In *tp = &t;
    Req r = INFERENCE__MODEL_INFER_REQUEST__INIT;
    r.n_inputs = 1;
    r.inputs = &tp;
    oip_request o;
    usher_error err;
    /* the timeout parameter: int64 or uint64 microseconds */
    Inference__InferParameter p = INFERENCE__INFER_PARAMETER__INIT;
    p.parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM;
    p.int64_param = 2500;
    Inference__ModelInferRequest__ParametersEntry pe =
        INFERENCE__MODEL_INFER_REQUEST__PARAMETERS_ENTRY__INIT;
    pe.key = "timeout";
    pe.value = &p;
    Inference__ModelInferRequest__ParametersEntry *pep = &pe;
    r.n_parameters = 1;
    r.parameters = &pep;
    ASSERT_OK(decode_req(&r, &o, &err));
    ASSERT(o.has_timeout);
    ASSERT_EQ_U64(o.timeout_us, 2500);
    oip_request_free(&o);
    p.int64_param = -1;
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "parameters[\"timeout\"]");
    r.n_parameters = 0;
    /* shapes */
    shape[1] = -1;
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "input 'x': shape[1] is -1");
    int64_t big[3] = {1ll << 40, 1ll << 40, 1ll << 40};
    t.shape = big;
    t.n_shape = 3;
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_LIMIT);
    int64_t deep[17] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    t.shape = deep;
    t.n_shape = 17;
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "shape has 17 dims, at most 16");
    t.shape = shape;
    t.n_shape = 2;
    shape[1] = 1;
    /* names and datatypes */
    t.datatype = "fp32";
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "unknown datatype \"fp32\"");
    t.datatype = "FP32";
    t.name = "";
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "inputs[0]: name is empty");
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    t.name = longname;
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "name is 199 bytes");
    t.name = "x";
    r.n_inputs = 0;
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "inputs is empty");
    r.n_inputs = 1;
    /* shared memory: unsupported, said so */
    Inference__InferParameter sp = INFERENCE__INFER_PARAMETER__INIT;
    sp.parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM;
    sp.string_param = "region";
    Inference__ModelInferRequest__InferInputTensor__ParametersEntry se =
        INFERENCE__MODEL_INFER_REQUEST__INFER_INPUT_TENSOR__PARAMETERS_ENTRY__INIT;
    se.key = "shared_memory_region";
    se.value = &sp;
    Inference__ModelInferRequest__InferInputTensor__ParametersEntry *sep = &se;
    t.n_parameters = 1;
    t.parameters = &sep;
    ASSERT_EQ_INT(decode_req(&r, &o, &err), USHER_ERR_UNSUPPORTED);
    ASSERT_CONTAINS(err.msg, "shared memory");
    ASSERT_EQ_U64(us_err_missing_detail_count(), 0);
}

TEST(wire_check_refuses_what_c_strings_would_hide)
{
    usher_error err;
    const ProtobufCMessageDescriptor *md = &inference__model_metadata_request__descriptor;
    /* name = "mlp\0x": protobuf-c would hand back "mlp" */
    ASSERT_EQ_INT(gm_wire_check(md, (const uint8_t *)"\x0a\x05mlp\0x", 7, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "ModelMetadataRequest.name: not a UTF-8 string without NUL");
    ASSERT_OK(gm_wire_check(md, (const uint8_t *)"\x0a\x03mlp", 5, &err));
    ASSERT_EQ_INT(gm_wire_check(md, (const uint8_t *)"\x0a\x04\xc3\xa9t\xc3", 6, &err),
                  USHER_ERR_PARSE); /* a cut UTF-8 sequence */
    ASSERT_OK(gm_wire_check(md, (const uint8_t *)"\x0a\x03\xc3\xa9t", 5, &err));
    ASSERT_EQ_INT(gm_wire_check(md, (const uint8_t *)"\x0a\x02\xc0\xaf", 4, &err),
                  USHER_ERR_PARSE); /* overlong '/' */
    ASSERT_EQ_INT(gm_wire_check(md, (const uint8_t *)"\x0a\x03\xed\xa0\x80", 5, &err),
                  USHER_ERR_PARSE); /* a surrogate */
    /* lengths, varints, field 0, groups */
    ASSERT_EQ_INT(gm_wire_check(md, (const uint8_t *)"\x0a\x7fmlp", 5, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "127 bytes, only 3 left");
    ASSERT_EQ_INT(gm_wire_check(md, (const uint8_t *)"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02",
                                11, &err),
                  USHER_ERR_PARSE); /* 65 bits */
    ASSERT_OK(gm_wire_check(md, (const uint8_t *)"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                            11, &err)); /* field 2 (a string) as a varint: protobuf-c's unpack refuses it */
    ASSERT_EQ_INT(gm_wire_check(md, (const uint8_t *)"\x00\x01", 2, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "field number 0");
    ASSERT_EQ_INT(gm_wire_check(md, (const uint8_t *)"\x0b\x0c", 2, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "wire type 3");
    ASSERT_EQ_INT(gm_wire_check(md, (const uint8_t *)"\x09\x01\x02", 3, &err), USHER_ERR_PARSE);
    /* nested: a NUL in an input's name inside ModelInferRequest.inputs */
    const uint8_t nested[] = {0x2a, 0x05, 0x0a, 0x03, 'x', 0, 'y'};
    ASSERT_EQ_INT(gm_wire_check(&inference__model_infer_request__descriptor, nested,
                                sizeof nested, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "InferInputTensor.name");
    /* a wire type the field does not have: protobuf-c refuses it, said as PARSE */
    ProtobufCMessage *m = gm_unpack(md, (const uint8_t *)"\x0d\0\0\0\0", 5, 1 << 20, &err);
    ASSERT(m == NULL);
    ASSERT_EQ_INT(err.code, USHER_ERR_PARSE);
}

TEST(allocation_budget)
{
    /* 10,000 empty outputs: about 20 KB on the wire, far more once unpacked */
    size_t n = 10000, len = n * 2;
    uint8_t *b = malloc(len);
    for (size_t i = 0; i < n; i++) {
        b[2 * i] = 0x32; /* field 6, length-delimited */
        b[2 * i + 1] = 0;
    }
    usher_error err;
    size_t live = us_alloc_live_bytes();
    ProtobufCMessage *m = gm_unpack(&inference__model_infer_request__descriptor, b, len, 64 << 10, &err);
    ASSERT(m == NULL);
    ASSERT_EQ_INT(err.code, USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, "more than 65536 bytes");
    ASSERT_EQ_U64(us_alloc_live_bytes(), live);
    m = gm_unpack(&inference__model_infer_request__descriptor, b, len, 16 << 20, &err);
    ASSERT(m != NULL);
    oip_request o;
    oip_limits lim = oip_default_limits();
    /* no inputs; and 10,000 outputs would be over OIP_MAX_TENSORS anyway */
    ASSERT_EQ_INT(gm_infer_request((const Req *)m, &lim, &o, &err), USHER_ERR_PARSE);
    gm_free(m);
    ASSERT_EQ_U64(us_alloc_live_bytes(), live);
    free(b);
}

/* token ids as typed int64 contents: 1 byte each on the wire, 8 in protobuf-c's array; the
 * server's budget (GM_ALLOC_BUDGET) lets such a message through */
TEST(small_int64_values_within_budget)
{
    size_t n = 300000;
    int64_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int64_t)(i % 100);
    int64_t shape[2] = {1, (int64_t)n};
    In t = INFERENCE__MODEL_INFER_REQUEST__INFER_INPUT_TENSOR__INIT;
    Inference__InferTensorContents c = INFERENCE__INFER_TENSOR_CONTENTS__INIT;
    c.n_int64_contents = n;
    c.int64_contents = ids;
    t.name = "input_ids";
    t.datatype = "INT64";
    t.n_shape = 2;
    t.shape = shape;
    t.contents = &c;
    In *tp = &t;
    Req r = INFERENCE__MODEL_INFER_REQUEST__INIT;
    r.n_inputs = 1;
    r.inputs = &tp;
    size_t len;
    uint8_t *b = pack(&r.base, &len);
    ASSERT(len < n + 100); /* about a byte a value */
    usher_error err;
    ProtobufCMessage *m =
        gm_unpack(&inference__model_infer_request__descriptor, b, len, GM_ALLOC_BUDGET(len), &err);
    if (!m)
        FAIL_("a %zu-byte message of small int64 values refused: %s", len, err.msg);
    oip_request o;
    oip_limits lim = oip_default_limits();
    ASSERT_OK(gm_infer_request((const Req *)m, &lim, &o, &err));
    ASSERT_EQ_U64(o.in[0].bytes, n * 8);
    ASSERT(memcmp(o.in[0].data, ids, n * 8) == 0);
    oip_request_free(&o);
    gm_free(m);
    free(b);
    free(ids);
}

TEST(response_reads_back)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    int64_t d[2] = {2, 3};
    us_tensor out[2];
    out[0] = test_tensor("y", US_DT_FP32, 2, d, x, sizeof x);
    out[1] = test_tensor("z", US_DT_INT8, 1, d, "ab", 2);
    oip_request req;
    memset(&req, 0, sizeof req);
    req.has_id = true;
    snprintf(req.id, sizeof req.id, "q1");
    uint8_t *buf;
    size_t len;
    usher_error err;
    ASSERT_OK(gm_infer_response(&req, "m", "3", out, 2, 1 << 20, &buf, &len, &err));
    Inference__ModelInferResponse *p = inference__model_infer_response__unpack(NULL, len, buf);
    ASSERT(p);
    ASSERT_STR_EQ(p->model_name, "m");
    ASSERT_STR_EQ(p->model_version, "3");
    ASSERT_STR_EQ(p->id, "q1");
    ASSERT_EQ_U64(p->n_outputs, 2);
    ASSERT_STR_EQ(p->outputs[0]->datatype, "FP32");
    ASSERT_EQ_U64(p->outputs[0]->n_shape, 2);
    ASSERT_EQ_INT(p->outputs[0]->shape[1], 3);
    ASSERT_EQ_U64(p->raw_output_contents[0].len, 24);
    ASSERT(memcmp(p->raw_output_contents[0].data, x, 24) == 0);
    inference__model_infer_response__free_unpacked(p, NULL);
    us_free(buf);
    /* one output asked for by name; one the model lacks */
    req.n_out = 1;
    snprintf(req.out[0].name, sizeof req.out[0].name, "z");
    ASSERT_OK(gm_infer_response(&req, "m", "3", out, 2, 1 << 20, &buf, &len, &err));
    p = inference__model_infer_response__unpack(NULL, len, buf);
    ASSERT(p && p->n_outputs == 1 && strcmp(p->outputs[0]->name, "z") == 0);
    inference__model_infer_response__free_unpacked(p, NULL);
    us_free(buf);
    snprintf(req.out[0].name, sizeof req.out[0].name, "w");
    ASSERT_EQ_INT(gm_infer_response(&req, "m", "3", out, 2, 1 << 20, &buf, &len, &err),
                  USHER_ERR_NOT_FOUND);
    ASSERT_CONTAINS(err.msg, "output 'w' was requested");
    /* over the answer's limit */
    req.n_out = 0;
    ASSERT_EQ_INT(gm_infer_response(&req, "m", "3", out, 2, 16, &buf, &len, &err), USHER_ERR_LIMIT);
}

/* ---- seeds and mutants through the fuzz body ---- */
#define N_SEEDS 12

static size_t seed_infer(uint8_t *out, size_t cap, int kind)
{
    static const char *const dts[] = {"FP32", "INT64", "BYTES", "UINT8", "BOOL", "FP64"};
    int64_t shape[2] = {2, 2};
    In t = INFERENCE__MODEL_INFER_REQUEST__INFER_INPUT_TENSOR__INIT;
    Inference__InferTensorContents c = INFERENCE__INFER_TENSOR_CONTENTS__INIT;
    t.name = kind % 2 ? "input_1" : "x";
    t.datatype = (char *)(uintptr_t)dts[kind % 6];
    t.n_shape = 2;
    t.shape = shape;
    float f[4] = {1, -2, 3.5f, 0};
    int64_t i64[4] = {1, 2, 3, -4};
    uint32_t u[4] = {1, 2, 255, 0};
    protobuf_c_boolean bl[4] = {1, 0, 0, 1};
    double dd[4] = {0.25, 1, 2, 3};
    ProtobufCBinaryData by[4] = {{1, (uint8_t *)"a"}, {0, NULL}, {2, (uint8_t *)"bc"},
                                 {1, (uint8_t *)"d"}};
    ProtobufCBinaryData raw = {16, (uint8_t *)f};
    switch (kind % 6) {
    case 0: c.n_fp32_contents = 4; c.fp32_contents = f; break;
    case 1: c.n_int64_contents = 4; c.int64_contents = i64; break;
    case 2: c.n_bytes_contents = 4; c.bytes_contents = by; break;
    case 3: c.n_uint_contents = 4; c.uint_contents = u; break;
    case 4: c.n_bool_contents = 4; c.bool_contents = bl; break;
    default: c.n_fp64_contents = 4; c.fp64_contents = dd; break;
    }
    Req r = INFERENCE__MODEL_INFER_REQUEST__INIT;
    In *tp = &t;
    r.model_name = "mlp";
    r.id = kind >= 6 ? "id-1" : "";
    r.n_inputs = 1;
    r.inputs = &tp;
    if (kind == 6) { /* raw */
        t.datatype = "FP32";
        r.n_raw_input_contents = 1;
        r.raw_input_contents = &raw;
    } else {
        t.contents = &c;
    }
    Inference__ModelInferRequest__InferRequestedOutputTensor o =
        INFERENCE__MODEL_INFER_REQUEST__INFER_REQUESTED_OUTPUT_TENSOR__INIT;
    Inference__ModelInferRequest__InferRequestedOutputTensor *op = &o;
    o.name = "y";
    if (kind == 7) {
        r.n_outputs = 1;
        r.outputs = &op;
    }
    Inference__InferParameter p = INFERENCE__INFER_PARAMETER__INIT;
    p.parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM;
    p.int64_param = 1000;
    Inference__ModelInferRequest__ParametersEntry pe =
        INFERENCE__MODEL_INFER_REQUEST__PARAMETERS_ENTRY__INIT;
    Inference__ModelInferRequest__ParametersEntry *pep = &pe;
    pe.key = "timeout";
    pe.value = &p;
    if (kind == 8) {
        r.n_parameters = 1;
        r.parameters = &pep;
    }
    size_t n = protobuf_c_message_get_packed_size(&r.base);
    if (n + 1 > cap)
        return 0;
    out[0] = (uint8_t)(kind == 9 ? 8 : 0); /* ModelInferRequest; kind 9 with tight limits */
    protobuf_c_message_pack(&r.base, out + 1);
    return n + 1;
}

TEST(seeds_and_mutants_through_fuzz_body)
{
    uint8_t store[N_SEEDS][512];
    test_blob seeds[N_SEEDS];
    for (int k = 0; k < 10; k++) {
        seeds[k].p = store[k];
        seeds[k].n = seed_infer(store[k], sizeof store[k], k);
    }
    /* the other message types */
    seeds[10].p = store[10];
    memcpy(store[10], "\x04\x0a\x03mlp\x12\x01\x31", 9);
    seeds[10].n = 9;
    seeds[11].p = store[11];
    memcpy(store[11], "\x07\x10\x01", 3);
    seeds[11].n = 3;
    int accepted = 0;
    for (int k = 0; k < N_SEEDS; k++) {
        usher_fuzz_grpc_one(seeds[k].p, seeds[k].n);
        if (k < 10) {
            oip_request o;
            usher_error err;
            if (decode(seeds[k].p + 1, seeds[k].n - 1, &o, &err) == USHER_OK) {
                accepted++;
                oip_request_free(&o);
            } else {
                FAIL_("seed %d refused: %s", k, err.msg);
            }
        }
    }
    ASSERT_EQ_INT(accepted, 10);
    static const char *const words[] = {"\x0a\x00", "\x2a\x00", "\x3a\x00", "\xff\xff\xff\xff\x0f",
                                        "\x80", "\x00", "\x12\x04INT8", "\x12\x05" "BYTES",
                                        "\x1a\x02\x01\x02", "\x08\x01"};
    test_mutator mu = {"\x0a\x12\x1a\x22\x2a\x32\x3a\x08\x10\x18\x00\x80\xff", words,
                       sizeof words / sizeof words[0], 16, &rng_state};
    const int rounds = 100000;
    uint8_t m[2048];
    int ok = 0, refused = 0;
    for (int r = 0; r < rounds; r++) {
        const test_blob *a = &seeds[test_splitmix(&rng_state) % N_SEEDS];
        const test_blob *b = &seeds[test_splitmix(&rng_state) % N_SEEDS];
        test_blob mut = {.p = m, .n = test_mutate(&mu, a, b, m, sizeof m)};
        usher_fuzz_grpc_one(mut.p, mut.n);
        if (mut.n > 0 && (mut.p[0] & 7) < 4) {
            oip_request o;
            usher_error err;
            if (decode(mut.p + 1, mut.n - 1, &o, &err) == USHER_OK) {
                ok++;
                oip_request_free(&o);
            } else {
                refused++;
            }
        }
    }
    printf("  %d mutants: %d infer requests accepted, %d refused\n", rounds, ok, refused);
    ASSERT(ok > 5000 && refused > 20000);
    ASSERT_EQ_U64(us_err_missing_detail_count(), 0);
}

/* fuzz/corpus-grpc (scripts/fuzz.sh's seeds): every file through the fuzz body, and each
 * message it holds accepted by the decoder */
TEST(corpus_through_fuzz_body)
{
    test_blob files[64];
    int n = test_load_dir(test_path(test_source_dir(), "fuzz/corpus-grpc"), "", files, 64);
    ASSERT(n >= 10);
    for (int i = 0; i < n; i++) {
        ASSERT(files[i].n >= 1);
        usher_fuzz_grpc_one(files[i].p, files[i].n);
        if ((files[i].p[0] & 7) < 4) {
            oip_request o;
            usher_error err;
            if (decode(files[i].p + 1, files[i].n - 1, &o, &err) != USHER_OK)
                FAIL_("corpus file %s refused: %s", files[i].name, err.msg);
            oip_request_free(&o);
        }
    }
    test_blobs_free(files, n);
}

TEST_MAIN(TEST_ENTRY(every_datatype_from_typed_contents), TEST_ENTRY(corpus_through_fuzz_body), TEST_ENTRY(raw_contents_exact_and_short),
          TEST_ENTRY(request_fields_checked), TEST_ENTRY(wire_check_refuses_what_c_strings_would_hide),
          TEST_ENTRY(allocation_budget), TEST_ENTRY(small_int64_values_within_budget),
          TEST_ENTRY(response_reads_back),
          TEST_ENTRY(seeds_and_mutants_through_fuzz_body))
