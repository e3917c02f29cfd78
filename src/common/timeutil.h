/*
 * Monotonic time helpers. All durations in rouse are measured on
 * CLOCK_MONOTONIC so that wall-clock jumps never skew metering or timeouts.
 */
#ifndef ROUSE_COMMON_TIMEUTIL_H
#define ROUSE_COMMON_TIMEUTIL_H

#include <stdint.h>

/* Nanoseconds on CLOCK_MONOTONIC since an arbitrary epoch. */
uint64_t rouse_now_ns(void);

/* Milliseconds (fractional) elapsed since a rouse_now_ns() reading. */
double rouse_ms_since(uint64_t start_ns);

/* Converts a nanosecond difference to fractional milliseconds. */
static inline double rouse_ns_to_ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* Wall-clock milliseconds since the Unix epoch, for timestamps stored or shown. */
int64_t rouse_wall_ms(void);
/* Wall-clock time in microseconds since the epoch. */
int64_t rouse_wall_us(void);

#endif
