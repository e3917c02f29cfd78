/*
 * libFuzzer target for loading ONNX models: the bytes are decoded as a
 * ModelProto and as a standalone TensorProto, and loaded through the public
 * engine API (graph building, attribute parsing, optimization with constant
 * folding). On success every string is walked and every tensor payload
 * touched at both ends, so that ASan reports any pointer handed out beyond
 * its buffer.
 *
 * External data: a decoded model's external initializers are mapped from a
 * folder made once per process (weights.bin of 64 KiB, a subfolder, a link
 * leading out of the folder), so the fuzzer reaches location checks and
 * range checks with the file names, offsets and lengths it invents; every
 * mapped payload is touched at both ends.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/onnx/onnx.h"
#include "rouse/engine.h"

/* Folds bytes into a value the optimizer cannot drop. */
static size_t touch(const void *p, size_t n)
{
    const volatile uint8_t *b = p;
    return n ? (size_t)b[0] + b[n - 1] : 0;
}

static size_t touch_tensor(const onnx_tensor *t)
{
    size_t acc = strlen(t->name) + touch(t->data, t->nbytes);
    for (int i = 0; i < t->n_dims; i++)
        acc += (size_t)t->dims[i];
    return acc;
}

static size_t touch_value_infos(const onnx_value_info *v, int n)
{
    size_t acc = 0;
    for (int i = 0; i < n; i++) {
        acc += strlen(v[i].name);
        for (int k = 0; k < v[i].rank; k++)
            acc += v[i].dims[k].param ? strlen(v[i].dims[k].param) : (size_t)v[i].dims[k].value;
    }
    return acc;
}

static size_t touch_model(const onnx_model *m)
{
    const onnx_graph *g = &m->graph;
    size_t acc = strlen(m->producer_name) + strlen(m->producer_version) + strlen(g->name);
    acc += (size_t)onnx_model_default_opset(m);
    for (int i = 0; i < m->n_opsets; i++)
        acc += strlen(m->opsets[i].domain);
    for (int i = 0; i < g->n_nodes; i++) {
        const onnx_node *n = &g->nodes[i];
        acc += strlen(n->name) + strlen(n->op_type) + strlen(n->domain);
        for (int k = 0; k < n->n_inputs; k++)
            acc += strlen(n->inputs[k]);
        for (int k = 0; k < n->n_outputs; k++)
            acc += strlen(n->outputs[k]);
        for (int k = 0; k < n->n_attrs; k++) {
            const onnx_attr *a = &n->attrs[k];
            acc += (onnx_node_attr(n, a->name) != NULL);
            if (a->s) acc += touch(a->s, a->s_len + 1);
            if (a->t) acc += touch_tensor(a->t);
            acc += touch(a->floats, sizeof(*a->floats) * (size_t)a->n_floats);
            acc += touch(a->ints, sizeof(*a->ints) * (size_t)a->n_ints);
            for (int j = 0; j < a->n_strings; j++)
                acc += strlen(a->strings[j]);
            for (int j = 0; j < a->n_tensors; j++)
                acc += touch_tensor(&a->tensors[j]);
        }
    }
    for (int i = 0; i < g->n_initializers; i++)
        acc += touch_tensor(&g->initializers[i]);
    acc += touch_value_infos(g->inputs, g->n_inputs);
    acc += touch_value_infos(g->outputs, g->n_outputs);
    acc += touch_value_infos(g->value_infos, g->n_value_infos);
    return acc;
}

static char data_dir[64];

/* The folder external locations resolve in: weights.bin, sub/w.bin, and
 * out.bin, a link to a file outside. */
static const char *external_dir(void)
{
    if (data_dir[0]) return data_dir;
    strcpy(data_dir, "/tmp/rouse-fuzz-ext-XXXXXX");
    if (!mkdtemp(data_dir)) abort();
    char path[128];
    static uint8_t bytes[64 * 1024];
    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (uint8_t)(i * 31 + 7);
    snprintf(path, sizeof(path), "%s/weights.bin", data_dir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, sizeof(bytes), f) != sizeof(bytes)) abort();
    fclose(f);
    snprintf(path, sizeof(path), "%s/sub", data_dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/sub/w.bin", data_dir);
    if (!(f = fopen(path, "wb")) || fwrite(bytes, 1, 4096, f) != 4096) abort();
    fclose(f);
    snprintf(path, sizeof(path), "%s/out.bin", data_dir);
    if (symlink("/etc/hostname", path) < 0) { /* an existing folder keeps its link */
    }
    return data_dir;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    volatile size_t sink = 0;
    rouse_errbuf eb;
    onnx_model m;
    if (onnx_model_decode(data, size, &m, &eb) == 0) {
        if (onnx_model_map_external(&m, external_dir(), &eb) == 0) sink += touch_model(&m);
        onnx_model_fini(&m);
        rouse_model *model;
        if (rouse_model_load_memory(data, size, &model, &eb) == 0) {
            for (int i = 0; i < rouse_model_n_inputs(model); i++) {
                rouse_tensor_info info;
                if (rouse_model_input(model, i, &info) == 0) sink += strlen(info.name);
            }
            rouse_model_destroy(model);
        }
    }

    rouse_arena arena;
    onnx_tensor t;
    rouse_arena_init(&arena, 0);
    if (onnx_tensor_decode(data, size, &arena, &t, &eb) == 0) sink += touch_tensor(&t);
    rouse_arena_fini(&arena);
    (void)sink;
    return 0;
}
