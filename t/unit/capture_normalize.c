/*
 * Copyright (C) edgehog
 */


#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tap.h"
#include "capture_normalize.h"


static void *t_alloc(void *ctx, size_t size);
static void t_free(void *ctx, void *p);
static const char *did(const char *json, int *rc);
static const char *real(double d);


static capture_alloc_t  t_a = { t_alloc, t_free, NULL };
static char             t_out[4096];


static void *
t_alloc(void *ctx, size_t size)
{
    return malloc(size);
}


static void
t_free(void *ctx, void *p)
{
    free(p);
}


/* normalises the distinct_id of the event given as JSON */

static const char *
did(const char *json, int *rc)
{
    size_t        len;
    json_t       *ev;
    u_char       *out;
    json_error_t  err;

    ev = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (ev == NULL) {
        diag("bad test json: %s", err.text);
        *rc = -100;
        return NULL;
    }

    *rc = capture_distinct_id_normalize(capture_distinct_id_find(ev), &t_a,
                                        &out, &len);
    json_decref(ev);

    if (*rc != CAPTURE_DID_OK) {
        return NULL;
    }

    memcpy(t_out, out, len + 1);
    free(out);

    if (strlen(t_out) != len) {
        return "length mismatch";
    }

    return t_out;
}


static const char *
real(double d)
{
    capture_format_real(d, t_out);
    return t_out;
}


int
main(void)
{
    int          rc;
    char         buf[1024], want[1024];
    size_t       len;
    json_t      *v;
    u_char      *out;
    const char  *s;

    /* spec §4.2 / AC-18 */
    is_str(did("{\"distinct_id\":\"user-1\"}", &rc), "user-1", "string");
    is_str(did("{\"distinct_id\":42}", &rc), "42", "integer");
    is_str(did("{\"distinct_id\":-7}", &rc), "-7", "negative integer");
    is_str(did("{\"distinct_id\":23.4}", &rc), "23.4", "real 23.4");
    is_str(did("{\"distinct_id\":1e2}", &rc), "100.0", "real 1e2");
    is_str(did("{\"distinct_id\":true}", &rc), "true", "true");
    is_str(did("{\"distinct_id\":false}", &rc), "false", "false");
    is_str(did("{\"distinct_id\":[\"a\",\"b\"]}", &rc), "[\"a\",\"b\"]",
           "array");
    is_str(did("{\"distinct_id\":{\"string\":\"a\",\"number\":3}}", &rc),
           "{\"number\":3,\"string\":\"a\"}", "object keys sorted");
    is_str(did("{\"distinct_id\":{\"b\":{\"d\":1,\"c\":[1.5,null]},"
               "\"a\":\"x\\\"y\\n\\u0001/\"}}", &rc),
           "{\"a\":\"x\\\"y\\n\\u0001/\",\"b\":{\"c\":[1.5,null],\"d\":1}}",
           "nested, serde escapes");
    is_str(did("{\"distinct_id\":\"a\\u0000b\"}", &rc), "a\xef\xbf\xbd" "b",
           "NUL -> U+FFFD");
    is_str(did("{\"distinct_id\":[\"a\\u0000\"]}", &rc), "[\"a\\u0000\"]",
           "NUL inside JSON text stays escaped");
    is_str(did("{\"$distinct_id\":\"d\"}", &rc), "d", "$distinct_id alias");
    is_str(did("{\"distinct_id\":null,\"properties\":{\"distinct_id\":"
               "\"p1\"}}", &rc), "p1", "null falls back to properties");
    is_str(did("{\"properties\":{\"distinct_id\":7}}", &rc), "7",
           "properties.distinct_id");
    is_str(did("{\"distinct_id\":\"\xc3\xa9\"}", &rc), "\xc3\xa9",
           "non-ASCII kept raw");
    is_str(did("{\"distinct_id\":[\"\xc3\xa9\"]}", &rc), "[\"\xc3\xa9\"]",
           "non-ASCII raw inside JSON");

    ok(did("{\"distinct_id\":null}", &rc) == NULL
       && rc == CAPTURE_DID_MISSING, "null is missing");
    ok(did("{\"event\":\"x\"}", &rc) == NULL && rc == CAPTURE_DID_MISSING,
       "absent is missing");
    ok(did("{\"distinct_id\":\"\"}", &rc) == NULL && rc == CAPTURE_DID_EMPTY,
       "empty");
    ok(did("{\"properties\":[]}", &rc) == NULL && rc == CAPTURE_DID_MISSING,
       "properties not an object");

    /* truncation to 200 scalar values */
    memset(want, 'x', 300);
    want[300] = '\0';
    snprintf(buf, sizeof(buf), "{\"distinct_id\":\"%.300s\"}", want);
    s = did(buf, &rc);
    ok(s && strlen(s) == 200, "300 ASCII chars -> 200");

    buf[0] = '\0';
    strcat(buf, "{\"distinct_id\":\"");
    for (len = 0; len < 250; len++) {
        strcat(buf, "\xc3\xa9");
    }
    strcat(buf, "\"}");
    s = did(buf, &rc);
    ok(s && strlen(s) == 400, "250 two-byte chars -> 200 chars, 400 bytes");

    buf[0] = '\0';
    strcat(buf, "{\"distinct_id\":\"");
    for (len = 0; len < 199; len++) {
        strcat(buf, "a");
    }
    strcat(buf, "\\u0000zz\"}");
    s = did(buf, &rc);
    ok(s && strlen(s) == 202
       && memcmp(s + 199, "\xef\xbf\xbd", 3) == 0,
       "NUL counts as one char before replacement");

    /* ryu formatting */
    is_str(real(23.4), "23.4", "23.4");
    is_str(real(0.1), "0.1", "0.1");
    is_str(real(1.0), "1.0", "1.0");
    is_str(real(-0.0), "-0.0", "-0.0");
    is_str(real(0.0), "0.0", "0.0");
    is_str(real(1e16), "1e16", "1e16");
    is_str(real(1e15), "1000000000000000.0", "1e15");
    is_str(real(1.5e300), "1.5e300", "1.5e300");
    is_str(real(1e-7), "1e-7", "1e-7");
    is_str(real(0.0001), "0.0001", "0.0001");
    is_str(real(0.00012), "0.00012", "0.00012");
    is_str(real(123456.789), "123456.789", "123456.789");
    is_str(real(1.7976931348623157e308), "1.7976931348623157e308", "max");
    is_str(real(5e-324), "5e-324", "min subnormal");
    is_str(real(-2.5), "-2.5", "-2.5");
    is_str(real(INFINITY), "null", "infinity");
    is_str(real(NAN), "null", "NaN");
    is_str(real(0.30000000000000004), "0.30000000000000004", "0.1+0.2");

    v = json_loads("{\"z\":1,\"a\":[true,{\"y\":2.25,\"b\":null}]}", 0, NULL);
    ok(capture_json_dump_sorted(v, &t_a, &out, &len) == 0
       && strcmp((char *) out, "{\"a\":[true,{\"b\":null,\"y\":2.25}],\"z\":1}")
          == 0, "dump_sorted");
    free(out);
    json_decref(v);

    /* UTF-8 */
    ok(capture_utf8_valid((u_char *) "abc\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
                          13), "valid utf-8");
    ok(!capture_utf8_valid((u_char *) "\xc0\xaf", 2), "overlong");
    ok(!capture_utf8_valid((u_char *) "\xed\xa0\x80", 3), "surrogate");
    ok(!capture_utf8_valid((u_char *) "\xf4\x90\x80\x80", 4), "> U+10FFFF");
    ok(!capture_utf8_valid((u_char *) "\xc3", 1), "truncated");
    ok(!capture_utf8_valid((u_char *) "\x80", 1), "lone continuation");
    ok(capture_utf8_valid((u_char *) "a\0b", 3), "NUL is valid UTF-8");
    is_int(capture_utf8_prefix((u_char *) "\xc3\xa9\xc3\xa9z", 5, 2), 4,
           "prefix of 2 chars");

    /* token shapes, spec §3.2 / AC-12 */
    ok(capture_token_check((u_char *) "phc_test", 8) == NULL, "token ok");
    is_str(capture_token_check((u_char *) "", 0), "empty", "empty token");
    is_str(capture_token_check((u_char *) "phx_abc", 7), "personal_api_key",
           "phx_");
    memset(buf, 'x', 65);
    is_str(capture_token_check((u_char *) buf, 65), "too_long", "65 x");
    ok(capture_token_check((u_char *) buf, 64) == NULL, "64 x ok");
    is_str(capture_token_check((u_char *) "t\xc3\xb6k", 4), "not_ascii",
           "not ascii");
    is_str(capture_token_check((u_char *) "a\0b", 3), "null_byte", "NUL");
    is_str(capture_token_check((u_char *) "phx_\xc3\xb6", 6), "not_ascii",
           "not_ascii checked before phx_");

    return done_testing();
}
