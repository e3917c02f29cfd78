/*
 * The framed protocol between serve and its instances.
 *
 * One SOCK_SEQPACKET unix socketpair per instance: every message is one
 * packet holding a fixed ipc_msg header. A body (request payload, encoded
 * response) never travels through the socket; it is either
 * - in the instance's shared region (IPC_F_IN_REGION): one sealed memfd per
 *   instance, created by serve, mapped once on both sides and passed along
 *   (IPC_F_REGION) only with the first request that uses it or when serve
 *   replaces it by a bigger one. Serve lends the whole region to one request
 *   at a time: it writes the body at offset 0, and the instance may write the
 *   reply at offset 0 once it has encoded it (the body is dead by then). The
 *   region returns to serve with that request's reply. Steady-state requests
 *   therefore cost no memfd_create, mmap or close on either side; or
 * - in a memfd of its own passed with SCM_RIGHTS (first body_len bytes):
 *   bodies too big for the region, requests that find the region lent to an
 *   earlier request of the same instance (concurrency > 1), replies that do
 *   not fit, and the template and READY messages.
 * Serve never parses tensor data either way.
 *
 * Conversation: the instance sends IPC_READY once its model is loaded
 * (status 0) or failed to load (status 400, body {"error": ...}, then it
 * exits). serve then sends IPC_INFER / IPC_META requests; the instance
 * answers each with one IPC_REPLY carrying the same id, in order.
 *
 * Text generation (IPC_GENERATE, a function with "task": "text-generation")
 * is the one request answered in several packets: any number of IPC_CHUNK
 * (the next bytes of a streamed reply, carried in the packet right after
 * the header: no memfd per token), then the one IPC_REPLY that ends it
 * (its body: the rest). The first chunk's status and content type are the
 * reply's. serve may send IPC_CANCEL with the request's id while it runs
 * (the client left): the instance stops generating and still ends the
 * request with its IPC_REPLY. A cancel that finds nothing running is
 * ignored. A generator with scaling.concurrency N > 1 (--streams N) takes
 * up to N IPC_GENERATE at once and decodes them together: their chunks
 * interleave, each carrying its request's id, and each request's
 * IPC_REPLY comes when that stream ends, in any order; a cancel stops only
 * the stream it names. A cancel with status 504 (json_len: the function's
 * timeout_ms) is serve's deadline: the request is ended with that error
 * (its reply a 504, or an error event when chunks went out already).
 *
 * A template speaks the same protocol on its control socket: IPC_READY once
 * its plan is open and its session prepared (dur_ns: plan open, prepare),
 * then for each IPC_SPAWN (whose passed descriptor is the new instance's
 * socket) one IPC_REPLY with the same id and the instance's pid (status 0)
 * or an error status. The forked instance then sends its own IPC_READY on
 * the passed socket, as an exec'd instance does.
 */
#ifndef ROUSE_WORKER_IPC_H
#define ROUSE_WORKER_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rouse/err.h"

#define IPC_MAGIC 0x72737531u /* "rsu1" */
#define IPC_CONTENT_TYPE_MAX 48

/* ipc_msg.flags */
#define IPC_F_REGION 1u    /* the passed descriptor is the instance's new shared region */
#define IPC_F_IN_REGION 2u /* the body is bytes [0, body_len) of the shared region */
#define IPC_F_SPARE 4u     /* READY from a template's spare, warm (pid: its own) */
#define IPC_F_BATCH 8u     /* REPLY to IPC_BATCH: the body is an ipc_batch_head and results */
#define IPC_F_CPU 16u      /* INFER, BATCH: the reply's dur_ns[1] is its CPU time in the instance */

typedef enum ipc_type {
    IPC_READY = 1, /* instance -> serve: model loaded (status 0) or not */
    IPC_INFER = 2, /* serve -> instance: body is an OIP infer request */
    IPC_META = 3,  /* serve -> instance: body is int64 versions; reply is model metadata */
    IPC_REPLY = 4, /* instance -> serve: HTTP status, content type, body */
    IPC_SPAWN = 5, /* serve -> template: fork an instance serving the passed socket */
    IPC_SPARE = 6, /* serve -> template: keep a spare (status 1) or not (status 0) */
    IPC_OUTPUT = 7, /* template -> serve, before READY: the passed descriptor is the read end
                       of the pipe its stdout and stderr (and its instances') write to */
    IPC_GENERATE = 8, /* serve -> instance: body is an OpenAI completions request (json_len
                         IPC_GEN_COMPLETIONS) or chat completions request (IPC_GEN_CHAT) */
    IPC_CHUNK = 9,    /* instance -> serve: the next bytes of a streamed reply, inline */
    IPC_CANCEL = 10,  /* serve -> instance: stop generating request id */
    IPC_BATCH = 11, /* serve -> instance: several OIP infer requests run as batches */
    IPC_REGION = 12, /* serve -> instance, between requests: the passed descriptor is its new
                        shared region (IPC_F_REGION, region_size), mapped ahead; no reply */
} ipc_type;

/* IPC_GENERATE: which endpoint the body came to (in json_len). */
enum { IPC_GEN_COMPLETIONS = 0, IPC_GEN_CHAT = 1 };

/* The most bytes an IPC_CHUNK carries after its header. */
#define IPC_CHUNK_MAX 8192
#define IPC_WARNING_MAX 96

/* The fixed header of every packet. Plain data, same process image on both
 * sides (the instance is an exec of the same binary), so no byte swapping. */
typedef struct ipc_msg {
    uint32_t magic;
    uint32_t type;        /* ipc_type */
    uint64_t id;          /* request id, echoed by the reply */
    int32_t status;       /* replies: HTTP status; READY: 0 or 400 */
    uint32_t pid;         /* READY: the instance's pid */
    int64_t json_len;     /* Inference-Header-Content-Length, -1 when all JSON */
    uint64_t body_len;    /* bytes of the memfd (or the region) that belong to the body */
    uint32_t flags;       /* IPC_F_* */
    uint32_t poll_us;     /* INFER: poll this long for the next request after replying */
    uint64_t region_size; /* IPC_F_REGION: bytes of the passed region */
    char content_type[IPC_CONTENT_TYPE_MAX];
    int64_t version; /* INFER: the version the response names (0: the instance's own) */
    /* Timings in ns. Template READY: [0] plan open, [1] session prepare,
     * [2] 1 when the plan came from the cache. REPLY: [0] time spent on the
     * request in the instance (decode, run, encode), [1] with IPC_F_CPU the
     * instance's CPU time for it, [2] with IPC_F_CPU from a batching
     * instance the CPU time it spent between its previous reply and this
     * request (polling for it, waking up; 0: not known); of a generation,
     * [1] the time to the first token and [2] between tokens. SPAWN reply:
     * [0] fork. */
    uint64_t dur_ns[3];
    /* REPLY, first CHUNK: a Warning for the client ("" when none), e.g. the
     * request parameters a generator ignored. */
    char warning[IPC_WARNING_MAX];
    /* Template READY of a batching function: the activation memory of a
     * session prepared for its largest batch (what each instance holds for
     * it), in bytes; 0 otherwise. */
    uint64_t mem_bytes;
    /* The first CHUNK and the REPLY of an IPC_GENERATE decoded with other
     * streams (--streams): the chunks its prompt was prefilled in, and the
     * other streams' decode steps run between them (0 and 0 otherwise),
     * and the streams it was prefilled with in one run (batching; 0: alone). */
    uint32_t prefill_chunks, prefill_steps, prefill_group;
} ipc_msg;

/* Dynamic batching (IPC_BATCH). The request body, in the region or a memfd:
 * an ipc_batch_head, n ipc_batch_item, then the OIP bodies at their
 * offsets (from the start of the body, 8-byte aligned). The instance
 * decodes each request alone (one that does not decode gets its own error
 * and joins no batch), runs those whose inputs agree in everything but dim
 * 0 together, concatenated along dim 0, and answers with one IPC_REPLY
 * (flags IPC_F_BATCH, id the batch's) whose body is an ipc_batch_head, n
 * ipc_batch_result in request order, then the reply bodies at their
 * offsets. */
typedef struct ipc_batch_head {
    uint32_t magic; /* IPC_MAGIC */
    uint32_t n;     /* requests (results) that follow */
    uint64_t batch_id;
} ipc_batch_head;

typedef struct ipc_batch_item {
    uint64_t id;      /* the call's id, echoed in its result */
    uint64_t off;     /* its body: bytes [off, off + len) */
    uint64_t len;
    int64_t json_len; /* Inference-Header-Content-Length, or -1 */
} ipc_batch_item;

typedef struct ipc_batch_result {
    uint64_t id;
    int32_t status; /* HTTP status */
    uint32_t batch; /* requests in the engine run it joined (0: none, an error) */
    uint64_t off, len;
    int64_t json_len;
    uint64_t run_ns; /* the engine run it joined, or its decoding */
    /* What metering bills it: its share of the piece of work it was part
     * of (that engine run, its inputs and the outputs split back, divided
     * by the requests in it), or its decoding alone. */
    uint64_t bill_ns;
    char content_type[IPC_CONTENT_TYPE_MAX];
} ipc_batch_result;

/* Bytes ahead of the bodies of an n-item batch, rounded to 8. */
static inline uint64_t ipc_batch_table_len(uint32_t n)
{
    return (sizeof(ipc_batch_head) + (uint64_t)n * sizeof(ipc_batch_result) + 7) & ~7ull;
}

/* Initializes a header of the given type (magic set, json_len -1). */
void ipc_msg_init(ipc_msg *m, ipc_type type, uint64_t id);

/* The packet layer under both the ipc_msg protocol and the zygote's
 * (worker/zygote.c): one SOCK_SEQPACKET packet with at most one passed
 * descriptor.
 *
 * Sends buf[0..len) with descriptor fd unless it is -1 (the caller keeps
 * its own copy). Retries on EINTR. 0, or -1 with errno set (EMSGSIZE for a
 * short write). */
int ipc_send_packet(int sock, const void *buf, size_t len, int fd);

/* Receives one packet into buf[0..cap) (recvmsg flags, e.g. MSG_DONTWAIT,
 * besides MSG_CMSG_CLOEXEC); *fd is the passed descriptor or -1 (owned by
 * the caller). Returns its length (0 with *fd -1: end of stream), or -1
 * with errno set: EMSGSIZE for a packet cut short or passing more than one
 * descriptor (all of them closed), EAGAIN when nothing waits. Retries on
 * EINTR. */
ssize_t ipc_recv_packet(int sock, void *buf, size_t cap, int *fd, int flags);

/* Sends one packet; body_fd >= 0 is passed along (the caller keeps its own
 * copy and closes it). Retries on EINTR. ROUSE_EIO with errno text. */
int ipc_send(int sock, const ipc_msg *m, int body_fd, rouse_errbuf *eb);

/* Receives one packet. *body_fd is the passed memfd or -1 (owned by the
 * caller). ROUSE_ENOTFOUND at end of stream (peer gone), ROUSE_EFORMAT for
 * a packet that is not a well-formed header, ROUSE_EIO otherwise. With
 * nonblocking sockets, ROUSE_EBUSY when nothing is waiting. */
int ipc_recv(int sock, ipc_msg *m, int *body_fd, rouse_errbuf *eb);
/* ipc_recv that never blocks: ROUSE_EBUSY when nothing is waiting. */
int ipc_recv_nowait(int sock, ipc_msg *m, int *body_fd, rouse_errbuf *eb);
/* ipc_recv that also takes an IPC_CHUNK: its inline bytes go to
 * payload[0..*payload_len) (cap at least IPC_CHUNK_MAX). Every other
 * packet has *payload_len 0. flags as ipc_recv_packet's. */
int ipc_recv_chunked(int sock, ipc_msg *m, int *body_fd, void *payload, size_t cap,
                     size_t *payload_len, int flags, rouse_errbuf *eb);

/* Sends an IPC_CHUNK of request id with data[0..len), len <= IPC_CHUNK_MAX;
 * m (may be NULL) gives the status, content type, timings and warning. */
int ipc_send_chunk(int sock, uint64_t id, const ipc_msg *m, const void *data, size_t len,
                   rouse_errbuf *eb);

/* A memfd holding a copy of data[0..len). Owned: close(). */
int ipc_memfd_from(const void *data, size_t len, int *fd, rouse_errbuf *eb);

/* An empty memfd for a body that is written in pieces (ipc_memfd_write). */
int ipc_memfd_create(const char *name, int *fd, rouse_errbuf *eb);
int ipc_memfd_write(int fd, const void *data, size_t len, rouse_errbuf *eb);

/* Maps body_len bytes of a body memfd read-only; *map is NULL for an empty
 * body. Unmap with ipc_unmap. ROUSE_EFORMAT when the file is shorter. */
int ipc_map(int fd, uint64_t body_len, const void **map, rouse_errbuf *eb);
void ipc_unmap(const void *map, uint64_t body_len);

/* A new shared region of `size` bytes mapped read-write: a memfd sealed
 * against shrinking and growing, so that the peer cannot truncate it under
 * our mapping. Owned: close(*fd) once passed, ipc_region_unmap(*map, size). */
int ipc_region_create(uint64_t size, int *fd, void **map, rouse_errbuf *eb);

/* Maps a region received with IPC_F_REGION read-write. ROUSE_EFORMAT when the
 * file is shorter than size. The descriptor may be closed afterwards. */
int ipc_region_map(int fd, uint64_t size, void **map, rouse_errbuf *eb);
void ipc_region_unmap(void *map, uint64_t size);

#endif
