/*
 * The instance process: loads one model, then answers requests from serve
 * over its socket (ipc.h) one at a time until serve closes the socket.
 *
 * Tensors are decoded and encoded here (oip.h), never in serve. Bad input
 * is answered with a 400 and a message naming the tensor; the instance
 * never exits because of a request.
 */
#ifndef ROUSE_WORKER_INSTANCE_H
#define ROUSE_WORKER_INSTANCE_H

#include <stdbool.h>

typedef struct instance_opts {
    int fd;                 /* the SOCK_SEQPACKET end inherited from serve */
    const char *model_path; /* the model file (a blob) */
    const char *name;       /* function name, echoed as model_name */
    const char *version;    /* version, echoed as model_version */
    int threads;            /* kernel threads; 0 means 1 */
    bool check_only;        /* load, report READY or the error, exit: deploy validation */
} instance_opts;

/* Runs the instance until its socket closes. Returns the process exit
 * status: 0 after a clean end, 1 when the model failed to load (already
 * reported to serve), 2 when the socket itself failed. */
int instance_main(const instance_opts *o);

#endif
