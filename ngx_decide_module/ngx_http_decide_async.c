/*
 * Copyright (C) edgehog
 */

/*
 * Redis commands on the event loop: one non-blocking hiredis connection
 * per worker (spec/nginx.md 3.4 (a)), for every lookup a request needs
 * (the person entry, group entries, hash-key overrides).  A thread-pool
 * task per lookup cost four thread wake-ups (post, Redis reply,
 * completion, the thread's next wait); on this loop the reply is one
 * more readable fd, and under load the commands of many requests share
 * one write and one read.
 *
 * The traps of spec/nginx.md 3.4 (a): events are level-triggered, so a
 * reply longer than the 16 KB hiredis reads per call never stalls;
 * hiredis owns and closes the fd, so the cleanup hook only detaches
 * nginx's connection; the context may be freed inside
 * redisAsyncHandleRead/Write, so nothing touches it afterwards; the
 * address is numeric or a unix socket (checked at config), so connecting
 * never resolves; hiredis 0.14 has no timeouts, so every command has an
 * nginx timer of decide_redis_timeout (never 0: refused at config), and
 * one that fires drops the connection as a pool thread's blocking read
 * would (the next command reconnects).  The timers are not cancelable: a
 * worker quitting gracefully answers its waiting requests first, within
 * decide_redis_timeout.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_decide_module.h"

#include <hiredis/async.h>


typedef struct {
    ngx_http_decide_async_handler_pt   handler;    /* NULL: given up */
    void                              *data;
    redisAsyncContext                 *ac;
    ngx_event_t                        timer;
} ngx_http_decide_async_cmd_t;


static redisAsyncContext *ngx_http_decide_async_connect(
    ngx_http_decide_main_conf_t *mcf);
static void ngx_http_decide_async_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_decide_async_timeout(ngx_event_t *ev);
static void ngx_http_decide_async_read(ngx_event_t *rev);
static void ngx_http_decide_async_write(ngx_event_t *wev);
static void ngx_http_decide_async_add_read(void *privdata);
static void ngx_http_decide_async_del_read(void *privdata);
static void ngx_http_decide_async_add_write(void *privdata);
static void ngx_http_decide_async_del_write(void *privdata);
static void ngx_http_decide_async_cleanup(void *privdata);


/* per worker: the connection new commands go to, NULL until the next one */
static redisAsyncContext  *ngx_http_decide_async_ac;
static ngx_uint_t          ngx_http_decide_async_exiting;
static ngx_uint_t          ngx_http_decide_async_writing;

/* why the connection was dropped, for the commands it takes along */
static const char         *ngx_http_decide_async_why;
static char                ngx_http_decide_async_errstr[128];


/*
 * NGX_OK: handler will be called once, from the event loop (never from
 * inside this call); NGX_ERROR: it will not be, and
 * ngx_http_decide_async_error() says why.  The format is hiredis's.
 */
ngx_int_t
ngx_http_decide_async_command(ngx_http_decide_main_conf_t *mcf,
    ngx_http_decide_async_handler_pt handler, void *data,
    const char *fmt, ...)
{
    int                           rc;
    va_list                       args;
    redisAsyncContext            *ac;
    ngx_http_decide_async_cmd_t  *ag;

    ac = ngx_http_decide_async_connect(mcf);
    if (ac == NULL) {
        return NGX_ERROR;
    }

    ag = ngx_calloc(sizeof(ngx_http_decide_async_cmd_t), ngx_cycle->log);
    if (ag == NULL) {
        ngx_cpystrn((u_char *) ngx_http_decide_async_errstr,
                    (u_char *) "out of memory",
                    sizeof(ngx_http_decide_async_errstr));
        return NGX_ERROR;
    }

    ag->handler = handler;
    ag->data = data;
    ag->ac = ac;
    ag->timer.handler = ngx_http_decide_async_timeout;
    ag->timer.data = ag;
    ag->timer.log = ngx_cycle->log;

    va_start(args, fmt);
    rc = redisvAsyncCommand(ac, ngx_http_decide_async_reply, ag, fmt, args);
    va_end(args);

    if (rc != REDIS_OK) {
        ngx_cpystrn((u_char *) ngx_http_decide_async_errstr,
                    (u_char *) (ac->err ? ac->errstr
                                        : "connection is closing"),
                    sizeof(ngx_http_decide_async_errstr));
        ngx_free(ag);
        return NGX_ERROR;
    }

    ngx_add_timer(&ag->timer, mcf->redis_timeout);

    return NGX_OK;
}


const char *
ngx_http_decide_async_error(void)
{
    return ngx_http_decide_async_errstr;
}


void
ngx_http_decide_async_exit(void)
{
    redisAsyncContext  *ac;

    /* pending commands go without their handlers: the worker is gone */
    ngx_http_decide_async_exiting = 1;

    ac = ngx_http_decide_async_ac;

    if (ac != NULL) {
        ngx_http_decide_async_ac = NULL;
        ngx_http_decide_async_why = "worker exiting";
        redisAsyncFree(ac);
    }
}


static redisAsyncContext *
ngx_http_decide_async_connect(ngx_http_decide_main_conf_t *mcf)
{
    redisAsyncContext  *ac;
    ngx_connection_t   *c;

    ac = ngx_http_decide_async_ac;

    if (ac != NULL) {
        if (ac->err == 0
            && !(ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
        {
            return ac;
        }

        /* dying (its callbacks are running): its cleanup comes later */
        ngx_http_decide_async_ac = NULL;
    }

    if (ngx_http_decide_async_exiting) {
        ngx_cpystrn((u_char *) ngx_http_decide_async_errstr,
                    (u_char *) "worker exiting",
                    sizeof(ngx_http_decide_async_errstr));
        return NULL;
    }

    /* numeric addresses only (checked at config): no blocking resolver */
    if (mcf->redis_unix) {
        ac = redisAsyncConnectUnix(mcf->redis_host);

    } else {
        ac = redisAsyncConnect(mcf->redis_host, mcf->redis_port);
    }

    if (ac == NULL || ac->err) {
        ngx_cpystrn((u_char *) ngx_http_decide_async_errstr,
                    (u_char *) (ac ? ac->errstr : "out of memory"),
                    sizeof(ngx_http_decide_async_errstr));
        if (ac) {
            redisAsyncFree(ac);
        }

        return NULL;
    }

    c = ngx_get_connection(ac->c.fd, ngx_cycle->log);
    if (c == NULL) {
        ngx_cpystrn((u_char *) ngx_http_decide_async_errstr,
                    (u_char *) "no free worker connection",
                    sizeof(ngx_http_decide_async_errstr));
        redisAsyncFree(ac);
        return NULL;
    }

    c->data = ac;
    c->read->handler = ngx_http_decide_async_read;
    c->write->handler = ngx_http_decide_async_write;
    c->read->log = ngx_cycle->log;
    c->write->log = ngx_cycle->log;

    ac->ev.data = c;
    ac->ev.addRead = ngx_http_decide_async_add_read;
    ac->ev.delRead = ngx_http_decide_async_del_read;
    ac->ev.addWrite = ngx_http_decide_async_add_write;
    ac->ev.delWrite = ngx_http_decide_async_del_write;
    ac->ev.cleanup = ngx_http_decide_async_cleanup;

    ngx_http_decide_async_ac = ac;

    return ac;
}


/* hiredis: a reply, or NULL for a command the connection took along */
static void
ngx_http_decide_async_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_http_decide_async_cmd_t  *ag = privdata;

    void                              *data;
    const char                        *err;
    ngx_http_decide_async_handler_pt   handler;

    if (ag->timer.timer_set) {
        ngx_del_timer(&ag->timer);
    }

    handler = ag->handler;
    data = ag->data;
    ngx_free(ag);

    if (handler == NULL || ngx_http_decide_async_exiting) {
        return;
    }

    err = NULL;

    if (r == NULL) {
        err = ac->err ? ac->errstr
              : ngx_http_decide_async_why ? ngx_http_decide_async_why
              : "connection closed";
    }

    /* hiredis frees the reply when this returns */
    handler(data, r, err);
}


static void
ngx_http_decide_async_timeout(ngx_event_t *ev)
{
    ngx_http_decide_async_cmd_t *ag = ev->data;

    redisAsyncContext                 *ac;
    ngx_http_decide_async_handler_pt   handler;

    ac = ag->ac;
    handler = ag->handler;
    ag->handler = NULL;

    /* commands the handler starts go to a new connection */
    if (ngx_http_decide_async_ac == ac) {
        ngx_http_decide_async_ac = NULL;
    }

    handler(ag->data, NULL, "timed out");

    /* runs the reply callbacks of every command on it, this one's frees ag */
    ngx_http_decide_async_why = "connection dropped after a timeout";
    redisAsyncFree(ac);
    ngx_http_decide_async_why = NULL;
}


static void
ngx_http_decide_async_read(ngx_event_t *rev)
{
    ngx_connection_t *c = rev->data;

    /* may free the context and, through cleanup, c */
    redisAsyncHandleRead(c->data);
}


static void
ngx_http_decide_async_write(ngx_event_t *wev)
{
    ngx_connection_t *c = wev->data;

    /* a write hiredis could not finish asks for the real event */
    ngx_http_decide_async_writing = 1;
    redisAsyncHandleWrite(c->data);
    ngx_http_decide_async_writing = 0;
}


/* level-triggered: hiredis reads at most 16 KB per call */

static void
ngx_http_decide_async_add_read(void *privdata)
{
    ngx_connection_t *c = privdata;

    if (!c->read->active) {
        (void) ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_decide_async_del_read(void *privdata)
{
    ngx_connection_t *c = privdata;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


/*
 * hiredis asks for the write event after queueing a command.  Once
 * connected, the commands go out at the end of this loop iteration
 * instead (a posted event), all in one write: Redis answers while the
 * loop handles the next requests.  Waiting for the epoll write event
 * instead put each reply one more iteration away (bench (c): p50
 * 1.3-1.5 ms instead of 0.2 ms at 8k req/s), and arming and disarming it
 * took two epoll_ctl() per GET; one write() per GET (tried) cost 23.5
 * us of nginx CPU per (c) request against 18.8 us for this, and 35k
 * against 43k req/s.  Only a write that could
 * not finish (inside the handler) waits for the real event.  The read
 * event stays armed from the first write on (hiredis arms it after
 * connecting and disarms it only when freeing).
 */
static void
ngx_http_decide_async_add_write(void *privdata)
{
    ngx_connection_t *c = privdata;

    redisAsyncContext  *ac;

    ac = c->data;

    if ((ac->c.flags & REDIS_CONNECTED) && !ngx_http_decide_async_writing) {
        if (!c->write->posted && !c->write->active) {
            ngx_post_event(c->write, &ngx_posted_events);
        }

        return;
    }

    if (!c->write->active) {
        (void) ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_decide_async_del_write(void *privdata)
{
    ngx_connection_t *c = privdata;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis frees the context: detach nginx's connection, it closes the fd */
static void
ngx_http_decide_async_cleanup(void *privdata)
{
    ngx_connection_t *c = privdata;

    if (ngx_http_decide_async_ac == c->data) {
        ngx_http_decide_async_ac = NULL;
    }

    ngx_http_decide_async_del_read(c);
    ngx_http_decide_async_del_write(c);

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->read->closed = 1;
    c->write->closed = 1;

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}
