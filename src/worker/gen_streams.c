/*
 * Several streams decoded together (gen_streams.h). Invariants: slot r
 * holds the stream of the batch's row r (a stream that leaves takes the
 * last row's stream into its slot, as gen_batch_leave moves the row);
 * wait[0..n_wait) holds the streams not yet in the batch in arrival order,
 * wait[0] the one whose prefill the generator holds once `prefilling`;
 * rows + n_wait never exceed the streams; every stream that started is
 * answered exactly once, through the reply function, and then freed.
 */
#include "worker/gen_streams.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "worker/fault.h"
#include "worker/gen_batch.h"
#include "worker/openai.h"
#include "worker/sampler.h"

#define MOD "generate"

typedef struct stream {
    openai_stream *st;
    rouse_arena arena; /* its parsed request */
    sampler_rng rng;
    int32_t last; /* its last token, the next step's input */
    bool lent, done;
    uint64_t t0, t_first; /* the request's arrival, its first token */
    gen_stats gs;
    int chunks, steps; /* its prefill's chunks, and the batch's decode steps between them */
    int group;         /* prefilled in a group of this many (0: alone) */
} stream;

struct gen_streams {
    gen_streams_opts o;
    gen_model gm;
    rouse_session *s;
    gen *g;       /* prefills, one stream at a time */
    gen_batch *b; /* decodes them together */
    stream *slot; /* gm.streams, slot r = row r */
    stream *wait; /* gm.streams: waiting to join, wait[0] being prefilled */
    int n_wait;
    bool prefilling; /* wait[0]'s prefill began (gen_prefill_begin) */
    int32_t *tokens;
    sampler_scratch sc;
    rouse_buf out;
};

void gen_streams_destroy(gen_streams *g)
{
    if (!g) return;
    for (int r = 0; g->slot && g->b && r < gen_batch_rows(g->b); r++) {
        openai_stream_free(g->slot[r].st);
        rouse_arena_fini(&g->slot[r].arena);
    }
    for (int i = 0; i < g->n_wait; i++) {
        openai_stream_free(g->wait[i].st);
        rouse_arena_fini(&g->wait[i].arena);
    }
    free(g->wait);
    gen_destroy(g->g);
    gen_batch_destroy(g->b);
    free(g->slot);
    free(g->tokens);
    free(g->sc.idx);
    free(g->sc.prob);
    rouse_buf_fini(&g->out);
    free(g);
}

int gen_streams_create(const rouse_model *m, rouse_session *s, const gen_model *gm,
                       const gen_streams_opts *o, gen_streams **out, rouse_errbuf *eb)
{
    *out = NULL;
    gen_streams *g = calloc(1, sizeof(*g));
    if (!g) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    g->o = *o;
    g->gm = *gm;
    g->s = s;
    rouse_buf_init(&g->out);
    int rc = gen_create(m, gm, &g->g, eb);
    if (rc == 0) rc = gen_batch_create(m, gm, &g->b, eb);
    if (rc == 0) {
        g->slot = calloc((size_t)gm->streams, sizeof(*g->slot));
        g->wait = calloc((size_t)gm->streams, sizeof(*g->wait));
        g->tokens = calloc((size_t)gm->streams, sizeof(*g->tokens));
        g->sc.idx = calloc((size_t)gm->vocab, sizeof(int));
        g->sc.prob = calloc((size_t)gm->vocab, sizeof(float));
        if (!g->slot || !g->wait || !g->tokens || !g->sc.idx || !g->sc.prob)
            rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    }
    if (rc < 0) {
        gen_streams_destroy(g);
        return rc;
    }
    *out = g;
    return 0;
}

int gen_streams_active(const gen_streams *g)
{
    return gen_batch_rows(g->b) + g->n_wait;
}

/* Ends stream x (answered, freed): gen_rc < 0 with error when generation
 * failed. */
static int finish(gen_streams *g, stream *x, uint64_t id, int gen_rc, const char *error)
{
    openai_reply rep = {.status = 200, .content_type = "application/json"};
    int rc = openai_stream_end(x->st, &x->gs, gen_rc, error, &g->out, &rep);
    int src = g->o.reply(g->o.user, id, x->lent, &rep, &g->out, x->t0);
    openai_stream_free(x->st);
    x->st = NULL;
    rouse_arena_fini(&x->arena);
    return rc < 0 || src < 0 ? -1 : 0;
}

/* A stream's next token: sent, counted; true when it is done. */
static bool take_token(stream *x, int tok, uint64_t now)
{
    const openai_request *rq = openai_stream_request(x->st);
    x->gs.completion_tokens++;
    if (x->gs.completion_tokens == 1) {
        x->gs.prefill_ns = now - x->t0;
        x->t_first = now;
    } else {
        x->gs.decode_ns = now - x->t_first;
    }
    x->last = tok;
    if (openai_stream_token(x->st, tok)) {
        x->gs.stopped = true;
        return true;
    }
    return x->gs.completion_tokens >= rq->gp.max_tokens;
}

int gen_streams_start(gen_streams *g, const ipc_msg *req, const void *body, bool lent)
{
    stream x;
    memset(&x, 0, sizeof(x));
    x.t0 = rouse_now_ns();
    x.lent = lent;
    openai_reply rep;
    if (gen_streams_active(g) >= g->gm.streams) {
        /* serve sends at most scaling.concurrency: not expected. */
        rouse_buf_clear(&g->out);
        rouse_buf_append_str(&g->out, "{\"error\":\"every stream of the instance is taken\"}");
        rep = (openai_reply){.status = 503, .content_type = "application/json"};
        return g->o.reply(g->o.user, req->id, lent, &rep, &g->out, x.t0);
    }
    rouse_arena_init(&x.arena, 0);
    if (g->o.arena_limit) rouse_arena_set_limit(&x.arena, g->o.arena_limit);
    rouse_buf_clear(&g->out);
    int rc = openai_stream_begin(g->o.sock, req, body, g->o.name, &g->gm, g->o.tok, &x.arena, &x.st,
                                 &g->out, &rep);
    if (rc < 0 || !x.st) {
        if (rc < 0) {
            rouse_buf_clear(&g->out);
            rouse_buf_append_str(&g->out, "{\"error\":\"out of memory\"}");
            rep = (openai_reply){.status = 500, .content_type = "application/json"};
        }
        rc = g->o.reply(g->o.user, req->id, lent, &rep, &g->out, x.t0);
        rouse_arena_fini(&x.arena);
        return rc;
    }
    const openai_request *rq = openai_stream_request(x.st);
    x.gs.prompt_tokens = rq->n_ids;
    sampler_rng_seed(&x.rng, rq->gp.seed);
    /* Prefilled chunk by chunk from the next step on (gen_streams_step). */
    g->wait[g->n_wait++] = x;
    return 0;
}

/* Takes wait[i] out of the waiting streams into *x. */
static void unwait(gen_streams *g, int i, stream *x)
{
    *x = g->wait[i];
    if (i == 0) g->prefilling = false;
    memmove(&g->wait[i], &g->wait[i + 1], (size_t)(g->n_wait - i - 1) * sizeof(*g->wait));
    g->n_wait--;
}

/* Stream x, prefilled (gen_rc 0: its sequence in the generator's cache,
 * logits its last position's; < 0: error says why), picks its first token
 * and joins the batch, or ends. < 0: the socket failed. */
static int join(gen_streams *g, stream *x, int gen_rc, const char *error, const float *logits)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    uint64_t id = openai_stream_id(x->st);
    const openai_request *rq = openai_stream_request(x->st);
    openai_stream_prefilled(x->st, x->chunks, x->steps, x->group);
    if (gen_rc < 0) return finish(g, x, id, gen_rc, error);
    int tok = sampler_pick(logits, g->gm.vocab, &rq->gp.sp, &x->rng, &g->sc);
    if (take_token(x, tok, rouse_now_ns())) return finish(g, x, id, 0, NULL);
    int row, rc;
    if ((rc = gen_batch_join(g->b, g->g, &row, &eb)) < 0) return finish(g, x, id, rc, eb.msg);
    g->slot[row] = *x;
    LOG_DEBUG(MOD,
              "generation %" PRIx64 " joins the batch as row %d of %d (prefilled in %d chunks, %d "
              "steps of the others between them, in a group of %d)",
              id, row, gen_batch_rows(g->b), x->chunks, x->steps, x->group);
    return 0;
}

/* The waiting streams prefilled together now: the leading ones whose
 * prompts fit one chunk, at most prefill_batch. */
static int group_size(const gen_streams *g)
{
    int n = 0;
    while (n < g->n_wait && n < g->o.prefill_batch &&
           openai_stream_request(g->wait[n].st)->n_ids <= GEN_PREFILL_CHUNK)
        n++;
    return n;
}

/* Whether wait[0] still waits for company: batching is on, its delay has
 * not passed, and a stream more could come and join its group. */
static bool awaits_company(const gen_streams *g, uint64_t now, uint64_t *until)
{
    if (g->o.prefill_batch < 2 || g->n_wait == 0 || g->prefilling) return false;
    int n = group_size(g);
    if (n == 0 || n >= g->o.prefill_batch || n < g->n_wait ||
        gen_batch_rows(g->b) + g->n_wait >= g->gm.streams)
        return false;
    *until = g->wait[0].t0 + g->o.prefill_delay_ns;
    return now < *until;
}

uint64_t gen_streams_idle_ns(const gen_streams *g)
{
    uint64_t now = rouse_now_ns(), until;
    if (gen_batch_rows(g->b) > 0 || !awaits_company(g, now, &until)) return 0;
    return until - now;
}

/* The prefill of the first n waiting streams in one run; each then joins
 * the batch (or ends). < 0: the socket failed. */
static int prefill_group(gen_streams *g, int n)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    const int32_t *prompts[GEN_STREAMS_MAX];
    int lens[GEN_STREAMS_MAX], max_tokens[GEN_STREAMS_MAX];
    for (int j = 0; j < n; j++) {
        const openai_request *rq = openai_stream_request(g->wait[j].st);
        prompts[j] = rq->ids;
        lens[j] = rq->n_ids;
        max_tokens[j] = rq->gp.max_tokens;
    }
    int rc = gen_prefill_group(g->g, g->s, prompts, lens, max_tokens, n,
                               gen_batch_size(g->gm.streams, n), &eb);
    stream group[GEN_STREAMS_MAX];
    for (int j = 0; j < n; j++)
        unwait(g, 0, &group[j]);
    int out = 0;
    for (int j = 0; j < n; j++) {
        const float *logits = NULL;
        int grc = rc < 0 ? rc : gen_prefill_take(g->g, g->s, j, &logits, &eb);
        group[j].chunks = 1;
        group[j].group = n;
        if (join(g, &group[j], grc, eb.msg, logits) < 0) out = -1;
    }
    return out;
}

/* The next chunk of wait[0]'s prefill; after its last, the stream's first
 * token, and it joins the batch (or ends there). < 0: the socket failed. */
static int prefill_next(gen_streams *g)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    stream *w = &g->wait[0];
    const openai_request *rq = openai_stream_request(w->st);
    int rc = 0;
    if (!g->prefilling) {
        rc = gen_prefill_begin(g->g, rq->ids, rq->n_ids, rq->gp.max_tokens, &eb);
        g->prefilling = rc == 0;
    }
    const float *logits = NULL;
    if (rc == 0) rc = gen_prefill_next(g->g, g->s, &logits, &eb);
    if (rc >= 0) w->chunks++;
    if (rc == 0) return 0; /* more chunks to come */
    stream x;
    unwait(g, 0, &x);
    return join(g, &x, rc, eb.msg, logits);
}

/* Ends the stream of row r; its slot takes the stream that moved there. */
static int leave(gen_streams *g, int r, int gen_rc, const char *error)
{
    stream x = g->slot[r];
    int moved = gen_batch_leave(g->b, r);
    if (moved >= 0) g->slot[r] = g->slot[moved];
    return finish(g, &x, openai_stream_id(x.st), gen_rc, error);
}

/* How stream x ends on serve's IPC_CANCEL m: the client left (0), or its
 * deadline passed (ROUSE_ETIMEOUT with the message in eb). */
static int cancel_rc(stream *x, const ipc_msg *m, rouse_errbuf *eb)
{
    if (m->status == 504) {
        openai_stream_timeout(x->st, m->json_len);
        openai_stream_timed_out(x->st, eb);
        return eb->code;
    }
    openai_stream_cancel(x->st);
    x->gs.stopped = true;
    return 0;
}

int gen_streams_cancel(gen_streams *g, const ipc_msg *m)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    for (int r = 0; r < gen_batch_rows(g->b); r++)
        if (openai_stream_id(g->slot[r].st) == m->id) {
            int rc = cancel_rc(&g->slot[r], m, &eb);
            return leave(g, r, rc, eb.msg);
        }
    for (int i = 0; i < g->n_wait; i++)
        if (openai_stream_id(g->wait[i].st) == m->id) {
            stream x;
            unwait(g, i, &x);
            openai_stream_prefilled(x.st, x.chunks, x.steps, x.group);
            int rc = cancel_rc(&x, m, &eb);
            return finish(g, &x, m->id, rc, eb.msg);
        }
    return 0;
}

/* One decode step of every row. */
static int batch_step(gen_streams *g)

{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rows = gen_batch_rows(g->b), rc = 0;
    if (rows == 0) return 0;
    for (int r = 0; r < rows; r++)
        g->tokens[r] = g->slot[r].last;
    const float *logits;
    int grc = gen_batch_step(g->b, g->s, g->tokens, &logits, &eb);
    if (grc < 0) {
        /* Every stream ends with the error: the batch is in no state to go on. */
        LOG_ERROR(MOD, "decode step of %d streams: %s", rows, eb.msg);
        while (gen_batch_rows(g->b) > 0)
            if (leave(g, gen_batch_rows(g->b) - 1, grc, eb.msg) < 0) rc = -1;
        return rc;
    }
#ifdef ROUSE_POOL_CHECK
    /* Sanitizer builds check the batch's layout after every step. */
    if (gen_batch_check(g->b, &eb) < 0) {
        LOG_ERROR(MOD, "batch invariant broken: %s", eb.msg);
        abort();
    }
#endif
    uint64_t now = rouse_now_ns();
    for (int r = 0; r < rows; r++) {
        stream *x = &g->slot[r];
        const openai_request *rq = openai_stream_request(x->st);
        int tok = sampler_pick(logits + (size_t)r * (size_t)g->gm.vocab, g->gm.vocab, &rq->gp.sp,
                               &x->rng, &g->sc);
        x->done = take_token(x, tok, now);
    }
    /* From the last row down: the row that moves into a freed one was
     * already looked at. */
    for (int r = rows - 1; r >= 0; r--)
        if (g->slot[r].done && leave(g, r, 0, NULL) < 0) rc = -1;
    return rc;
}

int gen_streams_step(gen_streams *g)
{
    int rc = 0;
    if (gen_batch_rows(g->b) > 0) {
        worker_fault_step();
        rc = batch_step(g);
        /* The others got their token between two chunks of a joining prompt. */
        if (g->n_wait > 0 && g->prefilling) g->wait[0].steps++;
    }
    uint64_t until;
    if (g->n_wait == 0 || awaits_company(g, rouse_now_ns(), &until)) return rc;
    int n = g->prefilling || g->o.prefill_batch < 2 ? 0 : group_size(g);
    if ((n > 1 ? prefill_group(g, n) : prefill_next(g)) < 0) rc = -1;
    return rc;
}
