/*
 * test_json.c - layer 1: the bounded JSON reader (src/core/json.c).
 *
 * Hand-written accept and reject suites in the manner of JSONTestSuite
 * (y_/n_ cases: structure, numbers, strings, escapes, UTF-8), the error
 * offsets, depth at the limit and one past it (and a deep limit that would
 * break a recursive parser), exact 64-bit integers and their overflow,
 * double range and rounding, duplicate keys after unescaping, every
 * accessor, a 1M-element array with the memory it costs, the tape's worst
 * cases against the 2-3x budget, and a failure of each allocation in turn.
 */
#include <math.h>
#include <stdbool.h>

#include "core/err.h"
#include "core/json.h"
#include "test.h"

static int parse_n(const char *s, size_t n, const us_jsonr_limits *lim, us_jsonr_doc **d,
                   size_t *off, usher_error *err)
{
    return us_jsonr_parse(s, n, lim, d, off, err);
}

/* valid documents: each must parse and hold one root */
static const char *const accept[] = {
    "[]", "{}", "0", "-0", "1", "-1", "\"\"", "true", "false", "null", " [ ] ", "\t\n\r[1]\r\n",
    "[1,2,3]", "[[],[[]],{}]", "{\"a\":1}", "{\"a\":{\"b\":[1,{\"c\":null}]}}",
    "[1.5,-2.25e3,3E-2,4e+1,0.0,-0.0,1e0]", "[123456789012345678901234567890]",
    "[1e308]", "[-1.7976931348623157e308]", "[1e-400]", "[0e99999999999999999999]",
    "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", "[\"\\u0000\"]", "[\"\\u00e9\\u20ac\"]",
    "[\"\\ud83d\\ude00\"]", "[\"\\uD834\\uDD1E\"]", "[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]",
    "[\"\xef\xbf\xbf\"]", "[\"\xf4\x8f\xbf\xbf\"]", "[\"\x7f\"]", "{\"\":0}",
    "{\"a\":1,\"b\":1,\"A\":1}", "{\"a\":{\"a\":{\"a\":1}}}", "[{\"a\":1},{\"a\":2}]",
    "{\"\\u0061b\":1,\"ab\\u0000\":2}", "[true,false,null]", "\"top\"", "12345",
    "[-9223372036854775808,18446744073709551615]",
};

typedef struct bad {
    const char *text;
    size_t off;        /* expected error offset */
    const char *needle; /* in the message */
} bad;

/* invalid documents, with where and why */
static const bad reject[] = {
    {"", 0, "found the end"},
    {" ", 1, "found the end"},
    {"[", 1, "found the end"},
    {"[1", 2, "expected ',' or ']'"},
    {"[1,]", 3, "found ']'"},
    {"[1,,2]", 3, "found ','"},
    {"[,1]", 1, "found ','"},
    {"{\"a\":1,}", 7, "expected a string key"},
    {"{,}", 1, "expected a string key"},
    {"{\"a\" 1}", 5, "expected ':'"},
    {"{\"a\":}", 5, "found '}'"},
    {"{'a':1}", 1, "expected a string key"},
    {"{a:1}", 1, "expected a string key"},
    {"{1:1}", 1, "expected a string key"},
    {"[1}", 2, "expected ',' or ']'"},
    {"{\"a\":1]", 6, "expected ',' or '}'"},
    {"[]]", 2, "after the JSON value"},
    {"[] []", 3, "after the JSON value"},
    {"1 2", 2, "after the JSON value"},
    {"[1] x", 4, "after the JSON value"},
    {"[01]", 1, "leading zero"},
    {"[-01]", 2, "leading zero"},
    {"[+1]", 1, "found '+'"},
    {"[-]", 2, "expected a digit"},
    {"[1.]", 3, "after the decimal point"},
    {"[.5]", 1, "found '.'"},
    {"[1e]", 3, "exponent"},
    {"[1e+]", 4, "exponent"},
    {"[0x10]", 2, "expected ','"},
    {"[1e309]", 1, "out of range"},
    {"[-1e400]", 1, "out of range"},
    {"[123e99999999999999999]", 1, "out of range"},
    {"[NaN]", 1, "found 'N'"},
    {"[Infinity]", 1, "found 'I'"},
    {"[-Infinity]", 2, "expected a digit"},
    {"[tru]", 1, "'true'"},
    {"[nul]", 1, "'null'"},
    {"[True]", 1, "found 'T'"},
    {"[\"abc]", 6, "unterminated string"},
    {"[\"abc", 5, "unterminated string"},
    {"[\"a\\", 4, "unterminated string"},
    {"[\"\\x\"]", 2, "invalid escape"},
    {"[\"\\u12\"]", 2, "4 hex digits"},
    {"[\"\\u12G4\"]", 2, "4 hex digits"},
    {"[\"\\ud800\"]", 2, "lone high surrogate"},
    {"[\"\\ud800x\"]", 2, "lone high surrogate"},
    {"[\"\\ud800\\u0041\"]", 2, "lone high surrogate"},
    {"[\"\\ud800\\ud800\"]", 2, "lone high surrogate"},
    {"[\"\\udc00\"]", 2, "lone low surrogate"},
    {"[\"\\udfff\\ud800\"]", 2, "lone low surrogate"},
    {"[\"a\tb\"]", 3, "control character 0x09"},
    {"[\"\n\"]", 2, "control character"},
    {"[\"\xc0\x80\"]", 2, "invalid UTF-8"},         /* overlong NUL */
    {"[\"\xe0\x80\xaf\"]", 2, "invalid UTF-8"},     /* overlong '/' */
    {"[\"\xed\xa0\x80\"]", 2, "invalid UTF-8"},     /* encoded surrogate */
    {"[\"\xf4\x90\x80\x80\"]", 2, "invalid UTF-8"}, /* above U+10FFFF */
    {"[\"\xf5\x80\x80\x80\"]", 2, "invalid UTF-8"},
    {"[\"\x80\"]", 2, "invalid UTF-8"},             /* stray continuation */
    {"[\"a\xc3\"]", 3, "invalid UTF-8"},            /* truncated */
    {"[\"\xe2\x82\"]", 2, "invalid UTF-8"},
    {"[\"\xff\"]", 2, "invalid UTF-8"},
    {"\xef\xbb\xbf[]", 0, "found byte 0xef"},       /* BOM */
    {"/* c */ []", 0, "found '/'"},
    {"[1] // c", 4, "after the JSON value"},
    {"[\f]", 1, "found byte 0x0c"},                 /* form feed is not whitespace */
    {"{\"a\":1,\"a\":2}", 7, "duplicate key \"a\""},
    {"{\"a\":1,\"\\u0061\":2}", 7, "duplicate key \"a\""},
    {"{\"x\":{\"k\":1,\"j\":2,\"k\":3}}", 18, "duplicate key \"k\""},
    {"{\"\\u0000\":1,\"\\u0000\":2}", 12, "duplicate key \"?\""},
};

TEST(accept_suite)
{
    usher_error err;
    for (size_t i = 0; i < sizeof accept / sizeof accept[0]; i++) {
        us_jsonr_doc *d = NULL;
        size_t off = 99;
        int rc = parse_n(accept[i], strlen(accept[i]), NULL, &d, &off, &err);
        if (rc != USHER_OK)
            FAIL_("refused %s: %s", accept[i], err.msg);
        ASSERT(us_jsonr_root(d) == 0);
        ASSERT(us_jsonr_type_of(d, 0) != US_JSONR_INVALID);
        ASSERT(us_jsonr_next(d, 0) == US_JSONR_NONE);
        us_jsonr_free(d);
    }
}

TEST(reject_suite)
{
    for (size_t i = 0; i < sizeof reject / sizeof reject[0]; i++) {
        const bad *b = &reject[i];
        usher_error err;
        us_jsonr_doc *d = (us_jsonr_doc *)&err; /* must come back NULL */
        size_t off = 12345;
        int rc = parse_n(b->text, strlen(b->text), NULL, &d, &off, &err);
        if (rc != USHER_ERR_PARSE)
            FAIL_("case %zu %s: status %d (%s)", i, b->text, rc, err.msg);
        ASSERT(d == NULL);
        ASSERT_EQ_INT(err.code, rc);
        if (off != b->off)
            FAIL_("case %zu %s: offset %zu, expected %zu (%s)", i, b->text, off, b->off, err.msg);
        ASSERT_CONTAINS(err.msg, b->needle);
        char at[32];
        snprintf(at, sizeof at, "byte %zu: ", b->off);
        ASSERT(strncmp(err.msg, at, strlen(at)) == 0);
    }
    /* NUL bytes: after the value, and raw inside a string */
    usher_error err;
    us_jsonr_doc *d = NULL;
    size_t off = 0;
    ASSERT_EQ_INT(us_jsonr_parse("[1]\0", 4, NULL, &d, &off, &err), USHER_ERR_PARSE);
    ASSERT_EQ_U64(off, 3);
    ASSERT_EQ_INT(us_jsonr_parse("[\"a\0\"]", 6, NULL, &d, &off, &err), USHER_ERR_PARSE);
    ASSERT_EQ_U64(off, 3);
    ASSERT_CONTAINS(err.msg, "control character 0x00");
    ASSERT_EQ_U64(us_err_missing_detail_count(), 0);
}

/* n nested arrays (or objects with key "k") */
static char *nested(int n, bool obj, size_t *len)
{
    size_t cap = (size_t)n * 6 + 8, o = 0;
    char *s = malloc(cap);
    for (int i = 0; i < n; i++) {
        if (obj) {
            memcpy(s + o, "{\"k\":", 5);
            o += 5;
        } else {
            s[o++] = '[';
        }
    }
    s[o++] = '1';
    for (int i = 0; i < n; i++)
        s[o++] = obj ? '}' : ']';
    s[o] = 0;
    *len = o;
    return s;
}

TEST(depth_at_limit_and_one_past)
{
    usher_error err;
    for (int obj = 0; obj < 2; obj++) {
        for (int lim_depth = 1; lim_depth <= 100; lim_depth += 99) {
            us_jsonr_limits lim = us_jsonr_default_limits();
            lim.max_depth = lim_depth;
            size_t len;
            char *s = nested(lim_depth, obj, &len);
            us_jsonr_doc *d = NULL;
            ASSERT_OK(us_jsonr_parse(s, len, &lim, &d, NULL, &err));
            us_jsonr_free(d);
            free(s);
            s = nested(lim_depth + 1, obj, &len);
            size_t off = 0;
            int rc = us_jsonr_parse(s, len, &lim, &d, &off, &err);
            free(s);
            ASSERT_EQ_INT(rc, USHER_ERR_PARSE); /* a malformed request (400), not a size (413) */
            ASSERT(d == NULL);
            ASSERT_CONTAINS(err.msg, "nesting deeper than the limit");
            ASSERT_EQ_U64(off, (size_t)lim_depth * (obj ? 5 : 1));
        }
    }
    /* the default is 100 */
    size_t len;
    char *s = nested(101, false, &len);
    us_jsonr_doc *d = NULL;
    ASSERT_EQ_INT(us_jsonr_parse(s, len, NULL, &d, NULL, &err), USHER_ERR_PARSE);
    free(s);
    /* a deep limit: 100,000 levels cost no C stack */
    us_jsonr_limits lim = {0, US_JSONR_MAX_DEPTH};
    s = nested(US_JSONR_MAX_DEPTH, false, &len);
    ASSERT_OK(us_jsonr_parse(s, len, &lim, &d, NULL, &err));
    us_jsonr_flat fl;
    us_jsonr_flat_init(&fl, d, 0);
    us_jsonr_val leaf = us_jsonr_flat_next(&fl);
    ASSERT_EQ_INT(us_jsonr_type_of(d, leaf), US_JSONR_NUMBER);
    ASSERT(us_jsonr_flat_next(&fl) == US_JSONR_NONE);
    us_jsonr_free(d);
    free(s);
    /* unclosed deep nesting at the limit is a syntax error, not a crash */
    s = nested(1000, false, &len);
    lim.max_depth = 1000;
    ASSERT_EQ_INT(us_jsonr_parse(s, 1000, &lim, &d, NULL, &err), USHER_ERR_PARSE);
    free(s);
}

TEST(length_limit)
{
    usher_error err;
    us_jsonr_limits lim = {7, 0};
    us_jsonr_doc *d = NULL;
    ASSERT_OK(us_jsonr_parse("[1,2,3]", 7, &lim, &d, NULL, &err));
    us_jsonr_free(d);
    size_t off = 0;
    ASSERT_EQ_INT(us_jsonr_parse("[1,2,3] ", 8, &lim, &d, &off, &err), USHER_ERR_LIMIT);
    ASSERT_EQ_U64(off, 7);
    ASSERT_CONTAINS(err.msg, "8 bytes, more than the limit of 7");
    ASSERT(US_JSONR_MAX_LEN == (1u << 30) - 1);
}

static bool num_of(const char *text, us_jsonr_num *n)
{
    usher_error err;
    us_jsonr_doc *d = NULL;
    if (us_jsonr_parse(text, strlen(text), NULL, &d, NULL, &err))
        return false;
    bool ok = us_jsonr_number(d, us_jsonr_root(d), n);
    us_jsonr_free(d);
    return ok;
}

TEST(integers_exact_in_64_bits)
{
    us_jsonr_num n;
    ASSERT(num_of("9223372036854775807", &n));
    ASSERT(n.integer && n.fits_i64 && n.fits_u64 && n.i == INT64_MAX && n.u == INT64_MAX);
    ASSERT(num_of("9223372036854775808", &n));
    ASSERT(n.integer && !n.fits_i64 && n.fits_u64 && n.u == (uint64_t)INT64_MAX + 1);
    ASSERT(num_of("18446744073709551615", &n));
    ASSERT(n.integer && !n.fits_i64 && n.fits_u64 && n.u == UINT64_MAX);
    ASSERT(n.d == 18446744073709551616.0);
    ASSERT(num_of("18446744073709551616", &n));
    ASSERT(n.integer && !n.fits_i64 && !n.fits_u64 && n.d == 18446744073709551616.0);
    ASSERT(num_of("-9223372036854775808", &n));
    ASSERT(n.fits_i64 && !n.fits_u64 && n.i == INT64_MIN && n.negative);
    ASSERT(num_of("-9223372036854775809", &n));
    ASSERT(n.integer && !n.fits_i64 && !n.fits_u64 && n.d == -9223372036854775808.0);
    ASSERT(num_of("-5", &n));
    ASSERT(n.fits_i64 && n.i == -5 && !n.fits_u64 && n.d == -5.0);
    ASSERT(num_of("-0", &n));
    ASSERT(n.fits_i64 && n.i == 0 && n.fits_u64 && n.u == 0 && n.negative && signbit(n.d));
    ASSERT(num_of("1152921504606846978", &n)); /* 2^60 + 2 */
    ASSERT(n.fits_i64 && n.i == (INT64_C(1) << 60) + 2);
    ASSERT(num_of("1.5", &n));
    ASSERT(!n.integer && !n.fits_i64 && !n.fits_u64 && n.d == 1.5);
    ASSERT(num_of("1e2", &n));
    ASSERT(!n.integer && !n.fits_i64 && n.d == 100.0);
    ASSERT(num_of("99999999999999999999999999999999999999", &n));
    ASSERT(n.integer && !n.fits_u64 && n.d == 1e38);
}

TEST(doubles_finite_and_correctly_rounded)
{
    static const char *const cases[] = {
        "0.1", "3.141592653589793", "2.2250738585072014e-308", "4.9406564584124654e-324",
        "1.7976931348623157e308", "123456789.123456789e-5", "0.000001", "9007199254740993",
        "1.00000000000000011102230246251565404236316680908203125",
        "1.00000000000000011102230246251565404236316680908203124",
        "1.00000000000000011102230246251565404236316680908203126", "-2.5E-3", "6.02214076e23",
    };
    us_jsonr_num n;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ASSERT(num_of(cases[i], &n));
        if (n.d != strtod(cases[i], NULL))
            FAIL_("%s: %.17g, strtod says %.17g", cases[i], n.d, strtod(cases[i], NULL));
    }
    /* a halfway point spelled with 1,000 extra digits: the sticky digit keeps the rounding */
    size_t big = 2000;
    char *s = malloc(big + 64);
    strcpy(s, "1.00000000000000011102230246251565404236316680908203125");
    size_t l = strlen(s);
    memset(s + l, '0', big);
    s[l + big] = 0;
    ASSERT(num_of(s, &n));
    ASSERT(n.d == strtod(s, NULL));
    s[l + big - 1] = '1';
    ASSERT(num_of(s, &n));
    ASSERT(n.d == strtod(s, NULL) && n.d == 1.0000000000000002);
    /* many leading zeros in the fraction, many digits after them */
    memcpy(s, "0.", 2);
    memset(s + 2, '0', 300);
    memcpy(s + 302, "12345", 5);
    memset(s + 307, '6', 1000);
    s[1307] = 0;
    ASSERT(num_of(s, &n));
    ASSERT(n.d == strtod(s, NULL) && n.d > 0);
    free(s);
    ASSERT(num_of("1e-400", &n));
    ASSERT(n.d == 0.0);
    ASSERT(num_of("-1e-400", &n));
    ASSERT(n.d == 0.0 && signbit(n.d));
    ASSERT(!num_of("1.8e308", &n));
    ASSERT(!num_of("1e99999999999999999999999", &n));
    ASSERT(num_of("0e99999999999999999999999", &n));
    ASSERT(n.d == 0.0);
}

TEST(doubles_fast_path_matches_strtod)
{
    /* random decimals of 1..20 significant digits, a point anywhere, exponents
     * -30..30 (the fast path's range and beyond it): every one the same double
     * as strtod, to the bit */
    uint64_t st = 0x5EED;
    us_jsonr_num n;
    char s[96];
    for (int k = 0; k < 200000; k++) {
        int digits = 1 + (int)(test_splitmix(&st) % 20), o = 0;
        if (test_splitmix(&st) & 1)
            s[o++] = '-';
        int point = (int)(test_splitmix(&st) % (uint64_t)(digits + 1));
        for (int i = 0; i < digits; i++) {
            if (i == point && i > 0)
                s[o++] = '.';
            s[o++] = (char)('0' + (i == 0 && digits > 1 && point != 1 ? 1 + test_splitmix(&st) % 9
                                                                    : test_splitmix(&st) % 10));
        }
        if (test_splitmix(&st) % 3 == 0)
            o += snprintf(s + o, sizeof s - (size_t)o, "e%d", (int)(test_splitmix(&st) % 61) - 30);
        s[o] = 0;
        if (!num_of(s, &n))
            FAIL_("%s: refused", s);
        double want = strtod(s, NULL);
        if (memcmp(&n.d, &want, sizeof want) != 0)
            FAIL_("%s: %.17g, strtod says %.17g", s, n.d, want);
    }
    /* small magnitudes as tensors carry them: "-0.000123", zeros before the digits and
     * trailing ones after, 1..20 digits, with and without an exponent */
    for (int k = 0; k < 100000; k++) {
        int o = snprintf(s, sizeof s, "%s0.", test_splitmix(&st) & 1 ? "-" : "");
        int zeros = (int)(test_splitmix(&st) % 26), digits = 1 + (int)(test_splitmix(&st) % 20);
        for (int i = 0; i < zeros; i++)
            s[o++] = '0';
        for (int i = 0; i < digits; i++)
            s[o++] = (char)('0' + (i == 0 ? 1 + test_splitmix(&st) % 9 : test_splitmix(&st) % 10));
        if (test_splitmix(&st) % 4 == 0)
            o += snprintf(s + o, sizeof s - (size_t)o, "E+%d", (int)(test_splitmix(&st) % 30));
        s[o] = 0;
        if (!num_of(s, &n))
            FAIL_("%s: refused", s);
        double want = strtod(s, NULL);
        if (memcmp(&n.d, &want, sizeof want) != 0)
            FAIL_("%s: %.17g, strtod says %.17g", s, n.d, want);
    }
}

TEST(strings_decode)
{
    usher_error err;
    const char *t = "[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\ud83d\\ude00\xe2\x82\xac\", "
                    "\"nul\\u0000in\", \"\"]";
    us_jsonr_doc *d = NULL;
    ASSERT_OK(us_jsonr_parse(t, strlen(t), NULL, &d, NULL, &err));
    us_jsonr_val v = us_jsonr_first(d, 0);
    char buf[64];
    ASSERT_EQ_U64(us_jsonr_str_copy(d, v, buf, sizeof buf), 12);
    ASSERT_STR_EQ(buf, "a\"b\\c/d\b\f\n\r\t");
    ASSERT_EQ_U64(us_jsonr_str_len(d, v), 12);
    v = us_jsonr_next(d, v);
    ASSERT_EQ_U64(us_jsonr_str_copy(d, v, buf, sizeof buf), 9);
    ASSERT_STR_EQ(buf, "\xc3\xa9\xf0\x9f\x98\x80\xe2\x82\xac");
    ASSERT(us_jsonr_str_eq(d, v, "\xc3\xa9\xf0\x9f\x98\x80\xe2\x82\xac", 9));
    ASSERT(!us_jsonr_str_eq(d, v, "\xc3\xa9", 2));
    v = us_jsonr_next(d, v);
    ASSERT_EQ_U64(us_jsonr_str_len(d, v), 6);
    ASSERT(us_jsonr_str_eq(d, v, "nul\0in", 6));
    /* cut: the full length comes back, no terminator written past cap */
    memset(buf, 'x', sizeof buf);
    ASSERT_EQ_U64(us_jsonr_str_copy(d, v, buf, 3), 6);
    ASSERT(memcmp(buf, "nulx", 4) == 0);
    v = us_jsonr_next(d, v);
    ASSERT_EQ_U64(us_jsonr_str_copy(d, v, buf, sizeof buf), 0);
    ASSERT_STR_EQ(buf, "");
    ASSERT(us_jsonr_next(d, v) == US_JSONR_NONE);
    /* a number is not a string */
    ASSERT_EQ_U64(us_jsonr_str_len(d, US_JSONR_NONE), 0);
    us_jsonr_free(d);
    /* the public UTF-8 check agrees with the reader */
    ASSERT_EQ_U64(us_jsonr_utf8_check((const uint8_t *)"ab\xc3\xa9", 4), 4);
    ASSERT_EQ_U64(us_jsonr_utf8_check((const uint8_t *)"ab\xed\xa0\x80", 5), 2);
    ASSERT_EQ_U64(us_jsonr_utf8_check((const uint8_t *)"\xc3", 1), 0);
}

TEST(walk_objects_and_arrays)
{
    usher_error err;
    const char *t = "{\"a\": [1, [2, 3], {\"x\": [9]}, []], \"b\": {}, \"c\": \"s\", \"d\": true,"
                    " \"e\": null}";
    us_jsonr_doc *d = NULL;
    ASSERT_OK(us_jsonr_parse(t, strlen(t), NULL, &d, NULL, &err));
    us_jsonr_val r = us_jsonr_root(d);
    ASSERT_EQ_INT(us_jsonr_type_of(d, r), US_JSONR_OBJECT);
    ASSERT_EQ_U64(us_jsonr_len(d, r), 5);
    ASSERT_EQ_U64(us_jsonr_offset(d, r), 0);
    us_jsonr_val a = us_jsonr_get(d, r, "a");
    ASSERT_EQ_INT(us_jsonr_type_of(d, a), US_JSONR_ARRAY);
    ASSERT_EQ_U64(us_jsonr_offset(d, a), 6);
    ASSERT_EQ_U64(us_jsonr_len(d, a), 4);
    /* flattening: 1 2 3, then the object as one leaf, the empty array gives nothing */
    us_jsonr_flat fl;
    us_jsonr_flat_init(&fl, d, a);
    us_jsonr_num n;
    for (int want = 1; want <= 3; want++) {
        us_jsonr_val v = us_jsonr_flat_next(&fl);
        ASSERT(us_jsonr_number(d, v, &n) && n.i == want);
    }
    us_jsonr_val o = us_jsonr_flat_next(&fl);
    ASSERT_EQ_INT(us_jsonr_type_of(d, o), US_JSONR_OBJECT);
    ASSERT(us_jsonr_flat_next(&fl) == US_JSONR_NONE);
    ASSERT(us_jsonr_flat_next(&fl) == US_JSONR_NONE);
    us_jsonr_val b = us_jsonr_get(d, r, "b");
    ASSERT_EQ_INT(us_jsonr_type_of(d, b), US_JSONR_OBJECT);
    ASSERT(us_jsonr_first(d, b) == US_JSONR_NONE);
    ASSERT_EQ_U64(us_jsonr_len(d, b), 0);
    bool bv = false;
    ASSERT(us_jsonr_bool(d, us_jsonr_get(d, r, "d"), &bv) && bv);
    ASSERT(!us_jsonr_bool(d, us_jsonr_get(d, r, "c"), &bv));
    ASSERT_EQ_INT(us_jsonr_type_of(d, us_jsonr_get(d, r, "e")), US_JSONR_NULL);
    ASSERT(us_jsonr_get(d, r, "zz") == US_JSONR_NONE);
    ASSERT(us_jsonr_get(d, a, "a") == US_JSONR_NONE);
    /* keys and values alternate */
    us_jsonr_val k = us_jsonr_first(d, r);
    ASSERT(us_jsonr_str_eq(d, k, "a", 1));
    ASSERT(us_jsonr_next(d, k) == a);
    k = us_jsonr_next(d, a);
    ASSERT(us_jsonr_str_eq(d, k, "b", 1));
    /* NONE everywhere is harmless */
    ASSERT_EQ_INT(us_jsonr_type_of(d, US_JSONR_NONE), US_JSONR_INVALID);
    ASSERT(us_jsonr_first(d, US_JSONR_NONE) == US_JSONR_NONE);
    ASSERT(us_jsonr_next(d, US_JSONR_NONE) == US_JSONR_NONE);
    ASSERT(!us_jsonr_number(d, US_JSONR_NONE, &n));
    us_jsonr_flat_init(&fl, d, US_JSONR_NONE);
    ASSERT(us_jsonr_flat_next(&fl) == US_JSONR_NONE);
    ASSERT_STR_EQ(us_jsonr_type_name(US_JSONR_ARRAY), "an array");
    us_jsonr_free(d);
    us_jsonr_free(NULL);
}

TEST(duplicate_keys_in_a_large_object)
{
    usher_error err;
    /* 20,000 distinct keys: accepted; the same with one repeated at the end: refused there */
    size_t cap = 20001 * 16 + 16, o = 0;
    char *s = malloc(cap);
    s[o++] = '{';
    for (int i = 0; i < 20000; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s\"k%d\":%d", i ? "," : "", i, i);
    size_t body = o;
    s[o++] = '}';
    us_jsonr_doc *d = NULL;
    ASSERT_OK(us_jsonr_parse(s, o, NULL, &d, NULL, &err));
    ASSERT_EQ_U64(us_jsonr_len(d, 0), 20000);
    us_jsonr_num n;
    ASSERT(us_jsonr_number(d, us_jsonr_get(d, 0, "k12345"), &n) && n.i == 12345);
    us_jsonr_free(d);
    o = body;
    o += (size_t)snprintf(s + o, cap - o, ",\"k\\u0031\\u0037\":0}");
    size_t off = 0;
    ASSERT_EQ_INT(us_jsonr_parse(s, o, NULL, &d, &off, &err), USHER_ERR_PARSE);
    ASSERT_EQ_U64(off, body + 1);
    ASSERT_CONTAINS(err.msg, "duplicate key \"k17\"");
    free(s);
}

TEST(million_element_array)
{
    usher_error err;
    const int N = 1000000;
    size_t cap = (size_t)N * 12 + 4, o = 0;
    char *s = malloc(cap);
    double want = 0;
    s[o++] = '[';
    for (int i = 0; i < N; i++) {
        int k = i - N / 2;
        o += (size_t)snprintf(s + o, cap - o, "%s%d.5", i ? "," : "", k);
        want += k < 0 ? k - 0.5 : k + 0.5; /* "-3.5" is -3 - 0.5 */
    }
    s[o++] = ']';
    size_t live = us_alloc_live_bytes();
    us_alloc_reset_peak();
    us_jsonr_doc *d = NULL;
    ASSERT_OK(us_jsonr_parse(s, o, NULL, &d, NULL, &err));
    size_t peak = us_alloc_peak_bytes() - live;
    /* one word per number, nothing per element on the heap */
    ASSERT(us_jsonr_tape_bytes(d) <= (size_t)N * 4 + 300000);
    ASSERT(peak <= (size_t)N * 4 + 300000);
    ASSERT_EQ_U64(us_jsonr_len(d, 0), (uint64_t)N);
    us_jsonr_flat fl;
    us_jsonr_flat_init(&fl, d, 0);
    double sum = 0;
    int count = 0;
    us_jsonr_val v;
    us_jsonr_num n;
    while ((v = us_jsonr_flat_next(&fl)) != US_JSONR_NONE) {
        ASSERT(us_jsonr_number(d, v, &n));
        sum += n.d;
        count++;
    }
    ASSERT_EQ_INT(count, N);
    ASSERT(sum == want);
    us_jsonr_free(d);
    free(s);
    ASSERT_EQ_U64(us_alloc_live_bytes(), live);
}

/* the tape's worst cases stay within the 2-3x budget */
TEST(worst_case_memory)
{
    usher_error err;
    const size_t body = 8u << 20;
    char *s = malloc(body);
    static const char *const unit[] = {"0,", "[],", "{},", "\"\","};
    static const double ratio[] = {2.05, 2.72, 2.72, 1.40};
    for (int u = 0; u < 4; u++) {
        size_t ul = strlen(unit[u]), o = 0;
        s[o++] = '[';
        while (o + ul + 8 < body) {
            memcpy(s + o, unit[u], ul);
            o += ul;
        }
        memcpy(s + o, unit[u], ul - 1);
        o += ul - 1;
        s[o++] = ']';
        size_t live = us_alloc_live_bytes();
        us_alloc_reset_peak();
        us_jsonr_doc *d = NULL;
        ASSERT_OK(us_jsonr_parse(s, o, NULL, &d, NULL, &err));
        double r = (double)(us_alloc_peak_bytes() - live) / (double)o;
        if (r > ratio[u])
            FAIL_("unit %s: %.2fx the body", unit[u], r);
        us_jsonr_free(d);
    }
    free(s);
}

TEST(each_allocation_failure)
{
    /* a parse that needs several tape blocks, a deep stack and a key table */
    size_t cap = 400000, o = 0;
    char *s = malloc(cap);
    o += (size_t)snprintf(s, cap, "{\"deep\":");
    for (int i = 0; i < 40; i++)
        s[o++] = '[';
    for (int i = 0; i < 40; i++)
        s[o++] = ']';
    o += (size_t)snprintf(s + o, cap - o, ",\"keys\":{");
    for (int i = 0; i < 100; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s\"k%d\":1", i ? "," : "", i);
    o += (size_t)snprintf(s + o, cap - o, "},\"data\":[");
    for (int i = 0; i < 70000; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s%d", i ? "," : "", i % 10);
    o += (size_t)snprintf(s + o, cap - o, "]}");
    usher_error err;
    us_jsonr_doc *d = NULL;
    uint64_t before = us_alloc_count();
    ASSERT_OK(us_jsonr_parse(s, o, NULL, &d, NULL, &err));
    us_jsonr_free(d);
    uint64_t allocs = us_alloc_count() - before;
    ASSERT(allocs >= 8);
    for (uint64_t k = 1; k <= allocs; k++) {
        size_t live = us_alloc_live_bytes();
        us_alloc_fail_nth(k);
        int rc = us_jsonr_parse(s, o, NULL, &d, NULL, &err);
        us_alloc_fail_nth(0);
        ASSERT_EQ_INT(rc, USHER_ERR_NOMEM);
        ASSERT(d == NULL);
        ASSERT_CONTAINS(err.msg, "out of memory");
        ASSERT_EQ_U64(us_alloc_live_bytes(), live);
    }
    free(s);
}

TEST_MAIN(TEST_ENTRY(accept_suite), TEST_ENTRY(reject_suite), TEST_ENTRY(depth_at_limit_and_one_past),
          TEST_ENTRY(length_limit), TEST_ENTRY(integers_exact_in_64_bits),
          TEST_ENTRY(doubles_finite_and_correctly_rounded),
          TEST_ENTRY(doubles_fast_path_matches_strtod), TEST_ENTRY(strings_decode),
          TEST_ENTRY(walk_objects_and_arrays), TEST_ENTRY(duplicate_keys_in_a_large_object),
          TEST_ENTRY(million_element_array), TEST_ENTRY(worst_case_memory),
          TEST_ENTRY(each_allocation_failure))
