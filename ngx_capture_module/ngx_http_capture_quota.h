/*
 * Copyright (C) edgehog
 */


#ifndef _NGX_HTTP_CAPTURE_QUOTA_H_INCLUDED_
#define _NGX_HTTP_CAPTURE_QUOTA_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "capture_event.h"


#define NGX_HTTP_CAPTURE_QUOTA_RESOURCES  4


typedef struct {
    /* configuration */
    ngx_addr_t                  addr;
    ngx_str_t                   prefix;
    ngx_msec_t                  interval;

    /* per process */
    ngx_log_t                  *log;
    ngx_event_t                 timer;
    ngx_peer_connection_t       pc;
    ngx_str_t                   out;
    size_t                      sent;
    ngx_buf_t                  *in;
    ngx_pool_t                 *next;
    ngx_array_t                 next_sets[NGX_HTTP_CAPTURE_QUOTA_RESOURCES];
    /* the current sets, of ngx_str_t, allocated from pool */
    ngx_pool_t                 *pool;
    ngx_array_t                 sets[NGX_HTTP_CAPTURE_QUOTA_RESOURCES];
    ngx_uint_t                  loaded;
    char                        tmp[NGX_TIME_T_LEN + 1];
} ngx_http_capture_quota_t;


ngx_int_t ngx_http_capture_quota_init_process(ngx_cycle_t *cycle,
    ngx_http_capture_quota_t *q);
void ngx_http_capture_quota_exit_process(ngx_http_capture_quota_t *q);
ngx_int_t ngx_http_capture_quota_limited(ngx_http_capture_quota_t *q,
    const capture_msg_t *m);


#endif /* _NGX_HTTP_CAPTURE_QUOTA_H_INCLUDED_ */
