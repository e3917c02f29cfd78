/*
 * libFuzzer target for compiled plan files: the bytes are opened as a plan
 * (header checks, metadata parsing, graph validation with each operator's
 * attribute check). Inputs that get past the header need a matching
 * checksum, so the harness also tries each input with its checksum
 * repaired: that is what a hostile file would carry. A plan that opens is
 * then prepared and run once on zeros at its declared input shapes
 * (dynamic dims as 2), so that the stored attributes go through shape
 * inference, kernel creation and the kernels, end to end: with oneDNN for
 * inputs whose size is a multiple of 8, the plain C reference kernels for
 * the others. Plans prepared for more than RUN_ARENA_MAX_BYTES of
 * activations, or more than RUN_REF_MAX_MACS of reference-kernel work, are
 * not run.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#include "common/crc32c.h"
#include "engine/graph.h"
#include "engine/plan_format.h"
#include "rouse/engine.h"

/* Inputs larger than this are not fed: the point is the plan, not memory. */
#define FEED_MAX_BYTES (256 * 1024)
#define FEED_MAX_INPUTS 16
/* Plans whose activations need more than this are prepared but not run: a
 * mutated constant (Pad's pads, Tile's repeats, ConstantOfShape's shape) can
 * validly ask for gigabytes, which tests the machine, not the plan; large
 * ones would also spend the fuzzer's time on one input. */
#define RUN_ARENA_MAX_BYTES ((size_t)16 << 20)
/* Likewise the work of the reference kernels. The fuzz build also lowers
 * the engine's own bound (ENG_REF_MAX_MACS, see CMakeLists.txt), which
 * covers the plans prepared at the first run (dynamic shapes), where these
 * stats are not known beforehand. */
#define RUN_REF_MAX_MACS ((uint64_t)1 << 24)

static void try_run(rouse_model *m, bool reference)
{
    rouse_tensor in[FEED_MAX_INPUTS];
    void *bufs[FEED_MAX_INPUTS] = {NULL};
    int n = rouse_model_n_inputs(m);
    if (n > FEED_MAX_INPUTS) return;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        rouse_tensor_info info;
        if (rouse_model_input(m, i, &info) < 0 || info.rank < 0 || info.rank > ROUSE_MAX_RANK)
            goto out;
        in[i] = (rouse_tensor){.name = info.name, .dtype = info.dtype, .rank = info.rank};
        size_t cnt = 1;
        for (int k = 0; k < info.rank; k++) {
            in[i].shape[k] = info.shape[k] < 0 ? 2 : info.shape[k];
            if (in[i].shape[k] > FEED_MAX_BYTES) goto out;
            cnt *= (size_t)in[i].shape[k];
            if (cnt > FEED_MAX_BYTES) goto out;
        }
        in[i].nbytes = cnt * rouse_dtype_size(info.dtype);
        total += in[i].nbytes;
        if (total > FEED_MAX_BYTES) goto out;
        bufs[i] = calloc(1, in[i].nbytes + 1);
        if (!bufs[i]) goto out;
        in[i].data = bufs[i];
    }
    rouse_session *s;
    rouse_errbuf eb;
    rouse_session_options opts = {.threads = 1, .reference_kernels = reference};
    if (rouse_session_create(m, &opts, &s, &eb) == 0) {
        rouse_session_stats st;
        bool huge = rouse_session_get_stats(s, &st) == 0 &&
                    (st.arena_bytes > RUN_ARENA_MAX_BYTES || st.ref_macs > RUN_REF_MAX_MACS);
        if (!huge && rouse_session_run(s, in, n, &eb) == 0) {
            for (int i = 0; i < rouse_model_n_outputs(m); i++) {
                rouse_tensor out;
                if (rouse_session_output(s, i, &out) < 0) abort();
                if (out.nbytes && !out.data) abort();
            }
        }
        rouse_session_destroy(s);
    }
out:
    for (int i = 0; i < n && i < FEED_MAX_INPUTS; i++)
        free(bufs[i]);
}

static void try_open(const uint8_t *data, size_t size)
{
    rouse_model *m;
    rouse_errbuf eb;
    if (rouse_model_open_plan_memory(data, size, &m, &eb) == 0) {
        for (int i = 0; i < rouse_model_n_outputs(m); i++) {
            rouse_tensor_info info;
            if (rouse_model_output(m, i, &info) == 0 && !info.name) abort();
        }
        /* Kernel creation (oneDNN's JIT) costs far more than the reference
         * kernels: one input in eight takes that path. */
        try_run(m, size % 8 != 0);
        rouse_model_destroy(m);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_open(data, size);
    if (size < sizeof(plan_header)) return 0;
    plan_header h;
    memcpy(&h, data, sizeof(h));
    if (h.meta_offset > size || h.meta_size > size - h.meta_offset) return 0;
    uint8_t *copy = malloc(size);
    if (!copy) return 0;
    memcpy(copy, data, size);
    h.meta_crc32c = rouse_crc32c(0, copy + h.meta_offset, h.meta_size);
    /* The header fields this build checks, made to match, so mutations reach the metadata. */
    h.file_size = size;
    h.cpu_isa = (uint32_t)dnnl_get_effective_cpu_isa();
    const dnnl_version_t *v = dnnl_version();
    h.dnnl_major = (uint32_t)v->major;
    h.dnnl_minor = (uint32_t)v->minor;
    h.dnnl_patch = (uint32_t)v->patch;
    /* And the format and record sizes, so that seeds compiled by an earlier
     * build (before a format bump, or before eng_attrs grew) still reach the
     * metadata parser rather than stopping at the version check. */
    h.format_version = PLAN_FORMAT_VERSION;
    h.attrs_size = (uint32_t)sizeof(eng_attrs);
    h.postop_size = (uint32_t)sizeof(eng_postop);
    h.md_size = (uint32_t)sizeof(dnnl_memory_desc_t);
    memcpy(copy, &h, sizeof(h));
    if (memcmp(copy, data, sizeof(h)) != 0) try_open(copy, size); /* else tried above */
    free(copy);
    return 0;
}
