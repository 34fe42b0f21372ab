/*
 * log.h - levelled logging to stderr (layer 1).
 *
 * One line per event: "usher: <level>: <message>". The threshold comes
 * from us_log_set_level() or, at first use, the USHER_LOG environment
 * variable (error|warn|info|debug). Library code logs; it never prints to
 * stdout, which belongs to the front ends.
 */
#ifndef US_LOG_H
#define US_LOG_H

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
void us_log(us_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define US_LOGE(...) us_log(US_LOG_ERROR, __VA_ARGS__)
#define US_LOGW(...) us_log(US_LOG_WARN, __VA_ARGS__)
#define US_LOGI(...) us_log(US_LOG_INFO, __VA_ARGS__)
#define US_LOGD(...) us_log(US_LOG_DEBUG, __VA_ARGS__)

#endif
