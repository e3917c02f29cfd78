/*
 * libFuzzer target for compiled plan files: the bytes are opened as a plan
 * (header checks, metadata parsing, graph validation). Inputs that get past
 * the header need a matching checksum, so the harness also tries each input
 * with its checksum repaired: that is what a hostile file would carry.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#include "common/crc32c.h"
#include "engine/plan_format.h"
#include "rouse/engine.h"

static void try_open(const uint8_t *data, size_t size)
{
    rouse_model *m;
    rouse_errbuf eb;
    if (rouse_model_open_plan_memory(data, size, &m, &eb) == 0) {
        for (int i = 0; i < rouse_model_n_outputs(m); i++) {
            rouse_tensor_info info;
            if (rouse_model_output(m, i, &info) == 0 && !info.name) abort();
        }
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
    memcpy(copy, &h, sizeof(h));
    try_open(copy, size);
    free(copy);
    return 0;
}
