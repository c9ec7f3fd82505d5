/*
 * Copyright (C) edgehog
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <msgpack.h>

#include "eh_snapshot.h"


static int eh_snapshot_pack(msgpack_packer *pk, const json_t *v, int depth);
static json_t *eh_snapshot_unpack(const msgpack_object *o, int depth);


char *
eh_snapshot_encode(const json_t *doc, size_t *len)
{
    char             *p;
    msgpack_packer    pk;
    msgpack_sbuffer   sb;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    if (eh_snapshot_pack(&pk, doc, 0) != 0) {
        msgpack_sbuffer_destroy(&sb);
        return NULL;
    }

    /* the sbuffer's data is malloc'd: hand it over; release zeroes size */
    *len = sb.size;
    p = msgpack_sbuffer_release(&sb);

    if (p == NULL) {
        p = malloc(1);
        *len = 0;
    }

    return p;
}


json_t *
eh_snapshot_decode(const char *data, size_t len, char *err, size_t errlen)
{
    json_t                 *v;
    size_t                  off;
    msgpack_unpacked        u;
    msgpack_unpack_return   rc;

    msgpack_unpacked_init(&u);
    off = 0;

    rc = msgpack_unpack_next(&u, data, len, &off);

    if (rc != MSGPACK_UNPACK_SUCCESS) {
        snprintf(err, errlen, "malformed msgpack (%d)", (int) rc);
        msgpack_unpacked_destroy(&u);
        return NULL;
    }

    if (off != len) {
        snprintf(err, errlen, "%zu trailing bytes", len - off);
        msgpack_unpacked_destroy(&u);
        return NULL;
    }

    v = eh_snapshot_unpack(&u.data, 0);
    msgpack_unpacked_destroy(&u);

    if (v == NULL) {
        snprintf(err, errlen, "unsupported msgpack value or nesting");
    }

    return v;
}


static int
eh_snapshot_pack(msgpack_packer *pk, const json_t *v, int depth)
{
    size_t       i, n;
    json_t      *item;
    const char  *key, *s;

    if (depth > EH_SNAPSHOT_DEPTH_MAX) {
        return -1;
    }

    switch (json_typeof(v)) {

    case JSON_OBJECT:
        msgpack_pack_map(pk, json_object_size(v));

        json_object_foreach((json_t *) v, key, item) {
            n = strlen(key);
            msgpack_pack_str(pk, n);
            msgpack_pack_str_body(pk, key, n);

            if (eh_snapshot_pack(pk, item, depth + 1) != 0) {
                return -1;
            }
        }

        return 0;

    case JSON_ARRAY:
        n = json_array_size(v);
        msgpack_pack_array(pk, n);

        for (i = 0; i < n; i++) {
            if (eh_snapshot_pack(pk, json_array_get(v, i), depth + 1) != 0) {
                return -1;
            }
        }

        return 0;

    case JSON_STRING:
        s = json_string_value(v);
        n = json_string_length(v);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, s, n);
        return 0;

    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(v));
        return 0;

    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(v));
        return 0;

    case JSON_TRUE:
        msgpack_pack_true(pk);
        return 0;

    case JSON_FALSE:
        msgpack_pack_false(pk);
        return 0;

    default:
        msgpack_pack_nil(pk);
        return 0;
    }
}


static json_t *
eh_snapshot_unpack(const msgpack_object *o, int depth)
{
    char        *key;
    json_t      *v, *item;
    uint32_t     i;

    if (depth > EH_SNAPSHOT_DEPTH_MAX) {
        return NULL;
    }

    switch (o->type) {

    case MSGPACK_OBJECT_NIL:
        return json_null();

    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);

    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t) INT64_MAX) {
            return json_real((double) o->via.u64);
        }

        return json_integer((json_int_t) o->via.u64);

    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t) o->via.i64);

    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        /* jansson has no NaN/Infinity: they become null */
        if (o->via.f64 != o->via.f64 || o->via.f64 - o->via.f64 != 0) {
            return json_null();
        }

        return json_real(o->via.f64);

    case MSGPACK_OBJECT_STR:
        return json_stringn(o->via.str.ptr, o->via.str.size);

    case MSGPACK_OBJECT_BIN:
        return json_stringn(o->via.bin.ptr, o->via.bin.size);

    case MSGPACK_OBJECT_ARRAY:
        v = json_array();

        for (i = 0; v && i < o->via.array.size; i++) {
            item = eh_snapshot_unpack(&o->via.array.ptr[i], depth + 1);

            if (item == NULL || json_array_append_new(v, item) != 0) {
                json_decref(v);
                return NULL;
            }
        }

        return v;

    case MSGPACK_OBJECT_MAP:
        v = json_object();

        for (i = 0; v && i < o->via.map.size; i++) {
            const msgpack_object  *k = &o->via.map.ptr[i].key;

            if (k->type != MSGPACK_OBJECT_STR) {
                json_decref(v);
                return NULL;
            }

            key = malloc(k->via.str.size + 1);
            if (key == NULL) {
                json_decref(v);
                return NULL;
            }

            memcpy(key, k->via.str.ptr, k->via.str.size);
            key[k->via.str.size] = '\0';

            item = eh_snapshot_unpack(&o->via.map.ptr[i].val, depth + 1);

            /* keys with NUL bytes or invalid UTF-8 are refused by jansson */
            if (item == NULL || json_object_set_new(v, key, item) != 0) {
                free(key);
                json_decref(v);
                return NULL;
            }

            free(key);
        }

        return v;

    default:
        return NULL;
    }
}
