/*
 * Choosing the next token from a decoder's logits: greedy (temperature 0)
 * or sampled with temperature, top_k and top_p (nucleus) from a seeded
 * generator, so that a request with a seed gets the same tokens every time
 * on the same model. Pure functions over caller-owned memory: nothing is
 * allocated while choosing.
 */
#ifndef ROUSE_WORKER_SAMPLER_H
#define ROUSE_WORKER_SAMPLER_H

#include <stdint.h>

/* splitmix64: small, fast, and good enough for picking tokens. */
typedef struct sampler_rng {
    uint64_t s;
} sampler_rng;

void sampler_rng_seed(sampler_rng *r, uint64_t seed);
/* A uniform double in [0, 1). */
double sampler_rng_next(sampler_rng *r);

typedef struct sampler_params {
    double temperature; /* 0: greedy (the largest logit; the lowest index on ties) */
    int top_k;          /* keep the k most likely tokens; 0: all */
    double top_p;       /* keep the fewest most likely tokens whose probabilities add up to
                           at least top_p; 1: all */
} sampler_params;

/* Scratch memory for one vocabulary: n_vocab ints and n_vocab floats. */
typedef struct sampler_scratch {
    int *idx;
    float *prob;
} sampler_scratch;

/* The chosen token of logits[0..n_vocab). Non-finite logits are never
 * chosen unless all are. */
int sampler_pick(const float *logits, int n_vocab, const sampler_params *p, sampler_rng *r,
                 sampler_scratch *scratch);

#endif
