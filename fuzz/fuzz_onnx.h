/* fuzz_onnx.h - the ONNX loader fuzz body, shared by libFuzzer and tests. */
#ifndef FUZZ_ONNX_H
#define FUZZ_ONNX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
/* Run one input; aborts on a contract violation. *outcome gets the load or
 * inference status (may be NULL). Always returns 0 (libFuzzer convention). */
int usher_fuzz_onnx_one(const uint8_t *data, size_t size, int *outcome);
#endif
