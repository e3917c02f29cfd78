/*
 * A text generator's tokenizer from its files (blob paths serve passes to
 * the template and the deploy check): a Hugging Face tokenizer.json, or
 * GPT-2's vocab.json and merges.txt. Errors name the file's role
 * ("tokenizer: ...", "tokenizer.vocab: ...") and what did not parse.
 */
#ifndef ROUSE_WORKER_TOK_FILES_H
#define ROUSE_WORKER_TOK_FILES_H

#include "rouse/err.h"
#include "text/tokenizer.h"

typedef struct worker_tok_paths {
    const char *json;           /* tokenizer.json, or NULL */
    const char *vocab, *merges; /* or both of these, or neither */
} worker_tok_paths;

/* *out is NULL when no file is named (bytes are the tokens). Owned: tok_free. */
int worker_tok_load(const worker_tok_paths *p, tok_tokenizer **out, rouse_errbuf *eb);

#endif
