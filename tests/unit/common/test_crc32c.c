/* CRC-32C against the published check values, in one piece and in parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/crc32c.h"

static void known_values(void **state)
{
    (void)state;
    /* The standard check value of CRC-32C, and RFC 3720's iSCSI vectors. */
    assert_int_equal(rouse_crc32c(0, "123456789", 9), 0xE3069283u);
    unsigned char zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof(ones));
    assert_int_equal(rouse_crc32c(0, zeros, 32), 0x8A9136AAu);
    assert_int_equal(rouse_crc32c(0, ones, 32), 0x62A8AB43u);
    unsigned char inc[32];
    for (int i = 0; i < 32; i++)
        inc[i] = (unsigned char)i;
    assert_int_equal(rouse_crc32c(0, inc, 32), 0x46DD794Eu);
    assert_int_equal(rouse_crc32c(0, "", 0), 0u);
}

static void parts_equal_whole(void **state)
{
    (void)state;
    unsigned char buf[1000];
    for (int i = 0; i < 1000; i++)
        buf[i] = (unsigned char)(i * 31 + 7);
    uint32_t whole = rouse_crc32c(0, buf, sizeof(buf));
    for (size_t cut = 0; cut <= sizeof(buf); cut += 37)
        assert_int_equal(rouse_crc32c(rouse_crc32c(0, buf, cut), buf + cut, sizeof(buf) - cut),
                         whole);
    buf[500] ^= 1;
    assert_int_not_equal(rouse_crc32c(0, buf, sizeof(buf)), whole);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_values),
        cmocka_unit_test(parts_equal_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
