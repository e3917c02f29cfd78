/*
 * Test builds only: the fault-injection definition of worker_fault_hook
 * and worker_fault_prepare (src/worker/fault.h), linked into the
 * `rouse-fault` binary ahead of the library's empty ones. The release
 * `rouse` never contains them.
 *
 * With ROUSE_FAULT_DIR set, every inference request that carries an OIP id
 * is recorded as one line "<id>\n" appended to $ROUSE_FAULT_DIR/executions
 * (one write(2) with O_APPEND: lines of concurrent instances never mix),
 * before it runs: the tests count executions per job from it. The file is
 * opened by the template before it enters its sandbox (worker_fault_prepare),
 * since a sandboxed instance cannot open anything. With
 * ROUSE_FAULT_CRASH_FIRST=N too, a request whose id starts with "crash"
 * kills its instance (SIGKILL) on its first N executions, and one whose id
 * starts with "crash-always" on every execution. ROUSE_FAULT_DELAY_US
 * makes every recorded execution take that much longer (a slow model), and
 * a request whose id is "sleep-<ms>-..." takes <ms> milliseconds more; one
 * whose id is "spin-<ms>-..." spends <ms> milliseconds of CPU time more (a
 * model whose every row costs that much, batched or not).
 * ROUSE_FAULT_STEP_US makes every decode step of a generator take that
 * much longer (worker_fault_step; ROUSE_FAULT_DIR is not needed for it).
 *
 * A request whose id starts with "escape-" makes the instance try what a
 * hostile model would, and appends "result <id> <what>=<outcome> ...\n"
 * (outcome: "ok" when it worked, else the errno's name):
 *   escape-socket   open an inet and a unix socket
 *   escape-data     open $ROUSE_FAULT_DATA (a file of the data directory)
 *   escape-blob     open $ROUSE_FAULT_BLOB (another function's blob)
 *   escape-shadow   open /etc/shadow
 *   escape-fork     fork 200 times (children exit at once)
 *   escape-threads  start up to 200 threads that wait ("threads=<outcome of
 *                   the last> made=N": the task limit should stop it)
 *   escape-syscall  ptrace, mount, unshare, setuid(0), execve /bin/sh
 *   escape-ids      report uid and gid ("uid=N gid=N")
 *   escape-kill-PID signal 0 (harmless) to process PID with kill and tgkill,
 *                   and to itself with tgkill
 *   escape-memory   touch $ROUSE_FAULT_MEMORY_MB MiB (the limit should kill it)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "worker/fault.h"

/* The executions file, opened once per process (or by the template). */
static int exec_fd = -1;

static void open_executions(void)
{
    const char *dir = getenv("ROUSE_FAULT_DIR");
    if (exec_fd >= 0 || !dir) return;
    char path[4096];
    snprintf(path, sizeof(path), "%s/executions", dir);
    exec_fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

void worker_fault_prepare(void)
{
    open_executions();
}

/* How many lines of the executions file equal id. */
static int count_lines(const char *id)
{
    static char buf[1 << 20];
    ssize_t n = pread(exec_fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) return 0;
    buf[n] = '\0';
    int count = 0;
    size_t len = strlen(id);
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl && (size_t)(nl - line) == len && strncmp(line, id, len) == 0) count++;
        line = nl ? nl + 1 : NULL;
    }
    return count;
}

static void record(const char *line, size_t len)
{
    if (write(exec_fd, line, len) != (ssize_t)len) {
        /* A short record only makes the test's count fail, visibly. */
    }
}

/* "ok" when rc >= 0, else errno's name. */
static const char *outcome(long rc)
{
    if (rc >= 0) return "ok";
    switch (errno) {
    case EPERM:
        return "EPERM";
    case EACCES:
        return "EACCES";
    case ENOENT:
        return "ENOENT";
    case ENOSYS:
        return "ENOSYS";
    case EAGAIN:
        return "EAGAIN";
    case EROFS:
        return "EROFS";
    default:
        return "error";
    }
}

static const char *try_open(const char *path)
{
    if (!path) return "unset";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    const char *r = outcome(fd);
    if (fd >= 0) close(fd);
    return r;
}

static atomic_int threads_stop;

static void *waiting_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&threads_stop))
        usleep(1000);
    return NULL;
}

static void escape(const char *id)
{
    char out[512];
    int n = snprintf(out, sizeof(out), "result %s", id);
    const char *what = id + 7;
#define ADD(...) n += snprintf(out + n, sizeof(out) - (size_t)n, __VA_ARGS__)
    if (strcmp(what, "socket") == 0) {
        int a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ADD(" inet=%s", outcome(a));
        int b = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ADD(" unix=%s", outcome(b));
        if (a >= 0) close(a);
        if (b >= 0) close(b);
    } else if (strcmp(what, "data") == 0) {
        ADD(" open=%s", try_open(getenv("ROUSE_FAULT_DATA")));
    } else if (strcmp(what, "blob") == 0) {
        ADD(" open=%s", try_open(getenv("ROUSE_FAULT_BLOB")));
    } else if (strcmp(what, "shadow") == 0) {
        ADD(" open=%s", try_open("/etc/shadow"));
    } else if (strcmp(what, "fork") == 0) {
        int forked = 0;
        long last = 0;
        for (int i = 0; i < 200; i++) {
            pid_t p = fork();
            if (p == 0) _exit(0);
            last = p;
            if (p < 0) break;
            forked++;
        }
        ADD(" fork=%s forked=%d", outcome(last), forked);
        while (forked > 0 && waitpid(-1, NULL, 0) > 0)
            forked--;
    } else if (strcmp(what, "threads") == 0) {
        pthread_t t[200];
        int made = 0, err = 0;
        atomic_store(&threads_stop, 0);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 64 << 10);
        while (made < 200 && (err = pthread_create(&t[made], &attr, waiting_thread, NULL)) == 0)
            made++;
        pthread_attr_destroy(&attr);
        errno = err;
        ADD(" threads=%s made=%d", outcome(err ? -1 : 0), made);
        atomic_store(&threads_stop, 1);
        for (int i = 0; i < made; i++)
            pthread_join(t[i], NULL);
    } else if (strcmp(what, "syscall") == 0) {
        ADD(" ptrace=%s", outcome(syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0)));
        ADD(" mount=%s", outcome(mount("none", "/", "tmpfs", 0, NULL)));
        ADD(" unshare=%s", outcome(unshare(CLONE_NEWUSER)));
        ADD(" setuid=%s", outcome(setuid(0)));
        char *argv[] = {"/bin/sh", "-c", "true", NULL};
        ADD(" execve=%s", outcome(execve("/bin/sh", argv, environ)));
    } else if (strncmp(what, "kill-", 5) == 0) {
        pid_t target = (pid_t)atoi(what + 5);
        ADD(" kill=%s", outcome(kill(target, 0)));
        ADD(" tgkill=%s", outcome(syscall(SYS_tgkill, target, target, 0)));
        ADD(" self=%s", outcome(syscall(SYS_tgkill, getpid(), gettid(), 0)));
    } else if (strcmp(what, "ids") == 0) {
        ADD(" uid=%u gid=%u", (unsigned)getuid(), (unsigned)getgid());
    } else if (strcmp(what, "memory") == 0) {
        const char *mb = getenv("ROUSE_FAULT_MEMORY_MB");
        size_t total = (size_t)(mb ? atoll(mb) : 0) << 20;
        for (size_t at = 0; at < total; at += (size_t)1 << 20) {
            char *p = malloc((size_t)1 << 20);
            if (!p) break;
            memset(p, 1, (size_t)1 << 20); /* kept: the point is to hold it */
        }
        ADD(" survived=%zu", total >> 20);
    } else {
        ADD(" unknown");
    }
#undef ADD
    if (n > (int)sizeof(out) - 2) n = (int)sizeof(out) - 2;
    out[n++] = '\n';
    record(out, (size_t)n);
}

void worker_fault_step(void)
{
    const char *us = getenv("ROUSE_FAULT_STEP_US");
    if (us) usleep((useconds_t)atoi(us));
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Spends ms milliseconds of this thread's CPU time (reading its clock is
 * the work). */
static void spin_ms(int ms)
{
    uint64_t until = thread_cpu_ns() + (uint64_t)ms * 1000000ull;
    while (thread_cpu_ns() < until) {
    }
}

void worker_fault_hook(const char *request_id)
{
    if (!getenv("ROUSE_FAULT_DIR") || !request_id || strlen(request_id) > 400) return;
    open_executions();
    if (exec_fd < 0) return;
    char line[512];
    int len = snprintf(line, sizeof(line), "%s\n", request_id);
    record(line, (size_t)len);
    if (strncmp(request_id, "escape-", 7) == 0) escape(request_id);
    const char *delay = getenv("ROUSE_FAULT_DELAY_US");
    if (delay) usleep((useconds_t)atoi(delay));
    if (strncmp(request_id, "sleep-", 6) == 0) usleep((useconds_t)atoi(request_id + 6) * 1000u);
    if (strncmp(request_id, "spin-", 5) == 0) spin_ms(atoi(request_id + 5));
    const char *first = getenv("ROUSE_FAULT_CRASH_FIRST");
    if (!first || strncmp(request_id, "crash", 5) != 0) return;
    if (strncmp(request_id, "crash-always", 12) == 0) raise(SIGKILL);
    if (count_lines(request_id) <= atoi(first)) raise(SIGKILL);
}
