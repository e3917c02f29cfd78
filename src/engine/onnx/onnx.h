/*
 * Zero-copy decoding of ONNX protobuf messages (ModelProto, TensorProto).
 *
 * We decode the wire format by hand rather than through protobuf-c so that
 * tensor payloads are referenced in place inside the caller's buffer (an mmap
 * of the model file): loading a 45 MB model touches only its metadata.
 *
 * Guarantees: every length, index, count, type, rank and dimension is checked
 * against the buffer before use; malformed input yields ROUSE_EFORMAT (or
 * ROUSE_EUNSUPPORTED for valid features we do not handle, e.g. string tensors)
 * with a message naming the message and field at fault, never a crash.
 *
 * Lifetime: strings and arrays live in the model's arena; tensor `data`
 * either points into the caller's buffer (raw_data and packed fixed-width
 * fields) or into the arena (varint-encoded fields such as int64_data). The
 * buffer must outlive the decoded model. `data` may be unaligned: copy it
 * before typed access.
 */
#ifndef ROUSE_ENGINE_ONNX_H
#define ROUSE_ENGINE_ONNX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "rouse/err.h"

/* Limits that keep hostile files from asking for absurd allocations. */
#define ONNX_MAX_RANK 8    /* a tensor or value_info with more dims is rejected */
#define ONNX_MAX_NESTING 8 /* GRAPH attributes (subgraphs) nested deeper are rejected */

/* One dimension of a declared shape: a number, or a symbolic name. */
typedef struct onnx_dim {
    int64_t value;     /* >= 0 when known; -1 when symbolic or absent */
    const char *param; /* dim_param name, or NULL */
} onnx_dim;

/* ValueInfoProto restricted to tensor types. */
typedef struct onnx_value_info {
    const char *name;
    int32_t elem_type; /* eng_dtype numbers; 0 when the type is not a tensor type */
    bool is_tensor;    /* false for sequence/optional/map types */
    int rank;          /* -1 when the shape is absent (unknown rank) */
    onnx_dim *dims;    /* rank entries */
} onnx_value_info;

/* TensorProto. */
typedef struct onnx_tensor {
    const char *name;  /* "" when absent */
    int32_t data_type; /* eng_dtype numbers */
    int n_dims;
    int64_t *dims;    /* n_dims entries, each >= 0 */
    const void *data; /* n_elems * eng_dtype_size(data_type) bytes, little-endian; may be unaligned;
                         never NULL, even when nbytes is 0 */
    size_t nbytes;
    int64_t n_elems; /* product of dims (1 for a scalar) */
    bool in_place;   /* true when data points into the decoded buffer */
    /* External data (data_location EXTERNAL, initializers only): the file
     * named by `location` (relative to the model's folder, as written) holds
     * the nbytes at `ext_offset`. `data` stays NULL until
     * onnx_model_map_external() maps it. */
    const char *location; /* NULL for data held in the model */
    uint64_t ext_offset;
    int64_t ext_length; /* -1 when absent: the rest of the file */
} onnx_tensor;

/* AttributeProto.AttributeType numbers. */
typedef enum onnx_attr_type {
    ONNX_ATTR_UNDEFINED = 0,
    ONNX_ATTR_FLOAT = 1,
    ONNX_ATTR_INT = 2,
    ONNX_ATTR_STRING = 3,
    ONNX_ATTR_TENSOR = 4,
    ONNX_ATTR_GRAPH = 5,
    ONNX_ATTR_FLOATS = 6,
    ONNX_ATTR_INTS = 7,
    ONNX_ATTR_STRINGS = 8,
    ONNX_ATTR_TENSORS = 9,
    ONNX_ATTR_GRAPHS = 10,
    ONNX_ATTR_SPARSE_TENSOR = 11,
    ONNX_ATTR_SPARSE_TENSORS = 12,
    ONNX_ATTR_TYPE_PROTO = 13,
    ONNX_ATTR_TYPE_PROTOS = 14,
} onnx_attr_type;

typedef struct onnx_attr {
    const char *name;
    int type; /* onnx_attr_type; inferred from the populated field when 0 */
    float f;
    int64_t i;
    const char *s; /* NUL-terminated copy; s_len bytes (may contain NULs) */
    size_t s_len;
    onnx_tensor *t; /* TENSOR */
    int n_floats;
    float *floats;
    int n_ints;
    int64_t *ints;
    int n_strings;
    const char **strings;
    int n_tensors; /* TENSORS */
    onnx_tensor *tensors;
    bool has_graph; /* GRAPH/GRAPHS: present but not decoded further */
} onnx_attr;

typedef struct onnx_node {
    const char *name; /* "" when absent */
    const char *op_type;
    const char *domain; /* "" for the default ONNX domain */
    int n_inputs;
    const char **inputs; /* "" marks an omitted optional input */
    int n_outputs;
    const char **outputs;
    int n_attrs;
    onnx_attr *attrs;
} onnx_node;

typedef struct onnx_graph {
    const char *name;
    int n_nodes;
    onnx_node *nodes;
    int n_initializers;
    onnx_tensor *initializers;
    int n_inputs;
    onnx_value_info *inputs; /* may include initializers (IR < 4 style) */
    int n_outputs;
    onnx_value_info *outputs;
    int n_value_infos;
    onnx_value_info *value_infos;
} onnx_graph;

typedef struct onnx_opset {
    const char *domain; /* "" or "ai.onnx" for the default domain */
    int64_t version;
} onnx_opset;

typedef struct onnx_model {
    int64_t ir_version;
    const char *producer_name;
    const char *producer_version;
    int n_opsets;
    onnx_opset *opsets;
    onnx_graph graph;
    bool has_functions; /* model-local functions present (not supported by the engine) */
    rouse_arena arena;  /* owns every string and array above */
    int n_maps;
    struct onnx_mapping *maps; /* external data files mapped (onnx_model_map_external) */
} onnx_model;

/* One mapped external data file. */
typedef struct onnx_mapping {
    void *addr;
    size_t len;
} onnx_mapping;

/* Decodes a ModelProto from buf[0..len). m is caller-owned; on success release
 * it with onnx_model_fini(). On failure m holds nothing to release. */
int onnx_model_decode(const uint8_t *buf, size_t len, onnx_model *m, rouse_errbuf *eb);
void onnx_model_fini(onnx_model *m);

/* Maps the external data of m's initializers in place (read-only, shared
 * mmap of each file, no copy) and points their `data` at it. `dir` is the
 * folder of the model file; a location must be a relative path inside it
 * (no absolute path, no ".." component, no symbolic link leaving it), and
 * offset + length must lie inside the file and match the tensor's size:
 * ROUSE_EFORMAT naming the initializer otherwise. dir NULL (a model loaded
 * from memory) is ROUSE_EUNSUPPORTED when m has external data. The mappings
 * are released by onnx_model_fini. */
int onnx_model_map_external(onnx_model *m, const char *dir, rouse_errbuf *eb);

/* Decodes a standalone TensorProto (the .pb files of the ONNX backend-test
 * layout). Strings and decoded arrays come from `arena`; `data` may point into buf.
 * On failure *t is zeroed; what was allocated stays in `arena` until its fini. */
int onnx_tensor_decode(const uint8_t *buf, size_t len, rouse_arena *arena, onnx_tensor *t,
                       rouse_errbuf *eb);

/* Opset version the model imports for the default domain, or -1 if none. */
int64_t onnx_model_default_opset(const onnx_model *m);

/* Attribute by name, or NULL. */
const onnx_attr *onnx_node_attr(const onnx_node *n, const char *name);

#endif
