/*
 * calibrate.c - `usher calibrate`: measure this machine's GPU and write its
 * calibration row (layer 9). Builds everywhere; without a GPU it says so.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "usher/estimate.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: usher calibrate [--gpu TYPE] [--device N] [-o FILE]\n\n"
            "Runs micro-benchmarks on GPU N of this machine (memcpy bandwidth, kernel\n"
            "launch cost, cuBLAS FP32 and FP16 tensor-core GEMMs), prints what it measured\n"
            "and the calibration row for framework onnxruntime-cuda (docs/calibration.md).\n"
            "Measured coefficients are bounded to their physical ranges (an efficiency is\n"
            "at most 1); what a bound cuts is printed as a residual.\n"
            "With -o, the row replaces the one for the same GPU in FILE (created if\n"
            "missing); use it with `usher estimate --calibration FILE`.\n\n"
            "  --gpu TYPE   catalog key of the device (default: matched by SMs and\n"
            "               compute capability)\n"
            "  --device N   CUDA device index (default 0)\n"
            "Needs the CUDA runtime and cuBLAS libraries and a GPU; exits 1 otherwise.\n");
}

int cli_calibrate(int argc, char **argv)
{
    const char *gpu = NULL, *out = NULL;
    int64_t device = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--gpu") == 0 && v) {
            gpu = v;
            i++;
        } else if (strcmp(a, "-o") == 0 && v) {
            out = v;
            i++;
        } else if (strcmp(a, "--device") == 0 && v) {
            if (!cli_parse_i64(v, 0, 255, &device)) {
                fprintf(stderr, "usher calibrate: --device needs an index 0..255\n");
                return CLI_USAGE;
            }
            i++;
        } else {
            fprintf(stderr, "usher calibrate: unknown argument '%s'\n", a);
            help(stderr);
            return CLI_USAGE;
        }
    }
    usher_error err;
    char report[2048] = "", row[4096] = "";
    if (usher_calibrate_device(gpu, (int)device, out, report, sizeof report, row, sizeof row,
                               &err) < 0) {
        fprintf(stderr, "usher calibrate: %s\n", err.msg);
        return CLI_FAIL;
    }
    fputs(report, stderr);
    if (out)
        fprintf(stderr, "usher calibrate: row written to %s\n", out);
    else
        fputs(row, stdout);
    return CLI_OK;
}
