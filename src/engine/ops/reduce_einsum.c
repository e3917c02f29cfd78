/*
 * Operator descriptor of Einsum (see engine/op.h), part of the reduce
 * family: a sum of products over the labels of an Einstein equation.
 *
 * Supported: any number of operands up to EIN_MAX_OPS, letters a-z and
 * A-Z as labels, one "..." per term (broadcast dims, right-aligned as in
 * numpy), repeated labels within a term (diagonals), labels of size 1
 * broadcasting against the same label elsewhere, and the implicit output
 * (no "->": the broadcast dims, then the labels used once, in ASCII order).
 * Anything else (other characters, a label repeated in the output, an
 * output label absent from the inputs, broadcast dims missing from an
 * explicit output) is a clear error naming the equation.
 *
 * Guarantees: the equation is parsed and checked against the input shapes
 * by shape inference, and parsed again by the kernel from the same text
 * (no pointers in the stored record); every offset the kernel reads is a
 * sum of in-range indices times the operand's own strides. Floating types
 * accumulate in double, integers wrap modulo 2^64 before being stored.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/op.h"
#include "engine/ops/reduce_int.h"

#define EIN_MAX_OPS 8
#define EIN_LETTERS 52
#define EIN_MAX_LABELS (EIN_LETTERS + ENG_MAX_RANK)
/* Bound on the product of all label sizes (the kernel's work). */
#define EIN_MAX_WORK ((int64_t)1 << 40)

/* One term of the equation: its labels in order, -1 standing for "...". */
typedef struct ein_term {
    int n;
    int8_t lab[ENG_MAX_RANK + 1];
    bool ell;
} ein_term;

typedef struct ein_eq {
    int n_ops;
    ein_term in[EIN_MAX_OPS];
    ein_term out;
    bool explicit_out;
} ein_eq;

static int label_of(char ch)
{
    if (ch >= 'a' && ch <= 'z') return ch - 'a';
    if (ch >= 'A' && ch <= 'Z') return 26 + ch - 'A';
    return -1;
}

/* Parses one term from s[*i] up to a ',' '-' or the end. NULL on success,
 * otherwise what is wrong. */
static const char *parse_term(const char *s, size_t *i, ein_term *t)
{
    t->n = 0;
    t->ell = false;
    while (s[*i] && s[*i] != ',' && s[*i] != '-') {
        if (s[*i] == '.') {
            if (strncmp(s + *i, "...", 3) != 0) return "has a '.' outside an ellipsis '...'";
            if (t->ell) return "has two ellipses in one term";
            if (t->n > ENG_MAX_RANK) return "has a term with too many dims";
            t->ell = true;
            t->lab[t->n++] = -1;
            *i += 3;
            continue;
        }
        int l = label_of(s[*i]);
        if (l < 0) return "has a character that is not a letter, ',', '->' or '...'";
        if (t->n > ENG_MAX_RANK) return "has a term with too many dims";
        t->lab[t->n++] = (int8_t)l;
        (*i)++;
    }
    return NULL;
}

static const char *parse_eq(const char *s, ein_eq *e)
{
    size_t i = 0;
    const char *err;
    memset(e, 0, sizeof(*e));
    for (;;) {
        if (e->n_ops == EIN_MAX_OPS) return "has more operands than supported (8)";
        if ((err = parse_term(s, &i, &e->in[e->n_ops++]))) return err;
        if (s[i] == ',') {
            i++;
            continue;
        }
        break;
    }
    if (s[i] == '-') {
        if (s[i + 1] != '>') return "has a '-' that does not start '->'";
        i += 2;
        e->explicit_out = true;
        if ((err = parse_term(s, &i, &e->out))) return err;
        if (s[i]) return "has text after the output term";
        bool seen[EIN_LETTERS] = {false};
        for (int k = 0; k < e->out.n; k++) {
            int l = e->out.lab[k];
            if (l < 0) continue;
            if (seen[l]) return "repeats a label in the output";
            seen[l] = true;
        }
    } else if (s[i]) {
        return "is malformed";
    }
    return NULL;
}

/* The equation resolved against concrete input shapes. */
typedef struct ein_plan {
    int n_ops;
    int n_ell;                     /* broadcast dims */
    int64_t dim[EIN_MAX_LABELS];   /* size of each used label */
    bool used[EIN_MAX_LABELS];
    int n_out, n_sum;              /* output labels, contracted labels */
    int out_lab[EIN_MAX_LABELS], sum_lab[EIN_MAX_LABELS];
    int64_t stride[EIN_MAX_OPS][EIN_MAX_LABELS]; /* element stride of each operand per label */
} ein_plan;

/* Resolves e against the input shapes; NULL on success, else the reason
 * (with *bad the operand concerned, or -1). */
static const char *ein_resolve(const ein_eq *e, int n_in, const eng_tensor *const *in,
                               ein_plan *p, int *bad)
{
    memset(p, 0, sizeof(*p));
    *bad = -1;
    if (e->n_ops != n_in) return "names a different number of operands than the node has inputs";
    p->n_ops = n_in;
    int ell_dims[EIN_MAX_OPS];
    for (int k = 0; k < n_in; k++) {
        int named = e->in[k].n - (e->in[k].ell ? 1 : 0);
        *bad = k;
        if (in[k]->rank < named || (!e->in[k].ell && in[k]->rank != named))
            return "has a term whose label count does not match the operand's rank";
        ell_dims[k] = in[k]->rank - named;
        if (ell_dims[k] > p->n_ell) p->n_ell = ell_dims[k];
    }
    *bad = -1;
    /* Label sizes (a size of 1 broadcasts), then strides: a dim of size 1
     * keeps stride 0, a label repeated in one term adds its strides (the
     * diagonal). */
    int count[EIN_MAX_LABELS] = {0};
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < n_in; k++) {
            const eng_tensor *t = in[k];
            int64_t st[ENG_MAX_RANK], step = 1;
            for (int d = t->rank - 1; d >= 0; d--) {
                st[d] = step;
                step *= t->shape[d];
            }
            int d = 0;
            for (int j = 0; j < e->in[k].n; j++) {
                int l = e->in[k].lab[j];
                int nl = l < 0 ? ell_dims[k] : 1;
                int first = l < 0 ? EIN_LETTERS + p->n_ell - ell_dims[k] : l;
                for (int q = 0; q < nl; q++, d++) {
                    int lab = first + q;
                    int64_t sz = t->shape[d];
                    if (pass == 0) {
                        if (p->used[lab] && sz != 1 && p->dim[lab] != 1 && sz != p->dim[lab]) {
                            *bad = k;
                            return "gives one label two different sizes";
                        }
                        if (!p->used[lab] || p->dim[lab] == 1) p->dim[lab] = sz;
                        p->used[lab] = true;
                        count[lab]++;
                    } else if (sz != 1) {
                        p->stride[k][lab] += st[d];
                    }
                }
            }
        }
    }
    /* Output labels. */
    if (e->explicit_out) {
        /* numpy refuses to sum broadcast dims away silently; so do we. */
        if (p->n_ell > 0 && !e->out.ell)
            return "has broadcast dims ('...') in its inputs but none in its output";
        for (int j = 0; j < e->out.n; j++) {
            int l = e->out.lab[j];
            if (l < 0) {
                for (int q = 0; q < p->n_ell; q++)
                    p->out_lab[p->n_out++] = EIN_LETTERS + q;
                continue;
            }
            if (!p->used[l]) return "has an output label that no input uses";
            p->out_lab[p->n_out++] = l;
        }
    } else {
        for (int q = 0; q < p->n_ell; q++)
            p->out_lab[p->n_out++] = EIN_LETTERS + q;
        /* ASCII order: upper case before lower case. */
        for (int pass = 0; pass < 2; pass++)
            for (int l = pass ? 0 : 26; pass ? l < 26 : l < EIN_LETTERS; l++)
                if (p->used[l] && count[l] == 1) p->out_lab[p->n_out++] = l;
    }
    bool in_out[EIN_MAX_LABELS] = {false};
    for (int j = 0; j < p->n_out; j++)
        in_out[p->out_lab[j]] = true;
    for (int l = 0; l < EIN_MAX_LABELS; l++)
        if (p->used[l] && !in_out[l]) p->sum_lab[p->n_sum++] = l;
    int64_t work = 1;
    for (int l = 0; l < EIN_MAX_LABELS; l++) {
        if (!p->used[l]) continue;
        if (p->dim[l] == 0) work = 0;
        if (work && p->dim[l] > EIN_MAX_WORK / work) return "describes too much work";
        work *= p->dim[l];
    }
    if (p->n_out > ENG_MAX_RANK) return "gives an output of too many dims";
    return NULL;
}

static int parse_einsum(const eng_attr_ctx *c, eng_attrs *a)
{
    const onnx_attr *at = eng_attr_find(c, "equation");
    if (!at) return eng_attr_err(c, ROUSE_EFORMAT, "equation", "is required");
    if (at->type != ONNX_ATTR_STRING || !at->s)
        return eng_attr_err(c, ROUSE_EFORMAT, "equation", "must be a string");
    char *eq = a->reduce.einsum.equation;
    size_t n = 0;
    for (size_t i = 0; i < at->s_len; i++) {
        if (at->s[i] == ' ') continue;
        if (n + 1 >= ENG_EINSUM_EQ_MAX)
            return eng_attr_err(c, ROUSE_EUNSUPPORTED, "equation", "is too long");
        if (at->s[i] == '\0') return eng_attr_err(c, ROUSE_EFORMAT, "equation", "contains a NUL");
        eq[n++] = at->s[i];
    }
    eq[n] = '\0';
    ein_eq e;
    const char *err = parse_eq(eq, &e);
    if (err) return eng_attr_err(c, ROUSE_EFORMAT, "equation", err);
    return 0;
}

static int check_einsum(const eng_node *n, rouse_errbuf *eb)
{
    const char *eq = n->attrs.reduce.einsum.equation;
    if (!memchr(eq, '\0', ENG_EINSUM_EQ_MAX))
        return eng_run_fail(n, eb, ROUSE_EFORMAT, "attribute 'equation' is not terminated");
    ein_eq e;
    const char *err = parse_eq(eq, &e);
    if (err) return eng_run_fail(n, eb, ROUSE_EFORMAT, "attribute 'equation' %s", err);
    return 0;
}

static int infer_einsum(eng_infer_ctx *c)
{
    const char *eq = c->res->reduce.einsum.equation;
    ein_eq e;
    ein_plan p;
    int bad, rc;
    const char *err = parse_eq(eq, &e);
    if (err) return eng_infer_fail(c, ROUSE_EFORMAT, "attribute 'equation' %s", err);
    for (int k = 1; k < c->n->n_in; k++)
        if ((rc = eng_infer_same_dtype(c, 0, k)) < 0) return rc;
    err = ein_resolve(&e, c->n->n_in, c->in, &p, &bad);
    if (err) {
        if (bad >= 0)
            return eng_infer_fail(c, ROUSE_EMISMATCH, "equation '%s' %s (operand %d)", eq, err,
                                  bad);
        return eng_infer_fail(c, ROUSE_EMISMATCH, "equation '%s' %s", eq, err);
    }
    int64_t shape[ENG_MAX_RANK];
    for (int j = 0; j < p.n_out; j++)
        shape[j] = p.dim[p.out_lab[j]];
    eng_infer_set_out(c, 0, c->in[0]->dtype, p.n_out, shape);
    return 0;
}

/* Odometer over labels lab[0..n) of sizes dim[], keeping each operand's
 * offset off[k] in step; false when the walk is done. */
static bool ein_next(const ein_plan *p, int n, const int *lab, int64_t *idx, int64_t *off)
{
    for (int j = n - 1; j >= 0; j--) {
        int l = lab[j];
        if (++idx[j] < p->dim[l]) {
            for (int k = 0; k < p->n_ops; k++)
                off[k] += p->stride[k][l];
            return true;
        }
        for (int k = 0; k < p->n_ops; k++)
            off[k] -= p->stride[k][l] * (p->dim[l] - 1);
        idx[j] = 0;
    }
    return false;
}

static int run_einsum(const eng_node *nd, const eng_attrs *a, const eng_tensor *const *in,
                      eng_tensor *const *out, rouse_errbuf *eb)
{
    ein_eq e;
    ein_plan p;
    int bad;
    const char *err = parse_eq(a->reduce.einsum.equation, &e);
    if (!err) err = ein_resolve(&e, nd->n_in, in, &p, &bad);
    if (err) return eng_run_fail(nd, eb, ROUSE_EMISMATCH, "equation %s", err);
    int dt = in[0]->dtype;
    bool fl = red_is_float(dt);
    int64_t n_out = eng_tensor_numel(out[0]);
    if (n_out <= 0) return 0;
    int64_t sum_count = 1;
    for (int j = 0; j < p.n_sum; j++)
        sum_count *= p.dim[p.sum_lab[j]];
    /* The last contracted label is walked by a plain loop (len, step[k]),
     * the others by the odometer. */
    int n_outer = p.n_sum > 0 ? p.n_sum - 1 : 0;
    int last = p.n_sum > 0 ? p.sum_lab[p.n_sum - 1] : -1;
    int64_t len = last >= 0 ? p.dim[last] : 1, step[EIN_MAX_OPS] = {0};
    for (int k = 0; last >= 0 && k < p.n_ops; k++)
        step[k] = p.stride[k][last];
    int64_t oidx[EIN_MAX_LABELS] = {0}, ooff[EIN_MAX_OPS] = {0};
    int64_t o = 0;
    do {
        double fs = 0.0;
        uint64_t is = 0;
        if (sum_count > 0) {
            int64_t sidx[EIN_MAX_LABELS] = {0}, off[EIN_MAX_OPS];
            memcpy(off, ooff, sizeof(off));
            do {
                if (dt == ENG_DT_FLOAT && p.n_ops == 2) {
                    const float *x0 = (const float *)in[0]->data + off[0];
                    const float *x1 = (const float *)in[1]->data + off[1];
                    for (int64_t j = 0; j < len; j++)
                        fs += (double)x0[j * step[0]] * x1[j * step[1]];
                } else if (fl) {
                    for (int64_t j = 0; j < len; j++) {
                        double v = 1.0;
                        for (int k = 0; k < p.n_ops; k++)
                            v *= elem_get_f(dt, in[k]->data, off[k] + j * step[k]);
                        fs += v;
                    }
                } else {
                    for (int64_t j = 0; j < len; j++) {
                        uint64_t v = 1;
                        for (int k = 0; k < p.n_ops; k++)
                            v *= (uint64_t)elem_get_i(dt, in[k]->data, off[k] + j * step[k]);
                        is += v;
                    }
                }
            } while (ein_next(&p, n_outer, p.sum_lab, sidx, off));
        }
        if (fl)
            red_store_f(dt, out[0]->data, o, fs);
        else
            red_store_i(dt, out[0]->data, o, (int64_t)is);
        o++;
    } while (ein_next(&p, p.n_out, p.out_lab, oidx, ooff));
    return 0;
}

static const eng_op_desc op_einsum = {
    .op = ENG_OP_EINSUM,
    .name = "Einsum",
    .since = 12,
    .min_in = 1,
    .max_in = -1,
    .max_out = 1,
    .in_names = {NULL},
    .dtypes = ENG_DTM_FLOATS | ENG_DTM_INTS,
    .parse = parse_einsum,
    .check = check_einsum,
    .infer = infer_einsum,
    .run = run_einsum,
};

const eng_op_desc *const eng_ops_einsum[] = {
    &op_einsum,
    NULL,
};
