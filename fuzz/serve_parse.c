/*
 * libFuzzer target for what rouse serve parses from the network outside the
 * instance: function configs (PUT /v1/functions, and as stored: a config
 * read back from the registry takes the same parser with old fields
 * accepted) and request paths.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"
#include "server/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fn_config c;
    rouse_errbuf eb;
    if (fn_config_parse((const char *)data, size, &c, &eb) == 0) {
        rouse_buf b;
        rouse_buf_init(&b);
        fn_config_write(&c, &b);
        rouse_buf_fini(&b);
    }
    fn_config_load((const char *)data, size, &c, &eb);
    char *path = malloc(size + 1);
    if (!path) return 0;
    memcpy(path, data, size);
    path[size] = '\0';
    route r;
    route_match("GET", path, &r);
    route_match("PUT", path, &r);
    free(path);
    return 0;
}
