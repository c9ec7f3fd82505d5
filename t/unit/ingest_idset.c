/*
 * Copyright (C) edgehog
 */

/*
 * The personless id set (ingest_idset) against the JSON object person.c
 * kept before, reproduced here as the reference: random adds and lookups
 * over a few teams and ids that share prefixes, contain ':' or are
 * empty, with a bound small enough that the set is forgotten wholesale
 * many times on the way (even when the id added is already in it).
 * Both must answer every lookup alike and hold as many ids.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "ingest_idset.h"


#define MAX_IDS  300


/* person.c's bookkeeping as it was: "team:id" keys in a JSON object */

static int
reference_has(json_t *set, int64_t team, const char *id)
{
    char  key[600];

    snprintf(key, sizeof(key), "%lld:%s", (long long) team, id);

    return json_object_get(set, key) != NULL;
}


static void
reference_add(json_t *set, int64_t team, const char *id)
{
    char  key[600];

    snprintf(key, sizeof(key), "%lld:%s", (long long) team, id);

    if (json_object_size(set) >= MAX_IDS) {
        json_object_clear(set);
    }

    json_object_set_new(set, key, json_true());
}


int
main(void)
{
    int              i, same, hits, n;
    char             id[300];
    json_t          *ref;
    int64_t          team;
    ingest_idset_t  *s;

    static const int64_t  teams[] = { 1, 2, 1LL << 32, -1, 12345678901LL };

    srand(11);
    ref = json_object();
    s = ingest_idset_new(MAX_IDS);
    ok(s != NULL && ref != NULL, "sets made");

    same = 1;
    hits = 0;

    for (i = 0; i < 200000 && same; i++) {
        team = teams[rand() % 5];

        switch (rand() % 4) {
        case 0:
            n = snprintf(id, sizeof(id), "anon-%d", rand() % 700);
            break;
        case 1:
            /* ':' inside: "1:2:x" is team 1's "2:x" */
            n = snprintf(id, sizeof(id), "%d:x", rand() % 50);
            break;
        case 2:
            /* long, differing only at the end */
            memset(id, 'p', 250);
            n = 250 + snprintf(id + 250, sizeof(id) - 250, "%d",
                               rand() % 100);
            break;
        default:
            n = (rand() % 10 == 0) ? 0 : 1;
            id[0] = 'a' + rand() % 26;
            id[n] = '\0';
        }

        if (rand() % 2) {
            if (ingest_idset_has(s, team, id, n) != reference_has(ref, team, id))
            {
                diag("lookup %d of %lld:%s differs", i, (long long) team, id);
                same = 0;
            }

            hits += reference_has(ref, team, id);

        } else {
            reference_add(ref, team, id);

            if (ingest_idset_add(s, team, id, n) != 0
                || ingest_idset_size(s) != json_object_size(ref))
            {
                diag("add %d of %lld:%s: sizes %zu and %zu", i,
                     (long long) team, id, ingest_idset_size(s),
                     json_object_size(ref));
                same = 0;
            }
        }
    }

    ok(same, "200000 random adds and lookups answer as the JSON object");
    ok(hits > 10000, "and many lookups found their id (%d)", hits);
    ok(ingest_idset_size(s) <= MAX_IDS, "the set stays bounded");

    ingest_idset_free(s);
    s = ingest_idset_new(1000000);
    ok(ingest_idset_add(s, 7, "x\0y", 3) == 0
       && ingest_idset_has(s, 7, "x\0y", 3) && !ingest_idset_has(s, 7, "x", 1)
       && !ingest_idset_has(s, 8, "x\0y", 3),
       "ids are compared by length and team, NUL bytes included");

    for (i = 0; i < 5000; i++) {
        n = snprintf(id, sizeof(id), "grow-%d", i);
        (void) ingest_idset_add(s, 7, id, n);
    }

    for (i = 0, n = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "grow-%d", i);
        n += ingest_idset_has(s, 7, id, strlen(id));
    }

    is_int(n, 5000, "every id is still found after the table grew");

    ingest_idset_free(s);
    json_decref(ref);

    done_testing();
}
