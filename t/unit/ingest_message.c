/*
 * Copyright (C) edgehog
 */

/*
 * Capture message parsing (spec/ingestion.md §1.3-1.6, §7, AC-05,
 * AC-15, AC-17, AC-21).
 */


#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "ingest_message.h"


#define E1  "018c0b2a-0000-7000-8000-000000000001"


static char *msg(const char *outer, const char *data);
static ingest_msg_rc_e parse(ingest_message_t *m, const char *outer,
    const char *data);
static char *prop(ingest_message_t *m, const char *key);
static void test_parse(void);
static void test_errors(void);
static void test_normalize(void);
static void test_initial(void);
static void test_event_name(void);
static void test_prepare(void);


static const ingest_team_opts_t  team_default;


/* an outer capture message whose "data" is the given JSON text */

static char *
msg(const char *outer, const char *data)
{
    char          *s;
    json_t        *o;
    json_error_t   err;

    o = json_loads(outer, JSON_ALLOW_NUL, &err);
    json_object_set_new(o, "data", json_string(data));
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);

    return s;
}


static ingest_msg_rc_e
parse(ingest_message_t *m, const char *outer, const char *data)
{
    char             *s;
    ingest_msg_rc_e   rc;

    s = msg(outer, data);
    rc = ingest_message_parse(m, s, strlen(s));
    free(s);

    return rc;
}


static char *
prop(ingest_message_t *m, const char *key)
{
    json_t  *v;

    v = json_object_get(m->properties, key);

    return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}


static void
test_parse(void)
{
    char              *s;
    ingest_message_t   m;

    is_int(parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"anon-1\","
                     "\"ip\":\"1.2.3.4\",\"now\":\"2024-01-01T10:00:00Z\","
                     "\"token\":\"phc_test\"}",
                 "{\"event\":\"$pageview\",\"distinct_id\":\"ignored\","
                 "\"uuid\":\"nope\",\"timestamp\":\"2024-01-01T09:00:00Z\","
                 "\"properties\":{\"a\":1}}"),
           INGEST_MSG_OK, "parse ok");
    is_str(m.uuid, E1, "outer uuid wins");
    is_str(m.distinct_id, "anon-1", "outer distinct_id wins");
    is_str(m.event, "$pageview", "event");
    is_str(m.token, "phc_test", "token");
    is_str(m.now, "2024-01-01T10:00:00Z", "now");
    ok(m.sent_at == NULL, "no sent_at");
    is_str(json_string_value(m.timestamp), "2024-01-01T09:00:00Z",
           "data timestamp kept for resolution");
    ok(!m.outer_timestamp, "timestamp only in data: not capture's");
    s = prop(&m, "$ip");
    is_str(s, "\"1.2.3.4\"", "$ip from ip");
    free(s);
    ok(m.process_person, "process person by default");
    ingest_message_free(&m);

    /* numbers are stringified, team_id and offset coerced */
    is_int(parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":12345,"
                     "\"team_id\":\"7\"}",
                 "{\"event\":\"e\",\"offset\":\"6000\"}"),
           INGEST_MSG_OK, "numeric distinct id");
    is_str(m.distinct_id, "12345", "distinct_id String()");
    ok(m.has_team_id && m.team_id == 7, "numeric string team_id");
    is_int(json_integer_value(m.offset), 6000, "offset as a number");
    ok(m.token == NULL, "no token: caller drops (no_token)");
    ingest_message_free(&m);

    is_int(parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":1.5}",
                 "{\"event\":\"e\"}"), INGEST_MSG_OK, "real distinct id");
    is_str(m.distinct_id, "1.5", "distinct_id 1.5");
    ingest_message_free(&m);

    is_int(parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":true}",
                 "{\"event\":\"e\"}"), INGEST_MSG_OK, "bool distinct id");
    is_str(m.distinct_id, "true", "distinct_id true");
    ingest_message_free(&m);

    /* U+0000 becomes U+FFFD everywhere */
    is_int(parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"a\\u0000b\"}",
                 "{\"event\":\"e\\u0000\","
                 "\"properties\":{\"k\":[\"\\u0000\"]}}"),
           INGEST_MSG_OK, "NUL accepted");
    is_str(m.distinct_id, "a\xef\xbf\xbd" "b", "NUL in distinct id");
    is_str(m.event, "e\xef\xbf\xbd", "NUL in event name");
    s = prop(&m, "k");
    is_str(s, "[\"\xef\xbf\xbd\"]", "NUL in nested property");
    free(s);
    ingest_message_free(&m);

    /* huge integers become doubles, as in JavaScript */
    is_int(parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
                 "{\"event\":\"e\",\"properties\":{\"big\":"
                 "123456789012345678901234567890,\"small\":3}}"),
           INGEST_MSG_OK, "huge integer accepted");
    ok(json_is_real(json_object_get(m.properties, "big")), "big is real");
    ok(json_is_integer(json_object_get(m.properties, "small")),
       "small stays an integer");
    ingest_message_free(&m);

    /* G3 flags */
    is_int(parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\","
                     "\"is_cookieless_mode\":true,"
                     "\"historical_migration\":true}",
                 "{\"event\":\"e\"}"), INGEST_MSG_OK, "flags");
    ok(m.is_cookieless && m.historical_migration, "cookieless, historical");
    ingest_message_free(&m);

    /* §2.2: capture's outer timestamp is noted by the parser */
    is_int(parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\","
                     "\"timestamp\":\"2024-01-01T09:59:00.000Z\"}",
                 "{\"event\":\"e\",\"timestamp\":\"2020-01-01\"}"),
           INGEST_MSG_OK, "outer timestamp");
    ok(m.outer_timestamp, "outer timestamp noted");
    is_str(json_string_value(m.timestamp), "2024-01-01T09:59:00.000Z",
           "outer timestamp wins");
    ingest_message_free(&m);
}


static void
test_errors(void)
{
    size_t             i;
    ingest_message_t   m;

    static const struct {
        const char  *value;
        const char  *error;
    } raw[] = {
        { "", "failed_parse_message" },
        { "not json", "failed_parse_message" },
        { "[]", "failed_parse_message" },
        { "{\"data\":{}}", "failed_parse_message" },
        { "{\"data\":\"not json\"}", "failed_parse_message" },
        { "{\"data\":\"[1]\"}", "failed_parse_message" },
        /* repaired to "x\ufffd" (ingest_unicode.h): still no UUID */
        { "{\"data\":\"{}\",\"uuid\":\"x\xff\"}", "invalid_uuid" },
        { "{\"data\":\"{\\\"a\\\":1e999}\"}", "failed_parse_message" },
    };

    static const struct {
        const char  *outer;
        const char  *data;
        const char  *error;
    } v[] = {
        { "{\"distinct_id\":\"d\"}", "{\"event\":\"e\"}", "empty_uuid" },
        { "{\"uuid\":\"\",\"distinct_id\":\"d\"}", "{\"event\":\"e\"}",
          "empty_uuid" },
        { "{\"uuid\":\"not-a-uuid\",\"distinct_id\":\"d\"}",
          "{\"event\":\"e\"}", "invalid_uuid" },
        { "{\"uuid\":[],\"distinct_id\":\"d\"}", "{\"event\":\"e\"}",
          "invalid_uuid" },
        { "{\"uuid\":\"018c0b2a-0000-7000-8000-00000000000g\","
          "\"distinct_id\":\"d\"}", "{\"event\":\"e\"}", "invalid_uuid" },
        { "{\"uuid\":\"" E1 "\"}", "{\"event\":\"e\"}",
          "failed_parse_message" },
        { "{\"uuid\":\"" E1 "\",\"distinct_id\":{}}", "{\"event\":\"e\"}",
          "failed_parse_message" },
        { "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}", "{}",
          "failed_parse_message" },
        { "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
          "{\"event\":\"e\",\"properties\":[]}", "failed_parse_message" },
        { "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
          "{\"event\":\"e\",\"$set\":1}", "failed_parse_message" },
        { "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
          "{\"event\":\"e\",\"offset\":\"abc\"}", "failed_parse_message" },
        { "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\",\"team_id\":true}",
          "{\"event\":\"e\"}", "failed_parse_message" },
    };

    for (i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        is_int(ingest_message_parse(&m, raw[i].value, strlen(raw[i].value)),
               INGEST_MSG_DLQ, "raw #%zu goes to the DLQ", i);
        is_str(m.error, raw[i].error, "raw #%zu reason", i);
        ingest_message_free(&m);
    }

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        is_int(parse(&m, v[i].outer, v[i].data), INGEST_MSG_DLQ,
               "case #%zu goes to the DLQ", i);
        is_str(m.error, v[i].error, "case #%zu reason", i);
        ingest_message_free(&m);
    }

    /* AC-21(c): G2 warning kept for the caller */
    parse(&m, "{\"uuid\":\"not-a-uuid\",\"distinct_id\":\"d\"}",
          "{\"event\":\"e\"}");
    is_int(m.nwarnings, 1, "invalid uuid warning");
    is_str(m.warnings[0].type, "skipping_event_invalid_uuid", "type");
    is_str(json_string_value(json_object_get(m.warnings[0].details,
                                             "eventUuid")),
           "\"not-a-uuid\"", "eventUuid JSON-encoded");
    ingest_message_free(&m);

    ok(ingest_uuid_valid("018C0B2A-0000-7000-8000-00000000000A", 36),
       "upper-case uuid valid");
    ok(!ingest_uuid_valid("018c0b2a000070008000000000000001", 32),
       "simple form rejected");
}


static void
test_normalize(void)
{
    char              *s;
    ingest_message_t   m;

    /* AC-05 */
    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"x-2\"}",
          "{\"event\":\"e\",\"distinct_id\":\"x-2\",\"$set\":{\"k\":\"top\"},"
          "\"properties\":{\"$set\":{\"k\":\"prop\",\"j\":1}}}");
    s = prop(&m, "$set");
    is_str(s, "{\"k\":\"top\",\"j\":1}", "AC-05 top-level $set wins");
    free(s);
    ingest_message_free(&m);

    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\","
              "\"ip\":\"1.1.1.1\",\"sent_at\":\"2024-01-01T10:00:01Z\"}",
          "{\"event\":\"e\",\"$set_once\":{\"a\":1},"
          "\"properties\":{\"$ip\":\"9.9.9.9\","
          "\"$session_id\":\"018C0B2A-0000-7000-8000-00000000000A\"}}");
    s = prop(&m, "$ip");
    is_str(s, "\"9.9.9.9\"", "$ip from properties kept");
    free(s);
    s = prop(&m, "$sent_at");
    is_str(s, "\"2024-01-01T10:00:01Z\"", "$sent_at copied");
    free(s);
    s = prop(&m, "$set_once");
    is_str(s, "{\"a\":1}", "top-level $set_once moved");
    free(s);
    s = prop(&m, "$session_id");
    is_str(s, "\"018c0b2a-0000-7000-8000-00000000000a\"",
           "$session_id lower-cased");
    free(s);
    ingest_message_free(&m);

    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\",\"ip\":\"\"}",
          "{\"event\":\"e\",\"properties\":{\"$ip\":\"\"}}");
    s = prop(&m, "$ip");
    is_str(s, "\"\"", "empty ip does not replace");
    free(s);
    ingest_message_free(&m);
}


static void
test_initial(void)
{
    char              *s;
    ingest_message_t   m;

    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
          "{\"event\":\"$pageview\",\"properties\":{"
          "\"$browser\":\"Chrome\",\"utm_source\":\"news\",\"x\":1,"
          "\"$set\":{\"$browser\":\"Mine\",\"z\":2},"
          "\"$set_once\":{\"q\":3}}}");
    s = prop(&m, "$set");
    is_str(s, "{\"utm_source\":\"news\",\"$browser\":\"Mine\",\"z\":2}",
           "enrichment $set, the event's own keys win");
    free(s);
    s = prop(&m, "$set_once");
    is_str(s, "{\"$initial_browser\":\"Chrome\","
              "\"$initial_utm_source\":\"news\",\"q\":3}",
           "enrichment $set_once");
    free(s);
    ingest_message_free(&m);

    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
          "{\"event\":\"$pageview\",\"properties\":{\"$os_name\":\"iOS\"}}");
    s = prop(&m, "$os");
    is_str(s, "\"iOS\"", "$os_name aliases $os");
    free(s);
    s = prop(&m, "$set");
    is_str(s, "{\"$os\":\"iOS\"}", "$set.$os, no $os_name");
    free(s);
    s = prop(&m, "$set_once");
    is_str(s, "{\"$initial_os\":\"iOS\"}", "$initial_os, no $initial_os_name");
    free(s);
    ingest_message_free(&m);

    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
          "{\"event\":\"$snapshot\",\"properties\":{\"$browser\":\"C\"}}");
    ok(prop(&m, "$set") == NULL, "$snapshot is not enriched");
    ingest_message_free(&m);
}


static void
test_event_name(void)
{
    char               name[400], data[512];
    ingest_message_t   m;

    /* AC-21(d) */
    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
          "{\"event\":{\"event name\":\"as object\"}}");
    is_str(m.event, "{\"event name\":\"as object\"}", "object name JSON");
    ingest_message_free(&m);

    memset(name, 'a', 300);
    name[300] = '\0';
    snprintf(data, sizeof(data), "{\"event\":\"%s\"}", name);
    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}", data);
    is_int(strlen(m.event), 200, "300-char name truncated to 200");
    ingest_message_free(&m);

    /* 199 'a' then U+1F600 (two UTF-16 units): the emoji cannot fit */
    memset(name, 'a', 199);
    strcpy(name + 199, "\xf0\x9f\x98\x80");
    snprintf(data, sizeof(data), "{\"event\":\"%s\"}", name);
    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}", data);
    is_int(strlen(m.event), 199, "no split surrogate pair");
    ingest_message_free(&m);

    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
          "{\"event\":12}");
    is_str(m.event, "12", "numeric name");
    ingest_message_free(&m);
}


static void
test_prepare(void)
{
    char                *s;
    ingest_message_t     m;
    ingest_team_opts_t   t;

    /* AC-15 */
    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"pl-1\"}",
          "{\"event\":\"e\",\"$set\":{\"y\":1},\"properties\":{"
          "\"$process_person_profile\":false,\"$set\":{\"x\":1},"
          "\"$unset\":[\"z\"],\"$group_0\":\"g\"}}");
    is_int(ingest_message_prepare(&m, &team_default), INGEST_MSG_OK,
           "AC-15 personless ok");
    ok(!m.process_person, "AC-15 personless");
    ok(prop(&m, "$set") == NULL && prop(&m, "$unset") == NULL
       && json_object_get(m.root, "$set") == NULL, "AC-15 ops removed");
    s = prop(&m, "$process_person_profile");
    is_str(s, "false", "AC-15 flag kept");
    free(s);
    is_int(m.nwarnings, 0, "no warning");
    ingest_message_free(&m);

    /* AC-17 */
    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
          "{\"event\":\"$identify\",\"properties\":{"
          "\"$process_person_profile\":false}}");
    is_int(ingest_message_prepare(&m, &team_default), INGEST_MSG_DROP,
           "AC-17 personless $identify dropped");
    is_int(m.nwarnings, 1, "one warning");
    is_str(m.warnings[0].type,
           "invalid_event_when_process_person_profile_is_false", "type");
    ok(m.warnings[0].always, "always sent");
    is_str(json_string_value(json_object_get(m.warnings[0].details,
                                             "distinctId")),
           "d", "details distinctId");
    ingest_message_free(&m);

    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
          "{\"event\":\"$pageview\",\"properties\":{"
          "\"$process_person_profile\":\"no\"}}");
    is_int(ingest_message_prepare(&m, &team_default), INGEST_MSG_OK,
           "AC-17 invalid flag processed");
    ok(m.process_person, "AC-17 treated as true");
    is_str(m.warnings[0].type, "invalid_process_person_profile", "type");
    ok(!m.warnings[0].always, "debounced");
    ok(prop(&m, "$process_person_profile") == NULL, "flag removed");
    ingest_message_free(&m);

    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
          "{\"event\":\"$pageview\",\"properties\":{"
          "\"$process_person_profile\":true}}");
    ingest_message_prepare(&m, &team_default);
    ok(m.process_person && prop(&m, "$process_person_profile") == NULL,
       "true flag removed");
    ingest_message_free(&m);

    /* team settings */
    memset(&t, 0, sizeof(t));
    t.anonymize_ips = 1;
    t.person_processing_opt_out = 1;

    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\","
              "\"ip\":\"1.2.3.4\"}",
          "{\"event\":\"$pageview\",\"properties\":{\"$set\":{\"a\":1}}}");
    is_int(ingest_message_prepare(&m, &t), INGEST_MSG_OK, "opt-out ok");
    ok(!m.process_person, "opt-out forces personless");
    ok(prop(&m, "$ip") == NULL, "anonymize_ips removes $ip");
    ok(prop(&m, "$set") == NULL, "personless strips $set");
    ingest_message_free(&m);

    /* §1.6 */
    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
          "{\"event\":\"$$client_ingestion_warning\",\"properties\":{"
          "\"$$client_ingestion_warning_message\":\"oops\"}}");
    is_int(ingest_message_prepare(&m, &team_default), INGEST_MSG_DROP,
           "client warning: no event row");
    is_int(m.route, INGEST_ROUTE_WARNING_ONLY, "route");
    is_str(m.warnings[0].type, "client_ingestion_warning", "type");
    is_str(json_string_value(json_object_get(m.warnings[0].details,
                                             "message")),
           "oops", "message");
    ingest_message_free(&m);

    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
          "{\"event\":\"$$heatmap\"}");
    is_int(ingest_message_prepare(&m, &team_default), INGEST_MSG_OK,
           "heatmap");
    ok(m.route == INGEST_ROUTE_HEATMAP && !m.process_person, "heatmap route");
    ingest_message_free(&m);

    parse(&m, "{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\"}",
          "{\"event\":\"$groupidentify\",\"properties\":{"
          "\"$set\":{\"a\":1},\"$group_type\":\"org\"}}");
    ingest_message_prepare(&m, &team_default);
    ok(m.process_person && prop(&m, "$set") == NULL,
       "$groupidentify never touches persons");
    ingest_message_free(&m);
}


int
main(void)
{
    test_parse();
    test_errors();
    test_normalize();
    test_initial();
    test_event_name();
    test_prepare();

    return done_testing();
}
