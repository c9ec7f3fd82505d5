/*
 * Copyright (C) edgehog
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_edgehog_response.h"


static ngx_int_t ngx_http_edgehog_header_out(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);


ngx_table_elt_t *
ngx_http_edgehog_header_in(ngx_http_request_t *r, const char *name,
    size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    /* nginx 1.22 has no dedicated headers_in field for Origin and friends */

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


static ngx_int_t
ngx_http_edgehog_header_out(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.len = ngx_strlen(name);
    h->key.data = (u_char *) name;
    h->value = *value;

    return NGX_OK;
}


/*
 * capture-rs and the flags service mirror Origin and the requested
 * headers (tower-http's "very permissive" layer), on errors too.
 */

ngx_int_t
ngx_http_edgehog_cors(ngx_http_request_t *r, ngx_uint_t preflight)
{
    ngx_str_t         v;
    ngx_table_elt_t  *origin, *req_headers;

    origin = ngx_http_edgehog_header_in(r, "Origin", sizeof("Origin") - 1);

    if (origin) {
        if (ngx_http_edgehog_header_out(r, "Access-Control-Allow-Origin",
                                        &origin->value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ngx_str_set(&v, "true");
        if (ngx_http_edgehog_header_out(r, "Access-Control-Allow-Credentials",
                                        &v)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    ngx_str_set(&v, "origin, access-control-request-method, "
                    "access-control-request-headers");
    if (ngx_http_edgehog_header_out(r, "Vary", &v) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!preflight) {
        return NGX_OK;
    }

    ngx_str_set(&v, "GET,POST,OPTIONS");
    if (ngx_http_edgehog_header_out(r, "Access-Control-Allow-Methods", &v)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    req_headers = ngx_http_edgehog_header_in(r,
                                 "Access-Control-Request-Headers",
                                 sizeof("Access-Control-Request-Headers") - 1);
    if (req_headers) {
        if (ngx_http_edgehog_header_out(r, "Access-Control-Allow-Headers",
                                        &req_headers->value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_edgehog_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_str_t *body)
{
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    if (ngx_http_edgehog_cors(r, 0) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        /* SDKs retry 503; Retry-After tells them when */
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        ngx_str_set(&h->value, "1");
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = body ? (off_t) body->len : 0;

    if (type) {
        r->headers_out.content_type = *type;
        r->headers_out.content_type_len = type->len;
    }

    if (body == NULL || body->len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_edgehog_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *error)
{
    size_t     len;
    u_char    *p;
    ngx_str_t  body, type;

    len = ngx_strlen(error);

    body.data = ngx_pnalloc(r->pool, sizeof("{\"status\":,\"code\":\"\","
                                            "\"error\":\"\"}") - 1
                                     + NGX_INT_T_LEN + ngx_strlen(code)
                                     + len + ngx_escape_json(NULL,
                                                  (u_char *) error, len));
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body.data, "{\"status\":%ui,\"code\":\"%s\",\"error\":\"",
                    status, code);
    p = (u_char *) ngx_escape_json(p, (u_char *) error, len);
    p = ngx_cpymem(p, "\"}", 2);

    body.len = p - body.data;

    ngx_str_set(&type, "application/json");

    return ngx_http_edgehog_send(r, status, &type, &body);
}


ngx_int_t
ngx_http_edgehog_preflight(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_edgehog_cors(r, 1) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    return ngx_http_send_header(r);
}
