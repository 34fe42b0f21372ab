/*
 * probe.c - how many CUDA devices this process can use (layer 3).
 *
 * The driver API (libcuda.so.1) is opened with dlopen, so usher builds and
 * runs where there is no driver; cuInit + cuDeviceGetCount respect
 * CUDA_VISIBLE_DEVICES and create no context (the server, which probes, must
 * not become an MPS client: only its workers are). Any failure means "no
 * GPU, use the CPU path", with the reason.
 */
#include <dlfcn.h>
#include <stdio.h>

#include "gpu/gpu.h"

typedef int (*fn_init)(unsigned);
typedef int (*fn_count)(int *);

int gpu_device_count(char *why, size_t cap)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(why, cap, "no NVIDIA driver (libcuda.so.1 cannot be loaded)");
        return 0;
    }
    fn_init init;
    fn_count count;
    *(void **)&init = dlsym(h, "cuInit");
    *(void **)&count = dlsym(h, "cuDeviceGetCount");
    int n = 0, rc = -1;
    if (!init || !count)
        snprintf(why, cap, "libcuda.so.1 lacks cuInit or cuDeviceGetCount");
    else if ((rc = init(0)) != 0)
        snprintf(why, cap, "cuInit failed with CUDA error %d", rc);
    else if ((rc = count(&n)) != 0 || n < 1)
        snprintf(why, cap, rc ? "cuDeviceGetCount failed with CUDA error %d" : "no CUDA device",
                 rc);
    if (n < 0)
        n = 0;
    /* the handle stays open: the driver does not support being unloaded */
    return rc == 0 ? n : 0;
}
