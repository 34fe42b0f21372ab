/*
 * bench_load.c - how long loading a model takes next to reading its file,
 * and how much memory it needs next to the file's size.
 *
 *   bench_load MODEL [RUNS]
 *
 * Timings are medians over RUNS (default 15) with the file in the page
 * cache (one untimed warm-up read first), so they compare CPU work, not the
 * disk. Each figure is in its own child process, so mappings and heap of
 * one run never help the next:
 *   read       read() the whole file into a heap buffer (a loader's baseline);
 *   stream     read() it in 1 MiB pieces into one reused buffer: the least
 *              work that touches every byte (ratios use the faster baseline);
 *   load       usher_model_load + usher_model_infer (batch 1): structure,
 *              shapes, costs; weight bytes stay mapped and untouched;
 *   load+hash  the same plus hashing every weight byte (what the merger
 *              does), i.e. every byte of the file is touched once.
 * Peak memory is the child's peak resident set (getrusage ru_maxrss), which
 * counts mapped file pages that were touched as well as heap.
 * Output: one line per figure and the ratios the foundation issue targets
 * (load+hash / read <= 2, peak / file size <= 1.5).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "onnx/model_impl.h"
#include "usher/model.h"
#include "bench.h"

static int do_read(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return 1;
    char *buf = malloc((size_t)st.st_size);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    volatile char sink = buf && got ? buf[got / 2] : 0;
    (void)sink;
    free(buf);
    return got == (size_t)st.st_size ? 0 : 1;
}

static int do_stream(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 1;
    static char buf[1 << 20];
    ssize_t r;
    unsigned long sum = 0;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        sum += (unsigned char)buf[r / 2];
    close(fd);
    volatile unsigned long sink = sum;
    (void)sink;
    return r < 0;
}

static uint64_t hash_graph(ir_graph *g)
{
    uint64_t h = 0;
    for (uint32_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i]->flags & IR_TF_CONST)
            h ^= ir_tensor_hash(g->tensors[i]);
    for (uint32_t i = 0; i < g->n_nodes; i++)
        for (uint32_t a = 0; a < g->nodes[i]->n_attr; a++)
            if (g->nodes[i]->attr[a].g)
                h ^= hash_graph(g->nodes[i]->attr[a].g);
    return h;
}

static int do_load(const char *path, bool hash)
{
    usher_model *m;
    usher_error err;
    if (usher_model_load(path, NULL, &m, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    usher_shape_params sp = usher_shape_default_params();
    sp.batch = 1;
    usher_model_infer(m, &sp, &err);
    volatile uint64_t h = hash ? hash_graph(m->ir->main) : 0;
    (void)h;
    usher_model_free(m);
    return 0;
}

/* run one job in a child; its wall time and peak RSS (KiB) */
static int child(const char *path, int kind, double *secs, long *rss_kb)
{
    double t0 = now();
    pid_t pid = fork();
    if (pid == 0)
        _exit(kind == 0 ? do_read(path) : kind == 3 ? do_stream(path) : do_load(path, kind == 2));
    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return -1;
    *secs = now() - t0;
    *rss_kb = ru.ru_maxrss;
    return 0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--once") == 0) {
        /* one job in this process, for external timers (/usr/bin/time -v, hyperfine) */
        const char *mode = argv[2];
        if (strcmp(mode, "read") == 0)
            return do_read(argv[3]);
        if (strcmp(mode, "stream") == 0)
            return do_stream(argv[3]);
        if (strcmp(mode, "load") == 0 || strcmp(mode, "load+hash") == 0)
            return do_load(argv[3], strcmp(mode, "load+hash") == 0);
        fprintf(stderr, "bench_load: unknown mode '%s'\n", mode);
        return 2;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: bench_load MODEL [RUNS]\n"
                        "       bench_load --once read|stream|load|load+hash MODEL\n");
        return 2;
    }
    const char *path = argv[1];
    int runs = 15;
    if (argc > 2) {
        char *end;
        long v = strtol(argv[2], &end, 10);
        if (*end || v < 1 || v > 1000) {
            fprintf(stderr, "bench_load: RUNS must be 1..1000\n");
            return 2;
        }
        runs = (int)v;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return 1;
    }
    double dummy;
    long rss;
    child(path, 0, &dummy, &rss); /* warm the page cache */
    /* the empty-child overhead (fork + exit) is measured and subtracted */
    const char *names[] = {"read", "load", "load+hash", "stream"};
    double med[4], peak_mb[4];
    double *t = calloc((size_t)runs, sizeof *t);
    for (int k = 0; k < 4; k++) {
        long max_rss = 0;
        for (int r = 0; r < runs; r++) {
            if (child(path, k, &t[r], &rss) < 0) {
                fprintf(stderr, "%s run failed\n", names[k]);
                return 1;
            }
            if (rss > max_rss)
                max_rss = rss;
        }
        qsort(t, (size_t)runs, sizeof *t, cmp);
        med[k] = t[runs / 2];
        peak_mb[k] = (double)max_rss / 1024.0;
    }
    free(t);
    double file_mb = (double)st.st_size / (1024.0 * 1024.0);
    printf("model %s: %.1f MiB, %d runs per figure (median wall time of a child process)\n", path,
           file_mb, runs);
    for (int k = 0; k < 4; k++)
        printf("  %-10s %8.2f ms   peak RSS %8.1f MiB (%.2fx file)\n", names[k], med[k] * 1e3,
               peak_mb[k], peak_mb[k] / file_mb);
    double base = med[0] < med[3] ? med[0] : med[3];
    printf("  ratio vs the faster read: load %.2f, load+hash %.2f (target <= 2); peak "
           "load+hash/file %.2f (target <= 1.5)\n",
           med[1] / base, med[2] / base, peak_mb[2] / file_mb);
    return 0;
}
