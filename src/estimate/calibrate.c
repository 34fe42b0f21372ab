/*
 * calibrate.c - measure a GPU and write its calibration row (layer 4).
 *
 * It belongs to the estimator: what it measures are the coefficients of
 * the estimator's timing model (ktime.c), and what it fills is a row of the
 * estimator's calibration table (calib.c). Micro-benchmarks through the
 * CUDA runtime and cuBLAS from the one CUDA loader (gpu/cuda.h), which
 * opens them with dlopen at run time: usher builds and links on machines
 * without CUDA, and a missing library, driver or GPU is a clear error (any
 * CUDA error at start-up means "no GPU"), never a crash or a build failure.
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
 * the row's source text and in docs/calibration.md. What was measured goes
 * through the same physical bounds as the fitted rows (gpu_calib_clamp): a
 * GEMM timed above the catalog's peak (a boost clock above the sheet's) gives
 * eff_gemm = 1 and the report names the residual, as a fit would.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "gpu/cuda.h"
#include "kernels.h"

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
                            rt->get_error_string(e_));                                     \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

int gpu_calibrate_device(const gpu_catalog *cat, const char *gpu_key, int device, gpu_calib *row,
                         const gpu_type **gpu_out, char *report, size_t report_len,
                         usher_error *err)
{
    const gpu_cudart *rt = gpu_cuda_runtime(err);
    if (!rt)
        return USHER_ERR_UNSUPPORTED;
    const gpu_cublas *cb = gpu_cuda_blas(err);
    if (!cb)
        return USHER_ERR_UNSUPPORTED;
    const gpu_cu *drv = gpu_cuda_driver(NULL); /* for the device's name only */
    int rc = USHER_OK;
    void *a = NULL, *b = NULL, *d = NULL, *ev0 = NULL, *ev1 = NULL, *blas = NULL;
    CK(rt->set_device(device));
    char name[256] = "";
    if (drv)
        drv->device_get_name(name, (int)sizeof name, device);
    int sms = 0, ccmaj = 0, ccmin = 0;
    CK(rt->device_get_attribute(&sms, 16, device));
    CK(rt->device_get_attribute(&ccmaj, 75, device));
    CK(rt->device_get_attribute(&ccmin, 76, device));
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
    CK(rt->device_synchronize());
    CK(rt->mem_get_info(&free_b, &total_b));
    double context_mb = (double)(total_b - free_b) / 1e6;
    const size_t big = (size_t)256 << 20;
    CK(rt->malloc_(&a, big));
    CK(rt->malloc_(&b, big));
    CK(rt->memset_(a, 1, big));
    CK(rt->event_create(&ev0));
    CK(rt->event_create(&ev1));
    /* bandwidth */
    CK(rt->memcpy_(b, a, big, 3));
    CK(rt->event_record(ev0, NULL));
    for (int i = 0; i < 10; i++)
        CK(rt->memcpy_(b, a, big, 3));
    CK(rt->event_record(ev1, NULL));
    CK(rt->event_synchronize(ev1));
    float ms = 0;
    CK(rt->event_elapsed_time(&ms, ev0, ev1));
    double bw = 2.0 * (double)big * 10 / (ms / 1e3);
    /* tiny kernels: GPU time and host issue time */
    CK(rt->device_synchronize());
    double h0 = host_now();
    CK(rt->event_record(ev0, NULL));
    for (int i = 0; i < 1000; i++)
        CK(rt->memset_async(b, 0, 4, NULL));
    CK(rt->event_record(ev1, NULL));
    double h1 = host_now();
    CK(rt->event_synchronize(ev1));
    CK(rt->event_elapsed_time(&ms, ev0, ev1));
    double kernel_us = ms * 1e3 / 1000, launch_us = (h1 - h0) * 1e6 / 1000;
    /* GEMMs */
    const int N = 4096;
    CK(rt->malloc_(&d, (size_t)N * N * 4));
    if (cb->create(&blas) != 0) {
        rc = us_err_set(err, USHER_ERR_IO, "cublasCreate failed");
        goto out;
    }
    float one = 1, zero = 0;
    double sgemm_s = 0, hgemm_s = 0;
    for (int pass = 0; pass < 2; pass++) { /* first pass warms up */
        CK(rt->event_record(ev0, NULL));
        for (int i = 0; i < 5; i++)
            if (cb->sgemm(blas, 0, 0, N, N, N, &one, a, N, b, N, &zero, d, N) != 0) {
                rc = us_err_set(err, USHER_ERR_IO, "cublasSgemm failed");
                goto out;
            }
        CK(rt->event_record(ev1, NULL));
        CK(rt->event_synchronize(ev1));
        CK(rt->event_elapsed_time(&ms, ev0, ev1));
        sgemm_s = ms / 1e3 / 5;
        CK(rt->event_record(ev0, NULL));
        for (int i = 0; i < 5; i++)
            if (cb->gemm_ex(blas, 0, 0, N, N, N, &one, a, 2, N, b, 2, N, &zero, d, 0, N, 68, 99) != 0) {
                rc = us_err_set(err, USHER_ERR_IO, "cublasGemmEx (FP16, tensor ops) failed");
                goto out;
            }
        CK(rt->event_record(ev1, NULL));
        CK(rt->event_synchronize(ev1));
        CK(rt->event_elapsed_time(&ms, ev0, ev1));
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
    row->eff_mem = bw / (g->mem_bw_gbs * 1e9);
    row->kernel_us = kernel_us;
    row->launch_us = launch_us;
    row->eff_gemm = flops / sgemm_s / (g->fp32_tflops * 1e12);
    if (gpu_known(g, GPU_F_FP16_TENSOR_TFLOPS) && g->fp16_tensor_tflops > 0)
        row->eff_tensor = flops / hgemm_s / (g->fp16_tensor_tflops * 1e12);
    snprintf(row->arch, sizeof row->arch, "%s", gpu_arch_family(g));
    row->sms = g->sm_count;
    row->clock_mhz = g->boost_clock_mhz;
    /* the physical bounds, as for a fitted row: what they cut is a residual */
    gpu_calib raw = *row;
    gpu_calib_clamp(row);
    char resid[512] = "";
    size_t nb, rl = 0;
    const gpu_calib_bound *bd = gpu_calib_bounds(&nb);
    for (size_t i = 0; i < nb; i++) {
        double m = *(const double *)(const void *)((const char *)&raw + bd[i].off);
        double v = *(const double *)(const void *)((const char *)row + bd[i].off);
        if (m == v || rl >= sizeof resid)
            continue;
        int w = snprintf(resid + rl, sizeof resid - rl,
                         "%s measured %.4g, bounded to %.4g (residual %+.1f%%)\n", bd[i].name, m,
                         v, m != 0 ? 100 * (v - m) / m : 0.0);
        rl += w > 0 ? (size_t)w : 0;
    }
    if (rl) {
        size_t sl = strlen(row->source);
        snprintf(row->source + sl, sizeof row->source - sl, "; some values at a physical bound");
    }
    if (report)
        snprintf(report, report_len,
                 "device: %s, %d SMs, compute capability %d.%d -> catalog %s\n"
                 "context: %.0f MB in use after start-up\n"
                 "copy bandwidth: %.1f GB/s (%.0f%% of %.0f GB/s)\n"
                 "tiny kernel: %.2f us on the GPU, %.2f us to issue\n"
                 "SGEMM 4096^3: %.1f TFLOPS (%.0f%% of %.1f)\n"
                 "HGEMM 4096^3 (tensor ops): %.1f TFLOPS (%.0f%% of %.1f)\n%s",
                 name, sms, ccmaj, ccmin, g->key, context_mb, bw / 1e9,
                 100 * bw / (g->mem_bw_gbs * 1e9), g->mem_bw_gbs, kernel_us, launch_us,
                 flops / sgemm_s / 1e12, 100 * raw.eff_gemm, g->fp32_tflops,
                 flops / hgemm_s / 1e12, 100 * raw.eff_tensor, g->fp16_tensor_tflops, resid);
    rc = USHER_OK;
out:
    if (blas)
        cb->destroy(blas);
    if (ev0)
        rt->event_destroy(ev0);
    if (ev1)
        rt->event_destroy(ev1);
    if (a)
        rt->free_(a);
    if (b)
        rt->free_(b);
    if (d)
        rt->free_(d);
    return rc;
}
