/*
 * report_html.c - the simulator's report as one self-contained HTML page
 * (layer 7, see report.h).
 *
 * The page holds everything it shows: CSS in one <style>, every plot as an
 * inline <svg> (report_svg.c), no script, no link, no image, no font to
 * fetch, so it opens from a mail attachment or a CI artefact as it is. Its
 * parts, in order (each an anchor of the page's navigation):
 *
 *   #summary  the run's totals, as cards
 *   #models   per model: rate, SLO, requests, goodput, attainment,
 *             latency percentiles, queueing, refusals, batching
 *   #gpus     per GPU: type, replicas, compute (with a bar) and memory
 *             utilisation, price, power, batches
 *   #sweep    with a sweep: per rate scale the totals, and the goodput and
 *             SLO attainment against offered load
 *   #plots    the latency CDFs; with a time series, the per-GPU heat map
 *             and goodput over time (otherwise a note saying how to get them)
 *
 * Like the plots it is a pure function of the reports (no wall-clock
 * figure), so a seed gives the same page byte for byte. Tables stop after
 * SIM_HTML_MAX_ROWS rows and say how many they left out.
 */
#include <math.h>
#include <stdio.h>

#include "sim/report.h"

static const char CSS[] =
    "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;color:#222;margin:24px auto;"
    "max-width:1240px;padding:0 16px;line-height:1.35}\n"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;border-bottom:1px solid #ddd;"
    "padding-bottom:4px;margin:30px 0 10px}\n"
    "nav a{margin-right:14px;color:#2a5d9f;text-decoration:none;font-size:14px}\n"
    "p.run{color:#444;font-size:14px;margin:4px 0 10px}code{font-size:13px}\n"
    ".cards{display:flex;flex-wrap:wrap;gap:10px}\n"
    ".card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:120px}\n"
    ".card .v{font-size:20px;font-weight:bold}.card .k{font-size:12px;color:#555}\n"
    ".wide{overflow-x:auto}\n"
    "table{border-collapse:collapse;font-size:12.5px}\n"
    "th,td{padding:3px 7px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}\n"
    "th:first-child,td:first-child{text-align:left}\n"
    "thead th{background:#f3f5f8;border-bottom:2px solid #ccd;font-weight:600}\n"
    "td.bar{min-width:110px}\n"
    "figure{margin:18px 0}figcaption{font-size:13px;color:#444;max-width:800px;margin-top:4px}\n"
    "svg.usher-plot{max-width:100%;height:auto;border:1px solid #e4e4e4}\n"
    ".note{color:#666;font-size:13px}\n";

/* a figure for a table: 4 significant digits, no exponent below 10^9 */
static void num(us_buf *o, double v)
{
    if (!isfinite(v))
        us_buf_puts(o, "&ndash;");
    else if (fabs(v) >= 1000 && fabs(v) < 1e9)
        us_buf_printf(o, "%.0f", v);
    else
        us_buf_printf(o, "%.4g", v);
}

static void td_num(us_buf *o, double v)
{
    us_buf_puts(o, "<td>");
    num(o, v);
    us_buf_puts(o, "</td>");
}

static void td_u64(us_buf *o, uint64_t v)
{
    us_buf_printf(o, "<td>%llu</td>", (unsigned long long)v);
}

static void td_pct(us_buf *o, double v)
{
    us_buf_printf(o, "<td>%.2f%%</td>", v);
}

static void td_text(us_buf *o, const char *s)
{
    us_buf_puts(o, "<td>");
    sim_xml_escape(o, s, 0);
    us_buf_puts(o, "</td>");
}

static void head(us_buf *o, const char *const *cols, size_t n)
{
    us_buf_puts(o, "<div class=\"wide\"><table>\n<thead><tr>");
    for (size_t i = 0; i < n; i++)
        us_buf_printf(o, "<th>%s</th>", cols[i]);
    us_buf_puts(o, "</tr></thead>\n<tbody>\n");
}

static void tail(us_buf *o, uint64_t rows)
{
    us_buf_puts(o, "</tbody></table></div>\n");
    if (rows > SIM_HTML_MAX_ROWS)
        us_buf_printf(o, "<p class=\"note\">The first %d of %llu rows; the JSON report "
                         "(--json) has them all.</p>\n", SIM_HTML_MAX_ROWS,
                      (unsigned long long)rows);
}

enum { CARD_NUM, CARD_COUNT, CARD_PCT };

static void card(us_buf *o, const char *key, int kind, double v)
{
    us_buf_printf(o, "<div class=\"card\"><div class=\"v\">");
    if (kind == CARD_COUNT)
        us_buf_printf(o, "%.0f", v);
    else if (kind == CARD_PCT)
        us_buf_printf(o, "%.2f%%", v);
    else
        num(o, v);
    us_buf_printf(o, "</div><div class=\"k\">%s</div></div>\n", key);
}

static void summary(us_buf *o, const sim_report *r)
{
    us_buf_puts(o, "<section id=\"summary\"><h2>Summary</h2>\n<div class=\"cards\">\n");
    card(o, "requests", CARD_COUNT, (double)r->requests);
    card(o, "goodput (requests/s within the SLO)", CARD_NUM, r->goodput);
    card(o, "SLO attainment", CARD_PCT, r->attainment_pct);
    card(o, "served", CARD_COUNT, (double)r->served);
    card(o, "late (served past the SLO)", CARD_COUNT, (double)r->late);
    card(o, "rejected at admission", CARD_COUNT, (double)r->rejected);
    card(o, "expired in the queue", CARD_COUNT, (double)r->expired);
    card(o, "GPUs used", CARD_COUNT, r->gpus_used);
    card(o, "cost ($/h)", CARD_NUM, r->cost_per_hour);
    card(o, "compute utilisation (mean)", CARD_PCT, r->compute_pct);
    card(o, "memory utilisation (mean)", CARD_PCT, r->memory_pct);
    card(o, "energy per request (J)", CARD_NUM, r->energy_j_per_request);
    us_buf_puts(o, "</div></section>\n");
}

static void models(us_buf *o, const sim_report *r)
{
    static const char *const cols[] = {
        "model", "replicas", "rate/s", "SLO ms", "requests", "goodput/s", "in SLO", "mean ms",
        "p50 ms", "p99 ms", "p99.9 ms", "max ms", "queue ms", "rejected", "late", "expired",
        "mean batch"};
    us_buf_puts(o, "<section id=\"models\"><h2>Models</h2>\n");
    head(o, cols, sizeof cols / sizeof *cols);
    for (uint32_t k = 0; k < r->n_models && k < SIM_HTML_MAX_ROWS; k++) {
        const sim_model_report *m = &r->m[k];
        us_buf_puts(o, "<tr>");
        td_text(o, m->name);
        td_u64(o, m->replicas);
        td_num(o, m->rate);
        td_num(o, m->slo_ms);
        td_u64(o, m->requests);
        td_num(o, m->goodput);
        td_pct(o, m->attainment_pct);
        td_num(o, m->mean_ms);
        td_num(o, m->p50_ms);
        td_num(o, m->p99_ms);
        td_num(o, m->p999_ms);
        td_num(o, m->max_ms);
        td_num(o, m->mean_queue_ms);
        td_u64(o, m->rejected);
        td_u64(o, m->late);
        td_u64(o, m->expired);
        td_num(o, m->batches ? (double)m->batch_rows / (double)m->batches : 0);
        us_buf_puts(o, "</tr>\n");
    }
    tail(o, r->n_models);
    us_buf_printf(o, "<p class=\"note\">Goodput counts the requests that ended within their "
                     "SLO, per second of arrivals; attainment is over all requests, refused "
                     "ones included. Percentiles are read from a log-bucketed histogram "
                     "(within %.2g%%).</p>\n</section>\n", 100 * SIM_HIST_REL_ERROR);
}

static void gpus(us_buf *o, const sim_report *r)
{
    static const char *const cols[] = {"gpu", "type", "replicas", "compute", "memory", "$/h",
                                       "power W", "batches"};
    us_buf_puts(o, "<section id=\"gpus\"><h2>GPUs</h2>\n");
    head(o, cols, sizeof cols / sizeof *cols);
    for (uint32_t g = 0; g < r->n_gpus && g < SIM_HTML_MAX_ROWS; g++) {
        const sim_gpu_report *x = &r->g[g];
        double c = x->compute_pct < 0 ? 0 : x->compute_pct > 100 ? 100 : x->compute_pct;
        us_buf_printf(o, "<tr><td>%u</td>", g);
        td_text(o, x->type);
        td_u64(o, x->replicas);
        us_buf_printf(o, "<td class=\"bar\" style=\"background:linear-gradient(90deg,#cfe0f3 "
                         "%.1f%%,transparent %.1f%%)\">%.1f%%</td>", c, c, x->compute_pct);
        us_buf_printf(o, "<td>%.1f%%</td>", x->memory_pct);
        td_num(o, x->price_per_hour);
        td_num(o, x->power_w);
        td_u64(o, x->batches);
        us_buf_puts(o, "</tr>\n");
    }
    tail(o, r->n_gpus);
    us_buf_puts(o, "<p class=\"note\">Compute: the time-average of the busy replicas' MPS "
                   "shares summed, capped at 100% (an upper bound on SM activity). Memory: the "
                   "plan's.</p>\n</section>\n");
}

/* re-planning in the loop: every re-plan, what it moved and what the change cost */
static void replans(us_buf *o, const sim_report *r)
{
    static const char *const cols[] = {"at s", "ready s", "kept", "started", "moved",
                                       "reshared", "stopped", "GPUs", "$/h", "requests",
                                       "lost", "late"};
    us_buf_printf(o, "<section id=\"replanning\"><h2>Re-planning</h2>\n<p>Re-planned every "
                     "%g s for the rates observed since the last re-plan; a started or moved "
                     "replica ready after %g s (worker start) + %g s (model load), a share "
                     "change after %g s; a model's old replicas serve until all its new ones "
                     "are ready. During the changes %llu requests arrived: %llu lost (refused "
                     "or expired), %llu late.</p>\n",
                  r->replan_every_s, r->start_s, r->load_s, r->share_s,
                  (unsigned long long)r->replan_requests, (unsigned long long)r->replan_lost,
                  (unsigned long long)r->replan_late);
    head(o, cols, sizeof cols / sizeof *cols);
    for (uint32_t i = 0; i < r->n_replans && i < SIM_HTML_MAX_ROWS; i++) {
        const sim_replan_report *x = &r->replans[i];
        us_buf_puts(o, "<tr>");
        us_buf_printf(o, "<td>%.6g</td><td>%.6g</td>", x->t_s, x->ready_s);
        td_u64(o, x->kept);
        td_u64(o, x->started);
        td_u64(o, x->moved);
        td_u64(o, x->reshared);
        td_u64(o, x->stopped);
        td_u64(o, x->gpus);
        td_num(o, x->cost_per_hour);
        td_u64(o, x->requests);
        td_u64(o, x->lost);
        td_u64(o, x->late);
        us_buf_puts(o, "</tr>\n");
    }
    tail(o, r->n_replans);
    us_buf_puts(o, "</section>\n");
}

static void figure_begin(us_buf *o, const char *id)
{
    us_buf_printf(o, "<figure id=\"fig-%s\">\n", id);
}

static void figure_end(us_buf *o, const char *caption)
{
    us_buf_printf(o, "<figcaption>%s</figcaption>\n</figure>\n", caption);
}

static int sweep_part(us_buf *o, const sim_report *const *sweep, size_t n)
{
    static const char *const cols[] = {"rate scale", "offered/s", "requests", "goodput/s",
                                       "in SLO", "served", "late", "rejected", "expired"};
    us_buf_puts(o, "<section id=\"sweep\"><h2>Load sweep</h2>\n");
    head(o, cols, sizeof cols / sizeof *cols);
    for (size_t i = 0; i < n; i++) {
        const sim_report *s = sweep[i];
        us_buf_printf(o, "<tr><td>%g</td>", s->rate_scale);
        td_num(o, sim_report_offered(s));
        td_u64(o, s->requests);
        td_num(o, s->goodput);
        td_pct(o, s->attainment_pct);
        td_u64(o, s->served);
        td_u64(o, s->late);
        td_u64(o, s->rejected);
        td_u64(o, s->expired);
        us_buf_puts(o, "</tr>\n");
    }
    tail(o, n);
    int rc;
    figure_begin(o, "sweep-goodput");
    if ((rc = sim_svg_sweep(o, sweep, n, false)) < 0)
        return rc;
    figure_end(o, "Goodput against the offered load: the same plan and seed with every rate "
                  "scaled. Where the line leaves the dotted diagonal, requests are refused, "
                  "expire or end past their SLO.");
    figure_begin(o, "sweep-attainment");
    if ((rc = sim_svg_sweep(o, sweep, n, true)) < 0)
        return rc;
    figure_end(o, "SLO attainment (requests ended within their SLO over all requests) against "
                  "the offered load.");
    us_buf_puts(o, "</section>\n");
    return USHER_OK;
}

int sim_report_html(us_buf *o, const sim_report *r, const sim_report *const *sweep,
                    size_t n_sweep)
{
    if (!r || (n_sweep && !sweep) || n_sweep > SIM_SWEEP_MAX)
        return USHER_ERR_INVALID;
    bool series = r->n_intervals && r->series_gpu_pct;
    us_buf_puts(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                   "<title>usher simulate: ");
    sim_xml_escape(o, r->plan, 0);
    us_buf_printf(o, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", CSS);
    us_buf_puts(o, "<header><h1>usher simulate</h1>\n<p class=\"run\">plan <code>");
    sim_xml_escape(o, r->plan, 0);
    us_buf_puts(o, "</code>, workload <code>");
    sim_xml_escape(o, r->workload, 0);
    us_buf_printf(o, "</code>: %g s of arrivals (seed %llu, rates &times; %g, interference %s); "
                     "the last request ended at %g s. %llu events.</p>\n",
                  r->duration_s, (unsigned long long)r->seed, r->rate_scale,
                  r->interference ? "on" : "off", r->end_s, (unsigned long long)r->events);
    us_buf_printf(o, "<nav><a href=\"#summary\">Summary</a><a href=\"#models\">Models</a>"
                     "<a href=\"#gpus\">GPUs</a>%s%s<a href=\"#plots\">Plots</a></nav>\n"
                     "</header>\n",
                  r->replan_every_s > 0 ? "<a href=\"#replanning\">Re-planning</a>" : "",
                  n_sweep ? "<a href=\"#sweep\">Load sweep</a>" : "");
    summary(o, r);
    models(o, r);
    gpus(o, r);
    if (r->replan_every_s > 0)
        replans(o, r);
    int rc;
    if (n_sweep && (rc = sweep_part(o, sweep, n_sweep)) < 0)
        return rc;
    us_buf_puts(o, "<section id=\"plots\"><h2>Plots</h2>\n");
    figure_begin(o, "latency-cdf");
    if ((rc = sim_svg_latency_cdf(o, r)) < 0)
        return rc;
    figure_end(o, "For each model, the share of its served requests that ended within a given "
                  "latency (arrival to end, queueing included); the dashed line in its colour "
                  "is its SLO. Refused requests are not in the curve (they are in the "
                  "attainment).");
    if (series) {
        figure_begin(o, "gpu-utilisation");
        if ((rc = sim_svg_gpu_heatmap(o, r)) < 0)
            return rc;
        figure_end(o, "Compute utilisation of each GPU in each interval of the time series: "
                      "the MPS shares of the replicas running a batch, summed and capped at "
                      "100%, averaged over the interval.");
        figure_begin(o, "goodput-time");
        if ((rc = sim_svg_goodput_time(o, r)) < 0)
            return rc;
        figure_end(o, "Goodput per interval, by the interval the requests arrived in.");
    } else {
        us_buf_puts(o, "<p class=\"note\">The per-GPU heat map and goodput over time need a "
                       "time series: run with <code>--interval S</code>.</p>\n");
    }
    us_buf_puts(o, "</section>\n<footer class=\"note\"><p>Written by usher simulate; the "
                   "fields are described in docs/simulator.md.</p></footer>\n</body>\n"
                   "</html>\n");
    if (o->oom)
        return USHER_ERR_NOMEM;
    if (o->overflow)
        return USHER_ERR_LIMIT;
    return USHER_OK;
}
