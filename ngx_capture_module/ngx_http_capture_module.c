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
static ngx_int_t ngx_http_capture_payload(ngx_http_request_t *r,
    ngx_str_t *payload);
static void ngx_http_capture_done(ngx_http_request_t *r, ngx_int_t status);
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
      offsetof(ngx_http_capture_loc_conf_t, topic),
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

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_capture_body_handler(ngx_http_request_t *r)
{
    size_t              n;
    ngx_int_t           rc;
    ngx_str_t           payload;
    struct timeval      tv;
    capture_msg_t      *msgs;
    capture_error_t     err;
    capture_request_t   req;

    rc = ngx_http_capture_payload(r, &payload);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    /* the pure core wants a C string for the client address */

    req.ip = (const char *) ngx_pnalloc(r->pool,
                                        r->connection->addr_text.len + 1);
    if (req.ip == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_cpystrn((u_char *) req.ip, r->connection->addr_text.data,
                r->connection->addr_text.len + 1);

    ngx_gettimeofday(&tv);
    req.now_us = (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;

    if (capture_event_build(&req, (const char *) payload.data, payload.len,
                            &msgs, &n, &err)
        != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "capture: rejected request: %d %s", err.status,
                      err.error);

        rc = ngx_http_edgehog_send_error(r, err.status, err.code, err.error);
        ngx_http_finalize_request(r, rc);
        return;
    }

    rc = ngx_http_capture_kafka_produce(r, msgs, n, ngx_http_capture_done);

    /* librdkafka copied what it needed (RD_KAFKA_MSG_F_COPY) */
    capture_msgs_free(msgs, n);

    if (rc == NGX_DONE) {
        /* finalized by ngx_http_capture_done() after delivery */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * The payload is the query's data= when present, else the body, flattened
 * into one buffer (a body spilled to a temp file is read back).
 */

static ngx_int_t
ngx_http_capture_payload(ngx_http_request_t *r, ngx_str_t *payload)
{
    off_t         len;
    u_char       *p, *dst, *src;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_str_t     arg;
    ngx_chain_t  *cl;

    if (ngx_http_arg(r, (u_char *) "data", 4, &arg) == NGX_OK && arg.len) {
        p = ngx_pnalloc(r->pool, arg.len);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        dst = p;
        src = arg.data;
        ngx_unescape_uri(&dst, &src, arg.len, NGX_UNESCAPE_URI);

        payload->data = p;
        payload->len = dst - p;

        return NGX_OK;
    }

    payload->len = 0;
    payload->data = NULL;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? b->file_last - b->file_pos : b->last - b->pos;
    }

    if (len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    payload->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            /* a bounded disk read, as nginx's own static paths do */
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n == NGX_ERROR) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            p += n;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    payload->len = p - payload->data;

    return NGX_OK;
}


static void
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
    lcf->ack_timeout = NGX_CONF_UNSET_MSEC;

    return lcf;
}


static char *
ngx_http_capture_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_capture_loc_conf_t *prev = parent;
    ngx_http_capture_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->topic, prev->topic,
                             "events_plugin_ingestion");
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
