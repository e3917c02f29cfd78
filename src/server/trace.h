/*
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) for serve: the
 * `traceparent` and `tracestate` request headers, new trace and span ids,
 * and head sampling.
 *
 * A request with a valid traceparent joins that trace: rouse's request span
 * becomes a child of the caller's span, and the caller's sampled flag
 * decides whether it is exported. A request without one, or with a
 * malformed one (wrong length, version ff, non-hex or upper-case digits, an
 * all-zero id), starts a new trace, sampled with the configured ratio. A
 * tracestate is kept as it came (up to TRACE_STATE_MAX bytes, else
 * dropped) and travels with the spans.
 */
#ifndef ROUSE_SERVER_TRACE_H
#define ROUSE_SERVER_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACE_ID_HEX 32
#define SPAN_ID_HEX 16
#define TRACE_STATE_MAX 512
/* "00-" trace "-" span "-" flags */
#define TRACEPARENT_LEN (3 + TRACE_ID_HEX + 1 + SPAN_ID_HEX + 3)

typedef struct trace_ctx {
    char trace_id[TRACE_ID_HEX + 1];
    char parent_id[SPAN_ID_HEX + 1]; /* the caller's span, "" when the trace is new */
    char span_id[SPAN_ID_HEX + 1];   /* rouse's request span */
    bool sampled;
    char state[TRACE_STATE_MAX + 1]; /* tracestate as received, or "" */
} trace_ctx;

/* The ids generator: xorshift128+ seeded from getrandom (not for secrets;
 * trace ids only need to be unique). Owned by the loop thread. */
typedef struct trace_rng {
    uint64_t s[2];
} trace_rng;

void trace_rng_seed(trace_rng *r);
uint64_t trace_rng_next(trace_rng *r);

/* Parses a traceparent header value: true and the ids and flag set when it
 * is valid (version 00 exactly as specified; a higher version is parsed by
 * its first four fields, as the specification asks). */
bool trace_parse_traceparent(const char *v, char trace_id[TRACE_ID_HEX + 1],
                             char parent_id[SPAN_ID_HEX + 1], bool *sampled);

/* Fills t for a request with these headers (either may be NULL):
 * continue the caller's trace, or start one sampled with `ratio` (0..1). A
 * new span id always. */
void trace_begin(trace_ctx *t, const char *traceparent, const char *tracestate, double ratio,
                 trace_rng *rng);

/* A new span id (16 hex digits, never all zeros). */
void trace_new_span_id(trace_rng *rng, char out[SPAN_ID_HEX + 1]);

/* "00-<trace>-<span>-<flags>" for t's request span. */
void trace_format(const trace_ctx *t, char out[TRACEPARENT_LEN + 1]);

#endif
