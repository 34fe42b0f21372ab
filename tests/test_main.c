/* test_main.c - the harness behind test.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

int test_failed_;

static char tmpdir[256];

static void rm_tmp(void)
{
    if (tmpdir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    }
}

const char *test_tmpdir(void)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/usher-test-XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(rm_tmp);
    }
    return tmpdir;
}

static const char *env_dir(const char *var)
{
    const char *d = getenv(var);
    if (!d || !*d) {
        fprintf(stderr, "%s is not set: run the tests through ctest (make test)\n", var);
        exit(1);
    }
    return d;
}

const char *test_deps_dir(void) { return env_dir("USHER_TEST_DEPS"); }
const char *test_source_dir(void) { return env_dir("USHER_SOURCE_DIR"); }

const char *test_path(const char *dir, const char *rel)
{
    static char slots[8][1024];
    static int next;
    char *s = slots[next++ % 8];
    snprintf(s, sizeof slots[0], "%s/%s", dir, rel);
    return s;
}

int test_run(int argc, char **argv, const test_entry *tests, size_t n)
{
    int failures = 0, ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
            continue;
        size_t live = us_alloc_live_bytes();
        test_failed_ = 0;
        tests[i].fn();
        ran++;
        size_t after = us_alloc_live_bytes();
        if (!test_failed_ && after != live) {
            fprintf(stderr, "  %s leaked %zu bytes through the allocation hook\n", tests[i].name,
                    after - live);
            test_failed_ = 1;
        }
        printf("%s %s\n", test_failed_ ? "FAIL" : "ok  ", tests[i].name);
        fflush(stdout);
        failures += test_failed_;
    }
    if (ran == 0) {
        fprintf(stderr, "no test named '%s'\n", argc > 1 ? argv[1] : "");
        return 2;
    }
    printf("%d of %d passed\n", ran - failures, ran);
    return failures ? 1 : 0;
}
