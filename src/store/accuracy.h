/*
 * The accuracy figures of a version's plan against fp32 (precision,
 * per-output top-1 agreement and errors, layers kept fp32), as the deploy
 * check measured them: one JSON object per version, in the registry next
 * to the version and deleted with it (accuracy_sqlite.c). Serve returns
 * them in the deploy answer and in GET /v1/functions/{name}.
 */
#ifndef ROUSE_STORE_ACCURACY_H
#define ROUSE_STORE_ACCURACY_H

#include <stdint.h>

#include "rouse/err.h"
#include "store/store.h"

/* Records (or replaces) the figures of function's version: one JSON object
 * (not checked here). In a writer group (store/writer.h). */
int store_accuracy_set_tx(store *s, const char *function, int64_t version, const char *json,
                          rouse_errbuf *eb);

/* The figures of function's version into *json (owned: free with free()),
 * or *json NULL when none were recorded. */
int store_accuracy_get(store *s, const char *function, int64_t version, char **json,
                       rouse_errbuf *eb);

#endif
