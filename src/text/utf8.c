/*
 * UTF-8 validation and decoding (RFC 3629), and the code point classes of the
 * pre-tokenizer looked up in the generated range table.
 */
#include "text/utf8.h"

#include "text/tokenizer.h"
#include "text/unicode_class.h"

size_t tok_utf8_seq_len(unsigned char c)
{
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

/* Whether s[i+1] is a valid second byte after lead c: the ranges of RFC 3629
 * section 4 that exclude overlong forms, surrogates and code points above
 * U+10FFFF. */
static bool second_ok(unsigned char c, unsigned char b)
{
    switch (c) {
    case 0xE0:
        return b >= 0xA0 && b <= 0xBF;
    case 0xED:
        return b >= 0x80 && b <= 0x9F;
    case 0xF0:
        return b >= 0x90 && b <= 0xBF;
    case 0xF4:
        return b >= 0x80 && b <= 0x8F;
    default:
        return (b & 0xC0) == 0x80;
    }
}

bool tok_utf8_valid(const char *s, size_t len, size_t *bad)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = tok_utf8_seq_len(u[i]);
        if (n == 0 || len - i < n || !second_ok(u[i], u[i + 1])) goto out_bad;
        for (size_t k = 2; k < n; k++)
            if ((u[i + k] & 0xC0) != 0x80) goto out_bad;
        i += n;
    }
    return true;
out_bad:
    if (bad) *bad = i;
    return false;
}

uint32_t tok_utf8_at(const char *s, size_t len, size_t i, size_t *n)
{
    const unsigned char *u = (const unsigned char *)s + i;
    size_t k = tok_utf8_seq_len(u[0]);
    /* Validated text never gets here with a bad lead or a cut sequence; stay
     * in bounds anyway. */
    if (k == 0 || k > len - i) {
        *n = 1;
        return 0xFFFD;
    }
    *n = k;
    switch (k) {
    case 1:
        return u[0];
    case 2:
        return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    case 3:
        return ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    default:
        return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
               ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
    }
}

size_t tok_utf8_put(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t tok_utf8_complete(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    /* The last lead byte within the final 4 bytes decides. */
    size_t stop = len > 4 ? len - 4 : 0;
    size_t p = len;
    while (p > stop) {
        p--;
        if ((u[p] & 0xC0) != 0x80) break;
        if (p == stop) return len; /* only continuation bytes: invalid, send them */
    }
    if (p == len) return len; /* empty */
    size_t n = tok_utf8_seq_len(u[p]);
    if (n <= 1 || len - p >= n) return len;
    /* An incomplete sequence: hold it back only if what is there can still
     * become valid. */
    if (len - p >= 2 && !second_ok(u[p], u[p + 1])) return len;
    return p;
}

tok_uc_class tok_uc_classify(uint32_t cp)
{
    size_t lo = 0, hi = tok_uc_n_ranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < tok_uc_ranges[mid].lo)
            hi = mid;
        else if (cp > tok_uc_ranges[mid].hi)
            lo = mid + 1;
        else
            return (tok_uc_class)tok_uc_ranges[mid].cls;
    }
    return TOK_UC_OTHER;
}
