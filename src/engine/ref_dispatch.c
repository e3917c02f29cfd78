/*
 * Node -> reference kernel: runs the op's descriptor `run` hook
 * (engine/op.h), then the node's fused post-ops.
 */
#include "engine/ref_dispatch.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/op.h"
#include "engine/ref/ref.h"

int eng_ref_run_node(const eng_node *n, const eng_attrs *resolved, const eng_tensor *const *in,
                     eng_tensor *const *out, rouse_errbuf *eb)
{
    const eng_op_desc *d = eng_op_desc_get(n->op);
    if (!d || !d->run)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "node '%s' (%s): no reference kernel", n->name,
                             eng_op_name(n->op));
    int rc = d->run(n, resolved, in, out, eb);
    if (rc < 0) return rc;
    if (n->n_post) {
        const eng_tensor *sum_src = NULL;
        for (int i = 0; i < n->n_post; i++)
            if (n->post[i].kind == ENG_POST_SUM) sum_src = in[n->post[i].sum_input];
        rc = ref_postops(n->n_post, n->post, sum_src, out[0]);
        if (rc < 0)
            return rouse_err_set(eb, rc, "node '%s' (%s): fused operations failed: %s", n->name,
                                 eng_op_name(n->op), rouse_strerror(rc));
    }
    return 0;
}

int eng_run_fail(const eng_node *n, rouse_errbuf *eb, int rc, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rouse_err_set(eb, rc, "node '%s' (%s): %s", n->name ? n->name : "", eng_op_name(n->op),
                         msg);
}
