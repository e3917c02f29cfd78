/*
 * GET /v1/cluster (admin): this node, its bus, and every node membership
 * heard from with the age of its data and its load (membership.h). Without
 * --bus the list is empty.
 */
#include <string.h>

#include "common/json.h"
#include "common/timeutil.h"
#include "server/bus.h"
#include "server/http_int.h"
#include "server/membership.h"

int api_cluster_handle(http_req *req)
{
    server *s = req->srv;
    rouse_buf b;
    rouse_buf_init(&b);
    int rc = rouse_buf_append_str(&b, "{\"self\":");
    if (rc == 0) rc = json_write_string(&b, s->node_name, strlen(s->node_name));
    if (rc == 0) rc = rouse_buf_append_str(&b, ",\"advertise\":");
    if (rc == 0) rc = json_write_string(&b, s->advertise, strlen(s->advertise));
    if (rc == 0)
        rc = rouse_buf_appendf(&b, ",\"bus\":{\"configured\":%s,\"connected\":%s,\"membership\":%s},"
                                   "\"forwarding\":%s,\"nodes\":",
                               s->bus ? "true" : "false",
                               s->bus && bus_connected(s->bus) ? "true" : "false",
                               s->bus && bus_kv_ready(s->bus) ? "true" : "false",
                               s->fwd ? "true" : "false");
    if (rc == 0 && s->members)
        rc = membership_write_json(s->members, rouse_now_ns(), &b);
    else if (rc == 0)
        rc = rouse_buf_append_str(&b, "[]");
    if (rc == 0) rc = rouse_buf_append_str(&b, "}\n");
    http_reply_built(req, 200, &b, rc);
    return 0;
}
