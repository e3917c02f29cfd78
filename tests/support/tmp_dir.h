/* Where tests put temporary files and directories: $TMPDIR, or /tmp when it
 * is unset or empty, as mkstemp(3) users expect. */
#ifndef ROUSE_TESTS_SUPPORT_TMP_DIR_H
#define ROUSE_TESTS_SUPPORT_TMP_DIR_H

#include <stdlib.h>

static inline const char *test_tmp_dir(void)
{
    const char *d = getenv("TMPDIR");
    return d && *d ? d : "/tmp";
}

#endif
