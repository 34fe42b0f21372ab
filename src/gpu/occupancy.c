/*
 * occupancy.c - how many blocks of a kernel launch can be resident on one
 * SM, by CUDA's rules (layer 2).
 *
 * The estimator needs a kernel's occupancy to predict its duration and its
 * compute share without a GPU. The rules, per compute capability (the
 * table below; docs/internals/gpu.md explains each):
 *
 *   warps      a block takes ceil(threads / 32) warp slots;
 *              blocks <= max_warps_per_sm / warps_per_block
 *   slots      blocks <= max_blocks_per_sm
 *   registers  a warp is given regs_per_thread * 32 registers rounded up to
 *              a multiple of 256; the SM's registers are split evenly over
 *              4 sub-partitions and a warp lives in one, so
 *              warps <= 4 * floor((regs_per_sm / 4) / regs_per_warp).
 *              The per-block check counts the block's warps rounded up to a
 *              multiple of 4 (as the hardware does): over 65536 registers
 *              the block cannot launch at all
 *   shared     a block takes its request plus the driver's reservation
 *   memory     (1 KB from 8.0), rounded up to 256 bytes (7.x) or 128 bytes
 *              (8.0 on); the SM's carve-out is the preferred size rounded
 *              up to a size the SM supports, or the smallest supported size
 *              that holds one block if the preference is smaller;
 *              blocks <= carve-out / per-block bytes
 *
 * The result is the smallest of the four; every limit equal to it is
 * reported. Barrier and "virtual resource" limits of cuda_occupancy.h never
 * bind here (one barrier per block allows twice the block slots on 9.0 and
 * 10.0; kernels using virtual resources are not modelled), and partitioned
 * global caching only exists before 7.0. Validated against NVIDIA's
 * cuda_occupancy.h (CUDA 13) on the golden cases in tests/test_gpu.c.
 */
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "gpu.h"

/* Shared-memory carve-out sizes each SM supports, KiB, ascending. */
static const uint16_t carve_volta[] = {0, 8, 16, 32, 64, 96};
static const uint16_t carve_turing[] = {32, 64};
static const uint16_t carve_ga100[] = {0, 8, 16, 32, 64, 100, 132, 164};
static const uint16_t carve_ga10x[] = {0, 8, 16, 32, 64, 100};
static const uint16_t carve_gh100[] = {0, 8, 16, 32, 64, 100, 132, 164, 196, 228};

#define CARVE_(a) a, sizeof a / sizeof a[0]
static const struct cc_row {
    int major, minor;
    int threads_per_sm, blocks_per_sm;
    int smem_per_sm_kb, smem_per_block_kb; /* per block: the opt-in maximum */
    const uint16_t *carve;
    size_t n_carve;
} cc_rows[] = {
    {7, 0, 2048, 32, 96, 96, CARVE_(carve_volta)},
    {7, 5, 1024, 16, 64, 64, CARVE_(carve_turing)},
    {8, 0, 2048, 32, 164, 163, CARVE_(carve_ga100)},
    {8, 6, 1536, 16, 100, 99, CARVE_(carve_ga10x)},
    {8, 9, 1536, 24, 100, 99, CARVE_(carve_ga10x)},
    {9, 0, 2048, 32, 228, 227, CARVE_(carve_gh100)},
    {10, 0, 2048, 32, 228, 227, CARVE_(carve_gh100)},
};
#undef CARVE_
#define N_CC (sizeof cc_rows / sizeof cc_rows[0])

int gpu_sm_limits_for_cc(int major, int minor, gpu_sm_limits *out, usher_error *err)
{
    const struct cc_row *row = NULL;
    for (size_t i = 0; i < N_CC && !row; i++)
        if (cc_rows[i].major == major && cc_rows[i].minor == minor)
            row = &cc_rows[i];
    if (!row)
        return us_err_set(err, USHER_ERR_UNSUPPORTED,
                          "compute capability %d.%d is not in the occupancy table (known: 7.0, "
                          "7.5, 8.0, 8.6, 8.9, 9.0, 10.0)",
                          major, minor);
    memset(out, 0, sizeof *out);
    out->cc_major = major;
    out->cc_minor = minor;
    out->warp_size = 32;
    out->max_threads_per_block = 1024;
    out->max_warps_per_sm = row->threads_per_sm / 32;
    out->max_blocks_per_sm = row->blocks_per_sm;
    out->regs_per_sm = 65536;
    out->regs_per_block = 65536;
    out->max_regs_per_thread = 255;
    out->reg_alloc_unit = 256;
    out->sub_partitions = 4;
    out->smem_per_sm = (size_t)row->smem_per_sm_kb * 1024;
    out->smem_per_block_max = (size_t)row->smem_per_block_kb * 1024;
    out->smem_reserved_per_block = major >= 8 ? 1024 : 0;
    out->smem_alloc_unit = major >= 8 ? 128 : 256;
    out->carveouts_kb = row->carve;
    out->n_carveouts = row->n_carve;
    return USHER_OK;
}

int gpu_sm_limits_for_type(const gpu_type *t, gpu_sm_limits *out, usher_error *err)
{
    if (!t || !out)
        return us_err_set(err, USHER_ERR_INVALID, "gpu_sm_limits_for_type: NULL argument");
    if (!t->is_cuda)
        return us_err_set(err, USHER_ERR_UNSUPPORTED,
                          "%s: compute capability '%s' is not a CUDA compute capability; the "
                          "occupancy rules cover NVIDIA GPUs only",
                          t->key, t->cc);
    gpu_sm_limits lim;
    int rc = gpu_sm_limits_for_cc(t->cc_major, t->cc_minor, &lim, err);
    if (rc < 0)
        return us_err_prefix(err, rc, "%s: ", t->key);
    const struct {
        gpu_field f;
        long have, want;
    } checks[] = {
        {GPU_F_MAX_THREADS_PER_SM, t->max_threads_per_sm, (long)lim.max_warps_per_sm * 32},
        {GPU_F_MAX_BLOCKS_PER_SM, t->max_blocks_per_sm, lim.max_blocks_per_sm},
        {GPU_F_REGS_PER_SM, t->regs_per_sm, lim.regs_per_sm},
        {GPU_F_SMEM_PER_SM_KB, t->smem_per_sm_kb, (long)(lim.smem_per_sm / 1024)},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        if (gpu_known(t, checks[i].f) && checks[i].have != checks[i].want)
            return us_err_set(err, USHER_ERR_INVALID,
                              "%s: %s is %ld in the catalog, but compute capability %d.%d has %ld",
                              t->key, gpu_field_name(checks[i].f), checks[i].have, t->cc_major,
                              t->cc_minor, checks[i].want);
    *out = lim;
    return USHER_OK;
}

gpu_launch gpu_launch_default(void)
{
    gpu_launch l = {.threads_per_block = 256, .regs_per_thread = 0, .smem_per_block = 0,
                    .carveout_pct = -1};
    return l;
}

static int round_up(int x, int unit) { return (x + unit - 1) / unit * unit; }

/* Smallest supported carve-out >= bytes; 0 if bytes exceeds them all. */
static size_t carveout_at_least(const gpu_sm_limits *lim, size_t bytes)
{
    for (size_t i = 0; i < lim->n_carveouts; i++)
        if ((size_t)lim->carveouts_kb[i] * 1024 >= bytes)
            return (size_t)lim->carveouts_kb[i] * 1024;
    return 0;
}

int gpu_occupancy_calc(const gpu_sm_limits *lim, const gpu_launch *launch, gpu_occupancy *out,
                       usher_error *err)
{
    if (!lim || !launch || !out)
        return us_err_set(err, USHER_ERR_INVALID, "gpu_occupancy_calc: NULL argument");
    const int threads = launch->threads_per_block, regs = launch->regs_per_thread;
    const int cc1 = lim->cc_major, cc2 = lim->cc_minor;
    if (threads < 1 || threads > lim->max_threads_per_block)
        return us_err_set(err, USHER_ERR_INVALID,
                          "threads_per_block is %d: must be 1..%d (compute capability %d.%d)",
                          threads, lim->max_threads_per_block, cc1, cc2);
    if (regs < 0 || regs > lim->max_regs_per_thread)
        return us_err_set(err, USHER_ERR_INVALID, "regs_per_thread is %d: must be 0..%d", regs,
                          lim->max_regs_per_thread);
    if (launch->carveout_pct < -1 || launch->carveout_pct > 100)
        return us_err_set(err, USHER_ERR_INVALID,
                          "carveout_pct is %d: must be 0..100, or -1 for the default",
                          launch->carveout_pct);
    if (launch->smem_per_block > lim->smem_per_block_max)
        return us_err_set(err, USHER_ERR_LIMIT,
                          "shared memory: %zu bytes per block is over the %zu bytes a block may "
                          "use on compute capability %d.%d",
                          launch->smem_per_block, lim->smem_per_block_max, cc1, cc2);

    gpu_occupancy o;
    memset(&o, 0, sizeof o);
    o.warps_per_block = (threads + lim->warp_size - 1) / lim->warp_size;
    o.max_warps_per_sm = lim->max_warps_per_sm;
    o.blocks_by_warps = lim->max_warps_per_sm / o.warps_per_block;
    o.blocks_by_slots = lim->max_blocks_per_sm;

    /* registers: per warp, in allocation units, within one sub-partition */
    if (regs == 0) {
        o.blocks_by_regs = GPU_OCC_UNLIMITED;
    } else {
        int per_warp = round_up(regs * lim->warp_size, lim->reg_alloc_unit);
        int counted_warps = round_up(o.warps_per_block, lim->sub_partitions);
        o.regs_per_block = per_warp * o.warps_per_block;
        if ((long)per_warp * counted_warps > lim->regs_per_block)
            return us_err_set(err, USHER_ERR_LIMIT,
                              "registers: %d threads x %d registers need %d registers per warp "
                              "for %d warps (counted as %d, a multiple of %d), %ld in all, over "
                              "the %d a block may use",
                              threads, regs, per_warp, o.warps_per_block, counted_warps,
                              lim->sub_partitions, (long)per_warp * counted_warps,
                              lim->regs_per_block);
        int warps_per_sub = lim->regs_per_sm / lim->sub_partitions / per_warp;
        o.blocks_by_regs = warps_per_sub * lim->sub_partitions / o.warps_per_block;
    }

    /* shared memory: request + reservation in allocation units, within the carve-out */
    size_t unit = lim->smem_alloc_unit;
    size_t need = launch->smem_per_block + lim->smem_reserved_per_block;
    o.smem_per_block = (need + unit - 1) / unit * unit;
    size_t preferred = launch->carveout_pct < 0
                           ? lim->smem_per_sm
                           : (size_t)launch->carveout_pct * lim->smem_per_sm / 100;
    size_t carve = carveout_at_least(lim, preferred);
    if (carve < o.smem_per_block)
        carve = carveout_at_least(lim, o.smem_per_block);
    if (carve == 0 && o.smem_per_block > 0) /* cannot happen with the tables above */
        return us_err_set(err, USHER_ERR_INTERNAL,
                          "shared memory: no carve-out of compute capability %d.%d holds %zu "
                          "bytes",
                          cc1, cc2, o.smem_per_block);
    o.smem_per_sm = carve;
    o.blocks_by_smem = o.smem_per_block ? (int)(carve / o.smem_per_block) : GPU_OCC_UNLIMITED;

    int b = o.blocks_by_warps;
    if (o.blocks_by_regs < b)
        b = o.blocks_by_regs;
    if (o.blocks_by_smem < b)
        b = o.blocks_by_smem;
    if (o.blocks_by_slots < b)
        b = o.blocks_by_slots;
    if (b < 1) /* the checks above rule this out */
        return us_err_set(err, USHER_ERR_INTERNAL,
                          "occupancy: no block fits (warps %d, registers %d, shared memory %d, "
                          "slots %d)",
                          o.blocks_by_warps, o.blocks_by_regs, o.blocks_by_smem,
                          o.blocks_by_slots);
    o.blocks_per_sm = b;
    o.limiters = (o.blocks_by_warps == b ? GPU_OCC_LIMIT_WARPS : 0u) |
                 (o.blocks_by_regs == b ? GPU_OCC_LIMIT_REGISTERS : 0u) |
                 (o.blocks_by_smem == b ? GPU_OCC_LIMIT_SMEM : 0u) |
                 (o.blocks_by_slots == b ? GPU_OCC_LIMIT_BLOCKS : 0u);
    o.active_warps_per_sm = b * o.warps_per_block;
    o.occupancy = (double)o.active_warps_per_sm / o.max_warps_per_sm;
    *out = o;
    return USHER_OK;
}

const char *gpu_occ_limiters_str(unsigned limiters, char *buf, size_t n)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{GPU_OCC_LIMIT_WARPS, "warps"},
                 {GPU_OCC_LIMIT_REGISTERS, "registers"},
                 {GPU_OCC_LIMIT_SMEM, "shared memory"},
                 {GPU_OCC_LIMIT_BLOCKS, "block slots"}};
    if (!buf || n == 0)
        return "";
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(limiters & names[i].bit) || used >= n)
            continue;
        int w = snprintf(buf + used, n - used, "%s%s", used ? "+" : "", names[i].name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (!buf[0])
        snprintf(buf, n, "none");
    return buf;
}
