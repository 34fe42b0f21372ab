/* assert.c - see assert.h. */
#include "assert.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn void us_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    /* one fprintf: stderr is unbuffered, so the line goes out in one write */
    fprintf(stderr, "%s:%d: %s: assertion failed: %s\n", file, line, func, expr);
    fflush(stderr);
    abort();
}
