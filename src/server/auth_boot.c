/*
 * Access control at serve's start (server_int.h, auth_start): the keys of
 * the registry and of an --auth-file into the in-memory table, and the
 * bootstrap admin key.
 *
 * The bootstrap key is made once, at the first start with --auth whose
 * registry holds no key (and whose --auth-file names no admin): its secret
 * goes to stderr and to <data>/bootstrap.key (mode 0600), never to stdout,
 * whose first line scripts read. With --auth-bootstrap-key-file the secret
 * is the operator's and is stored (as its hash) unless already known. The
 * registry write happens before the writer thread and the listener start,
 * so it is the only write serve makes outside the writer.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/server_int.h"
#include "store/keys.h"

#define MOD "auth"

static int load_one(void *user, const store_key *k)
{
    void **a = user;
    auth_table *t = a[0];
    rouse_errbuf *eb = a[1];
    return auth_table_add(t, k, false, eb) < 0;
}

/* Stores an admin key of the default tenant (before the writer starts). */
static int store_admin(server *s, const char *hash_hex, const char *name, rouse_errbuf *eb)
{
    store_key k;
    memset(&k, 0, sizeof(k));
    int rc = auth_key_id_new(k.id, eb);
    if (rc < 0) return rc;
    snprintf(k.tenant, sizeof(k.tenant), "%s", STORE_DEFAULT_TENANT);
    snprintf(k.role, sizeof(k.role), "admin");
    snprintf(k.hash, sizeof(k.hash), "%s", hash_hex);
    snprintf(k.name, sizeof(k.name), "%s", name);
    k.created_ms = rouse_wall_ms();
    if ((rc = store_tx_begin(s->st, eb)) < 0) return rc;
    if ((rc = store_key_insert_tx(s->st, &k, eb)) < 0) {
        store_tx_rollback(s->st);
        return rc;
    }
    if ((rc = store_tx_commit(s->st, eb)) < 0) return rc;
    return auth_table_add(&s->keys, &k, false, eb);
}

/* The secret of --auth-bootstrap-key-file: its first line, trimmed. */
static int read_secret(const char *path, char *out, size_t cap, rouse_errbuf *eb)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return rouse_err_set(eb, ROUSE_EIO, "--auth-bootstrap-key-file %s: %s", path,
                             strerror(errno));
    char line[AUTH_SECRET_MAX + 4] = "";
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, " \t\r\n");
    p[n] = '\0';
    bool printable = true;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f) printable = false;
    if (!got || n < AUTH_SECRET_MIN || n > AUTH_SECRET_MAX || !printable || n >= cap) {
        memset(line, 0, sizeof(line));
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "--auth-bootstrap-key-file %s: its first line must be a secret of "
                             "%d to %d printable characters",
                             path, AUTH_SECRET_MIN, AUTH_SECRET_MAX);
    }
    memcpy(out, p, n + 1);
    memset(line, 0, sizeof(line));
    return 0;
}

/* Writes the new bootstrap secret to <data>/bootstrap.key, mode 0600 from
 * its creation on (never readable by others, not even for a moment). */
static int write_bootstrap_file(server *s, const char *secret, char *path, size_t cap,
                                rouse_errbuf *eb)
{
    snprintf(path, cap, "%s/bootstrap.key", s->data_dir);
    unlink(path); /* a stale one from a start that failed before storing its key */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return rouse_err_set(eb, ROUSE_EIO, "cannot create %s: %s", path, strerror(errno));
    char line[AUTH_SECRET_LEN + 2];
    int n = snprintf(line, sizeof(line), "%s\n", secret);
    bool ok = fchmod(fd, 0600) == 0 && write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    int e = errno;
    close(fd);
    memset(line, 0, sizeof(line));
    if (!ok) {
        unlink(path);
        return rouse_err_set(eb, ROUSE_EIO, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

int auth_start(server *s, rouse_errbuf *eb)
{
    if (!s->opts.auth) return 0;
    void *args[2] = {&s->keys, eb};
    int rc = store_keys_load(s->st, load_one, args, eb);
    if (rc == 0 && eb->msg[0]) rc = ROUSE_EFORMAT; /* load_one stopped on a bad row */
    if (rc < 0) return rc;
    int n_stored = s->keys.n, n_file_admin = 0;
    if (s->opts.auth_file &&
        (rc = auth_file_load(s->opts.auth_file, &s->keys, &n_file_admin, eb)) < 0)
        return rc;
    char hex[ROUSE_SHA256_HEX_LEN + 1];
    if (s->opts.auth_bootstrap_key_file) {
        char secret[AUTH_SECRET_MAX + 1];
        if ((rc = read_secret(s->opts.auth_bootstrap_key_file, secret, sizeof(secret), eb)) < 0)
            return rc;
        rc = auth_secret_hash_hex(secret, strlen(secret), hex);
        memset(secret, 0, sizeof(secret));
        if (rc < 0) return rouse_err_set(eb, rc, "hashing the bootstrap key");
        for (int i = 0; i < s->keys.n; i++)
            if (strcmp(s->keys.keys[i].k.hash, hex) == 0) {
                if (s->keys.keys[i].role != AUTH_ADMIN || s->keys.keys[i].k.revoked_ms > 0)
                    LOG_WARN(MOD, "the --auth-bootstrap-key-file key is key %s, which is %s",
                             s->keys.keys[i].k.id,
                             s->keys.keys[i].k.revoked_ms > 0 ? "revoked" : "not an admin key");
                goto out_done;
            }
        if ((rc = store_admin(s, hex, "bootstrap", eb)) < 0) return rc;
        LOG_INFO(MOD, "the --auth-bootstrap-key-file key is stored as admin key %s",
                 s->keys.keys[s->keys.n - 1].k.id);
        goto out_done;
    }
    if (n_stored == 0 && n_file_admin == 0) {
        char secret[AUTH_SECRET_LEN + 1], path[PATH_MAX + 32];
        if ((rc = auth_secret_new(secret, eb)) < 0) return rc;
        if ((rc = auth_secret_hash_hex(secret, strlen(secret), hex)) < 0)
            return rouse_err_set(eb, rc, "hashing the bootstrap key");
        if ((rc = write_bootstrap_file(s, secret, path, sizeof(path), eb)) < 0) goto out_wipe;
        if ((rc = store_admin(s, hex, "bootstrap", eb)) < 0) {
            unlink(path);
            goto out_wipe;
        }
        /* stderr only: stdout's first line is "listening on", which
         * scripts read and logs keep. */
        fprintf(stderr,
                "rouse serve: bootstrap admin key (shown once; also in %s, mode 0600):\n"
                "  %s\n"
                "rouse serve: create keys with it (rouse keys create --tenant T --role R), "
                "then delete that file\n",
                path, secret);
        fflush(stderr);
    out_wipe:
        memset(secret, 0, sizeof(secret));
        if (rc < 0) return rc;
    }
out_done:
    LOG_INFO(MOD, "access control on: %d key(s) (%d from the registry)", s->keys.n, n_stored);
    return 0;
}
