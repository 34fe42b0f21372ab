/*
 * test_fuzz_config.c - the config.pbtxt reader's fuzz body (fuzz/fuzz_config.c)
 * in every build: fuzz/corpus-config replayed, then deterministic mutants of
 * it (test_mutate, no mode byte), each through the same contract checks the
 * libFuzzer target makes (a violation aborts).
 */
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
        bool bad = strncmp(seeds[i].name, "bad-", 4) == 0;
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

TEST_MAIN(TEST_ENTRY(seeds_and_mutants_through_fuzz_body))
