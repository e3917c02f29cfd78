/*
 * A tiny protobuf encoder for building ONNX messages inside tests.
 *
 * An enc is a growable byte buffer; nested messages are built in their own
 * enc and appended with enc_msg(), which also frees them. Allocation failure
 * aborts: this is test code and a half-built message would only mislead.
 */
#ifndef ROUSE_TESTS_ONNX_ENC_H
#define ROUSE_TESTS_ONNX_ENC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct enc {
    uint8_t *p;
    size_t len, cap;
} enc;

static inline void enc_bytes(enc *e, const void *d, size_t n)
{
    if (e->len + n > e->cap) {
        size_t cap = e->cap ? e->cap : 64;
        while (cap < e->len + n)
            cap *= 2;
        uint8_t *p = realloc(e->p, cap);
        if (!p) {
            fprintf(stderr, "enc: out of memory\n");
            abort();
        }
        e->p = p;
        e->cap = cap;
    }
    if (n) memcpy(e->p + e->len, d, n);
    e->len += n;
}

static inline void enc_byte(enc *e, uint8_t b)
{
    enc_bytes(e, &b, 1);
}

static inline void enc_varint(enc *e, uint64_t v)
{
    while (v >= 0x80) {
        enc_byte(e, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    enc_byte(e, (uint8_t)v);
}

static inline void enc_tag(enc *e, uint32_t num, int wire)
{
    enc_varint(e, ((uint64_t)num << 3) | (uint64_t)wire);
}

/* Field `num` as a varint (int32/int64/enum fields; negatives take 10 bytes). */
static inline void enc_int(enc *e, uint32_t num, int64_t v)
{
    enc_tag(e, num, 0);
    enc_varint(e, (uint64_t)v);
}

static inline void enc_fixed32(enc *e, uint32_t num, uint32_t v)
{
    enc_tag(e, num, 5);
    for (int i = 0; i < 4; i++)
        enc_byte(e, (uint8_t)(v >> (8 * i)));
}

static inline void enc_fixed64(enc *e, uint32_t num, uint64_t v)
{
    enc_tag(e, num, 1);
    for (int i = 0; i < 8; i++)
        enc_byte(e, (uint8_t)(v >> (8 * i)));
}

static inline void enc_float(enc *e, uint32_t num, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof(bits));
    enc_fixed32(e, num, bits);
}

static inline void enc_double(enc *e, uint32_t num, double f)
{
    uint64_t bits;
    memcpy(&bits, &f, sizeof(bits));
    enc_fixed64(e, num, bits);
}

static inline void enc_len(enc *e, uint32_t num, const void *d, size_t n)
{
    enc_tag(e, num, 2);
    enc_varint(e, n);
    enc_bytes(e, d, n);
}

static inline void enc_str(enc *e, uint32_t num, const char *s)
{
    enc_len(e, num, s, strlen(s));
}

/* Appends sub as a length-delimited field and frees it. */
static inline void enc_msg(enc *e, uint32_t num, enc *sub)
{
    enc_len(e, num, sub->p, sub->len);
    free(sub->p);
    memset(sub, 0, sizeof(*sub));
}

/* Packed repeated varints. */
static inline void enc_packed_ints(enc *e, uint32_t num, const int64_t *v, size_t n)
{
    enc body = {0};
    for (size_t i = 0; i < n; i++)
        enc_varint(&body, (uint64_t)v[i]);
    enc_msg(e, num, &body);
}

/* Packed repeated floats (fixed32). */
static inline void enc_packed_floats(enc *e, uint32_t num, const float *v, size_t n)
{
    enc_len(e, num, v, n * sizeof(*v));
}

static inline void enc_free(enc *e)
{
    free(e->p);
    memset(e, 0, sizeof(*e));
}

#endif
