/*
 * libFuzzer target for the request-head check that serve runs on the first
 * bytes of every new connection (src/server/http_head.c), before
 * libmicrohttpd reads them: any bytes give a verdict, never a crash or a
 * read past the buffer. The same bytes as a connection's stream
 * (http_frame_scan, which serve runs on every byte before libmicrohttpd
 * reads it): fed whole and in pieces, the framing accepts the same bytes
 * and reaches the same state, and never accepts more than it was given.
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

    http_frame whole, parts;
    memset(&whole, 0, sizeof(whole));
    memset(&parts, 0, sizeof(parts));
    size_t acc = http_frame_scan(&whole, buf, size);
    if (acc > size) abort();
    /* Pieces of 1 + (first byte % 61) bytes, unaccepted bytes given again. */
    size_t piece = size ? 1 + (size_t)(data[0] % 61) : 1, have = 0, pacc = 0;
    while (have < size && parts.state != HTTP_FRAME_REJECTED) {
        have = have + piece < size ? have + piece : size;
        pacc += http_frame_scan(&parts, buf + pacc, have - pacc);
        if (pacc > have) abort();
    }
    if (pacc != acc || parts.state != whole.state || parts.requests != whole.requests) abort();
    free(buf);
    return 0;
}
