/*
 * Span export over OTLP/HTTP with JSON bodies (the OpenTelemetry protocol,
 * opentelemetry-proto's JSON mapping: hex ids, times as strings of Unix ns).
 *
 * The loop hands one record per traced invocation to a bounded
 * single-producer queue (common/spsc.h: a copy, no lock, no system call);
 * a thread of the exporter's own turns records into spans, and POSTs them
 * in batches with libcurl (one kept-alive connection, bounded timeouts).
 * When the queue is full the record's spans are dropped and counted; so are
 * the spans of a batch the collector refused or could not be reached for.
 * Nothing the collector does can block the loop.
 *
 * The spans of one invocation (times from the invocation record):
 *   request (kind SERVER; child of the caller's span when a traceparent
 *            came in)                       [arrival, reply]
 *     queue_wait                            [enqueued, dispatched]
 *       instance_start (cold calls)         [its instance started, ready]
 *         template_start (a start from zero)
 *           plan_open, prepare
 *         spawn (fork to ready)
 *     inference                             [dispatched, + run time]
 * (a request that never reached the pool, such as a 404, has its request
 * span alone), so queue_wait and inference follow each other inside request, and the
 * phases of a start lie inside instance_start (laid out backwards from its
 * end: the phases are durations, measured in other processes).
 */
#ifndef ROUSE_SERVER_OTLP_H
#define ROUSE_SERVER_OTLP_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "rouse/err.h"
#include "server/invocation.h"
#include "server/trace.h"

/* One traced invocation, as queued for export. */
typedef struct otlp_record {
    trace_ctx ctx;
    invocation inv;
    bool submitted;  /* the call reached the pool (else: a request span alone) */
    uint64_t enq_us; /* from arrival to the call entering its queue */
    /* The phases of the instance start it waited for (µs), when known. */
    bool have_phases;
    bool from_zero;
    uint64_t template_us, plan_open_us, prepare_us, spawn_us;
} otlp_record;

typedef struct otlp_exporter otlp_exporter;

/* Starts the exporter thread for endpoint (http:// or https://; a URL with
 * no path beyond "/" gets the standard "/v1/traces"). Owned: free with
 * otlp_destroy. */
int otlp_create(const char *endpoint, otlp_exporter **out, rouse_errbuf *eb);
/* Sends what is queued, stops the thread: at most the batch in flight
 * plus one more try (a failure drops the rest), so a stop waits for a
 * failing collector no more than two request timeouts. */
void otlp_destroy(otlp_exporter *x);

/* Queues a record for export, filled in place (no copy on the loop):
 * otlp_claim gives the slot, otlp_publish hands it to the exporter. Loop
 * thread only. NULL when the queue is full: the caller then reports the
 * spans it would have made with otlp_drop. */
otlp_record *otlp_claim(otlp_exporter *x);
void otlp_publish(otlp_exporter *x);
void otlp_drop(otlp_exporter *x, int n_spans);

/* Spans delivered (the collector answered 2xx) and dropped so far. */
uint64_t otlp_exported(const otlp_exporter *x);
uint64_t otlp_dropped(const otlp_exporter *x);

/* How many spans r makes. */
int otlp_span_count(const otlp_record *r);
/* Appends the ExportTraceServiceRequest JSON of n records: exposed for
 * tests. */
int otlp_encode(const otlp_record *recs, int n, rouse_buf *out);

#endif
