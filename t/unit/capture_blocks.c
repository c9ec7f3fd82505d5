/*
 * Copyright (C) edgehog
 */

/*
 * The message arena: random allocations, resizes and frees against a
 * model of what each block holds, and the event builder with the arena
 * against the builder with malloc(), message by message.  Leaks are
 * LeakSanitizer's to find: every test frees all and destroys the arena.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "capture_blocks.h"
#include "capture_event.h"


#define T_NOW     1751367600000000LL
#define T_SLOTS   256
#define T_UUID    "0198393f-1b8a-7c2e-a269-737351f06167"


typedef struct {
    unsigned char              *p;
    size_t                      size;
    unsigned char               fill;
} t_slot_t;


static int t_random(void);
static int t_check(t_slot_t *s);
static int t_same(const char *payload, int engage);
static int t_same_msg(capture_msg_t *a, capture_msg_t *b);
static int t_held(void);


static const capture_msg_alloc_t  *t_alloc;
static capture_msg_alloc_t         t_arena;


/* sizes around the chunk's quarter, so both kinds of chunk are used */
static const size_t  t_sizes[] = {
    0, 1, 15, 16, 17, 100, 1000, 1500, 4095, 4096, 4097, 16000, 16368,
    16369, 20000, 70000
};


static int
t_random(void)
{
    int                i, k, ok;
    size_t             size;
    void              *p;
    t_slot_t           slots[T_SLOTS];
    capture_blocks_t  *a;

    a = capture_blocks_create(65536, 2);
    if (a == NULL) {
        return 0;
    }

    memset(slots, 0, sizeof(slots));
    ok = 1;
    srand(7);

    for (i = 0; ok && i < 200000; i++) {
        k = rand() % T_SLOTS;
        size = t_sizes[rand() % (sizeof(t_sizes) / sizeof(t_sizes[0]))]
               + (size_t) (rand() % 3);

        switch (rand() % 3) {

        case 0:
            if (slots[k].p) {
                ok = t_check(&slots[k]);
                capture_blocks_free(a, slots[k].p);
            }

            slots[k].p = capture_blocks_resize(a, NULL, size);
            slots[k].size = size;
            slots[k].fill = (unsigned char) i;
            memset(slots[k].p, slots[k].fill, size);
            break;

        case 1:
            if (slots[k].p == NULL) {
                break;
            }

            ok = t_check(&slots[k]);

            p = capture_blocks_resize(a, slots[k].p, size);

            /* what the block held survives, up to the new size */
            if (size > slots[k].size) {
                memset((unsigned char *) p + slots[k].size, slots[k].fill,
                       size - slots[k].size);
            }

            slots[k].p = p;
            slots[k].size = size;
            break;

        default:
            if (slots[k].p) {
                ok = t_check(&slots[k]);
                capture_blocks_free(a, slots[k].p);
                slots[k].p = NULL;
            }
        }

        if (slots[k].p && ((uintptr_t) slots[k].p & 15) != 0) {
            ok = 0;
        }
    }

    for (k = 0; k < T_SLOTS; k++) {
        if (slots[k].p) {
            ok = ok && t_check(&slots[k]);
            capture_blocks_free(a, slots[k].p);
        }
    }

    capture_blocks_destroy(a);

    return ok;
}


static int
t_check(t_slot_t *s)
{
    size_t  i;

    for (i = 0; i < s->size; i++) {
        if (s->p[i] != s->fill) {
            return 0;
        }
    }

    return 1;
}


/* the same messages from the arena as from malloc() */

static int
t_same(const char *payload, int engage)
{
    int                 rc[2], same;
    size_t              i, n[2];
    capture_msg_t      *m[2];
    capture_error_t     err[2];
    capture_request_t   req;

    memset(&req, 0, sizeof(req));
    req.ip = "203.0.113.7";
    req.now_us = T_NOW;
    req.engage = engage;
    req.max_message_size = CAPTURE_MAX_MESSAGE_SIZE;

    rc[0] = capture_event_build(&req, payload, strlen(payload), &m[0], &n[0],
                                &err[0]);

    req.alloc = t_alloc;
    rc[1] = capture_event_build(&req, payload, strlen(payload), &m[1], &n[1],
                                &err[1]);

    same = rc[0] == rc[1];

    if (same && rc[0] != 0) {
        same = err[0].status == err[1].status
               && strcmp(err[0].error, err[1].error) == 0;

    } else if (same) {
        same = n[0] == n[1];

        for (i = 0; same && i < n[0]; i++) {
            same = m[0][i].alloc == NULL && m[1][i].alloc == t_alloc
                   && t_same_msg(&m[0][i], &m[1][i]);
        }
    }

    if (rc[0] == 0) {
        capture_msgs_free(m[0], n[0]);
    }

    if (rc[1] == 0) {
        capture_msgs_free(m[1], n[1]);
    }

    return same;
}


static int
t_same_msg(capture_msg_t *a, capture_msg_t *b)
{
    size_t  h;

    /* the value starts {"uuid":" and a generated uuid differs */
    if (a->topic != b->topic || a->value_len != b->value_len
        || a->value_len < 45
        || memcmp(a->value, b->value, 9) != 0
        || memcmp(a->value + 45, b->value + 45, a->value_len - 45) != 0
        || a->key_len != b->key_len
        || memcmp(a->key, b->key, a->key_len) != 0
        || a->nheaders != b->nheaders
        || (a->session_id == NULL) != (b->session_id == NULL)
        || (a->session_id && strcmp(a->session_id, b->session_id) != 0))
    {
        return 0;
    }

    for (h = 0; h < a->nheaders; h++) {
        if (strcmp(a->headers[h].name, b->headers[h].name) != 0
            || (h != 4
                && strcmp(a->headers[h].value, b->headers[h].value) != 0))
        {
            return 0;
        }
    }

    return 1;
}


/* blocks held across requests and freed out of order, as reports are */

static int
t_held(void)
{
    int                 ok;
    char               *p;
    size_t              i, j, n, total;
    capture_msg_t      *m, *all[64];
    capture_error_t     err;
    capture_request_t   req;
    static char         payload[200000];

    memset(&req, 0, sizeof(req));
    req.ip = "203.0.113.7";
    req.now_us = T_NOW;
    req.max_message_size = CAPTURE_MAX_MESSAGE_SIZE;
    req.alloc = t_alloc;

    p = payload + sprintf(payload, "{\"api_key\":\"t\",\"batch\":[");

    for (i = 0; i < 50; i++) {
        p += sprintf(p, "%s{\"event\":\"e%zu\",\"distinct_id\":\"u%zu\","
                     "\"properties\":{\"p\":\"%0*d\"}}", i ? "," : "", i, i,
                     (int) (i * 97 % 3000), 0);
    }

    strcpy(p, "]}");

    ok = 1;
    total = 0;

    for (i = 0; i < 64; i++) {
        if (capture_event_build(&req, payload, strlen(payload), &m, &n, &err)
            != 0 || n != 50)
        {
            return 0;
        }

        all[i] = m;
        total += n;

        for (j = 0; j < n; j++) {
            ok = ok && m[j].alloc == t_alloc
                 && m[j].value[m[j].value_len - 1] == '}'
                 && strcmp(m[j].key + 2, m[j].distinct_id) == 0;
        }
    }

    /* every other request first, then the rest backwards */
    for (i = 0; i < 64; i += 2) {
        capture_msgs_free(all[i], 50);
    }

    for (i = 63; i < 64; i -= 2) {
        capture_msgs_free(all[i], 50);
    }

    return ok && total == 64 * 50;
}


int
main(void)
{
    char               *p;
    size_t              i;
    capture_blocks_t   *a;
    static char         big[40000];

    ok(t_random(), "random allocations, resizes and frees keep contents");

    a = capture_blocks_create(65536, 64);
    t_arena.resize = capture_blocks_resize;
    t_arena.free = capture_blocks_free;
    t_arena.ctx = a;
    t_alloc = &t_arena;

    ok(t_same("{\"api_key\":\"phc_test\",\"event\":\"$pageview\","
              "\"distinct_id\":\"user-1\",\"properties\":{\"$current_url\":"
              "\"https://example.com/\"},\"timestamp\":"
              "\"2025-07-01T10:59:58Z\"}", 0), "one event");
    ok(t_same("{\"api_key\":\"t\",\"sent_at\":\"2025-07-01T11:00:05Z\","
              "\"batch\":[{\"event\":\"a\",\"distinct_id\":\"u1\",\"uuid\":"
              "\"" T_UUID "\",\"timestamp\":\"2025-07-01T10:59:55Z\"},"
              "{\"event\":\"b\",\"distinct_id\":\"u2\",\"properties\":"
              "{\"$session_id\":\"s\"}}]}", 0), "batch");
    ok(t_same("[{\"event\":\"$exception\",\"properties\":{\"distinct_id\":"
              "\"a\",\"token\":\"t\",\"$cookieless_mode\":true}},"
              "{\"event\":\"x\",\"offset\":1500,\"properties\":"
              "{\"distinct_id\":\"a\",\"capture_internal\":1}}]", 0),
       "array");
    ok(t_same("{\"api_key\":\"t\",\"event\":\"x\\n\\u00e9\",\"distinct_id\":7,"
              "\"properties\":{\"$session_id\":\"s\\u0041\"}}", 0),
       "through the DOM");
    ok(t_same("{\"api_key\":\"t\",\"distinct_id\":\"u\",\"$set\":{\"a\":1}}",
              1), "engage");
    ok(t_same("{\"event\":\"x\",\"distinct_id\":\"u\"}", 0), "an error");

    /* a block of its own, through both parsers */
    p = big + sprintf(big, "{\"api_key\":\"t\",\"event\":\"x\","
                      "\"distinct_id\":\"u\",\"properties\":{\"p\":\"");

    for (i = 0; i < 30000; i++) {
        *p++ = (i % 1000 == 999) ? '"' : 'a';

        if (p[-1] == '"') {
            p[-1] = '\\';
            *p++ = '"';
        }
    }

    strcpy(p, "\"}}");
    ok(t_same(big, 0), "large event");

    ok(t_held(), "blocks held by many requests, freed out of order");

    capture_blocks_destroy(a);

    return done_testing();
}
