/*
 * Copyright (C) edgehog
 */

/*
 * The differential check of ingest_fast.c, shared by its unit test and
 * the fuzzer: whenever the fast path takes a message, everything the
 * worker reads from it and every row built from it must equal what the
 * DOM path (ingest_message_parse) gives, byte for byte.
 */

#ifndef _INGEST_FAST_DIFF_H_INCLUDED_
#define _INGEST_FAST_DIFF_H_INCLUDED_


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "ingest_fast.h"
#include "ingest_message.h"
#include "ingest_output.h"
#include "ingest_props.h"


#define FAST_DIFF_EQUAL        0
#define FAST_DIFF_NOT_TAKEN    1
#define FAST_DIFF_MISMATCH     2

#define FAST_DIFF_ANONYMIZE    0x01
#define FAST_DIFF_PERSONLESS   0x02


static int
fast_diff_str(const char *what, const char *a, const char *b)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0)) {
        fprintf(stderr, "# fast path differs in %s: \"%s\" vs \"%s\"\n",
                what, a ? a : "(null)", b ? b : "(null)");
        return 1;
    }

    return 0;
}


static int
fast_diff_json(const char *what, json_t *a, json_t *b)
{
    int    rc;
    char  *sa, *sb;

    sa = a ? json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    sb = b ? json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

    rc = fast_diff_str(what, sa, sb);

    free(sa);
    free(sb);

    return rc;
}


static char *
fast_diff_row(ingest_message_t *m, json_t *person_props)
{
    size_t              len;
    ingest_event_row_t  r;

    memset(&r, 0, sizeof(r));

    r.uuid = m->uuid;
    r.event = m->event;
    r.distinct_id = m->distinct_id;
    r.properties = m->properties;
    r.team_id = 2;
    r.project_id = 2;
    r.timestamp_us = 1719831598000000LL;
    r.created_at_us = 1719831599123456LL;
    r.captured_at_us = INGEST_TIME_NONE;
    r.person_id = "018c0b2a-0000-7000-8000-00000000000A";
    r.person_properties = person_props;
    r.person_created_at_us = 1700000000000000LL;
    r.person_mode = m->process_person ? INGEST_PERSON_MODE_FULL
                                      : INGEST_PERSON_MODE_PROPERTYLESS;
    r.fast = m->fast;

    return ingest_output_event(&r, &len);
}


/* prepare()'s results and the event row, as one string (malloc'd) */

static char *
fast_diff_prepared(ingest_message_t *m, const ingest_team_opts_t *team)
{
    int               i;
    char             *props, *row, *out;
    size_t            len, n;
    ingest_msg_rc_e   rc;

    rc = ingest_message_prepare(m, team);

    props = json_dumps(m->properties, JSON_COMPACT | JSON_ENCODE_ANY);
    row = rc == INGEST_MSG_OK ? fast_diff_row(m, NULL) : NULL;

    n = (props ? strlen(props) : 0) + (row ? strlen(row) : 0) + 64;

    for (i = 0; i < m->nwarnings; i++) {
        n += strlen(m->warnings[i].type) + 1;
    }

    out = malloc(n);
    if (out == NULL) {
        abort();
    }

    len = snprintf(out, n, "%d %d %d %d %s %s", rc, m->process_person,
                   m->route, m->nwarnings, props ? props : "-",
                   row ? row : "-");

    for (i = 0; i < m->nwarnings; i++) {
        len += snprintf(out + len, n - len, " %s", m->warnings[i].type);
    }

    free(props);
    free(row);

    return out;
}


static int
fast_diff(const char *value, size_t len, int opts)
{
    int                  bad;
    char                *ra, *rb;
    json_t              *pp;
    ingest_message_t     a, b;
    ingest_team_opts_t   team;
    ingest_props_ops_t   oa, ob;

    if (ingest_fast_parse(&b, value, len) != 1) {
        return FAST_DIFF_NOT_TAKEN;
    }

    if (ingest_message_parse(&a, value, len) != INGEST_MSG_OK) {
        fprintf(stderr, "# fast path took a message the DOM path refuses "
                "(%s)\n", a.error ? a.error : "?");
        ingest_message_free(&a);
        ingest_message_free(&b);
        return FAST_DIFF_MISMATCH;
    }

    bad = fast_diff_str("uuid", a.uuid, b.uuid)
          + fast_diff_str("distinct_id", a.distinct_id, b.distinct_id)
          + fast_diff_str("event", a.event, b.event)
          + fast_diff_str("token", a.token, b.token)
          + fast_diff_str("ip", a.ip, b.ip)
          + fast_diff_str("now", a.now, b.now)
          + fast_diff_str("sent_at", a.sent_at, b.sent_at)
          + fast_diff_str("timestamp", a.timestamp_str, b.timestamp_str)
          /* a non-string the fast path must refuse (only the DOM has it) */
          + (a.timestamp != NULL && !json_is_string(a.timestamp))
          + (b.timestamp != NULL)
          + fast_diff_json("offset", a.offset, b.offset)
          + (a.outer_timestamp != b.outer_timestamp)
          + (a.has_team_id != b.has_team_id)
          + (a.is_cookieless != b.is_cookieless)
          + (a.historical_migration != b.historical_migration);

    memset(&team, 0, sizeof(team));
    team.anonymize_ips = (opts & FAST_DIFF_ANONYMIZE) != 0;
    team.force_personless = (opts & FAST_DIFF_PERSONLESS) != 0;

    if (ingest_message_prepare(&a, &team) != INGEST_MSG_OK
        || ingest_message_prepare(&b, &team) != INGEST_MSG_OK)
    {
        fprintf(stderr, "# prepare differs\n");
        bad++;
        goto done;
    }

    bad += (a.process_person != b.process_person) + (a.route != b.route)
           + (a.nwarnings != 0) + (b.nwarnings != 0);

    /* what persons read */
    ingest_props_ops(a.properties, &oa);
    ingest_props_ops(b.properties, &ob);

    bad += fast_diff_json("$set", oa.set, ob.set)
           + fast_diff_json("$set_once", oa.set_once, ob.set_once)
           + fast_diff_json("$unset", oa.unset, ob.unset);

    pp = json_pack("{s:s, s:i}", "plan", "free", "$browser", 3);

    ra = fast_diff_row(&a, pp);
    rb = fast_diff_row(&b, pp);

    bad += fast_diff_str("row", ra, rb);

    json_decref(pp);
    free(ra);
    free(rb);

done:

    ingest_message_free(&a);
    ingest_message_free(&b);

    if (bad) {
        fprintf(stderr, "# input: %.*s\n", (int) (len > 2000 ? 2000 : len),
                value);
    }

    return bad ? FAST_DIFF_MISMATCH : FAST_DIFF_EQUAL;
}


#endif /* _INGEST_FAST_DIFF_H_INCLUDED_ */
