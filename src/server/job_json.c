/*
 * JSON documents of jobs and batches (job_json.h).
 */
#include "server/job_json.h"

#include <inttypes.h>
#include <string.h>

#include "common/json.h"

/* A function as its tenant names it: the registry's key is "tenant:name"
 * for tenants other than the default one (store/store.h). */
static const char *fn_name(const char *key)
{
    const char *colon = strchr(key, ':');
    return colon ? colon + 1 : key;
}

static int str_field(rouse_buf *b, const char *key, const char *v)
{
    int rc = rouse_buf_appendf(b, ",\"%s\":", key);
    if (rc == 0) rc = json_write_string(b, v, strlen(v));
    return rc;
}

static int time_field(rouse_buf *b, const char *key, int64_t ms)
{
    if (ms <= 0) return 0;
    return rouse_buf_appendf(b, ",\"%s\":%" PRId64, key, ms);
}

/* Whether a stored reply is a JSON document that can be embedded as is. */
static bool embeddable(const job_info *j)
{
    if (!j->result || j->result_len == 0 || j->result_json_len >= 0) return false;
    if (j->result_type[0] && !strstr(j->result_type, "json")) return false;
    size_t i = 0;
    while (i < j->result_len && (j->result[i] == ' ' || j->result[i] == '\n'))
        i++;
    return i < j->result_len && (j->result[i] == '{' || j->result[i] == '[');
}

int job_json_write(const job_info *j, rouse_buf *b)
{
    int rc = rouse_buf_appendf(b, "{\"id\":\"%" PRId64 "\"", j->id);
    if (rc == 0) rc = str_field(b, "function", fn_name(j->function));
    if (rc == 0) rc = rouse_buf_appendf(b, ",\"version\":%" PRId64, j->version);
    const char *st = job_state_name(j->state);
    if (rc == 0) rc = str_field(b, "status", st ? st : "unknown");
    if (rc == 0) rc = rouse_buf_appendf(b, ",\"attempts\":%d", j->attempts);
    if (rc == 0) rc = time_field(b, "created_ms", j->created_ms);
    if (rc == 0) rc = time_field(b, "started_ms", j->started_ms);
    if (rc == 0) rc = time_field(b, "finished_ms", j->finished_ms);
    if (rc == 0 && j->state == JOB_QUEUED) rc = time_field(b, "not_before_ms", j->run_after_ms);
    if (rc == 0) rc = time_field(b, "expires_ms", j->expires_ms);
    if (rc == 0 && j->status > 0) rc = rouse_buf_appendf(b, ",\"http_status\":%d", j->status);
    if (rc == 0 && j->last_error[0]) rc = str_field(b, "last_error", j->last_error);
    if (rc == 0 && j->batch > 0)
        rc = rouse_buf_appendf(b, ",\"batch\":\"%" PRId64 "\",\"batch_index\":%" PRId64, j->batch,
                               j->batch_index);
    if (rc == 0 && j->callback[0]) {
        rc = rouse_buf_append_str(b, ",\"callback\":{\"url\":");
        if (rc == 0) rc = json_write_string(b, j->callback, strlen(j->callback));
        if (rc == 0) rc = str_field(b, "status", job_cb_state_name(j->cb_state));
        if (rc == 0) rc = rouse_buf_appendf(b, ",\"attempts\":%d", j->cb_attempts);
        if (rc == 0 && j->cb_error[0]) rc = str_field(b, "error", j->cb_error);
        if (rc == 0) rc = rouse_buf_append_str(b, "}");
    }
    if (rc == 0 && j->result_digest[0]) rc = str_field(b, "response_blob", j->result_digest);
    if (rc == 0 && embeddable(j)) {
        size_t len = j->result_len;
        while (len > 0 && (j->result[len - 1] == '\n' || j->result[len - 1] == ' '))
            len--;
        rc = rouse_buf_appendf(
            b, ",\"%s\":", j->state == JOB_SUCCEEDED ? "response" : "error_response");
        if (rc == 0) rc = rouse_buf_append(b, j->result, len);
    } else if (rc == 0 && j->result && j->result_len > 0 && j->result_type[0]) {
        rc = str_field(b, "response_content_type", j->result_type);
    }
    if (rc == 0) rc = rouse_buf_append_str(b, "}");
    return rc;
}

int batch_json_write(const batch_info *bi, rouse_buf *b)
{
    int64_t finished =
        bi->counts[JOB_SUCCEEDED] + bi->counts[JOB_FAILED] + bi->counts[JOB_CANCELLED];
    bool done = bi->output_digest[0] != '\0';
    int rc = rouse_buf_appendf(b, "{\"id\":\"%" PRId64 "\"", bi->id);
    if (rc == 0) rc = str_field(b, "function", fn_name(bi->function));
    if (rc == 0) rc = rouse_buf_appendf(b, ",\"version\":%" PRId64, bi->version);
    if (rc == 0) rc = str_field(b, "status", done ? "completed" : "in_progress");
    if (rc == 0) rc = str_field(b, "input", bi->input_digest);
    if (rc == 0) rc = rouse_buf_appendf(b, ",\"total\":%" PRId64, bi->n_items);
    /* Items are created in chunks after the POST: how many exist so far. */
    if (rc == 0) rc = rouse_buf_appendf(b, ",\"created\":%" PRId64, bi->n_created);
    if (rc == 0) rc = rouse_buf_append_str(b, ",\"counts\":{");
    for (int k = 0; rc == 0 && k < JOB_STATE_COUNT; k++)
        rc = rouse_buf_appendf(b, "%s\"%s\":%" PRId64, k ? "," : "", job_state_name(k),
                               bi->counts[k]);
    if (rc == 0)
        rc = rouse_buf_appendf(b, "},\"progress\":%.4f",
                               bi->n_items > 0 ? (double)finished / (double)bi->n_items : 1.0);
    if (rc == 0) rc = time_field(b, "created_ms", bi->created_ms);
    if (rc == 0) rc = time_field(b, "finished_ms", bi->finished_ms);
    if (rc == 0) rc = time_field(b, "expires_ms", bi->expires_ms);
    if (rc == 0 && done) rc = str_field(b, "output", bi->output_digest);
    if (rc == 0 && done) rc = str_field(b, "errors", bi->errors_digest);
    if (rc == 0) rc = rouse_buf_append_str(b, "}");
    return rc;
}
