/*
 * worker_main.c - the worker process (layer 7): `usher worker ...`, started
 * by the server (worker.c) for one replica; it loads one model and runs the
 * batches the server sends. The messages are in ipc.h.
 *
 *   usher worker --socket-fd N --shm-fd M --model PATH [--device cpu|cuda:K]
 *                [--threads T] [--inter-threads T] [--optimization 0..3]
 *                [--ort-lib PATH] [--max-output-bytes B] [--sm-percentage P]
 *
 * Not a command for people: the fds must be a SOCK_SEQPACKET socket and a
 * memfd set up by the server. Arguments are parsed strictly (every value
 * bounded; unknown options, missing values and bad numbers are exit 2).
 *
 * Steps: check the fds, map the region (its size is the memfd's, asked of
 * the kernel, not of argv), be_open the model, send HELLO (on failure HELLO
 * carries the error and the process exits 1), then serve:
 *
 *   main thread (reads the socket while idle)   watcher thread (reads it during a
 *   PING  -> PONG                                 long run only)
 *   RUN   -> checks it, be_run over views of     wakes when a run has lasted
 *            the region, outputs copied into      WATCH_AFTER_MS, then until the run
 *            the region after the inputs,         ends: PING -> PONG, RUN -> DONE
 *            DONE (LIMIT if they do not fit)      "already running", QUIT -> stop
 *   QUIT  -> stop                                 after the run, EOF -> _exit at once
 *   EOF   -> the server is gone: stop
 *
 * The thread that receives a RUN runs it: no hand-off between threads on the
 * way of a batch (each one costs a thread wake-up, tens of microseconds on a
 * virtual machine). The watcher exists so that a long run still answers the
 * server's heartbeats; it costs a short run nothing (main does not signal
 * it: it looks at a run's start time when it wakes, every WATCH_IDLE_MS).
 * The socket is read by one thread at a time: the watcher reads only while
 * main is busy, under the lock main takes to become idle, and main sets the
 * eventfd before the DONE leaves, so the watcher never takes the next RUN.
 * Sends come from both threads; a SOCK_SEQPACKET send is one atomic
 * datagram, so they never interleave. A SIGSTOPped worker answers nothing,
 * which is how the server sees hangs; a run that loops forever still answers
 * PINGs and is caught by the server's run timeout.
 *
 * Test-only fault injection: the environment variable USHER_WORKER_FAULT,
 * read here and nowhere else, makes the worker misbehave on purpose so the
 * server's handling of each failure can be tested with the real binary
 * (RELIABILITY.md MODEL-1, FAULT-1, FAULT-3):
 *   segv-on-load   SIGSEGV before be_open     abort-on-load  SIGABRT before be_open
 *   hang-on-load   sleep forever before HELLO
 *   segv-on-run    SIGSEGV at the first RUN   spin-on-run    busy loop in the first RUN
 *                                                            (heartbeats still answered)
 * The signals are raised with the default action restored first, so a
 * sanitizer's handler cannot turn them into something else. Unknown values
 * are ignored with a warning. The server never sets it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "runtime/ipc.h"
#include "runtime/rt.h"

enum { EXIT_LOAD = 1, EXIT_USAGE = 2 };
#define WATCH_AFTER_MS 100 /* a run this long gets the watcher answering PINGs */
#define WATCH_IDLE_MS 250  /* how often the idle watcher looks for a run */

typedef enum fault {
    FAULT_NONE = 0,
    FAULT_SEGV_ON_LOAD,
    FAULT_ABORT_ON_LOAD,
    FAULT_HANG_ON_LOAD,
    FAULT_SEGV_ON_RUN,
    FAULT_SPIN_ON_RUN,
} fault;

typedef struct wk {
    int sock;
    int run_end_fd; /* eventfd: main -> watcher, the run it watches has ended */
    uint8_t *shm;
    uint64_t shm_bytes;
    be_session *s;
    char model[64]; /* base name, for log lines */
    fault fault;

    pthread_mutex_t mu;
    pthread_cond_t cv;   /* the watcher sleeps on it (CLOCK_MONOTONIC) */
    bool busy;           /* main is running a batch (mu) */
    uint64_t busy_since; /* when it began (mu) */
    bool watching;       /* the watcher reads the socket (mu) */
    bool quit;           /* QUIT seen, or main has stopped (mu) */

    _Atomic uint64_t run_start_ns; /* 0 when idle: PONG's busy_ns */
    _Atomic uint64_t runs;         /* be_run calls started */

    uint8_t run_msg[RT_IPC_MAX_MSG]; /* main's receive buffer: the RUN it runs */
    uint8_t io_buf[RT_IPC_MAX_MSG];  /* the watcher's receive buffer */
    uint8_t out_msg[RT_IPC_MAX_MSG]; /* main's HELLO / DONE */
    us_tensor in[RT_MAX_IO], out[RT_MAX_IO];
} wk;

#define WLOG(lvl, k, fmt, ...) us_log(lvl, "worker %d (%s): " fmt, (int)getpid(), (k)->model,    \
                                      __VA_ARGS__)

/* ---- arguments -------------------------------------------------------------------------- */

typedef struct wargs {
    int sock_fd, shm_fd;
    const char *model;
    be_options be;
} wargs;

static bool parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s || strlen(s) > 20)
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int usage(const char *why, const char *arg)
{
    fprintf(stderr, "usher worker: %s%s%s\n"
                    "usher worker is started by the server for each replica; it is not a "
                    "command to run by hand.\n",
            why, arg ? " " : "", arg ? arg : "");
    return EXIT_USAGE;
}

static int parse_args(int argc, char **argv, wargs *a)
{
    a->sock_fd = a->shm_fd = -1;
    a->model = NULL;
    a->be = be_default_options();
    if (argc > 64)
        return usage("too many arguments", NULL);
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (i + 1 >= argc)
            return usage("missing value for", o);
        const char *v = argv[++i];
        if (strlen(v) > 4095)
            return usage("value too long for", o);
        int64_t n = 0;
        if (strcmp(o, "--socket-fd") == 0 || strcmp(o, "--shm-fd") == 0) {
            if (!parse_i64(v, 0, 1 << 20, &n))
                return usage("bad fd for", o);
            if (strcmp(o, "--socket-fd") == 0)
                a->sock_fd = (int)n;
            else
                a->shm_fd = (int)n;
        } else if (strcmp(o, "--model") == 0) {
            a->model = v;
        } else if (strcmp(o, "--device") == 0) {
            if (strlen(v) > 31)
                return usage("device name too long:", v);
            a->be.device = v;
        } else if (strcmp(o, "--threads") == 0 || strcmp(o, "--inter-threads") == 0) {
            if (!parse_i64(v, 0, 4096, &n))
                return usage("bad thread count for", o);
            if (strcmp(o, "--threads") == 0)
                a->be.intra_threads = (int)n;
            else
                a->be.inter_threads = (int)n;
        } else if (strcmp(o, "--optimization") == 0) {
            if (!parse_i64(v, 0, 3, &n))
                return usage("optimization level must be 0..3, got", v);
            a->be.optimization = (int)n;
        } else if (strcmp(o, "--ort-lib") == 0) {
            a->be.ort_library = v;
        } else if (strcmp(o, "--sm-percentage") == 0) {
            if (!parse_i64(v, 0, 100, &n))
                return usage("SM share must be 0..100 %, got", v);
            a->be.sm_percentage = (int)n;
        } else if (strcmp(o, "--max-output-bytes") == 0) {
            if (!parse_i64(v, 1, INT64_MAX, &n))
                return usage("bad byte count for", o);
            a->be.max_output_bytes = (uint64_t)n;
        } else {
            return usage("unknown option", o);
        }
    }
    if (a->sock_fd < 0 || a->shm_fd < 0 || !a->model || !a->model[0])
        return usage("--socket-fd, --shm-fd and --model are required", NULL);
    if (a->sock_fd == a->shm_fd)
        return usage("--socket-fd and --shm-fd must differ", NULL);
    return 0;
}

static fault read_fault(wk *k)
{
    const char *f = getenv("USHER_WORKER_FAULT");
    if (!f || !*f)
        return FAULT_NONE;
    static const struct {
        const char *name;
        fault f;
    } names[] = {{"segv-on-load", FAULT_SEGV_ON_LOAD}, {"abort-on-load", FAULT_ABORT_ON_LOAD},
                 {"hang-on-load", FAULT_HANG_ON_LOAD}, {"segv-on-run", FAULT_SEGV_ON_RUN},
                 {"spin-on-run", FAULT_SPIN_ON_RUN}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(f, names[i].name) == 0) {
            WLOG(US_LOG_WARN, k, "fault injection USHER_WORKER_FAULT=%s (tests only)", f);
            return names[i].f;
        }
    WLOG(US_LOG_WARN, k, "USHER_WORKER_FAULT=%s is not a known fault; ignored", f);
    return FAULT_NONE;
}

/* die of sig with its default action: what a real crash looks like to the server */
static void __attribute__((noreturn)) die_of(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig); /* not reached */
}

/* ---- the io thread ---------------------------------------------------------------------- */

static void send_done_error(wk *k, uint8_t *buf, uint64_t seq, int status, const char *msg)
{
    rt_ipc_done d;
    memset(&d, 0, sizeof d);
    rt_ipc_hdr_init(&d.h, RT_IPC_DONE, sizeof d);
    d.seq = seq;
    d.status = status;
    rt_ipc_text(d.msg, sizeof d.msg, msg);
    memcpy(buf, &d, sizeof d);
    int rc = rt_ipc_send(k->sock, buf, sizeof d, false);
    if (rc)
        WLOG(US_LOG_WARN, k, "could not send DONE: %s", strerror(-rc));
}

static void answer_ping(wk *k, const uint8_t *msg)
{
    rt_ipc_ping ping;
    memcpy(&ping, msg, sizeof ping);
    rt_ipc_pong pong;
    memset(&pong, 0, sizeof pong);
    rt_ipc_hdr_init(&pong.h, RT_IPC_PONG, sizeof pong);
    pong.nonce = ping.nonce;
    uint64_t t0 = atomic_load(&k->run_start_ns), now = rt_ipc_now_ns();
    pong.busy_ns = t0 && now > t0 ? now - t0 : 0;
    pong.runs = atomic_load(&k->runs);
    int rc = rt_ipc_send(k->sock, &pong, sizeof pong, false);
    if (rc)
        WLOG(US_LOG_WARN, k, "could not send PONG: %s", strerror(-rc));
}

static void wait_ms(wk *k, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&k->cv, &k->mu, &ts);
}

/* The watcher, during one long run: answer what comes until main says the run ended. */
static void watch_run(wk *k)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = k->run_end_fd, .events = POLLIN},
                              {.fd = k->sock, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return;
        if (p[0].revents) {
            uint64_t v;
            if (read(k->run_end_fd, &v, sizeof v) < 0) {
                /* EAGAIN: a token already taken; either way the run is over */
            }
            return;
        }
        if (!p[1].revents)
            continue;
        /* read only while main is busy: once it is idle the socket is its own, and
         * what comes next may be the next RUN */
        pthread_mutex_lock(&k->mu);
        if (!k->busy) {
            pthread_mutex_unlock(&k->mu);
            return;
        }
        ssize_t n = rt_ipc_recv(k->sock, k->io_buf, sizeof k->io_buf, true);
        pthread_mutex_unlock(&k->mu);
        if (n == -EAGAIN)
            continue;
        if (n == -EMSGSIZE) {
            WLOG(US_LOG_WARN, k, "%s", "dropped a message larger than the protocol allows");
            continue;
        }
        if (n <= 0) {
            /* nobody is left to take the answer: do not finish the run */
            WLOG(US_LOG_INFO, k, "%s", "the server went away during a run; exiting");
            _exit(0);
        }
        rt_ipc_hdr h;
        usher_error e;
        if (rt_ipc_check(k->io_buf, (size_t)n, &h, &e) != 0) {
            WLOG(US_LOG_WARN, k, "ignored a malformed message: %s", e.msg);
        } else if (h.type == RT_IPC_PING) {
            answer_ping(k, k->io_buf);
        } else if (h.type == RT_IPC_RUN) {
            rt_ipc_run r;
            memcpy(&r, k->io_buf, sizeof r);
            /* io_buf is free again: the DONE is built there */
            send_done_error(k, k->io_buf, r.seq, USHER_ERR_STATE,
                            "the worker is already running a batch (one at a time)");
        } else if (h.type == RT_IPC_QUIT) {
            pthread_mutex_lock(&k->mu);
            k->quit = true; /* main stops after its run */
            pthread_mutex_unlock(&k->mu);
        } else {
            WLOG(US_LOG_WARN, k, "ignored an unexpected message of type %u", (unsigned)h.type);
        }
    }
}

static void *watcher_main(void *arg)
{
    wk *k = arg;
    pthread_mutex_lock(&k->mu);
    while (!k->quit) {
        uint64_t now = rt_ipc_now_ns(), after = (uint64_t)WATCH_AFTER_MS * 1000000;
        if (!k->busy) {
            wait_ms(k, WATCH_IDLE_MS);
            continue;
        }
        if (now - k->busy_since < after) {
            wait_ms(k, (after - (now - k->busy_since)) / 1000000 + 1);
            continue;
        }
        k->watching = true;
        pthread_mutex_unlock(&k->mu);
        /* a token main wrote for an earlier run after watch_run had already left on
         * seeing it idle: main wrote it before this run began, so it is here now */
        uint64_t stale;
        if (read(k->run_end_fd, &stale, sizeof stale) < 0) {
            /* EAGAIN: none */
        }
        watch_run(k);
        pthread_mutex_lock(&k->mu);
        k->watching = false;
        /* poll failed: wait for the run to end rather than watch it again at once */
        uint64_t since = k->busy_since;
        while (!k->quit && k->busy && k->busy_since == since)
            wait_ms(k, WATCH_IDLE_MS);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* ---- running one batch ------------------------------------------------------------------ */

/* check the RUN, run it, place the outputs; DONE's status and message into d */
static void run_one(wk *k, rt_ipc_done *d, size_t *len)
{
    rt_ipc_run r;
    memcpy(&r, k->run_msg, sizeof r);
    d->seq = r.seq;
    *len = sizeof *d;
    usher_error err;
    size_t n_in = be_n_inputs(k->s), n_out = be_n_outputs(k->s);
    if (r.n_in != n_in) {
        d->status = us_err_set(&err, USHER_ERR_INVALID, "model '%s' takes %zu inputs, got %u",
                               k->model, n_in, (unsigned)r.n_in);
        rt_ipc_text(d->msg, sizeof d->msg, err.msg);
        return;
    }
    uint64_t cursor = 0; /* outputs go after the last input */
    for (size_t i = 0; i < n_in; i++) {
        rt_ipc_tensor t;
        rt_ipc_tensor_get(k->run_msg, sizeof r, i, &t);
        char what[32];
        snprintf(what, sizeof what, "input %zu", i);
        int rc = 0;
        if (t.index != i)
            rc = us_err_set(&err, USHER_ERR_INTERNAL, "input %zu sent as index %u", i,
                            (unsigned)t.index);
        else if (t.offset > k->shm_bytes || t.bytes > k->shm_bytes - t.offset)
            rc = us_err_set(&err, USHER_ERR_INTERNAL, "input %zu: bytes [%llu, +%llu) outside "
                            "the shared region of %llu", i, (unsigned long long)t.offset,
                            (unsigned long long)t.bytes, (unsigned long long)k->shm_bytes);
        else if (rt_ipc_tensor_check(&t, false, k->shm, k->shm_bytes, what, &err) != 0)
            rc = USHER_ERR_INVALID; /* a shape its bytes do not match: a bad input */
        if (rc) {
            d->status = rc;
            rt_ipc_text(d->msg, sizeof d->msg, err.msg);
            return;
        }
        us_tensor *x = &k->in[i];
        memset(x, 0, sizeof *x);
        rt_ipc_tensor_to(&t, x);
        x->data = k->shm + t.offset;
        if (t.offset + t.bytes > cursor)
            cursor = t.offset + t.bytes;
    }

    atomic_store(&k->run_start_ns, rt_ipc_now_ns());
    atomic_fetch_add(&k->runs, 1);
    if (k->fault == FAULT_SEGV_ON_RUN)
        die_of(SIGSEGV);
    if (k->fault == FAULT_SPIN_ON_RUN)
        for (volatile int spin = 1; spin;) {
        }
    int rc = be_run(k->s, k->in, n_in, k->out, &err);
    atomic_store(&k->run_start_ns, 0);
    if (rc) {
        d->status = rc;
        rt_ipc_text(d->msg, sizeof d->msg, err.msg);
        return;
    }
    uint64_t inputs_end = cursor, need = cursor;
    bool fits = true;
    uint64_t off[RT_MAX_IO];
    for (size_t i = 0; i < n_out; i++) {
        if (fits && !rt_ipc_place(&cursor, k->out[i].bytes, k->shm_bytes, &off[i]))
            fits = false;
        uint64_t o;
        if (need != UINT64_MAX && !rt_ipc_place(&need, k->out[i].bytes, UINT64_MAX, &o))
            need = UINT64_MAX;
    }
    if (!fits) {
        d->status = us_err_set(&err, USHER_ERR_LIMIT,
                               "model '%s': the outputs need %llu bytes after the inputs' %llu; "
                               "the worker's shared region holds %llu",
                               k->model, (unsigned long long)(need - inputs_end),
                               (unsigned long long)inputs_end, (unsigned long long)k->shm_bytes);
        rt_ipc_text(d->msg, sizeof d->msg, err.msg);
    } else {
        for (size_t i = 0; i < n_out; i++) {
            if (k->out[i].bytes)
                memcpy(k->shm + off[i], k->out[i].data, (size_t)k->out[i].bytes);
            rt_ipc_tensor t;
            rt_ipc_tensor_from(&t, (uint32_t)i, k->out[i].name, k->out[i].dtype,
                               &k->out[i].shape, off[i], k->out[i].bytes);
            rt_ipc_tensor_put(k->out_msg, sizeof *d, i, &t);
        }
        d->n_out = (uint32_t)n_out;
        *len = sizeof *d + n_out * sizeof(rt_ipc_tensor);
    }
    be_outputs_free(k->out, n_out);
}

/* ---- main ------------------------------------------------------------------------------- */

static int send_hello(wk *k, int status, const char *msg)
{
    rt_ipc_hello h;
    memset(&h, 0, sizeof h);
    h.status = status;
    rt_ipc_text(h.msg, sizeof h.msg, msg);
    if (status == 0) {
        h.n_in = (uint32_t)be_n_inputs(k->s);
        h.n_out = (uint32_t)be_n_outputs(k->s);
        for (size_t i = 0; i < (size_t)h.n_in + h.n_out; i++) {
            const be_io *io = i < h.n_in ? be_input(k->s, i) : be_output(k->s, i - h.n_in);
            rt_ipc_tensor t;
            rt_ipc_tensor_from(&t, (uint32_t)(i < h.n_in ? i : i - h.n_in), io->name, io->dtype,
                               &io->shape, 0, 0);
            rt_ipc_tensor_put(k->out_msg, sizeof h, i, &t);
        }
    }
    size_t len = sizeof h + ((size_t)h.n_in + h.n_out) * sizeof(rt_ipc_tensor);
    rt_ipc_hdr_init(&h.h, RT_IPC_HELLO, len);
    memcpy(k->out_msg, &h, sizeof h);
    int rc = rt_ipc_send(k->sock, k->out_msg, len, false);
    if (rc)
        WLOG(US_LOG_ERROR, k, "could not send HELLO: %s", strerror(-rc));
    return rc;
}

static int check_fds(wk *k, const wargs *a)
{
    struct stat st;
    int type = 0;
    socklen_t tl = sizeof type;
    if (fstat(a->sock_fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
        getsockopt(a->sock_fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_SEQPACKET)
        return usage("--socket-fd is not the server's SOCK_SEQPACKET socket", NULL);
    if (fstat(a->shm_fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0)
        return usage("--shm-fd is not the server's shared region", NULL);
    k->sock = a->sock_fd;
    k->shm_bytes = (uint64_t)st.st_size;
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, a->shm_fd, 0);
    if (m == MAP_FAILED) {
        WLOG(US_LOG_ERROR, k, "cannot map the shared region of %llu bytes: %s",
             (unsigned long long)k->shm_bytes, strerror(errno));
        return EXIT_LOAD;
    }
    k->shm = m;
    close(a->shm_fd); /* the mapping keeps the memory; one fd less to inherit anywhere */
    return 0;
}

/* main's loop: read the socket, run each RUN itself, until QUIT or EOF */
static void serve(wk *k)
{
    for (;;) {
        ssize_t n = rt_ipc_recv(k->sock, k->run_msg, sizeof k->run_msg, false);
        if (n == -EMSGSIZE) {
            WLOG(US_LOG_WARN, k, "%s", "dropped a message larger than the protocol allows");
            continue;
        }
        if (n <= 0)
            return; /* EOF (or a broken socket): the server is gone or done with us */
        rt_ipc_hdr h;
        usher_error e;
        if (rt_ipc_check(k->run_msg, (size_t)n, &h, &e) != 0) {
            WLOG(US_LOG_WARN, k, "ignored a malformed message: %s", e.msg);
            continue;
        }
        if (h.type == RT_IPC_PING) {
            answer_ping(k, k->run_msg);
            continue;
        }
        if (h.type == RT_IPC_QUIT)
            return;
        if (h.type != RT_IPC_RUN) {
            WLOG(US_LOG_WARN, k, "ignored an unexpected message of type %u", (unsigned)h.type);
            continue;
        }
        pthread_mutex_lock(&k->mu);
        k->busy = true;
        k->busy_since = rt_ipc_now_ns();
        pthread_mutex_unlock(&k->mu);
        rt_ipc_done d;
        memset(&d, 0, sizeof d);
        size_t len;
        run_one(k, &d, &len);
        rt_ipc_hdr_init(&d.h, RT_IPC_DONE, len);
        memcpy(k->out_msg, &d, sizeof d);
        /* idle before the DONE leaves: the server sends the next RUN as soon as it has
         * the DONE, and that RUN is main's to read, not the watcher's */
        pthread_mutex_lock(&k->mu);
        k->busy = false;
        bool watched = k->watching, quit = k->quit;
        pthread_mutex_unlock(&k->mu);
        if (watched) {
            uint64_t one = 1;
            if (write(k->run_end_fd, &one, sizeof one) < 0)
                WLOG(US_LOG_WARN, k, "could not signal the watcher: %s", strerror(errno));
        }
        int rc = rt_ipc_send(k->sock, k->out_msg, len, false);
        if (rc) {
            WLOG(US_LOG_WARN, k, "could not send DONE (%s): stopping", strerror(-rc));
            return;
        }
        if (quit)
            return;
    }
}

int rt_worker_main(int argc, char **argv)
{
    wargs a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    wk *k = us_calloc(1, sizeof *k);
    if (!k) {
        fprintf(stderr, "usher worker: out of memory\n");
        return EXIT_LOAD;
    }
    k->sock = -1;
    k->run_end_fd = -1;
    const char *slash = strrchr(a.model, '/');
    rt_ipc_text(k->model, sizeof k->model, slash ? slash + 1 : a.model);
    pthread_mutex_init(&k->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_t io;
    bool io_started = false;
    rc = check_fds(k, &a);
    if (rc)
        goto out;
    k->run_end_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (k->run_end_fd < 0) {
        WLOG(US_LOG_ERROR, k, "cannot make an eventfd: %s", strerror(errno));
        rc = EXIT_LOAD;
        goto out;
    }
    k->fault = read_fault(k);
    if (k->fault == FAULT_SEGV_ON_LOAD)
        die_of(SIGSEGV);
    if (k->fault == FAULT_ABORT_ON_LOAD)
        die_of(SIGABRT);
    if (k->fault == FAULT_HANG_ON_LOAD)
        for (;;)
            pause();

    uint64_t t0 = rt_ipc_now_ns();
    usher_error err;
    us_err_clear(&err);
    rc = be_open(a.model, &a.be, &k->s, &err);
    if (rc == 0 && (be_n_inputs(k->s) > RT_MAX_IO || be_n_outputs(k->s) > RT_MAX_IO))
        rc = us_err_set(&err, USHER_ERR_LIMIT, "model '%s' has %zu inputs and %zu outputs; "
                        "usher serves at most %d of each", k->model, be_n_inputs(k->s),
                        be_n_outputs(k->s), RT_MAX_IO);
    if (rc) {
        WLOG(US_LOG_ERROR, k, "%s", err.msg);
        send_hello(k, rc, err.msg);
        rc = EXIT_LOAD;
        goto out;
    }
    WLOG(US_LOG_INFO, k, "loaded in %.1f ms (%zu inputs, %zu outputs, %llu bytes shared)",
         (double)(rt_ipc_now_ns() - t0) / 1e6, be_n_inputs(k->s), be_n_outputs(k->s),
         (unsigned long long)k->shm_bytes);
    if (send_hello(k, 0, "") != 0) {
        rc = EXIT_LOAD;
        goto out;
    }
    if (pthread_create(&io, NULL, watcher_main, k) != 0) {
        WLOG(US_LOG_ERROR, k, "%s", "cannot start the heartbeat thread");
        rc = EXIT_LOAD;
        goto out;
    }
    io_started = true;
    serve(k);
    rc = 0;
out:
    if (io_started) {
        pthread_mutex_lock(&k->mu);
        k->quit = true;
        pthread_cond_signal(&k->cv);
        pthread_mutex_unlock(&k->mu);
        /* wakes the watcher's poll if it is still in it (serve stopped on a send error) */
        shutdown(k->sock, SHUT_RDWR);
        pthread_join(io, NULL);
    }
    if (k->run_end_fd >= 0)
        close(k->run_end_fd);
    be_close(k->s);
    if (k->shm)
        munmap(k->shm, k->shm_bytes);
    if (k->sock >= 0)
        close(k->sock);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    us_free(k);
    return rc;
}
