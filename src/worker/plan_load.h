/*
 * A function's model through the plan cache, at the precision its config
 * names. An fp32 plan is <cache>/<hex>.plan (as it always was); a plan at
 * another precision is <cache>/<hex>-<precision>.plan, and an int8 plan
 * <cache>/<hex>-int8-<key>.plan where key names its calibration samples,
 * so that plans of one model at two precisions, or from two calibration
 * sets, never take each other's place.
 */
#ifndef ROUSE_WORKER_PLAN_LOAD_H
#define ROUSE_WORKER_PLAN_LOAD_H

#include <stddef.h>

#include "rouse/engine.h"

/* What a plan is compiled at. */
typedef struct worker_precision {
    int precision;             /* rouse_precision; 0 is fp32 */
    const rouse_tensor *calib; /* int8: per model input, samples stacked on axis 0 */
    int n_calib;
    const char *calib_key; /* int8: hex naming the calibration set (names and bytes) */
} worker_precision;

/* The plan file of the model with sha256 hex at wp (NULL: fp32): 0, or
 * ROUSE_EINVAL (bad hex, precision or key) / ROUSE_ERANGE (too long). */
int worker_plan_path(const char *plan_cache, const char *sha256_hex, const worker_precision *wp,
                     char *out, size_t len);

/* Loads onnx_path at precision through plan_cache: a valid cached plan of
 * those bytes opens (without reading the .onnx when sha256_hex is given),
 * anything else compiles one first. fp32 is rouse_model_load_cached_known;
 * another precision needs a plan_cache (ROUSE_EINVAL without); int8 needs
 * calibration samples, and samples that do not fit the model's inputs are
 * ROUSE_EINVAL naming the input. */
int worker_load_plan(const char *onnx_path, const char *sha256_hex, const char *plan_cache,
                     const worker_precision *wp, rouse_model **out, int *from_cache,
                     rouse_errbuf *eb);

#endif
