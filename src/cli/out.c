/*
 * Output helpers (see out.h). Everything that decides between a terminal
 * and a pipe is here, so that every verb decides the same way.
 */
#include "cli/out.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/timeutil.h"

bool cli_out_tty(FILE *f)
{
    return isatty(fileno(f)) == 1;
}

int cli_out_width(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    int w = c ? atoi(c) : 0;
    return w > 0 ? w : 80;
}

const char *cli_style_of(FILE *f, cli_style s)
{
    const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
    if ((nc && *nc) || (term && strcmp(term, "dumb") == 0) || !cli_out_tty(f)) return "";
    switch (s) {
    case CLI_BOLD: return "\033[1m";
    case CLI_DIM: return "\033[2m";
    case CLI_RED: return "\033[31m";
    case CLI_GREEN: return "\033[32m";
    case CLI_YELLOW: return "\033[33m";
    case CLI_RESET: return "\033[0m";
    }
    return "";
}

void cli_table_init(cli_table *t, int n_cols, const char *const *heads)
{
    memset(t, 0, sizeof(*t));
    t->n_cols = n_cols > CLI_TABLE_MAX_COLS ? CLI_TABLE_MAX_COLS : n_cols;
    for (int i = 0; i < t->n_cols; i++) {
        t->right[i] = heads[i][0] == '>';
        t->heads[i] = heads[i] + (t->right[i] ? 1 : 0);
    }
    t->flex = t->n_cols - 1;
    rouse_buf_init(&t->cells);
}

void cli_table_fini(cli_table *t)
{
    rouse_buf_fini(&t->cells);
}

void cli_table_cell(cli_table *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rouse_buf_vappendf(&t->cells, fmt, ap);
    va_end(ap);
    rouse_buf_append_byte(&t->cells, '\0');
}

static void put_cell(FILE *out, const char *s, int w, bool right, bool last)
{
    int len = (int)strlen(s);
    if (len > w) { /* cut to fit */
        if (w >= 3)
            fprintf(out, "%.*s...", w - 3, s);
        else
            fprintf(out, "%.*s", w, s);
        return;
    }
    if (right)
        fprintf(out, "%*s", w, s);
    else if (last)
        fputs(s, out);
    else
        fprintf(out, "%-*s", w, s);
}

void cli_table_print(const cli_table *t, FILE *out)
{
    int n = t->n_cols;
    int w[CLI_TABLE_MAX_COLS];
    for (int i = 0; i < n; i++)
        w[i] = (int)strlen(t->heads[i]);
    size_t n_cells = 0;
    for (size_t off = 0; off < t->cells.len; off += strlen(t->cells.data + off) + 1) {
        int len = (int)strlen(t->cells.data + off);
        int c = (int)(n_cells++ % (size_t)n);
        if (len > w[c]) w[c] = len;
    }
    int total = 0;
    for (int i = 0; i < n; i++)
        total += w[i] + (i ? 2 : 0);
    /* Cut only on a terminal: a pipe gets every cell whole. */
    int width = cli_out_tty(out) ? cli_out_width() : total;
    if (total > width) {
        int cut = w[t->flex] - (total - width);
        w[t->flex] = cut < 4 ? 4 : cut;
    }
    const char *b = cli_style_of(out, CLI_BOLD), *r = cli_style_of(out, CLI_RESET);
    fputs(b, out);
    for (int i = 0; i < n; i++) {
        if (i) fputs("  ", out);
        put_cell(out, t->heads[i], w[i], t->right[i], i == n - 1);
    }
    fprintf(out, "%s\n", r);
    size_t k = 0;
    for (size_t off = 0; off < t->cells.len; off += strlen(t->cells.data + off) + 1, k++) {
        int c = (int)(k % (size_t)n);
        if (c) fputs("  ", out);
        put_cell(out, t->cells.data + off, w[c], t->right[c], c == n - 1);
        if (c == n - 1) fputc('\n', out);
    }
    if (k % (size_t)n) fputc('\n', out);
}

void cli_format_bytes(char *out, size_t cap, uint64_t n)
{
    if (n >= 1000000000ull)
        snprintf(out, cap, "%.1f GB", (double)n / 1e9);
    else if (n >= 1000000ull)
        snprintf(out, cap, "%.1f MB", (double)n / 1e6);
    else if (n >= 1000ull)
        snprintf(out, cap, "%.0f kB", (double)n / 1e3);
    else
        snprintf(out, cap, "%llu B", (unsigned long long)n);
}

void cli_progress_init(cli_progress *p, const char *label, uint64_t total)
{
    memset(p, 0, sizeof(*p));
    p->label = label;
    p->total = total;
    p->tty = cli_out_tty(stderr);
    p->start_ns = rouse_now_ns();
    p->last_quarter = -1;
}

void cli_progress_update(cli_progress *p, uint64_t done)
{
    if (p->total == 0) return;
    if (done > p->total) done = p->total;
    uint64_t now = rouse_now_ns();
    if (!p->tty) {
        int q = (int)(done * 4 / p->total);
        if (q == p->last_quarter) return;
        p->last_quarter = q;
        char a[32], b[32];
        cli_format_bytes(a, sizeof(a), done);
        cli_format_bytes(b, sizeof(b), p->total);
        fprintf(stderr, "%s: %s of %s (%d%%)\n", p->label, a, b, q * 25);
        return;
    }
    /* At most 20 redraws a second, and always the last one. */
    if (p->drawn && done < p->total && now - p->last_ns < 50000000ull) return;
    p->last_ns = now;
    p->drawn = true;
    int width = 0;
    {
        struct winsize ws;
        width = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
    }
    char a[32], b[32], rate[32] = "";
    cli_format_bytes(a, sizeof(a), done);
    cli_format_bytes(b, sizeof(b), p->total);
    double secs = (double)(now - p->start_ns) / 1e9;
    if (secs > 0.05) {
        cli_format_bytes(rate, sizeof(rate), (uint64_t)((double)done / secs));
        strcat(rate, "/s");
    }
    char tail[96];
    snprintf(tail, sizeof(tail), " %3d%% %s/%s %s", (int)(done * 100 / p->total), a, b, rate);
    int bar = width - (int)strlen(p->label) - (int)strlen(tail) - 4;
    if (bar > 40) bar = 40;
    fprintf(stderr, "\r%s [", p->label);
    if (bar > 0) {
        int fill = (int)((double)bar * (double)done / (double)p->total);
        for (int i = 0; i < bar; i++)
            fputc(i < fill ? '#' : '.', stderr);
    }
    fprintf(stderr, "]%s\033[K", tail);
    fflush(stderr);
}

void cli_progress_finish(cli_progress *p)
{
    if (p->tty && p->drawn) {
        cli_progress_update(p, p->total);
        fputc('\n', stderr);
    }
}
