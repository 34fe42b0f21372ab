/* util.c - small helpers for the verbs (layer 9). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

bool cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s)
        return false;
    bool neg = false;
    const char *p = s;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (!*p || strlen(p) > 18)
        return false;
    int64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    if (neg)
        v = -v;
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

const char *cli_group(uint64_t v, char *buf, size_t n)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%llu", (unsigned long long)v);
    size_t len = strlen(raw), o = 0;
    for (size_t i = 0; i < len && o + 1 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0 && o + 2 < n)
            buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o < n ? o : n - 1] = '\0';
    return buf;
}

const char *cli_si(double v, const char *unit, char *buf, size_t n)
{
    static const char *const pre[] = {"", "k", "M", "G", "T", "P"};
    int i = 0;
    while (v >= 1000.0 && i < 5) {
        v /= 1000.0;
        i++;
    }
    snprintf(buf, n, i ? "%.2f %s%s" : "%.0f %s%s", v, pre[i], unit);
    return buf;
}
