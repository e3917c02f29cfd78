/*
 * Printing the precision and accuracy figures of a plan, the same way for
 * `rouse compile` and `rouse inspect`.
 */
#ifndef ROUSE_CLI_ACCURACY_H
#define ROUSE_CLI_ACCURACY_H

#include <stdio.h>

#include "common/buf.h"
#include "rouse/engine.h"

/* Lines like
 *   precision: bf16
 *   accuracy against fp32 on 450 samples (the calibration samples):
 *     logits         top-1 agreement 100.00%  max abs error 0.0312  max rel error 0.0011
 *   layers kept in fp32: none */
void cli_accuracy_print(FILE *out, const rouse_accuracy *a);

/* The same as a JSON object ({"precision": ..., "samples": ..., "outputs":
 * [...], "kept_fp32": [...]}) appended to b. 0 or ROUSE_ENOMEM. */
int cli_accuracy_json(const rouse_accuracy *a, rouse_buf *b);

/* What the samples were ("held back from calibration", ...). */
const char *cli_accuracy_source(int source);

#endif
