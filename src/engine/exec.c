/*
 * Execution plans: building (shape inference, kernel choice, layouts),
 * memory planning and running. See exec.h; oneDNN kernel builders live in
 * exec_dnnl.c.
 *
 * Invariants of a finished plan: steps run in order and only read prepared
 * values written by earlier steps, constants or inputs; two storages share
 * arena bytes only when their lifetimes [first, last] do not intersect; every
 * output value is plain (row-major) and alive until the end.
 */
#include "engine/exec_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "engine/op.h"
#include "engine/ref_dispatch.h"

#define ALIGN 64

/* --- oneDNN context ------------------------------------------------------------ */

int eng_dnnl_ctx_create(eng_dnnl_ctx **out, rouse_errbuf *eb)
{
    eng_dnnl_ctx *c = calloc(1, sizeof(*c));
    if (!c) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    if (dnnl_engine_create(&c->engine, dnnl_cpu, 0) != dnnl_success) {
        free(c);
        return rouse_err_set(eb, ROUSE_EINTERNAL, "oneDNN: cannot create a CPU engine");
    }
    if (dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_engine_destroy(c->engine);
        free(c);
        return rouse_err_set(eb, ROUSE_EINTERNAL, "oneDNN: cannot create a stream");
    }
    c->gemv_max_rows = 1;
    *out = c;
    return 0;
}

void eng_dnnl_ctx_set_gemv_rows(eng_dnnl_ctx *c, int rows)
{
    c->gemv_max_rows = rows > 1 ? rows : 1;
}

void eng_dnnl_ctx_destroy(eng_dnnl_ctx *c)
{
    if (!c) return;
    dnnl_stream_destroy(c->stream);
    dnnl_engine_destroy(c->engine);
    free(c);
}

/* --- small services -------------------------------------------------------------- */

static int grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap) return 0;
    int cap2 = *cap ? *cap * 2 : 32;
    while (cap2 < need)
        cap2 *= 2;
    void *a = realloc(*arr, elem * (size_t)cap2);
    if (!a) return ROUSE_ENOMEM;
    *arr = a;
    *cap = cap2;
    return 0;
}

int plan_md_plain(int dtype, int rank, const int64_t *shape, dnnl_memory_desc_t *md)
{
    dnnl_data_type_t dt;
    switch (dtype) {
    case ENG_DT_FLOAT:
        dt = dnnl_f32;
        break;
    case ENG_DT_INT8:
        dt = dnnl_s8;
        break;
    case ENG_DT_UINT8:
        dt = dnnl_u8;
        break;
    case ENG_DT_INT32:
        dt = dnnl_s32;
        break;
    default:
        return ROUSE_EUNSUPPORTED;
    }
    dnnl_dims_t dims, strides;
    int nd = rank ? rank : 1;
    for (int i = 0; i < nd; i++)
        dims[i] = rank ? shape[i] : 1;
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        strides[i] = s;
        int64_t d = dims[i] ? dims[i] : 1;
        if (d < 0 || s > INT64_MAX / d) return ROUSE_ERANGE;
        s *= d;
    }
    return dnnl_memory_desc_init_by_strides(md, nd, dims, dt, strides) == dnnl_success
               ? 0
               : ROUSE_EUNSUPPORTED;
}

int plan_new_pv(eng_plan *p, const eng_tensor *shape, int *out)
{
    if (grow((void **)&p->pvs, &p->cap_pvs, p->n_pvs + 1, sizeof(exec_pv)) < 0 ||
        grow((void **)&p->st, &p->cap_st, p->n_st + 1, sizeof(exec_storage)) < 0)
        return ROUSE_ENOMEM;
    exec_pv *v = &p->pvs[p->n_pvs];
    memset(v, 0, sizeof(*v));
    v->t = *shape;
    v->t.data = NULL;
    v->plain = true;
    v->input_index = -1;
    v->plain_pv = -1;
    v->value = -1;
    v->has_md = plan_md_plain(shape->dtype, shape->rank, shape->shape, &v->md) == 0 &&
                shape->dtype == ENG_DT_FLOAT;
    exec_storage *s = &p->st[p->n_st];
    memset(s, 0, sizeof(*s));
    s->first = s->last = -1;
    s->n_pvs = 1;
    v->storage = p->n_st++;
    *out = p->n_pvs++;
    return 0;
}

void plan_bind_value(eng_plan *p, int value, int pv)
{
    p->val_pv[value] = pv;
    p->pvs[pv].value = value;
}

int plan_add_step(eng_plan *p, exec_step **out)
{
    if (grow((void **)&p->steps, &p->cap_steps, p->n_steps + 1, sizeof(exec_step)) < 0)
        return ROUSE_ENOMEM;
    exec_step *s = &p->steps[p->n_steps++];
    memset(s, 0, sizeof(*s));
    s->write = -1;
    *out = s;
    return 0;
}

int plan_own(eng_plan *p, void *ptr)
{
    if (grow((void **)&p->owned, &p->cap_owned, p->n_owned + 1, sizeof(void *)) < 0)
        return ROUSE_ENOMEM;
    p->owned[p->n_owned++] = ptr;
    return 0;
}

struct weight_chunk {
    struct weight_chunk *next;
    size_t size, used;
    void *base;
};

#define CHUNK_ALIGN ((size_t)2 << 20)

/* size bytes (a multiple of CHUNK_ALIGN) of anonymous memory starting on a
 * huge-page boundary (over-mapped by 2 MiB, the ends trimmed), the first
 * `huge` bytes advised as transparent huge pages. NULL when out of memory. */
static void *map_2m_aligned(size_t size, size_t huge)
{
    void *raw =
        mmap(NULL, size + CHUNK_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    uintptr_t start = ((uintptr_t)raw + CHUNK_ALIGN - 1) & ~(uintptr_t)(CHUNK_ALIGN - 1);
    size_t head = start - (uintptr_t)raw;
    if (head) munmap(raw, head);
    if (CHUNK_ALIGN - head) munmap((char *)start + size, CHUNK_ALIGN - head);
    if (huge) madvise((void *)start, huge, MADV_HUGEPAGE);
    return (void *)start;
}

void *plan_weight_alloc(eng_plan *p, size_t size)
{
    size = (size + ALIGN - 1) / ALIGN * ALIGN;
    struct weight_chunk *c = p->chunks;
    if (!c || c->size - c->used < size) {
        size_t want = size > 16 * CHUNK_ALIGN ? size : 16 * CHUNK_ALIGN;
        want = (want + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
        c = malloc(sizeof(*c));
        if (!c) return NULL;
        /* No MADV_HUGEPAGE: with the usual defrag=madvise setting, faults in
         * such regions compact memory synchronously and a load could stall
         * for 100 ms. */
        void *start = map_2m_aligned(want, 0);
        if (!start) {
            free(c);
            return NULL;
        }
        c->base = start;
        c->size = want;
        c->used = 0;
        c->next = p->chunks;
        p->chunks = c;
    }
    void *ptr = (char *)c->base + c->used;
    c->used += size;
    return ptr;
}

int plan_fixed_mem(eng_plan *p, const dnnl_memory_desc_t *md, void *handle, dnnl_memory_t *out)
{
    if (grow((void **)&p->fixed_mems, &p->cap_fixed, p->n_fixed + 1, sizeof(dnnl_memory_t)) < 0)
        return ROUSE_ENOMEM;
    if (dnnl_memory_create(out, md, p->ctx->engine, handle) != dnnl_success) return ROUSE_EINTERNAL;
    p->fixed_mems[p->n_fixed++] = *out;
    return 0;
}

int plan_scratch_pv(eng_plan *p, size_t size, int *out)
{
    eng_tensor t = {.dtype = ENG_DT_UINT8, .rank = 1};
    t.shape[0] = (int64_t)size;
    int rc = plan_new_pv(p, &t, out);
    if (rc == 0) p->stats.scratch_bytes += size;
    return rc;
}

/* A reorder step from pv `src` into a new pv laid out as `md`. */
int plan_reorder_new(eng_plan *p, int src, const dnnl_memory_desc_t *md, int *out, rouse_errbuf *eb)
{
    dnnl_primitive_desc_t pd;
    if (dnnl_reorder_primitive_desc_create(&pd, &p->pvs[src].md, p->ctx->engine, md, p->ctx->engine,
                                           NULL) != dnnl_success)
        return rouse_err_set(eb, ROUSE_EINTERNAL, "oneDNN: no reorder between two layouts");
    int id, rc;
    exec_step *s;
    dnnl_primitive_t prim;
    if (dnnl_primitive_create(&prim, pd) != dnnl_success) {
        dnnl_primitive_desc_destroy(pd);
        return rouse_err_set(eb, ROUSE_EINTERNAL, "oneDNN: cannot create a reorder");
    }
    dnnl_primitive_desc_destroy(pd);
    eng_tensor shape = p->pvs[src].t; /* plan_new_pv may move p->pvs */
    if ((rc = plan_new_pv(p, &shape, &id)) < 0 || (rc = plan_add_step(p, &s)) < 0) {
        dnnl_primitive_destroy(prim);
        return rouse_err_set(eb, rc, "out of memory");
    }
    exec_pv *v = &p->pvs[id];
    v->md = *md;
    v->has_md = true;
    dnnl_memory_desc_t plain;
    v->plain = plan_md_plain(v->t.dtype, v->t.rank, v->t.shape, &plain) == 0 &&
               dnnl_memory_desc_equal(&plain, md);
    s->kind = STEP_DNNL;
    s->prim = prim;
    s->n_args = 2;
    s->args = rouse_arena_alloc(&p->mem, sizeof(*s->args) * 2, 8);
    s->arg_pv = rouse_arena_alloc(&p->mem, sizeof(int) * 2, 8);
    s->reads = rouse_arena_alloc(&p->mem, sizeof(int) * 2, 8);
    if (!s->args || !s->arg_pv || !s->reads) return rouse_err_set(eb, ROUSE_ENOMEM, "oom");
    s->args[0].arg = DNNL_ARG_FROM;
    s->arg_pv[0] = src;
    s->args[1].arg = DNNL_ARG_TO;
    s->arg_pv[1] = id;
    s->reads[0] = src;
    s->reads[1] = -1;
    s->write = id;
    p->stats.n_reorders++;
    *out = id;
    return 0;
}

int plan_pv_plain(eng_plan *p, int id, rouse_errbuf *eb)
{
    exec_pv *v = &p->pvs[id];
    if (v->plain || !v->has_md) return id;
    if (v->plain_pv >= 0) return v->plain_pv;
    dnnl_memory_desc_t md;
    if (plan_md_plain(v->t.dtype, v->t.rank, v->t.shape, &md) < 0)
        return rouse_err_set(eb, ROUSE_EINTERNAL, "no plain layout for a value");
    int out, rc;
    if ((rc = plan_reorder_new(p, id, &md, &out, eb)) < 0) return rc;
    p->pvs[id].plain_pv = out;
    return out;
}

int plan_pv_as(eng_plan *p, int id, const dnnl_memory_desc_t *md, rouse_errbuf *eb)
{
    exec_pv *v = &p->pvs[id];
    if (v->has_md && dnnl_memory_desc_equal(&v->md, md)) return id;
    if (v->plain_pv >= 0 && dnnl_memory_desc_equal(&p->pvs[v->plain_pv].md, md)) return v->plain_pv;
    int out, rc;
    if ((rc = plan_reorder_new(p, id, md, &out, eb)) < 0) return rc;
    return out;
}

/* True when node n's shape inference reads the values of its input j. */
static bool reads_value_of(const eng_node *n, int j)
{
    const eng_op_desc *d = eng_op_desc_get(n->op);
    return d && j < 32 && (d->value_inputs & (1u << j));
}

/* Shape and Size read only the shape of their input, which preparing knows
 * for every value. */
static bool reads_shape_only(const eng_node *n)
{
    return n->op == ENG_OP_SHAPE || n->op == ENG_OP_SIZE;
}

int eng_graph_value_needs(const eng_graph *g, bool *need)
{
    memset(need, 0, sizeof(bool) * (size_t)g->n_values);
    /* Nodes are in topological order, so walking them backwards sees every
     * consumer of a value before its producer: one pass reaches the fixed
     * point. A needed output of a node makes all its inputs needed (the node
     * is folded from them), except through Shape and Size. */
    for (int k = g->n_nodes - 1; k >= 0; k--) {
        const eng_node *n = &g->nodes[k];
        if (n->dead) continue;
        bool out_needed = false;
        for (int j = 0; j < n->n_out; j++)
            out_needed |= n->out[j] >= 0 && need[n->out[j]];
        for (int j = 0; j < n->n_in; j++) {
            if (n->in[j] < 0) continue;
            if (reads_value_of(n, j) || (out_needed && !reads_shape_only(n))) need[n->in[j]] = true;
        }
    }
    return 0;
}

bool eng_graph_input_value_matters(const eng_graph *g, int i)
{
    bool *need = calloc((size_t)g->n_values + 1, sizeof(bool));
    if (!need) return true; /* keying by value is always correct, only slower */
    eng_graph_value_needs(g, need);
    bool r = need[g->inputs[i]];
    free(need);
    return r;
}

/* Physical memory of the machine in bytes (UINT64_MAX when unknown). */
static uint64_t phys_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : UINT64_MAX;
}

/* --- building ---------------------------------------------------------------------- */

/* Reshape/Flatten/Unsqueeze/Squeeze/Identity and inference Dropout: the
 * output is a view of the (plain) input's bytes, no step. */
static bool is_view_op(const eng_node *n)
{
    switch (n->op) {
    case ENG_OP_RESHAPE:
    case ENG_OP_FLATTEN:
    case ENG_OP_UNSQUEEZE:
    case ENG_OP_SQUEEZE:
        break;
    case ENG_OP_IDENTITY:
    case ENG_OP_DROPOUT:
        if (n->n_out > 1 && n->out[1] >= 0) return false;
        if (n->op == ENG_OP_DROPOUT && n->n_in > 2 && n->in[2] >= 0) return false;
        break;
    default:
        return false;
    }
    return true;
}

int plan_view_pv(eng_plan *p, int src, const eng_tensor *shape, int *out)
{
    assert(p->pvs[src].storage >= 0 && p->pvs[src].plain);
    int rc = plan_new_pv(p, shape, out);
    if (rc < 0) return rc;
    exec_pv *v = &p->pvs[*out];
    p->n_st--; /* drop the storage plan_new_pv made: share the source's */
    v->storage = p->pvs[src].storage;
    p->st[v->storage].n_pvs++;
    return 0;
}

static int build_view(eng_plan *p, const eng_node *n, int in_pv, const eng_tensor *shape)
{
    int id, rc;
    if ((rc = plan_view_pv(p, in_pv, shape, &id)) < 0) return rc;
    plan_bind_value(p, n->out[0], id);
    return 0;
}

bool plan_md_strided(const dnnl_memory_desc_t *md)
{
    return md->format_kind == dnnl_blocked && md->format_desc.blocking.inner_nblks == 0 &&
           md->offset0 == 0 && md->extra.flags == 0;
}

/* Transpose of a float value in a strided layout: a view with permuted dims
 * and strides, no step. oneDNN kernels (MatMul) read such views directly;
 * a consumer that needs the dense row-major form gets it from
 * plan_pv_plain() as one reorder, which is the transpose itself. */
static int build_transpose_view(eng_plan *p, const eng_node *n, const eng_attrs *ra, int in_pv,
                                const eng_tensor *shape)
{
    dnnl_memory_desc_t md = p->pvs[in_pv].md;
    const dnnl_memory_desc_t *src = &p->pvs[in_pv].md;
    for (int i = 0; i < md.ndims; i++) {
        int64_t k = ra->transpose.perm[i];
        md.dims[i] = src->dims[k];
        md.padded_dims[i] = src->padded_dims[k];
        md.padded_offsets[i] = src->padded_offsets[k];
        md.format_desc.blocking.strides[i] = src->format_desc.blocking.strides[k];
    }
    int id, rc;
    if ((rc = plan_new_pv(p, shape, &id)) < 0) return rc;
    exec_pv *v = &p->pvs[id];
    p->n_st--; /* shares the input's storage */
    v->storage = p->pvs[in_pv].storage;
    p->st[v->storage].n_pvs++;
    dnnl_memory_desc_t plain;
    v->plain = plan_md_plain(shape->dtype, shape->rank, shape->shape, &plain) == 0 &&
               dnnl_memory_desc_equal(&plain, &md);
    v->md = md;
    v->has_md = true;
    plan_bind_value(p, n->out[0], id);
    return 0;
}

static bool transpose_viewable(const eng_plan *p, const eng_node *n, const eng_attrs *ra, int in_pv)
{
    if (p->reference || n->op != ENG_OP_TRANSPOSE || in_pv < 0) return false;
    const exec_pv *x = &p->pvs[in_pv];
    if (x->storage < 0 || !x->has_md || x->t.dtype != ENG_DT_FLOAT || x->t.rank < 2 ||
        x->md.ndims != x->t.rank || !plan_md_strided(&x->md))
        return false;
    for (int i = 0; i < x->t.rank; i++)
        if (ra->transpose.perm[i] < 0 || ra->transpose.perm[i] >= x->t.rank) return false;
    return true;
}

/* Reference kernels read typed elements: a constant left misaligned in the
 * model file gets an aligned copy owned by the plan. */
static int pv_aligned(eng_plan *p, int id, rouse_errbuf *eb)
{
    exec_pv *v = &p->pvs[id];
    size_t es = eng_dtype_size(v->t.dtype);
    if (v->storage >= 0 || v->input_index >= 0 || !v->t.data || !es ||
        (uintptr_t)v->t.data % es == 0)
        return id;
    size_t nbytes = (size_t)eng_tensor_nbytes(&v->t);
    void *copy = aligned_alloc(64, (nbytes + 63) / 64 * 64);
    if (!copy || plan_own(p, copy) < 0) {
        free(copy);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    memcpy(copy, v->t.data, nbytes);
    v->t.data = copy; /* the plan's constant pvs are its own */
    return id;
}

/* The multiply-accumulates of one run of n at these inferred shapes (0 for
 * ops that do not count them). */
static int64_t node_macs(const eng_node *n, const eng_attrs *resolved, const eng_tensor *const *in,
                         const eng_tensor *outs)
{
    const eng_op_desc *d = eng_op_desc_get(n->op);
    return d && d->macs ? d->macs(n, resolved, in, outs) : 0;
}

static int build_ref(eng_plan *p, const eng_node *n, const eng_attrs *resolved, const int *in,
                     const eng_tensor *const *in_t, const eng_tensor *outs, rouse_errbuf *eb)
{
    exec_step *s;
    int rc;
    /* Refused before anything is made for it: a model file can describe a
     * convolution or product that the plain C kernels would grind through for
     * hours (oneDNN declines some shapes and types, and then they land here). */
    int64_t macs = node_macs(n, resolved, in_t, outs);
    if (macs > ENG_REF_MAX_MACS)
        return rouse_err_set(eb, ROUSE_ETOOBIG,
                             "node '%s' (%s): %.3g multiply-accumulates per run on the reference "
                             "kernels, more than the %.3g they are allowed",
                             n->name, eng_op_name(n->op), (double)macs, (double)ENG_REF_MAX_MACS);
    int *in_pv = rouse_arena_alloc(&p->mem, sizeof(int) * (size_t)(n->n_in + 1), 8);
    int *out_pv = rouse_arena_alloc(&p->mem, sizeof(int) * (size_t)(n->n_out + 1), 8);
    if (!in_pv || !out_pv) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    for (int k = 0; k < n->n_in; k++) {
        in_pv[k] = -1;
        if (in[k] < 0) continue;
        if ((rc = plan_pv_plain(p, in[k], eb)) < 0) return rc;
        if ((rc = pv_aligned(p, rc, eb)) < 0) return rc;
        in_pv[k] = rc;
    }
    for (int k = 0; k < n->n_out; k++) {
        out_pv[k] = -1;
        if (n->out[k] < 0) continue;
        if ((rc = plan_new_pv(p, &outs[k], &out_pv[k])) < 0)
            return rouse_err_set(eb, rc, "out of memory");
        plan_bind_value(p, n->out[k], out_pv[k]);
    }
    if ((rc = plan_add_step(p, &s)) < 0) return rouse_err_set(eb, rc, "out of memory");
    s->kind = STEP_REF;
    s->node = n;
    s->resolved = *resolved;
    s->n_in = n->n_in;
    s->n_out = n->n_out;
    s->in_pv = in_pv;
    s->out_pv = out_pv;
    p->stats.n_ref++;
    p->stats.ref_macs += (uint64_t)macs;
    return 0;
}

/* The data of pv id when preparing knows it: constants, values folded
 * before, graph inputs whose values key the plan. NULL otherwise: shape
 * inference must not see values the plan is not keyed by. */
static void *known_data(const eng_plan *p, int id, const eng_tensor *inputs)
{
    const exec_pv *v = &p->pvs[id];
    if (v->storage >= 0) return NULL;
    if (v->input_index >= 0)
        return p->input_known[v->input_index] ? inputs[v->input_index].data : NULL;
    return v->t.data;
}

/* Evaluates n now when all it reads is known and its outputs are small
 * (ENG_PREPARE_FOLD_MAX_BYTES): its outputs become constants of the plan and
 * no step runs it. Returns 1 when folded, 0 when n must be built as a step,
 * negative on error (shape errors are left to build_node to report). */
static int fold_node(eng_plan *p, const eng_node *n, const eng_tensor *inputs, rouse_errbuf *eb)
{
    eng_tensor in_t[64], out_t[8];
    const eng_tensor *in_p[64];
    eng_tensor *out_p[8];
    if (n->n_in > 64 || n->n_out > 8 || n->n_in == 0) return 0;
    bool shape_only = reads_shape_only(n);
    for (int k = 0; k < n->n_in; k++) {
        in_p[k] = NULL;
        if (n->in[k] < 0) continue;
        int pv = p->val_pv[n->in[k]];
        if (pv < 0) return 0;
        in_t[k] = p->pvs[pv].t;
        in_t[k].data = known_data(p, pv, inputs);
        if (!in_t[k].data && !shape_only) return 0;
        if (in_t[k].data && p->pvs[pv].input_index < 0) {
            int rc = pv_aligned(p, pv, eb); /* reference kernels read typed elements */
            if (rc < 0) return rc;
            in_t[k].data = p->pvs[pv].t.data;
        }
        in_p[k] = &in_t[k];
    }
    memset(out_t, 0, sizeof(out_t));
    eng_attrs resolved;
    rouse_errbuf ignored;
    if (eng_infer_node(n, in_p, out_t, &resolved, &ignored) < 0) return 0;
    if (node_macs(n, &resolved, in_p, out_t) > ENG_PREPARE_FOLD_MAX_MACS) return 0;
    int64_t total = 0;
    for (int k = 0; k < n->n_out; k++) {
        out_p[k] = NULL;
        if (n->out[k] < 0) continue;
        int64_t nb = eng_tensor_nbytes(&out_t[k]);
        if (nb < 0 || nb > ENG_PREPARE_FOLD_MAX_BYTES - total) return 0;
        total += nb;
    }
    for (int k = 0; k < n->n_out; k++) {
        if (n->out[k] < 0) continue;
        size_t nb = (size_t)eng_tensor_nbytes(&out_t[k]);
        void *buf = aligned_alloc(ALIGN, (nb + ALIGN - 1) / ALIGN * ALIGN + ALIGN);
        if (!buf || plan_own(p, buf) < 0) {
            free(buf);
            return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        }
        out_t[k].data = buf;
        out_p[k] = &out_t[k];
    }
    int rc = eng_ref_run_node(n, &resolved, in_p, out_p, eb);
    if (rc < 0) return rc;
    for (int k = 0; k < n->n_out; k++) {
        if (n->out[k] < 0) continue;
        int id;
        if ((rc = plan_new_pv(p, &out_t[k], &id)) < 0)
            return rouse_err_set(eb, rc, "out of memory");
        p->n_st--; /* a constant of the plan: no arena storage */
        p->pvs[id].storage = -1;
        p->pvs[id].t.data = out_t[k].data;
        plan_bind_value(p, n->out[k], id);
    }
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] >= 0) p->uses_left[n->in[k]]--;
    p->stats.n_folded++;
    return 1;
}

static int build_node(eng_plan *p, const eng_node *n, const eng_tensor *inputs, rouse_errbuf *eb)
{
    int in[64];
    eng_tensor in_t[64], out_t[8];
    const eng_tensor *in_p[64];
    if (n->n_in > 64 || n->n_out > 8)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "node '%s' (%s): too many inputs/outputs",
                             n->name, eng_op_name(n->op));
    for (int k = 0; k < n->n_in; k++) {
        in[k] = n->in[k] >= 0 ? p->val_pv[n->in[k]] : -1;
        in_p[k] = NULL;
        if (in[k] < 0) continue;
        in_t[k] = p->pvs[in[k]].t;
        in_t[k].data = known_data(p, in[k], inputs);
        in_p[k] = &in_t[k];
    }
    memset(out_t, 0, sizeof(out_t));
    eng_attrs resolved;
    int rc = eng_infer_node(n, in_p, out_t, &resolved, eb);
    if (rc < 0) return rc;
    for (int k = 0; k < n->n_out; k++) {
        if (n->out[k] < 0) continue;
        int64_t nb = eng_tensor_nbytes(&out_t[k]);
        if (nb < 0)
            return rouse_err_set(eb, ROUSE_ERANGE, "node '%s' (%s): output %d is too large",
                                 n->name, eng_op_name(n->op), k);
        /* Refused before any kernel is made for it: oneDNN's primitive
         * creation itself touches memory in proportion to absurd extents. */
        if (p->limit_bytes && (uint64_t)nb > p->limit_bytes)
            return rouse_err_set(eb, ROUSE_ETOOBIG,
                                 "node '%s' (%s): output %d needs %.0f MiB of activation memory "
                                 "for these input shapes, more than the memory limit of %.0f MiB",
                                 n->name, eng_op_name(n->op), k, (double)nb / (1 << 20),
                                 (double)p->limit_bytes / (1 << 20));
        if ((uint64_t)nb > p->phys_bytes)
            return rouse_err_set(eb, ROUSE_ETOOBIG,
                                 "node '%s' (%s): output %d needs %.1f GiB of activation memory "
                                 "for these input shapes, more than this machine has",
                                 n->name, eng_op_name(n->op), k, (double)nb / (1 << 30));
    }

    /* Inputs and constants are not viewed: outputs must live in the arena. */
    if (in[0] >= 0 && is_view_op(n) && p->pvs[in[0]].storage >= 0) {
        if ((rc = plan_pv_plain(p, in[0], eb)) >= 0) rc = build_view(p, n, rc, &out_t[0]);
    } else if (transpose_viewable(p, n, &resolved, in[0])) {
        rc = build_transpose_view(p, n, &resolved, in[0], &out_t[0]);
    } else {
        int out_pv[8];
        rc = p->reference ? 0 : exec_dnnl_build(p, n, &resolved, in, out_t, out_pv, eb);
        if (rc == 0)
            rc = build_ref(p, n, &resolved, in, in_p, out_t, eb);
        else if (rc > 0)
            rc = 0;
    }
    if (rc < 0) return rc;
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] >= 0) p->uses_left[n->in[k]]--;
    return 0;
}

/* A u8 pattern (exec_dnnl_qfuse.c) as one kernel, or else its nodes one by
 * one: the DequantizeLinear nodes skipped for it and not built since, the
 * centre, its Relu, its QuantizeLinear. */
static int build_qpat(eng_plan *p, const exec_qpat *qp, const eng_tensor *inputs, rouse_errbuf *eb)
{
    int rc = exec_qfuse_build(p, qp, eb);
    if (rc != 0) return rc < 0 ? rc : 0;
    const eng_graph *g = p->g;
    int order[5] = {qp->dq[0], qp->dq[1], qp->center, qp->relu, qp->q};
    for (int k = 0; k < 5; k++) {
        int i = order[k];
        if (i < 0) continue;
        const eng_node *n = &g->nodes[i];
        if (k < 2 && (!p->skip[i] || p->val_pv[n->out[0]] >= 0)) continue;
        if ((rc = fold_node(p, n, inputs, eb)) < 0) return rc;
        if (rc == 0 && (rc = build_node(p, n, inputs, eb)) < 0) return rc;
    }
    return 0;
}

/* --- memory planning ---------------------------------------------------------------- */

static void mark_read(eng_plan *p, int pv, int step)
{
    if (pv < 0) return;
    int s = p->pvs[pv].storage;
    if (s < 0) return;
    if (p->st[s].last < step) p->st[s].last = step;
    if (p->st[s].first < 0) p->st[s].first = step;
}

static void mark_write(eng_plan *p, int pv, int step)
{
    if (pv < 0) return;
    int s = p->pvs[pv].storage;
    if (s < 0) return;
    if (p->st[s].first < 0 || p->st[s].first > step) p->st[s].first = step;
    if (p->st[s].last < step) p->st[s].last = step;
}

static int cmp_size_desc(const void *a, const void *b, void *ctx)
{
    const exec_storage *st = ctx;
    size_t sa = st[*(const int *)a].size, sb = st[*(const int *)b].size;
    return sa < sb ? 1 : sa > sb ? -1 : 0;
}

/* Activation memory: 2 MiB aligned and advised as transparent huge pages.
 * The first run after a fork (a new instance) zero-fills it, and every byte
 * of it is used; with 4 KiB pages that was ~1,000 of the ~2,200 page faults
 * of resnet18's first inference. A small arena keeps 4 KiB pages: one huge
 * page zero-fills 2 MiB, about what 70 small-page faults cost here (mlp's
 * 1 KiB arena: first run 0.34 ms advised, 0.17 ms not; bert_tiny's 96 KiB:
 * 0.87 and 0.64 ms), while squeezenet1_1's 3.7 MiB runs 0.7 ms faster with
 * its tail in a huge page too. NULL when out of memory. */
static void *big_alloc(size_t size)
{
    size_t len = (size + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
    return map_2m_aligned(len, size >= CHUNK_ALIGN / 4 ? len : 0);
}

static void big_free(void *p, size_t size)
{
    if (p) munmap(p, (size + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN);
}

/* Greedy best-fit by decreasing size: each storage goes at the lowest offset
 * that does not overlap a placed storage alive at the same time. */
static int plan_memory(eng_plan *p, rouse_errbuf *eb)
{
    for (int i = 0; i < p->n_pvs; i++) {
        exec_pv *v = &p->pvs[i];
        if (v->storage < 0) continue;
        size_t sz =
            v->has_md ? dnnl_memory_desc_get_size(&v->md) : (size_t)eng_tensor_nbytes(&v->t);
        sz = (sz + ALIGN - 1) / ALIGN * ALIGN;
        if (sz == 0) sz = ALIGN;
        if (sz > p->st[v->storage].size) p->st[v->storage].size = sz;
    }
    for (int s = 0; s < p->n_steps; s++) {
        exec_step *st = &p->steps[s];
        if (st->kind == STEP_DNNL) {
            for (int k = 0; st->reads && st->reads[k] >= 0; k++)
                mark_read(p, st->reads[k], s);
            mark_write(p, st->write, s);
        } else {
            for (int k = 0; k < st->n_in; k++)
                mark_read(p, st->in_pv[k], s);
            for (int k = 0; k < st->n_out; k++)
                mark_write(p, st->out_pv[k], s);
        }
    }
    for (int i = 0; i < p->g->n_outputs; i++) {
        int pv = p->out_pv[i];
        if (pv >= 0 && p->pvs[pv].storage >= 0) p->st[p->pvs[pv].storage].last = p->n_steps;
    }
    int *order = malloc(sizeof(int) * (size_t)(p->n_st + 1));
    int *placed = malloc(sizeof(int) * (size_t)(p->n_st + 1));
    if (!order || !placed) {
        free(order);
        free(placed);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory planning memory");
    }
    int n = 0;
    for (int i = 0; i < p->n_st; i++)
        if (p->st[i].first >= 0 && p->st[i].n_pvs > 0) order[n++] = i;
    qsort_r(order, (size_t)n, sizeof(int), cmp_size_desc, p->st);
    size_t total = 0;
    int n_placed = 0;
    for (int i = 0; i < n; i++) {
        exec_storage *s = &p->st[order[i]];
        size_t off = 0;
        bool moved = true;
        /* Repeat until the candidate offset clears every conflicting block. */
        while (moved) {
            moved = false;
            for (int j = 0; j < n_placed; j++) {
                const exec_storage *o = &p->st[placed[j]];
                if (o->last < s->first || s->last < o->first) continue;
                if (off < o->offset + o->size && o->offset < off + s->size) {
                    off = o->offset + o->size;
                    moved = true;
                }
            }
        }
        s->offset = off;
        placed[n_placed++] = order[i];
        if (off + s->size > total) total = off + s->size;
    }
    free(order);
    free(placed);
    p->arena_size = total;
    p->stats.arena_bytes = total;
    /* Shapes come from callers and model files: refuse what cannot fit rather
     * than let the allocator (or the OOM killer) decide. */
    if (p->limit_bytes && total > p->limit_bytes)
        return rouse_err_set(eb, ROUSE_ETOOBIG,
                             "the model needs %.0f MiB of activation memory for these input "
                             "shapes, more than the memory limit of %.0f MiB",
                             (double)total / (1 << 20), (double)p->limit_bytes / (1 << 20));
    if (total > p->phys_bytes)
        return rouse_err_set(eb, ROUSE_ETOOBIG,
                             "the model needs %.1f GiB of activation memory for these input "
                             "shapes, more than this machine has",
                             (double)total / (1 << 30));
    if (total) {
        p->arena = big_alloc(total);
        if (!p->arena)
            return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory (%zu-byte arena)", total);
    }
    return 0;
}

/* Binds data pointers and oneDNN memories once the arena exists. */
static int bind(eng_plan *p, rouse_errbuf *eb)
{
    for (int i = 0; i < p->n_pvs; i++) {
        exec_pv *v = &p->pvs[i];
        if (v->storage >= 0) v->t.data = (char *)p->arena + p->st[v->storage].offset;
    }
    for (int s = 0; s < p->n_steps; s++) {
        exec_step *st = &p->steps[s];
        if (st->kind != STEP_DNNL) continue;
        for (int k = 0; k < st->n_args; k++) {
            int pv = st->arg_pv[k];
            if (pv == ARG_FIXED) continue;
            exec_pv *v = &p->pvs[pv];
            if (!v->mem &&
                dnnl_memory_create(&v->mem, &v->md, p->ctx->engine, v->t.data) != dnnl_success)
                return rouse_err_set(eb, ROUSE_EINTERNAL, "oneDNN: cannot create a memory");
            st->args[k].memory = v->mem;
        }
    }
    return 0;
}

bool exec_conv_winograd_eligible(int rank, const eng_conv_attrs *a, int64_t c_in, int64_t c_out)
{
    return rank == 4 && a->n_spatial == 2 && a->group == 1 && a->kernel[0] == 3 &&
           a->kernel[1] == 3 && a->stride[0] == 1 && a->stride[1] == 1 && a->dilation[0] == 1 &&
           a->dilation[1] == 1 && c_in % 16 == 0 && c_out % 16 == 0;
}

/* Layout policy, measured on resnet18, squeezenet1_1 and mobilenet_v2:
 * oneDNN's Winograd kernels want blocked (aBcd16b) activations. When nearly
 * all convolution work can run as Winograd (resnet18: 83% of the FLOPs),
 * keeping every activation blocked is fastest (1.5x); when only part can
 * (squeezenet1_1: 54%), the channels-last layouts oneDNN picks by itself are
 * (1.3x), with Winograd used where it fits behind a reorder. A dry run of
 * shape inference gives the FLOPs, and *largest the bytes of the largest
 * value a node computes (SIZE_MAX when the dry run stops early). */
static bool plan_prefers_blocked(const eng_graph *g, const eng_tensor *inputs, size_t *largest)
{
    eng_tensor *vals = calloc((size_t)g->n_values + 1, sizeof(*vals));
    bool *known = calloc((size_t)g->n_values + 1, sizeof(bool));
    double total = 0, wino = 0;
    *largest = SIZE_MAX;
    size_t big = 0;
    if (!vals || !known) goto out;
    for (int i = 0; i < g->n_values; i++) {
        const eng_value *v = &g->values[i];
        if (!v->const_data) continue;
        vals[i] = (eng_tensor){.dtype = v->dtype, .rank = v->rank, .data = (void *)v->const_data};
        memcpy(vals[i].shape, v->shape, sizeof(v->shape));
        known[i] = true;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        vals[g->inputs[i]] = inputs[i];
        known[g->inputs[i]] = true;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const eng_node *n = &g->nodes[i];
        const eng_tensor *in[64];
        eng_tensor out[8];
        eng_attrs res;
        if (n->dead || n->n_in > 64 || n->n_out > 8) continue;
        bool ok = true;
        for (int k = 0; k < n->n_in; k++) {
            in[k] = n->in[k] >= 0 ? &vals[n->in[k]] : NULL;
            if (n->in[k] >= 0 && !known[n->in[k]]) ok = false;
        }
        memset(out, 0, sizeof(out));
        if (!ok || eng_infer_node(n, in, out, &res, NULL) < 0) { /* build reports it */
            big = SIZE_MAX;
            break;
        }
        for (int k = 0; k < n->n_out; k++) {
            if (n->out[k] < 0) continue;
            vals[n->out[k]] = out[k];
            vals[n->out[k]].data = NULL;
            known[n->out[k]] = true;
            int64_t nb = eng_tensor_nbytes(&out[k]);
            if (nb > 0 && (size_t)nb > big) big = (size_t)nb;
        }
        if (n->op != ENG_OP_CONV || in[0]->rank < 3) continue;
        const eng_conv_attrs *a = &res.conv;
        double flops = (double)eng_tensor_numel(&out[0]) * (double)(in[0]->shape[1] / a->group);
        for (int k = 0; k < a->n_spatial; k++)
            flops *= (double)a->kernel[k];
        total += flops;
        if (exec_conv_winograd_eligible(in[0]->rank, a, in[0]->shape[1], out[0].shape[1]))
            wino += flops;
    }
    *largest = big;
out:
    free(vals);
    free(known);
    return total > 0 && wino >= 0.75 * total;
}

/* --- create / run / destroy ------------------------------------------------------------ */

int eng_plan_create(const eng_graph *g, eng_dnnl_ctx *ctx, const eng_tensor *inputs, bool reference,
                    const eng_packed_set *packed, eng_plan **out, rouse_errbuf *eb)
{
    return eng_plan_create_limited(g, ctx, inputs, reference, packed, 0, out, eb);
}

int eng_plan_create_limited(const eng_graph *g, eng_dnnl_ctx *ctx, const eng_tensor *inputs,
                            bool reference, const eng_packed_set *packed, uint64_t max_bytes,
                            eng_plan **out, rouse_errbuf *eb)
{
    eng_plan *p = calloc(1, sizeof(*p));
    if (!p) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    p->g = g;
    p->ctx = ctx;
    p->reference = reference;
    p->phys_bytes = phys_bytes(); /* not once per node: a system call each time */
    p->limit_bytes = max_bytes;
    p->packed = packed;
    p->blocked_convs = !reference && plan_prefers_blocked(g, inputs, &p->largest_value);
    rouse_arena_init(&p->mem, 0);
    int rc;
    p->val_pv = malloc(sizeof(int) * (size_t)(g->n_values + 1));
    p->uses_left = calloc((size_t)g->n_values + 1, sizeof(int));
    p->skip = calloc((size_t)g->n_nodes + 1, sizeof(bool));
    p->out_pv = malloc(sizeof(int) * (size_t)(g->n_outputs + 1));
    p->outputs = calloc((size_t)g->n_outputs + 1, sizeof(eng_tensor));
    p->input_known = calloc((size_t)g->n_inputs + 1, sizeof(bool));
    bool *need = calloc((size_t)g->n_values + 1, sizeof(bool));
    if (!p->val_pv || !p->uses_left || !p->skip || !p->out_pv || !p->outputs || !p->input_known ||
        !need) {
        free(need);
        goto out_nomem;
    }
    eng_graph_value_needs(g, need);
    for (int i = 0; i < g->n_inputs; i++)
        p->input_known[i] = need[g->inputs[i]] && inputs[i].data;
    free(need);
    for (int i = 0; i < g->n_values; i++)
        p->val_pv[i] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].dead) continue;
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] >= 0) p->uses_left[g->nodes[i].in[k]]++;
    }
    for (int i = 0; i < g->n_outputs; i++)
        p->uses_left[g->outputs[i]]++;

    /* Constants and inputs. */
    for (int i = 0; i < g->n_values; i++) {
        const eng_value *v = &g->values[i];
        if (!v->const_data) continue;
        eng_tensor t = {.dtype = v->dtype, .rank = v->rank};
        memcpy(t.shape, v->shape, sizeof(t.shape));
        int id;
        if ((rc = plan_new_pv(p, &t, &id)) < 0) goto out_nomem;
        p->n_st--;
        p->pvs[id].storage = -1;
        p->pvs[id].t.data = (void *)v->const_data;
        plan_bind_value(p, i, id);
    }
    for (int i = 0; i < g->n_inputs; i++) {
        int id;
        eng_tensor t = inputs[i];
        if (eng_tensor_nbytes(&t) < 0) {
            char sh[128];
            rc = rouse_err_set(eb, ROUSE_ERANGE, "input '%s' has an impossible size %s",
                               g->values[g->inputs[i]].name,
                               eng_shape_str(t.rank, t.shape, sh, sizeof(sh)));
            goto out_fail;
        }
        t.data = NULL;
        if ((rc = plan_new_pv(p, &t, &id)) < 0) goto out_nomem;
        p->n_st--;
        p->pvs[id].storage = -1;
        p->pvs[id].input_index = i;
        plan_bind_value(p, g->inputs[i], id);
    }

    if (!reference && (rc = exec_qfuse_find(p)) < 0) goto out_nomem;
    for (int i = 0; i < g->n_nodes; i++) {
        const eng_node *n = &g->nodes[i];
        if (n->dead || p->skip[i]) continue;
        if (p->qpat_of && p->qpat_of[i] >= 0) {
            if ((rc = build_qpat(p, &p->qpats[p->qpat_of[i]], inputs, eb)) < 0) goto out_fail;
            continue;
        }
        if ((rc = fold_node(p, n, inputs, eb)) < 0) goto out_fail;
        if (rc == 0 && (rc = build_node(p, n, inputs, eb)) < 0) goto out_fail;
    }

    /* Outputs: plain, in the arena. */
    for (int i = 0; i < g->n_outputs; i++) {
        int pv = p->val_pv[g->outputs[i]];
        if (pv < 0) {
            rc = rouse_err_set(eb, ROUSE_EINTERNAL, "output '%s' was not computed",
                               g->values[g->outputs[i]].name);
            goto out_fail;
        }
        if ((rc = plan_pv_plain(p, pv, eb)) < 0) goto out_fail;
        pv = rc;
        if (p->pvs[pv].storage < 0) {
            /* An input or constant returned as-is: copy, so that the output
             * stays valid after the caller frees its input. */
            exec_step *s;
            int id;
            eng_tensor shape = p->pvs[pv].t; /* plan_new_pv may move p->pvs */
            if ((rc = plan_new_pv(p, &shape, &id)) < 0 || (rc = plan_add_step(p, &s)) < 0)
                goto out_nomem;
            s->kind = STEP_COPY;
            s->n_in = s->n_out = 1;
            s->in_pv = rouse_arena_alloc(&p->mem, sizeof(int), 8);
            s->out_pv = rouse_arena_alloc(&p->mem, sizeof(int), 8);
            if (!s->in_pv || !s->out_pv) goto out_nomem;
            s->in_pv[0] = pv;
            s->out_pv[0] = id;
            pv = id;
        }
        p->out_pv[i] = pv;
    }

    if ((rc = plan_memory(p, eb)) < 0) goto out_fail;
    if ((rc = bind(p, eb)) < 0) goto out_fail;
    p->stats.n_steps = p->n_steps;
    for (int i = 0; i < g->n_outputs; i++)
        p->outputs[i] = p->pvs[p->out_pv[i]].t;
    free(p->uses_left);
    p->uses_left = NULL;
    free(p->skip);
    p->skip = NULL;
    free(p->qpats);
    p->qpats = NULL;
    free(p->qpat_of);
    p->qpat_of = NULL;
    free(p->input_known);
    p->input_known = NULL;
    *out = p;
    return 0;

out_nomem:
    rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory preparing the model");
out_fail:
    eng_plan_destroy(p);
    return rc;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int run_step(eng_plan *p, exec_step *st, rouse_errbuf *eb)
{
    if (st->kind == STEP_DNNL) {
        if (dnnl_primitive_execute(st->prim, p->ctx->stream, st->n_args, st->args) != dnnl_success)
            return rouse_err_set(eb, ROUSE_EINTERNAL, "node '%s': oneDNN execution failed",
                                 st->node ? st->node->name : "(reorder)");
        return 0;
    }
    if (st->kind == STEP_GEMV) return exec_gemv_run(p, st, eb);
    if (st->kind == STEP_COPY) {
        const exec_pv *src = &p->pvs[st->in_pv[0]];
        memcpy(p->pvs[st->out_pv[0]].t.data, src->t.data, (size_t)eng_tensor_nbytes(&src->t));
        return 0;
    }
    eng_tensor in_t[64], out_t[8];
    const eng_tensor *in_p[64];
    eng_tensor *out_p[8];
    for (int k = 0; k < st->n_in; k++) {
        in_p[k] = NULL;
        if (st->in_pv[k] < 0) continue;
        in_t[k] = p->pvs[st->in_pv[k]].t;
        in_p[k] = &in_t[k];
    }
    for (int k = 0; k < st->n_out; k++) {
        out_p[k] = NULL;
        if (st->out_pv[k] < 0) continue;
        out_t[k] = p->pvs[st->out_pv[k]].t;
        out_p[k] = &out_t[k];
    }
    return eng_ref_run_node(st->node, &st->resolved, in_p, out_p, eb);
}

int eng_plan_run(eng_plan *p, const eng_tensor *inputs, rouse_errbuf *eb)
{
    /* Bind the caller's input buffers. */
    for (int i = 0; i < p->n_pvs; i++) {
        exec_pv *v = &p->pvs[i];
        if (v->input_index < 0) continue;
        v->t.data = inputs[v->input_index].data;
        if (v->mem) dnnl_memory_set_data_handle(v->mem, v->t.data);
    }
    if (p->prof_ns) {
        /* The CPU stream executes each primitive before returning, so a
         * step's wall time is its kernel's. */
        for (int s = 0; s < p->n_steps; s++) {
            uint64_t t0 = now_ns();
            int rc = run_step(p, &p->steps[s], eb);
            if (rc < 0) return rc;
            uint64_t dt = now_ns() - t0;
            p->prof_ns[s] += dt;
            if (!p->prof_runs || dt < p->prof_min[s]) p->prof_min[s] = dt;
        }
        p->prof_runs++;
    } else {
        for (int s = 0; s < p->n_steps; s++) {
            int rc = run_step(p, &p->steps[s], eb);
            if (rc < 0) return rc;
        }
    }
    dnnl_stream_wait(p->ctx->stream);
    return 0;
}

int eng_plan_set_profiling(eng_plan *p, bool on)
{
    if (!on) {
        free(p->prof_ns);
        p->prof_ns = p->prof_min = NULL;
        p->prof_runs = 0;
        return 0;
    }
    if (p->prof_ns) return 0;
    size_t n = (size_t)p->n_steps + 1;
    p->prof_ns = calloc(2 * n, sizeof(uint64_t)); /* totals, then minimums */
    if (!p->prof_ns) return ROUSE_ENOMEM;
    p->prof_min = p->prof_ns + n;
    return 0;
}

int eng_plan_profile_count(const eng_plan *p)
{
    return p->prof_ns ? p->n_steps : 0;
}

void eng_plan_profile_step(const eng_plan *p, int i, eng_step_profile *out)
{
    const exec_step *st = &p->steps[i];
    memset(out, 0, sizeof(*out));
    out->ns = p->prof_ns ? p->prof_ns[i] : 0;
    out->min_ns = p->prof_ns ? p->prof_min[i] : 0;
    out->runs = p->prof_runs;
    if (st->kind == STEP_COPY) {
        out->node = st->node ? st->node->name : "(copy)";
        out->op = st->node ? eng_op_name(st->node->op) : "Copy";
        out->kernel = "copy";
        return;
    }
    if (st->kind == STEP_GEMV)
        out->kernel = "gemv";
    else
        out->kernel = st->kind == STEP_DNNL ? "onednn" : "reference";
    if (!st->node) {
        out->node = "(reorder)";
        out->op = "Reorder";
        return;
    }
    out->node = st->node->name;
    out->op = eng_op_name(st->node->op);
    out->fused = st->node->n_post;
}

const eng_tensor *eng_plan_output(const eng_plan *p, int i)
{
    return &p->outputs[i];
}

void eng_plan_get_stats(const eng_plan *p, eng_plan_stats *st)
{
    *st = p->stats;
}

void eng_plan_get_made(const eng_plan *p, eng_packed_set *out)
{
    out->n = p->n_made;
    out->items = p->made;
}

size_t eng_packed_md_size(void)
{
    return sizeof(dnnl_memory_desc_t);
}

void eng_plan_destroy(eng_plan *p)
{
    if (!p) return;
    for (int s = 0; s < p->n_steps; s++)
        if (p->steps[s].prim) dnnl_primitive_destroy(p->steps[s].prim);
    for (int i = 0; i < p->n_pvs; i++)
        if (p->pvs[i].mem) dnnl_memory_destroy(p->pvs[i].mem);
    for (int i = 0; i < p->n_fixed; i++)
        dnnl_memory_destroy(p->fixed_mems[i]);
    for (int i = 0; i < p->n_owned; i++)
        free(p->owned[i]);
    while (p->chunks) {
        struct weight_chunk *c = p->chunks;
        p->chunks = c->next;
        munmap(c->base, c->size);
        free(c);
    }
    big_free(p->arena, p->arena_size);
    free(p->pvs);
    free(p->st);
    free(p->steps);
    free(p->val_pv);
    free(p->uses_left);
    free(p->skip);
    free(p->qpats);
    free(p->qpat_of);
    free(p->input_known);
    free(p->out_pv);
    free(p->outputs);
    free(p->owned);
    free(p->fixed_mems);
    free(p->made);
    free(p->made_md);
    free(p->prof_ns);
    rouse_arena_fini(&p->mem);
    free(p);
}
