/*
 * libFuzzer target for the JSON parser and writer. Every input is parsed;
 * a document that parses is written back with the writer, and that text
 * must parse again. From the second round on the text is a fixed point
 * (the first may still differ: "-0.0" becomes "-0", which reads as the
 * integer 0). A failure must come with an
 * "at byte N:" message whose offset lies inside the input (or at its end).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

static void write_tree(rouse_buf *b, const json_value *v)
{
    switch (v->type) {
    case JSON_NULL:
        rouse_buf_append_str(b, "null");
        break;
    case JSON_TRUE:
        rouse_buf_append_str(b, "true");
        break;
    case JSON_FALSE:
        rouse_buf_append_str(b, "false");
        break;
    case JSON_NUMBER:
        if (v->u.num.is_int) {
            json_write_int64(b, v->u.num.i);
        } else if (v->u.num.is_uint) {
            json_write_uint64(b, (uint64_t)v->u.num.i);
        } else {
            json_write_double(b, v->u.num.d);
        }
        break;
    case JSON_STRING:
        json_write_string(b, v->u.str.s, v->u.str.len);
        break;
    case JSON_ARRAY:
        rouse_buf_append_byte(b, '[');
        for (size_t i = 0; i < v->u.arr.n; i++) {
            if (i) rouse_buf_append_byte(b, ',');
            write_tree(b, v->u.arr.items[i]);
        }
        rouse_buf_append_byte(b, ']');
        break;
    case JSON_OBJECT:
        rouse_buf_append_byte(b, '{');
        for (size_t i = 0; i < v->u.obj.n; i++) {
            if (i) rouse_buf_append_byte(b, ',');
            json_write_string(b, v->u.obj.members[i].key, v->u.obj.members[i].key_len);
            rouse_buf_append_byte(b, ':');
            write_tree(b, v->u.obj.members[i].value);
        }
        rouse_buf_append_byte(b, '}');
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rouse_arena arena;
    rouse_arena_init(&arena, 4096);
    rouse_errbuf eb;
    json_value *v;
    int rc = json_parse((const char *)data, size, &arena, &v, &eb);
    if (rc < 0) {
        size_t at;
        if (rc != ROUSE_EFORMAT || sscanf(eb.msg, "at byte %zu:", &at) != 1 || at > size) abort();
        rouse_arena_fini(&arena);
        return 0;
    }
    rouse_buf one, two, three;
    rouse_buf_init(&one);
    rouse_buf_init(&two);
    rouse_buf_init(&three);
    write_tree(&one, v);
    if (json_parse(one.data, one.len, &arena, &v, &eb) < 0) abort();
    write_tree(&two, v);
    if (json_parse(two.data, two.len, &arena, &v, &eb) < 0) abort();
    write_tree(&three, v);
    if (two.len != three.len || memcmp(two.data, three.data, two.len) != 0) abort();
    rouse_buf_fini(&one);
    rouse_buf_fini(&two);
    rouse_buf_fini(&three);
    rouse_arena_fini(&arena);
    return 0;
}
