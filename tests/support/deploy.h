/*
 * Test support: deploys a model through the HTTP API of a running serve:
 * uploads its bytes as a blob and PUTs /v1/functions/NAME with the blob's
 * digest and the given config members.
 * Test code: failures return -1 with a line on stderr.
 */
#ifndef ROUSE_TESTS_DEPLOY_H
#define ROUSE_TESTS_DEPLOY_H

#include <stddef.h>

#include "cli/http_client.h"

/* config: JSON members after "model" (e.g. "\"memory_mb\":64"), or "".
 * The PUT's status, its reply in *put (initialized here; the caller
 * finishes it), or -1. */
int support_deploy(const http_target *t, const char *name, const void *model, size_t len,
                   const char *config, http_response *put);

#endif
