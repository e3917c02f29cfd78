/*
 * The client's config tree (see cfgtree.h). Keys keep their first
 * insertion order, so that a written config reads like its manifest.
 */
#include "cli/cfgtree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cfg_node *cfg_new(void)
{
    return calloc(1, sizeof(cfg_node));
}

void cfg_free(cfg_node *n)
{
    while (n) {
        cfg_node *next = n->next;
        cfg_free(n->child);
        free(n->key);
        free(n->literal);
        free(n);
        n = next;
    }
}

cfg_node *cfg_get(const cfg_node *obj, const char *key)
{
    for (cfg_node *c = obj ? obj->child : NULL; c; c = c->next)
        if (strcmp(c->key, key) == 0) return c;
    return NULL;
}

static cfg_node *add_child(cfg_node *obj, const char *key, size_t len, int line)
{
    cfg_node *n = calloc(1, sizeof(*n));
    if (!n || !(n->key = strndup(key, len))) {
        free(n);
        return NULL;
    }
    n->line = line;
    cfg_node **pp = &obj->child;
    while (*pp)
        pp = &(*pp)->next;
    *pp = n;
    return n;
}

cfg_node *cfg_object(cfg_node *obj, const char *key, int line)
{
    cfg_node *n = cfg_get(obj, key);
    if (n) return n->literal ? NULL : n;
    return add_child(obj, key, strlen(key), line);
}

int cfg_set(cfg_node *root, const char *path, const char *literal, int line)
{
    cfg_node *obj = root;
    const char *p = path;
    for (;;) {
        size_t len = strcspn(p, ".");
        if (len == 0) return ROUSE_EINVAL;
        cfg_node *n = NULL;
        for (cfg_node *c = obj->child; c; c = c->next)
            if (strlen(c->key) == len && strncmp(c->key, p, len) == 0) n = c;
        if (p[len] == '.') {
            if (n && n->literal) return ROUSE_EINVAL;
            if (!n && !(n = add_child(obj, p, len, line))) return ROUSE_ENOMEM;
            obj = n;
            p += len + 1;
            continue;
        }
        if (n && !n->literal) return ROUSE_EINVAL;
        if (!n && !(n = add_child(obj, p, len, line))) return ROUSE_ENOMEM;
        char *lit = strdup(literal);
        if (!lit) return ROUSE_ENOMEM;
        free(n->literal);
        n->literal = lit;
        n->line = line;
        return 0;
    }
}

int cfg_write(const cfg_node *n, rouse_buf *b)
{
    if (n->literal) return rouse_buf_append_str(b, n->literal);
    int rc = rouse_buf_append_str(b, "{");
    for (const cfg_node *c = n->child; c && rc == 0; c = c->next) {
        if (c != n->child) rc = rouse_buf_append_str(b, ",");
        if (rc == 0) rc = json_write_string(b, c->key, strlen(c->key));
        if (rc == 0) rc = rouse_buf_append_str(b, ":");
        if (rc == 0) rc = cfg_write(c, b);
    }
    if (rc == 0) rc = rouse_buf_append_str(b, "}");
    return rc;
}

static bool is_number(const char *s)
{
    const char *p = s;
    if (*p == '-') p++;
    if (!(*p >= '0' && *p <= '9')) return false;
    if (*p == '0' && p[1] >= '0' && p[1] <= '9') return false; /* 007 is a string */
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9')) return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

int cfg_literal(const char *text, bool quoted, rouse_buf *out)
{
    if (!quoted && (is_number(text) || strcmp(text, "true") == 0 || strcmp(text, "false") == 0 ||
                    strcmp(text, "null") == 0))
        return rouse_buf_append_str(out, text);
    return json_write_string(out, text, strlen(text));
}

static int write_value(const json_value *v, rouse_buf *out)
{
    switch (v->type) {
    case JSON_NULL: return rouse_buf_append_str(out, "null");
    case JSON_TRUE: return rouse_buf_append_str(out, "true");
    case JSON_FALSE: return rouse_buf_append_str(out, "false");
    case JSON_NUMBER:
        return v->u.num.is_int ? json_write_int64(out, v->u.num.i) : json_write_double(out, v->u.num.d);
    case JSON_STRING: return json_write_string(out, v->u.str.s, v->u.str.len);
    case JSON_ARRAY: {
        int rc = rouse_buf_append_str(out, "[");
        for (size_t i = 0; rc == 0 && i < v->u.arr.n; i++) {
            if (i) rc = rouse_buf_append_str(out, ",");
            if (rc == 0) rc = write_value(v->u.arr.items[i], out);
        }
        return rc ? rc : rouse_buf_append_str(out, "]");
    }
    case JSON_OBJECT: {
        int rc = rouse_buf_append_str(out, "{");
        for (size_t i = 0; rc == 0 && i < v->u.obj.n; i++) {
            const json_member *m = &v->u.obj.members[i];
            if (i) rc = rouse_buf_append_str(out, ",");
            if (rc == 0) rc = json_write_string(out, m->key, m->key_len);
            if (rc == 0) rc = rouse_buf_append_str(out, ":");
            if (rc == 0) rc = write_value(m->value, out);
        }
        return rc ? rc : rouse_buf_append_str(out, "}");
    }
    }
    return 0;
}

int cfg_flatten(const json_value *v, const char *prefix, rouse_buf *out)
{
    if (v->type != JSON_OBJECT) {
        int rc = rouse_buf_appendf(out, "%s\t", prefix);
        if (rc == 0) rc = write_value(v, out);
        return rc ? rc : rouse_buf_append_str(out, "\n");
    }
    for (size_t i = 0; i < v->u.obj.n; i++) {
        const json_member *m = &v->u.obj.members[i];
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", m->key);
        int rc = cfg_flatten(m->value, path, out);
        if (rc) return rc;
    }
    return 0;
}
