/*
 * Model upload and the function PUT (see upload.h).
 */
#include "cli/upload.h"

#include <stdlib.h>
#include <string.h>

#include "cli/out.h"
#include "cli/tensor_file.h"
#include "common/sha256.h"

#define PROGRESS_MIN_BYTES 1000000u

static int read_model(cli_client *c, const char *path, uint8_t **buf, size_t *len,
                      char digest[CLI_DIGEST_MAX])
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (cli_file_slurp(path, buf, len, &eb) < 0) {
        fprintf(stderr, "rouse %s: %s\n", c->cmd, eb.msg);
        return -1;
    }
    uint8_t d[ROUSE_SHA256_LEN];
    char hex[ROUSE_SHA256_HEX_LEN + 1];
    rouse_sha256_digest(*buf, *len, d);
    rouse_sha256_hex(d, hex);
    snprintf(digest, CLI_DIGEST_MAX, "sha256:%s", hex);
    return 0;
}

int cli_model_digest(cli_client *c, const char *path, char digest[CLI_DIGEST_MAX])
{
    uint8_t *buf;
    size_t len;
    if (read_model(c, path, &buf, &len, digest) < 0) return -1;
    free(buf);
    return 0;
}

static void on_progress(void *user, uint64_t sent, uint64_t total)
{
    (void)total;
    cli_progress_update(user, sent);
}

int cli_model_upload(cli_client *c, const char *path, char digest[CLI_DIGEST_MAX], bool *uploaded)
{
    uint8_t *buf;
    size_t len;
    *uploaded = false;
    if (read_model(c, path, &buf, &len, digest) < 0) return -1;
    char url[128];
    snprintf(url, sizeof(url), "/v1/blobs/%s", digest);
    http_response r;
    int rc = -1;
    if (cli_call(c, "HEAD", url, NULL, NULL, 0, &r) < 0) goto out_buf;
    int head = r.status;
    http_response_fini(&r);
    if (head == 200) {
        rc = 0;
        goto out_buf;
    }
    if (head != 404) {
        /* HEAD has no body: ask again with GET for the server's message. */
        if (cli_call(c, "GET", url, NULL, NULL, 0, &r) == 0) cli_fail_response(c, &r);
        goto out_buf;
    }
    cli_progress bar;
    char label[96];
    const char *base = strrchr(path, '/');
    snprintf(label, sizeof(label), "uploading %.60s", base ? base + 1 : path);
    cli_progress_init(&bar, label, len);
    bool show = !c->quiet && !c->json && len > PROGRESS_MIN_BYTES;
    const char *h[] = {"Content-Type: application/octet-stream", NULL};
    http_call call = {.method = "POST",
                      .path = "/v1/blobs",
                      .headers = h,
                      .body = buf,
                      .body_len = len,
                      .timeout_ms = CLI_REQUEST_TIMEOUT_MS,
                      .on_progress = show ? on_progress : NULL,
                      .user = &bar};
    if (cli_call_full(c, &call, &r) < 0) goto out_buf;
    if (show) cli_progress_finish(&bar);
    if (r.status != 201) {
        cli_fail_response(c, &r);
        goto out_buf;
    }
    http_response_fini(&r);
    *uploaded = true;
    rc = 0;
out_buf:
    free(buf);
    return rc;
}

int cli_function_put(cli_client *c, const char *name, const char *config_json, bool dry_run,
                     http_response *r)
{
    rouse_buf path;
    rouse_buf_init(&path);
    rouse_buf_append_str(&path, "/v1/functions/");
    cli_url_escape(&path, name);
    if (dry_run) rouse_buf_append_str(&path, "?dry_run=1");
    const char *h[] = {"Content-Type: application/json", NULL};
    int rc = path.data ? cli_call(c, "PUT", path.data, h, config_json, strlen(config_json), r) : -1;
    rouse_buf_fini(&path);
    return rc;
}
