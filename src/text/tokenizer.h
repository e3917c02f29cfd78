/*
 * Byte-level BPE tokenizer (GPT-2's scheme): text <-> token ids.
 *
 * Loaded from a Hugging Face tokenizer.json (model "BPE" with a "ByteLevel"
 * pre-tokenizer) or from GPT-2's vocab.json + merges.txt. Encoding splits the
 * text as GPT-2's pre-tokenizer regex does (contractions, letter runs, digit
 * runs, other runs, each with one optional leading space, and whitespace runs
 * that leave their last space to the next word), maps each piece's bytes to
 * the 256 byte tokens and merges adjacent pairs by rank, the lowest first.
 * Decoding concatenates the tokens' bytes.
 *
 * A loaded tokenizer is immutable: encode and decode take it const and may
 * run on several threads at once. Special tokens ("<|endoftext|>") in input
 * text are encoded as plain text, never as their id, so a prompt cannot
 * smuggle one in.
 */
#ifndef ROUSE_TEXT_TOKENIZER_H
#define ROUSE_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "rouse/err.h"

typedef struct tok_tokenizer tok_tokenizer;

/* Largest vocabulary accepted (ids are below it), and largest merges list. */
#define TOK_MAX_VOCAB (1 << 22)

/* Loads a Hugging Face tokenizer.json (json[0..len), not NUL-terminated).
 * Returns 0 and *out (owned: free with tok_free), or ROUSE_EFORMAT /
 * ROUSE_EUNSUPPORTED with a sentence in eb naming the field ("model.merges[12]:
 * token \"ab\" is not in the vocabulary"). */
int tok_load_hf_json(const char *json, size_t len, tok_tokenizer **out, rouse_errbuf *eb);

/* Loads GPT-2's vocab.json (a JSON object token -> id) and merges.txt (one
 * "left right" pair per line by rank, an optional "#version" first line).
 * Same results as tok_load_hf_json. */
int tok_load_gpt2(const char *vocab, size_t vocab_len, const char *merges, size_t merges_len,
                  tok_tokenizer **out, rouse_errbuf *eb);

/* Encodes text[0..len). Returns 0 with *ids (owned: free()) and *n_ids
 * (*ids is non-NULL even when *n_ids is 0), ROUSE_EINVAL when text is not
 * valid UTF-8 ("invalid UTF-8 at byte 17"), ROUSE_ENOMEM. */
int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n_ids,
               rouse_errbuf *eb);

/* Decodes ids[0..n_ids) to bytes: *text (owned: free(), NUL-terminated) and
 * *len. The bytes may end inside a UTF-8 sequence (a token can hold part of
 * a character): streaming callers use tok_utf8_complete. ROUSE_EINVAL for an
 * id outside the vocabulary. */
int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n_ids, char **text, size_t *len,
               rouse_errbuf *eb);

/* The bytes of one token without copying (borrowed: valid until tok_free),
 * or NULL for an id outside the vocabulary. */
const char *tok_token_bytes(const tok_tokenizer *t, int32_t id, size_t *len);

/* For streaming: the length of the longest prefix of s[0..len) that does not
 * end inside an incomplete UTF-8 sequence. Send s[0..k) now and keep s[k..len)
 * to prepend to the next token's bytes; bytes that can never start or
 * continue a valid sequence count as complete (they are sent, not held back
 * forever), so at most 3 bytes are ever kept. */
size_t tok_utf8_complete(const char *s, size_t len);

/* The end-of-text token ("<|endoftext|>", else "</s>", "<|end_of_text|>" or
 * "<eos>" when the vocabulary or the added tokens have one), or -1. */
int32_t tok_eos(const tok_tokenizer *t);

/* One more than the largest id: the size the model's logits must have at least. */
size_t tok_vocab_size(const tok_tokenizer *t);

/* Frees t; NULL is a no-op. */
void tok_free(tok_tokenizer *t);

#endif
