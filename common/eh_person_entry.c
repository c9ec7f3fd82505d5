/*
 * Copyright (C) edgehog
 */


#include <stdio.h>
#include <string.h>

#include "eh_person_entry.h"


size_t
eh_person_key(char *buf, size_t size, int64_t team_id,
    const char *distinct_id, size_t len)
{
    int  n;

    n = snprintf(buf, size, EH_PERSON_KEY_PREFIX "%lld:", (long long) team_id);

    return eh_entry_key_append(buf, size, n, distinct_id, len);
}


size_t
eh_entry_key_append(char *buf, size_t size, int n, const char *tail,
    size_t len)
{
    size_t  total;

    if (n < 0) {
        return 0;
    }

    total = (size_t) n + len;

    if (total < size) {
        memcpy(buf + n, tail, len);
        buf[total] = '\0';

    } else if (size > 0) {
        /* truncated like snprintf, still NUL-terminated */
        if ((size_t) n < size) {
            memcpy(buf + n, tail, size - 1 - n);
        }

        buf[size - 1] = '\0';
    }

    return total;
}


char *
eh_person_entry_encode(int64_t id, const char *uuid, int64_t version,
    const json_t *properties)
{
    char    *s;
    json_t  *o;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    json_object_set_new(o, "id", json_integer(id));
    json_object_set_new(o, "uuid", json_string(uuid ? uuid : ""));
    json_object_set_new(o, "version", json_integer(version));
    json_object_set_new(o, "properties",
                        json_is_object(properties)
                        ? json_deep_copy(properties) : json_object());

    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);

    return s;
}


int
eh_person_entry_decode(const char *data, size_t len, eh_person_entry_t *entry)
{
    json_t      *o, *v;
    const char  *s;

    memset(entry, 0, sizeof(eh_person_entry_t));

    o = json_loadb(data, len, JSON_ALLOW_NUL, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }

    v = json_object_get(o, "properties");
    if (v != NULL && !json_is_object(v) && !json_is_null(v)) {
        json_decref(o);
        return -1;
    }

    entry->properties = json_is_object(v) ? json_incref(v) : json_object();

    v = json_object_get(o, "id");
    if (json_is_integer(v)) {
        entry->id = json_integer_value(v);
    }

    v = json_object_get(o, "version");
    if (json_is_integer(v)) {
        entry->version = json_integer_value(v);
    }

    s = json_string_value(json_object_get(o, "uuid"));
    if (s != NULL) {
        snprintf(entry->uuid, sizeof(entry->uuid), "%s", s);
    }

    json_decref(o);

    return entry->properties ? 0 : -1;
}


void
eh_person_entry_free(eh_person_entry_t *entry)
{
    json_decref(entry->properties);
    entry->properties = NULL;
}
