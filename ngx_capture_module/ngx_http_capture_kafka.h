/*
 * Copyright (C) edgehog
 */


#ifndef _NGX_HTTP_CAPTURE_KAFKA_H_INCLUDED_
#define _NGX_HTTP_CAPTURE_KAFKA_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_capture_module.h"
#include "capture_event.h"


/*
 * A waiter lives outside r->pool: delivery reports may arrive after the
 * request is gone (client abort, ack timeout), and librdkafka keeps the
 * pointer as msg_opaque until then.
 */
typedef struct ngx_http_capture_waiter_s  ngx_http_capture_waiter_t;

typedef void (*ngx_http_capture_done_pt)(ngx_http_request_t *r,
    ngx_int_t status);

struct ngx_http_capture_waiter_s {
    ngx_http_request_t            *r;      /* NULL once the request is gone */
    ngx_http_capture_done_pt       done;
    /* in its ack queue while waiting, else in the free list */
    ngx_queue_t                    queue;
    ngx_http_capture_ack_queue_t  *ack;    /* NULL: not in an ack queue */
    ngx_msec_t                     deadline;
    ngx_msec_t                     start;
    ngx_uint_t                     pending;
    unsigned                       failed:1;
    unsigned                       answered:1;
};


/*
 * The waiters of one capture_ack_timeout value in the order they came,
 * so also in the order of their deadlines: one timer serves them all,
 * armed for the first (ngx_current_msec never goes back)
 */
struct ngx_http_capture_ack_queue_s {
    ngx_msec_t                  timeout;
    ngx_queue_t                 waiters;
    ngx_event_t                 timer;
};


ngx_int_t ngx_http_capture_kafka_init_process(ngx_cycle_t *cycle,
    ngx_http_capture_main_conf_t *mcf);
void ngx_http_capture_kafka_exit_process(ngx_cycle_t *cycle,
    ngx_http_capture_main_conf_t *mcf);
char *ngx_http_capture_kafka_check_option(ngx_conf_t *cf, ngx_str_t *key,
    ngx_str_t *value);

/*
 * Produces every message of a request; calls done() once with 200 or
 * 503, right away in enqueue mode or after the delivery reports.
 * Returns NGX_DONE when done() will be called later.
 */
ngx_int_t ngx_http_capture_kafka_produce(ngx_http_request_t *r,
    capture_msg_t *msgs, ngx_uint_t n, ngx_http_capture_done_pt done);


#endif /* _NGX_HTTP_CAPTURE_KAFKA_H_INCLUDED_ */
