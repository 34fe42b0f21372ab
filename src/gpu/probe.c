/*
 * probe.c - how many CUDA devices this process can use (layer 2).
 *
 * Through the driver API of the one CUDA loader (cuda.c): cuInit +
 * cuDeviceGetCount respect CUDA_VISIBLE_DEVICES and create no context (the
 * server, which probes, must not become an MPS client: only its workers
 * are). Any failure means "no GPU, use the CPU path", with the reason.
 */
#include <stdio.h>

#include "gpu/cuda.h"
#include "gpu/gpu.h"

int gpu_device_count(char *why, size_t cap)
{
    const gpu_cu *cu = gpu_cuda_driver(NULL);
    if (!cu) {
        snprintf(why, cap, "%s", gpu_cuda_driver_why());
        return 0;
    }
    int n = 0, rc = cu->device_get_count(&n);
    if (rc != 0 || n < 1) {
        snprintf(why, cap, rc ? "cuDeviceGetCount failed with CUDA error %d" : "no CUDA device",
                 rc);
        return 0;
    }
    return n;
}
