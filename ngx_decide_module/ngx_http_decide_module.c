/*
 * Copyright (C) edgehog
 */

/*
 * PostHog /decide and /flags (spec/decide.md): directives, configuration
 * and the per-worker lifecycle.  The request path is in
 * ngx_http_decide_request.c, the snapshot in ngx_http_decide_cache.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_decide_module.h"


static void *ngx_http_decide_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_decide_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_decide_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_decide_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_decide(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_decide_redis_timeout(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_decide_redis_address(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_decide_init_process(ngx_cycle_t *cycle);
static void ngx_http_decide_exit_process(ngx_cycle_t *cycle);


static ngx_conf_post_t  ngx_http_decide_redis_timeout_post =
    { ngx_http_decide_redis_timeout };


static ngx_conf_enum_t  ngx_http_decide_endpoints[] = {
    { ngx_string("auto"), NGX_HTTP_DECIDE_ENDPOINT_AUTO },
    { ngx_string("decide"), NGX_HTTP_DECIDE_ENDPOINT_DECIDE },
    { ngx_string("flags"), NGX_HTTP_DECIDE_ENDPOINT_FLAGS },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_decide_commands[] = {

    { ngx_string("decide"),
      NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_decide,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_decide_loc_conf_t, enable),
      NULL },

    /* auto: /decide semantics when the URI contains "decide" */
    { ngx_string("decide_endpoint"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_decide_loc_conf_t, endpoint),
      &ngx_http_decide_endpoints },

    { ngx_string("decide_max_decompressed_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_decide_loc_conf_t, max_decompressed),
      NULL },

    { ngx_string("decide_redis_address"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_decide_redis_address,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("decide_refresh_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_decide_main_conf_t, refresh_interval),
      NULL },

    { ngx_string("decide_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_decide_main_conf_t, redis_timeout),
      &ngx_http_decide_redis_timeout_post },

    { ngx_string("decide_stale_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_decide_main_conf_t, stale_max),
      NULL },

    { ngx_string("decide_rate_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3|NGX_CONF_TAKE4,
      ngx_http_decide_rate_limit,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("decide_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_decide_main_conf_t, thread_pool_name),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_decide_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_decide_create_main_conf,      /* create main configuration */
    ngx_http_decide_init_main_conf,        /* init main configuration */

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
    ngx_http_decide_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_decide_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_decide_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_decide_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_decide_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->redis_address = { 0, NULL };
     *     mcf->snapshot = NULL;
     *     mcf->enabled = 0;
     */

    mcf->refresh_interval = NGX_CONF_UNSET_MSEC;
    mcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    mcf->stale_max = NGX_CONF_UNSET_MSEC;
    mcf->version = -1;

    return mcf;
}


static char *
ngx_http_decide_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_decide_main_conf_t *mcf = conf;

    ngx_conf_init_msec_value(mcf->refresh_interval, 250);
    ngx_conf_init_msec_value(mcf->redis_timeout, 100);
    ngx_conf_init_msec_value(mcf->stale_max, 0);

    if (mcf->redis_address.len == 0) {
        ngx_str_set(&mcf->redis_address, "127.0.0.1:6379");
        ngx_cpystrn((u_char *) mcf->redis_host, (u_char *) "127.0.0.1", 10);
        mcf->redis_port = 6379;
    }

    if (mcf->thread_pool_name.len == 0) {
        ngx_str_set(&mcf->thread_pool_name, "default");
    }

    if (mcf->enabled) {
        /* the "default" pool exists only when someone asks for it */
        mcf->thread_pool = ngx_thread_pool_add(cf, &mcf->thread_pool_name);
        if (mcf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
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
    lcf->endpoint = NGX_CONF_UNSET_UINT;
    lcf->max_decompressed = NGX_CONF_UNSET_SIZE;

    return lcf;
}


static char *
ngx_http_decide_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_decide_loc_conf_t *prev = parent;
    ngx_http_decide_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->endpoint, prev->endpoint,
                              NGX_HTTP_DECIDE_ENDPOINT_AUTO);
    /* spec/decide.md 1.3: decompressed gzip up to 4 MiB */
    ngx_conf_merge_size_value(conf->max_decompressed, prev->max_decompressed,
                              4 * 1024 * 1024);

    return NGX_CONF_OK;
}


static char *
ngx_http_decide(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_decide_loc_conf_t *lcf = conf;

    char                         *rv;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_decide_main_conf_t  *mcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (lcf->enable) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
        clcf->handler = ngx_http_decide_handler;

        mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_decide_module);
        mcf->enabled = 1;
    }

    return NGX_CONF_OK;
}


/*
 * 0 would let a hung Redis (accepting, never answering) hold the requests
 * waiting on it for good: their SDKs give up first and show no flags at
 * all, where a bound gives every other flag and errorsWhileComputingFlags
 */
static char *
ngx_http_decide_redis_timeout(ngx_conf_t *cf, void *post, void *data)
{
    ngx_msec_t *np = data;

    ngx_str_t  *value;

    if (*np != 0) {
        return NGX_CONF_OK;
    }

    value = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" (every Redis lookup needs a "
                       "bound, e.g. 100ms)", &value[1]);

    return NGX_CONF_ERROR;
}


/* "host:port" with a numeric address (no blocking resolver), or unix:path */
static char *
ngx_http_decide_redis_address(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_decide_main_conf_t *mcf = conf;

    u_char     *colon;
    ngx_int_t   port;
    ngx_str_t  *value, host;
    in_addr_t   addr;

    if (mcf->redis_address.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    mcf->redis_address = value[1];

    if (value[1].len > 5 && ngx_strncmp(value[1].data, "unix:", 5) == 0) {
        if (value[1].len - 5 >= sizeof(mcf->redis_host)) {
            goto invalid;
        }

        ngx_cpystrn((u_char *) mcf->redis_host, value[1].data + 5,
                    value[1].len - 5 + 1);
        mcf->redis_unix = 1;
        return NGX_CONF_OK;
    }

    colon = ngx_strlchr(value[1].data, value[1].data + value[1].len, ':');
    if (colon == NULL) {
        goto invalid;
    }

    host.data = value[1].data;
    host.len = colon - value[1].data;

    port = ngx_atoi(colon + 1, value[1].data + value[1].len - colon - 1);
    addr = ngx_inet_addr(host.data, host.len);

    if (port <= 0 || port > 65535 || addr == INADDR_NONE
        || host.len >= sizeof(mcf->redis_host))
    {
        goto invalid;
    }

    ngx_cpystrn((u_char *) mcf->redis_host, host.data, host.len + 1);
    mcf->redis_port = (int) port;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" (an IPv4 address:port or "
                       "unix:path; names would need a blocking resolver)",
                       &value[1]);

    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_decide_init_process(ngx_cycle_t *cycle)
{
    ngx_http_decide_main_conf_t  *mcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_decide_module);

    if (mcf == NULL || !mcf->enabled) {
        return NGX_OK;
    }

    /*
     * Request bodies decode into arena slots (decide_json_arena.h): 16
     * KB each hold the trees of the usual SDK bodies many times over,
     * and a request past the last slot, or a bigger body, simply uses
     * malloc() as before.
     */
    if (decide_json_arena_init(NGX_HTTP_DECIDE_ARENA_SLOTS,
                               NGX_HTTP_DECIDE_ARENA_SLOT)
        != 0)
    {
        ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                      "decide: no arena for request bodies");
    }

    return ngx_http_decide_cache_init(cycle, mcf);
}


static void
ngx_http_decide_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_decide_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_decide_module);

    if (mcf == NULL || !mcf->enabled) {
        return;
    }

    ngx_http_decide_async_exit();
    ngx_http_decide_cache_exit(mcf);
}
