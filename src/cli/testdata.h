/*
 * Running ONNX backend-test folders: DIR/model.onnx with
 * DIR/test_data_set_K/input_N.pb and output_N.pb. Shared by `rouse run DIR`
 * and the conformance runners in tests/engine/. Never prints.
 *
 * Matching rules (those of the ONNX backend runner): input_N.pb feeds the
 * model input named in its TensorProto, or model input N when that name is
 * empty or unknown; output_N.pb is compared with the output of the same name,
 * or with output N. Data of type uint16 for a bfloat16 input or output is
 * read as bfloat16 (ONNX writes bfloat16 test data as uint16 bit patterns).
 */
#ifndef ROUSE_CLI_TESTDATA_H
#define ROUSE_CLI_TESTDATA_H

#include <stdbool.h>

#include "cli/tensor_compare.h"
#include "rouse/engine.h"
#include "rouse/err.h"

/* Names of the test_data_set_* folders in dir, sorted by their number.
 * Owned: free with cli_testdata_free_list. Zero folders is not an error. */
int cli_testdata_list_sets(const char *dir, char ***names, int *n_names, rouse_errbuf *eb);
void cli_testdata_free_list(char **names, int n_names);

typedef struct cli_set_result {
    double max_abs; /* over every compared output */
    double max_rel;
    bool engine_error; /* the failure came from rouse_session_run */
} cli_set_result;

/* Feeds one set's inputs to s, runs it and compares every output_N.pb.
 * 0 when all outputs agree; ROUSE_EMISMATCH naming the first differing
 * output and element; otherwise the error of reading a file or of the
 * engine (res->engine_error tells which). */
int cli_testdata_run_set(rouse_model *m, rouse_session *s, const char *set_dir, cli_tolerance tol,
                         cli_set_result *res, rouse_errbuf *eb);

#endif
