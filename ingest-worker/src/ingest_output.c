/*
 * Copyright (C) edgehog
 */


#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eh_time.h"
#include "ingest_json.h"
#include "ingest_message.h"
#include "ingest_output.h"
#include "ingest_fast.h"



typedef struct {
    char                       *key;
    char                       *value;
} ingest_attr_t;


static void ingest_buf_add_escaped(ingest_str_t *b, const char *s);
static char *ingest_output_js_string(json_t *v);
static char *ingest_output_truncated(json_t *v, size_t max);
static int ingest_output_attr_cmp(const void *a, const void *b);
static int ingest_output_str_cmp(const void *a, const void *b);
static void ingest_output_props_done(ingest_str_t *props);
static void ingest_output_element(ingest_str_t *b, json_t *el);
static int ingest_output_classes(ingest_str_t *b, json_t *cls);
static char *ingest_output_dump(json_t *row, size_t *len);
static int ingest_output_set_str(json_t *row, const char *key,
    const char *s, size_t len);
static int ingest_output_set_time(json_t *row, const char *key, int64_t us,
    int ms, int nullable);
static int ingest_output_set_uuid(json_t *row, const char *key,
    const char *uuid);
static int ingest_output_set_json(json_t *row, const char *key, json_t *v);


static const char  *ingest_person_modes[] = {
    "full", "propertyless", "force_upgrade"
};


/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z */
#define INGEST_TIME_MIN_US  (-62167219200LL * 1000000)
#define INGEST_TIME_MAX_US  (253402300800LL * 1000000 - 1)

/* "YYYY-MM-DD hh:mm:ss", four-digit years only (clamped) */
#define INGEST_TIME_SEC_LEN  19
#define INGEST_TIME_CACHE    8


void
ingest_time_format(int64_t us, int ms, char buf[INGEST_TIME_BUF_LEN])
{
    /*
     * eh_time prints any year, with a sign if need be; ClickHouse wants
     * exactly four digits, so clamp first
     */

    int64_t   sec;
    unsigned  sub;

    /*
     * every events row has three times, two of them (created_at, and
     * the timestamp of a stream of events) in the same second as the
     * rows before: the seconds' text is kept, by second, and only the
     * milliseconds are written (bench-worker-build: 26.9k -> 25.7k
     * instructions/event)
     */
    static __thread struct {
        int64_t   sec;
        char      text[INGEST_TIME_SEC_LEN + 1];
    }  cache[INGEST_TIME_CACHE];

    if (us < INGEST_TIME_MIN_US) {
        us = INGEST_TIME_MIN_US;

    } else if (us > INGEST_TIME_MAX_US) {
        us = INGEST_TIME_MAX_US;
    }

    sec = us / EH_TIME_USEC_PER_SEC;
    sub = (unsigned) (us % EH_TIME_USEC_PER_SEC);

    if (us < 0 && sub != 0) {
        sec--;
        sub = (unsigned) (us - sec * EH_TIME_USEC_PER_SEC);
    }

    /* slot 0 of a zeroed cache says 1970-01-01 00:00:00 without text */
    if (cache[sec & (INGEST_TIME_CACHE - 1)].sec != sec
        || cache[sec & (INGEST_TIME_CACHE - 1)].text[0] == '\0')
    {
        if (eh_time_format_ch(sec * EH_TIME_USEC_PER_SEC, buf)
            != INGEST_TIME_SEC_LEN)
        {
            /* not reached: clamped years have four digits */
            if (ms) {
                eh_time_format_ch_ms(us, buf);
            }

            return;
        }

        cache[sec & (INGEST_TIME_CACHE - 1)].sec = sec;
        memcpy(cache[sec & (INGEST_TIME_CACHE - 1)].text, buf,
               INGEST_TIME_SEC_LEN + 1);
    }

    memcpy(buf, cache[sec & (INGEST_TIME_CACHE - 1)].text,
           INGEST_TIME_SEC_LEN);

    if (ms) {
        sub /= 1000;
        buf[INGEST_TIME_SEC_LEN] = '.';
        buf[INGEST_TIME_SEC_LEN + 1] = (char) ('0' + sub / 100);
        buf[INGEST_TIME_SEC_LEN + 2] = (char) ('0' + sub / 10 % 10);
        buf[INGEST_TIME_SEC_LEN + 3] = (char) ('0' + sub % 10);
        buf[INGEST_TIME_SEC_LEN + 4] = '\0';

    } else {
        buf[INGEST_TIME_SEC_LEN] = '\0';
    }
}


/* PostHog's escapeQuotes(): " becomes \" and nothing else changes */

static void
ingest_buf_add_escaped(ingest_str_t *b, const char *s)
{
    const char  *q;

    while ((q = strchr(s, '"')) != NULL) {
        ingest_str_add(b, s, q - s);
        ingest_str_add(b, "\\\"", 2);
        s = q + 1;
    }

    ingest_str_add(b, s, strlen(s));
}


/*
 * value.toString() of an attribute: arrays join their elements with ","
 * (null becomes ""), objects are "[object Object]"; null, which throws
 * in JavaScript, is "null" here
 */

static char *
ingest_output_js_string(json_t *v)
{
    char          *e;
    size_t         i;
    json_t        *el;
    ingest_str_t   b;

    if (json_is_object(v)) {
        return strdup("[object Object]");
    }

    if (!json_is_array(v)) {
        return ingest_json_to_js_string(v);
    }

    memset(&b, 0, sizeof(ingest_str_t));
    ingest_str_add(&b, "", 0);

    json_array_foreach(v, i, el) {
        if (i > 0) {
            ingest_str_add(&b, ",", 1);
        }

        if (json_is_null(el)) {
            continue;
        }

        e = ingest_output_js_string(el);
        if (e == NULL) {
            b.failed = 1;
            break;
        }

        ingest_str_add(&b, e, strlen(e));
        free(e);
    }

    if (b.failed) {
        free(b.data);
        return NULL;
    }

    return b.data;
}


/* String(v).slice(0, max), or NULL for a falsy v */

static char *
ingest_output_truncated(json_t *v, size_t max)
{
    char    *s;
    size_t   n;

    if (v == NULL || json_is_null(v) || json_is_false(v)
        || (json_is_string(v) && json_string_length(v) == 0))
    {
        return NULL;
    }

    s = ingest_output_js_string(v);
    if (s == NULL) {
        return NULL;
    }

    n = ingest_utf16_prefix(s, strlen(s), max);
    s[n] = '\0';

    return s;
}


static int
ingest_output_attr_cmp(const void *a, const void *b)
{
    /*
     * PostHog sorts with localeCompare(); byte order agrees on the
     * lower-case ASCII names SDKs send, and is what the Python
     * elements_to_string() does
     */
    return strcmp(((const ingest_attr_t *) a)->key,
                  ((const ingest_attr_t *) b)->key);
}


static int
ingest_output_str_cmp(const void *a, const void *b)
{
    return strcmp(*(char * const *) a, *(char * const *) b);
}


/* .class1.class2 with the classes sorted and '"' removed */

static int
ingest_output_classes(ingest_str_t *b, json_t *cls)
{
    char    *s, *p, *sp, **list;
    size_t   i, n, k;
    json_t  *v;

    if (cls == NULL || json_is_null(cls) || json_is_false(cls)
        || (json_is_string(cls) && json_string_length(cls) == 0))
    {
        return 0;
    }

    s = NULL;

    if (json_is_array(cls)) {
        n = json_array_size(cls);

    } else {
        /* String(attr__class).split(' '), keeping empty pieces */
        s = ingest_output_js_string(cls);
        if (s == NULL) {
            return -1;
        }

        n = 1;

        for (p = s; *p; p++) {
            n += (*p == ' ');
        }
    }

    list = calloc(n ? n : 1, sizeof(char *));
    if (list == NULL) {
        free(s);
        return -1;
    }

    if (s == NULL) {
        json_array_foreach(cls, i, v) {
            list[i] = ingest_output_js_string(v);
            if (list[i] == NULL) {
                goto failed;
            }
        }

    } else {
        p = s;

        for (i = 0; i < n; i++) {
            sp = strchr(p, ' ');
            if (sp) {
                *sp = '\0';
            }

            list[i] = strdup(p);
            if (list[i] == NULL) {
                goto failed;
            }

            p = sp ? sp + 1 : p + strlen(p);
        }
    }

    qsort(list, n, sizeof(char *), ingest_output_str_cmp);

    for (i = 0; i < n; i++) {
        ingest_str_add(b, ".", 1);

        for (p = list[i]; *p; p = sp) {
            sp = strchr(p, '"');
            k = sp ? (size_t) (sp - p) : strlen(p);

            ingest_str_add(b, p, k);

            sp = sp ? sp + 1 : p + k;
        }
    }

    for (i = 0; i < n; i++) {
        free(list[i]);
    }

    free(list);
    free(s);

    return 0;

failed:

    for (i = 0; i < n; i++) {
        free(list[i]);
    }

    free(list);
    free(s);

    return -1;
}


/* one element of PostHog's elementsToString() */

static void
ingest_output_element(ingest_str_t *b, json_t *el)
{
    char           *text, *href, *tag;
    size_t          i, n;
    json_t         *v;
    const char     *key;
    ingest_attr_t  *attrs;

    if (!json_is_object(el)) {
        /* extractElements() of a non-object yields an empty element */
        ingest_str_add(b, ":nth-child=\"0\"nth-of-type=\"0\"", 29);
        return;
    }

    /* text, nth-child, nth-of-type, href, attr_id and every attr__* */
    attrs = calloc(json_object_size(el) + 5, sizeof(ingest_attr_t));
    if (attrs == NULL) {
        b->failed = 1;
        return;
    }

    n = 0;

    text = ingest_output_truncated(json_object_get(el, "$el_text"),
                                   INGEST_ELEMENT_TEXT_MAX);
    if (text) {
        attrs[n].key = strdup("text");
        attrs[n++].value = text;
    }

    v = json_object_get(el, "nth_child");
    attrs[n].key = strdup("nth-child");
    attrs[n++].value = (v && !json_is_null(v)) ? ingest_output_js_string(v)
                                               : strdup("0");

    v = json_object_get(el, "nth_of_type");
    attrs[n].key = strdup("nth-of-type");
    attrs[n++].value = (v && !json_is_null(v)) ? ingest_output_js_string(v)
                                               : strdup("0");

    href = ingest_output_truncated(json_object_get(el, "attr__href"),
                                   INGEST_ELEMENT_HREF_MAX);
    if (href) {
        attrs[n].key = strdup("href");
        attrs[n++].value = href;
    }

    v = json_object_get(el, "attr__id");
    if (json_is_true(v) || (json_is_string(v) && json_string_length(v))
        || (json_is_number(v) && json_number_value(v) != 0)
        || json_is_object(v) || json_is_array(v))
    {
        attrs[n].key = strdup("attr_id");
        attrs[n++].value = ingest_output_js_string(v);
    }

    json_object_foreach(el, key, v) {
        if (strncmp(key, "attr__", 6) == 0) {
            attrs[n].key = strdup(key);
            attrs[n++].value = ingest_output_js_string(v);
        }
    }

    for (i = 0; i < n; i++) {
        if (attrs[i].key == NULL || attrs[i].value == NULL) {
            b->failed = 1;
            goto done;
        }
    }

    tag = ingest_output_truncated(json_object_get(el, "tag_name"),
                                  (size_t) -1);
    if (tag) {
        ingest_str_add(b, tag, strlen(tag));
        free(tag);
    }

    if (ingest_output_classes(b, json_object_get(el, "attr__class")) != 0) {
        b->failed = 1;
        goto done;
    }

    qsort(attrs, n, sizeof(ingest_attr_t), ingest_output_attr_cmp);

    ingest_str_add(b, ":", 1);

    for (i = 0; i < n; i++) {
        ingest_buf_add_escaped(b, attrs[i].key);
        ingest_str_add(b, "=\"", 2);
        ingest_buf_add_escaped(b, attrs[i].value);
        ingest_str_add(b, "\"", 1);
    }

done:

    for (i = 0; i < n; i++) {
        free(attrs[i].key);
        free(attrs[i].value);
    }

    free(attrs);
}


char *
ingest_elements_chain(json_t *properties)
{
    char          *s;
    size_t         i;
    json_t        *chain, *elements, *el;
    ingest_str_t   b;

    memset(&b, 0, sizeof(ingest_str_t));

    chain = json_object_get(properties, "$elements_chain");
    elements = json_object_get(properties, "$elements");

    if (chain && !json_is_null(chain) && !json_is_false(chain)
        && !(json_is_string(chain) && json_string_length(chain) == 0))
    {
        s = ingest_output_js_string(chain);

    } else if (json_is_array(elements) && json_array_size(elements) > 0) {
        json_array_foreach(elements, i, el) {
            if (i > 0) {
                ingest_str_add(&b, ";", 1);
            }

            ingest_output_element(&b, el);
        }

        if (b.failed) {
            free(b.data);
            return NULL;
        }

        s = b.data ? b.data : strdup("");

    } else {
        s = strdup("");
    }

    json_object_del(properties, "$elements_chain");
    json_object_del(properties, "$elements");

    return s;
}


static char *
ingest_output_dump(json_t *row, size_t *len)
{
    char  *s;

    /*
     * compact like JSON.stringify(); raw UTF-8 rather than \u escapes
     * because old ClickHouse parsers handle those with less care
     */
    s = json_dumps(row, JSON_COMPACT);

    json_decref(row);

    if (s != NULL && len != NULL) {
        *len = strlen(s);
    }

    return s;
}


static int
ingest_output_set_str(json_t *row, const char *key, const char *s,
    size_t len)
{
    return json_object_set_new(row, key,
                               ingest_json_string(s ? s : "", s ? len : 0));
}


static int
ingest_output_set_time(json_t *row, const char *key, int64_t us, int ms,
    int nullable)
{
    char  buf[INGEST_TIME_BUF_LEN];

    /* a null in a non-Nullable column would stop the Kafka table */
    if (nullable && us == INGEST_TIME_NONE) {
        return json_object_set_new(row, key, json_null());
    }

    ingest_time_format(us, ms, buf);

    return json_object_set_new(row, key, json_string(buf));
}


static int
ingest_output_set_uuid(json_t *row, const char *key, const char *uuid)
{
    char    buf[37];
    size_t  i;

    if (uuid == NULL || !ingest_uuid_valid(uuid, strlen(uuid))) {
        return -1;
    }

    for (i = 0; i < 36; i++) {
        buf[i] = tolower((unsigned char) uuid[i]);
    }

    buf[36] = '\0';

    return json_object_set_new(row, key, json_string(buf));
}


/* a JSON value as a JSON string column, as JSON.stringify() does */

static int
ingest_output_set_json(json_t *row, const char *key, json_t *v)
{
    char  *s;
    int    rc;

    if (v == NULL) {
        return json_object_set_new(row, key, json_string("{}"));
    }

    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL) {
        return -1;
    }

    rc = json_object_set_new(row, key, json_string_nocheck(s));
    free(s);

    return rc;
}


/* a string column: repaired like ingest_json_string(), then escaped */

static void
ingest_output_add_str(ingest_str_t *b, const char *key, const char *s,
    size_t len)
{
    char    *clean;
    size_t   n;

    ingest_str_add(b, key, strlen(key));

    if (s == NULL) {
        ingest_str_lit(b, "\"\"");
        return;
    }

    if (ingest_utf8_valid(s, len)) {
        ingest_str_add_json(b, s, len);
        return;
    }

    clean = ingest_utf8_sanitize(s, len, &n);
    if (clean == NULL) {
        b->failed = 1;
        return;
    }

    ingest_str_add_json(b, clean, n);
    free(clean);
}


static void
ingest_output_add_time(ingest_str_t *b, const char *key, int64_t us, int ms,
    int nullable)
{
    char  buf[INGEST_TIME_BUF_LEN];

    ingest_str_add(b, key, strlen(key));

    /* a null in a non-Nullable column would stop the Kafka table */
    if (nullable && us == INGEST_TIME_NONE) {
        ingest_str_lit(b, "null");
        return;
    }

    ingest_time_format(us, ms, buf);
    ingest_str_lit(b, "\"");
    ingest_str_add(b, buf, strlen(buf));
    ingest_str_lit(b, "\"");
}


static void
ingest_output_add_uuid(ingest_str_t *b, const char *key, const char *uuid)
{
    char    buf[38];
    size_t  i;

    if (uuid == NULL || !ingest_uuid_valid(uuid, strlen(uuid))) {
        b->failed = 1;
        return;
    }

    buf[0] = '"';

    for (i = 0; i < 36; i++) {
        buf[i + 1] = tolower((unsigned char) uuid[i]);
    }

    buf[37] = '"';

    ingest_str_add(b, key, strlen(key));
    ingest_str_add(b, buf, 38);
}


static void
ingest_output_add_int(ingest_str_t *b, const char *key, int64_t v)
{
    ingest_str_add(b, key, strlen(key));
    ingest_str_add_int(b, v);
}


/*
 * The row is spliced as text in the exact form json_dumps(JSON_COMPACT)
 * gave it when it was a DOM: same keys, same order, same escapes; the
 * JSON-in-a-string columns are built once and escaped once
 */

/* a huge one is not kept: it would pin its memory */

static void
ingest_output_props_done(ingest_str_t *props)
{
    if (props->size > 65536 || props->failed) {
        free(props->data);
        memset(props, 0, sizeof(ingest_str_t));
    }
}


char *
ingest_output_event(ingest_event_row_t *row, size_t *len)
{
    int           i;
    char         *chain_s, *s, name[9];
    json_t       *pp, *set;
    size_t        chain_len;
    unsigned      mode;
    const char   *chain;
    ingest_str_t  b, *props;

    /* the properties text is copied into the row: its buffer is reused */
    static __thread ingest_str_t  props_buf;

    mode = row->person_mode;

    if (mode > INGEST_PERSON_MODE_FORCE_UPGRADE) {
        return NULL;
    }

    memset(&b, 0, sizeof(ingest_str_t));
    props = &props_buf;
    props->len = 0;
    props->failed = 0;
    chain_s = NULL;

    if (row->fast) {
        chain = ingest_fast_elements_chain(row->fast, &chain_len);

        if (ingest_fast_properties(row->fast,
                                   mode == INGEST_PERSON_MODE_FULL, props)
            != 0)
        {
            goto failed;
        }

    } else {
        chain_s = ingest_elements_chain(row->properties);
        if (chain_s == NULL) {
            return NULL;
        }

        chain = chain_s;
        chain_len = strlen(chain_s);

        if (mode != INGEST_PERSON_MODE_FULL) {
            /* §3.8: personless rows carry no group columns */
            for (i = 0; i < 5; i++) {
                snprintf(name, sizeof(name), "$group_%d", i);
                json_object_del(row->properties, name);
            }
        }

        s = json_dumps(row->properties, JSON_COMPACT | JSON_ENCODE_ANY);
        if (s == NULL) {
            goto failed;
        }

        ingest_str_add(props, s, strlen(s));
        free(s);
    }

    /* one allocation for a typical row: escaping adds a quarter at most */
    (void) ingest_str_reserve(&b, props->len + props->len / 4 + 1024);

    ingest_output_add_uuid(&b, "{\"uuid\":", row->uuid);
    ingest_output_add_str(&b, ",\"event\":", row->event,
                          row->event ? strlen(row->event) : 0);
    ingest_str_lit(&b, ",\"properties\":");
    ingest_str_add_json(&b, props->len ? props->data : "{}",
                        props->len ? props->len : 2);
    ingest_output_add_time(&b, ",\"timestamp\":", row->timestamp_us, 1, 0);
    ingest_output_add_int(&b, ",\"team_id\":", row->team_id);

    if (row->project_id >= 0) {
        ingest_output_add_int(&b, ",\"project_id\":", row->project_id);
    }

    ingest_output_add_str(&b, ",\"distinct_id\":", row->distinct_id,
                          row->distinct_id ? strlen(row->distinct_id) : 0);
    ingest_output_add_str(&b, ",\"elements_chain\":", chain, chain_len);
    ingest_output_add_time(&b, ",\"created_at\":", row->created_at_us, 1, 0);
    ingest_output_add_time(&b, ",\"captured_at\":", row->captured_at_us, 1,
                           1);
    ingest_output_add_uuid(&b, ",\"person_id\":", row->person_id);

    ingest_str_lit(&b, ",\"person_properties\":");

    if (mode != INGEST_PERSON_MODE_FULL) {
        ingest_str_lit(&b, "\"{}\"");

    } else if (row->person_properties_text) {
        ingest_str_add_json(&b, row->person_properties_text,
                            row->person_properties_len);

    } else {
        /* { ...person.properties, ...properties.$set } */
        pp = ingest_props_merge(row->person_properties, NULL);
        set = json_object_get(row->properties, "$set");

        if (pp == NULL
            || (json_is_object(set) && json_object_update(pp, set) != 0))
        {
            json_decref(pp);
            goto failed;
        }

        s = json_dumps(pp, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(pp);

        if (s == NULL) {
            goto failed;
        }

        ingest_str_add_json(&b, s, strlen(s));
        free(s);
    }

    ingest_output_add_time(&b, ",\"person_created_at\":",
                           row->person_created_at_us, 0, 0);
    ingest_str_lit(&b, ",\"person_mode\":\"");
    ingest_str_add(&b, ingest_person_modes[mode],
                   strlen(ingest_person_modes[mode]));
    ingest_str_lit(&b, "\"");

    if (row->historical_migration) {
        ingest_str_lit(&b, ",\"historical_migration\":true");
    }

    ingest_str_lit(&b, "}");

    if (b.failed) {
        goto failed;
    }

    free(chain_s);
    ingest_output_props_done(props);

    if (len) {
        *len = b.len;
    }

    return b.data;

failed:

    free(chain_s);
    ingest_output_props_done(props);
    free(b.data);

    return NULL;
}


char *
ingest_output_person(const char *uuid, int64_t team_id,
    int64_t created_at_us, json_t *properties, int is_identified,
    int is_deleted, int64_t version, int64_t last_seen_us, size_t *len)
{
    int      rc;
    json_t  *o;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    rc = ingest_output_set_uuid(o, "id", uuid);
    rc |= ingest_output_set_time(o, "created_at", created_at_us, 0, 0);
    rc |= ingest_output_set_json(o, "properties", properties);
    rc |= json_object_set_new(o, "team_id", json_integer(team_id));
    rc |= json_object_set_new(o, "is_identified",
                              json_integer(is_identified ? 1 : 0));
    rc |= json_object_set_new(o, "is_deleted",
                              json_integer(is_deleted ? 1 : 0));
    rc |= json_object_set_new(o, "version", json_integer(version));
    rc |= ingest_output_set_time(o, "last_seen_at", last_seen_us, 0, 1);

    if (rc != 0) {
        json_decref(o);
        return NULL;
    }

    return ingest_output_dump(o, len);
}


char *
ingest_output_distinct_id(const char *person_uuid, int64_t team_id,
    const char *distinct_id, size_t distinct_id_len, int64_t version,
    int is_deleted, size_t *len)
{
    int      rc;
    json_t  *o;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    rc = ingest_output_set_uuid(o, "person_id", person_uuid);
    rc |= json_object_set_new(o, "team_id", json_integer(team_id));
    rc |= ingest_output_set_str(o, "distinct_id", distinct_id,
                                distinct_id_len);
    rc |= json_object_set_new(o, "version", json_integer(version));
    rc |= json_object_set_new(o, "is_deleted",
                              json_integer(is_deleted ? 1 : 0));

    if (rc != 0) {
        json_decref(o);
        return NULL;
    }

    return ingest_output_dump(o, len);
}


char *
ingest_output_warning(int64_t team_id, const char *type, json_t *details,
    int64_t now_us, size_t *len)
{
    int      rc;
    json_t  *o;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    rc = json_object_set_new(o, "team_id", json_integer(team_id));
    rc |= ingest_output_set_str(o, "type", type, type ? strlen(type) : 0);
    rc |= json_object_set_new(o, "source", json_string("plugin-server"));
    rc |= ingest_output_set_json(o, "details", details);
    rc |= ingest_output_set_time(o, "timestamp", now_us, 1, 0);

    if (rc != 0) {
        json_decref(o);
        return NULL;
    }

    return ingest_output_dump(o, len);
}
