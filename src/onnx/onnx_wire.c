/*
 * onnx_wire.c - bounded walk over the protobuf wire format (layer 3).
 *
 * Why: protobuf-c unpacks a message in one go and copies every bytes field,
 * so a 500 MB model would cost 500 MB of heap on top of the file, and a
 * hostile file could make it allocate far more than its size or recurse
 * until the stack ends. This walker runs first, over the untrusted bytes,
 * guided by the descriptors protoc-c generated from onnx.proto:
 *   - every length is checked against the bytes left before it is used;
 *     varints are at most 10 bytes; groups and reserved wire types are
 *     rejected; a field whose wire type disagrees with onnx.proto is an
 *     error naming the field path ("graph.node[3].attribute[0].t.dims");
 *   - message nesting, GraphProto nesting, the number of messages, tensors
 *     and nodes, and the memory protobuf-c will need for packed varints are
 *     bounded before anything is allocated for them;
 *   - TensorProto.raw_data payloads are not copied: each becomes an 8-byte
 *     index into a span table pointing back into the mapped file, which the
 *     importer uses as the tensor's bytes (zero-copy);
 *   - fields onnx.proto does not know are dropped.
 * The output ("skeleton") is itself valid protobuf, small, and what
 * protobuf-c unpacks. Submessage lengths are written as 5-byte padded
 * varints so the walker can emit a message before knowing its new size;
 * protobuf-c accepts such prefixes (up to 5 bytes for a 32-bit length).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "onnx_impl.h"

static void *pb_alloc(void *ud, size_t n)
{
    (void)ud;
    return us_malloc(n);
}

static void pb_free(void *ud, void *p)
{
    (void)ud;
    us_free(p);
}

ProtobufCAllocator onnx_pb_allocator = {pb_alloc, pb_free, NULL};

#define MAX_PATH_FRAMES 512

typedef struct frame {
    const ProtobufCMessageDescriptor *d;
    const char *field; /* field of the parent that holds this message */
    uint64_t index;    /* occurrence of that field in the parent */
} frame;

typedef struct walker {
    const uint8_t *base;
    const onnx_wire_limits *lim;
    onnx_skeleton *out;
    usher_error *err;
    frame path[MAX_PATH_FRAMES];
    uint32_t depth, graph_depth;
    bool oom;
} walker;

/* render the field path of the current position */
static void path_str(const walker *w, const char *field, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (uint32_t i = 1; i <= w->depth && i < MAX_PATH_FRAMES && len < n; i++) {
        const frame *f = &w->path[i];
        len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? "." : "", f->field);
        if (len < n && f->index != UINT64_MAX)
            len += (size_t)snprintf(buf + len, n - len, "[%llu]", (unsigned long long)f->index);
    }
    if (field && len < n)
        snprintf(buf + len, n - len, "%s%s", len ? "." : "", field);
}

static int werr(walker *w, int code, const char *field, const char *what)
{
    char p[256];
    path_str(w, field, p, sizeof p);
    return us_err_set(w->err, code, "%s%s%s", p[0] ? p : "model", p[0] ? ": " : ": ", what);
}

static bool reserve(walker *w, size_t extra)
{
    onnx_skeleton *s = w->out;
    if (s->len + extra <= s->cap)
        return true;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + extra)
        cap *= 2;
    uint8_t *d = us_realloc(s->data, cap);
    if (!d) {
        w->oom = true;
        return false;
    }
    s->data = d;
    s->cap = cap;
    return true;
}

static void emit(walker *w, const void *p, size_t n)
{
    if (n && reserve(w, n)) {
        memcpy(w->out->data + w->out->len, p, n);
        w->out->len += n;
    }
}

static size_t put_varint(uint8_t *b, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) {
        b[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[i++] = (uint8_t)v;
    return i;
}

static void emit_varint(walker *w, uint64_t v)
{
    uint8_t b[10];
    emit(w, b, put_varint(b, v));
}

/* 0 on success; the value and the number of bytes used */
static int get_varint(const uint8_t *p, size_t n, uint64_t *v, size_t *used)
{
    uint64_t r = 0;
    for (size_t i = 0; i < 10 && i < n; i++) {
        uint64_t b = p[i];
        if (i == 9 && b > 1)
            return -1;
        r |= (b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *v = r;
            *used = i + 1;
            return 0;
        }
    }
    return -1;
}

static bool is_varint_type(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_BOOL: case PROTOBUF_C_TYPE_ENUM:
        return true;
    default:
        return false;
    }
}

static int expected_wire(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_BYTES: case PROTOBUF_C_TYPE_MESSAGE:
        return 2;
    default:
        return 0;
    }
}

/* how many entries a repeated scalar occupies once unpacked, in bytes */
static uint64_t unpacked_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_BYTES:
        return 16 + 8; /* ProtobufCBinaryData / char* slot plus allocation overhead */
    default:
        return 4;
    }
}

static int walk(walker *w, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len);

static int walk_field_counts_overflow(walker *w, uint64_t add)
{
    onnx_skeleton *s = w->out;
    if (__builtin_add_overflow(s->expansion, add, &s->expansion) ||
        s->expansion > w->lim->max_expansion)
        return werr(w, USHER_ERR_LIMIT, NULL,
                    "repeated fields would need more memory than the configured limit");
    return USHER_OK;
}

static int walk(walker *w, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len)
{
    uint64_t counts[64];
    memset(counts, 0, sizeof counts);
    size_t pos = 0;
    while (pos < len) {
        uint64_t tag;
        size_t used;
        if (get_varint(p + pos, len - pos, &tag, &used) < 0)
            return werr(w, USHER_ERR_PARSE, NULL, "truncated or overlong field tag");
        size_t field_start = pos;
        pos += used;
        uint64_t num = tag >> 3;
        int wt = (int)(tag & 7);
        if (num == 0 || num > 536870911u)
            return werr(w, USHER_ERR_PARSE, NULL, "invalid field number");
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(d, (unsigned)num);
        const char *fname = fd ? fd->name : NULL;
        size_t payload = 0, plen = 0;
        switch (wt) {
        case 0: {
            uint64_t v;
            if (get_varint(p + pos, len - pos, &v, &used) < 0)
                return werr(w, USHER_ERR_PARSE, fname, "truncated or overlong varint");
            payload = pos;
            plen = used;
            break;
        }
        case 1:
            if (len - pos < 8)
                return werr(w, USHER_ERR_PARSE, fname, "truncated 64-bit field");
            payload = pos;
            plen = 8;
            break;
        case 5:
            if (len - pos < 4)
                return werr(w, USHER_ERR_PARSE, fname, "truncated 32-bit field");
            payload = pos;
            plen = 4;
            break;
        case 2: {
            uint64_t l;
            if (get_varint(p + pos, len - pos, &l, &used) < 0)
                return werr(w, USHER_ERR_PARSE, fname, "truncated length prefix");
            pos += used;
            if (l > len - pos)
                return werr(w, USHER_ERR_PARSE, fname,
                            "length prefix runs past the end of the enclosing message");
            payload = pos;
            plen = (size_t)l;
            break;
        }
        case 3: case 4:
            return werr(w, USHER_ERR_PARSE, fname, "protobuf groups are not supported");
        default:
            return werr(w, USHER_ERR_PARSE, fname, "invalid wire type");
        }
        pos = payload + plen;
        if (!fd)
            continue; /* unknown field: dropped */

        unsigned fi = (unsigned)(fd - d->fields);
        uint64_t occ = fi < 64 ? counts[fi]++ : 0;
        int exp = expected_wire(fd->type);
        bool packed = wt == 2 && fd->label == PROTOBUF_C_LABEL_REPEATED && exp != 2;
        if (wt != exp && !packed)
            return werr(w, USHER_ERR_PARSE, fname, "wire type does not match onnx.proto");

        if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
            const ProtobufCMessageDescriptor *sd = fd->descriptor;
            if (w->depth + 1 >= MAX_PATH_FRAMES || w->depth + 1 > w->lim->max_depth)
                return werr(w, USHER_ERR_LIMIT, fname, "messages nested too deeply");
            onnx_skeleton *s = w->out;
            if (++s->n_messages > w->lim->max_messages)
                return werr(w, USHER_ERR_LIMIT, fname, "too many protobuf messages");
            if (sd == &onnx__tensor_proto__descriptor && ++s->n_tensors > w->lim->max_tensors)
                return werr(w, USHER_ERR_LIMIT, fname, "too many tensors");
            if (sd == &onnx__node_proto__descriptor && ++s->n_nodes > w->lim->max_nodes)
                return werr(w, USHER_ERR_LIMIT, fname, "too many nodes");
            bool is_graph = sd == &onnx__graph_proto__descriptor;
            if (is_graph && w->graph_depth + 1 > w->lim->max_graph_depth)
                return werr(w, USHER_ERR_LIMIT, fname, "subgraphs nested too deeply");
            if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
                int rc = walk_field_counts_overflow(w, 8);
                if (rc < 0)
                    return rc;
            }
            emit_varint(w, tag);
            size_t at = w->out->len;
            uint8_t pad[5] = {0x80, 0x80, 0x80, 0x80, 0x00};
            emit(w, pad, 5);
            w->depth++;
            w->path[w->depth].d = sd;
            w->path[w->depth].field = fname;
            w->path[w->depth].index = fd->label == PROTOBUF_C_LABEL_REPEATED ? occ : UINT64_MAX;
            w->graph_depth += is_graph;
            int rc = walk(w, sd, p + payload, plen);
            w->graph_depth -= is_graph;
            w->depth--;
            if (rc < 0)
                return rc;
            if (w->oom)
                return us_err_set(w->err, USHER_ERR_NOMEM, "out of memory");
            size_t body = w->out->len - at - 5;
            if (body > 0x7FFFFFFFu)
                return werr(w, USHER_ERR_LIMIT, fname, "message over 2 GiB");
            for (int i = 0; i < 5; i++)
                w->out->data[at + i] = (uint8_t)(((body >> (7 * i)) & 0x7F) | (i < 4 ? 0x80 : 0));
            continue;
        }
        if (d == &onnx__tensor_proto__descriptor && num == 9 && wt == 2) {
            /* raw_data: keep a reference, not the bytes */
            onnx_skeleton *s = w->out;
            if (s->n_spans == s->cap_spans) {
                size_t nc = s->cap_spans ? s->cap_spans * 2 : 64;
                onnx_span *ns = us_realloc(s->spans, nc * sizeof *ns);
                if (!ns)
                    return us_err_set(w->err, USHER_ERR_NOMEM, "out of memory");
                s->spans = ns;
                s->cap_spans = nc;
            }
            s->spans[s->n_spans].off = (uint64_t)(p + payload - w->base);
            s->spans[s->n_spans].len = plen;
            uint64_t idx = s->n_spans++;
            uint8_t ref[8];
            for (int i = 0; i < 8; i++)
                ref[i] = (uint8_t)(idx >> (8 * i));
            emit_varint(w, tag);
            emit_varint(w, 8);
            emit(w, ref, 8);
            continue;
        }
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            uint64_t elems = 1;
            if (packed) {
                if (is_varint_type(fd->type)) {
                    elems = 0;
                    for (size_t i = 0; i < plen; i++)
                        elems += !(p[payload + i] & 0x80);
                } else {
                    size_t es = exp == 5 ? 4 : 8;
                    if (plen % es != 0)
                        return werr(w, USHER_ERR_PARSE, fname,
                                    "packed field length is not a multiple of its element size");
                    elems = plen / es;
                }
            }
            int rc = walk_field_counts_overflow(w, elems * unpacked_size(fd->type));
            if (rc < 0)
                return rc;
        }
        emit(w, p + field_start, pos - field_start);
        if (w->oom)
            return us_err_set(w->err, USHER_ERR_NOMEM, "out of memory");
    }
    return USHER_OK;
}

int onnx_wire_skeleton(const uint8_t *data, size_t len, const onnx_wire_limits *lim,
                       onnx_skeleton *out, usher_error *err)
{
    memset(out, 0, sizeof *out);
    walker *w = us_calloc(1, sizeof *w);
    if (!w)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    w->base = data;
    w->lim = lim;
    w->out = out;
    w->err = err;
    w->path[0].d = &onnx__model_proto__descriptor;
    w->path[0].field = "model";
    w->path[0].index = UINT64_MAX;
    int rc = walk(w, &onnx__model_proto__descriptor, data, len);
    if (rc == USHER_OK && w->oom)
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    us_free(w);
    if (rc < 0)
        onnx_skeleton_free(out);
    return rc;
}

void onnx_skeleton_free(onnx_skeleton *s)
{
    if (!s)
        return;
    us_free(s->data);
    us_free(s->spans);
    memset(s, 0, sizeof *s);
}
