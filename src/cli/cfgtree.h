/*
 * A function config as the client builds it: an ordered tree of keys whose
 * leaves hold JSON text, filled from command-line flags (`--max 4`,
 * `--set scaling.max=4`) or a manifest, and written out as the body of
 * PUT /v1/functions/{name}. The client does not know every field: the
 * server's config parser is the one table of them, and its 400 names an
 * unknown or wrong one.
 */
#ifndef ROUSE_CLI_CFGTREE_H
#define ROUSE_CLI_CFGTREE_H

#include <stdbool.h>

#include "common/buf.h"
#include "common/json.h"

typedef struct cfg_node cfg_node;
struct cfg_node {
    char *key;     /* owned; NULL for the root */
    char *literal; /* owned JSON text of a leaf; NULL for an object */
    int line;      /* where it came from in a manifest, or 0 */
    cfg_node *child, *next;
};

/* An empty object. owned: free with cfg_free. NULL when out of memory. */
cfg_node *cfg_new(void);
void cfg_free(cfg_node *n);

/* Sets the leaf at a dotted path ("scaling.max") to a JSON literal,
 * creating objects on the way and replacing an earlier value. 0 or
 * ROUSE_ENOMEM, ROUSE_EINVAL when the path crosses a leaf. */
int cfg_set(cfg_node *root, const char *path, const char *literal, int line);

/* Returns the object at key below obj, creating it. NULL when out of
 * memory or when key is a leaf. */
cfg_node *cfg_object(cfg_node *obj, const char *key, int line);

/* The member named key of obj, or NULL. */
cfg_node *cfg_get(const cfg_node *obj, const char *key);

/* Appends the JSON of n. */
int cfg_write(const cfg_node *n, rouse_buf *b);

/* The JSON literal for a command-line or manifest scalar: integers and
 * decimals stay numbers, true/false/null stay themselves, anything else
 * becomes a string (quoted: a string whatever it looks like). */
int cfg_literal(const char *text, bool quoted, rouse_buf *out);

/* Appends "path\tjson\n" for every leaf of v, paths dotted, in document
 * order (arrays are one leaf). For a field-by-field comparison. */
int cfg_flatten(const json_value *v, const char *prefix, rouse_buf *out);

#endif
