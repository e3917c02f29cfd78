/*
 * Test builds only: the fault-injection definition of the dispatcher's
 * seam (src/server/async_fault.h), linked into the `rouse-fault` binary
 * ahead of the library's. With ROUSE_FAULT_BATCH_CHUNK_MS set, the
 * dispatcher waits that many milliseconds before each chunk of a batch's
 * items after the first (the POST's): a large value holds the creation
 * half done, where a test kills serve.
 */
#include <stdlib.h>

#include "server/async_fault.h"

int64_t async_fault_chunk_delay_ms(void)
{
    const char *v = getenv("ROUSE_FAULT_BATCH_CHUNK_MS");
    long long ms = v ? atoll(v) : 0;
    return ms > 0 ? (int64_t)ms : 0;
}
