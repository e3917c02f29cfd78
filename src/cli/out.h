/*
 * Output conventions of the client subcommands (docs/rouse.1, OUTPUT):
 * tables sized to the terminal, colour only on a terminal and never with
 * NO_COLOR (or TERM=dumb), progress drawn in place on a terminal and as
 * plain lines otherwise.
 */
#ifndef ROUSE_CLI_OUT_H
#define ROUSE_CLI_OUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"

/* True when f is a terminal. */
bool cli_out_tty(FILE *f);

/* The width of the terminal on stdout; $COLUMNS or 80 when not a terminal. */
int cli_out_width(void);

/* SGR sequences for f: "" unless colour is allowed there. */
typedef enum cli_style { CLI_BOLD, CLI_DIM, CLI_RED, CLI_GREEN, CLI_YELLOW, CLI_RESET } cli_style;
const char *cli_style_of(FILE *f, cli_style s);

/* A table of text cells, printed with columns as wide as their widest cell;
 * when the row is wider than the terminal, the column marked flexible
 * (the last by default) is cut with "..." to fit. */
#define CLI_TABLE_MAX_COLS 12
typedef struct cli_table {
    int n_cols;
    const char *heads[CLI_TABLE_MAX_COLS];
    bool right[CLI_TABLE_MAX_COLS]; /* right-aligned (numbers) */
    int flex;                       /* the column to cut */
    rouse_buf cells;                /* NUL-separated cells, row after row */
    int n_rows;
} cli_table;

/* heads: n_cols titles; a title starting with '>' is right-aligned (the '>'
 * is not printed). */
void cli_table_init(cli_table *t, int n_cols, const char *const *heads);
void cli_table_fini(cli_table *t);
/* Appends one cell (printf-style); rows fill left to right. */
void cli_table_cell(cli_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_table_print(const cli_table *t, FILE *out);

/* A progress line for a transfer of `total` bytes on stderr: a bar redrawn
 * in place on a terminal, a line every 25% otherwise. */
typedef struct cli_progress {
    const char *label;
    uint64_t total;
    uint64_t start_ns, last_ns;
    int last_quarter;
    bool tty, drawn;
} cli_progress;

void cli_progress_init(cli_progress *p, const char *label, uint64_t total);
void cli_progress_update(cli_progress *p, uint64_t done);
void cli_progress_finish(cli_progress *p);

/* "1.5 MB", "812 kB", "96 B" */
void cli_format_bytes(char *out, size_t cap, uint64_t n);

#endif
