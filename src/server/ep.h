/*
 * What an epoll event of serve's loop points at: every watched descriptor
 * is registered with the address of an ep_tag that is the first member of
 * its owner (the HTTP daemon, the signalfd, a child process, a waiting
 * client), so that the loop hands each event to the part that owns it
 * without knowing that part's types.
 */
#ifndef ROUSE_SERVER_EP_H
#define ROUSE_SERVER_EP_H

typedef enum ep_kind {
    EP_MHD = 1,  /* the HTTP daemon's epoll descriptor (http.h) */
    EP_SIGNAL,   /* serve's signalfd (loop.c) */
    EP_PROC,     /* the socket of a process of the pool (pool.h) */
    EP_ZYGOTE,   /* the pool's zygote's control socket (pool.h) */
    EP_CLIENT,   /* the socket of a client waiting for the pool (http.h) */
    EP_WRITER,   /* the eventfd of a writer thread (store/writer.h; server_int.h) */
    EP_LISTEN,   /* the listening socket (http_gate.c accepts) */
    EP_GATE,     /* a new connection whose first request head is awaited (http_gate.c) */
    EP_TIMER,    /* the storage collection's timerfd (gc.c) */
    EP_KEEP_SET, /* the gate's epoll set of the connections MHD holds (http_gate.c) */
    EP_KEEP,     /* one of those connections, in that set (http_gate.c) */
    EP_OUTPUT,   /* the output pipe of a template and its instances (fnlog.h) */
    EP_CALLBACK, /* the eventfd of the callback thread (callback.h; async_glue.c) */
    EP_BATCH_TIMER, /* the pool's timerfd for batches waiting for more calls (pool.h) */
    EP_BLOB_REMOTE, /* the eventfd of the blob transfer threads (store/blob_remote.h) */
    EP_REGSYNC,     /* the registry sync's eventfd (regsync.h; shared_state.c) */
    EP_BUS,  /* the bus's or the forwarder's eventfd (cluster.c) */
    EP_GONE, /* an owner closed while the loop hands out one wait's events: its
              * memory is kept until the last of them (http_gate.c) */
} ep_kind;

typedef struct ep_tag {
    ep_kind kind;
} ep_tag;

#endif
