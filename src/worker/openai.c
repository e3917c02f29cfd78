/*
 * OpenAI-style completions in the instance (openai.h). Invariants: text
 * sent to the client is valid UTF-8 (bytes that are not become U+FFFD, and
 * a sequence cut at a token boundary waits for its next bytes); streamed
 * text never includes a stop string or a prefix of one that may still
 * complete (it is held back until it cannot).
 */
#include "worker/openai.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"

#define MOD "generate"

struct openai_stream {
    openai_request req;
    const openai_request *rq;
    const tok_tokenizer *tok;
    int32_t eos;
    int sock;
    uint64_t id;
    const char *model;
    long created;
    rouse_buf text;  /* every byte generated (cut at a stop string) */
    size_t sent;     /* bytes of text already streamed */
    rouse_buf chunk; /* scratch for one event */
    bool first_sent, cancelled, stopped_by_stop, failed;
    uint64_t t0, ttft_ns;
    int n_tokens;
    bool peek_cancel; /* one stream at a time: look for IPC_CANCEL on the socket */
    int64_t timed_out_ms; /* > 0: serve ended it at its deadline (timeout_ms) */
    uint32_t prefill_chunks, prefill_steps, prefill_group; /* openai_stream_prefilled */
    char warning[IPC_WARNING_MAX];
};
typedef struct openai_stream run_state;

/* --- UTF-8 ------------------------------------------------------------------- */

/* Length of the valid sequence at s[0..n); when invalid, 0 with *bad the
 * length of its maximal subpart (the bytes that one U+FFFD replaces, as
 * Unicode recommends and WHATWG's decoder does); -1 when s holds only the
 * valid start of one. */
static int utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    *bad = 1;
    unsigned c = s[0];
    int len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    unsigned cp = c & (0x3fu >> (len - 1));
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) return -1;
        if ((s[i] & 0xc0) != 0x80) return 0;
        /* Overlong, surrogate or too large: known invalid at the second byte. */
        if (i == 1 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) ||
                       (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90)))
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
        *bad = (size_t)i + 1;
    }
    return cp >= min ? len : 0;
}

/* Appends s[0..n) to b as valid UTF-8 (U+FFFD for each invalid byte). With
 * `partial`, an incomplete sequence at the end is left out: *used says how
 * many bytes were taken. */
static int append_utf8(rouse_buf *b, const char *s, size_t n, bool partial, size_t *used)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    int rc = 0;
    while (i < n && rc == 0) {
        size_t bad;
        int k = utf8_seq(u + i, n - i, &bad);
        if (k < 0 && partial) break;
        if (k < 0) bad = n - i; /* cut short at the very end */
        if (k <= 0) {
            rc = rouse_buf_append(b, "\xef\xbf\xbd", 3);
            i += bad;
        } else {
            rc = rouse_buf_append(b, s + i, (size_t)k);
            i += (size_t)k;
        }
    }
    if (used) *used = i;
    return rc;
}

static int write_text(rouse_buf *out, const char *s, size_t n)
{
    rouse_buf clean;
    rouse_buf_init(&clean);
    int rc = append_utf8(&clean, s, n, false, NULL);
    if (rc == 0) rc = json_write_string(out, clean.data ? clean.data : "", clean.len);
    rouse_buf_fini(&clean);
    return rc;
}

/* --- output ------------------------------------------------------------------- */

static void event_head(run_state *st, rouse_buf *b)
{
    rouse_buf_appendf(b,
                      "data: {\"id\":\"%s-%" PRIx64 "\",\"object\":\"%s\",\"created\":%ld,"
                      "\"model\":",
                      st->rq->chat ? "chatcmpl" : "cmpl", st->id,
                      st->rq->chat ? "chat.completion.chunk" : "text_completion", st->created);
    json_write_string(b, st->model, strlen(st->model));
}

/* One streamed event with text[from..to) (valid UTF-8 already). */
static int send_text(run_state *st, const char *text, size_t len)
{
    rouse_buf *b = &st->chunk;
    rouse_buf_clear(b);
    event_head(st, b);
    if (st->rq->chat) {
        rouse_buf_append_str(b, ",\"choices\":[{\"index\":0,\"delta\":{");
        if (!st->first_sent) rouse_buf_append_str(b, "\"role\":\"assistant\",");
        rouse_buf_append_str(b, "\"content\":");
    } else {
        rouse_buf_append_str(b, ",\"choices\":[{\"index\":0,\"text\":");
    }
    json_write_string(b, text, len);
    rouse_buf_append_str(b, st->rq->chat ? "},\"finish_reason\":null}]}\n\n"
                                         : ",\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    ipc_msg m;
    ipc_msg_init(&m, IPC_CHUNK, st->id);
    m.status = 200;
    snprintf(m.content_type, sizeof(m.content_type), "text/event-stream");
    memcpy(m.warning, st->warning, sizeof(m.warning));
    m.dur_ns[1] = st->ttft_ns;
    m.prefill_chunks = st->prefill_chunks;
    m.prefill_steps = st->prefill_steps;
    m.prefill_group = st->prefill_group;
    for (size_t off = 0; off < b->len;) {
        size_t n = b->len - off < IPC_CHUNK_MAX ? b->len - off : IPC_CHUNK_MAX;
        if (ipc_send_chunk(st->sock, st->id, &m, b->data + off, n, &eb) < 0) return -1;
        off += n;
    }
    st->first_sent = true;
    return 0;
}

/* How many bytes at the end of text[0..n) could still become a stop string. */
static size_t stop_holdback(const openai_request *rq, const char *text, size_t n)
{
    size_t hold = 0;
    for (int i = 0; i < rq->n_stop; i++)
        for (size_t k = rq->stop_len[i] - 1; k > hold; k--)
            if (k <= n && memcmp(text + n - k, rq->stop[i], k) == 0) {
                hold = k;
                break;
            }
    return hold;
}

/* Whether serve asked to cancel this request: a peek, so that anything
 * else stays for the instance's loop. */
static bool cancelled(run_state *st)
{
    ipc_msg m;
    int fd = -1;
    ssize_t n = ipc_recv_packet(st->sock, &m, sizeof(m), &fd, MSG_PEEK | MSG_DONTWAIT);
    if (fd >= 0) close(fd);
    if (n == 0) return true; /* serve closed the socket */
    if (n != (ssize_t)sizeof(m) || m.magic != IPC_MAGIC || m.type != IPC_CANCEL) return false;
    ipc_recv_packet(st->sock, &m, sizeof(m), &fd, MSG_DONTWAIT);
    if (fd >= 0) close(fd);
    if (m.id != st->id) return false;
    if (m.status == 504) st->timed_out_ms = m.json_len > 0 ? m.json_len : 1;
    return true;
}

static bool on_token(void *user, int token)
{
    run_state *st = user;
    const openai_request *rq = st->rq;
    if (!st->ttft_ns) st->ttft_ns = rouse_now_ns() - st->t0;
    st->n_tokens++;
    if (st->tok) {
        if (token == st->eos) {
            st->stopped_by_stop = true; /* the end of the text: nothing more to send */
        } else {
            size_t n;
            const char *b = tok_token_bytes(st->tok, token, &n);
            if (b) rouse_buf_append(&st->text, b, n);
        }
    } else if (token >= 0 && token < 256) {
        char c = (char)token;
        rouse_buf_append(&st->text, &c, 1);
    }
    /* A stop string ends the text where it starts. */
    for (int i = 0; i < rq->n_stop; i++) {
        size_t L = rq->stop_len[i];
        size_t from = st->sent + 1 > L ? st->sent + 1 - L : 0;
        for (size_t p = from; p + L <= st->text.len; p++)
            if (memcmp(st->text.data + p, rq->stop[i], L) == 0) {
                st->text.len = p;
                st->stopped_by_stop = true;
                break;
            }
    }
    if (rq->stream) {
        size_t end = st->text.len;
        if (!st->stopped_by_stop) end -= stop_holdback(rq, st->text.data, end);
        if (end > st->sent) {
            rouse_buf clean;
            rouse_buf_init(&clean);
            size_t used = 0;
            append_utf8(&clean, st->text.data + st->sent, end - st->sent, !st->stopped_by_stop,
                        &used);
            if (used > 0 && send_text(st, clean.data ? clean.data : "", clean.len) < 0)
                st->failed = true;
            st->sent += used;
            rouse_buf_fini(&clean);
        }
    }
    if (st->failed || st->stopped_by_stop) return true;
    if (st->peek_cancel && cancelled(st)) {
        if (st->timed_out_ms)
            openai_stream_timeout(st, st->timed_out_ms);
        else
            openai_stream_cancel(st);
        return true;
    }
    return false;
}

static void usage_json(rouse_buf *b, const gen_stats *gs)
{
    rouse_buf_appendf(b,
                      "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
                      "\"total_tokens\":%d}",
                      gs->prompt_tokens, gs->completion_tokens,
                      gs->prompt_tokens + gs->completion_tokens);
}

static const char *finish_reason(const run_state *st, const gen_stats *gs)
{
    (void)gs;
    return st->stopped_by_stop ? "stop" : st->cancelled ? "cancelled" : "length";
}

/* The final body: the whole answer, or the stream's last events. */
static void final_body(run_state *st, const gen_stats *gs, rouse_buf *out)
{
    const openai_request *rq = st->rq;
    rouse_buf_clear(out);
    if (rq->stream) {
        /* Whatever was held back (a partial stop string that never
         * completed, an unfinished UTF-8 sequence) goes out now. */
        rouse_buf rest;
        rouse_buf_init(&rest);
        if (st->text.len > st->sent) {
            rouse_buf_clear(&st->chunk);
            append_utf8(&rest, st->text.data + st->sent, st->text.len - st->sent, false, NULL);
            if (rest.len && send_text(st, rest.data, rest.len) < 0) st->failed = true;
        }
        rouse_buf_fini(&rest);
        event_head(st, out);
        if (rq->chat)
            rouse_buf_append_str(out, ",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":");
        else
            rouse_buf_append_str(out, ",\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null,"
                                      "\"finish_reason\":");
        rouse_buf_appendf(out, "\"%s\"}],", finish_reason(st, gs));
        usage_json(out, gs);
        rouse_buf_append_str(out, "}\n\ndata: [DONE]\n\n");
        return;
    }
    rouse_buf_appendf(out,
                      "{\"id\":\"%s-%" PRIx64 "\",\"object\":\"%s\",\"created\":%ld,\"model\":",
                      rq->chat ? "chatcmpl" : "cmpl", st->id,
                      rq->chat ? "chat.completion" : "text_completion", st->created);
    json_write_string(out, st->model, strlen(st->model));
    rouse_buf_append_str(out, ",\"choices\":[{\"index\":0,");
    if (rq->chat) {
        rouse_buf_append_str(out, "\"message\":{\"role\":\"assistant\",\"content\":");
        write_text(out, st->text.data ? st->text.data : "", st->text.len);
        rouse_buf_append_str(out, "},");
    } else {
        rouse_buf_append_str(out, "\"text\":");
        write_text(out, st->text.data ? st->text.data : "", st->text.len);
        rouse_buf_append_str(out, ",\"logprobs\":null,");
    }
    rouse_buf_appendf(out, "\"finish_reason\":\"%s\"}],", finish_reason(st, gs));
    usage_json(out, gs);
    rouse_buf_append_str(out, "}\n");
}

void openai_stream_free(openai_stream *st)
{
    if (!st) return;
    rouse_buf_fini(&st->text);
    rouse_buf_fini(&st->chunk);
    free(st);
}

int openai_stream_begin(int sock, const ipc_msg *req, const void *body, const char *model_name,
                        const gen_model *gm, const tok_tokenizer *tok, rouse_arena *arena,
                        openai_stream **out_st, rouse_buf *out, openai_reply *rep)
{
    *out_st = NULL;
    memset(rep, 0, sizeof(*rep));
    rep->status = 200;
    rep->content_type = "application/json";
    run_state *st = calloc(1, sizeof(*st));
    if (!st) return ROUSE_ENOMEM;
    int rc = openai_request_parse(body, (size_t)req->body_len, req->json_len == IPC_GEN_CHAT, gm,
                                  tok, arena, &st->req, rep, out);
    if (rc < 0 || rep->status != 200) {
        free(st);
        return rc;
    }
    rouse_buf_init(&st->text);
    rouse_buf_init(&st->chunk);
    memcpy(st->warning, rep->warning, sizeof(st->warning));
    st->rq = &st->req;
    st->tok = tok;
    st->eos = tok ? tok_eos(tok) : -1;
    st->sock = sock;
    st->id = req->id;
    st->model = model_name;
    st->created = (long)time(NULL);
    st->t0 = rouse_now_ns();
    *out_st = st;
    return 0;
}

const openai_request *openai_stream_request(const openai_stream *st)
{
    return st->rq;
}

uint64_t openai_stream_id(const openai_stream *st)
{
    return st->id;
}

bool openai_stream_token(openai_stream *st, int token)
{
    return on_token(st, token);
}

void openai_stream_timeout(openai_stream *st, int64_t timeout_ms)
{
    st->timed_out_ms = timeout_ms > 0 ? timeout_ms : 1;
    LOG_INFO(MOD,
             "generation %" PRIx64 " ended after %d of %d tokens: it exceeded timeout_ms (%" PRId64
             " ms)",
             st->id, st->n_tokens, st->rq->gp.max_tokens, st->timed_out_ms);
}

bool openai_stream_timed_out(const openai_stream *st, rouse_errbuf *eb)
{
    if (!st->timed_out_ms) return false;
    rouse_err_set(eb, ROUSE_ETIMEOUT,
                  "request exceeded the function's timeout_ms (%" PRId64 " ms) after %d of %d "
                  "tokens",
                  st->timed_out_ms, st->n_tokens, st->rq->gp.max_tokens);
    return true;
}

void openai_stream_cancel(openai_stream *st)
{
    st->cancelled = true;
    LOG_INFO(MOD, "generation %" PRIx64 " cancelled after %d of %d tokens (the client left)",
             st->id, st->n_tokens, st->rq->gp.max_tokens);
}

void openai_stream_prefilled(openai_stream *st, int chunks, int steps, int group)
{
    st->prefill_chunks = (uint32_t)chunks;
    st->prefill_steps = (uint32_t)steps;
    st->prefill_group = (uint32_t)group;
}

int openai_stream_end(openai_stream *st, const gen_stats *gs, int gen_rc, const char *error,
                      rouse_buf *out, openai_reply *rep)
{
    memcpy(rep->warning, st->warning, sizeof(rep->warning));
    rep->prefill_chunks = st->prefill_chunks;
    rep->prefill_steps = st->prefill_steps;
    rep->prefill_group = st->prefill_group;
    if (gen_rc < 0) {
        if (st->first_sent) {
            /* Mid-stream: the error becomes the stream's last event. */
            rouse_buf_clear(out);
            rouse_buf_append_str(out, "data: {\"error\":");
            json_write_string(out, error, strlen(error));
            rouse_buf_append_str(out, "}\n\ndata: [DONE]\n\n");
            rep->content_type = "text/event-stream";
            return 0;
        }
        rep->status = rouse_err_http_status(gen_rc);
        rouse_buf_clear(out);
        rouse_buf_append_str(out, "{\"error\":");
        json_write_string(out, error, strlen(error));
        rouse_buf_append_str(out, "}");
        return 0;
    }
    rep->ttft_ns = st->ttft_ns;
    LOG_DEBUG(MOD, "generation %" PRIx64 ": %d + %d tokens, %" PRIu64 " plans prepared", st->id,
              gs->prompt_tokens, gs->completion_tokens, gs->plans_prepared);
    rep->itl_ns =
        gs->completion_tokens > 1 ? gs->decode_ns / (uint64_t)(gs->completion_tokens - 1) : 0;
    final_body(st, gs, out);
    if (st->rq->stream) rep->content_type = "text/event-stream";
    return st->failed ? -1 : 0;
}

int openai_generate(int sock, const ipc_msg *req, const void *body, const char *model_name, gen *g,
                    const tok_tokenizer *tok, rouse_session *s, rouse_arena *arena, rouse_buf *out,
                    openai_reply *rep)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    run_state *st;
    int rc = openai_stream_begin(sock, req, body, model_name, gen_model_of(g), tok, arena, &st, out,
                                 rep);
    if (rc < 0 || !st) return rc;
    st->peek_cancel = true;
    gen_stats gs;
    rc = gen_run(g, s, st->rq->ids, st->rq->n_ids, &st->rq->gp, on_token, st, &gs, &eb);
    if (rc == 0 && openai_stream_timed_out(st, &eb)) rc = eb.code;
    rc = openai_stream_end(st, &gs, rc, eb.msg, out, rep);
    openai_stream_free(st);
    return rc;
}
