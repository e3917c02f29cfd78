/*
 * The subcommand table and the top-level help. Adding a subcommand means one
 * row here and one cli_<name>.c file with its main and usage.
 */
#include "cli/cli.h"

#include <string.h>

#ifndef ROUSE_VERSION
#error "ROUSE_VERSION must be defined by the build"
#endif

static int help_main(int argc, char **argv);
static void help_usage(FILE *out);

const cli_command cli_commands[] = {
    {"help", "show help for rouse or one of its commands", help_main, help_usage},
    {"run", "run a model with the engine alone: outputs, timings, test sets", cli_run_main,
     cli_run_usage},
    {"compile", "compile an .onnx model into a plan that loads in a millisecond", cli_compile_main,
     cli_compile_usage},
    {"inspect", "what a model holds: inputs, operators and their support, weights, cost",
     cli_inspect_main, cli_inspect_usage},
    {"serve", "run the daemon: HTTP API and instances", cli_serve_main, cli_serve_usage},
    {"apply", "make the server match a manifest (rouse.yaml)", cli_apply_main, cli_apply_usage},
    {"diff", "show what apply would change; exit 1 when something would", cli_diff_main,
     cli_diff_usage},
    {"deploy", "upload a model and deploy it as a function", cli_deploy_main, cli_deploy_usage},
    {"invoke", "call a function and print its response", cli_invoke_main, cli_invoke_usage},
    {"ls", "list the deployed functions", cli_ls_main, cli_ls_usage},
    {"job", "show an asynchronous job (--wait for its end), or retry one", cli_job_main,
     cli_job_usage},
    {"jobs", "list a function's asynchronous jobs (--status failed: dead letters)", cli_jobs_main,
     cli_jobs_usage},
    {"batch", "run a JSONL file of requests as a batch, with progress and results",
     cli_batch_main, cli_batch_usage},
    {"status", "show a function's versions, aliases and instances", cli_status_main,
     cli_status_usage},
    {"rollback", "move a function back to its previous version", cli_rollback_main,
     cli_rollback_usage},
    {"usage", "what the recorded invocations cost, and always-on for comparison", cli_usage_main,
     cli_usage_usage},
    {"versions", "list a function's versions and the aliases that route to them",
     cli_versions_main, cli_versions_usage},
    {"alias", "point an alias at a version, or split its traffic by weight", cli_alias_main,
     cli_alias_usage},
    {"rm", "delete a function", cli_rm_main, cli_rm_usage},
    {"logs", "print (or follow) what a function's instances wrote and how they ended",
     cli_logs_main, cli_logs_usage},
    {"keys", "create, list and revoke API keys (serve --auth)", cli_keys_main, cli_keys_usage},
    {"bench", "load a function: latency histogram, start kinds, statuses", cli_bench_main,
     cli_bench_usage},
    {"completion", "print a bash or zsh completion script, or the man page", cli_completion_main,
     cli_completion_usage},
    {"version", "print the client's and the server's version", cli_version_main,
     cli_version_usage},
    {"__instance", NULL, cli_instance_main, cli_instance_usage}, /* started by serve */
    {"__template", NULL, cli_template_main, cli_template_usage}, /* started by serve */
    {"__zygote", NULL, cli_zygote_main, cli_zygote_usage},       /* started by serve */
    {NULL, NULL, NULL, NULL},
};

void cli_usage(FILE *out)
{
    fprintf(out,
            "rouse %s: serverless inference that wakes in a millisecond\n\n"
            "usage: rouse <command> [options]\n"
            "       rouse --version\n\n"
            "commands:\n",
            ROUSE_VERSION);
    for (const cli_command *c = cli_commands; c->name; c++)
        if (c->summary) fprintf(out, "  %-10s %s\n", c->name, c->summary);
    fprintf(out, "\nRun 'rouse <command> --help' for a command's options.\n");
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return 1;
    }
    return 0;
}

static void help_usage(FILE *out)
{
    fprintf(out, "usage: rouse help [command]\n\n"
                 "Without a command, lists the commands; with one, shows its options.\n");
}

static int help_main(int argc, char **argv)
{
    if (argc <= 1) {
        cli_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        help_usage(stdout);
        return CLI_EXIT_OK;
    }
    for (const cli_command *c = cli_commands; c->name; c++) {
        if (strcmp(c->name, argv[1]) == 0) {
            c->usage(stdout);
            return CLI_EXIT_OK;
        }
    }
    fprintf(stderr, "rouse: unknown command '%s'\n\n", argv[1]);
    cli_usage(stderr);
    return CLI_EXIT_USAGE;
}
