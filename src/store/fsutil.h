/*
 * Private file-system helpers of the store module: creating the data
 * directory tree durably and syncing directories. Not part of the module
 * interface (store.h, blob.h).
 */
#ifndef ROUSE_STORE_FSUTIL_H
#define ROUSE_STORE_FSUTIL_H

#include "rouse/err.h"

/* Creates path and its missing parents (mode 0700); each directory that it
 * creates is made durable by syncing its parent. 0 or ROUSE_EIO with the
 * errno text and the path in eb. */
int store_fs_mkdirs(const char *path, rouse_errbuf *eb);

/* fsync of an open directory (or of the directory at path relative to
 * dirfd): makes the entries created in it durable. Returns 0 or -errno. */
int store_fs_fsync_dirat(int dirfd, const char *path);

#endif
