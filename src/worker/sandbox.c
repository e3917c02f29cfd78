/*
 * Entering the sandbox (see sandbox.h): namespaces, the empty root,
 * rlimits, capabilities, ids and the order they must come in. Each step
 * that fails says which and why; nothing here falls back.
 */
#include "worker/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/timeutil.h"

uint32_t sandbox_tenant_id(const char *tenant)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)tenant; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return SANDBOX_UID_BASE + h % SANDBOX_UID_SPAN;
}

const char *sandbox_step_name(sandbox_step s)
{
    static const char *const names[SANDBOX_N_STEPS] = {
        "cgroup roots, tenant's pid namespace",
        "unshare mnt, net, ipc, uts",
        "empty read-only root",
        "hostname, rlimits",
        "allow-lists compiled (or copied)",
        "caps, no_new_privs, template filter",
        "first groups' move, wait beyond those",
    };
    return (unsigned)s < SANDBOX_N_STEPS ? names[s] : "?";
}

/* CPU time of the calling thread. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Records step s as ending now, having begun at *t (and *c in CPU time of
 * the calling thread); both move on. */
static void step_done(sandbox *sb, sandbox_step s, uint64_t *t, uint64_t *c)
{
    uint64_t n = rouse_now_ns(), nc = thread_cpu_ns();
    sb->step_ns[s] = n - *t;
    sb->step_cpu_ns[s] = nc - *c;
    *t = n;
    *c = nc;
}

void sandbox_init(sandbox *sb)
{
    memset(sb, 0, sizeof(*sb));
    for (int c = 0; c < CGROUP_N_CTL; c++)
        sb->cg_fd[c] = sb->join_fd[c] = -1;
}

static void close_join_fds(sandbox *sb)
{
    for (int c = 0; c < CGROUP_N_CTL; c++) {
        if (sb->join_fd[c] >= 0) close(sb->join_fd[c]);
        sb->join_fd[c] = -1;
    }
}

static void close_cgroups(sandbox *sb)
{
    for (int c = 0; c < CGROUP_N_CTL; c++) {
        if (sb->cg_fd[c] >= 0) close(sb->cg_fd[c]);
        sb->cg_fd[c] = -1;
    }
    close_join_fds(sb);
}

/* Whether an instance controller is in cgroup v2, whose groups cannot be
 * renamed: instances then join groups of their own, named by their pid. */
static bool instance_v2(const sandbox *sb)
{
    for (int c = 0; c < CGROUP_N_CTL; c++)
        if ((CGROUP_MASK_INSTANCE >> c & 1) && sb->cg_fd[c] >= 0 && sb->cg_v2[c]) return true;
    return false;
}

/* Makes the caller's children start in the pid namespace of process pid
 * (the tenant's reaper), checked to be the one serve named by its inode. */
static int enter_pidns(int pid, uint64_t ino, rouse_errbuf *eb)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/pid", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rouse_err_set(eb, ROUSE_EIO, "sandbox: the tenant's pid namespace (%s): %s", path,
                             strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_ino != ino)
        rc = rouse_err_set(eb, ROUSE_EIO,
                           "sandbox: process %d is no longer the tenant's pid namespace's reaper",
                           pid);
    else if (setns(fd, CLONE_NEWPID) < 0)
        rc = rouse_err_set(eb, ROUSE_EIO, "sandbox: entering the tenant's pid namespace: %s",
                           strerror(errno));
    close(fd);
    return rc;
}

void sandbox_fini(sandbox *sb)
{
    close_cgroups(sb);
    free(sb->filter);
    sb->filter = NULL;
}

/* An empty read-only root in a new mount namespace: a tiny tmpfs made the
 * root by pivot_root, the old root detached. Open descriptors (the plan's
 * mapping, sockets, cgroup directories) keep working. */
static int empty_root(rouse_errbuf *eb)
{
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "sandbox: making mounts private: %s", strerror(errno));
    if (mount("rouse-sandbox", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "size=4k,mode=0555") < 0)
        return rouse_err_set(eb, ROUSE_EIO, "sandbox: mounting the empty root: %s",
                             strerror(errno));
    if (chdir("/tmp") < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
        return rouse_err_set(eb, ROUSE_EIO, "sandbox: pivot_root: %s", strerror(errno));
    if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
        return rouse_err_set(eb, ROUSE_EIO, "sandbox: detaching the old root: %s", strerror(errno));
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "sandbox: making the root read-only: %s",
                             strerror(errno));
    return 0;
}

static int set_rlimits(sandbox *sb, rouse_errbuf *eb)
{
    struct rlimit core = {0, 0}, files = {SANDBOX_NOFILE, SANDBOX_NOFILE};
    if (setrlimit(RLIMIT_CORE, &core) < 0 || setrlimit(RLIMIT_NOFILE, &files) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "setrlimit: %s", strerror(errno));
    /* Nice 0 within reach of an unprivileged process lets a spare warming
     * up at SCHED_IDLE come back to SCHED_OTHER. Raising the limit takes
     * CAP_SYS_RESOURCE; without it spares warm up at normal priority. */
    struct rlimit nice;
    sb->can_renice = getrlimit(RLIMIT_NICE, &nice) == 0 && nice.rlim_max >= 20;
    if (!sb->can_renice) {
        nice.rlim_cur = nice.rlim_max = 20;
        sb->can_renice = setrlimit(RLIMIT_NICE, &nice) == 0;
    } else if (nice.rlim_cur < 20) {
        nice.rlim_cur = 20;
        setrlimit(RLIMIT_NICE, &nice);
    }
    return 0;
}

/* Keeps only the capabilities in keep (a mask of the first 64): in the
 * bounding set, then in the effective and permitted sets (the
 * inheritable set emptied). */
static int keep_caps(uint64_t keep, rouse_errbuf *eb)
{
    for (int c = 0; c <= CAP_LAST_CAP; c++) {
        if (c < 64 && (keep >> c & 1)) continue;
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            return rouse_err_set(eb, ROUSE_EIO, "sandbox: dropping capability %d: %s", c,
                                 strerror(errno));
    }
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "sandbox: capget: %s", strerror(errno));
    for (int i = 0; i < 2; i++) {
        uint32_t k = (uint32_t)(keep >> (32 * i));
        d[i].effective &= k;
        d[i].permitted &= k;
        d[i].inheritable = 0;
    }
    if (syscall(SYS_capset, &h, d) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "sandbox: capset: %s", strerror(errno));
    return 0;
}

#define CAP(c) ((uint64_t)1 << (c))

/* The allow-lists compiled once by the zygote (sandbox_zygote_enter),
 * which its templates inherit with their fork: a start from zero does not
 * compile them. Kept for the process's life. */
static struct {
    void *tpl, *inst;
    unsigned short tpl_len, inst_len;
    unsigned short slots[SANDBOX_PID_SLOTS_MAX];
    int n_slots;
} compiled;

/* Copies of the allow-lists for a template: the instance's into sb (owned
 * there) and the template's into *tpl (owned: free()); compiled now unless
 * its zygote compiled them. */
static int template_filters(sandbox *sb, void **tpl, unsigned short *tpl_len, rouse_errbuf *eb)
{
    *tpl = NULL;
    if (!compiled.inst) {
        int rc = sandbox_filter_instance(&sb->filter, &sb->filter_len, sb->pid_slots,
                                         &sb->n_pid_slots, eb);
        return rc < 0 ? rc : sandbox_filter_template(tpl, tpl_len, eb);
    }
    sb->filter = malloc((size_t)compiled.inst_len * 8);
    *tpl = malloc((size_t)compiled.tpl_len * 8);
    if (!sb->filter || !*tpl) {
        free(*tpl);
        *tpl = NULL;
        return rouse_err_set(eb, ROUSE_ENOMEM, "sandbox: out of memory for the filters");
    }
    memcpy(sb->filter, compiled.inst, (size_t)compiled.inst_len * 8);
    memcpy(*tpl, compiled.tpl, (size_t)compiled.tpl_len * 8);
    sb->filter_len = compiled.inst_len;
    *tpl_len = compiled.tpl_len;
    memcpy(sb->pid_slots, compiled.slots, sizeof(sb->pid_slots));
    sb->n_pid_slots = compiled.n_slots;
    return 0;
}

int sandbox_zygote_enter(rouse_errbuf *eb)
{
    /* What its templates do as root before their sandbox: read the data
     * directory (DAC_*), enter namespaces, mount and pivot_root
     * (SYS_ADMIN), drop capabilities (SETPCAP), hand out ids (SETUID,
     * SETGID), write control groups, copy weights into huge pages
     * (IPC_LOCK), and a root spare's return from SCHED_IDLE (SYS_NICE). */
    uint64_t keep = CAP(CAP_CHOWN) | CAP(CAP_DAC_OVERRIDE) | CAP(CAP_DAC_READ_SEARCH) |
                    CAP(CAP_FOWNER) | CAP(CAP_KILL) | CAP(CAP_SETUID) | CAP(CAP_SETGID) |
                    CAP(CAP_SETPCAP) | CAP(CAP_IPC_LOCK) | CAP(CAP_SYS_ADMIN) | CAP(CAP_SYS_NICE) |
                    CAP(CAP_SYS_RESOURCE);
    int rc = keep_caps(keep, eb);
    if (rc < 0) return rc;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "sandbox: no_new_privs: %s", strerror(errno));
    if (!compiled.inst) {
        if ((rc = sandbox_filter_instance(&compiled.inst, &compiled.inst_len, compiled.slots,
                                          &compiled.n_slots, eb)) < 0)
            return rc;
        if ((rc = sandbox_filter_template(&compiled.tpl, &compiled.tpl_len, eb)) < 0) {
            free(compiled.inst);
            compiled.inst = NULL;
            return rc;
        }
    }
    return sandbox_filter_zygote(eb);
}

/* The template's move into its first instance's groups, on a thread of
 * its own (next_groups_thread): the move waits for an RCU grace period,
 * and so does detaching the old root (empty_root); the two waits overlap
 * instead of adding up. */
typedef struct next_groups_job {
    sandbox *sb;
    rouse_errbuf eb;
    int rc;
} next_groups_job;

static void *next_groups_thread(void *arg)
{
    next_groups_job *j = arg;
    j->rc = sandbox_next(j->sb, &j->eb);
    j->sb->moved_cpu_ns = thread_cpu_ns();
    return NULL;
}

int sandbox_template_enter(sandbox *sb, const sandbox_opts *o, rouse_errbuf *eb)
{
    sandbox_init(sb);
    if (!o->on) return 0;
    sb->on = true;
    sb->uid = o->uid;
    sb->gid = o->gid;
    sb->limits = o->limits;
    uint64_t t = rouse_now_ns(), tc = thread_cpu_ns();
    int rc;
    for (int c = 0; c < CGROUP_N_CTL; c++) {
        sb->cg_v2[c] = o->cgroup_v2[c];
        if (!o->cgroup_dir[c]) continue;
        sb->cg_fd[c] = open(o->cgroup_dir[c], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sb->cg_fd[c] < 0) {
            rc = rouse_err_set(eb, ROUSE_EIO, "sandbox: cgroup %s: %s", o->cgroup_dir[c],
                               strerror(errno));
            goto out_fini;
        }
    }
    /* Its own pid stays serve's view (its fork's return values are the
     * pids serve knows); what it forks starts in the tenant's namespace. */
    if (o->pidns_pid > 0) {
        if (instance_v2(sb)) {
            rc = rouse_err_set(eb, ROUSE_EINVAL,
                               "sandbox: a tenant's pid namespace needs cgroup v1 instance groups");
            goto out_fini;
        }
        if ((rc = enter_pidns(o->pidns_pid, o->pidns_ino, eb)) < 0) goto out_fini;
        sb->pidns = true;
    }
    step_done(sb, SANDBOX_STEP_PIDNS, &t, &tc);
    if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "sandbox: unshare: %s", strerror(errno));
        goto out_fini;
    }
    step_done(sb, SANDBOX_STEP_UNSHARE, &t, &tc);
    /* After the unshare, so that the new namespaces are not charged to the
     * instance's memory group; joined before capabilities, no_new_privs
     * and the filter, which are the calling thread's only. */
    next_groups_job job = {.sb = sb};
    rouse_errbuf_clear(&job.eb);
    pthread_t mover;
    bool moving = pthread_create(&mover, NULL, next_groups_thread, &job) == 0;
    if (!moving) {
        uint64_t c0 = thread_cpu_ns();
        job.rc = sandbox_next(sb, &job.eb);
        sb->moved_cpu_ns = thread_cpu_ns() - c0;
    }
    uint64_t t_moving = t;
    rc = empty_root(eb);
    step_done(sb, SANDBOX_STEP_ROOT, &t, &tc);
    if (rc == 0 && sethostname("rouse", 5) < 0)
        rc = rouse_err_set(eb, ROUSE_EIO, "sandbox: sethostname: %s", strerror(errno));
    if (rc == 0) rc = set_rlimits(sb, eb);
    step_done(sb, SANDBOX_STEP_LIMITS, &t, &tc);
    /* Compiled (unless the zygote did) while libseccomp may still
     * allocate and read freely. */
    void *tpl_filter = NULL;
    unsigned short tpl_len = 0;
    if (rc == 0) rc = template_filters(sb, &tpl_filter, &tpl_len, eb);
    step_done(sb, SANDBOX_STEP_COMPILE, &t, &tc);
    if (moving) pthread_join(mover, NULL);
    /* How long the move held up the entry beyond the steps it overlapped. */
    step_done(sb, SANDBOX_STEP_GROUPS, &t, &tc);
    sb->moved_ns = t - t_moving;
    /* Not fatal: instances then join groups of their own. */
    if (job.rc < 0) fprintf(stderr, "template: %s\n", job.eb.msg);
    if (rc == 0) rc = keep_caps(CAP(CAP_SETUID) | CAP(CAP_SETGID), eb);
    if (rc == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        rc = rouse_err_set(eb, ROUSE_EIO, "sandbox: no_new_privs: %s", strerror(errno));
    if (rc == 0) rc = sandbox_filter_load(tpl_filter, tpl_len, eb);
    free(tpl_filter);
    if (rc < 0) goto out_fini;
    step_done(sb, SANDBOX_STEP_PRIVS, &t, &tc);
    return 0;
out_fini:
    sandbox_fini(sb);
    sb->on = false;
    return rc;
}

int sandbox_next(sandbox *sb, rouse_errbuf *eb)
{
    sb->next[0] = '\0';
    if (!sb->on) return 0;
    if (sb->no_prejoin) return 0;
    /* Renaming is cgroup v1's only. */
    if (instance_v2(sb)) {
        sb->no_prejoin = true;
        return 0;
    }
    char name[sizeof(sb->next)];
    snprintf(name, sizeof(name), "n%d-%u", (int)getpid(), ++sb->next_seq);
    int rc = cgroup_prepare(sb->cg_fd, sb->cg_v2, &sb->limits, CGROUP_MASK_INSTANCE, name, eb);
    if (rc == 0)
        memcpy(sb->next, name, sizeof(name));
    else
        sb->no_prejoin = true;
    return rc;
}

int sandbox_before_fork(sandbox *sb, rouse_errbuf *eb)
{
    sb->joining[0] = '\0';
    if (!sb->on || sb->next[0] || instance_v2(sb)) return 0;
    char name[sizeof(sb->joining)];
    snprintf(name, sizeof(name), "j%d-%u", (int)getpid(), ++sb->next_seq);
    int rc = cgroup_make_open(sb->cg_fd, sb->cg_v2, &sb->limits, CGROUP_MASK_INSTANCE, name,
                              sb->join_fd, eb);
    memcpy(sb->joining, name, sizeof(name));
    if (rc < 0) sandbox_after_fork(sb, -1);
    return rc;
}

void sandbox_after_fork(sandbox *sb, pid_t pid)
{
    if (!sb->on) return;
    const char *name = sb->joining[0] ? sb->joining : sb->next;
    if (name[0] && pid > 0) {
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        /* Not fatal: the limits hold; serve then finds no group by that
         * pid to read the OOM count from or remove (serve removes the
         * rest with its root). */
        if (cgroup_claim(sb->cg_fd, CGROUP_MASK_INSTANCE, name, pid, &eb) < 0)
            fprintf(stderr, "template: %s\n", eb.msg);
    } else if (sb->joining[0]) { /* the fork failed: nobody joins them */
        for (int c = 0; c < CGROUP_N_CTL; c++)
            if ((CGROUP_MASK_INSTANCE >> c & 1) && sb->cg_fd[c] >= 0)
                unlinkat(sb->cg_fd[c], sb->joining, AT_REMOVEDIR);
    }
    close_join_fds(sb);
    if (pid > 0 && !sb->joining[0]) sb->next[0] = '\0'; /* the groups are the new process's */
    sb->joining[0] = '\0';
}

int sandbox_instance_enter(sandbox *sb, rouse_errbuf *eb)
{
    if (!sb->on) return 0;
    /* Groups its template sat in at the fork: already its own (the
     * template renames them). Groups made for it: joined now. Neither
     * (cgroup v2): made and joined, named by its pid. */
    int rc = 0;
    if (sb->joining[0])
        rc = cgroup_enter_fds(sb->join_fd, eb);
    else if (!sb->next[0])
        rc = cgroup_join(sb->cg_fd, sb->cg_v2, &sb->limits, CGROUP_MASK_INSTANCE, eb);
    close_cgroups(sb);
    if (rc < 0) return rc;
    gid_t g = (gid_t)sb->gid;
    if (setgroups(0, NULL) < 0 || setresgid(g, g, g) < 0 ||
        setresuid((uid_t)sb->uid, (uid_t)sb->uid, (uid_t)sb->uid) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "sandbox: taking the tenant's ids %u: %s",
                             (unsigned)sb->uid, strerror(errno));
    struct sock_filter *f = sb->filter;
    for (int i = 0; i < sb->n_pid_slots; i++)
        f[sb->pid_slots[i]].k = (uint32_t)getpid();
    struct sock_fprog prog = {.len = sb->filter_len, .filter = f};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "sandbox: loading the instance's filter: %s",
                             strerror(errno));
    return 0;
}

int sandbox_probe(rouse_errbuf *eb)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "sandbox probe: pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return rouse_err_set(eb, ROUSE_EIO, "sandbox probe: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(pfd[0]);
        rouse_errbuf ceb;
        rouse_errbuf_clear(&ceb);
        sandbox sb;
        sandbox_opts o = {.on = true, .uid = sandbox_tenant_id("default")};
        o.gid = o.uid;
        int rc = geteuid() != 0 ? rouse_err_set(&ceb, ROUSE_EUNSUPPORTED,
                                                "serve does not run as root: instances cannot "
                                                "be given a tenant's ids")
                                : sandbox_template_enter(&sb, &o, &ceb);
        if (rc == 0) rc = sandbox_instance_enter(&sb, &ceb);
        /* Inside both filters now: a socket must be refused. */
        if (rc == 0 && syscall(SYS_socket, AF_INET, SOCK_STREAM, 0) >= 0)
            rc = rouse_err_set(&ceb, ROUSE_EIO, "sandbox probe: the filter let a socket through");
        if (rc < 0) {
            ssize_t n = write(pfd[1], ceb.msg, strlen(ceb.msg));
            (void)n;
        }
        _exit(rc < 0 ? 1 : 0);
    }
    close(pfd[1]);
    char msg[sizeof(eb->msg)];
    ssize_t n, got = 0;
    while ((n = read(pfd[0], msg + got, sizeof(msg) - 1 - (size_t)got)) > 0)
        got += n;
    msg[got > 0 ? got : 0] = '\0';
    close(pfd[0]);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) return 0;
    return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "%s",
                         msg[0] ? msg : "sandbox probe: the test process died");
}
