/*
 * GPT-2's pre-tokenizer: splits text into the pieces that BPE merges within.
 *
 * The behaviour of GPT-2's regex
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * written out by hand over Unicode classes (unicode_class.h): a scan that
 * looks at most one code point ahead and never backtracks further than one
 * code point, so a piece costs time linear in its length whatever the input
 * (a general regex engine with look-ahead gives no such bound, and none ships
 * with the C library with \p{} classes).
 */
#ifndef ROUSE_TEXT_PRETOK_H
#define ROUSE_TEXT_PRETOK_H

#include <stddef.h>

/* The end of the piece that starts at byte i of s[0..len) (valid UTF-8,
 * i < len, i on a code point boundary): a boundary in (i, len]. */
size_t tok_pretok_next(const char *s, size_t len, size_t i);

#endif
