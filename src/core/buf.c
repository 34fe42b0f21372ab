/* buf.c - see buf.h. */
#include "buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

void us_buf_init(us_buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max ? max : (size_t)1 << 30;
}

void us_buf_free(us_buf *b)
{
    if (!b)
        return;
    us_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void us_buf_reset(us_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
    b->overflow = b->oom = false;
}

static bool reserve(us_buf *b, size_t extra)
{
    size_t need;
    if (b->overflow || b->oom)
        return false;
    if (!us_add_size(b->len, extra, &need) || need + 1 > b->max) {
        b->overflow = true;
        return false;
    }
    if (need + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need + 1)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    char *d = us_realloc(b->data, cap);
    if (!d) {
        b->oom = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void us_buf_append(us_buf *b, const void *p, size_t n)
{
    if (n == 0 || !reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void us_buf_puts(us_buf *b, const char *s) { us_buf_append(b, s, strlen(s)); }
void us_buf_putc(us_buf *b, char c) { us_buf_append(b, &c, 1); }

void us_buf_printf(us_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        us_buf_append(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *us_buf_str(const us_buf *b) { return b->data ? b->data : ""; }

/* ---- JSON ---------------------------------------------------------------- */

void us_json_init(us_json *j, us_buf *out)
{
    memset(j, 0, sizeof *j);
    j->out = out;
}

static void newline(us_json *j, int depth)
{
    us_buf_putc(j->out, '\n');
    for (int i = 0; i < depth; i++)
        us_buf_puts(j->out, "  ");
}

static void pre_value(us_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->need_comma[j->depth])
        us_buf_puts(j->out, j->pretty > 0 && j->depth > j->pretty ? ", " : ",");
    j->need_comma[j->depth] = true;
    if (j->depth > 0 && j->depth <= j->pretty)
        newline(j, j->depth);
}

static void open_(us_json *j, char c)
{
    pre_value(j);
    us_buf_putc(j->out, c);
    if (j->depth >= US_JSON_MAX_DEPTH) {
        j->bad = true;
        return;
    }
    j->depth++;
    j->need_comma[j->depth] = false;
}

static void close_(us_json *j, char c)
{
    if (j->depth == 0) {
        j->bad = true;
    } else {
        if (j->depth <= j->pretty && j->need_comma[j->depth])
            newline(j, j->depth - 1);
        j->depth--;
    }
    us_buf_putc(j->out, c);
}

void us_json_obj_begin(us_json *j) { open_(j, '{'); }
void us_json_obj_end(us_json *j) { close_(j, '}'); }
void us_json_arr_begin(us_json *j) { open_(j, '['); }
void us_json_arr_end(us_json *j) { close_(j, ']'); }

void us_json_key(us_json *j, const char *k)
{
    pre_value(j);
    us_json_escape(j->out, k, strlen(k));
    us_buf_puts(j->out, j->pretty > 0 ? ": " : ":");
    j->after_key = true;
}

size_t us_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        min = 0x80;
        c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        min = 0x800;
        c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        min = 0x10000;
        c &= 0x07;
    } else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return len;
}

void us_json_escape(us_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    us_buf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            us_buf_append(b, e, 2);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n': us_buf_puts(b, "\\n"); break;
            case '\t': us_buf_puts(b, "\\t"); break;
            case '\r': us_buf_puts(b, "\\r"); break;
            default: us_buf_printf(b, "\\u%04x", c); break;
            }
            i++;
        } else if (c < 0x80) {
            size_t j = i;
            while (j < n && p[j] >= 0x20 && p[j] < 0x80 && p[j] != '"' && p[j] != '\\')
                j++;
            us_buf_append(b, p + i, j - i);
            i = j;
        } else {
            size_t l = us_utf8_seq(p + i, n - i);
            if (l == 0) {
                us_buf_puts(b, "\\ufffd");
                i++;
            } else {
                us_buf_append(b, p + i, l);
                i += l;
            }
        }
    }
    us_buf_putc(b, '"');
}

void us_json_strn(us_json *j, const char *s, size_t n)
{
    pre_value(j);
    us_json_escape(j->out, s, n);
}

void us_json_str(us_json *j, const char *s)
{
    if (!s) {
        us_json_null(j);
        return;
    }
    us_json_strn(j, s, strlen(s));
}

void us_json_int(us_json *j, int64_t v)
{
    pre_value(j);
    us_buf_printf(j->out, "%lld", (long long)v);
}

void us_json_uint(us_json *j, uint64_t v)
{
    pre_value(j);
    us_buf_printf(j->out, "%llu", (unsigned long long)v);
}

void us_json_double(us_json *j, double v)
{
    pre_value(j);
    if (!isfinite(v))
        us_buf_puts(j->out, "null");
    else
        us_buf_printf(j->out, "%.15g", v);
}

void us_json_bool(us_json *j, bool v)
{
    pre_value(j);
    us_buf_puts(j->out, v ? "true" : "false");
}

void us_json_null(us_json *j)
{
    pre_value(j);
    us_buf_puts(j->out, "null");
}
