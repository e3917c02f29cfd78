/*
 * Dynamic batching in the instance (see batch.h). Invariants: every request
 * of a message gets exactly one result, in message order; a run's outputs
 * are encoded before the next run (they live in the session's memory until
 * then); nothing is allocated outside the message's arena and the reply.
 */
#include "worker/batch.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/timeutil.h"
#include "worker/fault.h"
#include "worker/ipc.h"
#include "worker/oip.h"

void worker_batch_session_options(int max_batch, rouse_session_options *so)
{
    if (max_batch <= 0) return;
    int sizes = 0;
    for (int b = 1; b <= max_batch; b *= 2)
        sizes++;
    so->batch_dim0 = 1;
    so->plan_cache_size =
        sizes + (so->plan_cache_size > 0 ? so->plan_cache_size : ROUSE_PLAN_CACHE_DEFAULT);
}

int worker_prepare_batches(rouse_model *m, rouse_session *s, int max_batch, uint64_t *mem_bytes,
                           rouse_errbuf *eb)
{
    *mem_bytes = 0;
    int n = rouse_model_n_inputs(m);
    rouse_tensor in[OIP_MAX_OUTPUTS];
    if (n > OIP_MAX_OUTPUTS) return 0;
    for (int i = 0; i < n; i++) {
        rouse_tensor_info ti;
        rouse_model_input(m, i, &ti);
        if (ti.rank < 1) return 0;
        for (int d = 1; d < ti.rank; d++)
            if (ti.shape[d] < 0) return 0; /* known from requests only */
        in[i] = (rouse_tensor){.name = ti.name, .dtype = ti.dtype, .rank = ti.rank};
        memcpy(in[i].shape, ti.shape, sizeof(int64_t) * (size_t)ti.rank);
    }
    for (int b = 1; b <= max_batch; b *= 2) {
        for (int i = 0; i < n; i++) {
            in[i].shape[0] = b;
            size_t elems = 1;
            for (int d = 0; d < in[i].rank; d++)
                elems *= (size_t)in[i].shape[d];
            in[i].nbytes = elems * rouse_dtype_size(in[i].dtype);
        }
        int rc = rouse_session_prepare(s, in, n, eb);
        if (rc < 0) return rouse_err_wrap(eb, rc, "preparing batch %d", b);
    }
    rouse_session_stats st;
    if (rouse_session_get_stats(s, &st) == 0) *mem_bytes = st.arena_bytes;
    return 0;
}

/* One request of the message. */
typedef struct item {
    const ipc_batch_item *in;
    oip_request req;
    int64_t rows; /* dim 0 of its inputs; 0 when it failed */
    int group;    /* index of the first item with the same shapes */
    uint64_t decode_ns; /* its own decoding and checks */
    ipc_batch_result *res;
} item;

/* Bills each of run[0..k) its decoding plus a k-th of the piece since tp. */
static void bill_shares(item **run, int k, uint64_t tp)
{
    uint64_t share = (rouse_now_ns() - tp) / (uint64_t)k;
    for (int j = 0; j < k; j++)
        run[j]->res->bill_ns = run[j]->decode_ns + share;
}

static uint64_t next_pow2(uint64_t x)
{
    uint64_t p = 1;
    while (p < x)
        p *= 2;
    return p;
}

/* log2 of a power of two rows, or -1 when rows is none (or too large). */
static int size_index(int64_t rows)
{
    for (int i = 0; i < WORKER_BATCH_SIZES; i++)
        if (rows == (int64_t)1 << i) return i;
    return -1;
}

void worker_batch_time(worker_batch_times *t, int64_t rows, uint64_t ns)
{
    int i = size_index(rows);
    if (!t || i < 0) return;
    t->ns[i] = t->ns[i] ? (t->ns[i] * 3 + ns) / 4 : (ns ? ns : 1);
}

#define COST_UNKNOWN UINT64_MAX

/* The engine time of `rows` rows run in prepared sizes, the cheaper of
 * padding and cutting at each step; COST_UNKNOWN when a size is not
 * measured yet. */
static uint64_t rows_cost(const worker_batch_times *t, int64_t rows)
{
    if (rows <= 0) return 0;
    int64_t p = (int64_t)next_pow2((uint64_t)rows);
    int i = size_index(p);
    if (i < 0) return COST_UNKNOWN;
    uint64_t pad = t->ns[i] ? t->ns[i] : COST_UNKNOWN;
    if (p == rows || i == 0) return pad;
    uint64_t rest = rows_cost(t, rows - p / 2), cut = COST_UNKNOWN;
    if (t->ns[i - 1] && rest != COST_UNKNOWN) cut = t->ns[i - 1] + rest;
    return pad < cut ? pad : cut;
}

bool worker_batch_pad(const worker_batch_times *t, int64_t r)
{
    int64_t p = (int64_t)next_pow2((uint64_t)r);
    int i = size_index(p);
    if (t && i > 0 && t->ns[i] && t->ns[i - 1]) {
        uint64_t rest = rows_cost(t, r - p / 2);
        if (rest != COST_UNKNOWN) return t->ns[i] <= t->ns[i - 1] + rest;
    }
    return p - r <= p / 4;
}

/* Appends {"error": msg} as item it's reply. */
static int reply_error(rouse_buf *out, item *it, int status, const char *msg)
{
    size_t start = out->len;
    int rc = rouse_buf_append_str(out, "{\"error\":");
    if (rc == 0) rc = json_write_string(out, msg, strlen(msg));
    if (rc == 0) rc = rouse_buf_append_str(out, "}");
    if (rc < 0) return ROUSE_ENOMEM;
    it->res->status = status;
    it->res->batch = 0;
    it->res->off = start;
    it->res->len = out->len - start;
    it->res->json_len = -1;
    snprintf(it->res->content_type, sizeof(it->res->content_type), "application/json");
    return 0;
}

/* Whether a and b can share a run: same inputs in all but dim 0. */
static bool same_shapes(const item *a, const item *b)
{
    for (int i = 0; i < a->req.n_inputs; i++) {
        const rouse_tensor *x = &a->req.inputs[i], *y = &b->req.inputs[i];
        if (x->dtype != y->dtype || x->rank != y->rank) return false;
        for (int d = 1; d < x->rank; d++)
            if (x->shape[d] != y->shape[d]) return false;
    }
    return true;
}

/* Memory for a concatenated input: the region's spare room first. */
static void *scratch_alloc(worker_batch_ctx *c, size_t size)
{
    size_t need = (size + 63) & ~(size_t)63;
    if (c->scratch && need <= c->scratch_len) {
        void *p = c->scratch;
        c->scratch = (char *)c->scratch + need;
        c->scratch_len -= need;
        return p;
    }
    return rouse_arena_alloc(c->arena, size ? size : 1, 64);
}

/* Runs items run[0..k) (of one group) together, padded to `rows` rows, and
 * encodes each one's reply. */
static int run_piece(worker_batch_ctx *c, item **run, int k, int64_t rows, uint64_t t0,
                     rouse_buf *out)
{
    uint64_t tp = rouse_now_ns();
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    const oip_request *first = &run[0]->req;
    int n_in = first->n_inputs, rc = 0;
    rouse_tensor in[OIP_MAX_OUTPUTS];
    const char *fail = NULL;
    int status = 500;
    if (n_in > OIP_MAX_OUTPUTS) {
        fail = "too many inputs to batch";
        goto out_fail;
    }
    for (int i = 0; i < n_in; i++) {
        const rouse_tensor *t = &first->inputs[i];
        size_t row = t->shape[0] > 0 ? t->nbytes / (size_t)t->shape[0] : 0;
        in[i] = *t;
        in[i].shape[0] = rows;
        in[i].nbytes = row * (size_t)rows;
        if (k == 1 && rows == t->shape[0]) continue; /* alone and unpadded: in place */
        char *buf = scratch_alloc(c, in[i].nbytes);
        if (!buf) {
            fail = "out of memory";
            goto out_fail;
        }
        size_t off = 0;
        for (int j = 0; j < k; j++) {
            const rouse_tensor *src = &run[j]->req.inputs[i];
            memcpy(buf + off, src->data, src->nbytes);
            off += src->nbytes;
        }
        memset(buf + off, 0, in[i].nbytes - off); /* padding rows */
        in[i].data = buf;
    }
    uint64_t tr = rouse_now_ns();
    rc = rouse_session_run(c->s, in, n_in, &eb);
    if (rc == 0) worker_batch_time(c->times, rows, rouse_now_ns() - tr);
    if (rc < 0) {
        status = rouse_err_http_status(rc);
        fail = eb.msg[0] ? eb.msg : rouse_strerror(rc);
        goto out_fail;
    }
    int n_out = rouse_model_n_outputs(c->m);
    rouse_tensor outs[OIP_MAX_OUTPUTS], mine[OIP_MAX_OUTPUTS];
    if (n_out > OIP_MAX_OUTPUTS) {
        fail = "too many outputs to batch";
        goto out_fail;
    }
    for (int o = 0; o < n_out; o++) {
        rouse_session_output(c->s, o, &outs[o]);
        if (outs[o].rank < 1 || outs[o].shape[0] != rows) {
            snprintf(eb.msg, sizeof(eb.msg), "output '%s' does not follow the batch in dim 0",
                     outs[o].name);
            fail = eb.msg;
            goto out_fail;
        }
    }
    int64_t row0 = 0;
    for (int j = 0; j < k; j++) {
        item *it = run[j];
        for (int o = 0; o < n_out; o++) {
            size_t row = (size_t)(outs[o].nbytes / (size_t)rows);
            mine[o] = outs[o];
            mine[o].shape[0] = it->rows;
            mine[o].data = (const char *)outs[o].data + row * (size_t)row0;
            mine[o].nbytes = row * (size_t)it->rows;
        }
        row0 += it->rows;
        size_t start = out->len;
        int64_t json_len = -1;
        rouse_errbuf_clear(&eb);
        rc = oip_encode_outputs(&it->req, c->name, c->version, c->m, mine, out, &json_len, &eb);
        if (rc == ROUSE_ENOMEM) return rc;
        if (rc < 0) {
            if ((rc = reply_error(out, it, rouse_err_http_status(rc), eb.msg)) < 0) return rc;
            continue;
        }
        it->res->status = 200;
        it->res->batch = (uint32_t)k;
        it->res->off = start;
        it->res->len = out->len - start;
        it->res->json_len = json_len;
        it->res->run_ns = rouse_now_ns() - t0;
        snprintf(it->res->content_type, sizeof(it->res->content_type), "%s",
                 json_len >= 0 ? "application/octet-stream" : "application/json");
    }
    bill_shares(run, k, tp);
    return 0;
out_fail:
    for (int j = 0; j < k; j++) {
        if ((rc = reply_error(out, run[j], status, fail)) < 0) return rc;
        run[j]->res->run_ns = rouse_now_ns() - t0;
    }
    bill_shares(run, k, tp);
    return 0;
}

/* Runs the items of group g in pieces of prepared sizes. */
static int run_group(worker_batch_ctx *c, item *items, int n, int g, uint64_t t0, item **run,
                     rouse_buf *out)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (items[i].rows > 0 && items[i].group == g) run[k++] = &items[i];
    int64_t max = c->max_batch > 0 ? c->max_batch : 1;
    for (int i = 0; i < k;) {
        if (run[i]->rows >= max) { /* a client's own batch, as large as ours: alone */
            int rc = run_piece(c, &run[i], 1, run[i]->rows, t0, out);
            if (rc < 0) return rc;
            i++;
            continue;
        }
        int j = i;
        int64_t r = 0;
        while (j < k && r + run[j]->rows <= max)
            r += run[j++]->rows;
        int64_t p = (int64_t)next_pow2((uint64_t)r);
        if (p != r && !worker_batch_pad(c->times, r)) { /* cut: the largest power of two below */
            int64_t q = p / 2;
            while (r > q && j > i + 1)
                r -= run[--j]->rows;
            p = (int64_t)next_pow2((uint64_t)r);
        }
        int rc = run_piece(c, &run[i], j - i, p, t0, out);
        if (rc < 0) return rc;
        i = j;
    }
    return 0;
}

int worker_run_batch(worker_batch_ctx *c, const void *body, uint64_t len, rouse_buf *out,
                     rouse_errbuf *eb)
{
    uint64_t t0 = rouse_now_ns();
    ipc_batch_head head;
    if (len < sizeof(head))
        return rouse_err_set(eb, ROUSE_EFORMAT, "batch message of %llu bytes has no head",
                             (unsigned long long)len);
    memcpy(&head, body, sizeof(head));
    if (head.magic != IPC_MAGIC || head.n == 0 || head.n > 65536 ||
        ipc_batch_table_len(head.n) > len)
        return rouse_err_set(eb, ROUSE_EFORMAT, "batch message with a bad head");
    const ipc_batch_item *tab = (const ipc_batch_item *)((const char *)body + sizeof(head));
    int n = (int)head.n;
    item *items = rouse_arena_calloc(c->arena, (size_t)n, sizeof(*items), 8);
    item **run = rouse_arena_calloc(c->arena, (size_t)n, sizeof(*run), 8);
    ipc_batch_result *res = rouse_arena_calloc(c->arena, (size_t)n, sizeof(*res), 8);
    if (!items || !run || !res) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        if (tab[i].off > len || tab[i].len > len - tab[i].off)
            return rouse_err_set(eb, ROUSE_EFORMAT, "batch item %d lies outside the message", i);
    }
    /* The reply: head and results first (filled in last), then bodies. */
    size_t table = ipc_batch_table_len(head.n);
    size_t base = out->len;
    if (rouse_buf_reserve(out, table) < 0) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    memset(out->data + base, 0, table);
    out->len += table;
    for (int i = 0; i < n; i++) {
        item *it = &items[i];
        it->in = &tab[i];
        it->res = &res[i];
        res[i].id = tab[i].id;
        rouse_errbuf e;
        rouse_errbuf_clear(&e);
        uint64_t td = rouse_now_ns();
        int rc = oip_decode_request((const char *)body + tab[i].off, tab[i].len, tab[i].json_len,
                                    c->m, c->arena, &it->req, &e);
        if (rc == 0) {
            worker_fault_hook(it->req.id);
            for (int k = 0; k < it->req.n_inputs && rc == 0; k++) {
                const rouse_tensor *t = &it->req.inputs[k];
                if (t->rank < 1 || t->shape[0] < 1) {
                    rc = rouse_err_set(&e, ROUSE_EMISMATCH,
                                       "input '%s' has no rows to batch (dim 0 must be >= 1)",
                                       t->name);
                } else if (k == 0) {
                    it->rows = t->shape[0];
                } else if (t->shape[0] != it->rows) {
                    rc = rouse_err_set(&e, ROUSE_EMISMATCH,
                                       "inputs disagree on the batch (dim 0): '%s' has %lld rows, "
                                       "'%s' has %lld",
                                       it->req.inputs[0].name, (long long)it->rows, t->name,
                                       (long long)t->shape[0]);
                }
            }
        }
        if (rc < 0) {
            it->rows = 0;
            if ((rc = reply_error(out, it, rouse_err_http_status(rc),
                                  e.msg[0] ? e.msg : rouse_strerror(rc))) < 0)
                return rouse_err_set(eb, rc, "out of memory");
            res[i].run_ns = rouse_now_ns() - t0;
            res[i].bill_ns = rouse_now_ns() - td;
            continue;
        }
        it->decode_ns = rouse_now_ns() - td;
        it->group = i;
        for (int j = 0; j < i; j++) {
            if (items[j].rows > 0 && items[j].group == j && same_shapes(&items[j], it)) {
                it->group = j;
                break;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        if (items[i].rows == 0 || items[i].group != i) continue;
        int rc = run_group(c, items, n, i, t0, run, out);
        if (rc < 0) return rouse_err_set(eb, rc, "out of memory while encoding the responses");
    }
    head.n = (uint32_t)n;
    memcpy(out->data + base, &head, sizeof(head));
    memcpy(out->data + base + sizeof(head), res, sizeof(*res) * (size_t)n);
    return 0;
}
