/*
 * main(): the only place that reads argv at top level or decides the exit
 * status. Dispatches to the subcommand table in src/cli/.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("rouse %s\n", ROUSE_VERSION); /* the client's; `rouse version` asks the server too */
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) cmd = "help";

    for (const cli_command *c = cli_commands; c->name; c++) {
        if (strcmp(c->name, cmd) != 0) continue;
        if (c->main != cli_commands[0].main && cli_wants_help(argc - 1, argv + 1)) {
            c->usage(stdout);
            return CLI_EXIT_OK;
        }
        /* The subcommand sees its own name as argv[0]. */
        return c->main(argc - 1, argv + 1);
    }
    fprintf(stderr, "rouse: unknown command '%s'\n\n", argv[1]);
    cli_usage(stderr);
    return CLI_EXIT_USAGE;
}
