/*
 * Content-addressed blob store on the local file system.
 *
 * Layout under <data_dir>/blobs: sha256/<2 hex>/<62 hex> holds committed
 * blobs (read-only, mode 0400: the data directory is private to serve's user), tmp/ holds uploads in progress.
 *
 * Invariants:
 * - A file under sha256/ is complete and its name is the SHA-256 of its
 *   bytes: uploads are hashed while they stream into a temporary file, which
 *   is fsynced before it is linked (O_TMPFILE) or renamed (mkstemp) into
 *   place, and the directory is fsynced before the digest is returned. So
 *   finding a blob's name is proof of its content, and a returned digest
 *   survives kill -9.
 * - Nothing in tmp/ outlives a failed or aborted upload; a crash can leave
 *   named temporaries behind, and blob_open deletes them (one daemon owns a
 *   data directory).
 */
#include "store/blob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sha256.h"
#include "store/blob_int.h"
#include "store/fsutil.h"

#define DIGEST_PREFIX "sha256:"
#define DIGEST_PREFIX_LEN 7
/* Largest single write(2); Linux transfers at most about 2 GiB per call. */
#define WRITE_CHUNK ((size_t)1 << 30)

struct blobstore {
    char *root;       /* <data_dir>/blobs, for messages */
    int sha_fd;       /* blobs/sha256 */
    int tmp_fd;       /* blobs/tmp */
    bool use_tmpfile; /* O_TMPFILE works here and /proc/self/fd can link it */
};

struct blob_writer {
    blobstore *b;
    int fd;            /* -1 once the temporary file is gone */
    char tmp_name[32]; /* named temporary in tmp/; "" for an O_TMPFILE */
    rouse_sha256 hash;
    uint64_t size;
    uint64_t max_bytes;
    int failed; /* the first error; the upload is dead once set */
};

int blob_digest_valid(const char *digest)
{
    if (!digest || strncmp(digest, DIGEST_PREFIX, DIGEST_PREFIX_LEN) != 0) return 0;
    return rouse_sha256_hex_valid(digest + DIGEST_PREFIX_LEN);
}

/* Deletes every entry of tmp/: uploads that a crash interrupted. */
static int clean_tmp(blobstore *b, rouse_errbuf *eb)
{
    int fd = dup(b->tmp_fd);
    if (fd < 0)
        return rouse_err_set(eb, ROUSE_EIO, "cannot read %s/tmp: %s", b->root, strerror(errno));
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return rouse_err_set(eb, ROUSE_EIO, "cannot read %s/tmp: %s", b->root, strerror(errno));
    }
    rewinddir(d);
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (unlinkat(b->tmp_fd, e->d_name, 0) < 0 && errno != ENOENT) {
            rc = rouse_err_set(eb, ROUSE_EIO, "cannot remove stale upload %s/tmp/%s: %s", b->root,
                               e->d_name, strerror(errno));
            break;
        }
    }
    closedir(d);
    return rc;
}

/* Whether uploads can use O_TMPFILE here: the file system must support it,
 * and linking it needs /proc/self/fd (AT_EMPTY_PATH needs a capability). */
static bool probe_tmpfile(int tmp_fd)
{
    if (access("/proc/self/fd", X_OK) != 0) return false;
    int fd = openat(tmp_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    close(fd);
    return true;
}

static int open_dir(blobstore *b, const char *sub, int *out, rouse_errbuf *eb)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", b->root, sub) >= (int)sizeof(path))
        return rouse_err_set(eb, ROUSE_ERANGE, "blob directory path is too long: %s", b->root);
    int rc = store_fs_mkdirs(path, eb);
    if (rc < 0) return rc;
    *out = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*out < 0) return rouse_err_set(eb, ROUSE_EIO, "cannot open %s: %s", path, strerror(errno));
    return 0;
}

int blob_open_flags(const char *data_dir, unsigned flags, blobstore **out, rouse_errbuf *eb)
{
    *out = NULL;
    if (!data_dir || !*data_dir)
        return rouse_err_set(eb, ROUSE_EINVAL, "the data directory path is empty");
    blobstore *b = calloc(1, sizeof(*b));
    if (!b) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory opening the blob store");
    b->sha_fd = -1;
    b->tmp_fd = -1;
    int rc = ROUSE_ENOMEM;
    size_t n = strlen(data_dir) + sizeof("/blobs");
    if (!(b->root = malloc(n))) {
        rouse_err_set(eb, rc, "out of memory opening the blob store");
        goto out_free;
    }
    snprintf(b->root, n, "%s/blobs", data_dir);
    if ((rc = open_dir(b, "sha256", &b->sha_fd, eb)) < 0) goto out_free;
    if ((rc = open_dir(b, "tmp", &b->tmp_fd, eb)) < 0) goto out_close_sha;
    if (!(flags & BLOB_OPEN_KEEP_TMP) && (rc = clean_tmp(b, eb)) < 0) goto out_close_tmp;
    b->use_tmpfile = !(flags & BLOB_OPEN_NO_TMPFILE) && probe_tmpfile(b->tmp_fd);
    *out = b;
    return 0;

out_close_tmp:
    close(b->tmp_fd);
out_close_sha:
    close(b->sha_fd);
out_free:
    free(b->root);
    free(b);
    return rc;
}

int blob_open(const char *data_dir, blobstore **out, rouse_errbuf *eb)
{
    return blob_open_flags(data_dir, 0, out, eb);
}

int blob_open_shared(const char *data_dir, blobstore **out, rouse_errbuf *eb)
{
    return blob_open_flags(data_dir, BLOB_OPEN_KEEP_TMP, out, eb);
}

void blob_close(blobstore *b)
{
    if (!b) return;
    close(b->tmp_fd);
    close(b->sha_fd);
    free(b->root);
    free(b);
}

/* Removes the temporary file (and so the disk space it holds). */
static void drop_temp(blob_writer *w)
{
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    if (w->tmp_name[0]) unlinkat(w->b->tmp_fd, w->tmp_name, 0);
    w->tmp_name[0] = '\0';
}

/* Records the first failure of an upload and frees its disk space at once:
 * after a full disk, the partial file must not keep the disk full. */
static int fail(blob_writer *w, int rc)
{
    drop_temp(w);
    rouse_sha256_fini(&w->hash);
    w->failed = rc;
    return rc;
}

/* fail() for a system call that failed with err while doing `what`. */
static int io_fail(blob_writer *w, rouse_errbuf *eb, const char *what, int err)
{
    if (err == ENOSPC || err == EDQUOT)
        rouse_err_set(eb, ROUSE_EIO,
                      "no space left on the device of %s while %s a blob; the upload was dropped",
                      w->b->root, what);
    else
        rouse_err_set(eb, ROUSE_EIO, "blob upload into %s failed while %s: %s", w->b->root, what,
                      strerror(err));
    return fail(w, ROUSE_EIO);
}

int blob_write_begin(blobstore *b, uint64_t max_bytes, blob_writer **out, rouse_errbuf *eb)
{
    *out = NULL;
    blob_writer *w = calloc(1, sizeof(*w));
    if (!w) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory starting a blob upload");
    w->b = b;
    w->max_bytes = max_bytes;
    int rc = rouse_sha256_init(&w->hash);
    if (rc < 0) {
        rouse_err_set(eb, rc, "cannot start hashing a blob upload");
        goto out_free;
    }
    if (b->use_tmpfile) {
        w->fd = openat(b->tmp_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    } else {
        /* mkstemp wants a path; build it under tmp/ through the root. */
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/tmp/upload-XXXXXX", b->root) >= (int)sizeof(path)) {
            rc = rouse_err_set(eb, ROUSE_ERANGE, "blob directory path is too long: %s", b->root);
            goto out_hash;
        }
        w->fd = mkostemp(path, O_CLOEXEC);
        if (w->fd >= 0) snprintf(w->tmp_name, sizeof(w->tmp_name), "%s", strrchr(path, '/') + 1);
    }
    if (w->fd < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "cannot create a temporary file in %s/tmp: %s", b->root,
                           strerror(errno));
        goto out_hash;
    }
    *out = w;
    return 0;

out_hash:
    rouse_sha256_fini(&w->hash);
out_free:
    free(w);
    return rc;
}

/* write(2) until everything is written; 0 or an errno value. */
static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len < WRITE_CHUNK ? len : WRITE_CHUNK);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) return EIO; /* no progress on a regular file: treat as an I/O error */
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int blob_write(blob_writer *w, const void *data, size_t len, rouse_errbuf *eb)
{
    if (w->failed)
        return rouse_err_set(eb, ROUSE_ESTATE, "this blob upload already failed (%s)",
                             rouse_strerror(w->failed));
    if (len == 0) return 0;
    if (len > w->max_bytes - w->size) {
        rouse_err_set(eb, ROUSE_ETOOBIG, "the blob is larger than the limit of %llu bytes",
                      (unsigned long long)w->max_bytes);
        return fail(w, ROUSE_ETOOBIG);
    }
    int rc = rouse_sha256_update(&w->hash, data, len);
    if (rc < 0) {
        rouse_err_set(eb, rc, "cannot hash the blob upload");
        return fail(w, rc);
    }
    int err = write_all(w->fd, data, len);
    if (err) return io_fail(w, eb, "writing", err);
    w->size += len;
    return 0;
}

/* Opens (creating if needed) sha256/<xx> and returns its fd. */
static int open_fanout(blob_writer *w, const char *xx, int *out, rouse_errbuf *eb)
{
    blobstore *b = w->b;
    if (mkdirat(b->sha_fd, xx, 0700) == 0) {
        int rc = store_fs_fsync_dirat(b->sha_fd, ".");
        if (rc < 0) return io_fail(w, eb, "syncing the directory of", -rc);
    } else if (errno != EEXIST) {
        return io_fail(w, eb, "creating the directory of", errno);
    }
    *out = openat(b->sha_fd, xx, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*out < 0) return io_fail(w, eb, "opening the directory of", errno);
    return 0;
}

/* Gives the temporary file its final name in dir_fd. 0, or an errno value.
 * EEXIST means the same blob was committed concurrently: that is success. */
static int link_into_place(blob_writer *w, int dir_fd, const char *name)
{
    if (w->tmp_name[0]) {
        if (renameat(w->b->tmp_fd, w->tmp_name, dir_fd, name) < 0) return errno;
        w->tmp_name[0] = '\0';
        return 0;
    }
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", w->fd);
    if (linkat(AT_FDCWD, proc, dir_fd, name, AT_SYMLINK_FOLLOW) < 0)
        return errno == EEXIST ? 0 : errno;
    return 0;
}

void blob_write_abort(blob_writer *w)
{
    if (!w) return;
    drop_temp(w);
    rouse_sha256_fini(&w->hash);
    free(w);
}

int blob_write_commit(blob_writer *w, char *digest, uint64_t *size, rouse_errbuf *eb)
{
    return blob_write_commit_expect(w, NULL, digest, size, eb);
}

int blob_write_commit_expect(blob_writer *w, const char *expect, char *digest, uint64_t *size,
                             rouse_errbuf *eb)
{
    int rc;
    if (w->failed) {
        rc = rouse_err_set(eb, ROUSE_ESTATE, "this blob upload already failed (%s)",
                           rouse_strerror(w->failed));
        goto out_abort;
    }
    uint8_t sum[ROUSE_SHA256_LEN];
    char hex[ROUSE_SHA256_HEX_LEN + 1];
    if ((rc = rouse_sha256_final(&w->hash, sum)) < 0) {
        rouse_err_set(eb, rc, "cannot finish hashing a blob upload");
        goto out_abort;
    }
    rouse_sha256_hex(sum, hex);
    if (expect && (!blob_digest_valid(expect) || strcmp(expect + DIGEST_PREFIX_LEN, hex) != 0)) {
        /* Never named: the temporary file goes with the writer. */
        rc = rouse_err_set(eb, ROUSE_EMISMATCH,
                           "the body's sha256 is " DIGEST_PREFIX "%s, not %.80s: refused", hex,
                           expect);
        goto out_abort;
    }

    char xx[3] = {hex[0], hex[1], '\0'};
    const char *rest = hex + 2;
    int dir_fd = -1;
    if ((rc = open_fanout(w, xx, &dir_fd, eb)) < 0) goto out_abort;

    struct stat st;
    if (fstatat(dir_fd, rest, &st, 0) == 0) {
        /* Already stored: its name proves its content, the upload is redundant.
         * Its time restarts, so that a grace period before removal counts
         * from this upload. */
        utimensat(dir_fd, rest, NULL, 0);
        close(dir_fd);
        goto out_done;
    }
    /* Data first, then the name: a blob must never be visible before its bytes
     * are durable. */
    if (fchmod(w->fd, 0400) < 0) {
        rc = io_fail(w, eb, "setting the mode of", errno);
        goto out_close_dir;
    }
    if (fsync(w->fd) < 0) {
        rc = io_fail(w, eb, "syncing", errno);
        goto out_close_dir;
    }
    int err = link_into_place(w, dir_fd, rest);
    if (err) {
        rc = io_fail(w, eb, "naming", err);
        goto out_close_dir;
    }
    if (fsync(dir_fd) < 0) {
        rc = io_fail(w, eb, "syncing the directory of", errno);
        goto out_close_dir;
    }
    close(dir_fd);

out_done:
    snprintf(digest, BLOB_DIGEST_LEN + 1, DIGEST_PREFIX "%s", hex);
    if (size) *size = w->size;
    blob_write_abort(w); /* drops the temporary name or descriptor, frees w */
    return 0;

out_close_dir:
    close(dir_fd);
out_abort:
    blob_write_abort(w);
    return rc;
}

/* Relative path "<xx>/<62 hex>" of a valid digest under sha256/. */
static void rel_path(const char *digest, char out[ROUSE_SHA256_HEX_LEN + 2])
{
    const char *hex = digest + DIGEST_PREFIX_LEN;
    out[0] = hex[0];
    out[1] = hex[1];
    out[2] = '/';
    memcpy(out + 3, hex + 2, ROUSE_SHA256_HEX_LEN - 2);
    out[ROUSE_SHA256_HEX_LEN + 1] = '\0';
}

int blob_stat(blobstore *b, const char *digest, uint64_t *size)
{
    if (!blob_digest_valid(digest)) return ROUSE_EINVAL;
    char rel[ROUSE_SHA256_HEX_LEN + 2];
    rel_path(digest, rel);
    struct stat st;
    if (fstatat(b->sha_fd, rel, &st, 0) < 0) return errno == ENOENT ? ROUSE_ENOTFOUND : ROUSE_EIO;
    if (!S_ISREG(st.st_mode)) return ROUSE_EIO;
    if (size) *size = (uint64_t)st.st_size;
    return 0;
}

int blob_path(blobstore *b, const char *digest, char *path, size_t path_len)
{
    if (!blob_digest_valid(digest)) return ROUSE_EINVAL;
    char rel[ROUSE_SHA256_HEX_LEN + 2];
    rel_path(digest, rel);
    int n = snprintf(path, path_len, "%s/sha256/%s", b->root, rel);
    if (n < 0 || (size_t)n >= path_len) return ROUSE_ERANGE;
    return 0;
}

int blob_remove(blobstore *b, const char *digest, rouse_errbuf *eb)
{
    if (!blob_digest_valid(digest))
        return rouse_err_set(eb, ROUSE_EINVAL, "'%.80s' is not a blob digest", digest);
    char rel[ROUSE_SHA256_HEX_LEN + 2];
    rel_path(digest, rel);
    if (unlinkat(b->sha_fd, rel, 0) == 0) return 0;
    if (errno == ENOENT) return rouse_err_set(eb, ROUSE_ENOTFOUND, "no blob %s", digest);
    return rouse_err_set(eb, ROUSE_EIO, "cannot remove blob %s: %s", digest, strerror(errno));
}

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return s[n] == '\0';
}

int blob_each(blobstore *b, int (*fn)(void *user, const char *digest, int64_t uploaded_ms),
              void *user, rouse_errbuf *eb)
{
    int fd = openat(b->sha_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *top = fd >= 0 ? fdopendir(fd) : NULL;
    if (!top) {
        if (fd >= 0) close(fd);
        return rouse_err_set(eb, ROUSE_EIO, "cannot read %s/sha256: %s", b->root, strerror(errno));
    }
    int stop = 0;
    struct dirent *e;
    while (!stop && (e = readdir(top)) != NULL) {
        if (!all_hex(e->d_name, 2)) continue;
        int sub_fd = openat(b->sha_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *sub = sub_fd >= 0 ? fdopendir(sub_fd) : NULL;
        if (!sub) {
            if (sub_fd >= 0) close(sub_fd);
            continue;
        }
        struct dirent *f;
        while (!stop && (f = readdir(sub)) != NULL) {
            if (!all_hex(f->d_name, ROUSE_SHA256_HEX_LEN - 2)) continue;
            struct stat st;
            if (fstatat(dirfd(sub), f->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode)) continue;
            char digest[BLOB_DIGEST_LEN + 1];
            memcpy(digest, DIGEST_PREFIX, DIGEST_PREFIX_LEN);
            memcpy(digest + DIGEST_PREFIX_LEN, e->d_name, 2);
            memcpy(digest + DIGEST_PREFIX_LEN + 2, f->d_name, ROUSE_SHA256_HEX_LEN - 2 + 1);
            int64_t ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
            stop = fn(user, digest, ms);
        }
        closedir(sub);
    }
    closedir(top);
    return 0;
}
