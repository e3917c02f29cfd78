/*
 * The seccomp allow-lists of the sandbox (sandbox.h), built with
 * libseccomp. Anything not listed fails with EPERM (ENOSYS for clone3, so
 * that the C library falls back to clone, which is checked by flags).
 *
 * The template's list is what a template does once its kernels are
 * prepared: its messages with serve, fork (of instances and spares),
 * waiting for its intermediates, and what its instances do before they
 * stack their own list (joining control groups through the descriptors the
 * template holds, taking the tenant's ids). The instance's list is what
 * inference needs: memory (mmap, including shared regions and the
 * executable pages oneDNN generated before), futexes and threads for
 * OpenMP (clone only with CLONE_THREAD), its socket (recvmsg/sendmsg on
 * descriptors it holds), memfds for replies, clocks, signals to its own
 * threads. No open, no socket, no fork, no exec, no id changes, no kill:
 * tgkill only to its own process (raise, abort), whose pid the instance
 * writes into the compiled program after its fork (SANDBOX_PID_SLOT).
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "worker/sandbox.h"

/* Both lists. */
/* clang-format off */
static const int common_calls[] = {
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64),
    SCMP_SYS(pwrite64), SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek),
    SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect), SCMP_SYS(madvise),
    SCMP_SYS(brk), SCMP_SYS(futex), SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity),
    SCMP_SYS(sched_setaffinity), SCMP_SYS(sched_getparam), SCMP_SYS(sched_getscheduler),
    SCMP_SYS(sched_setscheduler), SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep),
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(getpid),
    SCMP_SYS(gettid), SCMP_SYS(getppid), SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
    SCMP_SYS(getegid), SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack), SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(set_robust_list),
    SCMP_SYS(get_robust_list), SCMP_SYS(rseq),
    SCMP_SYS(set_tid_address), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom),
    SCMP_SYS(sendto), SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(memfd_create),
    SCMP_SYS(ftruncate), SCMP_SYS(fcntl), SCMP_SYS(dup), SCMP_SYS(getrandom), SCMP_SYS(uname),
    SCMP_SYS(sysinfo), SCMP_SYS(getrlimit), SCMP_SYS(membarrier), SCMP_SYS(restart_syscall),
    SCMP_SYS(getcpu), SCMP_SYS(sched_get_priority_max), SCMP_SYS(sched_get_priority_min),
};
/* clang-format on */

/* The template's own, on top. */
/* clang-format off */
static const int template_calls[] = {
    SCMP_SYS(clone), SCMP_SYS(wait4), SCMP_SYS(waitid), SCMP_SYS(socketpair), SCMP_SYS(openat),
    SCMP_SYS(mkdirat), SCMP_SYS(setresuid), SCMP_SYS(setresgid), SCMP_SYS(setgroups),
    SCMP_SYS(capget), SCMP_SYS(prctl), SCMP_SYS(seccomp), SCMP_SYS(dup2), SCMP_SYS(dup3),
    SCMP_SYS(pipe2), SCMP_SYS(shutdown), SCMP_SYS(prlimit64), SCMP_SYS(tgkill), SCMP_SYS(tkill),
    SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(faccessat), SCMP_SYS(faccessat2),
};
/* clang-format on */

static int add_all(scmp_filter_ctx ctx, const int *calls, size_t n, rouse_errbuf *eb)
{
    for (size_t i = 0; i < n; i++) {
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0);
        if (rc < 0) {
            char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, calls[i]);
            rc = rouse_err_set(eb, ROUSE_EIO, "sandbox filter: %s: %s", name ? name : "?",
                               strerror(-rc));
            free(name);
            return rc;
        }
    }
    return 0;
}

/* An argument comparison with every field set (libseccomp's SCMP_A0..5
 * macros leave datum_b out, which clang's -Wextra refuses). For
 * SCMP_CMP_MASKED_EQ, a is the mask and b the value. */
static struct scmp_arg_cmp arg_cmp(unsigned int arg, enum scmp_compare op, scmp_datum_t a,
                                   scmp_datum_t b)
{
    struct scmp_arg_cmp c = {.arg = arg, .op = op, .datum_a = a, .datum_b = b};
    return c;
}

/* The list every process in the sandbox starts from: the common calls,
 * clone3 refused as unknown, prlimit64 only to read. */
static int base(scmp_filter_ctx *out, rouse_errbuf *eb)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!ctx) return rouse_err_set(eb, ROUSE_ENOMEM, "sandbox filter: seccomp_init failed");
    int rc = add_all(ctx, common_calls, sizeof(common_calls) / sizeof(common_calls[0]), eb);
    if (rc == 0 && seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) < 0)
        rc = rouse_err_set(eb, ROUSE_EIO, "sandbox filter: clone3");
    if (rc < 0) {
        seccomp_release(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

/* What the zygote and a template before its sandbox never do. */
/* clang-format off */
static const int zygote_denied[] = {
    SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv),
    SCMP_SYS(process_vm_writev), SCMP_SYS(init_module), SCMP_SYS(finit_module),
    SCMP_SYS(delete_module), SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load), SCMP_SYS(reboot),
    SCMP_SYS(bpf), SCMP_SYS(perf_event_open), SCMP_SYS(keyctl), SCMP_SYS(add_key),
    SCMP_SYS(request_key), SCMP_SYS(settimeofday), SCMP_SYS(clock_settime), SCMP_SYS(adjtimex),
    SCMP_SYS(clock_adjtime), SCMP_SYS(iopl), SCMP_SYS(ioperm), SCMP_SYS(userfaultfd),
    SCMP_SYS(swapon), SCMP_SYS(swapoff), SCMP_SYS(acct), SCMP_SYS(open_by_handle_at),
    SCMP_SYS(name_to_handle_at), SCMP_SYS(lookup_dcookie), SCMP_SYS(quotactl),
    SCMP_SYS(syslog), SCMP_SYS(vhangup),
};
/* clang-format on */

int sandbox_filter_zygote(rouse_errbuf *eb)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) return rouse_err_set(eb, ROUSE_ENOMEM, "sandbox filter: seccomp_init failed");
    int rc = 0;
    size_t n = sizeof(zygote_denied) / sizeof(zygote_denied[0]);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), zygote_denied[i], 0)) < 0)
            rc = rouse_err_set(eb, ROUSE_EIO, "sandbox filter: zygote rule %zu: %s", i,
                               strerror(-rc));
    if (rc == 0 && (rc = seccomp_load(ctx)) < 0)
        rc =
            rouse_err_set(eb, ROUSE_EIO, "sandbox filter: loading the zygote's: %s", strerror(-rc));
    seccomp_release(ctx);
    return rc;
}

/* ctx's program as BPF instructions (exported through a memfd) into
 * *prog (owned: free()) and *len. Releases ctx. */
static int export_bpf(scmp_filter_ctx ctx, void **prog, unsigned short *len, rouse_errbuf *eb)
{
    int fd = memfd_create("rouse-filter", MFD_CLOEXEC);
    if (fd < 0) {
        seccomp_release(ctx);
        return rouse_err_set(eb, ROUSE_EIO, "sandbox filter: memfd: %s", strerror(errno));
    }
    int rc = seccomp_export_bpf(ctx, fd);
    seccomp_release(ctx);
    off_t size = rc == 0 ? lseek(fd, 0, SEEK_END) : -1;
    /* One BPF instruction is 8 bytes; a program holds at most 4096. */
    if (rc < 0 || size <= 0 || size % 8 != 0 || size / 8 > 4096) {
        close(fd);
        return rouse_err_set(eb, ROUSE_EIO, "sandbox filter: export failed");
    }
    void *buf = malloc((size_t)size);
    if (!buf || pread(fd, buf, (size_t)size, 0) != size) {
        free(buf);
        close(fd);
        return rouse_err_set(eb, ROUSE_EIO, "sandbox filter: reading the export");
    }
    close(fd);
    *prog = buf;
    *len = (unsigned short)(size / 8);
    return 0;
}

int sandbox_filter_template(void **prog, unsigned short *len, rouse_errbuf *eb)
{
    *prog = NULL;
    *len = 0;
    scmp_filter_ctx ctx;
    int rc = base(&ctx, eb);
    if (rc < 0) return rc;
    rc = add_all(ctx, template_calls, sizeof(template_calls) / sizeof(template_calls[0]), eb);
    if (rc < 0) {
        seccomp_release(ctx);
        return rc;
    }
    return export_bpf(ctx, prog, len, eb);
}

int sandbox_filter_load(const void *prog, unsigned short len, rouse_errbuf *eb)
{
    struct sock_fprog fp = {.len = len, .filter = (struct sock_filter *)prog};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "sandbox filter: loading: %s", strerror(errno));
    return 0;
}

/* The instructions that compare with SANDBOX_PID_SLOT: their indexes in
 * slots (at most SANDBOX_PID_SLOTS_MAX). How many, or -1 for too many. */
static int find_slots(const struct sock_filter *f, unsigned short len, unsigned short *slots)
{
    int n = 0;
    for (unsigned short i = 0; i < len; i++) {
        if (f[i].code != (BPF_JMP | BPF_JEQ | BPF_K) || f[i].k != SANDBOX_PID_SLOT) continue;
        if (n == SANDBOX_PID_SLOTS_MAX) return -1;
        slots[n++] = i;
    }
    return n;
}

int sandbox_filter_instance(void **prog, unsigned short *len, unsigned short *slots, int *n_slots,
                            rouse_errbuf *eb)
{
    *prog = NULL;
    *len = 0;
    *n_slots = 0;
    scmp_filter_ctx ctx;
    int rc = base(&ctx, eb);
    if (rc < 0) return rc;
    /* Threads, never processes; prlimit64 to read limits; prctl only to
     * name threads. */
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                         arg_cmp(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)) < 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1,
                         arg_cmp(2, SCMP_CMP_EQ, 0, 0)) < 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                         arg_cmp(0, SCMP_CMP_EQ, PR_SET_NAME, 0)) < 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                         arg_cmp(0, SCMP_CMP_EQ, PR_GET_NAME, 0)) < 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                         arg_cmp(0, SCMP_CMP_EQ, SANDBOX_PID_SLOT, 0)) < 0) {
        seccomp_release(ctx);
        return rouse_err_set(eb, ROUSE_EIO, "sandbox filter: argument rules");
    }
    /* The program itself, exported, so that an instance loads it with one
     * prctl instead of compiling it after each fork. */
    void *buf;
    unsigned short n_ins;
    if ((rc = export_bpf(ctx, &buf, &n_ins, eb)) < 0) return rc;
    int n = find_slots(buf, n_ins, slots);
    if (n <= 0) {
        free(buf);
        return rouse_err_set(eb, ROUSE_EIO,
                             "sandbox filter: the pid comparison is not where "
                             "it was expected in the compiled program");
    }
    *prog = buf;
    *len = n_ins;
    *n_slots = n;
    return 0;
}
