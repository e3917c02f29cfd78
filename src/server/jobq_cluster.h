/*
 * The job queue of several nodes (jobq.h): records in PostgreSQL
 * (store/jobs_pg.h), delivery through NATS JetStream. Chosen by serve when
 * both --state postgres://... and --bus nats://... are given.
 *
 * Enqueue commits the job in PostgreSQL, then publishes its id on
 * `rouse.jobs.<function key in hex>` of the stream ROUSE_JOBS (work-queue
 * retention, file storage) and waits for JetStream's ack; the 202 follows
 * both. A publish that failed after the commit is left to the sweep, which
 * republishes queued jobs not marked published: a committed job is never
 * stranded. Each function has one durable pull consumer shared by every
 * node (explicit ack, unlimited deliveries: attempts are counted in
 * PostgreSQL); a node fetches only as many messages as it can run now.
 * A fetched message leases its job with a conditional UPDATE (queued, or
 * running under a lease whose holder stopped renewing it); while the job
 * is held the node renews the lease and tells JetStream it is in progress
 * (+WPI); its end is recorded with an UPDATE naming the lease, then acked
 * (a retry is a NAK with the backoff as delay). A node killed with jobs
 * held stops renewing: JetStream redelivers after the ack wait, and the
 * next node takes the job over once the lease ran out.
 *
 * Batch files: the POST's write copies the input into PostgreSQL with
 * the batch and its first chunk of items; each item is a job (its line as
 * its body) published like an enqueue's, so that any node runs it. A run
 * that ends an item reports how many of its batch are left; the output is
 * written once (under the batch's row lock) by whichever node asks first
 * with none left. The heartbeat also finds batches whose creation stalled
 * (their node died: taken over from where it stopped) or whose output is
 * due (jobq_batch_wake_fn).
 *
 * Everything that touches the network runs on a writer thread of the
 * queue's own (store/writer.h, without a registry), whose eventfd the
 * loop watches; its connections are its own.
 */
#ifndef ROUSE_SERVER_JOBQ_CLUSTER_H
#define ROUSE_SERVER_JOBQ_CLUSTER_H

#include "server/jobq.h"

typedef struct jobq_cluster_opts {
    const char *state_url; /* postgres://... */
    const char *bus_url;   /* nats://... */
    const char *node_name;
    /* JetStream's ack wait, and a lease's length: 30 s unless the test
     * knob ROUSE_JOBS_ACK_WAIT_MS says otherwise (0 here). */
    int64_t ack_wait_ms;
} jobq_cluster_opts;

/* Connects to both, applies the jobs schema's migrations and makes sure
 * of the stream. Owned: free with jobq_destroy. */
int jobq_cluster_create(const jobq_cluster_opts *o, jobq **out, rouse_errbuf *eb);
/* The queue's writer, whose eventfd the loop watches (EP_WRITER). */
store_writer *jobq_cluster_writer(jobq *q);

#endif
