/*
 * Reads compiled plan files. Nothing in a plan is trusted: the header must
 * match this build and machine, the metadata must match the CRC-32C in the
 * header, and every count, id, offset, size, rank and attribute is checked
 * before use, so a truncated or hostile plan yields an error, never a crash.
 * Constant data is referenced in place and never read here.
 */
#include "engine/plan_file.h"

#include <dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "engine/op.h"
#include "engine/plan_format.h"

typedef struct cursor {
    const uint8_t *p, *end;
    rouse_errbuf *eb;
    int rc;
} cursor;

static bool need(cursor *c, size_t n, const char *what)
{
    if (c->rc) return false;
    if ((size_t)(c->end - c->p) < n) {
        c->rc = rouse_err_set(c->eb, ROUSE_EFORMAT, "plan metadata truncated in %s", what);
        return false;
    }
    return true;
}

static uint32_t get_u32(cursor *c, const char *what)
{
    uint32_t v = 0;
    if (need(c, 4, what)) memcpy(&v, c->p, 4), c->p += 4;
    return v;
}

static int32_t get_i32(cursor *c, const char *what)
{
    int32_t v = 0;
    if (need(c, 4, what)) memcpy(&v, c->p, 4), c->p += 4;
    return v;
}

static uint64_t get_u64(cursor *c, const char *what)
{
    uint64_t v = 0;
    if (need(c, 8, what)) memcpy(&v, c->p, 8), c->p += 8;
    return v;
}

static void get_bytes(cursor *c, void *dst, size_t n, const char *what)
{
    if (need(c, n, what)) memcpy(dst, c->p, n), c->p += n;
}

/* A NUL-terminated string stored in place. */
static const char *get_str(cursor *c, const char *what)
{
    uint32_t n = get_u32(c, what);
    if (!need(c, (size_t)n + 1, what)) return "";
    const char *s = (const char *)c->p;
    if (s[n] != '\0' || memchr(s, '\0', n)) {
        c->rc = rouse_err_set(c->eb, ROUSE_EFORMAT, "plan metadata: bad string in %s", what);
        return "";
    }
    c->p += n + 1;
    return s;
}

static int fail(cursor *c, const char *fmt, const char *a, long long b)
{
    if (!c->rc) c->rc = rouse_err_set(c->eb, ROUSE_EFORMAT, fmt, a, b);
    return c->rc;
}

static int check_header(const plan_header *h, size_t len, rouse_errbuf *eb)
{
    if (memcmp(h->magic, PLAN_MAGIC, 8) != 0)
        return rouse_err_set(eb, ROUSE_EFORMAT, "not a rouse plan (bad magic)");
    if (h->format_version != PLAN_FORMAT_VERSION || h->header_size != PLAN_HEADER_SIZE ||
        h->attrs_size != sizeof(eng_attrs) || h->postop_size != sizeof(eng_postop) ||
        h->md_size != sizeof(dnnl_memory_desc_t))
        return rouse_err_set(eb, ROUSE_EMISMATCH,
                             "plan format %u was written by another build (this one reads %d); "
                             "recompile it",
                             h->format_version, PLAN_FORMAT_VERSION);
    const dnnl_version_t *v = dnnl_version();
    if (h->dnnl_major != (uint32_t)v->major || h->dnnl_minor != (uint32_t)v->minor ||
        h->dnnl_patch != (uint32_t)v->patch)
        return rouse_err_set(
            eb, ROUSE_EMISMATCH, "plan made for oneDNN %u.%u.%u, this is %d.%d.%d; recompile it",
            h->dnnl_major, h->dnnl_minor, h->dnnl_patch, v->major, v->minor, v->patch);
    if (h->cpu_isa != (uint32_t)dnnl_get_effective_cpu_isa())
        return rouse_err_set(eb, ROUSE_EMISMATCH,
                             "plan made for another CPU instruction set (0x%x, this machine "
                             "has 0x%x); recompile it",
                             h->cpu_isa, (unsigned)dnnl_get_effective_cpu_isa());
    if (h->file_size != len)
        return rouse_err_set(eb, ROUSE_EFORMAT, "plan is %zu bytes, its header says %llu", len,
                             (unsigned long long)h->file_size);
    if (h->meta_offset < PLAN_HEADER_SIZE || h->meta_offset > len ||
        h->meta_size > len - h->meta_offset || h->data_offset > len ||
        h->data_size > len - h->data_offset || h->data_offset % PLAN_PAGE_ALIGN ||
        h->data_offset < h->meta_offset + h->meta_size)
        return rouse_err_set(eb, ROUSE_EFORMAT, "plan sections lie outside the file");
    return 0;
}

static int read_values(cursor *c, eng_graph *g, const uint8_t *data, uint64_t data_size)
{
    for (int i = 0; i < g->n_values && !c->rc; i++) {
        eng_value *v = &g->values[i];
        memset(v, 0, sizeof(*v));
        v->producer = -1;
        v->name = get_str(c, "value name");
        v->dtype = get_i32(c, "value type");
        v->rank = get_i32(c, "value rank");
        if (c->rc) break;
        if (v->rank < -1 || v->rank > ENG_MAX_RANK)
            return fail(c, "value '%s': rank %lld", v->name, v->rank);
        for (int k = 0; k < v->rank; k++) {
            v->shape[k] = (int64_t)get_u64(c, "value shape");
            if (v->shape[k] < -1) return fail(c, "value '%s': dim %lld", v->name, v->shape[k]);
        }
        uint8_t flags = 0;
        get_bytes(c, &flags, 1, "value flags");
        v->is_input = flags & PLAN_VALUE_INPUT;
        v->is_output = flags & PLAN_VALUE_OUTPUT;
        for (int k = 0; (v->is_input || v->is_output) && k < v->rank && !c->rc; k++) {
            const char *dn = get_str(c, "dim name");
            v->dim_names[k] = dn[0] ? dn : NULL;
        }
        if (!(flags & PLAN_VALUE_CONST)) continue;
        uint64_t off = get_u64(c, "constant offset"), size = get_u64(c, "constant size");
        size_t es = eng_dtype_size(v->dtype);
        int64_t n = eng_shape_numel(v->rank, v->shape);
        if (c->rc) break;
        if (!es || n < 0 || v->rank < 0 || (uint64_t)n > UINT64_MAX / es ||
            (uint64_t)n * es != size)
            return fail(c, "constant '%s': size %lld does not match its shape", v->name,
                        (long long)size);
        if (off > data_size || size > data_size - off || off % PLAN_BLOCK_ALIGN)
            return fail(c, "constant '%s': data at %lld lies outside the data section", v->name,
                        (long long)off);
        v->const_data = data + off;
    }
    return c->rc;
}

static int read_nodes(cursor *c, eng_graph *g, int n_nodes)
{
    for (int i = 0; i < n_nodes && !c->rc; i++) {
        eng_node *n = &g->nodes[i];
        memset(n, 0, sizeof(*n));
        n->name = get_str(c, "node name");
        uint32_t op = get_u32(c, "node op");
        n->opset = get_i32(c, "node opset");
        uint32_t n_in = get_u32(c, "node inputs");
        if (c->rc) break;
        if (op >= ENG_OP_COUNT || op == ENG_OP_CONSTANT || !eng_op_desc_get((eng_op)op))
            return fail(c, "node '%s': bad operator %lld", n->name, op);
        if (n_in > 4096 || !need(c, 4 * (size_t)n_in, "node inputs"))
            return fail(c, "node '%s': %lld inputs", n->name, n_in);
        n->op = (eng_op)op;
        n->n_in = (int)n_in;
        n->in = rouse_arena_alloc(&g->arena, sizeof(int) * (n_in + 1), 8);
        if (!n->in) return c->rc = rouse_err_set(c->eb, ROUSE_ENOMEM, "out of memory");
        for (uint32_t k = 0; k < n_in; k++) {
            n->in[k] = get_i32(c, "node input");
            if (n->in[k] < -1 || n->in[k] >= g->n_values)
                return fail(c, "node '%s': input id %lld", n->name, n->in[k]);
            if (n->in[k] >= 0) {
                const eng_value *v = &g->values[n->in[k]];
                /* Topological order: inputs are constants, graph inputs or earlier outputs. */
                if (!v->const_data && !v->is_input && v->producer < 0)
                    return fail(c, "node '%s': reads value %lld before it is produced", n->name,
                                n->in[k]);
            }
        }
        uint32_t n_out = get_u32(c, "node outputs");
        if (c->rc) break;
        if (n_out > 64 || !need(c, 4 * (size_t)n_out, "node outputs"))
            return fail(c, "node '%s': %lld outputs", n->name, n_out);
        n->n_out = (int)n_out;
        n->out = rouse_arena_alloc(&g->arena, sizeof(int) * (n_out + 1), 8);
        if (!n->out) return c->rc = rouse_err_set(c->eb, ROUSE_ENOMEM, "out of memory");
        for (uint32_t k = 0; k < n_out; k++) {
            n->out[k] = get_i32(c, "node output");
            if (n->out[k] < -1 || n->out[k] >= g->n_values)
                return fail(c, "node '%s': output id %lld", n->name, n->out[k]);
            if (n->out[k] < 0) continue;
            eng_value *v = &g->values[n->out[k]];
            if (v->const_data || v->is_input || v->producer >= 0)
                return fail(c, "node '%s': value %lld is produced twice", n->name, n->out[k]);
            v->producer = i;
        }
        get_bytes(c, &n->attrs, sizeof(n->attrs), "node attributes");
        uint32_t n_post = get_u32(c, "node post-ops");
        if (c->rc) break;
        if (n_post > ENG_MAX_POSTOPS)
            return fail(c, "node '%s': %lld fused operations", n->name, n_post);
        n->n_post = (int)n_post;
        get_bytes(c, n->post, sizeof(n->post[0]) * n_post, "node post-ops");
        for (int k = 0; k < n->n_post && !c->rc; k++) {
            const eng_postop *po = &n->post[k];
            bool ok = po->kind == ENG_POST_SUM
                          ? po->sum_input >= 0 && po->sum_input < n->n_in
                          : po->kind == ENG_POST_ELTWISE &&
                                (po->eltwise == ENG_OP_RELU || po->eltwise == ENG_OP_CLIP ||
                                 po->eltwise == ENG_OP_LEAKY_RELU ||
                                 po->eltwise == ENG_OP_SIGMOID || po->eltwise == ENG_OP_TANH ||
                                 po->eltwise == ENG_OP_GELU || po->eltwise == ENG_OP_HARD_SIGMOID ||
                                 po->eltwise == ENG_OP_HARD_SWISH || po->eltwise == ENG_OP_ELU ||
                                 po->eltwise == ENG_OP_SOFTPLUS || po->eltwise == ENG_OP_ABS);
            if (!ok) return fail(c, "node '%s': bad fused operation %lld", n->name, k);
        }
        /* The op's own check, the one the loader runs after parsing. */
        const eng_op_desc *d = eng_op_desc_get(n->op);
        if (!c->rc && d->check && d->check(n, c->eb) < 0) {
            c->rc = ROUSE_EFORMAT;
            rouse_err_wrap(c->eb, ROUSE_EFORMAT, "bad attributes");
            return c->rc;
        }
    }
    return c->rc;
}

static double get_f64(cursor *c, const char *what)
{
    double v = 0;
    if (need(c, 8, what)) memcpy(&v, c->p, 8), c->p += 8;
    return v;
}

/* The precision and accuracy section (plan_write.c, build_accuracy): every
 * count within what the graph holds, every figure in its range. */
static int read_accuracy(cursor *c, eng_plan_file *pf)
{
    eng_graph *g = &pf->graph;
    rouse_accuracy *a = &pf->accuracy;
    uint32_t prec = get_u32(c, "precision"), source = get_u32(c, "accuracy source");
    uint32_t n_samples = get_u32(c, "accuracy samples"), n_out = get_u32(c, "accuracy outputs");
    if (c->rc) return c->rc;
    if (prec > ENG_PRECISION_INT8) return fail(c, "bad precision %s%lld", "", prec);
    if (source > ROUSE_ACCURACY_SAMPLES || n_samples > INT32_MAX ||
        n_out > (uint32_t)g->n_outputs || (source == ROUSE_ACCURACY_NONE) != (n_samples == 0))
        return fail(c, "accuracy section: bad counts%s (%lld outputs)", "", n_out);
    g->precision = (int)prec;
    a->precision = (int)prec;
    a->source = (int)source;
    a->n_samples = (int)n_samples;
    rouse_output_accuracy *outs =
        rouse_arena_calloc(&g->arena, (size_t)n_out + 1, sizeof(*outs), 8);
    if (!outs) return c->rc = rouse_err_set(c->eb, ROUSE_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n_out && !c->rc; i++) {
        rouse_output_accuracy *o = &outs[i];
        o->name = get_str(c, "accuracy output name");
        o->top1 = get_f64(c, "accuracy top-1");
        o->max_abs = get_f64(c, "accuracy error");
        o->max_rel = get_f64(c, "accuracy error");
        if (c->rc) break;
        /* NaN fails every comparison, so it is refused too. */
        if (!(o->top1 == -1.0 || (o->top1 >= 0.0 && o->top1 <= 1.0)) || !(o->max_abs >= 0.0) ||
            !(o->max_rel >= 0.0))
            return fail(c, "accuracy of output '%s': figures out of range%.0lld", o->name, 0);
    }
    a->outputs = outs;
    a->n_outputs = (int)n_out;
    uint32_t n_kept = get_u32(c, "kept layers");
    if (c->rc) return c->rc;
    if (n_kept > (uint32_t)g->n_nodes) return fail(c, "%s%lld layers kept in fp32", "", n_kept);
    const char **kept = rouse_arena_calloc(&g->arena, (size_t)n_kept + 1, sizeof(*kept), 8);
    if (!kept) return c->rc = rouse_err_set(c->eb, ROUSE_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n_kept && !c->rc; i++)
        kept[i] = get_str(c, "kept layer");
    a->kept_fp32 = kept;
    a->n_kept_fp32 = (int)n_kept;
    if (!c->rc && c->p != c->end) return fail(c, "%s%lld bytes after the plan metadata", "",
                                             (long long)(c->end - c->p));
    return c->rc;
}

int eng_plan_file_read(const void *buf, size_t len, eng_plan_file *pf, rouse_errbuf *eb)
{
    memset(pf, 0, sizeof(*pf));
    if (len < sizeof(plan_header))
        return rouse_err_set(eb, ROUSE_EFORMAT, "plan truncated (%zu bytes)", len);
    plan_header h;
    memcpy(&h, buf, sizeof(h));
    int rc = check_header(&h, len, eb);
    if (rc < 0) return rc;
    const uint8_t *base = buf;
    if (rouse_crc32c(0, base + h.meta_offset, h.meta_size) != h.meta_crc32c)
        return rouse_err_set(eb, ROUSE_EFORMAT, "plan metadata checksum mismatch (damaged file)");
    memcpy(pf->model_sha256, h.model_sha256, 32);

    cursor c = {base + h.meta_offset, base + h.meta_offset + h.meta_size, eb, 0};
    eng_graph *g = &pf->graph;
    rouse_arena_init(&g->arena, 0);
    uint32_t n_values = get_u32(&c, "header"), n_nodes = get_u32(&c, "header");
    uint32_t n_inputs = get_u32(&c, "header"), n_outputs = get_u32(&c, "header");
    g->opset = get_i32(&c, "header");
    if (c.rc) goto out_fail;
    /* Every record takes at least a few bytes: counts beyond that are lies. */
    if (n_values > h.meta_size / 9 || n_nodes > h.meta_size / 16 || n_inputs > n_values ||
        n_outputs > n_values || n_outputs == 0) {
        c.rc = rouse_err_set(eb, ROUSE_EFORMAT, "plan metadata counts are inconsistent");
        goto out_fail;
    }
    g->values = calloc((size_t)n_values + 1, sizeof(*g->values));
    g->nodes = calloc((size_t)n_nodes + 1, sizeof(*g->nodes));
    g->inputs = rouse_arena_calloc(&g->arena, (size_t)n_inputs + 1, sizeof(int), 8);
    g->outputs = rouse_arena_calloc(&g->arena, (size_t)n_outputs + 1, sizeof(int), 8);
    if (!g->values || !g->nodes || !g->inputs || !g->outputs) {
        c.rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out_fail;
    }
    g->n_values = g->cap_values = (int)n_values;
    g->cap_nodes = (int)n_nodes + 1;
    if (read_values(&c, g, base + h.data_offset, h.data_size)) goto out_fail;
    for (uint32_t i = 0; i < n_inputs && !c.rc; i++) {
        uint32_t id = get_u32(&c, "inputs");
        if (!c.rc && (id >= n_values || !g->values[id].is_input))
            fail(&c, "graph input %s%lld is not an input", "", id);
        g->inputs[g->n_inputs++] = (int)id;
    }
    for (uint32_t i = 0; i < n_outputs && !c.rc; i++) {
        uint32_t id = get_u32(&c, "outputs");
        if (!c.rc && (id >= n_values || !g->values[id].is_output))
            fail(&c, "graph output %s%lld is not an output", "", id);
        g->outputs[g->n_outputs++] = (int)id;
    }
    if (c.rc || read_nodes(&c, g, (int)n_nodes)) goto out_fail;
    g->n_nodes = (int)n_nodes;
    for (int i = 0; i < g->n_outputs; i++) {
        const eng_value *v = &g->values[g->outputs[i]];
        if (!v->const_data && !v->is_input && v->producer < 0) {
            fail(&c, "graph output '%s' is never produced%.0lld", v->name, 0);
            goto out_fail;
        }
    }

    uint32_t n_packed = get_u32(&c, "packed weights");
    if (c.rc) goto out_fail;
    if (n_packed > (uint32_t)g->n_values) {
        fail(&c, "%s%lld packed weights", "", n_packed);
        goto out_fail;
    }
    pf->packed = rouse_arena_calloc(&g->arena, (size_t)n_packed + 1, sizeof(*pf->packed), 8);
    dnnl_memory_desc_t *mds = rouse_arena_calloc(&g->arena, (size_t)n_packed + 1, sizeof(*mds), 64);
    if (!pf->packed || !mds) {
        c.rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out_fail;
    }
    for (uint32_t i = 0; i < n_packed && !c.rc; i++) {
        eng_packed *pk = &pf->packed[i];
        uint32_t value = get_u32(&c, "packed value");
        get_bytes(&c, &mds[i], sizeof(mds[i]), "packed layout");
        uint64_t off = get_u64(&c, "packed offset"), size = get_u64(&c, "packed size");
        if (c.rc) break;
        if (value >= n_values || !g->values[value].const_data) {
            fail(&c, "packed weights %s%lld name no constant", "", i);
            break;
        }
        /* A stored layout is only ever compared with one a kernel asks for
         * (and used when equal, with the size checked then against the
         * kernel's own); nothing else may read it, since oneDNN's helpers
         * trust their input (a hostile layout divides by zero in
         * dnnl_memory_desc_get_size). The comparison loops over ndims and
         * inner_nblks, so those must stay in bounds. */
        bool blocked = mds[i].format_kind == dnnl_blocked;
        if (mds[i].ndims < 1 || mds[i].ndims > DNNL_MAX_NDIMS ||
            (!blocked && mds[i].format_kind != dnnl_format_kind_wino) ||
            (blocked && (mds[i].format_desc.blocking.inner_nblks < 0 ||
                         mds[i].format_desc.blocking.inner_nblks > DNNL_MAX_NDIMS))) {
            fail(&c, "packed weights %s%lld have a bad layout", "", i);
            break;
        }
        if (off > h.data_size || size > h.data_size - off || off % PLAN_BLOCK_ALIGN) {
            fail(&c, "packed weights %s%lld lie outside the data section", "", i);
            break;
        }
        *pk = (eng_packed){(int)value, &mds[i], base + h.data_offset + off, (size_t)size};
        pf->n_packed++;
    }
    if (c.rc || read_accuracy(&c, pf)) goto out_fail;
    return 0;

out_fail:
    rc = c.rc ? c.rc : ROUSE_EFORMAT;
    eng_plan_file_fini(pf);
    return rc;
}

void eng_plan_file_fini(eng_plan_file *pf)
{
    eng_graph_fini(&pf->graph);
    memset(pf, 0, sizeof(*pf));
}
