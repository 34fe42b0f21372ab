/*
 * arrivals.h - the recorded-arrivals text format, read line by line
 * (layer 0, prefix us_arrivals_).
 *
 * One format drives both `usher load --arrivals trace:FILE` (the client)
 * and `usher simulate --arrivals-file FILE` (the simulator), so both replay
 * the very same requests; this reader is the one both use, so they accept
 * and refuse the same files with the same words.
 *
 *   - one arrival a line, "time_s model": a plain decimal time in seconds
 *     from the start (no hex, inf or nan), in [0, max_time_s], then blanks,
 *     then a model name, and nothing after it;
 *   - blank lines and lines whose first non-blank byte is '#' are skipped;
 *     CRLF ends are accepted; a line is at most US_ARRIVALS_LINE_MAX bytes;
 *     a NUL byte is refused;
 *   - a time is rounded to the microsecond (llround(t x 10^6)).
 *
 * The reader does not know model names or sort: each caller maps the name
 * (and refuses an unknown one with us_arrivals_refuse, naming the line) and
 * stores the arrivals its own way. Errors name the label and the line.
 */
#ifndef USHER_CORE_ARRIVALS_H
#define USHER_CORE_ARRIVALS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define US_ARRIVALS_LINE_MAX 1024

typedef struct us_arrivals_reader {
    const char *text, *label;
    size_t len, pos, lineno;
    double max_time_s;
    char line[US_ARRIVALS_LINE_MAX + 1];
} us_arrivals_reader;

typedef struct us_arrival_line {
    uint64_t t_us;    /* the time, in microseconds */
    const char *name; /* the model name, NUL-terminated, in the reader's line buffer */
    size_t name_len;
} us_arrival_line;

/* a reader over text[0..len) (not copied: it must outlive the reader) */
void us_arrivals_init(us_arrivals_reader *r, const char *text, size_t len, const char *label,
                      double max_time_s);

/* the next arrival into *out: 1, or 0 at the end of the text, or
 * USHER_ERR_PARSE with err naming label:line and the field. out->name stays
 * valid until the next call. */
int us_arrivals_next(us_arrivals_reader *r, us_arrival_line *out, usher_error *err);

/* refuse the line last returned: "label:line: field 2 (model): 'NAME' is not
 * a model of WHAT"; returns USHER_ERR_PARSE */
int us_arrivals_refuse(const us_arrivals_reader *r, const us_arrival_line *a, const char *what,
                       usher_error *err);

#endif
