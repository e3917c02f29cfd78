/*
 * The request lines of a batch file (JSONL), as both job stores read them:
 * line ends dropped, blank lines carry no request, every line counted.
 */
#ifndef ROUSE_STORE_BATCH_LINES_H
#define ROUSE_STORE_BATCH_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The next request line of buf[0..size) from *off on: 1 with its offset
 * and length and *off past it, or 0. *lineno counts every line, blank ones
 * included. `whole`: buf ends where the input does; else a line without
 * its newline is not complete, and 0 leaves *off at its start. */
int batch_next_line(const char *buf, size_t size, bool whole, size_t *off, int64_t *lineno,
                    size_t *line_off, size_t *len);

#endif
