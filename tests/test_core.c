/* test_core.c - layer 1: allocation hook, arena, buffers and JSON, hashing, files, asserts. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/assert.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"
#include "core/hash.h"
#include "test.h"

TEST(alloc_counts_and_fails_on_demand)
{
    size_t live = us_alloc_live_bytes();
    void *p = us_malloc(100);
    ASSERT(p);
    ASSERT_EQ_U64(us_alloc_live_bytes(), live + 100);
    p = us_realloc(p, 300);
    ASSERT(p);
    ASSERT_EQ_U64(us_alloc_live_bytes(), live + 300);
    us_alloc_fail_nth(1);
    void *q = us_realloc(p, 1000); /* fails: p must stay valid */
    ASSERT(q == NULL);
    ASSERT_EQ_U64(us_alloc_live_bytes(), live + 300);
    memset(p, 1, 300);
    us_alloc_fail_nth(2);
    void *a = us_malloc(8), *b = us_malloc(8), *c = us_malloc(8);
    ASSERT(a && !b && c); /* only the second failed */
    us_free(a);
    us_free(c);
    us_free(p);
    us_free(NULL);
    ASSERT_EQ_U64(us_alloc_live_bytes(), live);
    ASSERT(us_calloc(SIZE_MAX / 2, 4) == NULL); /* overflow, not a wrapped size */
    ASSERT(us_mallocarray(SIZE_MAX / 2, 4) == NULL);
}

TEST(arena_alignment_and_big_blocks)
{
    us_arena a;
    us_arena_init(&a, 128);
    for (int i = 1; i < 50; i++) {
        unsigned char *p = us_arena_alloc(&a, (size_t)i);
        ASSERT(p);
        ASSERT_EQ_INT((uintptr_t)p % 16, 0);
        for (int k = 0; k < i; k++)
            ASSERT_EQ_INT(p[k], 0);
        memset(p, 0xAB, (size_t)i);
    }
    char *big = us_arena_alloc(&a, 100000);
    ASSERT(big);
    memset(big, 1, 100000);
    char *s = us_arena_strdup(&a, "hello");
    ASSERT_STR_EQ(s, "hello");
    ASSERT(us_arena_array(&a, SIZE_MAX / 2, 8) == NULL);
    us_alloc_fail_nth(1);
    ASSERT(us_arena_alloc(&a, 1000) == NULL);
    us_arena_free(&a);
    us_arena_free(NULL);
}

TEST(buf_caps_growth)
{
    us_buf b;
    us_buf_init(&b, 16);
    us_buf_puts(&b, "0123456789");
    ASSERT(us_buf_ok(&b));
    us_buf_puts(&b, "0123456789");
    ASSERT(b.overflow);
    ASSERT_EQ_U64(b.len, 10);
    us_buf_free(&b);
    us_buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        us_buf_printf(&b, "%d,", i);
    ASSERT(us_buf_ok(&b));
    ASSERT_CONTAINS(us_buf_str(&b), "998,999,");
    us_buf_free(&b);
}

TEST(json_escapes_and_validates)
{
    us_buf b;
    us_buf_init(&b, 0);
    us_json j;
    us_json_init(&j, &b);
    us_json_obj_begin(&j);
    us_json_key(&j, "s");
    us_json_strn(&j, "a\"b\\c\n\x01\xff\xc3\xa9", 10);
    us_json_key(&j, "n");
    us_json_double(&j, 1.0 / 0.0);
    us_json_key(&j, "a");
    us_json_arr_begin(&j);
    us_json_int(&j, -5);
    us_json_uint(&j, 18446744073709551615ull);
    us_json_bool(&j, true);
    us_json_null(&j);
    us_json_arr_end(&j);
    us_json_obj_end(&j);
    ASSERT(!j.bad);
    ASSERT_STR_EQ(us_buf_str(&b),
                  "{\"s\":\"a\\\"b\\\\c\\n\\u0001\\ufffd\xc3\xa9\",\"n\":null,"
                  "\"a\":[-5,18446744073709551615,true,null]}");
    us_buf_free(&b);
    us_buf_init(&b, 0);
    us_json_init(&j, &b);
    for (int i = 0; i < US_JSON_MAX_DEPTH + 2; i++)
        us_json_arr_begin(&j);
    ASSERT(j.bad); /* depth limit reported, not overflowed */
    us_buf_free(&b);
}

TEST(hash_matches_xxh64_vectors)
{
    ASSERT_EQ_U64(us_hash64("", 0, 0), 0xEF46DB3751D8E999ULL);
    ASSERT_EQ_U64(us_hash64("a", 1, 0), 0xD24EC4F1A98C6E5BULL);
    ASSERT_EQ_U64(us_hash64("abc", 3, 0), 0x44BC2CF5AD770999ULL);
    const char *s = "Nobody inspects the spammish repetition";
    ASSERT_EQ_U64(us_hash64(s, strlen(s), 0), 0xFBCEA83C8A378BF1ULL);
    /* incremental == one-shot for every split point of a long input */
    unsigned char data[300];
    for (int i = 0; i < 300; i++)
        data[i] = (unsigned char)(i * 7 + 3);
    uint64_t whole = us_hash64(data, sizeof data, 42);
    for (size_t cut = 0; cut <= sizeof data; cut += 13) {
        us_hash_state st;
        us_hash_init(&st, 42);
        us_hash_update(&st, data, cut);
        us_hash_update(&st, data + cut, sizeof data - cut);
        ASSERT_EQ_U64(us_hash_final(&st), whole);
    }
}

TEST(map_put_get_grow)
{
    us_map m;
    us_map_init(&m);
    static char keys[500][16];
    for (int i = 0; i < 500; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        ASSERT_EQ_INT(us_map_put(&m, keys[i], &keys[i], NULL), 1);
    }
    void *ex = NULL;
    ASSERT_EQ_INT(us_map_put(&m, "k7", NULL, &ex), 0);
    ASSERT(ex == &keys[7]);
    for (int i = 0; i < 500; i++)
        ASSERT(us_map_get(&m, keys[i]) == &keys[i]);
    ASSERT(us_map_get(&m, "nope") == NULL);
    us_map_free(&m);
}

TEST(errors_name_codes_and_prefix)
{
    usher_error err;
    ASSERT_EQ_INT(us_err_set(&err, USHER_ERR_PARSE, "field %s", "x"), USHER_ERR_PARSE);
    ASSERT_EQ_INT(us_err_prefix(&err, USHER_ERR_PARSE, "%s: ", "model.onnx"), USHER_ERR_PARSE);
    ASSERT_STR_EQ(err.msg, "model.onnx: field x");
    us_err_clear(&err);
    ASSERT_EQ_INT(us_err_prefix(&err, USHER_ERR_NOMEM, "m: "), USHER_ERR_NOMEM);
    ASSERT_STR_EQ(err.msg, "m: out of memory (no detail)");
    ASSERT_EQ_U64(us_err_missing_detail_count(), 1); /* the bug is counted */
    ASSERT_STR_EQ(usher_status_name(USHER_ERR_LIMIT), "USHER_ERR_LIMIT");
    ASSERT_STR_EQ(usher_status_name(12345), "USHER_UNKNOWN");
    ASSERT_EQ_INT(us_err_set(NULL, USHER_ERR_IO, "dropped"), USHER_ERR_IO);
}

TEST(relative_paths_are_checked)
{
    usher_error err;
    const char *bad[] = {"", "/etc/passwd", "../x", "a/../b", "a/./b", "a//b", "a/", ".",
                         "..", "a\\b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (us_path_check_relative(bad[i], &err) != USHER_ERR_DENIED)
            FAIL_("path '%s' was accepted", bad[i]);
    }
    ASSERT_EQ_INT(us_path_check_relative("weights.bin", &err), USHER_OK);
    ASSERT_EQ_INT(us_path_check_relative("sub/dir/w..bin", &err), USHER_OK);
    ASSERT_EQ_INT(us_path_check_relative("...", &err), USHER_OK);
}

static void write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(s, f);
        fclose(f);
    }
}

TEST(open_beneath_refuses_escapes)
{
    usher_error err;
    const char *d = test_tmpdir();
    char sub[512], out[512];
    snprintf(sub, sizeof sub, "%s/beneath", d);
    mkdir(sub, 0755);
    write_file(test_path(sub, "ok.bin"), "data");
    mkdir(test_path(sub, "inner"), 0755);
    write_file(test_path(sub, "inner/w.bin"), "data");
    snprintf(out, sizeof out, "%s/outside.bin", d);
    write_file(out, "secret");
    ASSERT_EQ_INT(symlink(out, test_path(sub, "link.bin")), 0);
    ASSERT_EQ_INT(symlink(test_path(sub, "inner"), test_path(sub, "dirlink")), 0);
    ASSERT_EQ_INT(link(test_path(sub, "ok.bin"), test_path(sub, "hard.bin")), 0);
    int dfd = open(sub, O_RDONLY | O_DIRECTORY);
    ASSERT(dfd >= 0);
    int fd = us_file_open_beneath(dfd, "inner/w.bin", &err);
    ASSERT(fd >= 0);
    close(fd);
    ASSERT_EQ_INT(us_file_open_beneath(dfd, "link.bin", &err), USHER_ERR_DENIED);
    ASSERT_EQ_INT(us_file_open_beneath(dfd, "dirlink/w.bin", &err), USHER_ERR_DENIED);
    ASSERT_EQ_INT(us_file_open_beneath(dfd, "../outside.bin", &err), USHER_ERR_DENIED);
    ASSERT_EQ_INT(us_file_open_beneath(dfd, "hard.bin", &err), USHER_ERR_DENIED);
    ASSERT_CONTAINS(err.msg, "hard links");
    ASSERT_EQ_INT(us_file_open_beneath(dfd, "inner", &err), USHER_ERR_DENIED);
    ASSERT_EQ_INT(us_file_open_beneath(dfd, "missing.bin", &err), USHER_ERR_NOT_FOUND);
    close(dfd);
}

TEST(file_map_limits_and_writer)
{
    usher_error err;
    const char *p = test_path(test_tmpdir(), "m.bin");
    ASSERT_OK(us_file_write_atomic(p, "0123456789", 10, &err));
    us_mapped m;
    ASSERT_OK(us_file_map(p, 10, &m, &err));
    ASSERT_EQ_U64(m.len, 10);
    ASSERT(memcmp(m.data, "0123456789", 10) == 0);
    us_file_unmap(&m);
    ASSERT_EQ_INT(us_file_map(p, 9, &m, &err), USHER_ERR_LIMIT);
    ASSERT_EQ_INT(us_file_map(test_tmpdir(), 100, &m, &err), USHER_ERR_INVALID);
    ASSERT_EQ_INT(us_file_map(test_path(test_tmpdir(), "nope"), 100, &m, &err),
                  USHER_ERR_NOT_FOUND);
    /* an aborted writer leaves the old file alone and no temp file behind */
    us_writer w;
    ASSERT_OK(us_writer_open(&w, p, &err));
    us_writer_write(&w, "xx", 2);
    us_writer_abort(&w);
    ASSERT_OK(us_file_map(p, 100, &m, &err));
    ASSERT_EQ_U64(m.len, 10);
    us_file_unmap(&m);
}

/* A special file (here a FIFO; /dev/null in real use) is written into, never renamed over:
 * as root, `usher plan -o /dev/null` replaced the device node with a regular file. A
 * directory is refused, naming it. */
TEST(writer_keeps_special_files)
{
    usher_error err;
    const char *fifo = test_path(test_tmpdir(), "out.fifo");
    unlink(fifo);
    ASSERT_EQ_INT(mkfifo(fifo, 0600), 0);
    int rd = open(fifo, O_RDONLY | O_NONBLOCK); /* a reader, so the writer's open returns */
    ASSERT(rd >= 0);
    ASSERT_OK(us_file_write_atomic(fifo, "hello", 5, &err));
    char got[16] = {0};
    ASSERT_EQ_INT((int)read(rd, got, sizeof got), 5);
    ASSERT(memcmp(got, "hello", 5) == 0);
    /* us_file_replace: a finished temporary copied into the FIFO, then removed */
    const char *tmp = test_path(test_tmpdir(), "out.tmp");
    ASSERT_OK(us_file_write_atomic(tmp, "world", 5, &err));
    ASSERT_OK(us_file_replace(tmp, fifo, &err));
    ASSERT_EQ_INT((int)read(rd, got, sizeof got), 5);
    ASSERT(memcmp(got, "world", 5) == 0);
    ASSERT(access(tmp, F_OK) != 0);
    close(rd);
    struct stat st;
    ASSERT_EQ_INT(stat(fifo, &st), 0);
    ASSERT(S_ISFIFO(st.st_mode));
    ASSERT(us_file_is_special(fifo) && us_file_is_special("/dev/null"));
    ASSERT(!us_file_is_special(tmp) && !us_file_is_special(test_tmpdir()));
    unlink(fifo);
    /* a directory: refused, and nothing written beside it */
    ASSERT_EQ_INT(us_file_write_atomic(test_tmpdir(), "x", 1, &err), USHER_ERR_IO);
    ASSERT(strstr(err.msg, "is a directory") != NULL);
    /* a regular file is still replaced by rename */
    ASSERT_OK(us_file_write_atomic(tmp, "a", 1, &err));
    const char *tmp2 = test_path(test_tmpdir(), "out2.tmp");
    ASSERT_OK(us_file_write_atomic(tmp2, "bb", 2, &err));
    ASSERT_OK(us_file_replace(tmp2, tmp, &err));
    ASSERT_EQ_INT(stat(tmp, &st), 0);
    ASSERT(S_ISREG(st.st_mode) && st.st_size == 2);
    unlink(tmp);
}

/* Run one check in a child whose stderr goes to a pipe: *sig gets the signal that ended it
 * (0 if it exited 0, -1 on any other end), msg what it wrote. */
static void run_child_check(int debug, char *msg, size_t cap, int *sig)
{
    int fd[2];
    *sig = -1;
    msg[0] = 0;
    if (pipe(fd) != 0)
        return;
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], STDERR_FILENO);
        volatile int one = 1;
        if (debug)
            US_DEBUG_ASSERT(one == 2);
        else
            US_ASSERT(one == 2);
        _exit(0);
    }
    close(fd[1]);
    if (pid < 0) {
        close(fd[0]);
        return;
    }
    size_t n = 0;
    ssize_t k;
    while (n + 1 < cap && (k = read(fd[0], msg + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    msg[n] = 0;
    close(fd[0]);
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return;
    if (WIFSIGNALED(st))
        *sig = WTERMSIG(st);
    else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        *sig = 0;
}

TEST(assert_aborts_with_file_line_and_expression)
{
    char msg[1024];
    int sig;
    volatile int one = 1;
    US_ASSERT(one == 1); /* a check that holds does nothing */
    US_DEBUG_ASSERT(one == 1);
    run_child_check(0, msg, sizeof msg, &sig);
    ASSERT_EQ_INT(sig, SIGABRT);
    ASSERT_CONTAINS(msg, "test_core.c:");
    ASSERT_CONTAINS(msg, "run_child_check: assertion failed: one == 2");
    /* US_DEBUG_ASSERT: the same in debug and sanitizer builds, nothing otherwise */
    run_child_check(1, msg, sizeof msg, &sig);
    if (US_DEBUG_ASSERTS) {
        ASSERT_EQ_INT(sig, SIGABRT);
        ASSERT_CONTAINS(msg, "assertion failed: one == 2");
    } else {
        ASSERT_EQ_INT(sig, 0);
        ASSERT_STR_EQ(msg, "");
    }
}

TEST_MAIN(TEST_ENTRY(alloc_counts_and_fails_on_demand), TEST_ENTRY(arena_alignment_and_big_blocks),
          TEST_ENTRY(buf_caps_growth), TEST_ENTRY(json_escapes_and_validates),
          TEST_ENTRY(hash_matches_xxh64_vectors), TEST_ENTRY(map_put_get_grow),
          TEST_ENTRY(errors_name_codes_and_prefix), TEST_ENTRY(relative_paths_are_checked),
          TEST_ENTRY(open_beneath_refuses_escapes), TEST_ENTRY(file_map_limits_and_writer),
          TEST_ENTRY(writer_keeps_special_files),
          TEST_ENTRY(assert_aborts_with_file_line_and_expression))
