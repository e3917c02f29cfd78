/*
 * libFuzzer target for the words serve takes from an S3 error document
 * (src/store/blob_s3.c, blob_s3_error_text): any bytes a bucket answers
 * with give a short line of printable ASCII, never a crash or a read past
 * the body.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/blob_s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, not NUL-terminated: the parser must honour len. */
    char *body = malloc(size ? size : 1);
    if (!body) abort();
    memcpy(body, data, size);
    char out[64];
    blob_s3_error_text(body, size, out, sizeof(out));
    size_t n = strnlen(out, sizeof(out));
    if (n >= sizeof(out)) abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f) abort();
    free(body);
    return 0;
}
