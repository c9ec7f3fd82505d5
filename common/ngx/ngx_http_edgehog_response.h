/*
 * Copyright (C) edgehog
 */

/*
 * Response helpers shared by the capture and decide modules: permissive
 * CORS on every answer and JSON bodies, so nginx's HTML error pages never
 * reach an SDK.
 */

#ifndef _NGX_HTTP_EDGEHOG_RESPONSE_H_INCLUDED_
#define _NGX_HTTP_EDGEHOG_RESPONSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_table_elt_t *ngx_http_edgehog_header_in(ngx_http_request_t *r,
    const char *name, size_t len);
ngx_int_t ngx_http_edgehog_cors(ngx_http_request_t *r, ngx_uint_t preflight);
ngx_int_t ngx_http_edgehog_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_str_t *body);
ngx_int_t ngx_http_edgehog_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *error);
ngx_int_t ngx_http_edgehog_preflight(ngx_http_request_t *r);


#endif /* _NGX_HTTP_EDGEHOG_RESPONSE_H_INCLUDED_ */
