/* Element types and shape arithmetic. */
#include "engine/tensor.h"

#include <stdio.h>
#include <string.h>

size_t eng_dtype_size(int dtype)
{
    switch (dtype) {
    case ENG_DT_FLOAT:
        return 4;
    case ENG_DT_UINT8:
        return 1;
    case ENG_DT_INT8:
        return 1;
    case ENG_DT_UINT16:
        return 2;
    case ENG_DT_INT16:
        return 2;
    case ENG_DT_INT32:
        return 4;
    case ENG_DT_INT64:
        return 8;
    case ENG_DT_BOOL:
        return 1;
    case ENG_DT_FLOAT16:
        return 2;
    case ENG_DT_DOUBLE:
        return 8;
    case ENG_DT_UINT32:
        return 4;
    case ENG_DT_UINT64:
        return 8;
    case ENG_DT_BFLOAT16:
        return 2;
    default:
        return 0;
    }
}

const char *eng_dtype_name(int dtype)
{
    switch (dtype) {
    case ENG_DT_FLOAT:
        return "float";
    case ENG_DT_UINT8:
        return "uint8";
    case ENG_DT_INT8:
        return "int8";
    case ENG_DT_UINT16:
        return "uint16";
    case ENG_DT_INT16:
        return "int16";
    case ENG_DT_INT32:
        return "int32";
    case ENG_DT_INT64:
        return "int64";
    case ENG_DT_STRING:
        return "string";
    case ENG_DT_BOOL:
        return "bool";
    case ENG_DT_FLOAT16:
        return "float16";
    case ENG_DT_DOUBLE:
        return "double";
    case ENG_DT_UINT32:
        return "uint32";
    case ENG_DT_UINT64:
        return "uint64";
    case ENG_DT_COMPLEX64:
        return "complex64";
    case ENG_DT_COMPLEX128:
        return "complex128";
    case ENG_DT_BFLOAT16:
        return "bfloat16";
    default:
        return "undefined";
    }
}

int64_t eng_shape_numel(int rank, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] && n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

int64_t eng_tensor_numel(const eng_tensor *t)
{
    return eng_shape_numel(t->rank, t->shape);
}

int64_t eng_tensor_nbytes(const eng_tensor *t)
{
    int64_t n = eng_tensor_numel(t);
    size_t es = eng_dtype_size(t->dtype);
    if (n < 0 || es == 0 || n > INT64_MAX / (int64_t)es) return -1;
    return n * (int64_t)es;
}

char *eng_shape_str(int rank, const int64_t *shape, char *buf, size_t buf_len)
{
    size_t off = 0;
    if (!buf_len) return buf;
    buf[0] = '\0';
    off += (size_t)snprintf(buf + off, buf_len - off, "[");
    for (int i = 0; i < rank && off < buf_len; i++)
        off +=
            (size_t)snprintf(buf + off, buf_len - off, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (off < buf_len) snprintf(buf + off, buf_len - off, "]");
    return buf;
}

bool eng_shape_equal(int rank_a, const int64_t *a, int rank_b, const int64_t *b)
{
    return rank_a == rank_b && (rank_a == 0 || memcmp(a, b, sizeof(*a) * (size_t)rank_a) == 0);
}
