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

#include "cli/cli.h"
#include "common/log.h"
#include "common/proctitle.h"
#include "worker/instance.h"
#include "worker/template.h"
#include "worker/zygote.h"

void cli_instance_usage(FILE *out)
{
    fprintf(out,
            "usage: rouse __instance --fd N --model PATH --name NAME --version V\n"
            "                        [--threads T] [--plan-cache DIR] [--log-level L] [--check]\n"
            "(started by rouse serve)\n");
}

int cli_instance_main(int argc, char **argv)
{
    instance_opts o = {.fd = -1, .name = "", .version = "1", .threads = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--check") == 0) {
            o.check_only = true;
            continue;
        }
        if (!v) {
            cli_instance_usage(stderr);
            return CLI_EXIT_USAGE;
        }
        if (strcmp(a, "--fd") == 0)
            o.fd = atoi(v);
        else if (strcmp(a, "--model") == 0)
            o.model_path = v;
        else if (strcmp(a, "--name") == 0)
            o.name = v;
        else if (strcmp(a, "--version") == 0)
            o.version = v;
        else if (strcmp(a, "--threads") == 0)
            o.threads = atoi(v);
        else if (strcmp(a, "--plan-cache") == 0)
            o.plan_cache = v;
        else if (strcmp(a, "--log-level") == 0) {
            rouse_log_level lvl;
            if (rouse_log_level_parse(v, &lvl) == 0) rouse_log_set_level(lvl);
        } else {
            cli_instance_usage(stderr);
            return CLI_EXIT_USAGE;
        }
        i++;
    }
    if (o.fd < 0 || !o.model_path) {
        cli_instance_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return instance_main(&o);
}

void cli_template_usage(FILE *out)
{
    fprintf(out, "usage: rouse __template --fd N --model PATH --name NAME --version V\n"
                 "                        [--threads T] [--plan-cache DIR] [--sha256 HEX]\n"
                 "                        [--log-level L]\n"
                 "(started by rouse serve)\n");
}

/* Parses `__template` arguments into o. False on a usage error. */
static bool parse_template_opts(int argc, char **argv, template_opts *o)
{
    *o = (template_opts){.fd = -1, .name = "", .version = "1", .threads = 1};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return false;
        if (strcmp(a, "--fd") == 0)
            o->fd = atoi(v);
        else if (strcmp(a, "--model") == 0)
            o->model_path = v;
        else if (strcmp(a, "--name") == 0)
            o->name = v;
        else if (strcmp(a, "--version") == 0)
            o->version = v;
        else if (strcmp(a, "--threads") == 0)
            o->threads = atoi(v);
        else if (strcmp(a, "--plan-cache") == 0)
            o->plan_cache = v;
        else if (strcmp(a, "--sha256") == 0)
            o->model_sha256 = v;
        else if (strcmp(a, "--log-level") == 0) {
            rouse_log_level lvl;
            if (rouse_log_level_parse(v, &lvl) == 0) rouse_log_set_level(lvl);
        } else {
            return false;
        }
    }
    return o->fd >= 0 && o->model_path;
}

int cli_template_main(int argc, char **argv)
{
    template_opts o;
    if (!parse_template_opts(argc, argv, &o)) {
        cli_template_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return template_main(&o);
}

/* In the zygote, after it started a template: warms that model's kernels. */
static int warm_template(int argc, char **argv)
{
    rouse_log_level keep = rouse_log_get_level();
    template_opts o;
    bool ok = parse_template_opts(argc, argv, &o);
    rouse_log_set_level(keep); /* the template's --log-level is not the zygote's */
    return ok ? template_warm(&o) : ROUSE_EINVAL;
}

void cli_zygote_usage(FILE *out)
{
    fprintf(out,
            "usage: rouse __zygote --fd N [--warm-fd N] [--log-level L] [--title-room PADDING]\n"
            "(started by rouse serve)\n");
}

int cli_zygote_main(int argc, char **argv)
{
    int fd = -1, warm_fd = -1;
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
    return zygote_main(fd, warm_fd, cli_template_main, warm_template);
}
