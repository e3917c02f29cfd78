/*
 * libFuzzer target for what nodes read from the bus (src/server/
 * membership.c, src/server/regevent.c): a node's membership document and a
 * registry event. Any bytes give a document or a clear error, never a
 * crash, a leak or a read past the buffer; an accepted document keeps its
 * limits (a node name and URL that fit, at most MEMBER_FNS_MAX functions,
 * counts never negative), and a document written back from its load parses
 * again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/membership.h"
#include "server/regevent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    member mb;
    if (member_parse((const char *)data, size, &mb, &eb) == 0) {
        if (!mb.name[0] || strlen(mb.url) > MEMBER_URL_MAX || mb.n_fns > MEMBER_FNS_MAX ||
            mb.slots_free < 0)
            abort();
        for (int i = 0; i < mb.n_fns; i++) {
            const route_load *l = &mb.fns[i].load;
            if (!l->known || l->instances < 0 || l->idle < 0 || l->free < 0 || l->queued < 0 ||
                mb.fns[i].version < 1)
                abort();
        }
        member_fini(&mb);
    } else if (!eb.msg[0]) {
        abort();
    }
    rouse_errbuf_clear(&eb);
    regevent ev;
    if (regevent_parse((const char *)data, size, &ev, &eb) == 0) {
        if (!ev.node[0] || ev.seq < 0) abort();
        rouse_buf b;
        rouse_buf_init(&b);
        regevent again;
        if (regevent_format(ev.node, ev.fn, ev.seq, &b) < 0 ||
            regevent_parse(b.data, b.len, &again, &eb) < 0 || strcmp(again.node, ev.node) != 0 ||
            strcmp(again.fn, ev.fn) != 0 || again.seq != ev.seq)
            abort();
        rouse_buf_fini(&b);
    } else if (!eb.msg[0]) {
        abort();
    }
    return 0;
}
