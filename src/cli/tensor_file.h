/*
 * Tensors read from files for `rouse run` and the conformance runners:
 * NumPy .npy (format versions 1, 2 and 3) and ONNX TensorProto .pb.
 *
 * Guarantees: every header field, dimension and byte count is checked before
 * use; a malformed or unsupported file yields a negative ROUSE_E* code and a
 * sentence in the error buffer, never a crash. These functions never print.
 * A successfully read tensor owns a 64-byte-aligned copy of its elements, so
 * callers may access them through typed pointers.
 */
#ifndef ROUSE_CLI_TENSOR_FILE_H
#define ROUSE_CLI_TENSOR_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "rouse/engine.h"
#include "rouse/err.h"

/* A dense row-major tensor that owns its name and data. Caller-owned struct:
 * release with cli_tensor_fini (also safe on a zeroed struct). */
typedef struct cli_tensor {
    char *name; /* owned; "" when the file names none */
    int dtype;  /* rouse_dtype */
    int rank;
    int64_t shape[ROUSE_MAX_RANK];
    void *data; /* owned, 64-byte aligned, nbytes long */
    size_t nbytes;
} cli_tensor;

void cli_tensor_fini(cli_tensor *t);

/* Allocates a zeroed tensor of the given type and shape (every dim >= 0).
 * ROUSE_EUNSUPPORTED for a type without a fixed element size, ROUSE_ERANGE
 * when rank exceeds ROUSE_MAX_RANK, ROUSE_ETOOBIG when the byte size overflows. */
int cli_tensor_alloc(cli_tensor *t, const char *name, int dtype, int rank, const int64_t *shape,
                     rouse_errbuf *eb);

/* Parses a whole .npy file held in buf[0..len). Accepts little-endian,
 * C-order arrays of float16/32/64, int8/16/32/64, uint8/16/32/64 and bool.
 * Fortran order, big-endian and object/string dtypes are ROUSE_EUNSUPPORTED;
 * a malformed header or a byte count that disagrees with the shape is
 * ROUSE_EFORMAT. The tensor's name is "". */
int cli_npy_parse(const uint8_t *buf, size_t len, cli_tensor *out, rouse_errbuf *eb);

/* Parses a serialized ONNX TensorProto held in buf[0..len). */
int cli_pb_parse(const uint8_t *buf, size_t len, cli_tensor *out, rouse_errbuf *eb);

/* Reads a tensor file: .npy or .pb by extension, otherwise by content (the
 * .npy magic, else TensorProto). Error messages name the path. */
int cli_tensor_read_file(const char *path, cli_tensor *out, rouse_errbuf *eb);

/* A borrowed view for rouse_session_run; valid while t lives. name may be
 * NULL to keep t's own name. */
rouse_tensor cli_tensor_view(const cli_tensor *t, const char *name);

/* Writes a .npy file (version 1.0, C order, little-endian) of the given
 * type and shape from data[0..nbytes). bfloat16 is written as uint16 bit
 * patterns. Errors name the path. */
int cli_npy_write(const char *path, int dtype, int rank, const int64_t *shape, const void *data,
                  size_t nbytes, rouse_errbuf *eb);

/* Reads a whole file into a malloc'd buffer. Owned: free with free(). */
int cli_file_slurp(const char *path, uint8_t **buf, size_t *len, rouse_errbuf *eb);

#endif
