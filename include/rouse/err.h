/*
 * Error codes shared by every rouse module.
 *
 * Every fallible call returns 0 or one of the negative ROUSE_E* codes below;
 * results travel through out-parameters. The enum and the messages are both
 * generated from ROUSE_ERR_MAP so that they can never drift apart.
 *
 * The detail a user needs (which node, which field, the errno text) goes into
 * a rouse_errbuf next to the code, so that the HTTP layer and the CLI can print
 * one sentence that explains the failure.
 */
#ifndef ROUSE_ERR_H
#define ROUSE_ERR_H

#include <stddef.h>

/* X(name, number, message): ROUSE_E<name> == -number. Numbers never change. */
#define ROUSE_ERR_MAP(X)                                                                           \
    X(NOMEM, 1, "out of memory")                                                                   \
    X(INVAL, 2, "invalid argument")                                                                \
    X(IO, 3, "input/output error")                                                                 \
    X(FORMAT, 4, "malformed data")                                                                 \
    X(UNSUPPORTED, 5, "not supported")                                                             \
    X(NOTFOUND, 6, "not found")                                                                    \
    X(RANGE, 7, "value out of range")                                                              \
    X(EXISTS, 8, "already exists")                                                                 \
    X(MISMATCH, 9, "shape or type mismatch")                                                       \
    X(TOOBIG, 10, "too large")                                                                     \
    X(TIMEOUT, 11, "deadline exceeded")                                                            \
    X(BUSY, 12, "overloaded, try again later")                                                     \
    X(CRASHED, 13, "process crashed")                                                              \
    X(STATE, 14, "operation not allowed in the current state")                                     \
    X(INTERNAL, 15, "internal error")

enum rouse_err {
    ROUSE_OK = 0,
#define ROUSE_ERR_ENUM_(name, num, msg) ROUSE_E##name = -(num),
    ROUSE_ERR_MAP(ROUSE_ERR_ENUM_)
#undef ROUSE_ERR_ENUM_
};

/* Number of codes in ROUSE_ERR_MAP (not counting ROUSE_OK). */
#define ROUSE_ERR_COUNT 15

/* Message for a code; "unknown error" for anything not in the table. Static string. */
const char *rouse_strerror(int rc);

/* Symbolic name ("ROUSE_ENOMEM") for a code; "ROUSE_EUNKNOWN" if not in the table. */
const char *rouse_err_name(int rc);

/* A code with a human sentence. Embedded by value in objects and passed to calls
 * that want to explain their failures. */
typedef struct rouse_errbuf {
    int code;
    char msg[512];
} rouse_errbuf;

/* Clears eb (code 0, empty message). */
void rouse_errbuf_clear(rouse_errbuf *eb);

/* Records rc and a printf-style message in eb (eb may be NULL) and returns rc,
 * so that callers can write `return rouse_err_set(eb, ROUSE_EINVAL, "...")`. */
int rouse_err_set(rouse_errbuf *eb, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like rouse_err_set, but keeps an existing message as the tail:
 * "<new>: <old>". Used to add context while an error travels up. */
int rouse_err_wrap(rouse_errbuf *eb, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
