/*
 * Copyright (C) edgehog
 */

/*
 * The differential check of decide_fields_fast(), shared by its unit test
 * and the fuzzer: the fields it reads from a body's bytes must be what
 * decide_body_decode() + decide_fields_get() read, wherever it answers.
 */

#ifndef _DECIDE_FIELDS_FAST_DIFF_H_INCLUDED_
#define _DECIDE_FIELDS_FAST_DIFF_H_INCLUDED_


#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "decide_request.h"
#include "decide_json_fast.h"


static int decide_fields_fast_same_string(const char *what, const char *a,
    const char *b);
static int decide_fields_fast_same_json(const char *what, json_t *a,
    json_t *b);


/*
 * The differential check of decide_fields_fast(): where it answers, the
 * body must decode (decide_body_decode(), decide_json_fast()'s answer
 * included) to an object whose decide_fields_get() fields have the same
 * values.  0: agreed or declined; *answered tells which.
 */
static int
decide_fields_fast_diff(const unsigned char *p, size_t len,
    const decide_body_opts_t *o, int *answered)
{
    int               bad;
    char              err[128], *x;
    json_t           *holder, *v, *fast;
    volatile size_t   sink;
    decide_decode_e   rc;
    decide_fields_t  *a, *b;

    a = malloc(sizeof(decide_fields_t));
    b = malloc(sizeof(decide_fields_t));
    if (a == NULL || b == NULL) {
        abort();
    }

    bad = 0;
    *answered = decide_fields_fast(p, len, o, &holder, a) == 0;

    if (!*answered) {
        if (holder != NULL) {
            fprintf(stderr, "# fields_fast declined but left a holder\n");
            bad++;
        }

        free(a);
        free(b);
        return bad;
    }

    rc = decide_body_decode(p, len, o, &v, err, sizeof(err));

    if (rc != DECIDE_DECODE_OK || !json_is_object(v)) {
        fprintf(stderr, "# fields_fast answered, the body decodes to %s\n",
                rc == DECIDE_DECODE_OK ? "a non-object" : err);
        json_decref(holder);
        json_decref(v);
        free(a);
        free(b);
        return 1;
    }

    /* the subset: decide_json_fast() answers for these bytes too */
    fast = decide_json_fast(p, len);
    if (fast == NULL || !json_equal(fast, v)) {
        fprintf(stderr, "# fields_fast answered outside decide_json_fast\n");
        bad++;
    }

    json_decref(fast);

    decide_fields_get(v, b);

    bad += decide_fields_fast_same_string("token", a->token, b->token)
           + decide_fields_fast_same_string("distinct_id", a->distinct_id,
                                            b->distinct_id)
           + decide_fields_fast_same_string("anon_distinct_id",
                                            a->anon_distinct_id,
                                            b->anon_distinct_id)
           + decide_fields_fast_same_string("device_id", a->device_id,
                                            b->device_id)
           + decide_fields_fast_same_json("person_properties",
                                          a->person_properties,
                                          b->person_properties)
           + decide_fields_fast_same_json("groups", a->groups, b->groups)
           + decide_fields_fast_same_json("group_properties",
                                          a->group_properties,
                                          b->group_properties)
           + decide_fields_fast_same_json("flag_keys", a->flag_keys,
                                          b->flag_keys)
           + decide_fields_fast_same_json("environments", a->environments,
                                          b->environments);

    if (a->runtime != b->runtime || a->runtime_set != b->runtime_set
        || a->disable_flags != b->disable_flags
        || a->geoip_disable != b->geoip_disable)
    {
        fprintf(stderr, "# fields_fast differs in a flag field\n");
        bad++;
    }

    /* the holder, not the body, owns what they point to (ASan reads) */
    json_decref(v);
    sink = a->token ? strlen(a->token) : 0;
    sink += a->anon_distinct_id ? strlen(a->anon_distinct_id) : 0;
    x = json_dumps(a->person_properties, JSON_ENCODE_ANY);
    free(x);
    (void) sink;
    json_decref(holder);

    free(a);
    free(b);

    return bad;
}


static int
decide_fields_fast_same_string(const char *what, const char *a,
    const char *b)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0)) {
        fprintf(stderr, "# fields_fast differs in %s\n", what);
        return 1;
    }

    return 0;
}


static int
decide_fields_fast_same_json(const char *what, json_t *a, json_t *b)
{
    char  *x, *y;
    int    bad;

    if ((a == NULL) != (b == NULL)) {
        fprintf(stderr, "# fields_fast differs in %s\n", what);
        return 1;
    }

    if (a == NULL) {
        return 0;
    }

    /* json_equal() ignores key order, the dumps do not */
    x = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
    y = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
    bad = !json_equal(a, b) || x == NULL || y == NULL || strcmp(x, y) != 0;
    free(x);
    free(y);

    if (bad) {
        fprintf(stderr, "# fields_fast differs in %s\n", what);
    }

    return bad;
}



#endif /* _DECIDE_FIELDS_FAST_DIFF_H_INCLUDED_ */
