/*
 * Registry events on the bus (subject REGEVENT_SUBJECT): after each of its
 * registry writes a node publishes {"node": its name, "fn": the function
 * key written, "seq": the registry's sequence number after it}; every
 * other node then resyncs its replica (regsync_poke). An event lost on the
 * way is caught by the replica's own poll of the sequence number.
 */
#ifndef ROUSE_SERVER_REGEVENT_H
#define ROUSE_SERVER_REGEVENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "rouse/err.h"

#define REGEVENT_SUBJECT "rouse.registry"

typedef struct regevent {
    char node[64];
    char fn[257];
    int64_t seq;
} regevent;

int regevent_format(const char *node, const char *fn, int64_t seq, rouse_buf *out);
/* Parses an event (untrusted bytes); ROUSE_EFORMAT with the reason. */
int regevent_parse(const char *data, size_t len, regevent *out, rouse_errbuf *eb);

#endif
