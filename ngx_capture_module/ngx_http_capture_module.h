/*
 * Copyright (C) edgehog
 */


#ifndef _NGX_HTTP_CAPTURE_MODULE_H_INCLUDED_
#define _NGX_HTTP_CAPTURE_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <librdkafka/rdkafka.h>
#include "capture_blocks.h"
#include "capture_event.h"
#include "ngx_http_capture_quota.h"


#define NGX_HTTP_CAPTURE_ACK_ENQUEUE   0
#define NGX_HTTP_CAPTURE_ACK_DELIVERY  1

/* main, historical, exceptions, heatmaps, warnings, overflow, dlq */
#define NGX_HTTP_CAPTURE_TOPICS        CAPTURE_TOPIC_N


typedef struct {
    ngx_str_t                   name;
    rd_kafka_topic_t           *rkt;
} ngx_http_capture_topic_t;


typedef struct ngx_http_capture_restriction_s
    ngx_http_capture_restriction_t;

typedef struct ngx_http_capture_ack_queue_s  ngx_http_capture_ack_queue_t;


typedef struct {
    ngx_flag_t                  enabled;      /* some location captures */
    ngx_str_t                   brokers;
    ngx_array_t                *options;      /* of ngx_keyval_t */
    ngx_msec_t                  flush_timeout;

    /* per-process state, set in init_process */
    rd_kafka_t                 *rk;
    ngx_array_t                 topics;       /* of ngx_http_capture_topic_t */
    ngx_connection_t           *notify;
    ngx_fd_t                    notify_wfd;
    ngx_event_t                 poll_timer;
    ngx_log_t                  *log;
    ngx_uint_t                  delivery_errors;
    time_t                      last_error_log;
    /* of ngx_http_capture_ack_queue_t *, one per ack timeout in use */
    ngx_array_t                 ack_queues;
    /* waiters to reuse: one per request with capture_ack delivery */
    ngx_queue_t                 free_waiters;
    /* message blocks, freed by the delivery reports (capture_blocks.c) */
    capture_blocks_t           *blocks;
    capture_msg_alloc_t         msg_alloc;

    ngx_shm_zone_t             *shm_zone;
    /* NULL unless capture_quota_redis is set */
    ngx_http_capture_quota_t   *quota;
    ngx_msec_t                  quota_interval;
    /* liveness: when some broker was last seen up (statistics) */
    time_t                      broker_up;
    time_t                      liveness_timeout;
} ngx_http_capture_main_conf_t;


typedef struct {
    ngx_flag_t                  enable;
    /* indexed by capture_topic_e */
    ngx_str_t                   topics[NGX_HTTP_CAPTURE_TOPICS];
    ngx_uint_t                  ack;
    ngx_msec_t                  ack_timeout;
    ngx_uint_t                  strict;
    /* a GET may name its token in the query (§3.1, Django) */
    ngx_flag_t                  query_token;
    size_t                      max_decompressed_size;
    size_t                      max_message_size;
    ngx_flag_t                  test_clock;
    ngx_uint_t                  health;       /* 0, liveness, readiness */
    ngx_flag_t                  metrics;
    /* overflow: per second, burst; 0 disables */
    ngx_uint_t                  overflow_rate;
    ngx_uint_t                  overflow_burst;
    ngx_array_t                *overflow_force;   /* of ngx_str_t */
    ngx_array_t                *dropper;          /* of ngx_str_t */
    /* of ngx_http_capture_restriction_t (§7.5) */
    ngx_array_t                *restrictions;
    /* client_max_body_size, enforced here to answer in JSON */
    off_t                       max_body_size;
} ngx_http_capture_loc_conf_t;


/* only for a body that is still being read */
typedef struct {
    /* nginx's own body reader, which the timeout check wraps */
    ngx_http_event_handler_pt   read_body;
} ngx_http_capture_ctx_t;


void ngx_http_capture_body_process(ngx_http_request_t *r);
void ngx_http_capture_done(ngx_http_request_t *r, ngx_int_t status);
/* NGX_ERROR when out of memory */
ngx_int_t ngx_http_capture_limits_apply(ngx_http_request_t *r,
    capture_msg_t *msgs, ngx_uint_t n);
char *ngx_http_capture_restriction(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_capture_restrict(ngx_http_request_t *r,
    ngx_http_capture_loc_conf_t *lcf, capture_msg_t *msg);


extern ngx_module_t  ngx_http_capture_module;


#endif /* _NGX_HTTP_CAPTURE_MODULE_H_INCLUDED_ */
