/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int g_level = -1; /* -1: not yet read from the environment */

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

void us_log(us_log_level lvl, const char *fmt, ...)
{
    if ((int)lvl > (int)us_log_get_level())
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "usher: %s: %s\n", level_names[lvl], line);
}
