/*
 * What /proc says of serve and its instances, for GET /metrics (metrics.h).
 * Runs at scrape time only, on the loop thread: procfs reads do not touch a
 * disk, and a scrape reads a handful of small files per instance.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "server/metrics.h"
#include "server/prom.h"

/* Reads a small file whole into buf (NUL-terminated); bytes read or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

uint64_t metrics_pid_memory(int pid)
{
    char path[64], text[4096];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
    if (read_small(path, text, sizeof(text)) > 0) {
        const char *pss = strstr(text, "\nPss:");
        unsigned long long kb;
        if (pss && sscanf(pss + 5, "%llu", &kb) == 1) return (uint64_t)kb * 1024u;
    }
    snprintf(path, sizeof(path), "/proc/%d/statm", pid);
    unsigned long long size, resident;
    if (read_small(path, text, sizeof(text)) > 0 &&
        sscanf(text, "%llu %llu", &size, &resident) == 2)
        return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
    return 0;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* The start time of this process in seconds since the epoch: its start in
 * clock ticks after boot (/proc/self/stat field 22) plus the boot time. */
static double start_time_s(const char *stat_after_comm)
{
    unsigned long long start_ticks = 0;
    /* Fields after "(comm) ": state is field 3, starttime field 22. */
    const char *p = stat_after_comm;
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p) p++;
    }
    if (!p || sscanf(p, "%llu", &start_ticks) != 1) return 0;
    char text[4096];
    if (read_small("/proc/stat", text, sizeof(text)) <= 0) return 0;
    const char *bt = strstr(text, "\nbtime ");
    unsigned long long btime;
    if (!bt || sscanf(bt + 7, "%llu", &btime) != 1) return 0;
    return (double)btime + (double)start_ticks / (double)sysconf(_SC_CLK_TCK);
}

int metrics_write_process(rouse_buf *out)
{
    char stat[1024];
    const char *after = NULL;
    if (read_small("/proc/self/stat", stat, sizeof(stat)) > 0) {
        after = strrchr(stat, ')'); /* the command name may hold spaces */
        if (after) after += 2;
    }
    struct rusage ru;
    double cpu = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    char statm[256];
    unsigned long long size = 0, resident = 0;
    if (read_small("/proc/self/statm", statm, sizeof(statm)) > 0)
        sscanf(statm, "%llu %llu", &size, &resident);
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    struct rlimit rl;
    int rc = prom_family(out, "process_cpu_seconds_total", "counter",
                         "Total user and system CPU time spent in seconds.");
    if (rc == 0) rc = prom_sample(out, "process_cpu_seconds_total", NULL, cpu);
    if (rc == 0)
        rc = prom_family(out, "process_resident_memory_bytes", "gauge",
                         "Resident memory size in bytes.");
    if (rc == 0) rc = prom_sample_u64(out, "process_resident_memory_bytes", NULL, resident * page);
    if (rc == 0)
        rc = prom_family(out, "process_virtual_memory_bytes", "gauge",
                         "Virtual memory size in bytes.");
    if (rc == 0) rc = prom_sample_u64(out, "process_virtual_memory_bytes", NULL, size * page);
    int fds = count_fds();
    if (rc == 0 && fds >= 0)
        rc = prom_family(out, "process_open_fds", "gauge", "Number of open file descriptors.");
    if (rc == 0 && fds >= 0) rc = prom_sample_u64(out, "process_open_fds", NULL, (uint64_t)fds);
    if (rc == 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rc = prom_family(out, "process_max_fds", "gauge",
                         "Maximum number of open file descriptors.");
        if (rc == 0) rc = prom_sample_u64(out, "process_max_fds", NULL, (uint64_t)rl.rlim_cur);
    }
    double start = after ? start_time_s(after) : 0;
    if (rc == 0 && start > 0)
        rc = prom_family(out, "process_start_time_seconds", "gauge",
                         "Start time of the process since unix epoch in seconds.");
    if (rc == 0 && start > 0) rc = prom_sample(out, "process_start_time_seconds", NULL, start);
    return rc;
}
