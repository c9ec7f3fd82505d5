/*
 * Copyright (C) edgehog
 */


#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "capture_event.h"
#include "capture_event_int.h"
#include "capture_fast_raw_diff.h"


/* 2025-07-01T11:00:00Z, the acceptance cases' fixed clock */
#define T_NOW  1751367600000000LL


static int build(const char *json, int engage, capture_msg_t **m,
    size_t *n, capture_error_t *err);
static const char *field(capture_msg_t *m, const char *name);
static json_t *data_of(capture_msg_t *m);
static int esc_as_bytewise(void);
static int raw_as_copy(const char *text, size_t *checked);
static int raw_as_copy_random(void);
static void gen_json(char **w, unsigned int *x, int depth);
static int lengths_as_strlen(capture_msg_t *m, size_t n);


static char        t_buf[4096];
/* capture_query_token: a GET's query token, or NULL */
static const char  *t_query_token;


static int
build(const char *json, int engage, capture_msg_t **m, size_t *n,
    capture_error_t *err)
{
    capture_request_t  req;

    memset(&req, 0, sizeof(req));
    req.ip = "203.0.113.7";
    req.now_us = T_NOW;
    req.sent_at_us = T_NOW;
    req.has_sent_at = 1;
    req.engage = engage;
    req.max_message_size = CAPTURE_MAX_MESSAGE_SIZE;
    req.query_token = t_query_token;
    req.query_token_len = t_query_token ? strlen(t_query_token) : 0;

    memset(err, 0, sizeof(*err));

    return capture_event_build(&req, json, strlen(json), m, n, err);
}


static const char *
field(capture_msg_t *m, const char *name)
{
    json_t  *v, *f;

    v = json_loads(m->value, 0, NULL);
    f = json_object_get(v, name);

    if (f == NULL) {
        json_decref(v);
        return NULL;
    }

    if (json_is_string(f)) {
        snprintf(t_buf, sizeof(t_buf), "%s", json_string_value(f));

    } else {
        snprintf(t_buf, sizeof(t_buf), "%s",
                 json_is_true(f) ? "true" : "other");
    }

    json_decref(v);

    return t_buf;
}


static json_t *
data_of(capture_msg_t *m)
{
    json_t  *v, *d;

    v = json_loads(m->value, 0, NULL);
    d = json_loads(json_string_value(json_object_get(v, "data")),
                   JSON_ALLOW_NUL, NULL);
    json_decref(v);

    return d;
}


/* capture_sbuf_esc(), eight bytes at a time, against a byte loop */

static int
esc_as_bytewise(void)
{
    int              i, k, len, off;
    char             src[64], want[512], *w;
    unsigned int     x;
    unsigned char    c;
    capture_sbuf_t   b;
    static const unsigned char  alpha[] = {
        'a', 'z', ' ', '~', '"', '\\', '\n', '\t', 0x01, 0x1f, 0x20, 0x7f,
        0x80, 0xc3, 0xa9, 0xff, '!', '#', '[', ']'
    };

    x = 12345;

    for (i = 0; i < 100000; i++) {
        len = i % 41;
        off = i % 8;

        for (k = 0; k < len; k++) {
            x = x * 1103515245 + 12345;
            /* mostly plain, so the fast path runs between specials */
            c = (x >> 16) % 4 ? 'a' + (x >> 20) % 26
                              : alpha[(x >> 20) % sizeof(alpha)];
            src[off + k] = (char) c;
        }

        w = want;

        for (k = 0; k < len; k++) {
            c = (unsigned char) src[off + k];

            switch (c) {
            case '"':  w += sprintf(w, "\\\""); break;
            case '\\': w += sprintf(w, "\\\\"); break;
            case '\n': w += sprintf(w, "\\n"); break;
            case '\r': w += sprintf(w, "\\r"); break;
            case '\t': w += sprintf(w, "\\t"); break;
            case '\b': w += sprintf(w, "\\b"); break;
            case '\f': w += sprintf(w, "\\f"); break;
            default:
                if (c < 0x20) {
                    w += sprintf(w, "\\u%04x", c);

                } else {
                    *w++ = (char) c;
                }
            }
        }

        /* emit() reserves before it writes: the buffer is never NULL */
        memset(&b, 0, sizeof(b));
        capture_sbuf_reserve(&b, 8);
        capture_sbuf_esc(&b, src + off, len);

        if (b.failed || b.len != (size_t) (w - want)
            || (b.len && memcmp(b.data, want, b.len) != 0))
        {
            free(b.data);
            return 0;
        }

        free(b.data);
    }

    return 1;
}


int
main(void)
{
    size_t            n, n2;
    json_t           *d;
    capture_msg_t    *m, *m2;
    capture_error_t   err;
    static char       big[1100000];

    /* AC-01 */
    ok(build("{\"api_key\":\"phc_test\",\"event\":\"$pageview\","
             "\"distinct_id\":\"user-1\",\"properties\":{\"$current_url\":"
             "\"https://example.com/\"},\"timestamp\":\"2025-07-01T10:59:58Z\"}",
             0, &m, &n, &err) == 0 && n == 1, "AC-01 builds");
    is_str(m[0].key, "phc_test:user-1", "key");
    ok(strncmp(m[0].value, "{\"uuid\":\"", 9) == 0, "uuid first");
    ok(strstr(m[0].value, "\",\"distinct_id\":\"user-1\",\"ip\":"
                          "\"203.0.113.7\",\"data\":") != NULL, "order");
    is_str(field(&m[0], "now"), "2025-07-01T11:00:00Z", "now");
    is_str(field(&m[0], "sent_at"), "2025-07-01T11:00:00Z", "sent_at");
    is_str(field(&m[0], "timestamp"), "2025-07-01T10:59:58Z", "timestamp");
    is_str(field(&m[0], "event"), "$pageview", "event");
    is_str(field(&m[0], "token"), "phc_test", "token");
    ok(field(&m[0], "uuid")[14] == '7', "generated uuid is v7");
    is_str(m[0].headers[2].value, "1751367598000", "timestamp header");
    d = data_of(&m[0]);
    ok(json_is_null(json_object_get(d, "uuid")), "data.uuid null");
    is_str(json_string_value(json_object_get(d, "token")), "phc_test",
           "data.token from api_key");
    ok(json_object_get(d, "api_key") == NULL, "api_key renamed");
    json_decref(d);
    capture_msgs_free(m, n);

    /* AC-02 */
    ok(build("{\"api_key\":\"phc_test\",\"sent_at\":\"2025-07-01T11:00:05Z\","
             "\"batch\":[{\"event\":\"a\",\"distinct_id\":\"u1\",\"uuid\":"
             "\"0198393f-1b8a-7c2e-a269-737351f06167\",\"timestamp\":"
             "\"2025-07-01T10:59:55Z\",\"type\":\"capture\"},{\"event\":\"b\","
             "\"distinct_id\":\"u2\",\"timestamp\":\"2025-07-01T11:00:04Z\"}]}",
             0, &m, &n, &err) == 0 && n == 2, "AC-02 builds");
    is_str(field(&m[0], "timestamp"), "2025-07-01T10:59:50Z", "skew a");
    is_str(field(&m[1], "timestamp"), "2025-07-01T10:59:59Z", "skew b");
    is_str(field(&m[0], "sent_at"), "2025-07-01T11:00:05Z", "batch sent_at");
    is_str(field(&m[0], "uuid"), "0198393f-1b8a-7c2e-a269-737351f06167",
           "uuid kept");
    capture_msgs_free(m, n);

    /* offsets, cookieless, capture_internal, data types */
    ok(build("[{\"event\":\"$exception\",\"properties\":{\"distinct_id\":\"a\","
             "\"token\":\"t\",\"$cookieless_mode\":true}},{\"event\":\"x\","
             "\"offset\":1500,\"properties\":{\"distinct_id\":\"a\","
             "\"capture_internal\":1}},{\"event\":\"$performance_event\"}]",
             0, &m, &n, &err) == 0 && n == 2, "array builds");
    is_int(m[0].topic, CAPTURE_TOPIC_EXCEPTIONS, "exceptions topic");
    is_str(m[0].key, "t:203.0.113.7", "cookieless key");
    is_str(field(&m[0], "is_cookieless_mode"), "true", "cookieless flag");
    is_str(field(&m[1], "timestamp"), "2025-07-01T10:59:58.500Z", "offset");
    is_str(field(&m[1], "ip"), "127.0.0.1", "capture_internal");
    is_str(m[1].key, "t:a", "token inherited");
    capture_msgs_free(m, n);

    /* errors */
    ok(build("[]", 0, &m, &n, &err) != 0 && err.status == 400
       && strcmp(err.error, "request holds no event") == 0, "empty array");
    ok(build("{\"event\":\"x\",\"distinct_id\":\"u\"}", 0, &m, &n, &err) != 0
       && err.status == 401, "no token");
    ok(build("[{\"event\":\"a\",\"distinct_id\":\"u\",\"token\":\"t1\"},"
             "{\"event\":\"b\",\"distinct_id\":\"u\",\"token\":\"t2\"}]", 0,
             &m, &n, &err) != 0 && err.status == 401, "inconsistent");
    ok(build("{\"api_key\":\"phx_a\",\"event\":\"x\",\"distinct_id\":\"u\"}",
             0, &m, &n, &err) != 0
       && strcmp(err.error, "API key is not valid: personal_api_key") == 0,
       "personal key");
    ok(build("{\"api_key\":\"t\",\"distinct_id\":\"u\"}", 0, &m, &n, &err)
       != 0 && strstr(err.error, "hydrate") != NULL, "no event name");
    ok(build("{\"api_key\":\"t\",\"distinct_id\":\"u\",\"$set\":{\"a\":1}}",
             1, &m, &n, &err) == 0 && n == 1
       && strcmp(m[0].event, "$identify") == 0, "engage hydration");
    capture_msgs_free(m, n);
    ok(build("{\"api_key\":\"t\",\"event\":\"x\",\"distinct_id\":\"u\","
             "\"timestamp\":1}", 0, &m, &n, &err) != 0
       && strstr(err.error, "untagged enum") != NULL, "numeric timestamp");
    ok(build("{\"api_key\":\"t\",\"event\":\"x\",\"distinct_id\":\"u\","
             "\"uuid\":\"nope\"}", 0, &m, &n, &err) != 0
       && strstr(err.error, "untagged enum") != NULL, "bad uuid");
    ok(build("{\"api_key\":\"t\",\"event\":\"\",\"distinct_id\":\"u\"}", 0,
             &m, &n, &err) != 0 && strstr(err.error, "empty event") != NULL,
       "empty event");
    ok(build("{\"api_key\":\"t\",\"event\":\"x\",\"distinct_id\":\"\"}", 0,
             &m, &n, &err) != 0 && strstr(err.error, "distinct_id") != NULL,
       "empty distinct_id");
    ok(build("{\"api_key\":\"t\",\"event\":\"x\",\"distinct_id\":\"u\","
             "\"properties\":{\"$cookieless_mode\":\"yes\"}}", 0, &m, &n,
             &err) != 0 && strstr(err.error, "cookieless") != NULL,
       "bad cookieless");
    ok(build("not json", 0, &m, &n, &err) != 0 && err.status == 400
       && strncmp(err.error, "failed to parse request: ", 25) == 0,
       "invalid json");

    /* historical, distinct_id normalisation */
    ok(build("{\"api_key\":\"t\",\"historical_migration\":true,\"batch\":"
             "[{\"event\":\"old\",\"distinct_id\":42,\"timestamp\":"
             "\"2023-04-24T06:34:00+00:00\"}]}", 0, &m, &n, &err) == 0,
       "historical");
    is_int(m[0].topic, CAPTURE_TOPIC_HISTORICAL, "historical topic");
    is_str(field(&m[0], "historical_migration"), "true", "flag");
    is_str(field(&m[0], "distinct_id"), "42", "number stringified");
    is_str(field(&m[0], "timestamp"), "2023-04-24T06:34:00Z", "timestamp");
    capture_msgs_free(m, n);

    /* the message cap */
    memcpy(big, "{\"api_key\":\"t\",\"event\":\"x\",\"distinct_id\":\"u\","
                "\"properties\":{\"p\":\"", 64);
    memset(big + 64, 'a', 1000000);
    memcpy(big + 64 + 1000000, "\"}}", 4);
    ok(build(big, 0, &m, &n, &err) != 0 && err.status == 413, "1 MB cap");

    /* one block: the key and the header values follow the value */
    ok(build("{\"api_key\":\"t\",\"event\":\"x\",\"distinct_id\":\"u\","
             "\"properties\":{\"$session_id\":\"s-1\","
             "\"$product_tour_id\":\"pt\"}}", 0, &m, &n, &err) == 0,
       "session id");
    ok(m[0].key == m[0].value + m[0].value_len + 1, "key after the value");
    is_str(m[0].key, "t:u", "key");
    ok(m[0].key_len == 3, "key length");
    ok(m[0].headers[0].value == m[0].key + m[0].key_len + 1,
       "headers after the key");
    is_str(m[0].session_id, "s-1", "session id kept");
    ok(m[0].product_tour, "product tour flagged");
    capture_msgs_free(m, n);
    ok(build("{\"api_key\":\"t\",\"event\":\"x\",\"distinct_id\":7,"
             "\"properties\":{\"$session_id\":\"s\\u0041\","
             "\"$product_tour_id\":null}}", 0, &m, &n, &err) == 0,
       "session id through the DOM");
    is_str(m[0].session_id, "sA", "escaped session id");
    ok(!m[0].product_tour, "null product tour");
    capture_msgs_free(m, n);

    /*
     * the block is given back down to what it holds: reserved for the
     * worst case of escaping, it would be about twice the value
     */
    memcpy(big, "{\"api_key\":\"t\",\"event\":\"x\",\"distinct_id\":\"u\","
                "\"properties\":{\"p\":\"", 64);
    memset(big + 64, 'a', 1000);
    memcpy(big + 64 + 1000, "\"}}", 4);
    ok(build(big, 0, &m, &n, &err) == 0 && m[0].value_len > 1000,
       "1 KB event");
    ok(malloc_usable_size(m[0].value) < m[0].value_len + 512,
       "block not larger than its contents");
    capture_msgs_free(m, n);

    /* the timestamp header in milliseconds, rounded down before 1970 */
    ok(build("{\"api_key\":\"t\",\"event\":\"x\",\"distinct_id\":\"u\","
             "\"timestamp\":\"1969-12-31T23:59:59.5Z\"}", 0, &m, &n, &err)
       == 0, "pre-epoch");
    is_str(m[0].headers[2].value, "-500", "negative millis");
    capture_msgs_free(m, n);

    /* capture_query_token: used only when the payload names none */
    t_query_token = "phc_q";
    ok(build("{\"event\":\"x\",\"distinct_id\":\"u\"}", 0, &m, &n, &err)
       == 0 && n == 1, "query token");
    is_str(m[0].key, "phc_q:u", "query token key");
    is_str(field(&m[0], "token"), "phc_q", "query token field");
    capture_msgs_free(m, n);
    ok(build("{\"event\":\"x\",\"distinct_id\":[1]}", 0, &m, &n, &err)
       == 0 && n == 1, "query token through the DOM");
    is_str(m[0].token, "phc_q", "DOM query token");
    capture_msgs_free(m, n);
    ok(build("{\"api_key\":\"t\",\"event\":\"x\",\"distinct_id\":\"u\"}",
             0, &m, &n, &err) == 0, "payload token");
    is_str(m[0].token, "t", "the payload's token wins");
    capture_msgs_free(m, n);
    t_query_token = "phx_personal";
    ok(build("{\"event\":\"x\",\"distinct_id\":\"u\"}", 0, &m, &n, &err)
       != 0 && strcmp(err.error, "API key is not valid: personal_api_key")
               == 0, "query token validated");
    t_query_token = NULL;

    /*
     * librdkafka is given the header lengths, where it ran strlen():
     * through the fast path, through the DOM path (a number distinct_id,
     * an escaped event name holding a NUL), historical, batch
     */
    ok(build("{\"api_key\":\"phc_test\",\"event\":\"$pageview\","
             "\"distinct_id\":\"user-1\",\"properties\":{\"$session_id\":"
             "\"s1\"}}", 0, &m, &n, &err) == 0
       && lengths_as_strlen(m, n), "header lengths, fast path");
    capture_msgs_free(m, n);
    ok(build("{\"api_key\":\"phc_test\",\"event\":\"a\\u0000b\","
             "\"distinct_id\":42}", 0, &m, &n, &err) == 0
       && lengths_as_strlen(m, n), "header lengths, DOM path");
    is_str(m[0].headers[3].value, "a", "event header cut at the NUL");
    capture_msgs_free(m, n);
    ok(build("{\"api_key\":\"phc_test\",\"historical_migration\":true,"
             "\"batch\":[{\"event\":\"e\",\"distinct_id\":\"d\\u00e9\"},"
             "{\"event\":\"$exception\",\"distinct_id\":[1]}]}",
             0, &m, &n, &err) == 0 && n == 2
       && lengths_as_strlen(m, n), "header lengths, historical batch");
    capture_msgs_free(m, n);

    /*
     * the process's spare message array: one result held while another
     * is built gets an array of its own, and both are freed alike
     */
    m2 = NULL;
    n2 = 0;
    ok(build("{\"api_key\":\"t\",\"event\":\"x\",\"distinct_id\":\"u\"}",
             0, &m, &n, &err) == 0
       && build("{\"api_key\":\"t\",\"event\":\"y\",\"distinct_id\":\"v\"}",
                0, &m2, &n2, &err) == 0
       && m != m2 && n == 1 && n2 == 1, "two results held at once");
    is_str(m[0].event, "x", "first result intact");
    is_str(m2[0].event, "y", "second result");
    capture_msgs_free(m, n);
    capture_msgs_free(m2, n2);
    ok(build("{\"api_key\":\"t\",\"event\":\"z\",\"distinct_id\":\"u\"}",
             0, &m, &n, &err) == 0 && m[0].topic_name == NULL
       && !m[0].dropped && !m[0].person_skip, "spare array zeroed");
    m[0].dropped = 1;
    m[0].topic_name = "x";
    capture_msgs_free(m, n);
    ok(build("{\"api_key\":\"t\",\"event\":\"z\",\"distinct_id\":\"u\"}",
             0, &m, &n, &err) == 0 && !m[0].dropped
       && m[0].topic_name == NULL, "spare array zeroed again");
    capture_msgs_free(m, n);

    ok(esc_as_bytewise(), "escaping eight bytes at a time as byte by byte");

    {
        size_t  k;

        k = 0;
        ok(raw_as_copy("\"x\"", &k) && raw_as_copy(" [ ] ", &k)
           && raw_as_copy("{ }", &k) && raw_as_copy("-1.5e3", &k)
           && raw_as_copy("{\"a\":\"b\"}", &k)
           && raw_as_copy("  {\"k\" : [1, 2 ,\"\\\"q\\\"\", true,null] ,"
                          "\t\"u\":\"\\u00e9\\\\\"}\r\n", &k)
           && raw_as_copy("[\"0123456789abcdef0123456789abcdef0\","
                          "\"0123456789abcdef0123456789abcde\"]", &k)
           && k == 20,
           "token-led copy as byte by byte, by hand (%zu tokens)", k);
    }

    ok(raw_as_copy_random(),
       "token-led copy as byte by byte, generated texts");

    return done_testing();
}


static int
lengths_as_strlen(capture_msg_t *m, size_t n)
{
    size_t  i, h;

    for (i = 0; i < n; i++) {
        if (m[i].nheaders != 7) {
            return 0;
        }

        for (h = 0; h < m[i].nheaders; h++) {
            if (m[i].headers[h].name_len != strlen(m[i].headers[h].name)
                || m[i].headers[h].value_len
                   != strlen(m[i].headers[h].value))
            {
                return 0;
            }
        }
    }

    return 1;
}


/*
 * capture_fast_raw() against capture_fast_copy() for every token of text;
 * 0 when text does not scan or a token's copies differ
 */

static int
raw_as_copy(const char *text, size_t *checked)
{
    int             same;
    size_t          i;
    capture_json_t  js;

    memset(&js, 0, sizeof(js));

    if (capture_json_scan(&js, text, strlen(text)) != 0) {
        capture_json_free(&js);
        return 0;
    }

    same = 1;

    for (i = 0; same && i < js.ntoks; i++) {
        same = fast_raw_same(&js, text, (uint32_t) i);
    }

    *checked += i;
    capture_json_free(&js);

    return same;
}


/* texts with whitespace anywhere, escapes, long and short values */

static int
raw_as_copy_random(void)
{
    int           i;
    char         *w;
    size_t        checked;
    unsigned int  x;
    static char   text[65536];

    x = 4242;
    checked = 0;

    for (i = 0; i < 3000; i++) {
        w = text;
        gen_json(&w, &x, 0);
        *w = '\0';

        /* every generated text is valid JSON the scanner takes */
        if (!raw_as_copy(text, &checked)) {
            return 0;
        }
    }

    /* the generator is seeded: 21358 tokens, the scanner took every text */
    return checked > 20000;
}


#define GEN_NEXT(x)  ((x) = (x) * 1103515245 + 12345, ((x) >> 16) & 0x7fff)

static void
gen_ws(char **w, unsigned int *x)
{
    static const char  ws[] = " \t\r\n";

    while (GEN_NEXT(*x) % 3 == 0) {
        *(*w)++ = ws[GEN_NEXT(*x) % 4];
    }
}


/* keys without escapes: the scanner leaves escaped keys to jansson */

static void
gen_string(char **w, unsigned int *x, int key)
{
    int                n, k;
    static const char  *esc[] = {
        "\\\"", "\\\\", "\\n", "\\/", "\\u00e9", "\\t", "\xc3\xa9", "'"
    };

    /* lengths around the 32 bytes stored at once */
    n = GEN_NEXT(*x) % 4 == 0 ? GEN_NEXT(*x) % 80 : GEN_NEXT(*x) % 36;

    *(*w)++ = '"';

    for (k = 0; k < n; k++) {
        if (!key && GEN_NEXT(*x) % 12 == 0) {
            *w += sprintf(*w, "%s", esc[GEN_NEXT(*x) % 8]);

        } else {
            *(*w)++ = (char) ('a' + GEN_NEXT(*x) % 26);
        }
    }

    *(*w)++ = '"';
}


static void
gen_json(char **w, unsigned int *x, int depth)
{
    int                k, n, obj;
    static const char  *scalars[] = {
        "0", "-12", "3.25", "1e9", "-0.5E-3", "123456789012", "true",
        "false", "null"
    };

    gen_ws(w, x);

    switch (depth < 4 ? GEN_NEXT(*x) % 5 : 2 + GEN_NEXT(*x) % 3) {

    case 0:
    case 1:
        obj = GEN_NEXT(*x) % 2;
        n = GEN_NEXT(*x) % 6;
        *(*w)++ = obj ? '{' : '[';

        for (k = 0; k < n; k++) {
            if (k) {
                *(*w)++ = ',';
            }

            if (obj) {
                gen_ws(w, x);
                gen_string(w, x, 1);
                gen_ws(w, x);
                *(*w)++ = ':';
            }

            gen_json(w, x, depth + 1);
        }

        gen_ws(w, x);
        *(*w)++ = obj ? '}' : ']';
        break;

    case 2:
    case 3:
        gen_string(w, x, 0);
        break;

    default:
        *w += sprintf(*w, "%s", scalars[GEN_NEXT(*x) % 9]);
    }

    gen_ws(w, x);
}
