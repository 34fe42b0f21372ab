/*
 * serve.c - `usher serve`: the inference server (layer 9, over
 * include/usher/serve.h).
 */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/log.h"
#include "usher/serve.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: usher serve --repo DIR [--plan plan.json [--node NAME]] [--http-port N]\n"
            "                   [--grpc-port N|off] [--http-address ADDR] [--http-threads N]\n"
            "                   [--model-control-mode none|explicit|poll] [--load-model NAME]...\n"
            "                   [--repository-poll-secs N]\n"
            "                   [--cpus N] [--max-body-bytes N] [--default-slo-ms MS]\n"
            "                   [--max-connections N] [--max-client-connections N]\n"
            "                   [--header-timeout S] [--body-timeout S] [--idle-timeout S]\n"
            "                   [--exit-timeout S] [--ort-lib PATH] [--gpu-share mps|sm]\n"
            "                   [--inline-max-us N] [--cpu-wake-latency-us N]\n"
            "                   [--log-level L] [--log-format text|json] [--quiet]\n\n"
            "Serves the models of a repository (Triton's layout: DIR/MODEL/VERSION/model.onnx,\n"
            "optional config.pbtxt, optional usher.yaml with slo_ms, rate, sample) over the\n"
            "KServe v2 / Open Inference Protocol (HTTP/1.1, JSON and binary tensors). Models\n"
            "whose usher.yaml names the same merge_group are merged (usher merge), verified and\n"
            "served as one model (a worker of the merged graph per replica), each still\n"
            "answering as itself (docs/serve.md). Each\n"
            "replica runs in a worker process with ONNX Runtime. An idle replica takes what is\n"
            "queued at once, up to the plan's batch size (waiting only where config.pbtxt's\n"
            "max_queue_delay_microseconds asks, or the arrival rate needs larger batches);\n"
            "a request whose deadline cannot be met is refused with 503 at once. Without\n"
            "--plan, each model is measured at load on this machine's CPU and planned for\n"
            "its cores; the plan is printed. docs/serve.md.\n\n"
            "  --repo DIR          the model repository (required)\n"
            "  --plan FILE         a plan.json from `usher plan`: replicas, batch sizes, and\n"
            "                      on a machine with GPUs, devices and compute shares\n"
            "  --node NAME         with --plan: serve only that node's replicas (its GPUs in\n"
            "                      the plan's order are cuda:0, 1, ...) and only its models\n"
            "                      (docs/deploy.md)\n"
            "  --http-port N       default 8000; 0 picks a free port\n"
            "  --grpc-port N|off   KServe v2 / Triton gRPC (GRPCInferenceService) on port N of\n"
            "                      the HTTP address (0 picks a free port). Default 8001 (as\n"
            "                      Triton) when --http-port is not given either; with\n"
            "                      --http-port, no gRPC unless --grpc-port is given.\n"
            "                      docs/serve.md, gRPC\n"
            "  --model-control-mode none|explicit|poll\n"
            "                      Triton's model control: none (default) loads every model at\n"
            "                      start and refuses load/unload requests; explicit loads only\n"
            "                      --load-model's at start, and POST /v2/repository/models/M/\n"
            "                      load and unload (gRPC RepositoryModelLoad/Unload) load,\n"
            "                      reload and unload models, directories added since the start\n"
            "                      included; poll loads every model at start and rescans the\n"
            "                      repository: added directories load, changed ones reload,\n"
            "                      removed ones unload (load/unload requests refused).\n"
            "                      docs/serve.md, Model control\n"
            "  --load-model NAME   explicit mode: load NAME at start (repeatable; '*': all)\n"
            "  --repository-poll-secs N\n"
            "                      poll mode: seconds between scans, 1 to 86400 (default 15, as\n"
            "                      Triton); a change is acted on once unchanged over two scans\n"
            "  --http-address A    default 127.0.0.1; 0.0.0.0 for every interface\n"
            "  --http-threads N    front-end threads (default 2)\n"
            "  --cpus N            cores the plan may use (default: those this process may\n"
            "                      run on, as taskset or a cpuset allows)\n"
            "  --max-body-bytes N  request body limit (default 67108864)\n"
            "  --max-connections N open connections at most (default 1024); over it, the\n"
            "                      oldest idle connection is closed for the new one\n"
            "  --max-client-connections N  likewise from one client address (default 256;\n"
            "                      0: no cap, e.g. behind a load balancer)\n"
            "  --header-timeout S  a request's headers within S s of its first byte, else 408\n"
            "                      (default 10)\n"
            "  --body-timeout S    its body within S s of its headers, else 408 (default 60)\n"
            "  --idle-timeout S    a connection without a request closes after S s (default\n"
            "                      10)\n"
            "  --default-slo-ms X  SLO of models without one (default 100)\n"
            "  --exit-timeout S    on SIGTERM, time to finish queued requests (default 30)\n"
            "  --ort-lib PATH      libonnxruntime.so to use (a build with the CUDA provider for\n"
            "                      GPUs)\n"
            "  --gpu-share M       how a GPU replica's share is enforced: mps (default: the\n"
            "                      worker's CUDA_MPS_ACTIVE_THREAD_PERCENTAGE) or sm (a CUDA\n"
            "                      green context with that share of the SMs; untested on a GPU)\n"
            "  --inline-max-us N   a request that finds its model idle, with a run predicted to\n"
            "                      take at most N us, runs on the front-end thread that got it,\n"
            "                      skipping two thread hand-offs (default 250; 0: never)\n"
            "  --cpu-wake-latency-us N  hold Linux's CPU latency QoS at N us while serving\n"
            "                      (/dev/cpu_dma_latency; needs root): no deep idle states; with\n"
            "                      0 idle cores poll. Quicker thread hand-offs, notably on VMs,\n"
            "                      for more power. Default: the system's setting, untouched\n"
            "  --log-level L       error, warn (default), info (adds one line per request: the\n"
            "                      access log) or debug; also USHER_LOG\n"
            "  --log-format F      text (default) or json (one object per line: time, level,\n"
            "                      msg or event and its fields); also USHER_LOG_FORMAT\n"
            "  --quiet             print the address only; no access log\n\n"
            "Endpoints: GET /v2/health/live, /v2/health/ready, /v2, /v2/models/M[/versions/V],\n"
            ".../ready, .../config, .../stats, /v2/models/stats, /metrics; POST .../infer\n"
            "(gzip or deflate bodies and answers), /v2/repository/index. SIGTERM or SIGINT:\n"
            "graceful shutdown, exit 0. SIGHUP: apply the plan again (the --plan file, or each\n"
            "model's usher.yaml) while serving; merge groups are resized, a change of their\n"
            "members or batch is refused (the group kept). Replicas: --plan, else usher.yaml's\n"
            "replicas, else config.pbtxt's instance_group (Triton's count), else the rate's need.\n");
}

int cli_serve(int argc, char **argv)
{
    usher_serve_params p = usher_serve_default_params();
    int64_t n, exit_timeout = 30;
    bool quiet = false;
    const char *node = NULL;
    static const char *load_models[256];
    size_t n_load = 0;
    bool mode_given = false, http_port_given = false, grpc_port_given = false;
    bool poll_secs_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "--repo") == 0 && v) {
            p.repo = argv[++i];
        } else if (strcmp(a, "--plan") == 0 && v) {
            p.plan = argv[++i];
        } else if (strcmp(a, "--node") == 0 && v) {
            node = argv[++i];
        } else if (strcmp(a, "--http-address") == 0 && v) {
            p.http_address = argv[++i];
        } else if (strcmp(a, "--gpu-share") == 0 && v &&
                   (strcmp(v, "mps") == 0 || strcmp(v, "sm") == 0)) {
            p.gpu_share_sm = strcmp(v, "sm") == 0;
            i++;
        } else if (strcmp(a, "--log-level") == 0 && v && us_log_parse_level(v) >= 0) {
            us_log_set_level((us_log_level)us_log_parse_level(v));
            i++;
        } else if (strcmp(a, "--log-format") == 0 && v &&
                   (strcmp(v, "text") == 0 || strcmp(v, "json") == 0)) {
            us_log_set_format(strcmp(v, "json") == 0 ? US_LOG_JSON : US_LOG_TEXT);
            i++;
        } else if (strcmp(a, "--model-control-mode") == 0 && v &&
                   (strcmp(v, "none") == 0 || strcmp(v, "explicit") == 0 ||
                    strcmp(v, "poll") == 0)) {
            p.model_control_explicit = strcmp(v, "explicit") == 0;
            p.model_control_poll = strcmp(v, "poll") == 0;
            mode_given = true;
            i++;
        } else if (strcmp(a, "--repository-poll-secs") == 0 && v &&
                   cli_parse_i64(v, 1, 86400, &n)) {
            p.repository_poll_secs = (int)n;
            poll_secs_given = true;
            i++;
        } else if (strcmp(a, "--load-model") == 0 && v && n_load < 256) {
            load_models[n_load++] = argv[++i];
        } else if (strcmp(a, "--ort-lib") == 0 && v) {
            p.ort_library = argv[++i];
        } else if (strcmp(a, "--http-port") == 0 && v && cli_parse_i64(v, 0, 65535, &n)) {
            p.http_port = (int)n;
            http_port_given = true;
            i++;
        } else if (strcmp(a, "--grpc-port") == 0 && v && strcmp(v, "off") == 0) {
            p.grpc_port = -1;
            grpc_port_given = true;
            i++;
        } else if (strcmp(a, "--grpc-port") == 0 && v && cli_parse_i64(v, 0, 65535, &n)) {
            p.grpc_port = (int)n;
            grpc_port_given = true;
            i++;
        } else if (strcmp(a, "--http-threads") == 0 && v && cli_parse_i64(v, 1, 256, &n)) {
            p.http_threads = (int)n;
            i++;
        } else if (strcmp(a, "--inline-max-us") == 0 && v && cli_parse_i64(v, 0, 100000, &n)) {
            p.inline_max_us = (int)n;
            i++;
        } else if (strcmp(a, "--cpu-wake-latency-us") == 0 && v &&
                   cli_parse_i64(v, 0, 1000000, &n)) {
            p.cpu_latency_hold = true;
            p.cpu_latency_us = (int)n;
            i++;
        } else if (strcmp(a, "--cpus") == 0 && v && cli_parse_i64(v, 1, 4096, &n)) {
            p.cpus = (int)n;
            i++;
        } else if (strcmp(a, "--max-body-bytes") == 0 && v &&
                   cli_parse_i64(v, 1024, (int64_t)1 << 34, &n)) {
            p.max_body_bytes = (uint64_t)n;
            i++;
        } else if (strcmp(a, "--max-connections") == 0 && v && cli_parse_i64(v, 1, 1000000, &n)) {
            p.max_connections = (int)n;
            i++;
        } else if (strcmp(a, "--max-client-connections") == 0 && v &&
                   cli_parse_i64(v, 0, 1000000, &n)) {
            p.max_client_connections = n ? (int)n : -1;
            i++;
        } else if (strcmp(a, "--header-timeout") == 0 && v && cli_parse_i64(v, 1, 3600, &n)) {
            p.header_timeout_s = (int)n;
            i++;
        } else if (strcmp(a, "--body-timeout") == 0 && v && cli_parse_i64(v, 1, 3600, &n)) {
            p.body_timeout_s = (int)n;
            i++;
        } else if (strcmp(a, "--idle-timeout") == 0 && v && cli_parse_i64(v, 1, 3600, &n)) {
            p.idle_timeout_s = (int)n;
            i++;
        } else if (strcmp(a, "--default-slo-ms") == 0 && v && cli_parse_i64(v, 1, 3600000, &n)) {
            p.default_slo_ms = (double)n;
            i++;
        } else if (strcmp(a, "--exit-timeout") == 0 && v &&
                   cli_parse_i64(v, 0, 3600, &exit_timeout)) {
            i++;
        } else {
            fprintf(stderr, "usher serve: unknown option, bad value or missing value: '%s'\n\n",
                    a);
            help(stderr);
            return CLI_USAGE;
        }
    }
    /* Triton's pair: HTTP 8000 and gRPC 8001. A command that chose its HTTP port
     * (tests, several servers on one machine, --node slices) chooses its gRPC port
     * too, so that two such servers never race for 8001 */
    if (!grpc_port_given && !http_port_given)
        p.grpc_port = 8001;
    if (!p.repo) {
        fprintf(stderr, "usher serve: --repo is required\n\n");
        help(stderr);
        return CLI_USAGE;
    }
    if (n_load && !p.model_control_explicit) {
        fprintf(stderr, "usher serve: --load-model goes with --model-control-mode explicit%s\n",
                mode_given ? "" : " (the default mode, none, loads every model)");
        return CLI_USAGE;
    }
    if (poll_secs_given && !p.model_control_poll) {
        fprintf(stderr, "usher serve: --repository-poll-secs goes with --model-control-mode "
                        "poll\n");
        return CLI_USAGE;
    }
    p.load_models = load_models;
    p.n_load_models = n_load;
    if (node && !p.plan) {
        fprintf(stderr, "usher serve: --node goes with --plan\n");
        return CLI_USAGE;
    }
    static char exe[PATH_MAX];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (el <= 0) {
        fprintf(stderr, "usher serve: cannot find its own executable (/proc/self/exe)\n");
        return CLI_FAIL;
    }
    exe[el] = 0;
    p.exe = exe;
    p.quiet = quiet;
    /* signals are taken by this thread only (sigwait below): block them before any
     * thread starts, so every thread inherits the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    usher_server *s;
    usher_error err;
    /* --node: the server is given the node's slice and its models only (serve_node.c) */
    static cli_node_view nv;
    if (node) {
        if (cli_node_view_make(&nv, p.plan, node, p.repo) < 0)
            return CLI_FAIL;
        p.plan = nv.plan;
        p.repo = nv.repo;
    }
    if (!quiet)
        printf("usher serve: profiling and planning the models of %s ...\n", p.repo);
    fflush(stdout);
    if (usher_server_start(&p, &s, &err) < 0) {
        fprintf(stderr, "usher serve: %s\n", err.msg);
        cli_node_view_free(&nv);
        return CLI_FAIL;
    }
    if (!quiet)
        usher_server_print_plan(s, stdout);
    printf("usher serve: listening on http://%s:%d (KServe v2); SIGTERM or Ctrl-C stops\n",
           p.http_address, usher_server_port(s));
    if (usher_server_grpc_port(s) >= 0)
        printf("usher serve: gRPC on %s:%d (inference.GRPCInferenceService)\n", p.http_address,
               usher_server_grpc_port(s));
    fflush(stdout);
    int sig = 0;
    for (;;) {
        sigwait(&set, &sig);
        if (sig != SIGHUP)
            break;
        /* a new plan, without dropping a request (docs/serve.md) */
        printf("usher serve: SIGHUP: applying the %s ...\n",
               p.plan ? "plan file again" : "models' usher.yaml again");
        fflush(stdout);
        int changed = 0;
        if (node && cli_node_view_refresh(&nv) < 0)
            fprintf(stderr, "usher serve: the node's slice was not rewritten; the old one stays\n");
        else if (usher_server_reload(s, (uint64_t)exit_timeout * 1000, &changed, &err) < 0)
            fprintf(stderr, "usher serve: %s\n", err.msg);
        printf("usher serve: %d model%s switched to the new plan\n", changed,
               changed == 1 ? "" : "s");
        if (changed && !quiet)
            usher_server_print_plan(s, stdout);
        fflush(stdout);
    }
    if (!quiet)
        printf("usher serve: %s: draining (up to %lld s) ...\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", (long long)exit_timeout);
    fflush(stdout);
    usher_server_shutdown(s, (uint64_t)exit_timeout * 1000);
    usher_server_free(s);
    cli_node_view_free(&nv);
    if (!quiet)
        printf("usher serve: stopped\n");
    return CLI_OK;
}
