/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tap.h"
#include "decide_request.h"
#include "decide_json_fast.h"
#include "decide_fields_diff.h"
#include "decide_fields_fast_diff.h"


static json_t *decode(const char *ct, decide_compression_e comp, int ce,
    const unsigned char *p, size_t len, decide_decode_e *rc);
static size_t gz(const char *s, unsigned char *out, size_t size);
static void decide_t_json_fast(void);
static void decide_t_json_fast_strings(void);
static void decide_t_fields(void);
static void decide_t_fields_fast(void);


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
        "{\"a\":1234567890123456789}", "{\"a\":9999999999999999999}",
        "{\"a\":1,}", ""
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

    /* the longest integer it takes; one digit more goes to jansson */
    v = decide_json_fast((const unsigned char *) "{\"a\":-999999999999999999}",
                         25);
    ok(v && json_integer_value(json_object_get(v, "a"))
            == -999999999999999999LL,
       "json fast path: 18 digits");
    json_decref(v);

    for (i = 0; i < sizeof(bail) / sizeof(bail[0]); i++) {
        v = decide_json_fast((const unsigned char *) bail[i],
                             strlen(bail[i]));
        ok(v == NULL, "json fast path leaves %s to jansson", bail[i]);
        json_decref(v);
    }

    decide_t_json_fast_strings();
}


/*
 * Strings are scanned 16 bytes at a time: every byte the scalar check
 * stops at, at every offset of a string longer than two blocks, must
 * give what jansson gives (bail out) or the same string.
 */
static void
decide_t_json_fast_strings(void)
{
    int                   bad;
    char                  body[64];
    json_t               *v, *ref;
    size_t                i, k, len;
    const char           *a, *b;

    static const unsigned char  special[] = {
        '"', '\\', 0x00, 0x01, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0xc3, 0xff
    };

    bad = 0;

    for (k = 0; k < sizeof(special); k++) {
        for (i = 0; i < 40; i++) {
            memcpy(body, "{\"s\":\"", 6);
            memset(body + 6, 'a', 40);
            body[6 + i] = (char) special[k];
            memcpy(body + 46, "\"}", 2);
            len = 48;

            v = decide_json_fast((const unsigned char *) body, len);
            ref = json_loadb(body, len, 0, NULL);

            if (v == NULL) {
                /* bailing out is always allowed, answering wrongly not */
                json_decref(ref);
                continue;
            }

            a = json_string_value(json_object_get(v, "s"));
            b = json_string_value(json_object_get(ref, "s"));

            if (ref == NULL || a == NULL || b == NULL || strcmp(a, b) != 0
                || special[k] < 0x20 || special[k] > 0x7e
                || special[k] == '"' || special[k] == '\\')
            {
                diag("json fast path: byte 0x%02x at %zu", special[k], i);
                bad++;
            }

            json_decref(v);
            json_decref(ref);
        }
    }

    ok(bad == 0, "json fast path: special bytes at every string offset");

    /* a plain 40-byte string is taken, and the same as jansson's */
    memcpy(body, "{\"s\":\"", 6);
    for (i = 0; i < 40; i++) {
        body[6 + i] = (char) (0x20 + (i * 7) % 0x5f);
        if (body[6 + i] == '"' || body[6 + i] == '\\') {
            body[6 + i] = 'x';
        }
    }
    memcpy(body + 46, "\"}", 2);

    v = decide_json_fast((const unsigned char *) body, 48);
    ref = json_loadb(body, 48, 0, NULL);
    ok(v && ref && json_equal(v, ref), "json fast path: 40 printable bytes");
    json_decref(v);
    json_decref(ref);
}


/* the one-pass decide_fields_get() against the reference, random bodies */
static void
decide_t_fields(void)
{
    int              i, k, nkeys, bad;
    json_t          *body, *v;
    decide_fields_t  f;
    unsigned         seed;
    char             longid[1200];

    static const struct {
        const char  *s;
        size_t       len;
    } keys[] = {
        { "token", 5 }, { "$token", 6 }, { "api_key", 7 },
        { "distinct_id", 11 }, { "$distinct_id", 12 },
        { "$anon_distinct_id", 17 }, { "anon_distinct_id", 16 },
        { "$device_id", 10 }, { "device_id", 9 },
        { "person_properties", 17 }, { "$properties", 11 },
        { "groups", 6 }, { "$groups", 7 },
        { "group_properties", 16 }, { "$group_properties", 17 },
        { "flag_keys", 9 }, { "flag_keys_to_evaluate", 21 },
        { "evaluation_environments", 23 }, { "evaluation_contexts", 19 },
        { "evaluation_runtime", 18 }, { "disable_flags", 13 },
        { "geoip_disable", 13 },
        /* near misses: NUL inside, prefixes, case, empty */
        { "token\0x", 7 }, { "distinct_id\0", 12 }, { "toke", 4 },
        { "Token", 5 }, { "", 0 }, { "groups_", 7 }
    };

    /* two-byte characters: truncation to 200 scalars cuts bytes */
    for (i = 0; i < 600; i++) {
        longid[2 * i] = (char) 0xc3;
        longid[2 * i + 1] = (char) 0xa9;
    }

    longid[1200 - 1] = '\0';
    longid[1200 - 2] = 'x';

    seed = 12345;
    bad = 0;

    for (i = 0; i < 20000; i++) {
        body = json_object();
        nkeys = (int) ((seed = seed * 1103515245 + 12345) >> 16) % 7;

        for (k = 0; k < nkeys; k++) {
            seed = seed * 1103515245 + 12345;

            switch ((seed >> 8) % 17) {
            case 0: v = json_string(""); break;
            case 1: v = json_string("abc"); break;
            case 2: v = json_string(longid); break;
            case 3: v = json_integer(8675309); break;
            case 4: v = json_real(123.45); break;
            case 5: v = json_null(); break;
            case 6: v = json_true(); break;
            case 7: v = json_false(); break;
            case 8: v = json_string("TRUE"); break;
            case 9: v = json_string("1"); break;
            case 10: v = json_string("client"); break;
            case 11: v = json_string("server"); break;
            case 12: v = json_string("all"); break;
            case 13: v = json_object(); break;
            case 14: v = json_pack("{s:s}", "$anon_distinct_id", "a"); break;
            case 15: v = json_pack("{s:s}", "$anon_distinct_id", ""); break;
            default: v = json_pack("[s]", "production"); break;
            }

            seed = seed * 1103515245 + 12345;
            json_object_setn_new(body,
                                 keys[(seed >> 8) % (sizeof(keys)
                                                     / sizeof(keys[0]))].s,
                                 keys[(seed >> 8) % (sizeof(keys)
                                                     / sizeof(keys[0]))].len,
                                 v);
        }

        if (decide_fields_diff(body) != 0) {
            bad++;
        }

        json_decref(body);
    }

    ok(bad == 0, "one-pass fields equal the reference on 20000 bodies");

    body = json_loads("{\"token\":\"\",\"$token\":5,\"api_key\":\"k\","
                      "\"distinct_id\":null,\"$distinct_id\":12.5,"
                      "\"$properties\":{\"$anon_distinct_id\":\"a\"},"
                      "\"disable_flags\":\"True\"}", 0, NULL);
    decide_fields_get(body, &f);
    ok(f.token && strcmp(f.token, "k") == 0, "empty token falls to api_key");
    ok(f.distinct_id && strcmp(f.distinct_id, "12.5") == 0,
       "null distinct_id falls to $distinct_id");
    ok(f.anon_distinct_id && strcmp(f.anon_distinct_id, "a") == 0,
       "anon id from $properties");
    ok(f.disable_flags, "disable_flags \"True\"");
    ok(decide_fields_diff(body) == 0, "and the reference agrees");
    json_decref(body);
}


/*
 * decide_fields_fast() against decide_body_decode() + decide_fields_get()
 * on random body texts: every field name and near misses, duplicates,
 * values inside and outside the fast subset, broken JSON, every kind of
 * content type and compression.
 */
static void
decide_t_fields_fast(void)
{
    int                  i, k, nkeys, bad, answered, any, declined;
    char                 text[4096];
    size_t               n, nv;
    const char          *w[4], *key, *val;
    unsigned             seed;
    decide_fields_t      f;
    json_t              *holder;
    decide_body_opts_t   o;

    static const char   *keys[] = {
        "token", "$token", "api_key", "distinct_id", "$distinct_id",
        "$anon_distinct_id", "anon_distinct_id", "$device_id", "device_id",
        "person_properties", "$properties", "groups", "$groups",
        "group_properties", "$group_properties", "flag_keys",
        "flag_keys_to_evaluate", "evaluation_environments",
        "evaluation_contexts", "evaluation_runtime", "disable_flags",
        "geoip_disable",
        /* near misses and keys the fast subset leaves to jansson */
        "toke", "Token", "", "groups_", "tok\\u0065n", "unknown"
    };

    static const char   *values[] = {
        "\"\"", "\"abc\"", "\"phc_x\"", "8675309", "-12", "0", "null",
        "true", "false", "\"TRUE\"", "\"1\"", "\"client\"", "\"server\"",
        "\"all\"", "{}", "[]", "{\"$anon_distinct_id\":\"a\"}",
        "{\"$anon_distinct_id\":\"\"}", "[\"production\"]",
        "{\"plan\":\"pro\", \"plan\":\"free\", \"n\":[1,{\"a\":null}]}",
        "[1,2,{\"a\":[null]}]",
        /* the long id is cut to 200 characters */
        "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
        /* outside the subset (jansson decides) or not JSON at all */
        "123.45", "1e5", "\"esc\\\"aped\"", "\"caf\xc3\xa9\"", "01", "tru",
        "\"open", "{\"a\" 1}", "[1,]", "-", "99999999999999999999"
    };

    static const char   *types[] = {
        NULL, "application/json", " text/plain; charset=utf-8",
        "application/x-www-form-urlencoded", "image/png", "Application/JSON"
    };

    static const char   *ws[] = { "", " ", "\n\t", "\r\n  " };

#define rnd()  ((seed = seed * 1103515245 + 12345) >> 8)

    seed = 4242;
    bad = 0;
    answered = 0;
    declined = 0;

    for (i = 0; i < 30000; i++) {
        n = 0;
        n += snprintf(text + n, sizeof(text) - n, "%s{", ws[rnd() % 4]);
        nkeys = rnd() % 8;

        for (k = 0; k < nkeys; k++) {
            w[0] = ws[rnd() % 4];
            w[1] = ws[rnd() % 4];
            w[2] = ws[rnd() % 4];
            w[3] = ws[rnd() % 4];
            key = keys[rnd() % (sizeof(keys) / sizeof(keys[0]))];
            /* mostly values the fast path takes */
            nv = (rnd() % 8) ? 22 : sizeof(values) / sizeof(values[0]);
            val = values[rnd() % nv];

            n += snprintf(text + n, sizeof(text) - n, "%s%s\"%s\"%s:%s%s%s",
                          k ? "," : "", w[0], key, w[1], w[2], val, w[3]);
        }

        n += snprintf(text + n, sizeof(text) - n, "}%s", ws[rnd() % 4]);

        switch (rnd() % 16) {
        case 0:
            text[n++] = 'x';            /* trailing garbage */
            break;
        case 1:
            n--;                        /* cut short */
            break;
        case 2:
            if (nkeys) {
                text[n++] = ',';        /* a comma too many */
            }
            break;
        default:
            break;
        }

        memset(&o, 0, sizeof(o));
        k = rnd() % 16;
        o.content_type = types[k < 10 ? k % 3 : k % 6];
        o.content_type_len = o.content_type ? strlen(o.content_type) : 0;
        o.compression = (rnd() % 4) ? DECIDE_COMPRESSION_NONE
                        : (decide_compression_e) (rnd() % 4);
        o.content_encoding_gzip = (rnd() % 8) == 0;
        o.max_decompressed = 4096;

        if (decide_fields_fast_diff((unsigned char *) text, n, &o, &any)
            != 0)
        {
            fprintf(stderr, "# body: %.*s\n", (int) n, text);
            bad++;
        }

        answered += any;
        declined += !any;
    }

#undef rnd

    ok(bad == 0, "fields_fast equals decode + fields_get on 30000 bodies");
    ok(answered > 5000 && declined > 5000,
       "  and both answered and declined often (%d, %d)", answered,
       declined);

    memset(&o, 0, sizeof(o));
    o.content_type = "application/json";
    o.content_type_len = 16;

    ok(decide_fields_fast((const unsigned char *) body, strlen(body), &o,
                          &holder, &f) == 0
       && strcmp(f.token, "phc_test") == 0
       && strcmp(f.distinct_id, "u1") == 0
       && strcmp(json_string_value(json_object_get(f.person_properties,
                                                   "plan")), "free") == 0,
       "fields_fast reads the SDK body");
    json_decref(holder);

    ok(decide_fields_fast((const unsigned char *)
                          "{\"token\":\"a\",\"token\":\"b\"}", 25, &o,
                          &holder, &f) == 0
       && strcmp(f.token, "b") == 0,
       "fields_fast: the last duplicate wins, as in a jansson object");
    json_decref(holder);

    o.compression = DECIDE_COMPRESSION_GZIP;
    ok(decide_fields_fast((const unsigned char *) body, strlen(body), &o,
                          &holder, &f) == -1 && holder == NULL,
       "fields_fast leaves a gzip hint to the decoder");
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
    decide_t_fields();
    decide_t_fields_fast();

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
