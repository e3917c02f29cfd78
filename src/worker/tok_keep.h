/*
 * Tokenizers kept in a process for the processes it forks later: the
 * zygote keeps a generator's tokenizer when it warms the model
 * (template_warm), and a template forked from it takes its inherited copy
 * (worker_tok_take) instead of reading and parsing the files again, which
 * for a vocabulary of GPT-2's size takes hundreds of milliseconds of a
 * start from zero. A kept tokenizer is found by its files: path, device,
 * inode, size and modification time of each, so a file replaced under the
 * same name is read again. At most TOK_KEPT are kept, the oldest dropped
 * first; they live as long as the process.
 */
#ifndef ROUSE_WORKER_TOK_KEEP_H
#define ROUSE_WORKER_TOK_KEEP_H

#include "rouse/err.h"
#include "worker/tok_files.h"

#define TOK_KEPT 4

/* Loads the tokenizer of p and keeps it, unless one of the same files is
 * kept already. 1 when loaded now, 0 when kept before or when p names no
 * file, < 0 when the files do not load. */
int worker_tok_keep(const worker_tok_paths *p, rouse_errbuf *eb);

/* The tokenizer of p: the kept one, taken out of this process's keep
 * (the caller owns it: tok_free; a process it was forked from keeps its
 * own copy), or else read from the files (worker_tok_load). */
int worker_tok_take(const worker_tok_paths *p, tok_tokenizer **out, rouse_errbuf *eb);

#endif
