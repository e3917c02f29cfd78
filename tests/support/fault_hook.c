/*
 * Test builds only: the fault-injection definition of worker_fault_hook
 * (src/worker/fault.h), linked into the `rouse-fault` binary ahead of the
 * library's empty one. The release `rouse` never contains it.
 *
 * With ROUSE_FAULT_DIR set, every inference request that carries an OIP id
 * is recorded as one line "<id>\n" appended to $ROUSE_FAULT_DIR/executions
 * (one write(2) with O_APPEND: lines of concurrent instances never mix),
 * before it runs: the tests count executions per job from it. With
 * ROUSE_FAULT_CRASH_FIRST=N too, a request whose id starts with "crash"
 * kills its instance (SIGKILL) on its first N executions, and one whose id
 * starts with "crash-always" on every execution. ROUSE_FAULT_DELAY_US
 * makes every recorded execution take that much longer (a slow model), and
 * a request whose id is "sleep-<ms>-..." takes <ms> milliseconds more.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/fault.h"

/* How many lines of the file at path equal id. */
static int count_lines(const char *path, const char *id)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[512];
    int n = 0;
    size_t len = strlen(id);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, id, len) == 0 && line[len] == '\n') n++;
    fclose(f);
    return n;
}

void worker_fault_hook(const char *request_id)
{
    const char *dir = getenv("ROUSE_FAULT_DIR");
    if (!dir || !request_id || strlen(request_id) > 400) return;
    char path[4096];
    snprintf(path, sizeof(path), "%s/executions", dir);
    char line[512];
    int len = snprintf(line, sizeof(line), "%s\n", request_id);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (write(fd, line, (size_t)len) != len) {
        /* A short record only makes the test's count fail, visibly. */
    }
    close(fd);
    const char *delay = getenv("ROUSE_FAULT_DELAY_US");
    if (delay) usleep((useconds_t)atoi(delay));
    if (strncmp(request_id, "sleep-", 6) == 0) usleep((useconds_t)atoi(request_id + 6) * 1000u);
    const char *first = getenv("ROUSE_FAULT_CRASH_FIRST");
    if (!first || strncmp(request_id, "crash", 5) != 0) return;
    if (strncmp(request_id, "crash-always", 12) == 0) kill(getpid(), SIGKILL);
    if (count_lines(path, request_id) <= atoi(first)) kill(getpid(), SIGKILL);
}
