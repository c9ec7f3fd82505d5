/*
 * Copyright (C) edgehog
 */


#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eh_uuid.h"
#include "ingest_json.h"
#include "ingest_props.h"


#define ingest_lc(c)  (((c) >= 'A' && (c) <= 'Z') ? ((c) | 0x20) : (c))


static int ingest_props_filtered(const char *key);
static int ingest_props_collect_unset(json_t *props, json_t *unset,
    json_t *out);
static int ingest_props_in_list(const char *id, size_t len,
    const char **list, int fold);
static int ingest_props_blank(const char *id, size_t len);


/* §3.2 posthog person namespace 932979b4-65c3-4424-8467-0b66ec27bc22 */
static const unsigned char  ingest_person_ns[16] = {
    0x93, 0x29, 0x79, 0xb4, 0x65, 0xc3, 0x44, 0x24,
    0x84, 0x67, 0x0b, 0x66, 0xec, 0x27, 0xbc, 0x22
};


/* §3.4 G3 change filtering: updates of only these keys are not written */
static const char  *ingest_filtered_keys[] = {
    "$current_url", "$pathname", "$referring_domain", "$referrer",
    "$screen_height", "$screen_width", "$viewport_height", "$viewport_width",
    "$browser", "$browser_version", "$device_type", "$raw_user_agent",
    "$os", "$os_name", "$os_version", "$geoip_postal_code",
    "$geoip_time_zone", "$geoip_latitude", "$geoip_longitude",
    "$geoip_accuracy_radius",
    NULL
};


static const char  *ingest_person_events[] = {
    "$identify", "$create_alias", "$merge_dangerously", "$set", NULL
};


/* §3.5 compared after lower-casing */
static const char  *ingest_illegal_folded[] = {
    "anonymous", "guest", "distinctid", "distinct_id", "id",
    "not_authenticated", "email", "undefined", "true", "false", NULL
};


/* §3.5 compared as is */
static const char  *ingest_illegal_exact[] = {
    "[object Object]", "NaN", "None", "none", "null", "0", "undefined", NULL
};


void
ingest_props_ops(json_t *properties, ingest_props_ops_t *ops)
{
    json_t  *v;

    ops->set = NULL;
    ops->set_once = NULL;
    ops->unset = NULL;
    ops->survey_last_seen = NULL;

    if (!json_is_object(properties)) {
        return;
    }

    v = json_object_get(properties, "$set");
    ops->set = json_is_object(v) ? v : NULL;

    v = json_object_get(properties, "$set_once");
    ops->set_once = json_is_object(v) ? v : NULL;

    v = json_object_get(properties, "$unset");
    ops->unset = (json_is_array(v) || json_is_object(v)) ? v : NULL;
}


json_t *
ingest_props_create(const ingest_props_ops_t *ops, const char *event_uuid,
    const char *updated_at_iso, json_t **last_op, json_t **last_upd)
{
    json_t      *p, *op, *upd, *v;
    const char  *key;

    p = json_object();
    op = json_object();
    upd = json_object();

    if (p == NULL || op == NULL || upd == NULL) {
        goto failed;
    }

    if (ops->set_once) {
        json_object_foreach(ops->set_once, key, v) {
            if (json_object_set(p, key, v) != 0
                || json_object_set_new(op, key, json_string("set_once")) != 0)
            {
                goto failed;
            }
        }
    }

    /* $set beats $set_once on the same key */

    if (ops->set) {
        json_object_foreach(ops->set, key, v) {
            if (json_object_set(p, key, v) != 0
                || json_object_set_new(op, key, json_string("set")) != 0)
            {
                goto failed;
            }
        }
    }

    if (updated_at_iso) {
        json_object_foreach(op, key, v) {
            if (json_object_set_new(upd, key, json_string(updated_at_iso))
                != 0)
            {
                goto failed;
            }
        }
    }

    if (json_object_set_new(p, "$creator_event_uuid",
                            json_string(event_uuid ? event_uuid : ""))
        != 0)
    {
        goto failed;
    }

    if (last_op) {
        *last_op = op;

    } else {
        json_decref(op);
    }

    if (last_upd) {
        *last_upd = upd;

    } else {
        json_decref(upd);
    }

    return p;

failed:

    json_decref(p);
    json_decref(op);
    json_decref(upd);

    return NULL;
}


/* JavaScript a === b for values parsed from JSON */

int
ingest_props_strict_eq(json_t *a, json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b)) {
            return json_integer_value(a) == json_integer_value(b);
        }

        return json_number_value(a) == json_number_value(b);
    }

    if (json_typeof(a) != json_typeof(b)) {
        return 0;
    }

    switch (json_typeof(a)) {

    case JSON_STRING:
        return json_string_length(a) == json_string_length(b)
               && memcmp(json_string_value(a), json_string_value(b),
                         json_string_length(a)) == 0;

    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_NULL:
        return 1;

    default:
        /* objects and arrays are compared by reference in JavaScript */
        return 0;
    }
}


static int
ingest_props_filtered(const char *key)
{
    size_t        len;
    const char  **k;

    for (k = ingest_filtered_keys; *k; k++) {
        if (strcmp(*k, key) == 0) {
            return 1;
        }
    }

    if (strncmp(key, "$geoip_subdivision_", 19) == 0) {
        return 1;
    }

    len = strlen(key);

    return strncmp(key, "$geoip_", 7) == 0
           && len > 11 && strcmp(key + len - 11, "_confidence") == 0;
}


/* the keys of U (array of names or object) present in props */

static int
ingest_props_collect_unset(json_t *props, json_t *unset, json_t *out)
{
    char        *s;
    size_t       i;
    json_t      *v;
    const char  *key;

    if (json_is_object(unset)) {
        json_object_foreach(unset, key, v) {
            if (json_object_get(props, key) != NULL
                && json_array_append_new(out, json_string(key)) != 0)
            {
                return -1;
            }
        }

        return 0;
    }

    json_array_foreach(unset, i, v) {
        /* `k in obj` converts the key with String() */
        s = ingest_json_to_js_string(v);
        if (s == NULL) {
            return -1;
        }

        if (json_object_get(props, s) != NULL
            && json_array_append_new(out, json_string(s)) != 0)
        {
            free(s);
            return -1;
        }

        free(s);
    }

    return 0;
}


int
ingest_props_update(json_t *props, const ingest_props_ops_t *ops)
{
    int          rc;
    size_t       i;
    json_t      *to_set, *to_unset, *v, *cur;
    const char  *key;

    rc = 0;

    to_set = json_object();
    to_unset = json_array();

    if (to_set == NULL || to_unset == NULL) {
        goto failed;
    }

    if (ops->set_once) {
        json_object_foreach(ops->set_once, key, v) {
            if (json_object_get(props, key) == NULL
                && json_object_set(to_set, key, v) != 0)
            {
                goto failed;
            }
        }
    }

    if (ops->set) {
        json_object_foreach(ops->set, key, v) {
            cur = json_object_get(props, key);

            if ((cur == NULL || !ingest_props_strict_eq(cur, v))
                && json_object_set(to_set, key, v) != 0)
            {
                goto failed;
            }
        }
    }

    if (ops->survey_last_seen) {
        v = json_string(ops->survey_last_seen);
        cur = json_object_get(props, "$survey_last_seen_date");

        if (v == NULL) {
            goto failed;
        }

        if ((cur == NULL || !ingest_props_strict_eq(cur, v))
            && json_object_set(to_set, "$survey_last_seen_date", v) != 0)
        {
            json_decref(v);
            goto failed;
        }

        json_decref(v);
    }

    /* G3: only keys of the original properties are unset, after the sets */
    if (ops->unset
        && ingest_props_collect_unset(props, ops->unset, to_unset) != 0)
    {
        goto failed;
    }

    json_object_foreach(to_set, key, v) {
        rc |= INGEST_PROPS_CHANGED;

        if (json_object_get(props, key) == NULL || !ingest_props_filtered(key))
        {
            rc |= INGEST_PROPS_SIGNIFICANT;
        }
    }

    if (json_object_update(props, to_set) != 0) {
        goto failed;
    }

    json_array_foreach(to_unset, i, v) {
        if (json_object_del(props, json_string_value(v)) == 0) {
            rc |= INGEST_PROPS_CHANGED | INGEST_PROPS_SIGNIFICANT;
        }
    }

    json_decref(to_set);
    json_decref(to_unset);

    return rc;

failed:

    json_decref(to_set);
    json_decref(to_unset);

    return -1;
}


int
ingest_props_person_event(const char *event)
{
    const char  **e;

    for (e = ingest_person_events; *e; e++) {
        if (strcmp(*e, event) == 0) {
            return 1;
        }
    }

    return 0;
}


json_t *
ingest_props_merge(json_t *source, json_t *target)
{
    json_t  *merged;

    /* keys of source first, target's values win: { ...source, ...target } */

    merged = json_is_object(source) ? json_copy(source) : json_object();
    if (merged == NULL) {
        return NULL;
    }

    if (json_is_object(target) && json_object_update(merged, target) != 0) {
        json_decref(merged);
        return NULL;
    }

    return merged;
}


static int
ingest_props_in_list(const char *id, size_t len, const char **list, int fold)
{
    size_t        n, i, q;
    const char  **w;

    /* bare, 'quoted' or "quoted" */
    q = 0;

    if (len >= 2
        && ((id[0] == '\'' && id[len - 1] == '\'')
            || (id[0] == '"' && id[len - 1] == '"')))
    {
        q = 1;
    }

    for (w = list; *w; w++) {
        n = strlen(*w);

        if (len == n) {
            for (i = 0; i < n; i++) {
                if ((fold ? ingest_lc(id[i]) : id[i]) != (*w)[i]) {
                    break;
                }
            }

            if (i == n) {
                return 1;
            }
        }

        if (q && len == n + 2) {
            for (i = 0; i < n; i++) {
                if ((fold ? ingest_lc(id[i + 1]) : id[i + 1]) != (*w)[i])
                {
                    break;
                }
            }

            if (i == n) {
                return 1;
            }
        }
    }

    return 0;
}


/* JavaScript String.prototype.trim() would leave nothing */

static int
ingest_props_blank(const char *id, size_t len)
{
    size_t                i;
    uint32_t              cp;
    const unsigned char  *p;

    p = (const unsigned char *) id;

    for (i = 0; i < len; /* void */) {
        if (p[i] < 0x80) {
            if (p[i] != ' ' && (p[i] < '\t' || p[i] > '\r')) {
                return 0;
            }

            i++;
            continue;
        }

        if ((p[i] & 0xe0) == 0xc0 && i + 1 < len) {
            cp = ((p[i] & 0x1f) << 6) | (p[i + 1] & 0x3f);
            i += 2;

        } else if ((p[i] & 0xf0) == 0xe0 && i + 2 < len) {
            cp = ((p[i] & 0x0f) << 12) | ((p[i + 1] & 0x3f) << 6)
                 | (p[i + 2] & 0x3f);
            i += 3;

        } else {
            return 0;
        }

        if (cp != 0xa0 && cp != 0x1680 && !(cp >= 0x2000 && cp <= 0x200a)
            && cp != 0x2028 && cp != 0x2029 && cp != 0x202f && cp != 0x205f
            && cp != 0x3000 && cp != 0xfeff)
        {
            return 0;
        }
    }

    return 1;
}


int
ingest_distinct_id_illegal(const char *id, size_t len)
{
    if (ingest_props_blank(id, len)) {
        return 1;
    }

    /* lower() applies to the untrimmed id, so " guest" is legal */
    return ingest_props_in_list(id, len, ingest_illegal_folded, 1)
           || ingest_props_in_list(id, len, ingest_illegal_exact, 0);
}


ingest_merge_trigger_e
ingest_merge_trigger(const char *event, const char *distinct_id,
    json_t *properties, char **other, const char **illegal)
{
    char    *s;
    json_t  *v;

    *other = NULL;
    *illegal = NULL;

    if (strcmp(event, "$create_alias") == 0
        || strcmp(event, "$merge_dangerously") == 0)
    {
        v = json_object_get(properties, "alias");

        if (v == NULL || json_is_null(v) || json_is_false(v)
            || (json_is_string(v) && json_string_length(v) == 0)
            || (json_is_integer(v) && json_integer_value(v) == 0)
            || (json_is_real(v) && json_real_value(v) == 0.0))
        {
            return INGEST_MERGE_NONE;
        }

    } else if (strcmp(event, "$identify") == 0) {
        /* the key counts even with a null value, which becomes "null" */
        v = json_object_get(properties, "$anon_distinct_id");

        if (v == NULL) {
            return INGEST_MERGE_NONE;
        }

    } else {
        return INGEST_MERGE_NONE;
    }

    if (json_is_object(v)) {
        /* String({}) */
        s = strdup("[object Object]");

    } else {
        s = ingest_json_to_js_string(v);
    }

    if (s == NULL) {
        return INGEST_MERGE_NONE;
    }

    if (strcmp(s, distinct_id) == 0) {
        free(s);
        return INGEST_MERGE_SAME_ID;
    }

    *other = s;

    if (ingest_distinct_id_illegal(distinct_id, strlen(distinct_id))) {
        *illegal = distinct_id;
        return INGEST_MERGE_ILLEGAL_ID;
    }

    if (ingest_distinct_id_illegal(s, strlen(s))) {
        *illegal = s;
        return INGEST_MERGE_ILLEGAL_ID;
    }

    return INGEST_MERGE_FETCH;
}


ingest_merge_action_e
ingest_merge_decide(const char *event, const ingest_person_state_t *other,
    const ingest_person_state_t *into)
{
    if (!other->exists && !into->exists) {
        return INGEST_MERGE_CREATE;
    }

    if (other->exists && !into->exists) {
        return INGEST_MERGE_ADD_TO_OTHER;
    }

    if (!other->exists) {
        return INGEST_MERGE_ADD_TO_INTO;
    }

    if (other->id == into->id) {
        return INGEST_MERGE_ALREADY_SAME;
    }

    if (strcmp(event, "$merge_dangerously") == 0 || !other->is_identified) {
        return INGEST_MERGE_PEOPLE;
    }

    return INGEST_MERGE_REFUSE_IDENTIFIED;
}


json_t *
ingest_warning_illegal_id(const char *illegal, const char *other,
    const char *event_uuid)
{
    return json_pack("{s:o, s:o, s:o}",
                     "illegalDistinctId",
                     ingest_json_string(illegal, strlen(illegal)),
                     "otherDistinctId",
                     ingest_json_string(other, strlen(other)),
                     "eventUuid",
                     ingest_json_string(event_uuid, strlen(event_uuid)));
}


json_t *
ingest_warning_merge(const char *source_distinct_id,
    const char *target_distinct_id, const char *event_uuid)
{
    return json_pack("{s:o, s:o, s:o}",
                     "sourcePersonDistinctId",
                     ingest_json_string(source_distinct_id,
                                        strlen(source_distinct_id)),
                     "targetPersonDistinctId",
                     ingest_json_string(target_distinct_id,
                                        strlen(target_distinct_id)),
                     "eventUuid",
                     ingest_json_string(event_uuid, strlen(event_uuid)));
}


int64_t
ingest_merge_version(int64_t target_version, int64_t source_version)
{
    return (target_version > source_version ? target_version : source_version)
           + 1;
}


ingest_person_mode_e
ingest_personless_mode(int person_exists, int64_t event_ts_us,
    int64_t person_created_us, int team_opt_out)
{
    if (person_exists && !team_opt_out
        && event_ts_us > person_created_us + 60 * 1000000LL)
    {
        return INGEST_PERSON_MODE_FORCE_UPGRADE;
    }

    return INGEST_PERSON_MODE_PROPERTYLESS;
}


int
ingest_person_uuid(int64_t team_id, const char *distinct_id, size_t len,
    char out[INGEST_PERSON_UUID_LEN + 1])
{
    int            n;
    char          *name, buf[256];
    unsigned char  u[16];

    /* 20 digits and a sign for the team, ':' and the id; most fit buf */
    name = (len + 24 <= sizeof(buf)) ? buf : malloc(len + 24);
    if (name == NULL) {
        return -1;
    }

    n = snprintf(name, 24, "%" PRId64 ":", team_id);
    memcpy(name + n, distinct_id, len);

    eh_uuid_v5(ingest_person_ns, name, n + len, u);
    eh_uuid_format(u, out);

    if (name != buf) {
        free(name);
    }

    return 0;
}
