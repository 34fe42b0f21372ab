/*
 * be.h - execution backends (layer 7, prefix be_).
 *
 * A backend session holds one model ready to run batches: ONNX Runtime
 * today (ort.c), loaded with dlopen so that usher builds and runs without
 * it and says clearly when it is missing. A session lives in a worker
 * process (src/runtime/worker.c), never in the server: ONNX Runtime is not
 * crash-safe against malformed models (RELIABILITY.md MODEL-1).
 *
 * Devices: "cpu" (ORT's CPU provider, intra-op threads as given) or
 * "cuda:N" (ORT's CUDA provider). A replica's compute share on a GPU is
 * enforced either outside the session, by the MPS environment its worker is
 * started with, or inside it: sm_percentage gives the session a CUDA green
 * context of that share of the SMs, whose stream the CUDA provider runs on
 * (greenctx.c; never run on a GPU yet).
 */
#ifndef BE_H
#define BE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "usher/status.h"

typedef struct be_options {
    const char *device;      /* "cpu" (default) or "cuda:N" */
    int intra_threads;       /* ORT intra-op threads; 0: ORT's default */
    int inter_threads;       /* 0: ORT's default */
    int optimization;        /* 0 none, 1 basic, 2 extended, 3 all (default 3) */
    const char *ort_library; /* path of libonnxruntime.so; NULL: $USHER_ORT_LIB, then the
                                copy scripts/deps.sh unpacks (built-in path), then the
                                system's library search */
    uint64_t max_output_bytes; /* per run, all outputs together; default 256 MiB */
    int sm_percentage;       /* cuda only: 1..99 runs in an SM partition of that share
                                (a green context); 0 or 100: the whole device */
    bool keep_denormals;     /* false (default): subnormal floats are flushed to zero on the
                                CPU, as inputs and results (ort.c: why) */
} be_options;

be_options be_default_options(void);

typedef struct be_io {
    char name[US_TENSOR_NAME_MAX];
    us_dtype dtype;
    us_shape shape; /* declared: -1 for a dynamic dim */
} be_io;

typedef struct be_session be_session;

/*
 * Load the ONNX Runtime library (once per process) and create a session for
 * the model. Errors name the model and say what failed: USHER_ERR_NOT_FOUND
 * (no ORT library: the message says where it looked; no model file),
 * USHER_ERR_UNSUPPORTED (an input or output type usher does not carry, an
 * unknown device), USHER_ERR_INVALID (ORT refused the model; its message is
 * included), USHER_ERR_NOMEM.
 */
int be_open(const char *model_path, const be_options *o, be_session **out, usher_error *err);
void be_close(be_session *s); /* NULL is fine */

size_t be_n_inputs(const be_session *s);
size_t be_n_outputs(const be_session *s);
const be_io *be_input(const be_session *s, size_t i);  /* NULL past the end */
const be_io *be_output(const be_session *s, size_t i);

/*
 * Run once. in[i] is the model's i-th input (be_input order) with a
 * concrete shape matching its declaration. out must have room for
 * be_n_outputs() tensors: each gets its name, dtype, shape, and data
 * allocated with us_malloc (free with be_outputs_free). On failure nothing
 * is left allocated in out. USHER_ERR_INVALID (shapes or types ORT refuses,
 * message included), USHER_ERR_LIMIT (outputs over max_output_bytes),
 * USHER_ERR_INTERNAL (ORT failed while running), USHER_ERR_NOMEM.
 */
int be_run(be_session *s, const us_tensor *in, size_t n_in, us_tensor *out, usher_error *err);
void be_outputs_free(us_tensor *out, size_t n);

/* Where the ORT library was found and its version ("1.29.0"), or NULL before be_open. */
const char *be_ort_version(void);

#endif
