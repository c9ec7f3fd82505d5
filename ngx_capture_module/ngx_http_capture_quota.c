/*
 * Copyright (C) edgehog
 */

/*
 * Billing quota limits (spec/capture.md §7.1): every interval each worker
 * asks Redis for the limited tokens of each resource with one pipelined
 * round of ZRANGEBYSCORE over a non-blocking connection on the event
 * loop, and swaps its in-memory sets when every reply arrived.  Any
 * failure keeps the previous sets (fail open).  Requests only read the
 * sets, never Redis.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_capture_module.h"
#include "ngx_http_capture_quota.h"


#define NGX_HTTP_CAPTURE_QUOTA_TIMEOUT  2000


static void ngx_http_capture_quota_start(ngx_event_t *ev);
static void ngx_http_capture_quota_write(ngx_event_t *wev);
static void ngx_http_capture_quota_read(ngx_event_t *rev);
static ngx_int_t ngx_http_capture_quota_parse(ngx_http_capture_quota_t *q);
static void ngx_http_capture_quota_finish(ngx_http_capture_quota_t *q,
    ngx_uint_t ok);
static ngx_int_t ngx_http_capture_quota_peer(ngx_peer_connection_t *pc,
    void *data);


static const char  *ngx_http_capture_quota_resources[] = {
    "events", "exceptions", "survey_responses", "llm_events"
};


ngx_int_t
ngx_http_capture_quota_init_process(ngx_cycle_t *cycle,
    ngx_http_capture_quota_t *q)
{
    q->log = cycle->log;
    q->timer.handler = ngx_http_capture_quota_start;
    q->timer.data = q;
    q->timer.log = cycle->log;
    q->timer.cancelable = 1;

    ngx_add_timer(&q->timer, 1);

    return NGX_OK;
}


void
ngx_http_capture_quota_exit_process(ngx_http_capture_quota_t *q)
{
    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    if (q->pc.connection) {
        ngx_close_connection(q->pc.connection);
        q->pc.connection = NULL;
    }

    if (q->pool) {
        ngx_destroy_pool(q->pool);
        q->pool = NULL;
    }
}


/* 1 if the token is limited for the resource the event belongs to */

ngx_int_t
ngx_http_capture_quota_limited(ngx_http_capture_quota_t *q,
    const capture_msg_t *m)
{
    size_t       len;
    ngx_uint_t   i, res;
    ngx_str_t   *t;
    const char  *event;

    event = m->event;

    if (q == NULL || q->pool == NULL) {
        return 0;
    }

    if (ngx_strcmp(event, "$exception") == 0) {
        res = 1;

    } else if (!m->product_tour
               && (ngx_strcmp(event, "survey sent") == 0
                   || ngx_strcmp(event, "survey shown") == 0
                   || ngx_strcmp(event, "survey dismissed") == 0))
    {
        /* §7.1: a product tour's survey events are ordinary events */
        res = 2;

    } else if (ngx_strncmp(event, "$ai_", 4) == 0) {
        res = 3;

    } else {
        res = 0;
    }

    /* scoped events follow their own quota only, even over "events" */

    len = ngx_strlen(m->token);
    t = q->sets[res].elts;

    for (i = 0; i < q->sets[res].nelts; i++) {
        if (t[i].len == len && ngx_strncmp(t[i].data, m->token, len) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_capture_quota_start(ngx_event_t *ev)
{
    u_char                    *p;
    size_t                     len;
    ngx_str_t                  now;
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    ngx_http_capture_quota_t  *q;

    q = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_add_timer(&q->timer, q->interval);

    if (q->pc.connection) {
        /* the previous round is still out: let its timeout end it */
        return;
    }

    q->next = ngx_create_pool(4096, q->log);
    if (q->next == NULL) {
        return;
    }

    q->out.data = ngx_pnalloc(q->next, 1024);
    if (q->out.data == NULL) {
        goto failed;
    }

    /* members whose score (limited-until, unix seconds) is still ahead */
    now.data = (u_char *) q->tmp;
    now.len = ngx_sprintf(now.data, "%T", ngx_time()) - now.data;

    p = q->out.data;

    for (i = 0; i < NGX_HTTP_CAPTURE_QUOTA_RESOURCES; i++) {
        len = q->prefix.len + sizeof("@posthog/quota-limits/") - 1
              + ngx_strlen(ngx_http_capture_quota_resources[i]);

        p = ngx_sprintf(p, "*4\r\n$13\r\nZRANGEBYSCORE\r\n$%uz\r\n%V"
                        "@posthog/quota-limits/%s\r\n$%uz\r\n%V\r\n"
                        "$4\r\n+inf\r\n",
                        len, &q->prefix, ngx_http_capture_quota_resources[i],
                        now.len, &now);
    }

    q->out.len = p - q->out.data;
    q->sent = 0;

    q->in = ngx_create_temp_buf(q->next, 65536);
    if (q->in == NULL) {
        goto failed;
    }

    ngx_memzero(&q->pc, sizeof(ngx_peer_connection_t));
    q->pc.sockaddr = q->addr.sockaddr;
    q->pc.socklen = q->addr.socklen;
    q->pc.name = &q->addr.name;
    q->pc.get = ngx_http_capture_quota_peer;
    q->pc.log = q->log;
    q->pc.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&q->pc);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        q->pc.connection = NULL;
        goto failed;
    }

    q->pc.connection->data = q;
    q->pc.connection->pool = q->next;
    q->pc.connection->read->handler = ngx_http_capture_quota_read;
    q->pc.connection->write->handler = ngx_http_capture_quota_write;

    ngx_add_timer(q->pc.connection->read, NGX_HTTP_CAPTURE_QUOTA_TIMEOUT);

    if (rc == NGX_OK) {
        ngx_http_capture_quota_write(q->pc.connection->write);
    }

    return;

failed:

    ngx_http_capture_quota_finish(q, 0);
}


static ngx_int_t
ngx_http_capture_quota_peer(ngx_peer_connection_t *pc, void *data)
{
    return NGX_OK;
}


static void
ngx_http_capture_quota_write(ngx_event_t *wev)
{
    ssize_t                    n;
    ngx_connection_t          *c;
    ngx_http_capture_quota_t  *q;

    c = wev->data;
    q = c->data;

    if (wev->timedout) {
        ngx_http_capture_quota_finish(q, 0);
        return;
    }

    while (q->sent < q->out.len) {
        n = c->send(c, q->out.data + q->sent, q->out.len - q->sent);

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_http_capture_quota_finish(q, 0);
            }

            return;
        }

        if (n == NGX_ERROR) {
            ngx_http_capture_quota_finish(q, 0);
            return;
        }

        q->sent += n;
    }
}


static void
ngx_http_capture_quota_read(ngx_event_t *rev)
{
    ssize_t                    n;
    ngx_int_t                  rc;
    ngx_connection_t          *c;
    ngx_http_capture_quota_t  *q;

    c = rev->data;
    q = c->data;

    if (rev->timedout) {
        ngx_log_error(NGX_LOG_ERR, q->log, NGX_ETIMEDOUT,
                      "capture: quota limits from redis timed out");
        ngx_http_capture_quota_finish(q, 0);
        return;
    }

    /* edge-triggered: read until EAGAIN */

    for ( ;; ) {
        if (q->in->last == q->in->end) {
            ngx_log_error(NGX_LOG_ERR, q->log, 0,
                          "capture: quota limits reply too large");
            ngx_http_capture_quota_finish(q, 0);
            return;
        }

        n = c->recv(c, q->in->last, q->in->end - q->in->last);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_http_capture_quota_finish(q, 0);
            return;
        }

        q->in->last += n;
    }

    rc = ngx_http_capture_quota_parse(q);

    if (rc == NGX_AGAIN) {
        if (ngx_handle_read_event(rev, 0) != NGX_OK) {
            ngx_http_capture_quota_finish(q, 0);
        }

        return;
    }

    ngx_http_capture_quota_finish(q, rc == NGX_OK);
}


/* RESP arrays of bulk strings, one per resource; NGX_AGAIN if partial */

static ngx_int_t
ngx_http_capture_quota_parse(ngx_http_capture_quota_t *q)
{
    u_char      *p, *last, *e;
    ngx_int_t    n, len, k;
    ngx_str_t   *t;
    ngx_uint_t   i;

    p = q->in->pos;
    last = q->in->last;

    for (i = 0; i < NGX_HTTP_CAPTURE_QUOTA_RESOURCES; i++) {
        if (ngx_array_init(&q->next_sets[i], q->next, 4, sizeof(ngx_str_t))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < NGX_HTTP_CAPTURE_QUOTA_RESOURCES; i++) {
        e = ngx_strlcasestrn(p, last, (u_char *) "\r\n", 2 - 1);
        if (e == NULL) {
            return NGX_AGAIN;
        }

        if (*p != '*') {
            ngx_log_error(NGX_LOG_ERR, q->log, 0,
                          "capture: redis error: \"%*s\"", e - p, p);
            return NGX_ERROR;
        }

        n = ngx_atoi(p + 1, e - p - 1);
        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        p = e + 2;

        for (k = 0; k < n; k++) {
            e = ngx_strlcasestrn(p, last, (u_char *) "\r\n", 2 - 1);
            if (e == NULL) {
                return NGX_AGAIN;
            }

            if (*p != '$') {
                return NGX_ERROR;
            }

            len = ngx_atoi(p + 1, e - p - 1);
            if (len == NGX_ERROR) {
                return NGX_ERROR;
            }

            p = e + 2;

            if (last - p < len + 2) {
                return NGX_AGAIN;
            }

            t = ngx_array_push(&q->next_sets[i]);
            if (t == NULL) {
                return NGX_ERROR;
            }

            t->data = p;
            t->len = len;

            p += len + 2;
        }
    }

    return NGX_OK;
}


static void
ngx_http_capture_quota_finish(ngx_http_capture_quota_t *q, ngx_uint_t ok)
{
    ngx_uint_t  i, n;

    if (q->pc.connection) {
        /* the reply buffer lives in q->next, not in the connection */
        q->pc.connection->pool = NULL;
        ngx_close_connection(q->pc.connection);
        q->pc.connection = NULL;
    }

    if (!ok) {
        /* fail open: the previous sets stay */
        if (q->next) {
            ngx_destroy_pool(q->next);
            q->next = NULL;
        }

        return;
    }

    if (q->pool) {
        ngx_destroy_pool(q->pool);
    }

    q->pool = q->next;
    q->next = NULL;

    n = 0;

    for (i = 0; i < NGX_HTTP_CAPTURE_QUOTA_RESOURCES; i++) {
        q->sets[i] = q->next_sets[i];
        n += q->sets[i].nelts;
    }

    q->loaded = n;
}
