/*
 * fuzz_tables.c - libFuzzer target for the two text tables usher reads:
 * the GPU catalog (CSV) and the calibration table. The first byte picks the
 * parser; the rest is the text. Contract: a rejection has a message, and
 * nothing leaks through the allocation hook.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "fuzz_tables.h"
#include "estimate/kernels.h"

int usher_fuzz_tables_one(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t live = us_alloc_live_bytes();
    usher_error err;
    err.msg[0] = '\0';
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int rc;
    if (data[0] & 1) {
        gpu_catalog *c = NULL;
        rc = gpu_catalog_parse(text, len, "fuzz.csv", &c, &err);
        if (rc == USHER_OK) {
            for (size_t i = 0; i < gpu_catalog_count_all(c); i++)
                (void)gpu_catalog_at_all(c, i)->key;
        }
        gpu_catalog_free(c);
    } else {
        gpu_calib_table t;
        rc = gpu_calib_parse(text, len, "fuzz.txt", &t, &err);
        if (rc == USHER_OK && t.n) {
            char buf[4096];
            gpu_calib_format(&t.rows[0], buf, sizeof buf);
        }
        gpu_calib_table_free(&t);
    }
    if ((rc < 0 && !err.msg[0]) || us_alloc_live_bytes() != live) {
        fprintf(stderr, "fuzz contract violated: rc %d, message '%s', leak %zu\n", rc, err.msg,
                us_alloc_live_bytes() - live);
        abort();
    }
    return 0;
}

#ifdef USHER_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return usher_fuzz_tables_one(data, size);
}
#endif
