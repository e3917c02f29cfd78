/*
 * The web console's files (console/ in the source tree), embedded in the
 * binary at build time: cmake/embed.cmake writes console_assets.c, a
 * table of each file's name, media type and bytes, from the files as they
 * are (no step that needs the network).
 */
#ifndef ROUSE_SERVER_CONSOLE_ASSETS_H
#define ROUSE_SERVER_CONSOLE_ASSETS_H

#include <stddef.h>

typedef struct console_asset {
    const char *name; /* "index.html", "console.js", ... */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
} console_asset;

/* The embedded files, and how many. */
extern const console_asset console_assets[];
extern const size_t console_n_assets;

#endif
