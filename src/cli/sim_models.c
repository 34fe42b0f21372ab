/*
 * sim_models.c - what `usher simulate` and `usher compare` share as front
 * ends of the simulator: the workload's model files loaded once (a file named
 * by several models is loaded once), the profile and device callbacks over
 * the public estimator, the wall clock and the terminal's progress bar.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

int cli_sim_models_load(cli_sim_models *m, const char *verb, const char *wl)
{
    uint32_t n = usher_sim_workload_models(m->w);
    for (uint32_t i = 0; i < n; i++) {
        usher_sim_model_info mi;
        usher_sim_workload_model(m->w, i, &mi);
        m->precision[i] = usher_precision_parse(mi.precision);
        for (uint32_t j = 0; j < i && !m->models[i]; j++) {
            usher_sim_model_info mj;
            usher_sim_workload_model(m->w, j, &mj);
            if (strcmp(mi.path, mj.path) == 0)
                m->models[i] = m->models[j];
        }
        if (m->models[i])
            continue;
        usher_error le;
        if (usher_model_load(mi.path, NULL, &m->models[i], &le) < 0) {
            fprintf(stderr, "usher %s: %s:%zu: field 'models[%u].model': %s\n", verb, wl, mi.line,
                    i, le.msg);
            return le.code;
        }
    }
    return USHER_OK;
}

void cli_sim_models_free(cli_sim_models *m)
{
    uint32_t n = m->w ? usher_sim_workload_models(m->w) : 0;
    for (uint32_t i = 0; m->models && i < n; i++) {
        bool shared = false;
        for (uint32_t j = i + 1; j < n && !shared; j++)
            shared = m->models[j] == m->models[i];
        if (!shared) /* the last holder frees it */
            usher_model_free(m->models[i]);
    }
}

int cli_sim_profile(void *ctx, uint32_t model, const char *gpu, int64_t batch, double share_pct,
                    usher_profile *out, usher_error *err)
{
    const cli_sim_models *m = ctx;
    usher_estimate_params ep = usher_estimate_default_params();
    ep.gpu = gpu;
    ep.batch = batch;
    ep.share_pct = share_pct;
    ep.precision = (usher_precision)m->precision[model];
    return usher_estimate(m->e, m->models[model], &ep, out, err);
}

int cli_sim_device(void *ctx, const char *gpu, double *bw, double *l2, usher_error *err)
{
    return usher_interfere_device(((const cli_sim_models *)ctx)->e, gpu, bw, l2, err);
}

double cli_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bool cli_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

void cli_progress_bar(const char *label, int pct, int width, const char *suffix)
{
    char bar[64];
    if (width > (int)sizeof bar - 1)
        width = (int)sizeof bar - 1;
    int n = pct * width / 100;
    for (int i = 0; i < width; i++)
        bar[i] = i < n ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r%s [%s] %3d%%%s", label, bar, pct, suffix ? suffix : "");
    fflush(stderr);
}
