/*
 * Copyright (C) edgehog
 */

/*
 * Person property operations, merge decisions and person UUIDs,
 * with the vectors of spec/ingestion.md §3 and §11.
 */


#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "ingest_props.h"


static json_t *js(const char *text);
static char *dump(json_t *v);
static int update(json_t *props, const char *ops_json);
static void test_uuid(void);
static void test_create(void);
static void test_update(void);
static void test_merge(void);
static void test_illegal(void);
static void test_trigger(void);
static void test_decide(void);


static json_t *
js(const char *text)
{
    json_error_t  err;

    return json_loads(text, 0, &err);
}


/* the caller frees; tests leak nothing under ASan */

static char *
dump(json_t *v)
{
    return json_dumps(v, JSON_COMPACT);
}


static int
update(json_t *props, const char *ops_json)
{
    int                  rc;
    json_t              *ops;
    ingest_props_ops_t   o;

    ops = js(ops_json);
    ingest_props_ops(ops, &o);
    rc = ingest_props_update(props, &o);
    json_decref(ops);

    return rc;
}


static void
test_uuid(void)
{
    char  out[INGEST_PERSON_UUID_LEN + 1];

    static const struct {
        long long    team;
        const char  *id;
        const char  *uuid;
    } v[] = {
        { 1, "anon-1", "cfa956a0-5af4-51c6-9ef5-cb3c80e09b69" },
        { 1, "user-1", "6931a681-6e90-500d-8294-14582dcc2e3f" },
        { 2, "new-user", "4db89b1b-c399-51fa-adb3-df07003c84ef" },
        { 1, "user-2", "2f9a1015-4b75-53b5-8ff6-010dae7812a2" },
        { 1, "A", "67e63116-f760-5f08-a0e0-51686d841da6" },
        { 1, "B", "072d0dad-6128-5fb7-b879-368f964e853b" },
        { 1, "C", "3807737f-4dc8-5887-8db4-93b8104a4843" },
        { 1, "pl-1", "3a518403-6b9d-5160-9ce5-fd976f3c35ed" },
        { 1, "old", "cb2285ea-49d3-54a8-aee6-c076e0581b42" },
        { 1, "new", "ed867aa7-086f-5827-ae69-3191a465a823" },
    };
    size_t  i;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        is_int(ingest_person_uuid(v[i].team, v[i].id, strlen(v[i].id), out),
               0, "person uuid %lld:%s computed", v[i].team, v[i].id);
        is_str(out, v[i].uuid, "person uuid %lld:%s", v[i].team, v[i].id);
    }
}


static void
test_create(void)
{
    char                *s;
    json_t              *ev, *p, *op, *upd;
    ingest_props_ops_t   o;

    /* AC-02 */
    ev = js("{\"$set_once\":{\"a\":1,\"b\":2},\"$set\":{\"b\":3,\"c\":4}}");
    ingest_props_ops(ev, &o);

    p = ingest_props_create(&o, "E", "2024-01-01T10:00:00.000Z", &op, &upd);
    ok(p != NULL, "create");

    s = dump(p);
    is_str(s, "{\"a\":1,\"b\":3,\"c\":4,\"$creator_event_uuid\":\"E\"}",
           "AC-02 creation properties, $set beats $set_once");
    free(s);

    s = dump(op);
    is_str(s, "{\"a\":\"set_once\",\"b\":\"set\",\"c\":\"set\"}",
           "AC-02 properties_last_operation");
    free(s);

    s = dump(upd);
    is_str(s, "{\"a\":\"2024-01-01T10:00:00.000Z\","
              "\"b\":\"2024-01-01T10:00:00.000Z\","
              "\"c\":\"2024-01-01T10:00:00.000Z\"}",
           "AC-02 properties_last_updated_at");
    free(s);

    /* AC-03 */
    is_int(update(p, "{\"$set_once\":{\"a\":9,\"d\":5},\"$set\":{\"c\":7}}"),
           INGEST_PROPS_CHANGED | INGEST_PROPS_SIGNIFICANT,
           "AC-03 update changes");

    s = dump(p);
    is_str(s, "{\"a\":1,\"b\":3,\"c\":7,\"$creator_event_uuid\":\"E\","
              "\"d\":5}", "AC-03 $set_once keeps a, $set overwrites c");
    free(s);

    is_int(update(p, "{\"$set\":{\"c\":7}}"), 0, "AC-03 no-op $set");
    is_int(update(p, "{\"$set_once\":{\"c\":8}}"), 0, "no-op $set_once");
    is_int(update(p, "{}"), 0, "no ops");

    json_decref(p);
    json_decref(op);
    json_decref(upd);
    json_decref(ev);

    /* AC-01: the first properties are never {} */
    ingest_props_ops(NULL, &o);
    p = ingest_props_create(&o, "E1", NULL, NULL, NULL);
    s = dump(p);
    is_str(s, "{\"$creator_event_uuid\":\"E1\"}", "AC-01 creator key only");
    free(s);
    json_decref(p);
}


static void
test_update(void)
{
    char                *s;
    json_t              *p;
    ingest_props_ops_t   o;

    /* AC-04 */
    p = js("{\"a\":1,\"b\":2}");

    is_int(update(p, "{\"$unset\":[\"a\",\"zz\"]}"),
           INGEST_PROPS_CHANGED | INGEST_PROPS_SIGNIFICANT, "AC-04 unset a");
    s = dump(p);
    is_str(s, "{\"b\":2}", "AC-04 array $unset");
    free(s);

    is_int(update(p, "{\"$unset\":{\"b\":null}}"),
           INGEST_PROPS_CHANGED | INGEST_PROPS_SIGNIFICANT, "AC-04 unset b");
    s = dump(p);
    is_str(s, "{}", "AC-04 object $unset");
    free(s);

    is_int(update(p, "{\"$unset\":[\"zz\"]}"), 0, "unset of absent key");

    update(p, "{\"$set\":{\"n\":1},\"$unset\":[\"n\"]}");
    s = dump(p);
    is_str(s, "{\"n\":1}", "AC-04 G3: $set and $unset of a new key keeps it");
    free(s);

    update(p, "{\"$set\":{\"n\":2},\"$unset\":[\"n\"]}");
    s = dump(p);
    is_str(s, "{}", "unset of an original key runs after the set");
    free(s);

    json_decref(p);

    /* JavaScript !== semantics */
    p = js("{\"o\":{\"x\":1},\"i\":1,\"r\":1.5,\"s\":\"v\",\"n\":null,"
           "\"t\":true}");

    is_int(update(p, "{\"$set\":{\"o\":{\"x\":1}}}"),
           INGEST_PROPS_CHANGED | INGEST_PROPS_SIGNIFICANT,
           "equal objects still count as a change");
    is_int(update(p, "{\"$set\":{\"i\":1.0,\"r\":1.5,\"s\":\"v\","
                     "\"n\":null,\"t\":true}}"),
           0, "equal scalars are no change (1 === 1.0)");
    is_int(update(p, "{\"$set\":{\"t\":1}}"),
           INGEST_PROPS_CHANGED | INGEST_PROPS_SIGNIFICANT,
           "true !== 1");
    is_int(update(p, "{\"$set_once\":{\"n\":5}}"), 0,
           "$set_once does not replace null");

    json_decref(p);

    /* G3 change filtering */
    p = js("{\"$browser\":\"Chrome\",\"$geoip_city_confidence\":1}");

    is_int(update(p, "{\"$set\":{\"$browser\":\"Firefox\","
                     "\"$geoip_city_confidence\":2}}"),
           INGEST_PROPS_CHANGED, "filtered keys only: not significant");
    is_int(update(p, "{\"$set\":{\"$os\":\"Linux\"}}"),
           INGEST_PROPS_CHANGED | INGEST_PROPS_SIGNIFICANT,
           "a new filtered key is significant");
    is_int(update(p, "{\"$set\":{\"$os\":\"Mac\",\"email\":\"e\"}}"),
           INGEST_PROPS_CHANGED | INGEST_PROPS_SIGNIFICANT,
           "any other key is significant");

    json_decref(p);

    p = js("{}");
    ingest_props_ops(NULL, &o);
    o.survey_last_seen = "2024-01-01T10:00:00.000Z";
    is_int(ingest_props_update(p, &o),
           INGEST_PROPS_CHANGED | INGEST_PROPS_SIGNIFICANT,
           "survey shown sets $survey_last_seen_date");
    is_int(ingest_props_update(p, &o), 0, "same survey date: no change");
    s = dump(p);
    is_str(s, "{\"$survey_last_seen_date\":\"2024-01-01T10:00:00.000Z\"}",
           "$survey_last_seen_date");
    free(s);
    json_decref(p);

    ok(ingest_props_person_event("$identify")
       && ingest_props_person_event("$set")
       && !ingest_props_person_event("$pageview"), "PERSON_EVENTS");

    /* junk ops are ignored */
    p = js("{\"a\":1}");
    is_int(update(p, "{\"$set\":\"x\",\"$set_once\":[1],\"$unset\":\"a\"}"),
           0, "non-object $set / $set_once and string $unset ignored");
    is_int(update(p, "{\"$unset\":[1,null,{\"a\":1}]}"), 0,
           "$unset of non-string names");
    json_decref(p);
}


static void
test_merge(void)
{
    char    *s;
    json_t  *src, *dst, *m;

    /* AC-08 */
    src = js("{\"a\":1,\"b\":2}");
    dst = js("{\"b\":3,\"c\":4,\"d\":5}");

    m = ingest_props_merge(src, dst);
    update(m, "{\"$set\":{\"d\":6,\"e\":7},\"$set_once\":{\"a\":8,\"f\":9}}");

    s = dump(m);
    is_str(s, "{\"a\":1,\"b\":3,\"c\":4,\"d\":6,\"f\":9,\"e\":7}",
           "AC-08 merged properties");
    free(s);

    s = dump(src);
    is_str(s, "{\"a\":1,\"b\":2}", "merge leaves the source alone");
    free(s);

    json_decref(m);
    json_decref(src);
    json_decref(dst);

    /* AC-14 */
    src = js("{\"key_on_both\":\"old value both\","
             "\"key_on_old\":\"old value\"}");
    dst = js("{\"key_on_both\":\"new value both\","
             "\"key_on_new\":\"new value\"}");

    m = ingest_props_merge(src, dst);
    s = dump(m);
    is_str(s, "{\"key_on_both\":\"new value both\","
              "\"key_on_old\":\"old value\",\"key_on_new\":\"new value\"}",
           "AC-14 alias merge precedence, source keys first");
    free(s);

    json_decref(m);
    json_decref(src);
    json_decref(dst);

    m = ingest_warning_merge("old", "new", "E");
    s = dump(m);
    is_str(s, "{\"sourcePersonDistinctId\":\"old\","
              "\"targetPersonDistinctId\":\"new\",\"eventUuid\":\"E\"}",
           "AC-09 warning details");
    free(s);
    json_decref(m);

    m = ingest_warning_illegal_id("null", "user-1\xff", "E");
    s = dump(m);
    is_str(s, "{\"illegalDistinctId\":\"null\","
              "\"otherDistinctId\":\"user-1\xef\xbf\xbd\","
              "\"eventUuid\":\"E\"}", "AC-11 warning details, repaired");
    free(s);
    json_decref(m);

    is_int(ingest_merge_version(0, 0), 1, "AC-08 merge version max(0,0)+1");
    is_int(ingest_merge_version(3, 7), 8, "merge version uses the source");
    is_int(0 + INGEST_DELETE_VERSION_BUMP, 100, "delete row version +100");
}


static void
test_illegal(void)
{
    size_t  i;

    static const char  *bad[] = {
        "", "  ", "\t\n", "\xc2\xa0", "\xef\xbb\xbf", "null", "Anonymous",
        "ANONYMOUS", "guest", "distinctid", "DISTINCT_ID", "id", "Id",
        "not_authenticated", "email", "undefined", "true", "False",
        "[object Object]", "NaN", "None", "none", "0", "\"undefined\"",
        "'null'", "\"guest\"", "'Email'", "'0'", "\"[object Object]\"",
    };

    static const char  *good[] = {
        "Nan", "nan", "NULL", "Null", "NONE", "00", " guest", "guest ",
        "user-1", "anon-1", "'", "\"", "''", "\"null'", "x",
        "[object object]", "\xe2\x80\x8b",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ok(ingest_distinct_id_illegal(bad[i], strlen(bad[i])),
           "illegal distinct id #%zu", i);
    }

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ok(!ingest_distinct_id_illegal(good[i], strlen(good[i])),
           "legal distinct id #%zu", i);
    }
}


static void
test_trigger(void)
{
    char                    *other;
    json_t                  *p;
    const char              *illegal;
    ingest_merge_trigger_e   t;

    p = js("{\"$anon_distinct_id\":\"anon-1\"}");
    t = ingest_merge_trigger("$identify", "user-1", p, &other, &illegal);
    is_int(t, INGEST_MERGE_FETCH, "AC-06 $identify triggers a merge");
    is_str(other, "anon-1", "AC-06 other id");
    free(other);

    t = ingest_merge_trigger("$identify", "anon-1", p, &other, &illegal);
    is_int(t, INGEST_MERGE_SAME_ID, "AC-12 identify with itself");
    ok(other == NULL, "AC-12 no other id");

    t = ingest_merge_trigger("$pageview", "user-1", p, &other, &illegal);
    is_int(t, INGEST_MERGE_NONE, "no merge for other events");

    t = ingest_merge_trigger("$create_alias", "user-1", p, &other, &illegal);
    is_int(t, INGEST_MERGE_NONE, "$create_alias needs alias");
    json_decref(p);

    p = js("{\"$anon_distinct_id\":null}");
    t = ingest_merge_trigger("$identify", "user-1", p, &other, &illegal);
    is_int(t, INGEST_MERGE_ILLEGAL_ID, "null $anon_distinct_id is \"null\"");
    is_str(illegal, "null", "AC-11 illegalDistinctId");
    free(other);
    json_decref(p);

    p = js("{\"$anon_distinct_id\":\"NaN\"}");
    t = ingest_merge_trigger("$identify", "user-1", p, &other, &illegal);
    is_int(t, INGEST_MERGE_ILLEGAL_ID, "AC-11 NaN");
    free(other);
    json_decref(p);

    p = js("{\"$anon_distinct_id\":\"Nan\"}");
    t = ingest_merge_trigger("$identify", "user-1", p, &other, &illegal);
    is_int(t, INGEST_MERGE_FETCH, "AC-11 Nan is legal");
    free(other);
    json_decref(p);

    p = js("{\"alias\":\"null\"}");
    t = ingest_merge_trigger("$create_alias", "user-1", p, &other, &illegal);
    is_int(t, INGEST_MERGE_ILLEGAL_ID, "AC-11 alias null");
    free(other);
    json_decref(p);

    p = js("{\"alias\":\"old\"}");
    t = ingest_merge_trigger("$merge_dangerously", "0", p, &other, &illegal);
    is_int(t, INGEST_MERGE_ILLEGAL_ID, "illegal into id");
    is_str(illegal, "0", "the into id is the illegal one");
    free(other);
    json_decref(p);

    p = js("{\"alias\":42}");
    t = ingest_merge_trigger("$create_alias", "user-1", p, &other, &illegal);
    is_int(t, INGEST_MERGE_FETCH, "numeric alias");
    is_str(other, "42", "String(alias)");
    free(other);
    json_decref(p);

    p = js("{\"alias\":\"\"}");
    t = ingest_merge_trigger("$create_alias", "user-1", p, &other, &illegal);
    is_int(t, INGEST_MERGE_NONE, "empty alias is falsy");
    json_decref(p);
}


static void
test_decide(void)
{
    ingest_person_state_t  none, anon, ident, other;

    memset(&none, 0, sizeof(none));

    memset(&anon, 0, sizeof(anon));
    anon.exists = 1;
    anon.id = 10;

    memset(&ident, 0, sizeof(ident));
    ident.exists = 1;
    ident.is_identified = 1;
    ident.id = 11;

    other = anon;
    other.id = 12;

    is_int(ingest_merge_decide("$identify", &none, &none),
           INGEST_MERGE_CREATE, "AC-07 neither exists");
    is_int(ingest_merge_decide("$identify", &anon, &none),
           INGEST_MERGE_ADD_TO_OTHER, "AC-06 only the anonymous one");
    is_int(ingest_merge_decide("$create_alias", &none, &anon),
           INGEST_MERGE_ADD_TO_INTO, "only into exists");
    is_int(ingest_merge_decide("$identify", &anon, &anon),
           INGEST_MERGE_ALREADY_SAME, "same person");
    is_int(ingest_merge_decide("$identify", &anon, &other),
           INGEST_MERGE_PEOPLE, "AC-08 merge two persons");
    is_int(ingest_merge_decide("$identify", &ident, &other),
           INGEST_MERGE_REFUSE_IDENTIFIED, "AC-09 source identified");
    is_int(ingest_merge_decide("$create_alias", &ident, &other),
           INGEST_MERGE_REFUSE_IDENTIFIED, "alias refused too");
    is_int(ingest_merge_decide("$merge_dangerously", &ident, &other),
           INGEST_MERGE_PEOPLE, "AC-10 $merge_dangerously");
    is_int(ingest_merge_decide("$identify", &other, &ident),
           INGEST_MERGE_PEOPLE, "identified target is fine");

    /* AC-16 */
    is_int(ingest_personless_mode(1, 1704103200000000LL,
                                  1704096000000000LL, 0),
           INGEST_PERSON_MODE_FORCE_UPGRADE, "AC-16 force_upgrade");
    is_int(ingest_personless_mode(1, 1704096030000000LL,
                                  1704096000000000LL, 0),
           INGEST_PERSON_MODE_PROPERTYLESS, "AC-16 within a minute");
    is_int(ingest_personless_mode(1, 1704103200000000LL,
                                  1704096000000000LL, 1),
           INGEST_PERSON_MODE_PROPERTYLESS, "team opted out");
    is_int(ingest_personless_mode(0, 1704103200000000LL, 0, 0),
           INGEST_PERSON_MODE_PROPERTYLESS, "AC-15 no person");
}


int
main(void)
{
    test_uuid();
    test_create();
    test_update();
    test_merge();
    test_illegal();
    test_trigger();
    test_decide();

    return done_testing();
}
