/*
 * Element types and plain tensors inside the engine.
 *
 * eng_dtype values are ONNX's TensorProto.DataType numbers, so they can be
 * copied from a model file without translation. An eng_tensor is always dense
 * and row-major ("plain"); blocked oneDNN layouts never leak out of the
 * dnnl/ kernels.
 */
#ifndef ROUSE_ENGINE_TENSOR_H
#define ROUSE_ENGINE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENG_MAX_RANK 8

typedef enum eng_dtype {
    ENG_DT_UNDEFINED = 0,
    ENG_DT_FLOAT = 1,
    ENG_DT_UINT8 = 2,
    ENG_DT_INT8 = 3,
    ENG_DT_UINT16 = 4,
    ENG_DT_INT16 = 5,
    ENG_DT_INT32 = 6,
    ENG_DT_INT64 = 7,
    ENG_DT_STRING = 8,
    ENG_DT_BOOL = 9,
    ENG_DT_FLOAT16 = 10,
    ENG_DT_DOUBLE = 11,
    ENG_DT_UINT32 = 12,
    ENG_DT_UINT64 = 13,
    ENG_DT_COMPLEX64 = 14,
    ENG_DT_COMPLEX128 = 15,
    ENG_DT_BFLOAT16 = 16,
} eng_dtype;

/* Bytes per element; 0 for types the engine cannot hold in a dense buffer
 * (string, complex, undefined, unknown numbers). */
size_t eng_dtype_size(int dtype);

/* ONNX spelling of the type ("float", "int64", "bool"...); "undefined" for
 * unknown numbers. Static string. */
const char *eng_dtype_name(int dtype);

/* A dense row-major tensor. `data` is borrowed unless the owner says otherwise. */
typedef struct eng_tensor {
    int dtype;
    int rank; /* 0 = scalar */
    int64_t shape[ENG_MAX_RANK];
    void *data;
} eng_tensor;

/* Number of elements of a shape; -1 if a dim is negative or the product
 * overflows int64 (callers turn that into a clear error). rank 0 gives 1. */
int64_t eng_shape_numel(int rank, const int64_t *shape);

/* Element count and byte size of t; -1 on the conditions above or an unsized dtype. */
int64_t eng_tensor_numel(const eng_tensor *t);
int64_t eng_tensor_nbytes(const eng_tensor *t);

/* "[1, 3, 224, 224]" into buf (always terminated). Returns buf. */
char *eng_shape_str(int rank, const int64_t *shape, char *buf, size_t buf_len);

/* True when both shapes are equal. */
bool eng_shape_equal(int rank_a, const int64_t *a, int rank_b, const int64_t *b);

#endif
