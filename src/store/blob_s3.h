/*
 * Blobs in an S3-compatible bucket (`serve --blobs s3://BUCKET[/PREFIX]`):
 * where a blob lives there (PREFIX/sha256/<64 hex>), how a request to it
 * is signed (libcurl's AWS Signature Version 4), and the words of an S3
 * error document. The transfers themselves are blob_remote.c's.
 *
 * Addressing: with an endpoint (`--s3-endpoint`, any S3-compatible
 * server) path-style, ENDPOINT/BUCKET/KEY; without one AWS's own,
 * https://BUCKET.s3.REGION.amazonaws.com/KEY.
 */
#ifndef ROUSE_STORE_BLOB_S3_H
#define ROUSE_STORE_BLOB_S3_H

#include <stddef.h>

#include "rouse/err.h"

#define BLOB_S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct blob_s3 {
    char bucket[64];
    char prefix[256];   /* without slashes at either end; "" for none */
    char base[512];     /* the URL a key is appended to, ending in '/' */
    char region[64];
    char sigv4[96];     /* CURLOPT_AWS_SIGV4: "aws:amz:REGION:s3" */
    char userpwd[512];  /* CURLOPT_USERPWD: "ACCESS_KEY:SECRET_KEY" */
    char token[2048];   /* AWS_SESSION_TOKEN (x-amz-security-token), or "" */
} blob_s3;

/* Reads url (s3://BUCKET[/PREFIX]), endpoint (NULL: AWS's), region (NULL:
 * $AWS_REGION, else us-east-1) and the credentials of the environment
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). 0, or
 * ROUSE_EINVAL with a sentence naming what is wrong. */
int blob_s3_parse(const char *url, const char *endpoint, const char *region, blob_s3 *out,
                  rouse_errbuf *eb);

/* The object URL of a blob digest ("sha256:<hex>") into out. */
int blob_s3_object_url(const blob_s3 *s, const char *digest, char *out, size_t cap);

/* "s3://BUCKET/PREFIX" for messages into out. */
void blob_s3_describe(const blob_s3 *s, char *out, size_t cap);

/* The readable part of an S3 error document: "Code: Message" (printable
 * ASCII only, at most cap - 1 bytes), or "" when body holds neither. */
void blob_s3_error_text(const char *body, size_t len, char *out, size_t cap);

#endif
