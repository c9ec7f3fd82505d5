/*
 * Copyright (C) edgehog
 */

/*
 * Synchronous hiredis, used only by the snapshot refresh, a thread-pool
 * task (spec/nginx.md 3.4 (c2)): the event loop never waits on Redis
 * (requests' lookups use ngx_http_decide_async.c).  Each pool thread
 * keeps its own connection; a failed command drops it and the next task
 * reconnects, bounded by decide_redis_timeout.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_decide_module.h"


static __thread redisContext  *ngx_http_decide_redis_ctx;

/* why the last Redis command of this thread failed, for the log */
static __thread char           ngx_http_decide_redis_errstr[128];


redisContext *
ngx_http_decide_redis_get(ngx_http_decide_main_conf_t *mcf)
{
    redisContext    *c;
    struct timeval   tv;

    c = ngx_http_decide_redis_ctx;

    if (c != NULL && c->err == 0) {
        return c;
    }

    ngx_http_decide_redis_drop();

    tv.tv_sec = mcf->redis_timeout / 1000;
    tv.tv_usec = (mcf->redis_timeout % 1000) * 1000;

    /* numeric addresses only (checked at config): no blocking resolver */
    if (mcf->redis_unix) {
        c = redisConnectUnixWithTimeout(mcf->redis_host, tv);

    } else {
        c = redisConnectWithTimeout(mcf->redis_host, mcf->redis_port, tv);
    }

    if (c == NULL) {
        ngx_http_decide_redis_set_error("out of memory");
        return NULL;
    }

    if (c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        ngx_http_decide_redis_set_error(c->err ? c->errstr
                                               : "cannot set timeout");
        redisFree(c);
        return NULL;
    }

    ngx_http_decide_redis_ctx = c;

    return c;
}


void
ngx_http_decide_redis_drop(void)
{
    if (ngx_http_decide_redis_ctx) {
        ngx_http_decide_redis_set_error(ngx_http_decide_redis_ctx->err
                                        ? ngx_http_decide_redis_ctx->errstr
                                        : "unexpected reply");

        /* redisFree() closes the fd it owns */
        redisFree(ngx_http_decide_redis_ctx);
        ngx_http_decide_redis_ctx = NULL;
    }
}


void
ngx_http_decide_redis_set_error(const char *err)
{
    ngx_cpystrn((u_char *) ngx_http_decide_redis_errstr, (u_char *) err,
                sizeof(ngx_http_decide_redis_errstr));
}


const char *
ngx_http_decide_redis_error(void)
{
    return ngx_http_decide_redis_errstr;
}
