/*
 * The --auth-file parser (auth.h): keys for static setups, in YAML
 *
 *   keys:
 *     - key: <secret>
 *       tenant: acme
 *       role: deploy
 *
 * Read with libyaml's document loader; every error names the line and the
 * field. Untrusted bytes in the sense that matter here (a typo must never
 * crash serve or grant a role): fuzzed by fuzz/auth_file.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "server/auth.h"

#define AUTH_FILE_MAX (1u << 20)

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int line_of(yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 0;
}

static bool secret_ok(const char *s, size_t *len)
{
    size_t n = strlen(s);
    *len = n;
    if (n < AUTH_SECRET_MIN || n > AUTH_SECRET_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f) return false;
    return true;
}

static int parse_entry(yaml_document_t *doc, yaml_node_t *e, int idx, auth_file_entry_fn fn,
                       void *user, rouse_errbuf *eb)
{
    if (e->type != YAML_MAPPING_NODE)
        return rouse_err_set(eb, ROUSE_EFORMAT,
                             "line %d: keys[%d]: must be a mapping of key, tenant and role",
                             line_of(e), idx);
    const char *secret = NULL, *tenant = NULL, *role = NULL;
    for (yaml_node_pair_t *p = e->data.mapping.pairs.start; p < e->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        const char *name = scalar(k);
        const char **dst = NULL;
        if (name && strcmp(name, "key") == 0)
            dst = &secret;
        else if (name && strcmp(name, "tenant") == 0)
            dst = &tenant;
        else if (name && strcmp(name, "role") == 0)
            dst = &role;
        if (!dst)
            return rouse_err_set(eb, ROUSE_EFORMAT,
                                 "line %d: keys[%d]: unknown field '%.40s' (expected key, tenant "
                                 "and role)",
                                 line_of(k), idx, name ? name : "?");
        if (*dst)
            return rouse_err_set(eb, ROUSE_EFORMAT, "line %d: keys[%d].%s: given twice",
                                 line_of(k), idx, name);
        if (!scalar(v))
            return rouse_err_set(eb, ROUSE_EFORMAT, "line %d: keys[%d].%s: must be a string",
                                 line_of(v), idx, name);
        *dst = scalar(v);
    }
    int line = line_of(e);
    if (!secret || !tenant || !role)
        return rouse_err_set(eb, ROUSE_EFORMAT, "line %d: keys[%d]: %s is missing", line, idx,
                             !secret ? "key" : !tenant ? "tenant" : "role");
    size_t len;
    if (!secret_ok(secret, &len))
        return rouse_err_set(eb, ROUSE_EFORMAT,
                             "line %d: keys[%d].key: must be %d to %d printable characters "
                             "without spaces",
                             line, idx, AUTH_SECRET_MIN, AUTH_SECRET_MAX);
    if (!store_tenant_valid(tenant))
        return rouse_err_set(eb, ROUSE_EFORMAT,
                             "line %d: keys[%d].tenant: '%.70s' is not a tenant name "
                             "([a-z0-9][a-z0-9-]{0,62})",
                             line, idx, tenant);
    auth_role r;
    if (auth_role_parse(role, &r) < 0)
        return rouse_err_set(eb, ROUSE_EFORMAT,
                             "line %d: keys[%d].role: must be admin, deploy or invoke", line, idx);
    return fn(user, secret, tenant, r, line, eb);
}

int auth_file_parse(const char *text, size_t len, auth_file_entry_fn fn, void *user,
                    rouse_errbuf *eb)
{
    if (len > AUTH_FILE_MAX)
        return rouse_err_set(eb, ROUSE_ETOOBIG, "larger than %u bytes", AUTH_FILE_MAX);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    yaml_document_t doc;
    int rc = 0;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = rouse_err_set(eb, ROUSE_EFORMAT, "line %d: %s",
                           (int)parser.problem_mark.line + 1,
                           parser.problem ? parser.problem : "not YAML");
        yaml_parser_delete(&parser);
        return rc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_node_t *keys = NULL;
    if (!root || root->type != YAML_MAPPING_NODE) {
        rc = rouse_err_set(eb, ROUSE_EFORMAT, "line %d: expected a mapping with a 'keys' list",
                           line_of(root));
        goto out;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        const char *name = scalar(k);
        if (!name || strcmp(name, "keys") != 0) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT,
                               "line %d: unknown field '%.40s' (the file holds 'keys' only)",
                               line_of(k), name ? name : "?");
            goto out;
        }
        if (keys) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT, "line %d: 'keys' given twice", line_of(k));
            goto out;
        }
        keys = yaml_document_get_node(&doc, p->value);
    }
    if (!keys || keys->type != YAML_SEQUENCE_NODE) {
        rc = rouse_err_set(eb, ROUSE_EFORMAT, "line %d: 'keys' must be a list", line_of(keys ? keys : root));
        goto out;
    }
    int idx = 0;
    for (yaml_node_item_t *it = keys->data.sequence.items.start;
         rc == 0 && it < keys->data.sequence.items.top; it++, idx++) {
        yaml_node_t *e = yaml_document_get_node(&doc, *it);
        if (!e) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT, "keys[%d]: missing", idx);
            break;
        }
        rc = parse_entry(&doc, e, idx, fn, user, eb);
    }
out:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

typedef struct load_ctx {
    auth_table *t;
    int n, n_admin;
} load_ctx;

static int add_entry(void *user, const char *secret, const char *tenant, auth_role role, int line,
                     rouse_errbuf *eb)
{
    load_ctx *c = user;
    store_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "static-%d", ++c->n);
    snprintf(k.tenant, sizeof(k.tenant), "%s", tenant);
    snprintf(k.role, sizeof(k.role), "%s", auth_role_name(role));
    snprintf(k.name, sizeof(k.name), "auth file, line %d", line);
    int rc = auth_secret_hash_hex(secret, strlen(secret), k.hash);
    if (rc < 0) return rouse_err_set(eb, rc, "hashing a key");
    for (int i = 0; i < c->t->n; i++)
        if (strcmp(c->t->keys[i].k.hash, k.hash) == 0)
            return rouse_err_set(eb, ROUSE_EEXISTS, "line %d: this key is also key %s", line,
                                 c->t->keys[i].k.id);
    if (role == AUTH_ADMIN) c->n_admin++;
    return auth_table_add(c->t, &k, true, eb);
}

int auth_file_load(const char *path, auth_table *t, int *n_admin, rouse_errbuf *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f) return rouse_err_set(eb, ROUSE_EIO, "--auth-file %s: %s", path, strerror(errno));
    char *text = malloc(AUTH_FILE_MAX + 1);
    if (!text) {
        fclose(f);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    size_t n = fread(text, 1, AUTH_FILE_MAX + 1, f);
    bool err = ferror(f);
    fclose(f);
    load_ctx c = {.t = t};
    rouse_errbuf e2;
    rouse_errbuf_clear(&e2);
    int rc = err ? rouse_err_set(&e2, ROUSE_EIO, "cannot read it")
                 : auth_file_parse(text, n, add_entry, &c, &e2);
    memset(text, 0, n);
    free(text);
    if (rc < 0) return rouse_err_set(eb, rc, "--auth-file %s: %s", path, e2.msg);
    *n_admin = c.n_admin;
    return 0;
}
