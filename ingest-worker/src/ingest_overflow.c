/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>

#include "ingest_overflow.h"
#include "ingest_hash.h"
#include "ingest_json.h"


typedef struct {
    char                       *name;       /* NULL: free slot */
    size_t                      len;
    uint32_t                    hash;
    ingest_bucket_t             b;
} ingest_bucket_slot_t;


struct ingest_buckets_s {
    ingest_bucket_slot_t       *slots;
    size_t                      mask;
    size_t                      used;
    size_t                      max;
};


/* one key of a batch */
typedef struct {
    const char                 *key;        /* NULL: free slot */
    size_t                      len;
    uint32_t                    hash;
    long                        count;      /* -1: overflows */
    int64_t                     ts_ms;
    int                         next;       /* first-seen order */
} ingest_bucket_group_t;


/* UTF-8 where NUL bytes may occur, as JSON object keys may hold them */

static int
ingest_buckets_key_valid(const char *key, size_t len)
{
    const char  *nul;

    while ((nul = memchr(key, '\0', len)) != NULL) {
        if (!ingest_utf8_valid(key, nul - key)) {
            return 0;
        }

        len -= nul - key + 1;
        key = nul + 1;
    }

    return ingest_utf8_valid(key, len);
}


ingest_buckets_t *
ingest_buckets_new(size_t max)
{
    ingest_buckets_t  *t;

    t = calloc(1, sizeof(ingest_buckets_t));
    if (t == NULL) {
        return NULL;
    }

    t->mask = 1023;
    t->max = max;
    t->slots = calloc(t->mask + 1, sizeof(ingest_bucket_slot_t));

    if (t->slots == NULL) {
        free(t);
        return NULL;
    }

    return t;
}


static void
ingest_buckets_clear(ingest_buckets_t *t)
{
    size_t  i;

    for (i = 0; i <= t->mask; i++) {
        free(t->slots[i].name);
        t->slots[i].name = NULL;
    }

    t->used = 0;
}


void
ingest_buckets_free(ingest_buckets_t *t)
{
    if (t == NULL) {
        return;
    }

    ingest_buckets_clear(t);
    free(t->slots);
    free(t);
}


size_t
ingest_buckets_size(ingest_buckets_t *t)
{
    return t->used;
}


static int
ingest_buckets_grow(ingest_buckets_t *t)
{
    size_t                 i, j, size;
    ingest_bucket_slot_t  *slots;

    size = (t->mask + 1) * 2;
    slots = calloc(size, sizeof(ingest_bucket_slot_t));

    if (slots == NULL) {
        return -1;
    }

    for (i = 0; i <= t->mask; i++) {
        if (t->slots[i].name == NULL) {
            continue;
        }

        for (j = t->slots[i].hash & (size - 1); slots[j].name;
             j = (j + 1) & (size - 1))
        {
            /* void */
        }

        slots[j] = t->slots[i];
    }

    free(t->slots);
    t->slots = slots;
    t->mask = size - 1;

    return 0;
}


/*
 * the bucket named key[0..len) (h: its ingest_hash()), created unused;
 * NULL when out of memory
 */

static ingest_bucket_slot_t *
ingest_buckets_get(ingest_buckets_t *t, const char *key, size_t len,
    uint32_t h)
{
    size_t                 i;
    ingest_bucket_slot_t  *e;

    if ((t->used + 1) * 2 > t->mask + 1 && ingest_buckets_grow(t) != 0) {
        return NULL;
    }

    for (i = h & t->mask; t->slots[i].name; i = (i + 1) & t->mask) {
        e = &t->slots[i];

        if (e->hash == h && e->len == len && memcmp(e->name, key, len) == 0) {
            return e;
        }
    }

    e = &t->slots[i];
    e->name = malloc(len + 1);

    if (e->name == NULL) {
        return NULL;
    }

    memcpy(e->name, key, len);
    e->name[len] = '\0';
    e->len = len;
    e->hash = h;
    memset(&e->b, 0, sizeof(ingest_bucket_t));
    t->used++;

    return e;
}


int
ingest_buckets_plan(ingest_buckets_t *t, const char *const *keys,
    const size_t *lens, const int64_t *ts_ms, int n, double capacity,
    double rate, char *overflow)
{
    int                     i, first, *last, *of;
    size_t                  j, mask, size, blen;
    uint32_t                h;
    const char             *nul;
    ingest_bucket_slot_t   *e;
    ingest_bucket_group_t  *g, *groups;

    memset(overflow, 0, n);

    for (size = 16; size < (size_t) n * 2 + 2; size <<= 1) { /* void */ }

    mask = size - 1;
    groups = calloc(size, sizeof(ingest_bucket_group_t));
    of = malloc((n ? n : 1) * sizeof(int));

    if (groups == NULL || of == NULL) {
        free(groups);
        free(of);
        return -1;
    }

    first = -1;
    last = &first;

    /* the batch's keys: how many events, the latest message time */
    for (i = 0; i < n; i++) {
        of[i] = -1;

        if (keys[i] == NULL || lens[i] == 0
            || !ingest_buckets_key_valid(keys[i], lens[i]))
        {
            continue;
        }

        h = ingest_hash(keys[i], lens[i]);

        for (j = h & mask; groups[j].key; j = (j + 1) & mask) {
            if (groups[j].hash == h && groups[j].len == lens[i]
                && memcmp(groups[j].key, keys[i], lens[i]) == 0)
            {
                break;
            }
        }

        g = &groups[j];

        if (g->key == NULL) {
            g->key = keys[i];
            g->len = lens[i];
            g->hash = h;
            g->ts_ms = ts_ms[i];
            g->next = -1;
            *last = (int) j;
            last = &g->next;
        }

        g->count++;

        if (ts_ms[i] > g->ts_ms) {
            g->ts_ms = ts_ms[i];
        }

        of[i] = (int) j;
    }

    if (t->used > t->max) {
        ingest_buckets_clear(t);
    }

    /* in first-seen order: keys that share a bucket name charge it so */
    for (i = first; i >= 0; i = groups[i].next) {
        g = &groups[i];
        nul = memchr(g->key, '\0', g->len);
        blen = nul ? (size_t) (nul - g->key) : g->len;

        /* the key's hash is the name's unless a NUL cuts the name */
        e = ingest_buckets_get(t, g->key, blen,
                               nul ? ingest_hash(g->key, blen) : g->hash);
        if (e == NULL) {
            free(groups);
            free(of);
            return -1;
        }

        if (!ingest_bucket_consume(&e->b, capacity, rate, g->ts_ms,
                                   g->count))
        {
            g->count = -1;
        }
    }

    for (i = 0; i < n; i++) {
        overflow[i] = of[i] >= 0 && groups[of[i]].count < 0;
    }

    free(groups);
    free(of);

    return 0;
}


int
ingest_bucket_consume(ingest_bucket_t *b, double capacity, double rate,
    int64_t now_ms, long n)
{
    if (!b->used) {
        b->used = 1;
        b->tokens = capacity;
        b->last_ms = now_ms;
    }

    /* message time may go backwards across partitions: never refill then */
    if (now_ms > b->last_ms) {
        b->tokens += (double) (now_ms - b->last_ms) / 1000.0 * rate;
        b->last_ms = now_ms;

        if (b->tokens > capacity) {
            b->tokens = capacity;
        }
    }

    if ((double) n > b->tokens) {
        return 0;
    }

    b->tokens -= (double) n;

    return 1;
}
