/*
 * A plan's accuracy figures as JSON (rouse_accuracy_json, rouse/engine.h):
 * the one form `rouse inspect --json`, the deploy answer and
 * GET /v1/functions/{name} all show.
 */
#include <math.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "rouse/engine.h"

const char *rouse_accuracy_source_name(int source)
{
    switch (source) {
    case ROUSE_ACCURACY_HELD_BACK: return "held back from calibration";
    case ROUSE_ACCURACY_VALIDATE: return "the validation samples";
    case ROUSE_ACCURACY_SAMPLES: return "the calibration samples";
    default: return "none";
    }
}

static int put_num(rouse_buf *b, double d)
{
    /* Infinity (a NaN or overflow where fp32 had a number) is no JSON number. */
    return isfinite(d) ? json_write_double(b, d) : rouse_buf_append_str(b, "null");
}

static int put_str(rouse_buf *b, const char *s)
{
    return json_write_string(b, s ? s : "", s ? strlen(s) : 0);
}

char *rouse_accuracy_json(const rouse_accuracy *a)
{
    rouse_buf b;
    rouse_buf_init(&b);
    int rc = 0;
    const char *prec = rouse_precision_name(a->precision);
    rc |= rouse_buf_append_str(&b, "{\"precision\":");
    rc |= put_str(&b, prec ? prec : "unknown");
    rc |= rouse_buf_appendf(&b, ",\"samples\":%d,\"source\":", a->n_samples);
    rc |= put_str(&b, rouse_accuracy_source_name(a->source));
    rc |= rouse_buf_append_str(&b, ",\"outputs\":[");
    for (int i = 0; i < a->n_outputs; i++) {
        const rouse_output_accuracy *o = &a->outputs[i];
        rc |= rouse_buf_append_str(&b, i ? ",{\"name\":" : "{\"name\":");
        rc |= put_str(&b, o->name);
        rc |= rouse_buf_append_str(&b, ",\"top1_agreement\":");
        rc |= o->top1 >= 0 ? put_num(&b, o->top1) : rouse_buf_append_str(&b, "null");
        rc |= rouse_buf_append_str(&b, ",\"max_abs_error\":");
        rc |= put_num(&b, o->max_abs);
        rc |= rouse_buf_append_str(&b, ",\"max_rel_error\":");
        rc |= put_num(&b, o->max_rel);
        rc |= rouse_buf_append_str(&b, "}");
    }
    rc |= rouse_buf_append_str(&b, "],\"kept_fp32\":[");
    for (int i = 0; i < a->n_kept_fp32; i++) {
        if (i) rc |= rouse_buf_append_str(&b, ",");
        rc |= put_str(&b, a->kept_fp32[i]);
    }
    rc |= rouse_buf_append_str(&b, "]}");
    if (rc < 0) {
        rouse_buf_fini(&b);
        return NULL;
    }
    return rouse_buf_detach(&b, NULL);
}
