/*
 * The template process (see template.h). Invariants: the template never
 * runs the model (so no OpenMP team exists when it forks); every IPC_SPAWN
 * gets exactly one reply, from the intermediate child (the pid) or from the
 * template (an error); the template reaps its intermediate children at once,
 * so it never holds zombies.
 */
#include "worker/template.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "rouse/engine.h"
#include "worker/instance.h"
#include "worker/ipc.h"

#define MOD "template"

/* In the intermediate child: forks the instance, reports its pid, exits.
 * In the instance: serves and returns its exit status (*is_instance set). */
static int fork_instance(const template_opts *o, int ctl, const ipc_msg *req, int sock,
                         rouse_model *m, rouse_session *s, uint64_t t0, bool *is_instance)
{
    pid_t pid = fork();
    if (pid == 0) {
        *is_instance = true;
        close(ctl);
        instance_opts io = {
            .fd = sock, .name = o->name, .version = o->version, .threads = o->threads};
        return instance_serve(&io, sock, m, s);
    }
    uint64_t dur[3] = {rouse_now_ns() - t0, 0, 0};
    if (pid < 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "fork of an instance failed: %s", strerror(errno));
        worker_send_error(ctl, IPC_REPLY, req->id, 500, msg);
        _exit(1);
    }
    ipc_msg r;
    ipc_msg_init(&r, IPC_REPLY, req->id);
    r.pid = (uint32_t)pid;
    memcpy(r.dur_ns, dur, sizeof(dur));
    rouse_errbuf eb;
    _exit(ipc_send(ctl, &r, -1, &eb) == 0 ? 0 : 1);
}

int template_main(const template_opts *o)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int ctl = o->fd;
    /* Serve may die without closing us: die with it. Instances (reparented
     * to serve) end when their own socket closes. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);

    rouse_model *m = NULL;
    rouse_session *s = NULL;
    int from_cache = 0;
    uint64_t t0 = rouse_now_ns();
    int rc = o->plan_cache ? rouse_model_load_cached_known(o->model_path, o->model_sha256,
                                                           o->plan_cache, &m, &from_cache, &eb)
                           : rouse_model_load(o->model_path, &m, &eb);
    uint64_t t1 = rouse_now_ns();
    if (rc == 0) {
        rouse_session_options so = {.threads = o->threads > 0 ? o->threads : 1};
        rc = rouse_session_create(m, &so, &s, &eb);
    }
    uint64_t t2 = rouse_now_ns();
    if (rc < 0) {
        const char *msg = eb.msg[0] ? eb.msg : rouse_strerror(rc);
        size_t pl = strlen(o->model_path);
        if (strncmp(msg, o->model_path, pl) == 0 && strncmp(msg + pl, ": ", 2) == 0) msg += pl + 2;
        worker_send_error(ctl, IPC_READY, 0, 400, msg);
        rouse_model_destroy(m);
        return 1;
    }
    uint64_t dur[3] = {t1 - t0, t2 - t1, from_cache ? 1u : 0u};
    int status = 0;
    if (worker_send_reply(ctl, IPC_READY, 0, 0, "", NULL, 0, -1, dur) < 0) {
        status = 2;
        goto out_session;
    }
    for (;;) {
        ipc_msg req;
        int sock = -1;
        rc = ipc_recv(ctl, &req, &sock, &eb);
        if (rc == ROUSE_ENOTFOUND) break; /* serve closed the socket: we are done */
        if (rc == ROUSE_EFORMAT) {
            LOG_WARN(MOD, "%s", eb.msg);
            continue;
        }
        if (rc < 0) {
            LOG_ERROR(MOD, "%s", eb.msg);
            status = 2;
            break;
        }
        if (req.type != IPC_SPAWN || sock < 0) {
            if (sock >= 0) close(sock);
            worker_send_error(ctl, IPC_REPLY, req.id, 500, "template: expected a spawn request");
            continue;
        }
        uint64_t f0 = rouse_now_ns();
        pid_t mid = fork();
        if (mid == 0) {
            bool is_instance = false;
            status = fork_instance(o, ctl, &req, sock, m, s, f0, &is_instance);
            close(sock);
            goto out_session; /* only the instance gets here */
        }
        close(sock);
        if (mid < 0) {
            char msg[128];
            snprintf(msg, sizeof(msg), "fork of an instance failed: %s", strerror(errno));
            worker_send_error(ctl, IPC_REPLY, req.id, 500, msg);
            continue;
        }
        int ws;
        while (waitpid(mid, &ws, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
            LOG_WARN(MOD, "spawning an instance failed (intermediate status %d)", ws);
    }
out_session:
    rouse_session_destroy(s);
    rouse_model_destroy(m);
    return status;
}
