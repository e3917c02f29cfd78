/*
 * UTF-8 for the tokenizer: validation with the offset of the first bad byte,
 * decoding of text already validated, and the class of a code point.
 */
#ifndef ROUSE_TEXT_UTF8_H
#define ROUSE_TEXT_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when s[0..len) is valid UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF); else false and *bad the offset of the first
 * byte of the first invalid sequence. */
bool tok_utf8_valid(const char *s, size_t len, size_t *bad);

/* The code point at s[i] in text already validated (i < len); its length in
 * bytes in *n. */
uint32_t tok_utf8_at(const char *s, size_t len, size_t i, size_t *n);

/* The length of the sequence starting at lead byte c (1..4), 0 when c cannot
 * start one. */
size_t tok_utf8_seq_len(unsigned char c);

/* Appends the UTF-8 form of cp (<= U+10FFFF, not a surrogate) to out; returns
 * its length (1..4). */
size_t tok_utf8_put(uint32_t cp, char *out);

#endif
