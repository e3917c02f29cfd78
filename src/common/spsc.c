/*
 * Allocation of the single-producer single-consumer queue (spsc.h); the
 * operations are inline in the header.
 */
#include "common/spsc.h"

#include <stdlib.h>

#include "rouse/err.h"

int spsc_init(spsc *q, size_t slot_size, uint32_t n_slots)
{
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    q->slot_size = slot_size;
    q->n_slots = n_slots;
    q->slots = calloc(n_slots, slot_size);
    return q->slots ? 0 : ROUSE_ENOMEM;
}

void spsc_fini(spsc *q)
{
    free(q->slots);
    q->slots = NULL;
}
