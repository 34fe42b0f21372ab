/*
 * report_svg.c - the simulator's plots as SVG (layer 7, see report.h).
 *
 * One writer draws every line plot (sim_svg_xy: title, axes with "nice"
 * ticks, linear or logarithmic, grid, legend, lines clipped to the plot
 * area); the latency CDFs, goodput over time and the sweeps only turn a
 * report into its series. The heat map has its own layout (a row per GPU,
 * a column per interval, a colour bar).
 *
 * Layout of a line plot (pixels; the legend sits right of the plot area so
 * that long model names never cover a line):
 *
 *   0 ─────────────────────────────── 800
 *   │            title / subtitle        │  0-52
 *   │ y   ┌──────────────────────┐ legend│
 *   │ lab │      plot area       │ ───── │
 *   │     └──────────────────────┘       │  bottom 362
 *   │          ticks, x label            │  420
 *
 * Invariants: nothing but the report decides the bytes (deterministic);
 * every string from outside goes through sim_xml_escape; every id in one
 * <svg> starts with that <svg>'s id, so several plots share one page.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "sim/report.h"

#define FONT "DejaVu Sans, Helvetica, Arial, sans-serif"
#define W 800.0
#define H 420.0
#define PL 78.0  /* plot area: left, right, top, bottom */
#define PR 590.0
#define PT 52.0
#define PB 362.0
#define LEGEND_X 606.0
#define LEGEND_CHARS 24
#define MAX_TICKS 64
#define FFFD "\xEF\xBF\xBD"

/* Tableau 10: distinct for the colour-blind in most pairs, printable in grey */
static const char *const PALETTE[10] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                        "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

static const char *series_color(const sim_xy_series *s, size_t i)
{
    return s->color ? s->color : PALETTE[i % 10];
}

static const char *series_dash(const sim_xy_series *s, size_t i)
{
    if (s->dash || s->color)
        return s->dash;
    return i < 10 ? NULL : i < 20 ? "7 3" : "2 3";
}

/* the k-th model drawn (in the report's order) has one colour and dash in every plot */
static void model_style(sim_xy_series *s, size_t k)
{
    s->color = PALETTE[k % 10];
    s->dash = k < 10 ? NULL : "7 3";
}

/* ---- text ------------------------------------------------------------------------------- */
static size_t char_len(const unsigned char *p, size_t left)
{
    if (p[0] < 0x80)
        return 1;
    size_t k = us_utf8_seq(p, left);
    return k ? k : 1; /* an invalid byte is one (replaced) character */
}

void sim_xml_escape(us_buf *out, const char *s, size_t max_chars)
{
    if (!s)
        return;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), total = 0;
    for (size_t i = 0; i < n; i += char_len(p + i, n - i))
        total++;
    size_t keep = max_chars && total > max_chars ? max_chars - 1 : total;
    size_t i = 0;
    for (size_t c = 0; c < keep; c++) {
        unsigned char b = p[i];
        if (b < 0x80) {
            switch (b) {
            case '&': us_buf_puts(out, "&amp;"); break;
            case '<': us_buf_puts(out, "&lt;"); break;
            case '>': us_buf_puts(out, "&gt;"); break;
            case '"': us_buf_puts(out, "&quot;"); break;
            case '\'': us_buf_puts(out, "&#39;"); break;
            default:
                if ((b < 0x20 && b != '\t' && b != '\n' && b != '\r') || b == 0x7f)
                    us_buf_puts(out, FFFD); /* not allowed in XML 1.0 */
                else
                    us_buf_putc(out, (char)b);
            }
            i++;
            continue;
        }
        size_t k = us_utf8_seq(p + i, n - i);
        /* U+FFFE and U+FFFF are not XML characters either */
        if (k == 0 || (k == 3 && b == 0xEF && p[i + 1] == 0xBF && p[i + 2] >= 0xBE)) {
            us_buf_puts(out, FFFD);
            i += k ? k : 1;
        } else {
            us_buf_append(out, p + i, k);
            i += k;
        }
    }
    if (keep < total)
        us_buf_puts(out, "\xE2\x80\xA6"); /* ... */
}

static void text(us_buf *o, double x, double y, const char *anchor, const char *attrs,
                 const char *s, size_t max_chars)
{
    us_buf_printf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s>", x, y, anchor,
                  attrs ? " " : "", attrs ? attrs : "");
    sim_xml_escape(o, s, max_chars);
    us_buf_puts(o, "</text>\n");
}

static bool id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 48)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
              (id[i] >= '0' && id[i] <= '9') || id[i] == '-' || id[i] == '_'))
            return false;
    return true;
}

static void svg_begin(us_buf *o, const char *id, double w, double h, const char *title,
                      const char *subtitle)
{
    us_buf_printf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"%s\" class=\"usher-plot\" "
                     "width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" font-family=\"" FONT "\" "
                     "font-size=\"12\" role=\"img\">\n<title>", id, w, h, w, h);
    sim_xml_escape(o, title, 0);
    us_buf_printf(o, "</title>\n<rect x=\"0\" y=\"0\" width=\"%g\" height=\"%g\" "
                     "fill=\"#ffffff\"/>\n", w, h);
    text(o, w / 2, 22, "middle", "font-size=\"15\" font-weight=\"bold\"", title, 90);
    if (subtitle)
        text(o, w / 2, 39, "middle", "font-size=\"11\" fill=\"#555555\"", subtitle, 130);
}

static int finish(us_buf *o)
{
    us_buf_puts(o, "</svg>\n");
    if (o->oom)
        return USHER_ERR_NOMEM;
    if (o->overflow)
        return USHER_ERR_LIMIT;
    return USHER_OK;
}

/* ---- axes ------------------------------------------------------------------------------- */
typedef struct axis {
    double lo, hi;
    bool log;
    double p0, p1; /* pixels of lo and hi */
} axis;

typedef struct ticks {
    double v[MAX_TICKS];
    bool label[MAX_TICKS];
    int n;
    double step; /* linear: the step; log: 0 */
} ticks;

static double ax_px(const axis *a, double v)
{
    double t = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo))
                      : (v - a->lo) / (a->hi - a->lo);
    return a->p0 + t * (a->p1 - a->p0);
}

/* 1, 2, 2.5 or 5 times a power of ten, about span / target */
static double nice_step(double span, int target)
{
    double raw = span / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double m = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    return m * mag;
}

/* widen [lo, hi] to whole steps */
static void range_lin(double *lo, double *hi, double *step)
{
    if (!(*hi > *lo)) {
        double m = *lo != 0 ? fabs(*lo) * 0.1 : 1;
        *lo = *lo >= 0 && *lo - m < 0 ? 0 : *lo - m;
        *hi += m;
    }
    *step = nice_step(*hi - *lo, 5);
    *lo = floor(*lo / *step + 1e-9) * *step;
    *hi = ceil(*hi / *step - 1e-9) * *step;
}

/* the 1-2-5 value at or below (down) or at or above v > 0 */
static double snap125(double v, bool down)
{
    double mag = pow(10, floor(log10(v)));
    static const double m[4] = {1, 2, 5, 10};
    if (down) {
        double best = mag;
        for (int i = 0; i < 4; i++)
            if (m[i] * mag <= v * (1 + 1e-9))
                best = m[i] * mag;
        return best;
    }
    for (int i = 0; i < 4; i++)
        if (m[i] * mag >= v * (1 - 1e-9))
            return m[i] * mag;
    return 10 * mag;
}

static void range_log(double *lo, double *hi)
{
    if (!(*lo > 0))
        *lo = *hi > 0 ? *hi / 10 : 1;
    if (!(*hi > *lo))
        *hi = *lo * 2;
    *lo = snap125(*lo, true);
    *hi = snap125(*hi, false);
}

static void ticks_lin(ticks *t, double lo, double hi, double step)
{
    t->n = 0;
    t->step = step;
    for (double k = ceil(lo / step - 1e-9); t->n < MAX_TICKS && k * step <= hi + step * 1e-9;
         k++) {
        double v = k * step;
        t->v[t->n] = fabs(v) < step * 1e-9 ? 0 : v;
        t->label[t->n++] = true;
    }
}

/* 1-2-5 ticks within two and a half decades, else powers of ten (the 2 and 5 unlabelled) */
static void ticks_log(ticks *t, double lo, double hi)
{
    t->n = 0;
    t->step = 0;
    bool all = log10(hi / lo) <= 2.5;
    for (double mag = pow(10, floor(log10(lo))); mag <= hi * (1 + 1e-9) && t->n < MAX_TICKS;
         mag *= 10) {
        static const double m[3] = {1, 2, 5};
        for (int i = 0; i < 3 && t->n < MAX_TICKS; i++) {
            double v = m[i] * mag;
            if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9))
                continue;
            t->v[t->n] = v;
            t->label[t->n++] = all || i == 0;
        }
    }
    /* the axis' ends labelled too when a third of a decade or more from a labelled tick */
    int first = -1, last = -1;
    for (int i = 0; i < t->n; i++)
        if (t->label[i]) {
            last = i;
            first = first < 0 ? i : first;
        }
    if (t->n && first > 0 && log10(t->v[first] / t->v[0]) >= 0.3)
        t->label[0] = true;
    if (t->n && last >= 0 && last < t->n - 1 && log10(t->v[t->n - 1] / t->v[last]) >= 0.3)
        t->label[t->n - 1] = true;
}

/* a tick label: thousands as k and millions as M when the axis reaches them, as many
 * decimals as the step needs */
static void fmt_tick(char *s, size_t n, double v, double step, double amax)
{
    double scale = 1;
    const char *suffix = "";
    if (amax >= 1e6) {
        scale = 1e6;
        suffix = "M";
    } else if (amax >= 1e4) {
        scale = 1e3;
        suffix = "k";
    }
    double st = (step > 0 ? step : fabs(v)) / scale;
    int dec = 0; /* the fewest decimals that write every multiple of the step exactly */
    for (double f = st; dec < 6 && fabs(f - round(f)) > 1e-6 * (f > 1 ? f : 1); f *= 10)
        dec++;
    if (v == 0) {
        snprintf(s, n, "0");
        return;
    }
    snprintf(s, n, "%.*f", dec, v / scale);
    size_t k = strlen(s); /* 5.0k -> 5k beside 2.5k and 7.5k */
    if (strchr(s, '.')) {
        while (k > 0 && s[k - 1] == '0')
            s[--k] = 0;
        if (k > 0 && s[k - 1] == '.')
            s[--k] = 0;
    }
    snprintf(s + k, n - k, "%s", suffix);
}

static double ticks_amax(const ticks *t)
{
    double m = 0;
    for (int i = 0; i < t->n; i++)
        m = fabs(t->v[i]) > m ? fabs(t->v[i]) : m;
    return m;
}

/* grid, the two axis lines, ticks and their labels, the axis labels */
static void draw_axes(us_buf *o, const axis *x, const ticks *xt, const axis *y, const ticks *yt,
                      const char *x_label, const char *y_label)
{
    double l = x->p0, r = x->p1, b = y->p0, t = y->p1;
    char s[48];
    us_buf_puts(o, "<g class=\"grid\" stroke=\"#e3e3e3\" stroke-width=\"1\">\n");
    for (int i = 0; i < yt->n; i++) {
        double py = ax_px(y, yt->v[i]);
        us_buf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", l, py, r, py);
    }
    for (int i = 0; i < xt->n; i++) {
        double px = ax_px(x, xt->v[i]);
        us_buf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"%s/>\n", px, t,
                      px, b, xt->label[i] ? "" : " stroke-dasharray=\"2 3\"");
    }
    us_buf_puts(o, "</g>\n<g class=\"axes\" stroke=\"#333333\" stroke-width=\"1\">\n");
    us_buf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", l, b, r, b);
    us_buf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", l, b, l, t);
    for (int i = 0; i < xt->n; i++) {
        double px = ax_px(x, xt->v[i]);
        us_buf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", px, b, px,
                      b + (xt->label[i] ? 5 : 3));
    }
    for (int i = 0; i < yt->n; i++) {
        double py = ax_px(y, yt->v[i]);
        us_buf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", l - 5, py,
                      l, py);
    }
    us_buf_puts(o, "</g>\n<g class=\"tick-labels\" fill=\"#333333\" font-size=\"11\">\n");
    double xmax = ticks_amax(xt), ymax = ticks_amax(yt);
    for (int i = 0; i < xt->n; i++) {
        if (!xt->label[i])
            continue;
        fmt_tick(s, sizeof s, xt->v[i], xt->step, xmax);
        text(o, ax_px(x, xt->v[i]), b + 18, "middle", NULL, s, 0);
    }
    for (int i = 0; i < yt->n; i++) {
        fmt_tick(s, sizeof s, yt->v[i], yt->step, ymax);
        text(o, l - 8, ax_px(y, yt->v[i]) + 4, "end", NULL, s, 0);
    }
    us_buf_puts(o, "</g>\n");
    text(o, (l + r) / 2, b + 40, "middle", "font-size=\"12\" fill=\"#222222\"", x_label, 80);
    us_buf_printf(o, "<text x=\"0\" y=\"0\" transform=\"translate(%.1f %.1f) rotate(-90)\" "
                     "text-anchor=\"middle\" font-size=\"12\" fill=\"#222222\">", l - 56,
                  (t + b) / 2);
    sim_xml_escape(o, y_label, 50);
    us_buf_puts(o, "</text>\n");
}

/* ---- the line plot ------------------------------------------------------------------------ */
static bool point_ok(const sim_xy_plot *p, double x, double y)
{
    return isfinite(x) && isfinite(y) && (!p->x_log || x > 0);
}

int sim_svg_xy(us_buf *o, const sim_xy_plot *p)
{
    if (!p || !id_ok(p->id) || !p->title || !p->x_label || !p->y_label ||
        (p->n_series && !p->series))
        return USHER_ERR_INVALID;
    size_t ns = p->n_series < SIM_PLOT_MAX_SERIES ? p->n_series : SIM_PLOT_MAX_SERIES;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    size_t points = 0;
    for (size_t k = 0; k < ns; k++) {
        const sim_xy_series *s = &p->series[k];
        if (s->n && (!s->x || !s->y))
            return USHER_ERR_INVALID;
        for (size_t i = 0; i < s->n; i++) {
            if (!point_ok(p, s->x[i], s->y[i]))
                continue;
            points++;
            x0 = fmin(x0, s->x[i]);
            x1 = fmax(x1, s->x[i]);
            y0 = fmin(y0, s->y[i]);
            y1 = fmax(y1, s->y[i]);
        }
    }
    if (!points) {
        x0 = p->x_log ? 1 : 0;
        x1 = 10;
        y0 = 0;
        y1 = 1;
    }
    if (y0 > 0)
        y0 = 0;
    if (isfinite(p->x_min))
        x0 = p->x_min;
    if (isfinite(p->x_max))
        x1 = p->x_max;
    if (isfinite(p->y_min))
        y0 = p->y_min;
    if (isfinite(p->y_max))
        y1 = p->y_max;
    axis ax = {.lo = x0, .hi = x1, .log = p->x_log, .p0 = PL, .p1 = PR};
    axis ay = {.lo = y0, .hi = y1, .p0 = PB, .p1 = PT};
    ticks xt, yt;
    /* a range the caller fixed is kept (ticks inside it); one from the data is widened to
     * whole steps */
    double ystep;
    if (isfinite(p->y_min) && isfinite(p->y_max) && ay.hi > ay.lo)
        ystep = nice_step(ay.hi - ay.lo, 5);
    else
        range_lin(&ay.lo, &ay.hi, &ystep);
    ticks_lin(&yt, ay.lo, ay.hi, ystep);
    if (p->x_log) {
        range_log(&ax.lo, &ax.hi);
        ticks_log(&xt, ax.lo, ax.hi);
    } else {
        double xstep;
        if (isfinite(p->x_min) && isfinite(p->x_max) && ax.hi > ax.lo)
            xstep = nice_step(ax.hi - ax.lo, 6);
        else
            range_lin(&ax.lo, &ax.hi, &xstep);
        ticks_lin(&xt, ax.lo, ax.hi, xstep);
    }

    svg_begin(o, p->id, W, H, p->title, p->subtitle);
    us_buf_printf(o, "<defs><clipPath id=\"%s-clip\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                     "height=\"%.1f\"/></clipPath></defs>\n", p->id, PL - 1, PT - 2,
                  PR - PL + 2, PB - PT + 4);
    draw_axes(o, &ax, &xt, &ay, &yt, p->x_label, p->y_label);
    if (!points)
        text(o, (PL + PR) / 2, (PT + PB) / 2, "middle", "fill=\"#888888\"", "no data", 0);
    /* marks (an SLO per series) under the lines */
    for (size_t k = 0; p->x_marks && k < ns; k++) {
        double v = p->x_marks[k];
        if (!isfinite(v) || v < ax.lo || v > ax.hi || (p->x_log && v <= 0))
            continue;
        double px = ax_px(&ax, v);
        us_buf_printf(o, "<line class=\"mark\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                         "stroke=\"%s\" stroke-width=\"1.3\" stroke-dasharray=\"5 4\" "
                         "opacity=\"0.85\"/>\n", px, PT, px, PB,
                      series_color(&p->series[k], k));
    }
    for (size_t k = ns; k-- > 0;) { /* the first in the legend (all models) on top */
        const sim_xy_series *s = &p->series[k];
        const char *dash = series_dash(s, k);
        us_buf_printf(o, "<path class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                         "stroke-linejoin=\"round\"%s%s%s clip-path=\"url(#%s-clip)\" d=\"",
                      series_color(s, k), dash ? " stroke-dasharray=\"" : "", dash ? dash : "",
                      dash ? "\"" : "", p->id);
        bool pen = false;
        size_t drawn = 0;
        for (size_t i = 0; i < s->n; i++) {
            if (!point_ok(p, s->x[i], s->y[i])) {
                pen = false;
                continue;
            }
            us_buf_printf(o, "%s%.1f %.1f", pen ? " L" : drawn ? " M" : "M",
                          ax_px(&ax, s->x[i]), ax_px(&ay, s->y[i]));
            pen = true;
            drawn++;
        }
        if (!drawn) /* an empty d is an error in some renderers */
            us_buf_printf(o, "M%.1f %.1f", PL, PB);
        us_buf_puts(o, "\"/>\n");
        if (p->markers) {
            us_buf_printf(o, "<g fill=\"%s\" clip-path=\"url(#%s-clip)\">", series_color(s, k),
                          p->id);
            for (size_t i = 0; i < s->n; i++)
                if (point_ok(p, s->x[i], s->y[i]))
                    us_buf_printf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\"/>",
                                  ax_px(&ax, s->x[i]), ax_px(&ay, s->y[i]));
            us_buf_puts(o, "</g>\n");
        }
    }
    /* the legend */
    us_buf_puts(o, "<g class=\"legend\" font-size=\"12\" fill=\"#222222\">\n");
    double ly = PT + 6;
    for (size_t k = 0; k < ns; k++, ly += 18) {
        const sim_xy_series *s = &p->series[k];
        const char *dash = series_dash(s, k);
        us_buf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                         "stroke-width=\"2.5\"%s%s%s/>\n", LEGEND_X, ly, LEGEND_X + 24, ly,
                      series_color(s, k), dash ? " stroke-dasharray=\"" : "", dash ? dash : "",
                      dash ? "\"" : "");
        if (p->markers)
            us_buf_printf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\" fill=\"%s\"/>\n",
                          LEGEND_X + 12, ly, series_color(s, k));
        text(o, LEGEND_X + 30, ly + 4, "start", NULL, s->label ? s->label : "", LEGEND_CHARS);
    }
    if (p->n_series > ns) {
        char s[64];
        snprintf(s, sizeof s, "(%zu more not drawn)", p->n_series - ns);
        text(o, LEGEND_X, ly + 4, "start", "fill=\"#666666\" font-size=\"11\"", s, 0);
        ly += 18;
    }
    if (p->x_marks && p->marks_note) {
        us_buf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555555\" "
                         "stroke-width=\"1.3\" stroke-dasharray=\"5 4\"/>\n", LEGEND_X, ly,
                      LEGEND_X + 24, ly);
        text(o, LEGEND_X + 30, ly + 4, "start", "fill=\"#555555\" font-size=\"11\"",
             p->marks_note, LEGEND_CHARS);
    }
    us_buf_puts(o, "</g>\n");
    return finish(o);
}

/* ---- plots of a report -------------------------------------------------------------------- */

/* the smallest of the kept models by requests, the latest among equals */
static size_t fewest(const sim_report *r, const uint32_t *idx, size_t n)
{
    size_t low = 0;
    for (size_t j = 1; j < n; j++) {
        uint64_t a = r->m[idx[j]].requests, b = r->m[idx[low]].requests;
        if (a < b || (a == b && idx[j] > idx[low]))
            low = j;
    }
    return low;
}

/*
 * The models a plot draws, at most max (<= SIM_PLOT_MAX_SERIES), in the report's order (the
 * legend follows the tables): of the SIM_PLOT_MAX_SERIES models with the most requests (ties:
 * the earlier model), the max with the most. style[k] is the model's place among those
 * SIM_PLOT_MAX_SERIES, so that a model has one colour in every plot of a report.
 */
static size_t plot_models(const sim_report *r, uint32_t *idx, size_t *style, size_t max)
{
    size_t n = 0;
    for (uint32_t k = 0; k < r->n_models; k++) {
        if (n < SIM_PLOT_MAX_SERIES) {
            idx[n++] = k;
            continue;
        }
        size_t low = fewest(r, idx, n);
        if (r->m[k].requests > r->m[idx[low]].requests) {
            memmove(idx + low, idx + low + 1, (n - low - 1) * sizeof *idx);
            idx[n - 1] = k; /* k is the largest index so far: the order is kept */
        }
    }
    for (size_t k = 0; k < n; k++)
        style[k] = k;
    while (n > max) {
        size_t low = fewest(r, idx, n);
        memmove(idx + low, idx + low + 1, (n - low - 1) * sizeof *idx);
        memmove(style + low, style + low + 1, (n - low - 1) * sizeof *style);
        n--;
    }
    return n;
}

/* the upper edge of histogram bucket sub of octave o, ns */
static double bucket_top(unsigned o, unsigned sub)
{
    if (o == 0)
        return (double)sub + 1;
    double w = ldexp(1.0, (int)o - 1); /* 2^(e-6) with e = o + 5 */
    return ((double)SIM_HIST_SUB + sub + 1) * w;
}

/* the CDF of a histogram as points (ms, % at or below), from (min, 0); *out is us_malloc'd */
static int hist_cdf(const sim_hist *h, double **xs, double **ys, size_t *n)
{
    *xs = *ys = NULL;
    *n = 0;
    if (!h->n)
        return USHER_OK;
    size_t cap = 1;
    for (unsigned o = 0; o < SIM_HIST_OCTAVES; o++)
        for (unsigned s = 0; h->oct[o] && s < SIM_HIST_SUB; s++)
            cap += h->oct[o][s] != 0;
    double *x = us_mallocarray(cap, sizeof *x), *y = us_mallocarray(cap, sizeof *y);
    if (!x || !y) {
        us_free(x);
        us_free(y);
        return USHER_ERR_NOMEM;
    }
    size_t k = 0;
    x[k] = (double)h->min / 1e6;
    y[k++] = 0;
    uint64_t seen = 0;
    for (unsigned o = 0; o < SIM_HIST_OCTAVES; o++)
        for (unsigned s = 0; h->oct[o] && s < SIM_HIST_SUB; s++) {
            if (!h->oct[o][s])
                continue;
            seen += h->oct[o][s];
            double v = bucket_top(o, s);
            v = v < (double)h->min ? (double)h->min : v > (double)h->max ? (double)h->max : v;
            x[k] = v / 1e6;
            y[k++] = 100.0 * (double)seen / (double)h->n;
        }
    *xs = x;
    *ys = y;
    *n = k;
    return USHER_OK;
}

int sim_svg_latency_cdf(us_buf *out, const sim_report *r)
{
    return sim_svg_latency_cdf_as(out, r, "latency-cdf", "Latency CDF per model");
}

int sim_svg_latency_cdf_as(us_buf *out, const sim_report *r, const char *id, const char *title)
{
    uint32_t idx[SIM_PLOT_MAX_SERIES];
    size_t style[SIM_PLOT_MAX_SERIES];
    size_t n = plot_models(r, idx, style, SIM_PLOT_MAX_SERIES);
    sim_xy_series s[SIM_PLOT_MAX_SERIES];
    double slo[SIM_PLOT_MAX_SERIES], *xs[SIM_PLOT_MAX_SERIES] = {0}, *ys[SIM_PLOT_MAX_SERIES] = {0};
    memset(s, 0, sizeof s);
    int rc = USHER_OK;
    for (size_t i = 0; i < n && rc == USHER_OK; i++) {
        const sim_model_report *m = &r->m[idx[i]];
        s[i].label = m->name;
        model_style(&s[i], style[i]);
        slo[i] = m->slo_ms;
        rc = hist_cdf(&m->hist, &xs[i], &ys[i], &s[i].n);
        s[i].x = xs[i];
        s[i].y = ys[i];
    }
    char sub[160];
    if (r->n_models > n)
        snprintf(sub, sizeof sub, "%zu of %u models (those with the most requests); latency = "
                 "arrival to end, served requests", n, r->n_models);
    else
        snprintf(sub, sizeof sub, "latency = arrival to end of the served requests; histogram "
                 "buckets within %.2g%%", 100 * SIM_HIST_REL_ERROR);
    if (rc == USHER_OK) {
        sim_xy_plot p = {.id = id, .title = title, .subtitle = sub,
                         .x_label = "latency (ms, log scale)",
                         .y_label = "% of served requests at or below", .series = s,
                         .n_series = n, .y_min = 0, .y_max = 100, .x_min = NAN, .x_max = NAN,
                         .x_log = true, .x_marks = slo, .marks_note = "dashed: the SLO"};
        /* the axis must show every SLO as well as the latencies */
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < s[i].n; j++) {
                lo = s[i].x[j] > 0 ? fmin(lo, s[i].x[j]) : lo;
                hi = fmax(hi, s[i].x[j]);
            }
            if (s[i].n && slo[i] > 0) {
                lo = fmin(lo, slo[i]);
                hi = fmax(hi, slo[i]);
            }
        }
        if (isfinite(lo) && isfinite(hi)) {
            p.x_min = lo;
            p.x_max = hi;
        }
        rc = sim_svg_xy(out, &p);
    }
    for (size_t i = 0; i < n; i++) {
        us_free(xs[i]);
        us_free(ys[i]);
    }
    return rc;
}

/* the length of interval i of the series, s (the last may be shorter) */
static double interval_len(const sim_report *r, uint32_t i)
{
    double iv = (double)r->interval_ns / 1e9, t0 = i * iv;
    return r->duration_s - t0 < iv ? r->duration_s - t0 : iv;
}

int sim_svg_goodput_time(us_buf *out, const sim_report *r)
{
    if (!r->n_intervals || !r->series_good || !r->series_requests)
        return USHER_ERR_INVALID;
    uint32_t idx[SIM_PLOT_MAX_SERIES];
    size_t style[SIM_PLOT_MAX_SERIES];
    size_t n = plot_models(r, idx, style, SIM_PLOT_MAX_SERIES - 1), ni = r->n_intervals;
    double *x = us_mallocarray(ni, sizeof *x), *y = us_mallocarray(ni * (n + 1), sizeof *y);
    if (!x || !y) {
        us_free(x);
        us_free(y);
        return USHER_ERR_NOMEM;
    }
    sim_xy_series s[SIM_PLOT_MAX_SERIES];
    memset(s, 0, sizeof s);
    s[0] = (sim_xy_series){.label = "all models", .x = x, .y = y, .n = ni, .color = "#222222"};
    for (size_t k = 0; k < n; k++) {
        s[k + 1] = (sim_xy_series){.label = r->m[idx[k]].name, .x = x, .y = y + (k + 1) * ni,
                                   .n = ni};
        model_style(&s[k + 1], style[k]);
    }
    double iv = (double)r->interval_ns / 1e9;
    for (uint32_t i = 0; i < ni; i++) {
        double len = interval_len(r, i);
        x[i] = i * iv + len / 2;
        double all = 0;
        for (uint32_t k = 0; k < r->n_models; k++)
            all += r->series_good[(size_t)i * r->n_models + k];
        y[i] = len > 0 ? all / len : NAN;
        for (size_t k = 0; k < n; k++)
            y[(k + 1) * ni + i] =
                len > 0 ? r->series_good[(size_t)i * r->n_models + idx[k]] / len : NAN;
    }
    char sub[160];
    snprintf(sub, sizeof sub, "requests that ended within their SLO, by the interval they "
             "arrived in (%g s)%s", iv, r->n_models > n ? "; the models with the most requests"
                                                        : "");
    sim_xy_plot p = {.id = "goodput-time", .title = "Goodput over time", .subtitle = sub,
                     .x_label = "time (s)", .y_label = "goodput (requests/s)", .series = s,
                     .n_series = n + 1, .y_min = NAN, .y_max = NAN, .x_min = 0,
                     .x_max = r->duration_s, .markers = ni <= 30};
    int rc = sim_svg_xy(out, &p);
    us_free(x);
    us_free(y);
    return rc;
}

double sim_report_offered(const sim_report *r)
{
    double s = 0;
    for (uint32_t k = 0; k < r->n_models; k++)
        s += r->m[k].rate;
    return s;
}

int sim_svg_sweep(us_buf *out, const sim_report *const *runs, size_t n, bool attainment)
{
    if (!runs || n < 1 || n > SIM_SWEEP_MAX)
        return USHER_ERR_INVALID;
    for (size_t i = 1; i < n; i++)
        if (runs[i]->n_models != runs[0]->n_models)
            return USHER_ERR_INVALID;
    /* by offered load */
    size_t order[SIM_SWEEP_MAX];
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        for (; j > 0 && sim_report_offered(runs[order[j - 1]]) > sim_report_offered(runs[i]);
             j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    const sim_report *big = runs[order[n - 1]];
    uint32_t idx[SIM_PLOT_MAX_SERIES];
    size_t style[SIM_PLOT_MAX_SERIES];
    size_t nm = plot_models(big, idx, style, SIM_PLOT_MAX_SERIES - 2);
    size_t extra = attainment ? 1 : 2; /* all models (and the offered load) */
    double x[SIM_SWEEP_MAX], y[SIM_PLOT_MAX_SERIES][SIM_SWEEP_MAX];
    sim_xy_series s[SIM_PLOT_MAX_SERIES];
    memset(s, 0, sizeof s);
    for (size_t i = 0; i < n; i++) {
        const sim_report *r = runs[order[i]];
        x[i] = sim_report_offered(r);
        y[0][i] = attainment ? r->attainment_pct : r->goodput;
        y[1][i] = x[i];
        for (size_t k = 0; k < nm; k++)
            y[extra + k][i] = attainment ? r->m[idx[k]].attainment_pct : r->m[idx[k]].goodput;
    }
    s[0] = (sim_xy_series){.label = "all models", .x = x, .y = y[0], .n = n,
                           .color = "#222222"};
    if (!attainment)
        s[1] = (sim_xy_series){.label = "offered (ideal)", .x = x, .y = y[1], .n = n,
                               .color = "#999999", .dash = "3 4"};
    for (size_t k = 0; k < nm; k++) {
        s[extra + k] = (sim_xy_series){.label = big->m[idx[k]].name, .x = x, .y = y[extra + k],
                                       .n = n};
        model_style(&s[extra + k], style[k]);
    }
    char sub[200];
    snprintf(sub, sizeof sub, "the same plan at %zu rate scales (%g to %g), seed %llu, %g s of "
             "arrivals each%s", n, runs[order[0]]->rate_scale, big->rate_scale,
             (unsigned long long)big->seed, big->duration_s,
             big->n_models > nm ? "; the models with the most requests" : "");
    sim_xy_plot p = {.id = attainment ? "sweep-attainment" : "sweep-goodput",
                     .title = attainment ? "SLO attainment against offered load"
                                         : "Goodput against offered load",
                     .subtitle = sub, .x_label = "offered load (requests/s)",
                     .y_label = attainment ? "requests within their SLO (%)"
                                           : "goodput (requests/s)",
                     .series = s, .n_series = nm + extra, .y_min = attainment ? 0 : NAN,
                     .y_max = attainment ? 100 : NAN, .x_min = 0, .x_max = NAN,
                     .markers = true};
    return sim_svg_xy(out, &p);
}

/* ---- the heat map ------------------------------------------------------------------------ */

/* viridis at 9 stops: perceptually even, readable in grey and by the colour-blind */
static const unsigned char VIRIDIS[9][3] = {{68, 1, 84},    {71, 45, 123},  {59, 82, 139},
                                            {44, 114, 142}, {33, 145, 140}, {40, 174, 128},
                                            {94, 201, 98},  {173, 220, 48}, {253, 231, 37}};

static void viridis(double pct, char out[8])
{
    double t = pct / 100;
    t = t < 0 || !isfinite(t) ? 0 : t > 1 ? 1 : t;
    double f = t * 8;
    int i = f >= 8 ? 7 : (int)f;
    double u = f - i;
    int c[3];
    for (int k = 0; k < 3; k++)
        c[k] = (int)lround(VIRIDIS[i][k] + u * (VIRIDIS[i + 1][k] - VIRIDIS[i][k]));
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

int sim_svg_gpu_heatmap(us_buf *o, const sim_report *r)
{
    return sim_svg_gpu_heatmap_as(o, r, "gpu-utilisation", "Compute utilisation per GPU over "
                                  "time");
}

int sim_svg_gpu_heatmap_as(us_buf *o, const sim_report *r, const char *id, const char *title)
{
    if (!r->series_gpu_pct || !r->n_intervals || !r->n_gpus)
        return USHER_ERR_INVALID;
    uint32_t per_row = (r->n_gpus + SIM_HEAT_MAX_ROWS - 1) / SIM_HEAT_MAX_ROWS;
    uint32_t rows = (r->n_gpus + per_row - 1) / per_row;
    uint32_t per_col = (r->n_intervals + SIM_HEAT_MAX_COLS - 1) / SIM_HEAT_MAX_COLS;
    uint32_t cols = (r->n_intervals + per_col - 1) / per_col;
    double rh = 320.0 / rows; /* rows of 6 to 40 px, all of them at least the colour bar's 140 */
    rh = rh < 6 ? 6 : rh > 40 ? 40 : rh;
    if (rows * rh < 140)
        rh = 140.0 / rows;
    const double L = 150, R = 680, T = PT;
    double B = T + rows * rh, h = B + 62;
    double iv = (double)r->interval_ns / 1e9;
    char sub[200], rows_note[48] = "", cols_note[48] = "";
    if (per_row > 1)
        snprintf(rows_note, sizeof rows_note, "; a row: the mean of %u GPUs", per_row);
    if (per_col > 1)
        snprintf(cols_note, sizeof cols_note, "; a column: %u intervals", per_col);
    snprintf(sub, sizeof sub, "busy replicas' MPS shares summed, capped at 100%%; intervals of "
             "%g s%s%s", iv, rows_note, cols_note);
    svg_begin(o, id, W, h, title, sub);
    axis ax = {.lo = 0, .hi = r->duration_s, .p0 = L, .p1 = R};
    bool titles = (uint64_t)rows * cols <= 4096;
    us_buf_puts(o, "<g class=\"cells\" shape-rendering=\"crispEdges\">\n");
    for (uint32_t row = 0; row < rows; row++) {
        uint32_t g0 = row * per_row, g1 = g0 + per_row < r->n_gpus ? g0 + per_row : r->n_gpus;
        double y = T + row * rh;
        for (uint32_t c = 0; c < cols; c++) {
            uint32_t i0 = c * per_col;
            uint32_t i1 = i0 + per_col < r->n_intervals ? i0 + per_col : r->n_intervals;
            double sum = 0, len = 0;
            for (uint32_t i = i0; i < i1; i++) {
                double li = interval_len(r, i);
                for (uint32_t g = g0; g < g1; g++)
                    sum += r->series_gpu_pct[(size_t)i * r->n_gpus + g] * li;
                len += li * (g1 - g0);
            }
            double pct = len > 0 ? sum / len : 0;
            double t0 = i0 * iv, t1 = fmin(i1 * iv, r->duration_s);
            double x0 = ax_px(&ax, t0), x1 = ax_px(&ax, t1);
            char col[8];
            viridis(pct, col);
            /* a quarter pixel of overlap: no hairlines between cells */
            us_buf_printf(o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                             "fill=\"%s\"", x0, y, x1 - x0 + (c + 1 < cols ? 0.25 : 0),
                          rh + (row + 1 < rows ? 0.25 : 0), col);
            if (titles) {
                us_buf_puts(o, "><title>");
                if (g1 - g0 == 1) {
                    us_buf_printf(o, "gpu %u (", g0);
                    sim_xml_escape(o, r->g[g0].type, 0);
                    us_buf_puts(o, ")");
                } else {
                    us_buf_printf(o, "gpus %u-%u", g0, g1 - 1);
                }
                us_buf_printf(o, ", %g-%g s: %.1f%%</title></rect>\n", t0, t1, pct);
            } else {
                us_buf_puts(o, "/>\n");
            }
        }
    }
    us_buf_puts(o, "</g>\n");
    /* row labels: as many as fit */
    uint32_t every = rh >= 13 ? 1 : (uint32_t)ceil(14 / rh);
    us_buf_puts(o, "<g class=\"row-labels\" font-size=\"11\" fill=\"#333333\">\n");
    for (uint32_t row = 0; row < rows; row += every) {
        uint32_t g0 = row * per_row, g1 = g0 + per_row < r->n_gpus ? g0 + per_row : r->n_gpus;
        char s[96];
        if (g1 - g0 == 1)
            snprintf(s, sizeof s, "gpu %u %s", g0, r->g[g0].type);
        else
            snprintf(s, sizeof s, "gpus %u-%u", g0, g1 - 1);
        text(o, L - 6, T + row * rh + rh / 2 + 4, "end", NULL, s, 22);
    }
    us_buf_puts(o, "</g>\n");
    /* the time axis */
    double step;
    double lo = 0, hi = r->duration_s;
    range_lin(&lo, &hi, &step);
    ticks xt;
    ticks_lin(&xt, 0, r->duration_s, step);
    us_buf_printf(o, "<g class=\"axes\" stroke=\"#333333\">\n<line x1=\"%.1f\" y1=\"%.1f\" "
                     "x2=\"%.1f\" y2=\"%.1f\"/>\n", L, B, R, B);
    for (int i = 0; i < xt.n; i++)
        us_buf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
                      ax_px(&ax, xt.v[i]), B, ax_px(&ax, xt.v[i]), B + 5);
    us_buf_puts(o, "</g>\n<g class=\"tick-labels\" fill=\"#333333\" font-size=\"11\">\n");
    double amax = ticks_amax(&xt);
    for (int i = 0; i < xt.n; i++) {
        char s[32];
        fmt_tick(s, sizeof s, xt.v[i], xt.step, amax);
        text(o, ax_px(&ax, xt.v[i]), B + 18, "middle", NULL, s, 0);
    }
    us_buf_puts(o, "</g>\n");
    text(o, (L + R) / 2, B + 40, "middle", "fill=\"#222222\"", "time (s)", 0);
    /* the colour bar */
    double bx = R + 28, bt = T, bb = B;
    us_buf_printf(o, "<defs><linearGradient id=\"%s-bar\" x1=\"0\" y1=\"1\" x2=\"0\" "
                     "y2=\"0\">", id);
    for (int k = 0; k < 9; k++) {
        char c[8];
        viridis(k * 12.5, c);
        us_buf_printf(o, "<stop offset=\"%g\" stop-color=\"%s\"/>", k / 8.0, c);
    }
    us_buf_puts(o, "</linearGradient></defs>\n");
    us_buf_printf(o, "<rect class=\"colour-bar\" x=\"%.1f\" y=\"%.1f\" width=\"14\" "
                     "height=\"%.1f\" fill=\"url(#%s-bar)\" stroke=\"#333333\" "
                     "stroke-width=\"0.5\"/>\n", bx, bt, bb - bt, id);
    us_buf_puts(o, "<g font-size=\"11\" fill=\"#333333\">\n");
    for (int k = 0; k <= 4; k++) {
        double y = bb - k * (bb - bt) / 4;
        char s[16];
        snprintf(s, sizeof s, "%d%%", k * 25);
        us_buf_printf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                         "stroke=\"#333333\"/>\n", bx + 14, y, bx + 18, y);
        text(o, bx + 21, y + 4, "start", NULL, s, 0);
    }
    us_buf_puts(o, "</g>\n");
    us_buf_printf(o, "<text x=\"0\" y=\"0\" transform=\"translate(%.1f %.1f) rotate(-90)\" "
                     "text-anchor=\"middle\" font-size=\"11\" fill=\"#333333\">compute "
                     "utilisation</text>\n", bx + 64, (bt + bb) / 2);
    return finish(o);
}
