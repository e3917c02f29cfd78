/*
 * Network namespaces joined by a bridge, for tests of several nodes (see
 * test_net.h). The links are made with iproute2's `ip`, run as a child.
 */
#include "test_net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *ip_bin(void)
{
    if (access("/usr/sbin/ip", X_OK) == 0) return "/usr/sbin/ip";
    if (access("/sbin/ip", X_OK) == 0) return "/sbin/ip";
    if (access("/usr/bin/ip", X_OK) == 0) return "/usr/bin/ip";
    return NULL;
}

/* Runs `ip ARGS...` (a NULL-terminated list); quiet unless it fails and
 * loud is set. Its exit status. */
static int ip(int loud, ...)
{
    const char *argv[24] = {ip_bin()};
    int n = 1;
    va_list ap;
    va_start(ap, loud);
    const char *a;
    while (n < 23 && (a = va_arg(ap, const char *)))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    int pfd[2];
    if (pipe(pfd) < 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], (char **)argv);
        _exit(127);
    }
    close(pfd[1]);
    char out[1024];
    size_t len = 0;
    ssize_t r;
    while ((r = read(pfd[0], out + len, sizeof(out) - 1 - len)) > 0 && len + (size_t)r < sizeof(out) - 1)
        len += (size_t)r;
    out[len] = 0;
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    if (rc != 0 && loud) {
        fprintf(stderr, "test_net: ip");
        for (int i = 1; argv[i]; i++)
            fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, ": exit %d: %s\n", rc, out);
    }
    return rc;
}

int test_net_create(test_net *t, int n, char *why, size_t why_len)
{
    memset(t, 0, sizeof(*t));
    if (n < 1 || n > TEST_NET_MAX) return -1;
    if (geteuid() != 0) {
        snprintf(why, why_len, "network namespaces need root");
        return 1;
    }
    if (!ip_bin()) {
        snprintf(why, why_len, "iproute2's ip is not installed");
        return 1;
    }
    unsigned id = (unsigned)getpid() % 250u + 1u;
    snprintf(t->bridge, sizeof(t->bridge), "rbr%u", (unsigned)getpid() % 100000u);
    snprintf(t->host_addr, sizeof(t->host_addr), "10.231.%u.1", id);
    /* A probe that says whether this machine lets us make namespaces at all. */
    char probe[24];
    snprintf(probe, sizeof(probe), "rprobe%u", (unsigned)getpid() % 100000u);
    if (ip(0, "netns", "add", probe, NULL) != 0) {
        snprintf(why, why_len, "cannot make a network namespace here (ip netns add failed)");
        return 1;
    }
    ip(0, "netns", "del", probe, NULL);
    char cidr[24];
    snprintf(cidr, sizeof(cidr), "%s/24", t->host_addr);
    if (ip(1, "link", "add", t->bridge, "type", "bridge", NULL) != 0) return -1;
    t->n = 0;
    if (ip(1, "addr", "add", cidr, "dev", t->bridge, NULL) != 0 ||
        ip(1, "link", "set", t->bridge, "up", NULL) != 0)
        goto out_fail;
    for (int i = 0; i < n; i++) {
        snprintf(t->ns[i], sizeof(t->ns[i]), "rouse-t%u-%d", (unsigned)getpid() % 100000u, i + 1);
        snprintf(t->addr[i], sizeof(t->addr[i]), "10.231.%u.%d", id, 11 + i);
        snprintf(t->veth[i], sizeof(t->veth[i]), "rv%u-%d", (unsigned)getpid() % 100000u, i + 1);
        char peer[20], naddr[24];
        snprintf(peer, sizeof(peer), "%sp", t->veth[i]);
        snprintf(naddr, sizeof(naddr), "%s/24", t->addr[i]);
        if (ip(1, "netns", "add", t->ns[i], NULL) != 0) goto out_fail;
        t->n = i + 1;
        if (ip(1, "link", "add", t->veth[i], "type", "veth", "peer", "name", peer, NULL) != 0 ||
            ip(1, "link", "set", peer, "netns", t->ns[i], NULL) != 0 ||
            ip(1, "link", "set", t->veth[i], "master", t->bridge, NULL) != 0 ||
            ip(1, "link", "set", t->veth[i], "up", NULL) != 0 ||
            ip(1, "-n", t->ns[i], "link", "set", "lo", "up", NULL) != 0 ||
            ip(1, "-n", t->ns[i], "addr", "add", naddr, "dev", peer, NULL) != 0 ||
            ip(1, "-n", t->ns[i], "link", "set", peer, "up", NULL) != 0)
            goto out_fail;
    }
    return 0;
out_fail:
    test_net_destroy(t);
    return -1;
}

void test_net_ns_path(const test_net *t, int i, char *out, size_t cap)
{
    snprintf(out, cap, "/run/netns/%s", t->ns[i]);
}

int test_net_link(const test_net *t, int i, int up)
{
    return ip(1, "link", "set", t->veth[i], up ? "up" : "down", NULL) == 0 ? 0 : -1;
}

void test_net_destroy(test_net *t)
{
    for (int i = 0; i < t->n; i++) {
        ip(0, "link", "del", t->veth[i], NULL);
        ip(0, "netns", "del", t->ns[i], NULL);
    }
    t->n = 0;
    if (t->bridge[0]) ip(0, "link", "del", t->bridge, NULL);
    t->bridge[0] = 0;
}
