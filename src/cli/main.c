/*
 * main.c - the `usher` command (layer 9): verb dispatch and shared helpers.
 *
 * Front ends use only the public API (include/usher/). Exit codes:
 *   0 success, 1 failure (the message says why), 2 usage error,
 *   3 the command ran but its result is incomplete (inspect: some nodes
 *     could not be inferred; plan: some rate is left unserved).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "usher/model.h"

static const struct verb {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} verbs[] = {
    {"inspect", cli_inspect, "show a model's inputs, outputs, operators, size and cost"},
    {"estimate", cli_estimate, "predict latency, Creq, Mreq, bandwidth and energy on GPU types"},
    {"interfere", cli_interfere, "predict what replicas sharing one GPU do to each other's latency"},
    {"calibrate", cli_calibrate, "measure this machine's GPU and write its calibration row"},
    {"plan", cli_plan, "place models on GPUs: replicas, batch sizes, shares, under SLOs"},
    {"simulate", cli_simulate, "run a plan under its workload's traffic: goodput, SLOs, latency"},
    {"compare", cli_compare, "plan with several policies, simulate each on the same arrivals"},
    {"serve", cli_serve, "serve a model repository over the KServe v2 inference protocol"},
    {"export", cli_export, "turn a plan into Kubernetes manifests or a Triton model repository"},
    {"load", cli_load, "send open-loop inference load to a server and count every answer"},
    {"merge", cli_merge, "merge related models into one ONNX graph (--verify: checked on ONNX Runtime)"},
    {"convert", cli_convert, "rewrite a model: strip weights, fill random weights, external data"},
    {"worker", cli_worker, "(internal) a replica's worker process, started by the server"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: usher <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(f, "\n'usher <command> --help' describes a command. 'usher --version' prints the "
               "version.\nEnvironment: USHER_LOG=error|warn|info|debug sets the log level,\n"
               "USHER_LOG_FORMAT=text|json its format (json: one object per line, on stderr).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("usher %s\n", usher_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcmp(argv[1], verbs[i].name) == 0)
            return verbs[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "usher: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
