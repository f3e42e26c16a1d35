/* Status names, the per-thread last-error message, the log callback and FRUGAL_DEBUG topics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "frugal_config.h"

static _Thread_local char last_error[16384]; /* room for every mismatch of a model and its weights */

const char *fr_status_str(enum fr_status s)
{
    switch (s) {
    case FR_STATUS_OK: return "ok";
    case FR_STATUS_INVALID_ARGUMENT: return "invalid argument";
    case FR_STATUS_SHAPE: return "shape mismatch";
    case FR_STATUS_OUT_OF_MEMORY: return "out of memory";
    case FR_STATUS_IO: return "i/o error";
    case FR_STATUS_FORMAT: return "format error";
    case FR_STATUS_UNSUPPORTED: return "unsupported";
    case FR_STATUS_DEVICE: return "device error";
    case FR_STATUS_NUMERIC: return "numeric error";
    case FR_STATUS_INTERRUPTED: return "interrupted";
    case FR_STATUS_NOT_FOUND: return "not found";
    case FR_STATUS_COUNT: break;
    }
    return "unknown status";
}

const char *fr_last_error(void) { return last_error; }
void fr_clear_error(void) { last_error[0] = 0; }

enum fr_status fr_verror(enum fr_status s, const char *fmt, va_list ap)
{
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    return s;
}

enum fr_status fr_error(enum fr_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fr_verror(s, fmt, ap);
    va_end(ap);
    return s;
}

static void default_log(enum fr_log_level level, const char *msg, void *user)
{
    (void)user;
    static const char *names[] = {"debug", "info", "warning", "error"};
    fprintf(stderr, "frugal: %s: %s\n", names[level], msg);
}

static fr_log_fn log_fn = default_log;
static void *log_user;
static enum fr_log_level log_min = FR_LOG_WARN;

void fr_log_set_callback(fr_log_fn fn, void *user)
{
    log_fn = fn;
    log_user = user;
}

void fr_log_set_level(enum fr_log_level min_level) { log_min = min_level; }

void fr_log(enum fr_log_level level, const char *fmt, ...)
{
    if (!log_fn || (level < log_min && level != FR_LOG_DEBUG))
        return;
    /* debug lines: asked for with the log level, or by a FRUGAL_DEBUG topic (the caller checks which) */
    const char *dbg = getenv("FRUGAL_DEBUG");
    if (level == FR_LOG_DEBUG && log_min > FR_LOG_DEBUG && !(dbg && *dbg))
        return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_fn(level, buf, log_user);
}

int fr_debug_enabled(const char *topic)
{
    const char *v = getenv("FRUGAL_DEBUG");
    if (!v || !*v)
        return 0;
    size_t n = strlen(topic);
    for (const char *p = v; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if ((len == n && strncmp(p, topic, n) == 0) || (len == 3 && strncmp(p, "all", 3) == 0))
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

const char *fr_version(void) { return FRUGAL_VERSION; }
