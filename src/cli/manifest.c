/*
 * The manifest reader (see manifest.h), on libyaml's document API: the
 * whole file becomes a node tree with line numbers, which is then walked
 * once. Errors are "FILE:LINE: KEY: what is wrong".
 */
#include "cli/manifest.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "store/store.h"

typedef struct ctx {
    yaml_document_t *doc;
    const char *path;
    rouse_errbuf *eb;
} ctx;

static int line_of(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static int fail(ctx *c, const yaml_node_t *n, const char *key, const char *fmt, const char *arg)
{
    char what[700];
    snprintf(what, sizeof(what), fmt, arg ? arg : "");
    return rouse_err_set(c->eb, ROUSE_EINVAL, "%s:%d: %s: %s", c->path, n ? line_of(n) : 1, key,
                         what);
}

static const char *type_name(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE: return "a value";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "nothing";
    }
}

static yaml_node_t *node(ctx *c, int id)
{
    return yaml_document_get_node(c->doc, id);
}

/* Expands ${VAR} and ${VAR:-default} in a scalar. owned: free(). */
static int expand(ctx *c, const yaml_node_t *n, const char *key, char **out)
{
    const char *s = (const char *)n->data.scalar.value;
    rouse_buf b;
    rouse_buf_init(&b);
    int rc = 0;
    for (const char *p = s; *p && rc == 0;) {
        if (p[0] != '$' || p[1] != '{') {
            rc = rouse_buf_append_byte(&b, (unsigned char)*p++);
            continue;
        }
        const char *end = strchr(p, '}');
        if (!end) {
            rc = fail(c, n, key, "'${' without a closing '}'", NULL);
            break;
        }
        char var[256];
        snprintf(var, sizeof(var), "%.*s", (int)(end - p - 2), p + 2);
        char *def = strstr(var, ":-");
        if (def) {
            *def = '\0';
            def += 2;
        }
        const char *val = getenv(var);
        if (!val || (!*val && def)) val = def;
        if (!val) {
            char msg[600];
            snprintf(msg, sizeof(msg), "environment variable %s is not set (give ${%s:-default})",
                     var, var);
            rc = fail(c, n, key, "%s", msg);
            break;
        }
        rc = rouse_buf_append_str(&b, val);
        p = end + 1;
    }
    if (rc == 0 && !b.data) rc = rouse_buf_append_str(&b, "");
    if (rc < 0) {
        rouse_buf_fini(&b);
        return rc;
    }
    *out = b.data;
    return 0;
}

static bool quoted(const yaml_node_t *n)
{
    return n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
           n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
}

/* A YAML node as JSON text (config fields). */
static int to_json(ctx *c, yaml_node_t *n, const char *key, rouse_buf *out)
{
    if (n->type == YAML_SCALAR_NODE) {
        if (!quoted(n) && n->data.scalar.length == 0) return fail(c, n, key, "has no value", NULL);
        char *v;
        int rc = expand(c, n, key, &v);
        if (rc < 0) return rc;
        rc = cfg_literal(v, quoted(n), out);
        free(v);
        return rc;
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        int rc = rouse_buf_append_str(out, "[");
        int i = 0;
        for (yaml_node_item_t *it = n->data.sequence.items.start;
             rc == 0 && it < n->data.sequence.items.top; it++, i++) {
            if (i) rc = rouse_buf_append_str(out, ",");
            if (rc == 0) rc = to_json(c, node(c, *it), key, out);
        }
        return rc ? rc : rouse_buf_append_str(out, "]");
    }
    return fail(c, n, key, "must be a value or a list of values, not %s", type_name(n));
}

/* Fills obj from a mapping of config fields; prefix names it in errors. */
static int config_fields(ctx *c, yaml_node_t *map, const char *prefix, cfg_node *obj)
{
    rouse_buf lit;
    rouse_buf_init(&lit);
    int rc = 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         rc == 0 && p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
        char key[256];
        if (k->type != YAML_SCALAR_NODE) {
            rc = fail(c, k, prefix, "a key must be a plain name", NULL);
            break;
        }
        snprintf(key, sizeof(key), "%s.%s", prefix, (const char *)k->data.scalar.value);
        if (v->type == YAML_MAPPING_NODE) {
            cfg_node *sub = cfg_object(obj, (const char *)k->data.scalar.value, line_of(k));
            if (!sub) {
                rc = fail(c, k, key, "given twice", NULL);
                break;
            }
            rc = config_fields(c, v, key, sub);
            continue;
        }
        rouse_buf_clear(&lit);
        if ((rc = to_json(c, v, key, &lit)) < 0) break;
        if (cfg_get(obj, (const char *)k->data.scalar.value)) {
            rc = fail(c, k, key, "given twice", NULL);
            break;
        }
        cfg_node *leaf = cfg_object(obj, (const char *)k->data.scalar.value, line_of(k));
        if (!leaf || !(leaf->literal = strdup(lit.data))) {
            rc = rouse_err_set(c->eb, ROUSE_ENOMEM, "out of memory");
            break;
        }
    }
    rouse_buf_fini(&lit);
    return rc;
}

/* "1:90,2:10" or "2" into a. */
static bool parse_routes(const char *s, manifest_alias *a)
{
    a->n_routes = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10), w = 1;
        if (end == s || v < 1 || a->n_routes == MANIFEST_MAX_ROUTES) return false;
        s = end;
        if (*s == ':') {
            w = strtoll(s + 1, &end, 10);
            if (end == s + 1 || w < 1) return false;
            s = end;
        }
        while (*s == ' ')
            s++;
        if (*s == ',') s++;
        else if (*s) return false;
        while (*s == ' ')
            s++;
        a->routes[a->n_routes].version = v;
        a->routes[a->n_routes].weight = w;
        a->n_routes++;
    }
    return a->n_routes > 0;
}

static int alias_of(ctx *c, yaml_node_t *k, yaml_node_t *v, const char *fn, manifest_alias *a)
{
    char key[256];
    snprintf(key, sizeof(key), "functions.%s.aliases.%s", fn, (const char *)k->data.scalar.value);
    a->line = line_of(k);
    if (!(a->name = strdup((const char *)k->data.scalar.value)))
        return rouse_err_set(c->eb, ROUSE_ENOMEM, "out of memory");
    if (!store_name_valid(a->name))
        return fail(c, k, key, "an alias name is a-z, 0-9, '_' and '-'", NULL);
    if (v->type == YAML_SCALAR_NODE) {
        char *s;
        int rc = expand(c, v, key, &s);
        if (rc < 0) return rc;
        bool ok = parse_routes(s, a);
        free(s);
        return ok ? 0 : fail(c, v, key, "give a version (2) or weighted versions (\"1:90,2:10\")", NULL);
    }
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(c, v, key, "must be a version, \"V:W,...\" or a list of {version, weight}", NULL);
    a->n_routes = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
        yaml_node_t *r = node(c, *it);
        if (r->type != YAML_MAPPING_NODE || a->n_routes == MANIFEST_MAX_ROUTES)
            return fail(c, r, key, "each route is {version: N, weight: W} (8 at most)", NULL);
        long long ver = 0, w = 1;
        for (yaml_node_pair_t *p = r->data.mapping.pairs.start; p < r->data.mapping.pairs.top; p++) {
            yaml_node_t *rk = node(c, p->key), *rv = node(c, p->value);
            const char *name = rk->type == YAML_SCALAR_NODE ? (const char *)rk->data.scalar.value : "";
            long long *dst = strcmp(name, "version") == 0 ? &ver : strcmp(name, "weight") == 0 ? &w : NULL;
            char sub[300];
            snprintf(sub, sizeof(sub), "%s.%s", key, name);
            if (!dst) return fail(c, rk, sub, "unknown key (version or weight)", NULL);
            char *s = NULL, *end;
            if (rv->type != YAML_SCALAR_NODE) return fail(c, rv, sub, "must be a positive integer", NULL);
            int rc = expand(c, rv, sub, &s);
            if (rc < 0) return rc;
            *dst = strtoll(s, &end, 10);
            bool ok = end != s && !*end && *dst >= 1;
            free(s);
            if (!ok) return fail(c, rv, sub, "must be a positive integer", NULL);
        }
        if (ver < 1) return fail(c, r, key, "a route needs its version", NULL);
        a->routes[a->n_routes].version = ver;
        a->routes[a->n_routes].weight = w;
        a->n_routes++;
    }
    return a->n_routes ? 0 : fail(c, v, key, "needs at least one route", NULL);
}

static int function_of(ctx *c, yaml_node_t *k, yaml_node_t *v, const char *dir, manifest_fn *f)
{
    const char *name = (const char *)k->data.scalar.value;
    char key[256];
    snprintf(key, sizeof(key), "functions.%s", name);
    f->line = line_of(k);
    if (!(f->name = strdup(name)) || !(f->config = cfg_new()))
        return rouse_err_set(c->eb, ROUSE_ENOMEM, "out of memory");
    if (!store_name_valid(name))
        return fail(c, k, key,
                    "a function name is 1 to 63 characters of a-z, 0-9, '_' and '-', starting "
                    "with a letter or digit",
                    NULL);
    if (v->type != YAML_MAPPING_NODE) return fail(c, v, key, "must be a mapping of settings, not %s", type_name(v));
    yaml_node_t *model = NULL;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *fk = node(c, p->key), *fv = node(c, p->value);
        if (fk->type != YAML_SCALAR_NODE) return fail(c, fk, key, "a key must be a plain name", NULL);
        const char *field = (const char *)fk->data.scalar.value;
        char sub[300];
        snprintf(sub, sizeof(sub), "%s.%s", key, field);
        int rc = 0;
        if (strcmp(field, "model") == 0) {
            if (model) return fail(c, fk, sub, "given twice", NULL);
            if (fv->type != YAML_SCALAR_NODE) return fail(c, fv, sub, "must be a file path, not %s", type_name(fv));
            model = fv;
            char *rel;
            if ((rc = expand(c, fv, sub, &rel)) < 0) return rc;
            size_t n = strlen(dir) + strlen(rel) + 2;
            f->model = malloc(n);
            if (f->model) snprintf(f->model, n, "%s%s%s", rel[0] == '/' ? "" : dir, rel[0] == '/' ? "" : "/", rel);
            free(rel);
            if (!f->model) return rouse_err_set(c->eb, ROUSE_ENOMEM, "out of memory");
            struct stat st;
            if (stat(f->model, &st) < 0 || !S_ISREG(st.st_mode))
                return fail(c, fv, sub, "no model file %s", f->model);
        } else if (strcmp(field, "aliases") == 0) {
            if (f->aliases) return fail(c, fk, sub, "given twice", NULL);
            if (fv->type != YAML_MAPPING_NODE) return fail(c, fv, sub, "must be a mapping of alias names, not %s", type_name(fv));
            int n = (int)(fv->data.mapping.pairs.top - fv->data.mapping.pairs.start);
            f->aliases = calloc((size_t)n + 1, sizeof(*f->aliases));
            if (!f->aliases) return rouse_err_set(c->eb, ROUSE_ENOMEM, "out of memory");
            for (yaml_node_pair_t *q = fv->data.mapping.pairs.start; q < fv->data.mapping.pairs.top; q++) {
                yaml_node_t *ak = node(c, q->key);
                if (ak->type != YAML_SCALAR_NODE) return fail(c, ak, sub, "an alias name must be a plain name", NULL);
                if ((rc = alias_of(c, ak, node(c, q->value), name, &f->aliases[f->n_aliases++])) < 0) return rc;
            }
        } else if (strcmp(field, "manifest") == 0) {
            return fail(c, fk, sub, "is set from the manifest's top-level name:", NULL);
        } else if (fv->type == YAML_MAPPING_NODE) {
            cfg_node *obj = cfg_object(f->config, field, line_of(fk));
            if (!obj) return fail(c, fk, sub, "given twice", NULL);
            if ((rc = config_fields(c, fv, sub, obj)) < 0) return rc;
        } else {
            rouse_buf lit;
            rouse_buf_init(&lit);
            rc = to_json(c, fv, sub, &lit);
            if (rc == 0 && cfg_get(f->config, field)) rc = fail(c, fk, sub, "given twice", NULL);
            if (rc == 0 && cfg_set(f->config, field, lit.data, line_of(fk)) < 0)
                rc = rouse_err_set(c->eb, ROUSE_ENOMEM, "out of memory");
            rouse_buf_fini(&lit);
            if (rc < 0) return rc;
        }
    }
    if (!model) return fail(c, k, key, "needs model: (the path of an .onnx file)", NULL);
    return 0;
}

int manifest_load(const char *path, manifest *out, rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    if (!(out->path = strdup(path))) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    FILE *fp = fopen(path, "rb");
    if (!fp) return rouse_err_set(eb, ROUSE_EIO, "%s: %s", path, strerror(errno));
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = 0;
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = rouse_err_set(eb, ROUSE_EFORMAT, "%s:%zu: not valid YAML: %s%s%s", path,
                           parser.problem_mark.line + 1, parser.problem ? parser.problem : "?",
                           parser.context ? " " : "", parser.context ? parser.context : "");
        goto out_parser;
    }
    ctx c = {.doc = &doc, .path = path, .eb = eb};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        rc = rouse_err_set(eb, ROUSE_EINVAL, "%s: empty; declare functions: NAME: {model: ...}", path);
        goto out_doc;
    }
    if (root->type != YAML_MAPPING_NODE) {
        rc = fail(&c, root, "(top)", "must be a mapping with functions:, not %s", type_name(root));
        goto out_doc;
    }
    char *pcopy = strdup(path);
    const char *dir = pcopy ? dirname(pcopy) : ".";
    yaml_node_t *fns = NULL;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; rc == 0 && p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(&c, p->key), *v = node(&c, p->value);
        const char *key = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "?";
        if ((strcmp(key, "name") == 0 && out->label) || (strcmp(key, "functions") == 0 && fns)) {
            rc = fail(&c, k, key, "given twice", NULL);
        } else if (strcmp(key, "name") == 0) {
            if (v->type != YAML_SCALAR_NODE) {
                rc = fail(&c, v, "name", "must be a name, not %s", type_name(v));
            } else if ((rc = expand(&c, v, "name", &out->label)) == 0 && !store_name_valid(out->label)) {
                rc = fail(&c, v, "name", "'%s' is not a name (a-z, 0-9, '_' and '-')", out->label);
            }
        } else if (strcmp(key, "functions") == 0) {
            if (v->type != YAML_MAPPING_NODE)
                rc = fail(&c, v, "functions", "must be a mapping of function names, not %s", type_name(v));
            fns = v;
        } else {
            rc = fail(&c, k, key, "unknown key (expected name or functions)", NULL);
        }
    }
    if (rc == 0 && !fns) rc = fail(&c, root, "functions", "missing: declare functions: NAME: {model: ...}", NULL);
    if (rc == 0) {
        int n = (int)(fns->data.mapping.pairs.top - fns->data.mapping.pairs.start);
        out->fns = calloc((size_t)n + 1, sizeof(*out->fns));
        if (!out->fns) rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        for (yaml_node_pair_t *p = fns->data.mapping.pairs.start; rc == 0 && p < fns->data.mapping.pairs.top; p++) {
            yaml_node_t *k = node(&c, p->key);
            if (k->type != YAML_SCALAR_NODE) {
                rc = fail(&c, k, "functions", "a function name must be a plain name", NULL);
                break;
            }
            for (int i = 0; i < out->n_fns; i++)
                if (strcmp(out->fns[i].name, (const char *)k->data.scalar.value) == 0)
                    rc = fail(&c, k, "functions", "%s is declared twice", out->fns[i].name);
            if (rc == 0) rc = function_of(&c, k, node(&c, p->value), dir, &out->fns[out->n_fns++]);
        }
    }
    free(pcopy);
out_doc:
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}

void manifest_fini(manifest *m)
{
    for (int i = 0; i < m->n_fns; i++) {
        manifest_fn *f = &m->fns[i];
        free(f->name);
        free(f->model);
        cfg_free(f->config);
        for (int k = 0; k < f->n_aliases; k++)
            free(f->aliases[k].name);
        free(f->aliases);
    }
    free(m->fns);
    free(m->label);
    free(m->path);
    memset(m, 0, sizeof(*m));
}

int manifest_key_line(const manifest_fn *f, const char *dotted)
{
    const cfg_node *n = f->config;
    int line = f->line;
    const char *p = dotted;
    while (n && *p) {
        size_t len = strcspn(p, ".");
        const cfg_node *hit = NULL;
        for (const cfg_node *k = n->child; k; k = k->next)
            if (strlen(k->key) == len && strncmp(k->key, p, len) == 0) hit = k;
        if (!hit) break;
        line = hit->line;
        n = hit;
        p += len;
        if (*p == '.') p++;
    }
    return line;
}
