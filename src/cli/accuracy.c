/*
 * Printing a plan's precision and accuracy figures (accuracy.h).
 */
#include "cli/accuracy.h"

#include <math.h>
#include <string.h>

#include "common/json.h"

const char *cli_accuracy_source(int source)
{
    switch (source) {
    case ROUSE_ACCURACY_HELD_BACK: return "held back from calibration";
    case ROUSE_ACCURACY_VALIDATE: return "the validation samples";
    case ROUSE_ACCURACY_SAMPLES: return "the calibration samples";
    default: return "none";
    }
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

static int put_num(rouse_buf *b, double d)
{
    /* Infinity (a NaN or overflow where fp32 had a number) is no JSON number. */
    return isfinite(d) ? json_write_double(b, d) : rouse_buf_append_str(b, "null");
}

int cli_accuracy_json(const rouse_accuracy *a, rouse_buf *b)
{
    int rc = 0;
    rc |= rouse_buf_appendf(b, "{\"precision\":\"%s\",\"samples\":%d,\"source\":",
                            rouse_precision_name(a->precision), a->n_samples);
    const char *src = cli_accuracy_source(a->source);
    rc |= json_write_string(b, src, strlen(src));
    rc |= rouse_buf_append_str(b, ",\"outputs\":[");
    for (int i = 0; i < a->n_outputs; i++) {
        const rouse_output_accuracy *o = &a->outputs[i];
        rc |= rouse_buf_append_str(b, i ? ",{\"name\":" : "{\"name\":");
        rc |= json_write_string(b, o->name, strlen(o->name));
        rc |= rouse_buf_append_str(b, ",\"top1_agreement\":");
        rc |= o->top1 >= 0 ? put_num(b, o->top1) : rouse_buf_append_str(b, "null");
        rc |= rouse_buf_append_str(b, ",\"max_abs_error\":");
        rc |= put_num(b, o->max_abs);
        rc |= rouse_buf_append_str(b, ",\"max_rel_error\":");
        rc |= put_num(b, o->max_rel);
        rc |= rouse_buf_append_str(b, "}");
    }
    rc |= rouse_buf_append_str(b, "],\"kept_fp32\":[");
    for (int i = 0; i < a->n_kept_fp32; i++) {
        if (i) rc |= rouse_buf_append_str(b, ",");
        rc |= json_write_string(b, a->kept_fp32[i], strlen(a->kept_fp32[i]));
    }
    rc |= rouse_buf_append_str(b, "]}");
    return rc < 0 ? ROUSE_ENOMEM : 0;
}
