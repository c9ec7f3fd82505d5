/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>

#include "ingest_groups.h"
#include "ingest_json.h"
#include "ingest_output.h"
#include "ingest_props.h"




int
ingest_group_identify(json_t *properties, ingest_group_ident_t *g)
{
    json_t  *type, *key, *set;

    memset(g, 0, sizeof(ingest_group_ident_t));

    type = json_object_get(properties, "$group_type");
    key = json_object_get(properties, "$group_key");

    if (!ingest_json_truthy(type) || !ingest_json_truthy(key)) {
        return 1;
    }

    g->type = ingest_json_to_js_string(type);
    g->key = ingest_json_to_js_string(key);

    set = json_object_get(properties, "$group_set");
    g->set = json_is_object(set) ? json_incref(set) : json_object();

    if (g->type == NULL || g->key == NULL || g->set == NULL) {
        ingest_group_ident_free(g);
        return -1;
    }

    return 0;
}


void
ingest_group_ident_free(ingest_group_ident_t *g)
{
    free(g->type);
    free(g->key);
    json_decref(g->set);

    memset(g, 0, sizeof(ingest_group_ident_t));
}


int
ingest_group_props_update(json_t *props, json_t *set)
{
    int          changed;
    json_t      *v, *cur;
    const char  *key;

    changed = 0;

    json_object_foreach(set, key, v) {
        cur = json_object_get(props, key);

        if (cur != NULL && ingest_props_strict_eq(cur, v)) {
            continue;
        }

        if (json_object_set(props, key, v) != 0) {
            return -1;
        }

        changed = 1;
    }

    return changed;
}


char *
ingest_output_group(int64_t team_id, int group_type_index,
    const char *group_key, json_t *properties, int64_t created_at_us,
    int64_t version, size_t *len)
{
    char    *s, *p, created[INGEST_TIME_BUF_LEN];
    json_t  *o, *key;

    if (group_type_index < 0 || group_type_index >= INGEST_GROUP_TYPES_MAX) {
        return NULL;
    }

    p = properties ? json_dumps(properties, JSON_COMPACT | JSON_ENCODE_ANY)
                   : strdup("{}");
    if (p == NULL) {
        return NULL;
    }

    ingest_time_format(created_at_us, 1, created);

    /* the key came from JSON or Postgres text: repair, never trust */
    key = ingest_json_string(group_key, strlen(group_key));

    o = json_pack("{s:i, s:o?, s:I, s:s, s:s, s:I}",
                  "group_type_index", group_type_index,
                  "group_key", key,
                  "team_id", (json_int_t) team_id,
                  "group_properties", p,
                  "created_at", created,
                  "version", (json_int_t) version);
    free(p);

    if (o == NULL || key == NULL) {
        json_decref(o);
        return NULL;
    }

    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);

    if (s != NULL) {
        *len = strlen(s);
    }

    return s;
}


