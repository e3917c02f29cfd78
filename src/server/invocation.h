/*
 * One record per finished invocation, and the sinks that receive it.
 *
 * Every inference request that reached serve's HTTP layer ends as exactly
 * one `invocation`, built in one place (http.c, when libmicrohttpd
 * completes the request) and handed, on the loop's thread, to every sink
 * registered at start: usage metering (usage.c), and whatever else wants
 * to see calls (metrics, an access log, traces). Rejected calls (429 queue
 * full, 400 bad request, 404 unknown function, 504 deadline) produce a
 * record too, with their error kind.
 *
 * A sink runs on the loop: it must not block (copy what it needs and
 * return; durable work goes through a writer thread). The record is
 * borrowed for the duration of the call.
 */
#ifndef ROUSE_SERVER_INVOCATION_H
#define ROUSE_SERVER_INVOCATION_H

#include <stdint.h>

#include "store/store.h"

/* How the instance that answered had started: warm (it was ready when the
 * call came), template (forked for this call from a ready template), zero
 * (its template too was started for this call). NONE: no instance ran. */
typedef enum inv_start {
    INV_START_NONE = 0,
    INV_START_WARM,
    INV_START_TEMPLATE,
    INV_START_ZERO,
} inv_start;
#define INV_START_COUNT 4

/* Why a call failed, from its status (inv_error_of). */
typedef enum inv_error {
    INV_OK = 0,
    INV_ERR_BAD_REQUEST, /* 400, 413, other 4xx: the caller's input */
    INV_ERR_NOT_FOUND,   /* 404: no such function or version */
    INV_ERR_QUEUE_FULL,  /* 429: the function's queue was full */
    INV_ERR_TIMEOUT,     /* 504: the call's deadline passed */
    INV_ERR_UNAVAILABLE, /* 503: shutting down, client gone, no instance */
    INV_ERR_INTERNAL,    /* other 5xx: the instance failed or crashed */
} inv_error;
#define INV_ERROR_COUNT 7

#define INV_REQUEST_ID_LEN 16 /* hex digits */
#define INV_TRACE_ID_LEN 32   /* hex digits (W3C trace context) */

typedef struct invocation {
    char request_id[INV_REQUEST_ID_LEN + 1]; /* also the X-Request-Id response header */
    char function[STORE_NAME_MAX + 1];
    int64_t version; /* the version that answered or was resolved; 0 when none */
    char tenant[STORE_NAME_MAX + 1]; /* the caller's tenant (auth.h): "default" without --auth */
    inv_start start;
    /* Durations in µs: waiting in the queue (not counting the start), the
     * start of the instance this call waited for, the inference in the
     * instance, and the whole request from its head to its reply. */
    uint64_t queue_us, start_us, run_us, total_us;
    /* A text generation's time to its first token and mean time between
     * the next ones, in the instance (0 for other invocations). */
    uint64_t ttft_us, itl_us;
    int64_t billed_ms; /* run_us rounded up to a whole ms (0 when nothing ran) */
    int64_t memory_mb; /* the version's memory_mb (0 when no version was resolved) */
    uint64_t bytes_in, bytes_out; /* request and response bodies */
    int status;                   /* HTTP status of the reply */
    inv_error error;
    char trace_id[INV_TRACE_ID_LEN + 1]; /* "" when the call is not traced */
    int64_t ts_us;                        /* wall clock (µs since the epoch) at arrival */
} invocation;

/* Receives every finished invocation (see the top of this file). */
typedef void (*invocation_sink_fn)(void *user, const invocation *inv);

#define INV_SINKS_MAX 8

typedef struct invocation_sinks {
    int n;
    invocation_sink_fn fn[INV_SINKS_MAX];
    void *user[INV_SINKS_MAX];
} invocation_sinks;

/* Registers a sink (at start, before the loop runs): 0, or ROUSE_ERANGE
 * when INV_SINKS_MAX are registered. */
int invocation_sink_add(invocation_sinks *s, invocation_sink_fn fn, void *user);
/* Hands inv to every sink, in registration order. */
void invocation_emit(const invocation_sinks *s, const invocation *inv);

/* The error kind of an HTTP status (INV_OK below 400). */
inv_error inv_error_of(int status);
/* "warm", "template", "zero", or "" for INV_START_NONE. */
const char *inv_start_name(inv_start k);
/* The start kind named by a Rouse-Start value; INV_START_NONE for NULL or
 * anything else. */
inv_start inv_start_parse(const char *name);
/* "ok", "bad_request", "not_found", "queue_full", "timeout",
 * "unavailable", "internal". */
const char *inv_error_name(inv_error e);
/* run_us rounded up to whole milliseconds: 0 µs bills nothing, 1 µs to
 * 1000 µs bill 1 ms, 1001 µs bill 2 ms. */
int64_t inv_billed_ms(uint64_t run_us);

#endif
