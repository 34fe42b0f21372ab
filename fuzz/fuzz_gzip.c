/*
 * fuzz_gzip.c - libFuzzer target for the Content-Encoding body decoder
 * (oip_inflate in src/server/oip.c, over zlib): gzip and deflate request
 * bodies are untrusted and may be decompression bombs (issue 17).
 *
 * The first byte of an input picks:
 *   bit 0     gzip (1) or deflate (0)
 *   bits 1-3  the output limit: 2^(4 + 2k) bytes (16 B .. 256 KiB), so that
 *             the limit is reached often
 * and the rest is the body. The contract checked on every input, beyond
 * "no crash, no sanitizer report":
 *   - a refusal is USHER_ERR_PARSE (corrupt, truncated, trailing bytes),
 *     USHER_ERR_LIMIT (over the limit) or USHER_ERR_NOMEM, with its code in
 *     err.code and a message, and leaves *out NULL;
 *   - a decoded body is at most the limit; compressed again with
 *     oip_deflate and decoded, it gives the same bytes;
 *   - nothing leaks through the allocation hook.
 * tests/test_oip.c replays fuzz/corpus-gzip and mutants of it through the
 * same function.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fuzz_gzip.h"
#include "server/oip.h"

static void check(bool ok, const char *what, const usher_error *err)
{
    if (!ok) {
        fprintf(stderr, "fuzz contract violated: %s (code %d, message '%s')\n", what,
                err ? (int)err->code : 0, err ? err->msg : "");
        abort();
    }
}

int usher_fuzz_gzip_one(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t live0 = us_alloc_live_bytes();
    oip_coding c = data[0] & 1 ? OIP_GZIP : OIP_DEFLATE;
    uint64_t limit = (uint64_t)1 << (4 + 2 * ((data[0] >> 1) & 7));
    uint8_t *out = (uint8_t *)1;
    size_t n = 7;
    usher_error err;
    memset(&err, 0, sizeof err);
    int rc = oip_inflate(c, data + 1, size - 1, limit, &out, &n, &err);
    int decoded = 0;
    if (rc < 0) {
        check(rc == USHER_ERR_PARSE || rc == USHER_ERR_LIMIT || rc == USHER_ERR_NOMEM,
              "an unexpected error code", &err);
        check(err.code == rc && err.msg[0], "a refusal without its code or a message", &err);
        check(out == NULL && n == 0, "a refusal left output", &err);
    } else {
        check(rc == USHER_OK && n <= limit, "decoded past the limit", &err);
        check(out != NULL, "decoded without a buffer", &err);
        uint8_t *z = NULL, *back = NULL;
        size_t zn = 0, bn = 0;
        if (oip_deflate(c, out, n / 2, out + n / 2, n - n / 2, &z, &zn, &err) == USHER_OK) {
            int rc2 = oip_inflate(c, z, zn, limit, &back, &bn, &err);
            check(rc2 == USHER_OK || rc2 == USHER_ERR_NOMEM, "our own compression refused", &err);
            if (rc2 == USHER_OK)
                check(bn == n && (n == 0 || memcmp(back, out, n) == 0),
                      "compressed and decoded again, the bytes differ", &err);
        }
        us_free(z);
        us_free(back);
        us_free(out);
        decoded = 1;
    }
    check(us_alloc_live_bytes() == live0, "memory leaked through the allocation hook", NULL);
    return decoded;
}

#ifdef USHER_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    usher_fuzz_gzip_one(data, size);
    return 0;
}
#endif
