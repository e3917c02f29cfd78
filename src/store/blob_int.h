/*
 * Private parts of the blob store, for its own tests: opening with the
 * O_TMPFILE path disabled so that the named-temporary-file fallback (used on
 * file systems without O_TMPFILE) is exercised too.
 */
#ifndef ROUSE_STORE_BLOB_INT_H
#define ROUSE_STORE_BLOB_INT_H

#include "store/blob.h"

#define BLOB_OPEN_NO_TMPFILE 1u /* always use mkstemp + rename */
#define BLOB_OPEN_KEEP_TMP 2u   /* leave the temporary files of uploads alone */

/* blob_open with BLOB_OPEN_* flags. */
int blob_open_flags(const char *data_dir, unsigned flags, blobstore **out, rouse_errbuf *eb);

#endif
