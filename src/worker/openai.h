/*
 * The OpenAI-style text endpoints inside an instance: decodes a completions
 * or chat completions request (POST /openai/v1/completions,
 * /openai/v1/chat/completions, passed through serve unparsed), runs the
 * generation loop (generate.h) and encodes the answer: one JSON document,
 * or with "stream": true Server-Sent Events sent as IPC_CHUNKs while the
 * tokens come ("data: {...}" per piece of text, a last chunk with the
 * finish reason and the usage, "data: [DONE]").
 *
 * Tokens: the function's tokenizer (src/text: byte-level BPE) encodes the
 * prompt and turns each token into its bytes; its end-of-text token ends
 * the generation (finish reason "stop"). A function without a tokenizer
 * generates bytes (token id = byte value, for byte-level models with a
 * vocabulary of at least 256).
 *
 * Chat template: each message as "<role>: <content>\n" in order, then
 * "assistant:"; the model continues from there.
 *
 * The request is decoded by openai_request.h: bad input is a 400 naming
 * the field (a prompt longer than the context with both lengths named,
 * unless "truncate": true keeps the prompt's end; max_tokens outside
 * 1..max_context; invalid UTF-8, the JSON parser's; n other than 1), and
 * parameters it does not know are ignored and listed in the warning.
 */
#ifndef ROUSE_WORKER_OPENAI_H
#define ROUSE_WORKER_OPENAI_H

#include <stdbool.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "text/tokenizer.h"
#include "worker/generate.h"
#include "worker/ipc.h"
#include "worker/openai_request.h"

/* Answers one IPC_GENERATE request `req` whose body is body[0..req->body_len):
 * chunks (streaming) go to sock as they come, the final body into out
 * (status, content type and timings in *rep), for the caller to send as
 * the IPC_REPLY. IPC_CANCEL for the request, read from sock between steps,
 * stops it. Returns 0, or < 0 when the socket failed. */
int openai_generate(int sock, const ipc_msg *req, const void *body, const char *model_name, gen *g,
                    const tok_tokenizer *tok, rouse_session *s, rouse_arena *arena, rouse_buf *out,
                    openai_reply *rep);

/* The same request as a stream decoded in a batch with others
 * (gen_streams.h): begun, fed its tokens one by one, ended. */
typedef struct openai_stream openai_stream;

/* Decodes request req (body as above) for a model gm: 0 with *st set
 * (owned: openai_stream_free) to generate; 0 with *st NULL when it is
 * already answered (rep and out hold the 400); < 0 out of memory. The
 * parsed request lives in arena, which must outlive *st. */
int openai_stream_begin(int sock, const ipc_msg *req, const void *body, const char *model_name,
                        const gen_model *gm, const tok_tokenizer *tok, rouse_arena *arena,
                        openai_stream **st, rouse_buf *out, openai_reply *rep);
const openai_request *openai_stream_request(const openai_stream *st);
uint64_t openai_stream_id(const openai_stream *st);
/* The next generated token: streams its text; true when the stream ends
 * there (a stop string, the end-of-text token, the socket failed). */
bool openai_stream_token(openai_stream *st, int token);
/* Its prompt was prefilled in `chunks` chunks with `steps` decode steps of
 * other streams between them, or in one run with group - 1 others (group
 * 0: alone): told to serve with its first chunk and its reply
 * (Server-Timing). */
void openai_stream_prefilled(openai_stream *st, int chunks, int steps, int group);
/* The client left (serve's IPC_CANCEL): the finish reason says so. */
void openai_stream_cancel(openai_stream *st);
/* serve ended it at its deadline (IPC_CANCEL with status 504, the
 * function's timeout_ms in json_len): its end is that error. */
void openai_stream_timeout(openai_stream *st, int64_t timeout_ms);
/* Whether it was ended so: true with eb holding ROUSE_ETIMEOUT and the
 * message for its end (openai_stream_end's gen_rc and error). */
bool openai_stream_timed_out(const openai_stream *st, rouse_errbuf *eb);
/* The final body into out and rep (status, content type, timings) after
 * generation ended with gen_rc (< 0: error says why). Returns 0, or < 0
 * when the socket failed. */
int openai_stream_end(openai_stream *st, const gen_stats *gs, int gen_rc, const char *error,
                      rouse_buf *out, openai_reply *rep);
void openai_stream_free(openai_stream *st);

#endif
