/*
 * The JSON documents of the asynchronous API: a job (GET /v1/jobs/{id}, and
 * the body POSTed to its Callback-Url) and a batch (GET /v1/batches/{id}).
 */
#ifndef ROUSE_SERVER_JOB_JSON_H
#define ROUSE_SERVER_JOB_JSON_H

#include "common/buf.h"
#include "store/jobs.h"

/* Appends a job: id, function, version, status, attempts, times, the last
 * error, the callback's delivery, its batch; and when it succeeded and
 * j->result holds a JSON reply, that OIP response as "response" (a binary
 * reply or one kept in the blob store is named instead: "response_blob",
 * "response_content_type"). */
int job_json_write(const job_info *j, rouse_buf *out);

/* Appends a batch: counts by state, progress, output and errors blobs. */
int batch_json_write(const batch_info *b, rouse_buf *out);

#endif
