/*
 * Manifests (docs/manifest.md): a YAML file that declares functions for
 * rouse apply and rouse diff.
 *
 *   name: shop                  # optional label, stored in each config as "manifest"
 *   functions:
 *     NAME:
 *       model: path/to/model.onnx   # relative to the manifest's folder
 *       <any field of the HTTP API's function config>: ...
 *       aliases:
 *         ALIAS: 2 | "1:90,2:10" | [{version: 1, weight: 90}, ...]
 *
 * Values may name environment variables, ${VAR} or ${VAR:-default}. The
 * config fields other than model and aliases are passed to the server as
 * written (mappings become objects; plain scalars that look like numbers or
 * true/false/null keep that type, quoted ones are strings), so the server's
 * config parser stays the one table of fields; manifest_key_line() takes
 * the server's complaint about a field back to its line. Guarantees: a
 * malformed file, an unknown top-level or function key, a wrong type, an
 * unset variable or a missing model file is an error naming file, line and
 * key; nothing is printed here.
 */
#ifndef ROUSE_CLI_MANIFEST_H
#define ROUSE_CLI_MANIFEST_H

#include "cli/cfgtree.h"
#include "rouse/err.h"

#define MANIFEST_MAX_ROUTES 8

typedef struct manifest_alias {
    char *name;
    int line;
    int n_routes;
    struct {
        long long version, weight;
    } routes[MANIFEST_MAX_ROUTES];
} manifest_alias;

typedef struct manifest_fn {
    char *name;
    int line;
    char *model;    /* the model's path, resolved against the manifest's folder */
    cfg_node *config; /* every field but model and aliases */
    manifest_alias *aliases;
    int n_aliases;
} manifest_fn;

typedef struct manifest {
    char *path;
    char *label; /* top-level name:, or NULL */
    manifest_fn *fns;
    int n_fns;
} manifest;

/* Reads and checks the manifest at path. Caller-owned: release with
 * manifest_fini (also after a failure). */
int manifest_load(const char *path, manifest *out, rouse_errbuf *eb);
void manifest_fini(manifest *m);

/* The line of a config field ("scaling.max") of f, or of f itself. */
int manifest_key_line(const manifest_fn *f, const char *dotted);

#endif
