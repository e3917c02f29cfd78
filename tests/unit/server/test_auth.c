/*
 * The key table (server/auth.h): secrets and ids as promised, lookup of an
 * Authorization header (valid, unknown, revoked, expired, malformed), and
 * the --auth-file parser's entries and errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "server/auth.h"

static void add_key(auth_table *t, const char *id, const char *secret, const char *role,
                    int64_t expires_ms, int64_t revoked_ms)
{
    store_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", id);
    snprintf(k.tenant, sizeof(k.tenant), "acme");
    snprintf(k.role, sizeof(k.role), "%s", role);
    assert_int_equal(auth_secret_hash_hex(secret, strlen(secret), k.hash), 0);
    k.expires_ms = expires_ms;
    k.revoked_ms = revoked_ms;
    rouse_errbuf eb;
    assert_int_equal(auth_table_add(t, &k, false, &eb), 0);
}

static void test_secrets(void **state)
{
    (void)state;
    char a[AUTH_SECRET_LEN + 1], b[AUTH_SECRET_LEN + 1], id[STORE_KEY_ID_MAX + 1];
    rouse_errbuf eb;
    assert_int_equal(auth_secret_new(a, &eb), 0);
    assert_int_equal(auth_secret_new(b, &eb), 0);
    assert_int_equal(strlen(a), AUTH_SECRET_LEN);
    assert_int_equal(strncmp(a, "rk_", 3), 0);
    assert_int_equal(strspn(a + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     43);
    assert_string_not_equal(a, b);
    assert_int_equal(auth_key_id_new(id, &eb), 0);
    assert_int_equal(strlen(id), 17);
    assert_int_equal(id[0], 'k');
    /* The stored form is SHA-256 in hex: "abc" has a known digest. */
    char hex[65];
    assert_int_equal(auth_secret_hash_hex("abc", 3, hex), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_lookup(void **state)
{
    (void)state;
    auth_table t;
    auth_table_init(&t);
    add_key(&t, "k1", "secret-one-0123456789", "deploy", 0, 0);
    add_key(&t, "k2", "secret-two-0123456789", "invoke", 5000, 0);
    add_key(&t, "k3", "secret-three-012345678", "admin", 0, 1234);
    const auth_key *k;
    assert_int_equal(auth_lookup(&t, "Bearer secret-one-0123456789", 1, &k), AUTH_VALID);
    assert_string_equal(k->k.id, "k1");
    assert_int_equal(k->role, AUTH_DEPLOY);
    assert_int_equal(auth_lookup(&t, "bearer   secret-one-0123456789  ", 1, &k), AUTH_VALID);
    assert_int_equal(auth_lookup(&t, "Bearer secret-two-0123456789", 4999, &k), AUTH_VALID);
    assert_int_equal(auth_lookup(&t, "Bearer secret-two-0123456789", 5000, &k), AUTH_EXPIRED);
    assert_string_equal(k->k.id, "k2");
    assert_int_equal(auth_lookup(&t, "Bearer secret-three-012345678", 1, &k), AUTH_REVOKED);
    assert_int_equal(auth_lookup(&t, "Bearer secret-one-012345678", 1, &k), AUTH_UNKNOWN);
    assert_null(k);
    assert_int_equal(auth_lookup(&t, NULL, 1, &k), AUTH_MISSING);
    assert_int_equal(auth_lookup(&t, "Basic YTpi", 1, &k), AUTH_MALFORMED);
    assert_int_equal(auth_lookup(&t, "Bearer", 1, &k), AUTH_MALFORMED);
    assert_int_equal(auth_lookup(&t, "Bearer a b", 1, &k), AUTH_MALFORMED);
    assert_int_equal(auth_lookup(&t, "Bearersecret-one-0123456789", 1, &k), AUTH_MALFORMED);
    assert_non_null(auth_table_find(&t, "k3"));
    assert_null(auth_table_find(&t, "k4"));
    auth_table_fini(&t);
}

typedef struct seen {
    int n;
    char last[128];
} seen;

static int entry(void *user, const char *secret, const char *tenant, auth_role role, int line,
                 rouse_errbuf *eb)
{
    (void)eb;
    seen *s = user;
    s->n++;
    snprintf(s->last, sizeof(s->last), "%s %s %s %d", secret, tenant, auth_role_name(role), line);
    return 0;
}

static void expect_error(const char *text, const char *msg)
{
    seen s = {0};
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = auth_file_parse(text, strlen(text), entry, &s, &eb);
    if (rc == 0 || !strstr(eb.msg, msg)) fprintf(stderr, "'%s': got '%s'\n", text, eb.msg);
    assert_true(rc < 0);
    assert_non_null(strstr(eb.msg, msg));
}

static void test_auth_file(void **state)
{
    (void)state;
    seen s = {0};
    rouse_errbuf eb;
    const char *ok = "# static keys\n"
                     "keys:\n"
                     "  - key: 0123456789abcdef\n"
                     "    tenant: default\n"
                     "    role: admin\n"
                     "  - {key: \"x-y-z-0123456789\", tenant: team-b, role: invoke}\n";
    assert_int_equal(auth_file_parse(ok, strlen(ok), entry, &s, &eb), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.last, "x-y-z-0123456789 team-b invoke 6");
    s.n = 0;
    assert_int_equal(auth_file_parse("keys: []\n", 9, entry, &s, &eb), 0);
    assert_int_equal(s.n, 0);
    expect_error("", "expected a mapping with a 'keys' list");
    expect_error("- a\n", "expected a mapping");
    expect_error("keys: {}\n", "'keys' must be a list");
    expect_error("keys: []\nkeys: []\n", "line 2: 'keys' given twice");
    expect_error("keys:\n  - 3\n", "line 2: keys[0]: must be a mapping");
    expect_error("keys:\n  - {key: 0123456789abcdef, tenant: a, role: admin, key: x}\n",
                 "keys[0].key: given twice");
    expect_error("keys:\n  - {key: [1], tenant: a, role: admin}\n", "keys[0].key: must be a string");
    expect_error("keys:\n  - {key: 0123456789abcdef, tenant: a}\n", "keys[0]: role is missing");
    expect_error("keys:\n  - {key: 0123456 89abcdef, tenant: a, role: admin}\n",
                 "keys[0].key: must be 16 to 512 printable characters");
    expect_error("keys:\n  - {key: 0123456789abcdef, tenant: -a, role: admin}\n",
                 "keys[0].tenant: '-a' is not a tenant name");
    expect_error("keys: [\n", "line ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_auth_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
