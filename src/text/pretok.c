/*
 * GPT-2's pre-tokenizer regex, alternative by alternative, in the order the
 * regex tries them at each position (the leftmost alternative that matches
 * wins, each quantifier greedy):
 *   1. the contractions 's 't 're 've 'm 'll 'd (ASCII, case-sensitive);
 *   2. ` ?\p{L}+`, 3. ` ?\p{N}+`, 4. ` ?[^\s\p{L}\p{N}]+`: a run of one class,
 *      with one leading U+0020 (only that space) when a run follows it;
 *   5. `\s+(?!\S)`: a white-space run that is not followed by a non-space:
 *      the whole run at the end of the text, else the run less its last code
 *      point (which then starts the next piece, as the space of 2-4), when
 *      that leaves at least one;
 *   6. `\s+`: otherwise the run, of one code point, followed by a non-space.
 * Invariant: every call returns a boundary beyond i, so a loop over pieces
 * ends after at most len calls.
 */
#include "text/pretok.h"

#include <stdbool.h>
#include <string.h>

#include "text/unicode_class.h"
#include "text/utf8.h"

static tok_uc_class class_at(const char *s, size_t len, size_t i, size_t *n)
{
    return tok_uc_classify(tok_utf8_at(s, len, i, n));
}

/* The end of the run of code points of class c starting at i. */
static size_t run_end(const char *s, size_t len, size_t i, tok_uc_class c)
{
    while (i < len) {
        size_t n;
        if (class_at(s, len, i, &n) != c) break;
        i += n;
    }
    return i;
}

static size_t contraction(const char *s, size_t len, size_t i)
{
    if (s[i] != '\'' || len - i < 2) return 0;
    char a = s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (len - i < 3) return 0;
    char b = s[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

size_t tok_pretok_next(const char *s, size_t len, size_t i)
{
    size_t k = contraction(s, len, i);
    if (k) return i + k;

    size_t n;
    tok_uc_class c = class_at(s, len, i, &n);
    if (c != TOK_UC_SPACE) return run_end(s, len, i + n, c);

    /* A space followed by a letter, number or other run joins that run. */
    if (s[i] == ' ' && i + 1 < len) {
        size_t n2;
        tok_uc_class c2 = class_at(s, len, i + 1, &n2);
        if (c2 != TOK_UC_SPACE) return run_end(s, len, i + 1 + n2, c2);
    }

    /* A white-space run: find its end and its last code point's start. */
    size_t last = i, j = i + n;
    while (j < len) {
        size_t m;
        if (class_at(s, len, j, &m) != TOK_UC_SPACE) break;
        last = j;
        j += m;
    }
    if (j == len) return j;    /* 5: at the end of the text */
    if (last > i) return last; /* 5: all but the last */
    return j;                  /* 6: one code point before a non-space */
}
