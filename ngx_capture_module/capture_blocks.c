/*
 * Copyright (C) edgehog
 */

/*
 * A message block is written once, handed to librdkafka without
 * RD_KAFKA_MSG_F_FREE and released from its delivery report, which comes
 * in bursts of hundreds (one per produce response).  With malloc() each
 * block of ~1-2 KB sat among the nine small allocations librdkafka makes
 * per message (headers, the message itself): freed in bursts, the mix
 * fragmented glibc's bins and every large request or free ran
 * malloc_consolidate(); perf put malloc and free at a third of the
 * worker's event loop for /batch/.  Here a block costs a pointer bump, a
 * chunk is freed when its last block is, and empty chunks are reused.
 *
 * Session 7, kept out: 93% of capture_blocks_free() (2.9% of the event
 * loop in bench-capture (d)) is the load of the block's header, cold by
 * the time of the report.  Chunks aligned to 64 KB (posix_memalign), so
 * that the chunk is the block's address rounded down, were no measurable
 * gain: (d) nginx CPU per batch 298 vs 327 us in one run and 327 vs 321
 * in the next (6 rounds, builds alternating); bench-capture-alloc batch
 * delivery burst=6400, 2417/2459/2336 vs 2485/2638/2342 ns per event,
 * with 11-16k page faults against 7.4k (aligned chunks come and go by
 * mmap).  Keeping 256 empty chunks instead of 64: 308 vs 312 us.
 */


#include <stdlib.h>
#include <string.h>

#include "capture_blocks.h"


typedef struct capture_chunk_s  capture_chunk_t;


struct capture_blocks_s {
    capture_chunk_t            *current;
    capture_chunk_t            *free;
    size_t                      nfree;
    size_t                      keep;
    size_t                      size;
    /* chunks not yet freed, dedicated ones aside */
    size_t                      nchunks;
    unsigned                    gone:1;
};


struct capture_chunk_s {
    capture_blocks_t           *owner;
    capture_chunk_t            *next;
    size_t                      size;
    size_t                      used;
    /* offset of the newest block, which may grow or shrink in place */
    size_t                      last;
    size_t                      refs;
    unsigned                    dedicated:1;
};


/* before every block; 16 bytes keep the block aligned as malloc()'s */
typedef struct {
    capture_chunk_t            *chunk;
    size_t                      size;
} capture_block_t;


#define CAPTURE_BLOCKS_ALIGN  16
#define capture_blocks_round(n)                                              \
    (((n) + CAPTURE_BLOCKS_ALIGN - 1) & ~((size_t) CAPTURE_BLOCKS_ALIGN - 1))
#define CAPTURE_CHUNK_HEAD   capture_blocks_round(sizeof(capture_chunk_t))
#define CAPTURE_BLOCK_HEAD   capture_blocks_round(sizeof(capture_block_t))
#define capture_chunk_data(c)  ((char *) (c) + CAPTURE_CHUNK_HEAD)


static void *capture_blocks_alloc(capture_blocks_t *a, size_t size);
static capture_chunk_t *capture_blocks_chunk(capture_blocks_t *a);
static void capture_blocks_release(capture_chunk_t *c);


capture_blocks_t *
capture_blocks_create(size_t chunk, size_t keep)
{
    capture_blocks_t  *a;

    a = calloc(1, sizeof(capture_blocks_t));
    if (a == NULL) {
        return NULL;
    }

    a->size = capture_blocks_round(chunk);
    a->keep = keep;

    return a;
}


void
capture_blocks_destroy(capture_blocks_t *a)
{
    capture_chunk_t  *c;

    while (a->free) {
        c = a->free;
        a->free = c->next;
        free(c);
        a->nchunks--;
    }

    a->nfree = 0;

    if (a->current && a->current->refs == 0) {
        free(a->current);
        a->nchunks--;
    }

    a->current = NULL;
    a->gone = 1;

    /* else the last chunk to empty frees the arena */
    if (a->nchunks == 0) {
        free(a);
    }
}


void *
capture_blocks_resize(void *arena, void *p, size_t size)
{
    void             *n;
    size_t            end;
    capture_block_t  *b;
    capture_chunk_t  *c;

    if (p == NULL) {
        return capture_blocks_alloc(arena, size);
    }

    b = (capture_block_t *) ((char *) p - CAPTURE_BLOCK_HEAD);
    c = b->chunk;

    /* the newest block of the current chunk moves its end only */
    if (c == c->owner->current && size <= c->size
        && (char *) b == capture_chunk_data(c) + c->last)
    {
        end = c->last + CAPTURE_BLOCK_HEAD + capture_blocks_round(size);

        if (end <= c->size) {
            c->used = end;
            b->size = size;
            return p;
        }
    }

    n = capture_blocks_alloc(arena, size);
    if (n == NULL) {
        return NULL;
    }

    memcpy(n, p, b->size < size ? b->size : size);
    capture_blocks_free(arena, p);

    return n;
}


void
capture_blocks_free(void *arena, void *p)
{
    capture_block_t  *b;
    capture_chunk_t  *c;

    b = (capture_block_t *) ((char *) p - CAPTURE_BLOCK_HEAD);
    c = b->chunk;

    if (--c->refs == 0) {
        capture_blocks_release(c);
    }
}


static void *
capture_blocks_alloc(capture_blocks_t *a, size_t size)
{
    size_t            need;
    capture_chunk_t  *c;
    capture_block_t  *b;

    need = CAPTURE_BLOCK_HEAD + capture_blocks_round(size);

    if (need < size || need > a->size / 4) {
        /* a large block gets a chunk of its own, freed with it */
        if (need < size || CAPTURE_CHUNK_HEAD + need < need) {
            return NULL;
        }

        c = malloc(CAPTURE_CHUNK_HEAD + need);
        if (c == NULL) {
            return NULL;
        }

        c->owner = a;
        c->next = NULL;
        c->size = need;
        c->used = need;
        c->last = 0;
        c->refs = 1;
        c->dedicated = 1;

    } else {
        c = a->current;

        if (c == NULL || c->used + need > c->size) {
            c = capture_blocks_chunk(a);
            if (c == NULL) {
                return NULL;
            }
        }

        c->last = c->used;
        c->used += need;
        c->refs++;
    }

    b = (capture_block_t *) (capture_chunk_data(c) + c->last);
    b->chunk = c;
    b->size = size;

    return (char *) b + CAPTURE_BLOCK_HEAD;
}


/* a fresh current chunk; the old one is freed with its last block */

static capture_chunk_t *
capture_blocks_chunk(capture_blocks_t *a)
{
    capture_chunk_t  *c, *old;

    if (a->free) {
        c = a->free;
        a->free = c->next;
        a->nfree--;

    } else {
        c = malloc(CAPTURE_CHUNK_HEAD + a->size);
        if (c == NULL) {
            return NULL;
        }

        c->owner = a;
        c->size = a->size;
        c->refs = 0;
        c->dedicated = 0;
        a->nchunks++;
    }

    c->next = NULL;
    c->used = 0;
    c->last = 0;

    old = a->current;
    a->current = c;

    /* an emptied current chunk was kept as current: not any more */
    if (old && old->refs == 0) {
        capture_blocks_release(old);
    }

    return c;
}


static void
capture_blocks_release(capture_chunk_t *c)
{
    capture_blocks_t  *a;

    if (c->dedicated) {
        free(c);
        return;
    }

    a = c->owner;

    if (c == a->current) {
        /* reused from its start by the next block */
        c->used = 0;
        c->last = 0;
        return;
    }

    if (!a->gone && a->nfree < a->keep) {
        c->next = a->free;
        a->free = c;
        a->nfree++;
        return;
    }

    free(c);
    a->nchunks--;

    if (a->gone && a->nchunks == 0) {
        free(a);
    }
}
