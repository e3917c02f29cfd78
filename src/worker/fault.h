/*
 * A seam for fault injection in the instance: called once per decoded
 * inference request with its OIP "id" (or NULL). The library's definition
 * (fault.c) does nothing; the test build's `rouse-fault` binary links its
 * own definition in front of it (tests/support/fault_hook.c), which counts
 * executions and can crash the instance, so the release binary carries no
 * fault injection at all.
 */
#ifndef ROUSE_WORKER_FAULT_H
#define ROUSE_WORKER_FAULT_H

void worker_fault_hook(const char *request_id);

#endif
