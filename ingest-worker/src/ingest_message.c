/*
 * Copyright (C) edgehog
 */


#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_json.h"
#include "ingest_message.h"
#include "ingest_fast.h"


static int ingest_message_combine(ingest_message_t *m, const char *value,
    size_t len);
static int ingest_message_coerce(ingest_message_t *m);
static int ingest_message_stringify(json_t *root, const char *key,
    const char **out);
static int ingest_message_number(json_t *root, const char *key,
    int64_t *out, unsigned *has);
static int ingest_message_normalize(ingest_message_t *m);
static int ingest_message_merge_top(ingest_message_t *m, const char *key);
static int ingest_message_initial(ingest_message_t *m);
static int ingest_message_is_initial_key(const char *key);
static int ingest_message_event_name(ingest_message_t *m);
static void ingest_message_strip_person_ops(ingest_message_t *m);
static json_t *ingest_message_details(ingest_message_t *m);


/* §1.3 step 4, the keys copied into $set and $set_once.$initial_* */
static const char  *ingest_initial_keys[] = {
    "$app_build", "$app_name", "$app_namespace", "$app_version",
    "$browser", "$browser_version", "$device_type", "$current_url",
    "$pathname", "$os", "$os_name", "$os_version", "$referring_domain",
    "$referrer", "$screen_height", "$screen_width", "$viewport_height",
    "$viewport_width", "$raw_user_agent",
    "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_name",
    "utm_term", "gclid", "gad_source", "gclsrc", "dclid", "gbraid",
    "wbraid", "fbclid", "msclkid", "twclid", "li_fat_id", "mc_cid",
    "igshid", "ttclid", "rdt_cid", "irclid", "_kx", "epik", "qclid",
    "sccid",
    NULL
};


static const char  *ingest_person_events[] = {
    "$identify", "$create_alias", "$merge_dangerously", "$groupidentify",
    NULL
};


/* isxdigit() of the C locale as a table */

static const unsigned char  ingest_hex[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1
};


/*
 * Every event's uuid is checked twice (parse, row): 32 table lookups
 * and-ed together, no branch per byte (a loop of three range tests per
 * byte was 4.5% of the worker's CPU in bench-worker (a))
 */

int
ingest_uuid_valid(const char *s, size_t len)
{
    size_t                i;
    unsigned              ok;
    const unsigned char  *p;

    if (len != 36) {
        return 0;
    }

    p = (const unsigned char *) s;

    ok = (p[8] == '-') & (p[13] == '-') & (p[18] == '-') & (p[23] == '-');

    for (i = 0; i < 8; i++) {
        ok &= ingest_hex[p[i]] & ingest_hex[p[28 + i]];
    }

    for (i = 0; i < 4; i++) {
        ok &= ingest_hex[p[9 + i]] & ingest_hex[p[14 + i]]
              & ingest_hex[p[19 + i]] & ingest_hex[p[24 + i]];
    }

    return ok;
}


int
ingest_message_warn(ingest_message_t *m, const char *type, json_t *details,
    int always)
{
    ingest_warning_t  *w;

    if (m->nwarnings == INGEST_MAX_WARNINGS) {
        json_decref(details);
        return -1;
    }

    w = &m->warnings[m->nwarnings++];

    w->type = type;
    w->details = details ? details : json_object();
    w->always = always;

    return 0;
}


void
ingest_message_free(ingest_message_t *m)
{
    int  i;

    for (i = 0; i < m->nwarnings; i++) {
        json_decref(m->warnings[i].details);
    }

    json_decref(m->root);

    if (m->fast) {
        /* fast mode owns what the DOM path borrows from root */
        json_decref(m->properties);
        ingest_fast_free(m->fast);
    }

    memset(m, 0, sizeof(ingest_message_t));
}


ingest_msg_rc_e
ingest_message_parse_fast(ingest_message_t *m, const char *value, size_t len)
{
    if (ingest_fast_parse(m, value, len) == 1) {
        return INGEST_MSG_OK;
    }

    /* not eligible, or no memory: the DOM path decides */
    return ingest_message_parse(m, value, len);
}


ingest_msg_rc_e
ingest_message_parse(ingest_message_t *m, const char *value, size_t len)
{
    memset(m, 0, sizeof(ingest_message_t));

    m->error = "failed_parse_message";

    if (ingest_message_combine(m, value, len) != 0) {
        return INGEST_MSG_DLQ;
    }

    /* Postgres JSONB and old ClickHouse both choke on U+0000 */
    if (ingest_json_sanitize(m->root) != 0) {
        return INGEST_MSG_DLQ;
    }

    if (ingest_message_coerce(m) != 0) {
        return INGEST_MSG_DLQ;
    }

    m->error = "failed_parse_message";

    if (ingest_message_normalize(m) != 0) {
        return INGEST_MSG_DLQ;
    }

    /*
     * step 5 before step 4, which looks at the name: truncation never
     * changes the answer for "$snapshot"
     */
    if (ingest_message_event_name(m) != 0) {
        return INGEST_MSG_DLQ;
    }

    if (strcmp(m->event, "$snapshot") != 0
        && strcmp(m->event, "$performance_event") != 0
        && ingest_message_initial(m) != 0)
    {
        return INGEST_MSG_DLQ;
    }

    m->error = NULL;
    m->process_person = 1;

    return INGEST_MSG_OK;
}


/* §1.3 step 1: combined = { ...data, ...outer_without_data } */

static int
ingest_message_combine(ingest_message_t *m, const char *value, size_t len)
{
    json_t      *outer, *data, *v;
    const char  *key;

    outer = ingest_json_loadb(value, len);
    if (outer == NULL) {
        return -1;
    }

    data = json_object_get(outer, "data");

    if (!json_is_object(outer) || !json_is_string(data)) {
        json_decref(outer);
        return -1;
    }

    m->root = ingest_json_loadb(json_string_value(data),
                                json_string_length(data));

    if (!json_is_object(m->root)) {
        json_decref(outer);
        return -1;
    }

    /* an existing key keeps its place, as in a JavaScript spread */
    json_object_foreach(outer, key, v) {
        if (strcmp(key, "data") == 0) {
            continue;
        }

        if (strcmp(key, "timestamp") == 0) {
            m->outer_timestamp = 1;
        }

        if (json_object_set(m->root, key, v) != 0) {
            json_decref(outer);
            return -1;
        }
    }

    json_decref(outer);

    return 0;
}


/* §1.3 step 2 (G3 parsePipelineEvent) */

static int
ingest_message_coerce(ingest_message_t *m)
{
    json_t      *v, *details;
    char        *enc;
    const char  *key;
    unsigned     has;
    int64_t      offset;

    v = json_object_get(m->root, "uuid");

    if (v == NULL || json_is_null(v)
        || (json_is_string(v) && json_string_length(v) == 0))
    {
        m->error = "empty_uuid";
        goto invalid_uuid;
    }

    if (ingest_message_stringify(m->root, "uuid", &m->uuid) != 0) {
        m->error = "invalid_uuid";
        goto invalid_uuid;
    }

    if (!ingest_uuid_valid(m->uuid, strlen(m->uuid))) {
        m->error = "invalid_uuid";
        goto invalid_uuid;
    }

    if (ingest_message_stringify(m->root, "distinct_id", &m->distinct_id)
        != 0)
    {
        m->error = "failed_parse_message";
        return -1;
    }

    v = json_object_get(m->root, "event");

    if (v == NULL || json_is_null(v)) {
        m->error = "failed_parse_message";
        return -1;
    }

    v = json_object_get(m->root, "properties");

    if (v == NULL || json_is_null(v)) {
        v = json_object();
        if (json_object_set_new(m->root, "properties", v) != 0) {
            return -1;
        }

    } else if (!json_is_object(v)) {
        m->error = "failed_parse_message";
        return -1;
    }

    m->properties = v;

    v = json_object_get(m->root, "$set");
    if (v != NULL && !json_is_null(v) && !json_is_object(v)) {
        return -1;
    }

    v = json_object_get(m->root, "$set_once");
    if (v != NULL && !json_is_null(v) && !json_is_object(v)) {
        return -1;
    }

    if (ingest_message_number(m->root, "offset", &offset, &has) != 0) {
        return -1;
    }

    if (ingest_message_number(m->root, "team_id", &m->team_id, &has) != 0) {
        return -1;
    }

    m->has_team_id = has;

    m->offset = json_object_get(m->root, "offset");
    m->timestamp = json_object_get(m->root, "timestamp");
    m->timestamp_str = json_is_string(m->timestamp)
                       ? json_string_value(m->timestamp) : NULL;

    v = json_object_get(m->root, "token");
    m->token = json_is_string(v) ? json_string_value(v) : NULL;

    v = json_object_get(m->root, "ip");
    m->ip = json_is_string(v) ? json_string_value(v) : NULL;

    v = json_object_get(m->root, "now");
    m->now = json_is_string(v) ? json_string_value(v) : NULL;

    v = json_object_get(m->root, "sent_at");
    m->sent_at = json_is_string(v) ? json_string_value(v) : NULL;

    m->is_cookieless = json_is_true(json_object_get(m->root,
                                                    "is_cookieless_mode"));

    v = json_object_get(m->root, "historical_migration");
    m->historical_migration = json_is_true(v)
                              || (json_is_string(v)
                                  && strcmp(json_string_value(v), "true")
                                     == 0);

    return 0;

invalid_uuid:

    /*
     * the event goes to the DLQ (G3); the G2 warning is kept for a worker
     * that resolves the team of DLQ-bound messages
     */

    v = json_object_get(m->root, "uuid");
    enc = json_dumps(v ? v : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);

    details = json_object();

    if (enc != NULL && details != NULL) {
        key = "eventUuid";
        json_object_set_new(details, key, json_string(enc));
    }

    free(enc);

    ingest_message_warn(m, "skipping_event_invalid_uuid", details, 0);

    return -1;
}


/* string, number or bool, stored back as a string */

static int
ingest_message_stringify(json_t *root, const char *key, const char **out)
{
    char    *s;
    json_t  *v, *nv;

    v = json_object_get(root, key);

    if (json_is_string(v)) {
        *out = json_string_value(v);
        return 0;
    }

    if (!json_is_number(v) && !json_is_boolean(v)) {
        return -1;
    }

    s = ingest_json_to_js_string(v);
    if (s == NULL) {
        return -1;
    }

    nv = json_string(s);
    free(s);

    if (nv == NULL || json_object_set_new(root, key, nv) != 0) {
        return -1;
    }

    *out = json_string_value(nv);

    return 0;
}


/* optional number; a numeric string is accepted and converted */

static int
ingest_message_number(json_t *root, const char *key, int64_t *out,
    unsigned *has)
{
    char        *end;
    json_t      *v;
    double       d;
    const char  *s;

    *has = 0;

    v = json_object_get(root, key);

    if (v == NULL || json_is_null(v)) {
        return 0;
    }

    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        *has = 1;
        return 0;
    }

    if (json_is_real(v)) {
        d = json_real_value(v);

    } else if (json_is_string(v)) {
        s = json_string_value(v);

        if (*s == '\0' || isspace((unsigned char) *s)) {
            return -1;
        }

        errno = 0;
        d = strtod(s, &end);

        if (*end != '\0' || errno != 0) {
            return -1;
        }

    } else {
        return -1;
    }

    if (!(d > -9007199254740992.0 && d < 9007199254740992.0)) {
        return -1;
    }

    *out = (int64_t) d;
    *has = 1;

    return json_object_set_new(root, key, json_integer(*out));
}


/* §1.3 step 3 (sanitizeEvent / normalizeEvent) */

static int
ingest_message_normalize(ingest_message_t *m)
{
    char        *lower;
    size_t       i;
    json_t      *v;
    const char  *s;

    if (ingest_message_merge_top(m, "$set") != 0
        || ingest_message_merge_top(m, "$set_once") != 0)
    {
        return -1;
    }

    v = json_object_get(m->properties, "$ip");

    if (!ingest_json_truthy(v) && m->ip != NULL && m->ip[0] != '\0') {
        if (json_object_set_new(m->properties, "$ip", json_string(m->ip))
            != 0)
        {
            return -1;
        }
    }

    if (m->sent_at != NULL) {
        if (json_object_set_new(m->properties, "$sent_at",
                                json_string(m->sent_at))
            != 0)
        {
            return -1;
        }
    }

    v = json_object_get(m->properties, "$session_id");

    if (json_is_string(v)
        && ingest_uuid_valid(json_string_value(v), json_string_length(v)))
    {
        s = json_string_value(v);

        lower = strdup(s);
        if (lower == NULL) {
            return -1;
        }

        for (i = 0; lower[i]; i++) {
            lower[i] = tolower((unsigned char) lower[i]);
        }

        json_string_set(v, lower);
        free(lower);
    }

    return 0;
}


/* properties[key] = { ...properties[key], ...event[key] } */

static int
ingest_message_merge_top(ingest_message_t *m, const char *key)
{
    json_t  *top, *inner, *merged;

    top = json_object_get(m->root, key);

    /* any object is truthy in JavaScript, even an empty one */
    if (!json_is_object(top)) {
        return 0;
    }

    inner = json_object_get(m->properties, key);

    merged = json_is_object(inner) ? json_copy(inner) : json_object();
    if (merged == NULL) {
        return -1;
    }

    if (json_object_update(merged, top) != 0) {
        json_decref(merged);
        return -1;
    }

    return json_object_set_new(m->properties, key, merged);
}


static int
ingest_message_is_initial_key(const char *key)
{
    const char  **k;

    for (k = ingest_initial_keys; *k; k++) {
        if (strcmp(*k, key) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * §1.3 step 4 (personInitialAndUTMProperties): the new keys come first
 * and the event's own $set / $set_once keys are spread over them, which
 * fixes both the precedence and the key order of the JSON
 */

static int
ingest_message_initial(ingest_message_t *m)
{
    char         name[64];
    json_t      *set, *once, *nset, *nonce, *v, *os_name;
    const char  *key;

    set = json_object_get(m->properties, "$set");
    once = json_object_get(m->properties, "$set_once");

    nset = json_object();
    nonce = json_object();

    if (nset == NULL || nonce == NULL) {
        goto failed;
    }

    json_object_foreach(m->properties, key, v) {
        if (!ingest_message_is_initial_key(key)) {
            continue;
        }

        if (!json_is_object(set) || json_object_get(set, key) == NULL) {
            if (json_object_set(nset, key, v) != 0) {
                goto failed;
            }
        }

        /* the keys are short: see ingest_initial_keys */
        snprintf(name, sizeof(name), "$initial_%s",
                 key[0] == '$' ? key + 1 : key);

        if (!json_is_object(once) || json_object_get(once, name) == NULL) {
            if (json_object_set(nonce, name, v) != 0) {
                goto failed;
            }
        }
    }

    if (json_object_size(nset) > 0) {
        if (json_is_object(set) && json_object_update(nset, set) != 0) {
            goto failed;
        }

        if (json_object_set(m->properties, "$set", nset) != 0) {
            goto failed;
        }
    }

    if (json_object_size(nonce) > 0) {
        if (json_is_object(once) && json_object_update(nonce, once) != 0) {
            goto failed;
        }

        if (json_object_set(m->properties, "$set_once", nonce) != 0) {
            goto failed;
        }
    }

    json_decref(nset);
    json_decref(nonce);

    /* since 2024-08 $os_name is a fallback alias of $os */

    os_name = json_object_get(m->properties, "$os_name");

    if (!ingest_json_truthy(os_name)) {
        return 0;
    }

    v = json_object_get(m->properties, "$os");
    if (v == NULL || json_is_null(v)) {
        json_object_set(m->properties, "$os", os_name);
    }

    set = json_object_get(m->properties, "$set");

    if (json_is_object(set)) {
        v = json_object_get(set, "$os");
        if (v == NULL || json_is_null(v)) {
            json_object_set(set, "$os", os_name);
        }

        json_object_del(set, "$os_name");
    }

    once = json_object_get(m->properties, "$set_once");

    if (json_is_object(once)) {
        v = json_object_get(once, "$initial_os");
        if (v == NULL || json_is_null(v)) {
            json_object_set(once, "$initial_os", os_name);
        }

        json_object_del(once, "$initial_os_name");
    }

    return 0;

failed:

    json_decref(nset);
    json_decref(nonce);

    return -1;
}


/* §1.3 step 5: JSON.stringify non-strings, then substr(0, 200) */

static int
ingest_message_event_name(ingest_message_t *m)
{
    char    *s;
    size_t   len, n;
    json_t  *v, *nv;

    v = json_object_get(m->root, "event");

    if (json_is_string(v)) {
        s = NULL;
        len = json_string_length(v);

    } else {
        s = ingest_json_to_js_string(v);
        if (s == NULL) {
            return -1;
        }

        len = strlen(s);
    }

    n = ingest_utf16_prefix(s ? s : json_string_value(v), len,
                            INGEST_EVENT_NAME_MAX);

    if (s == NULL && n == len) {
        m->event = json_string_value(v);
        return 0;
    }

    nv = json_stringn(s ? s : json_string_value(v), n);
    free(s);

    if (nv == NULL || json_object_set_new(m->root, "event", nv) != 0) {
        return -1;
    }

    m->event = json_string_value(nv);

    return 0;
}


static void
ingest_message_strip_person_ops(ingest_message_t *m)
{
    json_object_del(m->root, "$set");
    json_object_del(m->root, "$set_once");
    json_object_del(m->root, "$unset");
    json_object_del(m->properties, "$set");
    json_object_del(m->properties, "$set_once");
    json_object_del(m->properties, "$unset");
}


static json_t *
ingest_message_details(ingest_message_t *m)
{
    return json_pack("{s:s, s:s, s:s}", "eventUuid", m->uuid,
                     "event", m->event, "distinctId", m->distinct_id);
}


int
ingest_message_personless(const ingest_message_t *m)
{
    if (m->fast) {
        return ingest_fast_personless(m->fast);
    }

    /* force_personless would only set this very value again */
    return json_is_false(json_object_get(m->properties,
                                         "$process_person_profile"));
}


ingest_msg_rc_e
ingest_message_prepare(ingest_message_t *m, const ingest_team_opts_t *team)
{
    json_t       *v, *details, *msg;
    const char  **e;

    m->process_person = 1;
    m->route = INGEST_ROUTE_EVENT;

    if (m->fast) {
        /* an ordinary event: no routing, no warnings (ingest_fast.c) */
        return ingest_fast_prepare(m, team->anonymize_ips,
                                   team->person_processing_opt_out
                                   || team->force_personless) == 0
               ? INGEST_MSG_OK : INGEST_MSG_DROP;
    }

    if (team->person_processing_opt_out || team->force_personless) {
        json_object_set_new(m->properties, "$process_person_profile",
                            json_false());
    }

    if (team->anonymize_ips) {
        json_object_del(m->properties, "$ip");
    }

    /* §1.6: these never reach persons or the events table */

    if (strcmp(m->event, "$$client_ingestion_warning") == 0) {
        details = ingest_message_details(m);
        msg = json_object_get(m->properties,
                              "$$client_ingestion_warning_message");

        if (details != NULL) {
            json_object_set(details, "message", msg ? msg : json_null());
        }

        ingest_message_warn(m, "client_ingestion_warning", details, 1);

        m->route = INGEST_ROUTE_WARNING_ONLY;
        m->process_person = 0;

        return INGEST_MSG_DROP;
    }

    if (strcmp(m->event, "$$heatmap") == 0) {
        m->route = INGEST_ROUTE_HEATMAP;
        m->process_person = 0;
        return INGEST_MSG_OK;
    }

    if (strcmp(m->event, "$exception") == 0) {
        m->route = INGEST_ROUTE_EXCEPTION;
    }

    /* §1.5 */

    v = json_object_get(m->properties, "$process_person_profile");

    if (json_is_false(v)) {
        for (e = ingest_person_events; *e; e++) {
            if (strcmp(*e, m->event) == 0) {
                ingest_message_warn(m,
                    "invalid_event_when_process_person_profile_is_false",
                    ingest_message_details(m), 1);

                m->process_person = 0;

                return INGEST_MSG_DROP;
            }
        }

        m->process_person = 0;
        ingest_message_strip_person_ops(m);

        return INGEST_MSG_OK;
    }

    if (v != NULL && !json_is_true(v)) {
        details = ingest_message_details(m);

        if (details != NULL) {
            json_object_set(details, "$process_person_profile", v);
            json_object_set_new(details, "message",
                json_string("Only a boolean value is valid for the "
                            "$process_person_profile property"));
        }

        ingest_message_warn(m, "invalid_process_person_profile", details, 0);
    }

    json_object_del(m->properties, "$process_person_profile");

    if (strcmp(m->event, "$groupidentify") == 0) {
        ingest_message_strip_person_ops(m);
    }

    return INGEST_MSG_OK;
}
