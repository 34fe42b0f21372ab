/*
 * usher/interfere.h - what co-located replicas do to each other's latency.
 *
 * Given the estimator's profiles of replicas that share one device (a whole
 * GPU or one MIG instance), predict each one's latency and throughput while
 * the others run beside it, back to back. The model (SM time-slicing when the
 * MPS shares exceed the device, DRAM bandwidth, L2 pressure), its sources and
 * its error on published measurements: docs/interference.md.
 *
 *   usher_profile p[2];                        // usher_estimate(), same GPU key
 *   usher_colocation out[2];
 *   usher_interfere(e, p, 2, out, &err);       // out[i].latency_colocated_ms
 */
#ifndef USHER_INTERFERE_H
#define USHER_INTERFERE_H

#include <stddef.h>

#include "usher/estimate.h"
#include "usher/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct usher_colocation {
    double latency_alone_ms;
    double latency_colocated_ms;
    double slowdown;              /* colocated / alone, >= 1 */
    double throughput_alone;      /* samples/s, back to back */
    double throughput_colocated;
    double busy;                  /* fraction of its time with kernels on the GPU */
    double f_sm, f_bw, f_l2;      /* factors on its GPU time: SM time-slicing, DRAM
                                     bandwidth, L2 capacity */
} usher_colocation;

/*
 * Every profile must be of the same GPU key (profile.gpu). Errors:
 * USHER_ERR_INVALID naming the replica and the field (different GPUs, a
 * profile without GPU time, more than 256 replicas), USHER_ERR_NOT_FOUND for
 * a GPU key the estimator's catalog lacks, USHER_ERR_INVALID for a GPU whose
 * DRAM bandwidth or L2 size is unknown. Never a silent "no interference".
 */
int usher_interfere(usher_estimator *e, const usher_profile *p, size_t n, usher_colocation *out,
                    usher_error *err);

/*
 * What the model knows of a device of e's catalog (a GPU type or a MIG
 * instance): its DRAM bandwidth (GB/s) and L2 size (MB), as usher_interfere
 * uses them (the simulator takes them to judge the replicas busy on a GPU).
 * USHER_ERR_NOT_FOUND for a key the catalog lacks, USHER_ERR_INVALID when it
 * has no bandwidth or L2 size for it; *bw_gbs and *l2_mb are set only on success.
 */
int usher_interfere_device(usher_estimator *e, const char *gpu, double *bw_gbs, double *l2_mb,
                           usher_error *err);

/* The fit of the model's coefficients on measurements (docs/interference.md). */
typedef struct usher_interfere_fit_params {
    const char *csv;       /* measurements: the columns of data/interference.csv */
    const char *model_dir; /* where MODEL.onnx of every model named there lies (the zoo) */
    int held_out;          /* 1: also refit without each model pair and predict it */
} usher_interfere_fit_params;

/*
 * Fit on every row whose models are found (rows of others are counted and
 * skipped), print the coefficients and the errors per source (mean absolute
 * relative error of the slowdown and of the co-located latency, with the
 * "no interference" prediction beside them) into report (malloc'd, the caller
 * releases it with usher_free). Errors name the file, line and field.
 */
int usher_interfere_fit(const usher_interfere_fit_params *p, char **report, usher_error *err);

#ifdef __cplusplus
}
#endif
#endif
