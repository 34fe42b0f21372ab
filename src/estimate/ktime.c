/*
 * ktime.c - the kernel timing model (layer 4).
 *
 * For one kernel problem on one GPU type with a budget of S SMs (the MPS
 * share of the replica), at a precision, with calibration coefficients:
 *
 *   launch     GEMMs try every tile of a small cuBLAS/CUTLASS-like menu (and
 *              split-K when the tiles do not fill the SMs) and keep the
 *              fastest, as the libraries' heuristics aim to; a thin GEMM
 *              (min(M, N) <= 16) may instead run as a GEMV that streams the
 *              weights once, and a 3x3 stride-1 convolution as Winograd
 *              F(2x2,3x3) or (FP32/TF32) F(4x4,3x3) - the fastest is kept and
 *              named in gpu_ktime.algo; other kernels use a fixed 256-thread
 *              launch sized by their parallel work.
 *   occupancy  blocks per SM from the occupancy calculator (occupancy.c).
 *   compute    waves = ceil(grid / (blocks_per_sm * S)); each wave runs at
 *              the per-SM peak x efficiency x min(1, resident warps / 8)
 *              (a GEMM tile needs about 8 warps to keep its pipes busy);
 *              the last, partial wave is timed with the blocks it has.
 *   memory     DRAM bytes (GEMM tiles re-read operands that overflow L2) /
 *              (bandwidth x eff_mem x min(1, active SMs / (0.35 x SMs))):
 *              a third of the SMs can saturate DRAM, fewer cannot.
 *   time       max(compute, memory) + kernel_us, per launch.
 *
 * Compute share (what a co-runner loses while the kernel runs), better
 * than achieved occupancy: max(SM share, bandwidth share), where the SM
 * share is the fraction of SMs holding the kernel's blocks times the
 * fraction of the binding per-SM resource (warps, registers or shared
 * memory) those blocks hold, and the bandwidth share is achieved DRAM
 * bandwidth over peak. A kernel with two small blocks per SM that streams
 * at full bandwidth thus still counts as ~100%: it blocks a co-runner.
 */
#include <math.h>
#include <string.h>

#include "core/err.h"
#include "kernels.h"

#define BW_SAT_FRAC 0.35 /* fraction of SMs that saturates DRAM bandwidth */
#define WARPS_SAT 8.0    /* resident warps per SM that saturate a GEMM's pipes */

int gpu_budget_init(gpu_budget *b, const gpu_type *g, double share, gpu_precision prec,
                    const gpu_calib *cal, usher_error *err)
{
    memset(b, 0, sizeof *b);
    if (!g->is_cuda)
        return us_err_set(err, USHER_ERR_UNSUPPORTED,
                          "%s (%s) is not an NVIDIA CUDA GPU: the estimator models CUDA kernels",
                          g->key, g->cc);
    if (!gpu_known(g, GPU_F_SM_COUNT) || !gpu_known(g, GPU_F_MEM_BW_GBS) ||
        !gpu_known(g, GPU_F_FP32_TFLOPS) || g->sm_count < 1)
        return us_err_set(err, USHER_ERR_UNSUPPORTED,
                          "%s: the catalog lacks its SM count, memory bandwidth or FP32 peak",
                          g->key);
    if (!(share > 0) || share > 1)
        return us_err_set(err, USHER_ERR_INVALID, "share %g is not in (0, 100%%]", share * 100);
    int rc = gpu_sm_limits_for_type(g, &b->lim, err);
    if (rc < 0)
        return rc;
    b->gpu = g;
    b->sms = (int)floor(share * g->sm_count + 1e-9);
    if (b->sms < 1)
        b->sms = 1;
    b->share = (double)b->sms / g->sm_count;
    b->prec = prec;
    b->cal = cal;
    b->peak_simt = g->fp32_tflops * 1e12;
    b->bw = g->mem_bw_gbs * 1e9;
    double tc16 = gpu_known(g, GPU_F_FP16_TENSOR_TFLOPS) ? g->fp16_tensor_tflops * 1e12 : 0;
    switch (prec) {
    case GPU_PREC_FP32:
        break;
    case GPU_PREC_TF32: /* dense TF32 runs at half the FP16 tensor rate (Ampere, Hopper) */
        b->peak_tensor = g->cc_major >= 8 ? tc16 / 2 : 0;
        break;
    case GPU_PREC_FP16:
        b->peak_tensor = g->cc_major >= 7 ? tc16 : 2 * b->peak_simt;
        break;
    case GPU_PREC_INT8:
        b->peak_tensor = (g->cc_major > 7 || (g->cc_major == 7 && g->cc_minor >= 5)) &&
                                 gpu_known(g, GPU_F_INT8_TOPS)
                             ? g->int8_tops * 1e12
                             : 4 * b->peak_simt; /* DP4A on the FP32 pipes */
        break;
    default:
        return us_err_set(err, USHER_ERR_INVALID, "unknown precision %d", (int)prec);
    }
    return USHER_OK;
}

/* A tile menu like cuBLAS/CUTLASS kernels have. eff: the fraction of the large
 * tile's throughput a tile keeps - smaller tiles reuse each loaded operand less
 * (register blocking) and so issue more loads per FMA. */
typedef struct tile {
    int tm, tn, threads, regs, smem;
    double eff;
} tile;

static const tile simt_tiles[] = {
    {128, 128, 256, 128, 16384, 1.00}, {128, 64, 256, 96, 12288, 0.92},
    {64, 64, 128, 96, 8192, 0.80},     {64, 32, 128, 64, 6144, 0.65},
    {32, 32, 64, 64, 4096, 0.50},
};
static const tile tc_tiles[] = {
    {256, 128, 256, 232, 65536, 1.00}, {128, 128, 256, 168, 49152, 0.95},
    {128, 64, 128, 168, 32768, 0.85},  {64, 64, 128, 128, 24576, 0.70},
    {64, 32, 64, 128, 12288, 0.55},
};

static double l2_bytes(const gpu_budget *b)
{
    double l2 = gpu_known(b->gpu, GPU_F_L2_MB) ? b->gpu->l2_mb * 1e6 : 4e6;
    return l2;
}

/* achievable DRAM bandwidth with `active` SMs running the kernel */
static double bandwidth(const gpu_budget *b, double active)
{
    double frac = active / (BW_SAT_FRAC * b->gpu->sm_count);
    if (frac > 1)
        frac = 1;
    if (frac < 1e-3)
        frac = 1e-3;
    return b->bw * b->cal->eff_mem * frac;
}

/* share of the binding SM resource that r resident blocks hold */
static double resource_frac(const gpu_budget *b, const gpu_occupancy *o, int r)
{
    double w = (double)r * o->warps_per_block / b->lim.max_warps_per_sm;
    double regs = (double)r * o->regs_per_block / b->lim.regs_per_sm;
    double sm = b->lim.smem_per_sm ? (double)r * (double)o->smem_per_block / (double)b->lim.smem_per_sm : 0;
    double f = w > regs ? w : regs;
    f = f > sm ? f : sm;
    return f > 1 ? 1 : f;
}

typedef struct launch_eval {
    double t, tc, tm, dram, sm_share, bw_share, sm_util;
    int64_t grid;
    int bps, block, regs, smem;
    double occ;
} launch_eval;

/* time one launch of grid blocks doing fpb flops each and moving dram bytes */
static bool eval_launch(const gpu_budget *b, int64_t grid, int threads, int regs, int smem,
                        double fpb, double peak_sm, double eff, double dram, launch_eval *o)
{
    gpu_launch l = gpu_launch_default();
    l.threads_per_block = threads;
    l.regs_per_thread = regs;
    l.smem_per_block = (size_t)smem;
    gpu_occupancy occ;
    if (gpu_occupancy_calc(&b->lim, &l, &occ, NULL) < 0)
        return false;
    memset(o, 0, sizeof *o);
    int bps = occ.blocks_per_sm;
    int64_t slots = (int64_t)bps * b->sms;
    int64_t full = grid / slots, rem = grid % slots;
    double wpb = occ.warps_per_block;
    double u_full = fmin(1.0, bps * wpb / WARPS_SAT);
    double tc = 0;
    if (fpb > 0 && peak_sm > 0) {
        tc = (double)full * bps * fpb / (peak_sm * eff * u_full);
        if (rem) {
            int r = (int)((rem + b->sms - 1) / b->sms);
            tc += r * fpb / (peak_sm * eff * fmin(1.0, r * wpb / WARPS_SAT));
        }
    }
    double active = grid < b->sms ? (double)grid : b->sms;
    double tm = dram / bandwidth(b, active);
    double t = fmax(tc, tm) + b->cal->kernel_us * 1e-6;
    int r_res = (int)(grid < slots ? (grid + b->sms - 1) / b->sms : bps);
    if (r_res > bps)
        r_res = bps;
    o->t = t;
    o->tc = tc;
    o->tm = tm;
    o->dram = dram;
    o->sm_share = active / b->gpu->sm_count * resource_frac(b, &occ, r_res < 1 ? 1 : r_res);
    o->bw_share = dram / t / b->bw;
    o->sm_util = tc / t * (active / b->gpu->sm_count);
    o->grid = grid;
    o->bps = bps;
    o->block = threads;
    o->regs = regs;
    o->smem = smem;
    o->occ = occ.occupancy;
    return true;
}

/* the figures of `rep` launches of one evaluated launch */
static void fill(gpu_ktime *out, const launch_eval *e, double rep)
{
    out->seconds = e->t * rep;
    out->compute_s = e->tc * rep;
    out->memory_s = e->tm * rep;
    out->dram_bytes = e->dram * rep;
    out->sm_share = e->sm_share;
    out->bw_share = e->bw_share;
    out->sm_util = e->sm_util;
    out->grid = e->grid;
    out->block = e->block;
    out->regs = e->regs;
    out->smem = e->smem;
    out->occupancy = e->occ;
    out->blocks_per_sm = e->bps;
}

typedef struct gemm_shape {
    double M, N, K, B, unique;
} gemm_shape;

/* the fastest tile/split for one GEMM shape; returns its time in seconds */
static double gemm_best(const gpu_budget *b, const gpu_kprob *p, const gemm_shape *sh,
                        gpu_ktime *out)
{
    bool tc = p->tensor && b->peak_tensor > 0;
    const tile *menu = tc ? tc_tiles : simt_tiles;
    size_t nmenu = tc ? sizeof tc_tiles / sizeof tc_tiles[0] : sizeof simt_tiles / sizeof simt_tiles[0];
    double peak = tc ? b->peak_tensor : b->peak_simt;
    double peak_sm = peak / b->gpu->sm_count;
    double eff = (tc ? b->cal->eff_tensor : b->cal->eff_gemm) * (p->conv ? b->cal->eff_conv : 1.0);
    double es = p->elem_bytes;
    double M = sh->M, N = sh->N, K = sh->K, B = sh->B;
    double A = M * K * B * es, W = K * N * B * es, C = M * N * B * es;
    double unique = fmax(A + W + C, sh->unique);
    double L2 = l2_bytes(b);
    launch_eval best;
    memset(&best, 0, sizeof best);
    best.t = INFINITY;
    int best_tm = 0, best_tn = 0, best_split = 1;
    double best_red = 0;
    for (size_t i = 0; i < nmenu; i++) {
        const tile *t = &menu[i];
        double tiles_m = ceil(M / t->tm), tiles_n = ceil(N / t->tn);
        double tiles = tiles_m * tiles_n * B;
        for (int split = 1; split <= 16; split *= 2) {
            /* the library decides from the device, not from the MPS share: the same
             * menu for every share keeps latency monotone in the share */
            if (split > 1 && (tiles * split > 4.0 * b->gpu->sm_count || K / split < 64))
                break;
            double kper = ceil(K / split);
            double fpb = 2.0 * t->tm * t->tn * kper;
            double nocache = A * tiles_n + W * tiles_m + C;
            double dram = unique;
            if (A + W > L2)
                dram += (nocache - unique > 0 ? nocache - unique : 0) * (1 - L2 / (A + W)) * 0.25;
            double red_bytes = 0;
            if (split > 1) { /* FP32 partial sums written, then reduced */
                red_bytes = M * N * B * 4.0 * split * 2;
                dram += M * N * B * 4.0 * split;
            }
            launch_eval e;
            if (!eval_launch(b, (int64_t)(tiles * split), t->threads, t->regs, t->smem, fpb, peak_sm,
                             eff * t->eff, dram, &e))
                continue;
            double red_t = 0;
            if (split > 1) {
                red_t = red_bytes / bandwidth(b, b->sms) + b->cal->kernel_us * 1e-6;
                e.t += red_t;
            }
            if (e.t < best.t) {
                best = e;
                best_tm = t->tm;
                best_tn = t->tn;
                best_split = split;
                best_red = red_t;
            }
        }
    }
    if (!isfinite(best.t)) { /* no tile fits this GPU: run it as a streaming kernel */
        eval_launch(b, (int64_t)fmax(1, ceil(M * N * B / 1024)), 256, 32, 0, 0, 0, 1, unique, &best);
        best.tc = p->flops / (peak * eff * b->share);
        best.t = fmax(best.tc, best.tm) + b->cal->kernel_us * 1e-6;
    }
    double rep = p->repeat ? p->repeat : 1;
    fill(out, &best, rep);
    out->tile_m = best_tm;
    out->tile_n = best_tn;
    out->split_k = best_split;
    out->launches = (uint32_t)(rep * (best_split > 1 ? 2 : 1));
    out->algo = p->conv ? "implicit-gemm" : "gemm";
    out->l2_bytes = fmin(L2, A / B + W / B);
    (void)best_red;
    return out->seconds;
}

/* A thin GEMM (min(M, N) <= GEMV_MAX_THIN: a fully connected layer at batch 1,
 * a decoder step) as cuBLAS runs it: a GEMV-style kernel where a warp owns an output row,
 * streams its row of the large operand once and keeps the thin operand in
 * registers - no tile padding to 128 rows. It is bound by DRAM bandwidth: one
 * read of the weights. Long K with few rows is split across blocks so that
 * enough SMs pull from DRAM. Returns its time; the caller keeps the faster. */
static double gemv(const gpu_budget *b, const gpu_kprob *p, const gemm_shape *sh, gpu_ktime *out)
{
    double rep = p->repeat ? p->repeat : 1;
    double M = sh->M, N = sh->N, K = sh->K, B = sh->B, es = p->elem_bytes;
    double rows = fmax(M, N) * B;
    double unique = fmax((M * K + K * N + M * N) * B * es, sh->unique);
    double grid = ceil(rows / 8); /* 8 warps of 256 threads, a warp per output row */
    /* like the tile menu, the split is the library's choice for the device, not
     * for the MPS share: latency stays monotone in the share */
    double splits = fmin(ceil(K / 512), ceil(2.0 * b->gpu->sm_count / grid));
    if (splits > 1)
        grid *= splits;
    launch_eval e;
    if (!eval_launch(b, (int64_t)grid, 256, 40, 0, 2 * M * N * K * B / grid,
                     b->peak_simt / b->gpu->sm_count, b->cal->eff_gemm, unique, &e))
        return INFINITY;
    fill(out, &e, rep);
    out->launches = (uint32_t)rep;
    out->tile_m = out->tile_n = 0;
    out->split_k = splits > 1 ? (int)splits : 1;
    out->l2_bytes = fmin(l2_bytes(b), unique);
    out->algo = "gemv";
    return out->seconds;
}

#define GEMV_MAX_THIN 16

static void gemm(const gpu_budget *b, const gpu_kprob *p, gpu_ktime *out)
{
    double rep = p->repeat ? p->repeat : 1;
    /* convolutions read their input once per kernel tap at most: the unique bytes
     * the mapper recorded bound the traffic from below */
    gemm_shape direct = {(double)p->m, (double)p->n, (double)p->k, (double)p->batch,
                         p->bytes / rep};
    double t = gemm_best(b, p, &direct, out);
    /* a convolution is thin when its output has few positions (squeeze-excite's 1x1
     * convolutions on a pooled 1x1 map, at small batch): its weights are read once;
     * few output channels over many positions stay an implicit GEMM */
    bool thin = p->conv ? direct.M <= GEMV_MAX_THIN : fmin(direct.M, direct.N) <= GEMV_MAX_THIN;
    if (thin) {
        gpu_ktime v;
        memset(&v, 0, sizeof v);
        double tv = gemv(b, p, &direct, &v);
        if (tv < t) {
            *out = v;
            t = tv;
        }
    }
    if (!p->winograd)
        return;
    /* Winograd F(m x m, 3x3) with input tiles of a = m + 2: a^2 GEMMs over the
     * M / m^2 output tiles with K = C_in, plus an input and an output transform
     * that each read one side and write it a^2 / m^2 times expanded (or the
     * reverse). F(2x2,3x3) does 2.25x fewer multiplies than the direct
     * convolution, F(4x4,3x3) 4x (Lavin and Gray 2016); the larger tile loses
     * precision, so it is tried in FP32/TF32 only, where cuDNN's non-fused
     * Winograd and TensorRT's tactics offer it. The faster candidate is kept. */
    double es = p->elem_bytes, cin = direct.K / 9;
    int max_m = p->elem_bytes >= 4 ? 4 : 2;
    for (int m = 2; m <= max_m; m += 2) {
        double a2 = (double)(m + 2) * (m + 2), m2 = (double)m * m;
        gpu_ktime w;
        gemm_shape ws = {ceil(direct.M / m2), direct.N, cin, direct.B * a2, 0};
        double tw = gemm_best(b, p, &ws, &w);
        double tr_bytes = (1 + a2 / m2) * direct.M * (cin + direct.N) * direct.B * es;
        double tr = rep * (tr_bytes / bandwidth(b, b->sms) + 2 * b->cal->kernel_us * 1e-6);
        if (tw + tr < t) {
            w.seconds += tr;
            w.memory_s += tr;
            w.dram_bytes += rep * tr_bytes;
            w.launches += (uint32_t)(2 * rep);
            w.algo = m == 2 ? "winograd" : "winograd4";
            *out = w;
            t = out->seconds;
        }
    }
}

static void streaming(const gpu_budget *b, const gpu_kprob *p, gpu_ktime *out)
{
    double rep = p->repeat ? p->repeat : 1;
    double bytes = p->bytes / rep, flops = p->flops / rep;
    double par = p->parallel > 0 ? (double)p->parallel : 1;
    int64_t grid;
    int smem = 0;
    switch (p->cls) {
    case GPU_K_NORM: case GPU_K_SOFTMAX: case GPU_K_REDUCE: {
        /* a block per row, long rows split across blocks */
        double elems = bytes / (p->elem_bytes > 0 ? p->elem_bytes : 4) / 2;
        grid = (int64_t)fmax(par, ceil(elems / 65536.0));
        smem = 1024;
        break;
    }
    default:
        grid = (int64_t)fmax(1, ceil(par / 1024.0)); /* 256 threads x 4 elements */
    }
    if (grid < 1)
        grid = 1;
    double eff = p->cls == GPU_K_DEPTHWISE ? b->cal->eff_depthwise : 0.5;
    double per_block = flops / (double)grid;
    launch_eval e;
    if (!eval_launch(b, grid, 256, 32, smem, per_block, b->peak_simt / b->gpu->sm_count, eff,
                     bytes, &e)) {
        memset(&e, 0, sizeof e);
        e.t = bytes / bandwidth(b, b->sms) + b->cal->kernel_us * 1e-6;
    }
    e.dram = bytes;
    fill(out, &e, rep);
    out->launches = (uint32_t)rep;
    out->l2_bytes = fmin(l2_bytes(b), bytes);
    out->algo = p->cls == GPU_K_DEPTHWISE ? "direct" : "stream";
}

void gpu_ktime_eval(const gpu_budget *b, const gpu_kprob *p, gpu_ktime *out)
{
    memset(out, 0, sizeof *out);
    out->split_k = 1;
    if (p->cls == GPU_K_GEMM && p->m > 0 && p->n > 0 && p->k > 0)
        gemm(b, p, out);
    else
        streaming(b, p, out);
    double s = out->sm_share > out->bw_share ? out->sm_share : out->bw_share;
    out->share = s > 1 ? 1 : s;
}
