/*
 * report_api.c - the public face of the simulator's plots and HTML page
 * (include/usher/sim.h: usher_sim_report_html, usher_sim_report_svgs,
 * usher_sim_plot_svg) over report_svg.c and report_html.c (layer 7).
 *
 * Documents are built whole in a capped us_buf (the plots' size is bounded
 * whatever the run's, report.h) and written through the atomic writer
 * (core/file.h), so a failed write never leaves half a page under the name.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/file.h"
#include "sim/report.h"
#include "usher/sim.h"

#define DOC_MAX ((size_t)256 << 20) /* one page or plot */

/* the engine's reports of a call, checked: a main one and up to SIM_SWEEP_MAX runs */
static int reports_of(const usher_sim_report *r, const usher_sim_report *const *sweep,
                      size_t n_sweep, const sim_report **main_out, const sim_report **runs,
                      usher_error *err)
{
    *main_out = sim_report_of(r);
    if (!*main_out)
        return us_err_set(err, USHER_ERR_INVALID, "simulator report: no report");
    if (n_sweep > SIM_SWEEP_MAX || (n_sweep && !sweep))
        return us_err_set(err, USHER_ERR_INVALID, "simulator report: a sweep of %zu runs (1 to "
                          "%d)", n_sweep, SIM_SWEEP_MAX);
    for (size_t i = 0; i < n_sweep; i++) {
        runs[i] = sim_report_of(sweep[i]);
        if (!runs[i])
            return us_err_set(err, USHER_ERR_INVALID, "simulator report: sweep run %zu is "
                              "missing", i);
        if (runs[i]->n_models != (*main_out)->n_models)
            return us_err_set(err, USHER_ERR_INVALID, "simulator report: sweep run %zu has %u "
                              "models, the report %u: a sweep runs one workload", i,
                              runs[i]->n_models, (*main_out)->n_models);
    }
    return USHER_OK;
}

static int doc_status(int rc, const char *what, usher_error *err)
{
    if (rc == USHER_ERR_NOMEM)
        return us_err_set(err, rc, "simulator report: %s: out of memory", what);
    if (rc == USHER_ERR_LIMIT)
        return us_err_set(err, rc, "simulator report: %s: larger than %zu MB", what,
                          DOC_MAX >> 20);
    return us_err_set(err, rc, "simulator report: %s: cannot be drawn", what);
}

int usher_sim_report_html(const usher_sim_report *r, const usher_sim_report *const *sweep,
                          size_t n_sweep, const char *path, usher_error *err)
{
    const sim_report *m, *runs[SIM_SWEEP_MAX];
    int rc = reports_of(r, sweep, n_sweep, &m, runs, err);
    if (rc < 0)
        return rc;
    if (!path)
        return us_err_set(err, USHER_ERR_INVALID, "usher_sim_report_html: no path");
    us_buf b;
    us_buf_init(&b, DOC_MAX);
    rc = sim_report_html(&b, m, runs, n_sweep);
    if (rc < 0)
        rc = doc_status(rc, path, err);
    else
        rc = us_file_write_atomic(path, b.data, b.len, err);
    us_buf_free(&b);
    return rc;
}

/* dir/name from one writer of report.h */
typedef enum { SVG_CDF, SVG_HEAT, SVG_TIME, SVG_SWEEP_GOODPUT, SVG_SWEEP_SLO } svg_kind;

static int write_svg(const char *dir, const char *name, svg_kind k, const sim_report *m,
                     const sim_report *const *runs, size_t n, usher_error *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return us_err_set(err, USHER_ERR_INVALID, "%s: path too long", dir);
    us_buf b;
    us_buf_init(&b, DOC_MAX);
    us_buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    int rc = k == SVG_CDF    ? sim_svg_latency_cdf(&b, m)
             : k == SVG_HEAT ? sim_svg_gpu_heatmap(&b, m)
             : k == SVG_TIME ? sim_svg_goodput_time(&b, m)
                             : sim_svg_sweep(&b, runs, n, k == SVG_SWEEP_SLO);
    if (rc < 0)
        rc = doc_status(rc, path, err);
    else
        rc = us_file_write_atomic(path, b.data, b.len, err);
    us_buf_free(&b);
    return rc;
}

int usher_sim_report_svgs(const usher_sim_report *r, const usher_sim_report *const *sweep,
                          size_t n_sweep, const char *dir, usher_error *err)
{
    const sim_report *m, *runs[SIM_SWEEP_MAX];
    int rc = reports_of(r, sweep, n_sweep, &m, runs, err);
    if (rc < 0)
        return rc;
    if (!dir || !*dir)
        return us_err_set(err, USHER_ERR_INVALID, "usher_sim_report_svgs: no directory");
    if (mkdir(dir, 0777) < 0 && errno != EEXIST)
        return us_err_set(err, USHER_ERR_IO, "%s: cannot make the directory: %s", dir,
                          strerror(errno));
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return us_err_set(err, USHER_ERR_IO, "%s: not a directory", dir);
    if ((rc = write_svg(dir, "latency-cdf.svg", SVG_CDF, m, runs, n_sweep, err)) < 0)
        return rc;
    if (m->n_intervals && m->series_gpu_pct) {
        if ((rc = write_svg(dir, "gpu-utilisation.svg", SVG_HEAT, m, runs, n_sweep, err)) < 0 ||
            (rc = write_svg(dir, "goodput-time.svg", SVG_TIME, m, runs, n_sweep, err)) < 0)
            return rc;
    }
    if (n_sweep) {
        if ((rc = write_svg(dir, "sweep-goodput.svg", SVG_SWEEP_GOODPUT, m, runs, n_sweep,
                            err)) < 0 ||
            (rc = write_svg(dir, "sweep-attainment.svg", SVG_SWEEP_SLO, m, runs, n_sweep,
                            err)) < 0)
            return rc;
    }
    return USHER_OK;
}

usher_sim_plot usher_sim_default_plot(void)
{
    return (usher_sim_plot){.id = "plot", .x_min = NAN, .x_max = NAN, .y_min = NAN,
                            .y_max = NAN};
}

int usher_sim_plot_svg(const usher_sim_plot *p, char **out, usher_error *err)
{
    *out = NULL;
    if (!p || !p->title || !p->x_label || !p->y_label || (p->n_series && !p->series))
        return us_err_set(err, USHER_ERR_INVALID, "usher_sim_plot_svg: a title, both axis "
                          "labels and the series are needed");
    size_t n = p->n_series < SIM_PLOT_MAX_SERIES ? p->n_series : SIM_PLOT_MAX_SERIES;
    sim_xy_series s[SIM_PLOT_MAX_SERIES];
    memset(s, 0, sizeof s);
    for (size_t i = 0; i < n; i++) {
        if (p->series[i].n && (!p->series[i].x || !p->series[i].y))
            return us_err_set(err, USHER_ERR_INVALID, "usher_sim_plot_svg: series %zu has "
                              "%zu points but no x or y", i, p->series[i].n);
        s[i] = (sim_xy_series){.label = p->series[i].label, .x = p->series[i].x,
                               .y = p->series[i].y, .n = p->series[i].n};
    }
    sim_xy_plot xp = {.id = p->id ? p->id : "plot", .title = p->title,
                      .subtitle = p->subtitle, .x_label = p->x_label, .y_label = p->y_label,
                      .series = s, .n_series = p->n_series, .x_min = p->x_min,
                      .x_max = p->x_max, .y_min = p->y_min, .y_max = p->y_max,
                      .x_log = p->x_log != 0, .markers = p->markers != 0};
    us_buf b;
    us_buf_init(&b, DOC_MAX);
    us_buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    int rc = sim_svg_xy(&b, &xp);
    if (rc == USHER_ERR_INVALID) {
        us_buf_free(&b);
        return us_err_set(err, rc, "usher_sim_plot_svg: id '%s': 1 to 48 of [A-Za-z0-9_-]",
                          xp.id);
    }
    if (rc < 0) {
        us_buf_free(&b);
        return doc_status(rc, "plot", err);
    }
    *out = b.data; /* us_malloc'd: usher_free releases it */
    return USHER_OK;
}

int usher_sim_report_plot_svg(const usher_sim_report *r, usher_sim_report_plot kind,
                              const char *id, const char *title, char **out, usher_error *err)
{
    *out = NULL;
    const sim_report *m = sim_report_of(r);
    if (!m)
        return us_err_set(err, USHER_ERR_INVALID, "simulator report: no report");
    if (kind != USHER_SIM_PLOT_LATENCY_CDF && kind != USHER_SIM_PLOT_GPU_UTILISATION)
        return us_err_set(err, USHER_ERR_INVALID, "simulator report: unknown plot %d",
                          (int)kind);
    bool cdf = kind == USHER_SIM_PLOT_LATENCY_CDF;
    if (!id)
        id = cdf ? "latency-cdf" : "gpu-utilisation";
    size_t n = strlen(id);
    bool ok = n >= 1 && n <= 48;
    for (size_t i = 0; ok && i < n; i++)
        ok = (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
             (id[i] >= '0' && id[i] <= '9') || id[i] == '_' || id[i] == '-';
    if (!ok)
        return us_err_set(err, USHER_ERR_INVALID, "simulator report: plot id '%.64s': 1 to 48 "
                          "of [A-Za-z0-9_-]", id);
    if (!cdf && (!m->series_gpu_pct || !m->n_intervals || !m->n_gpus))
        return us_err_set(err, USHER_ERR_INVALID, "simulator report: the GPU utilisation heat "
                          "map needs a time series (interval_s > 0) and a GPU");
    if (!title)
        title = cdf ? "Latency CDF per model" : "Compute utilisation per GPU over time";
    us_buf b;
    us_buf_init(&b, DOC_MAX);
    us_buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    int rc = cdf ? sim_svg_latency_cdf_as(&b, m, id, title) : sim_svg_gpu_heatmap_as(&b, m, id,
                                                                                     title);
    if (rc < 0) {
        us_buf_free(&b);
        return doc_status(rc, cdf ? "latency CDF" : "GPU heat map", err);
    }
    *out = b.data; /* us_malloc'd: usher_free releases it */
    return USHER_OK;
}
