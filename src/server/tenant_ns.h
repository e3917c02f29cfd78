/*
 * One pid namespace per tenant for sandboxed instances (isolation
 * "sandbox"): serve starts, for each tenant whose templates start, a small
 * process that is the init of a new pid namespace and does nothing but
 * reap (a namespace's orphans go to its init); a template of that tenant
 * enters the namespace for its children (`--pidns PID:INODE`, setns), so
 * that its instances and spares start in it and see no process of another
 * tenant. The reaper is not a template: instances keep serving when their
 * template ends. Instances stay serve's children (worker_fork_sibling), so
 * serve still reaps them and learns how each ended.
 *
 * A reaper ends with serve (a parent death signal) or when serve destroys
 * the table; one that died (killed by an administrator: the kernel then
 * kills every process of its namespace) is replaced at the next start of
 * one of its tenant's templates.
 */
#ifndef ROUSE_SERVER_TENANT_NS_H
#define ROUSE_SERVER_TENANT_NS_H

#include <stddef.h>

#include "rouse/err.h"

typedef struct tenant_ns tenant_ns;

/* An empty table. Owned: free with tenant_ns_destroy. NULL when out of
 * memory. */
tenant_ns *tenant_ns_create(void);

/* Kills every reaper (serve reaps them as any child). NULL: no-op. */
void tenant_ns_destroy(tenant_ns *t);

/* The `--pidns` argument of a template of tenant ("PID:INODE" of its
 * reaper and namespace, as serve sees them) into out, starting the
 * tenant's reaper when it has none or it died. 0, or < 0 with why in eb. */
int tenant_ns_arg(tenant_ns *t, const char *tenant, char *out, size_t len, rouse_errbuf *eb);

#endif
