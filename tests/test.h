/*
 * test.h - usher's minimal test harness (libuv's test/task.h in spirit).
 *
 * A test file defines TEST(name) functions and a TEST_MAIN; main() runs them
 * in order (or only those named on the command line; --list prints the
 * names) and exits non-zero if any failed. Typed asserts print both sides. After each test the
 * allocation hook must be back where it was: a test that leaks through
 * us_malloc fails even if its asserts passed.
 */
#ifndef USHER_TEST_H
#define USHER_TEST_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/tensor.h"

extern int test_failed_;
/* Set by a file whose tests share one long-lived fixture (a running server):
 * the per-test leak check is off, and the file checks the whole run itself. */
extern int test_shared_fixture_;

#define TEST(name) static void name(void)

#define FAIL_(...)                                                                                 \
    do {                                                                                           \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                          \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        test_failed_ = 1;                                                                          \
        return;                                                                                    \
    } while (0)

#define ASSERT(c)                                                                                  \
    do {                                                                                           \
        if (!(c))                                                                                  \
            FAIL_("assertion failed: %s", #c);                                                     \
    } while (0)

#define ASSERT_EQ_INT(a, b)                                                                        \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_);                                       \
    } while (0)

#define ASSERT_EQ_U64(a, b)                                                                        \
    do {                                                                                           \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);             \
        if (a_ != b_)                                                                              \
            FAIL_("%s == %s: %llu != %llu", #a, #b, a_, b_);                                       \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");   \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_))                                                                \
            FAIL_("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_);                       \
    } while (0)

/* a call returning a status with an usher_error named err in scope */
#define ASSERT_OK(call)                                                                            \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != 0)                                                                              \
            FAIL_("%s failed (%d): %s", #call, rc_, err.msg);                                      \
    } while (0)

#define ASSERT_NEAR_PCT(a, b, pct)                                                                 \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        double d_ = a_ > b_ ? a_ - b_ : b_ - a_;                                                   \
        if (d_ > (pct) / 100.0 * (b_ < 0 ? -b_ : b_))                                              \
            FAIL_("%s ~ %s within %g%%: %.6g vs %.6g (%.2f%% off)", #a, #b, (double)(pct), a_, b_, \
                  b_ ? 100.0 * d_ / (b_ < 0 ? -b_ : b_) : 0.0);                                    \
    } while (0)

/*
 * A fixture: state several tests share (a running server), set up by the
 * harness before the first test that names it and torn down after the last
 * one of a run of such tests (or when the program ends), so any one of them
 * can be run alone by name. setup and teardown are TEST-style functions:
 * their ASSERTs fail the set-up (its tests are then reported failed, not
 * run; teardown still runs, so it must cope with a half-done set-up) or the
 * teardown (reported as its own failing line). Tests under a fixture skip
 * the per-test leak check: the teardown checks the whole run instead.
 */
typedef struct test_fixture {
    const char *name;
    void (*setup)(void);
    void (*teardown)(void);
} test_fixture;

typedef struct test_entry {
    const char *name;
    void (*fn)(void);
    const test_fixture *fixture; /* NULL: none */
} test_entry;

#define TEST_ENTRY(fn_) {.name = #fn_, .fn = fn_, .fixture = NULL}
/* a test that runs with fixture fx (a test_fixture variable) set up */
#define TEST_ENTRY_F(fn_, fx) {.name = #fn_, .fn = fn_, .fixture = &(fx)}

int test_run(int argc, char **argv, const test_entry *tests, size_t n);

#define TEST_MAIN(...)                                                                             \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        static const test_entry tests_[] = {__VA_ARGS__};                                          \
        return test_run(argc, argv, tests_, sizeof tests_ / sizeof tests_[0]);                     \
    }

/*
 * ctest sets USHER_TEST_DEPS, USHER_SOURCE_DIR and USHER_BIN; a test binary
 * run by hand (build/tests/test_x [NAME...]) sets each one that is unset
 * before its tests run: the source tree CMake configured, its .deps/npm, and
 * <build>/usher where <build> is the directory above the binary's own.
 */
/* Directory of the npm test models (.deps/npm), from USHER_TEST_DEPS. */
const char *test_deps_dir(void);
/* Source tree root, from USHER_SOURCE_DIR. */
const char *test_source_dir(void);
/* path = dir + "/" + rel into a static buffer slot (8 slots rotate). */
const char *test_path(const char *dir, const char *rel);
/* a tensor named name of dtype dt and shape dims[0..rank), over data (not copied) */
us_tensor test_tensor(const char *name, us_dtype dt, int rank, const int64_t *dims, void *data,
                      uint64_t bytes);
/* A fresh empty temporary directory (removed at exit). */
const char *test_tmpdir(void);
/* `usher ARGS` (the binary of USHER_BIN) run from test_tmpdir(): its exit
 * status (-1 when it did not exit), its stdout and stderr in out and err
 * (NUL-terminated, cut at their capacities) */
int test_usher(const char *args, char *out, size_t out_cap, char *err, size_t err_cap);
/* text written to test_tmpdir()/name */
void test_write_file(const char *name, const char *text);

/* A file's bytes (plain malloc: outside the allocation hook's accounting). */
typedef struct test_blob {
    uint8_t *p;
    size_t n;
    char name[256]; /* base name */
} test_blob;
bool test_read_file(const char *path, test_blob *b);
/* The files of dir whose names end in suffix ("" for all; dot files skipped),
 * in name order so mutants derived from them are the same on every machine;
 * at most max. Returns how many were read. */
int test_load_dir(const char *dir, const char *suffix, test_blob *out, int max);
void test_blobs_free(test_blob *b, int n);
/* splitmix64: a deterministic generator for mutants, the same everywhere */
uint64_t test_splitmix(uint64_t *state);
/*
 * One mutant of a fuzz seed a (b for splices) into m (capacity cap); returns
 * its length. Byte 0 of a seed is the fuzz body's mode byte: edits start at 1,
 * and one kind of edit picks another mode (0 .. n_modes-1). punct: structure
 * characters of the format; words: tokens to insert (may be NULL).
 */
typedef struct test_mutator {
    const char *punct;
    const char *const *words;
    size_t n_words;
    unsigned n_modes;
    uint64_t *rng;
} test_mutator;
size_t test_mutate(const test_mutator *mu, const test_blob *a, const test_blob *b, uint8_t *m,
                   size_t cap);

#endif
