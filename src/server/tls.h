/*
 * serve's TLS certificates (--tls-cert, --tls-key): loaded at start and
 * again on SIGHUP, handed to libmicrohttpd's GnuTLS sessions through a
 * certificate callback (MHD_OPTION_HTTPS_CERT_CALLBACK, GnuTLS's
 * gnutls_certificate_retrieve_function2) that each handshake calls, so a
 * reload takes effect for every connection accepted after it without
 * restarting the HTTP daemon; connections already open keep theirs.
 *
 * A handshake may still hold certificates that a reload replaced, so the
 * old ones are kept while a connection opened before the reload is open
 * (connections count themselves with tls_conn_open/close), and freed
 * oldest first. A reload that fails (a missing file, a key that does not
 * match the certificate) keeps the certificates in use and says why.
 * Loop thread only.
 */
#ifndef ROUSE_SERVER_TLS_H
#define ROUSE_SERVER_TLS_H

#include "rouse/err.h"

typedef struct tls tls;
typedef struct tls_certs *tls_ref;

/* Loads the PEM certificate chain and private key. Only one tls may exist
 * at a time (the GnuTLS callback takes no user pointer).
 * Owned: free with tls_destroy. */
int tls_create(const char *cert_path, const char *key_path, tls **out, rouse_errbuf *eb);
void tls_destroy(tls *t);

/* Reads both files again; the new certificates serve every handshake from
 * now on. On failure nothing changes. */
int tls_reload(tls *t, rouse_errbuf *eb);

/* A connection opens and closes (MHD's connection notices). */
tls_ref tls_conn_open(tls *t);
void tls_conn_close(tls *t, tls_ref r);

/* The callback for MHD_OPTION_HTTPS_CERT_CALLBACK, as a generic pointer
 * (its type is GnuTLS's gnutls_certificate_retrieve_function2). */
void *tls_cert_callback(void);

/* The certificate's subject and expiry, for the start and reload logs. */
const char *tls_describe(const tls *t);

#endif
