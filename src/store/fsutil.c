/*
 * File-system helpers for the registry and the blob store. A directory entry
 * is durable only once its parent directory has been fsynced, so every
 * directory created here is followed by an fsync of its parent.
 */
#include "store/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int store_fs_fsync_dirat(int dirfd, const char *path)
{
    int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = 0;
    if (fsync(fd) < 0) rc = -errno;
    close(fd);
    return rc;
}

/* mkdir of one component; 1 when it was created, 0 when it existed. */
static int mkdir_one(const char *path, rouse_errbuf *eb)
{
    if (mkdir(path, 0700) == 0) return 1;
    int err = errno;
    struct stat st;
    if (err == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    if (err == EEXIST)
        return rouse_err_set(eb, ROUSE_EIO,
                             "cannot create directory %s: it exists and is not a "
                             "directory",
                             path);
    return rouse_err_set(eb, ROUSE_EIO, "cannot create directory %s: %s", path, strerror(err));
}

static int sync_parent(char *path, size_t end, rouse_errbuf *eb)
{
    /* path[0..end) is the created directory; its parent is what to sync. */
    size_t cut = end;
    while (cut > 0 && path[cut - 1] != '/')
        cut--;
    char saved = path[cut];
    const char *parent = ".";
    if (cut > 0) {
        path[cut] = '\0';
        parent = path;
    }
    int rc = store_fs_fsync_dirat(AT_FDCWD, parent);
    if (rc < 0) rouse_err_set(eb, ROUSE_EIO, "cannot sync directory %s: %s", parent, strerror(-rc));
    path[cut] = saved;
    return rc < 0 ? ROUSE_EIO : 0;
}

int store_fs_mkdirs(const char *path, rouse_errbuf *eb)
{
    size_t len = strlen(path);
    if (len == 0) return rouse_err_set(eb, ROUSE_EINVAL, "the data directory path is empty");
    if (len >= PATH_MAX)
        return rouse_err_set(eb, ROUSE_ERANGE, "path is longer than %d bytes: %.80s...",
                             PATH_MAX - 1, path);
    char buf[PATH_MAX];
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    /* Walk the components left to right; the root and "." always exist. */
    for (size_t i = 1; i <= len; i++) {
        if (i < len && buf[i] != '/') continue;
        if (buf[i - 1] == '/') continue; /* "a//b" */
        char saved = buf[i];
        buf[i] = '\0';
        int rc = mkdir_one(buf, eb);
        if (rc == 1) rc = sync_parent(buf, i, eb);
        buf[i] = saved;
        if (rc < 0) return rc;
    }
    return 0;
}
