/*
 * calibrate.c - measure a GPU and write its calibration row (layer 4).
 *
 * Micro-benchmarks through the CUDA runtime and cuBLAS, loaded with dlopen
 * at run time: usher builds and links on machines without CUDA, and a
 * missing library, driver or GPU is a clear error (any CUDA error at
 * start-up means "no GPU"), never a crash or a build failure.
 *
 *   context_mb  device memory in use right after the context is created
 *   eff_mem     device-to-device copy of 2 x 256 MiB, bytes read + written
 *               per second over the catalog's peak bandwidth
 *   kernel_us   GPU time of a tiny kernel (1,000 back-to-back 4-byte memsets)
 *   launch_us   host time to issue one of them
 *   eff_gemm    cuBLAS SGEMM 4096^3 (FP32 math) over the FP32 peak
 *   eff_tensor  cuBLAS GemmEx FP16 in, FP32 accumulate, 4096^3, tensor ops,
 *               over the FP16 tensor peak
 * The rest of the row keeps its defaults; what these benchmarks cannot see
 * (cuDNN convolution efficiency, ONNX Runtime's per-node overhead) is said in
 * the row's source text and in docs/calibration.md.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "kernels.h"

typedef int (*fn_i_pi)(int *);
typedef int (*fn_devattr)(int *, int, int);
typedef int (*fn_malloc)(void **, size_t);
typedef int (*fn_free)(void *);
typedef int (*fn_memcpy)(void *, const void *, size_t, int);
typedef int (*fn_memset_async)(void *, int, size_t, void *);
typedef int (*fn_memset)(void *, int, size_t);
typedef int (*fn_void)(void);
typedef int (*fn_event_create)(void **);
typedef int (*fn_event_record)(void *, void *);
typedef int (*fn_event_sync)(void *);
typedef int (*fn_event_elapsed)(float *, void *, void *);
typedef int (*fn_event_destroy)(void *);
typedef int (*fn_meminfo)(size_t *, size_t *);
typedef int (*fn_set_device)(int);
typedef const char *(*fn_errstr)(int);
typedef int (*fn_cu_name)(char *, int, int);
typedef int (*fn_blas_create)(void **);
typedef int (*fn_blas_destroy)(void *);
typedef int (*fn_sgemm)(void *, int, int, int, int, int, const float *, const float *, int,
                        const float *, int, const float *, float *, int);
typedef int (*fn_gemmex)(void *, int, int, int, int, int, const void *, const void *, int, int,
                         const void *, int, int, const void *, void *, int, int, int, int);

typedef struct cuda {
    void *rt, *blas, *drv;
    fn_i_pi getDeviceCount;
    fn_devattr deviceGetAttribute;
    fn_set_device setDevice;
    fn_malloc malloc_;
    fn_free free_;
    fn_memcpy memcpy_;
    fn_memset memset_;
    fn_memset_async memsetAsync;
    fn_void deviceSynchronize;
    fn_event_create eventCreate;
    fn_event_record eventRecord;
    fn_event_sync eventSynchronize;
    fn_event_elapsed eventElapsedTime;
    fn_event_destroy eventDestroy;
    fn_meminfo memGetInfo;
    fn_errstr getErrorString;
    fn_cu_name cuDeviceGetName;
    fn_blas_create blasCreate;
    fn_blas_destroy blasDestroy;
    fn_sgemm sgemm;
    fn_gemmex gemmEx;
} cuda;

static void *open_any(const char *const *names)
{
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h)
            return h;
    }
    return NULL;
}

#define SYM(lib, field, name)                                                                      \
    do {                                                                                           \
        *(void **)(&c->field) = dlsym(c->lib, name);                                               \
        if (!c->field)                                                                             \
            return us_err_set(err, USHER_ERR_UNSUPPORTED, "%s lacks %s", #lib, name);              \
    } while (0)

static int load(cuda *c, usher_error *err)
{
    static const char *const rt[] = {"libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0",
                                     "libcudart.so", "/usr/local/cuda/lib64/libcudart.so", NULL};
    static const char *const blas[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11",
                                       "libcublas.so", "/usr/local/cuda/lib64/libcublas.so", NULL};
    static const char *const drv[] = {"libcuda.so.1", "libcuda.so", NULL};
    memset(c, 0, sizeof *c);
    c->rt = open_any(rt);
    if (!c->rt)
        return us_err_set(err, USHER_ERR_UNSUPPORTED,
                          "no GPU: the CUDA runtime library (libcudart) cannot be loaded");
    SYM(rt, getDeviceCount, "cudaGetDeviceCount");
    SYM(rt, deviceGetAttribute, "cudaDeviceGetAttribute");
    SYM(rt, setDevice, "cudaSetDevice");
    SYM(rt, malloc_, "cudaMalloc");
    SYM(rt, free_, "cudaFree");
    SYM(rt, memcpy_, "cudaMemcpy");
    SYM(rt, memset_, "cudaMemset");
    SYM(rt, memsetAsync, "cudaMemsetAsync");
    SYM(rt, deviceSynchronize, "cudaDeviceSynchronize");
    SYM(rt, eventCreate, "cudaEventCreate");
    SYM(rt, eventRecord, "cudaEventRecord");
    SYM(rt, eventSynchronize, "cudaEventSynchronize");
    SYM(rt, eventElapsedTime, "cudaEventElapsedTime");
    SYM(rt, eventDestroy, "cudaEventDestroy");
    SYM(rt, memGetInfo, "cudaMemGetInfo");
    SYM(rt, getErrorString, "cudaGetErrorString");
    int n = 0;
    int rc = c->getDeviceCount(&n);
    if (rc != 0 || n < 1)
        return us_err_set(err, USHER_ERR_UNSUPPORTED,
                          "no GPU: cudaGetDeviceCount failed with error %d (%s)", rc,
                          rc ? c->getErrorString(rc) : "no device");
    c->blas = open_any(blas);
    if (!c->blas)
        return us_err_set(err, USHER_ERR_UNSUPPORTED, "cuBLAS (libcublas) cannot be loaded");
    SYM(blas, blasCreate, "cublasCreate_v2");
    SYM(blas, blasDestroy, "cublasDestroy_v2");
    SYM(blas, sgemm, "cublasSgemm_v2");
    SYM(blas, gemmEx, "cublasGemmEx");
    c->drv = open_any(drv);
    if (c->drv)
        *(void **)(&c->cuDeviceGetName) = dlsym(c->drv, "cuDeviceGetName");
    return USHER_OK;
}

static void unload(cuda *c)
{
    if (c->blas)
        dlclose(c->blas);
    if (c->drv)
        dlclose(c->drv);
    if (c->rt)
        dlclose(c->rt);
}

static double host_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#define CK(call)                                                                                   \
    do {                                                                                           \
        int e_ = (call);                                                                           \
        if (e_ != 0) {                                                                             \
            rc = us_err_set(err, USHER_ERR_IO, "%s failed: error %d (%s)", #call, e_,              \
                            c.getErrorString(e_));                                                 \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

int gpu_calibrate_device(const gpu_catalog *cat, const char *gpu_key, int device, gpu_calib *row,
                         const gpu_type **gpu_out, char *report, size_t report_len,
                         usher_error *err)
{
    cuda c;
    int rc = load(&c, err);
    void *a = NULL, *b = NULL, *d = NULL, *ev0 = NULL, *ev1 = NULL, *blas = NULL;
    if (rc < 0)
        goto out;
    CK(c.setDevice(device));
    char name[256] = "";
    if (c.cuDeviceGetName)
        c.cuDeviceGetName(name, (int)sizeof name, device);
    int sms = 0, ccmaj = 0, ccmin = 0;
    CK(c.deviceGetAttribute(&sms, 16, device));
    CK(c.deviceGetAttribute(&ccmaj, 75, device));
    CK(c.deviceGetAttribute(&ccmin, 76, device));
    const gpu_type *g = NULL;
    if (gpu_key) {
        if ((rc = gpu_catalog_find(cat, gpu_key, &g, err)) < 0)
            goto out;
    } else {
        for (size_t i = 0; i < gpu_catalog_count(cat); i++) {
            const gpu_type *t = gpu_catalog_at(cat, i);
            if (t->is_cuda && t->sm_count == sms && t->cc_major == ccmaj && t->cc_minor == ccmin) {
                g = t;
                break;
            }
        }
        if (!g) {
            rc = us_err_set(err, USHER_ERR_NOT_FOUND,
                            "device '%s' (%d SMs, compute capability %d.%d) matches no catalog "
                            "row: name one with --gpu",
                            name, sms, ccmaj, ccmin);
            goto out;
        }
    }
    *gpu_out = g;
    size_t free_b = 0, total_b = 0;
    CK(c.deviceSynchronize());
    CK(c.memGetInfo(&free_b, &total_b));
    double context_mb = (double)(total_b - free_b) / 1e6;
    const size_t big = (size_t)256 << 20;
    CK(c.malloc_(&a, big));
    CK(c.malloc_(&b, big));
    CK(c.memset_(a, 1, big));
    CK(c.eventCreate(&ev0));
    CK(c.eventCreate(&ev1));
    /* bandwidth */
    CK(c.memcpy_(b, a, big, 3));
    CK(c.eventRecord(ev0, NULL));
    for (int i = 0; i < 10; i++)
        CK(c.memcpy_(b, a, big, 3));
    CK(c.eventRecord(ev1, NULL));
    CK(c.eventSynchronize(ev1));
    float ms = 0;
    CK(c.eventElapsedTime(&ms, ev0, ev1));
    double bw = 2.0 * (double)big * 10 / (ms / 1e3);
    /* tiny kernels: GPU time and host issue time */
    CK(c.deviceSynchronize());
    double h0 = host_now();
    CK(c.eventRecord(ev0, NULL));
    for (int i = 0; i < 1000; i++)
        CK(c.memsetAsync(b, 0, 4, NULL));
    CK(c.eventRecord(ev1, NULL));
    double h1 = host_now();
    CK(c.eventSynchronize(ev1));
    CK(c.eventElapsedTime(&ms, ev0, ev1));
    double kernel_us = ms * 1e3 / 1000, launch_us = (h1 - h0) * 1e6 / 1000;
    /* GEMMs */
    const int N = 4096;
    CK(c.malloc_(&d, (size_t)N * N * 4));
    if (c.blasCreate(&blas) != 0) {
        rc = us_err_set(err, USHER_ERR_IO, "cublasCreate failed");
        goto out;
    }
    float one = 1, zero = 0;
    double sgemm_s = 0, hgemm_s = 0;
    for (int pass = 0; pass < 2; pass++) { /* first pass warms up */
        CK(c.eventRecord(ev0, NULL));
        for (int i = 0; i < 5; i++)
            if (c.sgemm(blas, 0, 0, N, N, N, &one, a, N, b, N, &zero, d, N) != 0) {
                rc = us_err_set(err, USHER_ERR_IO, "cublasSgemm failed");
                goto out;
            }
        CK(c.eventRecord(ev1, NULL));
        CK(c.eventSynchronize(ev1));
        CK(c.eventElapsedTime(&ms, ev0, ev1));
        sgemm_s = ms / 1e3 / 5;
        CK(c.eventRecord(ev0, NULL));
        for (int i = 0; i < 5; i++)
            if (c.gemmEx(blas, 0, 0, N, N, N, &one, a, 2, N, b, 2, N, &zero, d, 0, N, 68, 99) != 0) {
                rc = us_err_set(err, USHER_ERR_IO, "cublasGemmEx (FP16, tensor ops) failed");
                goto out;
            }
        CK(c.eventRecord(ev1, NULL));
        CK(c.eventSynchronize(ev1));
        CK(c.eventElapsedTime(&ms, ev0, ev1));
        hgemm_s = ms / 1e3 / 5;
    }
    double flops = 2.0 * N * (double)N * N;
    *row = gpu_calib_default();
    row->calibrated = true;
    snprintf(row->gpu, sizeof row->gpu, "%s", g->key);
    snprintf(row->framework, sizeof row->framework, "onnxruntime-cuda");
    time_t now = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    snprintf(row->source, sizeof row->source,
             "usher calibrate on '%.60s' (%d SMs, CC %d.%d), %s: memcpy, memset and cuBLAS "
             "micro-benchmarks; eff_conv, eff_depthwise, fixed_us are defaults",
             name, sms, ccmaj, ccmin, date);
    row->context_mb = context_mb;
    row->eff_mem = fmin(1.5, bw / (g->mem_bw_gbs * 1e9));
    row->kernel_us = kernel_us;
    row->launch_us = launch_us;
    row->eff_gemm = fmin(1.5, flops / sgemm_s / (g->fp32_tflops * 1e12));
    if (gpu_known(g, GPU_F_FP16_TENSOR_TFLOPS) && g->fp16_tensor_tflops > 0)
        row->eff_tensor = fmin(1.5, flops / hgemm_s / (g->fp16_tensor_tflops * 1e12));
    if (report)
        snprintf(report, report_len,
                 "device: %s, %d SMs, compute capability %d.%d -> catalog %s\n"
                 "context: %.0f MB in use after start-up\n"
                 "copy bandwidth: %.1f GB/s (%.0f%% of %.0f GB/s)\n"
                 "tiny kernel: %.2f us on the GPU, %.2f us to issue\n"
                 "SGEMM 4096^3: %.1f TFLOPS (%.0f%% of %.1f)\n"
                 "HGEMM 4096^3 (tensor ops): %.1f TFLOPS (%.0f%% of %.1f)\n",
                 name, sms, ccmaj, ccmin, g->key, context_mb, bw / 1e9,
                 100 * bw / (g->mem_bw_gbs * 1e9), g->mem_bw_gbs, kernel_us, launch_us,
                 flops / sgemm_s / 1e12, 100 * row->eff_gemm, g->fp32_tflops,
                 flops / hgemm_s / 1e12, 100 * row->eff_tensor, g->fp16_tensor_tflops);
    rc = USHER_OK;
out:
    if (blas)
        c.blasDestroy(blas);
    if (ev0)
        c.eventDestroy(ev0);
    if (ev1)
        c.eventDestroy(ev1);
    if (a)
        c.free_(a);
    if (b)
        c.free_(b);
    if (d)
        c.free_(d);
    unload(&c);
    return rc;
}
