/*
 * Products of a few rows with a constant matrix (exec_int.h): a MatMul
 * whose activation has a single row, [1, K] x [K, N] (a decoder's step: its
 * Linear layers and the vocabulary projection), is memory-bound: each
 * weight is read once per run; so is one of a few rows (the step of a few
 * sequences decoded together, up to the session's gemv_max_rows). oneDNN's matmul primitive handles
 * it as a one-row GEMM (brgemm), which on a plain [K, N] weight walks down the columns in narrow
 * strips, K rows apart: for GPT-2's projection
 * ([768, 50257], 154 MB) that is 768 pages touched per strip and a third of
 * the memory bandwidth; given the choice of layout it takes a blocked one,
 * which costs a copy of the weight per plan (and per prepared shape). Its
 * GEMM interface (dnnl_sgemm) has a matrix-vector path that streams a plain
 * weight row by row instead. So here: the weight is the constant's own
 * bytes (the compiled plan's pages, shared by every plan and process), the
 * bias and a residual addend go into the destination first, and
 * dnnl_sgemm accumulates the product onto it (one GEMM call of m rows:
 * a blocked copy per prepared batch size and cache bucket would multiply
 * the weights' memory by the number of plans).
 */
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "engine/exec_int.h"
#include "rouse/engine.h"

int exec_gemv_add_step(eng_plan *p, const eng_node *n, const eng_attrs *resolved, int a_pv,
                       const float *w, int64_t m, int64_t k, int64_t nn, const float *bias,
                       int addend_pv, const eng_tensor *out, int *out_pv)
{
    int dst, rc;
    if ((rc = plan_new_pv(p, out, &dst)) < 0) return rc;
    exec_step *s;
    if ((rc = plan_add_step(p, &s)) < 0) return rc;
    s->kind = STEP_GEMV;
    s->node = n;
    if (resolved) s->resolved = *resolved;
    s->n_in = 2;
    s->n_out = 1;
    s->in_pv = rouse_arena_alloc(&p->mem, 2 * sizeof(int), 8);
    s->out_pv = rouse_arena_alloc(&p->mem, sizeof(int), 8);
    if (!s->in_pv || !s->out_pv) return ROUSE_ENOMEM;
    s->in_pv[0] = a_pv;
    s->in_pv[1] = addend_pv;
    s->out_pv[0] = dst;
    s->gemv_w = w;
    s->gemv_bias = bias;
    s->gemv_k = k;
    s->gemv_n = nn;
    s->gemv_m = m;
    p->stats.n_dnnl++;
    *out_pv = dst;
    return 0;
}

int exec_gemv_run(const eng_plan *p, const exec_step *st, rouse_errbuf *eb)
{
    const float *a = p->pvs[st->in_pv[0]].t.data;
    float *y = (float *)p->pvs[st->out_pv[0]].t.data;
    const size_t N = (size_t)st->gemv_n, M = (size_t)st->gemv_m;
    float beta = 0.0f;
    if (st->gemv_bias) {
        for (size_t r = 0; r < M; r++)
            memcpy(y + r * N, st->gemv_bias, N * sizeof(float));
        beta = 1.0f;
    }
    if (st->in_pv[1] >= 0) {
        const float *d = p->pvs[st->in_pv[1]].t.data;
        if (beta == 0.0f)
            memcpy(y, d, M * N * sizeof(float));
        else
            for (size_t i = 0; i < M * N; i++)
                y[i] += d[i];
        beta = 1.0f;
    }
    dnnl_status_t s = dnnl_sgemm('N', 'N', (dnnl_dim_t)M, (dnnl_dim_t)N, st->gemv_k, 1.0f, a,
                                 st->gemv_k, st->gemv_w, (dnnl_dim_t)N, beta, y, (dnnl_dim_t)N);
    if (s != dnnl_success)
        return rouse_err_set(eb, ROUSE_EINTERNAL, "node '%s': oneDNN sgemm failed (%d)",
                             st->node ? st->node->name : "(gemv)", (int)s);
    return 0;
}

void rouse_engine_warm_gemv(void)
{
    /* Any one-row product makes them (the shape does not matter: measured,
     * a 64 x 64 one made a forked child's first [768] x [768, 3072]
     * product take 2-4 ms of CPU instead of 10-11). One thread, so that no
     * OpenMP team starts in a process that forks afterwards. */
    float a[64] = {0}, w[64 * 64] = {0}, y[64] = {0};
    int team = omp_get_max_threads();
    omp_set_num_threads(1);
    dnnl_sgemm('N', 'N', 1, 64, 64, 1.0f, a, 64, w, 64, 0.0f, y, 64);
    omp_set_num_threads(team);
}
