/*
 * `rouse __instance`, `rouse __template` and `rouse __zygote`: the hidden
 * subcommands that serve starts for deploy-time model checks (which also
 * compile the plan), for the template process of each function version,
 * which forks the instances, and for the zygote, which forks templates.
 * Not for users: their arguments are serve's business and may change.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/tensor_file.h"
#include "common/log.h"
#include "common/proctitle.h"
#include "common/sha256.h"
#include "rouse/engine.h"
#include "rouse/weight_pages.h"
#include "worker/ipc.h"
#include "worker/instance.h"
#include "worker/template.h"
#include "worker/zygote.h"

void cli_instance_usage(FILE *out)
{
    fprintf(out,
            "usage: rouse __instance --fd N --model PATH --name NAME --version V\n"
            "                        [--threads T] [--plan-cache DIR] [--precision P]\n"
            "                        [--calibrate NAME=NPY]... [--log-level L] [--check]\n"
            "                        [--max-context N [--tokenizer JSON | --vocab V --merges M]]\n"
            "                        [--streams N [--prefill-batch N --prefill-delay-us US]]\n"
            "                        [--memory-mb N] [--max-batch N]\n"
            "(started by rouse serve)\n");
}

#define WORKER_CALIB_MAX 8
#define CALIB_KEY_LEN 16

/* The flags `__instance` and `__template` share: serve passes them the
 * same way (see worker_argv in server/pool_sched.c). */
typedef struct worker_args {
    int fd;
    const char *model_path, *name, *version, *plan_cache, *sha256, *log_level;
    int threads;
    int memory_mb;    /* --memory-mb: bounds activation memory */
    int weight_pages; /* rouse_weight_pages; a template's */
    int precision;    /* --precision fp32|bf16|int8 */
    int max_context;  /* --max-context N: a text generator */
    worker_tok_paths tok; /* --tokenizer PATH, or --vocab PATH --merges PATH */
    int max_batch;    /* --max-batch N: dynamic batching's largest batch */
    int streams;      /* --streams N: a generator's streams decoded together */
    int prefill_batch; /* --prefill-batch N: of those, prefilled together (batching) */
    int prefill_delay_us; /* --prefill-delay-us US: a new stream's wait for company */
    bool check;
    /* --calibrate NAME=PATH: int8's calibration samples of one input (a
     * .npy, samples stacked on axis 0), read by load_calibration */
    char *calib_arg[WORKER_CALIB_MAX];
    int n_calib;
    cli_tensor calib_t[WORKER_CALIB_MAX];
    rouse_tensor calib_v[WORKER_CALIB_MAX];
    char calib_key[CALIB_KEY_LEN + 1];
    /* A template's sandbox: --sandbox UID, --memory-mb N (above), --cgroup[2]
     * CONTROLLER=DIR (serve's root of that controller, in cgroup v1 or v2) */
    sandbox_opts sandbox;
} worker_args;

/* --cgroup or --cgroup2 CONTROLLER=DIR into o. False when malformed. */
static bool parse_cgroup(sandbox_opts *o, char *arg, bool v2)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq[1] != '/') return false;
    for (int c = 0; c < CGROUP_N_CTL; c++) {
        const char *n = cgroup_ctl_name((cgroup_ctl)c);
        if (strlen(n) == (size_t)(eq - arg) && strncmp(arg, n, (size_t)(eq - arg)) == 0) {
            o->cgroup_dir[c] = eq + 1;
            o->cgroup_v2[c] = v2;
            return true;
        }
    }
    return false;
}

/* Parses argv into w; `extra` is the one flag the subcommand adds
 * ("--check", a switch, or "--sha256 HEX"). The log level is left for the
 * caller to apply. False on a usage error. */
static bool parse_worker_args(int argc, char **argv, const char *extra, worker_args *w)
{
    *w = (worker_args){.fd = -1, .name = "", .version = "1", .threads = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--check") == 0 && strcmp(extra, a) == 0) {
            w->check = true;
            continue;
        }
        if (!v) return false;
        if (strcmp(a, "--fd") == 0)
            w->fd = atoi(v);
        else if (strcmp(a, "--model") == 0)
            w->model_path = v;
        else if (strcmp(a, "--name") == 0)
            w->name = v;
        else if (strcmp(a, "--version") == 0)
            w->version = v;
        else if (strcmp(a, "--threads") == 0)
            w->threads = atoi(v);
        else if (strcmp(a, "--max-context") == 0)
            w->max_context = atoi(v);
        else if (strcmp(a, "--tokenizer") == 0)
            w->tok.json = v;
        else if (strcmp(a, "--vocab") == 0)
            w->tok.vocab = v;
        else if (strcmp(a, "--merges") == 0)
            w->tok.merges = v;
        else if (strcmp(a, "--memory-mb") == 0) {
            /* The function's memory_mb: it bounds activation memory, and
             * under the sandbox it is each instance's memory limit too. */
            w->memory_mb = atoi(v) > 0 ? atoi(v) : 0;
            w->sandbox.limits.memory_mb = w->memory_mb;
        }
        else if (strcmp(a, "--plan-cache") == 0)
            w->plan_cache = v;
        else if (strcmp(a, "--sha256") == 0 && strcmp(extra, a) == 0)
            w->sha256 = v;
        else if (strcmp(a, "--log-level") == 0)
            w->log_level = v;
        else if (strcmp(a, "--weight-pages") == 0 && strcmp(extra, "--sha256") == 0) {
            rouse_weight_pages k;
            if (rouse_weight_pages_parse(v, &k) != 0) return false;
            w->weight_pages = (int)k;
        } else if (strcmp(a, "--sandbox") == 0 && strcmp(extra, "--sha256") == 0) {
            char *end;
            unsigned long id = strtoul(v, &end, 10);
            if (*end || id == 0 || id > 0xfffffffeul) return false;
            w->sandbox.on = true;
            w->sandbox.uid = w->sandbox.gid = (uint32_t)id;
        } else if ((strcmp(a, "--cgroup") == 0 || strcmp(a, "--cgroup2") == 0) &&
                   strcmp(extra, "--sha256") == 0) {
            if (!parse_cgroup(&w->sandbox, argv[i + 1], a[8] == '2')) return false;
        } else if (strcmp(a, "--pidns") == 0 && strcmp(extra, "--sha256") == 0) {
            /* PID:INODE of the tenant's reaper and its pid namespace. */
            char *end;
            long pid = strtol(v, &end, 10);
            if (*end != ':' || pid <= 0 || pid > INT32_MAX) return false;
            unsigned long long ino = strtoull(end + 1, &end, 10);
            if (*end || ino == 0) return false;
            w->sandbox.pidns_pid = (int)pid;
            w->sandbox.pidns_ino = (uint64_t)ino;
        } else if (strcmp(a, "--precision") == 0) {
            if (rouse_precision_parse(v, &w->precision) < 0) return false;
        } else if (strcmp(a, "--streams") == 0) {
            w->streams = atoi(v);
            if (w->streams < 0) return false;
        } else if (strcmp(a, "--prefill-batch") == 0) {
            w->prefill_batch = atoi(v);
            if (w->prefill_batch < 0) return false;
        } else if (strcmp(a, "--prefill-delay-us") == 0) {
            w->prefill_delay_us = atoi(v);
            if (w->prefill_delay_us < 0) return false;
        } else if (strcmp(a, "--max-batch") == 0) {
            w->max_batch = atoi(v);
            if (w->max_batch < 0) return false;
        } else if (strcmp(a, "--calibrate") == 0) {
            if (w->n_calib == WORKER_CALIB_MAX || !strchr(v, '=')) return false;
            w->calib_arg[w->n_calib++] = argv[i + 1];
        } else
            return false;
        i++;
    }
    /* CPU weight follows memory (1024 MB: the kernel's default weight);
     * the task limit leaves room for the instance's OpenMP threads. */
    w->sandbox.limits.cpu_weight = w->sandbox.limits.memory_mb;
    w->sandbox.limits.pids_max = w->threads + 16;
    return w->fd >= 0 && w->model_path;
}

static void free_calibration(worker_args *w)
{
    for (int i = 0; i < w->n_calib; i++)
        cli_tensor_fini(&w->calib_t[i]);
}

/* Reads the --calibrate files into w->calib_v and names the set: the key
 * hashes every input name with its file's bytes, so a plan compiled from
 * other samples is another file. Errors name the input. */
static int load_calibration(worker_args *w, rouse_errbuf *eb)
{
    rouse_sha256 h;
    int rc = rouse_sha256_init(&h);
    if (rc < 0) return rouse_err_set(eb, rc, "cannot hash the calibration samples");
    for (int i = 0; rc == 0 && i < w->n_calib; i++) {
        char *eq = strchr(w->calib_arg[i], '=');
        *eq = '\0';
        const char *name = w->calib_arg[i], *path = eq + 1;
        uint8_t *buf = NULL;
        size_t len = 0;
        if ((rc = cli_file_slurp(path, &buf, &len, eb)) < 0) {
            rc = rouse_err_wrap(eb, rc, "calibration.%s", name);
            break;
        }
        if ((rc = cli_npy_parse(buf, len, &w->calib_t[i], eb)) < 0)
            rc = rouse_err_wrap(eb, rc, "calibration.%s: not a .npy of samples", name);
        if (rc == 0) rc = rouse_sha256_update(&h, name, strlen(name) + 1);
        if (rc == 0) rc = rouse_sha256_update(&h, buf, len);
        free(buf);
        w->calib_v[i] = cli_tensor_view(&w->calib_t[i], name);
    }
    uint8_t d[ROUSE_SHA256_LEN];
    char hex[ROUSE_SHA256_HEX_LEN + 1];
    if (rc == 0 && rouse_sha256_final(&h, d) == 0) {
        rouse_sha256_hex(d, hex);
        snprintf(w->calib_key, sizeof(w->calib_key), "%.*s", CALIB_KEY_LEN, hex);
    }
    rouse_sha256_fini(&h);
    return rc;
}

static worker_precision precision_of(const worker_args *w)
{
    return (worker_precision){.precision = w->precision,
                              .calib = w->calib_v,
                              .n_calib = w->n_calib,
                              .calib_key = w->n_calib ? w->calib_key : NULL};
}

static void apply_log_level(const worker_args *w)
{
    rouse_log_level lvl;
    if (w->log_level && rouse_log_level_parse(w->log_level, &lvl) == 0) rouse_log_set_level(lvl);
}

int cli_instance_main(int argc, char **argv)
{
    worker_args w;
    if (!parse_worker_args(argc, argv, "--check", &w)) {
        cli_instance_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    apply_log_level(&w);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (load_calibration(&w, &eb) < 0) {
        /* The deploy check's answer: the samples do not fit (400). */
        worker_send_error(w.fd, IPC_READY, 0, 400, eb.msg);
        free_calibration(&w);
        return 1;
    }
    instance_opts o = {.fd = w.fd,
                       .model_path = w.model_path,
                       .name = w.name,
                       .version = w.version,
                       .threads = w.threads,
                       .check_only = w.check,
                       .memory_mb = w.memory_mb,
                       .plan_cache = w.plan_cache,
                       .prec = precision_of(&w),
                       .max_context = w.max_context,
                       .tok_paths = w.tok,
                       .max_batch = w.max_batch,
                       .streams = w.streams,
                       .prefill_batch = w.prefill_batch,
                       .prefill_delay_us = w.prefill_delay_us};
    int rc = instance_main(&o);
    free_calibration(&w);
    return rc;
}

void cli_template_usage(FILE *out)
{
    fprintf(out,
            "usage: rouse __template --fd N --model PATH --name NAME --version V\n"
            "                        [--threads T] [--plan-cache DIR] [--sha256 HEX]\n"
            "                        [--precision P] [--calibrate NAME=NPY]... [--max-batch N]\n"
            "                        [--log-level L] [--weight-pages hugetlb|thp|4k]\n"
            "                        [--max-context N [--tokenizer JSON | --vocab V --merges M]]\n"
            "                        [--streams N [--prefill-batch N --prefill-delay-us US]]\n"
            "                        [--memory-mb N] [--sandbox UID [--cgroup|--cgroup2 CONTROLLER=DIR]...\n"
            "                        [--pidns PID:INODE]]\n"
            "(started by rouse serve)\n");
}

static template_opts template_opts_of(const worker_args *w)
{
    return (template_opts){.fd = w->fd,
                           .model_path = w->model_path,
                           .plan_cache = w->plan_cache,
                           .model_sha256 = w->sha256,
                           .name = w->name,
                           .version = w->version,
                           .threads = w->threads,
                           .memory_mb = w->memory_mb,
                           .weight_pages = w->weight_pages,
                           .prec = precision_of(w),
                           .max_context = w->max_context,
                           .tok_paths = w->tok,
                           .max_batch = w->max_batch,
                           .streams = w->streams,
                           .prefill_batch = w->prefill_batch,
                           .prefill_delay_us = w->prefill_delay_us,
                           .sandbox = w->sandbox};
}

int cli_template_main(int argc, char **argv)
{
    worker_args w;
    if (!parse_worker_args(argc, argv, "--sha256", &w)) {
        cli_template_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    apply_log_level(&w);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (load_calibration(&w, &eb) < 0) {
        worker_send_error(w.fd, IPC_READY, 0, 400, eb.msg);
        free_calibration(&w);
        return 1;
    }
    template_opts o = template_opts_of(&w);
    int rc = template_main(&o);
    free_calibration(&w);
#if defined(__SANITIZE_ADDRESS__)
    /* LeakSanitizer's exit check reads /proc/self/maps and stops the
     * process's threads through a traced child: inside the sandbox (no
     * /proc, no fork, no ptrace) it can only fail, and abort. Sandboxed
     * templates and instances of sanitizer builds end without it; the
     * same code under --isolation process keeps it. */
    if (o.sandbox.on) {
        fflush(NULL);
        _exit(rc);
    }
#endif
    return rc;
}

/* In the zygote, after it started a template: warms that model's kernels
 * (the template's --log-level is its own, not the zygote's). */
static int warm_template(int argc, char **argv)
{
    worker_args w;
    if (!parse_worker_args(argc, argv, "--sha256", &w)) return ROUSE_EINVAL;
    rouse_errbuf eb;
    int rc = load_calibration(&w, &eb);
    if (rc == 0) {
        template_opts o = template_opts_of(&w);
        rc = template_warm(&o);
    }
    free_calibration(&w);
    return rc;
}

void cli_zygote_usage(FILE *out)
{
    fprintf(out,
            "usage: rouse __zygote --fd N [--warm-fd N] [--log-level L] [--sandbox on|off]\n"
            "                      [--title-room PADDING]\n"
            "(started by rouse serve)\n");
}

int cli_zygote_main(int argc, char **argv)
{
    int fd = -1, warm_fd = -1;
    bool harden = false;
    int own = argc; /* its arguments before the padding (--title-room) */
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            cli_zygote_usage(stderr);
            return CLI_EXIT_USAGE;
        }
        if (strcmp(a, "--fd") == 0) {
            fd = atoi(v);
        } else if (strcmp(a, "--warm-fd") == 0) {
            warm_fd = atoi(v);
        } else if (strcmp(a, "--log-level") == 0) {
            rouse_log_level lvl;
            if (rouse_log_level_parse(v, &lvl) == 0) rouse_log_set_level(lvl);
        } else if (strcmp(a, "--sandbox") == 0) {
            harden = strcmp(v, "on") == 0;
        } else if (strcmp(a, "--title-room") == 0) {
            if (own == argc) own = i;
        } else {
            cli_zygote_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (fd < 0) {
        cli_zygote_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    /* The templates it forks are `rouse __template` started without exec;
     * each takes that title over the room the padding made. */
    rouse_proc_title_init(argc, argv);
    char *title[16];
    int n = 0;
    for (int i = 0; i < own && n < 15; i++)
        title[n++] = argv[i];
    title[n] = NULL;
    rouse_proc_title_set(n, title);
    /* Under the sandbox tier the zygote keeps only what its templates need
     * before their own sandbox; failing that it ends, loudly, and serve
     * execs templates (which still enter their sandbox). */
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (harden && sandbox_zygote_enter(&eb) < 0) {
        LOG_ERROR("zygote", "%s", eb.msg);
        return 1;
    }
    return zygote_main(fd, warm_fd, cli_template_main, warm_template);
}
