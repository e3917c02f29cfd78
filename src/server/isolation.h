/*
 * The isolation tier serve runs instances at, chosen once at start
 * (`rouse serve --isolation sandbox|process`, default: sandbox where the
 * machine allows it): "sandbox" (worker/sandbox.h: namespaces, an empty
 * root, the tenant's ids, seccomp, per-instance control groups) or
 * "process" (instances are plain processes of serve's user, as before).
 * What the machine cannot give is listed as fallbacks: in the start-up log
 * once, in GET /v2 (`"rouse": {"isolation": ..., "fallbacks": [...]}`) and
 * in `rouse status`. Never a silent downgrade: a tier named on the command
 * line that the machine cannot give stops serve at start with the reason.
 */
#ifndef ROUSE_SERVER_ISOLATION_H
#define ROUSE_SERVER_ISOLATION_H

#include <stdbool.h>

#include "common/buf.h"
#include "rouse/err.h"
#include "server/tenant_ns.h"
#include "worker/cgroup.h"

#define ISOLATION_FALLBACKS_MAX 8

typedef struct isolation {
    bool sandbox;
    cgroup_roots cg; /* the controllers' roots (sandbox only; "" where missing) */
    tenant_ns *pidns; /* the tenants' pid namespaces (sandbox), or NULL: a fallback */
    char fallbacks[ISOLATION_FALLBACKS_MAX][600];
    int n_fallbacks;
} isolation;

/* Chooses the tier for want ("sandbox", "process", or NULL/"auto"), makes
 * the cgroup roots, and logs the choice and each fallback once. < 0 with
 * eb set when want names a tier the machine cannot give, or is unknown. */
int isolation_choose(isolation *iso, const char *want, rouse_errbuf *eb);

/* Ends the tenants' reapers and removes the cgroup roots (after every
 * instance is gone). */
void isolation_fini(isolation *iso);

/* "sandbox" or "process". */
const char *isolation_name(const isolation *iso);

/* Appends "\"isolation\":\"...\",\"fallbacks\":[...]" (no braces). */
int isolation_write_json(const isolation *iso, rouse_buf *out);

#endif
