/* Durability under kill -9: a child process deploys versions and writes
 * blobs, acknowledging each call that returned 0 over a pipe; the parent
 * kills it with SIGKILL at a varying point (often in the middle of a write),
 * reopens the data directory, and checks that everything acknowledged is
 * there, intact, and that no temporary upload survived. 20 rounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/sha256.h"
#include "store/blob.h"
#include "store/store.h"
#include "testdir.h"

#define ROUNDS 20
#define MAX_OPS 2000
#define FUNCTION "durable"

/* The blob of step i: a few KiB of bytes derived from i. */
static size_t blob_data(int i, uint8_t *buf, size_t cap)
{
    size_t n = 1000 + (size_t)i * 389 % 7000;
    if (n > cap) abort();
    uint64_t x = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
    for (size_t k = 0; k < n; k++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        buf[k] = (uint8_t)(x >> 56);
    }
    return n;
}

static void digest_of(const uint8_t *data, size_t len, char out[BLOB_DIGEST_LEN + 1])
{
    uint8_t d[ROUSE_SHA256_LEN];
    char hex[ROUSE_SHA256_HEX_LEN + 1];
    rouse_sha256_digest(data, len, d);
    rouse_sha256_hex(d, hex);
    snprintf(out, BLOB_DIGEST_LEN + 1, "sha256:%s", hex);
}

static void ack(int fd, const char *line)
{
    size_t len = strlen(line);
    while (len > 0) {
        ssize_t n = write(fd, line, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) _exit(3);
        line += n;
        len -= (size_t)n;
    }
}

/* The child: writes until it is killed. Never returns. */
static void child(const char *dir, int fd)
{
    store *s;
    blobstore *b;
    rouse_errbuf eb = {0};
    char line[256];
    if (store_open(dir, &s, &eb) < 0 || blob_open(dir, &b, &eb) < 0) {
        snprintf(line, sizeof(line), "E open: %.200s\n", eb.msg);
        ack(fd, line);
        _exit(1);
    }
    static uint8_t buf[8192];
    for (int i = 1; i <= MAX_OPS; i++) {
        size_t n = blob_data(i, buf, sizeof(buf));
        blob_writer *w;
        char digest[BLOB_DIGEST_LEN + 1];
        int rc = blob_write_begin(b, n, &w, &eb);
        /* Uneven pieces, so the kill can land between writes of one upload. */
        for (size_t off = 0; rc == 0 && off < n; off += 777)
            rc = blob_write(w, buf + off, n - off < 777 ? n - off : 777, &eb);
        if (rc == 0)
            rc = blob_write_commit(w, digest, NULL, &eb);
        else
            blob_write_abort(w);
        if (rc < 0) {
            snprintf(line, sizeof(line), "E blob %d: %.200s\n", i, eb.msg);
            ack(fd, line);
            _exit(1);
        }
        snprintf(line, sizeof(line), "B %d %s\n", i, digest);
        ack(fd, line);

        char config[64];
        snprintf(config, sizeof(config), "{\"step\":%d}", i);
        int64_t v;
        bool created;
        if (store_deploy(s, FUNCTION, digest, config, &v, &created, &eb) < 0 || !created) {
            snprintf(line, sizeof(line), "E deploy %d: %.200s\n", i, eb.msg);
            ack(fd, line);
            _exit(1);
        }
        snprintf(line, sizeof(line), "D %d %lld\n", i, (long long)v);
        ack(fd, line);
    }
    ack(fd, "END\n");
    _exit(0);
}

typedef struct acked {
    int n_blobs, n_deploys;
    char digests[MAX_OPS + 1][BLOB_DIGEST_LEN + 1]; /* by step */
    int64_t versions[MAX_OPS + 1];                  /* by step */
} acked;

/* Records one acknowledgement line in a; fails the test on an error line. */
static void parse_line(const char *line, acked *a)
{
    int i;
    long long v;
    char digest[BLOB_DIGEST_LEN + 2];
    if (sscanf(line, "B %d %72s", &i, digest) == 2) {
        assert_in_range(i, 1, MAX_OPS);
        assert_int_equal(strlen(digest), BLOB_DIGEST_LEN);
        memcpy(a->digests[i], digest, BLOB_DIGEST_LEN + 1);
        a->n_blobs = i;
    } else if (sscanf(line, "D %d %lld", &i, &v) == 2) {
        assert_in_range(i, 1, MAX_OPS);
        a->versions[i] = v;
        a->n_deploys = i;
    } else if (strcmp(line, "END") != 0) {
        fail_msg("child reported: %s", line);
    }
}

/* Reads acknowledgements until `until` of them arrived (0: until EOF). */
static int read_acks(int fd, acked *a, int until, char *pending, size_t *pending_len)
{
    int count = a->n_blobs + a->n_deploys;
    while (until == 0 || count < until) {
        char chunk[512];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (ssize_t k = 0; k < n; k++) {
            if (chunk[k] != '\n') {
                assert_true(*pending_len < 255);
                pending[(*pending_len)++] = chunk[k];
                continue;
            }
            pending[*pending_len] = '\0';
            parse_line(pending, a);
            *pending_len = 0;
        }
        count = a->n_blobs + a->n_deploys;
    }
    return count;
}

static void verify(const char *dir, const acked *a)
{
    rouse_errbuf eb = {0};
    store *s;
    blobstore *b;
    assert_int_equal(store_open(dir, &s, &eb), 0);
    assert_int_equal(blob_open(dir, &b, &eb), 0);

    static uint8_t buf[8192];
    for (int i = 1; i <= a->n_blobs; i++) {
        size_t n = blob_data(i, buf, sizeof(buf));
        char want[BLOB_DIGEST_LEN + 1];
        digest_of(buf, n, want);
        assert_string_equal(a->digests[i], want);
        /* The file is there, complete, and its bytes hash to its name. */
        char path[512];
        assert_int_equal(blob_path(b, want, path, sizeof(path)), 0);
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        static uint8_t back[8193];
        size_t got = fread(back, 1, sizeof(back), fp);
        fclose(fp);
        assert_int_equal(got, n);
        char have[BLOB_DIGEST_LEN + 1];
        digest_of(back, got, have);
        assert_string_equal(have, want);
    }
    for (int i = 1; i <= a->n_deploys; i++) {
        store_version v;
        int rc = store_version_get(s, FUNCTION, a->versions[i], &v, &eb);
        if (rc != 0)
            fail_msg("acknowledged version %lld lost: %s", (long long)a->versions[i], eb.msg);
        char config[64];
        snprintf(config, sizeof(config), "{\"step\":%d}", i);
        assert_string_equal(v.config_json, config);
        assert_string_equal(v.model_digest, a->digests[i]);
        free(v.config_json);
    }
    if (a->n_deploys > 0) {
        /* "latest" is the last acknowledged version or one that followed it. */
        int64_t latest;
        assert_int_equal(store_resolve(s, FUNCTION, NULL, 0.5, &latest, &eb), 0);
        assert_in_range(latest, a->versions[a->n_deploys], a->versions[a->n_deploys] + 1);
    }
    /* No temporary upload outlives blob_open. */
    char tmp[400];
    snprintf(tmp, sizeof(tmp), "%s/blobs/tmp", dir);
    assert_int_equal(testdir_count(tmp), 0);
    blob_close(b);
    store_close(s);
}

static void kill9_keeps_acknowledged_writes(void **state)
{
    (void)state;
    uint64_t rng = 0x5DEECE66DULL;
    static acked a;
    int total_acks = 0;
    for (int round = 0; round < ROUNDS; round++) {
        char dir[256];
        testdir_make(dir, sizeof(dir));
        memset(&a, 0, sizeof(a));
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child(dir, fds[1]);
        }
        close(fds[1]);

        /* Kill after a varying number of acknowledgements plus a varying
         * delay of up to 3 ms, so that the kill often lands inside a write. */
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int target = 1 + (int)((rng >> 33) % 40);
        int delay_us = (int)((rng >> 20) % 3000);
        char pending[256];
        size_t pending_len = 0;
        read_acks(fds[0], &a, target, pending, &pending_len);
        struct timespec ts = {0, delay_us * 1000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        /* Acknowledgements written before the kill still count. */
        total_acks += read_acks(fds[0], &a, 0, pending, &pending_len);
        close(fds[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        verify(dir, &a);
        testdir_remove(dir);
    }
    print_message("%d rounds, %d acknowledged writes verified after SIGKILL\n", ROUNDS, total_acks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill9_keeps_acknowledged_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
