/*
 * What /proc says of a process, for tests that watch the processes serve
 * and its workers start and end.
 */
#ifndef ROUSE_TEST_PROC_INFO_H
#define ROUSE_TEST_PROC_INFO_H

#include <stdbool.h>

/* The state letter ('R', 'S', 'Z', ...) and parent pid of pid; false when
 * there is no such process. */
bool proc_stat(int pid, char *state, int *ppid);

/* True while pid exists and is not a zombie. */
bool proc_alive(int pid);

#endif
