/*
 * test_fuzz_config.c - the config.pbtxt reader's fuzz body (fuzz/fuzz_config.c)
 * in every build: fuzz/corpus-config replayed, then deterministic mutants of
 * it (test_mutate, no mode byte), each through the same contract checks the
 * libFuzzer target makes (a violation aborts), config.pbtxt and the JSON form of
 * a load's "config" parameter alike. Seeds named *.json are JSON configurations.
 */
#include "core/alloc.h"
#include "fuzz_config.h"
#include "server/repo.h"
#include "test.h"

#define MAX_SEEDS 64

TEST(seeds_and_mutants_through_fuzz_body)
{
    static test_blob seeds[MAX_SEEDS];
    int n = test_load_dir(test_path(test_source_dir(), "fuzz/corpus-config"), "", seeds, MAX_SEEDS);
    ASSERT(n >= 10);
    int seeds_ok = 0;
    for (int i = 0; i < n; i++)
        seeds_ok += usher_fuzz_config_one(seeds[i].p, seeds[i].n);
    /* every real config (the example repository's, the ones with inputs) parses */
    int good = 0;
    for (int i = 0; i < n; i++) {
        bool bad = strncmp(seeds[i].name, "bad-", 4) == 0 || strstr(seeds[i].name, ".json");
        good += !bad;
        static repo_model mod;
        memset(&mod, 0, sizeof mod);
        mod.max_batch_size = mod.max_queue_delay_us = -1;
        usher_error err = {0};
        int rc = repo_parse_config((const char *)seeds[i].p, seeds[i].n, seeds[i].name, &mod, &err);
        if ((rc == 0) == bad)
            printf("  %s: %s\n", seeds[i].name, rc ? err.msg : "accepted");
    }
    ASSERT_EQ_INT(seeds_ok, good);

    static const char punct[] = "{}[]<>:,;#\"'\\-\n\t 0123456789";
    static const char *const words[] = {"input", "dims", "name", "max_batch_size", "TYPE_FP32",
                                        "TYPE_STRING", "preferred_batch_size", "dynamic_batching",
                                        "-1", "1099511627777", "\"x\"", "{ name: \"x\" }",
                                        "KIND_GPU", "version_policy", "\\\""};
    uint64_t rng = 0xC0F16ULL;
    /* byte 0 is not a mode here: mutants start editing at 1, so prefix a space */
    test_mutator mu = {punct, words, sizeof words / sizeof words[0], 0, &rng};
    const int rounds = 3000;
    int accepted = 0;
    uint8_t *m = malloc(1 << 16);
    ASSERT(m);
    test_blob a = {0}, b = {0};
    for (int r = 0; r < rounds; r++) {
        const test_blob *sa = &seeds[test_splitmix(&rng) % (uint64_t)n];
        const test_blob *sb = &seeds[test_splitmix(&rng) % (uint64_t)n];
        free(a.p);
        free(b.p);
        a.p = malloc(sa->n + 1), b.p = malloc(sb->n + 1);
        ASSERT(a.p && b.p);
        a.p[0] = b.p[0] = ' ';
        memcpy(a.p + 1, sa->p, sa->n);
        memcpy(b.p + 1, sb->p, sb->n);
        a.n = sa->n + 1, b.n = sb->n + 1;
        size_t len = test_mutate(&mu, &a, &b, m, 1 << 16);
        accepted += usher_fuzz_config_one(m, len);
    }
    free(a.p);
    free(b.p);
    free(m);
    printf("  %d seeds (%d accepted), %d mutants: %d accepted, %d refused\n", n, seeds_ok, rounds,
           accepted, rounds - accepted);
    ASSERT(accepted > rounds / 10 && rounds - accepted > rounds / 10);
    test_blobs_free(seeds, n);
}

/* a load's "config" parameter (repo_config_from_json): the fields as config.pbtxt gives them,
 * the errors naming the field */
static int json_cfg(const char *json, repo_model *m, usher_error *err)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "m");
    m->max_batch_size = m->max_queue_delay_us = -1;
    char *text = NULL;
    size_t len = 0;
    int rc = repo_config_from_json(json, strlen(json), &text, &len, err);
    if (rc == 0)
        rc = repo_parse_config(text, len, "parameters.config", m, err);
    us_free(text);
    return rc;
}

TEST(json_config_fields)
{
    static repo_model m;
    usher_error err = {0};
    ASSERT_EQ_INT(json_cfg("{\"name\": \"m\", \"backend\": \"onnxruntime\", "
                           "\"max_batch_size\": \"8\", \"input\": [{\"name\": \"a\\\"b\", "
                           "\"data_type\": \"TYPE_INT64\", \"dims\": [\"3\", -1], \"format\": "
                           "\"FORMAT_NCHW\"}, {\"name\": \"s\", \"dims\": []}], "
                           "\"instance_group\": [{\"count\": 2}, {\"count\": 1, \"kind\": "
                           "\"KIND_GPU\"}], \"dynamic_batching\": {\"preferred_batch_size\": "
                           "[4, 2], \"max_queue_delay_microseconds\": \"100\"}, "
                           "\"optimization\": {\"x\": [1, {}]}}",
                           &m, &err),
                  0);
    ASSERT_EQ_INT((int)m.max_batch_size, 8);
    ASSERT_EQ_INT((int)m.n_inputs, 2);
    ASSERT_STR_EQ(m.inputs[0].name, "a\"b");
    ASSERT_EQ_INT(m.inputs[0].dtype, US_DT_INT64);
    ASSERT_EQ_INT(m.inputs[0].rank, 2);
    ASSERT_EQ_INT((int)m.inputs[0].dim[0], 3);
    ASSERT_EQ_INT((int)m.inputs[0].dim[1], -1);
    ASSERT_EQ_INT(m.inputs[1].rank, 0);
    /* count 2 of the default kind (KIND_AUTO) and 1 KIND_GPU, neither listing GPUs: 3 per
     * GPU of the machine */
    ASSERT_EQ_INT(m.instances, 0);
    ASSERT_EQ_INT(m.instances_per_gpu, 3);
    ASSERT_EQ_INT(repo_instances(&m, 2, NULL), 6);
    ASSERT(m.kind_gpu);
    ASSERT_EQ_INT(m.n_preferred, 2);
    ASSERT_EQ_INT(m.preferred_batch[0], 2);
    ASSERT_EQ_INT((int)m.max_queue_delay_us, 100);
    ASSERT_EQ_INT(json_cfg("{}", &m, &err), 0);
    ASSERT_EQ_INT((int)m.max_batch_size, -1);
    static const char *const bad[][2] = {
        {"{\"max_batch_size\": 2.5}", "parameters.config: field 'max_batch_size': expected an integer"},
        {"{\"max_batch_size\": \"2x\"}", "field 'max_batch_size': expected an integer"},
        {"{\"input\": [{\"name\": \"x\", \"dims\": [1, true]}]}", "field 'input[0].dims[1]'"},
        {"{\"input\": {\"name\": \"x\"}}", "field 'input': expected an array"},
        {"{\"input\": [{\"name\": \"x\", \"data_type\": \"fp32\"}]}", "field 'input[0].data_type'"},
        {"{\"input\": [{\"name\": \"x\\u0001\"}]}", "field 'input[0].name'"},
        {"{\"input\": [{\"data_type\": \"TYPE_FP32\"}]}", "field 'name' missing"},
        {"{\"input\": [{\"name\": \"x\", \"data_type\": \"TYPE_NOPE\"}]}", "unknown type 'TYPE_NOPE'"},
        {"{\"name\": \"other\"}", "differs from the model's directory name"},
        {"{\"platform\": \"tensorrt_plan\"}", "ONNX Runtime only"},
        {"{\"version_policy\": {\"all\": {}}}", "latest version only"},
        {"{\"dynamic_batching\": {\"preferred_batch_size\": 4}}", "field 'dynamic_batching.preferred_batch_size': expected an array"},
        {"[]", "expected a JSON object"},
        {"{\"a\": 1, \"a\": 2}", "parameters.config: not JSON"},
        {"{\"max_batch_size\": 1", "parameters.config: not JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        int rc = json_cfg(bad[i][0], &m, &err);
        if (rc == 0 || !strstr(err.msg, bad[i][1]))
            printf("  %s: rc %d, '%s'\n", bad[i][0], rc, err.msg);
        ASSERT(rc < 0);
        ASSERT(strstr(err.msg, bad[i][1]) != NULL);
    }
}

TEST_MAIN(TEST_ENTRY(seeds_and_mutants_through_fuzz_body), TEST_ENTRY(json_config_fields))
