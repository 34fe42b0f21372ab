/*
 * mig.c - MIG instances as GPU types derived from their parent (layer 2).
 *
 * A MIG GPU instance gets whole GPCs ("compute slices", the "3" of 3g.40gb)
 * and whole memory slices (a memory controller with its HBM and its part of
 * the L2): 7 and 8 of them on A100/H100/H200/B200, 4 and 4 on A30. The
 * tables below give, per product, each GPU-instance profile NVIDIA
 * publishes: name, compute slices, memory slices, how many fit on one GPU,
 * and the SMs the instance exposes where a listing of it exists
 * (docs/internals/gpu.md cites each). SM counts are not a fixed fraction of
 * the GPU: an A100's 7g instance has 98 of 108 SMs (14 per GPC), and on
 * 132-SM Hopper parts 1g.20gb gets 26 SMs against 16 for 1g.10gb.
 *
 * Derivation of an instance from its parent P (gpu.h documents the fields):
 *   sm_count          the listed count; where none is published (sms 0
 *                     below) the GPC fraction of P's SMs, rounded down to
 *                     an even number (SMs come in TPC pairs) - flagged
 *                     GPU_MIG_SM_DERIVED
 *   compute fraction  sm_count / P.sm_count: scales fp32, fp16 tensor, int8
 *   memory fraction   memory slices / total: scales L2, memory, bandwidth
 *   share             max(compute slices / total, memory slices / total):
 *                     the part of the GPU the instance takes from others;
 *                     scales TDP and price. Not the SM fraction: a 7g
 *                     instance leaves nothing for anyone else, so it costs
 *                     the whole GPU even though 10 of an A100's SMs idle;
 *                     and a 1g.20gb (one GPC, two memory slices, at most 4
 *                     per GPU) costs a quarter, not a seventh.
 *   per-SM limits, clock, architecture, compute capability: P's
 *   mig_max_instances 0 (an instance is not partitioned further here)
 * A number P leaves unknown stays unknown in the instance.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "gpu_impl.h"

typedef struct mig_profile_def {
    const char *name;
    int gpcs, mem_slices, max_count;
    int sms; /* SMs of the instance; 0: not published, derived */
} mig_profile_def;

typedef struct mig_table {
    const char *gpu_key; /* catalog key of the product */
    int gpcs_total, mem_slices_total;
    gpu_mig_sm_basis basis; /* of the published SM counts */
    const char *sm_source;  /* short provenance of the SM counts */
    const mig_profile_def *profiles;
    size_t n_profiles;
} mig_table;

/* A100: 14 SMs per GPC in every profile, 98 in 7g. */
static const mig_profile_def a100_40gb[] = {
    {"1g.5gb", 1, 1, 7, 14},  {"1g.5gb+me", 1, 1, 1, 14}, {"1g.10gb", 1, 2, 4, 14},
    {"2g.10gb", 2, 2, 3, 28}, {"3g.20gb", 3, 4, 2, 42},   {"4g.20gb", 4, 4, 1, 56},
    {"7g.40gb", 7, 8, 1, 98},
};
static const mig_profile_def a100_80gb[] = {
    {"1g.10gb", 1, 1, 7, 14}, {"1g.10gb+me", 1, 1, 1, 14}, {"1g.20gb", 1, 2, 4, 14},
    {"2g.20gb", 2, 2, 3, 28}, {"3g.40gb", 3, 4, 2, 42},    {"4g.40gb", 4, 4, 1, 56},
    {"7g.80gb", 7, 8, 1, 98},
};
/* A30: 4 compute and 4 memory slices; 1/4, 2/4, 4/4 of its 56 SMs. */
static const mig_profile_def a30[] = {
    {"1g.6gb", 1, 1, 4, 14},  {"1g.6gb+me", 1, 1, 1, 14},  {"2g.12gb", 2, 2, 2, 28},
    {"2g.12gb+me", 2, 2, 1, 28}, {"4g.24gb", 4, 4, 1, 56},
};
/* 132-SM GH100 (H100 SXM5): counts as listed for the H200, same die and SMs. */
static const mig_profile_def h100_sxm[] = {
    {"1g.10gb", 1, 1, 7, 16}, {"1g.10gb+me", 1, 1, 1, 16}, {"1g.20gb", 1, 2, 4, 26},
    {"2g.20gb", 2, 2, 3, 32}, {"3g.40gb", 3, 4, 2, 60},    {"4g.40gb", 4, 4, 1, 64},
    {"7g.80gb", 7, 8, 1, 132},
};
/* 114-SM H100 PCIe: no published SM counts; derived. */
static const mig_profile_def h100_pcie[] = {
    {"1g.10gb", 1, 1, 7, 0}, {"1g.10gb+me", 1, 1, 1, 0}, {"1g.20gb", 1, 2, 4, 0},
    {"2g.20gb", 2, 2, 3, 0}, {"3g.40gb", 3, 4, 2, 0},    {"4g.40gb", 4, 4, 1, 0},
    {"7g.80gb", 7, 8, 1, 0},
};
static const mig_profile_def h200[] = {
    {"1g.18gb", 1, 1, 7, 16}, {"1g.18gb+me", 1, 1, 1, 16}, {"1g.35gb", 1, 2, 4, 26},
    {"2g.35gb", 2, 2, 3, 32}, {"3g.71gb", 3, 4, 2, 60},    {"4g.71gb", 4, 4, 1, 64},
    {"7g.141gb", 7, 8, 1, 132},
};
/* B200: 1g/2g listed; 3g, 4g, 7g not found in any listing, derived. */
static const mig_profile_def b200[] = {
    {"1g.23gb", 1, 1, 7, 18}, {"1g.23gb+me", 1, 1, 1, 18}, {"1g.45gb", 1, 2, 4, 30},
    {"2g.45gb", 2, 2, 3, 36}, {"3g.90gb", 3, 4, 2, 0},     {"4g.90gb", 4, 4, 1, 0},
    {"7g.180gb", 7, 8, 1, 0},
};

#define TABLE_(key, g, m, basis, src, arr) {key, g, m, basis, src, arr, sizeof arr / sizeof arr[0]}
static const mig_table tables[] = {
    TABLE_("a30", 4, 4, GPU_MIG_SM_LISTED, "MIG user guide A30 table (SM fractions of 56)", a30),
    TABLE_("a100-40gb", 7, 8, GPU_MIG_SM_LISTED, "NVIDIA go-nvml A100 profile data", a100_40gb),
    TABLE_("a100-80gb", 7, 8, GPU_MIG_SM_LISTED, "NVIDIA go-nvml A100 profile data", a100_80gb),
    TABLE_("h100-sxm", 7, 8, GPU_MIG_SM_SAME_DIE,
           "nvidia-smi listing of the H200, same 132-SM GH100", h100_sxm),
    TABLE_("h100-pcie", 7, 8, GPU_MIG_SM_DERIVED, "no published counts", h100_pcie),
    TABLE_("h200", 7, 8, GPU_MIG_SM_LISTED, "nvidia-smi mig -lgip listing of the H200", h200),
    TABLE_("b200", 7, 8, GPU_MIG_SM_LISTED, "nvidia-smi mig -lgip listing of the B200", b200),
};
#undef TABLE_
#define N_TABLES (sizeof tables / sizeof tables[0])

static const mig_table *table_for(const char *key)
{
    for (size_t i = 0; i < N_TABLES; i++)
        if (strcmp(tables[i].gpu_key, key) == 0)
            return &tables[i];
    return NULL;
}

int gpu_mig_has_table(const char *key) { return table_for(key) != NULL; }

const char *gpu_mig_table_keys(void)
{
    return "a30, a100-40gb, a100-80gb, h100-sxm, h100-pcie, h200, b200";
}

static const char *basis_text(gpu_mig_sm_basis b)
{
    switch (b) {
    case GPU_MIG_SM_LISTED:
        return "listed";
    case GPU_MIG_SM_SAME_DIE:
        return "as listed for the same die";
    case GPU_MIG_SM_DERIVED:
        return "derived";
    case GPU_MIG_SM_NONE:
        break;
    }
    return "?";
}

static char *arena_printf(us_arena *a, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static char *arena_printf(us_arena *a, size_t cap, const char *fmt, ...)
{
    char *s = us_arena_alloc(a, cap);
    if (!s)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, cap, fmt, ap);
    va_end(ap);
    return s;
}

#define KNOWN_(t, f) gpu_known(t, f)
#define BIT_(f) (1u << (unsigned)(f))

static gpu_type *derive(gpu_catalog *c, const gpu_type *p, const mig_table *tb,
                        const mig_profile_def *d)
{
    gpu_type *t = us_arena_alloc(&c->arena, sizeof *t);
    if (!t)
        return NULL;
    *t = *p; /* strings, per-SM limits, clock, compute capability, known bits */
    t->csv_line = 0;
    t->n_mig_profiles = 0;
    t->mig_profile_names = NULL;
    t->is_mig = true;
    t->parent = p;
    t->parent_key = p->key;
    t->mig_profile = d->name;
    t->mig_gpcs = d->gpcs;
    t->mig_gpcs_total = tb->gpcs_total;
    t->mig_mem_slices = d->mem_slices;
    t->mig_mem_slices_total = tb->mem_slices_total;
    t->mig_profile_max_count = d->max_count;

    double gpc_frac = (double)d->gpcs / tb->gpcs_total;
    if (d->sms > 0) {
        t->sm_count = d->sms;
        t->known |= BIT_(GPU_F_SM_COUNT);
        t->mig_sm_basis = tb->basis;
    } else {
        t->mig_sm_basis = GPU_MIG_SM_DERIVED;
        if (KNOWN_(p, GPU_F_SM_COUNT))
            t->sm_count = (int)((double)p->sm_count * gpc_frac / 2.0) * 2;
        else
            t->sm_count = 0;
    }
    t->mig_compute_fraction = KNOWN_(p, GPU_F_SM_COUNT) && p->sm_count > 0 &&
                                      KNOWN_(t, GPU_F_SM_COUNT)
                                  ? (double)t->sm_count / p->sm_count
                                  : gpc_frac;
    t->mig_memory_fraction = (double)d->mem_slices / tb->mem_slices_total;
    t->mig_share = gpc_frac > t->mig_memory_fraction ? gpc_frac : t->mig_memory_fraction;

    t->l2_mb = p->l2_mb * t->mig_memory_fraction;
    t->mem_gb = p->mem_gb * t->mig_memory_fraction;
    t->mem_bw_gbs = p->mem_bw_gbs * t->mig_memory_fraction;
    t->fp32_tflops = p->fp32_tflops * t->mig_compute_fraction;
    t->fp16_tensor_tflops = p->fp16_tensor_tflops * t->mig_compute_fraction;
    t->int8_tops = p->int8_tops * t->mig_compute_fraction;
    t->tdp_w = p->tdp_w * t->mig_share;
    t->price_per_hour = p->price_per_hour * t->mig_share;
    t->mig_max_instances = 0;
    t->known |= BIT_(GPU_F_MIG_MAX_INSTANCES);

    t->key = arena_printf(&c->arena, strlen(p->key) + strlen(d->name) + 2, "%s:%s", p->key,
                          d->name);
    t->name = arena_printf(&c->arena, strlen(p->name) + strlen(d->name) + 6, "%s MIG %s",
                           p->name, d->name);
    if (t->mig_sm_basis == GPU_MIG_SM_DERIVED && KNOWN_(t, GPU_F_SM_COUNT))
        t->source = arena_printf(&c->arena, 256,
                                 "MIG %s of %s: %d/%d GPCs, %d/%d memory slices, %d SMs (derived: "
                                 "%d/%d of %d SMs, rounded down to even; no published count)",
                                 d->name, p->key, d->gpcs, tb->gpcs_total, d->mem_slices,
                                 tb->mem_slices_total, t->sm_count, d->gpcs, tb->gpcs_total,
                                 p->sm_count);
    else if (KNOWN_(t, GPU_F_SM_COUNT))
        t->source = arena_printf(&c->arena, 256,
                                 "MIG %s of %s: %d/%d GPCs, %d/%d memory slices, %d SMs (%s: %s)",
                                 d->name, p->key, d->gpcs, tb->gpcs_total, d->mem_slices,
                                 tb->mem_slices_total, t->sm_count,
                                 basis_text(t->mig_sm_basis), tb->sm_source);
    else
        t->source = arena_printf(&c->arena, 256,
                                 "MIG %s of %s: %d/%d GPCs, %d/%d memory slices, SMs unknown",
                                 d->name, p->key, d->gpcs, tb->gpcs_total, d->mem_slices,
                                 tb->mem_slices_total);
    if (!t->key || !t->name || !t->source)
        return NULL;
    return t;
}

int gpu_mig_build(gpu_catalog *c, usher_error *err)
{
    size_t extra = 0;
    for (size_t i = 0; i < c->n_gpus; i++) {
        const mig_table *tb = table_for(c->types[i]->key);
        if (tb && c->types[i]->mig_max_instances > 0)
            extra += tb->n_profiles;
    }
    if (extra == 0)
        return USHER_OK;
    gpu_type **all = us_arena_array(&c->arena, c->n_gpus + extra, sizeof *all);
    if (!all)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory deriving MIG instances");
    memcpy(all, c->types, c->n_gpus * sizeof *all);
    size_t n = c->n_gpus;
    for (size_t i = 0; i < c->n_gpus; i++) {
        gpu_type *p = all[i];
        const mig_table *tb = table_for(p->key);
        if (!tb || p->mig_max_instances <= 0)
            continue;
        const char **names = us_arena_array(&c->arena, tb->n_profiles, sizeof *names);
        if (!names)
            return us_err_set(err, USHER_ERR_NOMEM, "out of memory deriving MIG instances");
        for (size_t k = 0; k < tb->n_profiles; k++) {
            gpu_type *t = derive(c, p, tb, &tb->profiles[k]);
            if (!t)
                return us_err_set(err, USHER_ERR_NOMEM, "out of memory deriving MIG instance %s:%s",
                                  p->key, tb->profiles[k].name);
            names[k] = tb->profiles[k].name;
            all[n++] = t;
        }
        p->mig_profile_names = names;
        p->n_mig_profiles = tb->n_profiles;
    }
    c->types = all;
    c->n_all = n;
    return USHER_OK;
}
