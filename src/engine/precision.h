/*
 * Comparing a lower-precision run with fp32, output by output, sample by
 * sample (precision.c): the figures rouse_accuracy reports.
 */
#ifndef ROUSE_ENGINE_PRECISION_H
#define ROUSE_ENGINE_PRECISION_H

#include <stdint.h>

#include "rouse/engine.h"

/* Running totals for the outputs of one model. Caller-owned: eng_acc_init,
 * then eng_acc_add per output and sample, eng_acc_finish, eng_acc_fini. */
typedef struct eng_acc {
    int precision;
    int source;                  /* ROUSE_ACCURACY_* */
    int n_samples;               /* samples compared */
    int n;                       /* outputs */
    rouse_output_accuracy *out;  /* n entries; names borrowed from the model */
    double *ref_max;             /* largest |fp32| per output */
    int64_t *rows, *agree;       /* classifier rows seen, and agreeing on top-1 */
} eng_acc;

/* ROUSE_ENOMEM or 0. */
int eng_acc_init(eng_acc *a, const rouse_model *m);
/* Adds output i of one sample: ref from fp32, got from the lower precision.
 * ROUSE_EINTERNAL when their types or shapes differ. */
int eng_acc_add(eng_acc *a, int i, const rouse_tensor *ref, const rouse_tensor *got,
                rouse_errbuf *eb);
/* Computes top-1 and the relative errors from the totals. */
void eng_acc_finish(eng_acc *a);
void eng_acc_fini(eng_acc *a);

#endif
