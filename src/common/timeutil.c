/* Monotonic and wall-clock time readings. */
#include "common/timeutil.h"

#include <time.h>

uint64_t rouse_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double rouse_ms_since(uint64_t start_ns)
{
    uint64_t now = rouse_now_ns();
    return now >= start_ns ? rouse_ns_to_ms(now - start_ns) : 0.0;
}

int64_t rouse_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rouse_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
