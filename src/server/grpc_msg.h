/*
 * grpc_msg.h - the KServe v2 / Triton gRPC messages (layer 8, prefix gm_):
 * protobuf bytes of a request into usher's types (the oip_request the HTTP
 * front end builds too), tensors into a ModelInferResponse. No transport
 * here: src/server/grpc.c carries the bytes; fuzz/fuzz_grpc.c drives these
 * decoders with arbitrary bytes.
 *
 * The messages are those of src/server/grpc_service.proto (code generated
 * by protoc-c at build time, gen/grpc_service.pb-c.h). Bytes are untrusted
 * (RELIABILITY.md INPUT-2, PROTO-6): before protobuf-c unpacks them, a
 * bounded walk of the wire format (gm_wire_check) refuses a string field
 * holding a NUL or invalid UTF-8 (C strings end at a NUL: "m\0x" must not
 * become "m"), and protobuf-c allocates through a counting allocator capped
 * at a few times the message (gm_unpack). Converting an infer request
 * checks every field with an error naming it, as oip_parse_request does.
 */
#ifndef GM_GRPC_MSG_H
#define GM_GRPC_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "grpc_service.pb-c.h"
#include "server/oip.h"
#include "usher/status.h"

/*
 * Check that buf[0..len) is a well-formed message of type d: every tag and
 * length within the bytes left, wire types as the schema's fields (unknown
 * fields skipped), strings without NUL and in UTF-8, nested messages
 * checked likewise (at most 32 deep). USHER_ERR_PARSE naming the field.
 */
int gm_wire_check(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                  usher_error *err);
/*
 * gm_wire_check, then unpack with protobuf-c through an allocator that
 * counts: at most max_alloc bytes (USHER_ERR_LIMIT over it). Free the result
 * with gm_free. NULL on failure, err says why.
 */
ProtobufCMessage *gm_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                            size_t max_alloc, usher_error *err);
void gm_free(ProtobufCMessage *m);
/* the allocation budget of a len-byte message: protobuf-c's structures take up to 8 bytes
 * per 1-byte varint (an int64 or uint64 of 0..127 in packed contents: token ids), so 8 x
 * the message, plus 1 MiB for the fixed parts */
#define GM_ALLOC_BUDGET(len) ((size_t)(len) * 8 + ((size_t)1 << 20))

/*
 * A ModelInferRequest into *out (as oip_parse_request leaves it: each input's
 * data in a buffer of its own, native little-endian, BYTES as u32 length +
 * bytes). Inputs come from raw_input_contents (one per input, in order, the
 * exact byte size of the shape and datatype) or from typed contents (the
 * field of the datatype; narrow integers range-checked); not both. The
 * "timeout" parameter (int64 or uint64, microseconds) sets timeout_us.
 * USHER_ERR_PARSE (USHER_ERR_LIMIT for a size limit) naming the field; on
 * failure *out is left empty.
 */
int gm_infer_request(const Inference__ModelInferRequest *m, const oip_limits *lim,
                     oip_request *out, usher_error *err);

/*
 * The ModelInferResponse for outputs out[0..n): those req asked for (all
 * when it named none), as raw_output_contents, packed into *buf (us_malloc'd,
 * *len bytes, at most max bytes: USHER_ERR_LIMIT over it). USHER_ERR_NOT_FOUND
 * when req asks for an output the model does not have.
 */
int gm_infer_response(const oip_request *req, const char *model, const char *version,
                      const us_tensor *out, size_t n, size_t max, uint8_t **buf, size_t *len,
                      usher_error *err);

/*
 * One answer on ModelStreamInfer's stream, packed into *buf (us_malloc'd, *len
 * bytes): error NULL, the ModelInferResponse infer[0..infer_len) (as
 * gm_infer_response packs it) wrapped as its infer_response, at most max bytes
 * in all (USHER_ERR_LIMIT over it); else error_message `error` with an
 * infer_response holding only `id` (NULL: ""), as Triton answers a failed
 * request on a stream so that the client knows which one failed.
 * USHER_ERR_NOMEM.
 */
int gm_stream_response(const char *error, const char *id, const uint8_t *infer, size_t infer_len,
                       size_t max, uint8_t **buf, size_t *len, usher_error *err);

/* pack any message into *buf (us_malloc'd); USHER_ERR_NOMEM */
int gm_pack(const ProtobufCMessage *m, uint8_t **buf, size_t *len, usher_error *err);

#endif
