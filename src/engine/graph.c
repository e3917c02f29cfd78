/*
 * Builds the graph IR from a decoded ONNX model.
 *
 * Names are resolved through a hash table so that a 10,000-node graph builds
 * in linear time. Nodes may come in any order in the file; they leave here in
 * topological order (Kahn's algorithm), and a cycle is an error naming a node
 * on it. Constant nodes become constant values. Initializer data is used in
 * place when it is aligned to its element size and copied into the graph's
 * arena otherwise (protobuf gives no alignment guarantee).
 */
#include "engine/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/onnx/onnx.h"

/* --- name table ------------------------------------------------------------ */

typedef struct name_table {
    int *slots; /* value id + 1, 0 = empty */
    size_t cap; /* power of two */
} name_table;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int table_init(name_table *t, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2 + 1)
        cap *= 2;
    t->slots = calloc(cap, sizeof(*t->slots));
    t->cap = cap;
    return t->slots ? 0 : ROUSE_ENOMEM;
}

/* Id of `name`, or -1. */
static int table_find(const name_table *t, const eng_graph *g, const char *name)
{
    for (size_t i = hash_str(name) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        int v = t->slots[i];
        if (!v) return -1;
        if (strcmp(g->values[v - 1].name, name) == 0) return v - 1;
    }
}

static void table_put(name_table *t, const eng_graph *g, int id)
{
    size_t i = hash_str(g->values[id].name) & (t->cap - 1);
    while (t->slots[i])
        i = (i + 1) & (t->cap - 1);
    t->slots[i] = id + 1;
}

/* --- values ----------------------------------------------------------------- */

static bool name_taken(const eng_graph *g, const char *name)
{
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].name && !strcmp(g->values[v].name, name)) return true;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].name && !strcmp(g->nodes[i].name, name)) return true;
    return false;
}

const char *eng_graph_unique_name(eng_graph *g, const char *base, const char *fallback,
                                  const char *suffix)
{
    const char *b = base && *base ? base : fallback;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s%s", b, suffix);
    for (int k = 1; name_taken(g, buf) && k < 1000000; k++)
        snprintf(buf, sizeof(buf), "%s%s_%d", b, suffix, k);
    return rouse_arena_strdup(&g->arena, buf);
}

int eng_graph_add_value(eng_graph *g, const char *name, int dtype, int *id)
{
    if (g->n_values == g->cap_values) {
        int cap = g->cap_values ? g->cap_values * 2 : 64;
        eng_value *v = realloc(g->values, sizeof(*v) * (size_t)cap);
        if (!v) return ROUSE_ENOMEM;
        g->values = v;
        g->cap_values = cap;
    }
    eng_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof(*v));
    v->name = name;
    v->dtype = dtype;
    v->rank = -1;
    v->producer = -1;
    *id = g->n_values++;
    return 0;
}

/* Makes `t` the constant value `id`: dtype, shape, and aligned data. */
static int set_const(eng_graph *g, int id, const onnx_tensor *t, rouse_errbuf *eb)
{
    eng_value *v = &g->values[id];
    size_t es = eng_dtype_size(t->data_type);
    if (es == 0)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "constant '%s' has unsupported type %s",
                             v->name, eng_dtype_name(t->data_type));
    if (t->n_dims > ENG_MAX_RANK)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "constant '%s' has rank %d (max %d)", v->name,
                             t->n_dims, ENG_MAX_RANK);
    v->dtype = t->data_type;
    v->rank = t->n_dims;
    for (int i = 0; i < t->n_dims; i++)
        v->shape[i] = t->dims[i];
    /* Large payloads stay in place even when misaligned: copying a model's
     * weights would cost more than the whole load. Consumers that need typed
     * access ask for an aligned view (eng_graph_const_aligned, or the plan's
     * own copy); oneDNN reorders read them as they are. */
    const void *data = t->data;
    if (!data || (((uintptr_t)data % es) != 0 && t->nbytes <= ENG_CONST_COPY_MAX)) {
        void *copy = rouse_arena_alloc(&g->arena, t->nbytes ? t->nbytes : 1, 64);
        if (!copy) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory copying '%s'", v->name);
        if (t->nbytes) memcpy(copy, t->data, t->nbytes);
        data = copy;
    }
    v->const_data = data;
    return 0;
}

/* Constant node -> the tensor it defines (value, value_float(s), value_int(s)). */
static int constant_node_tensor(const onnx_node *on, rouse_arena *a, onnx_tensor *out,
                                rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < on->n_attrs; i++) {
        const onnx_attr *at = &on->attrs[i];
        if (strcmp(at->name, "value") == 0 && at->t) {
            *out = *at->t;
            return 0;
        }
        if (strcmp(at->name, "value_float") == 0 || strcmp(at->name, "value_int") == 0) {
            bool is_f = at->name[6] == 'f';
            void *d = rouse_arena_alloc(a, 8, 8);
            if (!d) return ROUSE_ENOMEM;
            if (is_f)
                memcpy(d, &at->f, sizeof(float));
            else
                memcpy(d, &at->i, sizeof(int64_t));
            out->data_type = is_f ? ENG_DT_FLOAT : ENG_DT_INT64;
            out->data = d;
            out->nbytes = is_f ? 4 : 8;
            out->n_elems = 1;
            return 0;
        }
        if (strcmp(at->name, "value_floats") == 0 || strcmp(at->name, "value_ints") == 0) {
            bool is_f = at->name[6] == 'f';
            int n = is_f ? at->n_floats : at->n_ints;
            int64_t *dims = rouse_arena_alloc(a, sizeof(int64_t), 8);
            if (!dims) return ROUSE_ENOMEM;
            dims[0] = n;
            out->data_type = is_f ? ENG_DT_FLOAT : ENG_DT_INT64;
            out->n_dims = 1;
            out->dims = dims;
            out->data = is_f ? (const void *)at->floats : (const void *)at->ints;
            out->nbytes = (size_t)n * (is_f ? 4 : 8);
            out->n_elems = n;
            return 0;
        }
    }
    return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                         "node '%s' (Constant): needs a 'value', 'value_float(s)' or "
                         "'value_int(s)' attribute",
                         on->name);
}

static int set_declared_shape(eng_value *v, const onnx_value_info *vi, rouse_errbuf *eb)
{
    if (!vi->is_tensor)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                             "'%s' is not a tensor (sequence, map and "
                             "optional values are not supported)",
                             vi->name);
    v->dtype = vi->elem_type;
    if (vi->rank > ENG_MAX_RANK)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "'%s' has rank %d (max %d)", vi->name,
                             vi->rank, ENG_MAX_RANK);
    v->rank = vi->rank;
    for (int i = 0; i < vi->rank; i++) {
        v->shape[i] = vi->dims[i].value;
        v->dim_names[i] = v->shape[i] < 0 && vi->dims[i].param && vi->dims[i].param[0]
                              ? vi->dims[i].param
                              : NULL;
    }
    return 0;
}

/* --- build -------------------------------------------------------------------- */

static int topo_sort(eng_graph *g, rouse_errbuf *eb);

int eng_graph_build(const onnx_model *m, eng_graph *g, rouse_errbuf *eb)
{
    const onnx_graph *og = &m->graph;
    int rc;
    name_table tab = {0};

    memset(g, 0, sizeof(*g));
    rouse_arena_init(&g->arena, 0);
    int64_t opset = onnx_model_default_opset(m);
    if (opset < 0) opset = 1; /* ONNX: no import of the default domain means opset 1 */
    g->opset = (int)opset;
    if (m->has_functions) {
        rc = rouse_err_set(eb, ROUSE_EUNSUPPORTED, "model-local functions are not supported");
        goto out_fail;
    }

    size_t n_names = (size_t)og->n_initializers + (size_t)og->n_inputs;
    for (int i = 0; i < og->n_nodes; i++)
        n_names += (size_t)og->nodes[i].n_outputs;
    if ((rc = table_init(&tab, n_names)) < 0) goto out_fail;

    /* Initializers: constants. */
    for (int i = 0; i < og->n_initializers; i++) {
        const onnx_tensor *t = &og->initializers[i];
        if (!t->name[0]) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT, "initializer %d has no name", i);
            goto out_fail;
        }
        if (table_find(&tab, g, t->name) >= 0) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT, "initializer '%s' is defined twice", t->name);
            goto out_fail;
        }
        int id;
        if ((rc = eng_graph_add_value(g, t->name, t->data_type, &id)) < 0) goto out_fail;
        if ((rc = set_const(g, id, t, eb)) < 0) goto out_fail;
        table_put(&tab, g, id);
    }

    /* Graph inputs that are not initializers are what callers provide. */
    g->inputs = rouse_arena_alloc(&g->arena, sizeof(int) * (size_t)(og->n_inputs + 1), 8);
    if (!g->inputs) goto out_nomem;
    for (int i = 0; i < og->n_inputs; i++) {
        const onnx_value_info *vi = &og->inputs[i];
        if (table_find(&tab, g, vi->name) >= 0) {
            int id = table_find(&tab, g, vi->name);
            if (g->values[id].const_data) continue; /* IR < 4: initializers listed as inputs */
            rc = rouse_err_set(eb, ROUSE_EFORMAT, "graph input '%s' is declared twice", vi->name);
            goto out_fail;
        }
        int id;
        if ((rc = eng_graph_add_value(g, vi->name, vi->elem_type, &id)) < 0) goto out_fail;
        if ((rc = set_declared_shape(&g->values[id], vi, eb)) < 0) goto out_fail;
        if (g->values[id].dtype == ENG_DT_STRING || eng_dtype_size(g->values[id].dtype) == 0) {
            rc = rouse_err_set(eb, ROUSE_EUNSUPPORTED, "graph input '%s' has unsupported type %s",
                               vi->name, eng_dtype_name(g->values[id].dtype));
            goto out_fail;
        }
        g->values[id].is_input = true;
        g->inputs[g->n_inputs++] = id;
        table_put(&tab, g, id);
    }

    /* Every unsupported operator at once, before anything else about the nodes. */
    if ((rc = eng_op_lookup_all(og, opset, eb)) < 0) goto out_fail;

    /* Pass 1: every node output becomes a value (or a constant for Constant nodes). */
    g->nodes = calloc((size_t)og->n_nodes + 1, sizeof(*g->nodes));
    if (!g->nodes) goto out_nomem;
    g->cap_nodes = og->n_nodes + 1;
    for (int i = 0; i < og->n_nodes; i++) {
        const onnx_node *on = &og->nodes[i];
        eng_op op;
        if ((rc = eng_op_lookup(on->op_type, on->domain, opset, on->name, &op, eb)) < 0)
            goto out_fail;
        if (op == ENG_OP_CONSTANT && on->n_outputs != 1) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT, "node '%s' (Constant): needs exactly 1 output",
                               on->name);
            goto out_fail;
        }
        for (int k = 0; k < on->n_outputs; k++) {
            const char *name = on->outputs[k];
            if (!name[0]) continue;
            if (table_find(&tab, g, name) >= 0) {
                rc = rouse_err_set(eb, ROUSE_EFORMAT,
                                   "node '%s' (%s): output '%s' is already defined elsewhere",
                                   on->name, on->op_type, name);
                goto out_fail;
            }
            int id;
            if ((rc = eng_graph_add_value(g, name, 0, &id)) < 0) goto out_fail;
            table_put(&tab, g, id);
            if (op == ENG_OP_CONSTANT) {
                onnx_tensor t;
                if ((rc = constant_node_tensor(on, &g->arena, &t, eb)) < 0) goto out_fail;
                if ((rc = set_const(g, id, &t, eb)) < 0) goto out_fail;
            }
        }
    }

    /* Pass 2: nodes with resolved inputs and parsed attributes. */
    for (int i = 0; i < og->n_nodes; i++) {
        const onnx_node *on = &og->nodes[i];
        eng_op op;
        eng_op_lookup(on->op_type, on->domain, opset, on->name, &op, NULL);
        if (op == ENG_OP_CONSTANT) continue;
        eng_node *n = &g->nodes[g->n_nodes];
        memset(n, 0, sizeof(*n));
        n->name = on->name;
        n->op = op;
        n->opset = (int)opset;
        n->n_in = on->n_inputs;
        n->n_out = on->n_outputs;
        n->in = rouse_arena_alloc(&g->arena, sizeof(int) * (size_t)(n->n_in + 1), 8);
        n->out = rouse_arena_alloc(&g->arena, sizeof(int) * (size_t)(n->n_out + 1), 8);
        if (!n->in || !n->out) goto out_nomem;
        for (int k = 0; k < on->n_inputs; k++) {
            const char *name = on->inputs[k];
            n->in[k] = name[0] ? table_find(&tab, g, name) : -1;
            if (name[0] && n->in[k] < 0) {
                rc = rouse_err_set(eb, ROUSE_EFORMAT,
                                   "node '%s' (%s): input '%s' is not produced by any node, "
                                   "initializer or graph input",
                                   on->name, on->op_type, name);
                goto out_fail;
            }
        }
        for (int k = 0; k < on->n_outputs; k++) {
            n->out[k] = on->outputs[k][0] ? table_find(&tab, g, on->outputs[k]) : -1;
            if (n->out[k] >= 0) g->values[n->out[k]].producer = g->n_nodes;
        }
        if ((rc = eng_attrs_parse(on, n, &g->arena, eb)) < 0) goto out_fail;
        g->n_nodes++;
    }

    /* Outputs. */
    g->outputs = rouse_arena_alloc(&g->arena, sizeof(int) * (size_t)(og->n_outputs + 1), 8);
    if (!g->outputs) goto out_nomem;
    for (int i = 0; i < og->n_outputs; i++) {
        const onnx_value_info *vi = &og->outputs[i];
        int id = table_find(&tab, g, vi->name);
        if (id < 0) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT,
                               "graph output '%s' is not produced by any node or initializer",
                               vi->name);
            goto out_fail;
        }
        if (!vi->is_tensor) {
            rc = rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                               "graph output '%s' is not a tensor (sequence, map and optional "
                               "values are not supported)",
                               vi->name);
            goto out_fail;
        }
        eng_value *v = &g->values[id];
        if (!v->const_data && !v->is_input && vi->rank >= 0 && vi->rank <= ENG_MAX_RANK) {
            v->rank = vi->rank;
            for (int k = 0; k < vi->rank; k++) {
                v->shape[k] = vi->dims[k].value;
                v->dim_names[k] = v->shape[k] < 0 && vi->dims[k].param && vi->dims[k].param[0]
                                      ? vi->dims[k].param
                                      : NULL;
            }
            v->dtype = vi->elem_type;
        }
        v->is_output = true;
        g->outputs[g->n_outputs++] = id;
    }
    if (g->n_outputs == 0) {
        rc = rouse_err_set(eb, ROUSE_EFORMAT, "the graph declares no outputs");
        goto out_fail;
    }

    if ((rc = topo_sort(g, eb)) < 0) goto out_fail;
    free(tab.slots);
    return 0;

out_nomem:
    rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory building the graph");
out_fail:
    free(tab.slots);
    eng_graph_fini(g);
    return rc;
}

/* Kahn's algorithm over node dependencies, linear in nodes + edges: a
 * consumer list per node (CSR) and a FIFO seeded in file order, so a graph
 * that is already sorted keeps its order. */
static int topo_sort(eng_graph *g, rouse_errbuf *eb)
{
    int n = g->n_nodes;
    if (n == 0) return 0;
    size_t n_edges = 0;
    for (int i = 0; i < n; i++)
        n_edges += (size_t)g->nodes[i].n_in;
    int *indeg = calloc((size_t)n, sizeof(int));
    int *start = calloc((size_t)n + 1, sizeof(int));
    int *adj = malloc(sizeof(int) * (n_edges + 1));
    int *fill = calloc((size_t)n, sizeof(int));
    int *queue = malloc(sizeof(int) * (size_t)n);
    eng_node *sorted = malloc(sizeof(*sorted) * (size_t)g->cap_nodes);
    int rc = 0;
    if (!indeg || !start || !adj || !fill || !queue || !sorted) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory sorting the graph");
        goto out;
    }
    /* Edge producer -> consumer for every input produced by a node. */
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].in[k];
            if (v >= 0 && g->values[v].producer >= 0) {
                start[g->values[v].producer + 1]++;
                indeg[i]++;
            }
        }
    for (int i = 0; i < n; i++)
        start[i + 1] += start[i];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].in[k];
            if (v >= 0 && g->values[v].producer >= 0) {
                int p = g->values[v].producer;
                adj[start[p] + fill[p]++] = i;
            }
        }
    int head = 0, tail = 0;
    for (int i = 0; i < n; i++)
        if (!indeg[i]) queue[tail++] = i;
    while (head < tail) {
        int i = queue[head++];
        for (int e = start[i]; e < start[i + 1]; e++)
            if (--indeg[adj[e]] == 0) queue[tail++] = adj[e];
    }
    if (tail < n) {
        int bad = 0;
        while (!indeg[bad])
            bad++;
        rc = rouse_err_set(eb, ROUSE_EFORMAT, "the graph has a cycle through node '%s' (%s)",
                           g->nodes[bad].name, eng_op_name(g->nodes[bad].op));
        goto out;
    }
    for (int i = 0; i < n; i++)
        sorted[i] = g->nodes[queue[i]];
    free(g->nodes);
    g->nodes = sorted;
    sorted = NULL;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_out; k++)
            if (g->nodes[i].out[k] >= 0) g->values[g->nodes[i].out[k]].producer = i;
out:
    free(indeg);
    free(start);
    free(adj);
    free(fill);
    free(queue);
    free(sorted);
    return rc;
}

bool eng_value_const_aligned(const eng_value *v)
{
    size_t es = eng_dtype_size(v->dtype);
    return v->const_data && es && ((uintptr_t)v->const_data % es) == 0;
}

const void *eng_graph_const_aligned(eng_graph *g, int id, rouse_errbuf *eb)
{
    eng_value *v = &g->values[id];
    if (!v->const_data || eng_value_const_aligned(v)) return v->const_data;
    int64_t nbytes = eng_shape_numel(v->rank, v->shape) * (int64_t)eng_dtype_size(v->dtype);
    void *copy = rouse_arena_alloc(&g->arena, (size_t)(nbytes > 0 ? nbytes : 1), 64);
    if (!copy) {
        rouse_err_set(eb, ROUSE_ENOMEM, "out of memory copying '%s'", v->name);
        return NULL;
    }
    memcpy(copy, v->const_data, (size_t)(nbytes > 0 ? nbytes : 0));
    v->const_data = copy;
    return copy;
}

void eng_graph_fini(eng_graph *g)
{
    free(g->values);
    free(g->nodes);
    rouse_arena_fini(&g->arena);
    memset(g, 0, sizeof(*g));
}
