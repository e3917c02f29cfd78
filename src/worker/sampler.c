/*
 * Token choice (sampler.h). Sampling keeps the candidates sorted by logit
 * (descending, index ascending on ties), applies top_k, turns the logits
 * into probabilities at the temperature (softmax with the largest
 * subtracted), cuts at top_p and draws one from what is left.
 */
#include "worker/sampler.h"

#include <math.h>
#include <stdlib.h>

void sampler_rng_seed(sampler_rng *r, uint64_t seed)
{
    r->s = seed;
}

static uint64_t splitmix64(sampler_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double sampler_rng_next(sampler_rng *r)
{
    return (double)(splitmix64(r) >> 11) * (1.0 / 9007199254740992.0);
}

static int greedy(const float *logits, int n)
{
    int best = -1;
    for (int i = 0; i < n; i++)
        if (isfinite(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
    return best < 0 ? 0 : best;
}

/* Orders token ids by logit, descending; ties by index. A full sort: a
 * vocabulary sorts in well under a millisecond and top_p needs the order. */
static int by_logit(const void *a, const void *b, void *user)
{
    const float *logits = user;
    int i = *(const int *)a, j = *(const int *)b;
    float x = logits[i], y = logits[j];
    if (x > y) return -1;
    if (x < y) return 1;
    return i < j ? -1 : i > j;
}

int sampler_pick(const float *logits, int n_vocab, const sampler_params *p, sampler_rng *r,
                 sampler_scratch *sc)
{
    if (n_vocab <= 0) return 0;
    if (!(p->temperature > 0) || p->top_k == 1) return greedy(logits, n_vocab);
    int n = 0;
    for (int i = 0; i < n_vocab; i++)
        if (isfinite(logits[i])) sc->idx[n++] = i;
    if (n == 0) return 0;
    qsort_r(sc->idx, (size_t)n, sizeof(int), by_logit, (void *)logits);
    if (p->top_k > 0 && p->top_k < n) n = p->top_k;
    double top = logits[sc->idx[0]], sum = 0;
    for (int i = 0; i < n; i++) {
        double e = exp(((double)logits[sc->idx[i]] - top) / p->temperature);
        sc->prob[i] = (float)e;
        sum += e;
    }
    double cut = p->top_p > 0 && p->top_p < 1 ? p->top_p * sum : sum;
    double acc = 0;
    int keep = n;
    for (int i = 0; i < n; i++) {
        acc += sc->prob[i];
        if (acc >= cut) {
            keep = i + 1;
            break;
        }
    }
    double kept = 0;
    for (int i = 0; i < keep; i++)
        kept += sc->prob[i];
    double u = sampler_rng_next(r) * kept;
    for (int i = 0; i < keep; i++) {
        u -= sc->prob[i];
        if (u < 0) return sc->idx[i];
    }
    return sc->idx[keep - 1];
}
