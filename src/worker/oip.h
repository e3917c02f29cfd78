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
    const char *id; /* NULL when absent; echoed in the response */
    int n_inputs;
    rouse_tensor *inputs; /* data in the body (binary) or decoded into the arena */
    int n_outputs;        /* 0 = all outputs */
    oip_output_req *outputs;
    bool binary_default; /* parameters.binary_data_output */
} oip_request;

/* Decodes a request for model m. json_len is the Inference-Header-Content-
 * Length value, or -1 when the body is all JSON. Arrays and decoded data
 * come from arena; binary tensor data points into body (or, when it is not
 * 16-byte aligned there, into an aligned copy in the arena). req->inputs
 * holds one tensor per model input, in the model's order; req->outputs[i].
 * binary is already resolved (per-output binary_data, else binary_default).
 * Errors name the input or output: ROUSE_EFORMAT for malformed JSON or
 * structure (missing/mistyped fields, unknown datatype names), ROUSE_EINVAL
 * for unknown, repeated or missing names, ROUSE_EMISMATCH for datatype,
 * shape, size and element-value problems ("input 'x': element 2: 300 is out
 * of range for UINT8"), ROUSE_ENOMEM. */
int oip_decode_request(const char *body, size_t body_len, int64_t json_len, const rouse_model *m,
                       rouse_arena *arena, oip_request *req, rouse_errbuf *eb);

/* Encodes the outputs of the last run of s: JSON `{"model_name","model_version",
 * "id","outputs":[{"name","datatype","shape","data"}]}` ("model_version"
 * and "id" only when given; outputs in request order, or all in model order
 * when req->n_outputs is 0; req may be NULL for all outputs as JSON), with
 * outputs that ask for binary data carrying parameters.binary_data_size and
 * their raw bytes appended after the JSON (then *json_len is the JSON part's
 * length, to send as Inference-Header-Content-Length; else -1). Appends to
 * out; on failure out is left as it was. */
int oip_encode_response(const oip_request *req, const char *model_name, const char *model_version,
                        const rouse_model *m, const rouse_session *s, rouse_buf *out,
                        int64_t *json_len, rouse_errbuf *eb);

/* Outputs a response can carry at most (a model with more is refused when
 * encoding). */
#define OIP_MAX_OUTPUTS 64

/* oip_encode_response from given output tensors (outs[i]: model output i,
 * e.g. one request's rows of a batched run) instead of a session's. */
int oip_encode_outputs(const oip_request *req, const char *model_name, const char *model_version,
                       const rouse_model *m, const rouse_tensor *outs, rouse_buf *out,
                       int64_t *json_len, rouse_errbuf *eb);

/* Model metadata `{"name","versions":["1",...],"platform":"onnx","inputs":[{"name",
 * "datatype","shape"}],"outputs":[...]}` (-1 for dynamic dims; a tensor whose
 * rank the model does not declare gets [-1]). Versions are strings, as the
 * protocol has them. 0 or ROUSE_ENOMEM; appends to out. */
int oip_model_metadata(const rouse_model *m, const char *name, const int64_t *versions,
                       int n_versions, rouse_buf *out);

#endif
