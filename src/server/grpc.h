/*
 * grpc.h - the gRPC front end of `usher serve` (layer 8, prefix gs_):
 * KServe v2's / Triton's inference.GRPCInferenceService (the methods of
 * src/server/grpc_service.proto) over gRPC's C core (libgrpc; no C++),
 * messages with protobuf-c (grpc_msg.c). Inferences go through the same
 * checks, admission, batching and per-model ledger as the HTTP front end
 * (srv_infer_submit). docs/serve.md, gRPC, is the user's description.
 */
#ifndef GS_GRPC_H
#define GS_GRPC_H

#include "usher/serve.h"
#include "usher/status.h"

typedef struct gs_server gs_server;

typedef struct gs_params {
    const char *address;     /* IPv4 or host name; default "127.0.0.1" */
    int port;                /* 0: any free port */
    int threads;             /* completion-queue threads; default 2 */
    size_t max_message;      /* bytes of a request message (RESOURCE_EXHAUSTED over it) and
                                of an answer; default 64 MiB */
    int max_streams;         /* concurrent calls on one connection (HTTP/2
                                SETTINGS_MAX_CONCURRENT_STREAMS); default 128 */
    int max_calls;           /* calls in progress on the server at most; over it a new call is
                                answered RESOURCE_EXHAUSTED at once; default 4096 */
    int idle_ms;             /* a connection without calls for this long is closed (HTTP/2
                                GOAWAY); default 10000 */
    int read_timeout_ms;     /* a call's request message within this of its start, else it is
                                cancelled DEADLINE_EXCEEDED; default 60000 (a stream's
                                messages have none: it is held by max_calls) */
    int stream_inflight;     /* ModelStreamInfer: requests of one stream read and not yet
                                answered (answers waiting to be written included); at it the
                                stream's reading pauses until an answer is written (HTTP/2
                                flow control then holds the client back); default 32 */
} gs_params;

gs_params gs_default_params(void);
/* a gRPC status code's name ("OK", "NOT_FOUND", ...; "UNKNOWN" out of range) */
const char *gs_code_name(int code);
/* listen and start serving s; errors: the address, the port taken */
int gs_start(usher_server *s, const gs_params *p, gs_server **out, usher_error *err);
int gs_port(const gs_server *g);
/* stop taking new calls; those in progress are answered */
void gs_quiesce(gs_server *g);
/* cancel what is left, stop the threads, free (NULL allowed). Call once nothing will be
 * submitted and every runtime answer has been handed over (n_pending 0). */
void gs_free(gs_server *g);

#endif
