/* fuzz_config.h - the config.pbtxt reader fuzz body, shared by libFuzzer and tests. */
#ifndef FUZZ_CONFIG_H
#define FUZZ_CONFIG_H
#include <stddef.h>
#include <stdint.h>
/* Parse data as a model's config.pbtxt (repo_parse_config, src/server/repo.c)
 * with and without a directory name, and check what it read; aborts on a
 * contract violation. Returns 1 when the parse without a directory name
 * accepted it, else 0 (for tests; libFuzzer's entry point returns 0). */
int usher_fuzz_config_one(const uint8_t *data, size_t size);
#endif
