/*
 * The web console (docs/architecture.md, "The console"): GET / answers
 * index.html and GET /console/{file} the other embedded files
 * (console_assets.h). Every console reply carries a Content-Security-Policy
 * that allows scripts, styles and connections from this origin only (no
 * inline script or style, no frames, no forms), so that nothing injected
 * into the page could run; the console sets no cookie and the API takes
 * no cookie, so there is no cross-site request to forge. 404 with
 * `--console off`.
 */
#include <stdio.h>
#include <string.h>

#include "server/console_assets.h"
#include "server/http_int.h"

int api_console_handle(http_req *req)
{
    if (req->srv->opts.console_off) {
        http_reply_error(req, 404, "the console is off (rouse serve --console off)");
        return 0;
    }
    const char *want = req->r.alias[0] ? req->r.alias : "index.html";
    const console_asset *a = NULL;
    for (size_t i = 0; i < console_n_assets; i++)
        if (strcmp(console_assets[i].name, want) == 0) a = &console_assets[i];
    if (!a || req->r.param_too_long) {
        http_reply_error(req, 404, "no such console file");
        return 0;
    }
    rouse_buf b;
    rouse_buf_init(&b);
    if (rouse_buf_append(&b, a->data, a->len) < 0) {
        rouse_buf_fini(&b);
        http_reply_error(req, 500, "out of memory");
        return 0;
    }
    http_reply_json(req, 200, &b);
    rouse_buf_fini(&b);
    req->reply.console = true;
    snprintf(req->reply.content_type, sizeof(req->reply.content_type), "%s", a->type);
    return 0;
}
