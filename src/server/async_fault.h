/*
 * A seam for fault injection in the dispatcher of asynchronous jobs, like
 * the instance's (worker/fault.h): the library's definition
 * (async_fault.c) adds nothing; the test build's `rouse-fault` binary
 * links its own in front of it (tests/support/async_fault_hook.c), so
 * that a test can hold a batch's creation between two chunks and kill
 * serve there. The release binary carries no fault injection.
 */
#ifndef ROUSE_SERVER_ASYNC_FAULT_H
#define ROUSE_SERVER_ASYNC_FAULT_H

#include <stdint.h>

/* How long the dispatcher waits before creating the next chunk of a
 * batch's items, in ms (0: not at all). */
int64_t async_fault_chunk_delay_ms(void);

#endif
