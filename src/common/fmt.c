/* Formatting without printf (see fmt.h). */
#include "common/fmt.h"

#include <string.h>

size_t fmt_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

char *fmt_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

char *fmt_i64(char *p, int64_t v)
{
    if (v >= 0) return fmt_u64(p, (uint64_t)v);
    *p++ = '-';
    return fmt_u64(p, 0 - (uint64_t)v);
}

char *fmt_hex(char *p, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        p[i] = hex[v & 15];
        v >>= 4;
    }
    return p + digits;
}

char *fmt_ms3(char *p, uint64_t us)
{
    p = fmt_u64(p, us / 1000);
    uint64_t f = us % 1000;
    *p++ = '.';
    *p++ = (char)('0' + f / 100);
    *p++ = (char)('0' + f / 10 % 10);
    *p++ = (char)('0' + f % 10);
    return p;
}
