/*
 * The OpenAI-style request decoder (openai_request.h). Every check names
 * the field it refuses; nothing here trusts the body's sizes: arrays and
 * strings are bounded by the JSON parser's result, token ids by the
 * vocabulary, lengths by the context.
 */
#include "worker/openai_request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/timeutil.h"

#define CHAT_DEFAULT_MAX_TOKENS 256
#define COMPLETIONS_DEFAULT_MAX_TOKENS 16

static int bad(openai_reply *rep, rouse_buf *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(openai_reply *rep, rouse_buf *out, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rouse_buf_clear(out);
    rouse_buf_append_str(out, "{\"error\":");
    json_write_string(out, msg, strlen(msg));
    rouse_buf_append_str(out, "}");
    rep->status = 400;
    rep->content_type = "application/json";
    return 0;
}

static const char *const known[] = {
    "model",       "prompt",         "messages", "max_tokens", "max_completion_tokens",
    "temperature", "top_p",          "top_k",    "seed",       "stop",
    "stream",      "stream_options", "truncate", "n",          "user"};

static void note_unknown(const json_value *root, char *warning)
{
    size_t w = 0;
    warning[0] = '\0';
    for (size_t i = 0; i < root->u.obj.n; i++) {
        const char *k = root->u.obj.members[i].key;
        bool ok = false;
        for (size_t j = 0; j < sizeof(known) / sizeof(known[0]) && !ok; j++)
            ok = strcmp(k, known[j]) == 0;
        if (ok) continue;
        if (w == 0) w = (size_t)snprintf(warning, IPC_WARNING_MAX, "ignored parameters: ");
        int n = snprintf(warning + w, IPC_WARNING_MAX - w, "%s%s", w > 20 ? ", " : "", k);
        if (n < 0 || w + (size_t)n >= IPC_WARNING_MAX) {
            /* Cut: say so with an ellipsis that fits. */
            snprintf(warning + IPC_WARNING_MAX - 5, 5, "...");
            return;
        }
        w += (size_t)n;
    }
}

static bool as_number(const json_value *v, double *d)
{
    return v && v->type == JSON_NUMBER && json_as_double(v, d);
}

/* Message content: a string, or an array of {"type":"text","text":...}. */
static int message_text(const json_value *c, rouse_buf *b)
{
    if (c && c->type == JSON_STRING) return rouse_buf_append(b, c->u.str.s, c->u.str.len);
    if (!c || c->type != JSON_ARRAY) return ROUSE_EINVAL;
    for (size_t i = 0; i < c->u.arr.n; i++) {
        const json_value *t = json_get(c->u.arr.items[i], "text");
        if (!t || t->type != JSON_STRING) return ROUSE_EINVAL;
        rouse_buf_append(b, t->u.str.s, t->u.str.len);
    }
    return 0;
}

/* The fields of root into rq; the prompt's text (chat: the template
 * applied) into *prompt, or its ids into *tokens. */
static int parse_fields(const json_value *root, bool chat, int max_context, openai_request *rq,
                        bool *max_given, rouse_buf *prompt, int32_t **tokens, int *n_tokens,
                        rouse_arena *arena, openai_reply *rep, rouse_buf *out)
{
    rq->chat = chat;
    rq->gp.sp.temperature = 1.0;
    rq->gp.sp.top_p = 1.0;
    rq->gp.seed = rouse_now_ns() ^ ((uint64_t)getpid() << 32);
    const json_value *v;
    if (chat) {
        v = json_get(root, "messages");
        if (!v || v->type != JSON_ARRAY || v->u.arr.n == 0)
            return bad(rep, out, "messages: must be a non-empty array of {\"role\", \"content\"}");
        for (size_t i = 0; i < v->u.arr.n; i++) {
            const json_value *role = json_get(v->u.arr.items[i], "role");
            if (!role || role->type != JSON_STRING)
                return bad(rep, out, "messages[%zu].role: must be a string", i);
            rouse_buf_append(prompt, role->u.str.s, role->u.str.len);
            rouse_buf_append_str(prompt, ": ");
            if (message_text(json_get(v->u.arr.items[i], "content"), prompt) < 0)
                return bad(rep, out,
                           "messages[%zu].content: must be a string or an array of text parts", i);
            rouse_buf_append_str(prompt, "\n");
        }
        rouse_buf_append_str(prompt, "assistant:");
    } else {
        v = json_get(root, "prompt");
        if (v && v->type == JSON_ARRAY && v->u.arr.n == 1 && v->u.arr.items[0]->type == JSON_STRING)
            v = v->u.arr.items[0];
        if (v && v->type == JSON_STRING) {
            rouse_buf_append(prompt, v->u.str.s, v->u.str.len);
        } else if (v && v->type == JSON_ARRAY && v->u.arr.n > 0) {
            *tokens = rouse_arena_calloc(arena, v->u.arr.n, sizeof(int32_t), 8);
            if (!*tokens) return ROUSE_ENOMEM;
            for (size_t i = 0; i < v->u.arr.n; i++) {
                int64_t t;
                if (!json_as_int64(v->u.arr.items[i], &t) || t < 0 || t > INT32_MAX)
                    return bad(rep, out, "prompt: must be a string, or an array of token ids");
                (*tokens)[i] = (int32_t)t;
            }
            *n_tokens = (int)v->u.arr.n;
        } else {
            return bad(rep, out, "prompt: must be a string, or an array of token ids");
        }
    }
    v = json_get(root, "max_tokens");
    if (!v && chat) v = json_get(root, "max_completion_tokens");
    if (v && v->type != JSON_NULL) {
        int64_t n;
        if (!json_as_int64(v, &n) || n < 1 || n > max_context)
            return bad(rep, out, "max_tokens: must be an integer from 1 to %d (the context)",
                       max_context);
        rq->gp.max_tokens = (int)n;
        *max_given = true;
    }
    double d;
    if ((v = json_get(root, "temperature")) && v->type != JSON_NULL) {
        if (!as_number(v, &d) || d < 0 || d > 2)
            return bad(rep, out, "temperature: must be a number from 0 to 2");
        rq->gp.sp.temperature = d;
    }
    if ((v = json_get(root, "top_p")) && v->type != JSON_NULL) {
        if (!as_number(v, &d) || !(d > 0) || d > 1)
            return bad(rep, out, "top_p: must be a number above 0 and at most 1");
        rq->gp.sp.top_p = d;
    }
    if ((v = json_get(root, "top_k")) && v->type != JSON_NULL) {
        int64_t k;
        if (!json_as_int64(v, &k) || k < 0 || k > INT32_MAX)
            return bad(rep, out, "top_k: must be an integer of at least 0 (0: no limit)");
        rq->gp.sp.top_k = (int)k;
    }
    if ((v = json_get(root, "seed")) && v->type != JSON_NULL) {
        int64_t s;
        if (!json_as_int64(v, &s)) return bad(rep, out, "seed: must be an integer");
        rq->gp.seed = (uint64_t)s;
    }
    if ((v = json_get(root, "n")) && v->type != JSON_NULL) {
        int64_t n;
        if (!json_as_int64(v, &n) || n != 1)
            return bad(rep, out, "n: only 1 completion per request is supported");
    }
    if ((v = json_get(root, "stream")) && v->type != JSON_NULL && !json_as_bool(v, &rq->stream))
        return bad(rep, out, "stream: must be true or false");
    if ((v = json_get(root, "truncate")) && v->type != JSON_NULL && !json_as_bool(v, &rq->truncate))
        return bad(rep, out, "truncate: must be true or false");
    if ((v = json_get(root, "stop")) && v->type != JSON_NULL) {
        const json_value *one[1] = {v};
        const json_value *const *items = one;
        size_t n = 1;
        if (v->type == JSON_ARRAY) {
            items = (const json_value *const *)v->u.arr.items;
            n = v->u.arr.n;
        }
        if (n > OPENAI_STOP_MAX) return bad(rep, out, "stop: at most %d strings", OPENAI_STOP_MAX);
        for (size_t i = 0; i < n; i++) {
            if (items[i]->type != JSON_STRING || items[i]->u.str.len == 0 ||
                items[i]->u.str.len > OPENAI_STOP_LEN_MAX)
                return bad(rep, out,
                           "stop: must be a string or an array of up to %d strings of "
                           "1 to %d bytes",
                           OPENAI_STOP_MAX, OPENAI_STOP_LEN_MAX);
            rq->stop[rq->n_stop] = items[i]->u.str.s;
            rq->stop_len[rq->n_stop++] = items[i]->u.str.len;
        }
    }
    return 0;
}

/* The prompt's tokens: the ids given, else the text through the tokenizer
 * (or its bytes); then fitted to the context with max_tokens. */
static int prompt_ids(const gen_model *gm, const tok_tokenizer *tok, const rouse_buf *prompt,
                      int32_t *tokens, int n_tokens, bool max_given, openai_request *rq,
                      rouse_arena *arena, openai_reply *rep, rouse_buf *out)
{
    int32_t *ids = tokens;
    int n = n_tokens;
    if (ids) {
        for (int i = 0; i < n; i++)
            if (ids[i] >= gm->vocab)
                return bad(rep, out, "prompt[%d]: token %d is outside the vocabulary of %d", i,
                           ids[i], gm->vocab);
    } else if (tok) {
        int32_t *enc;
        size_t n_enc;
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        if (tok_encode(tok, prompt->data ? prompt->data : "", prompt->len, &enc, &n_enc, &eb) < 0)
            return bad(rep, out, "prompt: %s", eb.msg);
        if (n_enc > (size_t)INT32_MAX) {
            free(enc);
            return bad(rep, out, "prompt: too long");
        }
        ids = rouse_arena_calloc(arena, n_enc + 1, sizeof(int32_t), 8);
        if (ids && n_enc) memcpy(ids, enc, n_enc * sizeof(int32_t));
        free(enc);
        if (!ids) return ROUSE_ENOMEM;
        n = (int)n_enc;
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= gm->vocab)
                return bad(rep, out,
                           "prompt: the tokenizer gave token %d, outside the model's vocabulary "
                           "of %d",
                           ids[i], gm->vocab);
    } else {
        if (prompt->len > (size_t)INT32_MAX) return bad(rep, out, "prompt: too long");
        n = (int)prompt->len;
        if (n > 0 && gm->vocab < 256)
            return bad(rep, out,
                       "the model's vocabulary has %d tokens, fewer than the 256 bytes a "
                       "function without a tokenizer generates",
                       gm->vocab);
        ids = rouse_arena_calloc(arena, (size_t)n + 1, sizeof(int32_t), 8);
        if (!ids) return ROUSE_ENOMEM;
        for (int i = 0; i < n; i++)
            ids[i] = (unsigned char)prompt->data[i];
    }
    if (n == 0) return bad(rep, out, "prompt: must not be empty");
    int ctx = gm->max_context;
    if (!max_given) {
        int room = ctx - n;
        int def = rq->chat ? CHAT_DEFAULT_MAX_TOKENS : COMPLETIONS_DEFAULT_MAX_TOKENS;
        rq->gp.max_tokens = room < def ? room : def;
        if (rq->gp.max_tokens < 1) rq->gp.max_tokens = 1;
    }
    if ((int64_t)n + rq->gp.max_tokens > ctx) {
        if (!rq->truncate || rq->gp.max_tokens >= ctx)
            return bad(rep, out,
                       "this model's context is %d tokens: the prompt has %d and max_tokens asks "
                       "for %d (%lld in all); shorten the prompt, lower max_tokens or pass "
                       "\"truncate\": true",
                       ctx, n, rq->gp.max_tokens, (long long)n + rq->gp.max_tokens);
        int keep = ctx - rq->gp.max_tokens;
        ids += n - keep;
        n = keep;
    }
    rq->ids = ids;
    rq->n_ids = n;
    return 0;
}

int openai_request_parse(const void *body, size_t len, bool chat, const gen_model *gm,
                         const tok_tokenizer *tok, rouse_arena *arena, openai_request *rq,
                         openai_reply *rep, rouse_buf *out)
{
    memset(rq, 0, sizeof(*rq));
    rep->status = 200;
    rep->content_type = "application/json";
    rep->warning[0] = '\0';
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    json_value *root;
    if (json_parse(body, len, arena, &root, &eb) < 0) {
        if (eb.code == ROUSE_ENOMEM) return ROUSE_ENOMEM;
        return bad(rep, out, "the request body is not valid JSON: %s", eb.msg);
    }
    if (root->type != JSON_OBJECT) return bad(rep, out, "the request body must be a JSON object");
    note_unknown(root, rep->warning);
    rouse_buf prompt;
    rouse_buf_init(&prompt);
    int32_t *tokens = NULL;
    int n_tokens = 0;
    bool max_given = false;
    int rc = parse_fields(root, chat, gm->max_context, rq, &max_given, &prompt, &tokens, &n_tokens,
                          arena, rep, out);
    if (rc == 0 && rep->status == 200)
        rc = prompt_ids(gm, tok, &prompt, tokens, n_tokens, max_given, rq, arena, rep, out);
    rouse_buf_fini(&prompt);
    return rc;
}
