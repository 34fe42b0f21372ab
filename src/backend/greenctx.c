/*
 * greenctx.c - an SM partition for a CUDA session: a green context and a
 * stream in it (layer 7, private to the backend; see greenctx.h).
 *
 * The CUDA driver API (libcuda.so.1) is opened with dlopen, so usher builds
 * and runs without CUDA. The types it needs are declared here with the
 * layout of CUDA 12.4+'s cuda.h (CUdevResource: a 4-byte type, 92 bytes of
 * padding, a 48-byte union whose SM member starts with smCount); when the
 * build finds cuda.h (USHER_HAVE_CUDA_H) the sizes and offsets are checked
 * against it at compile time.
 *
 * Steps (CUDA's green-context recipe): cuInit; cuDeviceGet; the device's SM
 * resource (cuDeviceGetDevResource); one group of at least the wanted SMs
 * split from it (cuDevSmResourceSplitByCount, which rounds up to the
 * architecture's granularity: 2, 4 or 8 SMs); a descriptor; the green
 * context; a non-blocking stream in it. ONNX Runtime's CUDA provider then
 * runs every kernel of the session on that stream (user_compute_stream).
 *
 * Status: written against the documentation and the header, never run on a
 * GPU (no session so far had one). What a GPU session must check: that the
 * kernels stay on the partition (latency against the SM count), that ONNX
 * Runtime's allocations and cuBLAS/cuDNN handles work with a stream of a
 * green context while the primary context is current.
 */
#include <dlfcn.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "backend/greenctx.h"
#include "core/alloc.h"
#include "core/err.h"

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

typedef int (*fn_init)(unsigned);
typedef int (*fn_device_get)(int *, int);
typedef int (*fn_attr)(int *, int, int);
typedef int (*fn_get_res)(int, cu_dev_resource *, int);
typedef int (*fn_split)(cu_dev_resource *, unsigned *, const cu_dev_resource *, cu_dev_resource *,
                        unsigned, unsigned);
typedef int (*fn_desc)(void **, cu_dev_resource *, unsigned);
typedef int (*fn_gc_create)(void **, void *, int, unsigned);
typedef int (*fn_gc_stream)(void **, void *, unsigned, int);
typedef int (*fn_gc_destroy)(void *);
typedef int (*fn_stream_destroy)(void *);
typedef int (*fn_errstr)(int, const char **);

static struct {
    void *lib;
    fn_init init;
    fn_device_get device_get;
    fn_attr attr;
    fn_get_res get_res;
    fn_split split;
    fn_desc desc;
    fn_gc_create gc_create;
    fn_gc_stream gc_stream;
    fn_gc_destroy gc_destroy;
    fn_stream_destroy stream_destroy;
    fn_errstr errstr;
} cu;

struct be_green {
    void *ctx;       /* CUgreenCtx */
    void *stream;    /* CUstream */
    unsigned sms, total;
};

static int load(usher_error *err)
{
    if (cu.lib)
        return USHER_OK;
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return us_err_set(err, USHER_ERR_UNSUPPORTED,
                          "SM partition: no NVIDIA driver (libcuda.so.1 cannot be loaded)");
    static const struct {
        const char *name;
        size_t off;
    } syms[] = {
        {"cuInit", offsetof(__typeof__(cu), init)},
        {"cuDeviceGet", offsetof(__typeof__(cu), device_get)},
        {"cuDeviceGetAttribute", offsetof(__typeof__(cu), attr)},
        {"cuDeviceGetDevResource", offsetof(__typeof__(cu), get_res)},
        {"cuDevSmResourceSplitByCount", offsetof(__typeof__(cu), split)},
        {"cuDevResourceGenerateDesc", offsetof(__typeof__(cu), desc)},
        {"cuGreenCtxCreate", offsetof(__typeof__(cu), gc_create)},
        {"cuGreenCtxStreamCreate", offsetof(__typeof__(cu), gc_stream)},
        {"cuGreenCtxDestroy", offsetof(__typeof__(cu), gc_destroy)},
        {"cuStreamDestroy_v2", offsetof(__typeof__(cu), stream_destroy)},
        {"cuGetErrorString", offsetof(__typeof__(cu), errstr)},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(h, syms[i].name);
        if (!p)
            return us_err_set(err, USHER_ERR_UNSUPPORTED,
                              "SM partition: this driver lacks %s (green contexts need CUDA "
                              "12.4 or later)",
                              syms[i].name);
        memcpy((char *)&cu + syms[i].off, &p, sizeof p);
    }
    cu.lib = h; /* never closed: the driver does not support being unloaded */
    return USHER_OK;
}

static int cu_fail(usher_error *err, int rc, const char *what, int dev)
{
    const char *s = NULL;
    if (cu.errstr)
        cu.errstr(rc, &s);
    return us_err_set(err, USHER_ERR_UNSUPPORTED, "SM partition on cuda:%d: %s failed: CUDA error "
                      "%d (%s)", dev, what, rc, s ? s : "unknown");
}

int be_green_open(int dev, int percent, be_green **out, usher_error *err)
{
    *out = NULL;
    if (percent < 1 || percent > 100)
        return us_err_set(err, USHER_ERR_INVALID, "SM partition of %d %% (1 to 100)", percent);
    int rc = load(err);
    if (rc < 0)
        return rc;
    int d = 0, total = 0, r;
    if ((r = cu.init(0)) != 0)
        return cu_fail(err, r, "cuInit", dev);
    if ((r = cu.device_get(&d, dev)) != 0)
        return cu_fail(err, r, "cuDeviceGet", dev);
    if ((r = cu.attr(&total, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT_, d)) != 0)
        return cu_fail(err, r, "the SM count", dev);
    cu_dev_resource all, part, rest;
    memset(&all, 0, sizeof all);
    memset(&part, 0, sizeof part);
    memset(&rest, 0, sizeof rest);
    if ((r = cu.get_res(d, &all, CU_DEV_RESOURCE_TYPE_SM_)) != 0)
        return cu_fail(err, r, "cuDeviceGetDevResource", dev);
    unsigned want = (unsigned)ceil((double)total * percent / 100.0);
    if (want < 1)
        want = 1;
    unsigned groups = 1;
    if ((r = cu.split(&part, &groups, &all, &rest, 0, want)) != 0 || groups != 1)
        return r ? cu_fail(err, r, "cuDevSmResourceSplitByCount", dev)
                 : us_err_set(err, USHER_ERR_UNSUPPORTED, "SM partition on cuda:%d: %u SMs of "
                              "%d cannot be split off", dev, want, total);
    be_green *g = us_calloc(1, sizeof *g);
    if (!g)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    void *desc = NULL;
    if ((r = cu.desc(&desc, &part, 1)) != 0) {
        us_free(g);
        return cu_fail(err, r, "cuDevResourceGenerateDesc", dev);
    }
    if ((r = cu.gc_create(&g->ctx, desc, d, CU_GREEN_CTX_DEFAULT_STREAM_)) != 0) {
        us_free(g);
        return cu_fail(err, r, "cuGreenCtxCreate", dev);
    }
    if ((r = cu.gc_stream(&g->stream, g->ctx, CU_STREAM_NON_BLOCKING_, 0)) != 0) {
        cu.gc_destroy(g->ctx);
        us_free(g);
        return cu_fail(err, r, "cuGreenCtxStreamCreate", dev);
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
    if (g->stream)
        cu.stream_destroy(g->stream);
    if (g->ctx)
        cu.gc_destroy(g->ctx);
    us_free(g);
}
