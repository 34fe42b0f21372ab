/* err.c - see err.h; also the status name/message tables. */
#include "err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

const char *usher_status_name(int code)
{
    switch (code) {
#define NAME_(name, val, msg)                                                                      \
    case val:                                                                                      \
        return "USHER_" #name;
        USHER_STATUS_LIST(NAME_)
#undef NAME_
    }
    return "USHER_UNKNOWN";
}

const char *usher_status_message(int code)
{
    switch (code) {
#define MSG_(name, val, msg)                                                                       \
    case val:                                                                                      \
        return msg;
        USHER_STATUS_LIST(MSG_)
#undef MSG_
    }
    return "unknown status";
}

int us_err_set(usher_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = (usher_status)code;
    }
    return code;
}

static _Atomic uint64_t g_missing;

uint64_t us_err_missing_detail_count(void) { return atomic_load(&g_missing); }

int us_err_prefix(usher_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    if (err->code != code || !err->msg[0]) {
        atomic_fetch_add(&g_missing, 1);
        us_err_set(err, code, "%s (no detail)", usher_status_message(code));
    }
    char pre[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return code;
    size_t plen = strlen(pre), mlen = strlen(err->msg);
    if (plen >= sizeof err->msg)
        plen = sizeof err->msg - 1;
    if (plen + mlen >= sizeof err->msg)
        mlen = sizeof err->msg - 1 - plen;
    memmove(err->msg + plen, err->msg, mlen);
    memcpy(err->msg, pre, plen);
    err->msg[plen + mlen] = '\0';
    return code;
}

void us_err_clear(usher_error *err)
{
    if (err) {
        err->code = USHER_OK;
        err->msg[0] = '\0';
    }
}
