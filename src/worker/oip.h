/*
 * Open Inference Protocol v2 (KServe) request decoding and response encoding,
 * done inside the instance so that the serve event loop never touches tensor
 * data.
 *
 * Requests: JSON `{"id":..., "parameters":{...}, "inputs":[{"name","shape",
 * "datatype","data"}], "outputs":[{"name","parameters":{"binary_data":bool}}]}`
 * with `data` flat or nested (row-major), or the binary tensor extension:
 * the body is a JSON header of `json_len` bytes (HTTP header
 * Inference-Header-Content-Length) followed by raw tensor bytes, inputs
 * carrying `"parameters":{"binary_data_size":N}` in order. Datatypes: BOOL,
 * UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BF16 (BYTES is rejected).
 * Every check names the input: unknown name, missing input, wrong datatype,
 * shape vs model shape, element count vs shape, binary sizes vs body.
 */
#ifndef ROUSE_WORKER_OIP_H
#define ROUSE_WORKER_OIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "rouse/engine.h"
#include "rouse/err.h"

/* "FP32" <-> ROUSE_DT_FLOAT etc.; NULL / -1 when unknown. */
const char *oip_datatype_name(int dtype);
int oip_datatype_parse(const char *name);

typedef struct oip_output_req {
    const char *name;
    bool binary; /* binary_data requested for this output */
} oip_output_req;

typedef struct oip_request {
    const char *id;          /* NULL when absent; echoed in the response */
    int n_inputs;
    rouse_tensor *inputs;    /* data in the body (binary) or decoded into the arena */
    int n_outputs;           /* 0 = all outputs */
    oip_output_req *outputs;
    bool binary_default;     /* parameters.binary_data_output */
} oip_request;

/* Decodes a request for model m. json_len is the Inference-Header-Content-
 * Length value, or -1 when the body is all JSON. Arrays and decoded data
 * come from arena; binary tensor data points into body. ROUSE_EINVAL /
 * ROUSE_EMISMATCH / ROUSE_EFORMAT with a message naming the input. */
int oip_decode_request(const char *body, size_t body_len, int64_t json_len, const rouse_model *m,
                       rouse_arena *arena, oip_request *req, rouse_errbuf *eb);

/* Encodes the outputs of the last run of s: JSON `{"model_name","model_version",
 * "id","outputs":[{"name","datatype","shape","data"}]}`, with outputs that ask
 * for binary data appended after the JSON (then *json_len is the JSON part's
 * length, to send as Inference-Header-Content-Length; else -1). */
int oip_encode_response(const oip_request *req, const char *model_name, const char *model_version,
                        const rouse_model *m, const rouse_session *s, rouse_buf *out,
                        int64_t *json_len, rouse_errbuf *eb);

/* Model metadata `{"name","versions":[...],"platform":"onnx","inputs":[{"name",
 * "datatype","shape"}],"outputs":[...]}` (-1 for dynamic dims). */
int oip_model_metadata(const rouse_model *m, const char *name, const int64_t *versions,
                       int n_versions, rouse_buf *out);

#endif
