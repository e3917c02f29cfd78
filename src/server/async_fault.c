/*
 * The release definition of the dispatcher's fault-injection seam
 * (async_fault.h): no delay. This file must hold nothing else, so that a
 * test binary that defines the seam itself never pulls it from the
 * library.
 */
#include "server/async_fault.h"

int64_t async_fault_chunk_delay_ms(void)
{
    return 0;
}
