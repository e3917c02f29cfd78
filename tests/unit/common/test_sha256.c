/* SHA-256 against the FIPS 180-2 / NIST known-answer vectors, one-shot and streamed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "common/sha256.h"
#include "rouse/err.h"

static void hex_of(const void *data, size_t len, char hex[65])
{
    uint8_t d[ROUSE_SHA256_LEN];
    assert_int_equal(rouse_sha256_digest(data, len, d), 0);
    rouse_sha256_hex(d, hex);
}

static void known_vectors(void **state)
{
    (void)state;
    char hex[65];
    hex_of("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void streamed_million_a(void **state)
{
    (void)state;
    /* One million 'a', fed in uneven pieces. */
    char chunk[997];
    memset(chunk, 'a', sizeof(chunk));
    rouse_sha256 h;
    assert_int_equal(rouse_sha256_init(&h), 0);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
        assert_int_equal(rouse_sha256_update(&h, chunk, n), 0);
        left -= n;
    }
    uint8_t d[ROUSE_SHA256_LEN];
    char hex[65];
    assert_int_equal(rouse_sha256_final(&h, d), 0);
    rouse_sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* The context is released by final; further use is a state error. */
    assert_int_equal(rouse_sha256_update(&h, "a", 1), ROUSE_ESTATE);
    rouse_sha256_fini(&h);
}

static void hex_valid(void **state)
{
    (void)state;
    const char *ok = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    assert_true(rouse_sha256_hex_valid(ok));
    char buf[80];
    snprintf(buf, sizeof(buf), "%s0", ok); /* one digit too many */
    assert_false(rouse_sha256_hex_valid(buf));
    snprintf(buf, sizeof(buf), "%.63s", ok); /* one too few */
    assert_false(rouse_sha256_hex_valid(buf));
    snprintf(buf, sizeof(buf), "%s", ok);
    buf[10] = 'C'; /* upper case is not what rouse writes */
    assert_false(rouse_sha256_hex_valid(buf));
    buf[10] = 'g';
    assert_false(rouse_sha256_hex_valid(buf));
    assert_false(rouse_sha256_hex_valid(""));
    assert_false(rouse_sha256_hex_valid(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_vectors),
        cmocka_unit_test(streamed_million_a),
        cmocka_unit_test(hex_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
