/* fuzz_grpc.h - the gRPC message decoder fuzz body, shared by libFuzzer and tests. */
#ifndef FUZZ_GRPC_H
#define FUZZ_GRPC_H
#include <stddef.h>
#include <stdint.h>
/*
 * data[0] picks the message type and the limits (see fuzz_grpc.c); the rest
 * is the protobuf bytes. Decodes them as the gRPC front end does and, for an
 * accepted ModelInferRequest, writes its inputs back as a ModelInferResponse
 * and reads that back; aborts on a contract violation. Always returns 0.
 */
int usher_fuzz_grpc_one(const uint8_t *data, size_t size);
#endif
