/*
 * The release definition of the fault-injection seam (fault.h): nothing.
 * This file must hold nothing else, so that a test binary that defines
 * worker_fault_hook, worker_fault_step and worker_fault_prepare itself never pulls it from the
 * library.
 */
#include "worker/fault.h"

void worker_fault_hook(const char *request_id)
{
    (void)request_id;
}

void worker_fault_step(void)
{
}

void worker_fault_prepare(void)
{
}
