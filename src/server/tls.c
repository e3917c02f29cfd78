/*
 * TLS certificates and their reload (tls.h).
 *
 * Invariants: t->oldest .. t->current is a list of certificate sets, oldest
 * first, ending at the current one; a set before the current one is freed
 * once it and every older set count no open connection (a connection
 * opened while set S was current can only have taken S or a newer set in
 * its handshake, so freeing oldest first never frees one in use).
 */
#include "server/tls.h"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CHAIN 16

struct tls_certs {
    gnutls_pcert_st pcert[MAX_CHAIN];
    unsigned n_pcert;
    gnutls_privkey_t key;
    unsigned n_conns; /* connections opened while this was the current set */
    struct tls_certs *next;
};

struct tls {
    char *cert_path, *key_path;
    struct tls_certs *oldest, *current;
    char describe[256];
};

/* The one tls of the process, for the certificate callback, which GnuTLS
 * calls without a user pointer; set by tls_create, cleared by tls_destroy. */
static tls *the_tls;

static void certs_free(struct tls_certs *c)
{
    if (!c) return;
    for (unsigned i = 0; i < c->n_pcert; i++)
        gnutls_pcert_deinit(&c->pcert[i]);
    if (c->key) gnutls_privkey_deinit(c->key);
    free(c);
}

/* True when the private key belongs to the certificate's public key. */
static int key_matches(struct tls_certs *c)
{
    gnutls_pubkey_t from_key;
    if (gnutls_pubkey_init(&from_key) < 0) return 0;
    int ok = 0;
    gnutls_datum_t a = {0}, b = {0};
    if (gnutls_pubkey_import_privkey(from_key, c->key, 0, 0) == 0 &&
        gnutls_pubkey_export2(from_key, GNUTLS_X509_FMT_DER, &a) == 0 &&
        gnutls_pubkey_export2(c->pcert[0].pubkey, GNUTLS_X509_FMT_DER, &b) == 0)
        ok = a.size == b.size && memcmp(a.data, b.data, a.size) == 0;
    gnutls_free(a.data);
    gnutls_free(b.data);
    gnutls_pubkey_deinit(from_key);
    return ok;
}

static void describe(tls *t, const gnutls_datum_t *der)
{
    gnutls_x509_crt_t crt;
    t->describe[0] = '\0';
    if (gnutls_x509_crt_init(&crt) < 0) return;
    if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) == 0) {
        char dn[160] = "?";
        gnutls_datum_t d = {0};
        if (gnutls_x509_crt_get_dn3(crt, &d, 0) == 0) {
            snprintf(dn, sizeof(dn), "%.*s", (int)d.size, (const char *)d.data);
            gnutls_free(d.data);
        }
        time_t exp = gnutls_x509_crt_get_expiration_time(crt);
        struct tm tm;
        char when[32] = "?";
        if (exp != (time_t)-1 && gmtime_r(&exp, &tm))
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(t->describe, sizeof(t->describe), "%s, expires %s", dn, when);
    }
    gnutls_x509_crt_deinit(crt);
}

static int load(tls *t, struct tls_certs **out, rouse_errbuf *eb)
{
    gnutls_datum_t cert = {0}, key = {0};
    struct tls_certs *c = calloc(1, sizeof(*c));
    if (!c) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    int rc = 0, g;
    if ((g = gnutls_load_file(t->cert_path, &cert)) < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "--tls-cert %s: cannot read it (%s)", t->cert_path,
                           gnutls_strerror(g));
        goto out;
    }
    if ((g = gnutls_load_file(t->key_path, &key)) < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "--tls-key %s: cannot read it (%s)", t->key_path,
                           gnutls_strerror(g));
        goto out;
    }
    c->n_pcert = MAX_CHAIN;
    if ((g = gnutls_pcert_list_import_x509_raw(c->pcert, &c->n_pcert, &cert, GNUTLS_X509_FMT_PEM,
                                               0)) < 0 ||
        c->n_pcert == 0) {
        c->n_pcert = 0;
        rc = rouse_err_set(eb, ROUSE_EINVAL,
                           "--tls-cert %s: not a PEM certificate chain of at most %d (%s)",
                           t->cert_path, MAX_CHAIN, gnutls_strerror(g));
        goto out;
    }
    if ((g = gnutls_privkey_init(&c->key)) < 0 ||
        (g = gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        rc = rouse_err_set(eb, ROUSE_EINVAL, "--tls-key %s: not an unencrypted PEM private key (%s)",
                           t->key_path, gnutls_strerror(g));
        goto out;
    }
    if (!key_matches(c)) {
        rc = rouse_err_set(eb, ROUSE_EINVAL,
                           "--tls-key %s does not belong to the certificate in --tls-cert %s",
                           t->key_path, t->cert_path);
        goto out;
    }
    describe(t, &c->pcert[0].cert);
    *out = c;
    c = NULL;
out:
    certs_free(c);
    if (key.data) {
        gnutls_memset(key.data, 0, key.size);
        gnutls_free(key.data);
    }
    gnutls_free(cert.data);
    return rc;
}

static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    (void)session;
    (void)req_ca_dn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    if (!the_tls || !the_tls->current) return -1;
    struct tls_certs *c = the_tls->current;
    *pcert = c->pcert;
    *pcert_length = c->n_pcert;
    *pkey = c->key;
    return 0;
}

void *tls_cert_callback(void)
{
    gnutls_certificate_retrieve_function2 *f = retrieve;
    return (void *)f;
}

int tls_create(const char *cert_path, const char *key_path, tls **out, rouse_errbuf *eb)
{
    if (the_tls) return rouse_err_set(eb, ROUSE_ESTATE, "TLS is set up already");
    tls *t = calloc(1, sizeof(*t));
    if (!t) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    t->cert_path = strdup(cert_path);
    t->key_path = strdup(key_path);
    int rc = ROUSE_ENOMEM;
    if (!t->cert_path || !t->key_path) {
        rouse_err_set(eb, rc, "out of memory");
        goto out_free;
    }
    if ((rc = load(t, &t->current, eb)) < 0) goto out_free;
    t->oldest = t->current;
    the_tls = t;
    *out = t;
    return 0;
out_free:
    free(t->cert_path);
    free(t->key_path);
    free(t);
    return rc;
}

/* Frees the sets before the current one that no connection can use. */
static void free_retired(tls *t)
{
    while (t->oldest != t->current && t->oldest->n_conns == 0) {
        struct tls_certs *c = t->oldest;
        t->oldest = c->next;
        certs_free(c);
    }
}

int tls_reload(tls *t, rouse_errbuf *eb)
{
    struct tls_certs *c;
    int rc = load(t, &c, eb);
    if (rc < 0) return rc;
    t->current->next = c;
    t->current = c;
    free_retired(t);
    return 0;
}

tls_ref tls_conn_open(tls *t)
{
    t->current->n_conns++;
    return t->current;
}

void tls_conn_close(tls *t, tls_ref r)
{
    if (!r) return;
    if (r->n_conns > 0) r->n_conns--;
    free_retired(t);
}

const char *tls_describe(const tls *t)
{
    return t->describe;
}

void tls_destroy(tls *t)
{
    if (!t) return;
    while (t->oldest) {
        struct tls_certs *c = t->oldest;
        t->oldest = c->next;
        certs_free(c);
    }
    if (the_tls == t) the_tls = NULL;
    free(t->cert_path);
    free(t->key_path);
    free(t);
}
