/*
 * The invocation record's sinks and names (invocation.h).
 */
#include "server/invocation.h"

#include <string.h>

#include "rouse/err.h"

int invocation_sink_add(invocation_sinks *s, invocation_sink_fn fn, void *user)
{
    if (s->n >= INV_SINKS_MAX) return ROUSE_ERANGE;
    s->fn[s->n] = fn;
    s->user[s->n] = user;
    s->n++;
    return 0;
}

void invocation_emit(const invocation_sinks *s, const invocation *inv)
{
    for (int i = 0; i < s->n; i++)
        s->fn[i](s->user[i], inv);
}

inv_error inv_error_of(int status)
{
    if (status < 400) return INV_OK;
    switch (status) {
    case 404:
        return INV_ERR_NOT_FOUND;
    case 429:
        return INV_ERR_QUEUE_FULL;
    case 503:
        return INV_ERR_UNAVAILABLE;
    case 504:
        return INV_ERR_TIMEOUT;
    default:
        return status < 500 ? INV_ERR_BAD_REQUEST : INV_ERR_INTERNAL;
    }
}

const char *inv_start_name(inv_start k)
{
    switch (k) {
    case INV_START_WARM:
        return "warm";
    case INV_START_TEMPLATE:
        return "template";
    case INV_START_ZERO:
        return "zero";
    default:
        return "";
    }
}

inv_start inv_start_parse(const char *name)
{
    if (!name) return INV_START_NONE;
    if (strcmp(name, "warm") == 0) return INV_START_WARM;
    if (strcmp(name, "template") == 0) return INV_START_TEMPLATE;
    if (strcmp(name, "zero") == 0) return INV_START_ZERO;
    return INV_START_NONE;
}

const char *inv_error_name(inv_error e)
{
    static const char *const names[INV_ERROR_COUNT] = {
        "ok", "bad_request", "not_found", "queue_full", "timeout", "unavailable", "internal"};
    return (unsigned)e < INV_ERROR_COUNT ? names[e] : "internal";
}

int64_t inv_billed_ms(uint64_t run_us)
{
    return (int64_t)((run_us + 999) / 1000);
}
