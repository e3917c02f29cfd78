/*
 * W3C Trace Context parsing and ids (trace.h).
 */
#include "server/trace.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/fmt.h"
#include "common/timeutil.h"

void trace_rng_seed(trace_rng *r)
{
    if (getrandom(r->s, sizeof(r->s), GRND_NONBLOCK) != (ssize_t)sizeof(r->s)) {
        r->s[0] = rouse_now_ns() ^ 0x9E3779B97F4A7C15ull;
        r->s[1] = (uint64_t)(uintptr_t)r * 0xBF58476D1CE4E5B9ull;
    }
    if (!r->s[0] && !r->s[1]) r->s[0] = 1;
}

uint64_t trace_rng_next(trace_rng *r)
{
    uint64_t x = r->s[0], y = r->s[1];
    r->s[0] = y;
    x ^= x << 23;
    r->s[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
    return r->s[1] + y;
}

/* Lower-case hex only, as the specification requires. */
static bool hex_field(const char *s, size_t n, char *out)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        if (c != '0') nonzero = true;
        if (out) out[i] = c;
    }
    if (out) out[n] = '\0';
    return nonzero || !out; /* ids must not be all zeros; the version and flags may */
}

static int hexval(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

bool trace_parse_traceparent(const char *v, char trace_id[TRACE_ID_HEX + 1],
                             char parent_id[SPAN_ID_HEX + 1], bool *sampled)
{
    if (!v) return false;
    size_t len = strlen(v);
    if (len < TRACEPARENT_LEN) return false;
    if (!hex_field(v, 2, NULL) || v[2] != '-') return false;
    if (v[0] == 'f' && v[1] == 'f') return false; /* version ff is invalid */
    bool v00 = v[0] == '0' && v[1] == '0';
    /* Version 00 is exactly 55 characters; a later version may append
     * fields after another '-'. */
    if (v00 ? len != TRACEPARENT_LEN : (len > TRACEPARENT_LEN && v[TRACEPARENT_LEN] != '-'))
        return false;
    char tid[TRACE_ID_HEX + 1], pid[SPAN_ID_HEX + 1];
    if (!hex_field(v + 3, TRACE_ID_HEX, tid) || v[3 + TRACE_ID_HEX] != '-') return false;
    if (!hex_field(v + 4 + TRACE_ID_HEX, SPAN_ID_HEX, pid) ||
        v[4 + TRACE_ID_HEX + SPAN_ID_HEX] != '-')
        return false;
    const char *flags = v + 5 + TRACE_ID_HEX + SPAN_ID_HEX;
    if (!hex_field(flags, 2, NULL)) return false;
    memcpy(trace_id, tid, sizeof(tid));
    memcpy(parent_id, pid, sizeof(pid));
    *sampled = (hexval(flags[1]) & 1) != 0;
    return true;
}

static void hex64(uint64_t x, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, x >>= 4)
        out[i] = digits[x & 15];
}

void trace_new_span_id(trace_rng *rng, char out[SPAN_ID_HEX + 1])
{
    uint64_t x;
    while ((x = trace_rng_next(rng)) == 0) {
    }
    hex64(x, out);
    out[SPAN_ID_HEX] = '\0';
}

void trace_begin(trace_ctx *t, const char *traceparent, const char *tracestate, double ratio,
                 trace_rng *rng)
{
    if (trace_parse_traceparent(traceparent, t->trace_id, t->parent_id, &t->sampled)) {
        size_t n = tracestate ? strlen(tracestate) : 0;
        if (n > TRACE_STATE_MAX) n = 0; /* longer than allowed: dropped */
        memcpy(t->state, tracestate ? tracestate : "", n);
        t->state[n] = '\0';
    } else {
        uint64_t hi = trace_rng_next(rng), lo = trace_rng_next(rng);
        if (!hi && !lo) lo = 1;
        hex64(hi, t->trace_id);
        hex64(lo, t->trace_id + 16);
        t->trace_id[TRACE_ID_HEX] = '\0';
        t->parent_id[0] = '\0';
        t->state[0] = '\0'; /* a tracestate without a valid traceparent means nothing */
        /* The top 53 bits as a uniform double in [0, 1). */
        t->sampled =
            ratio >= 1.0 || (double)(trace_rng_next(rng) >> 11) / 9007199254740992.0 < ratio;
    }
    trace_new_span_id(rng, t->span_id);
}

void trace_format(const trace_ctx *t, char out[TRACEPARENT_LEN + 1])
{
    /* Per request on the loop: copies, not printf. */
    char *p = out;
    memcpy(p, "00-", 3);
    p += 3;
    memcpy(p, t->trace_id, TRACE_ID_HEX);
    p += TRACE_ID_HEX;
    *p++ = '-';
    memcpy(p, t->span_id, SPAN_ID_HEX);
    p += SPAN_ID_HEX;
    memcpy(p, t->sampled ? "-01" : "-00", 4);
}
