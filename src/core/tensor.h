/*
 * tensor.h - tensor descriptors shared by the protocol, the runtime and the
 * backends (layer 1, prefix us_).
 *
 * Data types carry the names of the KServe v2 / Open Inference Protocol
 * ("FP32", "INT64", "BYTES", ...). Every element or byte count is computed
 * in 64 bits with overflow checks: a shape such as [16, 2^60 + 2] is an
 * error, never a wrapped size (the class of bug behind Triton's
 * shape x dtype overflows).
 *
 * BYTES tensors use the protocol's binary layout: each element is a 4-byte
 * little-endian length followed by that many bytes; `bytes` is the total.
 */
#ifndef US_TENSOR_H
#define US_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usher/status.h"

#define US_TENSOR_MAX_RANK 16
#define US_TENSOR_NAME_MAX 128 /* bytes with the terminator */

typedef enum us_dtype {
    US_DT_INVALID = 0,
    US_DT_BOOL,
    US_DT_UINT8,
    US_DT_UINT16,
    US_DT_UINT32,
    US_DT_UINT64,
    US_DT_INT8,
    US_DT_INT16,
    US_DT_INT32,
    US_DT_INT64,
    US_DT_FP16,
    US_DT_FP32,
    US_DT_FP64,
    US_DT_BF16,
    US_DT_BYTES,
    US_DT_COUNT
} us_dtype;

/* "FP32"; "INVALID" for anything else */
const char *us_dtype_name(us_dtype t);
/* the protocol name (exact, upper case) to a type; US_DT_INVALID if unknown */
us_dtype us_dtype_parse(const char *name, size_t len);
/* bytes of one element; 0 for BYTES (variable) and INVALID */
size_t us_dtype_size(us_dtype t);

typedef struct us_shape {
    int rank;                          /* 0 .. US_TENSOR_MAX_RANK */
    int64_t dim[US_TENSOR_MAX_RANK];   /* >= 0 for a concrete shape; -1 marks a dynamic
                                          dim in a model's declared shape */
} us_shape;

/*
 * Product of the dims. USHER_ERR_INVALID for a negative dim or a rank out of
 * range, USHER_ERR_LIMIT if the product does not fit 63 bits. err may be NULL;
 * `what` names the tensor in the message ("input 'x'").
 */
int us_shape_elements(const us_shape *s, const char *what, uint64_t *out, usher_error *err);
/* elements x element size for fixed-size types, same errors; BYTES is USHER_ERR_INVALID */
int us_tensor_nbytes(us_dtype t, const us_shape *s, const char *what, uint64_t *out,
                     usher_error *err);
/* "[1,3,224,224]" into buf (always terminated) */
const char *us_shape_str(const us_shape *s, char *buf, size_t n);
/* does a concrete shape match a declared one (-1 matches any size)? */
bool us_shape_matches(const us_shape *declared, const us_shape *actual);

/*
 * BYTES layout check: data[0..n) is a sequence of (u32 little-endian length,
 * bytes); the number of elements must be `elements` and nothing may be left
 * over or run past the end. USHER_ERR_INVALID with a message naming `what`.
 */
int us_bytes_check(const uint8_t *data, uint64_t n, uint64_t elements, const char *what,
                   usher_error *err);

/* A tensor: a descriptor and its bytes. Who owns `data` is the holder's rule. */
typedef struct us_tensor {
    char name[US_TENSOR_NAME_MAX];
    us_dtype dtype;
    us_shape shape;
    void *data;
    uint64_t bytes;
} us_tensor;

#endif
