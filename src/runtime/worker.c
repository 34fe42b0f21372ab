/*
 * worker.c - the server's side of a worker process (layer 7): start it, run
 * batches through it, notice when it dies or hangs, stop it. The worker's own
 * side (rt_worker_main) is in worker_main.c; the messages are in ipc.h.
 *
 * Why a process per replica: ONNX Runtime can crash on a malformed model or
 * input (RELIABILITY.md MODEL-1), so the session, and the model's loading,
 * live where a crash takes down one replica and never the server.
 *
 * Lifecycle (one rt_worker):
 *
 *   rt_worker_start ──► LOADING ──HELLO ok──► READY ◄──► RUNNING (rt_worker_run)
 *                          │                    │            │
 *           HELLO error, death, load timeout    │   death (socket EOF or pidfd), no PONG for
 *                          ▼                    │   3 heartbeats, run timeout: SIGKILL + reap
 *                   reaped; start fails         ▼            ▼
 *                                  rt_worker_stop ◄───── DEAD (every call: USHER_ERR_IO)
 *                                  QUIT, grace, SIGKILL, waitpid, munmap, close, free
 *
 * Spawning. fork + exec of `exe worker --socket-fd 3 --shm-fd 4 ...`. Every
 * string of the child's argv is built before fork: between fork and exec the
 * child of a threaded parent may only make async-signal-safe calls (no
 * allocation, no locks, no stdio). In the child:
 *   - the signal mask is cleared (the server may block signals in its threads
 *     for a signalfd: a worker must still die of SIGTERM/SIGKILL);
 *   - it gets its own process group: a terminal's Ctrl-C reaches the server
 *     only, which then drains in-flight work before stopping its workers
 *     (FAULT-7) instead of losing them all at the same instant;
 *   - PR_SET_PDEATHSIG(SIGKILL): workers never outlive a crashed server.
 *     Linux sends it when the *thread* that forked exits, so a worker must be
 *     started by the thread that keeps driving it (the replica thread). The
 *     worker also exits on socket EOF, which covers a server that is gone
 *     however it went;
 *   - the socket and the memfd are moved to fds 3 and 4 (without CLOEXEC),
 *     stdin becomes /dev/null, and every other fd is closed (close_range, or
 *     a loop up to the fd limit read before fork): a worker inherits nothing
 *     of the server (client sockets, other workers' sockets, which would keep
 *     their EOF from ever arriving);
 *   - an exec failure is reported through a CLOEXEC pipe (errno), so "no such
 *     file" reads as such and not as "exit status 127".
 *
 * Shared memory: a memfd (nothing in /dev/shm to leak), sealed against
 * shrinking: were a worker to truncate it, the server's next access to the
 * mapping would be SIGBUS in the server, the very crash this design contains.
 *
 * Death and hangs (RELIABILITY.md FAULT-1, FAULT-3). While waiting for an
 * answer the server polls the socket and, where the kernel has pidfd_open
 * (5.3+), a pidfd of the child:
 *   - death: the socket reads EOF when the kernel closes the dead worker's
 *     fds, and the pidfd turns readable when it exits; either wakes poll at
 *     once (no timer involved), the child is reaped and the error names the
 *     signal or the exit status. Queued messages are read before EOF, so a
 *     DONE sent just before death is not lost;
 *   - hangs: every heartbeat_ms the server sends a PING; the worker answers
 *     from a thread of its own even in the middle of a long run. No PONG (nor
 *     any other message) for 3 heartbeats means the process is not
 *     scheduled (SIGSTOP, a frozen machine, a deadlock in the worker's
 *     process-wide state): it is SIGKILLed. A run that loops forever while the
 *     heartbeat thread still answers is caught by the run's timeout_ns.
 * After USHER_ERR_IO the worker is dead and reaped: the caller stops it
 * (rt_worker_stop frees it) and starts another. There is no retry here: the
 * batch may have run (LEDGER-5), the caller decides.
 *
 * Threads: one rt_worker is driven by one thread at a time (its replica
 * thread, or a front-end thread that claimed the replica): rt_worker_run,
 * rt_worker_send, rt_worker_wait, rt_worker_ping and rt_worker_stop must not
 * overlap; a run sent by one thread may be waited for by another.
 * rt_worker_io and rt_worker_pid only read what rt_worker_start set, so any
 * thread may call them while the worker lives.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "runtime/ipc.h"
#include "runtime/rt.h"

#define DEFAULT_SHM_BYTES (256ull << 20)
#define DEFAULT_LOAD_TIMEOUT_NS (120ull * 1000000000ull)
#define DEFAULT_HEARTBEAT_MS 1000
#define MISSED_BEATS 3                   /* heartbeats without a sign of life: hung */
#define EXIT_WAIT_NS (1000ull * 1000000) /* after EOF or a failed HELLO: time to exit */
#define CHILD_SOCK_FD 3
#define CHILD_SHM_FD 4
#define CHILD_FIRST_FREE_FD 5

struct rt_worker {
    pid_t pid;
    int sock;  /* our end of the socketpair */
    int pidfd; /* -1 where pidfd_open is not available */
    int memfd;
    uint8_t *shm;
    uint64_t shm_bytes;
    uint64_t heartbeat_ns;
    bool reaped; /* waited for: the pid is no longer ours to signal */
    bool dead;   /* died, hung or killed: every call fails until rt_worker_stop */
    uint64_t seq, nonce;
    bool running;            /* a RUN (seq) was sent and its DONE not yet taken */
    uint64_t run_deadline;   /* absolute ns: declared hung after it; 0: none */
    uint64_t run_timeout_ns; /* for the message */
    uint64_t runs; /* the worker's be_run count from its last PONG */
    char model[64];     /* the model's base name, for messages (no paths) */
    char dead_msg[USHER_ERROR_MAX]; /* why it is dead */
    size_t n_in, n_out;
    be_io in[RT_MAX_IO], out[RT_MAX_IO];
    uint8_t buf[RT_IPC_MAX_MSG]; /* one message in or out at a time */
};

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* "signal 11 (Segmentation fault)", "exit status 1" */
static void describe_status(int st, char *buf, size_t n)
{
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        const char *d = sigdescr_np(sig); /* thread-safe, unlike strsignal */
        snprintf(buf, n, "signal %d (%s)%s", sig, d ? d : "unknown signal",
                 WCOREDUMP(st) ? ", core dumped" : "");
    } else if (WIFEXITED(st)) {
        snprintf(buf, n, "exit status %d", WEXITSTATUS(st));
    } else {
        snprintf(buf, n, "wait status 0x%x", (unsigned)st);
    }
}

/* now + ns, saturating: a huge timeout means "no limit", never a deadline in the past */
static uint64_t after_ns(uint64_t ns)
{
    uint64_t now = rt_ipc_now_ns(), end;
    return __builtin_add_overflow(now, ns, &end) ? UINT64_MAX : end;
}

/* one waitpid, retrying EINTR: 1 reaped, 0 still running (nohang), -1 lost */
static int wait_once(rt_worker *w, bool nohang, int *st)
{
    for (;;) {
        pid_t r = waitpid(w->pid, st, nohang ? WNOHANG : 0);
        if (r == w->pid) {
            w->reaped = true;
            return 1;
        }
        if (r == 0)
            return 0;
        if (errno == EINTR)
            continue;
        /* ECHILD: someone reaped it for us (SIGCHLD ignored, a waitpid(-1)
         * elsewhere). It is gone either way; its status is not known. */
        w->reaped = true;
        return -1;
    }
}

/*
 * Wait up to wait_ns for the child to exit, then SIGKILL it and wait for good.
 * Fills why with how it ended. The pidfd (or, without one, the socket's EOF)
 * lets the wait sleep in poll rather than spin.
 */
static void reap(rt_worker *w, uint64_t wait_ns, char *why, size_t why_n)
{
    int st = 0, r = 0;
    if (w->reaped) {
        snprintf(why, why_n, "already reaped");
        return;
    }
    uint64_t end = after_ns(wait_ns);
    for (;;) {
        r = wait_once(w, true, &st);
        if (r != 0)
            break;
        uint64_t now = rt_ipc_now_ns();
        if (now >= end) {
            kill(w->pid, SIGKILL); /* not yet reaped: the pid is still ours */
            r = wait_once(w, false, &st);
            break;
        }
        uint64_t left_ms = (end - now + 999999) / 1000000;
        if (w->pidfd >= 0) {
            struct pollfd p = {.fd = w->pidfd, .events = POLLIN};
            poll(&p, 1, (int)(left_ms > 1000 ? 1000 : left_ms));
        } else {
            /* without a pidfd: a short sleep; EOF has usually already come */
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (r == 1)
        describe_status(st, why, why_n);
    else
        snprintf(why, why_n, "exit status unknown (reaped elsewhere)");
}

/* kill (if needed), reap, mark dead; returns USHER_ERR_IO with the message */
static int mark_dead(rt_worker *w, bool kill_now, usher_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int mark_dead(rt_worker *w, bool kill_now, usher_error *err, const char *fmt, ...)
{
    if (kill_now && !w->reaped)
        kill(w->pid, SIGKILL);
    char why[96];
    reap(w, kill_now ? 0 : EXIT_WAIT_NS, why, sizeof why);
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    w->dead = true;
    if (!kill_now && strncmp(what, "died ", 5) == 0 && strncmp(why, "exit status", 11) == 0) {
        /* "died" is for signals: "exited while loading: exit status 1" */
        char tmp[sizeof what + 2];
        snprintf(tmp, sizeof tmp, "exited%s", what + 4);
        rt_ipc_text(what, sizeof what, tmp);
    }
    if (kill_now)
        snprintf(w->dead_msg, sizeof w->dead_msg, "worker for '%s' %s; killed", w->model, what);
    else
        snprintf(w->dead_msg, sizeof w->dead_msg, "worker for '%s' %s: %s", w->model, what, why);
    US_LOGW("%s (pid %d)", w->dead_msg, (int)w->pid);
    return us_err_set(err, USHER_ERR_IO, "%s", w->dead_msg);
}

/* ---- waiting for one message ------------------------------------------------------------ */

typedef struct wait_spec {
    uint16_t type;       /* the message wanted: HELLO, DONE (seq) or PONG (nonce) */
    uint64_t id;         /* seq or nonce */
    uint64_t deadline;   /* absolute ns; 0: none */
    uint64_t give_up;    /* absolute ns: stop waiting, the worker left as it is; 0: never */
    uint64_t spin_until; /* absolute ns: until then, look for the answer without sleeping */
    bool heartbeat;      /* PING every tick, hung after MISSED_BEATS ticks of silence */
    const char *phase;   /* "while loading", "during a run", ... for messages */
    const char *timeout; /* message when the deadline passes */
} wait_spec;

/*
 * Wait for the message `s` describes; on success w->buf holds it and its size
 * is returned (>= its fixed part, checked by rt_ipc_check). Other messages in
 * between: PONGs (any nonce) count as signs of life, stale DONEs are dropped.
 * Death, silence, the deadline or a malformed message: the worker is killed
 * and reaped, USHER_ERR_IO.
 */
static int wait_for(rt_worker *w, const wait_spec *s, size_t *len, usher_error *err)
{
    uint64_t now = rt_ipc_now_ns();
    uint64_t last_alive = now, next_tick = now + w->heartbeat_ns;
    /* PONGs to PINGs of an earlier wait may still be queued: they were sent who knows
     * when, so only answers to this wait's PINGs prove the worker is alive now */
    uint64_t first_nonce = w->nonce;
    for (;;) {
        now = rt_ipc_now_ns();
        if (s->deadline && now >= s->deadline)
            return mark_dead(w, true, err, "%s", s->timeout);
        if (s->give_up && now >= s->give_up)
            return RT_WORKER_PENDING;
        uint64_t wake = s->deadline ? s->deadline : UINT64_MAX;
        if (s->give_up && s->give_up < wake)
            wake = s->give_up;
        if (s->heartbeat) {
            uint64_t silent = last_alive + MISSED_BEATS * w->heartbeat_ns;
            if (now >= silent)
                return mark_dead(w, true, err,
                                 "hung %s: no heartbeat for %llu ms (%d missed at %llu ms)",
                                 s->phase, (unsigned long long)((now - last_alive) / 1000000),
                                 MISSED_BEATS,
                                 (unsigned long long)(w->heartbeat_ns / 1000000));
            if (now >= next_tick) {
                rt_ipc_ping ping;
                rt_ipc_hdr_init(&ping.h, RT_IPC_PING, sizeof ping);
                ping.nonce = ++w->nonce;
                /* a full socket buffer means PINGs already wait there: skip this one */
                int rc = rt_ipc_send(w->sock, &ping, sizeof ping, true);
                if (rc == -EPIPE || rc == -ECONNRESET)
                    return mark_dead(w, false, err, "died %s", s->phase);
                next_tick = now + w->heartbeat_ns;
            }
            if (next_tick < wake)
                wake = next_tick;
            if (silent < wake)
                wake = silent;
        }
        int timeout_ms = -1;
        if (wake != UINT64_MAX) {
            uint64_t ms = (wake - now + 999999) / 1000000;
            timeout_ms = ms > INT_MAX ? INT_MAX : (int)ms;
        }
        /* while the answer is due within microseconds, look without sleeping: a sleep
         * and a wake-up would cost more than the wait (tens of microseconds on a
         * virtual machine); the yield lets the worker run should it share this core */
        bool spin = now < s->spin_until;
        struct pollfd p[2] = {{.fd = w->sock, .events = POLLIN}, {.fd = w->pidfd, .events = POLLIN}};
        int np = w->pidfd >= 0 ? 2 : 1;
        int pr = poll(p, (nfds_t)np, spin ? 0 : timeout_ms);
        if (pr < 0 && errno != EINTR)
            return mark_dead(w, true, err, "could not be polled %s (%s)", s->phase,
                             strerror(errno));
        if (pr == 0 && spin)
            sched_yield();
        if (pr <= 0)
            continue;
        if (p[0].revents) {
            /* read what is queued before looking at the pidfd: a DONE sent just
             * before the worker died is still an answer */
            ssize_t n = rt_ipc_recv(w->sock, w->buf, sizeof w->buf, true);
            if (n == -EAGAIN)
                continue;
            if (n == 0 || n == -ECONNRESET)
                return mark_dead(w, false, err, "died %s", s->phase);
            if (n < 0)
                return mark_dead(w, true, err, "sent an unreadable message %s (%s)", s->phase,
                                 strerror((int)-n));
            rt_ipc_hdr h;
            usher_error e;
            if (rt_ipc_check(w->buf, (size_t)n, &h, &e) != 0)
                return mark_dead(w, true, err, "broke the protocol %s: %s", s->phase, e.msg);
            if (h.type == RT_IPC_PONG) {
                rt_ipc_pong pong;
                memcpy(&pong, w->buf, sizeof pong);
                w->runs = pong.runs;
                if (pong.nonce > first_nonce && pong.nonce <= w->nonce)
                    last_alive = rt_ipc_now_ns();
                if (s->type == RT_IPC_PONG && pong.nonce == s->id) {
                    *len = (size_t)n;
                    return USHER_OK;
                }
                continue;
            }
            if (h.type == s->type && h.type == RT_IPC_DONE) {
                rt_ipc_done d;
                memcpy(&d, w->buf, sizeof d);
                if (d.seq != s->id)
                    continue; /* an answer to a RUN we no longer wait for */
                *len = (size_t)n;
                return USHER_OK;
            }
            if (h.type == s->type && h.type == RT_IPC_HELLO) {
                *len = (size_t)n;
                return USHER_OK;
            }
            return mark_dead(w, true, err, "broke the protocol %s: unexpected message type %u",
                             s->phase, (unsigned)h.type);
        }
        if (np == 2 && p[1].revents)
            return mark_dead(w, false, err, "died %s", s->phase);
    }
}

/* ---- start ------------------------------------------------------------------------------ */

/* async-signal-safe from here to exec: no allocation, no stdio, no locks */
static void __attribute__((noreturn))
child_exec(const char *exe, char **argv, char **envp, int sock, int memfd, int errfd, int devnull,
           pid_t parent, const sigset_t *empty, int max_fd)
{
    int e = ESRCH;
    sigprocmask(SIG_SETMASK, empty, NULL);
    setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
        e = errno;
        goto fail;
    }
    if (getppid() != parent)
        goto fail; /* the server died before prctl: nobody to serve */
    /* copy every fd above the targets first: any of them may sit on 0, 3, 4 or 5 */
    int s = fcntl(sock, F_DUPFD, 16), m = fcntl(memfd, F_DUPFD, 16);
    int ef = fcntl(errfd, F_DUPFD_CLOEXEC, 16);
    int dn = devnull >= 0 ? fcntl(devnull, F_DUPFD, 16) : -1;
    if (s < 0 || m < 0 || ef < 0 || dup2(s, CHILD_SOCK_FD) < 0 || dup2(m, CHILD_SHM_FD) < 0 ||
        dup3(ef, CHILD_FIRST_FREE_FD, O_CLOEXEC) < 0) {
        e = errno;
        goto fail;
    }
    errfd = CHILD_FIRST_FREE_FD;
    if (dn >= 0)
        dup2(dn, 0);
    if (syscall(SYS_close_range, (unsigned)CHILD_FIRST_FREE_FD + 1, ~0u, 0u) != 0)
        for (int fd = CHILD_FIRST_FREE_FD + 1; fd < max_fd; fd++)
            close(fd);
    execve(exe, argv, envp);
    e = errno;
fail:
    while (write(errfd, &e, sizeof e) < 0 && errno == EINTR) {
    }
    _exit(127);
}

/* the fd limit, for closing fds without close_range; read before fork (sysconf is not
 * async-signal-safe) and bounded so that the loop stays short */
static int fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > 65536)
        return 65536;
    return (int)rl.rlim_cur;
}

#define MPS_ENV "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"

/* environ, with extra (MPS_ENV=...) in place of MPS_ENV when not empty; a us_malloc'd
 * array (the strings are environ's and extra's) */
static char **worker_env(char *extra)
{
    extern char **environ;
    size_t n = 0, k = 0;
    while (environ && environ[n])
        n++;
    char **e = us_mallocarray(n + 2, sizeof *e);
    if (!e)
        return NULL;
    size_t nl = strlen(MPS_ENV);
    for (size_t i = 0; i < n; i++)
        if (!extra[0] || !(strncmp(environ[i], MPS_ENV, nl) == 0 && environ[i][nl] == '='))
            e[k++] = environ[i];
    if (extra[0])
        e[k++] = extra;
    e[k] = NULL;
    return e;
}

typedef struct argv_buf {
    char *argv[32];
    int n;
    char num[8][32]; /* decimal arguments */
    int n_num;
} argv_buf;

/* execv's argv is char *const[] for historical reasons; it does not write the strings */
static void arg(argv_buf *a, const char *s) { a->argv[a->n++] = (char *)(uintptr_t)s; }

static void arg_num(argv_buf *a, const char *flag, long long v)
{
    char *b = a->num[a->n_num++];
    snprintf(b, sizeof a->num[0], "%lld", v);
    arg(a, flag);
    arg(a, b);
}

static int check_opts(const rt_worker_opts *o, usher_error *err)
{
    if (!o || !o->exe || !o->exe[0] || !o->model_path || !o->model_path[0])
        return us_err_set(err, USHER_ERR_INVALID, "worker: the executable and the model path "
                                                  "are required");
    if (strlen(o->model_path) > 4095 || (o->be.ort_library && strlen(o->be.ort_library) > 4095))
        return us_err_set(err, USHER_ERR_INVALID, "worker for '%.64s': path too long",
                          base_name(o->model_path));
    if (o->be.device && strlen(o->be.device) > 31) /* the worker's own bound */
        return us_err_set(err, USHER_ERR_INVALID, "worker: device name too long");
    if (o->be.intra_threads < 0 || o->be.inter_threads < 0 || o->be.optimization < 0 ||
        o->be.optimization > 3)
        return us_err_set(err, USHER_ERR_INVALID, "worker for '%s': threads %d/%d and "
                          "optimization %d out of range", base_name(o->model_path),
                          o->be.intra_threads, o->be.inter_threads, o->be.optimization);
    if (o->be.sm_percentage < 0 || o->be.sm_percentage > 100)
        return us_err_set(err, USHER_ERR_INVALID, "worker: SM share of %d %% (1 .. 100; 0: the "
                          "whole device)", o->be.sm_percentage);
    if (o->mps_percentage < 0 || o->mps_percentage > 100)
        return us_err_set(err, USHER_ERR_INVALID, "worker: MPS share of %d %% (1 .. 100; 0: "
                          "inherited)", o->mps_percentage);
    if (o->heartbeat_ms < 0 || o->heartbeat_ms > 600000)
        return us_err_set(err, USHER_ERR_INVALID, "worker: heartbeat of %d ms out of range "
                          "(1 .. 600000; 0: default)", o->heartbeat_ms);
    if (o->shm_bytes > (1ull << 40))
        return us_err_set(err, USHER_ERR_INVALID, "worker: shared region of %llu bytes (at most "
                          "1 TiB)", (unsigned long long)o->shm_bytes);
    return USHER_OK;
}

/* the HELLO into w->in/out; its status (the worker's be_open failure) as our error */
static int take_hello(rt_worker *w, size_t n, usher_error *err)
{
    rt_ipc_hello h;
    memcpy(&h, w->buf, sizeof h);
    if (h.status != 0) {
        h.msg[sizeof h.msg - 1] = '\0';
        int code = h.status < 0 && h.status >= USHER_ERR_INTERNAL ? h.status : USHER_ERR_INTERNAL;
        if (code == USHER_ERR_IO)
            code = USHER_ERR_INTERNAL; /* IO is reserved for a dead or hung worker */
        return us_err_set(err, code, "%s", h.msg[0] ? h.msg : "the worker failed to load");
    }
    (void)n; /* rt_ipc_check matched n to the counts */
    for (size_t i = 0; i < (size_t)h.n_in + h.n_out; i++) {
        rt_ipc_tensor t;
        rt_ipc_tensor_get(w->buf, sizeof h, i, &t);
        usher_error e;
        if (rt_ipc_tensor_check(&t, true, NULL, 0, i < h.n_in ? "input" : "output", &e) != 0)
            return us_err_set(err, USHER_ERR_INTERNAL, "worker for '%s': HELLO: %s", w->model,
                              e.msg);
        be_io *io = i < h.n_in ? &w->in[i] : &w->out[i - h.n_in];
        us_tensor d;
        rt_ipc_tensor_to(&t, &d);
        memcpy(io->name, d.name, sizeof io->name);
        io->dtype = d.dtype;
        io->shape = d.shape;
    }
    w->n_in = h.n_in;
    w->n_out = h.n_out;
    return USHER_OK;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void release(rt_worker *w)
{
    if (w->shm)
        munmap(w->shm, w->shm_bytes);
    close_fd(&w->sock);
    close_fd(&w->pidfd);
    close_fd(&w->memfd);
    us_free(w);
}

int rt_worker_start(const rt_worker_opts *o, rt_worker **out, usher_error *err)
{
    if (out)
        *out = NULL;
    if (!out)
        return us_err_set(err, USHER_ERR_INVALID, "worker: no place for the result");
    int rc = check_opts(o, err);
    if (rc)
        return rc;
    rt_worker *w = us_calloc(1, sizeof *w);
    if (!w)
        return us_err_set(err, USHER_ERR_NOMEM, "worker for '%s': out of memory",
                          base_name(o->model_path));
    w->pid = -1;
    w->sock = w->pidfd = w->memfd = -1;
    w->reaped = true; /* nothing to reap until fork */
    rt_ipc_text(w->model, sizeof w->model, o->name ? o->name : base_name(o->model_path));
    long page = sysconf(_SC_PAGESIZE);
    uint64_t pg = page > 0 ? (uint64_t)page : 4096;
    uint64_t shm = o->shm_bytes ? o->shm_bytes : DEFAULT_SHM_BYTES;
    w->shm_bytes = (shm + pg - 1) / pg * pg; /* mappings are whole pages */
    w->heartbeat_ns = (uint64_t)(o->heartbeat_ms ? o->heartbeat_ms : DEFAULT_HEARTBEAT_MS) *
                      1000000u;
    int sv[2] = {-1, -1}, ep[2] = {-1, -1}, devnull = -1;
    char **envp = NULL;

    /* the region: sealed so that its size cannot change under our mapping */
    w->memfd = memfd_create("usher-worker", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (w->memfd < 0 || ftruncate(w->memfd, (off_t)w->shm_bytes) != 0 ||
        fcntl(w->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        rc = us_err_set(err, USHER_ERR_IO, "worker for '%s': shared region of %llu bytes: %s",
                        w->model, (unsigned long long)w->shm_bytes, strerror(errno));
        goto fail;
    }
    void *map = mmap(NULL, w->shm_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, w->memfd, 0);
    if (map == MAP_FAILED) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "worker for '%s': mapping %llu bytes: %s", w->model,
                        (unsigned long long)w->shm_bytes, strerror(errno));
        goto fail;
    }
    w->shm = map;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
        pipe2(ep, O_CLOEXEC) != 0) {
        rc = us_err_set(err, USHER_ERR_IO, "worker for '%s': socketpair: %s", w->model,
                        strerror(errno));
        goto fail;
    }
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC); /* -1: the child keeps our stdin */

    /* argv, before fork */
    argv_buf a = {.n = 0};
    arg(&a, o->exe);
    arg(&a, "worker");
    arg_num(&a, "--socket-fd", CHILD_SOCK_FD);
    arg_num(&a, "--shm-fd", CHILD_SHM_FD);
    arg(&a, "--model");
    arg(&a, o->model_path);
    arg(&a, "--device");
    arg(&a, o->be.device && o->be.device[0] ? o->be.device : "cpu");
    arg_num(&a, "--threads", o->be.intra_threads);
    arg_num(&a, "--inter-threads", o->be.inter_threads);
    arg_num(&a, "--optimization", o->be.optimization);
    if (o->be.ort_library && o->be.ort_library[0]) {
        arg(&a, "--ort-lib");
        arg(&a, o->be.ort_library);
    }
    if (o->be.max_output_bytes)
        arg_num(&a, "--max-output-bytes", (long long)o->be.max_output_bytes);
    if (o->be.sm_percentage > 0)
        arg_num(&a, "--sm-percentage", o->be.sm_percentage);
    a.argv[a.n] = NULL;
    /* the environment: ours, with the replica's MPS share set (CUDA reads it when the
     * worker creates its context) */
    char mps[64] = "";
    if (o->mps_percentage > 0)
        snprintf(mps, sizeof mps, "%s=%d", MPS_ENV, o->mps_percentage);
    envp = worker_env(mps);
    if (!envp) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "worker for '%s': out of memory", w->model);
        goto fail;
    }
    sigset_t empty;
    sigemptyset(&empty);
    int max_fd = fd_limit();
    pid_t parent = getpid();

    pid_t pid = fork();
    if (pid < 0) {
        rc = us_err_set(err, USHER_ERR_IO, "worker for '%s': fork: %s", w->model,
                        strerror(errno));
        goto fail;
    }
    if (pid == 0)
        child_exec(o->exe, a.argv, envp, sv[1], w->memfd, ep[1], devnull, parent, &empty, max_fd);
    us_free(envp);
    envp = NULL;
    w->pid = pid;
    w->reaped = false;
    w->sock = sv[0];
    sv[0] = -1;
    close_fd(&sv[1]);
    close_fd(&ep[1]);
    close_fd(&devnull);
    w->pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* -1 (ENOSYS) before Linux 5.3 */

    /* exec's verdict: EOF when it succeeded (CLOEXEC), the child's errno otherwise */
    int child_errno = 0;
    ssize_t r;
    while ((r = read(ep[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
    }
    close_fd(&ep[0]);
    if (r == (ssize_t)sizeof child_errno) {
        char why[96];
        reap(w, EXIT_WAIT_NS, why, sizeof why);
        US_LOGE("worker for '%s': cannot run %s: %s", w->model, o->exe, strerror(child_errno));
        rc = us_err_set(err, USHER_ERR_IO, "worker for '%s' could not start '%s': %s", w->model,
                        base_name(o->exe), strerror(child_errno));
        goto fail;
    }

    uint64_t load = o->load_timeout_ns ? o->load_timeout_ns : DEFAULT_LOAD_TIMEOUT_NS;
    char tmsg[96];
    snprintf(tmsg, sizeof tmsg, "did not load within %llu ms",
             (unsigned long long)(load / 1000000));
    wait_spec s = {.type = RT_IPC_HELLO,
                   .deadline = after_ns(load),
                   .phase = "while loading",
                   .timeout = tmsg};
    size_t n;
    rc = wait_for(w, &s, &n, err);
    if (rc)
        goto fail;
    rc = take_hello(w, n, err);
    if (rc) {
        /* it exits by itself after a failed HELLO; give it a moment, then make sure */
        char why[96];
        reap(w, EXIT_WAIT_NS, why, sizeof why);
        goto fail;
    }
    US_LOGI("worker for '%s' ready (pid %d, %zu inputs, %zu outputs, %llu bytes shared)",
            w->model, (int)w->pid, w->n_in, w->n_out, (unsigned long long)w->shm_bytes);
    *out = w;
    return USHER_OK;

fail:
    us_free(envp);
    if (!w->reaped) {
        char why[96];
        kill(w->pid, SIGKILL);
        reap(w, 0, why, sizeof why);
    }
    close_fd(&sv[0]);
    close_fd(&sv[1]);
    close_fd(&ep[0]);
    close_fd(&ep[1]);
    close_fd(&devnull);
    release(w);
    return rc;
}

/* ---- using it --------------------------------------------------------------------------- */

size_t rt_worker_io(const rt_worker *w, const be_io **in, size_t *n_in, const be_io **out)
{
    if (in)
        *in = w ? w->in : NULL;
    if (n_in)
        *n_in = w ? w->n_in : 0;
    if (out)
        *out = w ? w->out : NULL;
    return w ? w->n_out : 0;
}

int rt_worker_pid(const rt_worker *w) { return w ? (int)w->pid : -1; }

static int check_alive(const rt_worker *w, usher_error *err)
{
    if (!w)
        return us_err_set(err, USHER_ERR_INVALID, "worker: none given");
    if (w->dead)
        return us_err_set(err, USHER_ERR_IO, "%s", w->dead_msg);
    return USHER_OK;
}

/* DONE's status to ours: IO stays reserved for a dead worker */
static int map_status(int32_t st)
{
    switch (st) {
    case USHER_ERR_INVALID:
    case USHER_ERR_SHAPE:
    case USHER_ERR_UNSUPPORTED:
        return USHER_ERR_INVALID;
    case USHER_ERR_LIMIT:
        return USHER_ERR_LIMIT;
    default:
        return USHER_ERR_INTERNAL;
    }
}

/* DONE's outputs out of the region into us_malloc'd tensors; nothing left on failure */
static int take_outputs(rt_worker *w, us_tensor *out, size_t *n_out, usher_error *err)
{
    rt_ipc_done d;
    memcpy(&d, w->buf, sizeof d);
    if (d.n_out != w->n_out)
        return mark_dead(w, true, err, "broke the protocol: DONE with %u outputs, the model has "
                         "%zu", (unsigned)d.n_out, w->n_out);
    rt_ipc_tensor t[RT_MAX_IO];
    for (size_t i = 0; i < d.n_out; i++) {
        rt_ipc_tensor_get(w->buf, sizeof d, i, &t[i]);
        char what[32];
        snprintf(what, sizeof what, "output %zu", i);
        usher_error e;
        if (t[i].index != i)
            return mark_dead(w, true, err, "broke the protocol: DONE's output %zu has index %u",
                             i, (unsigned)t[i].index);
        /* the worker is where crashes happen: what it says is checked like input
         * (BYTES layouts below, on our copy, which the worker cannot change) */
        if (rt_ipc_tensor_check(&t[i], false, NULL, w->shm_bytes, what, &e) != 0)
            return mark_dead(w, true, err, "broke the protocol: DONE: %s", e.msg);
    }
    for (size_t i = 0; i < d.n_out; i++) {
        us_tensor *o = &out[i];
        memset(o, 0, sizeof *o);
        rt_ipc_tensor_to(&t[i], o);
        o->data = us_malloc(t[i].bytes ? (size_t)t[i].bytes : 1);
        if (!o->data) {
            for (size_t j = 0; j < i; j++) {
                us_free(out[j].data);
                out[j].data = NULL;
            }
            return us_err_set(err, USHER_ERR_NOMEM, "worker for '%s': out of memory for output "
                              "'%s' (%llu bytes)", w->model, t[i].name,
                              (unsigned long long)t[i].bytes);
        }
        memcpy(o->data, w->shm + t[i].offset, (size_t)t[i].bytes);
    }
    for (size_t i = 0; i < d.n_out; i++) {
        uint64_t elements = 0;
        usher_error e;
        if (out[i].dtype == US_DT_BYTES &&
            (us_shape_elements(&out[i].shape, "output", &elements, &e) != 0 ||
             us_bytes_check(out[i].data, out[i].bytes, elements, out[i].name, &e) != 0)) {
            for (size_t j = 0; j < d.n_out; j++) {
                us_free(out[j].data);
                out[j].data = NULL;
            }
            return mark_dead(w, true, err, "broke the protocol: DONE: output %zu: %s", i, e.msg);
        }
    }
    *n_out = d.n_out;
    return USHER_OK;
}

int rt_worker_send(rt_worker *w, const us_tensor *in, size_t n_in, uint64_t timeout_ns,
                   usher_error *err)
{
    int rc = check_alive(w, err);
    if (rc)
        return rc;
    if (w->running)
        return us_err_set(err, USHER_ERR_STATE, "worker for '%s': a batch is already running",
                          w->model);
    if (n_in && !in)
        return us_err_set(err, USHER_ERR_INVALID, "worker for '%s': run without inputs",
                          w->model);
    if (n_in != w->n_in)
        return us_err_set(err, USHER_ERR_INVALID, "model '%s' takes %zu inputs, got %zu",
                          w->model, w->n_in, n_in);

    /* lay the inputs out; all or nothing, so that LIMIT says the whole need */
    rt_ipc_run *run = (rt_ipc_run *)(void *)w->buf;
    uint64_t cursor = 0, need = 0;
    uint64_t off[RT_MAX_IO];
    bool fits = true;
    for (size_t i = 0; i < n_in; i++) {
        if (in[i].bytes && !in[i].data)
            return us_err_set(err, USHER_ERR_INVALID, "input '%s': %llu bytes without data",
                              in[i].name, (unsigned long long)in[i].bytes);
        if (fits && !rt_ipc_place(&cursor, in[i].bytes, w->shm_bytes, &off[i]))
            fits = false;
        uint64_t c = need, o;
        if (!rt_ipc_place(&c, in[i].bytes, UINT64_MAX, &o))
            need = UINT64_MAX;
        else
            need = c;
    }
    if (!fits)
        return us_err_set(err, USHER_ERR_LIMIT, "model '%s': the inputs need %llu bytes, the "
                          "worker's shared region holds %llu", w->model,
                          (unsigned long long)need, (unsigned long long)w->shm_bytes);
    size_t len = sizeof *run + n_in * sizeof(rt_ipc_tensor);
    for (size_t i = 0; i < n_in; i++) {
        if (in[i].bytes)
            memcpy(w->shm + off[i], in[i].data, (size_t)in[i].bytes);
        rt_ipc_tensor t;
        rt_ipc_tensor_from(&t, (uint32_t)i, in[i].name, in[i].dtype, &in[i].shape, off[i],
                           in[i].bytes);
        rt_ipc_tensor_put(w->buf, sizeof *run, i, &t);
    }
    rt_ipc_run head;
    memset(&head, 0, sizeof head);
    rt_ipc_hdr_init(&head.h, RT_IPC_RUN, len);
    head.seq = ++w->seq;
    head.n_in = (uint32_t)n_in;
    memcpy(w->buf, &head, sizeof head);
    /* blocking send: the worker reads as it goes, and one RUN is < 20 KiB */
    rc = rt_ipc_send(w->sock, w->buf, len, false);
    if (rc == -EPIPE || rc == -ECONNRESET)
        return mark_dead(w, false, err, "died (a batch could not be sent)");
    if (rc)
        return mark_dead(w, true, err, "could not be sent a run (%s)", strerror(-rc));

    w->running = true;
    w->run_timeout_ns = timeout_ns;
    w->run_deadline = timeout_ns ? after_ns(timeout_ns) : 0;
    return USHER_OK;
}

int rt_worker_wait(rt_worker *w, uint64_t spin_ns, uint64_t budget_ns, us_tensor *out,
                   size_t *n_out, usher_error *err)
{
    if (n_out)
        *n_out = 0;
    int rc = check_alive(w, err);
    if (rc)
        return rc;
    if (!w->running || !out || !n_out)
        return us_err_set(err, USHER_ERR_STATE, "worker for '%s': %s", w->model,
                          w->running ? "no place for the outputs" : "no batch is running");
    char tmsg[96];
    snprintf(tmsg, sizeof tmsg, "hung: the run exceeded its %llu ms timeout",
             (unsigned long long)(w->run_timeout_ns / 1000000));
    wait_spec s = {.type = RT_IPC_DONE,
                   .id = w->seq,
                   .deadline = w->run_deadline,
                   .give_up = budget_ns ? after_ns(budget_ns) : 0,
                   .spin_until = spin_ns ? after_ns(spin_ns) : 0,
                   .heartbeat = true,
                   .phase = "during a run",
                   .timeout = tmsg};
    size_t len;
    rc = wait_for(w, &s, &len, err);
    if (rc == RT_WORKER_PENDING)
        return rc;
    w->running = false;
    if (rc)
        return rc;
    rt_ipc_done d;
    memcpy(&d, w->buf, sizeof d);
    if (d.status != 0) {
        d.msg[sizeof d.msg - 1] = '\0';
        return us_err_set(err, map_status(d.status), "%s",
                          d.msg[0] ? d.msg : usher_status_message(d.status));
    }
    return take_outputs(w, out, n_out, err);
}

int rt_worker_run(rt_worker *w, const us_tensor *in, size_t n_in, us_tensor *out, size_t *n_out,
                  uint64_t timeout_ns, usher_error *err)
{
    if (n_out)
        *n_out = 0;
    int rc = check_alive(w, err);
    if (rc)
        return rc;
    if (!out || !n_out) /* refused before anything is sent */
        return us_err_set(err, USHER_ERR_INVALID, "worker for '%s': run without a place for "
                          "outputs", w->model);
    rc = rt_worker_send(w, in, n_in, timeout_ns, err);
    return rc ? rc : rt_worker_wait(w, 0, 0, out, n_out, err);
}

int rt_worker_ping(rt_worker *w, usher_error *err)
{
    int rc = check_alive(w, err);
    if (rc)
        return rc;
    if (w->running)
        return us_err_set(err, USHER_ERR_STATE, "worker for '%s': not pinged while a batch runs "
                          "(its run's wait heartbeats)", w->model);
    rt_ipc_ping ping;
    rt_ipc_hdr_init(&ping.h, RT_IPC_PING, sizeof ping);
    ping.nonce = ++w->nonce;
    rc = rt_ipc_send(w->sock, &ping, sizeof ping, true);
    if (rc == -EPIPE || rc == -ECONNRESET)
        return mark_dead(w, false, err, "died while idle");
    char tmsg[96];
    snprintf(tmsg, sizeof tmsg, "hung: no answer to a ping within %d heartbeats of %llu ms",
             MISSED_BEATS, (unsigned long long)(w->heartbeat_ns / 1000000));
    wait_spec s = {.type = RT_IPC_PONG,
                   .id = ping.nonce,
                   .deadline = after_ns(MISSED_BEATS * w->heartbeat_ns),
                   .phase = "while idle",
                   .timeout = tmsg};
    size_t len;
    return wait_for(w, &s, &len, err);
}

void rt_worker_stop(rt_worker *w, uint64_t grace_ns)
{
    if (!w)
        return;
    if (!w->reaped) {
        if (!w->dead) {
            rt_ipc_hdr q;
            rt_ipc_hdr_init(&q, RT_IPC_QUIT, sizeof q);
            if (rt_ipc_send(w->sock, &q, sizeof q, true) != 0)
                grace_ns = 0; /* gone or wedged: no point waiting */
        } else {
            grace_ns = 0;
        }
        char why[96];
        reap(w, grace_ns, why, sizeof why);
        US_LOGD("worker for '%s' (pid %d) stopped: %s", w->model, (int)w->pid, why);
    }
    release(w);
}
