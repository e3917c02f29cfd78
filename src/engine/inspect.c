/*
 * rouse_model_inspect (include/rouse/inspect.h): reads a model's
 * declarations and operator list from the decoded ONNX, then, when every
 * operator is supported, infers every node's shapes at the requested input
 * shapes (folding small values computed from constants, as shape
 * subgraphs need) to count multiply-accumulates with the descriptors'
 * `macs` hooks, and prepares a real session once to read the activation
 * arena it plans.
 *
 * Guarantees: nothing is run on the caller's data; a model the engine
 * cannot load still gets the declarative part of its report.
 */
#include "rouse/inspect.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/exec.h"
#include "engine/graph.h"
#include "engine/onnx/onnx.h"
#include "engine/op.h"
#include "engine/ref_dispatch.h"

/* Values computed while inferring shapes are kept when they are this small:
 * shape subgraphs (Shape, Gather, Concat...) feed Reshape and friends. */
#define FOLD_MAX_BYTES (64 * 1024)

typedef struct report_priv {
    rouse_inspect_report r; /* first: the public part */
    void *map;
    size_t map_len;
    onnx_model om;
    bool decoded;
    const char *path; /* the caller's, during rouse_model_inspect */
} report_priv;

static const char *domain_name(const char *d)
{
    return d && d[0] ? d : "ai.onnx";
}

static bool is_initializer(const onnx_graph *g, const char *name)
{
    for (int i = 0; i < g->n_initializers; i++)
        if (!strcmp(g->initializers[i].name, name)) return true;
    return false;
}

static void declared(rouse_inspect_tensor *t, const onnx_value_info *vi)
{
    t->name = vi->name;
    t->dtype = vi->elem_type;
    t->rank = vi->rank <= ROUSE_MAX_RANK ? vi->rank : -1;
    t->shape_rank = -1;
    for (int k = 0; k < t->rank; k++) {
        t->dims[k] = vi->dims[k].value;
        t->dim_names[k] = vi->dims[k].param;
    }
}

static int fill_declarations(report_priv *p)
{
    rouse_inspect_report *r = &p->r;
    const onnx_model *m = &p->om;
    const onnx_graph *g = &m->graph;
    r->ir_version = m->ir_version;
    r->opset = onnx_model_default_opset(m);
    if (r->opset < 0) r->opset = 1; /* ONNX: no import of the default domain means opset 1 */
    r->opsets = calloc((size_t)m->n_opsets + 1, sizeof(*r->opsets));
    r->inputs = calloc((size_t)g->n_inputs + 1, sizeof(*r->inputs));
    r->outputs = calloc((size_t)g->n_outputs + 1, sizeof(*r->outputs));
    r->ops = calloc((size_t)g->n_nodes + 1, sizeof(*r->ops));
    if (!r->opsets || !r->inputs || !r->outputs || !r->ops) return ROUSE_ENOMEM;
    for (int i = 0; i < m->n_opsets; i++)
        r->opsets[r->n_opsets++] =
            (rouse_inspect_opset){domain_name(m->opsets[i].domain), m->opsets[i].version};
    for (int i = 0; i < g->n_inputs; i++)
        if (!is_initializer(g, g->inputs[i].name))
            declared(&r->inputs[r->n_inputs++], &g->inputs[i]);
    for (int i = 0; i < g->n_outputs; i++)
        declared(&r->outputs[r->n_outputs++], &g->outputs[i]);

    r->n_nodes = g->n_nodes;
    for (int i = 0; i < g->n_nodes; i++) {
        const onnx_node *on = &g->nodes[i];
        const char *type = on->op_type ? on->op_type : "", *dom = domain_name(on->domain);
        int k = 0;
        while (k < r->n_ops && (strcmp(r->ops[k].op_type, type) || strcmp(r->ops[k].domain, dom)))
            k++;
        if (k == r->n_ops) {
            eng_op op;
            r->ops[k] = (rouse_inspect_op){
                type, dom, 0, eng_op_lookup(type, on->domain, r->opset, on->name, &op, NULL) == 0};
            r->n_ops++;
            r->n_unsupported += !r->ops[k].supported;
        }
        r->ops[k].count++;
    }
    for (int i = 0; i < g->n_initializers; i++) {
        r->n_weights++;
        r->weight_bytes += g->initializers[i].nbytes;
    }
    return 0;
}

/* The shape input i of g is inspected at: given by name, else declared
 * with dynamic dims taken as 1. */
static int input_shape(const eng_graph *g, int i, const rouse_tensor *shapes, int n_shapes,
                       eng_tensor *t, rouse_errbuf *eb)
{
    const eng_value *v = &g->values[g->inputs[i]];
    t->dtype = v->dtype;
    t->data = NULL;
    for (int k = 0; k < n_shapes; k++) {
        if (!shapes[k].name || strcmp(shapes[k].name, v->name)) continue;
        if (shapes[k].rank < 0 || shapes[k].rank > ENG_MAX_RANK)
            return rouse_err_set(eb, ROUSE_EINVAL, "input '%s': rank %d", v->name, shapes[k].rank);
        if (v->rank >= 0 && shapes[k].rank != v->rank)
            return rouse_err_set(eb, ROUSE_EMISMATCH, "input '%s' has rank %d, %d dims were given",
                                 v->name, v->rank, shapes[k].rank);
        t->rank = shapes[k].rank;
        for (int d = 0; d < t->rank; d++) {
            if (shapes[k].shape[d] < 0)
                return rouse_err_set(eb, ROUSE_EINVAL, "input '%s': negative dim", v->name);
            if (v->rank >= 0 && v->shape[d] >= 0 && v->shape[d] != shapes[k].shape[d])
                return rouse_err_set(eb, ROUSE_EMISMATCH,
                                     "input '%s' has dim %d fixed at %lld, %lld was given", v->name,
                                     d, (long long)v->shape[d], (long long)shapes[k].shape[d]);
            t->shape[d] = shapes[k].shape[d];
        }
        return 0;
    }
    if (v->rank < 0)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "input '%s' declares no shape: give one (--input %s=DIMS)", v->name,
                             v->name);
    t->rank = v->rank;
    for (int d = 0; d < v->rank; d++)
        t->shape[d] = v->shape[d] < 0 ? 1 : v->shape[d];
    return 0;
}

/* Shapes of every value at the inspected input shapes, and the sum of the
 * nodes' multiply-accumulates. */
static int infer_all(report_priv *p, const rouse_tensor *shapes, int n_shapes, rouse_errbuf *eb)
{
    eng_graph g;
    int rc = eng_graph_build(&p->om, &g, eb);
    if (rc < 0) return rc;
    /* Inputs whose values shape the graph (a Reshape's target given as an
     * input) have no values here. */
    for (int i = 0; i < g.n_inputs; i++) {
        if (eng_graph_input_value_matters(&g, i)) {
            rc = rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                               "shapes depend on the values of input '%s', which inspect "
                               "does not take",
                               g.values[g.inputs[i]].name);
            eng_graph_fini(&g);
            return rc;
        }
    }
    eng_tensor *vals = calloc((size_t)g.n_values + 1, sizeof(*vals));
    bool *known = calloc((size_t)g.n_values + 1, sizeof(bool));
    void **owned = calloc((size_t)g.n_values + 1, sizeof(void *));
    if (!vals || !known || !owned) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < g.n_values; i++) {
        const eng_value *v = &g.values[i];
        if (!v->const_data) continue;
        vals[i] = (eng_tensor){.dtype = v->dtype, .rank = v->rank, .data = (void *)v->const_data};
        memcpy(vals[i].shape, v->shape, sizeof(v->shape));
        known[i] = true;
    }
    for (int i = 0; i < g.n_inputs; i++) {
        if ((rc = input_shape(&g, i, shapes, n_shapes, &vals[g.inputs[i]], eb)) < 0) goto out;
        known[g.inputs[i]] = true;
    }
    uint64_t macs = 0;
    for (int i = 0; i < g.n_nodes; i++) {
        const eng_node *n = &g.nodes[i];
        const eng_tensor *in[64];
        eng_tensor out[64], *outp[64];
        if (n->n_in > 64 || n->n_out > 64) {
            rc = rouse_err_set(eb, ROUSE_EUNSUPPORTED, "node '%s' has too many inputs", n->name);
            goto out;
        }
        bool all_data = true;
        for (int k = 0; k < n->n_in; k++) {
            in[k] = n->in[k] >= 0 ? &vals[n->in[k]] : NULL;
            if (in[k] && !in[k]->data) all_data = false;
        }
        memset(out, 0, sizeof(out));
        eng_attrs res;
        if ((rc = eng_infer_node(n, in, out, &res, eb)) < 0) goto out;
        const eng_op_desc *d = eng_op_desc_get(n->op);
        if (d->macs) macs += (uint64_t)d->macs(n, &res, in, out);
        int64_t bytes = 0;
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0) bytes += eng_tensor_nbytes(&out[k]);
        /* Small values computed from constants are kept (shape subgraphs). */
        bool fold = all_data && d->run && bytes <= FOLD_MAX_BYTES;
        for (int k = 0; k < n->n_out; k++) {
            outp[k] = NULL;
            if (n->out[k] < 0) continue;
            out[k].data = NULL;
            if (fold) {
                owned[n->out[k]] = calloc(1, (size_t)eng_tensor_nbytes(&out[k]) + 1);
                if (!owned[n->out[k]]) fold = false;
                out[k].data = owned[n->out[k]];
            }
            vals[n->out[k]] = out[k];
            known[n->out[k]] = true;
            outp[k] = &vals[n->out[k]];
        }
        rouse_errbuf ignored;
        if (fold && eng_ref_run_node(n, &res, in, outp, &ignored) < 0)
            for (int k = 0; k < n->n_out; k++)
                if (n->out[k] >= 0) vals[n->out[k]].data = NULL;
    }
    p->r.macs = macs;
    p->r.shapes_known = 1;
    for (int i = 0; i < p->r.n_outputs; i++) {
        rouse_inspect_tensor *t = &p->r.outputs[i];
        for (int k = 0; k < g.n_values; k++) {
            if (!known[k] || strcmp(g.values[k].name, t->name)) continue;
            t->shape_rank = vals[k].rank;
            memcpy(t->shape, vals[k].shape, sizeof(t->shape));
            break;
        }
    }
    for (int i = 0; i < p->r.n_inputs; i++) {
        rouse_inspect_tensor *t = &p->r.inputs[i];
        for (int k = 0; k < g.n_inputs; k++) {
            const eng_tensor *v = &vals[g.inputs[k]];
            if (strcmp(g.values[g.inputs[k]].name, t->name)) continue;
            t->shape_rank = v->rank;
            memcpy(t->shape, v->shape, sizeof(t->shape));
        }
    }
    rc = 0;
out:
    for (int i = 0; owned && i < g.n_values; i++)
        free(owned[i]);
    free(owned);
    free(known);
    free(vals);
    eng_graph_fini(&g);
    return rc;
}

/* Prepares a session at the inspected shapes (one run on zeros) and reads
 * the activation arena its plan holds. */
static int measure_arena(report_priv *p, rouse_errbuf *eb)
{
    rouse_model *m = NULL;
    rouse_session *s = NULL;
    rouse_tensor *ins = NULL;
    void **bufs = NULL;
    int n = 0, rc = rouse_model_load(p->path, &m, eb);
    if (rc < 0) return rc;
    n = rouse_model_n_inputs(m);
    ins = calloc((size_t)n + 1, sizeof(*ins));
    bufs = calloc((size_t)n + 1, sizeof(*bufs));
    if (!ins || !bufs) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        rouse_tensor_info info;
        rouse_model_input(m, i, &info);
        const rouse_inspect_tensor *t = NULL;
        for (int k = 0; k < p->r.n_inputs; k++)
            if (!strcmp(p->r.inputs[k].name, info.name)) t = &p->r.inputs[k];
        if (!t || t->shape_rank < 0) {
            rc = rouse_err_set(eb, ROUSE_EINVAL, "input '%s' has no shape", info.name);
            goto out;
        }
        ins[i] = (rouse_tensor){.name = info.name, .dtype = info.dtype, .rank = t->shape_rank};
        memcpy(ins[i].shape, t->shape, sizeof(ins[i].shape));
        int64_t cnt = 1;
        for (int k = 0; k < t->shape_rank; k++)
            cnt *= t->shape[k];
        ins[i].nbytes = (size_t)cnt * rouse_dtype_size(info.dtype);
        bufs[i] = calloc(1, ins[i].nbytes + 1);
        if (!bufs[i]) {
            rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory for input '%s'", info.name);
            goto out;
        }
        ins[i].data = bufs[i];
    }
    if ((rc = rouse_session_create(m, NULL, &s, eb)) < 0) goto out;
    if ((rc = rouse_session_run(s, ins, n, eb)) < 0) goto out;
    rouse_session_stats st;
    if ((rc = rouse_session_get_stats(s, &st)) < 0) {
        rc = rouse_err_set(eb, rc, "no plan was prepared");
        goto out;
    }
    p->r.arena_bytes = st.arena_bytes;
    p->r.arena_known = 1;
out:
    rouse_session_destroy(s);
    for (int i = 0; bufs && i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(ins);
    rouse_model_destroy(m);
    return rc;
}

int rouse_model_inspect(const char *path, const rouse_tensor *shapes, int n_shapes,
                        rouse_inspect_report **out, rouse_errbuf *eb)
{
    report_priv *p = calloc(1, sizeof(*p));
    if (!p) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    p->path = path;
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = rouse_err_set(eb, errno == ENOENT ? ROUSE_ENOTFOUND : ROUSE_EIO, "%s: %s", path,
                           strerror(errno));
        goto out_fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0) {
        close(fd);
        rc = rouse_err_set(eb, ROUSE_EIO, "%s: not a regular, non-empty file", path);
        goto out_fail;
    }
    p->map_len = (size_t)sb.st_size;
    p->map = mmap(NULL, p->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p->map == MAP_FAILED) {
        p->map = NULL;
        rc = rouse_err_set(eb, ROUSE_EIO, "%s: mmap: %s", path, strerror(errno));
        goto out_fail;
    }
    if ((rc = onnx_model_decode(p->map, p->map_len, &p->om, eb)) < 0) {
        rouse_err_wrap(eb, rc, "%s", path);
        goto out_fail;
    }
    p->decoded = true;
    /* Weights in external data files (location/offset/length) are mapped in
     * place, as loading does; their bytes count as weights either way. */
    char *dir = strdup(path);
    if (!dir) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out_fail;
    }
    rc = onnx_model_map_external(&p->om, dirname(dir), eb);
    free(dir);
    if (rc < 0) goto out_fail;
    if ((rc = fill_declarations(p)) < 0) {
        rc = rouse_err_set(eb, rc, "out of memory");
        goto out_fail;
    }

    rouse_errbuf why;
    rouse_errbuf_clear(&why);
    if (p->r.n_unsupported) {
        snprintf(p->r.why_unknown, sizeof(p->r.why_unknown),
                 "the model has operators the engine does not run");
    } else if (infer_all(p, shapes, n_shapes, &why) < 0) {
        snprintf(p->r.why_unknown, sizeof(p->r.why_unknown), "%s", why.msg);
    } else if (measure_arena(p, &why) < 0) {
        snprintf(p->r.why_unknown, sizeof(p->r.why_unknown), "%s", why.msg);
    }
    p->path = NULL;
    *out = &p->r;
    return 0;

out_fail:
    rouse_inspect_report_destroy(&p->r);
    return rc;
}

void rouse_inspect_report_destroy(rouse_inspect_report *r)
{
    if (!r) return;
    report_priv *p = (report_priv *)r;
    free(r->opsets);
    free(r->inputs);
    free(r->outputs);
    free(r->ops);
    if (p->decoded) onnx_model_fini(&p->om);
    if (p->map) munmap(p->map, p->map_len);
    free(p);
}
