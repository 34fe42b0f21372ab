/*
 * interfere.h - what co-located replicas do to each other (layer 5, prefix if_).
 *
 * Input: the replicas on one device (a whole GPU or one MIG instance), each
 * described by its profile alone (latency, kernel time, the compute part of
 * that time, DRAM traffic, L2 working set, MPS share). Output: each one's
 * latency and throughput while the others run beside it, back to back.
 *
 * A model is an if_model: a name and a predict function, so a better one can
 * replace the built-in `contention` model without touching its callers (the
 * planner, `usher interfere`, the simulator). The mechanisms, their sources
 * and the fit are in docs/interference.md.
 *
 *   if_device d;  if_device_of(gpu_type, &d, &err);
 *   if_replica r[2] = {...};   (if_replica_of(profile, &r[i], &err))
 *   if_result out[2];
 *   if_predict(if_model_default(), &d, r, 2, out, &err);
 */
#ifndef IF_INTERFERE_H
#define IF_INTERFERE_H

#include <stdbool.h>
#include <stdint.h>

#include "gpu/gpu.h"
#include "usher/estimate.h"
#include "usher/status.h"

#define IF_MAX_REPLICAS 256 /* replicas on one device that a prediction accepts */

/* one device: a whole GPU or a MIG instance (its memory slices' bandwidth and L2) */
typedef struct if_device {
    char key[64];
    double bw_gbs; /* DRAM bandwidth, GB/s */
    double l2_mb;  /* L2 capacity, MB */
} if_device;

/* one replica, as its profile alone describes it */
typedef struct if_replica {
    double share;      /* MPS cap: fraction of the device's SMs its kernels may use, (0, 1] */
    double latency_ms; /* one batch alone, end to end */
    double gpu_ms;     /* of which its kernels occupy the GPU, (0, latency_ms] */
    double compute_ms; /* of gpu_ms, arithmetic at the achievable peak, [0, gpu_ms] */
    double mem_ms;     /* of gpu_ms, kernels bound by DRAM bandwidth, [0, gpu_ms] */
    double dram_mb;    /* DRAM traffic per batch, >= 0 */
    double l2_mb;      /* L2 working set, >= 0 */
    int64_t batch;     /* >= 1 (throughput) */
} if_replica;

typedef struct if_result {
    double latency_ms; /* one batch with the others running beside it */
    double slowdown;   /* latency_ms / alone, >= 1 */
    double throughput; /* samples/s back to back: batch / latency_ms */
    double busy;       /* fraction of its time its kernels are on the GPU */
    double f_sm, f_bw, f_l2; /* the factors on its GPU time: SM time-slicing,
                                DRAM bandwidth, L2 capacity */
} if_result;

/* the coefficients the fit chooses (docs/interference.md) */
typedef struct if_coef {
    double k_compute;  /* SM fill while running, per unit of compute fraction */
    double k_dram;     /* ... per unit of DRAM utilisation */
    double beta_bw;    /* loaded-latency slowdown per unit of the others' DRAM utilisation */
    double lambda_l2;  /* slowdown when the others' working sets fill the L2 */
} if_coef;

typedef struct if_model if_model;
struct if_model {
    const char *name;
    const char *summary;
    /* inputs already checked by if_predict */
    int (*predict)(const if_model *m, const if_device *d, const if_replica *r, uint32_t n,
                   if_result *out, usher_error *err);
    if_coef coef;
};

/* the built-in model ("contention") with the fitted coefficients */
const if_model *if_model_default(void);
/* the contention model with other coefficients (the fit) */
if_model if_model_contention(if_coef c);

/*
 * Predict every replica's co-located latency. Errors (USHER_ERR_INVALID)
 * name the replica and the field: a device without bandwidth or L2, a
 * replica without latency, GPU time, a share in (0, 1], or with compute time
 * beyond its GPU time; more than IF_MAX_REPLICAS. n = 1 is the replica alone.
 */
int if_predict(const if_model *m, const if_device *d, const if_replica *r, uint32_t n,
               if_result *out, usher_error *err);

/* The device of a catalog GPU type; USHER_ERR_INVALID when the catalog does
 * not know its DRAM bandwidth or L2 size (the model cannot judge it). */
int if_device_of(const gpu_type *g, if_device *out, usher_error *err);
/* A replica from an estimator profile of a device of that type (share from
 * the profile); USHER_ERR_INVALID names the missing field. */
int if_replica_of(const usher_profile *p, if_replica *out, usher_error *err);

/* ---- the fit (fit.c; usher_interfere_fit) ---- */
#define IF_FIT_MAX_SOURCES 8
typedef struct if_fit_errors {
    uint32_t rows, pairs;
    /* mean absolute relative errors: of the slowdown (model, and "no
     * interference" = 1), and of the co-located latency built on the
     * estimator's alone latency (model x estimate, and the estimate alone) */
    double slow, slow_none, est, est_none;
    double worst; /* largest relative error of the slowdown */
} if_fit_errors;

typedef struct if_fit_result {
    uint32_t rows, skipped, n_sources;
    char source[IF_FIT_MAX_SOURCES][32];
    if_coef fitted, builtin;
    double loss_fitted, loss_builtin;   /* the fit's objective on every row */
    if_fit_errors in[IF_FIT_MAX_SOURCES];   /* built-in coefficients, every row */
    if_fit_errors held[IF_FIT_MAX_SOURCES]; /* each pair predicted by a fit without it */
    bool held_out;
} if_fit_result;

/* usher_interfere_fit with the figures as numbers (res) and/or as text (report,
 * released with usher_free; either may be NULL) */
struct usher_interfere_fit_params;
int if_fit_run(const struct usher_interfere_fit_params *p, if_fit_result *res, char **report,
               usher_error *err);

/* DRAM utilisation of a replica while its kernels run: its traffic over its
 * kernel time, as a fraction of the device's bandwidth */
static inline double if_dram_util(const if_device *d, const if_replica *r)
{
    return r->gpu_ms > 0 && d->bw_gbs > 0 ? r->dram_mb / r->gpu_ms / d->bw_gbs : 0;
}

#endif
