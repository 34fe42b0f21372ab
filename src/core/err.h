/*
 * err.h - filling an usher_error (layer 1).
 *
 * us_err_set() formats the detail; a NULL error pointer is accepted and the
 * code is still returned, so a failing path reads
 *     return us_err_set(err, USHER_ERR_PARSE, "%s: field 'x' ...", path);
 * us_err_prefix() prepends context ("model.onnx: ") while an error travels
 * up, so the innermost code knows the field and the outer one the file. It
 * takes the code being returned and returns it; if the inner code forgot to
 * write a message, the generic one is used and "(no detail)" marks the bug
 * (tests look for it).
 */
#ifndef US_ERR_H
#define US_ERR_H

#include <stdint.h>

#include "usher/status.h"

int us_err_set(usher_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int us_err_prefix(usher_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void us_err_clear(usher_error *err);
/* How many errors reached us_err_prefix without a message (a bug; tests check it stays 0). */
uint64_t us_err_missing_detail_count(void);

#endif
