/*
 * Copyright (C) edgehog
 */

/*
 * The request body arena (decide_json_arena.c) against plain malloc():
 * bodies decoded in a slot must be the values, in the same key order,
 * with the same fields, as bodies decoded without one; bodies too big
 * for a slot spill to malloc() and still free cleanly (LeakSanitizer);
 * no slots left means malloc(); memory of a released slot is poisoned
 * under AddressSanitizer.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#endif
#endif

#include "tap.h"
#include "decide_request.h"
#include "decide_json_arena.h"
#include "decide_fields_diff.h"


#define T_SLOTS  4
#define T_SLOT   2048


static json_t *t_decode(const char *body, size_t len,
    decide_json_arena_t *a, decide_decode_e *rc);
static size_t t_random_value(char *buf, size_t size, int depth);
static void t_compare(const char *body, size_t len, int *bad, int *spills);


static json_t *
t_decode(const char *body, size_t len, decide_json_arena_t *a,
    decide_decode_e *rc)
{
    char                err[128];
    json_t             *v;
    decide_body_opts_t  o;

    memset(&o, 0, sizeof(o));
    o.content_type = "application/json";
    o.content_type_len = 16;
    o.max_decompressed = 1 << 20;

    if (a) {
        decide_json_arena_begin(a);
    }

    *rc = decide_body_decode((const unsigned char *) body, len, &o, &v, err,
                             sizeof(err));

    if (a) {
        decide_json_arena_end();
    }

    return v;
}


/* JSON text: the fast path's subset and what only jansson reads */
static size_t
t_random_value(char *buf, size_t size, int depth)
{
    int     i, n, k;
    size_t  len;

    static const char  *atoms[] = {
        "true", "false", "null", "0", "-12", "123456789012", "1.5",
        "-2e3", "\"\"", "\"plain text\"", "\"a@example.com\"",
        "\"esc\\\"aped\\n\"", "\"\\u00e9t\\u00e9\"", "\"caf\xc3\xa9\"",
        "\"1.4.0\"", "12345678901234567890"
    };

    if (size < 64) {
        return (size_t) snprintf(buf, size, "0");
    }

    k = (depth < 4) ? rand() % 4 : 3;

    if (k == 3) {
        return (size_t) snprintf(buf, size, "%s",
                                 atoms[rand() % (sizeof(atoms)
                                                 / sizeof(atoms[0]))]);
    }

    n = rand() % 6;
    len = 0;
    buf[len++] = (k == 0) ? '[' : '{';

    for (i = 0; i < n && len + 64 < size; i++) {
        if (i) {
            buf[len++] = ',';
        }

        if (k != 0) {
            /* few key names: duplicates happen, the last one wins */
            len += (size_t) snprintf(buf + len, size - len, "\"k%d\":",
                                     rand() % 8);
        }

        len += t_random_value(buf + len, size - len - 2, depth + 1);
    }

    buf[len++] = (k == 0) ? ']' : '}';
    buf[len] = '\0';

    return len;
}


static void
t_compare(const char *body, size_t len, int *bad, int *spills)
{
    char                *x, *y;
    json_t              *a, *b;
    decide_decode_e      ra, rb;
    decide_fields_t      fa, fb;
    decide_json_arena_t  arena;

    decide_json_arena_take(&arena);

    a = t_decode(body, len, &arena, &ra);
    b = t_decode(body, len, NULL, &rb);

    *spills += arena.spilled;

    if (ra != rb || (a == NULL) != (b == NULL)) {
        if ((*bad)++ < 5) {
            diag("decode result differs: %.*s", (int) len, body);
        }

        goto done;
    }

    if (a == NULL) {
        goto done;
    }

    x = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
    y = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);

    decide_fields_get(a, &fa);
    decide_fields_get(b, &fb);

    if (x == NULL || y == NULL || strcmp(x, y) != 0 || !json_equal(a, b)
        || (fa.token == NULL) != (fb.token == NULL)
        || (fa.token && strcmp(fa.token, fb.token) != 0)
        || (fa.distinct_id == NULL) != (fb.distinct_id == NULL)
        || (fa.distinct_id && strcmp(fa.distinct_id, fb.distinct_id) != 0)
        || (fa.person_properties == NULL) != (fb.person_properties == NULL)
        || (fa.person_properties
            && !json_equal(fa.person_properties, fb.person_properties))
        || decide_fields_diff(a) != 0)
    {
        if ((*bad)++ < 5) {
            diag("arena %s, malloc %s", x ? x : "(null)", y ? y : "(null)");
        }
    }

    free(x);
    free(y);

done:

    json_decref(a);
    json_decref(b);
    decide_json_arena_release(&arena);
}


int
main(void)
{
    int                  i, bad, spills;
    char                 buf[4096];
    size_t               len;
    json_t              *v;
    decide_decode_e      rc;
    decide_json_arena_t  s[T_SLOTS + 1];

    static const char    body[] = "{\"token\": \"phc_bench\", \"distinct_id\": "
                                  "\"bench-user\", \"person_properties\": "
                                  "{\"plan\": \"pro\", \"email\": "
                                  "\"a@example.com\", \"app_version\": "
                                  "\"1.4.0\"}}";

    is_int(decide_json_arena_init(T_SLOTS, T_SLOT), 0, "arena reserved");

    /* the bench body fits a slot: nothing spills */
    bad = 0;
    spills = 0;
    t_compare(body, sizeof(body) - 1, &bad, &spills);
    is_int(bad, 0, "the SDK body decodes the same in a slot");
    is_int(spills, 0, "the SDK body fits one slot");

    /* random bodies, many too big for 2 KB slots */
    srand(20261121);
    bad = 0;
    spills = 0;

    for (i = 0; i < 20000; i++) {
        len = 0;
        buf[len++] = '{';
        len += (size_t) snprintf(buf + len, sizeof(buf) - len,
                                 "\"token\":\"phc_x\",\"distinct_id\":\"u%d\","
                                 "\"person_properties\":", i);
        len += t_random_value(buf + len, sizeof(buf) - len - 2, 0);
        buf[len++] = '}';
        buf[len] = '\0';

        /* now and then a broken one: both must fail alike */
        if (i % 17 == 0) {
            len -= 1 + (size_t) rand() % 4;
        }

        t_compare(buf, len, &bad, &spills);
    }

    is_int(bad, 0, "20000 random bodies decode the same in a slot");
    ok(spills > 0, "bigger bodies spill to malloc() (%d did)", spills);

    /* every slot taken: the next request decodes with malloc() */
    for (i = 0; i < T_SLOTS; i++) {
        decide_json_arena_take(&s[i]);
        ok(s[i].start != NULL, "slot %d taken", i);
    }

    decide_json_arena_take(&s[T_SLOTS]);
    ok(s[T_SLOTS].start == NULL, "no slot past the last");

    v = t_decode(body, sizeof(body) - 1, &s[T_SLOTS], &rc);
    ok(rc == DECIDE_DECODE_OK && json_is_object(v),
       "without a slot the body still decodes");
    json_decref(v);

    for (i = T_SLOTS; i >= 0; i--) {
        decide_json_arena_release(&s[i]);
    }

    /* a slot comes back whole */
    decide_json_arena_take(&s[0]);
    ok(s[0].start != NULL && s[0].pos == s[0].start
       && s[0].end - s[0].start == T_SLOT, "a released slot is whole again");

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
    {
        unsigned char  *p = s[0].start;

        decide_json_arena_release(&s[0]);
        ok(__asan_address_is_poisoned(p),
           "a released slot is poisoned for AddressSanitizer");
        decide_json_arena_take(&s[0]);
    }
#endif
#endif

    decide_json_arena_release(&s[0]);

    return done_testing();
}
