/*
 * Writes the seed model of the onnx_load and plan_open corpora that goes
 * through the operator descriptors of the engine's core families: Conv
 * (kernel from the weight), Clip with input bounds, MaxPool, AveragePool,
 * Transpose, Reshape, Gemm, Unsqueeze, Concat, Gather, Cast, Softmax,
 * LeakyRelu, Mul and ReduceMean. Usage: seed_models OUT.onnx [RES.onnx];
 * the plan seed is `rouse compile OUT.onnx`. RES.onnx, when given, is a
 * residual block (Conv, Relu, Conv, Add of the two, Relu, AveragePool,
 * GlobalAveragePool), the int8 seed of the quantized Add and pooling
 * (`rouse compile RES.onnx --precision int8 --calibrate ...`).
 */
#include <stdio.h>
#include <stdlib.h>

#include "onnx_builder.h"
#include "rouse/engine.h"

static void weight(ob_model *m, const char *name, int rank, const int64_t *d)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= d[i];
    float *w = malloc(sizeof(float) * (size_t)n);
    if (!w) exit(1);
    for (int64_t i = 0; i < n; i++)
        w[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    ob_initializer(m, name, ROUSE_DT_FLOAT, rank, d, w, sizeof(float) * (size_t)n);
    free(w);
}

static int write_model(ob_model *m, const char *path)
{
    rouse_buf b;
    rouse_buf_init(&b);
    ob_serialize(m, &b);
    ob_model_free(m);
    FILE *out = fopen(path, "wb");
    int ok = out && fwrite(b.data, 1, b.len, out) == b.len;
    if (out && fclose(out) != 0) ok = 0;
    rouse_buf_fini(&b);
    if (!ok) {
        perror(path);
        return 1;
    }
    return 0;
}

static int write_residual(const char *path)
{
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {1, 4, 8, 8}, wd[4] = {4, 4, 3, 3}, pads[4] = {1, 1, 1, 1}, k2[2] = {2, 2};
    ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
    weight(m, "w1", 4, wd);
    weight(m, "w2", 4, wd);
    const char *c1_in[2] = {"x", "w1"}, *c2_in[2] = {"r1", "w2"}, *add_in[2] = {"c2", "r1"};
    const char *c1 = "c1", *r1 = "r1", *c2 = "c2", *s = "s", *r2 = "r2", *ap = "ap", *y = "y";
    ob_node *n = ob_add_node(m, "Conv", "conv1", 2, c1_in, 1, &c1);
    ob_attr_ints(n, "pads", 4, pads);
    ob_add_node(m, "Relu", "relu1", 1, &c1, 1, &r1);
    n = ob_add_node(m, "Conv", "conv2", 2, c2_in, 1, &c2);
    ob_attr_ints(n, "pads", 4, pads);
    ob_add_node(m, "Add", "add", 2, add_in, 1, &s);
    ob_add_node(m, "Relu", "relu2", 1, &s, 1, &r2);
    n = ob_add_node(m, "AveragePool", "avgpool", 1, &r2, 1, &ap);
    ob_attr_ints(n, "kernel_shape", 2, k2);
    ob_attr_ints(n, "strides", 2, k2);
    ob_add_node(m, "GlobalAveragePool", "gap", 1, &ap, 1, &y);
    ob_output_any(m, "y", ROUSE_DT_FLOAT);
    return write_model(m, path);
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: seed_models OUT.onnx [RES.onnx]\n");
        return 2;
    }
    if (argc == 3 && write_residual(argv[2]) != 0) return 1;
    ob_model *m = ob_model_new(13);
    int64_t xd[4] = {1, 3, 8, 8}, wd[4] = {4, 3, 3, 3}, gd[2] = {5, 16}, bd[1] = {5};
    int64_t one[1] = {1}, two[1] = {2};
    ob_input(m, "x", ROUSE_DT_FLOAT, 4, xd);
    weight(m, "w", 4, wd);
    weight(m, "gw", 2, gd);
    weight(m, "gb", 1, bd);
    float lo = 0.0f, hi = 6.0f;
    ob_initializer(m, "lo", ROUSE_DT_FLOAT, 0, NULL, &lo, sizeof(lo));
    ob_initializer(m, "hi", ROUSE_DT_FLOAT, 0, NULL, &hi, sizeof(hi));
    int64_t shape[2] = {1, -1}, axes[1] = {1}, idx[1] = {0};
    ob_initializer(m, "shape", ROUSE_DT_INT64, 1, two, shape, sizeof(shape));
    ob_initializer(m, "axes", ROUSE_DT_INT64, 1, one, axes, sizeof(axes));
    ob_initializer(m, "idx", ROUSE_DT_INT64, 1, one, idx, sizeof(idx));

    int64_t pads[4] = {1, 1, 1, 1}, k2[2] = {2, 2}, perm[4] = {0, 2, 3, 1};
    const char *conv_in[2] = {"x", "w"}, *c = "c";
    ob_node *n = ob_add_node(m, "Conv", "conv", 2, conv_in, 1, &c);
    ob_attr_ints(n, "pads", 4, pads);
    const char *clip_in[3] = {"c", "lo", "hi"}, *r = "r", *p = "p", *a = "a", *t = "t";
    ob_add_node(m, "Clip", "clip", 3, clip_in, 1, &r);
    n = ob_add_node(m, "MaxPool", "maxpool", 1, &r, 1, &p);
    ob_attr_ints(n, "kernel_shape", 2, k2);
    ob_attr_ints(n, "strides", 2, k2);
    n = ob_add_node(m, "AveragePool", "avgpool", 1, &p, 1, &a);
    ob_attr_ints(n, "kernel_shape", 2, k2);
    ob_attr_ints(n, "strides", 2, k2);
    n = ob_add_node(m, "Transpose", "transpose", 1, &a, 1, &t);
    ob_attr_ints(n, "perm", 4, perm);
    const char *rs_in[2] = {"t", "shape"}, *f = "f", *g = "g";
    ob_add_node(m, "Reshape", "reshape", 2, rs_in, 1, &f);
    const char *gemm_in[3] = {"f", "gw", "gb"};
    n = ob_add_node(m, "Gemm", "gemm", 3, gemm_in, 1, &g);
    ob_attr_int(n, "transB", 1);
    const char *lr = "lr", *mul_in[2] = {"lr", "g"}, *mu = "mu";
    n = ob_add_node(m, "LeakyRelu", "leaky", 1, &g, 1, &lr);
    ob_attr_float(n, "alpha", 0.2f);
    ob_add_node(m, "Mul", "mul", 2, mul_in, 1, &mu);
    const char *un_in[2] = {"mu", "axes"}, *u = "u", *cc_in[2] = {"u", "u"}, *cc = "cc";
    ob_add_node(m, "Unsqueeze", "unsqueeze", 2, un_in, 1, &u);
    n = ob_add_node(m, "Concat", "concat", 2, cc_in, 1, &cc);
    ob_attr_int(n, "axis", 1);
    const char *ga_in[2] = {"cc", "idx"}, *ga = "ga", *y1 = "y1", *y2 = "y2", *y3 = "y3";
    n = ob_add_node(m, "Gather", "gather", 2, ga_in, 1, &ga);
    ob_attr_int(n, "axis", 2);
    n = ob_add_node(m, "Cast", "cast", 1, &ga, 1, &y1);
    ob_attr_int(n, "to", ROUSE_DT_DOUBLE);
    n = ob_add_node(m, "Softmax", "softmax", 1, &g, 1, &y2);
    ob_attr_int(n, "axis", -1);
    n = ob_add_node(m, "ReduceMean", "mean", 1, &cc, 1, &y3);
    ob_attr_ints(n, "axes", 1, axes);
    ob_output_any(m, "y1", ROUSE_DT_DOUBLE);
    ob_output_any(m, "y2", ROUSE_DT_FLOAT);
    ob_output_any(m, "y3", ROUSE_DT_FLOAT);

    return write_model(m, argv[1]);
}
