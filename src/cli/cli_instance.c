/*
 * `rouse __instance` and `rouse __template`: the hidden subcommands that
 * serve execs for deploy-time model checks (which also compile the plan)
 * and for the template process of each function version, which forks the
 * instances. Not for users: their arguments are serve's business and may
 * change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/log.h"
#include "worker/instance.h"
#include "worker/template.h"

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

int cli_template_main(int argc, char **argv)
{
    template_opts o = {.fd = -1, .name = "", .version = "1", .threads = 1};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            cli_template_usage(stderr);
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
        else if (strcmp(a, "--sha256") == 0)
            o.model_sha256 = v;
        else if (strcmp(a, "--log-level") == 0) {
            rouse_log_level lvl;
            if (rouse_log_level_parse(v, &lvl) == 0) rouse_log_set_level(lvl);
        } else {
            cli_template_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (o.fd < 0 || !o.model_path) {
        cli_template_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return template_main(&o);
}
