/*
 * Copyright (C) edgehog
 */

/*
 * ClickHouse rows (spec/ingestion.md §4, AC-01, AC-08, AC-15) and
 * their robustness against hostile input.
 */


#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "ingest_json.h"
#include "ingest_output.h"


#define E1       "018c0b2a-0000-7000-8000-000000000001"
#define ANON1    "cfa956a0-5af4-51c6-9ef5-cb3c80e09b69"
#define T_2024   1704103200000000LL


static json_t *js(const char *text);
static json_t *row_json(const char *row);
static const char *field(json_t *o, const char *key);
static char *chain(const char *props);
static void test_time(void);
static void test_time_cache(void);
static void *test_time_epoch(void *arg);
static void test_chain(void);
static void test_event(void);
static void test_hostile(void);
static void test_person(void);


static json_t *
js(const char *text)
{
    json_error_t  err;

    return json_loads(text, JSON_ALLOW_NUL, &err);
}


/* every row must be UTF-8 JSON that jansson reads back */

static json_t *
row_json(const char *row)
{
    if (row == NULL || !ingest_utf8_valid(row, strlen(row))) {
        return NULL;
    }

    return js(row);
}


static const char *
field(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}


static char *
chain(const char *props)
{
    char    *s;
    json_t  *p;

    p = js(props);
    s = ingest_elements_chain(p);
    json_decref(p);

    return s;
}


static void
test_time(void)
{
    char  buf[INGEST_TIME_BUF_LEN];

    ingest_time_format(T_2024, 1, buf);
    is_str(buf, "2024-01-01 10:00:00.000", "ClickHouse format");

    ingest_time_format(T_2024, 0, buf);
    is_str(buf, "2024-01-01 10:00:00", "second precision");

    ingest_time_format(1635471240123456LL, 1, buf);
    is_str(buf, "2021-10-29 01:34:00.123", "AC-18 truncated to ms");

    ingest_time_format(INGEST_PERSONLESS_CREATED_AT_US, 0, buf);
    is_str(buf, "1970-01-01 00:00:05", "AC-15 fake person created_at");

    ingest_time_format(-1, 1, buf);
    is_str(buf, "1969-12-31 23:59:59.999", "before the epoch");

    ingest_time_format(951782400000000LL, 0, buf);
    is_str(buf, "2000-02-29 00:00:00", "leap day");

    ingest_time_format(INT64_MAX, 1, buf);
    is_str(buf, "9999-12-31 23:59:59.999", "clamped high");

    ingest_time_format(INT64_MIN + 1, 1, buf);
    is_str(buf, "0000-01-01 00:00:00.000", "clamped low");

    test_time_cache();
}


/*
 * ingest_time_format() keeps the text of recent seconds: against
 * eh_time's own formatting, times in the same second, in seconds that
 * share a slot, around the epoch (the zeroed slot), before it, at the
 * clamps and anywhere
 */

static void
test_time_cache(void)
{
    int       i, ms, same;
    char      buf[INGEST_TIME_BUF_LEN], want[INGEST_TIME_BUF_LEN];
    int64_t   us, ref;
    uint64_t  r;

    static const int64_t  base[] = {
        0, -1, 999999, 1000000, -1000000, -999999, 5000000,
        T_2024, T_2024 + 8000000, T_2024 - 1,
        -62167219200LL * 1000000, 253402300800LL * 1000000 - 1
    };

    same = 1;
    r = 88172645463325252ULL;

    for (i = 0; i < 20000; i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;

        if (i % 4 == 3) {
            /* anywhere, past the clamps too */
            us = (int64_t) r;

        } else {
            us = base[(r >> 8) % (sizeof(base) / sizeof(base[0]))]
                 + (int64_t) ((r >> 20) % 20000001) - 10000000;
        }

        ms = (int) (r & 1);

        ref = us < -62167219200LL * 1000000 ? -62167219200LL * 1000000
              : us > 253402300800LL * 1000000 - 1
                ? 253402300800LL * 1000000 - 1 : us;

        if (ms) {
            eh_time_format_ch_ms(ref, want);

        } else {
            eh_time_format_ch(ref, want);
        }

        ingest_time_format(us, ms, buf);

        if (strcmp(buf, want) != 0) {
            diag("%lld (ms %d): %s, want %s", (long long) us, ms, buf, want);
            same = 0;
            break;
        }
    }

    ok(same, "recent seconds' text reused: same as eh_time formats");

    /* a thread's first time in the epoch's second: its slot is empty */
    {
        pthread_t  t;

        memset(buf, 0, sizeof(buf));

        if (pthread_create(&t, NULL, test_time_epoch, buf) == 0) {
            pthread_join(t, NULL);
        }

        is_str(buf, "1970-01-01 00:00:00.123", "epoch second, fresh cache");
    }
}


static void *
test_time_epoch(void *arg)
{
    ingest_time_format(123456, 1, arg);

    return NULL;
}


static void
test_chain(void)
{
    char    *s;
    json_t  *p;

    s = chain("{\"$elements\":[{\"tag_name\":\"a\",\"nth_child\":1,"
              "\"nth_of_type\":2,\"attr__class\":\"btn btn-sm\"},"
              "{\"tag_name\":\"div\",\"nth_child\":1,\"nth_of_type\":2,"
              "\"$el_text\":\"\xf0\x9f\x92\xbb\"}]}");
    is_str(s, "a.btn.btn-sm:attr__class=\"btn btn-sm\"nth-child=\"1\""
              "nth-of-type=\"2\";div:nth-child=\"1\"nth-of-type=\"2\""
              "text=\"\xf0\x9f\x92\xbb\"", "elementsToString");
    free(s);

    s = chain("{\"$elements\":[{\"tag_name\":\"button\","
              "\"attr__class\":[\"z\",\"a\\\"q\"],\"attr__id\":\"go\","
              "\"attr__href\":\"/x?a=\\\"1\\\"\",\"attr__data-x\":5,"
              "\"$el_text\":\"Say \\\"hi\\\"\"}]}");
    is_str(s, "button.aq.z:attr__class=\"z,a\\\"q\"attr__data-x=\"5\""
              "attr__href=\"/x?a=\\\"1\\\"\"attr__id=\"go\"attr_id=\"go\""
              "href=\"/x?a=\\\"1\\\"\"nth-child=\"0\"nth-of-type=\"0\""
              "text=\"Say \\\"hi\\\"\"",
           "classes sorted and unquoted, attributes sorted and escaped");
    free(s);

    s = chain("{\"$elements_chain\":\"a:nth-child=\\\"1\\\"\","
              "\"$elements\":[{\"tag_name\":\"b\"}]}");
    is_str(s, "a:nth-child=\"1\"", "$elements_chain as sent wins");
    free(s);

    s = chain("{\"$elements\":[]}");
    is_str(s, "", "empty $elements");
    free(s);

    s = chain("{}");
    is_str(s, "", "no elements");
    free(s);

    s = chain("{\"$elements\":[null,5,{}]}");
    is_str(s, ":nth-child=\"0\"nth-of-type=\"0\";"
              ":nth-child=\"0\"nth-of-type=\"0\";"
              ":nth-child=\"0\"nth-of-type=\"0\"", "junk elements");
    free(s);

    s = chain("{\"$elements\":[{\"attr__class\":\"a  b\"}]}");
    is_str(s, "..a.b:attr__class=\"a  b\"nth-child=\"0\"nth-of-type=\"0\"",
           "split(' ') keeps empty classes");
    free(s);

    p = json_object();
    json_object_set_new(p, "$elements", json_pack("[{s:s}]", "$el_text",
        "0123456789012345678901234567890123456789012345678901234567890123456"
        "7890123456789012345678901234567890123456789012345678901234567890123"
        "4567890123456789012345678901234567890123456789012345678901234567890"
        "1234567890123456789012345678901234567890123456789012345678901234567"
        "8901234567890123456789012345678901234567890123456789012345678901234"
        "5678901234567890123456789012345678901234567890123456789012345678901"
        "23456789"));
    s = ingest_elements_chain(p);
    ok(s != NULL && strlen(s) == strlen(":nth-child=\"0\"nth-of-type=\"0\""
                                        "text=\"\"") + 400,
       "text truncated to 400");
    ok(json_object_get(p, "$elements") == NULL, "$elements removed");
    free(s);
    json_decref(p);
}


static void
test_event(void)
{
    char                *s;
    json_t              *o, *props, *pp;
    ingest_event_row_t   r;

    /* AC-01 */
    memset(&r, 0, sizeof(r));
    props = js("{\"$ip\":\"1.2.3.4\",\"$elements\":[{\"tag_name\":\"a\"}]}");
    pp = js("{\"$creator_event_uuid\":\"E1\"}");

    r.uuid = E1;
    r.event = "$pageview";
    r.distinct_id = "anon-1";
    r.properties = props;
    r.team_id = 1;
    r.project_id = 1;
    r.timestamp_us = T_2024;
    r.created_at_us = T_2024 + 1500;
    r.captured_at_us = INGEST_TIME_NONE;
    r.person_id = ANON1;
    r.person_properties = pp;
    r.person_created_at_us = T_2024;
    r.person_mode = INGEST_PERSON_MODE_FULL;

    s = ingest_output_event(&r, NULL);
    is_str(s, "{\"uuid\":\"" E1 "\",\"event\":\"$pageview\","
              "\"properties\":\"{\\\"$ip\\\":\\\"1.2.3.4\\\"}\","
              "\"timestamp\":\"2024-01-01 10:00:00.000\",\"team_id\":1,"
              "\"project_id\":1,\"distinct_id\":\"anon-1\","
              "\"elements_chain\":"
              "\"a:nth-child=\\\"0\\\"nth-of-type=\\\"0\\\"\","
              "\"created_at\":\"2024-01-01 10:00:00.001\","
              "\"captured_at\":null,\"person_id\":\"" ANON1 "\","
              "\"person_properties\":"
              "\"{\\\"$creator_event_uuid\\\":\\\"E1\\\"}\","
              "\"person_created_at\":\"2024-01-01 10:00:00\","
              "\"person_mode\":\"full\"}", "AC-01 event row");
    free(s);
    json_decref(props);

    /* person_properties = { ...person, ...properties.$set } */
    props = js("{\"$set\":{\"email\":\"u@x.io\"},\"$group_0\":\"g\"}");
    r.properties = props;
    r.project_id = -1;
    r.historical_migration = 1;
    r.captured_at_us = T_2024;

    s = ingest_output_event(&r, NULL);
    o = row_json(s);
    ok(o != NULL, "row parses");
    is_str(field(o, "person_properties"),
           "{\"$creator_event_uuid\":\"E1\",\"email\":\"u@x.io\"}",
           "person_properties with $set");
    ok(json_object_get(o, "project_id") == NULL, "no project_id");
    ok(json_is_true(json_object_get(o, "historical_migration")),
       "historical_migration");
    is_str(field(o, "captured_at"), "2024-01-01 10:00:00.000", "captured_at");
    ok(strstr(field(o, "properties"), "$group_0") != NULL,
       "full mode keeps $group_0");
    json_decref(o);
    free(s);
    json_decref(props);

    /* AC-15 */
    props = js("{\"$process_person_profile\":false,\"$group_0\":\"g\","
               "\"$group_4\":\"h\"}");
    r.properties = props;
    r.person_id = "3A518403-6B9D-5160-9CE5-FD976F3C35ED";
    r.person_created_at_us = INGEST_PERSONLESS_CREATED_AT_US;
    r.person_mode = INGEST_PERSON_MODE_PROPERTYLESS;
    r.historical_migration = 0;

    s = ingest_output_event(&r, NULL);
    o = row_json(s);
    ok(o != NULL, "AC-15 row parses");
    is_str(field(o, "properties"), "{\"$process_person_profile\":false}",
           "AC-15 properties without groups");
    is_str(field(o, "person_properties"), "{}", "AC-15 person_properties");
    is_str(field(o, "person_created_at"), "1970-01-01 00:00:05",
           "AC-15 person_created_at");
    is_str(field(o, "person_mode"), "propertyless", "AC-15 person_mode");
    is_str(field(o, "person_id"), "3a518403-6b9d-5160-9ce5-fd976f3c35ed",
           "person_id lower-cased");
    json_decref(o);
    free(s);
    json_decref(props);

    r.person_mode = INGEST_PERSON_MODE_FORCE_UPGRADE;
    props = js("{}");
    r.properties = props;
    s = ingest_output_event(&r, NULL);
    o = row_json(s);
    is_str(field(o, "person_mode"), "force_upgrade", "AC-16 force_upgrade");
    json_decref(o);
    free(s);

    r.person_id = "not-a-uuid";
    ok(ingest_output_event(&r, NULL) == NULL, "bad person_id refused");
    r.person_id = ANON1;
    r.uuid = NULL;
    ok(ingest_output_event(&r, NULL) == NULL, "missing uuid refused");

    json_decref(props);
    json_decref(pp);
}


static void
test_hostile(void)
{
    char                *s, *c;
    size_t               n;
    json_t              *o, *props, *props2;
    ingest_event_row_t   r;

    c = ingest_utf8_sanitize("a\xff" "b\xc0\xaf" "c\xed\xa0\x80" "d\0e"
                             "\xf4\x90\x80\x80" "\xe2\x82", 18, &n);
    is_str(c, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd" "c"
              "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "d\xef\xbf\xbd" "e"
              "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
              "\xef\xbf\xbd\xef\xbf\xbd",
           "invalid UTF-8, surrogates, NUL and > U+10FFFF repaired");
    free(c);

    ok(ingest_utf8_valid("\xf0\x9f\x98\x80", 4), "emoji valid");
    ok(!ingest_utf8_valid("\xed\xa0\x80", 3), "surrogate invalid");

    memset(&r, 0, sizeof(r));
    props = js("{\"q\":\"\\\"\\\\\\n\\u0001\\u2028\",\"n\":1e308,"
               "\"z\":\"\\u0000\"}");

    r.uuid = E1;
    r.event = "bad\xff\x01\"";
    r.distinct_id = "id\xc3";
    r.properties = props;
    r.person_id = ANON1;
    r.person_mode = INGEST_PERSON_MODE_FULL;
    r.timestamp_us = INT64_MIN;
    r.captured_at_us = INGEST_TIME_NONE;

    s = ingest_output_event(&r, NULL);
    o = row_json(s);
    ok(o != NULL, "hostile row is valid UTF-8 JSON");
    is_str(field(o, "event"), "bad\xef\xbf\xbd\x01\"", "event repaired");
    is_str(field(o, "distinct_id"), "id\xef\xbf\xbd", "distinct_id repaired");
    is_str(field(o, "timestamp"), "0000-01-01 00:00:00.000",
           "absurd time clamped");
    props2 = js(field(o, "properties"));
    ok(props2 != NULL, "properties string is JSON");
    json_decref(props2);
    json_decref(o);
    free(s);
    json_decref(props);
}


static void
test_person(void)
{
    char    *s;
    json_t  *p, *d;

    /* AC-01 */
    p = js("{\"$creator_event_uuid\":\"E1\"}");
    s = ingest_output_person(ANON1, 1, T_2024, p, 0, 0, 0, INGEST_TIME_NONE,
                             NULL);
    is_str(s, "{\"id\":\"" ANON1 "\",\"created_at\":\"2024-01-01 10:00:00\","
              "\"properties\":\"{\\\"$creator_event_uuid\\\":\\\"E1\\\"}\","
              "\"team_id\":1,\"is_identified\":0,\"is_deleted\":0,"
              "\"version\":0,\"last_seen_at\":null}", "AC-01 person row");
    free(s);

    /* AC-08 delete row */
    s = ingest_output_person(ANON1, 1, T_2024, p, 1, 1,
                             0 + INGEST_DELETE_VERSION_BUMP, T_2024, NULL);
    ok(strstr(s, "\"is_identified\":1,\"is_deleted\":1,\"version\":100,"
                 "\"last_seen_at\":\"2024-01-01 10:00:00\"") != NULL,
       "AC-08 delete row");
    free(s);

    ok(ingest_output_person("x", 1, 0, p, 0, 0, 0, 0, NULL) == NULL,
       "person row needs a uuid");
    json_decref(p);

    s = ingest_output_distinct_id(ANON1, 1, "anon-1", 6, 0, 0, NULL);
    is_str(s, "{\"person_id\":\"" ANON1 "\",\"team_id\":1,"
              "\"distinct_id\":\"anon-1\",\"version\":0,\"is_deleted\":0}",
           "AC-01 distinct id row");
    free(s);

    s = ingest_output_distinct_id(ANON1, 1, "a\0b\xfe", 4, 1, 0, NULL);
    d = row_json(s);
    is_str(field(d, "distinct_id"), "a\xef\xbf\xbd" "b\xef\xbf\xbd",
           "distinct id row repaired");
    json_decref(d);
    free(s);

    d = json_pack("{s:s, s:s, s:s}", "sourcePersonDistinctId", "old",
                  "targetPersonDistinctId", "new", "eventUuid", E1);
    s = ingest_output_warning(1, "cannot_merge_already_identified", d,
                              T_2024, NULL);
    is_str(s, "{\"team_id\":1,\"type\":\"cannot_merge_already_identified\","
              "\"source\":\"plugin-server\",\"details\":"
              "\"{\\\"sourcePersonDistinctId\\\":\\\"old\\\","
              "\\\"targetPersonDistinctId\\\":\\\"new\\\","
              "\\\"eventUuid\\\":\\\"" E1 "\\\"}\","
              "\"timestamp\":\"2024-01-01 10:00:00.000\"}", "AC-09 warning");
    free(s);
    json_decref(d);
}


int
main(void)
{
    test_time();
    test_chain();
    test_event();
    test_hostile();
    test_person();

    return done_testing();
}
