/* fuzz_tables.h - the table-parser fuzz body, shared by libFuzzer and tests. */
#ifndef FUZZ_TABLES_H
#define FUZZ_TABLES_H
#include <stddef.h>
#include <stdint.h>
/* data[0] & 1: GPU catalog CSV, else calibration table; aborts on a violation */
int usher_fuzz_tables_one(const uint8_t *data, size_t size);
#endif
