/*
 * A seam for fault injection in the instance: called once per decoded
 * inference request with its OIP "id" (or NULL). The library's definition
 * (fault.c) does nothing; the test build's `rouse-fault` binary links its
 * own definition in front of it (tests/support/fault_hook.c), which counts
 * executions and can crash the instance, so the release binary carries no
 * fault injection at all. All three functions are defined together, in one
 * file, so that a definition is taken whole or not at all.
 */
#ifndef ROUSE_WORKER_FAULT_H
#define ROUSE_WORKER_FAULT_H

void worker_fault_hook(const char *request_id);

/* Called once per decode step of a generator (one stream's or a batch's):
 * the test definition can make each step slower (a slow model), so that a
 * test of timeout_ms knows a long generation outlasts it. */
void worker_fault_step(void);

/* Called once in a template before it enters its sandbox (sandbox.h),
 * while it may still open files: the test definition opens what its hook
 * writes to later. */
void worker_fault_prepare(void);

#endif
