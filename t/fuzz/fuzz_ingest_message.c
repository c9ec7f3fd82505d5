/*
 * Copyright (C) edgehog
 */

/*
 * libFuzzer target: arbitrary bytes as an events_plugin_ingestion value,
 * through parse, prepare and every row builder.  Any row that is not
 * valid UTF-8 JSON would stop a ClickHouse Kafka table, so it aborts.
 * The one-pass scanner (ingest_fast.c) runs beside the DOM path and
 * aborts on any difference in what the worker would read or emit.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "ingest_groups.h"
#include "ingest_json.h"
#include "ingest_message.h"
#include "ingest_output.h"
#include "ingest_props.h"
#include "ingest_fast_diff.h"
#include "ingest_trim.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void fuzz_check_row(char *row, size_t len);
static void fuzz_person(ingest_message_t *m, const uint8_t *data,
    size_t size);
static void fuzz_group(ingest_message_t *m, size_t size);
static void fuzz_one(const char *value, size_t len, const uint8_t *data,
    size_t size);
static char *fuzz_prepared(ingest_message_t *m, int force, int opts);
static void fuzz_personless(const char *value, size_t len, int opts);


static void
fuzz_check_row(char *row, size_t len)
{
    json_t        *v;
    json_error_t   err;

    if (row == NULL) {
        abort();
    }

    if (strlen(row) != len || !ingest_utf8_valid(row, len)) {
        abort();
    }

    v = json_loadb(row, len, 0, &err);
    if (!json_is_object(v)) {
        abort();
    }

    json_decref(v);
    free(row);
}


static void
fuzz_person(ingest_message_t *m, const uint8_t *data, size_t size)
{
    int                      rc;
    char                     uuid[INGEST_PERSON_UUID_LEN + 1], *other, *row;
    size_t                   len;
    json_t                  *p, *merged;
    const char              *illegal;
    ingest_props_ops_t       ops;
    ingest_merge_trigger_e   t;

    if (ingest_person_uuid(1, m->distinct_id, strlen(m->distinct_id), uuid)
        != 0)
    {
        abort();
    }

    ingest_props_ops(m->properties, &ops);

    p = ingest_props_create(&ops, m->uuid, NULL, NULL, NULL);
    if (p == NULL) {
        abort();
    }

    rc = ingest_props_update(p, &ops);
    if (rc < 0 || ((rc & INGEST_PROPS_CHANGED) && ops.unset == NULL
                   && ops.set == NULL))
    {
        abort();
    }

    merged = ingest_props_merge(m->properties, p);

    /* §3.4 trimming: never a protected key, never a failure */
    if (merged != NULL) {
        if (ingest_props_trim(merged, &ops, size % 256) < 0
            || (json_object_get(p, "$creator_event_uuid")
                && json_object_get(merged, "$creator_event_uuid") == NULL))
        {
            abort();
        }
    }

    json_decref(merged);

    t = ingest_merge_trigger(m->event, m->distinct_id, m->properties, &other,
                             &illegal);
    if (t == INGEST_MERGE_ILLEGAL_ID && illegal == NULL) {
        abort();
    }

    free(other);

    row = ingest_output_person(uuid, 1, (int64_t) size * 1000003, p, 1, 0,
                               (int64_t) size, INGEST_TIME_NONE, &len);
    fuzz_check_row(row, len);

    /* raw fuzz bytes as a distinct id straight from Postgres */
    row = ingest_output_distinct_id(uuid, 1, (const char *) data,
                                    size > 64 ? 64 : size, 0, 0, &len);
    fuzz_check_row(row, len);

    row = ingest_output_warning(1, "fuzz", m->properties, 0, &len);
    fuzz_check_row(row, len);

    json_decref(p);
}


/* $groupidentify: the parse, $group_set onto the event's own $set */

static void
fuzz_group(ingest_message_t *m, size_t size)
{
    int                    rc;
    char                  *row;
    size_t                 len;
    json_t                *props, *v;
    const char            *key;
    ingest_group_ident_t   g;

    rc = ingest_group_identify(m->properties, &g);
    if (rc < 0) {
        abort();
    }

    if (rc > 0) {
        return;
    }

    if (g.type == NULL || g.key == NULL || !json_is_object(g.set)) {
        abort();
    }

    props = json_copy(json_object_get(m->properties, "$set"));
    if (!json_is_object(props)) {
        json_decref(props);
        props = json_object();
    }

    if (ingest_group_props_update(props, g.set) < 0) {
        abort();
    }

    /* every key of $group_set is now in the group's properties */
    json_object_foreach(g.set, key, v) {
        if (json_object_get(props, key) == NULL) {
            abort();
        }
    }

    row = ingest_output_group(1, (int) (size % INGEST_GROUP_TYPES_MAX),
                              g.key, props, (int64_t) size * 1000003,
                              (int64_t) size, &len);
    fuzz_check_row(row, len);

    json_decref(props);
    ingest_group_ident_free(&g);
}


static void
fuzz_one(const char *value, size_t vlen, const uint8_t *data, size_t size)
{
    char                *row;
    size_t               len;
    json_t              *pp;
    ingest_message_t     m;
    ingest_event_row_t   r;
    ingest_team_opts_t   team;

    if (fast_diff(value, vlen, (int) (size & 3)) == FAST_DIFF_MISMATCH) {
        abort();
    }

    fuzz_personless(value, vlen, (int) (size & 3));

    if (ingest_message_parse(&m, value, vlen) != INGEST_MSG_OK) {
        if (m.error == NULL) {
            abort();
        }

        ingest_message_free(&m);
        return;
    }

    memset(&team, 0, sizeof(team));
    team.anonymize_ips = size & 1;

    if (ingest_message_prepare(&m, &team) != INGEST_MSG_OK) {
        ingest_message_free(&m);
        return;
    }

    fuzz_person(&m, data, size);
    fuzz_group(&m, size);

    pp = json_copy(json_object_get(m.properties, "$set"));

    memset(&r, 0, sizeof(r));

    r.uuid = m.uuid;
    r.event = m.event;
    r.distinct_id = m.distinct_id;
    r.properties = m.properties;
    r.team_id = 1;
    r.project_id = 1;
    r.timestamp_us = (int64_t) size * 7919 * 1000003;
    r.created_at_us = -r.timestamp_us;
    r.captured_at_us = (size & 2) ? INGEST_TIME_NONE : INT64_MAX;
    r.person_id = m.uuid;
    r.person_properties = pp;
    r.person_created_at_us = INT64_MIN;
    r.person_mode = m.process_person ? INGEST_PERSON_MODE_FULL
                                     : INGEST_PERSON_MODE_PROPERTYLESS;
    r.historical_migration = m.historical_migration;

    row = ingest_output_event(&r, &len);
    fuzz_check_row(row, len);

    json_decref(pp);
    ingest_message_free(&m);
}


/* prepare()'s results and the event row under the team options */

static char *
fuzz_prepared(ingest_message_t *m, int force, int opts)
{
    ingest_team_opts_t  team;

    memset(&team, 0, sizeof(team));
    team.anonymize_ips = opts & 1;
    team.person_processing_opt_out = (opts & 2) != 0;
    team.force_personless = force;

    return fast_diff_prepared(m, &team);
}


/*
 * the worker skips the force_disable_person_processing header of an
 * event that ingest_message_personless() calls personless: forcing it
 * must change nothing there, in either parser
 */

static void
fuzz_personless(const char *value, size_t len, int opts)
{
    int                i;
    char              *a, *b;
    ingest_message_t   ma, mb;
    ingest_msg_rc_e    ra, rb;

    for (i = 0; i < 2; i++) {
        ra = i ? ingest_message_parse_fast(&ma, value, len)
               : ingest_message_parse(&ma, value, len);

        if (ra != INGEST_MSG_OK) {
            ingest_message_free(&ma);
            continue;
        }

        if (!ingest_message_personless(&ma)) {
            ingest_message_free(&ma);
            continue;
        }

        rb = i ? ingest_message_parse_fast(&mb, value, len)
               : ingest_message_parse(&mb, value, len);

        if (rb != INGEST_MSG_OK) {
            abort();
        }

        a = fuzz_prepared(&ma, 0, opts);
        b = fuzz_prepared(&mb, 1, opts);

        if (strcmp(a, b) != 0) {
            abort();
        }

        free(a);
        free(b);
        ingest_message_free(&ma);
        ingest_message_free(&mb);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char    *value;
    json_t  *outer, *inner;

    fuzz_one((const char *) data, size, data, size);

    /*
     * mutations rarely survive the double encoding of "data", so the
     * bytes also go in as the inner event of a well-formed envelope
     */

    inner = json_stringn((const char *) data, size);
    if (inner == NULL) {
        return 0;
    }

    outer = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}",
                      "uuid", "018c0b2a-0000-7000-8000-000000000001",
                      "distinct_id", "anon-1", "ip", "127.0.0.1",
                      "now", "2024-01-01T10:00:00Z", "token", "phc_test",
                      "data", inner);
    if (outer == NULL) {
        abort();
    }

    value = json_dumps(outer, JSON_COMPACT);
    json_decref(outer);

    if (value == NULL) {
        abort();
    }

    fuzz_one(value, strlen(value), data, size);
    free(value);

    return 0;
}
