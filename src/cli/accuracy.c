/*
 * Printing a plan's precision and accuracy figures (accuracy.h).
 */
#include "cli/accuracy.h"

#include <stdlib.h>

const char *cli_accuracy_source(int source)
{
    return rouse_accuracy_source_name(source);
}

void cli_accuracy_print(FILE *out, const rouse_accuracy *a)
{
    fprintf(out, "precision: %s\n", rouse_precision_name(a->precision));
    if (a->source == ROUSE_ACCURACY_NONE) {
        if (a->precision != ROUSE_PRECISION_FP32)
            fprintf(out, "accuracy against fp32: not measured (no samples given)\n");
    } else {
        fprintf(out, "accuracy against fp32 on %d sample%s (%s):\n", a->n_samples,
                a->n_samples == 1 ? "" : "s", cli_accuracy_source(a->source));
        for (int i = 0; i < a->n_outputs; i++) {
            const rouse_output_accuracy *o = &a->outputs[i];
            fprintf(out, "  %-20s ", o->name);
            if (o->top1 >= 0)
                fprintf(out, "top-1 agreement %6.2f%%  ", 100.0 * o->top1);
            else
                fprintf(out, "top-1 agreement    n/a   ");
            fprintf(out, "max abs error %.4g  max rel error %.4g\n", o->max_abs, o->max_rel);
        }
    }
    if (a->precision == ROUSE_PRECISION_INT8 || a->n_kept_fp32) {
        fprintf(out, "layers kept in fp32: %s", a->n_kept_fp32 ? "" : "none");
        for (int i = 0; i < a->n_kept_fp32; i++)
            fprintf(out, "%s%s", i ? ", " : "", a->kept_fp32[i]);
        fprintf(out, "\n");
    }
}

int cli_accuracy_json(const rouse_accuracy *a, rouse_buf *b)
{
    char *j = rouse_accuracy_json(a);
    int rc = j ? rouse_buf_append_str(b, j) : ROUSE_ENOMEM;
    free(j);
    return rc < 0 ? ROUSE_ENOMEM : 0;
}
