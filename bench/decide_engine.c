/*
 * Copyright (C) edgehog
 */

/*
 * Pure-C micro-benchmark of the decide engine with bench/decide.py's
 * 20-flag team: body decoding and field extraction, then evaluation,
 * timed separately (ns per request).  Guidance for profiling, printed,
 * never asserted.  Build and run: make bench-decide-engine.  With a
 * shared, busy CPU, count instructions instead of time:
 *
 *     perf stat -e instructions build/bench/decide_engine N decode|eval
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "decide_eval.h"
#include "decide_hash.h"
#include "decide_request.h"
#include "decide_json_arena.h"


#define BENCH_ITERS  200000
#define BENCH_CHUNK  1000


static double bench_now(void);
static json_t *bench_flags(void);


static const char  bench_body[] =
    "{\"token\": \"phc_bench\", \"distinct_id\": \"bench-user\", "
    "\"person_properties\": {\"plan\": \"pro\", \"email\": "
    "\"a@example.com\", \"app_version\": \"1.4.0\"}}";


static double
bench_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec * 1e9 + ts.tv_nsec;
}


/* the same flags as flags() in bench/decide.py, as Postgres rows */
static json_t *
bench_flags(void)
{
    int      i;
    char     key[32], payload[32];
    json_t  *flags, *f, *filters, *props, *group;

    flags = json_array();

    for (i = 0; i < 20; i++) {
        props = json_array();

        if (i % 4 == 0) {
            json_array_append_new(props, json_pack(
                "{s:s, s:s, s:s, s:[s, s]}", "key", "plan", "type",
                "person", "operator", "exact", "value", "enterprise",
                "pro"));
            json_array_append_new(props, json_pack(
                "{s:s, s:s, s:s, s:s}", "key", "email", "type", "person",
                "operator", "icontains", "value", "@example.com"));
            json_array_append_new(props, json_pack(
                "{s:s, s:s, s:s, s:s}", "key", "app_version", "type",
                "person", "operator", "semver_gte", "value", "1.2.0"));
        }

        group = json_pack("{s:o, s:i}", "properties", props,
                          "rollout_percentage", 10 + 4 * i);
        snprintf(payload, sizeof(payload), "{\"i\": %d}", i);
        filters = json_pack("{s:[o], s:{s:s}}", "groups", group,
                            "payloads", "true", payload);

        if (i % 3 == 0) {
            json_object_set_new(filters, "multivariate", json_pack(
                "{s:[{s:s, s:i}, {s:s, s:i}]}", "variants", "key",
                "control", "rollout_percentage", 50, "key", "test",
                "rollout_percentage", 50));
        }

        snprintf(key, sizeof(key), "bench-flag-%d", i);
        f = json_pack("{s:i, s:s, s:o, s:b, s:b, s:i}", "id", i + 1,
                      "key", key, "filters", filters, "active", 1,
                      "deleted", 0, "version", 1);
        json_array_append_new(flags, f);
    }

    return flags;
}


int
main(int argc, char **argv)
{
    int                  i, iters;
    char                 err[128];
    double               t0, t1, t2, dec, eval, hash, cdec, ceval, bdec, beval,
                         fast, bfast;
    size_t               n;
    json_t              *flags, *body;
    decide_team_t       *team;
    decide_fields_t      fields;
    decide_result_t     *out;
    decide_request_t     req;
    decide_body_opts_t   opts;
    decide_json_arena_t  arena;
    const char          *only;
    volatile double      sink;

    iters = (argc > 1) ? atoi(argv[1]) : BENCH_ITERS;
    only = (argc > 2) ? argv[2] : "";

    if (getenv("BENCH_MALLOC") == NULL) {
        (void) decide_json_arena_init(16, 16384);
    }

    memset(&arena, 0, sizeof(arena));

    flags = bench_flags();
    team = decide_team_create(flags, NULL, NULL, err, sizeof(err));
    if (team == NULL) {
        fprintf(stderr, "team: %s\n", err);
        return 1;
    }

    n = decide_team_nflags(team);
    out = calloc(n, sizeof(decide_result_t));

    memset(&opts, 0, sizeof(opts));
    opts.content_type = "application/json";
    opts.content_type_len = 16;
    opts.max_decompressed = 1 << 20;

    dec = 0;
    eval = 0;
    cdec = 0;
    ceval = 0;
    bdec = 1e18;
    beval = 1e18;

    /* one decoded body for the evaluate-only loop */
    if (decide_body_decode((const unsigned char *) bench_body,
                           sizeof(bench_body) - 1, &opts, &body, err,
                           sizeof(err))
        != DECIDE_DECODE_OK)
    {
        fprintf(stderr, "decode: %s\n", err);
        return 1;
    }

    decide_fields_get(body, &fields);

    for (i = 0; strcmp(only, "eval") == 0 && i < iters; i++) {
        memset(&req, 0, sizeof(req));
        req.distinct_id = fields.distinct_id;
        req.person_properties = fields.person_properties;
        req.now = 1.7e9;
        (void) decide_eval_flags(team, &req, out);
    }

    for (i = 0; strcmp(only, "decode") == 0 && i < iters; i++) {
        json_decref(body);
        decide_json_arena_release(&arena);
        decide_json_arena_take(&arena);
        decide_json_arena_begin(&arena);
        (void) decide_body_decode((const unsigned char *) bench_body,
                                  sizeof(bench_body) - 1, &opts, &body, err,
                                  sizeof(err));
        decide_json_arena_end();
        decide_fields_get(body, &fields);
    }

    for (i = 0; strcmp(only, "fast") == 0 && i < iters; i++) {
        json_decref(body);
        decide_json_arena_release(&arena);
        decide_json_arena_take(&arena);
        decide_json_arena_begin(&arena);
        (void) decide_fields_fast((const unsigned char *) bench_body,
                                  sizeof(bench_body) - 1, &opts, &body,
                                  &fields);
        decide_json_arena_end();
    }

    json_decref(body);
    decide_json_arena_release(&arena);

    if (only[0]) {
        decide_team_free(team);
        json_decref(flags);
        free(out);
        return 0;
    }

    for (i = 0; i < iters; i++) {
        t0 = bench_now();

        /* as the module does: the tree in an arena slot (BENCH_MALLOC: not) */
        decide_json_arena_take(&arena);
        decide_json_arena_begin(&arena);

        if (decide_body_decode((const unsigned char *) bench_body,
                               sizeof(bench_body) - 1, &opts, &body, err,
                               sizeof(err))
            != DECIDE_DECODE_OK)
        {
            fprintf(stderr, "decode: %s\n", err);
            return 1;
        }

        decide_json_arena_end();
        decide_fields_get(body, &fields);

        t1 = bench_now();

        memset(&req, 0, sizeof(req));
        req.distinct_id = fields.distinct_id;
        req.person_properties = fields.person_properties;
        req.groups = fields.groups;
        req.group_properties = fields.group_properties;
        req.now = 1.7e9;
        req.runtime = DECIDE_RUNTIME_UNKNOWN;

        if (decide_eval_flags(team, &req, out) != 0) {
            fprintf(stderr, "unexpected lookup\n");
            return 1;
        }

        t2 = bench_now();

        dec += t1 - t0;
        eval += t2 - t1;
        cdec += t1 - t0;
        ceval += t2 - t1;

        /* the best chunk: what other load on a shared CPU added least to */
        if ((i + 1) % BENCH_CHUNK == 0) {
            bdec = cdec < bdec ? cdec : bdec;
            beval = ceval < beval ? ceval : beval;
            cdec = 0;
            ceval = 0;
        }

        json_decref(body);
        decide_json_arena_release(&arena);
    }

    /* the module's path: the fields without the top-level object */
    cdec = 0;
    bfast = 1e18;
    t0 = bench_now();

    for (i = 0; i < iters; i++) {
        t1 = bench_now();
        decide_json_arena_take(&arena);
        decide_json_arena_begin(&arena);

        if (decide_fields_fast((const unsigned char *) bench_body,
                               sizeof(bench_body) - 1, &opts, &body,
                               &fields)
            != 0)
        {
            fprintf(stderr, "fields_fast did not answer\n");
            return 1;
        }

        decide_json_arena_end();
        cdec += bench_now() - t1;

        if ((i + 1) % BENCH_CHUNK == 0) {
            bfast = cdec < bfast ? cdec : bfast;
            cdec = 0;
        }

        json_decref(body);
        decide_json_arena_release(&arena);
    }

    fast = bench_now() - t0;

    t0 = bench_now();

    for (i = 0; i < iters; i++) {
        sink = decide_hash_sha1_60("bench-flag-1.", 13, "bench-user", 10,
                                   "", 0);
    }

    hash = bench_now() - t0;
    (void) sink;

    printf("decode+fields %8.0f ns/request (best %d: %.0f)\n", dec / iters,
           BENCH_CHUNK, bdec / BENCH_CHUNK);
    printf("fields_fast   %8.0f ns/request (best %d: %.0f)\n", fast / iters,
           BENCH_CHUNK, bfast / BENCH_CHUNK);
    printf("evaluate      %8.0f ns/request (20 flags; best %d: %.0f)\n",
           eval / iters, BENCH_CHUNK, beval / BENCH_CHUNK);
    printf("sha1_60       %8.0f ns/hash\n", hash / iters);

    for (i = 0; i < (int) n; i++) {
        if (out[i].enabled) {
            printf("  %s %s\n", out[i].key,
                   out[i].variant ? out[i].variant : "true");
        }
    }

    free(out);
    decide_team_free(team);
    json_decref(flags);

    return 0;
}
