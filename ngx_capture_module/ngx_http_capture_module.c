/*
 * Copyright (C) edgehog
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_capture_module.h"
#include "ngx_http_capture_kafka.h"
#include "ngx_http_edgehog_response.h"
#include "ngx_http_capture_metrics.h"
#include "capture_event.h"


static ngx_int_t ngx_http_capture_handler(ngx_http_request_t *r);
static void ngx_http_capture_body_handler(ngx_http_request_t *r);
static void ngx_http_capture_read_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_capture_too_large(ngx_http_request_t *r);
static void *ngx_http_capture_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_capture_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_capture_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_capture_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_capture(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_capture_kafka_option(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_capture_health(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_capture_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_capture_list(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_capture_quota_redis(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_capture_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_capture_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_capture_init_process(ngx_cycle_t *cycle);
static void ngx_http_capture_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_capture_ack[] = {
    { ngx_string("enqueue"), NGX_HTTP_CAPTURE_ACK_ENQUEUE },
    { ngx_string("delivery"), NGX_HTTP_CAPTURE_ACK_DELIVERY },
    { ngx_null_string, 0 }
};


/* the filter chain idiom of nginx: the one unavoidable static */
static ngx_http_request_body_filter_pt  ngx_http_next_request_body_filter;


static ngx_conf_enum_t  ngx_http_capture_health_kinds[] = {
    { ngx_string("liveness"), 1 },
    { ngx_string("readiness"), 2 },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_capture_compat[] = {
    { ngx_string("lenient"), 0 },
    { ngx_string("strict"), 1 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_capture_commands[] = {

    { ngx_string("capture"),
      NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_capture,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, enable),
      NULL },

    { ngx_string("capture_kafka_brokers"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_capture_main_conf_t, brokers),
      NULL },

    { ngx_string("capture_kafka_option"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_capture_kafka_option,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("capture_kafka_flush_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_capture_main_conf_t, flush_timeout),
      NULL },

    { ngx_string("capture_kafka_topic"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, topics[CAPTURE_TOPIC_MAIN]),
      NULL },

    { ngx_string("capture_kafka_topic_historical"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t,
               topics[CAPTURE_TOPIC_HISTORICAL]),
      NULL },

    { ngx_string("capture_kafka_topic_exceptions"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t,
               topics[CAPTURE_TOPIC_EXCEPTIONS]),
      NULL },

    { ngx_string("capture_kafka_topic_heatmaps"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, topics[CAPTURE_TOPIC_HEATMAPS]),
      NULL },

    { ngx_string("capture_kafka_topic_client_warnings"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, topics[CAPTURE_TOPIC_WARNINGS]),
      NULL },

    { ngx_string("capture_kafka_topic_overflow"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, topics[CAPTURE_TOPIC_OVERFLOW]),
      NULL },

    { ngx_string("capture_kafka_topic_dlq"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, topics[CAPTURE_TOPIC_DLQ]),
      NULL },

    { ngx_string("capture_compat"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, strict),
      &ngx_http_capture_compat },

    { ngx_string("capture_max_decompressed_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, max_decompressed_size),
      NULL },

    { ngx_string("capture_max_message_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, max_message_size),
      NULL },

    { ngx_string("capture_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_capture_health,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, health),
      &ngx_http_capture_health_kinds },

    { ngx_string("capture_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_capture_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, metrics),
      NULL },

    { ngx_string("capture_liveness_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_capture_main_conf_t, liveness_timeout),
      NULL },

    { ngx_string("capture_quota_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_capture_quota_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("capture_quota_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_capture_main_conf_t, quota_interval),
      NULL },

    { ngx_string("capture_overflow_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, overflow_rate),
      NULL },

    { ngx_string("capture_overflow_burst"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, overflow_burst),
      NULL },

    { ngx_string("capture_overflow_force"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_capture_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, overflow_force),
      NULL },

    { ngx_string("capture_query_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, query_token),
      NULL },

    { ngx_string("capture_event_restriction"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_capture_restriction,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("capture_drop_events"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_capture_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, dropper),
      NULL },

    /* pins "now" from X-Capture-Test-Now: for tests only, never in prod */
    { ngx_string("capture_test_clock"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, test_clock),
      NULL },

    { ngx_string("capture_ack"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, ack),
      &ngx_http_capture_ack },

    { ngx_string("capture_ack_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_capture_loc_conf_t, ack_timeout),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_capture_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_capture_postconfiguration,    /* postconfiguration */

    ngx_http_capture_create_main_conf,     /* create main configuration */
    ngx_http_capture_init_main_conf,       /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_capture_create_loc_conf,      /* create location configuration */
    ngx_http_capture_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_capture_module = {
    NGX_MODULE_V1,
    &ngx_http_capture_module_ctx,          /* module context */
    ngx_http_capture_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_capture_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_capture_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_capture_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_http_capture_ctx_t       *ctx;
    ngx_http_capture_loc_conf_t  *lcf;

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_http_edgehog_preflight(r);
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_edgehog_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                           "method_not_allowed",
                                           "method not allowed");
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_capture_module);

    if (lcf->max_body_size
        && r->headers_in.content_length_n > lcf->max_body_size)
    {
        return ngx_http_capture_too_large(r);
    }

    /* the body stays in memory when client_body_buffer_size allows */
    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_capture_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    /*
     * nginx answers a body read timeout by closing the connection; the
     * reader is wrapped so the SDK gets a JSON 408 instead (DESIGN.md)
     */
    if (rc == NGX_AGAIN && r->read_event_handler != ngx_http_block_reading) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_capture_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->read_body = r->read_event_handler;
        ngx_http_set_ctx(r, ctx, ngx_http_capture_module);

        r->read_event_handler = ngx_http_capture_read_body;
    }

    return NGX_DONE;
}


static void
ngx_http_capture_read_body(ngx_http_request_t *r)
{
    ngx_int_t                rc;
    ngx_event_t             *rev;
    ngx_http_capture_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_capture_module);
    rev = r->connection->read;

    if (!rev->timedout) {
        ctx->read_body(r);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, NGX_ETIMEDOUT,
                  "capture: client timed out sending the body");

    /*
     * the rest of the body is never read: no keepalive, and the lingering
     * close that nginx runs for a body still being read must not see the
     * timeout as its own
     */
    rev->timedout = 0;
    r->keepalive = 0;

    if (rev->timer_set) {
        ngx_del_timer(rev);
    }

    r->read_event_handler = ngx_http_block_reading;

    rc = ngx_http_edgehog_send_error(r, NGX_HTTP_REQUEST_TIME_OUT, "timeout",
                                     "client stopped sending data");

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_capture_body_handler(ngx_http_request_t *r)
{
    ngx_http_capture_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_capture_module);

    /* a chunked body has no length up front: checked once read */
    if (lcf->max_body_size
        && r->headers_in.content_length_n > lcf->max_body_size)
    {
        ngx_http_finalize_request(r, ngx_http_edgehog_send_error(r,
                                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "payload_too_large",
                                  "maximum event size exceeded: request "
                                  "body too large"));
        return;
    }

    ngx_http_capture_body_process(r);
}


static ngx_int_t
ngx_http_capture_too_large(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    /* the client gets the status, not a reset: the body is drained */
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_edgehog_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "payload_too_large",
                                       "maximum event size exceeded: "
                                       "request body too large");
}


void
ngx_http_capture_done(ngx_http_request_t *r, ngx_int_t status)
{
    ngx_int_t  rc;
    ngx_str_t  body, type;

    if (status == NGX_HTTP_OK) {
        if (ngx_http_arg(r, (u_char *) "beacon", 6, &body) == NGX_OK
            && body.len == 1 && body.data[0] == '1')
        {
            rc = ngx_http_edgehog_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL);
            ngx_http_finalize_request(r, rc);
            return;
        }

        ngx_str_set(&type, "application/json");
        ngx_str_set(&body, "{\"status\":\"Ok\"}");
        rc = ngx_http_edgehog_send(r, NGX_HTTP_OK, &type, &body);

    } else if (status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        rc = ngx_http_edgehog_send_error(r, status, "payload_too_large",
                                         "maximum event size exceeded: "
                                         "Event rejected by kafka during "
                                         "send");

    } else {
        rc = ngx_http_edgehog_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "transient",
                                         "transient error, please retry");
    }

    ngx_http_finalize_request(r, rc);
}


static void *
ngx_http_capture_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_capture_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_capture_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->enabled = 0;
     *     mcf->brokers = { 0, NULL };
     *     mcf->options = NULL;
     *     mcf->rk = NULL;
     */

    mcf->flush_timeout = NGX_CONF_UNSET_MSEC;
    mcf->liveness_timeout = NGX_CONF_UNSET;
    mcf->quota_interval = NGX_CONF_UNSET_MSEC;
    mcf->notify_wfd = NGX_INVALID_FILE;

    return mcf;
}


static char *
ngx_http_capture_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_capture_main_conf_t *mcf = conf;

    ngx_str_t  name;

    ngx_conf_init_msec_value(mcf->flush_timeout, 5000);
    ngx_conf_init_value(mcf->liveness_timeout, 30);
    ngx_conf_init_msec_value(mcf->quota_interval, 5000);

    if (mcf->quota) {
        mcf->quota->interval = mcf->quota_interval;
    }

    if (mcf->enabled) {
        /* counters and overflow buckets shared by all workers */
        ngx_str_set(&name, "edgehog_capture");

        mcf->shm_zone = ngx_shared_memory_add(cf, &name,
                                   sizeof(ngx_http_capture_shm_t) + 65536,
                                   &ngx_http_capture_module);
        if (mcf->shm_zone == NULL) {
            return NGX_CONF_ERROR;
        }

        mcf->shm_zone->init = ngx_http_capture_metrics_init_zone;
    }

    if (mcf->brokers.len == 0) {
        ngx_str_set(&mcf->brokers, "127.0.0.1:9092");
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_capture_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_capture_loc_conf_t  *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_capture_loc_conf_t));
    if (lcf == NULL) {
        return NULL;
    }

    lcf->enable = NGX_CONF_UNSET;
    lcf->ack = NGX_CONF_UNSET_UINT;
    lcf->strict = NGX_CONF_UNSET_UINT;
    lcf->max_decompressed_size = NGX_CONF_UNSET_SIZE;
    lcf->max_message_size = NGX_CONF_UNSET_SIZE;
    lcf->test_clock = NGX_CONF_UNSET;
    lcf->health = NGX_CONF_UNSET_UINT;
    lcf->metrics = NGX_CONF_UNSET;
    lcf->overflow_rate = NGX_CONF_UNSET_UINT;
    lcf->overflow_burst = NGX_CONF_UNSET_UINT;
    lcf->overflow_force = NGX_CONF_UNSET_PTR;
    lcf->dropper = NGX_CONF_UNSET_PTR;
    lcf->restrictions = NGX_CONF_UNSET_PTR;
    lcf->query_token = NGX_CONF_UNSET;
    lcf->ack_timeout = NGX_CONF_UNSET_MSEC;

    return lcf;
}


static char *
ngx_http_capture_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_capture_loc_conf_t *prev = parent;
    ngx_http_capture_loc_conf_t *conf = child;

    ngx_http_core_loc_conf_t  *clcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->topics[CAPTURE_TOPIC_MAIN],
                             prev->topics[CAPTURE_TOPIC_MAIN],
                             "events_plugin_ingestion");
    ngx_conf_merge_str_value(conf->topics[CAPTURE_TOPIC_HISTORICAL],
                             prev->topics[CAPTURE_TOPIC_HISTORICAL],
                             "events_plugin_ingestion_historical");
    ngx_conf_merge_str_value(conf->topics[CAPTURE_TOPIC_EXCEPTIONS],
                             prev->topics[CAPTURE_TOPIC_EXCEPTIONS],
                             "error_tracking_events");
    ngx_conf_merge_str_value(conf->topics[CAPTURE_TOPIC_HEATMAPS],
                             prev->topics[CAPTURE_TOPIC_HEATMAPS],
                             "heatmaps_ingestion");
    ngx_conf_merge_str_value(conf->topics[CAPTURE_TOPIC_WARNINGS],
                             prev->topics[CAPTURE_TOPIC_WARNINGS],
                             "ingestion-clientwarnings-main-1");
    ngx_conf_merge_str_value(conf->topics[CAPTURE_TOPIC_OVERFLOW],
                             prev->topics[CAPTURE_TOPIC_OVERFLOW],
                             "events_plugin_ingestion_overflow");
    ngx_conf_merge_str_value(conf->topics[CAPTURE_TOPIC_DLQ],
                             prev->topics[CAPTURE_TOPIC_DLQ],
                             "events_plugin_ingestion_dlq");
    ngx_conf_merge_uint_value(conf->strict, prev->strict, 0);
    ngx_conf_merge_size_value(conf->max_decompressed_size,
                              prev->max_decompressed_size,
                              100 * 1024 * 1024);
    ngx_conf_merge_size_value(conf->max_message_size,
                              prev->max_message_size,
                              CAPTURE_MAX_MESSAGE_SIZE);
    ngx_conf_merge_value(conf->test_clock, prev->test_clock, 0);
    ngx_conf_merge_uint_value(conf->health, prev->health, 0);
    ngx_conf_merge_value(conf->metrics, prev->metrics, 0);
    ngx_conf_merge_uint_value(conf->overflow_rate, prev->overflow_rate, 0);
    ngx_conf_merge_uint_value(conf->overflow_burst, prev->overflow_burst,
                              1000);
    ngx_conf_merge_ptr_value(conf->overflow_force, prev->overflow_force,
                             NULL);
    ngx_conf_merge_ptr_value(conf->dropper, prev->dropper, NULL);
    ngx_conf_merge_ptr_value(conf->restrictions, prev->restrictions, NULL);
    ngx_conf_merge_value(conf->query_token, prev->query_token, 0);

    /*
     * nginx checks client_max_body_size before any handler runs and
     * answers with an HTML page; capture locations take the limit over
     * (the core module's merge ran first) and answer 413 in JSON
     */
    if (conf->enable) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

        if (clcf->client_max_body_size) {
            conf->max_body_size = clcf->client_max_body_size;
            clcf->client_max_body_size = 0;
        }
    }
    ngx_conf_merge_uint_value(conf->ack, prev->ack,
                              NGX_HTTP_CAPTURE_ACK_DELIVERY);
    ngx_conf_merge_msec_value(conf->ack_timeout, prev->ack_timeout, 30000);

    return NGX_CONF_OK;
}


static char *
ngx_http_capture(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_capture_loc_conf_t *lcf = conf;

    char                          *rv;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_capture_main_conf_t  *mcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (!lcf->enable) {
        return NGX_CONF_OK;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_capture_handler;

    /* the producer is created only in workers that serve some location */
    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_capture_module);
    mcf->enabled = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_capture_health(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                          *rv;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_capture_main_conf_t  *mcf;

    rv = ngx_conf_set_enum_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_capture_health_handler;

    /* liveness reports on the producer, so workers create one */
    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_capture_module);
    mcf->enabled = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_capture_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                          *rv;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_capture_loc_conf_t   *lcf = conf;
    ngx_http_capture_main_conf_t  *mcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK || !lcf->metrics) {
        return rv;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_capture_metrics_handler;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_capture_module);
    mcf->enabled = 1;

    return NGX_CONF_OK;
}


/* token or token:distinct_id entries, validated for shape */

static char *
ngx_http_capture_list(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t     *value, *s;
    ngx_uint_t     i;
    ngx_array_t  **a;

    a = (ngx_array_t **) (p + cmd->offset);

    if (*a != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    *a = ngx_array_create(cf->pool, cf->args->nelts, sizeof(ngx_str_t));
    if (*a == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len == 0 || value[i].data[0] == ':') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        s = ngx_array_push(*a);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = value[i];
    }

    return NGX_CONF_OK;
}


/* capture_quota_redis host:port [key_prefix] */

static char *
ngx_http_capture_quota_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_capture_main_conf_t *mcf = conf;

    ngx_str_t                 *value;
    ngx_url_t                  u;
    ngx_http_capture_quota_t  *q;

    if (mcf->quota) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.url = value[1];
    u.default_port = 6379;
    u.no_resolve = 0;

    /* resolved once here, at configuration time, never on the loop */
    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\"%s%s", &value[1],
                           u.err ? ": " : "", u.err ? u.err : "");
        return NGX_CONF_ERROR;
    }

    q = ngx_pcalloc(cf->pool, sizeof(ngx_http_capture_quota_t));
    if (q == NULL) {
        return NGX_CONF_ERROR;
    }

    q->addr = u.addrs[0];

    if (cf->args->nelts == 3) {
        q->prefix = value[2];
    }

    mcf->quota = q;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_capture_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_capture_metrics_log;

    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_capture_body_filter;

    return NGX_OK;
}


/*
 * capture locations took client_max_body_size over (see merge); a body
 * without Content-Length is bounded here while it is read
 */

static ngx_int_t
ngx_http_capture_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_http_capture_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_capture_module);

    /* the chunked filter counts the decoded length in content_length_n */
    if (lcf->enable && lcf->max_body_size && r->headers_in.chunked
        && r->headers_in.content_length_n > lcf->max_body_size)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "capture: client intended to send too large chunked "
                      "body: %O bytes", r->headers_in.content_length_n);

        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    return ngx_http_next_request_body_filter(r, in);
}


static char *
ngx_http_capture_kafka_option(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_capture_main_conf_t *mcf = conf;

    ngx_str_t     *value;
    ngx_keyval_t  *kv;

    value = cf->args->elts;

    if (ngx_http_capture_kafka_check_option(cf, &value[1], &value[2])
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (mcf->options == NULL) {
        mcf->options = ngx_array_create(cf->pool, 4, sizeof(ngx_keyval_t));
        if (mcf->options == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    kv = ngx_array_push(mcf->options);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }

    kv->key = value[1];
    kv->value = value[2];

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_capture_init_process(ngx_cycle_t *cycle)
{
    ngx_http_capture_main_conf_t  *mcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_capture_module);
    if (mcf == NULL || !mcf->enabled) {
        return NGX_OK;
    }

    if (ngx_http_capture_kafka_init_process(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (mcf->quota) {
        return ngx_http_capture_quota_init_process(cycle, mcf->quota);
    }

    return NGX_OK;
}


static void
ngx_http_capture_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_capture_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_capture_module);

    if (mcf && mcf->quota) {
        ngx_http_capture_quota_exit_process(mcf->quota);
    }

    if (mcf == NULL || mcf->rk == NULL) {
        return;
    }

    ngx_http_capture_kafka_exit_process(cycle, mcf);
}
