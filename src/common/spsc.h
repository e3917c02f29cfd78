/*
 * A bounded single-producer single-consumer queue of fixed-size slots, for
 * handing records from serve's loop thread to a thread of its own (the
 * access log's writer, the trace exporter) without a lock or a system call
 * on the producer's side.
 *
 * Invariants: exactly one thread produces (spsc_claim + spsc_publish) and
 * exactly one consumes (spsc_peek + spsc_release); head and tail only grow
 * (slot = counter % n_slots); tail <= head <= tail + n_slots. A slot is
 * written only between claim and publish, read only between peek and
 * release, so the two threads never touch the same slot at once. Memory
 * for the slots is allocated once at creation.
 */
#ifndef ROUSE_COMMON_SPSC_H
#define ROUSE_COMMON_SPSC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct spsc {
    _Alignas(64) _Atomic uint64_t head; /* next slot the producer publishes */
    _Alignas(64) _Atomic uint64_t tail; /* next slot the consumer reads */
    _Alignas(64) size_t slot_size;
    uint32_t n_slots;
    unsigned char *slots;
} spsc;

/* Allocates n_slots slots of slot_size bytes: 0 or ROUSE_ENOMEM. */
int spsc_init(spsc *q, size_t slot_size, uint32_t n_slots);
void spsc_fini(spsc *q);

/* Producer: the next free slot, or NULL when the queue is full. */
static inline void *spsc_claim(spsc *q)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (h - t >= q->n_slots) return NULL;
    return q->slots + (size_t)(h % q->n_slots) * q->slot_size;
}

/* Producer: makes the slot from spsc_claim visible to the consumer. */
static inline void spsc_publish(spsc *q)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    atomic_store_explicit(&q->head, h + 1, memory_order_release);
}

/* Consumer: the oldest published slot, or NULL when empty. */
static inline void *spsc_peek(spsc *q)
{
    uint64_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    if (t == h) return NULL;
    return q->slots + (size_t)(t % q->n_slots) * q->slot_size;
}

/* Consumer: gives the slot from spsc_peek back to the producer. */
static inline void spsc_release(spsc *q)
{
    uint64_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
}

/* Either side: slots published and not yet released (a snapshot). */
static inline uint32_t spsc_used(spsc *q)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    return (uint32_t)(h - t);
}

#endif
