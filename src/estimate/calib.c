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
static const numkey numkeys[] = {
    NK(eff_gemm, 0.001, 1.5),     NK(eff_tensor, 0.001, 1.5),    NK(eff_conv, 0.001, 3.0),
    NK(eff_mem, 0.001, 1.5),      NK(eff_depthwise, 0.001, 1.5), NK(kernel_us, 0, 10000),
    NK(launch_us, 0, 100000),     NK(fixed_us, 0, 10000000),    NK(copy_us_per_mb, 0, 1000000),
    NK(context_mb, 0, 1000000),   NK(workspace_mb, 0, 1000000), NK(idle_power_frac, 0, 1),
};

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

gpu_calib gpu_calib_lookup(const gpu_calib_table *t, const gpu_type *g, const char *framework,
                           bool *found)
{
    const gpu_calib *r = find(t, g->key, framework);
    if (!r && g->is_mig && g->parent_key)
        r = find(t, g->parent_key, framework);
    if (!r)
        r = find(t, "*", framework);
    if (found)
        *found = r != NULL;
    if (r)
        return *r;
    gpu_calib d = gpu_calib_default();
    if (framework)
        snprintf(d.framework, sizeof d.framework, "%s", framework);
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
    return w < 0 ? w : (int)(len + (size_t)w);
}
