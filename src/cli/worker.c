/*
 * worker.c - `usher worker`: the worker process the server starts for each
 * replica (layer 9, internal: not a command for people).
 *
 * The whole verb is the runtime's rt_worker_main (src/runtime/worker_main.c),
 * which parses its own arguments. It sits in the CLI only because the server
 * starts workers by running its own executable (`exe worker ...`), so the
 * verb must exist in the one binary; the CLI reaches into src/runtime here,
 * an exception to "front ends use only the public API", because a worker is
 * part of the runtime, not a front end feature.
 */
#include <stddef.h> /* cli.h uses size_t */

#include "cli.h"
#include "runtime/rt.h"

int cli_worker(int argc, char **argv) { return rt_worker_main(argc, argv); }
