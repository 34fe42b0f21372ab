/* fuzz_http.h - the HTTP/1.1 layer fuzz body (src/server/http.c), shared by libFuzzer and
 * tests. */
#ifndef FUZZ_HTTP_H
#define FUZZ_HTTP_H
#include <stddef.h>
#include <stdint.h>
/*
 * Sends data on a fresh TCP connection to an in-process HTTP server (started
 * on the first call, small limits), closes its sending side, and reads every
 * answer until the server closes; aborts on a contract violation (fuzz_http.c).
 * Returns the number of answers.
 */
int usher_fuzz_http_one(const uint8_t *data, size_t size);
#endif
