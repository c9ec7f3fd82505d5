/*
 * Copyright (C) edgehog
 */

/*
 * The allocator the pure-C decoders take from their caller: nginx wires
 * it to r->pool (free is then a no-op), unit tests and fuzzers to malloc.
 */

#ifndef _CAPTURE_ALLOC_H_INCLUDED_
#define _CAPTURE_ALLOC_H_INCLUDED_


#include <stddef.h>


typedef struct {
    /* returns NULL on failure; alignment as malloc() */
    void    *(*alloc)(void *ctx, size_t size);
    /* may be a no-op (pool allocators); called with NULL never */
    void     (*free)(void *ctx, void *p);
    void      *ctx;
} capture_alloc_t;


#endif /* _CAPTURE_ALLOC_H_INCLUDED_ */
