/*
 * libFuzzer target for the OIP v2 request decoder (tokens: oip_decode.dict), against a fixed small
 * model built once in memory: x FP32 [-1,2] -> Relu -> y, n INT64 [-1] ->
 * Identity -> m, h FP16 [2] -> Identity -> g.
 *
 * The first byte picks the JSON header length: 0xFF all JSON (-1), 0xFE the
 * next two bytes (little-endian, may run past the body), else that fraction
 * of the body; the rest of the input is the body. Whenever decoding
 * succeeds, the engine must accept the inputs as they are (decoding checks
 * at least what the engine checks, but for a symbolic dim that two inputs
 * share: its binding across inputs is the engine's clean EMISMATCH), and the
 * encoded response must be valid
 * JSON followed by exactly the announced binary bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "onnx_builder.h"
#include "worker/oip.h"

static rouse_buf model_bytes;
static rouse_model *model;
static rouse_session *session;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ob_model *om = ob_model_new(13);
    int64_t xd[2] = {-1, 2}, nd[1] = {-1}, hd[1] = {2};
    ob_input(om, "x", ROUSE_DT_FLOAT, 2, xd);
    ob_input(om, "n", ROUSE_DT_INT64, 1, nd);
    ob_input(om, "h", ROUSE_DT_FLOAT16, 1, hd);
    const char *x = "x", *y = "y", *n = "n", *mo = "m", *h = "h", *g = "g";
    ob_add_node(om, "Relu", "relu", 1, &x, 1, &y);
    ob_add_node(om, "Identity", "id_n", 1, &n, 1, &mo);
    ob_add_node(om, "Identity", "id_h", 1, &h, 1, &g);
    ob_output(om, "y", ROUSE_DT_FLOAT, 2, xd);
    ob_output(om, "m", ROUSE_DT_INT64, 1, nd);
    ob_output(om, "g", ROUSE_DT_FLOAT16, 1, hd);
    rouse_buf_init(&model_bytes);
    ob_serialize(om, &model_bytes);
    ob_model_free(om);
    rouse_errbuf eb;
    rouse_session_options o = {.threads = 1, .reference_kernels = 1};
    if (rouse_model_load_memory(model_bytes.data, model_bytes.len, &model, &eb) < 0 ||
        rouse_session_create(model, &o, &session, &eb) < 0) {
        fprintf(stderr, "oip_decode: cannot build the model: %s\n", eb.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    const char *body;
    size_t body_len;
    int64_t json_len;
    if (data[0] == 0xFE) {
        body = (const char *)data + 3;
        body_len = size - 3;
        json_len = data[1] | data[2] << 8;
    } else {
        body = (const char *)data + 1;
        body_len = size - 1;
        json_len = data[0] == 0xFF ? -1 : (int64_t)(data[0] * body_len / 0xFD);
    }

    rouse_arena arena;
    rouse_arena_init(&arena, 4096);
    oip_request req;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = oip_decode_request(body, body_len, json_len, model, &arena, &req, &eb);
    if (rc < 0) {
        if ((rc != ROUSE_EFORMAT && rc != ROUSE_EINVAL && rc != ROUSE_EMISMATCH) || !eb.msg[0])
            abort();
        rouse_arena_fini(&arena);
        return 0;
    }
    rc = rouse_session_run(session, req.inputs, req.n_inputs, &eb);
    if (rc < 0) {
        /* The one check left to the engine: a symbolic dim named by two
         * inputs (x and n share d0) bound to two sizes, refused cleanly. */
        if (rc == ROUSE_EMISMATCH && strncmp(eb.msg, "dim '", 5) == 0) {
            rouse_arena_fini(&arena);
            return 0;
        }
        fprintf(stderr, "decoded request rejected by the engine: %s\n", eb.msg);
        abort();
    }
    rouse_buf out;
    rouse_buf_init(&out);
    int64_t jl;
    if (oip_encode_response(&req, "fuzz", "1", model, session, &out, &jl, &eb) < 0) abort();
    size_t json_part = jl < 0 ? out.len : (size_t)jl;
    json_value *v;
    if (json_parse(out.data, json_part, &arena, &v, &eb) < 0) abort();
    /* The announced binary sizes account for every byte after the JSON. */
    size_t announced = 0;
    const json_value *outs = json_get(v, "outputs");
    for (size_t i = 0; outs && i < outs->u.arr.n; i++) {
        uint64_t n;
        if (json_as_uint64(
                json_get(json_get(outs->u.arr.items[i], "parameters"), "binary_data_size"), &n))
            announced += (size_t)n;
    }
    if (announced != out.len - json_part) abort();
    rouse_buf_fini(&out);
    rouse_arena_fini(&arena);
    return 0;
}
