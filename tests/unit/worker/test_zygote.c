/*
 * Unit tests of the zygote (worker/zygote.h) over a real socketpair, with
 * this process as serve (a child subreaper): a spawn forks a child that
 * runs the given arguments with the passed socket as descriptor 3, is
 * adopted by us (its pid is the one reported, and we reap it); the spare
 * made ahead of need becomes that child, and a lost spare is replaced;
 * after each start (and when serve names a model on its warm-up socket)
 * the zygote warms that model; a malformed
 * request gets an error reply and the zygote goes on; end of stream ends
 * it. Also the process title rewrite it relies on (common/proctitle.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proctitle.h"
#include "proc_info.h"
#include "worker/zygote.h"

/* The forked child: reports what it got on descriptor 3. */
static int child_main(int argc, char **argv)
{
    char msg[256];
    int n =
        snprintf(msg, sizeof(msg), "%d %s %s %d", argc, argv[0], argv[argc - 1], (int)getppid());
    return write(3, msg, (size_t)n) == n ? 7 : 1;
}

typedef struct zy {
    int ctl;
    pid_t pid;
} zy;

/* The warm-up callback: says what it was given on g_warm_pipe. */
static int g_warm_pipe = -1;

static int warm_main(int argc, char **argv)
{
    char msg[128];
    int n = snprintf(msg, sizeof(msg), "warm %s", argv[argc - 1]);
    return write(g_warm_pipe, msg, (size_t)n) == n ? 1 : -1;
}

/* A zygote on a new socketpair; with warm_sock, also a warm-up socket
 * (serve's end in *warm_sock). */
static zy zygote_up_with(zygote_warm_fn warm, int *warm_sock)
{
    int sv[2], wv[2] = {-1, -1};
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    if (warm_sock) assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, wv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        if (warm_sock) close(wv[0]);
        _exit(zygote_main(sv[1], wv[1], child_main, warm)); /* the zygote, or its child */
    }
    close(sv[1]);
    if (warm_sock) {
        close(wv[1]);
        *warm_sock = wv[0];
    }
    return (zy){sv[0], pid};
}

static zy zygote_up(void)
{
    return zygote_up_with(NULL, NULL);
}

static int zygote_down(zy *z)
{
    close(z->ctl);
    int ws;
    assert_int_equal(waitpid(z->pid, &ws, 0), z->pid);
    /* Its spare ends when it does (end of its channel); reap it too, so the
     * next test finds no process of this one's. */
    while (waitpid(-1, NULL, 0) > 0)
        ;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

/* Spawns a child through the zygote and checks what it saw; its pid. */
static pid_t spawn_and_check(zy *z, const char *last)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    char *argv[] = {"__test", "--fd", "3", (char *)last};
    pid_t pid = 0;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    assert_int_equal(zygote_spawn(z->ctl, 4, argv, sv[1], 5000, &pid, &eb), 0);
    close(sv[1]);
    assert_true(pid > 0 && pid != z->pid);
    char got[256] = {0}, want[256];
    assert_true(read(sv[0], got, sizeof(got) - 1) > 0);
    snprintf(want, sizeof(want), "4 __test %s %d", last, (int)getpid());
    assert_string_equal(got, want); /* adopted by us before it ran */
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 7);
    close(sv[0]);
    return pid;
}

/* A live child of ours other than the zygote (its spare), or 0 after 5 s. */
static pid_t spare_of(const zy *z, pid_t not )
{
    for (int tries = 0; tries < 1000; tries++) {
        DIR *d = opendir("/proc");
        assert_non_null(d);
        struct dirent *e;
        pid_t found = 0;
        while (!found && (e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == z->pid || pid == not ) continue;
            char state;
            int ppid;
            if (proc_stat(pid, &state, &ppid) && ppid == (int)getpid() && state != 'Z') found = pid;
        }
        closedir(d);
        if (found) return found;
        usleep(5000);
    }
    return 0;
}

static void test_spawn(void **state)
{
    (void)state;
    zy z = zygote_up();
    spawn_and_check(&z, "first");
    spawn_and_check(&z, "second");
    assert_int_equal(zygote_down(&z), 0);
}

/* A spawn is handed to the spare made ahead of need; a lost spare costs
 * only the direct fork, and another is made. */
static void test_spare(void **state)
{
    (void)state;
    zy z = zygote_up();
    pid_t s1 = spare_of(&z, 0);
    assert_true(s1 > 0);
    assert_int_equal(spawn_and_check(&z, "from-spare"), s1);
    pid_t s2 = spare_of(&z, s1);
    assert_true(s2 > 0);
    assert_int_equal(kill(s2, SIGKILL), 0);
    assert_int_equal(waitpid(s2, NULL, 0), s2);
    pid_t direct = spawn_and_check(&z, "direct");
    assert_true(direct != s2);
    assert_true(spare_of(&z, s2) > 0);
    assert_int_equal(zygote_down(&z), 0);
}

/* After each start the zygote warms that child's model, then replaces its
 * spare; starts go on meanwhile and after. */
static void test_warm(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    g_warm_pipe = p[1];
    zy z = zygote_up_with(warm_main, NULL);
    close(p[1]);
    spawn_and_check(&z, "model-a");
    char got[64] = {0};
    assert_true(read(p[0], got, sizeof(got) - 1) > 0);
    assert_string_equal(got, "warm model-a");
    spawn_and_check(&z, "model-b");
    memset(got, 0, sizeof(got));
    assert_true(read(p[0], got, sizeof(got) - 1) > 0);
    assert_string_equal(got, "warm model-b");
    assert_int_equal(zygote_down(&z), 0);
    close(p[0]);
}

/* A model named on the warm-up socket is warmed without any start; the
 * zygote goes on when serve closes that socket. */
static void test_warm_ahead(void **state)
{
    (void)state;
    int p[2], ws;
    assert_int_equal(pipe(p), 0);
    g_warm_pipe = p[1];
    zy z = zygote_up_with(warm_main, &ws);
    close(p[1]);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    char *argv[] = {"__test", "--fd", "3", "deployed"};
    assert_int_equal(zygote_warm_request(ws, 4, argv, &eb), 0);
    char got[64] = {0};
    assert_true(read(p[0], got, sizeof(got) - 1) > 0);
    assert_string_equal(got, "warm deployed");
    close(ws);
    spawn_and_check(&z, "after");
    memset(got, 0, sizeof(got));
    assert_true(read(p[0], got, sizeof(got) - 1) > 0);
    assert_string_equal(got, "warm after");
    assert_int_equal(zygote_down(&z), 0);
    close(p[0]);
}

static void test_malformed_request(void **state)
{
    (void)state;
    zy z = zygote_up();
    const char junk[] = "not a spawn request";
    assert_int_equal(send(z.ctl, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
    char reply[64];
    assert_int_equal(recv(z.ctl, reply, sizeof(reply), 0), 16); /* an error reply */
    spawn_and_check(&z, "after");
    assert_int_equal(zygote_down(&z), 0);
}

static void test_no_answer(void **state)
{
    (void)state;
    zy z = zygote_up();
    pid_t spare = spare_of(&z, 0);
    assert_true(spare > 0);
    assert_int_equal(kill(z.pid, SIGSTOP), 0);
    assert_int_equal(kill(spare, SIGSTOP), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    char *argv[] = {"__test", "x"};
    pid_t pid = 0;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    assert_int_equal(zygote_spawn(z.ctl, 2, argv, sv[1], 50, &pid, &eb), ROUSE_ETIMEOUT);
    assert_non_null(strstr(eb.msg, "no answer"));
    close(sv[0]);
    close(sv[1]);
    kill(spare, SIGKILL);
    kill(z.pid, SIGKILL);
    zygote_down(&z);
}

static void test_title(void **state)
{
    (void)state;
    /* Laid out as the kernel lays out arguments: contiguous strings. */
    char area[] = "__zygote\0--fd\0"
                  "3\0--title-room\0..........................";
    char *argv[] = {area, area + 9, area + 14, area + 16, area + 29};
    rouse_proc_title_init(5, argv);
    char *title[] = {"__template", "--name", "fn"};
    rouse_proc_title_set(3, title);
    assert_memory_equal(area, "__template\0--name\0fn\0", 21);
    for (size_t i = 21; i < sizeof(area); i++)
        assert_int_equal(area[i], 0);
    /* Too long: cut at the room, still NUL-terminated. */
    char *longer[] = {"__template", "--model",
                      "/a/very/long/path/to/a/model/file/that/does/not/fit"};
    rouse_proc_title_set(3, longer);
    assert_int_equal(area[sizeof(area) - 1], 0);
    assert_memory_equal(area, "__template\0--model\0/a/very", 26);
}

int main(void)
{
    /* Like serve: orphaned descendants come to us. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn),
        cmocka_unit_test(test_spare),
        cmocka_unit_test(test_warm),
        cmocka_unit_test(test_warm_ahead),
        cmocka_unit_test(test_malformed_request),
        cmocka_unit_test(test_no_answer),
        cmocka_unit_test(test_title),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
