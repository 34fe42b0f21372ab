/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"

static _Atomic int g_level = -1;  /* -1: not yet read from the environment */
static _Atomic int g_format = -1; /* likewise, USHER_LOG_FORMAT */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int us_log_parse_level(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

us_log_level us_log_get_level(void)
{
    int l = atomic_load(&g_level);
    if (l < 0) {
        l = us_log_parse_level(getenv("USHER_LOG"));
        if (l < 0)
            l = US_LOG_WARN;
        atomic_store(&g_level, l);
    }
    return (us_log_level)l;
}

void us_log_set_level(us_log_level lvl) { atomic_store(&g_level, (int)lvl); }

us_log_format us_log_get_format(void)
{
    int f = atomic_load(&g_format);
    if (f < 0) {
        const char *e = getenv("USHER_LOG_FORMAT");
        f = e && strcmp(e, "json") == 0 ? US_LOG_JSON : US_LOG_TEXT;
        atomic_store(&g_format, f);
    }
    return (us_log_format)f;
}

void us_log_set_format(us_log_format f) { atomic_store(&g_format, (int)f); }

/* one JSON line: {"time": RFC 3339 UTC with ms, "level", then the fields} */
static void json_line(us_log_level lvl, const char *const *kv, size_t n)
{
    us_buf b; /* only in JSON mode; a failed allocation loses the line's fields, not the line */
    us_buf_init(&b, 4096);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char t[40];
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    us_buf_printf(&b, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\"", t, ts.tv_nsec / 1000000,
                  level_names[lvl]);
    for (size_t i = 0; i + 1 < 2 * n; i += 2) {
        us_buf_putc(&b, ',');
        us_json_escape(&b, kv[i], strlen(kv[i]));
        us_buf_putc(&b, ':');
        us_json_escape(&b, kv[i + 1] ? kv[i + 1] : "", kv[i + 1] ? strlen(kv[i + 1]) : 0);
    }
    us_buf_putc(&b, '}');
    if (!us_buf_ok(&b)) /* cut or out of memory: still one valid line */
        fprintf(stderr, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"(log line over 4 KiB "
                        "or out of memory)\"}\n", t, ts.tv_nsec / 1000000, level_names[lvl]);
    else
        fprintf(stderr, "%s\n", us_buf_str(&b));
    us_buf_free(&b);
}

void us_log(us_log_level lvl, const char *fmt, ...)
{
    if ((int)lvl > (int)us_log_get_level())
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (us_log_get_format() == US_LOG_JSON) {
        const char *kv[2] = {"msg", line};
        json_line(lvl, kv, 1);
    } else {
        fprintf(stderr, "usher: %s: %s\n", level_names[lvl], line);
    }
}

void us_log_event(us_log_level lvl, const char *event, const char *const *kv, size_t n)
{
    if ((int)lvl > (int)us_log_get_level())
        return;
    if (us_log_get_format() == US_LOG_JSON) {
        const char *all[2 + 2 * 16];
        if (n > 16)
            n = 16;
        all[0] = "event";
        all[1] = event;
        memcpy(all + 2, kv, 2 * n * sizeof *kv);
        json_line(lvl, all, n + 1);
        return;
    }
    char line[1024];
    int o = snprintf(line, sizeof line, "%s", event);
    for (size_t i = 0; i < n && o > 0 && (size_t)o < sizeof line; i++)
        o += snprintf(line + o, sizeof line - (size_t)o, " %s=%s", kv[2 * i],
                      kv[2 * i + 1] ? kv[2 * i + 1] : "");
    /* values may come from clients: one event stays one line */
    for (char *c = line; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    fprintf(stderr, "usher: %s: %s\n", level_names[lvl], line);
}
