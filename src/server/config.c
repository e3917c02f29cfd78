/*
 * Function configuration parsing and canonical form (see config.h). The
 * field table below is the single place that names a field, its range and
 * its default, so messages, defaults and the canonical form cannot drift.
 */
#include "server/config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/arena.h"
#include "common/json.h"
#include "rouse/engine.h"
#include "store/blob.h"
#include "store/store.h"

typedef struct int_field {
    const char *section; /* NULL at top level */
    const char *key;
    size_t offset;
    int64_t lo, hi, def;
} int_field;

#define F(sec, key, member, lo, hi, def)                                                           \
    {                                                                                              \
        sec, key, offsetof(fn_config, member), lo, hi, def                                         \
    }
static const int_field int_fields[] = {
    F(NULL, "memory_mb", memory_mb, 16, 1 << 20, 512),
    F(NULL, "timeout_ms", timeout_ms, 1, 3600000, 30000),
    F("scaling", "min", scaling.min, 0, 1024, 0),
    F("scaling", "max", scaling.max, 1, 1024, 4),
    F("scaling", "concurrency", scaling.concurrency, 1, 1024, 1),
    F("scaling", "idle_timeout_ms", scaling.idle_timeout_ms, 0, 86400000, 60000),
    F("scaling", "template_ttl_ms", scaling.template_ttl_ms, 0, 86400000 * 7LL, 600000),
    F("scaling", "queue_depth", scaling.queue_depth, 0, 1 << 20, 64),
    F("async", "max_attempts", async.max_attempts, 1, 100, 3),
    F("async", "max_age_ms", async.max_age_ms, 1000, 86400000 * 30LL, 86400000),
    F("async", "max_concurrency", async.max_concurrency, 0, 1 << 16, 0),
    F("async", "queue_limit", async.queue_limit, 1, 10000000, 100000),
    F("async", "result_ttl_ms", async.result_ttl_ms, 100, 86400000 * 30LL, 86400000),
};
#undef F
#define N_INT_FIELDS (sizeof(int_fields) / sizeof(int_fields[0]))

static int64_t *field_ptr(fn_config *c, const int_field *f)
{
    return (int64_t *)((char *)c + f->offset);
}

void fn_config_defaults(fn_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->tenant, sizeof(c->tenant), "default");
    snprintf(c->runtime, sizeof(c->runtime), "onnx");
    for (size_t i = 0; i < N_INT_FIELDS; i++)
        *field_ptr(c, &int_fields[i]) = int_fields[i].def;
}

static const int_field *find_field(const char *section, const char *key)
{
    for (size_t i = 0; i < N_INT_FIELDS; i++) {
        const int_field *f = &int_fields[i];
        if ((section == NULL) != (f->section == NULL)) continue;
        if (section && strcmp(section, f->section) != 0) continue;
        if (strcmp(key, f->key) == 0) return f;
    }
    return NULL;
}

static int parse_int(const json_value *v, const int_field *f, fn_config *out, rouse_errbuf *eb)
{
    int64_t x;
    char name[64];
    snprintf(name, sizeof(name), "%s%s%s", f->section ? f->section : "", f->section ? "." : "",
             f->key);
    if (!json_as_int64(v, &x) || x < f->lo || x > f->hi)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "%s: must be an integer from %" PRId64 " to %" PRId64, name, f->lo,
                             f->hi);
    *field_ptr(out, f) = x;
    return 0;
}

/* A section's fields. In "scaling", template_ttl_caps is what the config
 * says, or else whether a request (not a stored config, which names every
 * field) named template_ttl_ms; "fixed" has no learned window to cap. */
static int parse_section(const json_value *obj, const char *section, bool stored,
                         fn_config *out, rouse_errbuf *eb)
{
    if (obj->type != JSON_OBJECT)
        return rouse_err_set(eb, ROUSE_EINVAL, "%s: must be an object, not %s", section,
                             json_type_name(obj->type));
    bool scaling = strcmp(section, "scaling") == 0, have_ttl = false, have_caps = false;
    for (size_t i = 0; i < obj->u.obj.n; i++) {
        const json_member *m = &obj->u.obj.members[i];
        if (scaling && strcmp(m->key, "template_ttl_caps") == 0) {
            if (m->value->type != JSON_TRUE && m->value->type != JSON_FALSE)
                return rouse_err_set(eb, ROUSE_EINVAL,
                                     "scaling.template_ttl_caps: must be true or false");
            out->scaling.template_ttl_caps = m->value->type == JSON_TRUE;
            have_caps = true;
            continue;
        }
        if (scaling && strcmp(m->key, "template_ttl_ms") == 0) have_ttl = true;
        if (scaling && strcmp(m->key, "keep_alive") == 0) {
            const char *v = json_as_string(m->value);
            if (v && strcmp(v, "learned") == 0)
                out->scaling.keep_alive = FN_KEEP_ALIVE_LEARNED;
            else if (v && strcmp(v, "fixed") == 0)
                out->scaling.keep_alive = FN_KEEP_ALIVE_FIXED;
            else
                return rouse_err_set(eb, ROUSE_EINVAL,
                                     "scaling.keep_alive: must be \"learned\" or \"fixed\"");
            continue;
        }
        const int_field *f = find_field(section, m->key);
        if (!f) return rouse_err_set(eb, ROUSE_EINVAL, "%s.%s: unknown field", section, m->key);
        int rc = parse_int(m->value, f, out, eb);
        if (rc < 0) return rc;
    }
    if (!scaling) return 0;
    if (out->scaling.keep_alive == FN_KEEP_ALIVE_FIXED) {
        if (have_caps && out->scaling.template_ttl_caps)
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "scaling.template_ttl_caps: only with keep_alive \"learned\" "
                                 "(\"fixed\" keeps the template template_ttl_ms, no window)");
        out->scaling.template_ttl_caps = false;
    } else if (!have_caps) {
        out->scaling.template_ttl_caps = have_ttl && !stored;
    }
    return 0;
}

/* "precision": what rouse compile --precision takes. */
static int parse_precision(const json_value *v, fn_config *out, rouse_errbuf *eb)
{
    const char *s = json_as_string(v);
    int p;
    if (!s || rouse_precision_parse(s, &p) < 0)
        return rouse_err_set(eb, ROUSE_EINVAL, "precision: must be \"fp32\", \"bf16\" or \"int8\"");
    out->precision = p;
    return 0;
}

/* "calibration": {"<input name>": "sha256:<blob of a .npy>", ...}, kept
 * sorted by name so that the canonical form does not depend on the order
 * a client wrote. */
static int parse_calibration(const json_value *v, fn_config *out, rouse_errbuf *eb)
{
    if (v->type != JSON_OBJECT)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "calibration: must be an object of input name -> "
                             "blob digest, not %s",
                             json_type_name(v->type));
    if (v->u.obj.n == 0 || v->u.obj.n > FN_CALIB_MAX)
        return rouse_err_set(eb, ROUSE_EINVAL, "calibration: must name 1 to %d inputs",
                             FN_CALIB_MAX);
    out->n_calibration = 0;
    for (size_t i = 0; i < v->u.obj.n; i++) {
        const json_member *m = &v->u.obj.members[i];
        size_t n = strlen(m->key);
        bool ok = n > 0 && n < FN_CALIB_NAME_MAX;
        for (size_t k = 0; ok && k < n; k++)
            ok = (unsigned char)m->key[k] >= 0x20 && m->key[k] != '=' && m->key[k] != '"' &&
                 m->key[k] != '\\';
        if (!ok)
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "calibration: an input name must have 1 to %d characters, "
                                 "without '=', quotes, backslashes or control characters",
                                 FN_CALIB_NAME_MAX - 1);
        const char *d = json_as_string(m->value);
        if (!d || !blob_digest_valid(d))
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "calibration.%s: must be a blob digest \"sha256:<64 lower-case "
                                 "hex>\" (of a .npy)",
                                 m->key);
        int at = out->n_calibration;
        while (at > 0 && strcmp(out->calibration[at - 1].input, m->key) > 0) {
            out->calibration[at] = out->calibration[at - 1];
            at--;
        }
        if (at > 0 && strcmp(out->calibration[at - 1].input, m->key) == 0)
            return rouse_err_set(eb, ROUSE_EINVAL, "calibration.%s: named twice", m->key);
        snprintf(out->calibration[at].input, FN_CALIB_NAME_MAX, "%s", m->key);
        snprintf(out->calibration[at].digest, FN_CONFIG_DIGEST_MAX, "%s", d);
        out->n_calibration++;
    }
    return 0;
}

/* "batching": {"mode", "max_batch", "max_delay_us", "slo_ms"}. */
static int parse_batching(const json_value *v, bool stored, fn_config *out, rouse_errbuf *eb)
{
    if (!v || v->type != JSON_OBJECT)
        return rouse_err_set(eb, ROUSE_EINVAL, "batching: must be an object");
    if (stored && !json_get(v, "mode")) return 0; /* an earlier version's, never batched */
    out->batching.mode = FN_BATCH_FIXED;
    out->batching.max_batch = 8;
    out->batching.max_delay_us = 2000;
    out->batching.slo_ms = 0;
    bool have_slo = false;
    for (size_t i = 0; i < v->u.obj.n; i++) {
        const json_member *m = &v->u.obj.members[i];
        const char *k = m->key;
        if (strcmp(k, "mode") == 0) {
            const char *s = json_as_string(m->value);
            if (s && strcmp(s, "fixed") == 0)
                out->batching.mode = FN_BATCH_FIXED;
            else if (s && strcmp(s, "auto") == 0)
                out->batching.mode = FN_BATCH_AUTO;
            else
                return rouse_err_set(eb, ROUSE_EINVAL,
                                     "batching.mode: must be \"fixed\" or \"auto\"");
            continue;
        }
        int64_t *dst, lo, hi;
        if (strcmp(k, "max_batch") == 0) {
            dst = &out->batching.max_batch, lo = 2, hi = FN_BATCH_MAX;
        } else if (strcmp(k, "max_delay_us") == 0) {
            dst = &out->batching.max_delay_us, lo = 0, hi = 1000000;
        } else if (strcmp(k, "slo_ms") == 0) {
            dst = &out->batching.slo_ms, lo = 1, hi = 3600000;
            have_slo = true;
        } else {
            return rouse_err_set(eb, ROUSE_EINVAL, "batching.%s: unknown field", k);
        }
        int64_t x;
        if (!json_as_int64(m->value, &x) || x < lo || x > hi)
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "batching.%s: must be an integer from %" PRId64 " to %" PRId64, k,
                                 lo, hi);
        *dst = x;
    }
    int64_t b = out->batching.max_batch;
    if (b & (b - 1))
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "batching.max_batch: must be a power of two (the batch sizes "
                             "instances prepare ahead), got %" PRId64,
                             b);
    if (out->batching.mode == FN_BATCH_AUTO && !have_slo)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "batching.slo_ms: missing (mode \"auto\" sizes batches to keep the "
                             "run time per batch under it)");
    if (out->batching.mode == FN_BATCH_FIXED && have_slo)
        return rouse_err_set(eb, ROUSE_EINVAL, "batching.slo_ms: only with mode \"auto\"");
    return 0;
}

/* A text generator's "batching": mode fixed, on an instance of several
 * streams, at most that many prefilled together. */
static int check_gen_batching(const fn_config *c, rouse_errbuf *eb)
{
    if (c->batching.mode == FN_BATCH_OFF) return 0;
    if (c->batching.mode == FN_BATCH_AUTO)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "batching.mode: a text generator takes \"fixed\" only (its decode "
                             "steps run every stream of an instance as one batch already; "
                             "batching sets how its new streams wait for company and are "
                             "prefilled together)");
    if (c->scaling.concurrency < 2)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "batching: a text generator prefills the new streams of one "
                             "instance together, so it needs scaling.concurrency of 2 or more "
                             "(got %" PRId64 ")",
                             c->scaling.concurrency);
    if (c->batching.max_batch > c->scaling.concurrency)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "batching.max_batch: a text generator prefills at most its "
                             "scaling.concurrency (%" PRId64 ") streams together, got %" PRId64,
                             c->scaling.concurrency, c->batching.max_batch);
    return 0;
}

/* Parses a config; `stored` accepts what earlier versions of rouse stored
 * (a "batching" block without a mode, which is skipped) and a request must
 * not send. */
static int parse_config(const char *json, size_t len, bool stored, fn_config *out, rouse_errbuf *eb)
{
    fn_config_defaults(out);
    rouse_arena arena;
    rouse_arena_init(&arena, 0);
    json_value *root;
    int rc = json_parse(json, len, &arena, &root, eb);
    if (rc < 0) {
        rc = rouse_err_wrap(eb, ROUSE_EINVAL, "config is not valid JSON");
        goto out_arena;
    }
    if (root->type != JSON_OBJECT) {
        rc = rouse_err_set(eb, ROUSE_EINVAL, "config must be a JSON object, not %s",
                           json_type_name(root->type));
        goto out_arena;
    }
    bool have_model = false;
    for (size_t i = 0; i < root->u.obj.n; i++) {
        const json_member *m = &root->u.obj.members[i];
        const char *k = m->key;
        if (strcmp(k, "model") == 0) {
            const char *d = json_as_string(m->value);
            if (!d || !blob_digest_valid(d)) {
                rc = rouse_err_set(eb, ROUSE_EINVAL,
                                   "model: must be a blob digest \"sha256:<64 lower-case hex>\"");
                goto out_arena;
            }
            snprintf(out->model, sizeof(out->model), "%s", d);
            have_model = true;
        } else if (strcmp(k, "runtime") == 0) {
            const char *r = json_as_string(m->value);
            if (!r || strcmp(r, "onnx") != 0) {
                rc = rouse_err_set(eb, ROUSE_EINVAL, "runtime: must be \"onnx\"");
                goto out_arena;
            }
        } else if (strcmp(k, "manifest") == 0) {
            /* A label (rouse apply --prune deletes what its manifest no
             * longer lists): a name, like a function's. */
            const char *l = json_as_string(m->value);
            if (!l || !store_name_valid(l)) {
                rc = rouse_err_set(eb, ROUSE_EINVAL,
                                   "manifest: must be a name of 1 to %d characters of a-z, 0-9, "
                                   "'_' and '-', starting with a letter or digit",
                                   STORE_NAME_MAX);
                goto out_arena;
            }
            snprintf(out->manifest, sizeof(out->manifest), "%s", l);
        } else if (strcmp(k, "precision") == 0) {
            if ((rc = parse_precision(m->value, out, eb)) < 0) goto out_arena;
        } else if (strcmp(k, "task") == 0) {
            const char *t = json_as_string(m->value);
            if (t && strcmp(t, "inference") == 0) {
                out->task = FN_TASK_INFERENCE;
            } else if (t && strcmp(t, "text-generation") == 0) {
                out->task = FN_TASK_TEXT_GENERATION;
            } else {
                rc = rouse_err_set(eb, ROUSE_EINVAL,
                                   "task: must be \"inference\" or \"text-generation\"");
                goto out_arena;
            }
        } else if (strcmp(k, "max_context") == 0) {
            if (!json_as_int64(m->value, &out->max_context) || out->max_context < 2 ||
                out->max_context > FN_MAX_CONTEXT_MAX) {
                rc = rouse_err_set(eb, ROUSE_EINVAL,
                                   "max_context: must be an integer from 2 to %d (positions)",
                                   FN_MAX_CONTEXT_MAX);
                goto out_arena;
            }
        } else if (strcmp(k, "tokenizer") == 0) {
            const char *d = json_as_string(m->value);
            const char *v = json_as_string(json_get(m->value, "vocab"));
            const char *g = json_as_string(json_get(m->value, "merges"));
            if (d && blob_digest_valid(d)) {
                snprintf(out->tokenizer, sizeof(out->tokenizer), "%s", d);
            } else if (m->value->type == JSON_OBJECT && m->value->u.obj.n == 2 && v && g &&
                       blob_digest_valid(v) && blob_digest_valid(g)) {
                snprintf(out->vocab, sizeof(out->vocab), "%s", v);
                snprintf(out->merges, sizeof(out->merges), "%s", g);
            } else {
                rc = rouse_err_set(eb, ROUSE_EINVAL,
                                   "tokenizer: must be the digest of a tokenizer.json blob, or "
                                   "{\"vocab\": \"sha256:...\", \"merges\": \"sha256:...\"} "
                                   "(GPT-2's vocab.json and merges.txt)");
                goto out_arena;
            }
        } else if (strcmp(k, "calibration") == 0) {
            if ((rc = parse_calibration(m->value, out, eb)) < 0) goto out_arena;
        } else if (strcmp(k, "scaling") == 0 || strcmp(k, "async") == 0) {
            if ((rc = parse_section(m->value, k, stored, out, eb)) < 0) goto out_arena;
        } else if (strcmp(k, "batching") == 0) {
            if ((rc = parse_batching(m->value, stored, out, eb)) < 0) goto out_arena;
        } else {
            const int_field *f = find_field(NULL, k);
            if (!f) {
                rc = rouse_err_set(eb, ROUSE_EINVAL, "%s: unknown field", k);
                goto out_arena;
            }
            if ((rc = parse_int(m->value, f, out, eb)) < 0) goto out_arena;
        }
    }
    if (!have_model) {
        rc = rouse_err_set(eb, ROUSE_EINVAL, "model: missing (the digest of an uploaded blob)");
        goto out_arena;
    }
    if (out->precision == ROUSE_PRECISION_INT8 && out->n_calibration == 0) {
        rc = rouse_err_set(eb, ROUSE_EINVAL,
                           "calibration: missing (int8 needs calibration samples: "
                           "{\"<input name>\": \"sha256:<blob of a .npy>\"})");
        goto out_arena;
    }
    if (out->precision != ROUSE_PRECISION_INT8 && out->n_calibration > 0) {
        rc = rouse_err_set(eb, ROUSE_EINVAL, "calibration: only with \"precision\": \"int8\"");
        goto out_arena;
    }
    if (out->task != FN_TASK_TEXT_GENERATION && (out->tokenizer[0] || out->vocab[0])) {
        rc = rouse_err_set(eb, ROUSE_EINVAL, "tokenizer: only with \"task\": \"text-generation\"");
        goto out_arena;
    }
    if (out->task != FN_TASK_TEXT_GENERATION && out->max_context > 0) {
        rc = rouse_err_set(eb, ROUSE_EINVAL,
                           "max_context: only with \"task\": \"text-generation\"");
        goto out_arena;
    }
    if (out->task == FN_TASK_TEXT_GENERATION) {
        if (out->max_context == 0) out->max_context = FN_MAX_CONTEXT_DEFAULT;
        /* Streams of one instance decode together, each holding a KV
         * cache of max_context positions (the deploy check weighs them
         * against memory_mb). */
        if (out->scaling.concurrency > FN_GEN_STREAMS_MAX) {
            rc = rouse_err_set(eb, ROUSE_EINVAL,
                               "scaling.concurrency: a text generator decodes at most %d streams "
                               "together in one instance (got %" PRId64 "); scale out with "
                               "scaling.max",
                               FN_GEN_STREAMS_MAX, out->scaling.concurrency);
            goto out_arena;
        }
        if (out->precision != ROUSE_PRECISION_FP32) {
            rc = rouse_err_set(eb, ROUSE_EINVAL, "precision: a text generator runs at fp32");
            goto out_arena;
        }
        /* Its "batching" is how the new streams of one instance are
         * prefilled: together, after waiting up to max_delay_us for
         * company (its decode steps batch every stream already). */
        if (!stored && (rc = check_gen_batching(out, eb)) < 0) goto out_arena;
    }
    if (out->scaling.min > out->scaling.max) {
        rc =
            rouse_err_set(eb, ROUSE_EINVAL, "scaling.min: %" PRId64 " exceeds scaling.max %" PRId64,
                          out->scaling.min, out->scaling.max);
        goto out_arena;
    }
    rc = 0;
out_arena:
    rouse_arena_fini(&arena);
    return rc;
}

int fn_config_parse(const char *json, size_t len, fn_config *out, rouse_errbuf *eb)
{
    return parse_config(json, len, false, out, eb);
}

int fn_config_load(const char *json, size_t len, fn_config *out, rouse_errbuf *eb)
{
    return parse_config(json, len, true, out, eb);
}

/* Whether every field of a section holds its default: the "async" section
 * is then left out of the canonical form, so that configs stored before it
 * existed still compare equal to the same config sent again. */
static bool section_default(const fn_config *c, const char *sec)
{
    for (size_t i = 0; i < N_INT_FIELDS; i++) {
        const int_field *f = &int_fields[i];
        if (f->section && strcmp(f->section, sec) == 0 &&
            *(const int64_t *)((const char *)c + f->offset) != f->def)
            return false;
    }
    return true;
}

/* Closes section `open`, after the fields of it that are not integers:
 * scaling.keep_alive only when not the default ("learned"), and
 * scaling.template_ttl_caps only when true, so that configs stored before
 * they existed keep their canonical form (a redeploy of the same config
 * makes no version). */
static int close_section(const fn_config *c, const char *open, rouse_buf *out)
{
    int rc = 0;
    if (strcmp(open, "scaling") == 0 && c->scaling.keep_alive == FN_KEEP_ALIVE_FIXED)
        rc = rouse_buf_append_str(out, ",\"keep_alive\":\"fixed\"");
    if (rc == 0 && strcmp(open, "scaling") == 0 && c->scaling.template_ttl_caps)
        rc = rouse_buf_append_str(out, ",\"template_ttl_caps\":true");
    return rc == 0 ? rouse_buf_append_str(out, "}") : rc;
}

int fn_config_write(const fn_config *c, rouse_buf *out)
{
    int rc = rouse_buf_appendf(out, "{\"model\":\"%s\",\"runtime\":\"%s\"", c->model, c->runtime);
    const char *open = NULL;
    bool skip_async = section_default(c, "async");
    for (size_t i = 0; rc == 0 && i < N_INT_FIELDS; i++) {
        const int_field *f = &int_fields[i];
        const char *sec = f->section;
        if (skip_async && sec && strcmp(sec, "async") == 0) continue;
        if (open && (!sec || strcmp(sec, open) != 0)) {
            rc = close_section(c, open, out);
            open = NULL;
        }
        if (rc == 0 && sec && !open) {
            rc = rouse_buf_appendf(out, ",\"%s\":{", sec);
            open = sec;
            if (rc == 0)
                rc = rouse_buf_appendf(out, "\"%s\":%" PRId64, f->key,
                                       *(const int64_t *)((const char *)c + f->offset));
            continue;
        }
        if (rc == 0)
            rc = rouse_buf_appendf(out, ",\"%s\":%" PRId64, f->key,
                                   *(const int64_t *)((const char *)c + f->offset));
    }
    if (rc == 0 && open) rc = close_section(c, open, out);
    /* Only when set, so that configs written before the label existed keep
     * their canonical form (and no redeploy makes a version for nothing). */
    /* Likewise only when not fp32 (the default). */
    if (rc == 0 && c->precision != ROUSE_PRECISION_FP32)
        rc = rouse_buf_appendf(out, ",\"precision\":\"%s\"", rouse_precision_name(c->precision));
    for (int i = 0; rc == 0 && i < c->n_calibration; i++)
        rc = rouse_buf_appendf(out, "%s\"%s\":\"%s\"%s", i ? "," : ",\"calibration\":{",
                               c->calibration[i].input, c->calibration[i].digest,
                               i + 1 == c->n_calibration ? "}" : "");
    if (rc == 0 && c->task == FN_TASK_TEXT_GENERATION)
        rc = rouse_buf_appendf(out, ",\"task\":\"text-generation\",\"max_context\":%" PRId64,
                               c->max_context);
    if (rc == 0 && c->tokenizer[0])
        rc = rouse_buf_appendf(out, ",\"tokenizer\":\"%s\"", c->tokenizer);
    if (rc == 0 && c->vocab[0])
        rc = rouse_buf_appendf(out, ",\"tokenizer\":{\"vocab\":\"%s\",\"merges\":\"%s\"}",
                               c->vocab, c->merges);
    /* Only when on, with its mode always named (fn_config_load tells it so
     * from what earlier versions stored). */
    if (rc == 0 && c->batching.mode != FN_BATCH_OFF)
        rc = rouse_buf_appendf(out,
                               ",\"batching\":{\"mode\":\"%s\",\"max_batch\":%" PRId64
                               ",\"max_delay_us\":%" PRId64,
                               c->batching.mode == FN_BATCH_AUTO ? "auto" : "fixed",
                               c->batching.max_batch, c->batching.max_delay_us);
    if (rc == 0 && c->batching.mode == FN_BATCH_AUTO)
        rc = rouse_buf_appendf(out, ",\"slo_ms\":%" PRId64, c->batching.slo_ms);
    if (rc == 0 && c->batching.mode != FN_BATCH_OFF) rc = rouse_buf_append_str(out, "}");
    if (rc == 0 && c->manifest[0]) rc = rouse_buf_appendf(out, ",\"manifest\":\"%s\"", c->manifest);
    if (rc == 0) rc = rouse_buf_append_str(out, "}");
    return rc;
}

void fn_config_set_tenant(fn_config *c, const char *fn_key)
{
    const char *colon = fn_key ? strchr(fn_key, ':') : NULL;
    if (colon && (size_t)(colon - fn_key) < sizeof(c->tenant))
        snprintf(c->tenant, sizeof(c->tenant), "%.*s", (int)(colon - fn_key), fn_key);
    else
        snprintf(c->tenant, sizeof(c->tenant), "default");
}
