/*
 * Copyright (C) edgehog
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_edgehog_response.h"


typedef struct {
    ngx_str_t                   redis_address;
} ngx_http_decide_main_conf_t;


typedef struct {
    ngx_flag_t                  enable;
} ngx_http_decide_loc_conf_t;


static ngx_int_t ngx_http_decide_handler(ngx_http_request_t *r);
static void *ngx_http_decide_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_decide_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_decide_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_decide(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


static ngx_command_t  ngx_http_decide_commands[] = {

    { ngx_string("decide"),
      NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_decide,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_decide_loc_conf_t, enable),
      NULL },

    { ngx_string("decide_redis_address"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_decide_main_conf_t, redis_address),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_decide_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_decide_create_main_conf,      /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_decide_create_loc_conf,       /* create location configuration */
    ngx_http_decide_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_decide_module = {
    NGX_MODULE_V1,
    &ngx_http_decide_module_ctx,           /* module context */
    ngx_http_decide_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * Walking skeleton: answers every version with no flags.  Evaluation from
 * the Redis snapshot arrives with the decide issue.
 */

static ngx_int_t
ngx_http_decide_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;
    ngx_str_t  type, body;

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_http_edgehog_preflight(r);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))) {
        return ngx_http_edgehog_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                           "method_not_allowed",
                                           "method not allowed");
    }

    ngx_str_set(&type, "application/json");
    ngx_str_set(&body, "{\"featureFlags\":{},\"featureFlagPayloads\":{},"
                       "\"errorsWhileComputingFlags\":false}");

    return ngx_http_edgehog_send(r, NGX_HTTP_OK, &type, &body);
}


static void *
ngx_http_decide_create_main_conf(ngx_conf_t *cf)
{
    /* set by ngx_pcalloc(): redis_address = { 0, NULL } */
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_decide_main_conf_t));
}


static void *
ngx_http_decide_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_decide_loc_conf_t  *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_decide_loc_conf_t));
    if (lcf == NULL) {
        return NULL;
    }

    lcf->enable = NGX_CONF_UNSET;

    return lcf;
}


static char *
ngx_http_decide_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_decide_loc_conf_t *prev = parent;
    ngx_http_decide_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    return NGX_CONF_OK;
}


static char *
ngx_http_decide(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_decide_loc_conf_t *lcf = conf;

    char                      *rv;
    ngx_http_core_loc_conf_t  *clcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (lcf->enable) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
        clcf->handler = ngx_http_decide_handler;
    }

    return NGX_CONF_OK;
}
