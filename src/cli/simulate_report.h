/*
 * simulate_report.h - `usher simulate`'s sweep and its plot outputs
 * (--sweep, --html, --svg-dir; simulate_report.c), apart from simulate.c's
 * options and profiles (layer 9: include/usher/ only).
 */
#ifndef CLI_SIMULATE_REPORT_H
#define CLI_SIMULATE_REPORT_H

#include <stdbool.h>

#include "usher/sim.h"

#define CLI_SWEEP_MAX 64 /* usher_sim_report_html's limit */

typedef struct cli_sim_outputs {
    const char *html;             /* --html FILE, NULL: none */
    const char *svg_dir;          /* --svg-dir DIR, NULL: none */
    double sweep[CLI_SWEEP_MAX];  /* --sweep X,Y,...: rate scales */
    int n_sweep;
} cli_sim_outputs;

/* true when any of --sweep, --html, --svg-dir was given (cli_sim_outputs_run then prints) */
bool cli_sim_outputs_wanted(const cli_sim_outputs *o);
/* --sweep's list: 1 to CLI_SWEEP_MAX rate scales, each in (0, 1e6], comma-separated; false
 * (with a message on stderr) otherwise */
bool cli_sim_parse_sweep(const char *s, cli_sim_outputs *o);
/* Before the run: plots want a time series, so with --html or --svg-dir and no --interval,
 * one of about 100 intervals (1, 2 or 5 times a power of ten seconds) when the duration is
 * known. */
void cli_sim_outputs_prepare(usher_sim_params *p, const cli_sim_outputs *o);
/* After the run r of p: the sweep's runs (p at each scale; r itself where the scale is p's),
 * then on stdout the table (and the sweep's) or the JSON (with a sweep: {"report": r,
 * "sweep": [each run]}), then the page and the plots. CLI_OK or CLI_FAIL (printed). */
int cli_sim_outputs_run(usher_sim_params *p, const usher_sim_report *r,
                        const cli_sim_outputs *o, bool json, bool quiet);

#endif
