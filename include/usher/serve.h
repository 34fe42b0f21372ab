/*
 * usher/serve.h - the inference server: a model repository served over the
 * KServe v2 / Open Inference Protocol (HTTP/1.1), each model replica in a
 * worker process running ONNX Runtime, requests batched within their
 * deadlines (docs/serve.md).
 *
 *   usher_serve_params p = usher_serve_default_params();
 *   p.repo = "models/"; p.exe = "/usr/local/bin/usher";
 *   usher_server *s;
 *   if (usher_server_start(&p, &s, &err) < 0) { puts(err.msg); ... }
 *   usher_server_print_plan(s, stdout);
 *   ... usher_server_shutdown(s, 30 * 1000);   // drain, then stop
 *   usher_server_free(s);
 *
 * Start returns once the HTTP port listens; models load in the background
 * (GET /v2/health/ready says when all are). A model that cannot load is
 * UNAVAILABLE with its reason and the others serve.
 */
#ifndef USHER_SERVE_H
#define USHER_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "usher/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct usher_server usher_server;

typedef struct usher_serve_params {
    const char *repo;          /* model repository (required) */
    const char *exe;           /* the usher binary, started as `exe worker ...` (required) */
    const char *plan;          /* plan.json from `usher plan`; NULL: plan for this machine */
    const char *http_address;  /* default "127.0.0.1"; "0.0.0.0" for every interface */
    int http_port;             /* default 8000, as Triton; 0: any free port */
    int http_threads;          /* front-end threads; default 2 */
    int grpc_port;             /* KServe v2 / Triton gRPC on http_address: this port (Triton's
                                  is 8001); 0: any free port; -1 (default): no gRPC */
    uint64_t max_body_bytes;   /* default 64 MiB (RELIABILITY.md INPUT-2) */
    int max_connections;       /* open connections at most (the oldest idle one is closed for
                                  a new one); default 1024 */
    int max_client_connections;/* from one client address at most, likewise; default 256;
                                  -1: no cap */
    int header_timeout_s;      /* a request's headers within this of its first byte, else
                                  408; default 10 */
    int body_timeout_s;        /* its body within this of its headers, else 408; default 60 */
    int idle_timeout_s;        /* a connection without a request is closed after this;
                                  default 10 */
    int cpus;                  /* CPU cores the plan may use; 0: those the process may run on (affinity) */
    double default_slo_ms;     /* for models without one; default 100 */
    const char *ort_library;   /* libonnxruntime.so; NULL: the default search */
    bool quiet;                /* no request logging */
    bool gpu_share_sm;         /* a GPU replica's share as an SM partition (CUDA green context)
                                  instead of an MPS percentage (the default) */
    int inline_max_us;         /* a request that finds its model idle, with a run predicted to
                                  take at most this, runs on the front-end thread that received
                                  it (docs/serve.md); default 250; 0: never; at most 100000 */
    bool cpu_latency_hold;     /* while serving, ask Linux (PM QoS, /dev/cpu_dma_latency) to keep
                                  every core's wake-up latency within cpu_latency_us: no deep
                                  idle states, and with 0 idle cores poll instead of halting.
                                  Faster hand-offs between threads, more power; needs root */
    int cpu_latency_us;        /* 0 to 1000000 */
    bool model_control_explicit; /* Triton's --model-control-mode explicit: models load and
                                    unload on request (POST /v2/repository/models/M/load,
                                    unload); false (Triton's "none"): every model loads at
                                    start and those requests are refused */
    const char *const *load_models; /* explicit mode: the models loaded at start ("*": all);
                                       none given: none loaded (Triton's meaning) */
    size_t n_load_models;
    bool model_control_poll;   /* Triton's --model-control-mode poll: every model loads at
                                  start and the repository is scanned again every
                                  repository_poll_secs: directories added load, removed ones
                                  unload, changed ones reload (docs/serve.md, Model control);
                                  load / unload requests are refused. Not with
                                  model_control_explicit */
    int repository_poll_secs;  /* poll mode: seconds between scans, 1 to 86400; 0: 15
                                  (Triton's default) */
} usher_serve_params;

usher_serve_params usher_serve_default_params(void);

/*
 * Scan the repository, profile and plan the models (CPU: a short
 * measurement of each model at load, docs/serve.md), start their workers and
 * the HTTP front end. Errors: the repository unreadable, the port taken,
 * the plan file invalid; a bad model is not an error (it is UNAVAILABLE).
 */
int usher_server_start(const usher_serve_params *p, usher_server **out, usher_error *err);
/* the port actually bound (useful with http_port 0) */
int usher_server_port(const usher_server *s);
/* the gRPC port bound; -1 when not serving gRPC */
int usher_server_grpc_port(const usher_server *s);
/* the plan as a table: per model its replicas, threads, batch size, predicted latency */
void usher_server_print_plan(usher_server *s, FILE *f);
/* every model ready */
bool usher_server_ready(usher_server *s);
/*
 * Apply a new plan while serving (SIGHUP in `usher serve`), without
 * dropping a request. The plan is the plan file again when the server was
 * started with one (re-read from disk), otherwise each model's usher.yaml
 * re-read and planned with the profiles measured at start (no new
 * measurement). For each model whose replicas, threads, batch size or SLO
 * change, a new set of workers is started beside the old; once one of them
 * is ready, new requests go to it, and the old set finishes what it has
 * queued (drain_ms at most) and stops. Models left unchanged are not
 * touched; an unavailable model stays unavailable. A merge group is
 * resized the same way from its members' new plans (one runtime for all of
 * them); a change of its members or of its rows per run is not applied.
 * *changed (may be NULL) counts the models switched (a group's members
 * each). On error (a plan that does not read, a plan placing a group's
 * member alone too, a new runtime that does not become ready within the
 * load timeout, a group change not applied) the old plan keeps serving for
 * the models or groups concerned and the message says which.
 */
int usher_server_reload(usher_server *s, uint64_t drain_ms, int *changed, usher_error *err);
/*
 * Graceful shutdown (FAULT-7): ready turns false, new requests get 503,
 * queued and running requests finish or get 503 within drain_ms, workers
 * stop, the port closes.
 */
void usher_server_shutdown(usher_server *s, uint64_t drain_ms);
void usher_server_free(usher_server *s); /* shuts down first if needed; NULL is fine */

#ifdef __cplusplus
}
#endif

#endif
