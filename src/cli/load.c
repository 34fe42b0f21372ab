/*
 * load.c - `usher load`: an open-loop load generator for a KServe v2 server
 * (layer 9). The engine, and the method, are in src/client/loadgen.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cli.h"
#include "client/loadgen.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: usher load --url http://HOST:PORT --model NAME[:RATE] [--model ...]\n"
            "                  --duration S [--rate R] [--arrivals poisson|uniform|trace:FILE]\n"
            "                  [--input FILE.json | --input NAME=FILE.json ... | --random-input]\n"
            "                  [--connections N] [--timeout-ms T] [--slo-ms MS] [--seed N]\n"
            "                  [--json] [--ledger FILE]\n\n"
            "Sends inference requests (KServe v2 / Open Inference Protocol) at times drawn\n"
            "in advance, whether or not earlier ones were answered (open loop); latency is\n"
            "measured from each request's scheduled time. Every request has a unique id\n"
            "(\"SEED-N\"); the report counts answers by status, missing answers (timed out,\n"
            "failed, unsent) and duplicate or mismatched ids.\n\n"
            "  --url URL          the server (http only)\n"
            "  --model NAME[:R]   a model to load, at R requests/s (default --rate)\n"
            "  --duration S       seconds of arrivals (with a trace: default its last line)\n"
            "  --rate R           requests/s of each model given without :R\n"
            "  --arrivals A       poisson (default), uniform, or trace:FILE with lines\n"
            "                     'time_s model' ('#' comments; rates are then unused)\n"
            "  --input FILE       the infer request body (JSON) for every model, or\n"
            "                     NAME=FILE for one; its \"id\" is replaced\n"
            "  --random-input     random data shaped by GET /v2/models/NAME (the default\n"
            "                     for models without --input)\n"
            "  --connections N    keep-alive connections at most, opened as needed (64)\n"
            "  --timeout-ms T     a request unanswered T ms after its send is missing; also\n"
            "                     the drain after the last arrival (10000)\n"
            "  --slo-ms MS        latency objective for goodput (100)\n"
            "  --seed N           arrivals, random inputs and ids (default: random, printed)\n"
            "  --json             the summary as one JSON object\n"
            "  --ledger FILE      one line per request: id model scheduled_us latency_us\n"
            "                     status (latency -1 and timeout|failed|unsent when missing)\n\n"
            "Exit status: 0 every request answered exactly once, 1 otherwise, 2 usage.\n");
}

/* A plain decimal number (no hex, inf or nan) in [lo, hi]. */
static bool parse_num(const char *s, double lo, double hi, double *out)
{
    if (!s || !*s || strlen(s) > 32)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' ||
              *p == '-'))
            return false;
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static uint64_t random_seed(void)
{
    uint32_t s;
    if (getrandom(&s, sizeof s, 0) == (ssize_t)sizeof s)
        return s;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint32_t)(ts.tv_nsec ^ ts.tv_sec);
}

static void dist_line(const char *what, const lg_dist *d)
{
    printf("  %-12s p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (n %llu)\n", what,
           d->p50_ms, d->p90_ms, d->p99_ms, d->p999_ms, d->max_ms, (unsigned long long)d->n);
}

static void print_text(const lg_params *p, const lg_report *r, const char *arrivals)
{
    char a[32], b[32];
    printf("usher load: %s  seed %llu  %s arrivals  %.3g s  SLO %g ms\n", p->url,
           (unsigned long long)r->seed, arrivals, r->duration_s, r->slo_ms);
    printf("  rate         target %.1f/s  scheduled %.1f/s  achieved %.1f/s\n", r->target_rate,
           r->scheduled_rate, r->achieved_rate);
    printf("  sent         %s  answered %s  (200: %llu  503: %llu  4xx: %llu  5xx: %llu  "
           "other: %llu)\n",
           cli_group(r->sent, a, sizeof a), cli_group(r->answered, b, sizeof b),
           (unsigned long long)r->st_200, (unsigned long long)r->st_503,
           (unsigned long long)r->st_4xx, (unsigned long long)r->st_5xx,
           (unsigned long long)r->st_other);
    printf("  missing      %llu  (timed out %llu, failed %llu, unsent %llu)\n",
           (unsigned long long)r->missing, (unsigned long long)r->timed_out,
           (unsigned long long)r->failed, (unsigned long long)r->unsent);
    printf("  duplicates   %llu  (unknown ids %llu)  id errors: %llu mismatched, %llu missing "
           "(%llu bodies not JSON)\n",
           (unsigned long long)r->duplicates, (unsigned long long)r->unknown_ids,
           (unsigned long long)r->id_mismatch, (unsigned long long)r->id_missing,
           (unsigned long long)r->bad_json);
    printf("  goodput      %.1f/s  (%llu answered 200 within %g ms: %.2f%% of sent)\n", r->goodput,
           (unsigned long long)r->good, r->slo_ms, r->slo_pct);
    dist_line("latency ms", &r->latency);
    dist_line("gen lag ms", &r->lag);
    dist_line("conn wait ms", &r->wait);
    printf("  connections  %d opened (at most %d), %llu connect errors, %llu protocol errors\n",
           r->connections_opened, r->connections_max, (unsigned long long)r->connect_errors,
           (unsigned long long)r->protocol_errors);
    if (r->n_models > 1) {
        printf("  %-24s %10s %9s %9s %10s %9s\n", "model", "target/s", "sent", "200",
               "goodput/s", "p99 ms");
        for (size_t m = 0; m < r->n_models; m++) {
            const lg_model_report *mr = &r->models[m];
            printf("  %-24s %10.1f %9llu %9llu %10.1f %9.3f\n", mr->name, mr->target_rate,
                   (unsigned long long)mr->sent, (unsigned long long)mr->ok, mr->goodput,
                   mr->latency.p99_ms);
        }
    }
}

int cli_load(int argc, char **argv)
{
    static lg_params p; /* static: the model table is large for a stack frame */
    p = lg_default_params();
    const char *inputs[LG_MAX_MODELS + 1];
    size_t n_inputs = 0;
    double rate = -1, duration = 0;
    bool json = false, random_input = false, have_seed = false;
    const char *arrivals = "poisson";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t iv;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--random-input") == 0) {
            random_input = true;
        } else if (strcmp(a, "--url") == 0 && v) {
            p.url = v;
            i++;
        } else if (strcmp(a, "--model") == 0 && v) {
            if (p.n_models == LG_MAX_MODELS) {
                fprintf(stderr, "usher load: at most %d models\n", LG_MAX_MODELS);
                return CLI_USAGE;
            }
            lg_model *m = &p.models[p.n_models];
            const char *colon = strrchr(v, ':');
            size_t nl = strlen(v);
            m->rate = -1; /* from --rate */
            double r;
            if (colon) { /* so a model name cannot hold ':' */
                if (!parse_num(colon + 1, 0, 1e7, &r)) {
                    fprintf(stderr, "usher load: --model %s: '%s' is not a rate in [0, 1e7] "
                                    "requests/s\n", v, colon + 1);
                    return CLI_USAGE;
                }
                nl = (size_t)(colon - v);
                m->rate = r;
            }
            if (nl == 0 || nl >= sizeof m->name) {
                fprintf(stderr, "usher load: --model needs NAME[:RATE] with a name of 1..%d "
                                "bytes\n", LG_NAME_MAX - 1);
                return CLI_USAGE;
            }
            memcpy(m->name, v, nl);
            m->name[nl] = '\0';
            for (size_t k = 0; k < p.n_models; k++)
                if (strcmp(p.models[k].name, m->name) == 0) {
                    fprintf(stderr, "usher load: model '%s' given twice\n", m->name);
                    return CLI_USAGE;
                }
            p.n_models++;
            i++;
        } else if (strcmp(a, "--duration") == 0 && v) {
            if (!parse_num(v, 1e-3, 1e6, &duration)) {
                fprintf(stderr, "usher load: --duration needs seconds in [0.001, 1e6]\n");
                return CLI_USAGE;
            }
            i++;
        } else if (strcmp(a, "--rate") == 0 && v) {
            if (!parse_num(v, 0, 1e7, &rate)) {
                fprintf(stderr, "usher load: --rate needs requests/s in [0, 1e7]\n");
                return CLI_USAGE;
            }
            i++;
        } else if (strcmp(a, "--arrivals") == 0 && v) {
            if (strcmp(v, "poisson") == 0) {
                p.arrivals = LG_ARRIVALS_POISSON;
            } else if (strcmp(v, "uniform") == 0) {
                p.arrivals = LG_ARRIVALS_UNIFORM;
            } else if (strncmp(v, "trace:", 6) == 0 && v[6]) {
                p.arrivals = LG_ARRIVALS_TRACE;
                p.trace = v + 6;
            } else {
                fprintf(stderr, "usher load: --arrivals is poisson, uniform or trace:FILE\n");
                return CLI_USAGE;
            }
            arrivals = p.arrivals == LG_ARRIVALS_TRACE ? "trace" : v;
            i++;
        } else if (strcmp(a, "--input") == 0 && v) {
            if (n_inputs == LG_MAX_MODELS + 1) {
                fprintf(stderr, "usher load: too many --input\n");
                return CLI_USAGE;
            }
            inputs[n_inputs++] = v;
            i++;
        } else if (strcmp(a, "--connections") == 0 && v) {
            if (!cli_parse_i64(v, 1, LG_MAX_CONNECTIONS, &iv)) {
                fprintf(stderr, "usher load: --connections needs an integer in [1, %d]\n",
                        LG_MAX_CONNECTIONS);
                return CLI_USAGE;
            }
            p.max_connections = (int)iv;
            i++;
        } else if (strcmp(a, "--timeout-ms") == 0 && v) {
            if (!cli_parse_i64(v, 1, 3600 * 1000, &iv)) {
                fprintf(stderr, "usher load: --timeout-ms needs an integer in [1, 3600000]\n");
                return CLI_USAGE;
            }
            p.timeout_ms = (int)iv;
            i++;
        } else if (strcmp(a, "--slo-ms") == 0 && v) {
            if (!parse_num(v, 0.001, 3.6e6, &p.slo_ms)) {
                fprintf(stderr, "usher load: --slo-ms needs milliseconds in [0.001, 3600000]\n");
                return CLI_USAGE;
            }
            i++;
        } else if (strcmp(a, "--seed") == 0 && v) {
            if (!cli_parse_i64(v, 0, INT64_MAX, &iv)) {
                fprintf(stderr, "usher load: --seed needs a non-negative integer\n");
                return CLI_USAGE;
            }
            p.seed = (uint64_t)iv;
            have_seed = true;
            i++;
        } else if (strcmp(a, "--ledger") == 0 && v) {
            p.ledger_path = v;
            i++;
        } else {
            fprintf(stderr, "usher load: unknown option '%s' (or it needs a value)\n", a);
            return CLI_USAGE;
        }
    }
    if (!p.url || p.n_models == 0) {
        help(stderr);
        return CLI_USAGE;
    }
    if (p.arrivals != LG_ARRIVALS_TRACE && duration <= 0) {
        fprintf(stderr, "usher load: --duration is needed (seconds of arrivals)\n");
        return CLI_USAGE;
    }
    p.duration_s = duration;
    bool any_rate = false;
    for (size_t m = 0; m < p.n_models; m++) {
        if (p.models[m].rate < 0)
            p.models[m].rate = rate;
        if (p.models[m].rate < 0 && p.arrivals != LG_ARRIVALS_TRACE) {
            fprintf(stderr, "usher load: model '%s' has no rate (NAME:RATE or --rate)\n",
                    p.models[m].name);
            return CLI_USAGE;
        }
        any_rate |= p.models[m].rate > 0;
    }
    if (!any_rate && p.arrivals != LG_ARRIVALS_TRACE) {
        fprintf(stderr, "usher load: every rate is 0: nothing to send\n");
        return CLI_USAGE;
    }
    /* --input FILE for all, or NAME=FILE for one model (NAME must be a --model) */
    const char *all = NULL;
    for (size_t k = 0; k < n_inputs; k++) {
        const char *eq = strchr(inputs[k], '=');
        size_t m = p.n_models;
        if (eq)
            for (m = 0; m < p.n_models; m++)
                if (strlen(p.models[m].name) == (size_t)(eq - inputs[k]) &&
                    memcmp(p.models[m].name, inputs[k], (size_t)(eq - inputs[k])) == 0)
                    break;
        if (m < p.n_models) {
            if (p.models[m].input) {
                fprintf(stderr, "usher load: two --input for model '%s'\n", p.models[m].name);
                return CLI_USAGE;
            }
            p.models[m].input = eq + 1;
        } else if (!all) {
            all = inputs[k];
        } else {
            fprintf(stderr, "usher load: two --input for all models ('%s', '%s'); use "
                            "--input NAME=FILE\n", all, inputs[k]);
            return CLI_USAGE;
        }
    }
    if (all && random_input) {
        fprintf(stderr, "usher load: --input FILE and --random-input exclude each other\n");
        return CLI_USAGE;
    }
    for (size_t m = 0; m < p.n_models; m++)
        if (!p.models[m].input)
            p.models[m].input = all; /* NULL: random input */
    if (!have_seed)
        p.seed = random_seed();

    lg_report r;
    memset(&r, 0, sizeof r);
    usher_error err;
    if (lg_run(&p, &r, NULL, &err) < 0) {
        fprintf(stderr, "usher load: %s\n", err.msg);
        return CLI_FAIL;
    }
    if (json) {
        us_buf b;
        us_buf_init(&b, 0);
        lg_report_json(&r, &b);
        fputs(us_buf_str(&b), stdout);
        us_buf_free(&b);
    } else {
        print_text(&p, &r, arrivals);
    }
    if (r.sent == 0)
        fprintf(stderr, "usher load: warning: no request was scheduled (rate x duration too "
                        "small, or no trace line before the end)\n");
    if (r.behind)
        fprintf(stderr, "usher load: warning: the generator fell behind its schedule (lag p99 "
                        "%.3f ms > 1 ms): latencies include its own delay; lower the rate or "
                        "use a faster machine\n", r.lag.p99_ms);
    if (r.wait.p99_ms > 1.0)
        fprintf(stderr, "usher load: warning: requests waited for a connection (p99 %.3f ms, "
                        "counted in their latency): the server saw less than the offered load; "
                        "raise --connections\n", r.wait.p99_ms);
    bool once = r.missing == 0 && r.duplicates == 0 && r.id_mismatch == 0 && r.id_missing == 0;
    return once ? CLI_OK : CLI_FAIL;
}
