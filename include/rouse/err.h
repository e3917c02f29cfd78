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

/* X(name, number, message, http): ROUSE_E<name> == -number; http is the HTTP
 * status that serve and its instances answer with for the code (the one
 * table of it). Numbers never change; 13 (a crashed process, which nothing
 * returned) is retired and must not be reused. */
#define ROUSE_ERR_MAP(X)                                                                           \
    X(NOMEM, 1, "out of memory", 500)                                                              \
    X(INVAL, 2, "invalid argument", 400)                                                           \
    X(IO, 3, "input/output error", 500)                                                            \
    X(FORMAT, 4, "malformed data", 400)                                                            \
    X(UNSUPPORTED, 5, "not supported", 400)                                                        \
    X(NOTFOUND, 6, "not found", 404)                                                               \
    X(RANGE, 7, "value out of range", 400)                                                         \
    X(EXISTS, 8, "already exists", 409)                                                            \
    X(MISMATCH, 9, "shape or type mismatch", 400)                                                  \
    X(TOOBIG, 10, "too large", 413)                                                                \
    X(TIMEOUT, 11, "deadline exceeded", 504)                                                       \
    X(BUSY, 12, "overloaded, try again later", 429)                                                \
    X(STATE, 14, "operation not allowed in the current state", 409)                                \
    X(INTERNAL, 15, "internal error", 500)                                                         \
    X(NOSPACE, 16, "no space left on the storage device", 507)                                     \
    X(UNAVAILABLE, 17, "unavailable, try again later", 503)

enum rouse_err {
    ROUSE_OK = 0,
#define ROUSE_ERR_ENUM_(name, num, msg, http) ROUSE_E##name = -(num),
    ROUSE_ERR_MAP(ROUSE_ERR_ENUM_)
#undef ROUSE_ERR_ENUM_
};

/* Number of codes in ROUSE_ERR_MAP (not counting ROUSE_OK). */
#define ROUSE_ERR_COUNT 16

/* Message for a code; "unknown error" for anything not in the table. Static string. */
const char *rouse_strerror(int rc);

/* The HTTP status for a code (500 for anything not in the table, 200 for 0). */
int rouse_err_http_status(int rc);

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
