/*
 * A throwaway NATS server with JetStream for the tests (see nats_server.h).
 */
#include "nats_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "free_port.h"
#include "tmp_dir.h"

static const char *const nats_bins[] = {"/usr/sbin/nats-server", "/usr/bin/nats-server"};

static const char *nats_bin(void)
{
    for (size_t i = 0; i < sizeof(nats_bins) / sizeof(nats_bins[0]); i++)
        if (access(nats_bins[i], X_OK) == 0) return nats_bins[i];
    return NULL;
}

static int connects(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int ok = inet_pton(AF_INET, host, &a.sin_addr) == 1 &&
             connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static int spawn(nats_server *n)
{
    const char *bin = nats_bin();
    char port[16], store[600], log[600];
    snprintf(port, sizeof(port), "%d", n->port);
    snprintf(store, sizeof(store), "%s/js", n->root);
    snprintf(log, sizeof(log), "%s/log", n->root);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execl(bin, bin, "-js", "-a", n->listen, "-p", port, "-sd", store, "-l", log,
              (char *)NULL);
        _exit(127);
    }
    n->pid = pid;
    /* Up to 20 s for it to accept connections (a loaded 2-core machine). */
    for (int i = 0; i < 2000; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "nats_server: nats-server exited at start (see %s)\n", log);
            n->pid = 0;
            return -1;
        }
        if (connects(n->listen, n->port)) return 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "nats_server: no connection on %s:%d after 20 s\n", n->listen, n->port);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    n->pid = 0;
    return -1;
}

static void terminate(nats_server *n)
{
    if (n->pid <= 0) return;
    kill(n->pid, SIGTERM);
    while (waitpid(n->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    n->pid = 0;
}

int nats_server_start(nats_server *n, const char *listen, char *why, size_t why_len)
{
    memset(n, 0, sizeof(*n));
    if (!nats_bin()) {
        snprintf(why, why_len, "nats-server is not installed (Debian package nats-server)");
        return 1;
    }
    snprintf(n->listen, sizeof(n->listen), "%s", listen ? listen : "127.0.0.1");
    snprintf(n->root, sizeof(n->root), "%s/rouse-nats-XXXXXX", test_tmp_dir());
    if (!mkdtemp(n->root)) {
        fprintf(stderr, "nats_server: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    for (int attempt = 0; attempt < 5 && n->pid <= 0; attempt++) {
        n->port = test_free_port();
        if (n->port > 0) (void)spawn(n);
    }
    if (n->pid <= 0) {
        nats_server_stop(n);
        return -1;
    }
    snprintf(n->url, sizeof(n->url), "nats://%s:%d", n->listen, n->port);
    return 0;
}

int nats_server_pause(nats_server *n)
{
    terminate(n);
    return 0;
}

int nats_server_resume(nats_server *n) { return n->pid > 0 ? 0 : spawn(n); }

void nats_server_stop(nats_server *n)
{
    terminate(n);
    if (!n->root[0]) return;
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/rm", "rm", "-rf", n->root, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) waitpid(pid, NULL, 0);
    n->root[0] = 0;
}
