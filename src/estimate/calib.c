/*
 * calib.c - the per-GPU calibration table (layer 4).
 *
 * File format (docs/calibration.md), line based, UTF-8, at most 1 MiB:
 *
 *     # comment
 *     [a100-80gb onnxruntime-cuda]      <- section: GPU key (or "*") and framework
 *     source = fitted on ...            <- free text up to the end of the line
 *     eff_gemm = 0.82                   <- numbers: decimal, finite, in range
 *     fusion = ort
 *
 * Every key of gpu_calib may appear once per section; a missing key keeps the
 * built-in default. Errors name the file, line and key. A table holds at
 * most 1024 sections.
 *
 * Physical ranges. A fitted coefficient is a property of a GPU and an engine,
 * so it must stay where physics puts it: an efficiency is a fraction of a
 * peak (at most 1), a per-kernel GPU cost is a few microseconds, a host cost
 * per operator tens. The same table bounds the file's values, the fit
 * (gpu_calib_fit, used by tools/accuracy) and the on-GPU measurement
 * (calibrate.c clamps what it measures and says so). A fit that would need
 * eff_gemm > 1 stops at 1 and keeps the rest as a residual, which the fit
 * reports, instead of hiding a timing-model error in an impossible number.
 *
 * Borrowing. A GPU or engine with no row borrows one (gpu_calib_lookup):
 * efficiencies are fractions of the catalog's peaks (SMs x clock x per-SM
 * throughput, bandwidth), so a row of another GPU of the same architecture
 * family carries over once those peaks are the new GPU's; the per-kernel GPU
 * time is scaled by the clocks; host costs (launch_us, fixed_us, copies) are
 * the engine's: kept from a row of the same engine, the defaults when another
 * engine's row stands in. The order and the reasons are in
 * docs/calibration.md; the row says what it was borrowed from.
 *
 * What a row did not measure. A fit learns only what its rows exercise (an
 * FP16-only group nothing of eff_gemm, one without depthwise convolutions
 * nothing of eff_depthwise); after converging it marks every coefficient that
 * can be doubled or halved at almost no change of its error as undetermined
 * (`undetermined = ...` in the file), and every lookup replaces those by the
 * built-in defaults instead of lending the value the descent happened to leave
 * (docs/calibration.md, issue 16's held-out report).
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/file.h"
#include "kernels.h"

#define MAX_SECTIONS 1024
#define MAX_LINE 1024

gpu_calib gpu_calib_default(void)
{
    gpu_calib c;
    memset(&c, 0, sizeof c);
    snprintf(c.gpu, sizeof c.gpu, "*");
    snprintf(c.framework, sizeof c.framework, "onnxruntime-cuda");
    snprintf(c.source, sizeof c.source,
             "built-in defaults (uncalibrated; docs/internals/estimate.md)");
    c.calibrated = false;
    c.eff_gemm = 0.80;
    c.eff_tensor = 0.60;
    c.eff_conv = 0.85;
    c.eff_mem = 0.80;
    c.eff_depthwise = 0.15;
    c.kernel_us = 2.5;
    c.launch_us = 6.0;
    c.fixed_us = 50.0;
    c.copy_us_per_mb = 83.0; /* 12 GB/s: PCIe 3.0 x16 in practice */
    c.context_mb = 400.0;
    c.workspace_mb = 64.0;
    c.idle_power_frac = 0.20;
    snprintf(c.fusion, sizeof c.fusion, "ort");
    return c;
}

typedef struct numkey {
    const char *name;
    size_t off;
    double lo, hi;
} numkey;

#define NK(f, lo, hi) {#f, offsetof(gpu_calib, f), lo, hi}
/* what a file may say (efficiencies at most 1: docs/calibration.md) */
static const numkey numkeys[] = {
    NK(eff_gemm, 0.001, 1),       NK(eff_tensor, 0.001, 1),      NK(eff_conv, 0.001, 1),
    NK(eff_mem, 0.001, 1),        NK(eff_depthwise, 0.001, 1),   NK(kernel_us, 0, 10000),
    NK(launch_us, 0, 100000),     NK(fixed_us, 0, 10000000),    NK(copy_us_per_mb, 0, 1000000),
    NK(context_mb, 0, 1000000),   NK(workspace_mb, 0, 1000000), NK(idle_power_frac, 0, 1),
    NK(sms, 0, 100000),           NK(clock_mhz, 0, 100000),
};

/* what a fit or a measurement may reach: the physical ranges (docs/calibration.md) */
#define FB(f, lo, hi) {#f, offsetof(gpu_calib, f), lo, hi}
static const gpu_calib_bound fit_bounds[] = {
    FB(eff_gemm, 0.05, 1.0),      /* a fraction of the FP32 SIMT peak */
    FB(eff_tensor, 0.03, 1.0),    /* a fraction of the tensor-core peak */
    FB(eff_conv, 0.1, 1.0),       /* cuDNN against cuBLAS on the same GEMM work; Winograd's
                                     saving is the kernel model's, not this factor's */
    FB(eff_mem, 0.05, 1.0),       /* a fraction of DRAM bandwidth */
    FB(eff_depthwise, 0.01, 1.0), /* a fraction of the FP32 peak */
    FB(launch_us, 2.0, 100.0),    /* host issue per operator: >= a bare cudaLaunchKernel
                                     (~2-5 us), <= an eager framework's dispatch */
    FB(kernel_us, 1.0, 20.0),     /* GPU-side fixed time per kernel (launch latency, ramp,
                                     tail): a few us on every measured GPU */
    FB(fixed_us, 0.0, 5000.0),    /* per inference: session run, synchronisation */
    FB(copy_us_per_mb, 0.0, 1000.0), /* host<->device, >= 1 GB/s; 0: not timed by the source */
};

const gpu_calib_bound *gpu_calib_bounds(size_t *n)
{
    *n = sizeof fit_bounds / sizeof fit_bounds[0];
    return fit_bounds;
}

static double *bound_val(gpu_calib *c, const gpu_calib_bound *b)
{
    return (double *)(void *)((char *)c + b->off);
}

int gpu_calib_clamp(gpu_calib *c)
{
    int moved = 0;
    for (size_t i = 0; i < sizeof fit_bounds / sizeof fit_bounds[0]; i++) {
        double *v = bound_val(c, &fit_bounds[i]);
        double x = isfinite(*v) ? fmin(fit_bounds[i].hi, fmax(fit_bounds[i].lo, *v))
                                : fit_bounds[i].lo;
        if (x != *v) {
            *v = x;
            moved++;
        }
    }
    return moved;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static bool key_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n >= max)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
              *p == ':' || *p == '_' || *p == '*'))
            return false;
    return true;
}

/* architecture families in generation order (the distance between two is the
 * difference of their indices) */
static const char *const families[] = {"volta", "turing", "ampere", "ada", "hopper", "blackwell"};
static const char *const family_titles[] = {"Volta", "Turing", "Ampere", "Ada", "Hopper",
                                            "Blackwell"};
#define N_FAMILIES (int)(sizeof families / sizeof families[0])

static int family_index(const char *f)
{
    for (int i = 0; f && i < N_FAMILIES; i++)
        if (strcmp(families[i], f) == 0)
            return i;
    return -1;
}

static bool gpu_family_known(const char *f) { return family_index(f) >= 0; }

const char *gpu_arch_family(const gpu_type *g)
{
    if (!g || !g->is_cuda)
        return "";
    int M = g->cc_major, m = g->cc_minor;
    if (M == 7)
        return m >= 5 ? "turing" : "volta";
    if (M == 8)
        return m == 9 ? "ada" : "ampere";
    if (M == 9)
        return "hopper";
    if (M == 10 || M == 11 || M == 12)
        return "blackwell";
    return "";
}

/* "eff_gemm eff_depthwise" -> the bits of those bounds; -1 on a name that is not one */
static int parse_undetermined(const char *v, uint32_t *mask)
{
    *mask = 0;
    const size_t nb = sizeof fit_bounds / sizeof fit_bounds[0];
    while (*v) {
        while (*v == ' ' || *v == '\t')
            v++;
        size_t l = 0;
        while (v[l] && v[l] != ' ' && v[l] != '\t')
            l++;
        if (!l)
            break;
        size_t i = 0;
        while (i < nb &&
               !(strlen(fit_bounds[i].name) == l && strncmp(fit_bounds[i].name, v, l) == 0))
            i++;
        if (i == nb)
            return -1;
        *mask |= 1u << i;
        v += l;
    }
    return 0;
}

/* the names of the bounds in mask, space-separated, into buf */
static void undetermined_names(uint32_t mask, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof fit_bounds / sizeof fit_bounds[0]; i++) {
        if (!(mask >> i & 1u))
            continue;
        int w = snprintf(buf + len, n - len, "%s%s", len ? " " : "", fit_bounds[i].name);
        if (w < 0 || (size_t)w >= n - len)
            break;
        len += (size_t)w;
    }
}

int gpu_calib_parse(const char *text, size_t len, const char *label, gpu_calib_table *out,
                    usher_error *err)
{
    memset(out, 0, sizeof *out);
    if (len > (1u << 20))
        return us_err_set(err, USHER_ERR_LIMIT, "%s: %zu bytes, over 1 MiB", label, len);
    gpu_calib *cur = NULL;
    uint32_t seen = 0; /* bit per numkey + extras, reset per section */
    size_t line = 0, pos = 0;
    char buf[MAX_LINE + 2];
    int rc = USHER_OK;
    while (pos < len && rc == USHER_OK) {
        line++;
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        if (end - pos > MAX_LINE) {
            rc = us_err_set(err, USHER_ERR_LIMIT, "%s:%zu: line longer than %d bytes", label,
                            line, MAX_LINE);
            break;
        }
        if (memchr(text + pos, '\0', end - pos)) {
            rc = us_err_set(err, USHER_ERR_PARSE, "%s:%zu: NUL byte in line", label, line);
            break;
        }
        memcpy(buf, text + pos, end - pos);
        buf[end - pos] = '\0';
        pos = end + 1;
        char *s = trim(buf);
        if (!*s || *s == '#')
            continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || trim(close + 1)[0]) {
                rc = us_err_set(err, USHER_ERR_PARSE, "%s:%zu: section header must be "
                                                      "'[gpu framework]'",
                                label, line);
                break;
            }
            *close = '\0';
            char *g = trim(s + 1), *fw = g;
            while (*fw && *fw != ' ' && *fw != '\t')
                fw++;
            if (*fw)
                *fw++ = '\0';
            fw = trim(fw);
            if (!key_ok(g, sizeof cur->gpu) || !key_ok(fw, sizeof cur->framework)) {
                rc = us_err_set(err, USHER_ERR_PARSE,
                                "%s:%zu: section needs a GPU key and a framework name "
                                "(lower case, digits, '-', '.', ':', '_')",
                                label, line);
                break;
            }
            for (uint32_t i = 0; i < out->n; i++)
                if (strcmp(out->rows[i].gpu, g) == 0 && strcmp(out->rows[i].framework, fw) == 0) {
                    rc = us_err_set(err, USHER_ERR_PARSE, "%s:%zu: section [%s %s] appears twice",
                                    label, line, g, fw);
                    break;
                }
            if (rc < 0)
                break;
            if (out->n == MAX_SECTIONS) {
                rc = us_err_set(err, USHER_ERR_LIMIT, "%s:%zu: more than %d sections", label,
                                line, MAX_SECTIONS);
                break;
            }
            gpu_calib *nr = us_realloc(out->rows, ((size_t)out->n + 1) * sizeof *nr);
            if (!nr) {
                rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
                break;
            }
            out->rows = nr;
            cur = &out->rows[out->n++];
            *cur = gpu_calib_default();
            cur->calibrated = true;
            snprintf(cur->gpu, sizeof cur->gpu, "%s", g);
            snprintf(cur->framework, sizeof cur->framework, "%s", fw);
            snprintf(cur->source, sizeof cur->source, "%s", label);
            seen = 0;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = us_err_set(err, USHER_ERR_PARSE, "%s:%zu: expected 'name = value'", label, line);
            break;
        }
        if (!cur) {
            rc = us_err_set(err, USHER_ERR_PARSE, "%s:%zu: a value before the first section",
                            label, line);
            break;
        }
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        unsigned bit;
        if (strcmp(k, "source") == 0) {
            bit = 30;
            snprintf(cur->source, sizeof cur->source, "%s", v);
        } else if (strcmp(k, "arch") == 0) {
            bit = 29;
            if (!gpu_family_known(v)) {
                rc = us_err_set(err, USHER_ERR_PARSE,
                                "%s:%zu: arch '%.40s' is not volta, turing, ampere, ada, hopper "
                                "or blackwell",
                                label, line, v);
                break;
            }
            snprintf(cur->arch, sizeof cur->arch, "%s", v);
        } else if (strcmp(k, "undetermined") == 0) {
            bit = 28;
            if (parse_undetermined(v, &cur->undetermined) < 0) {
                rc = us_err_set(err, USHER_ERR_PARSE,
                                "%s:%zu: undetermined = '%.60s': expected names of fitted "
                                "coefficients (eff_gemm, ..., copy_us_per_mb) separated by spaces",
                                label, line, v);
                break;
            }
        } else if (strcmp(k, "fusion") == 0) {
            bit = 31;
            bool ok;
            gpu_fusion_named(v, &ok);
            if (!ok) {
                rc = us_err_set(err, USHER_ERR_PARSE,
                                "%s:%zu: fusion '%s' is not none, ort or full", label, line, v);
                break;
            }
            snprintf(cur->fusion, sizeof cur->fusion, "%s", v);
        } else {
            const numkey *nk = NULL;
            for (size_t i = 0; i < sizeof numkeys / sizeof numkeys[0]; i++)
                if (strcmp(numkeys[i].name, k) == 0)
                    nk = &numkeys[i];
            if (!nk) {
                rc = us_err_set(err, USHER_ERR_PARSE, "%s:%zu: unknown key '%.60s'", label, line,
                                k);
                break;
            }
            bit = (unsigned)(nk - numkeys);
            char *endp;
            errno = 0;
            double d = strtod(v, &endp);
            if (!*v || *endp || errno || !isfinite(d) || d < nk->lo || d > nk->hi) {
                rc = us_err_set(err, USHER_ERR_PARSE,
                                "%s:%zu: %s = '%.40s' is not a number in [%g, %g]", label, line,
                                k, v, nk->lo, nk->hi);
                break;
            }
            *(double *)(void *)((char *)cur + nk->off) = d;
        }
        if (seen & (1u << bit)) {
            rc = us_err_set(err, USHER_ERR_PARSE, "%s:%zu: '%s' given twice in a section", label,
                            line, k);
            break;
        }
        seen |= 1u << bit;
    }
    if (rc < 0)
        gpu_calib_table_free(out);
    return rc;
}

int gpu_calib_load(const char *path, gpu_calib_table *out, usher_error *err)
{
    us_mapped m;
    memset(out, 0, sizeof *out);
    int rc = us_file_map(path, 1u << 20, &m, err);
    if (rc < 0)
        return rc;
    rc = gpu_calib_parse((const char *)m.data, m.len, path, out, err);
    us_file_unmap(&m);
    return rc;
}

void gpu_calib_table_free(gpu_calib_table *t)
{
    if (!t)
        return;
    us_free(t->rows);
    t->rows = NULL;
    t->n = 0;
}

static const gpu_calib *find(const gpu_calib_table *t, const char *gpu, const char *fw)
{
    for (uint32_t i = 0; t && i < t->n; i++)
        if (strcmp(t->rows[i].gpu, gpu) == 0 && (!fw || strcmp(t->rows[i].framework, fw) == 0))
            return &t->rows[i];
    return NULL;
}

/* Engines nearest first (docs/calibration.md "Borrowing", decided from what each
 * engine runs, before any held-out error was looked at): ONNX Runtime's CUDA
 * provider and TensorFlow are graph runtimes issuing cuDNN/cuBLAS kernels with
 * a few pattern fusions; PyTorch eager issues the same libraries' kernels one
 * operator at a time; TensorRT, TF-TRT and XLA compile and fuse. */
static const struct {
    const char *fw, *fusion;
    const char *kin[7];
} kins[] = {
    /* the default engine borrows only onnxruntime-cuda rows (docs/calibration.md "The
     * default engine"): another engine's row ranked GPUs wrongly (V100 above A100) */
    {"onnxruntime-cuda", "ort", {NULL}},
    {"tensorflow", "ort",
     {"onnxruntime-cuda", "pytorch", "pytorch-eager", "tensorflow-xla", "tf-trt", "tensorrt",
      NULL}},
    {"tensorflow-xla", "full",
     {"tf-trt", "tensorrt", "tensorflow", "onnxruntime-cuda", "pytorch", "pytorch-eager", NULL}},
    {"tensorrt", "full",
     {"tf-trt", "tensorflow-xla", "onnxruntime-cuda", "tensorflow", "pytorch", "pytorch-eager",
      NULL}},
    {"tf-trt", "full",
     {"tensorrt", "tensorflow-xla", "tensorflow", "onnxruntime-cuda", "pytorch", "pytorch-eager",
      NULL}},
    {"pytorch", "none",
     {"pytorch-eager", "onnxruntime-cuda", "tensorflow", "tensorflow-xla", "tensorrt", "tf-trt",
      NULL}},
    {"pytorch-eager", "none",
     {"pytorch", "onnxruntime-cuda", "tensorflow", "tensorflow-xla", "tensorrt", "tf-trt", NULL}},
};

const char *const *gpu_calib_kin(const char *framework)
{
    static const char *const none[1] = {NULL};
    for (size_t i = 0; framework && i < sizeof kins / sizeof kins[0]; i++)
        if (strcmp(kins[i].fw, framework) == 0)
            return kins[i].kin;
    return none; /* an engine usher knows nothing about borrows only its own rows */
}

static const char *engine_fusion(const char *framework)
{
    for (size_t i = 0; framework && i < sizeof kins / sizeof kins[0]; i++)
        if (strcmp(kins[i].fw, framework) == 0)
            return kins[i].fusion;
    return NULL;
}

/*
 * Engine priors: host costs set by what an engine is, not by a fit of another
 * engine (docs/calibration.md "Engine priors"). PyTorch eager runs a model as
 * Python: each operator is an nn.Module call or a functional call through
 * pybind11, the autograd and ATen dispatchers and the CUDA launch, 5-25 us of
 * CPU per operator before its kernel starts (Python ~1, binding ~1, autograd
 * 1-3, dispatcher 1-2, backend 1-5, cudaLaunchKernel 1-3 us), and the
 * torchvision and DeepLearningExamples models call every layer through
 * nn.Module.__call__ (hook checks, a Python frame per module) on top; 25 us,
 * the top of that range, is the prior. Fixed after the top of the published
 * range, not fitted: the fitted PyTorch rows of data/calibration.txt (32-100 us,
 * hosts of 2019-2021) were visible when it was chosen, and none is used. The
 * other engines keep the built-in host costs (an ONNX Runtime session: 6 us per
 * operator, 50 us per run): no published per-operator figure for TensorFlow's
 * executor, XLA or TensorRT was found to replace them with.
 */
static const struct {
    const char *fw;
    double launch_us;
} engine_priors[] = {
    {"pytorch", 25.0},
    {"pytorch-eager", 25.0},
};

gpu_calib gpu_calib_engine_default(const char *framework)
{
    gpu_calib c = gpu_calib_default();
    if (!framework)
        return c;
    snprintf(c.framework, sizeof c.framework, "%s", framework);
    const char *fu = engine_fusion(framework);
    if (fu)
        snprintf(c.fusion, sizeof c.fusion, "%s", fu);
    for (size_t i = 0; i < sizeof engine_priors / sizeof engine_priors[0]; i++)
        if (strcmp(engine_priors[i].fw, framework) == 0)
            c.launch_us = engine_priors[i].launch_us;
    return c;
}

/* the whole GPU behind g (a MIG instance's parent) */
static const gpu_type *whole(const gpu_type *g) { return g->is_mig && g->parent ? g->parent : g; }

/*
 * The lendable row (measured GPU known) of engine fw whose family is at
 * generation distance `dist` from the target's (0: same family), nearest in
 * SMs x clock; ties: the first in the table.
 */
static const gpu_calib *nearest(const gpu_calib_table *t, const gpu_type *g, const char *fw,
                                int dist)
{
    int tf = family_index(gpu_arch_family(g));
    if (tf < 0)
        return NULL;
    const gpu_type *w = whole(g);
    double size = (double)w->sm_count * w->boost_clock_mhz;
    const gpu_calib *best = NULL;
    double best_d = INFINITY;
    for (int side = 0; side < 2 && !best; side++) { /* older family first on a tie */
        int f = side == 0 ? tf - dist : tf + dist;
        if (f < 0 || f >= N_FAMILIES || (dist == 0 && side == 1))
            continue;
        for (uint32_t i = 0; t && i < t->n; i++) {
            const gpu_calib *r = &t->rows[i];
            if (strcmp(r->framework, fw) != 0 || family_index(r->arch) != f ||
                strcmp(r->gpu, "*") == 0)
                continue;
            double d = size > 0 && r->sms > 0 && r->clock_mhz > 0
                           ? fabs(log(size / (r->sms * r->clock_mhz)))
                           : 1e9;
            if (d < best_d) {
                best_d = d;
                best = r;
            }
        }
    }
    return best;
}

static gpu_calib lend(const gpu_calib *r, const gpu_type *g, const char *framework,
                      const char *how)
{
    gpu_calib c = *r;
    const gpu_type *w = whole(g);
    bool other_gpu = strcmp(r->gpu, w->key) != 0;
    if (other_gpu && r->clock_mhz > 0 && w->boost_clock_mhz > 0 &&
        gpu_known(w, GPU_F_BOOST_CLOCK_MHZ))
        c.kernel_us = r->kernel_us * r->clock_mhz / w->boost_clock_mhz;
    c.borrowed = true;
    bool other_engine = framework && strcmp(framework, r->framework) != 0;
    if (other_engine) {
        snprintf(c.framework, sizeof c.framework, "%s", framework);
        const char *fu = engine_fusion(framework);
        if (fu)
            snprintf(c.fusion, sizeof c.fusion, "%s", fu); /* what the engine fuses is its own */
        /* host costs are the engine's and its harness's, not the GPU's: another
         * engine's say nothing about this one, so they are this engine's defaults
         * (its priors). Not even PyTorch eager's own fit under another name
         * ("pytorch" from NVIDIA DeepLearningExamples, "pytorch-eager" from
         * ParvaGPU): its fitted launch_us spans 32-100 us over the hosts and
         * harnesses measured (docs/calibration.md) */
        gpu_calib d = gpu_calib_engine_default(framework);
        c.launch_us = d.launch_us;
        c.fixed_us = d.fixed_us;
        c.copy_us_per_mb = d.copy_us_per_mb;
    }
    int fi = family_index(r->arch), ti = family_index(gpu_arch_family(g));
    char fam[96];
    if (fi >= 0 && fi == ti)
        snprintf(fam, sizeof fam, "%s family", family_titles[fi]);
    else if (fi >= 0 && ti >= 0)
        snprintf(fam, sizeof fam, "%s family (no %s row)", family_titles[fi], family_titles[ti]);
    else
        snprintf(fam, sizeof fam, "family unknown");
    snprintf(c.used, sizeof c.used, "borrowed from [%.63s %.31s], %.50s%s%.60s%s", r->gpu,
             r->framework, fam, how[0] ? ", " : "", how,
             other_engine ? " (host costs: the engine's defaults)" : "");
    return c;
}

/*
 * PyTorch eager under its two names in the measurements ("pytorch": NVIDIA
 * DeepLearningExamples; "pytorch-eager": ParvaGPU): the same engine issuing the
 * same cuDNN/cuBLAS kernels one operator at a time, so its GPU-side coefficients
 * are one engine's; host costs stay each row's own (lend: another name is another
 * harness, its host costs are the engine's defaults).
 */
static const char *engine_twin(const char *fw)
{
    if (strcmp(fw, "pytorch") == 0)
        return "pytorch-eager";
    if (strcmp(fw, "pytorch-eager") == 0)
        return "pytorch";
    return NULL;
}

/*
 * The row another GPU or engine lends to (g, fw); note says which engine stood in.
 * The engine before the GPU: its own rows (and its twin's) in the family, then in
 * the nearest other family, and only then another engine. Efficiencies are
 * fractions of the catalog's peaks, which carry the GPU generation (SMs, clocks,
 * tensor cores, bandwidth); nothing carries what an engine runs (its fusion, its
 * kernel choices, one kernel per operator or a compiled graph).
 */
static const gpu_calib *borrow(const gpu_calib_table *t, const gpu_type *g, const char *fw,
                               char *note, size_t note_len)
{
    const gpu_calib *r;
    const char *twin = engine_twin(fw);
    note[0] = '\0';
    /* the same engine on the nearest GPU of the family, then its twin (this GPU first) */
    if ((r = nearest(t, g, fw, 0)))
        return r;
    if (twin) {
        snprintf(note, note_len, "engine %s standing in for %s", twin, fw);
        r = find(t, whole(g)->key, twin);
        if ((r && r->arch[0]) || (r = nearest(t, g, twin, 0)))
            return r;
    }
    /* the same engine (or its twin) in the nearest other family */
    for (int dist = 1; dist < N_FAMILIES; dist++) {
        note[0] = '\0';
        if ((r = nearest(t, g, fw, dist)))
            return r;
        if (twin) {
            snprintf(note, note_len, "engine %s standing in for %s", twin, fw);
            if ((r = nearest(t, g, twin, dist)))
                return r;
        }
    }
    /* a related engine: on this GPU, then in the family, then the nearest other family */
    for (int dist = 0; dist < N_FAMILIES; dist++) {
        for (const char *const *k = gpu_calib_kin(fw); *k; k++) {
            snprintf(note, note_len, "engine %s standing in for %s", *k, fw);
            if (dist == 0) {
                r = find(t, whole(g)->key, *k);
                if (r && r->arch[0])
                    return r;
            }
            if ((r = nearest(t, g, *k, dist)))
                return r;
        }
    }
    note[0] = '\0';
    return NULL;
}

/*
 * Coefficients the answering row did not determine (gpu_calib.undetermined) are
 * the built-in defaults - the prior every fit starts from - never the value the
 * fit happened to leave, nor another row's: a first version took them from the
 * next row of the borrow order that determined them, and another engine's fitted
 * efficiencies carry that engine's losses (TensorFlow 1.15's A100 eff_tensor 0.25
 * made PyTorch eager on A100 MIG slices +83% too slow; docs/calibration.md).
 * `used` names them.
 */
static void fill_undetermined(gpu_calib *c)
{
    if (!c->undetermined)
        return;
    gpu_calib d = gpu_calib_engine_default(c->framework);
    size_t len = strlen(c->used);
    int w = snprintf(c->used + len, sizeof c->used - len, "; defaults for what its rows did "
                                                          "not determine:");
    len = w > 0 && (size_t)w < sizeof c->used - len ? len + (size_t)w : strlen(c->used);
    for (size_t i = 0; i < sizeof fit_bounds / sizeof fit_bounds[0]; i++) {
        if (!(c->undetermined >> i & 1u))
            continue;
        *bound_val(c, &fit_bounds[i]) = *bound_val(&d, &fit_bounds[i]);
        w = snprintf(c->used + len, sizeof c->used - len, " %s", fit_bounds[i].name);
        if (w > 0 && (size_t)w < sizeof c->used - len)
            len += (size_t)w;
    }
    c->undetermined = 0;
}

gpu_calib gpu_calib_lookup(const gpu_calib_table *t, const gpu_type *g, const char *framework,
                           bool *found)
{
    const gpu_calib *r = find(t, g->key, framework);
    const char *how = "";
    if (!r && g->is_mig && g->parent_key) {
        r = find(t, g->parent_key, framework);
        how = ", the MIG instance's parent GPU";
    }
    if (!r) {
        r = find(t, "*", framework);
        how = ", the row for any GPU";
    }
    if (found)
        *found = true;
    if (r) {
        gpu_calib c = *r;
        c.borrowed = false;
        snprintf(c.used, sizeof c.used, "[%s %s]%s", r->gpu, r->framework, how);
        fill_undetermined(&c);
        return c;
    }
    char note[96];
    if (framework && (r = borrow(t, g, framework, note, sizeof note))) {
        gpu_calib c = lend(r, g, framework, note);
        fill_undetermined(&c);
        return c;
    }
    if (found)
        *found = false;
    gpu_calib d = gpu_calib_engine_default(framework);
    snprintf(d.used, sizeof d.used, "built-in defaults (no row for %s %s to use or borrow)",
             g->key, framework ? framework : "");
    return d;
}

int gpu_calib_format(const gpu_calib *c, char *buf, size_t n)
{
    size_t len = 0;
    int w = snprintf(buf, n, "[%s %s]\nsource = %s\n", c->gpu, c->framework, c->source);
    if (w < 0)
        return w;
    len = (size_t)w;
    for (size_t i = 0; i < sizeof numkeys / sizeof numkeys[0]; i++) {
        double v = *(const double *)(const void *)((const char *)c + numkeys[i].off);
        w = snprintf(len < n ? buf + len : NULL, len < n ? n - len : 0, "%s = %.6g\n",
                     numkeys[i].name, v);
        if (w < 0)
            return w;
        len += (size_t)w;
    }
    w = snprintf(len < n ? buf + len : NULL, len < n ? n - len : 0, "fusion = %s\n", c->fusion);
    if (w < 0)
        return w;
    len += (size_t)w;
    if (c->arch[0]) {
        w = snprintf(len < n ? buf + len : NULL, len < n ? n - len : 0, "arch = %s\n", c->arch);
        if (w < 0)
            return w;
        len += (size_t)w;
    }
    if (c->undetermined) {
        char names[160];
        undetermined_names(c->undetermined, names, sizeof names);
        w = snprintf(len < n ? buf + len : NULL, len < n ? n - len : 0, "undetermined = %s\n",
                     names);
        if (w < 0)
            return w;
        len += (size_t)w;
    }
    return (int)len;
}

/* ---- the bounded fit -------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int gpu_calib_stats(const double *resid, size_t n, gpu_calib_fit_stats *st, usher_error *err)
{
    memset(st, 0, sizeof *st);
    st->n = n;
    if (n == 0)
        return USHER_OK;
    double *a = us_malloc(n * sizeof *a);
    if (!a)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        a[i] = fabs(resid[i]);
        st->mape += a[i];
        st->bias += resid[i];
    }
    st->mape /= (double)n;
    st->bias /= (double)n;
    qsort(a, n, sizeof *a, cmp_double);
    st->median_ape = n % 2 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
    size_t r90 = (size_t)ceil(0.9 * (double)n); /* nearest rank */
    st->p90_ape = a[(r90 ? r90 : 1) - 1];
    st->max_ape = a[n - 1];
    us_free(a);
    return USHER_OK;
}

/* mean |ln(pred / measured)|; INFINITY as soon as the sum passes cutoff x n (the
 * terms are not negative, so such a candidate could not win anyway) */
static double fit_loss(size_t n, const double *measured, gpu_calib_predict_fn predict, void *ctx,
                       const gpu_calib *c, double cutoff)
{
    double s = 0, stop = cutoff * (double)n;
    for (size_t i = 0; i < n; i++) {
        double p = predict(ctx, i, c);
        if (!(p > 0) || !isfinite(p))
            return INFINITY;
        s += fabs(log(p / measured[i]));
        if (s > stop)
            return INFINITY;
    }
    return s / (double)n;
}

int gpu_calib_fit(gpu_calib *c, uint32_t mask, size_t n, const double *measured,
                  gpu_calib_predict_fn predict, void *ctx, double *resid,
                  gpu_calib_fit_stats *st, usher_error *err)
{
    if (n == 0)
        return us_err_set(err, USHER_ERR_INVALID, "calibration fit: no observations");
    for (size_t i = 0; i < n; i++)
        if (!(measured[i] > 0) || !isfinite(measured[i]))
            return us_err_set(err, USHER_ERR_INVALID,
                              "calibration fit: measured latency %zu is %g, not > 0", i,
                              measured[i]);
    const size_t nb = sizeof fit_bounds / sizeof fit_bounds[0];
    if (!mask)
        mask = (1u << nb) - 1;
    gpu_calib_clamp(c); /* start inside the physical ranges */
    double before = fit_loss(n, measured, predict, ctx, c, INFINITY), best = before;
    /* coordinate descent: multiplicative steps for efficiencies, additive ones
     * (relative to the value, at least a tenth of the range) for costs; every
     * candidate is clamped, so the fit never leaves the ranges */
    double step = 0.5;
    for (int round = 0; round < 40 && step > 0.01; round++) {
        bool improved = false;
        for (size_t i = 0; i < nb; i++) {
            if (!(mask >> i & 1u))
                continue;
            const gpu_calib_bound *b = &fit_bounds[i];
            double *v = bound_val(c, b), orig = *v, bv = orig, cand[4];
            if (strncmp(b->name, "eff_", 4) == 0) {
                cand[0] = orig * (1 + step), cand[1] = orig / (1 + step);
                cand[2] = orig * (1 + 2 * step), cand[3] = orig / (1 + 2 * step);
            } else {
                double d = fmax((b->hi - b->lo) / 10, fabs(orig)) * step;
                cand[0] = orig + d, cand[1] = orig - d, cand[2] = orig + 2 * d;
                cand[3] = orig - 2 * d;
            }
            for (int k = 0; k < 4; k++) {
                double x = fmin(b->hi, fmax(b->lo, cand[k]));
                if (x == orig)
                    continue;
                *v = x;
                double l = fit_loss(n, measured, predict, ctx, c, best);
                if (l < best - 1e-9) {
                    best = l;
                    bv = x;
                    improved = true;
                }
            }
            *v = bv;
        }
        if (!improved)
            step /= 2;
    }
    /* which coefficients the observations determined: one that can be doubled or
     * halved (a cost: moved by half its value or a tenth of its range) at almost
     * no change of the error is not a property these rows measured - an FP16-only
     * group says nothing of eff_gemm, a group without depthwise convolutions
     * nothing of eff_depthwise - and a lookup must not lend it (gpu_calib_lookup) */
    c->undetermined = 0;
    for (size_t i = 0; i < nb; i++) {
        if (!(mask >> i & 1u))
            continue;
        const gpu_calib_bound *b = &fit_bounds[i];
        double *v = bound_val(c, b), orig = *v, rise = 0, cand[2];
        if (strncmp(b->name, "eff_", 4) == 0) {
            cand[0] = orig * 2, cand[1] = orig / 2;
        } else {
            double d = fmax((b->hi - b->lo) / 10, fabs(orig) / 2);
            cand[0] = orig + d, cand[1] = orig - d;
        }
        for (int k = 0; k < 2; k++) {
            double x = fmin(b->hi, fmax(b->lo, cand[k]));
            if (x == orig)
                continue;
            *v = x;
            double l = fit_loss(n, measured, predict, ctx, c, INFINITY);
            rise = fmax(rise, isfinite(l) ? l - best : 1.0);
        }
        *v = orig;
        if (rise < GPU_CALIB_UNDETERMINED_TOL)
            c->undetermined |= 1u << i;
    }
    double *r = resid ? resid : us_malloc(n * sizeof *r);
    if (!r)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        double p = predict(ctx, i, c);
        r[i] = (p - measured[i]) / measured[i];
    }
    int rc = USHER_OK;
    if (st) {
        rc = gpu_calib_stats(r, n, st, err);
        st->log_err_before = before;
        st->log_err_after = best;
        st->undetermined = c->undetermined;
        undetermined_names(c->undetermined, st->undetermined_names,
                           sizeof st->undetermined_names);
        size_t len = 0;
        for (size_t i = 0; i < nb && rc == USHER_OK; i++) {
            double v = *bound_val(c, &fit_bounds[i]);
            if (!(mask >> i & 1u) || (v != fit_bounds[i].lo && v != fit_bounds[i].hi))
                continue;
            int w = snprintf(st->at_bound + len, sizeof st->at_bound - len, "%s%s=%g",
                             len ? " " : "", fit_bounds[i].name, v);
            if (w < 0 || (size_t)w >= sizeof st->at_bound - len)
                break;
            len += (size_t)w;
        }
    }
    if (r != resid)
        us_free(r);
    return rc;
}
