/*
 * workload.c - seeded arrival streams: the shared machinery (random
 * numbers, deterministic log/exp/sin, the merge heap) and the per-model
 * renewal generators: Poisson, Gamma with a coefficient of variation, and
 * diurnal (non-homogeneous Poisson by thinning). Layer 7, prefix sim_/ws_.
 *
 * Invariants:
 *   1. Each model draws from its own stream (seed, model index), so its
 *      arrivals do not depend on how many other models there are or on the
 *      order they are consumed in.
 *   2. A model's arrival times are accumulated in double nanoseconds from 0
 *      and rounded down to uint64 when emitted; rounding is monotone, so
 *      each model's times are non-decreasing, and the heap merge keeps the
 *      whole stream non-decreasing (ties: smaller model index first).
 *   3. Only IEEE-exact operations (+ - * / sqrt floor frexp ldexp) touch
 *      the numbers: same seed, same bits, on any x86-64 (or other IEEE-754)
 *      machine and libc.
 *   4. Memory is O(n_models), allocated at creation; next() never allocates.
 */
/* no fused multiply-add: the bits must not depend on the target's FMA (gcc in
 * ISO C mode, -std=c17 as CMake sets it, does not contract; clang's default
 * would, within expressions). -ffast-math is not supported. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#include "sim/workload_impl.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"

/* ---------------------------------------------------------------------- */
/* random numbers: splitmix64 seeds xoshiro256** (Blackman & Vigna 2018)   */

uint64_t ws_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ws_rng_seed(ws_rng *r, uint64_t seed, uint64_t stream)
{
    /* mix the stream id in through one splitmix round of its own, so that
     * (seed, stream) and (seed + 1, stream - 1) do not share a state */
    uint64_t st = stream;
    uint64_t k = seed ^ ws_splitmix64(&st);
    for (int i = 0; i < 4; i++)
        r->s[i] = ws_splitmix64(&k);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1; /* the one state xoshiro cannot leave */
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t ws_rng_u64(ws_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ws_rng_unit(ws_rng *r)
{
    return (double)(ws_rng_u64(r) >> 11) * 0x1p-53;
}

double ws_rng_open(ws_rng *r)
{
    return (double)((ws_rng_u64(r) >> 11) + 1) * 0x1p-53;
}

double ws_rng_exp(ws_rng *r)
{
    return -ws_log(ws_rng_open(r));
}

uint64_t ws_rng_below(ws_rng *r, uint64_t n)
{
    /* rejection from the top of the range: unbiased */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = ws_rng_u64(r);
    while (x >= lim);
    return x % n;
}

double ws_rng_normal(ws_rng *r)
{
    /* Marsaglia's polar method: only log and sqrt; the second variate of
     * each pair is dropped so that the state is the rng alone */
    double u, v, s;
    do {
        u = 2.0 * ws_rng_unit(r) - 1.0;
        v = 2.0 * ws_rng_unit(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * ws_log(s) / s);
}

double ws_rng_gamma(ws_rng *r, double shape)
{
    /* Marsaglia & Tsang, "A simple method for generating gamma variables",
     * ACM TOMS 26(3), 2000; shape < 1 through Gamma(a) = Gamma(a+1) U^(1/a) */
    double boost = 1.0;
    if (shape < 1.0) {
        boost = ws_exp(ws_log(ws_rng_open(r)) / shape);
        shape += 1.0;
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = ws_rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        double u = ws_rng_open(r);
        double x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2)
            return d * v * boost;
        if (ws_log(u) < 0.5 * x2 + d * (1.0 - v + ws_log(v)))
            return d * v * boost;
    }
}

/* ---------------------------------------------------------------------- */
/* deterministic log / exp / sin                                          */

static const double LN2_HI = 6.93147180369123816490e-01; /* 0x3fe62e42fee00000 */
static const double LN2_LO = 1.90821492927058770002e-10; /* 0x3dea39ef35793c76 */

double ws_log(double x)
{
    if (x == 0.0)
        return -INFINITY;
    if (!(x > 0.0))
        return NAN;
    if (isinf(x))
        return x;
    int e;
    double m = frexp(x, &e); /* x = m 2^e, m in [0.5, 1): exact */
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e--;
    }
    /* log m = 2 atanh(f) = 2 (f + f^3/3 + f^5/5 + ...), |f| <= 0.1716 */
    double f = (m - 1.0) / (m + 1.0), s = f * f;
    double p = 1.0 / 25.0;
    for (int k = 11; k >= 0; k--)
        p = 1.0 / (2 * k + 1) + s * p;
    double lm = 2.0 * f * p;
    return (double)e * LN2_HI + ((double)e * LN2_LO + lm);
}

double ws_exp(double x)
{
    if (isnan(x))
        return x;
    if (x > 709.78)
        return INFINITY;
    if (x < -745.2)
        return 0.0;
    /* x = k ln2 + r, |r| <= ln2/2; e^r by its Taylor series to r^15 */
    double k = floor(x * 1.44269504088896340736 + 0.5);
    double r = (x - k * LN2_HI) - k * LN2_LO;
    double p = 1.0;
    for (int n = 15; n >= 1; n--)
        p = 1.0 + p * r / n;
    return ldexp(p, (int)k);
}

double ws_sin2pi(double u)
{
    u -= floor(u); /* [0, 1) */
    if (u >= 0.5)
        u -= 1.0; /* [-0.5, 0.5) */
    double x = 2.0 * 3.14159265358979323846 * u, x2 = x * x;
    /* sin x = x - x^3/3! + ... to x^31, |x| <= pi */
    double p = 1.0;
    for (int n = 30; n >= 2; n -= 2)
        p = 1.0 - p * x2 / ((double)n * (n + 1));
    return x * p;
}

uint64_t ws_ns(double t)
{
    if (!(t > 0.0))
        return 0;
    if (t >= 18446744073709549568.0)
        return UINT64_MAX;
    return (uint64_t)t;
}

/* ---------------------------------------------------------------------- */
/* the merge heap                                                          */

int ws_heap_init(ws_heap *h, uint32_t cap, usher_error *err)
{
    memset(h, 0, sizeof *h);
    h->t = us_mallocarray(cap ? cap : 1, sizeof *h->t);
    h->model = us_mallocarray(cap ? cap : 1, sizeof *h->model);
    if (!h->t || !h->model) {
        ws_heap_free(h);
        return us_err_set(err, USHER_ERR_NOMEM, "workload: out of memory for %u streams", cap);
    }
    h->cap = cap;
    return USHER_OK;
}

void ws_heap_free(ws_heap *h)
{
    us_free(h->t);
    us_free(h->model);
    memset(h, 0, sizeof *h);
}

static inline int heap_less(const ws_heap *h, uint32_t a, uint32_t b)
{
    return h->t[a] < h->t[b] || (h->t[a] == h->t[b] && h->model[a] < h->model[b]);
}

static inline void heap_swap(ws_heap *h, uint32_t a, uint32_t b)
{
    uint64_t t = h->t[a];
    uint32_t m = h->model[a];
    h->t[a] = h->t[b];
    h->model[a] = h->model[b];
    h->t[b] = t;
    h->model[b] = m;
}

static void heap_down(ws_heap *h, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && heap_less(h, l, m))
            m = l;
        if (r < h->n && heap_less(h, r, m))
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

void ws_heap_push(ws_heap *h, uint64_t t, uint32_t model)
{
    uint32_t i = h->n++;
    h->t[i] = t;
    h->model[i] = model;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!heap_less(h, i, p))
            break;
        heap_swap(h, i, p);
        i = p;
    }
}

void ws_heap_replace_top(ws_heap *h, uint64_t t)
{
    h->t[0] = t;
    heap_down(h, 0);
}

void ws_heap_pop(ws_heap *h)
{
    h->n--;
    if (h->n) {
        h->t[0] = h->t[h->n];
        h->model[0] = h->model[h->n];
        heap_down(h, 0);
    }
}

/* ---------------------------------------------------------------------- */
/* the public calls every source shares                                    */

int sim_source_next(sim_source *s, sim_arrival *out, usher_error *err)
{
    if (!s || !out)
        return us_err_set(err, USHER_ERR_INVALID, "sim_source_next: NULL argument");
    return s->ops->next(s, out, err);
}

void sim_source_free(sim_source *s)
{
    if (s)
        s->ops->free(s);
}

/* ---------------------------------------------------------------------- */
/* renewal generators: one stream per model, merged by the heap            */

typedef enum proc_kind { PROC_POISSON, PROC_GAMMA, PROC_DIURNAL } proc_kind;

typedef struct model_stream {
    ws_rng rng;
    double t;      /* time of its next arrival, ns */
    double rate;   /* mean rate, per s (diurnal: the peak candidate rate); gaps are
                    * 1e9 x draw / rate ns, so 1e9 / 4 is exactly 250 ms */
    double shape;  /* gamma shape (1/CV^2); 0 = deterministic intervals */
} model_stream;

typedef struct renewal_source {
    sim_source base;
    proc_kind kind;
    uint32_t n_models;
    uint64_t duration_ns;
    model_stream *m;
    ws_heap heap;
    /* diurnal: the rate multiplier f(t) over a period, peak fmax */
    double period_ns, amplitude, phase, fmax;
    double *profile;
    uint32_t n_profile;
} renewal_source;

static double diurnal_factor(const renewal_source *r, double t)
{
    double u = t / r->period_ns + r->phase;
    u -= floor(u);
    if (r->profile) {
        uint32_t i = (uint32_t)(u * r->n_profile);
        if (i >= r->n_profile)
            i = r->n_profile - 1;
        return r->profile[i];
    }
    return 1.0 + r->amplitude * ws_sin2pi(u);
}

/* Advance stream i past its current arrival: its next time, in ns (may be
 * past the duration). */
static double stream_step(renewal_source *r, model_stream *m)
{
    switch (r->kind) {
    case PROC_POISSON:
        return m->t + 1e9 * ws_rng_exp(&m->rng) / m->rate;
    case PROC_GAMMA:
        if (m->shape == 0.0)
            return m->t + 1e9 / m->rate;
        /* Gamma(shape, scale = 1/(rate shape)): mean 1/rate, CV 1/sqrt(shape) */
        return m->t + 1e9 * ws_rng_gamma(&m->rng, m->shape) / (m->rate * m->shape);
    case PROC_DIURNAL: {
        /* thinning (Lewis & Shedler 1979): candidates at the peak rate,
         * each kept with probability f(t)/fmax */
        double t = m->t, end = (double)r->duration_ns;
        for (;;) {
            t += 1e9 * ws_rng_exp(&m->rng) / m->rate;
            if (t >= end)
                return t;
            if (ws_rng_unit(&m->rng) * r->fmax < diurnal_factor(r, t))
                return t;
        }
    }
    }
    return INFINITY;
}

static int renewal_next(sim_source *s, sim_arrival *out, usher_error *err)
{
    renewal_source *r = (renewal_source *)s;
    (void)err;
    if (r->heap.n == 0)
        return 0;
    uint32_t i = r->heap.model[0];
    out->t_ns = r->heap.t[0];
    out->model = i;
    model_stream *m = &r->m[i];
    m->t = stream_step(r, m);
    if (m->t < (double)r->duration_ns)
        ws_heap_replace_top(&r->heap, ws_ns(m->t));
    else
        ws_heap_pop(&r->heap);
    return 1;
}

static void renewal_free(sim_source *s)
{
    renewal_source *r = (renewal_source *)s;
    ws_heap_free(&r->heap);
    us_free(r->m);
    us_free(r->profile);
    us_free(r);
}

static const sim_source_ops renewal_ops = {renewal_next, renewal_free};

static int check_rates(const char *what, const double *rates, uint32_t n, usher_error *err)
{
    if (n == 0)
        return us_err_set(err, USHER_ERR_INVALID, "%s: n_models is 0", what);
    if (!rates)
        return us_err_set(err, USHER_ERR_INVALID, "%s: rates is NULL", what);
    for (uint32_t i = 0; i < n; i++)
        if (!(rates[i] >= 0.0) || !(rates[i] <= 1e12))
            return us_err_set(err, USHER_ERR_INVALID,
                              "%s: rates[%u] = %g is not a rate in [0, 1e12] req/s", what, i,
                              rates[i]);
    return USHER_OK;
}

static int renewal_create(proc_kind kind, const double *rates, uint32_t n, uint64_t seed,
                          uint64_t duration_ns, renewal_source **out, usher_error *err)
{
    renewal_source *r = us_calloc(1, sizeof *r);
    if (!r)
        return us_err_set(err, USHER_ERR_NOMEM, "workload: out of memory");
    r->base.ops = &renewal_ops;
    r->kind = kind;
    r->n_models = n;
    r->duration_ns = duration_ns;
    r->m = us_calloc(n, sizeof *r->m);
    if (!r->m) {
        renewal_free(&r->base);
        return us_err_set(err, USHER_ERR_NOMEM, "workload: out of memory for %u models", n);
    }
    int rc = ws_heap_init(&r->heap, n, err);
    if (rc < 0) {
        renewal_free(&r->base);
        return rc;
    }
    for (uint32_t i = 0; i < n; i++) {
        ws_rng_seed(&r->m[i].rng, seed, i);
        r->m[i].rate = rates[i];
        r->m[i].shape = 1.0;
    }
    *out = r;
    return USHER_OK;
}

/* Draw each model's first arrival and fill the heap. */
static void renewal_start(renewal_source *r)
{
    for (uint32_t i = 0; i < r->n_models; i++) {
        model_stream *m = &r->m[i];
        if (m->rate <= 0.0)
            continue;
        m->t = 0.0;
        m->t = stream_step(r, m);
        if (m->t < (double)r->duration_ns)
            ws_heap_push(&r->heap, ws_ns(m->t), i);
    }
}

int sim_source_poisson(const sim_poisson_params *p, sim_source **out, usher_error *err)
{
    if (!p || !out)
        return us_err_set(err, USHER_ERR_INVALID, "sim_source_poisson: NULL argument");
    *out = NULL;
    int rc = check_rates("poisson workload", p->rates, p->n_models, err);
    if (rc < 0)
        return rc;
    renewal_source *r = NULL;
    rc = renewal_create(PROC_POISSON, p->rates, p->n_models, p->seed, p->duration_ns, &r, err);
    if (rc < 0)
        return rc;
    renewal_start(r);
    *out = &r->base;
    return USHER_OK;
}

int sim_source_gamma(const sim_gamma_params *p, sim_source **out, usher_error *err)
{
    if (!p || !out)
        return us_err_set(err, USHER_ERR_INVALID, "sim_source_gamma: NULL argument");
    *out = NULL;
    int rc = check_rates("gamma workload", p->rates, p->n_models, err);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < p->n_models; i++) {
        double cv = p->cvs ? p->cvs[i] : p->cv;
        if (!(cv >= 0.0 && cv <= SIM_CV_MAX)) {
            if (p->cvs)
                return us_err_set(err, USHER_ERR_INVALID,
                                  "gamma workload: cvs[%u] = %g is not in [0, %g]", i, cv,
                                  SIM_CV_MAX);
            return us_err_set(err, USHER_ERR_INVALID, "gamma workload: cv = %g is not in [0, %g]",
                              cv, SIM_CV_MAX);
        }
    }
    renewal_source *r = NULL;
    rc = renewal_create(PROC_GAMMA, p->rates, p->n_models, p->seed, p->duration_ns, &r, err);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < p->n_models; i++) {
        double cv = p->cvs ? p->cvs[i] : p->cv;
        r->m[i].shape = cv == 0.0 ? 0.0 : 1.0 / (cv * cv);
    }
    renewal_start(r);
    *out = &r->base;
    return USHER_OK;
}

int sim_source_diurnal(const sim_diurnal_params *p, sim_source **out, usher_error *err)
{
    if (!p || !out)
        return us_err_set(err, USHER_ERR_INVALID, "sim_source_diurnal: NULL argument");
    *out = NULL;
    int rc = check_rates("diurnal workload", p->rates, p->n_models, err);
    if (rc < 0)
        return rc;
    if (p->period_ns == 0)
        return us_err_set(err, USHER_ERR_INVALID, "diurnal workload: period_ns is 0");
    if (!(p->phase >= 0.0 && p->phase < 1.0))
        return us_err_set(err, USHER_ERR_INVALID, "diurnal workload: phase = %g is not in [0, 1)",
                          p->phase);
    double fmax = 0.0;
    if (p->profile) {
        if (p->n_profile == 0 || p->n_profile > 100000)
            return us_err_set(err, USHER_ERR_INVALID,
                              "diurnal workload: n_profile = %u is not in 1 .. 100000",
                              p->n_profile);
        for (uint32_t i = 0; i < p->n_profile; i++) {
            if (!(p->profile[i] >= 0.0 && p->profile[i] <= 1e6))
                return us_err_set(err, USHER_ERR_INVALID,
                                  "diurnal workload: profile[%u] = %g is not in [0, 1e6]", i,
                                  p->profile[i]);
            if (p->profile[i] > fmax)
                fmax = p->profile[i];
        }
        if (fmax == 0.0)
            return us_err_set(err, USHER_ERR_INVALID, "diurnal workload: profile is all 0");
    } else {
        if (!(p->amplitude >= 0.0 && p->amplitude <= 1.0))
            return us_err_set(err, USHER_ERR_INVALID,
                              "diurnal workload: amplitude = %g is not in [0, 1]", p->amplitude);
        fmax = 1.0 + p->amplitude;
    }
    renewal_source *r = NULL;
    rc = renewal_create(PROC_DIURNAL, p->rates, p->n_models, p->seed, p->duration_ns, &r, err);
    if (rc < 0)
        return rc;
    r->period_ns = (double)p->period_ns;
    r->amplitude = p->amplitude;
    r->phase = p->phase;
    r->fmax = fmax;
    if (p->profile) {
        r->profile = us_mallocarray(p->n_profile, sizeof *r->profile);
        if (!r->profile) {
            renewal_free(&r->base);
            return us_err_set(err, USHER_ERR_NOMEM, "diurnal workload: out of memory");
        }
        memcpy(r->profile, p->profile, p->n_profile * sizeof *r->profile);
        r->n_profile = p->n_profile;
    }
    for (uint32_t i = 0; i < p->n_models; i++)
        r->m[i].rate *= fmax; /* candidates at the peak rate */
    renewal_start(r);
    *out = &r->base;
    return USHER_OK;
}

/* ---------------------------------------------------------------------- */
/* Zipf popularity                                                         */

int sim_zipf_rates(double total_rate, uint32_t n, double s, uint64_t seed, double *rates_out,
                   usher_error *err)
{
    if (n == 0 || !rates_out)
        return us_err_set(err, USHER_ERR_INVALID, "zipf: n is 0 or rates_out is NULL");
    if (!(s >= 0.0 && s <= 10.0))
        return us_err_set(err, USHER_ERR_INVALID, "zipf: s = %g is not in [0, 10]", s);
    if (!(total_rate >= 0.0 && total_rate <= 1e12))
        return us_err_set(err, USHER_ERR_INVALID, "zipf: total_rate = %g is not in [0, 1e12]",
                          total_rate);
    /* weights by rank, summed from the smallest for accuracy */
    double sum = 0.0;
    for (uint32_t k = n; k >= 1; k--)
        sum += ws_exp(-s * ws_log((double)k));
    /* rank of model i: a seeded Fisher-Yates permutation, kept in rates_out
     * as doubles (exact for any uint32) until the weights replace them */
    for (uint32_t i = 0; i < n; i++)
        rates_out[i] = (double)(i + 1);
    ws_rng r;
    ws_rng_seed(&r, seed, 0x5a1f5a1full);
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = (uint32_t)ws_rng_below(&r, (uint64_t)i + 1);
        double t = rates_out[i];
        rates_out[i] = rates_out[j];
        rates_out[j] = t;
    }
    for (uint32_t i = 0; i < n; i++)
        rates_out[i] = total_rate * ws_exp(-s * ws_log(rates_out[i])) / sum;
    return USHER_OK;
}
