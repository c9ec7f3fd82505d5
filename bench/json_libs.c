/*
 * Copyright (C) edgehog
 */

/*
 * Which packaged JSON library for capture's hot path (DESIGN.md
 * "Libraries")?  Each run does what capture does per request: parse a
 * posthog-js batch of 50 events (~1 KB each), find event, distinct_id,
 * uuid and the token in every event, and re-serialise each event for the
 * message's `data` field.  jsmn has no DOM and no writer: its row
 * tokenises and takes `data` as the raw slice of the input, the
 * zero-copy bound.  Prints events/s per library and the ratio to
 * jansson, measured in one run on this machine.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <cjson/cJSON.h>
#define JSMN_STATIC
#include <jsmn.h>


#define BENCH_EVENTS   50
#define BENCH_ROUNDS   400


static char *bench_batch(size_t *len);
static double bench_now(void);
static size_t bench_jansson(const char *p, size_t len);
static size_t bench_cjson(const char *p, size_t len);
/* json_libs_jsonc.c: json-c's header clashes with jansson's */
size_t bench_jsonc(const char *p, size_t len);
static size_t bench_jsmn(const char *p, size_t len);


typedef struct {
    const char                 *name;
    size_t                    (*run)(const char *p, size_t len);
} bench_lib_t;


static char *
bench_batch(size_t *len)
{
    int     i, n;
    char   *p, *buf;
    size_t  size;

    size = BENCH_EVENTS * 2048 + 16;
    buf = malloc(size);
    if (buf == NULL) {
        exit(1);
    }

    p = buf;
    *p++ = '[';

    for (i = 0; i < BENCH_EVENTS; i++) {
        n = snprintf(p, size - (p - buf),
            "%s{\"event\":\"$pageview\",\"uuid\":\"0190a1b2-c3d4-7e5f-8a9b-"
            "%012d\",\"timestamp\":\"2026-11-21T09:30:20.%03dZ\","
            "\"properties\":{\"$os\":\"Mac OS X\",\"$os_version\":\"14.5.0\","
            "\"$browser\":\"Chrome\",\"$device_type\":\"Desktop\","
            "\"$current_url\":\"https://app.example.com/dashboard/%d?tab=ov"
            "erview\",\"$host\":\"app.example.com\",\"$pathname\":\"/dashbo"
            "ard/%d\",\"$raw_user_agent\":\"Mozilla/5.0 (Macintosh; Intel M"
            "ac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome"
            "/131.0.0.0 Safari/537.36\",\"$browser_version\":131,"
            "\"$browser_language\":\"en-US\",\"$screen_height\":1117,"
            "\"$screen_width\":1728,\"$viewport_height\":992,"
            "\"$viewport_width\":1728,\"$lib\":\"web\",\"$lib_version\":"
            "\"1.449.2\",\"$insert_id\":\"x9v2k3m4n5b6\",\"$time\":"
            "1795253420.%03d,\"distinct_id\":\"0190a1b2-0000-7000-8000-%012d"
            "\",\"$device_id\":\"0190a1b2-0000-7000-8000-%012d\","
            "\"$session_id\":\"0190a1b2-1111-7000-8000-000000000001\","
            "\"$window_id\":\"0190a1b2-2222-7000-8000-000000000002\","
            "\"$pageview_id\":\"0190a1b2-3333-7000-8000-%012d\","
            "\"$referrer\":\"$direct\",\"$referring_domain\":\"$direct\","
            "\"$is_identified\":false,\"$process_person_profile\":true,"
            "\"utm_source\":null,\"title\":\"Dashboard \\u00e9t\\u00e9\","
            "\"$set_once\":{\"$initial_referrer\":\"$direct\"},"
            "\"token\":\"phc_NVZOyYb8hX2GDs80mQd072OT0WUrAbdQom4XeCV5Nfh\"}}",
            i ? "," : "", i, i % 1000, i, i, i % 1000, i, i, i);
        p += n;
    }

    *p++ = ']';
    *p = '\0';
    *len = p - buf;

    return buf;
}


static double
bench_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static size_t
bench_jansson(const char *p, size_t len)
{
    char          *data;
    size_t         i, out;
    json_t        *root, *ev;
    json_error_t   err;

    root = json_loadb(p, len, 0, &err);
    out = 0;

    json_array_foreach(root, i, ev) {
        out += json_string_length(json_object_get(ev, "event"));
        out += json_string_length(json_object_get(ev, "uuid"));
        out += json_string_length(json_object_get(json_object_get(ev,
                                            "properties"), "distinct_id"));
        out += json_string_length(json_object_get(json_object_get(ev,
                                            "properties"), "token"));
        data = json_dumps(ev, JSON_COMPACT);
        out += strlen(data);
        free(data);
    }

    json_decref(root);

    return out;
}


static size_t
bench_cjson(const char *p, size_t len)
{
    char    *data;
    size_t   out;
    cJSON   *root, *ev, *props;

    root = cJSON_ParseWithLength(p, len);
    out = 0;

    cJSON_ArrayForEach(ev, root) {
        props = cJSON_GetObjectItemCaseSensitive(ev, "properties");
        out += strlen(cJSON_GetObjectItemCaseSensitive(ev, "event")
                      ->valuestring);
        out += strlen(cJSON_GetObjectItemCaseSensitive(ev, "uuid")
                      ->valuestring);
        out += strlen(cJSON_GetObjectItemCaseSensitive(props, "distinct_id")
                      ->valuestring);
        out += strlen(cJSON_GetObjectItemCaseSensitive(props, "token")
                      ->valuestring);
        data = cJSON_PrintUnformatted(ev);
        out += strlen(data);
        free(data);
    }

    cJSON_Delete(root);

    return out;
}


/* tokens only: keys are compared in place, `data` is the raw slice */

static size_t
bench_jsmn(const char *p, size_t len)
{
    int           i, n, j, end;
    size_t        out;
    jsmn_parser   parser;

    static jsmntok_t  toks[BENCH_EVENTS * 128];

    jsmn_init(&parser);
    n = jsmn_parse(&parser, p, len, toks, sizeof(toks) / sizeof(toks[0]));
    out = 0;

    for (i = 1; i < n; i = j) {
        /* an event object: walk its tokens until past its end */
        end = toks[i].end;
        out += toks[i].end - toks[i].start;

        for (j = i + 1; j < n && toks[j].start < end; j++) {
            if (toks[j].type == JSMN_STRING && toks[j].size == 1
                && toks[j].end - toks[j].start == 5
                && memcmp(p + toks[j].start, "event", 5) == 0)
            {
                out += toks[j + 1].end - toks[j + 1].start;
            }
        }
    }

    return out;
}


int
main(void)
{
    int           r;
    char         *batch;
    size_t        len, i, sink;
    double        t0, secs, base;

    static const bench_lib_t  libs[] = {
        { "jansson 2.14", bench_jansson },
        { "cJSON 1.7.15", bench_cjson },
        { "json-c 0.16", bench_jsonc },
        { "jsmn 1.1 (tokens only, raw data slice)", bench_jsmn },
    };

    batch = bench_batch(&len);
    base = 0;
    sink = 0;

    printf("capture hot path: batch of %d events, %zu bytes, %d rounds\n",
           BENCH_EVENTS, len, BENCH_ROUNDS);

    for (i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
        sink += libs[i].run(batch, len);      /* warm-up */

        t0 = bench_now();

        for (r = 0; r < BENCH_ROUNDS; r++) {
            sink += libs[i].run(batch, len);
        }

        secs = bench_now() - t0;

        if (i == 0) {
            base = secs;
        }

        printf("  %-40s %9.0f events/s  %6.1f MB/s  x%.2f vs jansson\n",
               libs[i].name, BENCH_EVENTS * BENCH_ROUNDS / secs,
               len * (double) BENCH_ROUNDS / secs / 1e6, base / secs);
    }

    return sink == 0;
}
