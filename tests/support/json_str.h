/* A string field of a JSON document into out ("" when absent or when the
 * document does not parse): for tests reading a reply's id or status. */
#ifndef ROUSE_TESTS_SUPPORT_JSON_STR_H
#define ROUSE_TESTS_SUPPORT_JSON_STR_H

#include <stdio.h>
#include <string.h>

#include "common/arena.h"
#include "common/json.h"

static inline void json_str(const char *doc, const char *key, char *out, size_t cap)
{
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    out[0] = '\0';
    if (json_parse(doc, strlen(doc), &a, &v, NULL) == 0) {
        const char *s = json_as_string(json_get(v, key));
        if (s) snprintf(out, cap, "%s", s);
    }
    rouse_arena_fini(&a);
}

#endif
