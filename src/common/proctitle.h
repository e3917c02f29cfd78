/*
 * The process title (/proc/PID/cmdline, what ps shows) of a process that
 * was not exec'd for its job: a template forked by the zygote rewrites the
 * zygote's argument strings in place, as if it had been started with its
 * own arguments, so operators (and tests) can still tell which function a
 * process serves. The room is what the original arguments occupied; the
 * zygote is started with a padding argument to make enough of it.
 */
#ifndef ROUSE_COMMON_PROCTITLE_H
#define ROUSE_COMMON_PROCTITLE_H

/* Remembers the argument area that argv[0..argc) occupies (a tail of
 * main's argv: the strings must be contiguous, as the kernel lays them out;
 * what precedes argv[0], such as the program's path, stays). Without this,
 * rouse_proc_title_set does nothing. */
void rouse_proc_title_init(int argc, char **argv);

/* Replaces those arguments by these (copied first, so they may
 * point into the area itself), truncated to the room and padded with NULs. */
void rouse_proc_title_set(int argc, char *const argv[]);

#endif
