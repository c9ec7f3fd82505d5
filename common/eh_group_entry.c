/*
 * Copyright (C) edgehog
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eh_group_entry.h"
#include "eh_person_entry.h"


size_t
eh_group_key(char *buf, size_t size, int64_t team_id, int gti,
    const char *group_key, size_t len)
{
    int  n;

    n = snprintf(buf, size, EH_GROUP_KEY_PREFIX "%lld:%d:",
                 (long long) team_id, gti);

    return eh_entry_key_append(buf, size, n, group_key, len);
}


char *
eh_group_entry_encode(int64_t version, const json_t *properties)
{
    char    *s;
    json_t  *o;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    json_object_set_new(o, "version", json_integer(version));
    json_object_set_new(o, "properties",
                        json_is_object(properties)
                        ? json_deep_copy(properties) : json_object());

    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);

    return s;
}


json_t *
eh_group_entry_decode(const char *data, size_t len)
{
    json_t  *o, *p;

    o = json_loadb(data, len, JSON_ALLOW_NUL, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }

    p = json_object_get(o, "properties");

    if (p == NULL || json_is_null(p)) {
        p = json_object();

    } else if (json_is_object(p)) {
        json_incref(p);

    } else {
        p = NULL;
    }

    json_decref(o);

    return p;
}


size_t
eh_hko_key(char *buf, size_t size, int64_t team_id, int64_t person_id)
{
    int  n;

    n = snprintf(buf, size, EH_HKO_KEY_PREFIX "%lld:%lld",
                 (long long) team_id, (long long) person_id);

    return n < 0 ? 0 : (size_t) n;
}


char *
eh_hko_pending_encode(int64_t team_id, int64_t person_id,
    const char *flag_key, const char *hash_key, size_t hash_key_len)
{
    char    *s;
    json_t  *o;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    json_object_set_new(o, "team_id", json_integer(team_id));
    json_object_set_new(o, "person_id", json_integer(person_id));
    json_object_set_new(o, "feature_flag_key", json_string(flag_key));
    json_object_set_new(o, "hash_key",
                        json_stringn(hash_key, hash_key_len));

    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);

    return s;
}
