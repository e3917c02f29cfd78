/*
 * Inference requests built from files, for invoke and bench: inputs from
 * .npy, ONNX TensorProto .pb, JSON (an OIP input object, or a nested array
 * with --shape/--dtype or FP32) and raw bytes (--shape and --dtype), in
 * the binary tensor extension (JSON inputs inline).
 */
#ifndef ROUSE_CLI_REQUEST_H
#define ROUSE_CLI_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "rouse/err.h"

typedef struct cli_input_spec {
    char *name; /* points into argv (the '=' replaced) */
    const char *file;
    const char *shape; /* --shape text, or NULL */
    const char *dtype; /* --dtype text, or NULL */
} cli_input_spec;

/* Appends the request to body: its JSON header (json_len bytes), then the
 * binary inputs; *binary says whether there are any (send the header
 * length in Inference-Header-Content-Length then). binary_outputs asks for
 * the outputs in binary too. Errors name the file. */
int cli_request_build(const cli_input_spec *in, int n, bool binary_outputs, rouse_buf *body,
                      size_t *json_len, bool *binary, rouse_errbuf *eb);

#endif
