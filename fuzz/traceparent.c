/*
 * libFuzzer target for the W3C trace context headers serve reads from every
 * inference request (src/server/trace.c): any traceparent and tracestate
 * bytes give a context, never a crash or a read past the string; a
 * traceparent accepted as valid keeps its ids, and anything else starts a
 * new trace with well-formed ids.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/trace.h"

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return s[n] == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first half is the traceparent, the rest the tracestate, each an
     * exact-size NUL-terminated copy. */
    size_t n1 = size / 2, n2 = size - n1;
    char *tp = malloc(n1 + 1), *ts = malloc(n2 + 1);
    if (!tp || !ts) abort();
    memcpy(tp, data, n1);
    tp[n1] = '\0';
    memcpy(ts, data + n1, n2);
    ts[n2] = '\0';
    static trace_rng rng;
    if (!rng.s[0] && !rng.s[1]) trace_rng_seed(&rng);
    trace_ctx t;
    char tid[TRACE_ID_HEX + 1], pid[SPAN_ID_HEX + 1];
    bool sampled;
    bool valid = trace_parse_traceparent(tp, tid, pid, &sampled);
    trace_begin(&t, tp, ts, 0.5, &rng);
    if (!lower_hex(t.trace_id, TRACE_ID_HEX) || !lower_hex(t.span_id, SPAN_ID_HEX)) abort();
    if (valid && (strcmp(t.trace_id, tid) != 0 || strcmp(t.parent_id, pid) != 0)) abort();
    if (!valid && (t.parent_id[0] || t.state[0])) abort();
    if (strlen(t.state) > TRACE_STATE_MAX) abort();
    char out[TRACEPARENT_LEN + 1];
    trace_format(&t, out);
    char tid2[TRACE_ID_HEX + 1], pid2[SPAN_ID_HEX + 1];
    if (!trace_parse_traceparent(out, tid2, pid2, &sampled) || sampled != t.sampled) abort();
    free(tp);
    free(ts);
    return 0;
}
