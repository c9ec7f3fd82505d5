/*
 * Copyright (C) edgehog
 */


#ifndef _NGX_HTTP_CAPTURE_METRICS_H_INCLUDED_
#define _NGX_HTTP_CAPTURE_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_edgehog_bucket.h"


#define NGX_HTTP_CAPTURE_ROUTES     7
#define NGX_HTTP_CAPTURE_STATUSES   9
#define NGX_HTTP_CAPTURE_CAUSES     6
#define NGX_HTTP_CAPTURE_BUCKETS    10
#define NGX_HTTP_CAPTURE_WORKERS    64

/* drop causes */
#define NGX_HTTP_CAPTURE_DROP_PERFORMANCE  0
#define NGX_HTTP_CAPTURE_DROP_QUOTA        1
#define NGX_HTTP_CAPTURE_DROP_DROPPER      2
#define NGX_HTTP_CAPTURE_DROP_REJECTED     3
#define NGX_HTTP_CAPTURE_DROP_KAFKA        4
#define NGX_HTTP_CAPTURE_DROP_RESTRICTED   5

/* overflow buckets: an open table, collisions share a bucket */
#define NGX_HTTP_CAPTURE_OVERFLOW_SLOTS  65536


/* one per nginx instance, in shared memory: workers add atomically */
typedef struct {
    ngx_atomic_t                requests[NGX_HTTP_CAPTURE_ROUTES]
                                        [NGX_HTTP_CAPTURE_STATUSES];
    ngx_atomic_t                events_received;
    ngx_atomic_t                events_ingested;
    ngx_atomic_t                dropped[NGX_HTTP_CAPTURE_CAUSES];
    ngx_atomic_t                overflow[2];      /* rate, forced */
    ngx_atomic_t                bytes_in;
    ngx_atomic_t                bytes_decoded;
    ngx_atomic_t                latency[NGX_HTTP_CAPTURE_BUCKETS + 1];
    ngx_atomic_t                latency_sum_ms;
    ngx_atomic_t                delivery_errors;
    ngx_atomic_t                queue_depth[NGX_HTTP_CAPTURE_WORKERS];
    ngx_atomic_t                quota_tokens;
    ngx_shmtx_sh_t              lock;
    ngx_shmtx_t                 mutex;
    ngx_http_edgehog_bucket_t   buckets[NGX_HTTP_CAPTURE_OVERFLOW_SLOTS];
} ngx_http_capture_shm_t;


ngx_int_t ngx_http_capture_metrics_init_zone(ngx_shm_zone_t *zone,
    void *data);
ngx_int_t ngx_http_capture_metrics_log(ngx_http_request_t *r);
ngx_int_t ngx_http_capture_metrics_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_capture_health_handler(ngx_http_request_t *r);
void ngx_http_capture_metrics_add(ngx_http_request_t *r, ngx_atomic_t *a,
    ngx_atomic_int_t n);
ngx_http_capture_shm_t *ngx_http_capture_shm(ngx_http_request_t *r);
void ngx_http_capture_metrics_latency(ngx_http_capture_shm_t *shm,
    ngx_msec_t ms);


#endif /* _NGX_HTTP_CAPTURE_METRICS_H_INCLUDED_ */
