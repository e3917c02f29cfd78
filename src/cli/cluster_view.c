/*
 * The server and its cluster as `rouse status` prints them (cluster_view.h):
 * reads GET /v1/cluster (the node list is the membership of the node that
 * answered, docs/architecture.md "Several nodes") and the "rouse" object of
 * GET /v2 (the shared state), and prints a few lines and a table.
 */
#include "cli/cluster_view.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/jfield.h"
#include "cli/out.h"
#include "common/arena.h"

static bool bool_of(const json_value *v, const char *key)
{
    bool b = false;
    json_as_bool(json_get(v, key), &b);
    return b;
}

static size_t count(const json_value *arr)
{
    return arr && arr->type == JSON_ARRAY ? arr->u.arr.n : 0;
}

void cli_state_print(const json_value *meta, bool always)
{
    if (!meta) return;
    const char *st = json_as_string(json_get(meta, "state"));
    if (!st) {
        if (always) printf("state: this node's own (serve runs without --state)\n");
        return;
    }
    if (strcmp(st, "stale") != 0) {
        printf("state: %s (PostgreSQL)\n", st);
        return;
    }
    /* Stale: the functions this node knows are served from its replica,
     * writes are refused until PostgreSQL answers again. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t since = int_of(meta, "stale_since_ms");
    int64_t s = since > 0 && now > since ? (now - since) / 1000 : 0;
    const char *red = cli_style_of(stdout, CLI_RED), *r = cli_style_of(stdout, CLI_RESET);
    printf("state: %sSTALE%s for %" PRId64 "s: PostgreSQL unreachable (%s); serving from this "
           "node's replica, writes refused\n",
           red, r, s, str_of(meta, "state_error"));
}

/* Instances, idle ones and queued calls of one node (of fn, or of all). */
static void node_load(const json_value *node, const char *fn, int64_t *inst, int64_t *idle,
                      int64_t *queued)
{
    *inst = *idle = *queued = 0;
    const json_value *fns = json_get(node, "functions");
    for (size_t i = 0; i < count(fns); i++) {
        const json_value *f = fns->u.arr.items[i];
        if (fn && strcmp(str_of(f, "fn"), fn) != 0) continue;
        *inst += int_of(f, "instances");
        *idle += int_of(f, "idle");
        *queued += int_of(f, "queued");
    }
}

static void print_nodes(const json_value *v, const char *answered, const char *fn)
{
    const json_value *nodes = json_get(v, "nodes");
    size_t n_fresh = 0;
    for (size_t i = 0; i < count(nodes); i++)
        if (bool_of(nodes->u.arr.items[i], "fresh")) n_fresh++;
    const json_value *bus = json_get(v, "bus");
    printf("cluster: %zu node%s (%zu fresh), bus %s%s, forwarding %s\n", count(nodes),
           count(nodes) == 1 ? "" : "s", n_fresh,
           bool_of(bus, "connected") ? "connected" : "disconnected",
           bool_of(bus, "connected") && !bool_of(bus, "membership") ? " (membership not ready)"
                                                                    : "",
           bool_of(v, "forwarding") ? "on" : "off");
    if (!count(nodes)) return;
    static const char *const heads[] = {"NODE",  "URL",   "HEARD",  ">FREE",
                                        ">INST", ">IDLE", ">QUEUED"};
    cli_table t;
    cli_table_init(&t, 7, heads);
    t.flex = 1;
    for (size_t i = 0; i < count(nodes); i++) {
        const json_value *nd = nodes->u.arr.items[i];
        const char *name = str_of(nd, "name");
        int64_t inst, idle, queued;
        node_load(nd, fn, &inst, &idle, &queued);
        cli_table_cell(&t, "%s%s", name, strcmp(name, answered) == 0 ? " *" : "");
        cli_table_cell(&t, "%s", str_of(nd, "url"));
        cli_table_cell(&t, "%s %.1fs ago", bool_of(nd, "fresh") ? "fresh" : "STALE",
                       (double)int_of(nd, "age_ms") / 1000.0);
        cli_table_cell(&t, "%" PRId64, int_of(nd, "slots_free"));
        cli_table_cell(&t, "%" PRId64, inst);
        cli_table_cell(&t, "%" PRId64, idle);
        cli_table_cell(&t, "%" PRId64, queued);
    }
    cli_table_print(&t, stdout);
    cli_table_fini(&t);
    printf("(* answered this call; FREE: instance slots free; INST, IDLE, QUEUED: instances,\n"
           " idle ones and queued calls of %s; STALE: not heard from lately, sent no calls)\n",
           fn ? fn : "all functions");
}

int cli_cluster_print(cli_client *c, const char *fn, bool only_bus)
{
    http_response r;
    if (cli_call(c, "GET", "/v1/cluster", NULL, NULL, 0, &r) < 0) return CLI_EXIT_FAIL;
    if (only_bus && (r.status == 401 || r.status == 403)) {
        printf("cluster: not shown (GET /v1/cluster needs an admin key)\n");
        http_response_fini(&r);
        return CLI_EXIT_OK;
    }
    if (r.status != 200) return cli_fail_response(c, &r);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    int rc = CLI_EXIT_OK;
    if (json_parse(r.body.data, r.body.len, &a, &v, NULL) < 0) {
        fprintf(stderr, "rouse %s: the server's answer is not JSON\n", c->cmd);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    /* The node that answered says so in Rouse-Node (a proxy in front may
     * pick any); "self" is its own name for the same. */
    const char *answered = r.rouse_node[0] ? r.rouse_node : str_of(v, "self");
    bool with_bus = bool_of(json_get(v, "bus"), "configured");
    if (only_bus && !with_bus) goto out;
    printf("node: %s answered (advertised as %s)\n", answered, str_of(v, "advertise"));
    if (!with_bus)
        printf("cluster: none (serve runs without --bus: this node alone)\n");
    else
        print_nodes(v, answered, fn);
out:
    rouse_arena_fini(&a);
    http_response_fini(&r);
    return rc;
}
