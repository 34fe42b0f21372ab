/*
 * grpc_msg.c - KServe v2 / Triton gRPC messages to and from usher's types
 * (layer 8, prefix gm_). See grpc_msg.h for the contract.
 *
 * The protobuf wire format, as far as gm_wire_check reads it: a message is
 * a sequence of (key varint, value); key = field << 3 | wire type; wire
 * type 0 is a varint (at most 10 bytes), 1 eight bytes, 5 four bytes, 2 a
 * varint length then that many bytes (a string, bytes, a nested message or
 * a packed repeated scalar); groups (3, 4) are refused, as proto3 has none.
 * Field 0 is invalid. A length-delimited field the schema declares as a
 * string must hold UTF-8 without NUL; one declared as a message is checked
 * as that message, so the walk's depth is the schema's (at most 5 here;
 * capped at GM_MAX_DEPTH anyway).
 *
 * Invariants: every length is compared with the bytes left before it is
 * used; every count (elements, bytes) is computed in 64 bits with overflow
 * checks before anything is allocated.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "server/grpc_msg.h"

#define GM_MAX_DEPTH 32
#define GM_HDR 16 /* the allocator's size header; keeps 16-byte alignment */

/* ---- the wire walk ------------------------------------------------------------------- */
static bool varint(const uint8_t *b, size_t len, size_t *pos, uint64_t *v)
{
    uint64_t r = 0;
    for (int s = 0; s <= 63; s += 7) {
        if (*pos >= len)
            return false;
        uint8_t c = b[(*pos)++];
        if (s == 63 && c > 1)
            return false; /* past 64 bits */
        r |= (uint64_t)(c & 0x7f) << s;
        if (!(c & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

static bool utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) {
            k = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        /* overlong forms, surrogates, past U+10FFFF */
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += k + 1;
    }
    return true;
}

static int wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *b, size_t len,
                      int depth, usher_error *err)
{
    if (depth > GM_MAX_DEPTH)
        return us_err_set(err, USHER_ERR_PARSE, "%s: nested more than %d deep", d->short_name,
                          GM_MAX_DEPTH);
    size_t pos = 0;
    while (pos < len) {
        uint64_t key, v;
        if (!varint(b, len, &pos, &key))
            return us_err_set(err, USHER_ERR_PARSE, "%s: a field key runs past the message's "
                                                    "end or past 64 bits", d->short_name);
        uint64_t field = key >> 3;
        unsigned wt = (unsigned)(key & 7);
        if (field == 0 || field > 536870911u)
            return us_err_set(err, USHER_ERR_PARSE, "%s: field number %" PRIu64 " is invalid",
                              d->short_name, field);
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(d, (unsigned)field);
        const char *fname = fd ? fd->name : "(unknown)";
        switch (wt) {
        case 0:
            if (!varint(b, len, &pos, &v))
                return us_err_set(err, USHER_ERR_PARSE, "%s.%s: a varint runs past the "
                                  "message's end or past 64 bits", d->short_name, fname);
            break;
        case 1:
        case 5: {
            size_t w = wt == 1 ? 8 : 4;
            if (len - pos < w)
                return us_err_set(err, USHER_ERR_PARSE, "%s.%s: %zu bytes, only %zu left",
                                  d->short_name, fname, w, len - pos);
            pos += w;
            break;
        }
        case 2: {
            if (!varint(b, len, &pos, &v))
                return us_err_set(err, USHER_ERR_PARSE, "%s.%s: a length runs past the "
                                  "message's end", d->short_name, fname);
            if (v > len - pos)
                return us_err_set(err, USHER_ERR_PARSE, "%s.%s: %" PRIu64 " bytes, only %zu "
                                  "left in the message", d->short_name, fname, v, len - pos);
            const uint8_t *p = b + pos;
            size_t n = (size_t)v;
            pos += n;
            if (!fd)
                break;
            if (fd->type == PROTOBUF_C_TYPE_STRING && !utf8_ok(p, n))
                return us_err_set(err, USHER_ERR_PARSE, "%s.%s: not a UTF-8 string without "
                                  "NUL characters", d->short_name, fname);
            if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                int rc = wire_check(fd->descriptor, p, n, depth + 1, err);
                if (rc < 0)
                    return rc;
            }
            break;
        }
        default:
            return us_err_set(err, USHER_ERR_PARSE, "%s.%s: wire type %u is not allowed here",
                              d->short_name, fname, wt);
        }
    }
    return USHER_OK;
}

int gm_wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                  usher_error *err)
{
    return wire_check(d, buf, len, 0, err);
}

/* ---- a counting allocator for protobuf-c --------------------------------------------- */
typedef struct budget {
    size_t used, max;
    bool hit; /* an allocation went over max */
    bool oom; /* us_malloc failed */
} budget;

static void *ga_alloc(void *data, size_t size)
{
    budget *b = data;
    if (size > SIZE_MAX - GM_HDR)
        return NULL;
    if (b && size > b->max - b->used) {
        b->hit = true;
        return NULL;
    }
    size_t *p = us_malloc(size + GM_HDR);
    if (!p) {
        if (b)
            b->oom = true;
        return NULL;
    }
    p[0] = size;
    if (b)
        b->used += size;
    return (char *)p + GM_HDR;
}

static void ga_free(void *data, void *ptr)
{
    if (!ptr)
        return;
    size_t *p = (size_t *)(void *)((char *)ptr - GM_HDR);
    budget *b = data;
    if (b)
        b->used -= p[0];
    us_free(p);
}

/* frees what gm_unpack made (its budget no longer counts) */
static ProtobufCAllocator free_alloc = {ga_alloc, ga_free, NULL};

ProtobufCMessage *gm_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                            size_t max_alloc, usher_error *err)
{
    if (gm_wire_check(d, buf, len, err) < 0)
        return NULL;
    budget b = {0, max_alloc, false, false};
    ProtobufCAllocator a = {ga_alloc, ga_free, &b};
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &a, len, buf);
    if (!m) {
        if (b.hit)
            us_err_set(err, USHER_ERR_LIMIT, "%s: decoding it needs more than %zu bytes",
                       d->short_name, max_alloc);
        else if (b.oom)
            us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory", d->short_name);
        else
            us_err_set(err, USHER_ERR_PARSE, "%s: not a valid message (a field's wire type or "
                       "value does not match its declaration)", d->short_name);
        return NULL;
    }
    return m;
}

void gm_free(ProtobufCMessage *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, &free_alloc);
}

int gm_pack(const ProtobufCMessage *m, uint8_t **buf, size_t *len, usher_error *err)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    *buf = us_malloc(n ? n : 1);
    if (!*buf)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory for a %zu-byte answer", n);
    *len = protobuf_c_message_pack(m, *buf);
    return USHER_OK;
}

/* ---- ModelInferRequest ----------------------------------------------------------------- */

/* a parameter map's entries, as protoc-c lays them out for every map<string, InferParameter> */
typedef struct param_entry {
    ProtobufCMessage base;
    char *key;
    Inference__InferParameter *value;
} param_entry;
_Static_assert(sizeof(param_entry) == sizeof(Inference__ModelInferRequest__ParametersEntry) &&
                   sizeof(param_entry) ==
                       sizeof(Inference__ModelInferRequest__InferInputTensor__ParametersEntry),
               "map entry layout");

static int check_params(param_entry *const *p, size_t n, const char *what, bool request,
                        oip_request *out, usher_error *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *k = p[i]->key ? p[i]->key : "";
        const Inference__InferParameter *v = p[i]->value;
        if (strncmp(k, "shared_memory_", 14) == 0)
            return us_err_set(err, USHER_ERR_UNSUPPORTED, "%s: shared memory is not supported",
                              what);
        if (strcmp(k, "classification") == 0)
            return us_err_set(err, USHER_ERR_UNSUPPORTED, "%s: classification is not supported",
                              what);
        if (request && strcmp(k, "timeout") == 0) {
            int64_t t = -1;
            if (v && v->parameter_choice_case == INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM)
                t = v->int64_param;
            else if (v && v->parameter_choice_case ==
                              INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_UINT64_PARAM &&
                     v->uint64_param <= INT64_MAX)
                t = (int64_t)v->uint64_param;
            if (t < 0)
                return us_err_set(err, USHER_ERR_PARSE, "%s: parameters[\"timeout\"] must be a "
                                  "non-negative int64 (microseconds)", what);
            out->timeout_us = (uint64_t)t;
            out->has_timeout = true;
        }
    }
    return USHER_OK;
}

/* which typed contents field holds a datatype's values, and its name */
static size_t contents_count(const Inference__InferTensorContents *c, us_dtype t,
                             const char **field)
{
    switch (t) {
    case US_DT_BOOL:
        *field = "bool_contents";
        return c->n_bool_contents;
    case US_DT_INT8:
    case US_DT_INT16:
    case US_DT_INT32:
        *field = "int_contents";
        return c->n_int_contents;
    case US_DT_INT64:
        *field = "int64_contents";
        return c->n_int64_contents;
    case US_DT_UINT8:
    case US_DT_UINT16:
    case US_DT_UINT32:
        *field = "uint_contents";
        return c->n_uint_contents;
    case US_DT_UINT64:
        *field = "uint64_contents";
        return c->n_uint64_contents;
    case US_DT_FP32:
        *field = "fp32_contents";
        return c->n_fp32_contents;
    case US_DT_FP64:
        *field = "fp64_contents";
        return c->n_fp64_contents;
    case US_DT_BYTES:
        *field = "bytes_contents";
        return c->n_bytes_contents;
    default:
        *field = NULL;
        return 0;
    }
}

static size_t contents_total(const Inference__InferTensorContents *c)
{
    return c->n_bool_contents + c->n_int_contents + c->n_int64_contents + c->n_uint_contents +
           c->n_uint64_contents + c->n_fp32_contents + c->n_fp64_contents + c->n_bytes_contents;
}

/* typed contents into t->data (t's dtype and shape set, n elements) */
static int from_contents(const Inference__InferTensorContents *c, us_tensor *t, uint64_t n,
                         const oip_limits *lim, uint64_t *total, const char *what,
                         usher_error *err)
{
    const char *field = NULL;
    size_t have = c ? contents_count(c, t->dtype, &field) : 0;
    if (t->dtype == US_DT_FP16 || t->dtype == US_DT_BF16)
        return us_err_set(err, USHER_ERR_PARSE, "%s: datatype %s has no typed contents: send it "
                          "in raw_input_contents", what, us_dtype_name(t->dtype));
    if (c && contents_total(c) != have)
        return us_err_set(err, USHER_ERR_PARSE, "%s: contents holds values other than %s, the "
                          "field of datatype %s", what, field, us_dtype_name(t->dtype));
    if (have != n)
        return us_err_set(err, USHER_ERR_PARSE, "%s: contents.%s has %zu values, shape needs "
                          "%" PRIu64, what, field, have, n);
    uint64_t bytes = 0;
    if (t->dtype == US_DT_BYTES) {
        for (size_t i = 0; i < have; i++) {
            uint64_t l = c->bytes_contents[i].len;
            if (l > UINT32_MAX || bytes > UINT64_MAX - 4 - l)
                return us_err_set(err, USHER_ERR_LIMIT, "%s: contents.bytes_contents[%zu] is "
                                  "%" PRIu64 " bytes, too long", what, i, l);
            bytes += 4 + l;
        }
    } else {
        bytes = n * us_dtype_size(t->dtype); /* n <= max_elements: no overflow */
    }
    if (bytes > lim->max_tensor_bytes)
        return us_err_set(err, USHER_ERR_LIMIT, "%s: %" PRIu64 " bytes, more than the limit of "
                          "%" PRIu64, what, bytes, lim->max_tensor_bytes);
    if (bytes > lim->max_total_bytes - *total)
        return us_err_set(err, USHER_ERR_LIMIT, "%s: the inputs together are over %" PRIu64
                          " bytes", what, lim->max_total_bytes);
    *total += bytes;
    uint8_t *d = us_malloc(bytes ? (size_t)bytes : 1);
    if (!d)
        return us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory for %" PRIu64 " bytes", what,
                          bytes);
    t->data = d;
    t->bytes = bytes;
    for (size_t i = 0; i < have; i++) {
        int64_t s = 0;
        uint64_t u = 0;
        switch (t->dtype) {
        case US_DT_BOOL:
            d[i] = c->bool_contents[i] ? 1 : 0;
            break;
        case US_DT_INT8:
        case US_DT_INT16:
        case US_DT_INT32:
            s = c->int_contents[i];
            if ((t->dtype == US_DT_INT8 && (s < INT8_MIN || s > INT8_MAX)) ||
                (t->dtype == US_DT_INT16 && (s < INT16_MIN || s > INT16_MAX)))
                return us_err_set(err, USHER_ERR_PARSE, "%s: contents.int_contents[%zu] is %" PRId64
                                  ", out of range for %s", what, i, s, us_dtype_name(t->dtype));
            if (t->dtype == US_DT_INT8) {
                int8_t x = (int8_t)s;
                memcpy(d + i, &x, 1);
            } else if (t->dtype == US_DT_INT16) {
                int16_t x = (int16_t)s;
                memcpy(d + 2 * i, &x, 2);
            } else {
                int32_t x = (int32_t)s;
                memcpy(d + 4 * i, &x, 4);
            }
            break;
        case US_DT_INT64:
            memcpy(d + 8 * i, &c->int64_contents[i], 8);
            break;
        case US_DT_UINT8:
        case US_DT_UINT16:
        case US_DT_UINT32:
            u = c->uint_contents[i];
            if ((t->dtype == US_DT_UINT8 && u > UINT8_MAX) ||
                (t->dtype == US_DT_UINT16 && u > UINT16_MAX))
                return us_err_set(err, USHER_ERR_PARSE, "%s: contents.uint_contents[%zu] is %" PRIu64
                                  ", out of range for %s", what, i, u, us_dtype_name(t->dtype));
            if (t->dtype == US_DT_UINT8) {
                d[i] = (uint8_t)u;
            } else if (t->dtype == US_DT_UINT16) {
                uint16_t x = (uint16_t)u;
                memcpy(d + 2 * i, &x, 2);
            } else {
                uint32_t x = (uint32_t)u;
                memcpy(d + 4 * i, &x, 4);
            }
            break;
        case US_DT_UINT64:
            memcpy(d + 8 * i, &c->uint64_contents[i], 8);
            break;
        case US_DT_FP32:
            memcpy(d + 4 * i, &c->fp32_contents[i], 4);
            break;
        case US_DT_FP64:
            memcpy(d + 8 * i, &c->fp64_contents[i], 8);
            break;
        default:
            break;
        }
    }
    if (t->dtype == US_DT_BYTES) {
        size_t o = 0;
        for (size_t i = 0; i < have; i++) {
            uint32_t l = (uint32_t)c->bytes_contents[i].len;
            memcpy(d + o, &l, 4);
            if (l)
                memcpy(d + o + 4, c->bytes_contents[i].data, l);
            o += 4 + (size_t)l;
        }
    }
    return USHER_OK;
}

/* raw_input_contents[i] into t->data */
static int from_raw(const ProtobufCBinaryData *raw, size_t i, us_tensor *t, uint64_t n,
                    const oip_limits *lim, uint64_t *total, const char *what, usher_error *err)
{
    uint64_t len = raw->len;
    if (t->dtype == US_DT_BYTES) {
        usher_error e;
        if (len > lim->max_tensor_bytes)
            return us_err_set(err, USHER_ERR_LIMIT, "%s: raw_input_contents[%zu] is %" PRIu64
                              " bytes, more than the limit of %" PRIu64, what, i, len,
                              lim->max_tensor_bytes);
        if (us_bytes_check(raw->data, len, n, what, &e) < 0)
            return us_err_set(err, USHER_ERR_PARSE, "raw_input_contents[%zu]: %s", i, e.msg);
    } else {
        uint64_t need;
        usher_error e;
        if (us_tensor_nbytes(t->dtype, &t->shape, what, &need, &e) < 0)
            return us_err_set(err, USHER_ERR_PARSE, "%s", e.msg);
        if (need > lim->max_tensor_bytes)
            return us_err_set(err, USHER_ERR_LIMIT, "%s: %" PRIu64 " bytes, more than the limit "
                              "of %" PRIu64, what, need, lim->max_tensor_bytes);
        if (len != need) {
            char sh[US_TENSOR_MAX_RANK * 21 + 3];
            return us_err_set(err, USHER_ERR_PARSE, "%s: raw_input_contents[%zu] is %" PRIu64
                              " bytes, its shape %s of %s needs %" PRIu64, what, i, len,
                              us_shape_str(&t->shape, sh, sizeof sh), us_dtype_name(t->dtype),
                              need);
        }
    }
    if (len > lim->max_total_bytes - *total)
        return us_err_set(err, USHER_ERR_LIMIT, "%s: the inputs together are over %" PRIu64
                          " bytes", what, lim->max_total_bytes);
    *total += len;
    t->data = us_malloc(len ? (size_t)len : 1);
    if (!t->data)
        return us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory for %" PRIu64 " bytes", what,
                          len);
    if (len)
        memcpy(t->data, raw->data, (size_t)len);
    t->bytes = len;
    return USHER_OK;
}

static int name_check(const char *name, const char *list, size_t idx, usher_error *err)
{
    size_t n = strlen(name);
    if (n == 0)
        return us_err_set(err, USHER_ERR_PARSE, "%s[%zu]: name is empty", list, idx);
    if (n >= US_TENSOR_NAME_MAX)
        return us_err_set(err, USHER_ERR_PARSE, "%s[%zu]: name is %zu bytes, at most %d", list,
                          idx, n, US_TENSOR_NAME_MAX - 1);
    return USHER_OK;
}

static int infer_request(const Inference__ModelInferRequest *m, const oip_limits *lim,
                         oip_request *out, usher_error *err)
{
    size_t idl = strlen(m->id ? m->id : "");
    if (idl >= OIP_ID_MAX)
        return us_err_set(err, USHER_ERR_PARSE, "id is %zu bytes, at most %d", idl, OIP_ID_MAX - 1);
    if (idl) {
        memcpy(out->id, m->id, idl + 1);
        out->has_id = true;
    }
    int rc = check_params((param_entry *const *)(void *)m->parameters, m->n_parameters,
                          "the request", true, out, err);
    if (rc < 0)
        return rc;
    if (m->n_inputs == 0)
        return us_err_set(err, USHER_ERR_PARSE, "inputs is empty");
    if (m->n_inputs > OIP_MAX_TENSORS)
        return us_err_set(err, USHER_ERR_LIMIT, "%zu inputs, at most %d", m->n_inputs,
                          OIP_MAX_TENSORS);
    bool raw = m->n_raw_input_contents > 0;
    if (raw && m->n_raw_input_contents != m->n_inputs)
        return us_err_set(err, USHER_ERR_PARSE, "raw_input_contents has %zu entries for %zu "
                          "inputs: one per input, in order", m->n_raw_input_contents,
                          m->n_inputs);
    uint64_t total = 0;
    for (size_t i = 0; i < m->n_inputs; i++) {
        const Inference__ModelInferRequest__InferInputTensor *in = m->inputs[i];
        if ((rc = name_check(in->name, "inputs", i, err)) < 0)
            return rc;
        for (size_t k = 0; k < i; k++)
            if (strcmp(m->inputs[k]->name, in->name) == 0)
                return us_err_set(err, USHER_ERR_PARSE, "inputs[%zu]: input '%s' is given "
                                  "twice", i, in->name);
        char what[US_TENSOR_NAME_MAX + 32];
        snprintf(what, sizeof what, "input '%s'", in->name);
        us_tensor *t = &out->in[i];
        memset(t, 0, sizeof *t);
        memcpy(t->name, in->name, strlen(in->name) + 1);
        t->dtype = us_dtype_parse(in->datatype, strlen(in->datatype));
        if (t->dtype == US_DT_INVALID)
            return us_err_set(err, USHER_ERR_PARSE, "%s: unknown datatype \"%.32s\"", what,
                              in->datatype);
        if (in->n_shape > US_TENSOR_MAX_RANK)
            return us_err_set(err, USHER_ERR_PARSE, "%s: shape has %zu dims, at most %d", what,
                              in->n_shape, US_TENSOR_MAX_RANK);
        t->shape.rank = (int)in->n_shape;
        for (size_t d = 0; d < in->n_shape; d++) {
            if (in->shape[d] < 0)
                return us_err_set(err, USHER_ERR_PARSE, "%s: shape[%zu] is %" PRId64 ", a "
                                  "negative dim", what, d, in->shape[d]);
            t->shape.dim[d] = in->shape[d];
        }
        uint64_t n;
        usher_error e;
        if (us_shape_elements(&t->shape, what, &n, &e) < 0)
            return us_err_set(err, USHER_ERR_LIMIT, "%s", e.msg);
        if (n > lim->max_elements)
            return us_err_set(err, USHER_ERR_LIMIT, "%s: %" PRIu64 " elements, more than the "
                              "limit of %" PRIu64, what, n, lim->max_elements);
        if ((rc = check_params((param_entry *const *)(void *)in->parameters, in->n_parameters,
                               what, false, out, err)) < 0)
            return rc;
        if (raw && in->contents && contents_total(in->contents) > 0)
            return us_err_set(err, USHER_ERR_PARSE, "%s: has contents while the request has "
                              "raw_input_contents (one or the other)", what);
        out->n_in = i + 1; /* its data is freed with the request from here */
        rc = raw ? from_raw(&m->raw_input_contents[i], i, t, n, lim, &total, what, err)
                 : from_contents(in->contents, t, n, lim, &total, what, err);
        if (rc < 0)
            return rc;
    }
    if (m->n_outputs > OIP_MAX_TENSORS)
        return us_err_set(err, USHER_ERR_LIMIT, "%zu outputs, at most %d", m->n_outputs,
                          OIP_MAX_TENSORS);
    for (size_t i = 0; i < m->n_outputs; i++) {
        const Inference__ModelInferRequest__InferRequestedOutputTensor *o = m->outputs[i];
        if ((rc = name_check(o->name, "outputs", i, err)) < 0)
            return rc;
        char what[US_TENSOR_NAME_MAX + 32];
        snprintf(what, sizeof what, "output '%s'", o->name);
        if ((rc = check_params((param_entry *const *)(void *)o->parameters, o->n_parameters,
                               what, false, out, err)) < 0)
            return rc;
        for (size_t k = 0; k < i; k++)
            if (strcmp(m->outputs[k]->name, o->name) == 0)
                return us_err_set(err, USHER_ERR_PARSE, "outputs[%zu]: output '%s' is asked "
                                  "for twice", i, o->name);
        memcpy(out->out[i].name, o->name, strlen(o->name) + 1);
        out->n_out = i + 1;
    }
    return USHER_OK;
}

int gm_infer_request(const Inference__ModelInferRequest *m, const oip_limits *lim,
                     oip_request *out, usher_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = infer_request(m, lim, out, err);
    if (rc < 0) {
        oip_request_free(out);
        memset(out, 0, sizeof *out);
        return rc;
    }
    us_err_clear(err);
    return USHER_OK;
}

/* ---- ModelInferResponse ---------------------------------------------------------------- */
static const us_tensor *find_output(const us_tensor *out, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(out[i].name, name) == 0)
            return &out[i];
    return NULL;
}

static int check_output(const us_tensor *t, usher_error *err)
{
    char what[US_TENSOR_NAME_MAX + 16];
    snprintf(what, sizeof what, "output '%s'", t->name);
    uint64_t n, need;
    usher_error e;
    if (t->dtype <= US_DT_INVALID || t->dtype >= US_DT_COUNT)
        return us_err_set(err, USHER_ERR_INVALID, "%s: invalid datatype", what);
    if (us_shape_elements(&t->shape, what, &n, &e) < 0)
        return us_err_set(err, USHER_ERR_INVALID, "%s", e.msg);
    if (t->bytes && !t->data)
        return us_err_set(err, USHER_ERR_INVALID, "%s: bytes but no data", what);
    if (t->dtype == US_DT_BYTES)
        return us_bytes_check(t->data, t->bytes, n, what, err) < 0 ? USHER_ERR_INVALID : USHER_OK;
    if (us_tensor_nbytes(t->dtype, &t->shape, what, &need, &e) < 0 || need != t->bytes)
        return us_err_set(err, USHER_ERR_INVALID, "%s: %" PRIu64 " bytes do not match its shape",
                          what, t->bytes);
    return USHER_OK;
}

int gm_infer_response(const oip_request *req, const char *model, const char *version,
                      const us_tensor *out, size_t n, size_t max, uint8_t **buf, size_t *len,
                      usher_error *err)
{
    *buf = NULL;
    *len = 0;
    size_t n_sel = req && req->n_out ? req->n_out : n;
    const us_tensor *sel[OIP_MAX_TENSORS];
    if (n_sel > OIP_MAX_TENSORS)
        return us_err_set(err, USHER_ERR_LIMIT, "%zu outputs, at most %d", n_sel, OIP_MAX_TENSORS);
    for (size_t i = 0; i < n_sel; i++) {
        sel[i] = req && req->n_out ? find_output(out, n, req->out[i].name) : &out[i];
        if (!sel[i])
            return us_err_set(err, USHER_ERR_NOT_FOUND,
                              "output '%s' was requested, but the model has no such output",
                              req->out[i].name);
        int rc = check_output(sel[i], err);
        if (rc < 0)
            return rc;
    }
    Inference__ModelInferResponse r = INFERENCE__MODEL_INFER_RESPONSE__INIT;
    Inference__ModelInferResponse__InferOutputTensor ot[OIP_MAX_TENSORS];
    Inference__ModelInferResponse__InferOutputTensor *otp[OIP_MAX_TENSORS];
    ProtobufCBinaryData raw[OIP_MAX_TENSORS];
    int64_t shapes[OIP_MAX_TENSORS][US_TENSOR_MAX_RANK];
    r.model_name = (char *)(uintptr_t)(model ? model : "");
    r.model_version = (char *)(uintptr_t)(version ? version : "");
    r.id = (char *)(uintptr_t)(req && req->has_id ? req->id : "");
    for (size_t i = 0; i < n_sel; i++) {
        const us_tensor *t = sel[i];
        inference__model_infer_response__infer_output_tensor__init(&ot[i]);
        ot[i].name = (char *)(uintptr_t)t->name;
        ot[i].datatype = (char *)(uintptr_t)us_dtype_name(t->dtype);
        for (int d = 0; d < t->shape.rank; d++)
            shapes[i][d] = t->shape.dim[d];
        ot[i].n_shape = (size_t)t->shape.rank;
        ot[i].shape = shapes[i];
        otp[i] = &ot[i];
        raw[i].len = (size_t)t->bytes;
        raw[i].data = t->data;
    }
    r.n_outputs = n_sel;
    r.outputs = otp;
    r.n_raw_output_contents = n_sel;
    r.raw_output_contents = raw;
    size_t need = protobuf_c_message_get_packed_size(&r.base);
    if (need > max)
        return us_err_set(err, USHER_ERR_LIMIT, "the response is %zu bytes, more than the "
                          "limit of %zu", need, max);
    int rc = gm_pack(&r.base, buf, len, err);
    if (rc == USHER_OK)
        us_err_clear(err);
    return rc;
}

/* ---- ModelStreamInferResponse ----------------------------------------------------------- */
int gm_stream_response(const char *error, const char *id, const uint8_t *infer, size_t infer_len,
                       size_t max, uint8_t **buf, size_t *len, usher_error *err)
{
    *buf = NULL;
    *len = 0;
    if (!error) {
        /* field 2 (infer_response), length-delimited: 0x12, the length as a varint, the
         * ModelInferResponse's bytes as they are */
        uint8_t hdr[11];
        size_t h = 0;
        hdr[h++] = 0x12;
        for (uint64_t v = infer_len;; v >>= 7) {
            hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            if (v <= 0x7f)
                break;
        }
        if (infer_len > max || h + infer_len > max)
            return us_err_set(err, USHER_ERR_LIMIT, "the response is %zu bytes, more than the "
                              "limit of %zu", h + infer_len, max);
        uint8_t *b = us_malloc(h + infer_len ? h + infer_len : 1);
        if (!b)
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory for a response");
        memcpy(b, hdr, h);
        if (infer_len)
            memcpy(b + h, infer, infer_len);
        *buf = b;
        *len = h + infer_len;
        us_err_clear(err);
        return USHER_OK;
    }
    Inference__ModelStreamInferResponse r = INFERENCE__MODEL_STREAM_INFER_RESPONSE__INIT;
    Inference__ModelInferResponse ir = INFERENCE__MODEL_INFER_RESPONSE__INIT;
    r.error_message = (char *)(uintptr_t)error;
    ir.id = (char *)(uintptr_t)(id ? id : "");
    r.infer_response = &ir;
    int rc = gm_pack(&r.base, buf, len, err);
    if (rc == USHER_OK)
        us_err_clear(err);
    return rc;
}
