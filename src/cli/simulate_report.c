/*
 * simulate_report.c - `usher simulate --sweep`, `--html` and `--svg-dir`
 * (layer 9, see simulate_report.h; the documents themselves are the
 * simulator's: usher_sim_report_html, usher_sim_report_svgs).
 *
 * A sweep runs the same plan, workload, arrivals and seed at several rate
 * scales, one after the other, so the plots can put goodput and SLO
 * attainment against the offered load; the run asked for (--rate-scale,
 * default 1) stays the report the tables and the other plots show. The
 * front end keeps no heap (it sits above the allocation hook): the runs'
 * handles are in a static table.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "simulate_report.h"

bool cli_sim_outputs_wanted(const cli_sim_outputs *o)
{
    return o->html || o->svg_dir || o->n_sweep;
}

bool cli_sim_parse_sweep(const char *s, cli_sim_outputs *o)
{
    o->n_sweep = 0;
    const char *p = s;
    for (;;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v > 0 && v <= 1e6) || (*end && *end != ',')) {
            fprintf(stderr, "usher simulate: --sweep is rate scales in (0, 1e6] separated by "
                            "commas (0.5,1,1.5,2), not '%s'\n", s);
            return false;
        }
        if (o->n_sweep == CLI_SWEEP_MAX) {
            fprintf(stderr, "usher simulate: --sweep: at most %d rate scales\n", CLI_SWEEP_MAX);
            return false;
        }
        o->sweep[o->n_sweep++] = v;
        if (!*end)
            return true;
        p = end + 1;
    }
}

void cli_sim_outputs_prepare(usher_sim_params *p, const cli_sim_outputs *o)
{
    if ((!o->html && !o->svg_dir) || p->interval_s > 0 || !(p->duration_s > 0))
        return;
    double want = p->duration_s / 100, mag = pow(10, floor(log10(want)));
    double iv = want <= mag ? mag : want <= 2 * mag ? 2 * mag : want <= 5 * mag ? 5 * mag
                                                                                : 10 * mag;
    if (iv < 1e-3)
        iv = 1e-3;
    p->interval_s = iv <= p->duration_s ? iv : p->duration_s;
}

static double offered(const usher_sim_report *r)
{
    double s = 0;
    usher_sim_model_summary m;
    for (uint32_t i = 0; usher_sim_report_model(r, i, &m) == USHER_OK; i++)
        s += m.rate;
    return s;
}

static void sweep_table(const usher_sim_report *const *runs, const double *scales, int n)
{
    printf("\nload sweep (the same plan, arrivals and seed at each rate scale)\n");
    printf("%10s %12s %10s %11s %9s %9s %9s\n", "rate x", "offered/s", "requests",
           "goodput/s", "in SLO", "rejected", "late");
    for (int i = 0; i < n; i++) {
        usher_sim_summary s;
        usher_sim_report_summary(runs[i], &s);
        printf("%10g %12.6g %10llu %11.6g %8.2f%% %9llu %9llu\n", scales[i], offered(runs[i]),
               (unsigned long long)s.requests, s.goodput, s.slo_attainment_pct,
               (unsigned long long)s.rejected, (unsigned long long)s.late);
    }
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    if (n && s[n - 1] == '\n')
        s[n - 1] = 0;
}

/* the report, or with a sweep {"report": ..., "sweep": [...]}, on stdout */
static int print_json(const usher_sim_report *r, const usher_sim_report *const *runs, int n)
{
    usher_error err = {0};
    char *js = NULL;
    if (usher_sim_report_json(r, &js, &err) < 0) {
        fprintf(stderr, "usher simulate: %s\n", err.msg);
        return CLI_FAIL;
    }
    if (!n) {
        fputs(js, stdout);
        usher_free(js);
        return CLI_OK;
    }
    chomp(js); /* the object without its newline */
    printf("{\"report\": %s,\n\"sweep\": [\n", js);
    usher_free(js);
    for (int i = 0; i < n; i++) {
        if (usher_sim_report_json(runs[i], &js, &err) < 0) {
            fprintf(stderr, "usher simulate: %s\n", err.msg);
            return CLI_FAIL;
        }
        chomp(js);
        printf("%s%s\n", js, i + 1 < n ? "," : "");
        usher_free(js);
    }
    printf("]}\n");
    return CLI_OK;
}

int cli_sim_outputs_run(usher_sim_params *p, const usher_sim_report *r,
                        const cli_sim_outputs *o, bool json, bool quiet)
{
    static usher_sim_report *own[CLI_SWEEP_MAX];
    static const usher_sim_report *runs[CLI_SWEEP_MAX];
    usher_error err = {0};
    int ret = CLI_FAIL, n = 0;
    double scale = p->rate_scale;
    memset(own, 0, sizeof own);
    for (; n < o->n_sweep; n++) {
        if (o->sweep[n] == scale) {
            runs[n] = r;
            continue;
        }
        p->rate_scale = o->sweep[n];
        int rc = usher_sim_run(p, &own[n], &err);
        if (p->progress)
            fprintf(stderr, "\r%60s\r", ""); /* the bar goes away */
        if (rc < 0) {
            fprintf(stderr, "usher simulate: --sweep at rate scale %g: %s\n", o->sweep[n],
                    err.msg);
            goto out;
        }
        runs[n] = own[n];
    }
    if (json) {
        if (print_json(r, runs, n) != CLI_OK)
            goto out;
    } else {
        usher_sim_report_print(r, stdout);
        if (n)
            sweep_table(runs, o->sweep, n);
    }
    if (fflush(stdout) != 0)
        goto out;
    if (o->html) {
        if (usher_sim_report_html(r, runs, (size_t)n, o->html, &err) < 0) {
            fprintf(stderr, "usher simulate: --html: %s\n", err.msg);
            goto out;
        }
        if (!quiet)
            fprintf(stderr, "usher simulate: wrote %s\n", o->html);
    }
    if (o->svg_dir) {
        if (usher_sim_report_svgs(r, runs, (size_t)n, o->svg_dir, &err) < 0) {
            fprintf(stderr, "usher simulate: --svg-dir: %s\n", err.msg);
            goto out;
        }
        if (!quiet)
            fprintf(stderr, "usher simulate: wrote the plots into %s/\n", o->svg_dir);
    }
    ret = CLI_OK;
out:
    p->rate_scale = scale;
    for (int i = 0; i < CLI_SWEEP_MAX; i++)
        usher_sim_report_free(own[i]);
    return ret;
}
