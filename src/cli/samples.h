/*
 * Reading sample inputs (for `rouse compile --calibrate/--validate` and
 * `rouse deploy --calibrate`) from one of three layouts:
 *   1. an ONNX backend-test folder: DIR/test_data_set_K/input_N.pb, one
 *      sample per set (input_N.pb feeds the input named in its TensorProto,
 *      or input N when that name is empty or unknown);
 *   2. one subfolder per sample, each with one NAME.npy per model input;
 *   3. one NAME.npy per model input directly in DIR, the samples stacked on
 *      the batch axis (each row becomes a sample of batch 1).
 * Every file is checked against the model (name, type, shape, count); an
 * error names the file and what does not fit. Never prints.
 */
#ifndef ROUSE_CLI_SAMPLES_H
#define ROUSE_CLI_SAMPLES_H

#include "rouse/engine.h"
#include "rouse/err.h"

/* Reads the samples in dir for model m. Owned: free with rouse_samples_destroy. */
int cli_samples_read(const char *dir, const rouse_model *m, rouse_samples **out, rouse_errbuf *eb);

/* Which layout cli_samples_read found: 1, 2 or 3 as above. */
int cli_samples_layout(const char *dir);

#endif
