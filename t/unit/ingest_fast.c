/*
 * Copyright (C) edgehog
 */

/*
 * The one-pass message scanner (ingest_fast.c): which messages it
 * takes, and that for those the worker sees and emits exactly what the
 * DOM path gives (ingest_fast_diff.h), under every team option.
 */


#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "ingest_fast_diff.h"


#define E1     "018c0b2a-0000-7000-8000-000000000001"
#define OUTER  "{\"uuid\":\"" E1 "\",\"distinct_id\":\"anon-1\"," \
               "\"ip\":\"127.0.0.1\",\"now\":\"2025-07-01T11:00:00.000Z\"," \
               "\"token\":\"phc_test\"," \
               "\"timestamp\":\"2025-07-01T10:59:58.000Z\"}"
#define URL    "https://example.com/p?q=\\u00e9\\n\\\"x\\\"/\\/"


typedef struct {
    const char                 *data;
    int                         taken;
} fast_case_t;


static char *msg(const char *outer, const char *data);
static void check(const char *outer, const fast_case_t *c);
static void test_personless_header(void);


static const fast_case_t  cases[] = {

    /* the bench's events: taken */
    { "{\"event\": \"$pageview\", \"distinct_id\": \"anon-1\", \"uuid\": \""
      E1 "\", \"timestamp\": \"2025-07-01T10:59:58.000Z\", \"properties\": "
      "{\"$current_url\": \"" URL "\", \"$browser\": \"Firefox\", \"$os\": "
      "\"Linux\", \"$screen_height\": 1080, \"$screen_width\": 1920, "
      "\"$lib\": \"web\", \"$lib_version\": \"1.200.0\", "
      "\"$process_person_profile\": false}}", 1 },

    { "{\"event\": \"$pageview\", \"distinct_id\": \"user-1\", \"properties\":"
      " {\"$current_url\": \"u\", \"$browser\": \"Firefox\", \"$set\": "
      "{\"plan\": \"free\", \"$browser\": \"Chrome\"}}}", 1 },

    /* $set_once with an $initial_ key of its own, $unset, nesting */
    { "{\"event\":\"e\",\"properties\":{\"utm_source\":\"g\",\"$os\":\"L\","
      "\"$set_once\":{\"$initial_os\":\"W\",\"x\":[1,2.5,{\"a\":null}]},"
      "\"$unset\":[\"a\",\"b\"],\"n\":-0,\"r\":1e20,\"s\":1.5E-7,"
      "\"t\":true,\"u\":\"\\ud83d\\ude00\\u001f\\t\",\"o\":{}}}", 1 },

    /* $ip present: truthy kept, empty replaced; $sent_at and session */
    { "{\"event\":\"e\",\"sent_at\":\"2025-07-01T10:59:59.000Z\","
      "\"properties\":{\"$ip\":\"9.9.9.9\",\"$session_id\":"
      "\"018C0B2A-0000-7000-8000-0000000000AB\",\"$sent_at\":1}}", 1 },
    { "{\"event\":\"e\",\"properties\":{\"$ip\":\"\",\"a\":1}}", 1 },

    /* groups, elements chain, $process_person_profile: true */
    { "{\"event\":\"$autocapture\",\"properties\":{\"$group_0\":\"g\","
      "\"$group_4\":{\"x\":1},\"$elements_chain\":\"a:nth-child=\\\"1\\\"\","
      "\"$process_person_profile\":true}}", 1 },

    /*
     * a string token without escapes is copied as it is: escapes that
     * decode to what jansson writes raw (\/, \u00e9, \u007f, \u0041)
     * or escapes again (\", \n) are decoded and written back, in keys
     * and values of properties, nested objects, arrays and $set
     */
    { "{\"event\":\"e\",\"properties\":{\"a\\/b\":\"c\\/d\","
      "\"\\u00e9\":\"\\u007f\\u00e9x\",\"\xc3\xa9\x7f\":\"\xc3\xa9\x7f/\","
      "\"o\":{\"k\\/\":\"v\\/\",\"k\":[\"\\/\",\"/\",\"\\u0041\"],"
      "\"q\\\"\":\"\\n\"},\"$set\":{\"s\\/\":\"t\\/\",\"u\":\"v\","
      "\"\\u0041\":\"\xc3\xa9\"}}}", 1 },

    /* no properties at all, or null */
    { "{\"event\":\"e\"}", 1 },
    { "{\"event\":\"e\",\"properties\":null,\"extra\":[{\"k\":1}]}", 1 },

    /* left to the DOM path */
    { "{\"event\":\"$identify\",\"properties\":{}}", 0 },
    { "{\"event\":\"$exception\",\"properties\":{}}", 0 },
    { "{\"event\":\"e\",\"$set\":{\"a\":1},\"properties\":{}}", 0 },
    { "{\"event\":\"e\",\"offset\":5,\"properties\":{}}", 0 },
    { "{\"event\":\"e\",\"properties\":{\"a\":1,\"a\":2}}", 0 },
    { "{\"event\":\"e\",\"properties\":{\"a\":{\"b\":1,\"b\":2}}}", 0 },
    { "{\"event\":\"e\",\"properties\":{\"a\":\"\\u0000\"}}", 0 },
    { "{\"event\":\"e\",\"properties\":{\"a\":123456789012345678901}}", 0 },
    { "{\"event\":\"e\",\"properties\":{\"$os_name\":\"iOS\"}}", 0 },
    { "{\"event\":\"e\",\"properties\":{\"$process_person_profile\":1}}",
      0 },
    { "{\"event\":\"e\",\"properties\":{\"$elements\":[{}]}}", 0 },
    { "{\"event\":\"e\",\"properties\":{\"$ip\":0}}", 0 },
    { "{\"event\":\"e\",\"properties\":[]}", 0 },
    { "{\"event\":5,\"properties\":{}}", 0 },
    { "{\"event\":\"e\",\"properties\":{\"a\":01}}", 0 },
    { "{\"event\":\"e\",\"properties\":{\"a\":1.}}", 0 },
    { "{\"event\":\"e\",\"properties\":{\"a\":\"\\ud800\"}}", 0 },
    { "{\"event\":\"e\",\"properties\":{}} x", 0 },

    { NULL, 0 }
};


static char *
msg(const char *outer, const char *data)
{
    char          *s;
    json_t        *o;
    json_error_t   err;

    o = json_loads(outer, 0, &err);
    json_object_set_new(o, "data", json_string(data));
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);

    return s;
}


static void
check(const char *outer, const fast_case_t *c)
{
    int    opts, rc, taken;
    char  *v;

    v = msg(outer, c->data);
    taken = 1;

    for (opts = 0; opts < 4; opts++) {
        rc = fast_diff(v, strlen(v), opts);

        if (rc == FAST_DIFF_NOT_TAKEN) {
            taken = 0;
            continue;
        }

        ok(rc == FAST_DIFF_EQUAL, "same as the DOM path (opts %d): %.60s",
           opts, c->data);
    }

    is_int(taken, c->taken, "%s: %.60s", c->taken ? "taken" : "left",
           c->data);

    free(v);
}


int
main(void)
{
    const fast_case_t  *c;

    for (c = cases; c->data; c++) {
        check(OUTER, c);
    }

    /* without capture's timestamp and ip, the data's own are used */
    check("{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\",\"now\":\"x\"}",
          &cases[0]);
    check("{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\",\"ip\":\"\"}",
          &cases[3]);

    /*
     * the string scan goes 16 or eight bytes at a time: an escape, a control,
     * a UTF-8 sequence at every offset of a word and across words
     */
    {
        int          i, k;
        char         data[256], pad[40];
        fast_case_t  c;

        static const char  *special[] = {
            "\\\"", "\\\\", "\\n", "\\u0001", "\xc3\xa9",
            "\xf0\x9f\x98\x80", "\\ud83d\\ude00", "\\/",
            /* two in one word: the first one found must be the first */
            "\\\"\\\"", "\xc3\xa9\\\"", "\\n\xc3\xa9", NULL
        };

        for (k = 0; special[k]; k++) {
            for (i = 0; i < 40; i++) {
                memset(pad, 'a' + i % 26, i);
                pad[i] = '\0';
                snprintf(data, sizeof(data),
                         "{\"event\":\"e\",\"properties\":{\"%s%s\":"
                         "\"%s%sxyzxyzxyzxyz%s\",\"b\":1}}",
                         pad, special[k], pad, special[k], special[k]);
                c.data = data;
                c.taken = 1;
                check(OUTER, &c);
            }
        }
    }

    /*
     * every key of §1.3 step 4 ($initial_* in $set_once, found by its
     * hash in ingest_fast.c) and keys that are nearly one, each alone
     * beside a $set, so a key the table misses shows in $set_once
     */
    {
        int          k;
        char         data[256];
        fast_case_t  c;

        static const char  *keys[] = {
            "$app_build", "$app_name", "$app_namespace", "$app_version",
            "$browser", "$browser_version", "$device_type", "$current_url",
            "$pathname", "$os", "$os_version", "$referring_domain",
            "$referrer", "$screen_height", "$screen_width",
            "$viewport_height", "$viewport_width", "$raw_user_agent",
            "utm_source", "utm_medium", "utm_campaign", "utm_content",
            "utm_name", "utm_term", "gclid", "gad_source", "gclsrc",
            "dclid", "gbraid", "wbraid", "fbclid", "msclkid", "twclid",
            "li_fat_id", "mc_cid", "igshid", "ttclid", "rdt_cid", "irclid",
            "_kx", "epik", "qclid", "sccid",
            /* not ones */
            "$Browser", "$browse", "$browserx", "utm_sourc", "_kX", "kx",
            "$app_buildd", "epi", "sccid ", "$viewport_heigh", NULL
        };

        for (k = 0; keys[k]; k++) {
            snprintf(data, sizeof(data),
                     "{\"event\":\"e\",\"properties\":{\"%s\":\"v\","
                     "\"$set\":{\"a\":1}}}", keys[k]);
            c.data = data;
            c.taken = 1;
            check(OUTER, &c);
        }
    }

    /* integers as "%lld" prints them: edges, every length both signs */
    {
        int           i, same;
        char          want[32];
        int64_t       v, p10;
        ingest_str_t  b;

        static const int64_t  edges[] = {
            0, 1, -1, 9, -9, INT64_MAX, INT64_MIN, INT64_MAX - 1,
            INT64_MIN + 1
        };

        memset(&b, 0, sizeof(ingest_str_t));
        same = 1;
        p10 = 1;

        for (i = 0; i < 9 + 18 * 2; i++) {
            if (i < 9) {
                v = edges[i];

            } else if ((i - 9) % 2 == 0) {
                p10 *= 10;
                v = p10 - 1;

            } else {
                v = -p10;
            }

            b.len = 0;
            ingest_str_add_int(&b, v);
            snprintf(want, sizeof(want), "%lld", (long long) v);

            if (b.data == NULL || strcmp(b.data, want) != 0) {
                diag("%s vs %s", b.data ? b.data : "(null)", want);
                same = 0;
            }
        }

        ok(same, "ingest_str_add_int() prints as %%lld does");
        free(b.data);
    }

    /*
     * two batches of 3000 parsed at once, as the worker has them: the
     * pool of freed parse states grows past its first 1024 slots, and
     * states reused for longer messages than they had still parse and
     * build what the DOM path gives
     */
    {
        int                i, round, same;
        char              *v, data[800], did[32], pad[512];
        ingest_message_t  *ms;

        ms = calloc(6000, sizeof(ingest_message_t));
        same = (ms != NULL);

        for (round = 0; ms && round < 3; round++) {
            for (i = 0; i < 6000; i++) {
                snprintf(did, sizeof(did), "d-%d-%d", round, i);
                memset(pad, 'a' + i % 26, (i * 7 + round * 150) % 500);
                pad[(i * 7 + round * 150) % 500] = '\0';
                snprintf(data, sizeof(data),
                         "{\"event\":\"e\",\"distinct_id\":\"%s\","
                         "\"properties\":{\"u\":\"%s" URL "\"}}", did,
                         pad);
                v = msg(OUTER, data);

                if (ingest_message_parse_fast(&ms[i], v, strlen(v))
                    != INGEST_MSG_OK
                    || ms[i].fast == NULL
                    || strcmp(ms[i].distinct_id, "anon-1") != 0)
                {
                    same = 0;
                }

                /* every 97th one against the DOM path, from a reused state */
                if (i % 97 == 0 && fast_diff(v, strlen(v), 0)
                                   != FAST_DIFF_EQUAL)
                {
                    diag("pool round %d message %d differs", round, i);
                    same = 0;
                }

                free(v);
            }

            for (i = 0; i < 6000; i++) {
                ingest_message_free(&ms[i]);
            }
        }

        ok(same, "6000 parse states at once, freed and reused");
        free(ms);
    }

    /* capture fields the fast path does not know */
    check("{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\",\"team_id\":1}",
          &(fast_case_t) { cases[6].data, 0 });
    check("{\"uuid\":\"bad\",\"distinct_id\":\"d\"}",
          &(fast_case_t) { cases[6].data, 0 });

    test_personless_header();

    done_testing();
}


/*
 * The worker reads the force_disable_person_processing header only
 * when ingest_message_personless() is 0: for the events where it is 1,
 * forcing changes nothing prepare() leaves, in either parser
 */

static void
test_personless_header(void)
{
    int                  i, fast, opts, pl;
    char                *v, *a, *b;
    ingest_message_t     ma, mb;
    ingest_team_opts_t   ta, tb;

    static const struct {
        const char  *data;
        int          personless;
    } cases[] = {
        { "{\"event\":\"$pageview\",\"properties\":{\"$current_url\":"
          "\"u\",\"$group_0\":\"g\",\"$ip\":\"9.9.9.9\","
          "\"$process_person_profile\":false}}", 1 },
        { "{\"event\":\"e\",\"properties\":{\"$set\":{\"a\":1},"
          "\"$process_person_profile\":false,\"$unset\":[\"b\"]}}", 1 },
        { "{\"event\":\"e\",\"$set\":{\"a\":1},\"properties\":{"
          "\"$process_person_profile\":false}}", 1 },
        { "{\"event\":\"$identify\",\"properties\":{"
          "\"$process_person_profile\":false,\"$anon_distinct_id\":\"x\"}}",
          1 },
        { "{\"event\":\"$$heatmap\",\"properties\":{"
          "\"$process_person_profile\":false}}", 1 },
        { "{\"event\":\"$exception\",\"properties\":{"
          "\"$process_person_profile\":false,\"$ip\":\"1.1.1.1\"}}", 1 },
        { "{\"event\":\"$$client_ingestion_warning\",\"properties\":{"
          "\"$process_person_profile\":false}}", 1 },
        { "{\"event\":\"e\",\"properties\":{"
          "\"$process_person_profile\":true}}", 0 },
        { "{\"event\":\"e\",\"properties\":{"
          "\"$process_person_profile\":\"false\"}}", 0 },
        { "{\"event\":\"e\",\"properties\":{\"a\":1}}", 0 },
        { "{\"event\":\"e\"}", 0 },
        { NULL, 0 }
    };

    for (i = 0; cases[i].data; i++) {
        v = msg("{\"uuid\":\"" E1 "\",\"distinct_id\":\"d\","
                "\"ip\":\"127.0.0.1\",\"now\":\"2025-07-01T11:00:00.000Z\","
                "\"token\":\"t\",\"timestamp\":\"2025-07-01T10:59:58.000Z\"}",
                cases[i].data);

        for (fast = 0; fast < 2; fast++) {
            for (opts = 0; opts < 4; opts++) {
                if (fast) {
                    ingest_message_parse_fast(&ma, v, strlen(v));
                    ingest_message_parse_fast(&mb, v, strlen(v));

                } else {
                    ingest_message_parse(&ma, v, strlen(v));
                    ingest_message_parse(&mb, v, strlen(v));
                }

                pl = ingest_message_personless(&ma);

                memset(&ta, 0, sizeof(ta));
                ta.anonymize_ips = opts & 1;
                ta.person_processing_opt_out = (opts & 2) != 0;
                tb = ta;
                tb.force_personless = 1;

                a = fast_diff_prepared(&ma, &ta);
                b = fast_diff_prepared(&mb, &tb);

                if (opts == 0) {
                    is_int(pl, cases[i].personless,
                           "personless %d (%s): %.50s", cases[i].personless,
                           fast ? "fast" : "DOM", cases[i].data);
                }

                if (pl) {
                    is_str(b, a, "forced = not forced (%s, opts %d): %.40s",
                           fast ? "fast" : "DOM", opts, cases[i].data);

                } else if (opts == 0 && cases[i].data[10] == 'e'
                           && cases[i].data[11] == '"')
                {
                    /* the check can fail: forcing does change these */
                    ok(strcmp(a, b) != 0, "forcing changes (%s): %.40s",
                       fast ? "fast" : "DOM", cases[i].data);
                }

                free(a);
                free(b);
                ingest_message_free(&ma);
                ingest_message_free(&mb);
            }
        }

        free(v);
    }
}
