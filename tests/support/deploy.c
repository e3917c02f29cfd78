/* See deploy.h. */
#include "deploy.h"

#include <stdio.h>
#include <string.h>

#include "common/arena.h"
#include "common/json.h"

#define DEPLOY_TIMEOUT_MS 120000

int support_deploy(const http_target *t, const char *name, const void *model, size_t len,
                   const char *config, http_response *put)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    http_response r;
    http_response_init(&r);
    http_response_init(put);
    if (http_request(t, "POST", "/v1/blobs", NULL, model, len, DEPLOY_TIMEOUT_MS, &r, &eb) < 0 ||
        r.status != 201) {
        fprintf(stderr, "upload of %s: %d %s%s\n", name, r.status, eb.msg,
                r.body.data ? r.body.data : "");
        http_response_fini(&r);
        return -1;
    }
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v = NULL;
    const char *digest = NULL;
    if (json_parse(r.body.data, r.body.len, &a, &v, &eb) == 0)
        digest = json_as_string(json_get(v, "digest"));
    char body[1024], path[256];
    int rc = -1;
    if (digest) {
        snprintf(body, sizeof(body), "{\"model\":\"%s\"%s%s}", digest, config[0] ? "," : "",
                 config);
        snprintf(path, sizeof(path), "/v1/functions/%s", name);
        if (http_request(t, "PUT", path, NULL, body, strlen(body), DEPLOY_TIMEOUT_MS, put, &eb) == 0)
            rc = put->status;
        else
            fprintf(stderr, "PUT %s: %s\n", path, eb.msg);
    } else {
        fprintf(stderr, "upload of %s: no digest in the reply\n", name);
    }
    rouse_arena_fini(&a);
    http_response_fini(&r);
    return rc;
}
