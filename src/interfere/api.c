/*
 * api.c - the public usher_interfere (include/usher/interfere.h): profiles in,
 * co-located latencies out, through the default model.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "estimate/est.h"
#include "interfere/interfere.h"
#include "usher/interfere.h"

int usher_interfere(usher_estimator *e, const usher_profile *p, size_t n, usher_colocation *out,
                    usher_error *err)
{
    if (!e || (!p && n) || (!out && n))
        return us_err_set(err, USHER_ERR_INVALID, "usher_interfere: missing argument");
    if (n > IF_MAX_REPLICAS)
        return us_err_set(err, USHER_ERR_INVALID,
                          "usher_interfere: %zu replicas on one device (at most %d)", n,
                          IF_MAX_REPLICAS);
    if (n == 0)
        return USHER_OK;
    for (size_t i = 1; i < n; i++)
        if (strcmp(p[i].gpu, p[0].gpu) != 0)
            return us_err_set(err, USHER_ERR_INVALID,
                              "usher_interfere: replica %zu is profiled on %s, replica 1 on %s: "
                              "co-located replicas share one device",
                              i + 1, p[i].gpu, p[0].gpu);
    const gpu_type *g;
    int rc = gpu_catalog_find(est_catalog(e), p[0].gpu, &g, err);
    if (rc < 0)
        return rc;
    if_device d;
    if ((rc = if_device_of(g, &d, err)) < 0)
        return rc;
    if_replica r[IF_MAX_REPLICAS];
    if_result res[IF_MAX_REPLICAS];
    for (size_t i = 0; i < n; i++)
        if ((rc = if_replica_of(&p[i], &r[i], err)) < 0)
            return rc;
    if ((rc = if_predict(if_model_default(), &d, r, (uint32_t)n, res, err)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        out[i] = (usher_colocation){.latency_alone_ms = r[i].latency_ms,
                                    .latency_colocated_ms = res[i].latency_ms,
                                    .slowdown = res[i].slowdown,
                                    .throughput_alone = p[i].throughput,
                                    .throughput_colocated = res[i].throughput,
                                    .busy = res[i].busy,
                                    .f_sm = res[i].f_sm,
                                    .f_bw = res[i].f_bw,
                                    .f_l2 = res[i].f_l2};
    return USHER_OK;
}

int usher_interfere_device(usher_estimator *e, const char *gpu, double *bw_gbs, double *l2_mb,
                           usher_error *err)
{
    if (!e || !gpu || !bw_gbs || !l2_mb)
        return us_err_set(err, USHER_ERR_INVALID, "usher_interfere_device: missing argument");
    const gpu_type *g;
    int rc = gpu_catalog_find(est_catalog(e), gpu, &g, err);
    if (rc < 0)
        return rc;
    if_device d;
    if ((rc = if_device_of(g, &d, err)) < 0)
        return rc;
    *bw_gbs = d.bw_gbs;
    *l2_mb = d.l2_mb;
    return USHER_OK;
}
