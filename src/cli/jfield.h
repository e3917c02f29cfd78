/*
 * Fields of a server's JSON reply as the client subcommands print them: a
 * missing integer reads as 0, a missing string as "?".
 */
#ifndef ROUSE_CLI_JFIELD_H
#define ROUSE_CLI_JFIELD_H

#include <stdint.h>

#include "common/json.h"

static inline int64_t int_of(const json_value *v, const char *key)
{
    int64_t x = 0;
    json_as_int64(json_get(v, key), &x);
    return x;
}

static inline const char *str_of(const json_value *v, const char *key)
{
    const char *s = json_as_string(json_get(v, key));
    return s ? s : "?";
}

#endif
