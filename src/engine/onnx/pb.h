/*
 * Bounds-checked reader for the protobuf wire format, just enough for ONNX.
 *
 * A pb_reader walks the fields of one message held in buf[0..len); it never
 * reads outside that range and never allocates. Length-delimited payloads are
 * returned as pointers into the same buffer, so nested messages are read by
 * opening a sub-reader over a field's payload. Offsets in error messages are
 * absolute (relative to the outermost buffer) so that a user can find the
 * faulty byte in the file.
 *
 * Groups (wire types 3 and 4) are rejected: ONNX never uses them, and
 * skipping them would need a stack of open groups.
 */
#ifndef ROUSE_ENGINE_ONNX_PB_H
#define ROUSE_ENGINE_ONNX_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rouse/err.h"

enum pb_wire {
    PB_VARINT = 0,
    PB_I64 = 1,
    PB_LEN = 2,
    PB_SGROUP = 3,
    PB_EGROUP = 4,
    PB_I32 = 5,
};

/* Largest field number protobuf allows (2^29 - 1). */
#define PB_MAX_FIELD 536870911u

typedef struct pb_reader {
    const uint8_t *buf; /* the message; may be NULL when len is 0 */
    size_t len;
    size_t pos;  /* next byte to read, <= len */
    size_t base; /* offset of buf[0] in the outermost buffer */
} pb_reader;

/* One field as it appears on the wire. */
typedef struct pb_field {
    uint32_t num;
    int wire;            /* enum pb_wire */
    size_t off;          /* absolute offset of the tag */
    uint64_t u;          /* PB_VARINT, PB_I32, PB_I64: the value (fixed types little-endian) */
    const uint8_t *data; /* PB_LEN: the payload, borrowed from the reader's buffer */
    size_t len;          /* PB_LEN: payload length */
    size_t data_off;     /* PB_LEN: absolute offset of the payload */
} pb_field;

/* Reader over buf[0..len); base is the offset of buf[0] in the outermost buffer. */
void pb_reader_init(pb_reader *r, const uint8_t *buf, size_t len, size_t base);

/* Reader over the payload of a PB_LEN field. */
void pb_reader_sub(pb_reader *r, const pb_field *f);

/* True while fields remain. */
bool pb_more(const pb_reader *r);

/* Reads the next field (tag and value). Returns 0, or ROUSE_EFORMAT with the
 * offending offset in eb: truncated or over-long varints, lengths past the end
 * of the message, field number 0, groups, unknown wire types. */
int pb_next(pb_reader *r, pb_field *f, rouse_errbuf *eb);

/* Reads one varint at r->pos: at most 10 bytes, and the 10th may only carry
 * the top bit of a 64-bit value. */
int pb_read_varint(pb_reader *r, uint64_t *v, rouse_errbuf *eb);

/* Iterates the values of one record of a repeated scalar field, whether it is
 * packed (one PB_LEN record holding many values) or not (one value). */
typedef struct pb_iter {
    pb_reader r;   /* over the packed payload */
    int elem_wire; /* PB_VARINT, PB_I32 or PB_I64 */
    bool packed;
    bool single_done; /* unpacked: the one value was produced */
    uint64_t single;
} pb_iter;

/* Counts the values of a record. ROUSE_EFORMAT when the wire type is neither
 * elem_wire nor PB_LEN, or a packed fixed-width payload is not a whole number
 * of values. For packed varints the count is the number of terminating bytes,
 * which is exact for any payload that later decodes without error. */
int pb_count(const pb_field *f, int elem_wire, size_t *n, rouse_errbuf *eb);

/* Starts iterating a record whose wire type pb_count() accepted. */
void pb_iter_init(pb_iter *it, const pb_field *f, int elem_wire);

/* 1 and the value in *v, 0 at the end, or ROUSE_EFORMAT. */
int pb_iter_next(pb_iter *it, uint64_t *v, rouse_errbuf *eb);

/* Name of a wire type for messages ("varint", "length-delimited"...). */
const char *pb_wire_name(int wire);

#endif
