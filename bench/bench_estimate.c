/*
 * bench_estimate.c - how fast the estimator is.
 *
 *   bench_estimate ZOO_DIR
 *
 * 1. One estimate of ResNet-50 at one (GPU, batch, share), from nothing
 *    cached ("cold": shape inference, kernel mapping and timing), with the
 *    kernel plan cached (another share or GPU: timing only), and a repeat
 *    (the profile cache). Medians of 51 runs. The baseline measured in the
 *    same run is shape inference alone (usher_model_infer), so the cold
 *    figure is also given as a multiple of it.
 * 2. The sweep the planner needs: every zoo model x 8 batch sizes (1..128) x
 *    10 GPU types x 10 shares (10..100%): total wall time.
 * Targets (issue 3): one estimate <= 3 ms; the sweep <= 10 s.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "usher/estimate.h"
#include "bench.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define RUNS 51

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    const char *zoo = argc > 1 ? argv[1] : "models/zoo";
    char path[512];
    snprintf(path, sizeof path, "%s/resnet50.onnx", zoo);
    usher_error err;
    usher_model *m;
    if (usher_model_load(path, NULL, &m, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double t_inf[RUNS], t_cold[RUNS], t_plan[RUNS], t_hit[RUNS];
    for (int r = 0; r < RUNS; r++) {
        usher_shape_params sp = usher_shape_default_params();
        sp.batch = 8 + r % 2; /* alternate so nothing is reused */
        double t0 = now();
        usher_model_infer(m, &sp, &err);
        t_inf[r] = now() - t0;
        usher_estimator *e;
        if (usher_estimator_new(NULL, &e, &err) < 0)
            return 1;
        usher_estimate_params p = usher_estimate_default_params();
        p.gpu = "a100-80gb";
        p.batch = 8;
        p.share_pct = 50;
        usher_profile prof;
        t0 = now();
        if (usher_estimate(e, m, &p, &prof, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        t_cold[r] = now() - t0;
        p.share_pct = 60;
        t0 = now();
        usher_estimate(e, m, &p, &prof, &err);
        t_plan[r] = now() - t0;
        t0 = now();
        usher_estimate(e, m, &p, &prof, &err);
        t_hit[r] = now() - t0;
        usher_estimator_free(e);
    }
    double inf = median(t_inf, RUNS);
    printf("ResNet-50, a100-80gb, batch 8 (median of %d):\n", RUNS);
    printf("  shape inference alone   %8.3f ms (baseline)\n", inf * 1e3);
    printf("  estimate, cold          %8.3f ms (%.1fx the baseline; target <= 3 ms)\n",
           median(t_cold, RUNS) * 1e3, median(t_cold, RUNS) / inf);
    printf("  estimate, plan cached   %8.3f ms\n", median(t_plan, RUNS) * 1e3);
    printf("  estimate, cached        %8.4f ms\n", median(t_hit, RUNS) * 1e3);
    usher_model_free(m);

    static const char *gpus[10] = {"t4", "v100-16gb", "a10", "l4", "a30", "a40", "a100-40gb",
                                   "a100-80gb", "h100-sxm", "l40s"};
    DIR *d = opendir(zoo);
    if (!d)
        return 1;
    usher_estimator *e;
    if (usher_estimator_new(NULL, &e, &err) < 0)
        return 1;
    struct dirent *de;
    int models = 0, configs = 0, failed = 0;
    double t0 = now();
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".onnx") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", zoo, de->d_name);
        if (usher_model_load(path, NULL, &m, &err) < 0)
            return 1;
        models++;
        for (int b = 1; b <= 128; b *= 2)
            for (int g = 0; g < 10; g++)
                for (int s = 10; s <= 100; s += 10) {
                    usher_estimate_params p = usher_estimate_default_params();
                    p.gpu = gpus[g];
                    p.batch = b;
                    p.share_pct = s;
                    usher_profile prof;
                    if (usher_estimate(e, m, &p, &prof, &err) < 0) {
                        if (failed++ == 0)
                            fprintf(stderr, "%s: %s\n", de->d_name, err.msg);
                    }
                    configs++;
                }
        usher_model_free(m);
    }
    closedir(d);
    double total = now() - t0;
    usher_estimator_free(e);
    printf("sweep: %d models x 8 batches x 10 GPUs x 10 shares = %d estimates in %.2f s "
           "(%.3f ms each; target <= 10 s), %d failed\n",
           models, configs, total, total / configs * 1e3, failed);
    return failed ? 1 : 0;
}
