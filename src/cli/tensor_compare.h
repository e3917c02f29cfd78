/*
 * Comparing an engine output against a reference tensor, with the rule the
 * conformance suites use: floating-point elements pass when
 * |got - ref| <= atol + rtol * |ref| (NaN equals NaN, equal infinities are
 * equal); integer and bool elements must be equal; dtype and shape must match
 * exactly. Never prints: the verdict and a sentence go to the error buffer.
 */
#ifndef ROUSE_CLI_TENSOR_COMPARE_H
#define ROUSE_CLI_TENSOR_COMPARE_H

#include <stdint.h>

#include "rouse/engine.h"
#include "rouse/err.h"

typedef struct cli_tolerance {
    double atol;
    double rtol;
} cli_tolerance;

/* The tolerance of the ONNX model tests in ../shared/models. */
#define CLI_TOL_DEFAULT ((cli_tolerance){.atol = 1e-4, .rtol = 1e-3})

typedef struct cli_compare_result {
    double max_abs;    /* largest |got - ref| over pairs with a finite difference */
    double max_rel;    /* largest |got - ref| / |ref| over those pairs with ref != 0 */
    int64_t n_bad;     /* elements outside tolerance */
    int64_t first_bad; /* flat index of the first of them, or -1 */
} cli_compare_result;

/* Compares got with ref and fills res (zeroed first; also on mismatch).
 * Returns 0 when they agree; ROUSE_EMISMATCH when dtype, shape or some
 * elements differ, with a message such as "3 of 1000 elements outside
 * tolerance; first at index 17 [0, 17]: got 0.5 expected 0.6";
 * ROUSE_EUNSUPPORTED for an element type that cannot be compared;
 * ROUSE_EINVAL when a tensor's nbytes disagrees with its shape. */
int cli_tensor_compare(const rouse_tensor *got, const rouse_tensor *ref, cli_tolerance tol,
                       cli_compare_result *res, rouse_errbuf *eb);

/* Element i of a tensor of a floating-point type (float, double, float16,
 * bfloat16) as a double; 0 for other types. data need not be aligned. */
double cli_elem_as_double(int dtype, const void *data, int64_t i);

/* "[1, 3, 224, 224]" into buf (always terminated). Returns buf. */
char *cli_shape_str(int rank, const int64_t *shape, char *buf, size_t buf_len);

#endif
