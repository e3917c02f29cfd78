/*
 * The writer: a thread that makes writes durable away from the event loop.
 *
 * The loop submits a write (an apply function, a copy of its arguments, a
 * completion callback and a user pointer) and goes on; the writer thread
 * runs the writes in submission order and reports each completion back
 * through an eventfd that the loop polls; store_writer_complete, called by
 * the loop, then runs the callbacks on the loop's thread, in submission
 * order. A slow disk delays only the writes (and the requests waiting for
 * them), never the loop.
 *
 * A writer made with a registry (store.h) owns that connection, the only
 * one that writes: it takes every write that queued up while the previous
 * group was being committed and runs them as one group, one transaction
 * (BEGIN IMMEDIATE, a savepoint per write so that a failing write is undone
 * alone, one COMMIT): many writes, one fsync, synchronous=FULL kept. A
 * write's completion runs only after the COMMIT that made it durable
 * returned, so an acknowledgement sent from it survives kill -9; when the
 * COMMIT fails, every write of the group completes with that error.
 *
 * A writer made without a registry runs each write alone (the blob store's
 * commits: an fsync per file, nothing to group); serve keeps one of these
 * beside the registry's, so that syncing a large upload never holds the
 * registry's transaction open.
 *
 * With the shared registry attached to st (store_attach_shared: serve
 * --state postgres://...), a group's registry writes go to PostgreSQL and
 * the rest (usage records, job states) stay in SQLite, in the same group:
 * PostgreSQL's COMMIT comes first, then the copy of what it changed into
 * the replica and the local COMMIT. When PostgreSQL's part fails (the
 * connection), only the writes that went there fail, with its error.
 *
 * Usage records (store/usage.h) and job states (server/jobq_local.c over
 * store/jobs.h) are further apply functions over *_tx forms of the store:
 * they join the same groups. A writer without a registry also runs reads
 * that must stay off the loop (serve's usage queries);
 * store_writer_submit_release frees their results.
 *
 * Threads: submit, complete, cancel and destroy belong to one thread (the
 * loop); apply functions run on the writer's thread and must touch nothing
 * but their arguments and the store. If submit fails, the callback never
 * runs.
 */
#ifndef ROUSE_STORE_WRITER_H
#define ROUSE_STORE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rouse/err.h"
#include "store/store.h"

typedef struct store_writer store_writer;

/* Runs on the writer thread. st is the writer's registry (inside the
 * group's transaction, within the write's savepoint), or NULL for a writer
 * without one. arg is the write's own copy of its arguments, which apply
 * may also use for results. 0 or a negative code with eb set. */
typedef int (*store_write_apply)(store *st, void *arg, rouse_errbuf *eb);

/* Runs on the loop thread once the write is durable (rc 0) or failed (rc <
 * 0, eb says why). arg is the write's arguments as apply left them; valid
 * during the call only. */
typedef void (*store_write_done)(void *user, int rc, const rouse_errbuf *eb, void *arg);

typedef struct store_writer_stats {
    uint64_t n_writes; /* completed writes */
    uint64_t n_groups; /* transactions (or single writes without a registry) */
    uint64_t max_group;
} store_writer_stats;

/* Starts the writer thread. st (NULL for none) becomes the writer's: closed
 * by store_writer_destroy, also when this call fails. Owned: free with
 * store_writer_destroy. */
int store_writer_create(store *st, const char *name, store_writer **out, rouse_errbuf *eb);

/* Finishes every submitted write (they stay durable), stops the thread and
 * frees the writer; completions not yet delivered are dropped without
 * their callbacks. NULL is a no-op. */
void store_writer_destroy(store_writer *w);

/* The eventfd to watch for EPOLLIN; call store_writer_complete when it is
 * readable. */
int store_writer_fd(const store_writer *w);

/* Queues a write; arg_len bytes at arg are copied. *ticket (optional)
 * identifies it for store_writer_cancel until its callback ran. 0, or
 * ROUSE_ENOMEM / ROUSE_ESTATE (writer stopping) and the callback never runs. */
int store_writer_submit(store_writer *w, store_write_apply apply, const void *arg, size_t arg_len,
                        store_write_done done, void *user, uint64_t *ticket);

/* Frees what apply left in arg (results of a read, say): runs on the loop
 * thread exactly once per write submitted with it, after its done callback,
 * or instead of it when the write was cancelled or the writer destroyed
 * first. */
typedef void (*store_write_release)(void *arg);

/* store_writer_submit with a release function (see above). */
int store_writer_submit_release(store_writer *w, store_write_apply apply, const void *arg,
                                size_t arg_len, store_write_done done, store_write_release release,
                                void *user, uint64_t *ticket);

/* store_writer_submit_release for a background write (usage records and
 * their roll-ups): nothing waits for it but its own callback, so its
 * wakeup of the writer thread does not preempt the thread running on a
 * busy core; it runs when the scheduler next picks the writer (same share
 * of the CPU, no wakeup preemption: SCHED_BATCH). A foreground write (any
 * other submit) wakes the writer with the ordinary policy. No ticket. */
int store_writer_submit_background(store_writer *w, store_write_apply apply, const void *arg,
                                   size_t arg_len, store_write_done done,
                                   store_write_release release, void *user);

/* The write still happens, but its callback will not run (its user went
 * away). Unknown or finished tickets are ignored. */
void store_writer_cancel(store_writer *w, uint64_t ticket);

/* Runs the callbacks of the writes completed so far, in submission order. */
void store_writer_complete(store_writer *w);

/* Writes submitted and not yet completed on the loop's side. */
int store_writer_pending(const store_writer *w);

void store_writer_stats_get(store_writer *w, store_writer_stats *out);

#endif
