/*
 * interfere.c - `usher interfere`: predicted latencies of replicas that share
 * one GPU or MIG instance, and the fit of the model (docs/interference.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "usher/estimate.h"
#include "usher/interfere.h"
#include "usher/model.h"

#define MAX_REPLICAS 64

static void help(FILE *f)
{
    fprintf(f,
            "usage: usher interfere --gpu TYPE MODEL:BATCH:SHARE [MODEL:BATCH:SHARE...]\n"
            "                       [--precision fp32|tf32|fp16|int8] [--framework NAME]\n"
            "                       [--calibration FILE] [--json]\n"
            "       usher interfere --fit CSV [--models DIR] [--no-held-out]\n"
            "\n"
            "Predicts each replica's latency while the others run beside it on one GPU\n"
            "(or one MIG instance), back to back: SM time-slicing when the MPS shares\n"
            "sum past 100%%, DRAM bandwidth (saturation and loaded latency) and L2\n"
            "pressure, from the estimator's profiles. docs/interference.md.\n"
            "\n"
            "  --gpu TYPE        catalog key (v100-16gb, a100-80gb, ...) or a MIG instance\n"
            "                    (a100-80gb:3g.40gb); see usher estimate --list-gpus\n"
            "  MODEL:BATCH:SHARE an ONNX file (or a name of models/zoo), its batch size and\n"
            "                    its MPS share in %% (100: uncapped); give a model twice for\n"
            "                    two replicas of it\n"
            "  --precision P     fp32 (default), tf32, fp16 or int8\n"
            "  --framework NAME  calibration row (default onnxruntime-cuda)\n"
            "  --calibration F   calibration table (docs/calibration.md)\n"
            "  --json            one object per replica: model, batch, share,\n"
            "                    latency_alone_ms, latency_colocated_ms, slowdown, ...\n"
            "  --fit CSV         fit the model's coefficients on measurements (the columns of\n"
            "                    data/interference.csv) and report the error per source,\n"
            "                    in sample and on model pairs held out of the fit\n"
            "  --models DIR      where the models the CSV names lie (default models/zoo)\n"
            "  --no-held-out     skip the held-out refits (faster)\n");
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        if ((unsigned char)*s >= 0x20)
            putchar(*s);
    }
    putchar('"');
}

/* split "MODEL:BATCH:SHARE" from the right (a path may hold ':') */
static bool parse_replica(char *s, const char **model, int64_t *batch, double *share)
{
    char *c2 = strrchr(s, ':');
    if (!c2 || c2 == s)
        return false;
    *c2 = 0;
    char *c1 = strrchr(s, ':');
    if (!c1 || c1 == s)
        return false;
    *c1 = 0;
    char *end;
    *share = strtod(c2 + 1, &end);
    if (end == c2 + 1 || *end || !(*share > 0) || *share > 100)
        return false;
    if (!cli_parse_i64(c1 + 1, 1, 1 << 20, batch))
        return false;
    *model = s;
    return true;
}

static int fit(const char *csv, const char *dir, bool held_out)
{
    usher_interfere_fit_params p = {.csv = csv, .model_dir = dir, .held_out = held_out};
    char *report;
    usher_error err;
    if (usher_interfere_fit(&p, &report, &err) < 0) {
        fprintf(stderr, "usher interfere: %s\n", err.msg);
        return CLI_FAIL;
    }
    fputs(report, stdout);
    usher_free(report);
    return CLI_OK;
}

int cli_interfere(int argc, char **argv)
{
    const char *gpu = NULL, *calib = NULL, *framework = NULL, *fit_csv = NULL;
    const char *models = "models/zoo";
    bool json = false, held_out = true;
    int prec = 0;
    const char *name[MAX_REPLICAS];
    int64_t batch[MAX_REPLICAS];
    double share[MAX_REPLICAS];
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--no-held-out") == 0) {
            held_out = false;
        } else if (strcmp(a, "--gpu") == 0 && v) {
            gpu = v;
            i++;
        } else if (strcmp(a, "--fit") == 0 && v) {
            fit_csv = v;
            i++;
        } else if (strcmp(a, "--models") == 0 && v) {
            models = v;
            i++;
        } else if (strcmp(a, "--calibration") == 0 && v) {
            calib = v;
            i++;
        } else if (strcmp(a, "--framework") == 0 && v) {
            framework = v;
            i++;
        } else if (strcmp(a, "--precision") == 0 && v) {
            prec = usher_precision_parse(v);
            if (prec < 0) {
                fprintf(stderr, "usher interfere: --precision is fp32, tf32, fp16 or int8\n");
                return CLI_USAGE;
            }
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "usher interfere: unknown option '%s' (or it needs a value)\n", a);
            return CLI_USAGE;
        } else {
            if (n == MAX_REPLICAS) {
                fprintf(stderr, "usher interfere: at most %d replicas\n", MAX_REPLICAS);
                return CLI_USAGE;
            }
            if (!parse_replica(argv[i], &name[n], &batch[n], &share[n])) {
                fprintf(stderr,
                        "usher interfere: '%s': expected MODEL:BATCH:SHARE (batch 1..2^20, "
                        "share in (0, 100])\n",
                        a);
                return CLI_USAGE;
            }
            n++;
        }
    }
    if (fit_csv)
        return fit(fit_csv, models, held_out);
    if (!gpu || n == 0) {
        help(stderr);
        return CLI_USAGE;
    }
    usher_estimator_params ep = usher_estimator_default_params();
    ep.calibration = calib;
    ep.framework = framework;
    usher_estimator *e;
    usher_error err;
    if (usher_estimator_new(&ep, &e, &err) < 0) {
        fprintf(stderr, "usher interfere: %s\n", err.msg);
        return CLI_FAIL;
    }
    usher_profile prof[MAX_REPLICAS];
    usher_colocation col[MAX_REPLICAS];
    int status = CLI_OK;
    for (size_t i = 0; i < n && status == CLI_OK; i++) {
        char path[4096];
        const char *file = name[i];
        if (!strchr(file, '/') && !strstr(file, ".onnx")) {
            snprintf(path, sizeof path, "models/zoo/%s.onnx", file);
            file = path;
        }
        usher_model *m;
        if (usher_model_load(file, NULL, &m, &err) < 0) {
            fprintf(stderr, "usher interfere: replica %zu: %s\n", i + 1, err.msg);
            status = CLI_FAIL;
            break;
        }
        usher_estimate_params p = usher_estimate_default_params();
        p.gpu = gpu;
        p.batch = batch[i];
        p.share_pct = share[i];
        p.precision = (usher_precision)prec;
        if (usher_estimate(e, m, &p, &prof[i], &err) < 0) {
            fprintf(stderr, "usher interfere: replica %zu (%s): %s\n", i + 1, name[i], err.msg);
            status = CLI_FAIL;
        }
        usher_model_free(m);
    }
    if (status == CLI_OK && usher_interfere(e, prof, n, col, &err) < 0) {
        fprintf(stderr, "usher interfere: %s\n", err.msg);
        status = CLI_FAIL;
    }
    if (status == CLI_OK) {
        double share_sum = 0;
        for (size_t i = 0; i < n; i++)
            share_sum += share[i];
        if (!json)
            printf("%s, %zu replica(s), shares summing to %g%%%s\n%-24s %6s %6s %10s %12s %8s "
                   "%12s %6s %6s %6s\n",
                   gpu, n, share_sum, share_sum > 100 ? " (SMs time-sliced)" : "", "model",
                   "batch", "share", "alone ms", "colocated ms", "slowdown", "thr/s coloc",
                   "f_sm", "f_bw", "f_l2");
        for (size_t i = 0; i < n; i++) {
            const usher_colocation *c = &col[i];
            if (json) {
                printf("{\"model\":");
                json_str(name[i]);
                printf(",\"gpu\":");
                json_str(gpu);
                printf(",\"batch\":%lld,\"share\":%g,\"latency_alone_ms\":%.6g,"
                       "\"latency_colocated_ms\":%.6g,\"slowdown\":%.6g,"
                       "\"throughput_alone\":%.6g,\"throughput_colocated\":%.6g,\"busy\":%.4g,"
                       "\"f_sm\":%.6g,\"f_bw\":%.6g,\"f_l2\":%.6g,\"calibrated\":%s}\n",
                       (long long)batch[i], share[i], c->latency_alone_ms,
                       c->latency_colocated_ms, c->slowdown, c->throughput_alone,
                       c->throughput_colocated, c->busy, c->f_sm, c->f_bw, c->f_l2,
                       prof[i].calibrated ? "true" : "false");
            } else {
                printf("%-24.24s %6lld %5g%% %10.3f %12.3f %7.3fx %12.1f %6.3f %6.3f %6.3f\n",
                       name[i], (long long)batch[i], share[i], c->latency_alone_ms,
                       c->latency_colocated_ms, c->slowdown, c->throughput_colocated, c->f_sm,
                       c->f_bw, c->f_l2);
            }
        }
        if (!json && !prof[0].calibrated)
            printf("note: %s\n", prof[0].warning);
    }
    usher_estimator_free(e);
    return status;
}
