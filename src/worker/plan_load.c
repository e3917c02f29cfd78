/*
 * Loading a function's model at its precision through the plan cache (see
 * plan_load.h).
 */
#include "worker/plan_load.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/sha256.h"

static bool key_valid(const char *k)
{
    size_t n = k ? strlen(k) : 0;
    for (size_t i = 0; i < n; i++)
        if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f'))) return false;
    return n > 0 && n <= 64;
}

int worker_plan_path(const char *plan_cache, const char *sha256_hex, const worker_precision *wp,
                     char *out, size_t len)
{
    int precision = wp ? wp->precision : ROUSE_PRECISION_FP32;
    const char *name = rouse_precision_name(precision);
    if (!name || !rouse_sha256_hex_valid(sha256_hex)) return ROUSE_EINVAL;
    if (precision == ROUSE_PRECISION_INT8 && !key_valid(wp->calib_key)) return ROUSE_EINVAL;
    int n =
        precision == ROUSE_PRECISION_FP32 ? snprintf(out, len, "%s/%s.plan", plan_cache, sha256_hex)
        : precision == ROUSE_PRECISION_INT8
            ? snprintf(out, len, "%s/%s-%s-%s.plan", plan_cache, sha256_hex, name, wp->calib_key)
            : snprintf(out, len, "%s/%s-%s.plan", plan_cache, sha256_hex, name);
    return n < 0 || (size_t)n >= len ? ROUSE_ERANGE : 0;
}

/* The plan at path when it opens and was compiled from the bytes hex names. */
static rouse_model *open_if_of(const char *path, const char *hex)
{
    rouse_model *m = NULL;
    rouse_errbuf ignored;
    if (rouse_model_open_plan(path, &m, &ignored) < 0 || !m) return NULL;
    uint8_t sha[32];
    char got[65];
    if (rouse_model_source_sha256(m, sha) == 0) {
        rouse_sha256_hex(sha, got);
        if (strcmp(got, hex) == 0) return m;
    }
    rouse_model_destroy(m);
    return NULL;
}

/* Compiles src at wp into path: int8 from its calibration samples. */
static int compile_at(rouse_model *src, const char *path, const worker_precision *wp,
                      rouse_errbuf *eb)
{
    rouse_compile_options o = {.precision = wp->precision};
    rouse_samples *s = NULL;
    int rc = 0;
    if (wp->precision == ROUSE_PRECISION_INT8) {
        if (wp->n_calib <= 0)
            return rouse_err_set(eb, ROUSE_EINVAL, "calibration: int8 needs calibration samples");
        if ((rc = rouse_samples_create(src, &s, eb)) < 0) return rc;
        if ((rc = rouse_samples_add_stacked(s, src, wp->calib, wp->n_calib, eb)) < 0) {
            rouse_samples_destroy(s);
            return rouse_err_wrap(eb, rc, "calibration");
        }
        o.calibration = s;
    }
    rc = rouse_model_compile_with(src, path, &o, eb);
    rouse_samples_destroy(s);
    return rc;
}

int worker_load_plan(const char *onnx_path, const char *sha256_hex, const char *plan_cache,
                     const worker_precision *wp, rouse_model **out, int *from_cache,
                     rouse_errbuf *eb)
{
    *out = NULL;
    *from_cache = 0;
    int precision = wp ? wp->precision : ROUSE_PRECISION_FP32;
    if (precision == ROUSE_PRECISION_FP32)
        return plan_cache ? rouse_model_load_cached_known(onnx_path, sha256_hex, plan_cache, out,
                                                          from_cache, eb)
                          : rouse_model_load(onnx_path, out, eb);
    if (!rouse_precision_name(precision))
        return rouse_err_set(eb, ROUSE_EINVAL, "unknown precision %d", precision);
    if (!plan_cache)
        return rouse_err_set(eb, ROUSE_EINVAL, "%s needs a plan cache",
                             rouse_precision_name(precision));
    char path[4096];
    /* A known digest opens the plan without reading the model. */
    if (sha256_hex && worker_plan_path(plan_cache, sha256_hex, wp, path, sizeof(path)) == 0 &&
        (*out = open_if_of(path, sha256_hex)) != NULL) {
        *from_cache = 1;
        return 0;
    }
    rouse_model *src = NULL;
    int rc = rouse_model_load(onnx_path, &src, eb);
    if (rc < 0) return rc;
    uint8_t sha[32];
    char hex[65];
    if ((rc = rouse_model_source_sha256(src, sha)) < 0) {
        rouse_model_destroy(src);
        return rouse_err_set(eb, rc, "cannot hash %s", onnx_path);
    }
    rouse_sha256_hex(sha, hex);
    if ((rc = worker_plan_path(plan_cache, hex, wp, path, sizeof(path))) < 0) {
        rouse_model_destroy(src);
        return rc == ROUSE_EINVAL && precision == ROUSE_PRECISION_INT8
                   ? rouse_err_set(eb, rc, "calibration: int8 needs calibration samples")
                   : rouse_err_set(eb, rc, "plan cache path too long");
    }
    if ((*out = open_if_of(path, hex)) != NULL) {
        rouse_model_destroy(src);
        *from_cache = 1;
        return 0;
    }
    if (mkdir(plan_cache, 0755) < 0 && errno != EEXIST) {
        rouse_model_destroy(src);
        return rouse_err_set(eb, ROUSE_EIO, "%s: %s", plan_cache, strerror(errno));
    }
    rc = compile_at(src, path, wp, eb);
    rouse_model_destroy(src);
    if (rc < 0) return rc;
    return rouse_model_open_plan(path, out, eb);
}
