/*
 * Attribute parsing: the typed getters the op descriptors' parse hooks use
 * (engine/op.h), and eng_attrs_parse, which runs a node's parse hook and
 * then its check hook, the same check the plan reader applies to a stored
 * record.
 *
 * Guarantees: on success every field the op uses holds a value that the rest
 * of the engine can compute with (strides, dilations and kernels >= 1, pads
 * >= 0, flags 0 or 1, finite floats, a valid auto_pad, a permutation for
 * Transpose), so shape inference and the kernels never re-check them. Every
 * rejected value is a ROUSE_EFORMAT naming the node and the attribute; valid
 * ONNX that the engine does not implement (training mode, legacy axis
 * broadcasting) is ROUSE_EUNSUPPORTED. Unknown attributes are ignored.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/onnx/onnx.h"
#include "engine/op.h"

/* The helpers below take an eng_attr_ctx (engine/op.h): what they need to
 * name the culprit in a message. */

static int attr_err(const eng_attr_ctx *c, int rc, const char *attr, const char *what)
{
    return rouse_err_set(c->eb, rc, "node '%s' (%s): attribute '%s' %s",
                         c->n->name ? c->n->name : "", eng_op_name(c->n->op), attr, what);
}

/* Looked up here rather than through the decoder so that attribute parsing
 * depends only on the onnx_node layout. The last occurrence wins, as in the
 * protobuf merge rules. */
static const onnx_attr *find_attr(const struct onnx_node *on, const char *name)
{
    const onnx_attr *found = NULL;
    for (int i = 0; i < on->n_attrs; i++)
        if (on->attrs[i].name && !strcmp(on->attrs[i].name, name)) found = &on->attrs[i];
    return found;
}

static const char *type_word(int type)
{
    switch (type) {
    case ONNX_ATTR_FLOAT:
        return "a float";
    case ONNX_ATTR_INT:
        return "an int";
    case ONNX_ATTR_STRING:
        return "a string";
    case ONNX_ATTR_INTS:
        return "a list of ints";
    case ONNX_ATTR_FLOATS:
        return "a list of floats";
    default:
        return "of another type";
    }
}

static int check_type(const eng_attr_ctx *c, const onnx_attr *a, int want)
{
    if (a->type == want) return 0;
    char what[96];
    snprintf(what, sizeof(what), "must be %s", type_word(want));
    return attr_err(c, ROUSE_EFORMAT, a->name, what);
}

/* *out keeps `def` when the attribute is absent. */
static int get_int(const eng_attr_ctx *c, const char *name, int64_t def, int64_t *out)
{
    const onnx_attr *a = find_attr(c->on, name);
    *out = def;
    if (!a) return 0;
    int rc = check_type(c, a, ONNX_ATTR_INT);
    if (rc < 0) return rc;
    *out = a->i;
    return 0;
}

/* A 0/1 flag; anything else is a malformed model, not "true". */
static int get_flag(const eng_attr_ctx *c, const char *name, int def, int *out)
{
    int64_t v;
    int rc = get_int(c, name, def, &v);
    if (rc < 0) return rc;
    if (v != 0 && v != 1) {
        char what[96];
        snprintf(what, sizeof(what), "must be 0 or 1, got %lld", (long long)v);
        return attr_err(c, ROUSE_EFORMAT, name, what);
    }
    *out = (int)v;
    return 0;
}

static int get_float(const eng_attr_ctx *c, const char *name, float def, float *out)
{
    const onnx_attr *a = find_attr(c->on, name);
    *out = def;
    if (!a) return 0;
    int rc = check_type(c, a, ONNX_ATTR_FLOAT);
    if (rc < 0) return rc;
    if (isnan(a->f)) return attr_err(c, ROUSE_EFORMAT, name, "is NaN");
    *out = a->f;
    return 0;
}

/* A finite float, for values that feed arithmetic (alpha, epsilon). */
static int get_finite(const eng_attr_ctx *c, const char *name, float def, float *out)
{
    int rc = get_float(c, name, def, out);
    if (rc < 0) return rc;
    if (!isfinite(*out)) return attr_err(c, ROUSE_EFORMAT, name, "must be finite");
    return 0;
}

/* An INTS attribute with at most `max` values; *count is -1 when absent. */
static int get_ints(const eng_attr_ctx *c, const char *name, int max, int *count, int64_t *vals)
{
    const onnx_attr *a = find_attr(c->on, name);
    *count = -1;
    if (!a) return 0;
    int rc = check_type(c, a, ONNX_ATTR_INTS);
    if (rc < 0) return rc;
    if (a->n_ints < 0 || a->n_ints > max || (a->n_ints && !a->ints)) {
        char what[96];
        snprintf(what, sizeof(what), "has %d values, at most %d are supported", a->n_ints, max);
        return attr_err(c, ROUSE_EUNSUPPORTED, name, what);
    }
    for (int i = 0; i < a->n_ints; i++)
        vals[i] = a->ints[i];
    *count = a->n_ints;
    return 0;
}

/* --- the attribute API of the op descriptors (engine/op.h) --------------- */

const onnx_attr *eng_attr_find(const eng_attr_ctx *c, const char *name)
{
    return find_attr(c->on, name);
}

int eng_attr_err(const eng_attr_ctx *c, int rc, const char *name, const char *what)
{
    return attr_err(c, rc, name, what);
}

int eng_attr_int(const eng_attr_ctx *c, const char *name, int64_t def, int64_t *out)
{
    return get_int(c, name, def, out);
}

int eng_attr_flag(const eng_attr_ctx *c, const char *name, int def, int *out)
{
    return get_flag(c, name, def, out);
}

int eng_attr_float(const eng_attr_ctx *c, const char *name, float def, float *out)
{
    return get_float(c, name, def, out);
}

int eng_attr_finite(const eng_attr_ctx *c, const char *name, float def, float *out)
{
    return get_finite(c, name, def, out);
}

int eng_attr_ints(const eng_attr_ctx *c, const char *name, int max, int *count, int64_t *vals)
{
    return get_ints(c, name, max, count, vals);
}

int eng_attr_floats(const eng_attr_ctx *c, const char *name, int max, int *count, float *vals)
{
    const onnx_attr *a = find_attr(c->on, name);
    *count = -1;
    if (!a) return 0;
    int rc = check_type(c, a, ONNX_ATTR_FLOATS);
    if (rc < 0) return rc;
    if (a->n_floats < 0 || a->n_floats > max || (a->n_floats && !a->floats)) {
        char what[96];
        snprintf(what, sizeof(what), "has %d values, at most %d are supported", a->n_floats, max);
        return attr_err(c, ROUSE_EUNSUPPORTED, name, what);
    }
    for (int i = 0; i < a->n_floats; i++) {
        if (isnan(a->floats[i])) return attr_err(c, ROUSE_EFORMAT, name, "holds NaN");
        vals[i] = a->floats[i];
    }
    *count = a->n_floats;
    return 0;
}

int eng_attr_choice(const eng_attr_ctx *c, const char *name, const char *const *choices, int def,
                    int *out)
{
    const onnx_attr *a = find_attr(c->on, name);
    *out = def;
    if (!a) return 0;
    int rc = check_type(c, a, ONNX_ATTR_STRING);
    if (rc < 0) return rc;
    const char *s = a->s ? a->s : "";
    for (int i = 0; choices[i]; i++) {
        if (strlen(choices[i]) == a->s_len && !memcmp(choices[i], s, a->s_len)) {
            *out = i;
            return 0;
        }
    }
    char what[160];
    snprintf(what, sizeof(what), "has unknown value '%.100s'", s);
    return attr_err(c, ROUSE_EFORMAT, name, what);
}

int eng_attr_tensor(const eng_attr_ctx *c, const char *name, const onnx_tensor **out)
{
    const onnx_attr *a = find_attr(c->on, name);
    *out = NULL;
    if (!a) return 0;
    int rc = check_type(c, a, ONNX_ATTR_TENSOR);
    if (rc < 0) return rc;
    if (!a->t) return attr_err(c, ROUSE_EFORMAT, name, "has no tensor");
    *out = a->t;
    return 0;
}

int eng_check_fail(const eng_node *n, rouse_errbuf *eb, int rc, const char *name, const char *fmt,
                   ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rouse_err_set(eb, rc, "node '%s' (%s): attribute '%s' %s", n->name ? n->name : "",
                         eng_op_name(n->op), name, msg);
}

int eng_attrs_parse(const struct onnx_node *on, eng_node *n, rouse_arena *arena, rouse_errbuf *eb)
{
    (void)arena; /* every attribute fits in eng_attrs */
    eng_attr_ctx c = {on, n, eb};
    memset(&n->attrs, 0, sizeof(n->attrs));
    const eng_op_desc *d = eng_op_desc_get(n->op);
    if (!d)
        return rouse_err_set(eb, ROUSE_EINVAL, "node '%s': unknown operator number %d",
                             n->name ? n->name : "", (int)n->op);
    int rc = 0;
    if (d->parse) rc = d->parse(&c, &n->attrs);
    if (rc == 0 && d->check) rc = d->check(n, eb);
    return rc;
}
