/*
 * test_allocfail.c - out-of-memory torture (SQLite's malloc tests, curl's
 * torture): run "load, infer, summarise, report, save, free" once to count
 * its allocations N, then N more times with allocation k failing, k = 1..N.
 * Every run must end with either success or a clean error carrying a
 * message, and the allocation hook must show nothing left behind. Under the
 * ASan build, LeakSanitizer checks the memory outside the hook too.
 */
#include <unistd.h>

#include "core/err.h"
#include "test.h"
#include "usher/model.h"

static int sequence(const char *path, const char *save_to, usher_error *err)
{
    usher_model *m = NULL;
    int rc = usher_model_load(path, NULL, &m, err);
    if (rc < 0) {
        if (m != NULL)
            return -1000; /* contract: *out is NULL on failure */
        return rc;
    }
    usher_shape_params sp = usher_shape_default_params();
    sp.batch = 2;
    rc = usher_model_infer(m, &sp, err);
    if (rc == USHER_ERR_NOMEM)
        goto out;
    usher_model_summary s;
    usher_model_get_summary(m, &s);
    char *js = NULL;
    rc = usher_model_report_json(m, "m", &js, NULL, err);
    usher_free(js);
    if (rc < 0)
        goto out;
    if (save_to) {
        rc = usher_model_save(m, save_to, NULL, err);
        if (rc < 0 && access(save_to, F_OK) == 0)
            rc = -1001; /* contract: a failed save leaves no file */
    }
out:
    usher_model_free(m);
    return rc;
}

static int torture(const char *path, bool with_save)
{
    char save_to[1024];
    snprintf(save_to, sizeof save_to, "%s/torture.onnx", test_tmpdir());
    usher_error err;
    size_t live = us_alloc_live_bytes();
    uint64_t before = us_alloc_count();
    int rc = sequence(path, with_save ? save_to : NULL, &err);
    if (rc != USHER_OK) {
        fprintf(stderr, "  %s: baseline run failed: %s\n", path, err.msg);
        return -1;
    }
    uint64_t n = us_alloc_count() - before;
    int bad = 0;
    for (uint64_t k = 1; k <= n; k++) {
        unlink(save_to);
        memset(&err, 0, sizeof err);
        us_alloc_fail_nth(k);
        rc = sequence(path, with_save ? save_to : NULL, &err);
        us_alloc_fail_nth(0);
        bool clean = us_alloc_live_bytes() == live && rc > -1000 &&
                     (rc == USHER_OK || err.msg[0]) && us_err_missing_detail_count() == 0;
        if (!clean && bad++ < 5)
            fprintf(stderr, "  %s: failing allocation %llu of %llu: rc %d, msg '%s', %zd bytes "
                            "left\n",
                    path, (unsigned long long)k, (unsigned long long)n, rc, err.msg,
                    (ssize_t)(us_alloc_live_bytes() - live));
    }
    unlink(save_to);
    printf("  %s: %llu allocations, each failed in turn: %d problems\n", path,
           (unsigned long long)n, bad);
    return bad;
}

TEST(seed_with_subgraphs)
{
    ASSERT_EQ_INT(torture(test_path(test_source_dir(), "fuzz/corpus/control_flow.onnx"), true), 0);
}

TEST(seed_with_typed_fields_and_constants)
{
    ASSERT_EQ_INT(torture(test_path(test_source_dir(), "fuzz/corpus/typed_fields.onnx"), true), 0);
    ASSERT_EQ_INT(torture(test_path(test_source_dir(), "fuzz/corpus/constants.onnx"), true), 0);
    ASSERT_EQ_INT(torture(test_path(test_source_dir(), "fuzz/corpus/transformer_bits.onnx"), false), 0);
}

TEST(real_model_with_weights)
{
    ASSERT_EQ_INT(torture(test_path(test_deps_dir(),
                                    "openwakeword-js/package/models/hello_deepa.onnx"),
                          true),
                  0);
}

TEST(real_model_with_nested_ifs)
{
    ASSERT_EQ_INT(torture(test_path(test_deps_dir(),
                                    "ricky0123-vad-web/package/dist/silero_vad_legacy.onnx"),
                          false),
                  0);
}

TEST(zoo_graph_only_model)
{
    ASSERT_EQ_INT(torture(test_path(test_source_dir(), "models/zoo/resnet18.onnx"), false), 0);
}

TEST_MAIN(TEST_ENTRY(seed_with_subgraphs), TEST_ENTRY(seed_with_typed_fields_and_constants),
          TEST_ENTRY(real_model_with_weights), TEST_ENTRY(real_model_with_nested_ifs),
          TEST_ENTRY(zoo_graph_only_model))
