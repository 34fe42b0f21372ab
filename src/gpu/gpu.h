/*
 * gpu.h - GPU types, MIG instances and the CUDA occupancy calculator
 * (layer 2, on core only). The estimator, the planner and the server include
 * this header; the one loader of the CUDA libraries is cuda.h.
 *
 * The GPU catalog. A gpu_catalog holds one gpu_type per row of a GPU fact
 * sheet in CSV form: the copy of data/gpus.csv embedded at build time
 * (gpu_catalog_default), or a file or buffer in the same format. The format
 * and its checks are described at the top of catalog.c and in
 * docs/internals/gpu.md. Numbers the sheet leaves empty are unknown: the
 * field holds 0 and its bit in gpu_type.known is clear - nothing is guessed.
 *
 * MIG instances. A GPU whose row has mig_max_instances > 0 and for which
 * usher has a MIG profile table (mig.c: A30, A100 40/80 GB, H100 SXM/PCIe,
 * H200, B200) also yields one gpu_type per profile, keyed "<gpu>:<profile>"
 * ("a100-80gb:3g.40gb"). Instances are derived from their parent when the
 * catalog is built: its SMs, its share of L2, memory and bandwidth (memory
 * slices), peak throughputs scaled with its SMs, TDP and price scaled by
 * the share of the GPU it occupies. Deriving them up front (about fifty
 * types, a few KB) rather than on first lookup keeps lookups free of
 * allocation and failure, and lets one const catalog be shared by threads.
 *
 * The occupancy calculator. gpu_occupancy_calc applies CUDA's residency
 * rules (threads in whole warps, registers per warp in 256-register units
 * spread over 4 sub-partitions, shared memory in 128/256-byte units plus
 * the driver's 1 KB per block from compute capability 8.0, the per-SM
 * carve-out sizes, the block-slot limit) to one kernel launch on one SM.
 * It reproduces NVIDIA's cuda_occupancy.h on every case of the golden table
 * in tests/test_gpu.c (tools/occupancy/golden.cpp made it).
 *
 * Everything here but gpu_device_count is plain data and pure functions: no
 * GPU, no driver.
 */
#ifndef GPU_H
#define GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usher/status.h"

/* ---- catalog limits (untrusted CSV) -------------------------------------- */
#define GPU_CSV_MAX_BYTES ((size_t)1 << 20) /* whole file */
#define GPU_CSV_MAX_ROWS 256                /* data rows, header excluded */
#define GPU_CSV_MAX_COLS 64
#define GPU_CSV_MAX_FIELD 4096 /* bytes of one cell after unquoting */
#define GPU_KEY_MAX 63         /* bytes of a catalog key */

/* ---- GPU types ------------------------------------------------------------- */

/* Numeric fields of a gpu_type; bit (1u << f) of gpu_type.known says the value is known. */
typedef enum gpu_field {
    GPU_F_SM_COUNT,
    GPU_F_MAX_THREADS_PER_SM,
    GPU_F_MAX_BLOCKS_PER_SM,
    GPU_F_REGS_PER_SM,
    GPU_F_SMEM_PER_SM_KB,
    GPU_F_L2_MB,
    GPU_F_MEM_GB,
    GPU_F_MEM_BW_GBS,
    GPU_F_BOOST_CLOCK_MHZ,
    GPU_F_FP32_TFLOPS,
    GPU_F_FP16_TENSOR_TFLOPS,
    GPU_F_INT8_TOPS,
    GPU_F_TDP_W,
    GPU_F_MIG_MAX_INSTANCES,
    GPU_F_PRICE_PER_HOUR,
    GPU_F_COUNT
} gpu_field;

/* How the SM count of a MIG instance is known (docs/internals/gpu.md has the sources). */
typedef enum gpu_mig_sm_basis {
    GPU_MIG_SM_NONE = 0,   /* not a MIG instance */
    GPU_MIG_SM_LISTED,     /* NVIDIA's profile listing for this product */
    GPU_MIG_SM_SAME_DIE,   /* listing of a product with the same die and SM count */
    GPU_MIG_SM_DERIVED     /* not published: GPC fraction of the parent's SMs, even */
} gpu_mig_sm_basis;

typedef struct gpu_type gpu_type;

struct gpu_type {
    const char *key;    /* "a100-80gb"; a MIG instance: "a100-80gb:3g.40gb" */
    const char *name;   /* "A100-SXM4-80GB"; a MIG instance: "A100-SXM4-80GB MIG 3g.40gb" */
    const char *arch;   /* "Ampere (GA100)"; may be "" */
    const char *cc;     /* compute_capability as written: "8.0", or "gfx942" (AMD) */
    bool is_cuda;       /* cc is MAJOR.MINOR: an NVIDIA GPU the occupancy rules apply to */
    int cc_major, cc_minor; /* 0 when !is_cuda */

    /* Numbers. 0 with the known bit clear means the sheet left the cell empty. */
    int sm_count;            /* SMs enabled (compute units for AMD) */
    int max_threads_per_sm;  /* resident threads per SM */
    int max_blocks_per_sm;   /* resident blocks per SM */
    int regs_per_sm;         /* 32-bit registers per SM */
    int smem_per_sm_kb;      /* largest shared-memory carve-out per SM, KiB */
    double l2_mb;            /* L2 (AMD: last-level cache), MB */
    double mem_gb;           /* device memory, GB */
    double mem_bw_gbs;       /* peak memory bandwidth, GB/s */
    double boost_clock_mhz;  /* maximum boost clock, MHz */
    double fp32_tflops;      /* peak non-tensor FP32, TFLOPS */
    double fp16_tensor_tflops; /* peak dense FP16 tensor, TFLOPS */
    double int8_tops;        /* peak dense INT8 tensor, TOPS */
    double tdp_w;            /* board power limit, W */
    int mig_max_instances;   /* MIG instances per GPU; 0: no MIG; 0 for an instance */
    double price_per_hour;   /* on-demand USD per hour (column typical_cloud_usd_per_hour) */
    uint32_t known;          /* bit (1u << gpu_field) set when that number is known */
    const char *source;      /* provenance note of the row; "" if none */
    size_t csv_line;         /* line of the row in the catalog text; 0 for an instance */

    /* MIG instance fields (is_mig false: all zero / NULL) */
    bool is_mig;
    const gpu_type *parent;     /* the whole GPU */
    const char *parent_key;     /* parent->key */
    const char *mig_profile;    /* "3g.40gb" */
    int mig_gpcs;               /* compute slices (GPCs), the "3" of 3g */
    int mig_gpcs_total;         /* compute slices of the whole GPU: 7 (A30: 4) */
    int mig_mem_slices;         /* memory slices */
    int mig_mem_slices_total;   /* memory slices of the whole GPU: 8 (A30: 4) */
    int mig_profile_max_count;  /* instances of this profile that fit on one GPU */
    gpu_mig_sm_basis mig_sm_basis;
    double mig_compute_fraction; /* sm_count / parent sm_count (GPC fraction if unknown);
                                    scales fp32_tflops, fp16_tensor_tflops, int8_tops */
    double mig_memory_fraction;  /* mem slices / total: scales l2_mb, mem_gb, mem_bw_gbs */
    double mig_share;            /* max(gpcs / total, mem slices / total): the part of the
                                    GPU the instance occupies; scales tdp_w, price_per_hour */

    /* MIG profiles of a whole GPU (empty for instances and non-MIG GPUs) */
    size_t n_mig_profiles;
    const char *const *mig_profile_names; /* "1g.10gb", ... in the order of mig.c's table */
};

static inline bool gpu_known(const gpu_type *t, gpu_field f)
{
    return (t->known >> (unsigned)f) & 1u;
}
/* Column name of a numeric field ("sm_count"); "?" if out of range. */
const char *gpu_field_name(gpu_field f);

/* ---- the catalog ------------------------------------------------------------ */

typedef struct gpu_catalog gpu_catalog;

/*
 * Build the catalog from text[0..len) in the gpus.csv format; label names
 * the text in messages ("data/gpus.csv"). On success *out owns everything
 * (the text is not referenced afterwards). On failure *out is NULL, nothing
 * is leaked and err says which line and column broke which rule:
 * USHER_ERR_PARSE (syntax, missing column, bad number or key, duplicate
 * key), USHER_ERR_LIMIT (file, row, column or field limits above),
 * USHER_ERR_NOMEM.
 */
int gpu_catalog_parse(const char *text, size_t len, const char *label, gpu_catalog **out,
                      usher_error *err);
/*
 * The same from a file, which must be a regular file of at most
 * GPU_CSV_MAX_BYTES (else USHER_ERR_INVALID / USHER_ERR_LIMIT); a file that
 * cannot be opened gives USHER_ERR_NOT_FOUND or USHER_ERR_IO. Messages name
 * the path.
 */
int gpu_catalog_load(const char *path, gpu_catalog **out, usher_error *err);
/* The copy of data/gpus.csv embedded at build time. */
int gpu_catalog_default(gpu_catalog **out, usher_error *err);
void gpu_catalog_free(gpu_catalog *c); /* NULL allowed */

/* Whole GPUs (MIG instances not counted), in file order. */
size_t gpu_catalog_count(const gpu_catalog *c);
/* Whole GPU i, or NULL if i >= gpu_catalog_count(c). */
const gpu_type *gpu_catalog_at(const gpu_catalog *c, size_t i);
/* Every type including MIG instances: GPUs first, then instances by parent. */
size_t gpu_catalog_count_all(const gpu_catalog *c);
const gpu_type *gpu_catalog_at_all(const gpu_catalog *c, size_t i);

/*
 * Find "a100-80gb" or a MIG instance "a100-80gb:3g.40gb". On failure *out
 * is NULL and the return is USHER_ERR_NOT_FOUND with a message listing the
 * valid keys (unknown GPU) or that GPU's profiles (unknown profile), or
 * USHER_ERR_UNSUPPORTED when the GPU has no MIG profiles (no MIG, or no
 * profile table in usher, as for the MI300X's compute partitions).
 * The returned pointer lives as long as the catalog.
 */
int gpu_catalog_find(const gpu_catalog *c, const char *key, const gpu_type **out,
                     usher_error *err);

/*
 * MIG profile names of a whole GPU of the catalog (borrowed, live as long
 * as the catalog). A GPU without profiles - no MIG, no table in usher, or a
 * MIG instance itself - gives *n = 0. USHER_ERR_INVALID only for NULL
 * arguments.
 */
int gpu_mig_profiles(const gpu_type *parent, const char *const **names, size_t *n);

/* ---- occupancy -------------------------------------------------------------- */

/* Per-SM limits of one compute capability (what the occupancy rules read). */
typedef struct gpu_sm_limits {
    int cc_major, cc_minor;
    int warp_size;              /* 32 */
    int max_threads_per_block;  /* 1024 */
    int max_warps_per_sm;       /* resident warps per SM */
    int max_blocks_per_sm;      /* block slots per SM */
    int regs_per_sm;            /* 65536 */
    int regs_per_block;         /* 65536: the most one block may be allocated */
    int max_regs_per_thread;    /* 255 */
    int reg_alloc_unit;         /* registers are allocated per warp in units of 256 */
    int sub_partitions;         /* 4: registers are split evenly between them */
    size_t smem_per_sm;         /* largest shared-memory carve-out per SM, bytes */
    size_t smem_per_block_max;  /* largest request per block (the opt-in maximum), bytes */
    size_t smem_reserved_per_block; /* taken by the driver per block: 1024 from 8.0, else 0 */
    size_t smem_alloc_unit;     /* 256 (7.x) or 128 (8.0 on), bytes */
    const uint16_t *carveouts_kb; /* the carve-out sizes the SM supports, ascending, KiB */
    size_t n_carveouts;
} gpu_sm_limits;

/*
 * Limits of compute capability major.minor: 7.0, 7.5, 8.0, 8.6, 8.9, 9.0 and
 * 10.0. Others give USHER_ERR_UNSUPPORTED naming the ones known.
 */
int gpu_sm_limits_for_cc(int major, int minor, gpu_sm_limits *out, usher_error *err);
/*
 * Limits of a catalog GPU (or MIG instance): those of its compute
 * capability, checked against the per-SM numbers its row gives. A non-CUDA
 * GPU or an unknown compute capability gives USHER_ERR_UNSUPPORTED; a row
 * whose known per-SM numbers disagree with its compute capability gives
 * USHER_ERR_INVALID naming the field.
 */
int gpu_sm_limits_for_type(const gpu_type *t, gpu_sm_limits *out, usher_error *err);

/* One kernel launch, as far as residency is concerned. */
typedef struct gpu_launch {
    int threads_per_block; /* 1 .. max_threads_per_block */
    int regs_per_thread;   /* 0 .. 255; 0: none / unknown (registers never limit) */
    size_t smem_per_block; /* bytes of shared memory per block, static + dynamic, without the
                              driver's reservation; at most smem_per_block_max (a kernel over
                              48 KB is assumed to have opted in, as it must) */
    int carveout_pct;      /* shared-memory carve-out preference 0..100 (% of smem_per_sm);
                              -1: the driver's default (the largest) */
} gpu_launch;

/* threads_per_block 256, regs_per_thread 0, smem_per_block 0, carveout_pct -1. */
gpu_launch gpu_launch_default(void);

/* Bits of gpu_occupancy.limiters (same values as cudaOccLimitingFactor). */
typedef enum gpu_occ_limit {
    GPU_OCC_LIMIT_WARPS = 0x01,     /* resident warps per SM */
    GPU_OCC_LIMIT_REGISTERS = 0x02, /* registers per SM */
    GPU_OCC_LIMIT_SMEM = 0x04,      /* shared memory per SM */
    GPU_OCC_LIMIT_BLOCKS = 0x08     /* block slots per SM */
} gpu_occ_limit;

/* blocks_by_* value of a resource the launch does not use */
#define GPU_OCC_UNLIMITED INT32_MAX

typedef struct gpu_occupancy {
    int blocks_per_sm;       /* resident blocks per SM, >= 1 */
    int warps_per_block;     /* ceil(threads / 32) */
    int active_warps_per_sm; /* blocks_per_sm * warps_per_block */
    int max_warps_per_sm;
    double occupancy;        /* active_warps_per_sm / max_warps_per_sm, in (0, 1] */
    unsigned limiters;       /* gpu_occ_limit bits of every limit equal to blocks_per_sm */
    int blocks_by_warps, blocks_by_regs, blocks_by_smem, blocks_by_slots;
    int regs_per_block;      /* registers allocated to one block (0 if regs_per_thread 0) */
    size_t smem_per_block;   /* bytes allocated to one block: request + reservation, rounded */
    size_t smem_per_sm;      /* carve-out the calculation used, bytes */
} gpu_occupancy;

/*
 * Occupancy of `launch` on one SM with limits `lim`. On success *out is
 * filled. Errors (out untouched): USHER_ERR_INVALID for a field out of
 * range (threads 0 or over the block maximum, registers over 255,
 * carve-out outside -1..100); USHER_ERR_LIMIT when the block cannot be
 * resident at all (registers per block over regs_per_block, shared memory
 * over smem_per_block_max). The message names the field and the numbers.
 */
int gpu_occupancy_calc(const gpu_sm_limits *lim, const gpu_launch *launch, gpu_occupancy *out,
                       usher_error *err);
/* "warps+registers" style text of a limiters mask into buf; returns buf. */
const char *gpu_occ_limiters_str(unsigned limiters, char *buf, size_t n);

/*
 * CUDA devices this process can use (probe.c): 0 when there is no driver or
 * no device, with the reason in why. Creates no CUDA context.
 */
int gpu_device_count(char *why, size_t cap);

#endif
