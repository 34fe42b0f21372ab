/* test_main.c - the harness behind test.h. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

int test_failed_;
int test_shared_fixture_;

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
        fprintf(stderr, "%s is not set and has no default here: run the tests through ctest "
                        "(make test) or set it\n", var);
        exit(1);
    }
    return d;
}

const char *test_deps_dir(void) { return env_dir("USHER_TEST_DEPS"); }
const char *test_source_dir(void) { return env_dir("USHER_SOURCE_DIR"); }

/* tests/CMakeLists.txt passes the configured source tree */
#ifndef USHER_TEST_SOURCE_DIR
#define USHER_TEST_SOURCE_DIR ""
#endif

static bool env_unset(const char *var)
{
    const char *v = getenv(var);
    return !v || !*v;
}

/*
 * What ctest sets (tests/CMakeLists.txt, USHER_TEST_ENV), for a binary run by
 * hand: each variable only when unset, so ctest's values and the caller's win.
 * The build directory is the one above the binary's (<build>/tests/test_x).
 */
static void default_env(void)
{
    if (env_unset("USHER_SOURCE_DIR") && USHER_TEST_SOURCE_DIR[0])
        setenv("USHER_SOURCE_DIR", USHER_TEST_SOURCE_DIR, 1);
    if (env_unset("USHER_TEST_DEPS") && !env_unset("USHER_SOURCE_DIR")) {
        char deps[4096];
        snprintf(deps, sizeof deps, "%s/.deps/npm", getenv("USHER_SOURCE_DIR"));
        setenv("USHER_TEST_DEPS", deps, 1);
    }
    if (env_unset("USHER_BIN")) {
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 16);
        if (n > 0) {
            exe[n] = 0;
            for (int up = 0; up < 2; up++) { /* <build>/tests/test_x -> <build> */
                char *slash = strrchr(exe, '/');
                if (slash)
                    *slash = 0;
            }
            strcat(exe, "/usher");
            if (exe[0] == '/' && access(exe, X_OK) == 0)
                setenv("USHER_BIN", exe, 1);
        }
    }
    /* as ctest sets them, for the worker processes a test starts */
    if (env_unset("ASAN_OPTIONS"))
        setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:strict_string_checks=1", 1);
    if (env_unset("UBSAN_OPTIONS"))
        setenv("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1", 1);
}

/* and for this process under the sanitizers (ASAN_OPTIONS / UBSAN_OPTIONS still win) */
const char *__asan_default_options(void);
const char *__ubsan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_leaks=1:abort_on_error=1:strict_string_checks=1";
}
const char *__ubsan_default_options(void) { return "print_stacktrace=1:halt_on_error=1"; }

const char *test_path(const char *dir, const char *rel)
{
    static char slots[8][1024];
    static int next;
    char *s = slots[next++ % 8];
    snprintf(s, sizeof slots[0], "%s/%s", dir, rel);
    return s;
}

static bool selected(int argc, char **argv, const char *name)
{
    if (argc < 2)
        return true;
    for (int a = 1; a < argc; a++)
        if (strcmp(argv[a], name) == 0)
            return true;
    return false;
}

/* a fixture's set-up or tear-down, reported on its own line; true if it passed */
static bool run_fixture_step(const test_fixture *fx, bool setup)
{
    void (*fn)(void) = setup ? fx->setup : fx->teardown;
    if (!fn)
        return true;
    test_failed_ = 0;
    fn();
    printf("%s [%s %s]\n", test_failed_ ? "FAIL" : "ok  ", setup ? "set-up" : "tear-down",
           fx->name);
    fflush(stdout);
    return !test_failed_;
}

int test_run(int argc, char **argv, const test_entry *tests, size_t n)
{
    default_env();
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s%s%s%s\n", tests[i].name, tests[i].fixture ? "  (fixture " : "",
                   tests[i].fixture ? tests[i].fixture->name : "", tests[i].fixture ? ")" : "");
        return 0;
    }
    for (int a = 1; a < argc; a++) {
        size_t i = 0;
        while (i < n && strcmp(argv[a], tests[i].name) != 0)
            i++;
        if (i == n) {
            fprintf(stderr, "no test named '%s' (--list shows them)\n", argv[a]);
            return 2;
        }
    }
    int failures = 0, ran = 0, fixture_failures = 0;
    const test_fixture *up = NULL; /* the fixture set up now */
    bool up_ok = false;
    for (size_t i = 0; i < n; i++) {
        if (!selected(argc, argv, tests[i].name))
            continue;
        const test_fixture *fx = tests[i].fixture;
        if (up && up != fx) {
            fixture_failures += !run_fixture_step(up, false);
            up = NULL;
        }
        if (fx && up != fx) {
            up = fx;
            up_ok = run_fixture_step(fx, true);
            fixture_failures += !up_ok;
        }
        ran++;
        if (fx && !up_ok) {
            printf("FAIL %s (not run: set-up %s failed)\n", tests[i].name, fx->name);
            failures++;
            continue;
        }
        size_t live = us_alloc_live_bytes();
        test_failed_ = 0;
        tests[i].fn();
        size_t after = us_alloc_live_bytes();
        if (!test_failed_ && !fx && !test_shared_fixture_ && after != live) {
            fprintf(stderr, "  %s leaked %zu bytes through the allocation hook\n", tests[i].name,
                    after - live);
            test_failed_ = 1;
        }
        printf("%s %s\n", test_failed_ ? "FAIL" : "ok  ", tests[i].name);
        fflush(stdout);
        failures += test_failed_;
    }
    if (up)
        fixture_failures += !run_fixture_step(up, false);
    if (ran == 0) {
        fprintf(stderr, "no tests\n");
        return 2;
    }
    printf("%d of %d passed%s\n", ran - failures, ran,
           fixture_failures ? " (a fixture's set-up or tear-down failed)" : "");
    return failures || fixture_failures ? 1 : 0;
}

bool test_read_file(const char *path, test_blob *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b->p = malloc(n > 0 ? (size_t)n : 1);
    b->n = b->p && n > 0 ? fread(b->p, 1, (size_t)n, f) : 0;
    fclose(f);
    const char *base = strrchr(path, '/');
    snprintf(b->name, sizeof b->name, "%s", base ? base + 1 : path);
    return b->p != NULL;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int test_load_dir(const char *dir_in, const char *suffix, test_blob *out, int max)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", dir_in); /* test_path's buffers rotate */
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char **names = NULL;
    size_t nn = 0, cap = 0, sl = strlen(suffix);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < sl || strcmp(e->d_name + l - sl, suffix) != 0)
            continue;
        if (nn == cap) {
            cap = cap ? cap * 2 : 64;
            char **nw = realloc(names, cap * sizeof *nw);
            if (!nw)
                break;
            names = nw;
        }
        names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, nn, sizeof *names, cmp_name);
    int n = 0;
    for (size_t i = 0; i < nn; i++) {
        if (n < max && names[i] && test_read_file(test_path(dir, names[i]), &out[n]))
            n++;
        free(names[i]);
    }
    free(names);
    return n;
}

void test_blobs_free(test_blob *b, int n)
{
    for (int i = 0; i < n; i++)
        free(b[i].p);
}

uint64_t test_splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

size_t test_mutate(const test_mutator *mu, const test_blob *a, const test_blob *b, uint8_t *m,
                   size_t cap)
{
    uint64_t *r = mu->rng;
    size_t np = strlen(mu->punct);
    size_t len = a->n < cap ? a->n : cap;
    if (len == 0)
        return 0;
    memcpy(m, a->p, len);
    int ops = test_splitmix(r) % 4 ? 1 : 2 + (int)(test_splitmix(r) % 3); /* mostly one edit */
    for (int k = 0; k < ops; k++) {
        switch (test_splitmix(r) % 7) {
        case 0: /* bit flip */
            if (len > 1)
                m[1 + test_splitmix(r) % (len - 1)] ^= (uint8_t)(1u << (test_splitmix(r) % 8));
            break;
        case 1: /* byte replaced by a structure character */
            if (len > 1)
                m[1 + test_splitmix(r) % (len - 1)] = (uint8_t)mu->punct[test_splitmix(r) % np];
            break;
        case 2: { /* a token, a structure character or any byte inserted */
            char one[2] = {0, 0};
            const char *w = one;
            uint64_t pick = test_splitmix(r) % 3;
            if (pick == 0 && mu->n_words)
                w = mu->words[test_splitmix(r) % mu->n_words];
            else
                one[0] = pick == 1 ? mu->punct[test_splitmix(r) % np] : (char)test_splitmix(r);
            size_t wl = w == one ? 1 : strlen(w), at = 1 + (size_t)(test_splitmix(r) % len);
            if (at > len)
                at = len;
            if (len + wl <= cap) {
                memmove(m + at + wl, m + at, len - at);
                memcpy(m + at, w, wl);
                len += wl;
            }
            break;
        }
        case 3: /* bytes deleted */
            if (len > 1) {
                size_t at = 1 + (size_t)(test_splitmix(r) % (len - 1));
                size_t del = 1 + (size_t)(test_splitmix(r) % 8);
                if (del > len - at)
                    del = len - at;
                memmove(m + at, m + at + del, len - at - del);
                len -= del;
            }
            break;
        case 4: { /* splice: our head, b's tail */
            size_t head = 1 + (size_t)(test_splitmix(r) % len);
            if (head > len)
                head = len;
            size_t from = b->n > 1 ? 1 + (size_t)(test_splitmix(r) % (b->n - 1)) : b->n;
            size_t tail = b->n - from;
            if (head + tail > cap)
                tail = cap - head;
            memcpy(m + head, b->p + from, tail);
            len = head + tail;
            break;
        }
        case 5: /* truncation */
            len = 1 + (size_t)(test_splitmix(r) % len);
            break;
        default: /* the same bytes under another mode */
            if (mu->n_modes)
                m[0] = (uint8_t)(test_splitmix(r) % mu->n_modes);
            break;
        }
    }
    return len;
}

us_tensor test_tensor(const char *name, us_dtype dt, int rank, const int64_t *dims, void *data,
                      uint64_t bytes)
{
    us_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.dtype = dt;
    t.shape.rank = rank;
    for (int i = 0; i < rank; i++)
        t.shape.dim[i] = dims[i];
    t.data = data;
    t.bytes = bytes;
    return t;
}

int test_usher(const char *args, char *out, size_t out_cap, char *err, size_t err_cap)
{
    const char *dir = test_tmpdir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s > out.txt 2> err.txt", dir, getenv("USHER_BIN"),
             args);
    int st = system(cmd);
    const char *files[2] = {"out.txt", "err.txt"};
    char *bufs[2] = {out, err};
    size_t caps[2] = {out_cap, err_cap};
    for (int k = 0; k < 2; k++) {
        bufs[k][0] = 0;
        FILE *f = fopen(test_path(dir, files[k]), "r");
        if (f) {
            size_t n = fread(bufs[k], 1, caps[k] - 1, f);
            bufs[k][n] = 0;
            fclose(f);
        }
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void test_write_file(const char *name, const char *text)
{
    FILE *f = fopen(test_path(test_tmpdir(), name), "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}
