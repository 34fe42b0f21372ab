/* fuzz_trace.h - the Azure trace importer's fuzz body, shared by libFuzzer and tests. */
#ifndef FUZZ_TRACE_H
#define FUZZ_TRACE_H
#include <stddef.h>
#include <stdint.h>
/* data[0] (mod 8) picks the mapping, the arrivals and 1 or 2 models; the
 * rest is the CSV text. Returns 1 if the importer accepted it, 0 if it
 * refused it with a message; aborts on a contract violation. */
int usher_fuzz_trace_one(const uint8_t *data, size_t size);
#endif
