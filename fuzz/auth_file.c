/*
 * libFuzzer target for serve's key parsers: the --auth-file (keys.yaml,
 * auth_file_parse, every entry also hashed into a key table as serve
 * does) and the Authorization header a request presents (auth_lookup
 * against that table). Neither may crash, leak or read out of bounds on
 * any bytes; a key found must be one the file gave.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth.h"

static int add(void *user, const char *secret, const char *tenant, auth_role role, int line,
               rouse_errbuf *eb)
{
    auth_table *t = user;
    store_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "static-%d", t->n + 1);
    snprintf(k.tenant, sizeof(k.tenant), "%s", tenant);
    snprintf(k.role, sizeof(k.role), "%s", auth_role_name(role));
    (void)line;
    if (auth_secret_hash_hex(secret, strlen(secret), k.hash) < 0) return -1;
    return auth_table_add(t, &k, true, eb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    auth_table t;
    auth_table_init(&t);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    auth_file_parse((const char *)data, size, add, &t, &eb);
    /* The same bytes as a header value (up to the first NUL). */
    char *hdr = malloc(size + 1);
    if (hdr) {
        memcpy(hdr, data, size);
        hdr[size] = '\0';
        const auth_key *k;
        auth_verdict v = auth_lookup(&t, hdr, 0, &k);
        if (v == AUTH_VALID && (!k || strncmp(k->k.id, "static-", 7) != 0)) abort();
        free(hdr);
    }
    auth_table_fini(&t);
    return 0;
}
