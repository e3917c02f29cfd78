/*
 * libFuzzer target for the whole path of an HTTP request through serve,
 * without sockets: the bytes are one request as it arrives on a
 * connection, handed to the functions the daemon uses on it in turn:
 * - the gate's head check (http_head_inspect), then the request line and
 *   the headers serve reads (Content-Length, Inference-Header-Content-
 *   Length) as libmicrohttpd would pass them on (this harness splits the
 *   head itself: libmicrohttpd's own parser is not under test);
 * - the route table (route_match, route_sink, route_body_limit) and the
 *   body limit;
 * - the body's parser for the route: for an inference, the OIP decoder in
 *   an instance (oip_decode_request) against a small model built in memory
 *   (x FP32 [-1,2] -> Relu -> y), with the instance's decode budget (the
 *   arena limit) and, when it decodes, a run and the encoded reply; a
 *   function config for PUT /v1/functions/{name} (fn_config_parse); the
 *   JSON parser for every other route with a body.
 * Any bytes get an answer: never a crash, a leak or a read past the input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "onnx_builder.h"
#include "server/config.h"
#include "server/http_head.h"
#include "server/http_int.h"
#include "worker/oip.h"

#define MAX_BODY (1u << 20)
#define DECODE_BUDGET (256u << 10) /* small, so that the limit is reached */

static rouse_buf model_bytes;
static rouse_model *model;
static rouse_session *session;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ob_model *om = ob_model_new(13);
    int64_t xd[2] = {-1, 2};
    ob_input(om, "x", ROUSE_DT_FLOAT, 2, xd);
    const char *x = "x", *y = "y";
    ob_add_node(om, "Relu", "relu", 1, &x, 1, &y);
    ob_output(om, "y", ROUSE_DT_FLOAT, 2, xd);
    rouse_buf_init(&model_bytes);
    ob_serialize(om, &model_bytes);
    ob_model_free(om);
    rouse_errbuf eb;
    rouse_session_options o = {.threads = 1, .reference_kernels = 1,
                               .max_activation_bytes = 1u << 20};
    if (rouse_model_load_memory(model_bytes.data, model_bytes.len, &model, &eb) < 0 ||
        rouse_session_create(model, &o, &session, &eb) < 0) {
        fprintf(stderr, "http_request: cannot build the model: %s\n", eb.msg);
        abort();
    }
    return 0;
}

/* The value of header `name` in head[0..len) (after the request line), as
 * libmicrohttpd hands it on: trimmed; NULL when absent. Owned: free(). */
static char *header(const char *head, size_t len, const char *name)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', len), *end = head + len;
    char *found = NULL;
    while (p && p + 1 < end) {
        const char *line = p + 1;
        const char *e = memchr(line, '\n', (size_t)(end - line));
        if (!e) break;
        if ((size_t)(e - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1, *ve = e;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            free(found);
            found = strndup(v, (size_t)(ve - v));
        }
        p = e;
    }
    return found;
}

static void infer(const char *body, size_t len, const char *ihcl)
{
    int64_t json_len = -1;
    if (ihcl) {
        char *e;
        long long v = strtoll(ihcl, &e, 10);
        if (*e || v < 0) return; /* http.c answers 400 */
        json_len = v;
    }
    rouse_arena arena;
    rouse_arena_init(&arena, 4096);
    rouse_arena_set_limit(&arena, DECODE_BUDGET);
    oip_request req;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = oip_decode_request(body, len, json_len, model, &arena, &req, &eb);
    if (rc < 0) {
        if (!arena.over && ((rc != ROUSE_EFORMAT && rc != ROUSE_EINVAL && rc != ROUSE_EMISMATCH) ||
                            !eb.msg[0]))
            abort();
        rouse_arena_fini(&arena);
        return;
    }
    rc = rouse_session_run(session, req.inputs, req.n_inputs, &eb);
    if (rc < 0 && rc != ROUSE_ETOOBIG) {
        fprintf(stderr, "decoded request rejected by the engine: %s\n", eb.msg);
        abort();
    }
    if (rc == 0) {
        rouse_buf out;
        rouse_buf_init(&out);
        int64_t jl;
        if (oip_encode_response(&req, "fuzz", "1", model, session, &out, &jl, &eb) < 0) abort();
        rouse_buf_fini(&out);
    }
    rouse_arena_fini(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1); /* exact size: ASan sees a read past it */
    if (!buf) return 0;
    memcpy(buf, data, size);
    http_head_check c;
    http_head_inspect(buf, size, &c);
    if (c.verdict != HTTP_HEAD_OK || c.chunked) goto out;
    /* The request line, as libmicrohttpd splits it. */
    const char *p = buf;
    while (*p == '\r' || *p == '\n')
        p++;
    const char *sp1 = memchr(p, ' ', c.head_len - (size_t)(p - buf));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', c.head_len - (size_t)(sp1 + 1 - buf)) : NULL;
    if (!sp1 || !sp2) abort(); /* the head check let a request line through without both */
    char method[17], *target = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    snprintf(method, sizeof(method), "%.*s", (int)(sp1 - p), p);
    if (!target) goto out;
    if (!http_method_valid(method) || http_target_has_nul(target, strlen(target))) abort();
    char *q = strchr(target, '?');
    if (q) *q = '\0';
    route r;
    route_match(method, target, &r);
    free(target);
    uint64_t limit = route_body_limit(r.id, MAX_BODY, MAX_BODY);
    if (c.body_len > limit) goto out; /* 413 */
    const char *body = buf + c.head_len;
    size_t blen = size - c.head_len < c.body_len ? size - c.head_len : (size_t)c.body_len;
    char *ihcl = header(buf, c.head_len, "Inference-Header-Content-Length");
    if (r.id == R_INFER && route_sink(r.id) == BODY_INSTANCE) {
        infer(body, blen, ihcl);
    } else if (r.id == R_FN_PUT) {
        fn_config cfg;
        rouse_errbuf eb;
        if (fn_config_parse(body, blen, &cfg, &eb) == 0) {
            rouse_buf w;
            rouse_buf_init(&w);
            fn_config_write(&cfg, &w);
            rouse_buf_fini(&w);
        }
    } else if (blen > 0) {
        rouse_arena a;
        rouse_arena_init(&a, 4096);
        json_value *v;
        rouse_errbuf eb;
        json_parse(body, blen, &a, &v, &eb);
        rouse_arena_fini(&a);
    }
    free(ihcl);
out:
    free(buf);
    return 0;
}
