/*
 * The request of the OpenAI-style text endpoints (openai.h), decoded: the
 * JSON body of a completions or chat completions request checked field by
 * field, the chat template applied, the prompt turned into token ids and
 * fitted to the context. Kept apart from the generation loop so that it can
 * be tested (and fuzzed) on its own.
 *
 * Fields: prompt (a string, an array of one string, or an array of token
 * ids) or messages ([{"role", "content"}], content a string or an array of
 * {"type": "text", "text"} parts); max_tokens (max_completion_tokens for
 * chat) from 1 to the context; temperature 0..2; top_p in (0, 1]; top_k
 * >= 0; seed; stop (a string or up to OPENAI_STOP_MAX strings of 1 to
 * OPENAI_STOP_LEN_MAX bytes); n (only 1); stream, truncate (booleans).
 * Unknown fields are ignored and listed in the reply's warning.
 */
#ifndef ROUSE_WORKER_OPENAI_REQUEST_H
#define ROUSE_WORKER_OPENAI_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "text/tokenizer.h"
#include "worker/generate.h"
#include "worker/ipc.h"

#define OPENAI_STOP_MAX 4
#define OPENAI_STOP_LEN_MAX 64

typedef struct openai_reply {
    int status;
    const char *content_type;
    char warning[IPC_WARNING_MAX];
    uint64_t ttft_ns; /* request to first token, in the instance */
    uint64_t itl_ns;  /* mean time between tokens after the first */
    /* Decoded with other streams: its prefill's chunks and the others'
     * decode steps between them (ipc_msg.prefill_chunks). */
    uint32_t prefill_chunks, prefill_steps, prefill_group;
} openai_reply;

typedef struct openai_request {
    bool chat, stream, truncate;
    gen_params gp;
    const char *stop[OPENAI_STOP_MAX]; /* into the parsed body (the arena) */
    size_t stop_len[OPENAI_STOP_MAX];
    int n_stop;
    const int32_t *ids; /* the prompt's tokens, fitted to the context (in the arena) */
    int n_ids;
} openai_request;

/* Decodes body[0..len) for a model of gm's context and vocabulary, with
 * tokenizer tok (NULL: bytes are the tokens). 0 with rep->status 200 and
 * *rq filled (every id inside the vocabulary, n_ids >= 1 and n_ids +
 * max_tokens <= the context); or 0 with rep->status 400 and out holding
 * {"error": "..."} naming the field; < 0 when out of memory. rep->warning
 * lists the ignored fields either way. Allocations come from arena. */
int openai_request_parse(const void *body, size_t len, bool chat, const gen_model *gm,
                         const tok_tokenizer *tok, rouse_arena *arena, openai_request *rq,
                         openai_reply *rep, rouse_buf *out);

#endif
