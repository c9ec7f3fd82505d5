/*
 * Copyright (C) edgehog
 */

/*
 * JSON texts JSON.parse() accepts and jansson refuses (ingest_unicode.h):
 * lone surrogates become their escape text, \u0000 becomes U+FFFD, bytes
 * that are not UTF-8 become U+FFFD; valid texts are left alone.
 */


#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "ingest_json.h"
#include "ingest_message.h"
#include "ingest_unicode.h"


static char *repair(const char *s);
static char *value_of(const char *text, const char *key);


static char *
repair(const char *s)
{
    size_t  n;

    return ingest_json_repair(s, strlen(s), &n);
}


/* the string at key of the repaired, loaded text, as a malloc'd copy */

static char *
value_of(const char *text, const char *key)
{
    char    *s;
    json_t  *v;

    v = ingest_json_loadb(text, strlen(text));
    s = json_is_string(json_object_get(v, key))
        ? strdup(json_string_value(json_object_get(v, key))) : NULL;
    json_decref(v);

    return s;
}


int
main(void)
{
    char              *s;
    json_t            *v;
    const char        *text;
    ingest_message_t   m;

    ok(repair("{\"a\":\"x\"}") == NULL, "valid text: nothing to repair");
    ok(repair("{\"a\":\"\\ud83d\\ude00\"}") == NULL, "a pair is fine");
    ok(repair("{\"a\":\"\\\\ud800\"}") == NULL,
       "an escaped backslash before ud800 is no escape");

    s = repair("{\"a\":\"\\ud800x\"}");
    is_str(s, "{\"a\":\"\\\\ud800x\"}", "lone high surrogate: its text");
    free(s);

    s = repair("{\"a\":\"\\uDC00\\uD83D\\uDE00\"}");
    is_str(s, "{\"a\":\"\\\\udc00\\uD83D\\uDE00\"}",
           "lone low surrogate before a pair, lower case");
    free(s);

    s = repair("{\"a\":\"\\ud800\\u0041\"}");
    is_str(s, "{\"a\":\"\\\\ud800\\u0041\"}", "high + non-low: lone");
    free(s);

    s = repair("{\"a\":\"\\ud800");
    is_str(s, "{\"a\":\"\\\\ud800", "at the very end");
    free(s);

    s = repair("{\"k\\u0000\":\"\\u0000\"}");
    is_str(s, "{\"k\\ufffd\":\"\\ufffd\"}", "\\u0000 in keys and values");
    free(s);

    s = repair("{\"a\":\"\xff\"}");
    is_str(s, "{\"a\":\"\xef\xbf\xbd\"}", "invalid UTF-8 byte");
    free(s);

    ok(repair("{\"a\":\"\\u12") == NULL, "short escape left alone");

    /* through the loader */
    s = value_of("{\"a\":\"x\\ud800y\"}", "a");
    is_str(s, "x\\ud800y", "loaded: the escape's six characters");
    free(s);

    v = ingest_json_loadb("{\"k\\u0000\":1}", 13);
    ok(json_integer_value(json_object_get(v, "k\xef\xbf\xbd")) == 1,
       "loaded: NUL key became U+FFFD");
    json_decref(v);

    ok(ingest_json_loadb("{\"a\":", 5) == NULL, "broken JSON stays broken");
    ok(ingest_json_loadb("{\"a\":\"\\ud800\",}", 15) == NULL,
       "broken JSON with a surrogate stays broken");

    /* a whole message: both levels of the double encoding */
    text = "{\"uuid\":\"018c0b2a-0000-7000-8000-000000000001\","
           "\"distinct_id\":\"d\\udfff\",\"token\":\"t\","
           "\"now\":\"2024-01-01T10:00:00Z\","
           "\"data\":\"{\\\"event\\\":\\\"e\\\\ud800\\\","
           "\\\"properties\\\":{\\\"k\\\\u0000\\\":\\\"\\\\udc00\\\"}}\"}";
    is_int(ingest_message_parse(&m, text, strlen(text)), INGEST_MSG_OK,
           "message with surrogates and NULs is kept");
    is_str(m.distinct_id, "d\\udfff", "distinct_id (outer level)");
    is_str(m.event, "e\\ud800", "event (inner level)");
    is_str(json_string_value(json_object_get(m.properties, "k\xef\xbf\xbd")),
           "\\udc00", "property key and value");
    ingest_message_free(&m);

    return done_testing();
}
