/*
 * Copyright (C) edgehog
 */

/*
 * Token buckets in shared memory, one table per limit, shared by all
 * workers (capture's overflow routing, decide's rate limits), and the
 * zones that hold them.
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


/*
 * The init of a zone holding one zeroed struct of size bytes (kept across
 * reloads) whose ngx_shmtx_t and ngx_shmtx_sh_t sit at mutex_off and
 * lock_off.
 */
ngx_int_t ngx_http_edgehog_shm_init(ngx_shm_zone_t *zone, void *data,
    size_t size, size_t mutex_off, size_t lock_off);


#endif /* _NGX_HTTP_EDGEHOG_BUCKET_H_INCLUDED_ */
