/*
 * estimate.c - `usher estimate`: latency, Creq, Mreq, bandwidth and energy of
 * a model per GPU type, batch size, compute share and precision (layer 9).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "usher/estimate.h"

#define MAX_LIST 64

/* the calibration row of the GPU being printed (usher_estimator_calibration_row) */
static char cal_row[320];
static bool cal_borrowed;

static void help(FILE *f)
{
    fprintf(f,
            "usage: usher estimate MODEL --gpu TYPE[,TYPE...] [--batch N[,N...]]\n"
            "                      [--share PCT[,PCT...]] [--precision fp32|tf32|fp16|int8]\n"
            "                      [--dim NAME=V]... [--json] [--calibration FILE]\n"
            "                      [--framework NAME] [--streams 0|1] [--graph-only]\n"
            "                      [--kernels [--top N]]\n"
            "       usher estimate --list-gpus\n\n"
            "Predicts, without running the model, what one batch needs from a GPU:\n"
            "latency, compute requirement (Creq, %% of the GPU), memory requirement\n"
            "(Mreq), DRAM bandwidth, L2 working set and energy.\n\n"
            "  --gpu TYPE        catalog key (a100-80gb, v100-16gb, ...) or a MIG instance\n"
            "                    (a100-80gb:3g.40gb); --list-gpus shows them all\n"
            "  --batch N,...     batch sizes (default 1)\n"
            "  --share PCT,...   compute shares, %% of the GPU's SMs as MPS grants them\n"
            "                    (default 100)\n"
            "  --precision P     fp32 (default), tf32, fp16 or int8\n"
            "  --dim NAME=V      bind another dynamic dim (see usher inspect); a dim left\n"
            "                    unset takes the model's recorded default (the zoo's\n"
            "                    seq 128, size 224/640, past 512), e.g. --dim seq=384\n"
            "  --json            one JSON object per configuration\n"
            "  --calibration F   calibration table (docs/calibration.md); default built in\n"
            "  --framework NAME  calibration row to use (default onnxruntime-cuda); the row\n"
            "                    used, own or borrowed from the GPU's family, is named on\n"
            "                    stderr (--json: calibration_row, calibration_borrowed)\n"
            "  --streams 0|1     1: kernels in one stream (default); 0: as soon as ready\n"
            "  --graph-only      do not require weight data (the zoo models are graph-only)\n"
            "  --kernels         after each configuration, the kernels it was timed as: node,\n"
            "                    operator, kind, algorithm chosen (gemm, gemv, winograd,\n"
            "                    winograd4, implicit-gemm, direct, stream), GEMM shape,\n"
            "                    time, compute and memory terms, GFLOPs, DRAM MB; then\n"
            "                    the time per kind and algorithm\n"
            "  --top N           with --kernels: only the N costliest kernels\n");
}

static int parse_list(const char *s, double *out, int max, bool integer)
{
    int n = 0;
    char buf[1024];
    if (strlen(s) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (n == max)
            return -1;
        char *end;
        double v = strtod(tok, &end);
        if (*end || !isfinite(v) || (integer && v != floor(v)))
            return -1;
        out[n++] = v;
    }
    return n;
}

static int by_ms_desc(const void *a, const void *b)
{
    double x = ((const usher_kernel_info *)a)->ms, y = ((const usher_kernel_info *)b)->ms;
    return (x < y) - (x > y);
}

/* the --kernels listing of one configuration; returns CLI_OK or CLI_FAIL */
static int print_kernels(usher_estimator *e, usher_model *m, const usher_estimate_params *p,
                         int64_t top, bool json)
{
    usher_error err;
    size_t n = 0;
    if (usher_estimate_kernels(e, m, p, NULL, 0, &n, &err) < 0) {
        fprintf(stderr, "usher estimate: %s\n", err.msg);
        return CLI_FAIL;
    }
    usher_kernel_info *k = calloc(n ? n : 1, sizeof *k);
    if (!k) {
        fprintf(stderr, "usher estimate: out of memory\n");
        return CLI_FAIL;
    }
    if (usher_estimate_kernels(e, m, p, k, n, &n, &err) < 0) {
        fprintf(stderr, "usher estimate: %s\n", err.msg);
        free(k);
        return CLI_FAIL;
    }
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += k[i].ms;
    if (top > 0)
        qsort(k, n, sizeof *k, by_ms_desc);
    size_t shown = top > 0 && (size_t)top < n ? (size_t)top : n;
    if (!json)
        printf("  %-34s %-14s %-11s %-13s %-24s %9s %9s %9s %8s %9s\n", "node", "op", "kind",
               "algo", "gemm batch x m x n x k", "ms", "comp ms", "mem ms", "GFLOP", "DRAM MB");
    for (size_t i = 0; i < shown; i++) {
        const usher_kernel_info *q = &k[i];
        char shape[64] = "";
        if (q->m)
            snprintf(shape, sizeof shape, "%lldx%lldx%lldx%lld", (long long)q->batch,
                     (long long)q->m, (long long)q->n, (long long)q->k);
        if (json) {
            printf("{\"kernel\":%zu,\"node\":\"", i);
            for (const char *c = q->node; *c; c++) {
                if (*c == '"' || *c == '\\')
                    putchar('\\');
                if ((unsigned char)*c >= 0x20)
                    putchar(*c);
            }
            printf("\",\"op\":\"%s\",\"kind\":\"%s\",\"algo\":\"%s\",\"batch\":%lld,\"m\":%lld,"
                   "\"n\":%lld,\"k\":%lld,\"launches\":%u,\"ms\":%.6g,\"compute_ms\":%.6g,"
                   "\"memory_ms\":%.6g,\"gflops\":%.6g,\"dram_mb\":%.6g,\"share_pct\":%.4g}\n",
                   q->op, q->kind, q->algo, (long long)q->batch, (long long)q->m, (long long)q->n,
                   (long long)q->k, q->launches, q->ms, q->compute_ms, q->memory_ms, q->gflops,
                   q->dram_mb, q->share_pct);
            continue;
        }
        printf("  %-34.34s %-14.14s %-11s %-13s %-24s %9.4f %9.4f %9.4f %8.4f %9.3f\n", q->node,
               q->op, q->kind, q->algo, shape, q->ms, q->compute_ms, q->memory_ms, q->gflops,
               q->dram_mb);
    }
    if (!json) {
        /* time per kind and algorithm, costliest first */
        const char *kinds[32][2];
        double ms[32], gf[32];
        int nk = 0;
        for (size_t i = 0; i < n; i++) {
            int j = 0;
            while (j < nk && (strcmp(kinds[j][0], k[i].kind) || strcmp(kinds[j][1], k[i].algo)))
                j++;
            if (j == nk) {
                if (nk == 32)
                    continue;
                kinds[nk][0] = k[i].kind;
                kinds[nk][1] = k[i].algo;
                ms[nk] = gf[nk] = 0;
                nk++;
            }
            ms[j] += k[i].ms;
            gf[j] += k[i].gflops;
        }
        printf("  by kind (%zu kernel problems, %.4f ms of GPU time):\n", n, total);
        for (int a = 0; a < nk; a++) {
            int best = a;
            for (int b = a + 1; b < nk; b++)
                if (ms[b] > ms[best])
                    best = b;
            printf("    %-11s %-13s %9.4f ms %5.1f%% %9.3f GFLOP %8.2f TFLOP/s\n", kinds[best][0],
                   kinds[best][1], ms[best], total > 0 ? ms[best] / total * 100 : 0, gf[best],
                   ms[best] > 0 ? gf[best] / ms[best] : 0);
            const char *t0 = kinds[a][0], *t1 = kinds[a][1];
            double tm = ms[a], tg = gf[a];
            kinds[a][0] = kinds[best][0];
            kinds[a][1] = kinds[best][1];
            ms[a] = ms[best];
            gf[a] = gf[best];
            kinds[best][0] = t0;
            kinds[best][1] = t1;
            ms[best] = tm;
            gf[best] = tg;
        }
    }
    free(k);
    return CLI_OK;
}

static void print_json(const char *model, const usher_profile *p)
{
    printf("{\"model\":\"");
    for (const char *c = model; *c; c++) {
        if (*c == '"' || *c == '\\')
            putchar('\\');
        if ((unsigned char)*c >= 0x20)
            putchar(*c);
    }
    printf("\",\"gpu\":\"%s\",\"batch\":%lld,\"share\":%g,\"sms\":%d,\"precision\":\"%s\","
           "\"latency_ms\":%.6g,\"gpu_ms\":%.6g,\"throughput\":%.6g,\"creq_pct\":%.4g,"
           "\"creq_avg_pct\":%.4g,\"mreq_pct\":%.4g,\"mreq_mb\":%.6g,\"weights_mb\":%.6g,"
           "\"activations_mb\":%.6g,\"workspace_mb\":%.6g,\"context_mb\":%.6g,"
           "\"bandwidth_gbs\":%.6g,\"dram_mb\":%.6g,\"compute_ms\":%.6g,\"mem_bound_ms\":%.6g,"
           "\"l2_working_set_mb\":%.6g,\"energy_j\":%.6g,"
           "\"avg_power_w\":%.6g,\"kernels\":%u,\"gflops\":%.6g,\"calibrated\":%s,"
           "\"framework\":\"%s\",\"exact\":%s,\"warning\":\"%s\",\"calibration_row\":\"%s\","
           "\"calibration_borrowed\":%s}\n",
           p->gpu, (long long)p->batch, p->share_pct, p->sms, usher_precision_name(p->precision),
           p->latency_ms, p->gpu_ms, p->throughput, p->creq_pct, p->creq_avg_pct, p->mreq_pct,
           p->mreq_mb, p->weights_mb, p->activations_mb, p->workspace_mb, p->context_mb,
           p->bandwidth_gbs, p->dram_mb, p->compute_ms, p->mem_bound_ms, p->l2_working_set_mb, p->energy_j, p->avg_power_w, p->n_kernels,
           p->gflops, p->calibrated ? "true" : "false", p->framework, p->exact ? "true" : "false",
           p->warning, cal_row, cal_borrowed ? "true" : "false");
}

int cli_estimate(int argc, char **argv)
{
    const char *model = NULL, *gpus = NULL, *calib = NULL, *framework = NULL;
    double batches[MAX_LIST] = {1}, shares[MAX_LIST] = {100};
    int nb = 1, ns = 1, prec = 0;
    int64_t streams = 1;
    bool json = false, list = false, graph_only = false, kernels = false;
    int64_t top = 0;
    usher_dim_binding dims[MAX_LIST];
    size_t n_dims = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--list-gpus") == 0) {
            list = true;
        } else if (strcmp(a, "--kernels") == 0) {
            kernels = true;
        } else if (strcmp(a, "--top") == 0 && v) {
            if (!cli_parse_i64(v, 1, 1000000, &top)) {
                fprintf(stderr, "usher estimate: --top needs a count >= 1\n");
                return CLI_USAGE;
            }
            i++;
        } else if (strcmp(a, "--graph-only") == 0) {
            graph_only = true;
        } else if (strcmp(a, "--gpu") == 0 && v) {
            gpus = v;
            i++;
        } else if (strcmp(a, "--calibration") == 0 && v) {
            calib = v;
            i++;
        } else if (strcmp(a, "--framework") == 0 && v) {
            framework = v;
            i++;
        } else if (strcmp(a, "--batch") == 0 && v) {
            nb = parse_list(v, batches, MAX_LIST, true);
            for (int k = 0; k < nb; k++)
                if (batches[k] < 1 || batches[k] > (1 << 20))
                    nb = -1;
            if (nb < 1) {
                fprintf(stderr, "usher estimate: --batch needs integers in [1, 2^20], comma "
                                "separated\n");
                return CLI_USAGE;
            }
            i++;
        } else if (strcmp(a, "--share") == 0 && v) {
            ns = parse_list(v, shares, MAX_LIST, false);
            for (int k = 0; k < ns; k++)
                if (!(shares[k] > 0) || shares[k] > 100)
                    ns = -1;
            if (ns < 1) {
                fprintf(stderr, "usher estimate: --share needs percentages in (0, 100], comma "
                                "separated\n");
                return CLI_USAGE;
            }
            i++;
        } else if (strcmp(a, "--precision") == 0 && v) {
            prec = usher_precision_parse(v);
            if (prec < 0) {
                fprintf(stderr, "usher estimate: --precision is fp32, tf32, fp16 or int8\n");
                return CLI_USAGE;
            }
            i++;
        } else if (strcmp(a, "--streams") == 0 && v) {
            if (!cli_parse_i64(v, 0, 1, &streams)) {
                fprintf(stderr, "usher estimate: --streams is 0 or 1\n");
                return CLI_USAGE;
            }
            i++;
        } else if (strcmp(a, "--dim") == 0 && v) {
            char *eq = strrchr(argv[i + 1], '=');
            int64_t dv;
            if (!eq || eq == argv[i + 1] || !cli_parse_i64(eq + 1, 1, (int64_t)1 << 40, &dv) ||
                n_dims == MAX_LIST) {
                fprintf(stderr, "usher estimate: --dim needs NAME=VALUE with VALUE >= 1\n");
                return CLI_USAGE;
            }
            *eq = '\0';
            dims[n_dims].name = argv[i + 1];
            dims[n_dims++].value = dv;
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "usher estimate: unknown option '%s' (or it needs a value)\n", a);
            return CLI_USAGE;
        } else if (!model) {
            model = a;
        } else {
            fprintf(stderr, "usher estimate: one model at a time ('%s')\n", a);
            return CLI_USAGE;
        }
    }
    usher_estimator_params ep = usher_estimator_default_params();
    ep.calibration = calib;
    ep.framework = framework;
    ep.streams = (int)streams;
    usher_estimator *e;
    usher_error err;
    if (usher_estimator_new(&ep, &e, &err) < 0) {
        fprintf(stderr, "usher estimate: %s\n", err.msg);
        return CLI_FAIL;
    }
    if (list) {
        for (size_t i = 0; i < usher_estimator_gpu_count(e); i++)
            printf("%s\n", usher_estimator_gpu_key(e, i));
        usher_estimator_free(e);
        return CLI_OK;
    }
    if (!model || !gpus) {
        usher_estimator_free(e);
        help(stderr);
        return CLI_USAGE;
    }
    usher_load_params lp = usher_load_default_params();
    lp.graph_only = graph_only;
    usher_model *m;
    if (usher_model_load(model, &lp, &m, &err) < 0) {
        fprintf(stderr, "usher estimate: %s\n", err.msg);
        usher_estimator_free(e);
        return CLI_FAIL;
    }
    int status = CLI_OK;
    char gbuf[1024];
    snprintf(gbuf, sizeof gbuf, "%s", gpus);
    if (!json)
        printf("%-22s %6s %6s %11s %11s %7s %9s %7s %9s %9s %8s\n", "gpu", "batch", "share",
               "latency ms", "samples/s", "Creq%", "Mreq MB", "Mreq%", "BW GB/s", "energy J",
               "kernels");
    bool warned = false;
    char *save = NULL;
    for (char *g = strtok_r(gbuf, ",", &save); g && status == CLI_OK; g = strtok_r(NULL, ",", &save)) {
        cal_row[0] = '\0';
        if (usher_estimator_calibration_row(e, g, framework, cal_row, sizeof cal_row,
                                            &cal_borrowed, NULL) == USHER_OK && !json)
            fprintf(stderr, "usher estimate: calibration for %s: %s\n", g, cal_row);
        for (int bi = 0; bi < nb && status == CLI_OK; bi++)
            for (int si = 0; si < ns && status == CLI_OK; si++) {
                usher_estimate_params p = usher_estimate_default_params();
                p.gpu = g;
                p.batch = (int64_t)batches[bi];
                p.share_pct = shares[si];
                p.precision = (usher_precision)prec;
                p.dims = dims;
                p.n_dims = n_dims;
                usher_profile prof;
                if (usher_estimate(e, m, &p, &prof, &err) < 0) {
                    fprintf(stderr, "usher estimate: %s\n", err.msg);
                    status = CLI_FAIL;
                    break;
                }
                if (json) {
                    print_json(model, &prof);
                    if (kernels)
                        status = print_kernels(e, m, &p, top, true);
                    continue;
                }
                printf("%-22s %6lld %5g%% %11.3f %11.1f %7.1f %9.1f %7.2f %9.1f %9.4f %8u\n",
                       prof.gpu, (long long)prof.batch, prof.share_pct, prof.latency_ms,
                       prof.throughput, prof.creq_pct, prof.mreq_mb, prof.mreq_pct,
                       prof.bandwidth_gbs, prof.energy_j, prof.n_kernels);
                if (prof.warning[0] && !warned) {
                    fprintf(stderr, "usher estimate: note: %s\n", prof.warning);
                    warned = true;
                }
                if (kernels)
                    status = print_kernels(e, m, &p, top, false);
            }
    }
    usher_model_free(m);
    usher_estimator_free(e);
    return status;
}
