/*
 * greenctx.c - an SM partition for a CUDA session: a green context and a
 * stream in it (layer 7, private to the backend; see greenctx.h).
 *
 * The CUDA driver API comes from the one CUDA loader (gpu/cuda.h), which
 * opens libcuda.so.1 with dlopen, so usher builds and runs without CUDA.
 * The types it needs are declared here with the layout of CUDA 12.4+'s
 * cuda.h (CUdevResource: a 4-byte type, 92 bytes of padding, a 48-byte
 * union whose SM member starts with smCount); when the build finds cuda.h
 * (USHER_HAVE_CUDA_H) the sizes and offsets are checked against it at
 * compile time.
 *
 * Steps (CUDA's green-context recipe): cuInit (done by the loader);
 * cuDeviceGet; the device's SM resource (cuDeviceGetDevResource); one group
 * of at least the wanted SMs split from it (cuDevSmResourceSplitByCount,
 * which rounds up to the architecture's granularity: 2, 4 or 8 SMs); a
 * descriptor; the green context; a non-blocking stream in it. ONNX
 * Runtime's CUDA provider then runs every kernel of the session on that
 * stream (user_compute_stream).
 *
 * Status: written against the documentation and the header, never run on a
 * GPU (no session so far had one). What a GPU session must check: that the
 * kernels stay on the partition (latency against the SM count), that ONNX
 * Runtime's allocations and cuBLAS/cuDNN handles work with a stream of a
 * green context while the primary context is current.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "backend/greenctx.h"
#include "core/alloc.h"
#include "core/err.h"
#include "gpu/cuda.h"

#define CU_DEV_RESOURCE_TYPE_SM_ 1
#define CU_GREEN_CTX_DEFAULT_STREAM_ 1u
#define CU_STREAM_NON_BLOCKING_ 1u
#define CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT_ 16

typedef struct cu_sm_resource {
    unsigned int smCount;
    unsigned int minSmPartitionSize;
    unsigned int smCoscheduledAlignment;
} cu_sm_resource;

typedef struct cu_dev_resource {
    int type;
    unsigned char internal_padding[92];
    union {
        cu_sm_resource sm;
        unsigned char oversize[48];
    } u;
} cu_dev_resource;

_Static_assert(sizeof(cu_dev_resource) == 144, "CUdevResource is 144 bytes in CUDA 12.4+");

#ifdef USHER_HAVE_CUDA_H
#include <cuda.h>
_Static_assert(sizeof(cu_dev_resource) == sizeof(CUdevResource), "CUdevResource layout");
_Static_assert(offsetof(cu_dev_resource, u) == offsetof(CUdevResource, sm), "CUdevResource.sm");
_Static_assert(CU_DEV_RESOURCE_TYPE_SM_ == CU_DEV_RESOURCE_TYPE_SM, "resource type");
_Static_assert(CU_GREEN_CTX_DEFAULT_STREAM_ == CU_GREEN_CTX_DEFAULT_STREAM, "flag");
_Static_assert(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT_ == CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
               "attribute");
#endif

struct be_green {
    void *ctx;       /* CUgreenCtx */
    void *stream;    /* CUstream */
    unsigned sms, total;
};

/* The driver with green contexts into *cu, or USHER_ERR_UNSUPPORTED saying why not. */
static int load(const gpu_cu **cu, usher_error *err)
{
    const gpu_cu *d = gpu_cuda_driver(NULL);
    if (!d)
        return us_err_set(err, USHER_ERR_UNSUPPORTED, "SM partition: %s", gpu_cuda_driver_why());
    if (d->green_missing)
        return us_err_set(err, USHER_ERR_UNSUPPORTED,
                          "SM partition: this driver lacks %s (green contexts need CUDA "
                          "12.4 or later)",
                          d->green_missing);
    *cu = d;
    return USHER_OK;
}

static int cu_fail(const gpu_cu *cu, usher_error *err, int rc, const char *what, int dev)
{
    const char *s = NULL;
    cu->get_error_string(rc, &s);
    return us_err_set(err, USHER_ERR_UNSUPPORTED, "SM partition on cuda:%d: %s failed: CUDA error "
                      "%d (%s)", dev, what, rc, s ? s : "unknown");
}

int be_green_open(int dev, int percent, be_green **out, usher_error *err)
{
    *out = NULL;
    if (percent < 1 || percent > 100)
        return us_err_set(err, USHER_ERR_INVALID, "SM partition of %d %% (1 to 100)", percent);
    const gpu_cu *cu = NULL;
    int rc = load(&cu, err);
    if (rc < 0)
        return rc;
    int d = 0, total = 0, r;
    if ((r = cu->device_get(&d, dev)) != 0)
        return cu_fail(cu, err, r, "cuDeviceGet", dev);
    if ((r = cu->device_get_attribute(&total, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT_, d)) != 0)
        return cu_fail(cu, err, r, "the SM count", dev);
    cu_dev_resource all, part, rest;
    memset(&all, 0, sizeof all);
    memset(&part, 0, sizeof part);
    memset(&rest, 0, sizeof rest);
    if ((r = cu->dev_get_dev_resource(d, &all, CU_DEV_RESOURCE_TYPE_SM_)) != 0)
        return cu_fail(cu, err, r, "cuDeviceGetDevResource", dev);
    unsigned want = (unsigned)ceil((double)total * percent / 100.0);
    if (want < 1)
        want = 1;
    unsigned groups = 1;
    if ((r = cu->dev_sm_resource_split_by_count(&part, &groups, &all, &rest, 0, want)) != 0 ||
        groups != 1)
        return r ? cu_fail(cu, err, r, "cuDevSmResourceSplitByCount", dev)
                 : us_err_set(err, USHER_ERR_UNSUPPORTED, "SM partition on cuda:%d: %u SMs of "
                              "%d cannot be split off", dev, want, total);
    be_green *g = us_calloc(1, sizeof *g);
    if (!g)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    void *desc = NULL;
    if ((r = cu->dev_resource_generate_desc(&desc, &part, 1)) != 0) {
        us_free(g);
        return cu_fail(cu, err, r, "cuDevResourceGenerateDesc", dev);
    }
    if ((r = cu->green_ctx_create(&g->ctx, desc, d, CU_GREEN_CTX_DEFAULT_STREAM_)) != 0) {
        us_free(g);
        return cu_fail(cu, err, r, "cuGreenCtxCreate", dev);
    }
    if ((r = cu->green_ctx_stream_create(&g->stream, g->ctx, CU_STREAM_NON_BLOCKING_, 0)) != 0) {
        cu->green_ctx_destroy(g->ctx);
        us_free(g);
        return cu_fail(cu, err, r, "cuGreenCtxStreamCreate", dev);
    }
    g->sms = part.u.sm.smCount;
    g->total = (unsigned)total;
    *out = g;
    return USHER_OK;
}

void *be_green_stream(const be_green *g) { return g ? g->stream : NULL; }

unsigned be_green_sms(const be_green *g, unsigned *total)
{
    if (total)
        *total = g ? g->total : 0;
    return g ? g->sms : 0;
}

void be_green_close(be_green *g)
{
    if (!g)
        return;
    const gpu_cu *cu = gpu_cuda_driver(NULL); /* loaded: g was opened with it */
    if (g->stream)
        cu->stream_destroy(g->stream);
    if (g->ctx)
        cu->green_ctx_destroy(g->ctx);
    us_free(g);
}
