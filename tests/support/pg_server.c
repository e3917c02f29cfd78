/*
 * A throwaway PostgreSQL server for the tests (see pg_server.h).
 */
#include "pg_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glob.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "free_port.h"
#include "tmp_dir.h"

/* The uid/gid the cluster runs as: `postgres` when we are root. */
static int owner(uid_t *uid, gid_t *gid)
{
    *uid = getuid();
    *gid = getgid();
    if (geteuid() != 0) return 0;
    struct passwd *pw = getpwnam("postgres");
    if (!pw) return -1;
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

/* Runs argv (as the cluster's owner), stdout+stderr into out when given.
 * Returns the exit status, -1 when it could not run. */
static int run(char *const argv[], char *out, size_t out_len)
{
    uid_t uid;
    gid_t gid;
    if (owner(&uid, &gid) < 0) return -1;
    int pfd[2];
    if (pipe(pfd) < 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        if (geteuid() == 0 && uid != 0) {
            if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) _exit(126);
        }
        /* Not inherited from the test: the server's own locale, and a
         * working directory the cluster's owner may enter (the test's may
         * be private to root: psql then prints a warning into the output
         * the caller compares). */
        setenv("LC_ALL", "C", 1);
        if (chdir("/") < 0) _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t len = 0;
    char sink[512];
    for (;;) {
        char *dst = out && len + 1 < out_len ? out + len : sink;
        size_t cap = out && len + 1 < out_len ? out_len - len - 1 : sizeof(sink);
        ssize_t r = read(pfd[0], dst, cap);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (dst != sink) len += (size_t)r;
    }
    close(pfd[0]);
    if (out && out_len) out[len] = 0;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int start_server(pg_server *p)
{
    char ctl[300], data[600], log[600], opts[1024];
    snprintf(ctl, sizeof(ctl), "%s/pg_ctl", p->bin);
    snprintf(data, sizeof(data), "%s/data", p->root);
    snprintf(log, sizeof(log), "%s/log", p->root);
    /* fsync off: the tests restart the server cleanly, never the machine,
     * and a clean shutdown writes everything out anyway. */
    snprintf(opts, sizeof(opts),
             "-p %d -k %s/sock -c listen_addresses='%s' -c fsync=off -c max_connections=200",
             p->port, p->root, p->listen);
    char *argv[] = {ctl, "-D", data, "-l", log, "-w", "-t", "60", "-o", opts, "start", NULL};
    char out[2048];
    int rc = run(argv, out, sizeof(out));
    if (rc != 0) {
        fprintf(stderr, "pg_server: pg_ctl start exited %d: %s\n", rc, out);
        return -1;
    }
    p->running = 1;
    return 0;
}

static int stop_server(pg_server *p)
{
    if (!p->running) return 0;
    char ctl[300], data[600];
    snprintf(ctl, sizeof(ctl), "%s/pg_ctl", p->bin);
    snprintf(data, sizeof(data), "%s/data", p->root);
    char *argv[] = {ctl, "-D", data, "-m", "fast", "-w", "-t", "60", "stop", NULL};
    char out[1024];
    int rc = run(argv, out, sizeof(out));
    if (rc != 0) {
        fprintf(stderr, "pg_server: pg_ctl stop exited %d: %s\n", rc, out);
        return -1;
    }
    p->running = 0;
    return 0;
}

int pg_server_start(pg_server *p, const char *listen, char *why, size_t why_len)
{
    memset(p, 0, sizeof(*p));
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        snprintf(why, why_len, "PostgreSQL is not installed (no initdb; Debian package postgresql)");
        return 1;
    }
    /* The newest major version: glob sorts, and majors have two digits. */
    snprintf(p->bin, sizeof(p->bin), "%s", g.gl_pathv[g.gl_pathc - 1]);
    globfree(&g);
    *strrchr(p->bin, '/') = 0;
    uid_t uid;
    gid_t gid;
    if (owner(&uid, &gid) < 0) {
        snprintf(why, why_len, "running as root and there is no `postgres` user to run PostgreSQL as");
        return 1;
    }
    snprintf(p->listen, sizeof(p->listen), "%s", listen ? listen : "127.0.0.1");
    snprintf(p->root, sizeof(p->root), "%s/rouse-pg-XXXXXX", test_tmp_dir());
    if (!mkdtemp(p->root)) {
        fprintf(stderr, "pg_server: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    char sock[600];
    snprintf(sock, sizeof(sock), "%s/sock", p->root);
    if (mkdir(sock, 0700) < 0 || chown(p->root, uid, gid) < 0 || chown(sock, uid, gid) < 0) {
        fprintf(stderr, "pg_server: %s: %s\n", p->root, strerror(errno));
        goto out_rm;
    }
    char initdb[300], data[600], out[4096];
    snprintf(initdb, sizeof(initdb), "%s/initdb", p->bin);
    snprintf(data, sizeof(data), "%s/data", p->root);
    char *argv[] = {initdb, "-D", data, "-U", "rouse", "--auth=trust", "-E", "UTF8",
                    "--no-sync", "--no-instructions", NULL};
    int rc = run(argv, out, sizeof(out));
    if (rc != 0) {
        fprintf(stderr, "pg_server: initdb exited %d: %s\n", rc, out);
        goto out_rm;
    }
    /* Trust over TCP from anywhere the server listens (the tests' own
     * addresses only: loopback and a test bridge). */
    char hba[700];
    snprintf(hba, sizeof(hba), "%s/pg_hba.conf", data);
    FILE *f = fopen(hba, "a");
    if (!f || fputs("host all all 0.0.0.0/0 trust\n", f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "pg_server: %s: %s\n", hba, strerror(errno));
        goto out_rm;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        p->port = test_free_port();
        if (p->port > 0 && start_server(p) == 0) break;
    }
    if (!p->running) goto out_rm;
    const char *host = p->listen;
    char first[sizeof(p->listen)];
    snprintf(first, sizeof(first), "%s", host);
    char *comma = strchr(first, ',');
    if (comma) *comma = 0;
    snprintf(p->url, sizeof(p->url), "postgres://rouse@%s:%d/postgres", first, p->port);
    return 0;
out_rm:;
    char *rm[] = {"/bin/rm", "-rf", p->root, NULL};
    (void)run(rm, NULL, 0);
    p->root[0] = 0;
    return -1;
}

int pg_server_restart(pg_server *p)
{
    if (stop_server(p) < 0) return -1;
    return start_server(p);
}

int pg_server_pause(pg_server *p) { return stop_server(p); }

int pg_server_resume(pg_server *p) { return p->running ? 0 : start_server(p); }

void pg_server_stop(pg_server *p)
{
    if (!p->root[0]) return;
    (void)stop_server(p);
    char *rm[] = {"/bin/rm", "-rf", p->root, NULL};
    (void)run(rm, NULL, 0);
    p->root[0] = 0;
}

int pg_server_sql(const pg_server *p, const char *sql, char *out, size_t out_len)
{
    char psql[300], port[16], sock[600];
    snprintf(psql, sizeof(psql), "%s/psql", p->bin);
    snprintf(port, sizeof(port), "%d", p->port);
    snprintf(sock, sizeof(sock), "%s/sock", p->root);
    char *argv[] = {psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", sock,
                    "-p", port, "-U", "rouse", "-d", "postgres", "-c", (char *)sql, NULL};
    char buf[8192];
    int rc = run(argv, out ? out : buf, out ? out_len : sizeof(buf));
    if (rc != 0) {
        fprintf(stderr, "pg_server: psql exited %d: %s\n", rc, out ? out : buf);
        return -1;
    }
    return 0;
}
