/*
 * Runs one node with the plain C reference kernels: the fallback executor
 * for ops and types that have no oneDNN kernel, and the evaluator used by
 * constant folding.
 */
#ifndef ROUSE_ENGINE_REF_DISPATCH_H
#define ROUSE_ENGINE_REF_DISPATCH_H

#include "engine/graph.h"
#include "engine/tensor.h"

/* in[k] is NULL for an omitted input; out[k] is NULL for an omitted output.
 * Output tensors carry their inferred shape and a buffer. `resolved` are the
 * attributes from eng_infer_node. Node post-ops are applied (a SUM post-op
 * reads its addend from in[post.sum_input]). Errors name the node. */
int eng_ref_run_node(const eng_node *n, const eng_attrs *resolved, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb);

#endif
