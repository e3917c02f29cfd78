/*
 * Registry events (regevent.h): their one JSON shape.
 */
#include <stdio.h>
#include <string.h>

#include "common/arena.h"
#include "common/json.h"
#include "server/regevent.h"

int regevent_format(const char *node, const char *fn, int64_t seq, rouse_buf *out)
{
    int rc = rouse_buf_append_str(out, "{\"node\":");
    if (rc == 0) rc = json_write_string(out, node, strlen(node));
    if (rc == 0) rc = rouse_buf_append_str(out, ",\"fn\":");
    if (rc == 0) rc = json_write_string(out, fn, strlen(fn));
    if (rc == 0) rc = rouse_buf_appendf(out, ",\"seq\":%lld}", (long long)seq);
    return rc;
}

int regevent_parse(const char *data, size_t len, regevent *out, rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    rouse_arena arena;
    rouse_arena_init(&arena, 1024);
    json_value *root;
    int rc = json_parse(data, len, &arena, &root, eb);
    if (rc == 0) {
        const char *node = json_as_string(json_get(root, "node"));
        const char *fn = json_as_string(json_get(root, "fn"));
        if (!node || !*node || strlen(node) >= sizeof(out->node) || !fn ||
            strlen(fn) >= sizeof(out->fn) || !json_as_int64(json_get(root, "seq"), &out->seq) ||
            out->seq < 0) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT,
                               "registry event: expected {\"node\": name, \"fn\": key, \"seq\": n}");
        } else {
            snprintf(out->node, sizeof(out->node), "%s", node);
            snprintf(out->fn, sizeof(out->fn), "%s", fn);
        }
    }
    rouse_arena_fini(&arena);
    return rc;
}
