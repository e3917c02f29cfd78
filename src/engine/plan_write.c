/*
 * Writes compiled plan files. The metadata is built in memory; constants and
 * packed weights are written straight from where they live (the source
 * model's mapping, the plan's weight chunks) with pwrite, so compiling a
 * large model does not hold a second copy of it in memory.
 */
#include "engine/plan_file.h"

#include <dnnl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/crc32c.h"
#include "engine/optimize.h"
#include "engine/plan_format.h"

typedef struct data_item {
    const void *data;
    uint64_t size;
    uint64_t offset; /* within the data section */
} data_item;

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

static uint64_t place(uint64_t *cursor, uint64_t size)
{
    uint64_t a = size >= PLAN_PAGE_ALIGN_FROM ? PLAN_PAGE_ALIGN : PLAN_BLOCK_ALIGN;
    uint64_t off = align_up(*cursor, a);
    *cursor = off + size;
    return off;
}

static int put(rouse_buf *b, const void *p, size_t n)
{
    return rouse_buf_append(b, p, n);
}

static int put_u32(rouse_buf *b, uint32_t v)
{
    return put(b, &v, 4);
}

static int put_i32(rouse_buf *b, int32_t v)
{
    return put(b, &v, 4);
}

static int put_u64(rouse_buf *b, uint64_t v)
{
    return put(b, &v, 8);
}

static int put_str(rouse_buf *b, const char *s)
{
    size_t n = strlen(s);
    int rc = put_u32(b, (uint32_t)n);
    return rc < 0 ? rc : put(b, s, n + 1); /* with its NUL: names are used in place */
}

static int write_all(int fd, const void *p, size_t n, uint64_t off)
{
    const char *c = p;
    while (n) {
        ssize_t w = pwrite(fd, c, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        c += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Constants that a live node reads, or that are outputs. */
static bool *live_constants(const eng_graph *g)
{
    bool *live = calloc((size_t)g->n_values + 1, sizeof(bool));
    if (!live) return NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        const eng_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && g->values[n->in[k]].const_data) live[n->in[k]] = true;
    }
    for (int i = 0; i < g->n_outputs; i++)
        if (g->values[g->outputs[i]].const_data) live[g->outputs[i]] = true;
    return live;
}

/* True when packed item i repeats an earlier (constant, layout) pair: a
 * weight read by many nodes is stored once. */
static bool packed_seen_before(const eng_packed_set *packed, int i)
{
    const eng_packed *pk = &packed->items[i];
    for (int j = 0; j < i; j++) {
        const eng_packed *o = &packed->items[j];
        if (o->value == pk->value && o->size == pk->size && dnnl_memory_desc_equal(o->md, pk->md))
            return true;
    }
    return false;
}

static int put_f64(rouse_buf *b, double v)
{
    return put(b, &v, 8);
}

/* The last section: the precision and the accuracy measured for it.
 *   u32 precision, u32 source, u32 n_samples,
 *   u32 n_outputs, per output {str name, f64 top1, f64 max_abs, f64 max_rel},
 *   u32 n_kept, per layer kept in fp32 {str node name} */
static int build_accuracy(const eng_graph *g, const rouse_accuracy *acc, rouse_buf *m)
{
    static const rouse_accuracy none = {0};
    if (!acc) acc = &none;
    int rc = 0;
    rc |= put_u32(m, (uint32_t)g->precision);
    rc |= put_u32(m, (uint32_t)acc->source);
    rc |= put_u32(m, (uint32_t)acc->n_samples);
    rc |= put_u32(m, (uint32_t)acc->n_outputs);
    for (int i = 0; i < acc->n_outputs; i++) {
        const rouse_output_accuracy *o = &acc->outputs[i];
        rc |= put_str(m, o->name);
        rc |= put_f64(m, o->top1);
        rc |= put_f64(m, o->max_abs);
        rc |= put_f64(m, o->max_rel);
    }
    rc |= put_u32(m, (uint32_t)acc->n_kept_fp32);
    for (int i = 0; i < acc->n_kept_fp32; i++)
        rc |= put_str(m, acc->kept_fp32[i]);
    return rc < 0 ? ROUSE_ENOMEM : 0;
}

static int build_meta(const eng_graph *g, const bool *live, const eng_packed_set *packed,
                      data_item *items, int *n_items, uint64_t *data_size, rouse_buf *m)
{
    int rc = 0;
    uint64_t cursor = 0;
    int live_nodes = 0;
    for (int i = 0; i < g->n_nodes; i++)
        live_nodes += !g->nodes[i].dead;
    int n_packed = packed ? packed->n : 0, n_unique = 0;
    for (int i = 0; i < n_packed; i++)
        n_unique += !packed_seen_before(packed, i);

    rc |= put_u32(m, (uint32_t)g->n_values);
    rc |= put_u32(m, (uint32_t)live_nodes);
    rc |= put_u32(m, (uint32_t)g->n_inputs);
    rc |= put_u32(m, (uint32_t)g->n_outputs);
    rc |= put_i32(m, g->opset);
    for (int i = 0; i < g->n_values; i++) {
        const eng_value *v = &g->values[i];
        uint8_t flags =
            (uint8_t)((v->is_input ? PLAN_VALUE_INPUT : 0) |
                      (v->is_output ? PLAN_VALUE_OUTPUT : 0) | (live[i] ? PLAN_VALUE_CONST : 0));
        rc |= put_str(m, v->name);
        rc |= put_i32(m, v->dtype);
        rc |= put_i32(m, v->rank);
        for (int k = 0; k < v->rank && k < ENG_MAX_RANK; k++)
            rc |= put_u64(m, (uint64_t)v->shape[k]);
        rc |= put(m, &flags, 1);
        for (int k = 0; (v->is_input || v->is_output) && k < v->rank && k < ENG_MAX_RANK; k++)
            rc |= put_str(m, v->dim_names[k] ? v->dim_names[k] : "");
        if (live[i]) {
            int64_t nb = eng_shape_numel(v->rank, v->shape) * (int64_t)eng_dtype_size(v->dtype);
            data_item *it = &items[(*n_items)++];
            it->data = v->const_data;
            it->size = (uint64_t)nb;
            it->offset = place(&cursor, it->size);
            rc |= put_u64(m, it->offset);
            rc |= put_u64(m, it->size);
        }
    }
    for (int i = 0; i < g->n_inputs; i++)
        rc |= put_u32(m, (uint32_t)g->inputs[i]);
    for (int i = 0; i < g->n_outputs; i++)
        rc |= put_u32(m, (uint32_t)g->outputs[i]);
    for (int i = 0; i < g->n_nodes; i++) {
        const eng_node *n = &g->nodes[i];
        if (n->dead) continue;
        rc |= put_str(m, n->name);
        rc |= put_u32(m, (uint32_t)n->op);
        rc |= put_i32(m, n->opset);
        rc |= put_u32(m, (uint32_t)n->n_in);
        for (int k = 0; k < n->n_in; k++)
            rc |= put_i32(m, n->in[k]);
        rc |= put_u32(m, (uint32_t)n->n_out);
        for (int k = 0; k < n->n_out; k++)
            rc |= put_i32(m, n->out[k]);
        rc |= put(m, &n->attrs, sizeof(n->attrs));
        rc |= put_u32(m, (uint32_t)n->n_post);
        rc |= put(m, n->post, sizeof(n->post[0]) * (size_t)n->n_post);
    }
    rc |= put_u32(m, (uint32_t)n_unique);
    for (int i = 0; i < n_packed; i++) {
        const eng_packed *pk = &packed->items[i];
        if (packed_seen_before(packed, i)) continue;
        data_item *it = &items[(*n_items)++];
        it->data = pk->data;
        it->size = pk->size;
        it->offset = place(&cursor, it->size);
        rc |= put_u32(m, (uint32_t)pk->value);
        rc |= put(m, pk->md, sizeof(dnnl_memory_desc_t));
        rc |= put_u64(m, it->offset);
        rc |= put_u64(m, it->size);
    }
    *data_size = align_up(cursor, PLAN_PAGE_ALIGN);
    return rc < 0 ? ROUSE_ENOMEM : 0;
}

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return ROUSE_ENOMEM;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0) return ROUSE_EIO;
    int rc = fsync(fd) == 0 ? 0 : ROUSE_EIO;
    close(fd);
    return rc;
}

int eng_plan_file_write(const char *path, const eng_graph *g, const uint8_t model_sha256[32],
                        const eng_packed_set *packed, const rouse_accuracy *acc,
                        uint64_t model_bytes, double max_ratio, rouse_errbuf *eb)
{
    int rc;
    bool *live = live_constants(g);
    int n_items_max = g->n_values + (packed ? packed->n : 0) + 1;
    data_item *items = calloc((size_t)n_items_max, sizeof(*items));
    rouse_buf meta;
    rouse_buf_init(&meta);
    char *tmp = NULL;
    int fd = -1;
    if (!live || !items) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out;
    }
    int n_items = 0;
    uint64_t data_size = 0;
    if ((rc = build_meta(g, live, packed, items, &n_items, &data_size, &meta)) < 0 ||
        (rc = build_accuracy(g, acc, &meta)) < 0) {
        rc = rouse_err_set(eb, rc, "out of memory writing the plan");
        goto out;
    }

    plan_header h;
    memset(&h, 0, sizeof(h));
    memcpy(h.magic, PLAN_MAGIC, 8);
    h.format_version = PLAN_FORMAT_VERSION;
    h.header_size = PLAN_HEADER_SIZE;
    h.cpu_isa = (uint32_t)dnnl_get_effective_cpu_isa();
    const dnnl_version_t *ver = dnnl_version();
    h.dnnl_major = (uint32_t)ver->major;
    h.dnnl_minor = (uint32_t)ver->minor;
    h.dnnl_patch = (uint32_t)ver->patch;
    h.attrs_size = sizeof(eng_attrs);
    h.postop_size = sizeof(eng_postop);
    h.md_size = sizeof(dnnl_memory_desc_t);
    memcpy(h.model_sha256, model_sha256, 32);
    h.meta_offset = PLAN_HEADER_SIZE;
    h.meta_size = meta.len;
    h.meta_crc32c = rouse_crc32c(0, meta.data, meta.len);
    h.data_offset = align_up(PLAN_HEADER_SIZE + meta.len, PLAN_PAGE_ALIGN);
    h.data_size = data_size;
    h.file_size = h.data_offset + data_size;

    if (max_ratio > 0 && (double)h.file_size > max_ratio * (double)model_bytes + PLAN_SIZE_SLACK) {
        rc = rouse_err_set(eb, ROUSE_ETOOBIG,
                           "the plan would take %llu bytes, %.1f times the model (%llu bytes), "
                           "over the limit of %.1f times the model plus %d KiB",
                           (unsigned long long)h.file_size,
                           model_bytes ? (double)h.file_size / (double)model_bytes : 0.0,
                           (unsigned long long)model_bytes, max_ratio, PLAN_SIZE_SLACK / 1024);
        goto out;
    }
    size_t tl = strlen(path) + 16;
    tmp = malloc(tl);
    if (!tmp) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(tmp, tl, "%s.tmpXXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    /* mkstemp's mode, 0600: a plan is read by its template, which opens it
     * as the user that wrote it (serve's data directory is private). */
    char page[PLAN_HEADER_SIZE];
    memset(page, 0, sizeof(page));
    memcpy(page, &h, sizeof(h));
    int err = write_all(fd, page, sizeof(page), 0);
    if (!err) err = write_all(fd, meta.data, meta.len, h.meta_offset);
    for (int i = 0; i < n_items && !err; i++)
        err = write_all(fd, items[i].data, (size_t)items[i].size, h.data_offset + items[i].offset);
    if (!err && ftruncate(fd, (off_t)h.file_size) < 0) err = -errno;
    if (!err && fsync(fd) < 0) err = -errno;
    if (err == -ENOSPC || err == -EDQUOT) {
        rc =
            rouse_err_set(eb, ROUSE_ENOSPACE, "%s: no space left on the device for the plan", path);
        goto out_unlink;
    }
    if (err) {
        rc = rouse_err_set(eb, ROUSE_EIO, "%s: %s", path, strerror(-err));
        goto out_unlink;
    }
    if (rename(tmp, path) < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "%s: %s", path, strerror(errno));
        goto out_unlink;
    }
    if ((rc = fsync_dir_of(path)) < 0) {
        rc = rouse_err_set(eb, rc, "%s: cannot sync its directory", path);
        goto out;
    }
    rc = 0;
    goto out;
out_unlink:
    unlink(tmp);
out:
    if (fd >= 0) close(fd);
    free(tmp);
    free(live);
    free(items);
    rouse_buf_fini(&meta);
    return rc;
}
