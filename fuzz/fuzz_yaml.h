/* fuzz_yaml.h - the YAML reader fuzz body, shared by libFuzzer and tests. */
#ifndef FUZZ_YAML_H
#define FUZZ_YAML_H
#include <stddef.h>
#include <stdint.h>
/* Parse data as YAML (default and tight limits) and walk every node through
 * every accessor; aborts on a contract violation. Always returns 0. */
int usher_fuzz_yaml_one(const uint8_t *data, size_t size);
#endif
