/*
 * Control groups for sandboxed instances (see cgroup.h). serve reads the
 * mount table and its own membership once at start; instances touch only
 * the descriptors their template holds.
 */
#include "worker/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const ctl_names[CGROUP_N_CTL] = {"memory", "cpu", "pids"};

const char *cgroup_ctl_name(cgroup_ctl c)
{
    return (unsigned)c < CGROUP_N_CTL ? ctl_names[c] : "?";
}

/* Writes the reason a controller is left out (one line, 160 bytes). */
__attribute__((format(printf, 2, 3))) static void say(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, 160, fmt, ap);
    va_end(ap);
}

/* Whether the comma-separated list has word. */
static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && strncmp(p, word, n) == 0) return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* A cgroup mount: where it is, what part of its hierarchy it shows. */
typedef struct mnt {
    char point[PATH_MAX];
    char root[PATH_MAX];
} mnt;

/* Finds the v1 mount of ctl (v2 == false) or the v2 mount. */
static bool find_mount(const char *ctl, bool v2, mnt *out)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        /* id parent maj:min root point opts [optional...] - fstype source superopts */
        char root[PATH_MAX], point[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) != 2) continue;
        char *dash = strstr(line, " - ");
        if (!dash) continue;
        char fstype[64], source[256], super[1024];
        if (sscanf(dash + 3, "%63s %255s %1023s", fstype, source, super) != 3) continue;
        if (v2 ? strcmp(fstype, "cgroup2") != 0
               : strcmp(fstype, "cgroup") != 0 || !has_word(super, ctl))
            continue;
        snprintf(out->point, sizeof(out->point), "%s", point);
        snprintf(out->root, sizeof(out->root), "%s", root);
        found = true;
    }
    fclose(f);
    return found;
}

/* serve's own group in ctl's v1 hierarchy, or in v2 ("0::"). */
static bool own_group(const char *ctl, bool v2, char *out, size_t len)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = '\0';
        const char *ctls = c1 + 1;
        if (v2 ? (strncmp(line, "0:", 2) != 0 || *ctls != '\0') : !has_word(ctls, ctl)) continue;
        snprintf(out, len, "%s", c2 + 1);
        found = true;
    }
    fclose(f);
    return found;
}

/* The directory of serve's own group: the mount, plus the group's path
 * below the part of the hierarchy the mount shows. */
static bool group_dir(const mnt *m, const char *group, char *out, size_t len)
{
    size_t rl = strlen(m->root);
    const char *rest = group;
    if (strcmp(m->root, "/") != 0) {
        if (strncmp(group, m->root, rl) != 0 || (group[rl] != '\0' && group[rl] != '/'))
            return false; /* our group lies outside what is mounted */
        rest = group + rl;
    }
    if (strcmp(rest, "/") == 0) rest = "";
    return (size_t)snprintf(out, len, "%s%s", m->point, rest) < len;
}

/* Removes the empty groups below dir, then dir. */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
            char sub[PATH_MAX];
            if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) < sizeof(sub))
                rmdir(sub);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Removes the roots left by serves that ended without removing theirs. */
static void remove_stale(const char *parent)
{
    DIR *d = opendir(parent);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "rouse-", 6) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + 6, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char sub[PATH_MAX];
        if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", parent, e->d_name) < sizeof(sub))
            remove_tree(sub);
    }
    closedir(d);
}

/* Writes s into dir/file. 0 or -errno. */
static int write_file(const char *dir, const char *file, const char *s)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = write(fd, s, strlen(s));
    int err = n < 0 ? -errno : 0;
    close(fd);
    return err;
}

/* Whether v2's group at dir offers ctl to its children, enabling it when
 * it can. */
static bool v2_enable(const char *dir, const char *ctl, char *why)
{
    char path[PATH_MAX], buf[512] = "";
    if ((size_t)snprintf(path, sizeof(path), "%s/cgroup.controllers", dir) >= sizeof(path))
        return false;
    FILE *f = fopen(path, "re");
    if (f) {
        if (!fgets(buf, sizeof(buf), f)) buf[0] = '\0';
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
    for (char *p = buf; *p; p++)
        if (*p == ' ') *p = ',';
    if (!has_word(buf, ctl)) {
        say(why, "no %s controller (neither cgroup v1 nor v2 offers it)", ctl);
        return false;
    }
    char plus[32];
    snprintf(plus, sizeof(plus), "+%s", ctl);
    int rc = write_file(dir, "cgroup.subtree_control", plus);
    if (rc < 0) {
        say(why, "cgroup v2 %s controller cannot be delegated below %s: %s", ctl, dir,
            strerror(-rc));
        return false;
    }
    return true;
}

void cgroup_roots_make(cgroup_roots *r, char why[CGROUP_N_CTL][160])
{
    memset(r, 0, sizeof(*r));
    for (int c = 0; c < CGROUP_N_CTL; c++) {
        why[c][0] = '\0';
        const char *ctl = ctl_names[c];
        mnt m;
        char group[PATH_MAX], dir[PATH_MAX];
        bool v2 = false;
        if (!find_mount(ctl, false, &m) || !own_group(ctl, false, group, sizeof(group))) {
            v2 = true;
            if (!find_mount(ctl, true, &m) || !own_group(ctl, true, group, sizeof(group))) {
                say(why[c], "no %s controller (no cgroup v1 or v2 mount has it)", ctl);
                continue;
            }
        }
        if (!group_dir(&m, group, dir, sizeof(dir))) {
            say(why[c], "%s controller: serve's group %s is not under the mount %s", ctl, group,
                m.point);
            continue;
        }
        if (v2 && !v2_enable(dir, ctl, why[c])) continue;
        remove_stale(dir);
        char root[PATH_MAX];
        if ((size_t)snprintf(root, sizeof(root), "%s/rouse-%d", dir, (int)getpid()) >=
            sizeof(root)) {
            say(why[c], "%s controller: path too long", ctl);
            continue;
        }
        if (mkdir(root, 0755) < 0 && errno != EEXIST) {
            say(why[c], "%s controller: cannot create %s: %s", ctl, root, strerror(errno));
            continue;
        }
        if (v2) {
            char plus[32];
            snprintf(plus, sizeof(plus), "+%s", ctl);
            int rc = write_file(root, "cgroup.subtree_control", plus);
            if (rc < 0) {
                rmdir(root);
                say(why[c], "cgroup v2 %s controller not delegated to %s: %s", ctl, root,
                    strerror(-rc));
                continue;
            }
        }
        snprintf(r->dir[c], sizeof(r->dir[c]), "%s", root);
        r->v2[c] = v2;
    }
}

/* The value of "key N" in the flat-keyed file dir/file, or 0. */
static int64_t read_key(const char *dir, const char *file, const char *key)
{
    char path[PATH_MAX], line[256];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path)) return 0;
    FILE *f = fopen(path, "re");
    if (!f) return 0;
    int64_t v = 0;
    size_t kl = strlen(key);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ') v = strtoll(line + kl + 1, NULL, 10);
    fclose(f);
    return v;
}

bool cgroup_remove(const cgroup_roots *r, pid_t pid)
{
    bool done = true;
    for (int c = 0; c < CGROUP_N_CTL; c++) {
        if (!r->dir[c][0]) continue;
        char dir[PATH_MAX];
        if ((size_t)snprintf(dir, sizeof(dir), "%s/%d", r->dir[c], (int)pid) >= sizeof(dir))
            continue;
        if (rmdir(dir) < 0 && errno == EBUSY) done = false;
    }
    return done;
}

bool cgroup_instance_ended(const cgroup_roots *r, pid_t pid, bool *busy)
{
    bool oom = false;
    char dir[PATH_MAX];
    if (r->dir[CGROUP_MEMORY][0] &&
        (size_t)snprintf(dir, sizeof(dir), "%s/%d", r->dir[CGROUP_MEMORY], (int)pid) < sizeof(dir))
        oom = read_key(dir, r->v2[CGROUP_MEMORY] ? "memory.events" : "memory.oom_control",
                       "oom_kill") > 0;
    *busy = !cgroup_remove(r, pid);
    return oom;
}

bool cgroup_roots_remove(const cgroup_roots *r)
{
    bool done = true;
    for (int c = 0; c < CGROUP_N_CTL; c++) {
        if (!r->dir[c][0]) continue;
        remove_tree(r->dir[c]);
        if (access(r->dir[c], F_OK) == 0) done = false;
    }
    return done;
}

/* Writes s into the file at dirfd/path. 0 or -errno. */
static int write_at(int dirfd, const char *path, const char *s)
{
    int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = write(fd, s, strlen(s));
    int err = n < 0 ? -errno : 0;
    close(fd);
    return err;
}

/* Makes the group `name` of controller c under dirfd and writes l's
 * limit for c there. */
static int make_group(int dirfd, bool v2, int c, const cgroup_limits *l, const char *name,
                      rouse_errbuf *eb)
{
    char path[96];
    if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
        return rouse_err_set(eb, ROUSE_EIO, "cgroup %s: mkdir %s: %s", ctl_names[c], name,
                             strerror(errno));
    /* What to write: (file, value) pairs; a NULL file ends the list. Swap
     * is limited to nothing where the kernel accounts it, so the memory
     * limit cannot be dodged by swapping. */
    const char *files[3] = {NULL, NULL, NULL};
    char vals[2][32] = {"", ""};
    if (c == CGROUP_MEMORY && l->memory_mb > 0) {
        int64_t bytes = l->memory_mb << 20;
        snprintf(vals[0], sizeof(vals[0]), "%lld", (long long)bytes);
        files[0] = v2 ? "memory.max" : "memory.limit_in_bytes";
        files[1] = v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes";
        snprintf(vals[1], sizeof(vals[1]), "%lld", v2 ? 0LL : (long long)bytes);
    } else if (c == CGROUP_CPU && l->cpu_weight > 0) {
        files[0] = v2 ? "cpu.weight" : "cpu.shares";
        int64_t w = v2 ? l->cpu_weight * 100 / 1024 : l->cpu_weight;
        if (v2)
            w = w < 1 ? 1 : w > 10000 ? 10000 : w;
        else
            w = w < 2 ? 2 : w > 262144 ? 262144 : w;
        snprintf(vals[0], sizeof(vals[0]), "%lld", (long long)w);
    } else if (c == CGROUP_PIDS && l->pids_max > 0) {
        files[0] = "pids.max";
        snprintf(vals[0], sizeof(vals[0]), "%lld", (long long)l->pids_max);
    }
    for (int k = 0; k < 2 && files[k]; k++) {
        snprintf(path, sizeof(path), "%s/%s", name, files[k]);
        int rc = write_at(dirfd, path, vals[k]);
        /* Swap accounting may be off (no memsw files): the memory limit
         * still holds. */
        if (rc < 0 && !(k == 1 && rc == -ENOENT))
            return rouse_err_set(eb, ROUSE_EIO, "cgroup %s: writing %s: %s", ctl_names[c], path,
                                 strerror(-rc));
    }
    return 0;
}

/* Moves the calling process into the group `name` of controller c. */
static int enter_group(int dirfd, int c, const char *name, rouse_errbuf *eb)
{
    char path[96];
    snprintf(path, sizeof(path), "%s/cgroup.procs", name);
    int rc = write_at(dirfd, path, "0");
    if (rc < 0)
        return rouse_err_set(eb, ROUSE_EIO, "cgroup %s: joining %s: %s", ctl_names[c], path,
                             strerror(-rc));
    return 0;
}

static int make_and_enter(const int dirfd[CGROUP_N_CTL], const bool v2[CGROUP_N_CTL],
                          const cgroup_limits *l, unsigned mask, const char *name, rouse_errbuf *eb)
{
    for (int c = 0; c < CGROUP_N_CTL; c++) {
        if (dirfd[c] < 0 || !(mask >> c & 1)) continue;
        int rc = make_group(dirfd[c], v2[c], c, l, name, eb);
        if (rc == 0) rc = enter_group(dirfd[c], c, name, eb);
        if (rc < 0) return rc;
    }
    return 0;
}

int cgroup_join(const int dirfd[CGROUP_N_CTL], const bool v2[CGROUP_N_CTL], const cgroup_limits *l,
                unsigned mask, rouse_errbuf *eb)
{
    char name[24];
    snprintf(name, sizeof(name), "%d", (int)getpid());
    return make_and_enter(dirfd, v2, l, mask, name, eb);
}

int cgroup_prepare(const int dirfd[CGROUP_N_CTL], const bool v2[CGROUP_N_CTL],
                   const cgroup_limits *l, unsigned mask, const char *name, rouse_errbuf *eb)
{
    return make_and_enter(dirfd, v2, l, mask, name, eb);
}

int cgroup_claim(const int dirfd[CGROUP_N_CTL], unsigned mask, const char *from, pid_t pid,
                 rouse_errbuf *eb)
{
    char name[24];
    snprintf(name, sizeof(name), "%d", (int)pid);
    for (int c = 0; c < CGROUP_N_CTL; c++) {
        if (dirfd[c] < 0 || !(mask >> c & 1)) continue;
        if (renameat(dirfd[c], from, dirfd[c], name) < 0)
            return rouse_err_set(eb, ROUSE_EIO, "cgroup %s: renaming %s to %s: %s", ctl_names[c],
                                 from, name, strerror(errno));
    }
    return 0;
}

int cgroup_make_open(const int dirfd[CGROUP_N_CTL], const bool v2[CGROUP_N_CTL],
                     const cgroup_limits *l, unsigned mask, const char *name,
                     int procs_fd[CGROUP_N_CTL], rouse_errbuf *eb)
{
    for (int c = 0; c < CGROUP_N_CTL; c++)
        procs_fd[c] = -1;
    for (int c = 0; c < CGROUP_N_CTL; c++) {
        if (dirfd[c] < 0 || !(mask >> c & 1)) continue;
        int rc = make_group(dirfd[c], v2[c], c, l, name, eb);
        if (rc < 0) return rc;
        char path[96];
        snprintf(path, sizeof(path), "%s/cgroup.procs", name);
        procs_fd[c] = openat(dirfd[c], path, O_WRONLY | O_CLOEXEC);
        if (procs_fd[c] < 0)
            return rouse_err_set(eb, ROUSE_EIO, "cgroup %s: opening %s: %s", ctl_names[c], path,
                                 strerror(errno));
    }
    return 0;
}

int cgroup_enter_fds(const int procs_fd[CGROUP_N_CTL], rouse_errbuf *eb)
{
    for (int c = 0; c < CGROUP_N_CTL; c++) {
        if (procs_fd[c] < 0) continue;
        if (write(procs_fd[c], "0", 1) < 0)
            return rouse_err_set(eb, ROUSE_EIO, "cgroup %s: joining: %s", ctl_names[c],
                                 strerror(errno));
    }
    return 0;
}

void cgroup_remove_prefix(const cgroup_roots *r, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (int c = 0; c < CGROUP_N_CTL; c++) {
        if (!r->dir[c][0]) continue;
        DIR *d = opendir(r->dir[c]);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strncmp(e->d_name, prefix, pl) != 0) continue;
            char sub[PATH_MAX];
            if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", r->dir[c], e->d_name) < sizeof(sub))
                rmdir(sub);
        }
        closedir(d);
    }
}
