/*
 * Copyright (C) edgehog
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_capture_module.h"
#include "ngx_http_capture_kafka.h"
#include "ngx_http_capture_metrics.h"
#include "ngx_http_edgehog_response.h"
#include "capture_base64.h"
#include "capture_decode.h"
#include "capture_event.h"
#include "capture_form.h"
#include "eh_time.h"


static ngx_int_t ngx_http_capture_body_flatten(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_capture_query_arg(ngx_http_request_t *r,
    const char *name, ngx_str_t *value, ngx_uint_t unescape);
static ngx_int_t ngx_http_capture_client_ip(ngx_http_request_t *r,
    ngx_str_t *ip);
static ngx_int_t ngx_http_capture_ip_text(ngx_http_request_t *r, u_char *p,
    size_t len, ngx_str_t *ip);
static void *ngx_http_capture_pool_alloc(void *ctx, size_t size);
static void ngx_http_capture_pool_free(void *ctx, void *p);
static void ngx_http_capture_send_error(ngx_http_request_t *r, ngx_uint_t
    status, const char *code, const char *error);


/* client address headers in capture-rs's order (spec §4.8) */
static const char  *ngx_http_capture_ip_headers[] = {
    "X-Real-Ip", "Fly-Client-IP", "True-Client-IP", "CF-Connecting-IP",
    "CloudFront-Viewer-Address", NULL
};


void
ngx_http_capture_body_process(ngx_http_request_t *r)
{
    int                            valid;
    size_t                         n, len;
    u_char                        *text;
    int64_t                        us;
    ngx_str_t                      body, data, arg, ip;
    ngx_int_t                      rc;
    size_t                         filtered;
    ngx_uint_t                     i, level;
    struct timeval                 tv;
    capture_msg_t                 *msgs;
    capture_alloc_t                alloc;
    capture_error_t                err;
    ngx_table_elt_t               *h;
    capture_request_t              req;
    capture_decode_in_t            in;
    ngx_http_capture_shm_t        *shm;
    ngx_http_capture_loc_conf_t   *lcf;
    ngx_http_capture_main_conf_t  *mcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_capture_module);
    mcf = ngx_http_get_module_main_conf(r, ngx_http_capture_module);
    shm = NULL;

    ngx_memzero(&req, sizeof(capture_request_t));
    ngx_memzero(&in, sizeof(capture_decode_in_t));

    ngx_gettimeofday(&tv);
    req.now_us = (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;

    /* a test-only pinned clock; the directive is off by default */
    if (lcf->test_clock) {
        h = ngx_http_edgehog_header_in(r, "X-Capture-Test-Now",
                                       sizeof("X-Capture-Test-Now") - 1);
        if (h
            && eh_time_parse((char *) h->value.data, h->value.len, 0, &us)
               == 0)
        {
            req.now_us = us;
        }
    }

    /* §2.1: integer "_" and "beacon", else the query fails as in axum */

    if (ngx_http_capture_query_arg(r, "_", &arg, 0) == NGX_OK) {
        rc = capture_event_sent_at_ms((char *) arg.data, arg.len, &us,
                                      &valid);
        if (rc == 0) {
            req.sent_at_us = us;
            req.has_sent_at = 1;
        }

        if (!valid && lcf->strict) {
            ngx_http_capture_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_query",
                                        "Failed to deserialize query "
                                        "string: _: invalid digit found "
                                        "in string");
            return;
        }
    }

    if (ngx_http_capture_query_arg(r, "beacon", &arg, 0) == NGX_OK) {
        if (arg.len == 0 || ngx_atoi(arg.data[0] == '-' ? arg.data + 1
                                                        : arg.data,
                                     arg.data[0] == '-' ? arg.len - 1
                                                        : arg.len)
                            == NGX_ERROR)
        {
            ngx_http_capture_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_query",
                                        "Failed to deserialize query "
                                        "string: beacon: invalid digit "
                                        "found in string");
            return;
        }
    }

    alloc.alloc = ngx_http_capture_pool_alloc;
    alloc.free = ngx_http_capture_pool_free;
    alloc.ctx = r->pool;

    if (ngx_http_capture_query_arg(r, "data", &data, 1) == NGX_OK
        && data.len)
    {
        /*
         * lenient: an unescaped '+' of base64 in the query arrives as a
         * space, as in form bodies (§2.4); JSON never looks like base64
         */
        if (!lcf->strict
            && capture_base64_is_likely(data.data, data.len,
                                        CAPTURE_BASE64_LIKELY_LOOSE))
        {
            for (i = 0; i < data.len; i++) {
                if (data.data[i] == ' ') {
                    data.data[i] = '+';
                }
            }
        }

        in.query_data = data.data;
        in.query_data_len = data.len;

    } else {
        rc = ngx_http_capture_body_flatten(r, &body);
        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, rc);
            return;
        }

        in.body = body.data;
        in.body_len = body.len;
    }

    if (ngx_http_capture_query_arg(r, "compression", &arg, 1) == NGX_OK) {
        in.query_compression = arg.data;
        in.query_compression_len = arg.len;
    }

    if (r->headers_in.content_type) {
        in.content_type = r->headers_in.content_type->value.data;
        in.content_type_len = r->headers_in.content_type->value.len;
    }

    h = ngx_http_edgehog_header_in(r, "Content-Encoding",
                                   sizeof("Content-Encoding") - 1);
    if (h) {
        in.content_encoding = h->value.data;
        in.content_encoding_len = h->value.len;
    }

    in.max_size = lcf->max_decompressed_size;
    in.alloc = &alloc;
    in.legacy = capture_decode_path_is_legacy(r->uri.data, r->uri.len);
    in.strict = lcf->strict;
    /* the body (or the query's copy of data=) outlives the request's use */
    in.borrow = 1;

    if (capture_decode(&in, &text, &len, &err) != 0) {
        goto rejected;
    }

    if (ngx_http_capture_client_ip(r, &ip) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    req.ip = (const char *) ip.data;
    req.engage = r->uri.len >= 7
                 && ngx_strncmp(r->uri.data, "/engage", 7) == 0;
    req.strict = lcf->strict;

    /* §3.1: Django read a GET's token from the query; opt-in here */
    if (lcf->query_token && (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        rc = ngx_http_capture_query_arg(r, "token", &arg, 1);

        if (rc == NGX_DECLINED || (rc == NGX_OK && arg.len == 0)) {
            rc = ngx_http_capture_query_arg(r, "api_key", &arg, 1);
        }

        if (rc == NGX_ERROR) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        if (rc == NGX_OK && arg.len) {
            req.query_token = (const char *) arg.data;
            req.query_token_len = arg.len;
        }
    }
    req.max_message_size = lcf->max_message_size;
    req.alloc = mcf->blocks ? &mcf->msg_alloc : NULL;

    shm = ngx_http_capture_shm(r);

    if (shm) {
        (void) ngx_atomic_fetch_add(&shm->bytes_decoded, len);
    }

    filtered = 0;
    req.filtered = &filtered;

    if (capture_event_build(&req, (const char *) text, len, &msgs, &n, &err)
        != 0)
    {
        goto rejected;
    }

    if (shm) {
        (void) ngx_atomic_fetch_add(&shm->events_received, n + filtered);
        (void) ngx_atomic_fetch_add(
                  &shm->dropped[NGX_HTTP_CAPTURE_DROP_PERFORMANCE], filtered);
    }

    if (ngx_http_capture_limits_apply(r, msgs, n) != NGX_OK) {
        capture_msgs_free(msgs, n);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0; i < n && msgs[i].dropped; i++) { /* void */ }

    if (i == n) {
        capture_msgs_free(msgs, n);
        n = 0;
    }

    if (n == 0) {
        /* every event was filtered: accepted, nothing to produce */
        ngx_http_capture_done(r, NGX_HTTP_OK);
        return;
    }

    rc = ngx_http_capture_kafka_produce(r, msgs, n, ngx_http_capture_done);

    /* librdkafka took the values it produced and copied the rest */
    capture_msgs_free(msgs, n);

    if (rc == NGX_DONE) {
        /* finalized by ngx_http_capture_done() */
        return;
    }

    ngx_http_finalize_request(r, rc);

    return;

rejected:

    shm = ngx_http_capture_shm(r);
    if (shm) {
        (void) ngx_atomic_fetch_add(
                      &shm->dropped[NGX_HTTP_CAPTURE_DROP_REJECTED], 1);
    }

    level = (err.status >= 500) ? NGX_LOG_ERR : NGX_LOG_INFO;

    ngx_log_error(level, r->connection->log, 0,
                  "capture: rejected request: %d %s", err.status, err.error);

    ngx_http_capture_send_error(r, err.status, err.code, err.error);
}


static void
ngx_http_capture_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *error)
{
    ngx_int_t  rc;

    rc = ngx_http_edgehog_send_error(r, status, code, error);
    ngx_http_finalize_request(r, rc);
}


/*
 * the body flattened into one buffer (a spilled body is read back); the
 * copy is cheap next to the rest: with the whole 48 KB /batch/ body in
 * one buffer (client_header_buffer_size 64k, no copy) bench-capture's
 * (d) took 155 against 160 us of event loop CPU per batch, within the
 * rounds' noise (session 4).  Session 9, kept out: one flattening
 * buffer per process instead of 48 KB from the pool per /batch/; the
 * pool's free of it runs malloc_consolidate() on the fastbins that the
 * delivery reports' header frees fill, but without it nginx's free of
 * the body buffer does the same work: callgrind of bench-capture-alloc
 * batch (modelled so) 2188 -> 2191 M instructions, consolidation 50.6 ->
 * 52.3 M (the work is per fastbin chunk, not per trigger)
 */

static ngx_int_t
ngx_http_capture_body_flatten(ngx_http_request_t *r, ngx_str_t *body)
{
    off_t         len;
    u_char       *p;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    body->len = 0;
    body->data = NULL;

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

    if (cl == NULL && r->request_body->bufs->next == NULL
        && !r->request_body->bufs->buf->in_file)
    {
        /* the common case: one memory buffer, used in place */
        b = r->request_body->bufs->buf;
        body->data = b->pos;
        body->len = b->last - b->pos;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body->data = p;

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

    body->len = p - body->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_capture_query_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value, ngx_uint_t unescape)
{
    u_char  *p;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), value) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (!unescape || value->len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, value->len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    /* form rules: '+' is a space, as serde_urlencoded decodes a query */
    value->len = capture_form_unescape(p, value->data, value->len);
    value->data = p;
    p[value->len] = '\0';

    return NGX_OK;
}


/*
 * §4.8: the leftmost valid address of X-Forwarded-For, then Forwarded,
 * then the single-address headers, then the peer (realip's result when
 * that module rewrote it).
 */

static ngx_int_t
ngx_http_capture_client_ip(ngx_http_request_t *r, ngx_str_t *ip)
{
    u_char            *p, *last, *s, *e;
    ngx_uint_t         i;
    ngx_table_elt_t   *h;

    h = ngx_http_edgehog_header_in(r, "X-Forwarded-For",
                                   sizeof("X-Forwarded-For") - 1);

    for ( /* void */ ; h; h = NULL) {
        p = h->value.data;
        last = p + h->value.len;

        while (p < last) {
            e = ngx_strlchr(p, last, ',');
            if (e == NULL) {
                e = last;
            }

            if (ngx_http_capture_ip_text(r, p, e - p, ip) == NGX_OK) {
                return NGX_OK;
            }

            p = e + 1;
        }
    }

    h = ngx_http_edgehog_header_in(r, "Forwarded", sizeof("Forwarded") - 1);

    if (h) {
        p = h->value.data;
        last = p + h->value.len;

        while (p + 4 <= last) {
            if (ngx_strncasecmp(p, (u_char *) "for=", 4) != 0) {
                p++;
                continue;
            }

            s = p + 4;
            e = s;

            while (e < last && *e != ';' && *e != ',') {
                e++;
            }

            if (e > s && *s == '"') {
                s++;
            }

            if (e > s && e[-1] == '"') {
                e--;
            }

            if (e > s && *s == '[') {
                s++;
                p = ngx_strlchr(s, e, ']');
                if (p) {
                    e = p;
                }
            }

            if (ngx_http_capture_ip_text(r, s, e - s, ip) == NGX_OK) {
                return NGX_OK;
            }

            break;
        }
    }

    for (i = 0; ngx_http_capture_ip_headers[i]; i++) {
        h = ngx_http_edgehog_header_in(r, ngx_http_capture_ip_headers[i],
                                   ngx_strlen(ngx_http_capture_ip_headers[i]));
        if (h == NULL) {
            continue;
        }

        if (ngx_http_capture_ip_text(r, h->value.data, h->value.len, ip)
            == NGX_OK)
        {
            return NGX_OK;
        }

        /* CloudFront-Viewer-Address is ip:port */
        p = h->value.data + h->value.len;

        while (p > h->value.data && p[-1] != ':') {
            p--;
        }

        if (p > h->value.data + 1
            && ngx_http_capture_ip_text(r, h->value.data,
                                        p - 1 - h->value.data, ip)
               == NGX_OK)
        {
            return NGX_OK;
        }
    }

    p = ngx_pnalloc(r->pool, r->connection->addr_text.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ip->len = r->connection->addr_text.len;
    ip->data = p;
    ngx_memcpy(p, r->connection->addr_text.data, ip->len);
    p[ip->len] = '\0';

    return NGX_OK;
}


/* an address in canonical text (IPv6 compressed), NUL-terminated */

static ngx_int_t
ngx_http_capture_ip_text(ngx_http_request_t *r, u_char *p, size_t len,
    ngx_str_t *ip)
{
    u_char     *d;
    ngx_addr_t  addr;

    while (len && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }

    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
        len--;
    }

    if (len == 0 || ngx_parse_addr(r->pool, &addr, p, len) != NGX_OK) {
        return NGX_DECLINED;
    }

    d = ngx_pnalloc(r->pool, NGX_SOCKADDR_STRLEN + 1);
    if (d == NULL) {
        return NGX_ERROR;
    }

    ip->len = ngx_sock_ntop(addr.sockaddr, addr.socklen, d,
                            NGX_SOCKADDR_STRLEN, 0);
    d[ip->len] = '\0';
    ip->data = d;

    return NGX_OK;
}


static void *
ngx_http_capture_pool_alloc(void *ctx, size_t size)
{
    return ngx_palloc(ctx, size);
}


/* large blocks go back at once; small ones live until the request ends */

static void
ngx_http_capture_pool_free(void *ctx, void *p)
{
    ngx_pfree(ctx, p);
}
