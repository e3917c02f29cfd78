/*
 * Logging facade. Formatting happens once into a stack buffer; a record longer
 * than the buffer is truncated, never split, so a sink always sees whole lines.
 */
#include "common/log.h"

#include "rouse/err.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void stderr_sink(void *user, rouse_log_level level, const char *module, const char *msg);

/* Set once in main() or by tests; see log.h. */
static rouse_log_level g_level = ROUSE_LOG_INFO;
static rouse_log_sink_fn g_sink = stderr_sink;
static void *g_sink_user;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *rouse_log_level_name(rouse_log_level level)
{
    if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0])) return "?";
    return level_names[level];
}

int rouse_log_level_parse(const char *s, rouse_log_level *out)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (rouse_log_level)i;
            return 0;
        }
    }
    return ROUSE_EINVAL;
}

static void stderr_sink(void *user, rouse_log_level level, const char *module, const char *msg)
{
    (void)user;
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %-5s %s: %s\n", when, ts.tv_nsec / 1000000,
            rouse_log_level_name(level), module ? module : "-", msg);
}

void rouse_log_set_level(rouse_log_level level)
{
    g_level = level;
}

rouse_log_level rouse_log_get_level(void)
{
    return g_level;
}

void rouse_log_set_sink(rouse_log_sink_fn fn, void *user)
{
    g_sink = fn ? fn : stderr_sink;
    g_sink_user = fn ? user : NULL;
}

void rouse_vlog(rouse_log_level level, const char *module, const char *fmt, va_list ap)
{
    if (level > g_level) return;
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    g_sink(g_sink_user, level, module, msg);
}

void rouse_log(rouse_log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rouse_vlog(level, module, fmt, ap);
    va_end(ap);
}
