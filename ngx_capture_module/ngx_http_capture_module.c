/*
 * Copyright (C) edgehog
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_capture_module.h"
#include "ngx_http_capture_kafka.h"
#include "ngx_http_edgehog_response.h"
#include "capture_event.h"


static ngx_int_t ngx_http_capture_handler(ngx_http_request_t *r);
static void ngx_http_capture_body_handler(ngx_http_request_t *r);
static void *ngx_http_capture_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_capture_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_capture_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_capture_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_capture(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_capture_kafka_option(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_capture_init_process(ngx_cycle_t *cycle);
static void ngx_http_capture_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_capture_ack[] = {
    { ngx_string("enqueue"), NGX_HTTP_CAPTURE_ACK_ENQUEUE },
    { ngx_string("delivery"), NGX_HTTP_CAPTURE_ACK_DELIVERY },
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
    NULL,                                  /* postconfiguration */

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
    ngx_int_t  rc;

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

    /* the body stays in memory when client_body_buffer_size allows */
    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_capture_body_handler);

    if (rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        /* a JSON answer instead of nginx's HTML page; the rest is dropped */
        r->main->count++;

        if (ngx_http_discard_request_body(r) != NGX_OK) {
            r->keepalive = 0;
        }

        rc = ngx_http_edgehog_send_error(r, rc, "payload_too_large",
                                         "maximum event size exceeded: "
                                         "request body too large");
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_capture_body_handler(ngx_http_request_t *r)
{
    ngx_http_capture_body_process(r);
}


void
ngx_http_capture_done(ngx_http_request_t *r, ngx_int_t status)
{
    ngx_int_t         rc;
    ngx_str_t         body, type;
    ngx_table_elt_t  *h;

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
        /* SDKs retry 503; Retry-After tells them when */
        h = ngx_list_push(&r->headers_out.headers);
        if (h) {
            h->hash = 1;
            ngx_str_set(&h->key, "Retry-After");
            ngx_str_set(&h->value, "1");
        }

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
    mcf->notify_wfd = NGX_INVALID_FILE;

    return mcf;
}


static char *
ngx_http_capture_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_capture_main_conf_t *mcf = conf;

    ngx_conf_init_msec_value(mcf->flush_timeout, 5000);

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
    lcf->ack_timeout = NGX_CONF_UNSET_MSEC;

    return lcf;
}


static char *
ngx_http_capture_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_capture_loc_conf_t *prev = parent;
    ngx_http_capture_loc_conf_t *conf = child;

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
    ngx_conf_merge_uint_value(conf->strict, prev->strict, 0);
    ngx_conf_merge_size_value(conf->max_decompressed_size,
                              prev->max_decompressed_size,
                              100 * 1024 * 1024);
    ngx_conf_merge_size_value(conf->max_message_size,
                              prev->max_message_size,
                              CAPTURE_MAX_MESSAGE_SIZE);
    ngx_conf_merge_value(conf->test_clock, prev->test_clock, 0);
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

    return ngx_http_capture_kafka_init_process(cycle, mcf);
}


static void
ngx_http_capture_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_capture_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_capture_module);
    if (mcf == NULL || mcf->rk == NULL) {
        return;
    }

    ngx_http_capture_kafka_exit_process(cycle, mcf);
}
