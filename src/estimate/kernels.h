/*
 * kernels.h - from IR operators to GPU kernels, and what each kernel costs
 * on a given GPU (layer 4, the estimator's lower half: kmap.c, ktime.c,
 * calib.c, calibrate.c; its tools and tests include it as
 * "estimate/kernels.h").
 *
 * Two steps, split so that the expensive one is done once per model:
 *   gpu_kmap_model   walks an inferred IR model and lists the kernels a
 *                    cuDNN/cuBLAS-based engine (ONNX Runtime's CUDA provider)
 *                    launches for it: GEMM problems (MatMul, Gemm, and
 *                    convolutions as implicit GEMMs), depthwise convolutions,
 *                    elementwise, reduction, softmax, normalisation, pooling,
 *                    data movement and recurrent steps, with their FLOPs and
 *                    DRAM bytes at a precision. It does not depend on the GPU.
 *   gpu_ktime        times one kernel problem on one GPU type with a budget of
 *                    SMs (the MPS share), choosing the launch (GEMM tile,
 *                    split-K) a library would choose - the fastest - and
 *                    reporting grid, block, registers, shared memory,
 *                    occupancy, compute share, bandwidth and energy.
 * The timing model is a roofline with wave quantisation over the SMs the
 * kernel may use, an occupancy-limited issue rate and a fixed cost per
 * kernel, corrected by a per-GPU calibration table (gpu_calib). The
 * definitions and the reasons behind them are in docs/internals/estimate.md.
 */
#ifndef EST_KERNELS_H
#define EST_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "gpu/gpu.h"
#include "ir/ir.h"

typedef enum gpu_precision {
    GPU_PREC_FP32 = 0, /* FP32 everywhere, SIMT FMA */
    GPU_PREC_TF32,     /* FP32 storage, TF32 tensor cores for GEMM/conv (CC >= 8.0) */
    GPU_PREC_FP16,     /* FP16 storage, FP16 tensor cores for GEMM/conv (CC >= 7.0) */
    GPU_PREC_INT8,     /* INT8 storage and tensor cores (CC >= 7.5), FP32 accumulate */
    GPU_PREC_COUNT
} gpu_precision;

const char *gpu_precision_name(gpu_precision p); /* "fp32" ... */
int gpu_precision_parse(const char *s);          /* -1 if unknown */

typedef enum gpu_kclass {
    GPU_K_GEMM,      /* cuBLAS GEMM, implicit-GEMM convolution (cuDNN) */
    GPU_K_DEPTHWISE, /* grouped convolution with one or few channels per group */
    GPU_K_ELEMWISE,  /* pointwise, broadcast, casts */
    GPU_K_REDUCE,    /* reductions, arg-reductions, top-k, cumulative sums */
    GPU_K_SOFTMAX,
    GPU_K_NORM,      /* batch/layer/instance/group normalisation */
    GPU_K_POOL,
    GPU_K_MOVE,      /* transpose, concat, split, slice, gather, pad, resize, expand, ... */
    GPU_K_UNKNOWN,   /* an operator usher cannot map: a conservative memory-bound kernel */
    GPU_K_COUNT
} gpu_kclass;

const char *gpu_kclass_name(gpu_kclass k);

/* One kernel launch (or `repeat` identical launches in sequence), GPU-independent. */
typedef struct gpu_kprob {
    gpu_kclass cls;
    uint32_t node;        /* index into gpu_kplan.nodes */
    uint32_t repeat;      /* sequential launches (RNN time steps); >= 1 */
    /* GEMM: C[batch][m][n] = A[m][k] B[k][n] */
    int64_t m, n, k, batch;
    bool tensor;          /* eligible for tensor cores at this precision */
    bool conv;            /* an implicit-GEMM convolution (cuDNN), not a cuBLAS GEMM */
    bool winograd;        /* 3x3, stride 1, dilation 1: cuDNN may use Winograd F(2x2,3x3) */
    /* every class */
    int64_t parallel;     /* independent work items (output elements, rows) */
    double flops;         /* useful floating-point operations, all launches */
    double bytes;         /* DRAM bytes read and written, all launches (unique data) */
    double weight_bytes;  /* of which constant (weights) */
    double elem_bytes;    /* element size of the activations at this precision */
    uint32_t dag_preds[4];/* kernels this one waits for (indices; UINT32_MAX unused) */
} gpu_kprob;

typedef struct gpu_fusion {
    bool conv_act;        /* Conv followed by Relu: one kernel (ONNX Runtime FusedConv) */
    bool gelu;            /* the Erf GELU subgraph: one kernel (GeluFusion / BiasGelu) */
    bool skip_layernorm;  /* Add then LayerNormalization: one kernel (SkipLayerNorm) */
    bool all_elementwise; /* every elementwise op fused into its producer (TensorRT-like) */
} gpu_fusion;

gpu_fusion gpu_fusion_named(const char *name, bool *ok); /* "none", "ort", "full" */

/* The kernel list of a model at one batch size and precision. */
typedef struct gpu_kplan {
    gpu_kprob *k;
    uint32_t n, cap;
    const ir_node **nodes; /* the IR node behind each kernel (by gpu_kprob.node) */
    uint32_t n_nodes;
    uint32_t n_unknown;    /* nodes mapped with the conservative default */
    char unknown_op[64];   /* the first of them, for the warning */
    double weight_bytes;   /* all weights at this precision */
    double io_bytes;       /* inputs + outputs of the model that cross PCIe (not a KV cache) */
    double peak_activation_bytes; /* liveness peak at this precision */
    double total_flops;
    bool exact;            /* every dim was known */
} gpu_kplan;

/*
 * Map every node of an inferred model (main graph; subgraph nodes of If take
 * the costlier branch, Loop bodies once per known trip). Returns USHER_OK,
 * USHER_ERR_NOMEM, or USHER_ERR_SHAPE when the model has tensors of unknown
 * shape (err names one: a dynamic dim without a binding).
 */
int gpu_kmap_model(const ir_model *m, gpu_precision prec, const gpu_fusion *fusion,
                   gpu_kplan *plan, usher_error *err);
void gpu_kplan_free(gpu_kplan *plan);

/* ---- calibration ---------------------------------------------------------------- */
typedef struct gpu_calib {
    char gpu[64];          /* GPU key the row is for ("*" = any) */
    char framework[32];    /* what was measured: "onnxruntime-cuda", "pytorch-eager", ... */
    char source[320];      /* where the numbers came from */
    bool calibrated;       /* false: the built-in defaults */
    double eff_gemm;       /* fraction of FP32 SIMT peak a large SGEMM reaches */
    double eff_tensor;     /* fraction of tensor-core peak a large GEMM reaches */
    double eff_conv;       /* implicit-GEMM convolution relative to GEMM */
    double eff_mem;        /* fraction of DRAM bandwidth a streaming kernel reaches */
    double eff_depthwise;  /* fraction of FP32 peak of depthwise convolutions */
    double kernel_us;      /* fixed GPU time of any kernel (launch, ramp, tail), us */
    double launch_us;      /* host time to issue one kernel (runtime + framework), us */
    double fixed_us;       /* per inference (session run, synchronisation), us */
    double copy_us_per_mb; /* host<->device copy of inputs and outputs, us per MB; 0: none */
    double context_mb;     /* CUDA context, libraries and runtime, MB */
    double workspace_mb;   /* cuBLAS/cuDNN workspace, MB */
    double idle_power_frac;/* idle power / TDP */
    char fusion[16];       /* "none", "ort", "full" */
    /* the GPU the row was measured or fitted on, so that another GPU of its
     * architecture family can borrow it (gpu_calib_lookup); written by the fitters */
    char arch[16];         /* "volta", "turing", "ampere", "ada", "hopper", "blackwell"; "" unknown */
    double sms;            /* its SM count (0: unknown) */
    double clock_mhz;      /* its boost clock, MHz (0: unknown) */
    /* coefficients (bit i: gpu_calib_bounds()[i]) the row's measurements did not
     * determine: the fit could move them by 2x (costs: by half their value or a
     * tenth of their range) at almost no change of its error (GPU_CALIB_UNDETERMINED_TOL).
     * A lookup takes those from the next row of the borrow order that determined
     * them, or the defaults, never from this row. 0: all determined (a measured or
     * hand-written row). File key `undetermined = eff_gemm eff_depthwise`. */
    uint32_t undetermined;
    /* set by gpu_calib_lookup, not a file key: which row answered and how */
    char used[320];        /* "[a100-80gb pytorch-eager]" or "borrowed from [...], Ampere family" */
    bool borrowed;         /* the row is another GPU's or engine's */
} gpu_calib;

gpu_calib gpu_calib_default(void);
/*
 * The built-in defaults for one engine: gpu_calib_default() with the engine's
 * name, its fusion and the host costs its nature sets (PyTorch eager's per-operator
 * dispatch; docs/calibration.md "Engine priors"). What a lookup uses where no row
 * of that engine says otherwise: host costs when another engine's row stands in,
 * coefficients a row did not determine, no row at all. NULL or an engine usher
 * does not know: gpu_calib_default().
 */
gpu_calib gpu_calib_engine_default(const char *framework);
/*
 * The calibration table: text in the format of docs/calibration.md
 * ("[gpu-key framework]" sections of "name = value" lines). Rows for a MIG
 * instance fall back to the parent GPU's row, then to "*", then to the
 * defaults. Errors name the line.
 */
typedef struct gpu_calib_table {
    gpu_calib *rows;
    uint32_t n;
} gpu_calib_table;

int gpu_calib_parse(const char *text, size_t len, const char *label, gpu_calib_table *out,
                    usher_error *err);
int gpu_calib_load(const char *path, gpu_calib_table *out, usher_error *err);
void gpu_calib_table_free(gpu_calib_table *t);
/*
 * The row for a GPU type and framework (framework NULL: the first row of that GPU).
 * Order: the GPU's own row; a MIG instance's parent; "*"; then a row borrowed
 * (docs/calibration.md "Borrowing"): the same engine on the nearest GPU of the
 * same architecture family, then a related engine (gpu_calib_kin) on this GPU
 * or its family, then the nearest other family. A borrowed row has kernel_us
 * scaled by the clocks, the requested engine's framework and fusion, borrowed
 * true and `used` saying what it came from. *found: some row answered.
 */
gpu_calib gpu_calib_lookup(const gpu_calib_table *t, const gpu_type *g, const char *framework,
                           bool *found);
/* Architecture family of a CUDA GPU from its compute capability ("" if none). */
const char *gpu_arch_family(const gpu_type *g);
/* Engines whose rows stand in for `framework`'s, nearest first (NULL-terminated). */
const char *const *gpu_calib_kin(const char *framework);

/*
 * The bounded fit (shared by tools/accuracy and usher calibrate). Physical
 * ranges of the fitted coefficients (docs/calibration.md): an efficiency is at
 * most 1, launch and fixed costs within the documented bounds.
 */
typedef struct gpu_calib_bound {
    const char *name;
    size_t off;            /* offsetof(gpu_calib, field) */
    double lo, hi;
} gpu_calib_bound;
const gpu_calib_bound *gpu_calib_bounds(size_t *n);
/* A coefficient is undetermined by a fit's observations when moving it (x2 or /2
 * for an efficiency; by max(half its value, a tenth of its range) for a cost)
 * raises the fit's mean |ln(pred / measured)| by less than this: 0.5%. */
#define GPU_CALIB_UNDETERMINED_TOL 0.005
/* Clamp every bounded coefficient of c into its range; returns how many moved. */
int gpu_calib_clamp(gpu_calib *c);

/* predicted latency of observation i with coefficients c (<= 0 or NaN: cannot) */
typedef double (*gpu_calib_predict_fn)(void *ctx, size_t i, const gpu_calib *c);
typedef struct gpu_calib_fit_stats {
    size_t n;              /* observations */
    double log_err_before, log_err_after; /* mean |ln(pred / measured)| */
    double mape, median_ape, p90_ape, max_ape; /* absolute % errors after the fit, as fractions */
    double bias;           /* mean signed (pred - measured) / measured */
    char at_bound[160];    /* coefficients the fit pushed to a physical bound ("eff_gemm=1") */
    uint32_t undetermined; /* coefficients the observations did not determine (gpu_calib) */
    char undetermined_names[160]; /* the same, by name ("eff_gemm eff_depthwise") */
} gpu_calib_fit_stats;
/*
 * Fit the bounded coefficients of c (those of gpu_calib_bounds that `mask`
 * selects by index; mask 0: all) to n measured latencies by coordinate
 * descent on the mean absolute log error, never leaving the physical ranges.
 * resid (n entries, may be NULL) receives (pred - measured) / measured per
 * observation. Returns USHER_OK, USHER_ERR_INVALID (n == 0, a measurement not
 * > 0) or USHER_ERR_NOMEM.
 */
int gpu_calib_fit(gpu_calib *c, uint32_t mask, size_t n, const double *measured,
                  gpu_calib_predict_fn predict, void *ctx, double *resid,
                  gpu_calib_fit_stats *st, usher_error *err);
/* The error summary of n relative residuals (pred - measured) / measured:
 * n, mape, median_ape, p90_ape (nearest rank), max_ape, bias. */
int gpu_calib_stats(const double *resid, size_t n, gpu_calib_fit_stats *st, usher_error *err);
/* Write one row in the file format (appends to buf of size n; returns chars needed). */
int gpu_calib_format(const gpu_calib *c, char *buf, size_t n);

/*
 * Measure the GPU `device` of this machine with micro-benchmarks (calibrate.c)
 * and fill a calibration row for framework onnxruntime-cuda. gpu_key names its
 * catalog row (NULL: matched by SM count and compute capability). report, if
 * not NULL, receives the measurements as text. Errors: USHER_ERR_UNSUPPORTED
 * when there is no CUDA runtime, driver or GPU (the message says which),
 * USHER_ERR_NOT_FOUND for an unknown device, USHER_ERR_IO for a failing call.
 */
int gpu_calibrate_device(const gpu_catalog *cat, const char *gpu_key, int device, gpu_calib *row,
                         const gpu_type **gpu_out, char *report, size_t report_len,
                         usher_error *err);

/* ---- timing ------------------------------------------------------------------------ */
typedef struct gpu_budget {
    const gpu_type *gpu;
    gpu_sm_limits lim;     /* from gpu_sm_limits_for_type */
    int sms;               /* SMs the replica may use (share x SMs, >= 1) */
    double share;          /* sms / gpu->sm_count */
    gpu_precision prec;
    const gpu_calib *cal;
    double peak_simt;      /* FLOP/s of FP32 SIMT, whole GPU */
    double peak_tensor;    /* FLOP/s of the tensor path at prec (0: none) */
    double bw;             /* bytes/s, whole GPU */
} gpu_budget;

/* Prepare a budget; share in (0, 1]. Errors: unknown SM count, unsupported precision. */
int gpu_budget_init(gpu_budget *b, const gpu_type *g, double share, gpu_precision prec,
                    const gpu_calib *cal, usher_error *err);

typedef struct gpu_ktime {
    double seconds;        /* GPU time of all launches of the problem */
    double compute_s, memory_s; /* the two roofline terms (sum over launches) */
    double share;          /* compute share: see docs/internals/estimate.md */
    double sm_share, bw_share;
    double sm_util;        /* fraction of the budget's issue capacity used while running */
    double dram_bytes;     /* bytes actually moved (tile re-reads included) */
    double l2_bytes;       /* working set of the largest launch */
    uint32_t launches;     /* kernels launched (split-K adds a reduction) */
    const char *algo;      /* the algorithm chosen: "gemm", "gemv", "winograd"
                              (F(2x2,3x3)), "winograd4" (F(4x4,3x3)),
                              "implicit-gemm", "direct" (depthwise), "stream" */
    /* the launch chosen (for GEMMs: the tile) */
    int64_t grid;
    int block, regs, smem;
    int tile_m, tile_n, split_k;
    double occupancy;
    int blocks_per_sm;
} gpu_ktime;

void gpu_ktime_eval(const gpu_budget *b, const gpu_kprob *p, gpu_ktime *out);

#endif
