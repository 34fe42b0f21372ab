/*
 * test_sim_workload.c - the simulator's arrival sources (src/sim/workload.h):
 * rates, CVs, Zipf shares, the diurnal shape, the Azure-shaped generator,
 * the Azure Functions CSV importer (exact counts, mapping, slices, every
 * malformed-input message, bounded memory on a 200k-row file), seeds, time
 * order, allocation failures, and the importer's fuzz body over its corpus
 * and mutants. Every stream is seeded, so every figure here is the same on
 * each run; the tolerances are those a correct generator meets with
 * probability > 1 - 10^-6 (4.9 sigma), so a new seed would pass too.
 */
#include <math.h>
#include <unistd.h>

#include "fuzz_trace.h"
#include "sim/workload.h"
#include "sim/workload_impl.h"
#include "test.h"

#define SEC 1000000000ull

/* drain a source: counts per model, order and range checked; returns total
 * arrivals or -1 on a broken invariant (printed) */
static long long drain(sim_source *s, uint32_t n_models, uint64_t duration_ns, uint64_t *counts,
                       uint64_t *hash)
{
    sim_arrival a;
    usher_error err = {0};
    uint64_t last = 0, h = 0xcbf29ce484222325ull;
    long long n = 0;
    int rc;
    while ((rc = sim_source_next(s, &a, &err)) == 1) {
        if (a.t_ns < last || a.model >= n_models || (duration_ns && a.t_ns >= duration_ns)) {
            printf("  arrival %lld: t %llu (last %llu) model %u: out of order or range\n", n,
                   (unsigned long long)a.t_ns, (unsigned long long)last, a.model);
            return -1;
        }
        last = a.t_ns;
        if (counts)
            counts[a.model]++;
        h = (h ^ a.t_ns) * 0x100000001b3ull;
        h = (h ^ a.model) * 0x100000001b3ull;
        n++;
    }
    if (rc < 0) {
        printf("  next failed: %s\n", err.msg);
        return -1;
    }
    if (hash)
        *hash = h;
    return n;
}

/* |count - expected| within 4.9 standard deviations of a Poisson count */
static int poisson_ok(double count, double expected)
{
    return fabs(count - expected) <= 4.9 * sqrt(expected) + 1.0;
}

TEST(poisson_rates_within_bounds)
{
    usher_error err = {0};
    double rates[4] = {500, 50, 5, 0};
    sim_poisson_params p = {.rates = rates, .n_models = 4, .seed = 7, .duration_ns = 200 * SEC};
    sim_source *s = NULL;
    ASSERT_OK(sim_source_poisson(&p, &s, &err));
    uint64_t c[4] = {0};
    long long n = drain(s, 4, p.duration_ns, c, NULL);
    sim_source_free(s);
    ASSERT(n > 0);
    for (int i = 0; i < 4; i++) {
        if (!poisson_ok((double)c[i], rates[i] * 200))
            FAIL_("model %d: %llu arrivals, expected %g", i, (unsigned long long)c[i],
                  rates[i] * 200);
    }
    ASSERT_EQ_U64(c[3], 0);
    /* inter-arrival CV of a Poisson stream is 1 */
    double r1[1] = {1000};
    sim_poisson_params q = {.rates = r1, .n_models = 1, .seed = 3, .duration_ns = 100 * SEC};
    ASSERT_OK(sim_source_poisson(&q, &s, &err));
    sim_arrival a;
    double last = 0, sum = 0, sum2 = 0;
    long k = 0;
    while (sim_source_next(s, &a, &err) == 1) {
        double g = (double)a.t_ns - last;
        last = (double)a.t_ns;
        sum += g, sum2 += g * g, k++;
    }
    sim_source_free(s);
    double mean = sum / k, cv = sqrt(sum2 / k - mean * mean) / mean;
    ASSERT_NEAR_PCT(cv, 1.0, 2);
}

/* CV of one model's inter-arrival gaps and its rate, from a gamma source */
static void gamma_stats(double rate, double cv, uint64_t seed, uint64_t dur, double *rate_out,
                        double *cv_out)
{
    usher_error err = {0};
    sim_gamma_params p = {.rates = &rate, .cv = cv, .n_models = 1, .seed = seed, .duration_ns = dur};
    sim_source *s = NULL;
    *rate_out = *cv_out = -1;
    if (sim_source_gamma(&p, &s, &err) != 0)
        return;
    sim_arrival a;
    double last = 0, sum = 0, sum2 = 0;
    long k = 0;
    while (sim_source_next(s, &a, &err) == 1) {
        double g = (double)a.t_ns - last;
        last = (double)a.t_ns;
        sum += g, sum2 += g * g, k++;
    }
    sim_source_free(s);
    double mean = sum / k;
    *rate_out = (double)k / ((double)dur / 1e9);
    *cv_out = sqrt(sum2 / k - mean * mean) / mean;
}

TEST(gamma_cv_and_rate)
{
    static const double cvs[] = {0.25, 0.5, 1.0, 2.0, 4.0, 8.0};
    for (size_t i = 0; i < sizeof cvs / sizeof cvs[0]; i++) {
        double r, cv;
        gamma_stats(1000.0, cvs[i], 11 + i, 200 * SEC, &r, &cv);
        printf("  cv %.2f: measured cv %.3f, rate %.1f req/s\n", cvs[i], cv, r);
        /* 200k gaps: CV 4's sample CV has ~1.1% standard error, CV 8's ~4% */
        ASSERT_NEAR_PCT(cv, cvs[i], cvs[i] > 4 ? 20 : 10);
        /* count over 200 s: standard error cv x sqrt(n) / n, 1.8% at CV 8 */
        ASSERT_NEAR_PCT(r, 1000.0, cvs[i] > 4 ? 10 : 3);
    }
    /* CV 0: fixed intervals, the first one interval after 0 */
    usher_error err = {0};
    double rate = 4.0;
    sim_gamma_params p = {.rates = &rate, .cv = 0, .n_models = 1, .seed = 1, .duration_ns = 2 * SEC};
    sim_source *s = NULL;
    ASSERT_OK(sim_source_gamma(&p, &s, &err));
    sim_arrival a;
    uint64_t want[] = {250000000, 500000000, 750000000, 1000000000, 1250000000, 1500000000,
                       1750000000};
    for (int i = 0; i < 7; i++) {
        ASSERT_EQ_INT(sim_source_next(s, &a, &err), 1);
        ASSERT_EQ_U64(a.t_ns, want[i]);
    }
    ASSERT_EQ_INT(sim_source_next(s, &a, &err), 0);
    sim_source_free(s);
    /* per-model CVs */
    double rates[2] = {200, 200}, cv2[2] = {0.5, 3.0};
    sim_gamma_params q = {.rates = rates, .cvs = cv2, .n_models = 2, .seed = 5, .duration_ns = 10 * SEC};
    ASSERT_OK(sim_source_gamma(&q, &s, &err));
    uint64_t c[2] = {0};
    ASSERT(drain(s, 2, q.duration_ns, c, NULL) > 0);
    sim_source_free(s);
    ASSERT_NEAR_PCT((double)c[0], 2000, 10);
    ASSERT_NEAR_PCT((double)c[1], 2000, 40);
}

TEST(zipf_shares)
{
    usher_error err = {0};
    double r[10], total = 0;
    ASSERT_OK(sim_zipf_rates(1000.0, 10, 1.0, 42, r, &err));
    /* sorted descending, rank k has rate r1 / k */
    double sorted[10];
    memcpy(sorted, r, sizeof r);
    for (int i = 0; i < 10; i++)
        for (int j = i + 1; j < 10; j++)
            if (sorted[j] > sorted[i]) {
                double t = sorted[i];
                sorted[i] = sorted[j];
                sorted[j] = t;
            }
    for (int k = 0; k < 10; k++) {
        total += r[k];
        ASSERT_NEAR_PCT(sorted[0] / sorted[k], (double)(k + 1), 1e-9);
    }
    ASSERT_NEAR_PCT(total, 1000.0, 1e-9);
    double h10 = 0;
    for (int k = 1; k <= 10; k++)
        h10 += 1.0 / k;
    ASSERT_NEAR_PCT(sorted[0], 1000.0 / h10, 1e-9);
    /* the seed shuffles which model is the most popular */
    int first_top = 0, differ = 0;
    for (int i = 1; i < 10; i++)
        if (r[i] > r[first_top])
            first_top = i;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        double q[10];
        ASSERT_OK(sim_zipf_rates(1000.0, 10, 1.0, seed, q, &err));
        int top = 0;
        for (int i = 1; i < 10; i++)
            if (q[i] > q[top])
                top = i;
        differ += top != first_top;
    }
    ASSERT(differ > 0);
    /* s = 0: uniform; s = 2 against k^-2 */
    ASSERT_OK(sim_zipf_rates(50.0, 5, 0.0, 1, r, &err));
    for (int i = 0; i < 5; i++)
        ASSERT_NEAR_PCT(r[i], 10.0, 1e-9);
    ASSERT_OK(sim_zipf_rates(1.0, 3, 2.0, 1, r, &err));
    double lo = fmin(r[0], fmin(r[1], r[2])), hi = fmax(r[0], fmax(r[1], r[2]));
    ASSERT_NEAR_PCT(hi / lo, 9.0, 1e-9);
    /* shares observed in a Poisson stream over the Zipf rates */
    ASSERT_OK(sim_zipf_rates(2000.0, 10, 1.2, 9, r, &err));
    sim_poisson_params p = {.rates = r, .n_models = 10, .seed = 2, .duration_ns = 50 * SEC};
    sim_source *s = NULL;
    ASSERT_OK(sim_source_poisson(&p, &s, &err));
    uint64_t c[10] = {0};
    ASSERT(drain(s, 10, p.duration_ns, c, NULL) > 0);
    sim_source_free(s);
    for (int i = 0; i < 10; i++)
        if (!poisson_ok((double)c[i], r[i] * 50))
            FAIL_("model %d: %llu arrivals, expected %g", i, (unsigned long long)c[i], r[i] * 50);
    /* bad input names the parameter */
    ASSERT(sim_zipf_rates(1.0, 0, 1.0, 1, r, &err) == USHER_ERR_INVALID);
    ASSERT(sim_zipf_rates(1.0, 3, -1.0, 1, r, &err) == USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "s = -1");
    ASSERT(sim_zipf_rates(NAN, 3, 1.0, 1, r, &err) == USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "total_rate");
}

TEST(diurnal_shape)
{
    usher_error err = {0};
    /* sinusoid: rate 1000 (1 + 0.8 sin(2 pi t / 100 s)), 10 periods */
    double rate = 1000.0;
    sim_diurnal_params p = {.rates = &rate, .n_models = 1, .seed = 4, .duration_ns = 1000 * SEC,
                            .period_ns = 100 * SEC, .amplitude = 0.8};
    sim_source *s = NULL;
    ASSERT_OK(sim_source_diurnal(&p, &s, &err));
    uint64_t bins[10] = {0};
    sim_arrival a;
    long n = 0;
    while (sim_source_next(s, &a, &err) == 1) {
        bins[(a.t_ns % (100 * SEC)) / (10 * SEC)]++;
        n++;
    }
    sim_source_free(s);
    ASSERT(poisson_ok((double)n, 1e6));
    for (int b = 0; b < 10; b++) {
        /* integral of the rate over the bin, 10 periods */
        double x0 = 2 * M_PI * b / 10, x1 = 2 * M_PI * (b + 1) / 10;
        double want = 10 * 1000.0 * (10.0 + 0.8 * 100.0 / (2 * M_PI) * (cos(x0) - cos(x1)));
        if (!poisson_ok((double)bins[b], want))
            FAIL_("bin %d: %llu arrivals, expected %.0f", b, (unsigned long long)bins[b], want);
    }
    ASSERT(bins[2] > 4 * bins[7]); /* peak against trough */
    /* piecewise profile: rate x {1, 0, 3} over thirds of 30 s, phase 0 */
    double prof[3] = {1, 0, 3};
    sim_diurnal_params q = {.rates = &rate, .n_models = 1, .seed = 8, .duration_ns = 300 * SEC,
                            .period_ns = 30 * SEC, .profile = prof, .n_profile = 3};
    ASSERT_OK(sim_source_diurnal(&q, &s, &err));
    uint64_t th[3] = {0};
    while (sim_source_next(s, &a, &err) == 1)
        th[(a.t_ns % (30 * SEC)) / (10 * SEC)]++;
    sim_source_free(s);
    ASSERT(poisson_ok((double)th[0], 1000.0 * 100));
    ASSERT_EQ_U64(th[1], 0);
    ASSERT(poisson_ok((double)th[2], 3000.0 * 100));
    /* phase shifts the profile: phase 1/3 puts the 0 third first */
    q.phase = 1.0 / 3.0;
    ASSERT_OK(sim_source_diurnal(&q, &s, &err));
    memset(th, 0, sizeof th);
    while (sim_source_next(s, &a, &err) == 1)
        th[(a.t_ns % (30 * SEC)) / (10 * SEC)]++;
    sim_source_free(s);
    ASSERT_EQ_U64(th[0], 0);
    ASSERT(th[1] > 2 * th[2] && th[2] > 0);
}

/* one model per function: per-function statistics of the synthetic generator */
TEST(azure_synth_shape)
{
    usher_error err = {0};
    sim_azure_synth_params p = sim_azure_synth_default_params();
    enum { NF = 400 };
    p.n_models = NF; /* stripe with n_models = n_functions: model i is function i */
    p.n_functions = NF;
    p.total_rate = 2000.0;
    p.duration_ns = 600 * SEC;
    p.seed = 17;
    sim_source *s = NULL;
    ASSERT_OK(sim_source_azure_synth(&p, &s, &err));
    static uint64_t c[NF];
    static double last[NF], sum[NF], sum2[NF];
    memset(c, 0, sizeof c);
    memset(last, 0, sizeof last);
    memset(sum, 0, sizeof sum);
    memset(sum2, 0, sizeof sum2);
    sim_arrival a;
    long long n = 0;
    uint64_t prev = 0;
    while (sim_source_next(s, &a, &err) == 1) {
        ASSERT(a.t_ns >= prev && a.model < NF && a.t_ns < p.duration_ns);
        prev = a.t_ns;
        if (c[a.model]) {
            double g = (double)a.t_ns - last[a.model];
            sum[a.model] += g, sum2[a.model] += g * g;
        }
        last[a.model] = (double)a.t_ns;
        c[a.model]++;
        n++;
    }
    sim_source_free(s);
    /* total: the mean rate; bursts make the count noisier than Poisson */
    ASSERT_NEAR_PCT((double)n, 2000.0 * 600, 15);
    /* heavy tail: the busiest 10% of functions carry most invocations */
    uint64_t sorted[NF];
    memcpy(sorted, c, sizeof c);
    for (int i = 1; i < NF; i++)
        for (int j = i; j > 0 && sorted[j] > sorted[j - 1]; j--) {
            uint64_t t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    uint64_t top = 0;
    for (int i = 0; i < NF / 10; i++)
        top += sorted[i];
    /* the median function is far below the mean: exp(-sigma^2 / 2) = 0.07 of it
     * for a log-normal; the spread from the busiest to the quietest used one
     * is orders of magnitude */
    double median = (double)sorted[NF / 2], meanf = (double)n / NF;
    uint64_t least = 0;
    for (int i = NF - 1; i >= 0 && !least; i--)
        least = sorted[i];
    printf("  top 10%% of functions: %.1f%% of %lld invocations; median %.0f, mean %.0f; "
           "busiest %llu, quietest used %llu\n",
           100.0 * (double)top / (double)n, n, median, meanf, (unsigned long long)sorted[0],
           (unsigned long long)least);
    ASSERT((double)top > 0.6 * (double)n);
    ASSERT(median < 0.2 * meanf);
    ASSERT(sorted[0] > 10000 * least);
    /* per-function CVs: timers ~0, bursty ones well above 1 */
    int timers = 0, bursty = 0, busy = 0;
    for (int i = 0; i < NF; i++) {
        if (c[i] < 30)
            continue;
        busy++;
        double k = (double)(c[i] - 1), mean = sum[i] / k;
        double cv = sqrt(fmax(0.0, sum2[i] / k - mean * mean)) / mean;
        timers += cv < 0.01;
        bursty += cv > 1.5;
    }
    printf("  functions with >= 30 arrivals: %d, periodic (CV < 0.01) %d, bursty (CV > 1.5) %d\n",
           busy, timers, bursty);
    ASSERT(timers > 0 && bursty > busy / 2);

    /* duty 1, no timers: Poisson per function, CV ~1 on the aggregate */
    p.burst_duty = 1.0;
    p.timer_fraction = 0.0;
    p.n_models = 1;
    p.duration_ns = 100 * SEC;
    ASSERT_OK(sim_source_azure_synth(&p, &s, &err));
    double l = 0, s1 = 0, s2 = 0;
    long k = 0;
    while (sim_source_next(s, &a, &err) == 1) {
        double g = (double)a.t_ns - l;
        l = (double)a.t_ns;
        s1 += g, s2 += g * g, k++;
    }
    sim_source_free(s);
    double mean = s1 / k;
    ASSERT_NEAR_PCT(sqrt(s2 / k - mean * mean) / mean, 1.0, 3);
    ASSERT(poisson_ok((double)k, 2000.0 * 100));

    /* mapping: BLOCK puts functions 0..99 on model 0 of 4 (of 400) */
    p = sim_azure_synth_default_params();
    p.n_functions = 400;
    p.n_models = 4;
    p.map = SIM_MAP_BLOCK;
    p.sigma = 0.0; /* equal rates */
    p.timer_fraction = 0.0;
    p.burst_duty = 1.0;
    p.total_rate = 400.0;
    p.duration_ns = 100 * SEC;
    ASSERT_OK(sim_source_azure_synth(&p, &s, &err));
    uint64_t m4[4] = {0};
    ASSERT(drain(s, 4, p.duration_ns, m4, NULL) > 0);
    sim_source_free(s);
    for (int i = 0; i < 4; i++)
        ASSERT(poisson_ok((double)m4[i], 100.0 * 100));
    /* diurnal: peak quarter against trough quarter */
    p.n_models = 1;
    p.map = SIM_MAP_STRIPE;
    p.diurnal_amplitude = 0.9;
    p.diurnal_period_ns = 100 * SEC;
    ASSERT_OK(sim_source_azure_synth(&p, &s, &err));
    uint64_t q4[4] = {0};
    while (sim_source_next(s, &a, &err) == 1)
        q4[(a.t_ns % (100 * SEC)) / (25 * SEC)]++;
    sim_source_free(s);
    ASSERT(q4[0] + q4[1] > 4 * (q4[2] + q4[3]) / 2);
}

/* every generator, two seeds: same seed same bits, other seed other stream */
typedef int (*make_fn)(uint64_t seed, sim_source **s, uint32_t *n_models, uint64_t *dur);

static double g_rates[3] = {300, 30, 3};
static int mk_poisson(uint64_t seed, sim_source **s, uint32_t *n, uint64_t *dur)
{
    sim_poisson_params p = {.rates = g_rates, .n_models = 3, .seed = seed, .duration_ns = 20 * SEC};
    *n = 3, *dur = p.duration_ns;
    return sim_source_poisson(&p, s, NULL);
}
static int mk_gamma(uint64_t seed, sim_source **s, uint32_t *n, uint64_t *dur)
{
    sim_gamma_params p = {.rates = g_rates, .cv = 3, .n_models = 3, .seed = seed,
                          .duration_ns = 20 * SEC};
    *n = 3, *dur = p.duration_ns;
    return sim_source_gamma(&p, s, NULL);
}
static int mk_diurnal(uint64_t seed, sim_source **s, uint32_t *n, uint64_t *dur)
{
    sim_diurnal_params p = {.rates = g_rates, .n_models = 3, .seed = seed, .duration_ns = 20 * SEC,
                            .period_ns = 7 * SEC, .amplitude = 0.5, .phase = 0.25};
    *n = 3, *dur = p.duration_ns;
    return sim_source_diurnal(&p, s, NULL);
}
static int mk_synth(uint64_t seed, sim_source **s, uint32_t *n, uint64_t *dur)
{
    sim_azure_synth_params p = sim_azure_synth_default_params();
    p.n_models = 5, p.n_functions = 200, p.total_rate = 500, p.seed = seed;
    p.duration_ns = 20 * SEC, p.diurnal_amplitude = 0.3, p.diurnal_period_ns = 10 * SEC;
    *n = 5, *dur = p.duration_ns;
    return sim_source_azure_synth(&p, s, NULL);
}
static const char TRACE3[] = "HashOwner,HashApp,HashFunction,Trigger,1,2,3\n"
                             "o1,a1,f1,http,10,0,25\n"
                             "o1,a1,f2,timer,1,1,1\n"
                             "o2,a2,f3,queue,0,0,0\n"
                             "o2,a2,f4,event,40,3,0\n"
                             "o3,a3,f5,http,0,7,2\n";
static int mk_trace(uint64_t seed, sim_source **s, uint32_t *n, uint64_t *dur, sim_trace_arrivals ar)
{
    ws_trace_input in = {.label = "t.csv", .mem = (const uint8_t *)TRACE3, .len = sizeof TRACE3 - 1};
    sim_azure_trace_params p = sim_azure_trace_default_params();
    p.n_models = 2, p.seed = seed, p.arrivals = ar;
    *n = 2, *dur = 180 * SEC;
    return ws_trace_azure_open(&in, 1, &p, s, NULL, NULL);
}
static int mk_trace_u(uint64_t seed, sim_source **s, uint32_t *n, uint64_t *dur)
{
    return mk_trace(seed, s, n, dur, SIM_TRACE_UNIFORM);
}
static int mk_trace_p(uint64_t seed, sim_source **s, uint32_t *n, uint64_t *dur)
{
    return mk_trace(seed, s, n, dur, SIM_TRACE_POISSON);
}
static int mk_trace_g(uint64_t seed, sim_source **s, uint32_t *n, uint64_t *dur)
{
    return mk_trace(seed, s, n, dur, SIM_TRACE_GAMMA);
}

static const struct {
    const char *name;
    make_fn mk;
    /* hash of the seed-1 stream, pinned: the same bits in every build (-O0,
     * -O2, clang, gcc, sanitizers) and on every IEEE-754 machine */
    uint64_t golden;
} GENS[] = {
    {"poisson", mk_poisson, 0x80e50c6a88f155ddull},
    {"gamma", mk_gamma, 0x8da8c71668ed1e84ull},
    {"diurnal", mk_diurnal, 0x09fe0242c5bf9cf1ull},
    {"azure_synth", mk_synth, 0x00c72a21cd2b19c4ull},
    {"trace_uniform", mk_trace_u, 0x3e501280f274e6e1ull},
    {"trace_poisson", mk_trace_p, 0x3dd9c200df376fd3ull},
    {"trace_gamma", mk_trace_g, 0x5a8cc9892ee227d2ull},
};

TEST(seeds_order_and_reproducibility)
{
    for (size_t g = 0; g < sizeof GENS / sizeof GENS[0]; g++) {
        uint64_t h[3] = {0};
        long long n[3];
        uint64_t seeds[3] = {1, 1, 2};
        for (int k = 0; k < 3; k++) {
            sim_source *s = NULL;
            uint32_t nm;
            uint64_t dur;
            ASSERT_EQ_INT(GENS[g].mk(seeds[k], &s, &nm, &dur), 0);
            n[k] = drain(s, nm, dur, NULL, &h[k]);
            sim_source_free(s);
            if (n[k] <= 0)
                FAIL_("%s: seed %llu: %lld arrivals", GENS[g].name, (unsigned long long)seeds[k],
                      n[k]);
        }
        printf("  %-14s %6lld arrivals, stream hash %016llx\n", GENS[g].name, n[0],
               (unsigned long long)h[0]);
        if (h[0] != h[1] || n[0] != n[1])
            FAIL_("%s: the same seed gave two streams", GENS[g].name);
        if (h[0] == h[2])
            FAIL_("%s: seeds 1 and 2 gave the same stream", GENS[g].name);
        if (GENS[g].golden && h[0] != GENS[g].golden)
            FAIL_("%s: stream hash %016llx, pinned %016llx: the bits changed", GENS[g].name,
                  (unsigned long long)h[0], (unsigned long long)GENS[g].golden);
    }
}

/* the importer ------------------------------------------------------------ */

static int open_text(const char *text, const sim_azure_trace_params *p, sim_source **s,
                     sim_azure_trace_stats *st, usher_error *err)
{
    ws_trace_input in = {.label = "t.csv", .mem = (const uint8_t *)text, .len = strlen(text)};
    return ws_trace_azure_open(&in, 1, p, s, st, err);
}

/* counts[model][minute] of a source */
static int count_minutes(sim_source *s, uint32_t n_models, uint32_t n_min, uint64_t *cm)
{
    sim_arrival a;
    usher_error err = {0};
    uint64_t last = 0;
    int rc;
    while ((rc = sim_source_next(s, &a, &err)) == 1) {
        uint64_t m = a.t_ns / (60 * SEC);
        if (a.t_ns < last || a.model >= n_models || m >= n_min)
            return -1;
        last = a.t_ns;
        cm[a.model * n_min + m]++;
    }
    return rc;
}

TEST(trace_exact_counts_and_mapping)
{
    usher_error err = {0};
    sim_azure_trace_params p = sim_azure_trace_default_params();
    sim_azure_trace_stats st;
    sim_source *s = NULL;
    uint64_t cm[3 * 3];

    /* stripe (AlpaServe's default): f3 has no invocation and is skipped, so
     * f1 -> 0, f2 -> 1, f4 -> 0, f5 -> 1 */
    p.n_models = 2;
    ASSERT_OK(open_text(TRACE3, &p, &s, &st, &err));
    ASSERT_EQ_U64(st.rows, 5);
    ASSERT_EQ_U64(st.functions_used, 4);
    ASSERT_EQ_U64(st.minutes, 3);
    ASSERT_EQ_U64(st.invocations, 90);
    ASSERT_EQ_U64(st.table_bytes, 2 * 3 * 8);
    memset(cm, 0, sizeof cm);
    ASSERT_EQ_INT(count_minutes(s, 2, 3, cm), 0);
    sim_source_free(s);
    uint64_t stripe[6] = {50, 3, 25, 1, 8, 3};
    for (int i = 0; i < 6; i++)
        ASSERT_EQ_U64(cm[i], stripe[i]);

    /* block (AlpaServe's "round_robin"): floor(2 i / 4): f1, f2 -> 0; f4, f5 -> 1 */
    p.map = SIM_MAP_BLOCK;
    ASSERT_OK(open_text(TRACE3, &p, &s, &st, &err));
    memset(cm, 0, sizeof cm);
    ASSERT_EQ_INT(count_minutes(s, 2, 3, cm), 0);
    sim_source_free(s);
    uint64_t block[6] = {11, 1, 26, 40, 10, 2};
    for (int i = 0; i < 6; i++)
        ASSERT_EQ_U64(cm[i], block[i]);

    /* hash: every function whole on one model, the total kept */
    p.map = SIM_MAP_HASH;
    p.n_models = 3;
    ASSERT_OK(open_text(TRACE3, &p, &s, &st, &err));
    uint64_t c9[9] = {0};
    ASSERT_EQ_INT(count_minutes(s, 3, 3, c9), 0);
    sim_source_free(s);
    uint64_t tot = 0;
    for (int i = 0; i < 9; i++)
        tot += c9[i];
    ASSERT_EQ_U64(tot, 90);

    /* a slice: minutes 2..3 (start_minute 1), stripe; f2 only -> model 1 */
    p.map = SIM_MAP_STRIPE;
    p.n_models = 2;
    p.start_minute = 1;
    p.n_minutes = 2;
    ASSERT_OK(open_text(TRACE3, &p, &s, &st, &err));
    ASSERT_EQ_U64(st.functions_used, 4); /* f1 (25 in minute 3), f2, f4 (3), f5 */
    ASSERT_EQ_U64(st.invocations, 39);
    memset(cm, 0, sizeof cm);
    ASSERT_EQ_INT(count_minutes(s, 2, 2, cm), 0);
    sim_source_free(s);
    uint64_t sl[4] = {3, 25, 8, 3}; /* f1 + f4 -> 0; f2 + f5 -> 1 */
    for (int i = 0; i < 4; i++)
        ASSERT_EQ_U64(cm[i], sl[i]);

    /* only minute 2: f1 has none there and is skipped */
    p.n_minutes = 1;
    ASSERT_OK(open_text(TRACE3, &p, &s, &st, &err));
    ASSERT_EQ_U64(st.functions_used, 3); /* f2 -> 0, f4 -> 1, f5 -> 0 */
    memset(cm, 0, sizeof cm);
    ASSERT_EQ_INT(count_minutes(s, 2, 1, cm), 0);
    sim_source_free(s);
    ASSERT_EQ_U64(cm[0], 8);
    ASSERT_EQ_U64(cm[1], 3);

    /* CRLF, a BOM, empty lines, two files as consecutive days */
    static const char d1[] = "\xEF\xBB\xBFHashOwner,HashApp,HashFunction,Trigger,1,2\r\n"
                             "o,a,f,http,2,0\r\n\r\n"
                             "o,a,g,http,0,5\r\n";
    static const char d2[] = "HashOwner,HashApp,HashFunction,Trigger,1,2\n"
                             "o,a,f,http,1,1\n"
                             "o,a,g,http,7,0";
    ws_trace_input in[2] = {{.label = "d1.csv", .mem = (const uint8_t *)d1, .len = sizeof d1 - 1},
                            {.label = "d2.csv", .mem = (const uint8_t *)d2, .len = sizeof d2 - 1}};
    p = sim_azure_trace_default_params();
    p.n_models = 2;
    ASSERT_OK(ws_trace_azure_open(in, 2, &p, &s, &st, &err));
    ASSERT_EQ_U64(st.minutes, 4);
    ASSERT_EQ_U64(st.rows, 4);
    uint64_t c8[8] = {0};
    ASSERT_EQ_INT(count_minutes(s, 2, 4, c8), 0);
    sim_source_free(s);
    /* numbering runs on across files: f(d1) 0, g(d1) 1, f(d2) 2 -> 0, g(d2) 3 -> 1 */
    uint64_t days[8] = {2, 0, 1, 1, 0, 5, 7, 0};
    for (int i = 0; i < 8; i++)
        ASSERT_EQ_U64(c8[i], days[i]);
}

TEST(trace_poisson_gamma_intervals)
{
    usher_error err = {0};
    /* one function: 600 in minute 1, none in minute 2, 1200 in minute 3 */
    static const char t[] = "HashOwner,HashApp,HashFunction,Trigger,1,2,3\n"
                            "o,a,f,http,600,0,1200\n";
    sim_azure_trace_params p = sim_azure_trace_default_params();
    p.arrivals = SIM_TRACE_POISSON;
    p.rate_scale = 4.0;
    sim_source *s = NULL;
    ASSERT_OK(open_text(t, &p, &s, NULL, &err));
    uint64_t cm[3] = {0};
    ASSERT_EQ_INT(count_minutes(s, 1, 3, cm), 0);
    sim_source_free(s);
    ASSERT(poisson_ok((double)cm[0], 2400));
    ASSERT_EQ_U64(cm[1], 0);
    ASSERT(poisson_ok((double)cm[2], 4800));
    /* gamma with CV 0: exactly evenly spaced inside each interval */
    p.arrivals = SIM_TRACE_GAMMA;
    p.cv = 0.0;
    p.rate_scale = 1.0;
    ASSERT_OK(open_text(t, &p, &s, NULL, &err));
    memset(cm, 0, sizeof cm);
    ASSERT_EQ_INT(count_minutes(s, 1, 3, cm), 0);
    sim_source_free(s);
    ASSERT(cm[0] >= 599 && cm[0] <= 600);
    ASSERT_EQ_U64(cm[1], 0);
    ASSERT(cm[2] >= 1199 && cm[2] <= 1200);
    /* a 180 s interval: the 1800 invocations spread over all three minutes */
    p.arrivals = SIM_TRACE_UNIFORM;
    p.interval_s = 180;
    ASSERT_OK(open_text(t, &p, &s, NULL, &err));
    memset(cm, 0, sizeof cm);
    ASSERT_EQ_INT(count_minutes(s, 1, 3, cm), 0);
    sim_source_free(s);
    ASSERT_EQ_U64(cm[0] + cm[1] + cm[2], 1800);
    ASSERT(poisson_ok((double)cm[1], 600));
    /* gamma CV 3 per interval: bursty within the 60 s windows */
    static char big[256];
    snprintf(big, sizeof big, "HashOwner,HashApp,HashFunction,Trigger,1\no,a,f,http,60000\n");
    p = sim_azure_trace_default_params();
    p.arrivals = SIM_TRACE_GAMMA;
    p.cv = 3.0;
    ASSERT_OK(open_text(big, &p, &s, NULL, &err));
    sim_arrival a;
    double last = 0, s1 = 0, s2 = 0;
    long k = 0;
    while (sim_source_next(s, &a, &err) == 1) {
        double g = (double)a.t_ns - last;
        last = (double)a.t_ns;
        s1 += g, s2 += g * g, k++;
    }
    sim_source_free(s);
    double mean = s1 / k;
    ASSERT_NEAR_PCT(sqrt(s2 / k - mean * mean) / mean, 3.0, 15);
}

TEST(trace_malformed_inputs)
{
    static const char H[] = "HashOwner,HashApp,HashFunction,Trigger,1,2\n";
    static const struct {
        const char *text;
        int code;
        const char *msg;
    } cases[] = {
        {"", USHER_ERR_PARSE, "t.csv:1: empty file"},
        {"\n\n", USHER_ERR_PARSE, "t.csv:1: empty file"},
        {"HashOwner,Hashapp,HashFunction,Trigger,1\n", USHER_ERR_PARSE,
         "t.csv:1: header field 2 is 'Hashapp', expected 'HashApp'"},
        {"HashOwner,HashApp,HashFunction,Trigger,1,3\n", USHER_ERR_PARSE,
         "t.csv:1: header field 6 is '3', expected '2'"},
        {"HashOwner,HashApp,HashFunction,Trigger\n", USHER_ERR_PARSE, "t.csv:1: header has 4 fields"},
        {"HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1\n", USHER_ERR_PARSE,
         "t.csv:2: 5 fields, the header has 6 (4 + 2 minutes)"},
        {"HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1,2,3\n", USHER_ERR_PARSE,
         "t.csv:2: 7 fields, the header has 6"},
        {"HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1,x\n", USHER_ERR_PARSE,
         "t.csv:2: field 6 (minute 2): 'x' is not a count"},
        {"HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,-1,0\n", USHER_ERR_PARSE,
         "t.csv:2: field 5 (minute 1): '-1' is not a count"},
        {"HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,,0\n", USHER_ERR_PARSE,
         "t.csv:2: field 5 (minute 1): '' is not a count"},
        {"HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1.5,0\n", USHER_ERR_PARSE,
         "t.csv:2: field 5 (minute 1): '1.5' is not a count"},
        {"HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http, 1,0\n", USHER_ERR_PARSE,
         "t.csv:2: field 5 (minute 1): ' 1' is not a count"},
        {"HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,0,1000000000001\n", USHER_ERR_LIMIT,
         "t.csv:2: field 6 (minute 2): count '1000000000001' is over 1000000000000"},
        {"HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,,http,1,0\n", USHER_ERR_PARSE,
         "t.csv:2: field 3 (HashFunction) is empty"},
        {"HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,,1,0\n", USHER_ERR_PARSE,
         "t.csv:2: field 4 (Trigger) is empty"},
        {"HashOwner,HashApp,HashFunction,Trigger,1,2\no,\"a\",f,http,1,0\n", USHER_ERR_PARSE,
         "t.csv:2: field 2 (HashApp): quoted fields are not supported"},
        {"HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1,0\n\no,a,g,http,1,z\n",
         USHER_ERR_PARSE, "t.csv:4: field 6 (minute 2): 'z' is not a count"},
        {"HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,ht\rtp,1,0\n", USHER_ERR_PARSE,
         NULL /* a bare CR is part of the trigger: accepted */},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        usher_error err = {0};
        sim_azure_trace_params p = sim_azure_trace_default_params();
        sim_source *s = NULL;
        int rc = open_text(cases[i].text, &p, &s, NULL, &err);
        sim_source_free(s);
        if (!cases[i].msg) {
            if (rc != 0)
                FAIL_("case %zu: refused: %s", i, err.msg);
            continue;
        }
        if (rc != cases[i].code || !strstr(err.msg, cases[i].msg))
            FAIL_("case %zu: rc %d, message '%s'; expected %d, '%s'", i, rc, err.msg,
                  cases[i].code, cases[i].msg);
        ASSERT(s == NULL);
    }
    usher_error err = {0};
    sim_azure_trace_params p = sim_azure_trace_default_params();
    sim_source *s = NULL;
    /* a NUL byte (the length covers it) */
    static const char nul[] = "HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f\0,http,1,0\n";
    ws_trace_input in = {.label = "t.csv", .mem = (const uint8_t *)nul, .len = sizeof nul - 1};
    ASSERT_EQ_INT(ws_trace_azure_open(&in, 1, &p, &s, NULL, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "t.csv:2: NUL byte");
    /* a line over max_line */
    p.max_line = 48;
    ASSERT_EQ_INT(open_text("HashOwner,HashApp,HashFunction,Trigger,1,2\n"
                            "o,a,ffffffffffffffffffffffffffffffffffffffff,http,1,0\n",
                            &p, &s, NULL, &err),
                  USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, "t.csv:2: line longer than 48 bytes");
    /* fewer used functions than models */
    p = sim_azure_trace_default_params();
    p.n_models = 3;
    ASSERT_EQ_INT(open_text("HashOwner,HashApp,HashFunction,Trigger,1,2\n"
                            "o,a,f,http,1,0\no,a,g,http,0,0\no,a,h,http,0,4\n",
                            &p, &s, NULL, &err),
                  USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "2 functions have invocations in the replayed minutes, fewer than the 3 models");
    /* a slice past the end */
    p.n_models = 1;
    p.start_minute = 2;
    ASSERT_EQ_INT(open_text(H, &p, &s, NULL, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "start_minute 2 is past the trace's 2 minutes");
    /* the second file's fault names the second file */
    p = sim_azure_trace_default_params();
    static const char good[] = "HashOwner,HashApp,HashFunction,Trigger,1\no,a,f,http,3\n";
    static const char bad[] = "HashOwner,HashApp,HashFunction,Trigger,1\no,a,f,http,3,4\n";
    ws_trace_input two[2] = {{.label = "day1.csv", .mem = (const uint8_t *)good, .len = sizeof good - 1},
                             {.label = "day2.csv", .mem = (const uint8_t *)bad, .len = sizeof bad - 1}};
    ASSERT_EQ_INT(ws_trace_azure_open(two, 2, &p, &s, NULL, &err), USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "day2.csv:2: 6 fields, the header has 5");
    /* files: a missing path, and a good one through the public call */
    const char *missing = "/nonexistent/usher-trace.csv";
    p.paths = &missing;
    p.n_paths = 1;
    ASSERT_EQ_INT(sim_source_azure_trace(&p, &s, NULL, &err), USHER_ERR_IO);
    ASSERT_CONTAINS(err.msg, "/nonexistent/usher-trace.csv: cannot open: No such file");
    char path[512];
    snprintf(path, sizeof path, "%s/small.csv", test_tmpdir());
    FILE *f = fopen(path, "w");
    ASSERT(f);
    fputs(TRACE3, f);
    fclose(f);
    const char *pp = path;
    p.paths = &pp;
    p.n_models = 2;
    sim_azure_trace_stats st;
    ASSERT_OK(sim_source_azure_trace(&p, &s, &st, &err));
    ASSERT_EQ_U64(st.invocations, 90);
    uint64_t cm[6] = {0};
    ASSERT_EQ_INT(count_minutes(s, 2, 3, cm), 0);
    sim_source_free(s);
    ASSERT_EQ_U64(cm[0], 50);
    /* bad parameters name the field */
    p.interval_s = 90;
    ASSERT_EQ_INT(sim_source_azure_trace(&p, &s, NULL, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "interval_s = 90");
    p.interval_s = 60;
    p.rate_scale = 2.0;
    ASSERT_EQ_INT(sim_source_azure_trace(&p, &s, NULL, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "rate_scale = 2 needs POISSON or GAMMA");
}

/* a generated trace of many rows: peak memory does not grow with the rows */
static int write_trace(const char *path, uint32_t rows, uint32_t minutes, uint64_t *total)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs("HashOwner,HashApp,HashFunction,Trigger", f);
    for (uint32_t m = 1; m <= minutes; m++)
        fprintf(f, ",%u", m);
    fputc('\n', f);
    uint64_t rng = 99;
    *total = 0;
    for (uint32_t r = 0; r < rows; r++) {
        fprintf(f, "%08x,%08x,%08x,http", r * 7919u, r / 3, r);
        for (uint32_t m = 0; m < minutes; m++) {
            uint64_t x = test_splitmix(&rng);
            unsigned c = (x & 15) == 0 ? (unsigned)(x >> 60) : 0; /* sparse, like the trace */
            *total += c;
            fprintf(f, ",%u", c);
        }
        fputc('\n', f);
    }
    return fclose(f);
}

static size_t import_peak(const char *path, uint32_t n_models, sim_map map, uint64_t *rows,
                          uint64_t *emitted, uint64_t *inv)
{
    usher_error err = {0};
    sim_azure_trace_params p = sim_azure_trace_default_params();
    p.paths = &path;
    p.n_paths = 1;
    p.n_models = n_models;
    p.map = map;
    sim_azure_trace_stats st;
    size_t live = us_alloc_live_bytes();
    us_alloc_reset_peak();
    sim_source *s = NULL;
    if (sim_source_azure_trace(&p, &s, &st, &err) != 0) {
        printf("  %s\n", err.msg);
        return 0;
    }
    size_t peak = us_alloc_peak_bytes() - live;
    long long n = drain(s, n_models, 0, NULL, NULL);
    sim_source_free(s);
    *rows = st.rows;
    *emitted = n < 0 ? 0 : (uint64_t)n;
    *inv = st.invocations;
    return peak;
}

TEST(trace_large_file_bounded_memory)
{
    enum { ROWS = 200000, MIN = 30, MODELS = 20 };
    char big[512], small[512];
    snprintf(big, sizeof big, "%s/big.csv", test_tmpdir());
    snprintf(small, sizeof small, "%s/small2k.csv", test_tmpdir());
    uint64_t tot_big, tot_small;
    ASSERT_EQ_INT(write_trace(big, ROWS, MIN, &tot_big), 0);
    ASSERT_EQ_INT(write_trace(small, 2000, MIN, &tot_small), 0);
    FILE *f = fopen(big, "r");
    ASSERT(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    for (int map = SIM_MAP_STRIPE; map <= SIM_MAP_HASH; map++) {
        uint64_t rows, emitted, inv, rows_s, emitted_s, inv_s;
        size_t peak = import_peak(big, MODELS, (sim_map)map, &rows, &emitted, &inv);
        size_t peak_s = import_peak(small, MODELS, (sim_map)map, &rows_s, &emitted_s, &inv_s);
        printf("  map %d: %ld-byte file, %llu rows, %llu arrivals: peak %zu bytes "
               "(2,000 rows: %zu)\n",
               map, size, (unsigned long long)rows, (unsigned long long)emitted, peak, peak_s);
        ASSERT_EQ_U64(rows, ROWS);
        ASSERT_EQ_U64(inv, tot_big);
        ASSERT_EQ_U64(emitted, tot_big); /* UNIFORM replays every invocation */
        ASSERT_EQ_U64(emitted_s, tot_small);
        /* the same buffers for 2,000 and 200,000 rows */
        ASSERT_EQ_U64(peak, peak_s);
        /* chunk + line + table + row + streams + heap */
        size_t bound = 65536 + 65537 + MODELS * MIN * 8 + MIN * 8 + MODELS * 128 + 1024;
        ASSERT(peak > 0 && peak <= bound);
        ASSERT((size_t)size > 100 * peak);
    }
    unlink(big);
    unlink(small);
}

/* every allocation of every constructor fails once: a clean error, no leak */
TEST(allocation_failures)
{
    for (size_t g = 0; g < sizeof GENS / sizeof GENS[0]; g++) {
        int ok = 0;
        for (uint64_t nth = 1; nth < 64 && !ok; nth++) {
            size_t live = us_alloc_live_bytes();
            sim_source *s = NULL;
            uint32_t nm;
            uint64_t dur;
            us_alloc_fail_nth(nth);
            int rc = GENS[g].mk(1, &s, &nm, &dur);
            us_alloc_fail_nth(0);
            if (rc == 0) {
                ok = 1;
                sim_source_free(s);
            } else {
                if (rc != USHER_ERR_NOMEM || s)
                    FAIL_("%s: allocation %llu failed: rc %d", GENS[g].name,
                          (unsigned long long)nth, rc);
            }
            if (us_alloc_live_bytes() != live)
                FAIL_("%s: allocation %llu failed: %zu bytes left", GENS[g].name,
                      (unsigned long long)nth, us_alloc_live_bytes() - live);
        }
        if (!ok)
            FAIL_("%s: never built", GENS[g].name);
    }
}

TEST(bad_parameters_named)
{
    usher_error err = {0};
    sim_source *s = NULL;
    double r[2] = {1, -1};
    sim_poisson_params p = {.rates = r, .n_models = 2, .seed = 1, .duration_ns = SEC};
    ASSERT_EQ_INT(sim_source_poisson(&p, &s, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "rates[1] = -1");
    p.n_models = 0;
    ASSERT_EQ_INT(sim_source_poisson(&p, &s, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "n_models is 0");
    r[1] = 1;
    sim_gamma_params g = {.rates = r, .cv = 101, .n_models = 2, .seed = 1, .duration_ns = SEC};
    ASSERT_EQ_INT(sim_source_gamma(&g, &s, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "cv = 101");
    double cvs[2] = {1, NAN};
    g.cvs = cvs;
    ASSERT_EQ_INT(sim_source_gamma(&g, &s, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "cvs[1]");
    sim_diurnal_params d = {.rates = r, .n_models = 2, .seed = 1, .duration_ns = SEC,
                            .period_ns = SEC, .amplitude = 1.5};
    ASSERT_EQ_INT(sim_source_diurnal(&d, &s, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "amplitude = 1.5");
    d.amplitude = 0.5;
    d.period_ns = 0;
    ASSERT_EQ_INT(sim_source_diurnal(&d, &s, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "period_ns is 0");
    double zero[2] = {0, 0};
    d.period_ns = SEC;
    d.profile = zero;
    d.n_profile = 2;
    ASSERT_EQ_INT(sim_source_diurnal(&d, &s, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "profile is all 0");
    sim_azure_synth_params a = sim_azure_synth_default_params();
    a.n_models = 10;
    a.n_functions = 5;
    ASSERT_EQ_INT(sim_source_azure_synth(&a, &s, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "n_functions = 5");
    a.n_functions = 100;
    a.burst_duty = 0;
    ASSERT_EQ_INT(sim_source_azure_synth(&a, &s, &err), USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "burst_duty = 0");
    ASSERT(s == NULL);
    /* an empty run is not an error */
    p.n_models = 2;
    p.duration_ns = 0;
    ASSERT_OK(sim_source_poisson(&p, &s, &err));
    sim_arrival x;
    ASSERT_EQ_INT(sim_source_next(s, &x, &err), 0);
    sim_source_free(s);
    sim_source_free(NULL);
}

/* the importer's fuzz body over fuzz/corpus-trace and mutants of it */
TEST(trace_fuzz_seeds_and_mutants)
{
    static test_blob seeds[64];
    int n = test_load_dir(test_path(test_source_dir(), "fuzz/corpus-trace"), "", seeds, 64);
    ASSERT(n >= 8);
    int seeds_ok = 0, good = 0;
    for (int i = 0; i < n; i++) {
        seeds_ok += usher_fuzz_trace_one(seeds[i].p, seeds[i].n);
        good += strncmp(seeds[i].name, "bad-", 4) != 0;
    }
    ASSERT_EQ_INT(seeds_ok, good);
    static const char punct[] = ",\n\r\"0123456789 \t-";
    static const char *const words[] = {"HashOwner", "HashApp", "HashFunction", "Trigger", "1440",
                                        "1000000000000", "\xEF\xBB\xBF", ",,", "\r\n", "http"};
    uint64_t rng = 0x7ACE;
    test_mutator mu = {punct, words, sizeof words / sizeof words[0], 8, &rng};
    const int rounds = 3000;
    int accepted = 0;
    uint8_t *m = malloc(1 << 16);
    ASSERT(m);
    for (int r = 0; r < rounds; r++) {
        const test_blob *a = &seeds[test_splitmix(&rng) % (uint64_t)n];
        const test_blob *b = &seeds[test_splitmix(&rng) % (uint64_t)n];
        size_t len = test_mutate(&mu, a, b, m, 1 << 16);
        accepted += usher_fuzz_trace_one(m, len);
    }
    free(m);
    printf("  %d seeds (%d accepted), %d mutants: %d accepted, %d refused\n", n, seeds_ok, rounds,
           accepted, rounds - accepted);
    ASSERT(accepted > rounds / 20 && rounds - accepted > rounds / 10);
    test_blobs_free(seeds, n);
}

TEST_MAIN(TEST_ENTRY(poisson_rates_within_bounds), TEST_ENTRY(gamma_cv_and_rate),
          TEST_ENTRY(zipf_shares), TEST_ENTRY(diurnal_shape), TEST_ENTRY(azure_synth_shape),
          TEST_ENTRY(seeds_order_and_reproducibility), TEST_ENTRY(trace_exact_counts_and_mapping),
          TEST_ENTRY(trace_poisson_gamma_intervals), TEST_ENTRY(trace_malformed_inputs),
          TEST_ENTRY(trace_large_file_bounded_memory), TEST_ENTRY(allocation_failures),
          TEST_ENTRY(bad_parameters_named), TEST_ENTRY(trace_fuzz_seeds_and_mutants))
