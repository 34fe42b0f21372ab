/*
 * csv.h - a bounded reader for RFC 4180 CSV text (layer 2, used by the GPU
 * catalog; later by trace and measurement readers).
 *
 * The input is untrusted and already in memory. The reader walks it once,
 * record by record, unescaping each field into a buffer whose size is
 * bounded by max_cols * (max_field + 1): a field longer than max_field or a
 * record wider than max_cols stops the walk with an error naming the line
 * and column, before any more memory is taken. Positions are 1-based; the
 * column is the byte offset within the line.
 *
 * Accepted format (RFC 4180, plus LF line ends):
 *   - records end with CRLF or LF; the last one may lack a line end;
 *   - fields are separated by ','; a field is quoted when it starts with
 *     '"', and then may hold ',', line breaks and '""' (one quote);
 *   - empty lines are skipped (RFC 4180 has none; editors leave them);
 *   - a UTF-8 byte order mark at the very start is skipped.
 * Rejected: an unterminated quoted field, anything but ',' or a line end
 * after a closing quote, a '"' inside an unquoted field, a bare CR, a NUL
 * byte.
 */
#ifndef GPU_CSV_H
#define GPU_CSV_H

#include <stddef.h>

#include "usher/status.h"

typedef struct gpu_csv {
    const char *p, *end; /* unread input */
    const char *label;   /* file name for messages */
    size_t line, col;    /* position of p */
    size_t max_field, max_cols;
    /* the current record: n_fields NUL-terminated fields in buf */
    char *buf;
    size_t buf_len, buf_cap;
    size_t *off;       /* field i starts at buf + off[i] (max_cols entries) */
    size_t *len;       /* its length in bytes */
    size_t *field_col; /* column where it started in the text */
    size_t n_fields;
    size_t rec_line; /* line where the current record started */
} gpu_csv;

/*
 * Prepare to read text[0..n). label names the input in messages. Returns
 * USHER_ERR_NOMEM (with err filled) if the field index arrays cannot be
 * allocated; the reader is then safe to free.
 */
int gpu_csv_init(gpu_csv *r, const char *text, size_t n, const char *label, size_t max_field,
                 size_t max_cols, usher_error *err);
/*
 * Read the next record. Returns 1 when a record is ready, 0 at the end of
 * the input, or a negative status (USHER_ERR_PARSE for malformed text,
 * USHER_ERR_LIMIT for an over-long field or too many columns,
 * USHER_ERR_NOMEM) with err naming "label:line:col". After an error the
 * reader only accepts gpu_csv_free.
 */
int gpu_csv_next(gpu_csv *r, usher_error *err);
/* Field i of the current record (NUL-terminated), or NULL if i >= n_fields. */
const char *gpu_csv_field(const gpu_csv *r, size_t i);
void gpu_csv_free(gpu_csv *r); /* NULL allowed */

#endif
