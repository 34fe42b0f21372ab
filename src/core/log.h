/*
 * log.h - levelled logging to stderr (layer 1).
 *
 * One line per event: "usher: <level>: <message>", or with the JSON format
 * one object per line: {"time": "2026-11-25T16:40:00.123Z", "level": "warn",
 * "msg": "..."} (us_log) or {"time", "level", "event", key: value, ...}
 * (us_log_event; text form "usher: info: event key=value ..."). The
 * threshold comes from us_log_set_level() or, at first use, the USHER_LOG
 * environment variable (error|warn|info|debug); the format from
 * us_log_set_format() or USHER_LOG_FORMAT (text|json). Library code logs; it
 * never prints to stdout, which belongs to the front ends.
 */
#ifndef US_LOG_H
#define US_LOG_H

#include <stddef.h>

typedef enum us_log_level {
    US_LOG_ERROR = 0,
    US_LOG_WARN = 1,
    US_LOG_INFO = 2,
    US_LOG_DEBUG = 3,
} us_log_level;

void us_log_set_level(us_log_level lvl);
us_log_level us_log_get_level(void);
/* Parse "error", "warn", "info", "debug"; -1 if none of them. */
int us_log_parse_level(const char *s);
typedef enum us_log_format { US_LOG_TEXT = 0, US_LOG_JSON = 1 } us_log_format;
void us_log_set_format(us_log_format f);
us_log_format us_log_get_format(void);

void us_log(us_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* an event with n key/value pairs kv[0..2n) (values are strings; at most 16 pairs) */
void us_log_event(us_log_level lvl, const char *event, const char *const *kv, size_t n);

#define US_LOGE(...) us_log(US_LOG_ERROR, __VA_ARGS__)
#define US_LOGW(...) us_log(US_LOG_WARN, __VA_ARGS__)
#define US_LOGI(...) us_log(US_LOG_INFO, __VA_ARGS__)
#define US_LOGD(...) us_log(US_LOG_DEBUG, __VA_ARGS__)

#endif
