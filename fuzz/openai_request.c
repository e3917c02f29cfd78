/*
 * libFuzzer target for the OpenAI-style request decoder (openai_request.h;
 * tokens: openai_request.dict): completions and chat completions bodies
 * with their prompt or messages, stop strings, sampling parameters and
 * stream flags, decoded for a model described by the input's first byte:
 *   bit 0  chat completions (else completions)
 *   bit 1  a small byte-level BPE tokenizer (256 bytes and a few merges;
 *          else bytes are the tokens)
 *   bit 2  a vocabulary of 100 tokens (fewer than the bytes: refused
 *          without a tokenizer, too small for the tokenizer's ids)
 *   bits 3-5  the context: 4 << k positions (4 to 512)
 * the rest of the input is the body. An accepted request must hold what
 * the generation loop relies on: 1 <= prompt tokens, prompt tokens +
 * max_tokens <= the context, every id inside the vocabulary, sampling
 * parameters in their ranges, at most OPENAI_STOP_MAX stop strings of 1
 * to OPENAI_STOP_LEN_MAX bytes. A refused one is a 400 whose body is a
 * JSON object with an "error" string. Either way the warning is a
 * terminated string.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "text/tokenizer.h"
#include "worker/openai_request.h"

static tok_tokenizer *tok;

/* GPT-2's printable spelling of byte c in vocab.json and merges.txt. */
static void spell_byte(rouse_buf *b, unsigned c)
{
    static uint32_t cps[256];
    if (!cps['a']) {
        uint32_t next = 256;
        for (unsigned k = 0; k < 256; k++) {
            int self = (k >= 33 && k <= 126) || (k >= 161 && k <= 172) || k >= 174;
            cps[k] = self ? k : next++;
        }
    }
    uint32_t cp = cps[c];
    char u[2];
    if (cp < 0x80) {
        u[0] = (char)cp;
        rouse_buf_append(b, u, 1);
    } else {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        rouse_buf_append(b, u, 2);
    }
}

static void spell(rouse_buf *b, const char *s)
{
    for (; *s; s++)
        spell_byte(b, (unsigned char)*s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char *const merges[][2] = {
        {"t", "h"},   {"th", "e"},   {" ", "the"}, {"a", "n"}, {"an", "d"},
        {" ", "and"}, {"s", "t"},    {"o", "p"},   {"u", "s"}, {"e", "r"},
        {"us", "er"}, {" ", "user"}, {":", " "},
    };
    rouse_buf v, m;
    rouse_buf_init(&v);
    rouse_buf_init(&m);
    rouse_buf_append_byte(&v, '{');
    int id = 0;
    for (unsigned c = 0; c < 256; c++) {
        rouse_buf t;
        rouse_buf_init(&t);
        spell_byte(&t, c);
        if (c) rouse_buf_append_byte(&v, ',');
        json_write_string(&v, (const char *)t.data, t.len);
        rouse_buf_appendf(&v, ":%d", id++);
        rouse_buf_fini(&t);
    }
    for (size_t i = 0; i < sizeof(merges) / sizeof(merges[0]); i++) {
        char both[16];
        snprintf(both, sizeof(both), "%s%s", merges[i][0], merges[i][1]);
        rouse_buf t;
        rouse_buf_init(&t);
        spell(&t, both);
        rouse_buf_append_byte(&v, ',');
        json_write_string(&v, (const char *)t.data, t.len);
        rouse_buf_appendf(&v, ":%d", id++);
        rouse_buf_fini(&t);
        spell(&m, merges[i][0]);
        rouse_buf_append_byte(&m, ' ');
        spell(&m, merges[i][1]);
        rouse_buf_append_byte(&m, '\n');
    }
    rouse_buf_append_str(&v, ",\"<|endoftext|>\":");
    rouse_buf_appendf(&v, "%d}", id);
    rouse_errbuf eb;
    if (tok_load_gpt2((const char *)v.data, v.len, (const char *)m.data, m.len, &tok, &eb) < 0) {
        fprintf(stderr, "openai_request: cannot build the tokenizer: %s\n", eb.msg);
        abort();
    }
    rouse_buf_fini(&v);
    rouse_buf_fini(&m);
    return 0;
}

static void check_accepted(const openai_request *rq, const gen_model *gm)
{
    if (rq->n_ids < 1 || !rq->ids || rq->gp.max_tokens < 1 ||
        (int64_t)rq->n_ids + rq->gp.max_tokens > gm->max_context)
        abort();
    for (int i = 0; i < rq->n_ids; i++)
        if (rq->ids[i] < 0 || rq->ids[i] >= gm->vocab) abort();
    const sampler_params *sp = &rq->gp.sp;
    if (!(sp->temperature >= 0 && sp->temperature <= 2) || !(sp->top_p > 0 && sp->top_p <= 1) ||
        sp->top_k < 0)
        abort();
    if (rq->n_stop < 0 || rq->n_stop > OPENAI_STOP_MAX) abort();
    for (int i = 0; i < rq->n_stop; i++) {
        if (rq->stop_len[i] < 1 || rq->stop_len[i] > OPENAI_STOP_LEN_MAX) abort();
        /* Readable for its whole length (ASan checks the bytes). */
        volatile unsigned sum = 0;
        for (size_t k = 0; k < rq->stop_len[i]; k++)
            sum += (unsigned char)rq->stop[i][k];
        (void)sum;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const unsigned mode = data[0];
    gen_model gm = {.n_layers = 1, .n_heads = 1, .head_dim = 1};
    gm.vocab = mode & 4 ? 100 : 300;
    gm.max_context = 4 << ((mode >> 3) & 7);
    const tok_tokenizer *t = mode & 2 ? tok : NULL;

    rouse_arena arena;
    rouse_arena_init(&arena, 4096);
    rouse_buf out;
    rouse_buf_init(&out);
    openai_request rq;
    openai_reply rep;
    memset(&rep, 0x5a, sizeof(rep)); /* the decoder sets every field it answers with */
    int rc = openai_request_parse(data + 1, size - 1, mode & 1, &gm, t, &arena, &rq, &rep, &out);
    if (rc < 0) {
        if (rc != ROUSE_ENOMEM) abort();
    } else if (rep.status == 200) {
        check_accepted(&rq, &gm);
    } else {
        json_value *v;
        rouse_errbuf eb;
        if (rep.status != 400 || json_parse(out.data, out.len, &arena, &v, &eb) < 0 ||
            v->type != JSON_OBJECT || !json_get(v, "error") ||
            json_get(v, "error")->type != JSON_STRING)
            abort();
    }
    if (!memchr(rep.warning, '\0', sizeof(rep.warning))) abort();
    rouse_buf_fini(&out);
    rouse_arena_fini(&arena);
    return 0;
}
