/*
 * Copyright (C) edgehog
 */

/*
 * The /decide and /flags request path: methods, query parameters, body
 * decoding, team lookup in the snapshot, evaluation, and the person
 * lookup (a thread-pool task with Redis reads) when, and only when, a
 * flag needs stored person or group properties or hash-key overrides.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_decide_module.h"
#include "ngx_http_edgehog_response.h"
#include "eh_person_entry.h"
#include "eh_group_entry.h"


/* one thread-pool task fetches all stored data a request needs */
typedef struct {
    ngx_http_request_t           *r;            /* NULL: request gone */
    ngx_http_decide_main_conf_t  *mcf;
    ngx_pool_cleanup_t           *cln;
    int64_t                       team_id;
    unsigned                      need;         /* DECIDE_NEED_* */
    char                         *distinct_id;  /* malloc'd copies */
    char                         *anon_id;      /* NULL: no write */
    json_t                       *flag_keys;    /* [continuity flag key] */
    json_t                       *groups;       /* [[gti, name, key]] */
    char                         *value;        /* person entry, malloc'd */
    size_t                        len;
    json_t                       *group_props;  /* {name: props} */
    json_t                       *overrides;    /* {flag key: hash key} */
    int                           person_rc;    /* 1, 0 none, -1 error */
    int                           groups_rc;    /* 0 ok, -1 error */
    int                           hko_rc;       /* 0 ok, -1 error */
} ngx_http_decide_lookup_t;


static void ngx_http_decide_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_decide_process(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx);
static ngx_int_t ngx_http_decide_evaluate(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx);
static ngx_int_t ngx_http_decide_finish(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx);
static ngx_int_t ngx_http_decide_lookup_start(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx, unsigned need);
static void ngx_http_decide_lookup_free(ngx_http_decide_lookup_t *lk);
static void ngx_http_decide_lookup_thread(void *data, ngx_log_t *log);
static void ngx_http_decide_lookup_reply(void *data, int rc, char *value,
    size_t len, const char *err);
static void ngx_http_decide_lookup_done(ngx_event_t *ev);
static void ngx_http_decide_lookup_cleanup(void *data);
static void ngx_http_decide_ctx_cleanup(void *data);
static ngx_int_t ngx_http_decide_format(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx);
static u_char *ngx_http_decide_body(ngx_http_request_t *r, size_t *len);
static ngx_int_t ngx_http_decide_remote_config(ngx_http_request_t *r,
    u_char *token, size_t len, ngx_uint_t js);


ngx_int_t
ngx_http_decide_handler(ngx_http_request_t *r)
{
    u_char                 *p, *token, *last;
    ngx_int_t               rc;
    ngx_str_t               type;
    ngx_table_elt_t        *h;
    ngx_http_decide_ctx_t  *ctx;

    /* remote config: <prefix>/array/<token>/config[.js] */
    p = ngx_strlcasestrn(r->uri.data, r->uri.data + r->uri.len,
                         (u_char *) "/array/", 7 - 1);

    if (p != NULL) {
        token = p + 7;
        last = r->uri.data + r->uri.len;
        p = ngx_strlchr(token, last, '/');

        if (p != NULL
            && ((last - p == 7 && ngx_strncmp(p, "/config", 7) == 0)
                || (last - p == 10 && ngx_strncmp(p, "/config.js", 10) == 0)))
        {
            if (r->method == NGX_HTTP_OPTIONS) {
                rc = ngx_http_discard_request_body(r);
                if (rc != NGX_OK) {
                    return rc;
                }

                if (ngx_http_edgehog_cors(r, 1) != NGX_OK) {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                r->headers_out.status = NGX_HTTP_NO_CONTENT;
                r->headers_out.content_length_n = 0;
                r->header_only = 1;

                return ngx_http_send_header(r);
            }

            return ngx_http_decide_remote_config(r, token, p - token,
                                                 last - p == 10);
        }
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_http_edgehog_preflight(r);
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        ngx_str_set(&h->value, "GET, POST, OPTIONS, HEAD");

        return ngx_http_decide_send_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                              "invalid_request",
                                              "method_not_allowed",
                                              "Method not allowed");
    }

    /* §1.5 step 1: the address's bucket, before the body is read */
    if (ngx_http_decide_limits_check(r, NGX_HTTP_DECIDE_LIMIT_IP,
                                     r->connection->addr_text.data,
                                     r->connection->addr_text.len)
        != NGX_OK)
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_decide_send_rate_limited(r);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_decide_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_decide_module);

    rc = ngx_http_decide_format(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (r->method == NGX_HTTP_HEAD) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        ngx_str_set(&type, "application/json");
        return ngx_http_edgehog_send(r, NGX_HTTP_OK, &type, NULL);
    }

    if (r->method == NGX_HTTP_GET) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_decide_send_empty(r, ctx->format, 0);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_decide_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* spec/decide.md 1.2 */
static ngx_int_t
ngx_http_decide_format(ngx_http_request_t *r, ngx_http_decide_ctx_t *ctx)
{
    ngx_int_t                    v;
    ngx_str_t                    arg;
    ngx_uint_t                   decide, has_v, has_config, config;
    ngx_http_decide_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_decide_module);

    if (lcf->endpoint == NGX_HTTP_DECIDE_ENDPOINT_AUTO) {
        decide = ngx_strlcasestrn(r->uri.data, r->uri.data + r->uri.len,
                                  (u_char *) "decide", 6 - 1) != NULL;

    } else {
        decide = lcf->endpoint == NGX_HTTP_DECIDE_ENDPOINT_DECIDE;
    }

    v = 1;
    has_v = 0;

    if ((ngx_http_arg(r, (u_char *) "v", 1, &arg) == NGX_OK
         || ngx_http_arg(r, (u_char *) "version", 7, &arg) == NGX_OK)
        && arg.len)
    {
        has_v = 1;
        v = ngx_atoi(arg.data, arg.len);
        if (v == NGX_ERROR) {
            v = 1;
        }
    }

    config = 0;
    has_config = ngx_http_arg(r, (u_char *) "config", 6, &arg) == NGX_OK;

    if (has_config) {
        config = decide_query_bool((char *) arg.data, arg.len);
    }

    if (ngx_http_arg(r, (u_char *) "only_evaluate_survey_feature_flags",
                     34, &arg) == NGX_OK)
    {
        ctx->survey_only = decide_query_bool((char *) arg.data, arg.len);
    }

    if (decide) {
        ctx->format = v >= 4 ? NGX_HTTP_DECIDE_FMT_FLAGS_V2
                      : v == 3 ? NGX_HTTP_DECIDE_FMT_FLAGS_V1
                      : v == 2 ? NGX_HTTP_DECIDE_FMT_DECIDE_V2
                      : NGX_HTTP_DECIDE_FMT_DECIDE_V1;
        ctx->config = has_config ? config : 1;

    } else if (!has_v && !has_config) {
        ctx->format = NGX_HTTP_DECIDE_FMT_FLAGS_V2;
        ctx->config = 1;

    } else {
        ctx->format = v >= 2 ? NGX_HTTP_DECIDE_FMT_FLAGS_V2
                             : NGX_HTTP_DECIDE_FMT_FLAGS_V1;
        ctx->config = config;
    }

    return NGX_OK;
}


static void
ngx_http_decide_body_handler(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_http_decide_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_decide_module);

    rc = ngx_http_decide_process(r, ctx);

    if (rc == NGX_DONE) {
        /* a person lookup is in flight; its completion finalizes */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_decide_process(ngx_http_request_t *r, ngx_http_decide_ctx_t *ctx)
{
    char                         err[128], detail[192];
    u_char                      *body;
    size_t                       len;
    ngx_str_t                    arg;
    json_t                      *v;
    decide_decode_e              drc;
    ngx_table_elt_t             *ce;
    ngx_pool_cleanup_t          *cln;
    decide_body_opts_t           opts;
    ngx_http_decide_team_t      *team;
    ngx_http_decide_loc_conf_t  *lcf;
    ngx_http_decide_main_conf_t *mcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_decide_module);
    mcf = ngx_http_get_module_main_conf(r, ngx_http_decide_module);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_decide_ctx_cleanup;
    cln->data = ctx;

    body = ngx_http_decide_body(r, &len);
    if (body == NULL) {
        return ngx_http_decide_send_api_error(r,
                                    NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                    "validation_error", "payload_too_large",
                                    "Request body too large");
    }

    ngx_memzero(&opts, sizeof(decide_body_opts_t));

    if (r->headers_in.content_type) {
        opts.content_type = (char *) r->headers_in.content_type->value.data;
        opts.content_type_len = r->headers_in.content_type->value.len;
    }

    ce = ngx_http_edgehog_header_in(r, "Content-Encoding",
                                    sizeof("Content-Encoding") - 1);
    opts.content_encoding_gzip = ce
                                 && ngx_strlcasestrn(ce->value.data,
                                          ce->value.data + ce->value.len,
                                          (u_char *) "gzip", 4 - 1) != NULL;

    if (ngx_http_arg(r, (u_char *) "compression", 11, &arg) == NGX_OK) {
        opts.compression = decide_compression_parse((char *) arg.data,
                                                    arg.len);
    }

    opts.max_decompressed = lcf->max_decompressed;

    /* the tree lives until the request ends: see the ctx cleanup */
    decide_json_arena_take(&ctx->arena);
    decide_json_arena_begin(&ctx->arena);

    /* the common SDK body: its fields without its top-level object */
    if (decide_fields_fast(body, len, &opts, &v, &ctx->fields) == 0) {
        decide_json_arena_end();
        ctx->body = v;
        goto fields;
    }

    drc = decide_body_decode(body, len, &opts, &v, err, sizeof(err));

    decide_json_arena_end();

    if (drc == DECIDE_DECODE_TOO_LARGE) {
        return ngx_http_decide_send_api_error(r,
                                    NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                    "validation_error", "payload_too_large",
                                    err);
    }

    if (drc != DECIDE_DECODE_OK || !json_is_object(v)) {
        json_decref(v);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "decide: undecodable body: %s",
                      drc == DECIDE_DECODE_OK ? "not an object" : err);
        ngx_snprintf((u_char *) detail, sizeof(detail) - 1,
                     "Failed to decode request: %s. Please check your "
                     "request format and try again.%Z",
                     drc == DECIDE_DECODE_OK ? "not a JSON object" : err);
        return ngx_http_decide_send_api_error(r, NGX_HTTP_BAD_REQUEST,
                                              "validation_error",
                                              "malformed_data", detail);
    }

    ctx->body = v;
    decide_fields_get(v, &ctx->fields);

fields:

    if (ctx->fields.token == NULL
        && (ngx_http_arg(r, (u_char *) "token", 5, &arg) == NGX_OK
            || ngx_http_arg(r, (u_char *) "api_key", 7, &arg) == NGX_OK)
        && arg.len)
    {
        ctx->fields.token = (char *) ngx_pnalloc(r->pool, arg.len + 1);
        if (ctx->fields.token == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_cpystrn((u_char *) ctx->fields.token, arg.data, arg.len + 1);
    }

    if (ctx->fields.token == NULL) {
        return ngx_http_decide_send_api_error(r, NGX_HTTP_UNAUTHORIZED,
                   "authentication_error", "not_authenticated",
                   "No API token provided. Please include a valid API token "
                   "in your request.");
    }

    if (ngx_http_decide_limits_check(r, NGX_HTTP_DECIDE_LIMIT_TOKEN,
                                     (u_char *) ctx->fields.token,
                                     ngx_strlen(ctx->fields.token))
        != NGX_OK)
    {
        return ngx_http_decide_send_rate_limited(r);
    }

    if (mcf->snapshot == NULL) {
        /* nothing was ever loaded: we cannot tell a bad token */
        return ngx_http_decide_send_api_error(r,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "server_error",
                   "service_unavailable",
                   "Flag definitions are not loaded yet.");
    }

    if (mcf->stale_max && mcf->redis_down
        && ngx_current_msec - mcf->last_ok > mcf->stale_max)
    {
        /* the operator chose an error over answers this old */
        return ngx_http_decide_send_api_error(r,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "server_error",
                   "service_unavailable",
                   "Flag definitions are stale.");
    }

    team = ngx_http_decide_cache_team(mcf, (u_char *) ctx->fields.token,
                                      ngx_strlen(ctx->fields.token));
    if (team == NULL) {
        return ngx_http_decide_send_api_error(r, NGX_HTTP_UNAUTHORIZED,
                   "authentication_error", "authentication_failed",
                   "The provided API key is invalid or has expired. Please "
                   "check your API key and try again.");
    }

    ngx_http_decide_team_ref(team);
    ctx->team = team;

    if (ctx->fields.disable_flags) {
        return ngx_http_decide_send(r, ctx);
    }

    if (ngx_http_decide_cache_quota_limited(mcf, (u_char *) ctx->fields.token,
                                            ngx_strlen(ctx->fields.token)))
    {
        ctx->quota_limited = 1;
        return ngx_http_decide_send(r, ctx);
    }

    if (ctx->fields.distinct_id == NULL) {
        return ngx_http_decide_send_api_error(r, NGX_HTTP_BAD_REQUEST,
                   "validation_error", "missing_distinct_id",
                   "The distinct_id field is missing from the request. "
                   "Please include a valid identifier.");
    }

    return ngx_http_decide_evaluate(r, ctx);
}


static ngx_int_t
ngx_http_decide_evaluate(ngx_http_request_t *r, ngx_http_decide_ctx_t *ctx)
{
    int                          browser;
    size_t                       i, n;
    unsigned                     need;
    ngx_time_t                  *tp;
    ngx_table_elt_t             *ua;
    decide_request_t            *req;

    n = decide_team_nflags(ctx->team->team);

    ctx->results = ngx_http_decide_scratch_alloc(r, ctx,
                                        (n + 1) * sizeof(decide_result_t),
                                        ngx_http_decide_scratch_hint(n), 1);
    ctx->needed = ngx_http_decide_scratch_alloc(r, ctx, n + 1,
                                        ngx_http_decide_scratch_hint(n), 1);

    if (ctx->results == NULL || ctx->needed == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    req = &ctx->req;
    req->distinct_id = ctx->fields.distinct_id;
    req->device_id = ctx->fields.device_id;
    req->anon_distinct_id = ctx->fields.anon_distinct_id;
    req->person_properties = ctx->fields.person_properties;
    req->groups = ctx->fields.groups;
    req->group_properties = ctx->fields.group_properties;
    req->environments = ctx->fields.environments;

    tp = ngx_timeofday();
    req->now = (double) tp->sec + tp->msec / 1000.0;

    ua = r->headers_in.user_agent;

    if (ctx->fields.runtime_set) {
        req->runtime = ctx->fields.runtime;

    } else {
        browser = ngx_http_edgehog_header_in(r, "Origin", 6) != NULL
                  || r->headers_in.referer != NULL
                  || ngx_http_edgehog_header_in(r, "Sec-Fetch-Mode", 14)
                     != NULL;

        req->runtime = decide_runtime_detect(
                           ua ? (char *) ua->value.data : NULL,
                           ua ? ua->value.len : 0, browser);
    }

    /*
     * First pass with the request's values only; whatever stored data
     * a flag needs (person, groups, hash-key overrides) is fetched in
     * one thread-pool task and merged in for the second pass.
     */
    need = decide_eval_flags(ctx->team->team, req, ctx->results);

    if (need == 0) {
        return ngx_http_decide_send(r, ctx);
    }

    for (i = 0; i < n; i++) {
        if (ctx->results[i].status == DECIDE_STATUS_NEEDS_LOOKUP) {
            ctx->needed[i] = (u_char) (ctx->results[i].need
                                       ? ctx->results[i].need
                                       : DECIDE_NEED_PERSON);
        }
    }

    return ngx_http_decide_lookup_start(r, ctx, need);
}


static ngx_int_t
ngx_http_decide_lookup_start(ngx_http_request_t *r,
    ngx_http_decide_ctx_t *ctx, unsigned need)
{
    int                           gti;
    size_t                        i, n, len;
    char                         *s, *key;
    const char                   *name;
    json_t                       *v, *keys, *groups;
    ngx_thread_task_t            *task;
    ngx_pool_cleanup_t           *cln;
    ngx_http_decide_lookup_t     *lk;
    ngx_http_decide_main_conf_t  *mcf;
    const decide_team_t          *team;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_decide_module);
    team = ctx->team->team;

    /* outside r->pool: the task may outlive an aborted request */
    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_decide_lookup_t), r->connection->log);
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lk = (ngx_http_decide_lookup_t *) (task + 1);
    task->ctx = lk;
    task->handler = ngx_http_decide_lookup_thread;
    task->event.handler = ngx_http_decide_lookup_done;
    task->event.data = task;
    task->event.log = r->connection->log;

    lk->r = r;
    lk->mcf = mcf;
    lk->team_id = ctx->team->id;
    lk->need = need;
    lk->person_rc = -1;
    lk->groups_rc = 0;
    lk->hko_rc = 0;

    /* copies: the team snapshot may go away with an aborted request */
    lk->distinct_id = strdup(ctx->fields.distinct_id
                             ? ctx->fields.distinct_id : "");

    if (lk->distinct_id == NULL) {
        goto failed;
    }

    if ((need & DECIDE_NEED_HASH_KEY) && ctx->fields.anon_distinct_id
        && ctx->fields.anon_distinct_id[0] != '\0')
    {
        lk->anon_id = strdup(ctx->fields.anon_distinct_id);
        if (lk->anon_id == NULL) {
            goto failed;
        }
    }

    if (need & DECIDE_NEED_HASH_KEY) {
        keys = json_array();
        lk->flag_keys = keys;

        if (keys == NULL) {
            goto failed;
        }

        n = decide_team_nflags(team);

        for (i = 0; i < n; i++) {
            if ((ctx->needed[i] & DECIDE_NEED_HASH_KEY)
                && ctx->results[i].key)
            {
                json_array_append_new(keys,
                                      json_string(ctx->results[i].key));
            }
        }
    }

    if (need & DECIDE_NEED_GROUPS) {
        /* [[group type index, type name, key], ...] */
        groups = json_array();
        lk->groups = groups;

        if (groups == NULL) {
            goto failed;
        }

        json_object_foreach(ctx->fields.groups, name, v) {
            gti = decide_team_group_type_index(team, name);
            if (gti < 0) {
                continue;
            }

            if (json_is_string(v)) {
                s = strdup(json_string_value(v));

            } else if (json_is_integer(v)) {
                s = malloc(32);
                if (s) {
                    snprintf(s, 32, "%" JSON_INTEGER_FORMAT,
                             json_integer_value(v));
                }

            } else {
                continue;
            }

            if (s == NULL) {
                goto failed;
            }

            json_array_append_new(groups,
                                  json_pack("[iss]", gti, name, s));
            free(s);
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        goto failed;
    }

    cln->handler = ngx_http_decide_lookup_cleanup;
    cln->data = lk;
    lk->cln = cln;

    /*
     * The person entry alone (the usual case) is one GET on the event
     * loop's own Redis connection (ngx_http_decide_async.c).  Measured
     * against the pool task, same run (make bench-decide, BENCH_COMPARE):
     * (c) 55.0 -> 22.9 us of nginx CPU per request, 14.9k -> 24.2k req/s;
     * open loop at 8k req/s p50 1011 -> 228 us.  Then the GETs of one
     * loop iteration went out in one write (ngx_http_decide_async.c):
     * 23.5 -> 18.8 us, 34.9k -> 42.8k req/s (median of 3, same run),
     * open-loop p50 at 6k req/s unchanged (174 -> 178 us).
     */
    if (need == DECIDE_NEED_PERSON) {
        len = eh_person_key(NULL, 0, lk->team_id, lk->distinct_id,
                            strlen(lk->distinct_id));
        key = ngx_pnalloc(r->pool, len + 1);
        if (key == NULL) {
            cln->handler = NULL;
            goto failed;
        }

        eh_person_key(key, len + 1, lk->team_id, lk->distinct_id,
                      strlen(lk->distinct_id));

        if (ngx_http_decide_async_get(mcf, key, len,
                                      ngx_http_decide_lookup_reply, task)
            == NGX_OK)
        {
            return NGX_DONE;
        }

        /* as a pool thread that cannot connect says it */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "decide: redis lookup for team %L failed: %s",
                      (long long) lk->team_id, ngx_http_decide_async_error());

        goto unavailable;
    }

    if (ngx_thread_task_post(mcf->thread_pool, task) == NGX_OK) {
        return NGX_DONE;
    }

unavailable:

    /* no lookup: the flags that need one are failed, the rest answered */
    cln->handler = NULL;
    ngx_http_decide_lookup_free(lk);
    ngx_free(task);

    ctx->person_failed = 1;
    ctx->groups_failed = 1;
    ctx->hko_failed = 1;
    return ngx_http_decide_finish(r, ctx);

failed:

    ngx_http_decide_lookup_free(lk);
    ngx_free(task);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


static void
ngx_http_decide_lookup_free(ngx_http_decide_lookup_t *lk)
{
    free(lk->distinct_id);
    free(lk->anon_id);
    free(lk->value);
    json_decref(lk->flag_keys);
    json_decref(lk->groups);
    json_decref(lk->group_props);
    json_decref(lk->overrides);
}


/* pool thread: GET; 1 found (malloc'd *value), 0 none, -1 error */
static int
ngx_http_decide_redis_fetch(redisContext *c, const char *key, size_t len,
    char **value, size_t *vlen)
{
    int          rc;
    redisReply  *reply;

    reply = redisCommand(c, "GET %b", key, len);

    if (reply == NULL) {
        ngx_http_decide_redis_drop();
        return -1;
    }

    rc = -1;

    if (reply->type == REDIS_REPLY_STRING) {
        *value = malloc(reply->len + 1);

        if (*value) {
            memcpy(*value, reply->str, reply->len);
            (*value)[reply->len] = '\0';
            *vlen = reply->len;
            rc = 1;
        }

    } else if (reply->type == REDIS_REPLY_NIL) {
        rc = 0;

    } else {
        ngx_http_decide_redis_set_error(reply->type == REDIS_REPLY_ERROR
                                        ? reply->str : "unexpected reply");
    }

    freeReplyObject(reply);

    return rc;
}


/* pool thread: the person id a distinct id's entry names, 0 if none */
static int
ngx_http_decide_person_id(redisContext *c, int64_t team_id, const char *id,
    int64_t *pid)
{
    int                 rc;
    char               *key, *value;
    size_t              len, vlen;
    eh_person_entry_t   entry;

    *pid = 0;

    len = eh_person_key(NULL, 0, team_id, id, strlen(id));
    key = malloc(len + 1);
    if (key == NULL) {
        return -1;
    }

    eh_person_key(key, len + 1, team_id, id, strlen(id));

    value = NULL;
    rc = ngx_http_decide_redis_fetch(c, key, len, &value, &vlen);
    free(key);

    if (rc == 1) {
        if (eh_person_entry_decode(value, vlen, &entry) == 0) {
            *pid = entry.id;
            eh_person_entry_free(&entry);
        }

        free(value);
        rc = 0;
    }

    return rc;
}


/* pool thread: spec 3.9 steps 2-3 against the Redis copy */
static int
ngx_http_decide_hko_thread(ngx_http_decide_lookup_t *lk, redisContext *c,
    int64_t pid_d)
{
    int          i, j, npids;
    char         key[96], *pending;
    size_t       k, len;
    int64_t      pids[2], pid_a;
    const char  *flag;
    redisReply  *reply, *sub;

    npids = 0;
    pid_a = 0;

    if (lk->anon_id) {
        if (ngx_http_decide_person_id(c, lk->team_id, lk->anon_id, &pid_a)
            != 0)
        {
            return -1;
        }
    }

    /* A's overrides first, D's win (step 2c) */
    if (pid_a && pid_a != pid_d) {
        pids[npids++] = pid_a;
    }

    if (pid_d) {
        pids[npids++] = pid_d;
    }

    lk->overrides = json_object();
    if (lk->overrides == NULL) {
        return -1;
    }

    for (i = 0; i < npids; i++) {
        len = eh_hko_key(key, sizeof(key), lk->team_id, pids[i]);

        if (lk->anon_id) {
            /* step 2b: the first write wins, like ON CONFLICT DO NOTHING */
            for (k = 0; k < json_array_size(lk->flag_keys); k++) {
                flag = json_string_value(json_array_get(lk->flag_keys, k));

                reply = redisCommand(c, "HSETNX %b %s %s", key, len, flag,
                                     lk->anon_id);
                if (reply == NULL) {
                    ngx_http_decide_redis_drop();
                    return -1;
                }

                j = reply->type == REDIS_REPLY_INTEGER ? (int) reply->integer
                                                       : -1;
                freeReplyObject(reply);

                if (j < 0) {
                    return -1;
                }

                if (j == 0) {
                    continue;
                }

                /* mirrored into Postgres by the ingest-worker */
                pending = eh_hko_pending_encode(lk->team_id, pids[i], flag,
                                                lk->anon_id,
                                                strlen(lk->anon_id));
                if (pending == NULL) {
                    return -1;
                }

                reply = redisCommand(c, "RPUSH %s %s", EH_HKO_PENDING_KEY,
                                     pending);
                free(pending);

                if (reply == NULL) {
                    ngx_http_decide_redis_drop();
                    return -1;
                }

                freeReplyObject(reply);
            }
        }

        reply = redisCommand(c, "HGETALL %b", key, len);
        if (reply == NULL) {
            ngx_http_decide_redis_drop();
            return -1;
        }

        if (reply->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(reply);
            return -1;
        }

        for (k = 0; k + 1 < reply->elements; k += 2) {
            sub = reply->element[k];

            if (sub->type != REDIS_REPLY_STRING
                || reply->element[k + 1]->type != REDIS_REPLY_STRING)
            {
                continue;
            }

            json_object_setn_new(lk->overrides, sub->str, sub->len,
                                 json_stringn(reply->element[k + 1]->str,
                                              reply->element[k + 1]->len));
        }

        freeReplyObject(reply);
    }

    return 0;
}


/* pool thread */
static void
ngx_http_decide_lookup_thread(void *data, ngx_log_t *log)
{
    ngx_http_decide_lookup_t *lk = data;

    int                 rc, gti;
    char               *key, *value;
    size_t              k, len, vlen;
    json_t             *g, *props;
    int64_t             pid_d;
    const char         *name, *gkey;
    redisContext       *c;
    eh_person_entry_t   entry;

    lk->person_rc = -1;
    lk->groups_rc = -1;
    lk->hko_rc = -1;

    c = ngx_http_decide_redis_get(lk->mcf);
    if (c == NULL) {
        /* the flags that need stored data fail; say why once per request */
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "decide: redis lookup for team %L failed: %s",
                      (long long) lk->team_id, ngx_http_decide_redis_error());
        return;
    }

    len = eh_person_key(NULL, 0, lk->team_id, lk->distinct_id,
                        strlen(lk->distinct_id));
    key = malloc(len + 1);
    if (key == NULL) {
        return;
    }

    eh_person_key(key, len + 1, lk->team_id, lk->distinct_id,
                  strlen(lk->distinct_id));

    lk->person_rc = ngx_http_decide_redis_fetch(c, key, len, &lk->value,
                                                &lk->len);
    free(key);

    if (lk->person_rc < 0) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "decide: person lookup for team %L failed: %s",
                      (long long) lk->team_id, ngx_http_decide_redis_error());
    }

    if (lk->need & DECIDE_NEED_HASH_KEY) {
        pid_d = 0;

        if (lk->person_rc == 1
            && eh_person_entry_decode(lk->value, lk->len, &entry) == 0)
        {
            pid_d = entry.id;
            eh_person_entry_free(&entry);
        }

        if (lk->person_rc >= 0) {
            lk->hko_rc = ngx_http_decide_hko_thread(lk, c, pid_d);
        }

        c = ngx_http_decide_redis_get(lk->mcf);
        if (c == NULL) {
            return;
        }
    }

    if (!(lk->need & DECIDE_NEED_GROUPS)) {
        lk->groups_rc = 0;
        return;
    }

    lk->group_props = json_object();
    if (lk->group_props == NULL) {
        return;
    }

    for (k = 0; k < json_array_size(lk->groups); k++) {
        g = json_array_get(lk->groups, k);
        gti = (int) json_integer_value(json_array_get(g, 0));
        name = json_string_value(json_array_get(g, 1));
        gkey = json_string_value(json_array_get(g, 2));

        if (name == NULL || gkey == NULL) {
            continue;
        }

        len = eh_group_key(NULL, 0, lk->team_id, gti, gkey, strlen(gkey));
        key = malloc(len + 1);
        if (key == NULL) {
            return;
        }

        eh_group_key(key, len + 1, lk->team_id, gti, gkey, strlen(gkey));

        value = NULL;
        rc = ngx_http_decide_redis_fetch(c, key, len, &value, &vlen);
        free(key);

        if (rc < 0) {
            return;
        }

        if (rc == 1) {
            props = eh_group_entry_decode(value, vlen);
            free(value);

            if (props == NULL) {
                ngx_log_error(NGX_LOG_ERR, log, 0,
                              "decide: malformed group entry for team %L",
                              (long long) lk->team_id);
                return;
            }

            json_object_set_new(lk->group_props, name, props);
        }
    }

    lk->groups_rc = 0;
}


/* on the loop: the person GET of ngx_http_decide_async_get() */
static void
ngx_http_decide_lookup_reply(void *data, int rc, char *value, size_t len,
    const char *err)
{
    ngx_thread_task_t *task = data;

    ngx_http_decide_lookup_t  *lk;

    lk = task->ctx;

    /* what ngx_http_decide_lookup_thread() leaves for this need */
    lk->person_rc = rc;
    lk->value = value;
    lk->len = len;
    lk->groups_rc = 0;
    lk->hko_rc = -1;

    if (rc < 0) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "decide: person lookup for team %L failed: %s",
                      (long long) lk->team_id, err);
    }

    ngx_http_decide_lookup_done(&task->event);
}


static void
ngx_http_decide_lookup_done(ngx_event_t *ev)
{
    ngx_thread_task_t *task = ev->data;

    ngx_int_t                  rc;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_decide_ctx_t     *ctx;
    ngx_http_decide_lookup_t  *lk;

    lk = task->ctx;
    r = lk->r;

    if (r != NULL) {
        lk->cln->handler = NULL;

        ctx = ngx_http_get_module_ctx(r, ngx_http_decide_module);
        ctx->lookup_rc = lk->person_rc;
        ctx->lookup_value = lk->value;
        ctx->lookup_len = lk->len;
        lk->value = NULL;

        ctx->person_failed = lk->person_rc < 0;
        ctx->groups_failed = lk->groups_rc < 0;
        ctx->hko_failed = (lk->need & DECIDE_NEED_HASH_KEY)
                          && lk->hko_rc < 0;

        ctx->group_props = lk->group_props;
        lk->group_props = NULL;
        ctx->overrides = lk->overrides;
        lk->overrides = NULL;

        c = r->connection;

        rc = ngx_http_decide_finish(r, ctx);
        ngx_http_finalize_request(r, rc);
        ngx_http_run_posted_requests(c);
    }

    ngx_http_decide_lookup_free(lk);
    ngx_free(task);
}


static void
ngx_http_decide_lookup_cleanup(void *data)
{
    ngx_http_decide_lookup_t *lk = data;

    lk->r = NULL;
}


/* second pass with stored data merged under the request's values */
static ngx_int_t
ngx_http_decide_finish(ngx_http_request_t *r, ngx_http_decide_ctx_t *ctx)
{
    size_t                    i, j, n;
    unsigned                  failed;
    json_t                   *merged, *ids, *v;
    const char               *name;
    eh_person_entry_t         entry;
    ngx_http_decide_team_t   *t;
    ngx_http_decide_static_cohort_t  *sc;

    t = ctx->team;
    n = decide_team_nflags(t->team);

    if (ctx->lookup_rc == 1) {
        if (eh_person_entry_decode(ctx->lookup_value, ctx->lookup_len,
                                   &entry)
            != 0)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "decide: malformed person entry for team %L",
                          t->id);
            ctx->person_failed = 1;

        } else {
            merged = entry.properties;
            entry.properties = NULL;

            if (ctx->fields.person_properties) {
                json_object_update(merged, ctx->fields.person_properties);
            }

            ctx->person_props = merged;
            ctx->req.person_properties = merged;

            ids = json_array();

            for (i = 0; ids && entry.id && i < t->ncohorts; i++) {
                sc = &t->cohorts[i];

                for (j = 0; j < sc->npeople; j++) {
                    if (sc->people[j] == entry.id) {
                        json_array_append_new(ids, json_integer(sc->id));
                        break;
                    }
                }
            }

            ctx->static_cohorts = ids;
            ctx->req.static_cohorts = ids;
        }
    }

    if (ctx->group_props) {
        /* the request's group properties win, key by key */
        json_object_foreach(ctx->fields.group_properties, name, v) {
            merged = json_object_get(ctx->group_props, name);

            if (json_is_object(merged) && json_is_object(v)) {
                json_object_update(merged, v);

            } else {
                json_object_set(ctx->group_props, name, v);
            }
        }

        ctx->req.group_properties = ctx->group_props;
    }

    if (ctx->overrides) {
        ctx->req.hash_key_overrides = ctx->overrides;
    }

    ctx->req.person_loaded = 1;
    ctx->req.groups_loaded = 1;
    ctx->req.overrides_loaded = 1;
    (void) decide_eval_flags(t->team, &ctx->req, ctx->results);

    failed = (ctx->person_failed ? DECIDE_NEED_PERSON : 0)
             | (ctx->groups_failed ? DECIDE_NEED_GROUPS : 0)
             | (ctx->hko_failed ? DECIDE_NEED_HASH_KEY : 0);

    if (failed) {
        /* only the flags that needed the failed data are in doubt */
        for (i = 0; i < n; i++) {
            if ((ctx->needed[i] & failed)
                && ctx->results[i].status != DECIDE_STATUS_OMITTED)
            {
                ctx->results[i].status = DECIDE_STATUS_FAILED;
                ctx->results[i].reason = DECIDE_REASON_ERROR;
                ctx->results[i].error =
                    (ctx->needed[i] & failed) == DECIDE_NEED_HASH_KEY
                    ? "hash_key_override_error" : "database_unavailable";
                ctx->results[i].enabled = 0;
                ctx->results[i].variant = NULL;
                ctx->results[i].payload = NULL;
                ctx->results[i].payload_json = NULL;
                ctx->results[i].condition_index = -1;
                ctx->results[i].errors = 1;
            }
        }
    }

    return ngx_http_decide_send(r, ctx);
}


static void
ngx_http_decide_ctx_cleanup(void *data)
{
    ngx_http_decide_ctx_t *ctx = data;

    free(ctx->lookup_value);
    json_decref(ctx->person_props);
    json_decref(ctx->static_cohorts);
    json_decref(ctx->group_props);
    json_decref(ctx->overrides);
    json_decref(ctx->body);

    /* after everything that could hold a reference into the body */
    decide_json_arena_release(&ctx->arena);
    ngx_http_decide_scratch_release(ctx);

    if (ctx->team) {
        ngx_http_decide_team_unref(ctx->team);
    }
}


/* the body as one memory block; NULL when it went to a temp file */
static u_char *
ngx_http_decide_body(ngx_http_request_t *r, size_t *len)
{
    u_char       *p, *data;
    size_t        n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    *len = 0;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return (u_char *) "";
    }

    n = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            return NULL;
        }

        n += b->last - b->pos;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL) {
        *len = n;
        return n ? cl->buf->pos : (u_char *) "";
    }

    data = ngx_pnalloc(r->pool, n + 1);
    if (data == NULL) {
        return NULL;
    }

    p = data;

    for ( /* void */ ; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    *len = n;

    return data;
}


/*
 * posthog-js loads /array/<token>/config.js and /array/<token>/config
 * before /flags (PostHog's RemoteConfig): the config part of the team,
 * plus token and hasFeatureFlags.
 */
static ngx_int_t
ngx_http_decide_remote_config(ngx_http_request_t *r, u_char *token,
    size_t len, ngx_uint_t js)
{
    char                         *s;
    size_t                        i, n;
    u_char                       *p, c;
    json_t                       *doc;
    ngx_int_t                     rc;
    ngx_str_t                     type, body;
    ngx_table_elt_t              *h;
    ngx_http_decide_team_t       *team;
    ngx_http_decide_main_conf_t  *mcf;

    static const char  *skip[] = {
        "config", "toolbarParams", "isAuthenticated", NULL
    };

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_decide_send_api_error(r, NGX_HTTP_NOT_ALLOWED,
                                              "invalid_request",
                                              "method_not_allowed",
                                              "Method not allowed");
    }

    if (len == 0 || len > 200) {
        goto malformed;
    }

    for (i = 0; i < len; i++) {
        c = token[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            goto malformed;
        }
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_decide_module);

    if (mcf->snapshot == NULL) {
        return ngx_http_decide_send_api_error(r,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "server_error",
                   "service_unavailable",
                   "Flag definitions are not loaded yet.");
    }

    team = ngx_http_decide_cache_team(mcf, token, len);
    if (team == NULL) {
        return ngx_http_decide_send_api_error(r, NGX_HTTP_NOT_FOUND,
                                              "invalid_request", "not_found",
                                              "Not found.");
    }

    doc = json_object();
    if (doc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json_object_set_new(doc, "token", json_string(team->token));
    json_object_set_new(doc, "hasFeatureFlags",
                        json_boolean(decide_team_nflags(team->team) > 0));
    json_object_update(doc, team->config);

    for (i = 0; skip[i]; i++) {
        json_object_del(doc, skip[i]);
    }

    json_object_set_new(doc, "surveys", json_false());
    json_object_set_new(doc, "productTours", json_false());

    s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);

    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = ngx_strlen(s);
    body.data = ngx_pnalloc(r->pool, n + len + 256);

    if (body.data == NULL) {
        free(s);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (js) {
        /* the token is [A-Za-z0-9_-]: safe inside the quotes */
        p = ngx_sprintf(body.data,
                        "(function() {\n"
                        "  window._POSTHOG_REMOTE_CONFIG = "
                        "window._POSTHOG_REMOTE_CONFIG || {};\n"
                        "  window._POSTHOG_REMOTE_CONFIG['%*s'] = {\n"
                        "    config: %s,\n"
                        "    siteApps: []\n"
                        "  }\n"
                        "})();\n", len, token, s);
        ngx_str_set(&type, "application/javascript");

    } else {
        p = ngx_cpymem(body.data, s, n);
        ngx_str_set(&type, "application/json");
    }

    free(s);
    body.len = p - body.data;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "public, max-age=300");

    return ngx_http_edgehog_send(r, NGX_HTTP_OK, &type, &body);

malformed:

    return ngx_http_decide_send_api_error(r, NGX_HTTP_BAD_REQUEST,
                                          "validation_error",
                                          "invalid_token",
                                          "Invalid token.");
}
