/*
 * test_oip.c - the OIP request parser and response writer (src/server/oip.c)
 * on untrusted bodies:
 *   - fuzz/corpus-oip, past findings (fuzz/regress/ *.oip) and deterministic
 *     mutants of the seeds through the fuzz body (fuzz/fuzz_oip.c, which
 *     checks the contract and aborts on a violation); each seed's name says
 *     whether it must be accepted (ok-, tight-ok-) or refused (bad-, tight-bad-);
 *   - oip_parse_request directly: the decoded bytes of every datatype, FP16
 *     and BF16 rounding, the BYTES layout, and one case per way a body can be
 *     wrong (RELIABILITY.md INPUT-2, INPUT-4, PROTO-6), each with the exact
 *     message naming the field;
 *   - oip_write_response (values, output selection, binary framing, the id)
 *     and oip_write_error (<= 4 KiB of valid JSON with the id, PROTO-2/5).
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "fuzz_gzip.h"
#include "fuzz_oip.h"
#include "server/oip.h"
#include "test.h"

/* ---- the fuzz body over the seed corpus and its mutants ------------------- */

#define MAX_SEEDS 256
#define SEED_MAX_BYTES 65536

typedef test_blob seed;

static uint64_t rng_state = 0x0A1B2C3D4E5F6071ULL;
static uint64_t rnd(void) { return test_splitmix(&rng_state); }

/* the framing of fuzz_oip.c: body, header length, limits */
static void unframe(const seed *s, const uint8_t **body, size_t *n, uint64_t *hl, oip_limits *lim)
{
    const uint8_t *p = s->p + 1;
    size_t len = s->n - 1;
    uint8_t mode = s->p[0];
    *hl = 0;
    if ((mode & 3) == 1 && len >= 2) {
        *hl = (uint64_t)p[0] | (uint64_t)p[1] << 8;
        p += 2;
        len -= 2;
    } else if ((mode & 3) == 2) {
        *hl = len;
    } else if ((mode & 3) == 3) {
        for (int k = 0; k < 8 && len > 0; k++, p++, len--)
            *hl |= (uint64_t)p[0] << (8 * k);
    }
    *lim = oip_default_limits();
    if (mode & 4) {
        lim->max_body = 4096;
        lim->max_depth = 6;
        lim->max_elements = 32;
        lim->max_tensor_bytes = 128;
    }
    *body = p;
    *n = len;
}

static bool starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* One mutant of a (and b for splices) into m (capacity cap); returns its length. */
static size_t mutate(const seed *a, const seed *b, uint8_t *m, size_t cap)
{
    /* JSON structure, number and escape characters, so edits make interesting damage */
    static const char *const words[] = {"0",     "-1",   "1e400",   "null", "true",  "[]",
                                        "{}",    "[[",   "\"x\"",   "1.5",  "65536", "-0",
                                        "18446744073709551616",     "\"BYTES\"",     "\"FP16\"",
                                        "\"binary_data_size\"",     "\\u0000",       "\xff"};
    test_mutator mu = {"[]{},:\"\\-+.eE0123456789 u", words, sizeof words / sizeof words[0], 16,
                       &rng_state};
    return test_mutate(&mu, a, b, m, cap);
}

/* is the (framed) input accepted under its own limits? */
static bool accepted(const seed *s)
{
    const uint8_t *body;
    size_t n;
    uint64_t hl;
    oip_limits lim;
    unframe(s, &body, &n, &hl, &lim);
    oip_request *r = malloc(sizeof *r);
    usher_error e;
    int rc = oip_parse_request(body, n, hl, &lim, r, &e);
    if (rc == USHER_OK)
        oip_request_free(r);
    free(r);
    return rc == USHER_OK;
}

TEST(seeds_and_mutants_through_fuzz_body)
{
    seed seeds[MAX_SEEDS];
    int n = test_load_dir(test_path(test_source_dir(), "fuzz/corpus-oip"), "", seeds, MAX_SEEDS);
    ASSERT(n >= 60);
    int good[MAX_SEEDS], n_good = 0, n_bad = 0, n_tight = 0, modes[4] = {0};
    for (int i = 0; i < n; i++) {
        ASSERT(seeds[i].n >= 1);
        usher_fuzz_oip_one(seeds[i].p, seeds[i].n);
        bool ok = accepted(&seeds[i]);
        const char *nm = seeds[i].name;
        bool want_ok = starts(nm, "ok-") || starts(nm, "tight-ok-");
        bool want_bad = starts(nm, "bad-") || starts(nm, "tight-bad-");
        if (!want_ok && !want_bad)
            FAIL_("seed %s: its name says neither ok- nor bad-", nm);
        if (ok != want_ok)
            FAIL_("seed %s was %s", nm, ok ? "accepted" : "refused");
        if (((seeds[i].p[0] & 4) != 0) != starts(nm, "tight-"))
            FAIL_("seed %s: tight- seeds and only they set mode bit 2", nm);
        if (ok)
            good[n_good++] = i;
        else
            n_bad++;
        n_tight += (seeds[i].p[0] & 4) != 0;
        modes[seeds[i].p[0] & 3]++;
    }
    printf("  %d seeds: %d accepted, %d refused, %d with tight limits, framings %d/%d/%d/%d\n", n,
           n_good, n_bad, n_tight, modes[0], modes[1], modes[2], modes[3]);
    ASSERT(n_good >= 20 && n_bad >= 40 && n_tight >= 4);
    for (int k = 0; k < 4; k++)
        ASSERT(modes[k] >= 1);

    const int rounds = 200000;
    const size_t cap = 2 * SEED_MAX_BYTES;
    uint8_t *m = malloc(cap);
    ASSERT(m);
    int ok = 0, rejected = 0;
    for (int r = 0; r < rounds; r++) {
        /* mostly from accepted seeds: their mutants reach past the first check */
        int ai = rnd() % 3 ? good[rnd() % (uint64_t)n_good] : (int)(rnd() % (uint64_t)n);
        const seed *a = &seeds[ai], *b = &seeds[rnd() % (uint64_t)n];
        seed mut = {.p = m, .n = mutate(a, b, m, cap)};
        usher_fuzz_oip_one(mut.p, mut.n);
        if (accepted(&mut))
            ok++;
        else
            rejected++;
    }
    printf("  %d mutants: %d accepted, %d refused\n", rounds, ok, rejected);
    free(m);
    test_blobs_free(seeds, n);
    ASSERT(ok > 10000 && rejected > 50000);
    ASSERT_EQ_U64(us_err_missing_detail_count(), 0);
}

TEST(past_findings_stay_fixed)
{
    /* inputs that once made the fuzz target fail (fuzz/regress/README.md) */
    seed found[64];
    int n = test_load_dir(test_path(test_source_dir(), "fuzz/regress"), ".oip", found, 64);
    ASSERT(n >= 2);
    for (int i = 0; i < n; i++)
        usher_fuzz_oip_one(found[i].p, found[i].n);
    test_blobs_free(found, n);
}

/* ---- parsing: helpers ------------------------------------------------------------ */

static oip_request R; /* 27 KiB: not on the stack */
static usher_error err;

static int parse_lim(const char *json, const oip_limits *lim)
{
    memset(&err, 0, sizeof err);
    return oip_parse_request((const uint8_t *)json, strlen(json), 0, lim, &R, &err);
}
static int parse(const char *json) { return parse_lim(json, NULL); }

/* JSON header + binary tail, header length = the JSON's */
static int parse_bin(const char *json, const void *tail, size_t n_tail)
{
    size_t jl = strlen(json);
    uint8_t *body = malloc(jl + n_tail + 1);
    memcpy(body, json, jl);
    if (n_tail)
        memcpy(body + jl, tail, n_tail);
    memset(&err, 0, sizeof err);
    int rc = oip_parse_request(body, jl + n_tail, jl, NULL, &R, &err);
    free(body);
    return rc;
}

/* refused with code and a message containing substr; nothing left to free */
#define EXPECT_ERR_RC(rc_expr, want_rc, substr)                                                    \
    do {                                                                                           \
        int rc__ = (rc_expr);                                                                      \
        if (rc__ == USHER_OK)                                                                      \
            oip_request_free(&R);                                                                  \
        if (rc__ != (want_rc))                                                                     \
            FAIL_("rc %d, want %s (%d): %s", rc__, #want_rc, (int)(want_rc), err.msg);             \
        ASSERT_EQ_INT(err.code, want_rc);                                                          \
        ASSERT_CONTAINS(err.msg, substr);                                                          \
        ASSERT_EQ_U64(R.n_in, 0);                                                                  \
        ASSERT_EQ_U64(R.n_out, 0);                                                                 \
    } while (0)
#define EXPECT_ERR(json, want_rc, substr) EXPECT_ERR_RC(parse(json), want_rc, substr)

/* one input "x" */
#define IN1(dt, shape, data)                                                                       \
    "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"" dt "\",\"shape\":" shape ",\"data\":" data "}]}"
#define IN1B(dt, shape, size)                                                                      \
    "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"" dt "\",\"shape\":" shape                        \
    ",\"parameters\":{\"binary_data_size\":" size "}}]}"

/* the single input's bytes equal want[0..n) */
#define EXPECT_BYTES(want, n)                                                                      \
    do {                                                                                           \
        ASSERT_EQ_U64(R.n_in, 1);                                                                  \
        ASSERT_EQ_U64(R.in[0].bytes, (n));                                                         \
        if (memcmp(R.in[0].data, (want), (n)) != 0)                                                \
            FAIL_("decoded bytes differ");                                                         \
    } while (0)

/* ---- parsing: accepted values ------------------------------------------------------- */

TEST(every_datatype_decodes_exactly)
{
    ASSERT_OK(parse(IN1("BOOL", "[3]", "[true,false,true]")));
    ASSERT_EQ_INT(R.in[0].dtype, US_DT_BOOL);
    EXPECT_BYTES("\1\0\1", 3);
    oip_request_free(&R);

    ASSERT_OK(parse(IN1("UINT8", "[2,2]", "[[0,1],[254,255]]")));
    ASSERT_EQ_INT(R.in[0].shape.rank, 2);
    ASSERT_EQ_INT(R.in[0].shape.dim[0], 2);
    ASSERT_EQ_INT(R.in[0].shape.dim[1], 2);
    EXPECT_BYTES("\0\1\xfe\xff", 4);
    oip_request_free(&R);

    ASSERT_OK(parse(IN1("INT8", "[3]", "[-128,-1,127]")));
    EXPECT_BYTES("\x80\xff\x7f", 3);
    oip_request_free(&R);

    uint16_t u16[] = {0, 256, 65535};
    ASSERT_OK(parse(IN1("UINT16", "[3]", "[0,256,65535]")));
    EXPECT_BYTES(u16, sizeof u16);
    oip_request_free(&R);

    int16_t i16[] = {-32768, -2, 32767};
    ASSERT_OK(parse(IN1("INT16", "[3]", "[-32768,-2,32767]")));
    EXPECT_BYTES(i16, sizeof i16);
    oip_request_free(&R);

    uint32_t u32[] = {0, 4294967295u};
    ASSERT_OK(parse(IN1("UINT32", "[2]", "[0,4294967295]")));
    EXPECT_BYTES(u32, sizeof u32);
    oip_request_free(&R);

    int32_t i32[] = {INT32_MIN, -0, INT32_MAX};
    ASSERT_OK(parse(IN1("INT32", "[3]", "[-2147483648,-0,2147483647]")));
    EXPECT_BYTES(i32, sizeof i32);
    oip_request_free(&R);

    uint64_t u64[] = {0, (uint64_t)1 << 63, UINT64_MAX};
    ASSERT_OK(parse(IN1("UINT64", "[3]", "[0,9223372036854775808,18446744073709551615]")));
    EXPECT_BYTES(u64, sizeof u64);
    oip_request_free(&R);

    int64_t i64[] = {INT64_MIN, INT64_MAX};
    ASSERT_OK(parse(IN1("INT64", "[2]", "[-9223372036854775808,9223372036854775807]")));
    EXPECT_BYTES(i64, sizeof i64);
    oip_request_free(&R);

    float f32[] = {1.5f, -0.0f, 0.1f, FLT_MAX, FLT_TRUE_MIN};
    ASSERT_OK(parse(IN1("FP32", "[5]", "[1.5,-0.0,0.1,3.4028234663852886e38,1.4e-45]")));
    EXPECT_BYTES(f32, sizeof f32);
    ASSERT(signbit(((float *)R.in[0].data)[1]));
    oip_request_free(&R);

    double f64[] = {DBL_MAX, 5e-324, -0.0, 0.1, 0.0};
    ASSERT_OK(parse(IN1("FP64", "[5]", "[1.7976931348623157e308,5e-324,-0.0,0.1,1e-400]")));
    EXPECT_BYTES(f64, sizeof f64);
    oip_request_free(&R);

    /* FP32 values that round to FLT_MAX are FLT_MAX, the first one that rounds up is refused */
    ASSERT_OK(parse(IN1("FP32", "[2]", "[3.40282347e38,3.4028235677973362e38]")));
    float fm[] = {FLT_MAX, FLT_MAX};
    EXPECT_BYTES(fm, sizeof fm);
    oip_request_free(&R);
    EXPECT_ERR(IN1("FP32", "[1]", "[3.4028235677973366e38]"), USHER_ERR_PARSE,
               "input 'x': data[0] is 3.4028235677973366e+38, out of range for FP32");
    EXPECT_ERR(IN1("FP32", "[2]", "[0,-1e39]"), USHER_ERR_PARSE,
               "input 'x': data[1] is -9.9999999999999994e+38, out of range for FP32");
}

/* FP16 from the double, rounded to nearest even (expected bits from Python's struct 'e') */
TEST(fp16_and_bf16_rounding)
{
    ASSERT_OK(parse(IN1("FP16", "[16]",
                        "[1,65504,65519.99,6e-8,2.9802322387695312e-08,2.98023224e-8,-0.0,"
                        "1.0009765625,1.00048828125,1.00146484375,0.1,6.103515625e-05,6.1e-5,"
                        "6.1032e-05,-2.5e-5,1e-30]")));
    uint16_t want[] = {0x3c00, 0x7bff, 0x7bff, 0x0001, 0x0000, 0x0001, 0x8000, 0x3c01,
                       0x3c00, 0x3c02, 0x2e66, 0x0400, 0x03ff, 0x0400, 0x81a3, 0x0000};
    EXPECT_BYTES(want, sizeof want);
    oip_request_free(&R);
    EXPECT_ERR(IN1("FP16", "[2]", "[1,65520]"), USHER_ERR_PARSE,
               "input 'x': data[1] is 65520, out of range for FP16");
    EXPECT_ERR(IN1("FP16", "[1]", "[-1e6]"), USHER_ERR_PARSE,
               "input 'x': data[0] is -1000000, out of range for FP16");

    ASSERT_OK(parse(IN1("BF16", "[5]",
                        "[1,3.3895313892515355e38,-1e-40,1.00390625,1.01171875]")));
    /* 1+2^-8 is a tie (to 1.0, even), 1+3*2^-8 another (to 1+2^-6) */
    uint16_t bf[] = {0x3f80, 0x7f7f, 0x8001, 0x3f80, 0x3f82};
    EXPECT_BYTES(bf, sizeof bf);
    oip_request_free(&R);
    EXPECT_ERR(IN1("BF16", "[1]", "[3.3961775292304601e38]"), USHER_ERR_PARSE,
               "out of range for BF16");
}

TEST(bytes_layout_is_length_prefixed)
{
    ASSERT_OK(parse(IN1("BYTES", "[2,2]",
                        "[[\"\",\"abc\"],[\"\\u00e9\",\"a\\u0000\\ud83d\\ude00\"]]")));
    ASSERT_EQ_INT(R.in[0].dtype, US_DT_BYTES);
    static const uint8_t want[] = {0, 0, 0, 0, 3, 0, 0, 0, 'a', 'b', 'c', 2, 0, 0, 0, 0xc3, 0xa9,
                                   6, 0, 0, 0, 'a', 0, 0xf0, 0x9f, 0x98, 0x80};
    EXPECT_BYTES(want, sizeof want);
    oip_request_free(&R);
    /* an empty tensor still has a buffer of its own */
    ASSERT_OK(parse(IN1("BYTES", "[0,5]", "[]")));
    ASSERT(R.in[0].data != NULL);
    ASSERT_EQ_U64(R.in[0].bytes, 0);
    oip_request_free(&R);
    EXPECT_ERR(IN1("BYTES", "[2]", "[\"a\",7]"), USHER_ERR_PARSE,
               "input 'x': data[1] is a number, expected a string (BYTES)");
    /* invalid UTF-8 inside a JSON string is a JSON error */
    EXPECT_ERR(IN1("BYTES", "[1]", "[\"\xc0\x80\"]"), USHER_ERR_PARSE,
               "request JSON: byte 63: invalid UTF-8 in a string");
}

TEST(request_fields_are_read)
{
    ASSERT_OK(parse("{\"id\":\"r-1\",\"model_name\":\"m\",\"sequence_id\":3,"
                    "\"parameters\":{\"timeout\":50000,\"binary_data_output\":true,"
                    "\"other\":{\"deep\":[null]}},"
                    "\"inputs\":[{\"name\":\"a\",\"datatype\":\"INT32\",\"shape\":[],\"data\":[7],"
                    "\"extra\":1}],"
                    "\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":false}},"
                    "{\"name\":\"z\"}]}"));
    ASSERT(R.has_id);
    ASSERT_STR_EQ(R.id, "r-1");
    ASSERT(R.has_timeout);
    ASSERT_EQ_U64(R.timeout_us, 50000);
    ASSERT(R.binary_output);
    ASSERT_EQ_U64(R.n_in, 1);
    ASSERT_STR_EQ(R.in[0].name, "a");
    ASSERT_EQ_INT(R.in[0].shape.rank, 0);
    ASSERT_EQ_U64(R.in[0].bytes, 4);
    ASSERT_EQ_U64(R.n_out, 2);
    ASSERT_STR_EQ(R.out[0].name, "y");
    ASSERT(R.out[0].has_binary && !R.out[0].binary);
    ASSERT_STR_EQ(R.out[1].name, "z");
    ASSERT(!R.out[1].has_binary);
    oip_request_free(&R);

    ASSERT_OK(parse("{\"inputs\":[]}"));
    ASSERT(!R.has_id && !R.has_timeout && !R.binary_output);
    ASSERT_EQ_U64(R.n_in, 0);
    oip_request_free(&R);
}

/* ---- parsing: refusals ------------------------------------------------------------ */

TEST(truncated_and_malformed_json)
{
    EXPECT_ERR("", USHER_ERR_PARSE, "request JSON: byte 0: expected a value, found the end");
    EXPECT_ERR("{\"inputs\":[{\"name\":\"x\",\"datatype\"", USHER_ERR_PARSE,
               "request JSON: byte 33: expected ':' after a key, found the end of the input");
    EXPECT_ERR("{\"inputs\":[", USHER_ERR_PARSE, "request JSON: byte 11: expected a value");
    EXPECT_ERR("{\"inputs\":[]} x", USHER_ERR_PARSE,
               "request JSON: byte 14: unexpected 'x' after the JSON value");
    EXPECT_ERR("{\"inputs\":[],}", USHER_ERR_PARSE, "request JSON: byte 13: expected a string key");
    EXPECT_ERR("{\"inputs\":[],\"inputs\":[]}", USHER_ERR_PARSE,
               "request JSON: byte 13: duplicate key \"inputs\"");
    EXPECT_ERR("[]", USHER_ERR_PARSE, "the request must be a JSON object, not an array");
    EXPECT_ERR("{}", USHER_ERR_PARSE, "\"inputs\" is missing");
    EXPECT_ERR("{\"inputs\":{}}", USHER_ERR_PARSE, "\"inputs\" must be an array, not an object");
}

TEST(non_finite_numbers_refused)
{
    EXPECT_ERR(IN1("FP32", "[1]", "[NaN]"), USHER_ERR_PARSE, "request JSON: byte 61: expected a value, found 'N'");
    EXPECT_ERR(IN1("FP32", "[1]", "[Infinity]"), USHER_ERR_PARSE, "expected a value, found 'I'");
    EXPECT_ERR(IN1("FP32", "[1]", "[-Infinity]"), USHER_ERR_PARSE, "expected a digit after '-'");
    EXPECT_ERR(IN1("FP64", "[1]", "[1e400]"), USHER_ERR_PARSE,
               "request JSON: byte 61: number out of range");
    EXPECT_ERR(IN1("FP64", "[1]", "[-1e309]"), USHER_ERR_PARSE, "number out of range");
    EXPECT_ERR(IN1("FP32", "[1]", "[null]"), USHER_ERR_PARSE,
               "input 'x': data[0] is null, expected a number (FP32)");
}

TEST(wrong_types_name_the_field)
{
    EXPECT_ERR("{\"inputs\":[7]}", USHER_ERR_PARSE, "inputs[0] must be an object, not a number");
    EXPECT_ERR("{\"inputs\":[{\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}]}", USHER_ERR_PARSE,
               "inputs[0]: \"name\" is missing");
    EXPECT_ERR("{\"inputs\":[{\"name\":1,\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}]}",
               USHER_ERR_PARSE, "inputs[0]: \"name\" must be a string, not a number");
    EXPECT_ERR("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"data\":[1]}]}", USHER_ERR_PARSE,
               "input 'x': \"datatype\" is missing");
    EXPECT_ERR("{\"inputs\":[{\"name\":\"x\",\"datatype\":11,\"shape\":[1],\"data\":[1]}]}",
               USHER_ERR_PARSE, "input 'x': \"datatype\" must be a string, not a number");
    EXPECT_ERR(IN1("FLOAT32", "[1]", "[1]"), USHER_ERR_PARSE,
               "input 'x': unknown datatype \"FLOAT32\"");
    EXPECT_ERR(IN1("fp32", "[1]", "[1]"), USHER_ERR_PARSE, "input 'x': unknown datatype \"fp32\"");
    EXPECT_ERR(IN1("FP32\\u0000", "[1]", "[1]"), USHER_ERR_PARSE,
               "input 'x': unknown datatype \"FP32?\"");
    EXPECT_ERR("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"data\":[1]}]}",
               USHER_ERR_PARSE, "input 'x': \"shape\" is missing");
    EXPECT_ERR(IN1("FP32", "\"x\"", "[1]"), USHER_ERR_PARSE,
               "input 'x': \"shape\" must be an array of integers, not a string");
    EXPECT_ERR(IN1("FP32", "[\"1\"]", "[1]"), USHER_ERR_PARSE,
               "input 'x': shape[0] is a string, not an integer");
    EXPECT_ERR(IN1("FP32", "[1]", "\"1\""), USHER_ERR_PARSE,
               "input 'x': \"data\" must be an array, not a string");
    EXPECT_ERR(IN1("FP32", "[1]", "[{\"v\":1}]"), USHER_ERR_PARSE,
               "input 'x': data[0] is an object, expected a number (FP32)");
    EXPECT_ERR(IN1("BOOL", "[2]", "[true,1]"), USHER_ERR_PARSE,
               "input 'x': data[1] is a number, expected true or false (BOOL)");
    EXPECT_ERR(IN1("INT8", "[1]", "[\"1\"]"), USHER_ERR_PARSE,
               "input 'x': data[0] is a string, expected a number (INT8)");
    EXPECT_ERR("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1],"
               "\"parameters\":[]}]}",
               USHER_ERR_PARSE, "input 'x': \"parameters\" must be an object, not an array");
    EXPECT_ERR("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],"
               "\"parameters\":{\"binary_data_size\":\"4\"}}]}",
               USHER_ERR_PARSE,
               "input 'x': parameters.binary_data_size must be a non-negative integer, not a string");
    EXPECT_ERR("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],"
               "\"parameters\":{\"binary_data_size\":4.5}}]}",
               USHER_ERR_PARSE, "input 'x': parameters.binary_data_size is 4.5, not an integer");
    EXPECT_ERR("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],"
               "\"parameters\":{\"binary_data_size\":-4}}]}",
               USHER_ERR_PARSE, "input 'x': parameters.binary_data_size is negative");
    EXPECT_ERR("{\"parameters\":7,\"inputs\":[]}", USHER_ERR_PARSE,
               "\"parameters\" must be an object, not a number");
    EXPECT_ERR("{\"parameters\":{\"timeout\":\"5\"},\"inputs\":[]}", USHER_ERR_PARSE,
               "request: parameters.timeout (microseconds) must be a non-negative integer, not a "
               "string");
    EXPECT_ERR("{\"parameters\":{\"timeout\":-1},\"inputs\":[]}", USHER_ERR_PARSE,
               "request: parameters.timeout (microseconds) is negative");
    EXPECT_ERR("{\"parameters\":{\"timeout\":18446744073709551616},\"inputs\":[]}", USHER_ERR_PARSE,
               "request: parameters.timeout (microseconds) is more than 2^64-1");
    EXPECT_ERR("{\"parameters\":{\"binary_data_output\":1},\"inputs\":[]}", USHER_ERR_PARSE,
               "request: parameters.binary_data_output must be true or false, not a number");
    EXPECT_ERR("{\"inputs\":[],\"outputs\":{}}", USHER_ERR_PARSE,
               "\"outputs\" must be an array, not an object");
    EXPECT_ERR("{\"inputs\":[],\"outputs\":[\"y\"]}", USHER_ERR_PARSE,
               "outputs[0] must be an object, not a string");
    EXPECT_ERR("{\"inputs\":[],\"outputs\":[{\"name\":\"y\",\"parameters\":"
               "{\"binary_data\":\"true\"}}]}",
               USHER_ERR_PARSE,
               "output 'y': parameters.binary_data must be true or false, not a string");
    EXPECT_ERR("{\"inputs\":[],\"outputs\":[{\"name\":\"y\",\"parameters\":3}]}", USHER_ERR_PARSE,
               "output 'y': \"parameters\" must be an object, not a number");
}

/* RELIABILITY.md INPUT-4: every vector refused (400) with a message naming the input */
TEST(shapes_and_overflow_vectors)
{
    EXPECT_ERR(IN1("FP32", "[16,1152921504606846978]", "[1]"), USHER_ERR_PARSE,
               "input 'x': shape [16,1152921504606846978] has more than 2^63-1 elements");
    EXPECT_ERR(IN1("FP32", "[4,1152921504606846978]", "[1]"), USHER_ERR_PARSE,
               "input 'x': shape [4,1152921504606846978] has 4611686018427387912 elements, "
               "\"data\" has 1");
    EXPECT_ERR(IN1B("FP32", "[4,1152921504606846978]", "4"), USHER_ERR_PARSE,
               "input 'x': shape [4,1152921504606846978] of FP32 is more than 2^63-1 bytes");
    EXPECT_ERR(IN1("FP32", "[2147483648,1]", "[1]"), USHER_ERR_PARSE,
               "input 'x': shape [2147483648,1] has 2147483648 elements, \"data\" has 1");
    EXPECT_ERR(IN1("FP32", "[18446744073709551615]", "[1]"), USHER_ERR_PARSE,
               "input 'x': shape[0] is 18446744073709551615, more than 2^63-1");
    EXPECT_ERR(IN1("FP32", "[1,100000000000000000000]", "[1]"), USHER_ERR_PARSE,
               "input 'x': shape[1] is 1e+20, beyond 64-bit integers");
    EXPECT_ERR(IN1("FP32", "[1,-5]", "[1]"), USHER_ERR_PARSE,
               "input 'x': shape[1] is -5, a dim must be >= 0");
    EXPECT_ERR(IN1("FP32", "[-1]", "[1]"), USHER_ERR_PARSE,
               "input 'x': shape[0] is -1, a dim must be >= 0");
    EXPECT_ERR(IN1("FP32", "[1.5]", "[1]"), USHER_ERR_PARSE,
               "input 'x': shape[0] is 1.5, not an integer");
    EXPECT_ERR(IN1("FP32", "[1.0]", "[1]"), USHER_ERR_PARSE,
               "input 'x': shape[0] is 1, not an integer");
    EXPECT_ERR(IN1("FP32", "[1e0]", "[1]"), USHER_ERR_PARSE, "shape[0] is 1, not an integer");
    EXPECT_ERR(IN1("FP32", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", "[1]"), USHER_ERR_PARSE,
               "input 'x': shape has 17 dims, at most 16");
    /* a zero dim makes no size overflow true, but the dims before it still may not overflow:
     * every consumer computes sizes in dim order (us_shape_elements) */
    EXPECT_ERR(IN1("FP32", "[4611686018427387904,4611686018427387904,0]", "[]"), USHER_ERR_PARSE,
               "input 'x': shape [4611686018427387904,4611686018427387904,0] overflows 2^63-1 "
               "before its 0 dim");
    EXPECT_ERR_RC(parse_bin(IN1B("FP32", "[4611686018427387904,4,0]", "0"), NULL, 0),
                  USHER_ERR_PARSE,
                  "input 'x': shape [4611686018427387904,4,0] overflows 2^63-1 before its 0 dim");
    /* with the 0 first nothing overflows */
    ASSERT_OK(parse_bin(IN1B("FP32", "[0,4611686018427387904,4]", "0"), NULL, 0));
    ASSERT_EQ_U64(R.in[0].bytes, 0);
    oip_request_free(&R);

    /* at the edges: rank 16, rank 0, zero-size dims */
    ASSERT_OK(parse(IN1("FP32", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,2]", "[1,2]")));
    ASSERT_EQ_INT(R.in[0].shape.rank, 16);
    ASSERT_EQ_INT(R.in[0].shape.dim[15], 2);
    ASSERT_EQ_U64(R.in[0].bytes, 8);
    oip_request_free(&R);
    ASSERT_OK(parse(IN1("INT64", "[]", "[-3]")));
    ASSERT_EQ_INT(R.in[0].shape.rank, 0);
    ASSERT_EQ_U64(R.in[0].bytes, 8);
    oip_request_free(&R);
    ASSERT_OK(parse(IN1("FP32", "[0,9223372036854775807]", "[]")));
    ASSERT_EQ_INT(R.in[0].shape.dim[1], INT64_MAX);
    ASSERT_EQ_U64(R.in[0].bytes, 0);
    oip_request_free(&R);
    ASSERT_OK(parse(IN1("FP32", "[3,0]", "[[],[],[]]")));
    ASSERT_EQ_U64(R.in[0].bytes, 0);
    oip_request_free(&R);
    EXPECT_ERR(IN1("FP32", "[]", "[]"), USHER_ERR_PARSE,
               "input 'x': shape [] has 1 elements, \"data\" has 0");
}

TEST(element_count_must_match_shape)
{
    EXPECT_ERR(IN1("FP32", "[2,2]", "[[1,2],[3]]"), USHER_ERR_PARSE,
               "input 'x': shape [2,2] has 4 elements, \"data\" has 3");
    EXPECT_ERR(IN1("INT8", "[2]", "[1,2,3]"), USHER_ERR_PARSE,
               "input 'x': shape [2] has 2 elements, \"data\" has 3");
    EXPECT_ERR(IN1("BYTES", "[0]", "[\"a\"]"), USHER_ERR_PARSE,
               "input 'x': shape [0] has 0 elements, \"data\" has 1");
    /* the nesting itself is not checked (as Triton): only the count */
    ASSERT_OK(parse(IN1("INT8", "[2,2]", "[[1],[2,[3]],[],4]")));
    EXPECT_BYTES("\1\2\3\4", 4);
    oip_request_free(&R);
}

TEST(integer_values_out_of_range)
{
    EXPECT_ERR(IN1("INT8", "[2]", "[1,128]"), USHER_ERR_PARSE,
               "input 'x': data[1] is 128, out of range for INT8 [-128, 127]");
    EXPECT_ERR(IN1("INT8", "[1]", "[-129]"), USHER_ERR_PARSE,
               "input 'x': data[0] is -129, out of range for INT8 [-128, 127]");
    EXPECT_ERR(IN1("UINT8", "[1]", "[-1]"), USHER_ERR_PARSE,
               "input 'x': data[0] is -1, out of range for UINT8 [0, 255]");
    EXPECT_ERR(IN1("UINT8", "[1]", "[256]"), USHER_ERR_PARSE,
               "input 'x': data[0] is 256, out of range for UINT8 [0, 255]");
    EXPECT_ERR(IN1("INT16", "[1]", "[32768]"), USHER_ERR_PARSE,
               "data[0] is 32768, out of range for INT16 [-32768, 32767]");
    EXPECT_ERR(IN1("UINT16", "[1]", "[65536]"), USHER_ERR_PARSE,
               "data[0] is 65536, out of range for UINT16 [0, 65535]");
    EXPECT_ERR(IN1("INT32", "[1]", "[-2147483649]"), USHER_ERR_PARSE,
               "data[0] is -2147483649, out of range for INT32 [-2147483648, 2147483647]");
    EXPECT_ERR(IN1("UINT32", "[1]", "[4294967296]"), USHER_ERR_PARSE,
               "data[0] is 4294967296, out of range for UINT32 [0, 4294967295]");
    EXPECT_ERR(IN1("INT64", "[1]", "[9223372036854775808]"), USHER_ERR_PARSE,
               "data[0] is 9223372036854775808, out of range for INT64");
    EXPECT_ERR(IN1("INT64", "[1]", "[-9223372036854775809]"), USHER_ERR_PARSE,
               "data[0] is -9.2233720368547758e+18, out of range for INT64");
    EXPECT_ERR(IN1("UINT64", "[1]", "[18446744073709551616]"), USHER_ERR_PARSE,
               "data[0] is 1.8446744073709552e+19, out of range for UINT64 [0, "
               "18446744073709551615]");
    EXPECT_ERR(IN1("UINT64", "[1]", "[-1]"), USHER_ERR_PARSE,
               "data[0] is -1, out of range for UINT64");
    EXPECT_ERR(IN1("INT32", "[2]", "[1,1.5]"), USHER_ERR_PARSE,
               "input 'x': data[1] is 1.5, not an integer (INT32)");
    EXPECT_ERR(IN1("UINT8", "[1]", "[1.0]"), USHER_ERR_PARSE,
               "input 'x': data[0] is 1, not an integer (UINT8)");
    EXPECT_ERR(IN1("INT64", "[1]", "[1e3]"), USHER_ERR_PARSE,
               "input 'x': data[0] is 1000, not an integer (INT64)");
    /* "-0" is an integer: 0 */
    ASSERT_OK(parse(IN1("UINT8", "[1]", "[-0]")));
    EXPECT_BYTES("\0", 1);
    oip_request_free(&R);
}

/* limits: at the limit accepted, one over refused with USHER_ERR_LIMIT (INPUT-2) */
TEST(limits_at_and_over)
{
    oip_limits lim = oip_default_limits();
    ASSERT_EQ_U64(lim.max_body, (uint64_t)64 << 20);
    ASSERT_EQ_INT(lim.max_depth, 100);
    ASSERT_EQ_U64(lim.max_elements, (uint64_t)64 << 20);
    ASSERT_EQ_U64(lim.max_tensor_bytes, (uint64_t)64 << 20);

    lim.max_elements = 4;
    ASSERT_OK(parse_lim(IN1("UINT8", "[2,2]", "[1,2,3,4]"), &lim));
    oip_request_free(&R);
    EXPECT_ERR_RC(parse_lim(IN1("UINT8", "[5]", "[1,2,3,4,5]"), &lim), USHER_ERR_LIMIT,
                  "input 'x': 5 elements, more than the limit of 4");
    /* a shape that disagrees with its data is malformed before it is big */
    EXPECT_ERR_RC(parse_lim(IN1("UINT8", "[5]", "[1]"), &lim), USHER_ERR_PARSE,
                  "has 5 elements, \"data\" has 1");
    EXPECT_ERR_RC(parse_lim(IN1B("UINT8", "[5]", "5"), &lim), USHER_ERR_LIMIT,
                  "input 'x': 5 elements, more than the limit of 4");

    lim = oip_default_limits();
    lim.max_tensor_bytes = 16;
    ASSERT_OK(parse_lim(IN1("FP32", "[4]", "[1,2,3,4]"), &lim));
    oip_request_free(&R);
    EXPECT_ERR_RC(parse_lim(IN1("FP64", "[3]", "[1,2,3]"), &lim), USHER_ERR_LIMIT,
                  "input 'x': 24 bytes, more than the limit of 16");
    /* BYTES: 4 + 12 = 16 accepted, 4 + 13 refused (the decoded size counts) */
    ASSERT_OK(parse_lim(IN1("BYTES", "[1]", "[\"abcdefghijkl\"]"), &lim));
    oip_request_free(&R);
    EXPECT_ERR_RC(parse_lim(IN1("BYTES", "[1]", "[\"abcdefghijklm\"]"), &lim), USHER_ERR_LIMIT,
                  "input 'x': 17 bytes, more than the limit of 16");

    /* all inputs together: 16 + 16 bytes at a limit of 32, then over it */
    lim = oip_default_limits();
    ASSERT_EQ_U64(lim.max_total_bytes, (uint64_t)64 << 20);
    lim.max_total_bytes = 32;
    const char *two = "{\"inputs\":[{\"name\":\"a\",\"datatype\":\"FP32\",\"shape\":[4],"
                      "\"data\":[1,2,3,4]},{\"name\":\"b\",\"datatype\":\"FP64\",\"shape\":[2],"
                      "\"data\":[1,2]}]}";
    ASSERT_OK(parse_lim(two, &lim));
    oip_request_free(&R);
    lim.max_total_bytes = 31;
    EXPECT_ERR_RC(parse_lim(two, &lim), USHER_ERR_LIMIT,
                  "inputs[0..1] decode to 32 bytes, more than the limit of 31");

    lim = oip_default_limits();
    const char *body = IN1("FP32", "[1]", "[1]");
    lim.max_body = strlen(body);
    ASSERT_OK(parse_lim(body, &lim));
    oip_request_free(&R);
    lim.max_body--;
    char want[96];
    snprintf(want, sizeof want, "the request body is %zu bytes, more than the limit of %zu",
             strlen(body), strlen(body) - 1);
    EXPECT_ERR_RC(parse_lim(body, &lim), USHER_ERR_LIMIT, want);

    /* depth: the body's own nesting is 3 ({ [ { ) plus the data's; too deep is malformed
     * (USHER_ERR_PARSE, a 400), not big */
    lim = oip_default_limits();
    lim.max_depth = 5;
    ASSERT_OK(parse_lim(IN1("FP32", "[1]", "[[1]]"), &lim));
    oip_request_free(&R);
    EXPECT_ERR_RC(parse_lim(IN1("FP32", "[1]", "[[[1]]]"), &lim), USHER_ERR_PARSE,
                  "request JSON: byte 62: nesting deeper than the limit of 5");
    /* the default depth, 100: 97 levels of data fit, 98 do not */
    char deep[512];
    for (int levels = 97; levels <= 98; levels++) {
        int o = snprintf(deep, sizeof deep, "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\","
                                            "\"shape\":[1],\"data\":");
        for (int k = 0; k < levels; k++)
            deep[o++] = '[';
        deep[o++] = '1';
        for (int k = 0; k < levels; k++)
            deep[o++] = ']';
        snprintf(deep + o, sizeof deep - (size_t)o, "}]}");
        if (levels == 97) {
            ASSERT_OK(parse(deep));
            oip_request_free(&R);
        } else {
            EXPECT_ERR(deep, USHER_ERR_PARSE,
                       "request JSON: byte 157: nesting deeper than the limit of 100");
        }
    }

    /* 64 inputs and 64 outputs, not 65 */
    us_buf b;
    for (int n = 64; n <= 65; n++) {
        us_buf_init(&b, 1 << 20);
        us_buf_puts(&b, "{\"inputs\":[");
        for (int k = 0; k < n; k++)
            us_buf_printf(&b, "%s{\"name\":\"i%d\",\"datatype\":\"INT8\",\"shape\":[1],\"data\":[%d]}",
                          k ? "," : "", k, k);
        us_buf_puts(&b, "]}");
        int rc = parse(us_buf_str(&b));
        us_buf_free(&b);
        if (n == 64) {
            ASSERT_OK(rc);
            ASSERT_EQ_U64(R.n_in, 64);
            ASSERT_STR_EQ(R.in[63].name, "i63");
            oip_request_free(&R);
        } else {
            EXPECT_ERR_RC(rc, USHER_ERR_LIMIT, "65 inputs, at most 64");
        }
        us_buf_init(&b, 1 << 20);
        us_buf_puts(&b, "{\"inputs\":[],\"outputs\":[");
        for (int k = 0; k < n; k++)
            us_buf_printf(&b, "%s{\"name\":\"o%d\"}", k ? "," : "", k);
        us_buf_puts(&b, "]}");
        rc = parse(us_buf_str(&b));
        us_buf_free(&b);
        if (n == 64) {
            ASSERT_OK(rc);
            ASSERT_EQ_U64(R.n_out, 64);
            oip_request_free(&R);
        } else {
            EXPECT_ERR_RC(rc, USHER_ERR_LIMIT, "65 outputs, at most 64");
        }
    }
}

/* ---- the binary tensor extension (PROTO-6) ---------------------------------------- */

TEST(binary_inputs_are_split_in_order)
{
    const char *h = "{\"id\":\"b\",\"inputs\":["
                    "{\"name\":\"a\",\"datatype\":\"FP32\",\"shape\":[2],"
                    "\"parameters\":{\"binary_data_size\":8}},"
                    "{\"name\":\"j\",\"datatype\":\"INT8\",\"shape\":[1],\"data\":[-1]},"
                    "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[2],"
                    "\"parameters\":{\"binary_data_size\":11}},"
                    "{\"name\":\"b\",\"datatype\":\"BOOL\",\"shape\":[2],"
                    "\"parameters\":{\"binary_data_size\":2}}]}";
    uint8_t tail[8 + 11 + 2];
    float f[2] = {1.5f, NAN};
    memcpy(tail, f, 8);
    memcpy(tail + 8, "\3\0\0\0abc\0\0\0\0", 11);
    memcpy(tail + 19, "\1\0", 2);
    ASSERT_OK(parse_bin(h, tail, sizeof tail));
    ASSERT_EQ_U64(R.n_in, 4);
    ASSERT_EQ_U64(R.in[0].bytes, 8);
    ASSERT(memcmp(R.in[0].data, tail, 8) == 0); /* NaN kept, bit for bit */
    ASSERT_EQ_U64(R.in[1].bytes, 1);
    ASSERT_EQ_INT(((int8_t *)R.in[1].data)[0], -1);
    ASSERT_EQ_U64(R.in[2].bytes, 11);
    ASSERT(memcmp(R.in[2].data, tail + 8, 11) == 0);
    ASSERT_EQ_U64(R.in[3].bytes, 2);
    ASSERT(memcmp(R.in[3].data, "\1\0", 2) == 0);
    oip_request_free(&R);

    /* header length == body length: no tail, JSON only */
    const char *j = IN1("INT8", "[1]", "[5]");
    ASSERT_OK(oip_parse_request((const uint8_t *)j, strlen(j), strlen(j), NULL, &R, &err));
    EXPECT_BYTES("\5", 1);
    oip_request_free(&R);
    /* zero-size binary inputs */
    ASSERT_OK(parse_bin("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[0,4],"
                        "\"parameters\":{\"binary_data_size\":0}},{\"name\":\"s\",\"datatype\":"
                        "\"BYTES\",\"shape\":[0],\"parameters\":{\"binary_data_size\":0}}]}",
                        NULL, 0));
    ASSERT_EQ_U64(R.n_in, 2);
    ASSERT_EQ_U64(R.in[0].bytes + R.in[1].bytes, 0);
    oip_request_free(&R);
}

TEST(binary_size_mismatches)
{
    uint8_t z[64] = {0};
    EXPECT_ERR_RC(parse_bin(IN1B("FP32", "[2]", "6"), z, 6), USHER_ERR_PARSE,
                  "input 'x': binary_data_size is 6, shape [2] of FP32 needs 8 bytes");
    EXPECT_ERR_RC(parse_bin(IN1B("FP32", "[2]", "8"), z, 7), USHER_ERR_PARSE,
                  "the inputs' binary_data_size values add up to 8 bytes, but 7 bytes follow the "
                  "JSON header");
    EXPECT_ERR_RC(parse_bin(IN1B("FP32", "[2]", "8"), z, 9), USHER_ERR_PARSE,
                  "add up to 8 bytes, but 9 bytes follow the JSON header");
    EXPECT_ERR_RC(parse_bin(IN1("FP32", "[1]", "[1]"), z, 4), USHER_ERR_PARSE,
                  "add up to 0 bytes, but 4 bytes follow the JSON header");
    /* binary data without the header */
    const char *h = IN1B("FP32", "[1]", "4");
    char body[256];
    snprintf(body, sizeof body, "%s", h);
    EXPECT_ERR_RC(oip_parse_request((const uint8_t *)body, strlen(body), 0, NULL, &R, &err),
                  USHER_ERR_PARSE,
                  "input 'x': binary_data_size needs the binary extension "
                  "(Inference-Header-Content-Length is missing)");
    /* header length past the body, or cutting the JSON */
    size_t hl = strlen(h);
    EXPECT_ERR_RC(oip_parse_request((const uint8_t *)h, hl, hl + 1, NULL, &R, &err),
                  USHER_ERR_PARSE, "Inference-Header-Content-Length");
    snprintf(body, sizeof body, "Inference-Header-Content-Length %zu is out of range (the body "
                                "has %zu bytes)", hl + 1, hl);
    ASSERT_STR_EQ(err.msg, body);
    EXPECT_ERR_RC(oip_parse_request((const uint8_t *)h, hl, UINT64_MAX, NULL, &R, &err),
                  USHER_ERR_PARSE,
                  "Inference-Header-Content-Length 18446744073709551615 is out of range");
    EXPECT_ERR_RC(oip_parse_request((const uint8_t *)h, hl, hl - 2, NULL, &R, &err),
                  USHER_ERR_PARSE, "request JSON: byte");
    /* both or neither */
    EXPECT_ERR_RC(parse_bin("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],"
                            "\"data\":[1],\"parameters\":{\"binary_data_size\":4}}]}",
                            z, 4),
                  USHER_ERR_PARSE,
                  "input 'x': has both \"data\" and parameters.binary_data_size");
    EXPECT_ERR(
        "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1]}]}", USHER_ERR_PARSE,
        "input 'x': has neither \"data\" nor parameters.binary_data_size");
    /* BYTES prefixes must stay inside their tensor, and fill it */
    EXPECT_ERR_RC(parse_bin(IN1B("BYTES", "[2]", "10"), "\2\0\0\0ab\x09\0\0\0", 10),
                  USHER_ERR_PARSE, "input 'x': BYTES element 1: 9 bytes run past the data");
    EXPECT_ERR_RC(parse_bin(IN1B("BYTES", "[2]", "8"), "\2\0\0\0ab\0\0", 8), USHER_ERR_PARSE,
                  "input 'x': BYTES element 1: its 4-byte length runs past the data");
    EXPECT_ERR_RC(parse_bin(IN1B("BYTES", "[1]", "7"), "\2\0\0\0abc", 7), USHER_ERR_PARSE,
                  "input 'x': 1 bytes left after 1 BYTES elements");
    /* a BYTES prefix may not reach into the next input's bytes */
    EXPECT_ERR_RC(parse_bin("{\"inputs\":[{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[1],"
                            "\"parameters\":{\"binary_data_size\":5}},{\"name\":\"t\",\"datatype\":"
                            "\"UINT8\",\"shape\":[1],\"parameters\":{\"binary_data_size\":1}}]}",
                            "\2\0\0\0ab", 6),
                  USHER_ERR_PARSE, "input 's': BYTES element 0: 2 bytes run past the data");
    EXPECT_ERR_RC(parse_bin(IN1B("BOOL", "[3]", "3"), "\1\0\2", 3), USHER_ERR_PARSE,
                  "input 'x': BOOL element 2 is 2, not 0 or 1");
    EXPECT_ERR_RC(parse_bin(IN1B("UINT8", "[1]", "18446744073709551615"), z, 1), USHER_ERR_PARSE,
                  "input 'x': binary_data_size is 18446744073709551615, shape [1] of UINT8 needs 1 "
                  "bytes");
    EXPECT_ERR_RC(parse_bin(IN1B("BYTES", "[1]", "18446744073709551615"), z, 4), USHER_ERR_LIMIT,
                  "input 'x': 18446744073709551615 bytes, more than the limit of 67108864");
}

/* ---- ids, names, unsupported features ----------------------------------------------- */

TEST(id_is_kept_through_a_refusal)
{
    /* PROTO-5: the id is known to the error body even when a later field fails */
    EXPECT_ERR("{\"id\":\"abc-7\",\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP8\",\"shape\":[1],"
               "\"data\":[1]}]}",
               USHER_ERR_PARSE, "input 'x': unknown datatype \"FP8\"");
    ASSERT(R.has_id);
    ASSERT_STR_EQ(R.id, "abc-7");
    EXPECT_ERR("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP8\",\"shape\":[1],\"data\":[1]}],"
               "\"id\":\"\\u00e9\\\"\"}",
               USHER_ERR_PARSE, "unknown datatype");
    ASSERT(R.has_id);
    ASSERT_STR_EQ(R.id, "\xc3\xa9\"");
    EXPECT_ERR("{\"id\":7,\"inputs\":[]}", USHER_ERR_PARSE, "\"id\" must be a string, not a number");
    ASSERT(!R.has_id);
    EXPECT_ERR("{\"id\":\"a\\u0000b\",\"inputs\":[]}", USHER_ERR_PARSE,
               "\"id\" holds a NUL character");
    ASSERT(!R.has_id);
    char body[600];
    char id[300];
    memset(id, 'i', 256);
    id[256] = 0;
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"inputs\":[]}", id);
    EXPECT_ERR(body, USHER_ERR_PARSE, "\"id\" is 256 bytes, at most 255");
    ASSERT(!R.has_id);
    id[255] = 0;
    snprintf(body, sizeof body, "{\"id\":\"%s\",\"inputs\":[]}", id);
    ASSERT_OK(parse(body));
    ASSERT_EQ_U64(strlen(R.id), 255);
    oip_request_free(&R);
    /* a JSON syntax error happens before the id is known */
    EXPECT_ERR("{\"id\":\"q\",\"inputs\":[}", USHER_ERR_PARSE, "request JSON: byte 20: expected a value, found '}'");
    ASSERT(!R.has_id);
}

TEST(names_are_checked)
{
    EXPECT_ERR("{\"inputs\":[{\"name\":\"\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}]}",
               USHER_ERR_PARSE, "inputs[0]: \"name\" is empty");
    EXPECT_ERR("{\"inputs\":[{\"name\":\"a\\nb\",\"datatype\":\"FP32\",\"shape\":[1],"
               "\"data\":[1]}]}",
               USHER_ERR_PARSE, "inputs[0]: \"name\" holds a control character (byte 1)");
    EXPECT_ERR("{\"inputs\":[],\"outputs\":[{\"name\":\"\\u007f\"}]}", USHER_ERR_PARSE,
               "outputs[0]: \"name\" holds a control character (byte 0)");
    char body[512], name[200];
    memset(name, 'n', 128);
    name[128] = 0;
    snprintf(body, sizeof body,
             "{\"inputs\":[{\"name\":\"%s\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}]}",
             name);
    EXPECT_ERR(body, USHER_ERR_PARSE, "inputs[0]: \"name\" is 128 bytes, at most 127");
    name[127] = 0;
    snprintf(body, sizeof body,
             "{\"inputs\":[{\"name\":\"%s\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}]}",
             name);
    ASSERT_OK(parse(body));
    ASSERT_STR_EQ(R.in[0].name, name);
    oip_request_free(&R);
    EXPECT_ERR("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]},"
               "{\"name\":\"y\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]},"
               "{\"name\":\"x\",\"datatype\":\"INT8\",\"shape\":[1],\"data\":[1]}]}",
               USHER_ERR_PARSE, "inputs[2]: input 'x' appears twice (also inputs[0])");
    EXPECT_ERR("{\"inputs\":[],\"outputs\":[{\"name\":\"y\"},{\"name\":\"y\"}]}", USHER_ERR_PARSE,
               "outputs[1]: output 'y' appears twice (also outputs[0])");
    /* names compare after unescaping */
    EXPECT_ERR("{\"inputs\":[],\"outputs\":[{\"name\":\"y\"},{\"name\":\"\\u0079\"}]}",
               USHER_ERR_PARSE, "output 'y' appears twice");
}

TEST(unsupported_features_are_refused)
{
    EXPECT_ERR("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"parameters\":"
               "{\"shared_memory_region\":\"r\",\"shared_memory_byte_size\":4}}]}",
               USHER_ERR_UNSUPPORTED, "input 'x': shared memory is not supported");
    EXPECT_ERR("{\"inputs\":[],\"outputs\":[{\"name\":\"y\",\"parameters\":"
               "{\"shared_memory_region\":\"r\"}}]}",
               USHER_ERR_UNSUPPORTED, "output 'y': shared memory is not supported");
    EXPECT_ERR("{\"inputs\":[],\"outputs\":[{\"name\":\"y\",\"parameters\":"
               "{\"classification\":3}}]}",
               USHER_ERR_UNSUPPORTED, "output 'y': classification is not supported");
}

/* ---- the response ------------------------------------------------------------------ */

static us_tensor tensor(const char *name, us_dtype dt, int rank, const int64_t *dims,
                        const void *data, uint64_t bytes)
{
    return test_tensor(name, dt, rank, dims, (void *)(uintptr_t)data, bytes); /* only read */
}

static us_buf J, B;
static uint64_t HL;

static int respond(const oip_request *req, const us_tensor *out, size_t n)
{
    us_buf_free(&J);
    us_buf_free(&B);
    us_buf_init(&J, 1 << 20);
    us_buf_init(&B, 1 << 20);
    HL = 12345;
    memset(&err, 0, sizeof err);
    return oip_write_response(req, "m", "1", out, n, &J, &B, &HL, &err);
}

TEST(response_values_as_json)
{
    int8_t i8[] = {-128, 0, 127};
    uint64_t u64[] = {UINT64_MAX};
    int64_t i64[] = {INT64_MIN};
    float f32[] = {0.1f, NAN, -INFINITY, FLT_MAX, -0.0f};
    double f64[] = {0.1, 5e-324};
    uint16_t f16[] = {0x3c00, 0x7bff, 0x0001, 0x7c00};
    uint16_t bf[] = {0x3f80, 0x7f7f};
    uint8_t bl[] = {1, 0};
    const uint8_t by[] = {1, 0, 0, 0, '"', 2, 0, 0, 0, 0xff, 'a', 0, 0, 0, 0};
    int64_t d1 = 1, d2 = 2, d3 = 3, d4 = 4, d5 = 5;
    us_tensor out[] = {
        tensor("i8", US_DT_INT8, 1, &d3, i8, 3),       tensor("u64", US_DT_UINT64, 1, &d1, u64, 8),
        tensor("i64", US_DT_INT64, 1, &d1, i64, 8),    tensor("f32", US_DT_FP32, 1, &d5, f32, 20),
        tensor("f64", US_DT_FP64, 1, &d2, f64, 16),    tensor("f16", US_DT_FP16, 1, &d4, f16, 8),
        tensor("bf", US_DT_BF16, 1, &d2, bf, 4),       tensor("b", US_DT_BOOL, 1, &d2, bl, 2),
        tensor("s", US_DT_BYTES, 1, &d3, by, sizeof by),
    };
    ASSERT_OK(respond(NULL, out, sizeof out / sizeof out[0]));
    ASSERT_STR_EQ(
        us_buf_str(&J),
        "{\"model_name\":\"m\",\"model_version\":\"1\",\"outputs\":["
        "{\"name\":\"i8\",\"datatype\":\"INT8\",\"shape\":[3],\"data\":[-128,0,127]},"
        "{\"name\":\"u64\",\"datatype\":\"UINT64\",\"shape\":[1],\"data\":[18446744073709551615]},"
        "{\"name\":\"i64\",\"datatype\":\"INT64\",\"shape\":[1],\"data\":[-9223372036854775808]},"
        "{\"name\":\"f32\",\"datatype\":\"FP32\",\"shape\":[5],"
        "\"data\":[0.100000001,null,null,3.40282347e+38,-0]},"
        "{\"name\":\"f64\",\"datatype\":\"FP64\",\"shape\":[2],"
        "\"data\":[0.10000000000000001,4.9406564584124654e-324]},"
        "{\"name\":\"f16\",\"datatype\":\"FP16\",\"shape\":[4],"
        "\"data\":[1,65504,5.96046448e-08,null]},"
        "{\"name\":\"bf\",\"datatype\":\"BF16\",\"shape\":[2],\"data\":[1,3.38953139e+38]},"
        "{\"name\":\"b\",\"datatype\":\"BOOL\",\"shape\":[2],\"data\":[true,false]},"
        "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[3],"
        "\"data\":[\"\\\"\",\"\\ufffda\",\"\"]}]}");
    ASSERT_EQ_U64(HL, J.len);
    ASSERT_EQ_U64(B.len, 0);
    us_buf_free(&J);
    us_buf_free(&B);
}

/* what the writer prints reads back to the same bits (FLT_MAX included) */
TEST(response_reads_back_as_request)
{
    float f32[] = {FLT_MAX, -FLT_MAX, FLT_TRUE_MIN, FLT_MIN, 0.1f, 16777217.0f, -0.0f};
    uint16_t f16[] = {0x7bff, 0xfbff, 0x0001, 0x03ff, 0x0400, 0x3555};
    uint16_t bf[] = {0x7f7f, 0xff7f, 0x0001, 0x0080, 0x3e4d};
    double f64[] = {DBL_MAX, -DBL_MIN, 5e-324, 1.0 / 3};
    int64_t d7 = 7, d6 = 6, d5 = 5, d4 = 4;
    us_tensor out[] = {tensor("a", US_DT_FP32, 1, &d7, f32, sizeof f32),
                       tensor("b", US_DT_FP16, 1, &d6, f16, sizeof f16),
                       tensor("c", US_DT_BF16, 1, &d5, bf, sizeof bf),
                       tensor("d", US_DT_FP64, 1, &d4, f64, sizeof f64)};
    ASSERT_OK(respond(NULL, out, 4));
    /* "outputs" -> "inputs": the response body as a request */
    char *body = malloc(J.len + 1);
    char *k = strstr(J.data, "\"outputs\":");
    ASSERT(k);
    size_t pre = (size_t)(k - J.data), rest = J.len - pre - 10;
    memcpy(body, J.data, pre);
    memcpy(body + pre, "\"inputs\":", 9);
    memcpy(body + pre + 9, k + 10, rest + 1); /* with the NUL */
    int rc = parse(body);
    free(body);
    us_buf_free(&J);
    us_buf_free(&B);
    ASSERT_OK(rc);
    ASSERT_EQ_U64(R.n_in, 4);
    for (int i = 0; i < 4; i++) {
        if (R.in[i].bytes != out[i].bytes || memcmp(R.in[i].data, out[i].data, out[i].bytes) != 0) {
            oip_request_free(&R);
            FAIL_("%s changed on the way back", out[i].name);
        }
    }
    oip_request_free(&R);
}

TEST(response_selects_outputs_by_name)
{
    int32_t a[] = {1, 2}, b[] = {3}, c[] = {4, 5, 6};
    int64_t d1 = 1, d2 = 2, d3 = 3;
    us_tensor out[] = {tensor("a", US_DT_INT32, 1, &d2, a, 8), tensor("b", US_DT_INT32, 1, &d1, b, 4),
                       tensor("c", US_DT_INT32, 1, &d3, c, 12)};
    ASSERT_OK(parse("{\"id\":\"sel\",\"inputs\":[],\"outputs\":[{\"name\":\"c\"},{\"name\":\"a\"}]}"));
    ASSERT_OK(respond(&R, out, 3));
    ASSERT_STR_EQ(us_buf_str(&J),
                  "{\"model_name\":\"m\",\"model_version\":\"1\",\"id\":\"sel\",\"outputs\":["
                  "{\"name\":\"c\",\"datatype\":\"INT32\",\"shape\":[3],\"data\":[4,5,6]},"
                  "{\"name\":\"a\",\"datatype\":\"INT32\",\"shape\":[2],\"data\":[1,2]}]}");
    oip_request_free(&R);

    /* an output the model does not have: USHER_ERR_NOT_FOUND naming it, nothing written */
    ASSERT_OK(parse("{\"inputs\":[],\"outputs\":[{\"name\":\"a\"},{\"name\":\"zz\"}]}"));
    int rc = respond(&R, out, 3);
    oip_request_free(&R);
    ASSERT_EQ_INT(rc, USHER_ERR_NOT_FOUND);
    ASSERT_EQ_INT(err.code, USHER_ERR_NOT_FOUND);
    ASSERT_STR_EQ(err.msg, "output 'zz' was requested, but the model has no such output");
    ASSERT_EQ_U64(J.len, 0);
    ASSERT_EQ_U64(HL, 0);

    /* no id asked, no id given; no version, no model_version */
    us_buf_free(&J);
    us_buf_free(&B);
    us_buf_init(&J, 1 << 20);
    us_buf_init(&B, 1 << 20);
    ASSERT_OK(oip_write_response(NULL, "m", NULL, out + 1, 1, &J, &B, &HL, &err));
    ASSERT_STR_EQ(us_buf_str(&J),
                  "{\"model_name\":\"m\",\"outputs\":[{\"name\":\"b\",\"datatype\":\"INT32\","
                  "\"shape\":[1],\"data\":[3]}]}");

    /* a tensor whose bytes disagree with its shape is refused, not written */
    us_tensor bad = tensor("a", US_DT_INT32, 1, &d3, a, 8);
    rc = respond(NULL, &bad, 1);
    ASSERT_EQ_INT(rc, USHER_ERR_INVALID);
    ASSERT_CONTAINS(err.msg, "output 'a': 8 bytes, its shape needs 12");
    /* a response over its buffer cap */
    us_buf_free(&J);
    us_buf_free(&B);
    us_buf_init(&J, 32);
    us_buf_init(&B, 32);
    rc = oip_write_response(NULL, "m", "1", out, 3, &J, &B, &HL, &err);
    ASSERT_EQ_INT(rc, USHER_ERR_LIMIT);
    ASSERT_CONTAINS(err.msg, "the response is larger than its buffer (JSON cap 32");
    ASSERT_EQ_U64(HL, 0);
    us_buf_free(&J);
    us_buf_free(&B);
}

TEST(response_binary_framing)
{
    int32_t a[] = {1, 2}, c[] = {4, 5, 6};
    const uint8_t s[] = {2, 0, 0, 0, 'h', 'i'};
    int64_t d1 = 1, d2 = 2, d3 = 3;
    us_tensor out[] = {tensor("a", US_DT_INT32, 1, &d2, a, 8), tensor("s", US_DT_BYTES, 1, &d1, s, 6),
                       tensor("c", US_DT_INT32, 1, &d3, c, 12)};
    /* binary by default, c as JSON: the tail is a then s, in output order */
    ASSERT_OK(parse("{\"id\":\"7\",\"parameters\":{\"binary_data_output\":true},\"inputs\":[],"
                    "\"outputs\":[{\"name\":\"a\"},{\"name\":\"c\",\"parameters\":"
                    "{\"binary_data\":false}},{\"name\":\"s\"}]}"));
    ASSERT_OK(respond(&R, out, 3));
    oip_request_free(&R);
    ASSERT_STR_EQ(us_buf_str(&J),
                  "{\"model_name\":\"m\",\"model_version\":\"1\",\"id\":\"7\",\"outputs\":["
                  "{\"name\":\"a\",\"datatype\":\"INT32\",\"shape\":[2],"
                  "\"parameters\":{\"binary_data_size\":8}},"
                  "{\"name\":\"c\",\"datatype\":\"INT32\",\"shape\":[3],\"data\":[4,5,6]},"
                  "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[1],"
                  "\"parameters\":{\"binary_data_size\":6}}]}");
    ASSERT_EQ_U64(HL, J.len);
    ASSERT_EQ_U64(B.len, 14);
    ASSERT(memcmp(B.data, a, 8) == 0 && memcmp(B.data + 8, s, 6) == 0);

    /* JSON by default, one output binary by its own parameter */
    ASSERT_OK(parse("{\"inputs\":[],\"outputs\":[{\"name\":\"c\",\"parameters\":"
                    "{\"binary_data\":true}},{\"name\":\"a\"}]}"));
    ASSERT_OK(respond(&R, out, 3));
    oip_request_free(&R);
    ASSERT_CONTAINS(us_buf_str(&J), "{\"name\":\"c\",\"datatype\":\"INT32\",\"shape\":[3],"
                                    "\"parameters\":{\"binary_data_size\":12}},"
                                    "{\"name\":\"a\",\"datatype\":\"INT32\",\"shape\":[2],"
                                    "\"data\":[1,2]}");
    ASSERT_EQ_U64(HL, J.len);
    ASSERT_EQ_U64(B.len, 12);
    ASSERT(memcmp(B.data, c, 12) == 0);

    /* all outputs binary (none named): the whole tail, in model order */
    ASSERT_OK(parse("{\"parameters\":{\"binary_data_output\":true},\"inputs\":[]}"));
    ASSERT_OK(respond(&R, out, 3));
    oip_request_free(&R);
    ASSERT_EQ_U64(B.len, 26);
    ASSERT(memcmp(B.data + 14, c, 12) == 0);
    ASSERT_EQ_U64(HL, J.len);
    ASSERT(strstr(us_buf_str(&J), "\"data\"") == NULL);
    us_buf_free(&J);
    us_buf_free(&B);
}

/* ---- the error body (PROTO-2, PROTO-5) -------------------------------------------- */

/* b holds {"error": <string>, ["id": <string>]} and nothing else; returns the error text */
static bool error_body_ok(const us_buf *b, const char *id, char *msg, size_t cap)
{
    if (!us_buf_ok(b) || b->len == 0 || b->len > 4096)
        return false;
    us_jsonr_doc *d = NULL;
    usher_error e;
    if (us_jsonr_parse(b->data, b->len, NULL, &d, NULL, &e) != USHER_OK)
        return false;
    us_jsonr_val root = us_jsonr_root(d), m = us_jsonr_get(d, root, "error");
    bool ok = us_jsonr_type_of(d, m) == US_JSONR_STRING &&
              us_jsonr_len(d, root) == (id ? 2u : 1u);
    if (ok)
        us_jsonr_str_copy(d, m, msg, cap);
    if (ok && id)
        ok = us_jsonr_str_eq(d, us_jsonr_get(d, root, "id"), id, strlen(id));
    us_jsonr_free(d);
    return ok;
}

TEST(error_body_is_bounded_json_with_the_id)
{
    us_buf b;
    char got[8192];
    us_buf_init(&b, 1 << 16);
    oip_write_error(&b, "input 'x': shape[0] is -5, a dim must be >= 0", "r\"1");
    ASSERT_STR_EQ(us_buf_str(&b),
                  "{\"error\":\"input 'x': shape[0] is -5, a dim must be >= 0\",\"id\":\"r\\\"1\"}");
    us_buf_free(&b);
    us_buf_init(&b, 1 << 16);
    oip_write_error(&b, NULL, NULL);
    ASSERT_STR_EQ(us_buf_str(&b), "{\"error\":\"\"}");
    us_buf_free(&b);

    /* a message of exactly the budget is kept whole: 4096 bytes in all */
    static char msg[10000];
    memset(msg, 'a', 4084);
    msg[4084] = 0;
    us_buf_init(&b, 1 << 16);
    oip_write_error(&b, msg, NULL);
    ASSERT_EQ_U64(b.len, 4096);
    ASSERT(error_body_ok(&b, NULL, got, sizeof got));
    ASSERT_STR_EQ(got, msg);
    us_buf_free(&b);
    /* one byte more: cut, marked "...", still 4096 */
    msg[4084] = 'a';
    msg[4085] = 0;
    us_buf_init(&b, 1 << 16);
    oip_write_error(&b, msg, NULL);
    ASSERT_EQ_U64(b.len, 4096);
    ASSERT(error_body_ok(&b, NULL, got, sizeof got));
    ASSERT_EQ_U64(strlen(got), 4084);
    ASSERT(strcmp(got + 4081, "...") == 0);
    us_buf_free(&b);

    /* escapes, multi-byte characters and invalid bytes count as what they become; a 255-byte id
     * full of quotes and control characters is echoed whole */
    char id[256];
    for (int k = 0; k < 255; k++)
        id[k] = k % 3 == 0 ? '"' : k % 3 == 1 ? '\x01' : 'z';
    id[255] = 0;
    static const char *const pieces[] = {"\xc3\xa9", "\"", "\x1f", "\xff", "\xe2\x82\xac", "q"};
    for (int p = 0; p < 6; p++) {
        size_t o = 0;
        while (o + 4 < sizeof msg) {
            size_t l = strlen(pieces[(o + (size_t)p) % 6]);
            memcpy(msg + o, pieces[(o + (size_t)p) % 6], l);
            o += l;
        }
        msg[o] = 0;
        us_buf_init(&b, 1 << 16);
        oip_write_error(&b, msg, id);
        if (!error_body_ok(&b, id, got, sizeof got))
            FAIL_("error body %d: %zu bytes, not <= 4 KiB of JSON with the id", p, b.len);
        ASSERT(b.len > 4000);
        ASSERT(strcmp(got + strlen(got) - 3, "...") == 0);
        us_buf_free(&b);
    }
    /* an id over 255 bytes is cut at 255 */
    char longid[400];
    memset(longid, 'k', 399);
    longid[399] = 0;
    us_buf_init(&b, 1 << 16);
    oip_write_error(&b, "m", longid);
    longid[255] = 0;
    ASSERT(error_body_ok(&b, longid, got, sizeof got));
    us_buf_free(&b);
}

/* the error bodies of real refusals: the parser's message and the id, <= 4 KiB */
TEST(refusals_give_error_bodies)
{
    static const char *const bodies[] = {
        "{\"id\":\"e1\",\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[-5],"
        "\"data\":[1]}]}",
        "{\"id\":\"e2\",\"inputs\":[{\"name\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
        "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
        "\",\"datatype\":\"INT8\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"
        "\"data\":[300]}]}",
        "{\"id\":\"e3\",\"inputs\":[{\"name\":\"x\",\"datatype\":\"\\u0001\\u0002BAD\","
        "\"shape\":[1],\"data\":[1]}]}",
    };
    static const char *const want[] = {"input 'x': shape[0] is -5, a dim must be >= 0",
                                       "data[0] is 300, out of range for INT8",
                                       "input 'x': unknown datatype \"??BAD\""};
    for (int i = 0; i < 3; i++) {
        int rc = parse(bodies[i]);
        if (rc == USHER_OK)
            oip_request_free(&R);
        ASSERT_EQ_INT(rc, USHER_ERR_PARSE);
        ASSERT_CONTAINS(err.msg, want[i]);
        ASSERT(R.has_id);
        us_buf b;
        us_buf_init(&b, 1 << 16);
        oip_write_error(&b, err.msg, R.id);
        char got[4096];
        bool ok = error_body_ok(&b, R.id, got, sizeof got);
        us_buf_free(&b);
        ASSERT(ok);
        ASSERT_STR_EQ(got, err.msg);
    }
}


/* ---- content codings (issue 17): gzip and deflate bodies, bounded ---------- */

TEST(gzip_seeds_and_mutants_through_fuzz_body)
{
    seed seeds[MAX_SEEDS];
    int n = test_load_dir(test_path(test_source_dir(), "fuzz/corpus-gzip"), "", seeds, MAX_SEEDS);
    ASSERT(n >= 10);
    int n_ok = 0;
    for (int i = 0; i < n; i++) {
        int ok = usher_fuzz_gzip_one(seeds[i].p, seeds[i].n);
        bool want_ok = starts(seeds[i].name, "ok-");
        if (!want_ok && !starts(seeds[i].name, "bad-"))
            FAIL_("seed %s: its name says neither ok- nor bad-", seeds[i].name);
        if (ok != want_ok)
            FAIL_("seed %s was %s", seeds[i].name, ok ? "decoded" : "refused");
        n_ok += ok;
    }
    const int rounds = 20000;
    uint8_t *m = malloc(2 * SEED_MAX_BYTES);
    ASSERT(m);
    static const char *const words[] = {"\x1f\x8b", "\x78\x9c", "\xff\xff", "\x01"};
    test_mutator mu = {"\x01\x1f\x8b\x78\x9c\xff", words, 4, 16, &rng_state};
    int dec = 0;
    for (int r = 0; r < rounds; r++) {
        const seed *a = &seeds[rnd() % (uint64_t)n], *b = &seeds[rnd() % (uint64_t)n];
        size_t len = test_mutate(&mu, a, b, m, 2 * SEED_MAX_BYTES);
        dec += usher_fuzz_gzip_one(m, len);
    }
    free(m);
    printf("  %d seeds (%d decode); %d mutants: %d decoded, %d refused\n", n, n_ok, rounds, dec,
           rounds - dec);
    test_blobs_free(seeds, n);
    ASSERT(dec > 0 && dec < rounds);
    ASSERT_EQ_U64(us_err_missing_detail_count(), 0);
}

static size_t zpack(int wbits, const void *in, size_t n, uint8_t *out, size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 9, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, Z_FINISH);
    size_t got = cap - zs.avail_out;
    deflateEnd(&zs);
    return rc == Z_STREAM_END ? got : 0;
}

TEST(inflate_limits_at_and_over)
{
    static uint8_t plain[100000], z[200000];
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = (uint8_t)(i * 7 % 251);
    const int wb[3] = {15 + 16, 15, -15};
    const oip_coding cd[3] = {OIP_GZIP, OIP_DEFLATE, OIP_DEFLATE};
    for (int k = 0; k < 3; k++) {
        size_t zn = zpack(wb[k], plain, sizeof plain, z, sizeof z);
        ASSERT(zn > 0);
        uint8_t *out;
        size_t n;
        /* at the limit: decoded, byte for byte */
        ASSERT_OK(oip_inflate(cd[k], z, zn, sizeof plain, &out, &n, &err));
        ASSERT_EQ_U64(n, sizeof plain);
        ASSERT(memcmp(out, plain, n) == 0);
        us_free(out);
        /* one byte under: over the limit, nothing kept */
        ASSERT_EQ_INT(oip_inflate(cd[k], z, zn, sizeof plain - 1, &out, &n, &err), USHER_ERR_LIMIT);
        ASSERT(out == NULL && n == 0);
        ASSERT_CONTAINS(err.msg, "over the limit");
        /* truncated, and with bytes after its end */
        ASSERT_EQ_INT(oip_inflate(cd[k], z, zn - 5, sizeof plain, &out, &n, &err), USHER_ERR_PARSE);
        memcpy(z + zn, "junk", 4);
        ASSERT_EQ_INT(oip_inflate(cd[k], z, zn + 4, sizeof plain, &out, &n, &err), USHER_ERR_PARSE);
    }
    /* a bomb: 64 MiB of zeros in ~64 KiB, against a 1 MiB limit, stops there */
    size_t big = 64u << 20;
    uint8_t *zeros = calloc(1, big), *bz = malloc(1 << 20);
    ASSERT(zeros && bz);
    size_t bn = zpack(15 + 16, zeros, big, bz, 1 << 20);
    free(zeros);
    ASSERT(bn > 0 && bn < (1 << 20));
    us_alloc_reset_peak();
    size_t base = us_alloc_live_bytes();
    uint8_t *out;
    size_t n;
    ASSERT_EQ_INT(oip_inflate(OIP_GZIP, bz, bn, 1 << 20, &out, &n, &err), USHER_ERR_LIMIT);
    printf("  a %zu-byte gzip of 64 MiB: refused at a 1 MiB limit, peak %zu KiB allocated\n", bn,
           (us_alloc_peak_bytes() - base) / 1024);
    ASSERT(us_alloc_peak_bytes() - base < (2u << 20));
    free(bz);
    /* not gzip at all */
    ASSERT_EQ_INT(oip_inflate(OIP_GZIP, (const uint8_t *)"{}", 2, 100, &out, &n, &err),
                  USHER_ERR_PARSE);
    ASSERT_CONTAINS(err.msg, "gzip header");
}

TEST(content_codings_named_and_accepted)
{
    ASSERT_EQ_INT(oip_coding_parse(NULL), OIP_IDENTITY);
    ASSERT_EQ_INT(oip_coding_parse(""), OIP_IDENTITY);
    ASSERT_EQ_INT(oip_coding_parse("identity"), OIP_IDENTITY);
    ASSERT_EQ_INT(oip_coding_parse("GZip"), OIP_GZIP);
    ASSERT_EQ_INT(oip_coding_parse("x-gzip"), OIP_GZIP);
    ASSERT_EQ_INT(oip_coding_parse(" deflate "), OIP_DEFLATE);
    ASSERT_EQ_INT(oip_coding_parse("br"), -1);
    ASSERT_EQ_INT(oip_coding_parse("gzip, gzip"), -1);
    ASSERT_EQ_INT(oip_accept_coding(NULL), OIP_IDENTITY);
    ASSERT_EQ_INT(oip_accept_coding("gzip"), OIP_GZIP);
    ASSERT_EQ_INT(oip_accept_coding("deflate"), OIP_DEFLATE);
    ASSERT_EQ_INT(oip_accept_coding("gzip, deflate"), OIP_GZIP);
    ASSERT_EQ_INT(oip_accept_coding("gzip;q=0.5, deflate"), OIP_DEFLATE);
    ASSERT_EQ_INT(oip_accept_coding("gzip;q=0, deflate;q=0"), OIP_IDENTITY);
    ASSERT_EQ_INT(oip_accept_coding("br, identity"), OIP_IDENTITY);
    ASSERT_EQ_INT(oip_accept_coding("*"), OIP_GZIP);
    ASSERT_EQ_INT(oip_accept_coding("gzip;q=0, *"), OIP_DEFLATE);
    /* what oip_deflate writes, oip_inflate reads back, both codings, two parts */
    const char *a = "{\"model_name\":\"m\"}", *b = "\x01\x02\x03\x00";
    for (int k = 0; k < 2; k++) {
        oip_coding c = k ? OIP_DEFLATE : OIP_GZIP;
        uint8_t *z, *out;
        size_t zn, n;
        ASSERT_OK(oip_deflate(c, a, strlen(a), b, 4, &z, &zn, &err));
        ASSERT_OK(oip_inflate(c, z, zn, 1000, &out, &n, &err));
        ASSERT_EQ_U64(n, strlen(a) + 4);
        ASSERT(memcmp(out, a, strlen(a)) == 0 && memcmp(out + strlen(a), b, 4) == 0);
        us_free(z);
        us_free(out);
    }
}

TEST_MAIN(TEST_ENTRY(seeds_and_mutants_through_fuzz_body), TEST_ENTRY(past_findings_stay_fixed),
          TEST_ENTRY(every_datatype_decodes_exactly), TEST_ENTRY(fp16_and_bf16_rounding),
          TEST_ENTRY(bytes_layout_is_length_prefixed), TEST_ENTRY(request_fields_are_read),
          TEST_ENTRY(truncated_and_malformed_json), TEST_ENTRY(non_finite_numbers_refused),
          TEST_ENTRY(wrong_types_name_the_field), TEST_ENTRY(shapes_and_overflow_vectors),
          TEST_ENTRY(element_count_must_match_shape), TEST_ENTRY(integer_values_out_of_range),
          TEST_ENTRY(limits_at_and_over), TEST_ENTRY(binary_inputs_are_split_in_order),
          TEST_ENTRY(binary_size_mismatches), TEST_ENTRY(id_is_kept_through_a_refusal),
          TEST_ENTRY(names_are_checked), TEST_ENTRY(unsupported_features_are_refused),
          TEST_ENTRY(response_values_as_json), TEST_ENTRY(response_reads_back_as_request),
          TEST_ENTRY(response_selects_outputs_by_name), TEST_ENTRY(response_binary_framing),
          TEST_ENTRY(error_body_is_bounded_json_with_the_id), TEST_ENTRY(refusals_give_error_bodies),
          TEST_ENTRY(gzip_seeds_and_mutants_through_fuzz_body),
          TEST_ENTRY(inflate_limits_at_and_over), TEST_ENTRY(content_codings_named_and_accepted))
