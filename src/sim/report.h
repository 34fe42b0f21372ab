/*
 * report.h - the simulator's plots (SVG) and its one-page HTML report
 * (layer 7, prefix sim_; the public face is usher_sim_report_html,
 * usher_sim_report_svgs and usher_sim_plot_svg in include/usher/sim.h).
 *
 * Every plot is one self-contained <svg> element (attributes only, no CSS,
 * no script, no external reference), so that it renders the same alone in a
 * .svg file and inline in the HTML page: a title, axes with ticks and
 * labels, a legend, and an id (the page's anchors and the browser test find
 * the plots by it). Everything from user files (model names, file names,
 * GPU types) is XML-escaped (& < > " ') and kept valid UTF-8.
 *
 * The plots are pure functions of the reports: the same report gives the
 * same bytes (no clock, no address, numbers printed with fixed precision).
 * Output is bounded whatever the run's size: at most SIM_PLOT_MAX_SERIES
 * lines per plot (the models with the most requests; the plot says how many
 * it leaves out), a heat map of at most SIM_HEAT_MAX_ROWS x
 * SIM_HEAT_MAX_COLS cells (neighbouring GPUs or intervals averaged), and at
 * most SIM_HTML_MAX_ROWS rows per table of the page.
 *
 * Each writer appends to a us_buf and returns USHER_OK, USHER_ERR_NOMEM or
 * USHER_ERR_LIMIT (the buffer's cap); on failure the buffer holds a
 * truncated document, which the caller discards.
 */
#ifndef SIM_REPORT_H
#define SIM_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "sim/sim.h"

#define SIM_PLOT_MAX_SERIES 12
#define SIM_HEAT_MAX_ROWS 64
#define SIM_HEAT_MAX_COLS 150
#define SIM_HTML_MAX_ROWS 1000
#define SIM_SWEEP_MAX 64 /* runs of a sweep */

/* one line of an x-y plot: n points (x[i], y[i]); a point with a coordinate that is not
 * finite (or x <= 0 on a log axis) breaks the line there */
typedef struct sim_xy_series {
    const char *label;
    const double *x, *y;
    size_t n;
    const char *color;       /* "#rrggbb"; NULL: the palette's colour of its index */
    const char *dash;        /* stroke-dasharray ("6 3"); NULL: solid (past the palette's
                                10 colours, a dash of its own) */
} sim_xy_series;

typedef struct sim_xy_plot {
    const char *id;          /* the <svg>'s id: [A-Za-z0-9_-], at most 48 bytes */
    const char *title;
    const char *subtitle;    /* NULL: none */
    const char *x_label, *y_label;
    const sim_xy_series *series;
    size_t n_series;         /* only the first SIM_PLOT_MAX_SERIES are drawn */
    double y_min, y_max;     /* NAN: from the data (y_min 0 when no y is negative) */
    double x_min, x_max;     /* NAN: from the data */
    bool x_log;              /* logarithmic x axis (x > 0) */
    bool markers;            /* a dot at every point (sweeps: few points) */
    const double *x_marks;   /* NULL, or one x per series: a dashed vertical line in the
                                series' colour (the latency CDF's SLOs) */
    const char *marks_note;  /* the legend's line for the marks ("dashed: SLO") */
} sim_xy_plot;

/* A line plot: the generic writer the others (and `usher compare`'s cost against load)
 * use. USHER_ERR_INVALID for a bad id or a NULL field. */
int sim_svg_xy(us_buf *out, const sim_xy_plot *p);

/* Per model (the SIM_PLOT_MAX_SERIES with the most served requests), the share of its
 * served requests that ended within x ms, from its latency histogram, on a log axis, its
 * SLO marked. id "latency-cdf". */
int sim_svg_latency_cdf(us_buf *out, const sim_report *r);
/* ... with another id (valid as sim_xy_plot's; its clip path is ID-clip) and title */
int sim_svg_latency_cdf_as(us_buf *out, const sim_report *r, const char *id, const char *title);
/* Per GPU and interval of the time series, its compute utilisation (0-100%, viridis), a
 * colour bar beside it. id "gpu-utilisation". USHER_ERR_INVALID without a series. */
int sim_svg_gpu_heatmap(us_buf *out, const sim_report *r);
/* ... with another id (its colour bar's gradient is ID-bar) and title */
int sim_svg_gpu_heatmap_as(us_buf *out, const sim_report *r, const char *id, const char *title);
/* Goodput per interval of the time series, per model and in total. id "goodput-time".
 * USHER_ERR_INVALID without a series. */
int sim_svg_goodput_time(us_buf *out, const sim_report *r);
/* A sweep (the same plan at several rate scales, 1 <= n <= SIM_SWEEP_MAX runs): goodput
 * (attainment false, id "sweep-goodput", with the offered load as the ideal) or SLO
 * attainment (id "sweep-attainment") against the offered load, in total and per model. */
int sim_svg_sweep(us_buf *out, const sim_report *const *runs, size_t n, bool attainment);

/* The offered load of a run: the models' rates (rate_scale included) summed, requests/s. */
double sim_report_offered(const sim_report *r);

/* The page: the run's totals, models and GPUs as tables, and every plot that the report
 * has the data for (the heat map and goodput over time need its time series; the sweep's
 * plots and table need n_sweep >= 1 runs). No script, no external resource. */
int sim_report_html(us_buf *out, const sim_report *r, const sim_report *const *sweep,
                    size_t n_sweep);

/* s as XML character data or attribute text: & < > " ' escaped, invalid UTF-8 and
 * control characters (but tab and newline) replaced by U+FFFD; at most max_chars
 * characters (0: all), a cut one ending with an ellipsis. */
void sim_xml_escape(us_buf *out, const char *s, size_t max_chars);

#endif
