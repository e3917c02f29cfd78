/*
 * Test support: requests and deploys against a serve under test (see
 * fn_deploy.h).
 */
#include "fn_deploy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/tensor_file.h"
#include "common/arena.h"
#include "common/json.h"

#define REQUEST_TIMEOUT_MS 120000

int test_request(const http_target *t, const char *method, const char *path, const void *body,
                 size_t len, http_response *r)
{
    http_response_init(r);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = http_request(t, method, path, NULL, body, body ? len : 0, REQUEST_TIMEOUT_MS, r, &eb);
    if (rc < 0) fprintf(stderr, "%s %s: %s\n", method, path, eb.msg);
    return rc < 0 ? -1 : r->status;
}

int test_deploy_model(const http_target *t, const char *name, const void *model, size_t len,
                      const char *extra, char *digest, http_response *r)
{
    int st = test_request(t, "POST", "/v1/blobs", model, len, r);
    if (st != 201 && st != 200) {
        fprintf(stderr, "upload for %s: %d %s\n", name, st, r->body.data ? r->body.data : "");
        http_response_fini(r);
        return -1;
    }
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v = NULL;
    const char *d = NULL;
    if (json_parse(r->body.data, r->body.len, &a, &v, NULL) == 0)
        d = json_as_string(json_get(v, "digest"));
    char body[1024], path[160];
    snprintf(body, sizeof(body), "{\"model\":\"%s\"%s%s}", d ? d : "", extra[0] ? "," : "", extra);
    if (digest) snprintf(digest, 80, "%s", d ? d : "");
    rouse_arena_fini(&a);
    http_response_fini(r);
    snprintf(path, sizeof(path), "/v1/functions/%s", name);
    return test_request(t, "PUT", path, body, strlen(body), r);
}

int test_logits_argmax(const http_response *r)
{
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *root = NULL;
    int best = -1;
    if (r->body.data && json_parse(r->body.data, r->body.len, &a, &root, NULL) == 0) {
        const json_value *outs = json_get(root, "outputs");
        for (size_t i = 0; outs && outs->type == JSON_ARRAY && i < outs->u.arr.n; i++) {
            const json_value *o = outs->u.arr.items[i];
            const char *name = json_as_string(json_get(o, "name"));
            const json_value *d = json_get(o, "data");
            if (!name || strcmp(name, "logits") != 0 || !d || d->type != JSON_ARRAY) continue;
            double bv = 0;
            for (size_t k = 0; k < d->u.arr.n; k++) {
                double x = 0;
                json_as_double(d->u.arr.items[k], &x);
                if (best < 0 || x > bv) {
                    bv = x;
                    best = (int)k;
                }
            }
        }
    }
    rouse_arena_fini(&a);
    return best;
}

int test_digit_samples(const char *digits_dir, char *out[10])
{
    for (int d = 0; d < 10; d++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/samples/digit-%d.json", digits_dir, d);
        uint8_t *buf = NULL;
        size_t len = 0;
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        out[d] = NULL;
        if (cli_file_slurp(path, &buf, &len, &eb) == 0 && (out[d] = malloc(len + 1))) {
            memcpy(out[d], buf, len);
            out[d][len] = '\0';
        }
        if (out[d] == NULL) fprintf(stderr, "sample %s: %s\n", path, eb.msg);
        free(buf);
        if (!out[d]) {
            while (d-- > 0)
                free(out[d]), out[d] = NULL;
            return -1;
        }
    }
    return 0;
}

int test_upload_file(const http_target *t, const char *path, char *digest)
{
    uint8_t *buf;
    size_t len;
    rouse_errbuf eb;
    if (cli_file_slurp(path, &buf, &len, &eb) < 0) {
        fprintf(stderr, "%s: %s\n", path, eb.msg);
        return -1;
    }
    http_response r;
    int st = test_request(t, "POST", "/v1/blobs", buf, len, &r);
    free(buf);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v = NULL;
    const char *d = NULL;
    if ((st == 201 || st == 200) && json_parse(r.body.data, r.body.len, &a, &v, NULL) == 0)
        d = json_as_string(json_get(v, "digest"));
    if (d) snprintf(digest, 80, "%s", d);
    else fprintf(stderr, "upload of %s: %d %s\n", path, st, r.body.data ? r.body.data : "");
    rouse_arena_fini(&a);
    http_response_fini(&r);
    return d ? 0 : -1;
}
