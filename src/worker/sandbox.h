/*
 * The sandbox of a template and of the instances it forks (isolation tier
 * "sandbox"; docs/security.md says what it guarantees and what it does
 * not). A template enters it once its kernels are prepared, before it
 * reports READY and before it forks anything:
 *
 *   - new mount, network, IPC and UTS namespaces: no network device but a
 *     down loopback, and an empty read-only root (a tmpfs, pivot_root'ed),
 *     so nothing of the data directory, another tenant's blobs or the host
 *     is reachable by name; the plan stays mapped, the sockets to serve
 *     stay open, and nothing else is;
 *   - rlimits: no core files, at most SANDBOX_NOFILE descriptors;
 *   - every capability dropped but CAP_SETUID and CAP_SETGID (to hand its
 *     instances the tenant's ids), no_new_privs, and a seccomp allow-list
 *     of what a template does (sandbox_filter.c).
 *
 * Instances and spares start in the tenant's pid namespace (its init is a
 * reaper serve keeps per tenant; the template itself stays in serve's):
 * they see no process of another tenant, nor serve, nor their template.
 * Their parent is serve (worker_fork_sibling), which reaps them.
 *
 * Each instance, right after its fork and before it touches its memory
 * (the spare's warm-up included), has control groups of its own with the
 * function's limits (cgroup.h: it starts inside groups its template
 * prepared, which the template renames after its pid), becomes the tenant's unprivileged uid and
 * gid (no supplementary groups, no capability left) and stacks the
 * instance's allow-list, which takes away what only a template needs:
 * fork (threads stay allowed), opening files, sockets, changing ids.
 *
 * A failure to set any of this up is an error, never a quiet way around:
 * the template reports it and ends.
 */
#ifndef ROUSE_WORKER_SANDBOX_H
#define ROUSE_WORKER_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rouse/err.h"
#include "worker/cgroup.h"

#define SANDBOX_NOFILE 256
/* The placeholder the instance's compiled filter compares tgkill's first
 * argument with, replaced by the instance's pid after its fork. */
#define SANDBOX_PID_SLOT 0x5eed5eedu
#define SANDBOX_PID_SLOTS_MAX 4

/* The ids of a tenant's instances: SANDBOX_UID_BASE plus the 32-bit
 * FNV-1a hash of the tenant's name modulo SANDBOX_UID_SPAN, the same for
 * uid and gid; stable across restarts and machines, never root, never a
 * system or ordinary user's id. */
#define SANDBOX_UID_BASE 2000000000u
#define SANDBOX_UID_SPAN 100000000u
uint32_t sandbox_tenant_id(const char *tenant);

/* What a template is told (rouse __template --sandbox ...). */
typedef struct sandbox_opts {
    bool on;
    uint32_t uid, gid;
    cgroup_limits limits;
    const char *cgroup_dir[CGROUP_N_CTL]; /* serve's roots, or NULL */
    bool cgroup_v2[CGROUP_N_CTL];
    /* The tenant's pid namespace: that of process pidns_pid (its reaper,
     * as serve sees it), whose inode must be pidns_ino; 0: none. */
    int pidns_pid;
    uint64_t pidns_ino;
} sandbox_opts;

/* The steps of a template's entry, timed (sandbox.step_ns): what a start
 * from zero pays for the sandbox, step by step (bench/sandbox_cost). */
typedef enum sandbox_step {
    SANDBOX_STEP_PIDNS,   /* the cgroup roots opened, the tenant's pid namespace entered */
    SANDBOX_STEP_UNSHARE, /* new mount, network, IPC and UTS namespaces */
    SANDBOX_STEP_ROOT,    /* the empty read-only root */
    SANDBOX_STEP_LIMITS,  /* hostname, rlimits */
    SANDBOX_STEP_COMPILE, /* the allow-lists compiled, or the zygote's copied */
    SANDBOX_STEP_PRIVS,   /* capabilities dropped, no_new_privs, the template's list loaded */
    SANDBOX_STEP_GROUPS,  /* the wait for its move into its first instance's groups
                           * (made, limited and joined on a thread of its own during
                           * the root, limits and compile steps) beyond those steps */
    SANDBOX_N_STEPS
} sandbox_step;

/* A step's name, for reports. */
const char *sandbox_step_name(sandbox_step s);

/* What a template holds once inside: the cgroup roots (directory
 * descriptors opened before the root went away) and the instance's
 * allow-list, compiled once. */
typedef struct sandbox {
    bool on;
    uint32_t uid, gid;
    cgroup_limits limits;
    int cg_fd[CGROUP_N_CTL];
    bool cg_v2[CGROUP_N_CTL];
    bool can_renice; /* RLIMIT_NICE lets it leave SCHED_IDLE once unprivileged */
    /* The groups the template sits in, made for its next instance
     * (cgroup_prepare), or "" when its instances join their own. */
    char next[32];
    unsigned next_seq;
    bool no_prejoin; /* cgroup v2, or preparing failed: instances join their own */
    /* For a fork without prepared groups: the groups made for it and
     * their cgroup.procs, open for the new process to join through. */
    char joining[32];
    int join_fd[CGROUP_N_CTL];
    bool pidns;   /* its instances start in the tenant's pid namespace */
    void *filter; /* struct sock_filter[filter_len]; owned */
    unsigned short filter_len;
    unsigned short pid_slots[SANDBOX_PID_SLOTS_MAX]; /* instructions to get the pid */
    int n_pid_slots;
    uint64_t step_ns[SANDBOX_N_STEPS];     /* its entry's steps, CLOCK_MONOTONIC */
    uint64_t step_cpu_ns[SANDBOX_N_STEPS]; /* the same in CPU time of the entering thread */
    uint64_t moved_ns;                     /* the move into the first groups, start to join */
    uint64_t moved_cpu_ns;                 /* its CPU time (its thread's) */
} sandbox;

void sandbox_init(sandbox *sb);
/* Frees what sb holds (its descriptors, the compiled filter). */
void sandbox_fini(sandbox *sb);

/* In the template, kernels prepared, nothing forked: enters the sandbox
 * (see above). Does nothing when !o->on. */
int sandbox_template_enter(sandbox *sb, const sandbox_opts *o, rouse_errbuf *eb);

/* In an instance right after its fork: its control groups (those its
 * template sat in, or those made for it, which it joins), the tenant's
 * ids, the instance's allow-list. Closes the template's descriptors. */
int sandbox_instance_enter(sandbox *sb, rouse_errbuf *eb);

/* In the template after a fork (and once on entry): moves it into fresh
 * groups for its next instance (cgroup.h, cgroup_prepare). On failure its
 * next instances join groups of their own, slower. */
int sandbox_next(sandbox *sb, rouse_errbuf *eb);

/* In the template right before forking an instance or a spare: when it
 * sits in no prepared groups, makes the new process's groups now (mkdir
 * and limits, no move) and opens what it joins them through. */
int sandbox_before_fork(sandbox *sb, rouse_errbuf *eb);

/* In the template right after that fork (pid as serve sees it, or < 0
 * when the fork failed): the groups the new process started in or joins
 * are renamed after its pid, for serve to find when it reaps it. */
void sandbox_after_fork(sandbox *sb, pid_t pid);

/* In the zygote (isolation "sandbox"), before it forks anything: keeps
 * only the capabilities its templates need to enter their sandbox
 * (SANDBOX_ZYGOTE_CAPS), compiles the templates' and instances'
 * allow-lists (which its templates then inherit instead of compiling them
 * on a start from zero), sets no_new_privs and loads a deny-list of what
 * neither it nor a template before its sandbox ever does: exec, ptrace,
 * kernel modules, kexec, reboot, BPF, perf events, keyrings, clock
 * changes, raw I/O ports, process_vm_*, userfaultfd, swap, accounting,
 * open_by_handle_at. */
int sandbox_zygote_enter(rouse_errbuf *eb);

/* serve's side at start: whether this machine lets a template enter the
 * sandbox (tried in a child process: namespaces, the empty root, the
 * filters). 0, or < 0 with why in eb. */
int sandbox_probe(rouse_errbuf *eb);

/* The allow-lists (sandbox_filter.c). Compiles the template's into *prog
 * (BPF instructions, *len of them; owned: free with free()), and the
 * instance's too, with the indexes of the instructions that must get the
 * instance's pid in slots; neither is loaded. sandbox_filter_load loads a
 * compiled one in the calling thread (no_new_privs set first). The
 * zygote compiles both once (sandbox_zygote_enter) for its templates. */
int sandbox_filter_template(void **prog, unsigned short *len, rouse_errbuf *eb);
int sandbox_filter_load(const void *prog, unsigned short len, rouse_errbuf *eb);
int sandbox_filter_zygote(rouse_errbuf *eb);
int sandbox_filter_instance(void **prog, unsigned short *len, unsigned short *slots, int *n_slots,
                            rouse_errbuf *eb);

#endif
