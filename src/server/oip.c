/*
 * oip.c - KServe v2 / Open Inference Protocol request and response bodies
 * (layer 8; the contract is in oip.h).
 *
 * Parsing a request goes in three phases, so that nothing is allocated
 * before the whole request is known to be consistent:
 *   1. the JSON (src/core/json.c: strict RFC 8259, depth-limited, no
 *      duplicate keys) and every field of every input and output: names,
 *      datatypes, shapes (rank <= 16, integer dims in [0, 2^63), element
 *      count with overflow checks), where the data is (JSON "data" or
 *      "parameters.binary_data_size", exactly one), the JSON element count
 *      against the shape, and the per-tensor element and byte limits;
 *   2. the binary framing (Triton's extension, RELIABILITY.md PROTO-6):
 *      the sizes of the inputs that have one, in input order, add up to
 *      exactly the bytes after the JSON;
 *   3. decoding: each input into a buffer of its own, every JSON value
 *      checked against its datatype's range, BYTES laid out as u32 length
 *      + bytes, binary BYTES checked with us_bytes_check and binary BOOL
 *      bytes checked to be 0 or 1.
 * A shape that cannot be true (its element or byte count overflows, or it
 * disagrees with the data) is malformed: USHER_ERR_PARSE, even when a
 * limit would also refuse it, and so is JSON nested deeper than the depth
 * limit (json.h). USHER_ERR_LIMIT is kept for a consistent request that is
 * too big (body, elements, bytes, inputs, outputs).
 *
 * Decisions, where the protocol leaves room:
 *   - unknown top-level keys ("model_name", "sequence_id", ...), unknown
 *     keys in an input or output, and unknown "parameters" are ignored, as
 *     Triton does, but they must be valid JSON (the reader checks it all);
 *   - shared memory ("shared_memory_region") and classification outputs
 *     are refused with USHER_ERR_UNSUPPORTED rather than ignored, so a
 *     client never gets an answer to a question it did not ask;
 *   - names are 1..127 bytes of UTF-8 without control characters (they
 *     appear in messages and logs), unique among inputs and among outputs;
 *   - "data" may be flat or nested in any way (Triton flattens without
 *     checking the nesting); only the element count must match the shape;
 *     an integer datatype takes only integer literals (1.0 is refused);
 *   - FP32, FP16 and BF16 round to nearest even from the double and refuse
 *     what rounds to infinity (FP32: 3.40282347e38 is FLT_MAX, not an error);
 *     values below the smallest subnormal become (signed) zero;
 *   - an id is kept (and echoed by the caller's error body) as soon as it
 *     has been read, even when a later field fails: *out then holds no
 *     tensors but may hold the id (PROTO-5);
 *   - in a response, non-finite floats are written as null (JSON has no
 *     NaN; the binary form keeps them), FP32/FP16/BF16 with 9 significant
 *     digits and FP64 with 17 (each reads back to the same bits), and BYTES
 *     elements as JSON strings in which invalid UTF-8 becomes U+FFFD
 *     (us_json_strn; the binary form keeps the bytes as they are).
 * Numbers are formatted and read in the C locale (usher never calls
 * setlocale).
 */
#include "server/oip.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/json.h"

#define ERR_BODY_MAX 4096

oip_limits oip_default_limits(void)
{
    oip_limits l = {
        .max_body = (uint64_t)64 << 20,
        .max_depth = 100,
        .max_elements = (uint64_t)64 << 20,
        .max_tensor_bytes = (uint64_t)64 << 20,
        .max_total_bytes = (uint64_t)64 << 20,
    };
    return l;
}

/* what phase 1 learns about an input beyond its descriptor */
typedef struct in_meta {
    us_jsonr_val data;  /* the "data" array, US_JSONR_NONE when binary */
    bool binary;
    uint64_t bin_size;  /* parameters.binary_data_size */
    uint64_t bin_off;   /* where it starts in the binary part (phase 2) */
    uint64_t elements;  /* from the shape */
    uint64_t bytes;     /* decoded size (JSON data; fixed-size binary) */
} in_meta;

typedef struct pctx {
    const us_jsonr_doc *d;
    oip_limits lim;
    usher_error *err;
} pctx;

/* text from the request shown in a message: at most 32 bytes, printable ASCII */
static const char *shown(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap && i < 32; i++)
        buf[o++] = s[i] >= 0x20 && s[i] < 0x7F ? s[i] : '?';
    if (n > 32 && o + 4 < cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = 0;
    return buf;
}

/* A name field: a string of 1..127 bytes, no control characters. */
static int read_name(pctx *c, us_jsonr_val obj, const char *list, size_t idx, char *dst)
{
    us_jsonr_val v = us_jsonr_get(c->d, obj, "name");
    if (v == US_JSONR_NONE)
        return us_err_set(c->err, USHER_ERR_PARSE, "%s[%zu]: \"name\" is missing", list, idx);
    if (us_jsonr_type_of(c->d, v) != US_JSONR_STRING)
        return us_err_set(c->err, USHER_ERR_PARSE, "%s[%zu]: \"name\" must be a string, not %s",
                          list, idx, us_jsonr_type_name(us_jsonr_type_of(c->d, v)));
    size_t n = us_jsonr_str_copy(c->d, v, dst, US_TENSOR_NAME_MAX);
    if (n == 0)
        return us_err_set(c->err, USHER_ERR_PARSE, "%s[%zu]: \"name\" is empty", list, idx);
    if (n >= US_TENSOR_NAME_MAX) {
        dst[0] = 0;
        return us_err_set(c->err, USHER_ERR_PARSE, "%s[%zu]: \"name\" is %zu bytes, at most %d",
                          list, idx, n, US_TENSOR_NAME_MAX - 1);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)dst[i];
        if (ch < 0x20 || ch == 0x7F) {
            dst[0] = 0;
            return us_err_set(c->err, USHER_ERR_PARSE,
                              "%s[%zu]: \"name\" holds a control character (byte %zu)", list, idx,
                              i);
        }
    }
    return USHER_OK;
}

/* "parameters" of an input or output: absent, or an object */
static int read_params(pctx *c, us_jsonr_val obj, const char *what, us_jsonr_val *out)
{
    *out = us_jsonr_get(c->d, obj, "parameters");
    if (*out != US_JSONR_NONE && us_jsonr_type_of(c->d, *out) != US_JSONR_OBJECT)
        return us_err_set(c->err, USHER_ERR_PARSE, "%s: \"parameters\" must be an object, not %s",
                          what, us_jsonr_type_name(us_jsonr_type_of(c->d, *out)));
    if (*out != US_JSONR_NONE && us_jsonr_get(c->d, *out, "shared_memory_region") != US_JSONR_NONE)
        return us_err_set(c->err, USHER_ERR_UNSUPPORTED, "%s: shared memory is not supported",
                          what);
    return USHER_OK;
}

static int read_bool(pctx *c, us_jsonr_val v, const char *what, const char *field, bool *out)
{
    if (!us_jsonr_bool(c->d, v, out))
        return us_err_set(c->err, USHER_ERR_PARSE, "%s: %s must be true or false, not %s", what,
                          field, us_jsonr_type_name(us_jsonr_type_of(c->d, v)));
    return USHER_OK;
}

/* a non-negative integer that fits 64 bits */
static int read_u64(pctx *c, us_jsonr_val v, const char *what, const char *field, uint64_t *out)
{
    us_jsonr_num n;
    if (!us_jsonr_number(c->d, v, &n))
        return us_err_set(c->err, USHER_ERR_PARSE, "%s: %s must be a non-negative integer, not %s",
                          what, field, us_jsonr_type_name(us_jsonr_type_of(c->d, v)));
    if (!n.integer)
        return us_err_set(c->err, USHER_ERR_PARSE, "%s: %s is %.17g, not an integer", what, field,
                          n.d);
    if (!n.fits_u64)
        return us_err_set(c->err, USHER_ERR_PARSE,
                          n.negative ? "%s: %s is negative" : "%s: %s is more than 2^64-1", what,
                          field);
    *out = n.u;
    return USHER_OK;
}

static int read_shape(pctx *c, us_jsonr_val v, const char *what, us_shape *s, uint64_t *elements)
{
    us_jsonr_type t = us_jsonr_type_of(c->d, v);
    if (v == US_JSONR_NONE)
        return us_err_set(c->err, USHER_ERR_PARSE, "%s: \"shape\" is missing", what);
    if (t != US_JSONR_ARRAY)
        return us_err_set(c->err, USHER_ERR_PARSE,
                          "%s: \"shape\" must be an array of integers, not %s", what,
                          us_jsonr_type_name(t));
    size_t rank = us_jsonr_len(c->d, v);
    if (rank > US_TENSOR_MAX_RANK)
        return us_err_set(c->err, USHER_ERR_PARSE, "%s: shape has %zu dims, at most %d", what,
                          rank, US_TENSOR_MAX_RANK);
    s->rank = 0;
    bool zero = false;
    for (us_jsonr_val e = us_jsonr_first(c->d, v); e != US_JSONR_NONE; e = us_jsonr_next(c->d, e)) {
        int k = s->rank;
        us_jsonr_num n;
        if (!us_jsonr_number(c->d, e, &n))
            return us_err_set(c->err, USHER_ERR_PARSE, "%s: shape[%d] is %s, not an integer",
                              what, k, us_jsonr_type_name(us_jsonr_type_of(c->d, e)));
        if (!n.integer)
            return us_err_set(c->err, USHER_ERR_PARSE, "%s: shape[%d] is %.17g, not an integer",
                              what, k, n.d);
        if (n.fits_i64 && n.i < 0)
            return us_err_set(c->err, USHER_ERR_PARSE,
                              "%s: shape[%d] is %lld, a dim must be >= 0", what, k,
                              (long long)n.i);
        if (!n.fits_i64 && n.fits_u64)
            return us_err_set(c->err, USHER_ERR_PARSE, "%s: shape[%d] is %llu, more than 2^63-1",
                              what, k, (unsigned long long)n.u);
        if (!n.fits_i64)
            return us_err_set(c->err, USHER_ERR_PARSE,
                              "%s: shape[%d] is %.17g, beyond 64-bit integers", what, k, n.d);
        s->dim[k] = n.i;
        zero |= n.i == 0;
        s->rank++;
    }
    /* The product in dim order, as every consumer computes it (us_shape_elements): a
     * zero-size shape whose dims before the 0 overflow is refused too, or a tensor we
     * accept could not be sized downstream. */
    uint64_t e = 1;
    for (int k = 0; k < s->rank; k++) {
        if (__builtin_mul_overflow(e, (uint64_t)s->dim[k], &e) || e > (uint64_t)INT64_MAX) {
            char sh[400];
            us_shape_str(s, sh, sizeof sh);
            if (zero)
                return us_err_set(c->err, USHER_ERR_PARSE,
                                  "%s: shape %s overflows 2^63-1 before its 0 dim", what, sh);
            return us_err_set(c->err, USHER_ERR_PARSE,
                              "%s: shape %s has more than 2^63-1 elements", what, sh);
        }
    }
    *elements = e;
    return USHER_OK;
}

/* Count the JSON data's elements and their decoded bytes; check the BYTES element types. */
static int measure_data(pctx *c, us_jsonr_val data, us_dtype dt, const char *what,
                        uint64_t *count, uint64_t *bytes)
{
    us_jsonr_flat it;
    us_jsonr_flat_init(&it, c->d, data);
    uint64_t n = 0, b = 0;
    us_jsonr_val v;
    while ((v = us_jsonr_flat_next(&it)) != US_JSONR_NONE) {
        if (dt == US_DT_BYTES) {
            if (us_jsonr_type_of(c->d, v) != US_JSONR_STRING)
                return us_err_set(c->err, USHER_ERR_PARSE,
                                  "%s: data[%llu] is %s, expected a string (BYTES)", what,
                                  (unsigned long long)n,
                                  us_jsonr_type_name(us_jsonr_type_of(c->d, v)));
            b += 4 + (uint64_t)us_jsonr_str_len(c->d, v); /* bounded by the body: no overflow */
        }
        n++;
    }
    *count = n;
    *bytes = dt == US_DT_BYTES ? b : n * us_dtype_size(dt);
    return USHER_OK;
}

static int read_input(pctx *c, us_jsonr_val obj, size_t idx, us_tensor *t, in_meta *m)
{
    memset(m, 0, sizeof *m);
    m->data = US_JSONR_NONE;
    if (us_jsonr_type_of(c->d, obj) != US_JSONR_OBJECT)
        return us_err_set(c->err, USHER_ERR_PARSE, "inputs[%zu] must be an object, not %s", idx,
                          us_jsonr_type_name(us_jsonr_type_of(c->d, obj)));
    int rc = read_name(c, obj, "inputs", idx, t->name);
    if (rc)
        return rc;
    char what[US_TENSOR_NAME_MAX + 16];
    snprintf(what, sizeof what, "input '%s'", t->name);

    us_jsonr_val dt = us_jsonr_get(c->d, obj, "datatype");
    if (dt == US_JSONR_NONE)
        return us_err_set(c->err, USHER_ERR_PARSE, "%s: \"datatype\" is missing", what);
    if (us_jsonr_type_of(c->d, dt) != US_JSONR_STRING)
        return us_err_set(c->err, USHER_ERR_PARSE, "%s: \"datatype\" must be a string, not %s",
                          what, us_jsonr_type_name(us_jsonr_type_of(c->d, dt)));
    char name[40], sh[48];
    size_t nl = us_jsonr_str_copy(c->d, dt, name, sizeof name);
    t->dtype = nl < sizeof name ? us_dtype_parse(name, nl) : US_DT_INVALID;
    if (t->dtype == US_DT_INVALID)
        return us_err_set(c->err, USHER_ERR_PARSE, "%s: unknown datatype \"%s\"", what,
                          shown(name, nl < sizeof name ? nl : sizeof name, sh, sizeof sh));

    rc = read_shape(c, us_jsonr_get(c->d, obj, "shape"), what, &t->shape, &m->elements);
    if (rc)
        return rc;

    us_jsonr_val params;
    rc = read_params(c, obj, what, &params);
    if (rc)
        return rc;
    us_jsonr_val bds = us_jsonr_get(c->d, params, "binary_data_size");
    if (bds != US_JSONR_NONE) {
        rc = read_u64(c, bds, what, "parameters.binary_data_size", &m->bin_size);
        if (rc)
            return rc;
        m->binary = true;
    }
    m->data = us_jsonr_get(c->d, obj, "data");
    if (m->data != US_JSONR_NONE && m->binary)
        return us_err_set(c->err, USHER_ERR_PARSE,
                          "%s: has both \"data\" and parameters.binary_data_size", what);
    if (m->data == US_JSONR_NONE && !m->binary)
        return us_err_set(c->err, USHER_ERR_PARSE,
                          "%s: has neither \"data\" nor parameters.binary_data_size", what);

    char shs[400];
    if (!m->binary) {
        if (us_jsonr_type_of(c->d, m->data) != US_JSONR_ARRAY)
            return us_err_set(c->err, USHER_ERR_PARSE, "%s: \"data\" must be an array, not %s",
                              what, us_jsonr_type_name(us_jsonr_type_of(c->d, m->data)));
        uint64_t count = 0;
        rc = measure_data(c, m->data, t->dtype, what, &count, &m->bytes);
        if (rc)
            return rc;
        if (count != m->elements)
            return us_err_set(c->err, USHER_ERR_PARSE,
                              "%s: shape %s has %llu elements, \"data\" has %llu", what,
                              us_shape_str(&t->shape, shs, sizeof shs),
                              (unsigned long long)m->elements, (unsigned long long)count);
    } else if (t->dtype != US_DT_BYTES) {
        uint64_t need;
        if (__builtin_mul_overflow(m->elements, (uint64_t)us_dtype_size(t->dtype), &need) ||
            need > (uint64_t)INT64_MAX)
            return us_err_set(c->err, USHER_ERR_PARSE,
                              "%s: shape %s of %s is more than 2^63-1 bytes", what,
                              us_shape_str(&t->shape, shs, sizeof shs), us_dtype_name(t->dtype));
        if (need != m->bin_size)
            return us_err_set(c->err, USHER_ERR_PARSE,
                              "%s: binary_data_size is %llu, shape %s of %s needs %llu bytes",
                              what, (unsigned long long)m->bin_size,
                              us_shape_str(&t->shape, shs, sizeof shs), us_dtype_name(t->dtype),
                              (unsigned long long)need);
        m->bytes = need;
    } else {
        m->bytes = m->bin_size; /* its layout is checked once the framing is (phase 3) */
    }
    if (m->elements > c->lim.max_elements)
        return us_err_set(c->err, USHER_ERR_LIMIT, "%s: %llu elements, more than the limit of %llu",
                          what, (unsigned long long)m->elements,
                          (unsigned long long)c->lim.max_elements);
    if (m->bytes > c->lim.max_tensor_bytes)
        return us_err_set(c->err, USHER_ERR_LIMIT, "%s: %llu bytes, more than the limit of %llu",
                          what, (unsigned long long)m->bytes,
                          (unsigned long long)c->lim.max_tensor_bytes);
    return USHER_OK;
}

static int read_output(pctx *c, us_jsonr_val obj, size_t idx, oip_output_req *o)
{
    memset(o, 0, sizeof *o);
    if (us_jsonr_type_of(c->d, obj) != US_JSONR_OBJECT)
        return us_err_set(c->err, USHER_ERR_PARSE, "outputs[%zu] must be an object, not %s", idx,
                          us_jsonr_type_name(us_jsonr_type_of(c->d, obj)));
    int rc = read_name(c, obj, "outputs", idx, o->name);
    if (rc)
        return rc;
    char what[US_TENSOR_NAME_MAX + 16];
    snprintf(what, sizeof what, "output '%.*s'", US_TENSOR_NAME_MAX - 1, o->name);
    us_jsonr_val params;
    rc = read_params(c, obj, what, &params);
    if (rc)
        return rc;
    if (us_jsonr_get(c->d, params, "classification") != US_JSONR_NONE)
        return us_err_set(c->err, USHER_ERR_UNSUPPORTED, "%s: classification is not supported",
                          what);
    us_jsonr_val b = us_jsonr_get(c->d, params, "binary_data");
    if (b != US_JSONR_NONE) {
        rc = read_bool(c, b, what, "parameters.binary_data", &o->binary);
        if (rc)
            return rc;
        o->has_binary = true;
    }
    return USHER_OK;
}

/* ---- values ----------------------------------------------------------------- */

/*
 * x rounded to nearest even into a binary float of ebits exponent and
 * mbits mantissa bits (FP16: 5, 10; BF16: 8, 7). False when it rounds to
 * infinity. Computed from the double directly: going through float would
 * round twice.
 */
static bool narrow(double x, int ebits, int mbits, uint16_t *out)
{
    uint16_t sign = signbit(x) ? (uint16_t)(1u << (ebits + mbits)) : 0;
    double a = fabs(x);
    if (a == 0) {
        *out = sign;
        return true;
    }
    int bias = (1 << (ebits - 1)) - 1, emin = 1 - bias, e;
    (void)frexp(a, &e); /* a in [2^(e-1), 2^e) */
    int ue = e - 1;
    int ulp = (ue < emin ? emin : ue) - mbits; /* weight of the last mantissa bit */
    double s = ldexp(a, -ulp);                 /* exact: only the exponent moves */
    double fl = floor(s), rem = s - fl;
    uint32_t q = (uint32_t)fl;
    if (rem > 0.5 || (rem == 0.5 && (q & 1)))
        q++;
    if (ue < emin) { /* subnormal; q == 2^mbits is the smallest normal, encoded alike */
        *out = (uint16_t)(sign | q);
        return true;
    }
    if (q == (1u << (mbits + 1))) {
        q >>= 1;
        ue++;
    }
    if (ue > bias)
        return false;
    *out = (uint16_t)(sign | (uint32_t)(ue + bias) << mbits | (q - (1u << mbits)));
    return true;
}

static double half_to_double(uint16_t h)
{
    int e = h >> 10 & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
    return h & 0x8000 ? -v : v;
}

static double bf16_to_double(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static const struct {
    int64_t min;
    uint64_t max;
} int_range[US_DT_COUNT] = {
    [US_DT_UINT8] = {0, UINT8_MAX},       [US_DT_UINT16] = {0, UINT16_MAX},
    [US_DT_UINT32] = {0, UINT32_MAX},     [US_DT_UINT64] = {0, UINT64_MAX},
    [US_DT_INT8] = {INT8_MIN, INT8_MAX},  [US_DT_INT16] = {INT16_MIN, INT16_MAX},
    [US_DT_INT32] = {INT32_MIN, INT32_MAX}, [US_DT_INT64] = {INT64_MIN, INT64_MAX},
};

static bool is_unsigned(us_dtype t)
{
    return t == US_DT_UINT8 || t == US_DT_UINT16 || t == US_DT_UINT32 || t == US_DT_UINT64;
}

/* the number as written, for a message */
static const char *num_str(const us_jsonr_num *n, char *buf, size_t cap)
{
    if (n->fits_i64)
        snprintf(buf, cap, "%lld", (long long)n->i);
    else if (n->fits_u64)
        snprintf(buf, cap, "%llu", (unsigned long long)n->u);
    else
        snprintf(buf, cap, "%.17g", n->d);
    return buf;
}

/* one JSON element of a fixed-size type into dst */
static int put_value(pctx *c, us_jsonr_val v, us_dtype dt, uint8_t *dst, uint64_t i,
                     const char *what)
{
    us_jsonr_type t = us_jsonr_type_of(c->d, v);
    if (dt == US_DT_BOOL) {
        bool b;
        if (!us_jsonr_bool(c->d, v, &b))
            return us_err_set(c->err, USHER_ERR_PARSE,
                              "%s: data[%llu] is %s, expected true or false (BOOL)", what,
                              (unsigned long long)i, us_jsonr_type_name(t));
        *dst = b;
        return USHER_OK;
    }
    us_jsonr_num n;
    if (!us_jsonr_number(c->d, v, &n))
        return us_err_set(c->err, USHER_ERR_PARSE, "%s: data[%llu] is %s, expected a number (%s)",
                          what, (unsigned long long)i, us_jsonr_type_name(t), us_dtype_name(dt));
    char ns[40];
    switch (dt) {
    case US_DT_FP64:
        memcpy(dst, &n.d, 8);
        return USHER_OK;
    case US_DT_FP32: {
        /* refused from the midpoint between FLT_MAX and 2^128 on (it rounds to infinity);
         * below it the value rounds to FLT_MAX, which the writer prints as 3.40282347e+38 */
        if (fabs(n.d) >= 0x1.ffffffp+127)
            break;
        float f = (float)n.d;
        memcpy(dst, &f, 4);
        return USHER_OK;
    }
    case US_DT_FP16:
    case US_DT_BF16: {
        uint16_t h;
        if (!narrow(n.d, dt == US_DT_FP16 ? 5 : 8, dt == US_DT_FP16 ? 10 : 7, &h))
            break;
        memcpy(dst, &h, 2);
        return USHER_OK;
    }
    default: {
        if (!n.integer)
            return us_err_set(c->err, USHER_ERR_PARSE, "%s: data[%llu] is %.17g, not an integer (%s)",
                              what, (unsigned long long)i, n.d, us_dtype_name(dt));
        bool ok = is_unsigned(dt) ? n.fits_u64 && n.u <= int_range[dt].max
                                  : n.fits_i64 && n.i >= int_range[dt].min &&
                                        n.i <= (int64_t)int_range[dt].max;
        if (!ok)
            return us_err_set(c->err, USHER_ERR_PARSE,
                              "%s: data[%llu] is %s, out of range for %s [%lld, %llu]", what,
                              (unsigned long long)i, num_str(&n, ns, sizeof ns), us_dtype_name(dt),
                              (long long)int_range[dt].min, (unsigned long long)int_range[dt].max);
        size_t sz = us_dtype_size(dt);
        if (is_unsigned(dt)) {
            uint64_t u = n.u;
            memcpy(dst, &u, sz); /* little-endian host: the low bytes come first */
        } else {
            int64_t s = n.i;
            memcpy(dst, &s, sz);
        }
        return USHER_OK;
    }
    }
    return us_err_set(c->err, USHER_ERR_PARSE, "%s: data[%llu] is %s, out of range for %s", what,
                      (unsigned long long)i, num_str(&n, ns, sizeof ns), us_dtype_name(dt));
}

static int decode_input(pctx *c, us_tensor *t, const in_meta *m, const uint8_t *tail)
{
    char what[US_TENSOR_NAME_MAX + 16];
    snprintf(what, sizeof what, "input '%s'", t->name);
    if (m->binary && t->dtype == US_DT_BYTES) {
        usher_error e;
        if (us_bytes_check(tail + m->bin_off, m->bin_size, m->elements, what, &e) < 0)
            return us_err_set(c->err, USHER_ERR_PARSE, "%s", e.msg);
    }
    /* at least one byte, so an empty tensor still has a pointer of its own */
    uint8_t *buf = us_malloc(m->bytes ? (size_t)m->bytes : 1);
    if (!buf)
        return us_err_set(c->err, USHER_ERR_NOMEM, "%s: out of memory for %llu bytes", what,
                          (unsigned long long)m->bytes);
    t->data = buf;
    t->bytes = m->bytes;
    if (m->binary) {
        if (m->bytes)
            memcpy(buf, tail + m->bin_off, (size_t)m->bytes);
        if (t->dtype == US_DT_BOOL)
            for (uint64_t i = 0; i < m->bytes; i++)
                if (buf[i] > 1)
                    return us_err_set(c->err, USHER_ERR_PARSE,
                                      "%s: BOOL element %llu is %u, not 0 or 1", what,
                                      (unsigned long long)i, buf[i]);
        return USHER_OK;
    }
    us_jsonr_flat it;
    us_jsonr_flat_init(&it, c->d, m->data);
    us_jsonr_val v;
    uint64_t i = 0, o = 0;
    size_t es = us_dtype_size(t->dtype);
    while ((v = us_jsonr_flat_next(&it)) != US_JSONR_NONE) {
        if (t->dtype == US_DT_BYTES) {
            size_t n = us_jsonr_str_len(c->d, v);
            uint32_t n32 = (uint32_t)n; /* n < 2^30: the body is */
            memcpy(buf + o, &n32, 4);
            us_jsonr_str_copy(c->d, v, (char *)buf + o + 4, n);
            o += 4 + n;
        } else {
            int rc = put_value(c, v, t->dtype, buf + o, i, what);
            if (rc)
                return rc;
            o += es;
        }
        i++;
    }
    return USHER_OK;
}

/* ---- the request -------------------------------------------------------------- */

void oip_request_free(oip_request *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_in; i++) {
        us_free(r->in[i].data);
        r->in[i].data = NULL;
    }
    r->n_in = 0;
}

static int read_request(pctx *c, const uint8_t *body, size_t len, uint64_t header_len,
                        oip_request *out)
{
    const us_jsonr_doc *d = c->d;
    us_jsonr_val root = us_jsonr_root(d);
    if (us_jsonr_type_of(d, root) != US_JSONR_OBJECT)
        return us_err_set(c->err, USHER_ERR_PARSE, "the request must be a JSON object, not %s",
                          us_jsonr_type_name(us_jsonr_type_of(d, root)));
    /* the id first, so that every later error can echo it */
    us_jsonr_val v = us_jsonr_get(d, root, "id");
    if (v != US_JSONR_NONE) {
        if (us_jsonr_type_of(d, v) != US_JSONR_STRING)
            return us_err_set(c->err, USHER_ERR_PARSE, "\"id\" must be a string, not %s",
                              us_jsonr_type_name(us_jsonr_type_of(d, v)));
        char id[OIP_ID_MAX];
        size_t n = us_jsonr_str_copy(d, v, id, sizeof id);
        if (n >= OIP_ID_MAX)
            return us_err_set(c->err, USHER_ERR_PARSE, "\"id\" is %zu bytes, at most %d", n,
                              OIP_ID_MAX - 1);
        if (memchr(id, 0, n))
            return us_err_set(c->err, USHER_ERR_PARSE, "\"id\" holds a NUL character");
        memcpy(out->id, id, n + 1);
        out->has_id = true;
    }
    us_jsonr_val params = us_jsonr_get(d, root, "parameters");
    if (params != US_JSONR_NONE) {
        if (us_jsonr_type_of(d, params) != US_JSONR_OBJECT)
            return us_err_set(c->err, USHER_ERR_PARSE, "\"parameters\" must be an object, not %s",
                              us_jsonr_type_name(us_jsonr_type_of(d, params)));
        v = us_jsonr_get(d, params, "timeout");
        if (v != US_JSONR_NONE) {
            int rc = read_u64(c, v, "request", "parameters.timeout (microseconds)",
                              &out->timeout_us);
            if (rc)
                return rc;
            out->has_timeout = true;
        }
        v = us_jsonr_get(d, params, "binary_data_output");
        if (v != US_JSONR_NONE) {
            int rc = read_bool(c, v, "request", "parameters.binary_data_output",
                               &out->binary_output);
            if (rc)
                return rc;
        }
    }

    us_jsonr_val inputs = us_jsonr_get(d, root, "inputs");
    if (inputs == US_JSONR_NONE)
        return us_err_set(c->err, USHER_ERR_PARSE, "\"inputs\" is missing");
    if (us_jsonr_type_of(d, inputs) != US_JSONR_ARRAY)
        return us_err_set(c->err, USHER_ERR_PARSE, "\"inputs\" must be an array, not %s",
                          us_jsonr_type_name(us_jsonr_type_of(d, inputs)));
    size_t n_in = us_jsonr_len(d, inputs);
    if (n_in > OIP_MAX_TENSORS)
        return us_err_set(c->err, USHER_ERR_LIMIT, "%zu inputs, at most %d", n_in,
                          OIP_MAX_TENSORS);
    in_meta meta[OIP_MAX_TENSORS];
    size_t i = 0;
    uint64_t total = 0;
    for (us_jsonr_val e = us_jsonr_first(d, inputs); e != US_JSONR_NONE;
         e = us_jsonr_next(d, e), i++) {
        us_tensor *t = &out->in[i];
        int rc = read_input(c, e, i, t, &meta[i]);
        if (rc)
            return rc;
        if (__builtin_add_overflow(total, meta[i].bytes, &total) ||
            total > c->lim.max_total_bytes)
            return us_err_set(c->err, USHER_ERR_LIMIT,
                              "inputs[0..%zu] decode to %llu bytes, more than the limit of %llu",
                              i, (unsigned long long)total,
                              (unsigned long long)c->lim.max_total_bytes);
        for (size_t k = 0; k < i; k++)
            if (strcmp(out->in[k].name, t->name) == 0)
                return us_err_set(c->err, USHER_ERR_PARSE,
                                  "inputs[%zu]: input '%s' appears twice (also inputs[%zu])", i,
                                  t->name, k);
    }

    us_jsonr_val outputs = us_jsonr_get(d, root, "outputs");
    oip_output_req outs[OIP_MAX_TENSORS];
    size_t n_out = 0;
    if (outputs != US_JSONR_NONE) {
        if (us_jsonr_type_of(d, outputs) != US_JSONR_ARRAY)
            return us_err_set(c->err, USHER_ERR_PARSE, "\"outputs\" must be an array, not %s",
                              us_jsonr_type_name(us_jsonr_type_of(d, outputs)));
        n_out = us_jsonr_len(d, outputs);
        if (n_out > OIP_MAX_TENSORS)
            return us_err_set(c->err, USHER_ERR_LIMIT, "%zu outputs, at most %d", n_out,
                              OIP_MAX_TENSORS);
        i = 0;
        for (us_jsonr_val e = us_jsonr_first(d, outputs); e != US_JSONR_NONE;
             e = us_jsonr_next(d, e), i++) {
            int rc = read_output(c, e, i, &outs[i]);
            if (rc)
                return rc;
            for (size_t k = 0; k < i; k++)
                if (strcmp(outs[k].name, outs[i].name) == 0)
                    return us_err_set(c->err, USHER_ERR_PARSE,
                                      "outputs[%zu]: output '%s' appears twice (also outputs[%zu])",
                                      i, outs[i].name, k);
        }
    }

    /* phase 2: the binary part is exactly the inputs' binary data, in input order */
    uint64_t tail = header_len ? len - header_len : 0, sum = 0;
    for (i = 0; i < n_in; i++) {
        if (!meta[i].binary)
            continue;
        if (!header_len)
            return us_err_set(c->err, USHER_ERR_PARSE,
                              "input '%s': binary_data_size needs the binary extension "
                              "(Inference-Header-Content-Length is missing)",
                              out->in[i].name);
        meta[i].bin_off = sum;
        if (__builtin_add_overflow(sum, meta[i].bin_size, &sum))
            return us_err_set(c->err, USHER_ERR_PARSE,
                              "the inputs' binary_data_size values add up to more than 2^64-1");
    }
    if (sum != tail)
        return us_err_set(c->err, USHER_ERR_PARSE,
                          "the inputs' binary_data_size values add up to %llu bytes, but %llu "
                          "bytes follow the JSON header",
                          (unsigned long long)sum, (unsigned long long)tail);

    /* phase 3 */
    const uint8_t *bin = body + (header_len ? header_len : len);
    for (i = 0; i < n_in; i++) {
        out->n_in = i + 1; /* so that a failure frees what was decoded */
        int rc = decode_input(c, &out->in[i], &meta[i], bin);
        if (rc)
            return rc;
    }
    out->n_in = n_in;
    memcpy(out->out, outs, n_out * sizeof outs[0]);
    out->n_out = n_out;
    return USHER_OK;
}

int oip_parse_request(const uint8_t *body, size_t len, uint64_t header_len, const oip_limits *lim,
                      oip_request *out, usher_error *err)
{
    memset(out, 0, sizeof *out);
    pctx c = {.d = NULL, .lim = lim ? *lim : oip_default_limits(), .err = err};
    if (len > c.lim.max_body)
        return us_err_set(err, USHER_ERR_LIMIT,
                          "the request body is %zu bytes, more than the limit of %llu", len,
                          (unsigned long long)c.lim.max_body);
    if (header_len > len)
        return us_err_set(err, USHER_ERR_PARSE,
                          "Inference-Header-Content-Length %llu is out of range (the body has "
                          "%zu bytes)",
                          (unsigned long long)header_len, len);
    size_t jlen = header_len ? (size_t)header_len : len;
    us_jsonr_limits jl = {jlen, c.lim.max_depth};
    us_jsonr_doc *d = NULL;
    int rc = us_jsonr_parse((const char *)body, jlen, &jl, &d, NULL, err);
    if (rc)
        return us_err_prefix(err, rc, "request JSON: ");
    c.d = d;
    rc = read_request(&c, body, len, header_len, out);
    us_jsonr_free(d);
    if (rc) {
        oip_request_free(out);
        out->n_out = 0;
        return rc;
    }
    us_err_clear(err);
    return USHER_OK;
}

/* ---- the response ------------------------------------------------------------ */

static int check_output(const us_tensor *t, usher_error *err)
{
    char what[US_TENSOR_NAME_MAX + 16];
    snprintf(what, sizeof what, "output '%s'", t->name);
    uint64_t n;
    usher_error e;
    if (t->dtype <= US_DT_INVALID || t->dtype >= US_DT_COUNT)
        return us_err_set(err, USHER_ERR_INVALID, "%s: invalid datatype", what);
    if (us_shape_elements(&t->shape, what, &n, &e) < 0)
        return us_err_set(err, USHER_ERR_INVALID, "%s", e.msg);
    if (t->bytes && !t->data)
        return us_err_set(err, USHER_ERR_INVALID, "%s: %llu bytes but no data", what,
                          (unsigned long long)t->bytes);
    if (t->dtype == US_DT_BYTES) {
        if (us_bytes_check(t->data, t->bytes, n, what, &e) < 0)
            return us_err_set(err, USHER_ERR_INVALID, "%s", e.msg);
        return USHER_OK;
    }
    uint64_t need;
    if (us_tensor_nbytes(t->dtype, &t->shape, what, &need, &e) < 0)
        return us_err_set(err, USHER_ERR_INVALID, "%s", e.msg);
    if (need != t->bytes)
        return us_err_set(err, USHER_ERR_INVALID, "%s: %llu bytes, its shape needs %llu", what,
                          (unsigned long long)t->bytes, (unsigned long long)need);
    return USHER_OK;
}

static void put_float(us_buf *b, double v, int digits)
{
    if (!isfinite(v)) {
        us_buf_append(b, "null", 4);
        return;
    }
    char s[40];
    int n = snprintf(s, sizeof s, "%.*g", digits, v);
    us_buf_append(b, s, (size_t)n);
}

/* the elements, flat and row-major, comma-separated, into b */
static void put_data(us_buf *b, const us_tensor *t)
{
    const uint8_t *p = t->data;
    if (t->dtype == US_DT_BYTES) {
        uint64_t o = 0;
        for (bool first = true; o + 4 <= t->bytes; first = false) {
            uint32_t n;
            memcpy(&n, p + o, 4);
            if (!first)
                us_buf_putc(b, ',');
            us_json_escape(b, (const char *)p + o + 4, n);
            o += 4 + (uint64_t)n;
        }
        return;
    }
    size_t es = us_dtype_size(t->dtype);
    uint64_t n = t->bytes / es;
    char s[32];
    for (uint64_t i = 0; i < n && us_buf_ok(b); i++) {
        const uint8_t *q = p + i * es;
        if (i)
            us_buf_putc(b, ',');
        int k = 0;
        switch (t->dtype) {
        case US_DT_BOOL: us_buf_puts(b, *q ? "true" : "false"); break;
        case US_DT_UINT8: k = snprintf(s, sizeof s, "%u", (unsigned)*q); break;
        case US_DT_INT8: k = snprintf(s, sizeof s, "%d", (int)(int8_t)*q); break;
        case US_DT_UINT16: {
            uint16_t x;
            memcpy(&x, q, 2);
            k = snprintf(s, sizeof s, "%u", (unsigned)x);
            break;
        }
        case US_DT_INT16: {
            int16_t x;
            memcpy(&x, q, 2);
            k = snprintf(s, sizeof s, "%d", (int)x);
            break;
        }
        case US_DT_UINT32: {
            uint32_t x;
            memcpy(&x, q, 4);
            k = snprintf(s, sizeof s, "%lu", (unsigned long)x);
            break;
        }
        case US_DT_INT32: {
            int32_t x;
            memcpy(&x, q, 4);
            k = snprintf(s, sizeof s, "%ld", (long)x);
            break;
        }
        case US_DT_UINT64: {
            uint64_t x;
            memcpy(&x, q, 8);
            k = snprintf(s, sizeof s, "%llu", (unsigned long long)x);
            break;
        }
        case US_DT_INT64: {
            int64_t x;
            memcpy(&x, q, 8);
            k = snprintf(s, sizeof s, "%lld", (long long)x);
            break;
        }
        case US_DT_FP64: {
            double x;
            memcpy(&x, q, 8);
            put_float(b, x, 17);
            break;
        }
        case US_DT_FP32: {
            float x;
            memcpy(&x, q, 4);
            put_float(b, x, 9);
            break;
        }
        case US_DT_FP16:
        case US_DT_BF16: {
            uint16_t x;
            memcpy(&x, q, 2);
            put_float(b, t->dtype == US_DT_FP16 ? half_to_double(x) : bf16_to_double(x), 9);
            break;
        }
        default: break;
        }
        if (k > 0)
            us_buf_append(b, s, (size_t)k);
    }
}

static void put_output(us_json *j, us_buf *binary, const us_tensor *t, bool bin)
{
    us_json_obj_begin(j);
    us_json_key(j, "name");
    us_json_str(j, t->name);
    us_json_key(j, "datatype");
    us_json_str(j, us_dtype_name(t->dtype));
    us_json_key(j, "shape");
    us_json_arr_begin(j);
    for (int k = 0; k < t->shape.rank; k++)
        us_json_int(j, t->shape.dim[k]);
    us_json_arr_end(j);
    if (bin) {
        us_json_key(j, "parameters");
        us_json_obj_begin(j);
        us_json_key(j, "binary_data_size");
        us_json_uint(j, t->bytes);
        us_json_obj_end(j);
        if (t->bytes)
            us_buf_append(binary, t->data, (size_t)t->bytes);
    } else {
        us_json_key(j, "data");
        /* the elements go straight into the buffer: a us_json call each would
         * cost a formatted append per element and print floats with 15 digits */
        us_json_arr_begin(j);
        put_data(j->out, t);
        us_json_arr_end(j);
    }
    us_json_obj_end(j);
}

static const us_tensor *find_output(const us_tensor *out, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(out[i].name, name) == 0)
            return &out[i];
    return NULL;
}

int oip_write_response(const oip_request *req, const char *model, const char *version,
                       const us_tensor *out, size_t n, us_buf *json, us_buf *binary,
                       uint64_t *header_len, usher_error *err)
{
    *header_len = 0;
    size_t n_sel = req && req->n_out ? req->n_out : n;
    /* everything is checked before a byte is written */
    for (size_t i = 0; i < n_sel; i++) {
        const us_tensor *t = &out[i];
        if (req && req->n_out) {
            t = find_output(out, n, req->out[i].name);
            if (!t)
                return us_err_set(err, USHER_ERR_NOT_FOUND,
                                  "output '%s' was requested, but the model has no such output",
                                  req->out[i].name);
        }
        int rc = check_output(t, err);
        if (rc)
            return rc;
    }
    us_json j;
    us_json_init(&j, json);
    us_json_obj_begin(&j);
    us_json_key(&j, "model_name");
    us_json_str(&j, model ? model : "");
    if (version) {
        us_json_key(&j, "model_version");
        us_json_str(&j, version);
    }
    if (req && req->has_id) {
        us_json_key(&j, "id");
        us_json_str(&j, req->id);
    }
    us_json_key(&j, "outputs");
    us_json_arr_begin(&j);
    bool def = req && req->binary_output;
    for (size_t i = 0; i < n_sel && us_buf_ok(json) && us_buf_ok(binary); i++) {
        if (req && req->n_out) {
            const oip_output_req *o = &req->out[i];
            put_output(&j, binary, find_output(out, n, o->name), o->has_binary ? o->binary : def);
        } else {
            put_output(&j, binary, &out[i], def);
        }
    }
    us_json_arr_end(&j);
    us_json_obj_end(&j);
    if (json->oom || binary->oom)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory for the response");
    if (!us_buf_ok(json) || !us_buf_ok(binary) || j.bad)
        return us_err_set(err, USHER_ERR_LIMIT,
                          "the response is larger than its buffer (JSON cap %zu, binary cap %zu "
                          "bytes)",
                          json->max, binary->max);
    *header_len = json->len;
    us_err_clear(err);
    return USHER_OK;
}

/* ---- the error body ------------------------------------------------------------ */

/* bytes us_json_escape writes for s[0..n), quotes excluded */
static size_t escaped_len(const char *s, size_t n)
{
    size_t out = 0, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\n' || c == '\t' || c == '\r') {
            out += 2;
            i++;
        } else if (c < 0x20) {
            out += 6;
            i++;
        } else if (c < 0x80) {
            out++;
            i++;
        } else {
            /* a valid sequence is copied, any other byte becomes \ufffd (as us_json_escape does) */
            size_t l = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
            if (l <= n - i && us_jsonr_utf8_check((const uint8_t *)s + i, l) == l) {
                out += l;
                i += l;
            } else {
                out += 6;
                i++;
            }
        }
    }
    return out;
}

/* the longest prefix of s[0..n) that escapes to at most budget bytes, not
 * cutting a UTF-8 sequence */
static size_t cut_to(const char *s, size_t n, size_t budget)
{
    if (escaped_len(s, n) <= budget)
        return n;
    size_t lo = 0, hi = n; /* escaped_len(lo) fits, escaped_len(hi) does not */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (escaped_len(s, mid) <= budget)
            lo = mid;
        else
            hi = mid;
    }
    while (lo > 0 && ((unsigned char)s[lo] & 0xC0) == 0x80)
        lo--;
    return lo;
}

void oip_write_error(us_buf *b, const char *msg, const char *id)
{
    if (!msg)
        msg = "";
    /* {"error":"<msg>","id":"<id>"}: 12 bytes around the message, 8 around the id */
    size_t budget = ERR_BODY_MAX - 12, idn = 0;
    if (id) {
        /* an id is echoed whole: it is at most 255 bytes (a longer one is cut there) */
        idn = strlen(id);
        if (idn > OIP_ID_MAX - 1) {
            idn = OIP_ID_MAX - 1;
            while (idn > 0 && ((unsigned char)id[idn] & 0xC0) == 0x80)
                idn--;
        }
        budget -= 8 + escaped_len(id, idn);
    }
    size_t n = strlen(msg);
    char cut[ERR_BODY_MAX];
    const char *m = msg;
    if (escaped_len(msg, n) > budget) {
        size_t k = cut_to(msg, n, budget - 3);
        memcpy(cut, msg, k);
        memcpy(cut + k, "...", 3);
        m = cut;
        n = k + 3;
    }
    us_json j;
    us_json_init(&j, b);
    us_json_obj_begin(&j);
    us_json_key(&j, "error");
    us_json_strn(&j, m, n);
    if (id) {
        us_json_key(&j, "id");
        us_json_strn(&j, id, idn);
    }
    us_json_obj_end(&j);
}

/* ---- content codings (zlib) ------------------------------------------------------------- */
/* zlib allocates through the project's hook (counted, and failed on demand in tests) */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return us_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    us_free(p);
}

int oip_coding_parse(const char *v)
{
    if (!v)
        return OIP_IDENTITY;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n == 0 || (n == 8 && strncasecmp(v, "identity", 8) == 0))
        return OIP_IDENTITY;
    if ((n == 4 && strncasecmp(v, "gzip", 4) == 0) || (n == 6 && strncasecmp(v, "x-gzip", 6) == 0))
        return OIP_GZIP;
    if (n == 7 && strncasecmp(v, "deflate", 7) == 0)
        return OIP_DEFLATE;
    return -1;
}

/* inflate with these window bits (zlib's: 15 + 16 gzip, 15 zlib, -15 raw) */
static int inflate_with(int wbits, oip_coding c, const uint8_t *in, size_t len, uint64_t max_out,
                        uint8_t **out, size_t *out_len, usher_error *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = z_alloc;
    zs.zfree = z_free;
    if (inflateInit2(&zs, wbits) != Z_OK)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory (zlib)");
    /* one byte past the limit, so that a body of exactly max_out bytes is told from a
     * longer one */
    uint64_t hard = max_out + 1;
    size_t cap = len < (1u << 20) ? 4 * len + 4096 : 4 * (size_t)len;
    if (cap > hard)
        cap = (size_t)hard;
    uint8_t *buf = us_malloc(cap);
    int rc = USHER_OK;
    if (!buf) {
        rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t used = 0;
    zs.next_in = (Bytef *)(uintptr_t)in;
    size_t in_left = len;
    for (;;) {
        uInt chunk_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        zs.next_in = (Bytef *)(uintptr_t)(in + (len - in_left));
        zs.avail_in = chunk_in;
        if (used > max_out) {
            rc = us_err_set(err, USHER_ERR_LIMIT, "the decoded (%s) body is over the limit "
                            "of %llu bytes", c == OIP_GZIP ? "gzip" : "deflate",
                            (unsigned long long)max_out);
            goto done;
        }
        if (used == cap) {
            if (cap >= hard) {
                rc = us_err_set(err, USHER_ERR_LIMIT, "the decoded (%s) body is over the limit "
                                "of %llu bytes", c == OIP_GZIP ? "gzip" : "deflate",
                                (unsigned long long)max_out);
                goto done;
            }
            size_t nc = cap * 2 > hard ? (size_t)hard : cap * 2;
            uint8_t *nb = us_realloc(buf, nc);
            if (!nb) {
                rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory");
                goto done;
            }
            buf = nb;
            cap = nc;
        }
        size_t room = cap - used > (1u << 30) ? (1u << 30) : cap - used;
        zs.next_out = buf + used;
        zs.avail_out = (uInt)room;
        int z = inflate(&zs, Z_NO_FLUSH);
        used += room - zs.avail_out;
        in_left -= chunk_in - zs.avail_in;
        if (used > max_out)
            continue; /* refused at the top */
        if (z == Z_STREAM_END) {
            if (in_left && c == OIP_GZIP && in_left >= 2 && in[len - in_left] == 0x1f &&
                in[len - in_left + 1] == 0x8b) {
                inflateReset(&zs); /* another gzip member */
                continue;
            }
            if (in_left) {
                rc = us_err_set(err, USHER_ERR_PARSE, "%zu bytes after the end of the %s body",
                                in_left, c == OIP_GZIP ? "gzip" : "deflate");
                goto done;
            }
            break;
        }
        if (z == Z_MEM_ERROR) {
            rc = us_err_set(err, USHER_ERR_NOMEM, "out of memory (zlib)");
            goto done;
        }
        if (z != Z_OK && z != Z_BUF_ERROR) {
            rc = us_err_set(err, USHER_ERR_PARSE, "the %s body is corrupt (%s)",
                            c == OIP_GZIP ? "gzip" : "deflate", zs.msg ? zs.msg : "zlib error");
            goto done;
        }
        if (zs.avail_out != 0 && in_left == 0) {
            rc = us_err_set(err, USHER_ERR_PARSE, "the %s body is truncated",
                            c == OIP_GZIP ? "gzip" : "deflate");
            goto done;
        }
    }
    *out = buf;
    *out_len = used;
    buf = NULL;
done:
    us_free(buf);
    inflateEnd(&zs);
    return rc;
}

int oip_inflate(oip_coding c, const uint8_t *in, size_t len, uint64_t max_out, uint8_t **out,
                size_t *out_len, usher_error *err)
{
    *out = NULL;
    *out_len = 0;
    if (c != OIP_GZIP && c != OIP_DEFLATE)
        return us_err_set(err, USHER_ERR_INVALID, "oip_inflate: gzip or deflate");
    if (max_out > ((uint64_t)1 << 40))
        max_out = (uint64_t)1 << 40;
    if (c == OIP_GZIP && (len < 2 || in[0] != 0x1f || in[1] != 0x8b))
        return us_err_set(err, USHER_ERR_PARSE, "the gzip body does not start with a gzip "
                          "header");
    /* deflate: the zlib format (RFC 1950) when its two header bytes check, else a raw
     * RFC 1951 stream (some clients send that) */
    int wbits = 15 + 16;
    if (c == OIP_DEFLATE)
        wbits = len >= 2 && (in[0] & 0x0f) == 8 && (in[0] >> 4) <= 7 &&
                        ((unsigned)in[0] * 256 + in[1]) % 31 == 0
                    ? 15
                    : -15;
    return inflate_with(wbits, c, in, len, max_out, out, out_len, err);
}

oip_coding oip_accept_coding(const char *accept)
{
    if (!accept)
        return OIP_IDENTITY;
    double qg = -1, qd = -1, star = 0; /* -1: not named */
    const char *p = accept;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ';' && *e != ' ' && *e != '\t')
            e++;
        size_t n = (size_t)(e - p);
        double qv = 1;
        const char *r = e;
        while (*r && *r != ',') {
            if (*r == ';') {
                r++;
                while (*r == ' ' || *r == '\t')
                    r++;
                if ((r[0] == 'q' || r[0] == 'Q') && r[1] == '=')
                    qv = strtod(r + 2, NULL);
            } else {
                r++;
            }
        }
        if (!(qv >= 0 && qv <= 1))
            qv = 0;
        if ((n == 4 && strncasecmp(p, "gzip", 4) == 0) || (n == 6 && strncasecmp(p, "x-gzip", 6) == 0))
            qg = qv;
        else if (n == 7 && strncasecmp(p, "deflate", 7) == 0)
            qd = qv;
        else if (n == 1 && *p == '*') {
            star = qv;
        }
        p = r;
    }
    if (qg < 0)
        qg = star;
    if (qd < 0)
        qd = star;
    if (qg > 0 && qg >= qd)
        return OIP_GZIP;
    if (qd > 0)
        return OIP_DEFLATE;
    return OIP_IDENTITY;
}

int oip_deflate(oip_coding c, const void *a, size_t alen, const void *b, size_t blen,
                uint8_t **out, size_t *out_len, usher_error *err)
{
    *out = NULL;
    *out_len = 0;
    if (c != OIP_GZIP && c != OIP_DEFLATE)
        return us_err_set(err, USHER_ERR_INVALID, "oip_deflate: gzip or deflate");
    if (alen > (1u << 30) || blen > (1u << 30))
        return us_err_set(err, USHER_ERR_LIMIT, "a response over 1 GiB is not compressed");
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = z_alloc;
    zs.zfree = z_free;
    /* level 1: the answer's latency matters more than its last bytes */
    if (deflateInit2(&zs, 1, Z_DEFLATED, c == OIP_GZIP ? 15 + 16 : 15, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory (zlib)");
    size_t cap = deflateBound(&zs, (uLong)(alen + blen)) + 64;
    uint8_t *buf = us_malloc(cap);
    if (!buf) {
        deflateEnd(&zs);
        return us_err_set(err, USHER_ERR_NOMEM, "out of memory");
    }
    zs.next_out = buf;
    zs.avail_out = (uInt)cap;
    zs.next_in = (Bytef *)(uintptr_t)a;
    zs.avail_in = (uInt)alen;
    int z = deflate(&zs, blen ? Z_NO_FLUSH : Z_FINISH);
    if (blen && z == Z_OK) {
        zs.next_in = (Bytef *)(uintptr_t)b;
        zs.avail_in = (uInt)blen;
        z = deflate(&zs, Z_FINISH);
    }
    size_t n = cap - zs.avail_out;
    deflateEnd(&zs);
    if (z != Z_STREAM_END) {
        us_free(buf);
        return us_err_set(err, USHER_ERR_INTERNAL, "compressing the answer failed (zlib %d)", z);
    }
    *out = buf;
    *out_len = n;
    return USHER_OK;
}
