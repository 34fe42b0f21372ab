/*
 * golden.cpp - golden occupancy values for tests/test_gpu.c, computed by
 * NVIDIA's reference occupancy calculator (cuda_occupancy.h, a host-only
 * header shipped with the CUDA toolkit). A developer tool: CI does not run
 * it, and no GPU is needed.
 *
 *   g++ -std=c++17 -O1 -I/usr/local/cuda/include tools/occupancy/golden.cpp -o /tmp/golden
 *   /tmp/golden > /tmp/golden.inc      # paste into tests/test_gpu.c (occ_golden[])
 *
 * Each output line is one case:
 *   {cc_major, cc_minor, threads_per_block, regs_per_thread, smem_bytes,
 *    carveout_pct, blocks_per_sm, limit_mask},
 * smem_bytes is the kernel's dynamic shared memory (no static memory), the
 * kernel has opted in to the largest per-block size (what a kernel using
 * more than 48 KB must do), carveout_pct -1 is the driver default, and
 * limit_mask is cudaOccResult.limitingFactors (1 warps, 2 registers,
 * 4 shared memory, 8 block slots). blocks_per_sm 0 means the launch cannot
 * run; usher's calculator reports those as errors.
 *
 * The device description is filled by hand from the CUDA programming
 * guide's per-compute-capability table (the same numbers data/gpus.csv
 * carries per SM), since cudaGetDeviceProperties needs a GPU.
 */
#include <cuda_occupancy.h>

#include <cstdio>
#include <cstdint>
#include <vector>

struct Arch {
    int major, minor;
    int threads_per_sm;
    size_t smem_per_sm, smem_optin;
};

/* smem per SM and the opt-in per-block maximum, bytes (programming guide) */
static const Arch kArchs[] = {
    {7, 0, 2048, 96 * 1024, 96 * 1024},   {7, 5, 1024, 64 * 1024, 64 * 1024},
    {8, 0, 2048, 164 * 1024, 163 * 1024}, {8, 6, 1536, 100 * 1024, 99 * 1024},
    {8, 9, 1536, 100 * 1024, 99 * 1024},  {9, 0, 2048, 228 * 1024, 227 * 1024},
    {10, 0, 2048, 228 * 1024, 227 * 1024},
};

static cudaOccDeviceProp make_prop(const Arch &a)
{
    cudaOccDeviceProp p;
    p.computeMajor = a.major;
    p.computeMinor = a.minor;
    p.maxThreadsPerBlock = 1024;
    p.maxThreadsPerMultiprocessor = a.threads_per_sm;
    p.regsPerBlock = 65536;
    p.regsPerMultiprocessor = 65536;
    p.warpSize = 32;
    p.sharedMemPerBlock = 48 * 1024;
    p.sharedMemPerMultiprocessor = a.smem_per_sm;
    p.numSms = 1; /* occupancy per SM does not depend on it */
    p.sharedMemPerBlockOptin = a.smem_optin;
    p.reservedSharedMemPerBlock = a.major >= 8 ? 1024 : 0;
    return p;
}

static unsigned lcg_state = 12345u;
static unsigned lcg(unsigned n)
{
    lcg_state = lcg_state * 1103515245u + 12345u;
    return (lcg_state >> 8) % n;
}

static void emit(const Arch &a, int threads, int regs, size_t smem, int carveout)
{
    cudaOccDeviceProp prop = make_prop(a);
    cudaOccFuncAttributes attr;
    attr.maxThreadsPerBlock = 1024;
    attr.numRegs = regs;
    attr.sharedSizeBytes = 0;
    attr.partitionedGCConfig = PARTITIONED_GC_OFF;
    attr.shmemLimitConfig = FUNC_SHMEM_LIMIT_OPTIN;
    attr.maxDynamicSharedSizeBytes = a.smem_optin;
    attr.numBlockBarriers = 1;
    attr.virtualResourceCount = 0;
    cudaOccDeviceState state;
    state.carveoutConfig = carveout;
    cudaOccResult r;
    cudaOccError e =
        cudaOccMaxActiveBlocksPerMultiprocessor(&r, &prop, &attr, &state, threads, smem);
    if (e != CUDA_OCC_SUCCESS) {
        std::fprintf(stderr, "cc %d.%d threads %d regs %d smem %zu carveout %d: error %d\n",
                     a.major, a.minor, threads, regs, smem, carveout, (int)e);
        return;
    }
    std::printf("    {%d, %d, %d, %d, %zu, %d, %d, 0x%02x},\n", a.major, a.minor, threads, regs,
                smem, carveout, r.activeBlocksPerMultiprocessor, r.limitingFactors);
}

int main()
{
    static const int threads[] = {1,   32,  33,  64,  96,  100, 128, 160, 192, 256, 288, 320,
                                  384, 448, 500, 512, 576, 640, 768, 800, 896, 992, 1000, 1024};
    static const int regs[] = {0,  8,  16, 24, 32,  37,  40,  48, 56,
                               64, 72, 80, 96, 128, 168, 200, 255};
    static const size_t smem[] = {0,     1,     1024,  3000,  4096,   8192,   12288,  16384,
                                  24576, 32768, 40000, 49152, 65536,  73728,  98304,  102400,
                                  132000, 166912, 200000, 232448};
    static const int carveouts[] = {0, 10, 25, 50, 75, 100};
    const size_t n_threads = sizeof threads / sizeof threads[0];
    const size_t n_regs = sizeof regs / sizeof regs[0];
    const size_t n_smem = sizeof smem / sizeof smem[0];
    const size_t n_carve = sizeof carveouts / sizeof carveouts[0];

    for (const Arch &a : kArchs) {
        std::printf("    /* compute capability %d.%d */\n", a.major, a.minor);
        for (size_t i = 0; i < n_threads; i++) /* warp and slot limits */
            emit(a, threads[i], 32, 0, -1);
        for (size_t i = 0; i < n_regs; i++) /* register limit */
            emit(a, 256, regs[i], 0, -1);
        for (size_t i = 0; i < n_smem; i++) /* shared memory limit, up to the opt-in maximum */
            if (smem[i] <= a.smem_optin)
                emit(a, 128, 32, smem[i], -1);
        emit(a, 128, 32, a.smem_optin, -1);
        emit(a, 128, 32, a.smem_optin + 1, -1); /* over the per-block maximum: 0 blocks */
        emit(a, 1024, 64, 0, -1);               /* exactly 64K registers */
        emit(a, 1024, 72, 0, -1);               /* over 64K registers per block */
        emit(a, 800, 80, 0, -1);                /* fits only without sub-partition rounding */
        for (int k = 0; k < 30; k++) {          /* mixed */
            size_t s = smem[lcg((unsigned)n_smem)];
            if (s > a.smem_optin)
                s = a.smem_optin;
            int t = threads[lcg((unsigned)n_threads)]; /* one draw per statement: */
            int g = regs[lcg((unsigned)n_regs)];       /* argument order is unspecified */
            emit(a, t, g, s, -1);
        }
        for (int k = 0; k < 10; k++) { /* carveout preference */
            size_t s = smem[lcg(12)];
            int t = threads[lcg((unsigned)n_threads)];
            int g = regs[lcg(12)];
            int pct = carveouts[lcg((unsigned)n_carve)];
            emit(a, t, g, s, pct);
        }
    }
    return 0;
}
