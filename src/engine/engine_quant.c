/*
 * rouse_model_write_qdq (rouse/engine.h): the model's graph, after an int8
 * compile the quantized one, written as a QDQ ONNX file (onnx/onnx_write.c).
 */
#include <stdio.h>

#include "common/buf.h"
#include "engine/onnx/onnx_write.h"
#include "engine/quantize.h"
#include "rouse/engine.h"

int rouse_model_write_qdq(rouse_model *m, const char *path, rouse_errbuf *eb)
{
    eng_graph *g = eng_model_graph(m);
    if (!g) return rouse_err_set(eb, ROUSE_ESTATE, "writing ONNX needs a model loaded from ONNX");
    rouse_buf b;
    rouse_buf_init(&b);
    int rc = eng_graph_write_onnx(g, "rouse", &b, eb);
    if (rc < 0) {
        rouse_buf_fini(&b);
        return rc;
    }
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(b.data, 1, b.len, f) == b.len;
    if (f && fclose(f) != 0) ok = false;
    rouse_buf_fini(&b);
    if (!ok) return rouse_err_set(eb, ROUSE_EIO, "cannot write %s", path);
    return 0;
}
