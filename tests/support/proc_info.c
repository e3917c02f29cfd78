/*
 * proc_info (see proc_info.h). The command name in /proc/PID/stat may hold
 * spaces and parentheses, so fields are read after its last ')'.
 */
#include "proc_info.h"

#include <stdio.h>
#include <string.h>

bool proc_stat(int pid, char *state, int *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && sscanf(rp + 2, "%c %d", state, ppid) == 2;
}

bool proc_alive(int pid)
{
    char state;
    int ppid;
    return proc_stat(pid, &state, &ppid) && state != 'Z';
}
