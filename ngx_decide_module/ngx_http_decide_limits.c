/*
 * Copyright (C) edgehog
 */

/*
 * Rate limits of spec/decide.md §1.5 step 1: a token bucket per client
 * address (before the body is read) and one per project token (once it
 * is known), shared by all workers.  Off unless configured; "log_only"
 * counts and logs instead of answering 429, as PostHog runs them.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_decide_module.h"
#include "ngx_http_edgehog_bucket.h"


#define NGX_HTTP_DECIDE_LIMIT_SLOTS  16384


typedef struct {
    ngx_shmtx_sh_t              lock;
    ngx_shmtx_t                 mutex;
    ngx_http_edgehog_bucket_t   buckets[2][NGX_HTTP_DECIDE_LIMIT_SLOTS];
} ngx_http_decide_limits_shm_t;


static ngx_int_t ngx_http_decide_limits_init_zone(ngx_shm_zone_t *zone,
    void *data);


/* decide_rate_limit ip|token <rate per second> <burst> [log_only] */

char *
ngx_http_decide_rate_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_decide_main_conf_t *mcf = conf;

    ngx_int_t                    n;
    ngx_str_t                   *value, name;
    ngx_uint_t                   i;
    ngx_http_decide_limit_t     *lim;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "ip") == 0) {
        lim = &mcf->limits[NGX_HTTP_DECIDE_LIMIT_IP];

    } else if (ngx_strcmp(value[1].data, "token") == 0) {
        lim = &mcf->limits[NGX_HTTP_DECIDE_LIMIT_TOKEN];

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid decide_rate_limit key \"%V\" "
                           "(ip or token)", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (lim->rate) {
        return "is duplicate";
    }

    for (i = 2; i < 4; i++) {
        n = ngx_atoi(value[i].data, value[i].len);

        if (n <= 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid decide_rate_limit %s \"%V\" "
                               "(a positive integer)",
                               i == 2 ? "rate" : "burst", &value[i]);
            return NGX_CONF_ERROR;
        }

        *(i == 2 ? &lim->rate : &lim->burst) = n;
    }

    if (cf->args->nelts == 5) {
        if (ngx_strcmp(value[4].data, "log_only") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid decide_rate_limit parameter "
                               "\"%V\" (log_only)", &value[4]);
            return NGX_CONF_ERROR;
        }

        lim->log_only = 1;
    }

    if (mcf->limits_zone == NULL) {
        ngx_str_set(&name, "edgehog_decide_limits");

        mcf->limits_zone = ngx_shared_memory_add(cf, &name,
                               sizeof(ngx_http_decide_limits_shm_t) + 65536,
                               &ngx_http_decide_module);
        if (mcf->limits_zone == NULL) {
            return NGX_CONF_ERROR;
        }

        mcf->limits_zone->init = ngx_http_decide_limits_init_zone;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_decide_limits_init_zone(ngx_shm_zone_t *zone, void *data)
{
    return ngx_http_edgehog_shm_init(zone, data,
                              sizeof(ngx_http_decide_limits_shm_t),
                              offsetof(ngx_http_decide_limits_shm_t, mutex),
                              offsetof(ngx_http_decide_limits_shm_t, lock));
}


/* NGX_OK to go on, NGX_DECLINED to answer 429 */

ngx_int_t
ngx_http_decide_limits_check(ngx_http_request_t *r, ngx_uint_t which,
    u_char *key, size_t len)
{
    ngx_http_decide_limit_t       *lim;
    ngx_http_decide_main_conf_t   *mcf;
    ngx_http_decide_limits_shm_t  *shm;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_decide_module);
    lim = &mcf->limits[which];

    if (lim->rate == 0 || mcf->limits_zone == NULL) {
        return NGX_OK;
    }

    shm = mcf->limits_zone->data;

    if (ngx_http_edgehog_bucket_take(&shm->mutex, shm->buckets[which],
                                     NGX_HTTP_DECIDE_LIMIT_SLOTS, key, len,
                                     lim->rate, lim->burst)
        == NGX_OK)
    {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "decide: %s rate limit exceeded for \"%*s\"%s",
                  which == NGX_HTTP_DECIDE_LIMIT_IP ? "ip" : "token",
                  len, key, lim->log_only ? " (log only)" : "");

    return lim->log_only ? NGX_OK : NGX_DECLINED;
}


ngx_int_t
ngx_http_decide_send_rate_limited(ngx_http_request_t *r)
{
    return ngx_http_decide_send_api_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                          "validation_error",
                                          "rate_limit_exceeded",
                                          "Rate limit exceeded");
}
