/*
 * Function configuration (the body of PUT /v1/functions/{name}): parsing
 * with field-level error messages, defaults (docs/architecture.md) and the canonical
 * JSON stored in the registry, so that two configs that mean the same thing
 * compare equal byte for byte.
 */
#ifndef ROUSE_SERVER_CONFIG_H
#define ROUSE_SERVER_CONFIG_H

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
} fn_config;

enum { FN_KEEP_ALIVE_LEARNED = 0, FN_KEEP_ALIVE_FIXED = 1 };
enum { FN_TASK_INFERENCE = 0, FN_TASK_TEXT_GENERATION = 1 };
#define FN_MAX_CONTEXT_DEFAULT 1024
#define FN_MAX_CONTEXT_MAX 65536

/* The defaults of every field (model empty). */
void fn_config_defaults(fn_config *c);

/* Sets c->tenant from the key the function is stored under ("name" or
 * "tenant:name", store/store.h). */
void fn_config_set_tenant(fn_config *c, const char *fn_key);

/* Parses a config document. Every field is optional except "model"; unknown
 * fields, wrong types, out-of-range values and a "batching" block ("batching:
 * not supported yet") are ROUSE_EINVAL with a
 * message naming the field ("scaling.max: must be an integer from 1 to 1024").
 * "precision" is "fp32", "bf16" or "int8"; int8 needs "calibration" (an
 * object of input name -> blob digest), which no other precision takes. The digest's format is
 * checked here, its existence by the caller. */
int fn_config_parse(const char *json, size_t len, fn_config *out, rouse_errbuf *eb);

/* Parses a config as stored in the registry: like fn_config_parse, but a
 * "batching" block (stored by earlier versions, never implemented) is
 * skipped instead of refused. */
int fn_config_load(const char *json, size_t len, fn_config *out, rouse_errbuf *eb);

/* Appends the canonical JSON of c (fixed key order, every field). */
int fn_config_write(const fn_config *c, rouse_buf *out);

#endif
