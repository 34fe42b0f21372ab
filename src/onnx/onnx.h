/*
 * onnx.h - ONNX files to IR models and back (layer 3).
 *
 * Reading: the file is mapped, walked and re-encoded by onnx_wire.c into a
 * small skeleton, unpacked by the protobuf-c code that protoc-c generates
 * at build time from the system's onnx.proto, and converted to an
 * ir_model. Tensor bytes stay in the mapped file (or external data file)
 * and the model owns the mappings. Limits are checked before use; every
 * rejection names the field.
 *
 * Writing: the IR is turned back into protobuf-c structures whose byte
 * fields point at the IR's tensor data (no copy) and packed straight into
 * the output file through a temporary file that replaces the target only
 * when complete. Weights can go to an external data file beside it.
 */
#ifndef ONNX_H
#define ONNX_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"
#include "usher/status.h"

typedef struct onnx_load_params {
    uint64_t max_file_bytes;     /* the .onnx file itself */
    uint64_t max_external_bytes; /* all external data read, summed */
    uint64_t max_expansion;      /* memory for repeated scalar fields once unpacked */
    uint32_t max_tensors;        /* tensors anywhere in the model */
    uint32_t max_nodes;          /* nodes anywhere in the model */
    bool graph_only;             /* accept constants without data; open no external file */
} onnx_load_params;

onnx_load_params onnx_load_default_params(void);

/* On failure *out is NULL, err says why and nothing stays allocated. */
int onnx_load_file(const char *path, const onnx_load_params *p, ir_model **out,
                   usher_error *err);
/* From memory (copied); external data is refused unless graph_only. */
int onnx_load_memory(const void *data, size_t len, const char *label, const onnx_load_params *p,
                     ir_model **out, usher_error *err);

typedef struct onnx_save_params {
    const char *external_data;   /* NULL: weights inline; else a file name beside the model */
    uint64_t external_min_bytes; /* tensors at least this big go external (default 1024) */
} onnx_save_params;

onnx_save_params onnx_save_default_params(void);

/* Write m to path. On failure path is untouched and no temp file is left. */
int onnx_save_file(ir_model *m, const char *path, const onnx_save_params *p, usher_error *err);

#endif
