/*
 * csv.c - bounded RFC 4180 reader (see csv.h for the accepted format).
 *
 * One pass, no backtracking: the cursor only moves forward, every read is
 * checked against `end` first, and the only memory taken is the field
 * buffer, which grows geometrically but never past the bound implied by
 * max_field and max_cols.
 */
#include "csv.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"

int gpu_csv_init(gpu_csv *r, const char *text, size_t n, const char *label, size_t max_field,
                 size_t max_cols, usher_error *err)
{
    memset(r, 0, sizeof *r);
    r->p = text;
    r->end = text + n;
    r->label = label ? label : "(csv)";
    r->line = 1;
    r->col = 1;
    r->max_field = max_field;
    r->max_cols = max_cols ? max_cols : 1;
    if (n >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) { /* UTF-8 byte order mark */
        r->p += 3;
        r->col += 3;
    }
    r->off = us_mallocarray(r->max_cols, sizeof *r->off);
    r->len = us_mallocarray(r->max_cols, sizeof *r->len);
    r->field_col = us_mallocarray(r->max_cols, sizeof *r->field_col);
    if (!r->off || !r->len || !r->field_col)
        return us_err_set(err, USHER_ERR_NOMEM, "%s: out of memory for the CSV reader", r->label);
    return USHER_OK;
}

void gpu_csv_free(gpu_csv *r)
{
    if (!r)
        return;
    us_free(r->buf);
    us_free(r->off);
    us_free(r->len);
    us_free(r->field_col);
    r->buf = NULL;
    r->off = r->len = r->field_col = NULL;
}

const char *gpu_csv_field(const gpu_csv *r, size_t i)
{
    return i < r->n_fields ? r->buf + r->off[i] : NULL;
}

static int put(gpu_csv *r, char c, usher_error *err)
{
    if (r->buf_len == r->buf_cap) {
        size_t cap = r->buf_cap ? r->buf_cap * 2 : 256;
        char *nb = us_realloc(r->buf, cap);
        if (!nb)
            return us_err_set(err, USHER_ERR_NOMEM, "%s:%zu: out of memory reading a CSV record",
                              r->label, r->rec_line);
        r->buf = nb;
        r->buf_cap = cap;
    }
    r->buf[r->buf_len++] = c;
    return USHER_OK;
}

/* a printable rendering of byte c for messages */
static const char *show(char c, char tmp[8])
{
    unsigned char u = (unsigned char)c;
    if (u >= 0x20 && u < 0x7f)
        snprintf(tmp, 8, "'%c'", c);
    else
        snprintf(tmp, 8, "0x%02x", u);
    return tmp;
}

/* At a line end (LF or CRLF) or the end of the input? Bare CR is not one. */
static int at_line_end(const gpu_csv *r)
{
    return r->p == r->end || *r->p == '\n' ||
           (*r->p == '\r' && r->end - r->p >= 2 && r->p[1] == '\n');
}

static void skip_line_end(gpu_csv *r)
{
    if (r->p < r->end && *r->p == '\r')
        r->p++;
    if (r->p < r->end && *r->p == '\n')
        r->p++;
    r->line++;
    r->col = 1;
}

static int field_too_long(gpu_csv *r, size_t start_col, usher_error *err)
{
    return us_err_set(err, USHER_ERR_LIMIT, "%s:%zu:%zu: field longer than %zu bytes", r->label,
                      r->line, start_col, r->max_field);
}

static int read_quoted(gpu_csv *r, usher_error *err)
{
    size_t open_line = r->line, open_col = r->col, flen = 0;
    char tmp[8];
    r->p++; /* the opening quote */
    r->col++;
    for (;;) {
        if (r->p == r->end)
            return us_err_set(err, USHER_ERR_PARSE,
                              "%s:%zu:%zu: unterminated quoted field (the quote opened here is "
                              "never closed)",
                              r->label, open_line, open_col);
        char c = *r->p;
        if (c == '"') {
            if (r->end - r->p >= 2 && r->p[1] == '"') { /* "" stands for one quote */
                r->p += 2;
                r->col += 2;
            } else {
                r->p++;
                r->col++;
                break;
            }
        } else if (c == '\0') {
            return us_err_set(err, USHER_ERR_PARSE, "%s:%zu:%zu: NUL byte in a field", r->label,
                              r->line, r->col);
        } else if (c == '\n') {
            r->p++;
            r->line++;
            r->col = 1;
        } else {
            r->p++;
            r->col++;
        }
        if (flen == r->max_field)
            return us_err_set(err, USHER_ERR_LIMIT, "%s:%zu:%zu: field longer than %zu bytes",
                              r->label, open_line, open_col, r->max_field);
        int rc = put(r, c, err);
        if (rc < 0)
            return rc;
        flen++;
    }
    if (!at_line_end(r) && *r->p != ',')
        return us_err_set(err, USHER_ERR_PARSE,
                          "%s:%zu:%zu: %s after the closing quote of a field (expected ',' or the "
                          "end of the line)",
                          r->label, r->line, r->col, show(*r->p, tmp));
    return USHER_OK;
}

static int read_plain(gpu_csv *r, size_t start_col, usher_error *err)
{
    size_t flen = 0;
    while (r->p < r->end && *r->p != ',' && *r->p != '\n') {
        char c = *r->p;
        if (c == '\r') {
            if (r->end - r->p >= 2 && r->p[1] == '\n')
                break;
            return us_err_set(err, USHER_ERR_PARSE,
                              "%s:%zu:%zu: carriage return not followed by a line feed", r->label,
                              r->line, r->col);
        }
        if (c == '"')
            return us_err_set(err, USHER_ERR_PARSE,
                              "%s:%zu:%zu: '\"' inside an unquoted field (quote the whole field "
                              "and double the quote)",
                              r->label, r->line, r->col);
        if (c == '\0')
            return us_err_set(err, USHER_ERR_PARSE, "%s:%zu:%zu: NUL byte in a field", r->label,
                              r->line, r->col);
        if (flen == r->max_field)
            return field_too_long(r, start_col, err);
        int rc = put(r, c, err);
        if (rc < 0)
            return rc;
        flen++;
        r->p++;
        r->col++;
    }
    return USHER_OK;
}

int gpu_csv_next(gpu_csv *r, usher_error *err)
{
    while (r->p < r->end && (*r->p == '\n' || *r->p == '\r') && at_line_end(r))
        skip_line_end(r); /* empty lines */
    if (r->p == r->end)
        return 0;
    r->rec_line = r->line;
    r->n_fields = 0;
    r->buf_len = 0;
    for (;;) {
        if (r->n_fields == r->max_cols)
            return us_err_set(err, USHER_ERR_LIMIT, "%s:%zu:%zu: more than %zu columns", r->label,
                              r->line, r->col, r->max_cols);
        size_t i = r->n_fields, start = r->buf_len, start_col = r->col;
        r->off[i] = start;
        r->field_col[i] = start_col;
        int rc = (r->p < r->end && *r->p == '"') ? read_quoted(r, err)
                                                 : read_plain(r, start_col, err);
        if (rc < 0)
            return rc;
        rc = put(r, '\0', err);
        if (rc < 0)
            return rc;
        r->len[i] = r->buf_len - 1 - start;
        r->n_fields++;
        if (r->p == r->end)
            return 1;
        if (*r->p == ',') {
            r->p++;
            r->col++;
            continue;
        }
        skip_line_end(r); /* read_* stop only at ',', a line end or the end */
        return 1;
    }
}
