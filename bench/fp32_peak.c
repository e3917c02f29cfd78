/*
 * One core's fp32 multiply-add peak: independent chains of vector FMAs, as
 * many as hide the instruction's latency, timed over 2.4e8 instructions;
 * best of 5. Built with the widest FMA the compiler is told about
 * (-mavx512f, else -mavx2 -mfma). Prints GFLOP/s (one FMA lane = 2 flops).
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ISA "AVX-512"
#elif defined(__FMA__)
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ISA "AVX2+FMA"
#else
#error "build with -mavx512f or -mavx2 -mfma"
#endif

#define CHAINS 12
/* Written out so that every chain stays in a register. */
#define STEP(i) a##i = FMA(a##i, mul, add)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void)
{
    const long iters = 20000000;
    const vec mul = SET1(0.999f), add = SET1(0.001f);
    vec a0 = SET1(0), a1 = SET1(1), a2 = SET1(2), a3 = SET1(3), a4 = SET1(4), a5 = SET1(5);
    vec a6 = SET1(6), a7 = SET1(7), a8 = SET1(8), a9 = SET1(9), a10 = SET1(10), a11 = SET1(11);
    double best = 1e9;
    for (int round = 0; round < 5; round++) {
        double t0 = now_s();
        for (long k = 0; k < iters; k++) {
            STEP(0);
            STEP(1);
            STEP(2);
            STEP(3);
            STEP(4);
            STEP(5);
            STEP(6);
            STEP(7);
            STEP(8);
            STEP(9);
            STEP(10);
            STEP(11);
        }
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    vec all[CHAINS] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11};
    float sink = 0;
    for (int i = 0; i < CHAINS; i++) {
        float lanes[LANES];
        __builtin_memcpy(lanes, &all[i], sizeof(lanes));
        sink += lanes[0];
    }
    double flops = (double)iters * CHAINS * LANES * 2;
    printf("fp32_peak_gflops %.1f isa %s (check %g)\n", flops / best / 1e9, ISA, (double)sink);
    return 0;
}
