/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tap.h"
#include "decide_request.h"
#include "decide_json_fast.h"


static json_t *decode(const char *ct, decide_compression_e comp, int ce,
    const unsigned char *p, size_t len, decide_decode_e *rc);
static size_t gz(const char *s, unsigned char *out, size_t size);
static void decide_t_json_fast(void);


static const char  body[] = "{\"token\":\"phc_test\",\"distinct_id\":\"u1\","
                            "\"person_properties\":{\"plan\":\"free\"}}";
/* base64 of body */
static const char  b64[] = "eyJ0b2tlbiI6InBoY190ZXN0IiwiZGlzdGluY3RfaWQiOiJ1"
                           "MSIsInBlcnNvbl9wcm9wZXJ0aWVzIjp7InBsYW4iOiJmcmVl"
                           "In19";


static json_t *
decode(const char *ct, decide_compression_e comp, int ce,
    const unsigned char *p, size_t len, decide_decode_e *rc)
{
    char                err[128];
    json_t             *v;
    decide_body_opts_t  o;

    memset(&o, 0, sizeof(o));
    o.content_type = ct;
    o.content_type_len = ct ? strlen(ct) : 0;
    o.compression = comp;
    o.content_encoding_gzip = ce;
    o.max_decompressed = 4096;

    *rc = decide_body_decode(p, len, &o, &v, err, sizeof(err));

    return v;
}


static size_t
gz(const char *s, unsigned char *out, size_t size)
{
    z_stream  zs;

    memset(&zs, 0, sizeof(zs));
    deflateInit2(&zs, 6, Z_DEFLATED, MAX_WBITS + 16, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = (unsigned char *) s;
    zs.avail_in = strlen(s);
    zs.next_out = out;
    zs.avail_out = size;
    deflate(&zs, Z_FINISH);
    deflateEnd(&zs);

    return size - zs.avail_out;
}


/* the fast path answers for the SDK shape and leaves the rest alone */
static void
decide_t_json_fast(void)
{
    char         *a;
    json_t       *v;
    size_t        i;
    const char   *sdk;

    static const char  *bail[] = {
        "{\"a\":\"\\u00e9\"}", "{\"a\":1.5}", "{\"a\":\"\xc3\xa9\"}",
        "{\"a\":NaN}", "[1]", "{\"a\":1} x", "{\"a\":01}",
        "{\"a\":1234567890123456789}", "{\"a\":1,}", ""
    };

    sdk = "{\"token\":\"phc_x\",\"distinct_id\":\"u1\",\"groups\":"
          "{\"company\":\"acme\"},\"person_properties\":{\"n\":-42,"
          "\"ok\":true,\"no\":false,\"z\":null,\"l\":[1,[]]},"
          "\"d\":1,\"d\":2}";

    v = decide_json_fast((const unsigned char *) sdk, strlen(sdk));
    a = v ? json_dumps(v, JSON_COMPACT) : NULL;
    is_str(a, "{\"token\":\"phc_x\",\"distinct_id\":\"u1\",\"groups\":"
           "{\"company\":\"acme\"},\"person_properties\":{\"n\":-42,"
           "\"ok\":true,\"no\":false,\"z\":null,\"l\":[1,[]]},\"d\":2}",
           "json fast path: SDK shape, last duplicate wins in place");
    free(a);
    json_decref(v);

    for (i = 0; i < sizeof(bail) / sizeof(bail[0]); i++) {
        v = decide_json_fast((const unsigned char *) bail[i],
                             strlen(bail[i]));
        ok(v == NULL, "json fast path leaves %s to jansson", bail[i]);
        json_decref(v);
    }
}


int
main(void)
{
    char             form[512], *big;
    size_t           n;
    json_t          *want, *v;
    unsigned char    z[512];
    decide_fields_t  f;
    decide_decode_e  rc;

    want = json_loads(body, 0, NULL);

    v = decode("application/json", 0, 0, (const unsigned char *) body,
               strlen(body), &rc);
    ok(rc == DECIDE_DECODE_OK && json_equal(v, want), "plain JSON");
    json_decref(v);

    v = decode(NULL, 0, 0, (const unsigned char *) body, strlen(body), &rc);
    ok(rc == DECIDE_DECODE_OK && json_equal(v, want), "no content type");
    json_decref(v);

    n = gz(body, z, sizeof(z));
    v = decode("application/json", DECIDE_COMPRESSION_GZIP, 0, z, n, &rc);
    ok(rc == DECIDE_DECODE_OK && json_equal(v, want), "gzip by hint");
    json_decref(v);
    v = decode("application/json", 0, 1, z, n, &rc);
    ok(rc == DECIDE_DECODE_OK && json_equal(v, want), "gzip by header");
    json_decref(v);
    v = decode("text/plain; charset=utf-8", 0, 0, z, n, &rc);
    ok(rc == DECIDE_DECODE_OK && json_equal(v, want), "gzip by magic");
    json_decref(v);
    v = decode("application/json", 0, 0, z, n - 4, &rc);
    ok(rc == DECIDE_DECODE_BAD, "truncated gzip is 400");

    v = decode("application/json", 0, 0, (const unsigned char *) b64,
               strlen(b64), &rc);
    ok(rc == DECIDE_DECODE_OK && json_equal(v, want), "base64 fallback");
    json_decref(v);

    n = snprintf(form, sizeof(form), "data=%s", b64);
    v = decode("application/x-www-form-urlencoded",
               DECIDE_COMPRESSION_BASE64, 0, (const unsigned char *) form, n,
               &rc);
    ok(rc == DECIDE_DECODE_OK && json_equal(v, want), "form data=");
    json_decref(v);

    v = decode("application/x-www-form-urlencoded", DECIDE_COMPRESSION_GZIP,
               0, (const unsigned char *) form, n, &rc);
    ok(rc == DECIDE_DECODE_BAD, "form with gzip is 400");

    v = decode("application/xml", 0, 0, (const unsigned char *) body,
               strlen(body), &rc);
    ok(rc == DECIDE_DECODE_BAD, "unsupported content type");

    v = decode("application/json", DECIDE_COMPRESSION_UNSUPPORTED, 0,
               (const unsigned char *) body, strlen(body), &rc);
    ok(rc == DECIDE_DECODE_BAD, "unsupported compression");

    v = decode("application/json", 0, 0, (const unsigned char *) "not json",
               8, &rc);
    ok(rc == DECIDE_DECODE_BAD, "not json is 400");

    big = "{\"a\":NaN,\"b\":[Infinity,-Infinity],\"c\":\"NaN\"}";
    v = decode("application/json", 0, 0, (const unsigned char *) big,
               strlen(big), &rc);
    ok(rc == DECIDE_DECODE_OK && json_is_null(json_object_get(v, "a"))
       && json_is_null(json_array_get(json_object_get(v, "b"), 1))
       && strcmp(json_string_value(json_object_get(v, "c")), "NaN") == 0,
       "NaN and Infinity become null, strings untouched");
    json_decref(v);

    big = calloc(1, 20000);
    memset(big, ' ', 19990);
    memcpy(big, "{\"a\":1}", 7);
    n = gz(big, z, sizeof(z));
    v = decode("application/json", 0, 0, z, n, &rc);
    ok(rc == DECIDE_DECODE_TOO_LARGE, "decompression cap is 413");
    free(big);

    ok(decide_compression_parse("gzip-js", 7) == DECIDE_COMPRESSION_GZIP,
       "gzip-js");
    ok(decide_compression_parse("lz64", 4) == DECIDE_COMPRESSION_UNSUPPORTED,
       "lz64 unsupported");
    ok(decide_compression_parse("", 0) == DECIDE_COMPRESSION_NONE, "empty");

    decide_fields_get(want, &f);
    is_str(f.token, "phc_test", "token");
    is_str(f.distinct_id, "u1", "distinct_id");
    ok(json_is_object(f.person_properties), "person_properties");
    json_decref(want);

    v = json_loads("{\"$token\":\"phc_x\",\"distinct_id\":8675309,"
                   "\"$groups\":{\"org\":1},\"disable_flags\":true}", 0, NULL);
    decide_fields_get(v, &f);
    is_str(f.token, "phc_x", "$token alias");
    is_str(f.distinct_id, "8675309", "integer id stringified");
    ok(f.groups != NULL && f.disable_flags, "$groups and disable_flags");
    json_decref(v);

    v = json_loads("{\"api_key\":\"\",\"distinct_id\":123.45}", 0, NULL);
    decide_fields_get(v, &f);
    ok(f.token == NULL, "empty token is missing");
    is_str(f.distinct_id, "123.45", "real id stringified");
    json_decref(v);

    v = json_loads("{\"evaluation_runtime\":\"server\"}", 0, NULL);
    decide_fields_get(v, &f);
    ok(f.runtime_set && f.runtime == DECIDE_RUNTIME_SERVER,
       "explicit evaluation_runtime server");
    json_decref(v);

    v = json_loads("{\"evaluation_runtime\":\"all\"}", 0, NULL);
    decide_fields_get(v, &f);
    ok(f.runtime_set && f.runtime == DECIDE_RUNTIME_ANY,
       "explicit evaluation_runtime all");
    json_decref(v);

    v = json_loads("{\"evaluation_runtime\":\"mars\"}", 0, NULL);
    decide_fields_get(v, &f);
    ok(!f.runtime_set, "unknown evaluation_runtime: detection decides");
    json_decref(v);

    decide_t_json_fast();

    v = json_loads("{\"evaluation_contexts\":[\"web\"]}", 0, NULL);
    decide_fields_get(v, &f);
    ok(f.environments && json_array_size(f.environments) == 1,
       "evaluation_contexts is an alias of evaluation_environments");
    json_decref(v);

    v = json_loads("{\"evaluation_environments\":\"web\"}", 0, NULL);
    decide_fields_get(v, &f);
    ok(f.environments == NULL, "evaluation_environments must be an array");
    json_decref(v);

    v = json_pack("{s:s}", "distinct_id",
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    decide_fields_get(v, &f);
    is_int(strlen(f.distinct_id), 400, "distinct_id cut at 200 characters");
    json_decref(v);

    ok(decide_runtime_detect("posthog-python/3.0", 18, 0)
       == DECIDE_RUNTIME_SERVER, "python is server");
    ok(decide_runtime_detect("Mozilla/5.0 (X11)", 17, 0)
       == DECIDE_RUNTIME_CLIENT, "browser is client");
    ok(decide_runtime_detect("x", 1, 1) == DECIDE_RUNTIME_CLIENT,
       "origin is client");
    ok(decide_runtime_detect(NULL, 0, 0) == DECIDE_RUNTIME_UNKNOWN,
       "unknown");

    ok(decide_query_bool("", 0) && decide_query_bool("yes", 3)
       && !decide_query_bool("off", 3) && !decide_query_bool("0", 1),
       "query booleans");

    return done_testing();
}
