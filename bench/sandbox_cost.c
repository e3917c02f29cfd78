/*
 * What the sandbox adds to the fork path of an instance (the "from
 * template" start): a process enters the template's sandbox once (as a
 * template does), then forks N children as it would fork instances; each
 * child reads the clock right after its fork, runs what an instance runs
 * there (sandbox_instance_enter: its control groups joined when it found
 * none prepared, the tenant's ids, the instance's filter), reads the clock again
 * and reports both through a pipe. With --process, the same forks without
 * the sandbox: the difference of the medians is the sandbox's cost.
 * Also the template's one-time entry (namespaces, root, filters), and
 * what serve pays on its loop to remove an instance's groups when it
 * reaps it. Like a template, it renames the groups the child took after
 * its pid and moves into fresh groups after each fork (sandbox.h).
 *
 *   build/sandbox_cost [--process] [--gap-ms MS] [N]   (root; N default 200)
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

#include "worker/cgroup.h"
#include "worker/sandbox.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
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
    printf("%-34s median %8.1f us   p90 %8.1f us   (n=%d)\n", what, v[n / 2], v[n * 9 / 10], n);
}

int main(int argc, char **argv)
{
    int n = 200, gap_ms = 0;
    bool on = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--process") == 0)
            on = false;
        else if (strcmp(argv[i], "--gap-ms") == 0 && i + 1 < argc)
            gap_ms = atoi(argv[++i]);
        else
            n = atoi(argv[i]);
    }
    if (n < 1 || n > 100000) n = 200;
    cgroup_roots roots;
    char why[CGROUP_N_CTL][160];
    if (on) {
        cgroup_roots_make(&roots, why);
        for (int c = 0; c < CGROUP_N_CTL; c++)
            if (why[c][0]) fprintf(stderr, "sandbox_cost: %s\n", why[c]);
    }
    /* The "template": a child that enters the sandbox, then forks. */
    int pfd[2];
    if (pipe(pfd) < 0) return 1;
    pid_t tpl = fork();
    if (tpl == 0) {
        close(pfd[0]);
        sandbox_opts o = {.on = on, .uid = sandbox_tenant_id("default")};
        o.gid = o.uid;
        o.limits = (cgroup_limits){.memory_mb = 512, .cpu_weight = 512, .pids_max = 17};
        for (int c = 0; on && c < CGROUP_N_CTL; c++) {
            o.cgroup_dir[c] = roots.dir[c][0] ? roots.dir[c] : NULL;
            o.cgroup_v2[c] = roots.v2[c];
        }
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
                uint64_t c0 = now_ns();
                int rc = sandbox_instance_enter(&sb, &eb);
                uint64_t c1 = now_ns();
                double r[2] = {(double)(c0 - f0) / 1e3, (double)(c1 - c0) / 1e3};
                if (rc < 0) r[1] = -1;
                _exit(write(pfd[1], r, sizeof(r)) == sizeof(r) ? 0 : 1);
            }
            if (p < 0) _exit(1);
            /* As the template does after each fork: into fresh groups for
             * the next one (off the instance's path; timed). */
            sandbox_after_fork(&sb, p);
            uint64_t n0 = now_ns();
            if (on && sandbox_next(&sb, &eb) < 0) fprintf(stderr, "sandbox_cost: %s\n", eb.msg);
            double nx[2] = {-3, (double)(now_ns() - n0) / 1e3};
            if (write(pfd[1], nx, sizeof(nx)) != sizeof(nx)) _exit(1);
            while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
                ;
            if (gap_ms) usleep((useconds_t)gap_ms * 1000);
            /* The child's groups, as serve removes them when it reaps (on
             * its loop: timed too). */
            double rm[2] = {-2, 0};
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
    double *rm_us = calloc((size_t)n, sizeof(double)), *next_us = calloc((size_t)n, sizeof(double));
    int got = 0, bad = 0, n_rm = 0, n_next = 0;
    if (!fork_us || !sb_us || !rm_us || !next_us ||
        read(pfd[0], &enter_us, sizeof(enter_us)) != sizeof(enter_us)) {
        fprintf(stderr, "sandbox_cost: the template failed\n");
        waitpid(tpl, NULL, 0);
        return 1;
    }
    double r[2];
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
        sb_us[got++] = r[1];
    }
    waitpid(tpl, NULL, 0);
    if (on) cgroup_roots_remove(&roots);
    printf("sandbox %s: template entry %.1f us\n", on ? "on" : "off", enter_us);
    report("fork to the child's first step", fork_us, got);
    report("instance entry (cgroups, ids, filter)", sb_us, got);
    if (on) report("serve: removing its groups at reap", rm_us, n_rm);
    if (on) report("template: next groups (off the path)", next_us, n_next);
    free(rm_us);
    free(next_us);
    free(fork_us);
    free(sb_us);
    return bad ? 1 : 0;
}
