/*
 * What `rouse status` shows of the server beyond one function: the node
 * that answered, whether its shared state is stale, and, when it runs with
 * a bus, every node of the cluster (GET /v1/cluster).
 */
#ifndef ROUSE_CLI_CLUSTER_VIEW_H
#define ROUSE_CLI_CLUSTER_VIEW_H

#include <stdbool.h>

#include "cli/client.h"
#include "common/json.h"

/* Prints the state line from meta, the "rouse" object of GET /v2 (NULL:
 * nothing): "shared", or "STALE since ..." with PostgreSQL's error; nothing
 * without --state unless always is set. */
void cli_state_print(const json_value *meta, bool always);

/* Prints the node that answered and the cluster from GET /v1/cluster: each
 * node's advertised URL, whether what was heard of it is fresh, its free
 * instance slots, and its instances, idle ones and queued calls (of
 * function fn, or of all functions when fn is NULL). With only_bus, prints
 * nothing when the server runs without a bus, and a note instead of
 * failing when the key may not read GET /v1/cluster (admin). 0, or an exit
 * status after printing why. */
int cli_cluster_print(cli_client *c, const char *fn, bool only_bus);

#endif
