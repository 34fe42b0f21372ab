/* tensor.c - tensor descriptors: datatypes, checked sizes (layer 1). */
#include "core/tensor.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[US_DT_COUNT] = {
    [US_DT_INVALID] = {"INVALID", 0}, [US_DT_BOOL] = {"BOOL", 1},
    [US_DT_UINT8] = {"UINT8", 1},     [US_DT_UINT16] = {"UINT16", 2},
    [US_DT_UINT32] = {"UINT32", 4},   [US_DT_UINT64] = {"UINT64", 8},
    [US_DT_INT8] = {"INT8", 1},       [US_DT_INT16] = {"INT16", 2},
    [US_DT_INT32] = {"INT32", 4},     [US_DT_INT64] = {"INT64", 8},
    [US_DT_FP16] = {"FP16", 2},       [US_DT_FP32] = {"FP32", 4},
    [US_DT_FP64] = {"FP64", 8},       [US_DT_BF16] = {"BF16", 2},
    [US_DT_BYTES] = {"BYTES", 0},
};

const char *us_dtype_name(us_dtype t)
{
    return t > US_DT_INVALID && t < US_DT_COUNT ? dtypes[t].name : "INVALID";
}

us_dtype us_dtype_parse(const char *name, size_t len)
{
    for (int t = US_DT_INVALID + 1; t < US_DT_COUNT; t++)
        if (strlen(dtypes[t].name) == len && memcmp(dtypes[t].name, name, len) == 0)
            return (us_dtype)t;
    return US_DT_INVALID;
}

size_t us_dtype_size(us_dtype t) { return t > US_DT_INVALID && t < US_DT_COUNT ? dtypes[t].size : 0; }

int us_shape_elements(const us_shape *s, const char *what, uint64_t *out, usher_error *err)
{
    if (s->rank < 0 || s->rank > US_TENSOR_MAX_RANK)
        return us_err_set(err, USHER_ERR_INVALID, "%s: rank %d, at most %d", what, s->rank,
                          US_TENSOR_MAX_RANK);
    uint64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dim[i] < 0)
            return us_err_set(err, USHER_ERR_INVALID, "%s: dim %d is %lld, not a size", what, i,
                              (long long)s->dim[i]);
        if (__builtin_mul_overflow(n, (uint64_t)s->dim[i], &n) || n > (uint64_t)INT64_MAX)
            return us_err_set(err, USHER_ERR_LIMIT, "%s: shape has more than 2^63 elements",
                              what);
    }
    *out = n;
    return USHER_OK;
}

int us_tensor_nbytes(us_dtype t, const us_shape *s, const char *what, uint64_t *out,
                     usher_error *err)
{
    size_t es = us_dtype_size(t);
    if (es == 0)
        return us_err_set(err, USHER_ERR_INVALID, "%s: datatype %s has no fixed element size",
                          what, us_dtype_name(t));
    uint64_t n;
    int rc = us_shape_elements(s, what, &n, err);
    if (rc < 0)
        return rc;
    if (__builtin_mul_overflow(n, (uint64_t)es, &n) || n > (uint64_t)INT64_MAX)
        return us_err_set(err, USHER_ERR_LIMIT, "%s: more than 2^63 bytes", what);
    *out = n;
    return USHER_OK;
}

const char *us_shape_str(const us_shape *s, char *buf, size_t n)
{
    size_t o = 0;
    if (n == 0)
        return buf;
    buf[0] = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int i = 0; i < s->rank && i < US_TENSOR_MAX_RANK && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? "," : "", (long long)s->dim[i]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
    return buf;
}

bool us_shape_matches(const us_shape *declared, const us_shape *actual)
{
    if (declared->rank != actual->rank)
        return false;
    for (int i = 0; i < declared->rank; i++)
        if (declared->dim[i] >= 0 && declared->dim[i] != actual->dim[i])
            return false;
    return true;
}

int us_bytes_check(const uint8_t *data, uint64_t n, uint64_t elements, const char *what,
                   usher_error *err)
{
    uint64_t off = 0;
    for (uint64_t e = 0; e < elements; e++) {
        if (n - off < 4)
            return us_err_set(err, USHER_ERR_INVALID,
                              "%s: BYTES element %llu: its 4-byte length runs past the data",
                              what, (unsigned long long)e);
        uint32_t len = (uint32_t)data[off] | (uint32_t)data[off + 1] << 8 |
                       (uint32_t)data[off + 2] << 16 | (uint32_t)data[off + 3] << 24;
        off += 4;
        if (len > n - off)
            return us_err_set(err, USHER_ERR_INVALID,
                              "%s: BYTES element %llu: %u bytes run past the data", what,
                              (unsigned long long)e, len);
        off += len;
    }
    if (off != n)
        return us_err_set(err, USHER_ERR_INVALID,
                          "%s: %llu bytes left after %llu BYTES elements", what,
                          (unsigned long long)(n - off), (unsigned long long)elements);
    return USHER_OK;
}
