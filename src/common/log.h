/*
 * Logging facade: levels, one settable sink.
 *
 * The sink and the level are process-wide and are meant to be set once in
 * main() (or by a test) before other threads start; they are the only mutable
 * globals of src/common. The default sink writes one line per record to stderr:
 * "2026-11-28T13:00:00.123Z info  engine: message".
 */
#ifndef ROUSE_COMMON_LOG_H
#define ROUSE_COMMON_LOG_H

#include <stdarg.h>

typedef enum rouse_log_level {
    ROUSE_LOG_ERROR = 0,
    ROUSE_LOG_WARN = 1,
    ROUSE_LOG_INFO = 2,
    ROUSE_LOG_DEBUG = 3,
} rouse_log_level;

/* A sink receives the level, the module tag and the formatted message (no newline). */
typedef void (*rouse_log_sink_fn)(void *user, rouse_log_level level, const char *module,
                                  const char *msg);

/* Records above `level` are dropped before they are formatted. Default: INFO. */
void rouse_log_set_level(rouse_log_level level);
rouse_log_level rouse_log_get_level(void);

/* Replaces the sink; NULL restores the default stderr sink. */
void rouse_log_set_sink(rouse_log_sink_fn fn, void *user);

/* Parses "error", "warn", "info", "debug"; returns 0 or ROUSE_EINVAL. */
int rouse_log_level_parse(const char *s, rouse_log_level *out);

/* Short lower-case name of a level ("info"). */
const char *rouse_log_level_name(rouse_log_level level);

void rouse_log(rouse_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rouse_vlog(rouse_log_level level, const char *module, const char *fmt, va_list ap);

#define LOG_ERROR(mod, ...) rouse_log(ROUSE_LOG_ERROR, mod, __VA_ARGS__)
#define LOG_WARN(mod, ...) rouse_log(ROUSE_LOG_WARN, mod, __VA_ARGS__)
#define LOG_INFO(mod, ...) rouse_log(ROUSE_LOG_INFO, mod, __VA_ARGS__)
#define LOG_DEBUG(mod, ...) rouse_log(ROUSE_LOG_DEBUG, mod, __VA_ARGS__)

#endif
