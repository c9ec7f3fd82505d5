/*
 * Copyright (C) edgehog
 */

/*
 * jansson allocations of one request body from a block of its own
 * instead of ~20 malloc() and free() calls: the decoded tree of a
 * /flags body (objects, hashtables, strings) lives in one arena slot
 * taken for the request and handed back when it ends.  jansson frees
 * of slot memory do nothing; whatever does not fit, or is allocated
 * outside a decode, is plain malloc() memory.  Pure C, no nginx headers.
 */

#ifndef _DECIDE_JSON_ARENA_H_INCLUDED_
#define _DECIDE_JSON_ARENA_H_INCLUDED_


#include <stddef.h>


typedef struct {
    unsigned char  *start;              /* NULL: no slot */
    unsigned char  *pos;
    unsigned char  *end;
    unsigned        spilled:1;          /* some went to malloc() */
} decide_json_arena_t;


/*
 * Reserves nslots slots of slot_size bytes (address space only) and
 * routes jansson's allocations through the arena; once per process,
 * before any decide_json_arena_take().  -1: no arena (plain malloc).
 */
int decide_json_arena_init(size_t nslots, size_t slot_size);

/* a free slot for a, or a->start == NULL when none is left */
void decide_json_arena_take(decide_json_arena_t *a);

/* the slot of a back; its memory must no longer be referenced */
void decide_json_arena_release(decide_json_arena_t *a);

/*
 * Between begin and end, jansson allocations of the calling thread come
 * from a (other threads keep using malloc()).
 */
void decide_json_arena_begin(decide_json_arena_t *a);
void decide_json_arena_end(void);


#endif /* _DECIDE_JSON_ARENA_H_INCLUDED_ */
