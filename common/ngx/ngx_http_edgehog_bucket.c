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


ngx_int_t
ngx_http_edgehog_shm_init(ngx_shm_zone_t *zone, void *data, size_t size,
    size_t mutex_off, size_t lock_off)
{
    u_char           *shm;
    ngx_slab_pool_t  *shpool;

    if (data) {
        /* reload: what the zone holds carries on */
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    shm = ngx_slab_calloc(shpool, size);
    if (shm == NULL) {
        return NGX_ERROR;
    }

    if (ngx_shmtx_create((ngx_shmtx_t *) (shm + mutex_off),
                         (ngx_shmtx_sh_t *) (shm + lock_off), NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    shpool->data = shm;
    zone->data = shm;

    return NGX_OK;
}
