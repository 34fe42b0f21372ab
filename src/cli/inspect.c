/*
 * inspect.c - `usher inspect`: what a model is and what it costs (layer 9).
 *
 * One model: a readable report (or --json, one object). Several models: one
 * table row each (or --json, one object per line).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "usher/model.h"

#define MAX_DIMS 64

static void help(FILE *f)
{
    fprintf(f,
            "usage: usher inspect MODEL... [--batch N] [--dim NAME=VALUE]... [--value NAME=V]...\n"
            "                              [--json] [--graph-only] [--ops N]\n\n"
            "Reads ONNX models and prints inputs, outputs, operators, parameters,\n"
            "multiply-accumulates (MACs), FLOPs and activation memory.\n\n"
            "  --batch N         bind the leading dynamic dim of every input to N (default 1)\n"
            "  --dim NAME=VALUE  bind another dynamic dim; NAME is its dim_param, or\n"
            "                    INPUT:AXIS for an unnamed one (listed under 'dynamic dims',\n"
            "                    with the default the model records, used when unset)\n"
            "  --value NAME=V    the value of a one-element integer input (for example a\n"
            "                    sample rate that selects a branch of the graph)\n"
            "  --json            machine-readable output (schema: docs/inspect-json.md)\n"
            "  --graph-only      do not require weight data (models stripped of weights)\n"
            "  --ops N           operator types to list (default 12; 0 = all)\n\n"
            "Exit status: 0 ok, 1 a model could not be read, 2 usage error,\n"
            "3 some nodes could not be inferred (unsupported or inconsistent).\n");
}

typedef struct opts {
    int64_t batch, ops;
    usher_dim_binding dims[MAX_DIMS], values[MAX_DIMS];
    size_t n_dims, n_values;
    bool json, graph_only;
} opts;

static double gi(uint64_t v) { return (double)v / 1e9; }
static double mb(uint64_t v) { return (double)v / 1e6; }

static void print_report(const char *path, usher_model *m, const opts *o)
{
    usher_model_summary s;
    usher_model_get_summary(m, &s);
    char a[64], b[64], c[64];
    printf("model        %s\n", path);
    printf("format       ONNX IR %lld, opset %lld, producer '%s'\n", (long long)s.ir_version,
           (long long)s.opset, s.producer ? s.producer : "");
    printf("graph        %s nodes in %llu graph%s, %u operator types\n",
           cli_group(s.n_nodes, a, sizeof a), (unsigned long long)s.n_graphs,
           s.n_graphs == 1 ? "" : "s", s.n_op_types);
    usher_tensor_info ti;
    for (uint32_t i = 0; usher_model_input(m, i, &ti) == USHER_OK; i++)
        printf("%-12s %s  %s  %s%s%s\n", i ? "" : "inputs", ti.name, ti.dtype, ti.declared,
               strcmp(ti.declared, ti.shape) ? "  ->  " : "",
               strcmp(ti.declared, ti.shape) ? ti.shape : "");
    for (uint32_t i = 0; usher_model_output(m, i, &ti) == USHER_OK; i++)
        printf("%-12s %s  %s  %s\n", i ? "" : "outputs", ti.name, ti.dtype, ti.shape);
    const char *sym;
    if (usher_model_symbol(m, 0, &sym) == USHER_OK) {
        printf("dynamic dims ");
        for (uint32_t i = 0; usher_model_symbol(m, i, &sym) == USHER_OK; i++) {
            int64_t dv;
            printf("%s%s", i ? ", " : "", sym);
            if (usher_model_symbol_default(m, sym, &dv) == USHER_OK)
                printf(" (default %lld)", (long long)dv);
        }
        printf("\n");
    }
    printf("parameters   %s (%.1f MB of weights%s)\n", cli_group(s.n_params, a, sizeof a),
           mb(s.weight_bytes), s.graph_only ? "; graph-only: weight data absent" : "");
    printf("at batch %-3lld %.3f GMACs, %.3f GFLOPs%s\n", (long long)o->batch, gi(s.macs),
           gi(s.flops), s.exact ? "" : "  (lower bound: bind the dynamic dims with --dim)");
    printf("activations  %s total, %s peak live, %s inputs+outputs\n",
           cli_si((double)s.activation_bytes, "B", a, sizeof a),
           cli_si((double)s.peak_activation_bytes, "B", b, sizeof b),
           cli_si((double)s.io_bytes, "B", c, sizeof c));
    usher_op_stat os;
    printf("operators   ");
    uint32_t shown = 0;
    for (uint32_t i = 0; usher_model_op(m, i, &os) == USHER_OK; i++) {
        if (o->ops > 0 && shown >= (uint64_t)o->ops) {
            printf(" ... (%u more)", s.n_op_types - shown);
            break;
        }
        printf("%s %s x%llu", shown % 4 == 0 && shown ? "\n            " : "", os.op_type,
               (unsigned long long)os.count);
        if (os.macs)
            printf(" (%.3f GMACs)", gi(os.macs));
        if (!os.supported)
            printf(" [unsupported]");
        shown++;
    }
    printf("\n");
    usher_problem pr;
    if (usher_model_problem(m, 0, &pr) != USHER_OK) {
        printf("problems     none: every node was inferred\n");
        return;
    }
    uint32_t np = 0;
    for (uint32_t i = 0; usher_model_problem(m, i, &pr) == USHER_OK; i++, np++)
        if (i < 20)
            printf("%-12s %s node '%s' (%s%s%s): %s\n", i ? "" : "problems",
                   pr.code == USHER_ERR_UNSUPPORTED ? "unsupported" : "failed", pr.node,
                   pr.domain[0] ? pr.domain : "", pr.domain[0] ? "." : "", pr.op_type,
                   pr.message);
    if (np > 20)
        printf("             ... %u more\n", np - 20);
}

static void print_row_header(int64_t batch)
{
    printf("%-34s %13s %10s %10s %11s %11s %7s %s\n", "model", "params", "weight MB",
           "GMACs", "peak act MB", "total act MB", "nodes", "problems");
    (void)batch;
}

static void print_row(const char *path, usher_model *m)
{
    usher_model_summary s;
    usher_model_get_summary(m, &s);
    char a[64];
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    printf("%-34.34s %13s %10.1f %10.3f %11.1f %11.1f %7llu %u%s\n", base,
           cli_group(s.n_params, a, sizeof a), mb(s.weight_bytes), gi(s.macs),
           mb(s.peak_activation_bytes), mb(s.activation_bytes), (unsigned long long)s.n_nodes,
           s.n_unsupported + s.n_failed, s.exact ? "" : " (inexact)");
}

int cli_inspect(int argc, char **argv)
{
    opts o;
    memset(&o, 0, sizeof o);
    o.batch = 1;
    o.ops = 12;
    const char *models[4096];
    size_t n_models = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (strcmp(a, "--graph-only") == 0) {
            o.graph_only = true;
        } else if (strcmp(a, "--batch") == 0 || strcmp(a, "--ops") == 0) {
            int64_t v;
            bool batch = strcmp(a, "--batch") == 0;
            if (i + 1 >= argc || !cli_parse_i64(argv[i + 1], batch ? 1 : 0, (int64_t)1 << 40, &v)) {
                fprintf(stderr, "usher inspect: %s needs a %s integer\n", a,
                        batch ? "positive" : "non-negative");
                return CLI_USAGE;
            }
            *(batch ? &o.batch : &o.ops) = v;
            i++;
        } else if (strcmp(a, "--dim") == 0 || strcmp(a, "--value") == 0) {
            bool dim = strcmp(a, "--dim") == 0;
            char *eq = i + 1 < argc ? strrchr(argv[i + 1], '=') : NULL;
            int64_t v;
            if (!eq || eq == argv[i + 1] ||
                !cli_parse_i64(eq + 1, dim ? 1 : -((int64_t)1 << 40), (int64_t)1 << 40, &v)) {
                fprintf(stderr, "usher inspect: %s needs NAME=VALUE%s\n", a,
                        dim ? " with VALUE >= 1" : "");
                return CLI_USAGE;
            }
            size_t *cnt = dim ? &o.n_dims : &o.n_values;
            usher_dim_binding *arr = dim ? o.dims : o.values;
            if (*cnt == MAX_DIMS) {
                fprintf(stderr, "usher inspect: at most %d %s options\n", MAX_DIMS, a);
                return CLI_USAGE;
            }
            *eq = '\0'; /* argv strings are ours to edit */
            arr[*cnt].name = argv[i + 1];
            arr[*cnt].value = v;
            (*cnt)++;
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "usher inspect: unknown option '%s'\n", a);
            help(stderr);
            return CLI_USAGE;
        } else {
            if (n_models == sizeof models / sizeof models[0]) {
                fprintf(stderr, "usher inspect: too many models\n");
                return CLI_USAGE;
            }
            models[n_models++] = a;
        }
    }
    if (n_models == 0) {
        help(stderr);
        return CLI_USAGE;
    }
    usher_load_params lp = usher_load_default_params();
    lp.graph_only = o.graph_only;
    usher_shape_params sp = usher_shape_default_params();
    sp.batch = o.batch;
    sp.dims = o.dims;
    sp.n_dims = o.n_dims;
    sp.values = o.values;
    sp.n_values = o.n_values;
    int status = CLI_OK;
    if (n_models > 1 && !o.json)
        print_row_header(o.batch);
    for (size_t k = 0; k < n_models; k++) {
        usher_model *m;
        usher_error err;
        if (usher_model_load(models[k], &lp, &m, &err) < 0) {
            fprintf(stderr, "usher inspect: %s\n", err.msg);
            status = CLI_FAIL;
            continue;
        }
        int rc = usher_model_infer(m, &sp, &err);
        if (rc == USHER_ERR_NOT_FOUND || rc == USHER_ERR_INVALID || rc == USHER_ERR_NOMEM) {
            fprintf(stderr, "usher inspect: %s: %s\n", models[k], err.msg);
            usher_model_free(m);
            status = CLI_FAIL;
            continue;
        }
        if (rc < 0 && status == CLI_OK)
            status = CLI_INCOMPLETE;
        if (o.json) {
            char *js;
            if (usher_model_report_json(m, models[k], &js, NULL, &err) < 0) {
                fprintf(stderr, "usher inspect: %s: %s\n", models[k], err.msg);
                status = CLI_FAIL;
            } else {
                printf("%s\n", js);
                usher_free(js);
            }
        } else if (n_models > 1) {
            print_row(models[k], m);
        } else {
            print_report(models[k], m, &o);
        }
        usher_model_free(m);
    }
    return status;
}
