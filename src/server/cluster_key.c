/*
 * The cluster key (see cluster_key.h).
 */
#include "server/cluster_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_MAX 512

struct cluster_key {
    size_t len;
    char secret[KEY_MAX + 1];
};

int cluster_key_load(const char *path, cluster_key **out, rouse_errbuf *eb)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rouse_err_set(eb, ROUSE_EIO, "--cluster-key-file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return rouse_err_set(eb, ROUSE_EINVAL, "--cluster-key-file %s: not a regular file", path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "--cluster-key-file %s: readable by others (mode %03o); chmod 600 it",
                             path, (unsigned)(st.st_mode & 0777));
    }
    char buf[KEY_MAX + 2];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf) - 1)) < 0 && errno == EINTR) {
    }
    close(fd);
    if (n < 0)
        return rouse_err_set(eb, ROUSE_EIO, "--cluster-key-file %s: %s", path, strerror(errno));
    buf[n] = 0;
    size_t len = strcspn(buf, "\r\n");
    if ((size_t)n == sizeof(buf) - 1 && len == (size_t)n)
        return rouse_err_set(eb, ROUSE_EINVAL, "--cluster-key-file %s: key longer than %d characters",
                             path, KEY_MAX);
    buf[len] = 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)buf[i] <= ' ' || (unsigned char)buf[i] >= 127)
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "--cluster-key-file %s: the key must be printable ASCII without spaces",
                                 path);
    if (len < CLUSTER_KEY_MIN_LEN)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "--cluster-key-file %s: key of %zu characters, at least %d needed", path,
                             len, CLUSTER_KEY_MIN_LEN);
    cluster_key *k = calloc(1, sizeof(*k));
    if (!k) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    memcpy(k->secret, buf, len + 1);
    k->len = len;
    explicit_bzero(buf, sizeof(buf));
    *out = k;
    return 0;
}

void cluster_key_destroy(cluster_key *k)
{
    if (!k) return;
    explicit_bzero(k, sizeof(*k));
    free(k);
}

bool cluster_key_check(const cluster_key *k, const char *value)
{
    if (!k || !value) return false;
    size_t vlen = strnlen(value, KEY_MAX + 1);
    /* Compare over the key's whole length whatever value is: the time
     * depends on the key's length only, which is not secret enough to
     * matter (at least 32 characters either way). */
    unsigned char diff = (unsigned char)(vlen != k->len);
    for (size_t i = 0; i < k->len; i++) {
        unsigned char c = i < vlen ? (unsigned char)value[i] : 0;
        diff |= (unsigned char)(c ^ (unsigned char)k->secret[i]);
    }
    return diff == 0;
}

const char *cluster_key_secret(const cluster_key *k) { return k->secret; }
