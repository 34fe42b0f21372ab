/*
 * ort.c - the ONNX Runtime backend behind be.h (layer 7).
 *
 * Loading. libonnxruntime.so is opened with dlopen, never linked, so usher
 * builds and runs where ORT is absent and says so in one error. Where it
 * looks, in order:
 *   1. be_options.ort_library     \ an explicit choice is final: when it
 *   2. $USHER_ORT_LIB             / fails, nothing else is tried
 *   3. USHER_ORT_LIB_DEFAULT      (the copy scripts/deps.sh unpacks; build time)
 *   4. "libonnxruntime.so"        (the dynamic linker's own search)
 * A candidate that opens but is older than the C API this file is compiled
 * against (ORT_API_VERSION) is refused with both versions named and the
 * search goes on. Success is sticky for the process (one ORT per process:
 * two copies would each bring their own thread pools and allocators);
 * a failure is not, so a corrected path works on the next be_open. That is
 * why the load is a mutex-guarded step and not pthread_once: once cannot
 * take the caller's path nor be retried after a failure.
 *
 * Process-wide state: the library handle, the OrtApi pointer and one OrtEnv
 * (ORT allows one per process; sessions share its logger). Nothing else.
 * The env lives until exit: releasing it while another thread may open a
 * session would race, and re-creating it is costly.
 *
 * Logging. The env logs at WARNING into a callback that hands each message
 * to usher's logger (core/log.h), one line each, without ORT's timestamps
 * and with its source locations cut: ORT warnings and errors at INFO (the
 * warnings are chatty - unused initializers, provider assignment - and
 * every error also comes back as the failing call's status), fatal at
 * ERROR. At usher's default threshold ORT is therefore silent.
 *
 * Sessions. Options applied (why):
 *   - intra/inter-op threads as given (0: ORT's default, one per core);
 *     inter_threads > 1 also selects ORT_PARALLEL, the only mode that uses
 *     the inter-op pool.
 *   - graph optimization 0..3 -> ORT_DISABLE_ALL/BASIC/EXTENDED/ALL.
 *   - the CPU memory arena is disabled. ORT's arena grows to the largest
 *     batch ever run and never returns memory; a worker's footprint would
 *     then depend on its history, which defeats the planner's memory
 *     estimate. Without it ORT still plans each run's buffers (memory
 *     patterns) and frees them after the run. Measured with
 *     bench/bench_ort.c on 2 cores: the same CPU time per resnet18 run
 *     with and without the arena (36-37 ms at batch 1).
 *   - intra-op threads do not spin waiting for work after a run. With
 *     spinning on, every idle ORT thread burns a core for a while after
 *     each batch, stealing it from the HTTP front end and other replicas
 *     on the same machine: resnet18 at batch 1 cost 56 ms of CPU per run
 *     with spinning against 36 ms without, for no gain in latency on a
 *     shared 2-core machine.
 *   - subnormal floats are flushed to zero unless keep_denormals is set
 *     (docs/serve.md, "Subnormal floats"): arithmetic on them costs up to
 *     ~100x on some x86 CPUs, so a model whose activations drift into
 *     that range (a test MLP on real input did) runs at a speed its
 *     profile never saw; flushing changes only values below ~1.2e-38, as
 *     GPUs do by default. Two places, because ORT's option alone does not
 *     cover the thread that calls Run: "session.set_denormal_as_zero" = "1"
 *     sets FTZ+DAZ on the session's own pool threads, and on the calling
 *     thread only once per process (the first session's). On x86-64 this
 *     file therefore also sets MXCSR's FTZ (bit 15) and DAZ (bit 6) on the
 *     calling thread for the duration of CreateSession (constant folding
 *     computes like the runs will) and of each Run, and puts the caller's
 *     MXCSR back afterwards, so sessions with either setting share a
 *     thread and the embedding process's own arithmetic is untouched.
 *     Elsewhere only ORT's option applies.
 *   - device "cuda:N" appends the CUDA execution provider (V2 options,
 *     device_id = N) only if this ORT build lists it; otherwise
 *     USHER_ERR_UNSUPPORTED before ORT is asked, so a CPU-only build cannot
 *     fail in surprising ways.
 *
 * Running. Fixed-size inputs are wrapped in place
 * (CreateTensorWithDataAsOrtValue over the caller's bytes: no copy). BYTES
 * inputs are converted from the protocol layout (u32 length + bytes per
 * element) into ORT string tensors, element by element with explicit
 * lengths (GetResizedStringTensorElementBuffer), so embedded NUL bytes
 * survive. Every input is checked against its declaration before ORT sees
 * it. Outputs are copied into us_malloc'd buffers in usher's layout, BYTES
 * back to the length-prefixed form; the sum is checked against
 * max_output_bytes before each copy. ORT's own memory (its OrtValues,
 * names it returns) goes through ORT's allocator and is released before
 * the call returns; only usher's copies survive.
 *
 * Threads: be_open/be_close are safe from any thread; be_run may be called
 * concurrently on one session (ORT's Run is thread-safe and this file only
 * reads the session's fields).
 *
 * Messages name the model by its base name only: ORT's text is scrubbed of
 * the model's full path and directory (RELIABILITY.md PROTO-2, SEC-2).
 *
 * Telemetry. The official Linux build of ORT 1.29 ships Microsoft's 1DS
 * telemetry switched on (ORT PR #27379, "POSIX telemetry"). While the first
 * OrtEnv is created it reads /etc/machine-id and /proc/self/cmdline,
 * creates ~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,
 * onnxruntime.db} (an SQLite queue of events for upload to
 * mobile.events.data.microsoft.com; session events carry the model's file
 * name, producer and hashes), uses /tmp/.ses, and creates an empty,
 * never-written /tmp/mat-debug-<pid>.log whose descriptor it keeps open
 * (without close-on-exec). DisableTelemetryEvents() cannot prevent any of
 * it (it needs the env, and all of this happens while the env is created).
 * ORT skips it all when ORT_DISABLE_TELEMETRY=1 is in the environment, so
 * the first load sets that unless the process already has a value (an
 * operator who wants ORT's telemetry sets ORT_DISABLE_TELEMETRY=0): a model
 * server should not report model names to a third party nor write into the
 * home directory of the user it runs as. setenv is not safe against a
 * concurrent getenv in another thread; it runs once, under g_mu, normally
 * at worker start-up before other threads exist. When telemetry does run,
 * be_open removes this process's empty /tmp/mat-debug-<pid>.log right after
 * creating the env (unlinking is safe while ORT holds it open).
 */
#include "backend/be.h"
#include "backend/greenctx.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "onnxruntime_c_api.h"

#ifndef USHER_ORT_LIB_DEFAULT
#define USHER_ORT_LIB_DEFAULT ""
#endif

#define DEFAULT_MAX_OUTPUT_BYTES ((uint64_t)256 << 20)
#define MODEL_LABEL_MAX 96 /* base name kept for messages */

/* ---- process-wide state ---------------------------------------------------- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static void *g_lib;             /* dlopen handle; never closed */
static const OrtApi *g_api;     /* non-NULL once loaded; written under g_mu */
static const char *g_version;   /* the library's static version string */
static OrtEnv *g_env;           /* the process's one env */

struct be_session {
    OrtSession *sess;
    OrtMemoryInfo *cpu; /* describes the caller's buffers we wrap */
    OrtAllocator *alloc; /* ORT's default allocator (not owned) */
    size_t n_in, n_out;
    be_io *in, *out;
    const char **in_names, **out_names; /* point into in[i].name / out[i].name */
    uint64_t max_output_bytes;
    char model[MODEL_LABEL_MAX];
    be_green *green;    /* the SM partition its CUDA kernels run in, or NULL */
    bool flush_denormals; /* !be_options.keep_denormals */
};

be_options be_default_options(void)
{
    be_options o;
    memset(&o, 0, sizeof o);
    o.device = "cpu";
    o.optimization = 3;
    o.max_output_bytes = DEFAULT_MAX_OUTPUT_BYTES;
    return o;
}

const char *be_ort_version(void)
{
    pthread_mutex_lock(&g_mu);
    const char *v = g_version;
    pthread_mutex_unlock(&g_mu);
    return v;
}

/* ---- small helpers ------------------------------------------------------------ */

/*
 * The calling thread's subnormal mode for one ORT call (file comment): fp_enter
 * sets FTZ+DAZ (flush) or clears them and returns the MXCSR to put back with
 * fp_leave. Not x86-64: ORT's session option is all there is.
 */
#if defined(__x86_64__)
#define MXCSR_FTZ_DAZ 0x8040u /* bit 15 flush-to-zero, bit 6 denormals-are-zero */
static unsigned fp_enter(bool flush)
{
    unsigned old = _mm_getcsr();
    _mm_setcsr(flush ? old | MXCSR_FTZ_DAZ : old & ~MXCSR_FTZ_DAZ);
    return old;
}
static void fp_leave(unsigned old) { _mm_setcsr(old); }
#else
static unsigned fp_enter(bool flush)
{
    (void)flush;
    return 0;
}
static void fp_leave(unsigned old) { (void)old; }
#endif

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

/* Replace every occurrence of `what` in msg (in place, bounded) by `with`. */
static void replace_all(char *msg, const char *what, const char *with)
{
    size_t wl = strlen(what), rl = strlen(with);
    if (wl == 0 || rl > wl)
        return; /* only shrinking replacements: the message never grows */
    char *p = msg;
    while ((p = strstr(p, what)) != NULL) {
        size_t tail = strlen(p + wl);
        memcpy(p, with, rl);
        memmove(p + rl, p + wl, tail + 1);
        p += rl;
    }
}

/*
 * Take absolute locations out of a message about model `path`: the full
 * path becomes the base name, and "<dir>/" in front of any other file of
 * that directory (external data) disappears. Relative spellings ORT may
 * produce ("./x.onnx") are left: they leak nothing.
 */
static void scrub_paths(usher_error *err, const char *path)
{
    if (!err || !path)
        return;
    const char *b = base_name(path);
    replace_all(err->msg, path, b);
    size_t dl = (size_t)(b - path);
    if (dl > 1 && dl < 4096) {
        char dir[4096];
        memcpy(dir, path, dl); /* keeps the trailing '/' */
        dir[dl] = 0;
        replace_all(err->msg, dir, "");
    }
    char *real = realpath(path, NULL); /* ORT may report the resolved spelling */
    if (real) {
        const char *rb = base_name(real);
        replace_all(err->msg, real, rb);
        size_t rl = (size_t)(rb - real);
        real[rl] = 0;
        if (rl > 1)
            replace_all(err->msg, real, "");
        free(real); /* realpath allocates with malloc */
    }
}

static bool is_source_file_token(const char *t, size_t n)
{
    /* "/path/file.h:583" (ORT_ENFORCE and ORT_THROW prefix their text with it) */
    size_t c = n;
    while (c > 0 && t[c - 1] >= '0' && t[c - 1] <= '9')
        c--;
    if (c == n || c < 3 || t[c - 1] != ':')
        return false;
    static const char *const ext[] = {".h:", ".cc:", ".cpp:", ".c:", ".hpp:", ".cu:"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t el = strlen(ext[i]);
        if (c >= el && memcmp(t + c - el, ext[i], el) == 0)
            return true;
    }
    return false;
}

/*
 * Drop ORT's source locations from a message: "<build path>/x.h:583 " and
 * the C++ signature after it ("void onnxruntime::Foo::Bar(int, int) ").
 * They name ORT's build machine's paths (SEC-2) and help no user.
 */
static void strip_source_locations(char *msg)
{
    char *p = msg;
    while ((p = strchr(p, '/')) != NULL) {
        if (p != msg && p[-1] != ' ' && p[-1] != ':' && p[-1] != '\n') {
            p++;
            continue;
        }
        size_t n = strcspn(p, " \n");
        if (!is_source_file_token(p, n)) {
            p += n;
            continue;
        }
        char *end = p + n;
        while (*end == ' ')
            end++;
        /* a signature: text up to '(' with "::" in it, no spaces after the last "::" */
        char *paren = strchr(end, '(');
        char *colons = paren ? strstr(end, "::") : NULL;
        if (paren && colons && colons < paren && paren - end < 200) {
            int depth = 0;
            char *q = paren;
            for (; *q; q++) {
                if (*q == '(')
                    depth++;
                else if (*q == ')' && --depth == 0)
                    break;
            }
            if (*q == ')') {
                q++;
                if (strncmp(q, " const", 6) == 0)
                    q += 6;
                while (*q == ' ')
                    q++;
                end = q;
            }
        }
        memmove(p, end, strlen(end) + 1);
    }
}

/*
 * The one checking wrapper for ORT calls (STYLE 8): NULL status is success;
 * otherwise err gets "<what>: <ORT's message>", the status is released and
 * `code` is returned.
 */
__attribute__((format(printf, 4, 5))) static int ort_check(OrtStatus *st, int code,
                                                           usher_error *err, const char *fmt, ...)
{
    if (!st)
        return USHER_OK;
    if (err) {
        char what[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        us_err_set(err, code, "%s: %s", what, g_api->GetErrorMessage(st));
        strip_source_locations(err->msg);
        size_t n = strlen(err->msg); /* ORT ends some messages with a newline */
        while (n && (err->msg[n - 1] == '\n' || err->msg[n - 1] == ' '))
            err->msg[--n] = 0;
    }
    g_api->ReleaseStatus(st);
    return code;
}

/* An ORT failure at load: which usher code it is. */
static int load_code(OrtStatus *st)
{
    switch (st ? g_api->GetErrorCode(st) : ORT_OK) {
    case ORT_NO_SUCHFILE: return USHER_ERR_NOT_FOUND;
    case ORT_NOT_IMPLEMENTED: return USHER_ERR_UNSUPPORTED; /* an operator ORT lacks */
    default: return USHER_ERR_INVALID;
    }
}

/*
 * An ORT failure while running. Inputs have passed every check against
 * their declarations by then, so what a kernel still refuses (dynamic dims
 * that disagree with each other, an index out of range in a Gather) is
 * nearly always the request's content: ORT reports those as FAIL or
 * RUNTIME_EXCEPTION, and they become USHER_ERR_INVALID (a 4xx, not a 5xx:
 * RELIABILITY.md PROTO-3). Device and provider failures stay internal.
 */
static int run_code(OrtStatus *st)
{
    switch (st ? g_api->GetErrorCode(st) : ORT_OK) {
    case ORT_INVALID_ARGUMENT:
    case ORT_FAIL:
    case ORT_RUNTIME_EXCEPTION: return USHER_ERR_INVALID;
    default: return USHER_ERR_INTERNAL;
    }
}

static us_dtype map_dtype(ONNXTensorElementDataType t)
{
    switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return US_DT_BOOL;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return US_DT_UINT8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return US_DT_UINT16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return US_DT_UINT32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return US_DT_UINT64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return US_DT_INT8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return US_DT_INT16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return US_DT_INT32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return US_DT_INT64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return US_DT_FP16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return US_DT_FP32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return US_DT_FP64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return US_DT_BF16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: return US_DT_BYTES;
    default: return US_DT_INVALID;
    }
}

static ONNXTensorElementDataType unmap_dtype(us_dtype t)
{
    switch (t) {
    case US_DT_BOOL: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
    case US_DT_UINT8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
    case US_DT_UINT16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16;
    case US_DT_UINT32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32;
    case US_DT_UINT64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64;
    case US_DT_INT8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
    case US_DT_INT16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16;
    case US_DT_INT32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case US_DT_INT64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case US_DT_FP16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    case US_DT_FP32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case US_DT_FP64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE;
    case US_DT_BF16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16;
    case US_DT_BYTES: return ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING;
    default: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    }
}

/* Names of ONNX types usher does not carry, for messages. */
static const char *onnx_type_name(ONNXTensorElementDataType t)
{
    switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX64: return "complex64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX128: return "complex128";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E4M3FN: return "float8e4m3fn";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E4M3FNUZ: return "float8e4m3fnuz";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E5M2: return "float8e5m2";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E5M2FNUZ: return "float8e5m2fnuz";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT4: return "uint4";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT4: return "int4";
    default: return "an element type";
    }
}

/* ---- loading the library ------------------------------------------------------------ */

static void ort_log_cb(void *param, OrtLoggingLevel severity, const char *category,
                       const char *logid, const char *code_location, const char *message)
{
    /* ORT's errors also come back as the failing call's status: logging them
       again at the default level would double every bad request in the log */
    us_log_level l = severity >= ORT_LOGGING_LEVEL_FATAL     ? US_LOG_ERROR
                     : severity >= ORT_LOGGING_LEVEL_WARNING ? US_LOG_INFO
                                                             : US_LOG_DEBUG;
    if ((int)l > (int)us_log_get_level())
        return;
    char line[768];
    snprintf(line, sizeof line, "%s", message ? message : "");
    strip_source_locations(line);
    us_log(l, "onnxruntime: %s", line);
}

/* Appends "; " + text to a bounded list of the places looked at. */
typedef struct looked {
    char s[USHER_ERROR_MAX];
    size_t n;
} looked;

__attribute__((format(printf, 2, 3))) static void looked_add(looked *l, const char *fmt, ...)
{
    if (l->n + 3 >= sizeof l->s)
        return;
    if (l->n) {
        memcpy(l->s + l->n, "; ", 2);
        l->n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(l->s + l->n, sizeof l->s - l->n, fmt, ap);
    va_end(ap);
    if (w > 0)
        l->n += (size_t)w < sizeof l->s - l->n ? (size_t)w : sizeof l->s - l->n - 1;
}

/* dlerror() text with the path stripped (it repeats the path we print). */
static const char *dl_reason(const char *path)
{
    const char *e = dlerror();
    if (!e)
        return "unknown dlopen error";
    size_t pl = strlen(path);
    if (strncmp(e, path, pl) == 0 && e[pl] == ':')
        e += pl + 1;
    while (*e == ' ')
        e++;
    return e;
}

/*
 * Try one candidate. 1: loaded (globals set), 0: not usable (reason added
 * to l; *too_old set when it was an older ORT).
 */
static int try_library(const char *path, const char *source, looked *l, bool *too_old)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        looked_add(l, "%s (%s): %s", path, source, dl_reason(path));
        return 0;
    }
    typedef const OrtApiBase *(*get_base_fn)(void);
    get_base_fn get_base;
    void *sym = dlsym(h, "OrtGetApiBase");
    /* the POSIX-sanctioned way to turn an object pointer into a function pointer */
    memcpy(&get_base, &sym, sizeof get_base);
    const OrtApiBase *base = get_base ? get_base() : NULL;
    if (!base) {
        looked_add(l, "%s (%s): not ONNX Runtime (no OrtGetApiBase)", path, source);
        dlclose(h);
        return 0;
    }
    const char *ver = base->GetVersionString ? base->GetVersionString() : "?";
    const OrtApi *api = base->GetApi(ORT_API_VERSION);
    if (!api) {
        looked_add(l,
                   "%s (%s): ONNX Runtime %s does not provide C API version %d, which usher is "
                   "built against (ONNX Runtime 1.%d or newer)",
                   path, source, ver ? ver : "?", ORT_API_VERSION, ORT_API_VERSION);
        *too_old = true;
        dlclose(h);
        return 0;
    }
    g_lib = h;
    g_version = ver;
    g_api = api;
    return 1;
}

/* Is `path` the library already loaded? (RTLD_NOLOAD finds it without loading.) */
static int check_same_library(const char *path, usher_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return us_err_set(err, USHER_ERR_NOT_FOUND,
                          "ONNX Runtime library not found; looked at: %s "
                          "(be_options.ort_library): %s",
                          path, strerror(errno));
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    bool same = h == g_lib;
    if (h)
        dlclose(h); /* drop the reference NOLOAD took */
    if (!same)
        return us_err_set(err, USHER_ERR_STATE,
                          "%s: another ONNX Runtime library (%s) is already loaded in this "
                          "process; one process holds one ORT",
                          path, g_version ? g_version : "?");
    return USHER_OK;
}

/* Load ORT and create the env, once per process. Caller does not hold g_mu. */
static int ort_init(const be_options *o, usher_error *err)
{
    int rc = USHER_OK;
    pthread_mutex_lock(&g_mu);
    if (g_api) {
        if (o->ort_library && o->ort_library[0])
            rc = check_same_library(o->ort_library, err);
    } else {
        /* see the file comment: ORT's telemetry stays off unless the operator says otherwise */
        setenv("ORT_DISABLE_TELEMETRY", "1", 0);
        looked l;
        l.n = 0;
        l.s[0] = 0;
        bool too_old = false, explicit_choice = false;
        const char *env = getenv("USHER_ORT_LIB");
        int ok = 0;
        if (o->ort_library && o->ort_library[0]) {
            explicit_choice = true;
            ok = try_library(o->ort_library, "be_options.ort_library", &l, &too_old);
        } else if (env && env[0]) {
            explicit_choice = true;
            ok = try_library(env, "$USHER_ORT_LIB", &l, &too_old);
        }
        if (!explicit_choice && USHER_ORT_LIB_DEFAULT[0])
            ok = try_library(USHER_ORT_LIB_DEFAULT, "built-in path", &l, &too_old);
        if (!explicit_choice && !ok)
            ok = try_library("libonnxruntime.so", "system library search", &l, &too_old);
        if (!ok)
            rc = us_err_set(err, too_old ? USHER_ERR_UNSUPPORTED : USHER_ERR_NOT_FOUND,
                            "ONNX Runtime library %s; looked at: %s",
                            too_old ? "too old" : "not found", l.s);
    }
    if (rc == USHER_OK && !g_env) {
        OrtEnv *env = NULL;
        rc = ort_check(g_api->CreateEnvWithCustomLogger(ort_log_cb, NULL,
                                                        ORT_LOGGING_LEVEL_WARNING, "usher", &env),
                       USHER_ERR_INTERNAL, err, "creating the ONNX Runtime environment");
        if (rc == USHER_OK) {
            g_env = env;
            char tmp[64];
            snprintf(tmp, sizeof tmp, "/tmp/mat-debug-%ld.log", (long)getpid());
            struct stat sb;
            /* only an empty regular file: never remove what someone wrote */
            if (lstat(tmp, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0 &&
                sb.st_uid == geteuid())
                unlink(tmp);
        }
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

/* ---- sessions --------------------------------------------------------------------------- */

/* "cpu" -> -1, "cuda:N" -> N; USHER_ERR_UNSUPPORTED for anything else. */
static int parse_device(const char *dev, int *cuda, usher_error *err)
{
    *cuda = -1;
    if (!dev || !dev[0] || strcmp(dev, "cpu") == 0)
        return USHER_OK;
    if (strncmp(dev, "cuda:", 5) == 0 && dev[5]) {
        long v = 0;
        const char *p = dev + 5;
        for (; *p >= '0' && *p <= '9' && v <= 4096; p++)
            v = v * 10 + (*p - '0');
        if (!*p && v <= 4096) {
            *cuda = (int)v;
            return USHER_OK;
        }
    }
    return us_err_set(err, USHER_ERR_UNSUPPORTED,
                      "unknown device '%.64s' (expected \"cpu\" or \"cuda:N\")", dev);
}

static int append_cuda(be_session *s, OrtSessionOptions *so, int dev, int sm_percent,
                       usher_error *err)
{
    const OrtApi *A = g_api;
    char **prov = NULL;
    int n_prov = 0;
    bool have = false;
    int rc = ort_check(A->GetAvailableProviders(&prov, &n_prov), USHER_ERR_INTERNAL, err,
                       "%s: listing ORT's execution providers", s->model);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n_prov; i++)
        have |= strcmp(prov[i], "CUDAExecutionProvider") == 0;
    OrtStatus *st = A->ReleaseAvailableProviders(prov, n_prov);
    if (st)
        A->ReleaseStatus(st);
    if (!have)
        return us_err_set(err, USHER_ERR_UNSUPPORTED,
                          "%s: device 'cuda:%d': this ONNX Runtime (%s) has no CUDA execution "
                          "provider",
                          s->model, dev, g_version);
    OrtCUDAProviderOptionsV2 *co = NULL;
    rc = ort_check(A->CreateCUDAProviderOptions(&co), USHER_ERR_UNSUPPORTED, err,
                   "%s: device 'cuda:%d'", s->model, dev);
    if (rc < 0)
        return rc;
    char id[16];
    snprintf(id, sizeof id, "%d", dev);
    const char *keys[] = {"device_id"};
    const char *vals[] = {id};
    rc = ort_check(A->UpdateCUDAProviderOptions(co, keys, vals, 1), USHER_ERR_INVALID, err,
                   "%s: device 'cuda:%d'", s->model, dev);
    /* an SM partition: every kernel of the session on a stream of a green context */
    if (rc == USHER_OK && sm_percent > 0 && sm_percent < 100) {
        rc = be_green_open(dev, sm_percent, &s->green, err);
        if (rc == USHER_OK)
            rc = ort_check(A->UpdateCUDAProviderOptionsWithValue(co, "user_compute_stream",
                                                                 be_green_stream(s->green)),
                           USHER_ERR_INVALID, err, "%s: device 'cuda:%d': compute stream",
                           s->model, dev);
    }
    if (rc == USHER_OK)
        rc = ort_check(A->SessionOptionsAppendExecutionProvider_CUDA_V2(so, co),
                       USHER_ERR_NOT_FOUND, err, "%s: device 'cuda:%d' is not usable", s->model,
                       dev);
    A->ReleaseCUDAProviderOptions(co);
    return rc;
}

static int make_options(be_session *s, const be_options *o, int cuda, OrtSessionOptions **out,
                        usher_error *err)
{
    const OrtApi *A = g_api;
    static const GraphOptimizationLevel levels[] = {ORT_DISABLE_ALL, ORT_ENABLE_BASIC,
                                                    ORT_ENABLE_EXTENDED, ORT_ENABLE_ALL};
    OrtSessionOptions *so = NULL;
    int rc = ort_check(A->CreateSessionOptions(&so), USHER_ERR_NOMEM, err,
                       "%s: creating session options", s->model);
    if (rc < 0)
        return rc;
#define TRY(call, what)                                                                            \
    do {                                                                                           \
        if ((rc = ort_check((call), USHER_ERR_INVALID, err, "%s: %s", s->model, what)) < 0)        \
            goto fail;                                                                             \
    } while (0)
    if (o->intra_threads > 0)
        TRY(A->SetIntraOpNumThreads(so, o->intra_threads), "intra-op threads");
    if (o->inter_threads > 0)
        TRY(A->SetInterOpNumThreads(so, o->inter_threads), "inter-op threads");
    if (o->inter_threads > 1)
        TRY(A->SetSessionExecutionMode(so, ORT_PARALLEL), "parallel execution");
    TRY(A->SetSessionGraphOptimizationLevel(so, levels[o->optimization]), "optimization level");
    TRY(A->DisableCpuMemArena(so), "disabling the CPU arena");
    TRY(A->AddSessionConfigEntry(so, "session.intra_op.allow_spinning", "0"), "thread spinning");
    TRY(A->AddSessionConfigEntry(so, "session.inter_op.allow_spinning", "0"), "thread spinning");
    if (!o->keep_denormals)
        TRY(A->AddSessionConfigEntry(so, "session.set_denormal_as_zero", "1"),
            "flushing subnormal floats");
#undef TRY
    if (cuda >= 0 && (rc = append_cuda(s, so, cuda, o->sm_percentage, err)) < 0)
        goto fail;
    *out = so;
    return USHER_OK;
fail:
    A->ReleaseSessionOptions(so);
    return rc;
}

/* Name, type and declared shape of input (is_input) or output i. */
static int read_io(be_session *s, bool is_input, size_t i, be_io *io, usher_error *err)
{
    const OrtApi *A = g_api;
    const char *kind = is_input ? "input" : "output";
    char *name = NULL;
    OrtTypeInfo *ti = NULL;
    int rc = ort_check(is_input ? A->SessionGetInputName(s->sess, i, s->alloc, &name)
                                : A->SessionGetOutputName(s->sess, i, s->alloc, &name),
                       USHER_ERR_INTERNAL, err, "%s: name of %s %zu", s->model, kind, i);
    if (rc < 0)
        return rc;
    size_t nl = strlen(name);
    if (nl >= sizeof io->name) {
        rc = us_err_set(err, USHER_ERR_UNSUPPORTED,
                        "%s: %s %zu: name of %zu bytes, usher carries at most %zu", s->model,
                        kind, i, nl, sizeof io->name - 1);
        goto done;
    }
    memcpy(io->name, name, nl + 1);
    rc = ort_check(is_input ? A->SessionGetInputTypeInfo(s->sess, i, &ti)
                            : A->SessionGetOutputTypeInfo(s->sess, i, &ti),
                   USHER_ERR_INTERNAL, err, "%s: type of %s '%s'", s->model, kind, io->name);
    if (rc < 0)
        goto done;
    ONNXType ot = ONNX_TYPE_UNKNOWN;
    const OrtTensorTypeAndShapeInfo *tsi = NULL;
    rc = ort_check(A->GetOnnxTypeFromTypeInfo(ti, &ot), USHER_ERR_INTERNAL, err,
                   "%s: type of %s '%s'", s->model, kind, io->name);
    if (rc < 0)
        goto done;
    if (ot != ONNX_TYPE_TENSOR) {
        rc = us_err_set(err, USHER_ERR_UNSUPPORTED,
                        "%s: %s '%s' is not a tensor (a sequence, map or optional value); usher "
                        "carries tensors only",
                        s->model, kind, io->name);
        goto done;
    }
    rc = ort_check(A->CastTypeInfoToTensorInfo(ti, &tsi), USHER_ERR_INTERNAL, err,
                   "%s: type of %s '%s'", s->model, kind, io->name);
    if (rc < 0)
        goto done;
    ONNXTensorElementDataType et = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    size_t rank = 0;
    rc = ort_check(A->GetTensorElementType(tsi, &et), USHER_ERR_INTERNAL, err,
                   "%s: type of %s '%s'", s->model, kind, io->name);
    if (rc == USHER_OK)
        rc = ort_check(A->GetDimensionsCount(tsi, &rank), USHER_ERR_INTERNAL, err,
                       "%s: rank of %s '%s'", s->model, kind, io->name);
    if (rc < 0)
        goto done;
    io->dtype = map_dtype(et);
    if (io->dtype == US_DT_INVALID) {
        rc = us_err_set(err, USHER_ERR_UNSUPPORTED,
                        "%s: %s '%s' has ONNX element type %d (%s), which usher does not carry",
                        s->model, kind, io->name, (int)et, onnx_type_name(et));
        goto done;
    }
    if (rank > US_TENSOR_MAX_RANK) {
        rc = us_err_set(err, USHER_ERR_UNSUPPORTED, "%s: %s '%s' has rank %zu, usher allows %d",
                        s->model, kind, io->name, rank, US_TENSOR_MAX_RANK);
        goto done;
    }
    io->shape.rank = (int)rank;
    rc = ort_check(A->GetDimensions(tsi, io->shape.dim, rank), USHER_ERR_INTERNAL, err,
                   "%s: shape of %s '%s'", s->model, kind, io->name);
    for (size_t d = 0; rc == USHER_OK && d < rank; d++)
        if (io->shape.dim[d] < 0)
            io->shape.dim[d] = -1; /* symbolic or unknown: dynamic */
done:
    if (ti)
        A->ReleaseTypeInfo(ti);
    if (name) {
        OrtStatus *st = A->AllocatorFree(s->alloc, name);
        if (st)
            A->ReleaseStatus(st);
    }
    return rc;
}

static int check_options(const be_options *o, usher_error *err)
{
    if (o->intra_threads < 0 || o->inter_threads < 0)
        return us_err_set(err, USHER_ERR_INVALID, "thread counts must be >= 0 (intra %d, inter %d)",
                          o->intra_threads, o->inter_threads);
    if (o->optimization < 0 || o->optimization > 3)
        return us_err_set(err, USHER_ERR_INVALID, "optimization level %d, expected 0..3",
                          o->optimization);
    return USHER_OK;
}

int be_open(const char *model_path, const be_options *opts, be_session **out, usher_error *err)
{
    be_options defaults = be_default_options();
    const be_options *o = opts ? opts : &defaults;
    be_session *s = NULL;
    OrtSessionOptions *so = NULL;
    int cuda = -1, rc;
    *out = NULL;
    us_err_clear(err);
    if (!model_path || !model_path[0])
        return us_err_set(err, USHER_ERR_INVALID, "no model path");
    const char *label = base_name(model_path);
    if ((rc = check_options(o, err)) < 0 || (rc = parse_device(o->device, &cuda, err)) < 0)
        return us_err_prefix(err, rc, "%.96s: ", label);
    struct stat st;
    if (stat(model_path, &st) != 0)
        return us_err_set(err, errno == ENOENT ? USHER_ERR_NOT_FOUND : USHER_ERR_IO,
                          "%.96s: cannot open the model: %s", label, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return us_err_set(err, USHER_ERR_INVALID, "%.96s: not a regular file", label);
    if ((rc = ort_init(o, err)) < 0)
        return rc;

    s = us_calloc(1, sizeof *s);
    if (!s)
        return us_err_set(err, USHER_ERR_NOMEM, "%.96s: out of memory", label);
    snprintf(s->model, sizeof s->model, "%s", label);
    s->max_output_bytes = o->max_output_bytes ? o->max_output_bytes : DEFAULT_MAX_OUTPUT_BYTES;
    s->flush_denormals = !o->keep_denormals;
    const OrtApi *A = g_api;
    if ((rc = ort_check(A->GetAllocatorWithDefaultOptions(&s->alloc), USHER_ERR_INTERNAL, err,
                        "%s: ORT's allocator", s->model)) < 0 ||
        (rc = ort_check(A->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &s->cpu),
                        USHER_ERR_NOMEM, err, "%s: CPU memory info", s->model)) < 0 ||
        (rc = make_options(s, o, cuda, &so, err)) < 0)
        goto fail;
    unsigned fp = fp_enter(s->flush_denormals); /* also what the pool threads inherit */
    OrtStatus *cs = A->CreateSession(g_env, model_path, so, &s->sess);
    fp_leave(fp); /* undoes ORT's once-per-process setting of this thread too */
    if (cs) {
        rc = ort_check(cs, load_code(cs), err, "%s: ONNX Runtime refused the model", s->model);
        scrub_paths(err, model_path);
        goto fail;
    }
    if ((rc = ort_check(A->SessionGetInputCount(s->sess, &s->n_in), USHER_ERR_INTERNAL, err,
                        "%s: input count", s->model)) < 0 ||
        (rc = ort_check(A->SessionGetOutputCount(s->sess, &s->n_out), USHER_ERR_INTERNAL, err,
                        "%s: output count", s->model)) < 0)
        goto fail;
    s->in = us_calloc(s->n_in ? s->n_in : 1, sizeof *s->in);
    s->out = us_calloc(s->n_out ? s->n_out : 1, sizeof *s->out);
    s->in_names = us_calloc(s->n_in ? s->n_in : 1, sizeof *s->in_names);
    s->out_names = us_calloc(s->n_out ? s->n_out : 1, sizeof *s->out_names);
    if (!s->in || !s->out || !s->in_names || !s->out_names) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory", s->model);
        goto fail;
    }
    for (size_t i = 0; i < s->n_in; i++) {
        if ((rc = read_io(s, true, i, &s->in[i], err)) < 0)
            goto fail;
        s->in_names[i] = s->in[i].name;
    }
    for (size_t i = 0; i < s->n_out; i++) {
        if ((rc = read_io(s, false, i, &s->out[i], err)) < 0)
            goto fail;
        s->out_names[i] = s->out[i].name;
    }
    A->ReleaseSessionOptions(so);
    *out = s;
    return USHER_OK;
fail:
    if (so)
        A->ReleaseSessionOptions(so);
    be_close(s);
    return rc;
}

void be_close(be_session *s)
{
    if (!s)
        return;
    if (s->sess)
        g_api->ReleaseSession(s->sess);
    if (s->cpu)
        g_api->ReleaseMemoryInfo(s->cpu);
    be_green_close(s->green); /* after the session that used its stream */
    us_free(s->in);
    us_free(s->out);
    us_free(s->in_names);
    us_free(s->out_names);
    us_free(s);
}

size_t be_n_inputs(const be_session *s) { return s ? s->n_in : 0; }
size_t be_n_outputs(const be_session *s) { return s ? s->n_out : 0; }
const be_io *be_input(const be_session *s, size_t i) { return s && i < s->n_in ? &s->in[i] : NULL; }
const be_io *be_output(const be_session *s, size_t i)
{
    return s && i < s->n_out ? &s->out[i] : NULL;
}

void be_outputs_free(us_tensor *out, size_t n)
{
    for (size_t i = 0; out && i < n; i++) {
        us_free(out[i].data);
        out[i].data = NULL;
        out[i].bytes = 0;
    }
}

/* ---- running ------------------------------------------------------------------------------ */

static uint32_t rd_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Check in against declaration d; *elements gets its element count. */
static int check_input(const be_session *s, size_t i, const be_io *d, const us_tensor *in,
                       uint64_t *elements, usher_error *err)
{
    char what[US_TENSOR_NAME_MAX + 16], a[256], b[256];
    snprintf(what, sizeof what, "input '%s'", d->name);
    if (in->name[0] && strncmp(in->name, d->name, sizeof in->name) != 0)
        return us_err_set(err, USHER_ERR_INVALID,
                          "%s: input %zu is '%s', but the tensor given is named '%.*s'", s->model,
                          i, d->name, (int)strnlen(in->name, sizeof in->name), in->name);
    if (in->dtype != d->dtype)
        return us_err_set(err, USHER_ERR_INVALID, "%s: %s is %s, got %s", s->model, what,
                          us_dtype_name(d->dtype), us_dtype_name(in->dtype));
    if (in->shape.rank < 0 || in->shape.rank > US_TENSOR_MAX_RANK)
        return us_err_set(err, USHER_ERR_INVALID, "%s: %s has rank %d, at most %d", s->model,
                          what, in->shape.rank, US_TENSOR_MAX_RANK);
    if (!us_shape_matches(&d->shape, &in->shape))
        return us_err_set(err, USHER_ERR_INVALID, "%s: %s has shape %s, the model declares %s",
                          s->model, what, us_shape_str(&in->shape, a, sizeof a),
                          us_shape_str(&d->shape, b, sizeof b));
    int rc = us_shape_elements(&in->shape, what, elements, err);
    if (rc < 0)
        return us_err_prefix(err, rc, "%s: ", s->model);
    if (in->bytes && !in->data)
        return us_err_set(err, USHER_ERR_INVALID, "%s: %s has %llu bytes but no data", s->model,
                          what, (unsigned long long)in->bytes);
    if (d->dtype == US_DT_BYTES) {
        rc = us_bytes_check(in->data, in->bytes, *elements, what, err);
        return rc < 0 ? us_err_prefix(err, rc, "%s: ", s->model) : USHER_OK;
    }
    uint64_t nb;
    if ((rc = us_tensor_nbytes(d->dtype, &in->shape, what, &nb, err)) < 0)
        return us_err_prefix(err, rc, "%s: ", s->model);
    if (nb != in->bytes)
        return us_err_set(err, USHER_ERR_INVALID, "%s: %s: %s %s needs %llu bytes, got %llu",
                          s->model, what, us_dtype_name(d->dtype),
                          us_shape_str(&in->shape, a, sizeof a), (unsigned long long)nb,
                          (unsigned long long)in->bytes);
    if (nb > SIZE_MAX)
        return us_err_set(err, USHER_ERR_LIMIT, "%s: %s is larger than memory", s->model, what);
    return USHER_OK;
}

/* An ORT string tensor holding the length-prefixed BYTES elements of in. */
static int make_string_input(be_session *s, const be_io *d, const us_tensor *in,
                             uint64_t elements, OrtValue **v, usher_error *err)
{
    const OrtApi *A = g_api;
    int rc = ort_check(A->CreateTensorAsOrtValue(s->alloc, in->shape.dim,
                                                 (size_t)in->shape.rank,
                                                 ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING, v),
                       USHER_ERR_NOMEM, err, "%s: input '%s': string tensor", s->model, d->name);
    const uint8_t *p = in->data;
    for (uint64_t e = 0; rc == USHER_OK && e < elements; e++) {
        /* layout checked by us_bytes_check: every length fits */
        uint32_t len = rd_u32le(p);
        char *dst = NULL;
        rc = ort_check(A->GetResizedStringTensorElementBuffer(*v, (size_t)e, len, &dst),
                       USHER_ERR_NOMEM, err, "%s: input '%s': element %llu", s->model, d->name,
                       (unsigned long long)e);
        if (rc == USHER_OK && len)
            memcpy(dst, p + 4, len);
        p += 4 + (size_t)len;
    }
    return rc;
}

/* Add n to *total and check the limit; what names the output. */
static int count_output(be_session *s, uint64_t *total, uint64_t n, const char *name,
                        usher_error *err)
{
    if (__builtin_add_overflow(*total, n, total) || *total > s->max_output_bytes)
        return us_err_set(err, USHER_ERR_LIMIT,
                          "%s: outputs exceed max_output_bytes (%llu) at output '%s'", s->model,
                          (unsigned long long)s->max_output_bytes, name);
    return USHER_OK;
}

/* Copy ORT's output value v into o (data us_malloc'd). */
static int copy_output(be_session *s, size_t i, OrtValue *v, uint64_t *total, us_tensor *o,
                       usher_error *err)
{
    const OrtApi *A = g_api;
    const char *name = s->out[i].name;
    OrtTensorTypeAndShapeInfo *ti = NULL;
    int is_tensor = 0;
    int rc = ort_check(A->IsTensor(v, &is_tensor), USHER_ERR_INTERNAL, err, "%s: output '%s'",
                       s->model, name);
    if (rc < 0)
        return rc;
    if (!is_tensor)
        return us_err_set(err, USHER_ERR_INTERNAL, "%s: output '%s' is not a tensor", s->model,
                          name);
    if ((rc = ort_check(A->GetTensorTypeAndShape(v, &ti), USHER_ERR_INTERNAL, err,
                        "%s: output '%s'", s->model, name)) < 0)
        return rc;
    ONNXTensorElementDataType et = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    size_t rank = 0;
    uint64_t elements = 0;
    char what[US_TENSOR_NAME_MAX + 16];
    snprintf(what, sizeof what, "output '%s'", name);
    if ((rc = ort_check(A->GetTensorElementType(ti, &et), USHER_ERR_INTERNAL, err, "%s: %s",
                        s->model, what)) < 0 ||
        (rc = ort_check(A->GetDimensionsCount(ti, &rank), USHER_ERR_INTERNAL, err, "%s: %s",
                        s->model, what)) < 0)
        goto done;
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    o->dtype = map_dtype(et);
    if (o->dtype == US_DT_INVALID) {
        rc = us_err_set(err, USHER_ERR_INTERNAL, "%s: %s came back with ONNX type %d", s->model,
                        what, (int)et);
        goto done;
    }
    if (rank > US_TENSOR_MAX_RANK) {
        rc = us_err_set(err, USHER_ERR_LIMIT, "%s: %s came back with rank %zu, usher allows %d",
                        s->model, what, rank, US_TENSOR_MAX_RANK);
        goto done;
    }
    o->shape.rank = (int)rank;
    if ((rc = ort_check(A->GetDimensions(ti, o->shape.dim, rank), USHER_ERR_INTERNAL, err,
                        "%s: %s", s->model, what)) < 0 ||
        (rc = us_shape_elements(&o->shape, what, &elements, err)) < 0)
        goto done;
    if (o->dtype != US_DT_BYTES) {
        uint64_t nb;
        void *src = NULL;
        if ((rc = us_tensor_nbytes(o->dtype, &o->shape, what, &nb, err)) < 0 ||
            (rc = count_output(s, total, nb, name, err)) < 0)
            goto done;
        if (nb && (rc = ort_check(A->GetTensorMutableData(v, &src), USHER_ERR_INTERNAL, err,
                                  "%s: %s data", s->model, what)) < 0)
            goto done;
        o->data = us_malloc(nb ? (size_t)nb : 1);
        if (!o->data) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "%s: %s: out of memory", s->model, what);
            goto done;
        }
        if (nb)
            memcpy(o->data, src, (size_t)nb);
        o->bytes = nb;
        goto done;
    }
    /* strings: ORT's total content length first, so the limit is checked before copying */
    size_t content = 0;
    uint64_t nb;
    if ((rc = ort_check(A->GetStringTensorDataLength(v, &content), USHER_ERR_INTERNAL, err,
                        "%s: %s", s->model, what)) < 0)
        goto done;
    if (__builtin_mul_overflow(elements, (uint64_t)4, &nb) ||
        __builtin_add_overflow(nb, (uint64_t)content, &nb) || nb > SIZE_MAX) {
        rc = us_err_set(err, USHER_ERR_LIMIT, "%s: %s is larger than memory", s->model, what);
        goto done;
    }
    if ((rc = count_output(s, total, nb, name, err)) < 0)
        goto done;
    uint8_t *buf = us_malloc(nb ? (size_t)nb : 1);
    if (!buf) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "%s: %s: out of memory", s->model, what);
        goto done;
    }
    o->data = buf;
    size_t off = 0;
    for (uint64_t e = 0; e < elements; e++) {
        size_t len = 0;
        if ((rc = ort_check(A->GetStringTensorElementLength(v, (size_t)e, &len),
                            USHER_ERR_INTERNAL, err, "%s: %s", s->model, what)) < 0)
            goto done;
        if (nb - off < 4 || len > UINT32_MAX || len > nb - off - 4) {
            rc = us_err_set(err, USHER_ERR_INTERNAL,
                            "%s: %s: element %llu does not fit its 4-byte length or the total",
                            s->model, what, (unsigned long long)e);
            goto done;
        }
        wr_u32le(buf + off, (uint32_t)len);
        off += 4;
        if (len && (rc = ort_check(A->GetStringTensorElement(v, len, (size_t)e, buf + off),
                                   USHER_ERR_INTERNAL, err, "%s: %s", s->model, what)) < 0)
            goto done;
        off += len;
    }
    o->bytes = off;
done:
    if (rc < 0) {
        us_free(o->data);
        o->data = NULL;
        o->bytes = 0;
    }
    A->ReleaseTensorTypeAndShapeInfo(ti);
    return rc;
}

int be_run(be_session *s, const us_tensor *in, size_t n_in, us_tensor *out, usher_error *err)
{
    uint8_t empty_data[8]; /* ORT wants a pointer even for zero elements; never read */
    const OrtApi *A = g_api;
    OrtValue **iv = NULL, **ov = NULL;
    int rc = USHER_OK;
    us_err_clear(err);
    if (!s)
        return us_err_set(err, USHER_ERR_INVALID, "no session");
    if (n_in != s->n_in)
        return us_err_set(err, USHER_ERR_INVALID, "%s: %zu inputs given, the model has %zu",
                          s->model, n_in, s->n_in);
    if (n_in && !in)
        return us_err_set(err, USHER_ERR_INVALID, "%s: no inputs given", s->model);
    if (s->n_out && !out)
        return us_err_set(err, USHER_ERR_INVALID, "%s: no room for the outputs", s->model);
    for (size_t i = 0; i < s->n_out; i++) {
        out[i].data = NULL;
        out[i].bytes = 0;
    }
    iv = us_calloc(n_in ? n_in : 1, sizeof *iv);
    ov = us_calloc(s->n_out ? s->n_out : 1, sizeof *ov);
    if (!iv || !ov) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory", s->model);
        goto done;
    }
    for (size_t i = 0; i < n_in; i++) {
        uint64_t elements;
        const be_io *d = &s->in[i];
        if ((rc = check_input(s, i, d, &in[i], &elements, err)) < 0)
            goto done;
        if (d->dtype == US_DT_BYTES) {
            if ((rc = make_string_input(s, d, &in[i], elements, &iv[i], err)) < 0)
                goto done;
            continue;
        }
        void *p = in[i].bytes ? in[i].data : empty_data;
        rc = ort_check(A->CreateTensorWithDataAsOrtValue(s->cpu, p, (size_t)in[i].bytes,
                                                         in[i].shape.dim,
                                                         (size_t)in[i].shape.rank,
                                                         unmap_dtype(d->dtype), &iv[i]),
                       USHER_ERR_INVALID, err, "%s: input '%s'", s->model, d->name);
        if (rc < 0)
            goto done;
    }
    unsigned fp = fp_enter(s->flush_denormals);
    OrtStatus *st = A->Run(s->sess, NULL, s->in_names, (const OrtValue *const *)iv, n_in,
                           s->out_names, s->n_out, ov);
    fp_leave(fp);
    if (st) {
        rc = ort_check(st, run_code(st), err, "%s: run failed", s->model);
        goto done;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < s->n_out; i++)
        if ((rc = copy_output(s, i, ov[i], &total, &out[i], err)) < 0)
            goto done;
done:
    if (rc < 0 && out)
        be_outputs_free(out, s->n_out);
    for (size_t i = 0; iv && i < n_in; i++)
        if (iv[i])
            A->ReleaseValue(iv[i]);
    for (size_t i = 0; ov && i < s->n_out; i++)
        if (ov[i])
            A->ReleaseValue(ov[i]);
    us_free(iv);
    us_free(ov);
    return rc;
}
