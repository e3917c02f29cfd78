/*
 * main() of rouse-worker: the processes `rouse serve` runs its models in
 * (its zygote, the templates it forks or serve execs, the deploy check),
 * and nothing else. The same subcommands are in `rouse` itself (`rouse
 * __zygote` ...); this binary links only the engine, the worker and what
 * they use, so that every process forked from it copies and faults fewer
 * mappings (a template of `rouse` maps about 45 shared libraries, most of
 * them the client's and the daemon's: GnuTLS, libcurl, Kerberos, LDAP,
 * SQLite, libpq, libmicrohttpd). serve takes it when it sits next to its
 * own binary (`rouse-worker` beside `rouse`), and itself otherwise.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "__instance") == 0)
        return cli_instance_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "__template") == 0)
        return cli_template_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "__zygote") == 0) return cli_zygote_main(argc - 1, argv + 1);
    fprintf(stderr, "rouse-worker: started by `rouse serve` only (__zygote, __template or "
                    "__instance)\n");
    return CLI_EXIT_USAGE;
}
