/*
 * Content-addressed blob store: blobs/sha256/<2 hex>/<62 hex> under the data
 * directory. Uploads stream into a temporary file while being hashed; commit
 * fsyncs the file, renames it into place and fsyncs the directory, so a blob
 * whose digest was returned survives kill -9. Writing a blob that already
 * exists is a no-op that returns the same digest (and counts as a fresh
 * upload for blob_each's time, so a grace period restarts).
 */
#ifndef ROUSE_STORE_BLOB_H
#define ROUSE_STORE_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "rouse/err.h"

#define BLOB_DIGEST_LEN 71 /* "sha256:" + 64 lower-case hex */

typedef struct blobstore blobstore;
typedef struct blob_writer blob_writer;

/* Opens the blob store of data_dir and removes the temporary files that
 * unfinished uploads of an earlier process left: for the directory's owner,
 * once, at its start. */
int blob_open(const char *data_dir, blobstore **out, rouse_errbuf *eb);
/* Opens it again beside its owner (a result or a batch output written on
 * the writer thread while uploads run): leaves temporary files alone. */
int blob_open_shared(const char *data_dir, blobstore **out, rouse_errbuf *eb);
void blob_close(blobstore *b);

/* True for "sha256:<64 lower-case hex>". */
int blob_digest_valid(const char *digest);

/* Starts an upload of at most max_bytes (ROUSE_ETOOBIG past it). */
int blob_write_begin(blobstore *b, uint64_t max_bytes, blob_writer **out, rouse_errbuf *eb);
/* Appends to the upload. On failure (ROUSE_ETOOBIG, ROUSE_EIO for a full disk
 * or an I/O error) the temporary file is already removed and the writer
 * refuses further use (ROUSE_ESTATE); it must still be freed with
 * blob_write_abort. */
int blob_write(blob_writer *w, const void *data, size_t len, rouse_errbuf *eb);
/* Makes the blob durable; digest is "sha256:<hex>" (BLOB_DIGEST_LEN + 1 bytes).
 * Frees w, also when it fails. */
int blob_write_commit(blob_writer *w, char *digest, uint64_t *size, rouse_errbuf *eb);
/* blob_write_commit for bytes that must be blob `expect` (a fetch by
 * digest): when their sha256 differs, nothing is stored (the temporary
 * file is removed) and the error, ROUSE_EMISMATCH, names both digests. */
int blob_write_commit_expect(blob_writer *w, const char *expect, char *digest, uint64_t *size,
                             rouse_errbuf *eb);
/* Drops an unfinished upload and its temporary file. Frees w; NULL is a no-op. */
void blob_write_abort(blob_writer *w);

/* 0 and the size, ROUSE_ENOTFOUND, or ROUSE_EINVAL for a malformed digest. */
int blob_stat(blobstore *b, const char *digest, uint64_t *size);
/* Calls fn for every stored blob with its digest and the time it was last
 * uploaded (ms since the epoch); stops when fn returns nonzero. */
int blob_each(blobstore *b, int (*fn)(void *user, const char *digest, int64_t uploaded_ms),
              void *user, rouse_errbuf *eb);
/* Removes a blob: 0, ROUSE_ENOTFOUND, ROUSE_EINVAL (malformed digest) or
 * ROUSE_EIO. Whether anything still refers to it is the caller's check
 * (store_blob_refs_tx). */
int blob_remove(blobstore *b, const char *digest, rouse_errbuf *eb);

/* The file path of a blob into path[path_len]. */
int blob_path(blobstore *b, const char *digest, char *path, size_t path_len);

#endif
