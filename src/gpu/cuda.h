/*
 * cuda.h - the one loader of NVIDIA's libraries: the CUDA driver
 * (libcuda.so.1), the CUDA runtime (libcudart) and cuBLAS (layer 2).
 *
 * Every library is opened with dlopen at run time, so usher builds, links
 * and runs where there is no CUDA. Each is loaded at most once per process
 * (pthread_once; the handles are never closed: the driver does not support
 * being unloaded), and every caller sees the same result: the table of
 * function pointers, or NULL with the reason, which is the same text every
 * time ("no NVIDIA driver (libcuda.so.1 cannot be loaded)"). A failure at
 * start-up - a missing library, a missing required function, a CUDA error
 * from cuInit or cudaGetDeviceCount, no device - means "no GPU", and the
 * reason says which; callers fall back or report it, they never crash.
 *
 * The types of the CUDA API are not needed here: handles are void *,
 * CUresult and cudaError_t are int, CUdevice is int. The structures a
 * caller passes through (CUdevResource for green contexts) are declared by
 * that caller (backend/greenctx.c), which checks them against cuda.h when
 * the build finds it.
 */
#ifndef GPU_CUDA_H
#define GPU_CUDA_H

#include <stddef.h>

#include "usher/status.h"

/* The driver API. Every pointer is set unless its comment says otherwise. */
typedef struct gpu_cu {
    int (*init)(unsigned flags);                                   /* cuInit */
    int (*device_get_count)(int *n);                               /* cuDeviceGetCount */
    int (*device_get)(int *dev, int ordinal);                      /* cuDeviceGet */
    int (*device_get_attribute)(int *v, int attr, int dev);        /* cuDeviceGetAttribute */
    int (*device_get_name)(char *name, int len, int dev);          /* cuDeviceGetName */
    int (*get_error_string)(int rc, const char **s);               /* cuGetErrorString */
    int (*stream_destroy)(void *stream);                           /* cuStreamDestroy_v2 */
    /* Green contexts (CUDA 12.4+): NULL when the driver lacks them, and then
     * green_missing names the first one missing (else it is NULL). The
     * resource arguments are CUdevResource *. */
    int (*dev_get_dev_resource)(int dev, void *res, int type);     /* cuDeviceGetDevResource */
    int (*dev_sm_resource_split_by_count)(void *result, unsigned *n_groups, const void *input,
                                          void *remaining, unsigned flags,
                                          unsigned min_count); /* cuDevSmResourceSplitByCount */
    int (*dev_resource_generate_desc)(void **desc, void *res, unsigned n); /* ...GenerateDesc */
    int (*green_ctx_create)(void **ctx, void *desc, int dev, unsigned flags); /* cuGreenCtxCreate */
    int (*green_ctx_stream_create)(void **stream, void *ctx, unsigned flags,
                                   int priority);                  /* cuGreenCtxStreamCreate */
    int (*green_ctx_destroy)(void *ctx);                           /* cuGreenCtxDestroy */
    const char *green_missing;
} gpu_cu;

/*
 * The driver, loaded and initialised (cuInit(0), which respects
 * CUDA_VISIBLE_DEVICES and creates no context). NULL when there is no GPU:
 * err gets USHER_ERR_UNSUPPORTED and the reason (gpu_cuda_driver_why).
 */
const gpu_cu *gpu_cuda_driver(usher_error *err);
/* Why gpu_cuda_driver gives NULL ("" when it does not). Loads the driver if needed. */
const char *gpu_cuda_driver_why(void);

/* The runtime API (libcudart), with what calibration uses. All pointers set. */
typedef struct gpu_cudart {
    int (*get_device_count)(int *n);                         /* cudaGetDeviceCount */
    int (*device_get_attribute)(int *v, int attr, int dev);  /* cudaDeviceGetAttribute */
    int (*set_device)(int dev);                              /* cudaSetDevice */
    int (*malloc_)(void **p, size_t n);                      /* cudaMalloc */
    int (*free_)(void *p);                                   /* cudaFree */
    int (*memcpy_)(void *dst, const void *src, size_t n, int kind); /* cudaMemcpy */
    int (*memset_)(void *p, int v, size_t n);                /* cudaMemset */
    int (*memset_async)(void *p, int v, size_t n, void *stream); /* cudaMemsetAsync */
    int (*device_synchronize)(void);                         /* cudaDeviceSynchronize */
    int (*event_create)(void **ev);                          /* cudaEventCreate */
    int (*event_record)(void *ev, void *stream);             /* cudaEventRecord */
    int (*event_synchronize)(void *ev);                      /* cudaEventSynchronize */
    int (*event_elapsed_time)(float *ms, void *start, void *end); /* cudaEventElapsedTime */
    int (*event_destroy)(void *ev);                          /* cudaEventDestroy */
    int (*mem_get_info)(size_t *free_b, size_t *total_b);    /* cudaMemGetInfo */
    const char *(*get_error_string)(int rc);                 /* cudaGetErrorString */
} gpu_cudart;

/*
 * The runtime (libcudart.so.13, .12, .11.0, libcudart.so, then
 * /usr/local/cuda/lib64), loaded, with at least one device
 * (cudaGetDeviceCount). NULL when there is no GPU: USHER_ERR_UNSUPPORTED
 * with the reason.
 */
const gpu_cudart *gpu_cuda_runtime(usher_error *err);

/* cuBLAS (libcublas), with what calibration uses. All pointers set. */
typedef struct gpu_cublas {
    int (*create)(void **handle);  /* cublasCreate_v2 */
    int (*destroy)(void *handle);  /* cublasDestroy_v2 */
    int (*sgemm)(void *h, int ta, int tb, int m, int n, int k, const float *alpha, const float *a,
                 int lda, const float *b, int ldb, const float *beta, float *c,
                 int ldc);         /* cublasSgemm_v2 */
    int (*gemm_ex)(void *h, int ta, int tb, int m, int n, int k, const void *alpha, const void *a,
                   int a_type, int lda, const void *b, int b_type, int ldb, const void *beta,
                   void *c, int c_type, int ldc, int compute, int algo); /* cublasGemmEx */
} gpu_cublas;

/* cuBLAS, loaded (no handle created). NULL: USHER_ERR_UNSUPPORTED with the reason. */
const gpu_cublas *gpu_cuda_blas(usher_error *err);

#endif
