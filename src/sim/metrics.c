/*
 * metrics.c - the simulator's latency histogram and the report's lifetime
 * (layer 7, see sim.h).
 *
 * Percentiles without keeping every latency: a value v (ns) falls in
 *   octave 0, bucket v                      for v < 64 (exact), else
 *   octave e - 5, bucket (v >> (e - 6)) - 64  with e = floor(log2 v) >= 6,
 * i.e. 64 buckets per power of two, each [low, low + w) with w = 2^(e-6)
 * and low >= 64 w. A bucket is read back at its middle, low + w/2, which is
 * within w/2 / low <= 1/128 of every value in it (SIM_HIST_REL_ERROR); the
 * result is clamped to the exact minimum and maximum, which the first and
 * the last rank return exactly. An octave's 64
 * counters are allocated when a value first reaches it, so a model's
 * histogram is a few KB (latencies from 1 ms to 1 s span 10 octaves), and
 * a run of 10^9 requests costs what a run of 10 does.
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "sim/sim.h"

static unsigned octave_of(uint64_t v, unsigned *sub)
{
    if (v < SIM_HIST_SUB) {
        *sub = (unsigned)v;
        return 0;
    }
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    *sub = (unsigned)(v >> (e - 6)) - SIM_HIST_SUB;
    return e - 5;
}

int sim_hist_add(sim_hist *h, uint64_t v)
{
    unsigned sub, o = octave_of(v, &sub);
    if (!h->oct[o]) {
        h->oct[o] = us_calloc(SIM_HIST_SUB, sizeof *h->oct[o]);
        if (!h->oct[o])
            return USHER_ERR_NOMEM;
    }
    h->oct[o][sub]++;
    if (h->n == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->n++;
    return USHER_OK;
}

/* the middle of bucket sub of octave o, ns */
static double bucket_mid(unsigned o, unsigned sub)
{
    if (o == 0)
        return (double)sub;
    unsigned e = o + 5;
    double w = ldexp(1.0, (int)e - 6);
    return ((double)SIM_HIST_SUB + sub) * w + w / 2;
}

double sim_hist_quantile(const sim_hist *h, double q)
{
    if (h->n == 0)
        return 0;
    double want = ceil(q * (double)h->n);
    uint64_t rank = want < 1 ? 1 : want > (double)h->n ? h->n : (uint64_t)want;
    if (rank == 1)
        return (double)h->min; /* the extremes are known exactly */
    if (rank == h->n)
        return (double)h->max;
    uint64_t seen = 0;
    for (unsigned o = 0; o < SIM_HIST_OCTAVES; o++) {
        if (!h->oct[o])
            continue;
        for (unsigned s = 0; s < SIM_HIST_SUB; s++) {
            seen += h->oct[o][s];
            if (seen >= rank) {
                double v = bucket_mid(o, s);
                if (v < (double)h->min)
                    v = (double)h->min;
                if (v > (double)h->max)
                    v = (double)h->max;
                return v;
            }
        }
    }
    return (double)h->max;
}

void sim_hist_free(sim_hist *h)
{
    for (unsigned o = 0; o < SIM_HIST_OCTAVES; o++)
        us_free(h->oct[o]);
    memset(h, 0, sizeof *h);
}

void sim_report_free(sim_report *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; r->m && i < r->n_models; i++)
        sim_hist_free(&r->m[i].hist);
    us_free(r->m);
    us_free(r->g);
    us_free(r->groups);
    us_free(r->series_requests);
    us_free(r->series_good);
    us_free(r->series_gpu_pct);
    us_free(r->replans);
    us_free(r);
}
