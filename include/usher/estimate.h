/*
 * usher/estimate.h - what a model needs from a GPU, without running it.
 *
 * The estimator maps a model's operators to the kernels a cuDNN/cuBLAS
 * engine (ONNX Runtime's CUDA provider) would launch, times each kernel on
 * a GPU type from the catalog with a roofline-and-waves model corrected by
 * a calibration table, lays them on a timeline and reports a profile per
 * (model, GPU type, batch, compute share, precision): latency, compute
 * requirement (Creq), memory requirement (Mreq), bandwidth, L2 working set
 * and energy. The planner and the simulator consume nothing else about a
 * model. Method and accuracy: docs/internals/estimate.md, docs/accuracy.md.
 *
 *   usher_estimator *e;
 *   usher_estimator_new(NULL, &e, &err);
 *   usher_estimate_params p = usher_estimate_default_params();
 *   p.gpu = "a100-80gb"; p.batch = 8; p.share_pct = 50;
 *   usher_profile prof;
 *   usher_estimate(e, model, &p, &prof, &err);   // prof.latency_ms, prof.creq_pct, ...
 *
 * Results are cached per (model structure, GPU, batch, share, precision,
 * bindings); the cache is bounded. An estimator may be used by one thread
 * at a time.
 */
#ifndef USHER_ESTIMATE_H
#define USHER_ESTIMATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usher/model.h"
#include "usher/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct usher_estimator usher_estimator;

typedef enum usher_precision {
    USHER_PRECISION_FP32 = 0,
    USHER_PRECISION_TF32 = 1, /* tensor cores on compute capability >= 8.0 */
    USHER_PRECISION_FP16 = 2,
    USHER_PRECISION_INT8 = 3,
} usher_precision;

typedef struct usher_estimator_params {
    const char *gpu_catalog;  /* NULL: the catalog built into usher (data/gpus.csv) */
    const char *calibration;  /* NULL: the table built into usher (data/calibration.txt) */
    const char *framework;    /* calibration row to use; NULL: "onnxruntime-cuda" */
    int streams;              /* 1 (default): kernels in one stream, as ONNX Runtime runs
                                 them; 0: every kernel starts when its inputs are ready
                                 (USHER's timeline) */
    uint32_t cache_entries;   /* profiles kept; 0: 4096 */
} usher_estimator_params;

usher_estimator_params usher_estimator_default_params(void);

/* On failure *out is NULL and err says why (bad catalog or calibration file). */
int usher_estimator_new(const usher_estimator_params *p, usher_estimator **out, usher_error *err);
void usher_estimator_free(usher_estimator *e); /* NULL is fine */

typedef struct usher_estimate_params {
    const char *gpu;         /* catalog key: "a100-80gb", or a MIG instance "a100-80gb:3g.40gb" */
    int64_t batch;           /* >= 1 */
    double share_pct;        /* compute share in (0, 100]: the SMs the replica may use (MPS) */
    usher_precision precision;
    const usher_dim_binding *dims; /* other dynamic dims (sequence length, image size) */
    size_t n_dims;
} usher_estimate_params;

usher_estimate_params usher_estimate_default_params(void); /* batch 1, share 100, fp32 */

typedef struct usher_profile {
    char gpu[64];
    int64_t batch;
    double share_pct;      /* as requested */
    int sms;               /* SMs that share buys on this GPU */
    usher_precision precision;
    double latency_ms;     /* one batch, end to end (host overhead and copies included) */
    double gpu_ms;         /* time the GPU is busy with kernels */
    double throughput;     /* samples per second at this batch: batch / latency */
    double creq_pct;       /* compute requirement: peak summed compute share, % of the GPU */
    double creq_avg_pct;   /* the same, averaged over the latency */
    double mreq_mb;        /* memory requirement: weights + activations + workspace + context */
    double mreq_pct;       /* of the GPU's memory */
    double weights_mb, activations_mb, workspace_mb, context_mb;
    double bandwidth_gbs;  /* DRAM traffic / latency */
    double dram_mb;        /* DRAM traffic per batch (tile re-reads included) */
    double compute_ms;     /* of gpu_ms, the kernels' compute roofline terms: the time their
                              arithmetic takes at the achievable peak of the replica's SMs */
    double mem_bound_ms;   /* of gpu_ms, the time of kernels whose DRAM term exceeds their
                              compute term (what a co-runner's bandwidth slows) */
    double l2_working_set_mb;
    double energy_j;       /* per batch */
    double avg_power_w;
    uint32_t n_kernels;    /* kernel launches per batch */
    double gflops;         /* useful work per batch */
    bool calibrated;       /* a calibration row for this GPU was used */
    bool exact;            /* no operator needed the conservative default */
    char framework[32];
    char warning[256];     /* "" or why the estimate is conservative */
} usher_profile;

/*
 * Estimate one configuration. The model is re-inferred at the batch and
 * bindings given (as usher_model_infer would). Errors: USHER_ERR_NOT_FOUND
 * (GPU key; the message lists valid keys), USHER_ERR_INVALID (batch, share,
 * precision), USHER_ERR_SHAPE (a dynamic dim has no binding: the message
 * names it), USHER_ERR_UNSUPPORTED (a GPU the model cannot time, e.g. not
 * CUDA), USHER_ERR_NOMEM. A model with unsupported operators still gets a
 * profile: those operators are costed with a conservative memory-bound
 * default, exact is false and warning names the first one.
 */
int usher_estimate(usher_estimator *e, usher_model *m, const usher_estimate_params *p,
                   usher_profile *out, usher_error *err);

/* One kernel problem of an estimate (usher_estimate_kernels): what the model
 * maps an operator to, and what it costs on the GPU at the share. */
typedef struct usher_kernel_info {
    char node[96];          /* the ONNX node behind it (may be truncated) */
    char op[32];            /* its operator type */
    char kind[16];          /* gemm, depthwise, elementwise, reduce, softmax, norm, pool,
                               move, unknown */
    char algo[16];          /* the algorithm the timing model chose: gemm, gemv,
                               winograd (F(2x2,3x3)), winograd4 (F(4x4,3x3)),
                               implicit-gemm, direct (depthwise), stream */
    int64_t m, n, k, batch; /* GEMM problem (0 for other kinds) */
    uint32_t launches;      /* kernels launched per batch (split-K, transforms, time steps) */
    double ms;              /* GPU time, all launches */
    double compute_ms, memory_ms; /* the two roofline terms */
    double gflops;          /* useful work */
    double dram_mb;         /* DRAM traffic */
    double share_pct;       /* compute share while it runs */
} usher_kernel_info;

/*
 * The per-kernel breakdown behind usher_estimate for the same parameters, in
 * launch order: fills up to cap entries of out (out may be NULL when cap is
 * 0) and sets *n_total to the number of kernel problems, so a caller can size
 * the array with a first call. Errors as usher_estimate.
 */
int usher_estimate_kernels(usher_estimator *e, usher_model *m, const usher_estimate_params *p,
                           usher_kernel_info *out, size_t cap, size_t *n_total,
                           usher_error *err);

/*
 * Which calibration row estimator e uses for GPU key `gpu` and `framework`
 * (NULL: onnxruntime-cuda), as text: "[a100-80gb pytorch-eager]", "borrowed
 * from [a100-40gb tensorflow], Ampere family, engine tensorflow standing in
 * for onnxruntime-cuda" or "built-in defaults (...)" (docs/calibration.md).
 * *borrowed (may be NULL): the row is not this GPU's and engine's own. Errors:
 * USHER_ERR_INVALID, USHER_ERR_NOT_FOUND (GPU key); out is then unchanged.
 */
int usher_estimator_calibration_row(const usher_estimator *e, const char *gpu,
                                    const char *framework, char *out, size_t out_len,
                                    bool *borrowed, usher_error *err);

/*
 * Measure GPU `device` of this machine (cuBLAS, memcpy and launch
 * micro-benchmarks; docs/calibration.md) and produce its calibration row for
 * framework onnxruntime-cuda. gpu: its catalog key, or NULL to match by SM
 * count and compute capability. out_path: if not NULL, the row replaces the
 * one for the same GPU in that table file (created if missing). report and
 * row_text (may be NULL) receive the measurements and the row as text.
 * Errors: USHER_ERR_UNSUPPORTED when there is no CUDA runtime, driver or GPU
 * (the message says which), USHER_ERR_NOT_FOUND, USHER_ERR_IO.
 */
int usher_calibrate_device(const char *gpu, int device, const char *out_path, char *report,
                           size_t report_len, char *row_text, size_t row_len, usher_error *err);

/* Number of GPU types (whole GPUs and MIG instances) and their keys, for listings. */
size_t usher_estimator_gpu_count(const usher_estimator *e);
const char *usher_estimator_gpu_key(const usher_estimator *e, size_t i);

const char *usher_precision_name(usher_precision p);
int usher_precision_parse(const char *s); /* -1 if unknown */

#ifdef __cplusplus
}
#endif
#endif
