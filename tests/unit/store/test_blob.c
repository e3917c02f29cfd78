/* The blob store: streamed writes hash to the right digest, re-uploads are
 * idempotent, limits and aborts leave no temporary files, digests are checked
 * strictly, and a full disk (a 1 MiB tmpfs) fails cleanly. Each upload test
 * runs with O_TMPFILE and with the named-temporary fallback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "common/sha256.h"
#include "store/blob.h"
#include "store/blob_int.h"
#include "testdir.h"

typedef struct fixture {
    char dir[256];
    unsigned flags;
    blobstore *b;
} fixture;

static int setup_flags(void **state, unsigned flags)
{
    fixture *f = calloc(1, sizeof(*f));
    testdir_make(f->dir, sizeof(f->dir));
    f->flags = flags;
    rouse_errbuf eb = {0};
    if (blob_open_flags(f->dir, flags, &f->b, &eb) != 0) {
        fprintf(stderr, "blob_open: %s\n", eb.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup_tmpfile(void **state)
{
    return setup_flags(state, 0);
}

static int setup_named(void **state)
{
    return setup_flags(state, BLOB_OPEN_NO_TMPFILE);
}

static int teardown(void **state)
{
    fixture *f = *state;
    blob_close(f->b);
    testdir_remove(f->dir);
    free(f);
    return 0;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (uint8_t)(seed >> 56);
    }
}

static void expected_digest(const void *data, size_t len, char out[BLOB_DIGEST_LEN + 1])
{
    uint8_t d[ROUSE_SHA256_LEN];
    char hex[ROUSE_SHA256_HEX_LEN + 1];
    assert_int_equal(rouse_sha256_digest(data, len, d), 0);
    rouse_sha256_hex(d, hex);
    snprintf(out, BLOB_DIGEST_LEN + 1, "sha256:%s", hex);
}

static int tmp_count(const fixture *f)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/blobs/tmp", f->dir);
    return testdir_count(path);
}

static int blob_count(const fixture *f)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/blobs/sha256", f->dir);
    return testdir_count_files(path);
}

/* Uploads data in one call; returns the blob_write/commit result. */
static int upload(blobstore *b, const void *data, size_t len, uint64_t max, char *digest,
                  rouse_errbuf *eb)
{
    blob_writer *w;
    int rc = blob_write_begin(b, max, &w, eb);
    if (rc < 0) return rc;
    if ((rc = blob_write(w, data, len, eb)) < 0) {
        blob_write_abort(w);
        return rc;
    }
    uint64_t size = 0;
    rc = blob_write_commit(w, digest, &size, eb);
    if (rc == 0) assert_int_equal(size, len);
    return rc;
}

static void streamed_uneven_chunks(void **state)
{
    fixture *f = *state;
    size_t len = 3 * 1024 * 1024 + 12345;
    uint8_t *data = malloc(len);
    fill(data, len, 42);
    char want[BLOB_DIGEST_LEN + 1];
    expected_digest(data, len, want);

    rouse_errbuf eb = {0};
    blob_writer *w;
    assert_int_equal(blob_write_begin(f->b, len, &w, &eb), 0);
    static const size_t chunks[] = {1, 7, 4096, 65537, 3, 1 << 20, 999, 0, 131071};
    size_t off = 0;
    for (int i = 0; off < len; i++) {
        size_t n = chunks[i % (sizeof(chunks) / sizeof(chunks[0]))];
        if (n > len - off) n = len - off;
        assert_int_equal(blob_write(w, data + off, n, &eb), 0);
        off += n;
    }
    char digest[BLOB_DIGEST_LEN + 1];
    uint64_t size = 0;
    assert_int_equal(blob_write_commit(w, digest, &size, &eb), 0);
    assert_string_equal(digest, want);
    assert_int_equal(size, len);
    assert_true(blob_digest_valid(digest));

    uint64_t st_size = 0;
    assert_int_equal(blob_stat(f->b, digest, &st_size), 0);
    assert_int_equal(st_size, len);
    char path[512];
    assert_int_equal(blob_path(f->b, digest, path, sizeof(path)), 0);
    char want_path[512];
    snprintf(want_path, sizeof(want_path), "%s/blobs/sha256/%.2s/%s", f->dir, digest + 7,
             digest + 9);
    assert_string_equal(path, want_path);

    /* The file holds exactly the data, and is read-only. */
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    uint8_t *back = malloc(len + 1);
    assert_int_equal(fread(back, 1, len + 1, fp), len);
    fclose(fp);
    assert_memory_equal(back, data, len);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0400);
    assert_int_equal(tmp_count(f), 0);
    free(back);
    free(data);
}

static void idempotent_reupload(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    uint8_t data[5000];
    fill(data, sizeof(data), 7);
    char d1[BLOB_DIGEST_LEN + 1], d2[BLOB_DIGEST_LEN + 1];
    assert_int_equal(upload(f->b, data, sizeof(data), sizeof(data), d1, &eb), 0);
    assert_int_equal(upload(f->b, data, sizeof(data), sizeof(data), d2, &eb), 0);
    assert_string_equal(d1, d2);
    assert_int_equal(blob_count(f), 1);
    assert_int_equal(tmp_count(f), 0);

    /* The empty blob is a blob too. */
    char de[BLOB_DIGEST_LEN + 1];
    assert_int_equal(upload(f->b, "", 0, 0, de, &eb), 0);
    assert_string_equal(de,
                        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    uint64_t size = 99;
    assert_int_equal(blob_stat(f->b, de, &size), 0);
    assert_int_equal(size, 0);
    assert_int_equal(blob_count(f), 2);
}

static void too_big(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    uint8_t data[200];
    fill(data, sizeof(data), 3);
    blob_writer *w;
    assert_int_equal(blob_write_begin(f->b, 100, &w, &eb), 0);
    assert_int_equal(blob_write(w, data, 60, &eb), 0);
    assert_int_equal(blob_write(w, data + 60, 50, &eb), ROUSE_ETOOBIG);
    assert_non_null(strstr(eb.msg, "100 bytes"));
    /* The partial upload is gone at once; the writer only refuses from now on. */
    assert_int_equal(tmp_count(f), 0);
    assert_int_equal(blob_write(w, data, 1, &eb), ROUSE_ESTATE);
    char digest[BLOB_DIGEST_LEN + 1];
    assert_int_equal(blob_write_commit(w, digest, NULL, &eb), ROUSE_ESTATE);
    assert_int_equal(blob_count(f), 0);

    /* Exactly the limit is fine. */
    assert_int_equal(upload(f->b, data, 100, 100, digest, &eb), 0);
    assert_int_equal(upload(f->b, data, 101, 100, digest, &eb), ROUSE_ETOOBIG);
    assert_int_equal(blob_count(f), 1);
    assert_int_equal(tmp_count(f), 0);
}

static void abort_leaves_nothing(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    uint8_t data[10000];
    fill(data, sizeof(data), 5);
    blob_writer *w;
    assert_int_equal(blob_write_begin(f->b, sizeof(data), &w, &eb), 0);
    assert_int_equal(blob_write(w, data, sizeof(data), &eb), 0);
    /* A named temporary is visible while the upload runs; O_TMPFILE is not. */
    assert_int_equal(tmp_count(f), (f->flags & BLOB_OPEN_NO_TMPFILE) ? 1 : 0);
    blob_write_abort(w);
    blob_write_abort(NULL);
    assert_int_equal(tmp_count(f), 0);
    assert_int_equal(blob_count(f), 0);
    char digest[BLOB_DIGEST_LEN + 1];
    expected_digest(data, sizeof(data), digest);
    assert_int_equal(blob_stat(f->b, digest, NULL), ROUSE_ENOTFOUND);
}

/* A fetch by digest: bytes whose sha256 differs are never named. */
static void commit_expect_refuses_other_bytes(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    uint8_t data[5000], other[5000];
    fill(data, sizeof(data), 11);
    fill(other, sizeof(other), 12);
    char want[BLOB_DIGEST_LEN + 1], got[BLOB_DIGEST_LEN + 1], lie[BLOB_DIGEST_LEN + 1];
    expected_digest(data, sizeof(data), want);
    expected_digest(other, sizeof(other), lie);

    blob_writer *w;
    assert_int_equal(blob_write_begin(f->b, sizeof(other), &w, &eb), 0);
    assert_int_equal(blob_write(w, other, sizeof(other), &eb), 0);
    assert_int_equal(blob_write_commit_expect(w, want, got, NULL, &eb), ROUSE_EMISMATCH);
    assert_non_null(strstr(eb.msg, want));
    assert_non_null(strstr(eb.msg, lie));
    assert_int_equal(tmp_count(f), 0);
    assert_int_equal(blob_count(f), 0);
    assert_int_equal(blob_stat(f->b, lie, NULL), ROUSE_ENOTFOUND);

    uint64_t size = 0;
    assert_int_equal(blob_write_begin(f->b, sizeof(data), &w, &eb), 0);
    assert_int_equal(blob_write(w, data, sizeof(data), &eb), 0);
    assert_int_equal(blob_write_commit_expect(w, want, got, &size, &eb), 0);
    assert_string_equal(got, want);
    assert_int_equal(size, sizeof(data));
    assert_int_equal(blob_stat(f->b, want, NULL), 0);
}

static void stale_temps_cleaned_on_open(void **state)
{
    fixture *f = *state;
    char path[400];
    snprintf(path, sizeof(path), "%s/blobs/tmp/upload-crashed", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("half an upload", fp);
    fclose(fp);
    assert_int_equal(tmp_count(f), 1);
    blob_close(f->b);
    rouse_errbuf eb = {0};
    assert_int_equal(blob_open_flags(f->dir, f->flags, &f->b, &eb), 0);
    assert_int_equal(tmp_count(f), 0);
}

/* A second opening beside the owner (the writer thread storing a large
 * result) must not delete an upload that is running. */
static void shared_open_keeps_uploads(void **state)
{
    fixture *f = *state;
    rouse_errbuf eb = {0};
    uint8_t data[5000];
    fill(data, sizeof(data), 9);
    blob_writer *w;
    assert_int_equal(blob_write_begin(f->b, sizeof(data), &w, &eb), 0);
    assert_int_equal(blob_write(w, data, 2000, &eb), 0);
    int during = tmp_count(f);
    blobstore *other;
    assert_int_equal(blob_open_shared(f->dir, &other, &eb), 0);
    blob_close(other);
    assert_int_equal(tmp_count(f), during);
    assert_int_equal(blob_write(w, data + 2000, sizeof(data) - 2000, &eb), 0);
    char digest[BLOB_DIGEST_LEN + 1], want[BLOB_DIGEST_LEN + 1];
    assert_int_equal(blob_write_commit(w, digest, NULL, &eb), 0);
    expected_digest(data, sizeof(data), want);
    assert_string_equal(digest, want);
    assert_int_equal(blob_stat(f->b, digest, NULL), 0);
}

static void malformed_digests(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = {
        "",
        "sha256:",
        "sha256:abc",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
        "sha256:../../../../etc/passwd0000000000000000000000000000000000000000000",
        "sha256:e3/0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        " sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    };
    char path[512];
    uint64_t size;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(blob_digest_valid(bad[i]));
        assert_int_equal(blob_stat(f->b, bad[i], &size), ROUSE_EINVAL);
        assert_int_equal(blob_path(f->b, bad[i], path, sizeof(path)), ROUSE_EINVAL);
    }
    assert_false(blob_digest_valid(NULL));
    assert_int_equal(blob_stat(f->b, NULL, &size), ROUSE_EINVAL);
    const char *absent = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_true(blob_digest_valid(absent));
    assert_int_equal(blob_stat(f->b, absent, &size), ROUSE_ENOTFOUND);
    assert_int_equal(blob_path(f->b, absent, path, sizeof(path)), 0);
    assert_int_equal(blob_path(f->b, absent, path, 20), ROUSE_ERANGE);
}

/* A 1 MiB tmpfs as the data directory: a 2 MiB upload must fail with a
 * clear error, leave neither a temporary nor a blob, and free the space. */
static void disk_full(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        char dir[256];
        testdir_make(dir, sizeof(dir));
        if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") != 0) {
            int err = errno;
            testdir_remove(dir);
            print_message("[  SKIPPED ] disk_full: cannot mount a tmpfs (%s); needs root\n",
                          strerror(err));
            skip();
        }
        blobstore *b;
        rouse_errbuf eb = {0};
        unsigned flags = mode ? BLOB_OPEN_NO_TMPFILE : 0;
        assert_int_equal(blob_open_flags(dir, flags, &b, &eb), 0);

        size_t chunk = 64 * 1024, len = 2 * 1024 * 1024;
        uint8_t *data = malloc(chunk);
        fill(data, chunk, 11);
        blob_writer *w;
        assert_int_equal(blob_write_begin(b, len, &w, &eb), 0);
        int rc = 0;
        for (size_t off = 0; off < len && rc == 0; off += chunk)
            rc = blob_write(w, data, chunk, &eb);
        assert_int_equal(rc, ROUSE_EIO);
        assert_non_null(strstr(eb.msg, "no space left"));
        char digest[BLOB_DIGEST_LEN + 1];
        assert_int_equal(blob_write_commit(w, digest, NULL, &eb), ROUSE_ESTATE);

        char sub[400];
        snprintf(sub, sizeof(sub), "%s/blobs/tmp", dir);
        assert_int_equal(testdir_count(sub), 0);
        snprintf(sub, sizeof(sub), "%s/blobs/sha256", dir);
        assert_int_equal(testdir_count_files(sub), 0);

        /* The space came back: a small blob still fits. */
        assert_int_equal(upload(b, data, chunk, chunk, digest, &eb), 0);
        assert_int_equal(testdir_count_files(sub), 1);

        blob_close(b);
        free(data);
        assert_int_equal(umount(dir), 0);
        testdir_remove(dir);
    }
}

static void open_errors(void **state)
{
    (void)state;
    blobstore *b;
    rouse_errbuf eb = {0};
    assert_int_equal(blob_open("", &b, &eb), ROUSE_EINVAL);
    assert_null(b);
    char dir[256], file[300];
    testdir_make(dir, sizeof(dir));
    snprintf(file, sizeof(file), "%s/blobs", dir);
    FILE *fp = fopen(file, "w"); /* "blobs" is a file, not a directory */
    fclose(fp);
    assert_int_equal(blob_open(dir, &b, &eb), ROUSE_EIO);
    assert_non_null(strstr(eb.msg, "blobs"));
    testdir_remove(dir);
}

#define BOTH_MODES(t)                                                                              \
    cmocka_unit_test_setup_teardown(t, setup_tmpfile, teardown),                                   \
        cmocka_unit_test_setup_teardown(t, setup_named, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH_MODES(streamed_uneven_chunks),
        BOTH_MODES(idempotent_reupload),
        BOTH_MODES(too_big),
        BOTH_MODES(abort_leaves_nothing),
        BOTH_MODES(commit_expect_refuses_other_bytes),
        BOTH_MODES(stale_temps_cleaned_on_open),
        BOTH_MODES(shared_open_keeps_uploads),
        cmocka_unit_test_setup_teardown(malformed_digests, setup_tmpfile, teardown),
        cmocka_unit_test(open_errors),
        cmocka_unit_test(disk_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
