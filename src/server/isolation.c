/*
 * Choosing the isolation tier at serve's start (see isolation.h).
 */
#include "server/isolation.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "worker/sandbox.h"

#define MOD "isolation"

/* What a missing controller costs, for the fallback's sentence. */
static const char *const ctl_costs[CGROUP_N_CTL] = {
    "no per-instance memory limit",
    "no CPU weight",
    "no per-instance task limit",
};

static void add_fallback(isolation *iso, const char *what)
{
    if (iso->n_fallbacks == ISOLATION_FALLBACKS_MAX) return;
    snprintf(iso->fallbacks[iso->n_fallbacks++], sizeof(iso->fallbacks[0]), "%s", what);
}

int isolation_choose(isolation *iso, const char *want, rouse_errbuf *eb)
{
    memset(iso, 0, sizeof(*iso));
    bool named = want && strcmp(want, "auto") != 0;
    if (named && strcmp(want, "sandbox") != 0 && strcmp(want, "process") != 0)
        return rouse_err_set(eb, ROUSE_EINVAL, "--isolation: '%s' is not sandbox or process", want);
    if (named && strcmp(want, "process") == 0) {
        LOG_INFO(MOD, "process (--isolation process)");
        return 0;
    }
    rouse_errbuf peb;
    rouse_errbuf_clear(&peb);
    if (sandbox_probe(&peb) < 0) {
        if (named)
            return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                                 "--isolation sandbox: this machine cannot sandbox instances: %s",
                                 peb.msg);
        add_fallback(iso, peb.msg);
        LOG_WARN(MOD, "process (fallback: %s)", peb.msg);
        return 0;
    }
    iso->sandbox = true;
    char why[CGROUP_N_CTL][160];
    cgroup_roots_make(&iso->cg, why);
    for (int c = 0; c < CGROUP_N_CTL; c++) {
        if (!why[c][0]) continue;
        char what[600];
        snprintf(what, sizeof(what), "%s: %s", ctl_costs[c], why[c]);
        add_fallback(iso, what);
    }
    /* A pid namespace per tenant: instances' control groups are named
     * after their pid as serve sees it by their template's renaming, which
     * cgroup v2 does not allow; and the kernel must let serve make one
     * (tried with the default tenant's, which most setups use anyway). */
    bool v2 = false;
    for (int c = 0; c < CGROUP_N_CTL; c++)
        v2 |= iso->cg.dir[c][0] && iso->cg.v2[c];
    char arg[64];
    if (v2) {
        add_fallback(iso, "no pid namespace per tenant: instances' control groups are in "
                          "cgroup v2, whose groups cannot be renamed after their pid");
    } else if (!(iso->pidns = tenant_ns_create()) ||
               tenant_ns_arg(iso->pidns, "default", arg, sizeof(arg), &peb) < 0) {
        char what[600];
        snprintf(what, sizeof(what), "no pid namespace per tenant: %s",
                 iso->pidns ? peb.msg : "out of memory");
        add_fallback(iso, what);
        tenant_ns_destroy(iso->pidns);
        iso->pidns = NULL;
    }
    LOG_INFO(MOD, "sandbox%s", iso->n_fallbacks ? " (with fallbacks)" : "");
    for (int c = 0; c < CGROUP_N_CTL; c++)
        if (iso->cg.dir[c][0])
            LOG_DEBUG(MOD, "%s limits in %s (cgroup v%d)", cgroup_ctl_name((cgroup_ctl)c),
                      iso->cg.dir[c], iso->cg.v2[c] ? 2 : 1);
    for (int i = 0; i < iso->n_fallbacks; i++)
        LOG_WARN(MOD, "fallback: %s", iso->fallbacks[i]);
    return 0;
}

void isolation_fini(isolation *iso)
{
    if (!iso->sandbox) return;
    tenant_ns_destroy(iso->pidns);
    iso->pidns = NULL;
    /* Children serve did not wait for (a spare ending with its template)
     * keep their groups until reaped, zombies included: reap them, for a
     * second at most (shutdown, off the loop). */
    for (int i = 0; i < 100 && !cgroup_roots_remove(&iso->cg); i++) {
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        usleep(10000);
    }
}

const char *isolation_name(const isolation *iso)
{
    return iso->sandbox ? "sandbox" : "process";
}

int isolation_write_json(const isolation *iso, rouse_buf *out)
{
    int rc = rouse_buf_appendf(out, "\"isolation\":\"%s\",\"fallbacks\":[", isolation_name(iso));
    for (int i = 0; rc == 0 && i < iso->n_fallbacks; i++) {
        if (i) rc = rouse_buf_append_str(out, ",");
        if (rc == 0) rc = json_write_string(out, iso->fallbacks[i], strlen(iso->fallbacks[i]));
    }
    if (rc == 0) rc = rouse_buf_append_str(out, "]");
    return rc;
}
