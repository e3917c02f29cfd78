/* Protobuf wire reader: varint limits, every wire type, lengths, packed and
 * unpacked repeated fields, absolute offsets in messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "engine/onnx/pb.h"
#include "enc.h"

static int read_one_varint(const uint8_t *b, size_t n, uint64_t *v, rouse_errbuf *eb)
{
    pb_reader r;
    pb_reader_init(&r, b, n, 0);
    return pb_read_varint(&r, v, eb);
}

static void varint_values_and_limits(void **state)
{
    (void)state;
    rouse_errbuf eb;
    uint64_t v;
    const uint64_t vals[] = {0, 1, 127, 128, 300, 1ull << 32, INT64_MAX, UINT64_MAX};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        enc e = {0};
        enc_varint(&e, vals[i]);
        assert_int_equal(read_one_varint(e.p, e.len, &v, &eb), 0);
        assert_true(v == vals[i]);
        enc_free(&e);
    }

    /* UINT64_MAX is the largest: a 10th byte above 1 overflows. */
    uint8_t over[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    assert_int_equal(read_one_varint(over, sizeof(over), &v, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "overflows 64 bits"));

    /* Eleven bytes, even if the value would be small. */
    uint8_t longv[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    assert_int_equal(read_one_varint(longv, sizeof(longv), &v, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "longer than 10 bytes"));

    uint8_t trunc[2] = {0x80, 0x80};
    assert_int_equal(read_one_varint(trunc, sizeof(trunc), &v, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "truncated varint at offset 0"));
    assert_int_equal(read_one_varint(NULL, 0, &v, &eb), ROUSE_EFORMAT);
}

static void next_reads_every_wire_type(void **state)
{
    (void)state;
    rouse_errbuf eb;
    enc e = {0};
    enc_int(&e, 1, -5);
    enc_fixed64(&e, 2, 0x0102030405060708ull);
    enc_str(&e, 3, "abc");
    enc_fixed32(&e, 4, 0xdeadbeef);
    enc_len(&e, PB_MAX_FIELD, "", 0);

    pb_reader r;
    pb_field f;
    pb_reader_init(&r, e.p, e.len, 100);
    assert_int_equal(pb_next(&r, &f, &eb), 0);
    assert_int_equal(f.num, 1);
    assert_int_equal(f.wire, PB_VARINT);
    assert_true((int64_t)f.u == -5);
    assert_int_equal(f.off, 100);
    assert_int_equal(pb_next(&r, &f, &eb), 0);
    assert_int_equal(f.wire, PB_I64);
    assert_true(f.u == 0x0102030405060708ull);
    assert_int_equal(pb_next(&r, &f, &eb), 0);
    assert_int_equal(f.wire, PB_LEN);
    assert_int_equal(f.len, 3);
    assert_memory_equal(f.data, "abc", 3);
    assert_int_equal(f.data_off, 100 + (size_t)(f.data - e.p));
    assert_int_equal(pb_next(&r, &f, &eb), 0);
    assert_int_equal(f.wire, PB_I32);
    assert_true(f.u == 0xdeadbeef);
    assert_int_equal(pb_next(&r, &f, &eb), 0);
    assert_int_equal(f.num, PB_MAX_FIELD);
    assert_int_equal(f.len, 0);
    assert_false(pb_more(&r));
    enc_free(&e);
}

static int next_rc(const uint8_t *b, size_t n, rouse_errbuf *eb)
{
    pb_reader r;
    pb_field f;
    pb_reader_init(&r, b, n, 0);
    return pb_next(&r, &f, eb);
}

static void next_rejects_malformed_fields(void **state)
{
    (void)state;
    rouse_errbuf eb;

    const uint8_t field0[] = {0x00, 0x01};
    assert_int_equal(next_rc(field0, sizeof(field0), &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "invalid field number 0"));

    enc big = {0};
    enc_varint(&big, ((uint64_t)PB_MAX_FIELD + 1) << 3);
    enc_byte(&big, 0);
    assert_int_equal(next_rc(big.p, big.len, &eb), ROUSE_EFORMAT);
    enc_free(&big);

    const uint8_t group[] = {(1 << 3) | PB_SGROUP, (1 << 3) | PB_EGROUP};
    assert_int_equal(next_rc(group, sizeof(group), &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "group"));
    const uint8_t egroup[] = {(1 << 3) | PB_EGROUP};
    assert_int_equal(next_rc(egroup, sizeof(egroup), &eb), ROUSE_EFORMAT);

    const uint8_t wt6[] = {(1 << 3) | 6, 0}, wt7[] = {(1 << 3) | 7, 0};
    assert_int_equal(next_rc(wt6, sizeof(wt6), &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "invalid wire type 6"));
    assert_int_equal(next_rc(wt7, sizeof(wt7), &eb), ROUSE_EFORMAT);

    const uint8_t past[] = {(1 << 3) | PB_LEN, 5, 'a', 'b'};
    assert_int_equal(next_rc(past, sizeof(past), &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "runs past the end"));

    /* A length near 2^64 must not wrap around the bounds check. */
    enc huge = {0};
    enc_tag(&huge, 1, PB_LEN);
    enc_varint(&huge, UINT64_MAX);
    enc_byte(&huge, 0);
    assert_int_equal(next_rc(huge.p, huge.len, &eb), ROUSE_EFORMAT);
    enc_free(&huge);

    const uint8_t f32[] = {(1 << 3) | PB_I32, 1, 2, 3};
    assert_int_equal(next_rc(f32, sizeof(f32), &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "truncated fixed32"));
    const uint8_t f64[] = {(1 << 3) | PB_I64, 1, 2, 3, 4, 5, 6, 7};
    assert_int_equal(next_rc(f64, sizeof(f64), &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "truncated fixed64"));

    const uint8_t vtrunc[] = {(1 << 3) | PB_VARINT, 0x80};
    assert_int_equal(next_rc(vtrunc, sizeof(vtrunc), &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "truncated varint at offset 1"));
}

/* Collects every value of every record of field 1 in buf. */
static int collect(const uint8_t *b, size_t n, int elem_wire, uint64_t *out, size_t cap,
                   size_t *count, rouse_errbuf *eb)
{
    pb_reader r;
    pb_field f;
    int rc;
    size_t k = 0, counted = 0;
    pb_reader_init(&r, b, n, 0);
    while (pb_more(&r)) {
        if ((rc = pb_next(&r, &f, eb)) < 0) return rc;
        size_t c;
        if ((rc = pb_count(&f, elem_wire, &c, eb)) < 0) return rc;
        counted += c;
        pb_iter it;
        uint64_t v;
        pb_iter_init(&it, &f, elem_wire);
        while ((rc = pb_iter_next(&it, &v, eb)) > 0)
            if (k < cap) out[k++] = v;
        if (rc < 0) return rc;
    }
    assert_int_equal(counted, k);
    *count = k;
    return 0;
}

static void repeated_packed_and_unpacked(void **state)
{
    (void)state;
    rouse_errbuf eb;
    uint64_t out[16];
    size_t n;

    enc e = {0};
    const int64_t a[] = {1, 300, -1};
    enc_packed_ints(&e, 1, a, 3);
    enc_int(&e, 1, 7);
    enc_packed_ints(&e, 1, NULL, 0);
    assert_int_equal(collect(e.p, e.len, PB_VARINT, out, 16, &n, &eb), 0);
    assert_int_equal(n, 4);
    assert_true(out[0] == 1 && out[1] == 300 && out[2] == UINT64_MAX && out[3] == 7);
    enc_free(&e);

    const float fl[] = {1.5f, -2.0f};
    enc_packed_floats(&e, 1, fl, 2);
    enc_float(&e, 1, 3.0f);
    assert_int_equal(collect(e.p, e.len, PB_I32, out, 16, &n, &eb), 0);
    assert_int_equal(n, 3);
    float got;
    uint32_t bits = (uint32_t)out[1];
    memcpy(&got, &bits, 4);
    assert_true(got == -2.0f);
    enc_free(&e);

    enc_double(&e, 1, 2.5);
    enc_len(&e, 1, "\0\0\0\0\0\0\0\0", 8);
    assert_int_equal(collect(e.p, e.len, PB_I64, out, 16, &n, &eb), 0);
    assert_int_equal(n, 2);
    enc_free(&e);

    /* A packed fixed32 payload must hold whole values. */
    enc_len(&e, 1, "abcde", 5);
    assert_int_equal(collect(e.p, e.len, PB_I32, out, 16, &n, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "not a multiple of 4"));
    enc_free(&e);

    /* A varint where fixed32 values belong. */
    enc_int(&e, 1, 3);
    assert_int_equal(collect(e.p, e.len, PB_I32, out, 16, &n, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "wire type varint"));
    enc_free(&e);

    /* A packed varint run cut in the middle of a value. */
    const uint8_t cut[] = {(1 << 3) | PB_LEN, 2, 0x01, 0x80};
    assert_int_equal(collect(cut, sizeof(cut), PB_VARINT, out, 16, &n, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "truncated varint at offset 3"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(varint_values_and_limits),
        cmocka_unit_test(next_reads_every_wire_type),
        cmocka_unit_test(next_rejects_malformed_fields),
        cmocka_unit_test(repeated_packed_and_unpacked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
