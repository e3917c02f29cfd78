/*
 * The int8 rewrite's entry point, until the int8 kernels and the quantizer
 * land: compiling for int8 is refused with a clear error, nothing changed.
 */
#include "engine/quantize.h"

int eng_quantize_int8(eng_graph *g, const eng_samples *calib, eng_quant_report *rep,
                      rouse_errbuf *eb)
{
    (void)g;
    (void)calib;
    rep->n_kept = 0;
    rep->kept = NULL;
    return rouse_err_set(eb, ROUSE_EUNSUPPORTED, "int8: not built yet");
}
