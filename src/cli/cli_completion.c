/*
 * rouse completion bash|zsh, and rouse completion man (the man page,
 * docs/rouse.1): all three are generated from the command table and each
 * command's help text, so that a verb or a flag cannot be documented in one
 * place and missing from another. A flag is any word of a help text that
 * starts with '-' after a space, '[', '(' or '|'.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"

void cli_completion_usage(FILE *out)
{
    fprintf(out, "usage: rouse completion bash|zsh|man\n\n"
                 "Prints a completion script for bash or zsh, or the man page (troff):\n"
                 "  source <(rouse completion bash)        # in ~/.bashrc\n"
                 "  rouse completion zsh > \"${fpath[1]}/_rouse\"\n"
                 "  rouse completion man > rouse.1 && man ./rouse.1\n");
}

/* The help text of c. owned: free(). */
static char *help_of(const cli_command *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    c->usage(f);
    fclose(f);
    return text;
}

/* Appends the flags of a help text to out, space-separated, each once. */
static void flags_of(const char *text, rouse_buf *out)
{
    for (const char *p = text; *p; p++) {
        if (*p != '-' || (p != text && !strchr(" [(|\n", p[-1]))) continue;
        size_t n = 1;
        while (p[n] == '-' || (p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
               (p[n] >= '0' && p[n] <= '9'))
            n++;
        /* "-" alone, "--" alone, or a number ("-1") is no flag. */
        if (n < 2 || (n == 2 && p[1] == '-') || (p[1] >= '0' && p[1] <= '9')) continue;
        char flag[64];
        snprintf(flag, sizeof(flag), "%.*s", (int)(n < 63 ? n : 63), p);
        bool seen = false;
        for (const char *q = out->data ? strstr(out->data, flag) : NULL; q; q = strstr(q + 1, flag))
            if ((q == out->data || q[-1] == ' ') && (q[strlen(flag)] == ' ' || !q[strlen(flag)]))
                seen = true;
        if (!seen) rouse_buf_appendf(out, "%s%s", out->len ? " " : "", flag);
        p += n - 1;
    }
}

static void bash(FILE *out)
{
    fprintf(out, "# bash completion for rouse (rouse completion bash)\n"
                 "_rouse() {\n"
                 "    local cur=\"${COMP_WORDS[COMP_CWORD]}\" opts=\"\"\n"
                 "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
                 "        COMPREPLY=($(compgen -W \"");
    for (const cli_command *c = cli_commands; c->name; c++)
        if (c->summary) fprintf(out, "%s%s", c == cli_commands ? "" : " ", c->name);
    fprintf(out, " --help --version\" -- \"$cur\"))\n"
                 "        return\n"
                 "    fi\n"
                 "    case \"${COMP_WORDS[1]}\" in\n");
    for (const cli_command *c = cli_commands; c->name; c++) {
        if (!c->summary) continue;
        char *text = help_of(c);
        rouse_buf f;
        rouse_buf_init(&f);
        if (text) flags_of(text, &f);
        fprintf(out, "        %s) opts=\"%s --help\" ;;\n", c->name, f.data ? f.data : "");
        rouse_buf_fini(&f);
        free(text);
    }
    fprintf(out, "    esac\n"
                 "    if [[ \"$cur\" == -* ]]; then\n"
                 "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
                 "    else\n"
                 "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
                 "    fi\n"
                 "}\n"
                 "complete -o default -F _rouse rouse\n");
}

static void zsh_quote(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\'') fputs("'\\''", out);
        else if (*s == ':') fputs("\\:", out);
        else fputc(*s, out);
    }
}

static void zsh(FILE *out)
{
    fprintf(out, "#compdef rouse\n"
                 "# zsh completion for rouse (rouse completion zsh)\n"
                 "_rouse() {\n"
                 "    local -a cmds opts\n"
                 "    cmds=(\n");
    for (const cli_command *c = cli_commands; c->name; c++) {
        if (!c->summary) continue;
        fprintf(out, "        '%s:", c->name);
        zsh_quote(out, c->summary);
        fprintf(out, "'\n");
    }
    fprintf(out, "    )\n"
                 "    if (( CURRENT == 2 )); then\n"
                 "        _describe 'command' cmds\n"
                 "        return\n"
                 "    fi\n"
                 "    case $words[2] in\n");
    for (const cli_command *c = cli_commands; c->name; c++) {
        if (!c->summary) continue;
        char *text = help_of(c);
        rouse_buf f;
        rouse_buf_init(&f);
        if (text) flags_of(text, &f);
        fprintf(out, "        %s) opts=(%s --help) ;;\n", c->name, f.data ? f.data : "");
        rouse_buf_fini(&f);
        free(text);
    }
    fprintf(out, "    esac\n"
                 "    if [[ $PREFIX == -* ]]; then\n"
                 "        compadd -a opts\n"
                 "    else\n"
                 "        _files\n"
                 "    fi\n"
                 "}\n"
                 "_rouse \"$@\"\n");
}

/* troff: a backslash is \e, and a line may not start with '.' or '\''. */
static void man_text(FILE *out, const char *s)
{
    bool bol = true;
    for (; *s; s++) {
        if (bol && (*s == '.' || *s == '\'')) fputs("\\&", out);
        if (*s == '\\') fputs("\\e", out);
        else if (*s == '-') fputs("\\-", out);
        else fputc(*s, out);
        bol = *s == '\n';
    }
    if (!bol) fputc('\n', out);
}

static void man(FILE *out)
{
    fprintf(out, ".\\\" The rouse man page, generated by `rouse completion man` from the help\n"
                 ".\\\" texts; do not edit by hand.\n"
                 ".TH ROUSE 1 \"\" \"rouse %s\" \"User Commands\"\n"
                 ".SH NAME\n"
                 "rouse \\- serverless inference that wakes in a millisecond\n"
                 ".SH SYNOPSIS\n"
                 ".B rouse\n"
                 ".I command\n"
                 "[options]\n"
                 ".br\n"
                 ".B rouse\n"
                 "\\-\\-version\n"
                 ".SH DESCRIPTION\n"
                 "rouse runs ONNX models as functions: the daemon (rouse serve) scales each\n"
                 "function's instances from zero, and the other commands deploy, call and\n"
                 "watch them over its HTTP API, or run a model with the engine alone.\n"
                 "Every command takes \\-\\-help.\n"
                 ".SH COMMANDS\n",
            ROUSE_VERSION);
    for (const cli_command *c = cli_commands; c->name; c++) {
        if (!c->summary) continue;
        fprintf(out, ".SS \"rouse %s\"\n", c->name);
        man_text(out, c->summary);
        char *text = help_of(c);
        if (text) {
            fprintf(out, ".PP\n.nf\n");
            man_text(out, text);
            fprintf(out, ".fi\n");
        }
        free(text);
    }
    fprintf(out, ".SH OUTPUT\n"
                 "Tables are sized to the terminal; colour is used only on a terminal and\n"
                 "never when NO_COLOR is set. \\-\\-json prints the server's JSON as it is (the\n"
                 "schemas of the HTTP API); \\-q prints nothing but errors.\n"
                 ".SH ENVIRONMENT\n"
                 ".TP\n.B ROUSE_SERVER\n"
                 "the server's URL when \\-\\-server is not given (default http://127.0.0.1:8080)\n"
                 ".TP\n.B ROUSE_KEY\n"
                 "the API key, sent as a bearer token when \\-\\-key is not given\n"
                 ".TP\n.B ROUSE_API_KEY\n"
                 "the same, when ROUSE_KEY is not set\n"
                 ".TP\n.B NO_COLOR\n"
                 "when set, no colour\n"
                 ".TP\n.B http_proxy, https_proxy, no_proxy\n"
                 "proxies, as libcurl reads them\n"
                 ".SH EXIT STATUS\n"
                 "0 success; 1 the operation failed (the server could not be reached, or\n"
                 "answered an error, whose message is printed; rouse diff: something would\n"
                 "change); 2 a usage error (the usage is printed on stderr).\n"
                 ".SH FILES\n"
                 "A manifest for rouse apply and rouse diff: see docs/manifest.md.\n");
}

int cli_completion_main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "rouse completion: give bash, zsh or man\n\n");
        cli_completion_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "bash") == 0)
        bash(stdout);
    else if (strcmp(argv[1], "zsh") == 0)
        zsh(stdout);
    else if (strcmp(argv[1], "man") == 0)
        man(stdout);
    else {
        fprintf(stderr, "rouse completion: unknown shell '%s' (bash, zsh or man)\n\n", argv[1]);
        cli_completion_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}
