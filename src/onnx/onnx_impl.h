/*
 * onnx_impl.h - shared by the files of the ONNX layer (layer 3).
 */
#ifndef ONNX_IMPL_H
#define ONNX_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"
#include "usher/status.h"

/* Where one TensorProto.raw_data payload lies in the original bytes. */
typedef struct onnx_span {
    uint64_t off, len;
} onnx_span;

typedef struct onnx_wire_limits {
    uint32_t max_tensors;    /* TensorProto messages, anywhere */
    uint32_t max_nodes;      /* NodeProto messages, anywhere */
    uint64_t max_messages;   /* all messages (each costs an allocation when unpacked) */
    uint64_t max_expansion;  /* bytes protobuf-c may allocate for repeated scalars */
    uint32_t max_depth;      /* message nesting */
    uint32_t max_graph_depth; /* GraphProto nesting */
} onnx_wire_limits;

/*
 * The skeleton: the model re-encoded with every TensorProto.raw_data payload
 * replaced by an 8-byte little-endian index into `spans`, fields unknown to
 * onnx.proto dropped, and the structure checked (see onnx_wire.c).
 */
typedef struct onnx_skeleton {
    uint8_t *data;
    size_t len, cap;
    onnx_span *spans;
    size_t n_spans, cap_spans;
    uint64_t n_tensors, n_nodes, n_messages, expansion;
} onnx_skeleton;

int onnx_wire_skeleton(const uint8_t *data, size_t len, const onnx_wire_limits *lim,
                       onnx_skeleton *out, usher_error *err);
void onnx_skeleton_free(onnx_skeleton *s);

/* protobuf-c allocator routed through the counting hook */
extern ProtobufCAllocator onnx_pb_allocator;

#endif
