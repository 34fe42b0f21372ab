/*
 * arrivals.c - the recorded-arrivals text format (layer 0; the format is
 * described in arrivals.h). A line is copied into the reader's own buffer
 * (bounded by US_ARRIVALS_LINE_MAX) so that the fields can be cut in place
 * without touching the caller's (possibly mapped, read-only) text.
 */
#include "core/arrivals.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void us_arrivals_init(us_arrivals_reader *r, const char *text, size_t len, const char *label,
                      double max_time_s)
{
    memset(r, 0, sizeof *r);
    r->text = text;
    r->len = text ? len : 0;
    r->label = label ? label : "arrivals";
    r->max_time_s = max_time_s;
}

static bool blank(char c) { return c == ' ' || c == '\t'; }

int us_arrivals_next(us_arrivals_reader *r, us_arrival_line *out, usher_error *err)
{
    const char *label = r->label;
    while (r->pos < r->len) {
        size_t lineno = ++r->lineno;
        const char *at = r->text + r->pos;
        const char *nl = memchr(at, '\n', r->len - r->pos);
        size_t ll = nl ? (size_t)(nl - at) : r->len - r->pos;
        if (ll > US_ARRIVALS_LINE_MAX)
            return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: line longer than %d bytes", label,
                              lineno, US_ARRIVALS_LINE_MAX);
        char *line = r->line;
        memcpy(line, at, ll);
        r->pos += ll + (nl ? 1 : 0);
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        line[ll] = '\0';
        if (memchr(line, '\0', ll))
            return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: NUL byte", label, lineno);
        char *s = line;
        while (blank(*s))
            s++;
        if (*s == '\0' || *s == '#')
            continue;
        /* field 1, the time: a plain decimal number (strtod alone would take hex, inf, nan) */
        char *t0 = s;
        while ((*s >= '0' && *s <= '9') || *s == '.' || *s == 'e' || *s == 'E' || *s == '+' ||
               *s == '-')
            s++;
        char save = *s;
        *s = '\0';
        char *end = t0;
        errno = 0;
        double t = s > t0 ? strtod(t0, &end) : -1;
        bool bad = s == t0 || end != s || errno != 0 || !(t >= 0) || t > r->max_time_s;
        *s = save;
        if (bad || (*s != '\0' && !blank(*s))) {
            char *e = t0;
            while (*e && !blank(*e))
                e++;
            *e = '\0';
            return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: field 1 (time_s): '%.64s' is not "
                              "a time in seconds in [0, %g] (lines are 'time_s model')", label,
                              lineno, t0, r->max_time_s);
        }
        while (blank(*s))
            s++;
        char *name = s;
        while (*s && !blank(*s))
            s++;
        size_t nlen = (size_t)(s - name);
        while (blank(*s))
            s++;
        if (nlen == 0)
            return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: field 2 (model): missing (lines "
                              "are 'time_s model')", label, lineno);
        if (*s)
            return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: field 3: '%.64s': a line has two "
                              "fields, 'time_s model'", label, lineno, s);
        name[nlen] = '\0';
        out->t_us = (uint64_t)llround(t * 1e6);
        out->name = name;
        out->name_len = nlen;
        return 1;
    }
    return 0;
}

int us_arrivals_refuse(const us_arrivals_reader *r, const us_arrival_line *a, const char *what,
                       usher_error *err)
{
    return us_err_set(err, USHER_ERR_PARSE, "%s:%zu: field 2 (model): '%.64s' is not a model "
                      "of %s", r->label, r->lineno, a->name, what ? what : "the workload");
}
