/*
 * Error table lookups and error buffers. The table is ROUSE_ERR_MAP in
 * include/rouse/err.h; this file only indexes it.
 */
#include "rouse/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct err_entry {
    int code;
    const char *name;
    const char *msg;
    int http;
};

static const struct err_entry err_table[] = {
#define ERR_ROW_(name, num, msg, http) {-(num), "ROUSE_E" #name, msg, http},
    ROUSE_ERR_MAP(ERR_ROW_)
#undef ERR_ROW_
};

_Static_assert(sizeof(err_table) / sizeof(err_table[0]) == ROUSE_ERR_COUNT,
               "ROUSE_ERR_COUNT must match ROUSE_ERR_MAP");

static const struct err_entry *err_find(int rc)
{
    for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
        if (err_table[i].code == rc) return &err_table[i];
    return NULL;
}

const char *rouse_strerror(int rc)
{
    if (rc == ROUSE_OK) return "success";
    const struct err_entry *e = err_find(rc);
    return e ? e->msg : "unknown error";
}

int rouse_err_http_status(int rc)
{
    if (rc == ROUSE_OK) return 200;
    const struct err_entry *e = err_find(rc);
    return e ? e->http : 500;
}

const char *rouse_err_name(int rc)
{
    if (rc == ROUSE_OK) return "ROUSE_OK";
    const struct err_entry *e = err_find(rc);
    return e ? e->name : "ROUSE_EUNKNOWN";
}

void rouse_errbuf_clear(rouse_errbuf *eb)
{
    if (!eb) return;
    eb->code = 0;
    eb->msg[0] = '\0';
}

int rouse_err_set(rouse_errbuf *eb, int rc, const char *fmt, ...)
{
    if (!eb) return rc;
    eb->code = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
    va_end(ap);
    return rc;
}

int rouse_err_wrap(rouse_errbuf *eb, int rc, const char *fmt, ...)
{
    if (!eb) return rc;
    char old[sizeof(eb->msg)];
    memcpy(old, eb->msg, sizeof(old));
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
    va_end(ap);
    if (old[0] && n >= 0 && (size_t)n < sizeof(eb->msg))
        snprintf(eb->msg + n, sizeof(eb->msg) - (size_t)n, ": %s", old);
    eb->code = rc;
    return rc;
}
