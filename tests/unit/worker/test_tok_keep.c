/*
 * Kept tokenizers (worker/tok_keep.h), on the fortunes example's GPT-2
 * files: a kept tokenizer encodes as one read from the files; a process
 * forked after the keep takes its inherited copy without reading the files
 * (overwritten there first); taking it leaves the keep empty, so the next
 * take reads the files; a file changed since the keep is read again; files
 * that do not load are not kept and say why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "worker/tok_keep.h"
#include "tmp_dir.h"

static char dir[256], vocab[320], merges[320];
static const char text[] = "The fortune you seek is in another cookie.";

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s/rouse-tok-keep-XXXXXX", test_tmp_dir());
    if (!mkdtemp(dir)) return -1;
    snprintf(vocab, sizeof(vocab), "%s/vocab.json", dir);
    snprintf(merges, sizeof(merges), "%s/merges.txt", dir);
    copy_file(ROUSE_FORTUNES "/vocab.json", vocab);
    copy_file(ROUSE_FORTUNES "/merges.txt", merges);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(vocab);
    unlink(merges);
    rmdir(dir);
    return 0;
}

/* The ids of text under t, owned. */
static int32_t *encode(const tok_tokenizer *t, size_t *n)
{
    int32_t *ids = NULL;
    rouse_errbuf eb;
    assert_int_equal(tok_encode(t, text, strlen(text), &ids, n, &eb), 0);
    return ids;
}

static void test_keep_take(void **state)
{
    (void)state;
    worker_tok_paths p = {.vocab = vocab, .merges = merges};
    rouse_errbuf eb;
    tok_tokenizer *ref = NULL, *t = NULL;
    assert_int_equal(worker_tok_load(&p, &ref, &eb), 0);
    size_t n_ref, n;
    int32_t *want = encode(ref, &n_ref);
    assert_true(n_ref > 0);

    assert_int_equal(worker_tok_keep(&p, &eb), 1);
    assert_int_equal(worker_tok_keep(&p, &eb), 0); /* kept already */

    /* A child takes its inherited copy: there the vocabulary's bytes are
     * overwritten (same size, inode and modification time), so a read of
     * the files would not parse. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct stat st;
        int ok = stat(vocab, &st) == 0;
        FILE *f = ok ? fopen(vocab, "r+b") : NULL;
        for (off_t i = 0; f && i < st.st_size; i++)
            fputc('x', f);
        ok = ok && f && fclose(f) == 0;
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        ok = ok && utimensat(AT_FDCWD, vocab, times, 0) == 0;
        tok_tokenizer *c = NULL;
        rouse_errbuf ceb;
        ok = ok && worker_tok_load(&p, &c, &ceb) < 0;
        ok = ok && worker_tok_take(&p, &c, &ceb) == 0 && c;
        size_t cn = 0;
        int32_t *got = NULL;
        ok = ok && tok_encode(c, text, strlen(text), &got, &cn, &ceb) == 0 && cn == n_ref &&
             memcmp(got, want, n_ref * sizeof(*got)) == 0;
        free(got);
        tok_free(c);
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    copy_file(ROUSE_FORTUNES "/vocab.json", vocab); /* a new modification time */
    assert_int_equal(worker_tok_keep(&p, &eb), 1);  /* so read and kept again */

    /* Here: taken once from the keep, then read from the files again. */
    assert_int_equal(worker_tok_take(&p, &t, &eb), 0);
    int32_t *got = encode(t, &n);
    assert_int_equal(n, n_ref);
    assert_memory_equal(got, want, n * sizeof(*got));
    free(got);
    tok_tokenizer *t2 = NULL;
    assert_int_equal(worker_tok_take(&p, &t2, &eb), 0);
    assert_ptr_not_equal(t2, t);
    tok_free(t2);
    tok_free(t);

    /* A file changed since the keep is read again. */
    assert_int_equal(worker_tok_keep(&p, &eb), 1);
    struct timespec later[2] = {{0, UTIME_OMIT}, {1234567, 0}};
    assert_int_equal(utimensat(AT_FDCWD, merges, later, 0), 0);
    assert_int_equal(worker_tok_keep(&p, &eb), 1);
    free(want);
    tok_free(ref);
}

static void test_bad_files(void **state)
{
    (void)state;
    char bad[320];
    snprintf(bad, sizeof(bad), "%s/bad.json", dir);
    FILE *f = fopen(bad, "w");
    assert_non_null(f);
    fputs("{\"model\": 3}", f);
    fclose(f);
    worker_tok_paths p = {.json = bad};
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    assert_true(worker_tok_keep(&p, &eb) < 0);
    assert_non_null(strstr(eb.msg, "tokenizer"));
    tok_tokenizer *t = (tok_tokenizer *)1;
    assert_true(worker_tok_take(&p, &t, &eb) < 0);
    assert_null(t);
    worker_tok_paths none = {0};
    assert_int_equal(worker_tok_keep(&none, &eb), 0);
    assert_int_equal(worker_tok_take(&none, &t, &eb), 0);
    assert_null(t);
    unlink(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_take),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
