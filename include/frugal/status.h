/* Status codes, the last-error message and the log callback shared by every frugal call. */
#ifndef FRUGAL_STATUS_H
#define FRUGAL_STATUS_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every public call that can fail returns one of these; fr_last_error() has the detail. */
enum fr_status {
    FR_STATUS_OK = 0,
    FR_STATUS_INVALID_ARGUMENT, /* caller passed something that makes no sense */
    FR_STATUS_SHAPE,            /* tensor shapes do not fit the op */
    FR_STATUS_OUT_OF_MEMORY,
    FR_STATUS_IO,               /* a file could not be opened, read or written */
    FR_STATUS_FORMAT,           /* a file was read but its contents are malformed */
    FR_STATUS_UNSUPPORTED,      /* valid request this build or device cannot do */
    FR_STATUS_DEVICE,           /* the compute device or its driver failed */
    FR_STATUS_NUMERIC,          /* NaN/Inf where a finite value was required */
    FR_STATUS_INTERRUPTED,      /* stopped on request (SIGINT) */
    FR_STATUS_NOT_FOUND,
    FR_STATUS_COUNT
};

/* Short constant name of a status, e.g. "format error". */
const char *fr_status_str(enum fr_status s);

/* Message of the most recent failure in this thread ("" if none). */
const char *fr_last_error(void);
void fr_clear_error(void);

/* Records a message for fr_last_error() and returns `s`, so failures read
 * `return fr_error(FR_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));` */
enum fr_status fr_error(enum fr_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

enum fr_log_level { FR_LOG_DEBUG = 0, FR_LOG_INFO, FR_LOG_WARN, FR_LOG_ERROR };
typedef void (*fr_log_fn)(enum fr_log_level level, const char *msg, void *user);

/* Library code never prints; it hands messages to this callback (default: none below WARN to stderr). */
void fr_log_set_callback(fr_log_fn fn, void *user);
void fr_log_set_level(enum fr_log_level min_level);
void fr_log(enum fr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when FRUGAL_DEBUG contains `topic` (comma-separated list, e.g. "sched,cache"). */
int fr_debug_enabled(const char *topic);

#ifdef __cplusplus
}
#endif
#endif
