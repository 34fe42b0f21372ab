/* fuzz_gzip.h - the Content-Encoding body decoder fuzz body, shared by libFuzzer and tests. */
#ifndef FUZZ_GZIP_H
#define FUZZ_GZIP_H
#include <stddef.h>
#include <stdint.h>
/*
 * data[0] picks the coding and the output limit (see fuzz_gzip.c); the rest
 * is the body. Decodes it with oip_inflate; aborts on a contract violation.
 * Returns 1 when the body decoded, 0 when it was refused.
 */
int usher_fuzz_gzip_one(const uint8_t *data, size_t size);
#endif
