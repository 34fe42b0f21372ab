/*
 * model.c - the `contention` interference model (docs/interference.md).
 *
 * Each replica alone takes L = h + g: h off the GPU (host, launches, copies),
 * g with kernels on it. Beside others its kernel time becomes g * F with
 *
 *   g' = ((g - m) * f_sm + m * max(f_sm, rho)) * (1 + beta * sum_j busy_j * u_j) * f_l2
 *   f_sm = max(1, fill_i * s_i + sum_j busy_j * fill_j * s_j)   shares over 100%
 *          (1 when the MPS caps sum to at most 100%: the caps keep them apart)
 *   rho  = u_i + sum_j busy_j * u_j     DRAM demand over the device's bandwidth
 *   f_l2 = 1 + lambda * min(1, sum_j busy_j * W_j / L2)
 *
 * where j runs over the others, m the time of its DRAM-bound kernels (only they
 * stretch when the demand passes the bandwidth), s is the MPS share, u the DRAM utilisation
 * while running (traffic / kernel time / device bandwidth), W the L2 working
 * set, fill = min(1, k_compute * compute_ms / g + k_dram * u) the fraction of
 * its SMs a replica keeps busy while running, and busy = g F / (h + g F) the
 * fraction of its time a back-to-back replica has kernels on the GPU. busy
 * depends on F and F on the others' busy: the fixed point is found by damped
 * iteration from F = 1 (every F only grows, so it converges monotonically).
 *
 * Sources of each term: processor sharing of SMs under MPS without thread caps
 * (ParvaGPU, SC'24: co-located processes of one model in a MIG instance);
 * bandwidth saturation (roofline: a memory-bound kernel cannot move more than
 * the device's bandwidth) and loaded DRAM latency below saturation (gpulet,
 * ATC'22, whose linear model uses the co-runner's DRAM utilisation); L2
 * pressure from the co-runners' cache use (iGniter, TPDS'23, which scales
 * active time with the others' L2 utilisation).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "interfere/interfere.h"

/* coefficients fitted by `usher interfere --fit data/interference.csv` on every
 * pair (the held-out figures of docs/interference.md refit without the pair) */
#define FIT_K_COMPUTE 0.3418
#define FIT_K_DRAM 1.629
#define FIT_BETA_BW 0.09375
#define FIT_LAMBDA_L2 0.07461

#define MAX_ITER 200
#define TOL 1e-9

static int contention_predict(const if_model *m, const if_device *d, const if_replica *r,
                              uint32_t n, if_result *out, usher_error *err)
{
    (void)err;
    const if_coef *c = &m->coef;
    double share_sum = 0;
    for (uint32_t i = 0; i < n; i++)
        share_sum += r[i].share;
    bool capped = share_sum <= 1 + 1e-9;
    /* per replica: fill, utilisation, working set, and the iterated F and busy */
    double u[IF_MAX_REPLICAS], fill[IF_MAX_REPLICAS], F[IF_MAX_REPLICAS], busy[IF_MAX_REPLICAS];
    double fsm[IF_MAX_REPLICAS], fbw[IF_MAX_REPLICAS], fl2[IF_MAX_REPLICAS];
    for (uint32_t i = 0; i < n; i++) {
        u[i] = if_dram_util(d, &r[i]);
        fill[i] = fmin(1.0, c->k_compute * r[i].compute_ms / r[i].gpu_ms + c->k_dram * u[i]);
        F[i] = 1;
        busy[i] = r[i].gpu_ms / r[i].latency_ms;
        fsm[i] = fbw[i] = fl2[i] = 1;
    }
    for (int it = 0; it < MAX_ITER && n > 1; it++) {
        double sb = 0, sw = 0, sf = 0;
        for (uint32_t j = 0; j < n; j++) {
            sb += busy[j] * u[j];
            sw += busy[j] * r[j].l2_mb;
            sf += busy[j] * fill[j] * r[j].share;
        }
        double change = 0;
        for (uint32_t i = 0; i < n; i++) {
            double ob = fmax(0, sb - busy[i] * u[i]);
            double ow = fmax(0, sw - busy[i] * r[i].l2_mb);
            double of = fmax(0, sf - busy[i] * fill[i] * r[i].share);
            fsm[i] = capped ? 1 : fmax(1, fill[i] * r[i].share + of);
            double rho = u[i] + ob, m_ms = fmin(r[i].mem_ms, r[i].gpu_ms);
            double stretched = (r[i].gpu_ms - m_ms) * fsm[i] + m_ms * fmax(fsm[i], rho);
            /* f_bw: the factor bandwidth adds beyond SM time-slicing */
            fbw[i] = stretched / (r[i].gpu_ms * fsm[i]) * (1 + c->beta_bw * ob);
            fl2[i] = 1 + c->lambda_l2 * fmin(1, ow / d->l2_mb);
            double target = fsm[i] * fbw[i] * fl2[i];
            double next = 0.5 * F[i] + 0.5 * target;
            change = fmax(change, fabs(next - F[i]));
            F[i] = next;
            double h = r[i].latency_ms - r[i].gpu_ms;
            busy[i] = r[i].gpu_ms * F[i] / (h + r[i].gpu_ms * F[i]);
        }
        if (change < TOL)
            break;
    }
    for (uint32_t i = 0; i < n; i++) {
        double h = r[i].latency_ms - r[i].gpu_ms;
        double lat = h + r[i].gpu_ms * F[i];
        out[i] = (if_result){.latency_ms = lat,
                             .slowdown = lat / r[i].latency_ms,
                             .throughput = (double)r[i].batch / (lat / 1e3),
                             .busy = busy[i],
                             .f_sm = fsm[i],
                             .f_bw = fbw[i],
                             .f_l2 = fl2[i]};
    }
    return USHER_OK;
}

#define CONTENTION_(...)                                                                   \
    {.name = "contention",                                                                 \
     .summary = "SM time-slicing past 100% of the shares, DRAM bandwidth saturation and "  \
                "loaded latency, L2 pressure; busy fractions at their fixed point",       \
     .predict = contention_predict,                                                        \
     .coef = __VA_ARGS__}

if_model if_model_contention(if_coef c) { return (if_model)CONTENTION_(c); }

const if_model *if_model_default(void)
{
    static const if_model m =
        CONTENTION_({FIT_K_COMPUTE, FIT_K_DRAM, FIT_BETA_BW, FIT_LAMBDA_L2});
    return &m;
}

static bool pos(double x) { return isfinite(x) && x > 0; }

int if_predict(const if_model *m, const if_device *d, const if_replica *r, uint32_t n,
               if_result *out, usher_error *err)
{
    if (!m || !d || (!r && n) || (!out && n))
        return us_err_set(err, USHER_ERR_INVALID, "interference: missing argument");
    if (n > IF_MAX_REPLICAS)
        return us_err_set(err, USHER_ERR_INVALID,
                          "interference: %u replicas on one device (at most %d)", n,
                          IF_MAX_REPLICAS);
    if (!pos(d->bw_gbs))
        return us_err_set(err, USHER_ERR_INVALID,
                          "interference: device %s has no DRAM bandwidth (mem_bw_gbs)", d->key);
    if (!pos(d->l2_mb))
        return us_err_set(err, USHER_ERR_INVALID, "interference: device %s has no L2 size (l2_mb)",
                          d->key);
    for (uint32_t i = 0; i < n; i++) {
        const if_replica *x = &r[i];
        const char *bad = !pos(x->latency_ms)                      ? "latency_ms"
                          : !pos(x->gpu_ms) || x->gpu_ms > x->latency_ms * (1 + 1e-9)
                              ? "gpu_ms (in (0, latency_ms])"
                          : !(x->share > 0 && x->share <= 1 + 1e-9) ? "share (in (0, 1])"
                          : !(isfinite(x->compute_ms) && x->compute_ms >= 0 &&
                              x->compute_ms <= x->gpu_ms * (1 + 1e-9))
                              ? "compute_ms (in [0, gpu_ms])"
                          : !(isfinite(x->mem_ms) && x->mem_ms >= 0 &&
                              x->mem_ms <= x->gpu_ms * (1 + 1e-9))
                              ? "mem_ms (in [0, gpu_ms])"
                          : !(isfinite(x->dram_mb) && x->dram_mb >= 0) ? "dram_mb"
                          : !(isfinite(x->l2_mb) && x->l2_mb >= 0)     ? "l2_mb"
                          : x->batch < 1                                ? "batch"
                                                                        : NULL;
        if (bad)
            return us_err_set(err, USHER_ERR_INVALID,
                              "interference: replica %u on %s: missing or invalid %s", i + 1,
                              d->key, bad);
    }
    if (n == 0)
        return USHER_OK;
    return m->predict(m, d, r, n, out, err);
}

int if_device_of(const gpu_type *g, if_device *out, usher_error *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->key, sizeof out->key, "%s", g->key);
    if (!gpu_known(g, GPU_F_MEM_BW_GBS) || !(g->mem_bw_gbs > 0))
        return us_err_set(err, USHER_ERR_INVALID,
                          "interference: the catalog has no DRAM bandwidth (mem_bw_gbs) for %s: "
                          "co-location cannot be judged",
                          g->key);
    if (!gpu_known(g, GPU_F_L2_MB) || !(g->l2_mb > 0))
        return us_err_set(err, USHER_ERR_INVALID,
                          "interference: the catalog has no L2 size (l2_mb) for %s: "
                          "co-location cannot be judged",
                          g->key);
    out->bw_gbs = g->mem_bw_gbs;
    out->l2_mb = g->l2_mb;
    return USHER_OK;
}

int if_replica_of(const usher_profile *p, if_replica *out, usher_error *err)
{
    *out = (if_replica){.share = p->share_pct / 100,
                        .latency_ms = p->latency_ms,
                        .gpu_ms = p->gpu_ms,
                        .compute_ms = p->compute_ms,
                        .mem_ms = p->mem_bound_ms,
                        .dram_mb = p->dram_mb,
                        .l2_mb = p->l2_working_set_mb,
                        .batch = p->batch};
    if (!pos(p->gpu_ms))
        return us_err_set(err, USHER_ERR_INVALID,
                          "interference: the profile of batch %lld on %s has no GPU time "
                          "(gpu_ms): co-location cannot be judged",
                          (long long)p->batch, p->gpu);
    return USHER_OK;
}
