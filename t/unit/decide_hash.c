/*
 * Copyright (C) edgehog
 */

/*
 * sha1_60_v1 against hash_sha1_60_v1.json: input bytes, n, the exact
 * binary64 bits of hash01, and every rollout, holdout, threshold and
 * variant check the corpus records.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "tap.h"
#include "decide_hash.h"


#define DECIDE_T_HASH_FILE  EDGEHOG_FIXTURES "/decide/hash_sha1_60_v1.json"


static void decide_t_vector(json_t *v);
static void decide_t_threshold(json_t *v);
static void decide_t_variant(json_t *v);
static int decide_t_variant_select(double h, json_t *variants);
static uint64_t decide_t_bits(double d);
static void decide_t_batch(void);


int
main(void)
{
    size_t        i;
    json_t       *root, *v;
    json_error_t  err;

    root = json_load_file(DECIDE_T_HASH_FILE, 0, &err);
    ok(root != NULL, "load %s: %s", DECIDE_T_HASH_FILE,
       root ? "ok" : err.text);
    if (root == NULL) {
        return done_testing();
    }

    json_array_foreach(json_object_get(root, "vectors"), i, v) {
        decide_t_vector(v);
    }

    json_array_foreach(json_object_get(root, "threshold_vectors"), i, v) {
        decide_t_threshold(v);
    }

    json_array_foreach(json_object_get(root, "variant_vectors"), i, v) {
        decide_t_variant(v);
    }

    /* spec 3.1 verified examples */
    is_int(decide_t_bits(decide_hash_sha1_60("simple-flag.", 12,
                                             "distinct_id_0", 13, "", 0)),
           decide_t_bits(0.7836963764220432), "simple-flag.distinct_id_0");
    is_int(decide_t_bits(decide_hash_sha1_60("holdout-", 8,
                                             "some_distinct_id", 16, "", 0)),
           decide_t_bits(0.7270002403585725), "holdout-some_distinct_id");
    is_int(decide_t_bits(decide_hash_sha1_60("holdout-", 8, "", 0, "", 0)),
           decide_t_bits(0.9268829483920294), "holdout- alone");

    json_decref(root);

    decide_t_batch();

    return done_testing();
}


/*
 * decide_hash_n_batch() (AVX-512 and SHA-NI lanes where the CPU has
 * them) against decide_hash_n() one by one: random bytes of every length
 * around the one-block limit, batches of every size up to three groups
 * of sixteen, each message with or without a salt; the longer messages
 * take the slow path inside a batch.
 */
static void
decide_t_batch(void)
{
    int            round, bad;
    char           pool[4][80], id[80];
    size_t         i, j, n, idlen, len[48], slen[48];
    uint64_t       out[48], want;
    const char    *prefix[48], *salt[48];

    srand(20261121);
    bad = 0;

    diag("decide_hash_batch_fast: %d", decide_hash_batch_fast());

    for (round = 0; round < 20000; round++) {
        n = 1 + (size_t) rand() % 48;
        idlen = (size_t) rand() % 60;

        for (j = 0; j < idlen; j++) {
            id[j] = (char) (rand() & 0xff);
        }

        for (i = 0; i < 4; i++) {
            for (j = 0; j < sizeof(pool[i]); j++) {
                pool[i][j] = (char) (rand() & 0xff);
            }
        }

        for (i = 0; i < n; i++) {
            prefix[i] = pool[rand() % 4] + rand() % 8;
            len[i] = (size_t) rand() % 60;
            salt[i] = (rand() & 1) ? "variant" : "";
            slen[i] = strlen(salt[i]);
        }

        decide_hash_n_batch(prefix, len, n, id, idlen, salt, slen, out);

        for (i = 0; i < n; i++) {
            want = decide_hash_n(prefix[i], len[i], id, idlen, salt[i],
                                 slen[i]);

            if (out[i] != want && bad++ < 5) {
                diag("round %d: message %zu of %zu, %zu+%zu+%zu bytes",
                     round, i, n, len[i], idlen, slen[i]);
            }
        }
    }

    is_int(bad, 0, "batched hashes equal one-by-one ones (20000 batches)");
}


static void
decide_t_vector(json_t *v)
{
    int          want;
    char         nbuf[32], *input;
    double       h, pct;
    size_t       i, idlen, plen, slen;
    json_t      *c;
    uint64_t     n;
    const char  *id, *prefix, *salt, *vid;

    vid = json_string_value(json_object_get(v, "id"));
    prefix = json_string_value(json_object_get(v, "prefix"));
    salt = json_string_value(json_object_get(v, "salt"));
    id = json_string_value(json_object_get(v, "identifier"));

    if (json_object_get(v, "identifier_before_truncation")) {
        id = json_string_value(json_object_get(v,
                                               "identifier_before_truncation"));
    }

    plen = strlen(prefix);
    slen = strlen(salt);
    idlen = decide_hash_truncate(id, strlen(id));

    input = malloc(plen + idlen + slen + 1);
    memcpy(input, prefix, plen);
    memcpy(input + plen, id, idlen);
    memcpy(input + plen + idlen, salt, slen);
    input[plen + idlen + slen] = '\0';

    is_str(input, json_string_value(json_object_get(v, "input")),
           "%s: input bytes", vid);
    free(input);

    n = decide_hash_n(prefix, plen, id, idlen, salt, slen);
    snprintf(nbuf, sizeof(nbuf), "%llu", (unsigned long long) n);
    is_str(nbuf, json_string_value(json_object_get(v, "n")), "%s: n", vid);

    h = decide_hash_sha1_60(prefix, plen, id, idlen, salt, slen);
    snprintf(nbuf, sizeof(nbuf), "%016llx",
             (unsigned long long) decide_t_bits(h));
    is_str(nbuf, json_string_value(json_object_get(v, "hash01_binary64_hex")),
           "%s: hash01 bits", vid);

    json_array_foreach(json_object_get(v, "rollout_checks"), i, c) {
        pct = json_number_value(json_object_get(c, "rollout_percentage"));
        want = json_is_true(json_object_get(c, "included"));
        is_int(decide_hash_in_rollout(h, pct), want, "%s: rollout %g",
               vid, pct);
    }

    json_array_foreach(json_object_get(v, "holdout_checks"), i, c) {
        pct = json_number_value(json_object_get(c, "exclusion_percentage"));
        want = json_is_true(json_object_get(c, "member"));
        is_int(decide_hash_in_rollout(h, pct), want, "%s: holdout %g",
               vid, pct);
    }

    c = json_object_get(v, "variant_check");
    if (c) {
        want = decide_t_variant_select(h, json_object_get(c, "variants"));
        is_str(want < 0 ? NULL
                        : json_string_value(json_object_get(
                              json_array_get(json_object_get(c, "variants"),
                                             (size_t) want), "key")),
               json_string_value(json_object_get(c, "selected")),
               "%s: variant", vid);
    }
}


static void
decide_t_threshold(json_t *v)
{
    double  h, pct;

    h = json_number_value(json_object_get(v, "hash01"));
    pct = json_number_value(json_object_get(v, "rollout_percentage"));

    is_int(decide_hash_in_rollout(h, pct),
           json_is_true(json_object_get(v, "included")), "%s",
           json_string_value(json_object_get(v, "id")));
}


static void
decide_t_variant(json_t *v)
{
    int      i;
    json_t  *variants;

    variants = json_object_get(v, "variants");
    i = decide_t_variant_select(json_number_value(json_object_get(v,
                                                                  "hash01")),
                                variants);

    is_str(i < 0 ? NULL
                 : json_string_value(json_object_get(
                       json_array_get(variants, (size_t) i), "key")),
           json_string_value(json_object_get(v, "selected")), "%s",
           json_string_value(json_object_get(v, "id")));
}


static int
decide_t_variant_select(double h, json_t *variants)
{
    size_t   i, n;
    double   pct[64];
    json_t  *var;

    n = 0;

    json_array_foreach(variants, i, var) {
        if (n < 64) {
            pct[n++] = json_number_value(json_object_get(var,
                                                   "rollout_percentage"));
        }
    }

    return decide_hash_variant_index(h, pct, n);
}


static uint64_t
decide_t_bits(double d)
{
    uint64_t  u;

    memcpy(&u, &d, sizeof(u));

    return u;
}
