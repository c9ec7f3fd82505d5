/*
 * Copyright (C) edgehog
 */

/*
 * Incremental gzip/zlib decompression of a request body (spec/nginx.md
 * §3.2), fed chunk by chunk.  The output grows geometrically up to a
 * cap; one byte more is a distinct "too large" result, so a
 * decompression bomb costs at most about twice the cap in memory.
 *
 * Member rules: concatenated gzip (or zlib) members are decoded one after
 * the other, as gzip(1) does.  After a complete member, zero bytes are
 * skipped as padding (what tape-era tools append); any other byte starts
 * a new member, which must then be valid, so trailing garbage is an
 * error rather than silently dropped.  Once zero padding began, nothing
 * else may follow.
 */

#ifndef _CAPTURE_INFLATE_H_INCLUDED_
#define _CAPTURE_INFLATE_H_INCLUDED_


#include <stddef.h>
#include <sys/types.h>

#include "capture_alloc.h"


#define CAPTURE_INFLATE_OK         0
/* corrupt or truncated stream, trailing garbage */
#define CAPTURE_INFLATE_ERROR     -1
/* the output would exceed max_size */
#define CAPTURE_INFLATE_TOO_LARGE -2
#define CAPTURE_INFLATE_NOMEM     -3


typedef struct capture_inflate_s  capture_inflate_t;


/*
 * a is copied; its functions are also given to zlib.  size_hint (e.g.
 * the compressed length times four) sizes the first output buffer.
 * Returns NULL on allocation or inflateInit2() failure.
 */
capture_inflate_t *capture_inflate_create(const capture_alloc_t *a,
    size_t max_size, size_t size_hint);

/* consumes the whole chunk; after an error every later call fails too */
int capture_inflate_feed(capture_inflate_t *ci, const u_char *p,
    size_t len);

/* end of input: CAPTURE_INFLATE_ERROR unless the last member was complete */
int capture_inflate_finish(capture_inflate_t *ci);

/* the output so far, NUL-terminated (the NUL is not counted in *len) */
u_char *capture_inflate_data(capture_inflate_t *ci, size_t *len);

/* zlib's message for the last error, or a static description */
const char *capture_inflate_strerror(capture_inflate_t *ci);

/* runs inflateEnd() and frees everything (not the data with a pool) */
void capture_inflate_destroy(capture_inflate_t *ci);


#endif /* _CAPTURE_INFLATE_H_INCLUDED_ */
