/*
 * batcher_sim.h - the runtime's batcher and admission on one replica, driven
 * by random arrivals on a virtual clock (header-only: static functions).
 * Shared by tools/gen_queue_table.c, which tabulates the planner's load caps
 * from it (src/plan/queue_table.c), and tests/test_plan.c, which checks the
 * caps against it. It calls rt_batch_decide and rt_admit_* as the simulator's
 * engine (src/sim/engine.c) does: the same admission, the same lateness notes,
 * the same batch decisions; a request counts as good when it ends within its
 * SLO (rejected, expired and late ones count against it).
 *
 * Arrivals: a renewal process with mean gap 1 / rate and coefficient of
 * variation cv: exponential gaps for cv 1 (Poisson), Gamma gaps of shape
 * 1 / cv^2 otherwise (Marsaglia and Tsang 2000), evenly spaced for cv 0 - the
 * simulator's Gamma arrivals.
 */
#ifndef USHER_BATCHER_SIM_H
#define USHER_BATCHER_SIM_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "runtime/rt.h"

static double bsim_u01(uint64_t *rs)
{
    *rs = *rs * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*rs >> 11) / 9007199254740992.0;
}

static double bsim_normal(uint64_t *rs)
{
    double u = bsim_u01(rs), v = bsim_u01(rs);
    return sqrt(-2 * log(1 - u)) * cos(6.283185307179586 * v);
}

/* Gamma(k, 1) (Marsaglia and Tsang; k < 1 by Gamma(k + 1) U^(1/k)) */
static double bsim_gamma(uint64_t *rs, double k)
{
    if (k < 1)
        return bsim_gamma(rs, k + 1) * pow(1 - bsim_u01(rs), 1 / k);
    double d = k - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x = bsim_normal(rs), v = 1 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = bsim_u01(rs);
        if (u < 1 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1 - v + log(v)))
            return d * v;
    }
}

/* one gap between arrivals, mean 1 */
static double bsim_gap(uint64_t *rs, double cv)
{
    if (cv == 1)
        return -log(1 - bsim_u01(rs));
    if (!(cv > 0))
        return 1;
    double k = 1 / (cv * cv);
    return bsim_gamma(rs, k) / k;
}

/* the runtime's batcher and admission on one replica, fed Poisson arrivals on a virtual
 * clock as the simulator (src/sim/engine.c) drives them: lat[1..b] ns per batch size. The
 * share of n requests answered within slo_ms (rejected, expired and late ones count
 * against it) */
static double bsim_attainment(int b, const uint64_t *lat, double rate, double slo_ms, double cv,
                              uint64_t seed, int n)
{
    const uint64_t NEVER = UINT64_MAX, slo = (uint64_t)(slo_ms * 1e6);
    uint64_t *arr = us_calloc((size_t)n, sizeof *arr), *dl = us_calloc((size_t)n, sizeof *dl);
    uint64_t *mem = us_calloc((size_t)b, sizeof *mem), *pred = us_calloc((size_t)n, sizeof *pred);
    uint64_t *mem_pred = us_calloc((size_t)b, sizeof *mem_pred);
    int64_t *ones = us_calloc((size_t)n, sizeof *ones);
    if (!arr || !dl || !mem || !ones || !pred || !mem_pred) {
        us_free(arr), us_free(dl), us_free(mem), us_free(ones), us_free(pred), us_free(mem_pred);
        return -1;
    }
    for (int i = 0; i < n; i++)
        ones[i] = 1;
    rt_admit adm;
    rt_admit_init(&adm);
    size_t cap = rt_admit_capacity(b, lat[b], slo, 1);
    double row_ns = (double)lat[b] / b;
    uint64_t rs = seed * 0x9E3779B97F4A7C15ULL + 7, now = 0, t_arr = 0, t_end = NEVER,
             t_wake = NEVER, t0 = 0;
    size_t head = 0, tail = 0;
    int k_run = 0, arrived = 0;
    long good = 0, rejected = 0, expired = 0, batches = 0, rows = 0;
    bool busy = false;
    t_arr = (uint64_t)(bsim_gap(&rs, cv) / rate * 1e9);
    for (;;) {
        bool more = arrived < n;
        if (!more && !busy && head == tail)
            break;
        uint64_t t = more ? t_arr : NEVER;
        int ev = 0; /* 0 arrival, 1 end, 2 wake */
        if (t_end < t || (t_end == t && busy)) {
            t = t_end;
            ev = 1;
        }
        if (t_wake < t) {
            t = t_wake;
            ev = 2;
        }
        if (t == NEVER)
            break; /* nothing can happen: queued requests wait for nothing (cannot be) */
        now = t;
        bool decide = false;
        if (ev == 1) {
            /* as the engine's on_end: the lateness against admission's predicted end, then
             * the run */
            double late = -1e300;
            for (int j = 0; j < k_run; j++) {
                good += now - mem[j] <= slo;
                if ((double)now - (double)mem_pred[j] > late)
                    late = (double)now - (double)mem_pred[j];
            }
            rt_admit_note_late(&adm, late, now);
            rt_admit_note_run(&adm, 1.0, false, now);
            busy = false;
            t_end = NEVER;
            decide = true;
        } else if (ev == 2) {
            t_wake = NEVER;
            decide = true;
        } else {
            arrived++;
            t_arr = now + (uint64_t)(bsim_gap(&rs, cv) / rate * 1e9);
            size_t ql = tail - head;
            if (ql < cap) {
                rt_admit_refresh(&adm, now);
                double sc = adm.scale;
                uint64_t left = busy && t_end > now ? t_end - now : 0;
                uint64_t ahead = rt_admit_work_ahead((double)ql, row_ns * sc, (double)left, 1);
                uint64_t own = rt_batch_latency_scaled(lat, 1, 1, sc, 1.0);
                rt_admit_query q = {.now = now, .deadline_ns = now + slo, .ahead = ahead,
                                    .own = own, .idle = ql == 0 && !busy};
                rt_admit_verdict v = rt_admit_decide(&adm, &q);
                if (v == RT_ADMIT_YES || v == RT_ADMIT_PROBE) {
                    rt_admit_note_arrival(&adm, now, 1);
                    pred[tail] = now + ahead + own;
                    arr[tail] = now;
                    dl[tail++] = now + slo;
                    decide = true;
                } else {
                    rejected++;
                }
            } else {
                rejected++;
            }
        }
        while (decide && !busy && tail > head) {
            rt_admit_refresh(&adm, now);
            size_t ql = tail - head, vn = ql < (size_t)b + 64 ? ql : (size_t)b + 64;
            rt_batch_view v = {.now_ns = now, .max_batch = b, .latency_ns = lat, .rows = ones,
                               .deadline_ns = dl + head, .arrival_ns = arr + head, .n = vn,
                               .blocked = vn < ql, .latency_scale = adm.scale,
                               .arrival_rate = rt_admit_rate(&adm, now), .replicas = 1};
            rt_batch_decision d;
            rt_batch_decide(&v, &d);
            if (d.expire) {
                head += d.expire;
                expired += (long)d.expire;
                continue;
            }
            if (d.take) {
                k_run = (int)d.take;
                batches++;
                rows += k_run;
                for (int j = 0; j < k_run; j++) {
                    mem[j] = arr[head + (size_t)j];
                    mem_pred[j] = pred[head + (size_t)j];
                }
                head += d.take;
                busy = true;
                t0 = now;
                t_end = now + lat[k_run];
                break;
            }
            if (d.wake_ns != NEVER && (t_wake == NEVER || d.wake_ns < t_wake))
                t_wake = d.wake_ns;
            break;
        }
    }
    (void)t0;
    if (getenv("PLAN_QUEUE_HARNESS"))
        printf("    rate %.1f: %d requests, %ld good, %ld rejected, %ld expired, %ld late; "
               "mean batch %.1f\n", rate, n, good, rejected, expired,
               n - good - rejected - expired, batches ? (double)rows / batches : 0);
    us_free(arr), us_free(dl), us_free(mem), us_free(ones), us_free(pred), us_free(mem_pred);
    return (double)good / n;
}

/* batch latency table in ns for b = 1..B: affine from l1 to lb ms, or convex (flat, then
 * linear) */
static void bsim_lat_table(uint64_t *lat, int b, double l1, double lb, bool convex)
{
    for (int k = 1; k <= b; k++) {
        double x = b > 1 ? (double)(k - 1) / (b - 1) : 1;
        double ms = convex ? fmax(l1, lb * k / b) : l1 + (lb - l1) * x;
        lat[k] = (uint64_t)(ms * 1e6);
    }
}


/* ---- one cell of the cap table (bench/gen_queue_table.c) ------------------------------ */
#define GEN_N 20000      /* requests per run */
#define GEN_SEEDS 2      /* runs per load, each must hold */
#define GEN_TARGET 0.9925 /* the share within the SLO a load must reach */
#define GEN_STEP 0.02    /* the scan's step of load */
#define GEN_ITERS 3      /* bisection steps within the step that failed */
#define GEN_RHO_MAX 0.95 /* never past it: one burst can start a spell of small batches */

/* does the load rho (share of B / D) hold on every seed? lat[1..b] ns, its lat[b] = D.
 * -1 on OOM */
static int bsim_holds(int b, const uint64_t *lat, double rho, double x, double cv, uint64_t salt)
{
    double d = (double)lat[b] / 1e6, rate = rho * b / d * 1e3;
    for (uint64_t s = 1; s <= GEN_SEEDS; s++) {
        double a = bsim_attainment(b, lat, rate, x * d, cv, salt * 131 + s, GEN_N);
        if (a < 0)
            return -1;
        if (a < GEN_TARGET)
            return 0;
    }
    return 1;
}

/*
 * The cell (B, lat[1..B], x = SLO / D, cv): the loads from `from` up in steps of
 * GEN_STEP while they hold (every load below `from` taken as holding: the cell of a
 * shorter SLO held it), then GEN_ITERS steps of bisection in the step that failed
 * (geometric, down to GEN_STEP / 256, where the first step fails); at most
 * GEN_RHO_MAX. -1 on OOM.
 */
static double bsim_cell(int b, const uint64_t *lat, double x, double cv, uint64_t salt,
                        double from)
{
    double step = GEN_STEP, base = floor(from / step + 1e-9) * step;
    int h;
    while (base + step <= GEN_RHO_MAX + 1e-9 &&
           (h = bsim_holds(b, lat, base + step, x, cv, salt)) != 0) {
        if (h < 0)
            return -1;
        base += step;
    }
    double lo = fmax(from, base), hi = base + step;
    if (lo <= 0) { /* the first step fails: how far below it */
        double glo = step / 256, ghi = step;
        if ((h = bsim_holds(b, lat, glo, x, cv, salt)) <= 0)
            return h < 0 ? -1 : 0;
        for (int it = 0; it < 6; it++) {
            double mid = sqrt(glo * ghi);
            if ((h = bsim_holds(b, lat, mid, x, cv, salt)) < 0)
                return -1;
            if (h)
                glo = mid;
            else
                ghi = mid;
        }
        return glo;
    }
    for (int it = 0; it < GEN_ITERS && hi - lo > 0.002; it++) {
        double mid = 0.5 * (lo + hi);
        if (mid > GEN_RHO_MAX + 1e-9)
            break;
        if ((h = bsim_holds(b, lat, mid, x, cv, salt)) < 0)
            return -1;
        if (h)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

#endif
