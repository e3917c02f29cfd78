/*
 * Test support: one HTTP request to a serve under test with its status,
 * and a function deployed from model bytes (uploaded as a blob, then PUT
 * with extra config members). Test code: failures return -1 with a line
 * on stderr.
 */
#ifndef ROUSE_TESTS_FN_DEPLOY_H
#define ROUSE_TESTS_FN_DEPLOY_H

#include <stddef.h>

#include "cli/http_client.h"

/* method path with body[0..len) (may be NULL): the HTTP status (r holds the
 * answer; the caller frees it with http_response_fini), or -1. */
int test_request(const http_target *t, const char *method, const char *path, const void *body,
                 size_t len, http_response *r);

/* Uploads model[0..len) and PUTs /v1/functions/name with it and `extra`
 * (config members as JSON, may be ""): the PUT's status (r holds its
 * answer), or -1. digest (80 bytes, may be NULL) gets the blob's digest. */
int test_deploy_model(const http_target *t, const char *name, const void *model, size_t len,
                      const char *extra, char *digest, http_response *r);

/* The index of the largest value of the output named "logits" in an OIP
 * JSON answer (digits and the classifiers), or -1. */
int test_logits_argmax(const http_response *r);

/* The ten samples samples/digit-0.json .. digit-9.json of the digits
 * example in digits_dir as NUL-terminated strings (the caller frees each):
 * 0, or -1 (nothing left allocated). */
int test_digit_samples(const char *digits_dir, char *out[10]);

/* Uploads the file at path as a blob: 0 with its digest in digest (80
 * bytes), or -1. */
int test_upload_file(const http_target *t, const char *path, char *digest);

#endif
