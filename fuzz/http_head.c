/*
 * libFuzzer target for the request-head check that serve runs on the first
 * bytes of every new connection (src/server/http_head.c), before
 * libmicrohttpd reads them: any bytes give a verdict, never a crash or a
 * read past the buffer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so that ASan sees any read past the end. */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    http_head_check c;
    http_head_inspect(buf, size, &c);
    if (c.verdict == HTTP_HEAD_REJECT && (c.status < 400 || c.status > 599)) abort();
    if (c.verdict == HTTP_HEAD_OK && (c.head_len == 0 || c.head_len > size)) abort();
    http_target_has_nul(buf, size);
    free(buf);
    return 0;
}
