/*
 * Copyright (C) edgehog
 */


#include <stdlib.h>
#include <string.h>

#include "ingest_idset.h"
#include "ingest_hash.h"


typedef struct {
    char                       *id;         /* NULL: free slot */
    size_t                      len;
    int64_t                     team_id;
    uint32_t                    hash;
} ingest_idset_slot_t;


struct ingest_idset_s {
    ingest_idset_slot_t        *slots;
    size_t                      mask;
    size_t                      used;
    size_t                      max;
};


static uint32_t
ingest_idset_hash(int64_t team_id, const char *id, size_t len)
{
    return ingest_hash(id, len) ^ (uint32_t) team_id
           ^ (uint32_t) ((uint64_t) team_id >> 32);
}


ingest_idset_t *
ingest_idset_new(size_t max)
{
    ingest_idset_t  *s;

    s = calloc(1, sizeof(ingest_idset_t));
    if (s == NULL) {
        return NULL;
    }

    s->mask = 1023;
    s->max = max;
    s->slots = calloc(s->mask + 1, sizeof(ingest_idset_slot_t));

    if (s->slots == NULL) {
        free(s);
        return NULL;
    }

    return s;
}


static void
ingest_idset_clear(ingest_idset_t *s)
{
    size_t  i;

    for (i = 0; i <= s->mask; i++) {
        free(s->slots[i].id);
        s->slots[i].id = NULL;
    }

    s->used = 0;
}


void
ingest_idset_free(ingest_idset_t *s)
{
    if (s == NULL) {
        return;
    }

    ingest_idset_clear(s);
    free(s->slots);
    free(s);
}


size_t
ingest_idset_size(const ingest_idset_t *s)
{
    return s->used;
}


/* the slot of the entry, or the free one where it would go */

static ingest_idset_slot_t *
ingest_idset_slot(const ingest_idset_t *s, int64_t team_id, const char *id,
    size_t len, uint32_t h)
{
    size_t                i;
    ingest_idset_slot_t  *e;

    for (i = h & s->mask; ; i = (i + 1) & s->mask) {
        e = &s->slots[i];

        if (e->id == NULL
            || (e->hash == h && e->team_id == team_id && e->len == len
                && memcmp(e->id, id, len) == 0))
        {
            return e;
        }
    }
}


int
ingest_idset_has(const ingest_idset_t *s, int64_t team_id, const char *id,
    size_t len)
{
    return ingest_idset_slot(s, team_id, id, len,
                             ingest_idset_hash(team_id, id, len))->id
           != NULL;
}


static int
ingest_idset_grow(ingest_idset_t *s)
{
    size_t                i, j, size;
    ingest_idset_slot_t  *slots;

    size = (s->mask + 1) * 2;
    slots = calloc(size, sizeof(ingest_idset_slot_t));

    if (slots == NULL) {
        return -1;
    }

    for (i = 0; i <= s->mask; i++) {
        if (s->slots[i].id == NULL) {
            continue;
        }

        for (j = s->slots[i].hash & (size - 1); slots[j].id;
             j = (j + 1) & (size - 1))
        {
            /* void */
        }

        slots[j] = s->slots[i];
    }

    free(s->slots);
    s->slots = slots;
    s->mask = size - 1;

    return 0;
}


int
ingest_idset_add(ingest_idset_t *s, int64_t team_id, const char *id,
    size_t len)
{
    uint32_t              h;
    ingest_idset_slot_t  *e;

    /* as the JSON object did: full means forgotten, even for a member */
    if (s->used >= s->max) {
        ingest_idset_clear(s);
    }

    if ((s->used + 1) * 2 > s->mask + 1 && ingest_idset_grow(s) != 0) {
        return -1;
    }

    h = ingest_idset_hash(team_id, id, len);
    e = ingest_idset_slot(s, team_id, id, len, h);

    if (e->id) {
        return 0;
    }

    e->id = malloc(len + 1);
    if (e->id == NULL) {
        return -1;
    }

    memcpy(e->id, id, len);
    e->id[len] = '\0';
    e->len = len;
    e->team_id = team_id;
    e->hash = h;
    s->used++;

    return 0;
}
