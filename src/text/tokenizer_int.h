/*
 * The tokenizer's private parts, shared by its loaders (tok_load.c) and its
 * encoder and decoder (tokenizer.c).
 *
 * Invariants of a loaded tokenizer:
 *  - every id below n_vocab either has bytes (tok_len[id] != TOK_ABSENT) or
 *    is absent from the vocabulary; tok_off/tok_len index `bytes`;
 *  - byte_id[b] is the id of the token of the single byte b, for all 256;
 *  - the merge table maps a pair of ids (left, right) to its rank and to the
 *    id of the merged token, whose bytes are left's followed by right's (so a
 *    merge always makes a longer token, which the encoder relies on);
 *  - the merge table is at most half full (a power-of-two size).
 */
#ifndef ROUSE_TEXT_TOKENIZER_INT_H
#define ROUSE_TEXT_TOKENIZER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "text/tokenizer.h"

#define TOK_ABSENT UINT32_MAX

typedef struct tok_merge {
    uint64_t key; /* (left << 32) | right; UINT64_MAX for an empty slot */
    int32_t rank;
    int32_t id;
} tok_merge;

struct tok_tokenizer {
    size_t n_vocab;
    uint32_t *tok_off; /* [n_vocab] */
    uint32_t *tok_len; /* [n_vocab], TOK_ABSENT for an id not in the vocabulary */
    char *bytes;       /* every token's bytes, back to back */
    size_t bytes_len;
    int32_t byte_id[256];
    tok_merge *merges; /* open addressing, linear probing */
    size_t merge_mask; /* table size - 1 */
    size_t n_merges;
    int32_t eos;
    bool add_prefix_space; /* a space before text that does not start with one */
};

/* The hash of a merge key (the slot to start probing at, masked). */
uint64_t tok_merge_hash(uint64_t key);

/* The merge of (left, right), or NULL. */
const tok_merge *tok_merge_find(const tok_tokenizer *t, int32_t left, int32_t right);

#endif
