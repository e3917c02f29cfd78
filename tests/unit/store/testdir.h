/* Temporary data directories for the store tests: created under $TMPDIR
 * (or /tmp) and removed with everything in them. */
#ifndef ROUSE_TESTS_STORE_TESTDIR_H
#define ROUSE_TESTS_STORE_TESTDIR_H

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline void testdir_make(char *out, size_t len)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    snprintf(out, len, "%s/rouse-store-XXXXXX", base);
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        abort();
    }
}

static inline int testdir_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void testdir_remove(const char *path)
{
    nftw(path, testdir_rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* Number of entries (not "." or "..") in a directory; -1 if it cannot be read. */
static inline int testdir_count(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

/* Number of regular files below a directory, recursively. */
static inline int testdir_count_files(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char sub[4096];
        if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub)) continue;
        struct stat st;
        if (lstat(sub, &st) != 0) continue;
        if (S_ISDIR(st.st_mode))
            n += testdir_count_files(sub);
        else
            n++;
    }
    closedir(d);
    return n;
}

#endif
