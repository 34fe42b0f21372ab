/*
 * fuzz_onnx.c - libFuzzer target: bytes -> ONNX loader -> inference ->
 * reports (and, for one input in eight, the ONNX writer and a reload).
 *
 * The contract checked on every input, beyond "no crash, no sanitizer
 * report": a rejected input carries a negative code and a non-empty
 * message, and everything allocated through the library is freed (the
 * allocation hook's live byte count returns to where it started).
 * Violations abort, so libFuzzer records them as crashes.
 *
 * Built with clang -fsanitize=fuzzer (build-fuzz/, `make fuzz`); the same
 * function is linked into tests/test_fuzz.c, which replays the seed corpus
 * and mutated real models in every `make test`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fuzz_onnx.h"
#include "usher/model.h"

static void check(bool ok, const char *what, const usher_error *err)
{
    if (!ok) {
        fprintf(stderr, "fuzz contract violated: %s (code %d, message '%s')\n", what,
                err ? err->code : 0, err ? err->msg : "");
        abort();
    }
}

int usher_fuzz_onnx_one(const uint8_t *data, size_t size, int *outcome)
{
    size_t live = us_alloc_live_bytes();
    usher_load_params lp = usher_load_default_params();
    lp.graph_only = (size % 3) == 0;
    lp.max_nodes = 20000;
    lp.max_tensors = 20000;
    lp.max_file_bytes = 64u << 20;
    usher_model *m = NULL;
    usher_error err;
    memset(&err, 0, sizeof err);
    int rc = usher_model_load_memory(data, size, &lp, &m, &err);
    if (rc < 0) {
        check(m == NULL && err.code < 0 && err.msg[0] && us_err_missing_detail_count() == 0,
              "rejection without a message", &err);
        check(us_alloc_live_bytes() == live, "failed load leaked", &err);
        if (outcome)
            *outcome = rc;
        return 0;
    }
    usher_shape_params sp = usher_shape_default_params();
    sp.batch = 1 + (int64_t)(size % 4);
    rc = usher_model_infer(m, &sp, &err);
    if (rc < 0)
        check(err.msg[0] != 0, "inference error without a message", &err);
    usher_model_summary s;
    check(usher_model_get_summary(m, &s) == USHER_OK, "summary failed", NULL);
    char *js = NULL;
    if (usher_model_report_json(m, "fuzz", &js, NULL, &err) == USHER_OK)
        check(js && js[0] == '{', "report is not a JSON object", &err);
    usher_free(js);
    if (size % 8 == 0) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/usher-fuzz-%ld.onnx", (long)getpid());
        usher_save_params svp = usher_save_default_params();
        if (usher_model_save(m, path, &svp, &err) == USHER_OK) {
            usher_model *m2 = NULL;
            lp.graph_only = true;
            int rc2 = usher_model_load(path, &lp, &m2, &err);
            check(rc2 == USHER_OK, "a model usher wrote does not load again", &err);
            usher_model_free(m2);
        }
        unlink(path);
    }
    usher_model_free(m);
    check(us_alloc_live_bytes() == live, "model free leaked", NULL);
    if (outcome)
        *outcome = rc;
    return 0;
}

#ifdef USHER_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return usher_fuzz_onnx_one(data, size, NULL);
}
#endif
