/*
 * Copyright (C) edgehog
 */

/*
 * The overflow plan of a batch (ingest_buckets_plan) against the
 * JSON-object implementation the worker had before, kept here as the
 * reference: random batches of keys (NUL bytes and invalid UTF-8
 * included), times that also go backwards, a table small enough to
 * be forgotten on the way.  Both must flag the same messages.
 */


#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "ingest_overflow.h"


#define MAX_STATE  40
#define BATCH      64


/* consumer.c's worker_overflow_plan() as it was */

static void
reference_plan(json_t *buckets, const char **keys, const size_t *lens,
    const int64_t *ts_ms, int n, double capacity, double rate,
    char *overflow)
{
    int               i;
    json_t           *groups, *g, *st;
    int64_t           ts;
    const char       *key;
    ingest_bucket_t   b;

    memset(overflow, 0, n);
    groups = json_object();

    for (i = 0; i < n; i++) {
        if (keys[i] == NULL || lens[i] == 0) {
            continue;
        }

        ts = ts_ms[i];
        g = json_object_getn(groups, keys[i], lens[i]);

        if (g == NULL) {
            g = json_pack("[II]", (json_int_t) 0, (json_int_t) ts);
            if (g == NULL || json_object_setn_new(groups, keys[i], lens[i],
                                                  g) != 0)
            {
                continue;
            }
        }

        json_array_set_new(g, 0,
                           json_integer(json_integer_value(
                                            json_array_get(g, 0)) + 1));
        if (ts > json_integer_value(json_array_get(g, 1))) {
            json_array_set_new(g, 1, json_integer(ts));
        }
    }

    if (json_object_size(buckets) > MAX_STATE) {
        json_object_clear(buckets);
    }

    json_object_foreach(groups, key, g) {
        memset(&b, 0, sizeof(ingest_bucket_t));
        st = json_object_get(buckets, key);

        if (st) {
            b.used = 1;
            b.tokens = json_real_value(json_array_get(st, 0));
            b.last_ms = json_integer_value(json_array_get(st, 1));
        }

        if (!ingest_bucket_consume(&b, capacity, rate,
                                   json_integer_value(json_array_get(g, 1)),
                                   json_integer_value(json_array_get(g, 0))))
        {
            json_array_set_new(g, 0, json_integer(-1));
        }

        json_object_set_new(buckets, key,
                            json_pack("[fI]", b.tokens, (json_int_t) b.last_ms));
    }

    for (i = 0; i < n; i++) {
        if (keys[i] == NULL || lens[i] == 0) {
            continue;
        }

        g = json_object_getn(groups, keys[i], lens[i]);
        overflow[i] = g && json_integer_value(json_array_get(g, 0)) < 0;
    }

    json_decref(groups);
}


int
main(void)
{
    int                 round, i, j, same, flagged;
    char                ref[BATCH], got[BATCH], names[BATCH][8];
    size_t              lens[BATCH];
    int64_t             ts[BATCH], now;
    json_t             *buckets;
    const char         *keys[BATCH];
    ingest_buckets_t   *t;

    /* a small alphabet: many repeats, NULs, a byte that is no UTF-8 */
    static const char   alphabet[] = { 'a', 'b', ':', '\0', '\xff', 'c' };

    srand(7);
    buckets = json_object();
    t = ingest_buckets_new(MAX_STATE);
    ok(t != NULL && buckets != NULL, "tables made");

    same = 1;
    flagged = 0;
    now = 1000000;

    for (round = 0; round < 3000; round++) {
        for (i = 0; i < BATCH; i++) {
            lens[i] = rand() % 4;

            for (j = 0; j < (int) lens[i]; j++) {
                names[i][j] = alphabet[rand() % (round % 7 == 0 ? 6 : 3)];
            }

            keys[i] = (rand() % 20 == 0) ? NULL : names[i];
            ts[i] = now + rand() % 3000 - 1000;
        }

        now += rand() % 2000;

        reference_plan(buckets, keys, lens, ts, BATCH, 5, 2, ref);

        if (ingest_buckets_plan(t, keys, lens, ts, BATCH, 5, 2, got) != 0
            || memcmp(ref, got, BATCH) != 0)
        {
            same = 0;
            diag("round %d differs", round);
            break;
        }

        for (i = 0; i < BATCH; i++) {
            flagged += got[i];
        }
    }

    ok(same, "3000 random batches: the same messages overflow");
    ok(flagged > 1000, "and many did (%d)", flagged);
    ok(ingest_buckets_size(t) <= MAX_STATE + BATCH,
       "the table stays bounded");

    /* AC-22 through the plan: one key's 6 events do not fit 5 tokens */
    for (i = 0; i < 6; i++) {
        keys[i] = "tok:id";
        lens[i] = 6;
        ts[i] = 5000;
    }

    ingest_buckets_free(t);
    t = ingest_buckets_new(MAX_STATE);
    ingest_buckets_plan(t, keys, lens, ts, 6, 5, 1, got);
    ok(got[0] && got[5], "a key's whole batch overflows together");
    ingest_buckets_plan(t, keys, lens, ts, 5, 5, 1, got);
    ok(!got[0] && !got[4], "and took no tokens: 5 fit then");

    ingest_buckets_free(t);
    json_decref(buckets);

    return done_testing();
}
