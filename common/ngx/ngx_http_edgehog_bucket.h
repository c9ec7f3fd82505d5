/*
 * Copyright (C) edgehog
 */

/*
 * Token buckets in shared memory, one table per limit, shared by all
 * workers: capture's overflow routing and decide's rate limits.
 */

#ifndef _NGX_HTTP_EDGEHOG_BUCKET_H_INCLUDED_
#define _NGX_HTTP_EDGEHOG_BUCKET_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef struct {
    uint64_t                    hash;
    /* tokens in thousandths, refilled lazily */
    int64_t                     tokens;
    ngx_msec_t                  last;
} ngx_http_edgehog_bucket_t;


/*
 * Takes one token from the bucket of key (rate tokens per second, burst
 * capacity); an open table of slots buckets, so colliding keys share
 * one.  NGX_OK taken, NGX_DECLINED empty.
 */
ngx_int_t ngx_http_edgehog_bucket_take(ngx_shmtx_t *mutex,
    ngx_http_edgehog_bucket_t *buckets, ngx_uint_t slots, u_char *key,
    size_t len, ngx_uint_t rate, ngx_uint_t burst);


#endif /* _NGX_HTTP_EDGEHOG_BUCKET_H_INCLUDED_ */
