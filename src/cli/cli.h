/* cli.h - what the verbs of the usher command share (layer 9). */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "usher/estimate.h"
#include "usher/interfere.h"
#include "usher/model.h"
#include "usher/sim.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_INCOMPLETE = 3 };

int cli_inspect(int argc, char **argv);
int cli_convert(int argc, char **argv);
int cli_estimate(int argc, char **argv);
int cli_interfere(int argc, char **argv);
int cli_calibrate(int argc, char **argv);
int cli_plan(int argc, char **argv);
int cli_simulate(int argc, char **argv);
int cli_compare(int argc, char **argv);
int cli_worker(int argc, char **argv); /* internal: started by the server */
int cli_serve(int argc, char **argv);
int cli_load(int argc, char **argv);
int cli_export(int argc, char **argv);
/* usher serve --node NAME (serve_node.c): the node's slice of the plan and, when the
 * repository holds other models, a view of it with the node's only, in a private folder */
typedef struct cli_node_view {
    char node[256], src_plan[4096];
    char dir[4096];              /* the private folder ("" : none) */
    char plan[4200], repo[4200]; /* what the server is given */
    uint64_t *models;            /* hashes of the node's models at start, sorted by name */
    uint32_t n_models;
} cli_node_view;
int cli_node_view_make(cli_node_view *v, const char *plan, const char *node, const char *repo);
int cli_node_view_refresh(cli_node_view *v); /* SIGHUP: the slice again; -1: printed */
void cli_node_view_free(cli_node_view *v);   /* removes the private folder */
int cli_merge(int argc, char **argv);

/* Strict decimal parse of a whole string into [min, max]; false otherwise. */
bool cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* "12,345,678" */
const char *cli_group(uint64_t v, char *buf, size_t n);
/* "1.23 G" style with the given unit */
const char *cli_si(double v, const char *unit, char *buf, size_t n);

/* ---- the simulator's front ends (sim_models.c: simulate, compare) ---- */
/* the workload's models for the simulator's callbacks; a struct passed as the
 * callbacks' ctx begins with one */
typedef struct cli_sim_models {
    usher_estimator *e;
    const usher_sim_workload *w;
    usher_model **models; /* per workload model; shared when they name one file */
    int *precision;
} cli_sim_models;
/* load each file the workload names once; a failure is printed as "usher VERB: ..." */
int cli_sim_models_load(cli_sim_models *m, const char *verb, const char *wl);
void cli_sim_models_free(cli_sim_models *m);
/* usher_sim_profile_fn and usher_sim_device_fn over the public estimator (ctx: the models) */
int cli_sim_profile(void *ctx, uint32_t model, const char *gpu, int64_t batch, double share_pct,
                    usher_profile *out, usher_error *err);
int cli_sim_device(void *ctx, const char *gpu, double *bw, double *l2, usher_error *err);
/* usher_sim_group_profile_fn over the same: the members merged as the planner merges a
 * group (plan/groups.c), loaded once per group (freed by cli_sim_models_free), and profiled */
int cli_sim_group_profile(void *ctx, const char *group, const char *kind, const uint32_t *members,
                          uint32_t n_members, const char *gpu, int64_t batch, double share_pct,
                          usher_profile *out, usher_error *err);
double cli_wall(void); /* CLOCK_MONOTONIC, s */
/* a whole string as a double in [lo, hi] */
bool cli_parse_double(const char *s, double lo, double hi, double *out);
/* "\rLABEL [####....] PCT%SUFFIX" on stderr */
void cli_progress_bar(const char *label, int pct, int width, const char *suffix);
/* snprintf for messages (a long one is cut) */
__attribute__((format(printf, 3, 4))) void cli_say(char *buf, size_t n, const char *fmt, ...);
/* A copy of workload file wl (read as w) at path, with model i's rate rates[i] (a model
 * without arrivals, rate 0, gets 1/1000 of its workload rate), or with rates NULL its
 * workload rate times scale; model paths made absolute. Read back and checked; -1 with the
 * message in msg. */
int cli_sim_write_workload(const char *wl, const usher_sim_workload *w, const double *rates,
                           double scale, const char *path, char *msg, size_t n);
/* the arrivals' options: --arrivals, --zipf, --trace, --trace-map, --trace-minutes,
 * --arrivals-file (usher simulate --help) */
typedef struct cli_sim_arrivals {
    bool given, map_given, minutes_given;
    const char *traces[64];
    uint32_t n_traces;
} cli_sim_arrivals;
/* argv[*i] as an arrivals option into a: 1 taken (*i moved past its value), 0 not one, -1 a
 * usage error (printed as "usher VERB: ...") */
int cli_sim_arrival_option(const char *verb, int argc, char **argv, int *i,
                           usher_sim_arrival_spec *a, cli_sim_arrivals *st);
/* argv[*i] as a re-planning or service-time option (--replan-every, --max-moves,
 * --service-cv, --worker-start, --model-load, --share-change) into p and *max_moves: as
 * cli_sim_arrival_option */
int cli_sim_run_option(const char *verb, int argc, char **argv, int *i, usher_sim_params *p,
                       uint32_t *max_moves);
/* after the options: one source, the trace kinds set, a trace's own length as the duration
 * unless one was given; false with the message printed */
bool cli_sim_arrivals_finish(const char *verb, cli_sim_arrivals *st, usher_sim_params *p,
                             bool duration_given);
/* re-planning in the loop: usher_sim_replan_fn over the public planner (ctx: one of these) */
typedef struct cli_sim_replan {
    usher_estimator *e;
    const usher_sim_workload *w;
    const char *workload, *cluster; /* the files */
    bool interference_off;
    uint32_t max_moves;             /* usher_plan_params.max_moves: further moves to cut cost */
    int merge;                      /* usher_plan_params.merge (0: auto, the planner's default:
                                       the running plan's merge groups are kept) */
    char dir[4096];                 /* a private temporary folder (cli_sim_replan_dir) */
    unsigned calls;
} cli_sim_replan;
int cli_sim_replan_dir(cli_sim_replan *rp, const char *verb); /* -1 with the message printed */
void cli_sim_replan_cleanup(cli_sim_replan *rp);
int cli_sim_replan_fn(void *ctx, double t_s, const double *rates, uint32_t n, const char *running,
                      char *new_plan, size_t cap, usher_error *err);

#endif
