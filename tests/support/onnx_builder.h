/*
 * Builds ONNX ModelProto bytes in C, so that engine tests can make their own
 * small models (single operators, random shapes) without Python or files.
 * Test support code: allocation failures abort.
 */
#ifndef ROUSE_TESTS_ONNX_BUILDER_H
#define ROUSE_TESTS_ONNX_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct ob_model ob_model;
typedef struct ob_node ob_node;

ob_model *ob_model_new(int64_t opset);
void ob_model_free(ob_model *m);

/* Graph input / output with a declared shape (dims < 0 become dim_param "d<i>"). */
void ob_input(ob_model *m, const char *name, int dtype, int rank, const int64_t *dims);
void ob_output(ob_model *m, const char *name, int dtype, int rank, const int64_t *dims);
/* Graph input whose dynamic dims (dims < 0) are named by dim_names[i]
 * (NULL entries fall back to "d<i>"). */
void ob_input_named(ob_model *m, const char *name, int dtype, int rank, const int64_t *dims,
                    const char *const *dim_names);
/* Graph output without a shape. */
void ob_output_any(ob_model *m, const char *name, int dtype);

/* Initializer with raw_data. */
void ob_initializer(ob_model *m, const char *name, int dtype, int rank, const int64_t *dims,
                    const void *data, size_t nbytes);

/* Initializer whose data lives in another file (data_location EXTERNAL):
 * external_data entries "location", and "offset"/"length" when >= 0. */
void ob_initializer_external(ob_model *m, const char *name, int dtype, int rank,
                             const int64_t *dims, const char *location, int64_t offset,
                             int64_t length);

/* Node; inputs may include "" for omitted optional inputs. */
ob_node *ob_add_node(ob_model *m, const char *op_type, const char *name, int n_in,
                     const char *const *inputs, int n_out, const char *const *outputs);
void ob_attr_int(ob_node *n, const char *name, int64_t v);
void ob_attr_float(ob_node *n, const char *name, float v);
void ob_attr_ints(ob_node *n, const char *name, int count, const int64_t *v);
void ob_attr_floats(ob_node *n, const char *name, int count, const float *v);
void ob_attr_string(ob_node *n, const char *name, const char *s);

/* Serializes the model into out (appended). */
void ob_serialize(ob_model *m, rouse_buf *out);

/* Low-level protobuf writers (also used to craft malformed inputs). */
void pb_put_varint(rouse_buf *b, uint64_t v);
void pb_put_tag(rouse_buf *b, int field, int wire_type);
void pb_put_bytes(rouse_buf *b, int field, const void *data, size_t len);
void pb_put_int(rouse_buf *b, int field, int64_t v);

#endif
