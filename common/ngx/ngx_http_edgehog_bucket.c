/*
 * Copyright (C) edgehog
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_edgehog_bucket.h"


ngx_int_t
ngx_http_edgehog_bucket_take(ngx_shmtx_t *mutex,
    ngx_http_edgehog_bucket_t *buckets, ngx_uint_t slots, u_char *key,
    size_t len, ngx_uint_t rate, ngx_uint_t burst)
{
    int64_t                     cap, tokens;
    uint64_t                    hash;
    ngx_int_t                   rc;
    ngx_msec_t                  now;
    ngx_http_edgehog_bucket_t  *b;

    /* 64 bits: two keys sharing a slot are told apart */
    hash = ((uint64_t) ngx_murmur_hash2(key, len) << 32)
           | ngx_crc32_long(key, len);

    b = &buckets[hash % slots];
    cap = (int64_t) burst * 1000;
    now = ngx_current_msec;

    ngx_shmtx_lock(mutex);

    if (b->hash != hash) {
        /* a new key (or a colliding one) starts with a full bucket */
        b->hash = hash;
        b->tokens = cap;
        b->last = now;
    }

    tokens = b->tokens + (int64_t) (now - b->last) * (int64_t) rate;
    b->last = now;

    if (tokens > cap) {
        tokens = cap;
    }

    if (tokens >= 1000) {
        tokens -= 1000;
        rc = NGX_OK;

    } else {
        rc = NGX_DECLINED;
    }

    b->tokens = tokens;

    ngx_shmtx_unlock(mutex);

    return rc;
}
