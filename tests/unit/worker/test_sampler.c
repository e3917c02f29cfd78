/*
 * Token choice (worker/sampler.h): greedy picks the largest logit, top_k 1
 * and a tiny top_p are greedy too, sampling never picks outside top_k or the
 * nucleus, a seed repeats its choices, and the frequencies follow the
 * softmax at the temperature.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "worker/sampler.h"

#define V 8

static int idx[V];
static float prob[V];
static sampler_scratch sc = {idx, prob};
static const float logits[V] = {0.5f, 2.0f, -1.0f, 1.5f, 0.0f, 1.9f, -3.0f, 1.0f};

static void test_greedy(void **state)
{
    (void)state;
    sampler_rng r;
    sampler_rng_seed(&r, 1);
    sampler_params p = {.temperature = 0, .top_p = 1};
    assert_int_equal(sampler_pick(logits, V, &p, &r, &sc), 1);
    p = (sampler_params){.temperature = 1, .top_k = 1, .top_p = 1};
    assert_int_equal(sampler_pick(logits, V, &p, &r, &sc), 1);
    p = (sampler_params){.temperature = 1, .top_p = 1e-6};
    assert_int_equal(sampler_pick(logits, V, &p, &r, &sc), 1);
    /* Non-finite logits are never chosen. */
    float nan_first[3] = {NAN, 1.0f, INFINITY};
    p = (sampler_params){.temperature = 0, .top_p = 1};
    assert_int_equal(sampler_pick(nan_first, 3, &p, &r, &sc), 1);
}

static void test_top_k_and_p(void **state)
{
    (void)state;
    sampler_rng r;
    sampler_rng_seed(&r, 42);
    sampler_params p = {.temperature = 5, .top_k = 3, .top_p = 1};
    for (int i = 0; i < 2000; i++) {
        int t = sampler_pick(logits, V, &p, &r, &sc);
        assert_true(t == 1 || t == 5 || t == 3); /* the three largest */
    }
    /* At temperature 1 the two largest (2.0, 1.9) hold about 0.39 + 0.35 of
     * the mass: top_p 0.5 keeps those two and nothing else. */
    p = (sampler_params){.temperature = 1, .top_p = 0.5};
    for (int i = 0; i < 2000; i++) {
        int t = sampler_pick(logits, V, &p, &r, &sc);
        assert_true(t == 1 || t == 5);
    }
}

static void test_seed_and_frequencies(void **state)
{
    (void)state;
    sampler_params p = {.temperature = 1, .top_p = 1};
    sampler_rng a, b;
    sampler_rng_seed(&a, 7);
    sampler_rng_seed(&b, 7);
    for (int i = 0; i < 100; i++)
        assert_int_equal(sampler_pick(logits, V, &p, &a, &sc), sampler_pick(logits, V, &p, &b, &sc));
    int count[V] = {0};
    const int n = 200000;
    for (int i = 0; i < n; i++)
        count[sampler_pick(logits, V, &p, &a, &sc)]++;
    double z = 0;
    for (int i = 0; i < V; i++)
        z += exp(logits[i]);
    for (int i = 0; i < V; i++) {
        double want = exp(logits[i]) / z;
        /* five standard deviations of a binomial count */
        double tol = 5 * sqrt(n * want * (1 - want)) / n + 1e-4;
        assert_true(fabs((double)count[i] / n - want) < tol);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_top_k_and_p),
        cmocka_unit_test(test_seed_and_frequencies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
