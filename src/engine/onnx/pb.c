/*
 * Protobuf wire-format reader. Invariant: r->pos <= r->len at every return,
 * and every byte read lies in r->buf[0..r->len). Lengths are compared against
 * the bytes left before any pointer is formed, so a hostile length can
 * neither overflow nor point outside the buffer.
 */
#include "engine/onnx/pb.h"

#include <string.h>

void pb_reader_init(pb_reader *r, const uint8_t *buf, size_t len, size_t base)
{
    r->buf = buf;
    r->len = len;
    r->pos = 0;
    r->base = base;
}

void pb_reader_sub(pb_reader *r, const pb_field *f)
{
    pb_reader_init(r, f->data, f->len, f->data_off);
}

bool pb_more(const pb_reader *r)
{
    return r->pos < r->len;
}

const char *pb_wire_name(int wire)
{
    switch (wire) {
    case PB_VARINT:
        return "varint";
    case PB_I64:
        return "fixed64";
    case PB_LEN:
        return "length-delimited";
    case PB_SGROUP:
        return "start-group";
    case PB_EGROUP:
        return "end-group";
    case PB_I32:
        return "fixed32";
    default:
        return "invalid";
    }
}

int pb_read_varint(pb_reader *r, uint64_t *v, rouse_errbuf *eb)
{
    size_t start = r->pos;
    uint64_t x = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (r->pos >= r->len)
            return rouse_err_set(eb, ROUSE_EFORMAT, "truncated varint at offset %zu",
                                 r->base + start);
        uint8_t b = r->buf[r->pos++];
        /* The 10th byte holds bit 63 only; anything more does not fit. */
        if (i == 9 && (b & 0x7e))
            return rouse_err_set(eb, ROUSE_EFORMAT, "varint overflows 64 bits at offset %zu",
                                 r->base + start);
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return rouse_err_set(eb, ROUSE_EFORMAT, "varint longer than 10 bytes at offset %zu",
                         r->base + start);
}

static uint64_t load_le(const uint8_t *p, unsigned n)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < n; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return x;
}

static int read_fixed(pb_reader *r, unsigned n, uint64_t *v, rouse_errbuf *eb)
{
    if (r->len - r->pos < n)
        return rouse_err_set(eb, ROUSE_EFORMAT, "truncated fixed%u at offset %zu", n * 8,
                             r->base + r->pos);
    *v = load_le(r->buf + r->pos, n);
    r->pos += n;
    return 0;
}

int pb_next(pb_reader *r, pb_field *f, rouse_errbuf *eb)
{
    int rc;
    uint64_t tag;
    memset(f, 0, sizeof(*f));
    f->off = r->base + r->pos;
    if ((rc = pb_read_varint(r, &tag, eb)) < 0) return rc;
    if ((tag >> 3) == 0 || (tag >> 3) > PB_MAX_FIELD)
        return rouse_err_set(eb, ROUSE_EFORMAT, "invalid field number %llu at offset %zu",
                             (unsigned long long)(tag >> 3), f->off);
    f->num = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    switch (f->wire) {
    case PB_VARINT:
        return pb_read_varint(r, &f->u, eb);
    case PB_I64:
        return read_fixed(r, 8, &f->u, eb);
    case PB_I32:
        return read_fixed(r, 4, &f->u, eb);
    case PB_LEN: {
        uint64_t n;
        size_t len_off = r->base + r->pos;
        if ((rc = pb_read_varint(r, &n, eb)) < 0) return rc;
        if (n > r->len - r->pos)
            return rouse_err_set(eb, ROUSE_EFORMAT,
                                 "field %u: length %llu at offset %zu runs past the end of "
                                 "its message (%zu bytes left)",
                                 f->num, (unsigned long long)n, len_off, r->len - r->pos);
        f->data = r->buf + r->pos;
        f->len = (size_t)n;
        f->data_off = r->base + r->pos;
        r->pos += (size_t)n;
        return 0;
    }
    case PB_SGROUP:
    case PB_EGROUP:
        return rouse_err_set(eb, ROUSE_EFORMAT,
                             "field %u at offset %zu is a group, which ONNX does not use", f->num,
                             f->off);
    default:
        return rouse_err_set(eb, ROUSE_EFORMAT, "field %u at offset %zu: invalid wire type %d",
                             f->num, f->off, f->wire);
    }
}

static unsigned fixed_width(int elem_wire)
{
    return elem_wire == PB_I32 ? 4 : elem_wire == PB_I64 ? 8 : 0;
}

int pb_count(const pb_field *f, int elem_wire, size_t *n, rouse_errbuf *eb)
{
    if (f->wire == elem_wire) {
        *n = 1;
        return 0;
    }
    if (f->wire != PB_LEN)
        return rouse_err_set(eb, ROUSE_EFORMAT,
                             "field %u at offset %zu has wire type %s, expected %s or packed",
                             f->num, f->off, pb_wire_name(f->wire), pb_wire_name(elem_wire));
    unsigned w = fixed_width(elem_wire);
    if (w) {
        if (f->len % w)
            return rouse_err_set(eb, ROUSE_EFORMAT,
                                 "field %u at offset %zu: packed %s payload of %zu bytes is not "
                                 "a multiple of %u",
                                 f->num, f->off, pb_wire_name(elem_wire), f->len, w);
        *n = f->len / w;
        return 0;
    }
    size_t c = 0, start = 0;
    for (size_t i = 0; i < f->len; i++) {
        if (!(f->data[i] & 0x80)) {
            c++;
            start = i + 1;
        }
    }
    /* Caught here rather than when decoding so that the message names the
     * real fault, not the value count it leads to. */
    if (start != f->len)
        return rouse_err_set(eb, ROUSE_EFORMAT, "truncated varint at offset %zu",
                             f->data_off + start);
    *n = c;
    return 0;
}

void pb_iter_init(pb_iter *it, const pb_field *f, int elem_wire)
{
    memset(it, 0, sizeof(*it));
    it->elem_wire = elem_wire;
    it->packed = f->wire == PB_LEN;
    if (it->packed)
        pb_reader_sub(&it->r, f);
    else
        it->single = f->u;
}

int pb_iter_next(pb_iter *it, uint64_t *v, rouse_errbuf *eb)
{
    int rc;
    if (!it->packed) {
        if (it->single_done) return 0;
        it->single_done = true;
        *v = it->single;
        return 1;
    }
    if (!pb_more(&it->r)) return 0;
    unsigned w = fixed_width(it->elem_wire);
    if (w)
        rc = read_fixed(&it->r, w, v, eb);
    else
        rc = pb_read_varint(&it->r, v, eb);
    return rc < 0 ? rc : 1;
}
