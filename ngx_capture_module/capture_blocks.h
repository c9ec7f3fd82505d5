/*
 * Copyright (C) edgehog
 */

/*
 * Where the message blocks of an nginx worker live while librdkafka holds
 * them: bump-allocated in chunks, released one by one from the delivery
 * report.  A batch's blocks then sit together and cost no malloc() each;
 * see capture_blocks.c for why glibc's heap did badly with them.
 */

#ifndef _CAPTURE_BLOCKS_H_INCLUDED_
#define _CAPTURE_BLOCKS_H_INCLUDED_


#include <stddef.h>


typedef struct capture_blocks_s  capture_blocks_t;


/*
 * chunk: bytes per chunk (blocks above a quarter of it get their own);
 * keep: empty chunks kept for reuse.  NULL when out of memory.
 */
capture_blocks_t *capture_blocks_create(size_t chunk, size_t keep);

/*
 * frees the kept chunks and marks the arena gone: chunks with live blocks
 * are freed when their last block is (or never, at exit)
 */
void capture_blocks_destroy(capture_blocks_t *a);

/* realloc() semantics: p NULL allocates; NULL when out of memory */
void *capture_blocks_resize(void *a, void *p, size_t size);

/* a is unused: a block knows its chunk; never from another thread */
void capture_blocks_free(void *a, void *p);


#endif /* _CAPTURE_BLOCKS_H_INCLUDED_ */
