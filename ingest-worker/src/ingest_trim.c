/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>

#include "ingest_trim.h"


static size_t ingest_trim_member_size(const char *key, json_t *v);
static int ingest_trim_key_cmp(const void *a, const void *b);


int
ingest_props_can_trim(const char *key, const ingest_props_ops_t *ops)
{
    if (strcmp(key, "email") == 0 || strcmp(key, "name") == 0
        || strcmp(key, "$creator_event_uuid") == 0
        || strncmp(key, "$initial_", 9) == 0)
    {
        return 0;
    }

    if (ops != NULL
        && ((json_is_object(ops->set) && json_object_get(ops->set, key))
            || (json_is_object(ops->set_once)
                && json_object_get(ops->set_once, key))))
    {
        return 0;
    }

    return 1;
}


long
ingest_props_trim(json_t *props, const ingest_props_ops_t *ops,
    size_t target)
{
    char        *s, **keys;
    long         removed;
    size_t       size, n, i;
    json_t      *v;
    const char  *key;

    s = json_dumps(props, JSON_COMPACT);
    if (s == NULL) {
        return -1;
    }

    size = strlen(s);
    free(s);

    if (size <= target) {
        return 0;
    }

    n = json_object_size(props);

    keys = calloc(n ? n : 1, sizeof(char *));
    if (keys == NULL) {
        return -1;
    }

    i = 0;
    json_object_foreach(props, key, v) {
        keys[i] = strdup(key);
        if (keys[i] == NULL) {
            goto failed;
        }

        i++;
    }

    qsort(keys, n, sizeof(char *), ingest_trim_key_cmp);

    removed = 0;

    for (i = 0; i < n && size > target; i++) {
        if (!ingest_props_can_trim(keys[i], ops)) {
            continue;
        }

        v = json_object_get(props, keys[i]);

        /* the member and its separating comma */
        size -= ingest_trim_member_size(keys[i], v) + 1;
        json_object_del(props, keys[i]);
        removed++;
    }

    for (i = 0; i < n; i++) {
        free(keys[i]);
    }

    free(keys);

    return removed;

failed:

    while (i > 0) {
        free(keys[--i]);
    }

    free(keys);

    return -1;
}


/* bytes of "key":value in compact JSON */

static size_t
ingest_trim_member_size(const char *key, json_t *v)
{
    char    *s;
    size_t   n;
    json_t  *k;

    n = 1;

    k = json_string(key);
    s = k ? json_dumps(k, JSON_ENCODE_ANY) : NULL;
    n += s ? strlen(s) : strlen(key) + 2;
    free(s);
    json_decref(k);

    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    n += s ? strlen(s) : 0;
    free(s);

    return n;
}


static int
ingest_trim_key_cmp(const void *a, const void *b)
{
    return strcmp(*(char * const *) a, *(char * const *) b);
}
