/*
 * test_loadgen.c - the load generator (src/client/loadgen.c) and the HTTP/1.1
 * client parser (src/client/httpc.c).
 *
 * Pure parts are tested on their own: arrival statistics with a fixed seed,
 * trace errors naming file:line, the ledger's counts (duplicates and
 * mismatched ids made by hand: one HTTP/1.1 connection cannot deliver two
 * responses to one request), percentiles of known latencies, and the
 * response parser on crafted bytes fed in every split. The engine runs
 * against a small real HTTP server started here with libmicrohttpd, which
 * answers by request number: 200 after a delay, 503 for some, never for
 * others, a wrong id for others; the expected counts follow from the
 * numbers, so the ledger is checked exactly.
 *
 * Set USHER_LOADGEN_BENCH=1 to also run bench_max_rate: the generator's own
 * highest sustainable rate against that server on this machine.
 */
#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "client/httpc.h"
#include "client/loadgen.h"
#include "test.h"

/* ---- a small KServe-like server ------------------------------------------ */

typedef struct tsrv {
    struct MHD_Daemon *d;
    uint16_t port;
    int delay_ms;          /* before each answer */
    int mod_503, rem_503;  /* request n with n % mod == rem gets 503 (mod 0: never) */
    int mod_hang, rem_hang; /* ... never gets an answer (the connection is dropped later) */
    int hang_ms;
    int mod_wrong, rem_wrong; /* ... gets a 200 carrying request 0's id */
    atomic_int close_conn;    /* answer with Connection: close */
    atomic_int posts, gets;
    pthread_mutex_t mu;
    char first_body[8192];
    bool have_body;
} tsrv;

typedef struct tbody {
    char *p;
    size_t n;
} tbody;

static const char META[] =
    "{\"name\":\"m\",\"versions\":[\"1\"],\"platform\":\"onnxruntime_onnx\","
    "\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[-1,3]},"
    "{\"name\":\"tok\",\"datatype\":\"INT64\",\"shape\":[2]},"
    "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[1]}],"
    "\"outputs\":[{\"name\":\"y\",\"datatype\":\"FP32\",\"shape\":[-1,3]}]}";

/* the id our generator writes first in the body: {"id":"S-n" */
static bool body_id(const tbody *b, char *id, size_t cap, long *n)
{
    if (!b->p || b->n < 8 || memcmp(b->p, "{\"id\":\"", 7) != 0)
        return false;
    size_t i = 7, o = 0;
    while (i < b->n && b->p[i] != '"' && o + 1 < cap)
        id[o++] = b->p[i++];
    id[o] = '\0';
    const char *dash = strchr(id, '-');
    *n = dash ? strtol(dash + 1, NULL, 10) : -1;
    return true;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *json,
                             bool close_conn)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(json), (void *)(uintptr_t)json,
                                        MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (close_conn)
        MHD_add_response_header(r, "Connection", "close");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **ctx)
{
    tsrv *s = cls;
    (void)version;
    if (!*ctx) {
        *ctx = calloc(1, sizeof(tbody));
        return *ctx ? MHD_YES : MHD_NO;
    }
    tbody *b = *ctx;
    if (*upload_size) {
        if (b->n + *upload_size > (1u << 20))
            return MHD_NO;
        char *p = realloc(b->p, b->n + *upload_size + 1);
        if (!p)
            return MHD_NO;
        memcpy(p + b->n, upload, *upload_size);
        b->p = p;
        b->n += *upload_size;
        b->p[b->n] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") == 0) {
        atomic_fetch_add(&s->gets, 1);
        if (strcmp(url, "/v2/models/m") == 0)
            return reply(c, 200, META, atomic_load(&s->close_conn));
        return reply(c, 404, "{\"error\":\"unknown model\"}", atomic_load(&s->close_conn));
    }
    atomic_fetch_add(&s->posts, 1);
    char id[128] = "", out[512];
    long n = -1;
    body_id(b, id, sizeof id, &n);
    pthread_mutex_lock(&s->mu);
    if (!s->have_body && b->p) {
        snprintf(s->first_body, sizeof s->first_body, "%s", b->p);
        s->have_body = true;
    }
    pthread_mutex_unlock(&s->mu);
    if (strcmp(url, "/v2/models/m/infer") != 0) {
        snprintf(out, sizeof out, "{\"error\":\"unknown model\",\"id\":\"%s\"}", id);
        return reply(c, 404, out, atomic_load(&s->close_conn));
    }
    if (s->mod_hang && n >= 0 && n % s->mod_hang == s->rem_hang) {
        usleep((useconds_t)s->hang_ms * 1000);
        return MHD_NO; /* drop the connection without an answer */
    }
    if (s->delay_ms)
        usleep((useconds_t)s->delay_ms * 1000);
    if (s->mod_503 && n >= 0 && n % s->mod_503 == s->rem_503) {
        snprintf(out, sizeof out, "{\"error\":\"queue full\",\"id\":\"%s\"}", id);
        return reply(c, 503, out, atomic_load(&s->close_conn));
    }
    if (s->mod_wrong && n >= 0 && n % s->mod_wrong == s->rem_wrong) {
        char *dash = strchr(id, '-');
        if (dash)
            snprintf(dash + 1, sizeof id - (size_t)(dash + 1 - id), "0");
    }
    snprintf(out, sizeof out, "{\"id\": \"%s\", \"model_name\":\"m\", \"outputs\": []}", id);
    return reply(c, 200, out, atomic_load(&s->close_conn));
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    tbody *b = *ctx;
    if (b) {
        free(b->p);
        free(b);
        *ctx = NULL;
    }
}

/* threads: one per connection (sleeping handlers need it); else one poll thread */
static bool tsrv_start(tsrv *s, bool threads)
{
    pthread_mutex_init(&s->mu, NULL);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = threads ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                   MHD_USE_POLL
                             : MHD_USE_POLL_INTERNAL_THREAD;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR, &a,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                            MHD_OPTION_CONNECTION_LIMIT, 2000u, MHD_OPTION_CONNECTION_TIMEOUT,
                            60u, MHD_OPTION_END);
    if (!s->d)
        return false;
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = i ? i->port : 0;
    return s->port != 0;
}

static void tsrv_stop(tsrv *s)
{
    if (s->d)
        MHD_stop_daemon(s->d);
    s->d = NULL;
    pthread_mutex_destroy(&s->mu);
}

static char url_buf[64];
static const char *tsrv_url(const tsrv *s)
{
    snprintf(url_buf, sizeof url_buf, "http://127.0.0.1:%u", (unsigned)s->port);
    return url_buf;
}

static const char *write_input(void)
{
    const char *path = test_path(test_tmpdir(), "in.json");
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fputs("{\"id\": \"user-id\", \"inputs\": [{\"name\": \"x\", \"datatype\": \"FP32\", "
          "\"shape\": [1, 3], \"data\": [1, 2, 3]}]}\n", f);
    fclose(f);
    return path;
}

/* ---- arrivals ------------------------------------------------------------- */

TEST(poisson_statistics)
{
    /* 100 s at 1000/s, fixed seed: the count, the gaps and the counts per
       window must look like a Poisson process */
    double rate = 1000, dur = 100;
    lg_schedule s;
    usher_error err;
    ASSERT_OK(lg_schedule_draw(LG_ARRIVALS_POISSON, &rate, 1, dur, 42, &s, &err));
    double expect = rate * dur;
    if (fabs((double)s.n - expect) > 4 * sqrt(expect)) {
        lg_schedule_free(&s);
        FAIL_("count %zu, expected %g +- %g", s.n, expect, 4 * sqrt(expect));
    }
    double sum = 0, sum2 = 0;
    uint64_t prev = 0;
    bool sorted = true;
    for (size_t i = 0; i < s.n; i++) {
        sorted &= s.a[i].t_us >= prev;
        double g = (double)(s.a[i].t_us - prev) / 1e6;
        prev = s.a[i].t_us;
        sum += g;
        sum2 += g * g;
    }
    double mean = sum / (double)s.n, var = sum2 / (double)s.n - mean * mean;
    /* counts in 100 ms windows: mean = variance = 100 */
    enum { W = 1000 };
    static double cnt[W];
    memset(cnt, 0, sizeof cnt);
    for (size_t i = 0; i < s.n; i++)
        cnt[s.a[i].t_us / 100000]++;
    double cm = 0, cv = 0;
    for (int w = 0; w < W; w++)
        cm += cnt[w];
    cm /= W;
    for (int w = 0; w < W; w++)
        cv += (cnt[w] - cm) * (cnt[w] - cm);
    cv /= W - 1;
    lg_schedule_free(&s);
    ASSERT(sorted);
    ASSERT_NEAR_PCT(mean, 1.0 / rate, 1.5);      /* sigma of the mean: 0.3% */
    ASSERT_NEAR_PCT(var, 1.0 / (rate * rate), 4); /* sigma: ~0.9% (var of an exponential) */
    ASSERT_NEAR_PCT(cm, 100, 1.5);
    ASSERT_NEAR_PCT(cv, 100, 15);                 /* sigma of a sample variance: ~4.5% */
}

TEST(arrivals_models_seeds_uniform)
{
    usher_error err;
    double rates[3] = {200, 0, 50};
    lg_schedule a, b, c;
    ASSERT_OK(lg_schedule_draw(LG_ARRIVALS_POISSON, rates, 3, 20, 7, &a, &err));
    ASSERT_OK(lg_schedule_draw(LG_ARRIVALS_POISSON, rates, 3, 20, 7, &b, &err));
    ASSERT_OK(lg_schedule_draw(LG_ARRIVALS_POISSON, rates, 3, 20, 8, &c, &err));
    bool same = a.n == b.n && memcmp(a.a, b.a, a.n * sizeof *a.a) == 0;
    bool differ = a.n != c.n || memcmp(a.a, c.a, a.n * sizeof *a.a) != 0;
    size_t per[3] = {0, 0, 0};
    for (size_t i = 0; i < a.n; i++)
        per[a.a[i].model]++;
    lg_schedule_free(&a);
    lg_schedule_free(&b);
    lg_schedule_free(&c);
    ASSERT(same);   /* one seed, one schedule */
    ASSERT(differ); /* another seed, another schedule */
    ASSERT_EQ_U64(per[1], 0);
    ASSERT(fabs((double)per[0] - 4000) < 4 * sqrt(4000.0));
    ASSERT(fabs((double)per[2] - 1000) < 4 * sqrt(1000.0));

    /* uniform: exactly rate x duration, evenly spaced */
    double r = 100;
    ASSERT_OK(lg_schedule_draw(LG_ARRIVALS_UNIFORM, &r, 1, 10, 3, &a, &err));
    bool even = true;
    for (size_t i = 1; i < a.n; i++) {
        uint64_t g = a.a[i].t_us - a.a[i - 1].t_us;
        even &= g >= 9999 && g <= 10001;
    }
    size_t n = a.n;
    uint64_t first = a.n ? a.a[0].t_us : 0;
    lg_schedule_free(&a);
    ASSERT_EQ_U64(n, 1000);
    ASSERT(even);
    ASSERT(first < 10000);

    /* refused before drawing: too many requests, bad rate, bad duration */
    double big = 1e7;
    ASSERT_EQ_INT(lg_schedule_draw(LG_ARRIVALS_POISSON, &big, 1, 100, 1, &a, &err),
                  USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, "more than");
    double neg = -1;
    ASSERT_EQ_INT(lg_schedule_draw(LG_ARRIVALS_POISSON, &neg, 1, 1, 1, &a, &err),
                  USHER_ERR_INVALID);
    double nan_rate = NAN;
    ASSERT_EQ_INT(lg_schedule_draw(LG_ARRIVALS_POISSON, &nan_rate, 1, 1, 1, &a, &err),
                  USHER_ERR_INVALID);
    ASSERT_EQ_INT(lg_schedule_draw(LG_ARRIVALS_POISSON, &r, 1, 0, 1, &a, &err),
                  USHER_ERR_INVALID);
    ASSERT(a.a == NULL && a.n == 0);
}

TEST(trace_files)
{
    const char *names[] = {"resnet", "bert"};
    usher_error err;
    lg_schedule s;
    const char *ok = "# time model\n"
                     "0.5 bert\n"
                     "\n"
                     "  0.25\tresnet  \r\n"
                     "1e-1 resnet\n"
                     "0.5 resnet\n"
                     "2.0 bert";
    ASSERT_OK(lg_trace_parse(ok, strlen(ok), "t.txt", names, 2, 0, &s, &err));
    ASSERT_EQ_U64(s.n, 5);
    ASSERT_EQ_U64(s.a[0].t_us, 100000);
    ASSERT_EQ_U64(s.a[1].t_us, 250000);
    ASSERT_EQ_U64(s.a[2].t_us, 500000);
    ASSERT_EQ_U64(s.a[2].model, 0); /* equal times: model order */
    ASSERT_EQ_U64(s.a[3].model, 1);
    ASSERT_EQ_U64(s.a[4].t_us, 2000000);
    ASSERT(fabs(s.duration_s - 2.000001) < 1e-9);
    lg_schedule_free(&s);
    /* a duration cuts the trace */
    ASSERT_OK(lg_trace_parse(ok, strlen(ok), "t.txt", names, 2, 1.0, &s, &err));
    ASSERT_EQ_U64(s.n, 4);
    ASSERT(s.duration_s == 1.0);
    lg_schedule_free(&s);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"0.1 resnet\n0.2 vgg\n", "t.txt:2: field 2 (model): 'vgg' is not a model of the models given"},
        {"0.1 resnet\n\n-1 bert\n", "t.txt:3: field 1 (time_s): '-1' is not a time in seconds"},
        {"nan bert\n", "t.txt:1: field 1 (time_s)"},
        {"inf bert\n", "t.txt:1: field 1 (time_s)"},
        {"0x10 bert\n", "t.txt:1: field 1 (time_s): '0x10'"},
        {"1.5\n", "t.txt:1: field 2 (model): missing (lines are 'time_s model')"},
        {"1.5 bert extra\n", "t.txt:1: field 3: 'extra': a line has two fields, 'time_s model'"},
        {"# only a comment\n", "t.txt: no arrivals"},
        {"1.0 bert\n1.0e bert\n", "t.txt:2: field 1 (time_s)"},
        {"9999999 bert\n", "t.txt:1: field 1 (time_s)"},
        {"1 be\0rt\n", "t.txt:1: NUL byte"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = i == 10 ? 8 : strlen(bad[i].text); /* the NUL case */
        int rc = lg_trace_parse(bad[i].text, len, "t.txt", names, 2, 0, &s, &err);
        if (rc != USHER_ERR_PARSE)
            FAIL_("case %zu: rc %d", i, rc);
        ASSERT_CONTAINS(err.msg, bad[i].want);
        ASSERT(s.a == NULL);
    }
    /* a line over the limit names its line */
    char *longl = malloc(3000);
    memset(longl, ' ', 3000);
    memcpy(longl, "0.1 bert\n", 9);
    longl[2999] = '\n';
    int rc = lg_trace_parse(longl, 3000, "t.txt", names, 2, 0, &s, &err);
    free(longl);
    ASSERT_EQ_INT(rc, USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "t.txt:2: line longer than 1024 bytes");
    /* from a file */
    const char *path = test_path(test_tmpdir(), "trace.txt");
    FILE *f = fopen(path, "w");
    ASSERT(f);
    fputs("0.0 resnet\n0.1 bort\n", f);
    fclose(f);
    ASSERT_EQ_INT(lg_trace_load(path, names, 2, 0, &s, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "trace.txt:2: field 2 (model): 'bort'");
    ASSERT(lg_trace_load(test_path(test_tmpdir(), "none.txt"), names, 2, 0, &s, &err) < 0);
}

/* ---- the ledger ----------------------------------------------------------- */

TEST(ledger_counts)
{
    lg_arrival arr[10];
    for (int i = 0; i < 10; i++)
        arr[i] = (lg_arrival){.t_us = (uint64_t)i * 1000, .model = (uint32_t)(i % 2)};
    lg_schedule s = {.a = arr, .n = 10, .duration_s = 0.01};
    lg_ledger l;
    usher_error err;
    ASSERT_OK(lg_ledger_init(&l, 77, &s, &err));
    char id[48];
    ASSERT_EQ_U64(lg_ledger_id(&l, 3, id, sizeof id), 4);
    ASSERT_STR_EQ(id, "77-3");
    ASSERT_EQ_INT(lg_ledger_parse_id(&l, "77-3", 4), 3);
    ASSERT_EQ_INT(lg_ledger_parse_id(&l, "77-03", 5), -1);
    ASSERT_EQ_INT(lg_ledger_parse_id(&l, "77-10", 5), -1);
    ASSERT_EQ_INT(lg_ledger_parse_id(&l, "78-3", 4), -1);
    ASSERT_EQ_INT(lg_ledger_parse_id(&l, "77-", 3), -1);
    ASSERT_EQ_INT(lg_ledger_parse_id(&l, "77-3x", 5), -1);
    for (int i = 0; i < 10; i++)
        l.e[i].outcome = LG_OUT_INFLIGHT;
    /* 0, 1: fine; 2: 503; 3: 404; 4: 500; 5: answered twice (a duplicate);
       6: answered with 7's id (mismatch: 7 answered, 6 not), then 7's own
       answer (a duplicate); 8: no id in the body (credited, id_missing);
       9: an id never sent (unknown: counted with the duplicates, 9 missing) */
    const char *ids[] = {"77-0", "77-1", "77-2", "77-3", "77-4", "77-5"};
    int st[] = {200, 200, 503, 404, 500, 200};
    for (int i = 0; i < 6; i++)
        lg_ledger_answer(&l, (size_t)i, st[i], ids[i], strlen(ids[i]), (uint64_t)i * 1000 + 500);
    lg_ledger_answer(&l, 5, 200, "77-5", 4, 9000);
    lg_ledger_answer(&l, 6, 200, "77-7", 4, 7000);
    lg_ledger_answer(&l, 7, 200, "77-7", 4, 7800);
    lg_ledger_answer(&l, 8, 299, NULL, 0, 8100);
    lg_ledger_answer(&l, 9, 200, "12-9", 4, 9100);
    ASSERT_EQ_U64(l.duplicates, 2);
    ASSERT_EQ_U64(l.unknown_ids, 1);
    ASSERT_EQ_U64(l.id_mismatch, 2);
    ASSERT_EQ_U64(l.id_missing, 1);
    ASSERT_EQ_U64(l.e[5].answers, 2);
    ASSERT_EQ_U64(l.e[5].latency_us, 500); /* the first answer counts */
    ASSERT_EQ_U64(l.e[6].answers, 0);
    ASSERT_EQ_INT(l.e[6].outcome, LG_OUT_FAILED);
    ASSERT_EQ_U64(l.e[7].answers, 2);
    ASSERT_EQ_U64(l.e[7].latency_us, 0); /* answered at 7000, scheduled at 7000 */
    ASSERT_EQ_INT(l.e[9].outcome, LG_OUT_FAILED);

    const char *names[] = {"even", "odd"};
    double rates[] = {500, 500};
    lg_report r;
    memset(&r, 0, sizeof r);
    lg_summarize(&l, names, rates, 2, 0.01, 1.0, 9000, &r);
    ASSERT_EQ_U64(r.sent, 10);
    ASSERT_EQ_U64(r.answered, 8); /* 0-5, 7, 8 */
    ASSERT_EQ_U64(r.missing, 2);  /* 6 and 9 */
    ASSERT_EQ_U64(r.failed, 2);
    ASSERT_EQ_U64(r.st_200, 4);   /* 0, 1, 5, 7 */
    ASSERT_EQ_U64(r.st_503, 1);
    ASSERT_EQ_U64(r.st_4xx, 1);
    ASSERT_EQ_U64(r.st_5xx, 1);
    ASSERT_EQ_U64(r.st_other, 1); /* 299 */
    ASSERT_EQ_U64(r.duplicates, 3); /* two repeats + one unknown id */
    ASSERT_EQ_U64(r.good, 4);       /* all within 1 ms */
    ASSERT_EQ_U64(r.models[0].ok, 1); /* 0 */
    ASSERT_EQ_U64(r.models[1].ok, 3); /* 1, 5, 7 */
    ASSERT_NEAR_PCT(r.goodput, 400, 1e-9);
    ASSERT_NEAR_PCT(r.slo_pct, 40, 1e-9);
    ASSERT_NEAR_PCT(r.target_rate, 1000, 1e-9);
    us_buf b;
    us_buf_init(&b, 0);
    lg_report_json(&r, &b);
    ASSERT_CONTAINS(us_buf_str(&b), "\"duplicates\":3");
    ASSERT_CONTAINS(us_buf_str(&b), "\"exactly_once\":false");
    us_buf_free(&b);
    lg_ledger_free(&l);
}

TEST(percentiles)
{
    uint32_t v[1000];
    for (int i = 0; i < 1000; i++)
        v[i] = (uint32_t)(i + 1) * 1000; /* 1 .. 1000 ms */
    ASSERT(lg_percentile_ms(v, 1000, 50) == 500);
    ASSERT(lg_percentile_ms(v, 1000, 90) == 900);
    ASSERT(lg_percentile_ms(v, 1000, 99) == 990);
    ASSERT(lg_percentile_ms(v, 1000, 99.9) == 999);
    ASSERT(lg_percentile_ms(v, 1000, 100) == 1000);
    ASSERT(lg_percentile_ms(v, 1, 99) == 1);
    ASSERT(lg_percentile_ms(v, 0, 99) == 0);
    uint32_t four[4] = {10000, 20000, 30000, 40000};
    ASSERT(lg_percentile_ms(four, 4, 50) == 20);
    ASSERT(lg_percentile_ms(four, 4, 51) == 30);

    /* through a ledger, in shuffled order: only 200s count */
    enum { N = 1000 };
    lg_arrival *arr = calloc(N + 10, sizeof *arr);
    ASSERT(arr);
    lg_schedule s = {.a = arr, .n = N + 10, .duration_s = 10};
    lg_ledger l;
    usher_error err;
    int rc = lg_ledger_init(&l, 5, &s, &err);
    free(arr);
    ASSERT_OK(rc);
    for (size_t k = 0; k < N + 10; k++) {
        size_t i = (k * 7919) % (N + 10); /* 7919 is prime: a permutation */
        char id[48];
        size_t idl = lg_ledger_id(&l, i, id, sizeof id);
        lg_ledger_answer(&l, i, i < N ? 200 : 503, id, idl,
                         i < N ? (i + 1) * 1000 : 5000000);
    }
    lg_report r;
    memset(&r, 0, sizeof r);
    const char *names[] = {"m"};
    lg_summarize(&l, names, NULL, 1, 10, 100, 0, &r);
    lg_ledger_free(&l);
    ASSERT_EQ_U64(r.latency.n, N);
    ASSERT(r.latency.p50_ms == 500 && r.latency.p90_ms == 900 && r.latency.p99_ms == 990);
    ASSERT(r.latency.p999_ms == 999 && r.latency.max_ms == 1000);
    ASSERT_NEAR_PCT(r.latency.mean_ms, 500.5, 1e-9);
    ASSERT_EQ_U64(r.good, 100); /* 1..100 ms within the 100 ms SLO */
    ASSERT_EQ_U64(r.st_503, 10);
    ASSERT_NEAR_PCT(r.target_rate, 101, 1e-9); /* a trace: arrivals / duration */
}

/* ---- bodies and ids ------------------------------------------------------- */

TEST(bodies_and_ids)
{
    char id[LG_ID_MAX];
    size_t n;
    const char *b1 = "{\"outputs\":[{\"data\":[1,2,{\"id\":\"x\"}]}], \"id\" : \"7-3\"}";
    ASSERT_EQ_INT(lg_response_id(b1, strlen(b1), id, sizeof id, &n), 1);
    ASSERT_STR_EQ(id, "7-3");
    const char *b2 = "{\"id\":\"\\u0037-\\u0033\"}";
    ASSERT_EQ_INT(lg_response_id(b2, strlen(b2), id, sizeof id, &n), 1);
    ASSERT_STR_EQ(id, "7-3");
    ASSERT_EQ_U64(n, 3);
    const char *b3 = "{\"error\":\"queue full\"}";
    ASSERT_EQ_INT(lg_response_id(b3, strlen(b3), id, sizeof id, &n), 0);
    ASSERT_EQ_INT(lg_response_id("[1]", 3, id, sizeof id, &n), 0);
    ASSERT_EQ_INT(lg_response_id("", 0, id, sizeof id, &n), 0);
    const char *b4 = "{\"a\":[1,2,}";
    ASSERT_EQ_INT(lg_response_id(b4, strlen(b4), id, sizeof id, &n), -1);
    const char *b5 = "{\"id\":\"abcdef\"}";
    ASSERT_EQ_INT(lg_response_id(b5, strlen(b5), id, 4, &n), -1); /* longer than the buffer */
    const char *b6 = "{\"id\":17}"; /* not a string: no id */
    ASSERT_EQ_INT(lg_response_id(b6, strlen(b6), id, sizeof id, &n), 0);
    /* deep nesting is refused, not recursed into */
    char deep[300];
    memset(deep, '[', sizeof deep);
    memcpy(deep, "{\"a\":", 5);
    ASSERT_EQ_INT(lg_response_id(deep, sizeof deep, id, sizeof id, &n), -1);

    us_buf t;
    us_buf_init(&t, 0);
    usher_error err;
    const char *in = "{ \"id\": \"old\", \"inputs\": [{\"name\": \"x\", \"data\": [1]}],"
                     "\"parameters\": {\"id\": 1} }";
    ASSERT_OK(lg_body_tail_from_json(in, strlen(in), "in.json", &t, &err));
    ASSERT_STR_EQ(us_buf_str(&t),
                  ",\"inputs\": [{\"name\": \"x\", \"data\": [1]}],\"parameters\": {\"id\": 1}}");
    ASSERT_OK(lg_body_tail_from_json("{}", 2, "in.json", &t, &err));
    ASSERT_STR_EQ(us_buf_str(&t), "}");
    ASSERT_OK(lg_body_tail_from_json("{\"id\":5}\n", 9, "in.json", &t, &err));
    ASSERT_STR_EQ(us_buf_str(&t), "}");
    static const char *bad[] = {"[]", "{\"a\":1,}", "{\"a\":1} x", "{\"a\":tru}", "{\"a\":01}",
                                "{\"a\":\"\x01\"}", "{\"a\" 1}", "{\"a\":1",
                                "{\"a\":1,\"a\":2}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (lg_body_tail_from_json(bad[i], strlen(bad[i]), "in.json", &t, &err) !=
            USHER_ERR_PARSE)
            FAIL_("body '%s' accepted", bad[i]);
        ASSERT_CONTAINS(err.msg, "in.json");
    }

    lg_rng rng;
    lg_rng_seed(&rng, 1);
    ASSERT_OK(lg_body_tail_random(META, strlen(META), "m", &rng, &t, &err));
    const char *s = us_buf_str(&t);
    ASSERT_CONTAINS(s, ",\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1,3],"
                       "\"data\":[");
    ASSERT_CONTAINS(s, "{\"name\":\"tok\",\"datatype\":\"INT64\",\"shape\":[2],\"data\":[");
    ASSERT_CONTAINS(s, "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"s");
    ASSERT(s[t.len - 1] == '}' && s[t.len - 2] == ']');
    /* the whole body is valid JSON to our own scanner */
    us_buf body;
    us_buf_init(&body, 0);
    us_buf_puts(&body, "{\"id\":\"1-0\"");
    us_buf_append(&body, t.data, t.len);
    ASSERT_EQ_INT(lg_response_id(body.data, body.len, id, sizeof id, &n), 1);
    us_buf_free(&body);
    const char *m1 = "{\"name\":\"m\"}";
    ASSERT_EQ_INT(lg_body_tail_random(m1, strlen(m1), "m", &rng, &t, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "no \"inputs\" array");
    const char *m0 = "{\"inputs\":[],\"inputs\":[]}"; /* the reader refuses duplicate keys */
    ASSERT_EQ_INT(lg_body_tail_random(m0, strlen(m0), "m", &rng, &t, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "model 'm' metadata: byte ");
    const char *m2 = "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP8\",\"shape\":[1]}]}";
    ASSERT_EQ_INT(lg_body_tail_random(m2, strlen(m2), "m", &rng, &t, &err),
                  USHER_ERR_UNSUPPORTED);
    const char *m3 = "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[4096,4096]}]}";
    ASSERT_EQ_INT(lg_body_tail_random(m3, strlen(m3), "m", &rng, &t, &err), USHER_ERR_LIMIT);
    const char *m4 = "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[-2]}]}";
    ASSERT_EQ_INT(lg_body_tail_random(m4, strlen(m4), "m", &rng, &t, &err), USHER_ERR_PARSE);
    const char *m5 = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1]}]}";
    ASSERT_EQ_INT(lg_body_tail_random(m5, strlen(m5), "m", &rng, &t, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "lacks a datatype (string)");
    us_buf_free(&t);
}

/* ---- the HTTP/1.1 response parser ----------------------------------------- */

/* Feed text in pieces of `step` bytes (0: all at once); returns the final rc. */
static int feed_steps(hc_response *r, const char *text, size_t len, size_t step, size_t *used_total)
{
    size_t off = 0;
    int rc = 0;
    usher_error err;
    while (off < len) {
        size_t n = step ? (len - off < step ? len - off : step) : len - off;
        size_t used = 0;
        rc = hc_response_feed(r, text + off, n, &used, &err);
        off += used;
        if (rc != 0)
            break;
    }
    if (used_total)
        *used_total = off;
    return rc;
}

TEST(http_parse_good)
{
    static const char cl[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: 11\r\nX-Empty:\r\n\r\n{\"id\":\"a\"}\n";
    static const char ch[] = "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
                             "\r\n4;ext=1\r\n{\"id\r\n7 \r\n\":\"b\"}\n\r\n0\r\n"
                             "X-Trailer: t\r\n\r\n";
    static const struct {
        const char *text;
        size_t len;
        int status;
        const char *body;
    } cases[] = {{cl, sizeof cl - 1, 200, "{\"id\":\"a\"}\n"},
                 {ch, sizeof ch - 1, 503, "{\"id\":\"b\"}\n"}};
    for (size_t c = 0; c < 2; c++) {
        /* every piece size: the parser must not care where reads split */
        for (size_t step = 0; step <= cases[c].len; step += step < 16 ? 1 : 7) {
            hc_response r;
            hc_response_init(&r, NULL);
            size_t used;
            int rc = feed_steps(&r, cases[c].text, cases[c].len, step, &used);
            bool good = rc == 1 && used == cases[c].len && r.status == cases[c].status &&
                        r.keep_alive && strcmp(us_buf_str(&r.body), cases[c].body) == 0;
            hc_response_free(&r);
            if (!good)
                FAIL_("case %zu step %zu: rc %d used %zu status %d", c, step, rc, used,
                      r.status);
        }
    }
    hc_response r;
    hc_response_init(&r, NULL);
    size_t used;
    ASSERT_EQ_INT(feed_steps(&r, cl, sizeof cl - 1, 0, &used), 1);
    size_t vl;
    const char *v = hc_response_header(&r, "content-TYPE", &vl);
    ASSERT(v && vl == 16 && memcmp(v, "application/json", 16) == 0);
    v = hc_response_header(&r, "x-empty", &vl);
    ASSERT(v && vl == 0);
    ASSERT(hc_response_header(&r, "missing", &vl) == NULL);

    /* keep-alive rules; pipelined bytes are left over; 100 Continue skipped */
    static const char two[] = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n"
                              "okHTTP/1.1 200 OK\r\n";
    hc_response_reset(&r);
    ASSERT_EQ_INT(feed_steps(&r, two, sizeof two - 1, 0, &used), 1);
    ASSERT_EQ_U64(used, sizeof two - 1 - 17);
    ASSERT(!r.keep_alive);
    static const char ten[] = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    hc_response_reset(&r);
    ASSERT_EQ_INT(feed_steps(&r, ten, sizeof ten - 1, 0, &used), 1);
    ASSERT(!r.keep_alive && r.minor == 0);
    static const char tenka[] = "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
                                "Content-Length: 0\r\n\r\n";
    hc_response_reset(&r);
    ASSERT_EQ_INT(feed_steps(&r, tenka, sizeof tenka - 1, 0, &used), 1);
    ASSERT(r.keep_alive);
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
    hc_response_reset(&r);
    ASSERT_EQ_INT(feed_steps(&r, cont, sizeof cont - 1, 3, &used), 1);
    ASSERT_EQ_INT(r.status, 204);
    ASSERT_EQ_U64(r.body.len, 0);
    /* a body delimited by the end of the connection */
    static const char eof[] = "HTTP/1.1 200 OK\r\n\r\nuntil the end";
    hc_response_reset(&r);
    ASSERT_EQ_INT(feed_steps(&r, eof, sizeof eof - 1, 0, &used), 0);
    ASSERT_EQ_INT(hc_response_eof(&r, NULL), 1);
    ASSERT_STR_EQ(us_buf_str(&r.body), "until the end");
    ASSERT(!r.keep_alive);
    /* end of file: nothing read is an idle close, half a response an error */
    usher_error err;
    hc_response_reset(&r);
    ASSERT_EQ_INT(hc_response_eof(&r, &err), 0);
    ASSERT_EQ_INT(feed_steps(&r, cl, 30, 0, &used), 0);
    ASSERT_EQ_INT(hc_response_eof(&r, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "connection closed before the response was complete");
    hc_response_free(&r);
}

TEST(http_parse_limits)
{
    usher_error err;
    hc_response r;
    size_t used;
    /* the default 64 MiB cap: refused at the header, before any body byte */
    static const char big[] = "HTTP/1.1 200 OK\r\nContent-Length: 67108865\r\n\r\n";
    hc_response_init(&r, NULL);
    ASSERT_EQ_INT(hc_response_feed(&r, big, sizeof big - 1, &used, &err), USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, "67108865 bytes is over the 67108864-byte limit");
    ASSERT_EQ_INT(r.state, HC_ERROR);
    static const char at[] = "HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\n\r\n";
    hc_response_reset(&r);
    ASSERT_EQ_INT(hc_response_feed(&r, at, sizeof at - 1, &used, &err), 0);
    ASSERT_EQ_INT(r.state, HC_BODY_LENGTH);
    /* chunked: the chunk that crosses the cap, even split over reads */
    static const char chunked_big[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      "3ffffff\r\n";
    hc_response_reset(&r);
    ASSERT_EQ_INT(hc_response_feed(&r, chunked_big, sizeof chunked_big - 1, &used, &err), 0);
    ASSERT_EQ_INT(r.state, HC_CHUNK_DATA); /* 64 MiB - 1: allowed */
    static const char chunked_over[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                       "4000001\r\n";
    hc_response_reset(&r);
    ASSERT_EQ_INT(hc_response_feed(&r, chunked_over, sizeof chunked_over - 1, &used, &err),
                  USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, "chunked body over the 67108864-byte limit");
    hc_response_free(&r);
    hc_limits lim = hc_default_limits();
    lim.max_body = 10;
    hc_response_init(&r, &lim);
    static const char c2[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n";
    ASSERT_EQ_INT(feed_steps(&r, c2, sizeof c2 - 1, 1, &used), USHER_ERR_LIMIT);
    ASSERT_CONTAINS(r.err.msg, "over the 10-byte limit");
    hc_response_reset(&r);
    static const char e2[] = "HTTP/1.1 200 OK\r\n\r\n0123456789x";
    ASSERT_EQ_INT(feed_steps(&r, e2, sizeof e2 - 1, 4, &used), USHER_ERR_LIMIT);
    hc_response_free(&r);
    /* too many headers, too long a line, too big a head */
    us_buf t;
    us_buf_init(&t, 0);
    us_buf_puts(&t, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 101; i++)
        us_buf_printf(&t, "X-H%d: v\r\n", i);
    us_buf_puts(&t, "\r\n");
    hc_response_init(&r, NULL);
    ASSERT_EQ_INT(feed_steps(&r, t.data, t.len, 0, &used), USHER_ERR_LIMIT);
    ASSERT_CONTAINS(r.err.msg, "more than 100 header fields");
    us_buf_reset(&t);
    us_buf_puts(&t, "HTTP/1.1 200 OK\r\nX-Long: ");
    for (int i = 0; i < 9000; i++)
        us_buf_putc(&t, 'a');
    us_buf_puts(&t, "\r\n\r\n");
    hc_response_reset(&r);
    ASSERT_EQ_INT(feed_steps(&r, t.data, t.len, 1000, &used), USHER_ERR_LIMIT);
    ASSERT_CONTAINS(r.err.msg, "a head line is over 8192 bytes");
    us_buf_reset(&t);
    us_buf_puts(&t, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 90; i++) {
        us_buf_printf(&t, "X-H%d: ", i);
        for (int k = 0; k < 800; k++)
            us_buf_putc(&t, 'b');
        us_buf_puts(&t, "\r\n");
    }
    hc_response_reset(&r);
    ASSERT_EQ_INT(feed_steps(&r, t.data, t.len, 0, &used), USHER_ERR_LIMIT);
    ASSERT_CONTAINS(r.err.msg, "response head over 65536 bytes");
    us_buf_free(&t);
    hc_response_free(&r);
}

TEST(http_parse_malformed)
{
    static const struct {
        const char *text;
        int code;
        const char *want;
    } bad[] = {
        {"HTTP/1.1 20 OK\r\n\r\n", USHER_ERR_PARSE, "malformed status line 'HTTP/1.1 20 OK'"},
        {"HTTP/2 200 OK\r\n\r\n", USHER_ERR_PARSE, "malformed status line"},
        {"HTTP/1.1 200OK\r\n\r\n", USHER_ERR_PARSE, "malformed status line"},
        {"http/1.1 200 OK\r\n\r\n", USHER_ERR_PARSE, "malformed status line"},
        {"HTTP/1.1 600 Nope\r\n\r\n", USHER_ERR_PARSE, "malformed status line"},
        {"HTTP/1.1  200 OK\r\n\r\n", USHER_ERR_PARSE, "malformed status line"},
        {"\r\n", USHER_ERR_PARSE, "empty status line"},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", USHER_ERR_PARSE, "control character in the status line"},
        {"HTTP/1.1 200 OK\nContent-Length: 0\n\n", USHER_ERR_PARSE, "bare LF"},
        {"HTTP/1.1 200 OK\rX: y\r\n\r\n", USHER_ERR_PARSE, "bare CR"},
        {"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", USHER_ERR_PARSE, "malformed header line"},
        {"HTTP/1.1 200 OK\r\nName : x\r\n\r\n", USHER_ERR_PARSE, "malformed header line"},
        {"HTTP/1.1 200 OK\r\n: x\r\n\r\n", USHER_ERR_PARSE, "malformed header line"},
        {"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", USHER_ERR_PARSE, "malformed header line"},
        {"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", USHER_ERR_PARSE, "folded header line"},
        {"HTTP/1.1 200 OK\r\nA: b\x7f\r\n\r\n", USHER_ERR_PARSE, "control character in header"},
        {"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", USHER_ERR_PARSE, "not a number"},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", USHER_ERR_PARSE, "not a number"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n", USHER_ERR_PARSE, "not a number"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", USHER_ERR_PARSE,
         "not a number"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", USHER_ERR_PARSE,
         "two different Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
         USHER_ERR_PARSE, "both Content-Length and Transfer-Encoding"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", USHER_ERR_UNSUPPORTED,
         "Transfer-Encoding 'gzip, chunked'"},
        {"HTTP/1.1 101 Switching Protocols\r\n\r\n", USHER_ERR_UNSUPPORTED, "101"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", USHER_ERR_PARSE,
         "malformed chunk size line"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", USHER_ERR_PARSE,
         "chunk size line without a size"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1 2\r\n", USHER_ERR_PARSE,
         "malformed chunk size line"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", USHER_ERR_PARSE,
         "chunk data not followed by CRLF"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
         USHER_ERR_LIMIT, "too many digits"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
         USHER_ERR_PARSE, "malformed header line"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* all at once and byte by byte: the same verdict */
        for (size_t step = 0; step <= 1; step++) {
            hc_response r;
            hc_response_init(&r, NULL);
            size_t used;
            int rc = feed_steps(&r, bad[i].text, strlen(bad[i].text), step, &used);
            bool good = rc == bad[i].code && r.state == HC_ERROR &&
                        strstr(r.err.msg, bad[i].want) != NULL &&
                        strncmp(r.err.msg, "HTTP response: ", 15) == 0;
            char msg[USHER_ERROR_MAX];
            snprintf(msg, sizeof msg, "%s", r.err.msg);
            /* after an error, more bytes change nothing */
            usher_error err;
            int again = hc_response_feed(&r, "x", 1, &used, &err);
            hc_response_free(&r);
            if (!good || again != bad[i].code)
                FAIL_("case %zu step %zu: rc %d (want %d), '%s' (want '%s')", i, step, rc,
                      bad[i].code, msg, bad[i].want);
        }
    }
    /* a NUL byte in the head */
    hc_response r;
    hc_response_init(&r, NULL);
    size_t used;
    usher_error err;
    ASSERT_EQ_INT(hc_response_feed(&r, "HTTP/1.1 200 OK\r\nA: \0\r\n", 23, &used, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "NUL byte");
    hc_response_free(&r);
}

TEST(parsers_on_mutants)
{
    /* byte flips, insertions and cuts of good inputs, fed in random splits:
       the parsers must end in a verdict (done, error or need-more), never
       read out of bounds (ASan watches), never exceed their limits */
    static const char *seeds[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\r\n{\"id\":\"a\"}\n",
        "HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{\"id\r\n3\r\n\":1\r\n"
        "1\r\n}\r\n0\r\nT: v\r\n\r\n",
        "HTTP/1.0 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    };
    uint64_t st = 12345;
    hc_limits lim = hc_default_limits();
    lim.max_body = 64;
    lim.max_line = 64;
    lim.max_headers = 4;
    lim.max_head_bytes = 256;
    char buf[512];
    for (int it = 0; it < 30000; it++) {
        const char *sd = seeds[it % 3];
        size_t n = strlen(sd);
        memcpy(buf, sd, n);
        int muts = 1 + (int)(test_splitmix(&st) % 4);
        for (int k = 0; k < muts; k++) {
            uint64_t x = test_splitmix(&st);
            size_t at = (size_t)(x % (n ? n : 1));
            switch ((x >> 32) % 4) {
            case 0:
                buf[at] = (char)(x >> 40);
                break;
            case 1:
                if (n < sizeof buf - 1) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = "\r\n:; 0aF\t"[(x >> 40) % 10];
                    n++;
                }
                break;
            case 2:
                n = at;
                break;
            default:
                if (n > 1) {
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                }
            }
        }
        hc_response r;
        hc_response_init(&r, &lim);
        size_t off = 0;
        int rc = 0;
        while (off < n && rc == 0) {
            size_t step = 1 + (size_t)(test_splitmix(&st) % 9), used = 0;
            if (step > n - off)
                step = n - off;
            rc = hc_response_feed(&r, buf + off, step, &used, NULL);
            if (used > step)
                FAIL_("used %zu of %zu", used, step);
            off += used;
        }
        if (rc == 0)
            (void)hc_response_eof(&r, NULL);
        bool bad = r.body.len > lim.max_body || r.n_hdr > lim.max_headers ||
                   (r.state == HC_DONE && (r.status < 100 || r.status > 599));
        hc_response_free(&r);
        if (bad)
            FAIL_("mutant %d broke a limit", it);
        /* the same bytes as a response body and as a trace */
        char id[16];
        size_t idl;
        (void)lg_response_id(buf, n, id, sizeof id, &idl);
        static const char *names[] = {"m"};
        lg_schedule sch;
        usher_error err;
        if (lg_trace_parse(buf, n, "t", names, 1, 0, &sch, &err) == 0)
            lg_schedule_free(&sch);
    }
}

TEST(urls)
{
    hc_url u;
    usher_error err;
    ASSERT_OK(hc_url_parse("http://127.0.0.1:8000", &u, &err));
    ASSERT_STR_EQ(u.host, "127.0.0.1");
    ASSERT_EQ_INT(u.port, 8000);
    ASSERT_STR_EQ(u.base, "");
    ASSERT_STR_EQ(u.authority, "127.0.0.1:8000");
    ASSERT_OK(hc_url_parse("http://[::1]:9/prefix/", &u, &err));
    ASSERT_STR_EQ(u.host, "::1");
    ASSERT_STR_EQ(u.base, "/prefix");
    ASSERT_STR_EQ(u.authority, "[::1]:9");
    ASSERT_OK(hc_url_parse("http://localhost", &u, &err));
    ASSERT_EQ_INT(u.port, 80);
    static const char *bad[] = {"https://a:1", "ftp://a", "http://", "http://:80", "http://a:0",
                                "http://a:65536", "http://a:12x", "http://a?q", "http://[::1",
                                "http://a b:1", "http://a:1/p q", NULL};
    for (int i = 0; bad[i]; i++)
        if (hc_url_parse(bad[i], &u, &err) >= 0)
            FAIL_("URL '%s' accepted", bad[i]);
    us_buf b;
    us_buf_init(&b, 0);
    ASSERT_OK(hc_url_parse("http://h:1/base", &u, &err));
    hc_write_head(&b, "POST", &u, "/v2/models/m/infer", "application/json", 12);
    ASSERT_STR_EQ(us_buf_str(&b), "POST /base/v2/models/m/infer HTTP/1.1\r\nHost: h:1\r\n"
                                  "Content-Type: application/json\r\nContent-Length: 12\r\n\r\n");
    us_buf_free(&b);
}

/* ---- the engine against a real server ------------------------------------- */

static bool ids_in(long n, int mod, int rem) { return mod && n % mod == rem; }

TEST(run_counts_exactly)
{
    static tsrv s;
    memset(&s, 0, sizeof s);
    s.delay_ms = 2;
    s.mod_503 = 10, s.rem_503 = 3;
    s.mod_hang = 37, s.rem_hang = 5;
    s.hang_ms = 1500;
    ASSERT(tsrv_start(&s, true));
    const char *input = write_input();
    ASSERT(input);
    static lg_params p;
    p = lg_default_params();
    p.url = tsrv_url(&s);
    p.n_models = 1;
    snprintf(p.models[0].name, LG_NAME_MAX, "m");
    p.models[0].rate = 200;
    p.models[0].input = input;
    p.arrivals = LG_ARRIVALS_UNIFORM;
    p.duration_s = 1.0;
    p.timeout_ms = 1000; /* generous: a loaded machine must not turn a slow 200 into a miss */
    p.seed = 4242;
    p.ledger_path = test_path(test_tmpdir(), "ledger.txt");
    lg_report r;
    lg_ledger l;
    usher_error err;
    int rc = lg_run(&p, &r, &l, &err);
    tsrv_stop(&s);
    ASSERT_OK(rc);
    /* what the server was told to do, request by request */
    uint64_t n200 = 0, n503 = 0, nhang = 0;
    for (long n = 0; n < (long)l.n; n++) {
        if (ids_in(n, s.mod_hang, s.rem_hang))
            nhang++;
        else if (ids_in(n, s.mod_503, s.rem_503))
            n503++;
        else
            n200++;
    }
    bool hang_timed_out = true;
    for (long n = 0; n < (long)l.n; n++)
        if (ids_in(n, s.mod_hang, s.rem_hang))
            hang_timed_out &= l.e[n].outcome == LG_OUT_TIMEOUT;
    lg_ledger_free(&l);
    ASSERT_EQ_U64(r.sent, 200);
    ASSERT_EQ_U64(r.written, 200);
    ASSERT_EQ_U64(atomic_load(&s.posts), 200);
    ASSERT_EQ_U64(r.st_200, n200);
    ASSERT_EQ_U64(r.st_503, n503);
    ASSERT_EQ_U64(r.timed_out, nhang);
    ASSERT(hang_timed_out);
    ASSERT_EQ_U64(r.missing, nhang);
    ASSERT_EQ_U64(r.answered, n200 + n503);
    ASSERT_EQ_U64(r.duplicates + r.id_mismatch + r.id_missing + r.failed + r.unsent, 0);
    ASSERT(r.latency.p50_ms >= 2.0); /* the server's delay is in every latency */
    ASSERT(r.latency.max_ms < 1000);
    ASSERT_EQ_U64(r.latency.n, n200);
    ASSERT(r.good <= n200);
    ASSERT_NEAR_PCT(r.target_rate, 200, 1e-9);
    ASSERT_NEAR_PCT(r.scheduled_rate, 200, 1e-9);
    ASSERT(r.connections_opened >= 1 && r.connections_opened <= 64);
    /* the ledger file: one line per request */
    test_blob b;
    ASSERT(test_read_file(p.ledger_path, &b));
    size_t lines = 0;
    for (size_t i = 0; i < b.n; i++)
        lines += b.p[i] == '\n';
    char *text = malloc(b.n + 1);
    if (text) {
        memcpy(text, b.p, b.n);
        text[b.n] = '\0';
    }
    test_blobs_free(&b, 1);
    ASSERT(text);
    bool first = strncmp(text, "4242-0 m ", 9) == 0;
    const char *h = strstr(text, "\n4242-5 m ");
    const char *hend = h ? strchr(h + 1, '\n') : NULL;
    bool hang_line = hend && hend - h > 12 && memcmp(hend - 11, " -1 timeout", 11) == 0;
    bool s503 = strstr(text, " 503\n") != NULL;
    free(text);
    ASSERT_EQ_U64(lines, 200);
    ASSERT(first);
    ASSERT(hang_line);
    ASSERT(s503);
}

TEST(run_random_input_and_models)
{
    /* model "m" with random input from its metadata; model "nope" is
       unknown to the server (404 with the id): answered, counted as 4xx */
    static tsrv s;
    memset(&s, 0, sizeof s);
    ASSERT(tsrv_start(&s, false));
    static lg_params p;
    p = lg_default_params();
    p.url = tsrv_url(&s);
    p.n_models = 1;
    snprintf(p.models[0].name, LG_NAME_MAX, "m");
    p.models[0].rate = 300;
    p.duration_s = 0.5;
    p.seed = 99;
    lg_report r;
    usher_error err;
    int rc = lg_run(&p, &r, NULL, &err);
    ASSERT_OK(rc);
    ASSERT_EQ_INT(atomic_load(&s.gets), 1);
    ASSERT(s.have_body);
    ASSERT(strncmp(s.first_body, "{\"id\":\"99-", 10) == 0);
    ASSERT_CONTAINS(s.first_body, "\",\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\","
                                  "\"shape\":[1,3],\"data\":[");
    ASSERT_CONTAINS(s.first_body, "\"shape\":[2]");
    ASSERT_EQ_U64(r.missing + r.duplicates, 0);
    ASSERT_EQ_U64(r.st_200, r.sent);
    ASSERT(r.sent > 100);

    /* with a second model the server does not know, random input fails at
       the metadata: the run does not start */
    p.n_models = 2;
    snprintf(p.models[1].name, LG_NAME_MAX, "nope");
    p.models[1].rate = 100;
    ASSERT_EQ_INT(lg_run(&p, &r, NULL, &err), USHER_ERR_NOT_FOUND);
    ASSERT_CONTAINS(err.msg, "model 'nope' metadata: GET /v2/models/nope: HTTP 404");
    /* with an input file it runs and every 'nope' request is a 404 */
    const char *input = write_input();
    ASSERT(input);
    p.models[1].input = input;
    p.arrivals = LG_ARRIVALS_POISSON;
    ASSERT_OK(lg_run(&p, &r, NULL, &err));
    lg_report r2;
    atomic_store(&s.close_conn, 1); /* now every answer closes its connection */
    p.n_models = 1;
    rc = lg_run(&p, &r2, NULL, &err);
    tsrv_stop(&s);
    ASSERT_OK(rc);
    ASSERT_EQ_U64(r2.missing + r2.duplicates + r2.id_mismatch + r2.id_missing, 0);
    ASSERT_EQ_U64(r2.st_200, r2.sent);
    ASSERT((uint64_t)r2.connections_opened >= r2.sent); /* a connection per request */
    ASSERT_EQ_U64(r.n_models, 2);
    ASSERT_EQ_U64(r.st_4xx, r.models[1].sent);
    ASSERT_EQ_U64(r.st_200, r.models[0].sent);
    ASSERT_EQ_U64(r.models[1].ok, 0);
    ASSERT_EQ_U64(r.missing + r.duplicates + r.id_mismatch + r.id_missing, 0);
}

TEST(run_crosstalk_and_connection_cap)
{
    /* a server that answers some requests with request 0's id: cross-talk
       is counted, and the request it stole from is missing */
    static tsrv s;
    memset(&s, 0, sizeof s);
    s.delay_ms = 5;
    s.mod_wrong = 25, s.rem_wrong = 7;
    ASSERT(tsrv_start(&s, true));
    const char *input = write_input();
    ASSERT(input);
    static lg_params p;
    p = lg_default_params();
    p.url = tsrv_url(&s);
    p.n_models = 1;
    snprintf(p.models[0].name, LG_NAME_MAX, "m");
    p.models[0].rate = 100;
    p.models[0].input = input;
    p.arrivals = LG_ARRIVALS_UNIFORM;
    p.duration_s = 1.0;
    p.max_connections = 1; /* 100/s x 5 ms: half the time busy, requests wait */
    p.seed = 5;
    lg_report r;
    usher_error err;
    int rc = lg_run(&p, &r, NULL, &err);
    tsrv_stop(&s);
    ASSERT_OK(rc);
    uint64_t wrong = 0;
    for (long n = 0; n < 100; n++)
        wrong += ids_in(n, s.mod_wrong, s.rem_wrong);
    ASSERT_EQ_U64(r.sent, 100);
    ASSERT_EQ_U64(r.id_mismatch, wrong);
    ASSERT_EQ_U64(r.duplicates, wrong); /* request 0 answered 1 + wrong times */
    ASSERT_EQ_U64(r.missing, wrong);
    ASSERT_EQ_U64(r.failed, wrong);
    ASSERT_EQ_INT(r.connections_opened, 1);
    ASSERT(r.latency.p50_ms >= 5.0);
}

TEST(run_no_server)
{
    /* a port nobody listens on: the run does not start, and says why */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    ASSERT(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    ASSERT(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    static lg_params p;
    p = lg_default_params();
    p.url = url;
    p.n_models = 1;
    snprintf(p.models[0].name, LG_NAME_MAX, "m");
    p.models[0].rate = 10;
    p.duration_s = 1;
    lg_report r;
    usher_error err;
    ASSERT_EQ_INT(lg_run(&p, &r, NULL, &err), USHER_ERR_IO);
    ASSERT_CONTAINS(err.msg, "cannot connect");
    p.url = "https://127.0.0.1:1";
    ASSERT_EQ_INT(lg_run(&p, &r, NULL, &err), USHER_ERR_UNSUPPORTED);
}

/* ---- benchmark: the generator's own ceiling -------------------------------- */

TEST(bench_max_rate)
{
    if (!getenv("USHER_LOADGEN_BENCH"))
        return;
    static tsrv s;
    memset(&s, 0, sizeof s);
    ASSERT(tsrv_start(&s, false));
    const char *input = write_input();
    ASSERT(input);
    static const double rates[] = {1000, 5000, 10000, 20000, 30000, 40000, 60000, 80000, 100000,
                                   120000, 150000};
    printf("  rate/s    sent  achieved/s  lag p50  lag p99  lag max  lat p50  lat p99  conns  "
           "missing (timeout/failed/unsent)  behind  cpu us/req\n");
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        static lg_params p;
        p = lg_default_params();
        p.url = tsrv_url(&s);
        p.n_models = 1;
        snprintf(p.models[0].name, LG_NAME_MAX, "m");
        p.models[0].rate = rates[i];
        p.models[0].input = input;
        p.duration_s = 3;
        p.max_connections = 256;
        p.seed = 1;
        lg_report r;
        usher_error err;
        struct rusage ru0, ru1;
        getrusage(RUSAGE_THREAD, &ru0); /* the generator runs on this thread */
        int rc = lg_run(&p, &r, NULL, &err);
        getrusage(RUSAGE_THREAD, &ru1);
        double cpu_us = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1e6 +
                        (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
                        (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e6 +
                        (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
        if (rc < 0) {
            tsrv_stop(&s);
            FAIL_("%s", err.msg);
        }
        printf("  %6.0f %7llu  %10.0f  %7.3f  %7.3f  %7.3f  %7.3f  %7.3f  %5d  %7llu "
               "(%llu/%llu/%llu)  %-6s  %.1f\n",
               rates[i], (unsigned long long)r.sent, r.achieved_rate, r.lag.p50_ms,
               r.lag.p99_ms, r.lag.max_ms, r.latency.p50_ms, r.latency.p99_ms,
               r.connections_opened, (unsigned long long)r.missing,
               (unsigned long long)r.timed_out, (unsigned long long)r.failed,
               (unsigned long long)r.unsent, r.behind ? "yes" : "no",
               r.sent ? cpu_us / (double)r.sent : 0.0);
        if (r.connect_errors || r.protocol_errors)
            printf("         connect errors %llu, protocol errors %llu\n",
                   (unsigned long long)r.connect_errors, (unsigned long long)r.protocol_errors);
        fflush(stdout);
    }
    tsrv_stop(&s);
}

TEST_MAIN(TEST_ENTRY(poisson_statistics), TEST_ENTRY(arrivals_models_seeds_uniform),
          TEST_ENTRY(trace_files), TEST_ENTRY(ledger_counts), TEST_ENTRY(percentiles),
          TEST_ENTRY(bodies_and_ids), TEST_ENTRY(http_parse_good), TEST_ENTRY(http_parse_limits),
          TEST_ENTRY(http_parse_malformed), TEST_ENTRY(parsers_on_mutants), TEST_ENTRY(urls),
          TEST_ENTRY(run_counts_exactly), TEST_ENTRY(run_random_input_and_models),
          TEST_ENTRY(run_crosstalk_and_connection_cap), TEST_ENTRY(run_no_server),
          TEST_ENTRY(bench_max_rate))
