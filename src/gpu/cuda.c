/*
 * cuda.c - the one loader of the CUDA driver, runtime and cuBLAS (layer 2;
 * cuda.h has the contract).
 *
 * Each library has a pthread_once routine that opens it, resolves its
 * functions into a static table and runs its start-up check (cuInit,
 * cudaGetDeviceCount); the outcome - the table or the reason - is fixed
 * from then on, so any number of threads may ask. A library that loads but
 * fails its check stays open: the driver does not support being unloaded,
 * and dlclose of the runtime after a failed call is no safer.
 */
#include "gpu/cuda.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

typedef struct sym {
    const char *name;
    size_t off; /* of the function pointer in its table */
} sym;

/* First of names that dlopen opens, or NULL. */
static void *open_any(const char *const *names)
{
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h)
            return h;
    }
    return NULL;
}

/* Resolve syms[0..n) into table; the name of the first one missing, or NULL. */
static const char *resolve(void *h, void *table, const sym *syms, size_t n)
{
    const char *missing = NULL;
    for (size_t i = 0; i < n; i++) {
        void *p = dlsym(h, syms[i].name);
        if (!p && !missing)
            missing = syms[i].name;
        memcpy((char *)table + syms[i].off, &p, sizeof p);
    }
    return missing;
}

/* Open the first of names and resolve syms into table: the handle, or NULL
 * with why set to `absent` (nothing opens) or "LIB lacks NAME". */
static void *load_lib(const char *const *names, void *table, const sym *syms, size_t n,
                      const char *absent, const char *lib, char *why, size_t cap)
{
    void *h = open_any(names);
    if (!h) {
        snprintf(why, cap, "%s", absent);
        return NULL;
    }
    const char *missing = resolve(h, table, syms, n);
    if (missing) {
        snprintf(why, cap, "%s lacks %s", lib, missing);
        return NULL;
    }
    return h;
}

/* What a getter returns: the table once loaded, else NULL and the reason in err. */
static const void *answer(int ok, const void *table, const char *why, usher_error *err)
{
    if (ok)
        return table;
    us_err_set(err, USHER_ERR_UNSUPPORTED, "%s", why);
    return NULL;
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the driver ----------------------------------------------------------- */

static pthread_once_t drv_once = PTHREAD_ONCE_INIT;
static gpu_cu drv;
static int drv_ok;
static char drv_why[160];

static void drv_load(void)
{
    static const char *const names[] = {"libcuda.so.1", NULL};
    static const sym need[] = {
        {"cuInit", offsetof(gpu_cu, init)},
        {"cuDeviceGetCount", offsetof(gpu_cu, device_get_count)},
        {"cuDeviceGet", offsetof(gpu_cu, device_get)},
        {"cuDeviceGetAttribute", offsetof(gpu_cu, device_get_attribute)},
        {"cuDeviceGetName", offsetof(gpu_cu, device_get_name)},
        {"cuGetErrorString", offsetof(gpu_cu, get_error_string)},
        {"cuStreamDestroy_v2", offsetof(gpu_cu, stream_destroy)},
    };
    static const sym green[] = {
        {"cuDeviceGetDevResource", offsetof(gpu_cu, dev_get_dev_resource)},
        {"cuDevSmResourceSplitByCount", offsetof(gpu_cu, dev_sm_resource_split_by_count)},
        {"cuDevResourceGenerateDesc", offsetof(gpu_cu, dev_resource_generate_desc)},
        {"cuGreenCtxCreate", offsetof(gpu_cu, green_ctx_create)},
        {"cuGreenCtxStreamCreate", offsetof(gpu_cu, green_ctx_stream_create)},
        {"cuGreenCtxDestroy", offsetof(gpu_cu, green_ctx_destroy)},
    };
    void *h = load_lib(names, &drv, need, N_OF(need),
                       "no NVIDIA driver (libcuda.so.1 cannot be loaded)", "libcuda.so.1", drv_why,
                       sizeof drv_why);
    if (!h)
        return;
    drv.green_missing = resolve(h, &drv, green, N_OF(green));
    if (drv.green_missing) /* all or none: a partial set is never called */
        for (size_t i = 0; i < N_OF(green); i++)
            memset((char *)&drv + green[i].off, 0, sizeof(void *));
    int rc = drv.init(0);
    if (rc != 0) {
        snprintf(drv_why, sizeof drv_why, "cuInit failed with CUDA error %d", rc);
        return;
    }
    drv_ok = 1;
}

const gpu_cu *gpu_cuda_driver(usher_error *err)
{
    pthread_once(&drv_once, drv_load);
    return answer(drv_ok, &drv, drv_why, err);
}

const char *gpu_cuda_driver_why(void)
{
    pthread_once(&drv_once, drv_load);
    return drv_ok ? "" : drv_why;
}

/* ---- the runtime ---------------------------------------------------------- */

static pthread_once_t rt_once = PTHREAD_ONCE_INIT;
static gpu_cudart rt;
static int rt_ok;
static char rt_why[160];

static void rt_load(void)
{
    static const char *const names[] = {"libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0",
                                        "libcudart.so", "/usr/local/cuda/lib64/libcudart.so", NULL};
    static const sym need[] = {
        {"cudaGetDeviceCount", offsetof(gpu_cudart, get_device_count)},
        {"cudaDeviceGetAttribute", offsetof(gpu_cudart, device_get_attribute)},
        {"cudaSetDevice", offsetof(gpu_cudart, set_device)},
        {"cudaMalloc", offsetof(gpu_cudart, malloc_)},
        {"cudaFree", offsetof(gpu_cudart, free_)},
        {"cudaMemcpy", offsetof(gpu_cudart, memcpy_)},
        {"cudaMemset", offsetof(gpu_cudart, memset_)},
        {"cudaMemsetAsync", offsetof(gpu_cudart, memset_async)},
        {"cudaDeviceSynchronize", offsetof(gpu_cudart, device_synchronize)},
        {"cudaEventCreate", offsetof(gpu_cudart, event_create)},
        {"cudaEventRecord", offsetof(gpu_cudart, event_record)},
        {"cudaEventSynchronize", offsetof(gpu_cudart, event_synchronize)},
        {"cudaEventElapsedTime", offsetof(gpu_cudart, event_elapsed_time)},
        {"cudaEventDestroy", offsetof(gpu_cudart, event_destroy)},
        {"cudaMemGetInfo", offsetof(gpu_cudart, mem_get_info)},
        {"cudaGetErrorString", offsetof(gpu_cudart, get_error_string)},
    };
    if (!load_lib(names, &rt, need, N_OF(need),
                  "no GPU: the CUDA runtime library (libcudart) cannot be loaded",
                  "no GPU: libcudart", rt_why, sizeof rt_why))
        return;
    int n = 0, rc = rt.get_device_count(&n);
    if (rc != 0 || n < 1) {
        snprintf(rt_why, sizeof rt_why, "no GPU: cudaGetDeviceCount failed with error %d (%s)", rc,
                 rc ? rt.get_error_string(rc) : "no device");
        return;
    }
    rt_ok = 1;
}

const gpu_cudart *gpu_cuda_runtime(usher_error *err)
{
    pthread_once(&rt_once, rt_load);
    return answer(rt_ok, &rt, rt_why, err);
}

/* ---- cuBLAS --------------------------------------------------------------- */

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static gpu_cublas blas;
static int blas_ok;
static char blas_why[160];

static void blas_load(void)
{
    static const char *const names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11",
                                        "libcublas.so", "/usr/local/cuda/lib64/libcublas.so", NULL};
    static const sym need[] = {
        {"cublasCreate_v2", offsetof(gpu_cublas, create)},
        {"cublasDestroy_v2", offsetof(gpu_cublas, destroy)},
        {"cublasSgemm_v2", offsetof(gpu_cublas, sgemm)},
        {"cublasGemmEx", offsetof(gpu_cublas, gemm_ex)},
    };
    blas_ok = load_lib(names, &blas, need, N_OF(need), "cuBLAS (libcublas) cannot be loaded",
                       "libcublas", blas_why, sizeof blas_why) != NULL;
}

const gpu_cublas *gpu_cuda_blas(usher_error *err)
{
    pthread_once(&blas_once, blas_load);
    return answer(blas_ok, &blas, blas_why, err);
}
