/*
 * buf.h - growable byte buffer with a hard cap, and a JSON writer on top
 * (layer 1).
 *
 * A us_buf never grows past `max` bytes: appends beyond it set `overflow`
 * and are dropped, so a runaway producer cannot exhaust memory (curl's
 * dynbuf habit). Allocation failure sets `oom`. Callers check us_buf_ok()
 * once at the end instead of after every append.
 *
 * The JSON writer emits compact, valid JSON: strings are escaped (control
 * characters, quotes, backslash; bytes >= 0x80 are passed through when they
 * form valid UTF-8 and replaced by U+FFFD otherwise), doubles that are not
 * finite become null, nesting is limited to US_JSON_MAX_DEPTH.
 */
#ifndef US_BUF_H
#define US_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct us_buf {
    char *data; /* NUL-terminated when len > 0 */
    size_t len, cap, max;
    bool overflow, oom;
} us_buf;

void us_buf_init(us_buf *b, size_t max);
void us_buf_free(us_buf *b);
void us_buf_reset(us_buf *b);
void us_buf_append(us_buf *b, const void *p, size_t n);
void us_buf_puts(us_buf *b, const char *s);
void us_buf_putc(us_buf *b, char c);
void us_buf_printf(us_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline bool us_buf_ok(const us_buf *b) { return !b->overflow && !b->oom; }
/* The text so far ("" when empty). */
const char *us_buf_str(const us_buf *b);

#define US_JSON_MAX_DEPTH 64

typedef struct us_json {
    us_buf *out;
    int depth;
    bool need_comma[US_JSON_MAX_DEPTH + 1];
    bool after_key;
    bool bad; /* depth exceeded or mismatched end */
    int pretty; /* > 0: break lines and indent inside containers up to this depth
                   (deeper ones stay on one line); 0: compact (the default) */
} us_json;

void us_json_init(us_json *j, us_buf *out);
void us_json_obj_begin(us_json *j);
void us_json_obj_end(us_json *j);
void us_json_arr_begin(us_json *j);
void us_json_arr_end(us_json *j);
void us_json_key(us_json *j, const char *k);
void us_json_str(us_json *j, const char *s);
void us_json_strn(us_json *j, const char *s, size_t n);
void us_json_int(us_json *j, int64_t v);
void us_json_uint(us_json *j, uint64_t v);
void us_json_double(us_json *j, double v);
void us_json_bool(us_json *j, bool v);
void us_json_null(us_json *j);
/* Length of the valid UTF-8 sequence at s (n >= 1 bytes left), 0 if invalid: no
 * overlong forms, no surrogates, nothing above U+10FFFF. */
size_t us_utf8_seq(const unsigned char *s, size_t n);
/* Write a JSON string literal (with quotes) of s[0..n) to b. */
void us_json_escape(us_buf *b, const char *s, size_t n);

#endif
