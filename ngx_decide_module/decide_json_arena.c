/*
 * Copyright (C) edgehog
 */


#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <jansson.h>

#include "decide_json_arena.h"


/*
 * Under AddressSanitizer (unit tests, fuzzers) a slot is poisoned while
 * free and each allocation unpoisoned as it is made, so a use of body
 * memory after its request ended is caught like a use after free().
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DECIDE_JSON_ARENA_ASAN  1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(DECIDE_JSON_ARENA_ASAN)
#define DECIDE_JSON_ARENA_ASAN  1
#endif

#ifdef DECIDE_JSON_ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define decide_json_arena_poison(p, n)    ASAN_POISON_MEMORY_REGION(p, n)
#define decide_json_arena_unpoison(p, n)  ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define decide_json_arena_poison(p, n)
#define decide_json_arena_unpoison(p, n)
#endif


static void *decide_json_arena_malloc(size_t size);
static void decide_json_arena_free(void *p);


/*
 * One region of address space for all slots, so that a free can tell
 * slot memory from malloc() memory by its address alone.  Slots are
 * taken and released by one thread (the nginx worker's); the region
 * bounds never change after init.
 */
static unsigned char  *decide_json_arena_base;
static size_t          decide_json_arena_size;
static size_t          decide_json_arena_slot;
static uint32_t       *decide_json_arena_free_slots;
static size_t          decide_json_arena_nfree;

/* the arena jansson allocates from on this thread, if any */
static __thread decide_json_arena_t  *decide_json_arena_cur;


int
decide_json_arena_init(size_t nslots, size_t slot_size)
{
    size_t  i;
    void   *p;

    if (decide_json_arena_base != NULL) {
        return 0;
    }

    /* 16-byte steps keep every allocation aligned like malloc()'s */
    slot_size = (slot_size + 15) & ~(size_t) 15;

    if (nslots == 0 || slot_size == 0 || nslots > UINT32_MAX
        || nslots > SIZE_MAX / slot_size)
    {
        return -1;
    }

    decide_json_arena_free_slots = malloc(nslots * sizeof(uint32_t));
    if (decide_json_arena_free_slots == NULL) {
        return -1;
    }

    /* address space only: a slot's pages appear as requests use them */
    p = mmap(NULL, nslots * slot_size, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (p == MAP_FAILED) {
        free(decide_json_arena_free_slots);
        decide_json_arena_free_slots = NULL;
        return -1;
    }

    /* the lowest slots on top: the same few stay warm in the cache */
    for (i = 0; i < nslots; i++) {
        decide_json_arena_free_slots[i] = (uint32_t) (nslots - 1 - i);
    }

    decide_json_arena_poison(p, nslots * slot_size);

    decide_json_arena_nfree = nslots;
    decide_json_arena_slot = slot_size;
    decide_json_arena_size = nslots * slot_size;
    decide_json_arena_base = p;

    json_set_alloc_funcs(decide_json_arena_malloc, decide_json_arena_free);

    return 0;
}


void
decide_json_arena_take(decide_json_arena_t *a)
{
    uint32_t  i;

    a->spilled = 0;

    if (decide_json_arena_nfree == 0) {
        a->start = NULL;
        a->pos = NULL;
        a->end = NULL;
        return;
    }

    i = decide_json_arena_free_slots[--decide_json_arena_nfree];

    a->start = decide_json_arena_base + (size_t) i * decide_json_arena_slot;
    a->pos = a->start;
    a->end = a->start + decide_json_arena_slot;
}


void
decide_json_arena_release(decide_json_arena_t *a)
{
    if (a->start == NULL) {
        return;
    }

    decide_json_arena_poison(a->start, decide_json_arena_slot);

    decide_json_arena_free_slots[decide_json_arena_nfree++] =
        (uint32_t) ((size_t) (a->start - decide_json_arena_base)
                    / decide_json_arena_slot);

    a->start = NULL;
    a->pos = NULL;
    a->end = NULL;
}


void
decide_json_arena_begin(decide_json_arena_t *a)
{
    decide_json_arena_cur = (a->start != NULL) ? a : NULL;
}


void
decide_json_arena_end(void)
{
    decide_json_arena_cur = NULL;
}


static void *
decide_json_arena_malloc(size_t size)
{
    void                 *p;
    decide_json_arena_t  *a;

    a = decide_json_arena_cur;

    if (a != NULL) {
        size = (size + 15) & ~(size_t) 15;

        if (size != 0 && (size_t) (a->end - a->pos) >= size) {
            p = a->pos;
            a->pos += size;
            decide_json_arena_unpoison(p, size);
            return p;
        }

        a->spilled = 1;
    }

    return malloc(size);
}


static void
decide_json_arena_free(void *p)
{
    /* slot memory goes back with its slot, all at once */
    if ((uintptr_t) p - (uintptr_t) decide_json_arena_base
        < decide_json_arena_size)
    {
        return;
    }

    free(p);
}
