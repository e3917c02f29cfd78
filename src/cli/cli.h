/*
 * The rouse subcommands. Each takes the arguments after its own name
 * (argv[0] is the subcommand name) and returns the process exit status:
 * 0 ok, 1 the operation failed, 2 usage error (docs/architecture.md).
 */
#ifndef ROUSE_CLI_H
#define ROUSE_CLI_H

#include <stddef.h>
#include <stdio.h>

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

typedef struct cli_command {
    const char *name;
    const char *summary; /* one line for `rouse help`; NULL hides the command */
    int (*main)(int argc, char **argv);
    void (*usage)(FILE *out); /* full help for `rouse <cmd> --help` */
} cli_command;

/* The table of subcommands, terminated by an entry with name == NULL. */
extern const cli_command cli_commands[];

/* Top-level usage (the list of subcommands). */
void cli_usage(FILE *out);

/* True when argv[1..] contains -h or --help before a "--". */
int cli_wants_help(int argc, char **argv);

/* Subcommands implemented in their own cli_<name>.c files. */
int cli_run_main(int argc, char **argv);
void cli_run_usage(FILE *out);
int cli_serve_main(int argc, char **argv);
void cli_serve_usage(FILE *out);
int cli_instance_main(int argc, char **argv);
void cli_instance_usage(FILE *out);
int cli_template_main(int argc, char **argv);
void cli_template_usage(FILE *out);
int cli_zygote_main(int argc, char **argv);
void cli_zygote_usage(FILE *out);
/* Client commands of a running server: cli_deploy.c, cli_invoke.c, and
 * cli_functions.c (ls, status, versions, rollback, rm, alias). */
int cli_deploy_main(int argc, char **argv);
void cli_deploy_usage(FILE *out);
int cli_invoke_main(int argc, char **argv);
void cli_invoke_usage(FILE *out);
int cli_ls_main(int argc, char **argv);
void cli_ls_usage(FILE *out);
int cli_status_main(int argc, char **argv);
void cli_status_usage(FILE *out);
int cli_rollback_main(int argc, char **argv);
void cli_rollback_usage(FILE *out);
int cli_versions_main(int argc, char **argv);
void cli_versions_usage(FILE *out);
int cli_rm_main(int argc, char **argv);
void cli_rm_usage(FILE *out);
int cli_alias_main(int argc, char **argv);
void cli_alias_usage(FILE *out);
int cli_logs_main(int argc, char **argv);
void cli_logs_usage(FILE *out);
int cli_bench_main(int argc, char **argv);
void cli_bench_usage(FILE *out);
int cli_version_main(int argc, char **argv);
void cli_version_usage(FILE *out);
/* rouse completion and the man page, from the help texts (cli_completion.c). */
int cli_completion_main(int argc, char **argv);
void cli_completion_usage(FILE *out);
/* Manifests (cli_apply.c). */
int cli_apply_main(int argc, char **argv);
void cli_apply_usage(FILE *out);
int cli_diff_main(int argc, char **argv);
void cli_diff_usage(FILE *out);

/* rouse usage (cli_usage.c) */
int cli_usage_main(int argc, char **argv);
int cli_keys_main(int argc, char **argv);
void cli_keys_usage(FILE *out);
void cli_usage_usage(FILE *out);

/* Asynchronous jobs and batch files (cli_jobs.c). */
int cli_job_main(int argc, char **argv);
void cli_job_usage(FILE *out);
int cli_jobs_main(int argc, char **argv);
void cli_jobs_usage(FILE *out);
int cli_batch_main(int argc, char **argv);
void cli_batch_usage(FILE *out);
struct cli_client;
/* `rouse invoke --async`: submits the request with Prefer: respond-async
 * and prints the job id (the 202's JSON with --json). */
int cli_jobs_submit(struct cli_client *c, const char *path, const char *const *headers,
                    const void *body, size_t len);

/* rouse compile */
int cli_compile_main(int argc, char **argv);
void cli_compile_usage(FILE *out);

/* rouse inspect */
int cli_inspect_main(int argc, char **argv);
void cli_inspect_usage(FILE *out);

#endif
