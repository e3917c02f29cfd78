/*
 * Function configuration (the body of PUT /v1/functions/{name}): parsing
 * with field-level error messages, defaults (docs/architecture.md) and the canonical
 * JSON stored in the registry, so that two configs that mean the same thing
 * compare equal byte for byte.
 */
#ifndef ROUSE_SERVER_CONFIG_H
#define ROUSE_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "rouse/err.h"

#define FN_CONFIG_DIGEST_MAX 72
#define FN_CALIB_MAX 8       /* calibration entries (model inputs) at most */
#define FN_CALIB_NAME_MAX 64 /* an input name's bytes, with its NUL */

typedef struct fn_config {
    char model[FN_CONFIG_DIGEST_MAX]; /* "sha256:<hex>" */
    char runtime[16];                 /* "onnx" */
    int64_t memory_mb;
    int64_t timeout_ms;
    struct {
        int64_t min, max, concurrency, idle_timeout_ms, template_ttl_ms, queue_depth;
        /* "learned" (FN_KEEP_ALIVE_LEARNED, the default) or "fixed": when the
         * template is dropped and started again (keepalive_policy.h). */
        int keep_alive;
        /* Whether template_ttl_ms caps the learned window too (not only the
         * fallback's TTL): "scaling.template_ttl_caps" when given, else
         * whether a request named template_ttl_ms (a stored config without
         * the key: false, as it ran before the key existed). Always false
         * under "fixed", where template_ttl_ms is the whole policy. */
        bool template_ttl_caps;
    } scaling;
    int precision; /* rouse_precision the plan is compiled at: 0 (fp32, the default) */
    /* int8: per model input, the blob of a .npy with its calibration
     * samples stacked on the batch axis; sorted by input name. */
    struct {
        char input[FN_CALIB_NAME_MAX];
        char digest[FN_CONFIG_DIGEST_MAX];
    } calibration[FN_CALIB_MAX];
    int n_calibration;
    /* "task": FN_TASK_INFERENCE (OIP v2, the default) or
     * FN_TASK_TEXT_GENERATION (the /openai/v1/ endpoints; the model a decoder
     * with a KV cache), with max_context positions (0 unless a generator;
     * a generator's default 1024). */
    int task;
    int64_t max_context;
    /* A generator's tokenizer, as blob digests ("" when absent: bytes are
     * the tokens): a Hugging Face tokenizer.json, or GPT-2's vocab.json and
     * merges.txt. */
    char tokenizer[FN_CONFIG_DIGEST_MAX];
    char vocab[FN_CONFIG_DIGEST_MAX], merges[FN_CONFIG_DIGEST_MAX];
    char manifest[64]; /* the label of the manifest that declared it (rouse apply), or "" */
    /* Asynchronous jobs (docs/architecture.md, "Asynchronous jobs"):
     * max_concurrency 0 means scaling.max x scaling.concurrency. */
    struct {
        int64_t max_attempts, max_age_ms, max_concurrency, queue_limit, result_ttl_ms;
    } async;
    /* The tenant the function belongs to (server/auth.h), for the pool and
     * the sandbox (a uid and pid namespace per tenant). Not part of the
     * JSON: set from the function's key by whoever loads the config
     * (fn_config_set_tenant); "default" until then. */
    char tenant[64];
    /* Dynamic batching (docs/architecture.md, "Dynamic batching"): mode
     * FN_BATCH_OFF when the config has no "batching" block. */
    struct {
        int mode;
        int64_t max_batch;    /* a power of two, 2..FN_BATCH_MAX */
        int64_t max_delay_us; /* the longest a request waits for others */
        int64_t slo_ms;       /* auto: the p99 run time per batch aimed at */
    } batching;
} fn_config;

enum { FN_KEEP_ALIVE_LEARNED = 0, FN_KEEP_ALIVE_FIXED = 1 };
enum { FN_TASK_INFERENCE = 0, FN_TASK_TEXT_GENERATION = 1 };
#define FN_MAX_CONTEXT_DEFAULT 1024
#define FN_MAX_CONTEXT_MAX 65536
/* A generator's scaling.concurrency: streams one instance decodes together
 * (worker/gen_streams.h; GEN_STREAMS_MAX there). */
#define FN_GEN_STREAMS_MAX 32
enum { FN_BATCH_OFF = 0, FN_BATCH_FIXED = 1, FN_BATCH_AUTO = 2 };
#define FN_BATCH_MAX 256

/* The defaults of every field (model empty). */
void fn_config_defaults(fn_config *c);

/* Sets c->tenant from the key the function is stored under ("name" or
 * "tenant:name", store/store.h). */
void fn_config_set_tenant(fn_config *c, const char *fn_key);

/* Parses a config document. Every field is optional except "model"; unknown
 * fields, wrong types and out-of-range values are ROUSE_EINVAL with a
 * message naming the field ("scaling.max: must be an integer from 1 to 1024").
 * "batching" is {"mode": "fixed"|"auto", "max_batch": N, "max_delay_us": D,
 * "slo_ms": S} (mode fixed by default; auto needs slo_ms, fixed refuses it);
 * whether the model can batch is the deploy check's.
 * "precision" is "fp32", "bf16" or "int8"; int8 needs "calibration" (an
 * object of input name -> blob digest), which no other precision takes. The digest's format is
 * checked here, its existence by the caller. */
int fn_config_parse(const char *json, size_t len, fn_config *out, rouse_errbuf *eb);

/* Parses a config as stored in the registry: like fn_config_parse, but a
 * "batching" block without "mode" (stored by earlier versions, which
 * accepted it and never batched; the canonical form always names the mode)
 * is skipped. */
int fn_config_load(const char *json, size_t len, fn_config *out, rouse_errbuf *eb);

/* Appends the canonical JSON of c (fixed key order, every field). */
int fn_config_write(const fn_config *c, rouse_buf *out);

#endif
