/*
 * Process titles (see proctitle.h). The area is overwritten in place, never
 * moved: the kernel reports /proc/PID/cmdline from the original addresses.
 */
#include "common/proctitle.h"

#include <stdlib.h>
#include <string.h>

static char *title_base; /* argv[0] of rouse_proc_title_init */
static size_t title_room;

void rouse_proc_title_init(int argc, char **argv)
{
    if (argc < 1 || !argv || !argv[0]) return;
    for (int i = 1; i < argc; i++)
        if (argv[i] != argv[i - 1] + strlen(argv[i - 1]) + 1) return; /* not the kernel's layout */
    title_base = argv[0];
    title_room = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - title_base);
}

void rouse_proc_title_set(int argc, char *const argv[])
{
    if (!title_base || title_room == 0) return;
    char *tmp = calloc(1, title_room);
    if (!tmp) return;
    size_t at = 0;
    for (int i = 0; i < argc && at < title_room; i++) {
        size_t l = strlen(argv[i]) + 1;
        if (l > title_room - at) l = title_room - at;
        memcpy(tmp + at, argv[i], l);
        at += l;
    }
    tmp[title_room - 1] = '\0'; /* a NUL at the end: the kernel shows the whole area */
    memcpy(title_base, tmp, title_room);
    free(tmp);
}
