/*
 * Copyright (C) edgehog
 */

/*
 * Request payload decoding of spec/capture.md §2.2-§2.8: choosing the
 * raw payload, whole-payload base64, form bodies, the compression hint,
 * gzip, LZ-string, the size cap and the post-decode base64 unwrap.  Pure
 * C; buffers come from the caller's allocator.
 */

#ifndef _CAPTURE_DECODE_H_INCLUDED_
#define _CAPTURE_DECODE_H_INCLUDED_


#include <stddef.h>
#include <sys/types.h>

#include "capture_alloc.h"
#include "capture_event.h"


typedef struct {
    /* query data=, already percent-decoded; NULL or empty: absent */
    const u_char               *query_data;
    size_t                      query_data_len;
    const u_char               *body;
    size_t                      body_len;
    /* header values, NULL when absent */
    const u_char               *content_type;
    size_t                      content_type_len;
    const u_char               *content_encoding;
    size_t                      content_encoding_len;
    /* query compression=, raw */
    const u_char               *query_compression;
    size_t                      query_compression_len;
    size_t                      max_size;
    const capture_alloc_t      *alloc;
    unsigned                    legacy:1;   /* /e, /capture, /track, ... */
    unsigned                    strict:1;   /* capture_compat strict */
    /*
     * a payload that needs no decoding may be returned in place: the
     * text is then the input itself, read-only and not NUL-terminated
     */
    unsigned                    borrow:1;
} capture_decode_in_t;


/* the compression hints of §2.5 */
#define CAPTURE_HINT_NONE    0
#define CAPTURE_HINT_GZIP    1
#define CAPTURE_HINT_LZ64    2
#define CAPTURE_HINT_BASE64  3


int capture_decode_hint(const u_char *p, size_t len);

/* 1 for the legacy paths of §2.8 */
int capture_decode_path_is_legacy(const u_char *p, size_t len);

/*
 * 0 and the decoded text in *out (NUL-terminated, from in->alloc, unless
 * in->borrow returned the input), or -1 and *err filled.
 */
int capture_decode(const capture_decode_in_t *in, u_char **out,
    size_t *out_len, capture_error_t *err);


#endif /* _CAPTURE_DECODE_H_INCLUDED_ */
