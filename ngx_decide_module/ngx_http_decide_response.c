/*
 * Copyright (C) edgehog
 */

/*
 * Serialising one evaluation into each response format (spec/decide.md
 * 2.1-2.4, CORPUS legacy_projection.json), error bodies (spec 7) and
 * the config part built once per team snapshot from posthog_team.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_decide_module.h"
#include "ngx_http_edgehog_response.h"


#define ngx_http_decide_out_lit(o, s)                                        \
    ngx_http_decide_out_raw(o, s, sizeof(s) - 1)

/* distinct outcomes kept per flag; rarer ones are rendered every time */
#define NGX_HTTP_DECIDE_DETAILS_MAX  8


typedef struct {
    ngx_pool_t                 *pool;
    u_char                     *start;
    u_char                     *pos;
    u_char                     *end;
    unsigned                    failed:1;
} ngx_http_decide_out_t;


static ngx_int_t ngx_http_decide_out_init(ngx_http_decide_out_t *o,
    ngx_http_request_t *r, ngx_http_decide_ctx_t *ctx, size_t size,
    size_t hint);
static u_char *ngx_http_decide_out_reserve(ngx_http_decide_out_t *o,
    size_t n);
static void ngx_http_decide_out_raw(ngx_http_decide_out_t *o, const char *s,
    size_t len);
static void ngx_http_decide_out_str(ngx_http_decide_out_t *o, const char *s);
static void ngx_http_decide_out_strn(ngx_http_decide_out_t *o, const char *s,
    size_t len);
static void ngx_http_decide_out_json(ngx_http_decide_out_t *o,
    const json_t *v);
static u_char *ngx_http_decide_out_uint(u_char *p, ngx_uint_t n);
static u_char *ngx_http_decide_out_hex(u_char *p, uint32_t n,
    ngx_uint_t digits);
static void ngx_http_decide_out_key(ngx_http_decide_out_t *o,
    ngx_http_decide_ctx_t *ctx, size_t i, const decide_result_t *res);
static void ngx_http_decide_out_payload(ngx_http_decide_out_t *o,
    const decide_result_t *res);
static void ngx_http_decide_out_value(ngx_http_decide_out_t *o,
    const decide_result_t *res);
static void ngx_http_decide_out_detail(ngx_http_decide_out_t *o,
    ngx_http_decide_ctx_t *ctx, size_t i, const decide_result_t *res);
static void ngx_http_decide_out_detail_render(ngx_http_decide_out_t *o,
    ngx_http_decide_ctx_t *ctx, size_t i, const decide_result_t *res);
static ngx_http_decide_detail_t *ngx_http_decide_detail_find(
    ngx_http_decide_team_t *t, size_t i, const decide_result_t *res,
    size_t vlen);
static void ngx_http_decide_detail_add(ngx_http_decide_team_t *t, size_t i,
    const decide_result_t *res, size_t vlen, u_char *data, size_t len);
static void ngx_http_decide_out_common(ngx_http_decide_out_t *o);
static uint64_t ngx_http_decide_random64(void);
static void ngx_http_decide_request_id(uint32_t w[4]);
static ngx_int_t ngx_http_decide_send_json(ngx_http_request_t *r,
    ngx_uint_t status, json_t *doc);
static void ngx_http_decide_common(json_t *doc);
static ngx_uint_t ngx_http_decide_wanted(ngx_http_decide_ctx_t *ctx,
    const decide_result_t *res);
static int ngx_http_decide_team_bool(json_t *team, const char *name);
static json_t *ngx_http_decide_json_or_null(json_t *team, const char *name);


/*
 * Responses are written straight into one buffer: building them as
 * jansson trees cost more than evaluating the flags.
 */
ngx_int_t
ngx_http_decide_send(ngx_http_request_t *r, ngx_http_decide_ctx_t *ctx)
{
    size_t                   i, n;
    ngx_str_t                type, body;
    ngx_uint_t               errors, first, pfirst;
    decide_result_t         *res;
    ngx_http_decide_out_t    o, p;

    /* about 240 bytes per flag in flags-v2 detail: grow rarely */
    n = ctx->results ? decide_team_nflags(ctx->team->team) : 0;

    if (ngx_http_decide_out_init(&o, r, ctx, 1024 + n * 256,
                                 ngx_http_decide_scratch_hint(n))
        != NGX_OK
        || ngx_http_decide_out_init(&p, r, ctx, 256,
                                    ngx_http_decide_scratch_hint(n))
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    errors = 0;
    first = 1;
    pfirst = 1;
    n = ctx->results ? decide_team_nflags(ctx->team->team) : 0;

    switch (ctx->format) {
    case NGX_HTTP_DECIDE_FMT_DECIDE_V1:
        ngx_http_decide_out_lit(&o, "{\"featureFlags\":[");
        break;
    case NGX_HTTP_DECIDE_FMT_FLAGS_V2:
        ngx_http_decide_out_lit(&o, "{\"flags\":{");
        break;
    default:
        ngx_http_decide_out_lit(&o, "{\"featureFlags\":{");
        break;
    }

    for (i = 0; i < n; i++) {
        res = &ctx->results[i];

        if (!ngx_http_decide_wanted(ctx, res)) {
            continue;
        }

        if (res->status == DECIDE_STATUS_FAILED) {
            errors = 1;
            res->enabled = 0;
            res->variant = NULL;
            res->payload = NULL;
            res->payload_json = NULL;
        }

        if (res->errors) {
            errors = 1;
        }

        switch (ctx->format) {

        case NGX_HTTP_DECIDE_FMT_DECIDE_V1:
            if (res->enabled) {
                if (!first) {
                    ngx_http_decide_out_lit(&o, ",");
                }

                first = 0;
                ngx_http_decide_out_key(&o, ctx, i, res);
            }

            break;

        case NGX_HTTP_DECIDE_FMT_DECIDE_V2:
        case NGX_HTTP_DECIDE_FMT_FLAGS_V1:
            if (!res->enabled
                && ctx->format == NGX_HTTP_DECIDE_FMT_DECIDE_V2)
            {
                break;
            }

            if (!first) {
                ngx_http_decide_out_lit(&o, ",");
            }

            first = 0;
            ngx_http_decide_out_key(&o, ctx, i, res);
            ngx_http_decide_out_lit(&o, ":");
            ngx_http_decide_out_value(&o, res);

            if (ctx->format == NGX_HTTP_DECIDE_FMT_FLAGS_V1
                && res->enabled && res->payload)
            {
                if (!pfirst) {
                    ngx_http_decide_out_lit(&p, ",");
                }

                pfirst = 0;
                ngx_http_decide_out_key(&p, ctx, i, res);
                ngx_http_decide_out_lit(&p, ":");
                ngx_http_decide_out_payload(&p, res);
            }

            break;

        default: /* NGX_HTTP_DECIDE_FMT_FLAGS_V2 */
            if (!first) {
                ngx_http_decide_out_lit(&o, ",");
            }

            first = 0;
            ngx_http_decide_out_detail(&o, ctx, i, res);
            break;
        }
    }

    switch (ctx->format) {

    case NGX_HTTP_DECIDE_FMT_DECIDE_V1:
        ngx_http_decide_out_lit(&o, "]");
        break;

    case NGX_HTTP_DECIDE_FMT_DECIDE_V2:
        ngx_http_decide_out_lit(&o, "}");
        break;

    case NGX_HTTP_DECIDE_FMT_FLAGS_V1:
        ngx_http_decide_out_lit(&o, "},\"featureFlagPayloads\":{");
        ngx_http_decide_out_raw(&o, (char *) p.start, p.pos - p.start);
        ngx_http_decide_out_lit(&o, "}");
        /* fall through */

    default:
        if (ctx->format == NGX_HTTP_DECIDE_FMT_FLAGS_V2) {
            ngx_http_decide_out_lit(&o, "}");
        }

        if (errors) {
            ngx_http_decide_out_lit(&o,
                                    ",\"errorsWhileComputingFlags\":true");
        } else {
            ngx_http_decide_out_lit(&o,
                                    ",\"errorsWhileComputingFlags\":false");
        }

        break;
    }

    if (ctx->quota_limited) {
        ngx_http_decide_out_lit(&o,
                                ",\"quotaLimited\":[\"feature_flags\"]");
    }

    ngx_http_decide_out_common(&o);

    if (ctx->config && ctx->team && ctx->team->config_len) {
        ngx_http_decide_out_lit(&o, ",");
        ngx_http_decide_out_raw(&o, ctx->team->config_text,
                                ctx->team->config_len);
    }

    ngx_http_decide_out_lit(&o, "}");

    if (o.failed || p.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = o.start;
    body.len = o.pos - o.start;
    ngx_str_set(&type, "application/json");

    return ngx_http_edgehog_send(r, NGX_HTTP_OK, &type, &body);
}


static ngx_int_t
ngx_http_decide_out_init(ngx_http_decide_out_t *o, ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx, size_t size, size_t hint)
{
    o->pool = r->pool;
    o->failed = 0;
    o->start = ngx_http_decide_scratch_alloc(r, ctx, size, hint, 0);

    if (o->start == NULL) {
        return NGX_ERROR;
    }

    o->pos = o->start;
    o->end = o->start + size;

    return NGX_OK;
}


static u_char *
ngx_http_decide_out_reserve(ngx_http_decide_out_t *o, size_t n)
{
    size_t   size, used;
    u_char  *p;

    if (o->failed) {
        return NULL;
    }

    if ((size_t) (o->end - o->pos) >= n) {
        return o->pos;
    }

    used = o->pos - o->start;
    size = (o->end - o->start) * 2;

    while (size < used + n) {
        size *= 2;
    }

    p = ngx_pnalloc(o->pool, size);
    if (p == NULL) {
        o->failed = 1;
        return NULL;
    }

    ngx_memcpy(p, o->start, used);
    o->start = p;
    o->pos = p + used;
    o->end = p + size;

    return o->pos;
}


static void
ngx_http_decide_out_raw(ngx_http_decide_out_t *o, const char *s, size_t len)
{
    if (ngx_http_decide_out_reserve(o, len) != NULL) {
        o->pos = ngx_cpymem(o->pos, s, len);
    }
}


static void
ngx_http_decide_out_str(ngx_http_decide_out_t *o, const char *s)
{
    size_t  len, esc;

    len = ngx_strlen(s);
    esc = ngx_escape_json(NULL, (u_char *) s, len);

    if (ngx_http_decide_out_reserve(o, len + esc + 2) != NULL) {
        *o->pos++ = '"';
        o->pos = (u_char *) ngx_escape_json(o->pos, (u_char *) s, len);
        *o->pos++ = '"';
    }
}


/* stored values verbatim (payloads are usually JSON strings) */
static void
ngx_http_decide_out_json(ngx_http_decide_out_t *o, const json_t *v)
{
    char  *s;

    if (json_is_string(v)) {
        ngx_http_decide_out_strn(o, json_string_value(v),
                                 json_string_length(v));
        return;
    }

    s = json_dumps(v, JSON_COMPACT|JSON_ENCODE_ANY);
    if (s == NULL) {
        o->failed = 1;
        return;
    }

    ngx_http_decide_out_raw(o, s, ngx_strlen(s));
    free(s);
}


/* the engine's text rendered at snapshot load, else render it now */
static void
ngx_http_decide_out_payload(ngx_http_decide_out_t *o,
    const decide_result_t *res)
{
    if (res->payload_json) {
        ngx_http_decide_out_raw(o, res->payload_json, res->payload_json_len);
        return;
    }

    ngx_http_decide_out_json(o, res->payload);
}


/* jansson strings may hold NUL bytes: escape them as \u0000 */
static void
ngx_http_decide_out_strn(ngx_http_decide_out_t *o, const char *s, size_t len)
{
    size_t  i, start;

    if (memchr(s, '\0', len) == NULL) {
        if (ngx_http_decide_out_reserve(o, len
                             + ngx_escape_json(NULL, (u_char *) s, len) + 2)
            != NULL)
        {
            *o->pos++ = '"';
            o->pos = (u_char *) ngx_escape_json(o->pos, (u_char *) s, len);
            *o->pos++ = '"';
        }

        return;
    }

    ngx_http_decide_out_lit(o, "\"");

    for (i = 0, start = 0; i <= len; i++) {
        if (i == len || s[i] == '\0') {
            if (ngx_http_decide_out_reserve(o, (i - start) * 6 + 6) == NULL) {
                return;
            }

            o->pos = (u_char *) ngx_escape_json(o->pos, (u_char *) s + start,
                                                i - start);
            if (i < len) {
                o->pos = ngx_cpymem(o->pos, "\\u0000", 6);
            }

            start = i + 1;
        }
    }

    ngx_http_decide_out_lit(o, "\"");
}


static void
ngx_http_decide_out_value(ngx_http_decide_out_t *o,
    const decide_result_t *res)
{
    if (res->variant) {
        ngx_http_decide_out_str(o, res->variant);

    } else if (res->enabled) {
        ngx_http_decide_out_lit(o, "true");

    } else {
        ngx_http_decide_out_lit(o, "false");
    }
}


static void
ngx_http_decide_out_key(ngx_http_decide_out_t *o, ngx_http_decide_ctx_t *ctx,
    size_t i, const decide_result_t *res)
{
    ngx_str_t  *key;

    key = &ctx->team->flag_key[i];

    if (key->len) {
        ngx_http_decide_out_raw(o, (char *) key->data, key->len);
        return;
    }

    ngx_http_decide_out_str(o, res->key);
}


/* decimal without ngx_sprintf()'s format parsing: this runs per flag */
static u_char *
ngx_http_decide_out_uint(u_char *p, ngx_uint_t n)
{
    u_char   tmp[NGX_INT_T_LEN], *t;

    t = tmp + NGX_INT_T_LEN;

    do {
        *--t = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n);

    return ngx_cpymem(p, t, tmp + NGX_INT_T_LEN - t);
}


/* the lowest digits hex digits of n, lowercase, zero-padded */
static u_char *
ngx_http_decide_out_hex(u_char *p, uint32_t n, ngx_uint_t digits)
{
    static u_char  hex[] = "0123456789abcdef";

    while (digits) {
        digits--;
        *p++ = hex[(n >> (digits * 4)) & 0xf];
    }

    return p;
}


/*
 * A flag's detail depends on the flag and on its outcome alone, and a
 * flag has few outcomes (a reason, a condition, a variant): the first
 * time one is written its bytes are kept with the team, later requests
 * copy them.  Kept only what the key below fully determines: results
 * that failed carry an error code, and a payload not rendered with the
 * snapshot is rendered per request.
 */
static void
ngx_http_decide_out_detail(ngx_http_decide_out_t *o,
    ngx_http_decide_ctx_t *ctx, size_t i, const decide_result_t *res)
{
    size_t                     used, vlen;
    ngx_http_decide_team_t    *t;
    ngx_http_decide_detail_t  *d;

    t = ctx->team;

    if (t->flag_key[i].len == 0
        || res->status != DECIDE_STATUS_OK
        || res->reason >= DECIDE_REASON_ERROR
        || (res->payload && res->payload_json == NULL))
    {
        ngx_http_decide_out_detail_render(o, ctx, i, res);
        return;
    }

    vlen = res->variant ? ngx_strlen(res->variant) : 0;

    d = ngx_http_decide_detail_find(t, i, res, vlen);

    if (d) {
        ngx_http_decide_out_raw(o, (char *) d->data, d->len);
        return;
    }

    used = o->pos - o->start;

    ngx_http_decide_out_detail_render(o, ctx, i, res);

    if (!o->failed) {
        ngx_http_decide_detail_add(t, i, res, vlen, o->start + used,
                                   o->pos - o->start - used);
    }
}


static ngx_http_decide_detail_t *
ngx_http_decide_detail_find(ngx_http_decide_team_t *t, size_t i,
    const decide_result_t *res, size_t vlen)
{
    ngx_http_decide_detail_t  *d;

    if (t->detail == NULL) {
        return NULL;
    }

    for (d = t->detail[i]; d; d = d->next) {
        if (d->reason == (unsigned) res->reason
            && d->condition_index == res->condition_index
            && d->enabled == res->enabled
            && d->groups_skipped == res->groups_skipped
            && d->payload_json == res->payload_json
            && d->has_variant == (res->variant != NULL)
            && d->variant_len == vlen
            && (vlen == 0
                || ngx_memcmp(d->data + d->len, res->variant, vlen) == 0))
        {
            return d;
        }
    }

    return NULL;
}


/* best effort: without memory the detail is simply rendered next time */
static void
ngx_http_decide_detail_add(ngx_http_decide_team_t *t, size_t i,
    const decide_result_t *res, size_t vlen, u_char *data, size_t len)
{
    size_t                     n;
    ngx_http_decide_detail_t  *d;

    if (t->detail == NULL) {
        n = decide_team_nflags(t->team);

        t->detail = ngx_calloc(n * (sizeof(ngx_http_decide_detail_t *) + 1),
                               ngx_cycle->log);
        if (t->detail == NULL) {
            return;
        }

        t->ndetail = (u_char *) (t->detail + n);
    }

    if (t->ndetail[i] >= NGX_HTTP_DECIDE_DETAILS_MAX) {
        return;
    }

    d = ngx_alloc(sizeof(ngx_http_decide_detail_t) + len + vlen,
                  ngx_cycle->log);
    if (d == NULL) {
        return;
    }

    d->payload_json = res->payload_json;
    d->variant_len = vlen;
    d->len = len;
    d->condition_index = res->condition_index;
    d->reason = res->reason;
    d->enabled = res->enabled;
    d->has_variant = (res->variant != NULL);
    d->groups_skipped = res->groups_skipped;

    ngx_memcpy(d->data, data, len);
    ngx_memcpy(d->data + len, res->variant, vlen);

    d->next = t->detail[i];
    t->detail[i] = d;
    t->ndetail[i]++;
}


void
ngx_http_decide_detail_free(ngx_http_decide_team_t *t)
{
    size_t                     i, n;
    ngx_http_decide_detail_t  *d, *next;

    if (t->detail == NULL) {
        return;
    }

    n = decide_team_nflags(t->team);

    for (i = 0; i < n; i++) {
        for (d = t->detail[i]; d; d = next) {
            next = d->next;
            ngx_free(d);
        }
    }

    ngx_free(t->detail);
    t->detail = NULL;
}


/*
 * "key":{"key":..,"enabled":..,"variant":..,"reason":{..},"metadata":{..}}
 * in one reservation from the snapshot's fragments: reason codes and
 * descriptions are our own ASCII constants, which need no escaping.
 */
static void
ngx_http_decide_out_detail_render(ngx_http_decide_out_t *o,
    ngx_http_decide_ctx_t *ctx, size_t i, const decide_result_t *res)
{
    size_t       vlen, esc, size, code_len, text_len;
    u_char      *p;
    ngx_str_t   *key, *meta;
    const char  *code, *text;

    key = &ctx->team->flag_key[i];
    meta = &ctx->team->flag_meta[i];

    if (key->len == 0) {
        /* no fragments: a flag the snapshot could not render */
        ngx_http_decide_out_str(o, res->key);
        ngx_http_decide_out_lit(o, ":{\"key\":");
        ngx_http_decide_out_str(o, res->key);

    } else {
        ngx_http_decide_out_raw(o, (char *) key->data, key->len);
        ngx_http_decide_out_lit(o, ":{\"key\":");
        ngx_http_decide_out_raw(o, (char *) key->data, key->len);
    }

    vlen = res->variant ? ngx_strlen(res->variant) : 0;
    esc = res->variant ? ngx_escape_json(NULL, (u_char *) res->variant, vlen)
                       : 0;
    code = decide_reason_code_n(res, &code_len);
    text = decide_reason_text_n(res, &text_len);

    size = vlen + esc + code_len + text_len + meta->len
           + NGX_INT64_LEN * 4 + 256;

    p = ngx_http_decide_out_reserve(o, size);
    if (p == NULL) {
        return;
    }

    if (res->enabled) {
        p = ngx_cpymem(p, ",\"enabled\":true,\"variant\":",
                       sizeof(",\"enabled\":true,\"variant\":") - 1);
    } else {
        p = ngx_cpymem(p, ",\"enabled\":false,\"variant\":",
                       sizeof(",\"enabled\":false,\"variant\":") - 1);
    }

    if (res->variant) {
        *p++ = '"';
        p = (u_char *) ngx_escape_json(p, (u_char *) res->variant, vlen);
        *p++ = '"';

    } else {
        p = ngx_cpymem(p, "null", 4);
    }

    if (res->status == DECIDE_STATUS_FAILED) {
        p = ngx_cpymem(p, ",\"failed\":true", sizeof(",\"failed\":true") - 1);
    }

    p = ngx_cpymem(p, ",\"reason\":{\"code\":\"",
                   sizeof(",\"reason\":{\"code\":\"") - 1);
    p = ngx_cpymem(p, code, code_len);
    p = ngx_cpymem(p, "\",\"condition_index\":",
                   sizeof("\",\"condition_index\":") - 1);

    if (res->condition_index < 0) {
        p = ngx_cpymem(p, "null", 4);
    } else {
        p = ngx_http_decide_out_uint(p, res->condition_index);
    }

    p = ngx_cpymem(p, ",\"description\":\"",
                   sizeof(",\"description\":\"") - 1);
    p = ngx_cpymem(p, text, text_len);

    if (res->reason == DECIDE_REASON_CONDITION_MATCH) {
        p = ngx_http_decide_out_uint(p, res->condition_index + 1);
    }

    *p++ = '"';

    if (meta->len) {
        p = ngx_cpymem(p, meta->data, meta->len);

    } else {
        p = ngx_sprintf(p, "},\"metadata\":{\"id\":%L,\"version\":%L,"
                        "\"description\":null,\"payload\":",
                        (int64_t) res->id, (int64_t) res->version);
    }

    o->pos = p;

    if (res->payload) {
        ngx_http_decide_out_payload(o, res);
    } else {
        ngx_http_decide_out_lit(o, "null");
    }

    ngx_http_decide_out_lit(o, "}}");
}


static void
ngx_http_decide_out_common(ngx_http_decide_out_t *o)
{
    u_char      *p;
    uint32_t     w[4];
    ngx_time_t  *tp;

    ngx_http_decide_request_id(w);

    tp = ngx_timeofday();

    p = ngx_http_decide_out_reserve(o, 128);
    if (p == NULL) {
        return;
    }

    /* "%08xD-%04xD-%04xD-%04xD-%04xD%08xD" without ngx_sprintf() */
    p = ngx_cpymem(p, ",\"requestId\":\"",
                   sizeof(",\"requestId\":\"") - 1);
    p = ngx_http_decide_out_hex(p, w[0], 8);
    *p++ = '-';
    p = ngx_http_decide_out_hex(p, w[1] >> 16, 4);
    *p++ = '-';
    p = ngx_http_decide_out_hex(p, w[1] & 0xffff, 4);
    *p++ = '-';
    p = ngx_http_decide_out_hex(p, w[2] >> 16, 4);
    *p++ = '-';
    p = ngx_http_decide_out_hex(p, w[2] & 0xffff, 4);
    p = ngx_http_decide_out_hex(p, w[3], 8);
    p = ngx_cpymem(p, "\",\"evaluatedAt\":",
                   sizeof("\",\"evaluatedAt\":") - 1);
    o->pos = ngx_http_decide_out_uint(p, (ngx_uint_t) tp->sec * 1000
                                         + tp->msec);
}


/* a random (version 4) request id as four words; not a secret */

static void
ngx_http_decide_request_id(uint32_t w[4])
{
    uint64_t  r[2];

    r[0] = ngx_http_decide_random64();
    r[1] = ngx_http_decide_random64();

    w[0] = (uint32_t) (r[0] >> 32);
    w[1] = ((uint32_t) r[0] & 0xffff0fff) | 0x00004000;
    w[2] = ((uint32_t) (r[1] >> 32) & 0x3fffffff) | 0x80000000;
    w[3] = (uint32_t) r[1];
}


/*
 * splitmix64 seeded once per worker from ngx_random(): random() takes
 * a lock per call and a request id wanted four of them.
 */
static uint64_t
ngx_http_decide_random64(void)
{
    uint64_t          z;
    static uint64_t   state;
    static ngx_pid_t  seeded;

    if (seeded != ngx_pid) {
        /* a fork after seeding must not repeat the parent's sequence */
        seeded = ngx_pid;
        state = ((uint64_t) ngx_random() << 33)
                ^ ((uint64_t) ngx_random() << 11) ^ (uint64_t) ngx_random();
    }

    state += 0x9e3779b97f4a7c15ULL;

    z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


/* GET: no body, no token (spec 1.1, Rust) */
ngx_int_t
ngx_http_decide_send_empty(ngx_http_request_t *r,
    ngx_http_decide_format_e format, ngx_uint_t config)
{
    json_t  *doc;

    doc = json_object();
    if (doc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (format == NGX_HTTP_DECIDE_FMT_FLAGS_V2
        || format == NGX_HTTP_DECIDE_FMT_DECIDE_V2)
    {
        json_object_set_new(doc, "flags", json_object());

    } else {
        json_object_set_new(doc, "featureFlags", json_object());
        json_object_set_new(doc, "featureFlagPayloads", json_object());
    }

    json_object_set_new(doc, "errorsWhileComputingFlags", json_false());
    json_object_set_new(doc, "supportedCompression",
                        json_pack("[ss]", "gzip", "gzip-js"));
    ngx_http_decide_common(doc);

    return ngx_http_decide_send_json(r, NGX_HTTP_OK, doc);
}


ngx_int_t
ngx_http_decide_send_api_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, const char *code, const char *detail)
{
    json_t  *doc;

    doc = json_pack("{s:s, s:s, s:s, s:n}", "type", type, "code", code,
                    "detail", detail, "attr");
    if (doc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_decide_send_json(r, status, doc);
}


/* takes the reference to doc */
static ngx_int_t
ngx_http_decide_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *doc)
{
    char       *s;
    size_t      len;
    ngx_str_t   type, body;

    s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);

    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(s);
    body.data = ngx_pnalloc(r->pool, len);

    if (body.data == NULL) {
        free(s);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body.data, s, len);
    body.len = len;
    free(s);

    ngx_str_set(&type, "application/json");

    return ngx_http_edgehog_send(r, status, &type, &body);
}


static void
ngx_http_decide_common(json_t *doc)
{
    u_char       id[37];
    uint32_t     w[4];
    ngx_time_t  *tp;

    ngx_http_decide_request_id(w);

    ngx_sprintf(id, "%08xD-%04xD-%04xD-%04xD-%04xD%08xD%Z",
                w[0], w[1] >> 16, w[1] & 0xffff, w[2] >> 16, w[2] & 0xffff,
                w[3]);

    tp = ngx_timeofday();

    json_object_set_new(doc, "requestId", json_string((char *) id));
    json_object_set_new(doc, "evaluatedAt",
                        json_integer((json_int_t) tp->sec * 1000 + tp->msec));
}


static ngx_uint_t
ngx_http_decide_wanted(ngx_http_decide_ctx_t *ctx, const decide_result_t *res)
{
    size_t   i;
    json_t  *keys;

    if (res->status == DECIDE_STATUS_OMITTED || res->key == NULL) {
        return 0;
    }

    if (ctx->survey_only
        && ngx_strncmp(res->key, "survey-targeting-", 17) != 0)
    {
        return 0;
    }

    keys = ctx->fields.flag_keys;

    if (keys == NULL) {
        return 1;
    }

    for (i = 0; i < json_array_size(keys); i++) {
        if (json_is_string(json_array_get(keys, i))
            && ngx_strcmp(json_string_value(json_array_get(keys, i)),
                          res->key) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The config part (spec 2.4, 2025 Rust / Django from the team row).
 * Runs in a pool thread while a snapshot is built: jansson only.
 */
json_t *
ngx_http_decide_config_build(json_t *team)
{
    char     rate[32];
    double   d;
    json_t  *c, *perf, *rec, *v;

    c = json_object();
    if (c == NULL) {
        return NULL;
    }

    json_object_set_new(c, "supportedCompression",
                        json_pack("[ss]", "gzip", "gzip-js"));
    json_object_set_new(c, "config",
                        json_pack("{s:b}", "enable_collect_everything", 1));
    json_object_set_new(c, "toolbarParams", json_object());
    json_object_set_new(c, "isAuthenticated", json_false());
    json_object_set_new(c, "autocapture_opt_out",
                json_boolean(ngx_http_decide_team_bool(team,
                                                  "autocapture_opt_out")));

    if (ngx_http_decide_team_bool(team, "capture_performance_opt_in")
        || ngx_http_decide_team_bool(team, "autocapture_web_vitals_opt_in"))
    {
        perf = json_object();
        json_object_set_new(perf, "network_timing",
                  json_boolean(ngx_http_decide_team_bool(team,
                                             "capture_performance_opt_in")));
        json_object_set_new(perf, "web_vitals",
                  json_boolean(ngx_http_decide_team_bool(team,
                                          "autocapture_web_vitals_opt_in")));

        if (ngx_http_decide_team_bool(team, "autocapture_web_vitals_opt_in")) {
            json_object_set_new(perf, "web_vitals_allowed_metrics",
                      ngx_http_decide_json_or_null(team,
                                   "autocapture_web_vitals_allowed_metrics"));
        }

        json_object_set_new(c, "capturePerformance", perf);

    } else {
        json_object_set_new(c, "capturePerformance", json_false());
    }

    json_object_set_new(c, "autocaptureExceptions",
              ngx_http_decide_team_bool(team, "autocapture_exceptions_opt_in")
              ? json_pack("{s:s}", "endpoint", "/e/") : json_false());
    json_object_set_new(c, "errorTracking",
              json_pack("{s:b, s:[]}", "autocaptureExceptions",
                        ngx_http_decide_team_bool(team,
                                            "autocapture_exceptions_opt_in"),
                        "suppressionRules"));
    json_object_set_new(c, "analytics",
                        json_pack("{s:s}", "endpoint", "/i/v0/e/"));
    json_object_set_new(c, "elementsChainAsString", json_true());

    if (ngx_http_decide_team_bool(team, "session_recording_opt_in")) {
        rec = json_object();
        json_object_set_new(rec, "endpoint", json_string("/s/"));
        json_object_set_new(rec, "consoleLogRecordingEnabled",
                  json_boolean(ngx_http_decide_team_bool(team,
                                              "capture_console_log_opt_in")));
        json_object_set_new(rec, "recorderVersion", json_string("v2"));

        v = json_object_get(team, "session_recording_sample_rate");
        d = json_is_number(v) ? json_number_value(v)
            : json_is_string(v) ? strtod(json_string_value(v), NULL) : 1.0;

        if (json_is_null(v) || v == NULL || d >= 1.0) {
            json_object_set_new(rec, "sampleRate", json_null());

        } else {
            ngx_snprintf((u_char *) rate, sizeof(rate) - 1, "%.2f%Z", d);
            json_object_set_new(rec, "sampleRate", json_string(rate));
        }

        json_object_set_new(rec, "minimumDurationMilliseconds",
                  ngx_http_decide_json_or_null(team,
                          "session_recording_minimum_duration_milliseconds"));
        json_object_set_new(rec, "linkedFlag",
                  ngx_http_decide_json_or_null(team,
                                            "session_recording_linked_flag"));
        json_object_set_new(rec, "networkPayloadCapture",
                  ngx_http_decide_json_or_null(team,
                         "session_recording_network_payload_capture_config"));
        json_object_set_new(rec, "masking",
                  ngx_http_decide_json_or_null(team,
                                         "session_recording_masking_config"));
        json_object_set_new(rec, "urlTriggers", json_array());
        json_object_set_new(rec, "urlBlocklist", json_array());
        json_object_set_new(rec, "eventTriggers", json_array());
        json_object_set_new(rec, "triggerMatchType", json_null());
        json_object_set_new(rec, "scriptConfig", json_null());
        json_object_set_new(c, "sessionRecording", rec);

    } else {
        json_object_set_new(c, "sessionRecording", json_false());
    }

    json_object_set_new(c, "surveys",
              json_boolean(ngx_http_decide_team_bool(team, "surveys_opt_in")));
    json_object_set_new(c, "heatmaps",
              json_boolean(ngx_http_decide_team_bool(team, "heatmaps_opt_in")));
    json_object_set_new(c, "siteApps", json_array());
    json_object_set_new(c, "defaultIdentifiedOnly", json_true());
    json_object_set_new(c, "flagsPersistenceDefault",
              json_boolean(ngx_http_decide_team_bool(team,
                                               "flags_persistence_default")));
    json_object_set_new(c, "captureDeadClicks",
              json_boolean(ngx_http_decide_team_bool(team,
                                                     "capture_dead_clicks")));

    return c;
}


static int
ngx_http_decide_team_bool(json_t *team, const char *name)
{
    return json_is_true(json_object_get(team, name));
}


static json_t *
ngx_http_decide_json_or_null(json_t *team, const char *name)
{
    json_t  *v;

    v = json_object_get(team, name);

    return v ? json_incref(v) : json_null();
}
