/*
 * Model upload for deploy and apply: the blob is named by its SHA-256, and
 * it is sent only when HEAD /v1/blobs/{digest} says the server lacks it,
 * with a progress line for uploads over 1 MB (out.h) unless quiet.
 */
#ifndef ROUSE_CLI_UPLOAD_H
#define ROUSE_CLI_UPLOAD_H

#include <stdbool.h>

#include "cli/client.h"

#define CLI_DIGEST_MAX 72 /* "sha256:" + 64 hex + NUL */

/* The digest of the file at path ("sha256:<hex>"). 0 or -1 after printing
 * why (a missing file names the path). */
int cli_model_digest(cli_client *c, const char *path, char digest[CLI_DIGEST_MAX]);

/* Uploads the model at path unless the server has it; *uploaded says which.
 * 0, or -1 after printing why. */
int cli_model_upload(cli_client *c, const char *path, char digest[CLI_DIGEST_MAX], bool *uploaded);

/* A PUT of a function config. JSON body; *r is the server's answer (any
 * status) and must be released. 0 or -1 after printing a transport failure.
 * dry_run asks the server what the config would be without deploying. */
int cli_function_put(cli_client *c, const char *name, const char *config_json, bool dry_run,
                     http_response *r);

#endif
