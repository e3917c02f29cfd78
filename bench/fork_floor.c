/*
 * The floor under instance starts per second: what the kernel charges for
 * a fork of a process that holds a prepared model (as a template does) and
 * for its child's end, with nothing of rouse's own start path around it.
 *
 * The process loads MODEL (an .onnx file or a compiled plan), creates a
 * session on 1 thread with its kernels prepared and runs nothing (a
 * template never runs the model), then forks N children, one at a time,
 * in three ways:
 *   exit    the child exits at once (fork + exit + reap: the kernel's
 *           part of a start and of an end);
 *   run     the child runs the model once on zeros, then exits (what an
 *           instance adds: its copy-on-write and zero-fill faults, its
 *           first run);
 *   bare    the same as exit, forked by a small process that has loaded
 *           nothing (a fork of the program before the model: the cost of
 *           the mappings and pages the model brings);
 *   again   the child runs the model twice and times each run itself:
 *           the first run of a process that never ran against its second
 *           (medians), the part of a start from zero that no start path
 *           can take off (its first touch of its activations, scratch and
 *           everything the run reads), whatever comes before the fork.
 * For each: wall time per child (fork to reap, median and p90), the
 * parent's CPU per fork (the copy of its page tables), the children's CPU
 * and minor faults per child (getrusage RUSAGE_CHILDREN: their faults, run
 * and exit), and
 * children per second on all cores if only that CPU were spent (cores x
 * 1000 / CPU ms per child). Also the parent's mappings, page-table size and
 * resident memory (/proc/self).
 *
 *   build/fork_floor MODEL [N]      (N default 200)
 *
 * MODEL: a compiled plan (`rouse compile`), mapped from its file as a
 * template maps it; an .onnx file is compiled in the process, its weights
 * then in anonymous memory that every fork copies the page tables of.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rouse/engine.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t self_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of the reaped children so far; their minor faults in *flt. */
static uint64_t children_cpu_ns(long *flt)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    *flt = ru.ru_minflt;
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The parent's mappings, page tables (kB) and resident memory (kB). */
static void describe_self(const char *what)
{
    int maps = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    if (f) {
        int c;
        while ((c = fgetc(f)) != EOF)
            maps += c == '\n';
        fclose(f);
    }
    long pte = -1, rss = -1;
    char line[256];
    f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof(line), f)) {
        sscanf(line, "VmPTE: %ld", &pte);
        sscanf(line, "VmRSS: %ld", &rss);
    }
    if (f) fclose(f);
    printf("%-6s parent: %d mappings, page tables %ld kB, resident %ld kB\n", what, maps, pte, rss);
}

/* n children of the calling process, each running `child` (NULL: exits at
 * once); prints the row. */
static void forks(const char *what, int n, rouse_session *child)
{
    double *wall = calloc((size_t)n, sizeof(double));
    if (!wall) return;
    long flt0, flt1;
    uint64_t self0 = self_cpu_ns(), kids0 = children_cpu_ns(&flt0);
    int got = 0;
    for (int i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        pid_t p = fork();
        if (p == 0) {
            int rc = 0;
            if (child) {
                rouse_errbuf eb;
                rouse_errbuf_clear(&eb);
                rc = rouse_session_warm_up(child, &eb) < 0;
            }
            _exit(rc);
        }
        if (p < 0) break;
        int ws;
        if (waitpid(p, &ws, 0) != p || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
            fprintf(stderr, "fork_floor: a child failed\n");
            break;
        }
        wall[got++] = (double)(now_ns() - t0) / 1e3;
    }
    double self_ms = (double)(self_cpu_ns() - self0) / 1e6 / (got ? got : 1);
    double kids_ms = (double)(children_cpu_ns(&flt1) - kids0) / 1e6 / (got ? got : 1);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (got > 0) {
        qsort(wall, (size_t)got, sizeof(*wall), cmp);
        printf("%-6s wall per child median %7.1f us p90 %7.1f us | CPU per child: parent %.3f ms, "
               "child %.3f ms, both %.3f ms | child faults %.0f | %ld cores: %.0f children/s at "
               "most (n=%d)\n",
               what, wall[got / 2], wall[got * 9 / 10], self_ms, kids_ms, self_ms + kids_ms,
               (double)(flt1 - flt0) / got, cores, (double)cores * 1000.0 / (self_ms + kids_ms),
               got);
    }
    free(wall);
}

/* n children that each run the model twice, timing both runs; prints the
 * medians of the first, the second and their difference. */
static void runs_twice(int n, rouse_session *s)
{
    double *first = calloc((size_t)n, sizeof(double)), *second = calloc((size_t)n, sizeof(double));
    double *diff = calloc((size_t)n, sizeof(double));
    int got = 0;
    for (int i = 0; first && second && diff && i < n; i++) {
        int fds[2];
        if (pipe(fds) < 0) break;
        pid_t p = fork();
        if (p == 0) {
            close(fds[0]);
            rouse_errbuf eb;
            rouse_errbuf_clear(&eb);
            uint64_t t[3];
            t[0] = now_ns();
            int rc = rouse_session_warm_up(s, &eb) < 0;
            t[1] = now_ns();
            rc |= rouse_session_warm_up(s, &eb) < 0;
            t[2] = now_ns();
            rc |= write(fds[1], t, sizeof(t)) != (ssize_t)sizeof(t);
            _exit(rc);
        }
        close(fds[1]);
        uint64_t t[3];
        ssize_t r = p > 0 ? read(fds[0], t, sizeof(t)) : -1;
        close(fds[0]);
        int ws;
        if (p < 0 || waitpid(p, &ws, 0) != p || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0 ||
            r != (ssize_t)sizeof(t)) {
            fprintf(stderr, "fork_floor: a child failed\n");
            break;
        }
        first[got] = (double)(t[1] - t[0]) / 1e6;
        second[got] = (double)(t[2] - t[1]) / 1e6;
        diff[got] = first[got] - second[got];
        got++;
    }
    if (got > 0) {
        qsort(first, (size_t)got, sizeof(double), cmp);
        qsort(second, (size_t)got, sizeof(double), cmp);
        qsort(diff, (size_t)got, sizeof(double), cmp);
        printf("again  a fresh child's first run median %.3f ms, its second %.3f ms, first - "
               "second %.3f ms (p10 %.3f, p90 %.3f; n=%d)\n",
               first[got / 2], second[got / 2], diff[got / 2], diff[got / 10],
               diff[got * 9 / 10], got);
    }
    free(first);
    free(second);
    free(diff);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fork_floor MODEL [N]\n");
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 200;
    if (n < 1) n = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    describe_self("bare");
    forks("bare", n, NULL);

    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rouse_model *m = NULL;
    rouse_session *s = NULL;
    size_t len = strlen(argv[1]);
    int rc = len > 5 && strcmp(argv[1] + len - 5, ".onnx") == 0
                 ? rouse_model_load(argv[1], &m, &eb)
                 : rouse_model_open_plan(argv[1], &m, &eb);
    if (rc == 0) rc = rouse_session_create(m, &(rouse_session_options){.threads = 1}, &s, &eb);
    if (rc < 0) {
        fprintf(stderr, "fork_floor: %s\n", eb.msg);
        rouse_model_destroy(m);
        return 1;
    }
    describe_self("model");
    forks("exit", n, NULL);
    forks("run", n, s);
    runs_twice(n, s);
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    return 0;
}
