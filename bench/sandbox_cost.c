/*
 * What the sandbox adds to the fork path of an instance (the "from
 * template" start): a process enters the template's sandbox once (as a
 * template does), then forks N children as it would fork instances; each
 * child reads the clock right after its fork, runs what an instance runs
 * there (sandbox_instance_enter: its control groups joined when it found
 * none prepared, the tenant's ids, the instance's filter), reads the clock again
 * and reports both through a pipe. With --process, the same forks without
 * the sandbox: the difference of the medians is the sandbox's cost.
 * The process first does what serve's zygote does (sandbox_zygote_enter:
 * its templates inherit the compiled allow-lists).
 * Also the template's one-time entry (namespaces, root, filters), step
 * by step over --entries K processes that each enter as a template does
 * (in a tenant's pid namespace, its reaper started as serve starts it),
 * which is what a start from zero pays, and what serve pays on its loop
 * to remove an instance's groups when it reaps it. Like a template, it renames the groups the child
 * took after its pid and moves into fresh groups after each fork (sandbox.h).
 *
 *   build/sandbox_cost [--process] [--gap-ms MS] [--entries K] [N]
 *   (root; N default 200, K default 20)
 *
 * --gap-ms waits between forks, as instances start in life: joining a
 * control group waits for an RCU grace period unless another join came
 * just before, so back-to-back forks hide what a lone start pays.
 *
 * Prints the median and p90 of the child's sandbox entry and of fork to
 * the child's first instruction, in microseconds. Control groups under the
 * caller's own, as serve makes them (cgroup_roots_make), removed at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/tenant_ns.h"
#include "worker/cgroup.h"
#include "worker/sandbox.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling process, all its threads (ended ones too). */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp);
    printf("%-38s median %8.1f us   p90 %8.1f us   (n=%d)\n", what, v[n / 2], v[n * 9 / 10], n);
}

/* The options of a template of the default tenant with 512 MB. */
static void template_opts(sandbox_opts *o, bool on, const cgroup_roots *roots)
{
    memset(o, 0, sizeof(*o));
    o->on = on;
    o->uid = o->gid = sandbox_tenant_id("default");
    o->limits = (cgroup_limits){.memory_mb = 512, .cpu_weight = 512, .pids_max = 17};
    for (int c = 0; on && c < CGROUP_N_CTL; c++) {
        o->cgroup_dir[c] = roots->dir[c][0] ? roots->dir[c] : NULL;
        o->cgroup_v2[c] = roots->v2[c];
    }
}

/* k processes enter the template's sandbox one after another (gap_ms
 * apart), in the default tenant's pid namespace; prints each step's median
 * and p90 in wall time and its median in CPU time. Rows: the steps, then
 * the move into the first groups (on its own thread, overlapped), then all
 * of the entry (CPU: the process's, both threads). */
#define ENTRY_ROWS (SANDBOX_N_STEPS + 2)
static int entry_steps(const cgroup_roots *roots, int k, int gap_ms)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    tenant_ns *t = tenant_ns_create();
    char arg[64];
    int ns_pid = 0;
    unsigned long long ns_ino = 0;
    if (!t || tenant_ns_arg(t, "default", arg, sizeof(arg), &eb) < 0 ||
        sscanf(arg, "%d:%llu", &ns_pid, &ns_ino) != 2) {
        fprintf(stderr, "sandbox_cost: the tenant's pid namespace: %s\n", eb.msg);
        tenant_ns_destroy(t);
        return -1;
    }
    double *wall[ENTRY_ROWS], *cpu[ENTRY_ROWS];
    bool have = true;
    for (int r = 0; r < ENTRY_ROWS; r++) {
        wall[r] = calloc((size_t)k, sizeof(double));
        cpu[r] = calloc((size_t)k, sizeof(double));
        have &= wall[r] && cpu[r];
    }
    int got = 0;
    for (int i = 0; i < k && have; i++) {
        int pfd[2];
        if (pipe(pfd) < 0) break;
        /* Per row: wall, CPU (ns). */
        uint64_t ns[ENTRY_ROWS][2];
        pid_t p = fork();
        if (p == 0) {
            close(pfd[0]);
            sandbox_opts o;
            template_opts(&o, true, roots);
            o.pidns_pid = ns_pid;
            o.pidns_ino = ns_ino;
            sandbox sb;
            uint64_t t0 = now_ns(), c0 = cpu_ns();
            if (sandbox_template_enter(&sb, &o, &eb) < 0) {
                fprintf(stderr, "sandbox_cost: %s\n", eb.msg);
                _exit(1);
            }
            uint64_t t1 = now_ns(), c1 = cpu_ns();
            for (int s = 0; s < SANDBOX_N_STEPS; s++) {
                ns[s][0] = sb.step_ns[s];
                ns[s][1] = sb.step_cpu_ns[s];
            }
            ns[SANDBOX_N_STEPS][0] = sb.moved_ns;
            ns[SANDBOX_N_STEPS][1] = sb.moved_cpu_ns;
            ns[SANDBOX_N_STEPS + 1][0] = t1 - t0;
            ns[SANDBOX_N_STEPS + 1][1] = c1 - c0;
            _exit(write(pfd[1], ns, sizeof(ns)) == sizeof(ns) ? 0 : 1);
        }
        close(pfd[1]);
        bool ok = p > 0 && read(pfd[0], ns, sizeof(ns)) == sizeof(ns);
        close(pfd[0]);
        if (p > 0)
            while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
                ;
        if (!ok) break;
        for (int r = 0; r < ENTRY_ROWS; r++) {
            wall[r][got] = (double)ns[r][0] / 1e3;
            cpu[r][got] = (double)ns[r][1] / 1e3;
        }
        got++;
        if (gap_ms) usleep((useconds_t)gap_ms * 1000);
    }
    tenant_ns_destroy(t);
    while (waitpid(-1, NULL, WNOHANG) > 0) /* the reaper */
        ;
    if (got > 0) {
        printf("template entry, step by step (%d entries, microseconds):\n", got);
        printf("%-40s %10s %10s %10s\n", "step", "wall p50", "wall p90", "CPU p50");
        for (int r = 0; r < ENTRY_ROWS; r++) {
            const char *name = r < SANDBOX_N_STEPS    ? sandbox_step_name((sandbox_step)r)
                               : r == SANDBOX_N_STEPS ? "(the move itself, on its thread)"
                                                      : "all of the entry";
            qsort(wall[r], (size_t)got, sizeof(double), cmp);
            qsort(cpu[r], (size_t)got, sizeof(double), cmp);
            printf("%-40s %10.1f %10.1f %10.1f\n", name, wall[r][got / 2], wall[r][got * 9 / 10],
                   cpu[r][got / 2]);
        }
    }
    for (int r = 0; r < ENTRY_ROWS; r++) {
        free(wall[r]);
        free(cpu[r]);
    }
    return got == k ? 0 : -1;
}

int main(int argc, char **argv)
{
    int n = 200, gap_ms = 0, entries = 20;
    bool on = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--process") == 0)
            on = false;
        else if (strcmp(argv[i], "--gap-ms") == 0 && i + 1 < argc)
            gap_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--entries") == 0 && i + 1 < argc)
            entries = atoi(argv[++i]);
        else
            n = atoi(argv[i]);
    }
    if (n < 1 || n > 100000) n = 200;
    if (entries < 0 || entries > 10000) entries = 20;
    cgroup_roots roots;
    char why[CGROUP_N_CTL][160];
    if (on) {
        cgroup_roots_make(&roots, why);
        for (int c = 0; c < CGROUP_N_CTL; c++)
            if (why[c][0]) fprintf(stderr, "sandbox_cost: %s\n", why[c]);
        /* As serve's zygote, which forks the templates: capabilities, the
         * compiled allow-lists they inherit, its deny-list. */
        rouse_errbuf zeb;
        rouse_errbuf_clear(&zeb);
        if (sandbox_zygote_enter(&zeb) < 0) {
            fprintf(stderr, "sandbox_cost: %s\n", zeb.msg);
            return 1;
        }
        /* Template entries, step by step, in a tenant's pid namespace. */
        if (entries > 0 && entry_steps(&roots, entries, gap_ms) < 0) return 1;
    }
    /* The "template": a child that enters the sandbox, then forks. */
    int pfd[2];
    if (pipe(pfd) < 0) return 1;
    pid_t tpl = fork();
    if (tpl == 0) {
        close(pfd[0]);
        sandbox_opts o;
        template_opts(&o, on, &roots);
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        sandbox sb;
        uint64_t t0 = now_ns();
        if (sandbox_template_enter(&sb, &o, &eb) < 0) {
            fprintf(stderr, "sandbox_cost: %s\n", eb.msg);
            _exit(1);
        }
        double enter_us = (double)(now_ns() - t0) / 1e3;
        if (write(pfd[1], &enter_us, sizeof(enter_us)) != sizeof(enter_us)) _exit(1);
        for (int i = 0; i < n; i++) {
            if (sandbox_before_fork(&sb, &eb) < 0) {
                fprintf(stderr, "sandbox_cost: %s\n", eb.msg);
                _exit(1);
            }
            uint64_t f0 = now_ns();
            pid_t p = fork();
            if (p == 0) {
                uint64_t c0 = now_ns(), k0 = cpu_ns();
                int rc = sandbox_instance_enter(&sb, &eb);
                uint64_t c1 = now_ns();
                double r[3] = {(double)(c0 - f0) / 1e3, (double)(c1 - c0) / 1e3,
                               (double)(cpu_ns() - k0) / 1e3};
                if (rc < 0) r[1] = -1;
                _exit(write(pfd[1], r, sizeof(r)) == sizeof(r) ? 0 : 1);
            }
            if (p < 0) _exit(1);
            /* As the template does after each fork: into fresh groups for
             * the next one (off the instance's path; timed). */
            sandbox_after_fork(&sb, p);
            uint64_t n0 = now_ns();
            if (on && sandbox_next(&sb, &eb) < 0) fprintf(stderr, "sandbox_cost: %s\n", eb.msg);
            double nx[3] = {-3, (double)(now_ns() - n0) / 1e3, 0};
            if (write(pfd[1], nx, sizeof(nx)) != sizeof(nx)) _exit(1);
            while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
                ;
            if (gap_ms) usleep((useconds_t)gap_ms * 1000);
            /* The child's groups, as serve removes them when it reaps (on
             * its loop: timed too). */
            double rm[3] = {-2, 0, 0};
            if (on) {
                uint64_t r0 = now_ns();
                bool busy;
                cgroup_instance_ended(&roots, p, &busy);
                rm[1] = (double)(now_ns() - r0) / 1e3;
            }
            if (write(pfd[1], rm, sizeof(rm)) != sizeof(rm)) _exit(1);
        }
        _exit(0);
    }
    close(pfd[1]);
    double enter_us = 0;
    double *fork_us = calloc((size_t)n, sizeof(double)), *sb_us = calloc((size_t)n, sizeof(double));
    double *sb_cpu_us = calloc((size_t)n, sizeof(double));
    double *rm_us = calloc((size_t)n, sizeof(double)), *next_us = calloc((size_t)n, sizeof(double));
    int got = 0, bad = 0, n_rm = 0, n_next = 0;
    if (!fork_us || !sb_us || !sb_cpu_us || !rm_us || !next_us ||
        read(pfd[0], &enter_us, sizeof(enter_us)) != sizeof(enter_us)) {
        fprintf(stderr, "sandbox_cost: the template failed\n");
        waitpid(tpl, NULL, 0);
        return 1;
    }
    double r[3];
    while ((got < n || n_rm < n || n_next < n) && read(pfd[0], r, sizeof(r)) == sizeof(r)) {
        if (r[0] == -3) { /* the template's move into the next groups */
            next_us[n_next++] = r[1];
            continue;
        }
        if (r[0] == -2) { /* the removal of one child's groups */
            rm_us[n_rm++] = r[1];
            continue;
        }
        if (r[1] < 0) bad++;
        fork_us[got] = r[0];
        sb_cpu_us[got] = r[2];
        sb_us[got++] = r[1];
    }
    waitpid(tpl, NULL, 0);
    if (on) cgroup_roots_remove(&roots);
    printf("sandbox %s: template entry %.1f us\n", on ? "on" : "off", enter_us);
    report("fork to the child's first step", fork_us, got);
    report("instance entry (cgroups, ids, filter)", sb_us, got);
    report("  the same in CPU time", sb_cpu_us, got);
    if (on) report("serve: removing its groups at reap", rm_us, n_rm);
    if (on) report("template: next groups (off the path)", next_us, n_next);
    free(rm_us);
    free(next_us);
    free(fork_us);
    free(sb_us);
    free(sb_cpu_us);
    return bad ? 1 : 0;
}
