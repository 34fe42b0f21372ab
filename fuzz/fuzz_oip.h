/* fuzz_oip.h - the OIP request/response fuzz body, shared by libFuzzer and tests. */
#ifndef FUZZ_OIP_H
#define FUZZ_OIP_H
#include <stddef.h>
#include <stdint.h>
/*
 * data[0] picks the framing and the limits (see fuzz_oip.c); the rest is
 * the body. Parses it as an inference request and, when it is accepted,
 * writes the inputs back as a response and reads that back; aborts on a
 * contract violation. Always returns 0.
 */
int usher_fuzz_oip_one(const uint8_t *data, size_t size);
#endif
