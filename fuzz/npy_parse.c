/*
 * libFuzzer target for the .npy reader of `rouse run --input`: the bytes are
 * parsed as an .npy file. On success the shape must account for exactly the
 * bytes held, and the data is touched at both ends so that ASan reports any
 * size the parser got wrong.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cli/tensor_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cli_tensor t;
    rouse_errbuf eb;
    if (cli_npy_parse(data, size, &t, &eb) != 0) return 0;
    size_t n = rouse_dtype_size(t.dtype);
    for (int i = 0; i < t.rank; i++)
        n *= (size_t)t.shape[i];
    if (n != t.nbytes) abort();
    const volatile uint8_t *b = t.data;
    if (t.nbytes) (void)(b[0] + b[t.nbytes - 1]);
    cli_tensor_fini(&t);
    return 0;
}
