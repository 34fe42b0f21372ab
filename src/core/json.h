/*
 * json.h - a bounded JSON reader for untrusted bodies (layer 1, prefix
 * us_jsonr_; the writer is us_json in buf.h).
 *
 * Inference requests carry up to tens of MiB of JSON, most of it one flat
 * or nested array of numbers. A DOM with a heap node per value would cost
 * ten times the body; this reader builds a tape instead (simdjson's idea,
 * made smaller): one 32-bit word per scalar, two per array or object, and
 * nothing else. A scalar's word is the byte offset of its text; strings and
 * numbers are decoded from the text when asked for. So for the worst case
 * ("[0,0,0,...]", two bytes per value) the tape is twice the body, for
 * "[[],[],...]" 2.7 times; ordinary requests need well under one times.
 * The tape grows in 256 KiB blocks (the first one by doubling from 1 KiB),
 * so it never holds more than one block of slack and is never copied whole.
 *
 * The grammar is RFC 8259, strictly:
 *   - no comments, no trailing commas, no single quotes, no NaN/Infinity,
 *     no leading '+' or zeros, no byte-order mark; whitespace is space, tab,
 *     CR, LF; any value may be the root; nothing but whitespace after it;
 *   - strings are valid UTF-8 (no overlong forms, no encoded surrogates,
 *     nothing above U+10FFFF), with no raw control characters; escapes are
 *     the eight of the RFC and \uXXXX, where a surrogate must be a high one
 *     followed by a \u low one (a lone surrogate is refused);
 *   - duplicate keys in one object (compared after unescaping) are refused;
 *   - every number must be a finite double (1e400 is refused; 1e-400 is 0);
 *     integers written without fraction or exponent are also kept exactly
 *     when they fit 64 bits, signed or unsigned (us_jsonr_num).
 * Limits (us_jsonr_limits): the input length (hard cap US_JSONR_MAX_LEN,
 * the reach of a 30-bit offset) before a byte is read, the nesting depth at
 * each '[' or '{'. The parser is a loop with an explicit stack, so depth
 * costs no C stack. Memory comes from the us_malloc hook: the tape, the
 * container stack, and while an object is open an entry of 16 bytes per key
 * for the duplicate check (sorted when the object closes: O(n log n)).
 *
 * Errors: USHER_ERR_PARSE (syntax, encoding, duplicate key, number range,
 * nesting over the depth limit: malformed, not big), USHER_ERR_LIMIT (length),
 * USHER_ERR_NOMEM. The message is
 * "byte N: expected ... / <what is wrong>", N the 0-based offset of the
 * offending byte, which is also returned through err_offset. Key text shown
 * in a message is cut at 40 bytes with bytes outside printable ASCII as '?'.
 *
 * A document points into the text it was parsed from: the text must stay
 * alive and unchanged until us_jsonr_free.
 */
#ifndef US_JSONR_H
#define US_JSONR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usher/status.h"

#define US_JSONR_MAX_LEN (((size_t)1 << 30) - 1) /* bytes: offsets are 30-bit */
#define US_JSONR_MAX_DEPTH 100000              /* the most max_depth may be */

typedef struct us_jsonr_limits {
    size_t max_len; /* input bytes; default and ceiling US_JSONR_MAX_LEN; 0 = default */
    int max_depth;  /* arrays/objects open at once ("[]" is 1, a scalar root 0);
                       default 100; <= 0 = default; at most US_JSONR_MAX_DEPTH */
} us_jsonr_limits;

us_jsonr_limits us_jsonr_default_limits(void);

typedef struct us_jsonr_doc us_jsonr_doc;

/* A value: an index into the document's tape. US_JSONR_NONE is "no value"
 * (an absent key, the end of a container); every accessor accepts it. */
typedef uint32_t us_jsonr_val;
#define US_JSONR_NONE UINT32_MAX

typedef enum us_jsonr_type {
    US_JSONR_INVALID = 0, /* US_JSONR_NONE */
    US_JSONR_NULL,
    US_JSONR_BOOL,
    US_JSONR_NUMBER,
    US_JSONR_STRING,
    US_JSONR_ARRAY,
    US_JSONR_OBJECT
} us_jsonr_type;

/*
 * Parse text[0..len). On success *out is a document (free with
 * us_jsonr_free). On failure *out is NULL, err says why and *err_offset
 * (may be NULL) is the byte where parsing stopped. lim may be NULL.
 */
int us_jsonr_parse(const char *text, size_t len, const us_jsonr_limits *lim, us_jsonr_doc **out,
                   size_t *err_offset, usher_error *err);
void us_jsonr_free(us_jsonr_doc *d); /* NULL ok */

us_jsonr_val us_jsonr_root(const us_jsonr_doc *d);
us_jsonr_type us_jsonr_type_of(const us_jsonr_doc *d, us_jsonr_val v);
/* "an array", "a string", ... for messages */
const char *us_jsonr_type_name(us_jsonr_type t);
/* byte offset of the value's first character (its '[' for a container) */
size_t us_jsonr_offset(const us_jsonr_doc *d, us_jsonr_val v);
/* Bytes of tape the document holds (for memory tests and accounting). */
size_t us_jsonr_tape_bytes(const us_jsonr_doc *d);

/*
 * Walking. For an array, first() is its first element and next() steps to
 * the following one. For an object the children alternate key, value:
 * first() is the first key (a string), next(key) its value, next(value)
 * the following key. Both give US_JSONR_NONE at the end, and for a value
 * that is not a container (first) or the root (next). O(1) each.
 */
us_jsonr_val us_jsonr_first(const us_jsonr_doc *d, us_jsonr_val v);
us_jsonr_val us_jsonr_next(const us_jsonr_doc *d, us_jsonr_val v);
/* elements of an array, members of an object, 0 otherwise: O(n) */
size_t us_jsonr_len(const us_jsonr_doc *d, us_jsonr_val v);
/* the value of member `key` of an object, US_JSONR_NONE if absent: O(members) */
us_jsonr_val us_jsonr_get(const us_jsonr_doc *d, us_jsonr_val obj, const char *key);

/*
 * The leaves of an array in document order with nested arrays flattened
 * ([[1,2],[3]] gives 1, 2, 3); an object inside counts as a leaf (and its
 * contents are skipped) so the caller can refuse it. No recursion, no
 * allocation: one pass over the tape.
 */
typedef struct us_jsonr_flat {
    const us_jsonr_doc *d;
    uint32_t at, end;
} us_jsonr_flat;
void us_jsonr_flat_init(us_jsonr_flat *it, const us_jsonr_doc *d, us_jsonr_val arr);
us_jsonr_val us_jsonr_flat_next(us_jsonr_flat *it);

/* Scalars. Each returns false (leaving *out alone) when v has another type. */
bool us_jsonr_bool(const us_jsonr_doc *d, us_jsonr_val v, bool *out);

typedef struct us_jsonr_num {
    double d;      /* the nearest double; always finite */
    bool integer;  /* written without fraction or exponent */
    bool fits_i64; /* integer and within int64: i is exact */
    bool fits_u64; /* integer, >= 0 (or "-0") and within uint64: u is exact */
    int64_t i;
    uint64_t u;
    bool negative; /* written with a '-' */
} us_jsonr_num;
bool us_jsonr_number(const us_jsonr_doc *d, us_jsonr_val v, us_jsonr_num *out);

/* decoded (unescaped) length of a string in bytes; 0 for a non-string */
size_t us_jsonr_str_len(const us_jsonr_doc *d, us_jsonr_val v);
/*
 * Decode a string into dst[0..cap): writes min(len, cap) bytes, and a NUL
 * after them when len < cap. Returns the full decoded length (so a result
 * >= cap means it was cut). The bytes are UTF-8 and may contain NUL
 * (from \u0000). 0 for a non-string.
 */
size_t us_jsonr_str_copy(const us_jsonr_doc *d, us_jsonr_val v, char *dst, size_t cap);
/* does string v decode to exactly s[0..n)? */
bool us_jsonr_str_eq(const us_jsonr_doc *d, us_jsonr_val v, const char *s, size_t n);

/* Offset of the first byte of s[0..n) that is not valid UTF-8 (as the
 * reader defines it), n when all of it is. */
size_t us_jsonr_utf8_check(const uint8_t *s, size_t n);

#endif
